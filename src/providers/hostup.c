/* HostUp API v2 (cloud.hostup.se): VPSes, power actions and their
 * asynchronous operations. */
#include <errno.h>
#include <string.h>

#include "infrafs/details.h"
#include "infrafs/jsonparse.h"
#include "infrafs/progress.h"
#include "infrafs/provider.h"
#include "kit.h"

#define PAGE_LIMIT 100
#define MAX_PAGES 100000
#define DEFAULT_DETAIL_LIMIT 50
/* As many as an account may list (max_resources). */
#define MAX_DETAIL_LIMIT 10000000

typedef struct {
    IfsHttp *http;
    const char *account; /* the http client's */
    /* Accounts with at most this many VPSes get /details and /status read
     * for their VPSes (details.h: when a VPS's list item changed, or its
     * last read is older than detail_max_age); larger ones show the list's
     * fields only. */
    long detail_limit;
    IfsDetails *details;
} Hostup;

static const char *const hostup_kinds[] = {"vps", NULL};
static const char *const hostup_keys[] = {"detail_limit", "detail_concurrency", "detail_max_age",
                                          NULL};
/* HostUp's limit is strict and its detail reads come two at a time: one
 * reader unless the account says more. */
#define DEFAULT_DETAIL_CONCURRENCY 1

/* start: when stopped; shutdown: graceful; stop: emergency forced power-off;
 * restart: graceful, `force` escalates; reset: always a hard reboot. */
static const IfsCommandSpec power_commands[] = {
    {"start",    IFS_FORCE_NEVER   },
    {"shutdown", IFS_FORCE_NEVER   },
    {"stop",     IFS_FORCE_REQUIRED},
    {"restart",  IFS_FORCE_OPTIONAL},
    {"reset",    IFS_FORCE_REQUIRED},
    {NULL,       0                 },
};

static const IfsControlSpec hostup_controls[] = {
    {"vps", "power", power_commands},
    {NULL,  NULL,    NULL          },
};

static const IfsDetailSpec vps_details;

static gpointer hostup_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    guint64 limit = DEFAULT_DETAIL_LIMIT;
    guint concurrency = DEFAULT_DETAIL_CONCURRENCY, max_age_s = IFS_DEFAULT_DETAIL_MAX_AGE_S;
    Hostup *h;

    if (!ifs_account_number(cfg, "detail_limit", 0, MAX_DETAIL_LIMIT, NULL, &limit, err) ||
        !ifs_details_config(cfg, &concurrency, &max_age_s, err))
        return NULL;
    h = g_new0(Hostup, 1);
    h->http = http;
    h->account = ifs_http_account(http);
    h->detail_limit = (long)limit;
    h->details = ifs_details_new(&vps_details, h, http, concurrency, max_age_s);
    return h;
}

static void hostup_close(gpointer state)
{
    Hostup *h = state;

    ifs_details_free(h->details);
    g_free(h);
}

static char *vps_path(const char *id, const char *suffix)
{
    return ifs_api_path("/api/v2/vps/", id, suffix);
}

/* A bare object, or one wrapped as {"data": {...}}. */
static json_object *get_object(Hostup *h, const char *path, IfsError **err)
{
    return ifs_kit_get_object(h->http, h->account, path, TRUE, err);
}

/* A VPS's detail: /details (action gates and more) and /status (live
 * power state, usage), read together, as {"details": ..., "status": ...}. */
static json_object *read_vps_detail(gpointer provider, const IfsResource *r, IfsError **err)
{
    static const char *const parts[] = {"details", "status"};
    json_object *detail = json_object_new_object();

    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++) {
        char *suffix = g_strconcat("/", parts[i], NULL);
        char *path = vps_path(r->id, suffix);
        json_object *part = get_object(provider, path, err);

        g_free(path);
        g_free(suffix);
        if (!part) {
            json_object_put(detail);
            return NULL;
        }
        json_object_object_add(detail, parts[i], part);
    }
    return detail;
}

/* /details adds what the list lacks (nested objects included); /status's
 * live values replace the list's, unless they are older than it. */
