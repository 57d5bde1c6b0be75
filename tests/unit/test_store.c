/* The whole store (store.c and the pipeline behind it, persist.c too), driven
 * through its public interface on the in-process fake provider: refreshes
 * publish the tree and invalidate exactly what changed, failures keep the
 * last good data and say why, control writes act once and show their
 * result before they return, action results win over older lists, the
 * inode registry forgets what the kernel forgot, and the disk cache serves
 * a later offline store. No HTTP, no FUSE. */
#include "infrafs/store.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <glib/gstdio.h>

#include "fake_provider.h"
#include "infrafs/jsontree.h"
#include "infrafs/persist.h"
#include "test_util.h"

#define ACCOUNT "acct"
#define SECRET "s3cr3t-fake-token"
#define FIRST_REFRESH_S 5

#define VPS_1                                                                                      \
    "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"running\", "                     \
    "\"cpu_cores\": 2, \"location\": {\"city\": \"Stockholm\"}, "                                  \
    "\"tags\": [\"a\", \"b\"], \"notes\": null}"
#define VPS_2 "{\"id\": \"vps_2\", \"name\": \"db-01\", \"power_state\": \"stopped\"}"

/* ---- what the store asked the kernel to drop ------------------------------ */

typedef struct {
    char *parent; /* its path */
    char *name;
} EntryInval;

typedef struct {
    GMutex lock;
    IfsStore *store; /* whose registry names the node ids */
    GPtrArray *inodes; /* char*: paths, or "?<node id>" */
    GPtrArray *entries; /* EntryInval* */
} Record;

static void entry_inval_free(gpointer data)
{
    EntryInval *e = data;

    g_free(e->parent);
    g_free(e->name);
    g_free(e);
}

/* The path of node id `id`, as the registry knows it now. */
static char *path_of_id(Record *r, uint64_t id)
{
    char *path = ifs_store_path(r->store, id);

    return path ? path : g_strdup_printf("?%" G_GUINT64_FORMAT, (guint64)id);
}

/* Called by the store's publisher thread. */
static void record_inode(void *data, uint64_t id)
{
    Record *r = data;
    char *path = path_of_id(r, id);

    g_mutex_lock(&r->lock);
    g_ptr_array_add(r->inodes, path);
    g_mutex_unlock(&r->lock);
}

static void record_entry(void *data, uint64_t parent, const char *name)
{
    Record *r = data;
    EntryInval *e = g_new0(EntryInval, 1);

    e->parent = path_of_id(r, parent);
    e->name = g_strdup(name);
    g_mutex_lock(&r->lock);
    g_ptr_array_add(r->entries, e);
    g_mutex_unlock(&r->lock);
}

static void record_clear(Record *r)
{
    g_mutex_lock(&r->lock);
    g_ptr_array_set_size(r->inodes, 0);
    g_ptr_array_set_size(r->entries, 0);
    g_mutex_unlock(&r->lock);
}

static gboolean record_has_entry(Record *r, const char *parent, const char *name)
{
    gboolean found = FALSE;

    g_mutex_lock(&r->lock);
    for (guint i = 0; i < r->entries->len && !found; i++) {
        EntryInval *e = g_ptr_array_index(r->entries, i);
        found = strcmp(e->parent, parent) == 0 && strcmp(e->name, name) == 0;
    }
    g_mutex_unlock(&r->lock);
    return found;
}

/* Entry invalidations, but in by-name/ and by-ip/ (made from the rest). */
static guint record_n_entries(Record *r)
{
    guint n = 0;

    g_mutex_lock(&r->lock);
    for (guint i = 0; i < r->entries->len; i++) {
        EntryInval *e = g_ptr_array_index(r->entries, i);
        n += !g_str_has_prefix(e->parent, "by-");
    }
    g_mutex_unlock(&r->lock);
    return n;
}

/* ---- fixture --------------------------------------------------------------- */

typedef struct {
    FakeProvider *fake;
    IfsAccountConfig *cfg;
    IfsStore *store;
    Record rec;
    char *cache_dir; /* NULL unless the test made one */
} Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    fx->fake = fake_provider_new(ACCOUNT);
    fx->cfg = fake_account_config(ACCOUNT, SECRET);
    g_mutex_init(&fx->rec.lock);
    fx->rec.inodes = g_ptr_array_new_with_free_func(g_free);
    fx->rec.entries = g_ptr_array_new_with_free_func(entry_inval_free);
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    ifs_store_free(fx->store);
    fake_provider_unref(fx->fake);
    fake_account_config_free(fx->cfg);
    g_ptr_array_unref(fx->rec.inodes);
    g_ptr_array_unref(fx->rec.entries);
    g_mutex_clear(&fx->rec.lock);
    if (fx->cache_dir)
        test_remove_tree(fx->cache_dir);
    g_free(fx->cache_dir);
}

/* A started store with account `cfg` of the fake type, after its first
 * refresh. */
static IfsStore *new_store_of(Fixture *fx, const IfsAccountConfig *cfg, const char *cache_dir,
                              gboolean offline)
{
    IfsStoreOptions opts = {.refresh_s = 3600, .cache_dir = cache_dir, .offline = offline};
    IfsInvalidator inv = {record_inode, record_entry, &fx->rec};
    IfsStore *store = ifs_store_new(&opts);
    IfsError *err = NULL;

    g_assert_true(ifs_store_add_account_of(store, cfg, &fake_provider_type, &err));
    g_assert_null(err);
    ifs_store_set_invalidator(store, &inv);
    fx->rec.store = store;
    ifs_store_start(store);
    g_assert_true(ifs_store_wait_first_refresh(store, FIRST_REFRESH_S));
    return store;
}

static IfsStore *new_store(Fixture *fx, const char *cache_dir, gboolean offline)
{
    return new_store_of(fx, fx->cfg, cache_dir, offline);
}

static void start(Fixture *fx)
{
    fx->store = new_store(fx, NULL, FALSE);
}

/* ---- reading the tree --------------------------------------------------------- */

/* The node at `path` in the current snapshot (referenced), or NULL. A walk
 * by name: unlike ifs_store_lookup it counts no kernel lookup. */
/* FUSE lookup, where the test has no use for the st_ino. */
static IfsNode *lookup(IfsStore *store, uint64_t parent, const char *name, uint64_t *id)
{
    uint64_t ino;

    return ifs_store_lookup(store, parent, name, id, &ino);
}

static IfsNode *node_at(IfsStore *store, const char *path)
{
    IfsNode *root = ifs_store_get(store, IFS_ROOT_INO);
    IfsNode *n;

    g_assert_nonnull(root);
    n = tree_node(root, path);
    ifs_node_unref(root);
    return n;
}

static char *read_text(IfsStore *store, const char *path)
{
    IfsNode *root = ifs_store_get(store, IFS_ROOT_INO);
    char *text;

    g_assert_nonnull(root);
    text = tree_text(root, path);
    ifs_node_unref(root);
    return text;
}

static void assert_text(IfsStore *store, const char *path, const char *expected)
{
    char *text = read_text(store, path);

    if (strcmp(text, expected) != 0)
        g_error("%s holds \"%s\", expected \"%s\"", path, text, expected);
    g_free(text);
}

