/* Unit tests of src/providers/heo.c through the provider interface: the
 * `vps =` list (what open() refuses), the resources built from infrafs's own
 * record (no HTTP), and how act() reads HEO's answers, against a scripted
 * one-answer-per-connection HTTP server in a thread of this process. */
#include "infrafs/provider.h"

#include <errno.h>
#include <string.h>

#include "test_server.h"
#include "test_util.h"

#define SECRET "heo-S3cret-key"
#define START_PATH "/v1/hosting/cloud/vps-custom/vps_1/start"

static const IfsProviderType *heo(void)
{
    const IfsProviderType *p = ifs_provider_find("heo");

    g_assert_nonnull(p);
    return p;
}

/* ======================================================================== */
/* The scripted server (test_server.h): infrafs opens a fresh connection    */
/* for every action, and every answer queued must have been used.          */

static void server_answer(TestServer *srv, int status, const char *content_type, const char *body)
{
    test_server_reply_closing(srv, status, content_type, body);
}

static void server_free(TestServer *srv)
{
    g_assert_cmpuint(test_server_steps_left(srv), ==, 0);
    test_server_stop(srv);
}

/* ======================================================================== */
/* An account                                                               */

typedef struct {
    IfsAccountConfig cfg;
    IfsHttp *http;
    gpointer state;
} Account;

static void account_free(Account *a)
{
    if (a->state)
        heo()->close(a->state);
    ifs_http_free(a->http);
    g_hash_table_unref(a->cfg.extra);
    g_free(a);
}

/* open() with `vps = <ids>`; NULL state and *err when refused. */
static Account *account_open(const char *origin, const char *ids, IfsError **err)
{
    Account *a = g_new0(Account, 1);
    IfsHttpConfig hc = {.account = "heo",
                        .origin = origin ? origin : "http://127.0.0.1:9",
                        .auth = IFS_AUTH_BEARER,
                        .secret = SECRET,
                        .error_reader = heo()->error_reader};

    a->cfg.name = (char *)"heo";
    a->cfg.type = (char *)"heo";
    a->cfg.extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (ids)
        g_hash_table_insert(a->cfg.extra, g_strdup("vps"), g_strdup(ids));
    a->http = ifs_http_new(&hc);
    a->state = heo()->open(a->http, &a->cfg, err);
    return a;
}

/* ======================================================================== */
/* The type and its schema                                                  */

static void test_schema(void)
{
    const IfsProviderType *p = heo();
    const IfsControlSpec *power = ifs_provider_control(p, "vps", "power");
    char *line = ifs_control_commands_line(power);

    g_assert_cmpstr(p->schema.default_url, ==, "https://api.heo-systems.net");
    g_assert_cmpstr(p->schema.required_keys[0], ==, "vps");
    g_assert_cmpint(p->auth, ==, IFS_AUTH_BEARER);
    g_assert_null(p->poll);
    g_assert_cmpstr(line, ==, "start stop reset\n");
    g_free(line);
}

/* reset alone is refused before act() is ever called; stop takes no force. */
static void test_force_rules(void)
{
    const IfsControlSpec *power = ifs_provider_control(heo(), "vps", "power");
    static const char *const refused[] = {"reset",   "stop force", "start force",
                                          "restart", "shutdown",   NULL};
    IfsError *err = NULL;
    IfsCommand *cmd = ifs_control_parse(power, "reset force\n", 12, &err);

    g_assert_nonnull(cmd);
    g_assert_true(cmd->force);
    ifs_command_free(cmd);
    for (const char *const *r = refused; *r; r++) {
        cmd = ifs_control_parse(power, *r, strlen(*r), &err);
        g_assert_null(cmd);
        g_assert_cmpint(err->errnum, ==, EINVAL);
        g_clear_pointer(&err, ifs_error_free);
    }
}

/* ======================================================================== */
/* The `vps =` list                                                          */

