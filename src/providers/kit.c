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

IfsResource *ifs_kit_resource(const char *kind, json_object *item, const char *key)
{
    IfsResource *r = ifs_resource_new(kind, ifs_json_string_field(item, key), item);

    if (!r->id)
        r->problem = ifs_kit_id_problem(item, key);
    return r;
}
