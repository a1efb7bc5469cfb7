/* adamw.c: AdamW (torch and HF forms) over spans or rows of a parameter arena, and global-norm clipping.
 *
 * The arithmetic follows the reference implementations operation by operation in float32 (scalars computed in
 * double and rounded once, as PyTorch does with a Python float), so that one step from the same gradients
 * matches them to the last bit or two. The norm for clipping is summed in double. */
#include "adamw.h"

#include <math.h>
#include <stdlib.h>

xmc_err xmci_adamw_new(size_t n, xmci_adamw_kind kind, float beta1, float beta2, float eps, xmci_adamw **out,
                      xmc_error *err)
{
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) ||
        (kind != XMCI_ADAMW_TORCH && kind != XMCI_ADAMW_HF))
        return xmc_error_set(err, XMC_ERR_ARG, "adamw: betas %g %g must be in [0, 1), eps %g >= 0", (double)beta1,
                             (double)beta2, (double)eps);
    xmci_adamw *opt = calloc(1, sizeof *opt);
    if (opt) {
        opt->m = calloc(n ? n : 1, sizeof *opt->m);
        opt->v = calloc(n ? n : 1, sizeof *opt->v);
    }
    if (!opt || !opt->m || !opt->v) {
        xmci_adamw_free(opt);
        return xmc_error_set(err, XMC_ERR_NOMEM, "adamw: out of memory for %zu moments", n);
    }
    opt->kind = kind, opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps, opt->n = n;
    *out = opt;
    return XMC_OK;
}

void xmci_adamw_free(xmci_adamw *opt)
{
    if (!opt) return;
    free(opt->m);
    free(opt->v);
    free(opt);
}

void xmci_adamw_next(xmci_adamw *opt) { opt->t++; }

/* The per-step scalars, computed in double and rounded once. */
typedef struct step_consts {
    float b1, one_b1, b2, one_b2, eps, decay, c2_sqrt, step;
} step_consts;

static step_consts consts(const xmci_adamw *opt, float lr, float wd)
{
    const double c1 = 1.0 - pow((double)opt->beta1, (double)opt->t), c2 = 1.0 - pow((double)opt->beta2, (double)opt->t);
    step_consts k = {opt->beta1, (float)(1.0 - (double)opt->beta1), opt->beta2, (float)(1.0 - (double)opt->beta2),
                     opt->eps, 0, (float)sqrt(c2), 0};
    if (opt->kind == XMCI_ADAMW_TORCH) {
        k.decay = (float)(1.0 - (double)lr * (double)wd);
        k.step = (float)(-(double)lr / c1);
    } else {
        k.decay = (float)(-(double)lr * (double)wd);
        k.step = (float)(-(double)lr * sqrt(c2) / c1);
    }
    return k;
}

static void update_span(const xmci_adamw *opt, const step_consts *k, float *m, float *v, float *p, const float *g,
                        size_t n, float wd)
{
    if (opt->kind == XMCI_ADAMW_TORCH) {
        for (size_t i = 0; i < n; i++) {
            if (wd != 0) p[i] *= k->decay;
            m[i] = m[i] * k->b1 + g[i] * k->one_b1;
            v[i] = v[i] * k->b2 + k->one_b2 * g[i] * g[i];
            float denom = sqrtf(v[i]) / k->c2_sqrt + k->eps;
            p[i] += k->step * m[i] / denom;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            m[i] = m[i] * k->b1 + g[i] * k->one_b1;
            v[i] = v[i] * k->b2 + k->one_b2 * g[i] * g[i];
            float denom = sqrtf(v[i]) + k->eps;
            p[i] += k->step * m[i] / denom;
            if (wd != 0) p[i] += p[i] * k->decay;
        }
    }
}

xmc_err xmci_adamw_update(xmci_adamw *opt, size_t off, float *p, const float *g, size_t n, float lr, float wd,
                         xmc_error *err)
{
    if (off > opt->n || n > opt->n - off || opt->t < 1)
        return xmc_error_set(err, XMC_ERR_RANGE, "adamw: span [%zu, +%zu) of %zu moments at step %lld", off, n, opt->n,
                             (long long)opt->t);
    step_consts k = consts(opt, lr, wd);
    update_span(opt, &k, opt->m + off, opt->v + off, p, g, n, wd);
    return XMC_OK;
}

xmc_err xmci_adamw_update_rows(xmci_adamw *opt, size_t off, float *p, const float *g, size_t cols,
                              const uint32_t *rows, size_t nrows, float lr, float wd, xmc_error *err)
{
    for (size_t i = 0; i < nrows; i++)
        if (cols == 0 || off > opt->n || rows[i] >= (opt->n - off) / cols || opt->t < 1)
            return xmc_error_set(err, XMC_ERR_RANGE, "adamw: row %u of %zu columns outside %zu moments from %zu",
                                 rows[i], cols, opt->n, off);
    step_consts k = consts(opt, lr, wd);
    for (size_t i = 0; i < nrows; i++) {
        size_t at = (size_t)rows[i] * cols;
        update_span(opt, &k, opt->m + off + at, opt->v + off + at, p + at, g + at, cols, wd);
    }
    return XMC_OK;
}

double xmci_clip_grad_norm(float *const *bufs, const size_t *lens, int k, float max_norm, float *coef)
{
    double ss = 0;
    for (int b = 0; b < k; b++)
        for (size_t i = 0; i < lens[b]; i++) ss += (double)bufs[b][i] * bufs[b][i];
    const double norm = sqrt(ss);
    float c = 1.0f;
    if (max_norm > 0) {
        float f = (float)((double)max_norm / (norm + 1e-6));
        if (f < 1.0f) {
            c = f;
            for (int b = 0; b < k; b++)
                for (size_t i = 0; i < lens[b]; i++) bufs[b][i] *= c;
        }
    }
    if (coef) *coef = c;
    return norm;
}
