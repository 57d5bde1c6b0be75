/* Unit tests of the HostAtlas provider (src/providers/hostatlas.c) against
 * the scripted server of test_server.h, for answers the simulator never
 * gives: both paging forms going wrong, integer ids, ping URLs on other
 * origins, and webhook bodies. */
#include "infrafs/provider.h"

#include <errno.h>
#include <string.h>

#include "provider_fixture.h"
#include "test_util.h"

#define KEY "hostatlas-unit-key"
#define SERVERS "GET /api/v1/servers?page=1&per_page=100"
#define INCIDENTS "GET /api/v1/incidents?page=1&per_page=100"
#define HEARTBEATS "GET /api/v1/heartbeats?page=1&per_page=100"

typedef ProviderFixture Fixture;

/* Incidents and heartbeats listed empty unless a test says otherwise. */
static void fixture_setup(Fixture *fx, gconstpointer data)
{
    static const char *const extra[] = {"detail_concurrency", "1", NULL};

    (void)data;
    provider_fixture_open(fx, &ifs_provider_hostatlas, "ha", KEY,
                          "{\"message\":\"Unauthenticated.\"}", "{\"message\":\"Not found\"}",
                          extra);
    test_server_route(fx->server, INCIDENTS, 200, "[]");
    test_server_route(fx->server, HEARTBEATS, 200, "[]");
}

static IfsResource *find(GPtrArray *resources, const char *kind, const char *id)
{
    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);

        if (strcmp(r->kind, kind) == 0 && r->id && strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

/* Pages up to meta.last_page; an item that moved onto the next page while
 * the list was read is shown once; integer ids become their digits. */
static void test_pages_to_the_last_once_each(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, SERVERS, 200,
                      "{\"data\":[{\"id\":1,\"hostname\":\"a\"},{\"id\":2,\"hostname\":\"b\"}],"
                      "\"meta\":{\"page\":1,\"last_page\":2}}");
    test_server_route(fx->server, "GET /api/v1/servers?page=2&per_page=100", 200,
                      "{\"data\":[{\"id\":2,\"hostname\":\"b\"},{\"id\":3,\"hostname\":\"c\"}],"
                      "\"meta\":{\"page\":2,\"last_page\":2}}");
    test_server_route(fx->server, "GET /api/v1/servers/3", 200,
                      "{\"data\":{\"id\":3,\"services\":[{\"name\":\"nginx\"}]}}");
    out = provider_fixture_list(fx, &err);
    g_assert_null(err);
    g_assert_cmpuint(out->len, ==, 3);
    g_assert_nonnull(find(out, "servers", "1"));
    g_assert_nonnull(find(out, "servers", "3"));
    assert_contains(find(out, "servers", "3")->text, "\"services\":[{\"name\":\"nginx\"}]");
    g_assert_cmpuint(test_server_count(fx->server, "GET /api/v1/servers?page=3"), ==, 0);
    g_ptr_array_unref(out);
}

static void test_a_page_other_than_asked_stops_the_list(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, SERVERS, 200,
                      "{\"data\":[{\"id\":1}],\"meta\":{\"page\":1,\"last_page\":3}}");
    test_server_route(fx->server, "GET /api/v1/servers?page=2&per_page=100", 200,
                      "{\"data\":[{\"id\":2}],\"meta\":{\"page\":1,\"last_page\":3}}");
    out = provider_fixture_list(fx, &err);
    g_assert_cmpuint(out->len, ==, 0);
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "answered page 1 instead of page 2");
    ifs_error_free(err);
    g_ptr_array_unref(out);
}

static void test_a_cursor_handed_out_twice_stops_the_list(Fixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    GPtrArray *out;

    (void)data;
    test_server_route(fx->server, SERVERS, 200,
                      "{\"data\":[{\"id\":1}],\"meta\":{\"next_cursor\":\"k\"}}");
    test_server_route(fx->server, "GET /api/v1/servers?per_page=100&cursor=k", 200,
                      "{\"data\":[{\"id\":2}],\"meta\":{\"next_cursor\":\"k\"}}");
    out = provider_fixture_list(fx, &err);
    g_assert_cmpuint(out->len, ==, 0);
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "handed out cursor 'k' a second time");
    ifs_error_free(err);
    g_ptr_array_unref(out);
}

static gboolean ping(Fixture *fx, const char *id, IfsActionResult *res, IfsError **err)
{
    const IfsControlSpec *spec =
        ifs_provider_control(&ifs_provider_hostatlas, "heartbeats", "ping");
    IfsCommand *cmd = ifs_control_parse(spec, "1", 1, NULL);
    gboolean ok;

    g_assert_nonnull(cmd);
    ok = ifs_provider_hostatlas.act(fx->state, "heartbeats", id, "ping", cmd, res, err);
    ifs_command_free(cmd);
    return ok;
}

/* A ping URL on the account's own origin gets the key; one elsewhere is
 * requested without it. */
static void test_the_key_goes_only_to_the_own_origin(Fixture *fx, gconstpointer data)
{
    TestServer *other = test_server_start();
    char *heartbeats = g_strdup_printf(
        "[{\"id\":7,\"ping_url\":\"%s/ping/own\"},{\"id\":8,\"ping_url\":\"%s/ping/other\"}]",
        test_server_origin(fx->server), test_server_origin(other));
    IfsActionResult res = {0};
    IfsError *err = NULL;
    char *request;

    (void)data;
    test_server_route(fx->server, HEARTBEATS, 200, heartbeats);
    test_server_route(fx->server, "GET /ping/own", 200, "{}");
    test_server_route(other, "GET /ping/other", 200, "{}");
    g_assert_true(ping(fx, "7", &res, &err));
    ifs_action_result_clear(&res);
    g_assert_true(ping(fx, "8", &res, &err));
    g_assert_null(err);
    g_assert_cmpstr(res.message, ==, "pinged");
    ifs_action_result_clear(&res);

    g_assert_cmpuint(test_server_count(fx->server, "GET /ping/own"), ==, 1);
    g_assert_cmpuint(test_server_request_count(other), ==, 1);
    request = test_server_request(other, 0);
    g_assert_true(g_str_has_prefix(request, "GET /ping/other HTTP/1.1\r\n"));
    g_assert_null(strstr(request, KEY));
    g_assert_null(strstr(request, "Authorization"));
    g_free(request);
    g_free(heartbeats);
    test_server_stop(other);
}

