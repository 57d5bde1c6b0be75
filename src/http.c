/* HTTP client for one account (include/infrafs/http.h): libcurl with
 * keep-alive, auth, timeouts, retries of reads and rate-limit obedience.
 * What an answer means (error bodies, header values, JSON) is read by
 * http_answer.c. */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "infrafs"
#endif
#include "infrafs/http.h"

#include "http_answer.h"

#include "infrafs/backoff.h"
#include "infrafs/budget.h"
#include "infrafs/jsonparse.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>


#define USER_AGENT "infrafs/" INFRAFS_VERSION

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RETRIES 3u
#define DEFAULT_MAX_RETRY_WAIT_S 60u

/* Backoff between read retries when the server did not say how long to wait:
 * 0.5 s, 1 s, 2 s, ... never more than this. */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000

/* No API answer we read is anywhere near this; a body beyond it is a broken
 * or hostile server, and holding it would only cost memory. Counted after
 * decompression: curl hands collect_body decoded bytes. What its JSON may
 * cost is bounded apart (include/infrafs/jsonparse.h). */
#define MAX_BODY_BYTES ((size_t)64 * 1024 * 1024)

/* Idle easy handles kept for keep-alive; more threads than this still work,
 * their extra handles are simply closed after use. */
#define POOL_MAX_IDLE 8

struct IfsHttp {
    char *account;
    char *origin;
    IfsAuthScheme auth;
    char *user;
    char *auth_header;      /* IFS_AUTH_HEADER's header name, or NULL */
    /* The credential: read again while requests run (ifs_http_set_secret),
     * so these change together under cred_lock, and requests copy what
     * they use (curl copies options and headers). */
    GMutex cred_lock;
    char *secret;
    char *auth_header_line; /* "Authorization: Bearer ..." / "x-api-key: ..." */
    /* char*: every way the credential can be written in an answer (the
     * secret, Basic's base64 of user:secret, URL and JSON escapings),
     * longest first; what ifs_http_redact replaces. */
    GPtrArray *secret_forms;
    /* The credential before the last change: an answer to a request sent
     * with it must not show it either. */
    GPtrArray *old_secret_forms;
    gboolean secret_unusable; /* holds CR/LF: sending it would split headers */
    char *cacert;
    long connect_timeout_ms;
    long timeout_ms;
    unsigned max_retries;
    unsigned max_retry_wait_s;

    GMutex pool_lock;
    GPtrArray *idle_handles; /* CURL* */
    /* One pool of connections (and DNS answers and TLS sessions) for every
     * handle of the account: a thread takes any idle keep-alive connection
     * to the origin, not only the one its own handle last used. */
    CURLSH *share;
    GMutex share_locks[CURL_LOCK_DATA_LAST];

    atomic_uint_fast64_t requests_sent;

    GMutex throttle_lock;  /* guards reads_not_before_us */
    /* Monotonic time (µs) before which no GET may go out: Retry-After. */
    gint64 reads_not_before_us;
    /* How many requests may go, and whose first (budget.h). */
    IfsBudget *budget;

    /* Set by ifs_http_cancel (unmount): transfers abort, sleeps end. */
    atomic_int cancelled;
    GMutex sleep_lock;
    GCond sleep_cond;
    /* Bumped by ifs_http_wake: waits for the budget look again. */
    atomic_uint wakes;
};

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

static CURL *pool_acquire(IfsHttp *http)
{
    CURL *curl = NULL;

    g_mutex_lock(&http->pool_lock);
    if (http->idle_handles->len > 0)
        curl = g_ptr_array_steal_index(http->idle_handles,
                                       http->idle_handles->len - 1);
    g_mutex_unlock(&http->pool_lock);
    return curl ? curl : curl_easy_init();
}

static void pool_release(IfsHttp *http, CURL *curl)
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
/* The credential in text                                                     */

static void free_secret(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s)); /* keep it out of later core dumps */
    g_free(s);
}

static void free_secret_cb(gpointer s)
{
    free_secret(s);
}

static void add_form(GPtrArray *forms, char *form /* taken */)
{
    if (!form || !*form) {
        free_secret(form);
        return;
    }
    for (guint i = 0; i < forms->len; i++) {
        if (strcmp(g_ptr_array_index(forms, i), form) == 0) {
            free_secret(form);
            return;
        }
    }
    g_ptr_array_add(forms, form);
}