static void merge_vps_detail(IfsResource *r, json_object *detail, IfsDetailAge age)
{
    json_object *part;

    if (age == IFS_DETAIL_RESTORED) {
        ifs_json_merge_fields(r->object, detail, FALSE);
        return;
    }
    if (json_object_object_get_ex(detail, "details", &part))
        ifs_json_merge_fields(r->object, part, FALSE);
    if (json_object_object_get_ex(detail, "status", &part))
        ifs_json_merge_fields(r->object, part, age == IFS_DETAIL_FRESH);
}

static const IfsDetailSpec vps_details = {
    .read = read_vps_detail,
    .merge = merge_vps_detail,
    .requests_per_read = 2,
    .kept_problem = "details not refreshed, the fields of /details and /status (actions, "
                    "ip_addresses, ...) are from the last successful read",
};

static IfsResource *vps_resource(json_object *item)
{
    return ifs_kit_resource("vps", json_object_get(item), "id");
}

/* A walk of the cursor-paginated list: the VPSes found so far. */
typedef struct {
    Hostup *h;
    GPtrArray *found;
    guint sealed; /* found's first `sealed` are sealed */
} VpsWalk;

static char *vps_page_path(gpointer ctx, const IfsKitPage *page)
{
    char *escaped = page->cursor ? g_uri_escape_string(page->cursor, NULL, FALSE) : NULL;
    char *path = g_strdup_printf("/api/v2/vps?limit=%d%s%s", PAGE_LIMIT, escaped ? "&cursor=" : "",
                                 escaped ? escaped : "");

    (void)ctx;
    g_free(escaped);
    return path;
}

/* {"data":[...],"hasMore":true,"nextCursor":"..."}; the list ends at a
 * page without both. */
static gboolean take_vps_page(gpointer ctx, const char *path, json_object *answer, IfsKitPage *page,
                              IfsError **err)
{
    VpsWalk *w = ctx;
    json_object *data = ifs_kit_data_array(answer, w->h->account, path, err);
    json_object *more = NULL, *next = NULL;
    guint before = w->found->len;

    if (!data)
        return FALSE;
    for (size_t i = 0; i < json_object_array_length(data); i++) {
        json_object *item = json_object_array_get_idx(data, i);
        if (json_object_is_type(item, json_type_object))
            g_ptr_array_add(w->found, vps_resource(item));
    }
    ifs_progress_page(w->found->len - before);
    /* Too many for details: nothing will change these any more, so keep
     * them as text now rather than every page's tree until the end (at
     * 100,000 VPSes that is the refresh's peak memory). */
    if ((long)w->found->len > w->h->detail_limit)
        for (; w->sealed < w->found->len; w->sealed++)
            ifs_resource_seal(g_ptr_array_index(w->found, w->sealed));
    json_object_object_get_ex(answer, "hasMore", &more);
    json_object_object_get_ex(answer, "nextCursor", &next);
    if (json_object_get_boolean(more) && json_object_is_type(next, json_type_string) &&
        json_object_get_string_len(next) > 0)
        page->next_cursor = json_object_get_string(next);
    else
        page->done = TRUE;
    return TRUE;
}

static const IfsKitPager vps_pager = {
    .what = "listing VPSes",
    .max_pages = MAX_PAGES,
    .path = vps_page_path,
    .take = take_vps_page,
};

static gboolean hostup_list(gpointer state, GPtrArray *out, IfsError **err)
{
    Hostup *h = state;
    VpsWalk w = {h, g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref), 0};

    if (!ifs_kit_read_pages(h->http, h->account, &vps_pager, &w, err)) {
        g_ptr_array_unref(w.found);
        return FALSE;
    }
    if ((long)w.found->len <= h->detail_limit)
        ifs_details_apply(h->details, w.found);
    else
        ifs_details_clear(h->details);
    ifs_kit_append(out, w.found);
    g_ptr_array_unref(w.found);
    return TRUE;
}

