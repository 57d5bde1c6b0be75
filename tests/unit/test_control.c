/* Control commands: the line a control file reads as, and what a write may
 * say (doc/SEMANTICS.md §5.2, §5.3). */
#include "infrafs/control.h"

#include <errno.h>
#include <string.h>

static const IfsCommandSpec power_commands[] = {
    {"start",    IFS_FORCE_NEVER   },
    {"shutdown", IFS_FORCE_NEVER   },
    {"stop",     IFS_FORCE_OPTIONAL},
    {"restart",  IFS_FORCE_OPTIONAL},
    {"reset",    IFS_FORCE_REQUIRED},
    {NULL,       IFS_FORCE_NEVER   },
};
static const IfsControlSpec power = {"vps", "power", power_commands};

static const IfsCommandSpec trigger_commands[] = {
    {"1",  IFS_FORCE_NEVER},
    {NULL, IFS_FORCE_NEVER},
};
static const IfsControlSpec refresh = {"providers", "refresh", trigger_commands};

typedef struct {
    const char *input;
    size_t len; /* 0: strlen(input) */
    const char *verb; /* NULL: refused with EINVAL */
    gboolean force;
} ParseCase;

static void check_case(const IfsControlSpec *spec, const ParseCase *c)
{
    IfsError *err = NULL;
    size_t len = c->len ? c->len : strlen(c->input);
    IfsCommand *cmd = ifs_control_parse(spec, c->input, len, &err);

    if (c->verb) {
        if (!cmd)
            g_error("refused \"%s\": %s", c->input, err->message);
        g_assert_null(err);
        g_assert_cmpstr(cmd->verb, ==, c->verb);
        g_assert_cmpint(cmd->force, ==, c->force);
    } else {
        if (cmd)
            g_error("accepted \"%s\"", c->input);
        g_assert_nonnull(err);
        g_assert_cmpint(err->errnum, ==, EINVAL);
        g_assert_cmpint(err->http_status, ==, 0);
        g_assert_null(strchr(err->message, '\n'));
    }
    ifs_command_free(cmd);
    ifs_error_free(err);
}

static void test_commands_line(void)
{
    char *line = ifs_control_commands_line(&power);

    g_assert_cmpstr(line, ==, "start shutdown stop restart reset\n");
    g_free(line);
    line = ifs_control_commands_line(&refresh);
    g_assert_cmpstr(line, ==, "1\n");
    g_free(line);
}

