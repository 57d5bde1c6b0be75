/* What several providers do with their APIs' answers (kit.h). */
#include "kit.h"

#include "infrafs/names.h"

#include <errno.h>

static IfsError *unexpected(const char *account, const char *path, const char *expected,
                            const char *hint)
{
    return ifs_error_new(EIO, 0, NULL,
                         "account '%s': GET %s: expected a JSON %s; the API answered "
                         "something else%s%s",
                         account, path, expected, hint ? " " : "", hint ? hint : "");
}

json_object *ifs_kit_get_object(IfsHttp *http, const char *account, const char *path,
                                gboolean unwrap_data, IfsError **err)
{
    json_object *raw = ifs_http_get_json(http, path, err);
    json_object *data, *obj = NULL;

    if (!raw)
        return NULL;
    if (unwrap_data && json_object_is_type(raw, json_type_object) &&
        !json_object_object_get_ex(raw, "id", NULL) &&
        json_object_object_get_ex(raw, "data", &data) &&
        json_object_is_type(data, json_type_object))
        obj = json_object_get(data);
    else if (json_object_is_type(raw, json_type_object))
        obj = json_object_get(raw);
    else
        ifs_error_propagate(err, unexpected(account, path, "object", NULL));
    json_object_put(raw);
    return obj;
}

json_object *ifs_kit_get_array(IfsHttp *http, const char *account, const char *path,
                               const char *hint, IfsError **err)
{
    json_object *body = ifs_http_get_json(http, path, err);

    if (body && !json_object_is_type(body, json_type_array)) {
        json_object_put(body);
        ifs_error_propagate(err, unexpected(account, path, "array", hint));
        return NULL;
    }
    return body;
}

char *ifs_kit_id_problem(json_object *obj, const char *key)
{
    json_object *v;
    char *shown, *problem;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string) ||
        ifs_json_string_field(obj, key))
        return NULL;
    shown = ifs_name_escape(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    problem = g_strdup_printf("%s '%s' holds a NUL byte", key, shown ? shown : "");
    g_free(shown);
    return problem;
}

void ifs_kit_append(GPtrArray *out, GPtrArray *from)
{
    for (guint i = 0; i < from->len; i++)
        g_ptr_array_add(out, ifs_resource_ref(g_ptr_array_index(from, i)));
}

json_object *ifs_kit_data_array(json_object *answer, const char *account, const char *path,
                                IfsError **err)
{
    json_object *data;

    if (json_object_object_get_ex(answer, "data", &data) &&
        json_object_is_type(data, json_type_array))
        return data;
    ifs_error_propagate(err,
                        ifs_error_new(EIO, 0, NULL,
                                      "account '%s': GET %s: the answer has no \"data\" array",
                                      account, path));
    return NULL;
}

IfsResource *ifs_kit_resource(const char *kind, json_object *item, const char *key)
{
    IfsResource *r = ifs_resource_new(kind, ifs_json_string_field(item, key), item);

    if (!r->id)
        r->problem = ifs_kit_id_problem(item, key);
    return r;
}

gboolean ifs_kit_read_pages(IfsHttp *http, const char *account, const IfsKitPager *pager,
                            gpointer ctx, IfsError **err)
{
    GHashTable *cursors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    IfsKitPage page = {.number = 1};
    gboolean ok = TRUE;

    while (ok && !page.done) {
        char *path;
        json_object *answer;

        if (page.number > pager->max_pages) {
            ifs_error_propagate(
                err,
                ifs_error_new(EIO, 0, NULL,
                              "account '%s': %s: more than %u pages; stopping rather than "
                              "paging forever",
                              account, pager->what, pager->max_pages));
            ok = FALSE;
            break;
        }
        page.next_cursor = NULL;
        page.nothing_new = FALSE;
        path = pager->path(ctx, &page);
        answer = ifs_http_get_json(http, path, err);
        ok = answer && pager->take(ctx, path, answer, &page, err);
        if (ok && !page.done && page.next_cursor) {
            if (!g_hash_table_contains(cursors, page.next_cursor)) {
                /* The table's copy: the answer it points into goes below. */
                char *copy = g_strdup(page.next_cursor);

                g_hash_table_add(cursors, copy);
                page.cursor = copy;
            } else {
                ifs_error_propagate(
                    err,
                    ifs_error_new(EIO, 0, NULL,
                                  "account '%s': GET %s: the API handed out cursor '%s' a "
                                  "second time; stopping rather than paging "
                                  "in circles",
                                  account, path, page.next_cursor));
                ok = FALSE;
            }
        }
        if (ok && !page.done && page.nothing_new) {
            ifs_error_propagate(
                err,
                ifs_error_new(EIO, 0, NULL,
                              "account '%s': GET %s: every item on this page was already "
                              "read; the API seems to ignore paging, stopping",
                              account, path));
            ok = FALSE;
        }
        page.number++;
        json_object_put(answer);
        g_free(path);
    }
    g_hash_table_destroy(cursors);
    return ok;
}

