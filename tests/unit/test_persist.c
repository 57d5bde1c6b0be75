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
#include "test_util.h"

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
        .name = "acct",
        .type = "hostup",
        .url = "http://127.0.0.1:1",
        .refresh_s = -1,
    };
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    test_remove_tree(fx->dir);
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

/* The file's bytes (it holds NUL bytes: the length says where it ends). */
static char *read_file(Fixture *fx, gsize *len)
{
    char *path = cache_path(fx);
    char *text = NULL;

    g_assert_true(g_file_get_contents(path, &text, len, NULL));
    g_free(path);
    return text;
}

/* ---- the version 2 layout, written here from its description in
 * src/persist.c, to test files the saver would never write ---------------- */

static guint64 spec_step(guint64 h, guint64 word)
{
    h = (h ^ word) * 0x100000001b3ULL;
    return (h << 29) | (h >> 35);
}

static guint64 spec_checksum(const guchar *p, gsize len)
{
    guint64 h = 0xcbf29ce484222325ULL, word;
    gsize i;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&word, p + i, 8);
        h = spec_step(h, GUINT64_FROM_LE(word));
    }
    word = 0;
    memcpy(&word, p + i, len - i);
    return spec_step(spec_step(h, GUINT64_FROM_LE(word)), len);
}

static void spec_u32(GString *out, guint32 v)
{
    v = GUINT32_TO_LE(v);
    g_string_append_len(out, (const char *)&v, 4);
}

static void spec_u64(GString *out, guint64 v)
{
    v = GUINT64_TO_LE(v);
    g_string_append_len(out, (const char *)&v, 8);
}

static void spec_str(GString *out, const char *s)
{
    spec_u32(out, (guint32)strlen(s));
    g_string_append(out, s);
}

/* The header for fx's account with `records` records; append them, then
 * spec_finish. */
static GString *spec_header(Fixture *fx, guint32 version, guint32 records)
{
    GString *out = g_string_new(NULL);

    g_string_append_len(out, "infrafs-cache\0\0\0", 16);
    spec_u32(out, version);
    spec_u64(out, 0);
    spec_u64(out, 0);
    spec_u64(out, 777);
    spec_u32(out, records);
    spec_str(out, fx->cfg.name);
    spec_str(out, fx->cfg.type);
    spec_str(out, fx->cfg.url);
    return out;
}

/* A record without mtime exceptions. */
static void spec_record(GString *out, const char *kind, const char *id, const char *text,
                        const char *extra, gint64 base)
{
    spec_str(out, kind);
    spec_str(out, id);
    spec_str(out, text);
    spec_str(out, extra ? extra : "");
    spec_u64(out, (guint64)base);
    spec_u32(out, 0);
}

