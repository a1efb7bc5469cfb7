/* adamw.h: AdamW with decoupled weight decay, in torch's form or in HF transformers' (PECOS's), and clipping
 * of gradients by their global norm.
 *
 * State: first and second moments for n floats, and the step count t. A parameter arena is updated in spans
 * (xmci_adamw_update on [off, off + n)), each with its own lr and weight decay, so that one optimiser covers
 * a whole arena with per-tensor decay groups; the head and the encoder each get their own optimiser.
 * Per step: call xmci_adamw_next once, then update every span. With g the gradient, in float32, in this order:
 *   both:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;  c1 = 1 - b1^t, c2 = 1 - b2^t
 *   XMCI_ADAMW_TORCH (torch.optim.AdamW): p *= 1 - lr wd first;  p -= (lr / c1) m / (sqrt(v) / sqrt(c2) + eps)
 *   XMCI_ADAMW_HF (transformers.AdamW, what PECOS steps with): p -= (lr sqrt(c2) / c1) m / (sqrt(v) + eps),
 *                 then p -= lr wd p  (eps on the uncorrected sqrt(v): the two differ from the first step on)
 * xmci_adamw_update_rows updates only given rows of a row-major matrix, the moments of the other rows left as
 * they are: torch.optim.SparseAdam's lazy update for a head whose gradient is row-sparse, and, given every row
 * whose moments or gradient are not all zero, the dense update's exact result without weight decay (xrt.c's
 * word-embedding rows).
 *
 * Ownership: the optimiser owns its moments; parameters and gradients are the caller's.
 * Speed: spans are updated eight floats at a time where the CPU has AVX (the same operations, no FMA, so the
 * same bits as the scalar loop) and, with threads > 1, a long span or a long list of rows is split between
 * threads. */
#ifndef XMCI_ADAMW_H
#define XMCI_ADAMW_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

typedef enum xmci_adamw_kind { XMCI_ADAMW_TORCH, XMCI_ADAMW_HF } xmci_adamw_kind;

typedef struct xmci_adamw {
    xmci_adamw_kind kind;
    float beta1, beta2, eps;
    int64_t t;  /* steps taken */
    size_t n;
    float *m, *v;
    float gscale; /* this step reads every gradient as g * gscale (xmci_adamw_scale_grads; 1 after next) */
    int threads; /* threads of a span update (1 after xmci_adamw_new; at most XMCI_ADAMW_MAX_THREADS); the
                  * result is the same bits for any count */
    struct xmci_pool *pool; /* NULL after xmci_adamw_new; when set (the caller's, it must outlive the updates) the
                             * threads are the pool's, not started per span: min(threads, the pool's) of them */
} xmci_adamw;

#define XMCI_ADAMW_MAX_THREADS 16

/* Moments for n floats, zeroed, t = 0. Fails with XMC_ERR_ARG (betas outside [0, 1), eps < 0) or
 * XMC_ERR_NOMEM; *out untouched. */
xmc_err xmci_adamw_new(size_t n, xmci_adamw_kind kind, float beta1, float beta2, float eps, xmci_adamw **out,
                      xmc_error *err);
void xmci_adamw_free(xmci_adamw *opt);
/* Starts a step: t += 1, gradients read as they are. */
void xmci_adamw_next(xmci_adamw *opt);
/* This step (after xmci_adamw_next) reads every gradient as g * c, the float product, so the same bits as
 * scaling the gradients by c first (clipping's coefficient), without a pass over them to do it. */
void xmci_adamw_scale_grads(xmci_adamw *opt, float c);
/* Updates p[0..n) from g[0..n) with the moments at [off, off + n). Fails with XMC_ERR_RANGE (span outside
 * the optimiser, or no xmci_adamw_next yet); nothing changes then. */
xmc_err xmci_adamw_update(xmci_adamw *opt, size_t off, float *p, const float *g, size_t n, float lr, float wd,
                         xmc_error *err);
/* The same for rows[0..nrows) of a matrix of cols columns whose moments start at off (row r at off + r cols). */
xmc_err xmci_adamw_update_rows(xmci_adamw *opt, size_t off, float *p, const float *g, size_t cols,
                              const uint32_t *rows, size_t nrows, float lr, float wd, xmc_error *err);

/* The global 2-norm of k buffers, as xmci_clip_grad_norm sums it, and the coefficient it would scale them by
 * (1 when max_norm is 0 or the norm is within it): for a caller that applies it as it reads them. */
double xmci_grad_norm(float *const *bufs, const size_t *lens, int k);
float xmci_clip_coef(double norm, float max_norm);

/* Global 2-norm of k gradient buffers (bufs[i] of lens[i] floats; summed in double over eight partial sums, so
 * that cutting the buffers at multiples of 8 floats, or leaving out such pieces that are all zero, changes no
 * bit); if max_norm > 0 and the coefficient
 * max_norm / (norm + 1e-6) is below 1 (torch's clip_grad_norm_), every buffer is scaled by it. Returns the
 * norm before clipping; *coef (if not NULL) gets the factor applied (1 when none). */
double xmci_clip_grad_norm(float *const *bufs, const size_t *lens, int k, float max_norm, float *coef);

#endif
