/* infrafs's command line (options.c): the -o options of its own, read
 * with libfuse's fuse_opt, checked, and explained by --help. What is left
 * (FUSE's own options, allow_other) goes on to libfuse. */
#pragma once
#include <fuse_opt.h>
#include <glib.h>

#include "infrafs/fs.h"

#define DEFAULT_REFRESH_S 60
#define DEFAULT_STARTUP_TIMEOUT_S 30

typedef struct {
    char *config;
    char *cache_dir;
    char *uid; /* uid=, gid=, umask=, control_group= as given */
    char *gid;
    char *umask;
    char *control_group;
    char *log_level;
    char *actions_max;
    gsize actions_max_bytes; /* what it says, 0 if not given */
    char *events_max;
    gsize events_max_bytes;
    IfsFsOwner owner; /* what they resolve to */
    int offline;
    int refresh;
    int startup_timeout;
    int show_help;
    int show_version;
    int check;
    int allow_other;
    int dumpable;
    GPtrArray *positionals;
} Options;

/* Takes infrafs's options out of `args` into `o` (zeroed, then given its
 * defaults here); FALSE after libfuse has said what is wrong. */
gboolean options_parse(struct fuse_args *args, Options *o);
/* Checks and resolves the values (owner, log sizes, log level); FALSE
 * after saying on stderr what is wrong and how to give it. */
gboolean options_check(Options *o);
/* The config file: -o config=, else a SOURCE other than "infrafs", else
 * the default path. */
char *options_config_path(const Options *o, const char *source);
void options_print_usage(const char *prog);
void options_clear(Options *o);
