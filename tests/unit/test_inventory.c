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

static void test_one_row_per_resource_sorted_by_name(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;

    (void)d;
    pipeline_set_resources(
        p, "vps_2",
        "{\"id\": \"vps_2\", \"name\": \"web-01\", \"power_state\": \"running\", "
        "\"location\": {\"city\": \"Stockholm\"}}",
        "vps_1", "{\"id\": \"vps_1\", \"name\": \"db-01\", \"power_state\": null}", "vps_3",
        "{\"id\": \"vps_3\"}", NULL);
    publish_account(p->publisher, p->account);

    /* No name sorts first; a null or missing field is an empty column,
     * and so is the ip, which the fake's table does not name. */
    assert_published(&fx->p, "inventory",
                     "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n"
                     "vps\tacct\tfake\tvps_3\t\t\t\t\tvps/acct/vps_3\n"
                     "vps\tacct\tfake\tvps_1\tdb-01\t\t\t\tvps/acct/vps_1\n"
                     "vps\tacct\tfake\tvps_2\tweb-01\trunning\t\tStockholm\tvps/acct/vps_2\n");
    assert_published(&fx->p, "inventory.json",
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
    assert_published(&fx->p, "inventory", inventory_header);
    assert_published(&fx->p, "inventory.json", "[]\n");
}

static void test_hostile_values_stay_one_row_and_valid_json(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *text;
    json_object *rows, *row;

    (void)d;
    pipeline_set_resources(p, "vps_1",
                           "{\"id\": \"vps_1\", "
                           "\"name\": \"a\\tb\\nc \\\"q\\\" \\\\ \\u001b\\u0085z\"}",
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

/* inventory.json is rendered from the TSV, a piece at a time: every piece
 * is the same bytes as the whole, wherever it starts and ends. */
static void test_json_read_in_pieces_is_the_whole(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    IfsNode *json;
    char *whole, *piece;
    size_t size;
    json_object *parsed;
    static const size_t lens[] = {1, 2, 3, 7, 100, 4096, 131072};

    (void)d;
    g_mutex_lock(&p->account->lock);
    g_ptr_array_set_size(p->account->resources, 0);
    for (int i = 0; i < 300; i++) { /* several marks apart */
        char *id = g_strdup_printf("vps_%03d", i);
        char *text = g_strdup_printf("{\"id\": \"%s\", \"name\": \"n\\\"%d\", "
                                     "\"power_state\": %s}",
                                     id, i % 17, i % 3 ? "\"running\"" : "null");
        g_ptr_array_add(p->account->resources, pipeline_resource(id, text));
        g_free(text);
        g_free(id);
    }
    g_mutex_unlock(&p->account->lock);
    publish_account(p->publisher, p->account);
    json = published_node(p, "inventory.json");
    whole = node_text(json);
    size = ifs_node_size(json);
    g_assert_cmpuint(strlen(whole), ==, size);
    parsed = json_tokener_parse(whole);
    g_assert_nonnull(parsed);
    g_assert_cmpuint(json_object_array_length(parsed), ==, 300);
    json_object_put(parsed);
    piece = g_malloc(131072);
    for (gsize l = 0; l < G_N_ELEMENTS(lens); l++) {
        for (size_t off = 0; off < size; off += off < 10 ? 1 : 997) {
            size_t got = ifs_node_read(json, off, lens[l], piece);
            g_assert_cmpuint(got, ==, MIN(lens[l], size - off));
            g_assert_true(memcmp(piece, whole + off, got) == 0);
        }
    }
    g_assert_cmpuint(ifs_node_read(json, size, 10, piece), ==, 0);
    g_free(piece);
    g_free(whole);
    ifs_node_unref(json);
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
    assert_published(p, "inventory",
                     "kind\taccount\ttype\tid\tname\tstatus\tip\tregion\tpath\n"
                     "vps\tacct\tfake\tvps_1\tweb-02\t\t\t\tvps/acct/vps_1\n");
    ifs_node_unref(before);
    ifs_node_unref(json_before);
    ifs_node_unref(after);
}

static void assert_link(Fixture *fx, const char *path, const char *target)
{
    IfsNode *link = published_node(&fx->p, path);

    g_assert_nonnull(link);
    g_assert_cmpint(link->type, ==, IFS_NODE_SYMLINK);
    g_assert_cmpstr(ifs_node_data(link), ==, target);
    g_assert_cmpuint(ifs_node_size(link), ==, strlen(target));
    ifs_node_unref(link);
}

static void test_links_by_name_and_address_told_apart_when_shared(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *names;
    IfsNode *root;

    (void)d;
    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-01\"}", "vps_2",
                           "{\"id\": \"vps_2\", \"name\": \"web-01\"}", "vps_3",
                           "{\"id\": \"vps_3\", \"name\": \"../../etc\"}", "vps_4",
                           "{\"id\": \"vps_4\", \"name\": \"db-01\"}", "vps_5",
                           "{\"id\": \"vps_5\"}", NULL);
    publish_account(p->publisher, p->account);

    root = publisher_root(p->publisher);
    names = tree_names(root, "by-name");
    /* A name shared within the account gets its account and id; one no
     * other resource has stays as it is, escaped as every name is; no
     * name, no link. */
    g_assert_cmpstr(names, ==, "..%2F..%2Fetc db-01 web-01@acct@vps_1 web-01@acct@vps_2");
    g_free(names);
    names = tree_names(root, "by-ip"); /* the fake's table names no ip */
    g_assert_cmpstr(names, ==, "");
    g_free(names);
    ifs_node_unref(root);
    assert_link(fx, "by-name/db-01", "../vps/acct/vps_4");
    assert_link(fx, "by-name/web-01@acct@vps_2", "../vps/acct/vps_2");
    assert_link(fx, "by-name/..%2F..%2Fetc", "../vps/acct/vps_3");
}

/* A value is cut at 512 bytes in the inventory; a name whose link would
 * be longer than an entry name may be (255 bytes) gets no link. */
static void test_long_values_are_cut_and_make_no_link(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *long_name = g_strnfill(600, 'n');
    char *fits = g_strnfill(255, 'f');
    char *too_long = g_strnfill(256, 't');
    char *json1 = g_strdup_printf("{\"id\": \"vps_1\", \"name\": \"%s\"}", long_name);
    char *json2 = g_strdup_printf("{\"id\": \"vps_2\", \"name\": \"%s\"}", fits);
    char *json3 = g_strdup_printf("{\"id\": \"vps_3\", \"name\": \"%s\"}", too_long);
    char *inventory, *names, *row, **columns, *cut = g_strnfill(512, 'n');
    IfsNode *root;

    (void)d;
    pipeline_set_resources(p, "vps_1", json1, "vps_2", json2, "vps_3", json3, NULL);
    publish_account(p->publisher, p->account);

    inventory = published_text(p, "inventory");
    row = strstr(inventory, "\tvps_1\t");
    g_assert_nonnull(row);
    columns = g_strsplit(row + 1, "\t", 3); /* id, name, the rest */
    g_assert_cmpstr(columns[1], ==, cut); /* 512 of its 600 bytes */
    g_strfreev(columns);
    root = publisher_root(p->publisher);
    names = tree_names(root, "by-name");
    g_assert_cmpstr(names, ==, fits); /* 255 bytes: a link; 256 and 600: none */
    g_free(names);
    ifs_node_unref(root);
    g_free(inventory);
    g_free(cut);
    g_free(json3);
    g_free(json2);
    g_free(json1);
    g_free(too_long);
    g_free(fits);
    g_free(long_name);
}

/* /events after its time column, one "path change old new" per line. */
static char *events_after_time(Fixture *fx)
{
    char *text = published_text(&fx->p, "events");
    char **lines = g_strsplit(text, "\n", -1);
    GString *out = g_string_new(NULL);

    for (char **l = lines; *l && **l; l++) {
        const char *tab = strchr(*l, '\t');
        g_assert_nonnull(tab);
        g_assert_cmpuint(tab - *l, ==, strlen("2026-01-01T00:00:00Z"));
        g_string_append(out, tab + 1);
        g_string_append_c(out, '\n');
    }
    g_strfreev(lines);
    g_free(text);
    return g_string_free(out, FALSE);
}

static guint n_lines(const char *text)
{
    guint n = 0;

    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void set_account(Pipeline *p, gboolean has_data, const char *state, const char *error)
{
    g_mutex_lock(&p->account->lock);
    p->account->ever_ok = has_data;
    p->account->refresh_started = *state ? 1 : 0; /* a state of its own, after a refresh */
    g_free(p->account->state);
    p->account->state = g_strdup(state);
    g_free(p->account->last_error);
    p->account->last_error = g_strdup(error);
    g_mutex_unlock(&p->account->lock);
}

static void test_changes_between_publishes_are_events(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *events, *json;
    json_object *line;

    (void)d;
    set_account(p, TRUE, "ok", NULL);
    pipeline_set_resources(
        p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"running\"}",
        "vps_2", "{\"id\": \"vps_2\", \"name\": \"db-01\"}", NULL);
    publish_account(p->publisher, p->account);
    assert_published(&fx->p, "events", ""); /* the first look is no change */

    pipeline_set_resources(
        p, "vps_1",
        "{\"id\": \"vps_1\", \"name\": \"web-01\", \"power_state\": \"stopped\", "
        "\"location\": {\"city\": \"Oslo\"}}",
        "vps_3", "{\"id\": \"vps_3\", \"name\": \"new-01\"}", NULL);
    publish_account(p->publisher, p->account);
    events = events_after_time(fx);
    g_assert_cmpstr(events, ==,
                    "vps/acct/vps_3\tappeared\t-\tnew-01\n"
                    "vps/acct/vps_1\tstatus\trunning\tstopped\n"
                    "vps/acct/vps_1\tregion\t-\tOslo\n"
                    "vps/acct/vps_2\tdisappeared\tdb-01\t-\n");
    g_free(events);
    /* The same as JSON lines, null for none. */
    json = published_text(p, "events.ndjson");
    g_assert_cmpuint(n_lines(json), ==, 4);
    line = json_tokener_parse(strrchr(g_strchomp(json), '\n') + 1);
    g_assert_nonnull(line);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(line, "change")), ==,
                    "disappeared");
    g_assert_null(json_object_object_get(line, "new"));
    json_object_put(line);
    g_free(json);

    /* A publish that changed nothing adds nothing. */
    publish_account(p->publisher, p->account);
    events = events_after_time(fx);
    g_assert_cmpuint(n_lines(events), ==, 4);
    g_free(events);
}

static void test_an_accounts_first_data_is_no_flood_of_appearances(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *events;

    (void)d;
    set_account(p, FALSE, "", NULL); /* mounted: no refresh yet, nothing on disk */
    publish_account(p->publisher, p->account);
    set_account(p, TRUE, "ok", NULL);
    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-01\"}", NULL);
    publish_account(p->publisher, p->account);
    assert_published(&fx->p, "events", ""); /* nor is the first state a change */

    set_account(p, TRUE, "unauthorized", "HTTP 401 from the API: invalid key");
    publish_account(p->publisher, p->account);
    events = events_after_time(fx);
    g_assert_cmpstr(events, ==,
                    "providers/acct\tstate\tok\tunauthorized (HTTP 401 from the "
                    "API: invalid key)\n");
    g_free(events);
}

