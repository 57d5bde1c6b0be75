/* infrafs: positional arguments, configuration, daemonizing and the FUSE loop
 * (the -o options are options.c's).
 *
 * Without -f the process forks before anything else starts threads; the
 * child mounts, runs the first refresh (bounded) and reports over a pipe;
 * the parent prints the outcome and exits 0 or 1 (doc/SEMANTICS.md §1.1, §1.2). */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <fuse_opt.h>
#include <systemd/sd-daemon.h>

#include "infrafs/config.h"
#include "infrafs/fs.h"
#include "infrafs/http.h"
#include "infrafs/linelog.h"
#include "infrafs/log.h"
#include "check.h"
#include "options.h"
#include "startup.h"
#include "infrafs/persist.h"
#include "infrafs/provider.h"
#include "infrafs/store.h"

#define MIN_WORKER_THREADS 64

/* ---- infrafs --check ------------------------------------------------------- */

/* `infrafs --check [CONFIG]`: the config read and every secret resolved,
 * then one cheap request per account; mounts nothing. 0 only if every
 * account is ok. */
static int check_config(Options *o)
{
    const char *source = o->positionals->len ? g_ptr_array_index(o->positionals, 0) : NULL;
    char *path;
    int status;

    /* Before the config is read, which may run token_commands. */
    if (o->positionals->len > 1) {
        fprintf(stderr, "infrafs: --check takes one argument, the config file\n");
        return 1;
    }
    path = options_config_path(o, source);
    status = check_accounts(path);
    g_free(path);
    return status;
}

/* libfuse names an option it does not know only when the session is made,
 * which is after the config is read: a typo such as `-o confg=FILE` would
 * be reported as a missing default config. A session made and dropped at
 * once, from a copy of what is left for libfuse, names it first (on
 * stderr, as "fuse: unknown option(s): ..."). */
static gboolean fuse_accepts_options(const struct fuse_args *args)
{
    struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
    struct fuse_lowlevel_ops no_ops;
    struct fuse_session *se = NULL;
    gboolean copied = TRUE;

    memset(&no_ops, 0, sizeof no_ops);
    for (int i = 0; i < args->argc && copied; i++)
        copied = fuse_opt_add_arg(&copy, args->argv[i]) == 0;
    if (copied)
        se = fuse_session_new(&copy, &no_ops, sizeof no_ops, NULL);
    fuse_opt_free_args(&copy);
    if (!se)
        return FALSE;
    fuse_session_destroy(se);
    return TRUE;
}

/* ---- session end ------------------------------------------------------------ */

/* libfuse joins its worker threads before fuse_session_loop_mt returns, and
 * a worker blocked in a control write (an API that does not answer, a
 * refresh it waits for) would hold up the unmount until HTTP timeouts run
 * out. This thread notices the session's end (unmount, SIGTERM) and tells
 * the store to abandon everything at once. */
typedef struct {
    struct fuse_session *se;
    IfsStore *store;
} ExitWatch;

static gpointer exit_watch_main(gpointer data)
{
    ExitWatch *w = data;

    while (!fuse_session_exited(w->se))
        g_usleep(250 * 1000);
    ifs_store_shutdown(w->store);
    return NULL;
}

/* ---- SIGHUP: refresh everything ------------------------------------------------ */

static int hup_pipe[2] = {-1, -1};

static void on_sighup(int sig)
{
    char c = 'h';
    int saved = errno;

    (void)sig;
    if (write(hup_pipe[1], &c, 1) < 0) {
        /* nothing to do in a signal handler */
    }
    errno = saved;
}

static gpointer hup_main(gpointer data)
{
    IfsStore *store = data;
    char c;

    while (read(hup_pipe[0], &c, 1) == 1 && c == 'h') {
        g_message("SIGHUP: refreshing every account");
        ifs_store_refresh_all(store);
    }
    return NULL;
}

static void install_sighup(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
}

