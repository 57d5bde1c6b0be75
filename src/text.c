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

char *ifs_one_line(const char *text, gssize len, guint max_chars)
{
    char *valid = g_utf8_make_valid(text, len);
    GString *out = g_string_new(NULL);
    gboolean space_pending = FALSE;
    guint chars = 0;
    const char *p;

    for (p = valid; *p && chars < max_chars; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (g_unichar_isspace(c) || g_unichar_iscntrl(c)) {
            space_pending = out->len > 0;
            continue;
        }
        if (space_pending) {
            g_string_append_c(out, ' ');
            chars++;
            space_pending = FALSE;
        }
        g_string_append_unichar(out, c);
        chars++;
    }
    if (*p)
        g_string_append(out, "...");
    g_free(valid);
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}
