/* Small text forms shared by the store and the providers (src/text.c). */
#pragma once
#include <glib.h>

/* "2026-12-06T12:00:00Z" (UTC, whole seconds); "" for epoch 0 or before. */
char *ifs_iso_time(gint64 epoch);
