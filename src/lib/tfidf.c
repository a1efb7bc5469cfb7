/* tfidf.c: the TF-IDF vectoriser: fitting, transforming documents, persistence (see tfidf.h).
 *
 * Fitting counts document frequencies (docfreq.h) and turns the survivors of the filters into the vocabulary
 * (tfidf_vocab.h). Transforming: tokenise, hash every n-gram of every base and look it up; the ids found are
 * sorted and run-length counted into (id, tf); then tf weighting, idf, per-base and whole-row L2. All scratch
 * lives in the workspace, sized from the tokenizer limits, so a document costs no allocation. A batch is cut
 * into one contiguous range of documents per slot; the workers of the pool (parallel.h) take slots from an
 * atomic counter and the slots' rows are concatenated in order, so the matrix does not depend on which thread
 * did what. */
#include "tfidf.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "docfreq.h"
#include "ngram.h"
#include "parallel.h"
#include "tfidf_vocab.h"

#define FORMAT_VERSION 1

struct xmci_tfidf {
    xmci_tfidf_config cfg;
    uint64_t n_docs;         /* N of the idf */
    xmci_tfidf_vocab voc;
    uint32_t spans_cap;      /* n-grams one base can yield from one document */
    uint32_t hits_cap;       /* n-grams all bases can yield */
    uint32_t max_nnz;
};

struct xmci_tfidf_ws {
    const xmci_tfidf *tf;
    xmci_tok_ws tok;
    xmci_tok_span *spans;
    uint32_t *hits;
    uint32_t *tmp; /* radix sort buffer, as long as hits */
    uint32_t *idx;
    float *val;
};

/* ---- fitting -------------------------------------------------------------------------------------------- */

