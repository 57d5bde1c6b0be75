/* Route GLib's log messages to stderr (foreground) or syslog (daemon). */
#include "infrafs/log.h"

#include <stdio.h>
#include <syslog.h>

static gboolean log_to_syslog;
static gboolean log_debug;

static int syslog_priority(GLogLevelFlags level)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return LOG_ERR;
    if (level & G_LOG_LEVEL_WARNING)
        return LOG_WARNING;
    if (level & G_LOG_LEVEL_DEBUG)
        return LOG_DEBUG;
    return LOG_INFO;
}

static const char *level_word(GLogLevelFlags level)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return "error: ";
    if (level & G_LOG_LEVEL_WARNING)
        return "warning: ";
    if (level & G_LOG_LEVEL_DEBUG)
        return "debug: ";
    return "";
}

static void ifs_log_handler(const char *domain, GLogLevelFlags level,
                            const char *message, gpointer data)
{
    (void)domain;
    (void)data;
    if ((level & G_LOG_LEVEL_DEBUG) && !log_debug)
        return;
    if (log_to_syslog)
        syslog(syslog_priority(level), "%s%s", level_word(level), message);
    else
        fprintf(stderr, "infrafs: %s%s\n", level_word(level), message);
}

void ifs_log_init(gboolean foreground, gboolean debug)
{
    log_debug = debug;
    log_to_syslog = !foreground;
    if (log_to_syslog)
        openlog("infrafs", LOG_PID, LOG_DAEMON);
    g_log_set_handler("infrafs", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL |
                      G_LOG_FLAG_RECURSION, ifs_log_handler, NULL);
}
