/* A log of lines (see linelog.h): the file under cache_dir, its rotation,
 * and the node the tree shows. */
#include "infrafs/linelog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct IfsLineLog {
    char *name; /* of the node */
    char *path; /* NULL: memory only */
    char *old_path; /* path.1: the generation before */
    gsize max;

    /* Appends run one at a time, the file's writes in their order. */
    GMutex append_lock;
    int fd; /* -1: not open (yet, or after a failure) */
    gboolean failing; /* a write failed; warned once until one works */
    gboolean torn; /* the file does not end with a newline */
    gboolean oversize; /* it holds more than max (a bound made smaller) */

    /* The publisher takes the node while a slow disk holds an append. */
    GMutex node_lock;
    IfsNode *node;
};

/* The last `max` bytes of the file, from a line's start; "" when there is
 * no file. */
static char *load_tail(const char *path, gsize max, gsize *len, time_t *mtime, gboolean *oversize)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    char *text;
    gsize want, got = 0;

    *len = 0;
    *mtime = 0;
    *oversize = FALSE;
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) /* else none yet, said at the write */
            g_warning("log %s: cannot read it: %s; its earlier lines are not shown in "
                      "the tree",
                      path, g_strerror(errno));
        return g_strdup("");
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_warning("log %s: not a regular file; move it away to keep a log there", path);
        close(fd);
        return g_strdup("");
    }
    want = (gsize)MIN((guint64)st.st_size, (guint64)max);
    *oversize = want < (gsize)st.st_size;
    text = g_malloc(want + 2); /* and a newline, if the last line was cut */
    if (lseek(fd, st.st_size - (off_t)want, SEEK_SET) >= 0) {
        while (got < want) {
            ssize_t n = read(fd, text + got, want - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (gsize)n;
        }
    }
    close(fd);
    text[got] = '\0';
    if (want < (gsize)st.st_size) { /* cut: start at the first whole line */
        const char *nl = memchr(text, '\n', got);
        gsize skip = nl ? (gsize)(nl + 1 - text) : got;
        memmove(text, text + skip, got - skip + 1);
        got -= skip;
    }
    *len = got;
    *mtime = st.st_mtime;
    return text;
}

IfsLineLog *ifs_line_log_open(const char *name, const char *path, gsize max_bytes)
{
    IfsLineLog *log = g_new0(IfsLineLog, 1);
    gsize len = 0;
    time_t mtime = 0;
    char *text;

    log->max = max_bytes ? MAX(max_bytes, IFS_LINE_LOG_MIN_MAX) : IFS_LINE_LOG_DEFAULT_MAX;
    log->fd = -1;
    log->name = g_strdup(name);
    g_mutex_init(&log->append_lock);
    g_mutex_init(&log->node_lock);
    if (path) {
        log->path = g_strdup(path);
        log->old_path = g_strconcat(path, ".1", NULL);
        text = load_tail(path, log->max, &len, &mtime, &log->oversize);
    } else {
        text = g_strdup("");
    }
    log->torn = len > 0 && text[len - 1] != '\n';
    if (log->torn) /* shown ended, as it will be written */
        text[len++] = '\n';
    log->node = ifs_node_new_file(log->name, text, len, mtime);
    g_free(text);
    return log;
}

void ifs_line_log_free(IfsLineLog *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    ifs_node_unref(log->node);
    g_mutex_clear(&log->append_lock);
    g_mutex_clear(&log->node_lock);
    g_free(log->name);
    g_free(log->path);
    g_free(log->old_path);
    g_free(log);
}

static gboolean write_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return FALSE;
        }
        data += n;
        len -= (gsize)n;
    }
    return TRUE;
}

static void report_failure(IfsLineLog *log, const char *what)
{
    if (!log->failing)
        g_warning("log %s: cannot %s: %s; its lines are kept in /%s until it works "
                  "again (is cache_dir writable, the disk full?)",
                  log->path, what, g_strerror(errno), log->name);
    log->failing = TRUE;
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}

/* The file's current generation, open for appending. append_lock held. */
static gboolean open_file(IfsLineLog *log)
{
    char *dir;

    if (log->fd >= 0)
        return TRUE;
    dir = g_path_get_dirname(log->path);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_free(dir);
        report_failure(log, "create its directory");
        return FALSE;
    }
    g_free(dir);
    log->fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log->fd < 0) {
        report_failure(log, "open it");
        return FALSE;
    }
    return TRUE;
}

/* FILE becomes FILE.1 and the next line begins a new FILE. append_lock
 * held. A file that cannot be renamed keeps growing rather than lose what
 * it holds. */
static void rotate_file(IfsLineLog *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
    log->torn = FALSE;
    log->oversize = FALSE;
    if (rename(log->path, log->old_path) != 0 && errno != ENOENT)
        report_failure(log, "rotate it");
}

static void write_line(IfsLineLog *log, const char *line, gsize len)
{
    if (!open_file(log))
        return;
    if (log->torn) { /* a line cut short, by a crash: end it first */
        if (!write_all(log->fd, "\n", 1)) {
            report_failure(log, "write it");
            return;
        }
        log->torn = FALSE;
    }
    if (!write_all(log->fd, line, len)) {
        report_failure(log, "write it");
        return;
    }
    if (log->failing)
        g_message("log %s: written again", log->path);
    log->failing = FALSE;
}

void ifs_line_log_append(IfsLineLog *log, const char *lines)
{
    gsize len = strlen(lines);
    gsize shown, kept, skip = 0;
    char *text;
    IfsNode *fresh, *old;

    if (len == 0)
        return;
    g_mutex_lock(&log->append_lock);
    shown = ifs_node_size(log->node); /* only appends change it: stable here */
    kept = log->oversize || (shown > 0 && shown + len > log->max) ? 0 : shown;
    if (log->path) {
        if (kept < shown || log->oversize)
            rotate_file(log);
        write_line(log, lines, len);
    }
    if (len > log->max) { /* more than a generation at once: show its last lines */
        const char *nl = memchr(lines + len - log->max, '\n', log->max);
        skip = nl && (gsize)(nl + 1 - lines) < len ? (gsize)(nl + 1 - lines) : 0;
        log->oversize = log->path != NULL; /* the file is over: start anew next time */
    }
    text = g_malloc(kept + len - skip);
    memcpy(text, ifs_node_data(log->node), kept);
    memcpy(text + kept, lines + skip, len - skip);
    fresh = ifs_node_new_file(log->name, text, kept + len - skip, 0);
    g_free(text);
    g_mutex_lock(&log->node_lock);
    old = log->node;
    log->node = fresh;
    g_mutex_unlock(&log->node_lock);
    g_mutex_unlock(&log->append_lock);
    ifs_node_unref(old);
}

IfsNode *ifs_line_log_node(IfsLineLog *log)
{
    IfsNode *node;

    g_mutex_lock(&log->node_lock);
    node = ifs_node_ref(log->node);
    g_mutex_unlock(&log->node_lock);
    return node;
}
