/* The persistent cache (src/persist.c): what is saved comes back, with the
 * mtime of every file; files that are not a usable copy for this account
 * are refused with a message, never half-used; a failed save says why. */
#include "infrafs/persist.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "infrafs/jsontree.h"

typedef struct {
    char *dir;
    IfsAccountConfig cfg;
} Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    fx->dir = g_dir_make_tmp("infrafs-persist-XXXXXX", NULL);
    g_assert_nonnull(fx->dir);
    fx->cfg = (IfsAccountConfig){
        .name = "acct", .type = "hostup", .url = "http://127.0.0.1:1",
        .refresh_s = -1,
    };
}

static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        char *child = g_build_filename(path, name, NULL);
        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            remove_tree(child);
        else
            g_unlink(child);
        g_free(child);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(path);
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    remove_tree(fx->dir);
    g_free(fx->dir);
}

/* The resource directory the tree would show for `obj`, every node at
 * `mtime`. */
static IfsNode *resource_dir(const char *id, json_object *obj, time_t mtime)
{
    char *path = g_strconcat("vps/acct/", id, NULL);
    IfsDirBuilder *b = ifs_dir_builder_new(path);

    ifs_json_fill_dir(b, obj, NULL, NULL);
    g_free(path);
    return ifs_dir_builder_finish(b, mtime);
}

static void set_mtime_everywhere(IfsNode *n, time_t mtime)
{
    n->mtime = mtime;
    for (guint i = 0; n->type == IFS_NODE_DIR && i < ifs_node_n_children(n); i++)
        set_mtime_everywhere(ifs_node_child_at(n, i), mtime);
}

static IfsNode *walk(IfsNode *n, const char *rel)
{
    char **parts = g_strsplit(rel, "/", -1);

    for (char **p = parts; *p && n; p++)
        n = ifs_node_child(n, *p);
    g_strfreev(parts);
    return n;
}

static char *cache_path(Fixture *fx)
{
    return ifs_cache_file(fx->dir, "acct");
}

/* One resource saved with `name` at 1000 and everything else at 2000. */
static void save_one(Fixture *fx, json_object *obj)
{
    IfsResource *r = ifs_resource_new("vps", "vps_1", json_object_get(obj));
    IfsNode *node = resource_dir("vps_1", obj, 0);
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    char *path = cache_path(fx);
    IfsError *err = NULL;

    set_mtime_everywhere(node, 2000);
    if (walk(node, "name"))
        walk(node, "name")->mtime = 1000;
    g_ptr_array_add(items, ifs_cache_item_new(r, node));
    g_assert_true(ifs_cache_save(path, &fx->cfg, 1234, items, &err));
    g_assert_null(err);
    g_ptr_array_unref(items);
    ifs_node_unref(node);
    ifs_resource_unref(r);
    g_free(path);
}

static void write_text(Fixture *fx, const char *text, gssize len)
{
    char *path = cache_path(fx);

    g_assert_true(g_file_set_contents(path, text, len, NULL));
    g_free(path);
}

static char *read_text(Fixture *fx)
{
    char *path = cache_path(fx);
    char *text = NULL;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_free(path);
    return text;
}

/* ---- tests ------------------------------------------------------------- */

static void test_round_trip(Fixture *fx, gconstpointer data)
{
    json_object *obj = json_tokener_parse(
        "{\"id\":\"vps_1\",\"name\":\"web-01\",\"location\":{\"city\":\"Stockholm\"}}");
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;
    GHashTable *mtimes;
    IfsCacheMtimes *m;
    IfsNode *fresh;
    IfsResource *r;
    struct stat st;
    GDir *d;

    (void)data;
    save_one(fx, obj);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    /* Only the file itself: no temporary file left behind. */
    d = g_dir_open(fx->dir, 0, NULL);
    g_assert_cmpstr(g_dir_read_name(d), ==, "acct.json");
    g_assert_null(g_dir_read_name(d));
    g_dir_close(d);

    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_nonnull(saved);
    g_assert_cmpint(saved->last_refresh, ==, 1234);
    g_assert_cmpuint(saved->resources->len, ==, 1);
    r = g_ptr_array_index(saved->resources, 0);
    g_assert_cmpstr(r->kind, ==, "vps");
    g_assert_cmpstr(r->id, ==, "vps_1");
    {
        /* Loaded resources are sealed (kept as compact text). */
        json_object *loaded = ifs_resource_object(r);

        g_assert_null(r->object);
        g_assert_true(json_object_equal(loaded, obj));
        json_object_put(loaded);
    }

    /* The store keeps its own reference to the mtimes and frees the rest:
     * they must survive that. */
    mtimes = g_hash_table_ref(saved->mtimes);
    ifs_cache_data_free(saved);
    m = g_hash_table_lookup(mtimes, "vps/vps_1");
    g_assert_nonnull(m);
    g_assert_cmpint(m->base, ==, 2000);

    fresh = resource_dir("vps_1", obj, 0);
    ifs_cache_restamp(fresh, m);
    g_assert_cmpint(walk(fresh, "name")->mtime, ==, 1000);
    g_assert_cmpint(walk(fresh, "location/city")->mtime, ==, 2000);
    g_assert_cmpint(walk(fresh, "location")->mtime, ==, 2000);
    g_assert_cmpint(fresh->mtime, ==, 2000);
    ifs_node_unref(fresh);
    g_hash_table_unref(mtimes);
    json_object_put(obj);
    g_free(path);
}

