/* Shared by the cache's two readers: persist.c (format version 2, and
 * saving) and persist_v1.c (version 1 files). Not a public interface. */
#pragma once
#include "infrafs/persist.h"

#define CACHE_FORMAT "infrafs-cache"
#define CACHE_VERSION_JSON 1

IfsCacheData *persist_cache_data_new(void);
GHashTable *persist_new_other_mtimes(void); /* relative path -> gint64* */
/* Why the file at `path` is not used, for the account's warning. */
IfsError *persist_foreign(const char *path, const IfsAccountConfig *cfg, const char *what);

/* Why a version 1 file would take far more memory than its size, weighed
 * in pieces before it is read whole; NULL when it would not. */
char *persist_v1_too_costly(const char *path);
IfsCacheData *persist_load_v1(const char *path, const IfsAccountConfig *cfg,
                              const char *text, gsize len, IfsError **err);

/* Fills in a version 2 file's length and checksum (`len` bytes, its other
 * header fields and records written), as a save does last. */
void persist_seal_v2(guchar *text, gsize len);
