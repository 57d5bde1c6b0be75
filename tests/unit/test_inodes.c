/* The inode registry: lookups counted and forgotten, inodes resolved
 * against later snapshots, and the table itself checked against an oracle
 * through growth, removal and shrinking. */
#include "infrafs/inodes.h"

#include <string.h>

/* root/{d<i>/{name, status}} for i in [0, n), with `status` as each
 * status file's text. */
static IfsNode *tree(guint n, const char *status)
{
    IfsDirBuilder *root = ifs_dir_builder_new("");

    for (guint i = 0; i < n; i++) {
        char *name = g_strdup_printf("d%u", i);
        IfsDirBuilder *d = ifs_dir_builder_new_child(root, name);

        ifs_dir_builder_add_file(d, "name", name, strlen(name), TRUE);
        ifs_dir_builder_add_file(d, "status", status, strlen(status), TRUE);
        ifs_dir_builder_add(root, ifs_dir_builder_finish(d, 1));
        g_free(name);
    }
    return ifs_dir_builder_finish(root, 1);
}

static void test_lookup_resolve_forget(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *old = tree(3, "running"), *fresh = tree(2, "stopped");
    IfsNode *dir = ifs_inodes_lookup(in, old, IFS_ROOT_INO, "d2");
    IfsNode *file, *again, *parent;
    char *owned = NULL, *path;
    uint64_t ino;

    g_assert_nonnull(dir);
    file = ifs_inodes_lookup(in, old, dir->ino, "status");
    g_assert_nonnull(file);
    g_assert_null(ifs_inodes_lookup(in, old, dir->ino, "missing"));
    g_assert_cmpuint(ifs_inodes_count(in), ==, 2);
    g_assert_true(ifs_inodes_held(in, file->ino));
    g_assert_true(ifs_inodes_held(in, IFS_ROOT_INO));

    /* paths, for re-stats through the mount */
    path = ifs_inodes_path(in, file->ino);
    g_assert_cmpstr(path, ==, "d2/status");
    g_free(path);
    path = ifs_inodes_path(in, IFS_ROOT_INO);
    g_assert_cmpstr(path, ==, "");
    g_free(path);
    g_assert_null(ifs_inodes_path(in, 12345));

    /* the same path in another snapshot: the new content */
    again = ifs_inodes_resolve(in, old, file->ino);
    g_assert_true(again == file);
    ifs_node_unref(again);
    parent = ifs_inodes_resolve_parent(in, old, file->ino);
    g_assert_true(parent == dir);
    ifs_node_unref(parent);
    /* d2 is gone from the fresh snapshot: its inodes resolve to nothing */
    g_assert_null(ifs_inodes_resolve(in, fresh, file->ino));
    g_assert_null(ifs_inodes_resolve_parent(in, fresh, file->ino));

    /* a path that survives resolves to its new node */
    ifs_node_unref(ifs_inodes_lookup(in, old, IFS_ROOT_INO, "d0"));
    again = ifs_inodes_lookup(in, old, ifs_node_child(old, "d0")->ino, "status");
    ino = again->ino;
    ifs_node_unref(again);
    again = ifs_inodes_resolve(in, fresh, ino);
    g_assert_nonnull(again);
    g_assert_cmpstr(ifs_node_bytes(again, &owned), ==, "stopped\n");
    g_free(owned);
    ifs_node_unref(again);

    /* counts: two lookups need two forgets */
    ifs_node_unref(ifs_inodes_lookup(in, old, dir->ino, "status"));
    ifs_inodes_forget(in, file->ino, 1);
    g_assert_true(ifs_inodes_held(in, file->ino));
    ifs_inodes_forget(in, file->ino, 1);
    g_assert_false(ifs_inodes_held(in, file->ino));
    /* forgetting more than was looked up, or the unknown, is harmless */
    ifs_inodes_forget(in, dir->ino, 99);
    ifs_inodes_forget(in, 12345, 1);
    g_assert_false(ifs_inodes_held(in, dir->ino));
    g_assert_cmpuint(ifs_inodes_count(in), ==, 2); /* d0 and d0/status */

    ifs_node_unref(file);
    ifs_node_unref(dir);
    ifs_node_unref(old);
    ifs_node_unref(fresh);
    ifs_inodes_free(in);
}