/* Entry names may hold any byte but '/' and control characters: the
 * mtimes written for them must stay valid JSON. */
static void test_names_with_quotes_and_backslashes_keep_their_mtimes(Fixture *fx,
                                                                      gconstpointer data)
{
    json_object *obj = json_tokener_parse(
        "{\"id\":\"vps_1\",\"say\\\"hi\\\"\":\"x\",\"back\\\\slash\":{\"a\\\"b\":1}}");
    char *path = cache_path(fx);
    IfsResource *r = ifs_resource_new("vps", "vps_1", json_object_get(obj));
    IfsNode *node = resource_dir("vps_1", obj, 0);
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    IfsError *err = NULL;
    IfsCacheData *saved;
    IfsCacheMtimes *m;

    (void)data;
    set_mtime_everywhere(node, 2000);
    g_assert_nonnull(walk(node, "say\"hi\""));
    walk(node, "say\"hi\"")->mtime = 1000;
    walk(node, "back\\slash/a\"b")->mtime = 1500;
    g_ptr_array_add(items, ifs_cache_item_new(r, node));
    g_assert_true(ifs_cache_save(path, &fx->cfg, 1234, items, &err));
    g_assert_null(err);

    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_nonnull(saved);
    m = g_hash_table_lookup(saved->mtimes, "vps/vps_1");
    g_assert_nonnull(m);
    g_assert_cmpint(m->base, ==, 2000);
    g_assert_cmpint(*(gint64 *)g_hash_table_lookup(m->other, "say\"hi\""), ==, 1000);
    g_assert_cmpint(*(gint64 *)g_hash_table_lookup(m->other, "back\\slash/a\"b"), ==, 1500);
    g_assert_cmpuint(g_hash_table_size(m->other), ==, 2);
    ifs_cache_data_free(saved);
    g_ptr_array_unref(items);
    ifs_node_unref(node);
    ifs_resource_unref(r);
    json_object_put(obj);
    g_free(path);
}

static void test_no_file_is_no_error(Fixture *fx, gconstpointer data)
{
    char *blocker = g_build_filename(fx->dir, "a-file", NULL);
    char *under_file = g_build_filename(blocker, "acct.json", NULL);
    char *path = cache_path(fx);
    IfsError *err = NULL;

    (void)data;
    g_assert_null(ifs_cache_load(path, &fx->cfg, &err));
    g_assert_null(err);
    g_assert_true(g_file_set_contents(blocker, "x", 1, NULL));
    g_assert_null(ifs_cache_load(under_file, &fx->cfg, &err));
    g_assert_null(err);
    g_free(path);
    g_free(under_file);
    g_free(blocker);
}

static void expect_ignored(Fixture *fx, const char *why)
{
    char *path = cache_path(fx);
    IfsError *err = NULL;
    char *prefix;

    g_assert_null(ifs_cache_load(path, &fx->cfg, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_cmpint(err->errnum, ==, EINVAL);
    prefix = g_strdup_printf("account '%s': ignoring the cache file ", fx->cfg.name);
    g_assert_true(g_str_has_prefix(err->message, prefix));
    g_free(prefix);
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, why));
    ifs_error_free(err);
    g_free(path);
}

static void test_unusable_files_are_refused(Fixture *fx, gconstpointer data)
{
    json_object *obj = json_tokener_parse("{\"id\":\"vps_1\",\"name\":\"web-01\"}");
    const char *corrupt = "corrupt or not an infrafs cache of this version";
    const char *foreign = "saved for another account, type or url";
    IfsAccountConfig saved_cfg = fx->cfg;
    char *good, *deep;
    GString *text;

    (void)data;
    save_one(fx, obj);
    good = read_text(fx);

    write_text(fx, "not JSON {", -1);
    expect_ignored(fx, corrupt);
    write_text(fx, good, (gssize)strlen(good) / 2);
    expect_ignored(fx, corrupt);
    write_text(fx, "", 0);
    expect_ignored(fx, corrupt);
    write_text(fx, "[1, 2, 3]", -1);
    expect_ignored(fx, corrupt);
    text = g_string_new(good);
    g_string_replace(text, "\"version\":1", "\"version\":2", 1);
    write_text(fx, text->str, -1);
    expect_ignored(fx, corrupt);
    g_string_free(text, TRUE);
    /* Nesting beyond any cache infrafs writes: refused without recursing. */
    text = g_string_new(NULL);
    for (int i = 0; i < 100000; i++)
        g_string_append_c(text, '[');
    deep = g_string_free(text, FALSE);
    write_text(fx, deep, -1);
    expect_ignored(fx, corrupt);
    g_free(deep);

    write_text(fx, good, -1);
    fx->cfg.url = "http://localhost:1";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    fx->cfg.name = "other";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    fx->cfg.type = "heo";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    g_free(good);
    json_object_put(obj);
}

