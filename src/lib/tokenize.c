/* tokenize.c: NFKC (+ case-fold) normalisation (utf8proc) and letter/digit or white-space word splitting, see
 * tokenize.h.
 *
 * One pass over the bytes. ASCII followed by ASCII is lower-cased (when folding) and classified through a table.
 * Anything else is decoded (an invalid byte is one U+FFFD, a separator), decomposed and (when folding) case-folded
 * codepoint by codepoint into a segment buffer; the segment is closed before the next codepoint whose
 * decomposition starts with a "safe starter" (combining class 0, not a mark, not a Hangul vowel or trailing jamo:
 * nothing before it can be reordered past it or compose with it), then canonically reordered and composed, and its
 * codepoints are fed to the same word builder as the ASCII ones. The word builder writes " w1 w2 ... " into the
 * workspace and enforces the limits. */
#include "tokenize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Decompose (compatibility), case-fold, drop default-ignorables: the per-codepoint half of NFKC_Casefold. */
#define DECOMP_OPTS (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE)
#define DECOMP_OPTS_KEEP_CASE (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_IGNORE)
#define DECOMP_MAX 32 /* utf8proc's longest decomposition is 18 codepoints (U+FDFA); test_tokenize checks */

enum { CL_SEP = 0, CL_WORD = 1, CL_MARK = 2 };

/* ASCII classes: letters and digits make words, everything else separates. */
static const unsigned char ASCII_CLASS[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

void xmci_tok_opts_default(xmci_tok_opts *opts)
{
    opts->max_tokens = XMCI_TOK_DEFAULT_MAX_TOKENS;
    opts->max_bytes = XMCI_TOK_DEFAULT_MAX_BYTES;
    opts->max_word_bytes = XMCI_TOK_DEFAULT_MAX_WORD_BYTES;
    opts->min_token_len = 1;
    opts->split = XMCI_TOK_SPLIT_ALNUM;
    opts->casefold = 1;
}

xmc_err xmci_tok_ws_init(xmci_tok_ws *ws, const xmci_tok_opts *opts, xmc_error *err)
{
    memset(ws, 0, sizeof *ws);
    if (opts->max_tokens == 0 || opts->max_bytes < 3 || opts->max_word_bytes == 0)
        return xmc_error_set(err, XMC_ERR_ARG, "tokenizer limits must be positive (max_tokens %u, max_bytes %u, "
                             "max_word_bytes %u)", opts->max_tokens, opts->max_bytes, opts->max_word_bytes);
    if (opts->split > XMCI_TOK_SPLIT_SPACE || opts->casefold > 1)
        return xmc_error_set(err, XMC_ERR_ARG, "tokenizer: unknown split %u or casefold %u", opts->split,
                             opts->casefold);
    ws->opts = *opts;
    ws->text = malloc(opts->max_bytes);
    ws->word = malloc((size_t)opts->max_tokens * sizeof *ws->word);
    ws->ncp = malloc((size_t)opts->max_tokens * sizeof *ws->ncp);
    ws->seg = malloc((XMCI_TOK_SEG_CAP + DECOMP_MAX) * sizeof *ws->seg);
    if (!ws->text || !ws->word || !ws->ncp || !ws->seg) {
        xmci_tok_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "tokenizer workspace (%u bytes, %u tokens)", opts->max_bytes,
                             opts->max_tokens);
    }
    ws->text[0] = ' ';
    ws->text_len = 1;
    return XMC_OK;
}

void xmci_tok_ws_free(xmci_tok_ws *ws)
{
    if (!ws) return;
    free(ws->text);
    free(ws->word);
    free(ws->ncp);
    free(ws->seg);
    memset(ws, 0, sizeof *ws);
}

/* ---- word builder --------------------------------------------------------------------------------------- */

typedef struct builder {
    xmci_tok_ws *ws;
    uint32_t pos;    /* next byte of ws->text; ws->text[pos-1] is a space whenever no word is open */
    uint32_t wstart; /* first byte of the open word */
    uint32_t wcps;   /* codepoints in the open word */
    int in_word;
    int skipping;    /* the open word hit max_word_bytes: the rest of its run is dropped */
    int done;        /* a limit was reached: the document ends here */
} builder;

