/* The account's credential: its header line, every form of it an answer
 * could hold, and redaction of them all; wiped when freed. */
#include "http_private.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* The credential in text                                                     */

void http_free_secret(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s)); /* keep it out of later core dumps */
    g_free(s);
}

static void free_secret_cb(gpointer s)
{
    http_free_secret(s);
}

static void add_form(GPtrArray *forms, char *form /* taken */)
{
    if (!form || !*form) {
        http_free_secret(form);
        return;
    }
    for (guint i = 0; i < forms->len; i++) {
        if (strcmp(g_ptr_array_index(forms, i), form) == 0) {
            http_free_secret(form);
            return;
        }
    }
    g_ptr_array_add(forms, form);
}

/* The text with `from` replaced by `to` throughout (a new string). */
static char *replaced(const char *text, const char *from, const char *to)
{
    GString *s = g_string_new(text);

    g_string_replace(s, from, to, 0);
    return g_string_free(s, FALSE);
}

/* Percent-encoding, in both cases of hex digit, and form encoding (space
 * as '+'): how a server echoing a query string or a form shows it. */
static void add_url_forms(GPtrArray *forms, const char *text)
{
    char *upper = g_uri_escape_string(text, NULL, FALSE);
    char *lower = g_strdup(upper);

    for (char *p = lower; *p; p++)
        if (*p == '%' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2])) {
            p[1] = g_ascii_tolower(p[1]);
            p[2] = g_ascii_tolower(p[2]);
        }
    add_form(forms, replaced(upper, "%20", "+"));
    add_form(forms, replaced(lower, "%20", "+"));
    add_form(forms, upper);
    add_form(forms, lower);
}

/* Inside a JSON string, as an answer echoing a request body holds it ('/'
 * escaped or not, as json-c and most encoders differ). */
static void add_json_forms(GPtrArray *forms, const char *text)
{
    static const int flags[] = {JSON_C_TO_STRING_PLAIN,
                                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE};

    for (gsize i = 0; i < G_N_ELEMENTS(flags); i++) {
        json_object *str = json_object_new_string(text);
        const char *quoted = json_object_to_json_string_ext(str, flags[i]);
        size_t len = strlen(quoted);

        if (len >= 2) /* without the quotes */
            add_form(forms, g_strndup(quoted + 1, len - 2));
        json_object_put(str);
    }
}

/* HTTP Basic's "Authorization: Basic base64(user:secret)", padded or not,
 * and base64url as some servers log it. */
static void add_basic_forms(GPtrArray *forms, const char *user, const char *secret)
{
    char *pair = g_strconcat(user ? user : "", ":", secret, NULL);
    char *b64 = g_base64_encode((const guchar *)pair, strlen(pair));
    char *unpadded = g_strndup(b64, strcspn(b64, "="));
    char *url_safe = g_strdup(unpadded);

    g_strdelimit(url_safe, "+", '-');
    g_strdelimit(url_safe, "/", '_');
    add_form(forms, b64);
    add_form(forms, unpadded);
    add_form(forms, url_safe);
    http_free_secret(pair);
}

