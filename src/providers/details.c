/* Per-resource detail reads shared by the providers (include/infrafs/details.h). */
#include "infrafs/details.h"

#include "infrafs/budget.h"
#include "infrafs/jsonparse.h"
#include "infrafs/parallel.h"

#include <errno.h>
#include <string.h>

/* The last detail read of a resource. The text is its own: json-c's
 * reference counts are not atomic, so nothing here may share an object
 * with what the publisher reads. */
typedef struct {
    char *text; /* compact JSON (a tree would take a dozen times the memory) */
    guint64 item_key; /* the list item it was read for; 0: any (restored, fetched) */
    gint64 read_at; /* epoch seconds */
    /* Or the resource a remount restored, list fields and all: its sealed
     * text, shared rather than copied. */
    IfsResource *restored;
    gboolean settled; /* read while spec->settled held: final */
} Kept;

struct IfsDetails {
    const IfsDetailSpec *spec;
    gpointer provider;
    IfsHttp *http;
    guint concurrency;
    gint64 max_age_s;
    GMutex lock; /* guards kept */
    GHashTable *kept; /* id -> Kept* */
};

static void kept_free(gpointer data)
{
    Kept *k = data;

    g_free(k->text);
    if (k->restored)
        ifs_resource_unref(k->restored);
    g_free(k);
}

static void merge(const IfsDetailSpec *spec, IfsResource *r, json_object *detail, IfsDetailAge age)
{
    if (spec->merge)
        spec->merge(r, detail, age);
    else
        ifs_json_merge_fields(r->object, detail, age == IFS_DETAIL_FRESH);
}

static const char *missing_problem(const IfsDetailSpec *spec)
{
    return spec->missing_problem ? spec->missing_problem
                                 : "details not read, only the list's fields are shown";
}

IfsDetails *ifs_details_new(const IfsDetailSpec *spec, gpointer provider, IfsHttp *http,
                            guint concurrency, guint max_age_s)
{
    IfsDetails *d = g_new0(IfsDetails, 1);

    d->spec = spec;
    d->provider = provider;
    d->http = http;
    d->concurrency = MAX(concurrency, 1);
    d->max_age_s = max_age_s;
    g_mutex_init(&d->lock);
    d->kept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, kept_free);
    return d;
}

void ifs_details_free(IfsDetails *d)
{
    if (!d)
        return;
    g_hash_table_destroy(d->kept);
    g_mutex_clear(&d->lock);
    g_free(d);
}

void ifs_details_clear(IfsDetails *d)
{
    g_mutex_lock(&d->lock);
    g_hash_table_remove_all(d->kept);
    g_mutex_unlock(&d->lock);
}

gboolean ifs_details_config(const IfsAccountConfig *cfg, guint *concurrency, guint *max_age_s,
                            IfsError **err)
{
    guint64 n = *concurrency, age = *max_age_s;

    if (!ifs_account_number(cfg, "detail_concurrency", 1, IFS_MAX_CONCURRENCY, NULL, &n, err) ||
        !ifs_account_number(cfg, "detail_max_age", 0, IFS_MAX_DETAIL_MAX_AGE_S, "of seconds", &age,
                            err))
        return FALSE;
    *concurrency = (guint)n;
    *max_age_s = (guint)age;
    return TRUE;
}

void ifs_json_merge_fields(json_object *obj, json_object *extra, gboolean override)
{
    json_object_object_foreach(extra, key, value)
    {
        json_object *mine = NULL;

        if (json_object_object_get_ex(obj, key, &mine) &&
            json_object_is_type(mine, json_type_object) &&
            json_object_is_type(value, json_type_object))
            ifs_json_merge_fields(mine, value, override);
        else if (override || !mine)
            json_object_object_add(obj, key, json_object_get(value));
    }
}

/* What a resource's list item says, in 64 bits: its compact text's hash
 * and length (never 0, which stands for "any"). */
static guint64 item_key(const IfsResource *r)
{
    size_t len = r->text_len;
    char *text = r->object ? ifs_json_compact(r->object, &len) : g_strndup(r->text, len);
    guint64 key = ((guint64)g_str_hash(text) << 32) | (guint32)len;

    g_free(text);
    return key ? key : 1;
}

