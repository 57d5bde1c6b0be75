/* The inode registry (see inodes.h). After a `find` over 100,000 resources
 * the kernel holds millions of inodes, so an entry is 24 bytes in one open
 * addressing table (linear probing, deletion by backward shift, so no
 * tombstones build up under churn): the ino, the parent's ino, the lookup
 * count and the index of an interned name. Most names ("status", "json")
 * are shared by every resource; each name is kept while an entry uses it. */
#include "infrafs/inodes.h"
#include "infrafs/sanitizer.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

typedef struct {
    uint64_t ino; /* 0: free slot (no inode is 0) */
    uint64_t parent;
    uint32_t nlookup;
    uint32_t name;
} Slot;

typedef struct {
    uint32_t ref;
    uint32_t id;
    char text[];
} Name;

struct IfsInodes {
    GMutex lock;
    Slot *slots;
    size_t capacity; /* slots; any size, so that the table grows in small steps */
    size_t used;
    GHashTable *by_text; /* Name.text (the key) -> the same pointer */
    Name **names;        /* by id; NULL where free */
    guint n_ids;
    guint ids_alloc;
    GArray *free_ids;    /* guint */
    size_t name_bytes;
};

#define MIN_CAPACITY 1024
/* Paths are at most this deep (CONTRACT: resource trees are capped well
 * below); deeper means a broken chain, never a real inode. */
#define MAX_PATH_DEPTH 256

static Name *name_of_text(const char *text)
{
    return (Name *)(text - offsetof(Name, text));
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

static void name_release(IfsInodes *in, uint32_t id)
{
    Name *name = in->names[id];

    if (--name->ref > 0)
        return;
    g_hash_table_remove(in->by_text, name->text);
    in->name_bytes -= sizeof *name + strlen(name->text) + 1;
    in->names[id] = NULL;
    g_array_append_val(in->free_ids, id);
    g_free(name);
}

/* The table is mapped on its own, not taken from malloc: it grows in
 * steps of a quarter, and malloc would keep each smaller table it frees
 * (glibc raises its mmap threshold to the size of what was freed), which
 * after a walk of 100,000 resources held more than the table itself. */
static Slot *slots_new(size_t capacity)
{
#ifdef IFS_UNDER_ASAN
    return g_new0(Slot, capacity); /* where the sanitizer sees it */
#else
    void *mem = mmap(NULL, capacity * sizeof(Slot), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (mem == MAP_FAILED)
        g_error("inode registry: cannot map %zu bytes for %zu inodes: %s",
                capacity * sizeof(Slot), capacity, g_strerror(errno));
    return mem; /* zeroed */
#endif
}

static void slots_free(Slot *slots, size_t capacity)
{
#ifdef IFS_UNDER_ASAN
    (void)capacity;
    g_free(slots);
#else
    if (slots)
        munmap(slots, capacity * sizeof(Slot));
#endif
}

static size_t next_slot(const IfsInodes *in, size_t i)
{
    return i + 1 == in->capacity ? 0 : i + 1;
}

static size_t home_of(const IfsInodes *in, uint64_t ino)
{
    /* inos are already hashes of paths; mixing guards against weak low bits */
    ino ^= ino >> 31;
    ino *= UINT64_C(0x9e3779b97f4a7c15);
    /* the top 32 bits scaled to the capacity (at most 2^32 slots) */
    return (size_t)(((ino >> 32) * in->capacity) >> 32);
}

/* The slot of `ino`, or the free slot where it would go. */
static size_t slot_for(const IfsInodes *in, uint64_t ino)
{
    size_t i = home_of(in, ino);

    while (in->slots[i].ino != 0 && in->slots[i].ino != ino)
        i = next_slot(in, i);
    return i;
}

static Slot *find(const IfsInodes *in, uint64_t ino)
{
    Slot *s = &in->slots[slot_for(in, ino)];

    return s->ino == ino ? s : NULL;
}

static void resize(IfsInodes *in, size_t capacity)
{
    Slot *old = in->slots;
    size_t old_capacity = in->capacity;

    in->slots = slots_new(capacity);
    in->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].ino != 0)
            in->slots[slot_for(in, old[i].ino)] = old[i];
    slots_free(old, old_capacity);
}

/* Empties slot `i`, moving later entries of its probe run back so that
 * every entry stays reachable from its home slot. */
