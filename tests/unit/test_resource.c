/* Resources as providers hand them over: sealing into compact text, and
 * texts shared by content (a refresh that finds a resource unchanged holds
 * one copy of its text, not two). */
#include "infrafs/jsonparse.h"
#include "infrafs/provider.h"
#include "test_util.h"

#include <string.h>

static IfsResource *sealed(const char *id, const char *json)
{
    IfsResource *r = ifs_resource_new("vps", id, json_tokener_parse(json));

    g_assert_nonnull(r->object);
    ifs_resource_seal(r);
    return r;
}

static void test_seal_keeps_compact_text(void)
{
    IfsResource *r = sealed("1", "{ \"name\" : \"web/01\", \"n\": [1, 2] }");
    json_object *back;

    g_assert_null(r->object);
    g_assert_cmpstr(r->text, ==, "{\"name\":\"web/01\",\"n\":[1,2]}");
    g_assert_cmpuint(r->text_len, ==, strlen(r->text));
    g_assert_null(r->extra_text);
    back = ifs_resource_object(r);
    g_assert_cmpstr(ifs_json_string_field(back, "name"), ==, "web/01");
    json_object_put(back);
    ifs_resource_unref(r);
}

static void test_equal_texts_are_one_text(void)
{
    IfsResource *a = sealed("1", "{\"status\":\"running\"}");
    IfsResource *b = sealed("2", "{ \"status\": \"running\" }");
    IfsResource *c = sealed("3", "{\"status\":\"stopped\"}");
    IfsResource *loaded = ifs_resource_new("vps", "4", NULL);
    const char *shared = a->text;

    g_assert_true(a->text == b->text);
    g_assert_true(a->text != c->text);
    ifs_resource_set_texts(loaded, "{\"status\":\"stopped\"}xyz", c->text_len, NULL, 0);
    g_assert_true(loaded->text == c->text);
    g_assert_null(loaded->extra_text);
    g_assert_true(ifs_resource_same_object(a, b));
    g_assert_false(ifs_resource_same_object(a, c));

    /* The text outlives whichever resource goes first. */
    ifs_resource_unref(a);
    g_assert_cmpstr(b->text, ==, "{\"status\":\"running\"}");
    g_assert_true(b->text == shared);
    ifs_resource_unref(b);
    ifs_resource_unref(c);
    g_assert_cmpstr(loaded->text, ==, "{\"status\":\"stopped\"}");
    ifs_resource_unref(loaded);

    /* Gone with its last resource: a new one of the same content is new. */
    a = sealed("1", "{\"status\":\"running\"}");
    g_assert_cmpstr(a->text, ==, "{\"status\":\"running\"}");
    ifs_resource_unref(a);
}

static void test_extra_files_are_shared_too(void)
{
    IfsResource *a = ifs_resource_new("deployments", "d1", json_tokener_parse("{}"));
    IfsResource *b = ifs_resource_new("deployments", "d2", json_tokener_parse("{}"));

    a->extra_files = json_tokener_parse("{\"log\":\"done\\n\"}");
    b->extra_files = json_tokener_parse("{\"log\":\"done\\n\"}");
    ifs_resource_seal(a);
    ifs_resource_seal(b);
    g_assert_cmpstr(a->extra_text, ==, "{\"log\":\"done\\n\"}");
    g_assert_true(a->extra_text == b->extra_text);
    g_assert_true(a->text == b->text);
    g_assert_false(ifs_resource_same(a, b)); /* other ids */
    ifs_resource_unref(a);
    ifs_resource_unref(b);
}

/* Providers seal on their worker threads (HostAtlas's detail readers). */
static gpointer seal_many(gpointer data)
{
    guint seed = GPOINTER_TO_UINT(data);

    for (guint i = 0; i < 2000; i++) {
        char *json = g_strdup_printf("{\"n\":%u}", (i + seed) % 50);
        IfsResource *r = sealed("x", json);

        g_assert_cmpstr(r->text, ==, json);
        ifs_resource_unref(r);
        g_free(json);
    }
    return NULL;
}

static void test_sealing_from_many_threads(void)
{
    GThread *threads[4];
    IfsResource *held = sealed("h", "{\"n\":7}");

    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("seal", seal_many, GUINT_TO_POINTER(i * 13));
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_assert_cmpstr(held->text, ==, "{\"n\":7}");
    ifs_resource_unref(held);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/resource/seal", test_seal_keeps_compact_text);
    g_test_add_func("/resource/shared-texts", test_equal_texts_are_one_text);
    g_test_add_func("/resource/shared-extra-texts", test_extra_files_are_shared_too);
    g_test_add_func("/resource/threads", test_sealing_from_many_threads);
    return g_test_run();
}
