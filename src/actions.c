/* Actions (see actions.h): control writes, last_action, polling
 * operations until terminal, then re-reading the resource. */
#include "actions.h"

#include "events.h"
#include "infrafs/backoff.h"
#include "infrafs/text.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>

#define POLL_MIN_MS 300
#define POLL_MAX_MS 5000

/* ---- single-resource updates (worker pool) ------------------------------- */

typedef enum { TASK_POLL, TASK_FETCH } TaskKind;

typedef struct {
    TaskKind kind;
    Account *account;
    Operation *op; /* TASK_POLL */
    char *res_kind; /* TASK_FETCH */
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

/* Re-read one resource and show it (or drop it, when it is gone). */
static void fetch_one(Actions *ac, Account *a, const char *kind, const char *id, gboolean publish)
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
    account_replace_resource(a, kind, id, fresh);
    g_mutex_unlock(&a->lock);
    if (fresh)
        ifs_resource_unref(fresh);
    if (publish)
        publish_account(ac->publisher, a);
}

static void bump_extras(Account *a, const char *kind, const char *id)
{
    char *key = store_resource_key(kind, id);

    g_mutex_lock(&a->lock);
    extras_get(a, key)->gen++;
    g_mutex_unlock(&a->lock);
    g_free(key);
}

static gboolean sleep_unless_stopping(Model *m, gint64 ms)
{
    gint64 until = g_get_monotonic_time() + ms * 1000;

    g_mutex_lock(&m->op_lock);
    while (!model_stopping(m) && g_get_monotonic_time() < until)
        g_cond_wait_until(&m->op_cond, &m->op_lock, until);
    g_mutex_unlock(&m->op_lock);
    return !model_stopping(m);
}

/* ---- the action log ------------------------------------------------------ */

/* An HTTP status as last_action and the action log show it: "-" for none. */
static const char *status_text(int http_status, char buf[16])
{
    if (http_status <= 0)
        return "-";
    g_snprintf(buf, 16, "%d", http_status);
    return buf;
}

/* The user's name, when it reads as one word, else NULL. */
static char *user_name(uid_t uid)
{
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found && *found->pw_name &&
        !strpbrk(found->pw_name, " \t\r\n()"))
        return g_strdup(found->pw_name);
    return NULL;
}

/* The writer as the action log names it: "alice(1000)", or "(1234)" for a
 * uid without a name. */
static char *log_writer(uid_t uid)
{
    char *name = user_name(uid);
    char *text = g_strdup_printf("%s(%u)", name ? name : "", (unsigned)uid);

    g_free(name);
    return text;
}

/* Where a control file is, below the mount. */
static char *control_path(const IfsControlTarget *t)
{
    char *id, *path;

    if (t->kind == TARGET_REFRESH)
        return g_strconcat("providers/", t->account->cfg->name, "/refresh", NULL);
    id = ifs_name_escape(t->res_id, strlen(t->res_id));
    path = g_strjoin("/", t->res_kind, t->account->cfg->name, id ? id : "?", t->file, NULL);
    g_free(id);
    return path;
}

typedef struct {
    const char *writer; /* log_writer */
    const char *path; /* control_path */
    const char *command; /* as last_action shows it */
    const char *result; /* ok, failed, or op:<final status> */
    int http_status; /* 0: none */
    const char *message; /* the provider's code and message, or NULL */
    const char *op_id; /* or NULL */
} ActionRecord;

static const char *or_dash(const char *text)
{
    return text && *text ? text : "-";
}

/* One line in /actions, tab-separated (no field holds a tab or newline):
 * UTC time, writer, path, command, result, HTTP status, message,
 * operation id; "-" for what is empty. The same, in words, to the log at
 * notice level (the journal, syslog). Secrets are redacted from both. */
