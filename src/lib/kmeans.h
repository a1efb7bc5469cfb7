/* kmeans.h: balanced spherical 2-means, the split step of PECOS's hierarchical k-means.
 *
 * A node's elements (label ids, sorted) are cut into a left half of floor(n/2) and a right half: each
 * iteration scores every element against c = normalise(sum right) - normalise(sum left) (the first
 * iteration uses x_r - x_l of two random distinct elements), sorts by (score, id) and cuts in the middle,
 * stopping when the left half no longer changes. Balanced by construction, deterministic given the rng. */
#ifndef XMCI_KMEANS_H
#define XMCI_KMEANS_H

#include "rng.h"
#include "smat.h"

/* Scratch for one thread: dense centroids over the feature space, score and sort buffers. */
typedef struct xmci_kmeans_ws xmci_kmeans_ws;
xmc_err xmci_kmeans_ws_new(uint32_t nr_features, uint32_t max_elems, xmci_kmeans_ws **out, xmc_error *err);
void xmci_kmeans_ws_free(xmci_kmeans_ws *ws);

/* Splits elems[0..n) in place: elems[0..n/2) the left child, elems[n/2..n) the right one, each sorted by
 * id. feat rows (sorted, L2-normalised) are the elements' embeddings. n >= 2. */
void xmci_kmeans_split(const xmci_csr *feat, uint32_t *elems, uint32_t n, xmc_rng *rng, int max_iter,
                      xmci_kmeans_ws *ws);

#endif
