/* Unit tests for src/config/: the config file of doc/SEMANTICS.md §2. Each test
 * writes its files into a fresh temporary directory and loads them with a
 * schema set that mimics the real providers. */
#include "infrafs/config.h"
#include "test_util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const heo_keys[] = {"vps", NULL};

static const IfsAccountSchema hostup_schema = {
    "hostup", "https://cloud.hostup.se", FALSE, NULL, NULL,
};
static const IfsAccountSchema heo_schema = {
    "heo", "https://api.heo-systems.net", FALSE, heo_keys, heo_keys,
};
static const IfsAccountSchema deployhq_schema = {
    "deployhq", NULL, TRUE, NULL, NULL,
};
static const IfsAccountSchema *const schemas[] = {
    &hostup_schema,
    &heo_schema,
    &deployhq_schema,
    NULL,
};

/* Environment the tests change; restored after each test. */
static const char *const saved_vars[] = {
    "HOME",
    "XDG_CONFIG_HOME",
    "INFRAFS_HOSTUP_TOKEN",
    "INFRAFS_HEO_TOKEN",
    "INFRAFS_DEPLOYHQ_TOKEN",
    "INFRAFS_MY_HOST_1_TOKEN",
    "INFRAFS_OTHER_TOKEN",
    "INFRAFS_NOT_A_SECRET",
    NULL,
};

typedef struct {
    char *dir; /* temporary directory, removed afterwards */
    char *saved[G_N_ELEMENTS(saved_vars)];
} Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    GError *gerr = NULL;
    fx->dir = g_dir_make_tmp("infrafs-config-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    for (guint i = 0; saved_vars[i]; i++) {
        fx->saved[i] = g_strdup(g_getenv(saved_vars[i]));
        /* A developer's own INFRAFS_*_TOKEN must not change the results. */
        if (g_str_has_prefix(saved_vars[i], "INFRAFS_"))
            g_unsetenv(saved_vars[i]);
    }
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    for (guint i = 0; saved_vars[i]; i++) {
        if (fx->saved[i])
            g_setenv(saved_vars[i], fx->saved[i], TRUE);
        else
            g_unsetenv(saved_vars[i]);
        g_free(fx->saved[i]);
    }
    test_remove_tree(fx->dir);
    g_free(fx->dir);
}

/* Writes `content` to dir/name with exactly `mode` (whatever the umask). */
static char *write_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    char *path = g_build_filename(dir, name, NULL);
    char *parent = g_path_get_dirname(path);
    g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
    g_free(parent);
    GError *gerr = NULL;
    g_file_set_contents(path, content, -1, &gerr);
    g_assert_no_error(gerr);
    g_assert_cmpint(chmod(path, mode), ==, 0);
    return path;
}

static IfsConfig *load_text(Fixture *fx, const char *text, mode_t mode, IfsError **err)
{
    char *path = write_file(fx->dir, "config", text, mode);
    IfsConfig *cfg = ifs_config_load(path, schemas, err);
    g_free(path);
    return cfg;
}

static IfsConfig *load_ok(Fixture *fx, const char *text)
{
    IfsError *err = NULL;
    IfsConfig *cfg = load_text(fx, text, 0600, &err);
    if (err)
        g_test_message("unexpected error: %s", err->message);
    g_assert_null(err);
    g_assert_nonnull(cfg);
    return cfg;
}

/* Asserts the load fails with `errnum` and a message that contains every
 * string of the NULL-terminated list. */
static void expect_error(Fixture *fx, const char *text, mode_t mode, int errnum,
                         ...) G_GNUC_NULL_TERMINATED;

static void expect_error(Fixture *fx, const char *text, mode_t mode, int errnum, ...)
{
    IfsError *err = NULL;
    IfsConfig *cfg = load_text(fx, text, mode, &err);
    g_assert_null(cfg);
    g_assert_nonnull(err);
    g_test_message("error: %s", err->message);
    g_assert_cmpint(err->errnum, ==, errnum);
    va_list ap;
    va_start(ap, errnum);
    for (const char *s; (s = va_arg(ap, const char *));)
        g_assert_nonnull(strstr(err->message, s));
    va_end(ap);
    ifs_error_free(err);
}

static const IfsAccountConfig *account(const IfsConfig *cfg, guint i)
{
    g_assert_cmpuint(i, <, cfg->accounts->len);
    return g_ptr_array_index(cfg->accounts, i);
}

static char *config_path(const Fixture *fx)
{
    return g_build_filename(fx->dir, "config", NULL);
}

static char *passwd_home(void)
{
    struct passwd *pw = getpwuid(getuid());
    g_assert_nonnull(pw);
    return g_strdup(pw->pw_dir);
}

/* ------------------------------------------------------------------ */

