/* The store: per-account data, background refresh, immutable snapshots
 * swapped atomically, kernel cache invalidation, and lookups.
 *
 * Threads:
 *  - one refresher per account: calls the provider (network), then asks the
 *    publisher to publish and waits for it;
 *  - one publisher for the whole store: builds the new tree from the
 *    accounts' data (tree.c), reuses unchanged nodes, swaps the root under a
 *    short lock and sends invalidations for what changed. Invalidations are
 *    only ever sent from this thread, never from inside a FUSE request;
 *  - a pool of workers for operation polls and single-resource fetches
 *    (actions.c);
 *  - FUSE threads: read the current root; control writes call the API in
 *    the writing thread and then wait for the publisher (actions.c), and
 *    resolve inodes through the registry of those the kernel holds
 *    (inodes.c). */
#include "store_private.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ---------------------------------------------------- */

char *store_iso_time(gint64 epoch)
{
    GDateTime *dt;
    char *text;

    if (epoch <= 0)
        return g_strdup("");
    dt = g_date_time_new_from_unix_utc(epoch);
    text = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return text;
}

gint64 store_now(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* One line of valid UTF-8 without control characters, at most `max` bytes:
 * what goes into last_action and last_error. Control characters become
 * spaces, bytes that are not UTF-8 become U+FFFD. */
char *store_one_line(const char *text, size_t max)
{
    char *valid = g_utf8_make_valid(text ? text : "", -1);
    GString *out = g_string_new(NULL);

    for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        size_t len = (size_t)(g_utf8_next_char(p) - p);

        if (out->len + len > max)
            break;
        if (g_unichar_iscntrl(c))
            g_string_append_c(out, ' ');
        else
            g_string_append_len(out, p, (gssize)len);
    }
    g_free(valid);
    return g_string_free(out, FALSE);
}

/* Text a user wrote (a command refused before it was understood), shown as
 * one line of text: printable characters as they are, every other byte as
 * \xNN (a backslash too, so the rule can be reversed), at most `max` bytes
 * of input. */
char *store_escaped_input(const char *buf, size_t len, size_t max)
{
    GString *out = g_string_new(NULL);
    const char *p = buf;
    const char *end = buf + MIN(len, max);

    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);

        if (c < 0x80 && c != '\\' && g_ascii_isprint((char)c)) {
            g_string_append_c(out, *p++);
        } else if (c < (gunichar)-2 && c >= 0x80 && g_unichar_isprint(c)) {
            const char *next = g_utf8_next_char(p);
            g_string_append_len(out, p, next - p);
            p = next;
        } else {
            g_string_append_printf(out, "\\x%02X", (unsigned char)*p++);
        }
    }
    return g_string_free(out, FALSE);
}

/* Whatever an API said, before it is shown or logged: never in any form
 * the account's credential (a server may echo the request's headers). */
void store_redact_error(Account *a, IfsError *err)
{
    char *text;

    if (!err)
        return;
    text = ifs_http_redact(a->http, err->message);
    g_free(err->message);
    err->message = text;
    text = ifs_http_redact(a->http, err->code);
    g_free(err->code);
    err->code = text;
}

char *store_resource_key(const char *kind, const char *id)
{
    return g_strconcat(kind, "/", id, NULL);
}

/* ---- publishing (publisher thread) -------------------------------------- */

typedef struct {
    IfsStore *store;
    GPtrArray *waits; /* IfsNode*: wait files to invalidate after waking readers */
} DiffSink;

static void sink_changed(void *data, uint64_t ino)
{
    IfsStore *s = ((DiffSink *)data)->store;

    if (s->inv.inval_inode)
        s->inv.inval_inode(s->inv.data, ino);
}

static void sink_wait_changed(void *data, const IfsNode *fresh)
{
    DiffSink *d = data;

    g_ptr_array_add(d->waits, ifs_node_ref((IfsNode *)fresh));
}

static void sink_removed(void *data, uint64_t parent, const char *name)
{
    IfsStore *s = ((DiffSink *)data)->store;

    if (s->inv.inval_entry)
        s->inv.inval_entry(s->inv.data, parent, name);
}

void store_mark_done(IfsStore *s, Operation *op)
{
    g_mutex_lock(&s->op_lock);
    op->done = TRUE;
    g_cond_broadcast(&s->op_cond);
    g_mutex_unlock(&s->op_lock);
}

