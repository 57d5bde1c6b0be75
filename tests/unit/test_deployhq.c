/* DeployHQ: the shape-tolerant readers of hosted resources, regions and
 * sizes (every documented shape, and what happens with the undocumented),
 * and every documented error body through the HTTP error parser. */
#include <errno.h>
#include <string.h>

#include "infrafs/deployhq.h"
#include "infrafs/http.h"
#include "infrafs/provider.h"
#include "test_util.h"

#define WHERE "account 'dhq': GET /x"

typedef gboolean (*Parser)(json_object *, const char *, GPtrArray *, IfsError **);

static json_object *parse(const char *text)
{
    json_object *obj = json_tokener_parse(text);

    if (!obj && strcmp(text, "null") != 0)
        g_error("test JSON does not parse: %s", text);
    return obj;
}

/* Run `parser` over `text`; asserts it accepted the shape. */
static GPtrArray *accepted(Parser parser, const char *text)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    json_object *answer = parse(text);
    IfsError *err = NULL;

    if (!parser(answer, WHERE, out, &err))
        g_error("refused %s: %s", text, err->message);
    g_assert_null(err);
    json_object_put(answer);
    return out;
}

static void assert_refused(Parser parser, const char *text)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    json_object *answer = parse(text);
    IfsError *err = NULL;

    g_assert_false(parser(answer, WHERE, out, &err));
    g_assert_nonnull(err);
    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_true(g_str_has_prefix(err->message, WHERE ": unrecognised answer"));
    g_assert_cmpuint(out->len, ==, 0);
    ifs_error_free(err);
    json_object_put(answer);
    g_ptr_array_unref(out);
}

static IfsResource *at(GPtrArray *out, guint i)
{
    g_assert_cmpuint(i, <, out->len);
    return g_ptr_array_index(out, i);
}

/* "slug1 slug2 ...": the ids in order, for compact assertions. */
static char *ids(GPtrArray *out)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < out->len; i++)
        g_string_append_printf(s, "%s%s", i ? " " : "", at(out, i)->id ? at(out, i)->id : "-");
    return g_string_free(s, FALSE);
}

static const char *field(IfsResource *r, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(r->object, key, &v))
        return NULL;
    return json_object_get_string(v);
}

static const char *group_file(IfsResource *r)
{
    json_object *v;

    if (!r->extra_files || !json_object_object_get_ex(r->extra_files, "group", &v))
        return NULL;
    return json_object_get_string(v);
}

/* ---- hosted resources ---------------------------------------------------- */

static void test_is_vps(void)
{
    static const struct {
        const char *item;
        gboolean vps;
    } cases[] = {
        {"{\"identifier\":\"a\"}",         TRUE },
        {"{\"kind\":null}",                TRUE },
        {"{\"kind\":\"hosted_resource\"}", TRUE },
        {"{\"kind\":\"hosted_website\"}",  FALSE},
        {"{\"kind\":\"\"}",                FALSE},
        {"{\"kind\":42}",                  FALSE},
        {"{\"kind\":\"Hosted_Resource\"}", FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        json_object *item = parse(cases[i].item);
        g_assert_cmpint(ifs_deployhq_is_vps(item), ==, cases[i].vps);
        json_object_put(item);
    }
}

static void test_hosted_resources_keep_vpses_and_drop_static_sites(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_hosted_resources,
                 "[{\"identifier\":\"u-1\",\"kind\":\"hosted_resource\",\"status\":\"active\","
                 "  \"ssh_key\":{\"identifier\":\"k-1\",\"fingerprint\":\"SHA256:x\"}},"
                 " {\"identifier\":\"site-1\",\"kind\":\"hosted_website\",\"subdomain\":\"docs\"},"
                 " {\"identifier\":\"u-2\",\"status\":\"suspended\"},"
                 " {\"identifier\":\"u-3\",\"kind\":null,\"status\":\"destroying\"}]");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "u-1 u-2 u-3");
    for (guint i = 0; i < out->len; i++) {
        g_assert_cmpstr(at(out, i)->kind, ==, "vps");
        g_assert_null(at(out, i)->problem);
        g_assert_null(at(out, i)->extra_files);
    }
    /* The object is the item as the API sent it, status untouched. */
    g_assert_cmpstr(field(at(out, 0), "status"), ==, "active");
    g_assert_cmpstr(field(at(out, 1), "status"), ==, "suspended");
    g_assert_cmpstr(field(at(out, 2), "status"), ==, "destroying");
    g_assert_true(json_object_object_get_ex(at(out, 0)->object, "ssh_key", NULL));
    g_ptr_array_unref(out);
}

