/* Building snapshots (see build.h): resource, kind and
 * providers/<account>/ directories, and the root above them. */
#include "build.h"

#include <string.h>

#include "infrafs/jsontree.h"
#include "infrafs/text.h"

/* The order kind directories appear in; doc/SEMANTICS.md §3.1. */
static const char *const known_kinds[] = {
    "vps", "servers", "incidents", "heartbeats", "regions", "sizes", "deployments", NULL,
};

/* The last node built for a resource, to skip rebuilding unchanged ones. */
typedef struct {
    IfsResource *res;
    guint gen; /* the extras' gen it was built with */
    IfsNode *node;
    char *problems; /* what building it reported for last_error, or NULL */
} Built;

static void built_free(gpointer data)
{
    Built *b = data;

    ifs_resource_unref(b->res);
    ifs_node_unref(b->node);
    g_free(b->problems);
    g_free(b);
}

AccountBuild *account_build_new(Account *a)
{
    AccountBuild *ab = g_new0(AccountBuild, 1);

    ab->account = a;
    ab->built = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, built_free);
    ab->kind_dirs =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)ifs_node_unref);
    ab->saved_mtimes = a->saved_mtimes;
    a->saved_mtimes = NULL;
    return ab;
}

void account_build_free(AccountBuild *ab)
{
    if (!ab)
        return;
    g_hash_table_destroy(ab->built);
    g_hash_table_destroy(ab->kind_dirs);
    if (ab->provider_dir)
        ifs_node_unref(ab->provider_dir);
    if (ab->saved_mtimes)
        g_hash_table_unref(ab->saved_mtimes);
    g_free(ab->state);
    g_free(ab->reason);
    g_free(ab->problems);
    g_free(ab);
}

/* ---- one account -------------------------------------------------------- */

static void add_file(IfsDirBuilder *b, const char *name, const char *text)
{
    ifs_dir_builder_add_file(b, name, text, strlen(text), FALSE);
}

static void add_line(IfsDirBuilder *b, const char *name, const char *value)
{
    char *text = value && *value ? g_strconcat(value, "\n", NULL) : g_strdup("");

    add_file(b, name, text);
    g_free(text);
}

static IfsNode *build_operation_dir(const char *res_path, Extras *x, Model *m)
{
    Operation *op = x->op;
    char *path = ifs_path_join(res_path, "operation");
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    char *wait_path = ifs_path_join(path, "wait");
    char *final_text = NULL;
    char *identity;
    IfsNode *wait;

    g_mutex_lock(&m->op_lock);
    add_line(b, "status", op->status_text);
    if (op->shown_final)
        final_text = g_strconcat(op->status_text, "\n", NULL);
    g_mutex_unlock(&m->op_lock);
    add_line(b, "job_id", op->job_id);
    {
        /* Kept as the API gave it for polling; shown without credentials. */
        char *shown = ifs_http_redact(op->account->http, op->poll_url);
        add_line(b, "poll_url", shown);
        g_free(shown);
    }
    /* Each operation's wait file is a new inode: the kernel then forgets the
     * previous one by name, never by invalidating pages a reader may hold. */
    identity = g_strconcat(wait_path, "#", op->job_id ? op->job_id : "", NULL);
    wait = ifs_node_new_wait(wait_path, final_text, control_target_ref(x->wait_target),
                             (IfsTargetFree)control_target_unref, identity);
    g_free(identity);
    ifs_dir_builder_add(b, wait);
    g_free(final_text);
    g_free(wait_path);
    g_free(path);
    return ifs_dir_builder_finish(b, 0);
}

/* The names infrafs adds to a resource directory of this kind, whether or
 * not they are there at the moment: json, last_action, operation and the
 * control files. (Extra files, such as Dokploy's log, are not: the API's
 * own field of that name wins or is reported.) */
static GPtrArray *reserved_names(const Account *a, const char *kind)
{
    GPtrArray *names = g_ptr_array_new();

    g_ptr_array_add(names, (gpointer) "json");
    g_ptr_array_add(names, (gpointer) "last_action");
    g_ptr_array_add(names, (gpointer) "operation");
    for (const IfsControlSpec *spec = a->type->controls; spec && spec->kind; spec++)
        if (strcmp(spec->kind, kind) == 0)
            g_ptr_array_add(names, (gpointer)spec->file);
    g_ptr_array_add(names, NULL);
    return names;
}

