/* Bounded JSON parsing (include/infrafs/jsonparse.h): a scan weighs what
 * json-c would allocate for the text, then json-c parses what passed. */
#include "infrafs/jsonparse.h"

#include <string.h>

/* What json-c 0.16 allocates (glibc, x86-64), measured with mallinfo2()
 * around json_tokener_parse_ex() on generated documents of 160,000
 * elements (tests/unit/test_jsonparse.c compares the weights with the real
 * figures on every run):
 *
 *   element                 heap per element   text per element  heap/text
 *   {} in an array          792 + 8 slot       3 bytes "{},"          264
 *   [] in an array          144 + 8            3                       51
 *   1 in an array            64 + 8            2                       36
 *   1.5 (keeps its text)     96 + 8            4                       26
 *   true                     64 + 8            5                       14
 *   null                      0 + 8            5                        2
 *   "" (72 + its length)     80 + 8            3                       29
 *   {"a":1} in an array     888                8                      111
 *
 * An object is a struct and a hash table of 16 entries (40 bytes each),
 * doubled whenever two thirds are used: the table is what makes "{}" dear.
 * A member costs its name (malloc'd: 32 bytes for up to 23 characters), and
 * each doubling of the table as many entries as it had. An array slot is
 * 8 bytes, doubled as the array grows (json-c shrinks it at the end). The
 * tokener collects each string in a buffer that doubles as it grows: up to
 * twice the longest string. The weights round these up: the weight is at
 * least json-c's figure (1.03 to 1.3 times it; 2.5 for null).
 *
 * Weight per byte of real answers: 14.4 for a HostUp VPS list, 10.4 for
 * HostAtlas servers, 12.5 for Dokploy projects, 7.4 for DeployHQ resources;
 * the densest, a compact list of DeployHQ regions, 29.5. The bound of 48
 * per byte leaves 1.6 to 3 times that, and refuses documents of "{}" (272),
 * {"a":{}} (183), {"a":1} (114), [[]] (64), [] (53) after a few KiB.
 * Documents of scalars ("1," 40.5, "" 32, true 17) weigh what real ones do:
 * the limits' max_memory caps those. */
#define W_OBJECT 800u
#define W_ARRAY 144u
#define W_SLOT 16u /* every value inside an array */
#define W_NAME 32u /* a member's name, plus its length */
#define W_STRING 80u /* plus its length */
#define W_NUMBER 64u /* integer, true, false; plus the length */
#define W_DOUBLE_TEXT 32u /* a double also keeps its text */
#define W_NULL 0u /* json-c's null is a NULL pointer */
#define TOKENER_BUFFER 2u /* times the longest string */
/* The tokener itself: a struct, a stack entry per level, a buffer. */
#define W_TOKENER(depth) (1024u + 32u * (guint64)(depth))

const IfsJsonLimits ifs_json_answer_limits = {
    .max_depth = JSON_TOKENER_DEFAULT_DEPTH,
    .max_memory = IFS_JSON_ANSWER_MAX_MEMORY,
    .per_byte = IFS_JSON_MEMORY_PER_BYTE,
};

enum {
    ST_VALUE, /* between tokens */
    ST_STRING,
    ST_ESCAPE, /* after a backslash in a string */
    ST_SCALAR, /* in a number or literal */
    ST_END, /* json-c stops before here: nothing more is weighed */
};

void ifs_json_scan_init(IfsJsonScan *scan, const IfsJsonLimits *limits)
{
    memset(scan, 0, sizeof *scan);
    scan->limits = limits ? *limits : ifs_json_answer_limits;
    if (scan->limits.max_depth < 1 || scan->limits.max_depth > IFS_JSON_SCAN_MAX_DEPTH) {
        g_critical("JSON depth limit %d out of range", scan->limits.max_depth);
        scan->limits.max_depth = JSON_TOKENER_DEFAULT_DEPTH;
    }
    if (scan->limits.per_byte == 0)
        scan->limits.per_byte = IFS_JSON_MEMORY_PER_BYTE;
    scan->started = TRUE;
    scan->state = ST_VALUE;
    scan->tree = W_TOKENER(scan->limits.max_depth);
}

static guint64 current_weight(const IfsJsonScan *s)
{
    return s->tree + TOKENER_BUFFER * MAX(s->longest, s->string_len);
}

