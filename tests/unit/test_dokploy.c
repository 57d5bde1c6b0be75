/* Unit tests of the Dokploy provider (src/providers/dokploy.c): its
 * registration and config schema, the error answers Dokploy gives as the
 * HTTP layer reads them, and the provider itself against the scripted
 * server of test_server.h, for API answers the simulator never gives (ids with NUL bytes,
 * rows without an owner field, logs that are not strings or hold NULs). */
#include "infrafs/provider.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_fixture.h"
#include "test_util.h"

#define KEY "dokploy-test-key"

/* ======================================================================== */
/* The provider over the scripted server (provider_fixture.h), answering by */
/* "METHOD /path?query", with Dokploy's 401 for a missing key and 404 for   */
/* anything unknown.                                                        */

typedef ProviderFixture Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    provider_fixture_open(fx, &ifs_provider_dokploy, "dk", KEY, "{\"message\":\"Unauthorized\"}",
                          "{\"message\":\"Not found\",\"code\":\"NOT_FOUND\"}", NULL);
}

/* The account again, on a client made as the registry makes it
 * (ifs_provider_http_new), so that a test of last_action's words also
 * checks that the registry gives the client Dokploy's error reader. */
static void reopen_as_registered(Fixture *fx)
{
    IfsAccountConfig cfg = fx->cfg;

    ifs_provider_dokploy.close(fx->state);
    ifs_http_free(fx->http);
    cfg.url = (char *)test_server_origin(fx->server);
    cfg.secret = (char *)KEY;
    fx->http = ifs_provider_http_new(&ifs_provider_dokploy, &cfg);
    fx->state = ifs_provider_dokploy.open(fx->http, &fx->cfg, NULL);
    g_assert_nonnull(fx->state);
}

static GPtrArray *list_ok(Fixture *fx)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;

    if (!ifs_provider_dokploy.list(fx->state, out, &err))
        g_error("list failed: %s", err->message);
    return out;
}

static IfsResource *find(GPtrArray *list, const char *id)
{
    for (guint i = 0; i < list->len; i++) {
        IfsResource *r = g_ptr_array_index(list, i);
        if (g_strcmp0(r->id, id) == 0)
            return r;
    }
    return NULL;
}

/* The listed resources are sealed (text only): the value is copied out of
 * a tree parsed from it, into a buffer that the next call reuses. */
static const char *field(IfsResource *r, const char *key)
{
    static char value[256];
    json_object *obj = ifs_resource_object(r);
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v))
        g_strlcpy(value, "(absent)", sizeof value);
    else
        g_strlcpy(value,
                  json_object_is_type(v, json_type_null) ? "(null)" : json_object_get_string(v),
                  sizeof value);
    json_object_put(obj);
    return value;
}

/* The log file's text (sealed or not), or NULL when there is none; valid
 * until the next call. */
static const char *log_of(IfsResource *r)
{
    static char *text;
    json_object *extra = ifs_resource_extra_files(r);
    json_object *v;

    g_clear_pointer(&text, g_free);
    if (extra && json_object_object_get_ex(extra, "log", &v))
        text = g_strdup(json_object_get_string(v));
    json_object_put(extra);
    return text;
}

/* One project in today's shape, one in the pre-0.25 shape. */
static void serve_two_projects(TestServer *c)
{
    test_server_route(
        c, "GET /api/project.all", 200,
        "[{\"projectId\":\"p1\",\"name\":\"shop\",\"environments\":[{\"environmentId\":\"e1\","
        "\"applications\":[{\"applicationId\":\"app1\",\"name\":\"web\"},{\"name\":\"no-id\"}],"
        "\"compose\":[{\"composeId\":\"cmp1\",\"name\":\"mon\"}]}]},"
        "{\"projectId\":\"p2\",\"name\":\"old\",\"applications\":[{\"applicationId\":\"app2\"}],"
        "\"compose\":[]}]");
}

