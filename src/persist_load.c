/* Loading the persistent cache (the format is described in persist.c):
 * version 2 files read by slicing their length-prefixed texts, with every
 * length and count checked against the file before it is used; version 1
 * handed to persist_v1.c; then restamping a fresh tree with the mtimes
 * saved for it. */
#include "infrafs/persist.h"
#include "persist_private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

static void mtimes_free(IfsCacheMtimes *m)
{
    if (m->other)
        g_hash_table_destroy(m->other);
    g_free(m);
}

GHashTable *persist_new_other_mtimes(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

IfsCacheData *persist_cache_data_new(void)
{
    IfsCacheData *data = g_new0(IfsCacheData, 1);

    data->resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    data->mtimes =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)mtimes_free);
    return data;
}

IfsError *persist_foreign(const char *path, const IfsAccountConfig *cfg, const char *what)
{
    return ifs_error_new(
        EINVAL, 0, NULL,
        "account '%s': ignoring the cache file %s: %s; it will be replaced after the "
        "next successful refresh",
        cfg->name, path, what);
}

/* -- version 2 -- */

/* Reads fields off the file, never past its end. After the first field
 * that does not fit, `why` says so and every read returns nothing. */
typedef struct {
    const guchar *p, *end;
    const char *why;
} Reader;

static gboolean reader_has(Reader *rd, gsize n)
{
    if (rd->why)
        return FALSE;
    if ((gsize)(rd->end - rd->p) < n) {
        rd->why = "a field runs past the end of the file";
        return FALSE;
    }
    return TRUE;
}

/* `size` bytes into `out`, or zeros past the end (the reader then says
 * why it stopped). */
static void get_raw(Reader *rd, void *out, gsize size)
{
    memset(out, 0, size);
    if (reader_has(rd, size)) {
        memcpy(out, rd->p, size);
        rd->p += size;
    }
}

static guint32 get_u32(Reader *rd)
{
    guint32 v;

    get_raw(rd, &v, sizeof v);
    return GUINT32_FROM_LE(v);
}

static guint64 get_u64(Reader *rd)
{
    guint64 v;

    get_raw(rd, &v, sizeof v);
    return GUINT64_FROM_LE(v);
}

/* A str's bytes (not terminated), or NULL. */
static const char *get_str(Reader *rd, gsize *len)
{
    const char *s;

    *len = get_u32(rd);
    if (!reader_has(rd, *len))
        return NULL;
    s = (const char *)rd->p;
    rd->p += *len;
    return s;
}

/* A str used as a C string (kind, id, path): a NUL inside would cut it
 * short and make two names one. */
static char *get_name(Reader *rd)
{
    gsize len;
    const char *s = get_str(rd, &len);

    if (!s)
        return NULL;
    if (memchr(s, '\0', len)) {
        rd->why = "a name holds a NUL byte";
        return NULL;
    }
    return g_strndup(s, len);
}

static gboolean str_is(const char *s, gsize len, const char *want)
{
    return s && strlen(want) == len && memcmp(s, want, len) == 0;
}

/* A JSON text slice as it is in the file (not NUL-terminated), or NULL
 * for an empty one when `optional`. It is not parsed here: the checksum
 * vouches that it is what a save wrote. It must open an object, so that
 * whatever parses it later gets an object or, from a file crafted to pass
 * the checksum, NULL. */
static const char *get_object_text(Reader *rd, gsize *len, gboolean optional)
{
    const char *s = get_str(rd, len);

    if (!s || (*len == 0 && optional))
        return NULL;
    if (*len == 0 || s[0] != '{') {
        rd->why = "a resource's text is not a JSON object";
        return NULL;
    }
    return s;
}

