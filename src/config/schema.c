/* Checking each raw section against its provider type's schema: known
 * and required keys, the url, numbers, the budget, events fields, cacert,
 * the webhook listener; the result is an IfsAccountConfig without its
 * secret (secrets.c resolves that last). */
#include "config_private.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

/* Keys every account may have, whatever its type. */
static const char *const common_keys[] = {
    "type",          "url",        "token",         "token_file",    "token_command",
    "user",          "timeout",    "max_resources", "cacert",        "refresh",
    "events_fields", "rate_limit", "refresh_share", "insecure_http", NULL,
};

/* ------------------------------------------------------------------ */
/* Validation against the schemas                                       */

static gboolean in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return TRUE;
    return FALSE;
}

static const IfsAccountSchema *find_schema(const Loader *ld, const char *type)
{
    for (const IfsAccountSchema *const *s = ld->schemas; s && *s; s++)
        if (strcmp((*s)->type, type) == 0)
            return *s;
    return NULL;
}

static char *known_types(const Loader *ld)
{
    GString *list = g_string_new(NULL);
    for (const IfsAccountSchema *const *s = ld->schemas; s && *s; s++)
        g_string_append_printf(list, "%s%s", list->len ? ", " : "", (*s)->type);
    if (!list->len)
        g_string_append(list, "(none)");
    return g_string_free(list, FALSE);
}

static char *known_keys(const IfsAccountSchema *schema)
{
    GString *list = g_string_new(NULL);
    for (const char *const *k = common_keys; *k; k++)
        g_string_append_printf(list, "%s%s", list->len ? ", " : "", *k);
    for (const char *const *k = schema->extra_keys; k && *k; k++)
        g_string_append_printf(list, ", %s", *k);
    return g_string_free(list, FALSE);
}

static const IfsAccountSchema *section_schema(const Loader *ld, const RawSection *sec,
                                              IfsError **err)
{
    const RawEntry *type = config_section_get(sec, "type");
    const IfsAccountSchema *schema = type ? find_schema(ld, type->value) : NULL;
    if (schema)
        return schema;
    char *types = known_types(ld);
    if (!type)
        ifs_error_propagate(err,
                            config_error(EINVAL, ld->path, sec->line, sec->name, NULL,
                                         "missing required key 'type'; add 'type = TYPE' "
                                         "with one of: %s",
                                         types));
    else
        ifs_error_propagate(err,
                            config_error(EINVAL, ld->path, type->line, sec->name, "type",
                                         "unknown type '%s'; use one of: %s", type->value, types));
    g_free(types);
    return NULL;
}

static gboolean check_known_keys(const Loader *ld, const RawSection *sec,
                                 const IfsAccountSchema *schema, IfsError **err)
{
    for (guint i = 0; i < sec->entries->len; i++) {
        const RawEntry *e = g_ptr_array_index(sec->entries, i);
        if (in_list(common_keys, e->key) || in_list(schema->extra_keys, e->key))
            continue;
        char *keys = known_keys(schema);
        ifs_error_propagate(err,
                            config_error(EINVAL, ld->path, e->line, sec->name, NULL,
                                         "unknown key '%s' (known keys for type %s: %s); "
                                         "remove it or correct its spelling",
                                         e->key, schema->type, keys));
        g_free(keys);
        return FALSE;
    }
    return TRUE;
}

static gboolean require_key(const Loader *ld, const RawSection *sec, const IfsAccountSchema *schema,
                            const char *key, IfsError **err)
{
    if (config_section_get(sec, key))
        return TRUE;
    ifs_error_propagate(err,
                        config_error(EINVAL, ld->path, sec->line, sec->name, NULL,
                                     "missing required key '%s' for type %s; add "
                                     "'%s = ...' to the section",
                                     key, schema->type, key));
    return FALSE;
}

