/* HEO Systems (api.heo-systems.net): power control of "VPS custom" instances.
 * See doc/SEMANTICS.md §10.2 (HEO Systems) and §5 (control files).
 *
 * HEO's API can start, stop and reset a VPS, and nothing else: there is no
 * list, detail or status endpoint. So the VPS ids come from the config
 * (`vps = vps_123 vps_456`), a refresh makes no HTTP request, and each VPS's
 * object (its files and `json`) is infrafs's own record of the last request
 * HEO accepted since the mount, never a state reported by HEO. */
#include <errno.h>
#include <string.h>

#include "infrafs/jsonparse.h"
#include "infrafs/provider.h"
#include "infrafs/text.h"
#include "kit.h"

/* An id becomes a directory name and a URL path segment; HEO's look like
 * "vps_123". Longer ones are a typo, not an id. */
#define MAX_ID_LEN 128
/* Keeps memory and the tree bounded whatever the config says. */
#define MAX_VPS 10000
/* HEO's words in a file or a message: a sentence, never a page. */
#define MAX_TEXT_CHARS 200

#define NO_LIVE_STATE "HEO reports no live state"

/* The last request HEO accepted for one VPS. */
typedef struct {
    char *action; /* "start", "stop", "reset" */
    gint64 at; /* epoch seconds when HEO's answer arrived */
    char *message; /* HEO's message ("Start action sent"), or NULL */
} Request;

typedef struct {
    IfsHttp *http;
    const char *account; /* the http client's */
    GPtrArray *ids; /* char*, in config order; fixed after open */
    GHashTable *id_set; /* the same strings, for lookups */
    /* act() runs on FUSE threads while list()/fetch() run on the refresher
     * and the store's workers: `requests` is only touched under `lock`. */
    GMutex lock;
    GHashTable *requests; /* id -> Request* */
} Heo;

static const char *const heo_kinds[] = {"vps", NULL};
static const char *const heo_keys[] = {"vps", NULL};

/* The seed documents `start` and `stop` as plain requests ("requests a
 * stop action for the VPS"; nothing calls stop forced or emergency), so
 * neither takes `force`. `reset` "requires confirmation with force=true":
 * that is a forced action (doc/SEMANTICS.md §5.3, the force rule), written `reset force`. */
static const IfsCommandSpec power_commands[] = {
    {"start", IFS_FORCE_NEVER   },
    {"stop",  IFS_FORCE_NEVER   },
    {"reset", IFS_FORCE_REQUIRED},
    {NULL,    0                 },
};

static const IfsControlSpec heo_controls[] = {
    {"vps", "power", power_commands},
    {NULL,  NULL,    NULL          },
};

static void request_free(gpointer data)
{
    Request *r = data;

    g_free(r->action);
    g_free(r->message);
    g_free(r);
}

static void heo_free(Heo *h)
{
    g_hash_table_destroy(h->id_set);
    g_ptr_array_unref(h->ids);
    g_hash_table_destroy(h->requests);
    g_mutex_clear(&h->lock);
    g_free(h);
}

/* ---- the configured ids ------------------------------------------------- */

