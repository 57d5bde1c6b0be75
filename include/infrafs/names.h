/* Entry names made from API data. Providers use them for what they report
 * (a name that cannot be shown), so they live apart from the tree. */
#pragma once
#include <glib.h>
#include <stddef.h>

/* Names (doc/SEMANTICS.md §3.2): escape a name taken from API data so it is a valid
 * entry: '%' -> %25, '/' -> %2F, control characters (NUL, newline, ESC, ...,
 * DEL) as %XX (%00, %0A, %1B, %7F), and "." / ".." have their dots as %2E.
 * Returns NULL for an empty name or one longer than 255 bytes after
 * escaping (the caller skips it and reports why). */
char *ifs_name_escape(const char *raw, size_t len);
/* The same into `out` (replacing what it held): FALSE where
 * ifs_name_escape returns NULL. For loops over many names. */
gboolean ifs_name_escape_to(GString *out, const char *raw, size_t len);
