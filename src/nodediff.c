/* Between two trees of nodes (src/node.c): whether two nodes show the same
 * content, merging a fresh tree with the previous one (unchanged values keep
 * their node, and with it their mtime), and the diff that tells the kernel
 * exactly what to forget. */
#include "infrafs/node.h"
#include "node_private.h"

#include <string.h>

/* ---- content equality and merging ------------------------------------- */

static gboolean same_bytes(const IfsNode *a, const IfsNode *b)
{
    char *own_a, *own_b;
    const char *da, *db;
    gboolean same;

    if (ifs_node_has_content(a) != ifs_node_has_content(b))
        return FALSE; /* a pending wait node only equals another */
    if (!ifs_node_has_content(a))
        return TRUE;
    if (a->count != b->count)
        return FALSE;
    if (a->form == FORM_RENDERED && b->form == FORM_RENDERED &&
        ((const RenderedNode *)a)->how == ((const RenderedNode *)b)->how)
        return ((const RenderedNode *)a)
            ->how->same(((const RenderedNode *)a)->src, ((const RenderedNode *)b)->src);
    da = ifs_node_bytes(a, &own_a);
    db = ifs_node_bytes(b, &own_b);
    same = a->count == 0 || memcmp(da, db, a->count) == 0;
    g_free(own_a);
    g_free(own_b);
    return same;
}

/* Children are compared by pointer: after merging, an unchanged child is the
 * very same node in both trees, so equal pointers mean equal subtrees. */
static gboolean same_children(const IfsNode *a, const IfsNode *b)
{
    if (ifs_node_n_children(a) != ifs_node_n_children(b))
        return FALSE;
    for (guint i = 0; i < ifs_node_n_children(a); i++)
        if (children_of(a)[i] != children_of(b)[i])
            return FALSE;
    return TRUE;
}

gboolean ifs_node_same_content(const IfsNode *a, const IfsNode *b)
{
    if (a == b)
        return TRUE;
    if (!a || !b || a->type != b->type)
        return FALSE;
    switch (a->type) {
    case IFS_NODE_DIR:
        return same_children(a, b);
    case IFS_NODE_FILE:
    case IFS_NODE_SYMLINK:
        return same_bytes(a, b);
    case IFS_NODE_CONTROL:
    case IFS_NODE_WAIT:
        return ifs_node_target(a) == ifs_node_target(b) && same_bytes(a, b);
    }
    return FALSE;
}

/* The result of merging a directory's children with the old ones. */
typedef struct {
    IfsNode **children; /* merged, same order as fresh's, owned */
    guint n;
    gboolean names_equal; /* fresh and old have the same entry names */
    gboolean all_old; /* every merged child is old's, and no name is new */
    gboolean all_fresh; /* no merged child was replaced by an old one */
} MergedChildren;

/* Walks both sorted child lists once, merging children of the same name. */
static MergedChildren merge_children(const IfsNode *fresh, const IfsNode *old)
{
    MergedChildren m = {NULL, ifs_node_n_children(fresh), TRUE, TRUE, TRUE};
    guint i = 0;
    guint j = 0;
    guint matched = 0;

    if (m.n)
        m.children = g_new(IfsNode *, m.n);
    while (i < ifs_node_n_children(fresh)) {
        IfsNode *fc = children_of(fresh)[i];
        int c =
            j < ifs_node_n_children(old) ? strcmp(name_of(fc), name_of(children_of(old)[j])) : -1;

        if (c > 0) {
            j++; /* old entry absent from fresh */
            continue;
        }
        if (c == 0) {
            m.children[i] = ifs_node_merge_unchanged(ifs_node_ref(fc), children_of(old)[j]);
            matched++;
            j++;
        } else {
            m.children[i] = ifs_node_ref(fc);
        }
        if (m.children[i] != fc)
            m.all_fresh = FALSE;
        if (c != 0 || m.children[i] != children_of(old)[j - 1])
            m.all_old = FALSE;
        i++;
    }
    m.names_equal = matched == ifs_node_n_children(fresh) && matched == ifs_node_n_children(old);
    m.all_old = m.all_old && m.names_equal;
    return m;
}

static void merged_children_free(MergedChildren *m)
{
    for (guint i = 0; i < m->n; i++)
        ifs_node_unref(m->children[i]);
    g_free(m->children);
}

/* A directory's mtime is when its entry set last changed: kept from the old
 * directory when the names are the same, taken from fresh otherwise. */
static IfsNode *merge_dir(IfsNode *fresh, const IfsNode *old)
{
    MergedChildren m = merge_children(fresh, old);
    time_t mtime = m.names_equal ? old->mtime : fresh->mtime;
    IfsNode *dir;

    if (m.all_old) {
        merged_children_free(&m);
        ifs_node_unref(fresh);
        return ifs_node_ref((IfsNode *)old);
    }
    if (m.all_fresh && mtime == fresh->mtime) {
        merged_children_free(&m);
        return fresh;
    }
    dir = node_dir_new(name_of(fresh), mtime, m.children, m.n);
    g_free(m.children);
    ifs_node_unref(fresh);
    return dir;
}

