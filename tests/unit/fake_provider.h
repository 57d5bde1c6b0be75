/* An in-process provider for unit tests of the store: its resources live
 * in memory and the test changes them between refreshes, makes list()
 * fail or hold, and counts every call. It sends no HTTP request (open()
 * ignores its `http`).
 *
 * Kind "vps". Controls of a VPS:
 *   power   start | stop [force] | restart: sets the VPS's "power_state"
 *           (running, stopped, running) and "last_command" (the verb)
 *   delete  1: removes the VPS (resource_gone)
 * With operations on (fake_provider_start_operations), a power command
 * instead starts an asynchronous operation that poll() reports.
 *
 * A store account of type fake_provider_type finds its fake by account
 * name: create the fake with fake_provider_new() before the store opens
 * the account. Every function is safe from any thread: list() runs on the
 * store's refresher, fetch() on its workers, act() on the writing thread. */
#pragma once
#include <glib.h>

#include "infrafs/config.h"
#include "infrafs/provider.h"

extern const IfsProviderType fake_provider_type;

typedef struct FakeProvider FakeProvider;

typedef enum {
    FAKE_OPEN,
    FAKE_CLOSE,
    FAKE_LIST,
    FAKE_FETCH,
    FAKE_ACT,
    FAKE_POLL,
    FAKE_N_CALLS,
} FakeCall;

/* Registers the fake of account `account` (one per name at a time). */
FakeProvider *fake_provider_new(const char *account);
/* The test's reference; the store's accounts hold their own. */
void fake_provider_unref(FakeProvider *f);

/* Adds the resource, or replaces it whole (it keeps its place in the
 * listing order). `json` is an object's text. */
void fake_provider_put(FakeProvider *f, const char *kind, const char *id, const char *json);
/* Adds the resource after the others even when one of that kind and id is
 * there already (an API that lists an id twice); the functions that take
 * an id act on the first. */
void fake_provider_append(FakeProvider *f, const char *kind, const char *id, const char *json);
/* Sets one member of an existing resource to `json_value` (a JSON text:
 * "\"web-02\"", "4", "null"). */
void fake_provider_set_field(FakeProvider *f, const char *kind, const char *id, const char *field,
                             const char *json_value);
/* FALSE when there was no such resource. */
gboolean fake_provider_remove(FakeProvider *f, const char *kind, const char *id);

/* From now on every list() fails with this error (partial FALSE), or lists
 * everything and reports it as a partial refresh (partial TRUE), until
 * called with errnum 0. */
void fake_provider_fail_lists(FakeProvider *f, int errnum, const char *message, gboolean partial);
/* From now on every act() fails with this error, until errnum 0. */
void fake_provider_fail_acts(FakeProvider *f, int errnum, int http_status, const char *code,
                             const char *message);
/* Whether act() hands back the resource as it is after the action (the
 * default), so the store shows it at once; otherwise the store re-reads
 * it with fetch(). */
void fake_provider_set_act_returns_resource(FakeProvider *f, gboolean returns);

/* From now on a power command changes nothing at once: act() answers
 * 202 with an operation ("queued", job "job-<n>", polled at
 * "fake://poll/job-<n>"), and poll() reports it "in_progress" until
 * fake_provider_end_operations; the VPS changes when it ends. */
void fake_provider_start_operations(FakeProvider *f, gboolean start);
/* Every operation polled from now on ends: COMPLETED (the power command
 * takes effect) or FAILED (status "failed"). */
void fake_provider_end_operations(FakeProvider *f, IfsOpState state);

/* While held, list() takes its copy of the resources (what the API
 * answered) and then waits until released, or fails with ETIMEDOUT after
 * 10 s so that a broken test cannot hang the store. */
void fake_provider_hold_lists(FakeProvider *f, gboolean hold);
/* Waits up to timeout_ms for a list() to be held; TRUE once one is. */
gboolean fake_provider_wait_list_held(FakeProvider *f, guint timeout_ms);

/* Calls made so far, counted as they start. */
guint fake_provider_calls(FakeProvider *f, FakeCall which);
/* Waits up to timeout_ms until at least `n` calls of `which` were made. */
gboolean fake_provider_wait_calls(FakeProvider *f, FakeCall which, guint n, guint timeout_ms);
/* "vps/vps_1 power stop force": the last command act() received, or NULL
 * (g_free it). */
char *fake_provider_last_act(FakeProvider *f);

/* A config for an account of the fake type (what ifs_config_load would
 * give): url "fake://<name>", refresh every hour so that only the test's
 * refreshes run, and `secret`, which the store must keep out of sight. */
IfsAccountConfig *fake_account_config(const char *name, const char *secret);
void fake_account_config_free(IfsAccountConfig *cfg);
