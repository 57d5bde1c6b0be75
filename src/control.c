/* Control commands (doc/SEMANTICS.md §5.1-§5.3): what a control file lists when read, and
 * the local checks a write passes before any API is called. Everything
 * refused here is EINVAL, with a message that says what is accepted. */
#include "infrafs/control.h"

#include <errno.h>
#include <string.h>

/* Longest write accepted as a command; anything longer is not a command. */
#define IFS_COMMAND_MAX 256

#define FORCE_WORD "force"

const IfsCommandSpec ifs_trigger_commands[] = {
    {"1",  IFS_FORCE_NEVER},
    {NULL, 0              }
};

char *ifs_control_commands_line(const IfsControlSpec *spec)
{
    GString *line = g_string_new(NULL);

    for (const IfsCommandSpec *c = spec ? spec->commands : NULL; c && c->verb; c++) {
        if (line->len)
            g_string_append_c(line, ' ');
        g_string_append(line, c->verb);
    }
    g_string_append_c(line, '\n');
    return g_string_free(line, FALSE);
}

/* "start, stop, restart [force], reset force": each command as it must be
 * written, for error messages. */
static char *accepted_list(const IfsControlSpec *spec)
{
    GString *list = g_string_new(NULL);

    for (const IfsCommandSpec *c = spec ? spec->commands : NULL; c && c->verb; c++) {
        if (list->len)
            g_string_append(list, ", ");
        g_string_append(list, c->verb);
        if (c->force == IFS_FORCE_REQUIRED)
            g_string_append(list, " " FORCE_WORD);
        else if (c->force == IFS_FORCE_OPTIONAL)
            g_string_append(list, " [" FORCE_WORD "]");
    }
    return g_string_free(list, FALSE);
}

/* An EINVAL error: `what` went wrong, then what the file accepts. */
static void refuse(IfsError **err, const IfsControlSpec *spec, const char *what)
{
    char *accepted = accepted_list(spec);

    ifs_error_propagate(err,
                        ifs_error_new(EINVAL, 0, NULL, "%s; %s accepts: %s", what,
                                      spec && spec->file ? spec->file : "this file", accepted));
    g_free(accepted);
}

/* A word from the user, quoted safely inside a one-line message. */
static char *quoted(const char *word)
{
    char *escaped = g_strescape(word, NULL);
    char *q = g_strdup_printf("'%s'", escaped);

    g_free(escaped);
    return q;
}

static gboolean is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The command with surrounding white space removed, as a C string; NULL (and
 * the reason in *why) when the input cannot be a single command. */
static char *trimmed_command(const char *buf, size_t len, const char **why)
{
    size_t start = 0;
    size_t end = len;

    if (len > IFS_COMMAND_MAX) {
        *why = "command longer than 256 bytes";
        return NULL;
    }
    if (len && memchr(buf, '\0', len)) {
        *why = "command contains a NUL byte";
        return NULL;
    }
    while (start < end && is_blank(buf[start]))
        start++;
    while (end > start && is_blank(buf[end - 1]))
        end--;
    if (start == end) {
        *why = "empty command";
        return NULL;
    }
    if (memchr(buf + start, '\n', end - start) || memchr(buf + start, '\r', end - start)) {
        *why = "more than one line: write one command at a time";
        return NULL;
    }
    return g_strndup(buf + start, end - start);
}

static const IfsCommandSpec *find_verb(const IfsControlSpec *spec, const char *verb)
{
    for (const IfsCommandSpec *c = spec ? spec->commands : NULL; c && c->verb; c++)
        if (strcmp(c->verb, verb) == 0)
            return c;
    return NULL;
}

/* Checks the words of a trimmed command against the spec; returns the
 * command, or NULL with the refusal in *err. */
static IfsCommand *command_from_words(const IfsControlSpec *spec, char **words, IfsError **err)
{
    guint n = g_strv_length(words);
    const IfsCommandSpec *c = find_verb(spec, words[0]);
    gboolean force = n == 2 && strcmp(words[1], FORCE_WORD) == 0;
    char *msg = NULL;
    IfsCommand *cmd;

    if (!c) {
        char *q = quoted(words[0]);

        msg = g_strdup_printf("unknown command %s", q);
        g_free(q);
    } else if (n > 2 || (n == 2 && !force)) {
        /* Name the first word that is not the one allowed "force". */
        char *q = quoted(strcmp(words[1], FORCE_WORD) == 0 ? words[2] : words[1]);

        msg = g_strdup_printf("unexpected %s after '%s'", q, c->verb);
        g_free(q);
    } else if (c->force == IFS_FORCE_REQUIRED && !force) {
        /* The documented confirmation: said plainly, without the list. */
        ifs_error_propagate(err,
                            ifs_error_new(EINVAL, 0, NULL,
                                          "%s needs confirmation: write '%s " FORCE_WORD "'",
                                          c->verb, c->verb));
        return NULL;
    } else if (c->force == IFS_FORCE_NEVER && force) {
        msg = g_strdup_printf("'%s' cannot be forced: write '%s'", c->verb, c->verb);
    }
    if (msg) {
        refuse(err, spec, msg);
        g_free(msg);
        return NULL;
    }
    cmd = g_new0(IfsCommand, 1);
    cmd->verb = g_strdup(c->verb);
    cmd->force = force;
    return cmd;
}

/* The words of a trimmed command, split on runs of spaces and tabs. */
static char **split_words(const char *text)
{
    char **words = g_strsplit_set(text, " \t", -1);
    guint kept = 0;

    for (guint i = 0; words[i]; i++) {
        if (*words[i])
            words[kept++] = words[i];
        else
            g_free(words[i]);
    }
    words[kept] = NULL;
    return words;
}

IfsCommand *ifs_control_parse(const IfsControlSpec *spec, const char *buf, size_t len,
                              IfsError **err)
{
    const char *why = NULL;
    char *text = trimmed_command(buf ? buf : "", buf ? len : 0, &why);
    char **words;
    IfsCommand *cmd;

    if (!text) {
        refuse(err, spec, why);
        return NULL;
    }
    words = split_words(text);
    cmd = command_from_words(spec, words, err);
    g_strfreev(words);
    g_free(text);
    return cmd;
}

void ifs_command_free(IfsCommand *cmd)
{
    if (!cmd)
        return;
    g_free(cmd->verb);
    g_free(cmd);
}

char *ifs_command_to_string(const IfsCommand *cmd)
{
    if (!cmd)
        return g_strdup("");
    return cmd->force ? g_strconcat(cmd->verb, " " FORCE_WORD, NULL) : g_strdup(cmd->verb);
}
