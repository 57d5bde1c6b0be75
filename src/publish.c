/* Publishing (see publish.h): the publisher thread and its queue, root
 * swaps, diffs and invalidations, and waking readers of operation/wait. */
#include "publish.h"

#include "infrafs/inodes.h"
#include "infrafs/parallel.h"
#include "inventory.h"

/* While an account refreshes, its providers/<account>/ (progress, budget)
 * is published again this often. */
#define PROGRESS_TICK_US (2 * G_USEC_PER_SEC)
/* A publish for a control write leaves the views across accounts
 * (inventory, links, change stream: a second at 100,000 resources) as they
 * were, and they follow once nothing else was asked for this long. */
#define VIEWS_LATER_US (200 * 1000)

/* A publish a thread waits for. */
typedef struct {
    GMutex lock;
    GCond cond;
    gboolean finished;
} Done;

typedef struct {
    Account *account; /* NULL: stop the publisher */
    Done *done;
    Operation *finished_op; /* its terminal state is in this publish */
    gboolean views_later; /* the writer waiting need not wait for the views */
} PublishReq;

struct Publisher {
    /* Set before the thread starts, read-only after. */
    Model *model;
    IfsInvalidator inv;
    IfsInodes *inodes; /* what the kernel holds, by which node ids */
    GThread *thread;
    GAsyncQueue *queue; /* PublishReq* */

    /* The publisher thread only. */
    GPtrArray *builds; /* AccountBuild*, one per account, in their order */
    Inventory *inventory;
    gboolean views_stale; /* the root's views are older than its accounts */

    GMutex pin_lock; /* held across a swap of root; see ifs_store_pin */
    guint64 generation; /* root swaps so far; atomic */
    GMutex root_lock; /* guards root */
    IfsNode *root;
};

Publisher *publisher_new(Model *m)
{
    Publisher *p = g_new0(Publisher, 1);

    p->model = m;
    p->queue = g_async_queue_new();
    p->builds = g_ptr_array_new_with_free_func((GDestroyNotify)account_build_free);
    p->inventory = inventory_new();
    g_mutex_init(&p->pin_lock);
    g_mutex_init(&p->root_lock);
    return p;
}

void publisher_set_invalidator(Publisher *p, const IfsInvalidator *inv, IfsInodes *inodes)
{
    p->inv = *inv;
    p->inodes = inodes;
}

/* ---- the swap ----------------------------------------------------------- */

typedef struct {
    Publisher *publisher;
    GPtrArray *waits; /* ChangedWait*: wait files to invalidate after waking readers */
} DiffSink;

/* Only what the kernel may hold is invalidated: after a refresh most
 * changed nodes were never looked up, and each message costs a system
 * call. */
static void inval_node(Publisher *p, uint64_t parent_ino, uint64_t ino, const IfsNode *node)
{
    uint64_t id;

    if (!p->inv.inval_inode)
        return;
    id = ifs_inodes_known_id(p->inodes, parent_ino, ino, node);
    if (id)
        p->inv.inval_inode(p->inv.data, id);
}

static void sink_changed(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *node)
{
    inval_node(((DiffSink *)data)->publisher, parent_ino, ino, node);
}

typedef struct {
    uint64_t parent_ino, ino;
    IfsNode *node;
} ChangedWait;

static void changed_wait_free(ChangedWait *w)
{
    ifs_node_unref(w->node);
    g_free(w);
}

static void sink_wait_changed(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *fresh)
{
    DiffSink *d = data;
    ChangedWait *w = g_new(ChangedWait, 1);

    w->parent_ino = parent_ino;
    w->ino = ino;
    w->node = ifs_node_ref((IfsNode *)fresh);
    g_ptr_array_add(d->waits, w);
}

static void sink_removed(void *data, uint64_t parent_ino, const char *name)
{
    Publisher *p = ((DiffSink *)data)->publisher;
    uint64_t parent;

    if (!p->inv.inval_entry)
        return;
    parent = ifs_inodes_dir_id(p->inodes, parent_ino);
    if (parent) /* else the kernel has no entry under it */
        p->inv.inval_entry(p->inv.data, parent, name);
}

/* Until every reader of `op` has replied (bounded: a reader that is slow
 * to wake must not stall publishing for long). */
