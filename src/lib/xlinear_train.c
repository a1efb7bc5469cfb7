/* xlinear_train.c: training the rankers of an XR-Linear model, layer by layer (see xlinear_train.h).
 *
 * Problems run on the worker pool (parallel.h) as work units: a parent and a run of its children, each thread
 * with its own solver scratch. With one parent per unit a layer of few parents (the top layer has one) runs on
 * one thread while the others wait, so with several threads a parent that holds much of the layer's work is cut
 * into runs of children, and the units go largest first so that no big one is left for the end. A thread keeps
 * the block of the last parent it gathered, so the runs of one parent cost one gather per thread that takes
 * them. Each child's solve depends only on its parent's rows, so the weights are the same for every thread
 * count. After a layer is trained it is laid out for search (layer.h) at once, since matcher-aware negatives
 * need it for the next layer. */
#include "xlinear_train.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "parallel.h"
#include "xlinear.h"

void xmci_xlinear_params_default(xmci_xlinear_params *p)
{
    memset(p, 0, sizeof *p);
    xmci_dcd_params_default(&p->solver);
    p->solver_type = XMCI_SOLVER_DUAL;
    p->newton_eps = 0.01;
    p->newton_max_iter = 1000;
    p->negatives = XMCI_NEG_TFN;
    p->beam = 10;
    p->topk = 20;
    p->post = XMC_POST_L3_HINGE;
    p->man_beam = 0;
    p->man_post = -1;
    p->threads = 1;
}

/* ---- one layer: the workers ---------------------------------------------------------------------------- */

/* Children child_idx[first..end) of one parent; cost estimates the solves' work (rows x children). */
typedef struct work_unit {
    uint32_t parent, first, end;
    uint64_t cost;
} work_unit;

typedef struct {
    const xmci_csr *x;
    const float *x_sqnorm;       /* each row's sum of squares, as the dual solver adds it (NULL: primal) */
    const xmci_csr *mt;          /* parents x N: instances matched to each parent, ascending */
    const xmci_csr *yt;          /* nodes x N: positives of each node, ascending */
    const uint32_t *parent;
    const xmci_dcd_params *solver;
    int solver_type;            /* XMCI_SOLVER_*: which of the two below the workers use */
    xmci_tron_params primal;
    uint32_t nr_nodes, nr_parents;
    const uint32_t *child_ptr;  /* nr_parents + 1: the children of each parent, from the tree */
    const uint32_t *child_idx;
    const struct work_unit *units;
    uint32_t nr_units;
    /* results: one row per node */
    uint32_t **w_idx;
    float **w_val;
    uint32_t *w_nnz;
    atomic_uint next;
    atomic_uint done;
    atomic_int failed;
    xmc_error err;
    const xmci_xlinear_params *p;
    uint32_t layer, depth;
    /* warm start: the serving layer's weights (node x warm_nf+1) and this layer's node map, or NULL */
    const xmci_csr *w0;
    const uint32_t *warm_node;
    const uint32_t *warm_feat;
    uint32_t warm_nf;
    atomic_ullong iters;        /* solver iterations of the layer */
} layer_job;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Scratch of one training thread. The instances matched to one parent are copied into a local CSR whose
 * features are renumbered 0..U-1 in increasing order (so rows stay sorted and the solvers' arithmetic is
 * unchanged): its children's solves then touch a few contiguous rows and a weight vector of U floats that
 * stays in cache, instead of rows scattered over the whole training matrix and a vector over every feature. */
typedef struct {
    uint32_t *lpos, *lstamp;     /* global instance -> local row, valid where lstamp == gen */
    uint32_t *fstamp, *fmap;     /* global feature -> local feature, valid where fstamp == gen */
    uint32_t gen;
    uint32_t *rows;              /* global instance of each local row */
    uint32_t *feats;             /* global feature of each local feature, ascending */
    uint32_t *inst;
    int8_t *y;
    xmci_csr lx;                  /* the local block; arrays grow as needed */
    float *lsq;                  /* each block row's sum of squares (from layer_job.x_sqnorm) */
    uint64_t lx_cap;
    uint32_t *w0i;               /* warm start: a node's starting weights in the block's feature ids */
    float *w0v;
    int8_t *ygroup;              /* XMCI_DCD_GROUP children's labels over the parent's instances */
    uint32_t group_node[XMCI_DCD_GROUP];
} train_scratch;

static void scratch_free(train_scratch *sc)
{
    free(sc->lpos);
    free(sc->lstamp);
    free(sc->fstamp);
    free(sc->fmap);
    free(sc->rows);
    free(sc->feats);
    free(sc->inst);
    free(sc->y);
    free(sc->lx.indptr);
    free(sc->lx.indices);
    free(sc->lx.data);
    free(sc->lsq);
    free(sc->w0i);
    free(sc->w0v);
    free(sc->ygroup);
}

