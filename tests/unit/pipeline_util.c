/* Shared by the unit tests of the store's pipeline (pipeline_util.h). */
#include "pipeline_util.h"

#include <stdarg.h>
#include <string.h>

/* ---- the recorder ---------------------------------------------------------- */

static void record(Recorder *r, char *event /* taken */)
{
    g_mutex_lock(&r->lock);
    g_ptr_array_add(r->events, event);
    g_mutex_unlock(&r->lock);
}

static const char *known_path(Recorder *r, guint64 ino)
{
    return g_hash_table_lookup(r->paths, &ino);
}

/* Called by the publisher thread. */
static void record_inode(void *data, uint64_t id)
{
    Recorder *r = data;
    const char *path;
    char *event;

    g_mutex_lock(&r->lock);
    path = known_path(r, id);
    event = path ? g_strconcat("inode ", path, NULL)
                 : g_strdup_printf("inode ?%" G_GUINT64_FORMAT, (guint64)id);
    g_mutex_unlock(&r->lock);
    record(r, event);
}

static void record_entry(void *data, uint64_t parent, const char *name)
{
    Recorder *r = data;
    const char *path;
    char *event;

    g_mutex_lock(&r->lock);
    path = known_path(r, parent);
    event = path ? g_strconcat("entry ", path, "/", name, NULL)
                 : g_strdup_printf("entry ?%" G_GUINT64_FORMAT "/%s", (guint64)parent, name);
    g_mutex_unlock(&r->lock);
    record(r, event);
}

void recorder_note(Recorder *r, const char *text)
{
    record(r, g_strdup(text));
}

void recorder_clear(Recorder *r)
{
    g_mutex_lock(&r->lock);
    g_ptr_array_set_size(r->events, 0);
    g_mutex_unlock(&r->lock);
}

char *recorder_events(Recorder *r)
{
    GString *out = g_string_new(NULL);

    g_mutex_lock(&r->lock);
    for (guint i = 0; i < r->events->len; i++)
        g_string_append_printf(out, "%s%s", i ? ", " : "", (char *)g_ptr_array_index(r->events, i));
    g_mutex_unlock(&r->lock);
    return g_string_free(out, FALSE);
}

void recorder_know(Pipeline *p, const char *path)
{
    IfsNode *root = publisher_root(p->publisher);
    char **parts = g_strsplit(path, "/", -1);
    GString *so_far = g_string_new(NULL);
    uint64_t parent = IFS_ROOT_INO;

    g_assert_nonnull(root);
    /* as the kernel would: each component looked up in the one before */
    for (guint i = 0; parts[i]; i++) {
        guint64 *id = g_new(guint64, 1);
        uint64_t ino;
        IfsNode *n = ifs_inodes_lookup(p->inodes, root, parent, parts[i], id, &ino);

        g_assert_nonnull(n);
        ifs_node_unref(n);
        parent = *id;
        g_string_append_printf(so_far, "%s%s", i ? "/" : "", parts[i]);
        g_mutex_lock(&p->rec.lock);
        g_hash_table_replace(p->rec.paths, id, g_strdup(so_far->str));
        g_mutex_unlock(&p->rec.lock);
    }
    g_string_free(so_far, TRUE);
    g_strfreev(parts);
    ifs_node_unref(root);
}

/* ---- the pipeline ------------------------------------------------------------ */

void pipeline_init(Pipeline *p, const IfsStoreOptions *opts)
{
    IfsStoreOptions defaults = {.refresh_s = 3600};
    IfsInvalidator inv = {record_inode, record_entry, &p->rec};

    memset(p, 0, sizeof *p);
    g_mutex_init(&p->rec.lock);
    p->rec.events = g_ptr_array_new_with_free_func(g_free);
    p->rec.paths = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    p->fake = fake_provider_new(PIPE_ACCOUNT);
    p->cfg = fake_account_config(PIPE_ACCOUNT, PIPE_SECRET);
    model_init(&p->model, opts ? opts : &defaults);
    p->account = account_new(&p->model, p->cfg, &fake_provider_type);
    p->publisher = publisher_new(&p->model);
    p->inodes = ifs_inodes_new();
    publisher_set_invalidator(p->publisher, &inv, p->inodes);
    refreshers_init(&p->refreshers, &p->model, p->publisher);
    actions_init(&p->actions, &p->model, p->publisher);
}

void pipeline_start_publisher(Pipeline *p)
{
    publisher_start(p->publisher);
}

void pipeline_start_refreshers(Pipeline *p)
{
    refreshers_start(&p->refreshers);
}

void pipeline_start_actions(Pipeline *p)
{
    actions_start(&p->actions);
}

void pipeline_clear(Pipeline *p)
{
    model_shutdown(&p->model);
    refreshers_join(&p->refreshers);
    actions_stop(&p->actions);
    publisher_free(p->publisher);
    ifs_inodes_free(p->inodes);
    refreshers_clear(&p->refreshers);
    model_clear(&p->model);
    fake_provider_unref(p->fake);
    fake_account_config_free(p->cfg);
    g_ptr_array_unref(p->rec.events);
    g_hash_table_destroy(p->rec.paths);
    g_mutex_clear(&p->rec.lock);
}

IfsResource *pipeline_resource(const char *id, const char *json)
{
    json_object *object = json_tokener_parse(json);
    IfsResource *r;

    if (!object)
        g_error("not JSON: %s", json);
    r = ifs_resource_new("vps", id, object);
    ifs_resource_seal(r);
    return r;
}

void pipeline_set_resources(Pipeline *p, const char *id1, const char *json1, ...)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    const char *id = id1, *json = json1;
    va_list ap;

    va_start(ap, json1);
    while (id) {
        g_ptr_array_add(list, pipeline_resource(id, json));
        id = va_arg(ap, const char *);
        json = id ? va_arg(ap, const char *) : NULL;
    }
    va_end(ap);
    g_mutex_lock(&p->account->lock);
    g_ptr_array_unref(p->account->resources);
    p->account->resources = list;
    g_mutex_unlock(&p->account->lock);
}

/* ---- reading trees ------------------------------------------------------------- */

IfsNode *published_node(Pipeline *p, const char *path)
{
    IfsNode *root = publisher_root(p->publisher);
    IfsNode *n;

    g_assert_nonnull(root);
    n = tree_node(root, path);
    ifs_node_unref(root);
    return n;
}

char *published_text(Pipeline *p, const char *path)
{
    IfsNode *root = publisher_root(p->publisher);
    char *text;

    g_assert_nonnull(root);
    text = tree_text(root, path);
    ifs_node_unref(root);
    return text;
}

void assert_published(Pipeline *p, const char *path, const char *expected)
{
    char *text = published_text(p, path);

    g_assert_cmpstr(text, ==, expected);
    g_free(text);
}

Operation *pipeline_start_operation(Pipeline *p, const char *job, const char *poll_url)
{
    Account *a = p->account;
    Operation *op =
        operation_new(a, "vps", "vps_1", g_strdup(job), g_strdup(poll_url), g_strdup("queued"));
    Extras *x;

    g_mutex_lock(&a->lock);
    x = extras_get(a, "vps/vps_1");
    x->op = operation_ref(op);
    x->wait_target = control_target_new(TARGET_OPERATION, a, "vps", "vps_1", "wait");
    x->wait_target->op = operation_ref(op);
    x->gen++;
    g_mutex_unlock(&a->lock);
    return op;
}
