/* dcd.c: dual coordinate descent for the L2-loss SVM (see dcd.h).
 *
 * The weight vector is a dense float array over the features that stays all-zero between solves: the
 * features a problem can touch (the union of its instances' features) are listed before the solve and
 * cleared after, so one solve costs O(nnz of its instances * passes), never O(features). Arithmetic
 * follows PECOS: float32 weights, dual variables and dot products; the step in double. */
#include "dcd.h"

#include <assert.h>
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "rng.h"

void xmci_dcd_params_default(xmci_dcd_params *p)
{
    p->cp = 1.0;
    p->cn = 1.0;
    p->eps = 0.1;
    p->max_iter = 100;
    p->bias = 1.0f;
    p->threshold = 0.1f;
    p->seed = 0;
}

/* What a coordinate step reads of one instance, in one place: taken in shuffled order, separate arrays (position
 * -> row -> row start, label, dual variable, diagonal) cost a chain of cache misses per step. */
typedef struct dcd_inst {
    uint64_t beg;        /* the row's span in x */
    uint32_t len;
    uint32_t run;        /* from beg + run to the row's end its features are consecutive (len: no such run) */
    float alpha;
    float qd;
    int32_t y;
} dcd_inst;

struct xmci_dcd_ws {
    uint32_t nr_features, max_inst;
    float *w;            /* dense, zero between solves */
    uint32_t *stamp;     /* feature -> last solve that listed it */
    uint32_t gen;
    uint32_t *touched;
    uint32_t *index;     /* positions 0..n-1, shuffled */
    dcd_inst *in;        /* per position: its row, label, dual variable and diagonal */
    uint32_t *out_idx;
    float *out_val;
    int iters;           /* passes the last solve made */
    xmc_rng seeded;      /* mt19937(seeded_with), copied at each solve's start instead of seeding anew */
    uint32_t seeded_with;
    int has_seeded;
};

xmc_err xmci_dcd_ws_new(uint32_t nr_features, uint32_t max_inst, xmci_dcd_ws **out, xmc_error *err)
{
    xmci_dcd_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    size_t f = (size_t)nr_features + 1, m = max_inst ? max_inst : 1;
    ws->nr_features = nr_features;
    ws->max_inst = max_inst;
    ws->w = calloc(f, sizeof *ws->w);
    ws->stamp = calloc(f, sizeof *ws->stamp);
    ws->touched = malloc(f * sizeof *ws->touched);
    ws->out_idx = malloc(f * sizeof *ws->out_idx);
    ws->out_val = malloc(f * sizeof *ws->out_val);
    ws->index = malloc(m * sizeof *ws->index);
    ws->in = malloc(m * sizeof *ws->in);
    if (!ws->w || !ws->stamp || !ws->touched || !ws->out_idx || !ws->out_val || !ws->index || !ws->in) {
        xmci_dcd_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for solver scratch (%u features, %u instances)",
                             nr_features, max_inst);
    }
    *out = ws;
    return XMC_OK;
}

void xmci_dcd_ws_free(xmci_dcd_ws *ws)
{
    if (!ws) return;
    free(ws->w);
    free(ws->stamp);
    free(ws->touched);
    free(ws->out_idx);
    free(ws->out_val);
    free(ws->index);
    free(ws->in);
    free(ws);
}

/* w . x_r with four partial sums: a single running sum is one long chain of dependent adds, and the
 * solver spends most of its time here. */
static inline float sparse_dot(const float *w, const uint32_t *xi, const float *xv, uint64_t b, uint64_t e)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint64_t q = b;
    for (; q + 4 <= e; q += 4) {
        s0 += w[xi[q]] * xv[q];
        s1 += w[xi[q + 1]] * xv[q + 1];
        s2 += w[xi[q + 2]] * xv[q + 2];
        s3 += w[xi[q + 3]] * xv[q + 3];
    }
    for (; q < e; q++) s0 += w[xi[q]] * xv[q];
    return (s0 + s1) + (s2 + s3);
}

/* Rows whose features end in a long run of consecutive ids (dense features, an embedding appended to TF-IDF)
 * read that run's weights as a block instead of one gathered load each. */
#define DCD_MIN_RUN 16

/* The start (offset from b) of the row's final run of consecutive feature ids if it is at least DCD_MIN_RUN
 * long, else e - b. */
static uint32_t final_run(const uint32_t *xi, uint64_t b, uint64_t e)
{
    uint64_t t = e;
    if (e - b >= DCD_MIN_RUN) {
        t = e - 1;
        while (t > b && xi[t - 1] + 1 == xi[t]) t--;
        if (e - t < DCD_MIN_RUN) t = e;
    }
    return (uint32_t)(t - b);
}

/* sparse_dot's sums, each the same additions in the same order (so the same bits), with the entries from t on
 * (consecutive features) taken four at a time: entry q of a whole block of four goes to partial sum (q - b) % 4,
 * the last len % 4 to the first. */
