/* tfidf.c: TF-IDF vectoriser: configuration strings, parallel fitting, transform, persistence (see tfidf.h).
 *
 * Fitting: the documents are cut into one contiguous range per thread. Each thread tokenises its documents and
 * counts document frequencies in its own open-addressing tables, one per (base, hash partition), whose keys
 * live in the table's own byte arena (offsets, not pointers, so the arena can grow), with a "last document"
 * field so that an n-gram counts once per document. Then one thread per partition merges that partition of
 * every thread's tables into the first thread's (partitions are disjoint by hash, so no locks). The survivors
 * of the df filters are sorted by their bytes, which fixes the feature ids, and packed into the four arrays that
 * are also the saved form: vocabulary bytes, offsets, idf, and a lookup table of {id + 1, hash high bits}.
 *
 * Transforming: tokenise, hash every n-gram of every base and look it up; the ids found are sorted and
 * run-length counted into (id, tf); then tf weighting, idf, per-base and whole-row L2. All scratch lives in the
 * workspace, sized from the tokenizer limits, so a document costs no allocation. */
#include "tfidf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NOT_FOUND UINT32_MAX
#define MAX_THREADS 64
#define FORMAT_VERSION 1

struct xmc_tfidf {
    xmc_tfidf_config cfg;
    uint32_t dim;
    uint32_t base_off[XMC_TFIDF_MAX_BASES + 1]; /* base b owns ids base_off[b] .. base_off[b+1]-1 */
    uint64_t n_docs;                            /* N of the idf */
    const unsigned char *vocab;
    uint64_t vocab_len;
    const uint32_t *offsets; /* dim + 1 */
    const float *idf;        /* dim */
    const uint32_t *table;   /* table_cap x 2 */
    uint32_t table_cap;      /* a power of two */
    uint32_t spans_cap;      /* n-grams one base can yield from one document */
    uint32_t hits_cap;       /* n-grams all bases can yield */
    uint32_t max_nnz;
    void *owned[4];          /* the four arrays when fitted here; NULL when they view a bundle */
};

struct xmc_tfidf_ws {
    const xmc_tfidf *tf;
    xmc_tok_ws tok;
    xmc_tok_span *spans;
    uint32_t *hits;
    uint32_t *tmp; /* radix sort buffer, as long as hits */
    uint32_t *idx;
    float *val;
};

/* ---- configuration -------------------------------------------------------------------------------------- */

static void base_default(xmc_tfidf_base *b)
{
    b->analyzer = XMC_TFIDF_WORD;
    b->ngram_min = 1;
    b->ngram_max = 2;
    b->min_df = 2;
    b->max_df = 1.0;
    b->max_features = 0;
    b->sublinear_tf = 1;
    b->idf = XMC_TFIDF_IDF_PECOS;
    b->smooth_idf = 1;
    b->add_one_idf = 0;
    b->norm = XMC_TFIDF_NORM_L2;
}

void xmc_tfidf_config_default(xmc_tfidf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_bases = 1;
    base_default(&cfg->base[0]);
    cfg->norm = XMC_TFIDF_NORM_L2;
    xmc_tok_opts_default(&cfg->tok);
}

static int parse_u32(const char *s, uint32_t *v)
{
    if (!isdigit((unsigned char)*s)) return 0;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x > UINT32_MAX) return 0;
    *v = (uint32_t)x;
    return 1;
}

static int parse_bool(const char *s, int *v)
{
    if (!strcmp(s, "0") || !strcmp(s, "false")) { *v = 0; return 1; }
    if (!strcmp(s, "1") || !strcmp(s, "true")) { *v = 1; return 1; }
    return 0;
}

static int parse_norm(const char *s, xmc_tfidf_norm *v)
{
    if (!strcmp(s, "l2")) { *v = XMC_TFIDF_NORM_L2; return 1; }
    if (!strcmp(s, "none")) { *v = XMC_TFIDF_NORM_NONE; return 1; }
    return 0;
}

/* Applies key=value to base b (or, with b NULL, to every base and the global fields). */
static xmc_err apply_option(xmc_tfidf_config *cfg, xmc_tfidf_base *b, char *kv, xmc_error *err)
{
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is not key=value", kv);
    *eq = 0;
    const char *key = kv, *val = eq + 1;
    int ok = 1;
    xmc_tfidf_base *first = b ? b : &cfg->base[0];
    xmc_tfidf_base *last = b ? b : &cfg->base[cfg->n_bases - 1];
    if (!strcmp(key, "max_tokens") || !strcmp(key, "max_bytes") || !strcmp(key, "max_word_bytes") ||
        !strcmp(key, "min_token_len")) {
        if (b) { *eq = '='; return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is not a per-base option", kv); }
        uint32_t v;
        ok = parse_u32(val, &v);
        if (ok && !strcmp(key, "max_tokens")) cfg->tok.max_tokens = v;
        else if (ok && !strcmp(key, "max_bytes")) cfg->tok.max_bytes = v;
        else if (ok && !strcmp(key, "max_word_bytes")) cfg->tok.max_word_bytes = v;
        else if (ok) cfg->tok.min_token_len = v;
    } else {
        for (xmc_tfidf_base *p = first; ok && p <= last; p++) {
            uint32_t u;
            if (!strcmp(key, "min_df")) {
                ok = parse_u32(val, &u);
                if (ok) p->min_df = u;
            } else if (!strcmp(key, "max_df")) {
                char *end;
                errno = 0;
                double d = strtod(val, &end);
                ok = *val && !*end && !errno && d > 0 && d <= 1;
                if (ok) p->max_df = d;
            } else if (!strcmp(key, "max_features")) {
                ok = parse_u32(val, &u);
                if (ok) p->max_features = u;
            } else if (!strcmp(key, "sublinear")) {
                ok = parse_bool(val, &p->sublinear_tf);
            } else if (!strcmp(key, "idf")) {
                if (!strcmp(val, "pecos")) p->idf = XMC_TFIDF_IDF_PECOS;
                else if (!strcmp(val, "sklearn")) p->idf = XMC_TFIDF_IDF_SKLEARN;
                else if (!strcmp(val, "none")) p->idf = XMC_TFIDF_IDF_NONE;
                else ok = 0;
            } else if (!strcmp(key, "smooth_idf")) {
                ok = parse_bool(val, &p->smooth_idf);
            } else if (!strcmp(key, "add_one_idf")) {
                ok = parse_bool(val, &p->add_one_idf);
            } else if (!strcmp(key, "norm")) {
                ok = parse_norm(val, &p->norm);
                if (ok && !b) ok = parse_norm(val, &cfg->norm);
            } else {
                *eq = '=';
                return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: unknown option '%s'", kv);
            }
        }
    }
    *eq = '=';
    if (!ok) return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad value in '%s'", kv);
    return XMC_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* Checks what the parser checks, for configs filled by hand. */
static xmc_err check_config(const xmc_tfidf_config *cfg, xmc_error *err)
{
    if (cfg->n_bases < 1 || cfg->n_bases > XMC_TFIDF_MAX_BASES)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: %u bases (1..%d)", cfg->n_bases, XMC_TFIDF_MAX_BASES);
    for (uint32_t i = 0; i < cfg->n_bases; i++) {
        const xmc_tfidf_base *b = &cfg->base[i];
        if (b->analyzer != XMC_TFIDF_WORD && b->analyzer != XMC_TFIDF_CHAR_WB)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: unknown analyzer", i);
        if (b->ngram_min < 1 || b->ngram_min > b->ngram_max || b->ngram_max > XMC_TFIDF_MAX_NGRAM)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: n-gram range %u-%u (1..%d, min <= max)", i,
                                 b->ngram_min, b->ngram_max, XMC_TFIDF_MAX_NGRAM);
        if (!(b->max_df > 0 && b->max_df <= 1))
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: max_df %g not in (0, 1]", i, b->max_df);
        if ((unsigned)b->idf > XMC_TFIDF_IDF_NONE || (unsigned)b->norm > XMC_TFIDF_NORM_L2)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: unknown idf or norm", i);
    }
    if ((unsigned)cfg->norm > XMC_TFIDF_NORM_L2) return xmc_error_set(err, XMC_ERR_ARG, "tfidf: unknown norm");
    if (cfg->tok.max_tokens < 1 || cfg->tok.max_bytes < 16 || cfg->tok.max_word_bytes < 1 ||
        cfg->tok.min_token_len < 1)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: max_tokens, max_word_bytes, min_token_len must be >= 1 and "
                             "max_bytes >= 16");
    return XMC_OK;
}

