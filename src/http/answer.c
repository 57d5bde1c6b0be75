/* What an API answered, read without the network: error bodies of every
 * provider into IfsError, Retry-After and X-RateLimit-* values, and a 2xx
 * body into JSON (src/http/answer.h). Pure functions: the client (client.c, wire.c)
 * calls them on what libcurl received, and the fuzz targets on anything. */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "infrafs"
#endif
#include "answer.h"

#include "infrafs/jsonparse.h"
#include "infrafs/text.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

/* Provider text in a message: enough for a sentence, never a page. */
#define MAX_DETAIL_CHARS 200
#define MAX_CODE_CHARS 64
/* How many entries of an `errors`/`issues` list a message lists. */
#define MAX_LISTED_ERRORS 5

/* ------------------------------------------------------------------------ */
/* Making provider text fit in one line of a message                          */

static const char *skip_space(const char *s)
{
    while (g_ascii_isspace(*s))
        s++;
    return s;
}

/* First non-blank line of a plain-text answer. */
static char *first_line(const char *text)
{
    const char *start = skip_space(text);
    const char *end = strchr(start, '\n');

    return ifs_one_line(start, end ? end - start : -1, MAX_DETAIL_CHARS);
}

/* An HTML error page's first line is "<html>" or a doctype; its <title>
 * ("502 Bad Gateway") is what says something. */
static char *html_title(const char *text)
{
    char *lower = g_ascii_strdown(text, -1); /* same byte offsets as text */
    char *open = strstr(lower, "<title");
    char *title = NULL;

    if (open) {
        char *start = strchr(open, '>');
        char *end = start ? strstr(start, "</title") : NULL;

        if (end)
            title = ifs_one_line(text + (start + 1 - lower), end - (start + 1), MAX_DETAIL_CHARS);
    }
    g_free(lower);
    return title;
}

static gboolean looks_like_html(const char *content_type, const char *text)
{
    return (content_type && strstr(content_type, "html")) || *skip_space(text) == '<';
}

static char *text_detail(const char *content_type, const char *text)
{
    char *detail = NULL;

    if (looks_like_html(content_type, text))
        detail = html_title(text);
    return detail ? detail : first_line(text);
}

/* ------------------------------------------------------------------------ */
/* Reading the error bodies of the five providers                            */

/* Every body is read through the one bounded parser, with the limits for
 * API answers: json-c's depth, and the memory bound of jsonparse.h. */
static json_object *parse_json_text(const char *text, size_t len, IfsJsonResult *result)
{
    return ifs_json_parse(text, len, &ifs_json_answer_limits, result);
}

/* A member's text when it is a non-empty string, else NULL. */
static const char *string_member(json_object *obj, const char *key)
{
    json_object *val;
    const char *s;

    if (!json_object_object_get_ex(obj, key, &val) || !json_object_is_type(val, json_type_string))
        return NULL;
    s = json_object_get_string(val);
    return *s ? s : NULL;
}

static json_object *member_of_type(json_object *obj, const char *key, json_type type)
{
    json_object *val;

    if (json_object_object_get_ex(obj, key, &val) && json_object_is_type(val, type))
        return val;
    return NULL;
}

/* HEO's {"error":"unauthorized","message":"..."} and OAuth's
 * {"error":"invalid_token","error_description":"..."} put a code in `error`;
 * DeployHQ's lone {"error":"..."} puts the sentence there. */
static gboolean error_member_is_code(json_object *obj)
{
    return string_member(obj, "error") &&
        (string_member(obj, "message") || string_member(obj, "detail") ||
         string_member(obj, "error_description"));
}

static char *code_from_object(json_object *obj)
{
    json_object *val;
    json_object *nested = member_of_type(obj, "error", json_type_object);

    /* HostUp and Dokploy say `code` (HostAtlas may send a number). */
    if (json_object_object_get_ex(obj, "code", &val) &&
        (json_object_is_type(val, json_type_string) || json_object_is_type(val, json_type_int)) &&
        *json_object_get_string(val))
        return g_strdup(json_object_get_string(val));
    if (string_member(obj, "error_code")) /* DeployHQ */
        return g_strdup(string_member(obj, "error_code"));
    if (nested) /* HostAtlas {error:{code}} */
        return code_from_object(nested);
    if (error_member_is_code(obj)) /* HEO */
        return g_strdup(string_member(obj, "error"));
    /* DeployHQ's {"status":"not_found",...}; a numeric status is HTTP's. */
    return g_strdup(string_member(obj, "status"));
}

