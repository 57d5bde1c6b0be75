/* The bounded JSON parser (src/jsonparse.c): documents that would cost
 * json-c far more memory than their size are refused before json-c builds
 * anything, whatever pieces they arrive in; real documents pass; and the
 * weights are never below what json-c really allocates (measured here with
 * mallinfo2 on every run). */
#include "infrafs/jsonparse.h"

#include <malloc.h>
#include <string.h>

#define MIB (1024 * 1024)

/* "[" elem "," elem ... "]" of at least `bytes` bytes. */
static GString *repeated(const char *elem, size_t bytes)
{
    GString *s = g_string_new("[");

    g_string_append(s, elem);
    while (s->len + strlen(elem) + 2 <= bytes) {
        g_string_append_c(s, ',');
        g_string_append(s, elem);
    }
    g_string_append_c(s, ']');
    return s;
}

static json_object *parse(const char *text, size_t len, IfsJsonResult *result)
{
    return ifs_json_parse(text, len, NULL, result);
}

static void assert_parses(const char *text)
{
    IfsJsonResult r;
    json_object *obj = parse(text, strlen(text), &r);

    if (r.status != IFS_JSON_OK)
        g_test_message("%s: %s", text, r.why);
    g_assert_cmpint(r.status, ==, IFS_JSON_OK);
    g_assert_nonnull(obj);
    g_assert_cmpstr(r.why, ==, "");
    json_object_put(obj);
}

static void assert_refused(const char *text, size_t len, IfsJsonStatus status, const char *why_part)
{
    IfsJsonResult r;

    g_assert_null(parse(text, len, &r));
    g_test_message("refused: %s", r.why);
    g_assert_cmpint(r.status, ==, status);
    g_assert_nonnull(strstr(r.why, why_part));
}

/* ---- bombs ------------------------------------------------------------------- */

/* Issue 10: 12 MiB of "{}" took 3.7 GB. Refused, and by the scan: the
 * text is handed over in pieces as a transfer would, and the refusal comes
 * within the first few KiB. */
static void test_object_bomb_is_refused_within_kilobytes(void)
{
    GString *bomb = repeated("{}", 12 * MIB);
    IfsJsonScan scan;
    size_t fed = 0;
    char *why;

    ifs_json_scan_init(&scan, NULL);
    while (fed < bomb->len && ifs_json_scan_feed(&scan, bomb->str + fed, 1024))
        fed += 1024;
    g_assert_true(ifs_json_scan_refused(&scan));
    g_assert_cmpuint(fed, <, 8 * 1024);
    why = ifs_json_scan_describe(&scan);
    g_test_message("refused after %zu bytes: %s", fed + 1024, why);
    g_assert_true(g_str_has_prefix(why,
                                   "its JSON would take more than 1.2 MiB of memory "
                                   "for 4.6 KiB of text (1,559 elements; infrafs "
                                   "allows 48 bytes per byte, plus 1.0 MiB)"));
    g_free(why);
    assert_refused(bomb->str, bomb->len, IFS_JSON_TOO_COSTLY, "its JSON would take more than");
    g_string_free(bomb, TRUE);
}

static void test_other_bombs_are_refused(void)
{
    static const char *const elements[] = {
        "{}", "{\"a\":{}}", "{\"a\":1}", "[[]]", "[]", "{\"\":[]}", "[{}]",
    };

    for (guint i = 0; i < G_N_ELEMENTS(elements); i++) {
        GString *bomb = repeated(elements[i], 4 * MIB);
        GString *wrapped = g_string_new("{\"data\":");

        g_string_append_len(wrapped, bomb->str, (gssize)bomb->len);
        g_string_append_c(wrapped, '}');
        assert_refused(bomb->str, bomb->len, IFS_JSON_TOO_COSTLY, "of memory for");
        assert_refused(wrapped->str, wrapped->len, IFS_JSON_TOO_COSTLY, "of memory for");
        g_string_free(bomb, TRUE);
        g_string_free(wrapped, TRUE);
    }
}

/* Scalars cost json-c 15 to 36 bytes per byte, within the bound per byte
 * (real documents are made of them): the cap over a whole answer stops a
 * large document of them, which gzip makes cheap to send. */
