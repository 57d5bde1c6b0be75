/* The store: per-account data, background refresh, immutable snapshots
 * swapped atomically, kernel cache invalidation, control actions and
 * asynchronous operations.
 *
 * Threads:
 *  - one refresher per account: calls the provider (network), then asks the
 *    publisher to publish and waits for it;
 *  - one publisher for the whole store: builds the new tree from the
 *    accounts' data, reuses unchanged nodes, swaps the root under a short
 *    lock and sends invalidations for what changed. Invalidations are only
 *    ever sent from this thread, never from inside a FUSE request;
 *  - a pool of operation pollers;
 *  - FUSE threads: read the current root; control writes call the API in
 *    the writing thread and then wait for the publisher. */
#include "infrafs/store.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "infrafs/control.h"
#include "infrafs/http.h"
#include "infrafs/jsontree.h"
#include "infrafs/provider.h"

#define MAX_PROBLEM_TEXT 4096
#define POLL_MIN_MS 300
#define POLL_MAX_MS 5000

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
    /* Set once the terminal state is visible in the tree: readers of
     * operation/wait return only then, so what they read next is current. */
    gboolean done;
    /* Readers woken but not yet replied to: the kernel must see their short
     * read (and take the file's real size from it) before the publisher
     * invalidates the file, which would cancel that. */
    int replying;
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
} Built;

struct Account {
    IfsStore *store;
    const IfsAccountConfig *cfg;
    const IfsProviderType *type;
    IfsHttp *http;
    gpointer pstate;
    IfsError *open_error;
    int refresh_s;
    IfsControlTarget *refresh_target;
    GThread *thread;

    GMutex lock;           /* guards everything below */
    GCond cond;
    GPtrArray *resources;  /* IfsResource*, replaced wholesale (copy on write) */
    GHashTable *extras;    /* "kind/id" -> Extras* */
    char *state;
    char *last_error;
    char *provider_last_action;
    gint64 last_refresh;   /* epoch seconds, 0 = never */
    gint64 next_refresh;   /* epoch seconds */
    gint64 next_due_mono;  /* monotonic microseconds */
    gboolean ever_ok;
    gboolean first_done;
    guint64 refresh_requested, refresh_started, refresh_done;
    int refresh_errnum;

    /* publisher thread only */
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

    GMutex root_lock;
    IfsNode *root;

    GMutex ino_lock;
    GHashTable *ino_paths; /* guint64* -> char* */

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

static const IfsCommandSpec refresh_commands[] = {{"1", IFS_FORCE_NEVER}, {NULL, 0}};
static const IfsControlSpec refresh_spec = {"providers", "refresh", refresh_commands};

/* The order kind directories appear in; CONTRACT §3. */
static const char *const known_kinds[] = {
    "vps", "servers", "incidents", "heartbeats", "regions", "sizes", "deployments", NULL,
};

static gboolean store_stopping(IfsStore *s)
{
    return g_atomic_int_get(&s->stopping) != 0;
}

/* ---- small helpers ---------------------------------------------------- */

static char *iso_time(gint64 epoch)
{
    GDateTime *dt;
    char *text;

    if (epoch <= 0)
        return g_strdup("");
    dt = g_date_time_new_from_unix_utc(epoch);
    text = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return text;
}

static gint64 now_epoch(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* One line, no control characters: what goes into last_action/last_error. */
static char *one_line(const char *text, size_t max)
{
    GString *out = g_string_new(NULL);

    for (const char *p = text ? text : ""; *p && out->len < max; p++)
        g_string_append_c(out, (unsigned char)*p < 0x20 ? ' ' : *p);
    return g_string_free(out, FALSE);
}

static char *resource_key(const char *kind, const char *id)
{
    return g_strconcat(kind, "/", id, NULL);
}

/* A URL for display: drop any user:password@ part. */
static char *url_without_userinfo(const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');

    GString *out;

    if (!at || (slash && slash < at))
        return g_strdup(url);
    out = g_string_new_len(url, host - url);
    g_string_append(out, at + 1);
    return g_string_free(out, FALSE);
}

/* ---- targets and operations --------------------------------------------- */

static IfsControlTarget *target_new(TargetKind kind, Account *a, const char *res_kind,
                                    const char *res_id, const char *file)
{
    IfsControlTarget *t = g_new0(IfsControlTarget, 1);

    g_atomic_ref_count_init(&t->ref);
    t->kind = kind;
    t->account = a;
    t->res_kind = g_strdup(res_kind);
    t->res_id = g_strdup(res_id);
    t->file = g_strdup(file);
    return t;
}

static IfsControlTarget *target_ref(IfsControlTarget *t)
{
    g_atomic_ref_count_inc(&t->ref);
    return t;
}

static void operation_unref(Operation *op);

static void target_unref(IfsControlTarget *t)
{
    if (!t || !g_atomic_ref_count_dec(&t->ref))
        return;
    if (t->op)
        operation_unref(t->op);
    g_free(t->res_kind);
    g_free(t->res_id);
    g_free(t->file);
    g_free(t);
}

static Operation *operation_ref(Operation *op)
{
    g_atomic_ref_count_inc(&op->ref);
    return op;
}

static void operation_unref(Operation *op)
{
    if (!op || !g_atomic_ref_count_dec(&op->ref))
        return;
    g_free(op->res_kind);
    g_free(op->res_id);
    g_free(op->job_id);
    g_free(op->poll_url);
    g_free(op->status_text);
    g_free(op);
}

static void extras_free(gpointer data)
{
    Extras *x = data;

    g_free(x->last_action);
    if (x->op)
        operation_unref(x->op);
    target_unref(x->wait_target);
    g_hash_table_destroy(x->targets);
    g_free(x);
}

static Extras *extras_get(Account *a, const char *key)
{
    Extras *x = g_hash_table_lookup(a->extras, key);

    if (!x) {
        x = g_new0(Extras, 1);
        x->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)target_unref);
        g_hash_table_insert(a->extras, g_strdup(key), x);
    }
    return x;
}

static IfsControlTarget *extras_target(Extras *x, Account *a, IfsResource *r,
                                       const char *file)
{
    IfsControlTarget *t = g_hash_table_lookup(x->targets, file);

    if (!t) {
        t = target_new(TARGET_CONTROL, a, r->kind, r->id, file);
        g_hash_table_insert(x->targets, g_strdup(file), t);
    }
    return t;
}

