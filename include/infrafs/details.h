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
    IFS_DETAIL_FRESH,    /* read now: its fields win */
    IFS_DETAIL_KEPT,     /* read before (this one failed or waits): the list's win */
    IFS_DETAIL_RESTORED, /* the resource a remount restored, list fields and all */
} IfsDetailAge;

typedef struct {
    /* The detail of resource `r` (id set, object the list item): a new
     * object, or NULL with *err set. */
    json_object *(*read)(gpointer provider, const IfsResource *r, IfsError **err);
    /* Puts a detail into r->object. */
    void (*merge)(IfsResource *r, json_object *detail, IfsDetailAge age);
    guint requests_per_read; /* what one read costs */
    const char *fields;      /* for messages: "services, domains, ..." */
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
/* The resources a remount starts from (saved at `saved_at`, epoch
 * seconds): each stands in as its own last detail until it is read. */
void ifs_details_restore(IfsDetails *d, GPtrArray *resources, gint64 saved_at);
/* Forgets every detail (an account too large for details). */
void ifs_details_clear(IfsDetails *d);

/* The account keys detail_concurrency and detail_max_age, with their
 * defaults: FALSE with an error naming the key for a bad value. */
gboolean ifs_details_config(const IfsAccountConfig *cfg, guint default_concurrency,
                            guint *concurrency, guint *max_age_s, IfsError **err);

/* Adds the fields of `extra` to `obj`, nested objects merged, other values
 * replaced when `override` is set and kept otherwise. */
void ifs_json_merge_fields(json_object *obj, json_object *extra, gboolean override);