static void test_scalar_bomb_is_stopped_by_the_answer_cap(void)
{
    GString *bomb = repeated("1", 12 * MIB);
    GString *small = repeated("1", MIB);
    IfsJsonLimits capped = {.max_depth = JSON_TOKENER_DEFAULT_DEPTH, .max_memory = 16 * MIB};
    IfsJsonLimits uncapped = {.max_depth = JSON_TOKENER_DEFAULT_DEPTH, .max_memory = 0};
    IfsJsonResult r;
    json_object *obj;

    assert_refused(bomb->str, bomb->len, IFS_JSON_TOO_COSTLY,
                   "would take more than 256.0 MiB of memory, the most infrafs allows "
                   "for one document (");
    g_assert_null(ifs_json_parse(small->str, small->len, &capped, &r));
    g_assert_cmpint(r.status, ==, IFS_JSON_TOO_COSTLY);
    g_assert_true(g_str_has_prefix(r.why,
                                   "its JSON would take more than 16.0 MiB of memory, "
                                   "the most infrafs allows for one document ("));
    /* Without the cap the bound per byte lets it through. */
    obj = ifs_json_parse(small->str, small->len, &uncapped, &r);
    g_assert_cmpint(r.status, ==, IFS_JSON_OK);
    g_assert_cmpuint(json_object_array_length(obj), ==, (small->len - 1) / 2);
    json_object_put(obj);
    g_string_free(bomb, TRUE);
    g_string_free(small, TRUE);
}

/* The verdict is the same whatever pieces the text comes in: collect_body
 * (pieces as the network delivers them) and ifs_json_parse (the whole)
 * agree. */
static void test_verdict_does_not_depend_on_the_pieces(void)
{
    GString *text = g_string_new("{\"data\":[");
    IfsJsonScan whole, bytes;
    char *a, *b;

    /* Real-looking at first, then a bomb. */
    for (int i = 0; i < 200; i++)
        g_string_append_printf(text, "{\"id\":\"vps_%d\",\"name\":\"web-%d\",\"tags\":[]},", i, i);
    for (int i = 0; i < 100000; i++)
        g_string_append(text, "{},");
    g_string_append(text, "{}]}");
    ifs_json_scan_init(&whole, NULL);
    ifs_json_scan_init(&bytes, NULL);
    g_assert_false(ifs_json_scan_feed(&whole, text->str, text->len));
    for (size_t i = 0; i < text->len && ifs_json_scan_feed(&bytes, text->str + i, 1); i++)
        ;
    a = ifs_json_scan_describe(&whole);
    b = ifs_json_scan_describe(&bytes);
    g_assert_cmpstr(a, ==, b);
    g_assert_cmpuint(ifs_json_scan_elements(&whole), ==, ifs_json_scan_elements(&bytes));
    g_assert_cmpuint(ifs_json_scan_weight(&whole), ==, ifs_json_scan_weight(&bytes));
    g_assert_false(ifs_json_scan_feed(&whole, "{}", 2)); /* and it stays refused */
    g_free(a);
    g_free(b);
    g_string_free(text, TRUE);
}

/* ---- what json-c refuses, said as before ---------------------------------------- */

static GString *nested(int levels)
{
    GString *s = g_string_new(NULL);

    for (int i = 0; i < levels; i++)
        g_string_append_c(s, '[');
    for (int i = 0; i < levels; i++)
        g_string_append_c(s, ']');
    return s;
}

static void test_nesting_depth(void)
{
    GString *fine = nested(32);
    GString *deep = nested(33);
    GString *very = nested(200000);
    GString *cache = nested(36);
    IfsJsonLimits deeper = {.max_depth = 36, .max_memory = 0};
    IfsJsonResult r;
    json_object *obj;

    assert_parses(fine->str);
    assert_refused(deep->str, deep->len, IFS_JSON_TOO_DEEP, "JSON nested more than 32 levels deep");
    /* 200,000 levels weigh nothing past the limit json-c stops at. */
    assert_refused(very->str, very->len, IFS_JSON_TOO_DEEP, "JSON nested more than 32 levels deep");
    obj = ifs_json_parse(cache->str, cache->len, &deeper, &r);
    g_assert_cmpint(r.status, ==, IFS_JSON_OK);
    json_object_put(obj);
    g_string_free(fine, TRUE);
    g_string_free(deep, TRUE);
    g_string_free(very, TRUE);
    g_string_free(cache, TRUE);
}

