/* Refreshing (see refresh.h): the per-account refresher threads, retry
 * delays, merging a list into the model, and the disk cache. */
#include "refresh.h"

#include "infrafs/backoff.h"
#include "infrafs/budget.h"
#include "infrafs/sanitizer.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

/* After a failed refresh: retry after 5 s, doubling up to the account's
 * interval, each delay spread by +-20 % so accounts and mounts do not
 * retry in step. */
#define RETRY_FIRST_S 5
/* However long a refresh took, the next starts no sooner than this after. */
#define MIN_GAP_US (G_USEC_PER_SEC)

/* ---- refresh ------------------------------------------------------------ */

static const char *state_for_error(const Account *a, const IfsError *err)
{
    if (err->errnum == EACCES)
        return "unauthorized";
    return a->ever_ok ? "stale" : "error";
}

static void first_refresh_finished(Refreshers *r, Account *a)
{
    if (a->first_done)
        return;
    a->first_done = TRUE;
    g_mutex_lock(&r->first_lock);
    r->first_pending--;
    g_cond_broadcast(&r->first_cond);
    g_mutex_unlock(&r->first_lock);
}

/* Adds to `out` the resources of `from` that an action changed later
 * (`changed` TRUE) or not (FALSE), by their key's presence in `later`. */
static void add_by_later_change(GPtrArray *out, GPtrArray *from, GHashTable *later,
                                gboolean changed)
{
    for (guint i = 0; i < from->len; i++) {
        IfsResource *r = g_ptr_array_index(from, i);
        char *k = r->kind && r->id ? store_resource_key(r->kind, r->id) : NULL;

        if ((k && g_hash_table_contains(later, k)) == changed)
            g_ptr_array_add(out, ifs_resource_ref(r));
        g_free(k);
    }
}

/* a->lock held. `listed` was read by a refresh that started at change
 * `since`: resources an action changed after that start are taken from the
 * current data instead (or left out, when the action removed them), so
 * that the refresh cannot undo them. The changes it saw are forgotten. */
static GPtrArray *with_later_actions(Account *a, GPtrArray *listed, guint64 since)
{
    GHashTable *later = account_take_changes_after(a, since);
    GPtrArray *merged;

    if (!later)
        return g_ptr_array_ref(listed);
    merged = g_ptr_array_new_full(listed->len, (GDestroyNotify)ifs_resource_unref);
    add_by_later_change(merged, listed, later, FALSE);
    add_by_later_change(merged, a->resources, later, TRUE);
    g_hash_table_destroy(later);
    return merged;
}

/* Keep our extras only for resources that still exist, or whose operation is
 * still running. */
static void prune_extras(Account *a)
{
    GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer key, value;

    for (guint i = 0; i < a->resources->len; i++) {
        IfsResource *r = g_ptr_array_index(a->resources, i);
        if (r->kind && r->id)
            g_hash_table_add(live, store_resource_key(r->kind, r->id));
    }
    g_hash_table_iter_init(&it, a->extras);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Extras *x = value;
        if (!g_hash_table_contains(live, key) && !(x->op && x->op->state == IFS_OP_PENDING))
            g_hash_table_iter_remove(&it);
    }
    g_hash_table_destroy(live);
}

/* When to try again after `failures` failed refreshes in a row: sooner
 * than the interval at first, then backing off to it, spread by jitter;
 * never before the API's Retry-After / rate-limit reset. */
static gint64 retry_delay_us(Account *a)
{
    gint64 delay_s =
        ifs_backoff(RETRY_FIRST_S, a->refresh_s, a->failures > 0 ? a->failures - 1 : 0);
    gint64 delay_us, held;

    delay_us = delay_s * G_USEC_PER_SEC;
    delay_us += g_random_int_range(-(gint32)(delay_us / 5), (gint32)(delay_us / 5) + 1);
    held = ifs_http_reads_held_until(a->http) - g_get_monotonic_time();
    return MAX(delay_us, held);
}

static void save_to_cache(Account *a, gint64 last_refresh)
{
    GPtrArray *items;
    IfsError *err = NULL;

    g_mutex_lock(&a->lock);
    items = a->save_items;
    a->save_items = NULL;
    g_mutex_unlock(&a->lock);
    if (!items)
        return;
    /* Said once, not after every refresh, until a save works again. */
    if (!ifs_cache_save(a->cache_path, a->cfg, last_refresh, items, &err)) {
        if (!a->save_failing)
            g_warning("%s", err->message);
        else
            g_debug("%s", err->message);
        a->save_failing = TRUE;
        ifs_error_free(err);
    } else {
        a->save_failing = FALSE;
    }
    g_ptr_array_unref(items);
}

