/* Building snapshots (build.c): resources and extras in, nodes out, with
 * no publisher and no thread. The files and their exact sizes, what an
 * unchanged resource keeps, what our extras add, what last_error says of
 * resources that cannot be shown, and what is handed to the saver. */
#include "pipeline_util.h"

#include <string.h>

#include "infrafs/jsontree.h"
#include "test_util.h"

#define VPS_1                                                                                      \
    "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"running\", "                     \
    "\"cpu_cores\": 2, \"location\": {\"city\": \"Stockholm\"}, \"notes\": null}"
#define VPS_2 "{\"id\": \"vps_2\", \"name\": \"db-01\"}"

typedef struct {
    Pipeline p;
    AccountBuild *ab;
    IfsNode *root; /* of the last build() */
} Fixture;

static void setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_init(&fx->p, NULL);
    fx->ab = account_build_new(fx->p.account);
    fx->root = NULL;
}

static void teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    if (fx->root)
        ifs_node_unref(fx->root);
    account_build_free(fx->ab);
    pipeline_clear(&fx->p);
}

static void build(Fixture *fx)
{
    IfsNode *files[1];

    if (fx->root)
        ifs_node_unref(fx->root);
    build_account(fx->ab);
    files[0] = ifs_line_log_node(fx->p.model.action_log);
    fx->root = build_root(&fx->ab, 1, files, G_N_ELEMENTS(files));
}

static void assert_text(Fixture *fx, const char *path, const char *expected)
{
    char *text = tree_text(fx->root, path);

    g_assert_cmpstr(text, ==, expected);
    g_free(text);
}

static void assert_names(Fixture *fx, const char *path, const char *expected)
{
    char *names = tree_names(fx->root, path);

    g_assert_cmpstr(names, ==, expected);
    g_free(names);
}

/* The node at `path` in the last build, not referenced (the root holds it). */
static const IfsNode *node(Fixture *fx, const char *path)
{
    IfsNode *n = tree_node(fx->root, path);

    g_assert_nonnull(n);
    ifs_node_unref(n);
    return n;
}

static void test_resources_become_directories_of_files(Fixture *fx, gconstpointer d)
{
    json_object *object = json_tokener_parse(VPS_1);
    size_t pretty_len;
    char *pretty = ifs_json_pretty(object, &pretty_len);

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);
    build(fx);
    assert_names(fx, "", "README actions providers vps");
    assert_names(fx, "vps", "acct");
    assert_names(fx, "vps/acct", "vps_1 vps_2");
    /* Sorted by name: ours (controls, last_action, json) among the fields. */
    assert_names(fx, "vps/acct/vps_1",
                 "cpu_cores delete id json last_action location name notes power power_state");
    assert_text(fx, "vps/acct/vps_1/name", "web-01\n");
    g_assert_cmpuint(ifs_node_size(node(fx, "vps/acct/vps_1/name")), ==, 7);
    assert_text(fx, "vps/acct/vps_1/cpu_cores", "2\n");
    assert_text(fx, "vps/acct/vps_1/location/city", "Stockholm\n");
    assert_text(fx, "vps/acct/vps_1/notes", "");
    assert_text(fx, "vps/acct/vps_1/last_action", "");
    assert_text(fx, "vps/acct/vps_1/power", "start stop restart\n");
    g_assert_cmpint(node(fx, "vps/acct/vps_1/power")->type, ==, IFS_NODE_CONTROL);
    g_assert_true(ifs_node_target(node(fx, "vps/acct/vps_1/power"))->account == fx->p.account);
    /* json: its size known before it is rendered, and exact. */
    g_assert_cmpuint(ifs_node_size(node(fx, "vps/acct/vps_1/json")), ==, pretty_len);
    assert_text(fx, "vps/acct/vps_1/json", pretty);
    assert_names(fx, "vps/acct/vps_2", "delete id json last_action name power");

    assert_names(fx, "providers/acct",
                 "budget last_action last_error last_refresh next_refresh progress "
                 "rate_limit_remaining refresh refresh_interval requests state type url");
    assert_text(fx, "providers/acct/type", "fake\n");
    assert_text(fx, "providers/acct/url", "fake://acct\n");
    assert_text(fx, "providers/acct/state", "stale\n");
    assert_text(fx, "providers/acct/last_refresh", "");
    assert_text(fx, "providers/acct/refresh_interval", "3600\n");
    assert_text(fx, "providers/acct/last_error", "first refresh not finished yet\n");
    assert_text(fx, "providers/acct/refresh", "1\n");
    g_assert_true(ifs_node_target(node(fx, "providers/acct/refresh")) ==
                  fx->p.account->refresh_target);
    g_free(pretty);
    json_object_put(object);
}