/* Fills in the length and the checksum, writes the file, frees `out`. */
static void spec_finish(Fixture *fx, GString *out)
{
    guint64 len = GUINT64_TO_LE((guint64)out->len), sum;

    memcpy(out->str + 28, &len, 8);
    sum = GUINT64_TO_LE(spec_checksum((const guchar *)out->str + 28, out->len - 28));
    memcpy(out->str + 20, &sum, 8);
    write_text(fx, out->str, (gssize)out->len);
    g_string_free(out, TRUE);
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
    {
        /* Saved in version 2: the format's name, then 2. */
        gsize len;
        char *text = read_file(fx, &len);

        g_assert_cmpuint(len, >, 20);
        g_assert_cmpmem(text, 20, "infrafs-cache\0\0\0\2\0\0\0", 20);
        g_free(text);
    }

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

/* An error that says the file was ignored and why, or NULL after a
 * load that worked (its data freed). */
static char *load_error(Fixture *fx)
{
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *data = ifs_cache_load(path, &fx->cfg, &err);
    char *message = NULL;

    if (data) {
        g_assert_null(err);
        ifs_cache_data_free(data);
    } else {
        g_assert_nonnull(err);
        g_assert_cmpint(err->errnum, ==, EINVAL);
        message = g_strdup(err->message);
        ifs_error_free(err);
    }
    g_free(path);
    return message;
}

/* Files that are not an infrafs cache, or of another version, go the way
 * they always went. */
static void test_files_that_are_not_a_cache_are_refused(Fixture *fx, gconstpointer data)
{
    const char *corrupt = "corrupt or not an infrafs cache of this version";
    GString *text;
    char *deep;

    (void)data;
    write_text(fx, "not JSON {", -1);
    expect_ignored(fx, corrupt);
    write_text(fx, "", 0);
    expect_ignored(fx, corrupt);
    write_text(fx, "[1, 2, 3]", -1);
    expect_ignored(fx, corrupt);
    write_text(fx, "infrafs-cache", -1); /* shorter than the format's name */
    expect_ignored(fx, corrupt);
    /* JSON of a version other than 1 */
    write_text(fx,
               "{\"format\":\"infrafs-cache\",\"version\":2,\"account\":\"acct\","
               "\"type\":\"hostup\",\"url\":\"http://127.0.0.1:1\",\"resources\":[]}",
               -1);
    expect_ignored(fx, corrupt);
    /* Nesting beyond any cache infrafs writes: refused without recursing. */
    text = g_string_new(NULL);
    for (int i = 0; i < 100000; i++)
        g_string_append_c(text, '[');
    deep = g_string_free(text, FALSE);
    write_text(fx, deep, -1);
    expect_ignored(fx, corrupt);
    g_free(deep);
}

static void test_a_later_format_version_is_refused(Fixture *fx, gconstpointer data)
{
    GString *out = spec_header(fx, 3, 0);

    (void)data;
    spec_finish(fx, out);
    expect_ignored(fx,
                   "it is an infrafs cache of format version 3, which this infrafs does "
                   "not read");
}

static void test_another_accounts_file_is_refused(Fixture *fx, gconstpointer data)
{
    json_object *obj = json_tokener_parse("{\"id\":\"vps_1\",\"name\":\"web-01\"}");
    const char *foreign = "saved for another account, type or url";
    IfsAccountConfig saved_cfg = fx->cfg;

    (void)data;
    save_one(fx, obj);
    fx->cfg.url = "http://localhost:1";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    fx->cfg.url = "http://127.0.0.1:10"; /* longer, same start */
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    fx->cfg.name = "other";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    fx->cfg.type = "heo";
    expect_ignored(fx, foreign);
    fx->cfg = saved_cfg;
    json_object_put(obj);
}

/* A few resources with extras and mtime exceptions: something in every
 * kind of field. */
static void save_several(Fixture *fx)
{
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    char *path = cache_path(fx);
    IfsError *err = NULL;

    for (int i = 0; i < 3; i++) {
        char *id = g_strdup_printf("vps_%d", i);
        char *text = g_strdup_printf("{\"id\":\"%s\",\"name\":\"n%d\",\"tags\":[\"a\"]}", id, i);
        json_object *obj = json_tokener_parse(text);
        IfsResource *r = ifs_resource_new("vps", id, json_object_get(obj));
        IfsNode *node = resource_dir(id, obj, 0);

        set_mtime_everywhere(node, 2000);
        if (i == 1)
            r->extra_files = json_tokener_parse("{\"log\":\"line\\n\"}");
        walk(node, "name")->mtime = 1000 + i;
        ifs_resource_seal(r);
        g_ptr_array_add(items, ifs_cache_item_new(r, node));
        ifs_node_unref(node);
        ifs_resource_unref(r);
        json_object_put(obj);
        g_free(text);
        g_free(id);
    }
    g_assert_true(ifs_cache_save(path, &fx->cfg, 1234, items, &err));
    g_assert_null(err);
    g_ptr_array_unref(items);
    g_free(path);
}

/* Whatever byte changes, the file is refused, whatever it changes into:
 * the header's own fields by their checks, the rest by the checksum. */
static void test_every_changed_byte_is_refused(Fixture *fx, gconstpointer data)
{
    static const guchar flips[] = {0x01, 0x80, 0xff, 0x20};
    gsize len;
    char *good, *message;

    (void)data;
    save_several(fx);
    good = read_file(fx, &len);
    message = load_error(fx);
    g_assert_null(message); /* as saved, it loads */
    for (gsize i = 0; i < len; i++) {
        for (gsize f = 0; f < G_N_ELEMENTS(flips); f++) {
            good[i] ^= (char)flips[f];
            write_text(fx, good, (gssize)len);
            good[i] ^= (char)flips[f];
            message = load_error(fx);
            if (!message)
                g_error("a file with byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                        " changed (xor 0x%02x) was loaded",
                        i, len, flips[f]);
            g_assert_nonnull(strstr(message, "ignoring the cache file"));
            g_free(message);
        }
    }
    g_free(good);
}

static void test_every_truncation_is_refused(Fixture *fx, gconstpointer data)
{
    gsize len;
    char *good, *message, *longer;

    (void)data;
    save_several(fx);
    good = read_file(fx, &len);
    for (gsize cut = 0; cut < len; cut++) {
        write_text(fx, good, (gssize)cut);
        message = load_error(fx);
        if (!message)
            g_error("a file cut to %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes was "
                    "loaded",
                    cut, len);
        g_free(message);
    }
    write_text(fx, good, (gssize)(len - 1));
    expect_ignored(fx, "it is truncated or damaged (");
    write_text(fx, good, 30);
    expect_ignored(fx, "it is truncated (shorter than its header)");
    /* One byte more is refused as well. */
    longer = g_malloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = '\n';
    write_text(fx, longer, (gssize)len + 1);
    expect_ignored(fx, "it is truncated or damaged (");
    /* And a changed byte past the header, by its checksum. */
    good[len - 3] ^= 1;
    write_text(fx, good, (gssize)len);
    expect_ignored(fx, "it is damaged (its checksum does not match its content)");
    g_free(longer);
    g_free(good);
}

/* Files that pass the checksum (only made on purpose) but claim more than
 * they hold are refused before anything is read past their end. */
static void test_absurd_lengths_are_refused(Fixture *fx, gconstpointer data)
{
    GString *out;

    (void)data;
    /* A record count far beyond the file's size */
    out = spec_header(fx, 2, G_MAXUINT32);
    spec_record(out, "vps", "a", "{}", NULL, 1);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (it claims more records than the file holds)");

    /* A length far beyond the file's end, in every field of a record */
    for (int field = 0; field < 4; field++) {
        const char *values[4] = {"vps", "a", "{}", "{}"};

        out = spec_header(fx, 2, 1);
        for (int i = 0; i < 4; i++) {
            if (i == field) {
                spec_u32(out, 0xfffffff0u);
                g_string_append(out, values[i]);
            } else {
                spec_str(out, values[i]);
            }
        }
        spec_u64(out, 1);
        spec_u32(out, 0);
        spec_finish(fx, out);
        expect_ignored(fx, "it is corrupt (a field runs past the end of the file)");
    }

    /* As many mtime exceptions as a u32 holds */
    out = spec_header(fx, 2, 1);
    spec_str(out, "vps");
    spec_str(out, "a");
    spec_str(out, "{}");
    spec_str(out, "");
    spec_u64(out, 1);
    spec_u32(out, G_MAXUINT32);
    spec_str(out, "name");
    spec_u64(out, 5);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a resource claims more mtimes than the file holds)");

    /* A header whose account runs past the end */
    out = g_string_new(NULL);
    g_string_append_len(out, "infrafs-cache\0\0\0", 16);
    spec_u32(out, 2);
    spec_u64(out, 0);
    spec_u64(out, 0);
    spec_u64(out, 0);
    spec_u32(out, 0);
    spec_u32(out, G_MAXUINT32);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a field runs past the end of the file)");
}

