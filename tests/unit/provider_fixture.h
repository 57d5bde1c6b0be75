/* One account of a provider type, opened on its own scripted server
 * (test_server.h), for the providers' unit tests (provider_fixture.c). */
#pragma once
#include "infrafs/provider.h"

#include "test_server.h"

typedef struct {
    const IfsProviderType *type;
    TestServer *server;
    IfsHttp *http;
    IfsAccountConfig cfg;
    gpointer state;
} ProviderFixture;

/* Account `name` of `type` with secret `key` on a new server that refuses
 * (with `refusal`, a JSON body, as 401) any request without the type's
 * credential and answers `missing` (JSON, 404) when no route or step is
 * left. `extra` is NULL or NULL-terminated provider key, value pairs. A
 * read fails after one attempt, so that a missing answer fails fast. */
void provider_fixture_open(ProviderFixture *fx, const IfsProviderType *type, const char *name,
                           const char *key, const char *refusal, const char *missing,
                           const char *const *extra);
/* Closes the account and stops the server (a g_test_add teardown). */
void provider_fixture_teardown(ProviderFixture *fx, gconstpointer data);
/* type->list into a new array; empty when it failed (*err says why). */
GPtrArray *provider_fixture_list(ProviderFixture *fx, IfsError **err);
