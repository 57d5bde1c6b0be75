/* The action log: one line per control write and per operation's end,
 * shown as /actions and appended to a file under cache_dir, so that it is
 * there again after a remount. Bounded by size: when a line would take the
 * file past its bound, the file is renamed to FILE.1 (replacing the one
 * before) and a new one begun, which the tree shows as the same file
 * starting over (as `tail -f` and `tail -F` expect of a truncated log).
 *
 * What a line says is the caller's business; the log only keeps lines.
 * Any thread. */
#pragma once
#include <glib.h>

#include "infrafs/node.h"

/* 1 MiB: several thousand actions, a small part of a mount's memory. */
#define IFS_ACTION_LOG_DEFAULT_MAX ((gsize)1 << 20)
/* A bound below a few lines would rotate at every action. */
#define IFS_ACTION_LOG_MIN_MAX ((gsize)1024)

typedef struct IfsActionLog IfsActionLog;

/* Keeps the log in `path` (NULL: in memory only), at most `max_bytes`
 * (0: the default). What the file holds already is shown again (its last
 * `max_bytes`, from a line's start). A file that cannot be read or written
 * is reported as a warning; the log then lives in memory. */
IfsActionLog *ifs_action_log_open(const char *path, gsize max_bytes);
void ifs_action_log_free(IfsActionLog *log);

/* Appends `line`, which ends with '\n' and has no other. */
void ifs_action_log_append(IfsActionLog *log, const char *line);

/* The file /actions as it is now: the same node until the next append
 * (referenced; ifs_node_unref it). */
IfsNode *ifs_action_log_node(IfsActionLog *log);
