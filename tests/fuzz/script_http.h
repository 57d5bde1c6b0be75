/* A scripted HTTP client for the fuzz targets (script_http.c). */
#pragma once
#include "infrafs/http.h"

/* Between two answers of a script: a line no API answer of ours holds. */
#define SCRIPT_SEPARATOR "\n%%infrafs-answer%%\n"

/* The answers requests take from now, in order (copied). */
void script_load(const guint8 *data, size_t size);
void script_clear(void);
/* The next answer's body, taken as a request would (the webhook body of a
 * provider's run, say); FALSE when none is left. */
gboolean script_next_body(const char **body, size_t *len);
