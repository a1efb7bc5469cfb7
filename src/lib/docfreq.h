/* docfreq.h: the document frequency (df) of every n-gram of every TF-IDF base over a corpus, counted on
 * several threads; what fitting a vectoriser (tfidf.h) filters and numbers.
 *
 * The result owns the bytes of every distinct n-gram; entries handed out point into them, so they live as
 * long as the xmci_docfreq. The df of an n-gram is the number of documents it occurs in, whatever the thread
 * count; only the order in which xmci_docfreq_filter lists the n-grams depends on it. */
#ifndef XMCI_DOCFREQ_H
#define XMCI_DOCFREQ_H

#include <stddef.h>
#include <stdint.h>
#include "tfidf_spec.h"
#include "xmc/error.h"

typedef struct xmci_docfreq xmci_docfreq;

/* One distinct n-gram: its bytes, XXH64 hash (seed = its base) and df. */
typedef struct xmci_docfreq_entry {
    uint64_t hash;
    const char *p;
    uint32_t len, df;
} xmci_docfreq_entry;

/* Counts the n-grams of the bases of cfg (checked by the caller) in n documents (1 <= n < 2^32 - 1) with
 * `threads` threads (< 1: one). XMC_ERR_NOMEM, XMC_ERR_ARG (document limits allowing over 2^31 n-grams),
 * XMC_ERR_RANGE (a count table full: 2^30 distinct n-grams or 4 GiB of their bytes); *out untouched then. */
xmc_err xmci_docfreq_count(const xmci_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                          int threads, xmci_docfreq **out, xmc_error *err);
/* Distinct n-grams of base b. */
size_t xmci_docfreq_distinct(const xmci_docfreq *dfq, uint32_t b);
/* Writes the n-grams of base b with min_df <= df <= max_df to out (room for xmci_docfreq_distinct), in an order
 * that depends on the thread count; returns how many. */
size_t xmci_docfreq_filter(const xmci_docfreq *dfq, uint32_t b, uint32_t min_df, double max_df,
                          xmci_docfreq_entry *out);
void xmci_docfreq_free(xmci_docfreq *dfq);

#endif
