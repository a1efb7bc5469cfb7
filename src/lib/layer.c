/* layer.c: laying out the rankers of one XR-Linear layer for beam search, and back (see layer.h).
 *
 * Building groups the nodes by parent (a counting sort, so children stay ascending), then for each parent
 * orders the entries of its children's weight rows by (feature, child) and cuts them into one row per feature. */
#include "layer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void xmci_layer_free(xmci_layer *L)
{
    if (L->owned) {
        free((void *)L->child_ptr);
        free((void *)L->child_idx);
        free((void *)L->chunk_ptr);
        free((void *)L->row_feat);
        free((void *)L->row_ptr);
        free((void *)L->ent_child);
        free((void *)L->ent_w);
    }
    memset(L, 0, sizeof *L);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The arrays of a layer being built (xmci_layer's are const). */
typedef struct layer_arrays {
    uint32_t *child_ptr, *child_idx;
    uint64_t *chunk_ptr;
    uint32_t *row_feat;
    uint64_t *row_ptr;
    uint32_t *ent_child;
    float *ent_w;
} layer_arrays;

static void arrays_free(layer_arrays *a)
{
    free(a->child_ptr);
    free(a->child_idx);
    free(a->chunk_ptr);
    free(a->row_feat);
    free(a->row_ptr);
    free(a->ent_child);
    free(a->ent_w);
}

/* Fills child_ptr (zeroed, nr_parents + 1) and child_idx (n) with the children of each parent, ascending, and
 * sets *maxc to the most children of one parent. XMC_ERR_SHAPE, XMC_ERR_NOMEM. */
static xmc_err group_children(const uint32_t *parent, uint32_t n, uint32_t nr_parents, layer_arrays *a,
                              uint32_t *maxc, xmc_error *err)
{
    for (uint32_t j = 0; j < n; j++) {
        if (parent[j] >= nr_parents)
            return xmc_error_set(err, XMC_ERR_SHAPE, "node %u has parent %u of %u", j, parent[j], nr_parents);
        a->child_ptr[parent[j] + 1]++;
    }
    *maxc = 0;
    for (uint32_t p = 0; p < nr_parents; p++) {
        uint32_t c = a->child_ptr[p + 1];
        if (c > *maxc) *maxc = c;
        a->child_ptr[p + 1] += a->child_ptr[p];
    }
    uint32_t *fill = malloc(((size_t)nr_parents + 1) * sizeof *fill);
    if (!fill) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    memcpy(fill, a->child_ptr, ((size_t)nr_parents + 1) * sizeof *fill);
    for (uint32_t j = 0; j < n; j++) a->child_idx[fill[parent[j]]++] = j;
    free(fill);
    return XMC_OK;
}

/* Cuts the entries of each parent's children into rows by feature: chunk_ptr, row_feat, row_ptr, ent_*.
 * Sets *nr_rows and *nnz. XMC_ERR_NOMEM.
 *
 * A parent's entries are ordered by (feature, child) with a counting sort over the features it uses: the
 * children are taken in order, so each feature's entries come out by child (what sorting the pairs gave, in
 * O(entries + features used x log) instead of O(entries x log)). */
static xmc_err lay_out_chunks(const xmci_csr *w, uint32_t nr_parents, layer_arrays *a, uint64_t *nr_rows,
                              uint64_t *nnz, xmc_error *err)
{
    size_t nf = (size_t)w->cols + 1;
    uint32_t *stamp = calloc(nf, sizeof *stamp);       /* feature -> last parent + 1 that used it */
    uint64_t *at = malloc(nf * sizeof *at);             /* feature -> count, then next slot */
    uint32_t *feats = malloc(nf * sizeof *feats);       /* the parent's features */
    if (!stamp || !at || !feats) {
        free(stamp);
        free(at);
        free(feats);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    }
    uint64_t rows = 0, q = 0;
    a->row_ptr[0] = 0;
    for (uint32_t p = 0; p < nr_parents; p++) {
        uint32_t nu = 0;
        for (uint32_t c = a->child_ptr[p]; c < a->child_ptr[p + 1]; c++) {
            uint32_t j = a->child_idx[c];
            for (uint64_t e = w->indptr[j]; e < w->indptr[j + 1]; e++) {
                uint32_t f = w->indices[e];
                assert(f < nf);
                if (stamp[f] != p + 1) { stamp[f] = p + 1; at[f] = 0; feats[nu++] = f; }
                at[f]++;
            }
        }
        qsort(feats, nu, sizeof *feats, cmp_u32);
        /* one row per feature, ascending; at[f] becomes the feature's first slot */
        uint64_t base = q;
        for (uint32_t u = 0; u < nu; u++) {
            uint32_t f = feats[u];
            uint64_t cnt = at[f];
            a->row_feat[rows] = f;
            at[f] = base;
            base += cnt;
            a->row_ptr[++rows] = base;
        }
        for (uint32_t c = a->child_ptr[p]; c < a->child_ptr[p + 1]; c++) {
            uint32_t j = a->child_idx[c];
            for (uint64_t e = w->indptr[j]; e < w->indptr[j + 1]; e++) {
                uint64_t s = at[w->indices[e]]++;
                a->ent_child[s] = c - a->child_ptr[p];
                a->ent_w[s] = w->data[e];
            }
        }
        q = base;
        a->chunk_ptr[p + 1] = rows;
    }
    free(stamp);
    free(at);
    free(feats);
    assert(q == xmci_csr_nnz(w));
    *nr_rows = rows;
    *nnz = q;
    return XMC_OK;
}

xmc_err xmci_layer_build(const xmci_csr *w, const uint32_t *parent, uint32_t nr_parents, xmci_layer *L,
                        xmc_error *err)
{
    memset(L, 0, sizeof *L);
    uint32_t n = w->rows;
    uint64_t nnz = xmci_csr_nnz(w);
    layer_arrays a = {
        .child_ptr = calloc((size_t)nr_parents + 1, sizeof *a.child_ptr),
        .child_idx = malloc((n ? n : 1) * sizeof *a.child_idx),
        .chunk_ptr = calloc((size_t)nr_parents + 1, sizeof *a.chunk_ptr),
        .row_feat = malloc((nnz ? nnz : 1) * sizeof *a.row_feat),
        .row_ptr = malloc((nnz + 1) * sizeof *a.row_ptr),
        .ent_child = malloc((nnz ? nnz : 1) * sizeof *a.ent_child),
        .ent_w = malloc((nnz ? nnz : 1) * sizeof *a.ent_w),
    };
    xmc_err rc = XMC_OK;
    uint32_t maxc = 0;
    uint64_t rows = 0, q = 0;
    if (!a.child_ptr || !a.child_idx || !a.chunk_ptr || !a.row_feat || !a.row_ptr || !a.ent_child || !a.ent_w)
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory laying out a layer");
    if (!rc) rc = group_children(parent, n, nr_parents, &a, &maxc, err);
    if (!rc) rc = lay_out_chunks(w, nr_parents, &a, &rows, &q, err);
    if (rc) {
        arrays_free(&a);
        return rc;
    }
    L->nr_nodes = n;
    L->nr_parents = nr_parents;
    L->max_children = maxc;
    L->nr_rows = rows;
    L->nnz = q;
    L->child_ptr = a.child_ptr;
    L->child_idx = a.child_idx;
    L->chunk_ptr = a.chunk_ptr;
    L->row_feat = a.row_feat;
    L->row_ptr = a.row_ptr;
    L->ent_child = a.ent_child;
    L->ent_w = a.ent_w;
    L->owned = 1;
    return XMC_OK;
}

xmc_err xmci_layer_weights(const xmci_layer *L, uint32_t nr_features, xmci_csr *w, xmc_error *err)
{
    /* rows per node, then fill in chunk order and sort each row */
    xmc_err rc = xmci_csr_alloc(w, L->nr_nodes, nr_features + 1, L->nnz, err);
    if (rc) return rc;
    for (uint32_t p = 0; p < L->nr_parents; p++)
        for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++)
            for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++)
                w->indptr[L->child_idx[L->child_ptr[p] + L->ent_child[e]] + 1]++;
    for (uint32_t j = 0; j < L->nr_nodes; j++) w->indptr[j + 1] += w->indptr[j];
    uint64_t *fill = malloc(((size_t)L->nr_nodes + 1) * sizeof *fill);
    if (!fill) { xmci_csr_free(w); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    memcpy(fill, w->indptr, ((size_t)L->nr_nodes + 1) * sizeof *fill);
    for (uint32_t p = 0; p < L->nr_parents; p++)
        for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++)
            for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++) {
                uint32_t j = L->child_idx[L->child_ptr[p] + L->ent_child[e]];
                uint64_t at = fill[j]++;
                w->indices[at] = L->row_feat[r];
                w->data[at] = L->ent_w[e];
            }
    free(fill);
    return XMC_OK;
}