/* A three-account example with inline comments, in the shape man infrafs (CONFIGURATION) and the README show, parses as documented (doc/SEMANTICS.md §2). */
static void test_documented_example(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("HOME", fx->dir, TRUE);
    g_free(write_file(fx->dir, ".config/infrafs/hostup.token", "hostup-secret\n", 0600));
    IfsConfig *cfg =
        load_ok(fx,
                "[hostup]                 # section name = account name in the tree\n"
                "type = hostup            # hostup | heo | deployhq | hostatlas | dokploy\n"
                "url = https://cloud.hostup.se\n"
                "token_file = ~/.config/infrafs/hostup.token\n"
                "refresh = 60\n"
                "\n"
                "[heo]\n"
                "type = heo\n"
                "token_command = echo heo-secret   # stdout is the secret\n"
                "vps = vps_123 vps_456               # HEO has no list endpoint\n"
                "\n"
                "[deployhq]\n"
                "type = deployhq\n"
                "url = https://acme.deployhq.com\n"
                "user = ops@example.com\n"
                "token = dhq-secret                   # inline: file must be 0600\n");
    char *path = config_path(fx);
    g_assert_cmpstr(cfg->path, ==, path);
    g_assert_cmpuint(cfg->accounts->len, ==, 3);

    const IfsAccountConfig *h = account(cfg, 0);
    g_assert_cmpstr(h->name, ==, "hostup");
    g_assert_cmpstr(h->type, ==, "hostup");
    g_assert_cmpstr(h->url, ==, "https://cloud.hostup.se");
    g_assert_cmpstr(h->secret, ==, "hostup-secret");
    char *token_path = g_build_filename(fx->dir, ".config/infrafs/hostup.token", NULL);
    char *source = g_strdup_printf("token_file %s", token_path);
    g_assert_cmpstr(h->secret_source, ==, source);
    g_assert_cmpint(h->refresh_s, ==, 60);
    g_assert_cmpint(h->line, ==, 1);
    g_assert_null(h->user);
    g_assert_null(h->cacert);

    const IfsAccountConfig *heo = account(cfg, 1);
    g_assert_cmpstr(heo->url, ==, "https://api.heo-systems.net");
    g_assert_cmpstr(heo->secret, ==, "heo-secret");
    g_assert_cmpstr(ifs_account_extra(heo, "vps"), ==, "vps_123 vps_456");
    g_assert_null(ifs_account_extra(heo, "nope"));
    g_assert_cmpint(heo->refresh_s, ==, -1);
    g_assert_cmpint(heo->line, ==, 7);
    g_assert_nonnull(strstr(heo->secret_source, "token_command"));
    g_assert_null(strstr(heo->secret_source, "heo-secret"));

    const IfsAccountConfig *d = account(cfg, 2);
    g_assert_cmpstr(d->url, ==, "https://acme.deployhq.com");
    g_assert_cmpstr(d->user, ==, "ops@example.com");
    g_assert_cmpstr(d->secret, ==, "dhq-secret");
    char *inline_source = g_strdup_printf("token in %s:16", path);
    g_assert_cmpstr(d->secret_source, ==, inline_source);

    g_free(inline_source);
    g_free(source);
    g_free(token_path);
    g_free(path);
    ifs_config_free(cfg);
}

static void test_inline_token(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg = load_ok(fx,
                             "; a full-line comment\n"
                             "# another one\n"
                             "[hostup]\n"
                             "type=hostup\n"
                             "token = pass#1;x ; trailing remark\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "pass#1;x");
    ifs_config_free(cfg);
}

static void test_quoted_value(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg = load_ok(fx,
                             "[hostup]\n"
                             "type = \"hostup\"\n"
                             "token = \"abc #def ; g\"   # the quotes keep ' #'\n"
                             "url = \"https://sim.example:8443/\"\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "abc #def ; g");
    g_assert_cmpstr(account(cfg, 0)->url, ==, "https://sim.example:8443");
    ifs_config_free(cfg);

    expect_error(fx, "[hostup]\ntype = hostup\ntoken = \"abc #def\n", 0600, EINVAL,
                 ":3: [hostup] token: unterminated double quote", NULL);
    expect_error(fx, "[hostup]\ntype = hostup\ntoken = \"abc\"def\n", 0600, EINVAL,
                 ":3: [hostup] token: text after the closing quote", NULL);
}

static void test_token_file(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *token = write_file(fx->dir, "hostup.token", "  file-secret \n\n", 0600);
    char *text = g_strdup_printf("[hostup]\ntype = hostup\ntoken_file = %s\n", token);
    IfsConfig *cfg = load_ok(fx, text);
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "file-secret");
    ifs_config_free(cfg);

    g_free(write_file(fx->dir, "hostup.token", "\n  \n", 0600));
    expect_error(fx, text, 0600, EINVAL, ":3: [hostup] token_file: ", token, "is empty", NULL);
    g_free(write_file(fx->dir, "hostup.token", "line1\nline2\n", 0600));
    expect_error(fx, text, 0600, EINVAL, "more than one line", NULL);
    g_remove(token);
    expect_error(fx, text, 0600, ENOENT, ":3: [hostup] token_file: cannot open", token, NULL);
    g_free(text);
    g_free(token);
}

/* A fixed token_file or token_command is read again; a source gone bad
 * says how to fix it, as at load; inline tokens give what they gave. */
static void test_read_secret_again(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *token = write_file(fx->dir, "hostup.token", "old-secret\n", 0600);
    g_free(write_file(fx->dir, "cmd.token", "old-cmd\n", 0600));
    char *text = g_strdup_printf("[hostup]\ntype = hostup\ntoken_file = %s\n"
                                 "[heo]\ntype = heo\nvps = vps_1\ntoken_command = cat cmd.token\n"
                                 "[inline]\ntype = hostup\ntoken = inline-secret\n",
                                 token);
    IfsConfig *cfg = load_ok(fx, text);
    IfsError *err = NULL;
    char *again;

    g_free(write_file(fx->dir, "hostup.token", "new-secret\n", 0600));
    g_free(write_file(fx->dir, "cmd.token", "new-cmd\n", 0600));
    again = ifs_account_read_secret(account(cfg, 0), &err);
    g_assert_null(err);
    g_assert_cmpstr(again, ==, "new-secret");
    ifs_config_secret_free(again);
    again = ifs_account_read_secret(account(cfg, 1), &err);
    g_assert_cmpstr(again, ==, "new-cmd");
    ifs_config_secret_free(again);
    again = ifs_account_read_secret(account(cfg, 2), &err);
    g_assert_cmpstr(again, ==, "inline-secret");
    ifs_config_secret_free(again);

    g_assert_cmpint(chmod(token, 0644), ==, 0);
    g_assert_null(ifs_account_read_secret(account(cfg, 0), &err));
    g_assert_nonnull(err);
    g_assert_cmpint(err->errnum, ==, EACCES);
    g_assert_nonnull(strstr(err->message, "chmod 600"));
    g_assert_nonnull(strstr(err->message, "[hostup] token_file"));
    g_assert_null(strstr(err->message, "new-secret"));
    ifs_error_free(err);
    err = NULL;
    char *cmd_token = g_build_filename(fx->dir, "cmd.token", NULL);
    g_remove(cmd_token);
    g_free(cmd_token);
    g_assert_null(ifs_account_read_secret(account(cfg, 1), &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "token_command"));
    ifs_error_free(err);
    ifs_config_free(cfg);
    g_free(text);
    g_free(token);
}

static void test_token_file_relative(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "secrets/h.token", "rel-secret\n", 0400));
    /* Started from elsewhere: the path is still relative to the config. */
    char *cwd = g_get_current_dir();
    g_assert_cmpint(chdir("/"), ==, 0);
    IfsConfig *cfg =
        load_ok(fx, "[hostup]\ntype = hostup\ntoken_file = secrets/../secrets/h.token\n");
    g_assert_cmpint(chdir(cwd), ==, 0);
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "rel-secret");
    char *expected = g_build_filename(fx->dir, "secrets", "h.token", NULL);
    g_assert_nonnull(strstr(account(cfg, 0)->secret_source, expected));
    g_free(expected);
    g_free(cwd);
    ifs_config_free(cfg);
}