static void test_trailing_data(void)
{
    assert_parses(" {\"id\":\"vps_1\"}\n\t\r ");
    assert_parses("42");
    assert_parses("\"text\"");
    assert_refused("{} {}", 5, IFS_JSON_INVALID, "unexpected data after the JSON value");
    assert_refused("42 x", 4, IFS_JSON_INVALID, "unexpected data after the JSON value");
    assert_refused("[1]]", 4, IFS_JSON_INVALID, "unexpected data after the JSON value");
}

static void test_nul_bytes(void)
{
    assert_refused("{}\0", 3, IFS_JSON_INVALID, "a NUL byte at offset 2");
    assert_refused("{\"a\":\"x\0y\"}", 11, IFS_JSON_INVALID, "a NUL byte at offset 7");
    assert_refused("\0{}", 3, IFS_JSON_INVALID, "a NUL byte at offset 0");
}

static void test_truncated_input(void)
{
    static const char *const cut[] = {
        "{\"id\": ", "[1,2", "\"abc", "{\"a\"", "[{}, {", "tru", "-", "",
    };

    for (guint i = 0; i < G_N_ELEMENTS(cut); i++) {
        IfsJsonResult r;

        g_assert_null(parse(cut[i], strlen(cut[i]), &r));
        g_assert_cmpint(r.status, ==, IFS_JSON_INVALID);
        g_assert_cmpstr(r.why, !=, "");
    }
}

/* json-c's strict mode: no comments, single-quoted strings, trailing
 * commas, leading zeros or TRUE... */
static void test_strict_json(void)
{
    static const char *const lax[] = {
        "['a']",    "{\"a\":'b'}", "[1,]",  "{\"a\":1,}", "/* c */ {}",
        "[1] // c", "[TRUE]",      "[nan]", "[01]",       "{\"a\" 1}",
    };

    for (guint i = 0; i < G_N_ELEMENTS(lax); i++) {
        IfsJsonResult r;

        g_assert_null(parse(lax[i], strlen(lax[i]), &r));
        g_assert_cmpint(r.status, ==, IFS_JSON_INVALID);
    }
    /* ...but it still reads 'names', NaN and Infinity: so does the scan. */
    assert_parses("{'a':1}");
    assert_parses("[NaN,Infinity,-Infinity]");
}

/* A scan that lost track of json-c could be led to stop weighing while
 * json-c goes on building: a single-quoted name holding a bracket must not
 * end the document for the scan. */
static void test_single_quoted_names_are_followed(void)
{
    GString *bomb = repeated("{}", 4 * MIB);
    GString *text = g_string_new("{'}]\\\"':1,'x':");

    g_string_append_len(text, bomb->str, (gssize)bomb->len);
    g_string_append_c(text, '}');
    assert_refused(text->str, text->len, IFS_JSON_TOO_COSTLY, "of memory for");
    g_string_free(bomb, TRUE);
    g_string_free(text, TRUE);
}

static void test_null_is_not_an_error(void)
{
    IfsJsonResult r;

    g_assert_null(parse(" null ", 6, &r));
    g_assert_cmpint(r.status, ==, IFS_JSON_NULL);
    g_assert_cmpstr(r.why, ==, "");
}

/* ---- real documents pass ---------------------------------------------------------- */

/* One VPS as the HostUp API lists it (the simulator's first). */
static const char hostup_vps[] =
    "{\"id\":\"vps_01kk39t84er3nf84mf3gbt1dw2\",\"name\":\"web-01\",\"hostname\":"
    "\"web-01.example.net\",\"primaryIp\":\"185.221.176.255\",\"serviceStatus\":\"active\","
    "\"powerState\":\"running\",\"operatingSystem\":{\"displayName\":\"Rocky Linux 9\","
    "\"family\":\"rocky\",\"version\":\"9\",\"variant\":\"minimal\"},\"billing\":{\"amount\":"
    "649.0,\"currencyCode\":\"SEK\",\"billingCycle\":\"monthly\",\"isPayg\":false,"
    "\"periodYears\":null},\"resources\":{\"cpuCores\":8,\"memoryGb\":16,\"storageGb\":320},"
    "\"bandwidth\":{\"usedGb\":2472.4,\"limitGb\":null},\"tags\":[],\"pinned\":false,"
    "\"location\":{\"datacenter\":\"sto1\",\"city\":\"Stockholm\",\"countryCode\":\"SE\"},"
    "\"createdAt\":\"2022-01-10T18:11:11.396Z\"}";

