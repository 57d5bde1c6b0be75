/* JSON -> resource directory (doc/SEMANTICS.md §4): names, texts, shapes, and
 * robustness against hostile JSON. */
#include "infrafs/jsontree.h"
#include "infrafs/jsonparse.h"

#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static json_object *parse(const char *text)
{
    json_object *obj = json_tokener_parse(text);

    g_assert_nonnull(obj);
    return obj;
}

/* The directory `path` filled from `obj`; skipped count and problems out. */
static IfsNode *fill(const char *path, json_object *obj, guint *skipped, GString *problems)
{
    IfsDirBuilder *b = ifs_dir_builder_new(path);
    guint n = ifs_json_fill_dir(b, obj, NULL, problems);

    if (skipped)
        *skipped = n;
    return ifs_dir_builder_finish(b, 1000);
}

static IfsNode *fill_text(const char *json, guint *skipped, GString *problems)
{
    json_object *obj = parse(json);
    IfsNode *dir = fill("vps/acct/1", obj, skipped, problems);

    json_object_put(obj);
    return dir;
}

static const IfsNode *at(const IfsNode *root, const char *rel)
{
    char **parts = g_strsplit(rel, "/", -1);
    const IfsNode *n = root;

    for (guint i = 0; parts[i] && n; i++)
        n = ifs_node_child(n, parts[i]);
    g_strfreev(parts);
    return n;
}

static void assert_file(const IfsNode *root, const char *rel, const char *text)
{
    const IfsNode *n = at(root, rel);

    if (!n)
        g_error("missing %s", rel);
    g_assert_cmpint(n->type, ==, IFS_NODE_FILE);
    g_assert_cmpuint(ifs_node_size(n), ==, strlen(text));
    g_assert_cmpmem(ifs_node_data(n), ifs_node_size(n), text, strlen(text));
}

static void assert_dir(const IfsNode *root, const char *rel, guint n_children)
{
    const IfsNode *n = at(root, rel);

    if (!n)
        g_error("missing %s", rel);
    g_assert_cmpint(n->type, ==, IFS_NODE_DIR);
    g_assert_cmpuint(ifs_node_n_children(n), ==, n_children);
}

/* Every name in the tree is a safe entry, and every ino (computed from its
 * directory's) matches its path. */
static void assert_safe_tree(const IfsNode *n, const char *path)
{
    for (guint i = 0; i < ifs_node_n_children(n); i++) {
        const char *name = ifs_node_name(ifs_node_child_at(n, i));
        char *child_path = ifs_path_join(path, name);

        g_assert_cmpuint(strlen(name), >, 0);
        g_assert_cmpuint(strlen(name), <=, 255);
        g_assert_null(strchr(name, '/'));
        g_assert_cmpstr(name, !=, ".");
        g_assert_cmpstr(name, !=, "..");
        if (i > 0)
            g_assert_cmpint(strcmp(ifs_node_name(ifs_node_child_at(n, i - 1)), name), <, 0);
        g_assert_cmpuint(ifs_node_ino(ifs_node_child_at(n, i), ifs_ino_for_path(path)), ==,
                         ifs_ino_for_path(child_path));
        assert_safe_tree(ifs_node_child_at(n, i), child_path);
        g_free(child_path);
    }
}

/* ---- snake_case --------------------------------------------------------- */

