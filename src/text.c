/* Small text forms shared by the store and the providers (text.h). */
#include "infrafs/text.h"

char *ifs_iso_time(gint64 epoch)
{
    GDateTime *dt;
    char *text;

    if (epoch <= 0)
        return g_strdup("");
    dt = g_date_time_new_from_unix_utc(epoch);
    text = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return text;
}
