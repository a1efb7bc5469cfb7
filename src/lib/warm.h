/* warm.h: the label tree of a warm-started training: the serving model's tree kept for the labels it knows, new
 * labels placed in the nearest leaf cluster, clusters left empty by retired labels removed, and the map from
 * every node of the new tree to the serving node whose weights start its solver.
 *
 * Placement: each leaf cluster's centroid is the L2-normalised sum of the PIFA embeddings (computed on the new
 * data) of the known labels in it; a new label goes to the cluster of highest cosine to its own embedding that
 * still has room (fewer than max_leaf_size labels), else to its best cluster regardless (the caller's bound on
 * the fullest leaf then decides whether the tree is rebuilt), and a label whose embedding meets no centroid
 * goes to the emptiest cluster. New labels are placed in ascending label order, so the result is deterministic.
 * Inner layers keep the serving tree's shape; a node whose subtree lost every label is dropped. */
#ifndef XMCI_WARM_H
#define XMCI_WARM_H

#include <stdint.h>
#include "smat.h"
#include "tree.h"
#include "xlinear.h"

#define XMCI_WARM_NONE UINT32_MAX

typedef struct xmci_warm_tree {
    xmci_tree tree;                            /* over the new labels; owned */
    uint32_t *node_map[XMCI_TREE_MAX_DEPTH];   /* per layer: new node -> serving node, or XMCI_WARM_NONE; owned */
    uint32_t kept, added;                      /* labels the serving model knew, labels new to it */
    uint32_t max_leaf;                         /* labels in the fullest leaf cluster */
} xmci_warm_tree;

/* serving: the serving model (one node per label: not disentangled). label_map[l]: the serving label of new label
 * l, or XMCI_WARM_NONE. z: the new labels' PIFA embeddings (L x F, rows sorted and normalised; every label has a
 * positive, so no row is empty but by lack of features). XMC_ERR_SHAPE (label_map out of range), XMC_ERR_NOMEM;
 * *out is then empty. */
xmc_err xmci_warm_tree_build(const xmci_xlinear *serving, const uint32_t *label_map, const xmci_csr *z,
                            uint32_t max_leaf_size, xmci_warm_tree *out, xmc_error *err);
void xmci_warm_tree_free(xmci_warm_tree *wt);

#endif