/* Until every reader of `op` has replied (bounded: a reader that is slow
 * to wake must not stall publishing for long). */
static void wait_replies(IfsStore *s, Operation *op)
{
    gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    g_mutex_lock(&s->op_lock);
    while (op->readers > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&s->op_cond, &s->op_lock, until);
    g_mutex_unlock(&s->op_lock);
}

static Operation *wait_node_operation(const IfsNode *wait)
{
    IfsControlTarget *t = ifs_node_target(wait);

    return t ? t->op : NULL;
}

/* Swap in a new root, then tell the kernel what changed.
 *
 * The invariant: the publisher never invalidates a page that a request
 * blocked in this daemon can hold locked. Readers of operation/wait hold
 * theirs until they are answered, so every wait file whose text changed
 * (only its operation's own finishing publish changes it) has its readers
 * woken, after every other invalidation (so what they read next is
 * current), and answered before the file itself is invalidated. */
static void publish_root(IfsStore *s)
{
    IfsNode *fresh = store_build_root(s);
    IfsNode *old;
    DiffSink d = {s, g_ptr_array_new_with_free_func((GDestroyNotify)ifs_node_unref)};
    IfsNodeDiffSink sink = {
        .changed = sink_changed,
        .removed = sink_removed,
        .wait_changed = sink_wait_changed,
        .data = &d,
    };

    g_mutex_lock(&s->root_lock);
    old = s->root;
    g_mutex_unlock(&s->root_lock);
    fresh = ifs_node_merge_unchanged(fresh, old);
    g_mutex_lock(&s->pin_lock);
    g_mutex_lock(&s->root_lock);
    s->root = fresh;
    g_mutex_unlock(&s->root_lock);
    __atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE);
    g_mutex_unlock(&s->pin_lock);
    /* Only after the swap: a re-read must find the new data. */
    if (old) {
        ifs_node_diff(old, fresh, &sink);
        ifs_node_unref(old);
    }
    for (guint i = 0; i < d.waits->len; i++) {
        Operation *op = wait_node_operation(g_ptr_array_index(d.waits, i));
        if (op)
            store_mark_done(s, op);
    }
    for (guint i = 0; i < d.waits->len; i++) {
        IfsNode *wait = g_ptr_array_index(d.waits, i);
        Operation *op = wait_node_operation(wait);
        if (op)
            wait_replies(s, op);
        if (s->inv.inval_inode)
            s->inv.inval_inode(s->inv.data, wait->ino);
    }
    g_ptr_array_unref(d.waits);
}

/* The operations that end in this publish: their wait files show the final
 * text from now on (a rebuild of their resource is forced). Readers are
 * woken in publish_root, or here when the file is no longer in the tree. */
static void show_final(IfsStore *s, GPtrArray *finished_ops)
{
    for (guint i = 0; i < finished_ops->len; i++) {
        Operation *op = g_ptr_array_index(finished_ops, i);
        Account *a = op->account;
        char *key = store_resource_key(op->res_kind, op->res_id);

        g_mutex_lock(&s->op_lock);
        op->shown_final = TRUE;
        g_mutex_unlock(&s->op_lock);
        g_mutex_lock(&a->lock);
        {
            Extras *x = g_hash_table_lookup(a->extras, key);
            if (x && x->op == op)
                x->gen++;
        }
        g_mutex_unlock(&a->lock);
        g_free(key);
    }
}

static void done_signal(Done *d)
{
    g_mutex_lock(&d->lock);
    d->finished = TRUE;
    g_cond_broadcast(&d->cond);
    g_mutex_unlock(&d->lock);
}

static gpointer publisher_main(gpointer data)
{
    IfsStore *s = data;

    for (;;) {
        PublishReq *req = g_async_queue_pop(s->publish_q);
        GPtrArray *batch = g_ptr_array_new();
        GPtrArray *finished = g_ptr_array_new();
        gboolean stop = FALSE;

        /* Coalesce everything queued: one root swap serves them all. */
        do {
            g_ptr_array_add(batch, req);
        } while ((req = g_async_queue_try_pop(s->publish_q)) != NULL);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            if (r->finished_op)
                g_ptr_array_add(finished, r->finished_op);
        }
        show_final(s, finished);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            gboolean dup = FALSE;
            if (!r->account) {
                stop = TRUE;
                continue;
            }
            for (guint j = 0; j < i && !dup; j++)
                dup = ((PublishReq *)g_ptr_array_index(batch, j))->account == r->account;
            if (!dup)
                store_build_account(r->account);
        }
        publish_root(s);
        /* An operation whose file left the tree (its resource is gone, or a
         * newer operation replaced it) has readers all the same. */
        for (guint i = 0; i < finished->len; i++)
            store_mark_done(s, g_ptr_array_index(finished, i));
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            if (r->done)
                done_signal(r->done);
            g_free(r);
        }
        g_ptr_array_free(batch, TRUE);
        g_ptr_array_free(finished, TRUE);
        if (stop)
            return NULL;
    }
}

