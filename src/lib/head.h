/* head.h: the XMC head of XR-Transformer and PECOS's squared hinge loss over an active set of clusters.
 *
 * The head has one weight row and one bias per cluster: score(i, j) = <pooled_i, W_j> + b_j. A batch scores
 * only its active set (row i: positives, then the children of the teacher-forced and matcher-aware parents,
 * given as a CSR matrix whose values are the label values, 0 for a negative), never a dense B x L matrix.
 *
 * Loss (PECOS HingeLoss(margin 1, power 2) over rows padded to a common width A, then .mean(1).mean()):
 *   L = (1/B) sum_i (1/A) [ sum_{j in active_i} w_ij max(0, 1 - y_ij s_ij)^2 + (A - |active_i|) ]
 * y = +1 where the value is > 0, else -1; w = 1, or with weighted the label value for a positive (1 for a
 * negative). Each padding slot of PECOS scores 0 against y = 0 and adds exactly 1: a constant with no
 * gradient, kept so that the loss and its 1/(B A) gradient scale equal PECOS's. Duplicate entries (negatives
 * drawn with replacement) count as often as they appear.
 *
 * Threads: one cblas_sdot per active entry and the row updates in the calling thread. */
#ifndef XMCI_HEAD_H
#define XMCI_HEAD_H

#include <stddef.h>
#include <stdint.h>
#include "smat.h"
#include "xmc/error.h"

/* Plain arrays, owned by the caller: w is labels x hidden (row-major), b is labels. */
typedef struct xmci_head {
    int labels, hidden;
    float *w, *b;
} xmci_head;

/* Loss and gradients of a batch of active->rows pooled vectors (rows x hidden).
 * active: rows x head->labels CSR, values = label values; width >= the longest row (PECOS's padded width).
 * Writes *loss; scores and d_scores (nnz entries, in active's order) when not NULL; d_pooled (rows x hidden,
 * overwritten) when not NULL; adds into dw/db (same shapes as the head) when not NULL: only the active rows
 * change. Fails with XMC_ERR_SHAPE (active's columns, a row longer than width) or XMC_ERR_RANGE (a cluster
 * index outside the head, a negative or non-finite value); nothing is written then. */
xmc_err xmci_head_loss(const xmci_head *head, const float *pooled, const xmci_csr *active, int width, int weighted,
                      double *loss, float *scores, float *d_scores, float *d_pooled, float *dw, float *db,
                      xmc_error *err);

#endif
