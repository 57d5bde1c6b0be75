/* JSON object -> resource directory, doc/SEMANTICS.md §4. */
#pragma once
#include <json-c/json.h>
#include "infrafs/node.h"

/* camelCase / PascalCase / kebab-case / spaces -> snake_case
 * ("createdAt" -> "created_at", "HTTPServer" -> "http_server"). */
char *ifs_snake_case(const char *name);

/* Scalar as file text: strings raw, numbers as JSON writes them,
 * true/false, "" for null; then one trailing '\n' (none for null). */
char *ifs_json_scalar_text(json_object *v, size_t *len_out);

/* Fill `dir` with one entry per field of `obj` under the rules of doc/SEMANTICS.md §4.2
 * (scalars -> files, objects -> subdirectories, arrays of scalars -> files
 * with one element per line, arrays of objects -> subdirectories named by
 * id / identifier / slug / name, else the index). Does not add `json`:
 * the caller does (ifs_json_pretty). A top-level field named as one of
 * `reserved` (NULL-terminated, may be NULL: the names the caller adds
 * itself) has the first byte of its name escaped: "operation" becomes
 * "%6Fperation". Names already present in `dir` win (extra files are added
 * first). Returns the number of fields skipped because their name could not
 * be made safe or collided; `problems` (may be NULL) receives one line per
 * skipped field. */
guint ifs_json_fill_dir(IfsDirBuilder *dir, json_object *obj, const char *const *reserved,
                        GString *problems);

/* Pretty-printed JSON text with a trailing newline. */
char *ifs_json_pretty(json_object *obj, size_t *len_out);
/* The length ifs_json_pretty gives for the object whose compact text
 * (ifs_json_compact) is `compact`, found by counting the whitespace the
 * pretty form adds, without parsing: 0 when the text is not such compact
 * text (whitespace between tokens, unbalanced), so the caller renders. */
size_t ifs_json_pretty_size(const char *compact, size_t len);