xmc_err xmc_tfidf_config_parse(xmc_tfidf_config *cfg, const char *spec, xmc_error *err)
{
    xmc_tfidf_config_default(cfg);
    if (!spec || !*spec) return XMC_OK;
    char *copy = strdup(spec);
    if (!copy) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc = XMC_OK;
    /* pass 1: the bases and their ranges; pass 2: global options; pass 3: each base's own options */
    char *items[256];
    int n_items = 0;
    for (char *save = NULL, *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (n_items == 256) { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: too many items"); goto out; }
        items[n_items++] = trim(it);
    }
    uint32_t nb = 0;
    int base_of[256];
    for (int i = 0; i < n_items; i++) {
        char *it = items[i];
        base_of[i] = -1;
        xmc_tfidf_analyzer an;
        size_t pre;
        if (!strncmp(it, "word:", 5)) { an = XMC_TFIDF_WORD; pre = 5; }
        else if (!strncmp(it, "char_wb:", 8)) { an = XMC_TFIDF_CHAR_WB; pre = 8; }
        else if (strchr(it, '=')) continue;
        else { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is neither a base (word:N-M, char_wb:N-M) "
                                  "nor key=value", it); goto out; }
        if (nb == XMC_TFIDF_MAX_BASES) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: more than %d bases", XMC_TFIDF_MAX_BASES);
            goto out;
        }
        xmc_tfidf_base *b = &cfg->base[nb];
        base_default(b);
        b->analyzer = an;
        char range[32];
        size_t rl = strcspn(it + pre, ":");
        if (rl == 0 || rl >= sizeof range) { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad range in '%s'", it); goto out; }
        memcpy(range, it + pre, rl);
        range[rl] = 0;
        char *dash = strchr(range, '-');
        if (dash) *dash = 0;
        if (!parse_u32(range, &b->ngram_min) || !parse_u32(dash ? dash + 1 : range, &b->ngram_max) ||
            b->ngram_min < 1 || b->ngram_min > b->ngram_max || b->ngram_max > XMC_TFIDF_MAX_NGRAM) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad n-gram range in '%s' (1..%d, min <= max)", it,
                               XMC_TFIDF_MAX_NGRAM);
            goto out;
        }
        items[i] = it + pre + rl; /* "" or ":k=v:k=v" */
        base_of[i] = (int)nb++;
    }
    if (nb) cfg->n_bases = nb;
    for (int i = 0; i < n_items; i++)
        if (base_of[i] < 0 && (rc = apply_option(cfg, NULL, items[i], err))) goto out;
    for (int i = 0; i < n_items; i++) {
        if (base_of[i] < 0) continue;
        char *save = NULL;
        for (char *kv = strtok_r(items[i], ":", &save); kv; kv = strtok_r(NULL, ":", &save))
            if ((rc = apply_option(cfg, &cfg->base[base_of[i]], trim(kv), err))) goto out;
    }
    rc = check_config(cfg, err);
out:
    free(copy);
    return rc;
}

size_t xmc_tfidf_config_format(const xmc_tfidf_config *cfg, char *buf, size_t size)
{
    static const char *const idf_name[] = {"pecos", "sklearn", "none"};
    static const char *const norm_name[] = {"none", "l2"};
    size_t k = 0;
    char tmp[512];
    for (uint32_t i = 0; i < cfg->n_bases && i < XMC_TFIDF_MAX_BASES; i++) {
        const xmc_tfidf_base *b = &cfg->base[i];
        int n = snprintf(tmp, sizeof tmp,
                         "%s%s:%u-%u:min_df=%u:max_df=%.17g:max_features=%u:sublinear=%d:idf=%s:smooth_idf=%d:"
                         "add_one_idf=%d:norm=%s", i ? "," : "", b->analyzer == XMC_TFIDF_CHAR_WB ? "char_wb" : "word",
                         b->ngram_min, b->ngram_max, b->min_df, b->max_df, b->max_features, b->sublinear_tf ? 1 : 0,
                         idf_name[(unsigned)b->idf <= 2 ? b->idf : 0], b->smooth_idf ? 1 : 0, b->add_one_idf ? 1 : 0,
                         norm_name[b->norm == XMC_TFIDF_NORM_L2]);
        if (k < size) snprintf(buf + k, size - k, "%s", tmp);
        k += (size_t)n;
    }
    int n = snprintf(tmp, sizeof tmp, ",norm=%s,max_tokens=%u,max_bytes=%u,max_word_bytes=%u,min_token_len=%u",
                     norm_name[cfg->norm == XMC_TFIDF_NORM_L2], cfg->tok.max_tokens, cfg->tok.max_bytes,
                     cfg->tok.max_word_bytes, cfg->tok.min_token_len);
    /* the global norm item must not undo the bases' own: they are applied after the items */
    if (k < size) snprintf(buf + k, size - k, "%s", tmp);
    k += (size_t)n;
    return k;
}

