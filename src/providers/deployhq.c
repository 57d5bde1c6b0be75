/* DeployHQ (https://<account>.deployhq.com): Managed VPSes from
 * /hosted_resources with their `sync` and `retry_provision` controls, and
 * the managed hosting regions and sizes. See doc/SEMANTICS.md §10.3 (DeployHQ). */
#include <errno.h>
#include <string.h>

#include "infrafs/deployhq.h"
#include "infrafs/jsonparse.h"
#include "infrafs/names.h"
#include "infrafs/provider.h"
#include "kit.h"

/* DeployHQ syncs and provisions in a background job: the re-read right
 * after the POST usually still shows the old status, so read once more a
 * little later (the periodic refresh may be minutes away). */
#define REFETCH_AFTER_MS 2000

typedef struct {
    IfsHttp *http;
    const char *account; /* the http client's */
    /* The last good regions and sizes, one per entry of `parts`, listed
     * again when their endpoints fail while the VPSes can still be listed:
     * a part that fails never blanks what was there (doc/SEMANTICS.md
     * §6.4.2). Only restore() and list() touch them, and the store runs one
     * list() per account at a time, after restore(). */
    IfsKitKeptList *kept[2];
} Deployhq;

typedef gboolean (*ListParser)(json_object *answer, const char *where, GPtrArray *out,
                               IfsError **err);

/* The managed hosting lists: secondary to the VPSes, and read alike. */
typedef struct {
    const char *kind;
    const char *path;
    ListParser parse;
} Part;

static const Part parts[] = {
    {"regions", "/managed_hosting/regions", ifs_deployhq_parse_regions},
    {"sizes",   "/managed_hosting/sizes",   ifs_deployhq_parse_sizes  },
};
G_STATIC_ASSERT(G_N_ELEMENTS(parts) == G_N_ELEMENTS(((Deployhq *)NULL)->kept));

static const char *const deployhq_kinds[] = {"vps", "regions", "sizes", NULL};

/* Trigger files: one word, "1". */
static const IfsControlSpec deployhq_controls[] = {
    {"vps", "sync",            ifs_trigger_commands},
    {"vps", "retry_provision", ifs_trigger_commands},
    {NULL,  NULL,              NULL                },
};

/* ---- parsing (exported for the unit tests) ------------------------------ */

gboolean ifs_deployhq_is_vps(json_object *item)
{
    json_object *kind;

    /* json-c gives a JSON null as a NULL member. */
    if (!json_object_object_get_ex(item, "kind", &kind) || !kind)
        return TRUE;
    return json_object_is_type(kind, json_type_string) &&
        strcmp(json_object_get_string(kind), "hosted_resource") == 0;
}

/* A resource named by item[key]; `item` is taken. Without a usable name the
 * resource has id NULL and says why, for the account's last_error. */
static IfsResource *named_resource(const char *kind, json_object *item, const char *key,
                                   const char *what, guint index)
{
    const char *name = ifs_json_string_field(item, key);
    IfsResource *r = ifs_resource_new(kind, name, item);
    char *why;

    if (name)
        return r;
    if (!json_object_is_type(item, json_type_object)) {
        r->problem = g_strdup_printf("%s #%u is not a JSON object", what, index + 1);
    } else if ((why = ifs_kit_id_problem(item, key))) {
        r->problem = g_strdup_printf("%s %s", what, why);
        g_free(why);
    } else {
        const char *label = ifs_json_string_field(item, "name");
        r->problem =
            g_strdup_printf("%s #%u%s%s%s has no %s string", what, index + 1, label ? " ('" : "",
                            label ? label : "", label ? "')" : "", key);
    }
    return r;
}

static void set_group(IfsResource *r, const char *group)
{
    char *text;

    /* The item's own `group` field wins; a second file of that name would
     * only collide with it. */
    if (!group || !json_object_is_type(r->object, json_type_object) ||
        json_object_object_get_ex(r->object, "group", NULL))
        return;
    text = g_strconcat(group, "\n", NULL);
    r->extra_files = json_object_new_object();
    json_object_object_add(r->extra_files, "group", json_object_new_string(text));
    g_free(text);
}