/* Publish an account's current data and wait until the new tree is live and
 * the kernel was told what changed. `finished_op`, if not NULL, ended and
 * its readers are woken within this publish. Never called from the
 * publisher. */
void store_publish_finishing(Account *a, Operation *finished_op)
{
    Done d;
    PublishReq *req = g_new0(PublishReq, 1);

    g_mutex_init(&d.lock);
    g_cond_init(&d.cond);
    d.finished = FALSE;
    req->account = a;
    req->done = &d;
    req->finished_op = finished_op;
    g_async_queue_push(a->store->publish_q, req);
    g_mutex_lock(&d.lock);
    while (!d.finished)
        g_cond_wait(&d.cond, &d.lock);
    g_mutex_unlock(&d.lock);
    g_mutex_clear(&d.lock);
    g_cond_clear(&d.cond);
}

void store_publish(Account *a)
{
    store_publish_finishing(a, NULL);
}

/* ---- refresh ------------------------------------------------------------ */

static const char *state_for_error(const Account *a, const IfsError *err)
{
    if (err->errnum == EACCES)
        return "unauthorized";
    return a->ever_ok ? "stale" : "error";
}

static void first_refresh_finished(Account *a)
{
    IfsStore *s = a->store;

    if (a->first_done)
        return;
    a->first_done = TRUE;
    g_mutex_lock(&s->first_lock);
    s->first_pending--;
    g_cond_broadcast(&s->first_cond);
    g_mutex_unlock(&s->first_lock);
}

