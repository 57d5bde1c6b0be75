/* Per-resource detail reads (src/providers/details.c): read only when the
 * list item changed or the last read is old, within the budget's room, the
 * last good one kept on failure and across a remount. The reads are a
 * table of the test's; no request is sent. */
#include "infrafs/details.h"

#include <errno.h>
#include <string.h>

#include "infrafs/jsonparse.h"

typedef struct {
    GMutex lock;
    GHashTable *reads; /* id -> how often read */
    GHashTable *failing; /* id -> errno to fail with */
    int version; /* what the detail says */
} FakeApi;

static json_object *fake_read(gpointer provider, const IfsResource *r, IfsError **err)
{
    FakeApi *api = provider;
    int errnum;
    json_object *detail;

    g_mutex_lock(&api->lock);
    g_hash_table_replace(
        api->reads, g_strdup(r->id),
        GINT_TO_POINTER(GPOINTER_TO_INT(g_hash_table_lookup(api->reads, r->id)) + 1));
    errnum = GPOINTER_TO_INT(g_hash_table_lookup(api->failing, r->id));
    g_mutex_unlock(&api->lock);
    if (errnum) {
        ifs_error_propagate(err, ifs_error_new(errnum, 0, NULL, "GET %s failed", r->id));
        return NULL;
    }
    detail = json_object_new_object();
    json_object_object_add(detail, "kernel", json_object_new_int(api->version));
    json_object_object_add(detail, "name", json_object_new_string("from-detail"));
    return detail;
}

static const IfsDetailSpec fake_spec = {
    .read = fake_read,
    /* merge: details.c's default */
    .requests_per_read = 1,
    .kept_problem = "details not refreshed, the detail fields (kernel, ...) are from the last "
                    "successful read",
    /* missing_problem: details.c's default too */
};

typedef struct {
    FakeApi api;
    IfsHttp *http;
    IfsDetails *details;
} Fixture;

static void fixture_set_up(Fixture *fx, guint rate_limit, guint max_age_s)
{
    IfsHttpConfig cfg = {
        .account = "acct",
        .origin = "http://127.0.0.1:9",
        .auth = IFS_AUTH_BEARER,
        .secret = "s",
        .rate_limit = rate_limit,
        .rate_window_s = 60,
    };

    g_mutex_init(&fx->api.lock);
    fx->api.reads = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    fx->api.failing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    fx->api.version = 1;
    fx->http = ifs_http_new(&cfg);
    ifs_budget_set_interval(ifs_http_budget(fx->http), 60);
    fx->details = ifs_details_new(&fake_spec, &fx->api, fx->http, 2, max_age_s);
}

static void fixture_tear_down(Fixture *fx)
{
    ifs_details_free(fx->details);
    ifs_http_free(fx->http);
    g_hash_table_destroy(fx->api.reads);
    g_hash_table_destroy(fx->api.failing);
    g_mutex_clear(&fx->api.lock);
}

/* A list of `n` servers "1".."n", each item {"id", "name", "status"}. */
static GPtrArray *list_of(guint n, const char *changed_id)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);

    for (guint i = 1; i <= n; i++) {
        char *id = g_strdup_printf("%u", i);
        json_object *item = json_object_new_object();

        json_object_object_add(item, "id", json_object_new_string(id));
        json_object_object_add(item, "name", json_object_new_string("from-list"));
        json_object_object_add(
            item, "status",
            json_object_new_string(g_strcmp0(id, changed_id) == 0 ? "offline" : "online"));
        g_ptr_array_add(list, ifs_resource_new("servers", id, item));
        g_free(id);
    }
    return list;
}

static guint reads_of(Fixture *fx, const char *id)
{
    return (guint)GPOINTER_TO_INT(g_hash_table_lookup(fx->api.reads, id));
}

static guint total_reads(Fixture *fx)
{
    GHashTableIter it;
    gpointer value;
    guint total = 0;

    g_hash_table_iter_init(&it, fx->api.reads);
    while (g_hash_table_iter_next(&it, NULL, &value))
        total += (guint)GPOINTER_TO_INT(value);
    return total;
}

/* A field of the sealed resource `i` of `list`, as text. */
static char *field(GPtrArray *list, guint i, const char *key)
{
    json_object *obj = ifs_resource_object(g_ptr_array_index(list, i));
    json_object *v = NULL;
    char *text;

    json_object_object_get_ex(obj, key, &v);
    text = g_strdup(v ? json_object_get_string(v) : NULL);
    json_object_put(obj);
    return text;
}

static void apply(Fixture *fx, GPtrArray *list)
{
    ifs_budget_refresh_begin(ifs_http_budget(fx->http));
    ifs_details_apply(fx->details, list);
}

/* Read once; the next refresh reads only the server whose item changed. */
static void test_only_changed_items_are_read_again(void)
{
    Fixture fx;
    GPtrArray *list;
    g_autofree char *kernel = NULL, *name = NULL;

    fixture_set_up(&fx, 0, 600);
    list = list_of(5, NULL);
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 5);
    kernel = field(list, 0, "kernel");
    name = field(list, 0, "name");
    g_assert_cmpstr(kernel, ==, "1");
    g_assert_cmpstr(name, ==, "from-detail"); /* a fresh detail's fields win */
    g_ptr_array_unref(list);

    fx.api.version = 2;
    list = list_of(5, "3");
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 6);
    g_assert_cmpuint(reads_of(&fx, "3"), ==, 2);
    g_clear_pointer(&kernel, g_free);
    kernel = field(list, 0, "kernel");
    g_assert_cmpstr(kernel, ==, "1"); /* kept */
    g_clear_pointer(&kernel, g_free);
    kernel = field(list, 2, "kernel");
    g_assert_cmpstr(kernel, ==, "2");
    g_ptr_array_unref(list);
    fixture_tear_down(&fx);
}