static void test_snake_case_table(void)
{
    static const char *const cases[][2] = {
        {"createdAt",           "created_at"            },
        {"primaryIp",           "primary_ip"            },
        {"HTTPServer",          "http_server"           },
        {"cpuUsagePercent",     "cpu_usage_percent"     },
        {"already_snake",       "already_snake"         },
        {"IPv4Address",         "ipv4_address"          },
        {"IPv6Addresses",       "ipv6_addresses"        },
        {"kebab-case",          "kebab_case"            },
        {"with space",          "with_space"            },
        {"memoryGb",            "memory_gb"             },
        {"ipv6Addresses",       "ipv6_addresses"        },
        {"id",                  "id"                    },
        {"ID",                  "id"                    },
        {"IDs",                 "ids"                   },
        {"userIDs",             "user_ids"              },
        {"URLs",                "urls"                  },
        {"PascalCase",          "pascal_case"           },
        {"getHTTPResponseCode", "get_http_response_code"},
        {"S3Bucket",            "s3_bucket"             },
        {"EC2Instance",         "ec2_instance"          },
        {"ABTest",              "ab_test"               },
        {"_id",                 "_id"                   },
        {"x-Y",                 "x_y"                   },
        {"snake_Case",          "snake_case"            },
        {"two  spaces",         "two__spaces"           },
        {"v2",                  "v2"                    },
        {"caf\xc3\xa9Name",     "caf\xc3\xa9_name"      },
        {"a.b",                 "a.b"                   },
        {"",                    ""                      },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *s = ifs_snake_case(cases[i][0]);

        g_assert_cmpstr(s, ==, cases[i][1]);
        g_free(s);
    }
}

/* ---- scalar texts ------------------------------------------------------- */

static void assert_scalar(json_object *v, const char *want, size_t want_len)
{
    size_t len = 99;
    char *text = ifs_json_scalar_text(v, &len);

    g_assert_cmpmem(text, len, want, want_len);
    g_free(text);
}

static void test_scalar_texts(void)
{
    json_object *o = parse("{\"s\":\"hello world\",\"i\":42,\"neg\":-7,"
                           "\"big\":9223372036854775807,\"min\":-9223372036854775808,"
                           "\"ubig\":18446744073709551615,\"d\":12.50,\"e\":1e3,"
                           "\"t\":true,\"f\":false,\"n\":null,\"url\":\"https://x/y\","
                           "\"nul\":\"a\\u0000b\",\"empty\":\"\"}");
    json_object *v;

    json_object_object_get_ex(o, "s", &v);
    assert_scalar(v, "hello world\n", 12);
    json_object_object_get_ex(o, "i", &v);
    assert_scalar(v, "42\n", 3);
    json_object_object_get_ex(o, "neg", &v);
    assert_scalar(v, "-7\n", 3);
    json_object_object_get_ex(o, "big", &v);
    assert_scalar(v, "9223372036854775807\n", 20);
    json_object_object_get_ex(o, "min", &v);
    assert_scalar(v, "-9223372036854775808\n", 21);
    json_object_object_get_ex(o, "ubig", &v);
    assert_scalar(v, "18446744073709551615\n", 21);
    json_object_object_get_ex(o, "d", &v);
    assert_scalar(v, "12.50\n", 6);
    json_object_object_get_ex(o, "e", &v);
    assert_scalar(v, "1e3\n", 4);
    json_object_object_get_ex(o, "t", &v);
    assert_scalar(v, "true\n", 5);
    json_object_object_get_ex(o, "f", &v);
    assert_scalar(v, "false\n", 6);
    json_object_object_get_ex(o, "n", &v);
    assert_scalar(v, "", 0);
    assert_scalar(NULL, "", 0);
    json_object_object_get_ex(o, "url", &v);
    assert_scalar(v, "https://x/y\n", 12);
    json_object_object_get_ex(o, "nul", &v);
    assert_scalar(v, "a\0b\n", 4);
    json_object_object_get_ex(o, "empty", &v);
    assert_scalar(v, "\n", 1);
    json_object_put(o);
}

static void test_pretty(void)
{
    json_object *o = parse("{\"a\":1,\"url\":\"https://x/y\",\"l\":[true]}");
    size_t len;
    char *text = ifs_json_pretty(o, &len);

    g_assert_cmpstr(text, ==,
                    "{\n  \"a\": 1,\n  \"url\": \"https://x/y\",\n  \"l\": [\n    true\n  ]\n}\n");
    g_assert_cmpuint(len, ==, strlen(text));
    g_free(text);
    json_object_put(o);
}