static void test_list_discovers_both_shapes_and_fills_in_the_owner(Fixture *fx, gconstpointer d)
{
    GPtrArray *list;
    IfsResource *r;
    guint problems = 0;

    (void)d;
    serve_two_projects(fx->server);
    /* A row that leaves its owner out gets it from where it was listed. */
    test_server_route(fx->server, "GET /api/deployment.all?applicationId=app1", 200,
                      "[{\"deploymentId\":\"d1\",\"status\":\"done\"}]");
    test_server_route(fx->server, "GET /api/deployment.allByCompose?composeId=cmp1", 200,
                      "[{\"deploymentId\":\"d2\",\"status\":\"running\",\"applicationId\":null,"
                      "\"composeId\":\"cmp1\"}]");
    test_server_route(
        fx->server, "GET /api/deployment.all?applicationId=app2", 200,
        "[{\"deploymentId\":\"d3\",\"status\":\"error\",\"applicationId\":\"app2\"}]");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=d1&tail=200", 200,
                      "\"one\\ntwo\"");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=d2&tail=200", 200,
                      "\"\"");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=d3&tail=200", 200,
                      "null");

    list = list_ok(fx);

    r = find(list, "d1");
    g_assert_nonnull(r);
    g_assert_cmpstr(r->kind, ==, "deployments");
    /* Kept as text from its listing on: no owner's rows stay trees. */
    g_assert_null(r->object);
    g_assert_nonnull(r->text);
    g_assert_cmpstr(field(r, "applicationId"), ==, "app1");
    g_assert_cmpstr(log_of(r), ==, "one\ntwo\n"); /* one trailing newline added */
    r = find(list, "d2");
    g_assert_nonnull(r);
    g_assert_cmpstr(field(r, "composeId"), ==, "cmp1");
    g_assert_cmpstr(log_of(r), ==, ""); /* no logPath: an empty log */
    r = find(list, "d3");
    g_assert_nonnull(r); /* the legacy project shape */
    g_assert_null(log_of(r)); /* not a string: no log file */
    for (guint i = 0; i < list->len; i++) {
        IfsResource *p = g_ptr_array_index(list, i);
        if (!p->id) {
            problems++;
            assert_contains(p->problem, "an application in project 'shop'");
        }
    }
    g_assert_cmpuint(problems, ==, 1);
    g_assert_cmpuint(list->len, ==, 4);
    g_ptr_array_unref(list);
}

static void test_an_id_with_a_nul_byte_is_reported_not_cut(Fixture *fx, gconstpointer d)
{
    GPtrArray *list;
    IfsResource *r;

    (void)d;
    test_server_route(
        fx->server, "GET /api/project.all", 200,
        "[{\"name\":\"p\",\"environments\":[{\"applications\":[{\"applicationId\":\"a\"}]}]}]");
    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200,
                      "[{\"deploymentId\":\"d\\u0000x\",\"status\":\"done\"}]");

    list = list_ok(fx);

    g_assert_cmpuint(list->len, ==, 1);
    r = g_ptr_array_index(list, 0);
    g_assert_null(r->id);
    assert_contains(r->problem, "deploymentId 'd%00x' holds a NUL byte");
    g_assert_cmpuint(test_server_count(fx->server, "GET /api/deployment.readLogs"), ==, 0);
    g_ptr_array_unref(list);
}

