/* The bounded JSON reader every answer goes through: the scan that weighs
 * an answer while it arrives (fed in pieces whose size the first byte
 * picks), the parse, and the compact text resources are kept as, whose
 * pretty size is counted without parsing it again. */
#include "fuzz_util.h"

#include "infrafs/jsonparse.h"
#include "infrafs/jsontree.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IfsJsonScan scan;
    IfsJsonResult result;
    json_object *json;
    size_t piece, compact_len, pretty_len;
    char *compact, *pretty;

    if (size == 0)
        return -1;
    piece = (size_t)data[0] % 16 + 1;
    data++;
    size--;
    ifs_json_scan_init(&scan, &ifs_json_answer_limits);
    for (size_t at = 0; at < size; at += piece)
        if (!ifs_json_scan_feed(&scan, (const char *)data + at, MIN(piece, size - at)))
            break;
    if (ifs_json_scan_refused(&scan))
        g_free(ifs_json_scan_describe(&scan));
    json = ifs_json_parse((const char *)data, size, &ifs_json_answer_limits, &result);
    if (!json)
        return 0;
    compact = ifs_json_compact(json, &compact_len);
    pretty = ifs_json_pretty(json, &pretty_len);
    /* The size a file's stat shows must be what reading it gives. */
    if (ifs_json_pretty_size(compact, compact_len) != pretty_len || strlen(pretty) != pretty_len)
        __builtin_trap();
    json_object_put(ifs_json_parse_compact(compact, compact_len));
    g_free(pretty);
    g_free(compact);
    json_object_put(json);
    return 0;
}
