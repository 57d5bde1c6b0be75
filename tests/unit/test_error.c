/* doc/SEMANTICS.md §5.5: HTTP status -> errno, and the error type's helpers. */
#include <errno.h>

#include "infrafs/error.h"

static void test_status_table(void)
{
    static const struct {
        int status;
        int errnum;
    } table[] = {
        {400, EINVAL},
        {422, EINVAL},
        {401, EACCES},
        {403, EACCES},
        {404, ENOENT},
        {409, EBUSY },
        {429, EAGAIN},
        {500, EIO   },
        {502, EIO   },
        {503, EIO   },
        {418, EIO   },
        {302, EIO   },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++)
        g_assert_cmpint(ifs_errno_for_http_status(table[i].status), ==, table[i].errnum);
}

static void test_new_copy_prefix(void)
{
    g_autoptr(IfsError) err = ifs_error_new(ENOENT, 404, "vps_not_found", "VPS %s is gone", "v1");
    g_autoptr(IfsError) copy = NULL;

    g_assert_cmpint(err->errnum, ==, ENOENT);
    g_assert_cmpint(err->http_status, ==, 404);
    g_assert_cmpstr(err->code, ==, "vps_not_found");
    g_assert_cmpstr(err->message, ==, "VPS v1 is gone");
    ifs_error_prefix(err, "account '%s': ", "hostup");
    g_assert_cmpstr(err->message, ==, "account 'hostup': VPS v1 is gone");
    copy = ifs_error_copy(err);
    g_assert_cmpstr(copy->message, ==, err->message);
    g_assert_cmpstr(copy->code, ==, err->code);
}

static void test_errnum_never_zero(void)
{
    g_autoptr(IfsError) err = ifs_error_new(0, 0, NULL, "x");

    /* An error must fail the syscall: 0 would report success. */
    g_assert_cmpint(err->errnum, ==, EIO);
}

static void test_propagate(void)
{
    IfsError *dest = NULL;

    ifs_error_propagate(&dest, ifs_error_new(EIO, 0, NULL, "first"));
    ifs_error_propagate(&dest, ifs_error_new(EIO, 0, NULL, "second")); /* freed, not kept */
    g_assert_cmpstr(dest->message, ==, "first");
    ifs_error_propagate(NULL, ifs_error_new(EIO, 0, NULL, "dropped"));
    ifs_error_free(dest);
}

int main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/error/status-table", test_status_table);
    g_test_add_func("/error/new-copy-prefix", test_new_copy_prefix);
    g_test_add_func("/error/errnum-never-zero", test_errnum_never_zero);
    g_test_add_func("/error/propagate", test_propagate);
    return g_test_run();
}