static void test_log_is_bounded_valid_and_without_nul(Fixture *fx, gconstpointer d)
{
    GString *log = g_string_new("\"");
    GPtrArray *list;
    const char *shown;
    char **lines;

    (void)d;
    /* A server that ignores tail: 300 lines, the last with a NUL byte. */
    for (int i = 1; i <= 300; i++)
        g_string_append_printf(log, "line %d%s\\n", i, i == 300 ? " \\u0000end" : "");
    g_string_append(log, "\"");
    test_server_route(fx->server, "GET /api/project.all", 200,
                      "[{\"environments\":[{\"applications\":[{\"applicationId\":\"a\"}]}]}]");
    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200,
                      "[{\"deploymentId\":\"d\",\"status\":\"done\"}]");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=d&tail=200", 200,
                      log->str);

    list = list_ok(fx);
    shown = log_of(g_ptr_array_index(list, 0));

    g_assert_nonnull(shown);
    g_assert_true(g_utf8_validate(shown, -1, NULL));
    lines = g_strsplit(shown, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 201); /* 200 lines and "" after the last \n */
    g_assert_cmpstr(lines[0], ==, "line 101");
    g_assert_cmpstr(lines[199], ==,
                    "line 300 \xEF\xBF\xBD"
                    "end");
    g_strfreev(lines);
    g_string_free(log, TRUE);
    g_ptr_array_unref(list);
}

static void test_a_list_that_is_not_an_array_fails_with_eio(Fixture *fx, gconstpointer d)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;

    (void)d;
    test_server_route(fx->server, "GET /api/project.all", 200, "{\"projects\":[]}");

    g_assert_false(ifs_provider_dokploy.list(fx->state, out, &err));

    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "account 'dk': GET /api/project.all: expected a JSON array");
    g_assert_cmpuint(out->len, ==, 0);
    ifs_error_free(err);
    g_ptr_array_unref(out);
}

static void test_fetch_relists_the_owner_and_says_enoent_once_gone(Fixture *fx, gconstpointer d)
{
    IfsError *err = NULL;
    IfsResource *r;
    GPtrArray *list;

    (void)d;
    /* Before any listing the owner is unknown: not ENOENT, which would drop it. */
    g_assert_null(ifs_provider_dokploy.fetch(fx->state, "deployments", "d1", &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    g_clear_pointer(&err, ifs_error_free);

    test_server_route(fx->server, "GET /api/project.all", 200,
                      "[{\"environments\":[{\"applications\":[{\"applicationId\":\"a\"}]}]}]");
    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200,
                      "[{\"deploymentId\":\"d1\",\"status\":\"running\",\"applicationId\":\"a\"}]");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=d1&tail=200", 200,
                      "\"building\"");
    list = list_ok(fx);
    g_ptr_array_unref(list);

    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200,
                      "[{\"deploymentId\":\"d1\",\"status\":\"error\",\"applicationId\":\"a\"}]");
    r = ifs_provider_dokploy.fetch(fx->state, "deployments", "d1", &err);
    g_assert_nonnull(r);
    g_assert_cmpstr(field(r, "status"), ==, "error");
    g_assert_cmpstr(log_of(r), ==, "building\n"); /* the last log read, not re-read */
    g_assert_cmpuint(test_server_count(fx->server, "GET /api/deployment.readLogs"), ==, 1);
    ifs_resource_unref(r);

    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200, "[]");
    g_assert_null(ifs_provider_dokploy.fetch(fx->state, "deployments", "d1", &err));
    g_assert_cmpint(err->errnum, ==, ENOENT);
    ifs_error_free(err);
}

/* A finished deployment's log is read once and kept; a running one's is
 * read on every refresh (the status is noted before the row is sealed). */
static void test_logs_of_finished_deployments_are_read_once(Fixture *fx, gconstpointer d)
{
    GPtrArray *list;

    (void)d;
    test_server_route(fx->server, "GET /api/project.all", 200,
                      "[{\"environments\":[{\"applications\":[{\"applicationId\":\"a\"}]}]}]");
    test_server_route(fx->server, "GET /api/deployment.all?applicationId=a", 200,
                      "[{\"deploymentId\":\"old\",\"status\":\"done\",\"applicationId\":\"a\"},"
                      "{\"deploymentId\":\"new\",\"status\":\"running\",\"applicationId\":\"a\"}]");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=old&tail=200", 200,
                      "\"finished\"");
    test_server_route(fx->server, "GET /api/deployment.readLogs?deploymentId=new&tail=200", 200,
                      "\"building\"");
    for (int round = 1; round <= 3; round++) {
        list = list_ok(fx);
        g_assert_cmpstr(log_of(find(list, "old")), ==, "finished\n");
        g_assert_cmpstr(log_of(find(list, "new")), ==, "building\n");
        g_ptr_array_unref(list);
        g_assert_cmpuint(
            test_server_count(fx->server, "GET /api/deployment.readLogs?deploymentId=old&tail=200"),
            ==, 1);
        g_assert_cmpuint(
            test_server_count(fx->server, "GET /api/deployment.readLogs?deploymentId=new&tail=200"),
            ==, (guint)round);
    }
}

