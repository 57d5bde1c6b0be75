/* Running one function over many items on a few threads (see parallel.h). */
#include "infrafs/parallel.h"

#include "infrafs/budget.h"

typedef struct {
    guint n;
    gint next; /* atomic: the next index to take */
    void (*work)(guint i, gpointer data);
    gpointer data;
    IfsPriorityScope priority; /* the caller's: its requests keep their place */
} ConcurrentRun;

static gpointer concurrent_worker(gpointer data)
{
    ConcurrentRun *run = data;
    IfsPriorityScope before = ifs_priority_scope();
    gint i;

    ifs_priority_enter(run->priority);

    while ((i = g_atomic_int_add(&run->next, 1)) < (gint)run->n)
        run->work((guint)i, run->data);
    ifs_priority_enter(before);
    return NULL;
}

void ifs_run_concurrently(guint n, guint concurrency, void (*work)(guint i, gpointer data),
                          gpointer data)
{
    ConcurrentRun run = {.n = n, .work = work, .data = data, .priority = ifs_priority_scope()};
    guint threads_n = MIN(concurrency, n);
    GThread **threads;

    /* one at a time needs no thread */
    if (threads_n <= 1) {
        concurrent_worker(&run);
        return;
    }
    threads = g_new0(GThread *, threads_n);
    for (guint t = 0; t < threads_n; t++)
        threads[t] = g_thread_new("parallel", concurrent_worker, &run);
    for (guint t = 0; t < threads_n; t++)
        g_thread_join(threads[t]);
    g_free(threads);
}