/* Boot mounts have no HOME: '~' comes from the passwd entry. The file is
 * deliberately missing so that the test never writes into a real home. */
static void test_tilde_without_home(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_unsetenv("HOME");
    char *home = passwd_home();
    char *name = g_strdup_printf("infrafs-test-missing-%d.token", (int)getpid());
    char *text = g_strdup_printf("[hostup]\ntype = hostup\ntoken_file = ~/%s\n", name);
    char *expected = g_build_filename(home, name, NULL);
    expect_error(fx, text, 0600, ENOENT, expected, NULL);
    g_free(expected);
    g_free(text);
    g_free(name);
    g_free(home);
}

static void test_tilde_with_home(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("HOME", fx->dir, TRUE);
    g_free(write_file(fx->dir, "t", "home-secret", 0600));
    IfsConfig *cfg = load_ok(fx, "[hostup]\ntype = hostup\ntoken_file = ~/t\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "home-secret");
    ifs_config_free(cfg);
    expect_error(fx, "[hostup]\ntype = hostup\ntoken_file = ~bob/t\n", 0600, EINVAL,
                 "'~user' paths are not supported", NULL);
}

static void test_token_command(Fixture *fx, gconstpointer data)
{
    (void)data;
    /* Runs in the config's directory, so relative paths work there too. */
    g_free(write_file(fx->dir, "cmd.token", "cmd-secret\n", 0600));
    IfsConfig *cfg = load_ok(fx, "[heo]\ntype = heo\nvps = vps_1\ntoken_command = cat cmd.token\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "cmd-secret");
    ifs_config_free(cfg);
}

static void test_token_command_fails(Fixture *fx, gconstpointer data)
{
    (void)data;
    const char *text = "[heo]\ntype = heo\nvps = vps_1\n"
                       "token_command = echo leaked-secret; echo 'gpg: no key' >&2; exit 1\n";
    expect_error(fx, text, 0600, EINVAL, ":4: [heo] token_command: ", "exited with status 1",
                 "stderr: gpg: no key", NULL);

    IfsError *err = NULL;
    g_assert_null(load_text(fx, text, 0600, &err));
    g_assert_null(strstr(err->message, "leaked-secret"));
    ifs_error_free(err);
}

static void test_token_command_empty(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "[heo]\ntype = heo\nvps = v\ntoken_command = true\n", 0600, EINVAL,
                 ":4: [heo] token_command: ", "printed nothing on standard output", NULL);
    expect_error(fx,
                 "[heo]\ntype = heo\nvps = v\n"
                 "token_command = printf 'a\\nb\\n'\n",
                 0600, EINVAL, "printed more than one line", NULL);
}

/* Slow (10 s): run with -m slow. */
static void test_token_command_timeout(Fixture *fx, gconstpointer data)
{
    (void)data;
    if (!g_test_slow()) {
        g_test_skip("takes 10 s; run with -m slow");
        return;
    }
    expect_error(fx, "[heo]\ntype = heo\nvps = v\ntoken_command = sleep 30\n", 0600, EINVAL,
                 "did not finish within 10 s", NULL);
}

static void test_env_token(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("INFRAFS_MY_HOST_1_TOKEN", "env-secret", TRUE);
    IfsConfig *cfg = load_ok(fx, "[my-host.1]\ntype = hostup\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "env-secret");
    g_assert_cmpstr(account(cfg, 0)->secret_source, ==,
                    "environment variable INFRAFS_MY_HOST_1_TOKEN");
    ifs_config_free(cfg);

    /* An empty variable counts as unset. */
    g_setenv("INFRAFS_MY_HOST_1_TOKEN", "", TRUE);
    expect_error(fx, "[my-host.1]\ntype = hostup\n", 0600, EINVAL, "no secret given", NULL);
}

static void test_env_name(void)
{
    char *name = ifs_config_env_name("my-acct.x_2");
    g_assert_cmpstr(name, ==, "INFRAFS_MY_ACCT_X_2_TOKEN");
    g_free(name);
}

static void test_two_secrets(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "t", "x", 0600));
    expect_error(fx,
                 "[hostup]\ntype = hostup\ntoken_file = t\n"
                 "token_command = echo y\n",
                 0600, EINVAL, ":1: [hostup] more than one secret given", "token_file (line 3)",
                 "token_command (line 4)", NULL);

    g_setenv("INFRAFS_HOSTUP_TOKEN", "z", TRUE);
    expect_error(fx, "[hostup]\ntype = hostup\ntoken = y\n", 0600, EINVAL, "token (line 3)",
                 "environment variable INFRAFS_HOSTUP_TOKEN", NULL);
}