/* NULL when `id` is usable, else why not. */
static const char *id_problem(const char *id)
{
    size_t len = strlen(id);

    if (len > MAX_ID_LEN)
        return "it is longer than 128 characters";
    if (id[0] == '.')
        return "it starts with '.'";
    for (const char *p = id; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return "ids may hold only letters, digits, '_', '-' and '.'";
    return NULL;
}

/* An EINVAL naming the account and the id (escaped: it may hold anything). */
static IfsError *id_error(const Heo *h, const char *id, const char *what)
{
    char *shown = g_strescape(id, NULL);
    IfsError *err =
        ifs_error_new(EINVAL, 0, NULL, "account '%s': vps: id '%s' %s", h->account, shown, what);

    g_free(shown);
    return err;
}

/* `vps = vps_1 vps_2` (commas are accepted between ids as well). Every id
 * must be usable and listed once; an empty entry ("vps_1,,vps_2") is a
 * mistake too. Refusing the whole line makes the account say what is
 * wrong instead of silently showing fewer VPSes. */
static gboolean parse_ids(Heo *h, const char *value, IfsError **err)
{
    char **entries = g_strsplit(value ? value : "", ",", -1);
    guint n_entries = g_strv_length(entries);
    gboolean ok = TRUE;

    for (guint i = 0; ok && i < n_entries; i++) {
        char **words = g_strsplit_set(entries[i], " \t", -1);
        guint found = 0;

        for (char **w = words; ok && *w; w++) {
            const char *why;

            if (!**w)
                continue;
            found++;
            why = id_problem(*w);
            if (why) {
                char *what = g_strdup_printf("is not usable: %s; write the ids as the "
                                             "HEO dashboard shows them, separated by spaces",
                                             why);
                ifs_error_propagate(err, id_error(h, *w, what));
                g_free(what);
                ok = FALSE;
            } else if (g_hash_table_contains(h->id_set, *w)) {
                ifs_error_propagate(
                    err, id_error(h, *w, "is listed twice; list each VPS once in `vps =`"));
                ok = FALSE;
            } else if (h->ids->len >= MAX_VPS) {
                ifs_error_propagate(
                    err,
                    ifs_error_new(
                        EINVAL, 0, NULL,
                        "account '%s': vps: more than %d ids; split them over several accounts",
                        h->account, MAX_VPS));
                ok = FALSE;
            } else {
                g_ptr_array_add(h->ids, g_strdup(*w));
                g_hash_table_add(h->id_set, g_ptr_array_index(h->ids, h->ids->len - 1));
            }
        }
        if (ok && found == 0 && n_entries > 1) {
            ifs_error_propagate(
                err,
                ifs_error_new(EINVAL, 0, NULL,
                              "account '%s': vps: empty id (entry %u of %u between commas); "
                              "remove the extra comma",
                              h->account, i + 1, n_entries));
            ok = FALSE;
        }
        g_strfreev(words);
    }
    if (ok && h->ids->len == 0) {
        ifs_error_propagate(
            err,
            ifs_error_new(EINVAL, 0, NULL,
                          "account '%s': vps lists no VPS ids; HEO's API cannot list them, so "
                          "write the ids from the HEO dashboard, e.g. vps = vps_123 vps_456",
                          h->account));
        ok = FALSE;
    }
    g_strfreev(entries);
    return ok;
}

static gboolean has_id(const Heo *h, const char *id)
{
    return g_hash_table_contains(h->id_set, id);
}

static gpointer heo_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    Heo *h = g_new0(Heo, 1);

    h->http = http;
    h->account = ifs_http_account(http);
    h->ids = g_ptr_array_new_with_free_func(g_free);
    h->id_set = g_hash_table_new(g_str_hash, g_str_equal);
    g_mutex_init(&h->lock);
    h->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, request_free);
    if (!parse_ids(h, ifs_account_extra(cfg, "vps"), err)) {
        heo_free(h);
        return NULL;
    }
    return h;
}

static void heo_close(gpointer state)
{
    heo_free(state);
}

/* ---- resources: infrafs's own record -------------------------------------- */

static json_object *string_or_null(const char *s)
{
    return s ? json_object_new_string(s) : json_object_new_null();
}

/* {"id", "status", "requested_action", "requested_at", "message"}: what
 * infrafs knows, which is only what it asked for. */
static json_object *vps_object(const char *id, const Request *r)
{
    json_object *obj = json_object_new_object();
    char *at = r ? ifs_iso_time(r->at) : NULL;
    char *status = r ? g_strdup_printf("%s requested at %s (" NO_LIVE_STATE ")", r->action, at)
                     : g_strdup("nothing requested since mount (" NO_LIVE_STATE ")");

    json_object_object_add(obj, "id", json_object_new_string(id));
    json_object_object_add(obj, "status", json_object_new_string(status));
    json_object_object_add(obj, "requested_action", string_or_null(r ? r->action : NULL));
    json_object_object_add(obj, "requested_at", string_or_null(at));
    json_object_object_add(obj, "message", string_or_null(r ? r->message : NULL));
    g_free(status);
    g_free(at);
    return obj;
}

