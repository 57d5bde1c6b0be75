#include "test_util.h"

#include <glib.h>
#include <glib/gstdio.h>

void test_remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL); /* NULL for a file or a link to one */
    const char *name;

    if (d && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        while ((name = g_dir_read_name(d))) {
            char *child = g_build_filename(path, name, NULL);

            test_remove_tree(child);
            g_free(child);
        }
    }
    if (d)
        g_dir_close(d);
    g_remove(path);
}
