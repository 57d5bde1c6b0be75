/* Immutable, reference-counted nodes of the file tree. A node never changes
 * after it is published in a snapshot; a refresh builds new nodes and reuses
 * old ones whose content did not change (so "unchanged" is pointer equality).
 * Inode numbers (st_ino) are a 64-bit hash of the full path: stable across
 * refreshes and remounts, so the kernel's caches stay valid for what did
 * not change. A node does not store its own: it is its directory's
 * extended by its name (ifs_node_ino), which whoever walked down to the
 * node knows. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include <time.h>

#include "infrafs/names.h"

typedef enum {
    IFS_NODE_DIR,
    IFS_NODE_FILE, /* read-only 0444 */
    IFS_NODE_CONTROL, /* 0644: read lists the commands, write performs one */
    IFS_NODE_WAIT, /* operation/wait: read blocks until terminal */
    IFS_NODE_SYMLINK, /* its bytes are the target, a relative path */
} IfsNodeType;

/* Opaque to the tree: who handles writes to a control file, or reads of a
 * wait file. Owned by the store; the node only keeps a reference. */
typedef struct IfsControlTarget IfsControlTarget;
typedef void (*IfsTargetFree)(IfsControlTarget *t);

typedef struct IfsNode IfsNode;
/* Only the fields every node has are public, in 16 bytes; what follows
 * them depends on the node's type and is read through the accessors below
 * (a file's name and bytes are stored right after it, in the same block).
 * A tree of 100,000 resources has millions of nodes, so every word counts:
 * a node alone keeps its reference count just before it, nodes in a block
 * share the block's, and the inode number is computed, not stored. */
struct IfsNode {
    uint8_t type; /* IfsNodeType */
    uint8_t form; /* private: the layout of what follows */
    uint16_t name_len;
    uint32_t count; /* private: entries of a directory, bytes of a file */
    uint32_t block; /* private: 8-byte units back to its block, 0 if alone */
    uint32_t mtime; /* seconds since the epoch (until 2106): see ifs_node_mtime */
};

/* A time as a node's mtime: clamped to what the field holds. */
static inline uint32_t ifs_node_mtime(gint64 seconds)
{
    return seconds < 0 ? 0 : seconds > (gint64)UINT32_MAX ? UINT32_MAX : (uint32_t)seconds;
}

/* A file whose bytes are rendered when read, from a source kept instead of
 * them (the `json` file, from its resource's compact text): its exact size
 * is measured once, when it is built. */
typedef struct {
    /* The bytes, newly allocated; NULL only if the source cannot render. */
    char *(*render)(const void *src, size_t *len);
    /* The two sources render the same bytes. */
    gboolean (*same)(const void *a, const void *b);
    void (*release)(void *src);
    /* Another reference to `src` (a packed copy of the node keeps one). */
    void *(*retain)(void *src);
    /* Optional, for a large file read in pieces: `len` bytes from `off`
     * (within the measured size) into `out`, rendering little more. */
    void (*render_range)(const void *src, size_t off, size_t len, char *out);
} IfsRenderer;

#define IFS_ROOT_INO ((uint64_t)1)

/* ino for the node at `path` ("" or "/" is the root, else "a/b/c" without a
 * leading '/'); never 0 or 1 except the root. */
uint64_t ifs_ino_for_path(const char *path);
/* ino of entry `name` of the directory whose ino is `dir_ino`: the same as
 * ifs_ino_for_path of the joined path. */
uint64_t ifs_ino_child(uint64_t dir_ino, const char *name);
/* ino of `n`, an entry of the directory whose ino is `dir_ino` (0: `n` is
 * the root). A wait file has one of its own (ifs_node_new_wait). */
uint64_t ifs_node_ino(const IfsNode *n, uint64_t dir_ino);

