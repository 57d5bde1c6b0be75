/* Running one function over many items on a few threads. */
#pragma once
#include <glib.h>

/* Calls work(i, data) for every i in [0, n), from at most `concurrency`
 * threads at once, and returns when all calls have; each i is given to one
 * call only. With one thread, the caller's own makes the calls. The calls
 * send their requests with the caller's priority (budget.h). */
void ifs_run_concurrently(guint n, guint concurrency, void (*work)(guint i, gpointer data),
                          gpointer data);