static void remove_at(IfsInodes *in, size_t i)
{
    size_t j = i;

    name_release(in, in->slots[i].name);
    for (;;) {
        size_t home;

        j = next_slot(in, j);
        if (in->slots[j].ino == 0)
            break;
        home = home_of(in, in->slots[j].ino);
        /* stays if its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        in->slots[i] = in->slots[j];
        i = j;
    }
    in->slots[i].ino = 0;
    in->used--;
    if (in->capacity > MIN_CAPACITY && in->used < in->capacity / 8)
        resize(in, MAX(in->capacity / 2, MIN_CAPACITY));
}

/* The kernel holds `ino`, entry `name` of `parent`, once more. */
static void count_lookup(IfsInodes *in, uint64_t ino, uint64_t parent, const char *name)
{
    size_t i = slot_for(in, ino);
    Slot *s = &in->slots[i];

    if (s->ino == ino) {
        if (s->nlookup < UINT32_MAX) /* a saturated count is kept for good */
            s->nlookup++;
        return;
    }
    s->ino = ino;
    s->parent = parent;
    s->nlookup = 1;
    s->name = name_intern(in, name);
    in->used++;
    /* Past 85 % full, a quarter more: linear probes stay a few slots long
     * on average, and the table stays 68-85 % full as it grows (doubling
     * would leave it 43-85 % full: at 2.75 million inodes, 100 MB instead
     * of 70-85). */
    if (in->used * 20 > in->capacity * 17)
        resize(in, in->capacity + in->capacity / 4);
}

IfsInodes *ifs_inodes_new(void)
{
    IfsInodes *in = g_new0(IfsInodes, 1);

    g_mutex_init(&in->lock);
    in->slots = slots_new(MIN_CAPACITY);
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
    slots_free(in->slots, in->capacity);
    g_mutex_clear(&in->lock);
    g_free(in);
}

/* The names from inode `ino` up to the root, into names[0..*depth), the
 * last one a child of the root; FALSE when the chain breaks. */
static gboolean names_up_locked(IfsInodes *in, uint64_t ino,
                                const char *names[MAX_PATH_DEPTH], guint *depth)
{
    *depth = 0;
    while (ino != IFS_ROOT_INO) {
        Slot *s = find(in, ino);

        if (!s || *depth == MAX_PATH_DEPTH)
            return FALSE;
        names[(*depth)++] = in->names[s->name]->text;
        ino = s->parent;
    }
    return TRUE;
}

/* The node in `root` at the path of inode `ino`: up the registry to the
 * root, then down the snapshot by name, with no path built. Borrowed from
 * `root`. Lock held (the names are the registry's). */
static IfsNode *resolve_locked(IfsInodes *in, IfsNode *root, uint64_t ino)
{
    const char *names[MAX_PATH_DEPTH];
    guint depth;
    IfsNode *node = root;

    if (!names_up_locked(in, ino, names, &depth))
        return NULL;
    while (depth > 0 && node)
        node = node->type == IFS_NODE_DIR ? ifs_node_child(node, names[--depth]) : NULL;
    return node;
}

char *ifs_inodes_path(IfsInodes *in, uint64_t ino)
{
    const char *names[MAX_PATH_DEPTH];
    guint depth;
    GString *path = NULL;

    g_mutex_lock(&in->lock);
    if (names_up_locked(in, ino, names, &depth)) {
        path = g_string_new(NULL);
        while (depth > 0) {
            g_string_append(path, names[--depth]);
            if (depth > 0)
                g_string_append_c(path, '/');
        }
    }
    g_mutex_unlock(&in->lock);
    return path ? g_string_free(path, FALSE) : NULL;
}

IfsNode *ifs_inodes_resolve(IfsInodes *in, IfsNode *root, uint64_t ino)
{
    IfsNode *node;

    g_mutex_lock(&in->lock);
    node = ifs_node_ref(resolve_locked(in, root, ino));
    g_mutex_unlock(&in->lock);
    return node;
}

IfsNode *ifs_inodes_resolve_parent(IfsInodes *in, IfsNode *root, uint64_t ino)
{
    IfsNode *dir = NULL;
    Slot *s;

    g_mutex_lock(&in->lock);
    s = ino == IFS_ROOT_INO ? NULL : find(in, ino);
    if (s)
        dir = resolve_locked(in, root, s->parent);
    dir = dir && dir->type == IFS_NODE_DIR ? ifs_node_ref(dir) : NULL;
    g_mutex_unlock(&in->lock);
    return dir;
}

IfsNode *ifs_inodes_lookup(IfsInodes *in, IfsNode *root, uint64_t parent, const char *name)
{
    IfsNode *dir, *node = NULL;

    g_mutex_lock(&in->lock);
    dir = resolve_locked(in, root, parent);
    if (dir && dir->type == IFS_NODE_DIR)
        node = ifs_node_child(dir, name);
    if (node) {
        ifs_node_ref(node);
        count_lookup(in, node->ino, parent, ifs_node_name(node));
    }
    g_mutex_unlock(&in->lock);
    return node;
}

void ifs_inodes_count_children(IfsInodes *in, uint64_t dir_ino, const IfsNode *dir,
                               guint from, guint to)
{
    g_mutex_lock(&in->lock);
    for (guint i = from; i < to && i < ifs_node_n_children(dir); i++) {
        const IfsNode *child = ifs_node_child_at(dir, i);

        count_lookup(in, child->ino, dir_ino, ifs_node_name(child));
    }
    g_mutex_unlock(&in->lock);
}

void ifs_inodes_forget(IfsInodes *in, uint64_t ino, uint64_t nlookup)
{
    size_t i;

    g_mutex_lock(&in->lock);
    i = slot_for(in, ino);
    if (in->slots[i].ino == ino && in->slots[i].nlookup < UINT32_MAX) {
        if (nlookup >= in->slots[i].nlookup)
            remove_at(in, i);
        else
            in->slots[i].nlookup -= (uint32_t)nlookup;
    }
    g_mutex_unlock(&in->lock);
}

gboolean ifs_inodes_held(IfsInodes *in, uint64_t ino)
{
    gboolean held;

    g_mutex_lock(&in->lock);
    held = ino == IFS_ROOT_INO || find(in, ino) != NULL;
    g_mutex_unlock(&in->lock);
    return held;
}

guint ifs_inodes_count(IfsInodes *in)
{
    guint n;

    g_mutex_lock(&in->lock);
    n = (guint)in->used;
    g_mutex_unlock(&in->lock);
    return n;
}

size_t ifs_inodes_bytes(IfsInodes *in)
{
    size_t bytes;

    g_mutex_lock(&in->lock);
    bytes = in->capacity * sizeof(Slot) + in->name_bytes;
    g_mutex_unlock(&in->lock);
    return bytes;
}
