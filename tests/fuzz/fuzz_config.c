/* The config file, as infrafs reads one, then each account's provider
 * keys as its provider checks them when the account opens. */
#include "fuzz_util.h"
#include "script_http.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IfsError *err = NULL;
    IfsConfig *cfg;
    char *lower = g_ascii_strdown((const char *)data, (gssize)size);
    gboolean runs_commands = memmem(lower, strlen(lower), "command", 7) != NULL;

    g_free(lower);
    /* token_command runs a shell command: the fuzzer must not make up
     * commands to run on this machine. */
    if (runs_commands || memchr(data, '\0', size))
        return -1;
    cfg = fuzz_load_config((const char *)data, size, &err);
    ifs_error_free(err);
    if (!cfg)
        return 0;
    script_load(NULL, 0);
    for (guint i = 0; i < cfg->accounts->len; i++) {
        IfsAccountConfig *account = g_ptr_array_index(cfg->accounts, i);
        const IfsProviderType *type = ifs_provider_find(account->type);
        IfsHttp *http;
        gpointer state;

        if (!type)
            continue;
        http = ifs_provider_http_new(type, account);
        err = NULL;
        state = type->open(http, account, &err);
        if (state)
            type->close(state);
        ifs_error_free(err);
        ifs_http_free(http);
    }
    script_clear();
    ifs_config_free(cfg);
    return 0;
}