static void built_free(gpointer data)
{
    Built *b = data;

    ifs_resource_unref(b->res);
    ifs_node_unref(b->node);
    g_free(b);
}

/* ---- tree building (publisher thread) ---------------------------------- */

static void add_file(IfsDirBuilder *b, const char *name, const char *text)
{
    char *path = ifs_path_join(ifs_dir_builder_path(b), name);

    ifs_dir_builder_add(b, ifs_node_new_file(path, text, strlen(text), 0));
    g_free(path);
}

static void add_line(IfsDirBuilder *b, const char *name, const char *value)
{
    char *text = value && *value ? g_strconcat(value, "\n", NULL) : g_strdup("");

    add_file(b, name, text);
    g_free(text);
}

static IfsNode *build_operation_dir(const char *res_path, Extras *x, IfsStore *s)
{
    Operation *op = x->op;
    char *path = ifs_path_join(res_path, "operation");
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    char *wait_path = ifs_path_join(path, "wait");
    char *final_text = NULL;
    IfsNode *wait;

    g_mutex_lock(&s->op_lock);
    add_line(b, "status", op->status_text);
    if (op->state != IFS_OP_PENDING)
        final_text = g_strconcat(op->status_text, "\n", NULL);
    g_mutex_unlock(&s->op_lock);
    add_line(b, "job_id", op->job_id);
    add_line(b, "poll_url", op->poll_url);
    wait = ifs_node_new_wait(wait_path, final_text, target_ref(x->wait_target),
                             (IfsTargetFree)target_unref);
    /* Each operation's wait file is a new inode: the kernel then forgets the
     * previous one by name, never by invalidating pages a reader may hold. */
    {
        char *identity = g_strconcat(wait_path, "#", op->job_id ? op->job_id : "", NULL);
        wait->ino = ifs_ino_for_path(identity);
        g_free(identity);
    }
    ifs_dir_builder_add(b, wait);
    g_free(final_text);
    g_free(wait_path);
    g_free(path);
    return ifs_dir_builder_finish(b, 0);
}

static IfsNode *build_resource(Account *a, IfsResource *r, const char *path,
                               Extras *x, GString *problems)
{
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    gboolean has_controls = FALSE;
    GString *field_problems = g_string_new(NULL);
    size_t json_len;
    char *json;

    /* Synthesized entries first: they win over API fields of the same name. */
    for (const IfsControlSpec *spec = a->type->controls; spec && spec->kind; spec++) {
        char *cpath, *line;

        if (strcmp(spec->kind, r->kind) != 0)
            continue;
        has_controls = TRUE;
        cpath = ifs_path_join(path, spec->file);
        line = ifs_control_commands_line(spec);
        ifs_dir_builder_add(b, ifs_node_new_control(cpath, line,
                            target_ref(extras_target(x, a, r, spec->file)),
                            (IfsTargetFree)target_unref));
        g_free(line);
        g_free(cpath);
    }
    if (has_controls)
        add_file(b, "last_action", x->last_action ? x->last_action : "");
    if (x->op)
        ifs_dir_builder_add(b, build_operation_dir(path, x, a->store));
    json = ifs_json_pretty(r->object, &json_len);
    {
        char *jpath = ifs_path_join(path, "json");
        ifs_dir_builder_add(b, ifs_node_new_file(jpath, json, json_len, 0));
        g_free(jpath);
    }
    g_free(json);
    if (ifs_json_fill_dir(b, r->object, field_problems) > 0 && problems->len < MAX_PROBLEM_TEXT)
        g_string_append_printf(problems, "%s %s: %s", r->kind, r->id, field_problems->str);
    g_string_free(field_problems, TRUE);
    return ifs_dir_builder_finish(b, 0);
}

/* The resource's node, rebuilt only when the API data or our extras changed;
 * a rebuilt node still shares every unchanged file with the previous one. */
static IfsNode *resource_node(Account *a, IfsResource *r, const char *key,
                              const char *path, GString *problems)
{
    Extras *x = extras_get(a, key);
    Built *prev = g_hash_table_lookup(a->built, key);
    IfsNode *node;
    Built *now;

    if (prev && prev->res == r && prev->gen == x->gen)
        return ifs_node_ref(prev->node);
    node = build_resource(a, r, path, x, problems);
    node = ifs_node_merge_unchanged(node, prev ? prev->node : NULL);
    now = g_new0(Built, 1);
    now->res = ifs_resource_ref(r);
    now->gen = x->gen;
    now->node = ifs_node_ref(node);
    g_hash_table_replace(a->built, g_strdup(key), now);
    return node;
}

static void build_kind_dirs(Account *a, GString *problems)
{
    GHashTable *builders = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint skipped = 0;

    for (const char *const *k = a->type->kinds; *k; k++) {
        char *path = g_strconcat(*k, "/", a->cfg->name, NULL);
        g_hash_table_insert(builders, (gpointer)*k, ifs_dir_builder_new(path));
        g_free(path);
    }
    for (guint i = 0; i < a->resources->len; i++) {
        IfsResource *r = g_ptr_array_index(a->resources, i);
        IfsDirBuilder *b = r->kind ? g_hash_table_lookup(builders, r->kind) : NULL;
        char *name = r->id ? ifs_name_escape(r->id, strlen(r->id)) : NULL;
        char *key, *path;

        if (!b || !name || ifs_dir_builder_has(b, name)) {
            if (skipped++ < 5 && problems->len < MAX_PROBLEM_TEXT)
                g_string_append_printf(problems, "skipped %s '%s': %s; ",
                                       r->kind ? r->kind : "resource", r->id ? r->id : "",
                                       !b ? "unknown kind" : !name ? "id unusable as a file name"
                                                              : "duplicate id");
            g_free(name);
            continue;
        }
        key = resource_key(r->kind, r->id);
        path = ifs_path_join(ifs_dir_builder_path(b), name);
        ifs_dir_builder_add(b, resource_node(a, r, key, path, problems));
        g_hash_table_add(seen, key);
        g_free(path);
        g_free(name);
    }
    if (skipped > 5)
        g_string_append_printf(problems, "(%u resources skipped in all); ", skipped);

    /* Forget built nodes of resources that are gone. */
    {
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, a->built);
        while (g_hash_table_iter_next(&it, &key, NULL))
            if (!g_hash_table_contains(seen, key))
                g_hash_table_iter_remove(&it);
    }
    for (const char *const *k = a->type->kinds; *k; k++) {
        IfsNode *fresh = ifs_dir_builder_finish(g_hash_table_lookup(builders, *k), 0);
        IfsNode *old = g_hash_table_lookup(a->kind_dirs, *k);
        g_hash_table_replace(a->kind_dirs, (gpointer)*k, ifs_node_merge_unchanged(fresh, old));
    }
    g_hash_table_destroy(builders);
    g_hash_table_destroy(seen);
}

