/* tree.h: the hierarchical label tree as a chain of layers, top to bottom, as PECOS's cluster chain.
 *
 * Layer t has nr_nodes[t] nodes; parent[t][j] is node j's parent in layer t-1 (layer 0's parent is the
 * root, 0). The last layer's nodes are the labels. Built by recursive balanced 2-means on the label
 * embeddings to depth d = max(1, ceil(log2(L / max_leaf_size))) (one flat layer when max_leaf_size >= L),
 * then the 2^d leaf clusters are grouped nr_splits at a time (cluster k -> k / nr_splits) while more than
 * nr_splits remain, so that every inner node has up to nr_splits children. */
#ifndef XMCI_TREE_H
#define XMCI_TREE_H

#include <stdint.h>
#include "smat.h"

#define XMCI_TREE_MAX_DEPTH 32

typedef struct xmci_tree {
    uint32_t depth;                          /* number of layers, >= 1 */
    uint32_t nr_nodes[XMCI_TREE_MAX_DEPTH];
    uint32_t *parent[XMCI_TREE_MAX_DEPTH];    /* owned */
} xmci_tree;

typedef struct xmci_tree_params {
    uint32_t nr_splits;      /* children per inner node (B); PECOS default 16 */
    uint32_t max_leaf_size;  /* labels per leaf cluster at most; default 100 */
    int max_iter;            /* k-means iterations per split; default 20 */
    uint32_t seed;           /* default 0 */
    int threads;
} xmci_tree_params;

void xmci_tree_params_default(xmci_tree_params *p);

/* Builds the tree over the rows of label_feat (L x F, rows sorted and L2-normalised, e.g. PIFA). */
xmc_err xmci_tree_build(const xmci_csr *label_feat, const xmci_tree_params *p, xmci_tree *tree, xmc_error *err);
/* Builds a tree from PECOS-style C matrices (top first): c[t] is nodes_t x nodes_{t-1}, one entry per row. */
xmc_err xmci_tree_from_chain(const xmci_csr *c, uint32_t depth, xmci_tree *tree, xmc_error *err);
void xmci_tree_free(xmci_tree *tree);

#endif