static void test_kill_and_remove_post_the_id(Fixture *fx, gconstpointer d)
{
    IfsCommand cmd = {.verb = (char *)"1", .force = FALSE};
    IfsActionResult res = {0};
    IfsError *err = NULL;

    (void)d;
    test_server_route(fx->server, "POST /api/deployment.killProcess", 200, "");
    test_server_route(fx->server, "POST /api/deployment.removeDeployment", 200,
                      "{\"deploymentId\":\"a/b\",\"status\":\"done\"}");

    g_assert_true(
        ifs_provider_dokploy.act(fx->state, "deployments", "a/b", "kill", &cmd, &res, &err));
    g_assert_cmpint(res.http_status, ==, 200);
    g_assert_false(res.resource_gone);
    ifs_action_result_clear(&res);
    g_assert_true(
        ifs_provider_dokploy.act(fx->state, "deployments", "a/b", "remove", &cmd, &res, &err));
    g_assert_true(res.resource_gone);
    ifs_action_result_clear(&res);

    g_assert_cmpuint(
        test_server_count(fx->server,
                          "POST /api/deployment.killProcess\n{\"deploymentId\":\"a/b\"}"),
        ==, 1);
    g_assert_cmpuint(
        test_server_count(fx->server,
                          "POST /api/deployment.removeDeployment\n{\"deploymentId\":\"a/b\"}"),
        ==, 1);
}

static void test_kill_of_a_finished_deployment_is_einval_with_dokploys_words(Fixture *fx,
                                                                             gconstpointer d)
{
    IfsCommand cmd = {.verb = (char *)"1", .force = FALSE};
    IfsActionResult res = {0};
    IfsError *err = NULL;

    (void)d;
    reopen_as_registered(fx);
    test_server_route(
        fx->server, "POST /api/deployment.killProcess", 400,
        "{\"message\":\"Deployment is not running\",\"code\":\"BAD_REQUEST\",\"data\":"
        "{\"code\":\"BAD_REQUEST\",\"httpStatus\":400,\"path\":\"deployment.killProcess\"}}");

    g_assert_false(
        ifs_provider_dokploy.act(fx->state, "deployments", "x", "kill", &cmd, &res, &err));

    g_assert_cmpint(err->errnum, ==, EINVAL);
    g_assert_cmpint(err->http_status, ==, 400);
    g_assert_cmpstr(err->code, ==, "BAD_REQUEST");
    assert_contains(err->message,
                    "POST /api/deployment.killProcess: HTTP 400 BAD_REQUEST: "
                    "Deployment is not running");
    g_assert_cmpuint(test_server_count(fx->server, "POST"), ==, 1); /* never retried */
    ifs_error_free(err);
    ifs_action_result_clear(&res);
}

/* ======================================================================== */
/* Registration, configuration and Dokploy's error bodies                    */

