/* Building snapshots: an account's resources and our extras become
 * directories of files (doc/SEMANTICS.md §3, with providers/<account>/ in §3.3, and §4). Pure with respect to the
 * store: it reads the model under its locks and returns nodes; it neither
 * publishes nor starts anything. Run by the publisher, which builds
 * several accounts at once on threads of its own (each account on one
 * thread at a time), or by a test in its place. */
#pragma once
#include "model.h"

/* What building keeps of an account between builds, so that an unchanged
 * resource keeps its node. Only ever touched by the thread that builds
 * the account (for the publisher). */
typedef struct {
    Account *account;
    GHashTable *built; /* "kind/id" -> the last node built for it */
    GHashTable *saved_mtimes; /* from the saved copy, until the first build */
    IfsNode *provider_dir; /* providers/<account>/, NULL before the first build */
    GHashTable *kind_dirs; /* kind -> <kind>/<account>/ (IfsNode*) */
    /* As of the last build: whether the account had data (a refresh or
     * the disk cache gave it some), its state and why (last_error), and
     * whether a refresh ran (before, the state only says it is starting). */
    gboolean has_data;
    char *state;
    char *reason;
    gboolean refreshed;
    char *problems; /* what the last build found wrong, for last_error */
} AccountBuild;

/* Takes the account's saved_mtimes, if any. */
AccountBuild *account_build_new(Account *a);
void account_build_free(AccountBuild *b);

/* Rebuilds the account's directories from its current data. When the
 * account asked for it (save_wanted), hands what was built to the saver
 * (save_items). */
void build_account(AccountBuild *b);
/* Rebuilds only providers/<account>/ (its state, budget and progress),
 * the resources as the last build_account left them. */
void build_account_status(AccountBuild *b);
/* The root over the accounts' last builds: README, the `n_files` entries
 * given (taken: the action log, the inventory and its links), providers/,
 * and one directory per kind that any account offers. */
IfsNode *build_root(AccountBuild *const *builds, guint n, IfsNode *const *files, guint n_files);
