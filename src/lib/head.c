/* head.c: XMC head scores and PECOS's (weighted) squared hinge over the active set, with its gradients.
 *
 * For each active entry: s = <p_i, W_j> + b_j, m = max(0, 1 - y s), loss term w m^2 / (B A), and
 * dL/ds = -2 w y m / (B A). Then dL/dp_i += dL/ds W_j, dL/dW_j += dL/ds p_i, dL/db_j += dL/ds: only the active
 * rows of the head are read or written, so the cost is nnz x hidden whatever the number of clusters.
 * Sums are in double; the references are float64. */
#include "head.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

xmc_err xmci_head_loss(const xmci_head *head, const float *pooled, const xmci_csr *active, int width, int weighted,
                      double *loss, float *scores, float *d_scores, float *d_pooled, float *dw, float *db,
                      xmc_error *err)
{
    const int H = head->hidden;
    const uint32_t B = active->rows;
    if (B < 1 || active->cols != (uint32_t)head->labels)
        return xmc_error_set(err, XMC_ERR_SHAPE, "head loss: active set of %u rows x %u clusters, head has %d clusters",
                             B, active->cols, head->labels);
    for (uint32_t i = 0; i < B; i++) {
        uint64_t len = active->indptr[i + 1] - active->indptr[i];
        if (len > (uint64_t)width)
            return xmc_error_set(err, XMC_ERR_SHAPE, "head loss: row %u has %llu active clusters, width is %d", i,
                                 (unsigned long long)len, width);
        for (uint64_t e = active->indptr[i]; e < active->indptr[i + 1]; e++)
            if (active->indices[e] >= (uint32_t)head->labels || !(active->data[e] >= 0) || !isfinite(active->data[e]))
                return xmc_error_set(err, XMC_ERR_RANGE, "head loss: row %u: cluster %u value %g (head has %d clusters)",
                                     i, active->indices[e], (double)active->data[e], head->labels);
    }
    const double scale = 1.0 / ((double)B * (double)width);
    double total = 0;
    if (d_pooled) memset(d_pooled, 0, (size_t)B * H * sizeof *d_pooled);
    for (uint32_t i = 0; i < B; i++) {
        const float *p = pooled + (size_t)i * H;
        uint64_t len = active->indptr[i + 1] - active->indptr[i];
        double row = (double)width - (double)len; /* padding: one per empty slot */
        for (uint64_t e = active->indptr[i]; e < active->indptr[i + 1]; e++) {
            const uint32_t j = active->indices[e];
            const float *wj = head->w + (size_t)j * H;
            const float v = active->data[e];
            const double y = v > 0 ? 1.0 : -1.0, w = (weighted && v > 0) ? (double)v : 1.0;
            const float s = cblas_sdot(H, p, 1, wj, 1) + head->b[j];
            const double m = !(1.0 - y * s <= 0) ? 1.0 - y * s : 0.0; /* a NaN score stays NaN, not 0 */
            row += w * m * m;
            const float ds = (float)(-2.0 * w * y * m * scale);
            if (scores) scores[e] = s;
            if (d_scores) d_scores[e] = ds;
            if (ds == 0) continue;
            if (d_pooled) cblas_saxpy(H, ds, wj, 1, d_pooled + (size_t)i * H, 1);
            if (dw) cblas_saxpy(H, ds, p, 1, dw + (size_t)j * H, 1);
            if (db) db[j] += ds;
        }
        total += row;
    }
    *loss = total * scale;
    return XMC_OK;
}
