/* The registry of inodes the kernel holds: for each, its parent's ino, its
 * name and the kernel's lookup count. Lookups resolve an ino against any
 * snapshot by walking up the registry and down the snapshot by name, so an
 * inode whose entry is gone resolves to nothing (ENOENT), and the registry
 * is as large as the kernel's inode cache, never as the history of what was
 * ever looked up. Thread-safe. */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "infrafs/node.h"

typedef struct IfsInodes IfsInodes;

IfsInodes *ifs_inodes_new(void);
void ifs_inodes_free(IfsInodes *in);

/* The node at inode `ino`'s path in `root`, referenced; NULL when the
 * kernel's inode is unknown or its entry is not in `root`. */
IfsNode *ifs_inodes_resolve(IfsInodes *in, IfsNode *root, uint64_t ino);
/* The path of inode `ino` below the mount ("a/b/c", "" for the root),
 * newly allocated, or NULL when the kernel's inode is unknown. */
char *ifs_inodes_path(IfsInodes *in, uint64_t ino);
/* The directory holding inode `ino` in `root`, referenced, or NULL. */
IfsNode *ifs_inodes_resolve_parent(IfsInodes *in, IfsNode *root, uint64_t ino);
/* Entry `name` of the directory at inode `parent` in `root`, referenced,
 * or NULL. Found counts as one lookup of it (a LOOKUP reply). */
IfsNode *ifs_inodes_lookup(IfsInodes *in, IfsNode *root, uint64_t parent, const char *name);
/* Entries [from, to) of `dir` (inode `dir_ino`) were handed to the kernel
 * (READDIRPLUS): one lookup each. */
void ifs_inodes_count_children(IfsInodes *in, uint64_t dir_ino, const IfsNode *dir,
                               guint from, guint to);
/* The kernel gave back `nlookup` lookups of `ino` (FORGET). */
void ifs_inodes_forget(IfsInodes *in, uint64_t ino, uint64_t nlookup);
gboolean ifs_inodes_held(IfsInodes *in, uint64_t ino);
/* Inodes held now, and the bytes the registry takes (for its tests). */
guint ifs_inodes_count(IfsInodes *in);
size_t ifs_inodes_bytes(IfsInodes *in);