typedef struct {
    const char *body;
    gboolean ok;
    const char *kind, *id, *delivery; /* when ok */
} WebhookCase;

static void test_webhook_bodies(void)
{
    static const WebhookCase cases[] = {
        {"{\"event\":\"server.offline\",\"delivery_id\":\"d1\",\"data\":{\"server\":{\"id\":47}}}",
         TRUE,                                                                                             "servers", "47",   "d1"},
        {"{\"event\":\"heartbeat.missed\",\"data\":{\"heartbeat\":{\"id\":\"hb-1\"}}}",             TRUE,
         "heartbeats",                                                                                                "hb-1", NULL},
        {"{\"event\":\"alert.triggered\",\"data\":{}}",                                             TRUE,  NULL,      NULL,   NULL},
        {"{\"event\":\"something.new\"}",                                                           TRUE,  NULL,      NULL,   NULL},
        {"{\"event\":7}",                                                                           FALSE, NULL,      NULL,   NULL},
        {"[1,2]",                                                                                   FALSE, NULL,      NULL,   NULL},
        {"not json",                                                                                FALSE, NULL,      NULL,   NULL},
    };
    const IfsWebhookSpec *spec = ifs_provider_hostatlas.webhook;

    g_assert_nonnull(spec);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *kind = NULL, *id = NULL, *delivery = NULL;
        IfsError *err = NULL;
        gboolean ok =
            spec->parse(cases[i].body, strlen(cases[i].body), &kind, &id, &delivery, &err);

        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok) {
            g_assert_null(err);
            g_assert_cmpstr(kind, ==, cases[i].kind);
            g_assert_cmpstr(id, ==, cases[i].id);
            g_assert_cmpstr(delivery, ==, cases[i].delivery);
        } else {
            g_assert_cmpint(err->errnum, ==, EINVAL);
            assert_contains(err->message, "not a HostAtlas event");
        }
        g_free(kind);
        g_free(id);
        g_free(delivery);
        ifs_error_free(err);
    }
}

static IfsError *error_for(int status, const char *body)
{
    return ifs_http_error_from_response(status, "application/json", body, strlen(body), "GET",
                                        "/api/v1/servers", "ha",
                                        ifs_provider_hostatlas.error_reader);
}

/* HostAtlas's reader beyond test_http.c's /http/error/hostatlas*: field
 * errors as a list, OAuth's answer; another API's shape gets no code. */
static void test_error_shapes(void)
{
    g_autoptr(IfsError) fields =
        error_for(422,
                  "{\"code\":\"validation_failed\",\"message\":\"Invalid\",\"errors\":"
                  "[{\"field\":\"per_page\",\"message\":\"must be at most 100\"},\"odd\"]}");
    g_autoptr(IfsError) oauth =
        error_for(401, "{\"error\":\"invalid_token\",\"error_description\":\"The token expired\"}");
    g_autoptr(IfsError) deployhq = error_for(422, "{\"base\":[\"Server limit reached\"]}");
    g_autoptr(IfsError) flat =
        error_for(401, "{\"error\":\"unauthenticated\",\"message\":\"Invalid API key\"}");
    g_autoptr(IfsError) lone = error_for(401, "{\"error\":\"Unauthenticated.\"}");
    g_autoptr(IfsError) nested_list =
        error_for(422,
                  "{\"error\":{\"code\":\"validation_failed\",\"message\":\"Invalid\"},"
                  "\"errors\":[{\"field\":\"name\",\"message\":\"is taken\"}]}");

    g_assert_cmpstr(fields->code, ==, "validation_failed");
    assert_contains(fields->message,
                    "HTTP 422 validation_failed: Invalid: per_page: must be at most 100; odd");
    g_assert_cmpstr(oauth->code, ==, "invalid_token");
    assert_contains(oauth->message, "HTTP 401 invalid_token: The token expired");
    g_assert_null(deployhq->code);
    assert_contains(deployhq->message, "HTTP 422: {\"base\":[\"Server limit reached\"]}");
    /* `error` is the code beside a message, the sentence alone */
    g_assert_cmpstr(flat->code, ==, "unauthenticated");
    assert_contains(flat->message, "HTTP 401 unauthenticated: Invalid API key");
    g_assert_null(lone->code);
    assert_contains(lone->message, "HTTP 401: Unauthenticated.");
    /* a top-level list beside a nested error is read too */
    assert_contains(nested_list->message, "HTTP 422 validation_failed: Invalid: name: is taken");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, provider_fixture_teardown)
    ADD("/hostatlas/pages-once-each", test_pages_to_the_last_once_each);
    ADD("/hostatlas/other-page", test_a_page_other_than_asked_stops_the_list);
    ADD("/hostatlas/cursor-again", test_a_cursor_handed_out_twice_stops_the_list);
    ADD("/hostatlas/key-to-own-origin-only", test_the_key_goes_only_to_the_own_origin);
#undef ADD
    g_test_add_func("/hostatlas/webhook-bodies", test_webhook_bodies);
    g_test_add_func("/hostatlas/error-shapes", test_error_shapes);
    return g_test_run();
}