static void log_action(Actions *ac, Account *a, const ActionRecord *r)
{
    char *when = ifs_iso_time(store_now());
    char *message = store_one_line(r->message, 1024);
    char buf[16];
    const char *status = status_text(r->http_status, buf);
    char *raw, *line, *words;

    raw = g_strdup_printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when, r->writer, r->path, r->command,
                          r->result, status, or_dash(message), or_dash(r->op_id));
    line = ifs_http_redact(a->http, raw);
    ifs_line_log_append(ac->model->action_log, line);
    g_free(raw);
    raw = g_strdup_printf("%s: '%s' %s%s%s%s%s%s%s by %s", r->path, r->command, r->result,
                          r->http_status > 0 ? " " : "", r->http_status > 0 ? status : "",
                          *message ? ": " : "", message, r->op_id ? ", operation " : "",
                          r->op_id ? r->op_id : "", r->writer);
    words = ifs_http_redact(a->http, raw);
    g_message("%s", words);
    g_free(words);
    g_free(raw);
    g_free(line);
    g_free(message);
    g_free(when);
}

/* An action ended, in the change stream: its command and how it ended,
 * with a pointer to the action log for the rest. */
static void event_action_end(Actions *ac, Account *a, const char *path, const char *command,
                             const char *result, const char *op_id)
{
    char *what =
        g_strdup_printf("%s%s%s (see /actions)", result, op_id ? " " : "", op_id ? op_id : "");
    char *shown = ifs_http_redact(a->http, what);
    char *shown_command = ifs_http_redact(a->http, command);

    events_record(ac->model->events, path, "action", shown_command, shown);
    g_free(shown_command);
    g_free(shown);
    g_free(what);
}

/* An operation ended (or infrafs stopped watching it): under the line of
 * the write that started it, its final status. */
