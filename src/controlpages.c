/* Control files' cached pages, dropped and filled from threads of their
 * own; see controlpages.h. */
#include "infrafs/controlpages.h"

#include <string.h>

/* How long a truncation of a control file waits for its fill to start
 * (see ifs_control_pages_fill). */
#define CONTROL_FILL_WAIT_MS 1000
/* Threads that drop control files' pages, started as needed: each may wait
 * for one slow write. */
#define CONTROL_DROP_THREADS 8
/* Threads that fill them: a fill never waits for a write. */
#define CONTROL_FILL_THREADS 2

struct IfsControlPages {
    struct fuse_session *se;
    GThreadPool *drops; /* of uint64_t* node ids */
    GThreadPool *fills; /* of ControlFill* */
};

/* Where a fill of a control file's page stands; shared by the request
 * thread that waits for it and the thread that sends it, and freed by the
 * last of them. */
typedef enum { FILL_QUEUED, FILL_STARTED, FILL_DONE, FILL_CANCELLED } FillState;

typedef struct {
    gatomicrefcount ref;
    GMutex lock;
    GCond cond;
    FillState state;
    uint64_t id; /* the file's node id */
    char *commands;
    size_t size;
} ControlFill;

static void control_fill_unref(ControlFill *f)
{
    if (!g_atomic_ref_count_dec(&f->ref))
        return;
    g_mutex_clear(&f->lock);
    g_cond_clear(&f->cond);
    g_free(f->commands);
    g_free(f);
}

/* The kernel sends a write's bytes from the page cache, not from the
 * writer's buffer: a control file's page is filled only while that file's
 * inode is locked by a truncation we are answering (see ifs_control_pages_fill),
 * so that no fill can overwrite a command between write() and our reading
 * of it. Drops are safe at any time: a write in flight holds its page. */
void ifs_control_pages_drop(IfsControlPages *cp, uint64_t id)
{
    g_thread_pool_push(cp->drops, g_memdup2(&id, sizeof id), NULL);
}

/* Runs on a drop thread: it may wait for the page lock of a write still in
 * progress (the kernel holds it until our reply when the page was not
 * cached), which costs nobody anything there. */
static void drop_control_page(gpointer data, gpointer user)
{
    uint64_t *id = data;
    IfsControlPages *cp = user;

    fuse_lowlevel_notify_inval_inode(cp->se, *id, 0, 0);
    g_free(id);
}

static void fill_control_page(gpointer data, gpointer user)
{
    ControlFill *f = data;
    IfsControlPages *cp = user;
    gboolean send;

    g_mutex_lock(&f->lock);
    send = f->state == FILL_QUEUED;
    if (send)
        f->state = FILL_STARTED;
    g_mutex_unlock(&f->lock);
    if (send) {
        struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(f->size);

        bufv.buf[0].mem = f->commands;
        fuse_lowlevel_notify_store(cp->se, f->id, 0, &bufv, 0);
        g_mutex_lock(&f->lock);
        f->state = FILL_DONE;
        g_cond_broadcast(&f->cond);
        g_mutex_unlock(&f->lock);
    }
    control_fill_unref(f);
}

/* Caches the command list as one complete page before a truncating write
 * (`echo cmd > power`): the kernel then does not keep that page locked
 * during the write's API call, so readers meanwhile are not stalled.
 * Called while answering the truncation, when the kernel holds the inode
 * lock that every write takes: a fill must end before we answer, or never
 * happen. A fill not started within the bound (the fill threads busy) is
 * cancelled; a started one ends quickly, as no write can hold the page. */
void ifs_control_pages_fill(IfsControlPages *cp, const char *commands, size_t size, uint64_t id)
{
    ControlFill *f = g_new0(ControlFill, 1);
    gint64 until = g_get_monotonic_time() + CONTROL_FILL_WAIT_MS * G_TIME_SPAN_MILLISECOND;

    g_atomic_ref_count_init(&f->ref);
    g_atomic_ref_count_inc(&f->ref); /* one for us, one for the fill thread */
    g_mutex_init(&f->lock);
    g_cond_init(&f->cond);
    f->id = id;
    f->commands = g_memdup2(commands, size);
    f->size = size;
    g_thread_pool_push(cp->fills, f, NULL);
    g_mutex_lock(&f->lock);
    while (f->state == FILL_QUEUED && g_cond_wait_until(&f->cond, &f->lock, until))
        ;
    if (f->state == FILL_QUEUED)
        f->state = FILL_CANCELLED;
    while (f->state == FILL_STARTED)
        g_cond_wait(&f->cond, &f->lock);
    g_mutex_unlock(&f->lock);
    control_fill_unref(f);
}

IfsControlPages *ifs_control_pages_new(struct fuse_session *se)
{
    IfsControlPages *cp = g_new0(IfsControlPages, 1);

    cp->se = se;
    cp->drops = g_thread_pool_new(drop_control_page, cp, CONTROL_DROP_THREADS, FALSE, NULL);
    cp->fills = g_thread_pool_new(fill_control_page, cp, CONTROL_FILL_THREADS, FALSE, NULL);
    return cp;
}

void ifs_control_pages_free(IfsControlPages *cp)
{
    if (!cp)
        return;
    /* What is queued is done; no fill is queued once requests have ended. */
    g_thread_pool_free(cp->fills, FALSE, TRUE);
    g_thread_pool_free(cp->drops, FALSE, TRUE);
    g_free(cp);
}