static char *render_json(const void *src, size_t *len)
{
    json_object *object = ifs_resource_object(src);
    char *text = ifs_json_pretty(object, len);

    json_object_put(object);
    return text;
}

static gboolean same_json(const void *a, const void *b)
{
    return ifs_resource_same_object(a, b);
}

/* A resource's `json` file, rendered from the resource when read. */
static void *retain_resource(void *src)
{
    return ifs_resource_ref(src);
}

static const IfsRenderer resource_json = {
    render_json, same_json, (void (*)(void *))ifs_resource_unref, retain_resource, NULL,
};

static IfsNode *build_resource(Account *a, IfsResource *r, const char *path, Extras *x,
                               GString *problems)
{
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    gboolean has_controls = FALSE;
    GString *field_problems = g_string_new(NULL);
    GPtrArray *reserved = reserved_names(a, r->kind);
    /* Parsed for this build only: a resource is kept as compact text. */
    json_object *object = ifs_resource_object(r);
    json_object *extra = ifs_resource_extra_files(r);
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
        ifs_dir_builder_add(
            b,
            ifs_node_new_control(cpath, line,
                                 control_target_ref(extras_control_target(x, a, r, spec->file)),
                                 (IfsTargetFree)control_target_unref));
        g_free(line);
        g_free(cpath);
    }
    if (has_controls)
        add_file(b, "last_action", x->last_action ? x->last_action : "");
    if (x->op)
        ifs_dir_builder_add(b, build_operation_dir(path, x, a->model));
    if (extra) {
        json_object_object_foreach(extra, name, value)
        {
            char *safe = ifs_name_escape(name, strlen(name));
            if (safe && json_object_is_type(value, json_type_string))
                add_file(b, safe, json_object_get_string(value));
            g_free(safe);
        }
    }
    /* Measured now, rendered again when read: the resource's compact text
     * is kept anyway, and its pretty form is the largest file it has. */
    json_len = r->text ? ifs_json_pretty_size(r->text, r->text_len) : 0;
    if (json_len == 0) {
        json = ifs_json_pretty(object, &json_len);
        g_free(json);
    }
    {
        char *jpath = ifs_path_join(path, "json");
        ifs_dir_builder_add(
            b, ifs_node_new_rendered(jpath, &resource_json, ifs_resource_ref(r), json_len, 0));
        g_free(jpath);
    }
    if (ifs_json_fill_dir(b, object, (const char *const *)reserved->pdata, field_problems) > 0)
        g_string_append_printf(problems, "%s %s: %s", r->kind, r->id, field_problems->str);
    g_string_free(field_problems, TRUE);
    json_object_put(object);
    json_object_put(extra);
    g_ptr_array_free(reserved, TRUE);
    return ifs_dir_builder_finish(b, 0);
}

static void add_problems(GString *problems, const char *more)
{
    if (more && *more && problems->len < MAX_PROBLEM_TEXT)
        g_string_append(problems, more);
}

static gboolean kind_has_controls(const Account *a, const char *kind)
{
    for (const IfsControlSpec *spec = a->type->controls; spec && spec->kind; spec++)
        if (strcmp(spec->kind, kind) == 0)
            return TRUE;
    return FALSE;
}

/* The resource's node, rebuilt only when the API data or our extras changed;
 * a rebuilt node still shares every unchanged file with the previous one. */
