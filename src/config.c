/* Configuration file (CONTRACT §2): an INI file with one section per
 * account. Loading happens in three steps so that every error is reported
 * before anything with side effects runs:
 *   1. read and parse the file into raw sections (syntax errors, lines);
 *   2. validate every section against its provider's schema;
 *   3. resolve the secrets (which may run token_command).
 *
 * We parse INI ourselves because GKeyFile can neither report line numbers
 * nor accept the inline comments the contract's example uses. */
#include "infrafs/config.h"
#include "infrafs/text.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Hard limits keep memory bounded whatever the files contain. */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define SECRET_MAX_BYTES (64 * 1024)
#define COMMAND_TIMEOUT_S 10
#define STDERR_EXCERPT_MAX 200
#define ACCOUNT_NAME_MAX 255 /* it becomes a directory name (NAME_MAX) */

/* A file holding a secret must not be readable by group or others, nor
 * writable by others (who could swap in their own token). */
#define SECRET_FILE_EXPOSED (S_IRGRP | S_IROTH | S_IWOTH)

/* Keys every account may have, whatever its type. */
static const char *const common_keys[] = {
    "type", "url", "token", "token_file", "token_command",
    "user", "timeout", "max_resources", "cacert", "refresh", "events_fields",
    "rate_limit", "refresh_share", "insecure_http", NULL,
};

/* ------------------------------------------------------------------ */
/* Raw parse result                                                     */

typedef struct {
    char *key;
    char *value;
    int line;
} RawEntry;

typedef struct {
    char *name;
    int line;           /* line of the [section] header */
    GPtrArray *entries; /* RawEntry*, in file order */
} RawSection;

typedef struct {
    const char *path;      /* absolute config path, for messages */
    GPtrArray *sections;   /* RawSection*, in file order */
    RawSection *current;   /* section the next key belongs to */
} Parser;

typedef struct {
    const char *path;                       /* absolute config path */
    char *dir;                              /* its directory */
    const IfsAccountSchema *const *schemas; /* NULL-terminated, or NULL */
} Loader;

/* Secrets are wiped before their memory goes back to the allocator, so a
 * later heap dump or core file is less likely to carry them. */
static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    g_free(s);
}

static void wipe_gstring(GString *s)
{
    explicit_bzero(s->str, s->len);
    g_string_free(s, TRUE);
}

static void raw_entry_free(gpointer data)
{
    RawEntry *e = data;
    g_free(e->key);
    wipe_free(e->value); /* may be an inline token */
    g_free(e);
}

static void raw_section_free(gpointer data)
{
    RawSection *s = data;
    g_free(s->name);
    g_ptr_array_unref(s->entries);
    g_free(s);
}

