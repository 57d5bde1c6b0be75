/* Publishing (publish.c): the publisher thread swaps in what was built,
 * then tells the kernel, through the invalidator, exactly what changed and
 * what left; a pinned tree holds the swap back; an operation's finishing
 * publish shows its final text, wakes its readers, and invalidates its
 * wait file only once they replied. */
#include "pipeline_util.h"

#include <string.h>

#include "test_util.h"

#define VPS_1 "{\"id\": \"vps_1\", \"name\": \"web-01\"}"
#define VPS_2 "{\"id\": \"vps_2\", \"name\": \"db-01\"}"

typedef struct {
    Pipeline p;
} Fixture;

static void setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_init(&fx->p, NULL);
    pipeline_start_publisher(&fx->p);
}

static void teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    pipeline_clear(&fx->p);
}

static void assert_events(Fixture *fx, const char *expected)
{
    char *events = recorder_events(&fx->p.rec);

    g_assert_cmpstr(events, ==, expected);
    g_free(events);
}

static void test_a_swap_invalidates_what_changed(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    IfsNode *vps1;

    (void)d;
    g_assert_null(publisher_root(p->publisher));
    pipeline_set_resources(p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);
    publish_account(p->publisher, p->account);
    g_assert_cmpuint(publisher_generation(p->publisher), ==, 1);
    assert_published(&fx->p, "vps/acct/vps_1/name", "web-01\n");
    assert_events(fx, ""); /* nothing was there to invalidate */
    recorder_know(p, "vps/acct");
    recorder_know(p, "vps/acct/vps_1/name");
    recorder_know(p, "vps/acct/vps_1/json");
    vps1 = published_node(p, "vps/acct/vps_1");

    /* The same data again: a new root, nothing to tell the kernel. */
    publish_account(p->publisher, p->account);
    g_assert_cmpuint(publisher_generation(p->publisher), ==, 2);
    assert_events(fx, "");

    /* One field changed: that file and json, nothing else. */
    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-02\"}", "vps_2", VPS_2,
                           NULL);
    publish_account(p->publisher, p->account);
    assert_events(fx, "inode vps/acct/vps_1/json, inode vps/acct/vps_1/name");
    assert_published(&fx->p, "vps/acct/vps_1/name", "web-02\n");
    /* A new node at the same path (the same inode, by path). */
    {
        IfsNode *now = published_node(p, "vps/acct/vps_1");
        g_assert_false(now == vps1);
        ifs_node_unref(now);
    }
    recorder_clear(&p->rec);

    /* A resource gone: its entry, and the listing of its directory. */
    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-02\"}", NULL);
    publish_account(p->publisher, p->account);
    assert_events(fx, "entry vps/acct/vps_2, inode vps/acct");
    g_assert_null(published_node(p, "vps/acct/vps_2"));
    g_assert_cmpuint(publisher_generation(p->publisher), ==, 4);
    ifs_node_unref(vps1);
}

static gpointer publish_in_thread(gpointer data)
{
    Pipeline *p = data;

    publish_account(p->publisher, p->account);
    return NULL;
}

static void test_a_pinned_tree_holds_back_the_swap(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    GThread *thread;

    (void)d;
    pipeline_set_resources(p, "vps_1", VPS_1, NULL);
    publish_account(p->publisher, p->account);
    pipeline_set_resources(p, "vps_1", VPS_1, "vps_2", VPS_2, NULL);

    publisher_pin(p->publisher);
    thread = g_thread_new("publish", publish_in_thread, p);
    g_usleep(200 * 1000);
    g_assert_cmpuint(publisher_generation(p->publisher), ==, 1);
    g_assert_null(published_node(p, "vps/acct/vps_2"));
    publisher_unpin(p->publisher);
    g_thread_join(thread);
    g_assert_cmpuint(publisher_generation(p->publisher), ==, 2);
    assert_published(&fx->p, "vps/acct/vps_2/name", "db-01\n");
}

static void end_operation(Pipeline *p, Operation *op)
{
    g_mutex_lock(&p->model.op_lock);
    g_free(op->status_text);
    op->status_text = g_strdup("completed");
    op->state = IFS_OP_COMPLETED;
    g_mutex_unlock(&p->model.op_lock);
}

typedef struct {
    Pipeline *p;
    Operation *op;
} Reader;

/* A reader of operation/wait already counted in op->readers: waits until
 * done, then takes a while to reply, as the kernel's round trip does. */
