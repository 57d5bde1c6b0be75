/* How the daemon reports its startup (startup.h): the parent that waits
 * for the forked daemon's verdict, the verdict itself, and the wait for
 * the first refresh that comes before it. */
#include "startup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static int report_fd = -1;

/* Tell the waiting parent how startup went ('0' ok, '1' failed), or print it
 * when running in the foreground. */
void startup_report(gboolean ok, const char *fmt, ...)
{
    va_list ap;
    char *text;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (report_fd >= 0) {
        char *msg = g_strdup_printf("%c%s", ok ? '0' : '1', text);
        ssize_t left = (ssize_t)strlen(msg);
        const char *p = msg;
        while (left > 0) {
            ssize_t n = write(report_fd, p, (size_t)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            p += n;
            left -= n;
        }
        close(report_fd);
        report_fd = -1;
        g_free(msg);
    } else if (ok) {
        g_message("%s", text);
    } else {
        fprintf(stderr, "infrafs: %s\n", text);
    }
    g_free(text);
}

/* The parent: wait for the child's report and exit with its outcome. */
int startup_parent_wait(int fd)
{
    GString *msg = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    int status;

    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        g_string_append_len(msg, buf, n);
    }
    close(fd);
    if (msg->len == 0) {
        fprintf(stderr,
                "infrafs: the filesystem process exited during startup; "
                "run with -f to see why\n");
        status = 1;
    } else if (msg->str[0] == '0') {
        printf("infrafs: %s\n", msg->str + 1);
        status = 0;
    } else {
        fprintf(stderr, "infrafs: %s\n", msg->str + 1);
        status = 1;
    }
    g_string_free(msg, TRUE);
    return status;
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        return;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

/* Waits for the first refresh of every account, at most timeout_s. In the
 * foreground on a terminal, a line says how far each has got meanwhile. */
static gboolean wait_first_refresh(Startup *st)
{
    gboolean show = st->foreground && isatty(STDERR_FILENO);
    gint64 until = g_get_monotonic_time() + (gint64)st->timeout_s * G_USEC_PER_SEC;
    gboolean all = FALSE, shown = FALSE;

    for (;;) {
        gint64 left_us = until - g_get_monotonic_time();
        /* Whole seconds, rounded up: the last one is waited in full. */
        gint64 left_s = (MAX(left_us, 0) + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
        char *line;

        all = ifs_store_wait_first_refresh(st->store, (int)MIN(left_s, 1));
        if (all || g_get_monotonic_time() >= until)
            break;
        line = show ? ifs_store_progress_line(st->store) : NULL;
        if (line) {
            fprintf(stderr, "\rinfrafs: first refresh: %s\033[K", line);
            fflush(stderr);
            shown = TRUE;
        }
        g_free(line);
    }
    if (shown)
        fputs("\r\033[K", stderr);
    return all;
}

gpointer startup_main(gpointer data)
{
    Startup *st = data;
    gboolean all = wait_first_refresh(st);
    char *summary = ifs_store_summary(st->store);
    char *status = g_strdup_printf("mounted at %s%s (%s)", st->mountpoint,
                                   all ? "" : "; first refresh still running", summary);

    startup_report(TRUE, "%s", status);
    /* Under systemd (Type=notify): ready at the moment the command would
     * return, the tree populated or the wait for it given up. Nothing
     * without NOTIFY_SOCKET. */
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    g_free(status);
    g_free(summary);
    if (!st->foreground)
        detach_stdio();
    return NULL;
}

void startup_report_to(int fd)
{
    report_fd = fd;
}

gboolean startup_reporting(void)
{
    return report_fd >= 0;
}
