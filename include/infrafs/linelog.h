/* A log of lines shown as one file of the tree (/actions, /events) and
 * appended to a file under cache_dir, so that it is there again after a
 * remount. Bounded by size: when a line would take the file past its
 * bound, the file is renamed to FILE.1 (replacing the one before) and a new
 * one begun, which the tree shows as the same file starting over (as
 * `tail -f` and `tail -F` expect of a truncated log).
 *
 * What a line says is the caller's business; the log only keeps lines.
 * Any thread. */
#pragma once
#include <glib.h>

#include "infrafs/node.h"

/* 1 MiB: several thousand lines, a small part of a mount's memory. */
#define IFS_LINE_LOG_DEFAULT_MAX ((gsize)1 << 20)
/* A bound below a few lines would start over at every line. */
#define IFS_LINE_LOG_MIN_MAX ((gsize)1024)

typedef struct IfsLineLog IfsLineLog;

/* The log shown as the file `name` (at the root of the tree), kept in
 * `path` (NULL: in memory only), at most `max_bytes` (0: the default).
 * What the file holds already is shown again (its last `max_bytes`, from a
 * line's start). A file that cannot be read or written is reported as a
 * warning; the log then lives in memory. */
IfsLineLog *ifs_line_log_open(const char *name, const char *path, gsize max_bytes);
void ifs_line_log_free(IfsLineLog *log);

/* Appends `lines`: one or more, each ending with '\n' (one write, one new
 * node, for a batch). */
void ifs_line_log_append(IfsLineLog *log, const char *lines);

/* The file as it is now: the same node until the next append (referenced;
 * ifs_node_unref it). */
IfsNode *ifs_line_log_node(IfsLineLog *log);
