/* Small text forms shared by the store and the providers (src/text.c). */
#pragma once
#include <glib.h>

/* "2026-12-06T12:00:00Z" (UTC, whole seconds); "" for epoch 0 or before. */
char *ifs_iso_time(gint64 epoch);

/* An API's text for a one-line file (last_action) or a log: valid UTF-8,
 * control characters and runs of white space folded into one space, none
 * at either end, cut after `max_chars` characters with "..." added. `len`
 * -1: up to the NUL. NULL when nothing printable is left. */
char *ifs_one_line(const char *text, gssize len, guint max_chars);
