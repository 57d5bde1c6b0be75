/* The disk cache of an account (hostup "fuzz" at http://127.0.0.1:9), as a
 * mount loads it: a file of format version 2 gets its length and checksum
 * filled in first (the fuzzer would hardly ever get them right, and a
 * file whose checksum fails is refused before anything else is read).
 * What loads is built into the tree with its saved mtimes. */
#include "fuzz_util.h"

#include "../../src/persist_private.h"
#include "infrafs/node.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static IfsConfig *config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] = "[fuzz]\ntype = hostup\nurl = http://127.0.0.1:9\n"
                               "token = fuzz-token\n";
    IfsError *err = NULL;

    (void)argc;
    (void)argv;
    config = fuzz_load_config(text, strlen(text), &err);
    if (!config) {
        g_printerr("fuzz_cache: %s\n", err->message);
        return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const IfsAccountConfig *account = g_ptr_array_index(config->accounts, 0);
    char path[] = "/tmp/infrafs-fuzz-cache-XXXXXX";
    guchar *copy = g_memdup2(data, size);
    IfsError *err = NULL;
    IfsCacheData *loaded;
    int fd = mkstemp(path);

    if (fd < 0)
        abort();
    if (size >= strlen(CACHE_FORMAT) && memcmp(copy, CACHE_FORMAT, strlen(CACHE_FORMAT)) == 0)
        persist_seal_v2(copy, size);
    if (write(fd, copy, size) != (ssize_t)size)
        abort();
    close(fd);
    loaded = ifs_cache_load(path, account, &err);
    unlink(path);
    if (loaded) {
        for (guint i = 0; i < loaded->resources->len; i++) {
            IfsResource *r = g_ptr_array_index(loaded->resources, i);
            char *key = g_strconcat(r->kind, "/", r->id, NULL);
            IfsNode *node = fuzz_build_resource(r);

            if (node)
                ifs_cache_restamp(node, g_hash_table_lookup(loaded->mtimes, key));
            ifs_node_unref(node);
            g_free(key);
        }
        ifs_cache_data_free(loaded);
    }
    ifs_error_free(err);
    g_free(copy);
    return 0;
}
