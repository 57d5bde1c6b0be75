/* Helpers shared by the unit tests. */
#pragma once

/* Removes `path` and everything below it; symbolic links are removed, not
 * followed. */
void test_remove_tree(const char *path);