/* A refresh parses answers of up to hundreds of MB into many small blocks
 * and frees them again; without this glibc keeps the peak. Not under
 * AddressSanitizer: its allocator replaces glibc's, whose arenas it then
 * never set up (malloc_trim crashes there). */

static void release_freed_memory(void)
{
#ifndef IFS_UNDER_ASAN
    malloc_trim(0);
#endif
}

/* A resource listed again with the same text is replaced by the copy
 * already held, and the fresh one freed at once: a refresh that changes
 * little leaves what it did not change where it was in memory, instead of
 * moving every resource to new blocks and leaving the old ones as holes. */
static void keep_unchanged_resources(Account *a, GPtrArray *list)
{
    GPtrArray *held;
    GHashTable *by_key;

    g_mutex_lock(&a->lock);
    held = g_ptr_array_ref(a->resources);
    g_mutex_unlock(&a->lock);
    by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < held->len; i++) {
        IfsResource *r = g_ptr_array_index(held, i);

        if (r->kind && r->id)
            g_hash_table_insert(by_key, store_resource_key(r->kind, r->id), r);
    }
    for (guint i = 0; i < list->len && g_hash_table_size(by_key) > 0; i++) {
        IfsResource *fresh = g_ptr_array_index(list, i);
        char *key = fresh->kind && fresh->id ? store_resource_key(fresh->kind, fresh->id) : NULL;
        IfsResource *old = key ? g_hash_table_lookup(by_key, key) : NULL;

        /* The problem too: it is what last_error says of this refresh. */
        if (old && old != fresh && ifs_resource_same(old, fresh) &&
            g_strcmp0(old->problem, fresh->problem) == 0) {
            list->pdata[i] = ifs_resource_ref(old);
            ifs_resource_unref(fresh);
        }
        g_free(key);
    }
    g_hash_table_unref(by_key);
    g_ptr_array_unref(held);
}

/* The secret read again from the account's token_file or token_command
 * (ifs_account_read_secret), and used from now on. FALSE, with *err
 * naming the source and the fix, when the source is now wrong. */
static gboolean reread_secret(Account *a, gboolean *changed, IfsError **err)
{
    char *secret = ifs_account_read_secret(a->cfg, err);

    *changed = FALSE;
    if (!secret)
        return FALSE;
    *changed = ifs_http_set_secret(a->http, secret);
    ifs_config_secret_free(secret);
    if (*changed)
        g_message("account '%s': the secret changed in its %s; using the new one", a->cfg->name,
                  a->cfg->secret_source);
    return TRUE;
}

/* The provider's list; the secret is read again first when the refresh
 * was asked for, and once more after the API refused the key, in case it
 * was fixed (rotated, say) since: then the list is asked again, once. A
 * key that stays refused is not asked again until someone asks. */
static gboolean list_resources(Account *a, GPtrArray *list, IfsError **err)
{
    gboolean changed = FALSE;
    IfsError *reread_err = NULL;

    if (a->asked && !reread_secret(a, &changed, err))
        return FALSE;
    if (a->type->list(a->pstate, list, err))
        return TRUE;
    /* An asked refresh has just read it. */
    if ((*err)->errnum == EACCES && !a->asked && reread_secret(a, &changed, &reread_err) &&
        changed) {
        ifs_error_free(*err);
        *err = NULL;
        g_ptr_array_set_size(list, 0);
        return a->type->list(a->pstate, list, err);
    }
    ifs_error_free(reread_err);
    return FALSE;
}

/* The list, with its requests counted against the background's share of
 * the budget unless someone asked for it (now, or while it runs: see
 * account_request_refresh), and its progress shown. */
static gboolean list_in_background(Account *a, GPtrArray *list, IfsError **err)
{
    IfsPriorityScope before = ifs_priority_scope();
    gboolean ok;

    g_atomic_int_set(&a->refresh_priority, a->asked ? IFS_PRIORITY_USER : IFS_PRIORITY_BACKGROUND);
    ifs_priority_follow(&a->refresh_priority);
    ifs_progress_attach(&a->progress);
    ok = list_resources(a, list, err);
    ifs_progress_attach(NULL);
    ifs_priority_enter(before);
    return ok;
}

/* a->lock held, after a refresh that listed the account: what it cost, and
 * when the next may start so that refresh keeps to its share of the
 * budget: `refresh` seconds after this one started, or as long as its
 * background requests need at the share, if that is longer (those of
 * users meanwhile, or of an asked refresh, are not refresh's). Returns
 * the delay from now. */