static IfsNode *build_provider_dir(Account *a, const char *problems)
{
    char *path = g_strconcat("providers/", a->cfg->name, NULL);
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    char *text, *url;
    gint64 remaining;
    char *last_error;

    add_line(b, "type", a->type->schema.type);
    url = url_without_userinfo(a->cfg->url);
    add_line(b, "url", url);
    g_free(url);
    add_line(b, "state", a->state);
    text = iso_time(a->last_refresh);
    add_line(b, "last_refresh", text);
    g_free(text);
    text = iso_time(a->next_refresh);
    add_line(b, "next_refresh", text);
    g_free(text);
    last_error = g_strconcat(a->last_error ? a->last_error : "",
                             problems && *problems && a->last_error && *a->last_error ? "; " : "",
                             problems ? problems : "", NULL);
    text = one_line(last_error, MAX_PROBLEM_TEXT);
    add_line(b, "last_error", text);
    g_free(text);
    g_free(last_error);
    text = g_strdup_printf("%d", a->refresh_s);
    add_line(b, "refresh_interval", text);
    g_free(text);
    text = g_strdup_printf("%" G_GUINT64_FORMAT, ifs_http_request_count(a->http));
    add_line(b, "requests", text);
    g_free(text);
    remaining = ifs_http_rate_limit_remaining(a->http);
    text = remaining >= 0 ? g_strdup_printf("%" G_GINT64_FORMAT, remaining) : g_strdup("");
    add_line(b, "rate_limit_remaining", text);
    g_free(text);
    add_file(b, "last_action", a->provider_last_action ? a->provider_last_action : "");
    {
        char *cpath = ifs_path_join(path, "refresh");
        char *line = ifs_control_commands_line(&refresh_spec);
        ifs_dir_builder_add(b, ifs_node_new_control(cpath, line, target_ref(a->refresh_target),
                                                    (IfsTargetFree)target_unref));
        g_free(line);
        g_free(cpath);
    }
    g_free(path);
    return ifs_dir_builder_finish(b, 0);
}

static void build_account(Account *a)
{
    GString *problems = g_string_new(NULL);
    IfsNode *fresh;

    g_mutex_lock(&a->lock);
    build_kind_dirs(a, problems);
    fresh = build_provider_dir(a, problems->str);
    g_mutex_unlock(&a->lock);
    fresh = ifs_node_merge_unchanged(fresh, a->provider_dir);
    if (a->provider_dir)
        ifs_node_unref(a->provider_dir);
    a->provider_dir = fresh;
    g_string_free(problems, TRUE);
}

static const char readme_text[] =
    "infrafs: your hosted infrastructure as files\n"
    "\n"
    "providers/<account>/     state of each configured account: state, last_refresh,\n"
    "                         next_refresh, last_error, requests, rate_limit_remaining;\n"
    "                         `echo 1 > refresh` refreshes now and returns when done\n"
    "vps/<account>/<id>/      servers and VPSes (hostup, heo, deployhq)\n"
    "\n"
    "Each resource is a directory with one file per field of the provider's object\n"
    "(snake_case names, value plus newline, null = empty file), subdirectories for\n"
    "nested objects, and `json` holding the whole object.\n"
    "\n"
    "Control files (mode 0644) list the commands they accept when read; writing one\n"
    "performs it:  echo restart > vps/<account>/<id>/power\n"
    "Forced actions need the word force:  echo 'reset force' > .../power\n"
    "Every write records its outcome in last_action. Asynchronous operations show\n"
    "up under operation/; `cat operation/wait` blocks until the operation ends.\n"
    "\n"
    "Errors: EINVAL bad command, EACCES unauthorized, ENOENT gone, EBUSY not ready,\n"
    "EAGAIN rate limited, EIO provider error, ETIMEDOUT/EHOSTUNREACH network.\n"
    "See man infrafs.\n";

static IfsNode *build_root(IfsStore *s)
{
    IfsDirBuilder *root = ifs_dir_builder_new("");
    IfsDirBuilder *providers = ifs_dir_builder_new("providers");

    ifs_dir_builder_add(root, ifs_node_new_file("README", readme_text,
                                                sizeof readme_text - 1, 1));
    for (guint i = 0; i < s->accounts->len; i++) {
        Account *a = g_ptr_array_index(s->accounts, i);
        if (a->provider_dir)
            ifs_dir_builder_add(providers, ifs_node_ref(a->provider_dir));
    }
    ifs_dir_builder_add(root, ifs_dir_builder_finish(providers, 0));
    for (const char *const *k = known_kinds; *k; k++) {
        IfsDirBuilder *kind_dir = NULL;
        for (guint i = 0; i < s->accounts->len; i++) {
            Account *a = g_ptr_array_index(s->accounts, i);
            IfsNode *dir = g_hash_table_lookup(a->kind_dirs, *k);
            if (!dir)
                continue;
            if (!kind_dir)
                kind_dir = ifs_dir_builder_new(*k);
            ifs_dir_builder_add(kind_dir, ifs_node_ref(dir));
        }
        if (kind_dir)
            ifs_dir_builder_add(root, ifs_dir_builder_finish(kind_dir, 0));
    }
    return ifs_dir_builder_finish(root, 0);
}

/* ---- publishing (publisher thread) -------------------------------------- */

typedef struct {
    IfsStore *store;
    GArray *waits; /* guint64: wait files to invalidate after waking readers */
} DiffSink;

static void sink_changed(void *data, uint64_t ino)
{
    IfsStore *s = ((DiffSink *)data)->store;

    if (s->inv.inval_inode)
        s->inv.inval_inode(s->inv.data, ino);
}

static void sink_wait_changed(void *data, uint64_t ino)
{
    DiffSink *d = data;
    guint64 v = ino;

    g_array_append_val(d->waits, v);
}

