/* /inventory.json (see inventory.h), rendered from /inventory when read. */
#include "inventory.h"

#include <string.h>

#include "infrafs/jsonparse.h"

/* The JSON is the TSV's rows in other clothes: keeping it as text would
 * double the inventory's memory, so it is rendered from the TSV, and only
 * the piece a READ asks for, starting from the nearest of the rows whose
 * offsets are kept (every JSON_STRIDE-th). */
#define JSON_STRIDE 64

typedef struct {
    size_t tsv, json; /* where a row starts in each */
} Mark;

typedef struct {
    gatomicrefcount ref;
    IfsNode *tsv; /* the inventory file, referenced */
    GArray *marks; /* Mark of rows 0, JSON_STRIDE, 2 * JSON_STRIDE, ... */
    guint rows;
    size_t size; /* of the JSON */
} JsonView;

static const char *const json_keys[] = {"kind",   "account", "type",   "id",  "name",
                                        "status", "ip",      "region", "path"};

/* Row `index` of `rows` rows, whose TSV line is `line` (without its
 * newline, `len` bytes), as it stands in the JSON: the object, then ",\n",
 * or "\n]\n" after the last. Empty columns are null. */
static void append_json_row(GString *out, const char *line, size_t len, guint index, guint rows)
{
    const char *p = line, *end = line + len;

    g_string_append_c(out, '{');
    for (gsize k = 0; k < G_N_ELEMENTS(json_keys); k++) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *stop = tab ? tab : end;
        char *value = stop > p ? g_strndup(p, (gsize)(stop - p)) : NULL;

        g_string_append_printf(out, "%s\"%s\":", k ? "," : "", json_keys[k]);
        ifs_json_append_string(out, value);
        g_free(value);
        p = tab ? tab + 1 : end;
    }
    g_string_append(out, index + 1 < rows ? "},\n" : "}\n]\n");
}

/* The JSON from offset `json_at` of the row starting at `tsv_at`, copied
 * where it meets [off, off + len). */
static void render_rows(const JsonView *v, size_t tsv_at, size_t json_at, guint index, size_t off,
                        size_t len, char *out)
{
    const char *tsv = ifs_node_data(v->tsv);
    size_t tsv_size = ifs_node_size(v->tsv);
    GString *row = g_string_new(NULL);

    while (json_at < off + len && index < v->rows && tsv_at < tsv_size) {
        const char *nl = memchr(tsv + tsv_at, '\n', tsv_size - tsv_at);
        size_t line_len = nl ? (size_t)(nl - (tsv + tsv_at)) : tsv_size - tsv_at;
        size_t from, to;

        g_string_truncate(row, 0);
        append_json_row(row, tsv + tsv_at, line_len, index, v->rows);
        from = MAX(off, json_at);
        to = MIN(off + len, json_at + row->len);
        if (from < to)
            memcpy(out + (from - off), row->str + (from - json_at), to - from);
        json_at += row->len;
        tsv_at += line_len + 1;
        index++;
    }
    g_string_free(row, TRUE);
}

static void json_render_range(const void *src, size_t off, size_t len, char *out)
{
    const JsonView *v = src;
    static const char empty[] = "[]\n", start[] = "[\n";
    guint lo = 0, hi;

    if (v->rows == 0) {
        memcpy(out, empty + off, len);
        return;
    }
    if (off < 2) { /* "[\n" */
        size_t n = MIN(len, 2 - off);
        memcpy(out, start + off, n);
        out += n;
        off += n;
        len -= n;
    }
    if (len == 0)
        return;
    /* The last mark at or before `off`. */
    hi = v->marks->len;
    while (hi - lo > 1) {
        guint mid = (lo + hi) / 2;
        if (g_array_index(v->marks, Mark, mid).json <= off)
            lo = mid;
        else
            hi = mid;
    }
    render_rows(v, g_array_index(v->marks, Mark, lo).tsv, g_array_index(v->marks, Mark, lo).json,
                lo * JSON_STRIDE, off, len, out);
}

static char *json_render(const void *src, size_t *len)
{
    const JsonView *v = src;
    char *text = g_malloc(v->size + 1);

    json_render_range(v, 0, v->size, text);
    text[v->size] = '\0';
    *len = v->size;
    return text;
}

static gboolean json_same(const void *a, const void *b)
{
    const JsonView *x = a, *y = b;

    return x->tsv == y->tsv || ifs_node_same_content(x->tsv, y->tsv);
}

static void *json_retain(void *src)
{
    g_atomic_ref_count_inc(&((JsonView *)src)->ref);
    return src;
}

static void json_release(void *src)
{
    JsonView *v = src;

    if (!g_atomic_ref_count_dec(&v->ref))
        return;
    ifs_node_unref(v->tsv);
    g_array_unref(v->marks);
    g_free(v);
}

static const IfsRenderer json_view_renderer = {
    json_render, json_same, json_release, json_retain, json_render_range,
};

/* inventory.json over the inventory file `tsv` of `rows` rows: its marks
 * and exact size measured by rendering it once, a row at a time. */
IfsNode *inventory_json_file(IfsNode *tsv, guint rows)
{
    JsonView *v = g_new0(JsonView, 1);
    const char *text = ifs_node_data(tsv);
    size_t size = ifs_node_size(tsv);
    const char *line = memchr(text, '\n', size); /* after the header */
    size_t tsv_at = line ? (size_t)(line + 1 - text) : size;
    size_t json_at = 2; /* "[\n" */
    GString *row = g_string_new(NULL);

    g_atomic_ref_count_init(&v->ref);
    v->tsv = ifs_node_ref(tsv);
    v->marks = g_array_new(FALSE, FALSE, sizeof(Mark));
    v->rows = rows;
    for (guint i = 0; i < rows && tsv_at < size; i++) {
        const char *nl = memchr(text + tsv_at, '\n', size - tsv_at);
        size_t line_len = nl ? (size_t)(nl - (text + tsv_at)) : size - tsv_at;

        if (i % JSON_STRIDE == 0)
            g_array_append_val(v->marks, ((Mark){tsv_at, json_at}));
        g_string_truncate(row, 0);
        append_json_row(row, text + tsv_at, line_len, i, rows);
        json_at += row->len;
        tsv_at += line_len + 1;
    }
    g_string_free(row, TRUE);
    v->size = rows ? json_at : 3; /* "[]\n" */
    return ifs_node_new_rendered("inventory.json", &json_view_renderer, v, v->size, 0);
}
