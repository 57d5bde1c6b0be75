/* The in-process fake provider (fake_provider.h). */
#include "fake_provider.h"

#include <errno.h>
#include <string.h>

/* A held list() gives up after this long: a test that never releases it
 * fails instead of hanging in the store's shutdown. */
#define HOLD_LIMIT_US (10 * G_USEC_PER_SEC)

typedef struct {
    char *kind;
    char *id;
    json_object *object; /* owned; never handed out, only copies */
} Entry;

struct FakeProvider {
    int ref; /* guarded by the registry's lock */
    char *account;

    GMutex lock; /* guards everything below */
    GCond cond;
    GPtrArray *entries; /* Entry*, in listing order */
    int list_errnum; /* 0: lists succeed */
    char *list_message;
    gboolean list_partial;
    int act_errnum; /* 0: acts succeed */
    int act_http_status;
    char *act_code;
    char *act_message;
    gboolean act_returns_resource;
    gboolean operations; /* power commands start operations */
    guint n_operations;
    gboolean operations_end; /* polls report ops_end_state */
    IfsOpState ops_end_state;
    GHashTable *pending; /* poll URL -> "kind\nid\nverb" of its command */
    gboolean hold;
    guint held; /* list() calls waiting right now */
    guint calls[FAKE_N_CALLS];
    char *last_act;
};

/* account name -> FakeProvider*, how open() finds the test's fake: the
 * store hands open() only the account's config. */
G_LOCK_DEFINE_STATIC(registry);
static GHashTable *registry;

static void entry_free(gpointer data)
{
    Entry *e = data;

    g_free(e->kind);
    g_free(e->id);
    json_object_put(e->object);
    g_free(e);
}

FakeProvider *fake_provider_new(const char *account)
{
    FakeProvider *f = g_new0(FakeProvider, 1);

    f->ref = 1;
    f->account = g_strdup(account);
    g_mutex_init(&f->lock);
    g_cond_init(&f->cond);
    f->entries = g_ptr_array_new_with_free_func(entry_free);
    f->act_returns_resource = TRUE;
    f->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    G_LOCK(registry);
    if (!registry)
        registry = g_hash_table_new(g_str_hash, g_str_equal);
    if (g_hash_table_contains(registry, account))
        g_error("fake provider: account '%s' has a fake already", account);
    g_hash_table_insert(registry, f->account, f);
    G_UNLOCK(registry);
    return f;
}

static FakeProvider *fake_ref_by_account(const char *account)
{
    FakeProvider *f;

    G_LOCK(registry);
    f = registry ? g_hash_table_lookup(registry, account) : NULL;
    if (f)
        f->ref++;
    G_UNLOCK(registry);
    return f;
}

void fake_provider_unref(FakeProvider *f)
{
    gboolean last;

    if (!f)
        return;
    G_LOCK(registry);
    last = --f->ref == 0;
    if (last) {
        g_hash_table_remove(registry, f->account);
        if (g_hash_table_size(registry) == 0) {
            g_hash_table_destroy(registry);
            registry = NULL;
        }
    }
    G_UNLOCK(registry);
    if (!last)
        return;
    g_ptr_array_unref(f->entries);
    g_hash_table_destroy(f->pending);
    g_free(f->list_message);
    g_free(f->act_code);
    g_free(f->act_message);
    g_free(f->last_act);
    g_mutex_clear(&f->lock);
    g_cond_clear(&f->cond);
    g_free(f->account);
    g_free(f);
}

/* ---- the test's side ------------------------------------------------------ */

static json_object *parse_or_die(const char *json)
{
    json_object *obj = json_tokener_parse(json);

    if (!obj)
        g_error("fake provider: not JSON: %s", json);
    return obj;
}

