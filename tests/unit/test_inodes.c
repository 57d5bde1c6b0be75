/* The inode registry: node ids handed out, counted and forgotten, resolved
 * against later snapshots, found again for notifications, and the whole
 * registry checked against an oracle through growth, removal and
 * shrinking. */
#include "infrafs/inodes.h"

#include <string.h>

#define FILE_BIT (UINT64_C(1) << 63)

/* root/{d<i>/{name, status, sub/{status}}} for i in [0, n), with `status`
 * as each status file's text. */
static IfsNode *tree(guint n, const char *status)
{
    IfsDirBuilder *root = ifs_dir_builder_new("");

    for (guint i = 0; i < n; i++) {
        char *name = g_strdup_printf("d%u", i);
        IfsDirBuilder *d = ifs_dir_builder_new_child(root, name);
        IfsDirBuilder *sub = ifs_dir_builder_new_child(d, "sub");

        ifs_dir_builder_add_file(d, "name", name, strlen(name), TRUE);
        ifs_dir_builder_add_file(d, "status", status, strlen(status), TRUE);
        ifs_dir_builder_add_file(sub, "status", status, strlen(status), TRUE);
        ifs_dir_builder_add(d, ifs_dir_builder_finish(sub, 1));
        ifs_dir_builder_add(root, ifs_dir_builder_finish(d, 1));
        g_free(name);
    }
    return ifs_dir_builder_finish(root, 1);
}

/* Looks `name` up in `parent` and returns its node id (the node is dropped). */
static uint64_t look(IfsInodes *in, IfsNode *root, uint64_t parent, const char *name)
{
    uint64_t id = 0, ino;
    IfsNode *node = ifs_inodes_lookup(in, root, parent, name, &id, &ino);

    g_assert_nonnull(node);
    g_assert_cmpuint(id, !=, 0);
    ifs_node_unref(node);
    return id;
}

