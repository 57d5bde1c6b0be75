/* Control writes (CONTRACT §5) and asynchronous operations: parse and
 * refuse locally, call the provider, record last_action, poll operations
 * until terminal, then re-read the resource. */
#include "store_private.h"

#include <errno.h>
#include <string.h>

const IfsControlSpec store_refresh_spec = {"providers", "refresh", ifs_trigger_commands};

/* ---- targets and operations --------------------------------------------- */

IfsControlTarget *store_target_new(TargetKind kind, Account *a, const char *res_kind,
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

IfsControlTarget *store_target_ref(IfsControlTarget *t)
{
    g_atomic_ref_count_inc(&t->ref);
    return t;
}

static void operation_unref(Operation *op);

void store_target_unref(IfsControlTarget *t)
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

void store_extras_free(gpointer data)
{
    Extras *x = data;

    g_free(x->last_action);
    if (x->op)
        operation_unref(x->op);
    store_target_unref(x->wait_target);
    g_hash_table_destroy(x->targets);
    g_free(x);
}

Extras *store_extras_get(Account *a, const char *key)
{
    Extras *x = g_hash_table_lookup(a->extras, key);

    if (!x) {
        x = g_new0(Extras, 1);
        x->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)store_target_unref);
        g_hash_table_insert(a->extras, g_strdup(key), x);
    }
    return x;
}

/* ---- single-resource updates (worker pool) ------------------------------- */

typedef enum { TASK_POLL, TASK_FETCH } TaskKind;

typedef struct {
    TaskKind kind;
    Account *account;
    Operation *op;      /* TASK_POLL */
    char *res_kind;     /* TASK_FETCH */
    char *res_id;
    guint again_after_ms; /* TASK_FETCH: 0, or read once more after this */
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

    ifs_resource_seal(fresh);
    store_note_action_change(a, kind, id);
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
    store_redact_error(a, err);
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
        store_publish(a);
}

