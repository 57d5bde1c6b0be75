/* How far a refresh has got, for providers/<account>/progress and the
 * foreground command's progress line: the refresh attaches its account's
 * record to its thread, and the provider notes each page of a list as it
 * arrives, without knowing whose record it is. */
#pragma once
#include <glib.h>

typedef struct {
    gint64 started; /* epoch seconds; 0 while no refresh runs; atomic */
    guint pages; /* list pages read so far; atomic */
    guint resources; /* resources they held; atomic */
} IfsProgress;

/* The calling thread's list() reports to `p` from now on (NULL: nowhere). */
void ifs_progress_attach(IfsProgress *p);
/* A provider read one page of a list, holding `resources` resources. Does
 * nothing on a thread with no record attached. */
void ifs_progress_page(guint resources);

/* A refresh starts (counts start again) or ends; any thread may read. */
void ifs_progress_begin(IfsProgress *p, gint64 now_s);
void ifs_progress_end(IfsProgress *p);