static void sink_removed(void *data, uint64_t parent, const char *name)
{
    IfsStore *s = ((DiffSink *)data)->store;

    if (s->inv.inval_entry)
        s->inv.inval_entry(s->inv.data, parent, name);
}

static void mark_done(IfsStore *s, Operation *op)
{
    g_mutex_lock(&s->op_lock);
    op->done = TRUE;
    g_cond_broadcast(&s->op_cond);
    g_mutex_unlock(&s->op_lock);
}

/* Until every woken reader of `op` has replied (bounded: a reader that
 * vanished must not stall publishing). */
static void wait_replies(IfsStore *s, Operation *op)
{
    gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    g_mutex_lock(&s->op_lock);
    while (op->replying > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&s->op_cond, &s->op_lock, until);
    g_mutex_unlock(&s->op_lock);
}

/* Swap in a new root, then tell the kernel what changed. Readers blocked in
 * operation/wait of operations that just ended are woken after every other
 * invalidation (so what they read next is current) and before their own
 * file is invalidated (they hold its page lock until they return). */
static void publish_root(IfsStore *s, GPtrArray *finished_ops)
{
    IfsNode *fresh = build_root(s);
    IfsNode *old;
    DiffSink d = {s, g_array_new(FALSE, FALSE, sizeof(guint64))};
    IfsNodeDiffSink sink = {
        .changed = sink_changed,
        .removed = sink_removed,
        .wait_changed = sink_wait_changed,
        .data = &d,
    };

    g_mutex_lock(&s->root_lock);
    old = s->root;
    g_mutex_unlock(&s->root_lock);
    fresh = ifs_node_merge_unchanged(fresh, old);
    g_mutex_lock(&s->root_lock);
    s->root = fresh;
    g_mutex_unlock(&s->root_lock);
    /* Only after the swap: a re-read must find the new data. */
    if (old) {
        ifs_node_diff(old, fresh, &sink);
        ifs_node_unref(old);
    }
    for (guint i = 0; i < finished_ops->len; i++)
        mark_done(s, g_ptr_array_index(finished_ops, i));
    for (guint i = 0; i < finished_ops->len; i++)
        wait_replies(s, g_ptr_array_index(finished_ops, i));
    for (guint i = 0; i < d.waits->len; i++)
        if (s->inv.inval_inode)
            s->inv.inval_inode(s->inv.data, g_array_index(d.waits, guint64, i));
    g_array_unref(d.waits);
}

static void done_signal(Done *d)
{
    g_mutex_lock(&d->lock);
    d->finished = TRUE;
    g_cond_broadcast(&d->cond);
    g_mutex_unlock(&d->lock);
}

static gpointer publisher_main(gpointer data)
{
    IfsStore *s = data;

    for (;;) {
        PublishReq *req = g_async_queue_pop(s->publish_q);
        GPtrArray *batch = g_ptr_array_new();
        GPtrArray *finished = g_ptr_array_new();
        gboolean stop = FALSE;

        /* Coalesce everything queued: one root swap serves them all. */
        do {
            g_ptr_array_add(batch, req);
        } while ((req = g_async_queue_try_pop(s->publish_q)) != NULL);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            gboolean dup = FALSE;
            if (!r->account) {
                stop = TRUE;
                continue;
            }
            if (r->finished_op)
                g_ptr_array_add(finished, r->finished_op);
            for (guint j = 0; j < i && !dup; j++)
                dup = ((PublishReq *)g_ptr_array_index(batch, j))->account == r->account;
            if (!dup)
                build_account(r->account);
        }
        publish_root(s, finished);
        for (guint i = 0; i < batch->len; i++) {
            PublishReq *r = g_ptr_array_index(batch, i);
            if (r->done)
                done_signal(r->done);
            g_free(r);
        }
        g_ptr_array_free(batch, TRUE);
        g_ptr_array_free(finished, TRUE);
        if (stop)
            return NULL;
    }
}

/* Publish an account's current data and wait until the new tree is live and
 * the kernel was told what changed. `finished_op`, if not NULL, ended and
 * its readers are woken within this publish. Never called from the
 * publisher. */
static void publish_finishing(Account *a, Operation *finished_op)
{
    Done d;
    PublishReq *req = g_new0(PublishReq, 1);

    g_mutex_init(&d.lock);
    g_cond_init(&d.cond);
    d.finished = FALSE;
    req->account = a;
    req->done = &d;
    req->finished_op = finished_op;
    g_async_queue_push(a->store->publish_q, req);
    g_mutex_lock(&d.lock);
    while (!d.finished)
        g_cond_wait(&d.cond, &d.lock);
    g_mutex_unlock(&d.lock);
    g_mutex_clear(&d.lock);
    g_cond_clear(&d.cond);
}

static void publish_sync(Account *a)
{
    publish_finishing(a, NULL);
}

/* ---- refresh ------------------------------------------------------------ */

static const char *state_for_error(const Account *a, const IfsError *err)
{
    if (err->errnum == EACCES)
        return "unauthorized";
    return a->ever_ok ? "stale" : "error";
}

static void first_refresh_finished(Account *a)
{
    IfsStore *s = a->store;

    if (a->first_done)
        return;
    a->first_done = TRUE;
    g_mutex_lock(&s->first_lock);
    s->first_pending--;
    g_cond_broadcast(&s->first_cond);
    g_mutex_unlock(&s->first_lock);
}

/* Keep our extras only for resources that still exist, or whose operation is
 * still running. */
static void prune_extras(Account *a)
{
    GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer key, value;

    for (guint i = 0; i < a->resources->len; i++) {
        IfsResource *r = g_ptr_array_index(a->resources, i);
        if (r->kind && r->id)
            g_hash_table_add(live, resource_key(r->kind, r->id));
    }
    g_hash_table_iter_init(&it, a->extras);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Extras *x = value;
        if (!g_hash_table_contains(live, key) && !(x->op && x->op->state == IFS_OP_PENDING))
            g_hash_table_iter_remove(&it);
    }
    g_hash_table_destroy(live);
}

