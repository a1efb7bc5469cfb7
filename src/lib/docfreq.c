/* docfreq.c: document frequencies of the n-grams of a corpus, counted in parallel (see docfreq.h).
 *
 * The documents are cut into one contiguous range per slot (slots = threads). Each slot counts its range in its
 * own open-addressing tables, one per (base, hash partition), whose keys live in the table's own byte arena
 * (offsets, not pointers, so the arena can grow), with a "last document" field so that an n-gram counts once
 * per document. Then each partition of every slot's tables is merged into slot 0's (partitions are disjoint by
 * hash, so no locks). Workers of the pool (parallel.h) take slots, then partitions, from an atomic counter, so
 * a thread that could not be started changes nothing but the time taken. */
#include "docfreq.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ngram.h"
#include "parallel.h"

/* ---- one counting table --------------------------------------------------------------------------------- */

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
    int full; /* a count the table cannot hold (2^30 n-grams in 2^31 slots, 4 GiB of n-gram bytes): a range
               * error, not memory */
} cnt_table;

static int cnt_init(cnt_table *t, uint32_t cap)
{
    memset(t, 0, sizeof *t);
    t->e = calloc(cap, sizeof *t->e);
    t->mask = cap - 1;
    t->acap = 1 << 10; /* small: there are threads x bases x threads tables, most of them little used */
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
    if (cap > (1ull << 31)) {
        t->full = 1;
        return 0;
    }
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
                if (t->alen + len > UINT32_MAX) { /* offsets are 32-bit */
                    t->full = 1;
                    return NULL;
                }
                size_t cap = t->acap * 2;
                while (cap < t->alen + len) cap *= 2;
                if (cap > UINT32_MAX) cap = UINT32_MAX;
                char *a = realloc(t->arena, cap);
                if (!a) return NULL;
                t->arena = a;
                t->acap = cap;
            }
            assert(len > 0); /* len 0 marks an empty slot */
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
        if (e->hash == h && e->len == len && xmci_ngram_same(t->arena + e->off, p, len)) return e;
        s = (s + 1) & t->mask;
    }
}

struct xmci_docfreq {
    uint32_t n_bases, parts; /* parts = slots */
    cnt_table *tabs;         /* slot s, base b, partition p: tabs[(s * n_bases + b) * parts + p] */
};

static inline uint32_t part_of(uint64_t h, uint32_t parts) { return (uint32_t)((h >> 40) % parts); }

static cnt_table *table_of(const xmci_docfreq *dfq, uint32_t slot, uint32_t b, uint32_t part)
{
    return &dfq->tabs[((size_t)slot * dfq->n_bases + b) * dfq->parts + part];
}

void xmci_docfreq_free(xmci_docfreq *dfq)
{
    if (!dfq) return;
    if (dfq->tabs)
        for (size_t i = 0; i < (size_t)dfq->parts * dfq->n_bases * dfq->parts; i++) cnt_free(&dfq->tabs[i]);
    free(dfq->tabs);
    free(dfq);
}

/* ---- counting and merging ------------------------------------------------------------------------------- */

typedef struct count_job {
    const xmci_tfidf_config *cfg;
    const char *const *texts;
    const size_t *lens;
    size_t n;
    uint32_t spans_cap;
    xmci_docfreq *dfq;
    atomic_uint next;  /* the next slot (count) or partition (merge) to take */
    atomic_int failed; /* out of memory somewhere: the others stop */
} count_job;

/* Counts the documents of one slot into its tables. 0, or -1 when out of memory. */
static int count_slot(count_job *job, uint32_t slot, xmci_tok_ws *tok, xmci_tok_span *spans)
{
    const xmci_tfidf_config *cfg = job->cfg;
    uint32_t parts = job->dfq->parts;
    size_t lo = job->n * slot / parts, hi = job->n * (slot + 1) / parts;
    for (size_t d = lo; d < hi; d++) {
        if (atomic_load(&job->failed)) return 0;
        xmci_tok_words(tok, job->texts[d], job->lens[d]);
        for (uint32_t b = 0; b < cfg->n_bases; b++) {
            uint32_t k = xmci_ngram_spans(&cfg->base[b], tok, spans, job->spans_cap);
            for (uint32_t i = 0; i < k; i++) {
                const char *p = tok->text + spans[i].off;
                uint64_t h = XXH64(p, spans[i].len, b);
                cnt_entry *e = cnt_upsert(table_of(job->dfq, slot, b, part_of(h, parts)), h, p, spans[i].len);
                if (!e) return -1;
                if (e->last != (uint32_t)d) {
                    e->last = (uint32_t)d;
                    e->df++;
                }
            }
        }
    }
    return 0;
}