/* ---- n-gram generation (shared by fit and transform) ---------------------------------------------------- */

/* Most n-grams base b can yield from one document cut at the tokenizer limits. Word: at most max_tokens per
 * order. char_wb: a word of c codepoints (c <= its bytes) gives at most (c + 2) per order, and the bytes plus
 * two per word sum to at most max_bytes + max_tokens. */
static uint64_t base_bound(const xmc_tfidf_config *cfg, uint32_t b)
{
    const xmc_tfidf_base *base = &cfg->base[b];
    uint64_t orders = base->ngram_max - base->ngram_min + 1;
    if (base->analyzer == XMC_TFIDF_WORD) return orders * cfg->tok.max_tokens;
    return orders * ((uint64_t)cfg->tok.max_bytes + cfg->tok.max_tokens);
}

/* Writes the n-grams of base b of the tokenised document to spans; returns the count (<= base_bound). */
static uint32_t gen_spans(const xmc_tfidf_base *base, const xmc_tok_ws *tok, xmc_tok_span *spans, uint32_t cap)
{
    uint32_t k = 0, nw = tok->n;
    if (base->analyzer == XMC_TFIDF_WORD) {
        for (uint32_t n = base->ngram_min; n <= base->ngram_max && n <= nw; n++)
            for (uint32_t i = 0; i + n <= nw && k < cap; i++) spans[k++] = xmc_tok_word_ngram(tok, i, n);
    } else {
        for (uint32_t w = 0; w < nw && k < cap; w++)
            k += xmc_tok_char_wb(tok, w, base->ngram_min, base->ngram_max, spans + k, cap - k);
    }
    return k;
}

/* n-grams are short: comparing them inline, 8 bytes at a time, beats a call to memcmp in the hot loops. */
static inline int same_bytes(const void *x, const void *y, uint32_t len)
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

/* ---- fitting: document-frequency tables ----------------------------------------------------------------- */

typedef struct cnt_entry {
    uint64_t hash;
    uint32_t off, len; /* bytes in the table's arena; len 0 = empty slot (no n-gram is empty) */
    uint32_t df;
    uint32_t last;     /* last document counted */
} cnt_entry;

typedef struct cnt_table {
    cnt_entry *e;
    uint32_t mask, n;
    char *arena;
    size_t alen, acap;
} cnt_table;

static int cnt_init(cnt_table *t, uint32_t cap)
{
    memset(t, 0, sizeof *t);
    t->e = calloc(cap, sizeof *t->e);
    t->mask = cap - 1;
    t->acap = 1 << 16;
    t->arena = malloc(t->acap);
    return t->e && t->arena;
}