/* ---- main -------------------------------------------------------------------- */

/* A directory on another device than its parent is already a mount point
 * (the root directory excepted). */
static gboolean is_mount_point(const char *dir, const struct stat *st)
{
    char *parent = g_build_filename(dir, "..", NULL);
    struct stat pst;
    gboolean mounted =
        stat(parent, &pst) == 0 && (pst.st_dev != st->st_dev) && strcmp(dir, "/") != 0;

    g_free(parent);
    return mounted;
}

static char *absolute_mountpoint(const char *path, IfsError **err)
{
    char resolved[PATH_MAX];
    struct stat st;

    if (!realpath(path, resolved) || stat(resolved, &st) != 0) {
        int e = errno;
        ifs_error_propagate(
            err,
            ifs_error_new(e, 0, NULL, "mountpoint %s: %s; %s", path, g_strerror(e),
                          e == ENOTCONN ? "a dead mount is left there: run fusermount3 -uz on it"
                                        : "create it with mkdir -p, or check the path"));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        ifs_error_propagate(
            err, ifs_error_new(ENOTDIR, 0, NULL, "mountpoint %s is not a directory", path));
        return NULL;
    }
    if (is_mount_point(resolved, &st)) {
        ifs_error_propagate(
            err,
            ifs_error_new(
                EBUSY, 0, NULL,
                "mountpoint %s is busy: something is already mounted there; unmount it first "
                "(fusermount3 -u %s)",
                resolved, resolved));
        return NULL;
    }
    return g_strdup(resolved);
}

static void add_mount_options(struct fuse_args *args, const char *config_path, gboolean allow_other)
{
    char *opts = NULL;

    fuse_opt_add_opt(&opts, "subtype=infrafs");
    fuse_opt_add_opt(&opts, "noatime");
    /* infrafs does not check who writes a control file: with other users
     * let in, the kernel must enforce the modes (0644: owner only). */
    if (allow_other)
        fuse_opt_add_opt(&opts, "default_permissions");
    {
        char *fsname = g_strconcat("fsname=", config_path, NULL);
        fuse_opt_add_opt_escaped(&opts, fsname);
        g_free(fsname);
    }
    fuse_opt_add_arg(args, "-o");
    fuse_opt_add_arg(args, opts);
    free(opts);
}

static int run_mounted(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
    struct fuse_loop_config *loop;
    int rc;

    if (cmd->singlethread)
        return fuse_session_loop(se);
    loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(loop, (unsigned)cmd->clone_fd);
    /* Blocking reads (operation/wait) must never starve `ls`. */
    fuse_loop_cfg_set_max_threads(loop, MAX(cmd->max_threads, MIN_WORKER_THREADS));
    if (cmd->max_idle_threads != UINT_MAX)
        fuse_loop_cfg_set_idle_threads(loop, cmd->max_idle_threads);
    rc = fuse_session_loop_mt(se, loop);
    fuse_loop_cfg_destroy(loop);
    return rc;
}