static void test_registration(void)
{
    const IfsProviderType *p = ifs_provider_find("dokploy");
    IfsError *err = NULL;
    IfsCommand *cmd;

    g_assert_true(p == &ifs_provider_dokploy);
    g_assert_null(p->schema.default_url); /* self-hosted: url is required */
    g_assert_false(p->schema.needs_user);
    g_assert_cmpint(p->auth, ==, IFS_AUTH_HEADER);
    g_assert_cmpstr(p->auth_header, ==, "x-api-key");
    g_assert_cmpstr(p->kinds[0], ==, "deployments");
    g_assert_null(p->kinds[1]);
    g_assert_null(p->poll); /* Dokploy's actions are synchronous */
    for (const char *const *f = (const char *const[]){"kill", "remove", NULL}; *f; f++) {
        const IfsControlSpec *spec = ifs_provider_control(p, "deployments", *f);
        char *line;

        g_assert_nonnull(spec);
        line = ifs_control_commands_line(spec);
        g_assert_cmpstr(line, ==, "1\n");
        g_free(line);
        cmd = ifs_control_parse(spec, "1\n", 2, &err);
        g_assert_nonnull(cmd);
        ifs_command_free(cmd);
        g_assert_null(ifs_control_parse(spec, "1 force\n", 8, &err));
        g_assert_cmpint(err->errnum, ==, EINVAL);
        g_clear_pointer(&err, ifs_error_free);
    }
    g_assert_null(ifs_provider_control(p, "deployments", "power"));
}