static void test_hosted_resources_empty_list(void)
{
    GPtrArray *out = accepted(ifs_deployhq_parse_hosted_resources, "[]");

    g_assert_cmpuint(out->len, ==, 0);
    g_ptr_array_unref(out);
}

static void test_hosted_resources_without_usable_identifier_say_why(void)
{
    static const char text[] =
        "[42, {\"name\":\"nameless\"}, {\"identifier\":7}, {\"identifier\":\"a\\u0000b\"},"
        " {\"identifier\":\"ok\"}]";
    GPtrArray *out = accepted(ifs_deployhq_parse_hosted_resources, text);
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "- - - - ok");
    assert_contains(at(out, 0)->problem, "hosted resource #1 is not a JSON object");
    assert_contains(at(out, 1)->problem, "hosted resource #2 ('nameless') has no identifier");
    assert_contains(at(out, 2)->problem, "#3 has no identifier");
    assert_contains(at(out, 3)->problem, "holds a NUL byte");
    g_assert_null(at(out, 4)->problem);
    g_ptr_array_unref(out);
}

static void test_hosted_resources_refuse_other_shapes(void)
{
    assert_refused(ifs_deployhq_parse_hosted_resources, "{\"hosted_resources\":[]}");
    assert_refused(ifs_deployhq_parse_hosted_resources, "\"[]\"");
    assert_refused(ifs_deployhq_parse_hosted_resources, "null");
}

/* ---- regions --------------------------------------------------------------- */

static void test_regions_documented_object(void)
{
    GPtrArray *out = accepted(ifs_deployhq_parse_regions,
                              "{\"regions\":[{\"slug\":\"nyc1\",\"name\":\"New York 1\"},"
                              "{\"slug\":\"ams3\",\"name\":\"Amsterdam 3\"}]}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "nyc1 ams3");
    g_assert_cmpstr(at(out, 0)->kind, ==, "regions");
    g_assert_cmpstr(field(at(out, 1), "name"), ==, "Amsterdam 3");
    g_assert_null(group_file(at(out, 0)));
    g_ptr_array_unref(out);
}

static void test_regions_bare_array(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_regions,
                 "[{\"slug\":\"fra1\",\"name\":\"Frankfurt 1\",\"available\":true},"
                 "{\"slug\":\"sgp1\",\"name\":\"Singapore 1\",\"available\":false}, \"lon1\"]");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "fra1 sgp1 lon1");
    g_assert_cmpstr(field(at(out, 1), "available"), ==, "false");
    /* A bare slug string is shown as {"slug": ...}. */
    g_assert_cmpstr(json_object_to_json_string_ext(at(out, 2)->object, JSON_C_TO_STRING_PLAIN), ==,
                    "{\"slug\":\"lon1\"}");
    g_ptr_array_unref(out);
}