static const RawEntry *section_get(const RawSection *sec, const char *key)
{
    for (guint i = 0; i < sec->entries->len; i++) {
        const RawEntry *e = g_ptr_array_index(sec->entries, i);
        if (strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static const char *section_value(const RawSection *sec, const char *key)
{
    const RawEntry *e = section_get(sec, key);
    return e ? e->value : NULL;
}

static RawSection *find_section(GPtrArray *sections, const char *name)
{
    for (guint i = 0; i < sections->len; i++) {
        RawSection *s = g_ptr_array_index(sections, i);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */

static IfsError *config_error(int errnum, const char *path, int line,
                              const char *section, const char *key,
                              const char *fmt, ...) G_GNUC_PRINTF(6, 7);

/* Every message has the shape "FILE:LINE: [section] key: what; fix", with
 * the parts that do not apply left out. */
static IfsError *config_error(int errnum, const char *path, int line,
                              const char *section, const char *key,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    GString *msg = g_string_new(path);
    if (line > 0)
        g_string_append_printf(msg, ":%d", line);
    g_string_append(msg, ": ");
    if (section)
        g_string_append_printf(msg, "[%s] ", section);
    if (key)
        g_string_append_printf(msg, "%s: ", key);
    g_string_append(msg, what);

    IfsError *err = ifs_error_new(errnum, 0, NULL, "%s", msg->str);
    g_string_free(msg, TRUE);
    g_free(what);
    return err;
}

/* The contract allows only EINVAL, ENOENT and EACCES out of here. */
static int errnum_for_file(int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return ENOENT;
    if (e == EACCES || e == EPERM)
        return EACCES;
    return EINVAL;
}

static const char *exposure(mode_t mode)
{
    gboolean readable = (mode & (S_IRGRP | S_IROTH)) != 0;
    gboolean writable = (mode & S_IWOTH) != 0;
    if (readable && writable)
        return "readable by group or others and writable by others";
    return readable ? "readable by group or others" : "writable by others";
}

/* The fix we print ("run: chmod 600 PATH") should be pasteable as is. */
static char *shell_word(const char *path)
{
    for (const char *p = path; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr("/._-+,:@%", *p))
            return g_shell_quote(path);
    return g_strdup(path);
}

/* ------------------------------------------------------------------ */
/* Paths                                                                */

static char *passwd_home(void)
{
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    if (size <= 0)
        size = 16384;
    char *buf = g_malloc((gsize)size);
    struct passwd pw, *found = NULL;
    char *home = NULL;
    if (getpwuid_r(getuid(), &pw, buf, (size_t)size, &found) == 0 && found &&
        found->pw_dir && g_path_is_absolute(found->pw_dir))
        home = g_strdup(found->pw_dir);
    g_free(buf);
    return home;
}

/* Like g_get_home_dir() (HOME, else the passwd entry, as boot mounts have no
 * HOME), but read afresh on every call: g_get_home_dir() caches its first
 * answer for the life of the process. NULL when there is no home at all. */
char *ifs_home_dir(void)
{
    const char *home = g_getenv("HOME");
    if (home && g_path_is_absolute(home))
        return g_strdup(home);
    return passwd_home();
}

/* Paths in the config: "~" and "~/..." are the home directory; relative
 * paths are relative to the config file's directory, not the current one,
 * so the file means the same wherever infrafs is started from. */
static char *expand_path(const Loader *ld, const char *value,
                         const char **problem)
{
    if (value[0] != '~')
        return g_canonicalize_filename(value, ld->dir);
    if (value[1] != '\0' && value[1] != '/') {
        *problem = "'~user' paths are not supported; use an absolute path";
        return NULL;
    }
    char *home = ifs_home_dir();
    if (!home) {
        *problem = "cannot expand '~': HOME is unset and there is no passwd "
                   "entry; use an absolute path";
        return NULL;
    }
    const char *rest = value[1] ? value + 2 : "";
    char *path = g_canonicalize_filename(rest, home);
    g_free(home);
    return path;
}

char *ifs_config_default_path(void)
{
    /* XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored. */
    const char *xdg = g_getenv("XDG_CONFIG_HOME");
    if (xdg && g_path_is_absolute(xdg))
        return g_build_filename(xdg, "infrafs", "config", NULL);
    char *home = ifs_home_dir();
    if (!home)
        home = g_strdup(g_get_home_dir());
    char *path = g_build_filename(home, ".config", "infrafs", "config", NULL);
    g_free(home);
    return path;
}

char *ifs_config_env_name(const char *account)
{
    GString *name = g_string_new("INFRAFS_");
    for (const char *p = account; *p; p++)
        g_string_append_c(name, g_ascii_isalnum(*p) ? g_ascii_toupper(*p) : '_');
    g_string_append(name, "_TOKEN");
    return g_string_free(name, FALSE);
}

/* ------------------------------------------------------------------ */
/* Reading files                                                        */

/* Reads the whole of `fd`, at most `max` bytes. NULL with *error_out set
 * (EFBIG when the file is larger) on failure. */
static GString *read_fd(int fd, gsize max, int *error_out)
{
    GString *buf = g_string_sized_new(4096);
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf->len + (gsize)n > max) {
            *error_out = n < 0 ? errno : EFBIG;
            explicit_bzero(chunk, sizeof chunk);
            wipe_gstring(buf);
            return NULL;
        }
        if (n == 0)
            break;
        g_string_append_len(buf, chunk, n);
    }
    explicit_bzero(chunk, sizeof chunk);
    return buf;
}

static GString *read_config_file(const char *path, struct stat *st,
                                 IfsError **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            ifs_error_propagate(err, config_error(ENOENT, path, 0, NULL, NULL,
                "config file not found; create it (see man infrafs) or name "
                "another with -o config=FILE"));
        else
            ifs_error_propagate(err, config_error(errnum_for_file(e), path, 0,
                NULL, NULL, "cannot open the config file: %s; check its "
                "permissions or name another with -o config=FILE",
                g_strerror(e)));
        return NULL;
    }
    int e = 0;
    GString *text = NULL;
    if (fstat(fd, st) < 0)
        e = errno;
    else if (S_ISDIR(st->st_mode))
        e = EISDIR;
    else
        text = read_fd(fd, CONFIG_MAX_BYTES, &e);
    close(fd);
    if (!text)
        ifs_error_propagate(err, config_error(e == EISDIR ? EINVAL
                                                          : errnum_for_file(e),
            path, 0, NULL, NULL, "cannot read the config file: %s; name the "
            "file itself with -o config=FILE",
            e == EFBIG ? "larger than 1 MiB" : g_strerror(e)));
    return text;
}

/* ------------------------------------------------------------------ */
/* INI syntax                                                           */

/* Inline comments: a '#' or ';' starts a comment only when white space
 * precedes it, so values such as "pass#1" or "a;b" keep their characters
 * while "refresh = 60   # seconds" loses the remark. A value that must
 * contain " #" or " ;" is written in double quotes. Returns the comment's
 * first character, or NULL. */
static char *find_inline_comment(char *s)
{
    for (char *p = s; *p; p++)
        if ((*p == '#' || *p == ';') && p > s && g_ascii_isspace(p[-1]))
            return p;
    return NULL;
}

static gboolean only_comment_follows(const char *s)
{
    if (*s == '\0')
        return TRUE;
    if (!g_ascii_isspace(*s))
        return FALSE;
    while (g_ascii_isspace(*s))
        s++;
    return *s == '\0' || *s == '#' || *s == ';';
}

/* `raw` is everything after '='. A value in double quotes is taken
 * literally (no escapes) and loses the quotes; otherwise an inline comment
 * is cut off and white space trimmed. NULL and *problem on bad quoting. */
static char *parse_value(char *raw, const char **problem)
{
    char *start = raw;
    while (g_ascii_isspace(*start))
        start++;
    if (*start != '"') {
        char *comment = find_inline_comment(raw);
        if (comment)
            *comment = '\0';
        return g_strdup(g_strstrip(start));
    }
    char *close = strchr(start + 1, '"');
    if (!close) {
        *problem = "unterminated double quote; end the value with '\"'";
        return NULL;
    }
    if (!only_comment_follows(close + 1)) {
        *problem = "text after the closing quote; put the whole value "
                   "inside the quotes";
        return NULL;
    }
    return g_strndup(start + 1, (gsize)(close - start - 1));
}

static gboolean valid_key_name(const char *key)
{
    if (!*key)
        return FALSE;
    for (const char *p = key; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return FALSE;
    return TRUE;
}

/* The account name becomes a directory name in the tree. */
static gboolean valid_account_name(const char *name)
{
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > ACCOUNT_NAME_MAX)
        return FALSE;
    for (const char *p = name; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return FALSE;
    return TRUE;
}

static gboolean malformed(Parser *p, int line, const char *what,
                          IfsError **err)
{
    ifs_error_propagate(err, config_error(EINVAL, p->path, line,
        p->current ? p->current->name : NULL, NULL,
        "%s", what));
    return FALSE;
}

static gboolean parse_header(Parser *p, char *s, int line, IfsError **err)
{
    char *comment = find_inline_comment(s);
    if (comment)
        *comment = '\0';
    g_strchomp(s);
    size_t len = strlen(s);
    if (len < 2 || s[len - 1] != ']')
        return malformed(p, line, "malformed section header; write it as "
                         "'[account]'", err);
    s[len - 1] = '\0';
    char *name = g_strstrip(s + 1);

    if (!valid_account_name(name)) {
        ifs_error_propagate(err, config_error(EINVAL, p->path, line, NULL,
            NULL, "invalid account name '%s': it becomes a directory name, "
            "so use only letters, digits, '.', '_' and '-' (not '.' or "
            "'..', at most %d characters)", name, ACCOUNT_NAME_MAX));
        return FALSE;
    }
    const RawSection *first = find_section(p->sections, name);
    if (first) {
        ifs_error_propagate(err, config_error(EINVAL, p->path, line, name,
            NULL, "duplicate section (first at line %d); account names must "
            "be unique, rename or merge one of them", first->line));
        return FALSE;
    }
    RawSection *sec = g_new0(RawSection, 1);
    sec->name = g_strdup(name);
    sec->line = line;
    sec->entries = g_ptr_array_new_with_free_func(raw_entry_free);
    g_ptr_array_add(p->sections, sec);
    p->current = sec;
    return TRUE;
}

static gboolean parse_entry(Parser *p, char *s, char *eq, int line,
                            IfsError **err)
{
    *eq = '\0';
    char *key = g_strchomp(s);
    if (!valid_key_name(key))
        return malformed(p, line, "malformed line: the key before '=' may "
                         "hold only letters, digits, '_', '-' and '.'", err);
    if (!p->current) {
        ifs_error_propagate(err, config_error(EINVAL, p->path, line, NULL, key,
            "key outside any section; put it below an '[account]' header"));
        return FALSE;
    }
    const RawEntry *first = section_get(p->current, key);
    if (first) {
        ifs_error_propagate(err, config_error(EINVAL, p->path, line,
            p->current->name, key, "duplicate key (first set at line %d); "
            "keep only one", first->line));
        return FALSE;
    }
    const char *problem = NULL;
    char *value = parse_value(eq + 1, &problem);
    if (value && !*value) {
        g_free(value);
        value = NULL;
        problem = "empty value; give a value or remove the line";
    }
    if (!value) {
        ifs_error_propagate(err, config_error(EINVAL, p->path, line,
            p->current->name, key, "%s", problem));
        return FALSE;
    }
    RawEntry *e = g_new0(RawEntry, 1);
    e->key = g_strdup(key);
    e->value = value;
    e->line = line;
    g_ptr_array_add(p->current->entries, e);
    return TRUE;
}

static gboolean parse_line(Parser *p, char *line, int lineno, IfsError **err)
{
    char *s = g_strstrip(line);
    if (*s == '\0' || *s == '#' || *s == ';')
        return TRUE;
    if (*s == '[')
        return parse_header(p, s, lineno, err);
    char *eq = strchr(s, '=');
    if (!eq)
        return malformed(p, lineno, "malformed line; expected "
                         "'key = value', '[account]' or a comment", err);
    return parse_entry(p, s, eq, lineno, err);
}

/* Splits `text` (modified in place) into lines and parses them. */
static gboolean parse_text(Parser *p, GString *text, IfsError **err)
{
    const char *nul = memchr(text->str, '\0', text->len);
    if (nul) {
        int line = 1;
        for (const char *c = text->str; c < nul; c++)
            line += *c == '\n';
        ifs_error_propagate(err, config_error(EINVAL, p->path, line, NULL,
            NULL, "contains a NUL byte; the config must be a text file"));
        return FALSE;
    }
    char *line = text->str;
    if (g_str_has_prefix(line, "\xEF\xBB\xBF")) /* UTF-8 byte order mark */
        line += 3;
    for (int lineno = 1; line; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!parse_line(p, line, lineno, err))
            return FALSE;
        line = nl ? nl + 1 : NULL;
    }
    return TRUE;
}

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

static const IfsAccountSchema *section_schema(const Loader *ld,
                                              const RawSection *sec,
                                              IfsError **err)
{
    const RawEntry *type = section_get(sec, "type");
    const IfsAccountSchema *schema = type ? find_schema(ld, type->value) : NULL;
    if (schema)
        return schema;
    char *types = known_types(ld);
    if (!type)
        ifs_error_propagate(err, config_error(EINVAL, ld->path, sec->line,
            sec->name, NULL, "missing required key 'type'; add 'type = TYPE' "
            "with one of: %s", types));
    else
        ifs_error_propagate(err, config_error(EINVAL, ld->path, type->line,
            sec->name, "type", "unknown type '%s'; use one of: %s",
            type->value, types));
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
        ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line,
            sec->name, NULL, "unknown key '%s' (known keys for type %s: %s); "
            "remove it or correct its spelling", e->key, schema->type, keys));
        g_free(keys);
        return FALSE;
    }
    return TRUE;
}

