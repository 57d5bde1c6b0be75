/* Dokploy (self-hosted): the deployments of every application and compose
 * service, their log tails, and the kill and remove controls. Reads are
 * GET /api/<router>.<proc>?flat=params, writes POST with a JSON body, the key
 * goes in `x-api-key`. */
#include <errno.h>
#include <string.h>

#include "infrafs/details.h"
#include "infrafs/provider.h"
#include "kit.h"

/* A log file is a tail, never the whole build output: both bounds apply. */
#define LOG_TAIL_LINES 200
#define LOG_MAX_BYTES ((gsize)256 * 1024)

/* Where an owner's deployments are listed, and which field of a deployment
 * row names that owner. */
typedef struct {
    char *field; /* "applicationId" or "composeId" */
    char *id;
    char *path; /* "/api/deployment.all?applicationId=..." */
} Owner;

typedef struct {
    IfsHttp *http;
    const char *account; /* the http client's */
    /* Each deployment's log tail, as a detail (details.h): read on every
     * refresh while the deployment runs, once after it finished, kept
     * when a read fails and across a remount; detail_concurrency at once. */
    IfsDetails *logs;
    /* list runs in the account's refresher; fetch and act in other threads. */
    IfsKitIdMap *owners; /* deploymentId -> Owner*, from the last listing */
} Dokploy;

static const char *const dokploy_kinds[] = {"deployments", NULL};
static const char *const dokploy_keys[] = {"detail_concurrency", NULL};

static const IfsControlSpec dokploy_controls[] = {
    {"deployments", "kill",   ifs_trigger_commands},
    {"deployments", "remove", ifs_trigger_commands},
    {NULL,          NULL,     NULL                },
};

/* ---- small helpers ------------------------------------------------------- */

static Owner *owner_new(const char *field, const char *id, const char *proc)
{
    Owner *o = g_new0(Owner, 1);
    char *prefix = g_strdup_printf("/api/%s?%s=", proc, field);

    o->field = g_strdup(field);
    o->id = g_strdup(id);
    o->path = ifs_api_path(prefix, id, "");
    g_free(prefix);
    return o;
}

static gpointer owner_copy(gconstpointer p)
{
    const Owner *o = p;
    Owner *c = g_new0(Owner, 1);

    c->field = g_strdup(o->field);
    c->id = g_strdup(o->id);
    c->path = g_strdup(o->path);
    return c;
}

static void owner_free(gpointer p)
{
    Owner *o = p;

    if (!o)
        return;
    g_free(o->field);
    g_free(o->id);
    g_free(o->path);
    g_free(o);
}

static json_object *array_member(json_object *obj, const char *key)
{
    json_object *v;

    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_array))
        return v;
    return NULL;
}

/* Deployment statuses after which neither the row nor its log changes
 * (doc/SEMANTICS.md §10.5.3: running, done, error, cancelled; the seed's pending is
 * queued, so not finished either). */
static gboolean status_is_finished(const char *status)
{
    return status &&
        (strcmp(status, "done") == 0 || strcmp(status, "error") == 0 ||
         strcmp(status, "cancelled") == 0);
}

/* The log text as shown: at most LOG_TAIL_LINES lines and LOG_MAX_BYTES
 * bytes from the end (whole lines only), valid UTF-8 without NUL bytes, and
 * one trailing newline unless empty. Servers may ignore `tail`, so it is
 * enforced here too. */
static char *bound_log(const char *text, gsize len)
{
    const char *start = text;
    const char *end = text + len;
    GString *out;
    char *valid;
    guint lines = 0;

    if (len > 0 && end[-1] == '\n')
        end--; /* the final newline ends the last line, it does not start one */
    for (const char *p = end; p > text; p--) {
        if (p[-1] == '\n' && ++lines == LOG_TAIL_LINES) {
            start = p;
            break;
        }
    }
    /* Also turns NUL bytes into U+FFFD: a file's text must not end early at
     * one. Done before the byte bound, which it could otherwise break. */
    valid = g_utf8_make_valid(start, end - start);
    out = g_string_new(valid);
    g_free(valid);
    if (out->len + 1 > LOG_MAX_BYTES) {
        const char *cut = out->str + out->len - (LOG_MAX_BYTES - 1);
        const char *nl = memchr(cut, '\n', out->len - (gsize)(cut - out->str));

        /* Whole lines if there is a line break, else whole characters. */
        if (nl)
            cut = nl + 1;
        else if ((*cut & 0xC0) == 0x80)
            cut = g_utf8_find_next_char(cut, NULL);
        g_string_erase(out, 0, cut - out->str);
    }
    if (out->len > 0)
        g_string_append_c(out, '\n');
    /* Kept for the life of the deployment: without the GString's slack. */
    valid = g_memdup2(out->str, out->len + 1);
    g_string_free(out, TRUE);
    return valid;
}

