/* Pooled curl handles, timeouts and cancellation; ifs_http_request (with
 * its retries), absolute URLs, and the client's life cycle. */
#include "http_private.h"

#include "infrafs/backoff.h"
#include "infrafs/jsonparse.h"

#include <errno.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RETRIES 3u
#define DEFAULT_MAX_RETRY_WAIT_S 60u

/* Backoff between read retries when the server did not say how long to wait:
 * 0.5 s, 1 s, 2 s, ... never more than this. */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000

/* Idle easy handles kept for keep-alive; more threads than this still work,
 * their extra handles are simply closed after use. */
#define POOL_MAX_IDLE 8

/* ------------------------------------------------------------------------ */
/* libcurl set-up and the handle pool                                        */

static gpointer init_curl_once(gpointer unused)
{
    (void)unused;
    /* curl_global_init is not thread-safe itself, hence the GOnce. */
    return GINT_TO_POINTER(curl_global_init(CURL_GLOBAL_DEFAULT));
}

static gboolean ensure_curl_initialized(void)
{
    static GOnce once = G_ONCE_INIT;

    return GPOINTER_TO_INT(g_once(&once, init_curl_once, NULL)) == CURLE_OK;
}

static void share_lock(CURL *curl, curl_lock_data data, curl_lock_access access, void *user)
{
    IfsHttp *http = user;

    (void)curl;
    (void)access;
    g_mutex_lock(&http->share_locks[data]);
}

static void share_unlock(CURL *curl, curl_lock_data data, void *user)
{
    IfsHttp *http = user;

    (void)curl;
    g_mutex_unlock(&http->share_locks[data]);
}