static void *count_worker(void *arg)
{
    count_job *job = arg;
    xmci_tok_ws tok;
    xmc_error err;
    xmci_tok_span *spans = malloc((size_t)job->spans_cap * sizeof *spans);
    if (!spans || xmci_tok_ws_init(&tok, &job->cfg->tok, &err)) {
        free(spans);
        atomic_store(&job->failed, 1);
        return NULL;
    }
    for (uint32_t slot; !atomic_load(&job->failed) && (slot = atomic_fetch_add(&job->next, 1)) < job->dfq->parts;)
        if (count_slot(job, slot, &tok, spans)) atomic_store(&job->failed, 1);
    xmci_tok_ws_free(&tok);
    free(spans);
    return NULL;
}

/* Merges partition `part` of every slot's tables into slot 0's. 0, or -1 when out of memory. */
static int merge_part(xmci_docfreq *dfq, uint32_t part)
{
    for (uint32_t b = 0; b < dfq->n_bases; b++) {
        cnt_table *dst = table_of(dfq, 0, b, part);
        for (uint32_t s = 1; s < dfq->parts; s++) {
            cnt_table *src = table_of(dfq, s, b, part);
            for (uint64_t i = 0; i <= src->mask; i++) {
                const cnt_entry *se = &src->e[i];
                if (!se->len) continue;
                assert(part_of(se->hash, dfq->parts) == part);
                cnt_entry *e = cnt_upsert(dst, se->hash, src->arena + se->off, se->len);
                if (!e) return -1;
                e->df += se->df;
            }
            cnt_free(src);
        }
    }
    return 0;
}

static void *merge_worker(void *arg)
{
    count_job *job = arg;
    for (uint32_t part; !atomic_load(&job->failed) && (part = atomic_fetch_add(&job->next, 1)) < job->dfq->parts;)
        if (merge_part(job->dfq, part)) atomic_store(&job->failed, 1);
    return NULL;
}

xmc_err xmci_docfreq_count(const xmci_tfidf_config *cfg, const char *const *texts, const size_t *lens, size_t n,
                          int threads, xmci_docfreq **out, xmc_error *err)
{
    uint64_t spans_cap = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++)
        if (xmci_ngram_bound(cfg, b) > spans_cap) spans_cap = xmci_ngram_bound(cfg, b);
    if (spans_cap > UINT32_MAX / 2) return xmc_error_set(err, XMC_ERR_ARG, "tfidf: document limits too large");
    int nt = threads < 1 ? 1 : threads > XMC_MAX_THREADS ? XMC_MAX_THREADS : threads;
    if ((size_t)nt > n) nt = (int)n;
    xmci_docfreq *dfq = calloc(1, sizeof *dfq);
    if (!dfq) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    dfq->n_bases = cfg->n_bases;
    dfq->parts = (uint32_t)nt;
    size_t n_tabs = (size_t)nt * cfg->n_bases * (size_t)nt;
    dfq->tabs = calloc(n_tabs, sizeof *dfq->tabs);
    int ok = dfq->tabs != NULL;
    for (size_t i = 0; ok && i < n_tabs; i++) ok = cnt_init(&dfq->tabs[i], 1 << 6);
    count_job job = {.cfg = cfg, .texts = texts, .lens = lens, .n = n, .spans_cap = (uint32_t)spans_cap, .dfq = dfq};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    if (ok) {
        xmci_parallel_run(count_worker, &job, nt);
        atomic_store(&job.next, 0);
        if (!atomic_load(&job.failed)) xmci_parallel_run(merge_worker, &job, nt);
        ok = !atomic_load(&job.failed);
    }
    if (!ok) {
        int full = 0;
        for (size_t i = 0; dfq->tabs && i < n_tabs; i++) full |= dfq->tabs[i].full;
        xmci_docfreq_free(dfq);
        if (full)
            return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: more distinct n-grams than a count table holds (2^30 of "
                                 "them or 4 GiB of their bytes): fewer or shorter n-grams, or more threads");
        return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory counting n-grams");
    }
    *out = dfq;
    return XMC_OK;
}

/* ---- reading the counts --------------------------------------------------------------------------------- */

size_t xmci_docfreq_distinct(const xmci_docfreq *dfq, uint32_t b)
{
    size_t total = 0;
    for (uint32_t p = 0; p < dfq->parts; p++) total += table_of(dfq, 0, b, p)->n;
    return total;
}

size_t xmci_docfreq_filter(const xmci_docfreq *dfq, uint32_t b, uint32_t min_df, double max_df,
                          xmci_docfreq_entry *out)
{
    size_t k = 0;
    for (uint32_t p = 0; p < dfq->parts; p++) {
        const cnt_table *t = table_of(dfq, 0, b, p);
        for (uint64_t i = 0; i <= t->mask; i++) {
            const cnt_entry *e = &t->e[i];
            if (!e->len || e->df < min_df || (double)e->df > max_df) continue;
            out[k++] = (xmci_docfreq_entry){e->hash, t->arena + e->off, e->len, e->df};
        }
    }
    return k;
}