/* ---- open / close ------------------------------------------------------- */

static const IfsDetailSpec deployment_logs;

static gpointer dokploy_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    /* A running deployment's log grows without its row changing: read on
     * every refresh (max age 0) until settled. */
    guint concurrency = IFS_DEFAULT_CONCURRENCY, max_age_s = 0;
    Dokploy *d;

    if (!ifs_details_config(cfg, &concurrency, &max_age_s, err))
        return NULL;
    d = g_new0(Dokploy, 1);
    d->http = http;
    d->account = ifs_http_account(http);
    d->logs = ifs_details_new(&deployment_logs, d, http, concurrency, max_age_s);
    d->owners = ifs_kit_id_map_new(owner_copy, owner_free);
    return d;
}

static void dokploy_close(gpointer state)
{
    Dokploy *d = state;

    ifs_details_free(d->logs);
    ifs_kit_id_map_free(d->owners);
    g_free(d);
}

/* ---- discovery ----------------------------------------------------------- */

static json_object *get_array(Dokploy *d, const char *path, IfsError **err)
{
    return ifs_kit_get_array(d->http, d->account, path,
                             "(is `url` the Dokploy origin, without /api?)", err);
}

/* A service without a usable id cannot be asked for its deployments: say
 * so in last_error through an id-less resource. */
static void report_service(GPtrArray *problems, const char *what, json_object *item,
                           const char *field, const char *project)
{
    IfsResource *r = ifs_resource_new("deployments", NULL, json_object_new_object());
    char *why = ifs_kit_id_problem(item, field);

    r->problem = g_strdup_printf("%s in project '%s': %s", what, project,
                                 why ? why : "no string id, its deployments are not listed");
    g_free(why);
    g_ptr_array_add(problems, r);
}

/* The owners of one environment's (or, in the pre-0.25 shape, one
 * project's) services. */
static void collect_services(json_object *holder, const char *project, GPtrArray *owners,
                             GHashTable *seen, GPtrArray *problems)
{
    static const struct {
        const char *list, *field, *proc, *what;
    } kinds[] = {
        {"applications", "applicationId", "deployment.all",          "an application"   },
        {"compose",      "composeId",     "deployment.allByCompose", "a compose service"},
    };

    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
        json_object *list = array_member(holder, kinds[k].list);

        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
            json_object *item = json_object_array_get_idx(list, i);
            const char *id = json_object_is_type(item, json_type_object)
                ? ifs_json_string_field(item, kinds[k].field)
                : NULL;
            Owner *o;

            if (!id || !*id) {
                report_service(problems, kinds[k].what, item, kinds[k].field, project);
                continue;
            }
            o = owner_new(kinds[k].field, id, kinds[k].proc);
            if (g_hash_table_add(seen, g_strdup(o->path)))
                g_ptr_array_add(owners, o);
            else
                owner_free(o);
        }
    }
}

/* project.all: projects -> environments -> applications and compose. */
static GPtrArray *discover(Dokploy *d, GPtrArray *problems, IfsError **err)
{
    json_object *projects = get_array(d, "/api/project.all", err);
    GPtrArray *owners;
    GHashTable *seen;

    if (!projects)
        return NULL;
    owners = g_ptr_array_new_with_free_func(owner_free);
    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i < json_object_array_length(projects); i++) {
        json_object *project = json_object_array_get_idx(projects, i);
        json_object *envs;
        const char *name;

        if (!json_object_is_type(project, json_type_object))
            continue;
        name = ifs_json_string_field(project, "name");
        if (!name)
            name = ifs_json_string_field(project, "projectId");
        if (!name)
            name = "?";
        envs = array_member(project, "environments");
        for (size_t e = 0; envs && e < json_object_array_length(envs); e++) {
            json_object *env = json_object_array_get_idx(envs, e);
            if (json_object_is_type(env, json_type_object))
                collect_services(env, name, owners, seen, problems);
        }
        /* Before v0.25 services hung off the project itself. */
        collect_services(project, name, owners, seen, problems);
    }
    g_hash_table_destroy(seen);
    json_object_put(projects);
    return owners;
}

/* ---- deployments ----------------------------------------------------------- */