static IfsCacheMtimes *get_mtimes(Reader *rd)
{
    IfsCacheMtimes *m = g_new0(IfsCacheMtimes, 1);
    guint32 n;

    m->base = (gint64)get_u64(rd);
    n = get_u32(rd);
    if (!rd->why && n > (gsize)(rd->end - rd->p) / MIN_EXCEPTION_BYTES)
        rd->why = "a resource claims more mtimes than the file holds";
    if (n && !rd->why)
        m->other = persist_new_other_mtimes();
    for (guint32 i = 0; i < n && !rd->why; i++) {
        char *path = get_name(rd);
        gint64 *t = g_new(gint64, 1);

        *t = (gint64)get_u64(rd);
        if (rd->why) {
            g_free(path);
            g_free(t);
            break;
        }
        g_hash_table_replace(m->other, path, t);
    }
    return m;
}

static void get_record(Reader *rd, IfsCacheData *data)
{
    /* kind and id are taken as they are, not copied once more by
     * ifs_resource_new. */
    IfsResource *r = ifs_resource_new(NULL, NULL, NULL);
    const char *text, *extra;
    gsize text_len, extra_len = 0;
    IfsCacheMtimes *m;

    r->kind = get_name(rd);
    r->id = get_name(rd);
    text = get_object_text(rd, &text_len, FALSE);
    extra = get_object_text(rd, &extra_len, TRUE);
    m = get_mtimes(rd);
    if (rd->why) {
        ifs_resource_unref(r);
        mtimes_free(m);
        return;
    }
    ifs_resource_set_texts(r, text, text_len, extra, extra_len);
    g_ptr_array_add(data->resources, r);
    g_hash_table_replace(data->mtimes, g_strconcat(r->kind, "/", r->id, NULL), m);
}

static IfsCacheData *load_v2(const char *path, const IfsAccountConfig *cfg, const guchar *text,
                             gsize len, IfsError **err)
{
    Reader rd = {text + OFF_LENGTH, text + len, NULL};
    guint32 version, records;
    guint64 stated_len, stated_sum;
    const char *account, *type, *url;
    gsize account_len, type_len, url_len;
    IfsCacheData *data;
    char *why;

    if (len < OFF_COUNT + 4) {
        ifs_error_propagate(err,
                            persist_foreign(path, cfg,
                                            "it is truncated (shorter than its "
                                            "header)"));
        return NULL;
    }
    memcpy(&version, text + OFF_VERSION, sizeof version);
    version = GUINT32_FROM_LE(version);
    if (version != CACHE_VERSION) {
        why = g_strdup_printf("it is an infrafs cache of format version %u, which this "
                              "infrafs does not read",
                              version);
        ifs_error_propagate(err, persist_foreign(path, cfg, why));
        g_free(why);
        return NULL;
    }
    memcpy(&stated_sum, text + OFF_CHECKSUM, sizeof stated_sum);
    stated_len = get_u64(&rd);
    if (stated_len != len) {
        why = g_strdup_printf("it is truncated or damaged (%" G_GSIZE_FORMAT " bytes, its "
                              "header says %" G_GUINT64_FORMAT ")",
                              len, stated_len);
        ifs_error_propagate(err, persist_foreign(path, cfg, why));
        g_free(why);
        return NULL;
    }
    if (GUINT64_FROM_LE(stated_sum) != persist_checksum(text + OFF_LENGTH, len - OFF_LENGTH)) {
        ifs_error_propagate(err,
                            persist_foreign(path, cfg,
                                            "it is damaged (its checksum does not "
                                            "match its content)"));
        return NULL;
    }
    data = persist_cache_data_new();
    data->last_refresh = (gint64)get_u64(&rd);
    records = get_u32(&rd);
    account = get_str(&rd, &account_len);
    type = get_str(&rd, &type_len);
    url = get_str(&rd, &url_len);
    if (!rd.why &&
        (!str_is(account, account_len, cfg->name) || !str_is(type, type_len, cfg->type) ||
         !str_is(url, url_len, cfg->url))) {
        ifs_cache_data_free(data);
        ifs_error_propagate(err,
                            persist_foreign(path, cfg,
                                            "it was saved for another account, "
                                            "type or url"));
        return NULL;
    }
    if (!rd.why && records > (gsize)(rd.end - rd.p) / MIN_RECORD_BYTES)
        rd.why = "it claims more records than the file holds";
    for (guint32 i = 0; i < records && !rd.why; i++)
        get_record(&rd, data);
    if (!rd.why && rd.p != rd.end)
        rd.why = "bytes follow its last record";
    if (rd.why) {
        /* Past the checksum, so written that way: not by a save of ours. */
        why = g_strdup_printf("it is corrupt (%s)", rd.why);
        ifs_cache_data_free(data);
        ifs_error_propagate(err, persist_foreign(path, cfg, why));
        g_free(why);
        return NULL;
    }
    return data;
}