static int run_refresh(Account *a)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *err = NULL;
    gboolean ok;
    int errnum = 0;

    if (a->pstate)
        ok = a->type->list(a->pstate, list, &err);
    else {
        ok = FALSE;
        err = ifs_error_copy(a->open_error);
    }
    g_mutex_lock(&a->lock);
    if (ok) {
        g_ptr_array_unref(a->resources);
        a->resources = g_ptr_array_ref(list);
        g_free(a->state);
        a->state = g_strdup("ok");
        g_free(a->last_error);
        a->last_error = g_strdup("");
        a->last_refresh = now_epoch();
        a->ever_ok = TRUE;
        prune_extras(a);
    } else {
        /* The last good data stays; the account says why. */
        g_free(a->state);
        a->state = g_strdup(state_for_error(a, err));
        g_free(a->last_error);
        a->last_error = one_line(err->message, MAX_PROBLEM_TEXT);
        errnum = err->errnum;
    }
    a->next_refresh = now_epoch() + a->refresh_s;
    a->next_due_mono = g_get_monotonic_time() + (gint64)a->refresh_s * G_USEC_PER_SEC;
    g_mutex_unlock(&a->lock);
    if (!ok) {
        g_warning("account '%s': refresh failed: %s", a->cfg->name, err->message);
        ifs_error_free(err);
    }
    g_ptr_array_unref(list);
    publish_sync(a);
    return errnum;
}

static gpointer account_main(gpointer data)
{
    Account *a = data;
    IfsStore *s = a->store;

    g_mutex_lock(&a->lock);
    while (!store_stopping(s)) {
        guint64 gen;
        int errnum;

        if (a->refresh_requested == a->refresh_started &&
            g_get_monotonic_time() < a->next_due_mono) {
            g_cond_wait_until(&a->cond, &a->lock, a->next_due_mono);
            continue;
        }
        gen = a->refresh_requested;
        a->refresh_started = gen;
        g_mutex_unlock(&a->lock);
        errnum = run_refresh(a);
        g_mutex_lock(&a->lock);
        a->refresh_done = gen;
        a->refresh_errnum = errnum;
        first_refresh_finished(a);
        g_cond_broadcast(&a->cond);
    }
    g_mutex_unlock(&a->lock);
    return NULL;
}

/* Ask for a refresh that starts after this call; optionally wait for it. */
static int request_refresh(Account *a, gboolean wait)
{
    guint64 mine;
    int errnum = 0;

    g_mutex_lock(&a->lock);
    mine = ++a->refresh_requested;
    g_cond_broadcast(&a->cond);
    while (wait && a->refresh_done < mine && !store_stopping(a->store))
        g_cond_wait(&a->cond, &a->lock);
    if (wait)
        errnum = store_stopping(a->store) && a->refresh_done < mine ? EINTR : a->refresh_errnum;
    g_mutex_unlock(&a->lock);
    return errnum;
}

/* ---- single-resource updates (worker pool) ------------------------------- */

typedef enum { TASK_POLL, TASK_FETCH } TaskKind;

typedef struct {
    TaskKind kind;
    Account *account;
    Operation *op;      /* TASK_POLL */
    char *res_kind;     /* TASK_FETCH */
    char *res_id;
} Task;

static void task_free(Task *t)
{
    if (t->op)
        operation_unref(t->op);
    g_free(t->res_kind);
    g_free(t->res_id);
    g_free(t);
}

/* Replace (or drop, when `fresh` is NULL) one resource: a new array, so
 * that builders holding the old one are not disturbed. */
static void replace_resource(Account *a, const char *kind, const char *id, IfsResource *fresh)
{
    GPtrArray *next = g_ptr_array_new_full(a->resources->len + 1,
                                           (GDestroyNotify)ifs_resource_unref);
    gboolean placed = FALSE;

    for (guint i = 0; i < a->resources->len; i++) {
        IfsResource *r = g_ptr_array_index(a->resources, i);
        if (r->kind && r->id && strcmp(r->kind, kind) == 0 && strcmp(r->id, id) == 0) {
            if (fresh && !placed)
                g_ptr_array_add(next, ifs_resource_ref(fresh));
            placed = TRUE;
            continue;
        }
        g_ptr_array_add(next, ifs_resource_ref(r));
    }
    if (fresh && !placed)
        g_ptr_array_add(next, ifs_resource_ref(fresh));
    g_ptr_array_unref(a->resources);
    a->resources = next;
}

static void fetch_one(Account *a, const char *kind, const char *id, gboolean publish)
{
    IfsError *err = NULL;
    IfsResource *fresh;

    if (!a->pstate || !a->type->fetch)
        return;
    fresh = a->type->fetch(a->pstate, kind, id, &err);
    if (!fresh && err->errnum != ENOENT) {
        /* The periodic refresh will catch up; the last good data stays. */
        g_message("account '%s': re-reading %s %s failed: %s", a->cfg->name, kind, id,
                  err->message);
        ifs_error_free(err);
        return;
    }
    ifs_error_free(err);
    g_mutex_lock(&a->lock);
    replace_resource(a, kind, id, fresh);
    g_mutex_unlock(&a->lock);
    if (fresh)
        ifs_resource_unref(fresh);
    if (publish)
        publish_sync(a);
}

static void bump_extras(Account *a, const char *kind, const char *id)
{
    char *key = resource_key(kind, id);

    g_mutex_lock(&a->lock);
    extras_get(a, key)->gen++;
    g_mutex_unlock(&a->lock);
    g_free(key);
}

static gboolean sleep_unless_stopping(IfsStore *s, gint64 ms)
{
    gint64 until = g_get_monotonic_time() + ms * 1000;

    g_mutex_lock(&s->op_lock);
    while (!store_stopping(s) && g_get_monotonic_time() < until)
        g_cond_wait_until(&s->op_cond, &s->op_lock, until);
    g_mutex_unlock(&s->op_lock);
    return !store_stopping(s);
}

/* The final texts of operation/wait: a fixed set, none longer than
 * "completed\n", which is the size operation/wait reports while pending. */
static const char *final_word(IfsOpState state, const char *text)
{
    static const char *const failures[] = {"failed", "timeout", "unknown", "cancelled"};

    if (state == IFS_OP_COMPLETED)
        return "completed";
    for (gsize i = 0; i < G_N_ELEMENTS(failures); i++)
        if (g_strcmp0(text, failures[i]) == 0)
            return text;
    return "failed";
}

/* Set an operation's status; returns TRUE if it changed. */
static gboolean op_update(IfsStore *s, Operation *op, IfsOpState state, const char *text)
{
    gboolean changed;

    if (state != IFS_OP_PENDING)
        text = final_word(state, text);
    g_mutex_lock(&s->op_lock);
    changed = op->state != state || g_strcmp0(op->status_text, text) != 0;
    if (changed) {
        g_free(op->status_text);
        op->status_text = g_strdup(text);
        op->state = state;
    }
    g_mutex_unlock(&s->op_lock);
    return changed;
}