static void test_parse_power_table(void)
{
    static const ParseCase cases[] = {
        {"restart\n",             0, "restart", FALSE}, /* echo */
        {"restart",               0, "restart", FALSE}, /* printf */
        {"  reset force \n",      0, "reset",   TRUE },
        {"\treset\t \tforce\r\n", 0, "reset",   TRUE },
        {"restart force",         0, "restart", TRUE },
        {"stop",                  0, "stop",    FALSE},
        {"stop force\n",          0, "stop",    TRUE },
        {"start\n\n",             0, "start",   FALSE},
        {"reset",                 0, NULL,      FALSE}, /* needs force */
        {"reset\n",               0, NULL,      FALSE},
        {"start force",           0, NULL,      FALSE}, /* never forced */
        {"shutdown force\n",      0, NULL,      FALSE},
        {"bogus",                 0, NULL,      FALSE},
        {"RESTART",               0, NULL,      FALSE},
        {"Restart",               0, NULL,      FALSE},
        {"",                      0, NULL,      FALSE},
        {"\n",                    0, NULL,      FALSE},
        {" \t\r\n ",              0, NULL,      FALSE},
        {"restart\nstop",         0, NULL,      FALSE},
        {"restart\rstop",         0, NULL,      FALSE},
        {"restart now",           0, NULL,      FALSE},
        {"reset force now",       0, NULL,      FALSE},
        {"reset force force",     0, NULL,      FALSE},
        {"force",                 0, NULL,      FALSE},
        {"restart\0",             8, NULL,      FALSE}, /* NUL byte */
        {"re\0start",             8, NULL,      FALSE},
        {"1",                     0, NULL,      FALSE},
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
        check_case(&power, &cases[i]);
}

static void test_parse_trigger_table(void)
{
    static const ParseCase cases[] = {
        {"1\n",     0, "1",  FALSE},
        {"1",       0, "1",  FALSE},
        {" 1 ",     0, "1",  FALSE},
        {"1 force", 0, NULL, FALSE},
        {"0",       0, NULL, FALSE},
        {"11",      0, NULL, FALSE},
        {"yes",     0, NULL, FALSE},
        {"1\n1\n",  0, NULL, FALSE},
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
        check_case(&refresh, &cases[i]);
}

static void test_parse_length_limit(void)
{
    char buf[300];
    ParseCase c = {buf, sizeof(buf), NULL, FALSE};
    ParseCase padded = {buf, 256, "restart", FALSE};

    /* 300 bytes: refused even though it is white space around a verb. */
    memset(buf, ' ', sizeof(buf));
    memcpy(buf, "restart", 7);
    check_case(&power, &c);
    /* 256 bytes is the most accepted. */
    check_case(&power, &padded);
    memset(buf, 'a', sizeof(buf));
    check_case(&power, &c);
}

static void test_messages(void)
{
    IfsError *err = NULL;

    g_assert_null(ifs_control_parse(&power, "reset\n", 6, &err));
    g_assert_cmpstr(err->message, ==, "reset needs confirmation: write 'reset force'");
    g_clear_pointer(&err, ifs_error_free);

    g_assert_null(ifs_control_parse(&power, "bogus\n", 6, &err));
    g_assert_nonnull(strstr(err->message, "unknown command 'bogus'"));
    g_assert_nonnull(strstr(err->message,
                            "power accepts: start, shutdown, stop [force], restart [force], "
                            "reset force"));
    g_clear_pointer(&err, ifs_error_free);

    g_assert_null(ifs_control_parse(&power, "start force", 11, &err));
    g_assert_nonnull(strstr(err->message, "'start' cannot be forced"));
    g_clear_pointer(&err, ifs_error_free);

    g_assert_null(ifs_control_parse(&power, "restart now please", 18, &err));
    g_assert_nonnull(strstr(err->message, "unexpected 'now' after 'restart'"));
    g_clear_pointer(&err, ifs_error_free);

    /* Control bytes from the user never reach the message raw. */
    g_assert_null(ifs_control_parse(&power, "b\x1b[2Jx", 6, &err));
    g_assert_null(strchr(err->message, '\x1b'));
    g_clear_pointer(&err, ifs_error_free);

    g_assert_null(ifs_control_parse(&refresh, "", 0, &err));
    g_assert_nonnull(strstr(err->message, "empty command; refresh accepts: 1"));
    g_clear_pointer(&err, ifs_error_free);

    /* A NULL error location is allowed. */
    g_assert_null(ifs_control_parse(&power, "bogus", 5, NULL));
}

static void test_command_to_string(void)
{
    IfsCommand *cmd = ifs_control_parse(&power, " reset   force\n", 15, NULL);
    char *s = ifs_command_to_string(cmd);

    g_assert_cmpstr(s, ==, "reset force");
    g_free(s);
    ifs_command_free(cmd);

    cmd = ifs_control_parse(&power, "restart\n", 8, NULL);
    s = ifs_command_to_string(cmd);
    g_assert_cmpstr(s, ==, "restart");
    g_free(s);
    ifs_command_free(cmd);
    ifs_command_free(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/control/commands-line", test_commands_line);
    g_test_add_func("/control/parse/power", test_parse_power_table);
    g_test_add_func("/control/parse/trigger", test_parse_trigger_table);
    g_test_add_func("/control/parse/length-limit", test_parse_length_limit);
    g_test_add_func("/control/messages", test_messages);
    g_test_add_func("/control/command-to-string", test_command_to_string);
    return g_test_run();
}