/* One entry of a slug list: an object with a `slug`, or a bare slug string
 * (shown as {"slug": ...}). `entry` is borrowed. */
static void add_slug_entry(const char *kind, const char *what, json_object *entry,
                           const char *group, guint *index, GPtrArray *out)
{
    json_object *item;
    IfsResource *r;

    if (json_object_is_type(entry, json_type_string)) {
        item = json_object_new_object();
        json_object_object_add(item, "slug", json_object_get(entry));
    } else {
        item = json_object_get(entry);
    }
    r = named_resource(kind, item, "slug", what, (*index)++);
    set_group(r, group);
    g_ptr_array_add(out, r);
}

static void add_slug_list(const char *kind, const char *what, json_object *list, const char *group,
                          guint *index, GPtrArray *out)
{
    for (size_t i = 0; i < json_object_array_length(list); i++)
        add_slug_entry(kind, what, json_object_array_get_idx(list, i), group, index, out);
}

/* A group given as {slug: name} or {slug: {...}}: each member becomes an
 * object with its slug (and name). */
static void add_slug_map(const char *kind, const char *what, json_object *map, const char *group,
                         guint *index, GPtrArray *out)
{
    json_object_object_foreach(map, slug, value)
    {
        json_object *item = json_object_new_object();
        IfsResource *r;

        json_object_object_add(item, "slug", json_object_new_string(slug));
        if (json_object_is_type(value, json_type_object)) {
            json_object_object_foreach(value, key, member) if (strcmp(key, "slug") != 0)
                json_object_object_add(item, key, json_object_get(member));
        } else {
            json_object_object_add(item, "name", json_object_get(value));
        }
        r = named_resource(kind, item, "slug", what, (*index)++);
        set_group(r, group);
        g_ptr_array_add(out, r);
    }
}

static gboolean bad_shape(const char *where, const char *expected, IfsError **err)
{
    ifs_error_propagate(
        err, ifs_error_new(EIO, 0, NULL, "%s: unrecognised answer: expected %s", where, expected));
    return FALSE;
}

gboolean ifs_deployhq_parse_hosted_resources(json_object *answer, const char *where, GPtrArray *out,
                                             IfsError **err)
{
    if (!json_object_is_type(answer, json_type_array))
        return bad_shape(where, "a JSON array of hosted resources", err);
    for (size_t i = 0; i < json_object_array_length(answer); i++) {
        json_object *item = json_object_array_get_idx(answer, i);

        if (json_object_is_type(item, json_type_object) && !ifs_deployhq_is_vps(item))
            continue; /* a static site, not a VPS */
        g_ptr_array_add(out,
                        named_resource("vps", json_object_get(item), "identifier",
                                       "hosted resource", (guint)i));
    }
    return TRUE;
}

gboolean ifs_deployhq_parse_regions(json_object *answer, const char *where, GPtrArray *out,
                                    IfsError **err)
{
    static const char expected[] =
        "{\"regions\":[...]}, {\"grouped_regions\":{...}} or an array of regions";
    json_object *list;
    guint index = 0;

    if (json_object_is_type(answer, json_type_array)) {
        add_slug_list("regions", "region", answer, NULL, &index, out);
        return TRUE;
    }
    if (!json_object_is_type(answer, json_type_object))
        return bad_shape(where, expected, err);
    if (json_object_object_get_ex(answer, "regions", &list) &&
        json_object_is_type(list, json_type_array)) {
        add_slug_list("regions", "region", list, NULL, &index, out);
        return TRUE;
    }
    if (!json_object_object_get_ex(answer, "grouped_regions", &list))
        return bad_shape(where, expected, err);
    if (json_object_is_type(list, json_type_array)) {
        add_slug_list("regions", "region", list, NULL, &index, out);
        return TRUE;
    }
    if (!json_object_is_type(list, json_type_object))
        return bad_shape(where, expected, err);
    json_object_object_foreach(list, group, members)
    {
        if (json_object_is_type(members, json_type_array))
            add_slug_list("regions", "region", members, group, &index, out);
        else if (json_object_is_type(members, json_type_object))
            add_slug_map("regions", "region", members, group, &index, out);
        else {
            IfsResource *r = ifs_resource_new("regions", NULL, NULL);
            r->problem =
                g_strdup_printf("region group '%s' is neither a list nor an object", group);
            g_ptr_array_add(out, r);
        }
    }
    return TRUE;
}

