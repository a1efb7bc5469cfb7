/* bad_abi_stage.c: a test fixture stage plugin built for an ABI version xmcd does not speak (99).
 *
 * xmcd must refuse it before calling anything, naming both versions; its functions abort() if ever called. */
#include <stdlib.h>

#include "xmc/stage.h"

static xmc_stage_instance *bad_abi_create(const config_setting_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    abort();
}

XMC_STAGE_EXPORT const xmc_stage_api xmc_stage_plugin = {
    .abi_version = 99,
    .name = "bad-abi",
    .create = bad_abi_create,
};
