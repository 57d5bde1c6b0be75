/* The request budget of one account (include/infrafs/budget.h): a log of
 * the requests sent in the last window, by priority, and the API's own
 * count from its X-RateLimit-* answers. */
#include "infrafs/budget.h"

#include <string.h>

/* Requests are counted when sent, the API counts them when they arrive:
 * a window one second longer than the API's, and one request less than
 * its limit, absorb the difference in network delays. */
#define WINDOW_SLACK_US G_USEC_PER_SEC
/* Asking again sooner than this gains nothing. */
#define MIN_WAIT_US (20 * 1000)
/* The furthest ahead an X-RateLimit-Reset is believed. */
#define MAX_RESET_AHEAD_S (24 * 3600)

static _Thread_local IfsPriority thread_priority = IFS_PRIORITY_USER;
static _Thread_local const gint *priority_source;

IfsPriority ifs_priority_get(void)
{
    return priority_source ? (IfsPriority)g_atomic_int_get(priority_source) : thread_priority;
}

IfsPriority ifs_priority_set(IfsPriority p)
{
    IfsPriority before = ifs_priority_get();

    thread_priority = p;
    priority_source = NULL;
    return before;
}

void ifs_priority_follow(const gint *source)
{
    priority_source = source;
}

IfsPriorityScope ifs_priority_scope(void)
{
    return (IfsPriorityScope){.value = thread_priority, .source = priority_source};
}

void ifs_priority_enter(IfsPriorityScope scope)
{
    thread_priority = scope.value;
    priority_source = scope.source;
}

struct IfsBudget {
    GMutex lock; /* guards everything below */
    guint limit; /* per window; 0: unknown */
    guint window_s;
    gboolean limit_fixed; /* from the config or the provider: answers don't change it */
    char source[64];
    guint share_pct;
    /* The requests sent in the last window, oldest first: send time (µs,
     * monotonic) shifted left by one, the low bit set for background. */
    GQueue sent;
    guint window_background, window_user;
    /* What the API said: what is left (less what was sent since), until
     * when, and its limit; -1 / 0 when it never said. */
    gint64 api_left;
    gint64 api_reset;
    gint64 api_limit;
    gint64 api_said; /* the last X-RateLimit-Remaining itself */
    guint in_flight;
    guint64 sent_background, sent_user, answers_429;
    guint interval_s; /* the account's refresh interval; 0: unset */
    guint64 refresh_began_at; /* sent_background when the refresh began */
};

IfsBudget *ifs_budget_new(guint limit, guint window_s, guint share_pct, const char *source)
{
    IfsBudget *b = g_new0(IfsBudget, 1);

    g_mutex_init(&b->lock);
    b->limit = limit;
    b->limit_fixed = limit > 0;
    b->window_s = window_s > 0 ? window_s : IFS_BUDGET_DEFAULT_WINDOW_S;
    b->share_pct = share_pct > 0 && share_pct <= 100 ? share_pct : IFS_BUDGET_DEFAULT_SHARE;
    g_strlcpy(b->source, limit > 0 && source ? source : "unknown", sizeof b->source);
    g_queue_init(&b->sent);
    b->api_left = -1;
    b->api_limit = -1;
    b->api_said = -1;
    return b;
}

void ifs_budget_free(IfsBudget *b)
{
    if (!b)
        return;
    g_queue_clear(&b->sent);
    g_mutex_clear(&b->lock);
    g_free(b);
}

static gint64 window_us(const IfsBudget *b)
{
    return (gint64)b->window_s * G_USEC_PER_SEC + WINDOW_SLACK_US;
}

static gint64 entry_time(gpointer entry)
{
    return (gint64)(GPOINTER_TO_SIZE(entry) >> 1);
}

static gboolean entry_background(gpointer entry)
{
    return (GPOINTER_TO_SIZE(entry) & 1) != 0;
}

