/* The persistent cache: one file per account holding the resources of its
 * last good refresh and the mtime of every file the tree showed for them.
 * Written with g_file_set_contents_full (temporary file, fsync, rename), so
 * a crash leaves either the old or the new copy.
 *
 * Format version 2 (what saves write) lays out each resource's own sealed
 * text behind length prefixes, so that loading copies slices instead of
 * parsing JSON. All integers are little-endian; a "str" is a u32 length
 * and that many bytes, with no terminator and no escaping.
 *
 *   off  0  char[16] "infrafs-cache", NUL-padded (the format's name)
 *   off 16  u32      format version, 2
 *   off 20  u64      checksum of every byte from offset 28 to the end
 *   off 28  u64      length of the whole file
 *   off 36  i64      last_refresh (epoch seconds)
 *   off 44  u32      number of records
 *   off 48  str account, str type, str url
 *   then one record per resource:
 *           str kind, str id,
 *           str object (its compact JSON text, as sealed),
 *           str extra files (compact JSON text; length 0: none, as the
 *               text of an object is never empty),
 *           i64 base mtime, u32 number of exceptions,
 *           and per exception: str relative path, i64 mtime.
 *
 * Version 1 files (one JSON document) are still read (persist_v1.c). */
#include "infrafs/persist.h"
#include "persist_private.h"

#include "infrafs/jsonparse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_NAME_LEN 16
#define CACHE_VERSION 2
/* Where the fields of the fixed header are, and where the checksum starts. */
#define OFF_VERSION 16
#define OFF_CHECKSUM 20
#define OFF_LENGTH 28
#define OFF_LAST_REFRESH 36
#define OFF_COUNT 44
#define OFF_STRINGS 48
/* The smallest record: four empty strs, base mtime, no exceptions. Bounds
 * the record count a file of a given size can claim. */
#define MIN_RECORD_BYTES (4 * 4 + 8 + 4)
#define MIN_EXCEPTION_BYTES (4 + 8)
/* A cache file is ours and bounded by what we write; anything larger is
 * not one of ours. Below 4 GiB, so every u32 length of a file within it
 * is exact. */
#define MAX_CACHE_BYTES ((gsize)1024 * 1024 * 1024)
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

/* The name stays ACCOUNT.json although version 2 is not JSON: a file an
 * upgrade finds there is loaded and then replaced in place, so no stale
 * copy under an old name is ever left for a downgrade to serve, and the
 * path documented and scripted so far stays right. */
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

/* ---- the checksum ---------------------------------------------------------- */

#define CHECKSUM_BASIS 0xcbf29ce484222325ULL /* FNV-1a's 64-bit offset basis */
#define CHECKSUM_PRIME 0x100000001b3ULL      /* and prime */

static inline guint64 checksum_step(guint64 h, guint64 word)
{
    /* FNV-1a on 8-byte words, rotated after each multiply: a product only
     * carries low bits upward, so without the rotation two flips of the
     * same top bit would cancel out. Each step is a bijection of `h`, so
     * any change confined to one word always changes the result. */
    h = (h ^ word) * CHECKSUM_PRIME;
    return (h << 29) | (h >> 35);
}

/* About 4 GB/s: the 73 MB of 100,000 resources take some 20 ms. */
static guint64 checksum(const guchar *p, gsize len)
{
    guint64 h = CHECKSUM_BASIS, word;
    gsize i;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&word, p + i, 8);
        h = checksum_step(h, GUINT64_FROM_LE(word));
    }
    word = 0;
    memcpy(&word, p + i, len - i);
    h = checksum_step(h, GUINT64_FROM_LE(word));
    return checksum_step(h, (guint64)len);
}

/* ---- saving ---------------------------------------------------------------- */

void persist_seal_v2(guchar *text, gsize len)
{
    guint64 le;

    if (len < OFF_COUNT)
        return;
    le = GUINT64_TO_LE((guint64)len);
    memcpy(text + OFF_LENGTH, &le, sizeof le);
    le = GUINT64_TO_LE(checksum(text + OFF_LENGTH, len - OFF_LENGTH));
    memcpy(text + OFF_CHECKSUM, &le, sizeof le);
}

static void put_u32(GString *out, guint32 v)
{
    v = GUINT32_TO_LE(v);
    g_string_append_len(out, (const char *)&v, sizeof v);
}

static void put_u64(GString *out, guint64 v)
{
    v = GUINT64_TO_LE(v);
    g_string_append_len(out, (const char *)&v, sizeof v);
}

static void patch_u32(GString *out, gsize at, guint32 v)
{
    v = GUINT32_TO_LE(v);
    memcpy(out->str + at, &v, sizeof v);
}

/* A length above 4 GiB is cut here, but it makes the file larger than
 * MAX_CACHE_BYTES, which the save then refuses. */
static void put_str(GString *out, const char *s, gsize len)
{
    put_u32(out, (guint32)len);
    g_string_append_len(out, s, (gssize)len);
}

