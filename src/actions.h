/* Actions: control writes (doc/SEMANTICS.md §5) and the asynchronous operations
 * they start. A write is parsed and refused locally when it can be, sent
 * to the provider in the writing thread, recorded in last_action, and
 * returns once the tree shows its result; what the provider says should
 * follow (a re-read, another one later, polling an operation) runs on a
 * pool of workers. */
#pragma once
#include "publish.h"

typedef struct {
    /* Set before start, read-only after. */
    Model *model;
    Publisher *publisher;
    GThreadPool *workers; /* operation polls and single-resource re-reads */
} Actions;

void actions_init(Actions *ac, Model *m, Publisher *p);
void actions_start(Actions *ac);
/* Waits for the workers' tasks to end (after model_shutdown they end
 * soon). */
void actions_stop(Actions *ac);

/* The write of `len` bytes at `offset` to control node `node`. Returns 0
 * or a positive errno; see ifs_store_control_write. */
int actions_control_write(Actions *ac, IfsNode *node, const char *buf, size_t len, off_t offset,
                          uid_t writer);
/* Read resource `kind`/`id` of account `a` again (dropping it if it is
 * gone) and publish it, on a worker: what a pushed change asks for. */
void actions_reread(Actions *ac, Account *a, const char *kind, const char *id);
/* A read of an operation/wait node and its reply; see ifs_store_wait_text
 * and ifs_store_wait_replied. */
char *actions_wait_text(Actions *ac, IfsNode *node, gboolean (*give_up)(void *data), void *data,
                        int *errnum);
void actions_wait_replied(Actions *ac, IfsNode *node);
