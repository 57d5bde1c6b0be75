/* infrafs's own -o options; see options.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "infrafs/config.h"
#include "infrafs/linelog.h"
#include "infrafs/log.h"
#include "options.h"

enum { KEY_HELP, KEY_VERSION, KEY_CHECK, KEY_ALLOW_OTHER };

/* An option that takes a value, and a flag that sets its field to 1. */
#define IFS_OPT(template, field)                                                                   \
    {                                                                                              \
        template, offsetof(Options, field), 0                                                      \
    }
#define IFS_FLAG(name, field)                                                                      \
    {                                                                                              \
        name, offsetof(Options, field), 1                                                          \
    }

static const struct fuse_opt option_spec[] = {
    IFS_OPT("config=%s", config),
    IFS_OPT("cache_dir=%s", cache_dir),
    IFS_FLAG("offline", offline),
    IFS_OPT("refresh=%d", refresh),
    IFS_OPT("startup_timeout=%d", startup_timeout),
    IFS_FLAG("dumpable", dumpable),
    IFS_OPT("uid=%s", uid),
    IFS_OPT("gid=%s", gid),
    IFS_OPT("umask=%s", umask),
    IFS_OPT("control_group=%s", control_group),
    IFS_OPT("log_level=%s", log_level),
    IFS_OPT("actions_max=%s", actions_max),
    IFS_OPT("events_max=%s", events_max),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("--check", KEY_CHECK),
    /* Options only /etc/fstab and mount(8) care about. */
    FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
    FUSE_OPT_END,
};

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    Options *o = data;

    (void)outargs;
    switch (key) {
    case KEY_HELP:
        o->show_help = 1;
        return 0;
    case KEY_VERSION:
        o->show_version = 1;
        return 0;
    case KEY_CHECK:
        o->check = 1;
        return 0;
    case KEY_ALLOW_OTHER:
        o->allow_other = 1;
        return 1; /* libfuse needs it too */
    case FUSE_OPT_KEY_NONOPT:
        g_ptr_array_add(o->positionals, g_strdup(arg));
        return 0;
    case FUSE_OPT_KEY_OPT:
        return strncmp(arg, "x-", 2) == 0 ? 0 : 1; /* x-systemd.* and friends */
    default:
        return 1;
    }
}

/* A user or group given by name or number; a number need not have an
 * entry (as for chown). */
static gboolean resolve_id(const char *opt, const char *text, gboolean is_group, guint *out)
{
    guint64 n;

    if (ifs_whole_number(text, 0, G_MAXUINT32 - 1, &n)) {
        *out = (guint)n;
        return TRUE;
    }
    struct group *gr = is_group ? getgrnam(text) : NULL;
    struct passwd *pw = is_group ? NULL : getpwnam(text);
    const char *what = is_group ? "group" : "user";

    if (gr || pw) {
        *out = gr ? gr->gr_gid : pw->pw_uid;
        return TRUE;
    }
    fprintf(stderr, "infrafs: %s=%s: no such %s; give a %s name or a number (see getent %s)\n", opt,
            text, what, what, is_group ? "group" : "passwd");
    return FALSE;
}

/* uid=, gid=, umask= and control_group= into o->owner; by default the tree
 * is the mounting user's, with modes as they are. */
static gboolean resolve_owner(Options *o)
{
    guint id;
    guint64 mask;

    o->owner.uid = getuid();
    o->owner.gid = getgid();
    if (o->uid) {
        if (!resolve_id("uid", o->uid, FALSE, &id))
            return FALSE;
        o->owner.uid = id;
    }
    if (o->gid) {
        if (!resolve_id("gid", o->gid, TRUE, &id))
            return FALSE;
        o->owner.gid = id;
    }
    if (o->control_group) {
        if (!resolve_id("control_group", o->control_group, TRUE, &id))
            return FALSE;
        o->owner.control_group = TRUE;
        o->owner.control_gid = id;
    }
    if (o->umask) {
        char *end = NULL;

        errno = 0;
        mask = g_ascii_strtoull(o->umask, &end, 8);
        if (!*o->umask || *end || errno || mask > 0777 || *o->umask == '-' || *o->umask == '+') {
            fprintf(stderr,
                    "infrafs: umask=%s: give octal digits from 000 to 777, e.g. "
                    "umask=027\n",
                    o->umask);
            return FALSE;
        }
        o->owner.umask = (mode_t)mask;
    }
    return TRUE;
}

/* actions_max=, events_max=: bytes, or with a K or M suffix (of 1024). */
static gboolean parse_log_max(const char *option, const char *text, gsize *out)
{
    guint64 n = 0, unit = 1;
    size_t len = strlen(text);
    char *digits;

    if (len > 0 && strchr("kKmM", text[len - 1])) {
        unit = g_ascii_tolower(text[len - 1]) == 'k' ? 1024 : 1024 * 1024;
        len--;
    }
    digits = g_strndup(text, len);
    if (!ifs_whole_number(digits, 1, G_MAXUINT32, &n) || n * unit < IFS_LINE_LOG_MIN_MAX ||
        n * unit > G_MAXUINT32) {
        g_free(digits);
        fprintf(stderr,
                "infrafs: %s=%s: give the log's size in bytes, from %zu to 4G, "
                "e.g. %s=4M\n",
                option, text, (size_t)IFS_LINE_LOG_MIN_MAX, option);
        return FALSE;
    }
    g_free(digits);
    *out = (gsize)(n * unit);
    return TRUE;
}