static void assert_ids(Account *a, const char *const *want)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;
    guint n = g_strv_length((char **)want);

    g_assert_true(heo()->list(a->state, out, &err));
    g_assert_null(err);
    g_assert_cmpuint(out->len, ==, n);
    for (guint i = 0; i < n; i++)
        g_assert_cmpstr(((IfsResource *)g_ptr_array_index(out, i))->id, ==, want[i]);
    g_ptr_array_unref(out);
}

static void test_ids_accepted_forms(void)
{
    static const char *const want[] = {"vps_1", "vps-2", "VPS.3", "x", NULL};
    static const char *const forms[] = {"vps_1 vps-2 VPS.3 x", "  vps_1\tvps-2   VPS.3 x ",
                                        "vps_1,vps-2, VPS.3 ,x", NULL};

    for (const char *const *f = forms; *f; f++) {
        IfsError *err = NULL;
        Account *a = account_open(NULL, *f, &err);

        if (!a->state)
            g_error("'%s' refused: %s", *f, err->message);
        assert_ids(a, want);
        account_free(a);
    }
}

typedef struct {
    const char *value;
    const char *says; /* part of the message */
} Refusal;

static void test_ids_refused(void)
{
    static const Refusal cases[] = {
        {"",                  "lists no VPS ids"                                         },
        {"   \t ",            "lists no VPS ids"                                         },
        {NULL,                "lists no VPS ids"                                         },
        {"vps_1 vps_2 vps_1", "id 'vps_1' is listed twice; list each VPS once in `vps =`"},
        {"vps_1,,vps_2",      "empty id (entry 2 of 3"                                   },
        {"vps_1,",            "empty id (entry 2 of 2"                                   },
        {",vps_1",            "empty id (entry 1 of 2"                                   },
        {"vps_1 ../etc",      "id '../etc' is not usable: it starts with '.'"            },
        {"..",                "id '..' is not usable"                                    },
        {"vps/1",             "id 'vps/1' is not usable: ids may hold only"              },
        {"vps%2F1",           "id 'vps%2F1' is not usable"                               },
        {"vps_1?force=true",  "id 'vps_1?force=true' is not usable"                      },
        {"vps_\xc3\xa9",      "is not usable"                                            },
        {"vps_\x01",          "id 'vps_\\001' is not usable"                             },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        IfsError *err = NULL;
        Account *a = account_open(NULL, cases[i].value, &err);

        if (a->state)
            g_error("'%s' accepted", cases[i].value ? cases[i].value : "(no vps key)");
        g_assert_cmpint(err->errnum, ==, EINVAL);
        g_assert_cmpint(err->http_status, ==, 0);
        assert_contains(err->message, "account 'heo'");
        assert_contains(err->message, cases[i].says);
        g_assert_null(strchr(err->message, '\n'));
        g_assert_cmpuint(ifs_http_request_count(a->http), ==, 0);
        ifs_error_free(err);
        account_free(a);
    }
}

static void test_id_too_long(void)
{
    char *longest = g_strnfill(128, 'a');
    char *too_long = g_strnfill(129, 'a');
    IfsError *err = NULL;
    Account *ok = account_open(NULL, longest, &err);
    Account *refused;

    g_assert_nonnull(ok->state);
    refused = account_open(NULL, too_long, &err);
    g_assert_null(refused->state);
    assert_contains(err->message, "longer than 128");
    ifs_error_free(err);
    account_free(ok);
    account_free(refused);
    g_free(longest);
    g_free(too_long);
}

/* ======================================================================== */
/* Resources: infrafs's own record                                          */

static json_object *field(IfsResource *r, const char *key)
{
    json_object *v = NULL;

    g_assert_true(json_object_object_get_ex(r->object, key, &v));
    return v;
}

