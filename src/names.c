/* Escaping API data into entry names (doc/SEMANTICS.md §3.2). */
#include "infrafs/names.h"

#include <glib.h>

/* Longest entry name Linux accepts (NAME_MAX). */
#define IFS_NAME_MAX 255

static void append_escape(GString *out, unsigned char c)
{
    g_string_append_printf(out, "%%%02X", c);
}

/* '%' is escaped too, so the rule is reversible: every "%XX" in an escaped
 * name stands for exactly one byte of the original. */
gboolean ifs_name_escape_to(GString *out, const char *raw, size_t len)
{
    gboolean dots_only;

    g_string_truncate(out, 0);
    if (!raw || len == 0)
        return FALSE;
    dots_only = (len == 1 && raw[0] == '.') || (len == 2 && raw[0] == '.' && raw[1] == '.');
    for (size_t i = 0; i < len && out->len <= IFS_NAME_MAX; i++) {
        unsigned char c = (unsigned char)raw[i];

        /* Control characters too: `ls` must not hand a terminal escape
         * sequences or line breaks taken from an API. */
        if (c == '%' || c == '/' || c < 0x20 || c == 0x7f || dots_only)
            append_escape(out, c);
        else
            g_string_append_c(out, (char)c);
    }
    return out->len <= IFS_NAME_MAX;
}

char *ifs_name_escape(const char *raw, size_t len)
{
    GString *out = g_string_sized_new(len + 8);

    if (!ifs_name_escape_to(out, raw, len)) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}