/* The names in directory `path`, space-separated in their order. */
static char *entry_names(IfsStore *store, const char *path)
{
    IfsNode *root = ifs_store_get(store, IFS_ROOT_INO);
    char *names;

    g_assert_nonnull(root);
    names = tree_names(root, path);
    ifs_node_unref(root);
    return names;
}

static void assert_entries(IfsStore *store, const char *path, const char *expected)
{
    char *names = entry_names(store, path);

    g_assert_cmpstr(names, ==, expected);
    g_free(names);
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The paths of every inode invalidated since the record was cleared,
 * except those under providers/ (state, timestamps and last_action there
 * change with every refresh) and the entries at the top made from the
 * rest (the action log, the inventory, by-name/, by-ip/, the events),
 * sorted and joined by ' '. */
static char *invalidated_outside_providers(Fixture *fx)
{
    GPtrArray *paths = g_ptr_array_new();
    char *joined;

    g_mutex_lock(&fx->rec.lock);
    for (guint i = 0; i < fx->rec.inodes->len; i++) {
        char *path = g_ptr_array_index(fx->rec.inodes, i);

        if (!g_str_has_prefix(path, "providers/") && strcmp(path, "actions") != 0 &&
            !g_str_has_prefix(path, "inventory") && !g_str_has_prefix(path, "by-") &&
            !g_str_has_prefix(path, "events"))
            g_ptr_array_add(paths, path);
    }
    g_ptr_array_sort(paths, compare_strings);
    g_ptr_array_add(paths, NULL);
    joined = g_strjoinv(" ", (char **)paths->pdata);
    g_mutex_unlock(&fx->rec.lock);
    g_ptr_array_unref(paths);
    return joined;
}

/* Hands the kernel every entry below directory `dir` (node id `id`), as
 * READDIRPLUS everywhere would. */
static void hold_below(IfsStore *store, const IfsNode *dir, uint64_t id)
{
    for (guint i = 0; i < ifs_node_n_children(dir); i++) {
        const IfsNode *child = ifs_node_child_at(dir, i);
        uint64_t child_id = ifs_store_hand_out(store, id, child);

        g_assert_cmpuint(child_id, !=, 0);
        if (child->type == IFS_NODE_DIR)
            hold_below(store, child, child_id);
    }
}

/* From now on the "kernel" holds the whole tree (a `find` went over it),
 * so the store tells it about every change; and the record starts anew. */
static void watch(Fixture *fx)
{
    IfsNode *root = ifs_store_get(fx->store, IFS_ROOT_INO);

    hold_below(fx->store, root, IFS_ROOT_INO);
    ifs_node_unref(root);
    record_clear(&fx->rec);
}

static void assert_invalidated(Fixture *fx, const char *expected)
{
    char *got = invalidated_outside_providers(fx);

    g_assert_cmpstr(got, ==, expected);
    g_free(got);
}

/* The clock that new nodes' mtimes come from (node.c): time(), which
 * may lag g_get_real_time() by a tick, so a second apart at times. */
static time_t node_clock(void)
{
    return time(NULL);
}

/* ---- writing ---------------------------------------------------------------------- */

static int write_node(IfsStore *store, const char *path, const char *text)
{
    IfsNode *n = node_at(store, path);
    int errnum;

    if (!n)
        g_error("no node at %s", path);
    errnum = ifs_store_control_write(store, n, text, strlen(text), 0, getuid());
    ifs_node_unref(n);
    return errnum;
}

/* `echo 1 > providers/acct/refresh`, found as the kernel finds it (and
 * then forgotten as the kernel would): returns once the refresh is
 * published, with its errno. */
static int refresh_store(IfsStore *store)
{
    static const char *const path[] = {"providers", ACCOUNT, "refresh"};
    guint64 inos[G_N_ELEMENTS(path)];
    guint64 parent = IFS_ROOT_INO;
    IfsNode *node = NULL;
    int errnum;

    for (guint i = 0; i < G_N_ELEMENTS(path); i++) {
        if (node)
            ifs_node_unref(node);
        node = lookup(store, parent, path[i], &inos[i]);
        g_assert_nonnull(node);
        parent = inos[i];
    }
    g_assert_cmpint(node->type, ==, IFS_NODE_CONTROL);
    errnum = ifs_store_control_write(store, node, "1\n", 2, 0, getuid());
    ifs_node_unref(node);
    for (guint i = 0; i < G_N_ELEMENTS(path); i++)
        ifs_store_forget(store, inos[i], 1);
    return errnum;
}

static int refresh(Fixture *fx)
{
    return refresh_store(fx->store);
}

static guint64 ino_of(const char *path)
{
    return ifs_ino_for_path(path);
}

/* ===================================================================== */
/* Refresh, build, publish                                               */

static void test_first_refresh_publishes_a_directory_per_resource(Fixture *fx, gconstpointer d)
{
    IfsNode *json, *power, *name;
    json_object *parsed, *expected;
    char *text;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);

    assert_entries(fx->store, "",
                   "README actions by-ip by-name events events.ndjson inventory "
                   "inventory.json providers vps");
    assert_entries(fx->store, "vps", ACCOUNT);
    assert_entries(fx->store, "vps/acct", "vps_1 vps_2");
    assert_entries(fx->store, "vps/acct/vps_1",
                   "cpu_cores delete id json last_action location name notes power "
                   "power_state tags");
    assert_entries(fx->store, "vps/acct/vps_2",
                   "delete id json last_action name power power_state");
    assert_text(fx->store, "vps/acct/vps_1/name", "web-01\n");
    assert_text(fx->store, "vps/acct/vps_1/cpu_cores", "2\n");
    assert_text(fx->store, "vps/acct/vps_1/location/city", "Stockholm\n");
    assert_text(fx->store, "vps/acct/vps_1/tags", "a\nb\n");
    assert_text(fx->store, "vps/acct/vps_1/notes", "");
    assert_text(fx->store, "vps/acct/vps_1/last_action", "");
    assert_text(fx->store, "vps/acct/vps_2/power_state", "stopped\n");

    name = node_at(fx->store, "vps/acct/vps_1/name");
    g_assert_cmpint(name->type, ==, IFS_NODE_FILE);
    g_assert_cmpuint(ifs_node_size(name), ==, strlen("web-01\n"));
    ifs_node_unref(name);

    /* json: the whole object, pretty, exactly as long as its size says. */
    json = node_at(fx->store, "vps/acct/vps_1/json");
    text = node_text(json);
    g_assert_true(g_str_has_suffix(text, "\n"));
    parsed = json_tokener_parse(text);
    expected = json_tokener_parse(VPS_1);
    g_assert_true(json_object_equal(parsed, expected));
    json_object_put(parsed);
    json_object_put(expected);
    g_free(text);
    ifs_node_unref(json);

    /* A control file lists the commands it accepts. */
    power = node_at(fx->store, "vps/acct/vps_1/power");
    g_assert_cmpint(power->type, ==, IFS_NODE_CONTROL);
    text = node_text(power);
    g_assert_cmpstr(text, ==, "start stop restart\n");
    g_free(text);
    ifs_node_unref(power);
    assert_text(fx->store, "vps/acct/vps_1/delete", "1\n");

    assert_text(fx->store, "providers/acct/type", "fake\n");
    assert_text(fx->store, "providers/acct/url", "fake://acct\n");
    assert_text(fx->store, "providers/acct/state", "ok\n");
    assert_text(fx->store, "providers/acct/last_error", "");
    assert_text(fx->store, "providers/acct/refresh_interval", "3600\n");
    /* The account's HTTP client sent nothing: the fake is all there is. */
    assert_text(fx->store, "providers/acct/requests", "0\n");
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_OPEN), ==, 1);
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_LIST), ==, 1);
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_ACT), ==, 0);
}