static gboolean has_v2_name(const char *text, gsize len)
{
    static const char name[CACHE_NAME_LEN] = CACHE_FORMAT;

    return len >= CACHE_NAME_LEN && memcmp(text, name, CACHE_NAME_LEN) == 0;
}

/* Whether the file starts with version 2's name, looked at before the
 * whole file is read: any other file is weighed as JSON first. */
static gboolean file_has_v2_name(const char *path)
{
    FILE *f = fopen(path, "rb");
    char head[CACHE_NAME_LEN];
    gsize n;

    if (!f)
        return FALSE;
    n = fread(head, 1, sizeof head, f);
    fclose(f);
    return has_v2_name(head, n);
}

IfsCacheData *ifs_cache_load(const char *path, const IfsAccountConfig *cfg, IfsError **err)
{
    char *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    IfsCacheData *data;
    struct stat st;
    char *costly;

    /* No file (or no directory yet: cache_dir under a file is reported
     * when saving) is not a problem. */
    if (stat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
        return NULL;
    if (stat(path, &st) == 0 && (gsize)st.st_size > MAX_CACHE_BYTES) {
        ifs_error_propagate(
            err, persist_foreign(path, cfg, "it is larger than any cache infrafs writes"));
        return NULL;
    }
    costly = file_has_v2_name(path) ? NULL : persist_v1_too_costly(path);
    if (costly) {
        ifs_error_propagate(err, persist_foreign(path, cfg, costly));
        g_free(costly);
        return NULL;
    }
    if (!g_file_get_contents(path, &text, &len, &gerr)) {
        ifs_error_propagate(err, persist_foreign(path, cfg, gerr->message));
        g_error_free(gerr);
        return NULL;
    }
    /* Checked again: the file may have grown since stat. */
    if (len > MAX_CACHE_BYTES) {
        ifs_error_propagate(
            err, persist_foreign(path, cfg, "it is larger than any cache infrafs writes"));
        data = NULL;
    } else if (has_v2_name(text, len))
        data = load_v2(path, cfg, (const guchar *)text, len, err);
    else
        data = persist_load_v1(path, cfg, text, len, err);
    g_free(text);
    return data;
}

/* ---- restamping ------------------------------------------------------------- */

/* `rel` holds n's relative path, kept only when there are exceptions to
 * look up (most resources have none, and then no path is built). */
static void restamp(IfsNode *n, GString *rel, const IfsCacheMtimes *m)
{
    const gint64 *t = NULL;

    if (!persist_has_saved_mtime(n))
        return;
    if (m->other)
        t = g_hash_table_lookup(m->other, rel->str);
    if (t || m->base > 0)
        n->mtime = ifs_node_mtime(t ? *t : m->base);
    for (guint i = 0; n->type == IFS_NODE_DIR && i < ifs_node_n_children(n); i++) {
        gsize len = rel->len;

        if (m->other) {
            if (len)
                g_string_append_c(rel, '/');
            g_string_append(rel, ifs_node_name(ifs_node_child_at(n, i)));
        }
        restamp(ifs_node_child_at(n, i), rel, m);
        g_string_truncate(rel, len);
    }
}

void ifs_cache_restamp(IfsNode *fresh, const IfsCacheMtimes *mtimes)
{
    GString *rel = g_string_new(NULL);

    restamp(fresh, rel, mtimes);
    g_string_free(rel, TRUE);
}
