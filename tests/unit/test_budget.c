/* The request budget (src/budget.c): pacing by window and priority, what
 * the API's answers say is left, with the clock in the test's hands. */
#include "infrafs/budget.h"
#include "infrafs/parallel.h"

#define S G_USEC_PER_SEC
/* An arbitrary start, far from 0 on both clocks. */
#define T0_US ((gint64)1000 * S)
#define T0_S ((gint64)1800000000)

static gint64 send_at(IfsBudget *b, IfsPriority p, gint64 us)
{
    return ifs_budget_try_send(b, p, TRUE, us, T0_S + (us - T0_US) / S);
}

/* Sends `n` requests at `us`, each answered at once without headers;
 * asserts they all went. */
static void send_n(IfsBudget *b, IfsPriority p, guint n, gint64 us)
{
    for (guint i = 0; i < n; i++) {
        g_assert_cmpint(send_at(b, p, us), ==, 0);
        ifs_budget_answered(b, -1, -1, -1, FALSE, T0_S);
    }
}

/* 10 per 10 s at 50 %: background gets 5, and then waits until the first
 * of them has left the window (10 s, plus a second of slack). */
static void test_background_keeps_to_its_share(void)
{
    IfsBudget *b = ifs_budget_new(10, 10, 50, "test");
    gint64 wait;

    send_n(b, IFS_PRIORITY_BACKGROUND, 5, T0_US);
    wait = send_at(b, IFS_PRIORITY_BACKGROUND, T0_US + 2 * S);
    g_assert_cmpint(wait, ==, 9 * S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_BACKGROUND, T0_US + 11 * S), ==, 0);
    ifs_budget_free(b);
}

/* What background left is the users': they go while background waits,
 * up to the limit less one; then they wait too. */
static void test_users_are_never_behind_background(void)
{
    IfsBudget *b = ifs_budget_new(10, 10, 50, "test");
    IfsBudgetStats st;

    send_n(b, IFS_PRIORITY_BACKGROUND, 5, T0_US);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_BACKGROUND, T0_US), >, 0);
    send_n(b, IFS_PRIORITY_USER, 4, T0_US + S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US + S), ==, 10 * S);
    ifs_budget_stats(b, T0_US + S, &st);
    g_assert_cmpuint(st.used_background, ==, 5);
    g_assert_cmpuint(st.used_user, ==, 4);
    g_assert_cmpuint(st.background_cap, ==, 5);
    g_assert_cmpuint(st.sent_background, ==, 5);
    g_assert_cmpuint(st.sent_user, ==, 4);
    ifs_budget_free(b);
}

/* Remaining 0 until a Reset: everyone waits for it (unless told to stop
 * heeding the API), and after it a full limit is there again. */
static void test_an_exhausted_api_holds_everyone_until_reset(void)
{
    IfsBudget *b = ifs_budget_new(0, 0, 50, NULL);
    IfsBudgetStats st;

    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    ifs_budget_answered(b, 100, 0, T0_S + 30, TRUE, T0_S);
    g_assert_cmpint(ifs_budget_exhausted_until(b, T0_S), ==, T0_S + 30);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US + 10 * S), ==, 20 * S);
    g_assert_cmpint(ifs_budget_try_send(b, IFS_PRIORITY_USER, FALSE, T0_US + 10 * S, T0_S + 10), ==,
                    0);
    ifs_budget_answered(b, -1, -1, -1, FALSE, T0_S + 10);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US + 30 * S), ==, 0);
    ifs_budget_stats(b, T0_US + 30 * S, &st);
    g_assert_cmpuint(st.limit, ==, 100);
    g_assert_cmpstr(st.source, ==, "X-RateLimit-Limit");
    g_assert_cmpuint(st.answers_429, ==, 1);
    ifs_budget_free(b);
}

/* When the API says little is left (another client on the same key),
 * background leaves the users' part of it and waits for the Reset. */
/* Found by fuzz_headers: the headers may say anything. */
static void test_absurd_headers_neither_overflow_nor_hold_for_years(void)
{
    IfsBudget *b = ifs_budget_new(0, 0, 50, NULL);

    ifs_budget_answered(b, 335555555555555555, 0, G_MAXINT64, FALSE, T0_S);
    g_assert_cmpint(ifs_budget_exhausted_until(b, T0_S), ==, T0_S + 24 * 3600);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_BACKGROUND, T0_US), ==, (gint64)24 * 3600 * S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, (gint64)24 * 3600 * S);
    ifs_budget_free(b);
}

static void test_background_leaves_the_users_part_of_what_is_left(void)
{
    IfsBudget *b = ifs_budget_new(0, 0, 50, NULL);

    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    ifs_budget_answered(b, 10, 5, T0_S + 4, FALSE, T0_S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_BACKGROUND, T0_US), ==, 4 * S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    ifs_budget_free(b);
}

/* Within one window an answer saying more is left (overtaken by later
 * ones) does not raise it; Remaining does not count requests in flight. */
