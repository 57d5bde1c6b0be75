/* Logging: stderr in the foreground, syslog once daemonized. Callers use
 * GLib's g_message/g_warning/g_debug with G_LOG_DOMAIN "infrafs"; messages
 * are built from IfsError texts, which never hold secrets. */
#pragma once
#include <glib.h>

/* `level`: the least severe messages logged, one of error, warning,
 * notice, info, debug; NULL: info, or debug with `debug` (-d). In the
 * foreground under systemd (stderr is its journal stream) each line starts
 * with its priority, "<4>" for a warning. */
void ifs_log_init(gboolean foreground, gboolean debug, const char *level);
gboolean ifs_log_level_valid(const char *name);