static gint64 note_refresh_cost(Account *a, guint resources, guint64 requests, gint64 started_us)
{
    IfsBudget *budget = ifs_http_budget(a->http);
    gint64 now_us = g_get_monotonic_time();
    double needed_s = ifs_budget_seconds_for(budget, ifs_budget_refresh_spent(budget));
    gint64 interval_s = MAX((gint64)a->refresh_s, (gint64)(needed_s + 0.999));

    a->last_pages = g_atomic_int_get(&a->progress.pages);
    a->last_resources = resources;
    a->last_requests = requests;
    a->last_seconds = (now_us - started_us + G_USEC_PER_SEC / 2) / G_USEC_PER_SEC;
    a->effective_interval_s = interval_s;
    return MAX(started_us + interval_s * G_USEC_PER_SEC - now_us, MIN_GAP_US);
}

int refresh_run(Refreshers *rf, Account *a)
{
    Model *m = a->model;
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;
    gboolean ok, partial_changed = FALSE;
    gint64 delay_us;
    gint64 refreshed_at = 0;
    guint64 since = 0;
    int errnum = 0;
    gint64 started_us = g_get_monotonic_time();
    guint64 requests_before = ifs_http_request_count(a->http);

    if (m->opts.offline) {
        ok = FALSE;
        err = ifs_error_new(EROFS, 0, NULL,
                            "mounted with -o offline: infrafs sends no "
                            "request; remount without offline to refresh%s%s",
                            a->cache_problem ? "; nothing to show: " : "",
                            a->cache_problem ? a->cache_problem : "");
    } else if (a->pstate) {
        g_mutex_lock(&a->lock);
        since = a->change_gen;
        g_mutex_unlock(&a->lock);
        ifs_progress_begin(&a->progress, store_now());
        ifs_budget_refresh_begin(ifs_http_budget(a->http));
        ok = list_in_background(a, list, &err);
        for (guint i = 0; ok && i < list->len; i++)
            ifs_resource_seal(g_ptr_array_index(list, i));
        if (ok)
            keep_unchanged_resources(a, list);
        if (ok && list->len > a->max_resources) {
            /* Memory stays bounded whatever an API returns: refuse the
             * whole answer rather than show an arbitrary part of it. */
            ok = FALSE;
            err =
                ifs_error_new(EIO, 0, NULL,
                              "account '%s': the API listed %u resources, more than max_resources "
                              "(%u); the last good data is kept; raise max_resources in the "
                              "account's section if this many are expected",
                              a->cfg->name, list->len, a->max_resources);
        }
    } else {
        ok = FALSE;
        err = ifs_error_copy(a->open_error);
    }
    store_redact_error(a, err);
    g_mutex_lock(&a->lock);
    if (ok) {
        /* With err set the refresh was partial (provider.h): the data is
         * current, and last_error says which part is not. */
        char *text = err ? store_one_line(err->message, MAX_PROBLEM_TEXT) : g_strdup("");

        GPtrArray *next = with_later_actions(a, list, since);

        g_ptr_array_unref(a->resources);
        a->resources = next;
        g_free(a->state);
        a->state = g_strdup("ok");
        partial_changed = err && g_strcmp0(a->last_error, text) != 0;
        g_free(a->last_error);
        a->last_error = text;
        a->last_refresh = refreshed_at = store_now();
        a->ever_ok = TRUE;
        a->failures = 0;
        a->save_wanted = a->cache_path != NULL;
        prune_extras(a);
        delay_us = note_refresh_cost(a, list->len,
                                     ifs_http_request_count(a->http) - requests_before, started_us);
    } else if (m->opts.offline) {
        g_free(a->state);
        a->state = g_strdup("offline");
        g_free(a->last_error);
        a->last_error = store_one_line(err->message, MAX_PROBLEM_TEXT);
        errnum = err->errnum;
        delay_us = G_MAXINT64 / 2; /* never: nothing to refresh from */
    } else {
        /* The last good data stays; the account says why. */
        g_free(a->state);
        a->state = g_strdup(state_for_error(a, err));
        g_free(a->last_error);
        a->last_error = store_one_line(err->message, MAX_PROBLEM_TEXT);
        errnum = err->errnum;
        a->failures++;
        /* A rejected key stays rejected: no automatic retries until someone
         * asks (refresh control, SIGHUP) rather than hammering the API. */
        delay_us = errnum == EACCES ? G_MAXINT64 / 2 : retry_delay_us(a);
    }
    a->next_refresh =
        delay_us >= G_MAXINT64 / 2 ? 0 : (g_get_real_time() + delay_us) / G_USEC_PER_SEC;
    a->next_due_mono = g_get_monotonic_time() + MIN(delay_us, G_MAXINT64 / 2);
    g_mutex_unlock(&a->lock);
    ifs_progress_end(&a->progress);
    /* At unmount a cancelled refresh is expected, not worth a warning. */
    if (!ok && !m->opts.offline && !model_stopping(m))
        g_warning("account '%s': refresh failed: %s", a->cfg->name, err->message);
    else if (ok && partial_changed) /* not again on every refresh */
        g_message("account '%s': refresh incomplete: %s", a->cfg->name, err->message);
    ifs_error_free(err);
    g_ptr_array_unref(list);
    publish_account(rf->publisher, a);
    if (ok)
        save_to_cache(a, refreshed_at);
    release_freed_memory();
    return errnum;
}

