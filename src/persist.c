/* The persistent cache: one JSON file per account holding the resources of
 * its last good refresh and the mtime of every file the tree showed for
 * them. Written with g_file_set_contents_full (temporary file, fsync,
 * rename), so a crash leaves either the old or the new copy. */
#include "infrafs/persist.h"

#include "infrafs/jsonparse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_FORMAT "infrafs-cache"
#define CACHE_VERSION 1
/* A cache file is ours and bounded by what we write; anything larger is
 * not one of ours. */
#define MAX_CACHE_BYTES ((gsize)1024 * 1024 * 1024)
/* Levels of the file's own structure around each resource's object. */
#define CACHE_WRAPPING_DEPTH 4
/* A temporary file of a save untouched this long is left over from a save
 * that was cut off: a save writes its file in seconds. */
#define STALE_TEMPORARY_S 600

char *ifs_cache_default_dir(void)
{
    const char *xdg = g_getenv("XDG_CACHE_HOME");
    char *home, *dir;

    if (xdg && g_path_is_absolute(xdg))
        return g_build_filename(xdg, "infrafs", NULL);
    home = ifs_home_dir();
    if (!home)
        home = g_strdup(g_get_home_dir());
    dir = g_build_filename(home, ".cache", "infrafs", NULL);
    g_free(home);
    return dir;
}

char *ifs_cache_file(const char *dir, const char *account)
{
    char *name = ifs_name_escape(account, strlen(account));
    char *file = g_strconcat(name ? name : "_", ".json", NULL);
    char *path = g_build_filename(dir, file, NULL);

    g_free(file);
    g_free(name);
    return path;
}

IfsCacheItem *ifs_cache_item_new(IfsResource *res, IfsNode *node)
{
    IfsCacheItem *item = g_new(IfsCacheItem, 1);

    item->res = ifs_resource_ref(res);
    item->node = ifs_node_ref(node);
    return item;
}

void ifs_cache_item_free(IfsCacheItem *item)
{
    ifs_resource_unref(item->res);
    ifs_node_unref(item->node);
    g_free(item);
}

/* ---- saving ---------------------------------------------------------------- */

typedef struct {
    gint64 t;
    guint n;
} MtimeCount;

/* How many of a resource's files have each mtime: a few distinct values. */
static void count_mtimes(const IfsNode *n, GArray *counts)
{
    guint i;

    /* Controls and wait files are ours and rebuilt on every start. */
    if (n->type == IFS_NODE_CONTROL || n->type == IFS_NODE_WAIT)
        return;
    for (i = 0; i < counts->len; i++)
        if (g_array_index(counts, MtimeCount, i).t == (gint64)n->mtime)
            break;
    if (i == counts->len) {
        MtimeCount c = {(gint64)n->mtime, 0};
        g_array_append_val(counts, c);
    }
    g_array_index(counts, MtimeCount, i).n++;
    for (guint c = 0; n->type == IFS_NODE_DIR && c < ifs_node_n_children(n); c++)
        count_mtimes(ifs_node_child_at(n, c), counts);
}

/* A name as the inside of a JSON string. Entry names never hold control
 * characters (they are escaped as %XX), only '"' and '\\' need care. */
static void append_json_chars(GString *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            g_string_append_c(out, '\\');
        if ((unsigned char)*s < 0x20)
            g_string_append_printf(out, "\\u%04x", (unsigned char)*s);
        else
            g_string_append_c(out, *s);
    }
}

/* `"path":T` for every node below `n` whose mtime is not `base`; `path`
 * holds n's relative path and is restored on return. */
static void append_other_mtimes(const IfsNode *n, GString *path, gint64 base, GString *out,
                                gboolean *first)
{
    if (n->type == IFS_NODE_CONTROL || n->type == IFS_NODE_WAIT)
        return;
    if ((gint64)n->mtime != base) {
        g_string_append(out, *first ? "\"" : ",\"");
        append_json_chars(out, path->str);
        g_string_append_printf(out, "\":%" G_GINT64_FORMAT, (gint64)n->mtime);
        *first = FALSE;
    }
    for (guint c = 0; n->type == IFS_NODE_DIR && c < ifs_node_n_children(n); c++) {
        gsize len = path->len;

        if (len)
            g_string_append_c(path, '/');
        g_string_append(path, ifs_node_name(ifs_node_child_at(n, c)));
        append_other_mtimes(ifs_node_child_at(n, c), path, base, out, first);
        g_string_truncate(path, len);
    }
}

