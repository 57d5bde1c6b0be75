/* The normalized inventory (see inventory.h). */
#include "inventory.h"

#include <string.h>

/* Longest value shown in a column: a name or a status, not a document. */
#define MAX_VALUE 512

const char inventory_header[] = "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n";

struct Inventory {
    GPtrArray *dirs; /* the kind directories the files were made from (referenced) */
    IfsNode *tsv;
    IfsNode *json;
};

/* One kind directory of one account. */
typedef struct {
    const char *kind;
    const Account *account;
    IfsNode *dir;
} Part;

/* One resource. */
typedef struct {
    const char *entry; /* its directory's name: the id, escaped */
    char *name, *status, *ip, *region;
} Row;

Inventory *inventory_new(void)
{
    Inventory *inv = g_new0(Inventory, 1);

    inv->dirs = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_node_unref);
    return inv;
}

void inventory_free(Inventory *inv)
{
    if (!inv)
        return;
    g_ptr_array_unref(inv->dirs);
    if (inv->tsv)
        ifs_node_unref(inv->tsv);
    if (inv->json)
        ifs_node_unref(inv->json);
    g_free(inv);
}

static gint compare_parts(gconstpointer pa, gconstpointer pb)
{
    const Part *a = pa, *b = pb;
    int by_kind = strcmp(a->kind, b->kind);

    return by_kind ? by_kind : strcmp(a->account->cfg->name, b->account->cfg->name);
}

static GArray *collect_parts(AccountBuild *const *builds, guint n)
{
    GArray *parts = g_array_new(FALSE, FALSE, sizeof(Part));

    for (guint i = 0; i < n; i++) {
        const Account *a = builds[i]->account;
        for (const char *const *k = a->type->kinds; *k; k++) {
            IfsNode *dir = g_hash_table_lookup(builds[i]->kind_dirs, *k);
            if (dir)
                g_array_append_val(parts, ((Part){*k, a, dir}));
        }
    }
    g_array_sort(parts, compare_parts);
    return parts;
}

static gboolean unchanged(const Inventory *inv, const GArray *parts)
{
    if (!inv->tsv || inv->dirs->len != parts->len)
        return FALSE;
    for (guint i = 0; i < parts->len; i++)
        if (g_ptr_array_index(inv->dirs, i) != g_array_index(parts, Part, i).dir)
            return FALSE;
    return TRUE;
}

static const IfsInventoryColumns *columns_of(const Account *a, const char *kind)
{
    for (const IfsInventoryColumns *c = a->type->inventory; c && c->kind; c++)
        if (strcmp(c->kind, kind) == 0)
            return c;
    return NULL;
}

/* The file at `path` ("a/b") below directory `dir`, or NULL. */
static const IfsNode *file_at(const IfsNode *dir, const char *path)
{
    char name[256];

    while (dir && dir->type == IFS_NODE_DIR) {
        const char *slash = strchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : strlen(path);

        if (len >= sizeof name)
            return NULL;
        memcpy(name, path, len);
        name[len] = '\0';
        dir = ifs_node_child(dir, name);
        if (!slash)
            return dir && dir->type == IFS_NODE_FILE ? dir : NULL;
        path = slash + 1;
    }
    return NULL;
}

/* Plain: short, valid UTF-8, no control character (C0, DEL or C1, as
 * store_one_line sees them); what almost every value is, kept as it is. */
static gboolean plain(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;

    if (len > MAX_VALUE || !g_utf8_validate(text, (gssize)len, NULL))
        return FALSE;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < len && p[i + 1] < 0xa0))
            return FALSE;
    return TRUE;
}

/* The value in file `path` of resource directory `dir`, as one line, or
 * NULL when there is no such file or it is empty (a JSON null). */
static char *column_value(const IfsNode *dir, const char *path)
{
    const IfsNode *node = path ? file_at(dir, path) : NULL;
    char *owned = NULL, *text, *line = NULL;
    const char *bytes;
    size_t len;

    if (!node)
        return NULL;
    bytes = ifs_node_bytes(node, &owned);
    len = ifs_node_size(node);
    if (len > 0 && bytes[len - 1] == '\n') /* the newline every value ends with */
        len--;
    if (len > 0 && plain(bytes, len)) {
        line = g_strndup(bytes, len);
    } else if (len > 0) {
        text = g_strndup(bytes, MIN(len, (size_t)MAX_VALUE * 4));
        line = store_one_line(text, MAX_VALUE);
        g_free(text);
    }
    g_free(owned);
    if (line && !*line) {
        g_free(line);
        line = NULL;
    }
    return line;
}

