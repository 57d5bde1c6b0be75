/* One provider's reading of its API, fed whatever the fuzzer makes of its
 * answers (script_http.c): list every resource and build the tree of each,
 * read one again, act on it and poll the operation, and parse a webhook
 * body. Built once per provider, FUZZ_PROVIDER naming it. */
#include "fuzz_util.h"
#include "script_http.h"

#include <string.h>

#ifndef FUZZ_PROVIDER
#error "FUZZ_PROVIDER names the provider type"
#endif

/* An account as the simulator's demo config has it, reading one item at
 * a time so that the answers are taken in one order. */
static const char *const configs[][2] = {
    {"hostup",    "detail_concurrency = 1\n" },
    {"heo",       "vps = vps_101 vps_102\n"  },
    {"dokploy",   "detail_concurrency = 1\n" },
    {"deployhq",  "user = demo@example.com\n"},
    {"hostatlas", "detail_concurrency = 1\n" },
};

static const IfsProviderType *type;
static IfsConfig *config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    GString *text = g_string_new(NULL);
    IfsError *err = NULL;

    (void)argc;
    (void)argv;
    type = ifs_provider_find(FUZZ_PROVIDER);
    g_string_append_printf(text,
                           "[fuzz]\ntype = %s\nurl = http://127.0.0.1:9\n"
                           "token = fuzz-token\n",
                           FUZZ_PROVIDER);
    for (gsize i = 0; i < G_N_ELEMENTS(configs); i++)
        if (strcmp(configs[i][0], FUZZ_PROVIDER) == 0)
            g_string_append(text, configs[i][1]);
    config = fuzz_load_config(text->str, text->len, &err);
    if (!type || !config) {
        g_printerr("fuzz_%s: %s\n", FUZZ_PROVIDER, err ? err->message : "no such provider");
        return 1;
    }
    g_string_free(text, TRUE);
    return 0;
}

/* The first verb of the first control file of `r`'s kind, performed; then
 * the operation it started polled once. */
static void act_on(gpointer state, IfsResource *r)
{
    for (const IfsControlSpec *spec = type->controls; spec && spec->kind; spec++) {
        IfsActionResult result = {0};
        IfsError *err = NULL;
        char *line, **verbs;
        IfsCommand *cmd;

        if (strcmp(spec->kind, r->kind) != 0)
            continue;
        line = ifs_control_commands_line(spec);
        verbs = g_strsplit_set(line, " \n", 2);
        cmd = ifs_control_parse(spec, verbs[0], strlen(verbs[0]), &err);
        g_strfreev(verbs);
        g_free(line);
        if (!cmd) {
            ifs_error_free(err);
            return;
        }
        if (type->act(state, r->kind, r->id, spec->file, cmd, &result, &err)) {
            if (result.resource)
                ifs_node_unref(fuzz_build_resource(result.resource));
            if (result.op_poll_url && type->poll) {
                IfsOpState op;
                char *status = NULL;

                if (!type->poll(state, result.op_poll_url, &op, &status, &err)) {
                    ifs_error_free(err);
                    err = NULL;
                }
                g_free(status);
            }
        }
        ifs_error_free(err);
        ifs_action_result_clear(&result);
        ifs_command_free(cmd);
        return;
    }
}

static void parse_webhook(void)
{
    char *kind = NULL, *id = NULL, *delivery = NULL;
    IfsError *err = NULL;
    const char *body;
    size_t len;

    if (!type->webhook || !script_next_body(&body, &len))
        return;
    type->webhook->parse(body, len, &kind, &id, &delivery, &err);
    g_free(kind);
    g_free(id);
    g_free(delivery);
    ifs_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const IfsAccountConfig *account = g_ptr_array_index(config->accounts, 0);
    GPtrArray *resources = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_resource_unref);
    IfsHttp *http;
    IfsError *err = NULL;
    IfsResource *first = NULL;
    gpointer state;

    script_load(data, size);
    http = ifs_provider_http_new(type, account);
    state = type->open(http, account, &err);
    if (!state)
        goto out;
    type->list(state, resources, &err);
    ifs_error_free(err);
    err = NULL;
    for (guint i = 0; i < resources->len; i++) {
        IfsResource *r = g_ptr_array_index(resources, i);

        ifs_node_unref(fuzz_build_resource(r));
        if (!first && r->id)
            first = r;
    }
    if (first) {
        IfsResource *again = type->fetch(state, first->kind, first->id, &err);

        if (again) {
            ifs_node_unref(fuzz_build_resource(again));
            ifs_resource_unref(again);
        }
        ifs_error_free(err);
        err = NULL;
        act_on(state, first);
    }
    parse_webhook();
    type->close(state);
out:
    ifs_error_free(err);
    g_ptr_array_free(resources, TRUE);
    ifs_http_free(http);
    script_clear();
    return 0;
}
