/* One API answer, read as the HTTP client reads it: the first line is
 * "NNN content/type", the rest the body. An error status goes through
 * every provider's error reader (IfsHttpErrorReader) and the generic
 * reading alone; a 2xx body is read as the JSON a GET expects. */
#include "fuzz_util.h"

#include "../../src/http/answer.h"
#include "infrafs/provider.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IfsHttpResponse resp = {0};
    IfsError *err = NULL;
    json_object *json;
    guint64 status = 0;
    char *first, *space;
    const char *body;
    size_t len;

    fuzz_split_line(data, size, &first, &body, &len);
    space = strchr(first, ' ');
    if (space)
        first[space - first] = '\0';
    g_ascii_string_to_unsigned(first, 10, 100, 599, &status, NULL);
    resp.status = status ? (int)status : 200;
    resp.content_type = space ? (char *)space + 1 : NULL;
    resp.body = g_strndup(body, len);
    resp.body_len = len;
    if (resp.status >= 200 && resp.status <= 299) {
        json = ifs_http_answer_json(&resp, "fuzz", "/path", &err);
        if (!json == !err)
            __builtin_trap(); /* a value, or why there is none */
        json_object_put(json);
    } else {
        const IfsProviderType *const *p = ifs_provider_all();

        /* Each provider's reader, then (at the list's NULL) none. */
        do {
            err = ifs_http_error_from_response(resp.status, resp.content_type, resp.body,
                                               resp.body_len, "GET", "/path", "fuzz",
                                               *p ? (*p)->error_reader : NULL);
            if (!err || !g_utf8_validate(err->message, -1, NULL) || strchr(err->message, '\n'))
                __builtin_trap(); /* messages end up in one-line files */
            g_clear_pointer(&err, ifs_error_free);
        } while (*p++);
    }
    ifs_error_free(err);
    g_free(resp.body);
    g_free(first);
    return 0;
}