static void cnt_free(cnt_table *t)
{
    free(t->e);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

static int cnt_grow(cnt_table *t)
{
    uint64_t cap = ((uint64_t)t->mask + 1) * 2;
    if (cap > (1ull << 31)) return 0;
    cnt_entry *e = calloc(cap, sizeof *e);
    if (!e) return 0;
    uint32_t mask = (uint32_t)cap - 1;
    for (uint64_t i = 0; i <= t->mask; i++) {
        if (!t->e[i].len) continue;
        uint32_t s = (uint32_t)t->e[i].hash & mask;
        while (e[s].len) s = (s + 1) & mask;
        e[s] = t->e[i];
    }
    free(t->e);
    t->e = e;
    t->mask = mask;
    return 1;
}

/* The entry of the n-gram, inserted with df 0 if new; NULL when out of memory. */
static cnt_entry *cnt_upsert(cnt_table *t, uint64_t h, const char *p, uint32_t len)
{
    if ((uint64_t)(t->n + 1) * 2 > (uint64_t)t->mask + 1 && !cnt_grow(t)) return NULL;
    uint32_t s = (uint32_t)h & t->mask;
    for (;;) {
        cnt_entry *e = &t->e[s];
        if (!e->len) {
            if (t->alen + len > t->acap) {
                size_t cap = t->acap * 2;
                while (cap < t->alen + len) cap *= 2;
                if (cap > UINT32_MAX) return NULL;
                char *a = realloc(t->arena, cap);
                if (!a) return NULL;
                t->arena = a;
                t->acap = cap;
            }
            memcpy(t->arena + t->alen, p, len);
            e->hash = h;
            e->off = (uint32_t)t->alen;
            e->len = len;
            e->df = 0;
            e->last = UINT32_MAX;
            t->alen += len;
            t->n++;
            return e;
        }
        if (e->hash == h && e->len == len && same_bytes(t->arena + e->off, p, len)) return e;
        s = (s + 1) & t->mask;
    }
}

typedef struct fit_job {
    const xmc_tfidf_config *cfg;
    const char *const *texts;
    const size_t *lens;
    uint32_t parts;      /* hash partitions = threads */
    uint32_t spans_cap;
} fit_job;

typedef struct fit_thread {
    const fit_job *job;
    size_t lo, hi;       /* documents */
    uint32_t part;       /* the partition this thread merges */
    struct fit_thread *all;
    int n_threads;
    cnt_table *tabs;     /* n_bases * parts */
    xmc_err rc;
    pthread_t tid;
} fit_thread;

static inline uint32_t part_of(uint64_t h, uint32_t parts) { return (uint32_t)((h >> 40) % parts); }

static void *fit_count(void *arg)
{
    fit_thread *th = arg;
    const fit_job *job = th->job;
    const xmc_tfidf_config *cfg = job->cfg;
    xmc_tok_ws tok;
    xmc_error err;
    xmc_tok_span *spans = malloc((size_t)job->spans_cap * sizeof *spans);
    if (!spans || xmc_tok_ws_init(&tok, &cfg->tok, &err)) {
        free(spans);
        th->rc = XMC_ERR_NOMEM;
        return NULL;
    }
    for (size_t d = th->lo; d < th->hi && !th->rc; d++) {
        xmc_tok_words(&tok, job->texts[d], job->lens[d]);
        for (uint32_t b = 0; b < cfg->n_bases && !th->rc; b++) {
            uint32_t k = gen_spans(&cfg->base[b], &tok, spans, job->spans_cap);
            for (uint32_t i = 0; i < k; i++) {
                const char *p = tok.text + spans[i].off;
                uint64_t h = XXH64(p, spans[i].len, b);
                cnt_entry *e = cnt_upsert(&th->tabs[b * job->parts + part_of(h, job->parts)], h, p, spans[i].len);
                if (!e) { th->rc = XMC_ERR_NOMEM; break; }
                if (e->last != (uint32_t)d) {
                    e->last = (uint32_t)d;
                    e->df++;
                }
            }
        }
    }
    xmc_tok_ws_free(&tok);
    free(spans);
    return NULL;
}

/* Merges partition th->part of every thread's tables into thread 0's. */
static void *fit_merge(void *arg)
{
    fit_thread *th = arg;
    const fit_job *job = th->job;
    for (uint32_t b = 0; b < job->cfg->n_bases && !th->rc; b++) {
        uint32_t slot = b * job->parts + th->part;
        cnt_table *dst = &th->all[0].tabs[slot];
        for (int t = 1; t < th->n_threads && !th->rc; t++) {
            cnt_table *src = &th->all[t].tabs[slot];
            for (uint64_t i = 0; i <= src->mask; i++) {
                const cnt_entry *s = &src->e[i];
                if (!s->len) continue;
                cnt_entry *e = cnt_upsert(dst, s->hash, src->arena + s->off, s->len);
                if (!e) { th->rc = XMC_ERR_NOMEM; break; }
                e->df += s->df;
            }
            cnt_free(src);
        }
    }
    return NULL;
}

typedef struct cand {
    uint64_t hash;
    const char *p;
    uint32_t len, df;
} cand;

static int cmp_bytes(const cand *a, const cand *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int cmp_cand_bytes(const void *x, const void *y) { return cmp_bytes(x, y); }

static int cmp_cand_df(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->df != b->df) return a->df > b->df ? -1 : 1;
    return cmp_bytes(a, b);
}

static double idf_of(const xmc_tfidf_base *b, uint64_t n_docs, uint32_t df)
{
    double s = b->smooth_idf ? 1.0 : 0.0, N = (double)n_docs;
    switch (b->idf) {
    case XMC_TFIDF_IDF_PECOS: {
        double v = log(N / ((double)df + s));
        return (v > 0 ? v : 0) + (b->add_one_idf ? 1.0 : 0.0);
    }
    case XMC_TFIDF_IDF_SKLEARN: return log((N + s) / ((double)df + s)) + 1.0;
    case XMC_TFIDF_IDF_NONE: break;
    }
    return 1.0;
}

/* Sets the bounds derived from the config and dims (shared by fit and load). */
static xmc_err set_bounds(xmc_tfidf *tf, xmc_error *err)
{
    uint64_t spans = 0, hits = 0, nnz = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        uint64_t bound = base_bound(&tf->cfg, b), dim = tf->base_off[b + 1] - tf->base_off[b];
        if (bound > spans) spans = bound;
        hits += bound;
        nnz += bound < dim ? bound : dim;
    }
    if (hits > UINT32_MAX / 2)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: the document limits allow %llu n-grams per document, too many",
                             (unsigned long long)hits);
    tf->spans_cap = (uint32_t)spans;
    tf->hits_cap = (uint32_t)hits;
    tf->max_nnz = (uint32_t)nnz;
    return XMC_OK;
}

/* Builds vocab, offsets, idf and the table from the sorted survivors of every base. */
static xmc_err build_arrays(xmc_tfidf *tf, cand *const *kept, const uint32_t *n_kept, xmc_error *err)
{
    uint64_t dim = 0, bytes = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        tf->base_off[b] = (uint32_t)dim;
        dim += n_kept[b];
        for (uint32_t i = 0; i < n_kept[b]; i++) bytes += kept[b][i].len;
    }
    if (dim == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "tfidf: no n-gram passed min_df/max_df");
    if (dim >= UINT32_MAX / 4 || bytes > UINT32_MAX)
        return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %llu features, %llu vocabulary bytes: too many",
                             (unsigned long long)dim, (unsigned long long)bytes);
    tf->base_off[tf->cfg.n_bases] = (uint32_t)dim;
    tf->dim = (uint32_t)dim;
    uint32_t cap = 16;
    while (cap < 2 * dim) cap *= 2;
    tf->table_cap = cap;
    unsigned char *vocab = malloc(bytes);
    uint32_t *offsets = malloc((dim + 1) * sizeof *offsets);
    float *idf = malloc(dim * sizeof *idf);
    uint32_t *table = calloc((size_t)cap * 2, sizeof *table);
    tf->owned[0] = vocab;
    tf->owned[1] = offsets;
    tf->owned[2] = idf;
    tf->owned[3] = table;
    if (!vocab || !offsets || !idf || !table) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    uint32_t id = 0, pos = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        for (uint32_t i = 0; i < n_kept[b]; i++, id++) {
            const cand *c = &kept[b][i];
            offsets[id] = pos;
            memcpy(vocab + pos, c->p, c->len);
            pos += c->len;
            idf[id] = (float)idf_of(&tf->cfg.base[b], tf->n_docs, c->df);
            uint32_t s = (uint32_t)c->hash & (cap - 1);
            while (table[2 * s]) s = (s + 1) & (cap - 1);
            table[2 * s] = id + 1;
            table[2 * s + 1] = (uint32_t)(c->hash >> 32);
        }
    }
    offsets[dim] = pos;
    tf->vocab = vocab;
    tf->vocab_len = bytes;
    tf->offsets = offsets;
    tf->idf = idf;
    tf->table = table;
    return XMC_OK;
}