/* Controls and wait files are ours and rebuilt on every start: their
 * mtimes are neither saved nor restored. */
static gboolean has_saved_mtime(const IfsNode *n)
{
    return n->type != IFS_NODE_CONTROL && n->type != IFS_NODE_WAIT;
}

typedef struct {
    gint64 t;
    guint n;
} MtimeCount;

/* How many of a resource's files have each mtime: a few distinct values. */
static void count_mtimes(const IfsNode *n, GArray *counts)
{
    guint i;

    if (!has_saved_mtime(n))
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

/* (path, mtime) for every node below `n` whose mtime is not `base`; `path`
 * holds n's relative path and is restored on return. */
static void put_other_mtimes(const IfsNode *n, GString *path, gint64 base, GString *out,
                             guint32 *count)
{
    if (!has_saved_mtime(n))
        return;
    if ((gint64)n->mtime != base) {
        put_str(out, path->str, path->len);
        put_u64(out, (guint64)(gint64)n->mtime);
        (*count)++;
    }
    for (guint c = 0; n->type == IFS_NODE_DIR && c < ifs_node_n_children(n); c++) {
        gsize len = path->len;

        if (len)
            g_string_append_c(path, '/');
        g_string_append(path, ifs_node_name(ifs_node_child_at(n, c)));
        put_other_mtimes(ifs_node_child_at(n, c), path, base, out, count);
        g_string_truncate(path, len);
    }
}

/* Most files of a resource share one mtime (when it was first seen), so
 * that one is the base and only the others are listed. */
static void put_mtimes(GString *out, const IfsNode *node, GArray *counts, GString *path)
{
    gint64 base = 0;
    guint best = 0;
    guint32 count = 0;
    gsize count_at;

    g_array_set_size(counts, 0);
    count_mtimes(node, counts);
    for (guint i = 0; i < counts->len; i++) {
        MtimeCount c = g_array_index(counts, MtimeCount, i);
        if (c.n > best) {
            best = c.n;
            base = c.t;
        }
    }
    put_u64(out, (guint64)base);
    count_at = out->len;
    put_u32(out, 0);
    g_string_truncate(path, 0);
    put_other_mtimes(node, path, base, out, &count);
    patch_u32(out, count_at, count);
}

/* One record; FALSE (nothing written) for a resource whose object is
 * missing or not a JSON object, which loading would refuse. Extra files
 * that are not an object are left out, as loading would refuse them too.
 * Resources are sealed when the store takes them, so their text is
 * spliced in as it is. */
static gboolean put_record(GString *out, const IfsCacheItem *item, GArray *counts,
                           GString *path)
{
    const IfsResource *r = item->res;
    const char *text = r->text, *extra = r->extra_text;
    size_t text_len = r->text_len, extra_len = r->extra_len;
    char *own_text = NULL, *own_extra = NULL;

    if (!text && r->object)
        text = own_text = ifs_json_compact(r->object, &text_len);
    if (!extra && r->extra_files)
        extra = own_extra = ifs_json_compact(r->extra_files, &extra_len);
    if (!r->kind || !r->id || !text || text_len == 0 || text[0] != '{') {
        g_free(own_text);
        g_free(own_extra);
        return FALSE;
    }
    if (extra && (extra_len == 0 || extra[0] != '{'))
        extra = NULL;
    put_str(out, r->kind, strlen(r->kind));
    put_str(out, r->id, strlen(r->id));
    put_str(out, text, text_len);
    put_str(out, extra ? extra : "", extra ? extra_len : 0);
    put_mtimes(out, item->node, counts, path);
    g_free(own_text);
    g_free(own_extra);
    return TRUE;
}

/* The whole file in memory, its checksum filled in. */
static GString *encode(const IfsAccountConfig *cfg, gint64 last_refresh, GPtrArray *items)
{
    GArray *counts = g_array_new(FALSE, FALSE, sizeof(MtimeCount));
    GString *rel = g_string_new(NULL); /* a node's path, while walking */
    gsize estimate = 4096;
    guint32 records = 0;
    char name[CACHE_NAME_LEN] = CACHE_FORMAT;
    GString *out;

    /* Sized once: growing a string of tens of MB by doubling copies it
     * again and again. */
    for (guint i = 0; i < items->len; i++) {
        const IfsResource *r = ((IfsCacheItem *)g_ptr_array_index(items, i))->res;
        estimate += r->text_len + r->extra_len + 256;
    }
    out = g_string_sized_new(estimate);
    g_string_append_len(out, name, CACHE_NAME_LEN);
    put_u32(out, CACHE_VERSION);
    put_u64(out, 0); /* checksum and length: known at the end */
    put_u64(out, 0);
    put_u64(out, (guint64)last_refresh);
    put_u32(out, 0); /* records */
    put_str(out, cfg->name, strlen(cfg->name));
    put_str(out, cfg->type, strlen(cfg->type));
    put_str(out, cfg->url, strlen(cfg->url));
    for (guint i = 0; i < items->len; i++)
        if (put_record(out, g_ptr_array_index(items, i), counts, rel))
            records++;
    patch_u32(out, OFF_COUNT, records);
    persist_seal_v2((guchar *)out->str, out->len);
    g_string_free(rel, TRUE);
    g_array_unref(counts);
    return out;
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

/* Each resource's own compact text is spliced in: no tree of the whole
 * account is built, so a save costs little more memory than the file it
 * writes. */
gboolean ifs_cache_save(const char *path, const IfsAccountConfig *cfg, gint64 last_refresh,
                        GPtrArray *items, IfsError **err)
{
    GString *out = encode(cfg, last_refresh, items);
    char *dir = g_path_get_dirname(path);
    GError *gerr = NULL;
    gboolean ok;

    if (out->len > MAX_CACHE_BYTES) {
        ifs_error_propagate(err, ifs_error_new(EFBIG, 0, NULL,
            "account '%s': cannot save its data to %s: %" G_GSIZE_FORMAT " MiB is more "
            "than a cache file may hold (%" G_GSIZE_FORMAT " MiB); the previous copy is "
            "kept; lower max_resources to keep a copy on disk", cfg->name, path,
            out->len >> 20, MAX_CACHE_BYTES >> 20));
        ok = FALSE;
    } else {
        ok = make_private_dir(dir, cfg->name, err);
    }
    if (ok)
        remove_stale_temporaries(dir, path);
    ok = ok && g_file_set_contents_full(path, out->str, (gssize)out->len,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, &gerr);
    if (!ok && gerr) {
        ifs_error_propagate(err, ifs_error_new(EIO, 0, NULL,
            "account '%s': cannot save its data to %s: %s; the previous copy is kept",
            cfg->name, path, gerr->message));
        g_error_free(gerr);
    }
    g_string_free(out, TRUE);
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
    data->mtimes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)mtimes_free);
    return data;
}

