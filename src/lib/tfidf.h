/* tfidf.h: a TF-IDF text vectoriser with PECOS semantics: word and char_wb n-gram bases, hstacked.
 *
 * A vectoriser is one or more base vectorisers over the same tokenised document (tokenize.h). A base counts
 * either word n-grams (n-grams of the word list, words joined by one space) or char_wb n-grams (codepoint
 * n-grams of each word padded with one space each side, scikit-learn's char_wb). Fitting counts the document
 * frequency (df) of every n-gram, keeps those with min_df <= df <= max_df * N, then the max_features most
 * frequent (by df, ties by n-gram bytes), and numbers the survivors in byte order of their n-gram (memcmp,
 * a prefix first): feature ids are deterministic, whatever the thread count. Transforming a document gives,
 * for each base, tf = count (or 1 + ln count with sublinear_tf) times idf, L2-normalised per base (a zero row
 * stays zero); base b's ids are shifted by the dimensions of bases 0..b-1 (hstack) and the whole row is
 * L2-normalised again. N-grams not in the vocabulary are ignored; entries weighted 0 (an idf of 0) are not
 * stored.
 *
 * idf of a feature with document frequency df among N training documents:
 *   pecos   (default)  max(ln(N / (df + smooth_idf)), 0) + add_one_idf      smooth_idf 1, add_one_idf 0
 *   sklearn            ln((N + smooth_idf) / (df + smooth_idf)) + 1         (scikit-learn with smooth_idf)
 *   none               1
 *
 * Configuration string (xmc_tfidf_config_parse), e.g. "word:1-2,char_wb:3-5:max_features=50000,min_df=2":
 *   spec     := item (',' item)*              blanks around items are ignored
 *   item     := base | option
 *   base     := ("word" | "char_wb") ':' MIN ['-' MAX] (':' option)*
 *   option   := key '=' value
 * Options given as items apply to every base wherever they appear; options after a base's colons apply to that
 * base and win over the items. Without any base item the default base (word 1-2) is used.
 *   key           value                  meaning                                       default
 *   min_df        integer >= 0           keep n-grams in at least this many documents   2
 *   max_df        real in (0, 1]         ... and in at most this fraction of them        1
 *   max_features  integer >= 0           keep the most frequent (0: all)                 0
 *   sublinear     0 | 1                  tf = 1 + ln(count)                              1
 *   idf           pecos | sklearn | none formula above                                   pecos
 *   smooth_idf    0 | 1                  the smoothing count in the formulas             1
 *   add_one_idf   0 | 1                  pecos: add 1 to every idf                       0
 *   norm          l2 | none              per base; as an item also the final row norm   l2
 *   max_tokens    integer >= 1           words kept per document (item only)             4096
 *   max_bytes     integer >= 16          normalised bytes kept per document (item only)  65536
 *   max_word_bytes integer >= 1          longer words are cut (item only)                256
 *   min_token_len integer >= 1           shorter words dropped; 2 emulates scikit-learn's
 *                                        token pattern (item only)                       1
 * N-gram orders are 1..16. At most XMC_TFIDF_MAX_BASES bases.
 *
 * Persistence (xmc_tfidf_save/xmc_tfidf_load) in a model directory (model.h), under a prefix P:
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
 * Threads: a fitted vectoriser is immutable and may be shared; each thread uses its own workspace. */
#ifndef XMC_TFIDF_H
#define XMC_TFIDF_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "smat.h"
#include "tokenize.h"
#include "xmc/error.h"

#define XMC_TFIDF_MAX_BASES 8
#define XMC_TFIDF_MAX_NGRAM 16

typedef enum xmc_tfidf_analyzer { XMC_TFIDF_WORD = 0, XMC_TFIDF_CHAR_WB = 1 } xmc_tfidf_analyzer;
typedef enum xmc_tfidf_idf { XMC_TFIDF_IDF_PECOS = 0, XMC_TFIDF_IDF_SKLEARN = 1, XMC_TFIDF_IDF_NONE = 2 } xmc_tfidf_idf;
typedef enum xmc_tfidf_norm { XMC_TFIDF_NORM_NONE = 0, XMC_TFIDF_NORM_L2 = 1 } xmc_tfidf_norm;

typedef struct xmc_tfidf_base {
    xmc_tfidf_analyzer analyzer;
    uint32_t ngram_min, ngram_max;
    uint32_t min_df;       /* count */
    double max_df;         /* ratio of the training documents */
    uint32_t max_features; /* 0: all */
    int sublinear_tf;
    xmc_tfidf_idf idf;
    int smooth_idf;
    int add_one_idf;
    xmc_tfidf_norm norm;
} xmc_tfidf_base;