static gboolean check_required_keys(const Loader *ld, const RawSection *sec,
                                    const IfsAccountSchema *schema, IfsError **err)
{
    if (!schema->default_url && !require_key(ld, sec, schema, "url", err))
        return FALSE;
    if (schema->needs_user && !require_key(ld, sec, schema, "user", err))
        return FALSE;
    for (const char *const *k = schema->required_keys; k && *k; k++)
        if (!require_key(ld, sec, schema, *k, err))
            return FALSE;
    return TRUE;
}

/* Whether `host`, as libcurl gives it, names this machine: "localhost",
 * or a loopback address (127.0.0.0/8, [::1]). */
static gboolean host_is_loopback(const char *host)
{
    char *bare = g_strdup(host[0] == '[' ? host + 1 : host);
    struct in_addr v4;
    struct in6_addr v6;
    gboolean loopback;

    g_strdelimit(bare, "]", '\0');
    loopback = g_ascii_strcasecmp(bare, "localhost") == 0 ||
        (inet_pton(AF_INET, bare, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
        (inet_pton(AF_INET6, bare, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6));
    g_free(bare);
    return loopback;
}

static gboolean has_part(CURLU *u, CURLUPart what)
{
    char *part = NULL;
    gboolean has = curl_url_get(u, what, &part, 0) == CURLUE_OK;

    curl_free(part);
    return has;
}

/* `url` is an origin plus an optional path prefix (doc/SEMANTICS.md):
 * infrafs appends the API paths, so no query, fragment or trailing '/'.
 * Credentials are refused because the url is shown in
 * /providers/<account>/url. Read by libcurl's parser, the one the HTTP
 * client uses; *loopback says whether its host is this machine. */
static char *parse_url(const char *value, const char **problem, gboolean *loopback)
{
    CURLU *u = curl_url();
    char *part = NULL, *url = NULL;
    CURLUcode rc;

    *loopback = FALSE;
    if (!g_str_has_prefix(value, "https://") && !g_str_has_prefix(value, "http://")) {
        *problem = "must start with http:// or https://; write the API's "
                   "origin, e.g. url = https://api.example.com";
        goto out;
    }
    rc = u ? curl_url_set(u, CURLUPART_URL, value, 0) : CURLUE_OUT_OF_MEMORY;
    /* libcurl reads "https:///x" as host x. */
    if (rc == CURLUE_NO_HOST || strchr("/", value[strcspn(value, ":") + 3]) ||
        (rc == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK)) {
        *problem = "has no host; write it as https://host[:port]";
        goto out;
    }
    if (rc == CURLUE_OK && (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD))) {
        *problem = "must not contain credentials (user:password@); use the "
                   "user and token keys";
        goto out;
    }
    if (rc != CURLUE_OK || strpbrk(value, "?#") || has_part(u, CURLUPART_QUERY)) {
        *problem = "must be an origin (scheme://host[:port][/prefix]) "
                   "without white space, '?' or '#'";
        goto out;
    }
    *loopback = host_is_loopback(part);
    url = g_strdup(value);
    for (size_t len = strlen(url);
         len > 0 && url[len - 1] == '/';) /* the host keeps it non-empty */
        url[--len] = '\0';
out:
    curl_free(part);
    curl_url_cleanup(u);
    return url;
}

/* insecure_http = true: the one way to send the key over plain HTTP to
 * another machine. */
static gboolean get_insecure_http(const Loader *ld, const RawSection *sec, gboolean *on,
                                  IfsError **err)
{
    const RawEntry *e = config_section_get(sec, "insecure_http");

    *on = e && g_ascii_strcasecmp(e->value, "true") == 0;
    if (!e || *on || g_ascii_strcasecmp(e->value, "false") == 0)
        return TRUE;
    return config_refuse(ld, sec, e, err, "'%s' is neither true nor false", e->value);
}

static gboolean set_url(const Loader *ld, const RawSection *sec, const IfsAccountSchema *schema,
                        IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *e = config_section_get(sec, "url");
    gboolean insecure;

    if (!get_insecure_http(ld, sec, &insecure, err))
        return FALSE;
    if (!e) {
        acct->url = g_strdup(schema->default_url);
        return TRUE;
    }
    const char *problem = NULL;
    gboolean loopback;
    acct->url = parse_url(e->value, &problem, &loopback);
    if (acct->url && g_str_has_prefix(acct->url, "http://") && !loopback) {
        if (insecure) {
            g_warning("%s:%d: [%s] url %s: plain HTTP to another machine: the account's "
                      "key travels unencrypted (insecure_http = true)",
                      ld->path, e->line, sec->name, acct->url);
            return TRUE;
        }
        g_clear_pointer(&acct->url, g_free);
        problem = "is plain http:// to another machine, which would send the account's key "
                  "unencrypted; use https://, or set insecure_http = true if this network "
                  "is trusted";
    }
    if (acct->url)
        return TRUE;
    return config_refuse(ld, sec, e, err, "%s", problem);
}

gboolean ifs_whole_number(const char *text, guint64 min, guint64 max, guint64 *out)
{
    return strspn(text, "0123456789") == strlen(text) &&
        g_ascii_string_to_unsigned(text, 10, min, max, out, NULL);
}

/* A whole number in [1, max]. */
static gboolean parse_count(const char *text, guint64 max, guint64 *out)
{
    return ifs_whole_number(text, 1, max, out);
}

static gboolean set_refresh(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                            IfsError **err)
{
    const RawEntry *e = config_section_get(sec, "refresh");
    acct->refresh_s = -1;
    if (!e)
        return TRUE;
    guint64 seconds = 0;
    if (parse_count(e->value, G_MAXINT, &seconds)) {
        acct->refresh_s = (int)seconds;
        return TRUE;
    }
    return config_refuse(ld, sec, e, err,
                         "'%s' is not a positive whole number of "
                         "seconds; write e.g. refresh = 60",
                         e->value);
}

/* Bounds of every HTTP request of the account, and of how many resources
 * it may list (memory stays bounded by construction). */
#define TIMEOUT_MAX_S 3600
#define MAX_RESOURCES_MAX 10000000

static gboolean set_limits(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                           IfsError **err)
{
    const RawEntry *timeout = config_section_get(sec, "timeout");
    const RawEntry *max_res = config_section_get(sec, "max_resources");
    guint64 n = 0;

    acct->timeout_s = -1;
    acct->max_resources = -1;
    if (timeout) {
        if (!parse_count(timeout->value, TIMEOUT_MAX_S, &n)) {
            return config_refuse(ld, sec, timeout, err,
                                 "'%s' is not a whole number of seconds from 1 "
                                 "to %d; write e.g. timeout = 30",
                                 timeout->value, TIMEOUT_MAX_S);
        }
        acct->timeout_s = (int)n;
    }
    if (max_res) {
        if (!parse_count(max_res->value, MAX_RESOURCES_MAX, &n)) {
            return config_refuse(ld, sec, max_res, err,
                                 "'%s' is not a whole number from 1 to "
                                 "%d; write e.g. max_resources = 200000",
                                 max_res->value, MAX_RESOURCES_MAX);
        }
        acct->max_resources = (int)n;
    }
    return TRUE;
}

/* The request budget: rate_limit = N/SECONDS (N requests per window of
 * SECONDS), and refresh_share = PERCENT of it for background refresh. */
#define RATE_LIMIT_MAX 1000000
#define RATE_WINDOW_MAX_S 86400

static gboolean parse_rate_limit(const char *text, guint64 *limit, guint64 *window)
{
    char **parts = g_strsplit(text, "/", 3);
    gboolean ok = g_strv_length(parts) == 2;

    if (ok) {
        g_strstrip(parts[0]);
        g_strstrip(parts[1]);
        ok = parse_count(parts[0], RATE_LIMIT_MAX, limit) &&
            parse_count(parts[1], RATE_WINDOW_MAX_S, window);
    }
    g_strfreev(parts);
    return ok;
}

static gboolean set_budget(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                           IfsError **err)
{
    const RawEntry *rate = config_section_get(sec, "rate_limit");
    const RawEntry *share = config_section_get(sec, "refresh_share");
    guint64 limit = 0, window = 0, n = 0;

    if (rate) {
        if (!parse_rate_limit(rate->value, &limit, &window)) {
            return config_refuse(ld, sec, rate, err,
                                 "'%s' is not REQUESTS/SECONDS (whole numbers, at most %d "
                                 "requests per up to %d seconds); write e.g. rate_limit = 600/60",
                                 rate->value, RATE_LIMIT_MAX, RATE_WINDOW_MAX_S);
        }
        acct->rate_limit = (guint)limit;
        acct->rate_window_s = (guint)window;
    }
    if (share) {
        char *text = g_strstrip(g_strdup(share->value));
        size_t len = strlen(text);
        gboolean ok;

        if (len > 0 && text[len - 1] == '%')
            text[--len] = '\0';
        ok = parse_count(g_strstrip(text), 100, &n);
        g_free(text);
        if (!ok) {
            return config_refuse(ld, sec, share, err,
                                 "'%s' is not a percentage from 1 to 100; write e.g. "
                                 "refresh_share = 50%%",
                                 share->value);
        }
        acct->refresh_share = (guint)n;
    }
    return TRUE;
}

/* events_fields: files of a resource directory ("cpu_cores",
 * "location/city"), separated by commas, whose changes are events too. */
#define EVENTS_FIELDS_MAX 32

static gboolean field_path_ok(const char *path)
{
    char **parts = g_strsplit(path, "/", -1);
    gboolean ok = *path != '\0';

    for (char **p = parts; ok && *p; p++)
        ok = **p && strcmp(*p, ".") != 0 && strcmp(*p, "..") != 0 && strlen(*p) < 256;
    for (const char *c = path; ok && *c; c++)
        ok = !g_ascii_iscntrl(*c) && *c != ',';
    g_strfreev(parts);
    return ok;
}

static gboolean set_events_fields(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                                  IfsError **err)
{
    const RawEntry *e = config_section_get(sec, "events_fields");
    char **fields;
    GPtrArray *kept;

    if (!e)
        return TRUE;
    fields = g_strsplit(e->value, ",", -1);
    kept = g_ptr_array_new_with_free_func(g_free);
    for (char **f = fields; *f; f++) {
        char *path = g_strstrip(*f);
        if (!field_path_ok(path) || kept->len >= EVENTS_FIELDS_MAX) {
            ifs_error_propagate(
                err,
                config_error(EINVAL, ld->path, e->line, sec->name, "events_fields",
                             "'%s' is not a list of at most %d files of a resource "
                             "directory; write e.g. events_fields = cpu_cores, location/city",
                             e->value, EVENTS_FIELDS_MAX));
            g_strfreev(fields);
            g_ptr_array_unref(kept);
            return FALSE;
        }
        g_ptr_array_add(kept, g_strdup(path));
    }
    g_strfreev(fields);
    g_ptr_array_add(kept, NULL);
    acct->events_fields = (char **)g_ptr_array_free(kept, FALSE);
    return TRUE;
}

static gboolean set_cacert(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                           IfsError **err)
{
    const RawEntry *e = config_section_get(sec, "cacert");
    if (!e)
        return TRUE;
    const char *problem = NULL;
    char *path = config_expand_path(ld, e->value, &problem);
    if (!path) {
        return config_refuse(ld, sec, e, err, "%s", problem);
    }
    struct stat st;
    int errnum = 0;
    const char *why = NULL;
    if (stat(path, &st) < 0) {
        errnum = config_errnum_for_file(errno);
        why = g_strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        errnum = EINVAL;
        why = "not a regular file";
    }
    if (!why) {
        acct->cacert = path;
        return TRUE;
    }
    ifs_error_propagate(err,
                        config_error(errnum, ld->path, e->line, sec->name, "cacert",
                                     "cannot use %s: %s; give the path of a PEM CA "
                                     "bundle or remove the line",
                                     path, why));
    g_free(path);
    return FALSE;
}

static void set_extra(const RawSection *sec, const IfsAccountSchema *schema, IfsAccountConfig *acct)
{
    for (guint i = 0; i < sec->entries->len; i++) {
        const RawEntry *e = g_ptr_array_index(sec->entries, i);
        if (in_list(schema->extra_keys, e->key))
            g_hash_table_insert(acct->extra, g_strdup(e->key), g_strdup(e->value));
    }
}

void config_account_free(gpointer data)
{
    IfsAccountConfig *acct = data;
    if (!acct)
        return;
    g_free(acct->name);
    g_free(acct->type);
    g_free(acct->url);
    g_free(acct->user);
    config_wipe_free(acct->secret);
    g_free(acct->secret_source);
    g_free(acct->secret_key_value);
    g_free(acct->config_path);
    g_free(acct->cacert);
    g_strfreev(acct->events_fields);
    g_free(acct->webhook_listen);
    config_wipe_free(acct->webhook_secret);
    if (acct->extra)
        g_hash_table_unref(acct->extra);
    g_free(acct);
}

/* Step 2: everything but the secret. */
IfsAccountConfig *config_account_from_section(const Loader *ld, const RawSection *sec,
                                              IfsError **err)
{
    const IfsAccountSchema *schema = section_schema(ld, sec, err);
    if (!schema || !check_known_keys(ld, sec, schema, err) ||
        !check_required_keys(ld, sec, schema, err))
        return NULL;

    IfsAccountConfig *acct = g_new0(IfsAccountConfig, 1);
    acct->name = g_strdup(sec->name);
    acct->type = g_strdup(schema->type);
    acct->user = g_strdup(config_section_value(sec, "user"));
    acct->line = sec->line;
    acct->extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    set_extra(sec, schema, acct);
    if (!set_url(ld, sec, schema, acct, err) || !set_refresh(ld, sec, acct, err) ||
        !set_limits(ld, sec, acct, err) || !set_budget(ld, sec, acct, err) ||
        !set_events_fields(ld, sec, acct, err) || !set_cacert(ld, sec, acct, err)) {
        config_account_free(acct);
        return NULL;
    }
    return acct;
}

static gboolean listen_address_ok(const char *text)
{
    const char *colon = strrchr(text, ':');
    guint64 port;
    char *host;
    gboolean ok;

    if (!colon || !ifs_whole_number(colon + 1, 1, 65535, &port))
        return FALSE;
    host = g_strndup(text, (gsize)(colon - text));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        ok = g_hostname_is_ip_address(host + 1) && strchr(host + 1, ':');
    } else {
        ok = g_hostname_is_ip_address(host) && !strchr(host, ':');
    }
    g_free(host);
    return ok;
}

gboolean config_resolve_webhook(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                                IfsError **err)
{
    const RawEntry *listen = config_section_get(sec, "webhook_listen");
    const RawEntry *file = config_section_get(sec, "webhook_secret_file");
    char *path = NULL;

    if (!listen && !file)
        return TRUE;
    if (!listen || !file) {
        ifs_error_propagate(
            err,
            config_error(EINVAL, ld->path, (listen ? listen : file)->line, sec->name,
                         listen ? "webhook_listen" : "webhook_secret_file",
                         "webhooks need both webhook_listen and webhook_secret_file; add the other "
                         "or remove this one"));
        return FALSE;
    }
    if (!listen_address_ok(listen->value)) {
        return config_refuse(ld, sec, listen, err,
                             "'%s' is not ADDRESS:PORT with a numeric address; write "
                             "e.g. webhook_listen = 127.0.0.1:8089 (or [::1]:8089)",
                             listen->value);
    }
    acct->webhook_secret = config_read_token_file(ld, sec, file, &path, err);
    g_free(path);
    if (!acct->webhook_secret)
        return FALSE;
    acct->webhook_listen = g_strdup(listen->value);
    return TRUE;
}