static IfsResource *hostup_fetch(gpointer state, const char *kind, const char *id, IfsError **err)
{
    Hostup *h = state;
    char *path = vps_path(id, "");
    json_object *obj;
    IfsResource *r;

    (void)kind;
    obj = get_object(h, path, err);
    g_free(path);
    if (!obj)
        return NULL;
    r = ifs_resource_new("vps", id, obj);
    ifs_details_read_now(h->details, r);
    return r;
}

/* The VPSes saved on disk stand in for their details until read again. */
static void hostup_restore(gpointer state, GPtrArray *resources, gint64 saved_at)
{
    Hostup *h = state;

    if ((long)resources->len <= h->detail_limit)
        ifs_details_restore(h->details, resources, saved_at);
}

/* "Check actions.canRestart before calling": refuse locally, with the API's
 * reason, when the gate says no. A missing gate does not block. */
static gboolean check_gate(Hostup *h, const char *id, const char *verb, IfsError **err)
{
    char *path = vps_path(id, "/details");
    json_object *details = get_object(h, path, err);
    json_object *actions, *gate, *allowed, *reason;
    char *gate_name;
    gboolean ok = TRUE;

    g_free(path);
    if (!details) {
        ifs_error_prefix(*err, "checking whether '%s' is allowed: ", verb);
        return FALSE;
    }
    gate_name = g_strdup_printf("can%c%s", g_ascii_toupper(verb[0]), verb + 1);
    if (json_object_object_get_ex(details, "actions", &actions) &&
        json_object_object_get_ex(actions, gate_name, &gate) &&
        json_object_object_get_ex(gate, "allowed", &allowed) &&
        json_object_is_type(allowed, json_type_boolean) && !json_object_get_boolean(allowed)) {
        const char *why = json_object_object_get_ex(gate, "reason", &reason) &&
                json_object_is_type(reason, json_type_string)
            ? json_object_get_string(reason)
            : "no reason given";
        ifs_error_propagate(err,
                            ifs_error_new(EBUSY, 0, gate_name,
                                          "account '%s': %s is not allowed for %s now: %s",
                                          h->account, verb, id, why));
        ok = FALSE;
    }
    g_free(gate_name);
    json_object_put(details);
    return ok;
}

/* The 202 envelope: {"operation":{"status","jobId","pollUrl","result"}}. */
static gboolean parse_operation(json_object *body, IfsActionResult *out)
{
    json_object *op;

    if (!json_object_object_get_ex(body, "operation", &op) ||
        !json_object_is_type(op, json_type_object))
        return FALSE;
    out->op_status = g_strdup(ifs_json_string_field(op, "status"));
    out->op_job_id = g_strdup(ifs_json_string_field(op, "jobId"));
    out->op_poll_url = g_strdup(ifs_json_string_field(op, "pollUrl"));
    return out->op_poll_url != NULL;
}

static gboolean hostup_act(gpointer state, const char *kind, const char *id, const char *file,
                           const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    Hostup *h = state;
    const char *body = NULL;
    char *suffix, *path;
    IfsHttpResponse *resp;
    json_object *answer;
    gboolean ok;

    (void)kind;
    (void)file;
    if (!check_gate(h, id, cmd->verb, err))
        return FALSE;
    if (strcmp(cmd->verb, "restart") == 0 && cmd->force)
        body = "{\"force\":true}";
    suffix = g_strconcat("/actions/", cmd->verb, NULL);
    path = vps_path(id, suffix);
    resp = ifs_http_request(h->http, "POST", path, body, err);
    g_free(suffix);
    if (!resp) {
        g_free(path);
        return FALSE;
    }
    out->http_status = resp->status;
    answer = ifs_json_parse(resp->body, resp->body_len, NULL, NULL);
    ok = answer && parse_operation(answer, out);
    if (!ok && (resp->status == 202 || !json_object_is_type(answer, json_type_object)))
        ifs_error_propagate(err,
                            ifs_kit_action_unsure(h->account, path, "HostUp", resp->status, NULL,
                                                  "the answer could not be read",
                                                  "the action may have been accepted: check "
                                                  "the VPS's state before trying again"));
    else if (!ok) {
        ok = TRUE; /* a JSON answer without an operation: done, nothing to poll */
        out->message = g_strdup("accepted");
    }
    json_object_put(answer);
    ifs_http_response_free(resp);
    g_free(path);
    return ok;
}

