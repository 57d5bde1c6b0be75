/* Publishing: one thread for the whole store builds the new tree from the
 * accounts' data (build.h; accounts due together are built at once, on
 * helper threads), swaps the root under a short lock and tells the
 * kernel what changed through the IfsInvalidator. Invalidations are only
 * ever sent from this thread, never from inside a FUSE request. Readers of
 * operation/wait are woken here, when their operation's end is shown. */
#pragma once
#include "build.h"
#include "infrafs/inodes.h"

typedef struct Publisher Publisher;

Publisher *publisher_new(Model *m);
/* Before publisher_start; `inv` is copied. It is told node ids, which
 * `inodes` (borrowed) gives for the st_inos the diffs find. */
void publisher_set_invalidator(Publisher *p, const IfsInvalidator *inv, IfsInodes *inodes);
/* Starts the thread, over the model's accounts as they are now. */
void publisher_start(Publisher *p);
/* Ends the thread once what is queued is published. Every thread that
 * publishes must have been joined before. */
void publisher_stop(Publisher *p);
/* Drops the tree and what was built (which hold targets of the model's
 * accounts: before model_clear). */
void publisher_free(Publisher *p);

/* Publish the account's current data and wait until the new tree is live
 * and the kernel was told what changed. Never from the publisher. */
void publish_account(Publisher *p, Account *a);
/* The same, but the views across accounts (inventory, by-name/, by-ip/,
 * events) may follow a moment later: for a control write, which waits
 * only for its own account. */
void publish_account_views_later(Publisher *p, Account *a);
/* The same, when `finished_op` just ended: its wait file shows the final
 * text from this publish on, and its readers are woken within it. */
void publish_finishing(Publisher *p, Account *a, Operation *finished_op);
/* Publish every account of `accounts` (Account*) at once, and wait. */
void publish_accounts(Publisher *p, GPtrArray *accounts);

/* The current root, referenced (ifs_node_unref), or NULL before the first
 * publish. Any thread. */
IfsNode *publisher_root(Publisher *p);
/* Root swaps so far. Any thread. */
guint64 publisher_generation(Publisher *p);
/* While pinned, no newer root is swapped in (see ifs_store_pin). */
void publisher_pin(Publisher *p);
void publisher_unpin(Publisher *p);