static guint64 allowed_at(const IfsJsonScan *s)
{
    guint64 per_byte = s->limits.per_byte;

    /* Saturating: per_byte may be "no bound" (G_MAXUINT64) for a test. */
    if (s->offset && per_byte > (G_MAXUINT64 - IFS_JSON_MEMORY_FLOOR) / s->offset)
        return G_MAXUINT64;
    return IFS_JSON_MEMORY_FLOOR + per_byte * s->offset;
}

/* The bound, checked where the weight grows faster than the text: at
 * every value, and as strings grow. FALSE (and refused) when exceeded. */
static gboolean within_bound(IfsJsonScan *s)
{
    guint64 weight = current_weight(s);
    guint64 allowed = allowed_at(s);

    if (s->limits.max_memory && s->limits.max_memory < allowed)
        allowed = s->limits.max_memory;
    if (weight <= allowed)
        return TRUE;
    s->refused = TRUE;
    s->weight = weight;
    s->allowed = allowed;
    return FALSE;
}

static gboolean top_is_object(const IfsJsonScan *s)
{
    return s->open > 0 && (s->in_object >> (s->open - 1)) & 1u;
}

/* A value begins (its first byte already counted in offset). FALSE when
 * the bound refuses it; sets ST_END where json-c would stop instead. */
static gboolean value_starts(IfsJsonScan *s, guint64 weight)
{
    /* json-c reads one root value, and none at its depth limit. */
    if (s->open == 0 && s->elements > 0) {
        s->state = ST_END;
        return TRUE;
    }
    if (s->open >= s->limits.max_depth) {
        s->state = ST_END;
        return TRUE;
    }
    s->elements++;
    s->tree += weight + (s->open > 0 && !top_is_object(s) ? W_SLOT : 0);
    return within_bound(s);
}

static gboolean open_container(IfsJsonScan *s, gboolean object)
{
    if (!value_starts(s, object ? W_OBJECT : W_ARRAY) || s->state == ST_END)
        return !s->refused;
    if (object)
        s->in_object |= (guint64)1 << s->open;
    else
        s->in_object &= ~((guint64)1 << s->open);
    s->members[s->open] = 0;
    s->table[s->open] = JSON_OBJECT_DEF_HASH_ENTRIES;
    s->open++;
    s->expect_key = object;
    return TRUE;
}

static void close_container(IfsJsonScan *s, gboolean object)
{
    if (s->open == 0 || top_is_object(s) != object) {
        s->state = ST_END; /* json-c stops at a mismatched bracket */
        return;
    }
    s->open--;
    s->expect_key = FALSE;
    if (s->open == 0)
        s->state = ST_END; /* the root value is complete */
}

/* A string or scalar at the root is the whole document. */
static void token_ends(IfsJsonScan *s)
{
    s->state = s->open == 0 ? ST_END : ST_VALUE;
}

static gboolean is_delimiter(char c)
{
    return c == ',' || c == ':' || c == ']' || c == '}' || c == '[' || c == '{' || c == '"' ||
        c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

/* One byte between tokens. */
static gboolean scan_value_byte(IfsJsonScan *s, char c)
{
    switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        return TRUE;
    case '{':
        return open_container(s, TRUE);
    case '[':
        return open_container(s, FALSE);
    case '}':
        close_container(s, TRUE);
        return TRUE;
    case ']':
        close_container(s, FALSE);
        return TRUE;
    case ',':
        if (s->open == 0)
            s->state = ST_END;
        s->expect_key = top_is_object(s);
        return TRUE;
    case ':':
        if (!top_is_object(s))
            s->state = ST_END;
        return TRUE;
    case '"':
    case '\'':
        s->string_len = 0;
        s->quote = c;
        /* json-c's strict mode still takes 'name' for a member's name,
         * but no other single-quoted string. */
        if (s->expect_key && top_is_object(s)) {
            /* A member's name; json-c doubles the object's hash table
             * when two thirds of it are used. */
            int level = s->open - 1;

            s->expect_key = FALSE;
            s->tree += W_NAME;
            if (s->members[level] >= s->table[level] * LH_LOAD_FACTOR &&
                s->table[level] <= G_MAXUINT32 / 2) {
                s->tree += (guint64)s->table[level] * sizeof(struct lh_entry);
                s->table[level] *= 2;
            }
            s->members[level]++;
            s->state = ST_STRING;
            return within_bound(s);
        }
        if (c == '\'') {
            s->state = ST_END;
            return TRUE;
        }
        if (!value_starts(s, W_STRING))
            return FALSE;
        if (s->state != ST_END)
            s->state = ST_STRING;
        return TRUE;
    case '\0':
        s->state = ST_END; /* json-c ends its input at a NUL */
        return TRUE;
    default:
        /* Only strict JSON gets past json-c: n is null, t/f a boolean. */
        if (!value_starts(s, (c == 'n' ? W_NULL : W_NUMBER) + 1))
            return FALSE;
        if (s->state != ST_END) {
            s->state = ST_SCALAR;
            s->number = c == '-' || g_ascii_isdigit(c);
        }
        return TRUE;
    }
}

