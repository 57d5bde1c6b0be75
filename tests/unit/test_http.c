/* Unit tests of the HTTP client (src/http/): the pure helpers (error bodies
 * of every provider, Retry-After, X-RateLimit-Reset) and real requests
 * against the scripted HTTP/1.1 server of test_server.h. */
#include "infrafs/http.h"
#include "infrafs/provider.h"

#include "test_server.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SECRET "s3cr3t-T0ken-xyz"

/* ======================================================================== */
/* Client helpers                                                           */

static IfsHttpConfig config_for(const char *origin)
{
    return (IfsHttpConfig){
        .account = "acct",
        .origin = origin,
        .auth = IFS_AUTH_BEARER,
        .secret = SECRET,
        .timeout_ms = 5000,
        .max_retries = 3,
        .max_retry_wait_s = 5,
    };
}

static double seconds_since(gint64 start_us)
{
    return (double)(g_get_monotonic_time() - start_us) / G_USEC_PER_SEC;
}

/* An origin on which nothing listens: a port just released by us. */
static char *refusing_origin(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char *origin;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &addr_len), ==, 0);
    origin = g_strdup_printf("http://127.0.0.1:%u", ntohs(addr.sin_port));
    close(fd);
    return origin;
}

static void assert_no_secret(const IfsError *err)
{
    g_assert_null(strstr(err->message, SECRET));
    if (err->code)
        g_assert_null(strstr(err->code, SECRET));
}

/* ======================================================================== */
/* Pure helpers: error bodies                                               */

/* Each provider's reading of its own error bodies; NULL, the generic one. */
#define HOSTUP ifs_provider_hostup.error_reader
#define HEO ifs_provider_heo.error_reader
#define DEPLOYHQ ifs_provider_deployhq.error_reader
#define HOSTATLAS ifs_provider_hostatlas.error_reader
#define DOKPLOY ifs_provider_dokploy.error_reader

static IfsError *error_for(IfsHttpErrorReader reader, int status, const char *content_type,
                           const char *body)
{
    IfsError *err = ifs_http_error_from_response(
        status, content_type, body, body ? strlen(body) : 0, "GET", "/some/path", "acct", reader);

    g_assert_nonnull(err);
    g_assert_nonnull(err->message);
    g_assert_true(g_utf8_validate(err->message, -1, NULL));
    g_assert_null(strchr(err->message, '\n'));
    g_assert_cmpint(err->http_status, ==, status);
    return err;
}

static void test_status_errno(void)
{
    static const struct {
        int status;
        int errnum;
    } table[] = {
        {400, EINVAL},
        {422, EINVAL},
        {401, EACCES},
        {403, EACCES},
        {404, ENOENT},
        {409, EBUSY },
        {429, EAGAIN},
        {500, EIO   },
        {502, EIO   },
        {503, EIO   },
        {504, EIO   },
        {418, EIO   },
        {301, EIO   },
        {405, EIO   },
        {100, EIO   },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autoptr(IfsError) err = error_for(NULL, table[i].status, NULL, "");

        g_assert_cmpint(err->errnum, ==, table[i].errnum);
    }
}

static void test_error_hostup_problem(void)
{
    static const char body[] = "{\"type\":\"https://developer.hostup.se/errors/vps_not_found\","
                               "\"title\":\"VPS not found\",\"status\":404,"
                               "\"detail\":\"VPS vps_x does not exist\",\"code\":\"vps_not_found\","
                               "\"instance\":\"/api/v2/vps/vps_x\",\"requestId\":\"req_1\"}";
    g_autoptr(IfsError) err =
        ifs_http_error_from_response(404, "application/problem+json", body, sizeof body - 1, "GET",
                                     "/api/v2/vps", "hostup", HOSTUP);

    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_cmpint(err->http_status, ==, 404);
    g_assert_cmpstr(err->code, ==, "vps_not_found");
    g_assert_cmpstr(err->message, ==,
                    "account 'hostup': GET /api/v2/vps: HTTP 404 vps_not_found: "
                    "VPS vps_x does not exist");
}

static void test_error_hostup_invalid_request(void)
{
    g_autoptr(IfsError) err =
        error_for(HOSTUP, 400, "application/json",
                  "{\"title\":\"Invalid request\",\"status\":400,\"code\":\"invalid_request\","
                  "\"detail\":\"The request is invalid\",\"errors\":["
                  "{\"pointer\":\"/force\",\"detail\":\"must be a boolean\",\"code\":\"type\"}]}");

    g_assert_cmpint(err->errnum, ==, EINVAL);
    g_assert_cmpstr(err->code, ==, "invalid_request");
    assert_contains(err->message, "The request is invalid: /force: must be a boolean");
}

static void test_error_heo(void)
{
    g_autoptr(IfsError) err = error_for(HEO, 403, "application/json",
                                        "{\"success\":false,\"error\":\"unauthorized\","
                                        "\"message\":\"You do not have access to this VPS\"}");

    g_assert_cmpint(err->errnum, ==, EACCES);
    g_assert_cmpstr(err->code, ==, "unauthorized");
    assert_contains(err->message, "HTTP 403 unauthorized: You do not have access to this VPS");
}

static void test_error_heo_provider_error(void)
{
    g_autoptr(IfsError) err = error_for(
        HEO, 502, "application/json",
        "{\"success\":false,\"error\":\"provider_error\",\"message\":\"Failed to send action\"}");

    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_cmpstr(err->code, ==, "provider_error");
    assert_contains(err->message, "Failed to send action");
}

static void test_error_deployhq_error_string(void)
{
    g_autoptr(IfsError) err = error_for(DEPLOYHQ, 422, "application/json",
                                        "{\"error\":\"Resource is not in an error state\"}");

    g_assert_cmpint(err->errnum, ==, EINVAL);
    g_assert_null(err->code);
    assert_contains(err->message, "HTTP 422: Resource is not in an error state");
}

static void test_error_deployhq_errors_array(void)
{
    g_autoptr(IfsError) err = error_for(
        DEPLOYHQ, 422, NULL, "{\"errors\":[\"Name can't be blank\",\"Size is invalid\"]}");

    g_assert_null(err->code);
    assert_contains(err->message, "Name can't be blank; Size is invalid");
}

static void test_error_deployhq_field_hash(void)
{
    g_autoptr(IfsError) err =
        error_for(DEPLOYHQ, 422, "application/json",
                  "{\"base\":[\"Server limit reached\"],\"hostname\":[\"must be present\"]}");

    g_assert_cmpint(err->errnum, ==, EINVAL);
    assert_contains(err->message, "Server limit reached; hostname must be present");
}

static void test_error_deployhq_error_code_hint(void)
{
    g_autoptr(IfsError) err =
        error_for(DEPLOYHQ, 404, "application/json",
                  "{\"status\":\"not_found\",\"error_code\":\"record_not_found\","
                  "\"hint\":\"Check the identifier\"}");

    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_cmpstr(err->code, ==, "record_not_found");
    assert_contains(err->message, "hint: Check the identifier");
}

static void test_error_deployhq_spec_status(void)
{
    g_autoptr(IfsError) err =
        error_for(DEPLOYHQ, 404, "application/json", "{\"status\":404,\"error\":\"Not Found\"}");

    g_assert_null(err->code);
    assert_contains(err->message, "HTTP 404: Not Found");
}

static void test_error_hostatlas(void)
{
    g_autoptr(IfsError) nested = error_for(
        HOSTATLAS, 404, "application/json",
        "{\"error\":{\"code\":\"server_not_found\",\"message\":\"Server 47 not found\"}}");
    g_autoptr(IfsError) flat = error_for(HOSTATLAS, 429, "application/json",
                                         "{\"code\":\"rate_limited\",\"message\":\"Slow down\"}");

    g_assert_cmpstr(nested->code, ==, "server_not_found");
    assert_contains(nested->message, "HTTP 404 server_not_found: Server 47 not found");
    g_assert_cmpint(flat->errnum, ==, EAGAIN);
    g_assert_cmpstr(flat->code, ==, "rate_limited");
    assert_contains(flat->message, "Slow down");
}

/* The other forms "code, message and status" may take: a numeric code, the
 * HTTP status beside them, field errors inside the nested object. */
static void test_error_hostatlas_variants(void)
{
    g_autoptr(IfsError) numeric =
        error_for(HOSTATLAS, 403, "application/json",
                  "{\"code\":40301,\"message\":\"Key lacks scope servers:read\",\"status\":403}");
    g_autoptr(IfsError) with_status =
        error_for(HOSTATLAS, 401, "application/json",
                  "{\"status\":401,\"code\":\"unauthenticated\",\"message\":\"Invalid API key\"}");
    g_autoptr(IfsError) fields = error_for(
        HOSTATLAS, 422, "application/json",
        "{\"error\":{\"code\":\"validation_failed\",\"message\":\"The given data was invalid.\","
        "\"errors\":{\"per_page\":[\"must be at most 100\"]}}}");

    g_assert_cmpint(numeric->errnum, ==, EACCES);
    g_assert_cmpstr(numeric->code, ==, "40301");
    assert_contains(numeric->message, "HTTP 403 40301: Key lacks scope servers:read");
    g_assert_cmpint(with_status->errnum, ==, EACCES);
    g_assert_cmpstr(with_status->code, ==, "unauthenticated");
    assert_contains(with_status->message, "HTTP 401 unauthenticated: Invalid API key");
    g_assert_cmpint(fields->errnum, ==, EINVAL);
    g_assert_cmpstr(fields->code, ==, "validation_failed");
    assert_contains(fields->message, "HTTP 422 validation_failed: The given data was invalid.");
}