/* `count` copies of `item` as {"data":[...]} (compact, as APIs send it). */
static GString *list_of(const char *item, int count)
{
    GString *s = g_string_new("{\"data\":[");

    for (int i = 0; i < count; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", item);
    g_string_append(s, "],\"hasMore\":false,\"nextCursor\":null}");
    return s;
}

static double weight_per_byte(const GString *text)
{
    IfsJsonScan scan;
    IfsJsonLimits unbounded = {JSON_TOKENER_DEFAULT_DEPTH, 0, G_MAXUINT64};

    ifs_json_scan_init(&scan, &unbounded);
    g_assert_true(ifs_json_scan_feed(&scan, text->str, text->len));
    return (double)ifs_json_scan_weight(&scan) / (double)text->len;
}

static void test_real_documents_pass(void)
{
    static const char *const items[] = {
        hostup_vps,
        /* DeployHQ's compact regions: its densest answer */
        "{\"slug\":\"nyc1\",\"name\":\"New York 1\"}",
        /* HostAtlas's services of a server */
        "{\"name\":\"nginx\",\"version\":\"1.24.0\",\"status\":\"running\"}",
        /* ids and numbers only */
        "{\"id\":\"a1b2c3d4-e5f6-7890-abcd-ef1234567890\",\"cpu\":2,\"ram\":2048,\"up\":true}",
    };

    for (guint i = 0; i < G_N_ELEMENTS(items); i++) {
        GString *text = list_of(items[i], (int)(4 * MIB / strlen(items[i])));
        IfsJsonResult r;
        json_object *obj = parse(text->str, text->len, &r);
        double ratio = weight_per_byte(text);

        g_test_message("%.1f bytes of memory per byte: 4 MiB of %.40s...", ratio, items[i]);
        g_assert_cmpint(r.status, ==, IFS_JSON_OK);
        g_assert_nonnull(obj);
        /* With room to spare: real JSON is far below the bound. */
        g_assert_cmpfloat(ratio, <, IFS_JSON_MEMORY_PER_BYTE / 1.5);
        json_object_put(obj);
        g_string_free(text, TRUE);
    }
}

/* 60 MiB of one string is under the 64 MiB body cap and costs json-c three
 * bytes per byte: read. */
static void test_one_large_string_passes(void)
{
    GString *text = g_string_new("{\"data\":[],\"padding\":\"");
    IfsJsonResult r;
    json_object *obj;

    while (text->len < 60 * MIB)
        g_string_append(text, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    g_string_append(text, "\"}");
    obj = parse(text->str, text->len, &r);
    g_assert_cmpint(r.status, ==, IFS_JSON_OK);
    json_object_put(obj);
    g_string_free(text, TRUE);
}

/* ---- the weights against json-c's real figures ------------------------------------- */

static gsize heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();

    return m.uordblks + m.hblkhd;
}

/* Whether mallinfo2 sees this build's allocations (not under ASan). */
static gboolean heap_is_measurable(void)
{
    gsize before = heap_in_use();
    void *block = g_malloc(MIB);
    gboolean seen;

    memset(block, 1, MIB);
    seen = heap_in_use() >= before + MIB;
    g_free(block);
    return seen;
}

/* json-c's heap for parsing `text` (tokener included), and the scan's
 * weight for it. */
static void measure(const GString *text, gsize *heap, guint64 *weight)
{
    IfsJsonLimits unbounded = {JSON_TOKENER_DEFAULT_DEPTH, 0, G_MAXUINT64};
    IfsJsonScan scan;
    json_tokener *tok;
    json_object *obj;
    gsize before;

    ifs_json_scan_init(&scan, &unbounded);
    g_assert_true(ifs_json_scan_feed(&scan, text->str, text->len));
    *weight = ifs_json_scan_weight(&scan);
    before = heap_in_use();
    tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text->str, (int)text->len + 1);
    *heap = heap_in_use() - before;
    g_assert_cmpint(json_tokener_get_error(tok), ==, json_tokener_success);
    json_object_put(obj);
    json_tokener_free(tok);
}

static GString *members(const char *value, int count)
{
    GString *s = g_string_new("{");

    for (int i = 0; i < count; i++)
        g_string_append_printf(s, "%s\"k%d\":%s", i ? "," : "", i, value);
    g_string_append_c(s, '}');
    return s;
}