static void test_unchanged_refresh_keeps_nodes_and_invalidates_nothing(Fixture *fx, gconstpointer d)
{
    IfsNode *kind_dir, *vps_1, *name, *json;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    kind_dir = node_at(fx->store, "vps/acct");
    vps_1 = node_at(fx->store, "vps/acct/vps_1");
    name = node_at(fx->store, "vps/acct/vps_1/name");
    json = node_at(fx->store, "vps/acct/vps_1/json");
    watch(fx);

    g_assert_cmpint(refresh(fx), ==, 0);

    /* The refresh did list again (else "unchanged" would prove nothing). */
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_LIST), ==, 2);
    /* The very same nodes, so the same mtimes and inos. */
    {
        IfsNode *now = node_at(fx->store, "vps/acct");
        g_assert_true(now == kind_dir);
        ifs_node_unref(now);
        now = node_at(fx->store, "vps/acct/vps_1");
        g_assert_true(now == vps_1);
        ifs_node_unref(now);
        now = node_at(fx->store, "vps/acct/vps_1/name");
        g_assert_true(now == name);
        ifs_node_unref(now);
        now = node_at(fx->store, "vps/acct/vps_1/json");
        g_assert_true(now == json);
        ifs_node_unref(now);
    }
    assert_invalidated(fx, "");
    g_assert_cmpuint(record_n_entries(&fx->rec), ==, 0);
    ifs_node_unref(kind_dir);
    ifs_node_unref(vps_1);
    ifs_node_unref(name);
    ifs_node_unref(json);
}

static void test_changed_field_invalidates_that_file_only(Fixture *fx, gconstpointer d)
{
    IfsNode *vps_1, *vps_2, *power_state, *now;
    time_t before;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    vps_1 = node_at(fx->store, "vps/acct/vps_1");
    vps_2 = node_at(fx->store, "vps/acct/vps_2");
    power_state = node_at(fx->store, "vps/acct/vps_1/power_state");
    fake_provider_set_field(fx->fake, "vps", "vps_1", "name", "\"web-02\"");
    watch(fx);
    before = node_clock();

    g_assert_cmpint(refresh(fx), ==, 0);

    assert_text(fx->store, "vps/acct/vps_1/name", "web-02\n");
    /* The field's file and the json that holds it; not the directory
     * (its entries are the same), nor anything else. */
    assert_invalidated(fx, "vps/acct/vps_1/json vps/acct/vps_1/name");
    g_assert_cmpuint(record_n_entries(&fx->rec), ==, 0);
    now = node_at(fx->store, "vps/acct/vps_1/name");
    g_assert_cmpint(now->mtime, >=, before);
    ifs_node_unref(now);
    /* What did not change is as it was (a copy in the resource's new
     * block), mtime included; an unchanged resource is shared. */
    now = node_at(fx->store, "vps/acct/vps_1/power_state");
    g_assert_true(ifs_node_same_content(now, power_state));
    g_assert_cmpint(now->mtime, ==, power_state->mtime);
    ifs_node_unref(now);
    now = node_at(fx->store, "vps/acct/vps_2");
    g_assert_true(now == vps_2);
    ifs_node_unref(now);
    now = node_at(fx->store, "vps/acct/vps_1");
    g_assert_true(now != vps_1);
    ifs_node_unref(now);
    ifs_node_unref(vps_1);
    ifs_node_unref(vps_2);
    ifs_node_unref(power_state);
}

static void test_removed_resource_invalidates_its_entry(Fixture *fx, gconstpointer d)
{
    IfsNode *vps_1, *now;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    vps_1 = node_at(fx->store, "vps/acct/vps_1");
    g_assert_true(fake_provider_remove(fx->fake, "vps", "vps_2"));
    watch(fx);

    g_assert_cmpint(refresh(fx), ==, 0);

    assert_entries(fx->store, "vps/acct", "vps_1");
    g_assert_true(record_has_entry(&fx->rec, "vps/acct", "vps_2"));
    g_assert_cmpuint(record_n_entries(&fx->rec), ==, 1);
    /* Nothing of the resource that stayed. */
    assert_invalidated(fx, "vps/acct");
    now = node_at(fx->store, "vps/acct/vps_1");
    g_assert_true(now == vps_1);
    ifs_node_unref(now);
    ifs_node_unref(vps_1);
}

static void test_added_resource_invalidates_the_kind_directory(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    watch(fx);

    g_assert_cmpint(refresh(fx), ==, 0);

    assert_entries(fx->store, "vps/acct", "vps_1 vps_2");
    assert_text(fx->store, "vps/acct/vps_2/name", "db-01\n");
    assert_invalidated(fx, "vps/acct");
    g_assert_cmpuint(record_n_entries(&fx->rec), ==, 0);
}

/* ===================================================================== */
/* Failures                                                              */

static void test_failed_list_keeps_last_good_data_and_says_why(Fixture *fx, gconstpointer d)
{
    IfsNode *vps_1, *now;
    char *last_error;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    vps_1 = node_at(fx->store, "vps/acct/vps_1");
    /* The API's answer echoes the credential: it must not show. */
    fake_provider_fail_lists(fx->fake, EIO, "HTTP 503 from the API (token " SECRET ")", FALSE);
    fake_provider_set_field(fx->fake, "vps", "vps_1", "name", "\"never-shown\"");
    watch(fx);

    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*HTTP 503*");
    g_assert_cmpint(refresh(fx), ==, EIO);
    g_test_assert_expected_messages();

    assert_text(fx->store, "providers/acct/state", "stale\n");
    last_error = read_text(fx->store, "providers/acct/last_error");
    assert_contains(last_error, "HTTP 503 from the API");
    assert_contains(last_error, "[redacted]");
    g_assert_null(strstr(last_error, SECRET));
    g_free(last_error);
    last_error = read_text(fx->store, "providers/acct/last_action");
    assert_contains(last_error, " 1 failed ");
    g_free(last_error);
    now = node_at(fx->store, "vps/acct/vps_1");
    g_assert_true(now == vps_1);
    ifs_node_unref(now);
    assert_invalidated(fx, "");

    /* A refused key says so, and the data still stays. */
    fake_provider_fail_lists(fx->fake, EACCES, "HTTP 401 invalid key", FALSE);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*HTTP 401*");
    g_assert_cmpint(refresh(fx), ==, EACCES);
    g_test_assert_expected_messages();
    assert_text(fx->store, "providers/acct/state", "unauthorized\n");
    assert_text(fx->store, "vps/acct/vps_1/name", "web-01\n");

    /* The next good list brings the account back. */
    fake_provider_fail_lists(fx->fake, 0, NULL, FALSE);
    g_assert_cmpint(refresh(fx), ==, 0);
    assert_text(fx->store, "providers/acct/state", "ok\n");
    assert_text(fx->store, "providers/acct/last_error", "");
    assert_text(fx->store, "vps/acct/vps_1/name", "never-shown\n");
    ifs_node_unref(vps_1);
}