static gpointer read_wait(gpointer data)
{
    Reader *r = data;
    Model *m = &r->p->model;

    g_mutex_lock(&m->op_lock);
    while (!r->op->done)
        g_cond_wait(&m->op_cond, &m->op_lock);
    g_mutex_unlock(&m->op_lock);
    recorder_note(&r->p->rec, "reader woke");
    g_usleep(100 * 1000);
    recorder_note(&r->p->rec, "reader replied");
    g_mutex_lock(&m->op_lock);
    r->op->readers--;
    g_cond_broadcast(&m->op_cond);
    g_mutex_unlock(&m->op_lock);
    return NULL;
}

static void test_a_finishing_publish_answers_readers_before_invalidating(Fixture *fx,
                                                                         gconstpointer d)
{
    Pipeline *p = &fx->p;
    Operation *op;
    Reader reader;
    GThread *thread;

    (void)d;
    pipeline_set_resources(p, "vps_1", VPS_1, NULL);
    op = pipeline_start_operation(p, "job-1", "fake://poll/job-1");
    publish_account(p->publisher, p->account);
    assert_published(&fx->p, "vps/acct/vps_1/operation/status", "queued\n");
    recorder_know(p, "vps/acct/vps_1/operation/status");
    recorder_know(p, "vps/acct/vps_1/operation/wait");

    g_mutex_lock(&p->model.op_lock);
    op->readers++;
    g_mutex_unlock(&p->model.op_lock);
    reader = (Reader){p, op};
    thread = g_thread_new("reader", read_wait, &reader);

    /* A publish that does not end the operation leaves its wait alone. */
    end_operation(p, op);
    g_mutex_lock(&p->account->lock);
    extras_get(p->account, "vps/vps_1")->gen++;
    g_mutex_unlock(&p->account->lock);
    publish_account(p->publisher, p->account);
    assert_events(fx, "inode vps/acct/vps_1/operation/status");
    g_assert_false(op->done);
    g_assert_false(op->shown_final);
    recorder_clear(&p->rec);

    publish_finishing(p->publisher, p->account, op);
    g_thread_join(thread);
    g_assert_true(op->done);
    g_assert_true(op->shown_final);
    g_assert_cmpint(op->readers, ==, 0);
    assert_published(&fx->p, "vps/acct/vps_1/operation/wait", "completed\n");
    assert_events(fx, "reader woke, reader replied, inode vps/acct/vps_1/operation/wait");
    operation_unref(op);
}

static void test_an_operation_whose_file_left_still_ends(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    Operation *op;

    (void)d;
    pipeline_set_resources(p, "vps_1", VPS_1, NULL);
    op = pipeline_start_operation(p, "job-1", "fake://poll/job-1");
    publish_account(p->publisher, p->account);
    end_operation(p, op);
    pipeline_set_resources(p, "vps_2", VPS_2, NULL); /* vps_1 was deleted */
    publish_finishing(p->publisher, p->account, op);
    g_assert_true(op->done);
    g_assert_null(published_node(p, "vps/acct/vps_1"));
    operation_unref(op);
}

/* A control write's publish shows its account at once; the inventory
 * follows a moment later, without another publish asked for. */
static void test_views_may_follow_a_control_writes_publish(Fixture *fx, gconstpointer d)
{
    Pipeline *p = &fx->p;
    char *inventory;
    gint64 deadline;

    (void)d;
    pipeline_set_resources(p, "vps_1", VPS_1, NULL);
    publish_account(p->publisher, p->account);
    inventory = published_text(p, "inventory");
    g_assert_nonnull(strstr(inventory, "\tweb-01\t"));
    g_free(inventory);

    pipeline_set_resources(p, "vps_1", "{\"id\": \"vps_1\", \"name\": \"web-02\"}", NULL);
    publish_account_views_later(p->publisher, p->account);
    assert_published(p, "vps/acct/vps_1/name", "web-02\n");
    inventory = published_text(p, "inventory");
    g_assert_nonnull(strstr(inventory, "\tweb-01\t"));
    g_free(inventory);
    deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    for (;;) {
        inventory = published_text(p, "inventory");
        if (strstr(inventory, "\tweb-02\t") || g_get_monotonic_time() > deadline)
            break;
        g_free(inventory);
        g_usleep(20 * 1000);
    }
    g_assert_nonnull(strstr(inventory, "\tweb-02\t"));
    g_free(inventory);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/publish/invalidates-what-changed", test_a_swap_invalidates_what_changed);
    ADD("/publish/pin", test_a_pinned_tree_holds_back_the_swap);
    ADD("/publish/finishing-answers-readers-first",
        test_a_finishing_publish_answers_readers_before_invalidating);
    ADD("/publish/finished-op-without-file", test_an_operation_whose_file_left_still_ends);
    ADD("/publish/views-may-follow-a-control-write",
        test_views_may_follow_a_control_writes_publish);
    return g_test_run();
}