gboolean ifs_deployhq_parse_sizes(json_object *answer, const char *where, GPtrArray *out,
                                  IfsError **err)
{
    json_object *list = answer;
    guint index = 0;

    if (json_object_is_type(answer, json_type_object) &&
        !(json_object_object_get_ex(answer, "sizes", &list) &&
          json_object_is_type(list, json_type_array)))
        list = NULL;
    if (!json_object_is_type(list, json_type_array))
        return bad_shape(where, "{\"sizes\":[...]} or an array of sizes", err);
    add_slug_list("sizes", "size", list, NULL, &index, out);
    return TRUE;
}

/* ---- the provider ---------------------------------------------------------- */

static gpointer deployhq_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    Deployhq *d = g_new0(Deployhq, 1);

    (void)cfg;
    (void)err;
    d->http = http;
    d->account = ifs_http_account(http);
    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++)
        d->kept[i] = ifs_kit_kept_list_new(parts[i].kind);
    return d;
}

static void deployhq_close(gpointer state)
{
    Deployhq *d = state;

    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++)
        ifs_kit_kept_list_free(d->kept[i]);
    g_free(d);
}

static char *hosted_path(const char *id, const char *suffix)
{
    return ifs_api_path("/hosted_resources/", id, suffix);
}

/* GET `path` and parse it with `parse` into `out`, sealed: the answer's
 * tree then goes at once, rather than item by item with the resources. */
static gboolean get_list(Deployhq *d, const char *path, ListParser parse, GPtrArray *out,
                         IfsError **err)
{
    json_object *answer = ifs_http_get_json(d->http, path, err);
    guint before = out->len;
    char *where;
    gboolean ok;

    if (!answer)
        return FALSE;
    where = g_strdup_printf("account '%s': GET %s", d->account, path);
    ok = parse(answer, where, out, err);
    g_free(where);
    for (guint i = before; i < out->len; i++)
        ifs_resource_seal(g_ptr_array_index(out, i));
    json_object_put(answer);
    return ok;
}

/* Refresh one managed hosting list: on success it replaces the kept one;
 * on failure that stays and the failure goes to *partial. */
static void refresh_part(Deployhq *d, gsize i, IfsError **partial)
{
    GPtrArray *fresh = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;

    if (get_list(d, parts[i].path, parts[i].parse, fresh, &err)) {
        ifs_kit_kept_list_replace(d->kept[i], fresh);
        return;
    }
    g_ptr_array_unref(fresh);
    /* These endpoints need the account's beta_features flag: without it they
     * are refused (403) or unknown (404), which says nothing about the VPSes. */
    ifs_kit_kept_list_failed(d->kept[i], err,
                             err->http_status == 403 || err->http_status == 404
                                 ? "; the managed hosting endpoints need the account's beta "
                                   "features (Settings in DeployHQ)"
                                 : NULL,
                             partial);
    ifs_error_free(err);
}

/* The regions and sizes saved on disk are the last good ones until the
 * endpoints answer. */
static void deployhq_restore(gpointer state, GPtrArray *resources, gint64 saved_at)
{
    Deployhq *d = state;

    (void)saved_at;
    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++)
        ifs_kit_kept_list_restore(d->kept[i], resources);
}

/* The VPSes decide whether the refresh succeeded; regions and sizes that
 * fail make it partial (TRUE with *err set: see provider.h). */