static void test_unchanged_resources_keep_their_nodes(Fixture *fx, gconstpointer d)
{
    IfsNode *vps1, *vps2, *vps2_id, *kind_dir; /* referenced: compared after rebuilds */

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);
    build(fx);
    vps1 = ifs_node_ref((IfsNode *)node(fx, "vps/acct/vps_1"));
    vps2 = ifs_node_ref((IfsNode *)node(fx, "vps/acct/vps_2"));
    vps2_id = ifs_node_ref((IfsNode *)node(fx, "vps/acct/vps_2/id"));
    kind_dir = ifs_node_ref((IfsNode *)node(fx, "vps/acct"));

    /* Listed again as new resources, vps_1 the same text, vps_2 changed. */
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_2",
                           "{\"id\": \"vps_2\", \"name\": \"db-02\"}", NULL);
    build(fx);
    g_assert_true(node(fx, "vps/acct/vps_1") == vps1);
    g_assert_false(node(fx, "vps/acct/vps_2") == vps2);
    /* A rebuilt resource's unchanged files are copied into its new block
     * as they were, mtime included. */
    g_assert_false(node(fx, "vps/acct/vps_2/id") == vps2_id);
    g_assert_true(ifs_node_same_content(node(fx, "vps/acct/vps_2/id"), vps2_id));
    g_assert_cmpint(node(fx, "vps/acct/vps_2/id")->mtime, ==, vps2_id->mtime);
    assert_text(fx, "vps/acct/vps_2/name", "db-02\n");
    g_assert_false(node(fx, "vps/acct") == kind_dir);
    ifs_node_unref(kind_dir);

    /* Nothing changed at all: the very same kind directory. */
    kind_dir = ifs_node_ref((IfsNode *)node(fx, "vps/acct"));
    build(fx);
    g_assert_true(node(fx, "vps/acct") == kind_dir);
    g_assert_cmpuint(g_hash_table_size(fx->ab->built), ==, 2);

    /* A resource gone is forgotten. */
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, NULL);
    build(fx);
    assert_names(fx, "vps/acct", "vps_1");
    g_assert_cmpuint(g_hash_table_size(fx->ab->built), ==, 1);
    ifs_node_unref(kind_dir);
    ifs_node_unref(vps2_id);
    ifs_node_unref(vps2);
    ifs_node_unref(vps1);
}

static void test_extras_are_shown_and_rebuild_only_their_resource(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    IfsNode *vps1, *vps2; /* referenced: compared after a rebuild */
    IfsControlTarget *power;
    Extras *x;

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);
    build(fx);
    vps1 = ifs_node_ref((IfsNode *)node(fx, "vps/acct/vps_1"));
    vps2 = ifs_node_ref((IfsNode *)node(fx, "vps/acct/vps_2"));
    power = ifs_node_target(node(fx, "vps/acct/vps_1/power"));

    g_mutex_lock(&a->lock);
    x = extras_get(a, "vps/vps_1");
    x->last_action = g_strdup("2024-01-01T00:00:00Z stop ok 200 accepted stop\n");
    x->gen++;
    g_mutex_unlock(&a->lock);
    build(fx);
    assert_text(fx, "vps/acct/vps_1/last_action",
                "2024-01-01T00:00:00Z stop ok 200 accepted stop\n");
    g_assert_false(node(fx, "vps/acct/vps_1") == vps1);
    g_assert_true(node(fx, "vps/acct/vps_2") == vps2);
    /* The control file keeps its target, so it stays the same node. */
    g_assert_true(ifs_node_target(node(fx, "vps/acct/vps_1/power")) == power);
    ifs_node_unref(vps1);
    ifs_node_unref(vps2);
}