/* More fields whose checks only a made-up file reaches. */
static void test_records_that_cannot_be_ours_are_refused(Fixture *fx, gconstpointer data)
{
    GString *out;

    (void)data;
    out = spec_header(fx, 2, 1);
    spec_str(out, "vps");
    spec_u32(out, 3);
    g_string_append_len(out, "a\0b", 3); /* would be read as "a" */
    spec_str(out, "{}");
    spec_str(out, "");
    spec_u64(out, 1);
    spec_u32(out, 0);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a name holds a NUL byte)");

    out = spec_header(fx, 2, 1);
    spec_record(out, "vps", "a", "[1,2]", NULL, 1);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a resource's text is not a JSON object)");

    out = spec_header(fx, 2, 1);
    spec_record(out, "vps", "a", "", NULL, 1);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a resource's text is not a JSON object)");

    out = spec_header(fx, 2, 1);
    spec_record(out, "vps", "a", "{}", "\"log\"", 1);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a resource's text is not a JSON object)");

    out = spec_header(fx, 2, 1);
    spec_record(out, "vps", "a", "{}", NULL, 1);
    g_string_append(out, "more");
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (bytes follow its last record)");

    out = spec_header(fx, 2, 2); /* one record fewer than it says */
    spec_record(out, "vps", "a", "{\"pad\":\"a text long enough for two records\"}", NULL, 1);
    spec_finish(fx, out);
    expect_ignored(fx, "it is corrupt (a field runs past the end of the file)");
}

