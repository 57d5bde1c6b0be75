/* One request on the wire: headers, libcurl options, the body as it
 * arrives (bounded and weighed), and what the answer or failure means. */
#include "http_private.h"

#include "infrafs/jsonparse.h"

#include <errno.h>
#include <string.h>

#define USER_AGENT "infrafs/" INFRAFS_VERSION
/* A TCP (and TLS) connection not made by then will not be. */
#define CONNECT_TIMEOUT_MS 10000L

/* No API answer we read is anywhere near this; a body beyond it is a broken
 * or hostile server, and holding it would only cost memory. Counted after
 * decompression: curl hands collect_body decoded bytes. What its JSON may
 * cost is bounded apart (include/infrafs/jsonparse.h). */
#define MAX_BODY_BYTES ((size_t)64 * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* One request on the wire                                                   */

typedef struct {
    GByteArray *body;
    size_t received; /* decoded bytes, kept or not */
    gboolean too_large;
    char errbuf[CURL_ERROR_SIZE];
    CURL *curl;
    const char *method;
    gboolean weigh; /* a 2xx answer: its JSON is weighed as it arrives */
    IfsJsonScan scan; /* started by the first bytes */
} Transfer;

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
        g_byte_array_append(
            t->body, (const guint8 *)data,
            (guint)MIN(n, IFS_HTTP_MAX_ERROR_BODY - MIN(t->body->len, IFS_HTTP_MAX_ERROR_BODY)));
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
static int check_cancelled(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    IfsHttp *http = data;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&http->cancelled) ? 1 : 0;
}

gboolean http_credential_unusable(const IfsHttp *http)
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
    headers =
        curl_slist_append(headers, has_body ? "Content-Type: application/json" : "Content-Type:");
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

static void configure_transfer(CURL *curl, IfsHttp *http, const char *method, const Target *to,
                               const char *json_body, struct curl_slist *headers, Transfer *t)
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
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
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

static Attempt transport_failure(const char *origin, CURL *curl, CURLcode rc, const Transfer *t,
                                 const char *where)
{
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    Attempt a = {.transient = TRUE};

    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        a.err = ifs_error_new(ETIMEDOUT, 0, NULL, "%s: no answer from %s in time (%s)", where,
                              origin, detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        /* "Connection refused" says more than curl's long sentence. */
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        a.err = ifs_error_new(EHOSTUNREACH, 0, NULL,
                              "%s: no connection to %s (%s); check `url` and the network", where,
                              origin, os_errno ? g_strerror((int)os_errno) : detail);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        a.transient = FALSE;
        a.err =
            ifs_error_new(ECANCELED, 0, NULL, "%s: abandoned because infrafs is stopping", where);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        a.transient = FALSE;
        if (rc == CURLE_WRITE_ERROR && t->weigh && ifs_json_scan_refused(&t->scan)) {
            a.err = refused_transfer(t, where);
            break;
        }
        a.err = (rc == CURLE_FILESIZE_EXCEEDED || t->too_large)
            ? ifs_error_new(EIO, 0, NULL,
                            "%s: the response is larger than %zu MiB, far more than any "
                            "answer infrafs expects; not reading it (check `url`)",
                            where, MAX_BODY_BYTES / (1024 * 1024))
            : ifs_error_new(EIO, 0, NULL, "%s: transfer from %s failed (%s)", where, origin,
                            detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        a.transient = FALSE;
        a.err = ifs_error_new(
            EIO, 0, NULL, "%s: TLS certificate of %s not accepted (%s); check `url` and `cacert`",
            where, origin, detail);
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        a.transient = FALSE;
        a.err = ifs_error_new(EIO, 0, NULL, "%s: unusable URL %s (%s); check `url`", where, origin,
                              detail);
        break;
    default:
        a.err =
            ifs_error_new(EIO, 0, NULL, "%s: transfer from %s failed (%s)", where, origin, detail);
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
    const char *location = http_response_header(curl, "Location");
    char *message;

    if (!location)
        return;
    message = g_strdup_printf("%s; the API redirects to %s, check `url`", err->message, location);
    g_free(err->message);
    err->message = message;
}

static Attempt http_answer(IfsHttp *http, CURL *curl, Transfer *t, const char *method,
                           const Target *to)
{
    long status = 0;
    const char *content_type = NULL;
    Attempt a = {0};
    gint64 retry_after = -1;
    char *body, *redacted;

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    /* Another host's budget says nothing about the account's API. */
    if (to->own_origin)
        retry_after = http_note_retry_after(http, curl, (int)status);
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
    a.err = ifs_http_error_from_response((int)status, content_type, redacted, strlen(redacted),
                                         method, to->shown, http->account, http->error_reader);
    http_free_secret(redacted);
    http_free_secret(body);
    if (status >= 300 && status < 400)
        explain_redirect(a.err, curl);
    a.transient = http_status_is_transient((int)status);
    a.server_said_when = retry_after >= 0;
    return a;
}

/* Reads can be repeated safely; a control action must never run twice. */
gboolean http_method_is_retryable(const char *method)
{
    return strcmp(method, "GET") == 0;
}

Attempt http_attempt_once(IfsHttp *http, const char *method, const Target *to,
                          const char *json_body, const char *where)
{
    CURL *curl = http_pool_acquire(http);
    Transfer t = {.body = g_byte_array_new(), .curl = curl, .method = method};
    struct curl_slist *headers = request_headers(http, json_body != NULL, to->own_origin);
    CURLcode rc;
    Attempt a;

    if (!curl) {
        a = (Attempt){.err = ifs_error_new(EIO, 0, NULL, "%s: cannot create a curl handle", where)};
    } else {
        configure_transfer(curl, http, method, to, json_body, headers, &t);
        gboolean counted =
            to->own_origin && http_budget_reserve(http, http_method_is_retryable(method));

        rc = curl_easy_perform(curl);
        if (counted)
            http_budget_settle(http, rc == CURLE_OK ? curl : NULL);
        count_if_sent(http, curl);
        a = rc == CURLE_OK ? http_answer(http, curl, &t, method, to)
                           : transport_failure(to->origin, curl, rc, &t, where);
        http_pool_release(http, curl);
    }
    free_headers(headers);
    if (t.body)
        g_byte_array_unref(t.body);
    return a;
}