static gint compare_rows(gconstpointer pa, gconstpointer pb)
{
    const Row *a = pa, *b = pb;
    int by_name = g_strcmp0(a->name, b->name);

    return by_name ? by_name : strcmp(a->entry, b->entry);
}

static void row_clear(gpointer data)
{
    Row *r = data;

    g_free(r->name);
    g_free(r->status);
    g_free(r->ip);
    g_free(r->region);
}

static void append_json_string(GString *out, const char *text)
{
    if (!text) {
        g_string_append(out, "null");
        return;
    }
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            g_string_append_printf(out, "\\u%04x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    g_string_append_c(out, '"');
}

static void append_json_member(GString *out, const char *key, const char *value, gboolean first)
{
    g_string_append_printf(out, "%s\"%s\":", first ? "" : ",", key);
    append_json_string(out, value);
}

static void append_rows(GString *tsv, GString *json, const Part *part)
{
    const Account *a = part->account;
    const IfsInventoryColumns *cols = columns_of(a, part->kind);
    guint n = ifs_node_n_children(part->dir);
    GArray *rows = g_array_sized_new(FALSE, TRUE, sizeof(Row), n);

    g_array_set_clear_func(rows, row_clear);
    for (guint i = 0; i < n; i++) {
        const IfsNode *dir = ifs_node_child_at(part->dir, i);
        Row r = {.entry = ifs_node_name(dir)};

        if (cols) {
            r.name = column_value(dir, cols->name);
            r.status = column_value(dir, cols->status);
            r.ip = column_value(dir, cols->ip);
            r.region = column_value(dir, cols->region);
        }
        g_array_append_val(rows, r);
    }
    g_array_sort(rows, compare_rows);
    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);
        char *path = g_strjoin("/", part->kind, a->cfg->name, r->entry, NULL);
#define OR_EMPTY(s) ((s) ? (s) : "")
        g_string_append_printf(tsv, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", part->kind,
                               a->cfg->name, a->type->schema.type, r->entry, OR_EMPTY(r->name),
                               OR_EMPTY(r->status), OR_EMPTY(r->ip), OR_EMPTY(r->region), path);
#undef OR_EMPTY
        g_string_append(json, json->len > 2 ? ",\n{" : "{");
        append_json_member(json, "kind", part->kind, TRUE);
        append_json_member(json, "account", a->cfg->name, FALSE);
        append_json_member(json, "type", a->type->schema.type, FALSE);
        append_json_member(json, "id", r->entry, FALSE);
        append_json_member(json, "name", r->name, FALSE);
        append_json_member(json, "status", r->status, FALSE);
        append_json_member(json, "ip", r->ip, FALSE);
        append_json_member(json, "region", r->region, FALSE);
        append_json_member(json, "path", path, FALSE);
        g_string_append_c(json, '}');
        g_free(path);
    }
    g_array_unref(rows);
}

void inventory_files(Inventory *inv, AccountBuild *const *builds, guint n, IfsNode **tsv_out,
                     IfsNode **json_out)
{
    GArray *parts = collect_parts(builds, n);

    if (!unchanged(inv, parts)) {
        GString *tsv = g_string_new(inventory_header);
        GString *json = g_string_new("[\n");

        g_ptr_array_set_size(inv->dirs, 0);
        for (guint i = 0; i < parts->len; i++) {
            const Part *part = &g_array_index(parts, Part, i);
            append_rows(tsv, json, part);
            g_ptr_array_add(inv->dirs, ifs_node_ref(part->dir));
        }
        if (json->len > 2)
            g_string_append(json, "\n]\n");
        else
            g_string_assign(json, "[]\n");
        if (inv->tsv)
            ifs_node_unref(inv->tsv);
        if (inv->json)
            ifs_node_unref(inv->json);
        inv->tsv = ifs_node_new_file("inventory", tsv->str, tsv->len, 0);
        inv->json = ifs_node_new_file("inventory.json", json->str, json->len, 0);
        g_string_free(tsv, TRUE);
        g_string_free(json, TRUE);
    }
    g_array_unref(parts);
    *tsv_out = ifs_node_ref(inv->tsv);
    *json_out = ifs_node_ref(inv->json);
}