static void test_weights_cover_json_c_real_figures(void)
{
    static const char *const elements[] = {
        "{}",
        "[]",
        "1",
        "1.5",
        "true",
        "null",
        "\"\"",
        "\"abcdefgh\"",
        "{\"a\":1}",
        "{\"a\":{}}",
        "[[]]",
        "[1,2,3]",
        "\"a string of forty characters, or nearly\"",
    };
    static const int counts[] = {1, 11, 12, 23, 44, 1000, 100000};

    if (!heap_is_measurable()) {
        g_test_skip("mallinfo2 does not see this build's allocator (sanitizers)");
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(elements); i++) {
        for (int n = 1; n <= 200000; n *= 20) {
            GString *text = g_string_new("[");
            gsize heap;
            guint64 weight;

            for (int k = 0; k < n; k++)
                g_string_append_printf(text, "%s%s", k ? "," : "", elements[i]);
            g_string_append_c(text, ']');
            measure(text, &heap, &weight);
            if (n >= 8000)
                g_test_message(
                    "%7d x %-12s: json-c %9zu bytes (%5.1f per byte), weight %9" G_GUINT64_FORMAT
                    " (%.2f of it)",
                    n, elements[i], heap, (double)heap / (double)text->len, weight,
                    (double)weight / (double)heap);
            g_assert_cmpuint(weight, >=, heap);
            /* and not far above: the weights are json-c's costs, not guesses */
            if (n >= 8000 && strcmp(elements[i], "null") != 0)
                g_assert_cmpuint(weight, <=, heap * 7 / 4);
            g_string_free(text, TRUE);
        }
    }
    /* Objects as their hash tables grow (json-c doubles them at 2/3). */
    for (guint i = 0; i < G_N_ELEMENTS(counts); i++) {
        for (guint v = 0; v < 3; v++) {
            GString *text = members((const char *[]){"null", "1", "{}"}[v], counts[i]);
            gsize heap;
            guint64 weight;

            measure(text, &heap, &weight);
            g_assert_cmpuint(weight, >=, heap);
            g_string_free(text, TRUE);
        }
    }
    /* A real document, and one long string (the tokener's buffer). */
    {
        GString *list = list_of(hostup_vps, 2000);
        GString *string = g_string_new("\"");
        gsize heap;
        guint64 weight;

        measure(list, &heap, &weight);
        g_test_message("HostUp list of 2000: json-c %.1f bytes per byte, weight %.2f of it",
                       (double)heap / (double)list->len, (double)weight / (double)heap);
        g_assert_cmpuint(weight, >=, heap);
        g_assert_cmpuint(weight, <=, heap * 5 / 4);
        for (int k = 0; k < 10 * MIB; k++)
            g_string_append_c(string, 'x');
        g_string_append_c(string, '"');
        measure(string, &heap, &weight);
        g_assert_cmpuint(weight, >=, heap);
        g_string_free(list, TRUE);
        g_string_free(string, TRUE);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/jsonparse/bomb/objects-refused-within-kilobytes",
                    test_object_bomb_is_refused_within_kilobytes);
    g_test_add_func("/jsonparse/bomb/other-shapes-refused", test_other_bombs_are_refused);
    g_test_add_func("/jsonparse/bomb/scalars-stopped-by-the-cap",
                    test_scalar_bomb_is_stopped_by_the_answer_cap);
    g_test_add_func("/jsonparse/bomb/same-verdict-whatever-the-pieces",
                    test_verdict_does_not_depend_on_the_pieces);
    g_test_add_func("/jsonparse/depth", test_nesting_depth);
    g_test_add_func("/jsonparse/trailing-data", test_trailing_data);
    g_test_add_func("/jsonparse/nul-bytes", test_nul_bytes);
    g_test_add_func("/jsonparse/truncated", test_truncated_input);
    g_test_add_func("/jsonparse/strict", test_strict_json);
    g_test_add_func("/jsonparse/bomb/behind-single-quoted-names",
                    test_single_quoted_names_are_followed);
    g_test_add_func("/jsonparse/null", test_null_is_not_an_error);
    g_test_add_func("/jsonparse/real-documents-pass", test_real_documents_pass);
    g_test_add_func("/jsonparse/one-large-string-passes", test_one_large_string_passes);
    g_test_add_func("/jsonparse/weights-cover-json-c", test_weights_cover_json_c_real_figures);
    return g_test_run();
}
