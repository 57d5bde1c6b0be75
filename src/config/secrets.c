/* An account's secret: inline in the config (whose mode is then
 * checked), a token_file (regular, private, at most SECRET_MAX_BYTES), a
 * token_command (a session of its own, a timeout, an output cap, no
 * descriptor but stdin /dev/null and two pipes, no other account's
 * secret in its environment) or the environment (removed from ours and
 * wiped). Every buffer that held a secret is wiped when freed. */
#include "config_private.h"

#include "infrafs/text.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET_MAX_BYTES (64 * 1024)
#define COMMAND_TIMEOUT_S 10
#define STDERR_EXCERPT_MAX 200

/* A file holding a secret must not be readable by group or others, nor
 * writable by others (who could swap in their own token). */
#define SECRET_FILE_EXPOSED (S_IRGRP | S_IROTH | S_IWOTH)

/* Secrets are wiped before their memory goes back to the allocator, so a
 * later heap dump or core file is less likely to carry them. */
void config_wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    g_free(s);
}

void config_wipe_gstring(GString *s)
{
    explicit_bzero(s->str, s->len);
    g_string_free(s, TRUE);
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

/* "PATH: WHAT (mode 0644); run: chmod FIX PATH", EACCES. */
static IfsError *mode_error(const char *path, const struct stat *st, const char *what,
                            const char *fix)
{
    char *word = config_shell_word(path);
    IfsError *err = ifs_error_new(EACCES, 0, NULL, "%s: %s (mode %04o); run: chmod %s %s", path,
                                  what, (unsigned)(st->st_mode & 07777), fix, word);

    g_free(word);
    return err;
}

/* doc/SEMANTICS.md §2.4: a config with an inline token must not be
 * readable by group or others, nor writable by others; whatever holds the
 * secrets, it must not be writable by group or others, who could choose
 * the url the keys go to and the token_command infrafs runs. Checked
 * before any account is validated, so the user learns of it first. */
gboolean config_check_mode(const char *path, const struct stat *st, GPtrArray *sections,
                           IfsError **err)
{
    for (guint i = 0; i < sections->len && (st->st_mode & SECRET_FILE_EXPOSED); i++) {
        const RawSection *sec = g_ptr_array_index(sections, i);
        const RawEntry *token = config_section_get(sec, "token");
        char *what;

        if (!token)
            continue;
        what = g_strdup_printf("holds a secret (token in [%s], line %d) but is %s", sec->name,
                               token->line, config_exposure(st->st_mode));
        ifs_error_propagate(err, mode_error(path, st, what, "600"));
        g_free(what);
        return FALSE;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        char *what = g_strdup_printf("is writable by %s, who could send the accounts' keys "
                                     "elsewhere or choose the token_command infrafs runs",
                                     (st->st_mode & S_IWOTH) ? "others" : "its group");

        ifs_error_propagate(err, mode_error(path, st, what, "go-w"));
        g_free(what);
        return FALSE;
    }
    return TRUE;
}

static IfsError *token_file_error(int errnum, const Loader *ld, const RawSection *sec,
                                  const RawEntry *e, const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static IfsError *token_file_error(int errnum, const Loader *ld, const RawSection *sec,
                                  const RawEntry *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    IfsError *err = config_error(errnum, ld->path, e->line, sec->name, e->key, "%s", what);
    g_free(what);
    return err;
}

/* Opens a token file and checks it may hold a secret; -1 on error.
 * O_NONBLOCK keeps a FIFO from hanging the open; it is refused below. */
static int open_token_file(const Loader *ld, const RawSection *sec, const RawEntry *e,
                           const char *path, IfsError **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int errnum = errno;
        ifs_error_propagate(err,
                            token_file_error(config_errnum_for_file(errnum), ld, sec, e,
                                             "cannot open %s: %s; create it or fix the path", path,
                                             g_strerror(errnum)));
        return -1;
    }
    struct stat st;
    IfsError *bad = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        bad = token_file_error(EINVAL, ld, sec, e,
                               "%s is not a regular file; "
                               "the secret must be in a file of its own",
                               path);
    } else if (st.st_mode & SECRET_FILE_EXPOSED) {
        char *fix = config_shell_word(path);
        bad = token_file_error(EACCES, ld, sec, e,
                               "%s holds a secret but is "
                               "%s (mode %04o); run: chmod 600 %s",
                               path, config_exposure(st.st_mode), (unsigned)(st.st_mode & 07777),
                               fix);
        g_free(fix);
    }
    if (!bad)
        return fd;
    close(fd);
    ifs_error_propagate(err, bad);
    return -1;
}