/* {"base":T,"other":{"path":T,...}}: most files of a resource share one
 * mtime (when it was first seen), so only the others are listed. Written
 * straight as text: a save walks every node of the account. */
static void append_mtimes(GString *out, const IfsNode *node, GArray *counts, GString *path)
{
    gint64 base = 0;
    guint best = 0;
    gboolean first = TRUE;

    g_array_set_size(counts, 0);
    count_mtimes(node, counts);
    for (guint i = 0; i < counts->len; i++) {
        MtimeCount c = g_array_index(counts, MtimeCount, i);
        if (c.n > best) {
            best = c.n;
            base = c.t;
        }
    }
    g_string_append_printf(out, "{\"base\":%" G_GINT64_FORMAT ",\"other\":{", base);
    g_string_truncate(path, 0);
    append_other_mtimes(node, path, base, out, &first);
    g_string_append(out, "}}");
}

static gboolean make_private_dir(const char *dir, const char *account, IfsError **err)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int e = errno;
        ifs_error_propagate(err, ifs_error_new(e, 0, NULL,
            "account '%s': cannot create the cache directory %s: %s; its data is not "
            "kept on disk; set cache_dir= to a writable directory", account, dir,
            g_strerror(e)));
        return FALSE;
    }
    return TRUE;
}

/* g_file_set_contents_full writes PATH.XXXXXX, then renames it over PATH:
 * a save killed in between leaves that temporary file behind, as large as
 * the cache. Such files are removed at the next save once they are old
 * enough that no other save can still be writing them (another mount
 * sharing the cache directory). */
static gboolean is_temporary_of(const char *name, const char *base)
{
    size_t len = strlen(base);

    if (strncmp(name, base, len) != 0 || name[len] != '.' || strlen(name + len + 1) != 6)
        return FALSE;
    for (const char *p = name + len + 1; *p; p++)
        if (!g_ascii_isalnum(*p))
            return FALSE;
    return TRUE;
}

static void remove_stale_temporaries(const char *dir, const char *path)
{
    char *base = g_path_get_basename(path);
    GDir *d = g_dir_open(dir, 0, NULL);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    const char *name;

    while (d && (name = g_dir_read_name(d)) != NULL) {
        char *full;
        struct stat st;

        if (!is_temporary_of(name, base))
            continue;
        full = g_build_filename(dir, name, NULL);
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) &&
            now - (gint64)st.st_mtime > STALE_TEMPORARY_S) {
            if (unlink(full) == 0)
                g_message("removed %s, left behind by a save that was cut off", full);
        }
        g_free(full);
    }
    if (d)
        g_dir_close(d);
    g_free(base);
}

/* A json-c value's compact text, appended (it is then freed). */
static void append_json(GString *out, json_object *value)
{
    size_t len;
    char *text = ifs_json_compact(value, &len);

    g_string_append_len(out, text, (gssize)len);
    g_free(text);
    json_object_put(value);
}

/* Written as text around each resource's own compact text: no tree of the
 * whole account is built, so a save costs little more memory than the
 * file it writes. */
