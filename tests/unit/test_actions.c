/* Actions (actions.c) on the fake: a control write acts once, records
 * last_action and shows the result before it returns; a refused command
 * makes no call; an action without its result is re-read by a worker; an
 * operation is polled until it ends, and operation/wait answers only then;
 * the refresh control asks for a refresh and waits for it. */
#include "pipeline_util.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>

#include "test_util.h"

#define VPS_1 "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"running\"}"

typedef struct {
    Pipeline p;
} Fixture;

static void setup_with(Fixture *fx, const IfsStoreOptions *opts)
{
    pipeline_init(&fx->p, opts);
    fake_provider_put(fx->p.fake, "vps", "vps_1", VPS_1);
    pipeline_set_resources(&fx->p, "vps_1", VPS_1, NULL);
    pipeline_start_publisher(&fx->p);
    pipeline_start_actions(&fx->p);
    publish_account(fx->p.publisher, fx->p.account);
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

static int write_control(Fixture *fx, const char *path, const char *text)
{
    IfsNode *n = published_node(&fx->p, path);
    int errnum;

    if (!n)
        g_error("no node at %s", path);
    errnum = actions_control_write(&fx->p.actions, n, text, strlen(text), 0, getuid());
    ifs_node_unref(n);
    return errnum;
}

/* last_action as "<command> <outcome...>", without its time. */
static char *last_action_after_time(Fixture *fx, const char *path)
{
    char *text = published_text(&fx->p, path);
    char *space = strchr(text, ' ');
    char *rest;

    g_assert_nonnull(space);
    g_assert_cmpuint(space - text, ==, strlen("2024-01-01T00:00:00Z"));
    rest = g_strdup(space + 1);
    g_free(text);
    return rest;
}

/* last_action after its time: `what`, then the writer, this process. */
static void assert_written_by_us(const char *line, const char *what)
{
    char *end = test_writer_end();
    char *expected = g_strconcat(what, " ", end, NULL);

    g_assert_cmpstr(line, ==, expected);
    g_free(expected);
    g_free(end);
}

/* Line `index` of /actions (from 0), after its time and its writer, which
 * must be this process's user; "" past the last line. */
static char *logged(Fixture *fx, guint index)
{
    IfsNode *node = ifs_line_log_node(fx->p.model.action_log);
    char *text = node_text(node);
    char **lines = g_strsplit(text, "\n", -1);
    struct passwd *pw = getpwuid(getuid());
    char *writer = g_strdup_printf("%s(%u)", pw ? pw->pw_name : "", (unsigned)getuid());
    char *rest = g_strdup("");

    if (index < g_strv_length(lines) && *lines[index]) {
        char **fields = g_strsplit(lines[index], "\t", 3);
        g_assert_cmpuint(g_strv_length(fields), ==, 3);
        g_assert_cmpuint(strlen(fields[0]), ==, strlen("2024-01-01T00:00:00Z"));
        g_assert_cmpstr(fields[1], ==, writer);
        g_free(rest);
        rest = g_strdup(fields[2]);
        g_strfreev(fields);
    }
    g_free(writer);
    g_strfreev(lines);
    g_free(text);
    ifs_node_unref(node);
    return rest;
}

static void assert_logged(Fixture *fx, guint index, const char *expected)
{
    char *line = logged(fx, index);

    g_assert_cmpstr(line, ==, expected);
    g_free(line);
}

static void test_a_write_acts_once_and_shows_its_result(Fixture *fx, gconstpointer d)
{
    char *act, *line;

    (void)d;
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "stop force\n"), ==, 0);
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_ACT), ==, 1);
    act = fake_provider_last_act(fx->p.fake);
    g_assert_cmpstr(act, ==, "vps/vps_1 power stop force");
    g_free(act);
    /* Shown before the write returned: the provider's resource, our line. */
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "stopped\n");
    line = last_action_after_time(fx, "vps/acct/vps_1/last_action");
    assert_written_by_us(line, "stop force ok 200 accepted stop");
    g_free(line);
    assert_logged(fx, 0, "vps/acct/vps_1/power\tstop force\tok\t200\taccepted stop\t-");
    assert_logged(fx, 1, "");
    /* The fake returned the resource: nothing to re-read. */
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_FETCH), ==, 0);
}