/* The layout src/persist.c describes is the one it reads; the text is
 * taken as it is, not parsed, and one that does not parse (from a file
 * made to pass the checksum) gives NULL to whoever parses it later. */
static void test_a_file_written_to_the_description_loads(Fixture *fx, gconstpointer data)
{
    GString *out = spec_header(fx, 2, 3);
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;
    IfsResource *r;
    IfsCacheMtimes *m;
    json_object *extra;

    (void)data;
    spec_record(out, "vps", "a", "{\"name\":\"x\"}", NULL, 100);
    spec_record(out, "vps", "b", "{\"x\":", "{\"log\":\"y\"}", 200);
    spec_str(out, "regions");
    spec_str(out, "c");
    spec_str(out, "{}");
    spec_str(out, "");
    spec_u64(out, 300);
    spec_u32(out, 2);
    spec_str(out, "deep/er");
    spec_u64(out, 301);
    spec_str(out, "");
    spec_u64(out, 302);
    spec_finish(fx, out);

    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_nonnull(saved);
    g_assert_cmpint(saved->last_refresh, ==, 777);
    g_assert_cmpuint(saved->resources->len, ==, 3);
    r = g_ptr_array_index(saved->resources, 0);
    g_assert_cmpstr(r->kind, ==, "vps");
    g_assert_cmpstr(r->id, ==, "a");
    g_assert_cmpstr(r->text, ==, "{\"name\":\"x\"}");
    g_assert_cmpuint(r->text_len, ==, 12);
    g_assert_null(r->extra_text);
    r = g_ptr_array_index(saved->resources, 1);
    g_assert_null(ifs_resource_object(r)); /* "{\"x\":" does not parse */
    extra = ifs_resource_extra_files(r);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(extra, "log")), ==, "y");
    json_object_put(extra);
    r = g_ptr_array_index(saved->resources, 2);
    g_assert_cmpstr(r->kind, ==, "regions");

    m = g_hash_table_lookup(saved->mtimes, "vps/a");
    g_assert_cmpint(m->base, ==, 100);
    g_assert_null(m->other);
    m = g_hash_table_lookup(saved->mtimes, "regions/c");
    g_assert_cmpint(m->base, ==, 300);
    g_assert_cmpint(*(gint64 *)g_hash_table_lookup(m->other, "deep/er"), ==, 301);
    g_assert_cmpint(*(gint64 *)g_hash_table_lookup(m->other, ""), ==, 302);
    ifs_cache_data_free(saved);
    g_free(path);
}

/* ids and names holding what JSON escapes, UTF-8, line breaks; empty and
 * missing extra files; a resource whose every file has its own mtime. */
