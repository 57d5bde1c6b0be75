/* Waiting longer after each failure: the one rule the HTTP client's
 * retries, the refresher's retries and operation polling share. */
#pragma once
#include <glib.h>

/* `first`, then twice as long for each attempt after the first (attempt
 * 0 is the first), never more than `max` (in any one unit). */
static inline gint64 ifs_backoff(gint64 first, gint64 max, guint attempt)
{
    gint64 wait = first;

    for (guint i = 0; i < attempt && wait < max; i++)
        wait *= 2;
    return MIN(wait, max);
}
