/* Pushing file contents into the kernel's page cache before they are asked
 * for (fuse_lowlevel_notify_store), from a thread of its own: never from a
 * request handler, since a store into a page a waiting reader holds locked
 * waits for that reader's reply.
 *
 * A pushed page is never READ, so it costs no request when first read, and
 * none later either: on our read-write superblock the kernel marks atime
 * stale after every READ it sends, and the next stat of that file would
 * cost a GETATTR. */
#pragma once
#include <fuse_lowlevel.h>
#include <stdint.h>
#include "infrafs/store.h"

typedef struct IfsPagePusher IfsPagePusher;

IfsPagePusher *ifs_page_pusher_new(IfsStore *store, struct fuse_session *se);
/* Once requests are no longer served: drops what is queued, stops, frees. */
void ifs_page_pusher_free(IfsPagePusher *p);

/* Files and directories are named by node ids (see inodes.h). */

/* The kernel READ the start of regular file `id`: its siblings will likely
 * be read next (grep -r, cat dir/ *), so push them, once per directory. */
void ifs_page_pusher_file_read(IfsPagePusher *p, uint64_t id);
/* `req` asks for more of a listing with attributes (READDIRPLUS) of
 * directory `dir` (node id `dir_id`) that has none: the kernel has inodes
 * for its entries, and its files may be read next. Takes the request and
 * answers it (an empty buffer, the listing's end) from the pusher's thread
 * once the files are stored, so that the lister finds them cached. Returns
 * FALSE, and leaves the answer to the caller, when there is nothing to
 * push. Waiting costs the lister a wake-up of the pusher; answering at
 * once lost the race to the lister's first reads: a cold `grep -r` at
 * 10,000 resources READ 23,000-56,000 regular files over 8 runs, against
 * at most 10 now (2-core VM). */
gboolean ifs_page_pusher_listed(IfsPagePusher *p, const IfsNode *dir, uint64_t dir_id,
                                fuse_req_t req);
/* `id` changed and its cached pages were just dropped: push the new bytes,
 * if the kernel still holds the inode. */
void ifs_page_pusher_changed(IfsPagePusher *p, uint64_t id);
