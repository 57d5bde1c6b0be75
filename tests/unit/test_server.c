/* A scripted HTTP/1.1 server in a thread of the test process, shared by
 * the unit tests (test_server.h). One connection at a time, kept alive
 * until the client moves on to a new one. */
#include "test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One scripted answer, used for the next request that arrives. */
typedef struct {
    char *raw; /* exact bytes to send; NULL: close without answering */
    gsize raw_len;
    guint delay_ms; /* wait this long before answering */
    gboolean close_after;
} Step;

struct TestServer {
    int listen_fd;
    int wake[2]; /* written to by test_server_stop() */
    char *origin;
    GThread *thread;
    GMutex lock; /* guards everything below */
    GPtrArray *steps; /* Step* */
    guint next_step;
    GHashTable *routes; /* "METHOD /path?query" -> Step* */
    char *required; /* a header line every request must carry, or NULL */
    Step *refusal; /* the answer to a request without it */
    Step *exhausted; /* the answer when no step or route is left */
    GPtrArray *requests; /* char*: request head and body as received */
    guint connections;
};

static void step_free(gpointer p)
{
    Step *step = p;

    g_free(step->raw);
    g_free(step);
}

static Step *step_new(char *raw, guint delay_ms, gboolean close_after)
{
    Step *step = g_new0(Step, 1);

    step->raw = raw;
    step->delay_ms = delay_ms;
    step->close_after = close_after;
    return step;
}

/* A well-formed answer; `extra_headers` lines end in "\r\n". */
static char *answer_text(int status, const char *extra_headers, const char *content_type,
                         const char *body, gboolean close)
{
    return g_strdup_printf("HTTP/1.1 %d Scripted\r\n%s%s%s%s%s"
                           "Content-Length: %zu\r\n\r\n%s",
                           status, extra_headers ? extra_headers : "",
                           content_type ? "Content-Type: " : "", content_type ? content_type : "",
                           content_type ? "\r\n" : "", close ? "Connection: close\r\n" : "",
                           strlen(body), body);
}

static gboolean woken(TestServer *srv)
{
    struct pollfd p = {.fd = srv->wake[0], .events = POLLIN};

    return poll(&p, 1, 0) > 0;
}

/* 1: fd readable, 0: timeout, -1: the server is being stopped. */
static int wait_readable(TestServer *srv, int fd, int timeout_ms)
{
    struct pollfd p[2] = {
        {.fd = srv->wake[0], .events = POLLIN},
        {.fd = fd,           .events = POLLIN},
    };
    int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);

    if (n < 0 || (p[0].revents & POLLIN))
        return -1;
    return n > 0 ? 1 : 0;
}

static int accept_connection(TestServer *srv)
{
    int fd;

    if (wait_readable(srv, srv->listen_fd, -1) < 0)
        return -1;
    fd = accept(srv->listen_fd, NULL, NULL);
    g_mutex_lock(&srv->lock);
    srv->connections++;
    g_mutex_unlock(&srv->lock);
    return fd;
}

static gsize content_length_of(const char *head, gsize head_len)
{
    char *lower = g_ascii_strdown(head, (gssize)head_len);
    const char *cl = strstr(lower, "\r\ncontent-length:");
    gsize len = cl ? (gsize)g_ascii_strtoull(cl + 17, NULL, 10) : 0;

    g_free(lower);
    return len;
}

/* Waits until the idle connection `fd` or the listening socket has
 * something; TRUE when a new connection arrived first (actions always open
 * a fresh connection, leaving the keep-alive one idle). */
static gboolean new_connection_while_idle(TestServer *srv, int fd)
{
    struct pollfd p[3] = {
        {.fd = fd,             .events = POLLIN},
        {.fd = srv->listen_fd, .events = POLLIN},
        {.fd = srv->wake[0],   .events = POLLIN},
    };

    if (poll(p, 3, -1) <= 0 || (p[0].revents & (POLLIN | POLLHUP)) || (p[2].revents & POLLIN))
        return FALSE;
    return (p[1].revents & POLLIN) != 0;
}

/* The next complete request on `fd` (head and body), or NULL when the
 * client closed the connection or the server is being stopped. */