static IfsNode *resource_node(AccountBuild *ab, IfsResource *r, const char *key, const char *path,
                              GString *problems)
{
    Account *a = ab->account;
    /* Only a resource with controls can gain extras of its own (targets,
     * last_action, an operation); the others share an empty one until an
     * action's re-read makes theirs. */
    static Extras no_extras;
    Extras *x =
        kind_has_controls(a, r->kind) ? extras_get(a, key) : g_hash_table_lookup(a->extras, key);
    Built *prev = g_hash_table_lookup(ab->built, key);
    GString *own_problems;
    IfsNode *node;
    Built *now;

    if (!x)
        x = &no_extras;
    /* A refresh lists every resource anew: same text, same node. */
    if (prev && prev->gen == x->gen && ifs_resource_same(prev->res, r)) {
        if (prev->res != r) { /* keep the one the account holds, not both */
            ifs_resource_unref(prev->res);
            prev->res = ifs_resource_ref(r);
        }
        add_problems(problems, prev->problems);
        return ifs_node_ref(prev->node);
    }
    own_problems = g_string_new(NULL);
    ifs_node_scratch_begin();
    node = build_resource(a, r, path, x, own_problems);
    add_problems(problems, own_problems->str);
    if (!prev && ab->saved_mtimes) {
        IfsCacheMtimes *m = g_hash_table_lookup(ab->saved_mtimes, key);
        if (m)
            ifs_cache_restamp(node, m);
    }
    node = ifs_node_pack(ifs_node_merge_unchanged(node, prev ? prev->node : NULL));
    ifs_node_scratch_end();
    now = g_new0(Built, 1);
    now->res = ifs_resource_ref(r);
    now->gen = x->gen;
    now->node = ifs_node_ref(node);
    now->problems = own_problems->len ? g_strdup(own_problems->str) : NULL;
    g_string_free(own_problems, TRUE);
    g_hash_table_replace(ab->built, g_strdup(key), now);
    return node;
}

static void build_kind_dirs(AccountBuild *ab, GString *problems)
{
    Account *a = ab->account;
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
                g_string_append_printf(
                    problems, "skipped %s '%s': %s; ", r->kind ? r->kind : "resource",
                    r->id ? r->id : "",
                    !b ? "unknown kind"
                        : !r->id
                        ? (r->problem ? r->problem : "no usable id (missing or not a string)")
                        : !name ? "id unusable as a file name"
                                : "duplicate id");
            g_free(name);
            continue;
        }
        key = store_resource_key(r->kind, r->id);
        path = ifs_path_join(ifs_dir_builder_path(b), name);
        ifs_dir_builder_add(b, resource_node(ab, r, key, path, problems));
        /* Shown, but incomplete (e.g. a detail read failed): say so. */
        if (r->problem && problems->len < MAX_PROBLEM_TEXT)
            g_string_append_printf(problems, "%s %s: %s; ", r->kind, r->id, r->problem);
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
        g_hash_table_iter_init(&it, ab->built);
        while (g_hash_table_iter_next(&it, &key, NULL))
            if (!g_hash_table_contains(seen, key))
                g_hash_table_iter_remove(&it);
    }
    for (const char *const *k = a->type->kinds; *k; k++) {
        IfsNode *fresh = ifs_dir_builder_finish(g_hash_table_lookup(builders, *k), 0);
        IfsNode *old = g_hash_table_lookup(ab->kind_dirs, *k);
        g_hash_table_replace(ab->kind_dirs, (gpointer)*k, ifs_node_merge_unchanged(fresh, old));
    }
    g_hash_table_destroy(builders);
    g_hash_table_destroy(seen);
}

/* providers/<account>/budget: one "name value" line each, so that
 * `awk '$1 == "remaining" {print $2}'` finds any of them. a->lock held. */
static char *budget_text(Account *a)
{
    IfsBudgetStats st;
    GString *t = g_string_new(NULL);
    gint64 interval = a->effective_interval_s > 0 ? a->effective_interval_s : a->refresh_s;

    ifs_budget_stats(ifs_http_budget(a->http), g_get_monotonic_time(), &st);
    if (st.limit > 0)
        g_string_append_printf(t, "limit %u\nwindow %u\n", st.limit, st.window_s);
    else
        g_string_append(t, "limit unknown\nwindow unknown\n");
    g_string_append_printf(t, "limit_source %s\n", st.source);
    if (st.remaining >= 0)
        g_string_append_printf(t, "remaining %" G_GINT64_FORMAT "\n", st.remaining);
    else
        g_string_append(t, "remaining unknown\n");
    g_string_append_printf(t, "refresh_share %u\n", st.share_pct);
    if (st.background_cap > 0)
        g_string_append_printf(t, "refresh_cap %u\n", st.background_cap);
    else
        g_string_append(t, "refresh_cap unlimited\n");
    g_string_append_printf(t, "refresh_used %u\nuser_used %u\n", st.used_background, st.used_user);
    g_string_append_printf(t,
                           "refresh_sent %" G_GUINT64_FORMAT "\nuser_sent %" G_GUINT64_FORMAT
                           "\nanswers_429 %" G_GUINT64_FORMAT "\n",
                           st.sent_background, st.sent_user, st.answers_429);
    g_string_append_printf(t, "interval %d\neffective_interval %" G_GINT64_FORMAT "\n",
                           a->refresh_s, interval);
    return g_string_free(t, FALSE);
}

