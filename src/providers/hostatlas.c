/* HostAtlas API v1 (api.hostatlas.app): servers with their services and
 * domains, incidents, and heartbeats with a `ping` control. See
 * doc/SEMANTICS.md §10.4 (HostAtlas) and §3-§5. */
#include <errno.h>
#include <string.h>

#include "infrafs/details.h"
#include "infrafs/jsonparse.h"
#include "infrafs/progress.h"
#include "infrafs/provider.h"
#include "kit.h"

#define API_PREFIX "/api/v1/"
#define PER_PAGE 100
/* 100,000 items at 100 a page; an API still answering beyond that is
 * looping, and the refresh must end. */
#define MAX_PAGES 1000

typedef struct {
    IfsHttp *http;
    const char *account; /* the http client's */
    /* Each server's GET /servers/{id}: only when its list item changed or
     * the last read is older than detail_max_age (details.h). */
    IfsDetails *details;

    /* heartbeat id -> ping_url as the API last gave it */
    IfsKitIdMap *ping_urls;
} Hostatlas;

static const char *const hostatlas_kinds[] = {"servers", "incidents", "heartbeats", NULL};
static const char *const hostatlas_keys[] = {"detail_concurrency", "detail_max_age",
                                             "webhook_listen", "webhook_secret_file", NULL};

static const IfsControlSpec hostatlas_controls[] = {
    {"heartbeats", "ping", ifs_trigger_commands},
    {NULL,         NULL,   NULL                },
};

static const IfsDetailSpec server_details;

static gpointer hostatlas_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    guint concurrency = IFS_DEFAULT_CONCURRENCY, max_age_s = IFS_DEFAULT_DETAIL_MAX_AGE_S;
    Hostatlas *h;

    if (!ifs_details_config(cfg, &concurrency, &max_age_s, err))
        return NULL;
    h = g_new0(Hostatlas, 1);
    h->http = http;
    h->account = ifs_http_account(http);
    h->details = ifs_details_new(&server_details, h, http, concurrency, max_age_s);
    h->ping_urls = ifs_kit_id_map_new(ifs_kit_copy_text, g_free);
    return h;
}

static void hostatlas_close(gpointer state)
{
    Hostatlas *h = state;

    ifs_details_free(h->details);
    ifs_kit_id_map_free(h->ping_urls);
    g_free(h);
}

/* ---- small JSON helpers --------------------------------------------------- */

/* As ifs_json_string_field, and NULL for an empty string too. */
static const char *string_field(json_object *obj, const char *key)
{
    const char *text = ifs_json_string_field(obj, key);

    return text && *text ? text : NULL;
}

static gboolean int_field(json_object *obj, const char *key, gint64 *out)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return FALSE;
    *out = json_object_get_int64(v);
    return TRUE;
}

/* HostAtlas ids are integers (47); a string id is taken as it is. NULL when
 * the item has neither. */
static char *item_id(json_object *item)
{
    gint64 n;
    const char *s;

    if (int_field(item, "id", &n))
        return g_strdup_printf("%" G_GINT64_FORMAT, n);
    s = string_field(item, "id");
    return s ? g_strdup(s) : NULL;
}

/* ---- paged lists ------------------------------------------------------------ */

/* Called for every object item of a list, in order, each id once; returns
 * FALSE to stop the walk (the item sought was found). */
typedef gboolean (*ItemFn)(Hostatlas *h, json_object *item, gpointer data);

/* A walk of one paged list. */
typedef struct {
    Hostatlas *h;
    const char *what; /* "servers" */
    ItemFn each;
    gpointer data;
    GHashTable *ids; /* of the items read */
} ListWalk;

static char *page_path(gpointer ctx, const IfsKitPage *page)
{
    ListWalk *w = ctx;
    char *path;

    if (page->cursor) {
        char *escaped = g_uri_escape_string(page->cursor, NULL, FALSE);
        path = g_strdup_printf(API_PREFIX "%s?per_page=%d&cursor=%s", w->what, PER_PAGE, escaped);
        g_free(escaped);
    } else {
        path =
            g_strdup_printf(API_PREFIX "%s?page=%u&per_page=%d", w->what, page->number, PER_PAGE);
    }
    return path;
}

