/* FUSE low-level operations: node id -> node -> answer. What libfuse calls
 * `ino` (fuse_ino_t) is a node id here (`id`, see inodes.h); `st_ino` is
 * the inode number that stat() shows, the hash of the node's path.
 *
 * Speed comes from the kernel's caches: long entry/attr timeouts, no OPEN
 * or OPENDIR messages (FUSE_CAP_NO_OPEN_SUPPORT / NO_OPENDIR_SUPPORT make the
 * kernel keep page and readdir caches), exact st_size, and explicit
 * invalidation from the store's publisher thread after every change.
 * Control files still reach us: without writeback caching every write() is
 * sent synchronously, and a control file's cached pages are never complete
 * after a write, so reads are sent too. */
#include "infrafs/fs.h"
#include "infrafs/controlpages.h"
#include "infrafs/pagepush.h"
#include "infrafs/restat.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct IfsFs {
    IfsStore *store;
    struct fuse_session *se;
    IfsFsOwner owner;
    gboolean no_open;
    IfsControlPages *control_pages;
    IfsPagePusher *pusher;
    IfsRestater *restater;
    _Atomic int64_t last_file_read; /* monotonic µs of the last READ of a file */
};

/* Listings push their files while something reads files (grep -r), not
 * for walks that only list (find, ls -lR). */
#define READING_WALK_US (2 * G_USEC_PER_SEC)
static IfsFs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static gboolean in_reading_walk(IfsFs *fs)
{
    return g_get_monotonic_time() -
        atomic_load_explicit(&fs->last_file_read, memory_order_relaxed) <
        READING_WALK_US;
}

/* ---- requests ------------------------------------------------------------ */

static void fill_attr(const IfsFs *fs, const IfsNode *node, uint64_t st_ino, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = st_ino;
    st->st_uid = fs->owner.uid;
    st->st_gid = fs->owner.gid;
    st->st_blksize = 4096;
    st->st_mtim.tv_sec = node->mtime;
    st->st_ctim.tv_sec = node->mtime;
    st->st_atim.tv_sec = node->mtime;
    switch (node->type) {
    case IFS_NODE_DIR:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        break;
    case IFS_NODE_CONTROL:
        st->st_mode = S_IFREG | (fs->owner.control_group ? 0664 : 0644);
        if (fs->owner.control_group)
            st->st_gid = fs->owner.control_gid;
        st->st_nlink = 1;
        st->st_size = (off_t)ifs_node_size(node);
        break;
    case IFS_NODE_WAIT:
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size =
            ifs_node_has_content(node) ? (off_t)ifs_node_size(node) : IFS_WAIT_PENDING_SIZE;
        break;
    case IFS_NODE_SYMLINK:
        st->st_mode = S_IFLNK | 0777; /* what a link's mode always is */
        st->st_nlink = 1;
        st->st_size = (off_t)ifs_node_size(node);
        break;
    case IFS_NODE_FILE:
    default:
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)ifs_node_size(node);
        break;
    }
    st->st_mode &= ~(fs->owner.umask & 0777);
    st->st_blocks = (st->st_size + 511) / 512;
}

/* The kernel knows the node by node id `id`; its st_ino is its path's
 * hash. */
static void fill_entry(const IfsFs *fs, const IfsNode *node, uint64_t id, uint64_t st_ino,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = id;
    e->attr_timeout = IFS_CACHE_TIMEOUT;
    e->entry_timeout = IFS_CACHE_TIMEOUT;
    fill_attr(fs, node, st_ino, &e->attr);
}

static void reply_entry(fuse_req_t req, const IfsNode *node, uint64_t id, uint64_t st_ino)
{
    struct fuse_entry_param e;

    fill_entry(fs_of(req), node, id, st_ino, &e);
    fuse_reply_entry(req, &e);
}

static void ifs_init(void *userdata, struct fuse_conn_info *conn)
{
    IfsFs *fs = userdata;

    if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
        conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
        fs->no_open = TRUE;
    }
    if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
        conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
    /* We invalidate explicitly; the kernel need not guess from mtimes. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
        conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
    /* Writes must reach us at once: they are commands. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* Without it `echo cmd > power` truncates through SETATTR, which we
     * answer with the real size. With it the kernel would set the size to
     * 0 on its own at open(O_TRUNC), and a concurrent `cat power` would
     * read nothing until the write is over. */
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    /* Listing a directory also answers the lookups of its entries: a first
     * `grep -r` then costs one message per directory, not one per file.
     * Always, not adaptively: the listing is cached by the kernel anyway. */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void ifs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    IfsFs *fs = fs_of(req);
    IfsNode *node;
    uint64_t id, st_ino;

    ifs_restater_request(fs->restater, fuse_req_ctx(req)->pid);
    node = ifs_store_lookup(fs->store, parent, name, &id, &st_ino);
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    reply_entry(req, node, id, st_ino);
    ifs_node_unref(node);
}