char *config_read_token_file(const Loader *ld, const RawSection *sec, const RawEntry *e,
                             char **path_out, IfsError **err)
{
    const char *problem = NULL;
    char *path = config_expand_path(ld, e->value, &problem);
    if (!path) {
        ifs_error_propagate(err, token_file_error(EINVAL, ld, sec, e, "%s", problem));
        return NULL;
    }
    int fd = open_token_file(ld, sec, e, path, err);
    if (fd < 0) {
        g_free(path);
        return NULL;
    }
    int errnum = 0;
    GString *text = config_read_fd(fd, SECRET_MAX_BYTES, &errnum);
    close(fd);
    char *secret = text ? g_strdup(g_strstrip(text->str)) : NULL;
    if (text)
        config_wipe_gstring(text);

    IfsError *bad = NULL;
    char *control = secret ? control_char_in(secret) : NULL;
    if (!secret)
        bad = token_file_error(config_errnum_for_file(errnum), ld, sec, e,
                               "cannot read %s: %s; it must hold only the secret", path,
                               errnum == EFBIG ? "larger than 64 KiB" : g_strerror(errnum));
    else if (!*secret)
        bad = token_file_error(EINVAL, ld, sec, e,
                               "%s is empty; put the "
                               "secret in it",
                               path);
    else if (control && strcmp(control, "a line break") == 0)
        bad = token_file_error(EINVAL, ld, sec, e,
                               "%s holds more than one "
                               "line; it must hold only the secret",
                               path);
    else if (control)
        bad = token_file_error(EINVAL, ld, sec, e,
                               "the secret in %s holds %s; "
                               "remove it, the file must hold only the secret "
                               "(printable characters on one line)",
                               path, control);
    g_free(control);
    if (bad) {
        ifs_error_propagate(err, bad);
        config_wipe_free(secret);
        g_free(path);
        return NULL;
    }
    *path_out = path;
    return secret;
}

/* token_command ------------------------------------------------------ */

typedef struct {
    GString *out; /* stdout: the secret */
    GString *err; /* stderr: for the error message */
    gboolean overflow; /* stdout exceeded SECRET_MAX_BYTES */
    gboolean timed_out;
    int status; /* as from waitpid(); 0 when it could not be known */
} CommandRun;

/* Reads what is available on `fd` into `buf` (beyond `max` bytes it is
 * drained and dropped). FALSE at end of file or on a hard error. */
static gboolean read_available(int fd, GString *buf, gsize max, gboolean *overflow)
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
static void collect_output(int out_fd, int err_fd, gint64 deadline, CommandRun *run)
{
    struct pollfd fds[2] = {
        {out_fd, POLLIN, 0},
        {err_fd, POLLIN, 0}
    };
    GString *bufs[2] = {run->out, run->err};
    gboolean overflow[2] = {FALSE, FALSE};

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
                !read_available(fds[i].fd, bufs[i], SECRET_MAX_BYTES, &overflow[i]))
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
    return name_len > strlen("INFRAFS__TOKEN") && g_str_has_prefix(entry, "INFRAFS_") &&
        strncmp(entry + name_len - strlen("_TOKEN"), "_TOKEN", strlen("_TOKEN")) == 0;
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
            config_wipe_free(env[i]);
        else
            env[kept++] = env[i];
    }
    env[kept] = NULL;
    return env;
}

/* Runs `command` with /bin/sh -c in `cwd`, stdin from /dev/null. Not
 * g_spawn_sync(): it has no timeout, and a hanging password manager must
 * not hang the mount. */
static gboolean run_command(const char *command, const char *cwd, CommandRun *run, GError **gerr)
{
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    char **envp = command_environment();
    GPid pid;
    int out_fd = -1, err_fd = -1;
    gboolean spawned =
        g_spawn_async_with_pipes(cwd, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CLOEXEC_PIPES,
                                 command_child_setup, NULL, &pid, NULL, &out_fd, &err_fd, gerr);
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
                                  "non-interactive or faster",
                                  COMMAND_TIMEOUT_S, excerpt);
    else if (WIFSIGNALED(run->status))
        problem = g_strdup_printf("killed by signal %d (%s); run it by hand "
                                  "to check it prints the secret",
                                  WTERMSIG(run->status), excerpt);
    else if (WIFEXITED(run->status) && WEXITSTATUS(run->status) != 0)
        problem = g_strdup_printf("exited with status %d (%s); run it by hand "
                                  "to check it prints the secret",
                                  WEXITSTATUS(run->status), excerpt);
    else if (run->overflow)
        problem = g_strdup("printed more than 64 KiB; it must print only the "
                           "secret");
    else if (!*secret)
        problem = g_strdup_printf("printed nothing on standard output (%s); it "
                                  "must print the secret",
                                  excerpt);
    else if ((control = control_char_in(secret)) && strcmp(control, "a line break") == 0)
        problem = g_strdup("printed more than one line; it must print only "
                           "the secret, e.g. append '| head -n 1'");
    else if (control)
        problem = g_strdup_printf("printed %s in the secret; it must print "
                                  "only the secret (printable characters on "
                                  "one line)",
                                  control);
    g_free(control);
    g_free(excerpt);
    return problem;
}