static void test_regions_grouped_show_their_group(void)
{
    GPtrArray *out = accepted(
        ifs_deployhq_parse_regions,
        "{\"grouped_regions\":{"
        "  \"Europe\":[{\"slug\":\"ams3\",\"name\":\"Amsterdam 3\"},"
        "             {\"slug\":\"fra1\",\"name\":\"Frankfurt 1\",\"group\":\"EU-central\"}],"
        "  \"North America\":[{\"slug\":\"nyc1\",\"name\":\"New York 1\"}]}}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "ams3 fra1 nyc1");
    g_assert_cmpstr(group_file(at(out, 0)), ==, "Europe\n");
    g_assert_cmpstr(group_file(at(out, 2)), ==, "North America\n");
    /* The region's own field wins: no second file of that name. */
    g_assert_null(group_file(at(out, 1)));
    g_assert_cmpstr(field(at(out, 1), "group"), ==, "EU-central");
    /* `json` stays what the API sent: the group is not added to it. */
    g_assert_false(json_object_object_get_ex(at(out, 0)->object, "group", NULL));
    g_ptr_array_unref(out);
}

static void test_regions_grouped_other_member_forms(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_regions,
                 "{\"grouped_regions\":{"
                 "  \"Europe\":{\"ams3\":\"Amsterdam 3\",\"fra1\":{\"name\":\"Frankfurt 1\"}},"
                 "  \"Asia\":[\"sgp1\"],"
                 "  \"Broken\":17}}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "ams3 fra1 sgp1 -");
    g_assert_cmpstr(field(at(out, 0), "name"), ==, "Amsterdam 3");
    g_assert_cmpstr(field(at(out, 1), "name"), ==, "Frankfurt 1");
    g_assert_cmpstr(field(at(out, 1), "slug"), ==, "fra1");
    g_assert_cmpstr(group_file(at(out, 1)), ==, "Europe\n");
    g_assert_cmpstr(group_file(at(out, 2)), ==, "Asia\n");
    assert_contains(at(out, 3)->problem, "region group 'Broken' is neither a list nor an object");
    g_ptr_array_unref(out);
}

static void test_regions_grouped_as_a_plain_list(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_regions, "{\"grouped_regions\":[{\"slug\":\"nyc1\"}]}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "nyc1");
    g_assert_null(group_file(at(out, 0)));
    g_ptr_array_unref(out);
}

static void test_regions_without_slug_say_why(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_regions,
                 "{\"regions\":[{\"name\":\"Nowhere\"},{\"slug\":null},true,{\"slug\":\"ok1\"}]}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "- - - ok1");
    assert_contains(at(out, 0)->problem, "region #1 ('Nowhere') has no slug");
    assert_contains(at(out, 1)->problem, "region #2 has no slug");
    assert_contains(at(out, 2)->problem, "region #3 is not a JSON object");
    g_ptr_array_unref(out);
}

static void test_regions_refuse_unknown_shapes(void)
{
    static const char *const shapes[] = {
        "{}",
        "{\"regions\":{}}",
        "{\"regions\":null}",
        "{\"data\":[]}",
        "{\"grouped_regions\":\"Europe\"}",
        "{\"grouped_regions\":null}",
        "\"nyc1\"",
        "42",
        "null",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(shapes); i++)
        assert_refused(ifs_deployhq_parse_regions, shapes[i]);
}

/* ---- sizes ------------------------------------------------------------------- */

static void test_sizes_documented_object(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_sizes,
                 "{\"sizes\":[{\"slug\":\"s-1vcpu-1gb\",\"label\":\"1 vCPU / 1 GB\","
                 "\"monthly_cost\":6.0,\"currency\":\"gbp\"},"
                 "{\"slug\":\"s-2vcpu-4gb\",\"label\":\"2 vCPU / 4 GB\",\"monthly_cost\":18.0,"
                 "\"currency\":\"gbp\"}]}");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "s-1vcpu-1gb s-2vcpu-4gb");
    g_assert_cmpstr(at(out, 0)->kind, ==, "sizes");
    g_assert_cmpstr(field(at(out, 0), "currency"), ==, "gbp");
    g_ptr_array_unref(out);
}

static void test_sizes_bare_array(void)
{
    GPtrArray *out =
        accepted(ifs_deployhq_parse_sizes,
                 "[{\"slug\":\"s-1vcpu-1gb\",\"description\":\"Basic\",\"price_monthly\":6,"
                 "\"price_hourly\":0.00893,\"memory\":1024,\"vcpus\":1,\"disk\":25}]");
    g_autofree char *got = ids(out);

    g_assert_cmpstr(got, ==, "s-1vcpu-1gb");
    g_assert_cmpstr(field(at(out, 0), "memory"), ==, "1024");
    g_ptr_array_unref(out);
}

static void test_sizes_refuse_unknown_shapes(void)
{
    static const char *const shapes[] = {
        "{}", "{\"sizes\":{}}", "{\"regions\":[]}", "\"s-1vcpu-1gb\"", "null", "true",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(shapes); i++)
        assert_refused(ifs_deployhq_parse_sizes, shapes[i]);
}

/* ---- error bodies (doc/SEMANTICS.md §10.3.5; man infrafs, Errors) ---------------------- */

