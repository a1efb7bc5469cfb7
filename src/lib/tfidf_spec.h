/* tfidf_spec.h: the configuration of a TF-IDF vectoriser (tfidf.h): its string grammar, defaults, checks
 * and canonical form.
 *
 * idf of a feature with document frequency df among N training documents:
 *   pecos   (default)  max(ln(N / (df + smooth_idf)), 0) + add_one_idf      smooth_idf 1, add_one_idf 0
 *   sklearn            ln((N + smooth_idf) / (df + smooth_idf)) + 1         (scikit-learn with smooth_idf)
 *   none               1
 *
 * Configuration string (xmci_tfidf_config_parse), e.g. "word:1-2,char_wb:3-5:max_features=50000,min_df=2":
 *   spec     := item (',' item)*              blanks around items are ignored
 *   item     := base | option
 *   base     := ("word" | "char_wb") ':' MIN ['-' MAX] (':' option)*
 *   option   := key '=' value
 * Options given as items apply to every base wherever they appear; options after a base's colons apply to that
 * base and win over the items. Without any base item the default base (word 1-2) is used.
 *   key           value                  meaning                                       default
 *   min_df        integer >= 0           keep n-grams in at least this many documents   2
 *   max_df        real in (0, 1]         ... and in at most this fraction of them        1
 *                                        (df <= max_df x N in doubles, as scikit-learn)
 *   max_features  integer >= 0           keep the most frequent (0: all)                 0
 *   sublinear     0 | 1                  tf = 1 + ln(count)                              1
 *   idf           pecos | sklearn | none formula above                                   pecos
 *   smooth_idf    0 | 1                  the smoothing count in the formulas             1
 *   add_one_idf   0 | 1                  pecos: add 1 to every idf                       0
 *   norm          l2 | none              per base; as an item also the final row norm   l2
 *   weight        real in (1e-6, 16]     the base's block scaled by it after its norm,
 *                                        before the final one (a FeatureUnion weight)   1
 *   max_tokens    integer >= 1           words kept per document (item only)             4096
 *   max_bytes     integer >= 16          normalised bytes kept per document (item only)  65536
 *   max_word_bytes integer >= 1          longer words are cut (item only)                256
 *   min_token_len integer >= 1           shorter words dropped; 2 emulates scikit-learn's
 *                                        token pattern (item only)                       1
 *   split         alnum | space          words: letter/digit runs, or runs of anything
 *                                        but white space (PECOS) (item only)             alnum
 *   casefold      0 | 1                  fold case; 0 keeps it (PECOS) (item only)       1
 * N-gram orders are 1..16. At most XMCI_TFIDF_MAX_BASES bases. */
#ifndef XMCI_TFIDF_SPEC_H
#define XMCI_TFIDF_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include "tokenize.h"
#include "xmc/error.h"

#define XMCI_TFIDF_MAX_BASES 8
#define XMCI_TFIDF_MIN_WEIGHT 1e-6 /* a base's weight above it: a float product of it stays a normal number */
#define XMCI_TFIDF_MAX_NGRAM 16

typedef enum xmci_tfidf_analyzer { XMCI_TFIDF_WORD = 0, XMCI_TFIDF_CHAR_WB = 1 } xmci_tfidf_analyzer;
typedef enum xmci_tfidf_idf { XMCI_TFIDF_IDF_PECOS = 0, XMCI_TFIDF_IDF_SKLEARN = 1, XMCI_TFIDF_IDF_NONE = 2 } xmci_tfidf_idf;
typedef enum xmci_tfidf_norm { XMCI_TFIDF_NORM_NONE = 0, XMCI_TFIDF_NORM_L2 = 1 } xmci_tfidf_norm;

typedef struct xmci_tfidf_base {
    xmci_tfidf_analyzer analyzer;
    uint32_t ngram_min, ngram_max;
    uint32_t min_df;       /* count */
    double max_df;         /* ratio of the training documents */
    uint32_t max_features; /* 0: all */
    int sublinear_tf;
    xmci_tfidf_idf idf;
    int smooth_idf;
    int add_one_idf;
    xmci_tfidf_norm norm;
    double weight;         /* the base's block is scaled by it after its own norm */
} xmci_tfidf_base;

typedef struct xmci_tfidf_config {
    uint32_t n_bases;
    xmci_tfidf_base base[XMCI_TFIDF_MAX_BASES];
    xmci_tfidf_norm norm; /* of the hstacked row */
    xmci_tok_opts tok;    /* document limits and min_token_len */
} xmci_tfidf_config;

/* word 1-2 grams, min_df 2, sublinear tf, pecos idf (smooth 1, add_one 0), l2 per base and overall. */
void xmci_tfidf_config_default(xmci_tfidf_config *cfg);
/* Sets cfg to the defaults, then applies spec (grammar above; NULL or "" keeps the defaults). XMC_ERR_ARG
 * naming the offending item; cfg is then unspecified. */
xmc_err xmci_tfidf_config_parse(xmci_tfidf_config *cfg, const char *spec, xmc_error *err);
/* Writes the canonical spec of cfg (every option explicit; parses back to an equal config). Returns the
 * length it needs (like snprintf); the output is truncated when that is >= size. */
size_t xmci_tfidf_config_format(const xmci_tfidf_config *cfg, char *buf, size_t size);
/* Checks what the parser checks, for a config filled by hand: XMC_ERR_ARG naming the bad field. */
xmc_err xmci_tfidf_config_check(const xmci_tfidf_config *cfg, xmc_error *err);

#endif