xmc_err xmc_tfidf_fit(const xmc_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                      int threads, xmc_tfidf **out, xmc_error *err)
{
    xmc_err rc = check_config(cfg, err);
    if (rc) return rc;
    if (n == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "tfidf: no documents to fit");
    if (n >= UINT32_MAX) return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %zu documents, at most 2^32-2", n);
    int nt = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    if ((size_t)nt > n) nt = (int)n;
    xmc_tfidf *tf = calloc(1, sizeof *tf);
    fit_thread *th = calloc((size_t)nt, sizeof *th);
    cand **kept = calloc(cfg->n_bases, sizeof *kept);
    uint32_t n_kept[XMC_TFIDF_MAX_BASES] = {0};
    if (!tf || !th || !kept) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory"); goto out; }
    tf->cfg = *cfg;
    tf->n_docs = n;
    /* the spans bound needs the dims, unknown yet: use the raw bounds for fitting */
    uint64_t spans_cap = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++)
        if (base_bound(cfg, b) > spans_cap) spans_cap = base_bound(cfg, b);
    if (spans_cap > UINT32_MAX / 2) { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf: document limits too large"); goto out; }
    fit_job job = {cfg, texts, lens, (uint32_t)nt, (uint32_t)spans_cap};
    for (int t = 0; t < nt; t++) {
        th[t].job = &job;
        th[t].lo = n * (size_t)t / (size_t)nt;
        th[t].hi = n * (size_t)(t + 1) / (size_t)nt;
        th[t].part = (uint32_t)t;
        th[t].all = th;
        th[t].n_threads = nt;
        th[t].tabs = calloc((size_t)cfg->n_bases * (size_t)nt, sizeof *th[t].tabs);
        if (!th[t].tabs) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory"); goto out; }
        for (uint32_t i = 0; i < cfg->n_bases * (uint32_t)nt; i++)
            if (!cnt_init(&th[t].tabs[i], 1 << 12)) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory"); goto out; }
    }
    /* count, then merge: thread 0 runs in the caller */
    for (int phase = 0; phase < 2; phase++) {
        void *(*fn)(void *) = phase == 0 ? fit_count : fit_merge;
        int started = 1;
        for (int t = 1; t < nt; t++, started++)
            if (pthread_create(&th[t].tid, NULL, fn, &th[t]) != 0) {
                th[t].rc = XMC_ERR_IO;
                break;
            }
        fn(&th[0]);
        for (int t = 1; t < started; t++) pthread_join(th[t].tid, NULL);
        for (int t = 0; t < nt; t++)
            if (th[t].rc) {
                rc = xmc_error_set(err, th[t].rc, th[t].rc == XMC_ERR_IO ? "tfidf: cannot start a thread"
                                                                          : "tfidf: out of memory counting n-grams");
                goto out;
            }
    }
    /* filter, cut to max_features, sort by bytes */
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        const xmc_tfidf_base *base = &cfg->base[b];
        double max_df = base->max_df * (double)n;
        size_t total = 0;
        for (int p = 0; p < nt; p++) total += th[0].tabs[b * nt + p].n;
        kept[b] = malloc((total ? total : 1) * sizeof *kept[b]);
        if (!kept[b]) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory"); goto out; }
        size_t k = 0;
        for (int p = 0; p < nt; p++) {
            const cnt_table *t = &th[0].tabs[b * nt + p];
            for (uint64_t i = 0; i <= t->mask; i++) {
                const cnt_entry *e = &t->e[i];
                if (!e->len || e->df < base->min_df || (double)e->df > max_df) continue;
                kept[b][k++] = (cand){e->hash, t->arena + e->off, e->len, e->df};
            }
        }
        if (base->max_features && k > base->max_features) {
            qsort(kept[b], k, sizeof *kept[b], cmp_cand_df);
            k = base->max_features;
        }
        qsort(kept[b], k, sizeof *kept[b], cmp_cand_bytes);
        n_kept[b] = (uint32_t)k;
    }
    if ((rc = build_arrays(tf, kept, n_kept, err)) || (rc = set_bounds(tf, err))) goto out;
    *out = tf;
    tf = NULL;
out:
    if (th) {
        for (int t = 0; t < nt; t++) {
            if (!th[t].tabs) continue;
            for (uint32_t i = 0; i < cfg->n_bases * (uint32_t)nt; i++) cnt_free(&th[t].tabs[i]);
            free(th[t].tabs);
        }
        free(th);
    }
    if (kept)
        for (uint32_t b = 0; b < cfg->n_bases; b++) free(kept[b]);
    free(kept);
    xmc_tfidf_free(tf);
    return rc;
}

/* ---- accessors ------------------------------------------------------------------------------------------ */

uint32_t xmc_tfidf_dim(const xmc_tfidf *tf) { return tf->dim; }
uint32_t xmc_tfidf_max_nnz(const xmc_tfidf *tf) { return tf->max_nnz; }
const xmc_tfidf_config *xmc_tfidf_config_of(const xmc_tfidf *tf) { return &tf->cfg; }

void xmc_tfidf_base_range(const xmc_tfidf *tf, uint32_t b, uint32_t *first, uint32_t *count)
{
    if (b >= tf->cfg.n_bases) { *first = tf->dim; *count = 0; return; }
    *first = tf->base_off[b];
    *count = tf->base_off[b + 1] - tf->base_off[b];
}

float xmc_tfidf_idf_of(const xmc_tfidf *tf, uint32_t id) { return id < tf->dim ? tf->idf[id] : 0.0f; }

const char *xmc_tfidf_feature_name(const xmc_tfidf *tf, uint32_t id, size_t *len)
{
    if (id >= tf->dim) return NULL;
    uint32_t a = tf->offsets[id], z = tf->offsets[id + 1];
    if (a > z || z > tf->vocab_len) return NULL; /* a damaged file */
    *len = z - a;
    return (const char *)tf->vocab + a;
}

void xmc_tfidf_free(xmc_tfidf *tf)
{
    if (!tf) return;
    for (int i = 0; i < 4; i++) free(tf->owned[i]);
    free(tf);
}

/* Feature id of the n-gram (hash h, seed b) of base b, NOT_FOUND if absent. Every id and offset read from the
 * arrays is checked, and probing stops after table_cap slots, so damaged arrays cannot make it read out of
 * bounds or loop. */