static void test_no_secret(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "# accounts\n[hostup]\ntype = hostup\n", 0600, EINVAL,
                 ":2: [hostup] no secret given", "INFRAFS_HOSTUP_TOKEN", NULL);
}

/* doc/SEMANTICS.md §2.4: a secret in a file others can read is refused with the fix. */
static void test_inline_token_in_open_config(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *path = config_path(fx);
    char *fix = g_strdup_printf("run: chmod 600 %s", path);
    char *head = g_strdup_printf("%s: holds a secret (token in [deployhq], "
                                 "line 6)",
                                 path);
    const char *text = "[hostup]\ntype = hostup\ntoken_command = echo a\n"
                       "[deployhq]\ntype = deployhq\ntoken = s3cret\n"
                       "url = https://acme.deployhq.com\nuser = ops\n";
    expect_error(fx, text, 0644, EACCES, head, "mode 0644", fix, "readable by group or others",
                 NULL);
    expect_error(fx, text, 0602, EACCES, "writable by others", NULL);

    IfsError *err = NULL;
    g_assert_null(load_text(fx, text, 0644, &err));
    g_assert_null(strstr(err->message, "s3cret"));
    ifs_error_free(err);

    IfsConfig *cfg = load_ok(fx, text); /* 0600 */
    g_assert_cmpstr(account(cfg, 1)->secret, ==, "s3cret");
    ifs_config_free(cfg);
    g_free(head);
    g_free(fix);
    g_free(path);
}

static void test_open_token_file(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *token = write_file(fx->dir, "h.token", "x\n", 0644);
    char *fix = g_strdup_printf("run: chmod 600 %s", token);
    expect_error(fx, "[hostup]\ntype = hostup\ntoken_file = h.token\n", 0600, EACCES,
                 ":3: [hostup] token_file: ", "mode 0644", fix, NULL);
    g_free(fix);
    g_free(token);
}

/* Without an inline token the config itself holds no secret. */
static void test_open_config_without_token(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "h.token", "x\n", 0600));
    IfsError *err = NULL;
    IfsConfig *cfg = load_text(fx, "[hostup]\ntype = hostup\ntoken_file = h.token\n", 0644, &err);
    g_assert_null(err);
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "x");
    ifs_config_free(cfg);
}

/* But whoever can write it chooses where the key goes and what
 * token_command runs, whatever the secret's source. */
static void test_config_others_can_write(Fixture *fx, gconstpointer data)
{
    char *path = config_path(fx);
    char *fix = g_strdup_printf("run: chmod go-w %s", path);
    const char *text = "[hostup]\ntype = hostup\ntoken_file = h.token\n";

    (void)data;
    g_free(write_file(fx->dir, "h.token", "x\n", 0600));
    expect_error(fx, text, 0620, EACCES, "is writable by its group, who could", "(mode 0620)", fix,
                 NULL);
    expect_error(fx, text, 0646, EACCES, "is writable by others, who could", "(mode 0646)", fix,
                 NULL);
    g_free(fix);
    g_free(path);
}

static void test_unknown_key(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "[hostup]\ntype = hostup\ntoken = x\n\nrefrsh = 5\n", 0600, EINVAL,
                 ":5: [hostup] unknown key 'refrsh' (known keys for type "
                 "hostup: type, url, token, token_file, token_command, user, "
                 "timeout, max_resources, cacert, refresh, events_fields, rate_limit, "
                 "refresh_share, insecure_http)",
                 NULL);
    expect_error(fx, "[heo]\ntype = heo\ntoken = x\nvps = a\nvpss = b\n", 0600, EINVAL,
                 ":5: [heo] unknown key 'vpss'", "insecure_http, vps)", NULL);
}

static void test_unknown_type(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "[a]\ntoken = x\ntype = aws\n", 0600, EINVAL,
                 ":3: [a] type: unknown type 'aws'", "hostup, heo, deployhq", NULL);
    expect_error(fx, "[a]\ntoken = x\n", 0600, EINVAL, ":1: [a] missing required key 'type'", NULL);
}