static inline float run_dot(const float *w, const uint32_t *xi, const float *xv, uint64_t b, uint64_t e, uint64_t t)
{
    float s[4] = {0, 0, 0, 0};
    const uint64_t blocks = b + ((e - b) & ~(uint64_t)3);
    uint64_t q = b;
    for (; q < blocks && (q < t || ((q - b) & 3)); q++) s[(q - b) & 3] += w[xi[q]] * xv[q];
    if (q < blocks) {
        const float *wr = w + xi[q];
#ifdef __SSE2__
        __m128 acc = _mm_loadu_ps(s);
        for (uint64_t j = q; j < blocks; j += 4)
            acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(wr + (j - q)), _mm_loadu_ps(xv + j)));
        _mm_storeu_ps(s, acc);
#else
        for (uint64_t j = q; j < blocks; j++) s[(j - b) & 3] += wr[j - q] * xv[j];
#endif
        q = blocks;
    }
    for (; q < e; q++) s[0] += w[xi[q]] * xv[q];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* w += d x_r, the run from t on as a block (each entry's update is the same either way). */
static inline void run_axpy(float *w, const uint32_t *xi, const float *xv, uint64_t b, uint64_t e, uint64_t t, float d)
{
    for (uint64_t q = b; q < t; q++) w[xi[q]] += d * xv[q];
    if (t >= e) return;
    float *wr = w + xi[t];
    uint64_t q = t;
#ifdef __SSE2__
    const __m128 dv = _mm_set1_ps(d);
    for (; q + 4 <= e; q += 4)
        _mm_storeu_ps(wr + (q - t), _mm_add_ps(_mm_loadu_ps(wr + (q - t)), _mm_mul_ps(dv, _mm_loadu_ps(xv + q))));
#endif
    for (; q < e; q++) wr[q - t] += d * xv[q];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sets up the dual variables, the diagonal terms and the order of the instances, and lists the features the
 * problem can touch in ws->touched (returns how many), unless the caller said most are (rows->dense) and the
 * threshold is > 0: the solve then clears and collects over every column (returns x->cols). */
static uint32_t list_features(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                              const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws, int *all_cols)
{
    const double diag_p = 0.5 / p->cp, diag_n = 0.5 / p->cn;
    const float bias = p->bias;
    const float *sqn = rows ? rows->sqnorm : NULL;
    /* with a threshold > 0 a feature never touched stays 0 and is dropped, so listing them is not needed */
    *all_cols = rows && rows->dense && p->threshold > 0;
    const int list = !*all_cols;
    if (list && ++ws->gen == 0) {
        memset(ws->stamp, 0, ((size_t)ws->nr_features + 1) * sizeof *ws->stamp);
        ws->gen = 1;
    }
    uint32_t nt = 0;
    for (uint32_t s = 0; s < n; s++) {
        uint32_t r = inst[s];
        assert(r < x->rows);
        float sq = 0;
        if (list) {
            for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) {
                uint32_t f = x->indices[q];
                assert(f < x->cols);
                if (ws->stamp[f] != ws->gen) { ws->stamp[f] = ws->gen; ws->touched[nt++] = f; }
                if (!sqn) sq += x->data[q] * x->data[q];
            }
        }
        if (sqn) sq = sqn[r];
        else if (!list) xmci_dcd_row_sqnorms(x, r, r + 1, &sq);
        ws->in[s] = (dcd_inst){.beg = x->indptr[r], .len = (uint32_t)(x->indptr[r + 1] - x->indptr[r]),
                               .run = final_run(x->indices, x->indptr[r], x->indptr[r + 1]), .alpha = 0,
                               .qd = (float)((y[s] > 0 ? diag_p : diag_n) + sq + (bias > 0 ? (double)bias * bias : 0.0)),
                               .y = y[s] > 0 ? 1 : -1};
        ws->index[s] = s;
    }
    assert(nt <= x->cols);
    return *all_cols ? x->cols : nt;
}

void xmci_dcd_row_sqnorms(const xmci_csr *x, uint32_t first, uint32_t end, float *out)
{
    for (uint32_t r = first; r < end; r++) {
        float sq = 0;
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) sq += x->data[q] * x->data[q];
        out[r - first] = sq;
    }
}