static void test_error_forms(void)
{
    static const struct {
        int status;
        const char *body;
        int errnum;
        const char *code; /* NULL: none */
        const char *words;
    } cases[] = {
  /* {"error": "..."}: the sentence itself, no code */
        {422, "{\"error\":\"Hosted resource is not in an error state\"}",                    EINVAL, NULL,
         "HTTP 422: Hosted resource is not in an error state"                                                                                                                                  },
        {403, "{\"error\":\"email_verification_required\"}",                                 EACCES, NULL,
         "HTTP 403: email_verification_required"                                                                                                                                               },
 /* {"errors": [...]} */
        {422, "{\"errors\":[\"Name can't be blank\",\"Size is not included in the list\"]}", EINVAL,
         NULL,                                                                                                                "HTTP 422: Name can't be blank; Size is not included in the list"},
 /* field hash, object-level errors under base */
        {422, "{\"base\":[\"Server limit reached\"],\"hostname\":[\"must be present\"]}",    EINVAL,
         NULL,                                                                                                                "HTTP 422: Server limit reached; hostname must be present"       },
        {400, "{\"region\":[\"is not available\"]}",                                         EINVAL, NULL,
         "HTTP 400: region is not available"                                                                                                                                                   },
 /* {"status": word, "error_code", "hint"} */
        {404,
         "{\"status\":\"not_found\",\"error_code\":\"record_not_found\","
         "\"hint\":\"Check the identifier\"}",                                               ENOENT, "record_not_found",      "HTTP 404 record_not_found: hint: Check the identifier"          },
        {403,
         "{\"status\":\"forbidden\",\"error_code\":\"api_access_restricted\","
         "\"hint\":\"Enable API access\"}",                                                  EACCES, "api_access_restricted", "hint: Enable API access"                                        },
        {400, "{\"status\":\"bad_request\",\"error_code\":\"invalid_json\"}",                EINVAL,
         "invalid_json",                                                                                                      "HTTP 400 invalid_json"                                          },
        {503,
         "{\"status\":\"service_unavailable\",\"error_code\":\"service_unavailable\","
         "\"hint\":\"Try again shortly\"}",                                                  EIO,    "service_unavailable",   "Try again"                                                      },
        {500,
         "{\"status\":\"internal_server_error\",\"error_code\":\"internal_error\","
         "\"error\":\"Something went wrong\",\"hint\":\"Contact support\"}",                 EIO,    "internal_error",        "internal_error: Something went wrong; hint: Contact support"    },
 /* the OpenAPI schema: {status: integer, error} (the number is no code) */
        {401, "{\"status\":401,\"error\":\"Unauthorized\"}",                                 EACCES, NULL,
         "HTTP 401: Unauthorized"                                                                                                                                                              },
        {404, "{\"status\":404,\"error\":\"Not Found\"}",                                    ENOENT, NULL,                    "HTTP 404: Not Found"                                            },
        {429, "{\"error\":\"Provisioning rate limit reached\"}",                             EAGAIN, NULL,
         "Provisioning rate limit reached"                                                                                                                                                     },
        {409, "{\"error\":\"A sync is already running\"}",                                   EBUSY,  NULL,
         "A sync is already running"                                                                                                                                                           },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(IfsError) err = ifs_http_error_from_response(
            cases[i].status, "application/json; charset=utf-8", cases[i].body,
            strlen(cases[i].body), "POST", "/hosted_resources/u-1/sync", "dhq",
            ifs_provider_deployhq.error_reader);

        g_assert_cmpint(err->errnum, ==, cases[i].errnum);
        g_assert_cmpint(err->http_status, ==, cases[i].status);
        g_assert_cmpstr(err->code, ==, cases[i].code);
        g_assert_true(
            g_str_has_prefix(err->message, "account 'dhq': POST /hosted_resources/u-1/sync: "));
        assert_contains(err->message, cases[i].words);
    }
}

/* Shapes of other APIs are no DeployHQ code or sentence: the generic
 * reading says what they hold. */