/* pollUrl is host-relative and outside /api/v2 ("/api/jobs/job_..."). */
static gboolean hostup_poll(gpointer state, const char *poll_url, IfsOpState *state_out,
                            char **status_text, IfsError **err)
{
    Hostup *h = state;
    json_object *body, *op, *data, *v;
    gboolean ok = TRUE;

    if (!poll_url || poll_url[0] != '/' || poll_url[1] == '/') {
        ifs_error_propagate(
            err,
            ifs_error_new(EIO, 0, NULL,
                          "account '%s': refusing to poll '%s': not a path on the API's host",
                          h->account, poll_url ? poll_url : "(none)"));
        return FALSE;
    }
    body = ifs_http_get_json(h->http, poll_url, err);
    if (!body)
        return FALSE;
    if (json_object_object_get_ex(body, "operation", &op) && ifs_json_string_field(op, "status")) {
        const char *status = ifs_json_string_field(op, "status");
        *status_text = g_strdup(status);
        *state_out = strcmp(status, "completed") == 0 ? IFS_OP_COMPLETED
            : strcmp(status, "failed") == 0           ? IFS_OP_FAILED
                                                      : IFS_OP_PENDING;
    } else if (json_object_object_get_ex(body, "data", &data) &&
               json_object_is_type(data, json_type_object)) {
        /* The legacy jobs shape: isCompleted / isFailed flags. */
        gboolean done =
            json_object_object_get_ex(data, "isCompleted", &v) && json_object_get_boolean(v);
        gboolean failed =
            json_object_object_get_ex(data, "isFailed", &v) && json_object_get_boolean(v);
        const char *word = ifs_json_string_field(data, "state");
        if (!word)
            word = ifs_json_string_field(data, "status");
        *state_out = failed ? IFS_OP_FAILED : done ? IFS_OP_COMPLETED : IFS_OP_PENDING;
        *status_text = g_strdup(failed     ? "failed"
                                    : done ? "completed"
                                    : word ? word
                                           : "in_progress");
    } else {
        ifs_error_propagate(
            err,
            ifs_error_new(
                EIO, 0, NULL,
                "account '%s': GET %s: unrecognised job answer (neither \"operation\" nor "
                "\"data\")",
                h->account, poll_url));
        ok = FALSE;
    }
    json_object_put(body);
    return ok;
}

/* RFC 7807 problem details: `code` is HostUp's stable word (the one to
 * branch on), `detail` the sentence (else `title`), `errors` what failed
 * validation ({pointer, detail, code}). The legacy API's {error, message, code}: its 429 has no
 * `code`, and then `error` is the code. */
static void hostup_read_error(json_object *body, char **code, char **message)
{
    json_object *number = json_object_object_get(body, "code");
    const char *word = json_object_is_type(number, json_type_int)
        ? json_object_get_string(number)
        : ifs_http_error_text(body, "code");
    const char *text = ifs_http_error_text(body, "detail");

    if (!text)
        text = ifs_http_error_text(body, "message");
    if (!word && text)
        word = ifs_http_error_text(body, "error");
    if (!text)
        text = ifs_http_error_text(body, "title");
    *code = g_strdup(word);
    *message =
        ifs_http_error_message(text, json_object_object_get(body, "errors"), "pointer", "detail");
}

static const IfsInventoryColumns hostup_inventory[] = {
    {"vps",                    .name = "name", .status = "power_state", .ip = "primary_ip",
     .region = "location/datacenter", .addresses = "ip_addresses/*/address"},
    {.kind = NULL},
};

const IfsProviderType ifs_provider_hostup = {
    .schema = {.type = "hostup",
               .default_url = "https://cloud.hostup.se",
               .extra_keys = hostup_keys},
    .auth = IFS_AUTH_BEARER,
    IFS_PROVIDER_MEMBERS(hostup),
    .check_path = "/api/v2/vps?limit=1",
    .check_proves_key = TRUE,
    .poll = hostup_poll,
    .restore = hostup_restore,
};
