/* wordpiece.c: BERT basic tokenizer + WordPiece over a vocab.txt hash table (see wordpiece.h for the rules).
 *
 * A text is decoded once into code points while the cleaning rules run (drop controls, whitespace becomes a
 * single separator, CJK ideographs are surrounded by separators). Each word between separators is then
 * lower-cased, decomposed (NFD: utf8proc per code point + our canonical reordering), stripped of Mn marks
 * and split at punctuation; each resulting token is re-encoded to UTF-8 once and word-pieced by hashing
 * byte ranges of that buffer in place. The vocabulary is one string pool plus an open-addressing table of
 * ids; a "##x" entry is stored as the key "x" with a continuation flag, so "##" never has to be prepended. */
#include "wordpiece.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <utf8proc.h>

struct xmci_wordpiece {
    int n;              /* ids */
    char *pool;         /* every token, NUL-terminated, in id order */
    uint32_t *off;      /* n: offset of each token in pool */
    uint32_t *klen;     /* n: key length in bytes (without a "##" continuation prefix) */
    uint8_t *cont;      /* n: 1 for a "##" piece */
    int32_t *slots;     /* hash table of ids, -1 = empty */
    uint32_t mask;      /* slots - 1 (power of two) */
    int max_piece_cps;  /* longest key in code points: no match can be longer */
    int32_t unk, cls, sep, pad;
};

/* ---- vocabulary ----------------------------------------------------------------------------------------- */

static uint32_t key_hash(const char *s, size_t len, int cont)
{
    uint32_t h = 2166136261u ^ (cont ? 0x9e3779b9u : 0u); /* FNV-1a, seeded apart for "##" pieces */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    h ^= h >> 15; /* FNV's low bits mix poorly for short keys; the table uses the low bits */
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

static int32_t key_lookup(const xmci_wordpiece *wp, const char *s, size_t len, int cont)
{
    uint32_t i = key_hash(s, len, cont) & wp->mask;
    for (;;) {
        int32_t id = wp->slots[i];
        if (id < 0) return -1;
        const char *k = wp->pool + wp->off[id] + (wp->cont[id] ? 2 : 0);
        if (wp->cont[id] == cont && wp->klen[id] == len && memcmp(k, s, len) == 0) return id;
        i = (i + 1) & wp->mask;
    }
}

static void key_split(const char *tok, size_t len, const char **key, size_t *klen, int *cont)
{
    *cont = len > 2 && tok[0] == '#' && tok[1] == '#';
    *key = tok + (*cont ? 2 : 0);
    *klen = len - (*cont ? 2 : 0);
}

static int count_cps(const char *s, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

void xmci_wordpiece_free(xmci_wordpiece *wp)
{
    if (!wp) return;
    free(wp->pool);
    free(wp->off);
    free(wp->klen);
    free(wp->cont);
    free(wp->slots);
    free(wp);
}

static xmc_err read_all(const char *path, char **buf, size_t *size, xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) { free(b); b = NULL; break; }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path);
    if (bad) { free(b); return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path); }
    b[n] = 0;
    *buf = b;
    *size = n;
    return XMC_OK;
}

/* A token (line `id` + 1 of path, len bytes) has no NUL byte and is valid UTF-8: XMC_ERR_PARSE otherwise. */
static xmc_err check_token(const char *line, size_t len, const char *path, int id, xmc_error *err)
{
    if (memchr(line, 0, len)) return xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: NUL byte in token", path, id + 1);
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)line + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: invalid UTF-8", path, id + 1);
        i += (size_t)k;
    }
    return XMC_OK;
}

/* Records token id (line, len bytes, inside wp->pool) and enters it in the table unless it is a repeat. */
static void add_token(xmci_wordpiece *wp, const char *line, size_t len, int id)
{
    const char *key;
    size_t klen;
    int cont;
    key_split(line, len, &key, &klen, &cont);
    wp->off[id] = (uint32_t)(line - wp->pool);
    wp->klen[id] = (uint32_t)klen;
    wp->cont[id] = (uint8_t)cont;
    if (key_lookup(wp, key, klen, cont) < 0) { /* a repeated token keeps its first id */
        uint32_t i = key_hash(key, klen, cont) & wp->mask;
        while (wp->slots[i] >= 0) i = (i + 1) & wp->mask;
        wp->slots[i] = id;
        int ncp = count_cps(key, klen);
        if (ncp > wp->max_piece_cps) wp->max_piece_cps = ncp;
    }
}

