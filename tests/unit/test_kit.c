/* Unit tests of src/providers/kit.c: what the providers share in reading
 * their answers' ids, and the paged-list reader against the scripted
 * server of test_server.h. (Its GETs are exercised through each
 * provider's tests and fuzz target.) */
#include "providers/kit.h"

#include "infrafs/jsonparse.h"

#include <errno.h>
#include <string.h>

#include "test_server.h"
#include "test_util.h"

static json_object *parse(const char *text, size_t len)
{
    json_object *obj = ifs_json_parse(text, len, NULL, NULL);

    g_assert_nonnull(obj);
    return obj;
}

static void test_a_usable_id_names_the_resource(void)
{
    static const char text[] = "{\"id\":\"vps_1\",\"name\":\"web\"}";
    IfsResource *r = ifs_kit_resource("vps", parse(text, sizeof text - 1), "id");

    g_assert_cmpstr(r->kind, ==, "vps");
    g_assert_cmpstr(r->id, ==, "vps_1");
    g_assert_null(r->problem);
    ifs_resource_unref(r);
}

static void test_an_id_with_a_nul_byte_is_refused_and_shown_escaped(void)
{
    static const char text[] = "{\"deploymentId\":\"d\\u0000x\"}";
    IfsResource *r = ifs_kit_resource("deployments", parse(text, sizeof text - 1), "deploymentId");

    g_assert_null(r->id);
    g_assert_cmpstr(r->problem, ==, "deploymentId 'd%00x' holds a NUL byte");
    ifs_resource_unref(r);
}

static void test_a_missing_or_non_string_id_is_no_problem_of_the_kit(void)
{
    static const char *const texts[] = {"{\"name\":\"x\"}", "{\"id\":47}", "{\"id\":null}"};

    for (gsize i = 0; i < G_N_ELEMENTS(texts); i++) {
        json_object *obj = parse(texts[i], strlen(texts[i]));

        g_assert_null(ifs_kit_id_problem(obj, "id"));
        json_object_put(obj);
    }
}

/* ---- paged lists ---- */

/* A test pager: "/items?page=N" or "/items?cursor=C"; an answer is
 * {"items":[...],"next":"C"} or {"items":[...],"last":true}, with
 * "seen_before" when its items were all read before. */
typedef struct {
    GPtrArray *seen; /* item strings, in order */
    guint stop_after; /* take ends the list after this many items (0: never) */
} Collected;

static char *items_path(gpointer ctx, const IfsKitPage *page)
{
    (void)ctx;
    if (page->cursor)
        return g_strdup_printf("/items?cursor=%s", page->cursor);
    return g_strdup_printf("/items?page=%u", page->number);
}

static gboolean take_items(gpointer ctx, const char *path, json_object *answer, IfsKitPage *page,
                           IfsError **err)
{
    Collected *c = ctx;
    json_object *items, *next;

    if (!json_object_object_get_ex(answer, "items", &items) ||
        !json_object_is_type(items, json_type_array)) {
        ifs_error_propagate(err, ifs_error_new(EIO, 0, NULL, "GET %s: no items", path));
        return FALSE;
    }
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        g_ptr_array_add(c->seen,
                        g_strdup(json_object_get_string(json_object_array_get_idx(items, i))));
        if (c->stop_after && c->seen->len >= c->stop_after)
            page->done = TRUE;
    }
    if (json_object_object_get_ex(answer, "next", &next))
        page->next_cursor = json_object_get_string(next);
    if (json_object_object_get_ex(answer, "last", NULL))
        page->done = TRUE;
    page->nothing_new = json_object_object_get_ex(answer, "seen_before", NULL);
    return TRUE;
}

static const IfsKitPager items_pager = {
    .what = "listing items",
    .max_pages = 5,
    .path = items_path,
    .take = take_items,
};

typedef struct {
    TestServer *server;
    IfsHttp *http;
    Collected got;
} PagingFixture;

static void paging_setup(PagingFixture *fx, gconstpointer data)
{
    IfsHttpConfig cfg = {
        .account = "acct",
        .auth = IFS_AUTH_BEARER,
        .secret = "kit-key",
        .timeout_ms = 5000,
        .max_retries = 0,
    };

    (void)data;
    fx->server = test_server_start();
    cfg.origin = test_server_origin(fx->server);
    fx->http = ifs_http_new(&cfg);
    fx->got.seen = g_ptr_array_new_with_free_func(g_free);
    test_server_otherwise(fx->server, 404, "{\"message\":\"no such page\"}");
}

static void paging_teardown(PagingFixture *fx, gconstpointer data)
{
    (void)data;
    ifs_http_free(fx->http);
    test_server_stop(fx->server);
    g_ptr_array_unref(fx->got.seen);
}

static char *joined(GPtrArray *seen)
{
    g_ptr_array_add(seen, NULL);
    char *text = g_strjoinv(",", (char **)seen->pdata);
    g_ptr_array_remove_index(seen, seen->len - 1);
    return text;
}