static char *read_request(TestServer *srv, int fd, GString *in, gboolean kept_alive)
{
    for (;;) {
        const char *end = strstr(in->str, "\r\n\r\n");
        char buf[4096];
        ssize_t n;

        if (end) {
            gsize head_len = (gsize)(end - in->str) + 4;
            gsize total = head_len + content_length_of(in->str, head_len);

            if (in->len >= total) {
                char *request = g_strndup(in->str, total);

                g_string_erase(in, 0, (gssize)total);
                return request;
            }
        }
        if (kept_alive && in->len == 0 && new_connection_while_idle(srv, fd))
            return NULL; /* the client moved on: serve its new connection */
        if (wait_readable(srv, fd, -1) <= 0)
            return NULL;
        n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return NULL;
        g_string_append_len(in, buf, n);
    }
}

static void send_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

        if (n <= 0)
            return; /* the client gave up (e.g. timed out): fine */
        data += n;
        len -= (gsize)n;
    }
}

/* "GET /path?query": the request line without the protocol. */
static char *request_key(const char *request)
{
    const char *end = strstr(request, " HTTP/");
    const char *line_end = strstr(request, "\r\n");

    if (!end || (line_end && line_end < end))
        end = line_end ? line_end : request + strlen(request);
    return g_strndup(request, (gsize)(end - request));
}

/* Records the request and returns the step that answers it: a request
 * without the required header gets the refusal, then a route, then the
 * next step in order. */
static const Step *take_step(TestServer *srv, char *request)
{
    char *key = request_key(request);
    const Step *step;

    g_mutex_lock(&srv->lock);
    g_ptr_array_add(srv->requests, request);
    if (srv->required && !strstr(request, srv->required))
        step = srv->refusal;
    else if ((step = g_hash_table_lookup(srv->routes, key)))
        ;
    else if (srv->next_step < srv->steps->len)
        step = g_ptr_array_index(srv->steps, srv->next_step++);
    else
        step = srv->exhausted;
    g_mutex_unlock(&srv->lock);
    g_free(key);
    return step;
}

static void answer(TestServer *srv, int fd, const Step *step)
{
    if (step->delay_ms && wait_readable(srv, -1, (int)step->delay_ms) < 0)
        return;
    if (step->raw)
        send_all(fd, step->raw, step->raw_len ? step->raw_len : strlen(step->raw));
}