static int serve(IfsConfig *config, struct fuse_args *args, struct fuse_cmdline_opts *cmd,
                 const char *mountpoint, const Options *o, const char *cache_dir)
{
    IfsStoreOptions sopts = {
        .refresh_s = o->refresh > 0 ? o->refresh : DEFAULT_REFRESH_S,
        .cache_dir = cache_dir,
        .offline = o->offline,
        .actions_max = o->actions_max_bytes,
        .events_max = o->events_max_bytes,
    };
    IfsStore *store = ifs_store_new(&sopts);
    IfsFs *fs;
    struct fuse_session *se;
    Startup startup = {store, (char *)mountpoint, o->startup_timeout, cmd->foreground};
    GThread *startup_thread, *hup_thread, *exit_thread;
    ExitWatch exit_watch;
    int rc = 1;

    for (guint i = 0; i < config->accounts->len; i++) {
        IfsError *err = NULL;
        if (!ifs_store_add_account(store, g_ptr_array_index(config->accounts, i), &err)) {
            startup_report(FALSE, "%s", err->message);
            ifs_error_free(err);
            ifs_store_free(store);
            return 1;
        }
    }
    fs = ifs_fs_new(store, &o->owner);
    se = fuse_session_new(args, ifs_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
    if (!se) {
        startup_report(FALSE, "cannot start a FUSE session (bad FUSE option?); see infrafs --help");
        goto out_store;
    }
    if (fuse_set_signal_handlers(se) != 0) {
        startup_report(FALSE, "cannot install signal handlers");
        goto out_session;
    }
    if (pipe(hup_pipe) != 0) {
        startup_report(FALSE, "cannot create a pipe: %s", g_strerror(errno));
        goto out_signals;
    }
    install_sighup();
    ifs_fs_attach(fs, se, mountpoint);
    if (fuse_session_mount(se, mountpoint) != 0) {
        startup_report(FALSE,
                       "cannot mount on %s (is it busy, or already mounted? is /dev/fuse "
                       "usable?)",
                       mountpoint);
        goto out_pipe;
    }
    ifs_store_start(store);
    hup_thread = g_thread_new("sighup", hup_main, store);
    startup_thread = g_thread_new("startup", startup_main, &startup);
    exit_watch = (ExitWatch){se, store};
    exit_thread = g_thread_new("exit-watch", exit_watch_main, &exit_watch);
    rc = run_mounted(se, cmd);
    sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
    /* SIGTERM and Ctrl-C ask for the stop that just happened cleanly. */
    rc = rc == 0 || rc == SIGTERM || rc == SIGINT ? 0 : 1;
    fuse_session_exit(se); /* (already so, unless the loop failed) */
    g_thread_join(exit_thread);
    g_thread_join(startup_thread);
    ifs_store_stop(store);
    ifs_fs_detach(fs);
    fuse_session_unmount(se);
    close(hup_pipe[1]);
    g_thread_join(hup_thread);
    close(hup_pipe[0]);
    goto out_signals;
out_pipe:
    close(hup_pipe[0]);
    close(hup_pipe[1]);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_store:
    ifs_store_free(store);
    ifs_fs_free(fs);
    return rc;
}

/* Called as /sbin/mount.infrafs or mount.fuse.infrafs, mount(8) passes
 * SOURCE DIR [-s] [-f] [-n] [-v] -o OPTS, where those flags mean sloppy,
 * fake, no mtab and verbose, not libfuse's single-threaded and foreground.
 * Drop them before libfuse sees them; report whether a fake mount was asked. */
static int strip_mount_helper_flags(int argc, char *argv[], gboolean *fake)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int kept = 1;

    *fake = FALSE;
    if (!g_str_has_prefix(name, "mount."))
        return argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0)
            *fake = TRUE;
        else if (strcmp(argv[i], "-s") != 0 && strcmp(argv[i], "-n") != 0 &&
                 strcmp(argv[i], "-v") != 0)
            argv[kept++] = argv[i];
    }
    argv[kept] = NULL;
    return kept;
}