static void ifs_forget(fuse_req_t req, fuse_ino_t id, uint64_t nlookup)
{
    ifs_store_forget(fs_of(req)->store, id, nlookup);
    fuse_reply_none(req);
}

static void ifs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    IfsStore *store = fs_of(req)->store;

    for (size_t i = 0; i < count; i++)
        ifs_store_forget(store, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void ifs_getattr(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
    IfsNode *node;
    struct stat st;
    uint64_t st_ino;

    ifs_restater_request(fs_of(req)->restater, fuse_req_ctx(req)->pid);
    node = ifs_store_stat(fs_of(req)->store, id, &st_ino);
    (void)fi;
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill_attr(fs_of(req), node, st_ino, &st);
    fuse_reply_attr(req, &st, IFS_CACHE_TIMEOUT);
    ifs_node_unref(node);
}

/* Only truncation of a control file is allowed, so that `echo cmd > power`
 * (which opens with O_TRUNC) works; nothing is stored. */
static void ifs_setattr(fuse_req_t req, fuse_ino_t id, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
    uint64_t st_ino;
    IfsNode *node = ifs_store_stat(fs_of(req)->store, id, &st_ino);
    const int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
        FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
    struct stat st;

    (void)attr;
    (void)fi;
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (node->type != IFS_NODE_CONTROL || (to_set & ~allowed)) {
        fuse_reply_err(req, node->type == IFS_NODE_CONTROL ? EPERM : EACCES);
        ifs_node_unref(node);
        return;
    }
    /* `echo cmd > power` truncates, then writes. */
    ifs_control_pages_fill(fs_of(req)->control_pages, ifs_node_data(node), ifs_node_size(node), id);
    fill_attr(fs_of(req), node, st_ino, &st);
    fuse_reply_attr(req, &st, IFS_CACHE_TIMEOUT);
    ifs_node_unref(node);
}

static void ifs_open(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
    IfsFs *fs = fs_of(req);
    IfsNode *node;

    if (fs->no_open) { /* from now on the kernel opens without asking */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    node = ifs_store_get(fs->store, id);
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY && node->type != IFS_NODE_CONTROL) {
        fuse_reply_err(req, EACCES);
        ifs_node_unref(node);
        return;
    }
    fi->keep_cache = node->type == IFS_NODE_FILE;
    fi->direct_io = node->type != IFS_NODE_FILE;
    fuse_reply_open(req, fi);
    ifs_node_unref(node);
}

static void ifs_opendir(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
    (void)id;
    (void)fi;
    /* With FUSE_CAP_NO_OPENDIR_SUPPORT the kernel then caches readdir. */
    fuse_reply_err(req, ENOSYS);
}

static void reply_slice(fuse_req_t req, const char *data, size_t len, size_t size, off_t off)
{
    if (off < 0 || (size_t)off >= len)
        fuse_reply_buf(req, NULL, 0);
    else
        fuse_reply_buf(req, data + off, MIN(size, len - (size_t)off));
}

/* A rendered file (`json`) is rendered for each READ: the kernel's page
 * cache keeps it after the first, so that costs one render per file. A
 * large one (/inventory.json) renders only the piece asked for. */
static void reply_content(fuse_req_t req, const IfsNode *node, size_t size, off_t off)
{
    char *owned;
    const char *bytes = ifs_node_data(node);

    if (bytes || !ifs_node_has_content(node) || off < 0) {
        reply_slice(req, bytes ? bytes : "", bytes ? ifs_node_size(node) : 0, size, off);
        return;
    }
    owned = g_malloc(MIN(size, ifs_node_size(node)) + 1);
    fuse_reply_buf(req, owned, ifs_node_read(node, (size_t)off, size, owned));
    g_free(owned);
}

typedef struct {
    volatile gboolean interrupted;
    struct fuse_session *se;
} WaitState;

static void on_interrupt(fuse_req_t req, void *data)
{
    (void)req;
    ((WaitState *)data)->interrupted = TRUE;
}

/* Ctrl-C on the reader, or the daemon is exiting. */
static gboolean wait_should_end(void *data)
{
    WaitState *w = data;

    return w->interrupted || fuse_session_exited(w->se);
}

static void read_wait(fuse_req_t req, IfsNode *node, size_t size, off_t off)
{
    IfsStore *store = fs_of(req)->store; /* req is gone once replied to */
    WaitState w = {FALSE, fs_of(req)->se};
    int errnum = 0;
    char *text;

    fuse_req_interrupt_func(req, on_interrupt, &w);
    text = ifs_store_wait_text(store, node, wait_should_end, &w, &errnum);
    if (!text) {
        fuse_reply_err(req, errnum);
        return;
    }
    reply_slice(req, text, strlen(text), size, off);
    /* The kernel has processed the (possibly short) read by now. */
    ifs_store_wait_replied(store, node);
    g_free(text);
}

static void ifs_readlink(fuse_req_t req, fuse_ino_t id)
{
    IfsNode *node = ifs_store_get(fs_of(req)->store, id);

    if (!node)
        fuse_reply_err(req, ENOENT);
    else if (node->type != IFS_NODE_SYMLINK)
        fuse_reply_err(req, EINVAL);
    else
        fuse_reply_readlink(req, ifs_node_data(node)); /* stored with its NUL */
    if (node)
        ifs_node_unref(node);
}

static void ifs_read(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    IfsFs *fs = fs_of(req); /* req is gone once replied to */
    IfsNode *node = ifs_store_get(fs->store, id);

    (void)fi;
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    ifs_restater_busy(fs->restater);
    if (node->type == IFS_NODE_DIR)
        fuse_reply_err(req, EISDIR);
    else if (node->type == IFS_NODE_WAIT && !ifs_node_has_content(node))
        read_wait(req, node, size, off);
    else
        reply_content(req, node, size, off);
    if (node->type == IFS_NODE_FILE && off == 0) {
        atomic_store_explicit(&fs->last_file_read, g_get_monotonic_time(), memory_order_relaxed);
        ifs_page_pusher_file_read(fs->pusher, id);
    }
    if ((node->type == IFS_NODE_FILE || node->type == IFS_NODE_CONTROL) && off == 0)
        ifs_restater_touched(fs->restater, id);
    ifs_node_unref(node);
}

static void ifs_write(fuse_req_t req, fuse_ino_t id, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    IfsFs *fs = fs_of(req);
    IfsNode *node = ifs_store_get(fs->store, id);
    int errnum;

    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (node->type != IFS_NODE_CONTROL) {
        fuse_reply_err(req, EACCES);
        ifs_node_unref(node);
        return;
    }
    /* Control files go through the page cache (no OPEN, so no direct I/O):
     * the kernel has already copied the written bytes over the cached
     * command list. Reset after the reply, since the kernel believes the
     * file now holds what was written. */
    if (fi && fi->writepage) {
        /* Dirty pages of a shared writable mapping, flushed by msync or
         * writeback: not a write() at offset 0, so never a command. */
        fuse_reply_err(req, EACCES);
        ifs_control_pages_drop(fs->control_pages, id);
        ifs_node_unref(node);
        return;
    }
    /* Dropped now too, so that readers during a slow API call read the
     * commands from us. */
    ifs_control_pages_drop(fs->control_pages, id);
    /* The API call happens here, inside write(): errors are never deferred
     * to close(), which most programs ignore. */
    errnum = ifs_store_control_write(fs->store, node, buf, size, off, fuse_req_ctx(req)->uid);
    if (errnum)
        fuse_reply_err(req, errnum);
    else
        fuse_reply_write(req, size);
    ifs_control_pages_drop(fs->control_pages, id);
    ifs_node_unref(node);
}

/* One listing buffer; with `plus`, each entry also carries its attributes
 * and node id, and counts as a lookup. */
static void reply_listing(fuse_req_t req, fuse_ino_t id, size_t size, off_t off, gboolean plus)
{
    IfsFs *fs = fs_of(req);
    uint64_t dir_ino;
    IfsNode *dir = ifs_store_stat(fs->store, id, &dir_ino);
    char *buf;
    size_t used = 0;
    gboolean listed_child = FALSE, pushing;

    if (!dir) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (dir->type != IFS_NODE_DIR) {
        fuse_reply_err(req, ENOTDIR);
        ifs_node_unref(dir);
        return;
    }
    ifs_restater_busy(fs->restater);
    buf = g_malloc(size);
    /* Offsets: 1 ".", 2 "..", 3.. the children in order. */
    for (off_t i = off; i < (off_t)ifs_node_n_children(dir) + 2; i++) {
        struct fuse_entry_param e;
        const char *name;
        size_t need;

        memset(&e, 0, sizeof e);
        if (i < 2) {
            /* The kernel links neither "." nor ".."; id 0 says "no entry
             * to cache", while the d_ino that readdir(3) shows must not be
             * 0 (it hides such entries). */
            name = i == 0 ? "." : "..";
            e.attr.st_ino = i == 0 ? dir_ino : IFS_ROOT_INO;
            e.attr.st_mode = S_IFDIR;
        } else {
            const IfsNode *child = ifs_node_child_at(dir, (guint)(i - 2));

            name = ifs_node_name(child);
            if (plus) {
                /* Counted before the reply: the kernel may ask about
                 * it at once. */
                fill_entry(fs, child, ifs_store_hand_out(fs->store, id, child),
                           ifs_node_ino(child, dir_ino), &e);
            } else {
                e.attr.st_ino = ifs_node_ino(child, dir_ino);
                e.attr.st_mode = child->type == IFS_NODE_DIR ? S_IFDIR
                    : child->type == IFS_NODE_SYMLINK        ? S_IFLNK
                                                             : S_IFREG;
            }
        }
        need = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1)
                    : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
        if (need > size - used) {
            if (e.ino) /* not handed out after all */
                ifs_store_forget(fs->store, e.ino, 1);
            break;
        }
        used += need;
        listed_child = listed_child || i >= 2;
    }
    /* An empty answer ends an uncached listing, after which the kernel
     * marks the directory's attributes stale. */
    if (used == 0)
        ifs_restater_touched(fs->restater, id);
    /* The end of a listing: the kernel has made inodes of every entry
     * listed before, so their pages can be stored now, and the pusher
     * answers once they are. */
    pushing = plus && !listed_child && off > 2 && in_reading_walk(fs) &&
        ifs_page_pusher_listed(fs->pusher, dir, id, req);
    if (!pushing)
        fuse_reply_buf(req, buf, used);
    g_free(buf);
    ifs_node_unref(dir);
}

