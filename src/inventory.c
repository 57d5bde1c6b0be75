/* The normalized inventory (see inventory.h). */
#include "inventory.h"

#include <string.h>

/* Longest value shown in a column: a name or a status, not a document. */
#define MAX_VALUE 512

const char inventory_header[] = "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n";

struct Inventory {
    GPtrArray *dirs; /* the kind directories the entries were made from (referenced) */
    IfsNode *entries[INVENTORY_ENTRIES];
    /* Per account name, as of the last call: */
    GHashTable *had_data; /* a set: the names whose rows were real data */
    GHashTable *states; /* -> its state */
    /* Path -> the values of its events_fields (char**), for the resources
     * of accounts that list some: what the inventory does not show. */
    GHashTable *extra_before;
};

/* One kind directory of one account. */
typedef struct {
    const char *kind;
    const Account *account;
    IfsNode *dir;
} Part;

/* One resource. */
typedef struct {
    const Part *part;
    const char *entry; /* its directory's name: the id, escaped */
    char *name, *status, *ip, *region;
    char *path; /* kind/account/entry */
    char **extra; /* the values of its account's events_fields ("" for none), or NULL */
    char **addresses; /* what its table's `addresses` finds, or NULL */
} Row;

Inventory *inventory_new(void)
{
    Inventory *inv = g_new0(Inventory, 1);

    inv->dirs = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_node_unref);
    inv->had_data = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    inv->states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    inv->extra_before =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    return inv;
}

static void drop_entries(Inventory *inv)
{
    for (guint i = 0; i < INVENTORY_ENTRIES; i++) {
        if (inv->entries[i])
            ifs_node_unref(inv->entries[i]);
        inv->entries[i] = NULL;
    }
}

void inventory_free(Inventory *inv)
{
    if (!inv)
        return;
    g_ptr_array_unref(inv->dirs);
    drop_entries(inv);
    g_hash_table_destroy(inv->had_data);
    g_hash_table_destroy(inv->states);
    g_hash_table_destroy(inv->extra_before);
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
    if (!inv->entries[0] || inv->dirs->len != parts->len)
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

/* The values of every file below `dir` that `pattern` matches, where a
 * component "*" stands for every entry (see IfsInventoryColumns). */
static void collect_pattern(const IfsNode *dir, const char *pattern, GPtrArray *out)
{
    const char *slash = strchr(pattern, '/');
    char *first = slash ? g_strndup(pattern, (gsize)(slash - pattern)) : g_strdup(pattern);

    if (dir->type != IFS_NODE_DIR) {
        /* nothing below a file */
    } else if (!slash) {
        char *v = column_value(dir, first);
        if (v)
            g_ptr_array_add(out, v);
    } else if (strcmp(first, "*") == 0) {
        for (guint i = 0; i < ifs_node_n_children(dir); i++)
            collect_pattern(ifs_node_child_at(dir, i), slash + 1, out);
    } else {
        const IfsNode *child = ifs_node_child(dir, first);
        if (child)
            collect_pattern(child, slash + 1, out);
    }
    g_free(first);
}

/* The same as a NULL-terminated array, or NULL when none. */
static char **pattern_values(const IfsNode *dir, const char *pattern)
{
    GPtrArray *out;

    if (!pattern)
        return NULL;
    out = g_ptr_array_new();
    collect_pattern(dir, pattern, out);
    if (out->len == 0) {
        g_ptr_array_unref(out);
        return NULL;
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
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
    g_free(r->path);
    g_strfreev(r->extra);
    g_strfreev(r->addresses);
}

/* The rows of one kind directory, sorted by name, into `rows` (empty). */
static void collect_rows(GArray *rows, const Part *part)
{
    const IfsInventoryColumns *cols = columns_of(part->account, part->kind);
    guint n = ifs_node_n_children(part->dir);

    for (guint i = 0; i < n; i++) {
        const IfsNode *dir = ifs_node_child_at(part->dir, i);
        Row r = {.part = part, .entry = ifs_node_name(dir)};

        if (cols) {
            r.name = column_value(dir, cols->name);
            r.status = column_value(dir, cols->status);
            r.ip = column_value(dir, cols->ip);
            r.region = column_value(dir, cols->region);
            r.addresses = pattern_values(dir, cols->addresses);
        }
        r.path = g_strjoin("/", part->kind, part->account->cfg->name, r.entry, NULL);
        if (part->account->cfg->events_fields) {
            char **fields = part->account->cfg->events_fields;
            r.extra = g_new0(char *, g_strv_length(fields) + 1);
            for (guint f = 0; fields[f]; f++) {
                r.extra[f] = column_value(dir, fields[f]);
                if (!r.extra[f])
                    r.extra[f] = g_strdup("");
            }
        }
        g_array_append_val(rows, r);
    }
    g_array_sort(rows, compare_rows);
}

static IfsNode *tsv_file(const GArray *rows)
{
    GString *tsv = g_string_new(inventory_header);
    IfsNode *node;

    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);
        const Account *a = r->part->account;
#define OR_EMPTY(s) ((s) ? (s) : "")
        g_string_append_printf(tsv, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->part->kind,
                               a->cfg->name, a->type->schema.type, r->entry, OR_EMPTY(r->name),
                               OR_EMPTY(r->status), OR_EMPTY(r->ip), OR_EMPTY(r->region), r->path);
#undef OR_EMPTY
    }
    node = ifs_node_new_file("inventory", tsv->str, tsv->len, 0);
    g_string_free(tsv, TRUE);
    return node;
}

