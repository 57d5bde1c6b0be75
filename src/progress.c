/* How far a refresh has got (include/infrafs/progress.h). */
#include "infrafs/progress.h"

static _Thread_local IfsProgress *attached;

void ifs_progress_attach(IfsProgress *p)
{
    attached = p;
}

void ifs_progress_page(guint resources)
{
    if (!attached)
        return;
    g_atomic_int_inc(&attached->pages);
    g_atomic_int_add(&attached->resources, resources);
}

void ifs_progress_begin(IfsProgress *p, gint64 now_s)
{
    g_atomic_int_set(&p->pages, 0);
    g_atomic_int_set(&p->resources, 0);
    __atomic_store_n(&p->started, now_s, __ATOMIC_RELEASE);
}

void ifs_progress_end(IfsProgress *p)
{
    __atomic_store_n(&p->started, 0, __ATOMIC_RELEASE);
}
