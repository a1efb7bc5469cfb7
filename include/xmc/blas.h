/* blas.h: which matrix-product kernels this process runs, and whether they fit the CPU.
 *
 * The encoder (its forward pass in serving, its training in `xmc train --xr-transformer`) spends nearly all
 * its time in OpenBLAS's sgemm. OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels by CPU model
 * when the library loads, and a CPU it does not know falls back to its oldest x86-64 set (Prescott, SSE3)
 * without a word: on an Intel Xeon with AVX-512 that OpenBLAS 0.3.21 did not recognise, sgemm ran at 44 GFLOP/s
 * a core with those kernels and 220 with its SkylakeX ones (docs/encoder.md). OpenBLAS reads its choice only
 * from the environment (OPENBLAS_CORETYPE) and only at load, so a process cannot fix it for itself: these
 * calls say what runs and what to set. Nothing here allocates or fails. */
#ifndef XMC_BLAS_H
#define XMC_BLAS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_blas_info {
    char config[160];  /* the BLAS's build ("OpenBLAS 0.3.21 DYNAMIC_ARCH ...") */
    char kernels[32];  /* the kernel set it chose ("Prescott", "Haswell", "SkylakeX", ...) */
    char cpu[16];      /* the widest vector instructions this CPU runs: "avx512", "avx2" or "baseline" */
    char advised[32];  /* the OPENBLAS_CORETYPE value that selects kernels for this CPU when the chosen set is
                        * of an older instruction set than it runs (below AVX2 on an AVX2 or AVX-512 CPU);
                        * "" when the choice fits */
} xmc_blas_info;

/* Fills out with the loaded OpenBLAS's facts (kernels, CPU, threads); never fails. */
void xmc_blas_get_info(xmc_blas_info *out);

/* One line (no newline) for an operator when info->advised is set: what runs, what to set; 0 and buf = ""
 * when there is nothing to advise. Truncated to cap. */
int xmc_blas_advice(const xmc_blas_info *info, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
