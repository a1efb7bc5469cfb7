/* metrics.c: P@k, R@k, nDCG@k, PSP@k (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void xmci_inv_propensity(const uint32_t *freq, uint32_t nr_labels, uint64_t n_train, double a, double b, double *inv_prop)
{
    double c = (log((double)(n_train ? n_train : 1)) - 1.0) * pow(b + 1.0, a);
    for (uint32_t l = 0; l < nr_labels; l++) inv_prop[l] = 1.0 + c * pow((double)freq[l] + b, -a);
}

/* Sorts a row best first, keeping the given order among equal scores: the classifier returns its hits
 * ranked, ties already broken by raw score (beam.c), and a row is short (k <= XMC_MAX_K): insertion sort. */
static void sort_hits(xmc_hit *row, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        xmc_hit h = row[i];
        uint32_t j = i;
        while (j > 0 && row[j - 1].score < h.score) {
            row[j] = row[j - 1];
            j--;
        }
        row[j] = h;
    }
}

static int cmp_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

static int is_true(const xmci_csr *y, uint32_t r, uint32_t label)
{
    /* rows are short: linear scan (rows need not be sorted) */
    for (uint64_t p = y->indptr[r]; p < y->indptr[r + 1]; p++)
        if (y->indices[p] == label) return 1;
    return 0;
}

xmc_err xmci_metrics_compute(const xmc_hit *hits, const uint32_t *counts, uint32_t stride, const xmci_csr *y,
                            const double *inv_prop, uint32_t kmax, xmci_metrics *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    if (kmax < 1 || kmax > XMCI_METRICS_MAXK) return xmc_error_set(err, XMC_ERR_ARG, "k must be 1..%d", XMCI_METRICS_MAXK);
    if (y->rows == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no rows to evaluate");
    out->kmax = kmax;
    out->n = y->rows;
    out->has_psp = inv_prop != NULL;
    xmc_hit *row = malloc(((size_t)stride + 1) * sizeof *row);
    double *best = malloc(((size_t)y->cols + 1) * sizeof *best);
    double psp_num[XMCI_METRICS_MAXK + 1] = {0}, psp_den[XMCI_METRICS_MAXK + 1] = {0};
    if (!row || !best) {
        free(row);
        free(best);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    }
    for (uint32_t r = 0; r < y->rows; r++) {
        uint32_t n = counts[r] < stride ? counts[r] : stride;
        memcpy(row, hits + (size_t)r * stride, n * sizeof *row);
        sort_hits(row, n);
        uint32_t ntrue = (uint32_t)(y->indptr[r + 1] - y->indptr[r]);
        double hitsum = 0, dcg = 0, idcg = 0, pnum = 0;
        /* best achievable propensity-weighted hits */
        uint32_t nb = 0;
        if (inv_prop) {
            for (uint64_t p = y->indptr[r]; p < y->indptr[r + 1]; p++) best[nb++] = inv_prop[y->indices[p]];
            qsort(best, nb, sizeof *best, cmp_desc);
        }
        double pbest = 0;
        for (uint32_t k = 1; k <= kmax; k++) {
            if (k <= n && is_true(y, r, row[k - 1].label)) {
                hitsum += 1;
                dcg += 1.0 / log2((double)k + 1);
                if (inv_prop) pnum += inv_prop[row[k - 1].label];
            }
            if (k <= ntrue) idcg += 1.0 / log2((double)k + 1);
            if (inv_prop && k <= nb) pbest += best[k - 1];
            out->prec[k] += hitsum / k;
            out->recall[k] += hitsum / (ntrue ? ntrue : 1);
            out->ndcg[k] += idcg > 0 ? dcg / idcg : 0;
            psp_num[k] += pnum;
            psp_den[k] += pbest;
        }
    }
    for (uint32_t k = 1; k <= kmax; k++) {
        out->prec[k] /= y->rows;
        out->recall[k] /= y->rows;
        out->ndcg[k] /= y->rows;
        out->psp[k] = psp_den[k] > 0 ? psp_num[k] / psp_den[k] : 0;
    }
    free(row);
    free(best);
    return XMC_OK;
}