/* d->lock held. A parsed copy of the kept detail of `id`, or NULL. */
static json_object *kept_object(IfsDetails *d, const char *id, gboolean *restored)
{
    Kept *k = g_hash_table_lookup(d->kept, id);

    if (!k)
        return NULL;
    *restored = k->restored != NULL;
    return k->restored ? ifs_json_parse_compact(k->restored->text, k->restored->text_len)
                       : ifs_json_parse_compact(k->text, strlen(k->text));
}

static void keep(IfsDetails *d, const IfsResource *r, json_object *detail, guint64 key,
                 gint64 read_at)
{
    Kept *k = g_new0(Kept, 1);
    size_t len;
    const char *id = r->id;

    k->text = ifs_json_compact(detail, &len);
    k->item_key = key;
    k->read_at = read_at;
    k->settled = d->spec->settled && d->spec->settled(r);
    g_mutex_lock(&d->lock);
    g_hash_table_replace(d->kept, g_strdup(id), k);
    g_mutex_unlock(&d->lock);
}

/* The kept detail of `r`, under the list's fields; with `failure`, the
 * resource says what it lacks. */
static void show_kept(IfsDetails *d, IfsResource *r, const IfsError *failure)
{
    gboolean restored = FALSE;
    json_object *kept;

    g_mutex_lock(&d->lock);
    kept = kept_object(d, r->id, &restored);
    g_mutex_unlock(&d->lock);
    if (kept) {
        merge(d->spec, r, kept, restored ? IFS_DETAIL_RESTORED : IFS_DETAIL_KEPT);
        json_object_put(kept);
    }
    if (failure)
        r->problem = g_strdup_printf(
            "%s (%s)", kept ? d->spec->kept_problem : missing_problem(d->spec), failure->message);
}

void ifs_details_show(IfsDetails *d, IfsResource *r)
{
    if (r->id)
        show_kept(d, r, NULL);
}

void ifs_details_forget(IfsDetails *d, const char *id)
{
    g_mutex_lock(&d->lock);
    g_hash_table_remove(d->kept, id);
    g_mutex_unlock(&d->lock);
}

/* No answer at all, as opposed to an answer saying no. */
static gboolean api_unreachable(const IfsError *err)
{
    return err->errnum == ETIMEDOUT || err->errnum == EHOSTUNREACH || err->errnum == ECANCELED;
}

/* One resource's read, `key` its list item's. */
static void read_into(IfsDetails *d, IfsResource *r, guint64 key, gint *unreachable)
{
    IfsError *err = NULL;
    json_object *detail;

    if (unreachable && g_atomic_int_get(unreachable)) {
        show_kept(d, r, NULL);
        return;
    }
    detail = d->spec->read(d->provider, r, &err);
    if (detail) {
        keep(d, r, detail, key, g_get_real_time() / G_USEC_PER_SEC);
        merge(d->spec, r, detail, IFS_DETAIL_FRESH);
        json_object_put(detail);
        return;
    }
    g_debug("%s", err->message);
    if (unreachable && api_unreachable(err))
        g_atomic_int_set(unreachable, 1);
    show_kept(d, r, err);
    ifs_error_free(err);
}

void ifs_details_read_now(IfsDetails *d, IfsResource *r)
{
    if (r->id)
        read_into(d, r, 0, NULL);
}

/* A resource whose detail is to be read, and how urgently. */
typedef struct {
    IfsResource *r;
    guint64 key;
    int rank; /* 0: its list item changed; 1: never read; 2: too old */
    gint64 read_at;
} Wanted;

static gint compare_wanted(gconstpointer a, gconstpointer b)
{
    const Wanted *x = a, *y = b;

    if (x->rank != y->rank)
        return x->rank - y->rank;
    return (x->read_at > y->read_at) - (x->read_at < y->read_at);
}

typedef struct {
    IfsDetails *d;
    GArray *wanted; /* Wanted, each touched by one call only */
    gint unreachable;
} ReadRun;