/* Sets the bounds derived from the config and dims (shared by fit and load). */
static xmc_err set_bounds(xmci_tfidf *tf, xmc_error *err)
{
    uint64_t spans = 0, hits = 0, nnz = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        uint64_t bound = xmci_ngram_bound(&tf->cfg, b), dim = tf->voc.base_off[b + 1] - tf->voc.base_off[b];
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

xmc_err xmci_tfidf_fit(const xmci_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                      int threads, xmci_tfidf **out, xmc_error *err)
{
    xmc_err rc = xmci_tfidf_config_check(cfg, err);
    if (rc) return rc;
    if (n == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "tfidf: no documents to fit");
    if (n >= UINT32_MAX) return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %zu documents, at most 2^32-2", n);
    xmci_tfidf *tf = calloc(1, sizeof *tf);
    if (!tf) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    tf->cfg = *cfg;
    tf->n_docs = n;
    xmci_docfreq *dfq = NULL;
    if ((rc = xmci_docfreq_count(cfg, texts, lens, n, threads, &dfq, err)) ||
        (rc = xmci_tfidf_vocab_build(&tf->voc, cfg, dfq, n, err)) || (rc = set_bounds(tf, err))) {
        xmci_docfreq_free(dfq);
        xmci_tfidf_free(tf);
        return rc;
    }
    xmci_docfreq_free(dfq);
    *out = tf;
    return XMC_OK;
}

/* ---- accessors ------------------------------------------------------------------------------------------ */

uint32_t xmci_tfidf_dim(const xmci_tfidf *tf) { return tf->voc.dim; }
uint32_t xmci_tfidf_max_nnz(const xmci_tfidf *tf) { return tf->max_nnz; }
const xmci_tfidf_config *xmci_tfidf_config_of(const xmci_tfidf *tf) { return &tf->cfg; }

void xmci_tfidf_base_range(const xmci_tfidf *tf, uint32_t b, uint32_t *first, uint32_t *count)
{
    if (b >= tf->cfg.n_bases) { *first = tf->voc.dim; *count = 0; return; }
    *first = tf->voc.base_off[b];
    *count = tf->voc.base_off[b + 1] - tf->voc.base_off[b];
}

float xmci_tfidf_idf_of(const xmci_tfidf *tf, uint32_t id) { return id < tf->voc.dim ? tf->voc.idf[id] : 0.0f; }

const char *xmci_tfidf_feature_name(const xmci_tfidf *tf, uint32_t id, size_t *len)
{
    return xmci_tfidf_vocab_name(&tf->voc, id, len);
}

void xmci_tfidf_free(xmci_tfidf *tf)
{
    if (!tf) return;
    xmci_tfidf_vocab_free(&tf->voc);
    free(tf);
}

uint32_t xmci_tfidf_lookup(const xmci_tfidf *tf, uint32_t b, const char *bytes, size_t len)
{
    if (b >= tf->cfg.n_bases || len == 0 || len > UINT32_MAX) return XMCI_TFIDF_NOT_FOUND;
    return xmci_tfidf_vocab_find(&tf->voc, b, XXH64(bytes, len, b), bytes, (uint32_t)len);
}

/* ---- transform ------------------------------------------------------------------------------------------ */

xmc_err xmci_tfidf_ws_new(const xmci_tfidf *tf, xmci_tfidf_ws **out, xmc_error *err)
{
    xmci_tfidf_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf workspace: out of memory");
    xmc_err rc = xmci_tok_ws_init(&ws->tok, &tf->cfg.tok, err);
    if (rc) { free(ws); return rc; }
    ws->tf = tf;
    ws->spans = malloc((size_t)tf->spans_cap * sizeof *ws->spans);
    ws->hits = malloc((size_t)tf->hits_cap * sizeof *ws->hits);
    ws->tmp = malloc((size_t)tf->hits_cap * sizeof *ws->tmp);
    ws->idx = malloc(((size_t)tf->max_nnz + 1) * sizeof *ws->idx);
    ws->val = malloc(((size_t)tf->max_nnz + 1) * sizeof *ws->val);
    if (!ws->spans || !ws->hits || !ws->tmp || !ws->idx || !ws->val) {
        xmci_tfidf_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf workspace: out of memory");
    }
    *out = ws;
    return XMC_OK;
}

void xmci_tfidf_ws_free(xmci_tfidf_ws *ws)
{
    if (!ws) return;
    xmci_tok_ws_free(&ws->tok);
    free(ws->spans);
    free(ws->hits);
    free(ws->tmp);
    free(ws->idx);
    free(ws->val);
    free(ws);
}

/* a[0..n) ascending by an LSD radix sort on 8-bit digits, as many as the largest key needs (a pass whose digit
 * is the same for every key is skipped); tmp has room for n. Its counters (4 x 256) cost less to clear and sum
 * than the 11-bit sort's 3 x 2048 for the hundred-odd ids of a short document. */
static void sort_ids_small(uint32_t *a, uint32_t *tmp, uint32_t n)
{
    uint32_t count[4][256], top = 0;
    memset(count, 0, sizeof count);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = a[i];
        top |= v;
        count[0][v & 255]++;
        count[1][(v >> 8) & 255]++;
        count[2][(v >> 16) & 255]++;
        count[3][v >> 24]++;
    }
    uint32_t *src = a, *dst = tmp;
    for (uint32_t pass = 0, shift = 0; pass < 4 && (top >> shift) != 0; pass++, shift += 8) {
        uint32_t *c = count[pass];
        if (c[(src[0] >> shift) & 255] == n) continue;
        uint32_t sum = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t k = c[d];
            c[d] = sum;
            sum += k;
        }
        for (uint32_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & 255]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

/* Sorts a[0..n) ascending; tmp has room for n. Insertion sort for short runs, the 8-bit radix sort above up to
 * a few thousand, else an LSD radix sort on 11-bit digits (three passes cover 33 bits; a pass whose digit is
 * the same for every key is skipped), which beats a comparison sort on the tens of thousands of ids a long
 * document yields. */
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
    if (n <= 4096) {
        sort_ids_small(a, tmp, n);
#ifndef NDEBUG
        for (uint32_t i = 1; i < n; i++) assert(a[i - 1] <= a[i]);
#endif
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
#ifndef NDEBUG
    for (uint32_t i = 1; i < n; i++) assert(a[i - 1] <= a[i]);
#endif
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
static uint32_t transform_ws(const xmci_tfidf *tf, xmci_tfidf_ws *ws, const char *text, size_t len)
{
    const xmci_tfidf_config *cfg = &tf->cfg;
    xmci_tok_words(&ws->tok, text, len);
    uint32_t nh = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        uint32_t k = xmci_ngram_spans(&cfg->base[b], &ws->tok, ws->spans, tf->spans_cap);
        for (uint32_t i = 0; i < k && nh < tf->hits_cap; i++) {
            const char *p = ws->tok.text + ws->spans[i].off;
            uint32_t id = xmci_tfidf_vocab_find(&tf->voc, b, XXH64(p, ws->spans[i].len, b), p, ws->spans[i].len);
            if (id != XMCI_TFIDF_NOT_FOUND) ws->hits[nh++] = id;
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
        const xmci_tfidf_base *base = &cfg->base[b];
        uint32_t wstart = w;
        while (start < nnz && ws->idx[start] < tf->voc.base_off[b + 1]) {
            assert(ws->idx[start] >= tf->voc.base_off[b]);
            float t = ws->val[start];
            if (base->sublinear_tf) t = 1.0f + logf(t);
            t *= tf->voc.idf[ws->idx[start]];
            if (t != 0.0f) {
                ws->idx[w] = ws->idx[start];
                ws->val[w++] = t;
            }
            start++;
        }
        if (base->norm == XMCI_TFIDF_NORM_L2) l2_normalize(ws->val + wstart, w - wstart);
        if (base->weight != 1.0)
            for (uint32_t i = wstart; i < w; i++) ws->val[i] *= (float)base->weight;
    }
    assert(start == nnz); /* every id found lies in some base's range */
    nnz = w;
    if (cfg->norm == XMCI_TFIDF_NORM_L2) l2_normalize(ws->val, nnz);
    return nnz;
}

uint32_t xmci_tfidf_transform(const xmci_tfidf *tf, xmci_tfidf_ws *ws, const char *text, size_t len, uint32_t *idx,
                             float *val, uint32_t cap)
{
    if (ws->tf != tf) return 0;
    uint32_t nnz = transform_ws(tf, ws, text, len);
    if (nnz > cap) nnz = cap;
    memcpy(idx, ws->idx, (size_t)nnz * sizeof *idx);
    memcpy(val, ws->val, (size_t)nnz * sizeof *val);
    return nnz;
}

/* One slot of a batch: its documents' rows, concatenated. */
typedef struct tr_slot {
    uint32_t *idx;
    float *val;
    size_t n, cap;
} tr_slot;

typedef struct tr_job {
    const xmci_tfidf *tf;
    const char *const *texts;
    const size_t *lens;
    size_t n_docs;
    uint32_t n_slots;
    tr_slot *slots;
    uint64_t *row_nnz; /* one per document */
    atomic_uint next;  /* the next slot to take */
    atomic_int failed; /* out of memory somewhere: the others stop */
} tr_job;

/* Transforms the documents of slot s. 0, or -1 when out of memory. */
static int transform_slot(tr_job *job, uint32_t s, xmci_tfidf_ws *ws)
{
    tr_slot *sl = &job->slots[s];
    size_t lo = job->n_docs * s / job->n_slots, hi = job->n_docs * (s + 1) / job->n_slots;
    for (size_t d = lo; d < hi; d++) {
        if (atomic_load(&job->failed)) return 0;
        uint32_t k = transform_ws(job->tf, ws, job->texts[d], job->lens[d]);
        if (sl->n + k > sl->cap) {
            size_t cap = sl->cap ? sl->cap * 2 : 4096;
            while (cap < sl->n + k) cap *= 2;
            uint32_t *i2 = realloc(sl->idx, cap * sizeof *i2);
            if (i2) sl->idx = i2;
            float *v2 = realloc(sl->val, cap * sizeof *v2);
            if (v2) sl->val = v2;
            if (!i2 || !v2) return -1;
            sl->cap = cap;
        }
        if (k) { /* a text with no kept feature leaves the slice unallocated: memcpy's NULL is UB even for 0 bytes */
            memcpy(sl->idx + sl->n, ws->idx, (size_t)k * sizeof *ws->idx);
            memcpy(sl->val + sl->n, ws->val, (size_t)k * sizeof *ws->val);
            sl->n += k;
        }
        job->row_nnz[d] = k;
    }
    return 0;
}

static void *transform_worker(void *arg)
{
    tr_job *job = arg;
    xmci_tfidf_ws *ws;
    xmc_error err;
    if (xmci_tfidf_ws_new(job->tf, &ws, &err)) {
        atomic_store(&job->failed, 1);
        return NULL;
    }
    for (uint32_t s; !atomic_load(&job->failed) && (s = atomic_fetch_add(&job->next, 1)) < job->n_slots;)
        if (transform_slot(job, s, ws)) atomic_store(&job->failed, 1);
    xmci_tfidf_ws_free(ws);
    return NULL;
}

/* The slots' rows as one CSR matrix. */
static xmc_err gather_rows(const tr_job *job, xmci_csr *out, xmc_error *err)
{
    uint64_t total = 0;
    for (uint32_t s = 0; s < job->n_slots; s++) total += job->slots[s].n;
    xmci_csr m;
    xmc_err rc = xmci_csr_alloc(&m, (uint32_t)job->n_docs, job->tf->voc.dim, total, err);
    if (rc) return rc;
    for (size_t d = 0; d < job->n_docs; d++) m.indptr[d + 1] = m.indptr[d] + job->row_nnz[d];
    assert(m.indptr[job->n_docs] == total);
    uint64_t pos = 0;
    for (uint32_t s = 0; s < job->n_slots; s++) {
        if (!job->slots[s].n) continue; /* an empty slice may be unallocated (NULL) */
        memcpy(m.indices + pos, job->slots[s].idx, job->slots[s].n * sizeof *m.indices);
        memcpy(m.data + pos, job->slots[s].val, job->slots[s].n * sizeof *m.data);
        pos += job->slots[s].n;
    }
    *out = m;
    return XMC_OK;
}

xmc_err xmci_tfidf_transform_batch(const xmci_tfidf *tf, const char *const *texts, const size_t *lens, size_t n,
                                  int threads, xmci_csr *out, xmc_error *err)
{
    if (n > UINT32_MAX) return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %zu documents, at most 2^32-1", n);
    int nt = threads < 1 ? 1 : threads > XMC_MAX_THREADS ? XMC_MAX_THREADS : threads;
    if ((size_t)nt > n) nt = n ? (int)n : 1;
    tr_job job = {.tf = tf, .texts = texts, .lens = lens, .n_docs = n, .n_slots = (uint32_t)nt};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    job.slots = calloc((size_t)nt, sizeof *job.slots);
    job.row_nnz = calloc(n + 1, sizeof *job.row_nnz);
    xmc_err rc = XMC_OK;
    if (!job.slots || !job.row_nnz) rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    if (!rc) xmci_parallel_run(transform_worker, &job, nt);
    if (!rc && atomic_load(&job.failed)) rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory transforming");
    if (!rc) rc = gather_rows(&job, out, err);
    if (job.slots)
        for (int s = 0; s < nt; s++) {
            free(job.slots[s].idx);
            free(job.slots[s].val);
        }
    free(job.slots);
    free(job.row_nnz);
    return rc;
}

/* ---- persistence ---------------------------------------------------------------------------------------- */

xmc_err xmci_tfidf_save(const xmci_tfidf *tf, xmci_model_writer *w, const char *prefix, xmc_error *err)
{
    char key[256], what[64], spec[XMC_TFIDF_SPEC_MAX];
    xmc_err rc;
    if (xmci_tfidf_config_format(&tf->cfg, spec, sizeof spec) >= sizeof spec)
        return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: configuration string too long");
    if ((rc = xmci_tfidf_vocab_save(&tf->voc, w, prefix, err))) return rc;
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "format", err)) ||
        (rc = xmci_writer_set_int(w, key, FORMAT_VERSION, err)) ||
        (rc = xmci_tfidf_key(key, sizeof key, prefix, "config", err)) ||
        (rc = xmci_writer_set_string(w, key, spec, err)) ||
        (rc = xmci_tfidf_key(key, sizeof key, prefix, "dim", err)) ||
        (rc = xmci_writer_set_int(w, key, tf->voc.dim, err)) ||
        (rc = xmci_tfidf_key(key, sizeof key, prefix, "n_docs", err)) ||
        (rc = xmci_writer_set_int(w, key, (long long)tf->n_docs, err)) ||
        (rc = xmci_tfidf_key(key, sizeof key, prefix, "n_bases", err)) ||
        (rc = xmci_writer_set_int(w, key, tf->cfg.n_bases, err)))
        return rc;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        snprintf(what, sizeof what, "base%u.offset", b);
        if ((rc = xmci_tfidf_key(key, sizeof key, prefix, what, err)) ||
            (rc = xmci_writer_set_int(w, key, tf->voc.base_off[b], err)))
            return rc;
        snprintf(what, sizeof what, "base%u.dim", b);
        if ((rc = xmci_tfidf_key(key, sizeof key, prefix, what, err)) ||
            (rc = xmci_writer_set_int(w, key, tf->voc.base_off[b + 1] - tf->voc.base_off[b], err)))
            return rc;
    }
    return XMC_OK;
}

