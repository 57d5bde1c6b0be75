/* HTTP client for one account: auth, timeouts, keep-alive, retries,
 * rate limits, and translation of error answers into IfsError.
 * Thread-safe: any thread may call ifs_http_request concurrently. */
#pragma once
#include <glib.h>
#include <json-c/json.h>
#include "infrafs/budget.h"
#include "infrafs/error.h"

typedef enum {
    IFS_AUTH_NONE,
    IFS_AUTH_BEARER, /* Authorization: Bearer <secret> */
    IFS_AUTH_BASIC, /* HTTP Basic user:secret */
    IFS_AUTH_HEADER, /* <auth_header>: <secret> */
} IfsAuthScheme;

/* A provider's reading of its own JSON error bodies (in src/providers/):
 * from `body`, a JSON object, its code and its sentence, newly allocated
 * (either may be NULL), or both left NULL when `body` is not of its shape.
 * Without a sentence the generic reading finds one (ifs_http_error_from_response). */
typedef void (*IfsHttpErrorReader)(json_object *body, char **code, char **message);

typedef struct {
    const char *account; /* for messages: "account 'hostup'" */
    const char *origin; /* scheme://host[:port][/prefix], no trailing '/' */
    IfsAuthScheme auth;
    const char *auth_header; /* IFS_AUTH_HEADER only, e.g. "x-api-key" */
    const char *user; /* IFS_AUTH_BASIC only */
    const char *secret;
    const char *cacert; /* CA file; NULL uses the system's CAs */
    long timeout_ms; /* 0: default 30000 */
    unsigned max_retries; /* GET retries on 429/5xx/transport errors; default 3 */
    unsigned max_retry_wait_s; /* cap for one Retry-After sleep; 0: default 60 */
    /* The request budget (budget.h): rate_limit requests per rate_window_s
     * seconds (0: learnt from X-RateLimit-Limit), of which background
     * requests may spend refresh_share percent (0: the default). */
    unsigned rate_limit;
    unsigned rate_window_s;
    unsigned refresh_share;
    const char *rate_limit_source; /* for the budget file: "rate_limit in ..." */
    IfsHttpErrorReader error_reader; /* NULL: the generic reading only */
} IfsHttpConfig;

typedef struct {
    int status;
    char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    char *content_type; /* may be NULL */
} IfsHttpResponse;

typedef struct IfsHttp IfsHttp;

IfsHttp *ifs_http_new(const IfsHttpConfig *cfg); /* copies every string */
void ifs_http_free(IfsHttp *http);
/* The account it serves, as messages name it; as long as the client lives. */
const char *ifs_http_account(const IfsHttp *http);

/* `path` starts with '/' and is appended to the origin (it may carry a query).
 * `json_body` NULL sends no body (and no Content-Type). Returns the response
 * for 2xx, else NULL with *err set: the errno per doc/SEMANTICS.md §5.5, the provider's
 * error code and message parsed from the body, ETIMEDOUT on timeouts,
 * EHOSTUNREACH when no connection could be made. GET is retried with backoff
 * (429 honours Retry-After); other methods are never retried.
 * A path with a "." or ".." segment, or an empty one ("//"), is refused
 * with EINVAL and not sent: it would name another endpoint than meant (ids
 * go through ifs_api_path, which encodes them). Error messages never hold
 * the credential (see ifs_http_redact). */
IfsHttpResponse *ifs_http_request(IfsHttp *http, const char *method, const char *path,
                                  const char *json_body, IfsError **err);
void ifs_http_response_free(IfsHttpResponse *resp);

/* The account's secret read again (a fixed token_file, say): requests from
 * now on use `secret`; those under way keep the one they started with. An
 * answer may still hold the previous secret: ifs_http_redact hides both.
 * Returns FALSE, changing nothing, when `secret` is the one in use. */
gboolean ifs_http_set_secret(IfsHttp *http, const char *secret);