static void names_of_row(const Row *r, GPtrArray *out)
{
    if (r->name)
        g_ptr_array_add(out, r->name);
}

/* Its ip, then every other address it reports, each once. */
static void addresses_of_row(const Row *r, GPtrArray *out)
{
    if (r->ip)
        g_ptr_array_add(out, r->ip);
    for (char **a = r->addresses; a && *a; a++)
        if (!g_ptr_array_find_with_equal_func(out, *a, g_str_equal, NULL))
            g_ptr_array_add(out, *a);
}

static void count(GHashTable *counts, char *key /* taken */)
{
    g_hash_table_replace(counts, key,
                         GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(counts, key)) + 1));
}

static guint counted(GHashTable *counts, const char *key)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(counts, key));
}

/* The link for value `v` of row `r`, named as links_dir says. */
static void add_link(IfsDirBuilder *b, const char *dir_name, const Row *r, const char *v,
                     GHashTable *plain, GHashTable *by_account)
{
    const char *account = r->part->account->cfg->name;
    char *label = g_strconcat(v, "@", account, NULL);
    char *name = ifs_name_escape(v, strlen(v));
    char *path, *target;

    if (name && counted(plain, v) > 1) {
        char *longer = counted(by_account, label) > 1
            ? g_strconcat(name, "@", account, "@", r->entry, NULL)
            : g_strconcat(name, "@", account, NULL);
        g_free(name);
        name = longer;
    }
    if (name && strlen(name) <= 255) { /* else longer than a name may be: no link */
        path = ifs_path_join(dir_name, name);
        target = g_strconcat("../", r->path, NULL);
        ifs_dir_builder_add(b, ifs_node_new_symlink(path, target));
        g_free(target);
        g_free(path);
    }
    g_free(name);
    g_free(label);
}

/* `dir_name`/<value>: a relative link to each resource's directory, for
 * every value `values_of` gives, escaped as names are. A value several
 * resources share is told apart with @ACCOUNT, and where that is still
 * shared, @ACCOUNT@ID (the id as its directory is named). */
static IfsNode *links_dir(const GArray *rows, const char *dir_name,
                          void (*values_of)(const Row *r, GPtrArray *out))
{
    GHashTable *plain = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *by_account = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    IfsDirBuilder *b = ifs_dir_builder_new(dir_name);
    GPtrArray *values = g_ptr_array_new();

    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);
        g_ptr_array_set_size(values, 0);
        values_of(r, values);
        for (guint j = 0; j < values->len; j++) {
            const char *v = g_ptr_array_index(values, j);
            count(plain, g_strdup(v));
            count(by_account, g_strconcat(v, "@", r->part->account->cfg->name, NULL));
        }
    }
    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);
        g_ptr_array_set_size(values, 0);
        values_of(r, values);
        for (guint j = 0; j < values->len; j++)
            add_link(b, dir_name, r, g_ptr_array_index(values, j), plain, by_account);
    }
    g_ptr_array_unref(values);
    g_hash_table_destroy(plain);
    g_hash_table_destroy(by_account);
    /* One block for the directory and its links: a link alone would cost
     * an allocation and a reference count of its own. */
    return ifs_node_pack(ifs_dir_builder_finish(b, 0));
}