static void test_partial_list_is_shown_with_what_failed(Fixture *fx, gconstpointer d)
{
    char *last_error;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_set_field(fx->fake, "vps", "vps_1", "name", "\"web-02\"");
    fake_provider_fail_lists(fx->fake, EIO, "details of vps_1 could not be read", TRUE);

    g_assert_cmpint(refresh(fx), ==, 0);

    assert_text(fx->store, "providers/acct/state", "ok\n");
    last_error = read_text(fx->store, "providers/acct/last_error");
    assert_contains(last_error, "details of vps_1 could not be read");
    g_free(last_error);
    assert_text(fx->store, "vps/acct/vps_1/name", "web-02\n");
}

static void test_first_refresh_failure_shows_error(Fixture *fx, gconstpointer d)
{
    char *last_error;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_fail_lists(fx->fake, EHOSTUNREACH, "cannot connect", FALSE);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*cannot connect*");
    start(fx);
    g_test_assert_expected_messages();

    /* Never good: "error", not "stale", and an empty directory. */
    assert_text(fx->store, "providers/acct/state", "error\n");
    last_error = read_text(fx->store, "providers/acct/last_error");
    assert_contains(last_error, "cannot connect");
    g_free(last_error);
    assert_entries(fx->store, "vps/acct", "");
}

static void test_unusable_resources_are_skipped_and_named(Fixture *fx, gconstpointer d)
{
    char *last_error;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_append(fx->fake, "vps", "vps_1", "{\"id\": \"vps_1\", \"name\": \"dup\"}");
    fake_provider_put(fx->fake, "servers", "srv_1", "{\"id\": \"srv_1\"}");
    start(fx);

    /* The first of a duplicate wins; a kind the type does not offer is
     * not shown; the refresh still succeeds, and says what it left out. */
    assert_entries(fx->store, "",
                   "README actions by-ip by-name events events.ndjson inventory "
                   "inventory.json providers vps");
    assert_entries(fx->store, "vps/acct", "vps_1");
    assert_text(fx->store, "vps/acct/vps_1/name", "web-01\n");
    assert_text(fx->store, "providers/acct/state", "ok\n");
    last_error = read_text(fx->store, "providers/acct/last_error");
    assert_contains(last_error, "skipped vps 'vps_1': duplicate id");
    assert_contains(last_error, "skipped servers 'srv_1': unknown kind");
    g_free(last_error);
}

static void test_too_many_resources_fail_the_refresh(Fixture *fx, gconstpointer d)
{
    char *last_error;

    (void)d;
    fx->cfg->max_resources = 2;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    assert_entries(fx->store, "vps/acct", "vps_1 vps_2");
    fake_provider_put(fx->fake, "vps", "vps_3", "{\"id\": \"vps_3\"}");

    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*max_resources*");
    g_assert_cmpint(refresh(fx), ==, EIO);
    g_test_assert_expected_messages();

    /* Not an arbitrary part of the answer: the last good data, whole. */
    assert_entries(fx->store, "vps/acct", "vps_1 vps_2");
    assert_text(fx->store, "providers/acct/state", "stale\n");
    last_error = read_text(fx->store, "providers/acct/last_error");
    assert_contains(last_error, "listed 3 resources, more than max_resources (2)");
    g_free(last_error);
}

static void test_account_whose_provider_cannot_open_says_why(Fixture *fx, gconstpointer d)
{
    IfsAccountConfig *other = fake_account_config("nofake", SECRET);
    char *last_error;

    (void)d;
    /* An account without a fake: open() fails, the store still mounts. */
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*nofake*refresh failed*");
    fx->store = new_store_of(fx, other, NULL, FALSE);
    g_test_assert_expected_messages();
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_OPEN), ==, 0);

    assert_text(fx->store, "providers/nofake/state", "error\n");
    last_error = read_text(fx->store, "providers/nofake/last_error");
    assert_contains(last_error, "no fake provider was created for it");
    g_free(last_error);
    assert_entries(fx->store, "vps/nofake", "");
    ifs_store_free(fx->store);
    fx->store = NULL;
    fake_account_config_free(other);
}

/* ===================================================================== */
/* Control writes                                                        */

/* "<UTC time> <what> <writer>": the time is now, give or take the test's
 * run, and the writer this process's user. */
static void assert_last_action(IfsStore *store, const char *path, const char *what)
{
    char *line = read_text(store, path);
    char *space = strchr(line, ' ');
    char *end = test_writer_end();
    char *rest = g_strconcat(what, " ", end, NULL);
    GDateTime *when;

    g_assert_nonnull(space);
    *space = '\0';
    when = g_date_time_new_from_iso8601(line, NULL);
    if (!when)
        g_error("last_action starts with \"%s\", not a time", line);
    g_assert_cmpint(ABS(g_date_time_to_unix(when) - g_get_real_time() / G_USEC_PER_SEC), <=, 60);
    g_assert_cmpstr(space + 1, ==, rest);
    g_date_time_unref(when);
    g_free(line);
    g_free(rest);
    g_free(end);
}

static void test_control_write_acts_once_and_shows_the_result(Fixture *fx, gconstpointer d)
{
    char *last;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    watch(fx);

    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_1/power", "stop force\n"), ==, 0);

    /* Shown, and the kernel told, before write() returned. */
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_ACT), ==, 1);
    last = fake_provider_last_act(fx->fake);
    g_assert_cmpstr(last, ==, "vps/vps_1 power stop force");
    g_free(last);
    assert_text(fx->store, "vps/acct/vps_1/power_state", "stopped\n");
    assert_text(fx->store, "vps/acct/vps_1/last_command", "stop\n");
    assert_last_action(fx->store, "vps/acct/vps_1/last_action", "stop force ok 200 accepted stop");
    assert_invalidated(fx,
                       "vps/acct/vps_1 vps/acct/vps_1/json vps/acct/vps_1/last_action "
                       "vps/acct/vps_1/power_state");
    /* No refresh was needed for it. */
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_LIST), ==, 1);
}