struct IfsKitKeptList {
    char *kind;
    GPtrArray *last; /* IfsResource* */
};

IfsKitKeptList *ifs_kit_kept_list_new(const char *kind)
{
    IfsKitKeptList *kept = g_new0(IfsKitKeptList, 1);

    kept->kind = g_strdup(kind);
    kept->last = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    return kept;
}

void ifs_kit_kept_list_free(IfsKitKeptList *kept)
{
    if (!kept)
        return;
    g_ptr_array_unref(kept->last);
    g_free(kept->kind);
    g_free(kept);
}

void ifs_kit_kept_list_restore(IfsKitKeptList *kept, GPtrArray *restored)
{
    for (guint i = 0; i < restored->len; i++) {
        IfsResource *r = g_ptr_array_index(restored, i);

        if (g_strcmp0(r->kind, kept->kind) == 0)
            g_ptr_array_add(kept->last, ifs_resource_ref(r));
    }
}

void ifs_kit_kept_list_replace(IfsKitKeptList *kept, GPtrArray *fresh)
{
    g_ptr_array_unref(kept->last);
    kept->last = fresh;
}

void ifs_kit_kept_list_failed(IfsKitKeptList *kept, const IfsError *failure, const char *hint,
                              IfsError **partial)
{
    char *text = g_strdup_printf("%s not refreshed, showing the last good list: %s%s", kept->kind,
                                 failure->message, hint ? hint : "");

    if (!*partial) {
        *partial = ifs_error_new(failure->errnum, failure->http_status, failure->code, "%s", text);
    } else {
        char *both = g_strconcat((*partial)->message, "; ", text, NULL);

        g_free((*partial)->message);
        (*partial)->message = both;
    }
    g_free(text);
}

void ifs_kit_kept_list_append(const IfsKitKeptList *kept, GPtrArray *out)
{
    ifs_kit_append(out, kept->last);
}

gpointer ifs_kit_copy_text(gconstpointer text)
{
    return g_strdup(text);
}

struct IfsKitIdMap {
    GMutex lock;
    GHashTable *table; /* under lock */
    IfsKitCopyFunc copy_value;
    GDestroyNotify free_value;
};

IfsKitIdMap *ifs_kit_id_map_new(IfsKitCopyFunc copy_value, GDestroyNotify free_value)
{
    IfsKitIdMap *map = g_new0(IfsKitIdMap, 1);

    g_mutex_init(&map->lock);
    map->copy_value = copy_value;
    map->free_value = free_value;
    map->table = ifs_kit_id_map_table(map);
    return map;
}

void ifs_kit_id_map_free(IfsKitIdMap *map)
{
    if (!map)
        return;
    g_hash_table_unref(map->table);
    g_mutex_clear(&map->lock);
    g_free(map);
}

GHashTable *ifs_kit_id_map_table(const IfsKitIdMap *map)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, map->free_value);
}

void ifs_kit_id_map_replace(IfsKitIdMap *map, GHashTable *table)
{
    GHashTable *old;

    g_mutex_lock(&map->lock);
    old = map->table;
    map->table = table;
    g_mutex_unlock(&map->lock);
    g_hash_table_unref(old); /* its values freed outside the lock */
}

void ifs_kit_id_map_set(IfsKitIdMap *map, const char *id, gpointer value)
{
    g_mutex_lock(&map->lock);
    if (value)
        g_hash_table_replace(map->table, g_strdup(id), value);
    else
        g_hash_table_remove(map->table, id);
    g_mutex_unlock(&map->lock);
}

gpointer ifs_kit_id_map_get(IfsKitIdMap *map, const char *id)
{
    gpointer value;

    g_mutex_lock(&map->lock);
    value = g_hash_table_lookup(map->table, id);
    value = value ? map->copy_value(value) : NULL;
    g_mutex_unlock(&map->lock);
    return value;
}

IfsError *ifs_kit_action_unsure(const char *account, const char *path, const char *api, int status,
                                const char *code, const char *problem, const char *advice)
{
    return ifs_error_new(EIO, status, code, "account '%s': POST %s: %s answered HTTP %d but %s; %s",
                         account, path, api, status, problem, advice);
}
