/* Shared by the cache's parts: persist.c (the format, saving),
 * persist_load.c (loading version 2, restamping) and persist_v1.c
 * (version 1 files). Not a public interface. */
#pragma once
#include "infrafs/persist.h"

#define CACHE_FORMAT "infrafs-cache"
/* Format version 2's fixed header (persist.c describes the format). */
#define CACHE_NAME_LEN 16
#define CACHE_VERSION 2
/* Where the fields of the fixed header are, and where the checksum starts. */
#define OFF_VERSION 16
#define OFF_CHECKSUM 20
#define OFF_LENGTH 28
#define OFF_LAST_REFRESH 36
#define OFF_COUNT 44
#define OFF_STRINGS 48
/* The smallest record: four empty strs, base mtime, no exceptions. Bounds
 * the record count a file of a given size can claim. */
#define MIN_RECORD_BYTES (4 * 4 + 8 + 4)
#define MIN_EXCEPTION_BYTES (4 + 8)
/* A cache file is ours and bounded by what we write; anything larger is
 * not one of ours. Below 4 GiB, so every u32 length of a file within it
 * is exact. */
#define MAX_CACHE_BYTES ((gsize)1024 * 1024 * 1024)
#define CACHE_VERSION_JSON 1

IfsCacheData *persist_cache_data_new(void);
GHashTable *persist_new_other_mtimes(void); /* relative path -> gint64* */
/* Why the file at `path` is not used, for the account's warning. */
IfsError *persist_foreign(const char *path, const IfsAccountConfig *cfg, const char *what);

/* Why a version 1 file would take far more memory than its size, weighed
 * in pieces before it is read whole; NULL when it would not. */
char *persist_v1_too_costly(const char *path);
IfsCacheData *persist_load_v1(const char *path, const IfsAccountConfig *cfg, const char *text,
                              gsize len, IfsError **err);

/* Fills in a version 2 file's length and checksum (`len` bytes, its other
 * header fields and records written), as a save does last. */
void persist_seal_v2(guchar *text, gsize len);

/* FNV-1a-like over 8-byte words (persist.c): what version 2 files carry
 * at OFF_CHECKSUM for every byte from OFF_LENGTH on. */
guint64 persist_checksum(const guchar *p, gsize len);

/* Controls and wait files are ours and rebuilt on every start: their
 * mtimes are neither saved nor restored. */
static inline gboolean persist_has_saved_mtime(const IfsNode *n)
{
    return n->type != IFS_NODE_CONTROL && n->type != IFS_NODE_WAIT;
}
