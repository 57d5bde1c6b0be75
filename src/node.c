/* Immutable, reference-counted nodes of the file tree: inode numbers, the
 * nodes' layout and life cycle, packed subtrees, and directory builders.
 * Merging and diffing two trees is in nodediff.c.
 *
 * Lookups: children are kept sorted by name (strcmp order) and
 * ifs_node_child() binary-searches them, O(log n) for every directory: 17
 * string comparisons for 100,000 entries are cheaper than a hash table per
 * large directory built on every refresh, and a sorted array is trivially
 * safe to read from many threads. */
#include "infrafs/node.h"
#include "node_private.h"
#include "infrafs/sanitizer.h"

#include <limits.h>
#include <string.h>

#define FNV64_OFFSET UINT64_C(14695981039346656037)
#define FNV64_PRIME UINT64_C(1099511628211)

/* ---- inode numbers ---------------------------------------------------- */

/* 64-bit FNV-1a over the path without its leading '/', so "/a/b" and "a/b"
 * are the same node. 0 is invalid for FUSE and 1 is the root's, so a path
 * that hashes to either is moved to 2 or 3 (h + 2): deterministic, and a
 * collision with a path that genuinely hashes to 2 or 3 is as unlikely as any
 * other 64-bit collision. */
static uint64_t fnv_extend(uint64_t h, const char *s, size_t len)
{
    for (const unsigned char *p = (const unsigned char *)s; len > 0; p++, len--) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    return h;
}

static uint64_t ino_of_hash(uint64_t h)
{
    return h <= IFS_ROOT_INO ? h + 2 : h;
}

static const char *without_leading_slashes(const char *path)
{
    while (*path == '/')
        path++;
    return path;
}

/* The FNV state a child's name extends: the directory's path and a '/'
 * (nothing for the root). It starts from the directory's ino, not from
 * the state before ino_of_hash, so that an ino computed from its
 * directory's is the same as one computed from the path. */
static uint64_t child_state(uint64_t dir_ino)
{
    return dir_ino == IFS_ROOT_INO ? FNV64_OFFSET : fnv_extend(dir_ino, "/", 1);
}

uint64_t ifs_ino_child(uint64_t dir_ino, const char *name)
{
    return ino_of_hash(fnv_extend(child_state(dir_ino), name, strlen(name)));
}

uint64_t ifs_ino_for_path(const char *path)
{
    uint64_t ino = IFS_ROOT_INO;

    if (!path || *(path = without_leading_slashes(path)) == '\0')
        return IFS_ROOT_INO;
    for (;;) {
        const char *slash = strchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : strlen(path);

        ino = ino_of_hash(fnv_extend(child_state(ino), path, len));
        if (!slash)
            return ino;
        path = slash + 1;
    }
}

const char *ifs_node_name(const IfsNode *n)
{
    return name_of(n);
}

size_t ifs_node_size(const IfsNode *n)
{
    return n->form == FORM_DIR ? 0 : n->count;
}

const char *ifs_node_data(const IfsNode *n)
{
    return n->form == FORM_FILE || n->form == FORM_TARGETED ? bytes_of(n) : NULL;
}

gboolean ifs_node_has_content(const IfsNode *n)
{
    return n->form != FORM_DIR && n->form != FORM_TARGETED_NONE;
}

/* A renderer that gives other bytes than were measured would make the kernel
 * cut or pad what it read: hand back exactly the measured size. */
static char *render_exact(const IfsNode *n)
{
    const RenderedNode *r = (const RenderedNode *)n;
    size_t len = 0;
    char *text = r->how->render(r->src, &len);
    char *out;

    if (text && len == n->count)
        return text;
    g_warning("rendered %zu bytes for \"%s\" where %u were measured; "
              "serving the measured size",
              text ? len : 0, name_of(n), n->count);
    out = g_malloc0((size_t)n->count + 1);
    if (text)
        memcpy(out, text, MIN(len, (size_t)n->count));
    g_free(text);
    return out;
}

const char *ifs_node_bytes(const IfsNode *n, char **owned)
{
    *owned = NULL;
    if (n->form == FORM_RENDERED)
        return *owned = render_exact(n);
    return ifs_node_data(n);
}

