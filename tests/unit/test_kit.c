/* Unit tests of src/providers/kit.c: what the providers share in reading
 * their answers' ids. (Its GETs are exercised through each provider's
 * tests and fuzz target.) */
#include "providers/kit.h"

#include "infrafs/jsonparse.h"

#include <string.h>

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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kit/usable-id", test_a_usable_id_names_the_resource);
    g_test_add_func("/kit/nul-in-id", test_an_id_with_a_nul_byte_is_refused_and_shown_escaped);
    g_test_add_func("/kit/missing-id", test_a_missing_or_non_string_id_is_no_problem_of_the_kit);
    return g_test_run();
}