/* The text with `from` replaced by `to` throughout (a new string). */
static char *replaced(const char *text, const char *from, const char *to)
{
    GString *s = g_string_new(text);

    g_string_replace(s, from, to, 0);
    return g_string_free(s, FALSE);
}

/* Percent-encoding, in both cases of hex digit, and form encoding (space
 * as '+'): how a server echoing a query string or a form shows it. */
static void add_url_forms(GPtrArray *forms, const char *text)
{
    char *upper = g_uri_escape_string(text, NULL, FALSE);
    char *lower = g_strdup(upper);

    for (char *p = lower; *p; p++)
        if (*p == '%' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2])) {
            p[1] = g_ascii_tolower(p[1]);
            p[2] = g_ascii_tolower(p[2]);
        }
    add_form(forms, replaced(upper, "%20", "+"));
    add_form(forms, replaced(lower, "%20", "+"));
    add_form(forms, upper);
    add_form(forms, lower);
}

/* Inside a JSON string, as an answer echoing a request body holds it ('/'
 * escaped or not, as json-c and most encoders differ). */
static void add_json_forms(GPtrArray *forms, const char *text)
{
    static const int flags[] = { JSON_C_TO_STRING_PLAIN,
                                 JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE };

    for (gsize i = 0; i < G_N_ELEMENTS(flags); i++) {
        json_object *str = json_object_new_string(text);
        const char *quoted = json_object_to_json_string_ext(str, flags[i]);
        size_t len = strlen(quoted);

        if (len >= 2) /* without the quotes */
            add_form(forms, g_strndup(quoted + 1, len - 2));
        json_object_put(str);
    }
}

/* HTTP Basic's "Authorization: Basic base64(user:secret)", padded or not,
 * and base64url as some servers log it. */
static void add_basic_forms(GPtrArray *forms, const char *user, const char *secret)
{
    char *pair = g_strconcat(user ? user : "", ":", secret, NULL);
    char *b64 = g_base64_encode((const guchar *)pair, strlen(pair));
    char *unpadded = g_strndup(b64, strcspn(b64, "="));
    char *url_safe = g_strdup(unpadded);

    g_strdelimit(url_safe, "+", '-');
    g_strdelimit(url_safe, "/", '_');
    add_form(forms, b64);
    add_form(forms, unpadded);
    add_form(forms, url_safe);
    free_secret(pair);
}

