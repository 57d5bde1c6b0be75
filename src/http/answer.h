/* Reading what an API answered (src/http/answer.c), shared by the HTTP
 * client and the fuzz targets; the public part is in infrafs/http.h. */
#pragma once
#include "infrafs/http.h"

/* Of an error answer only the beginning can hold anything worth showing. */
#define IFS_HTTP_MAX_ERROR_BODY ((size_t)1024 * 1024)

/* "account 'hostup': GET /api/v2/vps" */
char *ifs_http_describe_request(const char *account, const char *method, const char *path);

/* A 2xx answer refused for what its JSON would cost: nothing of it is used. */
IfsError *ifs_http_refused_answer(const char *where, const char *method, int status,
                                  const char *why);

/* An X-RateLimit-Limit or -Remaining value; -1 when absent or not a number. */
gint64 ifs_http_parse_header_number(const char *value);

/* A 2xx answer's body as JSON, or NULL with *err saying why it is of no use
 * (not redacted: the caller hides the credential). */
json_object *ifs_http_answer_json(const IfsHttpResponse *resp, const char *account,
                                  const char *path, IfsError **err);