/* ---- shapes ------------------------------------------------------------- */

static const char hostup_vps[] =
    "{\"id\":\"vps_01hx8z3k\",\"name\":\"web-1\",\"primaryIp\":\"203.0.113.10\","
    "\"serviceStatus\":\"active\",\"powerState\":\"running\","
    "\"operatingSystem\":{\"displayName\":\"Ubuntu 24.04\",\"family\":\"ubuntu\","
    "\"version\":\"24.04\",\"variant\":null},"
    "\"billing\":{\"amount\":12.50,\"currencyCode\":\"SEK\",\"billingCycle\":\"monthly\","
    "\"isPayg\":false,\"periodYears\":1},"
    "\"resources\":{\"cpuCores\":2,\"memoryGb\":4,\"storageGb\":80},"
    "\"tags\":[\"prod\",\"web\",null,7],"
    "\"ipAddresses\":[{\"id\":\"ip_1\",\"address\":\"203.0.113.10\"},"
    "{\"address\":\"2001:db8::1\",\"version\":6}],"
    "\"sshKeys\":[{\"slug\":\"deploy\",\"fingerprint\":\"SHA256:abc\"},"
    "{\"name\":\"laptop\",\"id\":null},{\"identifier\":42}],"
    "\"pendingMaintenance\":null,"
    "\"actions\":{\"canReset\":{\"allowed\":true,\"reason\":null}},"
    "\"createdAt\":\"2024-05-01T10:00:00Z\",\"emptyList\":[],\"emptyObject\":{}}";

static void test_fill_hostup_vps(void)
{
    GString *problems = g_string_new(NULL);
    guint skipped = 99;
    IfsNode *dir = fill_text(hostup_vps, &skipped, problems);

    g_assert_cmpuint(skipped, ==, 0);
    g_assert_cmpstr(problems->str, ==, "");
    assert_file(dir, "id", "vps_01hx8z3k\n");
    assert_file(dir, "name", "web-1\n");
    assert_file(dir, "primary_ip", "203.0.113.10\n");
    assert_file(dir, "service_status", "active\n");
    assert_file(dir, "power_state", "running\n");
    assert_file(dir, "created_at", "2024-05-01T10:00:00Z\n");
    assert_dir(dir, "operating_system", 4);
    assert_file(dir, "operating_system/display_name", "Ubuntu 24.04\n");
    assert_file(dir, "operating_system/variant", "");
    assert_dir(dir, "billing", 5);
    assert_file(dir, "billing/amount", "12.50\n");
    assert_file(dir, "billing/currency_code", "SEK\n");
    assert_file(dir, "billing/is_payg", "false\n");
    assert_file(dir, "billing/period_years", "1\n");
    assert_file(dir, "resources/memory_gb", "4\n");
    assert_file(dir, "tags", "prod\nweb\n\n7\n");
    assert_dir(dir, "ip_addresses", 2);
    assert_file(dir, "ip_addresses/ip_1/address", "203.0.113.10\n");
    assert_file(dir, "ip_addresses/1/version", "6\n");
    assert_dir(dir, "ssh_keys", 3);
    assert_file(dir, "ssh_keys/deploy/fingerprint", "SHA256:abc\n");
    assert_file(dir, "ssh_keys/laptop/name", "laptop\n");
    assert_file(dir, "ssh_keys/laptop/id", "");
    assert_file(dir, "ssh_keys/42/identifier", "42\n");
    assert_file(dir, "pending_maintenance", "");
    assert_file(dir, "actions/can_reset/allowed", "true\n");
    assert_file(dir, "actions/can_reset/reason", "");
    assert_file(dir, "empty_list", "");
    assert_dir(dir, "empty_object", 0);
    g_assert_null(at(dir, "json"));
    assert_safe_tree(dir, "vps/acct/1");
    ifs_node_unref(dir);
    g_string_free(problems, TRUE);
}