static IfsResource *vps_resource(Heo *h, const char *id)
{
    json_object *obj;

    g_mutex_lock(&h->lock);
    obj = vps_object(id, g_hash_table_lookup(h->requests, id));
    g_mutex_unlock(&h->lock);
    return ifs_resource_new("vps", id, obj);
}

/* No HTTP request: there is nothing to read. */
static gboolean heo_list(gpointer state, GPtrArray *out, IfsError **err)
{
    Heo *h = state;

    (void)err;
    for (guint i = 0; i < h->ids->len; i++)
        g_ptr_array_add(out, vps_resource(h, g_ptr_array_index(h->ids, i)));
    return TRUE;
}

static IfsError *unknown_id(const Heo *h, const char *id)
{
    char *shown = g_strescape(id, NULL);
    IfsError *err =
        ifs_error_new(ENOENT, 0, NULL, "account '%s': '%s' is not in the account's `vps =` list",
                      h->account, shown);

    g_free(shown);
    return err;
}

static IfsResource *heo_fetch(gpointer state, const char *kind, const char *id, IfsError **err)
{
    Heo *h = state;

    (void)kind;
    if (!has_id(h, id)) {
        ifs_error_propagate(err, unknown_id(h, id));
        return NULL;
    }
    return vps_resource(h, id);
}

/* ---- actions ------------------------------------------------------------------ */

/* HEO's text as one line of bounded length (it lands in files and in
 * last_action). NULL for NULL or nothing printable. */
static char *one_line(const char *text)
{
    return text ? ifs_one_line(text, -1, MAX_TEXT_CHARS) : NULL;
}

/* The whole body as one JSON object, or NULL (a body with a NUL byte or
 * anything after the value is as unreadable as broken JSON). */
static json_object *parse_object(const IfsHttpResponse *resp)
{
    json_object *obj = ifs_json_parse(resp->body, resp->body_len, NULL, NULL);

    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* HEO's 200 answer is {"success":true,"action":"start","vps_id":"vps_123",
 * "status":"requested","message":"Start action sent"}. Anything else is not
 * reported as success: the request may or may not have reached HEO, and
 * saying "requested" would be a guess. Returns HEO's message (or status
 * word) on success; NULL with an EIO naming what was wrong otherwise. */
static char *read_answer(const Heo *h, const char *path, const char *id, const char *verb,
                         const IfsHttpResponse *resp, IfsError **err)
{
    json_object *body = parse_object(resp);
    json_object *success = NULL;
    const char *action, *vps_id;
    char *problem = NULL, *code = NULL, *message = NULL;

    if (!body) {
        problem = g_strdup("its body is not a JSON object");
    } else if (!json_object_object_get_ex(body, "success", &success) ||
               !json_object_is_type(success, json_type_boolean)) {
        problem = g_strdup("its body has no \"success\": true");
    } else if (!json_object_get_boolean(success)) {
        char *error = one_line(ifs_json_string_field(body, "error"));
        char *said = one_line(ifs_json_string_field(body, "message"));
        problem = g_strdup_printf("it says \"success\": false (%s%s%s)", error ? error : "",
                                  error && said ? ": " : "",
                                  said        ? said
                                      : error ? ""
                                              : "no reason given");
        code = error;
        g_free(said);
    } else if ((action = ifs_json_string_field(body, "action")) && strcmp(action, verb) != 0) {
        char *shown = one_line(action);
        problem = g_strdup_printf("it is about action '%s', not '%s'", shown ? shown : "", verb);
        g_free(shown);
    } else if ((vps_id = ifs_json_string_field(body, "vps_id")) && strcmp(vps_id, id) != 0) {
        char *shown = one_line(vps_id);
        problem = g_strdup_printf("it is about VPS '%s', not '%s'", shown ? shown : "", id);
        g_free(shown);
    } else {
        message = one_line(ifs_json_string_field(body, "message"));
        if (!message)
            message = one_line(ifs_json_string_field(body, "status"));
        if (!message)
            message = g_strdup("requested");
    }
    if (problem)
        ifs_error_propagate(
            err,
            ifs_kit_action_unsure(h->account, path, "HEO", resp->status, code, problem,
                                  "not recorded as requested, and HEO cannot say whether the "
                                  "VPS got the action: check it in the HEO dashboard before "
                                  "trying again"));
    g_free(problem);
    g_free(code);
    json_object_put(body);
    return message;
}