/* The rest of a string in data[*i..len): stops after its closing quote,
 * at a backslash, or at the end of the data. */
static gboolean scan_string(IfsJsonScan *s, const char *data, size_t len, size_t *i)
{
    size_t start = *i;
    size_t j = start;

    while (j < len && data[j] != s->quote && data[j] != '\\' && data[j] != '\0')
        j++;
    s->string_len += j - start;
    s->tree += j - start;
    if (j < len) {
        if (data[j] == s->quote) {
            s->longest = MAX(s->longest, s->string_len);
            s->string_len = 0;
            token_ends(s);
        } else if (data[j] == '\\') {
            s->state = ST_ESCAPE;
        } else {
            s->state = ST_END;
        }
        j++;
    }
    s->offset += j - start;
    *i = j;
    return within_bound(s);
}

gboolean ifs_json_scan_feed(IfsJsonScan *scan, const char *data, size_t len)
{
    size_t i = 0;

    g_return_val_if_fail(scan && scan->started, FALSE);
    while (i < len && !scan->refused && scan->state != ST_END) {
        char c = data[i];

        switch (scan->state) {
        case ST_STRING:
            if (!scan_string(scan, data, len, &i))
                return FALSE;
            continue;
        case ST_ESCAPE:
            scan->state = c ? ST_STRING : ST_END;
            scan->string_len++;
            scan->tree++;
            break;
        case ST_SCALAR:
            if (is_delimiter(c)) {
                token_ends(scan); /* the delimiter is read between tokens */
                continue;
            }
            scan->tree++;
            if (scan->number == 1 && (c == '.' || c == 'e' || c == 'E')) {
                scan->number = 2;
                scan->tree += W_DOUBLE_TEXT;
                if (!within_bound(scan))
                    return FALSE;
            }
            break;
        default: /* ST_VALUE */
            scan->offset++;
            i++;
            if (!scan_value_byte(scan, c))
                return FALSE;
            continue;
        }
        scan->offset++;
        i++;
    }
    return !scan->refused;
}

gboolean ifs_json_scan_refused(const IfsJsonScan *scan)
{
    return scan->refused;
}

guint64 ifs_json_scan_weight(const IfsJsonScan *scan)
{
    return scan->refused ? scan->weight : current_weight(scan);
}

guint64 ifs_json_scan_elements(const IfsJsonScan *scan)
{
    return scan->elements;
}

/* 4100000 -> "4,100,000" */
static char *grouped(guint64 n)
{
    char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, n);
    size_t len = strlen(digits);
    GString *out = g_string_new(NULL);

    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            g_string_append_c(out, ',');
        g_string_append_c(out, digits[i]);
    }
    g_free(digits);
    return g_string_free(out, FALSE);
}

/* 4800 -> "4.7 KiB" (g_format_size separates with a no-break space, which
 * has no place in a one-line file). */
static char *size_text(guint64 bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double value = (double)bytes;
    int unit = -1;

    while (value >= 1024 && unit < 3) {
        value /= 1024;
        unit++;
    }
    if (unit < 0)
        return g_strdup_printf("%" G_GUINT64_FORMAT " bytes", bytes);
    return g_strdup_printf("%.1f %s", value, units[unit]);
}

