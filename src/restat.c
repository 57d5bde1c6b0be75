/* Background re-stats of inodes the kernel marked stale (see restat.h).
 *
 * A re-stat holds the mount busy while its GETATTR is answered, and
 * `fusermount3 -u` refuses a busy mount. So re-stats run only while
 * another process is asking about the tree (a walk, which holds the mount
 * busy anyway) and stop within ACTIVE_US of its last request: an unmount
 * after a walk finds them stopped. A second walk keeps them running just
 * ahead of it, in the order the first walk left them. */
#include "infrafs/restat.h"

#include <fcntl.h>
#include <stdlib.h>
#include <glib.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

/* Re-stats wait this long after the last READ or listing: a first walk
 * keeps both cores busy, and each re-stat would lengthen it. Every inode
 * queued comes from one of them, so the wait also lets its requester take
 * the answer in: the kernel marks the inode stale only then, and would undo
 * a stat made before. */
#define QUIET_US 20000
/* ... and run only this long after another process's last request. */
#define ACTIVE_US 200
/* Inodes waiting, at most (8 bytes each); later ones are not re-stated. */
#define QUEUE_MAX (1u << 20)

struct IfsRestater {
    IfsStore *store;
    char *mountpoint;
    GThread *thread;
    _Atomic pid_t self; /* the thread's id, as requests name it */
    GMutex lock;
    GCond cond;
    /* Under lock: a ring of inos. */
    uint64_t *inos;
    guint head, len, cap;
    gboolean stopping;
    _Atomic gboolean waiting; /* for activity: wake it */
    _Atomic int64_t last_busy; /* monotonic µs of the last READ or listing */
    _Atomic int64_t last_foreign; /* ... of another process's last request */
};

static void restat(IfsRestater *r, uint64_t ino)
{
    char *path = ifs_store_path(r->store, ino);
    char *full;
    struct stat st;

    if (!path)
        return; /* forgotten meanwhile: nothing to keep fresh */
    full = *path ? g_strconcat(r->mountpoint, "/", path, NULL) : g_strdup(r->mountpoint);
    /* Errors are no concern: a gone entry needs no fresh attributes. */
    (void)fstatat(AT_FDCWD, full, &st, AT_SYMLINK_NOFOLLOW);
    g_free(full);
    g_free(path);
}

/* Under lock: whether a stat may go now; else how long to wait (-1: until
 * woken). */
static gint64 wait_before_stat(IfsRestater *r)
{
    gint64 now = g_get_monotonic_time();
    gint64 busy = atomic_load(&r->last_busy);

    if (now < busy + QUIET_US)
        return busy + QUIET_US - now;
    if (now <= atomic_load(&r->last_foreign) + ACTIVE_US)
        return 0;
    return -1;
}

static gpointer restater_main(gpointer data)
{
    IfsRestater *r = data;

    atomic_store(&r->self, (pid_t)gettid());
    g_mutex_lock(&r->lock);
    for (;;) {
        gint64 wait;
        uint64_t ino;

        if (r->stopping)
            break;
        if (r->len == 0) {
            /* A walk's worth of room is not kept for the next one. */
            g_clear_pointer(&r->inos, g_free);
            r->head = r->cap = 0;
            g_cond_wait(&r->cond, &r->lock);
            continue;
        }
        atomic_store(&r->waiting, TRUE);
        wait = wait_before_stat(r);
        if (wait < 0)
            g_cond_wait(&r->cond, &r->lock);
        else if (wait > 0)
            g_cond_wait_until(&r->cond, &r->lock, g_get_monotonic_time() + wait);
        atomic_store(&r->waiting, FALSE);
        if (wait != 0)
            continue;
        ino = r->inos[r->head];
        r->head = (r->head + 1) % r->cap;
        r->len--;
        g_mutex_unlock(&r->lock);
        restat(r, ino);
        g_mutex_lock(&r->lock);
    }
    g_mutex_unlock(&r->lock);
    return NULL;
}