static void poll_operation(Account *a, Operation *op)
{
    IfsStore *s = a->store;
    gint64 deadline = g_get_monotonic_time() +
                      (gint64)s->opts.op_poll_timeout_s * G_USEC_PER_SEC;
    gint64 interval = POLL_MIN_MS;
    IfsOpState state = IFS_OP_PENDING;

    while (state == IFS_OP_PENDING && sleep_unless_stopping(s, interval)) {
        IfsError *err = NULL;
        char *text = NULL;

        if (a->type->poll(a->pstate, op->poll_url, &state, &text, &err)) {
            if (op_update(s, op, state, text)) {
                bump_extras(a, op->res_kind, op->res_id);
                if (state == IFS_OP_PENDING)
                    publish_sync(a);
            }
        } else if (err->errnum == ENOENT || err->errnum == EACCES) {
            g_message("account '%s': operation %s: %s", a->cfg->name, op->job_id, err->message);
            state = IFS_OP_FAILED;
            op_update(s, op, state, "unknown");
            bump_extras(a, op->res_kind, op->res_id);
        } else {
            g_debug("account '%s': polling %s: %s", a->cfg->name, op->job_id, err->message);
        }
        g_free(text);
        ifs_error_free(err);
        if (state == IFS_OP_PENDING && g_get_monotonic_time() > deadline) {
            state = IFS_OP_FAILED;
            op_update(s, op, state, "timeout");
            bump_extras(a, op->res_kind, op->res_id);
        }
        interval = MIN(interval * 2, POLL_MAX_MS);
    }
    if (state == IFS_OP_PENDING) { /* stopping */
        op_update(s, op, IFS_OP_FAILED, "cancelled");
        mark_done(s, op);
        return;
    }
    /* Terminal: show the resource as it is now, with the final status. */
    fetch_one(a, op->res_kind, op->res_id, FALSE);
    publish_finishing(a, op);
}

static void worker_main(gpointer data, gpointer user)
{
    Task *t = data;

    (void)user;
    if (t->kind == TASK_POLL)
        poll_operation(t->account, t->op);
    else if (!store_stopping(t->account->store))
        fetch_one(t->account, t->res_kind, t->res_id, TRUE);
    task_free(t);
}

/* ---- control writes ------------------------------------------------------ */

static char *command_text_for_log(const IfsCommand *cmd, const char *buf, size_t len)
{
    char *raw;
    char *line;

    if (cmd)
        return ifs_command_to_string(cmd);
    raw = g_strndup(buf, MIN(len, 64));
    line = one_line(g_strstrip(raw), 64);
    g_free(raw);
    if (!*line) {
        g_free(line);
        return g_strdup("(empty)");
    }
    for (char *p = line; *p; p++)
        if (*p == ' ')
            *p = '_';
    return line;
}

/* "<UTC time> <command> <ok|failed> <HTTP status> <code and message>\n" */
static char *last_action_line(const char *command, const IfsError *err,
                              const IfsActionResult *res)
{
    char *when = iso_time(now_epoch());
    char *line;

    if (err) {
        char *msg = one_line(err->message, 1024);
        char status[16];
        if (err->http_status > 0)
            g_snprintf(status, sizeof status, "%d", err->http_status);
        else
            g_strlcpy(status, "-", sizeof status);
        line = g_strdup_printf("%s %s failed %s %s%s%s\n", when, command, status,
                               err->code ? err->code : "", err->code ? ": " : "", msg);
        g_free(msg);
    } else {
        char *msg = one_line(res->op_job_id ? res->op_job_id : res->message, 1024);
        char status[16];
        if (res->http_status > 0)
            g_snprintf(status, sizeof status, "%d", res->http_status);
        else
            g_strlcpy(status, "-", sizeof status);
        line = g_strdup_printf("%s %s ok %s%s%s%s%s\n", when, command, status,
                               res->op_status ? " " : "", res->op_status ? res->op_status : "",
                               *msg ? " " : "", msg);
        g_free(msg);
    }
    g_free(when);
    return line;
}

static Operation *start_operation(Account *a, IfsControlTarget *t, const IfsActionResult *res)
{
    Operation *op = g_new0(Operation, 1);

    g_atomic_ref_count_init(&op->ref);
    op->account = a;
    op->res_kind = g_strdup(t->res_kind);
    op->res_id = g_strdup(t->res_id);
    op->job_id = g_strdup(res->op_job_id);
    op->poll_url = g_strdup(res->op_poll_url);
    op->status_text = g_strdup(res->op_status ? res->op_status : "queued");
    op->state = IFS_OP_PENDING;
    return op;
}

static void queue_task(IfsStore *s, Task *t)
{
    GError *gerr = NULL;

    if (!g_thread_pool_push(s->workers, t, &gerr)) {
        g_warning("cannot queue background work: %s", gerr->message);
        g_error_free(gerr);
        task_free(t);
    }
}

