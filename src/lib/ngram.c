/* ngram.c: the n-grams of one TF-IDF base in a tokenised document (see ngram.h). */
#include "ngram.h"

#include <assert.h>

/* Word: at most max_tokens per order. char_wb: a word of c codepoints (c <= its bytes) gives at most (c + 2)
 * per order, and the bytes plus two per word sum to at most max_bytes + max_tokens. */
uint64_t xmci_ngram_bound(const xmci_tfidf_config *cfg, uint32_t b)
{
    const xmci_tfidf_base *base = &cfg->base[b];
    uint64_t orders = base->ngram_max - base->ngram_min + 1;
    if (base->analyzer == XMCI_TFIDF_WORD) return orders * cfg->tok.max_tokens;
    return orders * ((uint64_t)cfg->tok.max_bytes + cfg->tok.max_tokens);
}

uint32_t xmci_ngram_spans(const xmci_tfidf_base *base, const xmci_tok_ws *tok, xmci_tok_span *spans, uint32_t cap)
{
    uint32_t k = 0, nw = tok->n;
    if (base->analyzer == XMCI_TFIDF_WORD) {
        for (uint32_t n = base->ngram_min; n <= base->ngram_max && n <= nw; n++)
            for (uint32_t i = 0; i + n <= nw && k < cap; i++) spans[k++] = xmci_tok_word_ngram(tok, i, n);
    } else {
        for (uint32_t w = 0; w < nw && k < cap; w++)
            k += xmci_tok_char_wb(tok, w, base->ngram_min, base->ngram_max, spans + k, cap - k);
    }
    assert(k <= cap);
    return k;
}
