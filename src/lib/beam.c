/* beam.c: beam search (see beam.h). */
#include "beam.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct xmci_beam_ws {
    uint32_t max_k, max_children;
    float *acc;                 /* max_children */
    xmc_hit *cur, *next;        /* max_k each: kept nodes (label field = node id) */
    uint64_t *key;              /* max_k: the order keys of the list being made (push_top) */
    uint64_t skipped;           /* kept nodes whose children were not scored (parent_bounds) */
};

static const char *const post_names[XMC_POST__COUNT] = {
    [XMC_POST_L3_HINGE] = "l3-hinge", [XMC_POST_SIGMOID] = "sigmoid", [XMC_POST_NOOP] = "noop",
    [XMC_POST_L1_HINGE] = "l1-hinge", [XMC_POST_L2_HINGE] = "l2-hinge", [XMC_POST_LOG_SIGMOID] = "log-sigmoid",
};

int xmc_post_from_name(const char *name)
{
    for (int i = 0; i < XMC_POST__COUNT; i++)
        if (name && strcmp(name, post_names[i]) == 0) return i;
    return -1;
}

const char *xmc_post_name(xmc_post post)
{
    return (unsigned)post < XMC_POST__COUNT ? post_names[post] : "unknown";
}

static inline float post_transform(int post, float v)
{
    float h = 1.0f - v;
    if (h < 0) h = 0;
    switch (post) {
    case XMC_POST_L3_HINGE: return expf(-(h * h * h));
    case XMC_POST_L2_HINGE: return expf(-(h * h));
    case XMC_POST_L1_HINGE: return expf(-h);
    case XMC_POST_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case XMC_POST_LOG_SIGMOID: return -log1pf(expf(-v));
    default: return v;
    }
}

static inline float post_combine(int post, float child, float parent)
{
    switch (post) {
    case XMC_POST_NOOP: return child;
    case XMC_POST_LOG_SIGMOID: return child + parent;
    default: return child * parent;
    }
}

float xmci_post_transform(int post, float v) { return post_transform(post, v); }
float xmci_post_combine(int post, float child, float parent) { return post_combine(post, child, parent); }

/* Skipping the transform of a child that cannot be kept. The hinges and the sigmoid are non-decreasing in
 * the raw score and combine by a product with the parent's score (>= 0), so once a child with raw score v0
 * came out below the worst kept score w by a relative margin, every child with raw score <= v0 would too:
 * rounding is monotone, and expf's error (under 1 ulp) is far below the margin of 1e-6. Such a child is
 * dropped without its expf; what is kept, and every kept score, is exactly what computing all would give.
 * Tiny w (near the subnormals, where the relative bound fails) turns it off. The bound v0 also holds for the
 * document's next kept nodes of the layer: they come in rank order, so their parent scores are no higher,
 * and w only rises once the list is full; so it is carried from node to node rather than learnt again, and
 * forgotten at a node scored higher than the one before (or NaN): out of rank order, which only a NaN let into
 * the list above can cause (carry_bound). */
#define REJECT_MARGIN (1.0f - 1e-6f)
#define REJECT_MIN_SCORE 1e-30f

static inline int post_prunable(int post)
{
    return post == XMC_POST_L3_HINGE || post == XMC_POST_L2_HINGE || post == XMC_POST_L1_HINGE ||
           post == XMC_POST_SIGMOID;
}

/* Skipping a kept node's children altogether. Below the first layer a child's score is never above its
 * parent's: the hinges and the sigmoid are at most 1 (expf of a value <= 0, 1 / (1 + e)) and multiply the
 * parent's score, which is >= 0 (a product of such values); log-sigmoid is at most 0 and is added to it; in
 * float as well, rounding being monotone. So once a document's list is full and its worst score is above a
 * kept node's score, none of that node's children can enter it: the node is skipped, scoring included.
 * Strictly above: a child equal to the worst may still enter on its raw score. Only noop, which does not
 * combine, leaves every node to score. Each node is tested on its own rather than the rest of the layer
 * dropped at the first: the kept nodes come in rank order only while no score is NaN (a NaN let into a list
 * as it fills stops the insertions there, and later ones land after it); and the list's worst only rises (a
 * NaN never enters a full list; what moves into the last place was above it), so a node ruled out stays out.
 * On a catalog of 6,151 labels at beam 10: 63 % of the last layer's nodes. */
static inline int parent_bounds(int post) { return post != XMC_POST_NOOP; }

static inline int hopeless(int bounded, float ps, const xmc_hit *list, uint32_t nn, uint32_t keep)
{
    return bounded && nn == keep && ps < list[nn - 1].score;
}

/* The pruning bound learnt at the nodes before holds for one of no higher score (REJECT_MARGIN's comment). */
static inline void carry_bound(float ps, float *prev_ps, float *v_rej)
{
    if (!(ps <= *prev_ps)) *v_rej = -INFINITY;
    *prev_ps = ps;
}

xmc_err xmci_beam_ws_new(const xmci_xlinear *m, uint32_t max_k, xmci_beam_ws **out, xmc_error *err)
{
    xmci_beam_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    if (max_k < 1) max_k = 1;
    ws->max_k = max_k;
    for (uint32_t t = 0; t < m->depth; t++)
        if (m->layers[t].max_children > ws->max_children) ws->max_children = m->layers[t].max_children;
    ws->acc = calloc(ws->max_children ? ws->max_children : 1, sizeof *ws->acc);
    ws->cur = malloc(max_k * sizeof *ws->cur);
    ws->next = malloc(max_k * sizeof *ws->next);
    ws->key = malloc(max_k * sizeof *ws->key);
    if (!ws->acc || !ws->cur || !ws->next || !ws->key) {
        xmci_beam_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for beam search scratch");
    }
    *out = ws;
    return XMC_OK;
}

void xmci_beam_ws_free(xmci_beam_ws *ws)
{
    if (!ws) return;
    free(ws->acc);
    free(ws->cur);
    free(ws->next);
    free(ws->key);
    free(ws);
}

uint32_t xmci_beam_ws_max_k(const xmci_beam_ws *ws) { return ws->max_k; }
uint64_t xmci_beam_ws_skipped(const xmci_beam_ws *ws) { return ws->skipped; }