/* Entries it cannot use are skipped, the others still load. */
static void test_unusable_entries_are_skipped(Fixture *fx, gconstpointer data)
{
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;

    (void)data;
    write_text(fx,
        "{\"format\":\"infrafs-cache\",\"version\":1,\"account\":\"acct\","
        "\"type\":\"hostup\",\"url\":\"http://127.0.0.1:1\",\"last_refresh\":5,"
        "\"resources\":[{\"kind\":\"vps\",\"object\":{}},"
        "{\"kind\":\"vps\",\"id\":\"b\",\"object\":[]},"
        "\"junk\","
        "{\"kind\":\"vps\",\"id\":\"c\",\"object\":{\"name\":\"ok\"},\"mtimes\":7}]}", -1);
    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_cmpuint(saved->resources->len, ==, 1);
    g_assert_cmpstr(((IfsResource *)g_ptr_array_index(saved->resources, 0))->id, ==, "c");
    g_assert_cmpuint(g_hash_table_size(saved->mtimes), ==, 0);
    ifs_cache_data_free(saved);
    g_free(path);
}

/* Whatever json-c accepted from an API must load back, although the file
 * wraps each object in levels of its own. */
static void test_deepest_accepted_object_loads_back(Fixture *fx, gconstpointer data)
{
    GString *text = g_string_new(NULL);
    json_tokener *tok = json_tokener_new();
    char *path = cache_path(fx);
    IfsError *err = NULL;
    json_object *answer, *obj = NULL, *list;
    IfsCacheData *saved;
    int levels = 0;

    (void)data;
    /* The deepest {"data":[{"id":..,"d":{"d":...}}]} json-c still parses. */
    for (;;) {
        json_object *parsed;
        g_string_assign(text, "{\"data\":[{\"id\":\"vps_1\"");
        for (int i = 0; i <= levels; i++)
            g_string_append(text, ",\"d\":{\"x\":1");
        for (int i = 0; i <= levels; i++)
            g_string_append(text, "}");
        g_string_append(text, "}]}");
        json_tokener_reset(tok);
        parsed = json_tokener_parse_ex(tok, text->str, (int)text->len + 1);
        if (!parsed)
            break;
        json_object_put(obj);
        obj = parsed;
        levels++;
    }
    g_assert_cmpint(levels, >, 20);
    json_object_object_get_ex(obj, "data", &list);
    answer = json_object_get(json_object_array_get_idx(list, 0));
    save_one(fx, answer);

    saved = ifs_cache_load(path, &fx->cfg, &err);
    if (err)
        g_test_message("%s", err->message);
    g_assert_null(err);
    g_assert_nonnull(saved);
    {
        json_object *loaded = ifs_resource_object(g_ptr_array_index(saved->resources, 0));

        g_assert_true(json_object_equal(loaded, answer));
        json_object_put(loaded);
    }
    ifs_cache_data_free(saved);
    json_object_put(answer);
    json_object_put(obj);
    json_tokener_free(tok);
    g_string_free(text, TRUE);
    g_free(path);
}

static void test_save_failure_says_where_and_what_to_do(Fixture *fx, gconstpointer data)
{
    char *blocker = g_build_filename(fx->dir, "a-file", NULL);
    char *path = g_build_filename(blocker, "sub", "acct.json", NULL);
    GPtrArray *items = g_ptr_array_new();
    IfsError *err = NULL;

    (void)data;
    g_assert_true(g_file_set_contents(blocker, "x", 1, NULL));
    g_assert_false(ifs_cache_save(path, &fx->cfg, 1, items, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_true(g_str_has_prefix(err->message,
                                   "account 'acct': cannot create the cache directory "));
    g_assert_nonnull(strstr(err->message, "set cache_dir= to a writable directory"));
    ifs_error_free(err);
    g_ptr_array_unref(items);
    g_free(path);
    g_free(blocker);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/persist/round-trip", test_round_trip);
    ADD("/persist/odd-names", test_names_with_quotes_and_backslashes_keep_their_mtimes);
    ADD("/persist/no-file", test_no_file_is_no_error);
    ADD("/persist/unusable-files", test_unusable_files_are_refused);
    ADD("/persist/unusable-entries", test_unusable_entries_are_skipped);
    ADD("/persist/deepest-object", test_deepest_accepted_object_loads_back);
    ADD("/persist/save-failure", test_save_failure_says_where_and_what_to_do);
    return g_test_run();
}
