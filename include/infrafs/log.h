/* Logging: stderr in the foreground, syslog once daemonized. Callers use
 * GLib's g_message/g_warning/g_debug with G_LOG_DOMAIN "infrafs"; messages
 * are built from IfsError texts, which never hold secrets. */
#pragma once
#include <glib.h>

void ifs_log_init(gboolean foreground, gboolean debug);