static void test_an_operation_has_its_directory(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    Operation *op;
    const IfsNode *wait;

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, NULL);
    op = pipeline_start_operation(&fx->p, "job-7", "https://api/jobs/7?token=" PIPE_SECRET);
    build(fx);
    assert_names(fx, "vps/acct/vps_1/operation", "job_id poll_url status wait");
    assert_text(fx, "vps/acct/vps_1/operation/status", "queued\n");
    assert_text(fx, "vps/acct/vps_1/operation/job_id", "job-7\n");
    {
        char *url = tree_text(fx->root, "vps/acct/vps_1/operation/poll_url");
        g_assert_null(strstr(url, PIPE_SECRET));
        g_assert_true(g_str_has_prefix(url, "https://api/jobs/7?token="));
        g_free(url);
    }
    wait = node(fx, "vps/acct/vps_1/operation/wait");
    g_assert_cmpint(wait->type, ==, IFS_NODE_WAIT);
    g_assert_false(ifs_node_has_content(wait)); /* pending: nothing to read yet */
    g_assert_true(ifs_node_target(wait)->op == op);

    /* Shown final: the wait file has its text. */
    g_mutex_lock(&fx->p.model.op_lock);
    g_free(op->status_text);
    op->status_text = g_strdup("completed");
    op->state = IFS_OP_COMPLETED;
    op->shown_final = TRUE;
    g_mutex_unlock(&fx->p.model.op_lock);
    g_mutex_lock(&a->lock);
    extras_get(a, "vps/vps_1")->gen++;
    g_mutex_unlock(&a->lock);
    build(fx);
    assert_text(fx, "vps/acct/vps_1/operation/wait", "completed\n");
    assert_text(fx, "vps/acct/vps_1/operation/status", "completed\n");
    operation_unref(op);
}

static void test_unusable_resources_are_skipped_and_named(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    IfsResource *other = ifs_resource_new("volumes", "vol_1", json_object_new_object());
    char *last_error;

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_1", VPS_2, NULL);
    ifs_resource_seal(other);
    g_mutex_lock(&a->lock);
    g_ptr_array_add(a->resources, other);
    g_mutex_unlock(&a->lock);
    build(fx);
    assert_names(fx, "vps/acct", "vps_1");
    assert_text(fx, "vps/acct/vps_1/name", "web-01\n"); /* the first of the two */
    last_error = tree_text(fx->root, "providers/acct/last_error");
    g_assert_cmpstr(last_error, ==,
                    "first refresh not finished yet; skipped vps 'vps_1': duplicate id; "
                    "skipped volumes 'vol_1': unknown kind; \n");
    g_free(last_error);
}

static void test_a_wanted_save_gets_what_was_built(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;

    (void)d;
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);
    build(fx);
    g_assert_null(a->save_items);
    a->save_wanted = TRUE;
    build(fx);
    g_assert_false(a->save_wanted);
    g_assert_nonnull(a->save_items);
    g_assert_cmpuint(a->save_items->len, ==, 2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/build/files", test_resources_become_directories_of_files);
    ADD("/build/unchanged-keep-nodes", test_unchanged_resources_keep_their_nodes);
    ADD("/build/extras", test_extras_are_shown_and_rebuild_only_their_resource);
    ADD("/build/operation", test_an_operation_has_its_directory);
    ADD("/build/skipped", test_unusable_resources_are_skipped_and_named);
    ADD("/build/save", test_a_wanted_save_gets_what_was_built);
    return g_test_run();
}