/* The next cursor, from meta.next_cursor (or a top-level next_cursor). */
static const char *next_cursor_of(json_object *body, json_object *meta)
{
    const char *c = meta ? string_field(meta, "next_cursor") : NULL;

    return c ? c : string_field(body, "next_cursor");
}

/* Decide what comes after the page just read. FALSE with *err when the API
 * answered another page than the one asked for. */
static gboolean plan_next(ListWalk *w, const char *path, json_object *body, guint items,
                          IfsKitPage *page, IfsError **err)
{
    json_object *meta = NULL;
    gint64 number, last, total, per_page;

    if (json_object_object_get_ex(body, "meta", &meta) &&
        !json_object_is_type(meta, json_type_object))
        meta = NULL;
    page->next_cursor = next_cursor_of(body, meta);
    if (page->next_cursor)
        return TRUE;
    /* The cursor form ends without a next cursor. */
    if (page->cursor || items == 0) {
        page->done = TRUE;
        return TRUE;
    }
    if (meta && (int_field(meta, "page", &number) || int_field(meta, "current_page", &number)) &&
        number != page->number) {
        ifs_error_propagate(
            err,
            ifs_error_new(EIO, 0, NULL,
                          "account '%s': GET %s: the API answered page %" G_GINT64_FORMAT
                          " instead of page %u; stopping rather than reading the same page forever",
                          w->h->account, path, number, page->number));
        return FALSE;
    }
    if (meta && (int_field(meta, "last_page", &last) || int_field(meta, "total_pages", &last)))
        page->done = page->number >= last;
    else if (meta && int_field(meta, "total", &total))
        page->done = (gint64)page->number *
                (int_field(meta, "per_page", &per_page) && per_page > 0 ? per_page : PER_PAGE) >=
            total;
    else
        page->done = items < PER_PAGE; /* no meta: a short page is the last */
    return TRUE;
}

/* One page: a bare array (an unpaged answer, everything at once), or
 * {"data":[...], "meta":{...}}. */
static gboolean take_page(gpointer ctx, const char *path, json_object *body, IfsKitPage *page,
                          IfsError **err)
{
    ListWalk *w = ctx;
    json_object *items = NULL;
    guint fresh = 0, n;
    gboolean stopped = FALSE;

    if (json_object_is_type(body, json_type_array)) {
        items = body;
        page->done = TRUE;
    } else if (!(items = ifs_kit_data_array(body, w->h->account, path, err))) {
        return FALSE;
    }
    n = (guint)json_object_array_length(items);
    for (guint i = 0; i < n && !stopped; i++) {
        json_object *item = json_object_array_get_idx(items, i);
        char *id;

        if (!json_object_is_type(item, json_type_object))
            continue;
        id = item_id(item);
        /* Items that move between pages while we read show up twice. */
        if (id && !g_hash_table_add(w->ids, id))
            continue;
        fresh++;
        stopped = !w->each(w->h, item, w->data);
    }
    ifs_progress_page(fresh);
    if (stopped || page->done) {
        page->done = TRUE;
        return TRUE;
    }
    page->nothing_new = n > 0 && fresh == 0;
    return plan_next(w, path, body, n, page, err);
}

/* Every item of `what` ("servers"), page by page, `page`/`per_page` with
 * `meta`, or `cursor` when the API hands out meta.next_cursor. */
