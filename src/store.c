/* The store's facade: the public interface of include/infrafs/store.h over
 * the pipeline behind it (each stage in its own module; see model.h):
 *
 *  - model.c:   accounts, extras, operations, control targets;
 *  - build.c:   resources and extras -> nodes (pure);
 *  - publish.c: the publisher thread: swaps the root, invalidates what
 *               changed, wakes readers of operation/wait. Invalidations are
 *               only ever sent from it, never from inside a FUSE request;
 *  - refresh.c: one refresher thread per account: lists through the
 *               provider (network), then publishes and waits for it;
 *  - actions.c: control writes (in the writing FUSE thread, which then
 *               waits for the publisher) and a pool of workers for
 *               operation polls and single-resource re-reads.
 *
 * FUSE threads read the current root and resolve inodes through the
 * registry of those the kernel holds (inodes.c). */
#include "actions.h"
#include "refresh.h"
#include "webhook.h"

#include <errno.h>
#include <string.h>

#include "infrafs/inodes.h"
#include "infrafs/parallel.h"

struct IfsStore {
    Model model;
    Publisher *publisher;
    Refreshers refreshers;
    Actions actions;
    GPtrArray *webhooks; /* Webhook*, of the accounts that listen */
    IfsInodes *inodes;
    gboolean started;
};

/* ---- lifecycle -------------------------------------------------------------- */

IfsStore *ifs_store_new(const IfsStoreOptions *opts)
{
    IfsStore *s = g_new0(IfsStore, 1);

    model_init(&s->model, opts);
    s->publisher = publisher_new(&s->model);
    refreshers_init(&s->refreshers, &s->model, s->publisher);
    actions_init(&s->actions, &s->model, s->publisher);
    s->webhooks = g_ptr_array_new_with_free_func((GDestroyNotify)webhook_free);
    s->inodes = ifs_inodes_new();
    return s;
}

gboolean ifs_store_add_account(IfsStore *store, const IfsAccountConfig *cfg, IfsError **err)
{
    return ifs_store_add_account_of(store, cfg, ifs_provider_find(cfg->type), err);
}

gboolean ifs_store_add_account_of(IfsStore *store, const IfsAccountConfig *cfg,
                                  const IfsProviderType *type, IfsError **err)
{
    if (!type) {
        ifs_error_propagate(err,
                            ifs_error_new(EINVAL, 0, NULL, "account '%s': unknown type '%s'",
                                          cfg->name, cfg->type));
        return FALSE;
    }
    if (store->started) {
        ifs_error_propagate(err,
                            ifs_error_new(EBUSY, 0, NULL,
                                          "account '%s': added after the store started; "
                                          "add every account before ifs_store_start",
                                          cfg->name));
        return FALSE;
    }
    {
        Account *a = account_new(&store->model, cfg, type);
        IfsError *bad = NULL;
        /* Offline, nothing is read from the API: no listener asks for it. */
        Webhook *w = store->model.opts.offline ? NULL : webhook_new(&store->actions, a, &bad);

        if (bad) {
            ifs_error_propagate(err, bad);
            return FALSE;
        }
        if (w)
            g_ptr_array_add(store->webhooks, w);
    }
    return TRUE;
}

/* Each account's saved copy, loaded on as many threads as there are CPUs:
 * they are independent files. */
static void load_cache(guint i, gpointer accounts)
{
    Account *a = g_ptr_array_index((GPtrArray *)accounts, i);

    if (a->cache_path)
        refresh_load_cache(a);
}

void ifs_store_set_invalidator(IfsStore *store, const IfsInvalidator *inv)
{
    publisher_set_invalidator(store->publisher, inv, store->inodes);
}

void ifs_store_start(IfsStore *store)
{
    GPtrArray *accounts = store->model.accounts;

    ifs_run_concurrently(accounts->len, g_get_num_processors(), load_cache, accounts);
    actions_start(&store->actions);
    publisher_start(store->publisher);
    publish_accounts(store->publisher, accounts);
    refreshers_start(&store->refreshers);
    for (guint i = 0; i < store->webhooks->len; i++)
        webhook_start(g_ptr_array_index(store->webhooks, i));
    store->started = TRUE;
}

gboolean ifs_store_wait_first_refresh(IfsStore *store, int timeout_s)
{
    return refreshers_wait_first(&store->refreshers, timeout_s);
}

void ifs_store_refresh_all(IfsStore *store)
{
    for (guint i = 0; i < store->model.accounts->len; i++)
        account_request_refresh(g_ptr_array_index(store->model.accounts, i), FALSE);
}

void ifs_store_shutdown(IfsStore *store)
{
    model_shutdown(&store->model);
}

void ifs_store_stop(IfsStore *store)
{
    if (!store->started)
        return;
    ifs_store_shutdown(store);
    /* No more pushed work for the actions' workers to take. */
    g_ptr_array_set_size(store->webhooks, 0);
    refreshers_join(&store->refreshers);
    actions_stop(&store->actions);
    publisher_stop(store->publisher);
    store->started = FALSE;
}

