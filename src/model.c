/* The store's model: accounts, extras, operations and control targets,
 * their lifetimes, and the bookkeeping every stage shares (see model.h). */
#include "model.h"

#include "events.h"

#include <errno.h>
#include <string.h>

const IfsControlSpec store_refresh_spec = {"providers", "refresh", ifs_trigger_commands};

/* ---- small helpers ---------------------------------------------------- */

gint64 store_now(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* One line of valid UTF-8 without control characters, at most `max` bytes:
 * what goes into last_action and last_error. Control characters become
 * spaces, bytes that are not UTF-8 become U+FFFD. */
char *store_one_line(const char *text, size_t max)
{
    char *valid = g_utf8_make_valid(text ? text : "", -1);
    GString *out = g_string_new(NULL);

    for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        size_t len = (size_t)(g_utf8_next_char(p) - p);

        if (out->len + len > max)
            break;
        if (g_unichar_iscntrl(c))
            g_string_append_c(out, ' ');
        else
            g_string_append_len(out, p, (gssize)len);
    }
    g_free(valid);
    return g_string_free(out, FALSE);
}

/* Text a user wrote (a command refused before it was understood), shown as
 * one line of text: printable characters as they are, every other byte as
 * \xNN (a backslash too, so the rule can be reversed), at most `max` bytes
 * of input. */
char *store_escaped_input(const char *buf, size_t len, size_t max)
{
    GString *out = g_string_new(NULL);
    const char *p = buf;
    const char *end = buf + MIN(len, max);

    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);

        if (c < 0x80 && c != '\\' && g_ascii_isprint((char)c)) {
            g_string_append_c(out, *p++);
        } else if (c < (gunichar)-2 && c >= 0x80 && g_unichar_isprint(c)) {
            const char *next = g_utf8_next_char(p);
            g_string_append_len(out, p, next - p);
            p = next;
        } else {
            g_string_append_printf(out, "\\x%02X", (unsigned char)*p++);
        }
    }
    return g_string_free(out, FALSE);
}

/* Whatever an API said, before it is shown or logged: never in any form
 * the account's credential (a server may echo the request's headers). */
void store_redact_error(Account *a, IfsError *err)
{
    char *text;

    if (!err)
        return;
    text = ifs_http_redact(a->http, err->message);
    g_free(err->message);
    err->message = text;
    text = ifs_http_redact(a->http, err->code);
    g_free(err->code);
    err->code = text;
}

char *store_resource_key(const char *kind, const char *id)
{
    return g_strconcat(kind, "/", id, NULL);
}

/* ---- the model ---------------------------------------------------------- */

void model_init(Model *m, const IfsStoreOptions *opts)
{
    m->opts = *opts;
    if (m->opts.refresh_s <= 0)
        m->opts.refresh_s = 60;
    if (m->opts.op_poll_timeout_s <= 0)
        m->opts.op_poll_timeout_s = 1800;
    m->accounts = g_ptr_array_new();
    m->stopping = 0;
    g_mutex_init(&m->op_lock);
    g_cond_init(&m->op_cond);
    {
        char *path =
            opts->cache_dir ? g_build_filename(opts->cache_dir, "actions.log", NULL) : NULL;
        m->action_log = ifs_line_log_open("actions", path, opts->actions_max);
        g_free(path);
    }
    m->events = events_new(opts->cache_dir, opts->events_max);
}

void model_clear(Model *m)
{
    for (guint i = 0; i < m->accounts->len; i++)
        account_free(g_ptr_array_index(m->accounts, i));
    g_ptr_array_free(m->accounts, TRUE);
    m->accounts = NULL;
    g_mutex_clear(&m->op_lock);
    g_cond_clear(&m->op_cond);
    ifs_line_log_free(m->action_log);
    m->action_log = NULL;
    events_free(m->events);
    m->events = NULL;
}