/* A deployment row as a resource. The row names its owner in
 * applicationId/composeId; if a server leaves that out, the owner it was
 * listed under is filled in, so `application_id`/`compose_id` always say
 * whose it is. */
static IfsResource *deployment_resource(json_object *item, const Owner *o)
{
    if (!json_object_object_get_ex(item, o->field, NULL))
        json_object_object_add(item, o->field, json_object_new_string(o->id));
    return ifs_kit_resource("deployments", json_object_get(item), "deploymentId");
}

/* The owner's deployments, appended to `out`. FALSE with *err on failure. */
static gboolean list_owner(Dokploy *d, const Owner *o, GPtrArray *out, IfsError **err)
{
    json_object *rows = get_array(d, o->path, err);

    if (!rows)
        return FALSE;
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *item = json_object_array_get_idx(rows, i);
        if (json_object_is_type(item, json_type_object))
            g_ptr_array_add(out, deployment_resource(item, o));
    }
    json_object_put(rows);
    return TRUE;
}

/* deployment.readLogs: the tail as a JSON string, bounded. */
static json_object *read_log(gpointer provider, const IfsResource *r, IfsError **err)
{
    Dokploy *d = provider;
    char *path = ifs_api_path("/api/deployment.readLogs?deploymentId=", r->id,
                              "&tail=" G_STRINGIFY(LOG_TAIL_LINES));
    json_object *body = ifs_http_get_json(d->http, path, err);
    json_object *log = NULL;

    if (json_object_is_type(body, json_type_string)) {
        char *text =
            bound_log(json_object_get_string(body), (gsize)json_object_get_string_len(body));

        log = json_object_new_string(text);
        g_free(text);
    } else if (body) {
        ifs_error_propagate(err,
                            ifs_error_new(EIO, 0, NULL,
                                          "account '%s': GET %s: expected the log as a JSON string",
                                          d->account, path));
    }
    json_object_put(body);
    g_free(path);
    return log;
}

/* The log is a file beside the row's fields, not one of them. */
static void attach_log(IfsResource *r, json_object *log, IfsDetailAge age)
{
    (void)age;
    r->extra_files = json_object_new_object();
    json_object_object_add(r->extra_files, "log", json_object_get(log));
}

static gboolean deployment_finished(const IfsResource *r)
{
    json_object *row = ifs_resource_object(r);
    gboolean done = status_is_finished(ifs_json_string_field(row, "status"));

    json_object_put(row);
    return done;
}

/* The log a saved deployment showed. */
static json_object *saved_log(const IfsResource *saved)
{
    json_object *extra = ifs_resource_extra_files(saved);
    json_object *log = NULL;

    if (json_object_object_get_ex(extra, "log", &log) && json_object_is_type(log, json_type_string))
        json_object_get(log);
    else
        log = NULL;
    json_object_put(extra);
    return log;
}

static const IfsDetailSpec deployment_logs = {
    .read = read_log,
    .merge = attach_log,
    .requests_per_read = 1,
    .kept_problem = "log not refreshed, the log shown is from the last successful read",
    .missing_problem = "log not read, no log file is shown",
    .settled = deployment_finished,
    .saved_detail = saved_log,
};

/* Each deployment listed since the last call as text from here on (its
 * log comes later, as an extra file). Every owner's rows kept as trees
 * until the last owner was listed were the mount's peak memory at 25,000
 * deployments. */
static void seal_listed(GPtrArray *found, guint *sealed)
{
    for (; *sealed < found->len; (*sealed)++)
        ifs_resource_seal(g_ptr_array_index(found, *sealed));
}

/* The logs saved on disk are the last ones read, until read again (never,
 * for a deployment that had finished). */
static void dokploy_restore(gpointer state, GPtrArray *resources, gint64 saved_at)
{
    Dokploy *d = state;

    ifs_details_restore(d->logs, resources, saved_at);
}

static gboolean dokploy_list(gpointer state, GPtrArray *out, IfsError **err)
{
    Dokploy *d = state;
    GPtrArray *found = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    GHashTable *owner_of = ifs_kit_id_map_table(d->owners);
    GPtrArray *owners = discover(d, found, err);
    gboolean ok = owners != NULL;
    guint sealed = 0;

    for (guint i = 0; ok && i < owners->len; i++) {
        const Owner *o = g_ptr_array_index(owners, i);
        IfsError *oerr = NULL;
        guint before = found->len;

        if (!list_owner(d, o, found, &oerr)) {
            if (oerr->errnum == ENOENT) {
                /* Deleted since project.all: it has no deployments now. */
                g_debug("%s", oerr->message);
                ifs_error_free(oerr);
                continue;
            }
            ifs_error_propagate(err, oerr);
            ok = FALSE;
            break;
        }
        for (guint j = before; j < found->len; j++) {
            IfsResource *r = g_ptr_array_index(found, j);
            if (r->id)
                g_hash_table_replace(owner_of, g_strdup(r->id), owner_copy(o));
        }
        seal_listed(found, &sealed);
    }
    seal_listed(found, &sealed);
    if (ok) {
        ifs_details_apply(d->logs, found);
        ifs_kit_id_map_replace(d->owners, g_hash_table_ref(owner_of));
        ifs_kit_append(out, found);
    }
    if (owners)
        g_ptr_array_unref(owners);
    g_hash_table_unref(owner_of);
    g_ptr_array_unref(found);
    return ok;
}

