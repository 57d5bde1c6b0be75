/* Immutable, reference-counted nodes of the file tree, their builders, and the
 * two operations a refresh needs: merging a fresh tree with the previous one
 * (so unchanged values keep their node, and with it their mtime) and diffing
 * the two (so the kernel is told exactly what to forget).
 *
 * Lookups: children are kept sorted by name (strcmp order) and
 * ifs_node_child() binary-searches them, O(log n) for every directory: 17
 * string comparisons for 100,000 entries are cheaper than a hash table per
 * large directory built on every refresh, and a sorted array is trivially
 * safe to read from many threads. */
#include "infrafs/node.h"

#include <limits.h>
#include <string.h>

#define FNV64_OFFSET UINT64_C(14695981039346656037)
#define FNV64_PRIME UINT64_C(1099511628211)

/* Longest entry name Linux accepts (NAME_MAX). */
#define IFS_NAME_MAX 255

/* ---- inode numbers ---------------------------------------------------- */

/* 64-bit FNV-1a over the path without its leading '/', so "/a/b" and "a/b"
 * are the same node. 0 is invalid for FUSE and 1 is the root's, so a path
 * that hashes to either is moved to 2 or 3 (h + 2): deterministic, and a
 * collision with a path that genuinely hashes to 2 or 3 is as unlikely as any
 * other 64-bit collision. */
uint64_t ifs_ino_for_path(const char *path)
{
    uint64_t h = FNV64_OFFSET;

    if (!path)
        return IFS_ROOT_INO;
    while (*path == '/')
        path++;
    if (*path == '\0')
        return IFS_ROOT_INO;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    if (h <= IFS_ROOT_INO)
        h += 2;
    return h;
}

/* ---- life cycle ------------------------------------------------------- */

IfsNode *ifs_node_ref(IfsNode *n)
{
    if (n)
        g_atomic_ref_count_inc(&n->ref);
    return n;
}

static void node_free(IfsNode *n)
{
    for (guint i = 0; i < n->n_children; i++)
        ifs_node_unref(n->children[i]);
    g_free(n->children);
    if (n->target_free && n->target)
        n->target_free(n->target);
    g_free(n); /* its name and data are part of it */
}

void ifs_node_unref(IfsNode *n)
{
    if (n && g_atomic_ref_count_dec(&n->ref))
        node_free(n);
}