static gboolean walk_list(Hostatlas *h, const char *what, ItemFn each, gpointer data,
                          IfsError **err)
{
    ListWalk w = {h, what, each, data,
                  g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    char *listing = g_strconcat("listing ", what, NULL);
    IfsKitPager pager = {
        .what = listing,
        .max_pages = MAX_PAGES,
        .path = page_path,
        .take = take_page,
    };
    gboolean ok = ifs_kit_read_pages(h->http, h->account, &pager, &w, err);

    g_free(listing);
    g_hash_table_destroy(w.ids);
    return ok;
}

/* ---- resources ---------------------------------------------------------------- */

static IfsResource *resource_for(const char *kind, json_object *item)
{
    char *id = item_id(item);
    IfsResource *r = ifs_resource_new(kind, id, json_object_get(item));

    if (!id)
        r->problem = g_strdup("no usable id (not a whole number or a string without NUL)");
    g_free(id);
    return r;
}

typedef struct {
    const char *kind;
    GPtrArray *out;
    GHashTable *ping_urls; /* heartbeats: id -> ping_url, filled */
} Collect;

static gboolean collect_item(Hostatlas *h, json_object *item, gpointer data)
{
    Collect *c = data;
    IfsResource *r = resource_for(c->kind, item);
    const char *url = string_field(item, "ping_url");

    (void)h;
    if (c->ping_urls && r->id && url)
        g_hash_table_replace(c->ping_urls, g_strdup(r->id), g_strdup(url));
    g_ptr_array_add(c->out, r);
    return TRUE;
}

typedef struct {
    const char *id;
    json_object *found; /* a new reference */
} Find;

static gboolean find_item(Hostatlas *h, json_object *item, gpointer data)
{
    Find *f = data;
    char *id = item_id(item);
    gboolean match = id && strcmp(id, f->id) == 0;

    (void)h;
    g_free(id);
    if (match)
        f->found = json_object_get(item);
    return !match;
}

/* One incident or heartbeat, looked up in its list: the API documents no
 * endpoint for a single one. */
static json_object *find_in_list(Hostatlas *h, const char *kind, const char *id, IfsError **err)
{
    Find f = {.id = id};

    if (!walk_list(h, kind, find_item, &f, err))
        return NULL;
    if (!f.found)
        ifs_error_propagate(err,
                            ifs_error_new(ENOENT, 0, NULL,
                                          "account '%s': %s %s is no longer listed", h->account,
                                          kind, id));
    return f.found;
}

/* ---- server details ---------------------------------------------------------- */

static char *server_path(const char *id)
{
    return ifs_api_path(API_PREFIX "servers/", id, "");
}

/* GET /servers/{id}: a bare object (accept {"data": {...}} too). */
static json_object *get_detail(Hostatlas *h, const char *id, IfsError **err)
{
    char *path = server_path(id);
    json_object *obj = ifs_kit_get_object(h->http, h->account, path, TRUE, err);

    g_free(path);
    return obj;
}

static json_object *read_server_detail(gpointer provider, const IfsResource *r, IfsError **err)
{
    return get_detail(provider, r->id, err);
}

/* The detail's fields over the list's (services[] and domains[] come only
 * from there), an older detail's under them: details.c's default merge. */
static const IfsDetailSpec server_details = {
    .read = read_server_detail,
    .requests_per_read = 1,
    .kept_problem = "details not refreshed, the detail fields (services, domains, ...) are "
                    "from the last successful read",
};

/* ---- the provider interface -------------------------------------------------- */

/* The servers saved on disk stand in for their details until read again. */
static void hostatlas_restore(gpointer state, GPtrArray *resources, gint64 saved_at)
{
    Hostatlas *h = state;
    GPtrArray *servers = g_ptr_array_new();

    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);

        if (g_strcmp0(r->kind, "servers") == 0)
            g_ptr_array_add(servers, r);
    }
    ifs_details_restore(h->details, servers, saved_at);
    g_ptr_array_unref(servers);
}

static gboolean hostatlas_list(gpointer state, GPtrArray *out, IfsError **err)
{
    Hostatlas *h = state;
    GPtrArray *servers = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    GPtrArray *others = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    GHashTable *ping_urls = ifs_kit_id_map_table(h->ping_urls);
    Collect c_servers = {"servers", servers, NULL};
    Collect c_incidents = {"incidents", others, NULL};
    Collect c_heartbeats = {"heartbeats", others, ping_urls};
    /* Every list first: a failed one fails the refresh before any detail
     * request is spent. */
    gboolean ok = walk_list(h, "servers", collect_item, &c_servers, err) &&
        walk_list(h, "incidents", collect_item, &c_incidents, err) &&
        walk_list(h, "heartbeats", collect_item, &c_heartbeats, err);

    if (ok) {
        ifs_details_apply(h->details, servers);
        ifs_kit_id_map_replace(h->ping_urls, g_hash_table_ref(ping_urls));
        ifs_kit_append(out, servers);
        ifs_kit_append(out, others);
    }
    g_hash_table_unref(ping_urls);
    g_ptr_array_unref(servers);
    g_ptr_array_unref(others);
    return ok;
}

