/* Configuration file (doc/SEMANTICS.md §2): INI, one section per account. */
#pragma once
#include <glib.h>
#include "infrafs/error.h"

/* What config.c needs to know about each provider type, so that it can
 * validate keys without knowing the providers themselves. */
typedef struct {
    const char *type; /* "hostup" */
    const char *default_url; /* NULL: `url` is required */
    gboolean needs_user; /* `user` required (DeployHQ) */
    const char *const *extra_keys; /* NULL-terminated provider keys, e.g. "vps" */
    const char *const *required_keys; /* NULL-terminated subset of extra_keys */
} IfsAccountSchema;

typedef enum {
    IFS_SECRET_INLINE, /* token = ... in the config */
    IFS_SECRET_FILE, /* token_file */
    IFS_SECRET_COMMAND, /* token_command */
    IFS_SECRET_ENV, /* INFRAFS_<ACCOUNT>_TOKEN */
} IfsSecretKind;

typedef struct {
    char *name; /* section name = account name in the tree */
    char *type;
    char *url; /* origin without trailing '/'; default filled in */
    char *user; /* or NULL */
    char *secret; /* resolved secret; never logged */
    char *secret_source; /* "token in /path:12", "token_file /x", ... for messages */
    /* Where the secret was read, to read it again (ifs_account_read_secret):
     * the token_file or token_command key as written, its line, and the
     * config file it is in. */
    IfsSecretKind secret_kind;
    char *secret_key_value;
    int secret_key_line;
    char *config_path;
    char *cacert; /* absolute path or NULL */
    int refresh_s; /* -1: not set in the file */
    int timeout_s; /* longest HTTP request in seconds; -1: not set (30) */
    int max_resources; /* most resources a refresh may list; -1: not set */
    unsigned rate_limit; /* rate_limit = N/SECONDS: N, or 0 when not set */
    unsigned rate_window_s; /* its SECONDS */
    unsigned refresh_share; /* percent of the limit for background refresh; 0: not set */
    char **events_fields; /* NULL-terminated files whose changes are events, or NULL */
    char *webhook_listen; /* "ADDRESS:PORT" where pushed changes arrive, or NULL */
    char *webhook_secret; /* what they are signed with (webhook_secret_file); never logged */
    GHashTable *extra; /* provider key -> value (both char*) */
    int line; /* line of the [section] header */
} IfsAccountConfig;

typedef struct {
    char *path; /* absolute path of the file read */
    GPtrArray *accounts; /* IfsAccountConfig*, in file order */
} IfsConfig;

/* HOME, else the passwd entry's home (boot mounts have no HOME), read afresh
 * on every call; NULL when there is none. */
char *ifs_home_dir(void);

/* Default path: $XDG_CONFIG_HOME/infrafs/config, else ~/.config/infrafs/config
 * (home from the passwd entry when HOME is unset). */
char *ifs_config_default_path(void);

/* Parse `path` (made absolute). Errors (EINVAL/ENOENT/EACCES) name the file,
 * the section, the key and the line, and say how to fix it. `schemas` is a
 * NULL-terminated array. Secrets are resolved here: token, token_file (~ and
 * paths relative to the config's directory), token_command (run with /bin/sh
 * in a session of its own, without any INFRAFS_*_TOKEN variable, stdout
 * trimmed; on a timeout its whole session is killed), or
 * INFRAFS_<ACCOUNT>_TOKEN; exactly one must be given. A secret holding a
 * control character is refused.
 * A config file with an inline token, or a token_file, that is readable by
 * group or others is refused with the chmod 600 fix. */
IfsConfig *ifs_config_load(const char *path, const IfsAccountSchema *const *schemas,
                           IfsError **err);
void ifs_config_free(IfsConfig *cfg);
const char *ifs_account_extra(const IfsAccountConfig *acct, const char *key);
/* `text` as a whole number from `min` to `max`: digits only, no sign or
 * space (g_ascii_string_to_unsigned() alone would take "+5"). */
gboolean ifs_whole_number(const char *text, guint64 min, guint64 max, guint64 *out);

/* The account's secret read again from where it was first read: the
 * token_file is read and the token_command run again, with the same
 * checks and messages as at load. An inline token and an environment
 * variable (read once, then removed from the environment) give what they
 * gave at load. NULL with *err set when the source is now wrong; the
 * message never holds the secret. Free the result with
 * ifs_config_secret_free. */
char *ifs_account_read_secret(const IfsAccountConfig *acct, IfsError **err);
/* Wipes and frees a secret. */
void ifs_config_secret_free(char *secret);

/* Removes every INFRAFS_<ACCOUNT>_TOKEN variable from the environment and
 * wipes its text where exec put it, so that /proc/PID/environ, child
 * processes and core files do not show it. Call after ifs_config_load and
 * before any thread starts (setenv and getenv are not thread-safe). A
 * token_command never sees these variables in any case. */
void ifs_config_forget_env_secrets(void);

/* "INFRAFS_" + upper-cased account name with '-' (and other non-alnum) as '_' + "_TOKEN" */
char *ifs_config_env_name(const char *account);