/* acc[c] = w_c . x for the children c of parent p (bias included). The layer was built or checked at load
 * (layer.h, xlinear.h), so its pointers and child positions are in range: asserted, not tested. */
static void score_chunk(const xmci_layer *L, uint32_t p, const uint32_t *idx, const float *val, uint32_t nnz,
                        uint32_t bias_feat, float bias, float *acc, uint32_t nch)
{
    memset(acc, 0, nch * sizeof *acc);
    uint64_t lo = L->chunk_ptr[p], hi = L->chunk_ptr[p + 1];
    const uint32_t *rf = L->row_feat;
    const uint64_t *rp = L->row_ptr;
    const uint32_t *ec = L->ent_child;
    const float *ew = L->ent_w;
    if (lo == hi) return;
    assert(lo < hi && hi <= L->nr_rows && rp[hi] <= L->nnz);
    if (hi - lo <= 4 * (uint64_t)nnz) {
        /* short chunk: one merge */
        uint64_t r = lo;
        for (uint32_t i = 0; i < nnz && r < hi; i++) {
            uint32_t f = idx[i];
            while (r < hi && rf[r] < f) r++;
            if (r < hi && rf[r] == f) {
                float v = val[i];
                for (uint64_t e = rp[r]; e < rp[r + 1]; e++) {
                    assert(ec[e] < nch);
                    acc[ec[e]] += ew[e] * v;
                }
                r++;
            }
        }
    } else {
        /* long chunk: binary search each feature in what is left of it */
        uint64_t base = lo;
        for (uint32_t i = 0; i < nnz; i++) {
            uint32_t f = idx[i];
            uint64_t a = base, b = hi;
            while (a < b) {
                uint64_t mid = a + (b - a) / 2;
                if (rf[mid] < f) a = mid + 1; else b = mid;
            }
            base = a;
            if (a == hi) break;
            if (rf[a] == f) {
                float v = val[i];
                for (uint64_t e = rp[a]; e < rp[a + 1]; e++) {
                    assert(ec[e] < nch);
                    acc[ec[e]] += ew[e] * v;
                }
                base = a + 1;
            }
        }
    }
    if (bias > 0 && rf[hi - 1] == bias_feat)
        for (uint64_t e = rp[hi - 1]; e < rp[hi]; e++) acc[ec[e]] += ew[e] * bias;
}

/* Whether (s, v) ranks above (ts, tv): by the post-processed score, and on a tie by the raw score v. The
 * hinges saturate (l3-hinge is exactly 1 for every raw score >= 1), so without the raw score the order of
 * the confident labels would be their node order, not the model's. push_top compares that order as one
 * unsigned key per entry: each float mapped to an unsigned int in the same order (negative ones' bits all
 * flipped, the others' sign bit set; -0 made +0 first, as the two compare equal), the score's above the raw
 * score's. A NaN score ranks above nothing and nothing ranks above it (every comparison with it is false):
 * its entry gets the largest key, so an insertion stops there, and a NaN offered is placed last or not at all.
 * A raw NaN makes a NaN score under every post-processor, so a key never holds one. */
static inline uint32_t order_bits(float x)
{
    uint32_t u;
    x += 0.0f; /* -0 -> +0 */
    memcpy(&u, &x, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

#define KEY_NAN UINT64_MAX

static inline uint64_t order_key(float s, float v) { return (uint64_t)order_bits(s) << 32 | order_bits(v); }

/* Inserts (node, s) with raw score v into the sorted top list of at most k (key[] beside it); one equal in
 * both goes after those present. */
static inline uint32_t push_top(xmc_hit *top, uint64_t *key, uint32_t n, uint32_t k, uint32_t node, float s, float v)
{
    assert(k >= 1 && n <= k);
    uint32_t i;
    uint64_t q;
    if (s != s) { /* below everything, equal to nothing */
        if (n == k) return n;
        i = n;
        q = KEY_NAN;
    } else {
        assert(v == v);
        q = order_key(s, v);
        if (n == k && q <= key[n - 1]) return n;
        i = n < k ? n : k - 1;
        while (i > 0 && q > key[i - 1] && key[i - 1] != KEY_NAN) {
            top[i] = top[i - 1];
            key[i] = key[i - 1];
            i--;
        }
    }
    top[i] = (xmc_hit){node, s};
    key[i] = q;
    return n < k ? n + 1 : n;
}

/* select_children for one prunable post-processor: inlined into one copy per post-processor below, so the
 * transform's choice is made once per node rather than once per child. */
static inline __attribute__((always_inline)) uint32_t select_pruned(int post, int combine, float ps, const float *acc,
                                                                    uint32_t nch, const uint32_t *child, xmc_hit *next,
                                                                    uint64_t *key, uint32_t nn, uint32_t keep,
                                                                    float *v_rej_io)
{
    float v_rej = *v_rej_io;
    uint32_t c = 0;
    /* while the list fills, every child is transformed and kept */
    for (; c < nch && nn < keep; c++) {
        float s = post_transform(post, acc[c]);
        if (combine) s *= ps;
        nn = push_top(next, key, nn, keep, child[c], s, acc[c]);
    }
    /* then 8 children at a time: those above v_rej are listed and transformed first, apart from the decisions,
     * so their expf calls overlap rather than wait on the list's; each is then decided in order exactly as one
     * at a time would (skipped at or below the bound as it stands then, which only rises). A NaN, never kept
     * by a full list, is not listed. */
    while (c < nch) {
        uint32_t end = nch - c < 8 ? nch : c + 8, at[8], m = 0;
        float sc[8];
#ifdef __SSE2__
        /* most blocks have no child above the bound: two vector compares tell */
        if (end == c + 8) {
            __m128 b = _mm_set1_ps(v_rej);
            if (!_mm_movemask_ps(_mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(acc + c), b),
                                           _mm_cmpgt_ps(_mm_loadu_ps(acc + c + 4), b)))) {
                c = end;
                continue;
            }
        }
#endif
        for (; c < end; c++) {
            at[m] = c;
            m += acc[c] > v_rej;
        }
        for (uint32_t i = 0; i < m; i++) {
            float s = post_transform(post, acc[at[i]]);
            sc[i] = combine ? s * ps : s;
        }
        for (uint32_t i = 0; i < m; i++) {
            float v = acc[at[i]], s = sc[i];
            if (v <= v_rej) continue;
            if (next[nn - 1].score > REJECT_MIN_SCORE && s < next[nn - 1].score * REJECT_MARGIN) {
                v_rej = v;
                continue;
            }
            nn = push_top(next, key, nn, keep, child[at[i]], s, v);
        }
    }
    *v_rej_io = v_rej;
    return nn;
}