/* What a refresher thread is given. */
typedef struct {
    Refreshers *refreshers;
    Account *account;
} ThreadArgs;

static gpointer account_main(gpointer data)
{
    ThreadArgs *args = data;
    Refreshers *r = args->refreshers;
    Account *a = args->account;

    g_free(args);
    g_mutex_lock(&a->lock);
    while (!model_stopping(r->model)) {
        guint64 gen;
        int errnum;

        if (a->refresh_requested == a->refresh_started &&
            g_get_monotonic_time() < a->next_due_mono) {
            g_cond_wait_until(&a->cond, &a->lock, a->next_due_mono);
            continue;
        }
        gen = a->refresh_requested;
        a->asked = gen != a->refresh_started && a->first_done;
        a->refresh_started = gen;
        g_mutex_unlock(&a->lock);
        errnum = refresh_run(r, a);
        g_mutex_lock(&a->lock);
        a->refresh_done = gen;
        a->refresh_errnum = errnum;
        first_refresh_finished(r, a);
        g_cond_broadcast(&a->cond);
    }
    g_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- the disk cache, at start -------------------------------------------- */

void refresh_load_cache(Account *a)
{
    IfsError *err = NULL;
    IfsCacheData *saved = ifs_cache_load(a->cache_path, a->cfg, &err);

    if (!saved) {
        /* Offline, that copy was all there was to show: last_error says
         * why the tree is empty (refresh failures say it otherwise). */
        if (err) {
            g_warning("%s", err->message);
            a->cache_problem = g_strdup(err->message);
        } else {
            a->cache_problem = g_strdup_printf("no copy of account '%s' was saved at %s yet",
                                               a->cfg->name, a->cache_path);
        }
        ifs_error_free(err);
        return;
    }
    g_ptr_array_unref(a->resources);
    a->resources = g_ptr_array_ref(saved->resources);
    a->last_resources = a->resources->len;
    if (a->pstate && a->type->restore)
        a->type->restore(a->pstate, a->resources, saved->last_refresh);
    a->saved_mtimes = g_hash_table_ref(saved->mtimes);
    a->last_refresh = saved->last_refresh;
    a->ever_ok = TRUE;
    g_free(a->last_error);
    a->last_error = g_strdup("showing the copy saved on disk; first refresh not finished yet");
    ifs_cache_data_free(saved);
}

/* ---- the threads ---------------------------------------------------------- */

void refreshers_init(Refreshers *r, Model *m, Publisher *p)
{
    r->model = m;
    r->publisher = p;
    r->threads = g_ptr_array_new();
    g_mutex_init(&r->first_lock);
    g_cond_init(&r->first_cond);
    r->first_pending = 0;
}

void refreshers_start(Refreshers *r)
{
    GPtrArray *accounts = r->model->accounts;

    r->first_pending = accounts->len;
    for (guint i = 0; i < accounts->len; i++) {
        ThreadArgs *args = g_new0(ThreadArgs, 1);
        char *name;

        args->refreshers = r;
        args->account = g_ptr_array_index(accounts, i);
        name = g_strdup_printf("refresh-%s", args->account->cfg->name);
        g_ptr_array_add(r->threads, g_thread_new(name, account_main, args));
        g_free(name);
    }
}

gboolean refreshers_wait_first(Refreshers *r, int timeout_s)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    gboolean all;

    g_mutex_lock(&r->first_lock);
    while (r->first_pending > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&r->first_cond, &r->first_lock, until);
    all = r->first_pending == 0;
    g_mutex_unlock(&r->first_lock);
    return all;
}

void refreshers_join(Refreshers *r)
{
    for (guint i = 0; i < r->threads->len; i++)
        g_thread_join(g_ptr_array_index(r->threads, i));
    g_ptr_array_set_size(r->threads, 0);
}

void refreshers_clear(Refreshers *r)
{
    g_ptr_array_free(r->threads, TRUE);
    g_mutex_clear(&r->first_lock);
    g_cond_clear(&r->first_cond);
}
