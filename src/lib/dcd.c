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
    float *sq;           /* per position: the row's sum of squares (list_features) */
    float *gw;           /* groups: (nr_features + 1) x XMCI_DCD_GROUP weights, zero between solves; NULL until one */
    float *galpha;       /* groups: per instance, XMCI_DCD_GROUP dual variables */
    float *gqd;          /* groups: per position, the diagonal term of a positive, then of a negative */
    int8_t *gy;          /* groups: per position, XMCI_DCD_GROUP labels side by side */
    uint32_t *gindex;    /* groups: the shared pass order */
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
    ws->sq = malloc(m * sizeof *ws->sq);
    if (!ws->sq || !ws->w || !ws->stamp || !ws->touched || !ws->out_idx || !ws->out_val || !ws->index || !ws->in) {
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
    free(ws->sq);
    free(ws->gw);
    free(ws->galpha);
    free(ws->gqd);
    free(ws->gindex);
    free(ws->gy);
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
        ws->sq[s] = sq;
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

/* Where a solve stands: between passes (in_pass 0) or at position s of pass iter, its order drawn (a solve taken
 * over from a group mid-pass, see xmci_dcd_solve_group). */
typedef struct dcd_state {
    xmc_rng rng;
    double pgmax_old, pgmin_old, pgmax_new, pgmin_new;
    uint32_t active, s;
    int iter, in_pass;
    float b;
} dcd_state;

static void state_start(xmci_dcd_ws *ws, const xmci_dcd_params *p, uint32_t n, dcd_state *st)
{
    if (!ws->has_seeded || ws->seeded_with != p->seed) {
        xmc_rng_seed(&ws->seeded, p->seed);
        ws->seeded_with = p->seed;
        ws->has_seeded = 1;
    }
    *st = (dcd_state){.rng = ws->seeded, .pgmax_old = INFINITY, .pgmin_old = -INFINITY, .active = n};
}

/* A pass's end: the stopping test and the bounds the next pass shrinks by. Returns 1 when the solve is done. */
static int pass_end(dcd_state *st, uint32_t n, double eps)
{
    st->iter++;
    if (st->pgmax_new - st->pgmin_new <= eps) {
        if (st->active == n) return 1;
        st->active = n;
        st->pgmax_old = INFINITY;
        st->pgmin_old = -INFINITY;
        return 0;
    }
    st->pgmax_old = st->pgmax_new;
    st->pgmin_old = st->pgmin_new;
    if (st->pgmax_old <= 0) st->pgmax_old = INFINITY;
    if (st->pgmin_old >= 0) st->pgmin_old = -INFINITY;
    return 0;
}

/* A coordinate step's projected gradient (liblinear's) into *pg from its gradient g and dual variable; 1 when the
 * coordinate is to be shrunk instead (at its bound 0, with a gradient above the last pass's largest). */
static inline int projected(float alpha, double g, double max_old, double *pg)
{
    *pg = 0;
    if (alpha == 0) {
        if (g > max_old) return 1;
        if (g < 0) *pg = g;
    } else {
        *pg = g;
    }
    return 0;
}

/* The coordinate descent passes with shrinking, on ws->w, ws->in[].alpha and ws->index, from st to the end;
 * returns the bias weight. */
static float descend_from(const xmci_csr *x, uint32_t n, const xmci_dcd_params *p, xmci_dcd_ws *ws, dcd_state *st)
{
    float *w = ws->w;
    const uint32_t *xi = x->indices;
    const float *xv = x->data;
    dcd_inst *in = ws->in;
    uint32_t *index = ws->index;
    const float bias = p->bias;
    const double diag_p = 0.5 / p->cp, diag_n = 0.5 / p->cn;
    float b = st->b;
    xmc_rng rng = st->rng;
    while (st->iter < p->max_iter) {
        /* the pass's hot values in locals (st's fields could alias index[] as far as the compiler knows) */
        const double pgmax_old = st->pgmax_old;
        uint32_t active = st->active;
        double pgmax_new = st->pgmax_new, pgmin_new = st->pgmin_new;
        uint32_t s = st->in_pass ? st->s : 0;
        if (!st->in_pass) {
            pgmax_new = -INFINITY;
            pgmin_new = INFINITY;
            xmc_rng_shuffle_u32(&rng, index, active);
        }
        for (; s < active; s++) {
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
            double pg;
            if (projected(ik->alpha, g, pgmax_old, &pg)) {
                active--;
                index[s] = index[active];
                index[active] = k;
                s--;
                continue;
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
        st->in_pass = 0;
        st->active = active;
        st->pgmax_new = pgmax_new;
        st->pgmin_new = pgmin_new;
        if (pass_end(st, n, p->eps)) break;
    }
    ws->iters = st->iter;
    return b;
}

/* Kept weights of the vector at w[f * stride] in feature order, into ws->out_idx / out_val (the bias weight b
 * last, as feature x->cols); returns the count. nt, all_cols: as list_features gave them. */
static uint32_t collect(const xmci_csr *x, const xmci_dcd_params *p, xmci_dcd_ws *ws, const float *w, size_t stride,
                        uint32_t nt, float b)
{
    uint32_t m = 0;
    if (p->threshold > 0 && (uint64_t)nt * 8 > x->cols) {
        /* most of a (local, renumbered) block was touched: one pass over w in order is cheaper than sorting, and
         * keeps the same weights, since w is zero off the touched features and a zero never passes a threshold > 0 */
        for (uint32_t f = 0; f < x->cols; f++)
            if (fabsf(w[f * stride]) >= p->threshold) ws->out_idx[m++] = f;
    } else {
        for (uint32_t t = 0; t < nt; t++)
            if (fabsf(w[ws->touched[t] * stride]) >= p->threshold) ws->out_idx[m++] = ws->touched[t];
        qsort(ws->out_idx, m, sizeof *ws->out_idx, cmp_u32);
    }
    for (uint32_t t = 0; t < m; t++) ws->out_val[t] = w[ws->out_idx[t] * stride];
    if (p->bias > 0 && fabsf(b) >= p->threshold) { ws->out_idx[m] = x->cols; ws->out_val[m] = b; m++; }
    return m;
}

/* Sets w[f * stride] = 0 for every feature the solve may have touched. */
static void clear_touched(const xmci_csr *x, xmci_dcd_ws *ws, float *w, size_t stride, uint32_t nt, int all_cols)
{
    if (all_cols) memset(w, 0, (size_t)x->cols * stride * sizeof *w);
    else for (uint32_t t = 0; t < nt; t++) memset(w + ws->touched[t] * stride, 0, stride * sizeof *w);
}

uint32_t xmci_dcd_solve_rows(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                            const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws,
                            const uint32_t **out_idx, const float **out_val)
{
    assert(x->cols <= ws->nr_features && n <= ws->max_inst);
    int all_cols;
    uint32_t nt = list_features(x, inst, y, n, p, rows, ws, &all_cols);
    dcd_state st;
    state_start(ws, p, n, &st);
    float b = descend_from(x, n, p, ws, &st);
    uint32_t m = collect(x, p, ws, ws->w, 1, nt, b);
    clear_touched(x, ws, ws->w, 1, nt, all_cols);
    *out_idx = ws->out_idx;
    *out_val = ws->out_val;
    return m;
}

/* ---- several problems over the same instances at once -------------------------------------------------------
 *
 * Why: the children of one parent are trained over the same rows in the same order, and every solve starts from
 * the same seed, so until a solve first shrinks, its pass orders are those of its siblings (no shrinking can
 * happen in the first pass, and in practice none for the first few). Taken together, a step reads the row and
 * its instance once for XMCI_DCD_GROUP solves, and their weights, laid out side by side (W[f * GROUP + c]), are
 * multiplied a feature at a time in vector registers: each solve's sums are the same additions in the same order
 * as its own sparse_dot, so the weights are the same bits. A solve that shrinks leaves the group there and goes
 * on alone (descend_from from the group's state: its order, dual variables and weights). */

#define G XMCI_DCD_GROUP

static int group_reserve(xmci_dcd_ws *ws)
{
    if (ws->gw) return 0;
    size_t f = (size_t)ws->nr_features + 1, m = ws->max_inst ? ws->max_inst : 1;
    ws->gw = calloc(f * G, sizeof *ws->gw);
    ws->galpha = malloc(m * G * sizeof *ws->galpha);
    ws->gqd = malloc(m * 2 * sizeof *ws->gqd);
    ws->gindex = malloc(m * sizeof *ws->gindex);
    ws->gy = malloc(m * G);
    if (ws->gw && ws->galpha && ws->gqd && ws->gindex && ws->gy) return 0;
    free(ws->gw), free(ws->galpha), free(ws->gqd), free(ws->gindex), free(ws->gy);
    ws->gw = NULL, ws->galpha = NULL, ws->gqd = NULL, ws->gindex = NULL, ws->gy = NULL;
    return -1;
}

/* out[c] = W[., c] . x_r for the G columns, each sum as sparse_dot adds it. */
static inline void group_dot(const float *W, const uint32_t *xi, const float *xv, uint64_t b, uint64_t e, float *out)
{
#ifdef __SSE2__
    __m128 s0a = _mm_setzero_ps(), s0b = s0a, s1a = s0a, s1b = s0a, s2a = s0a, s2b = s0a, s3a = s0a, s3b = s0a;
    uint64_t q = b;
    for (; q + 4 <= e; q += 4) {
        const float *w0 = W + (size_t)xi[q] * G, *w1 = W + (size_t)xi[q + 1] * G;
        const float *w2 = W + (size_t)xi[q + 2] * G, *w3 = W + (size_t)xi[q + 3] * G;
        const __m128 v0 = _mm_set1_ps(xv[q]), v1 = _mm_set1_ps(xv[q + 1]);
        const __m128 v2 = _mm_set1_ps(xv[q + 2]), v3 = _mm_set1_ps(xv[q + 3]);
        s0a = _mm_add_ps(s0a, _mm_mul_ps(_mm_loadu_ps(w0), v0));
        s0b = _mm_add_ps(s0b, _mm_mul_ps(_mm_loadu_ps(w0 + 4), v0));
        s1a = _mm_add_ps(s1a, _mm_mul_ps(_mm_loadu_ps(w1), v1));
        s1b = _mm_add_ps(s1b, _mm_mul_ps(_mm_loadu_ps(w1 + 4), v1));
        s2a = _mm_add_ps(s2a, _mm_mul_ps(_mm_loadu_ps(w2), v2));
        s2b = _mm_add_ps(s2b, _mm_mul_ps(_mm_loadu_ps(w2 + 4), v2));
        s3a = _mm_add_ps(s3a, _mm_mul_ps(_mm_loadu_ps(w3), v3));
        s3b = _mm_add_ps(s3b, _mm_mul_ps(_mm_loadu_ps(w3 + 4), v3));
    }
    for (; q < e; q++) {
        const float *w0 = W + (size_t)xi[q] * G;
        const __m128 v0 = _mm_set1_ps(xv[q]);
        s0a = _mm_add_ps(s0a, _mm_mul_ps(_mm_loadu_ps(w0), v0));
        s0b = _mm_add_ps(s0b, _mm_mul_ps(_mm_loadu_ps(w0 + 4), v0));
    }
    _mm_storeu_ps(out, _mm_add_ps(_mm_add_ps(s0a, s1a), _mm_add_ps(s2a, s3a)));
    _mm_storeu_ps(out + 4, _mm_add_ps(_mm_add_ps(s0b, s1b), _mm_add_ps(s2b, s3b)));
#else
    float s[4][G] = {{0}};
    uint64_t q = b;
    for (; q + 4 <= e; q += 4)
        for (int j = 0; j < 4; j++)
            for (int c = 0; c < G; c++) s[j][c] += W[(size_t)xi[q + j] * G + c] * xv[q + j];
    for (; q < e; q++)
        for (int c = 0; c < G; c++) s[0][c] += W[(size_t)xi[q] * G + c] * xv[q];
    for (int c = 0; c < G; c++) out[c] = (s[0][c] + s[1][c]) + (s[2][c] + s[3][c]);
#endif
}

/* One solve's coordinate step in a group, once its gradient g says so (as descend_from's). */
static inline void group_update(float *W, const uint32_t *xi, const float *xv, uint64_t rb, uint64_t re, float *ak,
                                float *bw, int c, int yi, double g, float qd, float bias)
{
    const float old = ak[c];
    const double na = old - g / qd;
    ak[c] = (float)(na > 0 ? na : 0);
    const float d = (float)(((double)ak[c] - old) * yi);
    for (uint64_t q = rb; q < re; q++) W[(size_t)xi[q] * G + c] += d * xv[q];
    if (bias > 0) bw[c] += d * bias;
}

#ifdef __SSE2__
/* The projected gradients of one instance for the G solves at once, two to a register, each the same double
 * operations in the same order as descend_from's: when no live solve shrinks there, updates the live ones' extremes,
 * stores g and sets *upd to the live solves that take a step; returns 0, touching nothing, when one would shrink
 * (the caller then takes the solves one by one). */
static inline int group_pg(const float *dot, const float *bw, float bias, const int8_t *yk, const float *ak,
                           double diag_p, double diag_n, const double *max_old, double *max_new, double *min_new,
                           double *gv, unsigned live, unsigned *upd)
{
    float dc[G];
    if (bias > 0) {
        const __m128 bb = _mm_set1_ps(bias);
        _mm_storeu_ps(dc, _mm_add_ps(_mm_loadu_ps(dot), _mm_mul_ps(_mm_loadu_ps(bw), bb)));
        _mm_storeu_ps(dc + 4, _mm_add_ps(_mm_loadu_ps(dot + 4), _mm_mul_ps(_mm_loadu_ps(bw + 4), bb)));
    } else {
        memcpy(dc, dot, sizeof dc);
    }
    const __m128d one = _mm_set1_pd(1.0), zero = _mm_setzero_pd(), dp = _mm_set1_pd(diag_p), dn = _mm_set1_pd(diag_n);
    __m128d g[G / 2], a0[G / 2];
    unsigned shrink = 0;
    for (int j = 0; j < G / 2; j++) {
        const __m128d d = _mm_set_pd((double)dc[2 * j + 1], (double)dc[2 * j]);
        const __m128d yd = _mm_set_pd((double)yk[2 * j + 1], (double)yk[2 * j]);
        const __m128d ad = _mm_set_pd((double)ak[2 * j + 1], (double)ak[2 * j]);
        const __m128d pos = _mm_cmpgt_pd(yd, zero);
        const __m128d diag = _mm_or_pd(_mm_and_pd(pos, dp), _mm_andnot_pd(pos, dn));
        g[j] = _mm_add_pd(_mm_sub_pd(_mm_mul_pd(yd, d), one), _mm_mul_pd(ad, diag));
        a0[j] = _mm_cmpeq_pd(ad, zero);
        shrink |= (unsigned)_mm_movemask_pd(_mm_and_pd(a0[j], _mm_cmpgt_pd(g[j], _mm_loadu_pd(max_old + 2 * j))))
                  << (2 * j);
    }
    if (shrink & live) return 0;
    const __m128d tiny = _mm_set1_pd(1e-12), sign = _mm_set1_pd(-0.0);
    unsigned need = 0;
    for (int j = 0; j < G / 2; j++) {
        /* alpha 0: g where g < 0, else +0; otherwise g. max / min as `if (pg > m) m = pg`: maxpd keeps its second
         * operand unless the first is greater */
        const __m128d pg = _mm_or_pd(_mm_and_pd(a0[j], _mm_and_pd(_mm_cmplt_pd(g[j], zero), g[j])),
                                     _mm_andnot_pd(a0[j], g[j]));
        _mm_storeu_pd(max_new + 2 * j, _mm_max_pd(pg, _mm_loadu_pd(max_new + 2 * j)));
        _mm_storeu_pd(min_new + 2 * j, _mm_min_pd(pg, _mm_loadu_pd(min_new + 2 * j)));
        _mm_storeu_pd(gv + 2 * j, g[j]);
        need |= (unsigned)_mm_movemask_pd(_mm_cmpgt_pd(_mm_andnot_pd(sign, pg), tiny)) << (2 * j);
    }
    *upd = need & live;
    return 1;
}
#endif

int xmci_dcd_solve_group(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n, int nsolves,
                         const xmci_dcd_params *p, const xmci_dcd_rows *rows, xmci_dcd_ws *ws, xmci_dcd_emit emit,
                         void *ctx)
{
    assert(x->cols <= ws->nr_features && n <= ws->max_inst && nsolves >= 1 && nsolves <= G);
    if (group_reserve(ws)) return -1;
    const uint32_t *xi = x->indices;
    const float *xv = x->data;
    const float bias = p->bias;
    const double diag_p = 0.5 / p->cp, diag_n = 0.5 / p->cn;
    int all_cols;
    /* the rows' spans, runs and the touched features are the same for every solve: listed once (the first
     * solve's labels; each solve's diagonal terms follow) */
    uint32_t nt = list_features(x, inst, y, n, p, rows, ws, &all_cols);
    float *W = ws->gw, *alpha = ws->galpha, *qdp = ws->gqd, *qdn = ws->gqd + n;
    for (uint32_t s = 0; s < n; s++) {
        const double sq = (double)ws->sq[s], b2 = bias > 0 ? (double)bias * bias : 0.0;
        qdp[s] = (float)(diag_p + sq + b2);
        qdn[s] = (float)(diag_n + sq + b2);
        ws->gindex[s] = s;
        for (int c = 0; c < G; c++) ws->gy[(size_t)s * G + c] = c < nsolves && y[(size_t)c * n + s] > 0 ? 1 : -1;
    }
    memset(alpha, 0, (size_t)n * G * sizeof *alpha);
    dcd_state shared;
    state_start(ws, p, n, &shared);
    /* each solve's scalars side by side (a dcd_state holds a generator: 2.5 KB between two solves' fields) */
    double max_old[G], min_old[G], max_new[G], min_new[G];
    float bw[G];
    int live[G], nlive = nsolves, rc = 0;
    unsigned livemask = (1u << nsolves) - 1;
    for (int c = 0; c < G; c++) /* every lane set: the vector steps read them all */
        live[c] = c, max_old[c] = shared.pgmax_old, min_old[c] = shared.pgmin_old, max_new[c] = -INFINITY,
        min_new[c] = INFINITY, bw[c] = 0;
    dcd_inst *in = ws->in;
    while (nlive > 0 && shared.iter < p->max_iter) {
        for (int l = 0; l < nlive; l++) max_new[live[l]] = -INFINITY, min_new[live[l]] = INFINITY;
        xmc_rng_shuffle_u32(&shared.rng, ws->gindex, n);
        for (uint32_t s = 0; s < n && nlive > 0; s++) {
            const uint32_t k = ws->gindex[s];
            if (s + 2 < n) { /* as descend_from, and the instance's dual variables and labels */
                const uint32_t k2 = ws->gindex[s + 2];
                __builtin_prefetch(in + k2);
                __builtin_prefetch(alpha + (size_t)k2 * G);
                __builtin_prefetch(ws->gy + (size_t)k2 * G);
            }
            if (s + 1 < n) {
                uint64_t nb = in[ws->gindex[s + 1]].beg;
                __builtin_prefetch(xi + nb);
                __builtin_prefetch(xv + nb);
            }
            const uint64_t rb = in[k].beg, re = rb + in[k].len;
            float dot[G];
            group_dot(W, xi, xv, rb, re, dot);
            float *ak = alpha + (size_t)k * G;
            const int8_t *yk = ws->gy + (size_t)k * G;
#ifdef __SSE2__
            double gv[G];
            unsigned upd;
            if (group_pg(dot, bw, bias, yk, ak, diag_p, diag_n, max_old, max_new, min_new, gv, livemask, &upd)) {
                for (; upd; upd &= upd - 1) {
                    const int c = __builtin_ctz(upd);
                    group_update(W, xi, xv, rb, re, ak, bw, c, yk[c], gv[c], yk[c] > 0 ? qdp[k] : qdn[k], bias);
                }
                continue;
            }
#endif
            for (int l = 0; l < nlive; l++) {
                const int c = live[l];
                float dc = dot[c];
                if (bias > 0) dc += bw[c] * bias;
                const int yi = yk[c];
                const double diag = yi > 0 ? diag_p : diag_n;
                const double g = yi * (double)dc - 1.0 + ak[c] * diag;
                double pg;
                if (projected(ak[c], g, max_old[c], &pg)) {
                    /* its first shrink: solve c goes on alone from here */
                    for (uint32_t i = 0; i < n; i++) {
                        ws->index[i] = ws->gindex[i];
                        in[i].alpha = alpha[(size_t)i * G + c];
                        in[i].y = y[(size_t)c * n + i] > 0 ? 1 : -1;
                        in[i].qd = in[i].y > 0 ? qdp[i] : qdn[i];
                    }
                    if (all_cols)
                        for (uint32_t f = 0; f < x->cols; f++) ws->w[f] = W[(size_t)f * G + c];
                    else
                        for (uint32_t t = 0; t < nt; t++) ws->w[ws->touched[t]] = W[(size_t)ws->touched[t] * G + c];
                    dcd_state alone = {.rng = shared.rng, .pgmax_old = max_old[c], .pgmin_old = min_old[c],
                                       .pgmax_new = max_new[c], .pgmin_new = min_new[c], .active = n, .s = s,
                                       .iter = shared.iter, .in_pass = 1, .b = bw[c]};
                    float b = descend_from(x, n, p, ws, &alone);
                    uint32_t m = collect(x, p, ws, ws->w, 1, nt, b);
                    clear_touched(x, ws, ws->w, 1, nt, all_cols);
                    if (!rc && emit(ctx, c, ws->out_idx, ws->out_val, m, ws->iters)) rc = -1;
                    livemask &= ~(1u << c);
                    live[l] = live[--nlive];
                    l--;
                    continue;
                }
                if (pg > max_new[c]) max_new[c] = pg;
                if (pg < min_new[c]) min_new[c] = pg;
                if (fabs(pg) > 1e-12) group_update(W, xi, xv, rb, re, ak, bw, c, yi, g, yi > 0 ? qdp[k] : qdn[k], bias);
            }
            if (rc) break;
        }
        if (rc) break;
        shared.iter++;
        for (int l = 0; l < nlive; l++) {
            const int c = live[l];
            dcd_state sc = {.pgmax_old = max_old[c], .pgmin_old = min_old[c], .pgmax_new = max_new[c],
                            .pgmin_new = min_new[c], .active = n, .iter = shared.iter - 1};
            int done = pass_end(&sc, n, p->eps);
            max_old[c] = sc.pgmax_old, min_old[c] = sc.pgmin_old;
            if (done || shared.iter >= p->max_iter) {
                uint32_t m = collect(x, p, ws, W + c, G, nt, bw[c]);
                if (!rc && emit(ctx, c, ws->out_idx, ws->out_val, m, shared.iter)) rc = -1;
                livemask &= ~(1u << c);
                live[l] = live[--nlive];
                l--;
            }
        }
        if (rc) break;
    }
    clear_touched(x, ws, W, G, nt, all_cols);
    return rc;
}

uint32_t xmci_dcd_solve(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                       const xmci_dcd_params *p, xmci_dcd_ws *ws, const uint32_t **out_idx, const float **out_val)
{
    return xmci_dcd_solve_rows(x, inst, y, n, p, NULL, ws, out_idx, out_val);
}

int xmci_dcd_last_iters(const xmci_dcd_ws *ws) { return ws->iters; }