size_t ifs_node_read(const IfsNode *n, size_t off, size_t len, char *out)
{
    size_t size = ifs_node_size(n);
    char *owned = NULL;
    const char *bytes;

    if (!ifs_node_has_content(n) || off >= size)
        return 0;
    len = MIN(len, size - off);
    if (n->form == FORM_RENDERED && ((const RenderedNode *)n)->how->render_range) {
        const RenderedNode *r = (const RenderedNode *)n;
        r->how->render_range(r->src, off, len, out);
        return len;
    }
    bytes = ifs_node_bytes(n, &owned);
    memcpy(out, bytes + off, len);
    g_free(owned);
    return len;
}

IfsControlTarget *ifs_node_target(const IfsNode *n)
{
    if (n->form != FORM_TARGETED && n->form != FORM_TARGETED_NONE)
        return NULL;
    return ((const TargetedNode *)n)->target;
}

guint ifs_node_n_children(const IfsNode *n)
{
    return n->form == FORM_DIR ? n->count : 0;
}

IfsNode *ifs_node_child_at(const IfsNode *dir, guint i)
{
    return dir->form == FORM_DIR && i < dir->count ? children_of(dir)[i] : NULL;
}

/* ---- life cycle ------------------------------------------------------- */

/* While a resource is built, its files and directories are bump-allocated
 * from a scratch area of the building thread: they live only until
 * ifs_node_pack copies them into their block, so allocating and freeing
 * each one from the heap would cost time and leave holes. Nodes that may
 * outlive the build (control, wait and rendered files) never come from
 * there, and neither does what does not fit. */
#define SCRATCH_SIZE ((size_t)256 * 1024)

typedef struct {
    char *base;
    size_t used;
    gboolean active;
} Scratch;

static void scratch_free(gpointer data)
{
    Scratch *sc = data;

    g_free(sc->base);
    g_free(sc);
}

static GPrivate scratch_key = G_PRIVATE_INIT(scratch_free);
static _Thread_local Scratch *scratch;

void ifs_node_scratch_begin(void)
{
#ifdef IFS_UNDER_ASAN
    return; /* every node from the heap, where the sanitizer watches it */
#endif
    if (!scratch) {
        scratch = g_new0(Scratch, 1);
        scratch->base = g_malloc(SCRATCH_SIZE);
        g_private_set(&scratch_key, scratch);
    }
    scratch->used = 0;
    scratch->active = TRUE;
}

void ifs_node_scratch_end(void)
{
    if (scratch) {
        scratch->active = FALSE;
        scratch->used = 0;
    }
}

static gboolean in_scratch(const IfsNode *n)
{
    return scratch && (const char *)n >= scratch->base &&
        (const char *)n < scratch->base + SCRATCH_SIZE;
}

/* Nodes in the scratch area and in blocks start at multiples of 8 bytes. */
#define BLOCK_UNIT 8

static size_t round_to_unit(size_t size)
{
    return (size + BLOCK_UNIT - 1) & ~(size_t)(BLOCK_UNIT - 1);
}

/* A node alone (not in a block) has its reference count in the 8 bytes
 * before it. */
#define ALONE_PREFIX BLOCK_UNIT
G_STATIC_ASSERT(sizeof(gatomicrefcount) <= ALONE_PREFIX);
G_STATIC_ASSERT(sizeof(IfsNode) == 16);

static gatomicrefcount *alone_ref(const IfsNode *n)
{
    return (gatomicrefcount *)((char *)n - ALONE_PREFIX);
}

/* Memory for a node alone of `size` bytes, its reference count set to 1. */
static void *node_mem(int form, size_t size)
{
    size_t rounded = ALONE_PREFIX + round_to_unit(size);
    char *mem;

    if (!scratch || !scratch->active || (form != FORM_FILE && form != FORM_DIR) ||
        rounded > SCRATCH_SIZE - scratch->used) {
        mem = g_malloc0(ALONE_PREFIX + size);
    } else {
        mem = scratch->base + scratch->used;
        scratch->used += rounded;
        memset(mem, 0, ALONE_PREFIX + size);
    }
    g_atomic_ref_count_init((gatomicrefcount *)mem);
    return mem + ALONE_PREFIX;
}

/* A packed subtree: one reference count for all its nodes, which follow
 * the header, each at a multiple of 8 bytes. */
typedef struct {
    gatomicrefcount ref;
    uint32_t size; /* bytes, the header included */
} Block;

G_STATIC_ASSERT(sizeof(Block) == BLOCK_UNIT);