IfsNode *ifs_node_merge_unchanged(IfsNode *fresh, const IfsNode *old)
{
    /* Only a node of the same inode may stand in for another: the same
     * path (callers merge nodes at the same place, and names tell apart
     * what they do not), and for a wait file the same operation. A packed
     * subtree was merged with its predecessor before it was packed:
     * merging it again would point it into the old block. */
    if (!fresh || !old || fresh == old || own_ino(fresh) != own_ino(old) || fresh->block ||
        strcmp(name_of(fresh), name_of(old)) != 0)
        return fresh;
    if (fresh->type == IFS_NODE_DIR && old->type == IFS_NODE_DIR)
        return merge_dir(fresh, old);
    if (ifs_node_same_content(fresh, old)) {
        ifs_node_unref(fresh);
        return ifs_node_ref((IfsNode *)old);
    }
    /* Same commands, new target: to the kernel the same file, and so the
     * same mtime (diff_node tells it nothing). */
    if (fresh->type == IFS_NODE_CONTROL && old->type == IFS_NODE_CONTROL && same_bytes(fresh, old))
        fresh->mtime = old->mtime;
    return fresh;
}

/* ---- diff ------------------------------------------------------------- */

static void diff_node(const IfsNode *old, const IfsNode *fresh, uint64_t parent_ino, uint64_t ino,
                      const IfsNodeDiffSink *sink);

static void report_changed(const IfsNodeDiffSink *sink, uint64_t parent_ino, uint64_t ino,
                           const IfsNode *node)
{
    if (sink->changed)
        sink->changed(sink->data, parent_ino, ino, node);
}

static void report_removed(const IfsNodeDiffSink *sink, uint64_t parent_ino, const char *name)
{
    if (sink->removed)
        sink->removed(sink->data, parent_ino, name);
}

/* Recurses into children present in both, reports old children missing from
 * fresh, and reports the directory itself (`ino`) when its entry set
 * changed. */
static void diff_dir(const IfsNode *old, const IfsNode *fresh, uint64_t parent_ino, uint64_t ino,
                     const IfsNodeDiffSink *sink)
{
    guint i = 0;
    guint j = 0;
    gboolean entries_changed = FALSE;

    while (i < ifs_node_n_children(old) || j < ifs_node_n_children(fresh)) {
        int c;

        if (i == ifs_node_n_children(old))
            c = 1;
        else if (j == ifs_node_n_children(fresh))
            c = -1;
        else
            c = strcmp(name_of(children_of(old)[i]), name_of(children_of(fresh)[j]));
        if (c < 0) {
            report_removed(sink, ino, name_of(children_of(old)[i]));
            entries_changed = TRUE;
            i++;
        } else if (c > 0) {
            entries_changed = TRUE; /* added */
            j++;
        } else {
            const IfsNode *child = children_of(old)[i];

            /* A shared child is unchanged: not even its ino is needed. */
            if (child != children_of(fresh)[j])
                diff_node(child, children_of(fresh)[j], ino, ifs_node_ino(child, ino), sink);
            i++;
            j++;
        }
    }
    if (entries_changed || old->mtime != fresh->mtime)
        report_changed(sink, parent_ino, ino, old);
}

/* A node whose type changed is a different entry under the same name: the
 * kernel must drop its dentry (removed(parent, name)) as well as its cached
 * attributes and pages (changed). At the top of a diff the parent is not
 * known (parent_ino 0), so only changed is reported there. Content or
 * mtime differences of files are changed: either may sit in the kernel's
 * caches. */
static void diff_node(const IfsNode *old, const IfsNode *fresh, uint64_t parent_ino, uint64_t ino,
                      const IfsNodeDiffSink *sink)
{
    if (old == fresh)
        return;
    if (own_ino(old) != own_ino(fresh) && parent_ino) {
        report_removed(sink, parent_ino, name_of(old));
        return;
    }
    if (old->type != fresh->type) {
        if (parent_ino)
            report_removed(sink, parent_ino, name_of(old));
        report_changed(sink, parent_ino, ino, old);
        return;
    }
    if (old->type == IFS_NODE_DIR) {
        diff_dir(old, fresh, parent_ino, ino, sink);
        return;
    }
    /* What the kernel caches of a control file is its command list; a
     * writer blocked in it may hold its page locked until the API answers,
     * so it is invalidated only when that list really changed. */
    if (old->type == IFS_NODE_CONTROL && same_bytes(old, fresh))
        return;
    if (ifs_node_same_content(old, fresh) && old->mtime == fresh->mtime)
        return;
    if (old->type == IFS_NODE_WAIT && sink->wait_changed)
        sink->wait_changed(sink->data, parent_ino, ino, fresh);
    else
        report_changed(sink, parent_ino, ino, old);
}

void ifs_node_diff(const IfsNode *old, const IfsNode *fresh, uint64_t ino,
                   const IfsNodeDiffSink *sink)
{
    if (!old || !fresh || !sink)
        return;
    diff_node(old, fresh, 0, ino, sink);
}