static void test_a_refused_command_makes_no_call(Fixture *fx, gconstpointer d)
{
    char *line;
    IfsNode *power = published_node(&fx->p, "vps/acct/vps_1/power");

    (void)d;
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "explode\n"), ==, EINVAL);
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_ACT), ==, 0);
    line = last_action_after_time(fx, "vps/acct/vps_1/last_action");
    g_assert_true(g_str_has_prefix(line, "explode failed - "));
    g_free(line);
    line = logged(fx, 0);
    g_assert_true(g_str_has_prefix(line, "vps/acct/vps_1/power\texplode\tfailed\t-\tunknown "));
    g_assert_true(g_str_has_suffix(line, "\t-"));
    g_free(line);
    /* Not at offset 0: refused as well. */
    g_assert_cmpint(actions_control_write(&fx->p.actions, power, "stop", 4, 3, getuid()), ==,
                    EINVAL);
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_ACT), ==, 0);
    /* Only control nodes take writes. */
    {
        IfsNode *name = published_node(&fx->p, "vps/acct/vps_1/name");
        g_assert_cmpint(actions_control_write(&fx->p.actions, name, "x", 1, 0, getuid()), ==,
                        EACCES);
        ifs_node_unref(name);
    }
    ifs_node_unref(power);
}

static void test_a_failed_action_answers_its_errno(Fixture *fx, gconstpointer d)
{
    char *line;

    (void)d;
    fake_provider_fail_acts(fx->p.fake, EBUSY, 409, "busy", "server is locked");
    g_test_expect_message("infrafs", G_LOG_LEVEL_MESSAGE,
                          "vps/acct/vps_1/power: 'stop' failed 409: busy: server is locked by *");
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "stop\n"), ==, EBUSY);
    g_test_assert_expected_messages();
    line = last_action_after_time(fx, "vps/acct/vps_1/last_action");
    assert_written_by_us(line, "stop failed 409 busy: server is locked");
    g_free(line);
    assert_logged(fx, 0, "vps/acct/vps_1/power\tstop\tfailed\t409\tbusy: server is locked\t-");
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "running\n");
}

static void test_an_action_without_its_result_is_re_read(Fixture *fx, gconstpointer d)
{
    (void)d;
    fake_provider_set_act_returns_resource(fx->p.fake, FALSE);
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "stop\n"), ==, 0);
    g_assert_true(fake_provider_wait_calls(fx->p.fake, FAKE_FETCH, 1, 5000));
    /* The worker re-reads, then publishes: wait for the tree to show it. */
    for (int i = 0; i < 100; i++) {
        char *state = published_text(&fx->p, "vps/acct/vps_1/power_state");
        gboolean shown = strcmp(state, "stopped\n") == 0;
        g_free(state);
        if (shown)
            break;
        g_usleep(20 * 1000);
    }
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "stopped\n");
}

static void test_delete_removes_the_resource_before_the_write_returns(Fixture *fx, gconstpointer d)
{
    (void)d;
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/delete", "1\n"), ==, 0);
    g_assert_null(published_node(&fx->p, "vps/acct/vps_1"));
    g_mutex_lock(&fx->p.account->lock);
    g_assert_cmpuint(fx->p.account->resources->len, ==, 0);
    g_assert_true(g_hash_table_contains(fx->p.account->changed_at, "vps/vps_1"));
    g_mutex_unlock(&fx->p.account->lock);
}

static gboolean never_give_up(void *data)
{
    (void)data;
    return FALSE;
}

typedef struct {
    Fixture *fx;
    IfsNode *wait;
    char *text;
    int errnum;
} WaitCall;

static gpointer wait_in_thread(gpointer data)
{
    WaitCall *call = data;

    call->text =
        actions_wait_text(&call->fx->p.actions, call->wait, never_give_up, NULL, &call->errnum);
    if (call->text)
        actions_wait_replied(&call->fx->p.actions, call->wait);
    return NULL;
}

static void test_an_operation_is_polled_until_it_ends(Fixture *fx, gconstpointer d)
{
    WaitCall call = {fx, NULL, NULL, 0};
    GThread *thread;
    char *line;

    (void)d;
    fake_provider_start_operations(fx->p.fake, TRUE);
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "stop\n"), ==, 0);
    line = last_action_after_time(fx, "vps/acct/vps_1/last_action");
    assert_written_by_us(line, "stop ok 202 queued job-1");
    g_free(line);
    assert_logged(fx, 0, "vps/acct/vps_1/power\tstop\tok\t202\tqueued\tjob-1");
    assert_published(&fx->p, "vps/acct/vps_1/operation/job_id", "job-1\n");
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "running\n");
    call.wait = published_node(&fx->p, "vps/acct/vps_1/operation/wait");
    g_assert_nonnull(call.wait);
    thread = g_thread_new("wait", wait_in_thread, &call);

    g_assert_true(fake_provider_wait_calls(fx->p.fake, FAKE_POLL, 2, 5000));
    assert_published(&fx->p, "vps/acct/vps_1/operation/status", "in_progress\n");
    g_assert_null(call.text); /* still waiting */
    fake_provider_end_operations(fx->p.fake, IFS_OP_COMPLETED);
    g_thread_join(thread);
    g_assert_cmpstr(call.text, ==, "completed\n");
    /* When the wait answers, the tree already shows the resource after
     * the operation. */
    assert_published(&fx->p, "vps/acct/vps_1/power_state", "stopped\n");
    assert_published(&fx->p, "vps/acct/vps_1/operation/wait", "completed\n");
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_FETCH), ==, 1);
    /* The end of the operation, logged before the wait answered. */
    assert_logged(fx, 1, "vps/acct/vps_1/power\tstop\top:completed\t-\t-\tjob-1");
    g_free(call.text);
    ifs_node_unref(call.wait);
}

