/* layer.h: one layer of an XR-Linear model (xlinear.h) laid out for beam search: the rankers of the layer's
 * nodes, grouped by parent, each parent's children scored together (MSCM-style).
 *
 * Layout:
 *   children of parent p  = child_idx[child_ptr[p] .. child_ptr[p+1])          (ascending node ids)
 *   the weights of those children form chunk p: rows chunk_ptr[p] .. chunk_ptr[p+1], one row per feature
 *   that any of them uses (row_feat ascending), and row r holds entries row_ptr[r] .. row_ptr[r+1] of
 *   (ent_child = position of the child among p's children, ent_w = weight).
 * Scoring the children of p for a document x is then one merge of x's sorted features with the chunk's
 * rows: cost ~ nnz(x) * log(rows) + matched entries, independent of how long a child's weight vector is.
 * Features are 0..nr_features-1 plus the bias feature nr_features (value `bias` in every document).
 *
 * Arrays are owned (built here) or views into a mapped model (loaded, xlinear.h); xmci_layer_free handles
 * both. */
#ifndef XMCI_LAYER_H
#define XMCI_LAYER_H

#include <stdint.h>
#include "smat.h"
#include "xmc/error.h"

typedef struct xmci_layer {
    uint32_t nr_nodes, nr_parents, max_children;
    uint64_t nr_rows, nnz;
    const uint32_t *child_ptr;  /* nr_parents + 1 */
    const uint32_t *child_idx;  /* nr_nodes */
    const uint64_t *chunk_ptr;  /* nr_parents + 1 */
    const uint32_t *row_feat;   /* nr_rows */
    const uint64_t *row_ptr;    /* nr_rows + 1 */
    const uint32_t *ent_child;  /* nnz */
    const float *ent_w;         /* nnz */
    int owned;
} xmci_layer;

/* Builds layer t of a model from per-node weight columns: w is nr_nodes x (nr_features + 1) CSR (a row
 * per node, sorted), parent[j] the parent of node j among nr_parents. XMC_ERR_SHAPE (a parent out of range),
 * XMC_ERR_NOMEM; *layer is then empty. */
xmc_err xmci_layer_build(const xmci_csr *w, const uint32_t *parent, uint32_t nr_parents, xmci_layer *layer,
                        xmc_error *err);
void xmci_layer_free(xmci_layer *layer);
/* The weight rows back as CSR nr_nodes x (nr_features + 1) (for inspect and tests). */
xmc_err xmci_layer_weights(const xmci_layer *layer, uint32_t nr_features, xmci_csr *w, xmc_error *err);

#endif