void ifs_store_free(IfsStore *store)
{
    if (!store)
        return;
    ifs_store_stop(store);
    /* The tree references targets, which reference accounts: drop it first. */
    g_ptr_array_unref(store->webhooks);
    publisher_free(store->publisher);
    refreshers_clear(&store->refreshers);
    model_clear(&store->model);
    ifs_inodes_free(store->inodes);
    g_free(store);
}

char *ifs_store_summary(IfsStore *store)
{
    GPtrArray *accounts = store->model.accounts;
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < accounts->len; i++) {
        Account *a = g_ptr_array_index(accounts, i);
        g_mutex_lock(&a->lock);
        g_string_append_printf(out, "%s%s: %s", i ? ", " : "", a->cfg->name, a->state);
        if (strcmp(a->state, "ok") != 0 && a->last_error && *a->last_error)
            g_string_append_printf(out, " (%s)", a->last_error);
        g_mutex_unlock(&a->lock);
    }
    return g_string_free(out, FALSE);
}

char *ifs_store_progress_line(IfsStore *store)
{
    GPtrArray *accounts = store->model.accounts;
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < accounts->len; i++) {
        Account *a = g_ptr_array_index(accounts, i);
        gint64 started = __atomic_load_n(&a->progress.started, __ATOMIC_ACQUIRE);

        if (started == 0)
            continue;
        g_string_append_printf(
            out, "%s%s: %u pages, %u resources, %" G_GINT64_FORMAT " s", out->len ? "; " : "",
            a->cfg->name, g_atomic_int_get(&a->progress.pages),
            g_atomic_int_get(&a->progress.resources), MAX(store_now() - started, 0));
    }
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

/* ---- read side ------------------------------------------------------------ */

IfsNode *ifs_store_stat(IfsStore *store, uint64_t id, uint64_t *ino)
{
    g_autoptr(IfsNode) root = publisher_root(store->publisher);

    /* By path, not by st_ino: a wait file replaced by a newer operation's
     * (another inode at the same path) answers as that one, so a reader
     * that raced the replacement waits for the newer operation rather
     * than failing. */
    return root ? ifs_inodes_resolve(store->inodes, root, id, ino) : NULL;
}

IfsNode *ifs_store_get(IfsStore *store, uint64_t id)
{
    return ifs_store_stat(store, id, NULL);
}

IfsNode *ifs_store_parent(IfsStore *store, uint64_t id, uint64_t *dir_id)
{
    g_autoptr(IfsNode) root = publisher_root(store->publisher);

    *dir_id = 0;
    return root ? ifs_inodes_resolve_parent(store->inodes, root, id, dir_id) : NULL;
}

IfsNode *ifs_store_lookup(IfsStore *store, uint64_t parent, const char *name, uint64_t *id,
                          uint64_t *ino)
{
    g_autoptr(IfsNode) root = publisher_root(store->publisher);

    *id = 0;
    return root ? ifs_inodes_lookup(store->inodes, root, parent, name, id, ino) : NULL;
}

guint64 ifs_store_generation(IfsStore *store)
{
    return publisher_generation(store->publisher);
}

void ifs_store_pin(IfsStore *store)
{
    publisher_pin(store->publisher);
}

void ifs_store_unpin(IfsStore *store)
{
    publisher_unpin(store->publisher);
}

gboolean ifs_store_kernel_holds(IfsStore *store, uint64_t id)
{
    return ifs_inodes_held(store->inodes, id);
}

uint64_t ifs_store_child_id(IfsStore *store, uint64_t dir_id, const IfsNode *child)
{
    return ifs_inodes_child_id(store->inodes, dir_id, child);
}

void ifs_store_forget(IfsStore *store, uint64_t id, uint64_t nlookup)
{
    ifs_inodes_forget(store->inodes, id, nlookup);
}

char *ifs_store_path(IfsStore *store, uint64_t id)
{
    return ifs_inodes_path(store->inodes, id);
}

uint64_t ifs_store_hand_out(IfsStore *store, uint64_t dir_id, const IfsNode *child)
{
    return ifs_inodes_count_child(store->inodes, dir_id, child);
}

/* ---- writes and waits -------------------------------------------------------- */

int ifs_store_control_write(IfsStore *store, IfsNode *node, const char *buf, size_t len,
                            off_t offset, uid_t writer)
{
    return actions_control_write(&store->actions, node, buf, len, offset, writer);
}

char *ifs_store_wait_text(IfsStore *store, IfsNode *node, gboolean (*give_up)(void *data),
                          void *data, int *errnum)
{
    return actions_wait_text(&store->actions, node, give_up, data, errnum);
}

void ifs_store_wait_replied(IfsStore *store, IfsNode *node)
{
    actions_wait_replied(&store->actions, node);
}