static gboolean require_key(const Loader *ld, const RawSection *sec,
                            const IfsAccountSchema *schema, const char *key,
                            IfsError **err)
{
    if (section_get(sec, key))
        return TRUE;
    ifs_error_propagate(err, config_error(EINVAL, ld->path, sec->line,
        sec->name, NULL, "missing required key '%s' for type %s; add "
        "'%s = ...' to the section", key, schema->type, key));
    return FALSE;
}

static gboolean check_required_keys(const Loader *ld, const RawSection *sec,
                                    const IfsAccountSchema *schema,
                                    IfsError **err)
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

/* `url` is an origin plus an optional path prefix (CONTRACT §2): infrafs
 * appends the API paths, so no query, fragment or trailing '/'. Credentials
 * are refused because the url is shown in /providers/<account>/url. */
static char *parse_url(const char *value, const char **problem)
{
    const char *host;
    if (g_str_has_prefix(value, "https://"))
        host = value + 8;
    else if (g_str_has_prefix(value, "http://"))
        host = value + 7;
    else {
        *problem = "must start with http:// or https://; write the API's "
                   "origin, e.g. url = https://api.example.com";
        return NULL;
    }
    if (!*host || *host == '/') {
        *problem = "has no host; write it as https://host[:port]";
        return NULL;
    }
    size_t authority = strcspn(host, "/");
    if (memchr(host, '@', authority)) {
        *problem = "must not contain credentials (user:password@); use the "
                   "user and token keys";
        return NULL;
    }
    for (const char *p = value; *p; p++)
        if (g_ascii_isspace(*p) || g_ascii_iscntrl(*p) || *p == '?' || *p == '#') {
            *problem = "must be an origin (scheme://host[:port][/prefix]) "
                       "without white space, '?' or '#'";
            return NULL;
        }
    char *url = g_strdup(value);
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/') /* the host keeps it non-empty */
        url[--len] = '\0';
    return url;
}

/* Whether `url` (already checked) names this machine: "localhost", or a
 * loopback address (127.0.0.0/8, ::1), as libcurl parses it. */