static Block *block_of(const IfsNode *n)
{
    return (Block *)((char *)n - (size_t)n->block * BLOCK_UNIT);
}

static void block_free(Block *b);

IfsNode *ifs_node_ref(IfsNode *n)
{
    if (n && n->block)
        g_atomic_ref_count_inc(&block_of(n)->ref);
    else if (n)
        g_atomic_ref_count_inc(alone_ref(n));
    return n;
}

guint ifs_node_ref_count(const IfsNode *n)
{
    const gatomicrefcount *ref = n->block ? &block_of(n)->ref : alone_ref(n);

    return (guint)g_atomic_int_get(ref);
}

static void node_free(IfsNode *n)
{
    if (n->form == FORM_DIR) {
        for (guint i = 0; i < n->count; i++)
            ifs_node_unref(children_of(n)[i]);
    } else if (n->form == FORM_RENDERED) {
        RenderedNode *r = (RenderedNode *)n;

        if (r->how->release)
            r->how->release(r->src);
    } else if (n->form == FORM_TARGETED || n->form == FORM_TARGETED_NONE) {
        TargetedNode *t = (TargetedNode *)n;

        if (t->target_free && t->target)
            t->target_free(t->target);
    }
    if (!in_scratch(n))
        g_free(alone_ref(n)); /* its name and bytes are part of it */
}

