/* Route GLib's log messages to stderr (foreground) or syslog (daemon), at
 * or above the level chosen with -o log_level=. */
#include "infrafs/log.h"

#include <stdio.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static gboolean log_to_syslog;
static gboolean log_to_journal; /* stderr is systemd's journal stream */
static int log_max_priority = LOG_INFO;

static int syslog_priority(GLogLevelFlags level)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return LOG_ERR;
    if (level & G_LOG_LEVEL_WARNING)
        return LOG_WARNING;
    if (level & G_LOG_LEVEL_MESSAGE)
        return LOG_NOTICE;
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

static void ifs_log_handler(const char *domain, GLogLevelFlags level, const char *message,
                            gpointer data)
{
    int priority = syslog_priority(level);

    (void)domain;
    (void)data;
    if (priority > log_max_priority)
        return;
    if (log_to_syslog)
        syslog(priority, "%s%s", level_word(level), message);
    else if (log_to_journal) /* "<N>": the journal's priority for the line */
        fprintf(stderr, "<%d>infrafs: %s%s\n", priority, level_word(level), message);
    else
        fprintf(stderr, "infrafs: %s%s\n", level_word(level), message);
}

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected
 * stderr to; a stderr redirected elsewhere since does not match. */
static gboolean stderr_is_journal(void)
{
    const char *stream = g_getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return stream && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino;
}

/* The syslog priority a -o log_level= name stands for, or -1. */
static int level_priority(const char *name)
{
    static const struct {
        const char *name;
        int priority;
    } levels[] = {
        {"error",   LOG_ERR    },
        {"warning", LOG_WARNING},
        {"notice",  LOG_NOTICE },
        {"info",    LOG_INFO   },
        {"debug",   LOG_DEBUG  },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++)
        if (g_strcmp0(name, levels[i].name) == 0)
            return levels[i].priority;
    return -1;
}

gboolean ifs_log_level_valid(const char *name)
{
    return level_priority(name) >= 0;
}

void ifs_log_init(gboolean foreground, gboolean debug, const char *level)
{
    log_max_priority = level ? level_priority(level) : debug ? LOG_DEBUG : LOG_INFO;
    log_to_syslog = !foreground;
    log_to_journal = foreground && stderr_is_journal();
    if (log_to_syslog)
        openlog("infrafs", LOG_PID, LOG_DAEMON);
    g_log_set_handler("infrafs", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION,
                      ifs_log_handler, NULL);
}