/* providers/<account>/progress: the refresh under way, and the last one
 * for comparison (how far there is to go). a->lock held. */
static char *progress_text(Account *a)
{
    gint64 started = __atomic_load_n(&a->progress.started, __ATOMIC_ACQUIRE);
    GString *t = g_string_new(NULL);

    if (started > 0) {
        char *when = ifs_iso_time(started);

        g_string_append_printf(t,
                               "state refreshing\nstarted %s\npages %u\nresources %u\n"
                               "seconds %" G_GINT64_FORMAT "\n",
                               when, g_atomic_int_get(&a->progress.pages),
                               g_atomic_int_get(&a->progress.resources),
                               MAX(store_now() - started, 0));
        g_free(when);
    } else {
        g_string_append(t, "state idle\n");
    }
    /* After a remount only the saved copy's count is known. */
    if (a->last_requests > 0)
        g_string_append_printf(t, "last_pages %u\n", a->last_pages);
    if (a->last_requests > 0 || a->last_resources > 0)
        g_string_append_printf(t, "last_resources %u\n", a->last_resources);
    if (a->last_requests > 0)
        g_string_append_printf(
            t, "last_requests %" G_GUINT64_FORMAT "\nlast_seconds %" G_GINT64_FORMAT "\n",
            a->last_requests, a->last_seconds);
    return g_string_free(t, FALSE);
}

static IfsNode *build_provider_dir(Account *a, const char *problems)
{
    char *path = g_strconcat("providers/", a->cfg->name, NULL);
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    char *text;
    gint64 remaining;
    char *last_error;

    add_line(b, "type", a->type->schema.type);
    add_line(b, "url", a->cfg->url); /* config.c refuses one with user:password@ */
    add_line(b, "state", a->state);
    text = ifs_iso_time(a->last_refresh);
    add_line(b, "last_refresh", text);
    g_free(text);
    text = ifs_iso_time(a->next_refresh);
    add_line(b, "next_refresh", text);
    g_free(text);
    last_error = g_strconcat(a->last_error ? a->last_error : "",
                             problems && *problems && a->last_error && *a->last_error ? "; " : "",
                             problems ? problems : "", NULL);
    text = store_one_line(last_error, MAX_PROBLEM_TEXT);
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
    text = budget_text(a);
    add_file(b, "budget", text);
    g_free(text);
    text = progress_text(a);
    add_file(b, "progress", text);
    g_free(text);
    {
        char *cpath = ifs_path_join(path, "refresh");
        char *line = ifs_control_commands_line(&store_refresh_spec);
        ifs_dir_builder_add(b,
                            ifs_node_new_control(cpath, line, control_target_ref(a->refresh_target),
                                                 (IfsTargetFree)control_target_unref));
        g_free(line);
        g_free(cpath);
    }
    g_free(path);
    return ifs_dir_builder_finish(b, 0);
}

static void replace_provider_dir(AccountBuild *ab, IfsNode *fresh)
{
    fresh = ifs_node_merge_unchanged(fresh, ab->provider_dir);
    if (ab->provider_dir)
        ifs_node_unref(ab->provider_dir);
    ab->provider_dir = fresh;
}

void build_account(AccountBuild *ab)
{
    Account *a = ab->account;
    GString *problems = g_string_new(NULL);
    IfsNode *fresh;

    g_mutex_lock(&a->lock);
    build_kind_dirs(ab, problems);
    g_free(ab->problems);
    ab->problems = g_string_free(problems, FALSE);
    fresh = build_provider_dir(a, ab->problems);
    ab->has_data = a->ever_ok;
    ab->refreshed = a->refresh_started > 0;
    g_free(ab->state);
    ab->state = g_strdup(a->state);
    g_free(ab->reason);
    ab->reason = a->last_error && *a->last_error ? store_one_line(a->last_error, 300) : NULL;
    if (a->save_wanted) {
        /* What the refresher writes to disk once this build is published. */
        GHashTableIter it;
        gpointer value;
        if (a->save_items)
            g_ptr_array_unref(a->save_items);
        a->save_items = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_cache_item_free);
        g_hash_table_iter_init(&it, ab->built);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            Built *built = value;
            g_ptr_array_add(a->save_items, ifs_cache_item_new(built->res, built->node));
        }
        a->save_wanted = FALSE;
    }
    g_mutex_unlock(&a->lock);
    if (ab->saved_mtimes) { /* only the first build needs them */
        g_hash_table_unref(ab->saved_mtimes);
        ab->saved_mtimes = NULL;
    }
    replace_provider_dir(ab, fresh);
}