static void read_one(guint i, gpointer data)
{
    ReadRun *run = data;
    Wanted *w = &g_array_index(run->wanted, Wanted, i);

    read_into(run->d, w->r, w->key, &run->unreachable);
    /* Finished: kept as text from now on (every tree until the last read
     * was the mount's peak memory at 25,000 HostAtlas servers). */
    ifs_resource_seal(w->r);
}

/* d->lock held. Whether `r`'s kept detail can stand: read for the same
 * list item (or any) and young enough. Sets *w otherwise. */
static gboolean kept_is_fresh(IfsDetails *d, IfsResource *r, gint64 now, Wanted *w)
{
    Kept *k = g_hash_table_lookup(d->kept, r->id);

    w->r = r;
    w->key = item_key(r);
    if (!k) {
        w->rank = 1;
        return FALSE;
    }
    w->read_at = k->read_at;
    if (k->settled && d->spec->settled(r))
        return TRUE;
    if (k->item_key != 0 && k->item_key != w->key) {
        w->rank = 0;
        return FALSE;
    }
    w->rank = 2;
    return d->max_age_s > 0 && now - k->read_at < d->max_age_s;
}

static void forget_gone(IfsDetails *d, GPtrArray *resources)
{
    GHashTable *live = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer id;

    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);
        if (r->id)
            g_hash_table_add(live, r->id);
    }
    g_mutex_lock(&d->lock);
    g_hash_table_iter_init(&it, d->kept);
    while (g_hash_table_iter_next(&it, &id, NULL))
        if (!g_hash_table_contains(live, id))
            g_hash_table_iter_remove(&it);
    g_mutex_unlock(&d->lock);
    g_hash_table_destroy(live);
}

void ifs_details_apply(IfsDetails *d, GPtrArray *resources)
{
    ReadRun run = {.d = d, .wanted = g_array_new(FALSE, FALSE, sizeof(Wanted))};
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    guint64 room = ifs_budget_refresh_room(ifs_http_budget(d->http));
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *again = g_ptr_array_new(); /* listed twice: shown what the first got */
    guint reads;

    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);
        Wanted w = {0};
        gboolean fresh;

        if (!r->id)
            continue;
        if (!g_hash_table_add(seen, r->id)) {
            g_ptr_array_add(again, r);
            continue;
        }
        g_mutex_lock(&d->lock);
        fresh = kept_is_fresh(d, r, now, &w);
        g_mutex_unlock(&d->lock);
        if (fresh) {
            show_kept(d, r, NULL);
            ifs_resource_seal(r);
        } else {
            g_array_append_val(run.wanted, w);
        }
    }
    g_array_sort(run.wanted, compare_wanted);
    reads = (guint)MIN((guint64)run.wanted->len, room / MAX(d->spec->requests_per_read, 1));
    if (reads < run.wanted->len)
        g_debug("%u details wait for a later refresh: the rate limit's share leaves "
                "room for %u now",
                run.wanted->len - reads, reads);
    ifs_run_concurrently(reads, d->concurrency, read_one, &run);
    /* The rest keep what was read before, until a later refresh. */
    for (guint i = reads; i < run.wanted->len; i++) {
        Wanted *w = &g_array_index(run.wanted, Wanted, i);

        show_kept(d, w->r, NULL);
        ifs_resource_seal(w->r);
    }
    for (guint i = 0; i < again->len; i++) {
        show_kept(d, g_ptr_array_index(again, i), NULL);
        ifs_resource_seal(g_ptr_array_index(again, i));
    }
    g_ptr_array_unref(again);
    g_hash_table_destroy(seen);
    g_array_unref(run.wanted);
    forget_gone(d, resources);
}

void ifs_details_restore(IfsDetails *d, GPtrArray *resources, gint64 saved_at)
{
    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);
        json_object *detail;
        Kept *k;

        if (!r->id || !r->text)
            continue;
        if (d->spec->saved_detail) {
            detail = d->spec->saved_detail(r);
            if (detail)
                keep(d, r, detail, 0, saved_at);
            json_object_put(detail);
            continue;
        }
        k = g_new0(Kept, 1);
        k->restored = ifs_resource_ref(r);
        k->read_at = saved_at;
        g_mutex_lock(&d->lock);
        g_hash_table_replace(d->kept, g_strdup(r->id), k);
        g_mutex_unlock(&d->lock);
    }
}
