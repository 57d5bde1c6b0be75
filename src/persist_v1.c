/* Cache files of format version 1, one JSON document, as infrafs wrote them
 * before version 2: still read, so that an upgrade keeps the offline copy.
 * The next save replaces them with version 2 (persist.c). */
#include "persist_private.h"

#include "infrafs/jsonparse.h"

#include <stdio.h>

/* Levels of a version 1 file's own structure around each resource's
 * object. */
#define CACHE_WRAPPING_DEPTH 4

static const char *str_member(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static IfsCacheMtimes *mtimes_from_json(json_object *j)
{
    IfsCacheMtimes *m = g_new0(IfsCacheMtimes, 1);
    json_object *base, *other;

    if (json_object_object_get_ex(j, "base", &base))
        m->base = json_object_get_int64(base);
    if (json_object_object_get_ex(j, "other", &other) &&
        json_object_is_type(other, json_type_object)) {
        json_object_object_foreach(other, path, value)
        {
            if (json_object_is_type(value, json_type_int)) {
                gint64 *t = g_new(gint64, 1);
                *t = json_object_get_int64(value);
                if (!m->other)
                    m->other = persist_new_other_mtimes();
                g_hash_table_insert(m->other, g_strdup(path), t);
            }
        }
    }
    return m;
}

/* The file wraps each API object in four levels of its own (top,
 * resources, entry, object): whatever the API's nesting, which json-c
 * limited when it was received, must load back. The memory bound per byte
 * is the answers'; the file holds all of an account's data, so it has no
 * cap of its own beyond MAX_CACHE_BYTES. */
static const IfsJsonLimits cache_limits = {
    .max_depth = JSON_TOKENER_DEFAULT_DEPTH + CACHE_WRAPPING_DEPTH,
    .max_memory = 0,
};

/* Why the file's JSON would cost far more memory than its size, found by
 * weighing it in pieces before all of it is read into memory; NULL when it
 * would not (or cannot be opened: reading it whole says why). */
char *persist_v1_too_costly(const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[16384];
    IfsJsonScan scan;
    size_t n;
    char *why = NULL;

    if (!f)
        return NULL;
    ifs_json_scan_init(&scan, &cache_limits);
    while (!why && (n = fread(buf, 1, sizeof buf, f)) > 0)
        if (!ifs_json_scan_feed(&scan, buf, n))
            why = ifs_json_scan_describe(&scan);
    fclose(f);
    return why;
}

IfsCacheData *persist_load_v1(const char *path, const IfsAccountConfig *cfg, const char *text,
                              gsize len, IfsError **err)
{
    json_object *top, *list, *v;
    IfsJsonResult parsed;
    IfsCacheData *data;

    top = ifs_json_parse(text, len, &cache_limits, &parsed);
    if (parsed.status == IFS_JSON_TOO_COSTLY) {
        ifs_error_propagate(err, persist_foreign(path, cfg, parsed.why));
        return NULL;
    }
    if (!top || !json_object_is_type(top, json_type_object) ||
        g_strcmp0(str_member(top, "format"), CACHE_FORMAT) != 0 ||
        !json_object_object_get_ex(top, "version", &v) ||
        json_object_get_int(v) != CACHE_VERSION_JSON ||
        !json_object_object_get_ex(top, "resources", &list) ||
        !json_object_is_type(list, json_type_array)) {
        json_object_put(top);
        ifs_error_propagate(err,
                            persist_foreign(path, cfg,
                                            "it is corrupt or not an infrafs cache "
                                            "of this version"));
        return NULL;
    }
    if (g_strcmp0(str_member(top, "account"), cfg->name) != 0 ||
        g_strcmp0(str_member(top, "type"), cfg->type) != 0 ||
        g_strcmp0(str_member(top, "url"), cfg->url) != 0) {
        json_object_put(top);
        ifs_error_propagate(err,
                            persist_foreign(path, cfg,
                                            "it was saved for another account, "
                                            "type or url"));
        return NULL;
    }
    data = persist_cache_data_new();
    if (json_object_object_get_ex(top, "last_refresh", &v))
        data->last_refresh = json_object_get_int64(v);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *entry = json_object_array_get_idx(list, i);
        const char *kind = str_member(entry, "kind");
        const char *id = str_member(entry, "id");
        json_object *object, *extra, *m;
        IfsResource *r;

        /* Entries we cannot use are skipped, not fatal: the next refresh
         * replaces the file anyway. */
        if (!kind || !id || !json_object_object_get_ex(entry, "object", &object) ||
            !json_object_is_type(object, json_type_object))
            continue;
        r = ifs_resource_new(kind, id, json_object_get(object));
        if (json_object_object_get_ex(entry, "extra_files", &extra) &&
            json_object_is_type(extra, json_type_object))
            r->extra_files = json_object_get(extra);
        ifs_resource_seal(r);
        g_ptr_array_add(data->resources, r);
        if (json_object_object_get_ex(entry, "mtimes", &m) &&
            json_object_is_type(m, json_type_object))
            g_hash_table_replace(data->mtimes, g_strconcat(kind, "/", id, NULL),
                                 mtimes_from_json(m));
    }
    json_object_put(top);
    return data;
}