static gpointer serve(gpointer data)
{
    TestServer *srv = data;
    GString *in = g_string_new(NULL);
    int fd = -1;
    guint served = 0; /* requests answered on fd */

    while (!woken(srv)) {
        char *request;
        const Step *step;

        if (fd < 0) {
            fd = accept_connection(srv);
            served = 0;
            g_string_truncate(in, 0);
            if (fd < 0)
                break;
        }
        request = read_request(srv, fd, in, served > 0);
        if (!request) {
            close(fd);
            fd = -1;
            continue;
        }
        step = take_step(srv, request);
        answer(srv, fd, step);
        served++;
        if (!step->raw || step->close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    g_string_free(in, TRUE);
    return NULL;
}

TestServer *test_server_start(void)
{
    TestServer *srv = g_new0(TestServer, 1);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof addr;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(srv->listen_fd, >=, 0);
    g_assert_cmpint(bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
    g_assert_cmpint(listen(srv->listen_fd, 16), ==, 0);
    g_assert_cmpint(getsockname(srv->listen_fd, (struct sockaddr *)&addr, &addr_len), ==, 0);
    g_assert_cmpint(pipe(srv->wake), ==, 0);
    srv->origin = g_strdup_printf("http://127.0.0.1:%u", ntohs(addr.sin_port));
    g_mutex_init(&srv->lock);
    srv->steps = g_ptr_array_new_with_free_func(step_free);
    srv->routes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, step_free);
    srv->exhausted =
        step_new(answer_text(500, NULL, "text/plain", "no scripted response", TRUE), 0, TRUE);
    srv->requests = g_ptr_array_new_with_free_func(g_free);
    srv->thread = g_thread_new("test-http-server", serve, srv);
    return srv;
}

void test_server_stop(TestServer *srv)
{
    g_assert_cmpint(write(srv->wake[1], "x", 1), ==, 1);
    g_thread_join(srv->thread);
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    g_ptr_array_free(srv->steps, TRUE);
    g_hash_table_destroy(srv->routes);
    g_free(srv->required);
    if (srv->refusal)
        step_free(srv->refusal);
    step_free(srv->exhausted);
    g_ptr_array_free(srv->requests, TRUE);
    g_mutex_clear(&srv->lock);
    g_free(srv->origin);
    g_free(srv);
}

void test_server_add_step(TestServer *srv, char *raw, gsize raw_len, guint delay_ms,
                          gboolean close_after)
{
    Step *step = step_new(raw, delay_ms, close_after);

    step->raw_len = raw_len;
    g_mutex_lock(&srv->lock);
    g_ptr_array_add(srv->steps, step);
    g_mutex_unlock(&srv->lock);
}

void test_server_reply(TestServer *srv, int status, const char *extra_headers,
                       const char *content_type, const char *body)
{
    test_server_add_step(srv, answer_text(status, extra_headers, content_type, body, FALSE), 0, 0,
                         FALSE);
}

void test_server_reply_closing(TestServer *srv, int status, const char *content_type,
                               const char *body)
{
    test_server_add_step(srv, answer_text(status, NULL, content_type, body, TRUE), 0, 0, TRUE);
}

void test_server_route(TestServer *srv, const char *request, int status, const char *body)
{
    Step *step = step_new(answer_text(status, NULL, "application/json", body, TRUE), 0, TRUE);

    g_mutex_lock(&srv->lock);
    g_hash_table_replace(srv->routes, g_strdup(request), step);
    g_mutex_unlock(&srv->lock);
}

void test_server_require(TestServer *srv, const char *header_line, int status, const char *body)
{
    g_mutex_lock(&srv->lock);
    g_free(srv->required);
    srv->required = g_strdup(header_line);
    if (srv->refusal)
        step_free(srv->refusal);
    srv->refusal = step_new(answer_text(status, NULL, "application/json", body, TRUE), 0, TRUE);
    g_mutex_unlock(&srv->lock);
}

void test_server_otherwise(TestServer *srv, int status, const char *body)
{
    g_mutex_lock(&srv->lock);
    step_free(srv->exhausted);
    srv->exhausted = step_new(answer_text(status, NULL, "application/json", body, TRUE), 0, TRUE);
    g_mutex_unlock(&srv->lock);
}

void test_server_reply_raw(TestServer *srv, const char *raw, gboolean close_after)
{
    test_server_add_step(srv, g_strdup(raw), 0, 0, close_after);
}

void test_server_drop(TestServer *srv)
{
    test_server_add_step(srv, NULL, 0, 0, TRUE);
}

void test_server_reply_late(TestServer *srv, guint delay_ms)
{
    test_server_add_step(srv, g_strdup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), 0,
                         delay_ms, TRUE);
}

guint test_server_request_count(TestServer *srv)
{
    guint n;

    g_mutex_lock(&srv->lock);
    n = srv->requests->len;
    g_mutex_unlock(&srv->lock);
    return n;
}

char *test_server_request(TestServer *srv, guint i)
{
    char *copy;

    g_mutex_lock(&srv->lock);
    g_assert_cmpuint(i, <, srv->requests->len);
    copy = g_strdup(g_ptr_array_index(srv->requests, i));
    g_mutex_unlock(&srv->lock);
    return copy;
}

guint test_server_connection_count(TestServer *srv)
{
    guint n;

    g_mutex_lock(&srv->lock);
    n = srv->connections;
    g_mutex_unlock(&srv->lock);
    return n;
}

guint test_server_count(TestServer *srv, const char *prefix)
{
    guint n = 0;

    g_mutex_lock(&srv->lock);
    for (guint i = 0; i < srv->requests->len; i++) {
        const char *request = g_ptr_array_index(srv->requests, i);
        const char *body = strstr(request, "\r\n\r\n");
        char *key = request_key(request);
        char *seen = g_strconcat(key, body && body[4] ? "\n" : "", body ? body + 4 : "", NULL);

        n += g_str_has_prefix(seen, prefix);
        g_free(seen);
        g_free(key);
    }
    g_mutex_unlock(&srv->lock);
    return n;
}

guint test_server_steps_left(TestServer *srv)
{
    guint n;

    g_mutex_lock(&srv->lock);
    n = srv->steps->len - srv->next_step;
    g_mutex_unlock(&srv->lock);
    return n;
}

const char *test_server_origin(TestServer *srv)
{
    return srv->origin;
}