static gint longest_first(gconstpointer a, gconstpointer b)
{
    size_t la = strlen(*(char *const *)a);
    size_t lb = strlen(*(char *const *)b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Every form of the account's credential that an answer can hold. */
static GPtrArray *secret_forms(const IfsHttpConfig *cfg)
{
    GPtrArray *forms = g_ptr_array_new_with_free_func(free_secret_cb);
    const char *secret = cfg->secret ? cfg->secret : "";

    if (!*secret)
        return forms;
    add_form(forms, g_strdup(secret));
    add_url_forms(forms, secret);
    add_json_forms(forms, secret);
    if (cfg->auth == IFS_AUTH_BASIC)
        add_basic_forms(forms, cfg->user, secret);
    /* A longer form may contain a shorter one (padded base64): replaced
     * first, it goes whole. */
    g_ptr_array_sort(forms, longest_first);
    return forms;
}

/* The length of the longest of `forms` that `p` starts with, or 0. */
static size_t longest_form_at(const char *p, const GPtrArray *forms, size_t best)
{
    for (guint i = 0; forms && i < forms->len; i++) {
        const char *form = g_ptr_array_index(forms, i);
        size_t len = strlen(form);

        if (len > best && strncmp(p, form, len) == 0)
            best = len;
    }
    return best;
}

/* One pass: at each place the longest form found there is replaced, and
 * what a replacement wrote is never searched again, so that a short
 * secret (one that "[redacted]" itself contains) cannot mangle it. */
char *ifs_http_redact(IfsHttp *http, const char *text)
{
    GString *out;

    if (!text)
        return NULL;
    g_return_val_if_fail(http, NULL);
    out = g_string_sized_new(strlen(text));
    g_mutex_lock(&http->cred_lock);
    for (const char *p = text; *p;) {
        size_t len = longest_form_at(p, http->old_secret_forms,
                                     longest_form_at(p, http->secret_forms, 0));
        if (len) {
            g_string_append(out, "[redacted]");
            p += len;
        } else {
            g_string_append_c(out, *p++);
        }
    }
    g_mutex_unlock(&http->cred_lock);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Rate-limit obedience                                                       */

/* Sleeps `us` microseconds unless the client is cancelled first (FALSE
 * then) or, `wakeable`, woken by ifs_http_wake. */
static gboolean sleep_unless_cancelled(IfsHttp *http, gint64 us, gboolean wakeable)
{
    gint64 until = g_get_monotonic_time() + us;
    guint wakes = atomic_load(&http->wakes);

    g_mutex_lock(&http->sleep_lock);
    while (!atomic_load(&http->cancelled) && g_get_monotonic_time() < until &&
           !(wakeable && atomic_load(&http->wakes) != wakes))
        g_cond_wait_until(&http->sleep_cond, &http->sleep_lock, until);
    g_mutex_unlock(&http->sleep_lock);
    return !atomic_load(&http->cancelled);
}

void ifs_http_wake(IfsHttp *http)
{
    g_mutex_lock(&http->sleep_lock);
    atomic_fetch_add(&http->wakes, 1);
    g_cond_broadcast(&http->sleep_cond);
    g_mutex_unlock(&http->sleep_lock);
}

/* Holds every later GET back until `wait_s` from now; never longer than the
 * configured cap, so a wrong clock or header cannot stall the account. */
static void hold_reads_for(IfsHttp *http, gint64 wait_s)
{
    gint64 capped = MIN(wait_s, (gint64)http->max_retry_wait_s);
    gint64 deadline = g_get_monotonic_time() + capped * G_USEC_PER_SEC;

    g_mutex_lock(&http->throttle_lock);
    http->reads_not_before_us = MAX(http->reads_not_before_us, deadline);
    g_mutex_unlock(&http->throttle_lock);
}

/* Below: the Retry-After hold and the API's exhausted budget. */
gint64 ifs_http_reads_held_until(IfsHttp *http)
{
    gint64 deadline;
    gint64 now_s = g_get_real_time() / G_USEC_PER_SEC;
    gint64 exhausted = ifs_budget_exhausted_until(http->budget, now_s);

    g_mutex_lock(&http->throttle_lock);
    deadline = http->reads_not_before_us;
    g_mutex_unlock(&http->throttle_lock);
    if (exhausted > 0)
        deadline = MAX(deadline, g_get_monotonic_time() +
                       MIN(exhausted - now_s, (gint64)http->max_retry_wait_s) *
                           G_USEC_PER_SEC);
    return deadline;
}

/* Header lookup by name, case-insensitive; the value is valid until the
 * handle is used again. */
static const char *response_header(CURL *curl, const char *name)
{
    struct curl_header *header;

    if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK)
        return NULL;
    return header->value;
}

/* Before a request to the account's API: reads first sit out a
 * Retry-After hold; then every request waits until the budget lets it go
 * (budget.h: the background's share, the limit, what the API said is
 * left). It is counted before it is sent, which keeps concurrent threads
 * from overdrawing a budget that the API has not yet counted them against.
 * FALSE when the client was cancelled first (nothing was counted). */
static gboolean budget_reserve(IfsHttp *http, gboolean read)
{
    IfsPriority priority = ifs_priority_get();
    /* However often the API's Reset moves (a bucket refilled continuously
     * moves it with every answer), a request waits for the API's count at
     * most this long in all, so that a wrong clock or header cannot stall
     * the account. Our own pacing is never longer than a window. */
    gint64 give_up_us = g_get_monotonic_time() +
                        (gint64)http->max_retry_wait_s * G_USEC_PER_SEC;

    for (;;) {
        gint64 now_us = g_get_monotonic_time();
        gint64 wait_us = 0;

        if (read) {
            g_mutex_lock(&http->throttle_lock);
            wait_us = MAX(http->reads_not_before_us - now_us, 0);
            g_mutex_unlock(&http->throttle_lock);
        }
        if (wait_us == 0) {
            wait_us = ifs_budget_try_send(http->budget, priority, now_us < give_up_us,
                                          now_us, g_get_real_time() / G_USEC_PER_SEC);
            if (wait_us == 0)
                return TRUE;
            if (now_us < give_up_us)
                wait_us = MIN(wait_us, give_up_us - now_us);
        }
        g_debug("account '%s': %s request waits %.1f s for the API's rate limit",
                http->account, priority == IFS_PRIORITY_BACKGROUND ? "a background" : "a",
                (double)wait_us / G_USEC_PER_SEC);
        if (!sleep_unless_cancelled(http, wait_us, TRUE))
            return FALSE;
    }
}

static gint64 header_number(CURL *curl, const char *name)
{
    return curl ? ifs_http_parse_header_number(response_header(curl, name)) : -1;
}

/* After a request to the account's API (`curl` NULL: no answer came): the
 * answer's X-RateLimit-* tell the budget what the API counts. */
static void budget_settle(IfsHttp *http, CURL *curl)
{
    gint64 remaining = header_number(curl, "X-RateLimit-Remaining");
    gint64 limit = header_number(curl, "X-RateLimit-Limit");
    gint64 reset = curl ? ifs_http_parse_rate_limit_reset(
                              response_header(curl, "X-RateLimit-Reset")) : -1;
    long status = 0;

    if (curl)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    ifs_budget_answered(http->budget, limit, remaining, reset, status == 429,
                        g_get_real_time() / G_USEC_PER_SEC);
}

static gboolean status_is_transient(int status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Retry-After on an answer worth retrying (429, 503, and the gateway
 * errors) holds back every later GET of the account. Returns the wait in
 * seconds, -1 when the server named none. */
static gint64 note_retry_after(IfsHttp *http, CURL *curl, int status)
{
    gint64 wait_s;

    if (!status_is_transient(status))
        return -1;
    wait_s = ifs_http_parse_retry_after(response_header(curl, "Retry-After"),
                                        g_get_real_time() / G_USEC_PER_SEC);
    if (wait_s > 0)
        hold_reads_for(http, wait_s);
    return wait_s;
}

/* ------------------------------------------------------------------------ */
/* One request on the wire                                                   */

typedef struct {
    GByteArray *body;
    size_t received;   /* decoded bytes, kept or not */
    gboolean too_large;
    char errbuf[CURL_ERROR_SIZE];
    CURL *curl;
    const char *method;
    gboolean weigh;    /* a 2xx answer: its JSON is weighed as it arrives */
    IfsJsonScan scan;  /* started by the first bytes */
} Transfer;

/* Where one request goes. Requests under the account's origin carry its
 * credentials and feed its rate-limit bookkeeping; an absolute URL on
 * another origin (ifs_http_request_url) does neither. */
typedef struct {
    const char *url;      /* what curl requests */
    const char *shown;    /* the path (or URL) messages name */
    const char *origin;   /* the origin messages name */
    gboolean own_origin;
} Target;

/* The outcome of one attempt, and whether another may do better. */
typedef struct {
    IfsHttpResponse *response; /* 2xx */
    IfsError *err;             /* anything else */
    gboolean transient;        /* 429, 502-504, most transport failures */
    gboolean server_said_when; /* Retry-After named the wait */
} Attempt;

static size_t collect_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    Transfer *t = userdata;
    size_t n = size * nmemb;

    t->received += n;
    if (t->received > MAX_BODY_BYTES) {
        t->too_large = TRUE;
        return 0; /* makes curl abort with CURLE_WRITE_ERROR */
    }
    if (!t->scan.started) {
        long status = 0;

        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        t->weigh = status >= 200 && status < 300;
        ifs_json_scan_init(&t->scan, &ifs_json_answer_limits);
    }
    /* An error answer is only read for its first lines
     * (ifs_http_error_from_response): the rest is read past, not kept. */
    if (!t->weigh) {
        g_byte_array_append(t->body, (const guint8 *)data,
                            (guint)MIN(n, IFS_HTTP_MAX_ERROR_BODY - MIN(t->body->len,
                                                                     IFS_HTTP_MAX_ERROR_BODY)));
        return n;
    }
    /* A 2xx answer's JSON is weighed as it arrives, so that one which
     * would cost far more memory than its size ends the transfer after a
     * few KiB, not after 64 MiB. */
    if (!ifs_json_scan_feed(&t->scan, data, n))
        return 0;
    g_byte_array_append(t->body, (const guint8 *)data, (guint)n);
    return n;
}


static IfsError *refused_transfer(const Transfer *t, const char *where)
{
    long status = 0;
    char *why = ifs_json_scan_describe(&t->scan);
    IfsError *err;

    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    err = ifs_http_refused_answer(where, t->method, (int)status, why);
    g_free(why);
    return err;
}

/* Called by curl about once a second even while nothing arrives: lets
 * ifs_http_cancel end a transfer stuck on a silent server at once. */
static int check_cancelled(void *data, curl_off_t dltotal, curl_off_t dlnow,
                           curl_off_t ultotal, curl_off_t ulnow)
{
    IfsHttp *http = data;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&http->cancelled) ? 1 : 0;
}

static gboolean credential_unusable(const IfsHttp *http)
{
    gboolean unusable;

    g_mutex_lock((GMutex *)&http->cred_lock);
    unusable = http->secret_unusable;
    g_mutex_unlock((GMutex *)&http->cred_lock);
    return unusable;
}

static struct curl_slist *request_headers(const IfsHttp *http, gboolean has_body,
                                          gboolean with_auth)
{
    struct curl_slist *headers = NULL;

    headers = curl_slist_append(headers, "Accept: application/json");
    /* Without a body no Content-Type; an empty value also stops curl from
     * adding its form-encoding default to a bodiless POST. */
    headers = curl_slist_append(headers, has_body ?
                                "Content-Type: application/json" :
                                "Content-Type:");
    /* No "100 Continue" round trip before sending a body. */
    headers = curl_slist_append(headers, "Expect:");
    if (with_auth) {
        g_mutex_lock((GMutex *)&http->cred_lock);
        if (http->auth_header_line)
            headers = curl_slist_append(headers, http->auth_header_line);
        g_mutex_unlock((GMutex *)&http->cred_lock);
    }
    return headers;
}

/* The list holds the credential's header line. */
static void free_headers(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

static void set_method(CURL *curl, const char *method, const char *json_body)
{
    gboolean idempotent = strcmp(method, "GET") == 0;

    /* libcurl silently sends a request again when a reused keep-alive
     * connection turns out to be dead; for an action that could run it
     * twice. Actions therefore always get a connection of their own. */
    curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, idempotent ? 0L : 1L);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (json_body || strcmp(method, "POST") == 0) {
        /* A bodiless POST still says Content-Length: 0, as servers expect. */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body ? json_body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(json_body ? strlen(json_body) : 0));
    }
}

