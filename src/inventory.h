/* The views across providers: /inventory (tab-separated, with a header)
 * and /inventory.json (the same rows as a JSON array), one row per
 * resource of every account, sorted by kind, account and name; /by-name/
 * and /by-ip/, a relative link to each resource's directory per name and
 * per address. The columns are read from the resource directories just
 * built, through each provider's table (IfsInventoryColumns in
 * provider.h): a value the API lacks is empty (null in JSON), never made
 * up. All four are made again only when a kind directory of some account
 * changed.
 *
 * Comparing the rows with those before tells the change stream (events.h)
 * what changed: resources that appeared or disappeared, and their name,
 * status, ip and region; and so does each account's state. An account
 * whose data was not real before (no refresh yet, and nothing on disk)
 * counts no resource as appeared. Used by the publisher's thread only. */
#pragma once
#include "build.h"
#include "events.h"

typedef struct Inventory Inventory;

Inventory *inventory_new(void);
void inventory_free(Inventory *inv);

/* inventory, inventory.json, by-name/ and by-ip/ */
#define INVENTORY_ENTRIES 4

/* The four over the accounts' last builds, referenced: the same nodes as
 * the last call's when no account's resources changed since. What changed
 * since the last call goes to `events` (may be NULL). */
void inventory_entries(Inventory *inv, AccountBuild *const *builds, guint n, Events *events,
                       IfsNode *out[INVENTORY_ENTRIES]);

/* The four as the last inventory_entries made them, referenced, or FALSE
 * (nothing set) before the first. */
gboolean inventory_last_entries(Inventory *inv, IfsNode *out[INVENTORY_ENTRIES]);

/* /inventory.json for the TSV file `tsv` of `rows` rows, rendered from it
 * when read (inventory_json.c); takes a reference to `tsv`. */
IfsNode *inventory_json_file(IfsNode *tsv, guint rows);

/* The header line of /inventory, its columns in order. */
extern const char inventory_header[];
