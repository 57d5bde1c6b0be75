/* The persistent cache (doc/SEMANTICS.md §7): each account's last good data on disk,
 * so that a mount with the network down, or with -o offline, still serves
 * it, and files keep their st_mtime across restarts. One file per account,
 * replaced atomically (temporary file, fsync, rename), in a format that
 * loads by copying each resource's sealed text, with no JSON parse
 * (src/persist.c describes it). */
#pragma once
#include <glib.h>
#include "infrafs/config.h"
#include "infrafs/error.h"
#include "infrafs/node.h"
#include "infrafs/provider.h"

/* A resource and the directory the tree shows for it (for its mtimes). */
typedef struct {
    IfsResource *res;
    IfsNode *node;
} IfsCacheItem;
IfsCacheItem *ifs_cache_item_new(IfsResource *res, IfsNode *node); /* takes refs */
void ifs_cache_item_free(IfsCacheItem *item);

/* The saved mtimes of one resource directory: `base` for every path not
 * listed in `other` (relative path -> gint64*; NULL when no path differs,
 * as for most resources). */
typedef struct {
    gint64 base;
    GHashTable *other;
} IfsCacheMtimes;

/* What a cache file gave back. */
typedef struct {
    GPtrArray *resources; /* IfsResource* */
    GHashTable *mtimes; /* "kind/id" -> IfsCacheMtimes* */
    gint64 last_refresh; /* epoch seconds of the refresh that was saved */
} IfsCacheData;

/* $XDG_CACHE_HOME/infrafs, else ~/.cache/infrafs (home from the passwd entry
 * when HOME is unset). */
char *ifs_cache_default_dir(void);
/* DIR/<account>.json, the account name escaped as tree names are. */
char *ifs_cache_file(const char *dir, const char *account);

/* Writes `items` for account `cfg` to `path` (creating its directory,
 * mode 0700; the file is 0600). On failure the previous file is intact. */
gboolean ifs_cache_save(const char *path, const IfsAccountConfig *cfg, gint64 last_refresh,
                        GPtrArray *items /* IfsCacheItem* */, IfsError **err);
/* NULL without *err when there is no file; NULL with *err when the file is
 * unreadable, corrupt (its checksum says so), truncated, too large, of a
 * format version this infrafs does not read, or belongs to another
 * account, type or url (the caller warns and starts empty). Files of the
 * earlier JSON format (version 1) are read too. The resources come back
 * sealed; their text is not parsed here. */
IfsCacheData *ifs_cache_load(const char *path, const IfsAccountConfig *cfg, IfsError **err);
void ifs_cache_data_free(IfsCacheData *data);

/* Give a freshly built, not yet published resource directory the mtimes
 * saved for it. Only for nodes nobody else holds yet. */
void ifs_cache_restamp(IfsNode *fresh, const IfsCacheMtimes *mtimes);
