/* Nodes: inode numbers, builders, lookups, names, merging and diffing. */
#include "infrafs/node.h"

#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static void add_file(IfsDirBuilder *b, const char *name, const char *text, time_t mtime)
{
    char *path = ifs_path_join(ifs_dir_builder_path(b), name);

    ifs_dir_builder_add(b, ifs_node_new_file(path, text, strlen(text), mtime));
    g_free(path);
}

/* vps/acct/<id>/{name, status, billing/{amount, cycle}} */
static IfsNode *resource(const char *id, const char *status, const char *amount, time_t mtime)
{
    char *path = g_strconcat("vps/acct/", id, NULL);
    char *billing_path = ifs_path_join(path, "billing");
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    IfsDirBuilder *billing = ifs_dir_builder_new(billing_path);

    add_file(b, "name", id, mtime);
    add_file(b, "status", status, mtime);
    add_file(billing, "amount", amount, mtime);
    add_file(billing, "cycle", "monthly\n", mtime);
    ifs_dir_builder_add(b, ifs_dir_builder_finish(billing, mtime));
    g_free(billing_path);
    g_free(path);
    return ifs_dir_builder_finish(b, mtime);
}

typedef struct {
    const char *id;
    const char *status;
    const char *amount;
} ResourceSpec;

/* vps/acct/ holding one directory per spec (terminated by {NULL}). */
static IfsNode *account(const ResourceSpec *specs, time_t mtime)
{
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct");

    for (const ResourceSpec *s = specs; s->id; s++)
        ifs_dir_builder_add(b, resource(s->id, s->status, s->amount, mtime));
    return ifs_dir_builder_finish(b, mtime);
}

static IfsNode *at(const IfsNode *root, const char *rel)
{
    char **parts = g_strsplit(rel, "/", -1);
    const IfsNode *n = root;

    for (guint i = 0; parts[i] && n; i++)
        n = ifs_node_child(n, parts[i]);
    g_strfreev(parts);
    return (IfsNode *)n;
}

/* Reverses ifs_name_escape: every "%XX" is one byte. */
static GByteArray *unescape(const char *name)
{
    GByteArray *out = g_byte_array_new();

    for (const char *p = name; *p; p++) {
        guint8 c = (guint8)*p;

        if (*p == '%') {
            char hex[3] = {p[1], p[2], '\0'};

            c = (guint8)strtoul(hex, NULL, 16);
            p += 2;
        }
        g_byte_array_append(out, &c, 1);
    }
    return out;
}

/* ---- inode numbers ------------------------------------------------------ */

static void test_ino_root_and_stability(void)
{
    g_assert_cmpuint(ifs_ino_for_path(""), ==, IFS_ROOT_INO);
    g_assert_cmpuint(ifs_ino_for_path("/"), ==, IFS_ROOT_INO);
    g_assert_cmpuint(ifs_ino_for_path("vps/acct/1"), ==, ifs_ino_for_path("vps/acct/1"));
    g_assert_cmpuint(ifs_ino_for_path("/vps/acct/1"), ==, ifs_ino_for_path("vps/acct/1"));
    g_assert_cmpuint(ifs_ino_for_path("vps/acct/1"), !=, ifs_ino_for_path("vps/acct/2"));
    g_assert_cmpuint(ifs_ino_for_path("vps"), !=, ifs_ino_for_path("servers"));
    /* Known FNV-1a 64 value, so numbers stay the same across versions. */
    g_assert_cmpuint(ifs_ino_for_path("a"), ==, G_GUINT64_CONSTANT(0xaf63dc4c8601ec8c));
}

static void test_ino_never_reserved(void)
{
    GHashTable *seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);

    for (int i = 0; i < 20000; i++) {
        char *path = g_strdup_printf("vps/acct/vps_%d/field%d", i / 30, i % 30);
        gint64 *ino = g_new(gint64, 1);

        *ino = (gint64)ifs_ino_for_path(path);
        g_assert_cmpuint((guint64)*ino, >, IFS_ROOT_INO);
        g_assert_false(g_hash_table_contains(seen, ino));
        g_hash_table_add(seen, ino);
        g_free(path);
    }
    g_hash_table_unref(seen);
}

static void test_path_join(void)
{
    char *p;

    p = ifs_path_join("", "vps");
    g_assert_cmpstr(p, ==, "vps");
    g_free(p);
    p = ifs_path_join("/", "vps");
    g_assert_cmpstr(p, ==, "vps");
    g_free(p);
    p = ifs_path_join("vps", "acct");
    g_assert_cmpstr(p, ==, "vps/acct");
    g_free(p);
    p = ifs_path_join("vps/", "acct");
    g_assert_cmpstr(p, ==, "vps/acct");
    g_free(p);
}

/* ---- nodes -------------------------------------------------------------- */

static int targets_freed;

static void count_free(IfsControlTarget *t)
{
    (void)t;
    targets_freed++;
}