static int resource_control_write(Account *a, IfsControlTarget *t, const char *buf,
                                  size_t len, off_t offset)
{
    const IfsControlSpec *spec = ifs_provider_control(a->type, t->res_kind, t->file);
    IfsError *err = NULL;
    IfsCommand *cmd = NULL;
    IfsActionResult res = {0};
    Operation *op = NULL;
    char *key, *command, *line;
    gboolean ok = FALSE;
    int errnum;

    if (!spec)
        err = ifs_error_new(EINVAL, 0, NULL, "%s does not accept commands", t->file);
    else if (offset != 0)
        err = ifs_error_new(EINVAL, 0, NULL,
                            "write the whole command at once, at offset 0 "
                            "(as `echo cmd > %s` does)", t->file);
    else
        cmd = ifs_control_parse(spec, buf, len, &err);
    if (cmd && !a->pstate)
        err = ifs_error_copy(a->open_error);
    else if (cmd)
        ok = a->type->act(a->pstate, t->res_kind, t->res_id, t->file, cmd, &res, &err);

    command = command_text_for_log(cmd, buf, len);
    line = last_action_line(command, ok ? NULL : err, &res);
    key = resource_key(t->res_kind, t->res_id);
    if (ok && res.op_poll_url && a->type->poll)
        op = start_operation(a, t, &res);

    g_mutex_lock(&a->lock);
    {
        Extras *x = extras_get(a, key);
        g_free(x->last_action);
        x->last_action = line;
        if (op) {
            if (x->op)
                operation_unref(x->op);
            x->op = operation_ref(op);
            target_unref(x->wait_target);
            x->wait_target = target_new(TARGET_OPERATION, a, t->res_kind, t->res_id, "wait");
            x->wait_target->op = operation_ref(op);
        }
        x->gen++;
    }
    g_mutex_unlock(&a->lock);
    publish_sync(a);

    if (op) {
        Task *task = g_new0(Task, 1);
        task->kind = TASK_POLL;
        task->account = a;
        task->op = op;
        queue_task(a->store, task);
    } else if (ok) {
        Task *task = g_new0(Task, 1);
        task->kind = TASK_FETCH;
        task->account = a;
        task->res_kind = g_strdup(t->res_kind);
        task->res_id = g_strdup(t->res_id);
        queue_task(a->store, task);
    }
    if (!ok)
        g_message("%s/%s/%s/%s: '%s' failed: %s", t->res_kind, a->cfg->name, t->res_id,
                  t->file, command, err->message);
    errnum = ok ? 0 : err->errnum;
    ifs_error_free(err);
    ifs_command_free(cmd);
    ifs_action_result_clear(&res);
    g_free(command);
    g_free(key);
    return errnum;
}

static int refresh_control_write(Account *a, const char *buf, size_t len, off_t offset)
{
    IfsError *err = NULL;
    IfsCommand *cmd = NULL;
    IfsActionResult res = {0};
    char *command, *line;
    int errnum;

    if (offset != 0)
        err = ifs_error_new(EINVAL, 0, NULL, "write the whole command at offset 0");
    else
        cmd = ifs_control_parse(&refresh_spec, buf, len, &err);
    if (cmd) {
        errnum = request_refresh(a, TRUE);
        if (errnum) {
            g_mutex_lock(&a->lock);
            err = ifs_error_new(errnum, 0, NULL, "refresh failed: %s", a->last_error);
            g_mutex_unlock(&a->lock);
        }
    }
    command = command_text_for_log(cmd, buf, len);
    res.http_status = 0;
    res.message = g_strdup("refreshed");
    line = last_action_line(command, err, &res);
    g_mutex_lock(&a->lock);
    g_free(a->provider_last_action);
    a->provider_last_action = line;
    g_mutex_unlock(&a->lock);
    publish_sync(a);
    errnum = err ? err->errnum : 0;
    ifs_error_free(err);
    ifs_command_free(cmd);
    ifs_action_result_clear(&res);
    g_free(command);
    return errnum;
}

int ifs_store_control_write(IfsStore *store, IfsNode *node, const char *buf,
                            size_t len, off_t offset)
{
    IfsControlTarget *t = node->target;

    (void)store;
    if (node->type != IFS_NODE_CONTROL || !t)
        return EACCES;
    if (t->kind == TARGET_REFRESH)
        return refresh_control_write(t->account, buf, len, offset);
    return resource_control_write(t->account, t, buf, len, offset);
}

char *ifs_store_wait_text(IfsStore *store, IfsNode *node, int timeout_ms, int *errnum)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
    Operation *op = node->target ? node->target->op : NULL;
    char *text = NULL;

    if (!op) {
        *errnum = EIO;
        return NULL;
    }
    g_mutex_lock(&store->op_lock);
    while (!op->done && !store_stopping(store) && g_get_monotonic_time() < until)
        g_cond_wait_until(&store->op_cond, &store->op_lock, until);
    if (op->done) {
        text = g_strconcat(op->status_text, "\n", NULL);
        op->replying++;
    }
    g_mutex_unlock(&store->op_lock);
    if (!text)
        *errnum = store_stopping(store) ? EINTR : ETIMEDOUT;
    return text;
}

void ifs_store_wait_replied(IfsStore *store, IfsNode *node)
{
    Operation *op = node->target ? node->target->op : NULL;

    if (!op)
        return;
    g_mutex_lock(&store->op_lock);
    op->replying--;
    g_cond_broadcast(&store->op_cond);
    g_mutex_unlock(&store->op_lock);
}

/* ---- read side ------------------------------------------------------------ */

static IfsNode *walk(IfsNode *root, const char *path)
{
    IfsNode *node = root;
    char **parts;

    if (!*path)
        return node;
    parts = g_strsplit(path, "/", -1);
    for (char **p = parts; *p && node; p++)
        node = node->type == IFS_NODE_DIR ? ifs_node_child(node, *p) : NULL;
    g_strfreev(parts);
    return node;
}

static IfsNode *current_root(IfsStore *s)
{
    IfsNode *root;

    g_mutex_lock(&s->root_lock);
    root = s->root ? ifs_node_ref(s->root) : NULL;
    g_mutex_unlock(&s->root_lock);
    return root;
}

/* Resolve a path in the current tree; returns a reference or NULL. */
static IfsNode *resolve(IfsStore *s, const char *path)
{
    IfsNode *root = current_root(s);
    IfsNode *node;

    if (!root)
        return NULL;
    node = walk(root, path);
    if (node)
        ifs_node_ref(node);
    ifs_node_unref(root);
    return node;
}

static char *path_of_ino(IfsStore *s, uint64_t ino)
{
    char *path;

    if (ino == IFS_ROOT_INO)
        return g_strdup("");
    g_mutex_lock(&s->ino_lock);
    path = g_strdup(g_hash_table_lookup(s->ino_paths, &ino));
    g_mutex_unlock(&s->ino_lock);
    return path;
}

IfsNode *ifs_store_get(IfsStore *store, uint64_t ino)
{
    char *path = path_of_ino(store, ino);
    IfsNode *node;

    if (!path)
        return NULL;
    node = resolve(store, path);
    g_free(path);
    return node;
}

IfsNode *ifs_store_lookup(IfsStore *store, uint64_t parent_ino, const char *name)
{
    char *parent = path_of_ino(store, parent_ino);
    char *path;
    IfsNode *node;

    if (!parent)
        return NULL;
    path = ifs_path_join(parent, name);
    g_free(parent);
    node = resolve(store, path);
    if (node) {
        g_mutex_lock(&store->ino_lock);
        if (!g_hash_table_contains(store->ino_paths, &node->ino)) {
            guint64 *key = g_new(guint64, 1);
            *key = node->ino;
            g_hash_table_insert(store->ino_paths, key, path);
            path = NULL;
        }
        g_mutex_unlock(&store->ino_lock);
    }
    g_free(path);
    return node;
}