static void test_list_makes_no_request_and_says_nothing_was_requested(void)
{
    IfsError *err = NULL;
    Account *a = account_open(NULL, "vps_1 vps_2", &err);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsResource *r;

    /* The origin (port 9, discard) answers nothing: any request would fail. */
    g_assert_true(heo()->list(a->state, out, &err));
    g_assert_cmpuint(out->len, ==, 2);
    r = g_ptr_array_index(out, 0);
    g_assert_cmpstr(r->kind, ==, "vps");
    g_assert_cmpstr(json_object_get_string(field(r, "id")), ==, "vps_1");
    g_assert_cmpstr(json_object_get_string(field(r, "status")), ==,
                    "nothing requested since mount (HEO reports no live state)");
    g_assert_true(json_object_is_type(field(r, "requested_action"), json_type_null));
    g_assert_true(json_object_is_type(field(r, "requested_at"), json_type_null));
    g_assert_true(json_object_is_type(field(r, "message"), json_type_null));
    g_assert_cmpuint(ifs_http_request_count(a->http), ==, 0);
    g_ptr_array_unref(out);
    account_free(a);
}

static void test_fetch_of_an_unlisted_id_is_enoent(void)
{
    IfsError *err = NULL;
    Account *a = account_open(NULL, "vps_1", &err);
    IfsResource *r = heo()->fetch(a->state, "vps", "vps_2", &err);

    g_assert_null(r);
    g_assert_cmpint(err->errnum, ==, ENOENT);
    ifs_error_free(err);
    r = heo()->fetch(a->state, "vps", "vps_1", &err);
    g_assert_nonnull(r);
    g_assert_cmpstr(r->id, ==, "vps_1");
    ifs_resource_unref(r);
    g_assert_cmpuint(ifs_http_request_count(a->http), ==, 0);
    account_free(a);
}

/* ======================================================================== */
/* Actions                                                                   */

static gboolean act(Account *a, const char *id, const char *verb, gboolean force,
                    IfsActionResult *res, IfsError **err)
{
    IfsCommand cmd = {.verb = (char *)verb, .force = force};

    return heo()->act(a->state, "vps", id, "power", &cmd, res, err);
}

static const char *status_of(Account *a, const char *id)
{
    static char text[256];
    IfsError *err = NULL;
    IfsResource *r = heo()->fetch(a->state, "vps", id, &err);

    g_assert_nonnull(r);
    g_strlcpy(text, json_object_get_string(field(r, "status")), sizeof text);
    ifs_resource_unref(r);
    return text;
}

static void test_start_is_recorded_from_heos_answer(void)
{
    TestServer *srv = test_server_start();
    IfsError *err = NULL;
    IfsActionResult res = {0};
    Account *a;
    char *req;

    server_answer(srv, 200, "application/json",
                  "{\"success\":true,\"action\":\"start\",\"vps_id\":\"vps_1\","
                  "\"status\":\"requested\",\"message\":\"Start action sent\"}");
    a = account_open(test_server_origin(srv), "vps_1 vps_2", &err);

    g_assert_true(act(a, "vps_1", "start", FALSE, &res, &err));
    g_assert_null(err);
    g_assert_cmpint(res.http_status, ==, 200);
    g_assert_cmpstr(res.message, ==, "Start action sent");
    g_assert_null(res.op_poll_url);
    /* The record is the resource: handed back, so no re-read is needed. */
    g_assert_nonnull(res.resource);
    g_assert_cmpstr(res.resource->id, ==, "vps_1");
    g_assert_cmpstr(json_object_get_string(field(res.resource, "requested_action")), ==, "start");
    g_assert_cmpstr(json_object_get_string(field(res.resource, "message")), ==,
                    "Start action sent");
    g_assert_true(g_regex_match_simple("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$",
                                       json_object_get_string(field(res.resource, "requested_at")),
                                       0, 0));
    g_assert_true(g_regex_match_simple("^start requested at \\S+Z \\(HEO reports no live state\\)$",
                                       status_of(a, "vps_1"), 0, 0));
    g_assert_cmpstr(status_of(a, "vps_2"), ==,
                    "nothing requested since mount (HEO reports no live state)");

    req = test_server_request(srv, 0);
    g_assert_true(g_str_has_prefix(req, "POST " START_PATH " HTTP/1.1\r\n"));
    assert_contains(req, "Authorization: Bearer " SECRET "\r\n");
    assert_contains(req, "Content-Length: 0\r\n");
    g_free(req);
    ifs_action_result_clear(&res);
    account_free(a);
    server_free(srv);
}