static void test_fill_mixed_arrays(void)
{
    guint skipped;
    IfsNode *dir = fill_text("{\"mixed\":[1,{\"a\":1},[2,3],[{\"x\":true}],\"s\",null],"
                             "\"dups\":[{\"id\":\"a\"},{\"id\":\"a\"},{\"slug\":\"b\"}],"
                             "\"byname\":[{\"name\":\"n1\",\"slug\":\"s1\"},"
                             "{\"id\":{\"nested\":1},\"slug\":\"s2\"},{\"id\":true}]}",
                             &skipped, NULL);

    g_assert_cmpuint(skipped, ==, 0);
    assert_dir(dir, "mixed", 6);
    assert_file(dir, "mixed/0", "1\n");
    assert_file(dir, "mixed/1/a", "1\n");
    assert_file(dir, "mixed/2", "2\n3\n");
    assert_file(dir, "mixed/3/0/x", "true\n");
    assert_file(dir, "mixed/4", "s\n");
    assert_file(dir, "mixed/5", "");
    /* The second "a" falls back to its index. */
    assert_dir(dir, "dups", 3);
    assert_file(dir, "dups/a/id", "a\n");
    assert_file(dir, "dups/1/id", "a\n");
    assert_file(dir, "dups/b/slug", "b\n");
    /* slug wins over name; an id that is not a string or number is passed
     * over for the next key; booleans do not name entries. */
    assert_file(dir, "byname/s1/name", "n1\n");
    assert_dir(dir, "byname/s2/id", 1);
    assert_file(dir, "byname/2/id", "true\n");
    assert_safe_tree(dir, "vps/acct/1");
    ifs_node_unref(dir);
}

static void test_fill_top_level_array(void)
{
    json_object *arr = parse("[{\"id\":\"r1\",\"x\":1},{\"id\":\"r2\"}]");
    IfsNode *dir = fill("regions/acct", arr, NULL, NULL);

    assert_file(dir, "r1/x", "1\n");
    assert_dir(dir, "r2", 1);
    ifs_node_unref(dir);
    json_object_put(arr);
}

/* ---- hostile names ------------------------------------------------------ */

static void test_unsafe_keys(void)
{
    GString *problems = g_string_new(NULL);
    guint skipped;
    IfsNode *dir = fill_text("{\"../x\":1,\"a/b\":2,\"\":3,\".\":4,\"..\":5,\"/\":6,"
                             "\"100%\":7,\"a\\u0000b\":8,\"\\u00ff\":9}",
                             &skipped, problems);

    g_assert_cmpuint(skipped, ==, 1); /* only "" */
    g_assert_nonnull(strstr(problems->str, "vps/acct/1: field \"\" skipped"));
    assert_file(dir, "..%2Fx", "1\n");
    assert_file(dir, "a%2Fb", "2\n");
    assert_file(dir, "%2E", "4\n");
    assert_file(dir, "%2E%2E", "5\n");
    assert_file(dir, "%2F", "6\n");
    assert_file(dir, "100%25", "7\n");
    assert_file(dir, "a", "8\n"); /* json-c keys end at NUL */
    assert_file(dir, "\xc3\xbf", "9\n");
    assert_safe_tree(dir, "vps/acct/1");
    ifs_node_unref(dir);
    g_string_free(problems, TRUE);
}

static void test_unsafe_element_names(void)
{
    guint skipped;
    IfsNode *dir = fill_text("{\"l\":[{\"id\":\"../../etc\"},{\"id\":\"..\"},{\"id\":\"\"},"
                             "{\"id\":\".\"},{\"id\":\"a\\u0000b\"},{\"id\":\"/\"}]}",
                             &skipped, NULL);

    g_assert_cmpuint(skipped, ==, 0);
    assert_dir(dir, "l", 6);
    assert_dir(dir, "l/..%2F..%2Fetc", 1);
    assert_dir(dir, "l/%2E%2E", 1);
    assert_dir(dir, "l/2", 1);
    assert_dir(dir, "l/%2E", 1);
    assert_dir(dir, "l/a%00b", 1);
    assert_dir(dir, "l/%2F", 1);
    assert_safe_tree(dir, "vps/acct/1");
    ifs_node_unref(dir);
}

