/* Refreshing: one thread per account lists its resources through the
 * provider (the network), merges them into the model (action results win,
 * the last good data stays on failure), publishes, and saves what was
 * published to disk. Refreshes are asked for through
 * account_request_refresh (model.h). */
#pragma once
#include "publish.h"

typedef struct {
    /* Set before start, read-only after. */
    Model *model;
    Publisher *publisher;
    GPtrArray *threads; /* GThread*, one per account while started */

    GMutex first_lock; /* guards first_pending */
    GCond first_cond;
    guint first_pending; /* accounts whose first refresh has not ended */
} Refreshers;

void refreshers_init(Refreshers *r, Model *m, Publisher *p);
/* One refresher thread per account of the model. */
void refreshers_start(Refreshers *r);
/* Waits until every account finished its first refresh (or timeout_s). */
gboolean refreshers_wait_first(Refreshers *r, int timeout_s);
/* Joins the threads: after model_shutdown. */
void refreshers_join(Refreshers *r);
void refreshers_clear(Refreshers *r);

/* Start from the saved copy at a->cache_path, if there is a usable one:
 * served as "stale" until the first refresh replaces it. Before start. */
void refresh_load_cache(Account *a);
/* One refresh of the account, now, in the calling thread: list, merge,
 * publish, save. Returns its errno (0 when it succeeded). What the
 * refresher thread runs each time one is due or asked for. */
int refresh_run(Refreshers *r, Account *a);