static int scratch_init(train_scratch *sc, uint32_t n, uint32_t f, int warm)
{
    memset(sc, 0, sizeof *sc);
    size_t N = (size_t)n + 1, F = (size_t)f + 1;
    sc->lpos = malloc(N * sizeof *sc->lpos);
    sc->lstamp = calloc(N, sizeof *sc->lstamp);
    sc->fstamp = calloc(F, sizeof *sc->fstamp);
    sc->fmap = malloc(F * sizeof *sc->fmap);
    sc->rows = malloc(N * sizeof *sc->rows);
    sc->feats = malloc(F * sizeof *sc->feats);
    sc->inst = malloc(N * sizeof *sc->inst);
    sc->y = malloc(N);
    sc->lx.indptr = malloc(N * sizeof *sc->lx.indptr);
    sc->lsq = malloc(N * sizeof *sc->lsq);
    sc->ygroup = malloc(N * XMCI_DCD_GROUP);
    if (!sc->ygroup) return -1;
    if (warm) {
        sc->w0i = malloc(F * sizeof *sc->w0i);
        sc->w0v = malloc(F * sizeof *sc->w0v);
        if (!sc->w0i || !sc->w0v) return -1;
    }
    return sc->lpos && sc->lstamp && sc->fstamp && sc->fmap && sc->rows && sc->feats && sc->inst && sc->y && sc->lx.indptr &&
                   sc->lsq
               ? 0 : -1;
}

static uint32_t next_gen(uint32_t *gen, uint32_t *a, size_t na, uint32_t *b, size_t nb)
{
    if (++*gen == 0) {
        memset(a, 0, na * sizeof *a);
        memset(b, 0, nb * sizeof *b);
        *gen = 1;
    }
    return *gen;
}

/* Builds sc->lx from rows sc->rows[0..n) of x. 0, or -1 when out of memory. */
static int build_block(train_scratch *sc, const xmci_csr *x, uint32_t n, uint32_t *nfeat)
{
    uint32_t u = 0;
    uint64_t nnz = 0;
    uint32_t g = sc->gen;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t i = sc->rows[r];
        nnz += x->indptr[i + 1] - x->indptr[i];
        for (uint64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++) {
            uint32_t f = x->indices[q];
            if (sc->fstamp[f] != g) { sc->fstamp[f] = g; sc->feats[u++] = f; }
        }
    }
    qsort(sc->feats, u, sizeof *sc->feats, cmp_u32);
    for (uint32_t k = 0; k < u; k++) sc->fmap[sc->feats[k]] = k;
    if (nnz > sc->lx_cap) {
        uint64_t cap = nnz + nnz / 2;
        uint32_t *ni = realloc(sc->lx.indices, cap * sizeof *ni);
        if (!ni) return -1;
        sc->lx.indices = ni;
        float *nd = realloc(sc->lx.data, cap * sizeof *nd);
        if (!nd) return -1;
        sc->lx.data = nd;
        sc->lx_cap = cap;
    }
    uint64_t p = 0;
    sc->lx.indptr[0] = 0;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t i = sc->rows[r];
        for (uint64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++, p++) {
            sc->lx.indices[p] = sc->fmap[x->indices[q]];
            sc->lx.data[p] = x->data[q];
        }
        sc->lx.indptr[r + 1] = p;
    }
    sc->lx.rows = n;
    sc->lx.cols = u;
    *nfeat = u;
    return 0;
}

/* The solver scratch of one worker: the dual's or the primal's. */
typedef struct solver_ws {
    int primal;
    xmci_dcd_ws *dual;
    xmci_tron_ws *tron;
} solver_ws;

/* Puts parent c's rows in sc->rows: its matched instances (ascending), then its children's other positives;
 * sc->lpos maps each to its local row. Returns the number of rows. */
static uint32_t gather_parent_rows(const layer_job *job, train_scratch *sc, uint32_t c)
{
    const xmci_csr *x = job->x;
    const uint32_t *ch = job->child_idx + job->child_ptr[c];
    uint32_t nch = job->child_ptr[c + 1] - job->child_ptr[c];
    const uint32_t *mi = job->mt->indices + job->mt->indptr[c];
    uint32_t mn = (uint32_t)(job->mt->indptr[c + 1] - job->mt->indptr[c]);
    uint32_t g = next_gen(&sc->gen, sc->lstamp, (size_t)x->rows + 1, sc->fstamp, (size_t)x->cols + 1);
    uint32_t nrows = 0;
    for (uint32_t a = 0; a < mn; a++) {
        assert(mi[a] < x->rows && (a == 0 || mi[a - 1] < mi[a]));
        sc->lstamp[mi[a]] = g;
        sc->lpos[mi[a]] = nrows;
        sc->rows[nrows++] = mi[a];
    }
    for (uint32_t k = 0; k < nch; k++) {
        uint32_t j = ch[k];
        for (uint64_t q = job->yt->indptr[j]; q < job->yt->indptr[j + 1]; q++) {
            uint32_t i = job->yt->indices[q];
            assert(i < x->rows);
            if (sc->lstamp[i] != g) { sc->lstamp[i] = g; sc->lpos[i] = nrows; sc->rows[nrows++] = i; }
        }
    }
    assert(nrows <= x->rows);
    return nrows;
}