static void remember_ping_url(Hostatlas *h, const char *id, json_object *heartbeat)
{
    ifs_kit_id_map_set(h->ping_urls, id, g_strdup(string_field(heartbeat, "ping_url")));
}

/* Servers: GET /servers/{id} (the list's own fields, such as
 * services_count, come back with the next refresh). Incidents and
 * heartbeats: their list, walked until the id shows up. */
static IfsResource *hostatlas_fetch(gpointer state, const char *kind, const char *id,
                                    IfsError **err)
{
    Hostatlas *h = state;
    json_object *obj;

    if (strcmp(kind, "servers") == 0)
        obj = get_detail(h, id, err);
    else
        obj = find_in_list(h, kind, id, err);
    if (!obj)
        return NULL;
    if (strcmp(kind, "heartbeats") == 0)
        remember_ping_url(h, id, obj);
    return ifs_resource_new(kind, id, obj);
}

/* The heartbeat's ping_url as the API gave it (g_free), from the last
 * refresh or, when infrafs has not seen it yet, from the list. */
static char *ping_url_of(Hostatlas *h, const char *id, IfsError **err)
{
    char *url;
    json_object *heartbeat;

    url = ifs_kit_id_map_get(h->ping_urls, id);
    if (url)
        return url;
    heartbeat = find_in_list(h, "heartbeats", id, err);
    if (!heartbeat)
        return NULL;
    url = g_strdup(string_field(heartbeat, "ping_url"));
    remember_ping_url(h, id, heartbeat);
    json_object_put(heartbeat);
    if (!url)
        ifs_error_propagate(
            err,
            ifs_error_new(EIO, 0, NULL,
                          "account '%s': heartbeat %s has no ping_url in the API's answer; "
                          "nothing to request",
                          h->account, id));
    return url;
}

/* `echo 1 > ping`: one GET of the heartbeat's ping_url, opaque, wherever it
 * points (HostAtlas documents GET or POST for its ping URLs, and every
 * example is a plain `curl URL`). The key goes along only when the URL is
 * on the account's own origin. */
static gboolean hostatlas_act(gpointer state, const char *kind, const char *id, const char *file,
                              const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    Hostatlas *h = state;
    IfsError *failure = NULL;
    IfsHttpResponse *resp;
    char *url;

    /* heartbeats/ping is its only control, and act() is called only for a
     * control in hostatlas_controls (provider.h). */
    (void)kind;
    (void)file;
    (void)cmd;
    url = ping_url_of(h, id, err);
    if (!url)
        return FALSE;
    resp = ifs_http_request_url(h->http, "GET", url, NULL, &failure);
    g_free(url);
    if (!resp) {
        /* A URL that cannot be requested is a bad answer of the API's, not
         * bad input of the user's. */
        if (failure->errnum == EINVAL && failure->http_status == 0)
            failure->errnum = EIO;
        ifs_error_prefix(failure, "pinging heartbeat %s: ", id);
        ifs_error_propagate(err, failure);
        return FALSE;
    }
    out->http_status = resp->status;
    out->message = g_strdup("pinged");
    ifs_http_response_free(resp);
    return TRUE;
}

/* HostAtlas documents "a machine-readable error code, a human-readable
 * message, the HTTP status" but not their names: {"error":{"code",
 * "message"}} and {"code","message","status"} are read, a numeric code as
 * well, and field errors listed as {field, message}; so is OAuth's
 * {"error":"<code>","error_description"}, as bearer-key APIs answer. */