static void test_missing_required(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "# x\n[dhq]\ntype = deployhq\nuser = u\ntoken = t\n", 0600, EINVAL,
                 ":2: [dhq] missing required key 'url' for type "
                 "deployhq",
                 NULL);
    expect_error(fx, "[dhq]\ntype = deployhq\nurl = https://a.b\ntoken = t\n", 0600, EINVAL,
                 ":1: [dhq] missing required key 'user'", NULL);
    expect_error(fx, "[heo]\ntype = heo\ntoken = t\n", 0600, EINVAL,
                 ":1: [heo] missing required key 'vps'", NULL);
}

static void test_url(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg =
        load_ok(fx, "[a]\ntype = hostup\ntoken = t\nurl = http://127.0.0.1:8080/prefix//\n");
    g_assert_cmpstr(account(cfg, 0)->url, ==, "http://127.0.0.1:8080/prefix");
    ifs_config_free(cfg);

    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = ftp://x\n", 0600, EINVAL,
                 ":4: [a] url: must start with http:// or https://", NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = https:///x\n", 0600, EINVAL,
                 "has no host", NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = https://u:pw@h\n", 0600, EINVAL,
                 "must not contain credentials", NULL);
}

/* Plain HTTP only to this machine, unless insecure_http = true says the
 * network is trusted (and then a warning says the key travels in clear). */
static void test_plain_http_only_to_loopback(Fixture *fx, gconstpointer data)
{
    const char *loopback[] = {"http://localhost:8080", "http://127.0.0.1", "http://127.9.9.9:1",
                              "http://[::1]:9/x", "HTTP://LOCALHOST"};
    IfsConfig *cfg;

    (void)data;
    for (gsize i = 0; i < G_N_ELEMENTS(loopback); i++) {
        char *text = g_strdup_printf("[a]\ntype = hostup\ntoken = t\nurl = %s\n", loopback[i]);

        if (g_str_has_prefix(loopback[i], "HTTP"))
            expect_error(fx, text, 0600, EINVAL, "must start with http:// or https://", NULL);
        else
            ifs_config_free(load_ok(fx, text));
        g_free(text);
    }
    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = http://192.0.2.1\n", 0600, EINVAL,
                 ":4: [a] url: is plain http:// to another machine", "set insecure_http = true",
                 NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = http://128.0.0.1\n", 0600, EINVAL,
                 "plain http:// to another machine", NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken = t\nurl = http://[::2]\n", 0600, EINVAL,
                 "plain http:// to another machine", NULL);
    expect_error(fx,
                 "[a]\ntype = hostup\ntoken = t\ninsecure_http = yes\n"
                 "url = http://192.0.2.1\n",
                 0600, EINVAL, ":4: [a] insecure_http: 'yes' is neither true nor false", NULL);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING,
                          "*[a] url http://192.0.2.1: plain HTTP to another machine*");
    cfg = load_ok(fx,
                  "[a]\ntype = hostup\ntoken = t\ninsecure_http = true\n"
                  "url = http://192.0.2.1\n");
    g_test_assert_expected_messages();
    g_assert_cmpstr(account(cfg, 0)->url, ==, "http://192.0.2.1");
    ifs_config_free(cfg);
}

static void test_duplicates(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "[a]\ntype = hostup\ntoken = x\ntype = heo\n", 0600, EINVAL,
                 ":4: [a] type: duplicate key (first set at line 2)", NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken = x\n[a]\n", 0600, EINVAL,
                 ":4: [a] duplicate section (first at line 1)", NULL);
}

/* Each of `bad` as the value of `key` in an otherwise good account [a] is
 * refused at line 4 with a message holding `want` (and `also`, if set). */
static void expect_bad_values(Fixture *fx, const char *key, const char *const *bad, gsize n,
                              const char *want, const char *also)
{
    for (gsize i = 0; i < n; i++) {
        char *text = g_strdup_printf("[a]\ntype = hostup\ntoken = x\n%s = %s\n", key, bad[i]);
        char *where = g_strdup_printf(":4: [a] %s: ", key);

        expect_error(fx, text, 0600, EINVAL, where, want, also, NULL);
        g_free(where);
        g_free(text);
    }
}

static void test_bad_refresh(Fixture *fx, gconstpointer data)
{
    (void)data;
    const char *bad[] = {"0", "-5", "abc", "60s", "+60", "99999999999"};
    expect_bad_values(fx, "refresh", bad, G_N_ELEMENTS(bad), "positive whole number of seconds",
                      NULL);
}

static void test_limits(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg = load_ok(fx,
                             "[a]\ntype = hostup\ntoken = x\ntimeout = 5\nmax_resources = 1000\n"
                             "[b]\ntype = hostup\ntoken = y\n");
    g_assert_cmpint(account(cfg, 0)->timeout_s, ==, 5);
    g_assert_cmpint(account(cfg, 0)->max_resources, ==, 1000);
    g_assert_cmpint(account(cfg, 1)->timeout_s, ==, -1);
    g_assert_cmpint(account(cfg, 1)->max_resources, ==, -1);
    ifs_config_free(cfg);

    const char *bad_timeout[] = {"0", "-1", "1.5", "3601", "30s", "+30"};
    expect_bad_values(fx, "timeout", bad_timeout, G_N_ELEMENTS(bad_timeout),
                      "whole number of seconds from 1 to 3600", NULL);
    const char *bad_max[] = {"0", "many", "10000001", "1e6"};
    expect_bad_values(fx, "max_resources", bad_max, G_N_ELEMENTS(bad_max),
                      "whole number from 1 to 10000000", NULL);
}