/* y[a] = +1 where matched instance mi[a] is among the node's positives pi, else -1 (both ascending). */
static void matched_labels(const uint32_t *mi, uint32_t mn, const uint32_t *pi, uint32_t pn, int8_t *y)
{
    uint32_t kk = 0;
    for (uint32_t a = 0; a < mn; a++) {
        while (kk < pn && pi[kk] < mi[a]) kk++;
        y[a] = (kk < pn && pi[kk] == mi[a]) ? 1 : -1;
    }
}

/* Keeps node j's solved weights (oi / ov: m of them, in bx's feature ids, the bias as id nfeat) with global
 * feature ids. 0, or -1 when out of memory. */
static int store_child(layer_job *job, const train_scratch *sc, uint32_t j, const uint32_t *oi, const float *ov,
                       uint32_t m, int local, uint32_t nfeat)
{
    const xmci_csr *x = job->x;
    uint32_t *ci = malloc((m ? m : 1) * sizeof *ci);
    float *cv = malloc((m ? m : 1) * sizeof *cv);
    if (!ci || !cv) {
        free(ci);
        free(cv);
        return -1;
    }
    /* back to global feature ids; the map is increasing, so the order holds; bias is the last id */
    for (uint32_t e = 0; e < m; e++) {
        assert(oi[e] <= nfeat && (e == 0 || oi[e - 1] < oi[e]));
        ci[e] = !local ? oi[e] : oi[e] == nfeat ? x->cols : sc->feats[oi[e]];
    }
    memcpy(cv, ov, m * sizeof *cv);
    job->w_idx[j] = ci;
    job->w_val[j] = cv;
    job->w_nnz[j] = m;
    return 0;
}

/* Trains node j, a child of parent c, on bx (x itself, or the parent's local block of nfeat features) and
 * stores its weights with global feature ids. 0, or -1 when out of memory. */
static int train_child(layer_job *job, train_scratch *sc, solver_ws *sw, uint32_t c, uint32_t j,
                       const xmci_csr *bx, int local, uint32_t nfeat)
{
    const xmci_csr *x = job->x;
    const uint32_t *mi = job->mt->indices + job->mt->indptr[c];
    uint32_t mn = (uint32_t)(job->mt->indptr[c + 1] - job->mt->indptr[c]);
    const uint32_t *pi = job->yt->indices + job->yt->indptr[j];
    uint32_t pn = (uint32_t)(job->yt->indptr[j + 1] - job->yt->indptr[j]);
    /* PECOS's order: the matched instances ascending (positives flagged), then the node's
     * positives the matcher did not route here, ascending */
    matched_labels(mi, mn, pi, pn, sc->y);
    for (uint32_t a = 0; a < mn; a++) sc->inst[a] = local ? a : mi[a];
    uint32_t n = mn, kk = 0;
    for (uint32_t b = 0; b < pn; b++) {
        while (kk < mn && mi[kk] < pi[b]) kk++;
        if (kk < mn && mi[kk] == pi[b]) continue;
        sc->inst[n] = local ? sc->lpos[pi[b]] : pi[b];
        sc->y[n] = 1;
        n++;
    }
    assert(n <= x->rows);
    const uint32_t *oi;
    const float *ov;
    uint32_t w0n = 0;
    float b0 = 0;
    if (job->w0 && job->warm_node[j] < job->w0->rows) {
        /* the serving node's weights in bx's feature ids; features the block lacks would be 0 at the optimum */
        const xmci_csr *w0 = job->w0;
        for (uint64_t q = w0->indptr[job->warm_node[j]]; q < w0->indptr[job->warm_node[j] + 1]; q++) {
            uint32_t f = w0->indices[q];
            if (f == job->warm_nf) { b0 = w0->data[q]; continue; }
            if (job->warm_feat && f < job->warm_nf) f = job->warm_feat[f];
            if (f >= x->cols || (local && sc->fstamp[f] != sc->gen)) continue;
            sc->w0i[w0n] = local ? sc->fmap[f] : f;
            sc->w0v[w0n++] = w0->data[q];
        }
    }
    uint32_t m;
    if (sw->primal) {
        /* |g| <= eps |g(0)| from a start that already fits the old records stops before the few records that
         * changed (new labels' positives) are fitted: a warm solve gets a tighter tolerance */
        xmci_tron_params tp = job->primal;
        if ((w0n || b0 != 0) && job->p->warm_eps_scale > 0) tp.eps *= job->p->warm_eps_scale;
        m = xmci_tron_solve_from(bx, sc->inst, sc->y, n, &tp, sc->w0i, sc->w0v, w0n, b0, sw->tron, &oi, &ov);
        xmci_tron_stats st;
        xmci_tron_last_stats(sw->tron, &st);
        atomic_fetch_add(&job->iters, (unsigned long long)st.newton_iters);
    } else {
        /* the row norms and the features a solve touches are the same for every child of the parent (each solve
         * has the parent's rows, a block's are all of it) */
        xmci_dcd_rows rows = {.sqnorm = local ? sc->lsq : job->x_sqnorm, .dense = (uint64_t)n * 2 >= bx->rows};
        m = xmci_dcd_solve_rows(bx, sc->inst, sc->y, n, job->solver, &rows, sw->dual, &oi, &ov);
        atomic_fetch_add(&job->iters, (unsigned long long)xmci_dcd_last_iters(sw->dual));
    }
    return store_child(job, sc, j, oi, ov, m, local, nfeat);
}

