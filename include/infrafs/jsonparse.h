/* The one way infrafs turns text into JSON (API answers, the disk cache):
 * json-c in its strict mode, behind a scan that weighs what json-c would
 * allocate for the text and refuses, before json-c builds anything, a
 * document that would cost far more memory than its size justifies (a few
 * KiB of "{}" would otherwise take hundreds of MiB; gzip makes such text
 * cheap to send).
 *
 * The bound: at every element, the memory json-c would need for the text
 * read so far must stay within IFS_JSON_MEMORY_FLOOR plus per_byte times
 * that text, and within max_memory. Being checked on every prefix, the
 * verdict does not depend on how the text arrives: the scan can run on a
 * transfer as it comes in (stopping a bomb after a few KiB) and says the
 * same as on the whole. */
#pragma once
#include <glib.h>
#include <json-c/json.h>

/* Bytes of json-c memory allowed per byte of JSON text: real API answers
 * weigh 7 to 30 (src/jsonparse.c has the figures), a document of empty
 * objects 272. */
#define IFS_JSON_MEMORY_PER_BYTE 48
/* What any document may take whatever its size: small ones vary most. */
#define IFS_JSON_MEMORY_FLOOR ((guint64)1024 * 1024)
/* API answers: no answer an API gives is near this (the largest, an
 * unpaginated list of a thousand resources, takes about 10 MiB). */
#define IFS_JSON_ANSWER_MAX_MEMORY ((guint64)256 * 1024 * 1024)
/* The scan follows nesting this deep at most (json-c's limit is lower). */
#define IFS_JSON_SCAN_MAX_DEPTH 64

typedef struct {
    int max_depth; /* json-c's nesting limit, 1..IFS_JSON_SCAN_MAX_DEPTH */
    guint64 max_memory; /* a cap over the whole document; 0: none */
    guint64 per_byte; /* memory allowed per byte; 0: IFS_JSON_MEMORY_PER_BYTE */
} IfsJsonLimits;

/* API answers: json-c's default depth (32), IFS_JSON_ANSWER_MAX_MEMORY,
 * IFS_JSON_MEMORY_PER_BYTE. */
extern const IfsJsonLimits ifs_json_answer_limits;

/* The scan's state. Fields are private; a zeroed one is "not started". */
typedef struct {
    IfsJsonLimits limits;
    gboolean started;
    guint8 state;
    guint8 open; /* containers open */
    guint8 number; /* in a number: 1, in a double: 2 */
    char quote; /* that the string being read ends with */
    gboolean expect_key; /* in an object, before a member's name */
    guint64 in_object; /* bit i: the container at level i is an object */
    guint32 members[IFS_JSON_SCAN_MAX_DEPTH]; /* of the object at each level */
    guint32 table[IFS_JSON_SCAN_MAX_DEPTH]; /* its hash table's entries */
    guint64 offset; /* bytes read */
    guint64 tree; /* weight of the values built so far */
    guint64 string_len; /* length of the string being read */
    guint64 longest; /* longest string so far (the tokener's buffer) */
    guint64 elements; /* values started */
    guint64 weight; /* tree + tokener buffer, at the refusal */
    guint64 allowed; /* the bound at the refusal */
    gboolean refused;
} IfsJsonScan;

void ifs_json_scan_init(IfsJsonScan *scan, const IfsJsonLimits *limits);
/* Reads the next `len` bytes. FALSE once the document is refused (and for
 * every call after that). Past the end of the document (its root value
 * closed, a NUL byte, an error json-c stops at, or nesting json-c refuses)
 * nothing more is weighed: json-c builds nothing there. */
gboolean ifs_json_scan_feed(IfsJsonScan *scan, const char *data, size_t len);
gboolean ifs_json_scan_refused(const IfsJsonScan *scan);
/* The memory json-c would take for what was read (at the refusal: up to
 * the element that was refused), and the values counted. */
guint64 ifs_json_scan_weight(const IfsJsonScan *scan);
guint64 ifs_json_scan_elements(const IfsJsonScan *scan);
/* After a refusal: "its JSON would take more than 1.2 MiB of memory for
 * 4.6 KiB of text (1,559 elements; infrafs allows 48 bytes per byte, plus
 * 1.0 MiB)", or, refused by max_memory, "its JSON would take more than
 * 256.0 MiB of memory, the most infrafs allows for one document (6.3 MiB
 * of text, 3,313,992 elements)". */
char *ifs_json_scan_describe(const IfsJsonScan *scan);

typedef enum {
    IFS_JSON_OK, /* a value other than null */
    IFS_JSON_NULL, /* the text is the JSON value null */
    IFS_JSON_INVALID, /* not JSON: syntax, truncated, NUL byte, data after it */
    IFS_JSON_TOO_DEEP, /* nested deeper than max_depth */
    IFS_JSON_TOO_COSTLY, /* refused by the memory bound */
} IfsJsonStatus;

typedef struct {
    IfsJsonStatus status;
    char why[192]; /* what was wrong, for a message ("" when OK/NULL) */
} IfsJsonResult;

/* Parses all of `text` (`len` bytes; a NUL byte inside is an error) as one
 * JSON value; white space may follow it, nothing else. `limits` NULL means
 * ifs_json_answer_limits. Returns the value (NULL for null or an error);
 * `result` (may be NULL) says which and why. */
json_object *ifs_json_parse(const char *text, size_t len, const IfsJsonLimits *limits,
                            IfsJsonResult *result);

/* Text of our own making, kept instead of json-c trees (a tree takes about
 * a dozen times the memory of its text): compact JSON, '/' unescaped. The
 * text is a new string (g_free) with its length in *len. */
char *ifs_json_compact(json_object *obj, size_t *len);
/* The same text without a copy: it belongs to `obj`, and lasts until `obj`
 * changes or is freed. */
const char *ifs_json_compact_view(json_object *obj, size_t *len);
/* Appends `text` as a JSON string ("..." with '"', '\\' and control
 * characters escaped), or null for NULL: for the files we write as JSON
 * without building a json-c tree of them. */
void ifs_json_append_string(GString *out, const char *text);
/* Back from such text, without the scan: it was parsed within bounds once
 * already. NULL for NULL text. One tokener per thread is kept. */
json_object *ifs_json_parse_compact(const char *text, size_t len);