/* What HEO's documented errors mean for the user, beyond HEO's words. */
static void explain_failure(IfsError *err)
{
    const char *advice = NULL;
    char *message;

    if (!err)
        return;
    if (err->http_status == 403)
        advice = "the API key may not act on this VPS: check the id in `vps =` and the "
                 "key's VPS scope in the HEO dashboard";
    else if (err->http_status == 502)
        advice = "HEO could not pass the action on to the VPS's host; try again later";
    if (!advice)
        return;
    message = g_strdup_printf("%s; %s", err->message, advice);
    g_free(err->message);
    err->message = message;
}

static gboolean heo_act(gpointer state, const char *kind, const char *id, const char *file,
                        const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    Heo *h = state;
    char *suffix, *path, *message;
    IfsHttpResponse *resp;
    Request *r;

    (void)kind;
    (void)file;
    if (!has_id(h, id)) {
        ifs_error_propagate(err, unknown_id(h, id));
        return FALSE;
    }
    /* The control spec lets `force` through only for reset, where HEO
     * requires it; the query form is the one HEO's docs show. */
    suffix = g_strconcat("/", cmd->verb, cmd->force ? "?force=true" : "", NULL);
    path = ifs_api_path("/v1/hosting/cloud/vps-custom/", id, suffix);
    g_free(suffix);
    resp = ifs_http_request(h->http, "POST", path, NULL, err);
    if (!resp) {
        explain_failure(err ? *err : NULL);
        g_free(path);
        return FALSE;
    }
    out->http_status = resp->status;
    message = read_answer(h, path, id, cmd->verb, resp, err);
    ifs_http_response_free(resp);
    g_free(path);
    if (!message)
        return FALSE;

    r = g_new0(Request, 1);
    r->action = g_strdup(cmd->verb);
    r->at = g_get_real_time() / G_USEC_PER_SEC;
    r->message = g_strdup(message);
    g_mutex_lock(&h->lock);
    g_hash_table_replace(h->requests, g_strdup(id), r);
    g_mutex_unlock(&h->lock);
    out->message = message;
    /* Nothing to re-read from HEO: the new record is the resource now. */
    out->resource = vps_resource(h, id);
    return TRUE;
}

/* The control endpoints' {"success":false,"error":"<code>","message":..};
 * /v1/status (--check) answers 503 {"status":"error"}. */
static void heo_read_error(json_object *body, char **code, char **message)
{
    const char *word = ifs_http_error_text(body, "error");
    const char *text = ifs_http_error_text(body, "message");

    /* A lone `error` is all there is to say: the sentence, not a code. */
    *code = g_strdup(word && text ? word : ifs_http_error_text(body, "status"));
    *message = g_strdup(text ? text : word);
}

/* HEO reports no live state (its `status` file says what was last asked
 * of the VPS, not how it is), and names no VPS, address or place: only the
 * id and the path. */
static const IfsInventoryColumns heo_inventory[] = {
    {"vps", .name = NULL},
    {.kind = NULL    },
};

/* The API sends no X-RateLimit-Limit and documents no number:
 * default_rate_limit is a guess to pace by until the account's rate_limit
 * says better. */
const IfsProviderType ifs_provider_heo = {
    .schema = {.type = "heo",
               .default_url = "https://api.heo-systems.net",
               .extra_keys = heo_keys,
               .required_keys = heo_keys},
    .auth = IFS_AUTH_BEARER,
    IFS_PROVIDER_MEMBERS(heo),
    .check_path = "/v1/status",
    .default_rate_limit = 300,
    .default_rate_window_s = 60,
};