/* f->lock held. */
static Entry *find_entry(FakeProvider *f, const char *kind, const char *id, guint *index)
{
    for (guint i = 0; i < f->entries->len; i++) {
        Entry *e = g_ptr_array_index(f->entries, i);

        if (strcmp(e->kind, kind) == 0 && strcmp(e->id, id) == 0) {
            if (index)
                *index = i;
            return e;
        }
    }
    return NULL;
}

static json_object *parse_object_or_die(const char *json)
{
    json_object *obj = parse_or_die(json);

    if (!json_object_is_type(obj, json_type_object))
        g_error("fake provider: a resource is a JSON object, not %s", json);
    return obj;
}

/* f->lock held. */
static Entry *add_entry(FakeProvider *f, const char *kind, const char *id)
{
    Entry *e = g_new0(Entry, 1);

    e->kind = g_strdup(kind);
    e->id = g_strdup(id);
    g_ptr_array_add(f->entries, e);
    return e;
}

void fake_provider_put(FakeProvider *f, const char *kind, const char *id, const char *json)
{
    json_object *obj = parse_object_or_die(json);
    Entry *e;

    g_mutex_lock(&f->lock);
    e = find_entry(f, kind, id, NULL);
    if (e)
        json_object_put(e->object);
    else
        e = add_entry(f, kind, id);
    e->object = obj;
    g_mutex_unlock(&f->lock);
}

void fake_provider_append(FakeProvider *f, const char *kind, const char *id, const char *json)
{
    json_object *obj = parse_object_or_die(json);

    g_mutex_lock(&f->lock);
    add_entry(f, kind, id)->object = obj;
    g_mutex_unlock(&f->lock);
}

void fake_provider_set_field(FakeProvider *f, const char *kind, const char *id, const char *field,
                             const char *json_value)
{
    /* json-c parses "null" as a NULL object, which is the JSON null. */
    json_object *value = strcmp(json_value, "null") == 0 ? NULL : parse_or_die(json_value);
    Entry *e;

    g_mutex_lock(&f->lock);
    e = find_entry(f, kind, id, NULL);
    if (!e)
        g_error("fake provider: no %s '%s' to change", kind, id);
    json_object_object_add(e->object, field, value);
    g_mutex_unlock(&f->lock);
}

gboolean fake_provider_remove(FakeProvider *f, const char *kind, const char *id)
{
    guint index;
    gboolean found;

    g_mutex_lock(&f->lock);
    found = find_entry(f, kind, id, &index) != NULL;
    if (found)
        g_ptr_array_remove_index(f->entries, index);
    g_mutex_unlock(&f->lock);
    return found;
}

void fake_provider_fail_lists(FakeProvider *f, int errnum, const char *message, gboolean partial)
{
    g_mutex_lock(&f->lock);
    f->list_errnum = errnum;
    g_free(f->list_message);
    f->list_message = g_strdup(message);
    f->list_partial = partial;
    g_mutex_unlock(&f->lock);
}

void fake_provider_fail_acts(FakeProvider *f, int errnum, int http_status, const char *code,
                             const char *message)
{
    g_mutex_lock(&f->lock);
    f->act_errnum = errnum;
    f->act_http_status = http_status;
    g_free(f->act_code);
    f->act_code = g_strdup(code);
    g_free(f->act_message);
    f->act_message = g_strdup(message);
    g_mutex_unlock(&f->lock);
}

void fake_provider_set_act_returns_resource(FakeProvider *f, gboolean returns)
{
    g_mutex_lock(&f->lock);
    f->act_returns_resource = returns;
    g_mutex_unlock(&f->lock);
}

void fake_provider_start_operations(FakeProvider *f, gboolean start)
{
    g_mutex_lock(&f->lock);
    f->operations = start;
    g_mutex_unlock(&f->lock);
}

void fake_provider_end_operations(FakeProvider *f, IfsOpState state)
{
    g_mutex_lock(&f->lock);
    f->operations_end = TRUE;
    f->ops_end_state = state;
    g_mutex_unlock(&f->lock);
}

