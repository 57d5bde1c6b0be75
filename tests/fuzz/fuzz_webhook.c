/* A pushed change: the first line is the signature header's value, the
 * rest the body. The signature is checked as the listener checks it, and
 * the body read by every provider that takes webhooks (the fuzzer cannot
 * sign, so the parsers see every body). */
#include "fuzz_util.h"

#include "../../src/webhook.h"

#include <string.h>

#define SECRET "fuzz-webhook-secret"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    char *header = g_strndup(text, nl ? (size_t)(nl - text) : size);
    const char *body = nl ? nl + 1 : text + size;
    size_t len = nl ? size - (size_t)(nl - text) - 1 : 0;

    webhook_signature_ok(SECRET, header, body, len);
    for (const IfsProviderType *const *p = ifs_provider_all(); *p; p++) {
        char *kind = NULL, *id = NULL, *delivery = NULL;
        IfsError *err = NULL;

        if (!(*p)->webhook)
            continue;
        if ((*p)->webhook->parse(body, len, &kind, &id, &delivery, &err) == !!err)
            __builtin_trap(); /* refused with a reason, or read */
        if (kind && !id)
            __builtin_trap(); /* what to read again names one resource */
        g_free(kind);
        g_free(id);
        g_free(delivery);
        ifs_error_free(err);
    }
    g_free(header);
    return 0;
}
