/* One account of a provider type on its own scripted server
 * (provider_fixture.h). */
#include "provider_fixture.h"

void provider_fixture_open(ProviderFixture *fx, const IfsProviderType *type, const char *name,
                           const char *key, const char *refusal, const char *missing,
                           const char *const *extra)
{
    IfsHttpConfig hc = {0};
    char *credential = type->auth == IFS_AUTH_HEADER
        ? g_strdup_printf("%s: %s\r\n", type->auth_header, key)
        : g_strdup_printf("Authorization: Bearer %s\r\n", key);

    g_assert_true(type->auth == IFS_AUTH_HEADER || type->auth == IFS_AUTH_BEARER);
    fx->type = type;
    fx->server = test_server_start();
    test_server_require(fx->server, credential, 401, refusal);
    test_server_otherwise(fx->server, 404, missing);
    hc.account = name;
    hc.origin = test_server_origin(fx->server);
    hc.auth = type->auth;
    hc.auth_header = type->auth_header;
    hc.error_reader = type->error_reader;
    hc.secret = key;
    hc.max_retries = 1;
    fx->http = ifs_http_new(&hc);
    fx->cfg.name = (char *)name;
    fx->cfg.extra = g_hash_table_new(g_str_hash, g_str_equal);
    for (gsize i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        g_hash_table_insert(fx->cfg.extra, (gpointer)extra[i], (gpointer)extra[i + 1]);
    fx->state = type->open(fx->http, &fx->cfg, NULL);
    g_assert_nonnull(fx->state);
    g_free(credential);
}

void provider_fixture_teardown(ProviderFixture *fx, gconstpointer data)
{
    (void)data;
    fx->type->close(fx->state);
    ifs_http_free(fx->http);
    g_hash_table_destroy(fx->cfg.extra);
    test_server_stop(fx->server);
}

GPtrArray *provider_fixture_list(ProviderFixture *fx, IfsError **err)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);

    if (!fx->type->list(fx->state, out, err))
        g_ptr_array_set_size(out, 0);
    return out;
}
