/* beam.h: batched beam search over an XR-Linear model.
 *
 * Layer by layer, the children of the nodes kept so far are scored (one chunk merge per parent, see
 * xlinear.h), transformed by the post-processor and combined with their parent's score; the best `beam`
 * are kept (the best k at the last layer). Ties keep the earlier candidate (parent rank, then child order),
 * as PECOS does. All scratch lives in a workspace sized once per model, so a search allocates nothing.
 * Work that cannot change the hits is skipped: a child that cannot enter the list is not transformed, and
 * once a document's list is full, the kept nodes whose own score is below its worst are not scored at all
 * (a child's score never exceeds its parent's; beam.c, parent_bounds). */
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
/* Kept nodes whose children were left unscored since the workspace was made (the tests' witness). */
uint64_t xmci_beam_ws_skipped(const xmci_beam_ws *ws);

/* One document: idx ascending (< nr_features), no bias entry (added here). Searches layers 0..nlayers-1
 * (nlayers 0 = all), keeping `beam` nodes per layer and `k` at the last one searched; beam and k are
 * clamped to the workspace's max_k. Writes up to k (node, score) pairs best first; returns the count. */
uint32_t xmci_beam_search(const xmci_xlinear *m, xmci_beam_ws *ws, const uint32_t *idx, const float *val,
                         uint32_t nnz, uint32_t beam, uint32_t k, int post, uint32_t nlayers, xmc_hit *out);

/* Many documents (rows of x) with `threads` threads: out is x->rows x k hits, counts per row. */
xmc_err xmci_beam_search_batch(const xmci_xlinear *m, const xmci_csr *x, uint32_t beam, uint32_t k, int post,
                              uint32_t nlayers, int threads, xmc_hit *out, uint32_t *counts, xmc_error *err);

/* ---- many documents at once (MSCM-style) -------------------------------------------------------------------
 * A micro-batch is searched layer by layer together: the (document, kept node) pairs of a layer are grouped
 * by node, so each chunk (layer.h) is read once for all the documents that reach it; a group of several
 * documents merges one feature list (feature -> documents: the batch's, sorted once, when most of it reaches
 * the node, else the group's own rows merged) with the chunk's rows, so a weight row is looked up and loaded
 * once for every document that has its feature. Every document's
 * contributions are added in the single-document order (features ascending, bias last), and once a layer's
 * chunks are scored each document offers its kept nodes' children in rank order, as the single search does,
 * so the hits are the ones xmci_beam_search returns, bit for bit. */
typedef struct xmci_beam_batch xmci_beam_batch;

/* Workspace for up to max_docs documents holding up to max_nnz features together, with room for acc_floats
 * raw scores (0: 1024 per document; raised to what one document may need at one layer): documents whose
 * scores at a layer do not fit together are searched in ranges. NOMEM; *out NULL then. */
xmc_err xmci_beam_batch_new(const xmci_xlinear *m, uint32_t max_docs, uint32_t max_nnz, uint64_t acc_floats,
                           xmci_beam_batch **out, xmc_error *err);
void xmci_beam_batch_free(xmci_beam_batch *bb);
/* (document, kept node) pairs left unscored since the workspace was made (the tests' witness). */
uint64_t xmci_beam_batch_skipped(const xmci_beam_batch *bb);
/* How many documents one xmci_beam_search_rows call may take at this beam and k (at least 1). */
uint32_t xmci_beam_batch_docs(const xmci_beam_batch *bb, uint32_t beam, uint32_t k);
uint32_t xmci_beam_batch_max_nnz(const xmci_beam_batch *bb);

/* n documents as CSR rows (row d: idx/val[indptr[d] - indptr[0] .. indptr[d+1] - indptr[0]), each idx
 * ascending, no bias entry), n <= xmci_beam_batch_docs(bb, beam, k), indptr[n] - indptr[0] <= max_nnz.
 * Arguments as in xmci_beam_search; row d's hits at out[d * stride] (stride >= k), its count in counts[d].
 * Allocates nothing; cannot fail. */
void xmci_beam_search_rows(const xmci_xlinear *m, xmci_beam_batch *bb, const uint64_t *indptr, const uint32_t *idx,
                          const float *val, uint32_t n, uint32_t beam, uint32_t k, int post, uint32_t nlayers,
                          xmc_hit *out, uint32_t stride, uint32_t *counts);

/* The post-processor's transform of a raw score and its combination with the parent's score. */
float xmci_post_transform(int post, float v);
float xmci_post_combine(int post, float child, float parent);

#endif
