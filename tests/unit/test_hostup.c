/* Unit tests of the HostUp provider (src/providers/hostup.c) against the
 * scripted server of test_server.h, for answers the simulator never gives:
 * cursors that repeat or need escaping, ids with NUL bytes, pages without
 * data, closed action gates, 202s that cannot be read. */
#include "infrafs/provider.h"

#include <errno.h>
#include <string.h>

#include "provider_fixture.h"
#include "test_util.h"

#define KEY "hostup-unit-key"
#define FIRST_PAGE "GET /api/v2/vps?limit=100"

typedef ProviderFixture Fixture;

/* An account that reads no details (detail_limit = 0): only the list. */
static void fixture_setup(Fixture *fx, gconstpointer data)
{
    static const char *const extra[] = {"detail_limit", "0", NULL};

    (void)data;
    provider_fixture_open(fx, &ifs_provider_hostup, "hu", KEY,
                          "{\"error\":{\"code\":\"UNAUTHORIZED\",\"message\":\"bad key\"}}",
                          "{\"error\":{\"code\":\"NOT_FOUND\"}}", extra);
}

static void test_the_list_follows_cursors_escaped(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, FIRST_PAGE, 200,
                      "{\"data\":[{\"id\":\"vps_1\"},{\"id\":\"vps_2\"}],"
                      "\"hasMore\":true,\"nextCursor\":\"a/b c\"}");
    test_server_route(fx->server, FIRST_PAGE "&cursor=a%2Fb%20c", 200,
                      "{\"data\":[{\"id\":\"vps_3\"},\"not an object\"],\"hasMore\":false}");
    out = provider_fixture_list(fx, &err);
    g_assert_null(err);
    g_assert_cmpuint(out->len, ==, 3);
    g_assert_cmpstr(((IfsResource *)g_ptr_array_index(out, 2))->id, ==, "vps_3");
    g_ptr_array_unref(out);
}

static void test_a_cursor_that_comes_again_stops_the_list(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, FIRST_PAGE, 200,
                      "{\"data\":[{\"id\":\"vps_1\"}],\"hasMore\":true,\"nextCursor\":\"c1\"}");
    test_server_route(fx->server, FIRST_PAGE "&cursor=c1", 200,
                      "{\"data\":[{\"id\":\"vps_2\"}],\"hasMore\":true,\"nextCursor\":\"c1\"}");
    out = provider_fixture_list(fx, &err);
    g_assert_cmpuint(out->len, ==, 0);
    g_assert_nonnull(err);
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "handed out cursor 'c1' a second time");
    g_assert_cmpuint(test_server_count(fx->server, FIRST_PAGE "&cursor=c1"), ==, 1);
    ifs_error_free(err);
    g_ptr_array_unref(out);
}

static void test_a_page_without_data_fails_the_list(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, FIRST_PAGE, 200, "{\"vps\":[]}");
    out = provider_fixture_list(fx, &err);
    g_assert_cmpuint(out->len, ==, 0);
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "the answer has no \"data\" array");
    ifs_error_free(err);
    g_ptr_array_unref(out);
}

static void test_an_id_with_a_nul_byte_is_shown_as_a_problem(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;
    IfsResource *r;

    (void)data;
    test_server_route(fx->server, FIRST_PAGE, 200,
                      "{\"data\":[{\"id\":\"vps\\u0000x\"},{\"id\":\"vps_2\"}]}");
    out = provider_fixture_list(fx, &err);
    g_assert_null(err);
    g_assert_cmpuint(out->len, ==, 2);
    r = g_ptr_array_index(out, 0);
    g_assert_null(r->id);
    g_assert_cmpstr(r->problem, ==, "id 'vps%00x' holds a NUL byte");
    g_ptr_array_unref(out);
}

static gboolean act(Fixture *fx, const char *verb, IfsActionResult *res, IfsError **err)
{
    const IfsControlSpec *spec = ifs_provider_control(&ifs_provider_hostup, "vps", "power");
    IfsCommand *cmd = ifs_control_parse(spec, verb, strlen(verb), NULL);
    gboolean ok;

    g_assert_nonnull(cmd);
    ok = ifs_provider_hostup.act(fx->state, "vps", "vps_1", "power", cmd, res, err);
    ifs_command_free(cmd);
    return ok;
}

static void test_a_closed_gate_refuses_locally_with_the_reason(Fixture *fx, gconstpointer data)
{
    IfsActionResult res = {0};
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /api/v2/vps/vps_1/details", 200,
                      "{\"id\":\"vps_1\",\"actions\":{\"canRestart\":{\"allowed\":false,"
                      "\"reason\":\"a backup is running\"}}}");
    g_assert_false(act(fx, "restart", &res, &err));
    g_assert_cmpint(err->errnum, ==, EBUSY);
    assert_contains(err->message, "restart is not allowed for vps_1 now: a backup is running");
    g_assert_cmpuint(test_server_count(fx->server, "POST"), ==, 0);
    ifs_error_free(err);
    ifs_action_result_clear(&res);
}