static void test_leaf_nodes(void)
{
    static char target_a;
    IfsNode *f = ifs_node_new_file("vps/acct/1/name", "web\0x\n", 6, 1000);
    IfsNode *c = ifs_node_new_control("vps/acct/1/power", "start stop\n",
                                      (IfsControlTarget *)&target_a, count_free);
    IfsNode *w = ifs_node_new_wait("vps/acct/1/operation/wait", NULL, (IfsControlTarget *)&target_a,
                                   count_free, "op#1");
    IfsNode *done = ifs_node_new_wait("vps/acct/1/operation/wait", "completed\n", NULL, NULL, NULL);
    IfsNode *now = ifs_node_new_file("x", "", 0, 0);

    g_assert_cmpint(f->type, ==, IFS_NODE_FILE);
    g_assert_cmpstr(ifs_node_name(f), ==, "name");
    g_assert_cmpuint(ifs_node_ino(f, ifs_ino_for_path("vps/acct/1")), ==,
                     ifs_ino_for_path("vps/acct/1/name"));
    /* a wait file's is its operation's; without one, its path's */
    g_assert_cmpuint(ifs_node_ino(w, ifs_ino_for_path("vps/acct/1/operation")), ==,
                     ifs_ino_for_path("op#1"));
    g_assert_cmpuint(ifs_node_ino(done, ifs_ino_for_path("vps/acct/1/operation")), ==,
                     ifs_ino_for_path("vps/acct/1/operation/wait"));
    g_assert_cmpuint(ifs_node_size(f), ==, 6);
    g_assert_cmpmem(ifs_node_data(f), ifs_node_size(f), "web\0x\n", 6);
    g_assert_cmpint(f->mtime, ==, 1000);
    g_assert_cmpint(now->mtime, >, 0);
    g_assert_cmpuint(ifs_node_size(now), ==, 0);

    g_assert_cmpint(c->type, ==, IFS_NODE_CONTROL);
    g_assert_cmpstr(ifs_node_data(c), ==, "start stop\n");
    g_assert_cmpuint(ifs_node_size(c), ==, 11);
    g_assert_true(ifs_node_target(c) == (IfsControlTarget *)&target_a);

    g_assert_cmpint(w->type, ==, IFS_NODE_WAIT);
    g_assert_null(ifs_node_data(w));
    g_assert_cmpuint(ifs_node_size(w), ==, 0);
    g_assert_cmpstr(ifs_node_data(done), ==, "completed\n");
    g_assert_cmpuint(ifs_node_size(done), ==, 10);
    g_assert_false(ifs_node_same_content(w, done));

    targets_freed = 0;
    ifs_node_ref(c);
    ifs_node_unref(c);
    g_assert_cmpint(targets_freed, ==, 0);
    ifs_node_unref(c);
    ifs_node_unref(w);
    g_assert_cmpint(targets_freed, ==, 2);
    ifs_node_unref(done);
    ifs_node_unref(f);
    ifs_node_unref(now);
}

static void test_builder_sorts_and_drops_duplicates(void)
{
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct/1");
    IfsNode *dir;

    g_assert_cmpstr(ifs_dir_builder_path(b), ==, "vps/acct/1");
    add_file(b, "status", "running\n", 1);
    add_file(b, "name", "web\n", 1);
    add_file(b, "status", "stopped\n", 1);
    add_file(b, "Zeta", "z\n", 1);
    g_assert_true(ifs_dir_builder_has(b, "name"));
    g_assert_false(ifs_dir_builder_has(b, "json"));
    g_assert_cmpuint(ifs_dir_builder_dropped(b), ==, 1);
    dir = ifs_dir_builder_finish(b, 5);

    g_assert_cmpint(dir->type, ==, IFS_NODE_DIR);
    g_assert_cmpstr(ifs_node_name(dir), ==, "1");
    g_assert_cmpuint(ifs_node_ino(dir, ifs_ino_for_path("vps/acct")), ==,
                     ifs_ino_for_path("vps/acct/1"));
    g_assert_cmpint(dir->mtime, ==, 5);
    g_assert_cmpuint(ifs_node_n_children(dir), ==, 3);
    g_assert_cmpstr(ifs_node_name(ifs_node_child_at(dir, 0)), ==, "Zeta");
    g_assert_cmpstr(ifs_node_name(ifs_node_child_at(dir, 1)), ==, "name");
    g_assert_cmpstr(ifs_node_name(ifs_node_child_at(dir, 2)), ==, "status");
    g_assert_cmpstr(ifs_node_data(ifs_node_child(dir, "status")), ==, "running\n");
    g_assert_null(ifs_node_child(dir, "missing"));
    g_assert_null(ifs_node_child(ifs_node_child_at(dir, 0), "x"));
    ifs_node_unref(dir);
}

static void test_root_and_empty_dir(void)
{
    IfsNode *root = ifs_dir_builder_finish(ifs_dir_builder_new(""), 1);

    g_assert_cmpstr(ifs_node_name(root), ==, "");
    g_assert_cmpuint(ifs_node_ino(root, 0), ==, IFS_ROOT_INO);
    g_assert_cmpuint(ifs_node_n_children(root), ==, 0);
    g_assert_null(ifs_node_child(root, "vps"));
    ifs_node_unref(root);
}

static void test_large_dir_lookup(void)
{
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct");
    IfsNode *dir;

    for (int i = 0; i < 5000; i++) {
        char *name = g_strdup_printf("vps_%05d", (i * 7919) % 5000);

        add_file(b, name, "x\n", 1);
        g_free(name);
    }
    dir = ifs_dir_builder_finish(b, 1);
    g_assert_cmpuint(ifs_node_n_children(dir), ==, 5000);
    for (int i = 0; i < 5000; i++) {
        char *name = g_strdup_printf("vps_%05d", i);
        IfsNode *c = ifs_node_child(dir, name);

        g_assert_nonnull(c);
        g_assert_cmpstr(ifs_node_name(c), ==, name);
        g_free(name);
    }
    g_assert_null(ifs_node_child(dir, "vps_5000"));
    g_assert_null(ifs_node_child(dir, ""));
    ifs_node_unref(dir);
}

static gpointer ref_unref_many(gpointer data)
{
    IfsNode *n = data;

    for (int i = 0; i < 20000; i++) {
        ifs_node_ref(n);
        ifs_node_unref(n);
    }
    return NULL;
}

