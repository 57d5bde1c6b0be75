/* A log of lines (linelog.c), as the action log uses it: what /actions
 * shows, what the file under cache_dir holds, rotation at the bound, and
 * what a reopen shows again. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "infrafs/linelog.h"
#include "test_util.h"

typedef struct {
    char *dir;
    char *path; /* dir/actions.log */
    char *old; /* dir/actions.log.1 */
} Fixture;

static void setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    fx->dir = g_dir_make_tmp("infrafs-linelog-XXXXXX", NULL);
    g_assert_nonnull(fx->dir);
    fx->path = g_build_filename(fx->dir, "actions.log", NULL);
    fx->old = g_strconcat(fx->path, ".1", NULL);
}

static void teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    test_remove_tree(fx->dir);
    g_free(fx->dir);
    g_free(fx->path);
    g_free(fx->old);
}

static char *shown(IfsLineLog *log)
{
    IfsNode *node = ifs_line_log_node(log);
    char *text = node_text(node);

    g_assert_true(strcmp(ifs_node_name(node), "actions") == 0 ||
                  strcmp(ifs_node_name(node), "events") == 0);
    ifs_node_unref(node);
    return text;
}

static void assert_shown(IfsLineLog *log, const char *expected)
{
    char *text = shown(log);

    g_assert_cmpstr(text, ==, expected);
    g_free(text);
}

static void assert_file(const char *path, const char *expected)
{
    char *text = NULL;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, expected);
    g_free(text);
}

/* A line of exactly `len` bytes (with its newline) that starts with `tag`. */
static char *line_of(const char *tag, gsize len)
{
    GString *s = g_string_new(tag);

    while (s->len < len - 1)
        g_string_append_c(s, '.');
    g_string_append_c(s, '\n');
    return g_string_free(s, FALSE);
}

