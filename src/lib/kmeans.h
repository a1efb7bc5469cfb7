/* kmeans.h: balanced spherical 2-means, the split step of PECOS's hierarchical k-means.
 *
 * A node's elements (label ids, sorted) are cut into a left half of floor(n/2) and a right half: each
 * iteration scores every element against c = normalise(sum right) - normalise(sum left) (the first
 * iteration uses x_r - x_l of two random distinct elements), sorts by (score, id) and cuts in the middle,
 * stopping when the left half no longer changes. Balanced by construction, deterministic given the rng. */
#ifndef XMC_KMEANS_H
#define XMC_KMEANS_H

#include "rng.h"
#include "smat.h"

/* Scratch for one thread: dense centroids over the feature space, score and sort buffers. */
typedef struct xmc_kmeans_ws xmc_kmeans_ws;
xmc_err xmc_kmeans_ws_new(uint32_t nr_features, uint32_t max_elems, xmc_kmeans_ws **out, xmc_error *err);
void xmc_kmeans_ws_free(xmc_kmeans_ws *ws);

/* Splits elems[0..n) in place: elems[0..n/2) the left child, elems[n/2..n) the right one, each sorted by
 * id. feat rows (sorted, L2-normalised) are the elements' embeddings. n >= 2. */
void xmc_kmeans_split(const xmc_csr *feat, uint32_t *elems, uint32_t n, xmc_rng *rng, int max_iter,
                      xmc_kmeans_ws *ws);

#endif