void fake_provider_hold_lists(FakeProvider *f, gboolean hold)
{
    g_mutex_lock(&f->lock);
    f->hold = hold;
    g_cond_broadcast(&f->cond);
    g_mutex_unlock(&f->lock);
}

/* Waits (f->lock held) until `done(f, data)`, for at most timeout_ms. */
static gboolean wait_until(FakeProvider *f, gboolean (*done)(FakeProvider *f, gconstpointer data),
                           gconstpointer data, guint timeout_ms)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;

    while (!done(f, data))
        if (!g_cond_wait_until(&f->cond, &f->lock, until))
            return done(f, data);
    return TRUE;
}

static gboolean list_is_held(FakeProvider *f, gconstpointer data)
{
    (void)data;
    return f->held > 0;
}

gboolean fake_provider_wait_list_held(FakeProvider *f, guint timeout_ms)
{
    gboolean held;

    g_mutex_lock(&f->lock);
    held = wait_until(f, list_is_held, NULL, timeout_ms);
    g_mutex_unlock(&f->lock);
    return held;
}

guint fake_provider_calls(FakeProvider *f, FakeCall which)
{
    guint n;

    g_mutex_lock(&f->lock);
    n = f->calls[which];
    g_mutex_unlock(&f->lock);
    return n;
}

typedef struct {
    FakeCall which;
    guint n;
} CallCount;

static gboolean calls_reached(FakeProvider *f, gconstpointer data)
{
    const CallCount *c = data;

    return f->calls[c->which] >= c->n;
}

gboolean fake_provider_wait_calls(FakeProvider *f, FakeCall which, guint n, guint timeout_ms)
{
    CallCount c = {which, n};
    gboolean reached;

    g_mutex_lock(&f->lock);
    reached = wait_until(f, calls_reached, &c, timeout_ms);
    g_mutex_unlock(&f->lock);
    return reached;
}

char *fake_provider_last_act(FakeProvider *f)
{
    char *text;

    g_mutex_lock(&f->lock);
    text = g_strdup(f->last_act);
    g_mutex_unlock(&f->lock);
    return text;
}

IfsAccountConfig *fake_account_config(const char *name, const char *secret)
{
    IfsAccountConfig *cfg = g_new0(IfsAccountConfig, 1);

    cfg->name = g_strdup(name);
    cfg->type = g_strdup(fake_provider_type.schema.type);
    cfg->url = g_strconcat("fake://", name, NULL);
    cfg->secret = g_strdup(secret);
    cfg->secret_source = g_strdup("the unit test");
    cfg->refresh_s = 3600;
    cfg->timeout_s = -1;
    cfg->max_resources = -1;
    cfg->extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return cfg;
}

void fake_account_config_free(IfsAccountConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->name);
    g_free(cfg->type);
    g_free(cfg->url);
    g_free(cfg->user);
    g_free(cfg->secret);
    g_free(cfg->secret_source);
    g_free(cfg->cacert);
    g_strfreev(cfg->events_fields);
    g_hash_table_unref(cfg->extra);
    g_free(cfg);
}

/* ---- the provider's side ------------------------------------------------- */

/* f->lock held. A call starts: counted, and waiters told. */
static void count_call(FakeProvider *f, FakeCall which)
{
    f->calls[which]++;
    g_cond_broadcast(&f->cond);
}

/* What the API would answer: a copy the store may seal and keep. */
static IfsResource *entry_resource(const Entry *e)
{
    json_object *copy = NULL;

    if (json_object_deep_copy(e->object, &copy, NULL) != 0)
        g_error("fake provider: cannot copy %s '%s'", e->kind, e->id);
    return ifs_resource_new(e->kind, e->id, copy);
}