/* There is no single-deployment read: list the owner's deployments again and
 * pick this one. The log shown is the last one read (the refresher reads
 * logs, this is called after actions). */
static IfsResource *dokploy_fetch(gpointer state, const char *kind, const char *id, IfsError **err)
{
    Dokploy *d = state;
    GPtrArray *rows;
    IfsResource *found = NULL;
    Owner *o;

    (void)kind;
    o = ifs_kit_id_map_get(d->owners, id);
    if (!o) {
        /* Not ENOENT: that would drop a deployment that may well exist. */
        ifs_error_propagate(
            err,
            ifs_error_new(EIO, 0, NULL,
                          "account '%s': deployment %s: its application or compose service is not "
                          "known until the next refresh",
                          d->account, id));
        return NULL;
    }
    rows = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    if (list_owner(d, o, rows, err)) {
        for (guint i = 0; i < rows->len && !found; i++) {
            IfsResource *r = g_ptr_array_index(rows, i);
            if (r->id && strcmp(r->id, id) == 0)
                found = ifs_resource_ref(r);
        }
        if (!found)
            ifs_error_propagate(
                err,
                ifs_error_new(ENOENT, 0, NULL,
                              "account '%s': deployment %s is no longer listed by GET %s",
                              d->account, id, o->path));
    }
    if (found)
        ifs_details_show(d->logs, found);
    g_ptr_array_unref(rows);
    owner_free(o);
    return found;
}

/* ---- controls ------------------------------------------------------------ */

static gboolean dokploy_act(gpointer state, const char *kind, const char *id, const char *file,
                            const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    Dokploy *d = state;
    gboolean remove = strcmp(file, "remove") == 0;
    const char *path = remove ? "/api/deployment.removeDeployment" : "/api/deployment.killProcess";
    json_object *body = json_object_new_object();
    IfsHttpResponse *resp;

    (void)kind;
    (void)cmd; /* "1" is the only command; control.c has checked it */
    json_object_object_add(body, "deploymentId", json_object_new_string(id));
    resp = ifs_http_request(d->http, "POST", path,
                            json_object_to_json_string_ext(
                                body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            err);
    json_object_put(body);
    if (!resp)
        return FALSE;
    /* killProcess answers nothing (void); removeDeployment the deleted row
     * (or null). Neither body changes what happened: 2xx is success. */
    out->http_status = resp->status;
    ifs_http_response_free(resp);
    if (remove) {
        out->message = g_strdup("deployment removed");
        out->resource_gone = TRUE;
        ifs_details_forget(d->logs, id);
        ifs_kit_id_map_set(d->owners, id, NULL);
    } else {
        out->message = g_strdup("process killed");
    }
    return TRUE;
}

/* tRPC's {message, code, data, issues?}: the key wrapper's 401 has no
 * code; `issues` are zod's, for input that failed validation:
 * {code, path:["deploymentId"], message}. */
static void dokploy_read_error(json_object *body, char **code, char **message)
{
    *code = g_strdup(ifs_http_error_text(body, "code"));
    *message = ifs_http_error_message(ifs_http_error_text(body, "message"),
                                      json_object_object_get(body, "issues"), "path", "message");
}

static const IfsInventoryColumns dokploy_inventory[] = {
    {"deployments",       .name = "title", .status = "status"},
    {.kind = NULL},
};

/* Self-hosted: there is no public origin, so no default url. */
const IfsProviderType ifs_provider_dokploy = {
    .schema = {.type = "dokploy", .extra_keys = dokploy_keys},
    .auth = IFS_AUTH_HEADER,
    .auth_header = "x-api-key",
    IFS_PROVIDER_MEMBERS(dokploy),
    .check_path = "/api/project.all",
    .check_proves_key = TRUE,
    .restore = dokploy_restore,
};