/* ---- lifecycle -------------------------------------------------------------- */

IfsStore *ifs_store_new(const IfsStoreOptions *opts)
{
    IfsStore *s = g_new0(IfsStore, 1);

    s->opts = *opts;
    if (s->opts.refresh_s <= 0)
        s->opts.refresh_s = 60;
    if (s->opts.op_poll_timeout_s <= 0)
        s->opts.op_poll_timeout_s = 1800;
    s->accounts = g_ptr_array_new();
    g_mutex_init(&s->root_lock);
    g_mutex_init(&s->ino_lock);
    g_mutex_init(&s->op_lock);
    g_cond_init(&s->op_cond);
    g_mutex_init(&s->first_lock);
    g_cond_init(&s->first_cond);
    s->ino_paths = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    s->publish_q = g_async_queue_new();
    return s;
}

gboolean ifs_store_add_account(IfsStore *store, const IfsAccountConfig *cfg, IfsError **err)
{
    const IfsProviderType *type = ifs_provider_find(cfg->type);
    IfsHttpConfig hc = {0};
    Account *a;

    if (!type) {
        ifs_error_propagate(err, ifs_error_new(EINVAL, 0, NULL,
                            "account '%s': unknown type '%s'", cfg->name, cfg->type));
        return FALSE;
    }
    a = g_new0(Account, 1);
    a->store = store;
    a->cfg = cfg;
    a->type = type;
    a->refresh_s = cfg->refresh_s > 0 ? cfg->refresh_s : store->opts.refresh_s;
    hc.account = cfg->name;
    hc.origin = cfg->url;
    hc.auth = type->auth;
    hc.auth_header = type->auth_header;
    hc.user = cfg->user;
    hc.secret = cfg->secret;
    hc.cacert = cfg->cacert;
    a->http = ifs_http_new(&hc);
    a->pstate = type->open(a->http, cfg, &a->open_error);
    a->refresh_target = target_new(TARGET_REFRESH, a, NULL, NULL, "refresh");
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    a->resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    a->extras = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, extras_free);
    a->built = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, built_free);
    a->kind_dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify)ifs_node_unref);
    a->state = g_strdup("stale");
    a->last_error = g_strdup("first refresh not finished yet");
    a->refresh_requested = 1; /* the first refresh starts at once */
    g_ptr_array_add(store->accounts, a);
    return TRUE;
}

void ifs_store_set_invalidator(IfsStore *store, const IfsInvalidator *inv)
{
    store->inv = *inv;
}

void ifs_store_start(IfsStore *store)
{
    store->workers = g_thread_pool_new(worker_main, store, 32, FALSE, NULL);
    store->publisher = g_thread_new("publisher", publisher_main, store);
    store->first_pending = store->accounts->len;
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        publish_sync(a);
    }
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        char *name = g_strdup_printf("refresh-%s", a->cfg->name);
        a->thread = g_thread_new(name, account_main, a);
        g_free(name);
    }
    store->started = TRUE;
}

gboolean ifs_store_wait_first_refresh(IfsStore *store, int timeout_s)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    gboolean all;

    g_mutex_lock(&store->first_lock);
    while (store->first_pending > 0 && g_get_monotonic_time() < until)
        g_cond_wait_until(&store->first_cond, &store->first_lock, until);
    all = store->first_pending == 0;
    g_mutex_unlock(&store->first_lock);
    return all;
}

void ifs_store_refresh_all(IfsStore *store)
{
    for (guint i = 0; i < store->accounts->len; i++)
        request_refresh(g_ptr_array_index(store->accounts, i), FALSE);
}

void ifs_store_stop(IfsStore *store)
{
    if (!store->started)
        return;
    g_atomic_int_set(&store->stopping, 1);
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        g_mutex_lock(&a->lock);
        g_cond_broadcast(&a->cond);
        g_mutex_unlock(&a->lock);
    }
    g_mutex_lock(&store->op_lock);
    g_cond_broadcast(&store->op_cond);
    g_mutex_unlock(&store->op_lock);
    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        g_thread_join(a->thread);
    }
    g_thread_pool_free(store->workers, FALSE, TRUE);
    g_async_queue_push(store->publish_q, g_new0(PublishReq, 1));
    g_thread_join(store->publisher);
    store->started = FALSE;
}

static void account_free(Account *a)
{
    if (a->pstate)
        a->type->close(a->pstate);
    ifs_error_free(a->open_error);
    ifs_http_free(a->http);
    target_unref(a->refresh_target);
    g_ptr_array_unref(a->resources);
    g_hash_table_destroy(a->extras);
    g_hash_table_destroy(a->built);
    g_hash_table_destroy(a->kind_dirs);
    if (a->provider_dir)
        ifs_node_unref(a->provider_dir);
    g_free(a->state);
    g_free(a->last_error);
    g_free(a->provider_last_action);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a);
}

void ifs_store_free(IfsStore *store)
{
    if (!store)
        return;
    ifs_store_stop(store);
    /* The tree references targets, which reference accounts: drop it first. */
    if (store->root)
        ifs_node_unref(store->root);
    for (guint i = 0; i < store->accounts->len; i++)
        account_free(g_ptr_array_index(store->accounts, i));
    g_ptr_array_free(store->accounts, TRUE);
    g_hash_table_destroy(store->ino_paths);
    g_async_queue_unref(store->publish_q);
    g_mutex_clear(&store->root_lock);
    g_mutex_clear(&store->ino_lock);
    g_mutex_clear(&store->op_lock);
    g_cond_clear(&store->op_cond);
    g_mutex_clear(&store->first_lock);
    g_cond_clear(&store->first_cond);
    g_free(store);
}

char *ifs_store_summary(IfsStore *store)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < store->accounts->len; i++) {
        Account *a = g_ptr_array_index(store->accounts, i);
        g_mutex_lock(&a->lock);
        g_string_append_printf(out, "%s%s: %s", i ? ", " : "", a->cfg->name, a->state);
        if (strcmp(a->state, "ok") != 0 && a->last_error && *a->last_error)
            g_string_append_printf(out, " (%s)", a->last_error);
        g_mutex_unlock(&a->lock);
    }
    return g_string_free(out, FALSE);
}
