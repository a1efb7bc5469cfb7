/* beam.c: beam search (see beam.h). */
#include "beam.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

struct xmci_beam_ws {
    uint32_t max_k, max_children;
    float *acc;                 /* max_children */
    xmc_hit *cur, *next;        /* max_k each: kept nodes (label field = node id) */
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

float xmci_post_transform(int post, float v)
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

float xmci_post_combine(int post, float child, float parent)
{
    switch (post) {
    case XMC_POST_NOOP: return child;
    case XMC_POST_LOG_SIGMOID: return child + parent;
    default: return child * parent;
    }
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
    if (!ws->acc || !ws->cur || !ws->next) {
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
    free(ws);
}

uint32_t xmci_beam_ws_max_k(const xmci_beam_ws *ws) { return ws->max_k; }

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

/* Inserts (node, s) into the sorted top list of at most k; an equal score goes after those present. */
static uint32_t push_top(xmc_hit *top, uint32_t n, uint32_t k, uint32_t node, float s)
{
    assert(k >= 1 && n <= k);
    if (n == k && !(s > top[n - 1].score)) return n;
    uint32_t i = n < k ? n : k - 1;
    while (i > 0 && top[i - 1].score < s) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = (xmc_hit){node, s};
    return n < k ? n + 1 : n;
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
        for (uint32_t b = 0; b < ncur; b++) {
            uint32_t p = cur[b].label;
            float ps = cur[b].score;
            assert(p < L->nr_parents);
            uint32_t c0 = L->child_ptr[p], nch = L->child_ptr[p + 1] - c0;
            if (!nch) continue;
            assert(nch <= ws->max_children && c0 + nch <= L->nr_nodes);
            score_chunk(L, p, idx, val, nnz, m->nr_features, m->bias, ws->acc, nch);
            for (uint32_t c = 0; c < nch; c++) {
                float s = xmci_post_transform(post, ws->acc[c]);
                if (t > 0) s = xmci_post_combine(post, s, ps);
                nn = push_top(next, nn, keep, L->child_idx[c0 + c], s);
            }
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