static gpointer fake_open(IfsHttp *http, const IfsAccountConfig *cfg, IfsError **err)
{
    FakeProvider *f = fake_ref_by_account(cfg->name);

    (void)http; /* a fake sends no request */
    if (!f) {
        ifs_error_propagate(err,
                            ifs_error_new(ENOENT, 0, NULL,
                                          "account '%s': no fake provider was created for it",
                                          cfg->name));
        return NULL;
    }
    g_mutex_lock(&f->lock);
    count_call(f, FAKE_OPEN);
    g_mutex_unlock(&f->lock);
    return f;
}

static void fake_close(gpointer state)
{
    FakeProvider *f = state;

    g_mutex_lock(&f->lock);
    count_call(f, FAKE_CLOSE);
    g_mutex_unlock(&f->lock);
    fake_provider_unref(f);
}

static gboolean fake_list(gpointer state, GPtrArray *out, IfsError **err)
{
    FakeProvider *f = state;
    GPtrArray *answer = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsError *failure = NULL;
    gboolean ok;

    g_mutex_lock(&f->lock);
    count_call(f, FAKE_LIST);
    /* The answer is what the data was when the call started; a held call
     * returns it late, as a slow API would. */
    for (guint i = 0; i < f->entries->len; i++)
        g_ptr_array_add(answer, entry_resource(g_ptr_array_index(f->entries, i)));
    if (f->list_errnum)
        failure = ifs_error_new(f->list_errnum, 0, NULL, "%s", f->list_message);
    ok = !failure || f->list_partial;
    if (f->hold) {
        gint64 until = g_get_monotonic_time() + HOLD_LIMIT_US;

        f->held++;
        g_cond_broadcast(&f->cond);
        while (f->hold && g_cond_wait_until(&f->cond, &f->lock, until))
            ;
        f->held--;
        if (f->hold) {
            ifs_error_free(failure);
            failure = ifs_error_new(ETIMEDOUT, 0, NULL,
                                    "fake provider: a held list() was never released");
            ok = FALSE;
        }
    }
    g_mutex_unlock(&f->lock);
    if (ok)
        g_ptr_array_extend_and_steal(out, g_steal_pointer(&answer));
    else
        g_ptr_array_unref(answer);
    if (failure)
        ifs_error_propagate(err, failure);
    return ok;
}

static IfsResource *fake_fetch(gpointer state, const char *kind, const char *id, IfsError **err)
{
    FakeProvider *f = state;
    IfsResource *r = NULL;
    Entry *e;

    g_mutex_lock(&f->lock);
    count_call(f, FAKE_FETCH);
    e = find_entry(f, kind, id, NULL);
    if (e)
        r = entry_resource(e);
    g_mutex_unlock(&f->lock);
    if (!r)
        ifs_error_propagate(
            err, ifs_error_new(ENOENT, 404, "not_found", "fake provider: no %s '%s'", kind, id));
    return r;
}

static const char *power_state_after(const char *verb)
{
    return strcmp(verb, "stop") == 0 ? "stopped" : "running";
}