static void test_an_accepted_action_gives_its_operation(Fixture *fx, gconstpointer data)
{
    IfsActionResult res = {0};
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /api/v2/vps/vps_1/details", 200, "{\"id\":\"vps_1\"}");
    test_server_route(fx->server, "POST /api/v2/vps/vps_1/actions/restart", 202,
                      "{\"operation\":{\"status\":\"queued\",\"jobId\":\"job_9\","
                      "\"pollUrl\":\"/api/v2/jobs/job_9\"}}");
    g_assert_true(act(fx, "restart", &res, &err));
    g_assert_null(err);
    g_assert_cmpint(res.http_status, ==, 202);
    g_assert_cmpstr(res.op_status, ==, "queued");
    g_assert_cmpstr(res.op_job_id, ==, "job_9");
    g_assert_cmpstr(res.op_poll_url, ==, "/api/v2/jobs/job_9");
    ifs_action_result_clear(&res);
}

static void test_an_unreadable_202_says_the_action_may_have_run(Fixture *fx, gconstpointer data)
{
    IfsActionResult res = {0};
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /api/v2/vps/vps_1/details", 200, "{\"id\":\"vps_1\"}");
    test_server_route(fx->server, "POST /api/v2/vps/vps_1/actions/start", 202, "{\"op");
    g_assert_false(act(fx, "start", &res, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "the action may have been accepted");
    g_assert_cmpuint(test_server_count(fx->server, "POST"), ==, 1); /* never sent twice */
    ifs_error_free(err);
    ifs_action_result_clear(&res);
}

static IfsError *error_for(int status, const char *body)
{
    return ifs_http_error_from_response(status, "application/json", body, strlen(body), "POST",
                                        "/api/v2/vps/vps_1/actions/restart", "hu",
                                        ifs_provider_hostup.error_reader);
}

/* HostUp's reader: RFC 7807 (test_http.c has the full problem), the legacy
 * API's 429 without `code`, a problem with a title only, a list of errors
 * cut after five; another API's shape gets no HostUp code. */
static void test_error_shapes(void)
{
    g_autoptr(IfsError) legacy = error_for(
        429, "{\"error\":\"rate_limited\",\"message\":\"Too many requests\",\"retryAfter\":30}");
    g_autoptr(IfsError) title = error_for(403, "{\"title\":\"Forbidden\",\"code\":\"forbidden\"}");
    g_autoptr(IfsError) many =
        error_for(400,
                  "{\"code\":\"invalid_request\",\"detail\":\"Invalid\",\"errors\":["
                  "{\"pointer\":\"/a\",\"detail\":\"1\"},{\"pointer\":\"\",\"detail\":\"2\"},"
                  "{\"detail\":\"3\"},{\"pointer\":\"/d\"},{\"pointer\":\"/e\",\"detail\":\"5\"},"
                  "{\"detail\":\"6\"},{\"detail\":\"7\"}]}");
    g_autoptr(IfsError) heo = error_for(403, "{\"success\":false,\"error\":\"unauthorized\"}");

    g_assert_cmpstr(legacy->code, ==, "rate_limited");
    assert_contains(legacy->message, "HTTP 429 rate_limited: Too many requests");
    g_assert_cmpstr(title->code, ==, "forbidden");
    assert_contains(title->message, "HTTP 403 forbidden: Forbidden");
    g_assert_cmpstr(many->code, ==, "invalid_request");
    assert_contains(many->message,
                    "HTTP 400 invalid_request: Invalid: /a: 1; 2; 3; /e: 5; and 2 more");
    g_assert_null(heo->code);
    assert_contains(heo->message, "HTTP 403: {\"success\":false,\"error\":\"unauthorized\"}");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, provider_fixture_teardown)
    ADD("/hostup/cursors-escaped", test_the_list_follows_cursors_escaped);
    ADD("/hostup/cursor-again", test_a_cursor_that_comes_again_stops_the_list);
    ADD("/hostup/page-without-data", test_a_page_without_data_fails_the_list);
    ADD("/hostup/nul-in-id", test_an_id_with_a_nul_byte_is_shown_as_a_problem);
    ADD("/hostup/closed-gate", test_a_closed_gate_refuses_locally_with_the_reason);
    ADD("/hostup/accepted-action", test_an_accepted_action_gives_its_operation);
    ADD("/hostup/unreadable-202", test_an_unreadable_202_says_the_action_may_have_run);
#undef ADD
    g_test_add_func("/hostup/error-shapes", test_error_shapes);
    return g_test_run();
}