/* Offers the nch children of one kept node (raw scores acc, node ids child, the parent's score ps) to the
 * top list next[0..nn) of at most keep; returns its new length. *v_rej: the pruning bound, -INFINITY at a
 * document's first kept node of a layer, carried to its next ones. Both searches call this for a document's
 * kept nodes in rank order, so the batched one makes the single one's list, comparison for comparison. */
static uint32_t select_children(int post, int combine, float ps, float *acc, uint32_t nch, const uint32_t *child,
                                xmc_hit *next, uint64_t *key, uint32_t nn, uint32_t keep, float *v_rej)
{
    switch (post) {
    case XMC_POST_L3_HINGE:
        return select_pruned(XMC_POST_L3_HINGE, combine, ps, acc, nch, child, next, key, nn, keep, v_rej);
    case XMC_POST_L2_HINGE:
        return select_pruned(XMC_POST_L2_HINGE, combine, ps, acc, nch, child, next, key, nn, keep, v_rej);
    case XMC_POST_L1_HINGE:
        return select_pruned(XMC_POST_L1_HINGE, combine, ps, acc, nch, child, next, key, nn, keep, v_rej);
    case XMC_POST_SIGMOID:
        return select_pruned(XMC_POST_SIGMOID, combine, ps, acc, nch, child, next, key, nn, keep, v_rej);
    default:
        /* noop and log-sigmoid: the raw score is kept for the ties (log-sigmoid saturates at 0 too) */
        assert(!post_prunable(post));
        for (uint32_t c = 0; c < nch; c++) {
            float v = acc[c], s = post_transform(post, v);
            nn = push_top(next, key, nn, keep, child[c], combine ? post_combine(post, s, ps) : s, v);
        }
        return nn;
    }
}

uint32_t xmci_beam_search(const xmci_xlinear *m, xmci_beam_ws *ws, const uint32_t *idx, const float *val,
                         uint32_t nnz, uint32_t beam, uint32_t k, int post, uint32_t nlayers, xmc_hit *out)
{
    if (nlayers == 0 || nlayers > m->depth) nlayers = m->depth;
    if (beam < 1) beam = 1;
    if (beam > ws->max_k) beam = ws->max_k;
    if (k < 1) k = 1;
    if (k > ws->max_k) k = ws->max_k;
    /* features past the model's are unseen: drop them (idx is sorted, so cut the tail) */
    while (nnz > 0 && idx[nnz - 1] >= m->nr_features) nnz--;
    xmc_hit *cur = ws->cur, *next = ws->next;
    uint32_t ncur = 1;
    cur[0] = (xmc_hit){0, 1.0f};
    for (uint32_t t = 0; t < nlayers; t++) {
        const xmci_layer *L = &m->layers[t];
        uint32_t keep = t + 1 == nlayers ? k : beam, nn = 0;
        const int bounded = t > 0 && parent_bounds(post);
        float v_rej = -INFINITY, prev_ps = INFINITY;
        for (uint32_t b = 0; b < ncur; b++) {
            uint32_t p = cur[b].label;
            float ps = cur[b].score;
            if (hopeless(bounded, ps, next, nn, keep)) {
                ws->skipped++;
                continue;
            }
            assert(p < L->nr_parents);
            uint32_t c0 = L->child_ptr[p], nch = L->child_ptr[p + 1] - c0;
            if (!nch) continue;
            assert(nch <= ws->max_children && c0 + nch <= L->nr_nodes);
            score_chunk(L, p, idx, val, nnz, m->nr_features, m->bias, ws->acc, nch);
            carry_bound(ps, &prev_ps, &v_rej);
            nn = select_children(post, t > 0, ps, ws->acc, nch, L->child_idx + c0, next, ws->key, nn, keep, &v_rej);
        }
        assert(nn <= keep && keep <= ws->max_k);
        xmc_hit *tmp = cur;
        cur = next;
        next = tmp;
        ncur = nn;
        if (!ncur) break;
    }
    memcpy(out, cur, ncur * sizeof *out);
    return ncur;
}

typedef struct {
    const xmci_xlinear *m;
    const xmci_csr *x;
    uint32_t beam, k, nlayers;
    int post;
    xmc_hit *out;
    uint32_t *counts;
    atomic_uint next;
    atomic_int failed;
    xmc_error err;
} batch_job;

static void *batch_worker(void *arg)
{
    batch_job *job = arg;
    xmci_beam_ws *ws;
    xmc_error err;
    uint32_t maxk = job->beam > job->k ? job->beam : job->k;
    if (xmci_beam_ws_new(job->m, maxk, &ws, &err)) {
        if (!atomic_exchange(&job->failed, 1)) job->err = err;
        return NULL;
    }
    const xmci_csr *x = job->x;
    for (;;) {
        uint32_t start = atomic_fetch_add(&job->next, 64);
        if (start >= x->rows) break;
        uint32_t end = start + 64 < x->rows ? start + 64 : x->rows;
        for (uint32_t r = start; r < end; r++) {
            uint64_t b = x->indptr[r];
            job->counts[r] = xmci_beam_search(job->m, ws, x->indices + b, x->data + b, (uint32_t)(x->indptr[r + 1] - b),
                                             job->beam, job->k, job->post, job->nlayers, job->out + (size_t)r * job->k);
        }
    }
    xmci_beam_ws_free(ws);
    return NULL;
}

xmc_err xmci_beam_search_batch(const xmci_xlinear *m, const xmci_csr *x, uint32_t beam, uint32_t k, int post,
                              uint32_t nlayers, int threads, xmc_hit *out, uint32_t *counts, xmc_error *err)
{
    batch_job job = {.m = m, .x = x, .beam = beam, .k = k, .post = post, .nlayers = nlayers, .out = out, .counts = counts};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    xmci_parallel_run(batch_worker, &job, threads);
    if (atomic_load(&job.failed)) {
        if (err) *err = job.err;
        return job.err.code ? job.err.code : XMC_ERR_NOMEM;
    }
    return XMC_OK;
}

