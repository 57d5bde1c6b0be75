/* Internals shared by the store's modules (store.c: accounts, refresh,
 * publishing, lookups; tree.c: building snapshots; actions.c: control
 * writes and asynchronous operations). Not part of any public interface. */
#pragma once
#include <glib.h>

#include "infrafs/control.h"
#include "infrafs/http.h"
#include "infrafs/inodes.h"
#include "infrafs/persist.h"
#include "infrafs/provider.h"
#include "infrafs/store.h"

#define MAX_PROBLEM_TEXT 4096
#define POLL_MIN_MS 300
#define POLL_MAX_MS 5000
/* After a failed refresh: retry after 5 s, doubling up to the account's
 * interval, each delay spread by +-20 % so accounts and mounts do not
 * retry in step. */
#define RETRY_FIRST_S 5
/* Most resources one refresh may list unless the account sets
 * max_resources: far above any real account, low enough that a runaway API
 * cannot take the machine's memory. */
#define IFS_DEFAULT_MAX_RESOURCES 200000

typedef struct Account Account;
typedef struct Operation Operation;

typedef enum { TARGET_CONTROL, TARGET_REFRESH, TARGET_OPERATION } TargetKind;

/* What a control or wait node points at. Targets are kept stable across
 * rebuilds so that an unchanged control file stays the same node: the
 * publisher then never invalidates a file that a writer is blocked on. */
struct IfsControlTarget {
    gatomicrefcount ref;
    TargetKind kind;
    Account *account;
    char *res_kind;
    char *res_id;
    char *file;
    Operation *op;
};

struct Operation {
    gatomicrefcount ref;
    Account *account;
    char *res_kind;
    char *res_id;
    char *job_id;
    char *poll_url;
    /* guarded by store->op_lock */
    char *status_text;
    IfsOpState state;
    /* Set by the publisher for the publish that ends the operation (after
     * its resource was re-read): only from then on does operation/wait show
     * the final text. Any other publish leaves that file as it was, so it
     * never touches the page a blocked reader holds. */
    gboolean shown_final;
    /* Set once the terminal state is visible in the tree: readers of
     * operation/wait return only then, so what they read next is current. */
    gboolean done;
    /* Readers in operation/wait, from the start of their wait until they
     * have replied: the kernel must see their (short) read, and take the
     * file's real size from it, before the publisher invalidates the file,
     * which would cancel that. */
    int readers;
};

/* Per-resource state that is ours, not the API's. */
typedef struct {
    char *last_action;     /* one line with '\n', or NULL */
    Operation *op;         /* latest operation, or NULL */
    IfsControlTarget *wait_target;
    GHashTable *targets;   /* control file name -> IfsControlTarget* */
    guint gen;             /* bumped whenever anything above changes */
} Extras;

/* The last node built for a resource, to skip rebuilding unchanged ones. */
typedef struct {
    IfsResource *res;
    guint gen;
    IfsNode *node;
    char *problems; /* what building it reported for last_error, or NULL */
} Built;

struct Account {
    IfsStore *store;
    const IfsAccountConfig *cfg;
    const IfsProviderType *type;
    IfsHttp *http;
    gpointer pstate;
    IfsError *open_error;
    int refresh_s;
    guint max_resources;
    IfsControlTarget *refresh_target;
    GThread *thread;
    char *cache_path;      /* NULL: nothing is kept on disk */
    char *cache_problem;   /* why the saved copy was not loaded, or NULL */
    gboolean save_failing; /* refresher only: the last save failed (warned) */

    GMutex lock;           /* guards everything below */
    GCond cond;
    GPtrArray *resources;  /* IfsResource*, replaced wholesale (copy on write) */
    /* Action results win over lists read before them: every resource an
     * action replaced or removed, "kind/id" -> the change_gen it got. A
     * refresh that started at gen G keeps those above G as they are. */
    guint64 change_gen;
    GHashTable *changed_at;
    GHashTable *extras;    /* "kind/id" -> Extras* */
    char *state;
    char *last_error;
    char *provider_last_action;
    gint64 last_refresh;   /* epoch seconds, 0 = never */
    gint64 next_refresh;   /* epoch seconds */
    gint64 next_due_mono;  /* monotonic microseconds */
    gboolean ever_ok;
    gboolean first_done;
    guint failures;        /* refreshes failed in a row */
    gboolean save_wanted;  /* the next build hands its items to the saver */
    GPtrArray *save_items; /* IfsCacheItem*, taken by the refresher */
    guint64 refresh_requested, refresh_started, refresh_done;
    int refresh_errnum;

    /* publisher thread only */
    GHashTable *saved_mtimes; /* from the cache, until the first build */
    GHashTable *built;     /* "kind/id" -> Built* */
    IfsNode *provider_dir;
    GHashTable *kind_dirs; /* kind -> IfsNode* */
};

typedef struct {
    GMutex lock;
    GCond cond;
    gboolean finished;
} Done;

typedef struct {
    Account *account; /* NULL: stop the publisher */
    Done *done;
    Operation *finished_op; /* its terminal state is in this publish */
} PublishReq;

struct IfsStore {
    IfsStoreOptions opts;
    GPtrArray *accounts;
    IfsInvalidator inv;
    gint stopping;

    GMutex pin_lock;  /* held across a swap of root; see ifs_store_pin */
    guint64 generation; /* root swaps so far; atomic */
    GMutex root_lock;
    IfsNode *root;

    IfsInodes *inodes;

    GThread *publisher;
    GAsyncQueue *publish_q;

    GMutex op_lock;
    GCond op_cond;
    GThreadPool *workers;  /* operation polls and single-resource fetches */

    GMutex first_lock;
    GCond first_cond;
    guint first_pending;
    gboolean started;
};

static inline gboolean store_stopping(IfsStore *s)
{
    return g_atomic_int_get(&s->stopping) != 0;
}

/* store.c */
char *store_iso_time(gint64 epoch);
gint64 store_now(void);
char *store_one_line(const char *text, size_t max);
char *store_escaped_input(const char *buf, size_t len, size_t max);
void store_redact_error(Account *a, IfsError *err);
char *store_resource_key(const char *kind, const char *id);
void store_publish(Account *a);
void store_note_action_change(Account *a, const char *kind, const char *id);
void store_publish_finishing(Account *a, Operation *finished_op);
int store_request_refresh(Account *a, gboolean wait);
void store_mark_done(IfsStore *s, Operation *op);

/* tree.c: run by the publisher thread only */
void store_build_account(Account *a);
IfsNode *store_build_root(IfsStore *s);

/* actions.c */
extern const IfsControlSpec store_refresh_spec;
IfsControlTarget *store_target_new(TargetKind kind, Account *a, const char *res_kind,
                                   const char *res_id, const char *file);
IfsControlTarget *store_target_ref(IfsControlTarget *t);
void store_target_unref(IfsControlTarget *t);
Extras *store_extras_get(Account *a, const char *key);
void store_extras_free(gpointer data);
void store_worker_main(gpointer data, gpointer user);
