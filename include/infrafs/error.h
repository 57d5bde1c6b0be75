/* One error type for every layer: what the filesystem answers (errno),
 * what the API said (HTTP status, provider code) and a sentence for humans
 * that says what failed, where, and what to do. */
#pragma once
#include <glib.h>

typedef struct IfsError {
    int errnum; /* positive errno the filesystem answers with */
    int http_status; /* 0 when no HTTP answer was received */
    char *code; /* provider's machine-readable code, or NULL */
    char *message; /* human-readable, never contains a secret */
} IfsError;

IfsError *ifs_error_new(int errnum, int http_status, const char *code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
void ifs_error_free(IfsError *err);
IfsError *ifs_error_copy(const IfsError *err);
/* Store `err` in *dest if dest is non-NULL and empty, else free it. */
void ifs_error_propagate(IfsError **dest, IfsError *err);
/* Prefix the message with context ("refreshing account hostup: ..."). */
void ifs_error_prefix(IfsError *err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* doc/SEMANTICS.md §5.5's table: HTTP status -> errno (400/422 EINVAL, 401/403 EACCES,
 * 404 ENOENT, 409 EBUSY, 429 EAGAIN, 5xx EIO, anything else unexpected EIO). */
int ifs_errno_for_http_status(int status);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(IfsError, ifs_error_free)
