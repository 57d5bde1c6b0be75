/* Pushed changes (see webhook.h). */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#define SIGNATURE_PREFIX "sha256="
/* Longest a sender may take over one request. */
#define CONNECTION_TIMEOUT_S 10
#define CONNECTIONS_MAX 32

struct Webhook {
    Actions *actions;
    Account *account;
    const IfsWebhookSpec *spec;
    struct MHD_Daemon *daemon;
    gint ready; /* atomic: the store started */

    GMutex seen_lock; /* guards what follows */
    GHashTable *seen; /* delivery ids, a set */
    GQueue *seen_order; /* the same ids, oldest first (owned by `seen`) */
};

/* One request's body, as it arrives. */
typedef struct {
    GString *body;
    gboolean too_big;
} Upload;

static gboolean parse_listen(const char *text, struct sockaddr_storage *ss)
{
    const char *colon = strrchr(text, ':');
    char *host;
    guint port;
    gboolean ok = FALSE;

    if (!colon)
        return FALSE;
    port = (guint)g_ascii_strtoull(colon + 1, NULL, 10);
    host = g_strndup(text, (gsize)(colon - text));
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        host[strlen(host) - 1] = '\0';
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        ok = inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        ok = inet_pton(AF_INET, host, &in4->sin_addr) == 1;
    }
    g_free(host);
    return ok;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result result;

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    result = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return result;
}

gboolean webhook_signature_ok(const char *secret, const char *header, const char *body, size_t len)
{
    GHmac *hmac;
    const char *mine;
    const char *theirs;
    unsigned diff = 0;

    if (!header || g_ascii_strncasecmp(header, SIGNATURE_PREFIX, strlen(SIGNATURE_PREFIX)) != 0)
        return FALSE;
    theirs = header + strlen(SIGNATURE_PREFIX);
    hmac = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret));
    g_hmac_update(hmac, (const guchar *)body, (gssize)len);
    mine = g_hmac_get_string(hmac); /* lower-case hex, 64 digits */
    if (strlen(theirs) != strlen(mine)) {
        g_hmac_unref(hmac);
        return FALSE;
    }
    for (size_t i = 0; mine[i]; i++)
        diff |= (unsigned)(g_ascii_tolower(theirs[i]) ^ mine[i]);
    g_hmac_unref(hmac);
    return diff == 0;
}

/* TRUE the first time `id` is seen; the oldest are forgotten past
 * WEBHOOK_SEEN_MAX. */
static gboolean first_delivery(Webhook *w, const char *id)
{
    gboolean first;

    g_mutex_lock(&w->seen_lock);
    first = !g_hash_table_contains(w->seen, id);
    if (first) {
        char *copy = g_strdup(id);
        g_hash_table_add(w->seen, copy);
        g_queue_push_tail(w->seen_order, copy);
        if (g_queue_get_length(w->seen_order) > WEBHOOK_SEEN_MAX)
            g_hash_table_remove(w->seen, g_queue_pop_head(w->seen_order));
    }
    g_mutex_unlock(&w->seen_lock);
    return first;
}

