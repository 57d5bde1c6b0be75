/* Rate limits: the request budget asked before every request and told
 * every answer's X-RateLimit-*, Retry-After holds, and sleeps that end at
 * once on cancellation. */
#include "http_private.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Rate-limit obedience                                                       */

/* Sleeps `us` microseconds unless the client is cancelled first (FALSE
 * then) or, `wakeable`, woken by ifs_http_wake. */
gboolean http_sleep_unless_cancelled(IfsHttp *http, gint64 us, gboolean wakeable)
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
        deadline = MAX(deadline,
                       g_get_monotonic_time() +
                           MIN(exhausted - now_s, (gint64)http->max_retry_wait_s) * G_USEC_PER_SEC);
    return deadline;
}

/* Header lookup by name, case-insensitive; the value is valid until the
 * handle is used again. */
const char *http_response_header(CURL *curl, const char *name)
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
gboolean http_budget_reserve(IfsHttp *http, gboolean read)
{
    IfsPriority priority = ifs_priority_get();
    /* However often the API's Reset moves (a bucket refilled continuously
     * moves it with every answer), a request waits for the API's count at
     * most this long in all, so that a wrong clock or header cannot stall
     * the account. Our own pacing is never longer than a window. */
    gint64 give_up_us = g_get_monotonic_time() + (gint64)http->max_retry_wait_s * G_USEC_PER_SEC;

    for (;;) {
        gint64 now_us = g_get_monotonic_time();
        gint64 wait_us = 0;

        if (read) {
            g_mutex_lock(&http->throttle_lock);
            wait_us = MAX(http->reads_not_before_us - now_us, 0);
            g_mutex_unlock(&http->throttle_lock);
        }
        if (wait_us == 0) {
            wait_us = ifs_budget_try_send(http->budget, priority, now_us < give_up_us, now_us,
                                          g_get_real_time() / G_USEC_PER_SEC);
            if (wait_us == 0)
                return TRUE;
            if (now_us < give_up_us)
                wait_us = MIN(wait_us, give_up_us - now_us);
        }
        g_debug("account '%s': %s request waits %.1f s for the API's rate limit", http->account,
                priority == IFS_PRIORITY_BACKGROUND ? "a background" : "a",
                (double)wait_us / G_USEC_PER_SEC);
        if (!http_sleep_unless_cancelled(http, wait_us, TRUE))
            return FALSE;
    }
}

static gint64 header_number(CURL *curl, const char *name)
{
    return curl ? ifs_http_parse_header_number(http_response_header(curl, name)) : -1;
}

/* After a request to the account's API (`curl` NULL: no answer came): the
 * answer's X-RateLimit-* tell the budget what the API counts. */
void http_budget_settle(IfsHttp *http, CURL *curl)
{
    gint64 remaining = header_number(curl, "X-RateLimit-Remaining");
    gint64 limit = header_number(curl, "X-RateLimit-Limit");
    gint64 reset = curl
        ? ifs_http_parse_rate_limit_reset(http_response_header(curl, "X-RateLimit-Reset"))
        : -1;
    long status = 0;

    if (curl)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    ifs_budget_answered(http->budget, limit, remaining, reset, status == 429,
                        g_get_real_time() / G_USEC_PER_SEC);
}

gboolean http_status_is_transient(int status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Retry-After on an answer worth retrying (429, 503, and the gateway
 * errors) holds back every later GET of the account. Returns the wait in
 * seconds, -1 when the server named none. */
gint64 http_note_retry_after(IfsHttp *http, CURL *curl, int status)
{
    gint64 wait_s;

    if (!http_status_is_transient(status))
        return -1;
    wait_s = ifs_http_parse_retry_after(http_response_header(curl, "Retry-After"),
                                        g_get_real_time() / G_USEC_PER_SEC);
    if (wait_s > 0)
        hold_reads_for(http, wait_s);
    return wait_s;
}
