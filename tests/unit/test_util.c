#include <pwd.h>
#include <unistd.h>
#include "test_util.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

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

IfsNode *tree_node(const IfsNode *root, const char *path)
{
    char **parts = g_strsplit(path, "/", -1);
    const IfsNode *n = root;

    for (guint i = 0; parts[i] && n; i++)
        if (*parts[i])
            n = n->type == IFS_NODE_DIR ? ifs_node_child(n, parts[i]) : NULL;
    g_strfreev(parts);
    return n ? ifs_node_ref((IfsNode *)n) : NULL;
}

char *node_text(const IfsNode *n)
{
    char *owned = NULL;
    const char *bytes;
    char *text;

    g_assert_true(ifs_node_has_content(n));
    bytes = ifs_node_bytes(n, &owned);
    g_assert_true(bytes || ifs_node_size(n) == 0);
    if (owned)
        g_assert_cmpuint(strlen(owned), ==, ifs_node_size(n));
    text = g_strndup(bytes ? bytes : "", ifs_node_size(n));
    g_assert_cmpuint(strlen(text), ==, ifs_node_size(n));
    g_free(owned);
    return text;
}

char *tree_text(const IfsNode *root, const char *path)
{
    IfsNode *n = tree_node(root, path);
    char *text;

    if (!n)
        g_error("no node at %s", path);
    text = node_text(n);
    ifs_node_unref(n);
    return text;
}

char *tree_names(const IfsNode *root, const char *path)
{
    IfsNode *dir = tree_node(root, path);
    GString *out = g_string_new(NULL);

    if (!dir)
        g_error("no directory at %s", path);
    g_assert_cmpint(dir->type, ==, IFS_NODE_DIR);
    for (guint i = 0; i < ifs_node_n_children(dir); i++)
        g_string_append_printf(out, "%s%s", i ? " " : "", ifs_node_name(ifs_node_child_at(dir, i)));
    ifs_node_unref(dir);
    return g_string_free(out, FALSE);
}

char *test_writer_end(void)
{
    struct passwd *pw = getpwuid(getuid());

    if (pw)
        return g_strdup_printf("by %s (uid %u)\n", pw->pw_name, (unsigned)getuid());
    return g_strdup_printf("by uid %u\n", (unsigned)getuid());
}

void assert_contains(const char *text, const char *part)
{
    if (!text || !strstr(text, part))
        g_error("expected \"%s\" in \"%s\"", part, text ? text : "(null)");
}
