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
/* A listing with attributes (READDIRPLUS) of directory `dir_id` reached
 * its end: the kernel has inodes for its entries, and its files may be
 * read next. Returns at once: the lister goes on while the push runs on
 * the other core, and it nearly always lands before the first read (on 2
 * cores, waiting for it made a cold `grep -r` 18 % slower for 3 % fewer
 * READs). */
void ifs_page_pusher_listed(IfsPagePusher *p, uint64_t dir_id);
/* `id` changed and its cached pages were just dropped: push the new bytes,
 * if the kernel still holds the inode. */
void ifs_page_pusher_changed(IfsPagePusher *p, uint64_t id);
