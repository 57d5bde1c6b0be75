/* The list of provider types, and what every provider shares. */
#include "infrafs/provider.h"
#include "infrafs/jsonparse.h"

#include <stddef.h>
#include <string.h>

static const IfsProviderType *const providers[] = {
    &ifs_provider_hostup,   &ifs_provider_heo,       &ifs_provider_dokploy,
    &ifs_provider_deployhq, &ifs_provider_hostatlas, NULL,
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

IfsHttp *ifs_provider_http_new(const IfsProviderType *type, const IfsAccountConfig *cfg)
{
    gboolean configured = cfg->rate_limit > 0;
    char *source = configured ? g_strdup("rate_limit in the config")
                              : g_strdup_printf("default for %s", type->schema.type);
    IfsHttp *http;
    IfsHttpConfig hc = {
        .account = cfg->name,
        .origin = cfg->url,
        .auth = type->auth,
        .auth_header = type->auth_header,
        .user = cfg->user,
        .secret = cfg->secret,
        .cacert = cfg->cacert,
        .timeout_ms = cfg->timeout_s > 0 ? (long)cfg->timeout_s * 1000 : 0,
        .rate_limit = configured ? cfg->rate_limit : type->default_rate_limit,
        .rate_window_s = configured ? cfg->rate_window_s : type->default_rate_window_s,
        .refresh_share = cfg->refresh_share,
        .rate_limit_source = source,
        .error_reader = type->error_reader,
    };

    http = ifs_http_new(&hc);
    g_free(source);
    return http;
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

    if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
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

/* ---- sealed texts, shared by content -------------------------------------- */

/* A refresh that lists a resource unchanged finds the text the tree already
 * holds and takes a reference to it, instead of keeping a second copy until
 * the two resources are compared: at 100,000 resources that copy was 60 MB
 * of the refresh's peak memory. */
typedef struct {
    const char *bytes; /* NUL-terminated */
    size_t len;
    guint hash;
} TextKey;

typedef struct {
    TextKey key; /* first: the table's keys are SharedTexts */
    guint refs; /* under texts_lock, which also guards the table */
    char bytes[];
} SharedText;

static GMutex texts_lock;
static GHashTable *texts; /* SharedText* (as TextKey*), by content */

static guint text_key_hash(gconstpointer k)
{
    return ((const TextKey *)k)->hash;
}

static gboolean text_key_equal(gconstpointer a, gconstpointer b)
{
    const TextKey *x = a, *y = b;

    return x->len == y->len && memcmp(x->bytes, y->bytes, x->len) == 0;
}

static guint hash_bytes(const char *s, size_t len)
{
    guint h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* `len` bytes of `s` as a shared, NUL-terminated text of the caller's. */
static const char *text_share(const char *s, size_t len)
{
    TextKey probe = {s, len, hash_bytes(s, len)};
    SharedText *t;

    g_mutex_lock(&texts_lock);
    if (!texts)
        texts = g_hash_table_new(text_key_hash, text_key_equal);
    t = g_hash_table_lookup(texts, &probe);
    if (t) {
        t->refs++;
    } else {
        t = g_malloc(sizeof *t + len + 1);
        memcpy(t->bytes, s, len);
        t->bytes[len] = '\0';
        t->key = (TextKey){t->bytes, len, probe.hash};
        t->refs = 1;
        g_hash_table_add(texts, t);
    }
    g_mutex_unlock(&texts_lock);
    return t->bytes;
}

static void text_release(const char *bytes)
{
    SharedText *t;

    if (!bytes)
        return;
    t = (SharedText *)(bytes - offsetof(SharedText, bytes));
    g_mutex_lock(&texts_lock);
    if (--t->refs == 0)
        g_hash_table_remove(texts, t);
    else
        t = NULL;
    g_mutex_unlock(&texts_lock);
    g_free(t);
}

static const char *text_of_object(json_object *obj, size_t *len)
{
    const char *view = ifs_json_compact_view(obj, len);

    return text_share(view, *len);
}

/* ---- resources --------------------------------------------------------- */

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
    text_release(r->text);
    text_release(r->extra_text);
    g_free(r);
}

void ifs_resource_seal(IfsResource *r)
{
    if (!r)
        return;
    if (r->object) {
        r->text = text_of_object(r->object, &r->text_len);
        json_object_put(r->object);
        r->object = NULL;
    }
    if (r->extra_files) {
        r->extra_text = text_of_object(r->extra_files, &r->extra_len);
        json_object_put(r->extra_files);
        r->extra_files = NULL;
    }
}

void ifs_resource_set_texts(IfsResource *r, const char *text, size_t len, const char *extra,
                            size_t extra_len)
{
    g_return_if_fail(!r->object && !r->text && !r->extra_files && !r->extra_text);
    r->text = text_share(text, len);
    r->text_len = len;
    if (extra) {
        r->extra_text = text_share(extra, extra_len);
        r->extra_len = extra_len;
    }
}

json_object *ifs_resource_object(const IfsResource *r)
{
    if (r->object)
        return json_object_get(r->object);
    return ifs_json_parse_compact(r->text, r->text_len);
}

json_object *ifs_resource_extra_files(const IfsResource *r)
{
    if (r->extra_files)
        return json_object_get(r->extra_files);
    return ifs_json_parse_compact(r->extra_text, r->extra_len);
}

static gboolean same_json(json_object *obj_a, const char *text_a, size_t len_a, json_object *obj_b,
                          const char *text_b, size_t len_b)
{
    char *owned_a = NULL, *owned_b = NULL;
    gboolean same;

    if (obj_a)
        text_a = owned_a = ifs_json_compact(obj_a, &len_a);
    if (obj_b)
        text_b = owned_b = ifs_json_compact(obj_b, &len_b);
    if (!text_a || !text_b)
        same = text_a == text_b;
    else /* sealed texts equal in content are one text */
        same = len_a == len_b && (text_a == text_b || memcmp(text_a, text_b, len_a) == 0);
    g_free(owned_a);
    g_free(owned_b);
    return same;
}

gboolean ifs_resource_same_object(const IfsResource *a, const IfsResource *b)
{
    return a == b || same_json(a->object, a->text, a->text_len, b->object, b->text, b->text_len);
}

gboolean ifs_resource_same(const IfsResource *a, const IfsResource *b)
{
    if (a == b)
        return TRUE;
    if (!a || !b || g_strcmp0(a->kind, b->kind) != 0 || g_strcmp0(a->id, b->id) != 0)
        return FALSE;
    return ifs_resource_same_object(a, b) &&
        same_json(a->extra_files, a->extra_text, a->extra_len, b->extra_files, b->extra_text,
                  b->extra_len);
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

gboolean ifs_account_number(const IfsAccountConfig *cfg, const char *key, guint64 min, guint64 max,
                            const char *unit, guint64 *out, IfsError **err)
{
    const char *text = ifs_account_extra(cfg, key);
    guint64 n;

    if (!text)
        return TRUE;
    if (!ifs_whole_number(text, min, max, &n)) {
        ifs_error_propagate(
            err,
            ifs_error_new(EINVAL, 0, NULL,
                          "account '%s': %s must be a whole number%s%s from %" G_GUINT64_FORMAT
                          " to %" G_GUINT64_FORMAT ", not '%s'",
                          cfg->name, key, unit ? " " : "", unit ? unit : "", min, max, text));
        return FALSE;
    }
    *out = n;
    return TRUE;
}