static void test_numbered_pages_then_cursors_until_the_last(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;
    g_autofree char *items = NULL;

    (void)data;
    test_server_route(fx->server, "GET /items?page=1", 200, "{\"items\":[\"a\",\"b\"]}");
    test_server_route(fx->server, "GET /items?page=2", 200, "{\"items\":[\"c\"],\"next\":\"k1\"}");
    test_server_route(fx->server, "GET /items?cursor=k1", 200,
                      "{\"items\":[\"d\"],\"next\":\"k2\"}");
    test_server_route(fx->server, "GET /items?cursor=k2", 200, "{\"items\":[\"e\"],\"last\":1}");
    g_assert_true(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_null(err);
    items = joined(fx->got.seen);
    g_assert_cmpstr(items, ==, "a,b,c,d,e");
    g_assert_cmpuint(test_server_request_count(fx->server), ==, 4);
}

static void test_a_cursor_handed_out_again_stops_with_eio(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /items?page=1", 200, "{\"items\":[\"a\"],\"next\":\"k1\"}");
    test_server_route(fx->server, "GET /items?cursor=k1", 200,
                      "{\"items\":[\"b\"],\"next\":\"k1\"}");
    g_assert_false(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_nonnull(err);
    g_assert_cmpint(err->errnum, ==, EIO);
    assert_contains(err->message,
                    "account 'acct': GET /items?cursor=k1: the API handed out "
                    "cursor 'k1' a second time");
    g_assert_cmpuint(test_server_count(fx->server, "GET /items?cursor=k1"), ==, 1);
    ifs_error_free(err);
}

static void test_more_pages_than_allowed_stop_before_asking(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;

    (void)data;
    for (guint i = 1; i <= 6; i++) {
        g_autofree char *line = g_strdup_printf("GET /items?page=%u", i);
        test_server_route(fx->server, line, 200, "{\"items\":[\"x\"]}");
    }
    g_assert_false(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_nonnull(err);
    assert_contains(err->message, "account 'acct': listing items: more than 5 pages");
    g_assert_cmpuint(test_server_request_count(fx->server), ==, 5);
    ifs_error_free(err);
}

static void test_a_failed_page_or_answer_fails_the_list(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /items?page=1", 200, "{\"items\":[\"a\"]}");
    test_server_route(fx->server, "GET /items?page=2", 200, "{\"nothing\":1}");
    g_assert_false(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    assert_contains(err->message, "GET /items?page=2: no items");
    g_clear_pointer(&err, ifs_error_free);

    /* The HTTP error (page 1 of a new walk is not routed: 404). */
    test_server_stop(fx->server);
    fx->server = test_server_start();
    test_server_otherwise(fx->server, 404, "{\"message\":\"no such page\"}");
    ifs_http_free(fx->http);
    fx->http = ifs_http_new(&(IfsHttpConfig){.account = "acct",
                                             .origin = test_server_origin(fx->server),
                                             .auth = IFS_AUTH_BEARER,
                                             .secret = "kit-key",
                                             .timeout_ms = 5000});
    g_assert_false(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_cmpint(err->errnum, ==, ENOENT);
    assert_contains(err->message, "no such page");
    ifs_error_free(err);
}

static void test_a_page_of_nothing_new_stops_unless_last(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;

    (void)data;
    test_server_route(fx->server, "GET /items?page=1", 200, "{\"items\":[\"a\"]}");
    test_server_route(fx->server, "GET /items?page=2", 200,
                      "{\"items\":[\"a\"],\"seen_before\":1,\"last\":1}");
    g_assert_true(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_null(err);

    test_server_route(fx->server, "GET /items?page=2", 200,
                      "{\"items\":[\"a\"],\"seen_before\":1}");
    g_assert_false(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    assert_contains(err->message,
                    "account 'acct': GET /items?page=2: every item on this page was "
                    "already read");
    g_assert_cmpuint(test_server_count(fx->server, "GET /items?page=3"), ==, 0);
    ifs_error_free(err);
}

static void test_take_may_end_the_list_early(PagingFixture *fx, gconstpointer data)
{
    IfsError *err = NULL;

    (void)data;
    fx->got.stop_after = 2;
    test_server_route(fx->server, "GET /items?page=1", 200,
                      "{\"items\":[\"a\",\"b\",\"c\"],\"next\":\"k1\"}");
    g_assert_true(ifs_kit_read_pages(fx->http, "acct", &items_pager, &fx->got, &err));
    g_assert_cmpuint(test_server_request_count(fx->server), ==, 1);
}

/* ---- kept lists ---- */

static GPtrArray *resources_of(const char *kind, const char *const *ids)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);

    for (; *ids; ids++)
        g_ptr_array_add(out, ifs_resource_new(kind, *ids, json_object_new_object()));
    return out;
}

static char *ids_of(GPtrArray *resources)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);
        g_string_append_printf(out, "%s%s/%s", i ? "," : "", r->kind, r->id);
    }
    return g_string_free(out, FALSE);
}

static void test_a_kept_list_outlives_failed_reads_and_says_so(void)
{
    static const char *const saved[] = {"ams", NULL};
    static const char *const other[] = {"small", NULL};
    static const char *const fresh[] = {"fra", "lon", NULL};
    IfsKitKeptList *regions = ifs_kit_kept_list_new("regions");
    g_autoptr(GPtrArray) restored = resources_of("regions", saved);
    g_autoptr(GPtrArray) sizes = resources_of("sizes", other);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    g_autoptr(IfsError) down = ifs_error_new(EIO, 503, "busy", "GET /regions: HTTP 503");
    g_autoptr(IfsError) gone = ifs_error_new(ENOENT, 404, NULL, "GET /sizes: HTTP 404");
    IfsError *partial = NULL;
    g_autofree char *after_restore = NULL, *after_failure = NULL, *after_read = NULL;

    /* A remount: only its own kind is taken. */
    g_ptr_array_extend_and_steal(restored, g_steal_pointer(&sizes));
    ifs_kit_kept_list_restore(regions, restored);
    ifs_kit_kept_list_append(regions, out);
    after_restore = ids_of(out);
    g_assert_cmpstr(after_restore, ==, "regions/ams");

    /* Two failed reads: the list stays, both failures are told. */
    ifs_kit_kept_list_failed(regions, down, NULL, &partial);
    ifs_kit_kept_list_failed(regions, gone, "; a hint", &partial);
    g_assert_nonnull(partial);
    g_assert_cmpint(partial->errnum, ==, EIO);
    g_assert_cmpint(partial->http_status, ==, 503);
    g_assert_cmpstr(partial->message, ==,
                    "regions not refreshed, showing the last good list: GET /regions: HTTP 503; "
                    "regions not refreshed, showing the last good list: GET /sizes: HTTP 404; "
                    "a hint");
    g_ptr_array_set_size(out, 0);
    ifs_kit_kept_list_append(regions, out);
    after_failure = ids_of(out);
    g_assert_cmpstr(after_failure, ==, "regions/ams");

    /* A good read replaces it. */
    ifs_kit_kept_list_replace(regions, resources_of("regions", fresh));
    g_ptr_array_set_size(out, 0);
    ifs_kit_kept_list_append(regions, out);
    after_read = ids_of(out);
    g_assert_cmpstr(after_read, ==, "regions/fra,regions/lon");
    ifs_error_free(partial);
    ifs_kit_kept_list_free(regions);
}

/* ---- id maps ---- */

static void test_an_id_map_hands_out_copies_and_is_replaced_whole(void)
{
    IfsKitIdMap *urls = ifs_kit_id_map_new(ifs_kit_copy_text, g_free);
    GHashTable *listed = ifs_kit_id_map_table(urls);
    char *got;

    g_assert_null(ifs_kit_id_map_get(urls, "7"));
    ifs_kit_id_map_set(urls, "7", g_strdup("https://a/7"));
    got = ifs_kit_id_map_get(urls, "7");
    g_assert_cmpstr(got, ==, "https://a/7");
    g_free(got); /* a copy: the map's own stays */
    got = ifs_kit_id_map_get(urls, "7");
    g_assert_cmpstr(got, ==, "https://a/7");
    g_free(got);

    /* A list's table replaces everything the map knew. */
    g_hash_table_insert(listed, g_strdup("8"), g_strdup("https://b/8"));
    ifs_kit_id_map_replace(urls, listed);
    g_assert_null(ifs_kit_id_map_get(urls, "7"));
    got = ifs_kit_id_map_get(urls, "8");
    g_assert_cmpstr(got, ==, "https://b/8");
    g_free(got);

    /* NULL removes. */
    ifs_kit_id_map_set(urls, "8", NULL);
    g_assert_null(ifs_kit_id_map_get(urls, "8"));
    ifs_kit_id_map_free(urls);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kit/usable-id", test_a_usable_id_names_the_resource);
    g_test_add_func("/kit/nul-in-id", test_an_id_with_a_nul_byte_is_refused_and_shown_escaped);
    g_test_add_func("/kit/missing-id", test_a_missing_or_non_string_id_is_no_problem_of_the_kit);
    g_test_add_func("/kit/id-map", test_an_id_map_hands_out_copies_and_is_replaced_whole);
    g_test_add_func("/kit/kept-list", test_a_kept_list_outlives_failed_reads_and_says_so);
#define PAGING(path, fn) g_test_add(path, PagingFixture, NULL, paging_setup, fn, paging_teardown)
    PAGING("/kit/pages/numbers-then-cursors", test_numbered_pages_then_cursors_until_the_last);
    PAGING("/kit/pages/cursor-again", test_a_cursor_handed_out_again_stops_with_eio);
    PAGING("/kit/pages/too-many", test_more_pages_than_allowed_stop_before_asking);
    PAGING("/kit/pages/failed", test_a_failed_page_or_answer_fails_the_list);
    PAGING("/kit/pages/nothing-new", test_a_page_of_nothing_new_stops_unless_last);
    PAGING("/kit/pages/take-ends", test_take_may_end_the_list_early);
    return g_test_run();
}