static void hostatlas_read_error(json_object *body, char **code, char **message)
{
    json_object *nested = json_object_object_get(body, "error");
    json_object *holder = json_object_is_type(nested, json_type_object) ? nested : body;
    json_object *number = json_object_object_get(holder, "code");
    const char *text = ifs_http_error_text(holder, "message");
    const char *word = holder == body ? ifs_http_error_text(body, "error") : NULL;
    json_object *errors = json_object_object_get(holder, "errors");

    if (!text)
        text = ifs_http_error_text(body, "error_description");
    if (json_object_is_type(number, json_type_int) || ifs_http_error_text(holder, "code"))
        *code = g_strdup(json_object_get_string(number));
    else if (word && text) /* {"error":"<code>","message"|"error_description":...} */
        *code = g_strdup(word);
    else if (word) /* a lone {"error":"<sentence>"} */
        text = word;
    *message = ifs_http_error_message(
        text, errors ? errors : json_object_object_get(body, "errors"), "field", "message");
}

static const IfsInventoryColumns hostatlas_inventory[] = {
    {"servers",           .name = "hostname", .status = "status", .ip = "ip_address"},
    {"incidents", .name = "title", .status = "status"},
    {"heartbeats",                   .name = "name", .status = "status"},
    {.kind = NULL   },
};

/* ---- webhooks --------------------------------------------------------------- */

/* The events HostAtlas documents, and where in `data` each one names the
 * resource to read again. An alert or an expiring certificate is about a
 * server; one that names none is ignored. */
static const struct {
    const char *event;
    const char *member;
    const char *kind;
} webhook_events[] = {
    {"server.offline",    "server",    "servers"   },
    {"server.online",     "server",    "servers"   },
    {"incident.created",  "incident",  "incidents" },
    {"incident.resolved", "incident",  "incidents" },
    {"heartbeat.missed",  "heartbeat", "heartbeats"},
    {"alert.triggered",   "server",    "servers"   },
    {"alert.resolved",    "server",    "servers"   },
    {"ssl.expiring",      "server",    "servers"   },
};

static gboolean hostatlas_webhook_parse(const char *body, size_t len, char **kind, char **id,
                                        char **delivery_id, IfsError **err)
{
    json_object *root = ifs_json_parse(body, len, NULL, NULL);
    json_object *data = NULL, *subject = NULL;
    const char *event = root ? ifs_json_string_field(root, "event") : NULL;
    const char *delivery = root ? ifs_json_string_field(root, "delivery_id") : NULL;
    gsize i;

    *kind = *id = *delivery_id = NULL;
    if (!event) {
        ifs_error_propagate(err,
                            ifs_error_new(EINVAL, 400, NULL,
                                          "not a HostAtlas event: "
                                          "no JSON object with a string \"event\""));
        json_object_put(root);
        return FALSE;
    }
    *delivery_id = g_strdup(delivery);
    for (i = 0; i < G_N_ELEMENTS(webhook_events); i++)
        if (strcmp(event, webhook_events[i].event) == 0)
            break;
    if (i < G_N_ELEMENTS(webhook_events) && json_object_object_get_ex(root, "data", &data) &&
        json_object_object_get_ex(data, webhook_events[i].member, &subject)) {
        *id = item_id(subject);
        *kind = *id ? g_strdup(webhook_events[i].kind) : NULL;
    }
    json_object_put(root);
    return TRUE;
}

static const IfsWebhookSpec hostatlas_webhook = {
    .signature_header = "X-HostAtlas-Signature",
    .delivery_header = "X-HostAtlas-Delivery",
    .parse = hostatlas_webhook_parse,
};

const IfsProviderType ifs_provider_hostatlas = {
    .schema = {.type = "hostatlas",
               .default_url = "https://api.hostatlas.app",
               .extra_keys = hostatlas_keys},
    .auth = IFS_AUTH_BEARER,
    IFS_PROVIDER_MEMBERS(hostatlas),
    .webhook = &hostatlas_webhook,
    .check_path = "/api/v1/servers?page=1&per_page=1",
    .check_proves_key = TRUE,
    .restore = hostatlas_restore,
};