static void wait_replies(Model *m, Operation *op)
{
    gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    g_mutex_lock(&m->op_lock);
    while (op->readers > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&m->op_cond, &m->op_lock, until);
    g_mutex_unlock(&m->op_lock);
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
static void publish_root(Publisher *p, gboolean views_later)
{
    AccountBuild *const *builds = (AccountBuild *const *)p->builds->pdata;
    IfsNode *files[3 + INVENTORY_ENTRIES];
    IfsNode *fresh, *old;
    DiffSink d = {p, g_ptr_array_new_with_free_func((GDestroyNotify)changed_wait_free)};
    IfsNodeDiffSink sink = {
        .changed = sink_changed,
        .removed = sink_removed,
        .wait_changed = sink_wait_changed,
        .data = &d,
    };

    /* The inventory first: what changed goes to the events shown next. */
    p->views_stale = views_later && inventory_last_entries(p->inventory, files + 3);
    if (!p->views_stale)
        inventory_entries(p->inventory, builds, p->builds->len, p->model->events, files + 3);
    files[0] = ifs_line_log_node(p->model->action_log);
    files[1] = events_text_node(p->model->events);
    files[2] = events_json_node(p->model->events);
    fresh = build_root(builds, p->builds->len, files, G_N_ELEMENTS(files));
    g_mutex_lock(&p->root_lock);
    old = p->root;
    g_mutex_unlock(&p->root_lock);
    fresh = ifs_node_merge_unchanged(fresh, old);
    g_mutex_lock(&p->pin_lock);
    g_mutex_lock(&p->root_lock);
    p->root = fresh;
    g_mutex_unlock(&p->root_lock);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE);
    g_mutex_unlock(&p->pin_lock);
    /* Only after the swap: a re-read must find the new data. */
    if (old) {
        ifs_node_diff(old, fresh, IFS_ROOT_INO, &sink);
        ifs_node_unref(old);
    }
    for (guint i = 0; i < d.waits->len; i++) {
        ChangedWait *w = g_ptr_array_index(d.waits, i);
        Operation *op = wait_node_operation(w->node);
        if (op)
            operation_mark_done(p->model, op);
    }
    for (guint i = 0; i < d.waits->len; i++) {
        ChangedWait *w = g_ptr_array_index(d.waits, i);
        Operation *op = wait_node_operation(w->node);
        if (op)
            wait_replies(p->model, op);
        inval_node(p, w->parent_ino, w->ino, w->node);
    }
    g_ptr_array_unref(d.waits);
}

/* The operations that end in this publish: their wait files show the final
 * text from now on (a rebuild of their resource is forced). Readers are
 * woken in publish_root, or after it when the file is no longer in the
 * tree. */
static void show_final(Model *m, GPtrArray *finished_ops)
{
    for (guint i = 0; i < finished_ops->len; i++) {
        Operation *op = g_ptr_array_index(finished_ops, i);
        Account *a = op->account;
        char *key = store_resource_key(op->res_kind, op->res_id);

        g_mutex_lock(&m->op_lock);
        op->shown_final = TRUE;
        g_mutex_unlock(&m->op_lock);
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

/* ---- the thread --------------------------------------------------------- */

static void done_signal(Done *d)
{
    g_mutex_lock(&d->lock);
    d->finished = TRUE;
    g_cond_broadcast(&d->cond);
    g_mutex_unlock(&d->lock);
}

static AccountBuild *build_of(Publisher *p, const Account *a)
{
    for (guint i = 0; i < p->builds->len; i++) {
        AccountBuild *ab = g_ptr_array_index(p->builds, i);
        if (ab->account == a)
            return ab;
    }
    g_error("publisher: account '%s' was added after the store started; "
            "add every account before ifs_store_start",
            a->cfg->name);
    return NULL;
}

/* Accounts are independent (each builds under its own lock, into its own
 * AccountBuild), so several that are due together, as at the mount, are
 * built on as many threads as there are CPUs. */
static void build_one(guint i, gpointer builds)
{
    build_account(g_ptr_array_index((GPtrArray *)builds, i));
}

static void build_accounts(GPtrArray *builds)
{
    ifs_run_concurrently(builds->len, g_get_num_processors(), build_one, builds);
}

/* Nothing asked for a publish for a while: the accounts whose refresh
 * is under way (and that were built once) show how far it got. */
static void publish_progress(Publisher *p)
{
    gboolean any = FALSE;

    for (guint i = 0; i < p->builds->len; i++) {
        AccountBuild *ab = g_ptr_array_index(p->builds, i);

        if (ab->provider_dir &&
            __atomic_load_n(&ab->account->progress.started, __ATOMIC_ACQUIRE) > 0) {
            build_account_status(ab);
            any = TRUE;
        }
    }
    if (any)
        publish_root(p, FALSE);
}

static gpointer publisher_main(gpointer data)
{
    Publisher *p = data;
    GPtrArray *to_build = g_ptr_array_new();

    for (;;) {
        PublishReq *req =
            g_async_queue_timeout_pop(p->queue, p->views_stale ? VIEWS_LATER_US : PROGRESS_TICK_US);
        GPtrArray *batch;
        GPtrArray *finished;
        gboolean stop = FALSE, views_later = TRUE;

        if (!req && p->views_stale) {
            publish_root(p, FALSE);
            continue;
        }
        if (!req) {
            publish_progress(p);
            continue;
        }
        batch = g_ptr_array_new();
        finished = g_ptr_array_new();

        /* Coalesce everything queued: one root swap serves them all. */
        do {
            g_ptr_array_add(batch, req);
        } while ((req = g_async_queue_try_pop(p->queue)) != NULL);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            if (r->finished_op)
                g_ptr_array_add(finished, r->finished_op);
            views_later = views_later && r->views_later;
        }
        show_final(p->model, finished);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            AccountBuild *ab;
            if (!r->account) {
                stop = TRUE;
                continue;
            }
            ab = build_of(p, r->account);
            if (!g_ptr_array_find(to_build, ab, NULL))
                g_ptr_array_add(to_build, ab);
        }
        build_accounts(to_build);
        g_ptr_array_set_size(to_build, 0);
        publish_root(p, views_later && !stop);
        /* An operation whose file left the tree (its resource is gone, or a
         * newer operation replaced it) has readers all the same. */
        for (guint i = 0; i < finished->len; i++)
            operation_mark_done(p->model, g_ptr_array_index(finished, i));
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            if (r->done)
                done_signal(r->done);
            g_free(r);
        }
        g_ptr_array_free(batch, TRUE);
        g_ptr_array_free(finished, TRUE);
        if (stop) {
            g_ptr_array_free(to_build, TRUE);
            return NULL;
        }
    }
}

