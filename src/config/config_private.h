/* What the config reader's parts share (src/config/): the raw sections
 * ini.c reads, the loader the three steps pass along, and the helpers
 * more than one part uses. Not a public interface: infrafs/config.h is. */
#pragma once
#include "infrafs/config.h"

#include <sys/stat.h>

/* ------------------------------------------------------------------ */
/* Raw parse result                                                     */

typedef struct {
    char *key;
    char *value;
    int line;
} RawEntry;

typedef struct {
    char *name;
    int line; /* line of the [section] header */
    GPtrArray *entries; /* RawEntry*, in file order */
} RawSection;

typedef struct {
    const char *path; /* absolute config path, for messages */
    GPtrArray *sections; /* RawSection*, in file order */
    RawSection *current; /* section the next key belongs to */
} Parser;

typedef struct {
    const char *path; /* absolute config path */
    char *dir; /* its directory */
    const IfsAccountSchema *const *schemas; /* NULL-terminated, or NULL */
} Loader;

/* ---- load.c: messages and paths ---- */

/* Every message has the shape "FILE:LINE: [section] key: what; fix", with
 * the parts that do not apply left out. */
IfsError *config_error(int errnum, const char *path, int line, const char *section, const char *key,
                       const char *fmt, ...) G_GNUC_PRINTF(6, 7);
/* EINVAL for entry `e` of `sec`, its key named: always FALSE. */
gboolean config_refuse(const Loader *ld, const RawSection *sec, const RawEntry *e, IfsError **err,
                       const char *fmt, ...) G_GNUC_PRINTF(5, 6);
/* Only EINVAL, ENOENT and EACCES come out of the config reader. */
int config_errnum_for_file(int e);
/* "readable by group or others", ... for a mode that exposes a secret. */
const char *config_exposure(mode_t mode);
/* A path as a word a shell takes as it is, for a fix to paste. */
char *config_shell_word(const char *path);
/* A path from the config: ~ expanded, relative to the config's directory. */
char *config_expand_path(const Loader *ld, const char *value, const char **problem);

/* ---- ini.c: reading the file ---- */

GString *config_read_file(const char *path, struct stat *st, IfsError **err);
/* At most `max` bytes of `fd`; NULL with *error_out an errno, or ERANGE
 * beyond `max`. The buffers it used are wiped. */
GString *config_read_fd(int fd, gsize max, int *error_out);
gboolean config_parse_text(Parser *p, GString *text, IfsError **err);
void config_raw_section_free(gpointer data);
const RawEntry *config_section_get(const RawSection *sec, const char *key);
const char *config_section_value(const RawSection *sec, const char *key);

/* ---- schema.c: checking each section against its type ---- */

IfsAccountConfig *config_account_from_section(const Loader *ld, const RawSection *sec,
                                              IfsError **err);
void config_account_free(gpointer data);
gboolean config_resolve_webhook(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                                IfsError **err);

/* ---- secrets.c: tokens from the file, a file, a command or the environment ---- */

/* Secrets are wiped before their memory goes back to the allocator. */
void config_wipe_free(char *s);
void config_wipe_gstring(GString *s);
gboolean config_check_mode(const char *path, const struct stat *st, GPtrArray *sections,
                           IfsError **err);
char *config_read_token_file(const Loader *ld, const RawSection *sec, const RawEntry *e,
                             char **path_out, IfsError **err);
gboolean config_resolve_secret(const Loader *ld, const RawSection *sec, IfsAccountConfig *acct,
                               IfsError **err);