typedef struct xmc_tfidf_config {
    uint32_t n_bases;
    xmc_tfidf_base base[XMC_TFIDF_MAX_BASES];
    xmc_tfidf_norm norm; /* of the hstacked row */
    xmc_tok_opts tok;    /* document limits and min_token_len */
} xmc_tfidf_config;

typedef struct xmc_tfidf xmc_tfidf;
typedef struct xmc_tfidf_ws xmc_tfidf_ws;

/* word 1-2 grams, min_df 2, sublinear tf, pecos idf (smooth 1, add_one 0), l2 per base and overall. */
void xmc_tfidf_config_default(xmc_tfidf_config *cfg);
/* Sets cfg to the defaults, then applies spec (grammar above; NULL or "" keeps the defaults). XMC_ERR_ARG
 * naming the offending item; cfg is then unspecified. */
xmc_err xmc_tfidf_config_parse(xmc_tfidf_config *cfg, const char *spec, xmc_error *err);
/* Writes the canonical spec of cfg (every option explicit; parses back to an equal config). Returns the
 * length it needs (like snprintf); the output is truncated when that is >= size. */
size_t xmc_tfidf_config_format(const xmc_tfidf_config *cfg, char *buf, size_t size);

/* Fits on n documents (texts[i] of lens[i] bytes, any bytes) with `threads` threads (< 1: one). Fails with
 * XMC_ERR_ARG (bad config), XMC_ERR_EMPTY (n = 0, or no n-gram survives the filters), XMC_ERR_RANGE (over
 * 2^32 - 1 features or vocabulary bytes), XMC_ERR_NOMEM, XMC_ERR_IO (thread creation); *out untouched then. */
xmc_err xmc_tfidf_fit(const xmc_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                      int threads, xmc_tfidf **out, xmc_error *err);
uint32_t xmc_tfidf_dim(const xmc_tfidf *tf);
const xmc_tfidf_config *xmc_tfidf_config_of(const xmc_tfidf *tf);
/* First feature id and number of features of base b (< cfg n_bases). */
void xmc_tfidf_base_range(const xmc_tfidf *tf, uint32_t b, uint32_t *first, uint32_t *count);
/* idf of feature id (0 if out of range). */
float xmc_tfidf_idf_of(const xmc_tfidf *tf, uint32_t id);
/* Feature id of an n-gram of base b given as bytes (normalised text, words joined by one space, char_wb
 * grams with their padding spaces); UINT32_MAX if not in the vocabulary. */
uint32_t xmc_tfidf_lookup(const xmc_tfidf *tf, uint32_t b, const char *bytes, size_t len);
/* The n-gram bytes of feature id (not NUL-terminated, *len bytes), NULL if id is out of range. */
const char *xmc_tfidf_feature_name(const xmc_tfidf *tf, uint32_t id, size_t *len);
void xmc_tfidf_free(xmc_tfidf *tf);

/* Scratch for one thread (sized from tf's limits: a few MB at most with char_wb bases). */
xmc_err xmc_tfidf_ws_new(const xmc_tfidf *tf, xmc_tfidf_ws **out, xmc_error *err);
void xmc_tfidf_ws_free(xmc_tfidf_ws *ws);

/* An upper bound of the non-zeros of one transformed document (documents are cut at the tokenizer limits). */
uint32_t xmc_tfidf_max_nnz(const xmc_tfidf *tf);
/* One document -> feature ids (ascending) and values in idx/val; returns the entries written: all of them when
 * cap >= xmc_tfidf_max_nnz(tf), else the first cap (values still normalised over the whole row). Cannot fail and
 * allocates nothing; a workspace made for another vectoriser gives 0. */
uint32_t xmc_tfidf_transform(const xmc_tfidf *tf, xmc_tfidf_ws *ws, const char *text, size_t len, uint32_t *idx,
                             float *val, uint32_t cap);
/* Many documents -> out (n x dim CSR, rows sorted, owned), with `threads` threads (< 1: one). XMC_ERR_NOMEM,
 * XMC_ERR_IO (thread creation); out untouched on failure. */
xmc_err xmc_tfidf_transform_batch(const xmc_tfidf *tf, const char *const *texts, const size_t *lens, size_t n,
                                  int threads, xmc_csr *out, xmc_error *err);

/* Writes the arrays and manifest keys above under prefix. */
xmc_err xmc_tfidf_save(const xmc_tfidf *tf, xmc_model_writer *w, const char *prefix, xmc_error *err);
/* Opens the vectoriser saved under prefix, as views of b's mapping (b must outlive *out). XMC_ERR_NOTFOUND,
 * XMC_ERR_VERSION (format), XMC_ERR_CORRUPT/XMC_ERR_SHAPE (inconsistent arrays or keys), XMC_ERR_ARG (config). */
xmc_err xmc_tfidf_load(const xmc_bundle *b, const char *prefix, xmc_tfidf **out, xmc_error *err);

#endif
