/* The registry of inodes the kernel holds, and the node ids FUSE knows
 * them by. A node's st_ino is the hash of its path (node->ino), stable
 * across refreshes and remounts; its node id is what this registry hands
 * out:
 *   - 1 for the root;
 *   - for a directory, its entry here (its parent's entry, its name and
 *     the kernel's lookup count), numbered from 2; an operation's wait
 *     file takes one too, keyed by its own st_ino, so that a newer
 *     operation's wait file at the same path is a new inode;
 *   - for a file, its directory's entry and its interned name, with the
 *     top bit set. Files take no entry: after a `find` the kernel holds
 *     millions of them, and only their directories (about one inode in
 *     eight) need one. Their lookups are counted per directory and per
 *     name, which is all that FORGET needs.
 * Node ids resolve against any snapshot by walking up the registry and down
 * the snapshot by name, so an inode whose path is gone resolves to nothing
 * (ENOENT), and the registry is as large as the directories of the kernel's
 * inode cache, never as the history of what was ever looked up.
 * Thread-safe. */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "infrafs/node.h"

typedef struct IfsInodes IfsInodes;

IfsInodes *ifs_inodes_new(void);
void ifs_inodes_free(IfsInodes *in);

/* The node at node id `id`'s path in `root`, referenced; NULL when the id
 * is unknown or its path is not in `root`. Its st_ino in *ino (if not
 * NULL). */
IfsNode *ifs_inodes_resolve(IfsInodes *in, IfsNode *root, uint64_t id, uint64_t *ino);
/* The path of node id `id` below the mount ("a/b/c", "" for the root),
 * newly allocated, or NULL when the id is unknown. */
char *ifs_inodes_path(IfsInodes *in, uint64_t id);
/* The directory holding node id `id` in `root`, referenced, or NULL; its
 * own node id in *dir_id. */
IfsNode *ifs_inodes_resolve_parent(IfsInodes *in, IfsNode *root, uint64_t id, uint64_t *dir_id);
/* Entry `name` of the directory at node id `parent` in `root`, referenced,
 * or NULL. Found counts as one lookup of it (a LOOKUP reply): its node id
 * in *id, its st_ino in *ino. */
IfsNode *ifs_inodes_lookup(IfsInodes *in, IfsNode *root, uint64_t parent, const char *name,
                           uint64_t *id, uint64_t *ino);
/* `child`, an entry of the directory at node id `dir_id`, is handed to the
 * kernel (READDIRPLUS): one lookup of it. Its node id, or 0 if `dir_id` is
 * not a directory's. */
uint64_t ifs_inodes_count_child(IfsInodes *in, uint64_t dir_id, const IfsNode *child);
/* The kernel gave back `nlookup` lookups of node id `id` (FORGET). */
void ifs_inodes_forget(IfsInodes *in, uint64_t id, uint64_t nlookup);
/* Whether the kernel may hold node id `id`. For a file this is "some file
 * of its directory, and some file of its name": a notification about an
 * inode the kernel does not hold costs one refused message. */
gboolean ifs_inodes_held(IfsInodes *in, uint64_t id);
/* The node id of `child` of the directory at `dir_id`, if the kernel may
 * hold it (as ifs_inodes_held), else 0. Counts nothing. */
uint64_t ifs_inodes_child_id(IfsInodes *in, uint64_t dir_id, const IfsNode *child);
/* The node id of `node` (st_ino `ino`), an entry of the directory whose
 * st_ino is `parent_ino` (0 for the root itself), if the kernel may hold
 * it, else 0: for notifications about what a refresh changed. */
uint64_t ifs_inodes_known_id(IfsInodes *in, uint64_t parent_ino, uint64_t ino, const IfsNode *node);
/* The node id of the directory whose st_ino is `ino`, if the kernel holds
 * it, else 0. */
uint64_t ifs_inodes_dir_id(IfsInodes *in, uint64_t ino);
/* Directories held now (the root aside), and the bytes the registry takes
 * (for its tests). */
guint ifs_inodes_count(IfsInodes *in);
size_t ifs_inodes_bytes(IfsInodes *in);