static enum MHD_Result handle(Webhook *w, struct MHD_Connection *c, const GString *body)
{
    const char *name = w->account->cfg->name;
    const char *header_delivery = w->spec->delivery_header
        ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, w->spec->delivery_header)
        : NULL;
    char *kind = NULL, *id = NULL, *delivery = NULL;
    IfsError *err = NULL;
    enum MHD_Result result;

    if (!webhook_signature_ok(
            w->account->cfg->webhook_secret,
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, w->spec->signature_header), body->str,
            body->len)) {
        g_message("account '%s': webhook refused: missing or wrong %s (is "
                  "webhook_secret_file the secret the sender signs with?)",
                  name, w->spec->signature_header);
        return answer(c, MHD_HTTP_UNAUTHORIZED, "bad or missing signature\n");
    }
    if (!w->spec->parse(body->str, body->len, &kind, &id, &delivery, &err)) {
        g_message("account '%s': webhook refused: %s", name, err->message);
        result = answer(c, MHD_HTTP_BAD_REQUEST, "not an event\n");
        ifs_error_free(err);
        return result;
    }
    if (header_delivery && *header_delivery) {
        g_free(delivery);
        delivery = g_strdup(header_delivery);
    }
    if (delivery && !first_delivery(w, delivery)) {
        g_debug("account '%s': webhook delivery %s seen before", name, delivery);
        result = answer(c, MHD_HTTP_OK, "delivery seen before, ignored\n");
    } else if (!kind) {
        result = answer(c, MHD_HTTP_OK, "nothing to read again, ignored\n");
    } else {
        g_info("account '%s': webhook: reading %s %s again", name, kind, id);
        actions_reread(w->actions, w->account, kind, id);
        result = answer(c, MHD_HTTP_ACCEPTED, "accepted\n");
    }
    g_free(kind);
    g_free(id);
    g_free(delivery);
    return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    Webhook *w = cls;
    Upload *up = *req_cls;

    (void)url;
    (void)version;
    if (!up) { /* the headers: say no early where the body does not matter */
        const char *length =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only\n");
        if (length && g_ascii_strtoull(length, NULL, 10) > WEBHOOK_BODY_MAX)
            return answer(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
        up = g_new0(Upload, 1);
        up->body = g_string_new(NULL);
        *req_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (up->body->len + *upload_data_size > WEBHOOK_BODY_MAX)
            up->too_big = TRUE;
        else
            g_string_append_len(up->body, upload_data, (gssize)*upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (up->too_big)
        return answer(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
    if (!g_atomic_int_get(&w->ready))
        return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
    return handle(w, c, up->body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode code)
{
    Upload *up = *req_cls;

    (void)cls;
    (void)c;
    (void)code;
    if (up) {
        g_string_free(up->body, TRUE);
        g_free(up);
    }
    *req_cls = NULL;
}

Webhook *webhook_new(Actions *ac, Account *a, IfsError **err)
{
    struct sockaddr_storage ss;
    Webhook *w;

    if (!a->cfg->webhook_listen)
        return NULL;
    if (!a->type->webhook || !parse_listen(a->cfg->webhook_listen, &ss)) {
        ifs_error_propagate(
            err,
            ifs_error_new(EINVAL, 0, NULL,
                          "account '%s': "
                          "webhook_listen = %s: %s",
                          a->cfg->name, a->cfg->webhook_listen,
                          a->type->webhook ? "not ADDRESS:PORT" : "this type sends no webhooks"));
        return NULL;
    }
    w = g_new0(Webhook, 1);
    w->actions = ac;
    w->account = a;
    w->spec = a->type->webhook;
    g_mutex_init(&w->seen_lock);
    w->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w->seen_order = g_queue_new();
    w->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL,
        NULL, on_request, w, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
        MHD_OPTION_END);
    if (!w->daemon) {
        int e = errno;
        ifs_error_propagate(
            err,
            ifs_error_new(e ? e : EADDRINUSE, 0, NULL,
                          "account '%s': cannot listen for webhooks on %s: %s; is the "
                          "port in use, or the address not this machine's?",
                          a->cfg->name, a->cfg->webhook_listen, g_strerror(e ? e : EADDRINUSE)));
        webhook_free(w);
        return NULL;
    }
    return w;
}

void webhook_start(Webhook *w)
{
    if (w)
        g_atomic_int_set(&w->ready, 1);
}

void webhook_free(Webhook *w)
{
    if (!w)
        return;
    if (w->daemon)
        MHD_stop_daemon(w->daemon);
    g_queue_free(w->seen_order);
    g_hash_table_destroy(w->seen);
    g_mutex_clear(&w->seen_lock);
    g_free(w);
}