/* b->lock held. Forgets the requests older than the window. */
static void prune(IfsBudget *b, gint64 now_us)
{
    gpointer head;

    while ((head = g_queue_peek_head(&b->sent)) != NULL &&
           entry_time(head) + window_us(b) <= now_us) {
        g_queue_pop_head(&b->sent);
        if (entry_background(head))
            b->window_background--;
        else
            b->window_user--;
    }
}

/* b->lock held. The most requests a window may hold, and background ones. */
static guint total_cap(const IfsBudget *b)
{
    return b->limit > 1 ? b->limit - 1 : b->limit;
}

static guint background_cap(const IfsBudget *b)
{
    guint cap = (guint)((guint64)b->limit * b->share_pct / 100);

    return b->limit == 0 ? 0 : CLAMP(cap, 1, total_cap(b));
}

/* b->lock held. Microseconds until the oldest request (of the background
 * ones only, with `background`) leaves the window. */
static gint64 until_oldest_leaves(IfsBudget *b, gboolean background, gint64 now_us)
{
    for (GList *l = b->sent.head; l; l = l->next)
        if (!background || entry_background(l->data))
            return MAX(entry_time(l->data) + window_us(b) - now_us, MIN_WAIT_US);
    return MIN_WAIT_US;
}

/* b->lock held. Of what the API says is left, the part a background
 * request must leave to users: the users' share of the API's limit. */
static gint64 users_reserve(const IfsBudget *b)
{
    gint64 limit = b->api_limit > 0 ? b->api_limit : b->limit;
    /* limit * share / 100 without overflow: the header may say anything. */
    gint64 background = limit / 100 * b->share_pct + limit % 100 * b->share_pct / 100;

    return limit > 1 ? limit - CLAMP(background, 1, limit - 1) : 0;
}

/* b->lock held. Microseconds until the API's own count lets the request
 * go, 0 when it does. */
static gint64 api_wait(IfsBudget *b, gboolean background, gint64 now_s)
{
    gint64 reserve = background ? users_reserve(b) : 0;

    if (b->api_left >= 0 && b->api_reset > 0 && now_s >= b->api_reset) {
        /* Its window is over: a full one (or, limit unknown, unknown). */
        b->api_left = b->api_limit;
        b->api_reset = 0;
    }
    if (b->api_left < 0 || b->api_left > reserve || b->api_reset <= now_s)
        return 0;
    return MAX((b->api_reset - now_s) * G_USEC_PER_SEC, MIN_WAIT_US);
}

gint64 ifs_budget_try_send(IfsBudget *b, IfsPriority p, gboolean heed_api, gint64 now_us,
                           gint64 now_s)
{
    gboolean background = p == IFS_PRIORITY_BACKGROUND;
    gint64 wait = 0;

    g_mutex_lock(&b->lock);
    prune(b, now_us);
    wait = heed_api ? api_wait(b, background, now_s) : 0;
    if (wait == 0 && b->limit > 0) {
        if (b->window_background + b->window_user >= total_cap(b))
            wait = until_oldest_leaves(b, FALSE, now_us);
        else if (background && b->window_background >= background_cap(b))
            wait = until_oldest_leaves(b, TRUE, now_us);
    }
    if (wait == 0) {
        g_queue_push_tail(&b->sent, GSIZE_TO_POINTER(((gsize)now_us << 1) | (background ? 1 : 0)));
        if (background) {
            b->window_background++;
            b->sent_background++;
        } else {
            b->window_user++;
            b->sent_user++;
        }
        if (b->api_left > 0)
            b->api_left--;
        b->in_flight++;
    }
    g_mutex_unlock(&b->lock);
    return wait;
}

/* Remaining does not count the requests still in flight, which api_left
 * already has. Within one window (the same Reset) what is left only
 * shrinks, so that an answer overtaken by later ones cannot raise it; a
 * later Reset starts a new window (and a token bucket's time-to-full only
 * grows as it is drawn on). */