static void test_error_dokploy(void)
{
    g_autoptr(IfsError) trpc = error_for(
        DOKPLOY, 404, "application/json",
        "{\"message\":\"Deployment not found\",\"code\":\"NOT_FOUND\",\"data\":"
        "{\"code\":\"NOT_FOUND\",\"httpStatus\":404,\"path\":\"deployment.removeDeployment\"}}");
    g_autoptr(IfsError) issues = error_for(
        DOKPLOY, 400, "application/json",
        "{\"message\":\"Input validation failed\",\"code\":\"BAD_REQUEST\",\"issues\":"
        "[{\"code\":\"too_small\",\"message\":\"String must contain at least 1 character(s)\","
        "\"path\":[\"deploymentId\"]}]}");
    g_autoptr(IfsError) unauthorized =
        error_for(DOKPLOY, 401, "application/json", "{\"message\":\"Unauthorized\"}");

    g_assert_cmpstr(trpc->code, ==, "NOT_FOUND");
    assert_contains(trpc->message, "HTTP 404 NOT_FOUND: Deployment not found");
    g_assert_cmpstr(issues->code, ==, "BAD_REQUEST");
    assert_contains(
        issues->message,
        "Input validation failed: deploymentId: String must contain at least 1 character(s)");
    g_assert_cmpint(unauthorized->errnum, ==, EACCES);
    g_assert_null(unauthorized->code);
    assert_contains(unauthorized->message, "HTTP 401: Unauthorized");
}

/* Without a provider's reader, what any API may send: a sentence under a
 * common name (detail first), a string, strings in an array (five, then a
 * count); never a code, and a vendor's shape is shown as its text. */
static void test_error_generic(void)
{
    g_autoptr(IfsError) named =
        error_for(NULL, 400, "application/json",
                  "{\"message\":\"m\",\"detail\":\"d\",\"title\":\"t\",\"code\":\"c\"}");
    g_autoptr(IfsError) titled = error_for(NULL, 404, NULL, "{\"title\":\"Not Found\"}");
    g_autoptr(IfsError) string = error_for(NULL, 500, "application/json", "\"Server error\"");
    g_autoptr(IfsError) listed =
        error_for(NULL, 422, NULL, "[\"a\",1,\"b\",{\"message\":\"c\"},\"d\",\"e\",\"f\",\"g\"]");
    g_autoptr(IfsError) vendor =
        error_for(NULL, 403, "application/json", "{\"success\":false,\"error\":\"unauthorized\"}");

    g_assert_null(named->code);
    assert_contains(named->message, "HTTP 400: d");
    assert_contains(titled->message, "HTTP 404: Not Found");
    assert_contains(string->message, "HTTP 500: Server error");
    assert_contains(listed->message, "HTTP 422: a; b; d; and 3 more");
    g_assert_null(vendor->code);
    assert_contains(vendor->message, "HTTP 403: {\"success\":false,\"error\":\"unauthorized\"}");
}

static void test_error_plain_text(void)
{
    g_autoptr(IfsError) err =
        error_for(NULL, 429, "text/plain", "\n  Too many requests  \nsecond line\n");

    g_assert_null(err->code);
    assert_contains(err->message, "HTTP 429: Too many requests");
    g_assert_null(strstr(err->message, "second line"));
}

static void test_error_html(void)
{
    g_autoptr(IfsError) err =
        error_for(NULL, 502, "text/html",
                  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
                  "<body><center><h1>502 Bad Gateway</h1></center></body></html>");

    assert_contains(err->message, "HTTP 502: 502 Bad Gateway");
    g_assert_null(strstr(err->message, "<"));
}

static void test_error_huge_body(void)
{
    gsize len = 1024 * 1024 + 17;
    char *body = g_malloc(len + 1);
    g_autoptr(IfsError) err = NULL;

    memset(body, 'a', len);
    body[len] = '\0';
    err = error_for(NULL, 500, "text/plain", body);
    g_assert_cmpuint(strlen(err->message), <, 400);
    g_free(body);
}

static void test_error_huge_json_message(void)
{
    GString *body = g_string_new("{\"message\":\"");
    g_autoptr(IfsError) err = NULL;

    for (int i = 0; i < 10000; i++)
        g_string_append(body, "word ");
    g_string_append(body, "\",\"code\":\"x\"}");
    err = error_for(NULL, 400, "application/json", body->str);
    g_assert_cmpuint(strlen(err->message), <, 400);
    g_string_free(body, TRUE);
}

static void test_error_hostile_bodies(void)
{
    static const char *const bodies[] = {
        "",
        " ",
        "\n\n\n",
        "null",
        "true",
        "42",
        "-1e999",
        "[]",
        "{}",
        "[1,2,3]",
        "[\"first\",{\"message\":\"second\"},3]",
        "\"just a string\"",
        "{\"message\":",
        "{\"message\":123,\"code\":{\"x\":1},\"error\":[1]}",
        "{\"errors\":[1,null,{}]}",
        "{\"errors\":{}}",
        "{\"issues\":[{\"path\":[1,{}]}]}",
        "{\"message\":\"line one\\nline two\\r\\n\\u0000tab\\tend\"}",
        "{\"message\":\"\\ud800 lone surrogate\"}",
        "\xff\xfe\xfd invalid utf-8 \xc3",
        "<title>unterminated",
        "<html><title></title>",
        "{\"hint\":\"only a hint\"}",
        "{\"status\":\"teapot\"}",
        "{\"error\":{\"error\":{\"error\":{}}}}",
        "{\"error\":{\"code\":{},\"message\":[]},\"code\":1.5}",
        "{\"issues\":[{\"path\":[null,[]],\"message\":\"m\"}],\"code\":\"\"}",
        "{\"errors\":[{\"pointer\":\"\",\"detail\":\"\"},{\"field\":1,\"message\":2}]}",
        "{\"base\":[1,\"x\"],\"f\":\"not a list\",\"hint\":\"x\",\"error\":\"x\"}",
        "{\"error\":\"e\",\"error_description\":\"\",\"status\":{}}",
    };
    /* Whatever reads them: every provider's reader, and the generic one. */
    const IfsHttpErrorReader readers[] = {HOSTUP, HEO, DEPLOYHQ, HOSTATLAS, DOKPLOY, NULL};
    GString *deep = g_string_new(NULL);

    for (gsize r = 0; r < G_N_ELEMENTS(readers); r++) {
        for (gsize i = 0; i < G_N_ELEMENTS(bodies); i++) {
            g_autoptr(IfsError) err = error_for(readers[r], 500, "application/json", bodies[i]);
            g_autoptr(IfsError) untyped = error_for(readers[r], 400, NULL, bodies[i]);

            assert_contains(err->message, "HTTP 500");
            g_assert_cmpint(untyped->errnum, ==, EINVAL);
        }
    }
    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, '[');
    {
        g_autoptr(IfsError) err = error_for(NULL, 500, NULL, deep->str);

        assert_contains(err->message, "HTTP 500");
    }
    g_string_free(deep, TRUE);
}

static void test_error_nul_bytes_and_null_args(void)
{
    static const char body[] = "{\"message\":\"before\"}\0{\"message\":\"after\"}";
    g_autoptr(IfsError) with_nul = ifs_http_error_from_response(
        400, "application/json", body, sizeof body - 1, "POST", "/x", "acct", NULL);
    g_autoptr(IfsError) nothing =
        ifs_http_error_from_response(503, NULL, NULL, 0, NULL, NULL, NULL, NULL);
    /* A body that is not NUL-terminated within body_len. */
    g_autoptr(IfsError) unterminated =
        ifs_http_error_from_response(500, "text/plain", "abcdef", 3, "GET", "/y", "acct", NULL);

    assert_contains(with_nul->message, "before");
    g_assert_null(strstr(with_nul->message, "after"));
    g_assert_cmpint(nothing->errnum, ==, EIO);
    assert_contains(nothing->message, "HTTP 503");
    assert_contains(unterminated->message, "HTTP 500: abc");
    g_assert_null(strstr(unterminated->message, "abcd"));
}

/* ======================================================================== */
/* Pure helpers: Retry-After and X-RateLimit-Reset                          */

static void test_retry_after(void)
{
    const gint64 now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

    g_assert_cmpint(ifs_http_parse_retry_after("120", now), ==, 120);
    g_assert_cmpint(ifs_http_parse_retry_after(" 5 ", now), ==, 5);
    g_assert_cmpint(ifs_http_parse_retry_after("0", now), ==, 0);
    g_assert_cmpint(ifs_http_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), ==, 10);
    g_assert_cmpint(ifs_http_parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now), ==, 60);
    g_assert_cmpint(ifs_http_parse_retry_after("Sun Nov  6 08:49:39 1994", now), ==, 2);
    /* A date in the past means "now". */
    g_assert_cmpint(ifs_http_parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), ==, 0);
    g_assert_cmpint(ifs_http_parse_retry_after("-5", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after("1.5", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after("99999999999999999999999", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after("soon", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after("", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after("   ", now), ==, -1);
    g_assert_cmpint(ifs_http_parse_retry_after(NULL, now), ==, -1);
}

static void test_rate_limit_reset(void)
{
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("1700000000"), ==, 1700000000);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset(" 1700000000 "), ==, 1700000000);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("1700000000.75"), ==, 1700000000);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("2023-11-14T22:13:20Z"), ==, 1700000000);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("2023-11-14T22:13:20.123Z"), ==, 1700000000);
    /* Found by fuzz_headers: a date before 1970 is no Reset. */
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("0226-12-06T12:00:00Z"), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("2023-11-14T23:13:20+01:00"), ==, 1700000000);
    /* Without a zone the time is taken as UTC. */
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("2023-11-14T22:13:20"), ==, 1700000000);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("tomorrow"), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("17000x"), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("1700000000."), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset("-1"), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset(""), ==, -1);
    g_assert_cmpint(ifs_http_parse_rate_limit_reset(NULL), ==, -1);
}