/* ---- many documents at once (beam.h) --------------------------------------------------------------------
 * Sizes: n documents (<= max_docs), kk = max(beam, k) kept nodes per document, so cur/next hold n * kk hits
 * (<= hit_cap); the pairs of a layer are at most n * kk; the batch's features (<= max_nnz) are kept as
 * (feature, document, value) sorted by feature, and the distinct features U with their postings.
 *
 * A layer runs over a range of documents whose pairs' scores fit acc (acc_cap floats) in rounds of two phases:
 * first every node's chunk is scored for all the documents of the range that reach it (the pairs grouped by
 * node, each pair's children's raw scores kept at its own place in acc), then each document offers its pairs'
 * children to its top list in rank order, as the single search does. Deferring the selection costs the acc
 * buffer but keeps the single search's order: the best parents fill the list first, so the pruning of
 * select_children rejects as early as there, and the list is the single one by construction. Two rounds where
 * nodes can be ruled out (parent_bounds): the nodes that fill each list, then the rest less those ruled out. */

/* (feature, document, value) triples sorted by feature, documents ascending within one, and the distinct
 * features U with their postings: ufeat[u]'s triples are uptr[u] .. uptr[u+1]. max_nnz entries each. */
typedef struct {
    uint32_t *feat, *doc, *feat2, *doc2;    /* keys and documents, and the sort's second buffers */
    float *val, *val2;
    uint32_t *ufeat, *uptr;                 /* uptr: max_nnz + 1 */
    uint32_t n, nu;
} feat_list;

static int feat_list_alloc(feat_list *fl, uint32_t max_nnz)
{
    fl->feat = malloc(max_nnz * sizeof *fl->feat);
    fl->doc = malloc(max_nnz * sizeof *fl->doc);
    fl->feat2 = malloc(max_nnz * sizeof *fl->feat2);
    fl->doc2 = malloc(max_nnz * sizeof *fl->doc2);
    fl->val = malloc(max_nnz * sizeof *fl->val);
    fl->val2 = malloc(max_nnz * sizeof *fl->val2);
    fl->ufeat = malloc(max_nnz * sizeof *fl->ufeat);
    fl->uptr = malloc(((size_t)max_nnz + 1) * sizeof *fl->uptr);
    return fl->feat && fl->doc && fl->feat2 && fl->doc2 && fl->val && fl->val2 && fl->ufeat && fl->uptr ? 0 : -1;
}

static void feat_list_free(feat_list *fl)
{
    free(fl->feat);
    free(fl->doc);
    free(fl->feat2);
    free(fl->doc2);
    free(fl->val);
    free(fl->val2);
    free(fl->ufeat);
    free(fl->uptr);
}

struct xmci_beam_batch {
    uint32_t max_docs, max_nnz, hit_cap, acc_cap, max_parents;
    xmc_hit *cur, *next;            /* hit_cap each: document d's kept nodes at d * kk */
    uint64_t *key;                  /* hit_cap: the order keys of document d's list being made at d * kk (push_top;
                                     * a list is made over two rounds, others' in between) */
    uint32_t *ncur, *nnext;         /* max_docs each */
    uint32_t *fill;                 /* max_docs: a layer's first round takes a document's kept nodes 0 .. fill[d],
                                     * the second the rest (layer_round) */
    float *vrej, *vps;              /* max_docs each: each document's pruning bound in the layer (select_children)
                                     * and the score of the node it was last carried to (carry_bound) */
    uint64_t skipped;               /* (document, kept node) pairs not scored (parent_bounds) */
    uint32_t *pair_cnt;             /* max_parents + 1 */
    uint32_t *pair_node, *pair_doc; /* hit_cap each: a range's pairs grouped by node, documents ascending */
    uint32_t *pair_off;             /* hit_cap: where a pair's raw scores start in acc */
    uint32_t *pair_of;              /* hit_cap: document d's b-th kept node -> its pair, at d * kk + b */
    float *acc;                     /* acc_cap */
    int32_t *slot;                  /* max_docs: position in the current group, -1 when not in it */
    uint64_t *doff;                 /* max_docs: first feature of each document (in the caller's rows) */
    uint32_t *dnnz;                 /* max_docs: its features below nr_features */
    uint64_t *mrow;                 /* max_nnz + 1: the rows of a chunk a group's features matched (+1: the */
    uint32_t *mu;                   /* scan's store past the last match); and their positions in the list */
    float *vb;                      /* max_children: a chunk's bias terms */
    uint32_t *run;                  /* max_docs + 1: where each document's features start in a group's list */
    uint32_t *u_of;                 /* map_len: feature -> position in the list being merged, else UINT32_MAX */
    uint32_t map_len;               /* the model's features + the bias feature */
    feat_list all;                  /* the whole batch's features */
    feat_list part;                 /* those of one group of documents */
};

/* Hits kept per batch: 64 per document for a full batch, and one document at the largest beam. */
#define BATCH_HITS_PER_DOC 64
/* Raw scores held per document of a full batch (a range takes the documents whose pairs fit): 1024 floats,
 * 4 KiB, enough for beam 10 over nodes of 100 children, so a batch of 256 usually runs as one range. */
#define BATCH_ACC_PER_DOC 1024

