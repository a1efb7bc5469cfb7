/* disentangle.h: label disentanglement (PECOS's overlapping clusters): a label may sit in several leaf
 * clusters, one copy in each, and its copies are merged again after the beam.
 *
 * Placement (training). A first model over the plain tree routes every training instance with its beam
 * to the leaf clusters (layer depth-2). For each label, every leaf some of its positive instances reach
 * gets their beam scores as votes (a count weighted by how sure the beam is: a wide beam reaches near
 * leaves with every instance, but with low scores); the label's candidate leaves are its `k` most voted
 * (ties: more instances, then the smaller leaf id), the label's own leaf (the first model's) moved to the
 * front when it is one of them. Each positive (instance, label) pair stays in the first candidate unless
 * another is 1.5 times closer, closeness being the cosine of the instance's features with the sum of the
 * label embeddings of the leaf's labels (the beam's order cannot make this choice: the first model trained
 * the label's own leaf on all its instances, so it ranks every one of them first). A candidate left with
 * less than 1/(2k) of the label's positives is noise, not a second meaning: it is dropped and its positives
 * go to the best of the rest. What remains, in that order, are the label's copies: one for a label whose
 * instances are one group, two for two clear groups. A label whose instances reach a single leaf goes
 * there; a label with no positives (or none the beam routes) keeps its first model's leaf.
 *
 * The copies are numbered label by label: label l's copies are the last-layer nodes copy_ptr[l] ..
 * copy_ptr[l+1]-1, in candidate order. That one array (L + 1 entries, increasing, every label at least
 * one copy) is the copy -> label map a model stores (xlinear.h); copy -> label is a binary search in it.
 *
 * Merge (prediction). A search that asks the k best labels asks the last layer for k * (most copies of a
 * label) nodes; the hits come best first, so the first hit of each label is its copies' maximum, and the
 * first k labels so met are the k best labels by that maximum. */
#ifndef XMCI_DISENTANGLE_H
#define XMCI_DISENTANGLE_H

#include <stdint.h>
#include "smat.h"
#include "tree.h"
#include "xlinear.h"
#include "xmc/xmc.h"

#define XMCI_DISENTANGLE_MAX 6

/* The placement of the labels of y (N x L, rows sorted) in up to k leaves of tree, routed by model m (trained
 * on tree and y; z: the label embeddings the tree was built from, L x F, rows sorted) with beam `beam` and post-processor post on `threads` threads. Writes a new tree (the
 * same inner layers, a last layer of one node per copy), the copies' label matrix y_copies (N x copies,
 * each positive pair in its one copy) and copy_ptr (L + 1, malloc'd, the caller's). A tree of one layer
 * has no leaf clusters to choose between: every label keeps one copy. XMC_ERR_ARG (k outside 1..6, or
 * shapes that do not match), XMC_ERR_NOMEM; the outputs are then empty. */
xmc_err xmci_disentangle(const xmci_xlinear *m, const xmci_tree *tree, const xmci_csr *x, const xmci_csr *y,
                         const xmci_csr *z, uint32_t k, uint32_t beam, int post, int threads, xmci_tree *tree_out,
                         xmci_csr *y_copies, uint32_t **copy_ptr, xmc_error *err);

/* The label of last-layer node `copy` under copy_ptr (nr_labels + 1 entries). */
uint32_t xmci_copy_label(const uint32_t *copy_ptr, uint32_t nr_labels, uint32_t copy);

/* The most copies any label has under copy_ptr. */
uint32_t xmci_copies_max(const uint32_t *copy_ptr, uint32_t nr_labels);

/* Merges n hits over copies (best first) into at most k hits over labels, each label once with its best
 * copy's score, best first. in and out may not overlap. Returns the count. */
uint32_t xmci_copies_merge(const uint32_t *copy_ptr, uint32_t nr_labels, const xmc_hit *in, uint32_t n, uint32_t k,
                           xmc_hit *out);

#endif