IfsRestater *ifs_restater_new(IfsStore *store, const char *mountpoint)
{
    IfsRestater *r = g_new0(IfsRestater, 1);

    r->store = store;
    r->mountpoint = g_strdup(mountpoint);
    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    r->thread = g_thread_new("restat", restater_main, r);
    return r;
}

typedef struct {
    uint64_t ino;
    guint at;
} Queued;

static int by_ino_then_newest(const void *a, const void *b)
{
    const Queued *x = a, *y = b;

    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->at > y->at ? -1 : x->at < y->at;
}

static int by_position(const void *a, const void *b)
{
    const Queued *x = a, *y = b;

    return x->at < y->at ? -1 : x->at > y->at;
}

/* Under lock, with the ring full: keeps one entry per inode (the newest:
 * the order of the latest walk) and only inodes the kernel still holds.
 * Listings repeated with no walk to re-stat them (`find` after every
 * refresh) would otherwise grow the ring without end. */
static void compact(IfsRestater *r)
{
    Queued *q = g_new(Queued, r->len);
    guint kept = 0;

    for (guint i = 0; i < r->len; i++)
        q[i] = (Queued){r->inos[(r->head + i) % r->cap], i};
    qsort(q, r->len, sizeof *q, by_ino_then_newest);
    for (guint i = 0; i < r->len; i++)
        if ((i == 0 || q[i].ino != q[i - 1].ino) && ifs_store_kernel_holds(r->store, q[i].ino))
            q[kept++] = q[i];
    qsort(q, kept, sizeof *q, by_position);
    for (guint i = 0; i < kept; i++)
        r->inos[i] = q[i].ino;
    r->head = 0;
    r->len = kept;
    g_free(q);
}

void ifs_restater_touched(IfsRestater *r, uint64_t ino)
{
    if (!r || !ino)
        return;
    g_mutex_lock(&r->lock);
    if (r->len == r->cap) {
        if (r->len > 0)
            compact(r);
        /* Grown only when at least half of it is still worth keeping. */
        if (r->len >= r->cap / 2 && r->cap < QUEUE_MAX) {
            guint cap = r->cap ? r->cap * 2 : 1024;
            uint64_t *inos = g_new(uint64_t, cap);

            for (guint i = 0; i < r->len; i++)
                inos[i] = r->inos[(r->head + i) % r->cap];
            g_free(r->inos);
            r->inos = inos;
            r->head = 0;
            r->cap = cap;
        }
    }
    if (r->len < r->cap && !r->stopping) {
        guint at = (r->head + r->len) % r->cap;

        r->inos[at] = ino;
        if (r->len++ == 0)
            g_cond_signal(&r->cond);
    }
    g_mutex_unlock(&r->lock);
}

void ifs_restater_busy(IfsRestater *r)
{
    if (r)
        atomic_store_explicit(&r->last_busy, g_get_monotonic_time(), memory_order_relaxed);
}

void ifs_restater_request(IfsRestater *r, pid_t pid)
{
    if (!r || pid == atomic_load_explicit(&r->self, memory_order_relaxed))
        return;
    atomic_store(&r->last_foreign, g_get_monotonic_time());
    if (atomic_load(&r->waiting)) {
        g_mutex_lock(&r->lock);
        g_cond_signal(&r->cond);
        g_mutex_unlock(&r->lock);
    }
}

void ifs_restater_stop(IfsRestater *r)
{
    if (!r)
        return;
    g_mutex_lock(&r->lock);
    r->stopping = TRUE;
    r->len = 0;
    g_cond_signal(&r->cond);
    g_mutex_unlock(&r->lock);
}

void ifs_restater_free(IfsRestater *r)
{
    if (!r)
        return;
    ifs_restater_stop(r);
    g_thread_join(r->thread);
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
    g_free(r->inos);
    g_free(r->mountpoint);
    g_free(r);
}