static void test_lookup_resolve_forget(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *old = tree(3, "running"), *fresh = tree(2, "stopped");
    uint64_t dir_id = 0, file_id = 0, parent_id = 0, id, ino = 0, file_ino;
    IfsNode *dir = ifs_inodes_lookup(in, old, IFS_ROOT_INO, "d2", &dir_id, &ino);
    IfsNode *file, *again, *parent;
    char *owned = NULL, *path;

    g_assert_nonnull(dir);
    /* a directory takes an entry of its own; st_ino stays the path's hash */
    g_assert_cmpuint(dir_id, >, IFS_ROOT_INO);
    g_assert_cmpuint(dir_id & FILE_BIT, ==, 0);
    g_assert_cmpuint(ino, ==, ifs_ino_for_path("d2"));
    file = ifs_inodes_lookup(in, old, dir_id, "status", &file_id, &file_ino);
    g_assert_nonnull(file);
    g_assert_cmpuint(file_id & FILE_BIT, ==, FILE_BIT);
    g_assert_cmpuint(file_ino, ==, ifs_ino_for_path("d2/status"));
    g_assert_null(ifs_inodes_lookup(in, old, dir_id, "missing", &id, &ino));
    g_assert_cmpuint(id, ==, 0);
    /* a file is no directory to look into */
    g_assert_null(ifs_inodes_lookup(in, old, file_id, "x", &id, &ino));
    g_assert_cmpuint(ifs_inodes_count(in), ==, 1); /* d2: files take no entry */
    g_assert_true(ifs_inodes_held(in, file_id));
    g_assert_true(ifs_inodes_held(in, dir_id));
    g_assert_true(ifs_inodes_held(in, IFS_ROOT_INO));

    /* paths, for re-stats through the mount */
    path = ifs_inodes_path(in, file_id);
    g_assert_cmpstr(path, ==, "d2/status");
    g_free(path);
    path = ifs_inodes_path(in, dir_id);
    g_assert_cmpstr(path, ==, "d2");
    g_free(path);
    path = ifs_inodes_path(in, IFS_ROOT_INO);
    g_assert_cmpstr(path, ==, "");
    g_free(path);
    g_assert_null(ifs_inodes_path(in, 12345));
    g_assert_null(ifs_inodes_path(in, FILE_BIT | UINT64_C(12345) << 32));
    g_assert_null(ifs_inodes_path(in, 0));

    /* the same path in another snapshot: the new content */
    again = ifs_inodes_resolve(in, old, file_id, &ino);
    g_assert_true(again == file);
    g_assert_cmpuint(ino, ==, file_ino);
    ifs_node_unref(again);
    again = ifs_inodes_resolve(in, old, dir_id, &ino);
    g_assert_true(again == dir);
    g_assert_cmpuint(ino, ==, ifs_ino_for_path("d2"));
    ifs_node_unref(again);
    parent = ifs_inodes_resolve_parent(in, old, file_id, &parent_id);
    g_assert_true(parent == dir);
    g_assert_cmpuint(parent_id, ==, dir_id);
    ifs_node_unref(parent);
    parent = ifs_inodes_resolve_parent(in, old, dir_id, &parent_id);
    g_assert_true(parent == old);
    g_assert_cmpuint(parent_id, ==, IFS_ROOT_INO);
    ifs_node_unref(parent);
    g_assert_null(ifs_inodes_resolve_parent(in, old, IFS_ROOT_INO, &parent_id));
    /* d2 is gone from the fresh snapshot: its inodes resolve to nothing */
    g_assert_null(ifs_inodes_resolve(in, fresh, file_id, NULL));
    g_assert_null(ifs_inodes_resolve(in, fresh, dir_id, NULL));
    g_assert_null(ifs_inodes_resolve_parent(in, fresh, file_id, &parent_id));
    g_assert_cmpuint(parent_id, ==, 0);

    /* a path that survives resolves to its new node */
    id = look(in, old, look(in, old, IFS_ROOT_INO, "d0"), "status");
    again = ifs_inodes_resolve(in, fresh, id, NULL);
    g_assert_nonnull(again);
    g_assert_cmpstr(ifs_node_bytes(again, &owned), ==, "stopped\n");
    g_free(owned);
    ifs_node_unref(again);
    /* the same name in another directory is another node id */
    g_assert_cmpuint(id, !=, file_id);

    /* the same entry looked up again: the same id, one more count */
    g_assert_cmpuint(look(in, old, dir_id, "status"), ==, file_id);
    ifs_inodes_forget(in, file_id, 1);
    g_assert_true(ifs_inodes_held(in, file_id));
    ifs_inodes_forget(in, file_id, 1);
    g_assert_false(ifs_inodes_held(in, file_id));
    g_assert_true(ifs_inodes_held(in, dir_id));
    /* forgetting more than was looked up, or the unknown, is harmless */
    ifs_inodes_forget(in, dir_id, 99);
    ifs_inodes_forget(in, 12345, 1);
    ifs_inodes_forget(in, FILE_BIT | 7, 1);
    ifs_inodes_forget(in, 0, 1);
    g_assert_false(ifs_inodes_held(in, dir_id));
    g_assert_null(ifs_inodes_path(in, dir_id));
    g_assert_cmpuint(ifs_inodes_count(in), ==, 1); /* d0, which holds d0/status */

    ifs_node_unref(file);
    ifs_node_unref(dir);
    ifs_node_unref(old);
    ifs_node_unref(fresh);
    ifs_inodes_free(in);
}

/* The kernel may forget a directory before the files and directories in
 * it (FORGETs are answered on several threads): they still resolve, and
 * the directory's entry goes with the last of them. */