static void log_operation_end(Actions *ac, Operation *op)
{
    ActionRecord r = {op->writer, op->path, op->command, NULL, 0, NULL, op->job_id};
    char *result;

    g_mutex_lock(&ac->model->op_lock);
    result = g_strconcat("op:", op->status_text, NULL);
    g_mutex_unlock(&ac->model->op_lock);
    r.result = result;
    log_action(ac, op->account, &r);
    event_action_end(ac, op->account, op->path, op->command, result, op->job_id);
    g_free(result);
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
static gboolean op_update(Model *m, Operation *op, IfsOpState state, const char *text)
{
    gboolean changed;

    if (state != IFS_OP_PENDING)
        text = final_word(state, text);
    g_mutex_lock(&m->op_lock);
    changed = op->state != state || g_strcmp0(op->status_text, text) != 0;
    if (changed) {
        g_free(op->status_text);
        op->status_text = g_strdup(text);
        op->state = state;
    }
    g_mutex_unlock(&m->op_lock);
    return changed;
}

static void poll_operation(Actions *ac, Account *a, Operation *op)
{
    Model *m = ac->model;
    gint64 deadline = g_get_monotonic_time() + (gint64)m->opts.op_poll_timeout_s * G_USEC_PER_SEC;
    gint64 interval = POLL_MIN_MS;
    guint polls = 0;
    IfsOpState state = IFS_OP_PENDING;

    while (state == IFS_OP_PENDING && sleep_unless_stopping(m, interval)) {
        IfsError *err = NULL;
        char *text = NULL;

        gboolean polled = a->type->poll(a->pstate, op->poll_url, &state, &text, &err);

        store_redact_error(a, err);
        if (polled) {
            char *shown = ifs_http_redact(a->http, text);

            g_free(text);
            text = shown;
            if (op_update(m, op, state, text)) {
                bump_extras(a, op->res_kind, op->res_id);
                if (state == IFS_OP_PENDING)
                    publish_account(ac->publisher, a);
            }
        } else if (err->errnum == ENOENT || err->errnum == EACCES) {
            g_message("account '%s': operation %s: %s", a->cfg->name, op->job_id, err->message);
            state = IFS_OP_FAILED;
            op_update(m, op, state, "unknown");
            bump_extras(a, op->res_kind, op->res_id);
        } else {
            g_debug("account '%s': polling %s: %s", a->cfg->name, op->job_id, err->message);
        }
        g_free(text);
        ifs_error_free(err);
        if (state == IFS_OP_PENDING && g_get_monotonic_time() > deadline) {
            state = IFS_OP_FAILED;
            op_update(m, op, state, "timeout");
            bump_extras(a, op->res_kind, op->res_id);
        }
        interval = ifs_backoff(POLL_MIN_MS, POLL_MAX_MS, ++polls);
    }
    if (state == IFS_OP_PENDING) { /* stopping */
        op_update(m, op, IFS_OP_FAILED, "cancelled");
        log_operation_end(ac, op);
        operation_mark_done(m, op);
        return;
    }
    /* Terminal: show the resource as it is now, with the final status. */
    fetch_one(ac, a, op->res_kind, op->res_id, FALSE);
    log_operation_end(ac, op);
    publish_finishing(ac->publisher, a, op);
}

static void worker_main(gpointer data, gpointer user)
{
    Task *t = data;
    Actions *ac = user;

    if (t->kind == TASK_POLL)
        poll_operation(ac, t->account, t->op);
    else if (!model_stopping(ac->model)) {
        fetch_one(ac, t->account, t->res_kind, t->res_id, TRUE);
        if (t->again_after_ms && sleep_unless_stopping(ac->model, t->again_after_ms))
            fetch_one(ac, t->account, t->res_kind, t->res_id, TRUE);
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

/* "by alice (uid 1000)", or "by uid 1234" for a uid without a name (or
 * with one that would not read as one word). */
static char *writer_text(uid_t uid)
{
    char *name = user_name(uid);
    char *text = name ? g_strdup_printf("by %s (uid %u)", name, (unsigned)uid)
                      : g_strdup_printf("by uid %u", (unsigned)uid);

    g_free(name);
    return text;
}

/* "<UTC time> <command> <ok|failed> <HTTP status> <code and message> by
 * <writer>\n" */
static char *last_action_line(const char *command, const IfsError *err, const IfsActionResult *res,
                              uid_t writer)
{
    char *when = ifs_iso_time(store_now());
    char *who = writer_text(writer);
    char *line;

    if (err) {
        char *msg = store_one_line(err->message, 1024);
        char buf[16];
        line = g_strdup_printf("%s %s failed %s %s%s%s%s%s\n", when, command,
                               status_text(err->http_status, buf), err->code ? err->code : "",
                               err->code ? ": " : "", msg, err->code || *msg ? " " : "", who);
        g_free(msg);
    } else {
        char *msg = store_one_line(res->op_job_id ? res->op_job_id : res->message, 1024);
        char buf[16];
        line = g_strdup_printf("%s %s ok %s%s%s%s%s %s\n", when, command,
                               status_text(res->http_status, buf), res->op_status ? " " : "",
                               res->op_status ? res->op_status : "", *msg ? " " : "", msg, who);
        g_free(msg);
    }
    g_free(when);
    g_free(who);
    return line;
}

/* A control write in the action log; `op`, the operation it started, keeps
 * what its end will be logged with. */
static void log_write(Actions *ac, Account *a, const IfsControlTarget *t, const char *command,
                      const IfsError *err, const IfsActionResult *res, uid_t writer, Operation *op)
{
    char *who = log_writer(writer);
    char *path = control_path(t);
    char *message = err && err->code ? g_strconcat(err->code, ": ", err->message, NULL)
                                     : g_strdup(err                ? err->message
                                                    : res->message ? res->message
                                                                   : res->op_status);
    ActionRecord r = {
        .writer = who,
        .path = path,
        .command = command,
        .result = err ? "failed" : "ok",
        .http_status = err ? err->http_status : res->http_status,
        .message = message,
        .op_id = op ? op->job_id
            : err   ? NULL
                    : res->op_job_id,
    };

    log_action(ac, a, &r);
    /* An action without an operation ended here (refreshing is no action). */
    if (!op && t->kind != TARGET_REFRESH)
        event_action_end(ac, a, path, command, r.result, r.op_id);
    if (op) {
        op->writer = who;
        op->path = path;
        op->command = g_strdup(command);
    } else {
        g_free(who);
        g_free(path);
    }
    g_free(message);
}

static Operation *start_operation(Account *a, IfsControlTarget *t, const IfsActionResult *res)
{
    /* Shown in operation/: the API's words, so never the credential. */
    return operation_new(a, t->res_kind, t->res_id, ifs_http_redact(a->http, res->op_job_id),
                         g_strdup(res->op_poll_url),
                         ifs_http_redact(a->http, res->op_status ? res->op_status : "queued"));
}

static void queue_task(Actions *ac, Task *t)
{
    GError *gerr = NULL;

    if (!g_thread_pool_push(ac->workers, t, &gerr)) {
        g_warning("cannot queue background work: %s", gerr->message);
        g_error_free(gerr);
        task_free(t);
    }
}

/* Read a resource again on a worker, and once more `again_after_ms`
 * later unless that is 0. */
static void queue_fetch(Actions *ac, Account *a, const char *kind, const char *id,
                        guint again_after_ms)
{
    Task *task = g_new0(Task, 1);

    task->kind = TASK_FETCH;
    task->account = a;
    task->res_kind = g_strdup(kind);
    task->res_id = g_strdup(id);
    task->again_after_ms = again_after_ms;
    queue_task(ac, task);
}

static int resource_control_write(Actions *ac, Account *a, IfsControlTarget *t, const char *buf,
                                  size_t len, off_t offset, uid_t writer)
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
                            "(as `echo cmd > %s` does)",
                            t->file);
    else
        cmd = ifs_control_parse(spec, buf, len, &err);
    if (cmd && ac->model->opts.offline)
        err = ifs_error_new(EROFS, 0, NULL,
                            "mounted with -o offline: no request was sent; "
                            "remount without offline to act");
    else if (cmd && !a->pstate)
        err = ifs_error_copy(a->open_error);
    else if (cmd)
        ok = a->type->act(a->pstate, t->res_kind, t->res_id, t->file, cmd, &res, &err);
    store_redact_error(a, err);

    command = command_text_for_log(cmd, buf, len);
    {
        char *raw = last_action_line(command, ok ? NULL : err, &res, writer);
        line = ifs_http_redact(a->http, raw); /* the provider's words in it too */
        g_free(raw);
    }
    key = store_resource_key(t->res_kind, t->res_id);
    if (ok && res.op_poll_url && a->type->poll)
        op = start_operation(a, t, &res);
    /* Logged before the operation is polled: its end comes after. */
    log_write(ac, a, t, command, ok ? NULL : err, &res, writer, op);

    g_mutex_lock(&a->lock);
    {
        Extras *x = extras_get(a, key);
        g_free(x->last_action);
        x->last_action = line;
        if (op) {
            if (x->op)
                operation_unref(x->op);
            x->op = operation_ref(op);
            control_target_unref(x->wait_target);
            x->wait_target =
                control_target_new(TARGET_OPERATION, a, t->res_kind, t->res_id, "wait");
            x->wait_target->op = operation_ref(op);
        }
        x->gen++;
    }
    if (ok && res.resource_gone)
        account_replace_resource(a, t->res_kind, t->res_id, NULL);
    else if (ok && res.resource)
        account_replace_resource(a, t->res_kind, t->res_id, res.resource);
    g_mutex_unlock(&a->lock);
    publish_account_views_later(ac->publisher, a);

    if (op) {
        Task *task = g_new0(Task, 1);
        task->kind = TASK_POLL;
        task->account = a;
        task->op = op;
        queue_task(ac, task);
    } else if (ok && !res.resource_gone && !res.resource) {
        queue_fetch(ac, a, t->res_kind, t->res_id, res.refetch_after_ms);
    }
    errnum = ok ? 0 : err->errnum;
    ifs_error_free(err);
    ifs_command_free(cmd);
    ifs_action_result_clear(&res);
    g_free(command);
    g_free(key);
    return errnum;
}

static int refresh_control_write(Actions *ac, IfsControlTarget *t, const char *buf, size_t len,
                                 off_t offset, uid_t writer)
{
    Account *a = t->account;
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
        errnum = account_request_refresh(a, TRUE);
        if (errnum) {
            g_mutex_lock(&a->lock);
            err = ifs_error_new(errnum, 0, NULL, "refresh failed: %s", a->last_error);
            g_mutex_unlock(&a->lock);
        }
    }
    command = command_text_for_log(cmd, buf, len);
    res.http_status = 0;
    res.message = g_strdup("refreshed");
    line = last_action_line(command, err, &res, writer);
    log_write(ac, a, t, command, err, &res, writer, NULL);
    g_mutex_lock(&a->lock);
    g_free(a->provider_last_action);
    a->provider_last_action = line;
    g_mutex_unlock(&a->lock);
    publish_account(ac->publisher, a);
    errnum = err ? err->errnum : 0;
    ifs_error_free(err);
    ifs_command_free(cmd);
    ifs_action_result_clear(&res);
    g_free(command);
    return errnum;
}

