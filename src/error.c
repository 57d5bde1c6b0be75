/* The one error type shared by every layer, and the errno table of doc/SEMANTICS.md §5.5. */
#include "infrafs/error.h"

#include <errno.h>
#include <stdarg.h>

IfsError *ifs_error_new(int errnum, int http_status, const char *code, const char *fmt, ...)
{
    IfsError *err = g_new0(IfsError, 1);
    va_list ap;

    err->errnum = errnum > 0 ? errnum : EIO;
    err->http_status = http_status;
    err->code = g_strdup(code);
    va_start(ap, fmt);
    err->message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return err;
}

void ifs_error_free(IfsError *err)
{
    if (!err)
        return;
    g_free(err->code);
    g_free(err->message);
    g_free(err);
}

IfsError *ifs_error_copy(const IfsError *err)
{
    if (!err)
        return NULL;
    return ifs_error_new(err->errnum, err->http_status, err->code, "%s", err->message);
}

void ifs_error_propagate(IfsError **dest, IfsError *err)
{
    if (dest && !*dest)
        *dest = err;
    else
        ifs_error_free(err);
}

void ifs_error_prefix(IfsError *err, const char *fmt, ...)
{
    va_list ap;
    char *prefix;
    char *joined;

    if (!err)
        return;
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    joined = g_strconcat(prefix, err->message, NULL);
    g_free(prefix);
    g_free(err->message);
    err->message = joined;
}

int ifs_errno_for_http_status(int status)
{
    switch (status) {
    case 400:
    case 422:
        return EINVAL;
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        return EBUSY;
    case 429:
        return EAGAIN;
    default:
        return EIO; /* 5xx, and anything a client cannot act on */
    }
}
