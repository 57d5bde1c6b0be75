/* Helpers shared by the unit tests. */
#pragma once
#include "infrafs/node.h"

/* Removes `path` and everything below it; symbolic links are removed, not
 * followed. */
void test_remove_tree(const char *path);

/* The node at `path` ("a/b/c"; "" is `root` itself) below `root`,
 * referenced, or NULL. */
IfsNode *tree_node(const IfsNode *root, const char *path);
/* A file's bytes as text: exactly ifs_node_size() of them, and a rendered
 * file renders exactly that many. */
char *node_text(const IfsNode *n);
/* The same for the file at `path` below `root`, which must exist. */
char *tree_text(const IfsNode *root, const char *path);
/* The names in the directory at `path`, space-separated in their order. */
char *tree_names(const IfsNode *root, const char *path);

/* How last_action ends for a write by this process's user: "by NAME (uid
 * N)\n", or "by uid N\n" without a name. */
char *test_writer_end(void);

/* Fails the test, showing both, unless `text` (may be NULL) contains `part`. */
void assert_contains(const char *text, const char *part);