/* ======================================================================== */
/* Requests against the scripted server                                     */

/* Sends a GET (answered 200) and a POST (answered 401 echoing the secret),
 * and returns both requests as the server saw them. */
static void exchange_with_auth(IfsHttpConfig *cfg, char **get_seen, char **post_seen)
{
    TestServer *srv = test_server_start();
    IfsHttp *http;
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;

    cfg->origin = test_server_origin(srv);
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    test_server_reply(srv, 401, NULL, "application/json",
                      "{\"message\":\"invalid key " SECRET "\",\"code\":\"" SECRET "\"}");
    http = ifs_http_new(cfg);
    resp = ifs_http_request(http, "GET", "/auth", NULL, &err);
    g_assert_nonnull(resp);
    g_assert_null(err);
    g_assert_null(ifs_http_request(http, "POST", "/auth", NULL, &err));
    g_assert_nonnull(err);
    g_assert_cmpint(err->errnum, ==, EACCES);
    assert_no_secret(err);
    assert_contains(err->message, "[redacted]");
    *get_seen = test_server_request(srv, 0);
    *post_seen = test_server_request(srv, 1);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_auth_bearer(void)
{
    IfsHttpConfig cfg = config_for(NULL);
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;

    exchange_with_auth(&cfg, &get, &post);
    assert_contains(get, "GET /auth HTTP/1.1\r\n");
    assert_contains(get, "\r\nAuthorization: Bearer " SECRET "\r\n");
    assert_contains(post, "\r\nAuthorization: Bearer " SECRET "\r\n");
}

static void test_auth_basic(void)
{
    IfsHttpConfig cfg = config_for(NULL);
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;
    g_autofree char *encoded = g_base64_encode((const guchar *)"ops@example.com:" SECRET,
                                               strlen("ops@example.com:" SECRET));
    g_autofree char *expected = g_strdup_printf("\r\nAuthorization: Basic %s\r\n", encoded);

    cfg.auth = IFS_AUTH_BASIC;
    cfg.user = "ops@example.com";
    exchange_with_auth(&cfg, &get, &post);
    assert_contains(get, expected);
    assert_contains(post, expected);
}

static void test_auth_header(void)
{
    IfsHttpConfig cfg = config_for(NULL);
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;

    cfg.auth = IFS_AUTH_HEADER;
    cfg.auth_header = "x-api-key";
    exchange_with_auth(&cfg, &get, &post);
    assert_contains(get, "\r\nx-api-key: " SECRET "\r\n");
    g_assert_null(strstr(get, "Authorization"));
}

static void test_auth_none(void)
{
    IfsHttpConfig cfg = config_for(NULL);
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;

    cfg.auth = IFS_AUTH_NONE;
    exchange_with_auth(&cfg, &get, &post);
    g_assert_null(strstr(get, "Authorization"));
    g_assert_null(strstr(get, SECRET));
}

static void test_secret_with_line_break_refused(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;

    cfg.secret = SECRET "\r\nX-Injected: 1";
    http = ifs_http_new(&cfg);
    g_assert_null(ifs_http_request(http, "GET", "/x", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EINVAL);
    assert_no_secret(err);
    g_assert_cmpuint(test_server_request_count(srv), ==, 0);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_ok_body_and_headers(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;
    g_autofree char *bare_post = NULL;

    test_server_reply(srv, 200, NULL, "application/json; charset=utf-8", "{\"data\":[1,2]}");
    test_server_reply(srv, 202, NULL, "application/json", "{\"accepted\":true}");
    test_server_reply(srv, 200, NULL, NULL, "");

    resp = ifs_http_request(http, "GET", "/api/v2/vps?limit=2", NULL, &err);
    g_assert_null(err);
    g_assert_cmpint(resp->status, ==, 200);
    g_assert_cmpstr(resp->body, ==, "{\"data\":[1,2]}");
    g_assert_cmpuint(resp->body_len, ==, strlen("{\"data\":[1,2]}"));
    g_assert_cmpstr(resp->content_type, ==, "application/json; charset=utf-8");
    ifs_http_response_free(resp);

    resp = ifs_http_request(http, "POST", "/act", "{\"force\":true}", &err);
    g_assert_null(err);
    g_assert_cmpint(resp->status, ==, 202);
    ifs_http_response_free(resp);

    resp = ifs_http_request(http, "POST", "/bare", NULL, &err);
    g_assert_null(err);
    g_assert_cmpstr(resp->body, ==, "");
    g_assert_cmpuint(resp->body_len, ==, 0);
    g_assert_null(resp->content_type);
    ifs_http_response_free(resp);

    get = test_server_request(srv, 0);
    post = test_server_request(srv, 1);
    bare_post = test_server_request(srv, 2);
    assert_contains(get, "GET /api/v2/vps?limit=2 HTTP/1.1\r\n");
    assert_contains(get, "\r\nAccept: application/json\r\n");
    assert_contains(get, "\r\nUser-Agent: infrafs/");
    g_assert_null(strstr(get, "Content-Type"));
    assert_contains(post, "POST /act HTTP/1.1\r\n");
    assert_contains(post, "\r\nContent-Type: application/json\r\n");
    g_assert_true(g_str_has_suffix(post, "\r\n\r\n{\"force\":true}"));
    g_assert_null(strstr(post, "Expect:"));
    assert_contains(bare_post, "\r\nContent-Length: 0\r\n");
    g_assert_null(strstr(bare_post, "Content-Type"));
    g_assert_cmpuint(ifs_http_request_count(http), ==, 3);
    /* Each action got a connection of its own, so that libcurl can never
     * send it twice over a reused connection that turned out dead. */
    g_assert_cmpuint(test_server_connection_count(srv), ==, 3);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_not_found_problem(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;

    cfg.account = "hostup";
    cfg.error_reader = HOSTUP;
    http = ifs_http_new(&cfg);
    test_server_reply(srv, 404, NULL, "application/problem+json",
                      "{\"title\":\"Not found\",\"status\":404,\"code\":\"vps_not_found\","
                      "\"detail\":\"VPS vps_x does not exist\"}");
    g_assert_null(ifs_http_request(http, "GET", "/api/v2/vps/vps_x", NULL, &err));
    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_cmpint(err->http_status, ==, 404);
    g_assert_cmpstr(err->code, ==, "vps_not_found");
    g_assert_cmpstr(err->message, ==,
                    "account 'hostup': GET /api/v2/vps/vps_x: HTTP 404 vps_not_found: "
                    "VPS vps_x does not exist");
    /* 404 is an answer, not a hiccup: no retry. */
    g_assert_cmpuint(ifs_http_request_count(http), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_get_retried_after_503(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    gint64 start = g_get_monotonic_time();

    test_server_reply(srv, 503, NULL, "text/plain", "maintenance");
    test_server_reply(srv, 200, NULL, "application/json", "{\"ok\":true}");
    resp = ifs_http_request(http, "GET", "/r", NULL, &err);
    g_assert_null(err);
    g_assert_cmpstr(resp->body, ==, "{\"ok\":true}");
    g_assert_cmpuint(ifs_http_request_count(http), ==, 2);
    g_assert_cmpuint(test_server_request_count(srv), ==, 2);
    g_assert_cmpfloat(seconds_since(start), >=, 0.45); /* first backoff step */
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_post_not_retried(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;
    g_autoptr(IfsError) limited = NULL;

    test_server_reply(srv, 503, NULL, "application/json", "{\"message\":\"busy\"}");
    test_server_reply(srv, 429, "Retry-After: 0\r\n", "text/plain", "Too many requests");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_null(ifs_http_request(http, "POST", "/vps/x/restart", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_cmpint(err->http_status, ==, 503);
    g_assert_null(strstr(err->message, "attempts"));
    g_assert_null(ifs_http_request(http, "POST", "/vps/x/restart", NULL, &limited));
    g_assert_cmpint(limited->errnum, ==, EAGAIN);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 2);
    g_assert_cmpuint(test_server_request_count(srv), ==, 2);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_get_gives_up_after_max_retries(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;

    cfg.max_retries = 2;
    http = ifs_http_new(&cfg);
    /* Retry-After: 0 lets the retries go at once. */
    test_server_reply(srv, 504, "Retry-After: 0\r\n", "text/plain", "gateway timeout");
    test_server_reply(srv, 503, "Retry-After: 0\r\n", "text/plain", "unavailable");
    test_server_reply(srv, 502, "Retry-After: 0\r\n", "text/plain", "bad gateway");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_null(ifs_http_request(http, "GET", "/g", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_cmpint(err->http_status, ==, 502);
    assert_contains(err->message, "gave up after 3 attempts");
    g_assert_cmpuint(ifs_http_request_count(http), ==, 3);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_retry_after_honoured(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    gint64 start = g_get_monotonic_time();

    test_server_reply(srv, 429, "Retry-After: 1\r\n", "application/json",
                      "{\"code\":\"rate_limited\",\"detail\":\"slow down\"}");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    resp = ifs_http_request(http, "GET", "/limited", NULL, &err);
    g_assert_null(err);
    g_assert_nonnull(resp);
    g_assert_cmpfloat(seconds_since(start), >=, 0.95);
    g_assert_cmpfloat(seconds_since(start), <, 3.0);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 2);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* A POST answered 429 with Retry-After holds back the next GET too. */
static void test_retry_after_holds_later_reads(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    g_autoptr(IfsError) read_err = NULL;
    gint64 start;

    test_server_reply(srv, 429, "retry-after: 1\r\n", "text/plain", "Too many requests");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_null(ifs_http_request(http, "POST", "/act", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EAGAIN);
    start = g_get_monotonic_time();
    resp = ifs_http_request(http, "GET", "/read", NULL, &read_err);
    g_assert_null(read_err);
    g_assert_cmpfloat(seconds_since(start), >=, 0.9);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_rate_limit_remaining_recorded(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;

    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, -1);
    test_server_reply(srv, 200, "x-ratelimit-limit: 60\r\nx-ratelimit-remaining: 7\r\n",
                      "application/json", "{}");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    resp = ifs_http_request(http, "GET", "/a", NULL, &err);
    ifs_http_response_free(resp);
    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, 7);
    /* An answer without the header keeps the last value. */
    resp = ifs_http_request(http, "GET", "/b", NULL, &err);
    ifs_http_response_free(resp);
    g_assert_null(err);
    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, 7);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* Remaining 0 with a Reset an hour ahead: the next GET waits, but never
 * longer than max_retry_wait_s. */
static void test_exhausted_budget_slows_reads(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GDateTime) later = g_date_time_add_hours(now, 1);
    g_autofree char *iso = g_date_time_format_iso8601(later);
    g_autofree char *headers =
        g_strdup_printf("X-RATELIMIT-REMAINING: 0\r\nX-RateLimit-Reset: %s\r\n", iso);
    gint64 start;

    cfg.max_retry_wait_s = 1;
    http = ifs_http_new(&cfg);
    test_server_reply(srv, 200, headers, "application/json", "{}");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    resp = ifs_http_request(http, "GET", "/a", NULL, &err);
    ifs_http_response_free(resp);
    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, 0);
    start = g_get_monotonic_time();
    resp = ifs_http_request(http, "GET", "/b", NULL, &err);
    g_assert_null(err);
    g_assert_cmpfloat(seconds_since(start), >=, 0.9);
    g_assert_cmpfloat(seconds_since(start), <, 3.0);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_timeout(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;
    gint64 start = g_get_monotonic_time();

    cfg.timeout_ms = 200;
    http = ifs_http_new(&cfg);
    test_server_reply_late(srv, 3000);
    g_assert_null(ifs_http_request(http, "POST", "/slow", NULL, &err));
    g_assert_cmpint(err->errnum, ==, ETIMEDOUT);
    g_assert_cmpint(err->http_status, ==, 0);
    assert_contains(err->message, "account 'acct': POST /slow: ");
    assert_contains(err->message, test_server_origin(srv));
    g_assert_cmpfloat(seconds_since(start), <, 2.0);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_connection_refused(void)
{
    g_autofree char *origin = refusing_origin();
    IfsHttpConfig cfg = config_for(origin);
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;

    cfg.max_retries = 1;
    http = ifs_http_new(&cfg);
    g_assert_null(ifs_http_request(http, "GET", "/api/v2/vps", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EHOSTUNREACH);
    assert_contains(err->message, "account 'acct': GET /api/v2/vps: no connection to ");
    assert_contains(err->message, origin);
    assert_contains(err->message, "(Connection refused); check `url` and the network");
    assert_no_secret(err);
    /* Nothing reached a server. */
    g_assert_cmpuint(ifs_http_request_count(http), ==, 0);
    ifs_http_free(http);
}

static void test_truncated_body(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;

    test_server_reply_raw(srv, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":", TRUE);
    g_assert_null(ifs_http_request(http, "POST", "/t", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "account 'acct': POST /t: ");
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_dropped_connection(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;

    test_server_drop(srv);
    g_assert_null(ifs_http_request(http, "POST", "/d", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_cmpint(err->http_status, ==, 0);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_get_retried_after_drop(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;

    test_server_drop(srv);
    test_server_reply(srv, 200, NULL, "application/json", "[]");
    resp = ifs_http_request(http, "GET", "/d", NULL, &err);
    g_assert_null(err);
    g_assert_cmpstr(resp->body, ==, "[]");
    g_assert_cmpuint(ifs_http_request_count(http), ==, 2);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_too_large_body(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;

    test_server_reply_raw(srv, "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n{", TRUE);
    g_assert_null(ifs_http_request(http, "GET", "/big", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "larger than 64 MiB");
    /* Retrying would not make it smaller. */
    g_assert_cmpuint(test_server_request_count(srv), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* A CA file that cannot be read fails before anything is sent, and
 * retrying would not help. */
static void test_unreadable_cacert(void)
{
    TestServer *srv = test_server_start();
    g_autofree char *https =
        g_strdup_printf("https://%s", test_server_origin(srv) + strlen("http://"));
    IfsHttpConfig cfg = config_for(https);
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;

    cfg.cacert = "/nonexistent/infrafs-test-ca.pem";
    http = ifs_http_new(&cfg);
    g_assert_null(ifs_http_request(http, "GET", "/tls", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "cacert");
    g_assert_null(strstr(err->message, "attempts"));
    g_assert_cmpuint(ifs_http_request_count(http), ==, 0);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_redirect_not_followed(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;

    test_server_reply(srv, 301, "Location: https://elsewhere.example/api\r\n", "text/html",
                      "<html><title>Moved</title></html>");
    g_assert_null(ifs_http_request(http, "GET", "/api", NULL, &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message, "redirects to https://elsewhere.example/api");
    g_assert_cmpuint(test_server_request_count(srv), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_get_json(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;
    g_autoptr(IfsError) bad = NULL;
    g_autoptr(IfsError) trailing = NULL;
    json_object *json;
    json_object *id;

    test_server_reply(srv, 200, NULL, "application/json", " {\"id\":\"vps_1\"}\n");
    test_server_reply(srv, 200, NULL, "application/json", "{\"id\": ");
    test_server_reply(srv, 200, NULL, "application/json", "{} {}");
    json = ifs_http_get_json(http, "/api/v2/vps/vps_1", &err);
    g_assert_null(err);
    g_assert_true(json_object_object_get_ex(json, "id", &id));
    g_assert_cmpstr(json_object_get_string(id), ==, "vps_1");
    json_object_put(json);

    g_assert_null(ifs_http_get_json(http, "/api/v2/vps", &bad));
    g_assert_cmpint(bad->errnum, ==, EIO);
    assert_contains(bad->message, "account 'acct': GET /api/v2/vps: unreadable response");
    g_assert_null(ifs_http_get_json(http, "/twice", &trailing));
    g_assert_cmpint(trailing->errnum, ==, EIO);
    /* A malformed 2xx body is not retried. */
    g_assert_cmpuint(ifs_http_request_count(http), ==, 3);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* A web page where JSON belongs (a login page, a proxy's error page) is
 * named as such, with its title: usually `url` is wrong. */
static void test_get_json_web_page(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;

    test_server_reply(srv, 200, NULL, "text/html; charset=utf-8",
                      "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                      "<body>...</body></html>");
    g_assert_null(ifs_http_get_json(http, "/api/v2/vps", &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    g_assert_cmpint(err->http_status, ==, 200);
    assert_contains(err->message,
                    "account 'acct': GET /api/v2/vps: unreadable response: "
                    "HTTP 200 with text/html; charset=utf-8 (\"Sign in\") "
                    "instead of JSON; check `url`");
    ifs_http_free(http);
    test_server_stop(srv);
}

/* json-c stops at its depth limit: a hostile answer costs no memory and
 * says what is wrong with it. */
static void test_get_json_too_deep(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autoptr(IfsError) err = NULL;
    g_autoptr(IfsError) ok_err = NULL;
    GString *deep = g_string_new(NULL);
    GString *fine = g_string_new(NULL);
    json_object *json;

    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, '[');
    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, ']');
    for (int i = 0; i < 32; i++)
        g_string_append_c(fine, '[');
    for (int i = 0; i < 32; i++)
        g_string_append_c(fine, ']');
    test_server_reply(srv, 200, NULL, "application/json", deep->str);
    test_server_reply(srv, 200, NULL, "application/json", fine->str);
    g_assert_null(ifs_http_get_json(http, "/deep", &err));
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message,
                    "account 'acct': GET /deep: unreadable response (JSON "
                    "nested more than 32 levels deep");
    json = ifs_http_get_json(http, "/fine", &ok_err);
    g_assert_null(ok_err);
    g_assert_nonnull(json);
    json_object_put(json);
    g_string_free(deep, TRUE);
    g_string_free(fine, TRUE);
    ifs_http_free(http);
    test_server_stop(srv);
}

typedef struct {
    IfsHttp *http;
    guint after_ms;
} Canceller;

static gpointer cancel_later(gpointer data)
{
    Canceller *c = data;

    g_usleep(c->after_ms * 1000);
    ifs_http_cancel(c->http);
    return NULL;
}

/* Unmount: a request stuck on a silent server ends at once, and nothing
 * more is sent. */
static void test_cancel_ends_a_stalled_request(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;
    g_autoptr(IfsError) after = NULL;
    Canceller c;
    GThread *t;
    gint64 start = g_get_monotonic_time();

    cfg.timeout_ms = 30000;
    http = ifs_http_new(&cfg);
    c = (Canceller){http, 300};
    test_server_reply_late(srv, 20000);
    t = g_thread_new("cancel", cancel_later, &c);
    g_assert_null(ifs_http_request(http, "GET", "/silent", NULL, &err));
    g_thread_join(t);
    g_assert_cmpint(err->errnum, ==, ECANCELED);
    assert_contains(err->message,
                    "account 'acct': GET /silent: abandoned because infrafs "
                    "is stopping");
    g_assert_cmpfloat(seconds_since(start), <, 2.5);
    g_assert_cmpuint(test_server_request_count(srv), ==, 1); /* not retried */

    g_assert_null(ifs_http_request(http, "POST", "/later", NULL, &after));
    g_assert_cmpint(after->errnum, ==, ECANCELED);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* A long Retry-After wait ends at once too. */
static void test_cancel_ends_a_retry_after_wait(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;
    Canceller c;
    GThread *t;
    gint64 start = g_get_monotonic_time();

    cfg.max_retry_wait_s = 60;
    http = ifs_http_new(&cfg);
    c = (Canceller){http, 300};
    test_server_reply(srv, 503, "Retry-After: 30\r\n", "text/plain", "later");
    t = g_thread_new("cancel", cancel_later, &c);
    g_assert_null(ifs_http_request(http, "GET", "/busy", NULL, &err));
    g_thread_join(t);
    g_assert_cmpint(err->errnum, ==, ECANCELED);
    g_assert_cmpfloat(seconds_since(start), <, 2.0);
    g_assert_cmpuint(test_server_request_count(srv), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

typedef struct {
    IfsHttp *http;
    guint ok;
} Worker;

static gpointer fetch_many(gpointer data)
{
    Worker *w = data;

    for (int i = 0; i < 5; i++) {
        IfsError *err = NULL;
        json_object *json = ifs_http_get_json(w->http, "/c", &err);

        if (json)
            w->ok++;
        json_object_put(json);
        ifs_error_free(err);
    }
    return NULL;
}

static void test_concurrent_requests(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    Worker workers[4];
    GThread *threads[4];
    guint ok = 0;

    /* The test server serves one connection at a time, so every answer
     * closes its connection to let the next thread in. */
    for (int i = 0; i < 20; i++)
        test_server_reply_raw(srv,
                              "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                              "Content-Length: 2\r\n\r\n{}",
                              TRUE);
    for (int i = 0; i < 4; i++) {
        workers[i] = (Worker){.http = http};
        threads[i] = g_thread_new("worker", fetch_many, &workers[i]);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(threads[i]);
        ok += workers[i].ok;
    }
    g_assert_cmpuint(ok, ==, 20);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 20);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* ======================================================================== */
/* Absolute URLs (ifs_http_request_url)                                     */

static void test_url_own_origin_gets_credentials(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    g_autofree char *url = g_strconcat(test_server_origin(srv), "/heartbeat/abc?status=ok", NULL);
    g_autofree char *get = NULL;
    g_autofree char *post = NULL;

    test_server_reply(srv, 200, NULL, "text/plain", "OK");
    test_server_reply(srv, 201, NULL, "application/json", "{}");
    resp = ifs_http_request_url(http, "GET", url, NULL, &err);
    g_assert_null(err);
    g_assert_cmpint(resp->status, ==, 200);
    g_assert_cmpstr(resp->body, ==, "OK");
    ifs_http_response_free(resp);
    resp = ifs_http_request_url(http, "POST", url, "{\"a\":1}", &err);
    g_assert_null(err);
    g_assert_cmpint(resp->status, ==, 201);
    ifs_http_response_free(resp);

    get = test_server_request(srv, 0);
    post = test_server_request(srv, 1);
    assert_contains(get, "GET /heartbeat/abc?status=ok HTTP/1.1\r\n");
    assert_contains(get, "\r\nAuthorization: Bearer " SECRET "\r\n");
    assert_contains(post, "POST /heartbeat/abc?status=ok HTTP/1.1\r\n");
    assert_contains(post, "\r\nAuthorization: Bearer " SECRET "\r\n");
    g_assert_true(g_str_has_suffix(post, "\r\n\r\n{\"a\":1}"));
    g_assert_cmpuint(ifs_http_request_count(http), ==, 2);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* The account's key must never reach another host, whatever the scheme of
 * authentication: another port, or the same port under another name, is
 * another origin. */
static void test_url_foreign_origin_gets_no_credentials(void)
{
    static const IfsAuthScheme schemes[] = {IFS_AUTH_BEARER, IFS_AUTH_BASIC, IFS_AUTH_HEADER};

    for (gsize i = 0; i < G_N_ELEMENTS(schemes); i++) {
        TestServer *own = test_server_start();
        TestServer *other = test_server_start();
        IfsHttpConfig cfg = config_for(test_server_origin(own));
        IfsHttp *http;
        g_autofree char *url = g_strconcat(test_server_origin(other), "/hb/1", NULL);
        g_autofree char *renamed =
            g_strdup_printf("http://localhost:%s/hb/2", strrchr(test_server_origin(own), ':') + 1);
        IfsHttpResponse *resp;

        cfg.auth = schemes[i];
        cfg.user = "ops@example.com";
        cfg.auth_header = "x-api-key";
        http = ifs_http_new(&cfg);
        test_server_reply(other, 200, NULL, "text/plain", "OK");
        test_server_reply(own, 200, NULL, "text/plain", "OK");
        for (int k = 0; k < 2; k++) {
            g_autoptr(IfsError) err = NULL;

            resp = ifs_http_request_url(http, "GET", k == 0 ? url : renamed, NULL, &err);
            g_assert_null(err);
            g_assert_cmpint(resp->status, ==, 200);
            ifs_http_response_free(resp);
        }
        for (int k = 0; k < 2; k++) {
            g_autofree char *seen = test_server_request(k == 0 ? other : own, 0);

            assert_contains(seen, k == 0 ? "GET /hb/1 HTTP/1.1\r\n" : "GET /hb/2 HTTP/1.1\r\n");
            g_assert_null(strstr(seen, "Authorization"));
            g_assert_null(strstr(seen, "x-api-key"));
            g_assert_null(strstr(seen, SECRET));
        }
        ifs_http_free(http);
        test_server_stop(own);
        test_server_stop(other);
    }
}

/* An origin with a path prefix (a self-hosted API under /api) owns only
 * what lies under that prefix. */
static void test_url_path_prefix(void)
{
    TestServer *srv = test_server_start();
    g_autofree char *origin = g_strconcat(test_server_origin(srv), "/api/", NULL);
    IfsHttpConfig cfg = config_for(origin);
    IfsHttp *http = ifs_http_new(&cfg);
    static const char *const paths[] = {"/api/hb/1", "/api", "/apiary/hb/1", "/other/hb"};
    static const gboolean owned[] = {TRUE, TRUE, FALSE, FALSE};

    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
        g_autoptr(IfsError) err = NULL;
        g_autofree char *url = g_strconcat(test_server_origin(srv), paths[i], NULL);
        g_autofree char *seen = NULL;
        IfsHttpResponse *resp;

        test_server_reply(srv, 200, NULL, "text/plain", "OK");
        resp = ifs_http_request_url(http, "GET", url, NULL, &err);
        g_assert_null(err);
        ifs_http_response_free(resp);
        seen = test_server_request(srv, (guint)i);
        g_assert_true((strstr(seen, "Authorization: Bearer " SECRET) != NULL) == owned[i]);
    }
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_url_refuses_other_schemes(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *ftp = g_strconcat("ftp", strchr(test_server_origin(srv), ':'), "/hb", NULL);
    const char *const urls[] = {ftp,
                                "file:///etc/passwd",
                                "gopher://127.0.0.1/x",
                                "javascript:alert(1)",
                                "/heartbeat/abc",
                                "",
                                "http://exa mple.com/x",
                                NULL};

    for (gsize i = 0; i < G_N_ELEMENTS(urls); i++) {
        g_autoptr(IfsError) err = NULL;

        g_assert_null(ifs_http_request_url(http, "GET", urls[i], NULL, &err));
        g_assert_nonnull(err);
        g_assert_cmpint(err->errnum, ==, EINVAL);
        assert_contains(err->message, "account 'acct': GET ");
    }
    {
        g_autoptr(IfsError) err = NULL;

        g_assert_null(ifs_http_request_url(http, "GET", ftp, NULL, &err));
        assert_contains(err->message, "refusing a 'ftp' URL; infrafs only requests http and https");
    }
    g_assert_cmpuint(test_server_request_count(srv), ==, 0);
    g_assert_cmpuint(ifs_http_request_count(http), ==, 0);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* Error answers map as for paths; nothing is retried, not even a 429 or a
 * 503 to a GET; messages name the URL without its query. */
static void test_url_errors_mapped_and_not_retried(void)
{
    TestServer *own = test_server_start();
    TestServer *other = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(own));
    IfsHttp *http;
    g_autofree char *url = g_strconcat(test_server_origin(other), "/heartbeat/abc?token=q", NULL);
    g_autofree char *shown =
        g_strconcat("account 'acct': GET ", test_server_origin(other),
                    "/heartbeat/abc: HTTP 404 not_found: Heartbeat gone", NULL);
    g_autoptr(IfsError) gone = NULL;
    g_autoptr(IfsError) limited = NULL;
    g_autoptr(IfsError) down = NULL;

    cfg.error_reader = HOSTATLAS; /* a heartbeat's ping_url */
    http = ifs_http_new(&cfg);
    test_server_reply(other, 404, NULL, "application/json",
                      "{\"error\":{\"code\":\"not_found\",\"message\":\"Heartbeat gone\"}}");
    test_server_reply(other, 429, "Retry-After: 0\r\n", "application/json",
                      "{\"code\":\"rate_limited\",\"message\":\"Slow down\"}");
    test_server_reply(other, 503, "Retry-After: 0\r\n", "text/plain", "maintenance");
    test_server_reply(other, 200, NULL, "text/plain", "OK");
    g_assert_null(ifs_http_request_url(http, "GET", url, NULL, &gone));
    g_assert_cmpint(gone->errnum, ==, ENOENT);
    g_assert_cmpint(gone->http_status, ==, 404);
    g_assert_cmpstr(gone->code, ==, "not_found");
    g_assert_cmpstr(gone->message, ==, shown);
    g_assert_null(ifs_http_request_url(http, "GET", url, NULL, &limited));
    g_assert_cmpint(limited->errnum, ==, EAGAIN);
    g_assert_null(ifs_http_request_url(http, "GET", url, NULL, &down));
    g_assert_cmpint(down->errnum, ==, EIO);
    g_assert_null(strstr(down->message, "attempts"));
    g_assert_cmpuint(test_server_request_count(other), ==, 3);
    g_assert_cmpuint(test_server_request_count(own), ==, 0);
    ifs_http_free(http);
    test_server_stop(own);
    test_server_stop(other);
}

/* Another host's rate-limit headers neither show as the account's budget
 * nor hold back the account's reads. */
static void test_url_foreign_rate_limit_ignored(void)
{
    TestServer *own = test_server_start();
    TestServer *other = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(own));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *url = g_strconcat(test_server_origin(other), "/hb", NULL);
    g_autofree char *reset =
        g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time() / G_USEC_PER_SEC + 3600);
    g_autofree char *headers = g_strdup_printf(
        "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %s\r\nRetry-After: 3600\r\n", reset);
    g_autoptr(IfsError) err = NULL;
    IfsHttpResponse *resp;
    gint64 start;

    test_server_reply(other, 429, headers, "text/plain", "slow down");
    test_server_reply(own, 200, NULL, "application/json", "{}");
    g_assert_null(ifs_http_request_url(http, "GET", url, NULL, &err));
    g_assert_cmpint(err->errnum, ==, EAGAIN);
    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, -1);
    g_clear_pointer(&err, ifs_error_free);
    start = g_get_monotonic_time();
    resp = ifs_http_request(http, "GET", "/read", NULL, &err);
    g_assert_null(err);
    g_assert_cmpfloat(seconds_since(start), <, 0.5);
    ifs_http_response_free(resp);
    ifs_http_free(http);
    test_server_stop(own);
    test_server_stop(other);
}

static void test_url_transport_errors(void)
{
    TestServer *own = test_server_start();
    TestServer *slow = test_server_start();
    g_autofree char *refusing = refusing_origin();
    IfsHttpConfig cfg = config_for(test_server_origin(own));
    IfsHttp *http;
    g_autofree char *slow_url = g_strconcat(test_server_origin(slow), "/hb", NULL);
    g_autofree char *dead_url = g_strconcat(refusing, "/hb", NULL);
    g_autoptr(IfsError) timeout = NULL;
    g_autoptr(IfsError) refused = NULL;

    cfg.timeout_ms = 200;
    http = ifs_http_new(&cfg);
    test_server_reply_late(slow, 3000);
    g_assert_null(ifs_http_request_url(http, "GET", slow_url, NULL, &timeout));
    g_assert_cmpint(timeout->errnum, ==, ETIMEDOUT);
    assert_contains(timeout->message, test_server_origin(slow));
    g_assert_null(ifs_http_request_url(http, "GET", dead_url, NULL, &refused));
    g_assert_cmpint(refused->errnum, ==, EHOSTUNREACH);
    assert_contains(refused->message, refusing);
    g_assert_null(strstr(refused->message, test_server_origin(own)));
    ifs_http_free(http);
    test_server_stop(own);
    test_server_stop(slow);
}

/* ======================================================================== */
/* The rate-limit budget                                                    */

/* A client whose own pacing (budget.h) is far from binding, so that these
 * tests see only what the API's answers say is left. */
static IfsHttpConfig budget_config_for(const char *origin)
{
    IfsHttpConfig cfg = config_for(origin);

    cfg.rate_limit = 1000;
    cfg.rate_window_s = 1;
    return cfg;
}

/* "X-RateLimit-Remaining: N" plus a Reset `in_s` seconds ahead (epoch). */
static char *budget_headers(int remaining, int limit, int in_s)
{
    return g_strdup_printf("X-RateLimit-Limit: %d\r\nX-RateLimit-Remaining: %d\r\n"
                           "X-RateLimit-Reset: %" G_GINT64_FORMAT "\r\n",
                           limit, remaining, g_get_real_time() / G_USEC_PER_SEC + in_s);
}

/* Seconds one GET took. */
static double timed_get(IfsHttp *http, const char *path)
{
    gint64 start = g_get_monotonic_time();
    g_autoptr(IfsError) err = NULL;
    IfsHttpResponse *resp = ifs_http_request(http, "GET", path, NULL, &err);

    g_assert_null(err);
    ifs_http_response_free(resp);
    return seconds_since(start);
}

/* Remaining 2: two more reads go at once, even though their answers say
 * nothing more; the third waits for Reset. */
static void test_budget_counts_every_request(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = budget_config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *headers = budget_headers(2, 10, 2);

    test_server_reply(srv, 200, headers, "application/json", "{}");
    for (int i = 0; i < 3; i++)
        test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_cmpfloat(timed_get(http, "/a"), <, 0.5);
    g_assert_cmpfloat(timed_get(http, "/b"), <, 0.5);
    g_assert_cmpfloat(timed_get(http, "/c"), <, 0.5);
    g_assert_cmpfloat(timed_get(http, "/d"), >=, 0.9);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* Within one window (the same Reset) an answer saying more is left, such
 * as one overtaken by later answers, does not raise the budget; a later
 * Reset is a new window and does. */
static void test_budget_only_shrinks_within_a_window(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = budget_config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *one = budget_headers(1, 10, 2);
    g_autofree char *stale = budget_headers(5, 10, 2);
    g_autofree char *next_window = budget_headers(4, 10, 60);

    test_server_reply(srv, 200, one, "application/json", "{}");
    test_server_reply(srv, 200, stale, "application/json", "{}");
    test_server_reply(srv, 200, next_window, "application/json", "{}");
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_cmpfloat(timed_get(http, "/a"), <, 0.5); /* leaves 1 */
    g_assert_cmpfloat(timed_get(http, "/b"), <, 0.5); /* takes it; "5" ignored */
    g_assert_cmpfloat(timed_get(http, "/c"), >=, 0.9); /* waits; then 4 left */
    g_assert_cmpfloat(timed_get(http, "/d"), <, 0.5);
    g_assert_cmpint(ifs_http_rate_limit_remaining(http), ==, 4);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* Once Reset has passed, the budget is X-RateLimit-Limit again. */
static void test_budget_refills_after_reset(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = budget_config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *spent = budget_headers(0, 3, 1);

    test_server_reply(srv, 200, spent, "application/json", "{}");
    for (int i = 0; i < 4; i++)
        test_server_reply(srv, 200, NULL, "application/json", "{}");
    g_assert_cmpfloat(timed_get(http, "/a"), <, 0.5);
    g_assert_cmpfloat(timed_get(http, "/b"), >=, 0.5); /* until Reset: 3 again */
    g_assert_cmpfloat(timed_get(http, "/c"), <, 0.5);
    g_assert_cmpfloat(timed_get(http, "/d"), <, 0.5);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* An action is counted too, and one that would overdraw what the API
 * said is left waits for its Reset rather than draw a 429. */
static void test_budget_actions_count_and_wait(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = budget_config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *one = budget_headers(1, 10, 2);
    g_autoptr(IfsError) err = NULL;
    IfsHttpResponse *resp;
    gint64 start;

    test_server_reply(srv, 200, one, "application/json", "{}");
    test_server_reply(srv, 202, NULL, "application/json", "{}");
    test_server_reply(srv, 202, NULL, "application/json", "{}");
    g_assert_cmpfloat(timed_get(http, "/a"), <, 0.5);
    for (int i = 0; i < 2; i++) { /* the first takes the last one; the second waits */
        start = g_get_monotonic_time();
        resp = ifs_http_request(http, "POST", "/act", NULL, &err);
        g_assert_null(err);
        ifs_http_response_free(resp);
        if (i == 0)
            g_assert_cmpfloat(seconds_since(start), <, 0.5);
        else
            g_assert_cmpfloat(seconds_since(start), >=, 0.9);
    }
    ifs_http_free(http);
    test_server_stop(srv);
}

typedef struct {
    IfsHttp *http;
    double seconds;
} TimedReader;

static gpointer timed_reader(gpointer data)
{
    TimedReader *r = data;

    r->seconds = timed_get(r->http, "/detail");
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Five readers at once with 3 left: three go, two wait for Reset, because
 * each takes its share before sending, not when its answer comes back. */
static void test_budget_concurrent_readers_never_overdraw(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = budget_config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    g_autofree char *three = budget_headers(3, 3, 2);
    g_autofree char *first = g_strdup_printf("HTTP/1.1 200 OK\r\n%sConnection: close\r\n"
                                             "Content-Length: 2\r\n\r\n{}",
                                             three);
    TimedReader readers[5];
    GThread *threads[5];
    double seconds[5];

    /* One connection at a time: each answer closes its connection. */
    test_server_reply_raw(srv, first, TRUE);
    for (int i = 0; i < 5; i++)
        test_server_reply_raw(srv,
                              "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                              "Content-Length: 2\r\n\r\n{}",
                              TRUE);
    g_assert_cmpfloat(timed_get(http, "/list"), <, 0.5);
    for (int i = 0; i < 5; i++) {
        readers[i] = (TimedReader){.http = http};
        threads[i] = g_thread_new("reader", timed_reader, &readers[i]);
    }
    for (int i = 0; i < 5; i++) {
        g_thread_join(threads[i]);
        seconds[i] = readers[i].seconds;
    }
    qsort(seconds, 5, sizeof seconds[0], compare_doubles);
    g_assert_cmpfloat(seconds[2], <, 0.5);
    g_assert_cmpfloat(seconds[3], >=, 0.9);
    g_assert_cmpfloat(seconds[4], <, 4.0);
    g_assert_cmpuint(test_server_request_count(srv), ==, 6);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* ======================================================================== */
/* The credential in text (issue 10: DeployHQ's Basic credential was shown)  */

/* Not a real token: one with characters that URL and JSON encode. */
#define ODD_SECRET "s3cr3t/+k=y \"q\"~~?"
#define BASIC_USER "ops@example.com"

static char *base64_of(const char *text)
{
    return g_base64_encode((const guchar *)text, strlen(text));
}

static void assert_redacts(IfsHttp *http, const char *form)
{
    g_autofree char *text = g_strdup_printf("before %s after", form);
    g_autofree char *out = ifs_http_redact(http, text);

    if (g_strcmp0(out, "before [redacted] after") != 0)
        g_error("form \"%s\" came out as \"%s\"", form, out);
}

static void test_redact_every_form_of_the_credential(void)
{
    IfsHttpConfig cfg = config_for("http://127.0.0.1:9");
    IfsHttp *http;
    g_autofree char *b64 = base64_of(BASIC_USER ":" ODD_SECRET);
    g_autofree char *unpadded = g_strndup(b64, strcspn(b64, "="));
    g_autofree char *url_safe = g_strdup(unpadded);
    g_autofree char *untouched = NULL;

    g_strdelimit(url_safe, "+", '-');
    g_strdelimit(url_safe, "/", '_');
    g_assert_true(strchr(b64, '=') && strcmp(unpadded, url_safe) != 0); /* the forms differ */
    cfg.auth = IFS_AUTH_BASIC;
    cfg.user = BASIC_USER;
    cfg.secret = ODD_SECRET;
    http = ifs_http_new(&cfg);
    assert_redacts(http, ODD_SECRET);
    assert_redacts(http, b64);
    assert_redacts(http, unpadded);
    assert_redacts(http, url_safe);
    assert_redacts(http, "s3cr3t%2F%2Bk%3Dy%20%22q%22~~%3F"); /* percent-encoded */
    assert_redacts(http, "s3cr3t%2f%2bk%3dy%20%22q%22~~%3f"); /* lower-case hex */
    assert_redacts(http, "s3cr3t%2F%2Bk%3Dy+%22q%22~~%3F"); /* form-encoded */
    assert_redacts(http, "s3cr3t\\/+k=y \\\"q\\\"~~?"); /* JSON, '/' escaped */
    assert_redacts(http, "s3cr3t/+k=y \\\"q\\\"~~?"); /* JSON */
    g_assert_null(ifs_http_redact(http, NULL));
    untouched = ifs_http_redact(http, "user " BASIC_USER " is no secret");
    g_assert_cmpstr(untouched, ==, "user " BASIC_USER " is no secret");
    ifs_http_free(http);
}

/* A secret that "[redacted]" contains (a test's "t") hides every place it
 * is, and no replacement is searched again. */
static void test_redact_a_short_secret_once(void)
{
    IfsHttpConfig cfg = config_for("http://127.0.0.1:9");
    IfsHttp *http;
    char *out;

    cfg.secret = "t";
    http = ifs_http_new(&cfg);
    out = ifs_http_redact(http, "account 'hostup': text");
    g_assert_cmpstr(out, ==, "accoun[redacted] 'hos[redacted]up': [redacted]ex[redacted]");
    g_free(out);
    ifs_http_free(http);
}

/* A secret read again replaces the one in use; both stay hidden. */
static void test_set_secret_redacts_the_old_and_the_new(void)
{
    IfsHttpConfig cfg = config_for("http://127.0.0.1:9");
    IfsHttp *http;

    cfg.secret = "first-secret-1";
    http = ifs_http_new(&cfg);
    g_assert_false(ifs_http_set_secret(http, "first-secret-1"));
    g_assert_true(ifs_http_set_secret(http, "second-secret-2"));
    assert_redacts(http, "first-secret-1");
    assert_redacts(http, "second-secret-2");
    g_assert_true(ifs_http_set_secret(http, "third-secret-3"));
    assert_redacts(http, "third-secret-3");
    assert_redacts(http, "second-secret-2");
    ifs_http_free(http);
}

/* What the attack probe saw: DeployHQ answering 400 with the request's
 * headers, "Authorization: Basic base64(user:key)", shown in last_error. */
static void test_basic_credential_echoed_in_error_is_redacted(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) get_err = NULL;
    g_autoptr(IfsError) post_err = NULL;
    g_autoptr(IfsError) url_err = NULL;
    g_autofree char *b64 = base64_of(BASIC_USER ":" SECRET);
    g_autofree char *body = g_strdup_printf(
        "{\"error\":\"bad_request\",\"message\":\"request was: GET /hosted_resources "
        "Authorization: Basic %s\"}",
        b64);
    g_autofree char *url = g_strconcat(test_server_origin(srv), "/ping", NULL);

    cfg.auth = IFS_AUTH_BASIC;
    cfg.user = BASIC_USER;
    cfg.max_retries = 1;
    http = ifs_http_new(&cfg);
    /* A read that is retried, an action, and a link from the API. */
    test_server_reply(srv, 503, "Retry-After: 0\r\n", "application/json", body);
    test_server_reply(srv, 400, NULL, "application/json", body);
    test_server_reply(srv, 400, NULL, "application/json", body);
    test_server_reply(srv, 401, NULL, "text/plain", body);
    g_assert_null(ifs_http_request(http, "GET", "/hosted_resources", NULL, &get_err));
    g_assert_null(ifs_http_request(http, "POST", "/hosted_resources/x/sync", NULL, &post_err));
    g_assert_null(ifs_http_request_url(http, "POST", url, NULL, &url_err));
    for (IfsError *const *e = (IfsError *const[]){get_err, post_err, url_err, NULL}; *e; e++) {
        g_test_message("%s", (*e)->message);
        g_assert_null(strstr((*e)->message, b64));
        assert_contains((*e)->message, "Authorization: Basic [redacted]");
    }
    assert_contains(get_err->message, "gave up after 2 attempts");
    ifs_http_free(http);
    test_server_stop(srv);
}

/* A long answer is cut short in the message: the credential must go before
 * that, or its first characters would be left where the cut falls. */
static void test_credential_cut_by_truncation_is_redacted(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http;
    g_autoptr(IfsError) err = NULL;
    g_autofree char *b64 = base64_of(BASIC_USER ":" SECRET);
    g_autofree char *head = g_strnfill(153, 'x');
    /* 13 + 153 + 22 characters before the credential: the message's cut
     * after 200 characters falls 12 characters into it. */
    g_autofree char *body = g_strdup_printf("request was: %s Authorization: Basic %s", head, b64);
    g_autofree char *start = g_strndup(b64, 8);

    cfg.auth = IFS_AUTH_BASIC;
    cfg.user = BASIC_USER;
    http = ifs_http_new(&cfg);
    test_server_reply(srv, 400, NULL, "text/plain", body);
    g_assert_null(ifs_http_request(http, "POST", "/x", NULL, &err));
    g_test_message("%s", err->message);
    g_assert_null(strstr(err->message, start));
    ifs_http_free(http);
    test_server_stop(srv);
}

/* Issue 10: an id ".." made infrafs send GET /api/v2/details with the
 * token. A path with a dot segment (or an empty one) is never sent. */
static void test_dot_segment_in_path_refused(void)
{
    static const char *const refused[] = {
        "/api/v2/vps/../details",
        "/api/v2/vps/./details",
        "/api/v2/vps/..",
        "/api/v2/vps/.",
        "/api/v2/vps/..?x=1",
        "/api/v2/vps//details",
        "/..",
        NULL,
    };
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;

    for (const char *const *p = refused; *p; p++) {
        g_autoptr(IfsError) e = NULL;

        g_assert_null(ifs_http_request(http, "GET", *p, NULL, &e));
        g_assert_nonnull(e);
        g_assert_cmpint(e->errnum, ==, EINVAL);
        assert_contains(e->message, "segment");
    }
    g_assert_cmpuint(test_server_request_count(srv), ==, 0);
    /* Dots that are no dot segment, and dots in the query, are fine. */
    test_server_reply(srv, 200, NULL, "application/json", "{}");
    resp = ifs_http_request(http, "GET", "/a/...b./.c/?cursor=../..", NULL, &err);
    g_assert_null(err);
    ifs_http_response_free(resp);
    g_assert_cmpuint(test_server_request_count(srv), ==, 1);
    ifs_http_free(http);
    test_server_stop(srv);
}

/* libcurl must send an encoded dot segment exactly as given, not resolve
 * it: that is what keeps /vps/%2E%2E/details under /vps. */
static void test_encoded_dot_segment_sent_verbatim(void)
{
    TestServer *srv = test_server_start();
    IfsHttpConfig cfg = config_for(test_server_origin(srv));
    IfsHttp *http = ifs_http_new(&cfg);
    IfsHttpResponse *resp;
    g_autoptr(IfsError) err = NULL;
    g_autofree char *seen = NULL;
    g_autofree char *path = ifs_api_path("/api/v2/vps/", "..", "/details");

    test_server_reply(srv, 200, NULL, "application/json", "{}");
    resp = ifs_http_request(http, "GET", path, NULL, &err);
    g_assert_null(err);
    ifs_http_response_free(resp);
    seen = test_server_request(srv, 0);
    assert_contains(seen, "GET /api/v2/vps/%2E%2E/details HTTP/1.1\r\n");
    ifs_http_free(http);
    test_server_stop(srv);
}

static void test_api_path_encodes_dot_ids(void)
{
    static const struct {
        const char *id, *path;
    } table[] = {
        {"..",          "/api/v2/vps/%2E%2E/details"               },
        {".",           "/api/v2/vps/%2E/details"                  },
        {"...",         "/api/v2/vps/%2E%2E%2E/details"            },
        {"a.b",         "/api/v2/vps/a.b/details"                  },
        {"../x",        "/api/v2/vps/..%2Fx/details"               },
        {"a/b?c=d&e#f", "/api/v2/vps/a%2Fb%3Fc%3Dd%26e%23f/details"},
        {"%2E%2E",      "/api/v2/vps/%252E%252E/details"           },
        {"vps_01 é",   "/api/v2/vps/vps_01%20%C3%A9/details"      },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autofree char *path = ifs_api_path("/api/v2/vps/", table[i].id, "/details");

        g_assert_cmpstr(path, ==, table[i].path);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/http/error/status-errno", test_status_errno);
    g_test_add_func("/http/error/generic", test_error_generic);
    g_test_add_func("/http/get-json/web-page", test_get_json_web_page);
    g_test_add_func("/http/get-json/too-deep", test_get_json_too_deep);
    g_test_add_func("/http/cancel/stalled-request", test_cancel_ends_a_stalled_request);
    g_test_add_func("/http/cancel/retry-after-wait", test_cancel_ends_a_retry_after_wait);
    g_test_add_func("/http/error/hostup-problem", test_error_hostup_problem);
    g_test_add_func("/http/error/hostup-invalid-request", test_error_hostup_invalid_request);
    g_test_add_func("/http/error/heo", test_error_heo);
    g_test_add_func("/http/error/heo-provider-error", test_error_heo_provider_error);
    g_test_add_func("/http/error/deployhq-error-string", test_error_deployhq_error_string);
    g_test_add_func("/http/error/deployhq-errors-array", test_error_deployhq_errors_array);
    g_test_add_func("/http/error/deployhq-field-hash", test_error_deployhq_field_hash);
    g_test_add_func("/http/error/deployhq-error-code-hint", test_error_deployhq_error_code_hint);
    g_test_add_func("/http/error/deployhq-spec-status", test_error_deployhq_spec_status);
    g_test_add_func("/http/error/hostatlas", test_error_hostatlas);
    g_test_add_func("/http/error/hostatlas-variants", test_error_hostatlas_variants);
    g_test_add_func("/http/error/dokploy", test_error_dokploy);
    g_test_add_func("/http/error/plain-text", test_error_plain_text);
    g_test_add_func("/http/error/html", test_error_html);
    g_test_add_func("/http/error/huge-body", test_error_huge_body);
    g_test_add_func("/http/error/huge-json-message", test_error_huge_json_message);
    g_test_add_func("/http/error/hostile-bodies", test_error_hostile_bodies);
    g_test_add_func("/http/error/nul-bytes-and-null-args", test_error_nul_bytes_and_null_args);
    g_test_add_func("/http/parse/retry-after", test_retry_after);
    g_test_add_func("/http/parse/rate-limit-reset", test_rate_limit_reset);

    g_test_add_func("/http/request/auth-bearer", test_auth_bearer);
    g_test_add_func("/http/request/auth-basic", test_auth_basic);
    g_test_add_func("/http/request/auth-header", test_auth_header);
    g_test_add_func("/http/request/auth-none", test_auth_none);
    g_test_add_func("/http/request/secret-with-line-break", test_secret_with_line_break_refused);
    g_test_add_func("/http/request/ok-body-and-headers", test_ok_body_and_headers);
    g_test_add_func("/http/request/not-found-problem", test_not_found_problem);
    g_test_add_func("/http/request/get-retried-after-503", test_get_retried_after_503);
    g_test_add_func("/http/request/post-not-retried", test_post_not_retried);
    g_test_add_func("/http/request/get-gives-up", test_get_gives_up_after_max_retries);
    g_test_add_func("/http/request/retry-after-honoured", test_retry_after_honoured);
    g_test_add_func("/http/request/retry-after-holds-later-reads",
                    test_retry_after_holds_later_reads);
    g_test_add_func("/http/request/rate-limit-remaining", test_rate_limit_remaining_recorded);
    g_test_add_func("/http/request/exhausted-budget-slows-reads",
                    test_exhausted_budget_slows_reads);
    g_test_add_func("/http/request/timeout", test_timeout);
    g_test_add_func("/http/request/connection-refused", test_connection_refused);
    g_test_add_func("/http/request/truncated-body", test_truncated_body);
    g_test_add_func("/http/request/dropped-connection", test_dropped_connection);
    g_test_add_func("/http/request/get-retried-after-drop", test_get_retried_after_drop);
    g_test_add_func("/http/request/too-large-body", test_too_large_body);
    g_test_add_func("/http/request/unreadable-cacert", test_unreadable_cacert);
    g_test_add_func("/http/request/redirect-not-followed", test_redirect_not_followed);
    g_test_add_func("/http/request/get-json", test_get_json);
    g_test_add_func("/http/request/concurrent", test_concurrent_requests);
    g_test_add_func("/http/budget/counts-every-request", test_budget_counts_every_request);
    g_test_add_func("/http/budget/only-shrinks-within-a-window",
                    test_budget_only_shrinks_within_a_window);
    g_test_add_func("/http/budget/refills-after-reset", test_budget_refills_after_reset);
    g_test_add_func("/http/budget/actions-count-and-wait", test_budget_actions_count_and_wait);
    g_test_add_func("/http/budget/concurrent-readers-never-overdraw",
                    test_budget_concurrent_readers_never_overdraw);
    g_test_add_func("/http/url/own-origin-gets-credentials", test_url_own_origin_gets_credentials);
    g_test_add_func("/http/url/foreign-origin-gets-no-credentials",
                    test_url_foreign_origin_gets_no_credentials);
    g_test_add_func("/http/url/path-prefix", test_url_path_prefix);
    g_test_add_func("/http/url/refuses-other-schemes", test_url_refuses_other_schemes);
    g_test_add_func("/http/url/errors-mapped-not-retried", test_url_errors_mapped_and_not_retried);
    g_test_add_func("/http/url/foreign-rate-limit-ignored", test_url_foreign_rate_limit_ignored);
    g_test_add_func("/http/url/transport-errors", test_url_transport_errors);
    g_test_add_func("/http/redact/every-form-of-the-credential",
                    test_redact_every_form_of_the_credential);
    g_test_add_func("/http/redact/a-short-secret-once", test_redact_a_short_secret_once);
    g_test_add_func("/http/redact/set-secret", test_set_secret_redacts_the_old_and_the_new);
    g_test_add_func("/http/redact/basic-credential-echoed-in-error",
                    test_basic_credential_echoed_in_error_is_redacted);
    g_test_add_func("/http/redact/credential-cut-by-truncation",
                    test_credential_cut_by_truncation_is_redacted);
    g_test_add_func("/http/path/dot-segment-refused", test_dot_segment_in_path_refused);
    g_test_add_func("/http/path/encoded-dot-segment-sent-verbatim",
                    test_encoded_dot_segment_sent_verbatim);
    g_test_add_func("/http/path/api-path-encodes-dot-ids", test_api_path_encodes_dot_ids);
    return g_test_run();
}