static void test_long_and_weird_values(void)
{
    json_object *o = json_object_new_object();
    GString *long_key = g_string_new(NULL);
    GString *problems = g_string_new(NULL);
    guint skipped;
    IfsNode *dir;

    for (int i = 0; i < 300; i++)
        g_string_append_c(long_key, 'k');
    json_object_object_add(o, long_key->str, json_object_new_int(1));
    json_object_object_add(o, "bad\xff\xfeutf8", json_object_new_string_len("\xff\x00\xfe", 3));
    json_object_object_add(o, "line\nbreak", json_object_new_string("x"));
    dir = fill("d", o, &skipped, problems);

    g_assert_cmpuint(skipped, ==, 1);
    /* One problem line, key cut and quoted. */
    g_assert_nonnull(strstr(problems->str, "d: field \"kkkk"));
    g_assert_nonnull(strstr(problems->str, "...\" skipped"));
    /* Bytes kept as they are, NUL included. */
    g_assert_cmpmem(ifs_node_data(at(dir, "bad\xff\xfeutf8")),
                    ifs_node_size(at(dir, "bad\xff\xfeutf8")), "\xff\x00\xfe\n", 4);
    assert_file(dir, "line_break", "x\n");
    assert_safe_tree(dir, "d");
    ifs_node_unref(dir);
    json_object_put(o);
    g_string_free(long_key, TRUE);
    g_string_free(problems, TRUE);
}

/* ---- collisions --------------------------------------------------------- */

static void test_collisions(void)
{
    GString *problems = g_string_new(NULL);
    IfsDirBuilder *b = ifs_dir_builder_new("vps/acct/1");
    json_object *obj = parse("{\"createdAt\":\"first\",\"created_at\":\"second\","
                             "\"power\":\"api value\",\"json\":1}");
    char *power_path = ifs_path_join(ifs_dir_builder_path(b), "power");
    guint skipped;
    IfsNode *dir;

    /* Controls and synthesized files are added first and win. */
    ifs_dir_builder_add(b, ifs_node_new_control(power_path, "start stop\n", NULL, NULL));
    skipped = ifs_json_fill_dir(b, obj, NULL, problems);
    dir = ifs_dir_builder_finish(b, 1);

    g_assert_cmpuint(skipped, ==, 2);
    assert_file(dir, "created_at", "first\n");
    g_assert_cmpint(at(dir, "power")->type, ==, IFS_NODE_CONTROL);
    assert_file(dir, "json", "1\n");
    g_assert_nonnull(strstr(problems->str, "field \"created_at\" skipped"));
    g_assert_nonnull(strstr(problems->str, "field \"power\" skipped"));
    /* One line per skipped field. */
    {
        guint lines = 0;

        for (const char *p = problems->str; *p; p++)
            lines += *p == '\n';
        g_assert_cmpuint(lines, ==, 2);
    }
    ifs_node_unref(dir);
    json_object_put(obj);
    g_free(power_path);
    g_string_free(problems, TRUE);
}

static void test_index_collision(void)
{
    guint skipped;
    GString *problems = g_string_new(NULL);
    IfsNode *dir = fill_text("{\"l\":[{\"id\":\"1\"},{\"x\":1},{\"x\":2}]}", &skipped, problems);

    /* Element 1 has no name and its index "1" is taken: it is skipped. */
    g_assert_cmpuint(skipped, ==, 1);
    assert_dir(dir, "l", 2);
    assert_file(dir, "l/1/id", "1\n");
    assert_file(dir, "l/2/x", "2\n");
    g_assert_nonnull(strstr(problems->str, "vps/acct/1/l: field \"1\" skipped"));
    ifs_node_unref(dir);
    g_string_free(problems, TRUE);
}

/* ---- size and depth ----------------------------------------------------- */