static void configure_transfer(CURL *curl, IfsHttp *http,
                               const char *method, const Target *to,
                               const char *json_body,
                               struct curl_slist *headers, Transfer *t)
{
    /* Not CURLOPT_PATH_AS_IS: libcurl resolves only literal "." and ".."
     * segments, and no such path gets here (refuse_request refuses them, and
     * url_parts has already resolved those of an absolute URL before it is
     * checked); ids are percent-encoded (%2E), which libcurl leaves alone.
     * Sending a literal dot segment as is would only move the resolving to
     * the server. */
    curl_easy_setopt(curl, CURLOPT_URL, to->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (http->share)
        curl_easy_setopt(curl, CURLOPT_SHARE, http->share);
    /* HTTP/2 where the server offers it in the TLS handshake (several
     * requests of the account then share one connection); HTTP/1.1 with
     * keep-alive otherwise. */
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we run in many threads */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, http->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, http->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (http->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, http->cacert);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    /* Refuses a too large body up front when Content-Length announces it. */
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY_BYTES);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_cancelled);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, http);
    set_method(curl, method, json_body);
}

/* Counts the attempt only if request bytes went out (a refused connection
 * sent nothing). */
static void count_if_sent(IfsHttp *http, CURL *curl)
{
    long request_bytes = 0;

    if (curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_bytes) == CURLE_OK &&
        request_bytes > 0)
        atomic_fetch_add(&http->requests_sent, 1);
}