/* a->lock held. */
void store_note_action_change(Account *a, const char *kind, const char *id)
{
    g_hash_table_replace(a->changed_at, store_resource_key(kind, id),
                         GSIZE_TO_POINTER(++a->change_gen));
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
    GHashTable *later = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer key, gen;
    GPtrArray *merged;

    g_hash_table_iter_init(&it, a->changed_at);
    while (g_hash_table_iter_next(&it, &key, &gen)) {
        if (GPOINTER_TO_SIZE(gen) > since)
            g_hash_table_add(later, key);
        else
            g_hash_table_iter_remove(&it);
    }
    if (g_hash_table_size(later) == 0) {
        g_hash_table_destroy(later);
        return g_ptr_array_ref(listed);
    }
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
    gint64 delay_s = RETRY_FIRST_S;
    gint64 delay_us, held;

    for (guint i = 1; i < a->failures && delay_s < a->refresh_s; i++)
        delay_s *= 2;
    delay_s = MIN(delay_s, (gint64)a->refresh_s);
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
#if defined(__SANITIZE_ADDRESS__)
#define IFS_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define IFS_UNDER_ASAN 1
#endif
#endif

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
        char *key = fresh->kind && fresh->id ? store_resource_key(fresh->kind, fresh->id)
                                             : NULL;
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

static int run_refresh(Account *a)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;
    gboolean ok, partial_changed = FALSE;
    gint64 delay_us;
    gint64 refreshed_at = 0;
    guint64 since = 0;
    int errnum = 0;

    if (a->store->opts.offline) {
        ok = FALSE;
        err = ifs_error_new(EROFS, 0, NULL, "mounted with -o offline: infrafs sends no "
                            "request; remount without offline to refresh%s%s",
                            a->cache_problem ? "; nothing to show: " : "",
                            a->cache_problem ? a->cache_problem : "");
    } else if (a->pstate) {
        g_mutex_lock(&a->lock);
        since = a->change_gen;
        g_mutex_unlock(&a->lock);
        ok = a->type->list(a->pstate, list, &err);
        for (guint i = 0; ok && i < list->len; i++)
            ifs_resource_seal(g_ptr_array_index(list, i));
        if (ok)
            keep_unchanged_resources(a, list);
        if (ok && list->len > a->max_resources) {
            /* Memory stays bounded whatever an API returns: refuse the
             * whole answer rather than show an arbitrary part of it. */
            ok = FALSE;
            err = ifs_error_new(EIO, 0, NULL,
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
        delay_us = (gint64)a->refresh_s * G_USEC_PER_SEC;
    } else if (a->store->opts.offline) {
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
    a->next_refresh = delay_us >= G_MAXINT64 / 2 ? 0 : store_now() + delay_us / G_USEC_PER_SEC;
    a->next_due_mono = g_get_monotonic_time() + MIN(delay_us, G_MAXINT64 / 2);
    g_mutex_unlock(&a->lock);
    /* At unmount a cancelled refresh is expected, not worth a warning. */
    if (!ok && !a->store->opts.offline && !store_stopping(a->store))
        g_warning("account '%s': refresh failed: %s", a->cfg->name, err->message);
    else if (ok && partial_changed) /* not again on every refresh */
        g_message("account '%s': refresh incomplete: %s", a->cfg->name, err->message);
    ifs_error_free(err);
    g_ptr_array_unref(list);
    store_publish(a);
    if (ok)
        save_to_cache(a, refreshed_at);
    release_freed_memory();
    return errnum;
}

static gpointer account_main(gpointer data)
{
    Account *a = data;
    IfsStore *s = a->store;

    g_mutex_lock(&a->lock);
    while (!store_stopping(s)) {
        guint64 gen;
        int errnum;

        if (a->refresh_requested == a->refresh_started &&
            g_get_monotonic_time() < a->next_due_mono) {
            g_cond_wait_until(&a->cond, &a->lock, a->next_due_mono);
            continue;
        }
        gen = a->refresh_requested;
        a->refresh_started = gen;
        g_mutex_unlock(&a->lock);
        errnum = run_refresh(a);
        g_mutex_lock(&a->lock);
        a->refresh_done = gen;
        a->refresh_errnum = errnum;
        first_refresh_finished(a);
        g_cond_broadcast(&a->cond);
    }
    g_mutex_unlock(&a->lock);
    return NULL;
}

/* Ask for a refresh that starts after this call; optionally wait for it. */
int store_request_refresh(Account *a, gboolean wait)
{
    guint64 mine;
    int errnum = 0;

    g_mutex_lock(&a->lock);
    mine = ++a->refresh_requested;
    g_cond_broadcast(&a->cond);
    while (wait && a->refresh_done < mine && !store_stopping(a->store))
        g_cond_wait(&a->cond, &a->lock);
    if (wait)
        errnum = store_stopping(a->store) && a->refresh_done < mine ? EINTR : a->refresh_errnum;
    g_mutex_unlock(&a->lock);
    return errnum;
}

/* ---- read side ------------------------------------------------------------ */

static IfsNode *current_root(IfsStore *s)
{
    IfsNode *root;

    g_mutex_lock(&s->root_lock);
    root = s->root ? ifs_node_ref(s->root) : NULL;
    g_mutex_unlock(&s->root_lock);
    return root;
}

IfsNode *ifs_store_get(IfsStore *store, uint64_t ino)
{
    IfsNode *root = current_root(store);
    IfsNode *node;

    if (!root)
        return NULL;
    /* By path, not by ino: a wait file replaced by a newer operation's
     * (another inode at the same path) answers as that one, so a reader
     * that raced the replacement waits for the newer operation rather
     * than failing. */
    node = ifs_inodes_resolve(store->inodes, root, ino);
    ifs_node_unref(root);
    return node;
}

IfsNode *ifs_store_parent(IfsStore *store, uint64_t ino)
{
    IfsNode *root = current_root(store);
    IfsNode *dir;

    if (!root)
        return NULL;
    dir = ifs_inodes_resolve_parent(store->inodes, root, ino);
    ifs_node_unref(root);
    return dir;
}

guint64 ifs_store_generation(IfsStore *store)
{
    return __atomic_load_n(&store->generation, __ATOMIC_ACQUIRE);
}

void ifs_store_pin(IfsStore *store)
{
    g_mutex_lock(&store->pin_lock);
}

void ifs_store_unpin(IfsStore *store)
{
    g_mutex_unlock(&store->pin_lock);
}

gboolean ifs_store_kernel_holds(IfsStore *store, uint64_t ino)
{
    return ifs_inodes_held(store->inodes, ino);
}

void ifs_store_forget(IfsStore *store, uint64_t ino, uint64_t nlookup)
{
    ifs_inodes_forget(store->inodes, ino, nlookup);
}

IfsNode *ifs_store_lookup(IfsStore *store, uint64_t parent_ino, const char *name)
{
    IfsNode *root = current_root(store);
    IfsNode *node;

    if (!root)
        return NULL;
    node = ifs_inodes_lookup(store->inodes, root, parent_ino, name);
    ifs_node_unref(root);
    return node;
}

void ifs_store_remember_children(IfsStore *store, uint64_t dir_ino, const IfsNode *dir,
                                 guint from, guint to)
{
    ifs_inodes_count_children(store->inodes, dir_ino, dir, from, to);
}

static void built_free(gpointer data)
{
    Built *b = data;

    ifs_resource_unref(b->res);
    ifs_node_unref(b->node);
    g_free(b->problems);
    g_free(b);
}


/* ---- lifecycle -------------------------------------------------------------- */

IfsStore *ifs_store_new(const IfsStoreOptions *opts)
{
    IfsStore *s = g_new0(IfsStore, 1);

    s->opts = *opts;
    if (s->opts.refresh_s <= 0)
        s->opts.refresh_s = 60;
    if (s->opts.op_poll_timeout_s <= 0)
        s->opts.op_poll_timeout_s = 1800;
    s->accounts = g_ptr_array_new();
    g_mutex_init(&s->root_lock);
    g_mutex_init(&s->pin_lock);
    g_mutex_init(&s->op_lock);
    g_cond_init(&s->op_cond);
    g_mutex_init(&s->first_lock);
    g_cond_init(&s->first_cond);
    s->inodes = ifs_inodes_new();
    s->publish_q = g_async_queue_new();
    return s;
}

/* Start from the saved copy, if there is a usable one: served as "stale"
 * until the first refresh replaces it. */
static void load_from_cache(Account *a)
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
    if (a->pstate && a->type->restore)
        a->type->restore(a->pstate, a->resources);
    a->saved_mtimes = g_hash_table_ref(saved->mtimes);
    a->last_refresh = saved->last_refresh;
    a->ever_ok = TRUE;
    g_free(a->last_error);
    a->last_error = g_strdup("showing the copy saved on disk; first refresh not finished yet");
    ifs_cache_data_free(saved);
}

gboolean ifs_store_add_account(IfsStore *store, const IfsAccountConfig *cfg, IfsError **err)
{
    return ifs_store_add_account_of(store, cfg, ifs_provider_find(cfg->type), err);
}

gboolean ifs_store_add_account_of(IfsStore *store, const IfsAccountConfig *cfg,
                                  const IfsProviderType *type, IfsError **err)
{
    IfsHttpConfig hc = {0};
    Account *a;

    if (!type) {
        ifs_error_propagate(err, ifs_error_new(EINVAL, 0, NULL,
                            "account '%s': unknown type '%s'", cfg->name, cfg->type));
        return FALSE;
    }
    a = g_new0(Account, 1);
    a->store = store;
    a->cfg = cfg;
    a->type = type;
    a->refresh_s = cfg->refresh_s > 0 ? cfg->refresh_s : store->opts.refresh_s;
    hc.account = cfg->name;
    hc.origin = cfg->url;
    hc.auth = type->auth;
    hc.auth_header = type->auth_header;
    hc.user = cfg->user;
    hc.secret = cfg->secret;
    hc.cacert = cfg->cacert;
    hc.timeout_ms = cfg->timeout_s > 0 ? (long)cfg->timeout_s * 1000 : 0;
    a->max_resources = cfg->max_resources > 0 ? (guint)cfg->max_resources
                                              : IFS_DEFAULT_MAX_RESOURCES;
    a->http = ifs_http_new(&hc);
    a->pstate = type->open(a->http, cfg, &a->open_error);
    a->refresh_target = store_target_new(TARGET_REFRESH, a, NULL, NULL, "refresh");
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    a->resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    a->extras = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, store_extras_free);
    a->built = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, built_free);
    a->changed_at = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    a->kind_dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify)ifs_node_unref);
    a->state = g_strdup("stale");
    a->last_error = g_strdup("first refresh not finished yet");
    a->refresh_requested = 1; /* the first refresh starts at once */
    if (store->opts.cache_dir) {
        a->cache_path = ifs_cache_file(store->opts.cache_dir, cfg->name);
        load_from_cache(a);
    }
    g_ptr_array_add(store->accounts, a);
    return TRUE;
}

