/* Per-resource detail reads, shared by the providers whose list answers
 * leave fields to one more request per resource (HostUp's /details and
 * /status, HostAtlas's /servers/{id}).
 *
 * A detail is read again only when the resource's list item changed or
 * the last read is older than detail_max_age. The reads of a refresh are
 * spread: they take at most what the budget leaves background refresh in
 * one interval (budget.h), changed resources first, then those never
 * read, then the oldest; the rest keep their last read until a later
 * refresh. A few threads read at once (detail_concurrency). A failed read
 * shows the last good one and says so in the resource's problem; an API
 * that stopped answering is not asked again within the refresh. What was
 * read survives a remount: the saved copy stands in until it is read
 * again. */
#pragma once
#include <glib.h>
#include <json-c/json.h>

#include "infrafs/http.h"
#include "infrafs/provider.h"

/* How old a detail given to IfsDetailSpec.merge is. */
typedef enum {
    IFS_DETAIL_FRESH, /* read now: its fields win */
    IFS_DETAIL_KEPT, /* read before (this one failed or waits): the list's win */
    IFS_DETAIL_RESTORED, /* the resource a remount restored, list fields and all */
} IfsDetailAge;

typedef struct {
    /* The detail of resource `r` (id set, object the list item): a new
     * object, or NULL with *err set. */
    json_object *(*read)(gpointer provider, const IfsResource *r, IfsError **err);
    /* Puts a detail into the resource (its object, or its extra files).
     * NULL: its fields go over the list item's when fresh, under them
     * otherwise (ifs_json_merge_fields). */
    void (*merge)(IfsResource *r, json_object *detail, IfsDetailAge age);
    guint requests_per_read; /* what one read costs */
    /* What a resource that shows its last good detail after a failed read
     * says in its problem, and one that never had one. */
    const char *kept_problem;
    const char *missing_problem; /* NULL: "details not read, only the list's fields are shown" */
    /* Optional. TRUE when `r` is in a state after which its detail no
     * longer changes (a finished deployment's log): a detail read then is
     * never read again while that holds, whatever its age. */
    gboolean (*settled)(const IfsResource *r);
    /* Optional. The detail a saved resource holds (a new object), or NULL
     * when it holds none; without it, the saved resource itself stands in
     * (IFS_DETAIL_RESTORED). */
    json_object *(*saved_detail)(const IfsResource *saved);
} IfsDetailSpec;

#define IFS_DEFAULT_DETAIL_MAX_AGE_S 600
#define IFS_MAX_DETAIL_MAX_AGE_S (30 * 86400)

typedef struct IfsDetails IfsDetails;

/* `provider` is passed to spec->read. Reads run on up to `concurrency`
 * threads; a detail older than `max_age_s` is read again (0: every
 * refresh reads every detail). */
IfsDetails *ifs_details_new(const IfsDetailSpec *spec, gpointer provider, IfsHttp *http,
                            guint concurrency, guint max_age_s);
void ifs_details_free(IfsDetails *d);

/* Gives each resource of `resources` (unsealed; those without an id are
 * left alone) its detail, read now or kept, and seals it. Details of
 * resources not in `resources` are forgotten. */
void ifs_details_apply(IfsDetails *d, GPtrArray *resources);
/* One resource's detail read now (a fetch after an action), kept for the
 * next refresh; a failed read shows the kept one, with the problem. */
void ifs_details_read_now(IfsDetails *d, IfsResource *r);
/* The kept detail shown, without reading (a fetch that does not read). */
void ifs_details_show(IfsDetails *d, IfsResource *r);
/* Forgets one resource's detail (it was removed). */
void ifs_details_forget(IfsDetails *d, const char *id);
/* The resources a remount starts from (saved at `saved_at`, epoch
 * seconds): each stands in as its own last detail until it is read. */
void ifs_details_restore(IfsDetails *d, GPtrArray *resources, gint64 saved_at);
/* Forgets every detail (an account too large for details). */
void ifs_details_clear(IfsDetails *d);

/* The account keys detail_concurrency and detail_max_age (when the type
 * has them), set to the defaults given when absent: FALSE with an error
 * naming the key for a bad value. */
gboolean ifs_details_config(const IfsAccountConfig *cfg, guint *concurrency, guint *max_age_s,
                            IfsError **err);

/* Adds the fields of `extra` to `obj`, nested objects merged, other values
 * replaced when `override` is set and kept otherwise. */
void ifs_json_merge_fields(json_object *obj, json_object *extra, gboolean override);
