/* xlinear.c: XR-Linear training, layer layout and storage (see xlinear.h).
 *
 * Training goes top-down. For layer t, every node j with parent c is one binary problem over the
 * instances "matched" to c: those whose true path passes c (teacher-forced negatives, tfn) and/or those the
 * model so far routes to c with its beam (matcher-aware negatives, man), plus j's own positives; j's
 * positives are +1, the rest -1, solved by the dual (dcd.h) or primal (tron.h) solver. Problems run on a
 * pool of threads, each with its own solver scratch; after a layer is trained it is laid out for search at
 * once, since man needs it for the next layer. */
#include "xlinear.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "parallel.h"

void xmc_xlinear_params_default(xmc_xlinear_params *p)
{
    memset(p, 0, sizeof *p);
    xmc_dcd_params_default(&p->solver);
    p->solver_type = XMC_SOLVER_DUAL;
    p->newton_eps = 0.01;
    p->newton_max_iter = 1000;
    p->negatives = XMC_NEG_TFN;
    p->beam = 10;
    p->topk = 20;
    p->post = XMC_POST_L3_HINGE;
    p->man_beam = 0;
    p->man_post = -1;
    p->threads = 1;
}

/* ---- layer layout ------------------------------------------------------------------------------------- */

void xmc_layer_free(xmc_layer *L)
{
    if (L->owned) {
        free((void *)L->child_ptr);
        free((void *)L->child_idx);
        free((void *)L->chunk_ptr);
        free((void *)L->row_feat);
        free((void *)L->row_ptr);
        free((void *)L->ent_child);
        free((void *)L->ent_w);
    }
    memset(L, 0, sizeof *L);
}

typedef struct { uint32_t feat, pos; float w; } triple;

static int cmp_triple(const void *a, const void *b)
{
    const triple *x = a, *y = b;
    if (x->feat != y->feat) return x->feat < y->feat ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

xmc_err xmc_layer_build(const xmc_csr *w, const uint32_t *parent, uint32_t nr_parents, xmc_layer *L,
                        xmc_error *err)
{
    memset(L, 0, sizeof *L);
    uint32_t n = w->rows;
    uint64_t nnz = xmc_csr_nnz(w);
    uint32_t *child_ptr = calloc((size_t)nr_parents + 1, sizeof *child_ptr);
    uint32_t *child_idx = malloc((n ? n : 1) * sizeof *child_idx);
    uint64_t *chunk_ptr = calloc((size_t)nr_parents + 1, sizeof *chunk_ptr);
    uint32_t *row_feat = malloc((nnz ? nnz : 1) * sizeof *row_feat);
    uint64_t *row_ptr = malloc((nnz + 1) * sizeof *row_ptr);
    uint32_t *ent_child = malloc((nnz ? nnz : 1) * sizeof *ent_child);
    float *ent_w = malloc((nnz ? nnz : 1) * sizeof *ent_w);
    triple *tmp = NULL;
    xmc_err rc = XMC_OK;
    if (!child_ptr || !child_idx || !chunk_ptr || !row_feat || !row_ptr || !ent_child || !ent_w) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory laying out a layer");
        goto fail;
    }
    for (uint32_t j = 0; j < n; j++) {
        if (parent[j] >= nr_parents) {
            rc = xmc_error_set(err, XMC_ERR_SHAPE, "node %u has parent %u of %u", j, parent[j], nr_parents);
            goto fail;
        }
        child_ptr[parent[j] + 1]++;
    }
    uint32_t maxc = 0;
    for (uint32_t p = 0; p < nr_parents; p++) {
        uint32_t c = child_ptr[p + 1];
        if (c > maxc) maxc = c;
        child_ptr[p + 1] += child_ptr[p];
    }
    {
        uint32_t *fill = malloc(((size_t)nr_parents + 1) * sizeof *fill);
        if (!fill) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto fail; }
        memcpy(fill, child_ptr, ((size_t)nr_parents + 1) * sizeof *fill);
        for (uint32_t j = 0; j < n; j++) child_idx[fill[parent[j]]++] = j;
        free(fill);
    }
    uint64_t maxnnz = 0;
    for (uint32_t p = 0; p < nr_parents; p++) {
        uint64_t s = 0;
        for (uint32_t c = child_ptr[p]; c < child_ptr[p + 1]; c++) {
            uint32_t j = child_idx[c];
            s += w->indptr[j + 1] - w->indptr[j];
        }
        if (s > maxnnz) maxnnz = s;
    }
    tmp = malloc((maxnnz ? maxnnz : 1) * sizeof *tmp);
    if (!tmp) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto fail; }
    uint64_t rows = 0, q = 0;
    row_ptr[0] = 0;
    for (uint32_t p = 0; p < nr_parents; p++) {
        uint64_t m = 0;
        for (uint32_t c = child_ptr[p]; c < child_ptr[p + 1]; c++) {
            uint32_t j = child_idx[c];
            for (uint64_t e = w->indptr[j]; e < w->indptr[j + 1]; e++)
                tmp[m++] = (triple){w->indices[e], c - child_ptr[p], w->data[e]};
        }
        qsort(tmp, m, sizeof *tmp, cmp_triple);
        for (uint64_t i = 0; i < m; i++) {
            if (i == 0 || tmp[i].feat != tmp[i - 1].feat) {
                if (i > 0) row_ptr[rows + 1] = q, rows++;
                row_feat[rows] = tmp[i].feat;
            }
            ent_child[q] = tmp[i].pos;
            ent_w[q] = tmp[i].w;
            q++;
        }
        if (m > 0) row_ptr[rows + 1] = q, rows++;
        chunk_ptr[p + 1] = rows;
    }
    free(tmp);
    L->nr_nodes = n;
    L->nr_parents = nr_parents;
    L->max_children = maxc;
    L->nr_rows = rows;
    L->nnz = q;
    L->child_ptr = child_ptr;
    L->child_idx = child_idx;
    L->chunk_ptr = chunk_ptr;
    L->row_feat = row_feat;
    L->row_ptr = row_ptr;
    L->ent_child = ent_child;
    L->ent_w = ent_w;
    L->owned = 1;
    return XMC_OK;
