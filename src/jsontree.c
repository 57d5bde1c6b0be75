/* A provider's JSON object as a resource directory (doc/SEMANTICS.md §4). Any JSON
 * must be safe here: names are escaped or skipped, nesting is capped, and
 * string values are handled by length (they may hold NUL bytes). */
#include "infrafs/jsontree.h"
#include "infrafs/jsonparse.h"

#include <string.h>

/* Containers nested deeper than this below the resource directory become a
 * file holding their compact JSON: it bounds recursion and path length. */
#define IFS_JSON_MAX_DEPTH 32

/* Keys quoted in problem lines are cut to this many bytes. */
#define PROBLEM_KEY_MAX 64

/* Element fields that name an entry of an array-of-objects directory, in
 * order of preference. */
static const char *const element_name_keys[] = {"id", "identifier", "slug", "name"};

/* ---- snake_case ------------------------------------------------------- */

static gboolean is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static gboolean is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static gboolean is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static gboolean is_separator(char c)
{
    return c == '-' || c == '_' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
        c == '\f';
}

/* Does a new word start at s[i], an uppercase letter?
 * - after a lowercase letter, a digit or a non-ASCII (UTF-8) byte: yes
 *   ("createdAt", "ipv6Addresses", "caféName");
 * - inside a run of capitals: only where the last capital starts a word of at
 *   least two lowercase letters ("HTTPServer" -> http_server). A single
 *   trailing lowercase letter belongs to the acronym, so plurals and versions
 *   stay one word: "IDs" -> ids, "URLs" -> urls, "IPv4Address" ->
 *   ipv4_address (not i_pv4_address). */
static gboolean starts_word(const char *s, size_t i)
{
    char prev;

    if (i == 0)
        return FALSE;
    prev = s[i - 1];
    if (is_lower(prev) || is_digit(prev) || (unsigned char)prev >= 0x80)
        return TRUE;
    if (is_upper(prev))
        return is_lower(s[i + 1]) && is_lower(s[i + 2]);
    return FALSE;
}

/* Rule: '-', '_' and white space each become one '_'; a '_' is inserted where
 * a word starts at a capital (see starts_word); ASCII letters are lowered;
 * every other byte (digits, dots, UTF-8) is kept as it is. */
static void snake_case_to(GString *out, const char *name)
{
    g_string_truncate(out, 0);
    for (size_t i = 0; name[i]; i++) {
        char c = name[i];

        if (is_separator(c)) {
            g_string_append_c(out, '_');
            continue;
        }
        if (is_upper(c) && starts_word(name, i) && out->len > 0 && out->str[out->len - 1] != '_')
            g_string_append_c(out, '_');
        g_string_append_c(out, g_ascii_tolower(c));
    }
}

char *ifs_snake_case(const char *name)
{
    GString *out;

    if (!name)
        return g_strdup("");
    out = g_string_sized_new(strlen(name) + 4);
    snake_case_to(out, name);
    return g_string_free(out, FALSE);
}

/* ---- scalar text ------------------------------------------------------ */

static gboolean is_container(json_object *v)
{
    return json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array);
}

/* The value as it appears on its own line: no trailing newline; "" for null.
 * Numbers keep the text json-c parsed (12.50 stays 12.50). Borrowed: valid
 * while `v` is (json-c keeps the text of numbers and containers in it). */
static const char *value_text(json_object *v, size_t *len_out)
{
    const char *s;
    size_t len;

    switch (json_object_get_type(v)) {
    case json_type_null:
        s = "";
        len = 0;
        break;
    case json_type_string:
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        break;
    case json_type_boolean:
        s = json_object_get_boolean(v) ? "true" : "false";
        len = strlen(s);
        break;
    default: /* numbers, and containers as compact JSON */
        s = json_object_to_json_string_ext(v,
                                           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        len = strlen(s);
        break;
    }
    *len_out = len;
    return s;
}

/* A file of one value ends with a newline, except for null: empty. */
static gboolean ends_in_newline(json_object *v)
{
    return !json_object_is_type(v, json_type_null);
}

/* A container passed here reads as its compact JSON, so no value is ever
 * silently lost. */
char *ifs_json_scalar_text(json_object *v, size_t *len_out)
{
    size_t len;
    const char *value = value_text(v, &len);
    gboolean newline = ends_in_newline(v);
    char *text = g_malloc(len + 2);

    memcpy(text, value, len);
    if (newline)
        text[len++] = '\n';
    text[len] = '\0';
    if (len_out)
        *len_out = len;
    return text;
}

/* An array of scalars: one element per line, null as an empty line. A string
 * holding a newline spans lines: the file shows the data as it is. */
static GString *scalar_lines(json_object *arr)
{
    size_t n = json_object_array_length(arr);
    GString *out = g_string_new(NULL);

    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *text = value_text(json_object_array_get_idx(arr, i), &len);

        g_string_append_len(out, text, (gssize)len);
        g_string_append_c(out, '\n');
    }
    return out;
}