void ifs_store_set_invalidator(IfsStore *store, const IfsInvalidator *inv)
{
    store->inv = *inv;
}

void ifs_store_start(IfsStore *store)
{
    store->workers = g_thread_pool_new(store_worker_main, store, 32, FALSE, NULL);
    store->publisher = g_thread_new("publisher", publisher_main, store);
    store->first_pending = store->accounts->len;
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        store_publish(a);
    }
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        char *name = g_strdup_printf("refresh-%s", a->cfg->name);
        a->thread = g_thread_new(name, account_main, a);
        g_free(name);
    }
    store->started = TRUE;
}

gboolean ifs_store_wait_first_refresh(IfsStore *store, int timeout_s)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    gboolean all;

    g_mutex_lock(&store->first_lock);
    while (store->first_pending > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&store->first_cond, &store->first_lock, until);
    all = store->first_pending == 0;
    g_mutex_unlock(&store->first_lock);
    return all;
}

void ifs_store_refresh_all(IfsStore *store)
{
    for (guint i = 0; i < store->accounts->len; i++)
        store_request_refresh(g_ptr_array_index(store->accounts, i), FALSE);
}

void ifs_store_shutdown(IfsStore *store)
{
    g_atomic_int_set(&store->stopping, 1);
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        /* A refresh, poll or control write stuck on a silent API must not
         * hold up the unmount for minutes of timeouts and retries. */
        ifs_http_cancel(a->http);
        g_mutex_lock(&a->lock);
        g_cond_broadcast(&a->cond);
        g_mutex_unlock(&a->lock);
    }
    g_mutex_lock(&store->op_lock);
    g_cond_broadcast(&store->op_cond);
    g_mutex_unlock(&store->op_lock);
}