void publisher_start(Publisher *p)
{
    for (guint i = 0; i < p->model->accounts->len; i++)
        g_ptr_array_add(p->builds, account_build_new(g_ptr_array_index(p->model->accounts, i)));
    p->thread = g_thread_new("publisher", publisher_main, p);
}

void publisher_stop(Publisher *p)
{
    if (!p->thread)
        return;
    g_async_queue_push(p->queue, g_new0(PublishReq, 1));
    g_thread_join(p->thread);
    p->thread = NULL;
}

void publisher_free(Publisher *p)
{
    if (!p)
        return;
    publisher_stop(p);
    if (p->root)
        ifs_node_unref(p->root);
    g_ptr_array_unref(p->builds);
    inventory_free(p->inventory);
    g_async_queue_unref(p->queue);
    g_mutex_clear(&p->pin_lock);
    g_mutex_clear(&p->root_lock);
    g_free(p);
}

/* Queues a publish of each of the `n` accounts, in one batch, and waits
 * until the publisher has finished it. */
static void publish_batch(Publisher *p, Account *const *accounts, guint n, Operation *finished_op,
                          gboolean views_later)
{
    Done d;

    g_mutex_init(&d.lock);
    g_cond_init(&d.cond);
    d.finished = FALSE;
    /* Queued under the queue's lock, so that the publisher takes them all
     * in one batch (and builds them at once); the last one signals. */
    g_async_queue_lock(p->queue);
    for (guint i = 0; i < n; i++) {
        PublishReq *req = g_new0(PublishReq, 1);

        req->account = accounts[i];
        req->done = i + 1 == n ? &d : NULL;
        req->finished_op = finished_op;
        req->views_later = views_later;
        g_async_queue_push_unlocked(p->queue, req);
    }
    g_async_queue_unlock(p->queue);
    g_mutex_lock(&d.lock);
    while (!d.finished)
        g_cond_wait(&d.cond, &d.lock);
    g_mutex_unlock(&d.lock);
    g_mutex_clear(&d.lock);
    g_cond_clear(&d.cond);
}

void publish_finishing(Publisher *p, Account *a, Operation *finished_op)
{
    publish_batch(p, &a, 1, finished_op, FALSE);
}

void publish_account(Publisher *p, Account *a)
{
    publish_batch(p, &a, 1, NULL, FALSE);
}

void publish_account_views_later(Publisher *p, Account *a)
{
    publish_batch(p, &a, 1, NULL, TRUE);
}

void publish_accounts(Publisher *p, GPtrArray *accounts)
{
    if (accounts->len > 0)
        publish_batch(p, (Account *const *)accounts->pdata, accounts->len, NULL, FALSE);
}

/* ---- read side ----------------------------------------------------------- */

IfsNode *publisher_root(Publisher *p)
{
    IfsNode *root;

    g_mutex_lock(&p->root_lock);
    root = p->root ? ifs_node_ref(p->root) : NULL;
    g_mutex_unlock(&p->root_lock);
    return root;
}

guint64 publisher_generation(Publisher *p)
{
    return __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
}

void publisher_pin(Publisher *p)
{
    g_mutex_lock(&p->pin_lock);
}

void publisher_unpin(Publisher *p)
{
    g_mutex_unlock(&p->pin_lock);
}
