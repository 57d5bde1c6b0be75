/* Refreshing (refresh.c), one refresh at a time in the test's thread on
 * the fake: a list is merged and published; a failed one keeps the last
 * good data and says why, with the retry it sets; an action's result wins
 * over a list read before it; unchanged resources stay where they were;
 * extras of resources gone are dropped. And the refresher threads. */
#include "pipeline_util.h"

#include <errno.h>
#include <string.h>

#include "test_util.h"

#define VPS_1 "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"running\"}"
#define VPS_2 "{\"id\": \"vps_2\", \"name\": \"db-01\"}"

typedef struct {
    Pipeline p;
} Fixture;

static void setup_with(Fixture *fx, const IfsStoreOptions *opts)
{
    pipeline_init(&fx->p, opts);
    fake_provider_put(fx->p.fake, "vps", "vps_1", VPS_1);
    fake_provider_put(fx->p.fake, "vps", "vps_2", VPS_2);
    pipeline_start_publisher(&fx->p);
}

static void setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    setup_with(fx, NULL);
}

static void teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_clear(&fx->p);
}

static int refresh(Fixture *fx)
{
    return refresh_run(&fx->p.refreshers, fx->p.account);
}

/* The account's current resource of id `id` (referenced), or NULL. */
static IfsResource *resource(Fixture *fx, const char *id)
{
    Account *a = fx->p.account;
    IfsResource *found = NULL;

    g_mutex_lock(&a->lock);
    for (guint i = 0; i < a->resources->len && !found; i++) {
        IfsResource *r = g_ptr_array_index(a->resources, i);
        if (strcmp(r->id, id) == 0)
            found = ifs_resource_ref(r);
    }
    g_mutex_unlock(&a->lock);
    return found;
}

static gboolean resource_says(Fixture *fx, const char *id, const char *part)
{
    IfsResource *r = resource(fx, id);
    gboolean says;

    g_assert_nonnull(r);
    says = strstr(r->text, part) != NULL;
    ifs_resource_unref(r);
    return says;
}

static void test_a_refresh_merges_and_publishes(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    gint64 before = store_now();

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    g_assert_cmpstr(a->state, ==, "ok");
    g_assert_cmpstr(a->last_error, ==, "");
    g_assert_cmpuint(a->resources->len, ==, 2);
    g_assert_cmpint(a->last_refresh, >=, before);
    g_assert_cmpint(a->next_refresh, >=, before + 3600);
    g_assert_cmpint(a->next_refresh, <=, store_now() + 3600);
    g_assert_true(a->ever_ok);
    assert_published(&fx->p, "vps/acct/vps_1/name", "web-01\n");
    assert_published(&fx->p, "providers/acct/state", "ok\n");
}

static void test_a_failed_list_keeps_the_last_good_data(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    gint64 after;

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    fake_provider_remove(fx->p.fake, "vps", "vps_2");
    fake_provider_fail_lists(fx->p.fake, EIO, "the API is down", FALSE);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed: the API is down*");
    g_assert_cmpint(refresh(fx), ==, EIO);
    g_test_assert_expected_messages();
    after = store_now();
    g_assert_cmpstr(a->state, ==, "stale");
    g_assert_cmpstr(a->last_error, ==, "the API is down");
    g_assert_cmpuint(a->failures, ==, 1);
    g_assert_cmpuint(a->resources->len, ==, 2);
    /* Retried after 5 s +-20 %, not after the hour. */
    g_assert_cmpint(a->next_refresh, >=, after + 3);
    g_assert_cmpint(a->next_refresh, <=, after + 7);
    assert_published(&fx->p, "vps/acct/vps_2/name", "db-01\n");
    assert_published(&fx->p, "providers/acct/state", "stale\n");
    assert_published(&fx->p, "providers/acct/last_error", "the API is down\n");

    /* A rejected key is not retried on its own. */
    fake_provider_fail_lists(fx->p.fake, EACCES, "unauthorized (HTTP 401)", FALSE);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*");
    g_assert_cmpint(refresh(fx), ==, EACCES);
    g_test_assert_expected_messages();
    g_assert_cmpstr(a->state, ==, "unauthorized");
    g_assert_cmpint(a->next_refresh, ==, 0);
    g_assert_cmpuint(a->failures, ==, 2);

    /* Back: the list is taken whole, failures forgotten. */
    fake_provider_fail_lists(fx->p.fake, 0, NULL, FALSE);
    g_assert_cmpint(refresh(fx), ==, 0);
    g_assert_cmpuint(a->failures, ==, 0);
    g_assert_cmpuint(a->resources->len, ==, 1);
    g_assert_null(published_node(&fx->p, "vps/acct/vps_2"));
}