/* An absolute URL handed out by the API (a heartbeat's ping_url) instead of
 * a path under the origin. Only http and https are requested (anything else,
 * or no absolute URL at all, is EINVAL and no request). The account's
 * credentials go only to its own origin (same scheme, host and port, inside
 * its path prefix), never to another host, and only the own origin's
 * rate-limit headers count. Same timeouts and error mapping as
 * ifs_http_request; messages name the URL without query or user info. One
 * attempt whatever the method: it serves control actions, which must never
 * run twice. */
IfsHttpResponse *ifs_http_request_url(IfsHttp *http, const char *method, const char *url,
                                      const char *json_body, IfsError **err);

/* A copy of `text` (NULL in, NULL out) with every form of the account's
 * credential replaced by "[redacted]": the secret itself, its URL and
 * JSON escapings, and for HTTP Basic the base64 of user:secret (padded,
 * unpadded, base64url). Every error ifs_http_request and
 * ifs_http_request_url return has been through it; use it on any other
 * text taken from an answer before it is shown or logged. */
char *ifs_http_redact(IfsHttp *http, const char *text);

/* GET and parse JSON; an unparsable 2xx body is EIO naming the path. */
json_object *ifs_http_get_json(IfsHttp *http, const char *path, IfsError **err);

/* Counters for /providers/<account>/: requests sent since creation, and the
 * last X-RateLimit-Remaining seen (-1 when the API never said). */
guint64 ifs_http_request_count(IfsHttp *http);
gint64 ifs_http_rate_limit_remaining(IfsHttp *http);

/* The account's request budget (owned by the client). */
IfsBudget *ifs_http_budget(IfsHttp *http);

/* Monotonic time (µs) before which reads are held back by a Retry-After or
 * an exhausted X-RateLimit budget; 0 or past when they are not. */
gint64 ifs_http_reads_held_until(IfsHttp *http);

/* Requests waiting for the budget look again at once (their priority
 * may have changed: ifs_priority_follow). */
void ifs_http_wake(IfsHttp *http);

/* For unmount: every request in progress or to come fails at once with
 * ECANCELED (a silent server notices within about a second), and waits for
 * rate limits or backoff end. Irreversible. */
void ifs_http_cancel(IfsHttp *http);

/* Pure helpers, exposed for tests. */
/* Error answer -> IfsError: the errno of its status (doc/SEMANTICS.md
 * §5.5), and the provider's code and sentence as `reader` finds them in a
 * JSON body. Where it finds no sentence (or `reader` is NULL), what any
 * API may send: an object's `detail`, `message` or `title`, a JSON string
 * or array of strings, an HTML page's title, a plain text's first line.
 * Both are cut to one short line. */
IfsError *ifs_http_error_from_response(int status, const char *content_type, const char *body,
                                       size_t body_len, const char *method, const char *path,
                                       const char *account, IfsHttpErrorReader reader);

/* For the providers' error readers: what their bodies have in common. */
/* A member's text when it is a non-empty string, else NULL (also when `obj`
 * is no object). */
const char *ifs_http_error_text(json_object *obj, const char *key);
/* `headline`, then after ": " what the first entries of `list` say: a
 * string as it is, an object as its member `text_key`, after its member
 * `where_key` and ": " when it has one (a string, or an array of path
 * parts, joined by "."). NULL when that is nothing. `headline`, `list` and
 * the keys may be NULL, `list` of any type. */
char *ifs_http_error_message(const char *headline, json_object *list, const char *where_key,
                             const char *text_key);

/* Retry-After: delta seconds or an HTTP-date -> seconds to wait (>= 0),
 * -1 when unparsable. */
gint64 ifs_http_parse_retry_after(const char *value, gint64 now_epoch);
/* X-RateLimit-Reset: epoch seconds or ISO 8601 -> epoch seconds, -1 if bad. */
gint64 ifs_http_parse_rate_limit_reset(const char *value);
