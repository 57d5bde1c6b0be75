/* A pushed change: the first line is the signature header's value, the
 * rest the body. The signature is checked as the listener checks it, and
 * the body read by every provider that takes webhooks (the fuzzer cannot
 * sign, so the parsers see every body). */
#include "fuzz_util.h"

#include "../../src/webhook.h"

#include <string.h>

#define SECRET "fuzz-webhook-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header;
    const char *body;
    size_t len;

    fuzz_split_line(data, size, &header, &body, &len);
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