/* READDIRPLUS counts every entry handed out, and a whole directory
 * forgotten leaves the registry as it was, down to its names. */
static void test_children_counted_and_dropped(void)
{
    IfsInodes *in = ifs_inodes_new();
    IfsNode *root = tree(5000, "running");
    size_t empty_bytes = ifs_inodes_bytes(in);

    ifs_inodes_count_children(in, IFS_ROOT_INO, root, 0, ifs_node_n_children(root));
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);

        ifs_inodes_count_children(in, d->ino, d, 0, ifs_node_n_children(d));
    }
    g_assert_cmpuint(ifs_inodes_count(in), ==, 15000);
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);
        IfsNode *status = ifs_inodes_resolve(in, root, ifs_node_child(d, "status")->ino);

        g_assert_true(status == ifs_node_child(d, "status"));
        ifs_node_unref(status);
    }
    g_assert_cmpuint(ifs_inodes_bytes(in), >, empty_bytes);
    for (guint i = 0; i < ifs_node_n_children(root); i++) {
        IfsNode *d = ifs_node_child_at(root, i);

        for (guint j = 0; j < ifs_node_n_children(d); j++)
            ifs_inodes_forget(in, ifs_node_child_at(d, j)->ino, 1);
        ifs_inodes_forget(in, d->ino, 1);
    }
    g_assert_cmpuint(ifs_inodes_count(in), ==, 0);
    /* the table shrank back and every name was released */
    g_assert_cmpuint(ifs_inodes_bytes(in), ==, empty_bytes);
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

/* Random lookups and forgets of inos chosen to collide in the table,
 * checked after every step against a plain hash table. */
static void test_against_oracle(void)
{
    IfsInodes *in = ifs_inodes_new();
    GHashTable *oracle = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    GRand *rand = g_rand_new_with_seed(11);
    IfsDirBuilder *b = ifs_dir_builder_new("");
    IfsNode *root;
    guint n = 3000;

    for (guint i = 0; i < n; i++) {
        char *name = g_strdup_printf("f%u", i);

        ifs_dir_builder_add_file(b, name, "x", 1, FALSE);
        g_free(name);
    }
    root = ifs_dir_builder_finish(b, 1);
    for (guint step = 0; step < 60000; step++) {
        IfsNode *child = ifs_node_child_at(root, g_rand_int_range(rand, 0, (gint32)n));
        guint64 *count = g_hash_table_lookup(oracle, &child->ino);

        if (g_rand_boolean(rand)) {
            IfsNode *got = ifs_inodes_lookup(in, root, IFS_ROOT_INO, ifs_node_name(child));

            g_assert_true(got == child);
            ifs_node_unref(got);
            if (!count) {
                count = g_new0(guint64, 2);
                count[0] = child->ino;
                g_hash_table_insert(oracle, count, count);
            }
            count[1]++;
        } else {
            guint64 k = (guint64)g_rand_int_range(rand, 1, 3);

            ifs_inodes_forget(in, child->ino, k);
            if (count && count[1] <= k)
                g_hash_table_remove(oracle, &child->ino);
            else if (count)
                count[1] -= k;
        }
        if (step % 1000 == 0 || step == 59999) {
            g_assert_cmpuint(ifs_inodes_count(in), ==, g_hash_table_size(oracle));
            for (guint i = 0; i < n; i++) {
                IfsNode *c = ifs_node_child_at(root, i);
                gboolean held = g_hash_table_contains(oracle, &c->ino);
                IfsNode *got = ifs_inodes_resolve(in, root, c->ino);

                g_assert_cmpint(ifs_inodes_held(in, c->ino), ==, held);
                g_assert_true(got == (held ? c : NULL));
                ifs_node_unref(got);
            }
        }
    }
    g_rand_free(rand);
    g_hash_table_destroy(oracle);
    ifs_node_unref(root);
    ifs_inodes_free(in);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/inodes/lookup-resolve-forget", test_lookup_resolve_forget);
    g_test_add_func("/inodes/children-counted-and-dropped", test_children_counted_and_dropped);
    g_test_add_func("/inodes/against-oracle", test_against_oracle);
    return g_test_run();
}