static void test_reset_force_sends_force_true(void)
{
    TestServer *srv = test_server_start();
    IfsError *err = NULL;
    IfsActionResult res = {0};
    Account *a;
    char *req;

    server_answer(srv, 200, "application/json",
                  "{\"success\":true,\"action\":\"reset\",\"vps_id\":\"vps_1\","
                  "\"status\":\"requested\",\"message\":\"Reset action sent\"}");
    a = account_open(test_server_origin(srv), "vps_1", &err);

    g_assert_true(act(a, "vps_1", "reset", TRUE, &res, &err));
    req = test_server_request(srv, 0);
    g_assert_true(g_str_has_prefix(
        req, "POST /v1/hosting/cloud/vps-custom/vps_1/reset?force=true HTTP/1.1\r\n"));
    g_free(req);
    g_assert_true(g_str_has_prefix(status_of(a, "vps_1"), "reset requested at "));
    ifs_action_result_clear(&res);
    account_free(a);
    server_free(srv);
}

/* A 200 that is not HEO's success answer: EIO with the reason, nothing
 * recorded, and the answer's own words in the message. */
typedef struct {
    const char *body;
    const char *code; /* expected err->code */
    const char *says;
} BadAnswer;

static void test_a_200_that_is_not_success_is_eio_and_not_recorded(void)
{
    static const BadAnswer cases[] = {
        {"{\"success\":false,\"error\":\"provider_error\",\"message\":\"Failed to send action\"}",
         "provider_error",                                                                               "\"success\": false (provider_error: Failed to send action)"},
        {"{\"success\":false}",                                                                    NULL, "\"success\": false (no reason given)"                      },
        {"{\"action\":\"start\",\"vps_id\":\"vps_1\",\"status\":\"requested\"}",                   NULL,
         "no \"success\": true"                                                                                                                                      },
        {"{\"success\":\"true\"}",                                                                 NULL, "no \"success\": true"                                      },
        {"",                                                                                       NULL, "not a JSON object"                                         },
        {"Start action sent",                                                                      NULL, "not a JSON object"                                         },
        {"[{\"success\":true}]",                                                                   NULL, "not a JSON object"                                         },
        {"{\"success\":true} trailing",                                                            NULL, "not a JSON object"                                         },
        {"{\"success\":true,\"action\":\"stop\",\"vps_id\":\"vps_1\"}",                            NULL,
         "about action 'stop', not 'start'"                                                                                                                          },
        {"{\"success\":true,\"action\":\"start\",\"vps_id\":\"vps_2\"}",                           NULL,
         "about VPS 'vps_2', not 'vps_1'"                                                                                                                            },
    };
    TestServer *srv = test_server_start();
    IfsError *err = NULL;
    Account *a;

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        server_answer(srv, 200, "application/json", cases[i].body);
    a = account_open(test_server_origin(srv), "vps_1", &err);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        IfsActionResult res = {0};

        if (act(a, "vps_1", "start", FALSE, &res, &err))
            g_error("'%s' taken as success", cases[i].body);
        g_assert_cmpint(err->errnum, ==, EIO);
        g_assert_cmpint(err->http_status, ==, 200);
        g_assert_cmpstr(err->code, ==, cases[i].code);
        assert_contains(err->message, "account 'heo': POST " START_PATH);
        assert_contains(err->message, "HEO answered HTTP 200 but");
        assert_contains(err->message, cases[i].says);
        assert_contains(err->message, "check it in the HEO dashboard");
        g_assert_null(res.resource);
        g_clear_pointer(&err, ifs_error_free);
        ifs_action_result_clear(&res);
    }
    g_assert_cmpuint(test_server_request_count(srv), ==, G_N_ELEMENTS(cases));
    g_assert_cmpstr(status_of(a, "vps_1"), ==,
                    "nothing requested since mount (HEO reports no live state)");
    account_free(a);
    server_free(srv);
}