void ifs_budget_answered(IfsBudget *b, gint64 limit, gint64 remaining, gint64 reset_s,
                         gboolean was_429, gint64 now_s)
{
    g_mutex_lock(&b->lock);
    if (b->in_flight > 0)
        b->in_flight--;
    /* No API's window is longer than a day: a Reset beyond that is broken,
     * and must not hold requests back for years. */
    reset_s = MIN(reset_s, now_s + MAX_RESET_AHEAD_S);
    if (remaining >= 0) {
        gint64 left = MAX(remaining - (gint64)b->in_flight, 0);
        gboolean new_window = b->api_left < 0 || reset_s > b->api_reset ||
            (b->api_reset > 0 && now_s >= b->api_reset);

        b->api_said = remaining;
        b->api_left = new_window ? left : MIN(b->api_left, left);
        if (reset_s > b->api_reset)
            b->api_reset = reset_s;
    }
    if (limit > 0) {
        b->api_limit = limit;
        if (!b->limit_fixed && limit <= G_MAXUINT) {
            b->limit = (guint)limit;
            g_strlcpy(b->source, "X-RateLimit-Limit", sizeof b->source);
        }
    }
    if (was_429)
        b->answers_429++;
    g_mutex_unlock(&b->lock);
}

gint64 ifs_budget_exhausted_until(IfsBudget *b, gint64 now_s)
{
    gint64 until;

    g_mutex_lock(&b->lock);
    until = b->api_left == 0 && b->api_reset > now_s ? b->api_reset : 0;
    g_mutex_unlock(&b->lock);
    return until;
}

void ifs_budget_stats(IfsBudget *b, gint64 now_us, IfsBudgetStats *out)
{
    g_mutex_lock(&b->lock);
    prune(b, now_us);
    out->limit = b->limit;
    out->window_s = b->window_s;
    g_strlcpy(out->source, b->source, sizeof out->source);
    out->share_pct = b->share_pct;
    out->background_cap = background_cap(b);
    out->used_background = b->window_background;
    out->used_user = b->window_user;
    out->remaining = b->api_said;
    out->sent_background = b->sent_background;
    out->sent_user = b->sent_user;
    out->answers_429 = b->answers_429;
    g_mutex_unlock(&b->lock);
}

double ifs_budget_seconds_for(IfsBudget *b, guint64 requests)
{
    double seconds = 0;

    g_mutex_lock(&b->lock);
    if (b->limit > 0)
        seconds = (double)requests * (double)window_us(b) / G_USEC_PER_SEC / background_cap(b);
    g_mutex_unlock(&b->lock);
    return seconds;
}

void ifs_budget_set_interval(IfsBudget *b, guint interval_s)
{
    g_mutex_lock(&b->lock);
    b->interval_s = interval_s;
    g_mutex_unlock(&b->lock);
}

void ifs_budget_refresh_begin(IfsBudget *b)
{
    g_mutex_lock(&b->lock);
    b->refresh_began_at = b->sent_background;
    g_mutex_unlock(&b->lock);
}

guint64 ifs_budget_refresh_room(IfsBudget *b)
{
    guint64 room = G_MAXUINT64;

    g_mutex_lock(&b->lock);
    if (b->limit > 0 && b->interval_s > 0) {
        guint64 per_interval =
            (guint64)background_cap(b) * b->interval_s * G_USEC_PER_SEC / (guint64)window_us(b);
        guint64 spent = b->sent_background - b->refresh_began_at;

        room = per_interval > spent ? per_interval - spent : 0;
    }
    g_mutex_unlock(&b->lock);
    return room;
}

gint64 ifs_budget_api_remaining(IfsBudget *b)
{
    gint64 said;

    g_mutex_lock(&b->lock);
    said = b->api_said;
    g_mutex_unlock(&b->lock);
    return said;
}

guint64 ifs_budget_refresh_spent(IfsBudget *b)
{
    guint64 spent;

    g_mutex_lock(&b->lock);
    spent = b->sent_background - b->refresh_began_at;
    g_mutex_unlock(&b->lock);
    return spent;
}