/* 1 if every positive of node j is among parent c's matched instances, so that its solve's instances are those,
 * in that order (train_child), the same for each such sibling. */
static int only_matched(const layer_job *job, uint32_t c, uint32_t j)
{
    const uint32_t *mi = job->mt->indices + job->mt->indptr[c];
    uint32_t mn = (uint32_t)(job->mt->indptr[c + 1] - job->mt->indptr[c]), kk = 0;
    for (uint64_t q = job->yt->indptr[j]; q < job->yt->indptr[j + 1]; q++) {
        uint32_t i = job->yt->indices[q];
        while (kk < mn && mi[kk] < i) kk++;
        if (kk == mn || mi[kk] != i) return 0;
    }
    return 1;
}

typedef struct group_ctx {
    layer_job *job;
    const train_scratch *sc;
    int local;
    uint32_t nfeat;
} group_ctx;

static int keep_group_child(void *arg, int c, const uint32_t *idx, const float *val, uint32_t m, int passes)
{
    group_ctx *g = arg;
    atomic_fetch_add(&g->job->iters, (unsigned long long)passes);
    return store_child(g->job, g->sc, g->sc->group_node[c], idx, val, m, g->local, g->nfeat);
}

/* Trains the g children sc->group_node[0..g) of parent c (each only_matched) in one group of dual solves: the
 * weights train_child would give each. 0, or -1 when out of memory. */
static int train_group(layer_job *job, train_scratch *sc, solver_ws *sw, uint32_t c, int g, const xmci_csr *bx,
                       int local, uint32_t nfeat)
{
    const uint32_t *mi = job->mt->indices + job->mt->indptr[c];
    uint32_t mn = (uint32_t)(job->mt->indptr[c + 1] - job->mt->indptr[c]);
    for (uint32_t a = 0; a < mn; a++) sc->inst[a] = local ? a : mi[a];
    for (int t = 0; t < g; t++) {
        uint32_t j = sc->group_node[t];
        matched_labels(mi, mn, job->yt->indices + job->yt->indptr[j],
                       (uint32_t)(job->yt->indptr[j + 1] - job->yt->indptr[j]), sc->ygroup + (size_t)t * mn);
    }
    xmci_dcd_rows rows = {.sqnorm = local ? sc->lsq : job->x_sqnorm, .dense = (uint64_t)mn * 2 >= bx->rows};
    group_ctx ctx = {job, sc, local, nfeat};
    return xmci_dcd_solve_group(bx, sc->inst, sc->ygroup, mn, g, job->solver, &rows, sw->dual, keep_group_child, &ctx);
}

static void report_progress(layer_job *job)
{
    uint32_t d = atomic_fetch_add(&job->done, 1) + 1;
    if (job->p->progress && (d % 256 == 0 || d == job->nr_nodes)) {
        char what[64];
        snprintf(what, sizeof what, "training layer %u/%u", job->layer + 1, job->depth);
        job->p->progress(job->p->progress_ctx, what, d, job->nr_nodes);
    }
}

/* The parent whose rows a thread has gathered, and how its children train on them. */
typedef struct {
    uint32_t parent;   /* UINT32_MAX: none yet */
    int local;         /* 1: on the block sc->lx of nfeat features; 0: on x itself */
    uint32_t nfeat;
} parent_cache;

/* Trains the children of one work unit, gathering its parent's rows unless pc holds them already. XMC_OK, or
 * XMC_ERR_NOMEM with err set (pc then holds no parent). */
static xmc_err train_unit(layer_job *job, train_scratch *sc, solver_ws *sw, parent_cache *pc, const work_unit *u,
                          xmc_error *err)
{
    const xmci_csr *x = job->x;
    uint32_t c = u->parent;
    if (pc->parent != c) {
        pc->parent = UINT32_MAX;
        uint32_t nrows = gather_parent_rows(job, sc, c);
        /* a parent that sees most of the data (the top layer) trains on x itself */
        pc->local = nrows <= x->rows / 2;
        pc->nfeat = x->cols;
        if (pc->local && build_block(sc, x, nrows, &pc->nfeat))
            return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a training block of %u rows", nrows);
        if (pc->local && job->x_sqnorm)
            for (uint32_t r = 0; r < nrows; r++) sc->lsq[r] = job->x_sqnorm[sc->rows[r]];
        pc->parent = c;
    }
    const xmci_csr *bx = pc->local ? &sc->lx : x;
    for (uint32_t k = u->first; k < u->end;) {
        /* the dual solver takes children whose instances are exactly the parent's matched ones in groups */
        int g = 0;
        while (!sw->primal && k + (uint32_t)g < u->end && g < XMCI_DCD_GROUP &&
               only_matched(job, c, job->child_idx[k + (uint32_t)g]))
            sc->group_node[g] = job->child_idx[k + (uint32_t)g], g++;
        if (g >= 2) {
            if (train_group(job, sc, sw, c, g, bx, pc->local, pc->nfeat))
                return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a group of solves or their weights");
            for (int t = 0; t < g; t++) report_progress(job);
            k += (uint32_t)g;
            continue;
        }
        if (train_child(job, sc, sw, c, job->child_idx[k], bx, pc->local, pc->nfeat))
            return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory storing weights");
        report_progress(job);
        k++;
    }
    return XMC_OK;
}