static void test_refused_command_makes_no_call(Fixture *fx, gconstpointer d)
{
    /* What was written, and how last_action names it. */
    static const struct {
        const char *input;
        const char *logged;
    } refused[] = {
        {"explode\n",     "explode"       },
        {"start force\n", "start_force"   },
        {"stop now\n",    "stop_now"      },
        {"\n",            "(empty)"       },
        {"",              "(empty)"       },
        {"stop\nstart\n", "stop\\x0Astart"},
    };
    IfsNode *node;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);

    for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
        char *last, *expected;

        g_assert_cmpint(write_node(fx->store, "vps/acct/vps_1/power", refused[i].input), ==,
                        EINVAL);
        last = read_text(fx->store, "vps/acct/vps_1/last_action");
        expected = g_strconcat(" ", refused[i].logged, " failed - ", NULL);
        assert_contains(last, expected);
        g_free(expected);
        g_free(last);
    }
    /* Not at offset 0: one command is one write. */
    node = node_at(fx->store, "vps/acct/vps_1/power");
    g_assert_cmpint(ifs_store_control_write(fx->store, node, "stop\n", 5, 3, getuid()), ==, EINVAL);
    ifs_node_unref(node);
    /* Not a control file at all. */
    node = node_at(fx->store, "vps/acct/vps_1/name");
    g_assert_cmpint(ifs_store_control_write(fx->store, node, "stop\n", 5, 0, getuid()), ==, EACCES);
    ifs_node_unref(node);

    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_ACT), ==, 0);
    assert_text(fx->store, "vps/acct/vps_1/power_state", "running\n");
}

static void test_failed_action_answers_its_errno_and_says_why(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_fail_acts(fx->fake, EBUSY, 409, "locked", "VPS is locked by " SECRET);

    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_1/power", "restart\n"), ==, EBUSY);

    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_ACT), ==, 1);
    assert_last_action(fx->store, "vps/acct/vps_1/last_action",
                       "restart failed 409 locked: VPS is locked by [redacted]");
    assert_text(fx->store, "vps/acct/vps_1/power_state", "running\n");
}

static void test_delete_removes_the_resource_before_write_returns(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    watch(fx);

    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_2/delete", "1\n"), ==, 0);

    assert_entries(fx->store, "vps/acct", "vps_1");
    g_assert_true(record_has_entry(&fx->rec, "vps/acct", "vps_2"));
    /* Gone for good: the next refresh lists it no more either. */
    g_assert_cmpint(refresh(fx), ==, 0);
    assert_entries(fx->store, "vps/acct", "vps_1");
}

static void test_action_names_the_resource_by_its_raw_id(Fixture *fx, gconstpointer d)
{
    char *last;

    (void)d;
    fake_provider_put(fx->fake, "vps", "web/1", "{\"id\": \"web/1\", \"name\": \"odd\"}");
    start(fx);
    assert_entries(fx->store, "vps/acct", "web%2F1");

    g_assert_cmpint(write_node(fx->store, "vps/acct/web%2F1/power", "restart\n"), ==, 0);

    last = fake_provider_last_act(fx->fake);
    g_assert_cmpstr(last, ==, "vps/web/1 power restart");
    g_free(last);
    assert_text(fx->store, "vps/acct/web%2F1/last_command", "restart\n");
}

/* Polls the tree (bounded) until `path` holds `expected`. */
static gboolean wait_text(IfsStore *store, const char *path, const char *expected)
{
    gint64 until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < until) {
        char *text = read_text(store, path);
        gboolean same = strcmp(text, expected) == 0;

        g_free(text);
        if (same)
            return TRUE;
        g_usleep(2000);
    }
    return FALSE;
}

static void test_action_without_its_result_is_re_read(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_set_act_returns_resource(fx->fake, FALSE);

    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_1/power", "stop\n"), ==, 0);

    /* The store reads the resource once in the background, not the list. */
    g_assert_true(fake_provider_wait_calls(fx->fake, FAKE_FETCH, 1, 5000));
    g_assert_true(wait_text(fx->store, "vps/acct/vps_1/power_state", "stopped\n"));
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_FETCH), ==, 1);
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_LIST), ==, 1);
}

/* ===================================================================== */
/* Action results win over lists read before them                       */

static gpointer refresh_thread(gpointer data)
{
    return GINT_TO_POINTER(refresh_store(data));
}

static void test_action_result_wins_over_a_list_started_before_it(Fixture *fx, gconstpointer d)
{
    GThread *refresher;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);

    /* A refresh whose list() answered before the actions below... */
    fake_provider_hold_lists(fx->fake, TRUE);
    refresher = g_thread_new("refresh", refresh_thread, fx->store);
    g_assert_true(fake_provider_wait_list_held(fx->fake, 5000));
    /* ...then the actions, shown at once... */
    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_1/power", "stop\n"), ==, 0);
    g_assert_cmpint(write_node(fx->store, "vps/acct/vps_2/delete", "1\n"), ==, 0);
    assert_text(fx->store, "vps/acct/vps_1/power_state", "stopped\n");
    assert_entries(fx->store, "vps/acct", "vps_1");
    /* ...and then the old list is published. */
    fake_provider_hold_lists(fx->fake, FALSE);
    g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(refresher)), ==, 0);

    assert_text(fx->store, "providers/acct/state", "ok\n");
    assert_text(fx->store, "vps/acct/vps_1/power_state", "stopped\n");
    assert_entries(fx->store, "vps/acct", "vps_1");

    /* A list that starts after the action is believed again: here the VPS
     * was started from elsewhere since. */
    fake_provider_set_field(fx->fake, "vps", "vps_1", "power_state", "\"running\"");
    g_assert_cmpint(refresh(fx), ==, 0);
    assert_text(fx->store, "vps/acct/vps_1/power_state", "running\n");
}

static void test_refresh_all_refreshes_without_waiting(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_set_field(fx->fake, "vps", "vps_1", "name", "\"web-02\"");
    /* Held, so that the call below can only return without waiting. */
    fake_provider_hold_lists(fx->fake, TRUE);

    ifs_store_refresh_all(fx->store); /* SIGHUP */

    g_assert_true(fake_provider_wait_list_held(fx->fake, 5000));
    assert_text(fx->store, "vps/acct/vps_1/name", "web-01\n");
    fake_provider_hold_lists(fx->fake, FALSE);
    g_assert_true(wait_text(fx->store, "vps/acct/vps_1/name", "web-02\n"));
}

static void test_shutdown_ends_a_write_waiting_for_a_refresh(Fixture *fx, gconstpointer d)
{
    GThread *writer;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);
    fake_provider_hold_lists(fx->fake, TRUE);
    writer = g_thread_new("refresh", refresh_thread, fx->store);
    g_assert_true(fake_provider_wait_list_held(fx->fake, 5000));

    /* Unmount while the API is silent: the write must not wait for it
     * (the held list would give up only after 10 s, with ETIMEDOUT). */
    ifs_store_shutdown(fx->store);
    g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(writer)), ==, EINTR);

    fake_provider_hold_lists(fx->fake, FALSE);
}

/* ===================================================================== */
/* The inode registry                                                    */