char *ifs_json_scan_describe(const IfsJsonScan *scan)
{
    char *memory, *text, *count, *floor, *out;

    g_return_val_if_fail(scan && scan->refused, NULL);
    memory = size_text(scan->allowed);
    text = size_text(scan->offset);
    count = grouped(scan->elements);
    floor = size_text(IFS_JSON_MEMORY_FLOOR);
    if (scan->limits.max_memory && scan->allowed == scan->limits.max_memory)
        out = g_strdup_printf("its JSON would take more than %s of memory, the most "
                              "infrafs allows for one document (%s of text, %s elements)",
                              memory, text, count);
    else
        out = g_strdup_printf("its JSON would take more than %s of memory for %s of text "
                              "(%s elements; infrafs allows %" G_GUINT64_FORMAT
                              " bytes per byte, plus %s)",
                              memory, text, count, scan->limits.per_byte, floor);
    g_free(memory);
    g_free(text);
    g_free(count);
    g_free(floor);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

static json_object *fail(IfsJsonResult *result, IfsJsonStatus status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static json_object *fail(IfsJsonResult *result, IfsJsonStatus status, const char *fmt, ...)
{
    va_list ap;

    result->status = status;
    va_start(ap, fmt);
    g_vsnprintf(result->why, sizeof result->why, fmt, ap);
    va_end(ap);
    return NULL;
}

static gboolean only_space(const char *text, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return FALSE;
    return TRUE;
}

json_object *ifs_json_parse(const char *text, size_t len, const IfsJsonLimits *limits,
                            IfsJsonResult *result)
{
    IfsJsonResult ignored;
    IfsJsonScan scan;
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    const char *nul;
    size_t end;

    if (!result)
        result = &ignored;
    memset(result, 0, sizeof *result);
    if (!text)
        text = "";
    /* json-c counts in int, and ends its input at a NUL. */
    if (len >= G_MAXINT)
        return fail(result, IFS_JSON_INVALID, "%zu bytes of text, more than json-c reads", len);
    nul = memchr(text, '\0', len);
    if (nul)
        return fail(result, IFS_JSON_INVALID, "a NUL byte at offset %td", nul - text);
    ifs_json_scan_init(&scan, limits);
    if (!ifs_json_scan_feed(&scan, text, len)) {
        char *why = ifs_json_scan_describe(&scan);

        fail(result, IFS_JSON_TOO_COSTLY, "%s", why);
        g_free(why);
        return NULL;
    }
    tok = json_tokener_new_ex(scan.limits.max_depth);
    if (!tok)
        return fail(result, IFS_JSON_INVALID, "out of memory");
    /* RFC 8259 only (no comments, single quotes, NaN, trailing commas):
     * what the scan weighs. Data after the value is reported below. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* A NUL tells json-c the input ends, so that a bare number such as
         * "42" completes instead of waiting for more. */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    } else {
        end = json_tokener_get_parse_end(tok);
    }
    json_tokener_free(tok);
    if (jerr == json_tokener_error_depth)
        return fail(result, IFS_JSON_TOO_DEEP, "JSON nested more than %d levels deep",
                    scan.limits.max_depth);
    if (jerr != json_tokener_success)
        return fail(result, IFS_JSON_INVALID, "%s", json_tokener_error_desc(jerr));
    if (!only_space(text, end, len)) {
        json_object_put(obj);
        return fail(result, IFS_JSON_INVALID, "unexpected data after the JSON value");
    }
    result->status = obj ? IFS_JSON_OK : IFS_JSON_NULL;
    return obj;
}

const char *ifs_json_compact_view(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

char *ifs_json_compact(json_object *obj, size_t *len)
{
    const char *text = ifs_json_compact_view(obj, len);

    return g_memdup2(text, *len + 1);
}

/* A new tokener allocates its whole parse stack, which cost more than
 * parsing a small object. */
static GPrivate thread_tokener = G_PRIVATE_INIT((GDestroyNotify)json_tokener_free);

json_object *ifs_json_parse_compact(const char *text, size_t len)
{
    json_tokener *tok;

    if (!text)
        return NULL;
    tok = g_private_get(&thread_tokener);
    if (!tok) {
        tok = json_tokener_new_ex(IFS_JSON_SCAN_MAX_DEPTH);
        g_private_set(&thread_tokener, tok);
    }
    json_tokener_reset(tok);
    return json_tokener_parse_ex(tok, text, (int)len);
}

void ifs_json_append_string(GString *out, const char *text)
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
