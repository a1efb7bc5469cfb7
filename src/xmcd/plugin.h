/* plugin.h: loading a stage plugin (stage.h) with dlopen and checking its ABI version before any call.
 *
 * A plugin is opened with RTLD_NOW | RTLD_LOCAL, its one symbol xmc_stage_plugin is looked up, abi_version is
 * compared with the version xmcd was built with and every function pointer is checked to be set; only then
 * is check_config() asked about the plugin's config group, create() called with it, and model_repo() asked
 * which repository to watch. */
#ifndef XMCD_PLUGIN_H
#define XMCD_PLUGIN_H

#include <stddef.h>

#include "xmc/stage.h"

typedef struct xmcd_plugin {
    void *dl;
    const xmc_stage_api *api;
    xmc_stage_instance *inst;
    char path[1024];
    char repo[1024]; /* the model repository from the plugin's model_repo(); "" when it follows none */
} xmcd_plugin;

/* Opens path and creates an instance from cfg. Returns NULL with err filled on failure (nothing left open);
 * *config_refused is then 1 for a config error (path names no loadable plugin of this ABI, or its
 * check_config() refused cfg), 0 when create() failed. */
xmcd_plugin *xmcd_plugin_open(const char *path, const config_setting_t *cfg, int *config_refused, char *err,
                              size_t errlen);

/* `--check-config`: loads path (ABI check) and asks its check_config() about cfg, creating nothing. 0 when
 * accepted; 1 when the plugin refused cfg; -1 when the plugin cannot be loaded. err says why. */
int xmcd_plugin_check(const char *path, const config_setting_t *cfg, char *err, size_t errlen);
void xmcd_plugin_close(xmcd_plugin *plugin);

#endif
