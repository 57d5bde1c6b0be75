/* The provider interface. A provider knows one vendor's API and turns it
 * into resources (JSON objects by kind and id) and actions; it knows nothing
 * of FUSE, snapshots or caching. Adding a provider means one file in
 * src/providers/ that defines an IfsProviderType, listed in registry.c. */
#pragma once
#include <glib.h>
#include <json-c/json.h>
#include "infrafs/config.h"
#include "infrafs/control.h"
#include "infrafs/error.h"
#include "infrafs/http.h"
#include "infrafs/parallel.h"

typedef struct {
    gatomicrefcount ref;
    char *kind; /* "vps", "regions", ... */
    char *id; /* raw id, escaped by the store for the entry name */
    json_object *object; /* what the API returned (providers may merge the
                            answers of several endpoints), owned */
    char *problem; /* with id NULL: why no id could be used, for
                            last_error (e.g. an id holding a NUL byte);
                            with an id: the resource is shown, and this
                            says in last_error what it lacks (a detail
                            read that failed) */
    json_object *extra_files; /* NULL, or an object of name -> string: files
                            shown beside the fields but not part of `json`
                            (what the provider fetched from elsewhere, such
                            as a deployment's log), owned */
    /* Once sealed (by the store, when it takes the resource): `object` and
     * `extra_files` are NULL, and these hold them as compact JSON. A tree
     * of json-c objects takes about 13 times the memory of its text. The
     * texts are shared with every resource whose text is the same (read
     * only; set them with ifs_resource_set_texts). */
    const char *text; /* the object */
    size_t text_len;
    const char *extra_text; /* extra_files, or NULL */
    size_t extra_len;
} IfsResource;

IfsResource *ifs_resource_new(const char *kind, const char *id, json_object *object /* taken */);
IfsResource *ifs_resource_ref(IfsResource *r);
void ifs_resource_unref(IfsResource *r);
/* Providers build and change resources as json-c objects; the store seals
 * them before it keeps them, and nothing changes a sealed resource. */
void ifs_resource_seal(IfsResource *r);
/* Seals a resource that has no object yet with these texts (`extra` may be
 * NULL), copied or shared. */
void ifs_resource_set_texts(IfsResource *r, const char *text, size_t len, const char *extra,
                            size_t extra_len);
/* The object (or extra files; NULL if none) as a json-c tree of the
 * caller's (json_object_put it): a new one parsed from the text once
 * sealed. NULL only for a sealed text that no longer parses (never). */
json_object *ifs_resource_object(const IfsResource *r);
json_object *ifs_resource_extra_files(const IfsResource *r);
/* Same kind, id, object and extra files (sealed or not, compared as the
 * same compact text). */
gboolean ifs_resource_same(const IfsResource *a, const IfsResource *b);
/* The same object (compared as compact text), whatever else differs. */
gboolean ifs_resource_same_object(const IfsResource *a, const IfsResource *b);

typedef enum {
    IFS_OP_PENDING,
    IFS_OP_COMPLETED,
    IFS_OP_FAILED,
} IfsOpState;

/* What an accepted action returned. */
typedef struct {
    int http_status;
    char *message; /* provider's words, may be NULL */
    /* Asynchronous operation (HostUp's 202 envelope), all NULL otherwise */
    char *op_status; /* "queued" */
    char *op_job_id;
    char *op_poll_url;
    /* The action deleted the resource: it leaves the tree before write()
     * returns. */
    gboolean resource_gone;
    /* The provider changes the resource in the background: re-read it once
     * more this long after the action (besides the immediate re-read). */
    guint refetch_after_ms;
    /* The resource as it is after the action, when the provider knows that
     * without asking its API (HEO, which has nothing to read): shown before
     * write() returns, instead of a re-read. Owned; NULL otherwise. */
    IfsResource *resource;
} IfsActionResult;
void ifs_action_result_clear(IfsActionResult *r);

/* Where a kind's resources keep the inventory's columns (/inventory): for
 * each, the path of the file in the resource directory that holds it
 * ("location/datacenter"), or NULL when the API has no such fact. */
typedef struct {
    const char *kind;
    const char *name;
    const char *status;
    const char *ip;
    const char *region;
    /* More addresses for /by-ip, besides ip, or NULL: a path in which a
     * component "*" stands for every entry (HostUp's is ip_addresses, then
     * "*", then address: each element's address). */
    const char *addresses;
} IfsInventoryColumns;

/* Changes the provider pushes (webhooks), for the types that send them:
 * an HTTP POST whose body is signed with HMAC-SHA256 under the account's
 * webhook secret, the hex digest in `signature_header` after "sha256=". */
typedef struct {
    const char *signature_header;
    const char *delivery_header; /* the delivery's id, for retries: or NULL */
    /* What a signed body says changed: the resource to read again (kind
     * and id, newly allocated), and the delivery id when the body has
     * one. TRUE with *kind NULL for an event that names nothing the tree
     * shows (ignored); FALSE with *err for a body that is no event. */
    gboolean (*parse)(const char *body, size_t len, char **kind, char **id, char **delivery_id,
                      IfsError **err);
} IfsWebhookSpec;

