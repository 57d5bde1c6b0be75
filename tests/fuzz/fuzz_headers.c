/* Retry-After, X-RateLimit-Limit, -Remaining and -Reset as an answer
 * brings them (one line each, in that order; a fifth line "429" makes it
 * a 429), read and given to a request budget as the client does. */
#include "fuzz_util.h"

#include "../../src/http/answer.h"
#include "infrafs/budget.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size);
    char **lines = g_strsplit(text, "\n", 5);
    const char *line[5] = {NULL};
    const gint64 now_s = 1800000000, now_us = 1000000;
    IfsBudget *budget = ifs_budget_new(0, 0, 0, "fuzz");
    IfsBudgetStats stats;
    gint64 retry, limit, remaining, reset;

    for (guint i = 0; i < 5 && lines[i]; i++)
        line[i] = lines[i];
    retry = ifs_http_parse_retry_after(line[0], now_s);
    limit = ifs_http_parse_header_number(line[1]);
    remaining = ifs_http_parse_header_number(line[2]);
    reset = ifs_http_parse_rate_limit_reset(line[3]);
    if (retry < -1 || limit < -1 || remaining < -1 || reset < -1)
        __builtin_trap(); /* each says -1 when it cannot read the value */
    ifs_budget_answered(budget, limit, remaining, reset, line[4] && strcmp(line[4], "429") == 0,
                        now_s);
    ifs_budget_try_send(budget, IFS_PRIORITY_BACKGROUND, TRUE, now_us, now_s);
    ifs_budget_try_send(budget, IFS_PRIORITY_USER, TRUE, now_us, now_s);
    ifs_budget_exhausted_until(budget, now_s);
    ifs_budget_stats(budget, now_us, &stats);
    ifs_budget_free(budget);
    g_strfreev(lines);
    g_free(text);
    return 0;
}