static void test_answers_only_lower_what_is_left_within_a_window(void)
{
    IfsBudget *b = ifs_budget_new(1000, 1, 50, "test");

    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    /* The first answer: 1 left, and one request still in flight takes it. */
    ifs_budget_answered(b, -1, 1, T0_S + 5, FALSE, T0_S);
    ifs_budget_answered(b, -1, 4, T0_S + 5, FALSE, T0_S);
    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 5 * S);
    ifs_budget_free(b);
}

/* A configured limit stays whatever the answers say. */
static void test_a_configured_limit_is_kept(void)
{
    IfsBudget *b = ifs_budget_new(300, 60, 25, "rate_limit in the config");
    IfsBudgetStats st;

    g_assert_cmpint(send_at(b, IFS_PRIORITY_USER, T0_US), ==, 0);
    ifs_budget_answered(b, 5000, 4999, T0_S + 60, FALSE, T0_S);
    ifs_budget_stats(b, T0_US, &st);
    g_assert_cmpuint(st.limit, ==, 300);
    g_assert_cmpuint(st.window_s, ==, 60);
    g_assert_cmpuint(st.background_cap, ==, 75);
    g_assert_cmpint(st.remaining, ==, 4999);
    g_assert_cmpstr(st.source, ==, "rate_limit in the config");
    ifs_budget_free(b);
}

/* The time a refresh of N requests needs at the share: N over the
 * background's requests per (window + slack). */
static void test_seconds_for_a_refresh(void)
{
    IfsBudget *b = ifs_budget_new(600, 60, 50, "test");
    IfsBudget *unknown = ifs_budget_new(0, 0, 50, NULL);

    g_assert_cmpfloat_with_epsilon(ifs_budget_seconds_for(b, 1000), 1000.0 * 61 / 300, 0.01);
    g_assert_cmpfloat(ifs_budget_seconds_for(unknown, 1000), ==, 0);
    ifs_budget_free(b);
    ifs_budget_free(unknown);
}

static void record_priority(guint i, gpointer data)
{
    ((IfsPriority *)data)[i] = ifs_priority_get();
}

/* A thread's priority is its own; concurrent workers take their caller's. */
static void test_priority_is_per_thread_and_inherited(void)
{
    IfsPriority seen[4] = {IFS_PRIORITY_USER, IFS_PRIORITY_USER, IFS_PRIORITY_USER,
                           IFS_PRIORITY_USER};

    g_assert_cmpint(ifs_priority_get(), ==, IFS_PRIORITY_USER);
    g_assert_cmpint(ifs_priority_set(IFS_PRIORITY_BACKGROUND), ==, IFS_PRIORITY_USER);
    ifs_run_concurrently(4, 4, record_priority, seen);
    for (guint i = 0; i < 4; i++)
        g_assert_cmpint(seen[i], ==, IFS_PRIORITY_BACKGROUND);
    ifs_priority_set(IFS_PRIORITY_USER);
}

/* A thread following a source takes whatever it holds at each request,
 * and so do the workers it starts: a refresh a user asks for while it
 * runs is raised from another thread. */
static void test_a_followed_priority_can_be_raised_from_outside(void)
{
    gint source = IFS_PRIORITY_BACKGROUND;
    IfsPriority seen[2];

    ifs_priority_follow(&source);
    g_assert_cmpint(ifs_priority_get(), ==, IFS_PRIORITY_BACKGROUND);
    g_atomic_int_set(&source, IFS_PRIORITY_USER);
    g_assert_cmpint(ifs_priority_get(), ==, IFS_PRIORITY_USER);
    ifs_run_concurrently(2, 2, record_priority, seen);
    g_assert_cmpint(seen[0], ==, IFS_PRIORITY_USER);
    g_assert_cmpint(seen[1], ==, IFS_PRIORITY_USER);
    g_assert_cmpint(ifs_priority_set(IFS_PRIORITY_BACKGROUND), ==, IFS_PRIORITY_USER);
    g_atomic_int_set(&source, IFS_PRIORITY_USER);
    g_assert_cmpint(ifs_priority_get(), ==, IFS_PRIORITY_BACKGROUND); /* no longer followed */
    ifs_priority_set(IFS_PRIORITY_USER);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/budget/background-keeps-to-its-share", test_background_keeps_to_its_share);
    g_test_add_func("/budget/users-are-never-behind-background",
                    test_users_are_never_behind_background);
    g_test_add_func("/budget/exhausted-api-holds-everyone-until-reset",
                    test_an_exhausted_api_holds_everyone_until_reset);
    g_test_add_func("/budget/absurd-headers",
                    test_absurd_headers_neither_overflow_nor_hold_for_years);
    g_test_add_func("/budget/background-leaves-the-users-part",
                    test_background_leaves_the_users_part_of_what_is_left);
    g_test_add_func("/budget/answers-only-lower-within-a-window",
                    test_answers_only_lower_what_is_left_within_a_window);
    g_test_add_func("/budget/configured-limit-is-kept", test_a_configured_limit_is_kept);
    g_test_add_func("/budget/seconds-for-a-refresh", test_seconds_for_a_refresh);
    g_test_add_func("/budget/priority-per-thread-and-inherited",
                    test_priority_is_per_thread_and_inherited);
    g_test_add_func("/budget/followed-priority-raised-from-outside",
                    test_a_followed_priority_can_be_raised_from_outside);
    return g_test_run();
}