static void test_a_first_failure_is_an_error(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_fail_lists(fx->p.fake, EIO, "the API is down", FALSE);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*refresh failed*");
    g_assert_cmpint(refresh(fx), ==, EIO);
    g_test_assert_expected_messages();
    g_assert_cmpstr(fx->p.account->state, ==, "error");
    g_assert_cmpuint(fx->p.account->resources->len, ==, 0);
}

typedef struct {
    Fixture *fx;
    int errnum;
} RefreshCall;

static gpointer refresh_in_thread(gpointer data)
{
    RefreshCall *call = data;

    call->errnum = refresh(call->fx);
    return NULL;
}

static void test_an_action_result_wins_over_an_older_list(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    IfsResource *after_action = pipeline_resource("vps_1",
                                                  "{\"id\": \"vps_1\", \"name\": \"web-01\", "
                                                  "\"power_state\": \"stopped\"}");
    RefreshCall call = {fx, -1};
    GThread *thread;

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    /* A list reads the API, then an action changes vps_1 before the list
     * is merged. */
    fake_provider_hold_lists(fx->p.fake, TRUE);
    thread = g_thread_new("refresh", refresh_in_thread, &call);
    g_assert_true(fake_provider_wait_list_held(fx->p.fake, 5000));
    g_mutex_lock(&a->lock);
    account_replace_resource(a, "vps", "vps_1", after_action);
    g_mutex_unlock(&a->lock);
    fake_provider_hold_lists(fx->p.fake, FALSE);
    g_thread_join(thread);
    g_assert_cmpint(call.errnum, ==, 0);
    g_assert_true(resource_says(fx, "vps_1", "\"stopped\""));
    g_assert_true(resource_says(fx, "vps_2", "db-01"));
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "stopped\n");
    /* The next list started after the action: it is taken as it is. */
    g_assert_cmpint(refresh(fx), ==, 0);
    g_assert_true(resource_says(fx, "vps_1", "\"running\""));
    g_assert_cmpuint(g_hash_table_size(a->changed_at), ==, 0);
    ifs_resource_unref(after_action);
}

static void test_unchanged_resources_stay_where_they_were(Fixture *fx, gconstpointer d)
{
    IfsResource *vps1, *vps2, *now;

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    vps1 = resource(fx, "vps_1");
    vps2 = resource(fx, "vps_2");
    fake_provider_set_field(fx->p.fake, "vps", "vps_2", "name", "\"db-02\"");
    g_assert_cmpint(refresh(fx), ==, 0);
    now = resource(fx, "vps_1");
    g_assert_true(now == vps1);
    ifs_resource_unref(now);
    now = resource(fx, "vps_2");
    g_assert_false(now == vps2);
    ifs_resource_unref(now);
    ifs_resource_unref(vps1);
    ifs_resource_unref(vps2);
}

static void test_too_many_resources_keep_the_last_good_data(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    fake_provider_put(fx->p.fake, "vps", "vps_3", "{\"id\": \"vps_3\"}");
    a->max_resources = 2;
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING, "*more than max_resources (2)*");
    g_assert_cmpint(refresh(fx), ==, EIO);
    g_test_assert_expected_messages();
    g_assert_cmpuint(a->resources->len, ==, 2);
    g_assert_nonnull(strstr(a->last_error, "listed 3 resources"));
}