static void test_refcount_threads(void)
{
    IfsNode *n = resource("1", "running\n", "5.00\n", 1);
    GThread *threads[4];

    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("ref", ref_unref_many, n);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_assert_cmpuint(ifs_node_ref_count(n), ==, 1);
    ifs_node_unref(n);
}

/* ---- names -------------------------------------------------------------- */

static void test_name_escape_table(void)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *escaped;
    } cases[] = {
        {"web-1",       5, "web-1"      },
        {"a/b",         3, "a%2Fb"      },
        {"../x",        4, "..%2Fx"     },
        {".",           1, "%2E"        },
        {"..",          2, "%2E%2E"     },
        {"...",         3, "..."        },
        {".hidden",     7, ".hidden"    },
        {"100%",        4, "100%25"     },
        {"%2F",         3, "%252F"      },
        {"a\0b",        3, "a%00b"      },
        {"/",           1, "%2F"        },
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *e = ifs_name_escape(cases[i].raw, cases[i].len);

        g_assert_cmpstr(e, ==, cases[i].escaped);
        g_free(e);
    }
    g_assert_null(ifs_name_escape("", 0));
    g_assert_null(ifs_name_escape(NULL, 0));
}

static void test_name_escape_round_trip(void)
{
    static const char *const raws[] = {"a/b", "%", "%25", ".", "..", "x%2Fy/z", "plain"};
    const char with_nul[] = {'n', '\0', '/', '%'};

    for (guint i = 0; i < G_N_ELEMENTS(raws); i++) {
        char *e = ifs_name_escape(raws[i], strlen(raws[i]));
        GByteArray *back = unescape(e);

        g_assert_null(strchr(e, '/'));
        g_assert_cmpmem(back->data, back->len, raws[i], strlen(raws[i]));
        g_byte_array_unref(back);
        g_free(e);
    }
    {
        char *e = ifs_name_escape(with_nul, sizeof(with_nul));
        GByteArray *back = unescape(e);

        g_assert_cmpmem(back->data, back->len, with_nul, sizeof(with_nul));
        g_byte_array_unref(back);
        g_free(e);
    }
}

static void test_name_escape_length(void)
{
    char raw[400];
    char *e;

    memset(raw, 'a', sizeof(raw));
    e = ifs_name_escape(raw, 255);
    g_assert_cmpuint(strlen(e), ==, 255);
    g_free(e);
    g_assert_null(ifs_name_escape(raw, 256));
    memset(raw, '/', sizeof(raw));
    e = ifs_name_escape(raw, 85); /* 85 * 3 = 255 */
    g_assert_cmpuint(strlen(e), ==, 255);
    g_free(e);
    g_assert_null(ifs_name_escape(raw, 86));
    g_assert_null(ifs_name_escape(raw, sizeof(raw)));
}

/* ---- merge -------------------------------------------------------------- */

static const ResourceSpec before[] = {
    {"vps_1", "running\n", "5.00\n"},
    {"vps_2", "running\n", "9.00\n"},
    {"vps_3", "stopped\n", "1.00\n"},
    {NULL,    NULL,        NULL    },
};