static void test_budget_keys(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg =
        load_ok(fx,
                "[a]\ntype = hostup\ntoken = x\nrate_limit = 600 / 60\nrefresh_share = 25%\n"
                "[b]\ntype = hostup\ntoken = y\nrefresh_share = 100\n"
                "[c]\ntype = hostup\ntoken = z\n");
    g_assert_cmpuint(account(cfg, 0)->rate_limit, ==, 600);
    g_assert_cmpuint(account(cfg, 0)->rate_window_s, ==, 60);
    g_assert_cmpuint(account(cfg, 0)->refresh_share, ==, 25);
    g_assert_cmpuint(account(cfg, 1)->rate_limit, ==, 0);
    g_assert_cmpuint(account(cfg, 1)->refresh_share, ==, 100);
    g_assert_cmpuint(account(cfg, 2)->refresh_share, ==, 0);
    ifs_config_free(cfg);

    const char *bad_rate[] = {"600",      "600/0", "0/60",      "x/60",
                              "600/60/1", "-1/60", "600/86401", "1000001/60"};
    expect_bad_values(fx, "rate_limit", bad_rate, G_N_ELEMENTS(bad_rate), "is not REQUESTS/SECONDS",
                      "rate_limit = 600/60");
    const char *bad_share[] = {"0", "101", "50%%", "half", "%", "-5"};
    expect_bad_values(fx, "refresh_share", bad_share, G_N_ELEMENTS(bad_share),
                      "is not a percentage from 1 to 100", NULL);
}

static void test_events_fields(Fixture *fx, gconstpointer data)
{
    (void)data;
    IfsConfig *cfg =
        load_ok(fx,
                "[a]\ntype = hostup\ntoken = x\nevents_fields = cpu_cores , location/city,tags\n"
                "[b]\ntype = hostup\ntoken = y\n");
    g_assert_cmpuint(g_strv_length(account(cfg, 0)->events_fields), ==, 3);
    g_assert_cmpstr(account(cfg, 0)->events_fields[0], ==, "cpu_cores");
    g_assert_cmpstr(account(cfg, 0)->events_fields[1], ==, "location/city");
    g_assert_cmpstr(account(cfg, 0)->events_fields[2], ==, "tags");
    g_assert_null(account(cfg, 1)->events_fields);
    ifs_config_free(cfg);

    const char *bad[] = {"a,,b", "../x", "a/../b", "/abs", "a/", ".", "x,y/"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *text = g_strdup_printf("[a]\ntype = hostup\ntoken = x\n"
                                     "events_fields = %s\n",
                                     bad[i]);
        expect_error(fx, text, 0600, EINVAL, ":4: [a] events_fields: ",
                     "write e.g. events_fields = cpu_cores, location/city", NULL);
        g_free(text);
    }
}

static void test_bad_section_name(Fixture *fx, gconstpointer data)
{
    (void)data;
    const char *bad[] = {"[a/b]", "[..]", "[.]", "[]", "[a b]", "[ä]"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *text = g_strdup_printf("# x\n%s\ntype = hostup\ntoken = x\n", bad[i]);
        expect_error(fx, text, 0600, EINVAL, ":2: invalid account name", "directory name", NULL);
        g_free(text);
    }
}

static void test_syntax_errors(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_error(fx, "type = hostup\n[a]\n", 0600, EINVAL, ":1: type: key outside any section",
                 NULL);
    expect_error(fx, "[a]\ntype = hostup\njust words\n", 0600, EINVAL, ":3: [a] malformed line",
                 NULL);
    expect_error(fx, "[a\ntype = hostup\n", 0600, EINVAL, ":1: malformed section header", NULL);
    expect_error(fx, "[a]\ntype = hostup\n = x\n", 0600, EINVAL, ":3: [a] malformed line", NULL);
    expect_error(fx, "[a]\ntype = hostup\ntoken =   # nothing\n", 0600, EINVAL,
                 ":3: [a] token: empty value", NULL);
}

static void test_empty_config(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *path = config_path(fx);
    char *msg = g_strdup_printf("no accounts configured in %s", path);
    expect_error(fx, "# nothing yet\n\n", 0600, EINVAL, msg, "man infrafs", NULL);
    g_free(msg);
    g_free(path);
}

static void test_missing_config(Fixture *fx, gconstpointer data)
{
    (void)data;
    char *path = g_build_filename(fx->dir, "nope", NULL);
    IfsError *err = NULL;
    g_assert_null(ifs_config_load(path, schemas, &err));
    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, "-o config=FILE"));
    ifs_error_free(err);
    g_free(path);
}

static void test_unreadable_config(Fixture *fx, gconstpointer data)
{
    (void)data;
    if (geteuid() == 0) {
        g_test_skip("root can read any file");
        return;
    }
    expect_error(fx, "[a]\ntype = hostup\ntoken = x\n", 0000, EACCES, "cannot open the config file",
                 NULL);
}

