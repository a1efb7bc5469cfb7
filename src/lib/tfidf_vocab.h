/* tfidf_vocab.h: the vocabulary of a fitted TF-IDF vectoriser (tfidf.h): which n-grams are features, their ids,
 * their idf, the table that finds an n-gram's id, and the saved form of all that.
 *
 * Building one from document frequencies (docfreq.h): per base, the n-grams with min_df <= df <= max_df * N
 * are kept, then the max_features most frequent (by df, ties by bytes), and numbered in byte order of their
 * n-gram (memcmp, a prefix first), base after base: the ids do not depend on the thread count.
 *
 * Persistence (xmci_tfidf_save/xmci_tfidf_load) in a model directory (model.h), under a prefix P:
 *   array        dtype shape        meaning
 *   P.vocab      u8    [B]          n-gram bytes of every feature, in feature-id order, concatenated
 *   P.offsets    u32   [dim+1]      feature i's bytes are vocab[offsets[i] .. offsets[i+1]); offsets[dim] = B
 *   P.idf        f32   [dim]        idf of every feature
 *   P.table      u32   [cap, 2]     open addressing (linear probing, cap a power of two >= 2 dim): slot s holds
 *                                   {feature id + 1 (0 = empty), upper 32 bits of the hash}; an n-gram of base
 *                                   b hashes to XXH64(bytes, seed = b) and starts at slot hash & (cap - 1)
 *   manifest keys: P.format (1), P.config (the canonical configuration string), P.dim, P.n_docs,
 *                  P.n_bases, P.base<b>.offset, P.base<b>.dim
 * Loading builds nothing: the arrays are used in place in the bundle's mapping, so the bundle must outlive
 * the vectoriser. Shapes and counts are checked at load; every id and offset read from the table is bounds-
 * checked when used, so a damaged file gives wrong features, never an out-of-bounds read.
 *
 * The arrays are owned (built here) or views of a bundle's mapping (loaded); xmci_tfidf_vocab_free handles both. */
#ifndef XMCI_TFIDF_VOCAB_H
#define XMCI_TFIDF_VOCAB_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include "docfreq.h"
#include "model.h"
#include "ngram.h"
#include "tfidf_spec.h"
#include "xmc/error.h"

#define XMCI_TFIDF_NOT_FOUND UINT32_MAX

typedef struct xmci_tfidf_vocab {
    uint32_t dim, n_bases;                      /* n_bases: of the config */
    uint32_t base_off[XMCI_TFIDF_MAX_BASES + 1]; /* base b owns ids base_off[b] .. base_off[b+1]-1 */
    const unsigned char *bytes;                 /* P.vocab */
    uint64_t n_bytes;
    const uint32_t *offsets;                    /* dim + 1 */
    const float *idf;                           /* dim */
    const uint32_t *table;                      /* table_cap x 2 */
    uint32_t table_cap;                         /* a power of two */
    void *owned[4];                             /* the four arrays when built here; NULL when they view a bundle */
} xmci_tfidf_vocab;

/* Selects, numbers and packs the features of every base of cfg from dfq, counted over n_docs documents.
 * XMC_ERR_EMPTY (no n-gram survives), XMC_ERR_RANGE (over 2^30 features or 2^32 bytes), XMC_ERR_NOMEM; voc is
 * then empty (nothing to free). */
xmc_err xmci_tfidf_vocab_build(xmci_tfidf_vocab *voc, const xmci_tfidf_config *cfg, const xmci_docfreq *dfq,
                              uint64_t n_docs, xmc_error *err);
void xmci_tfidf_vocab_free(xmci_tfidf_vocab *voc);

/* Writes P.vocab, P.offsets, P.idf, P.table. */
xmc_err xmci_tfidf_vocab_save(const xmci_tfidf_vocab *voc, xmci_model_writer *w, const char *prefix, xmc_error *err);
/* Views those four arrays of bd under prefix (bd must outlive voc); voc->dim and voc->base_off are set by the
 * caller from the manifest first. XMC_ERR_NOTFOUND, XMC_ERR_SHAPE (arrays that disagree with dim). */
xmc_err xmci_tfidf_vocab_load(xmci_tfidf_vocab *voc, const xmci_bundle *bd, const char *prefix, xmc_error *err);
/* buf = "<prefix>.<what>"; XMC_ERR_ARG when that does not fit in size bytes. */
xmc_err xmci_tfidf_key(char *buf, size_t size, const char *prefix, const char *what, xmc_error *err);

/* The n-gram bytes of feature id (not NUL-terminated, *len bytes), NULL if id is out of range. */
const char *xmci_tfidf_vocab_name(const xmci_tfidf_vocab *voc, uint32_t id, size_t *len);

/* Feature id of the n-gram p (len bytes, hash h = XXH64(p, len, b)) of base b < n_bases, XMCI_TFIDF_NOT_FOUND if
 * absent. Every id and offset read from the arrays is checked, and probing stops after table_cap slots, so
 * damaged arrays cannot make it read out of bounds or loop. Inline: transforming calls it for every n-gram. */
static inline uint32_t xmci_tfidf_vocab_find(const xmci_tfidf_vocab *voc, uint32_t b, uint64_t h, const char *p,
                                            uint32_t len)
{
    assert(b < voc->n_bases); /* callers check b; the table's contents are what is checked here */
    uint32_t mask = voc->table_cap - 1, fp = (uint32_t)(h >> 32), s = (uint32_t)h & mask;
    uint32_t lo = voc->base_off[b], hi = voc->base_off[b + 1];
    for (uint32_t probes = 0; probes < voc->table_cap; probes++, s = (s + 1) & mask) {
        uint32_t id1 = voc->table[2 * s];
        if (!id1) return XMCI_TFIDF_NOT_FOUND;
        if (voc->table[2 * s + 1] != fp || id1 - 1 < lo || id1 - 1 >= hi) continue;
        uint32_t a = voc->offsets[id1 - 1], z = voc->offsets[id1];
        if (a <= z && z <= voc->n_bytes && z - a == len && xmci_ngram_same(voc->bytes + a, p, len)) return id1 - 1;
    }
    return XMCI_TFIDF_NOT_FOUND;
}

#endif
