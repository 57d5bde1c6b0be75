/* The store's model: accounts, the state we keep per resource (extras),
 * operations, and the targets that control and wait files point at. Every
 * later stage of the store reads and changes the model; the model knows
 * none of them.
 *
 * The store is a pipeline; each header includes only those before it:
 *
 *     model.h  <-  build.h  <-  publish.h  <-  refresh.h, actions.h  <-  store.c
 *                          <-  inventory.h (publish.c)
 *
 * model.h includes no other header of the pipeline, build.h only model.h,
 * publish.h and inventory.h only build.h, refresh.h and actions.h only
 * publish.h (and so what it includes). Only store.c, the facade, includes
 * them all.
 *
 * Three locks guard the model; each struct says which guards what:
 *  - Account.lock: an account's data and its refresh bookkeeping;
 *  - Model.op_lock: the changing fields of every Operation;
 *  - the publisher: what building snapshots keeps (build.h), touched by
 *    one thread at a time per account. */
#pragma once
#include <glib.h>

#include "infrafs/linelog.h"
#include "infrafs/control.h"
#include "infrafs/http.h"
#include "infrafs/persist.h"
#include "infrafs/progress.h"
#include "infrafs/provider.h"
#include "infrafs/store.h"

/* Longest text last_error shows: what a refresh and a build report. */
#define MAX_PROBLEM_TEXT 4096
/* Most resources one refresh may list unless the account sets
 * max_resources: far above any real account, low enough that a runaway API
 * cannot take the machine's memory. */
#define IFS_DEFAULT_MAX_RESOURCES 200000

typedef struct Account Account;
typedef struct Operation Operation;

/* What every stage of the store shares. */
typedef struct {
    IfsStoreOptions opts; /* read-only once the store is made */
    GPtrArray *accounts; /* Account*: added before the store starts, fixed after */
    gint stopping; /* atomic; see model_stopping */
    GMutex op_lock; /* guards the fields of every Operation marked so */
    GCond op_cond; /* any of those changed, or the store is stopping */
    /* /actions, kept in cache_dir/actions.log. Any thread. */
    IfsLineLog *action_log;
    /* /events and /events.ndjson (events.h). Any thread. */
    struct Events *events;
} Model;

void model_init(Model *m, const IfsStoreOptions *opts);
/* Frees the accounts: after every thread of the store was joined and
 * every node that points at a target was dropped. */
void model_clear(Model *m);
/* The filesystem is going away: abandon HTTP requests in flight and wake
 * every wait on an account or an operation. Idempotent; any thread. */
void model_shutdown(Model *m);

static inline gboolean model_stopping(const Model *m)
{
    return g_atomic_int_get((gint *)&m->stopping) != 0;
}

typedef enum { TARGET_CONTROL, TARGET_REFRESH, TARGET_OPERATION } TargetKind;

/* What a control or wait node points at. Targets are kept stable across
 * rebuilds so that an unchanged control file stays the same node: the
 * publisher then never invalidates a file that a writer is blocked on.
 * Immutable once made, but for the reference count. */
struct IfsControlTarget {
    gatomicrefcount ref;
    TargetKind kind;
    Account *account;
    /* Kinds and file names are few (the providers' own): interned, never
     * freed, so a target per resource copies only its id. */
    const char *res_kind;
    char *res_id;
    const char *file;
    Operation *op; /* TARGET_OPERATION: referenced */
    IfsControlTarget *next; /* TARGET_CONTROL: the next of its resource's Extras */
};

IfsControlTarget *control_target_new(TargetKind kind, Account *a, const char *res_kind,
                                     const char *res_id, const char *file);
IfsControlTarget *control_target_ref(IfsControlTarget *t);
void control_target_unref(IfsControlTarget *t);