static gint longest_first(gconstpointer a, gconstpointer b)
{
    size_t la = strlen(*(char *const *)a);
    size_t lb = strlen(*(char *const *)b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Every form of the account's credential that an answer can hold. */
static GPtrArray *secret_forms(const IfsHttpConfig *cfg)
{
    GPtrArray *forms = g_ptr_array_new_with_free_func(free_secret_cb);
    const char *secret = cfg->secret ? cfg->secret : "";

    if (!*secret)
        return forms;
    add_form(forms, g_strdup(secret));
    add_url_forms(forms, secret);
    add_json_forms(forms, secret);
    if (cfg->auth == IFS_AUTH_BASIC)
        add_basic_forms(forms, cfg->user, secret);
    /* A longer form may contain a shorter one (padded base64): replaced
     * first, it goes whole. */
    g_ptr_array_sort(forms, longest_first);
    return forms;
}

/* The length of the longest of `forms` that `p` starts with, or 0. */
static size_t longest_form_at(const char *p, const GPtrArray *forms, size_t best)
{
    for (guint i = 0; forms && i < forms->len; i++) {
        const char *form = g_ptr_array_index(forms, i);
        size_t len = strlen(form);

        if (len > best && strncmp(p, form, len) == 0)
            best = len;
    }
    return best;
}

/* One pass: at each place the longest form found there is replaced, and
 * what a replacement wrote is never searched again, so that a short
 * secret (one that "[redacted]" itself contains) cannot mangle it. */
char *ifs_http_redact(IfsHttp *http, const char *text)
{
    GString *out;

    if (!text)
        return NULL;
    g_return_val_if_fail(http, NULL);
    out = g_string_sized_new(strlen(text));
    g_mutex_lock(&http->cred_lock);
    for (const char *p = text; *p;) {
        size_t len =
            longest_form_at(p, http->old_secret_forms, longest_form_at(p, http->secret_forms, 0));
        if (len) {
            g_string_append(out, "[redacted]");
            p += len;
        } else {
            g_string_append_c(out, *p++);
        }
    }
    g_mutex_unlock(&http->cred_lock);
    return g_string_free(out, FALSE);
}

/* Servers have been known to echo the credential they refused, and the
 * request's headers with it; no error of this file leaves it unredacted. */
void http_redact_error(IfsHttp *http, IfsError *err)
{
    char *text;

    if (!err)
        return;
    text = ifs_http_redact(http, err->message);
    http_free_secret(err->message);
    err->message = text;
    text = ifs_http_redact(http, err->code);
    http_free_secret(err->code);
    err->code = text;
}

static gboolean has_control_chars(const char *s)
{
    for (; s && *s; s++)
        if (g_ascii_iscntrl(*s))
            return TRUE;
    return FALSE;
}

/* Basic too is written here rather than given to curl as a user and
 * password: curl would keep its own copies in every pooled handle, and
 * free them without wiping. */
static char *auth_header_line(const IfsHttpConfig *cfg)
{
    char *pair, *b64, *line;

    switch (cfg->auth) {
    case IFS_AUTH_BEARER:
        return g_strdup_printf("Authorization: Bearer %s", cfg->secret);
    case IFS_AUTH_HEADER:
        return g_strdup_printf("%s: %s", cfg->auth_header, cfg->secret);
    case IFS_AUTH_BASIC:
        pair = g_strconcat(cfg->user ? cfg->user : "", ":", cfg->secret, NULL);
        b64 = g_base64_encode((const guchar *)pair, strlen(pair));
        line = g_strconcat("Authorization: Basic ", b64, NULL);
        http_free_secret(b64);
        http_free_secret(pair);
        return line;
    default:
        return NULL;
    }
}

/* What a secret makes of the credential (cfg's auth, header, user and
 * secret): its header line, whether it is unusable, and every form of it
 * an answer could hold. Fields of `http` under cred_lock, or not yet
 * shared. */
void http_set_credential(IfsHttp *http, const IfsHttpConfig *cfg)
{
    http->secret = g_strdup(cfg->secret ? cfg->secret : "");
    /* A line break would end the header early and inject the rest. */
    http->secret_unusable = cfg->auth != IFS_AUTH_NONE && has_control_chars(http->secret);
    http->auth_header_line = http->secret_unusable ? NULL : auth_header_line(cfg);
    http->secret_forms = secret_forms(cfg);
}

gboolean ifs_http_set_secret(IfsHttp *http, const char *secret)
{
    IfsHttpConfig cfg = {
        .auth = http->auth,
        .auth_header = http->auth_header,
        .user = http->user,
        .secret = secret ? secret : "",
    };
    gboolean changed;

    g_mutex_lock(&http->cred_lock);
    changed = strcmp(http->secret, cfg.secret) != 0;
    if (changed) {
        http_free_secret(http->secret);
        http_free_secret(http->auth_header_line);
        if (http->old_secret_forms)
            g_ptr_array_free(http->old_secret_forms, TRUE);
        http->old_secret_forms = http->secret_forms;
        http_set_credential(http, &cfg);
    }
    g_mutex_unlock(&http->cred_lock);
    return changed;
}
