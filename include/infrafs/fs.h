/* The FUSE layer: answers kernel requests from the store's snapshots.
 * Knows nothing of HTTP or providers. */
#pragma once
#include <fuse_lowlevel.h>
#include "infrafs/store.h"

typedef struct IfsFs IfsFs;

/* Who owns the tree, and its modes: directories 0555, files 0444, control
 * files 0644, less `umask`. With `control_group`, control files belong to
 * `control_gid` and are 0664 (less `umask`): with allow_other, and so
 * default_permissions, the kernel lets that group act and no one else. */
typedef struct {
    uid_t uid;
    gid_t gid;
    mode_t umask;
    gboolean control_group;
    gid_t control_gid;
} IfsFsOwner;

IfsFs *ifs_fs_new(IfsStore *store, const IfsFsOwner *owner);
void ifs_fs_free(IfsFs *fs);
const struct fuse_lowlevel_ops *ifs_fs_ops(void);
/* Once the session exists: the store's invalidations go to this session.
 * Starts the threads that drop and fill control files' cached pages, the
 * page pusher (pagepush.h) and the restater (restat.h), which stats the
 * tree through `mountpoint` (absolute). */
void ifs_fs_attach(IfsFs *fs, struct fuse_session *se, const char *mountpoint);
/* Before the session is destroyed (after the loop and the store stopped):
 * finishes what they were given and stops them. The restater's thread is
 * joined by ifs_fs_free, which must come after the unmount. */
void ifs_fs_detach(IfsFs *fs);

/* Kernel cache lifetime for entries and attributes. Long on purpose: every change is invalidated explicitly by the store (doc/SEMANTICS.md §6.3). */
#define IFS_CACHE_TIMEOUT 86400.0
/* st_size of operation/wait while the operation runs: the length of the
 * longest final text ("completed\n"); a shorter one is a short read, from
 * which the kernel takes the real size. */
#define IFS_WAIT_PENDING_SIZE 10
