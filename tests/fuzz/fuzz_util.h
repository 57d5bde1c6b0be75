/* What the fuzz targets share (fuzz_util.c). */
#pragma once
#include "infrafs/config.h"
#include "infrafs/node.h"
#include "infrafs/provider.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every target's logs are dropped (a fuzzer's millions of runs would only
 * print them), but a critical or error message aborts: it is a broken
 * assertion. fuzz_util.c sets that up before LLVMFuzzerInitialize. */

/* The input's first line (without its newline, a new string) and the
 * bytes after it (none when there is no newline). */
void fuzz_split_line(const uint8_t *data, size_t size, char **first, const char **rest,
                     size_t *rest_len);
/* A config file holding `text` loaded as infrafs loads one; NULL with the
 * reason in *err. The file is removed again. */
IfsConfig *fuzz_load_config(const char *text, size_t len, IfsError **err);
/* What the store does with a resource a provider returned or the cache
 * gave back: seal it, and build the directory the tree shows for it
 * (NULL for a resource without an id). */
IfsNode *fuzz_build_resource(IfsResource *r);
