/* The inode registry (see inodes.h). Only directories (and wait files)
 * take an entry: 40 bytes in one array, numbered by position (a
 * directory's node id is its position + 1; the root's entry is the first),
 * with free entries chained for reuse, and a table from st_ino to position
 * (4 bytes a slot, linear probing, deletion by backward shift, so no
 * tombstones build up under churn). A file is named by its directory's
 * position and its interned name, and counted in both; names are shared
 * ("status", "json" by every resource) and kept while anything counts
 * them. */
#include "infrafs/inodes.h"
#include "infrafs/sanitizer.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

typedef struct {
    uint64_t ino; /* st_ino; 0: a free entry (no inode is 0) */
    uint64_t nlookup; /* the kernel's lookups of the directory */
    uint64_t file_lookups; /* ... of its files, all together */
    uint32_t parent; /* entry of its parent; of a free entry, the next free one */
    uint32_t name;
    uint32_t subdirs; /* entries whose parent this is */
    uint32_t unused;
} Dir;

G_STATIC_ASSERT(sizeof(Dir) == 40);

typedef struct {
    uint64_t ref; /* directories named so, plus the lookups of files named so */
    uint32_t id;
    char text[];
} Name;

struct IfsInodes {
    GMutex lock;
    Dir *dirs;
    uint32_t n_dirs; /* entries ever used (the high-water mark) */
    uint32_t dirs_alloc;
    uint32_t live; /* entries in use, the root's included */
    uint32_t free_head; /* NO_DIR when none */
    uint32_t *slots; /* entry + 1, 0 for a free slot; keyed by Dir.ino */
    size_t capacity; /* slots; any size, so that the table grows in small steps */
    size_t used;
    GHashTable *by_text; /* Name.text (the key) -> the same pointer */
    Name **names; /* by id; NULL where free */
    guint n_ids;
    guint ids_alloc;
    GArray *free_ids; /* guint */
    size_t name_bytes;
};

#define FILE_BIT (UINT64_C(1) << 63)
#define ROOT_DIR 0u
#define NO_DIR UINT32_MAX
/* Entries are numbered below this, so that a file's node id holds one. */
#define MAX_DIRS (UINT32_C(1) << 31)
#define MIN_CAPACITY 1024
#define MIN_DIRS 256
/* Paths are at most this deep (resource trees are capped well below: containers nested more than 32 levels become files, doc/SEMANTICS.md §4.2.6 and §8); deeper means a broken chain, never a real inode. */
#define MAX_PATH_DEPTH 256

/* ---- names ---------------------------------------------------------------- */

static Name *name_of_text(const char *text)
{
    return (Name *)(text - offsetof(Name, text));
}

/* The id of `text`, if interned, else -1. */
static int64_t name_find(IfsInodes *in, const char *text)
{
    const char *found = g_hash_table_lookup(in->by_text, text);

    return found ? (int64_t)name_of_text(found)->id : -1;
}

static uint32_t name_intern(IfsInodes *in, const char *text)
{
    const char *found = g_hash_table_lookup(in->by_text, text);
    Name *name;
    size_t len;
    guint id;

    if (found) {
        name = name_of_text(found);
        name->ref++;
        return name->id;
    }
    if (in->free_ids->len > 0) {
        id = g_array_index(in->free_ids, guint, in->free_ids->len - 1);
        g_array_set_size(in->free_ids, in->free_ids->len - 1);
    } else {
        if (in->n_ids == in->ids_alloc) {
            in->ids_alloc = MAX(64u, in->ids_alloc * 2);
            in->names = g_renew(Name *, in->names, in->ids_alloc);
        }
        id = in->n_ids++;
    }
    len = strlen(text);
    name = g_malloc(sizeof *name + len + 1);
    name->ref = 1;
    name->id = id;
    memcpy(name->text, text, len + 1);
    in->names[id] = name;
    in->name_bytes += sizeof *name + len + 1;
    g_hash_table_add(in->by_text, name->text);
    return id;
}

