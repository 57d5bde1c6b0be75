/* DeployHQ's answers, read tolerantly (doc/SEMANTICS.md §10.3; every documented shape: §10.3.3, error bodies: §10.3.5). Exposed
 * for the unit tests; src/providers/deployhq.c is their only other user. */
#pragma once
#include <glib.h>
#include <json-c/json.h>
#include "infrafs/error.h"
#include "infrafs/provider.h"

/* A /hosted_resources item is a Managed VPS when its `kind` is absent, null
 * or "hosted_resource"; static sites ("hosted_website") are not. */
gboolean ifs_deployhq_is_vps(json_object *item);

/* The parsers append IfsResource* to `out` (kind "vps", "regions" or
 * "sizes"); an item without a usable identifier or slug becomes a resource
 * with id NULL and `problem` saying why (the store reports and skips it).
 * They return FALSE with EIO when the answer has none of the documented
 * shapes; `where` ("account 'x': GET /path") starts that message. */

/* GET /hosted_resources: a bare array; static sites are left out. */
gboolean ifs_deployhq_parse_hosted_resources(json_object *answer, const char *where, GPtrArray *out,
                                             IfsError **err);

/* GET /managed_hosting/regions: {"regions":[...]}, a bare array, or
 * {"grouped_regions":{"<group>":[...]}}. A grouped region gets a `group`
 * file (extra_files, so `json` stays what the API sent) unless it has a
 * `group` field of its own. Entries may be objects with a `slug`, or bare
 * slug strings; a group may also map slug -> name or slug -> object. */
gboolean ifs_deployhq_parse_regions(json_object *answer, const char *where, GPtrArray *out,
                                    IfsError **err);

/* GET /managed_hosting/sizes: {"sizes":[...]} or a bare array. */
gboolean ifs_deployhq_parse_sizes(json_object *answer, const char *where, GPtrArray *out,
                                  IfsError **err);