static gboolean deployhq_list(gpointer state, GPtrArray *out, IfsError **err)
{
    Deployhq *d = state;
    IfsError *partial = NULL;

    if (!get_list(d, "/hosted_resources", ifs_deployhq_parse_hosted_resources, out, err))
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++) {
        refresh_part(d, i, &partial);
        ifs_kit_kept_list_append(d->kept[i], out);
    }
    if (partial)
        ifs_error_propagate(err, partial);
    return TRUE;
}

static IfsResource *fetch_vps(Deployhq *d, const char *id, IfsError **err)
{
    char *path = hosted_path(id, "");
    json_object *obj = ifs_http_get_json(d->http, path, err);
    IfsResource *r = NULL;

    if (!obj) {
        /* nothing to add: err says what failed */
    } else if (!json_object_is_type(obj, json_type_object)) {
        ifs_error_propagate(
            err,
            ifs_error_new(
                EIO, 0, NULL,
                "account '%s': GET %s: expected a JSON object; the API answered something else",
                d->account, path));
    } else if (!ifs_deployhq_is_vps(obj)) {
        const char *kind = ifs_json_string_field(obj, "kind");
        ifs_error_propagate(
            err,
            ifs_error_new(ENOENT, 0, NULL,
                          "account '%s': GET %s: %s is no longer a Managed VPS (kind '%s')",
                          d->account, path, id, kind ? kind : "?"));
    } else {
        r = ifs_resource_new("vps", id, json_object_get(obj));
    }
    json_object_put(obj);
    g_free(path);
    return r;
}

/* Regions and sizes have no detail endpoint: read the list, pick the slug. */
static IfsResource *fetch_from_list(Deployhq *d, const Part *part, const char *id, IfsError **err)
{
    GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsResource *found = NULL;

    if (get_list(d, part->path, part->parse, all, err)) {
        for (guint i = 0; i < all->len && !found; i++) {
            IfsResource *r = g_ptr_array_index(all, i);
            if (r->id && strcmp(r->id, id) == 0)
                found = ifs_resource_ref(r);
        }
        if (!found)
            ifs_error_propagate(err,
                                ifs_error_new(ENOENT, 0, NULL,
                                              "account '%s': GET %s: %s '%s' is no longer listed",
                                              d->account, part->path, part->kind, id));
    }
    g_ptr_array_unref(all);
    return found;
}

static IfsResource *deployhq_fetch(gpointer state, const char *kind, const char *id, IfsError **err)
{
    Deployhq *d = state;
    const Part *part = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(parts) && !part; i++)
        if (strcmp(kind, parts[i].kind) == 0)
            part = &parts[i];
    if (!part && strcmp(kind, "vps") != 0) {
        ifs_error_propagate(err,
                            ifs_error_new(ENOENT, 0, NULL,
                                          "account '%s': DeployHQ has no resources of kind '%s'",
                                          d->account, kind));
        return NULL;
    }
    return part ? fetch_from_list(d, part, id, err) : fetch_vps(d, id, err);
}

/* POST /hosted_resources/{identifier}/{sync|retry_provision}, no body; the
 * answer is {"status":"sync_requested"} (or another status word). */
static gboolean deployhq_act(gpointer state, const char *kind, const char *id, const char *file,
                             const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    Deployhq *d = state;
    char *suffix = g_strconcat("/", file, NULL);
    char *path = hosted_path(id, suffix);
    IfsHttpResponse *resp;
    json_object *answer = NULL;
    const char *body;
    gboolean ok = TRUE;

    (void)kind;
    (void)cmd; /* "1" is the only command */
    g_free(suffix);
    resp = ifs_http_request(d->http, "POST", path, NULL, err);
    if (!resp) {
        g_free(path);
        return FALSE;
    }
    out->http_status = resp->status;
    body = resp->body;
    while (g_ascii_isspace(*body))
        body++;
    if (*body)
        answer = ifs_json_parse(body, resp->body_len - (size_t)(body - resp->body), NULL, NULL);
    if (*body && !json_object_is_type(answer, json_type_object)) {
        char *advice = g_strdup_printf("the %s may have been requested: check status and "
                                       "updated_at before trying again",
                                       file);

        ifs_error_propagate(err,
                            ifs_kit_action_unsure(d->account, path, "DeployHQ", resp->status, NULL,
                                                  "the answer could not be read", advice));
        g_free(advice);
        ok = FALSE;
    } else {
        const char *status = ifs_json_string_field(answer, "status");
        out->message = g_strdup(status ? status : "accepted");
        out->refetch_after_ms = REFETCH_AFTER_MS;
    }
    json_object_put(answer);
    ifs_http_response_free(resp);
    g_free(path);
    return ok;
}