int main(int argc, char *argv[])
{
    gboolean fake_mount;
    int helper_argc = strip_mount_helper_flags(argc, argv, &fake_mount);
    struct fuse_args args = FUSE_ARGS_INIT(helper_argc, argv);
    struct fuse_cmdline_opts cmd;
    Options o;
    const char *source = NULL, *mount_arg = NULL;
    char *config_path = NULL, *mountpoint = NULL, *cache_dir = NULL;
    IfsConfig *config = NULL;
    IfsError *err = NULL;
    int rc = 1;

    /* Few malloc arenas. With glibc's default (one per thread, up to 8 per
     * core) what a refresh frees lies scattered over the arenas of the
     * threads that allocated it, and RSS creeps up as resources come and
     * go (about 900 bytes per churned resource, against 100 with two). */
    mallopt(M_ARENA_MAX, 2);
    memset(&cmd, 0, sizeof cmd);
    if (!options_parse(&args, &o))
        goto out;
    if (o.show_help) {
        options_print_usage(argv[0]);
        rc = 0;
        goto out;
    }
    if (o.show_version) {
        printf("infrafs version %s\n", INFRAFS_VERSION);
        /* Ours first: libfuse's lines come partly from fusermount3, a
         * process of its own, which writes before our buffer would. */
        fflush(stdout);
        fuse_lowlevel_version();
        rc = 0;
        goto out;
    }
    if (o.check) {
        rc = check_config(&o);
        goto out;
    }
    if (fuse_parse_cmdline(&args, &cmd) != 0)
        goto out;
    if (!fuse_accepts_options(&args)) {
        fprintf(stderr, "infrafs: see %s --help for the options\n", argv[0]);
        goto out;
    }
    if (o.positionals->len == 1) {
        mount_arg = g_ptr_array_index(o.positionals, 0);
    } else if (o.positionals->len == 2) {
        source = g_ptr_array_index(o.positionals, 0);
        mount_arg = g_ptr_array_index(o.positionals, 1);
    } else {
        fprintf(stderr,
                "infrafs: %s\nusage: %s [-o OPTION[,OPTION...]] [SOURCE] MOUNTPOINT "
                "(see --help)\n",
                o.positionals->len ? "too many arguments" : "no mountpoint given", argv[0]);
        goto out;
    }
    if (!options_check(&o))
        goto out;
    /* Before any secret is read: a core file of this process would hold
     * every account's key, and so would the memory a debugger or another
     * process of the same user can read. Not dumpable, only root can. */
    if (!o.dumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr,
                "infrafs: warning: cannot turn off core dumps (%s); a core file "
                "of infrafs would hold the accounts' secrets\n",
                g_strerror(errno));
    /* Absolute paths before daemonizing: the daemon runs from /. */
    mountpoint = absolute_mountpoint(mount_arg, &err);
    config_path = options_config_path(&o, source);
    cache_dir = o.cache_dir && *o.cache_dir ? g_canonicalize_filename(o.cache_dir, NULL)
                                            : ifs_cache_default_dir();
    if (mountpoint)
        config = ifs_config_load(config_path, ifs_provider_schemas(), &err);
    /* Read now (or never to be): out of /proc/PID/environ and children. */
    ifs_config_forget_env_secrets();
    if (!config) {
        fprintf(stderr, "infrafs: %s\n", err->message);
        goto out;
    }
    add_mount_options(&args, config->path, o.allow_other);
    if (fake_mount) { /* mount -f: everything checked, nothing mounted */
        rc = 0;
        goto out;
    }

    if (!cmd.foreground) {
        int fds[2];
        pid_t pid;

        if (pipe(fds) != 0 || (pid = fork()) < 0) {
            fprintf(stderr, "infrafs: cannot start the daemon: %s\n", g_strerror(errno));
            goto out;
        }
        if (pid > 0) {
            close(fds[1]);
            rc = startup_parent_wait(fds[0]);
            goto out;
        }
        close(fds[0]);
        startup_report_to(fds[1]);
        setsid();
        if (chdir("/") != 0) {
            /* the daemon only uses absolute paths */
        }
    }
    ifs_log_init(cmd.foreground, cmd.debug, o.log_level);
    rc = serve(config, &args, &cmd, mountpoint, &o, cache_dir);
    if (startup_reporting()) /* failed before reporting */
        startup_report(FALSE, "startup failed");
out:
    ifs_config_free(config);
    ifs_error_free(err);
    g_free(config_path);
    g_free(mountpoint);
    g_free(cache_dir);
    options_clear(&o);
    free(cmd.mountpoint);
    fuse_opt_free_args(&args);
    return rc;
}