static void share_init(IfsHttp *http)
{
    for (gsize i = 0; i < G_N_ELEMENTS(http->share_locks); i++)
        g_mutex_init(&http->share_locks[i]);
    http->share = curl_share_init();
    if (!http->share)
        return; /* out of memory: each handle keeps its own connections */
    curl_share_setopt(http->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(http->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(http->share, CURLSHOPT_USERDATA, http);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

/* After every handle that used it was cleaned up. */
static void share_clear(IfsHttp *http)
{
    if (http->share)
        curl_share_cleanup(http->share);
    for (gsize i = 0; i < G_N_ELEMENTS(http->share_locks); i++)
        g_mutex_clear(&http->share_locks[i]);
}

CURL *http_pool_acquire(IfsHttp *http)
{
    CURL *curl = NULL;

    g_mutex_lock(&http->pool_lock);
    if (http->idle_handles->len > 0)
        curl = g_ptr_array_steal_index(http->idle_handles, http->idle_handles->len - 1);
    g_mutex_unlock(&http->pool_lock);
    return curl ? curl : curl_easy_init();
}

void http_pool_release(IfsHttp *http, CURL *curl)
{
    /* Reset drops every option (and with them pointers into the finished
     * request's stack) but keeps the live connection for the next request. */
    curl_easy_reset(curl);
    g_mutex_lock(&http->pool_lock);
    if (http->idle_handles->len < POOL_MAX_IDLE) {
        g_ptr_array_add(http->idle_handles, curl);
        curl = NULL;
    }
    g_mutex_unlock(&http->pool_lock);
    if (curl)
        curl_easy_cleanup(curl);
}

/* ------------------------------------------------------------------------ */
/* Retries                                                                    */

static gulong backoff_us(const IfsHttp *http, unsigned retry)
{
    gint64 ms = ifs_backoff(BACKOFF_FIRST_MS, BACKOFF_MAX_MS, retry);

    ms = MIN(ms, (gint64)http->max_retry_wait_s * 1000);
    return (gulong)(ms * 1000);
}

static void note_attempts(IfsError *err, unsigned attempts)
{
    char *message;

    if (attempts < 2)
        return;
    message = g_strdup_printf("%s (gave up after %u attempts)", err->message, attempts);
    g_free(err->message);
    err->message = message;
}

/* A "." or ".." segment, which libcurl or the server resolves: the request
 * would go to another endpoint than the one named (/vps/../details is
 * /details), still with the account's credentials. An empty segment ("//")
 * is an empty id, which servers often fold into the next segment. */
static const char *bad_segment(const char *path)
{
    size_t end = strcspn(path, "?#");

    for (size_t i = 0; i < end && path[i] == '/';) {
        size_t len = strcspn(path + i + 1, "/?#");

        if (len == 0 && i + 1 < end)
            return "an empty segment ('//')";
        if ((len == 1 && path[i + 1] == '.') ||
            (len == 2 && path[i + 1] == '.' && path[i + 2] == '.'))
            return "a '.' or '..' segment";
        i += 1 + len;
    }
    return NULL;
}

static IfsError *refuse_request(const IfsHttp *http, const char *path, const char *where)
{
    const char *bad;

    if (!path || path[0] != '/')
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: the path does not start with '/' (internal error)", where);
    bad = bad_segment(path);
    if (bad)
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: not sent: the path has %s, which would make it name "
                             "another endpoint (an id or link from the API is to blame; "
                             "report it to the provider)",
                             where, bad);
    if (http_credential_unusable(http))
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: the account's secret contains a line break or "
                             "control character; fix token, token_file or token_command",
                             where);
    return NULL;
}

IfsHttpResponse *ifs_http_request(IfsHttp *http, const char *method, const char *path,
                                  const char *json_body, IfsError **err)
{
    char *where;
    gboolean retryable;
    IfsError *refusal;
    Attempt a = {0};
    unsigned attempt;
    char *url;
    Target to;

    g_return_val_if_fail(http && method, NULL);
    where = ifs_http_describe_request(http->account, method, path);
    refusal = refuse_request(http, path, where);
    if (refusal) {
        http_redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
        g_free(where);
        return NULL;
    }
    url = g_strconcat(http->origin, path, NULL);
    to = (Target){.url = url, .shown = path, .origin = http->origin, .own_origin = TRUE};
    retryable = http_method_is_retryable(method);
    for (attempt = 0;; attempt++) {
        if (atomic_load(&http->cancelled)) {
            /* (the previous attempt's error was freed below) */
            a = (Attempt){.err = ifs_error_new(ECANCELED, 0, NULL,
                                               "%s: not sent because infrafs is stopping", where)};
            http_redact_error(http, a.err);
            break;
        }
        a = http_attempt_once(http, method, &to, json_body, where);
        http_redact_error(http, a.err); /* before it is logged or returned */
        if (a.response || !retryable || !a.transient || attempt >= http->max_retries)
            break;
        g_debug("%s, retrying", a.err->message);
        ifs_error_free(a.err);
        /* With Retry-After the read gate above already waits. */
        if (!a.server_said_when)
            http_sleep_unless_cancelled(http, (gint64)backoff_us(http, attempt), FALSE);
    }
    g_free(url);
    g_free(where);
    if (a.response)
        return a.response;
    note_attempts(a.err, attempt + 1);
    ifs_error_propagate(err, a.err);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Absolute URLs (links an API hands out, such as a heartbeat's ping_url)    */

/* The parts of an absolute URL as libcurl, which makes the request, reads
 * them: comparing what curl will connect to leaves no room for two parsers
 * disagreeing about the host. */
typedef struct {
    char *scheme; /* lower case */
    char *host;
    char *port; /* explicit or the scheme's default */
    gboolean port_given;
    char *path; /* at least "/" */
    char *url; /* normalized, as requested */
} UrlParts;

static void url_parts_clear(UrlParts *p)
{
    curl_free(p->scheme);
    curl_free(p->host);
    curl_free(p->port);
    curl_free(p->path);
    curl_free(p->url);
    memset(p, 0, sizeof *p);
}

static gboolean url_parts(const char *text, UrlParts *out)
{
    CURLU *u = curl_url();
    char *explicit_port = NULL;
    gboolean ok;

    memset(out, 0, sizeof *out);
    if (!u)
        return FALSE;
    /* Unknown schemes parse too, so that they are refused by name below. */
    ok = text && curl_url_set(u, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &out->scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &out->path, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &out->url, 0) == CURLUE_OK;
    /* file:/// has no host; http(s) always has one. */
    if (ok && curl_url_get(u, CURLUPART_HOST, &out->host, 0) != CURLUE_OK)
        out->host = NULL;
    if (ok) {
        /* Unknown schemes have no default port; that is no failure. */
        curl_url_get(u, CURLUPART_PORT, &out->port, CURLU_DEFAULT_PORT);
        out->port_given = curl_url_get(u, CURLUPART_PORT, &explicit_port, 0) == CURLUE_OK;
        curl_free(explicit_port);
        for (char *c = out->scheme; *c; c++)
            *c = g_ascii_tolower(*c);
    } else {
        url_parts_clear(out);
    }
    curl_url_cleanup(u);
    return ok;
}

/* Same scheme, host and port as the account's origin, and inside its path
 * prefix when it has one: only there may the credentials go. */
static gboolean on_own_origin(const IfsHttp *http, const UrlParts *url)
{
    UrlParts own;
    gboolean same;

    if (!url_parts(http->origin, &own))
        return FALSE;
    same = own.host && url->host && strcmp(own.scheme, url->scheme) == 0 &&
        g_ascii_strcasecmp(own.host, url->host) == 0 && g_strcmp0(own.port, url->port) == 0;
    if (same) {
        size_t prefix = strlen(own.path);

        while (prefix > 0 && own.path[prefix - 1] == '/')
            prefix--;
        same = strncmp(url->path, own.path, prefix) == 0 &&
            (url->path[prefix] == '\0' || url->path[prefix] == '/');
    }
    url_parts_clear(&own);
    return same;
}

IfsHttpResponse *ifs_http_request_url(IfsHttp *http, const char *method, const char *url,
                                      const char *json_body, IfsError **err)
{
    UrlParts parts;
    char *origin = NULL;
    char *shown = NULL;
    char *where;
    Target to;
    Attempt a = {0};
    IfsError *refusal = NULL;

    g_return_val_if_fail(http && method, NULL);
    if (!url_parts(url, &parts)) {
        where = ifs_http_describe_request(http->account, method, "(a link from the API)");
        refusal = ifs_error_new(EINVAL, 0, NULL, "%s: not an absolute URL; refusing to request it",
                                where);
        http_redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
        g_free(where);
        return NULL;
    }
    origin = g_strdup_printf("%s://%s%s%s", parts.scheme, parts.host ? parts.host : "",
                             parts.port_given ? ":" : "", parts.port_given ? parts.port : "");
    /* Neither query nor user info: a message needs no more to say where. */
    shown = g_strconcat(origin, parts.path, NULL);
    where = ifs_http_describe_request(http->account, method, shown);
    to = (Target){.url = parts.url,
                  .shown = shown,
                  .origin = origin,
                  .own_origin = on_own_origin(http, &parts)};
    if (strcmp(parts.scheme, "http") != 0 && strcmp(parts.scheme, "https") != 0)
        refusal = ifs_error_new(EINVAL, 0, NULL,
                                "%s: refusing a '%s' URL; infrafs only requests http and https",
                                where, parts.scheme);
    else if (to.own_origin)
        refusal = refuse_request(http, parts.path, where);
    if (refusal) {
        http_redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
    } else {
        /* One attempt: this serves actions, which never run twice. */
        a = http_attempt_once(http, method, &to, json_body, where);
        http_redact_error(http, a.err);
        ifs_error_propagate(err, a.err);
    }
    g_free(where);
    g_free(shown);
    g_free(origin);
    url_parts_clear(&parts);
    return a.response;
}

json_object *ifs_http_get_json(IfsHttp *http, const char *path, IfsError **err)
{
    IfsHttpResponse *resp = ifs_http_request(http, "GET", path, NULL, err);
    IfsError *why = NULL;
    json_object *json;

    if (!resp)
        return NULL;
    json = ifs_http_answer_json(resp, http->account, path, &why);
    if (!json) {
        http_redact_error(http, why); /* it may quote the body */
        ifs_error_propagate(err, why);
    }
    ifs_http_response_free(resp);
    return json;
}

/* ------------------------------------------------------------------------ */
/* Life cycle and counters                                                    */

const char *ifs_http_account(const IfsHttp *http)
{
    return http->account;
}

IfsHttp *ifs_http_new(const IfsHttpConfig *cfg)
{
    IfsHttp *http;

    g_return_val_if_fail(cfg && cfg->origin, NULL);
    g_return_val_if_fail(cfg->auth != IFS_AUTH_HEADER || cfg->auth_header, NULL);
    if (!ensure_curl_initialized())
        g_error("libcurl failed to initialize");

    http = g_new0(IfsHttp, 1);
    http->account = g_strdup(cfg->account ? cfg->account : "?");
    http->origin = g_strdup(cfg->origin);
    if (g_str_has_suffix(http->origin, "/"))
        http->origin[strlen(http->origin) - 1] = '\0';
    http->auth = cfg->auth;
    http->user = g_strdup(cfg->user);
    http->auth_header = g_strdup(cfg->auth_header);
    g_mutex_init(&http->cred_lock);
    /* Kept even without auth: it is still what messages must never show. */
    http_set_credential(http, cfg);
    http->cacert = g_strdup(cfg->cacert);
    http->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    http->max_retries = cfg->max_retries ? cfg->max_retries : DEFAULT_MAX_RETRIES;
    http->max_retry_wait_s =
        cfg->max_retry_wait_s ? cfg->max_retry_wait_s : DEFAULT_MAX_RETRY_WAIT_S;
    http->error_reader = cfg->error_reader;
    g_mutex_init(&http->pool_lock);
    http->idle_handles = g_ptr_array_new();
    share_init(http);
    atomic_init(&http->requests_sent, 0);
    g_mutex_init(&http->throttle_lock);
    http->budget = ifs_budget_new(cfg->rate_limit, cfg->rate_window_s, cfg->refresh_share,
                                  cfg->rate_limit_source);
    atomic_init(&http->cancelled, 0);
    atomic_init(&http->wakes, 0);
    g_mutex_init(&http->sleep_lock);
    g_cond_init(&http->sleep_cond);
    return http;
}

void ifs_http_free(IfsHttp *http)
{
    if (!http)
        return;
    for (guint i = 0; i < http->idle_handles->len; i++)
        curl_easy_cleanup(g_ptr_array_index(http->idle_handles, i));
    g_ptr_array_free(http->idle_handles, TRUE);
    share_clear(http);
    g_mutex_clear(&http->pool_lock);
    g_mutex_clear(&http->throttle_lock);
    ifs_budget_free(http->budget);
    g_mutex_clear(&http->sleep_lock);
    g_cond_clear(&http->sleep_cond);
    http_free_secret(http->secret);
    http_free_secret(http->auth_header_line);
    g_ptr_array_free(http->secret_forms, TRUE);
    if (http->old_secret_forms)
        g_ptr_array_free(http->old_secret_forms, TRUE);
    g_mutex_clear(&http->cred_lock);
    g_free(http->auth_header);
    g_free(http->account);
    g_free(http->origin);
    g_free(http->user);
    g_free(http->cacert);
    g_free(http);
}

guint64 ifs_http_request_count(IfsHttp *http)
{
    g_return_val_if_fail(http, 0);
    return atomic_load(&http->requests_sent);
}

IfsBudget *ifs_http_budget(IfsHttp *http)
{
    return http->budget;
}

gint64 ifs_http_rate_limit_remaining(IfsHttp *http)
{
    g_return_val_if_fail(http, -1);
    return ifs_budget_api_remaining(http->budget);
}

void ifs_http_cancel(IfsHttp *http)
{
    g_return_if_fail(http);
    g_mutex_lock(&http->sleep_lock);
    atomic_store(&http->cancelled, 1);
    g_cond_broadcast(&http->sleep_cond);
    g_mutex_unlock(&http->sleep_lock);
}