static gboolean all_scalars(json_object *arr)
{
    size_t n = json_object_array_length(arr);

    for (size_t i = 0; i < n; i++)
        if (is_container(json_object_array_get_idx(arr, i)))
            return FALSE;
    return TRUE;
}

/* ---- building ---------------------------------------------------------- */

/* What every level of a fill shares: where problem lines go, and how many
 * fields were skipped. */
typedef struct {
    GString *problems;
    guint skipped;
    const char *const *reserved; /* top-level names that are not the API's */
    GString *snake; /* scratch for names: a fill makes millions */
    GString *name;
} FillState;

static void fill_object(IfsDirBuilder *dir, json_object *obj, FillState *st, int depth);
static void fill_array(IfsDirBuilder *dir, json_object *arr, FillState *st, int depth);

/* One line per skipped field; the key is escaped and cut, because it comes
 * from the API and the line ends up in a file meant to be read by people. */
static void skip_field(IfsDirBuilder *dir, const char *key, const char *why, FillState *st)
{
    char *cut;
    char *shown;
    const char *path = ifs_dir_builder_path(dir);

    st->skipped++;
    if (!st->problems)
        return;
    cut = g_strndup(key, PROBLEM_KEY_MAX);
    shown = g_strescape(cut, NULL);
    g_string_append_printf(st->problems, "%s%sfield \"%s%s\" skipped: %s\n", path,
                           *path ? ": " : "", shown, strlen(key) > PROBLEM_KEY_MAX ? "..." : "",
                           why);
    g_free(shown);
    g_free(cut);
}

/* Adds entry `name` of `dir` for value `v`, `depth` containers below the
 * resource. */
static void add_value(IfsDirBuilder *dir, const char *name, json_object *v, FillState *st,
                      int depth)
{
    IfsDirBuilder *sub;

    if (json_object_is_type(v, json_type_array) && all_scalars(v)) {
        GString *lines = scalar_lines(v);

        ifs_dir_builder_add_file(dir, name, lines->str, lines->len, FALSE);
        g_string_free(lines, TRUE);
        return;
    }
    if (!is_container(v) || depth >= IFS_JSON_MAX_DEPTH) {
        size_t len;
        const char *text = value_text(v, &len);

        ifs_dir_builder_add_file(dir, name, text, len, ends_in_newline(v));
        return;
    }
    sub = ifs_dir_builder_new_child(dir, name);
    if (json_object_is_type(v, json_type_object))
        fill_object(sub, v, st, depth + 1);
    else
        fill_array(sub, v, st, depth + 1);
    ifs_dir_builder_add(dir, ifs_dir_builder_finish(sub, 0));
}

/* A name infrafs itself uses at the top of a resource directory is shown
 * with its first byte escaped (operation -> %6Fperation): an API field can
 * never pose as one of our entries, whether or not that entry is there. */
static char *unreserved(char *name, const FillState *st, int depth)
{
    if (!name || depth != 0 || !st->reserved || !g_strv_contains(st->reserved, name))
        return name;
    return g_strdup_printf("%%%02X%s", (unsigned char)name[0], name + 1); /* caller frees */
}

static void fill_object(IfsDirBuilder *dir, json_object *obj, FillState *st, int depth)
{
    json_object_object_foreach(obj, key, value)
    {
        char *name = NULL;
        gboolean owned = FALSE; /* st->name is reused below this call */

        snake_case_to(st->snake, key);
        if (ifs_name_escape_to(st->name, st->snake->str, st->snake->len)) {
            name = unreserved(st->name->str, st, depth);
            owned = name != st->name->str;
        }
        if (!name)
            skip_field(dir, key, "name is empty or longer than 255 bytes", st);
        else if (ifs_dir_builder_has(dir, name))
            skip_field(dir, key, "its file name is already taken", st);
        else
            add_value(dir, name, value, st, depth);
        if (owned)
            g_free(name);
    }
}