static void test_foreign_error_shapes(void)
{
    static const struct {
        int status;
        const char *body;
        const char *code;
        const char *words;
    } cases[] = {
  /* Dokploy's {message, code}: DeployHQ has no `code`, so no code */
        {404, "{\"message\":\"Deployment not found\",\"code\":\"NOT_FOUND\"}", NULL,
         "HTTP 404: Deployment not found"                                                                                      },
 /* HostAtlas's nested error: nothing DeployHQ names, the raw text */
        {404, "{\"error\":{\"code\":\"server_not_found\"}}",                   NULL,
         "HTTP 404: {\"error\":{\"code\":\"server_not_found\"}}"                                                               },
 /* a plain JSON string */
        {500, "\"Internal Server Error\"",                                     NULL,          "HTTP 500: Internal Server Error"},
 /* `error` beside a `message`: a code word */
        {400, "{\"error\":\"bad_request\",\"message\":\"request was odd\"}",   "bad_request",
         "HTTP 400 bad_request: request was odd"                                                                               },
 /* its status word as the code, and its `message` */
        {404, "{\"status\":\"not_found\",\"message\":\"Project not found\"}",  "not_found",
         "HTTP 404 not_found: Project not found"                                                                               },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(IfsError) err = ifs_http_error_from_response(
            cases[i].status, "application/json", cases[i].body, strlen(cases[i].body), "POST",
            "/hosted_resources/u-1/sync", "dhq", ifs_provider_deployhq.error_reader);

        g_assert_cmpstr(err->code, ==, cases[i].code);
        assert_contains(err->message, cases[i].words);
    }
}

/* ---- the provider type --------------------------------------------------------- */

static void test_provider_type(void)
{
    const IfsProviderType *p = ifs_provider_find("deployhq");
    const IfsControlSpec *sync;
    g_autofree char *line = NULL;

    g_assert_nonnull(p);
    g_assert_null(p->schema.default_url); /* url is required */
    g_assert_true(p->schema.needs_user);
    g_assert_cmpint(p->auth, ==, IFS_AUTH_BASIC);
    g_assert_cmpstr(p->kinds[0], ==, "vps");
    g_assert_cmpstr(p->kinds[1], ==, "regions");
    g_assert_cmpstr(p->kinds[2], ==, "sizes");
    g_assert_null(p->kinds[3]);
    sync = ifs_provider_control(p, "vps", "sync");
    g_assert_nonnull(sync);
    line = ifs_control_commands_line(sync);
    g_assert_cmpstr(line, ==, "1\n");
    g_assert_null(ifs_provider_control(p, "vps", "power"));
    g_assert_null(ifs_provider_control(p, "regions", "sync"));
}

int main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/deployhq/hosted/is-vps", test_is_vps);
    g_test_add_func("/deployhq/hosted/keep-vpses-drop-static-sites",
                    test_hosted_resources_keep_vpses_and_drop_static_sites);
    g_test_add_func("/deployhq/hosted/empty", test_hosted_resources_empty_list);
    g_test_add_func("/deployhq/hosted/no-usable-identifier",
                    test_hosted_resources_without_usable_identifier_say_why);
    g_test_add_func("/deployhq/hosted/other-shapes", test_hosted_resources_refuse_other_shapes);
    g_test_add_func("/deployhq/regions/documented-object", test_regions_documented_object);
    g_test_add_func("/deployhq/regions/bare-array", test_regions_bare_array);
    g_test_add_func("/deployhq/regions/grouped", test_regions_grouped_show_their_group);
    g_test_add_func("/deployhq/regions/grouped-other-forms",
                    test_regions_grouped_other_member_forms);
    g_test_add_func("/deployhq/regions/grouped-plain-list", test_regions_grouped_as_a_plain_list);
    g_test_add_func("/deployhq/regions/no-slug", test_regions_without_slug_say_why);
    g_test_add_func("/deployhq/regions/unknown-shapes", test_regions_refuse_unknown_shapes);
    g_test_add_func("/deployhq/sizes/documented-object", test_sizes_documented_object);
    g_test_add_func("/deployhq/sizes/bare-array", test_sizes_bare_array);
    g_test_add_func("/deployhq/sizes/unknown-shapes", test_sizes_refuse_unknown_shapes);
    g_test_add_func("/deployhq/errors/every-documented-form", test_error_forms);
    g_test_add_func("/deployhq/errors/foreign-shapes", test_foreign_error_shapes);
    g_test_add_func("/deployhq/provider/type", test_provider_type);
    return g_test_run();
}
