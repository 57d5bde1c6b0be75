/* The inventory (inventory.c), as the publisher shows it: one row per
 * resource with the columns the provider's table names, sorted by name,
 * empty where the API has nothing, the same rows as JSON, and the same
 * nodes until a resource changes. */
#include "pipeline_util.h"

#include <json-c/json.h>
#include <string.h>

#include "inventory.h"
#include "test_util.h"

typedef struct {
    Pipeline p;
} Fixture;

static void setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_init(&fx->p, NULL);
    pipeline_start_publisher(&fx->p);
}

static void teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_clear(&fx->p);
}

static void assert_text(Fixture *fx, const char *path, const char *expected)
{
    char *text = published_text(&fx->p, path);

    g_assert_cmpstr(text, ==, expected);
    g_free(text);
}

static void test_one_row_per_resource_sorted_by_name(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;

    (void)d;
    pipeline_set_resources(p,
        "vps_2", "{\"id\": \"vps_2\", \"name\": \"web-01\", \"power_state\": \"running\", "
                 "\"location\": {\"city\": \"Stockholm\"}}",
        "vps_1", "{\"id\": \"vps_1\", \"name\": \"db-01\", \"power_state\": null}",
        "vps_3", "{\"id\": \"vps_3\"}", NULL);
    publish_account(p->publisher, p->account);

    /* No name sorts first; a null or missing field is an empty column,
     * and so is the ip, which the fake's table does not name. */
    assert_text(fx, "inventory",
                "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n"
                "vps\tacct\tfake\tvps_3\t\t\t\t\tvps/acct/vps_3\n"
                "vps\tacct\tfake\tvps_1\tdb-01\t\t\t\tvps/acct/vps_1\n"
                "vps\tacct\tfake\tvps_2\tweb-01\trunning\t\tStockholm\tvps/acct/vps_2\n");
    assert_text(fx, "inventory.json",
                "[\n"
                "{\"kind\":\"vps\",\"account\":\"acct\",\"type\":\"fake\",\"id\":\"vps_3\","
                "\"name\":null,\"status\":null,\"ip\":null,\"region\":null,"
                "\"path\":\"vps/acct/vps_3\"},\n"
                "{\"kind\":\"vps\",\"account\":\"acct\",\"type\":\"fake\",\"id\":\"vps_1\","
                "\"name\":\"db-01\",\"status\":null,\"ip\":null,\"region\":null,"
                "\"path\":\"vps/acct/vps_1\"},\n"
                "{\"kind\":\"vps\",\"account\":\"acct\",\"type\":\"fake\",\"id\":\"vps_2\","
                "\"name\":\"web-01\",\"status\":\"running\",\"ip\":null,"
                "\"region\":\"Stockholm\",\"path\":\"vps/acct/vps_2\"}\n"
                "]\n");
}

static void test_no_resources_is_a_header_and_an_empty_array(Fixture *fx, gconstpointer d)
{
    (void)d;
    publish_account(fx->p.publisher, fx->p.account);
    assert_text(fx, "inventory", inventory_header);
    assert_text(fx, "inventory.json", "[]\n");
}

static void test_hostile_values_stay_one_row_and_valid_json(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *text;
    json_object *rows, *row;

    (void)d;
    pipeline_set_resources(p, "vps_1",
                           "{\"id\": \"vps_1\", \"name\": \"a\\tb\\nc \\\"q\\\" \\\\ \\u001b\\u0085z\"}",
                           NULL);
    publish_account(p->publisher, p->account);
    text = published_text(p, "inventory");
    /* Tabs, newlines, ESC and NEL are spaces: nine columns, two lines. */
    g_assert_cmpstr(strchr(text, '\n') + 1, ==,
                    "vps\tacct\tfake\tvps_1\ta b c \"q\" \\   z\t\t\t\tvps/acct/vps_1\n");
    g_free(text);
    text = published_text(p, "inventory.json");
    rows = json_tokener_parse(text);
    g_assert_nonnull(rows);
    g_assert_cmpuint(json_object_array_length(rows), ==, 1);
    row = json_object_array_get_idx(rows, 0);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(row, "name")), ==,
                    "a b c \"q\" \\   z");
    json_object_put(rows);
    g_free(text);
}

static void test_the_same_nodes_until_a_resource_changes(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    IfsNode *before, *json_before, *after, *json_after;

    (void)d;
    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-01\"}", NULL);
    publish_account(p->publisher, p->account);
    before = published_node(p, "inventory");
    json_before = published_node(p, "inventory.json");
    publish_account(p->publisher, p->account); /* a refresh that found nothing new */
    after = published_node(p, "inventory");
    json_after = published_node(p, "inventory.json");
    g_assert_true(before == after);
    g_assert_true(json_before == json_after);
    ifs_node_unref(after);
    ifs_node_unref(json_after);

    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-02\"}", NULL);
    publish_account(p->publisher, p->account);
    after = published_node(p, "inventory");
    g_assert_true(before != after);
    assert_text(fx, "inventory", "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n"
                                 "vps\tacct\tfake\tvps_1\tweb-02\t\t\t\tvps/acct/vps_1\n");
    ifs_node_unref(before);
    ifs_node_unref(json_before);
    ifs_node_unref(after);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/inventory/one-row-per-resource-sorted-by-name",
        test_one_row_per_resource_sorted_by_name);
    ADD("/inventory/no-resources", test_no_resources_is_a_header_and_an_empty_array);
    ADD("/inventory/hostile-values", test_hostile_values_stay_one_row_and_valid_json);
    ADD("/inventory/same-nodes-until-a-change", test_the_same_nodes_until_a_resource_changes);
#undef ADD
    return g_test_run();
}