/* The entry name is the last component of the path; "" for the root. */
static const char *basename_of(const char *path)
{
    const char *slash;

    if (!path)
        return "";
    slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* One allocation holds the node, its name and its content (plus a NUL
 * after it, so text content can also be used as a C string; `size` stays
 * the exact content length). NULL data: no content (a pending wait file). */
static IfsNode *node_alloc(IfsNodeType type, const char *name, uint64_t ino, time_t mtime,
                           const char *data, size_t size)
{
    size_t name_len = strlen(name);
    IfsNode *n = g_malloc0(sizeof *n + name_len + 1 + (data ? size + 1 : 0));
    char *tail = (char *)(n + 1);

    g_atomic_ref_count_init(&n->ref);
    n->type = type;
    n->name = memcpy(tail, name, name_len + 1);
    n->ino = ino;
    n->mtime = mtime ? mtime : time(NULL);
    if (data) {
        n->data = tail + name_len + 1;
        if (size)
            memcpy(n->data, data, size);
        n->data[size] = '\0';
        n->size = size;
    }
    return n;
}

static IfsNode *node_at(IfsNodeType type, const char *path, time_t mtime, const char *data,
                        size_t size)
{
    return node_alloc(type, basename_of(path), ifs_ino_for_path(path), mtime, data, size);
}

IfsNode *ifs_node_new_file(const char *path, const char *data, size_t size, time_t mtime)
{
    return node_at(IFS_NODE_FILE, path, mtime, data ? data : "", data ? size : 0);
}

IfsNode *ifs_node_new_control(const char *path, const char *commands_line,
                              IfsControlTarget *target, IfsTargetFree target_free)
{
    const char *line = commands_line ? commands_line : "";
    IfsNode *n = node_at(IFS_NODE_CONTROL, path, 0, line, strlen(line));

    n->target = target;
    n->target_free = target_free;
    return n;
}

/* While the operation is pending the node holds no data: the FUSE layer
 * reports a placeholder size and blocks reads on the target. */
IfsNode *ifs_node_new_wait(const char *path, const char *final_text,
                           IfsControlTarget *target, IfsTargetFree target_free)
{
    IfsNode *n = node_at(IFS_NODE_WAIT, path, 0, final_text,
                         final_text ? strlen(final_text) : 0);

    n->target = target;
    n->target_free = target_free;
    return n;
}

/* ---- directories ------------------------------------------------------ */

struct IfsDirBuilder {
    char *path;
    GPtrArray *children; /* IfsNode*, insertion order, owned */
    GHashTable *names;   /* child name -> child, for duplicate checks */
    guint dropped;
};

IfsDirBuilder *ifs_dir_builder_new(const char *path)
{
    IfsDirBuilder *b = g_new0(IfsDirBuilder, 1);

    b->path = g_strdup(path ? path : "");
    b->children = g_ptr_array_new();
    b->names = g_hash_table_new(g_str_hash, g_str_equal);
    return b;
}

const char *ifs_dir_builder_path(IfsDirBuilder *b)
{
    return b->path;
}

gboolean ifs_dir_builder_has(IfsDirBuilder *b, const char *name)
{
    return g_hash_table_contains(b->names, name);
}

void ifs_dir_builder_add(IfsDirBuilder *b, IfsNode *child)
{
    if (!child)
        return;
    if (ifs_dir_builder_has(b, child->name)) {
        b->dropped++;
        ifs_node_unref(child);
        return;
    }
    g_hash_table_insert(b->names, child->name, child);
    g_ptr_array_add(b->children, child);
}

guint ifs_dir_builder_dropped(IfsDirBuilder *b)
{
    return b->dropped;
}

static int compare_children(const void *a, const void *b)
{
    const IfsNode *x = *(IfsNode *const *)a;
    const IfsNode *y = *(IfsNode *const *)b;

    return strcmp(x->name, y->name);
}

/* A directory node over `children` (already sorted; ownership taken). */
static IfsNode *dir_node_new(const char *name, uint64_t ino, time_t mtime,
                             IfsNode **children, guint n_children)
{
    IfsNode *n = node_alloc(IFS_NODE_DIR, name, ino, mtime, NULL, 0);

    n->children = children;
    n->n_children = n_children;
    return n;
}

IfsNode *ifs_dir_builder_finish(IfsDirBuilder *b, time_t mtime)
{
    guint n = b->children->len;
    IfsNode **children = (IfsNode **)g_ptr_array_free(b->children, FALSE);
    IfsNode *dir;

    if (n == 0) {
        g_free(children);
        children = NULL;
    } else {
        qsort(children, n, sizeof(*children), compare_children);
    }
    dir = dir_node_new(basename_of(b->path), ifs_ino_for_path(b->path), mtime,
                       children, n);
    g_hash_table_unref(b->names);
    g_free(b->path);
    g_free(b);
    return dir;
}

IfsNode *ifs_node_child(const IfsNode *dir, const char *name)
{
    guint lo = 0;
    guint hi;

    if (!dir || dir->type != IFS_NODE_DIR || !name)
        return NULL;
    hi = dir->n_children;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        int c = strcmp(name, dir->children[mid]->name);

        if (c == 0)
            return dir->children[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

char *ifs_path_join(const char *dir, const char *name)
{
    size_t len;

    if (!dir || *dir == '\0' || strcmp(dir, "/") == 0)
        return g_strdup(name);
    len = strlen(dir);
    if (dir[len - 1] == '/')
        return g_strconcat(dir, name, NULL);
    return g_strconcat(dir, "/", name, NULL);
}

/* ---- content equality and merging ------------------------------------- */

static gboolean same_bytes(const IfsNode *a, const IfsNode *b)
{
    if (a->size != b->size)
        return FALSE;
    if (!a->data || !b->data)
        return a->data == b->data; /* a pending wait node only equals another */
    return a->size == 0 || memcmp(a->data, b->data, a->size) == 0;
}

/* Children are compared by pointer: after merging, an unchanged child is the
 * very same node in both trees, so equal pointers mean equal subtrees. */
static gboolean same_children(const IfsNode *a, const IfsNode *b)
{
    if (a->n_children != b->n_children)
        return FALSE;
    for (guint i = 0; i < a->n_children; i++)
        if (a->children[i] != b->children[i])
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
        return same_bytes(a, b);
    case IFS_NODE_CONTROL:
    case IFS_NODE_WAIT:
        return a->target == b->target && same_bytes(a, b);
    }
    return FALSE;
}

/* The result of merging a directory's children with the old ones. */
typedef struct {
    IfsNode **children;   /* merged, same order as fresh's, owned */
    guint n;
    gboolean names_equal; /* fresh and old have the same entry names */
    gboolean all_old;     /* every merged child is old's, and no name is new */
    gboolean all_fresh;   /* no merged child was replaced by an old one */
} MergedChildren;

/* Walks both sorted child lists once, merging children of the same name. */
static MergedChildren merge_children(const IfsNode *fresh, const IfsNode *old)
{
    MergedChildren m = { NULL, fresh->n_children, TRUE, TRUE, TRUE };
    guint i = 0;
    guint j = 0;
    guint matched = 0;

    if (m.n)
        m.children = g_new(IfsNode *, m.n);
    while (i < fresh->n_children) {
        IfsNode *fc = fresh->children[i];
        int c = j < old->n_children ? strcmp(fc->name, old->children[j]->name) : -1;

        if (c > 0) {
            j++; /* old entry absent from fresh */
            continue;
        }
        if (c == 0) {
            m.children[i] = ifs_node_merge_unchanged(ifs_node_ref(fc), old->children[j]);
            matched++;
            j++;
        } else {
            m.children[i] = ifs_node_ref(fc);
        }
        if (m.children[i] != fc)
            m.all_fresh = FALSE;
        if (c != 0 || m.children[i] != old->children[j - 1])
            m.all_old = FALSE;
        i++;
    }
    m.names_equal = matched == fresh->n_children && matched == old->n_children;
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
    dir = dir_node_new(fresh->name, fresh->ino, mtime, m.children, m.n);
    ifs_node_unref(fresh);
    return dir;
}

IfsNode *ifs_node_merge_unchanged(IfsNode *fresh, const IfsNode *old)
{
    /* Only a node at the same path may stand in for another (same ino). */
    if (!fresh || !old || fresh == old || fresh->ino != old->ino)
        return fresh;
    if (fresh->type == IFS_NODE_DIR && old->type == IFS_NODE_DIR)
        return merge_dir(fresh, old);
    if (ifs_node_same_content(fresh, old)) {
        ifs_node_unref(fresh);
        return ifs_node_ref((IfsNode *)old);
    }
    /* Same commands, new target: to the kernel the same file, and so the
     * same mtime (diff_node tells it nothing). */
    if (fresh->type == IFS_NODE_CONTROL && old->type == IFS_NODE_CONTROL &&
        same_bytes(fresh, old))
        fresh->mtime = old->mtime;
    return fresh;
}

/* ---- diff ------------------------------------------------------------- */

static void diff_node(const IfsNode *old, const IfsNode *fresh, uint64_t parent_ino,
                      const IfsNodeDiffSink *sink);

static void report_changed(const IfsNodeDiffSink *sink, uint64_t ino)
{
    if (sink->changed)
        sink->changed(sink->data, ino);
}

static void report_removed(const IfsNodeDiffSink *sink, uint64_t parent_ino, const char *name)
{
    if (sink->removed)
        sink->removed(sink->data, parent_ino, name);
}

/* Recurses into children present in both, reports old children missing from
 * fresh, and reports the directory itself when its entry set changed. */
static void diff_dir(const IfsNode *old, const IfsNode *fresh, const IfsNodeDiffSink *sink)
{
    guint i = 0;
    guint j = 0;
    gboolean entries_changed = FALSE;

    while (i < old->n_children || j < fresh->n_children) {
        int c;

        if (i == old->n_children)
            c = 1;
        else if (j == fresh->n_children)
            c = -1;
        else
            c = strcmp(old->children[i]->name, fresh->children[j]->name);
        if (c < 0) {
            report_removed(sink, old->ino, old->children[i]->name);
            entries_changed = TRUE;
            i++;
        } else if (c > 0) {
            entries_changed = TRUE; /* added */
            j++;
        } else {
            diff_node(old->children[i], fresh->children[j], old->ino, sink);
            i++;
            j++;
        }
    }
    if (entries_changed || old->mtime != fresh->mtime)
        report_changed(sink, old->ino);
}

/* A node whose type changed is a different entry under the same name: the
 * kernel must drop its dentry (removed(parent, name)) as well as its cached
 * attributes and pages (changed(ino)). At the top of a diff the parent is not
 * known (parent_ino 0), so only changed(ino) is reported there. Content or
 * mtime differences of files are changed(ino): either may sit in the kernel's
 * caches. */
static void diff_node(const IfsNode *old, const IfsNode *fresh, uint64_t parent_ino,
                      const IfsNodeDiffSink *sink)
{
    if (old == fresh)
        return;
    if (old->ino != fresh->ino && parent_ino) {
        report_removed(sink, parent_ino, old->name);
        return;
    }
    if (old->type != fresh->type) {
        if (parent_ino)
            report_removed(sink, parent_ino, old->name);
        report_changed(sink, old->ino);
        return;
    }
    if (old->type == IFS_NODE_DIR) {
        diff_dir(old, fresh, sink);
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
        sink->wait_changed(sink->data, fresh);
    else
        report_changed(sink, old->ino);
}

void ifs_node_diff(const IfsNode *old, const IfsNode *fresh, const IfsNodeDiffSink *sink)
{
    if (!old || !fresh || !sink)
        return;
    diff_node(old, fresh, 0, sink);
}

/* ---- names ------------------------------------------------------------ */

static void append_escape(GString *out, unsigned char c)
{
    g_string_append_printf(out, "%%%02X", c);
}

/* '%' is escaped too, so the rule is reversible: every "%XX" in an escaped
 * name stands for exactly one byte of the original. */
char *ifs_name_escape(const char *raw, size_t len)
{
    GString *out;
    gboolean dots_only;

    if (!raw || len == 0)
        return NULL;
    dots_only = (len == 1 && raw[0] == '.') || (len == 2 && raw[0] == '.' && raw[1] == '.');
    out = g_string_sized_new(len + 8);
    for (size_t i = 0; i < len && out->len <= IFS_NAME_MAX; i++) {
        unsigned char c = (unsigned char)raw[i];

        /* Control characters too: `ls` must not hand a terminal escape
         * sequences or line breaks taken from an API. */
        if (c == '%' || c == '/' || c < 0x20 || c == 0x7f || dots_only)
            append_escape(out, c);
        else
            g_string_append_c(out, (char)c);
    }
    if (out->len > IFS_NAME_MAX) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}