fail:
    free(child_ptr);
    free(child_idx);
    free(chunk_ptr);
    free(row_feat);
    free(row_ptr);
    free(ent_child);
    free(ent_w);
    free(tmp);
    return rc;
}

xmc_err xmc_layer_weights(const xmc_layer *L, uint32_t nr_features, xmc_csr *w, xmc_error *err)
{
    /* rows per node, then fill in chunk order and sort each row */
    xmc_err rc = xmc_csr_alloc(w, L->nr_nodes, nr_features + 1, L->nnz, err);
    if (rc) return rc;
    for (uint32_t p = 0; p < L->nr_parents; p++)
        for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++)
            for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++)
                w->indptr[L->child_idx[L->child_ptr[p] + L->ent_child[e]] + 1]++;
    for (uint32_t j = 0; j < L->nr_nodes; j++) w->indptr[j + 1] += w->indptr[j];
    uint64_t *fill = malloc(((size_t)L->nr_nodes + 1) * sizeof *fill);
    if (!fill) { xmc_csr_free(w); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    memcpy(fill, w->indptr, ((size_t)L->nr_nodes + 1) * sizeof *fill);
    for (uint32_t p = 0; p < L->nr_parents; p++)
        for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++)
            for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++) {
                uint32_t j = L->child_idx[L->child_ptr[p] + L->ent_child[e]];
                uint64_t at = fill[j]++;
                w->indices[at] = L->row_feat[r];
                w->data[at] = L->ent_w[e];
            }
    free(fill);
    return XMC_OK;
}

void xmc_xlinear_free(xmc_xlinear *m)
{
    for (uint32_t t = 0; t < m->depth && t < XMC_TREE_MAX_DEPTH; t++) xmc_layer_free(&m->layers[t]);
    memset(m, 0, sizeof *m);
}

/* ---- training ----------------------------------------------------------------------------------------- */

typedef struct {
    const xmc_csr *x;
    const xmc_csr *mt;          /* parents x N: instances matched to each parent, ascending */
    const xmc_csr *yt;          /* nodes x N: positives of each node, ascending */
    const uint32_t *parent;
    const xmc_dcd_params *solver;
    int solver_type;            /* XMC_SOLVER_*: which of the two below the workers use */
    xmc_tron_params primal;
    uint32_t nr_nodes, nr_parents;
    const uint32_t *child_ptr;  /* nr_parents + 1: the children of each parent, from the tree */
    const uint32_t *child_idx;
    /* results: one row per node */
    uint32_t **w_idx;
    float **w_val;
    uint32_t *w_nnz;
    atomic_uint next;
    atomic_uint done;
    atomic_int failed;
    xmc_error err;
    const xmc_xlinear_params *p;
    uint32_t layer, depth;
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
    xmc_csr lx;                  /* the local block; arrays grow as needed */
    uint64_t lx_cap;
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
}

