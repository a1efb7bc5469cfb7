/* beam.h: batched beam search over an XR-Linear model.
 *
 * Layer by layer, the children of the nodes kept so far are scored (one chunk merge per parent, see
 * xlinear.h), transformed by the post-processor and combined with their parent's score; the best `beam`
 * are kept (the best k at the last layer). Ties keep the earlier candidate (parent rank, then child order),
 * as PECOS does. All scratch lives in a workspace sized once per model, so a search allocates nothing. */
#ifndef XMCI_BEAM_H
#define XMCI_BEAM_H

#include <stdint.h>
#include "xlinear.h"
#include "xmc/xmc.h"

typedef struct xmci_beam_ws xmci_beam_ws;

/* Workspace for searches with beam and k up to max_k. */
xmc_err xmci_beam_ws_new(const xmci_xlinear *m, uint32_t max_k, xmci_beam_ws **out, xmc_error *err);
void xmci_beam_ws_free(xmci_beam_ws *ws);
uint32_t xmci_beam_ws_max_k(const xmci_beam_ws *ws);

/* One document: idx ascending (< nr_features), no bias entry (added here). Searches layers 0..nlayers-1
 * (nlayers 0 = all), keeping `beam` nodes per layer and `k` at the last one searched; beam and k are
 * clamped to the workspace's max_k. Writes up to k (node, score) pairs best first; returns the count. */
uint32_t xmci_beam_search(const xmci_xlinear *m, xmci_beam_ws *ws, const uint32_t *idx, const float *val,
                         uint32_t nnz, uint32_t beam, uint32_t k, int post, uint32_t nlayers, xmc_hit *out);

/* Many documents (rows of x) with `threads` threads: out is x->rows x k hits, counts per row. */
xmc_err xmci_beam_search_batch(const xmci_xlinear *m, const xmci_csr *x, uint32_t beam, uint32_t k, int post,
                              uint32_t nlayers, int threads, xmc_hit *out, uint32_t *counts, xmc_error *err);

/* The post-processor's transform of a raw score and its combination with the parent's score. */
float xmci_post_transform(int post, float v);
float xmci_post_combine(int post, float child, float parent);

#endif