static void end_word(builder *b)
{
    if (!b->in_word) return;
    b->in_word = 0;
    xmci_tok_ws *ws = b->ws;
    if (b->wcps == 0 || b->wcps < ws->opts.min_token_len) { b->pos = b->wstart; return; }
    ws->word[ws->n].off = b->wstart;
    ws->word[ws->n].len = b->pos - b->wstart;
    ws->ncp[ws->n] = b->wcps;
    ws->n++;
    ws->text[b->pos++] = ' '; /* room was kept when the bytes were added */
    if (ws->n == ws->opts.max_tokens) b->done = 1;
}

/* Adds one codepoint (k UTF-8 bytes) of class cls. Inline, and its bytes copied one by one (k <= 4): it runs
 * once per character, where a call to memcpy cost more than the rest of it. */
static inline void add_cp(builder *b, const unsigned char *bytes, uint32_t k, int cls)
{
    if (cls == CL_SEP || (cls == CL_MARK && !b->in_word)) { end_word(b); return; }
    if (!b->in_word) {
        b->in_word = 1;
        b->skipping = 0;
        b->wstart = b->pos;
        b->wcps = 0;
    }
    if (b->skipping) return;
    const xmci_tok_opts *o = &b->ws->opts;
    if (b->pos - b->wstart + k > o->max_word_bytes) { b->skipping = 1; return; }
    if ((uint64_t)b->pos + k + 1 > o->max_bytes) { /* the word would not fit with its trailing space */
        b->pos = b->wstart;
        b->in_word = 0;
        b->done = 1;
        return;
    }
    for (uint32_t j = 0; j < k; j++) b->ws->text[b->pos + j] = (char)bytes[j];
    b->pos += k;
    b->wcps++;
}

/* Class of an ASCII character. */
static int ascii_class(unsigned char c, uint32_t split)
{
    if (split == XMCI_TOK_SPLIT_SPACE) return c <= ' ' || c == 0x7f ? CL_SEP : CL_WORD;
    return ASCII_CLASS[c];
}

static int class_of(int32_t cp, uint32_t split)
{
    utf8proc_category_t c = utf8proc_category(cp);
    if (split == XMCI_TOK_SPLIT_SPACE) /* white space, controls and U+FFFD (an invalid byte) separate */
        return (c >= UTF8PROC_CATEGORY_ZS && c <= UTF8PROC_CATEGORY_CC) || cp == 0xFFFD ? CL_SEP : CL_WORD;
    if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) return CL_WORD;
    if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) return CL_WORD;
    if (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME) return CL_MARK;
    return CL_SEP;
}

/* ---- normalisation segments ----------------------------------------------------------------------------- */

/* Whether a decomposed codepoint starts a segment: nothing before it can be reordered past it (combining
 * class 0) or compose with it (composition seconds are marks, or Hangul vowel/trailing jamo). */
static int safe_starter(int32_t cp)
{
    if (cp < 0x80) return 1;
    if (cp >= 0x1160 && cp <= 0x11FF) return 0;
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0) return 0;
    return !(p->category >= UTF8PROC_CATEGORY_MN && p->category <= UTF8PROC_CATEGORY_ME);
}