static void ifs_readdir(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    (void)fi;
    reply_listing(req, id, size, off, FALSE);
}

static void ifs_readdirplus(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
                            struct fuse_file_info *fi)
{
    (void)fi;
    reply_listing(req, id, size, off, TRUE);
}

static void ifs_statfs(fuse_req_t req, fuse_ino_t id)
{
    struct statvfs st;

    (void)id;
    memset(&st, 0, sizeof st);
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
    .init = ifs_init,
    .lookup = ifs_lookup,
    .forget = ifs_forget,
    .forget_multi = ifs_forget_multi,
    .getattr = ifs_getattr,
    .setattr = ifs_setattr,
    .readlink = ifs_readlink,
    .open = ifs_open,
    .opendir = ifs_opendir,
    .read = ifs_read,
    .write = ifs_write,
    .readdir = ifs_readdir,
    .readdirplus = ifs_readdirplus,
    .statfs = ifs_statfs,
};

const struct fuse_lowlevel_ops *ifs_fs_ops(void)
{
    return &ops;
}

/* Invalidations by node id, called by the store's publisher thread only,
 * for what the kernel may hold. A node it does not hold answers ENOENT:
 * nothing to drop. */
static void inval_inode(void *data, uint64_t id)
{
    IfsFs *fs = data;

    if (!fs->se)
        return;
    fuse_lowlevel_notify_inval_inode(fs->se, id, 0, 0);
    /* The next reader finds the new bytes cached, as the old ones were. */
    ifs_page_pusher_changed(fs->pusher, id);
}