static void test_lookups_are_counted_and_forget_drops_them(Fixture *fx, gconstpointer d)
{
    IfsNode *first, *second, *got;
    guint64 id, again;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    start(fx);

    first = lookup(fx->store, IFS_ROOT_INO, "vps", &id);
    second = lookup(fx->store, IFS_ROOT_INO, "vps", &again);
    g_assert_nonnull(first);
    g_assert_true(first == second);
    g_assert_cmpuint(id, ==, again);
    /* st_ino is the path's hash; the node id is the registry's */
    {
        uint64_t ino = 0;
        IfsNode *third = ifs_store_lookup(fx->store, IFS_ROOT_INO, "vps", &again, &ino);

        g_assert_cmpuint(ino, ==, ino_of("vps"));
        g_assert_cmpuint(again, !=, ino);
        ifs_store_forget(fx->store, again, 1);
        ifs_node_unref(third);
    }
    g_assert_null(lookup(fx->store, IFS_ROOT_INO, "nothing-here", &again));
    g_assert_cmpuint(again, ==, 0);
    g_assert_true(ifs_store_kernel_holds(fx->store, id));
    got = ifs_store_get(fx->store, id);
    g_assert_true(got == first);
    ifs_node_unref(got);

    ifs_store_forget(fx->store, id, 1);
    g_assert_true(ifs_store_kernel_holds(fx->store, id));
    ifs_store_forget(fx->store, id, 1);
    g_assert_false(ifs_store_kernel_holds(fx->store, id));
    /* The kernel never asks for an inode it forgot; the store no longer
     * knows where it was. */
    g_assert_null(ifs_store_get(fx->store, id));

    /* A listing counts each entry it hands out as one lookup. */
    got = lookup(fx->store, IFS_ROOT_INO, "vps", &id);
    {
        guint64 acct_id, dir_id;
        IfsNode *acct = lookup(fx->store, id, ACCOUNT, &acct_id);
        IfsNode *dir = lookup(fx->store, acct_id, "vps_1", &dir_id);
        guint n = ifs_node_n_children(dir);
        guint64 *ids = g_new0(guint64, n);

        for (guint i = 0; i < n; i++) {
            ids[i] = ifs_store_hand_out(fx->store, dir_id, ifs_node_child_at(dir, i));
            g_assert_cmpuint(ifs_store_hand_out(fx->store, dir_id, ifs_node_child_at(dir, i)), ==,
                             ids[i]);
            g_assert_cmpuint(ifs_store_child_id(fx->store, dir_id, ifs_node_child_at(dir, i)), ==,
                             ids[i]);
        }
        for (guint i = 0; i < n; i++) {
            IfsNode *child = ifs_store_get(fx->store, ids[i]);

            g_assert_true(child == ifs_node_child_at(dir, i));
            ifs_node_unref(child);
            ifs_store_forget(fx->store, ids[i], 1);
            g_assert_true(ifs_store_kernel_holds(fx->store, ids[i]));
        }
        for (guint i = 0; i < n; i++)
            ifs_store_forget(fx->store, ids[i], 1);
        for (guint i = 0; i < n; i++)
            g_assert_false(ifs_store_kernel_holds(fx->store, ids[i]));
        ifs_store_forget(fx->store, dir_id, 1);
        ifs_store_forget(fx->store, acct_id, 1);
        g_assert_false(ifs_store_kernel_holds(fx->store, dir_id));
        g_assert_null(ifs_store_path(fx->store, dir_id));
        g_free(ids);
        ifs_node_unref(dir);
        ifs_node_unref(acct);
    }
    ifs_store_forget(fx->store, id, 1);
    g_assert_false(ifs_store_kernel_holds(fx->store, id));
    ifs_node_unref(got);
    ifs_node_unref(first);
    ifs_node_unref(second);
}

static void test_removed_resource_is_gone_from_get(Fixture *fx, gconstpointer d)
{
    IfsNode *vps, *acct, *dir, *name, *got;
    guint64 vps_id, acct_id, dir_id, name_id, parent_id;

    (void)d;
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    start(fx);
    vps = lookup(fx->store, IFS_ROOT_INO, "vps", &vps_id);
    acct = lookup(fx->store, vps_id, ACCOUNT, &acct_id);
    dir = lookup(fx->store, acct_id, "vps_2", &dir_id);
    name = lookup(fx->store, dir_id, "name", &name_id);
    g_assert_nonnull(name);
    got = ifs_store_get(fx->store, name_id);
    g_assert_true(got == name);
    ifs_node_unref(got);
    got = ifs_store_parent(fx->store, name_id, &parent_id);
    g_assert_true(got == dir);
    g_assert_cmpuint(parent_id, ==, dir_id);
    ifs_node_unref(got);

    g_assert_true(fake_provider_remove(fx->fake, "vps", "vps_2"));
    g_assert_cmpint(refresh(fx), ==, 0);

    /* Still held by the kernel, but no longer in the tree. */
    g_assert_true(ifs_store_kernel_holds(fx->store, dir_id));
    g_assert_null(ifs_store_get(fx->store, dir_id));
    g_assert_null(ifs_store_get(fx->store, name_id));
    g_assert_null(ifs_store_parent(fx->store, name_id, &parent_id));
    ifs_store_forget(fx->store, name_id, 1);
    ifs_store_forget(fx->store, dir_id, 1);
    g_assert_false(ifs_store_kernel_holds(fx->store, name_id));
    g_assert_false(ifs_store_kernel_holds(fx->store, dir_id));
    g_assert_null(ifs_store_get(fx->store, dir_id));
    /* Its parent is still found through the registry. */
    got = ifs_store_get(fx->store, acct_id);
    g_assert_nonnull(got);
    g_assert_cmpstr(ifs_node_name(got), ==, ACCOUNT);
    ifs_node_unref(got);

    ifs_store_forget(fx->store, acct_id, 1);
    ifs_store_forget(fx->store, vps_id, 1);
    ifs_node_unref(name);
    ifs_node_unref(dir);
    ifs_node_unref(acct);
    ifs_node_unref(vps);
}

#define CHURN_ROUNDS 40
#define CHURN_KEPT 3

typedef struct {
    guint64 id;
    char *path;
} Held;

static void held_clear(gpointer data)
{
    g_free(((Held *)data)->path);
}

/* Looks up resource `id` and lists its directory as readdirplus would;
 * adds every node id the kernel now holds, and its path, to `held`. */
static void hold_resource(IfsStore *store, guint64 acct_id, const char *id, GArray *held)
{
    Held h;
    IfsNode *dir = lookup(store, acct_id, id, &h.id);
    guint64 dir_id = h.id;

    g_assert_nonnull(dir);
    h.path = ifs_store_path(store, dir_id);
    g_array_append_val(held, h);
    for (guint i = 0; i < ifs_node_n_children(dir); i++) {
        h.id = ifs_store_hand_out(store, dir_id, ifs_node_child_at(dir, i));
        g_assert_cmpuint(h.id, !=, 0);
        h.path = ifs_store_path(store, h.id);
        g_array_append_val(held, h);
    }
    ifs_node_unref(dir);
}

