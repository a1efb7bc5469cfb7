/* ngram.h: the n-grams one TF-IDF base (tfidf_spec.h) takes from a tokenised document, shared by fitting
 * (docfreq.h) and transforming (tfidf.h).
 *
 * An n-gram is a span of the tokenizer's normalised text: word n-grams are runs of words joined by one space,
 * char_wb n-grams runs of codepoints of one word padded with a space each side (tokenize.h makes both). A span
 * is never empty. */
#ifndef XMCI_NGRAM_H
#define XMCI_NGRAM_H

#include <stdint.h>
#include <string.h>
#include "tfidf_spec.h"
#include "tokenize.h"

/* Most n-grams base b of cfg can yield from one document cut at the tokenizer limits. */
uint64_t xmci_ngram_bound(const xmci_tfidf_config *cfg, uint32_t b);

/* Writes the n-grams of base to spans (at most cap, in a fixed order: by order, then by position); returns the
 * count. Cannot fail. */
uint32_t xmci_ngram_spans(const xmci_tfidf_base *base, const xmci_tok_ws *tok, xmci_tok_span *spans, uint32_t cap);

/* Whether two n-grams of len bytes are equal. They are short: comparing them inline, 8 bytes at a time, beats
 * a call to memcmp in the hot loops. */
static inline int xmci_ngram_same(const void *x, const void *y, uint32_t len)
{
    const unsigned char *a = x, *b = y;
    for (; len >= 8; len -= 8, a += 8, b += 8) {
        uint64_t u, v;
        memcpy(&u, a, 8);
        memcpy(&v, b, 8);
        if (u != v) return 0;
    }
    for (; len; len--)
        if (*a++ != *b++) return 0;
    return 1;
}

#endif
