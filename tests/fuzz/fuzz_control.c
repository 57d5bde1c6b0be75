/* A write to a control file: the first byte picks which file (of every
 * provider's), the rest is what was written. */
#include "fuzz_util.h"

#include "infrafs/control.h"

#include <string.h>

static GPtrArray *specs; /* const IfsControlSpec*, every provider's */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    specs = g_ptr_array_new();
    for (const IfsProviderType *const *p = ifs_provider_all(); *p; p++)
        for (const IfsControlSpec *spec = (*p)->controls; spec && spec->kind; spec++)
            g_ptr_array_add(specs, (gpointer)spec);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const IfsControlSpec *spec;
    IfsError *err = NULL;
    IfsCommand *cmd;

    if (size == 0)
        return -1;
    spec = g_ptr_array_index(specs, data[0] % specs->len);
    cmd = ifs_control_parse(spec, (const char *)data + 1, size - 1, &err);
    if (cmd) {
        g_free(ifs_command_to_string(cmd));
        ifs_command_free(cmd);
    }
    ifs_error_free(err);
    return 0;
}