/* ---- what changed ----------------------------------------------------- */

/* The columns of inventory_header. */
enum { COL_ACCOUNT = 1, COL_NAME = 4, COL_STATUS, COL_IP, COL_REGION, COL_PATH, N_COLS };

/* A row of the inventory before, its columns pointing into a copy of it. */
typedef struct {
    char *col[N_COLS];
    gboolean matched;
} OldRow;

/* The rows of the inventory file `tsv`, in its order; their texts point
 * into *copy. */
static GArray *old_rows(const IfsNode *tsv, char **copy)
{
    GArray *rows = g_array_new(FALSE, TRUE, sizeof(OldRow));
    char *line, *next;

    *copy = g_strndup(ifs_node_data(tsv), ifs_node_size(tsv));
    line = strchr(*copy, '\n'); /* after the header */
    for (line = line ? line + 1 : NULL; line && *line; line = next) {
        OldRow r = {0};
        char *p = line;
        int c = 0;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        for (r.col[c++] = p; c < N_COLS && (p = strchr(p, '\t')); r.col[c++] = p)
            *p++ = '\0';
        if (c == N_COLS)
            g_array_append_val(rows, r);
    }
    return rows;
}

static void compare_column(EventBatch *batch, const char *path, const char *change, const char *old,
                           const char *fresh)
{
    if (g_strcmp0(old, fresh ? fresh : "") != 0)
        events_batch_add(batch, path, change, old, fresh);
}

/* Accounts (by name) whose rows were real data before and are now. */
static GHashTable *comparable_accounts(const Inventory *inv, AccountBuild *const *builds, guint n)
{
    GHashTable *set = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < n; i++)
        if (builds[i]->has_data &&
            g_hash_table_contains(inv->had_data, builds[i]->account->cfg->name))
            g_hash_table_add(set, (gpointer)builds[i]->account->cfg->name);
    return set;
}

static void compare_rows_with(const Inventory *inv, const GArray *rows, AccountBuild *const *builds,
                              guint n, EventBatch *batch)
{
    GHashTable *comparable = comparable_accounts(inv, builds, n);
    char *copy;
    GArray *before = old_rows(inv->entries[0], &copy);
    GHashTable *by_path = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < before->len; i++) {
        OldRow *o = &g_array_index(before, OldRow, i);
        g_hash_table_insert(by_path, o->col[COL_PATH], o);
    }
    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);
        OldRow *o = g_hash_table_lookup(by_path, r->path);

        if (o)
            o->matched = TRUE;
        if (!g_hash_table_contains(comparable, r->part->account->cfg->name))
            continue;
        if (!o) {
            events_batch_add(batch, r->path, "appeared", NULL, r->name);
            continue;
        }
        compare_column(batch, r->path, "name", o->col[COL_NAME], r->name);
        compare_column(batch, r->path, "status", o->col[COL_STATUS], r->status);
        compare_column(batch, r->path, "ip", o->col[COL_IP], r->ip);
        compare_column(batch, r->path, "region", o->col[COL_REGION], r->region);
        if (r->extra) {
            char **fields = r->part->account->cfg->events_fields;
            char **was = g_hash_table_lookup(inv->extra_before, r->path);
            for (guint f = 0; was && fields[f] && was[f]; f++)
                compare_column(batch, r->path, fields[f], was[f], r->extra[f]);
        }
    }
    for (guint i = 0; i < before->len; i++) {
        const OldRow *o = &g_array_index(before, OldRow, i);
        if (!o->matched && g_hash_table_contains(comparable, o->col[COL_ACCOUNT]))
            events_batch_add(batch, o->col[COL_PATH], "disappeared", o->col[COL_NAME], NULL);
    }
    g_hash_table_destroy(by_path);
    g_array_unref(before);
    g_free(copy);
    g_hash_table_destroy(comparable);
}

