/* The request budget of one account: how many requests its API allows in
 * a window, how many of them background refresh may spend (refresh_share),
 * and what the API's X-RateLimit-* answers said is left. Requests a user
 * started (control writes, their operation polls, an asked refresh) go
 * first: background requests are paced to their share, so the rest of the
 * limit is always there for users.
 *
 * Pure bookkeeping, thread-safe, with the clock passed in: the HTTP client
 * asks when a request may go and sleeps itself. */
#pragma once
#include <glib.h>

typedef enum {
    IFS_PRIORITY_USER, /* the default of every thread */
    IFS_PRIORITY_BACKGROUND, /* periodic refresh */
} IfsPriority;

/* The priority of the requests the calling thread sends; returns the one
 * before (and stops following, below). */
IfsPriority ifs_priority_set(IfsPriority p);
IfsPriority ifs_priority_get(void);
/* The calling thread's requests take the priority `*source` (an atomic
 * IfsPriority) holds when each is sent, so that another thread can
 * raise it: a refresh under way that a user asks for. NULL stops. */
void ifs_priority_follow(const gint *source);

/* A thread's priority setting, for threads working on its behalf
 * (ifs_run_concurrently's workers take their caller's). */
typedef struct {
    IfsPriority value;
    const gint *source;
} IfsPriorityScope;
IfsPriorityScope ifs_priority_scope(void);
void ifs_priority_enter(IfsPriorityScope scope);

/* Requests a window holds when only X-RateLimit-Limit is known: limits
 * are per minute unless `rate_limit = N/SECONDS` says otherwise. */
#define IFS_BUDGET_DEFAULT_WINDOW_S 60
#define IFS_BUDGET_DEFAULT_SHARE 50

typedef struct IfsBudget IfsBudget;

/* `limit` requests per `window_s` seconds (0: unknown until an answer's
 * X-RateLimit-Limit, counted per IFS_BUDGET_DEFAULT_WINDOW_S), of which
 * background requests may spend `share_pct` percent. `source` says where
 * the limit came from ("rate_limit in the config", "default for hostup"),
 * for the budget file; copied. */
IfsBudget *ifs_budget_new(guint limit, guint window_s, guint share_pct, const char *source);
void ifs_budget_free(IfsBudget *b);

/* Before a request of priority `p`: 0 when it may go now (it is then
 * counted as sent and in flight), else how many microseconds to wait
 * before asking again. `now_us` is monotonic, `now_s` epoch seconds.
 * Without `heed_api`, what the API said is left is not waited for (a
 * caller that waited long enough for a Reset that does not come). */
gint64 ifs_budget_try_send(IfsBudget *b, IfsPriority p, gboolean heed_api, gint64 now_us,
                           gint64 now_s);
/* After it: the answer's X-RateLimit-Limit, -Remaining and -Reset (epoch
 * seconds), -1 where absent (all -1 when no answer came), and whether the
 * API answered 429. */
void ifs_budget_answered(IfsBudget *b, gint64 limit, gint64 remaining, gint64 reset_s,
                         gboolean was_429, gint64 now_s);
/* The API's last X-RateLimit-Remaining, -1 when it never said. */
gint64 ifs_budget_api_remaining(IfsBudget *b);
/* Epoch seconds until which the API said nothing is left (X-RateLimit-
 * Remaining 0 with a Reset in the future), else 0. */
gint64 ifs_budget_exhausted_until(IfsBudget *b, gint64 now_s);

typedef struct {
    guint limit; /* requests per window; 0: unknown */
    guint window_s;
    char source[64]; /* where limit came from */
    guint share_pct;
    guint background_cap; /* background requests a window may hold; 0: unlimited */
    guint used_background; /* sent in the last window */
    guint used_user;
    gint64 remaining; /* the API's last X-RateLimit-Remaining, -1: never said */
    guint64 sent_background; /* since the mount */
    guint64 sent_user;
    guint64 answers_429;
} IfsBudgetStats;

void ifs_budget_stats(IfsBudget *b, gint64 now_us, IfsBudgetStats *out);

/* The refresh interval the account was given: what one refresh may
 * spend is the background's share of that long (ifs_budget_refresh_room). */
void ifs_budget_set_interval(IfsBudget *b, guint interval_s);
/* A refresh starts: its requests are counted from here. */
void ifs_budget_refresh_begin(IfsBudget *b);
/* Background requests the refresh under way may still send within one
 * interval; G_MAXUINT64 when the limit is unknown. */
guint64 ifs_budget_refresh_room(IfsBudget *b);
/* Background requests sent since the refresh began. */
guint64 ifs_budget_refresh_spent(IfsBudget *b);

/* Seconds a refresh that sends `requests` background requests needs at
 * the share (0 when the limit is unknown). */
double ifs_budget_seconds_for(IfsBudget *b, guint64 requests);
