/* bert_opt.c: the encoder's optimiser step, the word-embedding table row by row (see bert_opt.h). */
#include "bert_opt.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct xmci_bert_opt {
    const xmci_bert_tensor *word; /* NULL: the table is taken whole */
    size_t cap;                   /* rows a batch can reach (max_tokens, at most the table's) */
    uint32_t *rows, nrows;        /* the batch's rows of the table, ascending */
    uint32_t *live, nlive;        /* rows whose moments may be nonzero, in the order they joined */
    unsigned char *mark, *live_mark;
    float **bufs;                 /* the norm's buffers: the batch's rows, then the rest of the arena */
    float coef;                   /* the clipping coefficient of the step (1: none) */
    size_t *blens;
};

xmc_err xmci_bert_opt_new(const xmci_bert_params *params, int max_tokens, int whole, xmci_bert_opt **out,
                          xmc_error *err)
{
    xmci_bert_opt *bo = calloc(1, sizeof *bo);
    if (!bo) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    bo->coef = 1.0f;
    const xmci_bert_tensor *w = xmci_bert_params_find(params, "embeddings.word_embeddings.weight");
    /* row by row needs the table first in the arena (the norm's order) and rows of whole lanes of its sum */
    if (!whole && w && w->offset == 0 && w->cols > 0 && w->cols % 8 == 0 && w->rows > 0) {
        const size_t V = (size_t)w->rows;
        bo->word = w;
        bo->cap = max_tokens > 0 && (size_t)max_tokens < V ? (size_t)max_tokens : V;
        bo->rows = malloc(bo->cap * sizeof *bo->rows);
        bo->live = malloc(V * sizeof *bo->live);
        bo->mark = calloc(V, 1);
        bo->live_mark = calloc(V, 1);
        bo->bufs = malloc((bo->cap + 1) * sizeof *bo->bufs);
        bo->blens = malloc((bo->cap + 1) * sizeof *bo->blens);
        if (!bo->rows || !bo->live || !bo->mark || !bo->live_mark || !bo->bufs || !bo->blens) {
            xmci_bert_opt_free(bo);
            return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for the word-embedding rows (%zu)", V);
        }
    }
    *out = bo;
    return XMC_OK;
}

void xmci_bert_opt_free(xmci_bert_opt *bo)
{
    if (!bo) return;
    free(bo->rows);
    free(bo->live);
    free(bo->mark);
    free(bo->live_mark);
    free(bo->bufs);
    free(bo->blens);
    free(bo);
}

int xmci_bert_opt_by_rows(const xmci_bert_opt *bo) { return bo->word != NULL; }

void xmci_bert_opt_zero(xmci_bert_opt *bo, xmci_bert_params *grads)
{
    if (!bo->word) {
        xmci_bert_params_zero(grads);
        return;
    }
    const size_t wc = (size_t)bo->word->cols, V = (size_t)bo->word->rows * wc;
    for (uint32_t k = 0; k < bo->nrows; k++) memset(grads->mem + bo->rows[k] * wc, 0, wc * sizeof *grads->mem);
    memset(grads->mem + V, 0, (grads->n - V) * sizeof *grads->mem);
    bo->nrows = 0;
}

void xmci_bert_opt_rows(xmci_bert_opt *bo, const int32_t *ids, int stride, const int *lens, int B)
{
    if (!bo->word) return;
    uint32_t n = 0;
    for (int i = 0; i < B; i++)
        for (int p = 0; p < lens[i]; p++) {
            const uint32_t id = (uint32_t)ids[(size_t)i * stride + p];
            assert(n < bo->cap || bo->mark[id]);
            if (!bo->mark[id] && n < bo->cap) bo->mark[id] = 1, n++; /* the bound is the caller's contract */
        }
    /* ascending by a pass over the marks: a table of ~30,000 rows costs about what sorting n ids would */
    uint32_t k = 0;
    for (uint32_t r = 0; k < n; r++)
        if (bo->mark[r]) bo->mark[r] = 0, bo->rows[k++] = r;
    bo->nrows = n;
}

double xmci_bert_opt_clip(xmci_bert_opt *bo, xmci_bert_params *grads, float max_norm)
{
    double norm;
    if (!bo->word) {
        norm = xmci_grad_norm(&grads->mem, &grads->n, 1);
    } else {
        /* the table's nonzero rows in order, then the rest of the arena: the whole arena's sum, term for term */
        const size_t wc = (size_t)bo->word->cols, V = (size_t)bo->word->rows * wc;
        for (uint32_t k = 0; k < bo->nrows; k++) bo->bufs[k] = grads->mem + bo->rows[k] * wc, bo->blens[k] = wc;
        bo->bufs[bo->nrows] = grads->mem + V;
        bo->blens[bo->nrows] = grads->n - V;
        norm = xmci_grad_norm(bo->bufs, bo->blens, (int)bo->nrows + 1);
    }
    /* applied as AdamW reads the gradient (xmci_adamw_scale_grads): the same bits, one pass fewer */
    bo->coef = xmci_clip_coef(norm, max_norm);
    return norm;
}

/* HF's groups (PECOS's): no decay on biases and LayerNorm weights. */
static int no_decay(const char *name) { return strstr(name, "bias") || strstr(name, "LayerNorm.weight"); }

xmc_err xmci_bert_opt_update(xmci_bert_opt *bo, xmci_adamw *opt, xmci_bert_params *params,
                             const xmci_bert_params *grads, float lr, float wd, xmc_error *err)
{
    xmc_err rc = XMC_OK;
    xmci_adamw_scale_grads(opt, bo->coef);
    bo->coef = 1.0f; /* one step's */
    for (int t = 0; t < params->n_tensors && !rc; t++) {
        const xmci_bert_tensor *ten = &params->tensor[t];
        const float d = no_decay(ten->name) ? 0 : wd;
        if (bo->word && ten->offset == bo->word->offset && d == 0) {
            for (uint32_t k = 0; k < bo->nrows; k++) { /* the batch's rows join the live ones */
                const uint32_t r = bo->rows[k];
                if (!bo->live_mark[r]) bo->live_mark[r] = 1, bo->live[bo->nlive++] = r;
            }
            rc = xmci_adamw_update_rows(opt, ten->offset, params->mem + ten->offset, grads->mem + ten->offset,
                                        (size_t)ten->cols, bo->live, bo->nlive, lr, 0, err);
        } else {
            rc = xmci_adamw_update(opt, ten->offset, params->mem + ten->offset, grads->mem + ten->offset,
                                   xmci_bert_tensor_size(ten), lr, d, err);
        }
    }
    return rc;
}

void xmci_bert_opt_sync(xmci_bert_opt *bo, const xmci_adamw *opt)
{
    if (!bo->word) return;
    const size_t H = (size_t)bo->word->cols, off = bo->word->offset;
    bo->nlive = 0;
    for (uint32_t r = 0; r < (uint32_t)bo->word->rows; r++) {
        const float *m = opt->m + off + (size_t)r * H, *v = opt->v + off + (size_t)r * H;
        size_t i = 0;
        while (i < H && m[i] == 0 && v[i] == 0) i++;
        bo->live_mark[r] = i < H;
        if (i < H) bo->live[bo->nlive++] = r;
    }
}