static void *layer_worker(void *arg)
{
    layer_job *job = arg;
    const xmci_csr *x = job->x;
    solver_ws sw = {.primal = job->solver_type == XMCI_SOLVER_PRIMAL};
    train_scratch sc;
    xmc_error err;
    int ok = 0;
    if (scratch_init(&sc, x->rows, x->cols, job->w0 != NULL)) {
        xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory for a training thread");
    } else if (!(sw.primal ? xmci_tron_ws_new(x->cols, x->rows, &sw.tron, &err)
                           : xmci_dcd_ws_new(x->cols, x->rows, &sw.dual, &err))) {
        ok = 1;
        parent_cache pc = {.parent = UINT32_MAX};
        for (;;) {
            if (atomic_load(&job->failed)) break;
            uint32_t k = atomic_fetch_add(&job->next, 1);
            if (k >= job->nr_units) break;
            if (train_unit(job, &sc, &sw, &pc, &job->units[k], &err)) { ok = 0; break; }
        }
    }
    if (!ok && !atomic_exchange(&job->failed, 1)) job->err = err;
    xmci_dcd_ws_free(sw.dual);
    xmci_tron_ws_free(sw.tron);
    scratch_free(&sc);
    return NULL;
}

/* ---- one layer: what it trains on ------------------------------------------------------------------------ */

/* Union of two CSR sparsity patterns (same shape), values 1, rows sorted. */
static xmc_err pattern_union(const xmci_csr *a, const xmci_csr *b, xmci_csr *out, xmc_error *err)
{
    xmci_csr_builder bld;
    xmc_err rc = xmci_csr_builder_init(&bld, a->cols, err);
    if (rc) return rc;
    for (uint32_t r = 0; r < a->rows; r++) {
        uint64_t i = a->indptr[r], ie = a->indptr[r + 1], j = b->indptr[r], je = b->indptr[r + 1];
        while (i < ie || j < je) {
            uint32_t c;
            if (j >= je || (i < ie && a->indices[i] < b->indices[j])) c = a->indices[i++];
            else if (i >= ie || b->indices[j] < a->indices[i]) c = b->indices[j++];
            else { c = a->indices[i++]; j++; }
            if ((rc = xmci_csr_builder_push(&bld, c, 1.0f, err))) goto fail;
        }
        if ((rc = xmci_csr_builder_end_row(&bld, err))) goto fail;
    }
    xmci_csr_builder_finish(&bld, out);
    out->cols = a->cols;
    return XMC_OK;
fail:
    xmci_csr_builder_free(&bld);
    return rc;
}

/* N x K matrix of the top-`beam` nodes of layer `upto`-1 for every row of x, values 1. */
static xmc_err matcher_predict(const xmci_xlinear *m, const xmci_csr *x, uint32_t upto, uint32_t beam, int post,
                               int threads, xmci_csr *out, xmc_error *err)
{
    xmc_hit *hits = malloc((size_t)x->rows * beam * sizeof *hits);
    uint32_t *counts = malloc(((size_t)x->rows + 1) * sizeof *counts);
    xmc_err rc = XMC_OK;
    if (!hits || !counts) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for matcher predictions"); goto out; }
    if ((rc = xmci_beam_search_batch(m, x, beam, beam, post, upto, threads, hits, counts, err))) goto out;
    uint64_t nnz = 0;
    for (uint32_t r = 0; r < x->rows; r++) nnz += counts[r];
    if ((rc = xmci_csr_alloc(out, x->rows, m->layers[upto - 1].nr_nodes, nnz, err))) goto out;
    uint64_t q = 0;
    for (uint32_t r = 0; r < x->rows; r++) {
        for (uint32_t i = 0; i < counts[r]; i++, q++) {
            out->indices[q] = hits[(size_t)r * beam + i].label;
            out->data[q] = 1.0f;
        }
        out->indptr[r + 1] = q;
    }
    xmci_csr_sort_indices(out);
out:
    free(hits);
    free(counts);
    return rc;
}

static void free_cols(uint32_t **wi, float **wv, uint32_t n)
{
    if (wi) for (uint32_t j = 0; j < n; j++) free(wi[j]);
    if (wv) for (uint32_t j = 0; j < n; j++) free(wv[j]);
}

/* The label chain: ych[t] = N x nodes_t, ych[D-1] = Y (sorted), ych[t] = ych[t+1] * C_{t+1} (patterns). On
 * failure the caller frees what was built. */