static void name_release(IfsInodes *in, uint32_t id, uint64_t count)
{
    Name *name = in->names[id];

    name->ref -= MIN(count, name->ref);
    if (name->ref > 0)
        return;
    g_hash_table_remove(in->by_text, name->text);
    in->name_bytes -= sizeof *name + strlen(name->text) + 1;
    in->names[id] = NULL;
    g_array_append_val(in->free_ids, id);
    g_free(name);
}

static gboolean name_valid(const IfsInodes *in, uint64_t id)
{
    return id < in->n_ids && in->names[id] != NULL;
}

/* ---- memory of its own ------------------------------------------------------ */

/* The arrays are mapped on their own, not taken from malloc: they grow in
 * steps, and malloc would keep each smaller array it frees (glibc raises
 * its mmap threshold to the size of what was freed). */
static void *table_new(size_t bytes)
{
#ifdef IFS_UNDER_ASAN
    return g_malloc0(bytes); /* where the sanitizer sees it */
#else
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (mem == MAP_FAILED)
        g_error("inode registry: cannot map %zu bytes: %s", bytes, g_strerror(errno));
    return mem; /* zeroed */
#endif
}

static void table_free(void *mem, size_t bytes)
{
#ifdef IFS_UNDER_ASAN
    (void)bytes;
    g_free(mem);
#else
    if (mem)
        munmap(mem, bytes);
#endif
}

/* ---- the table from st_ino to entry ------------------------------------------ */

static size_t next_slot(const IfsInodes *in, size_t i)
{
    return i + 1 == in->capacity ? 0 : i + 1;
}

static size_t home_of(size_t capacity, uint64_t ino)
{
    /* inos are already hashes of paths; mixing guards against weak low bits */
    ino ^= ino >> 31;
    ino *= UINT64_C(0x9e3779b97f4a7c15);
    /* the top 32 bits scaled to the capacity (at most 2^32 slots) */
    return (size_t)(((ino >> 32) * capacity) >> 32);
}

static uint64_t slot_ino(const IfsInodes *in, size_t i)
{
    return in->dirs[in->slots[i] - 1].ino;
}

/* The slot of `ino`, or the free slot where it would go. */
static size_t slot_for(const IfsInodes *in, uint64_t ino)
{
    size_t i = home_of(in->capacity, ino);

    while (in->slots[i] != 0 && slot_ino(in, i) != ino)
        i = next_slot(in, i);
    return i;
}

/* The entry of the directory with st_ino `ino`, or NO_DIR. */
static uint32_t dir_find(const IfsInodes *in, uint64_t ino)
{
    size_t i;

    if (ino == IFS_ROOT_INO)
        return ROOT_DIR;
    i = slot_for(in, ino);
    return in->slots[i] ? in->slots[i] - 1 : NO_DIR;
}

static void resize(IfsInodes *in, size_t capacity)
{
    uint32_t *old = in->slots;
    size_t old_capacity = in->capacity;

    in->slots = table_new(capacity * sizeof *in->slots);
    in->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] != 0)
            in->slots[slot_for(in, in->dirs[old[i] - 1].ino)] = old[i];
    table_free(old, old_capacity * sizeof *old);
}

static void slot_add(IfsInodes *in, uint32_t dir)
{
    in->slots[slot_for(in, in->dirs[dir].ino)] = dir + 1;
    in->used++;
    /* Past 85 % full, a quarter more: linear probes stay a few slots long
     * on average, and the table stays 68-85 % full as it grows. */
    if (in->used * 20 > in->capacity * 17)
        resize(in, in->capacity + in->capacity / 4);
}

/* Empties the slot of `ino`, moving later entries of its probe run back so
 * that every entry stays reachable from its home slot. */
