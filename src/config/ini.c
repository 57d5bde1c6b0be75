/* Reading the config file into raw sections: lines, [section] headers,
 * key = value entries and comments, each remembered with its line for the
 * messages. We parse INI ourselves because GKeyFile can neither report
 * line numbers nor accept inline comments. */
#include "config_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The file's size is bounded whatever it holds. */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define ACCOUNT_NAME_MAX 255 /* it becomes a directory name (NAME_MAX) */

static void raw_entry_free(gpointer data)
{
    RawEntry *e = data;
    g_free(e->key);
    config_wipe_free(e->value); /* may be an inline token */
    g_free(e);
}

void config_raw_section_free(gpointer data)
{
    RawSection *s = data;
    g_free(s->name);
    g_ptr_array_unref(s->entries);
    g_free(s);
}

const RawEntry *config_section_get(const RawSection *sec, const char *key)
{
    for (guint i = 0; i < sec->entries->len; i++) {
        const RawEntry *e = g_ptr_array_index(sec->entries, i);
        if (strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

const char *config_section_value(const RawSection *sec, const char *key)
{
    const RawEntry *e = config_section_get(sec, key);
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
/* Reading files                                                        */

/* Reads the whole of `fd`, at most `max` bytes. NULL with *error_out set
 * (EFBIG when the file is larger) on failure. */
GString *config_read_fd(int fd, gsize max, int *error_out)
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
            config_wipe_gstring(buf);
            return NULL;
        }
        if (n == 0)
            break;
        g_string_append_len(buf, chunk, n);
    }
    explicit_bzero(chunk, sizeof chunk);
    return buf;
}

GString *config_read_file(const char *path, struct stat *st, IfsError **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            ifs_error_propagate(
                err,
                config_error(ENOENT, path, 0, NULL, NULL,
                             "config file not found; create it (see man infrafs) or name "
                             "another with -o config=FILE"));
        else
            ifs_error_propagate(err,
                                config_error(config_errnum_for_file(e), path, 0, NULL, NULL,
                                             "cannot open the config file: %s; check its "
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
        text = config_read_fd(fd, CONFIG_MAX_BYTES, &e);
    close(fd);
    if (!text)
        ifs_error_propagate(err,
                            config_error(e == EISDIR ? EINVAL : config_errnum_for_file(e), path, 0,
                                         NULL, NULL,
                                         "cannot read the config file: %s; name the "
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

static gboolean malformed(Parser *p, int line, const char *what, IfsError **err)
{
    ifs_error_propagate(err,
                        config_error(EINVAL, p->path, line, p->current ? p->current->name : NULL,
                                     NULL, "%s", what));
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
        return malformed(p, line,
                         "malformed section header; write it as "
                         "'[account]'",
                         err);
    s[len - 1] = '\0';
    char *name = g_strstrip(s + 1);

    if (!valid_account_name(name)) {
        ifs_error_propagate(
            err,
            config_error(EINVAL, p->path, line, NULL, NULL,
                         "invalid account name '%s': it becomes a directory name, "
                         "so use only letters, digits, '.', '_' and '-' (not '.' or "
                         "'..', at most %d characters)",
                         name, ACCOUNT_NAME_MAX));
        return FALSE;
    }
    const RawSection *first = find_section(p->sections, name);
    if (first) {
        ifs_error_propagate(err,
                            config_error(EINVAL, p->path, line, name, NULL,
                                         "duplicate section (first at line %d); account names must "
                                         "be unique, rename or merge one of them",
                                         first->line));
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

static gboolean parse_entry(Parser *p, char *s, char *eq, int line, IfsError **err)
{
    *eq = '\0';
    char *key = g_strchomp(s);
    if (!valid_key_name(key))
        return malformed(p, line,
                         "malformed line: the key before '=' may "
                         "hold only letters, digits, '_', '-' and '.'",
                         err);
    if (!p->current) {
        ifs_error_propagate(
            err,
            config_error(EINVAL, p->path, line, NULL, key,
                         "key outside any section; put it below an '[account]' header"));
        return FALSE;
    }
    const RawEntry *first = config_section_get(p->current, key);
    if (first) {
        ifs_error_propagate(err,
                            config_error(EINVAL, p->path, line, p->current->name, key,
                                         "duplicate key (first set at line %d); "
                                         "keep only one",
                                         first->line));
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
        ifs_error_propagate(
            err, config_error(EINVAL, p->path, line, p->current->name, key, "%s", problem));
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
        return malformed(p, lineno,
                         "malformed line; expected "
                         "'key = value', '[account]' or a comment",
                         err);
    return parse_entry(p, s, eq, lineno, err);
}

/* Splits `text` (modified in place) into lines and parses them. */
gboolean config_parse_text(Parser *p, GString *text, IfsError **err)
{
    const char *nul = memchr(text->str, '\0', text->len);
    if (nul) {
        int line = 1;
        for (const char *c = text->str; c < nul; c++)
            line += *c == '\n';
        ifs_error_propagate(err,
                            config_error(EINVAL, p->path, line, NULL, NULL,
                                         "contains a NUL byte; the config must be a text file"));
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
