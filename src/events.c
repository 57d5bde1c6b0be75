/* The change stream (see events.h): its two formats and their logs. */
#include "events.h"

#include "infrafs/jsonparse.h"
#include "infrafs/text.h"
#include "model.h"

struct Events {
    IfsLineLog *text;
    IfsLineLog *json;
};

struct EventBatch {
    char *when; /* every change of a batch was found at once */
    GString *text;
    GString *json;
};

Events *events_new(const char *cache_dir, gsize max_bytes)
{
    Events *ev = g_new0(Events, 1);
    char *text_path = cache_dir ? g_build_filename(cache_dir, "events.log", NULL) : NULL;
    char *json_path = cache_dir ? g_build_filename(cache_dir, "events.ndjson", NULL) : NULL;

    ev->text = ifs_line_log_open("events", text_path, max_bytes);
    ev->json = ifs_line_log_open("events.ndjson", json_path, max_bytes);
    g_free(text_path);
    g_free(json_path);
    return ev;
}

void events_free(Events *ev)
{
    if (!ev)
        return;
    ifs_line_log_free(ev->text);
    ifs_line_log_free(ev->json);
    g_free(ev);
}

EventBatch *events_batch_new(void)
{
    EventBatch *b = g_new0(EventBatch, 1);

    b->when = ifs_iso_time(store_now());
    b->text = g_string_new(NULL);
    b->json = g_string_new(NULL);
    return b;
}

void events_batch_add(EventBatch *b, const char *path, const char *change, const char *old,
                      const char *fresh)
{
    old = old && *old ? old : NULL;
    fresh = fresh && *fresh ? fresh : NULL;
    g_string_append_printf(b->text, "%s\t%s\t%s\t%s\t%s\n", b->when, path, change, old ? old : "-",
                           fresh ? fresh : "-");
    g_string_append(b->json, "{\"time\":");
    ifs_json_append_string(b->json, b->when);
    g_string_append(b->json, ",\"path\":");
    ifs_json_append_string(b->json, path);
    g_string_append(b->json, ",\"change\":");
    ifs_json_append_string(b->json, change);
    g_string_append(b->json, ",\"old\":");
    ifs_json_append_string(b->json, old);
    g_string_append(b->json, ",\"new\":");
    ifs_json_append_string(b->json, fresh);
    g_string_append(b->json, "}\n");
}

void events_batch_commit(Events *ev, EventBatch *b)
{
    ifs_line_log_append(ev->text, b->text->str);
    ifs_line_log_append(ev->json, b->json->str);
    g_string_free(b->text, TRUE);
    g_string_free(b->json, TRUE);
    g_free(b->when);
    g_free(b);
}

void events_record(Events *ev, const char *path, const char *change, const char *old,
                   const char *fresh)
{
    EventBatch *b = events_batch_new();

    events_batch_add(b, path, change, old, fresh);
    events_batch_commit(ev, b);
}

IfsNode *events_text_node(Events *ev)
{
    return ifs_line_log_node(ev->text);
}

IfsNode *events_json_node(Events *ev)
{
    return ifs_line_log_node(ev->json);
}
