/* How the daemon reports its startup (startup.c). Without -f the command
 * forks: the parent waits for the daemon's verdict on a pipe and exits 0
 * or 1 with it; the daemon reports once its first refresh is done (or
 * given up on), then detaches from the terminal. */
#pragma once
#include <glib.h>

#include "infrafs/store.h"

typedef struct {
    IfsStore *store;
    char *mountpoint;
    int timeout_s;
    gboolean foreground;
} Startup;

/* The parent's side: the verdict read from `fd`, printed; the exit status. */
int startup_parent_wait(int fd);
/* From now on the verdict goes to the parent through `fd`. */
void startup_report_to(int fd);
/* Whether a verdict is still owed to the parent. */
gboolean startup_reporting(void);
/* The verdict: to the waiting parent ('0' ok, '1' failed, then the text),
 * or printed when running in the foreground. Once only. */
void startup_report(gboolean ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Thread: waits for the first refresh (Startup.timeout_s at most; a
 * progress line on a terminal in the foreground), reports the mount,
 * tells systemd READY=1, and detaches stdio unless in the foreground. */
gpointer startup_main(gpointer data /* Startup* */);