static int scratch_init(train_scratch *sc, uint32_t n, uint32_t f)
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
    return sc->lpos && sc->lstamp && sc->fstamp && sc->fmap && sc->rows && sc->feats && sc->inst && sc->y && sc->lx.indptr
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
static int build_block(train_scratch *sc, const xmc_csr *x, uint32_t n, uint32_t *nfeat)
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

static void *layer_worker(void *arg)
{
    layer_job *job = arg;
    const xmc_csr *x = job->x;
    const int primal = job->solver_type == XMC_SOLVER_PRIMAL;
    xmc_dcd_ws *ws = NULL;
    xmc_tron_ws *tws = NULL;
    train_scratch sc;
    xmc_error err;
    if (scratch_init(&sc, x->rows, x->cols)) {
        xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory for a training thread");
        goto fail;
    }
    if (primal ? xmc_tron_ws_new(x->cols, x->rows, &tws, &err) : xmc_dcd_ws_new(x->cols, x->rows, &ws, &err))
        goto fail;
    for (;;) {
        if (atomic_load(&job->failed)) break;
        uint32_t c = atomic_fetch_add(&job->next, 1);
        if (c >= job->nr_parents) break;
        const uint32_t *ch = job->child_idx + job->child_ptr[c];
        uint32_t nch = job->child_ptr[c + 1] - job->child_ptr[c];
        if (!nch) continue;
        /* the parent's rows: its matched instances (ascending), then its children's other positives */
        const uint32_t *mi = job->mt->indices + job->mt->indptr[c];
        uint32_t mn = (uint32_t)(job->mt->indptr[c + 1] - job->mt->indptr[c]);
        uint32_t g = next_gen(&sc.gen, sc.lstamp, (size_t)x->rows + 1, sc.fstamp, (size_t)x->cols + 1);
        uint32_t nrows = 0;
        for (uint32_t a = 0; a < mn; a++) {
            sc.lstamp[mi[a]] = g;
            sc.lpos[mi[a]] = nrows;
            sc.rows[nrows++] = mi[a];
        }
        for (uint32_t k = 0; k < nch; k++) {
            uint32_t j = ch[k];
            for (uint64_t q = job->yt->indptr[j]; q < job->yt->indptr[j + 1]; q++) {
                uint32_t i = job->yt->indices[q];
                if (sc.lstamp[i] != g) { sc.lstamp[i] = g; sc.lpos[i] = nrows; sc.rows[nrows++] = i; }
            }
        }
        /* a parent that sees most of the data (the top layer) trains on x itself */
        int local = nrows <= x->rows / 2;
        uint32_t nfeat = x->cols;
        if (local && build_block(&sc, x, nrows, &nfeat)) {
            xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory for a training block of %u rows", nrows);
            goto fail;
        }
        const xmc_csr *bx = local ? &sc.lx : x;
        for (uint32_t k = 0; k < nch; k++) {
            uint32_t j = ch[k];
            const uint32_t *pi = job->yt->indices + job->yt->indptr[j];
            uint32_t pn = (uint32_t)(job->yt->indptr[j + 1] - job->yt->indptr[j]);
            /* PECOS's order: the matched instances ascending (positives flagged), then the node's
             * positives the matcher did not route here, ascending */
            uint32_t n = 0, kk = 0;
            for (uint32_t a = 0; a < mn; a++) {
                while (kk < pn && pi[kk] < mi[a]) kk++;
                sc.inst[n] = local ? a : mi[a];
                sc.y[n] = (kk < pn && pi[kk] == mi[a]) ? 1 : -1;
                n++;
            }
            kk = 0;
            for (uint32_t b = 0; b < pn; b++) {
                while (kk < mn && mi[kk] < pi[b]) kk++;
                if (kk < mn && mi[kk] == pi[b]) continue;
                sc.inst[n] = local ? sc.lpos[pi[b]] : pi[b];
                sc.y[n] = 1;
                n++;
            }
            const uint32_t *oi;
            const float *ov;
            uint32_t m = primal ? xmc_tron_solve(bx, sc.inst, sc.y, n, &job->primal, tws, &oi, &ov)
                                : xmc_dcd_solve(bx, sc.inst, sc.y, n, job->solver, ws, &oi, &ov);
            uint32_t *ci = malloc((m ? m : 1) * sizeof *ci);
            float *cv = malloc((m ? m : 1) * sizeof *cv);
            if (!ci || !cv) {
                free(ci);
                free(cv);
                xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory storing weights");
                goto fail;
            }
            /* back to global feature ids; the map is increasing, so the order holds; bias is the last id */
            for (uint32_t e = 0; e < m; e++)
                ci[e] = !local ? oi[e] : oi[e] == nfeat ? x->cols : sc.feats[oi[e]];
            memcpy(cv, ov, m * sizeof *cv);
            job->w_idx[j] = ci;
            job->w_val[j] = cv;
            job->w_nnz[j] = m;
            uint32_t d = atomic_fetch_add(&job->done, 1) + 1;
            if (job->p->progress && (d % 256 == 0 || d == job->nr_nodes)) {
                char what[64];
                snprintf(what, sizeof what, "training layer %u/%u", job->layer + 1, job->depth);
                job->p->progress(job->p->progress_ctx, what, d, job->nr_nodes);
            }
        }
    }
    xmc_dcd_ws_free(ws);
    xmc_tron_ws_free(tws);
    scratch_free(&sc);
    return NULL;
fail:
    if (!atomic_exchange(&job->failed, 1)) job->err = err;
    xmc_dcd_ws_free(ws);
    xmc_tron_ws_free(tws);
    scratch_free(&sc);
    return NULL;
}

