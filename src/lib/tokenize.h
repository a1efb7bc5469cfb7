/* tokenize.h: Unicode normalisation and word splitting of raw product text, plus char_wb n-gram spans.
 *
 * A document is turned into words in four steps: invalid UTF-8 bytes become U+FFFD (which separates words,
 * it is not fatal); every codepoint is NFKC-normalised and case-folded (utf8proc: compatibility decomposition,
 * case folding, default-ignorables such as soft hyphens and zero-width joiners removed, canonical reordering,
 * composition); a word is a maximal run of letters and digits (Unicode categories L*, N*), where combining
 * marks (M*) directly after a letter or digit stay in the word so that a grapheme such as Devanagari "कि" is not
 * cut in two; everything else (spaces, punctuation, apostrophes, symbols, U+FFFD) separates words. Two options
 * change this: split = XMCI_TOK_SPLIT_SPACE makes a word any run of codepoints other than white space, controls
 * and U+FFFD (so "t-shirt", "3.5mm" and "(2-pack)" are one word each), and casefold = 0 keeps the case
 * (NFKC without the folding). Both together are PECOS's Tfidf word tokenizer on text with single spaces.
 *
 * The words are written into one buffer as " w1 w2 ... wn " (one space before, between and after), so that
 * a word n-gram is the contiguous byte range from the start of its first word to the end of its last (words
 * joined by single spaces, as scikit-learn joins them) and a char_wb padded word " w " is also contiguous:
 * callers hash these ranges in place, without copying.
 *
 * Limits make the work per document bounded and allocation-free: the workspace is sized once from the options
 * and never grows. A document keeps its first max_tokens words and at most max_bytes bytes of that buffer (a
 * word that would not fit ends the document); a word longer than max_word_bytes is cut at a codepoint boundary
 * (the rest of its run is skipped); words of fewer than min_token_len codepoints are dropped (2 emulates
 * scikit-learn's default token pattern, which drops 1-character tokens). The limits are part of a fitted
 * vectoriser's configuration, so fitting and transforming cut documents the same way.
 *
 * Normalisation is exact: the input is cut into segments only before a codepoint whose decomposition starts
 * with a starter that never composes with what precedes it (every ASCII character is one), so no composition
 * or reordering crosses a cut. A segment longer than XMCI_TOK_SEG_CAP codepoints with no such point (which no
 * natural text has) is cut anyway. Pure ASCII runs skip utf8proc altogether (NFKC + case folding of ASCII is
 * lower-casing), which is what makes English text fast.
 *
 * Ownership: the caller owns the workspace (xmci_tok_ws_init/xmci_tok_ws_free); spans and the text buffer it
 * exposes stay valid until the next xmci_tok_words call on it. A workspace serves one thread at a time. */
#ifndef XMCI_TOKENIZE_H
#define XMCI_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

#define XMCI_TOK_SEG_CAP 1024          /* decomposed codepoints per normalisation segment */
#define XMCI_TOK_DEFAULT_MAX_TOKENS 4096
#define XMCI_TOK_DEFAULT_MAX_BYTES 65536
#define XMCI_TOK_DEFAULT_MAX_WORD_BYTES 256

/* How a document is cut into words (xmci_tok_opts.split). */
typedef enum xmci_tok_split {
    XMCI_TOK_SPLIT_ALNUM = 0, /* a word is a run of letters and digits (marks attached); all else separates */
    XMCI_TOK_SPLIT_SPACE = 1  /* a word is a run of anything but white space (Unicode Z*, controls, U+FFFD):
                                punctuation stays in the word, as PECOS's and fastText's split on spaces */
} xmci_tok_split;

typedef struct xmci_tok_opts {
    uint32_t max_tokens;     /* words kept per document; default 4096 */
    uint32_t max_bytes;      /* size of the " w1 w2 ... " buffer, so bytes of words kept; default 65536 */
    uint32_t max_word_bytes; /* longer words are cut (at a codepoint boundary); default 256 */
    uint32_t min_token_len;  /* words of fewer codepoints are dropped; default 1 (keep all) */
    uint32_t split;          /* xmci_tok_split; default XMCI_TOK_SPLIT_ALNUM */
    uint32_t casefold;       /* 1: case-fold (default); 0: keep case (NFKC only), as PECOS does */
} xmci_tok_opts;

/* A byte range of xmci_tok_ws.text. */
typedef struct xmci_tok_span {
    uint32_t off, len;
} xmci_tok_span;

typedef struct xmci_tok_ws {
    xmci_tok_opts opts;
    char *text;          /* " w1 w2 ... wn " after xmci_tok_words; text_len bytes, not NUL-terminated */
    uint32_t text_len;
    uint32_t n;          /* words found */
    xmci_tok_span *word;  /* word[i]: the bytes of word i (without padding); opts.max_tokens entries */
    uint32_t *ncp;       /* ncp[i]: codepoints in word i */
    int32_t *seg;        /* normalisation segment (decomposed codepoints) */
    uint32_t seg_len;
} xmci_tok_ws;

/* Defaults (see the fields). */
void xmci_tok_opts_default(xmci_tok_opts *opts);
/* Sizes the workspace from opts (copied). Fails with XMC_ERR_ARG on a zero limit, max_bytes < 3, an unknown
 * split or a casefold other than 0 or 1, or
 * XMC_ERR_NOMEM; on failure nothing is left allocated. */
xmc_err xmci_tok_ws_init(xmci_tok_ws *ws, const xmci_tok_opts *opts, xmc_error *err);
void xmci_tok_ws_free(xmci_tok_ws *ws);

/* Normalises and splits len bytes of text (any bytes; NUL is a separator like any control character) into
 * ws->word / ws->text; returns the number of words. Cannot fail and allocates nothing. */
uint32_t xmci_tok_words(xmci_tok_ws *ws, const char *text, size_t len);

/* Byte range of the word n-gram made of words first .. first+n-1 (n >= 1, first + n <= ws->n). */
static inline xmci_tok_span xmci_tok_word_ngram(const xmci_tok_ws *ws, uint32_t first, uint32_t n)
{
    xmci_tok_span s = {ws->word[first].off, 0};
    const xmci_tok_span *last = &ws->word[first + n - 1];
    s.len = last->off + last->len - s.off;
    return s;
}

/* Number of char_wb n-grams of word `word` for n in nmin..nmax, with scikit-learn's char_wb rules: the word is
 * padded with one space each side; for each n the n-grams of n codepoints of the padded word in order; a padded
 * word of at most n codepoints gives itself once and larger n are skipped. */
uint32_t xmci_tok_char_wb_count(const xmci_tok_ws *ws, uint32_t word, uint32_t nmin, uint32_t nmax);
/* Writes those n-grams (byte ranges of ws->text, in the order above) to out, at most cap; returns how many
 * were written. */
uint32_t xmci_tok_char_wb(const xmci_tok_ws *ws, uint32_t word, uint32_t nmin, uint32_t nmax, xmci_tok_span *out,
                         uint32_t cap);

#endif
