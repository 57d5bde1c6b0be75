/* What several providers do with their APIs' answers, written once
 * (kit.c). Provider files include it; nothing outside src/providers does. */
#pragma once
#include "infrafs/provider.h"

/* GET `path` and expect a JSON object; with `unwrap_data`, one wrapped as
 * {"data": {...}} (and without an "id" of its own) is unwrapped. Anything
 * else is EIO naming the account and path. A new reference. */
json_object *ifs_kit_get_object(IfsHttp *http, const char *account, const char *path,
                                gboolean unwrap_data, IfsError **err);
/* GET `path` and expect a JSON array; `hint` (or NULL) is added to the
 * error for anything else, e.g. "(is `url` the origin, without /api?)". */
json_object *ifs_kit_get_array(IfsHttp *http, const char *account, const char *path,
                               const char *hint, IfsError **err);

/* Why obj[key] cannot be an id: "KEY 'shown' holds a NUL byte" (the value
 * escaped as an entry name), or NULL when it is a usable string or not a
 * string at all. */
char *ifs_kit_id_problem(json_object *obj, const char *key);
/* Adds a reference to each resource of `from` to `out`. */
void ifs_kit_append(GPtrArray *out, GPtrArray *from);
/* answer["data"] when it is an array (borrowed), else NULL with EIO naming
 * the account and `path`: the list envelope of HostUp and HostAtlas. */
json_object *ifs_kit_data_array(json_object *answer, const char *account, const char *path,
                                IfsError **err);
/* A resource of `kind` with its id in item[key] (`item` taken). Without a
 * usable id the resource has id NULL, and says why when the id holds a
 * NUL byte (the caller may say more for other cases). */
IfsResource *ifs_kit_resource(const char *kind, json_object *item, const char *key);

/* ---- paged lists ---- */

/* One page of a paged list: what was asked for, and what the provider's
 * reading of the answer says comes next. */
typedef struct {
    guint number; /* 1, 2, ...: the page asked for (APIs that number pages) */
    const char *cursor; /* the cursor sent, or NULL (the first page, or numbered pages) */
    /* Set by IfsKitPager.take: */
    const char *next_cursor; /* the cursor to send next (may point into the answer) */
    gboolean done; /* no page comes after this one */
    /* Every item on it was read before: with more to come, the API
     * ignores paging and the same page would come again. */
    gboolean nothing_new;
} IfsKitPage;

typedef struct {
    const char *what; /* for messages: "listing VPSes" */
    guint max_pages;
    /* The request path of `page` (g_free). */
    char *(*path)(gpointer ctx, const IfsKitPage *page);
    /* Takes the items of `answer`, the page at `path`, and says what comes
     * next (next_cursor, done, or neither: the next page number). FALSE
     * with *err when the answer is of no use. */
    gboolean (*take)(gpointer ctx, const char *path, json_object *answer, IfsKitPage *page,
                     IfsError **err);
} IfsKitPager;

/* Reads pages until one is the last: numbered pages until the provider
 * hands out a cursor, cursors from then on. Stops with EIO, naming the
 * account, at more than max_pages pages, a cursor handed out twice, or a
 * page of nothing new with more to come: an API paging in circles. */
gboolean ifs_kit_read_pages(IfsHttp *http, const char *account, const IfsKitPager *pager,
                            gpointer ctx, IfsError **err);

/* ---- a list kept while its endpoint fails ---- */

/* The last good list of one kind whose endpoint is secondary to the
 * account's main list (DeployHQ's regions and sizes): a failed read keeps
 * it and makes the refresh partial (provider.h), and the list saved on
 * disk stands in after a remount until the endpoint answers. */
typedef struct IfsKitKeptList IfsKitKeptList;

IfsKitKeptList *ifs_kit_kept_list_new(const char *kind);
void ifs_kit_kept_list_free(IfsKitKeptList *kept);
/* The resources of its kind among those a remount restored. */
void ifs_kit_kept_list_restore(IfsKitKeptList *kept, GPtrArray *restored);
/* A read that succeeded: `fresh` (taken) becomes the list. */
void ifs_kit_kept_list_replace(IfsKitKeptList *kept, GPtrArray *fresh);
/* A read that failed: the list stays, and `failure` (with `hint`, or "")
 * joins *partial: "KIND not refreshed, showing the last good list: ...". */
void ifs_kit_kept_list_failed(IfsKitKeptList *kept, const IfsError *failure, const char *hint,
                              IfsError **partial);
/* Adds a reference to each resource of the list to `out`. */
void ifs_kit_kept_list_append(const IfsKitKeptList *kept, GPtrArray *out);

/* ---- what the last list taught, for actions ---- */

/* id -> value: what a list learnt about resources that an action needs
 * and their files do not show (HostAtlas's ping URLs, Dokploy's
 * deployment owners). Each list replaces it whole; actions and fetches
 * read and change it from other threads, under its lock. */
typedef struct IfsKitIdMap IfsKitIdMap;
typedef gpointer (*IfsKitCopyFunc)(gconstpointer value);
/* An IfsKitCopyFunc for maps of strings. */
gpointer ifs_kit_copy_text(gconstpointer text);

IfsKitIdMap *ifs_kit_id_map_new(IfsKitCopyFunc copy_value, GDestroyNotify free_value);
void ifs_kit_id_map_free(IfsKitIdMap *map);
/* An empty table for a list to fill: id (g_free) -> value (free_value). */
GHashTable *ifs_kit_id_map_table(const IfsKitIdMap *map);
/* What a list filled (`table`, taken) becomes the map. */
void ifs_kit_id_map_replace(IfsKitIdMap *map, GHashTable *table);
/* Sets one id's value (taken), or removes it when `value` is NULL. */
void ifs_kit_id_map_set(IfsKitIdMap *map, const char *id, gpointer value);
/* A copy of one id's value, or NULL. */
gpointer ifs_kit_id_map_get(IfsKitIdMap *map, const char *id);

/* ---- actions ---- */

/* EIO for an action (POST `path`) whose 2xx answer `api` ("HostUp") sent
 * cannot be taken: `problem` says why ("the answer could not be read"),
 * `advice` that the action may have happened anyway and how to check it
 * before trying again. `code`: the API's, or NULL. */
IfsError *ifs_kit_action_unsure(const char *account, const char *path, const char *api, int status,
                                const char *code, const char *problem, const char *advice);
