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
/* A resource of `kind` with its id in item[key] (`item` taken). Without a
 * usable id the resource has id NULL, and says why when the id holds a
 * NUL byte (the caller may say more for other cases). */
IfsResource *ifs_kit_resource(const char *kind, json_object *item, const char *key);
