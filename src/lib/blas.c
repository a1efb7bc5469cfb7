/* blas.c: the matrix-product kernels OpenBLAS chose, against what the CPU runs (xmc/blas.h). */
#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xmc/blas.h"

/* OpenBLAS's kernel sets (openblas_get_corename) by the widest instructions they use; a name in neither list
 * is an older set (SSE2/SSE3/AVX: Prescott, Core2, Nehalem, Sandybridge, ...). */
static const char *const avx512_sets[] = {"skylakex", "cooperlake", "sapphirerapids", NULL};
static const char *const avx2_sets[] = {"haswell", "zen", NULL};

static int in_list(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcasecmp(name, list[i])) return 1;
    return 0;
}

/* 2: AVX-512 (F, CD, BW, DQ, VL: what OpenBLAS's SkylakeX kernels need), 1: AVX2 and FMA, 0: neither */
static int cpu_level(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "?");
}

void xmc_blas_get_info(xmc_blas_info *out)
{
    memset(out, 0, sizeof *out);
    copy(out->config, sizeof out->config, openblas_get_config());
    copy(out->kernels, sizeof out->kernels, openblas_get_corename());
    /* the config string ends in a space on some builds */
    for (size_t n = strlen(out->config); n > 0 && out->config[n - 1] == ' '; n--) out->config[n - 1] = 0;
    int cpu = cpu_level();
    copy(out->cpu, sizeof out->cpu, cpu == 2 ? "avx512" : cpu == 1 ? "avx2" : "baseline");
    int sets = in_list(out->kernels, avx512_sets) ? 2 : in_list(out->kernels, avx2_sets) ? 1 : 0;
    /* Only an unmistakable fallback is flagged, kernels older than AVX2 on a CPU that runs AVX2: between an AVX2
     * and an AVX-512 set the faster one depends on the CPU (some run AVX-512 at half width). */
    if (sets == 0 && cpu > 0) copy(out->advised, sizeof out->advised, cpu == 2 ? "SkylakeX" : "Haswell");
}

int xmc_blas_advice(const xmc_blas_info *info, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    if (!info->advised[0]) return 0;
    snprintf(buf, cap,
             "OpenBLAS runs its %s kernels on a CPU with %s (its CPU detection does not know this model), so the "
             "encoder's matrix products run several times slower than they can: set OPENBLAS_CORETYPE=%s in the "
             "environment (docs/encoder.md)",
             info->kernels, !strcmp(info->cpu, "avx512") ? "AVX-512" : "AVX2", info->advised);
    return 1;
}
