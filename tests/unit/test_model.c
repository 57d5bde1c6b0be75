/* The store's model (model.c): accounts as opened, extras and control
 * targets and how long they live, operations, replacing a resource as an
 * action does and the change generations that let its result win, refresh
 * requests, and the small text helpers. No thread is started. */
#include "pipeline_util.h"

#include <errno.h>
#include <string.h>

#include "infrafs/text.h"
#include "test_util.h"

static void test_account_opens_with_its_provider(void)
{
    Pipeline p;
    Account *a;

    pipeline_init(&p, NULL);
    a = p.account;
    g_assert_true(g_ptr_array_index(p.model.accounts, 0) == a);
    g_assert_nonnull(a->pstate);
    g_assert_null(a->open_error);
    g_assert_cmpuint(fake_provider_calls(p.fake, FAKE_OPEN), ==, 1);
    g_assert_cmpstr(a->state, ==, "stale");
    g_assert_cmpstr(a->last_error, ==, "first refresh not finished yet");
    g_assert_cmpint(a->refresh_s, ==, 3600); /* the account's own, not the store's */
    g_assert_cmpuint(a->max_resources, ==, IFS_DEFAULT_MAX_RESOURCES);
    g_assert_null(a->cache_path);
    /* The first refresh is asked for from the start. */
    g_assert_cmpuint(a->refresh_requested, ==, 1);
    g_assert_cmpuint(a->refresh_started, ==, 0);
    pipeline_clear(&p);
    /* model_clear closed the provider. */
}

static void test_account_that_cannot_open_keeps_why(void)
{
    IfsStoreOptions opts = {.refresh_s = 30, .cache_dir = "/nonexistent-cache"};
    IfsAccountConfig *cfg = fake_account_config("nofake", "x");
    Model m;
    Account *a;

    model_init(&m, &opts);
    cfg->refresh_s = 0;
    a = account_new(&m, cfg, &fake_provider_type);
    g_assert_null(a->pstate);
    g_assert_nonnull(a->open_error);
    g_assert_cmpint(a->open_error->errnum, ==, ENOENT);
    g_assert_nonnull(strstr(a->open_error->message, "nofake"));
    g_assert_cmpint(a->refresh_s, ==, 30); /* the store's default */
    g_assert_nonnull(a->cache_path);
    g_assert_true(g_str_has_prefix(a->cache_path, "/nonexistent-cache/"));
    model_clear(&m);
    fake_account_config_free(cfg);
}

static void test_extras_and_targets_are_made_once(void)
{
    Pipeline p;
    Account *a;
    IfsResource *r = pipeline_resource("vps_1", "{\"id\": \"vps_1\"}");
    Extras *x;
    IfsControlTarget *power, *again, *del;

    pipeline_init(&p, NULL);
    a = p.account;
    g_mutex_lock(&a->lock);
    x = extras_get(a, "vps/vps_1");
    g_assert_true(extras_get(a, "vps/vps_1") == x);
    g_assert_false(extras_get(a, "vps/vps_2") == x);
    g_assert_cmpuint(g_hash_table_size(a->extras), ==, 2);
    g_assert_null(x->last_action);
    g_assert_null(x->op);
    g_assert_cmpuint(x->gen, ==, 0);

    power = extras_control_target(x, a, r, "power");
    again = extras_control_target(x, a, r, "power");
    del = extras_control_target(x, a, r, "delete");
    g_assert_true(power == again);
    g_assert_false(power == del);
    g_assert_cmpint(power->kind, ==, TARGET_CONTROL);
    g_assert_true(power->account == a);
    g_assert_cmpstr(power->res_kind, ==, "vps");
    g_assert_cmpstr(power->res_id, ==, "vps_1");
    g_assert_cmpstr(power->file, ==, "power");

    /* A node holding the target keeps it past its extras. */
    control_target_ref(power);
    g_hash_table_remove(a->extras, "vps/vps_1");
    g_assert_cmpstr(power->file, ==, "power");
    /* Extras made again are new, with a new target. */
    x = extras_get(a, "vps/vps_1");
    g_assert_false(extras_control_target(x, a, r, "power") == power);
    g_mutex_unlock(&a->lock);
    control_target_unref(power);
    ifs_resource_unref(r);
    pipeline_clear(&p);
}

static void test_operation_lives_while_a_wait_target_holds_it(void)
{
    Pipeline p;
    Operation *op;
    IfsControlTarget *wait;

    pipeline_init(&p, NULL);
    op = operation_new(p.account, "vps", "vps_1", g_strdup("job-1"), g_strdup("fake://poll/job-1"),
                       g_strdup("queued"));
    g_assert_cmpint(op->state, ==, IFS_OP_PENDING);
    g_assert_false(op->done);
    g_assert_false(op->shown_final);
    wait = control_target_new(TARGET_OPERATION, p.account, "vps", "vps_1", "wait");
    wait->op = operation_ref(op);
    operation_unref(op);
    g_assert_cmpstr(wait->op->job_id, ==, "job-1");
    g_assert_cmpstr(wait->op->status_text, ==, "queued");

    operation_mark_done(&p.model, wait->op);
    g_assert_true(wait->op->done);
    control_target_unref(wait); /* frees the operation too (ASan checks) */
    pipeline_clear(&p);
}

static const char *resource_ids(GPtrArray *resources, GString *out)
{
    g_string_truncate(out, 0);
    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);
        g_string_append_printf(out, "%s%s", i ? " " : "", r->id);
    }
    return out->str;
}