void ifs_store_stop(IfsStore *store)
{
    if (!store->started)
        return;
    ifs_store_shutdown(store);
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        g_thread_join(a->thread);
    }
    g_thread_pool_free(store->workers, FALSE, TRUE);
    g_async_queue_push(store->publish_q, g_new0(PublishReq, 1));
    g_thread_join(store->publisher);
    store->started = FALSE;
}

static void account_free(Account *a)
{
    if (a->pstate)
        a->type->close(a->pstate);
    ifs_error_free(a->open_error);
    ifs_http_free(a->http);
    store_target_unref(a->refresh_target);
    g_ptr_array_unref(a->resources);
    g_hash_table_destroy(a->extras);
    g_hash_table_destroy(a->built);
    g_hash_table_destroy(a->changed_at);
    g_hash_table_destroy(a->kind_dirs);
    if (a->provider_dir)
        ifs_node_unref(a->provider_dir);
    g_free(a->state);
    g_free(a->last_error);
    g_free(a->provider_last_action);
    g_free(a->cache_path);
    g_free(a->cache_problem);
    if (a->save_items)
        g_ptr_array_unref(a->save_items);
    if (a->saved_mtimes)
        g_hash_table_unref(a->saved_mtimes);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a);
}

void ifs_store_free(IfsStore *store)
{
    if (!store)
        return;
    ifs_store_stop(store);
    /* The tree references targets, which reference accounts: drop it first. */
    if (store->root)
        ifs_node_unref(store->root);
    for (guint i = 0; i < store->accounts->len; i++)
        account_free(g_ptr_array_index(store->accounts, i));
    g_ptr_array_free(store->accounts, TRUE);
    ifs_inodes_free(store->inodes);
    g_async_queue_unref(store->publish_q);
    g_mutex_clear(&store->root_lock);
    g_mutex_clear(&store->op_lock);
    g_cond_clear(&store->op_cond);
    g_mutex_clear(&store->first_lock);
    g_cond_clear(&store->first_cond);
    g_free(store);
}

char *ifs_store_summary(IfsStore *store)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        g_mutex_lock(&a->lock);
        g_string_append_printf(out, "%s%s: %s", i ? ", " : "", a->cfg->name, a->state);
        if (strcmp(a->state, "ok") != 0 && a->last_error && *a->last_error)
            g_string_append_printf(out, " (%s)", a->last_error);
        g_mutex_unlock(&a->lock);
    }
    return g_string_free(out, FALSE);
}