/* One entry of an `errors` or `issues` list: a string, HostUp's
 * {pointer,detail}, Dokploy's zod issue {path:[...],message}. */
static void append_listed_error(GString *out, json_object *item)
{
    const char *text;
    const char *where;
    json_object *path;

    if (json_object_is_type(item, json_type_string)) {
        g_string_append(out, json_object_get_string(item));
        return;
    }
    if (!json_object_is_type(item, json_type_object))
        return;
    text = string_member(item, "detail");
    if (!text)
        text = string_member(item, "message");
    if (!text)
        return;
    where = string_member(item, "pointer");
    if (!where)
        where = string_member(item, "field");
    path = member_of_type(item, "path", json_type_array);
    if (where) {
        g_string_append_printf(out, "%s: ", where);
    } else if (path && json_object_array_length(path) > 0) {
        for (size_t i = 0; i < json_object_array_length(path); i++)
            g_string_append_printf(out, "%s%s", i ? "." : "",
                                   json_object_get_string(json_object_array_get_idx(path, i)));
        g_string_append(out, ": ");
    }
    g_string_append(out, text);
}

static char *join_listed_errors(json_object *list)
{
    GString *out = g_string_new(NULL);
    size_t n = json_object_array_length(list);

    for (size_t i = 0; i < n && i < MAX_LISTED_ERRORS; i++) {
        gsize before = out->len;

        if (before > 0)
            g_string_append(out, "; ");
        append_listed_error(out, json_object_array_get_idx(list, i));
        if (out->len == before + (before > 0 ? 2 : 0))
            g_string_truncate(out, before); /* entry had nothing to say */
    }
    if (n > MAX_LISTED_ERRORS)
        g_string_append_printf(out, "; and %zu more", n - MAX_LISTED_ERRORS);
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

/* DeployHQ's 422: {"base":["Server limit reached"],"hostname":["must be
 * present"]}; `base` holds sentences about the whole object. */
static char *field_hash_message(json_object *obj)
{
    GString *out = g_string_new(NULL);

    json_object_object_foreach(obj, field, val)
    {
        if (!json_object_is_type(val, json_type_array))
            continue;
        for (size_t i = 0; i < json_object_array_length(val); i++) {
            json_object *item = json_object_array_get_idx(val, i);

            if (!json_object_is_type(item, json_type_string))
                continue;
            g_string_append_printf(out, "%s%s%s%s", out->len ? "; " : "",
                                   strcmp(field, "base") ? field : "",
                                   strcmp(field, "base") ? " " : "", json_object_get_string(item));
        }
    }
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

/* The sentence of an error object, most specific field first. */
static const char *headline_of_object(json_object *obj)
{
    static const char *const keys[] = {"detail", "message", NULL};
    json_object *nested = member_of_type(obj, "error", json_type_object);

    for (int i = 0; keys[i]; i++)
        if (string_member(obj, keys[i]))
            return string_member(obj, keys[i]);
    if (nested && headline_of_object(nested))
        return headline_of_object(nested);
    if (string_member(obj, "error") && !error_member_is_code(obj))
        return string_member(obj, "error");
    if (string_member(obj, "error_description"))
        return string_member(obj, "error_description");
    return string_member(obj, "title");
}

static char *message_from_object(json_object *obj)
{
    const char *headline = headline_of_object(obj);
    const char *hint = string_member(obj, "hint");
    json_object *list = member_of_type(obj, "errors", json_type_array);
    char *listed;
    GString *out = g_string_new(headline);

    if (!list)
        list = member_of_type(obj, "issues", json_type_array);
    listed = list ? join_listed_errors(list) : NULL;
    if (!listed && !headline)
        listed = field_hash_message(obj);
    if (listed)
        g_string_append_printf(out, "%s%s", out->len ? ": " : "", listed);
    if (hint && (!headline || strcmp(hint, headline) != 0))
        g_string_append_printf(out, "%shint: %s", out->len ? "; " : "", hint);
    g_free(listed);
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

/* Provider's code and sentence from a JSON error body; both NULL when the
 * JSON is of no known form (the caller then shows the raw text). */
static void detail_from_json(json_object *json, char **code, char **message)
{
    *code = NULL;
    *message = NULL;
    switch (json_object_get_type(json)) {
    case json_type_object:
        *code = code_from_object(json);
        *message = message_from_object(json);
        break;
    case json_type_array:
        *message = join_listed_errors(json);
        break;
    case json_type_string:
        *message = g_strdup(json_object_get_string(json));
        break;
    default:
        break;
    }
}

static gboolean may_be_json(const char *content_type, const char *text)
{
    char first = *skip_space(text);

    return first == '{' || first == '[' || (content_type && strstr(content_type, "json"));
}

/* The provider's code (or NULL) and a one-line sentence (or NULL) from any
 * error body: JSON of every provider's form, HTML, or plain text. */
static void provider_detail(const char *content_type, const char *body, size_t body_len,
                            char **code, char **message)
{
    /* Up to the first NUL byte: a body with NULs is broken anyway, and
     * everything below may treat it as a C string. */
    char *text = g_strndup(body ? body : "", MIN(body_len, IFS_HTTP_MAX_ERROR_BODY));
    char *raw_code = NULL;
    char *raw_message = NULL;

    if (may_be_json(content_type, text)) {
        json_object *json = parse_json_text(text, strlen(text), NULL);

        detail_from_json(json, &raw_code, &raw_message);
        json_object_put(json);
    }
    *code = raw_code ? ifs_one_line(raw_code, -1, MAX_CODE_CHARS) : NULL;
    *message = raw_message ? ifs_one_line(raw_message, -1, MAX_DETAIL_CHARS) : NULL;
    if (!*code && !*message)
        *message = text_detail(content_type, text);
    g_free(raw_code);
    g_free(raw_message);
    g_free(text);
}

char *ifs_http_describe_request(const char *account, const char *method, const char *path)
{
    return g_strdup_printf("account '%s': %s %s", account ? account : "?", method ? method : "?",
                           path ? path : "?");
}

static const char *advice_for_status(int status)
{
    switch (status) {
    case 401:
        return "; check the account's token";
    case 429:
        return "; the API is rate limiting infrafs";
    default:
        return "";
    }
}

IfsError *ifs_http_error_from_response(int status, const char *content_type, const char *body,
                                       size_t body_len, const char *method, const char *path,
                                       const char *account)
{
    char *where = ifs_http_describe_request(account, method, path);
    char *code;
    char *message;
    IfsError *err;

    provider_detail(content_type, body, body_len, &code, &message);
    err = ifs_error_new(ifs_errno_for_http_status(status), status, code, "%s: HTTP %d%s%s%s%s%s",
                        where, status, code ? " " : "", code ? code : "", message ? ": " : "",
                        message ? message : "", advice_for_status(status));
    g_free(where);
    g_free(code);
    g_free(message);
    return err;
}

/* ------------------------------------------------------------------------ */
/* Retry-After and X-RateLimit-Reset                                          */

/* Whole non-negative decimal number, surrounding white space allowed. */
static gboolean parse_seconds(const char *value, gint64 *out)
{
    char *copy = g_strstrip(g_strdup(value));
    guint64 n;
    gboolean ok = g_ascii_string_to_unsigned(copy, 10, 0, G_MAXINT64, &n, NULL);

    g_free(copy);
    if (ok)
        *out = (gint64)n;
    return ok;
}

gint64 ifs_http_parse_header_number(const char *value)
{
    gint64 n;

    return value && parse_seconds(value, &n) ? n : -1;
}

gint64 ifs_http_parse_retry_after(const char *value, gint64 now_epoch)
{
    gint64 seconds;
    time_t date;

    if (!value || !*skip_space(value))
        return -1;
    if (parse_seconds(value, &seconds))
        return seconds;
    if (g_ascii_isdigit(*skip_space(value)) || *skip_space(value) == '-')
        return -1; /* a malformed number, not a date */
    /* HTTP-date in any of RFC 9110's three forms; curl knows them all. */
    date = curl_getdate(value, NULL);
    if (date == (time_t)-1)
        return -1;
    return MAX((gint64)date - now_epoch, 0);
}

static gint64 parse_iso8601_epoch(const char *value)
{
    GTimeZone *utc = g_time_zone_new_utc();
    GDateTime *when = g_date_time_new_from_iso8601(value, utc);
    gint64 epoch = when ? g_date_time_to_unix(when) : -1;

    if (when)
        g_date_time_unref(when);
    g_time_zone_unref(utc);
    return epoch;
}

/* "1700000000" or "1700000000.25" (the fraction does not matter). */
static gint64 parse_epoch_seconds(const char *text)
{
    size_t digits = strspn(text, "0123456789");
    const char *fraction = text + digits;
    char *whole;
    gint64 epoch = -1;

    if (*fraction == '.' && fraction[1] &&
        strspn(fraction + 1, "0123456789") == strlen(fraction + 1))
        fraction = "";
    if (digits == 0 || *fraction)
        return -1;
    whole = g_strndup(text, digits);
    if (!parse_seconds(whole, &epoch))
        epoch = -1;
    g_free(whole);
    return epoch;
}

gint64 ifs_http_parse_rate_limit_reset(const char *value)
{
    char *copy;
    gint64 epoch;

    if (!value)
        return -1;
    copy = g_strstrip(g_strdup(value));
    epoch = parse_epoch_seconds(copy);
    if (epoch < 0 && *copy)
        epoch = parse_iso8601_epoch(copy);
    g_free(copy);
    return MAX(epoch, -1); /* a date before 1970 ("0226-12-06") is no Reset */
}

/* A 2xx answer refused for what its JSON would cost (while it arrived, or
 * when parsed): the API or `url` is wrong, and nothing of it is used. */
IfsError *ifs_http_refused_answer(const char *where, const char *method, int status,
                                  const char *why)
{
    gboolean read = strcmp(method, "GET") == 0;

    return ifs_error_new(
        EIO, status, NULL, "%s: refused the response: %s; %s; check `url`", where, why,
        read ? "the last good data is kept" : "the request itself may have taken effect");
}

/* Why a 2xx body is of no use, in words a user can act on: a web page
 * where JSON belongs usually means a wrong `url` (a login page, a proxy's
 * error page); nesting beyond json-c's depth limit is refused before it
 * costs memory, and so is JSON that would take far more memory than its
 * size justifies. */
static IfsError *unreadable_answer(const char *where, const IfsHttpResponse *resp,
                                   const IfsJsonResult *result)
{
    const char *type = resp->content_type;
    char *text, *excerpt;
    IfsError *err;

    if (result->status == IFS_JSON_TOO_COSTLY)
        return ifs_http_refused_answer(where, "GET", resp->status, result->why);
    if (result->status == IFS_JSON_TOO_DEEP)
        return ifs_error_new(EIO, resp->status, NULL,
                             "%s: unreadable response (%s; infrafs does not read it)", where,
                             result->why);
    if (!type || strstr(type, "json") || resp->body_len == 0)
        return ifs_error_new(EIO, resp->status, NULL, "%s: unreadable response (%s)", where,
                             result->status == IFS_JSON_NULL ? "JSON null" : result->why);
    text = g_strndup(resp->body, MIN(resp->body_len, IFS_HTTP_MAX_ERROR_BODY));
    excerpt = text_detail(type, text);
    err = ifs_error_new(EIO, resp->status, NULL,
                        "%s: unreadable response: HTTP %d with %s%s%s%s instead of JSON; "
                        "check `url`",
                        where, resp->status, type, excerpt ? " (\"" : "", excerpt ? excerpt : "",
                        excerpt ? "\")" : "");
    g_free(excerpt);
    g_free(text);
    return err;
}

void ifs_http_response_free(IfsHttpResponse *resp)
{
    if (!resp)
        return;
    g_free(resp->body);
    g_free(resp->content_type);
    g_free(resp);
}

json_object *ifs_http_answer_json(const IfsHttpResponse *resp, const char *account,
                                  const char *path, IfsError **err)
{
    IfsJsonResult result;
    json_object *json = parse_json_text(resp->body, resp->body_len, &result);

    if (!json) {
        char *where = ifs_http_describe_request(account, "GET", path);

        ifs_error_propagate(err, unreadable_answer(where, resp, &result));
        g_free(where);
    }
    return json;
}