static void test_directory_outlived_by_its_entries(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *root = tree(2, "running");
    uint64_t d1 = look(in, root, IFS_ROOT_INO, "d1");
    uint64_t sub = look(in, root, d1, "sub");
    uint64_t file = look(in, root, d1, "name");
    uint64_t deep = look(in, root, sub, "status");
    IfsNode *node;
    char *path;

    g_assert_cmpuint(ifs_inodes_count(in), ==, 2);
    ifs_inodes_forget(in, d1, 1);
    ifs_inodes_forget(in, sub, 1);
    g_assert_false(ifs_inodes_held(in, d1));
    g_assert_cmpuint(ifs_inodes_count(in), ==, 2);
    node = ifs_inodes_resolve(in, root, file, NULL);
    g_assert_cmpstr(ifs_node_name(node), ==, "name");
    ifs_node_unref(node);
    path = ifs_inodes_path(in, deep);
    g_assert_cmpstr(path, ==, "d1/sub/status");
    g_free(path);
    ifs_inodes_forget(in, deep, 1);
    g_assert_cmpuint(ifs_inodes_count(in), ==, 1); /* d1 still counts name */
    ifs_inodes_forget(in, file, 1);
    g_assert_cmpuint(ifs_inodes_count(in), ==, 0);
    g_assert_null(ifs_inodes_resolve(in, root, file, NULL));
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

/* What a refresh changed is told to the kernel by the ids it knows: found
 * again from st_inos and names, and only for what it may hold. */
static void test_known_ids(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *root = tree(3, "running");
    IfsNode *d0 = ifs_node_child(root, "d0"), *d1 = ifs_node_child(root, "d1");
    IfsNode *d0_status = ifs_node_child(d0, "status"), *d1_status = ifs_node_child(d1, "status");
    uint64_t d0_ino = ifs_ino_for_path("d0"), d1_ino = ifs_ino_for_path("d1");
    uint64_t d0_status_ino = ifs_ino_for_path("d0/status");
    uint64_t d0_id = look(in, root, IFS_ROOT_INO, "d0");
    uint64_t status_id = look(in, root, d0_id, "status");

    g_assert_cmpuint(ifs_inodes_known_id(in, 0, IFS_ROOT_INO, root), ==, IFS_ROOT_INO);
    g_assert_cmpuint(ifs_inodes_known_id(in, IFS_ROOT_INO, d0_ino, d0), ==, d0_id);
    g_assert_cmpuint(ifs_inodes_known_id(in, d0_ino, d0_status_ino, d0_status), ==, status_id);
    g_assert_cmpuint(ifs_inodes_dir_id(in, d0_ino), ==, d0_id);
    g_assert_cmpuint(ifs_inodes_dir_id(in, IFS_ROOT_INO), ==, IFS_ROOT_INO);
    g_assert_cmpuint(ifs_inodes_child_id(in, d0_id, ifs_node_child(d0, "status")), ==, status_id);
    /* never looked up: nothing to tell */
    g_assert_cmpuint(ifs_inodes_known_id(in, IFS_ROOT_INO, d1_ino, d1), ==, 0);
    g_assert_cmpuint(ifs_inodes_known_id(in, d1_ino, ifs_ino_for_path("d1/status"), d1_status), ==,
                     0);
    g_assert_cmpuint(ifs_inodes_dir_id(in, d1_ino), ==, 0);
    g_assert_cmpuint(ifs_inodes_child_id(in, d0_id, ifs_node_child(d0, "sub")), ==, 0);
    /* "may hold": a name no file of the kernel's has is known to be absent */
    g_assert_cmpuint(ifs_inodes_child_id(in, d0_id, ifs_node_child(d0, "name")), ==, 0);
    /* forgotten: nothing to tell either */
    ifs_inodes_forget(in, status_id, 1);
    g_assert_cmpuint(ifs_inodes_known_id(in, d0_ino, d0_status_ino, d0_status), ==, 0);
    ifs_inodes_forget(in, d0_id, 1);
    g_assert_cmpuint(ifs_inodes_known_id(in, IFS_ROOT_INO, d0_ino, d0), ==, 0);
    g_assert_cmpuint(ifs_inodes_dir_id(in, d0_ino), ==, 0);
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

/* operation/{wait, status}, the wait file of operation `job`: another
 * job's is at the same path, with an st_ino of its own. */
static IfsNode *op_dir(const char *job)
{
    IfsDirBuilder *root = ifs_dir_builder_new("");
    IfsDirBuilder *op = ifs_dir_builder_new_child(root, "operation");
    char *identity = g_strconcat("operation/wait#", job, NULL);

    ifs_dir_builder_add(op, ifs_node_new_wait("operation/wait", NULL, NULL, NULL, identity));
    g_free(identity);
    ifs_dir_builder_add_file(op, "status", "queued\n", 7, FALSE);
    ifs_dir_builder_add(root, ifs_dir_builder_finish(op, 1));
    return ifs_dir_builder_finish(root, 1);
}

/* A newer operation's wait file is a new inode to the kernel (the pages it
 * cached of the old one are never invalidated while a reader may wait in
 * them), while a reader of the old one is answered by the new one. */
static void test_each_wait_file_its_own_inode(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *a = op_dir("job-a"), *b = op_dir("job-b");
    uint64_t op = look(in, a, IFS_ROOT_INO, "operation");
    uint64_t wait_a = look(in, a, op, "wait"), wait_b = look(in, b, op, "wait");
    uint64_t status_a = look(in, a, op, "status"), status_b = look(in, b, op, "status");
    IfsNode *got;

    g_assert_cmpuint(wait_a, !=, wait_b);
    g_assert_cmpuint(status_a, ==, status_b); /* the same path, the same file */
    g_assert_cmpuint(ifs_inodes_count(in), ==, 3);
    got = ifs_inodes_resolve(in, b, wait_a, NULL);
    g_assert_true(got == ifs_node_child(ifs_node_child(b, "operation"), "wait"));
    ifs_node_unref(got);
    g_assert_cmpuint(ifs_inodes_known_id(in, ifs_ino_for_path("operation"),
                                         ifs_ino_for_path("operation/wait#job-a"),
                                         ifs_node_child(ifs_node_child(a, "operation"), "wait")),
                     ==, wait_a);
    g_assert_cmpuint(ifs_inodes_known_id(in, ifs_ino_for_path("operation"),
                                         ifs_ino_for_path("operation/wait#job-b"),
                                         ifs_node_child(ifs_node_child(b, "operation"), "wait")),
                     ==, wait_b);
    ifs_inodes_forget(in, wait_a, 1);
    g_assert_false(ifs_inodes_held(in, wait_a));
    g_assert_true(ifs_inodes_held(in, wait_b));
    ifs_inodes_forget(in, wait_b, 1);
    ifs_inodes_forget(in, status_a, 2);
    ifs_inodes_forget(in, op, 1);
    g_assert_cmpuint(ifs_inodes_count(in), ==, 0);
    ifs_node_unref(a);
    ifs_node_unref(b);
    ifs_inodes_free(in);
}

/* READDIRPLUS counts every entry handed out, and a whole tree forgotten
 * leaves the registry as it was, down to its names and its memory. */
static void test_children_counted_and_dropped(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *root = tree(5000, "running");
    size_t empty_bytes = ifs_inodes_bytes(in);
    uint64_t *ids = g_new0(uint64_t, ifs_node_n_children(root));

    for (guint i = 0; i < ifs_node_n_children(root); i++)
        ids[i] = ifs_inodes_count_child(in, IFS_ROOT_INO, ifs_node_child_at(root, i));
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);

        for (guint j = 0; j < ifs_node_n_children(d); j++)
            g_assert_cmpuint(ifs_inodes_count_child(in, ids[i], ifs_node_child_at(d, j)), !=, 0);
        /* twice: two counts */
        for (guint j = 0; j < ifs_node_n_children(d); j++)
            ifs_inodes_count_child(in, ids[i], ifs_node_child_at(d, j));
    }
    /* a file is not a directory to list */
    g_assert_cmpuint(ifs_inodes_count_child(in, FILE_BIT | 1, root), ==, 0);
    g_assert_cmpuint(ifs_inodes_count(in), ==, 10000);
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);
        IfsNode *status = ifs_node_child(d, "status");
        IfsNode *got = ifs_inodes_resolve(in, root, ifs_inodes_child_id(in, ids[i], status), NULL);

        g_assert_true(got == status);
        ifs_node_unref(got);
    }
    g_assert_cmpuint(ifs_inodes_bytes(in), >, empty_bytes);
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);

        /* the directory first, then its entries */
        ifs_inodes_forget(in, ids[i], 1);
        for (guint j = 0; j < ifs_node_n_children(d); j++) {
            IfsNode *c = ifs_node_child_at(d, j);
            uint64_t d_ino = ifs_ino_child(IFS_ROOT_INO, ifs_node_name(d));
            uint64_t id = c->type == IFS_NODE_DIR
                ? ifs_inodes_known_id(in, d_ino, ifs_node_ino(c, d_ino), c)
                : ifs_inodes_child_id(in, ids[i], c);

            g_assert_cmpuint(id, !=, 0);
            ifs_inodes_forget(in, id, 2);
        }
    }
    g_assert_cmpuint(ifs_inodes_count(in), ==, 0);
    /* the tables shrank back and every name was released */
    g_assert_cmpuint(ifs_inodes_bytes(in), ==, empty_bytes);
    g_free(ids);
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