static Attempt transport_failure(const char *origin, CURL *curl, CURLcode rc,
                                 const Transfer *t, const char *where)
{
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    Attempt a = { .transient = TRUE };

    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        a.err = ifs_error_new(ETIMEDOUT, 0, NULL,
                              "%s: no answer from %s in time (%s)",
                              where, origin, detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        /* "Connection refused" says more than curl's long sentence. */
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        a.err = ifs_error_new(EHOSTUNREACH, 0, NULL,
                              "%s: no connection to %s (%s); check `url` and the network",
                              where, origin,
                              os_errno ? g_strerror((int)os_errno) : detail);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        a.transient = FALSE;
        a.err = ifs_error_new(ECANCELED, 0, NULL,
                              "%s: abandoned because infrafs is stopping", where);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        a.transient = FALSE;
        if (rc == CURLE_WRITE_ERROR && t->weigh && ifs_json_scan_refused(&t->scan)) {
            a.err = refused_transfer(t, where);
            break;
        }
        a.err = (rc == CURLE_FILESIZE_EXCEEDED || t->too_large) ?
            ifs_error_new(EIO, 0, NULL,
                          "%s: the response is larger than %zu MiB, far more than any "
                          "answer infrafs expects; not reading it (check `url`)",
                          where, MAX_BODY_BYTES / (1024 * 1024)) :
            ifs_error_new(EIO, 0, NULL, "%s: transfer from %s failed (%s)",
                          where, origin, detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        a.transient = FALSE;
        a.err = ifs_error_new(EIO, 0, NULL,
                              "%s: TLS certificate of %s not accepted (%s); check `url` and `cacert`",
                              where, origin, detail);
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        a.transient = FALSE;
        a.err = ifs_error_new(EIO, 0, NULL, "%s: unusable URL %s (%s); check `url`",
                              where, origin, detail);
        break;
    default:
        a.err = ifs_error_new(EIO, 0, NULL, "%s: transfer from %s failed (%s)",
                              where, origin, detail);
        break;
    }
    return a;
}

static IfsHttpResponse *take_response(CURL *curl, int status, Transfer *t)
{
    IfsHttpResponse *resp = g_new0(IfsHttpResponse, 1);
    const char *content_type = NULL;

    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
    resp->status = status;
    resp->content_type = g_strdup(content_type);
    resp->body_len = t->body->len;
    g_byte_array_append(t->body, (const guint8 *)"", 1);
    resp->body = (char *)g_byte_array_free(t->body, FALSE);
    t->body = NULL;
    return resp;
}

/* infrafs never follows redirects (credentials must not travel to another
 * host); an `url` that redirects is a configuration mistake worth naming. */
static void explain_redirect(IfsError *err, CURL *curl)
{
    const char *location = response_header(curl, "Location");
    char *message;

    if (!location)
        return;
    message = g_strdup_printf("%s; the API redirects to %s, check `url`",
                              err->message, location);
    g_free(err->message);
    err->message = message;
}

static Attempt http_answer(IfsHttp *http, CURL *curl, Transfer *t,
                           const char *method, const Target *to)
{
    long status = 0;
    const char *content_type = NULL;
    Attempt a = { 0 };
    gint64 retry_after = -1;
    char *body, *redacted;

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    /* Another host's budget says nothing about the account's API. */
    if (to->own_origin)
        retry_after = note_retry_after(http, curl, (int)status);
    if (status >= 200 && status < 300) {
        a.response = take_response(curl, (int)status, t);
        return a;
    }
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
    /* Redacted before it is read: the message keeps only the first part of
     * a long text, and a credential cut in two there would no longer match
     * any form of it afterwards. (Up to the first NUL, as the parser reads
     * it anyway.) */
    body = g_strndup((const char *)t->body->data, MIN(t->body->len, IFS_HTTP_MAX_ERROR_BODY));
    redacted = ifs_http_redact(http, body);
    a.err = ifs_http_error_from_response((int)status, content_type, redacted,
                                         strlen(redacted), method, to->shown,
                                         http->account);
    free_secret(redacted);
    free_secret(body);
    if (status >= 300 && status < 400)
        explain_redirect(a.err, curl);
    a.transient = status_is_transient((int)status);
    a.server_said_when = retry_after >= 0;
    return a;
}

/* Reads can be repeated safely; a control action must never run twice. */
static gboolean method_is_retryable(const char *method)
{
    return strcmp(method, "GET") == 0;
}

static Attempt attempt_once(IfsHttp *http, const char *method,
                            const Target *to, const char *json_body,
                            const char *where)
{
    CURL *curl = pool_acquire(http);
    Transfer t = { .body = g_byte_array_new(), .curl = curl, .method = method };
    struct curl_slist *headers = request_headers(http, json_body != NULL,
                                                 to->own_origin);
    CURLcode rc;
    Attempt a;

    if (!curl) {
        a = (Attempt){ .err = ifs_error_new(EIO, 0, NULL,
                                            "%s: cannot create a curl handle", where) };
    } else {
        configure_transfer(curl, http, method, to, json_body, headers, &t);
        gboolean counted = to->own_origin && budget_reserve(http, method_is_retryable(method));

        rc = curl_easy_perform(curl);
        if (counted)
            budget_settle(http, rc == CURLE_OK ? curl : NULL);
        count_if_sent(http, curl);
        a = rc == CURLE_OK ? http_answer(http, curl, &t, method, to)
                           : transport_failure(to->origin, curl, rc, &t, where);
        pool_release(http, curl);
    }
    free_headers(headers);
    if (t.body)
        g_byte_array_unref(t.body);
    return a;
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
    message = g_strdup_printf("%s (gave up after %u attempts)", err->message,
                              attempts);
    g_free(err->message);
    err->message = message;
}

/* Servers have been known to echo the credential they refused, and the
 * request's headers with it; no error of this file leaves it unredacted. */
static void redact_error(IfsHttp *http, IfsError *err)
{
    char *text;

    if (!err)
        return;
    text = ifs_http_redact(http, err->message);
    free_secret(err->message);
    err->message = text;
    text = ifs_http_redact(http, err->code);
    free_secret(err->code);
    err->code = text;
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

static IfsError *refuse_request(const IfsHttp *http, const char *path,
                                const char *where)
{
    const char *bad;

    if (!path || path[0] != '/')
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: the path does not start with '/' (internal error)",
                             where);
    bad = bad_segment(path);
    if (bad)
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: not sent: the path has %s, which would make it name "
                             "another endpoint (an id or link from the API is to blame; "
                             "report it to the provider)", where, bad);
    if (credential_unusable(http))
        return ifs_error_new(EINVAL, 0, NULL,
                             "%s: the account's secret contains a line break or "
                             "control character; fix token, token_file or token_command",
                             where);
    return NULL;
}