static gboolean fake_act(gpointer state, const char *kind, const char *id, const char *file,
                         const IfsCommand *cmd, IfsActionResult *out, IfsError **err)
{
    FakeProvider *f = state;
    IfsError *failure = NULL;
    guint index;
    Entry *e;

    g_mutex_lock(&f->lock);
    count_call(f, FAKE_ACT);
    g_free(f->last_act);
    f->last_act =
        g_strdup_printf("%s/%s %s %s%s", kind, id, file, cmd->verb, cmd->force ? " force" : "");
    e = find_entry(f, kind, id, &index);
    if (f->act_errnum) {
        failure =
            ifs_error_new(f->act_errnum, f->act_http_status, f->act_code, "%s", f->act_message);
    } else if (!e) {
        failure = ifs_error_new(ENOENT, 404, "not_found", "fake provider: no %s '%s'", kind, id);
    } else if (strcmp(file, "power") == 0 && f->operations) {
        char *job = g_strdup_printf("job-%u", ++f->n_operations);

        out->http_status = 202;
        out->op_status = g_strdup("queued");
        out->op_job_id = job;
        out->op_poll_url = g_strconcat("fake://poll/", job, NULL);
        g_hash_table_insert(f->pending, g_strdup(out->op_poll_url),
                            g_strdup_printf("%s\n%s\n%s", kind, id, cmd->verb));
    } else if (strcmp(file, "power") == 0) {
        json_object_object_add(e->object, "power_state",
                               json_object_new_string(power_state_after(cmd->verb)));
        json_object_object_add(e->object, "last_command", json_object_new_string(cmd->verb));
        out->http_status = 200;
        out->message = g_strdup_printf("accepted %s", cmd->verb);
        if (f->act_returns_resource)
            out->resource = entry_resource(e);
    } else if (strcmp(file, "delete") == 0) {
        g_ptr_array_remove_index(f->entries, index);
        out->http_status = 200;
        out->message = g_strdup("deleted");
        out->resource_gone = TRUE;
    } else {
        /* The store checks commands against the controls below first. */
        failure = ifs_error_new(EINVAL, 0, NULL, "fake provider: no control '%s'", file);
    }
    g_mutex_unlock(&f->lock);
    if (failure)
        ifs_error_propagate(err, failure);
    return !failure;
}

static gboolean fake_poll(gpointer state, const char *poll_url, IfsOpState *state_out,
                          char **status_text, IfsError **err)
{
    FakeProvider *f = state;
    const char *what;

    g_mutex_lock(&f->lock);
    count_call(f, FAKE_POLL);
    what = g_hash_table_lookup(f->pending, poll_url);
    if (!what) {
        g_mutex_unlock(&f->lock);
        ifs_error_propagate(
            err,
            ifs_error_new(ENOENT, 404, "not_found", "fake provider: no operation at %s", poll_url));
        return FALSE;
    }
    if (!f->operations_end) {
        *state_out = IFS_OP_PENDING;
        *status_text = g_strdup("in_progress");
    } else {
        char **parts = g_strsplit(what, "\n", 3);
        Entry *e = find_entry(f, parts[0], parts[1], NULL);

        if (e && f->ops_end_state == IFS_OP_COMPLETED) {
            json_object_object_add(e->object, "power_state",
                                   json_object_new_string(power_state_after(parts[2])));
            json_object_object_add(e->object, "last_command", json_object_new_string(parts[2]));
        }
        *state_out = f->ops_end_state;
        *status_text = g_strdup(f->ops_end_state == IFS_OP_COMPLETED ? "completed" : "failed");
        g_strfreev(parts);
        g_hash_table_remove(f->pending, poll_url);
    }
    g_mutex_unlock(&f->lock);
    return TRUE;
}

static const char *const fake_kinds[] = {"vps", NULL};
/* No ip: a column the API lacks stays empty. */
static const IfsInventoryColumns fake_inventory[] = {
    {"vps",                    .name = "name", .status = "power_state", .region = "location/city"},
    {.kind = NULL},
};

static const IfsCommandSpec power_commands[] = {
    {"start",   IFS_FORCE_NEVER   },
    {"stop",    IFS_FORCE_OPTIONAL},
    {"restart", IFS_FORCE_NEVER   },
    {NULL,      0                 },
};

static const IfsControlSpec fake_controls[] = {
    {"vps", "power",  power_commands      },
    {"vps", "delete", ifs_trigger_commands},
    {NULL,  NULL,     NULL                },
};

const IfsProviderType fake_provider_type = {
    .schema = {.type = "fake", .default_url = "fake://in-process"},
    .auth = IFS_AUTH_NONE,
    .kinds = fake_kinds,
    .inventory = fake_inventory,
    .controls = fake_controls,
    .open = fake_open,
    .close = fake_close,
    .list = fake_list,
    .fetch = fake_fetch,
    .act = fake_act,
    .poll = fake_poll,
};