/* Random lookups and forgets over directories and files, checked against
 * plain counts after every step: entries reused, tables grown and shrunk,
 * directories forgotten before what is in them. */
typedef struct {
    IfsNode *node;
    guint parent; /* index of its directory in the list; G_MAXUINT for the root's entries */
    uint64_t id; /* as last handed out */
    guint64 count;
    uint64_t ino; /* its path's */
} Entry;

static void test_against_oracle(void)
{
    IfsInodes *in = ifs_inodes_new();
    GRand *rand = g_rand_new_with_seed(11);
    IfsNode *root = tree(600, "x");
    GArray *entries = g_array_new(FALSE, TRUE, sizeof(Entry));

    /* every directory and file below the root, each after its directory */
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *dn = ifs_node_child_at(root, i);
        Entry d = {dn, G_MAXUINT, 0, 0, ifs_node_ino(dn, IFS_ROOT_INO)};
        guint di = entries->len;

        g_array_append_val(entries, d);
        for (guint j = 0; j < ifs_node_n_children(d.node); j++) {
            IfsNode *cn = ifs_node_child_at(d.node, j);
            Entry c = {cn, di, 0, 0, ifs_node_ino(cn, d.ino)};
            guint ci = entries->len;

            g_array_append_val(entries, c);
            for (guint k = 0; k < ifs_node_n_children(c.node); k++) {
                IfsNode *gn = ifs_node_child_at(c.node, k);
                Entry g = {gn, ci, 0, 0, ifs_node_ino(gn, c.ino)};

                g_array_append_val(entries, g);
            }
        }
    }
    for (guint step = 0; step < 60000; step++) {
        guint pick = (guint)g_rand_int_range(rand, 0, (gint32)entries->len);
        Entry *e = &g_array_index(entries, Entry, pick);
        Entry *parent = e->parent == G_MAXUINT ? NULL : &g_array_index(entries, Entry, e->parent);

        if (g_rand_int_range(rand, 0, 5) < 2) {
            /* the kernel looks up only in directories it holds */
            if (parent && parent->count == 0)
                continue;
            uint64_t id =
                look(in, root, parent ? parent->id : IFS_ROOT_INO, ifs_node_name(e->node));

            if (e->count > 0)
                g_assert_cmpuint(id, ==, e->id);
            e->id = id;
            e->count++;
        } else if (e->count > 0) {
            guint64 k = (guint64)g_rand_int_range(rand, 1, 3);

            k = MIN(k, e->count);

            ifs_inodes_forget(in, e->id, k);
            e->count -= k;
        }
        if (step % 1000 == 0 || step == 59999) {
            /* a directory has an entry while the kernel holds it or
             * anything below it */
            gboolean *live = g_new0(gboolean, entries->len);
            guint dirs = 0;

            for (guint i = 0; i < entries->len; i++) {
                Entry *x = &g_array_index(entries, Entry, i);
                IfsNode *got;
                char *path;
                uint64_t ino = 0;

                if (x->count == 0)
                    continue;
                g_assert_true(ifs_inodes_held(in, x->id));
                got = ifs_inodes_resolve(in, root, x->id, &ino);
                g_assert_true(got == x->node);
                g_assert_cmpuint(ino, ==, x->ino);
                ifs_node_unref(got);
                path = ifs_inodes_path(in, x->id);
                g_assert_cmpuint(ifs_ino_for_path(path), ==, x->ino);
                g_free(path);
                for (guint up = x->node->type == IFS_NODE_DIR ? i : x->parent; up != G_MAXUINT;
                     up = g_array_index(entries, Entry, up).parent)
                    live[up] = TRUE;
            }
            for (guint i = 0; i < entries->len; i++)
                dirs += live[i];
            g_assert_cmpuint(ifs_inodes_count(in), ==, dirs);
            g_free(live);
        }
    }
    /* everything forgotten: nothing left */
    for (guint i = entries->len; i-- > 0;) {
        Entry *x = &g_array_index(entries, Entry, i);

        if (x->count > 0)
            ifs_inodes_forget(in, x->id, x->count);
    }
    g_assert_cmpuint(ifs_inodes_count(in), ==, 0);
    g_rand_free(rand);
    g_array_unref(entries);
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/inodes/lookup-resolve-forget", test_lookup_resolve_forget);
    g_test_add_func("/inodes/directory-outlived-by-its-entries",
                    test_directory_outlived_by_its_entries);
    g_test_add_func("/inodes/known-ids", test_known_ids);
    g_test_add_func("/inodes/each-wait-file-its-own-inode", test_each_wait_file_its_own_inode);
    g_test_add_func("/inodes/children-counted-and-dropped", test_children_counted_and_dropped);
    g_test_add_func("/inodes/against-oracle", test_against_oracle);
    return g_test_run();
}
