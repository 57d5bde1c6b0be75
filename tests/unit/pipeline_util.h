/* What the unit tests of the store's pipeline modules share: one account
 * on the fake provider in a model of its own, with the stages a test
 * starts (a publisher, refreshers, actions), a recording invalidator, and
 * reading the tree by path. */
#pragma once
#include <glib.h>

#include "actions.h"
#include "fake_provider.h"
#include "test_util.h"
#include "refresh.h"

#define PIPE_ACCOUNT "acct"
#define PIPE_SECRET "s3cr3t-pipeline-token"

/* What the publisher asked the kernel to drop, and notes a test adds, in
 * the order they happened: "inode <path>" (the path in the tree when it
 * was recorded, or "inode ?<node id>"), "entry <parent path>/<name>", or
 * the note's text. */
typedef struct {
    GMutex lock;
    GPtrArray *events; /* char* */
    GHashTable *paths; /* node id -> path, of the nodes the test looks up */
} Recorder;

typedef struct {
    FakeProvider *fake;
    IfsAccountConfig *cfg;
    Model model;
    Account *account;
    Publisher *publisher; /* made by pipeline_init, started on demand */
    IfsInodes *inodes; /* what the "kernel" holds: see recorder_know */
    Refreshers refreshers;
    Actions actions;
    Recorder rec;
} Pipeline;

/* The fake is made before the account (open() finds it by name); `opts`
 * may be NULL for the defaults of a test (no cache, hourly refreshes). */
void pipeline_init(Pipeline *p, const IfsStoreOptions *opts);
void pipeline_start_publisher(Pipeline *p);
void pipeline_start_refreshers(Pipeline *p);
void pipeline_start_actions(Pipeline *p);
void pipeline_clear(Pipeline *p);

/* A sealed resource of the fake's kind from a JSON object's text. */
IfsResource *pipeline_resource(const char *id, const char *json);
/* Sets the account's resources as a refresh would (under its lock). */
void pipeline_set_resources(Pipeline *p, const char *id1, const char *json1,
                            ...) G_GNUC_NULL_TERMINATED;

/* An operation on vps_1 with its wait file, as an action leaves it: job
 * `job`, polled at `poll_url` (both copied). The caller's reference. */
Operation *pipeline_start_operation(Pipeline *p, const char *job, const char *poll_url);
/* tree_node and tree_text (test_util.h) in the publisher's current tree. */
IfsNode *published_node(Pipeline *p, const char *path);
char *published_text(Pipeline *p, const char *path);
/* The file at `path` of the publisher's current tree holds `expected`. */
void assert_published(Pipeline *p, const char *path, const char *expected);

void recorder_note(Recorder *r, const char *text);
void recorder_clear(Recorder *r);
/* The events so far, joined by ", ". */
char *recorder_events(Recorder *r);
/* Looks up the node at `path` in the current tree, component by component,
 * as the kernel would (so the publisher tells about it), and names each
 * component's node id in events. */
void recorder_know(Pipeline *p, const char *path);
