/* fuzz_util.h: shared by the libFuzzer targets: write the input to a file in a per-process temp dir. */
#ifndef XMC_FUZZ_UTIL_H
#define XMC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[64];

__attribute__((unused)) static const char *fz_tmpdir(void)
{
    if (!fz_dir[0]) {
        snprintf(fz_dir, sizeof fz_dir, "/tmp/xmc-fuzz-%d", (int)getpid());
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", fz_dir, fz_dir);
        if (system(cmd) != 0) abort();
    }
    return fz_dir;
}

/* Writes data to <tmp>/<name> and returns the path (static buffer). */
__attribute__((unused)) static const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif
