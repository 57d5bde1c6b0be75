/* A scripted HTTP/1.1 server for the unit tests (test_server.c): each
 * request gets, in this order, the refusal when it lacks the required
 * header, the answer routed to its request line, the next scripted step,
 * or the fallback (500 "no scripted response" unless changed). Every
 * request is recorded, head and body. */
#pragma once
#include <glib.h>

typedef struct TestServer TestServer;

TestServer *test_server_start(void);
void test_server_stop(TestServer *srv);
/* "http://127.0.0.1:PORT" */
const char *test_server_origin(TestServer *srv);

/* Steps, used in order. `raw` (taken) is sent as it is, after `delay_ms`;
 * NULL answers nothing; the connection is closed after it if asked. */
void test_server_add_step(TestServer *srv, char *raw, gsize raw_len, guint delay_ms,
                          gboolean close_after);
/* A well-formed answer; `extra_headers` lines end in "\r\n". */
void test_server_reply(TestServer *srv, int status, const char *extra_headers,
                       const char *content_type, const char *body);
/* The same, closing the connection after it. */
void test_server_reply_closing(TestServer *srv, int status, const char *content_type,
                               const char *body);
void test_server_reply_raw(TestServer *srv, const char *raw, gboolean close_after);
/* Close the connection once the request has arrived, answering nothing. */
void test_server_drop(TestServer *srv);
/* "{}" after `delay_ms`. */
void test_server_reply_late(TestServer *srv, guint delay_ms);

/* Every request whose line is `request` ("GET /api/x?y=1") gets this JSON
 * answer, as often as it comes. */
void test_server_route(TestServer *srv, const char *request, int status, const char *body);
/* A request without `header_line` ("x-api-key: K\r\n") gets this answer. */
void test_server_require(TestServer *srv, const char *header_line, int status, const char *body);
/* The answer when no route or step is left. */
void test_server_otherwise(TestServer *srv, int status, const char *body);

guint test_server_request_count(TestServer *srv);
/* Request `i`, head and body as received (a copy). */
char *test_server_request(TestServer *srv, guint i);
/* How many requests were "LINE" or "LINE\nBODY" starting with `prefix`. */
guint test_server_count(TestServer *srv, const char *prefix);
guint test_server_connection_count(TestServer *srv);
/* Scripted steps not used yet. */
guint test_server_steps_left(TestServer *srv);