static xmc_err get_int(const xmci_bundle *bd, const char *prefix, const char *what, long long *v, xmc_error *err)
{
    char key[256];
    xmc_err rc = xmci_tfidf_key(key, sizeof key, prefix, what, err);
    return rc ? rc : xmci_bundle_get_int(bd, key, v, err);
}

/* Reads the format, the config and the dims from the manifest into tf (n_docs, cfg, voc.dim, voc.base_off). */
static xmc_err load_keys(xmci_tfidf *tf, const xmci_bundle *bd, const char *prefix, xmc_error *err)
{
    char key[256];
    const char *spec;
    long long v, dim, n_bases;
    xmc_err rc;
    if ((rc = get_int(bd, prefix, "format", &v, err))) return rc;
    if (v != FORMAT_VERSION)
        return xmc_error_set(err, XMC_ERR_VERSION, "tfidf '%s': format %lld, this library reads %d", prefix, v,
                             FORMAT_VERSION);
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "config", err)) ||
        (rc = xmci_bundle_get_string(bd, key, &spec, err)))
        return rc;
    if ((rc = xmci_tfidf_config_parse(&tf->cfg, spec, err))) {
        xmc_error_prefix(err, "tfidf '%s': ", prefix);
        return rc;
    }
    if ((rc = get_int(bd, prefix, "dim", &dim, err)) || (rc = get_int(bd, prefix, "n_bases", &n_bases, err)) ||
        (rc = get_int(bd, prefix, "n_docs", &v, err)))
        return rc;
    tf->n_docs = v > 0 ? (uint64_t)v : 0;
    if (dim < 1 || dim >= UINT32_MAX / 4 || n_bases != tf->cfg.n_bases)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': dim %lld or n_bases %lld disagree with the config",
                             prefix, dim, n_bases);
    tf->voc.dim = (uint32_t)dim;
    tf->voc.n_bases = tf->cfg.n_bases;
    long long sum = 0;
    for (uint32_t b = 0; b < tf->cfg.n_bases; b++) {
        char what[64];
        long long off, bdim;
        snprintf(what, sizeof what, "base%u.offset", b);
        if ((rc = get_int(bd, prefix, what, &off, err))) return rc;
        snprintf(what, sizeof what, "base%u.dim", b);
        if ((rc = get_int(bd, prefix, what, &bdim, err))) return rc;
        if (off != sum || bdim < 0 || bdim > dim - sum)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': base %u range %lld+%lld does not follow on",
                                 prefix, b, off, bdim);
        tf->voc.base_off[b] = (uint32_t)off;
        sum += bdim;
    }
    if (sum != dim)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "tfidf '%s': base dims sum to %lld, not %lld", prefix, sum, dim);
    tf->voc.base_off[tf->cfg.n_bases] = (uint32_t)dim;
    return XMC_OK;
}

xmc_err xmci_tfidf_load(const xmci_bundle *bd, const char *prefix, xmci_tfidf **out, xmc_error *err)
{
    xmci_tfidf *tf = calloc(1, sizeof *tf);
    if (!tf) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    xmc_err rc;
    if ((rc = load_keys(tf, bd, prefix, err)) || (rc = xmci_tfidf_vocab_load(&tf->voc, bd, prefix, err)) ||
        (rc = set_bounds(tf, err))) {
        free(tf);
        return rc;
    }
    *out = tf;
    return XMC_OK;
}