static char *run_token_command(const Loader *ld, const RawSection *sec, const RawEntry *e,
                               IfsError **err)
{
    CommandRun run = {g_string_new(NULL), g_string_new(NULL), FALSE, FALSE, 0};
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
    config_wipe_gstring(run.out);
    g_string_free(run.err, TRUE);
    if (!problem)
        return secret;
    ifs_error_propagate(
        err, config_error(EINVAL, ld->path, e->line, sec->name, "token_command", "%s", problem));
    g_free(problem);
    config_wipe_free(secret);
    return NULL;
}

char *ifs_account_read_secret(const IfsAccountConfig *acct, IfsError **err)
{
    Loader ld = {.path = acct->config_path};
    RawSection sec = {.name = acct->name, .line = acct->line};
    RawEntry e = {.value = acct->secret_key_value, .line = acct->secret_key_line};
    char *secret = NULL, *file_path = NULL;

    if (acct->secret_kind != IFS_SECRET_FILE && acct->secret_kind != IFS_SECRET_COMMAND)
        return g_strdup(acct->secret);
    g_return_val_if_fail(acct->config_path && acct->secret_key_value, NULL);
    ld.dir = g_path_get_dirname(acct->config_path);
    if (acct->secret_kind == IFS_SECRET_FILE) {
        e.key = "token_file";
        secret = config_read_token_file(&ld, &sec, &e, &file_path, err);
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
    config_wipe_free(secret);
}

/* Exactly one secret source per account (doc/SEMANTICS.md §2.3). An empty
 * environment variable counts as unset. */
static gboolean check_one_secret_source(const Loader *ld, const RawSection *sec,
                                        const char *env_name, gboolean env_set, IfsError **err)
{
    static const char *const keys[] = {"token", "token_file", "token_command", NULL};
    GString *found = g_string_new(NULL);
    int count = 0;
    for (const char *const *k = keys; *k; k++) {
        const RawEntry *e = config_section_get(sec, *k);
        if (e)
            g_string_append_printf(found, "%s%s (line %d)", count++ ? ", " : "", *k, e->line);
    }
    if (env_set)
        g_string_append_printf(found, "%senvironment variable %s", count++ ? ", " : "", env_name);
    if (count == 0)
        ifs_error_propagate(
            err,
            config_error(EINVAL, ld->path, sec->line, sec->name, NULL,
                         "no secret given; add token_file = PATH, "
                         "token_command = COMMAND or token = TOKEN (then chmod 600 the "
                         "config), or set %s",
                         env_name));
    else if (count > 1)
        ifs_error_propagate(err,
                            config_error(EINVAL, ld->path, sec->line, sec->name, NULL,
                                         "more than one secret given: %s; keep exactly "
                                         "one",
                                         found->str));
    g_string_free(found, TRUE);
    return count == 1;
}

/* Step 3: fills acct->secret and acct->secret_source. */
gboolean config_resolve_secret(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                               IfsError **err)
{
    char *env_name = ifs_config_env_name(sec->name);
    const char *env = g_getenv(env_name);
    gboolean env_set = env && *env;
    gboolean ok = check_one_secret_source(ld, sec, env_name, env_set, err);
    const RawEntry *token = config_section_get(sec, "token");
    const RawEntry *file = config_section_get(sec, "token_file");
    const RawEntry *command = config_section_get(sec, "token_command");
    char *file_path = NULL;
    char *control = NULL;

    if (!ok) {
        /* reported above */
    } else if (token && (control = control_char_in(token->value))) {
        ifs_error_propagate(
            err,
            config_error(EINVAL, ld->path, token->line, sec->name, "token",
                         "the secret holds %s; remove it (a secret is "
                         "printable characters on one line; check for a stray paste)",
                         control));
    } else if (token) {
        acct->secret = g_strdup(token->value);
        acct->secret_source = g_strdup_printf("token in %s:%d", ld->path, token->line);
        acct->secret_kind = IFS_SECRET_INLINE;
    } else if (file) {
        acct->secret = config_read_token_file(ld, sec, file, &file_path, err);
        if (acct->secret)
            acct->secret_source = g_strdup_printf("token_file %s", file_path);
        acct->secret_kind = IFS_SECRET_FILE;
        acct->secret_key_value = g_strdup(file->value);
        acct->secret_key_line = file->line;
    } else if (command) {
        acct->secret = run_token_command(ld, sec, command, err);
        if (acct->secret)
            acct->secret_source =
                g_strdup_printf("token_command at %s:%d", ld->path, command->line);
        acct->secret_kind = IFS_SECRET_COMMAND;
        acct->secret_key_value = g_strdup(command->value);
        acct->secret_key_line = command->line;
    } else if ((control = control_char_in(env))) {
        ifs_error_propagate(err,
                            config_error(EINVAL, ld->path, sec->line, sec->name, NULL,
                                         "environment variable %s holds %s; set it to "
                                         "the token alone (printable characters on one line)",
                                         env_name, control));
    } else {
        acct->secret = g_strdup(env);
        acct->secret_source = g_strdup_printf("environment variable %s", env_name);
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