static void test_churn_leaves_only_what_is_held(Fixture *fx, gconstpointer d)
{
    GArray *held[CHURN_ROUNDS];
    GArray *forgotten = g_array_new(FALSE, FALSE, sizeof(guint64));
    IfsNode *vps, *acct;
    guint64 vps_id, acct_id;
    GHashTable *live_paths = g_hash_table_new(g_str_hash, g_str_equal);

    (void)d;
    start(fx);
    vps = lookup(fx->store, IFS_ROOT_INO, "vps", &vps_id);
    acct = lookup(fx->store, vps_id, ACCOUNT, &acct_id);
    for (guint r = 0; r < CHURN_ROUNDS; r++) {
        char *id = g_strdup_printf("vps_%u", r);
        char *json =
            g_strdup_printf("{\"id\": \"%s\", \"round\": %u, \"nested\": {\"x\": 1}}", id, r);

        fake_provider_put(fx->fake, "vps", id, json);
        if (r >= CHURN_KEPT) {
            char *old = g_strdup_printf("vps_%u", r - CHURN_KEPT);
            g_assert_true(fake_provider_remove(fx->fake, "vps", old));
            g_free(old);
        }
        g_assert_cmpint(refresh(fx), ==, 0);
        held[r] = g_array_new(FALSE, FALSE, sizeof(Held));
        g_array_set_clear_func(held[r], held_clear);
        hold_resource(fx->store, acct_id, id, held[r]);
        if (r >= CHURN_KEPT) {
            /* The kernel lets go of what left the tree. */
            GArray *gone = held[r - CHURN_KEPT];
            for (guint i = gone->len; i-- > 0;) {
                guint64 gone_id = g_array_index(gone, Held, i).id;

                ifs_store_forget(fx->store, gone_id, 1);
                g_array_append_val(forgotten, gone_id);
            }
            g_array_unref(gone);
            held[r - CHURN_KEPT] = NULL;
        }
        g_free(json);
        g_free(id);
    }

    /* The registry holds what the kernel holds and nothing of the rest:
     * a forgotten node id names nothing, or (numbers are reused once
     * forgotten) something the kernel holds now. */
    for (guint r = CHURN_ROUNDS - CHURN_KEPT; r < CHURN_ROUNDS; r++)
        for (guint i = 0; i < held[r]->len; i++)
            g_hash_table_add(live_paths, g_array_index(held[r], Held, i).path);
    for (guint i = 0; i < forgotten->len; i++) {
        char *path = ifs_store_path(fx->store, g_array_index(forgotten, guint64, i));

        if (path && !g_hash_table_contains(live_paths, path))
            g_error("forgotten node id %" G_GUINT64_FORMAT " still names %s",
                    g_array_index(forgotten, guint64, i), path);
        g_free(path);
    }
    for (guint r = CHURN_ROUNDS - CHURN_KEPT; r < CHURN_ROUNDS; r++) {
        for (guint i = 0; i < held[r]->len; i++) {
            Held *h = &g_array_index(held[r], Held, i);
            uint64_t ino = 0;
            IfsNode *got = ifs_store_stat(fx->store, h->id, &ino);
            char *path = ifs_store_path(fx->store, h->id);

            g_assert_true(ifs_store_kernel_holds(fx->store, h->id));
            g_assert_nonnull(got);
            g_assert_cmpuint(ino, ==, ino_of(h->path));
            g_assert_cmpstr(path, ==, h->path);
            g_free(path);
            ifs_node_unref(got);
        }
        /* Children first: the kernel holds a directory while it holds
         * anything in it. */
        for (guint i = held[r]->len; i-- > 0;)
            ifs_store_forget(fx->store, g_array_index(held[r], Held, i).id, 1);
        for (guint i = 0; i < held[r]->len; i++)
            g_assert_false(ifs_store_kernel_holds(fx->store, g_array_index(held[r], Held, i).id));
    }
    g_hash_table_destroy(live_paths);
    for (guint r = CHURN_ROUNDS - CHURN_KEPT; r < CHURN_ROUNDS; r++)
        g_array_unref(held[r]);
    g_assert_cmpuint(forgotten->len, >, (CHURN_ROUNDS - CHURN_KEPT) * 4);
    ifs_store_forget(fx->store, acct_id, 1);
    ifs_store_forget(fx->store, vps_id, 1);
    g_assert_false(ifs_store_kernel_holds(fx->store, acct_id));
    g_array_unref(forgotten);
    ifs_node_unref(acct);
    ifs_node_unref(vps);
}

/* ===================================================================== */
/* The disk cache                                                        */

static void make_cache_dir(Fixture *fx)
{
    fx->cache_dir = g_dir_make_tmp("infrafs-store-XXXXXX", NULL);
    g_assert_nonnull(fx->cache_dir);
}

/* Same names, types, bytes and mtimes below `path` in both stores, but
 * for control files' mtimes (they are rebuilt at every start, not kept). */
static void assert_same_tree(const IfsNode *a, const IfsNode *b, const char *path)
{
    if (strcmp(ifs_node_name(a), ifs_node_name(b)) != 0 || a->type != b->type)
        g_error("%s differs: %s/%d vs %s/%d", path, ifs_node_name(a), a->type, ifs_node_name(b),
                b->type);
    if (a->type != IFS_NODE_CONTROL && a->mtime != b->mtime)
        g_error("%s: mtime %ld vs %ld", path, (long)a->mtime, (long)b->mtime);
    if (a->type == IFS_NODE_DIR) {
        g_assert_cmpuint(ifs_node_n_children(a), ==, ifs_node_n_children(b));
        for (guint i = 0; i < ifs_node_n_children(a); i++) {
            char *child = ifs_path_join(path, ifs_node_name(ifs_node_child_at(a, i)));
            assert_same_tree(ifs_node_child_at(a, i), ifs_node_child_at(b, i), child);
            g_free(child);
        }
    } else {
        char *ta = node_text(a);
        char *tb = node_text(b);
        if (strcmp(ta, tb) != 0)
            g_error("%s: \"%s\" vs \"%s\"", path, ta, tb);
        g_free(ta);
        g_free(tb);
    }
}

static void test_offline_store_serves_the_saved_tree(Fixture *fx, gconstpointer d)
{
    IfsStore *offline;
    IfsNode *saved, *served;
    guint lists;

    (void)d;
    make_cache_dir(fx);
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->fake, "vps", "vps_2", VPS_2);
    fx->store = new_store(fx, fx->cache_dir, FALSE);
    /* Saved after every good refresh: this one's data is what comes back. */
    fake_provider_set_field(fx->fake, "vps", "vps_2", "name", "\"db-02\"");
    g_assert_cmpint(refresh(fx), ==, 0);
    lists = fake_provider_calls(fx->fake, FAKE_LIST);

    offline = new_store(fx, fx->cache_dir, TRUE);

    /* Each resource's directory, as saved. (The kind directories above
     * them are the store's own, built at its start.) */
    saved = node_at(fx->store, "vps/acct");
    served = node_at(offline, "vps/acct");
    g_assert_cmpuint(ifs_node_n_children(saved), ==, 2);
    g_assert_cmpuint(ifs_node_n_children(served), ==, 2);
    for (guint i = 0; i < 2; i++) {
        IfsNode *a = ifs_node_child_at(saved, i);
        char *path = ifs_path_join("vps/acct", ifs_node_name(a));

        assert_same_tree(a, ifs_node_child_at(served, i), path);
        g_free(path);
    }
    assert_text(offline, "vps/acct/vps_2/name", "db-02\n");
    assert_text(offline, "providers/acct/state", "offline\n");
    /* Offline sends nothing: no list, and no action either. */
    g_assert_cmpint(write_node(offline, "vps/acct/vps_1/power", "stop\n"), ==, EROFS);
    g_assert_cmpint(refresh_store(offline), ==, EROFS);
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_LIST), ==, lists);
    g_assert_cmpuint(fake_provider_calls(fx->fake, FAKE_ACT), ==, 0);
    assert_text(offline, "vps/acct/vps_1/power_state", "running\n");
    ifs_node_unref(saved);
    ifs_node_unref(served);
    ifs_store_free(offline);
}

