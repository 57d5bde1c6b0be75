/* `infrafs --check` (check.c). */
#pragma once
#include <glib.h>

/* The config at `config_path` read and every secret resolved (which may
 * run token_commands), then one request per account (its provider's
 * check_path) and a line on stdout saying whether it is ok, unauthorized
 * (naming where the secret came from), unreachable, or what else failed.
 * Mounts nothing. 0 only if every account is ok; 1 otherwise, or when the
 * config cannot be read (said on stderr). */
int check_accounts(const char *config_path);