/* The coordinate descent passes with shrinking, on ws->w and ws->in[].alpha; returns the bias weight. */
static float descend(const xmci_csr *x, uint32_t n, const xmci_dcd_params *p, xmci_dcd_ws *ws)
{
    float *w = ws->w;
    const uint32_t *xi = x->indices;
    const float *xv = x->data;
    dcd_inst *in = ws->in;
    uint32_t *index = ws->index;
    const float bias = p->bias;
    const double diag_p = 0.5 / p->cp, diag_n = 0.5 / p->cn;
    float b = 0;

    if (!ws->has_seeded || ws->seeded_with != p->seed) {
        xmc_rng_seed(&ws->seeded, p->seed);
        ws->seeded_with = p->seed;
        ws->has_seeded = 1;
    }
    xmc_rng rng = ws->seeded;
    double pgmax_old = INFINITY, pgmin_old = -INFINITY;
    uint32_t active = n;
    int iter = 0;
    while (iter < p->max_iter) {
        double pgmax_new = -INFINITY, pgmin_new = INFINITY;
        xmc_rng_shuffle_u32(&rng, index, active);
        for (uint32_t s = 0; s < active; s++) {
            uint32_t k = index[s];
            assert(k < n && active <= n);
            /* rows are short (a title: ~10 features) and taken in shuffled order: fetching the instance two
             * steps ahead and the next one's row now overlaps their loads with this step's work (a hint only:
             * shrinking may reorder what comes next) */
            if (s + 2 < active) __builtin_prefetch(in + index[s + 2]);
            if (s + 1 < active) {
                uint64_t nb = in[index[s + 1]].beg;
                __builtin_prefetch(xi + nb);
                __builtin_prefetch(xv + nb);
            }
            dcd_inst *ik = in + k;
            const uint64_t rb = ik->beg, re = rb + ik->len;
            assert(re <= x->indptr[x->rows]);
            int yi = ik->y;
            const uint64_t rt = rb + ik->run;
            float dot = rt < re ? run_dot(w, xi, xv, rb, re, rt) : sparse_dot(w, xi, xv, rb, re);
            if (bias > 0) dot += b * bias;
            double diag = yi > 0 ? diag_p : diag_n;
            double g = yi * (double)dot - 1.0 + ik->alpha * diag;
            double pg = 0;
            if (ik->alpha == 0) {
                if (g > pgmax_old) {
                    active--;
                    index[s] = index[active];
                    index[active] = k;
                    s--;
                    continue;
                } else if (g < 0) {
                    pg = g;
                }
            } else {
                pg = g;
            }
            if (pg > pgmax_new) pgmax_new = pg;
            if (pg < pgmin_new) pgmin_new = pg;
            if (fabs(pg) > 1e-12) {
                float old = ik->alpha;
                double na = old - g / ik->qd;
                ik->alpha = (float)(na > 0 ? na : 0);
                float d = (float)(((double)ik->alpha - old) * yi);
                run_axpy(w, xi, xv, rb, re, rt, d);
                if (bias > 0) b += d * bias;
            }
        }
        iter++;
        if (pgmax_new - pgmin_new <= p->eps) {
            if (active == n) break;
            active = n;
            pgmax_old = INFINITY;
            pgmin_old = -INFINITY;
            continue;
        }
        pgmax_old = pgmax_new;
        pgmin_old = pgmin_new;
        if (pgmax_old <= 0) pgmax_old = INFINITY;
        if (pgmin_old >= 0) pgmin_old = -INFINITY;
    }
    (void)pgmin_old;
    ws->iters = iter;
    return b;
}

uint32_t xmci_dcd_solve_rows(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                            const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws,
                            const uint32_t **out_idx, const float **out_val)
{
    assert(x->cols <= ws->nr_features && n <= ws->max_inst);
    float *w = ws->w;
    int all_cols;
    uint32_t nt = list_features(x, inst, y, n, p, rows, ws, &all_cols);
    float b = descend(x, n, p, ws);

    /* collect kept weights in feature order, then clear the dense vector */
    uint32_t m = 0;
    if (p->threshold > 0 && (uint64_t)nt * 8 > x->cols) {
        /* most of a (local, renumbered) block was touched: one pass over w in order is cheaper than sorting, and
         * keeps the same weights, since w is zero off the touched features and a zero never passes a threshold > 0 */
        for (uint32_t f = 0; f < x->cols; f++)
            if (fabsf(w[f]) >= p->threshold) ws->out_idx[m++] = f;
    } else {
        for (uint32_t t = 0; t < nt; t++)
            if (fabsf(w[ws->touched[t]]) >= p->threshold) ws->out_idx[m++] = ws->touched[t];
        qsort(ws->out_idx, m, sizeof *ws->out_idx, cmp_u32);
    }
    for (uint32_t t = 0; t < m; t++) ws->out_val[t] = w[ws->out_idx[t]];
    if (all_cols) memset(w, 0, (size_t)x->cols * sizeof *w);
    else for (uint32_t t = 0; t < nt; t++) w[ws->touched[t]] = 0;
    if (p->bias > 0 && fabsf(b) >= p->threshold) { ws->out_idx[m] = x->cols; ws->out_val[m] = b; m++; }
    *out_idx = ws->out_idx;
    *out_val = ws->out_val;
    return m;
}

uint32_t xmci_dcd_solve(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                       const xmci_dcd_params *p, xmci_dcd_ws *ws, const uint32_t **out_idx, const float **out_val)
{
    return xmci_dcd_solve_rows(x, inst, y, n, p, NULL, ws, out_idx, out_val);
}

int xmci_dcd_last_iters(const xmci_dcd_ws *ws) { return ws->iters; }