void model_shutdown(Model *m)
{
    g_atomic_int_set(&m->stopping, 1);
    for (guint i = 0; i < m->accounts->len; i++) {
        Account *a = g_ptr_array_index(m->accounts, i);
        /* A refresh, poll or control write stuck on a silent API must not
         * hold up the unmount for minutes of timeouts and retries. */
        ifs_http_cancel(a->http);
        g_mutex_lock(&a->lock);
        g_cond_broadcast(&a->cond);
        g_mutex_unlock(&a->lock);
    }
    g_mutex_lock(&m->op_lock);
    g_cond_broadcast(&m->op_cond);
    g_mutex_unlock(&m->op_lock);
}

/* ---- targets and operations --------------------------------------------- */

IfsControlTarget *control_target_new(TargetKind kind, Account *a, const char *res_kind,
                                     const char *res_id, const char *file)
{
    IfsControlTarget *t = g_new0(IfsControlTarget, 1);

    g_atomic_ref_count_init(&t->ref);
    t->kind = kind;
    t->account = a;
    t->res_kind = g_intern_string(res_kind);
    t->res_id = g_strdup(res_id);
    t->file = g_intern_string(file);
    return t;
}

IfsControlTarget *control_target_ref(IfsControlTarget *t)
{
    g_atomic_ref_count_inc(&t->ref);
    return t;
}

void control_target_unref(IfsControlTarget *t)
{
    if (!t || !g_atomic_ref_count_dec(&t->ref))
        return;
    if (t->op)
        operation_unref(t->op);
    g_free(t->res_id);
    g_free(t);
}

Operation *operation_new(Account *a, const char *res_kind, const char *res_id, char *job_id,
                         char *poll_url, char *status_text)
{
    Operation *op = g_new0(Operation, 1);

    g_atomic_ref_count_init(&op->ref);
    op->account = a;
    op->res_kind = g_strdup(res_kind);
    op->res_id = g_strdup(res_id);
    op->job_id = job_id;
    op->poll_url = poll_url;
    op->status_text = status_text;
    op->state = IFS_OP_PENDING;
    return op;
}

Operation *operation_ref(Operation *op)
{
    g_atomic_ref_count_inc(&op->ref);
    return op;
}

void operation_unref(Operation *op)
{
    if (!op || !g_atomic_ref_count_dec(&op->ref))
        return;
    g_free(op->res_kind);
    g_free(op->res_id);
    g_free(op->job_id);
    g_free(op->poll_url);
    g_free(op->writer);
    g_free(op->path);
    g_free(op->command);
    g_free(op->status_text);
    g_free(op);
}

void operation_mark_done(Model *m, Operation *op)
{
    g_mutex_lock(&m->op_lock);
    op->done = TRUE;
    g_cond_broadcast(&m->op_cond);
    g_mutex_unlock(&m->op_lock);
}

/* ---- extras ------------------------------------------------------------- */

static void extras_free(gpointer data)
{
    Extras *x = data;

    g_free(x->last_action);
    if (x->op)
        operation_unref(x->op);
    control_target_unref(x->wait_target);
    while (x->targets) {
        IfsControlTarget *t = x->targets;

        x->targets = t->next;
        control_target_unref(t);
    }
    g_free(x);
}

Extras *extras_get(Account *a, const char *key)
{
    Extras *x = g_hash_table_lookup(a->extras, key);

    if (!x) {
        x = g_new0(Extras, 1);
        g_hash_table_insert(a->extras, g_strdup(key), x);
    }
    return x;
}

/* Control targets live as long as the resource's extras: the same target
 * keeps an unchanged control file the same node across rebuilds. */
IfsControlTarget *extras_control_target(Extras *x, Account *a, const IfsResource *r,
                                        const char *file)
{
    IfsControlTarget *t = x->targets;

    while (t && strcmp(t->file, file) != 0)
        t = t->next;
    if (!t) {
        t = control_target_new(TARGET_CONTROL, a, r->kind, r->id, file);
        t->next = x->targets;
        x->targets = t;
    }
    return t;
}