static uint32_t lookup_hashed(const xmc_tfidf *tf, uint32_t b, uint64_t h, const char *p, uint32_t len)
{
    uint32_t mask = tf->table_cap - 1, fp = (uint32_t)(h >> 32), s = (uint32_t)h & mask;
    uint32_t lo = tf->base_off[b], hi = tf->base_off[b + 1];
    for (uint32_t probes = 0; probes < tf->table_cap; probes++, s = (s + 1) & mask) {
        uint32_t id1 = tf->table[2 * s];
        if (!id1) return NOT_FOUND;
        if (tf->table[2 * s + 1] != fp || id1 - 1 < lo || id1 - 1 >= hi) continue;
        uint32_t a = tf->offsets[id1 - 1], z = tf->offsets[id1];
        if (a <= z && z <= tf->vocab_len && z - a == len && same_bytes(tf->vocab + a, p, len)) return id1 - 1;
    }
    return NOT_FOUND;
}

uint32_t xmc_tfidf_lookup(const xmc_tfidf *tf, uint32_t b, const char *bytes, size_t len)
{
    if (b >= tf->cfg.n_bases || len == 0 || len > UINT32_MAX) return NOT_FOUND;
    return lookup_hashed(tf, b, XXH64(bytes, len, b), bytes, (uint32_t)len);
}

/* ---- transform ------------------------------------------------------------------------------------------ */

xmc_err xmc_tfidf_ws_new(const xmc_tfidf *tf, xmc_tfidf_ws **out, xmc_error *err)
{
    xmc_tfidf_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf workspace: out of memory");
    xmc_err rc = xmc_tok_ws_init(&ws->tok, &tf->cfg.tok, err);
    if (rc) { free(ws); return rc; }
    ws->tf = tf;
    ws->spans = malloc((size_t)tf->spans_cap * sizeof *ws->spans);
    ws->hits = malloc((size_t)tf->hits_cap * sizeof *ws->hits);
    ws->tmp = malloc((size_t)tf->hits_cap * sizeof *ws->tmp);
    ws->idx = malloc(((size_t)tf->max_nnz + 1) * sizeof *ws->idx);
    ws->val = malloc(((size_t)tf->max_nnz + 1) * sizeof *ws->val);
    if (!ws->spans || !ws->hits || !ws->tmp || !ws->idx || !ws->val) {
        xmc_tfidf_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf workspace: out of memory");
    }
    *out = ws;
    return XMC_OK;
}

void xmc_tfidf_ws_free(xmc_tfidf_ws *ws)
{
    if (!ws) return;
    xmc_tok_ws_free(&ws->tok);
    free(ws->spans);
    free(ws->hits);
    free(ws->tmp);
    free(ws->idx);
    free(ws->val);
    free(ws);
}

/* Sorts a[0..n) ascending; tmp has room for n. Insertion sort for short runs, else an LSD radix sort on 11-bit
 * digits (three passes cover 33 bits; a pass whose digit is the same for every key is skipped), which beats a
 * comparison sort on the few hundred to tens of thousands of ids one document yields. */
static void sort_ids(uint32_t *a, uint32_t *tmp, uint32_t n)
{
    if (n <= 48) {
        for (uint32_t i = 1; i < n; i++) {
            uint32_t v = a[i], j = i;
            while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
            a[j] = v;
        }
        return;
    }
    uint32_t count[3][2048];
    memset(count, 0, sizeof count);
    for (uint32_t i = 0; i < n; i++) {
        count[0][a[i] & 2047]++;
        count[1][(a[i] >> 11) & 2047]++;
        count[2][a[i] >> 22]++;
    }
    uint32_t *src = a, *dst = tmp;
    for (int pass = 0; pass < 3; pass++) {
        uint32_t shift = 11u * (uint32_t)pass, *c = count[pass];
        if (c[(src[0] >> shift) & 2047] == n) continue;
        uint32_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            uint32_t k = c[d];
            c[d] = sum;
            sum += k;
        }
        for (uint32_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & 2047]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

static void l2_normalize(float *val, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++) s += (double)val[i] * val[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (uint32_t i = 0; i < n; i++) val[i] *= inv;
}

/* Transforms one document into ws->idx / ws->val; returns nnz. */
static uint32_t transform_ws(const xmc_tfidf *tf, xmc_tfidf_ws *ws, const char *text, size_t len)
{
    const xmc_tfidf_config *cfg = &tf->cfg;
    xmc_tok_words(&ws->tok, text, len);
    uint32_t nh = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        uint32_t k = gen_spans(&cfg->base[b], &ws->tok, ws->spans, tf->spans_cap);
        for (uint32_t i = 0; i < k && nh < tf->hits_cap; i++) {
            const char *p = ws->tok.text + ws->spans[i].off;
            uint32_t id = lookup_hashed(tf, b, XXH64(p, ws->spans[i].len, b), p, ws->spans[i].len);
            if (id != NOT_FOUND) ws->hits[nh++] = id;
        }
    }
    sort_ids(ws->hits, ws->tmp, nh);
    uint32_t nnz = 0;
    for (uint32_t i = 0; i < nh; i++) {
        if (nnz && ws->idx[nnz - 1] == ws->hits[i]) { ws->val[nnz - 1] += 1.0f; continue; }
        if (nnz == tf->max_nnz) break; /* cannot happen: max_nnz bounds the distinct ids */
        ws->idx[nnz] = ws->hits[i];
        ws->val[nnz++] = 1.0f;
    }
    /* ids are sorted, so each base's entries are one run; entries weighted to 0 (an idf of 0: the pecos
     * formula gives it to n-grams in nearly every document) are dropped rather than stored */
    uint32_t start = 0, w = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        const xmc_tfidf_base *base = &cfg->base[b];
        uint32_t wstart = w;
        while (start < nnz && ws->idx[start] < tf->base_off[b + 1]) {
            float t = ws->val[start];
            if (base->sublinear_tf) t = 1.0f + logf(t);
            t *= tf->idf[ws->idx[start]];
            if (t != 0.0f) {
                ws->idx[w] = ws->idx[start];
                ws->val[w++] = t;
            }
            start++;
        }
        if (base->norm == XMC_TFIDF_NORM_L2) l2_normalize(ws->val + wstart, w - wstart);
    }
    nnz = w;
    if (cfg->norm == XMC_TFIDF_NORM_L2) l2_normalize(ws->val, nnz);
    return nnz;
}

