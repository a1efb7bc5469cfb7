/* plugin.c: dlopen a stage plugin, check its ABI, create its instance; see plugin.h.
 *
 * The ABI check reads only the first field of the exported struct (abi_version), which every ABI version
 * keeps in place, so a plugin built for a newer or older ABI is refused with both numbers instead of being
 * called through a layout it does not have. */
#include "plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* dlopen()s path and checks its ABI version and functions. Returns the handle (api in *api_out), or NULL with
 * err filled and nothing left open. */
static void *plugin_load(const char *path, const xmc_stage_api **api_out, char *err, size_t errlen)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
        return NULL;
    }
    const xmc_stage_api *api = dlsym(dl, XMC_STAGE_SYMBOL);
    if (!api) {
        snprintf(err, errlen, "plugin %s does not export %s (not a stage plugin)", path, XMC_STAGE_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    if (api->abi_version != XMC_STAGE_ABI_VERSION) {
        snprintf(err, errlen, "plugin %s has stage ABI version %u, this xmcd speaks version %d: rebuild the plugin",
                 path, api->abi_version, XMC_STAGE_ABI_VERSION);
        dlclose(dl);
        return NULL;
    }
    if (!api->create || !api->process || !api->load || !api->current_version || !api->stats || !api->destroy ||
        !api->model_repo || !api->check_config) {
        snprintf(err, errlen, "plugin %s leaves a required function of ABI version %d unset", path,
                 XMC_STAGE_ABI_VERSION);
        dlclose(dl);
        return NULL;
    }
    *api_out = api;
    return dl;
}

/* The plugin's verdict on cfg, in err: "plugin P (name) refused its config: reason". */
static int plugin_check(const xmc_stage_api *api, const char *path, const config_setting_t *cfg, char *err,
                        size_t errlen)
{
    char perr[512] = "";
    if (api->check_config(cfg, perr, sizeof perr) == 0) return 0;
    snprintf(err, errlen, "plugin %s (%s) refused its config: %s", path, api->name ? api->name : "?",
             perr[0] ? perr : "no reason given");
    return -1;
}

int xmcd_plugin_check(const char *path, const config_setting_t *cfg, char *err, size_t errlen)
{
    const xmc_stage_api *api = NULL;
    void *dl = plugin_load(path, &api, err, errlen);
    if (!dl) return -1;
    int rc = plugin_check(api, path, cfg, err, errlen) == 0 ? 0 : 1;
    dlclose(dl);
    return rc;
}

xmcd_plugin *xmcd_plugin_open(const char *path, const config_setting_t *cfg, int *config_refused, char *err,
                              size_t errlen)
{
    const xmc_stage_api *api = NULL;
    *config_refused = 0;
    void *dl = plugin_load(path, &api, err, errlen);
    if (!dl) {
        *config_refused = 1; /* plugin.path names no plugin this xmcd can use: the config's fault, as --check-config says */
        return NULL;
    }
    if (plugin_check(api, path, cfg, err, errlen) != 0) {
        *config_refused = 1;
        dlclose(dl);
        return NULL;
    }
    xmcd_plugin *plugin = calloc(1, sizeof *plugin);
    if (!plugin) {
        snprintf(err, errlen, "out of memory");
        dlclose(dl);
        return NULL;
    }
    char perr[512] = "";
    plugin->inst = api->create(cfg, perr, sizeof perr);
    if (!plugin->inst) {
        snprintf(err, errlen, "plugin %s (%s) could not start: %s", path, api->name ? api->name : "?",
                 perr[0] ? perr : "no reason given");
        free(plugin);
        dlclose(dl);
        return NULL;
    }
    plugin->dl = dl;
    plugin->api = api;
    snprintf(plugin->path, sizeof plugin->path, "%s", path);
    if (api->model_repo(plugin->inst, plugin->repo, sizeof plugin->repo) != 0) plugin->repo[0] = 0;
    return plugin;
}

void xmcd_plugin_close(xmcd_plugin *plugin)
{
    if (!plugin) return;
    plugin->api->destroy(plugin->inst);
    dlclose(plugin->dl);
    free(plugin);
}
