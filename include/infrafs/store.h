/* The store owns every account's data: it refreshes accounts in the
 * background, builds immutable snapshots of the tree, swaps them in
 * atomically and tells the FUSE layer what to invalidate. FUSE handlers only
 * read snapshots; no read waits on the network. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "infrafs/config.h"
#include "infrafs/error.h"
#include "infrafs/node.h"

typedef struct IfsStore IfsStore;

/* How the store tells the kernel to drop cached data, by node id (see
 * inodes.h), and only for what the kernel may hold. Called only from the
 * store's own publisher thread, never from inside a FUSE request. */
typedef struct {
    void (*inval_inode)(void *data, uint64_t id);
    void (*inval_entry)(void *data, uint64_t parent_id, const char *name);
    void *data;
} IfsInvalidator;

typedef struct {
    int refresh_s; /* default interval for accounts without `refresh` */
    int op_poll_timeout_s; /* give up polling an operation after this long */
    const char *cache_dir; /* each account's last good data is kept here;
                             NULL: not kept (tests of the store alone) */
    gboolean offline; /* serve the cache only: no request is ever sent */
    gsize actions_max; /* bound of the action log (0: its default) */
    gsize events_max; /* bound of each of the change stream's logs (0: default) */
} IfsStoreOptions;

IfsStore *ifs_store_new(const IfsStoreOptions *opts);
/* Registers an account (config is borrowed and must outlive the store).
 * Fails only for programming-level problems (unknown type): an account that
 * cannot reach its API still mounts and says why in /providers/. */
gboolean ifs_store_add_account(IfsStore *store, const IfsAccountConfig *cfg, IfsError **err);
/* The same with the provider type given rather than found by cfg->type in
 * the registry: unit tests run the store on an in-process fake. `type`
 * must outlive the store; NULL fails as an unknown type. */
typedef struct IfsProviderType IfsProviderType;
gboolean ifs_store_add_account_of(IfsStore *store, const IfsAccountConfig *cfg,
                                  const IfsProviderType *type, IfsError **err);
void ifs_store_set_invalidator(IfsStore *store, const IfsInvalidator *inv);
/* Loads every account's saved copy (all at once), publishes the initial
 * tree and starts the refresher threads. */
void ifs_store_start(IfsStore *store);
/* Waits until every account finished its first refresh (or timeout_s). */
gboolean ifs_store_wait_first_refresh(IfsStore *store, int timeout_s);
/* SIGHUP: refresh every account now, without waiting. */
void ifs_store_refresh_all(IfsStore *store);
/* The filesystem is going away (unmount, signal): stop refreshing, abandon
 * HTTP requests in flight (ECANCELED) and end every wait, so that no FUSE
 * request stays blocked on the network. Idempotent; any thread. */
void ifs_store_shutdown(IfsStore *store);
/* Shuts down, joins the store's threads; then free. */
void ifs_store_stop(IfsStore *store);
void ifs_store_free(IfsStore *store);

/* Read side (any thread, never blocks on I/O). Nodes are named by the node
 * ids FUSE knows them by (see inodes.h; the root is 1). Results are
 * referenced: release with ifs_node_unref. */
/* Entry `name` of the directory `parent`; its node id in *id, its st_ino
 * in *ino. Counts as one lookup of it (FUSE lookup). */
IfsNode *ifs_store_lookup(IfsStore *store, uint64_t parent, const char *name, uint64_t *id,
                          uint64_t *ino);
IfsNode *ifs_store_get(IfsStore *store, uint64_t id);
/* The same, with its st_ino in *ino. */
IfsNode *ifs_store_stat(IfsStore *store, uint64_t id, uint64_t *ino);
/* The directory holding node `id` in the current snapshot, or NULL; its
 * node id in *dir_id. */
IfsNode *ifs_store_parent(IfsStore *store, uint64_t id, uint64_t *dir_id);
/* How many snapshots were swapped in so far: what was noted about one
 * snapshot's nodes may be dropped when it changes. Any thread. */
guint64 ifs_store_generation(IfsStore *store);
/* While pinned, no newer snapshot is swapped in: what is read from the
 * store stays current until unpinned. For pushing bytes into the kernel's
 * caches, which the publisher must be able to invalidate after its swap.
 * Held briefly, by one thread at a time; never while waiting on the API. */
void ifs_store_pin(IfsStore *store);
void ifs_store_unpin(IfsStore *store);
/* Whether the kernel may hold node `id` (see ifs_inodes_held). */
gboolean ifs_store_kernel_holds(IfsStore *store, uint64_t id);
/* The node id of `child` of directory `dir_id` if the kernel may hold it,
 * else 0. */
uint64_t ifs_store_child_id(IfsStore *store, uint64_t dir_id, const IfsNode *child);
/* Its path below the mount ("" for the root), newly allocated, or NULL
 * when the kernel does not hold it. */
char *ifs_store_path(IfsStore *store, uint64_t id);
/* A listing hands the kernel `child` of directory `dir_id` as looked up
 * (FUSE readdirplus): its node id, counted as one lookup, or 0 if none can
 * be given. */
uint64_t ifs_store_hand_out(IfsStore *store, uint64_t dir_id, const IfsNode *child);
/* FORGET: the kernel dropped `nlookup` of its lookups of node `id`; once
 * none is left the store forgets the inode too. */
void ifs_store_forget(IfsStore *store, uint64_t id, uint64_t nlookup);

/* Write to a control node by user `writer`: performs the command. Returns
 * 0 or a positive errno. Blocks until the API answered and the tree shows
 * the result. last_action names the writer. */
int ifs_store_control_write(IfsStore *store, IfsNode *node, const char *buf, size_t len,
                            off_t offset, uid_t writer);

/* Read of an operation/wait node: blocks until the operation is terminal
 * and shown in the tree, or until `give_up(data)` says so (checked every
 * 200 ms: an interrupted request, an exiting session). Returns the text to
 * serve (g_free), or NULL with *errnum set (EINTR, or EIO for a node that
 * is not a wait file). After a text was returned, the caller replies to
 * the kernel and then must call ifs_store_wait_replied. */
char *ifs_store_wait_text(IfsStore *store, IfsNode *node, gboolean (*give_up)(void *data),
                          void *data, int *errnum);
void ifs_store_wait_replied(IfsStore *store, IfsNode *node);

/* "hostup: ok, heo: unauthorized (HTTP 401 ...)": one phrase per account,
 * for the startup report. */
char *ifs_store_summary(IfsStore *store);
/* The refreshes under way, in one line ("hostup: 312 pages, 31200
 * resources, 64 s"), or NULL when none is. */
char *ifs_store_progress_line(IfsStore *store);
