/* The change stream: /events, one tab-separated line per change (UTC time,
 * path, change, old value, new value; "-" for none), and /events.ndjson,
 * the same as JSON lines. Both are logs of lines (linelog.h) kept under
 * cache_dir as events.log and events.ndjson, bounded and rotated like the
 * action log. What counts as a change is decided by their callers: the
 * inventory (resources and accounts) and actions (an operation's end).
 * Any thread. */
#pragma once
#include <glib.h>

#include "infrafs/linelog.h"

typedef struct Events Events;

/* `cache_dir` NULL: in memory only. `max_bytes` 0: the default bound. */
Events *events_new(const char *cache_dir, gsize max_bytes);
void events_free(Events *ev);

/* Changes recorded together, appended as one batch. */
typedef struct EventBatch EventBatch;
EventBatch *events_batch_new(void);
/* `old` and `fresh` may be NULL (none); none of the texts holds a tab or a
 * line break. */
void events_batch_add(EventBatch *b, const char *path, const char *change, const char *old,
                      const char *fresh);
/* Appends the batch (if it holds anything) and frees it. */
void events_batch_commit(Events *ev, EventBatch *b);

/* One change on its own. */
void events_record(Events *ev, const char *path, const char *change, const char *old,
                   const char *fresh);

/* /events and /events.ndjson as they are now, referenced. */
IfsNode *events_text_node(Events *ev);
IfsNode *events_json_node(Events *ev);