gboolean ifs_cache_save(const char *path, const IfsAccountConfig *cfg, gint64 last_refresh,
                        GPtrArray *items, IfsError **err)
{
    json_object *top = json_object_new_object();
    GString *out;
    GArray *counts = g_array_new(FALSE, FALSE, sizeof(MtimeCount));
    GString *rel = g_string_new(NULL); /* a node's path, while walking */
    gsize estimate = 4096;
    char *dir = g_path_get_dirname(path);
    GError *gerr = NULL;
    const char *text;
    size_t len;
    gboolean ok;

    json_object_object_add(top, "format", json_object_new_string(CACHE_FORMAT));
    json_object_object_add(top, "version", json_object_new_int(CACHE_VERSION));
    json_object_object_add(top, "account", json_object_new_string(cfg->name));
    json_object_object_add(top, "type", json_object_new_string(cfg->type));
    json_object_object_add(top, "url", json_object_new_string(cfg->url));
    json_object_object_add(top, "last_refresh", json_object_new_int64(last_refresh));
    /* Sized once: growing a string of tens of MB by doubling copies it
     * again and again. */
    for (guint i = 0; i < items->len; i++) {
        const IfsResource *r = ((IfsCacheItem *)g_ptr_array_index(items, i))->res;
        estimate += r->text_len + r->extra_len + 256;
    }
    out = g_string_sized_new(estimate);
    append_json(out, top);
    g_string_truncate(out, out->len - 1); /* the closing brace */
    g_string_append(out, ",\"resources\":[");
    for (guint i = 0; i < items->len; i++) {
        const IfsCacheItem *item = g_ptr_array_index(items, i);
        const IfsResource *r = item->res;

        g_string_append(out, i ? ",{\"kind\":" : "{\"kind\":");
        append_json(out, json_object_new_string(r->kind));
        g_string_append(out, ",\"id\":");
        append_json(out, json_object_new_string(r->id));
        g_string_append(out, ",\"object\":");
        if (r->text)
            g_string_append_len(out, r->text, (gssize)r->text_len);
        else
            append_json(out, ifs_resource_object(r));
        if (r->extra_text) {
            g_string_append(out, ",\"extra_files\":");
            g_string_append_len(out, r->extra_text, (gssize)r->extra_len);
        } else if (r->extra_files) {
            g_string_append(out, ",\"extra_files\":");
            append_json(out, json_object_get(r->extra_files));
        }
        g_string_append(out, ",\"mtimes\":");
        append_mtimes(out, item->node, counts, rel);
        g_string_append_c(out, '}');
    }
    g_string_append(out, "]}");
    text = out->str;
    len = out->len;
    ok = make_private_dir(dir, cfg->name, err);
    if (ok)
        remove_stale_temporaries(dir, path);
    ok = ok && g_file_set_contents_full(path, text, (gssize)len,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, &gerr);
    if (!ok && gerr) {
        ifs_error_propagate(err, ifs_error_new(EIO, 0, NULL,
            "account '%s': cannot save its data to %s: %s; the previous copy is kept",
            cfg->name, path, gerr->message));
        g_error_free(gerr);
    }
    g_string_free(out, TRUE);
    g_string_free(rel, TRUE);
    g_array_unref(counts);
    g_free(dir);
    return ok;
}

/* ---- loading ---------------------------------------------------------------- */

void ifs_cache_data_free(IfsCacheData *data)
{
    if (!data)
        return;
    g_ptr_array_unref(data->resources);
    /* unref, not destroy: destroy would empty the table for a caller that
     * took its own reference (the store keeps the mtimes). */
    g_hash_table_unref(data->mtimes);
    g_free(data);
}