static void inval_entry(void *data, uint64_t parent, const char *name)
{
    IfsFs *fs = data;

    if (fs->se)
        fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
}

IfsFs *ifs_fs_new(IfsStore *store, const IfsFsOwner *owner)
{
    IfsFs *fs = g_new0(IfsFs, 1);
    IfsInvalidator inv = {
        .inval_inode = inval_inode,
        .inval_entry = inval_entry,
        .data = fs,
    };

    fs->store = store;
    fs->owner = *owner;
    ifs_store_set_invalidator(store, &inv);
    return fs;
}

void ifs_fs_attach(IfsFs *fs, struct fuse_session *se, const char *mountpoint)
{
    fs->se = se;
    fs->restater = ifs_restater_new(fs->store, mountpoint);
    fs->control_pages = ifs_control_pages_new(se);
    fs->pusher = ifs_page_pusher_new(fs->store, se);
}

void ifs_fs_detach(IfsFs *fs)
{
    if (!fs->control_pages)
        return;
    ifs_restater_stop(fs->restater);
    ifs_page_pusher_free(fs->pusher);
    fs->pusher = NULL;
    ifs_control_pages_free(fs->control_pages);
    fs->control_pages = NULL;
    fs->se = NULL;
}

void ifs_fs_free(IfsFs *fs)
{
    if (!fs)
        return;
    ifs_fs_detach(fs);
    /* After the unmount, which ends a stat() it may be waiting in. */
    ifs_restater_free(fs->restater);
    g_free(fs);
}
