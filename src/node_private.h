/* The layout of tree nodes (src/node.c), shared with the merge and diff
 * of two trees (src/nodediff.c). Not a public interface: infrafs/node.h is. */
#pragma once
#include "infrafs/node.h"

#include <string.h>

/* What follows the public header, by form. Each is one allocation: the
 * header, the form's fields, then the name and (FILE, TARGETED) the bytes,
 * each with a NUL after it so text can also be used as a C string. */
enum {
    FORM_FILE, /* name, bytes */
    FORM_RENDERED, /* RenderedTail, name */
    FORM_DIR, /* children[count], name */
    FORM_TARGETED, /* TargetedTail, name, bytes */
    FORM_TARGETED_NONE /* TargetedTail, name: a pending wait file */
};

typedef struct {
    IfsNode h;
    const IfsRenderer *how;
    void *src;
} RenderedNode;

typedef struct {
    IfsNode h;
    IfsControlTarget *target;
    IfsTargetFree target_free;
    uint64_t own_ino; /* a wait file's (its operation's), else 0: its path's */
} TargetedNode;

typedef struct {
    IfsNode h;
    IfsNode *children[];
} DirNode;

static inline size_t fixed_size(const IfsNode *n)
{
    switch (n->form) {
    case FORM_RENDERED:
        return sizeof(RenderedNode);
    case FORM_DIR:
        return sizeof(DirNode) + n->count * sizeof(IfsNode *);
    case FORM_TARGETED:
    case FORM_TARGETED_NONE:
        return sizeof(TargetedNode);
    default:
        return sizeof(IfsNode);
    }
}

static inline char *name_of(const IfsNode *n)
{
    return (char *)n + fixed_size(n);
}

static inline char *bytes_of(const IfsNode *n)
{
    return name_of(n) + n->name_len + 1;
}

static inline IfsNode **children_of(const IfsNode *n)
{
    return ((DirNode *)n)->children;
}

/* A wait file's own inode number (its operation's), else 0: its path's. */
static inline uint64_t own_ino(const IfsNode *n)
{
    return n->form == FORM_TARGETED || n->form == FORM_TARGETED_NONE
        ? ((const TargetedNode *)n)->own_ino
        : 0;
}

/* A directory node holding `children` (their references taken), sorted. */
IfsNode *node_dir_new(const char *name, time_t mtime, IfsNode *const *children, guint n_children);