void ifs_node_unref(IfsNode *n)
{
    if (!n)
        return;
    if (n->block) {
        Block *b = block_of(n);

        if (g_atomic_ref_count_dec(&b->ref))
            block_free(b);
    } else if (g_atomic_ref_count_dec(alone_ref(n))) {
        node_free(n);
    }
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

/* One allocation: header, the form's fields (`extra` bytes of child
 * pointers for a directory), name, then `size` bytes of `data` unless data
 * is NULL. Sizes beyond 32 bits cannot come from an API whose answers are
 * capped far below: they are cut, loudly, rather than wrapped. */
static IfsNode *node_alloc(IfsNodeType type, int form, const char *name, time_t mtime, guint count,
                           const char *data, size_t size, gboolean newline)
{
    size_t name_len = MIN(strlen(name), (size_t)UINT16_MAX);
    IfsNode probe = {.form = (uint8_t)form, .count = count};
    size_t head = fixed_size(&probe);
    IfsNode *n;

    if (size >= UINT32_MAX) {
        g_warning("content of \"%s\" cut to 4 GiB", name);
        size = UINT32_MAX - 1;
    }
    n = node_mem(form, head + name_len + 1 + (data ? size + newline + 1 : 0));
    n->type = (uint8_t)type;
    n->form = (uint8_t)form;
    n->name_len = (uint16_t)name_len;
    n->count = form == FORM_DIR ? count : (uint32_t)(size + (data && newline));
    /* The store's clock (last_refresh), not time(): that one is coarse and
     * can read a second earlier than a refresh that happened before it. */
    n->mtime = ifs_node_mtime(mtime ? (gint64)mtime : g_get_real_time() / G_USEC_PER_SEC);
    memcpy(name_of(n), name, name_len);
    if (data && size)
        memcpy(bytes_of(n), data, size);
    if (data && newline)
        bytes_of(n)[size] = '\n';
    return n;
}

static IfsNode *node_at(IfsNodeType type, int form, const char *path, time_t mtime,
                        const char *data, size_t size)
{
    return node_alloc(type, form, basename_of(path), mtime, 0, data, size, FALSE);
}

IfsNode *ifs_node_new_file(const char *path, const char *data, size_t size, time_t mtime)
{
    return node_at(IFS_NODE_FILE, FORM_FILE, path, mtime, data ? data : "", data ? size : 0);
}

IfsNode *ifs_node_new_symlink(const char *path, const char *target)
{
    return node_at(IFS_NODE_SYMLINK, FORM_FILE, path, 0, target, strlen(target));
}

IfsNode *ifs_node_new_rendered(const char *path, const IfsRenderer *how, void *src, size_t size,
                               time_t mtime)
{
    IfsNode *n = node_at(IFS_NODE_FILE, FORM_RENDERED, path, mtime, NULL, 0);
    RenderedNode *r = (RenderedNode *)n;

    n->count = (uint32_t)MIN(size, (size_t)UINT32_MAX);
    r->how = how;
    r->src = src;
    return n;
}

static IfsNode *targeted_new(IfsNodeType type, const char *path, const char *text,
                             IfsControlTarget *target, IfsTargetFree target_free, uint64_t own_ino)
{
    IfsNode *n = node_at(type, text ? FORM_TARGETED : FORM_TARGETED_NONE, path, 0, text,
                         text ? strlen(text) : 0);
    TargetedNode *t = (TargetedNode *)n;

    t->target = target;
    t->target_free = target_free;
    t->own_ino = own_ino;
    return n;
}

IfsNode *ifs_node_new_control(const char *path, const char *commands_line, IfsControlTarget *target,
                              IfsTargetFree target_free)
{
    return targeted_new(IFS_NODE_CONTROL, path, commands_line ? commands_line : "", target,
                        target_free, 0);
}

/* While the operation is pending the node holds no bytes: the FUSE layer
 * reports a placeholder size and blocks reads on the target. */
IfsNode *ifs_node_new_wait(const char *path, const char *final_text, IfsControlTarget *target,
                           IfsTargetFree target_free, const char *identity)
{
    return targeted_new(IFS_NODE_WAIT, path, final_text, target, target_free,
                        identity ? ifs_ino_for_path(identity) : 0);
}

uint64_t ifs_node_ino(const IfsNode *n, uint64_t dir_ino)
{
    if (own_ino(n))
        return own_ino(n);
    return dir_ino ? ifs_ino_child(dir_ino, name_of(n)) : IFS_ROOT_INO;
}

/* ---- packed subtrees ---------------------------------------------------- */

/* The bytes of a node's allocation: header, the form's fields, name and
 * NUL, then stored bytes and NUL (FILE, TARGETED). */
static size_t node_bytes_size(const IfsNode *n)
{
    gboolean stored = n->form == FORM_FILE || n->form == FORM_TARGETED;

    return fixed_size(n) + n->name_len + 1 + (stored ? (size_t)n->count + 1 : 0);
}

/* Control and wait files stay alone: their targets are the store's. */
static gboolean packable(const IfsNode *n)
{
    return n->form == FORM_FILE || n->form == FORM_DIR ||
        (n->form == FORM_RENDERED && ((const RenderedNode *)n)->how->retain);
}

static size_t packed_size(const IfsNode *n)
{
    size_t size = round_to_unit(node_bytes_size(n));

    for (guint i = 0; i < ifs_node_n_children(n); i++)
        if (packable(children_of(n)[i]))
            size += packed_size(children_of(n)[i]);
    return size;
}

/* Copies `n` and what is packable below it to *at, moving *at on; what is
 * not packable is referenced, and so is a rendered file's source. */
static IfsNode *pack_copy(Block *b, char **at, const IfsNode *n)
{
    size_t size = node_bytes_size(n);
    IfsNode *copy = (IfsNode *)*at;

    memcpy(copy, n, size);
    *at += round_to_unit(size);
    copy->block = (uint32_t)(((char *)copy - (char *)b) / BLOCK_UNIT);
    if (n->form == FORM_RENDERED) {
        RenderedNode *r = (RenderedNode *)copy;

        r->src = r->how->retain(r->src);
    }
    for (guint i = 0; i < ifs_node_n_children(n); i++) {
        IfsNode *child = children_of(n)[i];

        children_of(copy)[i] = packable(child) ? pack_copy(b, at, child) : ifs_node_ref(child);
    }
    return copy;
}

IfsNode *ifs_node_pack(IfsNode *dir)
{
    size_t size;
    Block *b;
    char *at;
    IfsNode *copy;

    if (!dir || dir->form != FORM_DIR || dir->block)
        return dir;
    size = sizeof(Block) + packed_size(dir);
    /* Sizes and offsets are 32-bit: 4 GiB, far beyond any resource. */
    if (size >= UINT32_MAX)
        return dir;
    b = g_malloc(size);
    g_atomic_ref_count_init(&b->ref);
    b->size = (uint32_t)size;
    at = (char *)(b + 1);
    copy = pack_copy(b, &at, dir);
    ifs_node_unref(dir);
    return copy;
}

/* What the nodes of a block hold outside it goes with the block. */
static void block_free(Block *b)
{
    char *end = (char *)b + b->size;

    for (char *at = (char *)(b + 1); at < end;) {
        IfsNode *n = (IfsNode *)at;

        if (n->form == FORM_DIR) {
            for (guint i = 0; i < n->count; i++)
                if (!children_of(n)[i]->block || block_of(children_of(n)[i]) != b)
                    ifs_node_unref(children_of(n)[i]);
        } else if (n->form == FORM_RENDERED) {
            RenderedNode *r = (RenderedNode *)n;

            if (r->how->release)
                r->how->release(r->src);
        }
        at += round_to_unit(node_bytes_size(n));
    }
    g_free(b);
}

/* ---- directories ------------------------------------------------------ */

/* Most directories have a few dozen entries: below this many, duplicates
 * are found by scanning, which costs less than a hash table per directory. */
#define BUILDER_SCAN_MAX 32

struct IfsDirBuilder {
    char *path;
    GPtrArray *children; /* IfsNode*, insertion order, owned */
    GHashTable *names; /* child name -> child, once there are many */
    guint dropped;
};

static IfsDirBuilder *builder_new(char *path /* taken */)
{
    IfsDirBuilder *b = g_new0(IfsDirBuilder, 1);

    b->path = path;
    b->children = g_ptr_array_new();
    return b;
}

IfsDirBuilder *ifs_dir_builder_new(const char *path)
{
    return builder_new(g_strdup(path ? path : ""));
}

IfsDirBuilder *ifs_dir_builder_new_child(IfsDirBuilder *parent, const char *name)
{
    return builder_new(ifs_path_join(parent->path, name));
}

const char *ifs_dir_builder_path(IfsDirBuilder *b)
{
    return b->path;
}

gboolean ifs_dir_builder_has(IfsDirBuilder *b, const char *name)
{
    if (b->names)
        return g_hash_table_contains(b->names, name);
    for (guint i = 0; i < b->children->len; i++)
        if (strcmp(name_of(g_ptr_array_index(b->children, i)), name) == 0)
            return TRUE;
    return FALSE;
}

void ifs_dir_builder_add(IfsDirBuilder *b, IfsNode *child)
{
    if (!child)
        return;
    if (ifs_dir_builder_has(b, name_of(child))) {
        b->dropped++;
        ifs_node_unref(child);
        return;
    }
    g_ptr_array_add(b->children, child);
    if (!b->names && b->children->len > BUILDER_SCAN_MAX) {
        b->names = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < b->children->len; i++) {
            IfsNode *c = g_ptr_array_index(b->children, i);

            g_hash_table_insert(b->names, name_of(c), c);
        }
    } else if (b->names) {
        g_hash_table_insert(b->names, name_of(child), child);
    }
}

