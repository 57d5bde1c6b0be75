/* What the HTTP client's parts share (src/http/): the client's state and
 * the functions one part calls in another. Not a public interface:
 * infrafs/http.h is. */
#pragma once
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "infrafs"
#endif
#include "infrafs/http.h"

#include "answer.h"

#include "infrafs/budget.h"

#include <curl/curl.h>
#include <stdatomic.h>

struct IfsHttp {
    char *account;
    char *origin;
    IfsAuthScheme auth;
    char *user;
    char *auth_header; /* IFS_AUTH_HEADER's header name, or NULL */
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
    long timeout_ms;
    unsigned max_retries;
    unsigned max_retry_wait_s;
    IfsHttpErrorReader error_reader; /* the provider's error bodies, or NULL */

    GMutex pool_lock;
    GPtrArray *idle_handles; /* CURL* */
    /* One pool of connections (and DNS answers and TLS sessions) for every
     * handle of the account: a thread takes any idle keep-alive connection
     * to the origin, not only the one its own handle last used. */
    CURLSH *share;
    GMutex share_locks[CURL_LOCK_DATA_LAST];

    atomic_uint_fast64_t requests_sent;

    GMutex throttle_lock; /* guards reads_not_before_us */
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

/* Where one request goes. Requests under the account's origin carry its
 * credentials and feed its rate-limit bookkeeping; an absolute URL on
 * another origin (ifs_http_request_url) does neither. */
typedef struct {
    const char *url; /* what curl requests */
    const char *shown; /* the path (or URL) messages name */
    const char *origin; /* the origin messages name */
    gboolean own_origin;
} Target;

/* The outcome of one attempt, and whether another may do better. */
typedef struct {
    IfsHttpResponse *response; /* 2xx */
    IfsError *err; /* anything else */
    gboolean transient; /* 429, 502-504, most transport failures */
    gboolean server_said_when; /* Retry-After named the wait */
} Attempt;

/* client.c */
CURL *http_pool_acquire(IfsHttp *http);
void http_pool_release(IfsHttp *http, CURL *curl);

/* credential.c */
void http_free_secret(char *s);
void http_redact_error(IfsHttp *http, IfsError *err);
void http_set_credential(IfsHttp *http, const IfsHttpConfig *cfg);

/* limits.c */
gboolean http_sleep_unless_cancelled(IfsHttp *http, gint64 us, gboolean wakeable);
const char *http_response_header(CURL *curl, const char *name);
gboolean http_budget_reserve(IfsHttp *http, gboolean read);
void http_budget_settle(IfsHttp *http, CURL *curl);
gboolean http_status_is_transient(int status);
gint64 http_note_retry_after(IfsHttp *http, CURL *curl, int status);

/* wire.c */
gboolean http_credential_unusable(const IfsHttp *http);
gboolean http_method_is_retryable(const char *method);
Attempt http_attempt_once(IfsHttp *http, const char *method, const Target *to,
                          const char *json_body, const char *where);