static void test_a_wait_on_something_else_is_eio(Fixture *fx, gconstpointer d)
{
    IfsNode *name = published_node(&fx->p, "vps/acct/vps_1/name");
    int errnum = 0;

    (void)d;
    g_assert_null(actions_wait_text(&fx->p.actions, name, never_give_up, NULL, &errnum));
    g_assert_cmpint(errnum, ==, EIO);
    ifs_node_unref(name);
}

static void test_the_refresh_control_refreshes_and_says_so(Fixture *fx, gconstpointer d)
{
    char *line;

    (void)d;
    pipeline_start_refreshers(&fx->p);
    g_assert_true(refreshers_wait_first(&fx->p.refreshers, 5));
    fake_provider_set_field(fx->p.fake, "vps", "vps_1", "name", "\"web-02\"");
    g_assert_cmpint(write_control(fx, "providers/acct/refresh", "1\n"), ==, 0);
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_LIST), ==, 2);
    assert_published(&fx->p, "vps/acct/vps_1/name", "web-02\n");
    line = last_action_after_time(fx, "providers/acct/last_action");
    assert_written_by_us(line, "1 ok - refreshed");
    g_free(line);
    assert_logged(fx, 0, "providers/acct/refresh\t1\tok\t-\trefreshed\t-");
}

static void test_offline_acts_on_nothing(Fixture *fx, gconstpointer d)
{
    IfsStoreOptions opts = {.refresh_s = 3600, .offline = TRUE};

    (void)d;
    setup_with(fx, &opts);
    g_test_expect_message("infrafs", G_LOG_LEVEL_MESSAGE, "*mounted with -o offline*");
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", "stop\n"), ==, EROFS);
    g_test_assert_expected_messages();
    g_assert_cmpuint(fake_provider_calls(fx->p.fake, FAKE_ACT), ==, 0);
    /* Refused, and logged all the same. */
    assert_logged(fx, 0,
                  "vps/acct/vps_1/power\tstop\tfailed\t-\tmounted with -o offline: "
                  "no request was sent; remount without offline to act\t-");
}

static void test_the_log_never_shows_the_secret(Fixture *fx, gconstpointer d)
{
    char *line;

    (void)d;
    /* A user who pastes the token into a control file: refused, and the
     * log (and last_action) shows it redacted. */
    g_assert_cmpint(write_control(fx, "vps/acct/vps_1/power", PIPE_SECRET "\n"), ==, EINVAL);
    line = logged(fx, 0);
    g_assert_null(strstr(line, PIPE_SECRET));
    g_assert_true(g_str_has_prefix(line, "vps/acct/vps_1/power\t"));
    g_free(line);
    line = published_text(&fx->p, "vps/acct/vps_1/last_action");
    g_assert_null(strstr(line, PIPE_SECRET));
    g_free(line);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/actions/acts-once", test_a_write_acts_once_and_shows_its_result);
    ADD("/actions/refused", test_a_refused_command_makes_no_call);
    ADD("/actions/failed", test_a_failed_action_answers_its_errno);
    ADD("/actions/re-read", test_an_action_without_its_result_is_re_read);
    ADD("/actions/delete", test_delete_removes_the_resource_before_the_write_returns);
    ADD("/actions/operation", test_an_operation_is_polled_until_it_ends);
    ADD("/actions/wait-eio", test_a_wait_on_something_else_is_eio);
    ADD("/actions/refresh-control", test_the_refresh_control_refreshes_and_says_so);
    ADD("/actions/log-never-shows-the-secret", test_the_log_never_shows_the_secret);
    g_test_add("/actions/offline", Fixture, NULL, NULL, test_offline_acts_on_nothing, teardown);
    return g_test_run();
}