static const char *str_member(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void mtimes_free(IfsCacheMtimes *m)
{
    g_hash_table_destroy(m->other);
    g_free(m);
}

static IfsCacheMtimes *mtimes_from_json(json_object *j)
{
    IfsCacheMtimes *m = g_new0(IfsCacheMtimes, 1);
    json_object *base, *other;

    m->other = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (json_object_object_get_ex(j, "base", &base))
        m->base = json_object_get_int64(base);
    if (json_object_object_get_ex(j, "other", &other) &&
        json_object_is_type(other, json_type_object)) {
        json_object_object_foreach(other, path, value) {
            if (json_object_is_type(value, json_type_int)) {
                gint64 *t = g_new(gint64, 1);
                *t = json_object_get_int64(value);
                g_hash_table_insert(m->other, g_strdup(path), t);
            }
        }
    }
    return m;
}

static IfsError *foreign(const char *path, const IfsAccountConfig *cfg, const char *what)
{
    return ifs_error_new(EINVAL, 0, NULL,
        "account '%s': ignoring the cache file %s: %s; it will be replaced after the "
        "next successful refresh", cfg->name, path, what);
}

/* The file wraps each API object in four levels of its own (top,
 * resources, entry, object): whatever the API's nesting, which json-c
 * limited when it was received, must load back. The memory bound per byte
 * is the answers'; the file holds all of an account's data, so it has no
 * cap of its own beyond MAX_CACHE_BYTES. */
static const IfsJsonLimits cache_limits = {
    .max_depth = JSON_TOKENER_DEFAULT_DEPTH + CACHE_WRAPPING_DEPTH,
    .max_memory = 0,
};

/* Why the file's JSON would cost far more memory than its size, found by
 * weighing it in pieces before all of it is read into memory; NULL when it
 * would not (or cannot be opened: reading it whole says why). */
static char *cache_too_costly(const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[16384];
    IfsJsonScan scan;
    size_t n;
    char *why = NULL;

    if (!f)
        return NULL;
    ifs_json_scan_init(&scan, &cache_limits);
    while (!why && (n = fread(buf, 1, sizeof buf, f)) > 0)
        if (!ifs_json_scan_feed(&scan, buf, n))
            why = ifs_json_scan_describe(&scan);
    fclose(f);
    return why;
}

IfsCacheData *ifs_cache_load(const char *path, const IfsAccountConfig *cfg, IfsError **err)
{
    char *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    json_object *top, *list, *v;
    IfsJsonResult parsed;
    char *costly;
    IfsCacheData *data;
    struct stat st;

    /* No file (or no directory yet: cache_dir under a file is reported
     * when saving) is not a problem. */
    if (stat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
        return NULL;
    if (stat(path, &st) == 0 && (gsize)st.st_size > MAX_CACHE_BYTES) {
        ifs_error_propagate(err, foreign(path, cfg, "it is larger than any cache infrafs writes"));
        return NULL;
    }
    costly = cache_too_costly(path);
    if (costly) {
        ifs_error_propagate(err, foreign(path, cfg, costly));
        g_free(costly);
        return NULL;
    }
    if (!g_file_get_contents(path, &text, &len, &gerr)) {
        ifs_error_propagate(err, foreign(path, cfg, gerr->message));
        g_error_free(gerr);
        return NULL;
    }
    top = ifs_json_parse(text, len, &cache_limits, &parsed);
    g_free(text);
    if (parsed.status == IFS_JSON_TOO_COSTLY) {
        ifs_error_propagate(err, foreign(path, cfg, parsed.why));
        return NULL;
    }
    if (!top || !json_object_is_type(top, json_type_object) ||
        g_strcmp0(str_member(top, "format"), CACHE_FORMAT) != 0 ||
        !json_object_object_get_ex(top, "version", &v) ||
        json_object_get_int(v) != CACHE_VERSION ||
        !json_object_object_get_ex(top, "resources", &list) ||
        !json_object_is_type(list, json_type_array)) {
        json_object_put(top);
        ifs_error_propagate(err, foreign(path, cfg, "it is corrupt or not an infrafs cache "
                                                    "of this version"));
        return NULL;
    }
    if (g_strcmp0(str_member(top, "account"), cfg->name) != 0 ||
        g_strcmp0(str_member(top, "type"), cfg->type) != 0 ||
        g_strcmp0(str_member(top, "url"), cfg->url) != 0) {
        json_object_put(top);
        ifs_error_propagate(err, foreign(path, cfg, "it was saved for another account, "
                                                    "type or url"));
        return NULL;
    }
    data = g_new0(IfsCacheData, 1);
    data->resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    data->mtimes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)mtimes_free);
    if (json_object_object_get_ex(top, "last_refresh", &v))
        data->last_refresh = json_object_get_int64(v);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *entry = json_object_array_get_idx(list, i);
        const char *kind = str_member(entry, "kind");
        const char *id = str_member(entry, "id");
        json_object *object, *extra, *m;
        IfsResource *r;

        /* Entries we cannot use are skipped, not fatal: the next refresh
         * replaces the file anyway. */
        if (!kind || !id || !json_object_object_get_ex(entry, "object", &object) ||
            !json_object_is_type(object, json_type_object))
            continue;
        r = ifs_resource_new(kind, id, json_object_get(object));
        if (json_object_object_get_ex(entry, "extra_files", &extra) &&
            json_object_is_type(extra, json_type_object))
            r->extra_files = json_object_get(extra);
        ifs_resource_seal(r);
        g_ptr_array_add(data->resources, r);
        if (json_object_object_get_ex(entry, "mtimes", &m) &&
            json_object_is_type(m, json_type_object))
            g_hash_table_replace(data->mtimes, g_strconcat(kind, "/", id, NULL),
                                 mtimes_from_json(m));
    }
    json_object_put(top);
    return data;
}

static void restamp(IfsNode *n, const char *rel, const IfsCacheMtimes *m)
{
    const gint64 *t;

    if (n->type == IFS_NODE_CONTROL || n->type == IFS_NODE_WAIT)
        return;
    t = g_hash_table_lookup(m->other, rel);
    if (t || m->base > 0)
        n->mtime = (time_t)(t ? *t : m->base);
    for (guint i = 0; n->type == IFS_NODE_DIR && i < ifs_node_n_children(n); i++) {
        char *child = *rel ? g_strconcat(rel, "/", ifs_node_name(ifs_node_child_at(n, i)), NULL)
                           : g_strdup(ifs_node_name(ifs_node_child_at(n, i)));
        restamp(ifs_node_child_at(n, i), child, m);
        g_free(child);
    }
}

void ifs_cache_restamp(IfsNode *fresh, const IfsCacheMtimes *mtimes)
{
    restamp(fresh, "", mtimes);
}