IfsError *persist_foreign(const char *path, const IfsAccountConfig *cfg, const char *what)
{
    return ifs_error_new(EINVAL, 0, NULL,
        "account '%s': ignoring the cache file %s: %s; it will be replaced after the "
        "next successful refresh", cfg->name, path, what);
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

static IfsCacheData *load_v2(const char *path, const IfsAccountConfig *cfg,
                             const guchar *text, gsize len, IfsError **err)
{
    Reader rd = {text + OFF_LENGTH, text + len, NULL};
    guint32 version, records;
    guint64 stated_len, stated_sum;
    const char *account, *type, *url;
    gsize account_len, type_len, url_len;
    IfsCacheData *data;
    char *why;

    if (len < OFF_COUNT + 4) {
        ifs_error_propagate(err, persist_foreign(path, cfg, "it is truncated (shorter than its "
                                                    "header)"));
        return NULL;
    }
    memcpy(&version, text + OFF_VERSION, sizeof version);
    version = GUINT32_FROM_LE(version);
    if (version != CACHE_VERSION) {
        why = g_strdup_printf("it is an infrafs cache of format version %u, which this "
                              "infrafs does not read", version);
        ifs_error_propagate(err, persist_foreign(path, cfg, why));
        g_free(why);
        return NULL;
    }
    memcpy(&stated_sum, text + OFF_CHECKSUM, sizeof stated_sum);
    stated_len = get_u64(&rd);
    if (stated_len != len) {
        why = g_strdup_printf("it is truncated or damaged (%" G_GSIZE_FORMAT " bytes, its "
                              "header says %" G_GUINT64_FORMAT ")", len, stated_len);
        ifs_error_propagate(err, persist_foreign(path, cfg, why));
        g_free(why);
        return NULL;
    }
    if (GUINT64_FROM_LE(stated_sum) != checksum(text + OFF_LENGTH, len - OFF_LENGTH)) {
        ifs_error_propagate(err, persist_foreign(path, cfg, "it is damaged (its checksum does not "
                                                    "match its content)"));
        return NULL;
    }
    data = persist_cache_data_new();
    data->last_refresh = (gint64)get_u64(&rd);
    records = get_u32(&rd);
    account = get_str(&rd, &account_len);
    type = get_str(&rd, &type_len);
    url = get_str(&rd, &url_len);
    if (!rd.why && (!str_is(account, account_len, cfg->name) ||
                    !str_is(type, type_len, cfg->type) || !str_is(url, url_len, cfg->url))) {
        ifs_cache_data_free(data);
        ifs_error_propagate(err, persist_foreign(path, cfg, "it was saved for another account, "
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
        ifs_error_propagate(err, persist_foreign(path, cfg, "it is larger than any cache infrafs writes"));
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
        ifs_error_propagate(err, persist_foreign(path, cfg, "it is larger than any cache infrafs writes"));
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

    if (!has_saved_mtime(n))
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