static void test_odd_content_round_trips(Fixture *fx, gconstpointer data)
{
    static const char *const ids[] = {
        "quote\"d",
        "back\\slash",
        "line\nbreak\ttab",
        "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x90\xa7",
        "\x01\x02\x1f\x7f \xff\xfe bytes",
        "%2F/%00",
    };
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;
    GString *many = g_string_new("{\"id\":\"many\"");
    json_object *obj;
    IfsResource *r;
    IfsNode *node;
    IfsCacheMtimes *m;

    (void)data;
    for (gsize i = 0; i < G_N_ELEMENTS(ids); i++) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(ids[i]));
        json_object_object_add(o, ids[i], json_object_new_string("\"\\\n\xc3\xa9"));
        r = ifs_resource_new("vps", ids[i], json_object_get(o));
        if (i % 3 == 1)
            r->extra_files = json_object_new_object(); /* empty: "{}" */
        else if (i % 3 == 2)
            r->extra_files = json_tokener_parse("{\"log\":\"a\\\"b\\\\c\\nd\"}");
        ifs_resource_seal(r);
        g_ptr_array_add(texts, g_strdup(r->text));
        node = resource_dir("x", o, 0);
        set_mtime_everywhere(node, 3000);
        g_ptr_array_add(items, ifs_cache_item_new(r, node));
        ifs_node_unref(node);
        ifs_resource_unref(r);
        json_object_put(o);
    }
    /* 300 fields, each with its own mtime but for the base's 2 */
    for (int i = 0; i < 300; i++)
        g_string_append_printf(many, ",\"f\\\"%d\\\\\":%d", i, i);
    g_string_append_c(many, '}');
    obj = json_tokener_parse(many->str);
    r = ifs_resource_new("vps", "many", json_object_get(obj));
    ifs_resource_seal(r);
    node = resource_dir("many", obj, 0);
    set_mtime_everywhere(node, 5000);
    for (int i = 2; i < 300; i++) {
        char *name = g_strdup_printf("f\"%d\\", i);
        walk(node, name)->mtime = 10000 + i;
        g_free(name);
    }
    g_ptr_array_add(items, ifs_cache_item_new(r, node));
    g_assert_true(ifs_cache_save(path, &fx->cfg, 1, items, &err));
    g_assert_null(err);

    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_cmpuint(saved->resources->len, ==, G_N_ELEMENTS(ids) + 1);
    for (gsize i = 0; i < G_N_ELEMENTS(ids); i++) {
        IfsResource *back = g_ptr_array_index(saved->resources, i);
        json_object *o = ifs_resource_object(back);
        char *key = g_strconcat("vps/", ids[i], NULL);

        g_assert_cmpstr(back->id, ==, ids[i]);
        g_assert_cmpstr(back->text, ==, g_ptr_array_index(texts, i));
        g_assert_cmpstr(json_object_get_string(json_object_object_get(o, ids[i])), ==,
                        "\"\\\n\xc3\xa9");
        if (i % 3 == 0)
            g_assert_null(back->extra_text);
        else if (i % 3 == 1)
            g_assert_cmpstr(back->extra_text, ==, "{}");
        else
            g_assert_cmpstr(back->extra_text, ==, "{\"log\":\"a\\\"b\\\\c\\nd\"}");
        m = g_hash_table_lookup(saved->mtimes, key);
        g_assert_cmpint(m->base, ==, 3000);
        g_assert_null(m->other);
        json_object_put(o);
        g_free(key);
    }
    g_assert_true(ifs_resource_same(g_ptr_array_index(saved->resources, G_N_ELEMENTS(ids)), r));
    m = g_hash_table_lookup(saved->mtimes, "vps/many");
    g_assert_cmpint(m->base, ==, 5000);
    g_assert_cmpuint(g_hash_table_size(m->other), ==, 298);
    {
        IfsNode *fresh = resource_dir("many", obj, 1);

        ifs_cache_restamp(fresh, m);
        g_assert_cmpint(walk(fresh, "f\"7\\")->mtime, ==, 10007);
        g_assert_cmpint(walk(fresh, "f\"299\\")->mtime, ==, 10299);
        g_assert_cmpint(walk(fresh, "f\"1\\")->mtime, ==, 5000);
        g_assert_cmpint(walk(fresh, "id")->mtime, ==, 5000);
        ifs_node_unref(fresh);
    }
    ifs_cache_data_free(saved);
    ifs_node_unref(node);
    ifs_resource_unref(r);
    json_object_put(obj);
    g_string_free(many, TRUE);
    g_ptr_array_unref(texts);
    g_ptr_array_unref(items);
    g_free(path);
}

/* What loading would refuse is not saved, so that one odd resource never
 * costs the whole file. */
static void test_what_loading_refuses_is_not_saved(Fixture *fx, gconstpointer data)
{
    static const char *const objects[] = {"{\"name\":\"ok\"}", "[1,2]", "\"text\"", NULL};
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    IfsNode *node = resource_dir("x", NULL, 100);
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;
    IfsResource *r;

    (void)data;
    for (gsize i = 0; i < G_N_ELEMENTS(objects); i++) {
        char *id = g_strdup_printf("r%" G_GSIZE_FORMAT, i);

        r = ifs_resource_new("vps", id, objects[i] ? json_tokener_parse(objects[i]) : NULL);
        if (i == 0)
            r->extra_files = json_object_new_string("not an object");
        if (i % 2)
            ifs_resource_seal(r);
        g_ptr_array_add(items, ifs_cache_item_new(r, node));
        ifs_resource_unref(r);
        g_free(id);
    }
    g_assert_true(ifs_cache_save(path, &fx->cfg, 1, items, &err));
    g_assert_null(err);
    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_cmpuint(saved->resources->len, ==, 1);
    r = g_ptr_array_index(saved->resources, 0);
    g_assert_cmpstr(r->id, ==, "r0");
    g_assert_cmpstr(r->text, ==, "{\"name\":\"ok\"}");
    g_assert_null(r->extra_text);
    ifs_cache_data_free(saved);
    ifs_node_unref(node);
    g_ptr_array_unref(items);
    g_free(path);
}

/* A cache saved by an earlier infrafs (one JSON document) still loads,
 * sealed, with its mtimes: an upgrade keeps the offline copy. */
