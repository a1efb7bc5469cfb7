/* reload.h: the model reload thread: polls <repo>/CURRENT and hands a new version to the plugin's load().
 * The repository is the one the plugin names (stage.h model_repo()); CURRENT is read with libxmc's parser.
 *
 * Loading (open, checksums, canaries) runs on this thread, off the record path; the plugin swaps atomically.
 * A version the plugin refuses is remembered and not retried until CURRENT names another version or a
 * check is forced (SIGHUP). Swaps and refusals are logged and counted in the stats. */
#ifndef XMCD_RELOAD_H
#define XMCD_RELOAD_H

#include "plugin.h"
#include "stats.h"

typedef struct xmcd_reload xmcd_reload;

/* Starts polling the plugin's repository (plugin->repo, not empty) every poll_ms (0 = only when kicked).
 * NULL on failure (thread or memory). */
xmcd_reload *xmcd_reload_start(xmcd_plugin *plugin, int poll_ms, xmcd_stats *stats);
/* Checks the repository now, retrying a refused version too (SIGHUP). */
void xmcd_reload_kick(xmcd_reload *reload);
void xmcd_reload_set_poll_ms(xmcd_reload *reload, int poll_ms);
/* Stops and joins the thread; reload may be NULL. */
void xmcd_reload_stop(xmcd_reload *reload);

#endif
