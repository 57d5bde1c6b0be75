/* The list of provider types, and what every provider shares. */
#include "infrafs/provider.h"

#include <string.h>

static const IfsProviderType *const providers[] = {
    &ifs_provider_hostup,
    &ifs_provider_heo,
    &ifs_provider_dokploy,
    &ifs_provider_deployhq,
    &ifs_provider_hostatlas,
    NULL,
};

const IfsProviderType *const *ifs_provider_all(void)
{
    return providers;
}

const IfsProviderType *ifs_provider_find(const char *type)
{
    for (const IfsProviderType *const *p = providers; *p; p++)
        if (type && strcmp((*p)->schema.type, type) == 0)
            return *p;
    return NULL;
}

const IfsAccountSchema *const *ifs_provider_schemas(void)
{
    static const IfsAccountSchema *schemas[G_N_ELEMENTS(providers)];
    static gsize ready;

    if (g_once_init_enter(&ready)) {
        for (gsize i = 0; providers[i]; i++)
            schemas[i] = &providers[i]->schema;
        g_once_init_leave(&ready, 1);
    }
    return schemas;
}

const IfsControlSpec *ifs_provider_control(const IfsProviderType *p, const char *kind,
                                           const char *file)
{
    for (const IfsControlSpec *c = p->controls; c && c->kind; c++)
        if (strcmp(c->kind, kind) == 0 && strcmp(c->file, file) == 0)
            return c;
    return NULL;
}

const char *ifs_json_string_field(json_object *obj, const char *key)
{
    json_object *v;
    const char *text;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    text = json_object_get_string(v);
    return strlen(text) == (size_t)json_object_get_string_len(v) ? text : NULL;
}

char *ifs_api_path(const char *prefix, const char *id, const char *suffix)
{
    char *escaped;
    char *path;

    /* '.' is unreserved, so g_uri_escape_string keeps it; but an id of "."
     * or ".." would be a dot segment that libcurl and servers resolve
     * (/api/v2/vps/../details is /api/v2/details). Encoded, it is a name. */
    if (*id && strspn(id, ".") == strlen(id)) {
        GString *dots = g_string_new(NULL);

        for (const char *p = id; *p; p++)
            g_string_append(dots, "%2E");
        escaped = g_string_free(dots, FALSE);
    } else {
        escaped = g_uri_escape_string(id, NULL, FALSE);
    }
    path = g_strconcat(prefix, escaped, suffix, NULL);
    g_free(escaped);
    return path;
}

IfsResource *ifs_resource_new(const char *kind, const char *id, json_object *object)
{
    IfsResource *r = g_new0(IfsResource, 1);

    g_atomic_ref_count_init(&r->ref);
    r->kind = g_strdup(kind);
    r->id = g_strdup(id);
    r->object = object;
    return r;
}

IfsResource *ifs_resource_ref(IfsResource *r)
{
    g_atomic_ref_count_inc(&r->ref);
    return r;
}

void ifs_resource_unref(IfsResource *r)
{
    if (!r || !g_atomic_ref_count_dec(&r->ref))
        return;
    g_free(r->kind);
    g_free(r->id);
    g_free(r->problem);
    json_object_put(r->object);
    json_object_put(r->extra_files);
    g_free(r);
}

void ifs_action_result_clear(IfsActionResult *r)
{
    g_free(r->message);
    g_free(r->op_status);
    g_free(r->op_job_id);
    g_free(r->op_poll_url);
    ifs_resource_unref(r->resource);
    memset(r, 0, sizeof *r);
}