void build_account_status(AccountBuild *ab)
{
    Account *a = ab->account;
    IfsNode *fresh;

    g_mutex_lock(&a->lock);
    fresh = build_provider_dir(a, ab->problems);
    g_mutex_unlock(&a->lock);
    replace_provider_dir(ab, fresh);
}

static const char readme_text[] =
    "infrafs: your hosted infrastructure as files\n"
    "\n"
    "inventory                one row per resource of every account: kind, account,\n"
    "                         type, id, name, status, ip, region, path (tab-separated,\n"
    "                         with a header); inventory.json: the same as JSON\n"
    "events, events.ndjson    what changed, one line per change: tail -f events\n"
    "by-name/<name>, by-ip/<address>\n"
    "                         links to the resource with that name or address\n"
    "actions                  the action log: who wrote what to which control file\n"
    "providers/<account>/     state of each configured account: state, last_refresh,\n"
    "                         next_refresh, last_error, requests, rate_limit_remaining;\n"
    "                         `echo 1 > refresh` refreshes now and returns when done\n"
    "vps/<account>/<id>/      servers and VPSes (hostup, heo, deployhq)\n"
    "deployments/<account>/<id>/  deployments (dokploy), with their `log`; controls\n"
    "                         `kill` and `remove` accept 1\n"
    "regions/<account>/<slug>/, sizes/<account>/<slug>/\n"
    "                         where and how big new VPSes can be (deployhq)\n"
    "servers/, incidents/, heartbeats/<account>/<id>/   hostatlas; a heartbeat's\n"
    "                         `echo 1 > ping` requests its ping_url\n"
    "\n"
    "Each resource is a directory with one file per field of the provider's object\n"
    "(snake_case names, value plus newline, null = empty file), subdirectories for\n"
    "nested objects, and `json` holding the whole object.\n"
    "\n"
    "Control files (mode 0644) list the commands they accept when read; writing one\n"
    "performs it:  echo restart > vps/<account>/<id>/power\n"
    "Forced actions need the word force:  echo 'reset force' > .../power\n"
    "Every write records its outcome in last_action, and in `actions` at the top:\n"
    "one line per write and per operation's end (time, user, path, command, result,\n"
    "HTTP status, message, operation id; `tail -f actions` follows it).\n"
    "Asynchronous operations show up under operation/; `cat operation/wait` blocks\n"
    "until the operation ends.\n"
    "\n"
    "Errors: EINVAL bad command, EACCES unauthorized, ENOENT gone, EBUSY not ready,\n"
    "EAGAIN rate limited, EIO provider error, ETIMEDOUT/EHOSTUNREACH network.\n"
    "See man infrafs.\n";

IfsNode *build_root(AccountBuild *const *builds, guint n, IfsNode *const *files, guint n_files)
{
    IfsDirBuilder *root = ifs_dir_builder_new("");
    IfsDirBuilder *providers = ifs_dir_builder_new("providers");

    ifs_dir_builder_add(root, ifs_node_new_file("README", readme_text, sizeof readme_text - 1, 0));
    for (guint i = 0; i < n_files; i++)
        ifs_dir_builder_add(root, files[i]);
    for (guint i = 0; i < n; i++) {
        if (builds[i]->provider_dir)
            ifs_dir_builder_add(providers, ifs_node_ref(builds[i]->provider_dir));
    }
    ifs_dir_builder_add(root, ifs_dir_builder_finish(providers, 0));
    for (const char *const *k = known_kinds; *k; k++) {
        IfsDirBuilder *kind_dir = NULL;
        for (guint i = 0; i < n; i++) {
            IfsNode *dir = g_hash_table_lookup(builds[i]->kind_dirs, *k);
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