static void test_extras_of_resources_gone_are_dropped(Fixture *fx, gconstpointer d)
{
    Account *a = fx->p.account;
    Operation *op;

    (void)d;
    g_assert_cmpint(refresh(fx), ==, 0);
    fake_provider_put(fx->p.fake, "vps", "vps_3", "{\"id\": \"vps_3\"}");
    g_assert_cmpint(refresh(fx), ==, 0);
    op = operation_new(a, "vps", "vps_3", g_strdup("job-1"), g_strdup("fake://poll/job-1"),
                       g_strdup("queued"));
    g_mutex_lock(&a->lock);
    extras_get(a, "vps/vps_1")->last_action = g_strdup("kept\n");
    extras_get(a, "vps/vps_2")->last_action = g_strdup("dropped\n");
    extras_get(a, "vps/vps_3")->op = operation_ref(op);
    g_mutex_unlock(&a->lock);
    fake_provider_remove(fx->p.fake, "vps", "vps_2");
    fake_provider_remove(fx->p.fake, "vps", "vps_3");
    g_assert_cmpint(refresh(fx), ==, 0);
    g_assert_true(g_hash_table_contains(a->extras, "vps/vps_1"));
    g_assert_false(g_hash_table_contains(a->extras, "vps/vps_2"));
    /* Its operation is still running: readers wait for its end. */
    g_assert_true(g_hash_table_contains(a->extras, "vps/vps_3"));
    op->state = IFS_OP_COMPLETED;
    g_assert_cmpint(refresh(fx), ==, 0);
    g_assert_false(g_hash_table_contains(a->extras, "vps/vps_3"));
    operation_unref(op);
}

static void test_offline_sends_no_request(Fixture *fx, gconstpointer d)
{
    IfsStoreOptions opts = {.refresh_s = 3600, .offline = TRUE};

    (void)d;
    setup_with(fx, &opts);
    g_assert_cmpint(refresh(fx), ==, EROFS);
    g_assert_cmpstr(fx->p.account->state, ==, "offline");
    g_assert_cmpint(fx->p.account->next_refresh, ==, 0);
    g_assert_nonnull(strstr(fx->p.account->last_error, "mounted with -o offline"));
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_LIST), ==, 0);
}

static void test_refresher_threads_refresh_when_asked(Fixture *fx, gconstpointer d)
{
    (void)d;
    pipeline_start_refreshers(&fx->p);
    g_assert_true(refreshers_wait_first(&fx->p.refreshers, 5));
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_LIST), ==, 1);
    fake_provider_set_field(fx->p.fake, "vps", "vps_1", "name", "\"web-09\"");
    g_assert_cmpint(account_request_refresh(fx->p.account, TRUE), ==, 0);
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_LIST), ==, 2);
    assert_published(&fx->p, "vps/acct/vps_1/name", "web-09\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/refresh/merges-and-publishes", test_a_refresh_merges_and_publishes);
    ADD("/refresh/failure-keeps-data", test_a_failed_list_keeps_the_last_good_data);
    ADD("/refresh/first-failure", test_a_first_failure_is_an_error);
    ADD("/refresh/action-wins", test_an_action_result_wins_over_an_older_list);
    ADD("/refresh/unchanged-stay", test_unchanged_resources_stay_where_they_were);
    ADD("/refresh/too-many", test_too_many_resources_keep_the_last_good_data);
    ADD("/refresh/prune-extras", test_extras_of_resources_gone_are_dropped);
    ADD("/refresh/threads", test_refresher_threads_refresh_when_asked);
    g_test_add("/refresh/offline", Fixture, NULL, NULL, test_offline_sends_no_request, teardown);
    return g_test_run();
}
