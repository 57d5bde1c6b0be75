/* What an API answered, read without the network: error bodies into
 * IfsError (each provider's own shapes by its IfsHttpErrorReader, in its
 * file), Retry-After and X-RateLimit-* values, and a 2xx body into JSON
 * (src/http/answer.h). Pure functions: the client (client.c, wire.c)
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
/* How many entries of a list of errors a message lists. */
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
/* Reading JSON error bodies: what any API may send, and what the         */
/* providers' readers (IfsHttpErrorReader) share                            */

/* Every body is read through the one bounded parser, with the limits for
 * API answers: json-c's depth, and the memory bound of jsonparse.h. */
static json_object *parse_json_text(const char *text, size_t len, IfsJsonResult *result)
{
    return ifs_json_parse(text, len, &ifs_json_answer_limits, result);
}

const char *ifs_http_error_text(json_object *obj, const char *key)
{
    json_object *val;
    const char *s;

    if (!json_object_object_get_ex(obj, key, &val) || !json_object_is_type(val, json_type_string))
        return NULL;
    s = json_object_get_string(val);
    return *s ? s : NULL;
}

/* Where a listed error is: "/force", "per_page", or zod's path
 * ["items", 0, "name"] as "items.0.name"; NULL when it does not say. */
static char *error_location(json_object *where)
{
    GString *out = g_string_new(NULL);

    if (json_object_is_type(where, json_type_string)) {
        g_string_append(out, json_object_get_string(where));
    } else if (json_object_is_type(where, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(where); i++) {
            const char *part = json_object_get_string(json_object_array_get_idx(where, i));

            g_string_append_printf(out, "%s%s", i ? "." : "", part ? part : "null");
        }
    }
    return g_string_free(out, out->len == 0);
}

static void append_listed_error(GString *out, json_object *entry, const char *where_key,
                                const char *text_key)
{
    const char *text = text_key ? ifs_http_error_text(entry, text_key) : NULL;
    char *where =
        where_key && text ? error_location(json_object_object_get(entry, where_key)) : NULL;

    if (json_object_is_type(entry, json_type_string))
        g_string_append(out, json_object_get_string(entry));
    else if (text)
        g_string_append_printf(out, "%s%s%s", where ? where : "", where ? ": " : "", text);
    g_free(where);
}

static char *join_listed_errors(json_object *list, const char *where_key, const char *text_key)
{
    GString *out = g_string_new(NULL);
    size_t n = json_object_array_length(list);

    for (size_t i = 0; i < n && i < MAX_LISTED_ERRORS; i++) {
        gsize before = out->len;

        if (before > 0)
            g_string_append(out, "; ");
        append_listed_error(out, json_object_array_get_idx(list, i), where_key, text_key);
        if (out->len == before + (before > 0 ? 2 : 0))
            g_string_truncate(out, before); /* entry had nothing to say */
    }
    if (n > MAX_LISTED_ERRORS)
        g_string_append_printf(out, "; and %zu more", n - MAX_LISTED_ERRORS);
    return g_string_free(out, out->len == 0); /* NULL when nothing was said */
}

char *ifs_http_error_message(const char *headline, json_object *list, const char *where_key,
                             const char *text_key)
{
    char *listed = json_object_is_type(list, json_type_array)
        ? join_listed_errors(list, where_key, text_key)
        : NULL;
    char *message;

    if (!listed)
        return g_strdup(headline);
    if (!headline)
        return listed;
    message = g_strdup_printf("%s: %s", headline, listed);
    g_free(listed);
    return message;
}

/* What any API may answer: an object's sentence under a common name, a
 * string, or an array of strings; NULL for anything else (the caller then
 * shows the raw text). It has no code: where a code is, is the provider's
 * knowledge. */
static char *generic_message(json_object *json)
{
    static const char *const keys[] = {"detail", "message", "title"};

    switch (json_object_get_type(json)) {
    case json_type_object:
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
            if (ifs_http_error_text(json, keys[i]))
                return g_strdup(ifs_http_error_text(json, keys[i]));
        return NULL;
    case json_type_array:
        return ifs_http_error_message(NULL, json, NULL, NULL);
    case json_type_string:
        return g_strdup(json_object_get_string(json));
    default:
        return NULL;
    }
}

static gboolean may_be_json(const char *content_type, const char *text)
{
    char first = *skip_space(text);

    return first == '{' || first == '[' || (content_type && strstr(content_type, "json"));
}

/* The provider's code (or NULL) and a one-line sentence (or NULL) from any
 * error body: JSON as `reader` or the generic reading finds it, HTML, or
 * plain text. */
static void provider_detail(const char *content_type, const char *body, size_t body_len,
                            IfsHttpErrorReader reader, char **code, char **message)
{
    /* Up to the first NUL byte: a body with NULs is broken anyway, and
     * everything below may treat it as a C string. */
    char *text = g_strndup(body ? body : "", MIN(body_len, IFS_HTTP_MAX_ERROR_BODY));
    char *raw_code = NULL;
    char *raw_message = NULL;

    if (may_be_json(content_type, text)) {
        json_object *json = parse_json_text(text, strlen(text), NULL);

        /* Every provider's shapes are objects; the rest is generic. */
        if (reader && json_object_is_type(json, json_type_object))
            reader(json, &raw_code, &raw_message);
        if (!raw_message) /* a code alone: the sentence may be generic */
            raw_message = generic_message(json);
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
                                       const char *account, IfsHttpErrorReader reader)
{
    char *where = ifs_http_describe_request(account, method, path);
    char *code;
    char *message;
    IfsError *err;

    provider_detail(content_type, body, body_len, reader, &code, &message);
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
