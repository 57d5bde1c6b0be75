/* Pushed changes: an HTTP listener per account that sets webhook_listen
 * (libmicrohttpd, on its own thread). A POST whose signature checks out
 * (HMAC-SHA256 of the raw body under the account's webhook secret,
 * compared in constant time) is answered at once, and the one resource it
 * names is read again by the actions' workers and published: the tree and
 * /events change without waiting for a refresh or listing anything.
 *
 * Answers: 202 accepted, 200 for a delivery already seen (retries are
 * deduplicated on the delivery id, the last WEBHOOK_SEEN_MAX kept) or an
 * event that names nothing shown, 400 for a body that is no event, 401 for
 * a missing or wrong signature, 405 for anything but POST, 413 for a body
 * over WEBHOOK_BODY_MAX, 503 until the store has started. Nothing is read
 * from the API for any answer but 202. */
#pragma once
#include "actions.h"

#define WEBHOOK_BODY_MAX (256 * 1024)
#define WEBHOOK_SEEN_MAX 4096

typedef struct Webhook Webhook;

/* Listens on the account's webhook_listen (NULL without error when it has
 * none). NULL with *err when the address cannot be bound. */
Webhook *webhook_new(Actions *ac, Account *a, IfsError **err);
/* Requests are acted on from now (the actions' workers run). */
void webhook_start(Webhook *w);
/* Stops listening; waits for requests in progress. */
void webhook_free(Webhook *w);

/* Whether `header` ("sha256=<hex>") is the HMAC-SHA256 of the body under
 * `secret`, compared in time that does not depend on where they differ. */
gboolean webhook_signature_ok(const char *secret, const char *header, const char *body, size_t len);
