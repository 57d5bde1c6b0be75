/* Pushes files' bytes into the kernel's page cache ahead of reads (see
 * pagepush.h), on one thread of its own.
 *
 * Never stale: a push pins the current snapshot (no newer one is swapped
 * in meanwhile) while it takes nodes from it and stores their bytes. The
 * publisher invalidates what changed only after its swap, so a store of
 * bytes that a newer snapshot replaced is always dropped before anyone
 * is told the refresh is done. */
#include "infrafs/pagepush.h"

#include <string.h>

/* Directories already pushed, remembered up to this many, and only for
 * the snapshot they were pushed from; then forgotten all at once (a second
 * push of a directory costs time, never correctness, and nothing is kept
 * for directories that are gone). A walk reads a directory's files within
 * a few dozen listings of its own, so a few thousand are plenty; each
 * costs about 70 bytes. */
#define PUSHED_DIRS_MAX 4096
/* Larger files are left to READ: one store is one message. */
#define PUSH_FILE_MAX (1024 * 1024)
/* After a job, the thread watches the queue this long before it sleeps.
 * A walk's listings end every 100-200 µs. Waking a sleeping thread costs
 * its waker a wake-up of an idle CPU, which on a VM costs 20-30 µs of CPU
 * (an IPI, a VM exit), and the lister waits for it. Watching keeps that
 * off a cold `grep -r`'s path: 4.7-4.9 s -> 3.9 s at 10,000 resources
 * (2-core VM), for 1.7 s more CPU of this thread during the walk, and
 * none when nothing is pushed. */
#define SPIN_US 100

typedef enum { JOB_SIBLINGS, JOB_LISTED, JOB_CHANGED, JOB_STOP } JobKind;

typedef struct {
    JobKind kind;
    uint64_t id; /* a node id */
    fuse_req_t req; /* JOB_LISTED: the listing's end, answered after the push */
} Job;

struct IfsPagePusher {
    IfsStore *store;
    struct fuse_session *se;
    GAsyncQueue *jobs; /* of Job*, taken by one thread, so pushes never race */
    gint queued; /* jobs in `jobs`, what the thread watches */
    GThread *thread;
    GHashTable *pushed_dirs; /* node ids of directories pushed; pusher thread only */
    guint64 pushed_generation; /* the snapshot they were pushed from */
    gint stopping; /* queued jobs are dropped: requests are no longer served */
};

/* Regular files, but for empty and large ones. */
static gboolean is_pushable(const IfsNode *n)
{
    return n->type == IFS_NODE_FILE && ifs_node_size(n) > 0 && ifs_node_size(n) <= PUSH_FILE_MAX;
}

/* Stores a pushable file's whole content (nothing for other nodes). A
 * store the kernel refuses (it forgot the inode) costs nothing: the file
 * is READ as usual. */
static void store_file(IfsPagePusher *p, const IfsNode *file, uint64_t id)
{
    size_t size = ifs_node_size(file);
    struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);
    char *owned;

    if (!is_pushable(file))
        return;
    bufv.buf[0].mem = (void *)ifs_node_bytes(file, &owned);
    fuse_lowlevel_notify_store(p->se, id, 0, &bufv, 0);
    g_free(owned);
}

/* The files of `dir` (node id `dir_id`) the kernel may hold inodes for,
 * except `file_id` (being answered by its READ). A store into an inode the
 * kernel does not have fails anyway: the check saves the message. */
static void push_files_of(IfsPagePusher *p, IfsNode *dir, uint64_t dir_id, uint64_t file_id)
{
    if (!dir)
        return;
    /* Pinned: the generation is that of `dir`'s snapshot. */
    if (g_hash_table_size(p->pushed_dirs) >= PUSHED_DIRS_MAX ||
        p->pushed_generation != ifs_store_generation(p->store)) {
        g_hash_table_remove_all(p->pushed_dirs);
        p->pushed_generation = ifs_store_generation(p->store);
    }
    if (dir->type != IFS_NODE_DIR ||
        !g_hash_table_add(p->pushed_dirs, g_memdup2(&dir_id, sizeof dir_id))) {
        ifs_node_unref(dir);
        return;
    }
    for (guint i = 0; i < ifs_node_n_children(dir); i++) {
        const IfsNode *c = ifs_node_child_at(dir, i);
        uint64_t id = c->type == IFS_NODE_FILE ? ifs_store_child_id(p->store, dir_id, c) : 0;

        if (id && id != file_id)
            store_file(p, c, id);
    }
    ifs_node_unref(dir);
}