xmc_err xmci_wordpiece_load(const char *path, xmci_wordpiece **out, xmc_error *err)
{
    char *text = NULL;
    size_t size = 0;
    xmc_err rc = read_all(path, &text, &size, err);
    if (rc) return rc;
    /* Lines end in \n; a \r before it is dropped (Python's text mode does the same). */
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    if (size && text[size - 1] != '\n') lines++;
    if (lines == 0 || lines > (size_t)INT32_MAX / 2) {
        free(text);
        return xmc_error_set(err, XMC_ERR_PARSE, "%s: empty vocabulary", path);
    }
    xmci_wordpiece *wp = calloc(1, sizeof *wp);
    size_t nslots = 1;
    while (nslots < 2 * lines) nslots <<= 1;
    if (wp) {
        wp->off = malloc(lines * sizeof *wp->off);
        wp->klen = malloc(lines * sizeof *wp->klen);
        wp->cont = malloc(lines);
        wp->slots = malloc(nslots * sizeof *wp->slots);
    }
    if (!wp || !wp->off || !wp->klen || !wp->cont || !wp->slots) {
        free(text);
        xmci_wordpiece_free(wp);
        return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(wp->slots, 0xff, nslots * sizeof *wp->slots);
    wp->mask = (uint32_t)(nslots - 1);
    wp->pool = text; /* the file itself becomes the pool: each \n is replaced by a NUL */
    size_t pos = 0;
    int id = 0;
    while (pos < size) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        pos += len + 1;
        if (nl) *nl = 0;
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if ((rc = check_token(line, len, path, id, err))) {
            xmci_wordpiece_free(wp);
            return rc;
        }
        add_token(wp, line, len, id);
        id++;
    }
    wp->n = id;
    wp->unk = xmci_wordpiece_id(wp, "[UNK]");
    wp->cls = xmci_wordpiece_id(wp, "[CLS]");
    wp->sep = xmci_wordpiece_id(wp, "[SEP]");
    wp->pad = xmci_wordpiece_id(wp, "[PAD]");
    if (wp->pad < 0) wp->pad = 0;
    const char *missing = wp->unk < 0 ? "[UNK]" : wp->cls < 0 ? "[CLS]" : wp->sep < 0 ? "[SEP]" : NULL;
    if (missing) {
        xmci_wordpiece_free(wp);
        return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: vocabulary has no %s token", path, missing);
    }
    *out = wp;
    return XMC_OK;
}

int xmci_wordpiece_size(const xmci_wordpiece *wp) { return wp->n; }

int32_t xmci_wordpiece_id(const xmci_wordpiece *wp, const char *token)
{
    const char *key;
    size_t klen;
    int cont;
    key_split(token, strlen(token), &key, &klen, &cont);
    return key_lookup(wp, key, klen, cont);
}

const char *xmci_wordpiece_token(const xmci_wordpiece *wp, int32_t id)
{
    return id >= 0 && id < wp->n ? wp->pool + wp->off[id] : NULL;
}

int32_t xmci_wordpiece_cls(const xmci_wordpiece *wp) { return wp->cls; }
int32_t xmci_wordpiece_sep(const xmci_wordpiece *wp) { return wp->sep; }
int32_t xmci_wordpiece_pad(const xmci_wordpiece *wp) { return wp->pad; }
int32_t xmci_wordpiece_unk(const xmci_wordpiece *wp) { return wp->unk; }

/* ---- character classes ---------------------------------------------------------------------------------- */

#define SEP_CP (-1) /* word separator in the cleaned code point stream */

