/* The normalized inventory: /inventory (tab-separated, with a header) and
 * /inventory.json (the same rows as a JSON array), one row per resource of
 * every account, sorted by kind, account and name. Its columns are read
 * from the resource directories just built, through each provider's table
 * (IfsInventoryColumns in provider.h): a value the API lacks is empty
 * (null in JSON), never made up. Both files are made again only when a kind
 * directory of some account changed. Used by the publisher's thread only. */
#pragma once
#include "build.h"

typedef struct Inventory Inventory;

Inventory *inventory_new(void);
void inventory_free(Inventory *inv);

/* The two files over the accounts' last builds, referenced: the same nodes
 * as the last call's when no account's resources changed since. */
void inventory_files(Inventory *inv, AccountBuild *const *builds, guint n, IfsNode **tsv,
                     IfsNode **json);

/* The header line of /inventory, its columns in order. */
extern const char inventory_header[];