char *options_config_path(const Options *o, const char *source)
{
    if (o->config)
        return g_strdup(o->config);
    if (source && strcmp(source, "infrafs") != 0)
        return g_strdup(source);
    return ifs_config_default_path();
}

gboolean options_parse(struct fuse_args *args, Options *o)
{
    memset(o, 0, sizeof *o);
    o->startup_timeout = DEFAULT_STARTUP_TIMEOUT_S;
    o->positionals = g_ptr_array_new_with_free_func(g_free);
    return fuse_opt_parse(args, o, option_spec, option_proc) == 0;
}

gboolean options_check(Options *o)
{
    if (o->refresh < 0 || o->startup_timeout < 0) {
        fprintf(stderr, "infrafs: refresh= and startup_timeout= take seconds >= 0\n");
        return FALSE;
    }
    if (!resolve_owner(o))
        return FALSE;
    if (o->actions_max && !parse_log_max("actions_max", o->actions_max, &o->actions_max_bytes))
        return FALSE;
    if (o->events_max && !parse_log_max("events_max", o->events_max, &o->events_max_bytes))
        return FALSE;
    if (o->log_level && !ifs_log_level_valid(o->log_level)) {
        fprintf(stderr,
                "infrafs: log_level=%s: give one of error, warning, notice, info, "
                "debug\n",
                o->log_level);
        return FALSE;
    }
    return TRUE;
}

void options_clear(Options *o)
{
    free(o->cache_dir);
    free(o->config);
    free(o->uid);
    free(o->gid);
    free(o->umask);
    free(o->control_group);
    free(o->log_level);
    free(o->actions_max);
    free(o->events_max);
    if (o->positionals)
        g_ptr_array_free(o->positionals, TRUE);
    memset(o, 0, sizeof *o);
}

void options_print_usage(const char *prog)
{
    printf(
        "usage: %s [-o OPTION[,OPTION...]] [SOURCE] MOUNTPOINT\n"
        "\n"
        "Shows your hosted infrastructure as files.\n"
        "SOURCE names the configuration file (\"infrafs\" means the default).\n"
        "\n"
        "infrafs options:\n"
        "    -o config=FILE          configuration file\n"
        "                            ($XDG_CONFIG_HOME/infrafs/config or ~/.config/infrafs/config)\n"
        "    -o refresh=SECONDS      refresh interval for accounts without `refresh` (%d)\n"
        "    -o cache_dir=DIR        where each account's last good data is kept\n"
        "                            ($XDG_CACHE_HOME/infrafs or ~/.cache/infrafs)\n"
        "    -o offline              serve the kept data only; send no request\n"
        "    -o startup_timeout=SECONDS\n"
        "                            longest wait for the first refresh before the\n"
        "                            command returns (%d)\n"
        "    -o dumpable             for debugging: allow core dumps and debuggers\n"
        "                            (off by default: they would show the secrets)\n"
        "    -o uid=USER, -o gid=GROUP\n"
        "                            owner of every file (the mounting user's)\n"
        "    -o umask=OOO            taken off every mode (000): directories 0555,\n"
        "                            files 0444, control files 0644\n"
        "    -o control_group=GROUP  control files 0664 and of this group, so that its\n"
        "                            members can act (with allow_other)\n"
        "    -o log_level=LEVEL      least severe messages logged: error, warning,\n"
        "                            notice, info (default) or debug\n"
        "    -o actions_max=SIZE     size at which the action log (/actions, kept in\n"
        "                            cache_dir/actions.log) starts over, keeping the\n"
        "                            previous one as actions.log.1 (1M)\n"
        "    -o events_max=SIZE      the same for the change stream (/events,\n"
        "                            /events.ndjson; events.log, events.ndjson) (1M)\n"
        "    -h, --help              print this help\n"
        "    -V, --version           print the version\n"
        "    --check [CONFIG]        try every account's url and secret with one\n"
        "                            request each, say what is wrong, mount nothing\n"
        "\n"
        "fstab-only options (auto, noauto, user, nouser, users, _netdev, nofail, x-*)\n"
        "are accepted and ignored.\n"
        "\n"
        "With -o allow_other, infrafs adds -o default_permissions itself: the kernel\n"
        "then checks the modes, so only the owner (and control_group) can write\n"
        "control files.\n"
        "\n",
        prog, DEFAULT_REFRESH_S, DEFAULT_STARTUP_TIMEOUT_S);
    printf("FUSE options:\n");
    fuse_cmdline_help();
    fuse_lowlevel_help();
}