xmc_err xmci_beam_batch_new(const xmci_xlinear *m, uint32_t max_docs, uint32_t max_nnz, uint64_t acc_floats,
                           xmci_beam_batch **out, xmc_error *err)
{
    *out = NULL;
    xmci_beam_batch *bb = calloc(1, sizeof *bb);
    if (!bb) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    if (max_docs < 1) max_docs = 1;
    if (max_nnz < 1) max_nnz = 1;
    bb->max_docs = max_docs;
    bb->max_nnz = max_nnz;
    uint64_t hits = (uint64_t)max_docs * BATCH_HITS_PER_DOC;
    bb->hit_cap = (uint32_t)(hits > XMC_MAX_K ? hits : XMC_MAX_K);
    /* acc holds at least what one document may need at one layer: its kept nodes are distinct, so their
     * children are at most the layer's nodes, and at most XMC_MAX_K times the widest node's */
    uint64_t acc = acc_floats ? acc_floats : (uint64_t)max_docs * BATCH_ACC_PER_DOC;
    uint32_t max_children = 1;
    for (uint32_t t = 0; t < m->depth; t++) {
        const xmci_layer *L = &m->layers[t];
        if (L->max_children > max_children) max_children = L->max_children;
        uint64_t one = (uint64_t)L->max_children * XMC_MAX_K;
        if (one > L->nr_nodes) one = L->nr_nodes;
        if (one > acc) acc = one;
        if (L->nr_parents > bb->max_parents) bb->max_parents = L->nr_parents;
    }
    bb->acc_cap = (uint32_t)(acc < UINT32_MAX ? acc : UINT32_MAX); /* one document's need is below: nodes are u32 */
    bb->cur = malloc(bb->hit_cap * sizeof *bb->cur);
    bb->next = malloc(bb->hit_cap * sizeof *bb->next);
    bb->key = malloc(bb->hit_cap * sizeof *bb->key);
    bb->ncur = malloc(max_docs * sizeof *bb->ncur);
    bb->nnext = malloc(max_docs * sizeof *bb->nnext);
    bb->fill = malloc(max_docs * sizeof *bb->fill);
    bb->vrej = malloc(max_docs * sizeof *bb->vrej);
    bb->vps = malloc(max_docs * sizeof *bb->vps);
    bb->pair_cnt = malloc(((size_t)bb->max_parents + 1) * sizeof *bb->pair_cnt);
    bb->pair_node = malloc(bb->hit_cap * sizeof *bb->pair_node);
    bb->pair_doc = malloc(bb->hit_cap * sizeof *bb->pair_doc);
    bb->pair_off = malloc(bb->hit_cap * sizeof *bb->pair_off);
    bb->pair_of = malloc(bb->hit_cap * sizeof *bb->pair_of);
    bb->acc = malloc(bb->acc_cap * sizeof *bb->acc);
    bb->slot = malloc(max_docs * sizeof *bb->slot);
    bb->doff = malloc(max_docs * sizeof *bb->doff);
    bb->dnnz = malloc(max_docs * sizeof *bb->dnnz);
    bb->mrow = malloc(((size_t)max_nnz + 1) * sizeof *bb->mrow);
    bb->mu = malloc(((size_t)max_nnz + 1) * sizeof *bb->mu);
    bb->vb = malloc(max_children * sizeof *bb->vb);
    bb->run = malloc(((size_t)max_docs + 1) * sizeof *bb->run);
    bb->map_len = m->nr_features + 1;
    bb->u_of = malloc((size_t)bb->map_len * sizeof *bb->u_of);
    int lists = feat_list_alloc(&bb->all, max_nnz) | feat_list_alloc(&bb->part, max_nnz);
    if (lists || !bb->cur || !bb->next || !bb->key || !bb->ncur || !bb->nnext || !bb->fill || !bb->vrej ||
        !bb->vps || !bb->pair_cnt || !bb->pair_node || !bb->pair_doc || !bb->pair_off || !bb->pair_of || !bb->acc ||
        !bb->slot || !bb->doff || !bb->dnnz || !bb->mrow || !bb->mu || !bb->vb || !bb->run || !bb->u_of) {
        xmci_beam_batch_free(bb);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a batch of %u documents", max_docs);
    }
    for (uint32_t d = 0; d < max_docs; d++) bb->slot[d] = -1;
    memset(bb->u_of, 0xff, (size_t)bb->map_len * sizeof *bb->u_of);
    *out = bb;
    return XMC_OK;
}

uint64_t xmci_beam_batch_skipped(const xmci_beam_batch *bb) { return bb->skipped; }

void xmci_beam_batch_free(xmci_beam_batch *bb)
{
    if (!bb) return;
    free(bb->cur);
    free(bb->next);
    free(bb->key);
    free(bb->ncur);
    free(bb->nnext);
    free(bb->fill);
    free(bb->vrej);
    free(bb->vps);
    free(bb->pair_cnt);
    free(bb->pair_node);
    free(bb->pair_doc);
    free(bb->pair_off);
    free(bb->pair_of);
    free(bb->acc);
    free(bb->slot);
    free(bb->doff);
    free(bb->dnnz);
    free(bb->mrow);
    free(bb->mu);
    free(bb->vb);
    free(bb->run);
    free(bb->u_of);
    feat_list_free(&bb->all);
    feat_list_free(&bb->part);
    free(bb);
}

static uint32_t clamp_k(uint32_t v) { return v < 1 ? 1 : v > XMC_MAX_K ? XMC_MAX_K : v; }

uint32_t xmci_beam_batch_docs(const xmci_beam_batch *bb, uint32_t beam, uint32_t k)
{
    beam = clamp_k(beam);
    k = clamp_k(k);
    uint32_t kk = beam > k ? beam : k, docs = bb->hit_cap / kk;
    return docs < 1 ? 1 : docs > bb->max_docs ? bb->max_docs : docs;
}

uint32_t xmci_beam_batch_max_nnz(const xmci_beam_batch *bb) { return bb->max_nnz; }

/* A sorted list's distinct features U and their postings. */
static void feat_list_index(feat_list *fl)
{
    uint32_t nu = 0, n = fl->n;
    for (uint32_t i = 0; i < n; i++)
        if (i == 0 || fl->feat[i] != fl->feat[i - 1]) {
            fl->ufeat[nu] = fl->feat[i];
            fl->uptr[nu++] = i;
        }
    fl->uptr[nu] = n;
    fl->nu = nu;
}

/* Sorts a list's n triples by feature, stably (documents were added in ascending order and stay so): LSD
 * radix, a byte a pass, as many passes as the model's feature ids need. Then its U. */
