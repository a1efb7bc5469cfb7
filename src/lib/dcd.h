/* dcd.h: L2-regularised L2-loss SVM solved in the dual by coordinate descent (liblinear's method, with
 * PECOS's defaults and its exact instance order), one binary problem at a time.
 *
 * Problem: min_w 1/2 |w|^2 + sum_i C_i max(0, 1 - y_i (w.x_i + b*bias))^2, with C_i = Cp for positives and
 * Cn for negatives; the bias is a constant feature of value `bias` whose weight b is learned like the rest.
 * Each solve shuffles its active set with a fresh mt19937(seed) per pass order (as PECOS), shrinks
 * coordinates whose projected gradient says they are settled, and stops when the projected-gradient spread
 * is below eps or after max_iter passes. Weights with |w| < threshold are dropped. */
#ifndef XMCI_DCD_H
#define XMCI_DCD_H

#include <stdint.h>
#include "smat.h"

typedef struct xmci_dcd_params {
    double cp, cn;      /* costs of positive / negative errors; default 1, 1 */
    double eps;         /* stopping tolerance; default 0.1 */
    int max_iter;       /* passes over the active set; default 100 */
    float bias;         /* value of the bias feature; 0 = no bias; default 1 */
    float threshold;    /* prune |w| < threshold; default 0.1 */
    uint32_t seed;      /* default 0 */
} xmci_dcd_params;

void xmci_dcd_params_default(xmci_dcd_params *p);

/* Scratch for one thread, sized for nr_features and up to max_inst instances per problem. */
typedef struct xmci_dcd_ws xmci_dcd_ws;
xmc_err xmci_dcd_ws_new(uint32_t nr_features, uint32_t max_inst, xmci_dcd_ws **out, xmc_error *err);
void xmci_dcd_ws_free(xmci_dcd_ws *ws);

/* Solves one problem over rows inst[0..n) of x (rows sorted by column) with labels y (+1 / -1).
 * Results stay in ws until the next solve: *out_idx / *out_val (ascending feature ids; the bias weight,
 * if kept, as feature x->cols), count returned. Allocation-free. */
uint32_t xmci_dcd_solve(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                       const xmci_dcd_params *p, xmci_dcd_ws *ws, const uint32_t **out_idx, const float **out_val);

/* What a caller that solves many problems over the same rows can work out once for all of them (a parent's
 * block, xlinear_train.c): sqnorm[r], row r's sum of squares as xmci_dcd_row_sqnorms adds it (NULL: each solve
 * adds it up), and dense: the instances cover most of x's rows, so that with a threshold > 0 the solve clears and
 * collects over every column rather than listing the ones it may touch. Same weights as without. */
typedef struct xmci_dcd_rows {
    const float *sqnorm;
    int dense;
} xmci_dcd_rows;

uint32_t xmci_dcd_solve_rows(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                            const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws,
                            const uint32_t **out_idx, const float **out_val);

/* Several problems over the same instances in the same order: labels y[c * n .. c * n + n) for problem c <
 * nsolves <= XMCI_DCD_GROUP, the rest as xmci_dcd_solve_rows. Each problem's weights are the bits its own
 * xmci_dcd_solve_rows would give; emit(ctx, c, idx, val, m, passes) hands them over as each problem finishes (in
 * any order; idx / val valid during the call). 0, or -1 when the group's scratch (allocated at the workspace's
 * first group, (nr_features + 1) x 8 floats) cannot be had or emit returned non-zero (the rest are not emitted);
 * the workspace is fit for the next solve either way. */
#define XMCI_DCD_GROUP 8
typedef int (*xmci_dcd_emit)(void *ctx, int c, const uint32_t *idx, const float *val, uint32_t m, int passes);
int xmci_dcd_solve_group(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n, int nsolves,
                         const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws, xmci_dcd_emit emit,
                         void *ctx);

/* out[r - first] = sum of x[r, .]^2 in row order, for rows first..end-1. */
void xmci_dcd_row_sqnorms(const xmci_csr *x, uint32_t first, uint32_t end, float *out);

/* Passes over the active set the last solve made. */
int xmci_dcd_last_iters(const xmci_dcd_ws *ws);

#endif
