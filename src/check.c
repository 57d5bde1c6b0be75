/* `infrafs --check`: every account of a config tried with one cheap
 * request, a verdict line each (check.h). */
#include "check.h"

#include "infrafs/provider.h"

#include <errno.h>
#include <stdio.h>

/* One account's verdict line, and whether it is ok. */
static gboolean check_account(const IfsAccountConfig *acct)
{
    const IfsProviderType *type = ifs_provider_find(acct->type);
    IfsHttp *http = ifs_provider_http_new(type, acct);
    IfsError *err = NULL;
    IfsHttpResponse *resp = ifs_http_request(http, "GET", type->check_path, NULL, &err);
    gboolean ok = resp != NULL;

    if (ok && type->check_proves_key) {
        printf("%s: ok\n", acct->name);
    } else if (ok) {
        printf("%s: ok (the API answers; %s has no read endpoint to try a key on, so the "
               "first control write will tell)\n",
               acct->name, acct->type);
    } else if (err->errnum == EACCES) {
        printf("%s: unauthorized: %s; fix the secret (%s)\n", acct->name, err->message,
               acct->secret_source);
    } else if (err->errnum == EHOSTUNREACH || err->errnum == ETIMEDOUT) {
        printf("%s: unreachable: %s; check url = %s and the network\n", acct->name, err->message,
               acct->url);
    } else {
        printf("%s: error: %s\n", acct->name, err->message);
    }
    ifs_http_response_free(resp);
    ifs_error_free(err);
    ifs_http_free(http);
    return ok;
}

int check_accounts(const char *config_path)
{
    IfsError *err = NULL;
    IfsConfig *config = ifs_config_load(config_path, ifs_provider_schemas(), &err);
    int bad = 0;

    ifs_config_forget_env_secrets();
    if (!config) {
        fprintf(stderr, "infrafs: %s\n", err->message);
        ifs_error_free(err);
        return 1;
    }
    for (guint i = 0; i < config->accounts->len; i++)
        bad += !check_account(g_ptr_array_index(config->accounts, i));
    ifs_config_free(config);
    return bad ? 1 : 0;
}