/* An account's state that changed since the last call, with the reason
 * when it is not ok. The state a mount starts with, until a refresh ran,
 * is no state of the account's. */
static void compare_accounts(Inventory *inv, AccountBuild *const *builds, guint n,
                             EventBatch *batch)
{
    for (guint i = 0; i < n; i++) {
        const AccountBuild *ab = builds[i];
        const char *name = ab->account->cfg->name;
        const char *state = ab->state ? ab->state : "";
        const char *before = g_hash_table_lookup(inv->states, name);

        if (!ab->refreshed)
            continue;
        if (batch && before && strcmp(before, state) != 0) {
            char *path = g_strconcat("providers/", name, NULL);
            char *now = ab->reason && strcmp(state, "ok") != 0
                ? g_strdup_printf("%s (%s)", state, ab->reason)
                : g_strdup(state);
            events_batch_add(batch, path, "state", before, now);
            g_free(now);
            g_free(path);
        }
        g_hash_table_replace(inv->states, g_strdup(name), g_strdup(state));
    }
}

static void note_data(Inventory *inv, AccountBuild *const *builds, guint n)
{
    for (guint i = 0; i < n; i++) {
        const char *name = builds[i]->account->cfg->name;
        if (builds[i]->has_data)
            g_hash_table_add(inv->had_data, g_strdup(name));
        else
            g_hash_table_remove(inv->had_data, name);
    }
}

void inventory_entries(Inventory *inv, AccountBuild *const *builds, guint n, Events *events,
                       IfsNode *out[INVENTORY_ENTRIES])
{
    GArray *parts = collect_parts(builds, n);
    EventBatch *batch = events ? events_batch_new() : NULL;

    if (!unchanged(inv, parts)) {
        GArray *rows = g_array_new(FALSE, TRUE, sizeof(Row));

        g_array_set_clear_func(rows, row_clear);
        g_ptr_array_set_size(inv->dirs, 0);
        for (guint i = 0; i < parts->len; i++) {
            GArray *part_rows = g_array_new(FALSE, TRUE, sizeof(Row));
            const Part *part = &g_array_index(parts, Part, i);

            collect_rows(part_rows, part);
            g_array_append_vals(rows, part_rows->data, part_rows->len);
            g_array_unref(part_rows); /* the rows' strings moved to `rows` */
            g_ptr_array_add(inv->dirs, ifs_node_ref(part->dir));
        }
        if (batch && inv->entries[0])
            compare_rows_with(inv, rows, builds, n, batch);
        drop_entries(inv);
        inv->entries[0] = tsv_file(rows);
        inv->entries[1] = inventory_json_file(inv->entries[0], rows->len);
        inv->entries[2] = links_dir(rows, "by-name", names_of_row);
        inv->entries[3] = links_dir(rows, "by-ip", addresses_of_row);
        g_hash_table_remove_all(inv->extra_before);
        for (guint i = 0; i < rows->len; i++) {
            Row *r = &g_array_index(rows, Row, i);
            if (r->extra) {
                g_hash_table_insert(inv->extra_before, r->path, r->extra);
                r->path = NULL; /* moved */
                r->extra = NULL;
            }
        }
        g_array_unref(rows);
    }
    compare_accounts(inv, builds, n, batch);
    note_data(inv, builds, n);
    if (batch)
        events_batch_commit(events, batch);
    g_array_unref(parts);
    for (guint i = 0; i < INVENTORY_ENTRIES; i++)
        out[i] = ifs_node_ref(inv->entries[i]);
}

gboolean inventory_last_entries(Inventory *inv, IfsNode *out[INVENTORY_ENTRIES])
{
    if (!inv->entries[0])
        return FALSE;
    for (guint i = 0; i < INVENTORY_ENTRIES; i++)
        out[i] = ifs_node_ref(inv->entries[i]);
    return TRUE;
}