static void test_config_requires_url(void)
{
    GError *gerr = NULL;
    char *dir = g_dir_make_tmp("infrafs-dokploy-XXXXXX", &gerr);
    char *path = g_build_filename(dir, "config", NULL);
    IfsError *err = NULL;
    IfsConfig *cfg;

    g_assert_no_error(gerr);
    g_file_set_contents(path, "[dk]\ntype = dokploy\ntoken = t\n", -1, &gerr);
    g_assert_no_error(gerr);
    g_assert_cmpint(g_chmod(path, 0600), ==, 0);
    g_assert_null(ifs_config_load(path, ifs_provider_schemas(), &err));
    g_test_message("refused: %s", err->message);
    g_assert_cmpint(err->errnum, ==, EINVAL);
    assert_contains(err->message, "missing required key 'url'");
    assert_contains(err->message, "dk");
    g_clear_pointer(&err, ifs_error_free);

    g_file_set_contents(path,
                        "[dk]\ntype = dokploy\nurl = https://dokploy.example.com/\n"
                        "token = t\n",
                        -1, &gerr);
    g_assert_no_error(gerr);
    g_assert_cmpint(g_chmod(path, 0600), ==, 0); /* a rewrite made a new file */
    cfg = ifs_config_load(path, ifs_provider_schemas(), &err);
    if (!cfg)
        g_error("refused: %s", err->message);
    g_assert_cmpstr(((IfsAccountConfig *)g_ptr_array_index(cfg->accounts, 0))->url, ==,
                    "https://dokploy.example.com");
    ifs_config_free(cfg);
    g_remove(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static IfsError *error_for(int status, const char *body)
{
    return ifs_http_error_from_response(status, "application/json", body, strlen(body), "POST",
                                        "/api/deployment.killProcess", "dk",
                                        ifs_provider_dokploy.error_reader);
}

static void test_error_shapes(void)
{
    static const struct {
        int status;
        const char *body;
        int errnum;
        const char *code;
        const char *words;
    } cases[] = {
        {400, "{\"message\":\"Deployment is not running\",\"code\":\"BAD_REQUEST\"}",           EINVAL,
         "BAD_REQUEST",                                                                                                 "HTTP 400 BAD_REQUEST: Deployment is not running"},
 /* The key wrapper's refusal (foreign, expired or rate-limited key). */
        {401, "{\"message\":\"Unauthorized\"}",                                                 EACCES, NULL,
         "HTTP 401: Unauthorized; check the account's token"                                                                                                             },
 /* An ownership refusal from a procedure. */
        {401,
         "{\"message\":\"You don't have access to this server.\",\"code\":"
         "\"UNAUTHORIZED\",\"data\":{\"httpStatus\":401}}",                                     EACCES, "UNAUTHORIZED", "You don't have access to this server."          },
        {404, "{\"message\":\"Deployment not found\",\"code\":\"NOT_FOUND\"}",                  ENOENT, "NOT_FOUND",
         "Deployment not found"                                                                                                                                          },
        {400,
         "{\"message\":\"Input validation failed\",\"code\":\"BAD_REQUEST\",\"issues\":"
         "[{\"code\":\"invalid_type\",\"path\":[\"deploymentId\"],\"message\":\"Required\"}]}", EINVAL, "BAD_REQUEST",  "Input validation failed: deploymentId: Required"},
        {415, "{\"message\":\"Unsupported content-type\",\"code\":\"UNSUPPORTED_MEDIA_TYPE\"}", EIO,
         "UNSUPPORTED_MEDIA_TYPE",                                                                                      "Unsupported content-type"                       },
        {500, "{\"message\":\"Internal server error\",\"code\":\"INTERNAL_SERVER_ERROR\"}",     EIO,
         "INTERNAL_SERVER_ERROR",                                                                                       "Internal server error"                          },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        IfsError *err = error_for(cases[i].status, cases[i].body);

        g_assert_cmpint(err->errnum, ==, cases[i].errnum);
        g_assert_cmpint(err->http_status, ==, cases[i].status);
        g_assert_cmpstr(err->code, ==, cases[i].code);
        assert_contains(err->message, "account 'dk': POST /api/deployment.killProcess");
        assert_contains(err->message, cases[i].words);
        ifs_error_free(err);
    }
}

/* Bodies not of tRPC's shape: no Dokploy code, the generic reading. */
static void test_foreign_error_shapes(void)
{
    IfsError *deployhq = error_for(422, "{\"error\":\"Resource is not in an error state\"}");
    IfsError *problem = error_for(404, "{\"title\":\"Not Found\",\"status\":404}");
    IfsError *issues = error_for(400,
                                 "{\"message\":\"Input validation failed\",\"issues\":"
                                 "[{\"path\":[\"a\",0],\"message\":\"Required\"},"
                                 "{\"message\":\"Too long\"},{\"path\":[\"b\"]}]}");

    g_assert_null(deployhq->code);
    assert_contains(deployhq->message,
                    "HTTP 422: {\"error\":\"Resource is not in an error state\"}");
    g_assert_null(problem->code);
    assert_contains(problem->message, "HTTP 404: Not Found");
    /* an issue without a path says only its message; one without a
     * message says nothing */
    assert_contains(issues->message, "HTTP 400: Input validation failed: a.0: Required; Too long");
    g_assert_true(g_str_has_suffix(issues->message, "Too long"));
    ifs_error_free(deployhq);
    ifs_error_free(problem);
    ifs_error_free(issues);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dokploy/registration", test_registration);
    g_test_add_func("/dokploy/config-requires-url", test_config_requires_url);
    g_test_add_func("/dokploy/error-shapes", test_error_shapes);
    g_test_add_func("/dokploy/error-shapes/foreign", test_foreign_error_shapes);
#define ADD(name, fn)                                                                              \
    g_test_add("/dokploy/" name, Fixture, NULL, fixture_setup, fn, provider_fixture_teardown)
    ADD("list/discovery", test_list_discovers_both_shapes_and_fills_in_the_owner);
    ADD("list/nul-id", test_an_id_with_a_nul_byte_is_reported_not_cut);
    ADD("list/log-bounds", test_log_is_bounded_valid_and_without_nul);
    ADD("list/not-an-array", test_a_list_that_is_not_an_array_fails_with_eio);
    ADD("list/logs-read-once", test_logs_of_finished_deployments_are_read_once);
    ADD("fetch", test_fetch_relists_the_owner_and_says_enoent_once_gone);
    ADD("act/posts", test_kill_and_remove_post_the_id);
    ADD("act/kill-not-running", test_kill_of_a_finished_deployment_is_einval_with_dokploys_words);
#undef ADD
    return g_test_run();
}