/* The path in cfg->path is absolute even when given relative. */
static void test_relative_config_path(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "config", "[a]\ntype = hostup\ntoken = x\n", 0600));
    char *cwd = g_get_current_dir();
    g_assert_cmpint(chdir(fx->dir), ==, 0);
    IfsError *err = NULL;
    IfsConfig *cfg = ifs_config_load("./config", schemas, &err);
    char *here = g_get_current_dir();
    g_assert_cmpint(chdir(cwd), ==, 0);
    g_assert_null(err);
    char *expected = g_build_filename(here, "config", NULL);
    g_assert_cmpstr(cfg->path, ==, expected);
    g_free(expected);
    g_free(here);
    g_free(cwd);
    ifs_config_free(cfg);
}

static void test_cacert(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "ca/sim.pem", "---\n", 0644));
    IfsConfig *cfg = load_ok(fx, "[a]\ntype = hostup\ntoken = x\ncacert = ca/sim.pem\n");
    char *expected = g_build_filename(fx->dir, "ca", "sim.pem", NULL);
    g_assert_cmpstr(account(cfg, 0)->cacert, ==, expected);
    g_free(expected);
    ifs_config_free(cfg);
    expect_error(fx, "[a]\ntype = hostup\ntoken = x\ncacert = missing.pem\n", 0600, ENOENT,
                 ":4: [a] cacert: cannot use", "missing.pem", NULL);
}

static void test_default_path(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("XDG_CONFIG_HOME", "/xdg", TRUE);
    char *path = ifs_config_default_path();
    g_assert_cmpstr(path, ==, "/xdg/infrafs/config");
    g_free(path);

    g_setenv("XDG_CONFIG_HOME", "relative/ignored", TRUE);
    g_setenv("HOME", fx->dir, TRUE);
    path = ifs_config_default_path();
    char *expected = g_build_filename(fx->dir, ".config/infrafs/config", NULL);
    g_assert_cmpstr(path, ==, expected);
    g_free(expected);
    g_free(path);

    g_unsetenv("XDG_CONFIG_HOME");
    g_unsetenv("HOME");
    char *home = passwd_home();
    path = ifs_config_default_path();
    expected = g_build_filename(home, ".config/infrafs/config", NULL);
    g_assert_cmpstr(path, ==, expected);
    g_free(expected);
    g_free(path);
    g_free(home);
}

/* ------------------------------------------------------------------ */
/* Issue 10: control characters in secrets, secrets in the environment */

/* What the message must not show: the secret's own characters. */
#define SECRET_PART "S3CRETPART"

static void expect_secret_error(Fixture *fx, const char *text, ...) G_GNUC_NULL_TERMINATED;

/* As expect_error (EINVAL), and the secret is not in the message. */
static void expect_secret_error(Fixture *fx, const char *text, ...)
{
    IfsError *err = NULL;
    g_assert_null(load_text(fx, text, 0600, &err));
    g_assert_nonnull(err);
    g_test_message("error: %s", err->message);
    g_assert_cmpint(err->errnum, ==, EINVAL);
    g_assert_null(strstr(err->message, SECRET_PART));
    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *));)
        if (!strstr(err->message, want))
            g_error("expected \"%s\" in \"%s\"", want, err->message);
    va_end(ap);
    ifs_error_free(err);
}

static void test_control_char_in_inline_token(Fixture *fx, gconstpointer data)
{
    (void)data;
    /* What the fuzzer found, quoted and not. */
    expect_secret_error(fx, "[hostup]\ntype = hostup\ntoken = \"x \x03" SECRET_PART "\"\n",
                        ":3: [hostup] token: ", "control character (byte 0x03)", "remove it", NULL);
    expect_secret_error(fx, "[hostup]\ntype = hostup\ntoken = a\x1b" SECRET_PART "\n",
                        ":3: [hostup] token: ", "byte 0x1B", NULL);
    expect_secret_error(fx, "[hostup]\ntype = hostup\ntoken = a\t" SECRET_PART "\n",
                        ":3: [hostup] token: ", "byte 0x09", NULL);
    expect_secret_error(fx, "[hostup]\ntype = hostup\ntoken = a\x7f" SECRET_PART "\n",
                        ":3: [hostup] token: ", "byte 0x7F", NULL);
}