/* Only for a tree nobody else holds yet. */
static void set_mtime_everywhere(IfsNode *n, time_t mtime)
{
    n->mtime = mtime;
    for (guint i = 0; n->type == IFS_NODE_DIR && i < ifs_node_n_children(n); i++)
        set_mtime_everywhere(ifs_node_child_at(n, i), mtime);
}

/* The cache written as an earlier run would have: every file of vps_1 last
 * changed at `mtime`. */
static void save_old_copy(Fixture *fx, const char *json, time_t mtime)
{
    json_object *obj = json_tokener_parse(json);
    IfsResource *r = ifs_resource_new("vps", "vps_1", json_object_get(obj));
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct/vps_1");
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
    char *path = ifs_cache_file(fx->cache_dir, ACCOUNT);
    IfsError *err = NULL;
    IfsNode *node;

    ifs_json_fill_dir(b, obj, NULL, NULL);
    node = ifs_dir_builder_finish(b, mtime);
    set_mtime_everywhere(node, mtime);
    g_ptr_array_add(items, ifs_cache_item_new(r, node));
    g_assert_true(ifs_cache_save(path, fx->cfg, 1000, items, &err));
    g_assert_null(err);
    g_ptr_array_unref(items);
    ifs_node_unref(node);
    ifs_resource_unref(r);
    json_object_put(obj);
    g_free(path);
}

static time_t mtime_at(IfsStore *store, const char *path)
{
    IfsNode *n = node_at(store, path);
    time_t t;

    g_assert_nonnull(n);
    t = n->mtime;
    ifs_node_unref(n);
    return t;
}

static void test_mtimes_survive_remounts_and_refreshes(Fixture *fx, gconstpointer d)
{
    const time_t old = 1000000000; /* 2001: no clock of this test says it */
    IfsStore *offline;
    time_t before = node_clock();
    time_t changed_at;

    (void)d;
    make_cache_dir(fx);
    save_old_copy(fx, VPS_1, old);
    /* Since then, only power_state changed at the API. */
    fake_provider_put(fx->fake, "vps", "vps_1", VPS_1);
    fake_provider_set_field(fx->fake, "vps", "vps_1", "power_state", "\"stopped\"");
    fx->store = new_store(fx, fx->cache_dir, FALSE);

    g_assert_cmpint(mtime_at(fx->store, "vps/acct/vps_1/name"), ==, old);
    g_assert_cmpint(mtime_at(fx->store, "vps/acct/vps_1/location/city"), ==, old);
    changed_at = mtime_at(fx->store, "vps/acct/vps_1/power_state");
    g_assert_cmpint(changed_at, >=, before);
    assert_text(fx->store, "vps/acct/vps_1/power_state", "stopped\n");

    /* What the online store saved is what an offline one serves. */
    offline = new_store(fx, fx->cache_dir, TRUE);
    g_assert_cmpint(mtime_at(offline, "vps/acct/vps_1/name"), ==, old);
    g_assert_cmpint(mtime_at(offline, "vps/acct/vps_1/power_state"), ==, changed_at);
    assert_text(offline, "vps/acct/vps_1/power_state", "stopped\n");
    ifs_store_free(offline);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/store/refresh/first-publishes-a-directory-per-resource",
        test_first_refresh_publishes_a_directory_per_resource);
    ADD("/store/refresh/unchanged-keeps-nodes-and-invalidates-nothing",
        test_unchanged_refresh_keeps_nodes_and_invalidates_nothing);
    ADD("/store/refresh/changed-field-invalidates-that-file-only",
        test_changed_field_invalidates_that_file_only);
    ADD("/store/refresh/removed-resource-invalidates-its-entry",
        test_removed_resource_invalidates_its_entry);
    ADD("/store/refresh/added-resource-invalidates-the-kind-directory",
        test_added_resource_invalidates_the_kind_directory);
    ADD("/store/failure/failed-list-keeps-last-good-data-and-says-why",
        test_failed_list_keeps_last_good_data_and_says_why);
    ADD("/store/failure/partial-list-is-shown-with-what-failed",
        test_partial_list_is_shown_with_what_failed);
    ADD("/store/failure/first-refresh-failure-shows-error", test_first_refresh_failure_shows_error);
    ADD("/store/failure/unusable-resources-are-skipped-and-named",
        test_unusable_resources_are_skipped_and_named);
    ADD("/store/failure/too-many-resources-fail-the-refresh",
        test_too_many_resources_fail_the_refresh);
    ADD("/store/failure/provider-that-cannot-open-says-why",
        test_account_whose_provider_cannot_open_says_why);
    ADD("/store/control/write-acts-once-and-shows-the-result",
        test_control_write_acts_once_and_shows_the_result);
    ADD("/store/control/refused-command-makes-no-call", test_refused_command_makes_no_call);
    ADD("/store/control/failed-action-answers-its-errno-and-says-why",
        test_failed_action_answers_its_errno_and_says_why);
    ADD("/store/control/delete-removes-the-resource-before-write-returns",
        test_delete_removes_the_resource_before_write_returns);
    ADD("/store/control/action-names-the-resource-by-its-raw-id",
        test_action_names_the_resource_by_its_raw_id);
    ADD("/store/control/action-without-its-result-is-re-read",
        test_action_without_its_result_is_re_read);
    ADD("/store/ordering/action-result-wins-over-a-list-started-before-it",
        test_action_result_wins_over_a_list_started_before_it);
    ADD("/store/ordering/refresh-all-refreshes-without-waiting",
        test_refresh_all_refreshes_without_waiting);
    ADD("/store/ordering/shutdown-ends-a-write-waiting-for-a-refresh",
        test_shutdown_ends_a_write_waiting_for_a_refresh);
    ADD("/store/inodes/lookups-are-counted-and-forget-drops-them",
        test_lookups_are_counted_and_forget_drops_them);
    ADD("/store/inodes/removed-resource-is-gone-from-get", test_removed_resource_is_gone_from_get);
    ADD("/store/inodes/churn-leaves-only-what-is-held", test_churn_leaves_only_what_is_held);
    ADD("/store/cache/offline-store-serves-the-saved-tree",
        test_offline_store_serves_the_saved_tree);
    ADD("/store/cache/mtimes-survive-remounts-and-refreshes",
        test_mtimes_survive_remounts_and_refreshes);
    return g_test_run();
}