static void feat_list_sort(feat_list *fl, uint32_t nr_features)
{
    uint32_t passes = 0, n = fl->n;
    for (uint64_t top = nr_features; top > 0; top >>= 8) passes++;
    for (uint32_t pass = 0; pass < passes; pass++) {
        uint32_t cnt[257] = {0}, shift = 8 * pass;
        for (uint32_t i = 0; i < n; i++) cnt[((fl->feat[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t o = cnt[(fl->feat[i] >> shift) & 0xff]++;
            fl->feat2[o] = fl->feat[i];
            fl->doc2[o] = fl->doc[i];
            fl->val2[o] = fl->val[i];
        }
        uint32_t *tf = fl->feat, *td = fl->doc;
        float *tv = fl->val;
        fl->feat = fl->feat2, fl->doc = fl->doc2, fl->val = fl->val2;
        fl->feat2 = tf, fl->doc2 = td, fl->val2 = tv;
    }
    feat_list_index(fl);
}

/* The same for a list made of nr sorted runs (run r: run[r] .. run[r+1], run[nr] = n, documents ascending
 * from run to run), as a group's rows are: runs merged pairwise, the left one first on equal features, so
 * n * log2(nr) moves against the radix sort's passes of n + 256 counters, less for a few documents. run is
 * rewritten. */
static void feat_list_merge_runs(feat_list *fl, uint32_t *run, uint32_t nr)
{
    while (nr > 1) {
        uint32_t out = 0, w = 0;
        for (uint32_t r = 0; r < nr; r += 2) {
            uint32_t i = run[r], ie = run[r + 1], j = ie, je = r + 2 <= nr ? run[r + 2] : ie;
            run[w++] = out;
            while (i < ie && j < je) {
                uint32_t from = fl->feat[j] < fl->feat[i] ? j++ : i++;
                fl->feat2[out] = fl->feat[from];
                fl->doc2[out] = fl->doc[from];
                fl->val2[out++] = fl->val[from];
            }
            for (; i < ie; i++, out++) fl->feat2[out] = fl->feat[i], fl->doc2[out] = fl->doc[i], fl->val2[out] = fl->val[i];
            for (; j < je; j++, out++) fl->feat2[out] = fl->feat[j], fl->doc2[out] = fl->doc[j], fl->val2[out] = fl->val[j];
        }
        run[w] = out;
        nr = w;
        uint32_t *tf = fl->feat, *td = fl->doc;
        float *tv = fl->val;
        fl->feat = fl->feat2, fl->doc = fl->doc2, fl->val = fl->val2;
        fl->feat2 = tf, fl->doc2 = td, fl->val2 = tv;
    }
    feat_list_index(fl);
}

/* acc[slot * nch + c] = w_c . x_doc for the documents of the current group (slot[doc] >= 0, g of them):
 * U merged with chunk p's rows once, each matched row's entries applied to every posting of its feature
 * that is in the group. Per document the sums run in the order of score_chunk (features ascending, bias
 * last), so they are bit for bit its results. The merge runs first and lists the matched rows (mrow, and
 * their features' positions in U, mu: room for U's length each), so that the second loop, which misses the
 * cache on each row's entries, knows the rows ahead and can fetch them a few rows early. */
static void score_chunk_group(const xmci_layer *L, uint32_t p, const feat_list *fl, const int32_t *slot,
                              uint32_t bias_feat, float bias, float *acc, uint32_t nch, uint32_t g, uint64_t *mrow,
                              uint32_t *mu, float *vb, uint32_t *u_of)
{
    memset(acc, 0, (size_t)g * nch * sizeof *acc);
    uint64_t lo = L->chunk_ptr[p], hi = L->chunk_ptr[p + 1];
    const uint32_t *rf = L->row_feat;
    const uint64_t *rp = L->row_ptr;
    const uint32_t *ec = L->ent_child;
    const float *ew = L->ent_w;
    const uint32_t *ufeat = fl->ufeat, *uptr = fl->uptr, *pdoc = fl->doc, nu = fl->nu;
    const float *pval = fl->val;
    if (lo == hi) return;
    assert(lo < hi && hi <= L->nr_rows && rp[hi] <= L->nnz);
    uint32_t nm = 0;
    if (u_of && hi - lo <= 8 * (uint64_t)nu) {
        /* a chunk not much longer than the list: its rows scanned against a map feature -> position in the
         * list, without a branch per row, in place of a galloping search per feature (whose branches cost more
         * than a row each); the matched rows come out in the same order */
        for (uint32_t u = 0; u < nu; u++) u_of[ufeat[u]] = u;
        for (uint64_t r = lo; r < hi; r++) {
            assert(rf[r] <= bias_feat);
            uint32_t u = u_of[rf[r]];
            mrow[nm] = r;
            mu[nm] = u;
            nm += u != UINT32_MAX;
        }
        for (uint32_t u = 0; u < nu; u++) u_of[ufeat[u]] = UINT32_MAX;
    } else {
        uint64_t base = lo;
        for (uint32_t u = 0; u < nu && base < hi; u++) {
            uint32_t f = ufeat[u];
            /* galloping search from where the last feature was: cost log(distance), whatever the chunk's length */
            uint64_t a = base, b;
            if (rf[a] < f) {
                uint64_t step = 1;
                while (a + step < hi && rf[a + step] < f) {
                    a += step;
                    step *= 2;
                }
                b = a + step < hi ? a + step : hi;
                a++;
                while (a < b) {
                    uint64_t mid = a + (b - a) / 2;
                    if (rf[mid] < f) a = mid + 1; else b = mid;
                }
            }
            base = a;
            if (a == hi || rf[a] != f) continue;
            base = a + 1;
            mrow[nm] = a;
            mu[nm++] = u;
        }
    }
    /* rows i + 4 fetched while row i is applied (their row_ptr entries at i + 8): a row's entries are short
     * runs at scattered places, each a cache miss of its own */
    enum { AHEAD = 4 };
    for (uint32_t i = 0; i < nm && i < 2 * AHEAD; i++) __builtin_prefetch(&rp[mrow[i]]);
    for (uint32_t i = 0; i < nm && i < AHEAD; i++) {
        __builtin_prefetch(&ec[rp[mrow[i]]]);
        __builtin_prefetch(&ew[rp[mrow[i]]]);
    }
    for (uint32_t i = 0; i < nm; i++) {
        if (i + 2 * AHEAD < nm) __builtin_prefetch(&rp[mrow[i + 2 * AHEAD]]);
        if (i + AHEAD < nm) {
            uint64_t e0 = rp[mrow[i + AHEAD]];
            __builtin_prefetch(&ec[e0]);
            __builtin_prefetch(&ew[e0]);
        }
        uint64_t r = mrow[i], e0 = rp[r], e1 = rp[r + 1];
        uint32_t u = mu[i];
        for (uint32_t q = uptr[u]; q < uptr[u + 1]; q++) {
            int32_t s = slot[pdoc[q]];
            if (s < 0) continue;
            float v = pval[q];
            float *dst = acc + (size_t)s * nch;
            for (uint64_t e = e0; e < e1; e++) {
                assert(ec[e] < nch);
                dst[ec[e]] += ew[e] * v;
            }
        }
    }
    if (bias > 0 && rf[hi - 1] == bias_feat) {
        /* the bias row's terms once, then added to every document's scores four at a time (GCC's -O2 left this
         * loop scalar: dst and vb might overlap for all it knows; it was a tenth of a batch's time); a child
         * without a bias weight gets + 0.0f, which changes no sum here (a sum from +0.0f is never -0.0f) */
        memset(vb, 0, nch * sizeof *vb);
        for (uint64_t e = rp[hi - 1]; e < rp[hi]; e++) vb[ec[e]] = ew[e] * bias;
        for (uint32_t s = 0; s < g; s++) {
            float *dst = acc + (size_t)s * nch;
            uint32_t c = 0;
#ifdef __SSE2__
            for (; c + 4 <= nch; c += 4) _mm_storeu_ps(dst + c, _mm_add_ps(_mm_loadu_ps(dst + c), _mm_loadu_ps(vb + c)));
#endif
            for (; c < nch; c++) dst[c] += vb[c];
        }
    }
}

/* The raw scores of the pairs o in [a, e) (one node p, nch children each, contiguous in acc from
 * pair_off[a]): one merge of a feature list for all of them where there are several, else score_chunk. */
static void score_group(const xmci_xlinear *m, const xmci_layer *L, xmci_beam_batch *bb, uint32_t p, uint32_t nch,
                        uint32_t a, uint32_t e, const uint32_t *idx, const float *val)
{
    float *acc = bb->acc + bb->pair_off[a];
    uint32_t g = e - a;
    if (g == 1) {
        uint32_t d = bb->pair_doc[a];
        score_chunk(L, p, idx + bb->doff[d], val + bb->doff[d], bb->dnnz[d], m->nr_features, m->bias, acc, nch);
        return;
    }
    /* the batch's list when enough of it reaches this node, else the group's own */
    uint64_t work = 0;
    for (uint32_t q = a; q < e; q++) work += bb->dnnz[bb->pair_doc[q]];
    const feat_list *fl = &bb->all;
    if (work < bb->all.nu) {
        feat_list *part = &bb->part;
        uint32_t np = 0;
        for (uint32_t q = a; q < e; q++) {
            uint32_t d = bb->pair_doc[q];
            bb->run[q - a] = np;
            for (uint32_t f = 0; f < bb->dnnz[d]; f++) {
                part->feat[np] = idx[bb->doff[d] + f];
                part->doc[np] = d;
                part->val[np++] = val[bb->doff[d] + f];
            }
        }
        bb->run[g] = np;
        part->n = np;
        /* each document's row is one sorted run: merged for a few, radix-sorted for many */
        if (g <= 16) feat_list_merge_runs(part, bb->run, g);
        else feat_list_sort(part, m->nr_features);
        fl = part;
    }
    for (uint32_t q = a; q < e; q++) bb->slot[bb->pair_doc[q]] = (int32_t)(q - a);
    score_chunk_group(L, p, fl, bb->slot, m->nr_features, m->bias, acc, nch, g, bb->mrow, bb->mu, bb->vb,
                      m->nr_features < bb->map_len ? bb->u_of : NULL);
    for (uint32_t q = a; q < e; q++) bb->slot[bb->pair_doc[q]] = -1;
}

/* The children a document's kept nodes have at layer L. */
static uint64_t doc_children(const xmci_layer *L, const xmc_hit *kept, uint32_t nk)
{
    uint64_t s = 0;
    for (uint32_t b = 0; b < nk; b++) s += L->child_ptr[kept[b].label + 1] - L->child_ptr[kept[b].label];
    return s;
}

/* One round of a layer over documents d0 .. d1 (xmci_beam_search_rows): the pairs of each document's kept
 * nodes of the round (the first: 0 .. fill[d], the second: fill[d] .. ncur[d]) that its list as it stands does
 * not rule out (parent_bounds), grouped by node,
 * documents ascending within a node, each node's chunk scored once for its documents (phase 1); then each
 * document offers its pairs' children to its top list in rank order, from where the last round left the list
 * (nnext, bb->vrej), passing over the nodes its list now rules out (phase 2). A node left out in phase 1 is
 * ruled out in phase 2 too (the worst only rises), and its pair is marked so. The pairs' scores fit acc: the
 * range was cut for all of its documents' nodes. */
static void layer_round(const xmci_xlinear *m, const xmci_layer *L, xmci_beam_batch *bb, const xmc_hit *cur,
                        const uint32_t *ncur, xmc_hit *next, uint32_t *nnext, uint32_t d0, uint32_t d1, int second,
                        uint32_t kk, uint32_t keep, int post, int combine, int bounded, const uint32_t *idx,
                        const float *val)
{
#define ROUND_LO(d) (second ? bb->fill[d] : 0)
#define ROUND_HI(d) (second ? ncur[d] : bb->fill[d])
    uint32_t *cnt = bb->pair_cnt;
    /* nodes ruled out or without children have nothing to score or offer: their pair is UINT32_MAX */
    memset(cnt, 0, ((size_t)L->nr_parents + 1) * sizeof *cnt);
    uint32_t np = 0;
    for (uint32_t d = d0; d < d1; d++)
        for (uint32_t b = ROUND_LO(d); b < ROUND_HI(d); b++) {
            const xmc_hit *h = cur + (size_t)d * kk + b;
            assert(h->label < L->nr_parents);
            int out = hopeless(bounded, h->score, next + (size_t)d * kk, nnext[d], keep);
            bb->skipped += (uint64_t)out;
            if (out || L->child_ptr[h->label + 1] == L->child_ptr[h->label]) {
                bb->pair_of[(size_t)d * kk + b] = UINT32_MAX;
            } else {
                bb->pair_of[(size_t)d * kk + b] = 0;
                cnt[h->label + 1]++, np++;
            }
        }
    for (uint32_t p = 0; p < L->nr_parents; p++) cnt[p + 1] += cnt[p];
    for (uint32_t d = d0; d < d1; d++)
        for (uint32_t b = ROUND_LO(d); b < ROUND_HI(d); b++) {
            if (bb->pair_of[(size_t)d * kk + b] == UINT32_MAX) continue;
            uint32_t p = cur[(size_t)d * kk + b].label, o = cnt[p]++;
            bb->pair_node[o] = p;
            bb->pair_doc[o] = d;
            bb->pair_of[(size_t)d * kk + b] = o;
        }
    uint32_t off = 0;
    for (uint32_t o = 0; o < np; o++) {
        uint32_t p = bb->pair_node[o];
        bb->pair_off[o] = off;
        off += L->child_ptr[p + 1] - L->child_ptr[p];
    }
    assert(off <= bb->acc_cap);
    /* phase 1: each node's chunk scored once for its documents */
    for (uint32_t i = 0, j; i < np; i = j) {
        uint32_t p = bb->pair_node[i];
        for (j = i + 1; j < np && bb->pair_node[j] == p; j++) {}
        uint32_t nch = L->child_ptr[p + 1] - L->child_ptr[p];
        assert(L->child_ptr[p] + nch <= L->nr_nodes);
        score_group(m, L, bb, p, nch, i, j, idx, val);
    }
    /* phase 2: each document's children offered in its rank order */
    for (uint32_t d = d0; d < d1; d++) {
        const xmc_hit *kept = cur + (size_t)d * kk;
        xmc_hit *top = next + (size_t)d * kk;
        uint32_t nn = nnext[d];
        for (uint32_t b = ROUND_LO(d); b < ROUND_HI(d); b++) {
            uint32_t p = kept[b].label, c0 = L->child_ptr[p], nch = L->child_ptr[p + 1] - c0,
                     o = bb->pair_of[(size_t)d * kk + b];
            if (o == UINT32_MAX || hopeless(bounded, kept[b].score, top, nn, keep)) continue;
            carry_bound(kept[b].score, &bb->vps[d], &bb->vrej[d]);
            float *acc = bb->acc + bb->pair_off[o];
            nn = select_children(post, combine, kept[b].score, acc, nch, L->child_idx + c0, top,
                                 bb->key + (size_t)d * kk, nn, keep, &bb->vrej[d]);
        }
        assert(nn <= keep);
        nnext[d] = nn;
    }
#undef ROUND_LO
#undef ROUND_HI
}

void xmci_beam_search_rows(const xmci_xlinear *m, xmci_beam_batch *bb, const uint64_t *indptr, const uint32_t *idx,
                          const float *val, uint32_t n, uint32_t beam, uint32_t k, int post, uint32_t nlayers,
                          xmc_hit *out, uint32_t stride, uint32_t *counts)
{
    if (nlayers == 0 || nlayers > m->depth) nlayers = m->depth;
    beam = clamp_k(beam);
    k = clamp_k(k);
    uint32_t kk = beam > k ? beam : k;
    assert(n <= xmci_beam_batch_docs(bb, beam, k) && stride >= k);
    uint64_t base = indptr[0];
    assert(indptr[n] - base <= bb->max_nnz);
    /* the batch's features below nr_features (each row is sorted: cut its tail, as the single search does) */
    uint32_t total = 0;
    for (uint32_t d = 0; d < n; d++) {
        uint64_t lo = indptr[d] - base, hi = indptr[d + 1] - base;
        while (hi > lo && idx[hi - 1] >= m->nr_features) hi--;
        bb->doff[d] = lo;
        bb->dnnz[d] = (uint32_t)(hi - lo);
        for (uint64_t i = lo; i < hi; i++) {
            bb->all.feat[total] = idx[i];
            bb->all.doc[total] = d;
            bb->all.val[total++] = val[i];
        }
    }
    bb->all.n = total;
    feat_list_sort(&bb->all, m->nr_features);
    xmc_hit *cur = bb->cur, *next = bb->next;
    uint32_t *ncur = bb->ncur, *nnext = bb->nnext;
    for (uint32_t d = 0; d < n; d++) {
        cur[(size_t)d * kk] = (xmc_hit){0, 1.0f};
        ncur[d] = 1;
    }
    for (uint32_t t = 0; t < nlayers; t++) {
        const xmci_layer *L = &m->layers[t];
        uint32_t keep = t + 1 == nlayers ? k : beam;
        assert(L->nr_parents <= bb->max_parents);
        const int bounded = t > 0 && parent_bounds(post);
        for (uint32_t d0 = 0, d1; d0 < n; d0 = d1) {
            /* the range: documents from d0 whose pairs' scores fit acc (the first always does) */
            uint64_t need = 0;
            for (d1 = d0; d1 < n; d1++) {
                uint64_t nd = doc_children(L, cur + (size_t)d1 * kk, ncur[d1]);
                assert(nd <= bb->acc_cap);
                if (need + nd > bb->acc_cap) break;
                need += nd;
            }
            /* round 1: each document's first kept nodes, as many as fill its list (all of them where no
             * node can be ruled out); round 2: the others, less those that the list after round 1 rules out
             * (parent_bounds). The single search tests each node against its list as it stands then; the
             * nodes scored here and not there offer no child that enters, so the lists are the same. */
            uint32_t left = 0;
            for (uint32_t d = d0; d < d1; d++) {
                const xmc_hit *kept = cur + (size_t)d * kk;
                uint32_t b = 0;
                if (bounded)
                    for (uint64_t c = 0; b < ncur[d] && c < keep; b++)
                        c += L->child_ptr[kept[b].label + 1] - L->child_ptr[kept[b].label];
                bb->fill[d] = bounded ? b : ncur[d];
                left += bb->fill[d] < ncur[d];
                nnext[d] = 0;
                bb->vrej[d] = -INFINITY;
                bb->vps[d] = INFINITY;
            }
            layer_round(m, L, bb, cur, ncur, next, nnext, d0, d1, 0, kk, keep, post, t > 0, bounded, idx, val);
            if (left) layer_round(m, L, bb, cur, ncur, next, nnext, d0, d1, 1, kk, keep, post, 1, 1, idx, val);
        }
        xmc_hit *th = cur;
        cur = next;
        next = th;
        uint32_t *tn = ncur;
        ncur = nnext;
        nnext = tn;
    }
    for (uint32_t d = 0; d < n; d++) {
        memcpy(out + (size_t)d * stride, cur + (size_t)d * kk, ncur[d] * sizeof *out);
        counts[d] = ncur[d];
    }
}