/* An asynchronous operation an action started (HostUp's 202 envelope). */
struct Operation {
    gatomicrefcount ref;
    /* Set when made, read-only after. */
    Account *account;
    char *res_kind;
    char *res_id;
    char *job_id;
    char *poll_url;
    /* What the action log says of the write that started it (set before
     * the operation is shared): its writer, path and command. */
    char *writer, *path, *command;
    /* Guarded by Model.op_lock: */
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

/* A pending operation; job_id, poll_url and status_text are taken. */
Operation *operation_new(Account *a, const char *res_kind, const char *res_id, char *job_id,
                         char *poll_url, char *status_text);
Operation *operation_ref(Operation *op);
void operation_unref(Operation *op);
/* The operation's terminal state is in the tree: its readers may return. */
void operation_mark_done(Model *m, Operation *op);

/* Per-resource state that is ours, not the API's. Guarded by Account.lock
 * (the table and every field). */
typedef struct {
    char *last_action; /* one line with '\n', or NULL */
    Operation *op; /* latest operation, or NULL */
    IfsControlTarget *wait_target;
    IfsControlTarget *targets; /* one per control file, a list through ->next */
    guint gen; /* bumped whenever anything above changes */
} Extras;

/* The resource's extras, made empty when it has none yet. a->lock held. */
Extras *extras_get(Account *a, const char *key);
/* The control target of file `file` of the resource: made once, then the
 * same for as long as the extras live. */
IfsControlTarget *extras_control_target(Extras *x, Account *a, const IfsResource *r,
                                        const char *file);

struct Account {
    /* Set when the account is added, read-only after: any thread. */
    Model *model;
    const IfsAccountConfig *cfg;
    const IfsProviderType *type;
    IfsHttp *http;
    gpointer pstate; /* NULL when open() failed: open_error says why */
    IfsError *open_error;
    int refresh_s;
    guint max_resources;
    IfsControlTarget *refresh_target;
    char *cache_path; /* NULL: nothing is kept on disk */
    char *cache_problem; /* why the saved copy was not loaded, or NULL */
    /* From the saved copy, until the publisher takes them for its first
     * build (before the store starts). */
    GHashTable *saved_mtimes;

    /* Refresher thread only. */
    gboolean save_failing; /* the last save failed (warned) */
    gboolean first_done; /* the first refresh was counted */
    /* This refresh was asked for (refresh file, SIGHUP): the secret is read
     * again first, so that a fixed token_file works without a remount. */
    gboolean asked;

    GMutex lock; /* guards everything below */
    GCond cond; /* refresh requested or done, or stopping */
    GPtrArray *resources; /* IfsResource*, replaced wholesale (copy on write) */
    /* Action results win over lists read before them: every resource an
     * action replaced or removed, "kind/id" -> the change_gen it got. A
     * refresh that started at gen G keeps those above G as they are. */
    guint64 change_gen;
    GHashTable *changed_at;
    GHashTable *extras; /* "kind/id" -> Extras* */
    char *state;
    char *last_error;
    char *provider_last_action;
    gint64 last_refresh; /* epoch seconds, 0 = never */
    gint64 next_refresh; /* epoch seconds */
    gint64 next_due_mono; /* monotonic microseconds */
    gboolean ever_ok;
    guint failures; /* refreshes failed in a row */
    gboolean save_wanted; /* the next build hands its items to the saver */
    GPtrArray *save_items; /* IfsCacheItem*, taken by the refresher */
    guint64 refresh_requested, refresh_started, refresh_done;
    int refresh_errnum;
    /* The last refresh that listed the account: pages, resources,
     * requests, how long it took, and so how far apart refreshes start
     * (the interval, or longer when the budget's share needs it). */
    guint last_pages, last_resources;
    guint64 last_requests;
    gint64 last_seconds;
    gint64 effective_interval_s;

    /* The refresh under way: its own atomics, any thread. */
    IfsProgress progress;
    /* Its requests' IfsPriority (atomic): background, until someone asks
     * for a refresh while it runs; the one asked for comes next. */
    gint refresh_priority;
};

/* Opens the account with its provider (a failure is kept in open_error
 * and shown in /providers/, never fatal) and adds it to the model. */
Account *account_new(Model *m, const IfsAccountConfig *cfg, const IfsProviderType *type);
void account_free(Account *a);

/* Ask for a refresh that starts after this call; optionally wait for it
 * and return its errno (EINTR when the store stopped first). */
int account_request_refresh(Account *a, gboolean wait);

/* a->lock held. Replace (or drop, when `fresh` is NULL) one resource, as
 * an action's result: a new array, so that builders holding the old one
 * are not disturbed; the change is noted so that older lists cannot undo
 * it. `fresh` is sealed and referenced. */
void account_replace_resource(Account *a, const char *kind, const char *id, IfsResource *fresh);
/* a->lock held. The keys of the resources actions changed after change
 * `since` (a set, or NULL when none); changes up to `since` are forgotten,
 * as the list that started then saw them. */
GHashTable *account_take_changes_after(Account *a, guint64 since);

/* ---- small helpers ---- */
gint64 store_now(void);
char *store_one_line(const char *text, size_t max);
char *store_escaped_input(const char *buf, size_t len, size_t max);
char *store_resource_key(const char *kind, const char *id);
void store_redact_error(Account *a, IfsError *err);

/* The providers/<account>/refresh control. */
extern const IfsControlSpec store_refresh_spec;