/* Only a 200 with "success": true is tolerant of HEO's optional fields. */
static void test_success_without_message_or_ids_is_accepted(void)
{
    TestServer *srv = test_server_start();
    IfsError *err = NULL;
    IfsActionResult res = {0};
    Account *a;

    server_answer(srv, 200, "application/json", "{\"success\":true,\"status\":\"requested\"}");
    server_answer(srv, 200, "application/json", "{\"success\":true}");
    a = account_open(test_server_origin(srv), "vps_1", &err);

    g_assert_true(act(a, "vps_1", "stop", FALSE, &res, &err));
    g_assert_cmpstr(res.message, ==, "requested");
    ifs_action_result_clear(&res);
    g_assert_true(act(a, "vps_1", "stop", FALSE, &res, &err));
    g_assert_cmpstr(res.message, ==, "requested");
    g_assert_true(g_str_has_prefix(status_of(a, "vps_1"), "stop requested at "));
    ifs_action_result_clear(&res);
    account_free(a);
    server_free(srv);
}

typedef struct {
    int status;
    const char *content_type;
    const char *body;
    int errnum;
    const char *code;
    const char *says;
} ErrorCase;

static void test_heo_errors_map_to_errno(void)
{
    static const ErrorCase cases[] = {
        {400, "application/json",
         "{\"success\":false,\"error\":\"confirmation_required\","
         "\"message\":\"Reset requires force=true\"}",                                              EINVAL, "confirmation_required",
         "HTTP 400 confirmation_required: Reset requires force=true"                                                                                                                          },
        {401, "application/json",
         "{\"success\":false,\"error\":\"unauthorized\","
         "\"message\":\"Missing, invalid, or revoked API key\"}",                                   EACCES, "unauthorized",          "revoked API key; check the account's token"             },
        {403, "application/json",
         "{\"success\":false,\"error\":\"unauthorized\","
         "\"message\":\"You do not have access to this VPS\"}",                                     EACCES, "unauthorized",
         "You do not have access to this VPS; the API key may not act on this VPS"                                                                                                            },
        {404, "application/json",
         "{\"success\":false,\"error\":\"not_found\",\"message\":\"Endpoint not found\"}",          ENOENT,
         "not_found",                                                                                                                "HTTP 404 not_found: Endpoint not found"                 },
        {405, "application/json",
         "{\"success\":false,\"error\":\"method_not_allowed\",\"message\":\"Method not allowed\"}", EIO,    "method_not_allowed",    "HTTP 405 method_not_allowed"                            },
        {429, "text/plain",       "Too many requests\n",                                            EAGAIN, NULL,
         "HTTP 429: Too many requests; the API is rate limiting infrafs"                                                                                                                      },
        {502, "application/json",
         "{\"success\":false,\"error\":\"provider_error\",\"message\":\"Failed to send action\"}",  EIO,    "provider_error",        "Failed to send action; HEO could not pass the action on"},
    };
    TestServer *srv = test_server_start();
    IfsError *err = NULL;
    Account *a;

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        server_answer(srv, cases[i].status, cases[i].content_type, cases[i].body);
    a = account_open(test_server_origin(srv), "vps_1", &err);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        IfsActionResult res = {0};

        g_assert_false(act(a, "vps_1", "start", FALSE, &res, &err));
        g_assert_cmpint(err->errnum, ==, cases[i].errnum);
        g_assert_cmpint(err->http_status, ==, cases[i].status);
        g_assert_cmpstr(err->code, ==, cases[i].code);
        assert_contains(err->message, "account 'heo': POST " START_PATH);
        assert_contains(err->message, cases[i].says);
        g_assert_null(strstr(err->message, SECRET));
        g_clear_pointer(&err, ifs_error_free);
        ifs_action_result_clear(&res);
    }
    /* Never retried: one POST per act(), even for 429 and 502. */
    g_assert_cmpuint(test_server_request_count(srv), ==, G_N_ELEMENTS(cases));
    g_assert_cmpstr(status_of(a, "vps_1"), ==,
                    "nothing requested since mount (HEO reports no live state)");
    account_free(a);
    server_free(srv);
}