static void test_deep_nesting(void)
{
    json_object *root = json_object_new_object();
    json_object *cur = root;
    IfsNode *dir;
    const IfsNode *n;
    int levels = 0;

    for (int i = 0; i < 200; i++) {
        json_object *next = json_object_new_object();

        json_object_object_add(cur, "a", next);
        cur = next;
    }
    json_object_object_add(cur, "leaf", json_object_new_int(1));
    dir = fill("d", root, NULL, NULL);
    for (n = dir; n->type == IFS_NODE_DIR; n = ifs_node_child(n, "a"))
        levels++;
    /* The resource directory and 32 nested levels, then a JSON file. */
    g_assert_cmpint(levels, ==, 33);
    g_assert_cmpint(n->type, ==, IFS_NODE_FILE);
    g_assert_true(g_str_has_prefix(ifs_node_data(n), "{\"a\":{\"a\":"));
    g_assert_true(g_str_has_suffix(ifs_node_data(n), "}\n"));
    ifs_node_unref(dir);
    json_object_put(root);
}

static void test_deep_arrays(void)
{
    json_object *root = json_object_new_object();
    json_object *cur = json_object_new_array();
    IfsNode *dir;

    json_object_object_add(root, "l", cur);
    for (int i = 0; i < 200; i++) {
        json_object *next = json_object_new_array();

        json_object_array_add(cur, json_object_new_object());
        json_object_array_add(cur, next);
        cur = next;
    }
    dir = fill("d", root, NULL, NULL);
    assert_safe_tree(dir, "d");
    ifs_node_unref(dir);
    json_object_put(root);
}

static void test_huge_arrays(void)
{
    json_object *root = json_object_new_object();
    json_object *scalars = json_object_new_array();
    json_object *objects = json_object_new_array();
    IfsNode *dir;
    const IfsNode *list;

    for (int i = 0; i < 100000; i++)
        json_object_array_add(scalars, json_object_new_int(i % 10));
    for (int i = 0; i < 10000; i++) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int(i));
        json_object_array_add(objects, o);
    }
    json_object_object_add(root, "scalars", scalars);
    json_object_object_add(root, "objects", objects);
    dir = fill("d", root, NULL, NULL);
    g_assert_cmpuint(ifs_node_size(at(dir, "scalars")), ==, 200000);
    list = at(dir, "objects");
    g_assert_cmpuint(ifs_node_n_children(list), ==, 10000);
    assert_file(dir, "objects/9999/id", "9999\n");
    ifs_node_unref(dir);
    json_object_put(root);
}

static void test_not_an_object(void)
{
    json_object *s = json_object_new_string("x");
    IfsDirBuilder *b = ifs_dir_builder_new("d");
    IfsNode *dir;

    g_assert_cmpuint(ifs_json_fill_dir(b, s, NULL, NULL), ==, 0);
    g_assert_cmpuint(ifs_json_fill_dir(b, NULL, NULL, NULL), ==, 0);
    dir = ifs_dir_builder_finish(b, 1);
    g_assert_cmpuint(ifs_node_n_children(dir), ==, 0);
    ifs_node_unref(dir);
    json_object_put(s);
}

/* ---- pretty size --------------------------------------------------------- */

/* A random value nested at most `depth` deep, with the shapes that change
 * the pretty form: empty and nested containers, escapes, brackets and
 * colons inside strings, doubles kept as written. */
