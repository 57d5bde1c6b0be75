/* Re-stating, in the background, what the kernel has just marked stale.
 *
 * On our read-write superblock the kernel marks an inode's atime stale
 * after every READ and every uncached listing it sends (even with
 * noatime), and the next stat() of that inode then costs a GETATTR. A
 * second `grep -r` would send one for every directory and every file that
 * was READ. This thread stats each of them through the mount a moment
 * after, while the walker goes on, so that the kernel holds fresh
 * attributes again and the next walk sends nothing.
 *
 * It runs on a thread of its own and never from a request handler: its
 * stat() waits for a request thread to answer the GETATTR. */
#pragma once
#include <stdint.h>
#include <sys/types.h>
#include "infrafs/store.h"

typedef struct IfsRestater IfsRestater;

/* `mountpoint`: the absolute path the tree is mounted on. */
IfsRestater *ifs_restater_new(IfsStore *store, const char *mountpoint);
/* The kernel has just been answered a READ of `ino` or the end of its
 * listing, and will mark its attributes stale. */
void ifs_restater_touched(IfsRestater *r, uint64_t ino);
/* The kernel sent a READ or a listing: a walk is reading what is not
 * cached yet, and re-stats wait until it pauses. */
void ifs_restater_busy(IfsRestater *r);
/* A request from process `pid` (FUSE's requester id): another process
 * stating the tree lets re-stats run (see restat.c). */
void ifs_restater_request(IfsRestater *r, pid_t pid);
/* Once requests are no longer served: drops what is queued. A stat() in
 * progress may wait until the session's device is closed (the unmount),
 * so the thread is joined only by ifs_restater_free, after it. */
void ifs_restater_stop(IfsRestater *r);
void ifs_restater_free(IfsRestater *r);