IfsHttpResponse *ifs_http_request(IfsHttp *http, const char *method,
                                  const char *path, const char *json_body,
                                  IfsError **err)
{
    char *where;
    gboolean retryable;
    IfsError *refusal;
    Attempt a = { 0 };
    unsigned attempt;
    char *url;
    Target to;

    g_return_val_if_fail(http && method, NULL);
    where = ifs_http_describe_request(http->account, method, path);
    refusal = refuse_request(http, path, where);
    if (refusal) {
        redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
        g_free(where);
        return NULL;
    }
    url = g_strconcat(http->origin, path, NULL);
    to = (Target){ .url = url, .shown = path, .origin = http->origin, .own_origin = TRUE };
    retryable = method_is_retryable(method);
    for (attempt = 0;; attempt++) {
        if (atomic_load(&http->cancelled)) {
            /* (the previous attempt's error was freed below) */
            a = (Attempt){ .err = ifs_error_new(ECANCELED, 0, NULL,
                "%s: not sent because infrafs is stopping", where) };
            redact_error(http, a.err);
            break;
        }
        a = attempt_once(http, method, &to, json_body, where);
        redact_error(http, a.err); /* before it is logged or returned */
        if (a.response || !retryable || !a.transient || attempt >= http->max_retries)
            break;
        g_debug("%s, retrying", a.err->message);
        ifs_error_free(a.err);
        /* With Retry-After the read gate above already waits. */
        if (!a.server_said_when)
            sleep_unless_cancelled(http, (gint64)backoff_us(http, attempt), FALSE);
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
    char *scheme;  /* lower case */
    char *host;
    char *port;    /* explicit or the scheme's default */
    gboolean port_given;
    char *path;    /* at least "/" */
    char *url;     /* normalized, as requested */
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
           g_ascii_strcasecmp(own.host, url->host) == 0 &&
           g_strcmp0(own.port, url->port) == 0;
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

IfsHttpResponse *ifs_http_request_url(IfsHttp *http, const char *method,
                                      const char *url, const char *json_body,
                                      IfsError **err)
{
    UrlParts parts;
    char *origin = NULL;
    char *shown = NULL;
    char *where;
    Target to;
    Attempt a = { 0 };
    IfsError *refusal = NULL;

    g_return_val_if_fail(http && method, NULL);
    if (!url_parts(url, &parts)) {
        where = ifs_http_describe_request(http->account, method, "(a link from the API)");
        refusal = ifs_error_new(EINVAL, 0, NULL,
            "%s: not an absolute URL; refusing to request it", where);
        redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
        g_free(where);
        return NULL;
    }
    origin = g_strdup_printf("%s://%s%s%s", parts.scheme, parts.host ? parts.host : "",
                             parts.port_given ? ":" : "",
                             parts.port_given ? parts.port : "");
    /* Neither query nor user info: a message needs no more to say where. */
    shown = g_strconcat(origin, parts.path, NULL);
    where = ifs_http_describe_request(http->account, method, shown);
    to = (Target){ .url = parts.url, .shown = shown, .origin = origin,
                   .own_origin = on_own_origin(http, &parts) };
    if (strcmp(parts.scheme, "http") != 0 && strcmp(parts.scheme, "https") != 0)
        refusal = ifs_error_new(EINVAL, 0, NULL,
            "%s: refusing a '%s' URL; infrafs only requests http and https",
            where, parts.scheme);
    else if (to.own_origin)
        refusal = refuse_request(http, parts.path, where);
    if (refusal) {
        redact_error(http, refusal);
        ifs_error_propagate(err, refusal);
    } else {
        /* One attempt: this serves actions, which never run twice. */
        a = attempt_once(http, method, &to, json_body, where);
        redact_error(http, a.err);
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
        redact_error(http, why); /* it may quote the body */
        ifs_error_propagate(err, why);
    }
    ifs_http_response_free(resp);
    return json;
}

/* ------------------------------------------------------------------------ */
/* Life cycle and counters                                                    */

static gboolean has_control_chars(const char *s)
{
    for (; s && *s; s++)
        if (g_ascii_iscntrl(*s))
            return TRUE;
    return FALSE;
}

/* Basic too is written here rather than given to curl as a user and
 * password: curl would keep its own copies in every pooled handle, and
 * free them without wiping. */
static char *auth_header_line(const IfsHttpConfig *cfg)
{
    char *pair, *b64, *line;

    switch (cfg->auth) {
    case IFS_AUTH_BEARER:
        return g_strdup_printf("Authorization: Bearer %s", cfg->secret);
    case IFS_AUTH_HEADER:
        return g_strdup_printf("%s: %s", cfg->auth_header, cfg->secret);
    case IFS_AUTH_BASIC:
        pair = g_strconcat(cfg->user ? cfg->user : "", ":", cfg->secret, NULL);
        b64 = g_base64_encode((const guchar *)pair, strlen(pair));
        line = g_strconcat("Authorization: Basic ", b64, NULL);
        free_secret(b64);
        free_secret(pair);
        return line;
    default:
        return NULL;
    }
}

/* What a secret makes of the credential (cfg's auth, header, user and
 * secret): its header line, whether it is unusable, and every form of it
 * an answer could hold. Fields of `http` under cred_lock, or not yet
 * shared. */
static void set_credential(IfsHttp *http, const IfsHttpConfig *cfg)
{
    http->secret = g_strdup(cfg->secret ? cfg->secret : "");
    /* A line break would end the header early and inject the rest. */
    http->secret_unusable = cfg->auth != IFS_AUTH_NONE && has_control_chars(http->secret);
    http->auth_header_line = http->secret_unusable ? NULL : auth_header_line(cfg);
    http->secret_forms = secret_forms(cfg);
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
    set_credential(http, cfg);
    http->cacert = g_strdup(cfg->cacert);
    http->connect_timeout_ms = cfg->connect_timeout_ms > 0 ?
        cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    http->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    http->max_retries = cfg->max_retries ? cfg->max_retries : DEFAULT_MAX_RETRIES;
    http->max_retry_wait_s = cfg->max_retry_wait_s ?
        cfg->max_retry_wait_s : DEFAULT_MAX_RETRY_WAIT_S;
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
    free_secret(http->secret);
    free_secret(http->auth_header_line);
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

gboolean ifs_http_set_secret(IfsHttp *http, const char *secret)
{
    IfsHttpConfig cfg = {
        .auth = http->auth,
        .auth_header = http->auth_header,
        .user = http->user,
        .secret = secret ? secret : "",
    };
    gboolean changed;

    g_mutex_lock(&http->cred_lock);
    changed = strcmp(http->secret, cfg.secret) != 0;
    if (changed) {
        free_secret(http->secret);
        free_secret(http->auth_header_line);
        if (http->old_secret_forms)
            g_ptr_array_free(http->old_secret_forms, TRUE);
        http->old_secret_forms = http->secret_forms;
        set_credential(http, &cfg);
    }
    g_mutex_unlock(&http->cred_lock);
    return changed;
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