void ifs_dir_builder_add_file(IfsDirBuilder *b, const char *name, const char *data, size_t len,
                              gboolean newline)
{
    ifs_dir_builder_add(b, node_alloc(IFS_NODE_FILE, FORM_FILE, name, 0, 0, data, len, newline));
}

guint ifs_dir_builder_dropped(IfsDirBuilder *b)
{
    return b->dropped;
}

static int compare_children(const void *a, const void *b)
{
    const IfsNode *x = *(IfsNode *const *)a;
    const IfsNode *y = *(IfsNode *const *)b;

    return strcmp(name_of(x), name_of(y));
}

/* A directory node over `children` (already sorted; the references are
 * taken, the array is not). */
IfsNode *node_dir_new(const char *name, time_t mtime, IfsNode *const *children, guint n_children)
{
    IfsNode *n = node_alloc(IFS_NODE_DIR, FORM_DIR, name, mtime, n_children, NULL, 0, FALSE);

    if (n_children)
        memcpy(children_of(n), children, n_children * sizeof *children);
    return n;
}

IfsNode *ifs_dir_builder_finish(IfsDirBuilder *b, time_t mtime)
{
    guint n = b->children->len;
    IfsNode **children = (IfsNode **)g_ptr_array_free(b->children, FALSE);
    IfsNode *dir;

    if (n > 1)
        qsort(children, n, sizeof(*children), compare_children);
    dir = node_dir_new(basename_of(b->path), mtime, children, n);
    g_free(children);
    if (b->names)
        g_hash_table_unref(b->names);
    g_free(b->path);
    g_free(b);
    return dir;
}

IfsNode *ifs_node_child(const IfsNode *dir, const char *name)
{
    guint lo = 0;
    guint hi;

    if (!dir || dir->form != FORM_DIR || !name)
        return NULL;
    hi = dir->count;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        int c = strcmp(name, name_of(children_of(dir)[mid]));

        if (c == 0)
            return children_of(dir)[mid];
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