uint32_t xmc_tfidf_transform(const xmc_tfidf *tf, xmc_tfidf_ws *ws, const char *text, size_t len, uint32_t *idx,
                             float *val, uint32_t cap)
{
    if (ws->tf != tf) return 0;
    uint32_t nnz = transform_ws(tf, ws, text, len);
    if (nnz > cap) nnz = cap;
    memcpy(idx, ws->idx, (size_t)nnz * sizeof *idx);
    memcpy(val, ws->val, (size_t)nnz * sizeof *val);
    return nnz;
}

typedef struct tr_thread {
    const xmc_tfidf *tf;
    const char *const *texts;
    const size_t *lens;
    size_t lo, hi;
    uint64_t *row_nnz; /* shared, one slot per document */
    uint32_t *idx;
    float *val;
    size_t n, cap;
    xmc_err rc;
    pthread_t tid;
} tr_thread;

static void *transform_range(void *arg)
{
    tr_thread *th = arg;
    xmc_tfidf_ws *ws;
    xmc_error err;
    if ((th->rc = xmc_tfidf_ws_new(th->tf, &ws, &err))) return NULL;
    for (size_t d = th->lo; d < th->hi; d++) {
        uint32_t k = transform_ws(th->tf, ws, th->texts[d], th->lens[d]);
        if (th->n + k > th->cap) {
            size_t cap = th->cap ? th->cap * 2 : 4096;
            while (cap < th->n + k) cap *= 2;
            uint32_t *i2 = realloc(th->idx, cap * sizeof *i2);
            if (i2) th->idx = i2;
            float *v2 = realloc(th->val, cap * sizeof *v2);
            if (v2) th->val = v2;
            if (!i2 || !v2) { th->rc = XMC_ERR_NOMEM; break; }
            th->cap = cap;
        }
        memcpy(th->idx + th->n, ws->idx, (size_t)k * sizeof *ws->idx);
        memcpy(th->val + th->n, ws->val, (size_t)k * sizeof *ws->val);
        th->n += k;
        th->row_nnz[d] = k;
    }
    xmc_tfidf_ws_free(ws);
    return NULL;
}

xmc_err xmc_tfidf_transform_batch(const xmc_tfidf *tf, const char *const *texts, const size_t *lens, size_t n,
                                  int threads, xmc_csr *out, xmc_error *err)
{
    if (n > UINT32_MAX) return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %zu documents, at most 2^32-1", n);
    int nt = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    if ((size_t)nt > n) nt = n ? (int)n : 1;
    tr_thread *th = calloc((size_t)nt, sizeof *th);
    uint64_t *row_nnz = calloc(n + 1, sizeof *row_nnz);
    xmc_err rc = XMC_OK;
    if (!th || !row_nnz) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory"); goto out; }
    int started = 1;
    for (int t = 0; t < nt; t++)
        th[t] = (tr_thread){.tf = tf, .texts = texts, .lens = lens, .lo = n * (size_t)t / (size_t)nt,
                            .hi = n * (size_t)(t + 1) / (size_t)nt, .row_nnz = row_nnz};
    for (int t = 1; t < nt; t++, started++)
        if (pthread_create(&th[t].tid, NULL, transform_range, &th[t]) != 0) { th[t].rc = XMC_ERR_IO; break; }
    transform_range(&th[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t].tid, NULL);
    uint64_t total = 0;
    for (int t = 0; t < nt; t++) {
        if (th[t].rc) {
            rc = xmc_error_set(err, th[t].rc, th[t].rc == XMC_ERR_IO ? "tfidf: cannot start a thread"
                                                                      : "tfidf: out of memory transforming");
            goto out;
        }
        total += th[t].n;
    }
    xmc_csr m;
    if ((rc = xmc_csr_alloc(&m, (uint32_t)n, tf->dim, total, err))) goto out;
    for (size_t d = 0; d < n; d++) m.indptr[d + 1] = m.indptr[d] + row_nnz[d];
    uint64_t pos = 0;
    for (int t = 0; t < nt; t++) {
        memcpy(m.indices + pos, th[t].idx, th[t].n * sizeof *m.indices);
        memcpy(m.data + pos, th[t].val, th[t].n * sizeof *m.data);
        pos += th[t].n;
    }
    *out = m;
out:
    if (th)
        for (int t = 0; t < nt; t++) {
            free(th[t].idx);
            free(th[t].val);
        }
    free(th);
    free(row_nnz);
    return rc;
}

/* ---- persistence ---------------------------------------------------------------------------------------- */

static xmc_err key_name(char *buf, size_t size, const char *prefix, const char *what, xmc_error *err)
{
    if ((size_t)snprintf(buf, size, "%s.%s", prefix, what) >= size)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: prefix '%s' too long", prefix);
    return XMC_OK;
}

