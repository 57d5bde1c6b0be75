/* A control file's page in the kernel's cache, dropped after each write
 * and filled before a truncating one (controlpages.c).
 *
 * Both are sent by threads of their own: a drop may wait for the page of a
 * write still in progress, and that writer may be waiting for the store's
 * publisher, so neither the publisher nor a request thread may send them. */
#pragma once
#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdint.h>

typedef struct IfsControlPages IfsControlPages;

IfsControlPages *ifs_control_pages_new(struct fuse_session *se);
/* Once requests are no longer served: what is queued is done, then freed. */
void ifs_control_pages_free(IfsControlPages *cp);

/* Drops the page of control file `id` (node id), at any time. */
void ifs_control_pages_drop(IfsControlPages *cp, uint64_t id);
/* Caches `commands` as the complete page of control file `id`; called
 * while answering its truncation, and returns once the page is stored or
 * the fill is given up. */
void ifs_control_pages_fill(IfsControlPages *cp, const char *commands, size_t size, uint64_t id);