static int is_whitespace(int32_t c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return 1;
    if (c < 128) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    /* Zs is BERT's rule; Zl/Zp survive its cleaning but Python's str.split() then splits on them */
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

static int is_dropped(int32_t c)
{
    if (c == 0 || c == 0xFFFD) return 1;
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    if (c >= 32 && c < 127) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO;
}

static int is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(int32_t c)
{
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    if (c < 128) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* Unicode "cased" and "case-ignorable" (approximated from categories), for the final-sigma rule. */
static int is_cased(int32_t c)
{
    return utf8proc_islower(c) || utf8proc_isupper(c) || utf8proc_category(c) == UTF8PROC_CATEGORY_LT;
}

static int is_case_ignorable(int32_t c)
{
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xA8: case 0xAD: case 0xAF: case 0xB4:
    case 0xB7: case 0xB8: case 0x387: case 0x5F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027:
    case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    }
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Python's str.lower() turns a capital sigma into final sigma at the end of a cased word. */
static int final_sigma(const int32_t *w, size_t n, size_t i)
{
    size_t j = i;
    int before = 0, after = 0;
    while (j > 0) {
        int32_t c = w[--j];
        if (is_case_ignorable(c)) continue;
        before = is_cased(c);
        break;
    }
    for (j = i + 1; j < n; j++) {
        if (is_case_ignorable(w[j])) continue;
        after = is_cased(w[j]);
        break;
    }
    return before && !after;
}

/* ---- buffers -------------------------------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

void xmci_wordpiece_batch_free(xmci_wordpiece_batch *batch)
{
    if (!batch) return;
    free(batch->ids);
    free(batch->mask);
    free(batch->len);
    free(batch->full_len);
    free(batch->cps);
    free(batch->pieces);
    free(batch->utf8);
    free(batch->cp_off);
    memset(batch, 0, sizeof *batch);
}

/* ---- tokenising ----------------------------------------------------------------------------------------- */

/* Appends one id to the pieces of the current row. */
static int push_piece(xmci_wordpiece_batch *batch, size_t *np, int32_t id)
{
    if (grow((void **)&batch->pieces, &batch->cap_pieces, *np + 1, sizeof *batch->pieces)) return -1;
    batch->pieces[(*np)++] = id;
    return 0;
}

/* WordPiece of one basic token (code points t[0..m)); appends ids at *np. */
static int wordpiece_token(const xmci_wordpiece *wp, xmci_wordpiece_batch *batch, const int32_t *t, size_t m,
                           size_t *np)
{
    if (m > XMCI_WORDPIECE_MAX_WORD_CHARS) return push_piece(batch, np, wp->unk);
    if (grow((void **)&batch->utf8, &batch->cap_utf8, 4 * m + 1, 1) ||
        grow((void **)&batch->cp_off, &batch->cap_off, m + 1, sizeof *batch->cp_off))
        return -1;
    int *off = batch->cp_off;
    unsigned char *u = batch->utf8;
    size_t nb = 0;
    for (size_t i = 0; i < m; i++) {
        off[i] = (int)nb;
        nb += (size_t)utf8proc_encode_char(t[i], u + nb);
    }
    off[m] = (int)nb;
    size_t first = *np, start = 0;
    while (start < m) {
        size_t end = m;
        if (end - start > (size_t)wp->max_piece_cps) end = start + (size_t)wp->max_piece_cps;
        int32_t id = -1;
        for (; end > start; end--) {
            id = key_lookup(wp, (const char *)u + off[start], (size_t)(off[end] - off[start]), start > 0);
            if (id >= 0) break;
        }
        if (id < 0) { /* one unmatched position makes the whole token [UNK] */
            *np = first;
            return push_piece(batch, np, wp->unk);
        }
        if (push_piece(batch, np, id)) return -1;
        start = end;
    }
    return 0;
}

/* Lower-cases, decomposes (NFD) and strips Mn from word w[0..n), writing code points at out; returns the
 * count or -1 when out (cap entries) is too small. */
static ssize_t normalize_word(const int32_t *w, size_t n, int32_t *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t lo[2];
        int nlo = 1;
        if (w[i] == 0x130) { lo[0] = 'i'; lo[1] = 0x307; nlo = 2; } /* the one unconditional full mapping */
        else if (w[i] == 0x3A3) lo[0] = final_sigma(w, n, i) ? 0x3C2 : 0x3C3;
        else lo[0] = w[i] < 128 ? (w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]) : utf8proc_tolower(w[i]);
        for (int j = 0; j < nlo; j++) {
            if (lo[j] < 0xC0) { /* nothing below U+00C0 decomposes */
                if (k >= cap) return -1;
                out[k++] = lo[j];
                continue;
            }
            utf8proc_ssize_t d = utf8proc_decompose_char(lo[j], out + k, (utf8proc_ssize_t)(cap - k),
                                                         UTF8PROC_DECOMPOSE, NULL);
            if (d < 0) { /* cannot happen for a valid code point; keep the character rather than lose it */
                if (k >= cap) return -1;
                out[k++] = lo[j];
                continue;
            }
            if ((size_t)d > cap - k) return -1;
            k += (size_t)d;
        }
    }
    /* canonical ordering: stable sort of each run of non-starters by combining class */
    for (size_t i = 1; i < k; i++) {
        int32_t c = out[i];
        int cc = utf8proc_get_property(c)->combining_class;
        if (!cc) continue;
        size_t j = i;
        while (j > 0) {
            int pc = utf8proc_get_property(out[j - 1])->combining_class;
            if (pc <= cc) break;
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (out[i] < 0x300 || utf8proc_category(out[i]) != UTF8PROC_CATEGORY_MN) out[m++] = out[i];
    return (ssize_t)m;
}

/* Tokenises one text into pieces (no specials) appended at *np. */
static int tokenize_text(const xmci_wordpiece *wp, xmci_wordpiece_batch *batch, const char *text, size_t len,
                         size_t *np)
{
    /* cleaned stream: at most 3 entries per byte (sep, CJK, sep); word scratch: 2 (U+0130) x 4 (NFD) per
     * code point of the word, NFD of one lower-cased code point being at most 4 long */
    size_t stream_cap = 3 * len + 1;
    if (grow((void **)&batch->cps, &batch->cap_cps, stream_cap + 8 * len + 16, sizeof *batch->cps)) return -1;
    int32_t *s = batch->cps;
    size_t ns = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        if (p[i] < 128) {
            c = p[i++];
        } else {
            utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
            if (k <= 0) { c = 0xFFFD; k = 1; } /* invalid byte: replaced, and U+FFFD is then dropped */
            i += (size_t)k;
        }
        if (is_dropped(c)) continue;
        if (is_whitespace(c)) {
            s[ns++] = SEP_CP;
        } else if (is_cjk(c)) {
            s[ns++] = SEP_CP;
            s[ns++] = c;
            s[ns++] = SEP_CP;
        } else {
            s[ns++] = c;
        }
    }
    int32_t *wbuf = s + stream_cap;
    size_t wcap = batch->cap_cps - stream_cap;
    for (size_t a = 0; a < ns;) {
        if (s[a] == SEP_CP) { a++; continue; }
        size_t b = a;
        while (b < ns && s[b] != SEP_CP) b++;
        ssize_t m = normalize_word(s + a, b - a, wbuf, wcap);
        if (m < 0) return -1; /* the scratch bound above makes this unreachable */
        /* punctuation split: each punctuation code point is a token of its own */
        size_t t0 = 0;
        for (size_t i = 0; i <= (size_t)m; i++) {
            int punct = i < (size_t)m && is_punct(wbuf[i]);
            if (i == (size_t)m || punct) {
                if (i > t0 && wordpiece_token(wp, batch, wbuf + t0, i - t0, np)) return -1;
                if (punct && wordpiece_token(wp, batch, wbuf + i, 1, np)) return -1;
                t0 = i + 1;
            }
        }
        a = b;
    }
    return 0;
}

xmc_err xmci_wordpiece_encode_batch(const xmci_wordpiece *wp, const char *const *texts, const size_t *lens, int n,
                                   int max_len, xmci_wordpiece_batch *batch, xmc_error *err)
{
    batch->n = 0;
    batch->seq = 0;
    if (n < 1) return xmc_error_set(err, XMC_ERR_ARG, "wordpiece: batch of %d texts", n);
    if (max_len < 2) return xmc_error_set(err, XMC_ERR_ARG, "wordpiece: max length %d (needs >= 2)", max_len);
    if (grow((void **)&batch->len, &batch->cap_rows, (size_t)n, sizeof *batch->len)) goto nomem;
    int *fl = realloc(batch->full_len, batch->cap_rows * sizeof *fl);
    if (!fl) goto nomem;
    batch->full_len = fl;
    /* pass 1: pieces of every row, each row cut to max_len - 2 right after it is tokenised */
    size_t np = 0;
    int seq = 2;
    for (int r = 0; r < n; r++) {
        if (!texts[r]) return xmc_error_set(err, XMC_ERR_ARG, "wordpiece: text %d is NULL", r);
        size_t len = lens ? lens[r] : strlen(texts[r]);
        size_t row0 = np;
        if (tokenize_text(wp, batch, texts[r], len, &np)) goto nomem;
        size_t count = np - row0, keep = count < (size_t)max_len - 2 ? count : (size_t)max_len - 2;
        np = row0 + keep;
        batch->full_len[r] = count + 2 > INT32_MAX ? INT32_MAX : (int)(count + 2);
        batch->len[r] = (int)keep + 2;
        if (batch->len[r] > seq) seq = batch->len[r];
    }
    /* pass 2: [CLS] pieces [SEP] [PAD]... per row */
    size_t cells = (size_t)n * (size_t)seq;
    size_t cap = batch->cap_cells;
    if (grow((void **)&batch->ids, &cap, cells, sizeof *batch->ids)) goto nomem;
    uint8_t *mask = realloc(batch->mask, cap);
    if (!mask) { batch->cap_cells = cap; goto nomem; }
    batch->mask = mask;
    batch->cap_cells = cap;
    size_t src = 0;
    for (int r = 0; r < n; r++) {
        int32_t *row = batch->ids + (size_t)r * seq;
        uint8_t *mrow = batch->mask + (size_t)r * seq;
        int len = batch->len[r];
        row[0] = wp->cls;
        if (len > 2) memcpy(row + 1, batch->pieces + src, (size_t)(len - 2) * sizeof *row); /* pieces may be NULL */
        src += (size_t)(len - 2);
        row[len - 1] = wp->sep;
        for (int j = len; j < seq; j++) row[j] = wp->pad;
        memset(mrow, 1, (size_t)len);
        memset(mrow + len, 0, (size_t)(seq - len));
    }
    batch->n = n;
    batch->seq = seq;
    return XMC_OK;
nomem:
    return xmc_error_set(err, XMC_ERR_NOMEM, "wordpiece: out of memory");
}
