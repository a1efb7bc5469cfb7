/* tron.h: L2-regularised L2-loss SVM solved in the primal by Newton's method with preconditioned conjugate
 * gradients (PECOS's L2R_L2LOSS_SVC_PRIMAL, which follows liblinear's newton.cpp), one binary problem at a time.
 *
 * Problem (the bias b is a constant feature of value `bias`, regularised like every other weight):
 *   f(w, b) = 1/2 (|w|^2 + b^2) + sum_i C_i max(0, 1 - y_i (w.x_i + b*bias))^2,   C_i = cp (y_i > 0) or cn.
 * Each Newton step works on the active set I = {i : y_i (w.x_i + b*bias) < 1}: gradient
 * g = w + 2 sum_{i in I} C_i y_i (y_i w.x_i - 1) x_i, Hessian H = Id + 2 sum_{i in I} C_i x_i x_i^T, a step s from
 * H s = -g by CG preconditioned with diag(H) blended toward the identity, then a backtracking line search.
 * Starting from w = 0, it stops when |g| <= eps |g(0)| (or after max_iter steps, or when a step no longer
 * changes f). The name is liblinear's historical one; PECOS's solver has no trust region. Arithmetic follows
 * PECOS's float32 build (float vectors, double scalars) so that its results are reproduced closely. */
#ifndef XMCI_TRON_H
#define XMCI_TRON_H

#include <stdint.h>
#include "smat.h"

typedef struct xmci_tron_params {
    double cp, cn;      /* costs of positive / negative errors; default 1, 1 */
    double eps;         /* stop when |grad| <= eps |grad at w = 0|; default 0.01 (PECOS's newton_eps) */
    int max_iter;       /* Newton steps at most; default 1000 (PECOS's fixed value) */
    float bias;         /* value of the bias feature; 0 = no bias; default 1 */
    float threshold;    /* prune |w| < threshold; default 0.1 */
} xmci_tron_params;

void xmci_tron_params_default(xmci_tron_params *p);

/* Scratch for one thread, sized for nr_features and up to max_inst instances per problem (about
 * 48 bytes per feature and 16 per instance). Fails only for lack of memory (*out untouched). */
typedef struct xmci_tron_ws xmci_tron_ws;
xmc_err xmci_tron_ws_new(uint32_t nr_features, uint32_t max_inst, xmci_tron_ws **out, xmc_error *err);
void xmci_tron_ws_free(xmci_tron_ws *ws);

/* Solves one problem over rows inst[0..n) of x (rows sorted by column, x->cols <= the workspace's
 * nr_features, n <= its max_inst) with labels y (+1 / -1). Cannot fail. Results stay in ws until the next
 * solve: *out_idx / *out_val (ascending feature ids; the bias weight, if kept, as feature x->cols), count
 * returned. Allocation-free; O(nnz of the instances) per CG step, never O(features). */
uint32_t xmci_tron_solve(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                        const xmci_tron_params *p, xmci_tron_ws *ws, const uint32_t **out_idx, const float **out_val);

/* The same problem started from w0 (w0_n entries, feature ids of x, any order; ids no instance has are ignored)
 * and bias weight b0 instead of 0: a warm start from an earlier model's weights. The stopping test stays
 * |grad| <= eps |grad at w = 0| (liblinear's), so the closer w0 is to the optimum, the fewer Newton steps. */
uint32_t xmci_tron_solve_from(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                             const xmci_tron_params *p, const uint32_t *w0_idx, const float *w0_val, uint32_t w0_n,
                             float b0, xmci_tron_ws *ws, const uint32_t **out_idx, const float **out_val);

/* What the last solve did (for tests and tuning). */
typedef struct xmci_tron_stats {
    int newton_iters;   /* line-searched steps taken */
    int cg_iters;       /* CG iterations over all steps */
    double f;           /* final objective */
    double gnorm0, gnorm;
} xmci_tron_stats;
void xmci_tron_last_stats(const xmci_tron_ws *ws, xmci_tron_stats *st);

#endif