static void test_the_fields_events_fields_lists_are_compared_too(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    static const char *const fields[] = {"cpu_cores", "location/country", NULL};
    char *events;

    (void)d;
    p->cfg->events_fields = g_strdupv((char **)fields);
    set_account(p, TRUE, "ok", NULL);
    pipeline_set_resources(p, "vps_1",
                           "{\"id\": \"vps_1\", \"cpu_cores\": 2, "
                           "\"location\": {\"country\": \"SE\"}}",
                           NULL);
    publish_account(p->publisher, p->account);
    pipeline_set_resources(p, "vps_1",
                           "{\"id\": \"vps_1\", \"cpu_cores\": 4, "
                           "\"location\": {}}",
                           NULL);
    publish_account(p->publisher, p->account);
    events = events_after_time(fx);
    g_assert_cmpstr(events, ==,
                    "vps/acct/vps_1\tcpu_cores\t2\t4\n"
                    "vps/acct/vps_1\tlocation/country\tSE\t-\n");
    g_free(events);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/inventory/long-values-cut-no-link", test_long_values_are_cut_and_make_no_link);
    ADD("/inventory/one-row-per-resource-sorted-by-name", test_one_row_per_resource_sorted_by_name);
    ADD("/inventory/no-resources", test_no_resources_is_a_header_and_an_empty_array);
    ADD("/inventory/hostile-values", test_hostile_values_stay_one_row_and_valid_json);
    ADD("/inventory/same-nodes-until-a-change", test_the_same_nodes_until_a_resource_changes);
    ADD("/inventory/json-in-pieces", test_json_read_in_pieces_is_the_whole);
    ADD("/inventory/links", test_links_by_name_and_address_told_apart_when_shared);
    ADD("/inventory/events", test_changes_between_publishes_are_events);
    ADD("/inventory/first-data", test_an_accounts_first_data_is_no_flood_of_appearances);
    ADD("/inventory/events-fields", test_the_fields_events_fields_lists_are_compared_too);
#undef ADD
    return g_test_run();
}
