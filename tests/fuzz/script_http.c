/* The HTTP client of include/infrafs/http.h for the fuzz targets: instead
 * of the network, each request takes the next answer of a script (the
 * fuzzer's input), so that a provider's whole reading of its API runs at
 * memory speed and the same input always gives the same run. What an
 * answer means is read by the real src/http/answer.c.
 *
 * A script is answers separated by the line SCRIPT_SEPARATOR. An answer
 * whose first line is "NNN" or "NNN content/type" has that status and
 * type, and the rest is its body; any other answer is a 200 JSON body.
 * When the script is used up, requests fail as an unreachable API does.
 * With INFRAFS_FUZZ_TRACE set, each request is printed to stderr
 * ("request METHOD PATH-OR-URL"), which is how make_corpus.py learns
 * what to record. */
#include "script_http.h"

#include "../../src/http/answer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct IfsHttp {
    char *account;
    IfsHttpErrorReader error_reader;
    IfsBudget *budget;
    guint64 requests;
};

typedef struct {
    int status;
    char *content_type;
    char *body;
    size_t len;
} Answer;

static GPtrArray *script; /* Answer*, the current input's */
static guint next_answer;
static gboolean trace;

static void answer_free(gpointer p)
{
    Answer *a = p;

    g_free(a->content_type);
    g_free(a->body);
    g_free(a);
}

static Answer *answer_parse(const char *p, size_t len)
{
    Answer *a = g_new0(Answer, 1);
    const char *nl = memchr(p, '\n', len);
    size_t head = nl ? (size_t)(nl - p) : len;

    a->status = 200;
    if (head >= 3 && head < 128 && g_ascii_isdigit(p[0]) && g_ascii_isdigit(p[1]) &&
        g_ascii_isdigit(p[2]) && (head == 3 || p[3] == ' ')) {
        a->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if (head > 4)
            a->content_type = g_strndup(p + 4, head - 4);
        p += nl ? head + 1 : head;
        len -= nl ? head + 1 : head;
    } else {
        a->content_type = g_strdup("application/json");
    }
    a->body = g_malloc(len + 1);
    memcpy(a->body, p, len);
    a->body[len] = '\0';
    a->len = len;
    return a;
}

void script_load(const guint8 *data, size_t size)
{
    const char *p = data ? (const char *)data : "", *end = p + (data ? size : 0);
    size_t sep_len = strlen(SCRIPT_SEPARATOR);

    script_clear();
    script = g_ptr_array_new_with_free_func(answer_free);
    trace = g_getenv("INFRAFS_FUZZ_TRACE") != NULL;
    while (p <= end) {
        const char *sep = memmem(p, (size_t)(end - p), SCRIPT_SEPARATOR, sep_len);
        const char *stop = sep ? sep : end;

        g_ptr_array_add(script, answer_parse(p, (size_t)(stop - p)));
        if (!sep)
            break;
        p = sep + sep_len;
    }
    next_answer = 0;
}

void script_clear(void)
{
    if (script)
        g_ptr_array_free(script, TRUE);
    script = NULL;
}

gboolean script_next_body(const char **body, size_t *len)
{
    Answer *a;

    if (!script || next_answer >= script->len)
        return FALSE;
    a = g_ptr_array_index(script, next_answer++);
    *body = a->body;
    *len = a->len;
    return TRUE;
}

const char *ifs_http_account(const IfsHttp *http)
{
    return http->account;
}

IfsHttp *ifs_http_new(const IfsHttpConfig *cfg)
{
    IfsHttp *http = g_new0(IfsHttp, 1);

    http->account = g_strdup(cfg->account ? cfg->account : "?");
    http->error_reader = cfg->error_reader;
    http->budget = ifs_budget_new(cfg->rate_limit, cfg->rate_window_s, cfg->refresh_share,
                                  cfg->rate_limit_source);
    return http;
}

void ifs_http_free(IfsHttp *http)
{
    if (!http)
        return;
    ifs_budget_free(http->budget);
    g_free(http->account);
    g_free(http);
}

static IfsHttpResponse *answer(IfsHttp *http, const char *method, const char *where, IfsError **err)
{
    Answer *a;
    IfsHttpResponse *resp;

    if (trace)
        fprintf(stderr, "request %s %s\n", method, where);
    http->requests++;
    if (!script || next_answer >= script->len) {
        ifs_error_propagate(err,
                            ifs_error_new(EHOSTUNREACH, 0, NULL,
                                          "account '%s': %s %s: the script has no "
                                          "more answers",
                                          http->account, method, where));
        return NULL;
    }
    a = g_ptr_array_index(script, next_answer++);
    if (a->status < 200 || a->status > 299) {
        ifs_error_propagate(err,
                            ifs_http_error_from_response(a->status, a->content_type, a->body,
                                                         a->len, method, where, http->account,
                                                         http->error_reader));
        return NULL;
    }
    resp = g_new0(IfsHttpResponse, 1);
    resp->status = a->status;
    resp->body = g_memdup2(a->body, a->len + 1);
    resp->body_len = a->len;
    resp->content_type = g_strdup(a->content_type);
    return resp;
}

IfsHttpResponse *ifs_http_request(IfsHttp *http, const char *method, const char *path,
                                  const char *json_body, IfsError **err)
{
    (void)json_body;
    return answer(http, method, path, err);
}

IfsHttpResponse *ifs_http_request_url(IfsHttp *http, const char *method, const char *url,
                                      const char *json_body, IfsError **err)
{
    (void)json_body;
    return answer(http, method, url, err);
}

json_object *ifs_http_get_json(IfsHttp *http, const char *path, IfsError **err)
{
    IfsHttpResponse *resp = ifs_http_request(http, "GET", path, NULL, err);
    json_object *json;

    if (!resp)
        return NULL;
    json = ifs_http_answer_json(resp, http->account, path, err);
    ifs_http_response_free(resp);
    return json;
}

/* No credential ever reaches a script. */
char *ifs_http_redact(IfsHttp *http, const char *text)
{
    (void)http;
    return g_strdup(text);
}

gboolean ifs_http_set_secret(IfsHttp *http, const char *secret)
{
    (void)http;
    (void)secret;
    return FALSE;
}

guint64 ifs_http_request_count(IfsHttp *http)
{
    return http->requests;
}

gint64 ifs_http_rate_limit_remaining(IfsHttp *http)
{
    (void)http;
    return -1;
}

IfsBudget *ifs_http_budget(IfsHttp *http)
{
    return http->budget;
}

gint64 ifs_http_reads_held_until(IfsHttp *http)
{
    (void)http;
    return 0;
}

void ifs_http_wake(IfsHttp *http)
{
    (void)http;
}

void ifs_http_cancel(IfsHttp *http)
{
    (void)http;
}