/* An element's entry name from its id / identifier / slug / name (the first
 * one present as a string or number), escaped; NULL if it has none usable. */
static char *element_name(json_object *elem)
{
    if (!json_object_is_type(elem, json_type_object))
        return NULL;
    for (size_t k = 0; k < G_N_ELEMENTS(element_name_keys); k++) {
        json_object *v = NULL;
        json_type t;
        size_t len;
        const char *text;

        if (!json_object_object_get_ex(elem, element_name_keys[k], &v))
            continue;
        t = json_object_get_type(v);
        if (t != json_type_string && t != json_type_int && t != json_type_double)
            continue;
        text = value_text(v, &len);
        return ifs_name_escape(text, len);
    }
    return NULL;
}

/* Entries are named by element_name(); an element without a usable, unique
 * one is named by its index instead. */
static void fill_array(IfsDirBuilder *dir, json_object *arr, FillState *st, int depth)
{
    size_t n = json_object_array_length(arr);

    for (size_t i = 0; i < n; i++) {
        json_object *elem = json_object_array_get_idx(arr, i);
        char *name = element_name(elem);

        if (!name || ifs_dir_builder_has(dir, name)) {
            g_free(name);
            name = g_strdup_printf("%zu", i);
        }
        if (ifs_dir_builder_has(dir, name))
            skip_field(dir, name, "its index is already taken by a named element", st);
        else
            add_value(dir, name, elem, st, depth);
        g_free(name);
    }
}

guint ifs_json_fill_dir(IfsDirBuilder *dir, json_object *obj, const char *const *reserved,
                        GString *problems)
{
    FillState st = {problems, 0, reserved, NULL, NULL};

    if (!dir)
        return 0;
    st.snake = g_string_sized_new(64);
    st.name = g_string_sized_new(64);
    if (json_object_is_type(obj, json_type_object))
        fill_object(dir, obj, &st, 0);
    else if (json_object_is_type(obj, json_type_array))
        fill_array(dir, obj, &st, 0);
    g_string_free(st.snake, TRUE);
    g_string_free(st.name, TRUE);
    return st.skipped;
}

/* Two-space indent and "key": value, as jq and most tools print JSON;
 * slashes unescaped because URLs are common values. */
char *ifs_json_pretty(json_object *obj, size_t *len_out)
{
    const char *s = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = g_strconcat(s, "\n", NULL);

    if (len_out)
        *len_out = strlen(out);
    return out;
}

/* json-c's pretty form (PRETTY | SPACED) of a container at depth d: its
 * opening bracket is followed by a newline; each member by a newline after
 * its comma and 2 * (d + 1) spaces of indent; each object member's colon by
 * a space; the closing bracket, by a newline if it had members, and 2 * d
 * spaces. Counting those is a tenth of the cost of printing. */
size_t ifs_json_pretty_size(const char *compact, size_t len)
{
    /* members so far of each open container; deeper text is not ours */
    guint members[IFS_JSON_SCAN_MAX_DEPTH + 1];
    guint depth = 0;
    size_t size = len + 1; /* and the final newline */

    for (size_t i = 0; i < len; i++) {
        switch (compact[i]) {
        case '"':
            for (i++; i < len && compact[i] != '"'; i++)
                if (compact[i] == '\\')
                    i++;
            if (i >= len)
                return 0;
            break;
        case '{':
        case '[':
            if (depth == G_N_ELEMENTS(members))
                return 0;
            size += 1;
            members[depth++] = 0;
            if (i + 1 < len && compact[i + 1] != '}' && compact[i + 1] != ']') {
                members[depth - 1] = 1;
                size += 2 * depth;
            }
            break;
        case ',':
            if (depth == 0)
                return 0;
            members[depth - 1]++;
            size += 1 + 2 * depth;
            break;
        case ':':
            size += 1;
            break;
        case '}':
        case ']':
            if (depth == 0)
                return 0;
            depth--;
            size += (members[depth] > 0 ? 1 : 0) + 2 * depth;
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            return 0;
        default:
            break;
        }
    }
    return depth == 0 ? size : 0;
}