static gboolean url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    gboolean loopback = FALSE;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        char *bare = g_strdup(host[0] == '[' ? host + 1 : host);
        struct in_addr v4;
        struct in6_addr v6;

        g_strdelimit(bare, "]", '\0');
        loopback = g_ascii_strcasecmp(bare, "localhost") == 0 ||
                   (inet_pton(AF_INET, bare, &v4) == 1 &&
                    (ntohl(v4.s_addr) >> 24) == 127) ||
                   (inet_pton(AF_INET6, bare, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6));
        g_free(bare);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return loopback;
}

/* insecure_http = true: the one way to send the key over plain HTTP to
 * another machine. */
static gboolean get_insecure_http(const Loader *ld, const RawSection *sec, gboolean *on,
                                  IfsError **err)
{
    const RawEntry *e = section_get(sec, "insecure_http");

    *on = FALSE;
    if (!e)
        return TRUE;
    if (g_ascii_strcasecmp(e->value, "true") == 0 || g_ascii_strcasecmp(e->value, "false") == 0) {
        *on = g_ascii_strcasecmp(e->value, "true") == 0;
        return TRUE;
    }
    ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line, sec->name,
        "insecure_http", "'%s' is neither true nor false", e->value));
    return FALSE;
}

static gboolean set_url(const Loader *ld, const RawSection *sec,
                        const IfsAccountSchema *schema, IfsAccountConfig *acct,
                        IfsError **err)
{
    const RawEntry *e = section_get(sec, "url");
    gboolean insecure;

    if (!get_insecure_http(ld, sec, &insecure, err))
        return FALSE;
    if (!e) {
        acct->url = g_strdup(schema->default_url);
        return TRUE;
    }
    const char *problem = NULL;
    acct->url = parse_url(e->value, &problem);
    if (acct->url && g_str_has_prefix(acct->url, "http://") && !url_is_loopback(acct->url)) {
        if (insecure) {
            g_warning("%s:%d: [%s] url %s: plain HTTP to another machine: the account's "
                      "key travels unencrypted (insecure_http = true)", ld->path, e->line,
                      sec->name, acct->url);
            return TRUE;
        }
        g_clear_pointer(&acct->url, g_free);
        problem = "is plain http:// to another machine, which would send the account's key "
                  "unencrypted; use https://, or set insecure_http = true if this network "
                  "is trusted";
    }
    if (acct->url)
        return TRUE;
    ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line,
        sec->name, "url", "%s", problem));
    return FALSE;
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

static gboolean set_refresh(const Loader *ld, const RawSection *sec,
                            IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *e = section_get(sec, "refresh");
    acct->refresh_s = -1;
    if (!e)
        return TRUE;
    guint64 seconds = 0;
    if (parse_count(e->value, G_MAXINT, &seconds)) {
        acct->refresh_s = (int)seconds;
        return TRUE;
    }
    ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line,
        sec->name, "refresh", "'%s' is not a positive whole number of "
        "seconds; write e.g. refresh = 60", e->value));
    return FALSE;
}

/* Bounds of every HTTP request of the account, and of how many resources
 * it may list (memory stays bounded by construction). */
#define TIMEOUT_MAX_S 3600
#define MAX_RESOURCES_MAX 10000000

