/* What the fuzz targets share. */
#include "fuzz_util.h"

#include "infrafs/jsontree.h"
#include "infrafs/names.h"
#include "infrafs/node.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_or_abort(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data)
{
    (void)data;
    if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
        g_printerr("%s: %s\n", domain ? domain : "?", message);
        abort();
    }
}

/* Before any target's code runs. */
__attribute__((constructor)) static void quiet_logs(void)
{
    g_log_set_default_handler(log_or_abort, NULL);
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
}

void fuzz_split_line(const uint8_t *data, size_t size, char **first, const char **rest,
                     size_t *rest_len)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);

    *first = g_strndup(text, nl ? (size_t)(nl - text) : size);
    *rest = nl ? nl + 1 : text + size;
    *rest_len = nl ? size - (size_t)(nl - text) - 1 : 0;
}

IfsConfig *fuzz_load_config(const char *text, size_t len, IfsError **err)
{
    char path[] = "/tmp/infrafs-fuzz-config-XXXXXX";
    int fd = mkstemp(path); /* 0600, as a config with a token must be */
    IfsConfig *cfg = NULL;

    if (fd < 0)
        abort();
    if (write(fd, text, len) == (ssize_t)len)
        cfg = ifs_config_load(path, ifs_provider_schemas(), err);
    close(fd);
    unlink(path);
    return cfg;
}

IfsNode *fuzz_build_resource(IfsResource *r)
{
    IfsDirBuilder *b;
    json_object *object, *extra;
    GString *problems = g_string_new(NULL);
    static const char *const reserved[] = {"json", "last_action", "operation", NULL};
    char *name, *path;
    IfsNode *node;

    ifs_resource_seal(r);
    if (!r->id) {
        g_string_free(problems, TRUE);
        return NULL;
    }
    name = ifs_name_escape(r->id, strlen(r->id));
    path = g_strconcat("/", name ? name : "unnamed", NULL);
    b = ifs_dir_builder_new(path);
    object = ifs_resource_object(r);
    extra = ifs_resource_extra_files(r);
    if (extra) {
        json_object_object_foreach(extra, key, value)
        {
            char *safe = ifs_name_escape(key, strlen(key));

            if (safe && json_object_is_type(value, json_type_string))
                ifs_dir_builder_add_file(b, safe, json_object_get_string(value),
                                         strlen(json_object_get_string(value)), 0);
            g_free(safe);
        }
    }
    if (ifs_json_pretty_size(r->text, r->text_len) == 0) {
        size_t len;

        g_free(ifs_json_pretty(object, &len));
    }
    ifs_json_fill_dir(b, object, reserved, problems);
    node = ifs_dir_builder_finish(b, 0);
    json_object_put(object);
    json_object_put(extra);
    g_string_free(problems, TRUE);
    g_free(path);
    g_free(name);
    return node;
}