/* Canonical ordering of the segment (utf8proc_decompose_custom's bubble pass), composition, then the words. */
static void flush_seg(builder *b)
{
    xmci_tok_ws *ws = b->ws;
    int32_t *seg = ws->seg;
    utf8proc_ssize_t n = ws->seg_len;
    if (n == 0) return;
    ws->seg_len = 0;
    for (utf8proc_ssize_t pos = 0; pos + 1 < n;) {
        const utf8proc_property_t *p1 = utf8proc_get_property(seg[pos]);
        const utf8proc_property_t *p2 = utf8proc_get_property(seg[pos + 1]);
        if (p1->combining_class > p2->combining_class && p2->combining_class > 0) {
            int32_t t = seg[pos];
            seg[pos] = seg[pos + 1];
            seg[pos + 1] = t;
            if (pos > 0) pos--; else pos++;
        } else {
            pos++;
        }
    }
    n = utf8proc_normalize_utf32(seg, n, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    unsigned char utf8[4];
    for (utf8proc_ssize_t i = 0; i < n && !b->done; i++) {
        utf8proc_ssize_t k = utf8proc_encode_char(seg[i], utf8);
        if (k <= 0) { end_word(b); continue; }
        add_cp(b, utf8, (uint32_t)k, class_of(seg[i], ws->opts.split));
    }
}

uint32_t xmci_tok_words(xmci_tok_ws *ws, const char *text, size_t len)
{
    builder b = {.ws = ws, .pos = 1};
    const unsigned char *s = (const unsigned char *)text;
    ws->n = 0;
    ws->seg_len = 0;
    ws->text[0] = ' ';
    int bc = 0;
    size_t i = 0;
    const uint32_t split = ws->opts.split, fold = ws->opts.casefold;
    const utf8proc_option_t decomp_opts = fold ? DECOMP_OPTS : DECOMP_OPTS_KEEP_CASE;
    while (i < len && !b.done) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (ws->seg_len) flush_seg(&b); /* tested here: a call per ASCII byte cost a tenth of featurizing */
            unsigned char lc = (fold && c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
            if (i + 1 == len || s[i + 1] < 0x80) {
                add_cp(&b, &lc, 1, ascii_class(c, split));
            } else {
                /* a combining mark may follow: the character opens a segment */
                ws->seg[ws->seg_len++] = lc;
            }
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) { /* an invalid byte reads as U+FFFD, a symbol: it separates words */
            flush_seg(&b);
            end_word(&b);
            i++;
            continue;
        }
        i += (size_t)k;
        int32_t d[DECOMP_MAX];
        utf8proc_ssize_t m = utf8proc_decompose_char(cp, d, DECOMP_MAX, decomp_opts, &bc);
        if (m == 0) continue; /* a default-ignorable (soft hyphen, ZWJ...) vanishes without splitting */
        if (m < 0 || m > DECOMP_MAX) { flush_seg(&b); end_word(&b); continue; }
        if (safe_starter(d[0]) || ws->seg_len + (uint32_t)m > XMCI_TOK_SEG_CAP) flush_seg(&b);
        memcpy(ws->seg + ws->seg_len, d, (size_t)m * sizeof *d);
        ws->seg_len += (uint32_t)m;
    }
    if (!b.done) {
        flush_seg(&b);
        end_word(&b);
    }
    ws->seg_len = 0;
    ws->text_len = b.pos;
    return ws->n;
}

/* ---- char_wb n-grams ------------------------------------------------------------------------------------ */

static inline int is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Byte offset just past `count` codepoints from p (bounded by end). */
static uint32_t advance(const char *t, uint32_t p, uint32_t end, uint32_t count)
{
    while (count > 0 && p < end) {
        p++;
        while (p < end && is_cont((unsigned char)t[p])) p++;
        count--;
    }
    return p;
}

uint32_t xmci_tok_char_wb_count(const xmci_tok_ws *ws, uint32_t word, uint32_t nmin, uint32_t nmax)
{
    uint32_t padded = ws->ncp[word] + 2, count = 0;
    for (uint32_t n = nmin; n <= nmax; n++) {
        if (padded <= n) { count++; break; }
        count += padded - n + 1;
    }
    return count;
}

uint32_t xmci_tok_char_wb(const xmci_tok_ws *ws, uint32_t word, uint32_t nmin, uint32_t nmax, xmci_tok_span *out,
                         uint32_t cap)
{
    const char *t = ws->text;
    uint32_t begin = ws->word[word].off - 1, end = ws->word[word].off + ws->word[word].len + 1;
    uint32_t padded = ws->ncp[word] + 2, k = 0;
    for (uint32_t n = nmin; n <= nmax && k < cap; n++) {
        if (padded <= n) {
            out[k].off = begin;
            out[k].len = end - begin;
            k++;
            break;
        }
        uint32_t a = begin, z = advance(t, begin, end, n);
        for (uint32_t g = 0; g + n <= padded && k < cap; g++) {
            out[k].off = a;
            out[k].len = z - a;
            k++;
            a = advance(t, a, end, 1);
            z = advance(t, z, end, 1);
        }
    }
    return k;
}