static gboolean set_limits(const Loader *ld, const RawSection *sec,
                           IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *timeout = section_get(sec, "timeout");
    const RawEntry *max_res = section_get(sec, "max_resources");
    guint64 n = 0;

    acct->timeout_s = -1;
    acct->max_resources = -1;
    if (timeout) {
        if (!parse_count(timeout->value, TIMEOUT_MAX_S, &n)) {
            ifs_error_propagate(err, config_error(EINVAL, ld->path, timeout->line,
                sec->name, "timeout", "'%s' is not a whole number of seconds from 1 "
                "to %d; write e.g. timeout = 30", timeout->value, TIMEOUT_MAX_S));
            return FALSE;
        }
        acct->timeout_s = (int)n;
    }
    if (max_res) {
        if (!parse_count(max_res->value, MAX_RESOURCES_MAX, &n)) {
            ifs_error_propagate(err, config_error(EINVAL, ld->path, max_res->line,
                sec->name, "max_resources", "'%s' is not a whole number from 1 to "
                "%d; write e.g. max_resources = 200000", max_res->value,
                MAX_RESOURCES_MAX));
            return FALSE;
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
    const RawEntry *rate = section_get(sec, "rate_limit");
    const RawEntry *share = section_get(sec, "refresh_share");
    guint64 limit = 0, window = 0, n = 0;

    if (rate) {
        if (!parse_rate_limit(rate->value, &limit, &window)) {
            ifs_error_propagate(err, config_error(EINVAL, ld->path, rate->line, sec->name,
                "rate_limit", "'%s' is not REQUESTS/SECONDS (whole numbers, at most %d "
                "requests per up to %d seconds); write e.g. rate_limit = 600/60",
                rate->value, RATE_LIMIT_MAX, RATE_WINDOW_MAX_S));
            return FALSE;
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
            ifs_error_propagate(err, config_error(EINVAL, ld->path, share->line, sec->name,
                "refresh_share", "'%s' is not a percentage from 1 to 100; write e.g. "
                "refresh_share = 50%%", share->value));
            return FALSE;
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

static gboolean set_events_fields(const Loader *ld, const RawSection *sec,
                                  IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *e = section_get(sec, "events_fields");
    char **fields;
    GPtrArray *kept;

    if (!e)
        return TRUE;
    fields = g_strsplit(e->value, ",", -1);
    kept = g_ptr_array_new_with_free_func(g_free);
    for (char **f = fields; *f; f++) {
        char *path = g_strstrip(*f);
        if (!field_path_ok(path) || kept->len >= EVENTS_FIELDS_MAX) {
            ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line, sec->name,
                "events_fields", "'%s' is not a list of at most %d files of a resource "
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

static gboolean set_cacert(const Loader *ld, const RawSection *sec,
                           IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *e = section_get(sec, "cacert");
    if (!e)
        return TRUE;
    const char *problem = NULL;
    char *path = expand_path(ld, e->value, &problem);
    if (!path) {
        ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line,
            sec->name, "cacert", "%s", problem));
        return FALSE;
    }
    struct stat st;
    int errnum = 0;
    const char *why = NULL;
    if (stat(path, &st) < 0) {
        errnum = errnum_for_file(errno);
        why = g_strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        errnum = EINVAL;
        why = "not a regular file";
    }
    if (!why) {
        acct->cacert = path;
        return TRUE;
    }
    ifs_error_propagate(err, config_error(errnum, ld->path, e->line,
        sec->name, "cacert", "cannot use %s: %s; give the path of a PEM CA "
        "bundle or remove the line", path, why));
    g_free(path);
    return FALSE;
}

static void set_extra(const RawSection *sec, const IfsAccountSchema *schema,
                      IfsAccountConfig *acct)
{
    for (guint i = 0; i < sec->entries->len; i++) {
        const RawEntry *e = g_ptr_array_index(sec->entries, i);
        if (in_list(schema->extra_keys, e->key))
            g_hash_table_insert(acct->extra, g_strdup(e->key),
                                g_strdup(e->value));
    }
}

static void account_free(gpointer data)
{
    IfsAccountConfig *acct = data;
    if (!acct)
        return;
    g_free(acct->name);
    g_free(acct->type);
    g_free(acct->url);
    g_free(acct->user);
    wipe_free(acct->secret);
    g_free(acct->secret_source);
    g_free(acct->secret_key_value);
    g_free(acct->config_path);
    g_free(acct->cacert);
    g_strfreev(acct->events_fields);
    g_free(acct->webhook_listen);
    wipe_free(acct->webhook_secret);
    if (acct->extra)
        g_hash_table_unref(acct->extra);
    g_free(acct);
}

/* Step 2: everything but the secret. */
static IfsAccountConfig *account_from_section(const Loader *ld,
                                              const RawSection *sec,
                                              IfsError **err)
{
    const IfsAccountSchema *schema = section_schema(ld, sec, err);
    if (!schema || !check_known_keys(ld, sec, schema, err) ||
        !check_required_keys(ld, sec, schema, err))
        return NULL;

    IfsAccountConfig *acct = g_new0(IfsAccountConfig, 1);
    acct->name = g_strdup(sec->name);
    acct->type = g_strdup(schema->type);
    acct->user = g_strdup(section_value(sec, "user"));
    acct->line = sec->line;
    acct->extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    set_extra(sec, schema, acct);
    if (!set_url(ld, sec, schema, acct, err) ||
        !set_refresh(ld, sec, acct, err) ||
        !set_limits(ld, sec, acct, err) ||
        !set_budget(ld, sec, acct, err) ||
        !set_events_fields(ld, sec, acct, err) ||
        !set_cacert(ld, sec, acct, err)) {
        account_free(acct);
        return NULL;
    }
    return acct;
}

/* ------------------------------------------------------------------ */
/* Secrets                                                              */

/* A secret ends up in an HTTP header, where a line break would split it
 * and any other control character is at best a typo (a fuzzer's inline
 * token = "x \x03y" went through). NULL when `s` has none, else what the
 * first one is, for a message that must not show the secret itself. */
static char *control_char_in(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r')
            return g_strdup("a line break");
        if (g_ascii_iscntrl(*p))
            return g_strdup_printf("a control character (byte 0x%02X)",
                                   (unsigned)(unsigned char)*p);
    }
    return NULL;
}

/* CONTRACT §2: a config with an inline token must not be readable by
 * group or others. Checked before any account is validated, so the user
 * learns about an exposed secret first. */
static gboolean check_config_mode(const char *path, const struct stat *st,
                                  GPtrArray *sections, IfsError **err)
{
    if (!(st->st_mode & SECRET_FILE_EXPOSED))
        return TRUE;
    for (guint i = 0; i < sections->len; i++) {
        const RawSection *sec = g_ptr_array_index(sections, i);
        const RawEntry *token = section_get(sec, "token");
        if (!token)
            continue;
        char *fix = shell_word(path);
        ifs_error_propagate(err, ifs_error_new(EACCES, 0, NULL,
            "%s: holds a secret (token in [%s], line %d) but is %s (mode "
            "%04o); run: chmod 600 %s", path, sec->name, token->line,
            exposure(st->st_mode), (unsigned)(st->st_mode & 07777), fix));
        g_free(fix);
        return FALSE;
    }
    return TRUE;
}

static IfsError *token_file_error(int errnum, const Loader *ld,
                                  const RawSection *sec, const RawEntry *e,
                                  const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static IfsError *token_file_error(int errnum, const Loader *ld,
                                  const RawSection *sec, const RawEntry *e,
                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    IfsError *err = config_error(errnum, ld->path, e->line, sec->name,
                                 e->key, "%s", what);
    g_free(what);
    return err;
}

/* Opens a token file and checks it may hold a secret; -1 on error.
 * O_NONBLOCK keeps a FIFO from hanging the open; it is refused below. */
static int open_token_file(const Loader *ld, const RawSection *sec,
                           const RawEntry *e, const char *path, IfsError **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int errnum = errno;
        ifs_error_propagate(err, token_file_error(errnum_for_file(errnum), ld,
            sec, e, "cannot open %s: %s; create it or fix the path", path,
            g_strerror(errnum)));
        return -1;
    }
    struct stat st;
    IfsError *bad = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        bad = token_file_error(EINVAL, ld, sec, e, "%s is not a regular file; "
                               "the secret must be in a file of its own", path);
    } else if (st.st_mode & SECRET_FILE_EXPOSED) {
        char *fix = shell_word(path);
        bad = token_file_error(EACCES, ld, sec, e, "%s holds a secret but is "
            "%s (mode %04o); run: chmod 600 %s", path, exposure(st.st_mode),
            (unsigned)(st.st_mode & 07777), fix);
        g_free(fix);
    }
    if (!bad)
        return fd;
    close(fd);
    ifs_error_propagate(err, bad);
    return -1;
}

static char *read_token_file(const Loader *ld, const RawSection *sec,
                             const RawEntry *e, char **path_out, IfsError **err)
{
    const char *problem = NULL;
    char *path = expand_path(ld, e->value, &problem);
    if (!path) {
        ifs_error_propagate(err, token_file_error(EINVAL, ld, sec, e, "%s",
                                                  problem));
        return NULL;
    }
    int fd = open_token_file(ld, sec, e, path, err);
    if (fd < 0) {
        g_free(path);
        return NULL;
    }
    int errnum = 0;
    GString *text = read_fd(fd, SECRET_MAX_BYTES, &errnum);
    close(fd);
    char *secret = text ? g_strdup(g_strstrip(text->str)) : NULL;
    if (text)
        wipe_gstring(text);

    IfsError *bad = NULL;
    char *control = secret ? control_char_in(secret) : NULL;
    if (!secret)
        bad = token_file_error(errnum_for_file(errnum), ld, sec, e,
            "cannot read %s: %s; it must hold only the secret", path,
            errnum == EFBIG ? "larger than 64 KiB" : g_strerror(errnum));
    else if (!*secret)
        bad = token_file_error(EINVAL, ld, sec, e, "%s is empty; put the "
                               "secret in it", path);
    else if (control && strcmp(control, "a line break") == 0)
        bad = token_file_error(EINVAL, ld, sec, e, "%s holds more than one "
                               "line; it must hold only the secret", path);
    else if (control)
        bad = token_file_error(EINVAL, ld, sec, e, "the secret in %s holds %s; "
                               "remove it, the file must hold only the secret "
                               "(printable characters on one line)", path, control);
    g_free(control);
    if (bad) {
        ifs_error_propagate(err, bad);
        wipe_free(secret);
        g_free(path);
        return NULL;
    }
    *path_out = path;
    return secret;
}

/* token_command ------------------------------------------------------ */

typedef struct {
    GString *out;       /* stdout: the secret */
    GString *err;       /* stderr: for the error message */
    gboolean overflow;  /* stdout exceeded SECRET_MAX_BYTES */
    gboolean timed_out;
    int status;         /* as from waitpid(); 0 when it could not be known */
} CommandRun;

/* Reads what is available on `fd` into `buf` (beyond `max` bytes it is
 * drained and dropped). FALSE at end of file or on a hard error. */
static gboolean read_available(int fd, GString *buf, gsize max,
                               gboolean *overflow)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return FALSE;
    if (buf->len + (gsize)n <= max)
        g_string_append_len(buf, chunk, n);
    else
        *overflow = TRUE;
    explicit_bzero(chunk, sizeof chunk);
    return TRUE;
}

/* Collects stdout and stderr until both are closed or the deadline. */
static void collect_output(int out_fd, int err_fd, gint64 deadline,
                           CommandRun *run)
{
    struct pollfd fds[2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
    GString *bufs[2] = { run->out, run->err };
    gboolean overflow[2] = { FALSE, FALSE };

    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0) {
            run->timed_out = TRUE;
            break;
        }
        int n = poll(fds, 2, (int)left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < 2; i++)
            if (fds[i].fd >= 0 && fds[i].revents &&
                !read_available(fds[i].fd, bufs[i], SECRET_MAX_BYTES,
                                &overflow[i]))
                fds[i].fd = -1; /* poll() skips negative descriptors */
    }
    run->overflow = overflow[0];
}

/* Reaps the child, killing it if it outlives the deadline (a command may
 * close its output and still hang). On a timeout the whole session goes:
 * `sh -c 'sleep 1000 & sleep 1000'` leaves more than the shell behind, and
 * whatever still holds the pipes open is part of why it timed out. */
static void reap_child(GPid pid, gint64 deadline, CommandRun *run)
{
    for (;;) {
        if (!run->timed_out && g_get_monotonic_time() >= deadline)
            run->timed_out = TRUE;
        if (run->timed_out) {
            /* Before the shell is reaped, while its pid still names the
             * group for certain. */
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &run->status, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        pid_t r = waitpid(pid, &run->status, WNOHANG);
        if (r == pid)
            return;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            /* ECHILD: SIGCHLD is ignored (inherited SIG_IGN), the kernel
             * reaped it and the status is lost; judge by the output. */
            run->status = 0;
            return;
        }
        g_usleep(5000);
    }
}

/* In the child, before exec: a session (and process group) of its own, so
 * that a timeout can kill everything the command started. A session rather
 * than only a group: a group in ours would be stopped by SIGTTIN the moment
 * it read from our terminal; without a controlling terminal a prompt can
 * still open the terminal by name (as pinentry does) and is killed at the
 * deadline like anything else. */
static void command_child_setup(gpointer data)
{
    (void)data;
    setsid();
}

/* "INFRAFS_<ACCOUNT>_TOKEN" (the environment entry "NAME=value" or the
 * bare name). */
static gboolean is_env_secret(const char *entry)
{
    size_t name_len = strcspn(entry, "=");
    return name_len > strlen("INFRAFS__TOKEN") &&
           g_str_has_prefix(entry, "INFRAFS_") &&
           strncmp(entry + name_len - strlen("_TOKEN"), "_TOKEN",
                   strlen("_TOKEN")) == 0;
}

/* Our environment without any account's secret: a token_command is
 * another program, often another vendor's, and has no business with the
 * other accounts' keys. */
static char **command_environment(void)
{
    char **env = g_get_environ();
    guint kept = 0;
    for (guint i = 0; env[i]; i++) {
        if (is_env_secret(env[i]))
            wipe_free(env[i]);
        else
            env[kept++] = env[i];
    }
    env[kept] = NULL;
    return env;
}

/* Runs `command` with /bin/sh -c in `cwd`, stdin from /dev/null. Not
 * g_spawn_sync(): it has no timeout, and a hanging password manager must
 * not hang the mount. */
static gboolean run_command(const char *command, const char *cwd,
                            CommandRun *run, GError **gerr)
{
    char *argv[] = { "/bin/sh", "-c", (char *)command, NULL };
    char **envp = command_environment();
    GPid pid;
    int out_fd = -1, err_fd = -1;
    gboolean spawned = g_spawn_async_with_pipes(cwd, argv, envp,
                                                G_SPAWN_DO_NOT_REAP_CHILD |
                                                    G_SPAWN_CLOEXEC_PIPES,
                                                command_child_setup, NULL, &pid,
                                                NULL, &out_fd, &err_fd, gerr);
    g_strfreev(envp);
    if (!spawned)
        return FALSE;
    gint64 deadline = g_get_monotonic_time() + COMMAND_TIMEOUT_S * G_USEC_PER_SEC;
    collect_output(out_fd, err_fd, deadline, run);
    close(out_fd);
    close(err_fd);
    reap_child(pid, deadline, run);
    g_spawn_close_pid(pid);
    return TRUE;
}

/* "(stderr: first line)" for messages, bounded and printable. */
static char *stderr_excerpt(const GString *err)
{
    const char *start = err->str + strspn(err->str, " \t\r\n\v\f");
    char *line = ifs_one_line(start, (gssize)strcspn(start, "\r\n"), STDERR_EXCERPT_MAX);
    char *excerpt = line ? g_strdup_printf("stderr: %s", line) : g_strdup("no error output");

    g_free(line);
    return excerpt;
}

/* What went wrong with a finished command, or NULL if its output is the
 * secret. The secret itself never appears in the text. */
static char *command_problem(const CommandRun *run, const char *secret)
{
    char *excerpt = stderr_excerpt(run->err);
    char *problem = NULL;
    char *control = NULL;
    if (run->timed_out)
        problem = g_strdup_printf("did not finish within %d s (%s); make it "
            "non-interactive or faster", COMMAND_TIMEOUT_S, excerpt);
    else if (WIFSIGNALED(run->status))
        problem = g_strdup_printf("killed by signal %d (%s); run it by hand "
            "to check it prints the secret", WTERMSIG(run->status), excerpt);
    else if (WIFEXITED(run->status) && WEXITSTATUS(run->status) != 0)
        problem = g_strdup_printf("exited with status %d (%s); run it by hand "
            "to check it prints the secret", WEXITSTATUS(run->status), excerpt);
    else if (run->overflow)
        problem = g_strdup("printed more than 64 KiB; it must print only the "
                           "secret");
    else if (!*secret)
        problem = g_strdup_printf("printed nothing on standard output (%s); it "
            "must print the secret", excerpt);
    else if ((control = control_char_in(secret)) &&
             strcmp(control, "a line break") == 0)
        problem = g_strdup("printed more than one line; it must print only "
                           "the secret, e.g. append '| head -n 1'");
    else if (control)
        problem = g_strdup_printf("printed %s in the secret; it must print "
                                  "only the secret (printable characters on "
                                  "one line)", control);
    g_free(control);
    g_free(excerpt);
    return problem;
}

static char *run_token_command(const Loader *ld, const RawSection *sec,
                               const RawEntry *e, IfsError **err)
{
    CommandRun run = { g_string_new(NULL), g_string_new(NULL), FALSE, FALSE, 0 };
    GError *gerr = NULL;
    char *secret = NULL;
    char *problem = NULL;
    if (run_command(e->value, ld->dir, &run, &gerr)) {
        secret = g_strdup(g_strstrip(run.out->str));
        problem = command_problem(&run, secret);
    } else {
        problem = g_strdup_printf("cannot run /bin/sh: %s", gerr->message);
        g_error_free(gerr);
    }
    wipe_gstring(run.out);
    g_string_free(run.err, TRUE);
    if (!problem)
        return secret;
    ifs_error_propagate(err, config_error(EINVAL, ld->path, e->line,
        sec->name, "token_command", "%s", problem));
    g_free(problem);
    wipe_free(secret);
    return NULL;
}

char *ifs_account_read_secret(const IfsAccountConfig *acct, IfsError **err)
{
    Loader ld = { .path = acct->config_path };
    RawSection sec = { .name = acct->name, .line = acct->line };
    RawEntry e = { .value = acct->secret_key_value, .line = acct->secret_key_line };
    char *secret = NULL, *file_path = NULL;

    if (acct->secret_kind != IFS_SECRET_FILE && acct->secret_kind != IFS_SECRET_COMMAND)
        return g_strdup(acct->secret);
    g_return_val_if_fail(acct->config_path && acct->secret_key_value, NULL);
    ld.dir = g_path_get_dirname(acct->config_path);
    if (acct->secret_kind == IFS_SECRET_FILE) {
        e.key = "token_file";
        secret = read_token_file(&ld, &sec, &e, &file_path, err);
    } else {
        e.key = "token_command";
        secret = run_token_command(&ld, &sec, &e, err);
    }
    g_free(file_path);
    g_free(ld.dir);
    return secret;
}

void ifs_config_secret_free(char *secret)
{
    wipe_free(secret);
}

/* Exactly one secret source per account (CONTRACT §2). An empty
 * environment variable counts as unset. */
static gboolean check_one_secret_source(const Loader *ld, const RawSection *sec,
                                        const char *env_name, gboolean env_set,
                                        IfsError **err)
{
    static const char *const keys[] = { "token", "token_file", "token_command", NULL };
    GString *found = g_string_new(NULL);
    int count = 0;
    for (const char *const *k = keys; *k; k++) {
        const RawEntry *e = section_get(sec, *k);
        if (e)
            g_string_append_printf(found, "%s%s (line %d)", count++ ? ", " : "",
                                   *k, e->line);
    }
    if (env_set)
        g_string_append_printf(found, "%senvironment variable %s",
                               count++ ? ", " : "", env_name);
    if (count == 0)
        ifs_error_propagate(err, config_error(EINVAL, ld->path, sec->line,
            sec->name, NULL, "no secret given; add token_file = PATH, "
            "token_command = COMMAND or token = TOKEN (then chmod 600 the "
            "config), or set %s", env_name));
    else if (count > 1)
        ifs_error_propagate(err, config_error(EINVAL, ld->path, sec->line,
            sec->name, NULL, "more than one secret given: %s; keep exactly "
            "one", found->str));
    g_string_free(found, TRUE);
    return count == 1;
}

/* Step 3: fills acct->secret and acct->secret_source. */
static gboolean resolve_secret(const Loader *ld, const RawSection *sec,
                               IfsAccountConfig *acct, IfsError **err)
{
    char *env_name = ifs_config_env_name(sec->name);
    const char *env = g_getenv(env_name);
    gboolean env_set = env && *env;
    gboolean ok = check_one_secret_source(ld, sec, env_name, env_set, err);
    const RawEntry *token = section_get(sec, "token");
    const RawEntry *file = section_get(sec, "token_file");
    const RawEntry *command = section_get(sec, "token_command");
    char *file_path = NULL;
    char *control = NULL;

    if (!ok) {
        /* reported above */
    } else if (token && (control = control_char_in(token->value))) {
        ifs_error_propagate(err, config_error(EINVAL, ld->path, token->line,
            sec->name, "token", "the secret holds %s; remove it (a secret is "
            "printable characters on one line; check for a stray paste)",
            control));
    } else if (token) {
        acct->secret = g_strdup(token->value);
        acct->secret_source = g_strdup_printf("token in %s:%d", ld->path,
                                              token->line);
        acct->secret_kind = IFS_SECRET_INLINE;
    } else if (file) {
        acct->secret = read_token_file(ld, sec, file, &file_path, err);
        if (acct->secret)
            acct->secret_source = g_strdup_printf("token_file %s", file_path);
        acct->secret_kind = IFS_SECRET_FILE;
        acct->secret_key_value = g_strdup(file->value);
        acct->secret_key_line = file->line;
    } else if (command) {
        acct->secret = run_token_command(ld, sec, command, err);
        if (acct->secret)
            acct->secret_source = g_strdup_printf("token_command at %s:%d",
                                                  ld->path, command->line);
        acct->secret_kind = IFS_SECRET_COMMAND;
        acct->secret_key_value = g_strdup(command->value);
        acct->secret_key_line = command->line;
    } else if ((control = control_char_in(env))) {
        ifs_error_propagate(err, config_error(EINVAL, ld->path, sec->line,
            sec->name, NULL, "environment variable %s holds %s; set it to "
            "the token alone (printable characters on one line)", env_name,
            control));
    } else {
        acct->secret = g_strdup(env);
        acct->secret_source = g_strdup_printf("environment variable %s",
                                              env_name);
        acct->secret_kind = IFS_SECRET_ENV;
    }
    acct->config_path = g_strdup(ld->path);
    g_free(control);
    g_free(file_path);
    g_free(env_name);
    return acct->secret != NULL;
}

/* webhook_listen = ADDRESS:PORT with webhook_secret_file, for the types
 * that take pushed changes (their schema lists the keys). The address is
 * a numeric IPv4 address or a bracketed IPv6 one: a listener binds to what
 * the file says, never to what a name resolves to on the day. */
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

static gboolean resolve_webhook(const Loader *ld, const RawSection *sec,
                                IfsAccountConfig *acct, IfsError **err)
{
    const RawEntry *listen = section_get(sec, "webhook_listen");
    const RawEntry *file = section_get(sec, "webhook_secret_file");
    char *path = NULL;

    if (!listen && !file)
        return TRUE;
    if (!listen || !file) {
        ifs_error_propagate(err, config_error(EINVAL, ld->path, (listen ? listen : file)->line,
            sec->name, listen ? "webhook_listen" : "webhook_secret_file",
            "webhooks need both webhook_listen and webhook_secret_file; add the other "
            "or remove this one"));
        return FALSE;
    }
    if (!listen_address_ok(listen->value)) {
        ifs_error_propagate(err, config_error(EINVAL, ld->path, listen->line, sec->name,
            "webhook_listen", "'%s' is not ADDRESS:PORT with a numeric address; write "
            "e.g. webhook_listen = 127.0.0.1:8089 (or [::1]:8089)", listen->value));
        return FALSE;
    }
    acct->webhook_secret = read_token_file(ld, sec, file, &path, err);
    g_free(path);
    if (!acct->webhook_secret)
        return FALSE;
    acct->webhook_listen = g_strdup(listen->value);
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static GPtrArray *parse_config(const char *path, GString *text,
                               IfsError **err)
{
    Parser p = {
        .path = path,
        .sections = g_ptr_array_new_with_free_func(raw_section_free),
    };
    if (!parse_text(&p, text, err)) {
        g_ptr_array_unref(p.sections);
        return NULL;
    }
    if (p.sections->len == 0) {
        ifs_error_propagate(err, ifs_error_new(EINVAL, 0, NULL,
            "no accounts configured in %s; add one [section] per account, "
            "see man infrafs", path));
        g_ptr_array_unref(p.sections);
        return NULL;
    }
    return p.sections;
}

static gboolean build_accounts(const Loader *ld, GPtrArray *sections,
                               GPtrArray *accounts, IfsError **err)
{
    for (guint i = 0; i < sections->len; i++) {
        IfsAccountConfig *acct =
            account_from_section(ld, g_ptr_array_index(sections, i), err);
        if (!acct)
            return FALSE;
        g_ptr_array_add(accounts, acct);
    }
    for (guint i = 0; i < sections->len; i++)
        if (!resolve_secret(ld, g_ptr_array_index(sections, i),
                            g_ptr_array_index(accounts, i), err) ||
            !resolve_webhook(ld, g_ptr_array_index(sections, i),
                             g_ptr_array_index(accounts, i), err))
            return FALSE;
    return TRUE;
}

IfsConfig *ifs_config_load(const char *path,
                           const IfsAccountSchema *const *schemas,
                           IfsError **err)
{
    g_return_val_if_fail(path != NULL, NULL);
    IfsConfig *cfg = g_new0(IfsConfig, 1);
    cfg->path = g_canonicalize_filename(path, NULL);
    cfg->accounts = g_ptr_array_new_with_free_func(account_free);
    Loader ld = { cfg->path, g_path_get_dirname(cfg->path), schemas };

    struct stat st;
    GString *text = read_config_file(cfg->path, &st, err);
    GPtrArray *sections = text ? parse_config(cfg->path, text, err) : NULL;
    gboolean ok = sections && check_config_mode(cfg->path, &st, sections, err) &&
                  build_accounts(&ld, sections, cfg->accounts, err);

    if (text)
        wipe_gstring(text); /* may hold inline tokens */
    if (sections)
        g_ptr_array_unref(sections);
    g_free(ld.dir);
    if (ok)
        return cfg;
    ifs_config_free(cfg);
    return NULL;
}

void ifs_config_free(IfsConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->path);
    g_ptr_array_unref(cfg->accounts);
    g_free(cfg);
}

const char *ifs_account_extra(const IfsAccountConfig *acct, const char *key)
{
    return acct && acct->extra ? g_hash_table_lookup(acct->extra, key) : NULL;
}

void ifs_config_forget_env_secrets(void)
{
    /* unsetenv() only drops the pointer: the text stays where exec put it,
     * and /proc/PID/environ shows that memory, so it is wiped too. */
    GPtrArray *entries = g_ptr_array_new();
    for (char **e = environ; e && *e; e++)
        if (is_env_secret(*e))
            g_ptr_array_add(entries, *e);
    for (guint i = 0; i < entries->len; i++) {
        char *entry = g_ptr_array_index(entries, i);
        char *name = g_strndup(entry, strcspn(entry, "="));
        g_unsetenv(name);
        g_free(name);
    }
    for (guint i = 0; i < entries->len; i++) {
        char *entry = g_ptr_array_index(entries, i);
        explicit_bzero(entry, strlen(entry));
    }
    g_ptr_array_free(entries, TRUE);
}
