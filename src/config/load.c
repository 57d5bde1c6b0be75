/* Loading the config file (infrafs/config.h): an INI file with one
 * section per account, read in three steps so that every error is
 * reported before anything with side effects runs:
 *   1. read and parse the file into raw sections (ini.c);
 *   2. check every section against its provider's schema (schema.c);
 *   3. resolve the secrets, which may run a token_command (secrets.c).
 * This file runs them, and holds the messages and paths they share. */
#include "config_private.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Errors                                                               */

/* Every message has the shape "FILE:LINE: [section] key: what; fix", with
 * the parts that do not apply left out. */
static IfsError *config_verror(int errnum, const char *path, int line, const char *section,
                               const char *key, const char *fmt, va_list ap) G_GNUC_PRINTF(6, 0);

static IfsError *config_verror(int errnum, const char *path, int line, const char *section,
                               const char *key, const char *fmt, va_list ap)
{
    char *what = g_strdup_vprintf(fmt, ap);
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

IfsError *config_error(int errnum, const char *path, int line, const char *section, const char *key,
                       const char *fmt, ...)
{
    va_list ap;
    IfsError *err;

    va_start(ap, fmt);
    err = config_verror(errnum, path, line, section, key, fmt, ap);
    va_end(ap);
    return err;
}

gboolean config_refuse(const Loader *ld, const RawSection *sec, const RawEntry *e, IfsError **err,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ifs_error_propagate(err, config_verror(EINVAL, ld->path, e->line, sec->name, e->key, fmt, ap));
    va_end(ap);
    return FALSE;
}

/* Only EINVAL, ENOENT and EACCES leave here (a config error stops the mount: doc/SEMANTICS.md §2.1). */
int config_errnum_for_file(int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return ENOENT;
    if (e == EACCES || e == EPERM)
        return EACCES;
    return EINVAL;
}

const char *config_exposure(mode_t mode)
{
    gboolean readable = (mode & (S_IRGRP | S_IROTH)) != 0;
    gboolean writable = (mode & S_IWOTH) != 0;
    if (readable && writable)
        return "readable by group or others and writable by others";
    return readable ? "readable by group or others" : "writable by others";
}

/* The fix we print ("run: chmod 600 PATH") should be pasteable as is. */
char *config_shell_word(const char *path)
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
    if (getpwuid_r(getuid(), &pw, buf, (size_t)size, &found) == 0 && found && found->pw_dir &&
        g_path_is_absolute(found->pw_dir))
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
char *config_expand_path(const Loader *ld, const char *value, const char **problem)
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
/* Loading                                                              */

static GPtrArray *parse_config(const char *path, GString *text, IfsError **err)
{
    Parser p = {
        .path = path,
        .sections = g_ptr_array_new_with_free_func(config_raw_section_free),
    };
    if (!config_parse_text(&p, text, err)) {
        g_ptr_array_unref(p.sections);
        return NULL;
    }
    if (p.sections->len == 0) {
        ifs_error_propagate(
            err,
            ifs_error_new(EINVAL, 0, NULL,
                          "no accounts configured in %s; add one [section] per account, "
                          "see man infrafs",
                          path));
        g_ptr_array_unref(p.sections);
        return NULL;
    }
    return p.sections;
}

static gboolean build_accounts(const Loader *ld, GPtrArray *sections, GPtrArray *accounts,
                               IfsError **err)
{
    for (guint i = 0; i < sections->len; i++) {
        IfsAccountConfig *acct =
            config_account_from_section(ld, g_ptr_array_index(sections, i), err);
        if (!acct)
            return FALSE;
        g_ptr_array_add(accounts, acct);
    }
    for (guint i = 0; i < sections->len; i++)
        if (!config_resolve_secret(ld, g_ptr_array_index(sections, i),
                                   g_ptr_array_index(accounts, i), err) ||
            !config_resolve_webhook(ld, g_ptr_array_index(sections, i),
                                    g_ptr_array_index(accounts, i), err))
            return FALSE;
    return TRUE;
}

IfsConfig *ifs_config_load(const char *path, const IfsAccountSchema *const *schemas, IfsError **err)
{
    g_return_val_if_fail(path != NULL, NULL);
    IfsConfig *cfg = g_new0(IfsConfig, 1);
    cfg->path = g_canonicalize_filename(path, NULL);
    cfg->accounts = g_ptr_array_new_with_free_func(config_account_free);
    Loader ld = {cfg->path, g_path_get_dirname(cfg->path), schemas};

    struct stat st;
    GString *text = config_read_file(cfg->path, &st, err);
    GPtrArray *sections = text ? parse_config(cfg->path, text, err) : NULL;
    gboolean ok = sections && config_check_mode(cfg->path, &st, sections, err) &&
        build_accounts(&ld, sections, cfg->accounts, err);

    if (text)
        config_wipe_gstring(text); /* may hold inline tokens */
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
