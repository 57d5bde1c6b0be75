/* Control commands (doc/SEMANTICS.md §5.2, §5.3): parsing and local validation, before any
 * API is called. */
#pragma once
#include <glib.h>
#include "infrafs/error.h"

typedef enum {
    IFS_FORCE_NEVER, /* "<verb> force" is refused */
    IFS_FORCE_OPTIONAL, /* "<verb>" and "<verb> force" both accepted */
    IFS_FORCE_REQUIRED, /* documented as forced/emergency: needs "force" */
} IfsForceRule;

typedef struct {
    const char *verb; /* "restart", or "1" for trigger files */
    IfsForceRule force;
} IfsCommandSpec;

typedef struct {
    const char *kind; /* "vps", or "providers" for refresh */
    const char *file; /* "power" */
    const IfsCommandSpec *commands; /* terminated by {NULL} */
} IfsControlSpec;

typedef struct {
    char *verb;
    gboolean force;
} IfsCommand;

/* What every trigger file (refresh, sync, ping, kill, remove) accepts: "1". */
extern const IfsCommandSpec ifs_trigger_commands[];

/* "start shutdown stop restart reset\n": every verb the file accepts. */
char *ifs_control_commands_line(const IfsControlSpec *spec);

/* One write at offset 0 is one command; surrounding white space and the
 * trailing newline are ignored. Refuses (EINVAL, with a message that lists
 * what is accepted): empty input, NUL bytes, more than one line, more than
 * 256 bytes, unknown verbs, unknown extra words, a missing or superfluous
 * `force`. */
IfsCommand *ifs_control_parse(const IfsControlSpec *spec, const char *buf, size_t len,
                              IfsError **err);
void ifs_command_free(IfsCommand *cmd);
/* "reset force" / "restart": the command as it will be logged. */
char *ifs_command_to_string(const IfsCommand *cmd);
