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
 * Loading is in persist_load.c; version 1 files (one JSON document) are
 * still read (persist_v1.c). */
#include "infrafs/persist.h"
#include "persist_private.h"

#include "infrafs/jsonparse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
#define CHECKSUM_PRIME 0x100000001b3ULL /* and prime */

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
guint64 persist_checksum(const guchar *p, gsize len)
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
    le = GUINT64_TO_LE(persist_checksum(text + OFF_LENGTH, len - OFF_LENGTH));
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

typedef struct {
    gint64 t;
    guint n;
} MtimeCount;

/* How many of a resource's files have each mtime: a few distinct values. */
static void count_mtimes(const IfsNode *n, GArray *counts)
{
    guint i;

    if (!persist_has_saved_mtime(n))
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
    if (!persist_has_saved_mtime(n))
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
static gboolean put_record(GString *out, const IfsCacheItem *item, GArray *counts, GString *path)
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
        ifs_error_propagate(
            err,
            ifs_error_new(e, 0, NULL,
                          "account '%s': cannot create the cache directory %s: %s; its data is not "
                          "kept on disk; set cache_dir= to a writable directory",
                          account, dir, g_strerror(e)));
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
        ifs_error_propagate(
            err,
            ifs_error_new(
                EFBIG, 0, NULL,
                "account '%s': cannot save its data to %s: %" G_GSIZE_FORMAT " MiB is more "
                "than a cache file may hold (%" G_GSIZE_FORMAT " MiB); the previous copy is "
                "kept; lower max_resources to keep a copy on disk",
                cfg->name, path, out->len >> 20, MAX_CACHE_BYTES >> 20));
        ok = FALSE;
    } else {
        ok = make_private_dir(dir, cfg->name, err);
    }
    if (ok)
        remove_stale_temporaries(dir, path);
    ok = ok &&
        g_file_set_contents_full(path, out->str, (gssize)out->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                 &gerr);
    if (!ok && gerr) {
        ifs_error_propagate(
            err,
            ifs_error_new(EIO, 0, NULL,
                          "account '%s': cannot save its data to %s: %s; the previous copy is kept",
                          cfg->name, path, gerr->message));
        g_error_free(gerr);
    }
    g_string_free(out, TRUE);
    g_free(dir);
    return ok;
}
