/* tfidf.h: a TF-IDF text vectoriser with PECOS semantics: word and char_wb n-gram bases, hstacked.
 *
 * A vectoriser is one or more base vectorisers over the same tokenised document (tokenize.h). A base counts
 * either word n-grams (n-grams of the word list, words joined by one space) or char_wb n-grams (codepoint
 * n-grams of each word padded with one space each side, scikit-learn's char_wb). Fitting counts the document
 * frequency (df) of every n-gram, keeps those with min_df <= df <= max_df * N, then the max_features most
 * frequent (by df, ties by n-gram bytes), and numbers the survivors in byte order of their n-gram (memcmp,
 * a prefix first): feature ids are deterministic, whatever the thread count. Transforming a document gives,
 * for each base, tf = count (or 1 + ln count with sublinear_tf) times idf, L2-normalised per base (a zero row
 * stays zero) and scaled by the base's weight (1 unless set); base b's ids are shifted by the dimensions of bases 0..b-1 (hstack) and the whole row is
 * L2-normalised again. N-grams not in the vocabulary are ignored; entries weighted 0 (an idf of 0) are not
 * stored.
 *
 * The configuration (its string grammar, the idf formulas) is in tfidf_spec.h, the n-grams in ngram.h, the
 * counting in docfreq.h, the vocabulary and its saved form in tfidf_vocab.h.
 *
 * Threads: a fitted vectoriser is immutable and may be shared; each thread uses its own workspace. */
#ifndef XMCI_TFIDF_H
#define XMCI_TFIDF_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "smat.h"
#include "tfidf_spec.h"
#include "tokenize.h"
#include "xmc/error.h"

typedef struct xmci_tfidf xmci_tfidf;
typedef struct xmci_tfidf_ws xmci_tfidf_ws;

/* Fits on n documents (texts[i] of lens[i] bytes, any bytes) with `threads` threads (< 1: one). Fails with
 * XMC_ERR_ARG (bad config), XMC_ERR_EMPTY (n = 0, or no n-gram survives the filters), XMC_ERR_RANGE (over
 * 2^30 features, 2^32 - 1 vocabulary bytes, or distinct n-grams a count table cannot hold: docfreq.h),
 * XMC_ERR_NOMEM; *out untouched then. A thread that cannot be started
 * leaves its share to the others (parallel.h). */
xmc_err xmci_tfidf_fit(const xmci_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                      int threads, xmci_tfidf **out, xmc_error *err);
uint32_t xmci_tfidf_dim(const xmci_tfidf *tf);
const xmci_tfidf_config *xmci_tfidf_config_of(const xmci_tfidf *tf);
/* First feature id and number of features of base b (< cfg n_bases). */
void xmci_tfidf_base_range(const xmci_tfidf *tf, uint32_t b, uint32_t *first, uint32_t *count);
/* idf of feature id (0 if out of range). */
float xmci_tfidf_idf_of(const xmci_tfidf *tf, uint32_t id);
/* Feature id of an n-gram of base b given as bytes (normalised text, words joined by one space, char_wb
 * grams with their padding spaces); UINT32_MAX if not in the vocabulary. */
uint32_t xmci_tfidf_lookup(const xmci_tfidf *tf, uint32_t b, const char *bytes, size_t len);
/* The n-gram bytes of feature id (not NUL-terminated, *len bytes), NULL if id is out of range. */
const char *xmci_tfidf_feature_name(const xmci_tfidf *tf, uint32_t id, size_t *len);
void xmci_tfidf_free(xmci_tfidf *tf);

/* Scratch for one thread (sized from tf's limits: a few MB at most with char_wb bases). */
xmc_err xmci_tfidf_ws_new(const xmci_tfidf *tf, xmci_tfidf_ws **out, xmc_error *err);
void xmci_tfidf_ws_free(xmci_tfidf_ws *ws);

/* An upper bound of the non-zeros of one transformed document (documents are cut at the tokenizer limits). */
uint32_t xmci_tfidf_max_nnz(const xmci_tfidf *tf);
/* One document -> feature ids (ascending) and values in idx/val; returns the entries written: all of them when
 * cap >= xmci_tfidf_max_nnz(tf), else the first cap (values still normalised over the whole row). Cannot fail and
 * allocates nothing; a workspace made for another vectoriser gives 0. */
uint32_t xmci_tfidf_transform(const xmci_tfidf *tf, xmci_tfidf_ws *ws, const char *text, size_t len, uint32_t *idx,
                             float *val, uint32_t cap);
/* Many documents -> out (n x dim CSR, rows sorted, owned), with `threads` threads (< 1: one). XMC_ERR_NOMEM,
 * XMC_ERR_RANGE (n >= 2^32); out untouched on failure. */
xmc_err xmci_tfidf_transform_batch(const xmci_tfidf *tf, const char *const *texts, const size_t *lens, size_t n,
                                  int threads, xmci_csr *out, xmc_error *err);

/* Writes the arrays and manifest keys of tfidf_vocab.h under prefix. */
xmc_err xmci_tfidf_save(const xmci_tfidf *tf, xmci_model_writer *w, const char *prefix, xmc_error *err);
/* Opens the vectoriser saved under prefix, as views of b's mapping (b must outlive *out). XMC_ERR_NOTFOUND,
 * XMC_ERR_VERSION (format), XMC_ERR_CORRUPT/XMC_ERR_SHAPE (inconsistent arrays or keys), XMC_ERR_ARG (config). */
xmc_err xmci_tfidf_load(const xmci_bundle *b, const char *prefix, xmci_tfidf **out, xmc_error *err);

#endif