static void test_lines_are_shown_and_kept_in_the_file(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log = ifs_line_log_open("actions", fx->path, 0);
    struct stat st;

    (void)d;
    assert_shown(log, "");
    ifs_line_log_append(log, "one\n");
    ifs_line_log_append(log, "two\n");
    assert_shown(log, "one\ntwo\n");
    assert_file(fx->path, "one\ntwo\n");
    g_assert_cmpint(stat(fx->path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600); /* who did what is not for everyone */
    ifs_line_log_free(log);

    /* A remount shows them again, and goes on after them. */
    log = ifs_line_log_open("actions", fx->path, 0);
    assert_shown(log, "one\ntwo\n");
    ifs_line_log_append(log, "three\n");
    assert_file(fx->path, "one\ntwo\nthree\n");
    ifs_line_log_free(log);
}

static void test_the_same_node_until_the_next_line(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log = ifs_line_log_open("actions", fx->path, 0);
    IfsNode *a = ifs_line_log_node(log), *b = ifs_line_log_node(log), *c;

    (void)d;
    /* Pointer equality is what keeps an unchanged file out of every diff. */
    g_assert_true(a == b);
    ifs_line_log_append(log, "x\n");
    c = ifs_line_log_node(log);
    g_assert_true(c != a);
    g_assert_cmpuint(ifs_node_size(c), ==, 2);
    ifs_node_unref(a);
    ifs_node_unref(b);
    ifs_node_unref(c);
    ifs_line_log_free(log);
}

static void test_a_full_log_starts_over_and_keeps_one_generation(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log = ifs_line_log_open("actions", fx->path, 1024);
    GString *first = g_string_new(NULL), *second = g_string_new(NULL);

    (void)d;
    for (int i = 0; i < 10; i++) { /* 1,000 bytes: fits */
        char *line = line_of("a", 100);
        ifs_line_log_append(log, line);
        g_string_append(first, line);
        g_free(line);
    }
    assert_shown(log, first->str);
    for (int gen = 0; gen < 2; gen++) {
        g_string_truncate(second, 0);
        for (int i = 0; i < 10; i++) { /* the first one no longer fits */
            char *line = line_of(gen ? "c" : "b", 100);
            ifs_line_log_append(log, line);
            g_string_append(second, line);
            g_free(line);
        }
        assert_shown(log, second->str);
        assert_file(fx->path, second->str);
        if (gen == 0)
            assert_file(fx->old, first->str);
        g_string_assign(first, second->str);
    }
    /* The one before the last is gone: one old generation is kept. */
    g_assert_true(g_str_has_prefix(first->str, "c"));
    ifs_line_log_free(log);
    g_string_free(first, TRUE);
    g_string_free(second, TRUE);
}

static void test_memory_only_is_bounded_the_same_way(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log = ifs_line_log_open("actions", NULL, 1024);
    char *line = line_of("m", 300);
    char *text;

    (void)fx;
    (void)d;
    for (int i = 0; i < 4; i++)
        ifs_line_log_append(log, line);
    text = shown(log);
    g_assert_cmpstr(text, ==, line); /* 3 × 300 fit, the 4th starts over */
    g_free(text);
    g_free(line);
    ifs_line_log_free(log);
}

static void test_a_file_over_the_bound_shows_its_last_whole_lines(Fixture *fx, gconstpointer d)
{
    GString *big = g_string_new(NULL);
    IfsLineLog *log;
    char *text, *last_ten;

    (void)d;
    for (int i = 0; i < 30; i++)
        g_string_append_printf(big,
                               "line %02d ..............................................."
                               "..................................\n",
                               i);
    g_assert_true(g_file_set_contents(fx->path, big->str, (gssize)big->len, NULL));
    log = ifs_line_log_open("actions", fx->path, 1024); /* a bound made smaller since */
    text = shown(log);
    g_assert_cmpuint(strlen(text), <=, 1024);
    g_assert_true(g_str_has_prefix(text, "line "));
    last_ten = big->str + big->len - strlen(text);
    g_assert_cmpstr(text, ==, last_ten);
    g_free(text);
    /* The next line starts a generation within the bound. */
    ifs_line_log_append(log, "new\n");
    assert_file(fx->path, "new\n");
    assert_file(fx->old, big->str);
    assert_shown(log, "new\n");
    ifs_line_log_free(log);
    g_string_free(big, TRUE);
}

static void test_a_line_cut_by_a_crash_is_ended_first(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log;

    (void)d;
    g_assert_true(g_file_set_contents(fx->path, "whole\ncut sho", -1, NULL));
    log = ifs_line_log_open("actions", fx->path, 0);
    assert_shown(log, "whole\ncut sho\n");
    ifs_line_log_append(log, "next\n");
    assert_file(fx->path, "whole\ncut sho\nnext\n");
    assert_shown(log, "whole\ncut sho\nnext\n");
    ifs_line_log_free(log);
}

static void test_an_unwritable_place_warns_once_and_keeps_showing(Fixture *fx, gconstpointer d)
{
    char *blocker = g_build_filename(fx->dir, "file", NULL);
    char *path = g_build_filename(blocker, "actions.log", NULL); /* under a file */
    IfsLineLog *log;

    (void)d;
    g_assert_true(g_file_set_contents(blocker, "", 0, NULL));
    log = ifs_line_log_open("actions", path, 0);
    g_test_expect_message("infrafs", G_LOG_LEVEL_WARNING,
                          "log *actions.log: cannot create its directory*cache_dir writable*");
    ifs_line_log_append(log, "one\n");
    ifs_line_log_append(log, "two\n"); /* no second warning */
    g_test_assert_expected_messages();
    assert_shown(log, "one\ntwo\n");
    ifs_line_log_free(log);
    g_free(path);
    g_free(blocker);
}

static void test_a_batch_over_the_bound_shows_its_last_lines(Fixture *fx, gconstpointer d)
{
    IfsLineLog *log = ifs_line_log_open("events", fx->path, 1024);
    GString *batch = g_string_new(NULL);
    char *text;

    (void)d;
    ifs_line_log_append(log, "before\n");
    for (int i = 0; i < 30; i++) /* 30 × 100 bytes at once */
        g_string_append_printf(batch, "%02d%097d\n", i, 0);
    ifs_line_log_append(log, batch->str);
    text = shown(log);
    /* Whole lines, the last of the batch, within the bound. */
    g_assert_cmpuint(strlen(text), ==, 1000);
    g_assert_true(g_str_has_prefix(text, "20"));
    g_assert_true(g_str_has_suffix(batch->str, text));
    g_free(text);
    /* The file has all of it, the generation before in .1; the next line
     * starts a new generation. */
    assert_file(fx->path, batch->str);
    assert_file(fx->old, "before\n");
    ifs_line_log_append(log, "after\n");
    assert_file(fx->path, "after\n");
    assert_shown(log, "after\n");
    ifs_line_log_free(log);
    g_string_free(batch, TRUE);
}

int main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/linelog/lines-are-shown-and-kept-in-the-file", test_lines_are_shown_and_kept_in_the_file);
    ADD("/linelog/the-same-node-until-the-next-line", test_the_same_node_until_the_next_line);
    ADD("/linelog/a-full-log-starts-over-and-keeps-one-generation",
        test_a_full_log_starts_over_and_keeps_one_generation);
    ADD("/linelog/memory-only-is-bounded-the-same-way", test_memory_only_is_bounded_the_same_way);
    ADD("/linelog/a-file-over-the-bound-shows-its-last-whole-lines",
        test_a_file_over_the_bound_shows_its_last_whole_lines);
    ADD("/linelog/a-line-cut-by-a-crash-is-ended-first", test_a_line_cut_by_a_crash_is_ended_first);
    ADD("/linelog/a-batch-over-the-bound-shows-its-last-lines",
        test_a_batch_over_the_bound_shows_its_last_lines);
    ADD("/linelog/an-unwritable-place-warns-once-and-keeps-showing",
        test_an_unwritable_place_warns_once_and_keeps_showing);
#undef ADD
    return g_test_run();
}