static xmc_err label_chain(const xmci_csr *y, const xmci_tree *tree, xmci_csr *ych, xmc_error *err)
{
    const uint32_t D = tree->depth;
    xmc_err rc = xmci_csr_copy(y, &ych[D - 1], err);
    if (rc) return rc;
    xmci_csr_sort_indices(&ych[D - 1]);
    for (int t = (int)D - 2; t >= 0; t--) {
        const xmci_csr *below = &ych[t + 1];
        xmci_csr_builder bld;
        if ((rc = xmci_csr_builder_init(&bld, tree->nr_nodes[t], err))) return rc;
        uint32_t *seen = calloc(tree->nr_nodes[t], sizeof *seen), stamp = 0;
        uint32_t *list = malloc((tree->nr_nodes[t] ? tree->nr_nodes[t] : 1) * sizeof *list);
        if (!seen || !list) { free(seen); free(list); xmci_csr_builder_free(&bld); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
        for (uint32_t r = 0; r < below->rows && !rc; r++) {
            stamp++;
            uint32_t nl = 0;
            for (uint64_t q = below->indptr[r]; q < below->indptr[r + 1]; q++) {
                uint32_t c = tree->parent[t + 1][below->indices[q]];
                assert(c < tree->nr_nodes[t]);
                if (seen[c] != stamp) { seen[c] = stamp; list[nl++] = c; }
            }
            for (uint32_t a = 1; a < nl; a++) { uint32_t v = list[a], b = a; while (b > 0 && list[b - 1] > v) { list[b] = list[b - 1]; b--; } list[b] = v; }
            for (uint32_t a = 0; a < nl && !rc; a++) rc = xmci_csr_builder_push(&bld, list[a], 1.0f, err);
            if (!rc) rc = xmci_csr_builder_end_row(&bld, err);
        }
        free(seen);
        free(list);
        if (rc) { xmci_csr_builder_free(&bld); return rc; }
        xmci_csr_builder_finish(&bld, &ych[t]);
        ych[t].cols = tree->nr_nodes[t];
    }
    return XMC_OK;
}

/* mt = parents x N: the instances matched to each parent of layer t (tfn, man or both), ascending. */
static xmc_err matched_instances(const xmci_xlinear *m, const xmci_csr *x, const xmci_csr *ych, uint32_t t,
                                 const xmci_xlinear_params *p, xmci_csr *mt, xmc_error *err)
{
    xmc_err rc = XMC_OK;
    if (t == 0) {
        if ((rc = xmci_csr_alloc(mt, 1, x->rows, x->rows, err))) return rc;
        for (uint32_t i = 0; i < x->rows; i++) { mt->indices[i] = i; mt->data[i] = 1.0f; }
        mt->indptr[1] = x->rows;
        return XMC_OK;
    }
    uint32_t man_beam = p->man_beam ? p->man_beam : p->beam;
    int man_post = p->man_post >= 0 ? p->man_post : p->post;
    xmci_csr tfn = {0}, man = {0}, match = {0};
    int want_tfn = (p->negatives & XMCI_NEG_TFN) || !(p->negatives & XMCI_NEG_MAN);
    if (want_tfn) rc = xmci_csr_copy(&ych[t - 1], &tfn, err);
    if (!rc && (p->negatives & XMCI_NEG_MAN)) rc = matcher_predict(m, x, t, man_beam, man_post, p->threads, &man, err);
    if (!rc) {
        if (want_tfn && (p->negatives & XMCI_NEG_MAN)) rc = pattern_union(&tfn, &man, &match, err);
        else if (want_tfn) { match = tfn; memset(&tfn, 0, sizeof tfn); }
        else { match = man; memset(&man, 0, sizeof man); }
    }
    xmci_csr_free(&tfn);
    xmci_csr_free(&man);
    if (!rc) rc = xmci_csr_transpose(&match, mt, err);
    xmci_csr_free(&match);
    return rc;
}

/* The children of each parent of layer t, ascending, as *cptr (parents + 1) and *cidx (nodes), owned by the
 * caller. XMC_ERR_NOMEM. */
static xmc_err children_of(const uint32_t *parent, uint32_t nodes, uint32_t parents, uint32_t **cptr_out,
                           uint32_t **cidx_out, xmc_error *err)
{
    uint32_t *cptr = calloc((size_t)parents + 1, sizeof *cptr), *cidx = malloc((nodes ? nodes : 1) * sizeof *cidx);
    if (!cptr || !cidx) {
        free(cptr);
        free(cidx);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    }
    for (uint32_t j = 0; j < nodes; j++) cptr[parent[j] + 1]++;
    for (uint32_t c = 0; c < parents; c++) cptr[c + 1] += cptr[c];
    for (uint32_t j = 0, *fill = cptr; j < nodes; j++) cidx[fill[parent[j]]++] = j;
    for (uint32_t c = parents; c > 0; c--) cptr[c] = cptr[c - 1];
    cptr[0] = 0;
    assert(cptr[parents] == nodes);
    *cptr_out = cptr;
    *cidx_out = cidx;
    return XMC_OK;
}

static int cmp_unit(const void *a, const void *b)
{
    const work_unit *u = a, *v = b;
    if (u->cost != v->cost) return u->cost < v->cost ? 1 : -1;
    if (u->parent != v->parent) return u->parent < v->parent ? -1 : 1;
    return (u->first > v->first) - (u->first < v->first);
}

/* The work units of a layer, largest first, in *units_out (owned by the caller) and their count. A parent's
 * cost is its rows (matched instances and its children's positives) times its children; with T > 1 threads a
 * parent above 1/(4T) of the layer's cost is cut into runs of children of about that cost, so that the T
 * threads have enough pieces to even out (one thread: one unit per parent, no block gathered twice).
 * XMC_ERR_NOMEM. */
static xmc_err plan_units(const layer_job *job, int threads, work_unit **units_out, uint32_t *nr_out, xmc_error *err)
{
    const uint32_t P = job->nr_parents;
    uint64_t total = 0;
    uint64_t *rows = malloc((P ? P : 1) * sizeof *rows);
    if (!rows) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    for (uint32_t c = 0; c < P; c++) {
        uint64_t r = job->mt->indptr[c + 1] - job->mt->indptr[c];
        for (uint32_t k = job->child_ptr[c]; k < job->child_ptr[c + 1]; k++) {
            uint32_t j = job->child_idx[k];
            r += job->yt->indptr[j + 1] - job->yt->indptr[j];   /* an upper bound on the positives added */
        }
        rows[c] = r + 1;
        total += rows[c] * (job->child_ptr[c + 1] - job->child_ptr[c]);
    }
    uint64_t piece = threads > 1 ? total / (4 * (uint64_t)threads) + 1 : UINT64_MAX;
    uint32_t n = 0;
    for (uint32_t c = 0; c < P; c++) {
        uint64_t nch = job->child_ptr[c + 1] - job->child_ptr[c];
        if (!nch) continue;
        uint64_t cost = rows[c] * nch, cuts = cost > piece ? (cost + piece - 1) / piece : 1;
        n += (uint32_t)(cuts < nch ? cuts : nch);
    }
    work_unit *units = malloc((n ? n : 1) * sizeof *units);
    if (!units) { free(rows); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    uint32_t u = 0;
    for (uint32_t c = 0; c < P; c++) {
        uint32_t b = job->child_ptr[c], nch = job->child_ptr[c + 1] - b;
        if (!nch) continue;
        uint64_t cost = rows[c] * nch, cuts = cost > piece ? (cost + piece - 1) / piece : 1;
        uint32_t pieces = (uint32_t)(cuts < nch ? cuts : nch);
        for (uint32_t q = 0; q < pieces; q++) {
            uint32_t first = b + (uint32_t)((uint64_t)nch * q / pieces), end = b + (uint32_t)((uint64_t)nch * (q + 1) / pieces);
            units[u++] = (work_unit){c, first, end, rows[c] * (end - first)};
        }
    }
    assert(u == n);
    free(rows);
    qsort(units, n, sizeof *units, cmp_unit);
    *units_out = units;
    *nr_out = n;
    return XMC_OK;
}

/* Gathers the workers' weight columns into one CSR (node x features+1) and lays the layer out. */
static xmc_err gather_layer(layer_job *job, uint32_t nr_cols, uint32_t parents, xmci_layer *L, xmc_error *err)
{
    uint32_t nodes = job->nr_nodes;
    uint64_t nnz = 0;
    for (uint32_t j = 0; j < nodes; j++) nnz += job->w_nnz[j];
    xmci_csr w;
    xmc_err rc = xmci_csr_alloc(&w, nodes, nr_cols, nnz, err);
    if (rc) return rc;
    uint64_t q = 0;
    for (uint32_t j = 0; j < nodes; j++) {
        memcpy(w.indices + q, job->w_idx[j], job->w_nnz[j] * sizeof *w.indices);
        memcpy(w.data + q, job->w_val[j], job->w_nnz[j] * sizeof *w.data);
        q += job->w_nnz[j];
        w.indptr[j + 1] = q;
    }
    free_cols(job->w_idx, job->w_val, nodes);
    memset(job->w_idx, 0, nodes * sizeof *job->w_idx);
    memset(job->w_val, 0, nodes * sizeof *job->w_val);
    rc = xmci_layer_build(&w, job->parent, parents, L, err);
    xmci_csr_free(&w);
    return rc;
}

/* Trains layer t of out (layers 0..t-1 trained) and lays it out in out->layers[t]. */
static xmc_err train_layer(xmci_xlinear *out, const xmci_csr *x, const float *x_sqnorm, const xmci_csr *ych,
                           const xmci_tree *tree, const xmci_xlinear_params *p, uint32_t t, xmc_error *err)
{
    const uint32_t nodes = tree->nr_nodes[t], parents = t == 0 ? 1 : tree->nr_nodes[t - 1];
    xmci_csr mt = {0}, yt = {0};
    uint32_t *cptr = NULL, *cidx = NULL;
    xmc_err rc = matched_instances(out, x, ych, t, p, &mt, err);
    if (!rc) rc = xmci_csr_transpose(&ych[t], &yt, err);
    /* children of each parent, ascending: workers take one parent (and all its children) at a time */
    if (!rc) rc = children_of(tree->parent[t], nodes, parents, &cptr, &cidx, err);
    layer_job job = {.x = x, .x_sqnorm = x_sqnorm, .mt = &mt, .yt = &yt, .parent = tree->parent[t], .solver = &p->solver,
                     .solver_type = p->solver_type, .nr_nodes = nodes, .nr_parents = parents,
                     .child_ptr = cptr, .child_idx = cidx, .p = p, .layer = t, .depth = tree->depth};
    /* the primal solver shares costs, bias and threshold with the dual; its tolerance is its own */
    xmci_tron_params_default(&job.primal);
    job.primal.cp = p->solver.cp;
    job.primal.cn = p->solver.cn;
    job.primal.bias = p->solver.bias;
    job.primal.threshold = p->solver.threshold;
    job.primal.eps = p->newton_eps;
    job.primal.max_iter = p->newton_max_iter;
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    atomic_init(&job.failed, 0);
    atomic_init(&job.iters, 0);
    xmci_csr w0 = {0};
    /* the label layer starts from the serving label layer; an inner layer from the same layer of the serving
     * tree, when the caller mapped it (a rebuilt tree has no inner map) */
    const uint32_t wl = t + 1 == tree->depth && p->warm ? p->warm->depth - 1 : t;
    if (!rc && p->warm && wl < p->warm->depth && p->warm_node && p->warm_node[t]) {
        rc = xmci_layer_weights(&p->warm->layers[wl], p->warm->nr_features, &w0, err);
        job.w0 = &w0;
        job.warm_node = p->warm_node[t];
        job.warm_feat = p->warm_feat;
        job.warm_nf = p->warm->nr_features;
    }
    if (!rc) {
        job.w_idx = calloc(nodes ? nodes : 1, sizeof *job.w_idx);
        job.w_val = calloc(nodes ? nodes : 1, sizeof *job.w_val);
        job.w_nnz = calloc(nodes ? nodes : 1, sizeof *job.w_nnz);
        if (!job.w_idx || !job.w_val || !job.w_nnz) rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    }
    work_unit *units = NULL;
    if (!rc) rc = plan_units(&job, p->threads, &units, &job.nr_units, err);
    job.units = units;
    if (!rc) {
        xmci_parallel_run(layer_worker, &job, p->threads);
        if (atomic_load(&job.failed)) { rc = job.err.code ? job.err.code : XMC_ERR_NOMEM; if (err) *err = job.err; }
    }
    free(units);
    xmci_csr_free(&mt);
    xmci_csr_free(&yt);
    xmci_csr_free(&w0);
    if (p->solver_iters) *p->solver_iters += atomic_load(&job.iters);
    free(cptr);
    free(cidx);
    if (!rc) rc = gather_layer(&job, x->cols + 1, parents, &out->layers[t], err);
    free_cols(job.w_idx, job.w_val, nodes);
    free(job.w_idx);
    free(job.w_val);
    free(job.w_nnz);
    return rc;
}

/* ---- the model ----------------------------------------------------------------------------------------- */

xmc_err xmci_xlinear_train(const xmci_csr *x, const xmci_csr *y, const xmci_tree *tree, const xmci_xlinear_params *p,
                          xmci_xlinear *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    const uint32_t D = tree->depth;
    if (x->rows != y->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%u feature rows but %u label rows", x->rows, y->rows);
    if (y->cols != tree->nr_nodes[D - 1])
        return xmc_error_set(err, XMC_ERR_SHAPE, "%u labels but the tree has %u", y->cols, tree->nr_nodes[D - 1]);
    if (x->rows == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no training instances");
    if (p->solver_type != XMCI_SOLVER_DUAL && p->solver_type != XMCI_SOLVER_PRIMAL)
        return xmc_error_set(err, XMC_ERR_ARG, "unknown solver type %d", p->solver_type);
    /* the dual solver would need the serving model's dual variables, which a model does not keep */
    if (p->warm && p->solver_type != XMCI_SOLVER_PRIMAL)
        return xmc_error_set(err, XMC_ERR_ARG, "a warm start needs the primal solver");

    out->depth = D;
    out->nr_features = x->cols;
    out->bias = p->solver.bias;
    out->beam = p->beam;
    out->topk = p->topk;
    out->post = p->post;
    out->nr_labels = y->cols;
    out->disentangle = 1;
    out->max_copies = 1;
    xmci_csr ych[XMCI_TREE_MAX_DEPTH];
    memset(ych, 0, sizeof ych);
    xmc_err rc = label_chain(y, tree, ych, err);
    float *sqn = NULL;
    if (!rc && p->solver_type == XMCI_SOLVER_DUAL) {
        if (!(sqn = malloc((size_t)x->rows * sizeof *sqn))) rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        else xmci_dcd_row_sqnorms(x, 0, x->rows, sqn);
    }
    for (uint32_t t = 0; t < D && !rc; t++) rc = train_layer(out, x, sqn, ych, tree, p, t, err);
    free(sqn);
    for (uint32_t t = 0; t < D; t++) xmci_csr_free(&ych[t]);
    if (rc) xmci_xlinear_free(out);
    return rc;
}