static void test_control_char_in_token_file(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_free(write_file(fx->dir, "t", "tok\x07" SECRET_PART "\n", 0600));
    expect_secret_error(fx, "[hostup]\ntype = hostup\ntoken_file = t\n",
                        ":3: [hostup] token_file: ", "byte 0x07", "remove it", NULL);
    /* The trailing newline of a file is still no part of the secret. */
    g_free(write_file(fx->dir, "t", SECRET_PART "\r\n", 0600));
    IfsConfig *cfg = load_ok(fx, "[hostup]\ntype = hostup\ntoken_file = t\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, SECRET_PART);
    ifs_config_free(cfg);
}

static void test_control_char_in_token_command(Fixture *fx, gconstpointer data)
{
    (void)data;
    expect_secret_error(fx,
                        "[heo]\ntype = heo\nvps = v\n"
                        "token_command = printf 'a\\033" SECRET_PART "\\n'\n",
                        ":4: [heo] token_command: ",
                        "printed a control character "
                        "(byte 0x1B)",
                        NULL);
    IfsConfig *cfg = load_ok(fx,
                             "[heo]\ntype = heo\nvps = v\n"
                             "token_command = printf '" SECRET_PART "\\n'\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, SECRET_PART);
    ifs_config_free(cfg);
}

static void test_control_char_in_env_token(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("INFRAFS_HOSTUP_TOKEN", "a\x03" SECRET_PART, TRUE);
    expect_secret_error(fx, "# x\n[hostup]\ntype = hostup\n", ":2: [hostup] ",
                        "INFRAFS_HOSTUP_TOKEN", "control character (byte 0x03)", NULL);
}

/* A token_command is another program: it must not see any account's
 * secret from the environment (issue 10 found them passed on). */
static void test_token_command_sees_no_env_secret(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_setenv("INFRAFS_HOSTUP_TOKEN", "env-" SECRET_PART, TRUE);
    g_setenv("INFRAFS_OTHER_TOKEN", "other-" SECRET_PART, TRUE);
    g_setenv("INFRAFS_NOT_A_SECRET", "kept", TRUE);
    IfsConfig *cfg = load_ok(fx,
                             "[hostup]\ntype = hostup\n"
                             "[heo]\ntype = heo\nvps = v\n"
                             "token_command = env > env.out; echo cmd-secret\n");
    g_assert_cmpstr(account(cfg, 0)->secret, ==, "env-" SECRET_PART);
    g_assert_cmpstr(account(cfg, 1)->secret, ==, "cmd-secret");
    ifs_config_free(cfg);

    char *path = g_build_filename(fx->dir, "env.out", NULL);
    char *seen = NULL;
    g_assert_true(g_file_get_contents(path, &seen, NULL, NULL));
    g_assert_nonnull(strstr(seen, "INFRAFS_NOT_A_SECRET=kept\n"));
    g_assert_null(strstr(seen, SECRET_PART));
    g_assert_null(strstr(seen, "_TOKEN="));
    g_free(seen);
    g_free(path);
}

static void test_forget_env_secrets(Fixture *fx, gconstpointer data)
{
    (void)data;
    (void)fx;
    g_setenv("INFRAFS_HOSTUP_TOKEN", "env-" SECRET_PART, TRUE);
    g_setenv("INFRAFS_OTHER_TOKEN", "other-" SECRET_PART, TRUE);
    g_setenv("INFRAFS_NOT_A_SECRET", "kept", TRUE);
    ifs_config_forget_env_secrets();
    g_assert_null(g_getenv("INFRAFS_HOSTUP_TOKEN"));
    g_assert_null(g_getenv("INFRAFS_OTHER_TOKEN"));
    g_assert_cmpstr(g_getenv("INFRAFS_NOT_A_SECRET"), ==, "kept");
    for (char **e = environ; *e; e++)
        g_assert_null(strstr(*e, SECRET_PART));
}

#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/config/documented-example", test_documented_example);
    ADD("/config/inline-token-and-comments", test_inline_token);
    ADD("/config/quoted-value", test_quoted_value);
    ADD("/config/token-file", test_token_file);
    ADD("/config/token-file-relative", test_token_file_relative);
    ADD("/config/read-secret-again", test_read_secret_again);
    ADD("/config/tilde-without-home", test_tilde_without_home);
    ADD("/config/tilde-with-home", test_tilde_with_home);
    ADD("/config/token-command", test_token_command);
    ADD("/config/token-command-fails", test_token_command_fails);
    ADD("/config/token-command-empty", test_token_command_empty);
    ADD("/config/token-command-timeout", test_token_command_timeout);
    ADD("/config/env-token", test_env_token);
    g_test_add_func("/config/env-name", test_env_name);
    ADD("/config/two-secrets", test_two_secrets);
    ADD("/config/no-secret", test_no_secret);
    ADD("/config/inline-token-open-config", test_inline_token_in_open_config);
    ADD("/config/open-token-file", test_open_token_file);
    ADD("/config/open-config-without-token", test_open_config_without_token);
    ADD("/config/config-others-can-write", test_config_others_can_write);
    ADD("/config/unknown-key", test_unknown_key);
    ADD("/config/unknown-type", test_unknown_type);
    ADD("/config/missing-required", test_missing_required);
    ADD("/config/url", test_url);
    ADD("/config/duplicates", test_duplicates);
    ADD("/config/bad-refresh", test_bad_refresh);
    ADD("/config/limits", test_limits);
    ADD("/config/plain-http-only-to-loopback", test_plain_http_only_to_loopback);
    ADD("/config/budget-keys", test_budget_keys);
    ADD("/config/events-fields", test_events_fields);
    ADD("/config/bad-section-name", test_bad_section_name);
    ADD("/config/syntax-errors", test_syntax_errors);
    ADD("/config/empty-config", test_empty_config);
    ADD("/config/missing-config", test_missing_config);
    ADD("/config/unreadable-config", test_unreadable_config);
    ADD("/config/relative-config-path", test_relative_config_path);
    ADD("/config/cacert", test_cacert);
    ADD("/config/default-path", test_default_path);
    ADD("/config/control-char-in-inline-token", test_control_char_in_inline_token);
    ADD("/config/control-char-in-token-file", test_control_char_in_token_file);
    ADD("/config/control-char-in-token-command", test_control_char_in_token_command);
    ADD("/config/control-char-in-env-token", test_control_char_in_env_token);
    ADD("/config/token-command-sees-no-env-secret", test_token_command_sees_no_env_secret);
    ADD("/config/forget-env-secrets", test_forget_env_secrets);
    return g_test_run();
}