IfsNode *ifs_node_ref(IfsNode *n);
void ifs_node_unref(IfsNode *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(IfsNode, ifs_node_unref)
/* References held on the node (on its block, for a packed one). */
guint ifs_node_ref_count(const IfsNode *n);

/* Builders. `path` is the node's full path (its last component is its
 * name). Content is copied. mtime 0 means "now". */
IfsNode *ifs_node_new_file(const char *path, const char *data, size_t size, time_t mtime);
/* A symbolic link to `target` (copied). */
IfsNode *ifs_node_new_symlink(const char *path, const char *target);
/* A file of `size` bytes that `how` renders from `src` (taken) when read. */
IfsNode *ifs_node_new_rendered(const char *path, const IfsRenderer *how, void *src, size_t size,
                               time_t mtime);
IfsNode *ifs_node_new_control(const char *path, const char *commands_line, IfsControlTarget *target,
                              IfsTargetFree target_free);
/* A wait file's ino is that of `identity` (an operation's own name), not
 * its path's: each operation's is a new inode to the kernel. */
IfsNode *ifs_node_new_wait(const char *path, const char *final_text /* NULL while pending */,
                           IfsControlTarget *target, IfsTargetFree target_free,
                           const char *identity);

/* A directory under construction: add children (takes ownership), then
 * finish. Duplicate names: the first added wins, the later one is dropped and
 * counted (ifs_dir_builder_dropped). */
typedef struct IfsDirBuilder IfsDirBuilder;
IfsDirBuilder *ifs_dir_builder_new(const char *path);
/* For entry `name` of `parent`. */
IfsDirBuilder *ifs_dir_builder_new_child(IfsDirBuilder *parent, const char *name);
const char *ifs_dir_builder_path(IfsDirBuilder *b);
/* Adds a file `name` holding `len` bytes of `data`, plus a '\n' if
 * `newline`: the common case of a JSON value, built without a path or a
 * copy of the value. */
void ifs_dir_builder_add_file(IfsDirBuilder *b, const char *name, const char *data, size_t len,
                              gboolean newline);
gboolean ifs_dir_builder_has(IfsDirBuilder *b, const char *name);
void ifs_dir_builder_add(IfsDirBuilder *b, IfsNode *child);
guint ifs_dir_builder_dropped(IfsDirBuilder *b);
IfsNode *ifs_dir_builder_finish(IfsDirBuilder *b, time_t mtime); /* frees b */

/* Accessors. The name is "" for the root. */
const char *ifs_node_name(const IfsNode *n);
/* FILE, CONTROL, WAIT: the exact length of the content (0 for a pending
 * wait file, which has none yet). */
size_t ifs_node_size(const IfsNode *n);
/* The content as stored, or NULL: for a rendered file (ifs_node_bytes
 * renders it), a directory, or a pending wait file. */
const char *ifs_node_data(const IfsNode *n);
/* FALSE for a directory and a pending wait file. */
gboolean ifs_node_has_content(const IfsNode *n);
/* The content, exactly ifs_node_size() bytes: stored ones, or rendered into
 * *owned (g_free it). NULL when the node has none. */
const char *ifs_node_bytes(const IfsNode *n, char **owned);
/* Up to `len` bytes of the content from `off` into `out`; how many (0 past
 * the end). A rendered file that can render a range renders only that. */
size_t ifs_node_read(const IfsNode *n, size_t off, size_t len, char *out);
/* CONTROL, WAIT: who handles it; NULL otherwise. */
IfsControlTarget *ifs_node_target(const IfsNode *n);
/* DIR: the entries, sorted by name; 0 and NULL otherwise. */
guint ifs_node_n_children(const IfsNode *n);
IfsNode *ifs_node_child_at(const IfsNode *dir, guint i);

IfsNode *ifs_node_child(const IfsNode *dir, const char *name); /* borrowed or NULL */
/* Join a directory path and a child name ("" + "x" = "x"). */
char *ifs_path_join(const char *dir, const char *name);

/* Moves the directory `dir` and every file and directory below it (but
 * control and wait files, which stay shared) into one block with one
 * reference count, and returns the copy; `dir` is consumed. A resource's
 * few dozen nodes then cost one allocation instead of one each, and a
 * block never points into another, so blocks of earlier builds are freed
 * as soon as their snapshot is. Anything but an unpacked directory is
 * returned as it is. */
IfsNode *ifs_node_pack(IfsNode *dir);
/* Between these, this thread's new files and directories come from a
 * scratch area that the end reuses: every one of them must have been
 * packed (copied out) or dropped by then. */
void ifs_node_scratch_begin(void);
void ifs_node_scratch_end(void);

/* Content equality (type, data, children pointers, target pointer). */
gboolean ifs_node_same_content(const IfsNode *a, const IfsNode *b);

/* Returns `fresh` with every subtree whose content equals the corresponding
 * subtree of `old` (at the same path) replaced by the old node (so mtimes
 * of unchanged values survive refreshes). A packed `fresh` (ifs_node_pack)
 * is returned as it is: it was merged before it was packed. Consumes
 * `fresh`, borrows `old` (may be NULL). */
IfsNode *ifs_node_merge_unchanged(IfsNode *fresh, const IfsNode *old);

/* What changed between two trees rooted at the same path, whose ino is
 * `ino`: calls `changed(parent_ino, ino, node)` for every node present in
 * both whose content differs (files and directories whose entry set
 * changed; a control file only when its command list changed, never for a
 * new target alone), with the old node, its ino and that of the directory
 * holding it (0 at the top of the diff), and `removed(parent_ino, name)`
 * for every entry of `old` absent from `fresh`. Subtrees shared by pointer
 * are skipped. An entry whose node has another ino under the same name (a
 * new operation's wait file) is reported as removed(parent_ino, name): a
 * new inode, not a change of the old one. */
typedef struct {
    void (*changed)(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *node);
    void (*removed)(void *data, uint64_t parent_ino, const char *name);
    void *data;
    /* Optional: a WAIT node whose content changed (its operation ended);
     * `fresh` is the new node. A reader blocked in it holds its page lock
     * until it is woken, so the caller must wake readers before
     * invalidating it. NULL: changed() is called instead. */
    void (*wait_changed)(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *fresh);
} IfsNodeDiffSink;
void ifs_node_diff(const IfsNode *old, const IfsNode *fresh, uint64_t ino,
                   const IfsNodeDiffSink *sink);