static void push_siblings(IfsPagePusher *p, uint64_t file_id)
{
    IfsNode *dir;
    uint64_t dir_id;

    ifs_store_pin(p->store);
    dir = ifs_store_parent(p->store, file_id, &dir_id);
    push_files_of(p, dir, dir_id, file_id);
    ifs_store_unpin(p->store);
}

static void push_listed(IfsPagePusher *p, uint64_t dir_id)
{
    ifs_store_pin(p->store);
    push_files_of(p, ifs_store_get(p->store, dir_id), dir_id, 0);
    ifs_store_unpin(p->store);
}

static void push_changed(IfsPagePusher *p, uint64_t id)
{
    IfsNode *file;

    ifs_store_pin(p->store);
    file = ifs_store_get(p->store, id);
    if (file)
        store_file(p, file, id);
    ifs_store_unpin(p->store);
    ifs_node_unref(file);
}

static void run_job(IfsPagePusher *p, Job *job)
{
    /* Once requests are no longer served, a store could wait for ever for
     * the page of a READ that will not be answered. */
    if (!g_atomic_int_get(&p->stopping)) {
        if (job->kind == JOB_SIBLINGS)
            push_siblings(p, job->id);
        else if (job->kind == JOB_LISTED)
            push_listed(p, job->id);
        else
            push_changed(p, job->id);
    }
    if (job->req)
        fuse_reply_buf(job->req, NULL, 0);
    g_free(job);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Jobs in order until JOB_STOP; see SPIN_US. */
static gpointer pusher_main(gpointer data)
{
    IfsPagePusher *p = data;

    for (;;) {
        Job *job = g_async_queue_pop(p->jobs);
        gint64 until;

        g_atomic_int_add(&p->queued, -1);
        if (job->kind == JOB_STOP) {
            g_free(job);
            return NULL;
        }
        run_job(p, job);
        until = g_get_monotonic_time() + SPIN_US;
        while (!g_atomic_int_get(&p->queued) && g_get_monotonic_time() < until)
            cpu_relax();
    }
}

IfsPagePusher *ifs_page_pusher_new(IfsStore *store, struct fuse_session *se)
{
    IfsPagePusher *p = g_new0(IfsPagePusher, 1);

    p->store = store;
    p->se = se;
    p->pushed_dirs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    p->jobs = g_async_queue_new();
    p->thread = g_thread_new("pagepush", pusher_main, p);
    return p;
}

static void queue_job(IfsPagePusher *p, JobKind kind, uint64_t id, fuse_req_t req)
{
    Job *job = g_new(Job, 1);

    job->kind = kind;
    job->id = id;
    job->req = req;
    g_atomic_int_inc(&p->queued);
    g_async_queue_push(p->jobs, job);
}

/* Jobs queued before are still taken, dropped and their listings answered. */
void ifs_page_pusher_free(IfsPagePusher *p)
{
    if (!p)
        return;
    g_atomic_int_set(&p->stopping, 1);
    queue_job(p, JOB_STOP, 0, NULL);
    g_thread_join(p->thread);
    g_async_queue_unref(p->jobs);
    g_hash_table_unref(p->pushed_dirs);
    g_free(p);
}

void ifs_page_pusher_file_read(IfsPagePusher *p, uint64_t id)
{
    if (p)
        queue_job(p, JOB_SIBLINGS, id, NULL);
}

gboolean ifs_page_pusher_listed(IfsPagePusher *p, const IfsNode *dir, uint64_t dir_id,
                                fuse_req_t req)
{
    if (!p || dir->type != IFS_NODE_DIR)
        return FALSE;
    for (guint i = 0; i < ifs_node_n_children(dir); i++) {
        if (is_pushable(ifs_node_child_at(dir, i))) {
            queue_job(p, JOB_LISTED, dir_id, req);
            return TRUE;
        }
    }
    return FALSE;
}

void ifs_page_pusher_changed(IfsPagePusher *p, uint64_t id)
{
    if (p)
        queue_job(p, JOB_CHANGED, id, NULL);
}