static void slot_remove(IfsInodes *in, uint64_t ino)
{
    size_t i = slot_for(in, ino), j = i;

    if (in->slots[i] == 0)
        return;
    for (;;) {
        size_t home;

        j = next_slot(in, j);
        if (in->slots[j] == 0)
            break;
        home = home_of(in->capacity, slot_ino(in, j));
        /* stays if its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        in->slots[i] = in->slots[j];
        i = j;
    }
    in->slots[i] = 0;
    in->used--;
    if (in->capacity > MIN_CAPACITY && in->used < in->capacity / 8)
        resize(in, MAX(in->capacity / 2, MIN_CAPACITY));
}

/* ---- directory entries --------------------------------------------------------- */

static void dirs_reset(IfsInodes *in, uint32_t alloc)
{
    table_free(in->dirs, (size_t)in->dirs_alloc * sizeof(Dir));
    in->dirs = table_new((size_t)alloc * sizeof(Dir));
    in->dirs_alloc = alloc;
    in->n_dirs = 1;
    in->live = 1;
    in->free_head = NO_DIR;
    in->dirs[ROOT_DIR].ino = IFS_ROOT_INO;
    in->dirs[ROOT_DIR].parent = NO_DIR;
}

static gboolean dir_valid(const IfsInodes *in, uint64_t dir)
{
    return dir < in->n_dirs && in->dirs[dir].ino != 0;
}

/* A new entry, or NO_DIR when every number is taken. */
static uint32_t dir_alloc(IfsInodes *in)
{
    uint32_t dir = in->free_head;

    if (dir != NO_DIR) {
        in->free_head = in->dirs[dir].parent;
    } else {
        if (in->n_dirs == MAX_DIRS)
            return NO_DIR;
        if (in->n_dirs == in->dirs_alloc) {
            uint32_t alloc =
                (uint32_t)MIN((uint64_t)MAX_DIRS, (uint64_t)in->dirs_alloc + in->dirs_alloc / 2);
            Dir *grown = table_new((size_t)alloc * sizeof(Dir));

            memcpy(grown, in->dirs, (size_t)in->n_dirs * sizeof(Dir));
            table_free(in->dirs, (size_t)in->dirs_alloc * sizeof(Dir));
            in->dirs = grown;
            in->dirs_alloc = alloc;
        }
        dir = in->n_dirs++;
    }
    in->live++;
    return dir;
}

/* Frees `dir` once nothing counts it, then its parent the same way: the
 * kernel may forget a directory before the files in it. */
static void dir_release_unused(IfsInodes *in, uint32_t dir)
{
    while (dir != ROOT_DIR) {
        Dir *d = &in->dirs[dir];
        uint32_t parent = d->parent;

        if (d->nlookup > 0 || d->file_lookups > 0 || d->subdirs > 0)
            return;
        slot_remove(in, d->ino);
        name_release(in, d->name, 1);
        memset(d, 0, sizeof *d);
        d->parent = in->free_head;
        in->free_head = dir;
        in->live--;
        in->dirs[parent].subdirs--;
        dir = parent;
    }
    /* Everything forgotten (the kernel dropped its caches): give the
     * memory back. */
    if (in->live == 1 && in->dirs[ROOT_DIR].file_lookups == 0 && in->dirs_alloc > MIN_DIRS)
        dirs_reset(in, MIN_DIRS);
}

/* ---- node ids ------------------------------------------------------------------- */

typedef enum { ID_NONE, ID_DIR, ID_FILE } IdKind;

static uint64_t dir_id_of(uint32_t dir)
{
    return (uint64_t)dir + 1;
}

static uint64_t file_id_of(uint32_t dir, uint32_t name)
{
    return FILE_BIT | (uint64_t)dir << 32 | name;
}

/* What node id `id` names: a directory's entry, or a directory's entry and
 * a file's name. */
static IdKind decode(const IfsInodes *in, uint64_t id, uint32_t *dir, uint32_t *name)
{
    if (id & FILE_BIT) {
        uint64_t d = (id & ~FILE_BIT) >> 32, n = id & UINT32_MAX;

        if (!dir_valid(in, d) || !name_valid(in, n))
            return ID_NONE;
        *dir = (uint32_t)d;
        *name = (uint32_t)n;
        return ID_FILE;
    }
    if (id == 0 || !dir_valid(in, id - 1))
        return ID_NONE;
    *dir = (uint32_t)(id - 1);
    return ID_DIR;
}

/* Whether `node` takes an entry: a directory, and an operation's wait
 * file. A newer operation's wait file at the same path has an st_ino of
 * its own, and must be a new inode to the kernel, whose cached pages of
 * the old one cannot be dropped while a reader waits in them. */
static gboolean takes_entry(const IfsNode *node)
{
    return node->type == IFS_NODE_DIR || node->type == IFS_NODE_WAIT;
}

/* One more lookup of `child`, an entry of directory `parent`: its node id,
 * or 0 when no entry can be had. */
static uint64_t count_lookup(IfsInodes *in, uint32_t parent, const IfsNode *child)
{
    uint32_t dir;
    uint64_t ino;

    if (!takes_entry(child)) {
        in->dirs[parent].file_lookups++;
        return file_id_of(parent, name_intern(in, ifs_node_name(child)));
    }
    ino = ifs_node_ino(child, in->dirs[parent].ino);
    dir = dir_find(in, ino);
    if (dir != NO_DIR) {
        in->dirs[dir].nlookup++;
        return dir_id_of(dir);
    }
    dir = dir_alloc(in);
    if (dir == NO_DIR)
        return 0;
    in->dirs[dir] = (Dir){
        .ino = ino,
        .nlookup = 1,
        .parent = parent,
        .name = name_intern(in, ifs_node_name(child)),
    };
    in->dirs[parent].subdirs++;
    slot_add(in, dir);
    return dir_id_of(dir);
}

IfsInodes *ifs_inodes_new(void)
{
    IfsInodes *in = g_new0(IfsInodes, 1);

    g_mutex_init(&in->lock);
    dirs_reset(in, MIN_DIRS);
    in->slots = table_new(MIN_CAPACITY * sizeof *in->slots);
    in->capacity = MIN_CAPACITY;
    in->by_text = g_hash_table_new(g_str_hash, g_str_equal);
    in->free_ids = g_array_new(FALSE, FALSE, sizeof(guint));
    return in;
}

void ifs_inodes_free(IfsInodes *in)
{
    if (!in)
        return;
    for (guint id = 0; id < in->n_ids; id++)
        g_free(in->names[id]);
    g_free(in->names);
    g_hash_table_destroy(in->by_text);
    g_array_free(in->free_ids, TRUE);
    table_free(in->slots, in->capacity * sizeof *in->slots);
    table_free(in->dirs, (size_t)in->dirs_alloc * sizeof(Dir));
    g_mutex_clear(&in->lock);
    g_free(in);
}

/* ---- resolving --------------------------------------------------------------------- */

/* The names from directory `dir` up to the root, into names[0..*depth),
 * the last one a child of the root; FALSE when the chain breaks. */
static gboolean names_up_locked(IfsInodes *in, uint32_t dir, const char *names[MAX_PATH_DEPTH],
                                guint *depth)
{
    *depth = 0;
    while (dir != ROOT_DIR) {
        if (!dir_valid(in, dir) || *depth == MAX_PATH_DEPTH)
            return FALSE;
        names[(*depth)++] = in->names[in->dirs[dir].name]->text;
        dir = in->dirs[dir].parent;
    }
    return TRUE;
}

/* The node in `root` at the path of directory `dir`, then (if `name`) its
 * entry `name`: up the registry to the root, then down the snapshot by
 * name, with no path built. Borrowed from `root`. Lock held (the names are
 * the registry's). */
static IfsNode *resolve_locked(IfsInodes *in, IfsNode *root, uint32_t dir, const char *name)
{
    const char *names[MAX_PATH_DEPTH];
    guint depth;
    IfsNode *node = root;

    if (!names_up_locked(in, dir, names, &depth))
        return NULL;
    while (depth > 0 && node)
        node = node->type == IFS_NODE_DIR ? ifs_node_child(node, names[--depth]) : NULL;
    if (node && name)
        node = node->type == IFS_NODE_DIR ? ifs_node_child(node, name) : NULL;
    return node;
}

static IfsNode *resolve_id_locked(IfsInodes *in, IfsNode *root, uint64_t id, uint64_t *ino)
{
    uint32_t dir, name;
    IfsNode *node;

    switch (decode(in, id, &dir, &name)) {
    case ID_DIR:
        node = resolve_locked(in, root, dir, NULL);
        if (ino)
            *ino = in->dirs[dir].ino;
        return node;
    case ID_FILE:
        node = resolve_locked(in, root, dir, in->names[name]->text);
        if (ino)
            *ino = ifs_ino_child(in->dirs[dir].ino, in->names[name]->text);
        return node;
    default:
        return NULL;
    }
}

char *ifs_inodes_path(IfsInodes *in, uint64_t id)
{
    const char *names[MAX_PATH_DEPTH];
    guint depth;
    GString *path = NULL;
    uint32_t dir, name;
    IdKind kind;

    g_mutex_lock(&in->lock);
    kind = decode(in, id, &dir, &name);
    if (kind != ID_NONE && names_up_locked(in, dir, names, &depth)) {
        path = g_string_new(NULL);
        while (depth > 0) {
            g_string_append(path, names[--depth]);
            if (depth > 0)
                g_string_append_c(path, '/');
        }
        if (kind == ID_FILE) {
            if (path->len > 0)
                g_string_append_c(path, '/');
            g_string_append(path, in->names[name]->text);
        }
    }
    g_mutex_unlock(&in->lock);
    return path ? g_string_free(path, FALSE) : NULL;
}

IfsNode *ifs_inodes_resolve(IfsInodes *in, IfsNode *root, uint64_t id, uint64_t *ino)
{
    IfsNode *node;

    g_mutex_lock(&in->lock);
    node = ifs_node_ref(resolve_id_locked(in, root, id, ino));
    g_mutex_unlock(&in->lock);
    return node;
}

IfsNode *ifs_inodes_resolve_parent(IfsInodes *in, IfsNode *root, uint64_t id, uint64_t *dir_id)
{
    IfsNode *node = NULL;
    uint32_t dir, name;
    IdKind kind;

    *dir_id = 0;
    g_mutex_lock(&in->lock);
    kind = decode(in, id, &dir, &name);
    if (kind == ID_DIR)
        dir = dir == ROOT_DIR ? NO_DIR : in->dirs[dir].parent;
    if (kind != ID_NONE && dir != NO_DIR)
        node = resolve_locked(in, root, dir, NULL);
    if (node && node->type == IFS_NODE_DIR) {
        ifs_node_ref(node);
        *dir_id = dir_id_of(dir);
    } else {
        node = NULL;
    }
    g_mutex_unlock(&in->lock);
    return node;
}

/* ---- counting -------------------------------------------------------------------- */

IfsNode *ifs_inodes_lookup(IfsInodes *in, IfsNode *root, uint64_t parent, const char *name,
                           uint64_t *id, uint64_t *ino)
{
    IfsNode *node = NULL;
    uint32_t dir, unused;

    *id = 0;
    g_mutex_lock(&in->lock);
    if (decode(in, parent, &dir, &unused) == ID_DIR)
        node = resolve_locked(in, root, dir, name);
    if (node) {
        *id = count_lookup(in, dir, node);
        *ino = ifs_node_ino(node, in->dirs[dir].ino);
    }
    node = *id ? ifs_node_ref(node) : NULL;
    g_mutex_unlock(&in->lock);
    return node;
}

typedef uint64_t (*ChildOp)(IfsInodes *in, uint32_t dir, const IfsNode *child);

/* `op` on `child` of the directory at node id `dir_id`, under the lock; 0
 * if `dir_id` is no directory's. */
static uint64_t on_child(IfsInodes *in, uint64_t dir_id, const IfsNode *child, ChildOp op)
{
    uint64_t id = 0;
    uint32_t dir, unused;

    g_mutex_lock(&in->lock);
    if (decode(in, dir_id, &dir, &unused) == ID_DIR)
        id = op(in, dir, child);
    g_mutex_unlock(&in->lock);
    return id;
}

uint64_t ifs_inodes_count_child(IfsInodes *in, uint64_t dir_id, const IfsNode *child)
{
    return on_child(in, dir_id, child, count_lookup);
}

void ifs_inodes_forget(IfsInodes *in, uint64_t id, uint64_t nlookup)
{
    uint32_t dir, name;
    Dir *d;

    g_mutex_lock(&in->lock);
    switch (decode(in, id, &dir, &name)) {
    case ID_DIR:
        d = &in->dirs[dir];
        d->nlookup -= MIN(nlookup, d->nlookup);
        dir_release_unused(in, dir);
        break;
    case ID_FILE:
        /* more than was counted would be the kernel's mistake: never
         * below zero */
        d = &in->dirs[dir];
        nlookup = MIN(nlookup, d->file_lookups);
        d->file_lookups -= nlookup;
        name_release(in, name, nlookup);
        dir_release_unused(in, dir);
        break;
    default:
        break;
    }
    g_mutex_unlock(&in->lock);
}

/* ---- what the kernel may hold --------------------------------------------------- */

static gboolean held_locked(const IfsInodes *in, uint64_t id)
{
    uint32_t dir, name;

    switch (decode(in, id, &dir, &name)) {
    case ID_DIR:
        return dir == ROOT_DIR || in->dirs[dir].nlookup > 0;
    case ID_FILE:
        return in->dirs[dir].file_lookups > 0;
    default:
        return FALSE;
    }
}

gboolean ifs_inodes_held(IfsInodes *in, uint64_t id)
{
    gboolean held;

    g_mutex_lock(&in->lock);
    held = held_locked(in, id);
    g_mutex_unlock(&in->lock);
    return held;
}

/* The node id of the entry with st_ino `ino`, if the kernel holds it. */
static uint64_t held_entry_id(const IfsInodes *in, uint64_t ino)
{
    uint32_t dir = dir_find(in, ino);

    return dir != NO_DIR && held_locked(in, dir_id_of(dir)) ? dir_id_of(dir) : 0;
}

/* The node id of `child` of entry `dir`, if the kernel may hold it. */
static uint64_t child_id_locked(IfsInodes *in, uint32_t dir, const IfsNode *child)
{
    int64_t name;

    if (takes_entry(child))
        return held_entry_id(in, ifs_node_ino(child, in->dirs[dir].ino));
    if (in->dirs[dir].file_lookups == 0)
        return 0;
    name = name_find(in, ifs_node_name(child));
    return name >= 0 ? file_id_of(dir, (uint32_t)name) : 0;
}

uint64_t ifs_inodes_child_id(IfsInodes *in, uint64_t dir_id, const IfsNode *child)
{
    return on_child(in, dir_id, child, child_id_locked);
}

uint64_t ifs_inodes_known_id(IfsInodes *in, uint64_t parent_ino, uint64_t ino, const IfsNode *node)
{
    uint64_t id = 0;
    uint32_t dir;

    g_mutex_lock(&in->lock);
    if (takes_entry(node)) /* the root too */
        id = held_entry_id(in, ino);
    else if ((dir = dir_find(in, parent_ino)) != NO_DIR)
        id = child_id_locked(in, dir, node);
    g_mutex_unlock(&in->lock);
    return id;
}

uint64_t ifs_inodes_dir_id(IfsInodes *in, uint64_t ino)
{
    uint64_t id;

    g_mutex_lock(&in->lock);
    id = held_entry_id(in, ino);
    g_mutex_unlock(&in->lock);
    return id;
}

guint ifs_inodes_count(IfsInodes *in)
{
    guint n;

    g_mutex_lock(&in->lock);
    n = in->live - 1;
    g_mutex_unlock(&in->lock);
    return n;
}

size_t ifs_inodes_bytes(IfsInodes *in)
{
    size_t bytes;

    g_mutex_lock(&in->lock);
    bytes =
        in->capacity * sizeof *in->slots + (size_t)in->dirs_alloc * sizeof(Dir) + in->name_bytes;
    g_mutex_unlock(&in->lock);
    return bytes;
}