static json_object *random_value(GRand *rand, int depth)
{
    static const char *const strings[] = {
        "",       "plain",     "with \"quotes\"", "back\\slash", "a/b",
        "{[,:]}", "tab\there", "line\nbreak",     "\x01ctl",     "caf\xc3\xa9",
    };
    static const char *const doubles[] = {"1.50", "1e5", "-0.0", "3.14159"};
    int pick = g_rand_int_range(rand, 0, depth > 0 ? 9 : 6);

    switch (pick) {
    case 0:
        return NULL;
    case 1:
        return json_object_new_boolean(g_rand_boolean(rand));
    case 2:
        return json_object_new_int64((gint64)g_rand_int(rand) - G_MAXINT32);
    case 3: {
        const char *d = doubles[g_rand_int_range(rand, 0, G_N_ELEMENTS(doubles))];
        return json_object_new_double_s(g_ascii_strtod(d, NULL), d);
    }
    case 4:
    case 5:
        return json_object_new_string(strings[g_rand_int_range(rand, 0, G_N_ELEMENTS(strings))]);
    case 6: {
        json_object *a = json_object_new_array();
        for (int n = g_rand_int_range(rand, 0, 4); n > 0; n--)
            json_object_array_add(a, random_value(rand, depth - 1));
        return a;
    }
    default: {
        json_object *o = json_object_new_object();
        for (int n = g_rand_int_range(rand, 0, 5); n > 0; n--) {
            char key[16];
            g_snprintf(key, sizeof key, "k%d:%d", n, g_rand_int_range(rand, 0, 9));
            json_object_object_add(o, key, random_value(rand, depth - 1));
        }
        return o;
    }
    }
}

static void test_pretty_size_matches_printer(void)
{
    GRand *rand = g_rand_new_with_seed(7);

    for (int i = 0; i < 20000; i++) {
        json_object *obj = random_value(rand, g_rand_int_range(rand, 1, 7));
        size_t compact_len, pretty_len;
        char *compact = ifs_json_compact(obj, &compact_len);
        char *pretty = ifs_json_pretty(obj, &pretty_len);

        if (ifs_json_pretty_size(compact, compact_len) != pretty_len)
            g_error("pretty size of %s: %zu, printed %zu:\n%s", compact,
                    ifs_json_pretty_size(compact, compact_len), pretty_len, pretty);
        g_free(compact);
        g_free(pretty);
        json_object_put(obj);
    }
    g_rand_free(rand);
}

/* Text that is not compact JSON of our making gets 0: the caller prints. */
static void test_pretty_size_refuses_other_text(void)
{
    const char *const others[] = {"{ }", "{\"a\": 1}", "[1,\n2]", "{\"a\":1", "}", "\"open"};

    for (guint i = 0; i < G_N_ELEMENTS(others); i++)
        g_assert_cmpuint(ifs_json_pretty_size(others[i], strlen(others[i])), ==, 0);
    g_assert_cmpuint(ifs_json_pretty_size("{}", 2), ==, strlen("{\n}\n"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/jsontree/snake-case", test_snake_case_table);
    g_test_add_func("/jsontree/scalar-texts", test_scalar_texts);
    g_test_add_func("/jsontree/pretty", test_pretty);
    g_test_add_func("/jsontree/fill/hostup-vps", test_fill_hostup_vps);
    g_test_add_func("/jsontree/fill/mixed-arrays", test_fill_mixed_arrays);
    g_test_add_func("/jsontree/fill/top-level-array", test_fill_top_level_array);
    g_test_add_func("/jsontree/fill/not-an-object", test_not_an_object);
    g_test_add_func("/jsontree/names/unsafe-keys", test_unsafe_keys);
    g_test_add_func("/jsontree/names/unsafe-element-names", test_unsafe_element_names);
    g_test_add_func("/jsontree/names/long-and-weird", test_long_and_weird_values);
    g_test_add_func("/jsontree/names/collisions", test_collisions);
    g_test_add_func("/jsontree/names/index-collision", test_index_collision);
    g_test_add_func("/jsontree/robust/deep-nesting", test_deep_nesting);
    g_test_add_func("/jsontree/robust/deep-arrays", test_deep_arrays);
    g_test_add_func("/jsontree/robust/huge-arrays", test_huge_arrays);
    g_test_add_func("/jsontree/pretty-size/matches-printer", test_pretty_size_matches_printer);
    g_test_add_func("/jsontree/pretty-size/refuses-other-text",
                    test_pretty_size_refuses_other_text);
    return g_test_run();
}