/* ---- accounts ----------------------------------------------------------- */

Account *account_new(Model *m, const IfsAccountConfig *cfg, const IfsProviderType *type)
{
    Account *a = g_new0(Account, 1);

    a->model = m;
    a->cfg = cfg;
    a->type = type;
    a->refresh_s = cfg->refresh_s > 0 ? cfg->refresh_s : m->opts.refresh_s;
    a->max_resources =
        cfg->max_resources > 0 ? (guint)cfg->max_resources : IFS_DEFAULT_MAX_RESOURCES;
    a->http = ifs_provider_http_new(type, cfg);
    ifs_budget_set_interval(ifs_http_budget(a->http), (guint)a->refresh_s);
    a->pstate = type->open(a->http, cfg, &a->open_error);
    a->refresh_target = control_target_new(TARGET_REFRESH, a, NULL, NULL, "refresh");
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    a->resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    a->extras = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, extras_free);
    a->changed_at = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    a->state = g_strdup("stale");
    a->last_error = g_strdup("first refresh not finished yet");
    a->refresh_requested = 1; /* the first refresh starts at once */
    if (m->opts.cache_dir)
        a->cache_path = ifs_cache_file(m->opts.cache_dir, cfg->name);
    g_ptr_array_add(m->accounts, a);
    return a;
}

void account_free(Account *a)
{
    if (a->pstate)
        a->type->close(a->pstate);
    ifs_error_free(a->open_error);
    ifs_http_free(a->http);
    control_target_unref(a->refresh_target);
    g_ptr_array_unref(a->resources);
    g_hash_table_destroy(a->extras);
    g_hash_table_destroy(a->changed_at);
    g_free(a->state);
    g_free(a->last_error);
    g_free(a->provider_last_action);
    g_free(a->cache_path);
    g_free(a->cache_problem);
    if (a->save_items)
        g_ptr_array_unref(a->save_items);
    if (a->saved_mtimes)
        g_hash_table_unref(a->saved_mtimes);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a);
}

int account_request_refresh(Account *a, gboolean wait)
{
    Model *m = a->model;
    guint64 mine;
    int errnum = 0;

    g_mutex_lock(&a->lock);
    mine = ++a->refresh_requested;
    g_cond_broadcast(&a->cond);
    /* A refresh under way is finished at the user's priority too: the one
     * asked for starts only after it. */
    g_atomic_int_set(&a->refresh_priority, IFS_PRIORITY_USER);
    ifs_http_wake(a->http);
    while (wait && a->refresh_done < mine && !model_stopping(m))
        g_cond_wait(&a->cond, &a->lock);
    if (wait)
        errnum = model_stopping(m) && a->refresh_done < mine ? EINTR : a->refresh_errnum;
    g_mutex_unlock(&a->lock);
    return errnum;
}

/* ---- action results win ------------------------------------------------- */

void account_replace_resource(Account *a, const char *kind, const char *id, IfsResource *fresh)
{
    GPtrArray *next =
        g_ptr_array_new_full(a->resources->len + 1, (GDestroyNotify)ifs_resource_unref);
    gboolean placed = FALSE;

    ifs_resource_seal(fresh);
    g_hash_table_replace(a->changed_at, store_resource_key(kind, id),
                         GSIZE_TO_POINTER(++a->change_gen));
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

GHashTable *account_take_changes_after(Account *a, guint64 since)
{
    GHashTable *later = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer key, gen;

    g_hash_table_iter_init(&it, a->changed_at);
    while (g_hash_table_iter_next(&it, &key, &gen)) {
        if (GPOINTER_TO_SIZE(gen) > since)
            g_hash_table_add(later, g_strdup(key));
        else
            g_hash_table_iter_remove(&it);
    }
    if (g_hash_table_size(later) == 0) {
        g_hash_table_destroy(later);
        return NULL;
    }
    return later;
}