/* detail_max_age 0: every refresh reads every detail. */
static void test_max_age_zero_reads_every_time(void)
{
    Fixture fx;
    GPtrArray *list;

    fixture_set_up(&fx, 0, 0);
    for (int i = 0; i < 2; i++) {
        list = list_of(4, NULL);
        apply(&fx, list);
        g_ptr_array_unref(list);
    }
    g_assert_cmpuint(total_reads(&fx), ==, 8);
    fixture_tear_down(&fx);
}

/* 20 requests per 60 s at half for refresh, over a 60 s interval: room for
 * 9 reads (10 x 60/61) a refresh. The rest keep nothing yet, then come
 * next time, never-read ones before those already read. */
static void test_reads_are_spread_over_refreshes_by_the_budget(void)
{
    Fixture fx;
    GPtrArray *list;

    fixture_set_up(&fx, 20, 600);
    list = list_of(25, NULL);
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 9);
    g_assert_null(
        ((IfsResource *)g_ptr_array_index(list, 24))->problem); /* waiting is no failure */
    g_ptr_array_unref(list);
    /* The budget counts only requests sent; none was. */
    list = list_of(25, NULL);
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 18);
    for (guint i = 1; i <= 18; i++) {
        char *id = g_strdup_printf("%u", i);
        g_assert_cmpuint(reads_of(&fx, id), ==, 1);
        g_free(id);
    }
    g_ptr_array_unref(list);
    fixture_tear_down(&fx);
}

/* A failed read shows the last good detail under the list's fields, and
 * says so; without one, says that too. */
static void test_a_failed_read_keeps_the_last_good_detail(void)
{
    Fixture fx;
    GPtrArray *list;
    IfsResource *r;
    g_autofree char *kernel = NULL, *name = NULL;

    fixture_set_up(&fx, 0, 0);
    list = list_of(2, NULL);
    apply(&fx, list);
    g_ptr_array_unref(list);
    g_hash_table_insert(fx.api.failing, g_strdup("1"), GINT_TO_POINTER(EIO));
    list = list_of(3, NULL);
    g_hash_table_insert(fx.api.failing, g_strdup("3"), GINT_TO_POINTER(EIO));
    apply(&fx, list);
    r = g_ptr_array_index(list, 0);
    kernel = field(list, 0, "kernel");
    name = field(list, 0, "name");
    g_assert_cmpstr(kernel, ==, "1");
    g_assert_cmpstr(name, ==, "from-list"); /* an old detail's fields give way */
    g_assert_nonnull(strstr(r->problem,
                            "details not refreshed, the detail fields "
                            "(kernel, ...) are from the last successful read"));
    g_assert_nonnull(strstr(((IfsResource *)g_ptr_array_index(list, 2))->problem,
                            "details not read, only the list's fields are shown"));
    g_assert_null(((IfsResource *)g_ptr_array_index(list, 1))->problem);
    g_ptr_array_unref(list);
    fixture_tear_down(&fx);
}

/* An API that stopped answering is asked once, not once per resource. */
static void test_an_unreachable_api_is_not_asked_again_within_a_refresh(void)
{
    Fixture fx;
    GPtrArray *list;

    fixture_set_up(&fx, 0, 0);
    fx.details =
        (ifs_details_free(fx.details), ifs_details_new(&fake_spec, &fx.api, fx.http, 1, 0));
    for (guint i = 1; i <= 6; i++)
        g_hash_table_insert(fx.api.failing, g_strdup_printf("%u", i), GINT_TO_POINTER(ETIMEDOUT));
    list = list_of(6, NULL);
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 1);
    g_ptr_array_unref(list);
    fixture_tear_down(&fx);
}

/* After a remount the saved resources stand in until detail_max_age. */
static void test_restored_resources_stand_in_for_their_details(void)
{
    Fixture fx;
    GPtrArray *saved = list_of(3, NULL), *list;
    g_autofree char *kernel = NULL;

    fixture_set_up(&fx, 0, 600);
    for (guint i = 0; i < saved->len; i++) {
        IfsResource *r = g_ptr_array_index(saved, i);
        json_object_object_add(r->object, "kernel", json_object_new_int(7));
        ifs_resource_seal(r);
    }
    ifs_details_restore(fx.details, saved, g_get_real_time() / G_USEC_PER_SEC - 10);
    list = list_of(3, "2");
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 0);
    kernel = field(list, 1, "kernel");
    g_assert_cmpstr(kernel, ==, "7");
    g_ptr_array_unref(list);
    /* Old enough: read. */
    ifs_details_restore(fx.details, saved, g_get_real_time() / G_USEC_PER_SEC - 700);
    list = list_of(3, NULL);
    apply(&fx, list);
    g_assert_cmpuint(total_reads(&fx), ==, 3);
    g_ptr_array_unref(list);
    g_ptr_array_unref(saved);
    fixture_tear_down(&fx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/details/only-changed-items-are-read-again",
                    test_only_changed_items_are_read_again);
    g_test_add_func("/details/max-age-zero-reads-every-time", test_max_age_zero_reads_every_time);
    g_test_add_func("/details/spread-over-refreshes-by-the-budget",
                    test_reads_are_spread_over_refreshes_by_the_budget);
    g_test_add_func("/details/failed-read-keeps-the-last-good",
                    test_a_failed_read_keeps_the_last_good_detail);
    g_test_add_func("/details/unreachable-api-asked-once",
                    test_an_unreachable_api_is_not_asked_again_within_a_refresh);
    g_test_add_func("/details/restored-resources-stand-in",
                    test_restored_resources_stand_in_for_their_details);
    return g_test_run();
}
