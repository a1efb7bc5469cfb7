/* metrics.h: ranking metrics of XMC: P@k, R@k, nDCG@k and propensity-scored P@k (PSP@k).
 *
 * Predictions are sorted by descending score, equal scores kept in the order given: the classifier's rank,
 * which breaks ties of saturated post-processed scores by raw score (PECOS's evaluate takes the lower label
 * id there). P@k counts hits in the top k over n*k (a row with fewer than k predictions keeps its hit
 * count); R@k = mean of hits@k / max(|y|, 1); nDCG@k = mean of DCG@k / ideal DCG@k (log2 discounts); PSP@k =
 * sum of the inverse propensities of hits in the top k over the best achievable such sum (Jain et al. 2016:
 * inv_p = 1 + (ln N - 1)(B + 1)^A (N_l + B)^-A from training label counts N_l). */
#ifndef XMCI_METRICS_H
#define XMCI_METRICS_H

#include <stdint.h>
#include "smat.h"
#include "xmc/xmc.h"

#define XMCI_METRICS_MAXK 100

typedef struct xmci_metrics {
    uint32_t kmax, n;
    double prec[XMCI_METRICS_MAXK + 1], recall[XMCI_METRICS_MAXK + 1], ndcg[XMCI_METRICS_MAXK + 1],
        psp[XMCI_METRICS_MAXK + 1];  /* index k = @k, 1..kmax */
    int has_psp;
} xmci_metrics;

/* inv_prop[l] for L labels from training counts freq[l] over n_train instances. */
void xmci_inv_propensity(const uint32_t *freq, uint32_t nr_labels, uint64_t n_train, double a, double b, double *inv_prop);

/* hits: row i's predictions at hits[i * stride], counts[i] of them; y: n x L truth. inv_prop may be NULL. */
xmc_err xmci_metrics_compute(const xmc_hit *hits, const uint32_t *counts, uint32_t stride, const xmci_csr *y,
                            const double *inv_prop, uint32_t kmax, xmci_metrics *out, xmc_error *err);

#endif