static void test_a_version_1_file_loads(Fixture *fx, gconstpointer data)
{
    char *path = cache_path(fx);
    IfsError *err = NULL;
    IfsCacheData *saved;
    IfsResource *r;
    IfsCacheMtimes *m;
    IfsNode *fresh;
    json_object *obj;

    (void)data;
    write_text(
        fx,
        "{\"format\":\"infrafs-cache\",\"version\":1,\"account\":\"acct\","
        "\"type\":\"hostup\",\"url\":\"http://127.0.0.1:1\",\"last_refresh\":99,"
        "\"resources\":[{\"kind\":\"vps\",\"id\":\"a\",\"object\":{\"id\": \"a\", "
        "\"name\": \"web\", \"location\": {\"city\": \"Oslo\"}},"
        "\"extra_files\":{\"log\":\"l\"},"
        "\"mtimes\":{\"base\":1000,\"other\":{\"name\":1500,\"location/city\":1600}}},"
        "{\"kind\":\"vps\",\"id\":\"b\",\"object\":{},\"mtimes\":{\"base\":7,\"other\":{}}}]}",
        -1);
    saved = ifs_cache_load(path, &fx->cfg, &err);
    g_assert_null(err);
    g_assert_nonnull(saved);
    g_assert_cmpint(saved->last_refresh, ==, 99);
    g_assert_cmpuint(saved->resources->len, ==, 2);
    r = g_ptr_array_index(saved->resources, 0);
    g_assert_null(r->object);
    g_assert_cmpstr(r->text, ==,
                    "{\"id\":\"a\",\"name\":\"web\",\"location\":{\"city\":\"Oslo\"}}");
    g_assert_cmpstr(r->extra_text, ==, "{\"log\":\"l\"}");
    m = g_hash_table_lookup(saved->mtimes, "vps/a");
    obj = ifs_resource_object(r);
    fresh = resource_dir("a", obj, 1);
    ifs_cache_restamp(fresh, m);
    g_assert_cmpint(fresh->mtime, ==, 1000);
    g_assert_cmpint(walk(fresh, "name")->mtime, ==, 1500);
    g_assert_cmpint(walk(fresh, "location/city")->mtime, ==, 1600);
    g_assert_cmpint(walk(fresh, "location")->mtime, ==, 1000);
    ifs_node_unref(fresh);
    json_object_put(obj);
    m = g_hash_table_lookup(saved->mtimes, "vps/b");
    g_assert_cmpint(m->base, ==, 7);
    g_assert_null(m->other);
    ifs_cache_data_free(saved);
    g_free(path);
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
               "{\"kind\":\"vps\",\"id\":\"c\",\"object\":{\"name\":\"ok\"},\"mtimes\":7}]}",
               -1);
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
    g_assert_true(
        g_str_has_prefix(err->message, "account 'acct': cannot create the cache directory "));
    g_assert_nonnull(strstr(err->message, "set cache_dir= to a writable directory"));
    ifs_error_free(err);
    g_ptr_array_unref(items);
    g_free(path);
    g_free(blocker);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/persist/round-trip", test_round_trip);
    ADD("/persist/odd-names", test_names_with_quotes_and_backslashes_keep_their_mtimes);
    ADD("/persist/no-file", test_no_file_is_no_error);
    ADD("/persist/not-a-cache", test_files_that_are_not_a_cache_are_refused);
    ADD("/persist/later-version", test_a_later_format_version_is_refused);
    ADD("/persist/another-account", test_another_accounts_file_is_refused);
    ADD("/persist/every-changed-byte", test_every_changed_byte_is_refused);
    ADD("/persist/every-truncation", test_every_truncation_is_refused);
    ADD("/persist/absurd-lengths", test_absurd_lengths_are_refused);
    ADD("/persist/not-ours", test_records_that_cannot_be_ours_are_refused);
    ADD("/persist/as-described", test_a_file_written_to_the_description_loads);
    ADD("/persist/odd-content", test_odd_content_round_trips);
    ADD("/persist/version-1", test_a_version_1_file_loads);
    ADD("/persist/not-saved", test_what_loading_refuses_is_not_saved);
    ADD("/persist/unusable-entries", test_unusable_entries_are_skipped);
    ADD("/persist/deepest-object", test_deepest_accepted_object_loads_back);
    ADD("/persist/save-failure", test_save_failure_says_where_and_what_to_do);
    return g_test_run();
}