static void test_act_on_an_unlisted_id_sends_nothing(void)
{
    IfsError *err = NULL;
    IfsActionResult res = {0};
    Account *a = account_open(NULL, "vps_1", &err);

    g_assert_false(act(a, "vps_9", "start", FALSE, &res, &err));
    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_cmpuint(ifs_http_request_count(a->http), ==, 0);
    ifs_error_free(err);
    account_free(a);
}

/* HEO's reader takes the code from `error` beside a `message` (and
 * /v1/status's word from `status`); a body of another shape is left to the
 * generic reading. */
static void test_heo_reads_its_own_shapes_only(void)
{
    static const ErrorCase cases[] = {
        {503, "application/json",         "{\"status\":\"error\"}",                         EIO,    "error", "HTTP 503 error"},
 /* a lone `error`, with no message beside it: the sentence */
        {403, "application/json",         "{\"success\":false,\"error\":\"unauthorized\"}", EACCES, NULL,
         "HTTP 403: unauthorized"                                                                                            },
 /* DeployHQ's field hash: the raw text, not a made-up code */
        {422, "application/json",         "{\"base\":[\"Server limit reached\"]}",          EINVAL, NULL,
         "HTTP 422: {\"base\":[\"Server limit reached\"]}"                                                                   },
 /* a proxy's RFC 7807 problem: its detail */
        {502, "application/problem+json",
         "{\"title\":\"Bad Gateway\",\"detail\":\"upstream down\"}",                        EIO,    NULL,
         "HTTP 502: upstream down"                                                                                           },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        const ErrorCase *c = &cases[i];
        g_autoptr(IfsError) err =
            ifs_http_error_from_response(c->status, c->content_type, c->body, strlen(c->body),
                                         "POST", START_PATH, "heo", heo()->error_reader);

        g_assert_cmpint(err->errnum, ==, c->errnum);
        g_assert_cmpstr(err->code, ==, c->code);
        assert_contains(err->message, c->says);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/heo/schema", test_schema);
    g_test_add_func("/heo/force-rules", test_force_rules);
    g_test_add_func("/heo/ids/accepted-forms", test_ids_accepted_forms);
    g_test_add_func("/heo/ids/refused", test_ids_refused);
    g_test_add_func("/heo/ids/too-long", test_id_too_long);
    g_test_add_func("/heo/list/no-request",
                    test_list_makes_no_request_and_says_nothing_was_requested);
    g_test_add_func("/heo/fetch/unlisted-id", test_fetch_of_an_unlisted_id_is_enoent);
    g_test_add_func("/heo/act/start-recorded", test_start_is_recorded_from_heos_answer);
    g_test_add_func("/heo/act/reset-force", test_reset_force_sends_force_true);
    g_test_add_func("/heo/act/200-not-success",
                    test_a_200_that_is_not_success_is_eio_and_not_recorded);
    g_test_add_func("/heo/act/success-minimal", test_success_without_message_or_ids_is_accepted);
    g_test_add_func("/heo/act/errors", test_heo_errors_map_to_errno);
    g_test_add_func("/heo/errors/own-shapes-only", test_heo_reads_its_own_shapes_only);
    g_test_add_func("/heo/act/unlisted-id", test_act_on_an_unlisted_id_sends_nothing);
    return g_test_run();
}