static void bump_extras(Account *a, const char *kind, const char *id)
{
    char *key = store_resource_key(kind, id);

    g_mutex_lock(&a->lock);
    store_extras_get(a, key)->gen++;
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

        gboolean polled = a->type->poll(a->pstate, op->poll_url, &state, &text, &err);

        store_redact_error(a, err);
        if (polled) {
            char *shown = ifs_http_redact(a->http, text);

            g_free(text);
            text = shown;
            if (op_update(s, op, state, text)) {
                bump_extras(a, op->res_kind, op->res_id);
                if (state == IFS_OP_PENDING)
                    store_publish(a);
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
        store_mark_done(s, op);
        return;
    }
    /* Terminal: show the resource as it is now, with the final status. */
    fetch_one(a, op->res_kind, op->res_id, FALSE);
    store_publish_finishing(a, op);
}

void store_worker_main(gpointer data, gpointer user)
{
    Task *t = data;

    (void)user;
    if (t->kind == TASK_POLL)
        poll_operation(t->account, t->op);
    else if (!store_stopping(t->account->store)) {
        fetch_one(t->account, t->res_kind, t->res_id, TRUE);
        if (t->again_after_ms &&
            sleep_unless_stopping(t->account->store, t->again_after_ms))
            fetch_one(t->account, t->res_kind, t->res_id, TRUE);
    }
    task_free(t);
}

/* ---- control writes ------------------------------------------------------ */

static char *command_text_for_log(const IfsCommand *cmd, const char *buf, size_t len)
{
    char *line;

    if (cmd)
        return ifs_command_to_string(cmd);
    /* Whatever bytes were written, last_action stays one line of text. */
    while (len > 0 && g_ascii_isspace(buf[len - 1]))
        len--;
    while (len > 0 && g_ascii_isspace(*buf)) {
        buf++;
        len--;
    }
    line = store_escaped_input(buf, len, 64);
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
    char *when = store_iso_time(store_now());
    char *line;

    if (err) {
        char *msg = store_one_line(err->message, 1024);
        char status[16];
        if (err->http_status > 0)
            g_snprintf(status, sizeof status, "%d", err->http_status);
        else
            g_strlcpy(status, "-", sizeof status);
        line = g_strdup_printf("%s %s failed %s %s%s%s\n", when, command, status,
                               err->code ? err->code : "", err->code ? ": " : "", msg);
        g_free(msg);
    } else {
        char *msg = store_one_line(res->op_job_id ? res->op_job_id : res->message, 1024);
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
    /* Shown in operation/: the API's words, so never the credential. */
    op->job_id = ifs_http_redact(a->http, res->op_job_id);
    op->poll_url = g_strdup(res->op_poll_url);
    op->status_text = ifs_http_redact(a->http, res->op_status ? res->op_status : "queued");
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
    if (cmd && a->store->opts.offline)
        err = ifs_error_new(EROFS, 0, NULL, "mounted with -o offline: no request was sent; "
                            "remount without offline to act");
    else if (cmd && !a->pstate)
        err = ifs_error_copy(a->open_error);
    else if (cmd)
        ok = a->type->act(a->pstate, t->res_kind, t->res_id, t->file, cmd, &res, &err);
    store_redact_error(a, err);

    command = command_text_for_log(cmd, buf, len);
    {
        char *raw = last_action_line(command, ok ? NULL : err, &res);
        line = ifs_http_redact(a->http, raw); /* the provider's words in it too */
        g_free(raw);
    }
    key = store_resource_key(t->res_kind, t->res_id);
    if (ok && res.op_poll_url && a->type->poll)
        op = start_operation(a, t, &res);

    g_mutex_lock(&a->lock);
    {
        Extras *x = store_extras_get(a, key);
        g_free(x->last_action);
        x->last_action = line;
        if (op) {
            if (x->op)
                operation_unref(x->op);
            x->op = operation_ref(op);
            store_target_unref(x->wait_target);
            x->wait_target = store_target_new(TARGET_OPERATION, a, t->res_kind, t->res_id, "wait");
            x->wait_target->op = operation_ref(op);
        }
        x->gen++;
    }
    if (ok && res.resource_gone)
        replace_resource(a, t->res_kind, t->res_id, NULL);
    else if (ok && res.resource)
        replace_resource(a, t->res_kind, t->res_id, res.resource);
    g_mutex_unlock(&a->lock);
    store_publish(a);

    if (op) {
        Task *task = g_new0(Task, 1);
        task->kind = TASK_POLL;
        task->account = a;
        task->op = op;
        queue_task(a->store, task);
    } else if (ok && !res.resource_gone && !res.resource) {
        Task *task = g_new0(Task, 1);
        task->kind = TASK_FETCH;
        task->account = a;
        task->res_kind = g_strdup(t->res_kind);
        task->res_id = g_strdup(t->res_id);
        task->again_after_ms = res.refetch_after_ms;
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
        cmd = ifs_control_parse(&store_refresh_spec, buf, len, &err);
    if (cmd) {
        errnum = store_request_refresh(a, TRUE);
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
    store_publish(a);
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
    IfsControlTarget *t = ifs_node_target(node);

    (void)store;
    if (node->type != IFS_NODE_CONTROL || !t)
        return EACCES;
    if (t->kind == TARGET_REFRESH)
        return refresh_control_write(t->account, buf, len, offset);
    return resource_control_write(t->account, t, buf, len, offset);
}

char *ifs_store_wait_text(IfsStore *store, IfsNode *node,
                          gboolean (*give_up)(void *data), void *data, int *errnum)
{
    IfsControlTarget *t = ifs_node_target(node);
    Operation *op = t ? t->op : NULL;
    char *text = NULL;

    if (!op) {
        *errnum = EIO;
        return NULL;
    }
    g_mutex_lock(&store->op_lock);
    op->readers++;
    while (!op->done && !store_stopping(store)) {
        gboolean stop;

        g_cond_wait_until(&store->op_cond, &store->op_lock,
                          g_get_monotonic_time() + 200 * G_TIME_SPAN_MILLISECOND);
        if (op->done)
            break;
        g_mutex_unlock(&store->op_lock);
        stop = give_up(data);
        g_mutex_lock(&store->op_lock);
        if (stop)
            break;
    }
    if (op->done) {
        text = g_strconcat(op->status_text, "\n", NULL);
    } else {
        op->readers--;
        g_cond_broadcast(&store->op_cond);
        *errnum = EINTR;
    }
    g_mutex_unlock(&store->op_lock);
    return text;
}

void ifs_store_wait_replied(IfsStore *store, IfsNode *node)
{
    IfsControlTarget *t = ifs_node_target(node);
    Operation *op = t ? t->op : NULL;

    if (!op)
        return;
    g_mutex_lock(&store->op_lock);
    op->readers--;
    g_cond_broadcast(&store->op_cond);
    g_mutex_unlock(&store->op_lock);
}