void actions_reread(Actions *ac, Account *a, const char *kind, const char *id)
{
    queue_fetch(ac, a, kind, id, 0);
}

int actions_control_write(Actions *ac, IfsNode *node, const char *buf, size_t len, off_t offset,
                          uid_t writer)
{
    IfsControlTarget *t = ifs_node_target(node);

    if (node->type != IFS_NODE_CONTROL || !t)
        return EACCES;
    if (t->kind == TARGET_REFRESH)
        return refresh_control_write(ac, t, buf, len, offset, writer);
    return resource_control_write(ac, t->account, t, buf, len, offset, writer);
}

/* ---- operation/wait -------------------------------------------------------- */

char *actions_wait_text(Actions *ac, IfsNode *node, gboolean (*give_up)(void *data), void *data,
                        int *errnum)
{
    Model *m = ac->model;
    IfsControlTarget *t = ifs_node_target(node);
    Operation *op = t ? t->op : NULL;
    char *text = NULL;

    if (!op) {
        *errnum = EIO;
        return NULL;
    }
    g_mutex_lock(&m->op_lock);
    op->readers++;
    while (!op->done && !model_stopping(m)) {
        gboolean stop;

        g_cond_wait_until(&m->op_cond, &m->op_lock,
                          g_get_monotonic_time() + 200 * G_TIME_SPAN_MILLISECOND);
        if (op->done)
            break;
        g_mutex_unlock(&m->op_lock);
        stop = give_up(data);
        g_mutex_lock(&m->op_lock);
        if (stop)
            break;
    }
    if (op->done) {
        text = g_strconcat(op->status_text, "\n", NULL);
    } else {
        op->readers--;
        g_cond_broadcast(&m->op_cond);
        *errnum = EINTR;
    }
    g_mutex_unlock(&m->op_lock);
    return text;
}

void actions_wait_replied(Actions *ac, IfsNode *node)
{
    Model *m = ac->model;
    IfsControlTarget *t = ifs_node_target(node);
    Operation *op = t ? t->op : NULL;

    if (!op)
        return;
    g_mutex_lock(&m->op_lock);
    op->readers--;
    g_cond_broadcast(&m->op_cond);
    g_mutex_unlock(&m->op_lock);
}

/* ---- the workers ----------------------------------------------------------- */

void actions_init(Actions *ac, Model *m, Publisher *p)
{
    ac->model = m;
    ac->publisher = p;
    ac->workers = NULL;
}

void actions_start(Actions *ac)
{
    ac->workers = g_thread_pool_new(worker_main, ac, 32, FALSE, NULL);
}

void actions_stop(Actions *ac)
{
    if (!ac->workers)
        return;
    g_thread_pool_free(ac->workers, FALSE, TRUE);
    ac->workers = NULL;
}