/* A 422's field hash: {"base":["Server limit reached"],"hostname":["must
 * be present"]}; `base` holds sentences about the whole object. */
static char *field_hash_message(json_object *obj)
{
    GString *out = g_string_new(NULL);

    json_object_object_foreach(obj, field, val)
    {
        gboolean base = strcmp(field, "base") == 0;

        for (size_t i = 0;
             json_object_is_type(val, json_type_array) && i < json_object_array_length(val); i++) {
            json_object *item = json_object_array_get_idx(val, i);

            if (json_object_is_type(item, json_type_string))
                g_string_append_printf(out, "%s%s%s%s", out->len ? "; " : "", base ? "" : field,
                                       base ? "" : " ", json_object_get_string(item));
        }
    }
    return g_string_free(out, out->len == 0); /* NULL when nothing was said */
}

/* Every form DeployHQ documents (its CLI tries them in this order): a lone
 * {"error":"<sentence>"} (a sentence even when it reads like a code, as
 * email_verification_required does), {"errors":["..."]}, a field hash; and
 * {"status":"not_found","error_code":..,"hint":..}, whose `status` word is
 * the code when there is no `error_code`. The OpenAPI schema's numeric
 * `status` is HTTP's, no code. An `error` beside a `message` (no form of
 * DeployHQ's, but most APIs') is read as a code. */
static void deployhq_read_error(json_object *body, char **code, char **message)
{
    const char *error_code = ifs_http_error_text(body, "error_code");
    const char *error = ifs_http_error_text(body, "error");
    /* Beside a `message`, `error` is a code word, as in most APIs. */
    const char *message_text = ifs_http_error_text(body, "message");
    const char *sentence = message_text ? message_text : error;
    const char *hint = ifs_http_error_text(body, "hint");
    char *said =
        ifs_http_error_message(sentence, json_object_object_get(body, "errors"), NULL, NULL);
    GString *out;

    if (!error_code)
        error_code = message_text && error ? error : ifs_http_error_text(body, "status");
    *code = g_strdup(error_code);
    if (!said)
        said = field_hash_message(body);
    out = g_string_new(said);
    if (hint && g_strcmp0(hint, sentence) != 0)
        g_string_append_printf(out, "%shint: %s", out->len ? "; " : "", hint);
    g_free(said);
    *message = g_string_free(out, out->len == 0);
}

static const IfsInventoryColumns deployhq_inventory[] = {
    {"vps",               .name = "name", .status = "status", .ip = "ip_address", .region = "region"},
    {"regions", .name = "name", .region = "slug"},
    {"sizes", .name = "label"},
    {.kind = NULL          },
};

/* Every account has its own host: no default url. HTTP Basic: the user's
 * email and the API key. The API sends no X-RateLimit-Limit and documents
 * no number: default_rate_limit is a guess to pace by until the account's
 * rate_limit says better. */
const IfsProviderType ifs_provider_deployhq = {
    .schema = {.type = "deployhq", .needs_user = TRUE},
    .auth = IFS_AUTH_BASIC,
    IFS_PROVIDER_MEMBERS(deployhq),
    .check_path = "/hosted_resources",
    .check_proves_key = TRUE,
    .default_rate_limit = 600,
    .default_rate_window_s = 60,
    .restore = deployhq_restore,
};