static void test_merge_identical_returns_old(void)
{
    IfsNode *old = account(before, 1000);
    IfsNode *fresh = account(before, 2000);
    IfsNode *merged = ifs_node_merge_unchanged(fresh, old);

    g_assert_true(merged == old);
    g_assert_cmpint(merged->mtime, ==, 1000);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

static void test_merge_keeps_unchanged_mtimes(void)
{
    static const ResourceSpec after[] = {
        {"vps_1", "stopped\n", "5.00\n"}, /* status changed */
        {"vps_2", "running\n", "9.00\n"}, /* unchanged */
        {"vps_3", "stopped\n", "2.00\n"}, /* billing/amount changed */
        {NULL,    NULL,        NULL    },
    };
    IfsNode *old = account(before, 1000);
    IfsNode *merged = ifs_node_merge_unchanged(account(after, 2000), old);

    g_assert_true(merged != old);
    /* Unchanged subtrees are the old nodes themselves. */
    g_assert_true(at(merged, "vps_2") == at(old, "vps_2"));
    g_assert_true(at(merged, "vps_1/billing") == at(old, "vps_1/billing"));
    g_assert_true(at(merged, "vps_1/name") == at(old, "vps_1/name"));
    g_assert_true(at(merged, "vps_3/billing/cycle") == at(old, "vps_3/billing/cycle"));
    /* Changed values are new, with the new mtime. */
    g_assert_cmpstr(ifs_node_data(at(merged, "vps_1/status")), ==, "stopped\n");
    g_assert_cmpint(at(merged, "vps_1/status")->mtime, ==, 2000);
    g_assert_cmpint(at(merged, "vps_1/name")->mtime, ==, 1000);
    g_assert_cmpstr(ifs_node_data(at(merged, "vps_3/billing/amount")), ==, "2.00\n");
    g_assert_cmpint(at(merged, "vps_3/billing/amount")->mtime, ==, 2000);
    /* Directories whose entry names did not change keep their mtime. */
    g_assert_cmpint(merged->mtime, ==, 1000);
    g_assert_cmpint(at(merged, "vps_3/billing")->mtime, ==, 1000);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

static void test_merge_entry_set_change_new_dir_mtime(void)
{
    static const ResourceSpec after[] = {
        {"vps_2", "running\n", "9.00\n"},
        {"vps_4", "running\n", "3.00\n"},
        {NULL,    NULL,        NULL    },
    };
    IfsNode *old = account(before, 1000);
    IfsNode *merged = ifs_node_merge_unchanged(account(after, 2000), old);

    g_assert_cmpint(merged->mtime, ==, 2000);
    g_assert_cmpuint(ifs_node_n_children(merged), ==, 2);
    g_assert_true(at(merged, "vps_2") == at(old, "vps_2"));
    g_assert_null(at(merged, "vps_1"));
    g_assert_cmpint(at(merged, "vps_4")->mtime, ==, 2000);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

static void test_merge_type_change_and_no_old(void)
{
    IfsNode *old = ifs_node_new_file("vps/acct/1/ip", "1.2.3.4\n", 8, 1000);
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct/1/ip");
    IfsNode *fresh;
    IfsNode *merged;

    add_file(b, "v4", "1.2.3.4\n", 2000);
    fresh = ifs_dir_builder_finish(b, 2000);
    merged = ifs_node_merge_unchanged(fresh, old);
    g_assert_true(merged == fresh);
    g_assert_cmpint(merged->type, ==, IFS_NODE_DIR);
    ifs_node_unref(merged);

    fresh = ifs_node_new_file("vps/acct/1/ip", "1.2.3.4\n", 8, 2000);
    g_assert_true(ifs_node_merge_unchanged(fresh, NULL) == fresh);
    ifs_node_unref(fresh);
    ifs_node_unref(old);
}

/* Another name is another path (callers merge nodes at the same place). */
static void test_merge_other_path_is_not_reused(void)
{
    IfsNode *old = ifs_node_new_file("a", "same\n", 5, 1000);
    IfsNode *fresh = ifs_node_new_file("b", "same\n", 5, 2000);
    IfsNode *merged = ifs_node_merge_unchanged(fresh, old);

    g_assert_true(merged == fresh);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

static void test_merge_controls_by_target(void)
{
    static char target_a;
    static char target_b;
    IfsNode *old = ifs_node_new_control("p", "1\n", (IfsControlTarget *)&target_a, NULL);
    IfsNode *same = ifs_node_new_control("p", "1\n", (IfsControlTarget *)&target_a, NULL);
    IfsNode *other = ifs_node_new_control("p", "1\n", (IfsControlTarget *)&target_b, NULL);
    IfsNode *merged;

    g_assert_true(ifs_node_same_content(old, same));
    g_assert_false(ifs_node_same_content(old, other));
    merged = ifs_node_merge_unchanged(same, old);
    g_assert_true(merged == old);
    ifs_node_unref(merged);
    merged = ifs_node_merge_unchanged(other, old);
    g_assert_true(merged == other);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

/* ---- diff --------------------------------------------------------------- */

typedef struct {
    guint64 parent_ino, ino;
} Changed;

typedef struct {
    guint64 top; /* the ino of the diff's top */
    GArray *changed; /* Changed */
    GPtrArray *removed; /* "parent_ino name" */
    GArray *attrs; /* Changed: wait files whose operation ended */
} DiffLog;

static void log_attrs(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *fresh)
{
    DiffLog *log = data;
    Changed c = {parent_ino, ino};

    (void)fresh;

    g_array_append_val(log->attrs, c);
}

static void log_changed(void *data, uint64_t parent_ino, uint64_t ino, const IfsNode *node)
{
    DiffLog *log = data;
    Changed c = {parent_ino, ino};

    (void)node;

    g_array_append_val(log->changed, c);
}

static void log_removed(void *data, uint64_t parent_ino, const char *name)
{
    DiffLog *log = data;

    g_ptr_array_add(log->removed,
                    g_strdup_printf("%" G_GUINT64_FORMAT " %s", (guint64)parent_ino, name));
}

/* The diff of two trees at `path`. */
static DiffLog *diff_log(const IfsNode *old, const IfsNode *fresh, const char *path)
{
    DiffLog *log = g_new0(DiffLog, 1);
    IfsNodeDiffSink sink = {
        .changed = log_changed,
        .removed = log_removed,
        .wait_changed = log_attrs,
        .data = log,
    };

    log->top = ifs_ino_for_path(path);
    log->changed = g_array_new(FALSE, FALSE, sizeof(Changed));
    log->attrs = g_array_new(FALSE, FALSE, sizeof(Changed));
    log->removed = g_ptr_array_new_with_free_func(g_free);
    ifs_node_diff(old, fresh, log->top, &sink);
    return log;
}

static void diff_log_free(DiffLog *log)
{
    g_array_unref(log->changed);
    g_array_unref(log->attrs);
    g_ptr_array_unref(log->removed);
    g_free(log);
}

/* `path` is reported in `list`, with the ino of the directory holding it
 * (0 for the diff's top): what the publisher needs to find the node id the
 * kernel knows it by. */
static gboolean reported(const DiffLog *log, const GArray *list, const char *path)
{
    guint64 ino = ifs_ino_for_path(path);
    char *dir = g_path_get_dirname(path);
    guint64 parent = ino == log->top ? 0 : ifs_ino_for_path(strcmp(dir, ".") ? dir : "");
    gboolean found = FALSE;

    for (guint i = 0; i < list->len; i++) {
        const Changed *c = &g_array_index(list, Changed, i);

        if (c->ino == ino) {
            g_assert_cmpuint(c->parent_ino, ==, parent);
            found = TRUE;
        }
    }
    g_free(dir);
    return found;
}

static gboolean changed_has(const DiffLog *log, const char *path)
{
    return reported(log, log->changed, path);
}

static gboolean removed_has(const DiffLog *log, const char *parent, const char *name)
{
    char *want =
        g_strdup_printf("%" G_GUINT64_FORMAT " %s", (guint64)ifs_ino_for_path(parent), name);
    gboolean found = FALSE;

    for (guint i = 0; i < log->removed->len; i++)
        found = found || strcmp(g_ptr_array_index(log->removed, i), want) == 0;
    g_free(want);
    return found;
}

static void test_diff_same_pointer_is_silent(void)
{
    IfsNode *old = account(before, 1000);
    DiffLog *log = diff_log(old, old, "vps/acct");

    g_assert_cmpuint(log->changed->len, ==, 0);
    g_assert_cmpuint(log->removed->len, ==, 0);
    diff_log_free(log);
    ifs_node_unref(old);
}

static void test_diff_reports_exactly_what_changed(void)
{
    static const ResourceSpec after[] = {
        {"vps_1", "stopped\n", "5.00\n"}, /* status changed */
        {"vps_2", "running\n", "9.00\n"}, /* unchanged */
        {"vps_4", "running\n", "3.00\n"}, /* added; vps_3 removed */
        {NULL,    NULL,        NULL    },
    };
    IfsNode *old = account(before, 1000);
    IfsNode *merged = ifs_node_merge_unchanged(account(after, 2000), old);
    DiffLog *log = diff_log(old, merged, "vps/acct");

    g_assert_cmpuint(log->changed->len, ==, 2);
    g_assert_true(changed_has(log, "vps/acct/vps_1/status"));
    g_assert_true(changed_has(log, "vps/acct"));
    g_assert_cmpuint(log->removed->len, ==, 1);
    g_assert_true(removed_has(log, "vps/acct", "vps_3"));
    diff_log_free(log);
    ifs_node_unref(merged);
    ifs_node_unref(old);
}

static void test_diff_nested_removal_and_type_change(void)
{
    IfsDirBuilder *ob = ifs_dir_builder_new("r");
    IfsDirBuilder *fb = ifs_dir_builder_new("r");
    IfsDirBuilder *sub = ifs_dir_builder_new("r/ip");
    IfsNode *old;
    IfsNode *fresh;
    DiffLog *log;

    add_file(ob, "ip", "1.2.3.4\n", 1000);
    add_file(ob, "name", "web\n", 1000);
    add_file(ob, "gone", "x\n", 1000);
    old = ifs_dir_builder_finish(ob, 1000);

    add_file(sub, "v4", "1.2.3.4\n", 2000);
    ifs_dir_builder_add(fb, ifs_dir_builder_finish(sub, 2000));
    add_file(fb, "name", "web\n", 2000);
    fresh = ifs_node_merge_unchanged(ifs_dir_builder_finish(fb, 2000), old);

    log = diff_log(old, fresh, "r");
    /* "ip" became a directory: its dentry and its inode are invalidated. */
    g_assert_true(removed_has(log, "r", "ip"));
    g_assert_true(changed_has(log, "r/ip"));
    g_assert_true(removed_has(log, "r", "gone"));
    g_assert_true(changed_has(log, "r"));
    g_assert_false(changed_has(log, "r/name"));
    g_assert_cmpuint(log->changed->len, ==, 2);
    g_assert_cmpuint(log->removed->len, ==, 2);
    diff_log_free(log);
    ifs_node_unref(fresh);
    ifs_node_unref(old);
}

static void test_diff_without_merge_uses_content(void)
{
    IfsNode *old = account(before, 1000);
    IfsNode *fresh = account(before, 1000);
    DiffLog *log = diff_log(old, fresh, "vps/acct");

    g_assert_cmpuint(log->changed->len, ==, 0);
    g_assert_cmpuint(log->removed->len, ==, 0);
    diff_log_free(log);
    ifs_node_unref(fresh);
    ifs_node_unref(old);
}

/* A refresh of a big account: merge and diff must stay linear. */
static void test_merge_diff_large(void)
{
    const int n = 20000;
    ResourceSpec *specs = g_new0(ResourceSpec, n + 1);
    char **ids = g_new0(char *, n + 1);
    IfsNode *old;
    IfsNode *merged;
    DiffLog *log;

    for (int i = 0; i < n; i++) {
        ids[i] = g_strdup_printf("vps_%06d", i);
        specs[i] = (ResourceSpec){ids[i], "running\n", "5.00\n"};
    }
    old = account(specs, 1000);
    specs[n / 2].status = "stopped\n";
    merged = ifs_node_merge_unchanged(account(specs, 2000), old);
    log = diff_log(old, merged, "vps/acct");
    g_assert_cmpuint(log->changed->len, ==, 1);
    g_assert_cmpuint(log->removed->len, ==, 0);
    g_assert_true(at(merged, "vps_000000") == at(old, "vps_000000"));
    diff_log_free(log);
    ifs_node_unref(merged);
    ifs_node_unref(old);
    g_strfreev(ids);
    g_free(specs);
}

/* A wait file whose operation ended is reported apart (its reader must be
 * woken before its pages are invalidated). A wait file of another operation (new ino under
 * the same name): the old entry is dropped by name. */
static void test_diff_wait_nodes(void)
{
    IfsDirBuilder *b;
    IfsNode *pending, *done, *other, *d1, *d2, *d3;
    DiffLog *log;

    b = ifs_dir_builder_new("op");
    ifs_dir_builder_add(b, ifs_node_new_wait("op/wait", NULL, NULL, NULL, NULL));
    d1 = ifs_dir_builder_finish(b, 5);
    pending = ifs_node_child_at(d1, 0);
    b = ifs_dir_builder_new("op");
    ifs_dir_builder_add(b, ifs_node_new_wait("op/wait", "completed\n", NULL, NULL, NULL));
    d2 = ifs_dir_builder_finish(b, 5);
    done = ifs_node_child_at(d2, 0);
    log = diff_log(d1, d2, "op");
    g_assert_cmpuint(log->changed->len, ==, 0);
    g_assert_cmpuint(log->attrs->len, ==, 1);
    g_assert_cmpuint(g_array_index(log->attrs, Changed, 0).ino, ==,
                     ifs_node_ino(pending, ifs_ino_for_path("op")));
    g_assert_true(reported(log, log->attrs, "op/wait"));
    diff_log_free(log);

    b = ifs_dir_builder_new("op");
    other = ifs_node_new_wait("op/wait", NULL, NULL, NULL, "op/wait#job2");
    ifs_dir_builder_add(b, other);
    d3 = ifs_dir_builder_finish(b, 5);
    log = diff_log(d2, d3, "op");
    g_assert_true(removed_has(log, "op", "wait"));
    g_assert_cmpuint(log->attrs->len, ==, 0);
    g_assert_false(changed_has(log, "op/wait"));
    (void)done;
    diff_log_free(log);
    ifs_node_unref(d1);
    ifs_node_unref(d2);
    ifs_node_unref(d3);
}

/* ---- rendered files ------------------------------------------------------ */

typedef struct {
    char *text;
    int renders;
    int refs;
} Source;

static char *render_source(const void *src, size_t *len)
{
    Source *s = (Source *)src;

    s->renders++;
    *len = strlen(s->text);
    return g_strdup(s->text);
}

static gboolean same_source(const void *a, const void *b)
{
    return strcmp(((const Source *)a)->text, ((const Source *)b)->text) == 0;
}

static void free_source(void *src)
{
    Source *s = src;

    if (--s->refs > 0)
        return;
    g_free(s->text);
    g_free(s);
}

static void *retain_source(void *src)
{
    ((Source *)src)->refs++;
    return src;
}

static const IfsRenderer source_renderer = {render_source, same_source, free_source, retain_source,
                                            NULL};

static IfsNode *rendered(const char *text, size_t measured, time_t mtime, Source **out)
{
    Source *s = g_new0(Source, 1);

    s->text = g_strdup(text);
    s->refs = 1;
    if (out)
        *out = s;
    return ifs_node_new_rendered("vps/acct/a/json", &source_renderer, s, measured, mtime);
}

/* A rendered file stores no bytes, renders them on each ifs_node_bytes(),
 * has the measured size, and compares by its source. */
static void test_rendered_file(void)
{
    Source *src;
    IfsNode *a = rendered("{ \"id\": 1 }\n", 12, 1000, &src);
    IfsNode *b = rendered("{ \"id\": 1 }\n", 12, 2000, NULL);
    IfsNode *c = rendered("{ \"id\": 2 }\n", 12, 2000, NULL);
    IfsNode *stored = ifs_node_new_file("vps/acct/a/json", "{ \"id\": 1 }\n", 12, 2000);
    IfsNode *merged;
    char *owned;
    const char *bytes;

    g_assert_cmpint(a->type, ==, IFS_NODE_FILE);
    g_assert_cmpstr(ifs_node_name(a), ==, "json");
    g_assert_cmpuint(ifs_node_size(a), ==, 12);
    g_assert_null(ifs_node_data(a));
    g_assert_true(ifs_node_has_content(a));
    bytes = ifs_node_bytes(a, &owned);
    g_assert_nonnull(owned);
    g_assert_cmpmem(bytes, 12, "{ \"id\": 1 }\n", 12);
    g_free(owned);
    g_assert_cmpint(src->renders, ==, 1);

    g_assert_true(ifs_node_same_content(a, b));
    g_assert_false(ifs_node_same_content(a, c));
    /* Against stored bytes it compares what it renders. */
    g_assert_true(ifs_node_same_content(a, stored));
    /* Merging keeps the old node, and so its mtime. */
    merged = ifs_node_merge_unchanged(b, a);
    g_assert_true(merged == a);
    g_assert_cmpint(merged->mtime, ==, 1000);
    ifs_node_unref(merged);
    ifs_node_unref(a);
    ifs_node_unref(c);
    ifs_node_unref(stored);
}

/* A renderer that disagrees with the measured size is cut or padded to it:
 * the kernel was told that size. */
static void test_rendered_file_keeps_measured_size(void)
{
    IfsNode *longer = rendered("abcdef", 4, 1000, NULL);
    IfsNode *shorter = rendered("ab", 4, 1000, NULL);
    char *owned;
    const char *bytes;

    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*measured*");
    bytes = ifs_node_bytes(longer, &owned);
    g_assert_cmpmem(bytes, ifs_node_size(longer), "abcd", 4);
    g_free(owned);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*measured*");
    bytes = ifs_node_bytes(shorter, &owned);
    g_assert_cmpmem(bytes, ifs_node_size(shorter), "ab\0\0", 4);
    g_free(owned);
    g_test_assert_expected_messages();
    ifs_node_unref(longer);
    ifs_node_unref(shorter);
}

/* Files added by name get the ino of their full path (from their
 * directory's, name by name), with or without a newline after their bytes;
 * "" is the root's builder. */
static void test_builder_add_file(void)
{
    const char *dirs[] = {"", "vps", "/vps/acct/a", "vps/acct/a/billing"};

    for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
        IfsDirBuilder *b = ifs_dir_builder_new(dirs[i]);
        IfsDirBuilder *sub = ifs_dir_builder_new_child(b, "sub");
        char *path = ifs_path_join(dirs[i], "status");
        char *sub_path = ifs_path_join(dirs[i], "sub");
        IfsNode *dir, *status, *bare;

        g_assert_cmpuint(ifs_ino_child(ifs_ino_for_path(dirs[i]), "status"), ==,
                         ifs_ino_for_path(path));
        {
            char *inner = ifs_path_join(sub_path, "x");

            g_assert_cmpstr(ifs_dir_builder_path(sub), ==, sub_path);
            g_assert_cmpuint(ifs_ino_child(ifs_ino_child(ifs_ino_for_path(dirs[i]), "sub"), "x"),
                             ==, ifs_ino_for_path(inner));
            g_free(inner);
        }
        ifs_dir_builder_add_file(b, "status", "running", 7, TRUE);
        ifs_dir_builder_add_file(b, "bare", "x\0y", 3, FALSE);
        ifs_dir_builder_add_file(b, "status", "dropped", 7, TRUE);
        ifs_dir_builder_add(b, ifs_dir_builder_finish(sub, 5));
        dir = ifs_dir_builder_finish(b, 5);
        status = ifs_node_child(dir, "status");
        bare = ifs_node_child(dir, "bare");
        g_assert_cmpuint(ifs_node_ino(status, ifs_ino_for_path(dirs[i])), ==,
                         ifs_ino_for_path(path));
        g_assert_cmpuint(ifs_ino_child(ifs_ino_for_path(dirs[i]), "sub"), ==,
                         ifs_ino_for_path(sub_path));
        g_assert_cmpmem(ifs_node_data(status), ifs_node_size(status), "running\n", 8);
        g_assert_cmpmem(ifs_node_data(bare), ifs_node_size(bare), "x\0y", 3);
        g_assert_cmpuint(ifs_node_n_children(dir), ==, 3);
        ifs_node_unref(dir);
        g_free(path);
        g_free(sub_path);
    }
}

/* Past the scan limit a builder still finds every duplicate. */
static void test_builder_many_duplicates(void)
{
    IfsDirBuilder *b = ifs_dir_builder_new("d");
    IfsNode *dir;

    for (guint round = 0; round < 2; round++)
        for (guint i = 0; i < 100; i++) {
            char name[16];

            g_snprintf(name, sizeof name, "f%u", i);
            g_assert_true(ifs_dir_builder_has(b, name) == (round == 1));
            ifs_dir_builder_add_file(b, name, round ? "second" : "first", round ? 6 : 5, FALSE);
        }
    g_assert_cmpuint(ifs_dir_builder_dropped(b), ==, 100);
    dir = ifs_dir_builder_finish(b, 5);
    g_assert_cmpuint(ifs_node_n_children(dir), ==, 100);
    g_assert_cmpmem(ifs_node_data(ifs_node_child(dir, "f99")), 5, "first", 5);
    ifs_node_unref(dir);
}

/* ---- packed subtrees ------------------------------------------------------ */

static void count_target_frees(IfsControlTarget *t)
{
    (*(int *)t)++;
}

/* vps/acct/a/{json (rendered), name, power (control), billing/{amount}} */
static IfsNode *packable_resource(Source **src, int *target, time_t mtime, const char *name)
{
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct/a");
    IfsDirBuilder *billing = ifs_dir_builder_new_child(b, "billing");

    ifs_dir_builder_add(b, rendered("{ \"id\": 1 }\n", 12, mtime, src));
    ifs_dir_builder_add_file(b, "name", name, strlen(name), TRUE);
    ifs_dir_builder_add(b,
                        ifs_node_new_control("vps/acct/a/power", "start stop\n",
                                             (IfsControlTarget *)target, count_target_frees));
    ifs_dir_builder_add_file(billing, "amount", "9.90", 4, TRUE);
    ifs_dir_builder_add(b, ifs_dir_builder_finish(billing, mtime));
    return ifs_dir_builder_finish(b, mtime);
}

/* A packed copy reads as the original did; any node of it keeps the whole
 * block, and what it shares (a control file, a rendered file's source)
 * lives exactly as long as it is referenced. */
static void test_pack_keeps_content_and_lifetimes(void)
{
    Source *src;
    int target_frees = 0;
    IfsNode *orig = packable_resource(&src, &target_frees, 500, "web-01");
    time_t amount_mtime = ifs_node_child(ifs_node_child(orig, "billing"), "amount")->mtime;
    IfsNode *power = ifs_node_ref(ifs_node_child(orig, "power"));
    IfsNode *packed = ifs_node_pack(orig); /* orig is consumed */
    IfsNode *amount;
    char *owned;

    g_assert_true(ifs_node_pack(packed) == packed); /* packed already */
    amount = ifs_node_child(ifs_node_child(packed, "billing"), "amount");
    g_assert_cmpstr(ifs_node_data(amount), ==, "9.90\n");
    g_assert_cmpint(amount->mtime, ==, amount_mtime);
    g_assert_cmpint(packed->mtime, ==, 500);
    g_assert_cmpstr(ifs_node_data(ifs_node_child(packed, "name")), ==, "web-01\n");
    g_assert_cmpstr(ifs_node_bytes(ifs_node_child(packed, "json"), &owned), ==, "{ \"id\": 1 }\n");
    g_free(owned);
    /* the control file is shared, not copied */
    g_assert_true(ifs_node_child(packed, "power") == power);
    g_assert_cmpint(src->refs, ==, 1); /* the original's was released */

    /* a reference to an inner node keeps the block */
    ifs_node_ref(amount);
    ifs_node_unref(packed);
    g_assert_cmpstr(ifs_node_data(amount), ==, "9.90\n");
    g_assert_cmpint(target_frees, ==, 0);
    ifs_node_unref(amount); /* the block goes, and its source */
    g_assert_cmpint(target_frees, ==, 0); /* power is still ours */
    ifs_node_unref(power);
    g_assert_cmpint(target_frees, ==, 1);
}

/* Merging a fresh build with a packed one keeps the packed nodes of what
 * is unchanged (and their mtimes); packing the result copies them, so the
 * new block points into no other. */
static void test_pack_after_merge(void)
{
    int target_frees = 0;
    Source *old_src;
    IfsNode *old = ifs_node_pack(packable_resource(&old_src, &target_frees, 100, "web-01"));
    IfsNode *same = ifs_node_pack(
        ifs_node_merge_unchanged(packable_resource(NULL, &target_frees, 200, "web-01"), old));
    IfsDirBuilder *kb;
    IfsNode *merged, *old_kind, *kind;

    g_assert_true(same == old); /* nothing changed: the old block itself */
    ifs_node_unref(same);

    merged = ifs_node_pack(
        ifs_node_merge_unchanged(packable_resource(NULL, &target_frees, 300, "web-02"), old));
    g_assert_true(merged != old);
    g_assert_cmpstr(ifs_node_data(ifs_node_child(merged, "name")), ==, "web-02\n");
    g_assert_cmpint(merged->mtime, ==, 100); /* the same entries */
    /* The unchanged json was the old node: its copy shares the old source. */
    retain_source(old_src);
    g_assert_cmpint(old_src->refs, ==, 3);

    /* Merging the directory above keeps the packed copy as it is. */
    kb = ifs_dir_builder_new("vps/acct");
    ifs_dir_builder_add(kb, ifs_node_ref(old));
    old_kind = ifs_dir_builder_finish(kb, 100);
    kb = ifs_dir_builder_new("vps/acct");
    ifs_dir_builder_add(kb, ifs_node_ref(merged));
    kind = ifs_node_merge_unchanged(ifs_dir_builder_finish(kb, 100), old_kind);
    g_assert_true(ifs_node_child(kind, "a") == merged);

    /* Nothing of the new tree points into the old block: it goes. */
    ifs_node_unref(old_kind);
    ifs_node_unref(old);
    g_assert_cmpint(old_src->refs, ==, 2);
    ifs_node_unref(kind);
    ifs_node_unref(merged);
    g_assert_cmpint(old_src->refs, ==, 1);
    free_source(old_src);
    g_assert_cmpint(target_frees, ==, 3); /* the three builds' control files */
}

/* Built in the scratch area and packed, a resource outlives the area's
 * reuse by the next one. */
static void test_pack_from_scratch(void)
{
    int target_frees = 0;
    IfsNode *first, *second;
    char *owned;

    ifs_node_scratch_begin();
    first = ifs_node_pack(packable_resource(NULL, &target_frees, 100, "web-01"));
    ifs_node_scratch_end();
    ifs_node_scratch_begin();
    second = ifs_node_pack(packable_resource(NULL, &target_frees, 200, "db-01"));
    ifs_node_scratch_end();

    g_assert_cmpstr(ifs_node_data(ifs_node_child(first, "name")), ==, "web-01\n");
    g_assert_cmpstr(ifs_node_data(ifs_node_child(second, "name")), ==, "db-01\n");
    g_assert_cmpstr(ifs_node_data(ifs_node_child(ifs_node_child(first, "billing"), "amount")), ==,
                    "9.90\n");
    g_assert_cmpstr(ifs_node_bytes(ifs_node_child(first, "json"), &owned), ==, "{ \"id\": 1 }\n");
    g_free(owned);
    g_assert_cmpstr(ifs_node_data(ifs_node_child(first, "power")), ==, "start stop\n");
    ifs_node_unref(first);
    ifs_node_unref(second);
    g_assert_cmpint(target_frees, ==, 2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/node/ino/root-and-stability", test_ino_root_and_stability);
    g_test_add_func("/node/ino/never-reserved", test_ino_never_reserved);
    g_test_add_func("/node/path-join", test_path_join);
    g_test_add_func("/node/leaf-nodes", test_leaf_nodes);
    g_test_add_func("/node/builder/sorts-and-drops-duplicates",
                    test_builder_sorts_and_drops_duplicates);
    g_test_add_func("/node/builder/root-and-empty", test_root_and_empty_dir);
    g_test_add_func("/node/builder/add-file", test_builder_add_file);
    g_test_add_func("/node/builder/many-duplicates", test_builder_many_duplicates);
    g_test_add_func("/node/builder/large-dir-lookup", test_large_dir_lookup);
    g_test_add_func("/node/refcount-threads", test_refcount_threads);
    g_test_add_func("/node/name/escape-table", test_name_escape_table);
    g_test_add_func("/node/name/round-trip", test_name_escape_round_trip);
    g_test_add_func("/node/name/length", test_name_escape_length);
    g_test_add_func("/node/merge/identical-returns-old", test_merge_identical_returns_old);
    g_test_add_func("/node/merge/keeps-unchanged-mtimes", test_merge_keeps_unchanged_mtimes);
    g_test_add_func("/node/merge/entry-set-change", test_merge_entry_set_change_new_dir_mtime);
    g_test_add_func("/node/merge/type-change", test_merge_type_change_and_no_old);
    g_test_add_func("/node/merge/other-path", test_merge_other_path_is_not_reused);
    g_test_add_func("/node/merge/controls-by-target", test_merge_controls_by_target);
    g_test_add_func("/node/diff/same-pointer", test_diff_same_pointer_is_silent);
    g_test_add_func("/node/diff/exact", test_diff_reports_exactly_what_changed);
    g_test_add_func("/node/diff/nested-and-type-change", test_diff_nested_removal_and_type_change);
    g_test_add_func("/node/diff/without-merge", test_diff_without_merge_uses_content);
    g_test_add_func("/node/merge-diff/large", test_merge_diff_large);
    g_test_add_func("/node/diff/wait-nodes", test_diff_wait_nodes);
    g_test_add_func("/node/pack/content-and-lifetimes", test_pack_keeps_content_and_lifetimes);
    g_test_add_func("/node/pack/after-merge", test_pack_after_merge);
    g_test_add_func("/node/pack/from-scratch", test_pack_from_scratch);
    g_test_add_func("/node/rendered/bytes-size-and-sameness", test_rendered_file);
    g_test_add_func("/node/rendered/keeps-measured-size", test_rendered_file_keeps_measured_size);
    return g_test_run();
}