xmc_err xmc_tfidf_save(const xmc_tfidf *tf, xmc_model_writer *w, const char *prefix, xmc_error *err)
{
    char key[256], what[64], spec[4096];
    xmc_err rc;
    uint64_t shape[2];
    if (xmc_tfidf_config_format(&tf->cfg, spec, sizeof spec) >= sizeof spec)
        return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: configuration string too long");
    shape[0] = tf->vocab_len;
    if ((rc = key_name(key, sizeof key, prefix, "vocab", err)) ||
        (rc = xmc_writer_array(w, key, XMC_DT_U8, 1, shape, tf->vocab, err)))
        return rc;
    shape[0] = (uint64_t)tf->dim + 1;
    if ((rc = key_name(key, sizeof key, prefix, "offsets", err)) ||
        (rc = xmc_writer_array(w, key, XMC_DT_U32, 1, shape, tf->offsets, err)))
        return rc;
    shape[0] = tf->dim;
    if ((rc = key_name(key, sizeof key, prefix, "idf", err)) ||
        (rc = xmc_writer_array(w, key, XMC_DT_F32, 1, shape, tf->idf, err)))
        return rc;
    shape[0] = tf->table_cap;
    shape[1] = 2;
    if ((rc = key_name(key, sizeof key, prefix, "table", err)) ||
        (rc = xmc_writer_array(w, key, XMC_DT_U32, 2, shape, tf->table, err)))
        return rc;
    if ((rc = key_name(key, sizeof key, prefix, "format", err)) || (rc = xmc_writer_set_int(w, key, FORMAT_VERSION, err)) ||
        (rc = key_name(key, sizeof key, prefix, "config", err)) || (rc = xmc_writer_set_string(w, key, spec, err)) ||
        (rc = key_name(key, sizeof key, prefix, "dim", err)) || (rc = xmc_writer_set_int(w, key, tf->dim, err)) ||
        (rc = key_name(key, sizeof key, prefix, "n_docs", err)) ||
        (rc = xmc_writer_set_int(w, key, (long long)tf->n_docs, err)) ||
        (rc = key_name(key, sizeof key, prefix, "n_bases", err)) ||
        (rc = xmc_writer_set_int(w, key, tf->cfg.n_bases, err)))
        return rc;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        snprintf(what, sizeof what, "base%u.offset", b);
        if ((rc = key_name(key, sizeof key, prefix, what, err)) ||
            (rc = xmc_writer_set_int(w, key, tf->base_off[b], err)))
            return rc;
        snprintf(what, sizeof what, "base%u.dim", b);
        if ((rc = key_name(key, sizeof key, prefix, what, err)) ||
            (rc = xmc_writer_set_int(w, key, tf->base_off[b + 1] - tf->base_off[b], err)))
            return rc;
    }
    return XMC_OK;
}

static xmc_err get_int(const xmc_bundle *bd, const char *prefix, const char *what, long long *v, xmc_error *err)
{
    char key[256];
    xmc_err rc = key_name(key, sizeof key, prefix, what, err);
    return rc ? rc : xmc_bundle_get_int(bd, key, v, err);
}

static xmc_err get_array(const xmc_bundle *bd, const char *prefix, const char *what, xmc_dtype dt, int ndim,
                         uint64_t *shape, const void **data, xmc_error *err)
{
    char key[256];
    xmc_err rc = key_name(key, sizeof key, prefix, what, err);
    return rc ? rc : xmc_bundle_array(bd, key, dt, ndim, shape, data, err);
}

xmc_err xmc_tfidf_load(const xmc_bundle *bd, const char *prefix, xmc_tfidf **out, xmc_error *err)
{
    xmc_tfidf *tf = calloc(1, sizeof *tf);
    if (!tf) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    char key[256];
    const char *spec;
    long long v, dim, n_bases;
    uint64_t shape[2];
    const void *data;
    xmc_err rc;
    if ((rc = get_int(bd, prefix, "format", &v, err))) goto fail;
    if (v != FORMAT_VERSION) {
        rc = xmc_error_set(err, XMC_ERR_VERSION, "tfidf '%s': format %lld, this library reads %d", prefix, v,
                           FORMAT_VERSION);
        goto fail;
    }
    if ((rc = key_name(key, sizeof key, prefix, "config", err)) || (rc = xmc_bundle_get_string(bd, key, &spec, err)))
        goto fail;
    if ((rc = xmc_tfidf_config_parse(&tf->cfg, spec, err))) { xmc_error_prefix(err, "tfidf '%s': ", prefix); goto fail; }
    if ((rc = get_int(bd, prefix, "dim", &dim, err)) || (rc = get_int(bd, prefix, "n_bases", &n_bases, err)) ||
        (rc = get_int(bd, prefix, "n_docs", &v, err)))
        goto fail;
    tf->n_docs = v > 0 ? (uint64_t)v : 0;
    if (dim < 1 || dim >= UINT32_MAX / 4 || n_bases != tf->cfg.n_bases) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': dim %lld or n_bases %lld disagree with the config",
                           prefix, dim, n_bases);
        goto fail;
    }
    tf->dim = (uint32_t)dim;
    long long sum = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        char what[64];
        long long off, bdim;
        snprintf(what, sizeof what, "base%u.offset", b);
        if ((rc = get_int(bd, prefix, what, &off, err))) goto fail;
        snprintf(what, sizeof what, "base%u.dim", b);
        if ((rc = get_int(bd, prefix, what, &bdim, err))) goto fail;
        if (off != sum || bdim < 0 || bdim > dim - sum) {
            rc = xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': base %u range %lld+%lld does not follow on", prefix,
                               b, off, bdim);
            goto fail;
        }
        tf->base_off[b] = (uint32_t)off;
        sum += bdim;
    }
    if (sum != dim) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': base dims sum to %lld, not %lld", prefix, sum, dim);
        goto fail;
    }
    tf->base_off[tf->cfg.n_bases] = (uint32_t)dim;
    if ((rc = get_array(bd, prefix, "vocab", XMC_DT_U8, 1, shape, &data, err))) goto fail;
    tf->vocab = data;
    tf->vocab_len = shape[0];
    if ((rc = get_array(bd, prefix, "offsets", XMC_DT_U32, 1, shape, &data, err))) goto fail;
    tf->offsets = data;
    if (shape[0] != (uint64_t)dim + 1 || tf->offsets[0] != 0 || tf->offsets[dim] != tf->vocab_len) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': offsets [%llu] do not span the vocabulary (%llu bytes, "
                           "%lld features)", prefix, (unsigned long long)shape[0], (unsigned long long)tf->vocab_len, dim);
        goto fail;
    }
    if ((rc = get_array(bd, prefix, "idf", XMC_DT_F32, 1, shape, &data, err))) goto fail;
    tf->idf = data;
    if (shape[0] != (uint64_t)dim) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': idf has %llu entries, not %lld", prefix,
                           (unsigned long long)shape[0], dim);
        goto fail;
    }
    if ((rc = get_array(bd, prefix, "table", XMC_DT_U32, 2, shape, &data, err))) goto fail;
    tf->table = data;
    if (shape[1] != 2 || shape[0] <= (uint64_t)dim || shape[0] > UINT32_MAX || (shape[0] & (shape[0] - 1))) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': table [%llu, %llu] is not [power of two > dim, 2]",
                           prefix, (unsigned long long)shape[0], (unsigned long long)shape[1]);
        goto fail;
    }
    tf->table_cap = (uint32_t)shape[0];
    if ((rc = set_bounds(tf, err))) goto fail;
    *out = tf;
    return XMC_OK;
fail:
    free(tf);
    return rc;
}