/* Union of two CSR sparsity patterns (same shape), values 1, rows sorted. */
static xmc_err pattern_union(const xmc_csr *a, const xmc_csr *b, xmc_csr *out, xmc_error *err)
{
    xmc_csr_builder bld;
    xmc_err rc = xmc_csr_builder_init(&bld, a->cols, err);
    if (rc) return rc;
    for (uint32_t r = 0; r < a->rows; r++) {
        uint64_t i = a->indptr[r], ie = a->indptr[r + 1], j = b->indptr[r], je = b->indptr[r + 1];
        while (i < ie || j < je) {
            uint32_t c;
            if (j >= je || (i < ie && a->indices[i] < b->indices[j])) c = a->indices[i++];
            else if (i >= ie || b->indices[j] < a->indices[i]) c = b->indices[j++];
            else { c = a->indices[i++]; j++; }
            if ((rc = xmc_csr_builder_push(&bld, c, 1.0f, err))) goto fail;
        }
        if ((rc = xmc_csr_builder_end_row(&bld, err))) goto fail;
    }
    xmc_csr_builder_finish(&bld, out);
    out->cols = a->cols;
    return XMC_OK;
fail:
    xmc_csr_builder_free(&bld);
    return rc;
}

/* N x K matrix of the top-`beam` nodes of layer `upto`-1 for every row of x, values 1. */
static xmc_err matcher_predict(const xmc_xlinear *m, const xmc_csr *x, uint32_t upto, uint32_t beam, int post,
                               int threads, xmc_csr *out, xmc_error *err)
{
    xmc_hit *hits = malloc((size_t)x->rows * beam * sizeof *hits);
    uint32_t *counts = malloc(((size_t)x->rows + 1) * sizeof *counts);
    xmc_err rc = XMC_OK;
    if (!hits || !counts) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for matcher predictions"); goto out; }
    if ((rc = xmc_beam_search_batch(m, x, beam, beam, post, upto, threads, hits, counts, err))) goto out;
    uint64_t nnz = 0;
    for (uint32_t r = 0; r < x->rows; r++) nnz += counts[r];
    if ((rc = xmc_csr_alloc(out, x->rows, m->layers[upto - 1].nr_nodes, nnz, err))) goto out;
    uint64_t q = 0;
    for (uint32_t r = 0; r < x->rows; r++) {
        for (uint32_t i = 0; i < counts[r]; i++, q++) {
            out->indices[q] = hits[(size_t)r * beam + i].label;
            out->data[q] = 1.0f;
        }
        out->indptr[r + 1] = q;
    }
    xmc_csr_sort_indices(out);
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

xmc_err xmc_xlinear_train(const xmc_csr *x, const xmc_csr *y, const xmc_tree *tree, const xmc_xlinear_params *p,
                          xmc_xlinear *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    const uint32_t D = tree->depth;
    if (x->rows != y->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%u feature rows but %u label rows", x->rows, y->rows);
    if (y->cols != tree->nr_nodes[D - 1])
        return xmc_error_set(err, XMC_ERR_SHAPE, "%u labels but the tree has %u", y->cols, tree->nr_nodes[D - 1]);
    if (x->rows == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no training instances");
    if (p->solver_type != XMC_SOLVER_DUAL && p->solver_type != XMC_SOLVER_PRIMAL)
        return xmc_error_set(err, XMC_ERR_ARG, "unknown solver type %d", p->solver_type);
    out->depth = D;
    out->nr_features = x->cols;
    out->bias = p->solver.bias;
    out->beam = p->beam;
    out->topk = p->topk;
    out->post = p->post;

    xmc_err rc = XMC_OK;
    /* Y chain: ych[t] = N x nodes_t, ych[D-1] = Y, ych[t] = ych[t+1] * C_{t+1} (patterns) */
    xmc_csr ych[XMC_TREE_MAX_DEPTH];
    memset(ych, 0, sizeof ych);
    if ((rc = xmc_csr_copy(y, &ych[D - 1], err))) return rc;
    xmc_csr_sort_indices(&ych[D - 1]);
    for (int t = (int)D - 2; t >= 0; t--) {
        const xmc_csr *below = &ych[t + 1];
        xmc_csr_builder bld;
        if ((rc = xmc_csr_builder_init(&bld, tree->nr_nodes[t], err))) goto out;
        uint32_t *seen = calloc(tree->nr_nodes[t], sizeof *seen), stamp = 0;
        uint32_t *list = malloc((tree->nr_nodes[t] ? tree->nr_nodes[t] : 1) * sizeof *list);
        if (!seen || !list) { free(seen); free(list); xmc_csr_builder_free(&bld); rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        for (uint32_t r = 0; r < below->rows && !rc; r++) {
            stamp++;
            uint32_t nl = 0;
            for (uint64_t q = below->indptr[r]; q < below->indptr[r + 1]; q++) {
                uint32_t c = tree->parent[t + 1][below->indices[q]];
                if (seen[c] != stamp) { seen[c] = stamp; list[nl++] = c; }
            }
            for (uint32_t a = 1; a < nl; a++) { uint32_t v = list[a], b = a; while (b > 0 && list[b - 1] > v) { list[b] = list[b - 1]; b--; } list[b] = v; }
            for (uint32_t a = 0; a < nl && !rc; a++) rc = xmc_csr_builder_push(&bld, list[a], 1.0f, err);
            if (!rc) rc = xmc_csr_builder_end_row(&bld, err);
        }
        free(seen);
        free(list);
        if (rc) { xmc_csr_builder_free(&bld); goto out; }
        xmc_csr_builder_finish(&bld, &ych[t]);
        ych[t].cols = tree->nr_nodes[t];
    }

    uint32_t man_beam = p->man_beam ? p->man_beam : p->beam;
    int man_post = p->man_post >= 0 ? p->man_post : p->post;
    for (uint32_t t = 0; t < D; t++) {
        const uint32_t nodes = tree->nr_nodes[t], parents = t == 0 ? 1 : tree->nr_nodes[t - 1];
        xmc_csr match = {0}, mt = {0}, yt = {0};
        /* instances matched to each parent */
        if (t == 0) {
            if ((rc = xmc_csr_alloc(&mt, 1, x->rows, x->rows, err))) goto out;
            for (uint32_t i = 0; i < x->rows; i++) { mt.indices[i] = i; mt.data[i] = 1.0f; }
            mt.indptr[1] = x->rows;
        } else {
            xmc_csr tfn = {0}, man = {0};
            int want_tfn = (p->negatives & XMC_NEG_TFN) || !(p->negatives & XMC_NEG_MAN);
            if (want_tfn) rc = xmc_csr_copy(&ych[t - 1], &tfn, err);
            if (!rc && (p->negatives & XMC_NEG_MAN))
                rc = matcher_predict(out, x, t, man_beam, man_post, p->threads, &man, err);
            if (!rc) {
                if (want_tfn && (p->negatives & XMC_NEG_MAN)) rc = pattern_union(&tfn, &man, &match, err);
                else if (want_tfn) { match = tfn; memset(&tfn, 0, sizeof tfn); }
                else { match = man; memset(&man, 0, sizeof man); }
            }
            xmc_csr_free(&tfn);
            xmc_csr_free(&man);
            if (!rc) rc = xmc_csr_transpose(&match, &mt, err);
            xmc_csr_free(&match);
            if (rc) goto out;
        }
        if ((rc = xmc_csr_transpose(&ych[t], &yt, err))) { xmc_csr_free(&mt); goto out; }

        /* children of each parent, ascending: workers take one parent (and all its children) at a time */
        uint32_t *cptr = calloc((size_t)parents + 1, sizeof *cptr), *cidx = malloc((nodes ? nodes : 1) * sizeof *cidx);
        if (!cptr || !cidx) {
            free(cptr);
            free(cidx);
            xmc_csr_free(&mt);
            xmc_csr_free(&yt);
            rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t j = 0; j < nodes; j++) cptr[tree->parent[t][j] + 1]++;
        for (uint32_t c = 0; c < parents; c++) cptr[c + 1] += cptr[c];
        for (uint32_t j = 0, *fill = cptr; j < nodes; j++) cidx[fill[tree->parent[t][j]]++] = j;
        for (uint32_t c = parents; c > 0; c--) cptr[c] = cptr[c - 1];
        cptr[0] = 0;
        layer_job job = {.x = x, .mt = &mt, .yt = &yt, .parent = tree->parent[t], .solver = &p->solver,
                         .solver_type = p->solver_type, .nr_nodes = nodes, .nr_parents = parents,
                         .child_ptr = cptr, .child_idx = cidx, .p = p, .layer = t, .depth = D};
        /* the primal solver shares costs, bias and threshold with the dual; its tolerance is its own */
        xmc_tron_params_default(&job.primal);
        job.primal.cp = p->solver.cp;
        job.primal.cn = p->solver.cn;
        job.primal.bias = p->solver.bias;
        job.primal.threshold = p->solver.threshold;
        job.primal.eps = p->newton_eps;
        job.primal.max_iter = p->newton_max_iter;
        atomic_init(&job.next, 0);
        atomic_init(&job.done, 0);
        atomic_init(&job.failed, 0);
        job.w_idx = calloc(nodes ? nodes : 1, sizeof *job.w_idx);
        job.w_val = calloc(nodes ? nodes : 1, sizeof *job.w_val);
        job.w_nnz = calloc(nodes ? nodes : 1, sizeof *job.w_nnz);
        if (!job.w_idx || !job.w_val || !job.w_nnz) {
            rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        } else {
            xmc_parallel_run(layer_worker, &job, p->threads);
            if (atomic_load(&job.failed)) { rc = job.err.code ? job.err.code : XMC_ERR_NOMEM; if (err) *err = job.err; }
        }
        xmc_csr_free(&mt);
        xmc_csr_free(&yt);
        free(cptr);
        free(cidx);
        if (!rc) {
            /* gather the columns into one CSR (node x features+1) and lay the layer out */
            uint64_t nnz = 0;
            for (uint32_t j = 0; j < nodes; j++) nnz += job.w_nnz[j];
            xmc_csr w;
            rc = xmc_csr_alloc(&w, nodes, x->cols + 1, nnz, err);
            if (!rc) {
                uint64_t q = 0;
                for (uint32_t j = 0; j < nodes; j++) {
                    memcpy(w.indices + q, job.w_idx[j], job.w_nnz[j] * sizeof *w.indices);
                    memcpy(w.data + q, job.w_val[j], job.w_nnz[j] * sizeof *w.data);
                    q += job.w_nnz[j];
                    w.indptr[j + 1] = q;
                }
                free_cols(job.w_idx, job.w_val, nodes);
                memset(job.w_idx, 0, nodes * sizeof *job.w_idx);
                memset(job.w_val, 0, nodes * sizeof *job.w_val);
                rc = xmc_layer_build(&w, tree->parent[t], parents, &out->layers[t], err);
                xmc_csr_free(&w);
            }
        }
        free_cols(job.w_idx, job.w_val, nodes);
        free(job.w_idx);
        free(job.w_val);
        free(job.w_nnz);
        if (rc) goto out;
    }
out:
    for (uint32_t t = 0; t < D; t++) xmc_csr_free(&ych[t]);
    if (rc) xmc_xlinear_free(out);
    return rc;
}

/* ---- storage ------------------------------------------------------------------------------------------ */

#define ARR(name_fmt, t) (snprintf(name, sizeof name, name_fmt, t), name)

xmc_err xmc_xlinear_save(const xmc_xlinear *m, xmc_model_writer *w, xmc_error *err)
{
    xmc_err rc;
    char name[64];
    if ((rc = xmc_writer_set_int(w, "xl.depth", m->depth, err)) ||
        (rc = xmc_writer_set_int(w, "xl.nr_features", m->nr_features, err)) ||
        (rc = xmc_writer_set_float(w, "xl.bias", m->bias, err)) ||
        (rc = xmc_writer_set_int(w, "xl.beam", m->beam, err)) ||
        (rc = xmc_writer_set_int(w, "xl.topk", m->topk, err)) ||
        (rc = xmc_writer_set_string(w, "xl.post", xmc_post_name((xmc_post)m->post), err)))
        return rc;
    for (uint32_t t = 0; t < m->depth; t++) {
        const xmc_layer *L = &m->layers[t];
        uint64_t s;
        s = (uint64_t)L->nr_parents + 1;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.child_ptr", t), XMC_DT_U32, 1, &s, L->child_ptr, err))) return rc;
        s = L->nr_nodes;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.child_idx", t), XMC_DT_U32, 1, &s, L->child_idx, err))) return rc;
        s = (uint64_t)L->nr_parents + 1;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.chunk_ptr", t), XMC_DT_U64, 1, &s, L->chunk_ptr, err))) return rc;
        s = L->nr_rows;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.row_feat", t), XMC_DT_U32, 1, &s, L->row_feat, err))) return rc;
        s = L->nr_rows + 1;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.row_ptr", t), XMC_DT_U64, 1, &s, L->row_ptr, err))) return rc;
        s = L->nnz;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.ent_child", t), XMC_DT_U32, 1, &s, L->ent_child, err))) return rc;
        if ((rc = xmc_writer_array(w, ARR("xl.%u.ent_w", t), XMC_DT_F32, 1, &s, L->ent_w, err))) return rc;
    }
    return XMC_OK;
}

static xmc_err get_arr(const xmc_bundle *b, const char *name, xmc_dtype dt, uint64_t want, const void **data,
                       xmc_error *err)
{
    uint64_t shape[1];
    xmc_err rc = xmc_bundle_array(b, name, dt, 1, shape, data, err);
    if (rc) return rc;
    if (want != UINT64_MAX && shape[0] != want)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s: array %s has %llu entries, want %llu", xmc_bundle_dir(b), name,
                             (unsigned long long)shape[0], (unsigned long long)want);
    return XMC_OK;
}

static uint64_t arr_len(const xmc_bundle *b, const char *name, xmc_dtype dt)
{
    uint64_t shape[1];
    const void *d;
    return xmc_bundle_array(b, name, dt, 1, shape, &d, NULL) ? UINT64_MAX : shape[0];
}

xmc_err xmc_xlinear_load(const xmc_bundle *b, xmc_xlinear *m, xmc_error *err)
{
    memset(m, 0, sizeof *m);
    long long depth, nf, beam, topk;
    double bias;
    const char *post;
    xmc_err rc;
    if ((rc = xmc_bundle_get_int(b, "xl.depth", &depth, err)) || (rc = xmc_bundle_get_int(b, "xl.nr_features", &nf, err)) ||
        (rc = xmc_bundle_get_float(b, "xl.bias", &bias, err)) || (rc = xmc_bundle_get_int(b, "xl.beam", &beam, err)) ||
        (rc = xmc_bundle_get_int(b, "xl.topk", &topk, err)) || (rc = xmc_bundle_get_string(b, "xl.post", &post, err)))
        return rc;
    if (depth < 1 || depth > XMC_TREE_MAX_DEPTH || nf < 0 || nf >= UINT32_MAX || beam < 1 || topk < 1 ||
        xmc_post_from_name(post) < 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: bad xl.* values in the manifest", xmc_bundle_dir(b));
    m->depth = (uint32_t)depth;
    m->nr_features = (uint32_t)nf;
    m->bias = (float)bias;
    m->beam = (uint32_t)beam;
    m->topk = (uint32_t)topk;
    m->post = xmc_post_from_name(post);
    char name[64];
    uint32_t prev_nodes = 1;
    for (uint32_t t = 0; t < m->depth; t++) {
        xmc_layer *L = &m->layers[t];
        uint64_t nodes = arr_len(b, ARR("xl.%u.child_idx", t), XMC_DT_U32);
        uint64_t rows = arr_len(b, ARR("xl.%u.row_feat", t), XMC_DT_U32);
        uint64_t nnz = arr_len(b, ARR("xl.%u.ent_w", t), XMC_DT_F32);
        if (nodes == UINT64_MAX || rows == UINT64_MAX || nnz == UINT64_MAX || nodes >= UINT32_MAX)
            return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: layer %u arrays missing or of the wrong type", xmc_bundle_dir(b), t);
        L->nr_nodes = (uint32_t)nodes;
        L->nr_parents = prev_nodes;
        L->nr_rows = rows;
        L->nnz = nnz;
        const void *d;
        if ((rc = get_arr(b, ARR("xl.%u.child_ptr", t), XMC_DT_U32, (uint64_t)prev_nodes + 1, &d, err))) return rc;
        L->child_ptr = d;
        if ((rc = get_arr(b, ARR("xl.%u.child_idx", t), XMC_DT_U32, nodes, &d, err))) return rc;
        L->child_idx = d;
        if ((rc = get_arr(b, ARR("xl.%u.chunk_ptr", t), XMC_DT_U64, (uint64_t)prev_nodes + 1, &d, err))) return rc;
        L->chunk_ptr = d;
        if ((rc = get_arr(b, ARR("xl.%u.row_feat", t), XMC_DT_U32, rows, &d, err))) return rc;
        L->row_feat = d;
        if ((rc = get_arr(b, ARR("xl.%u.row_ptr", t), XMC_DT_U64, rows + 1, &d, err))) return rc;
        L->row_ptr = d;
        if ((rc = get_arr(b, ARR("xl.%u.ent_child", t), XMC_DT_U32, nnz, &d, err))) return rc;
        L->ent_child = d;
        if ((rc = get_arr(b, ARR("xl.%u.ent_w", t), XMC_DT_F32, nnz, &d, err))) return rc;
        L->ent_w = d;
        /* every pointer monotone and in range, every index in range: a damaged file must not crash search */
        const char *dir = xmc_bundle_dir(b);
        if (L->child_ptr[0] != 0 || L->child_ptr[prev_nodes] != nodes || L->chunk_ptr[0] != 0 ||
            L->chunk_ptr[prev_nodes] != rows || L->row_ptr[0] != 0 || L->row_ptr[rows] != nnz)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: pointer arrays do not span their data", dir, t);
        /* bound every pointer before following any of them */
        for (uint32_t p = 0; p < prev_nodes; p++)
            if (L->child_ptr[p + 1] < L->child_ptr[p] || L->chunk_ptr[p + 1] < L->chunk_ptr[p] ||
                L->child_ptr[p + 1] > nodes || L->chunk_ptr[p + 1] > rows)
                return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: pointers decrease or overrun at parent %u", dir, t, p);
        for (uint64_t r = 0; r < rows; r++)
            if (L->row_ptr[r + 1] < L->row_ptr[r] || L->row_ptr[r + 1] > nnz)
                return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: row pointers decrease or overrun at row %llu", dir, t,
                                     (unsigned long long)r);
        uint32_t maxc = 0;
        for (uint32_t p = 0; p < prev_nodes; p++) {
            uint32_t c = L->child_ptr[p + 1] - L->child_ptr[p];
            if (c > maxc) maxc = c;
            for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++) {
                if (L->row_ptr[r + 1] < L->row_ptr[r] || L->row_feat[r] > m->nr_features ||
                    (r > L->chunk_ptr[p] && L->row_feat[r] <= L->row_feat[r - 1]))
                    return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: bad weight row %llu", dir, t, (unsigned long long)r);
                for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++)
                    if (L->ent_child[e] >= c)
                        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: entry %llu names child %u of %u", dir, t,
                                             (unsigned long long)e, L->ent_child[e], c);
            }
        }
        for (uint64_t j = 0; j < nodes; j++)
            if (L->child_idx[j] >= nodes)
                return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: child index out of range", dir, t);
        L->max_children = maxc;
        L->owned = 0;
        prev_nodes = (uint32_t)nodes;
    }
    return XMC_OK;
}