static void test_replacing_a_resource_copies_the_list_and_notes_the_change(void)
{
    Pipeline p;
    Account *a;
    GPtrArray *before;
    IfsResource *fresh = pipeline_resource("vps_2", "{\"id\": \"vps_2\", \"name\": \"new\"}");
    IfsResource *added = pipeline_resource("vps_9", "{\"id\": \"vps_9\"}");
    GString *ids = g_string_new(NULL);
    GHashTable *later;

    pipeline_init(&p, NULL);
    a = p.account;
    pipeline_set_resources(&p, "vps_1", "{}", "vps_2", "{}", "vps_3", "{}", NULL);
    g_mutex_lock(&a->lock);
    before = g_ptr_array_ref(a->resources);

    account_replace_resource(a, "vps", "vps_2", fresh);
    g_assert_cmpstr(resource_ids(a->resources, ids), ==, "vps_1 vps_2 vps_3");
    g_assert_true(g_ptr_array_index(a->resources, 1) == fresh);
    /* Whoever holds the old list (a build) still sees it whole. */
    g_assert_false(a->resources == before);
    g_assert_cmpstr(resource_ids(before, ids), ==, "vps_1 vps_2 vps_3");
    g_assert_false(g_ptr_array_index(before, 1) == fresh);

    account_replace_resource(a, "vps", "vps_9", added); /* new: at the end */
    account_replace_resource(a, "vps", "vps_1", NULL); /* removed */
    g_assert_cmpstr(resource_ids(a->resources, ids), ==, "vps_2 vps_3 vps_9");
    g_assert_cmpuint(a->change_gen, ==, 3);

    /* A list that started after the first change misses the other two. */
    later = account_take_changes_after(a, 1);
    g_assert_nonnull(later);
    g_assert_cmpuint(g_hash_table_size(later), ==, 2);
    g_assert_true(g_hash_table_contains(later, "vps/vps_9"));
    g_assert_true(g_hash_table_contains(later, "vps/vps_1"));
    g_hash_table_destroy(later);
    /* ...and the change it saw is forgotten. */
    g_assert_false(g_hash_table_contains(a->changed_at, "vps/vps_2"));
    /* A list that started after every change needs none of them. */
    g_assert_null(account_take_changes_after(a, 3));
    g_assert_cmpuint(g_hash_table_size(a->changed_at), ==, 0);
    g_mutex_unlock(&a->lock);

    g_ptr_array_unref(before);
    ifs_resource_unref(fresh);
    ifs_resource_unref(added);
    g_string_free(ids, TRUE);
    pipeline_clear(&p);
}

static void test_refresh_requests_count_and_end_at_shutdown(void)
{
    Pipeline p;

    pipeline_init(&p, NULL);
    g_assert_cmpint(account_request_refresh(p.account, FALSE), ==, 0);
    g_assert_cmpuint(p.account->refresh_requested, ==, 2);
    /* No refresher runs: a waiting request ends only with the store. */
    model_shutdown(&p.model);
    g_assert_true(model_stopping(&p.model));
    g_assert_cmpint(account_request_refresh(p.account, TRUE), ==, EINTR);
    g_assert_cmpuint(p.account->refresh_requested, ==, 3);
    pipeline_clear(&p);
}

static void test_text_helpers(void)
{
    char *text;
    IfsError *err;
    Pipeline p;

    text = store_resource_key("vps", "a/b");
    g_assert_cmpstr(text, ==, "vps/a/b");
    g_free(text);

    text = ifs_iso_time(0);
    g_assert_cmpstr(text, ==, "");
    g_free(text);
    text = ifs_iso_time(1700000000);
    g_assert_cmpstr(text, ==, "2023-11-14T22:13:20Z");
    g_free(text);

    /* Control characters become spaces, bad UTF-8 U+FFFD, cut at max bytes
     * without splitting a character. */
    text = store_one_line("a\nb\tc\xff", 100);
    g_assert_cmpstr(text, ==, "a b c\xef\xbf\xbd");
    g_free(text);
    text = store_one_line("ab\xc3\xa9", 3);
    g_assert_cmpstr(text, ==, "ab");
    g_free(text);

    text = store_escaped_input("st\\op\n\x01\xc3\xa9", 9, 64);
    g_assert_cmpstr(text, ==, "st\\x5Cop\\x0A\\x01\xc3\xa9");
    g_free(text);
    text = store_escaped_input("abcdef", 6, 3);
    g_assert_cmpstr(text, ==, "abc");
    g_free(text);

    /* An error that echoes the credential is redacted before it is kept. */
    pipeline_init(&p, NULL);
    err = ifs_error_new(EIO, 500, PIPE_SECRET, "server said: token " PIPE_SECRET " is bad");
    store_redact_error(p.account, err);
    g_assert_null(strstr(err->message, PIPE_SECRET));
    g_assert_null(strstr(err->code, PIPE_SECRET));
    g_assert_true(g_str_has_prefix(err->message, "server said: token "));
    ifs_error_free(err);
    pipeline_clear(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/model/account/opens", test_account_opens_with_its_provider);
    g_test_add_func("/model/account/open-failure", test_account_that_cannot_open_keeps_why);
    g_test_add_func("/model/extras/made-once", test_extras_and_targets_are_made_once);
    g_test_add_func("/model/operation/lifetime", test_operation_lives_while_a_wait_target_holds_it);
    g_test_add_func("/model/resources/replace",
                    test_replacing_a_resource_copies_the_list_and_notes_the_change);
    g_test_add_func("/model/refresh-requests", test_refresh_requests_count_and_end_at_shutdown);
    g_test_add_func("/model/helpers", test_text_helpers);
    return g_test_run();
}
