/* fuzz_config.c: xmcd's config loader on arbitrary bytes (RELIABILITY R18): NULL with a message, or a config;
 * never a crash and never exit(). */
#include "fuzz_util.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    xmcd_config *c = xmcd_config_load(fz_write("x.conf", data, size), err, sizeof err);
    if (c) xmcd_config_free(c);
    else if (!err[0]) abort();
    return 0;
}