typedef struct IfsProviderType IfsProviderType;
struct IfsProviderType {
    IfsAccountSchema schema;
    IfsAuthScheme auth;
    const char *auth_header; /* for IFS_AUTH_HEADER */
    const char *const *kinds; /* NULL-terminated kinds it offers */
    const IfsControlSpec *controls; /* terminated by {NULL}; resource controls */
    /* One entry per kind, terminated by {NULL}; a kind without one has
     * only its id and path in the inventory. */
    const IfsInventoryColumns *inventory;
    /* NULL when the provider pushes nothing. */
    const IfsWebhookSpec *webhook;
    /* `infrafs --check`: one cheap GET (a path under the origin) that
     * needs the account's key, or, with check_proves_key FALSE, one that
     * only shows the API answers (HEO has no read endpoint to try a key
     * on without acting). */
    const char *check_path;
    gboolean check_proves_key;
    /* Requests per window the account's budget assumes when its config
     * sets no rate_limit, for an API that sends no X-RateLimit-Limit;
     * 0: none (learnt from the answers, or no limit). */
    unsigned default_rate_limit;
    unsigned default_rate_window_s;
    /* Its API's error bodies read (http.h); NULL: only the shapes any API
     * may send. */
    IfsHttpErrorReader error_reader;

    /* Per-account state; `http` is owned by the caller and outlives it. */
    gpointer (*open)(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err);
    void (*close)(gpointer state);

    /* Every resource of the account (GPtrArray of IfsResource*, appended).
     * TRUE with *err set is a partial refresh: `out` is what the tree
     * shows (the provider lists the last good data of the part that failed
     * again itself) and *err says what failed, for last_error. */
    gboolean (*list)(gpointer state, GPtrArray *out, IfsError **err);
    /* One resource, fresh; ENOENT when it no longer exists. */
    IfsResource *(*fetch)(gpointer state, const char *kind, const char *id, IfsError **err);
    /* Perform a validated command on a resource's control file. */
    gboolean (*act)(gpointer state, const char *kind, const char *id, const char *file,
                    const IfsCommand *cmd, IfsActionResult *out, IfsError **err);
    /* Poll an asynchronous operation; NULL if the provider has none. Sets
     * *status_text to the provider's status word ("in_progress"). */
    gboolean (*poll)(gpointer state, const char *poll_url, IfsOpState *state_out,
                     char **status_text, IfsError **err);
    /* May be NULL. The resources the account starts from (the copy saved
     * on disk), given once before the first list(): a provider that lists
     * the last good data of a failed part itself (a partial refresh) takes
     * them as that data, so a remount does not blank it either (and one
     * with per-resource details, as what was last read: details.h). */
    void (*restore)(gpointer state, GPtrArray *resources /* IfsResource*, borrowed */,
                    gint64 saved_at /* when the copy was made, epoch seconds */);
};

/* The members every provider has, named after it: NAME_kinds,
 * NAME_inventory, NAME_controls, NAME_read_error and the callbacks
 * NAME_open, NAME_close, NAME_list, NAME_fetch and NAME_act. A provider's
 * table sets them with IFS_PROVIDER_MEMBERS(NAME), and the rest by hand:
 * schema, auth (and auth_header), check_path, check_proves_key, and when
 * it has them default_rate_limit and _window_s, poll, restore and the
 * webhook spec. */
#define IFS_PROVIDER_MEMBERS(name)                                                                 \
    .kinds = name##_kinds, .inventory = name##_inventory, .controls = name##_controls,             \
    .error_reader = name##_read_error, .open = name##_open, .close = name##_close,                 \
    .list = name##_list, .fetch = name##_fetch, .act = name##_act

const IfsProviderType *ifs_provider_find(const char *type);
/* The account's HTTP client, as its provider authenticates: used by the
 * store and by `infrafs --check`. */
IfsHttp *ifs_provider_http_new(const IfsProviderType *type, const IfsAccountConfig *cfg);
/* NULL-terminated, in a stable order. */
const IfsProviderType *const *ifs_provider_all(void);
/* NULL-terminated schemas for ifs_config_load (static storage). */
const IfsAccountSchema *const *ifs_provider_schemas(void);
/* A string member of a JSON object, or NULL when `obj` is not an object, or
 * the member is absent, not a string, or holds a NUL byte (which C strings
 * would silently cut: one resource's id must never be shortened into
 * another's). */
const char *ifs_json_string_field(json_object *obj, const char *key);
/* prefix + id + suffix, with `id` percent-escaped whole (it may hold '/',
 * '?', '&' or anything else an API returned): a path segment or a query
 * value. An id of only dots ("." and "..") is written as %2E each, so that
 * it cannot be a dot segment. */
char *ifs_api_path(const char *prefix, const char *id, const char *suffix);
/* The account key `key` as a whole number from `min` to `max` (digits
 * only), into *out, which keeps its value (the default) when the key is
 * absent. FALSE, with an error naming the key, the range and `unit` ("of
 * seconds", or NULL), for any other value. */
gboolean ifs_account_number(const IfsAccountConfig *cfg, const char *key, guint64 min, guint64 max,
                            const char *unit, guint64 *out, IfsError **err);
/* Per-resource reads (details, logs) made at once: detail_concurrency
 * (details.h), at most this many. */
#define IFS_DEFAULT_CONCURRENCY 4
#define IFS_MAX_CONCURRENCY 8
const IfsControlSpec *ifs_provider_control(const IfsProviderType *p, const char *kind,
                                           const char *file);

extern const IfsProviderType ifs_provider_hostup;
extern const IfsProviderType ifs_provider_heo;
extern const IfsProviderType ifs_provider_dokploy;
extern const IfsProviderType ifs_provider_deployhq;
extern const IfsProviderType ifs_provider_hostatlas;
