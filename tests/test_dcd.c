/* test_dcd.c: the dual coordinate descent SVM solver: a separable toy problem is learnt, costs move the
 * bias as the closed form says, the threshold prunes |w| < t strictly, bias 0 means no bias weight, solves
 * are deterministic and leave the workspace clean, precomputed row hints change no weight, and degenerate
 * problems (no instances, one class only).
 *
 * The closed form: with instances that have no features, only the bias b (feature value 1) is learnt, and
 * for one positive and one negative min 1/2 b^2 + Cp (1-b)^2 + Cn (1+b)^2 gives b = 2 (Cp - Cn) / (1 + 2 Cp +
 * 2 Cn). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcd.h"
#include "testutil.h"
#include "xmc/rng.h"

#define NF 4

/* 12 points: positives lean on feature 0, negatives on feature 1; feature 2 is noise shared by both,
 * feature 3 unused. Separable through the origin. */
static const float toy[12][NF] = {
    {2.0f, 0.3f, 0.5f, 0}, {1.5f, 0.1f, 0, 0}, {3.0f, 0.8f, 0.2f, 0}, {1.2f, 0, 0.9f, 0}, {2.2f, 0.5f, 0, 0},
    {1.8f, 0.2f, 0.4f, 0},
    {0.3f, 2.0f, 0.5f, 0}, {0.1f, 1.4f, 0, 0}, {0.6f, 2.5f, 0.3f, 0}, {0, 1.1f, 0.8f, 0}, {0.4f, 1.9f, 0, 0},
    {0.2f, 1.6f, 0.6f, 0},
};

static void toy_problem(xmci_csr *x, uint32_t *inst, int8_t *y)
{
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(x, 12, NF, &toy[0][0]), 0);
    for (uint32_t i = 0; i < 12; i++) {
        inst[i] = i;
        y[i] = i < 6 ? 1 : -1;
    }
}

/* w . x_r + b * bias from a solver result. */
static double decide(const xmci_csr *x, uint32_t r, const uint32_t *idx, const float *val, uint32_t m, float bias)
{
    double s = 0;
    for (uint32_t t = 0; t < m; t++) {
        if (idx[t] == x->cols) { s += (double)val[t] * bias; continue; }
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++)
            if (x->indices[q] == idx[t]) s += (double)val[t] * x->data[q];
    }
    return s;
}

static float bias_weight(const xmci_csr *x, const uint32_t *idx, const float *val, uint32_t m)
{
    for (uint32_t t = 0; t < m; t++)
        if (idx[t] == x->cols) return val[t];
    return 0;
}

static void test_separable(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12];
    toy_problem(&x, inst, y);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    for (int thr = 0; thr < 2; thr++) {
        p.threshold = thr ? 0.1f : 0.0f;
        const uint32_t *idx;
        const float *val;
        uint32_t m = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
        CU_ASSERT(m >= 2);
        for (uint32_t t = 1; t < m; t++) CU_ASSERT(idx[t - 1] < idx[t]);   /* ascending, bias last */
        for (uint32_t t = 0; t < m; t++) CU_ASSERT(idx[t] <= NF && idx[t] != 3); /* feature 3 is never seen */
        for (uint32_t i = 0; i < 12; i++) CU_ASSERT(y[i] * decide(&x, i, idx, val, m, p.bias) > 0);
    }
    /* tight tolerance: the margin constraints hold nearly (the L2-loss optimum leaves small slack) */
    p.threshold = 0;
    p.eps = 1e-4;
    p.max_iter = 5000;
    const uint32_t *idx;
    const float *val;
    uint32_t m = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
    for (uint32_t i = 0; i < 12; i++) CU_ASSERT(y[i] * decide(&x, i, idx, val, m, p.bias) > 0.5);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* The bias-only problem has the closed form above; Cp > Cn moves b up, Cp < Cn down. */
static void test_costs_move_bias(void)
{
    xmci_csr x;
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&x, 2, NF, 0, NULL), XMC_OK);
    uint32_t inst[2] = {0, 1};
    int8_t y[2] = {1, -1};
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 2, &ws, &err), XMC_OK);
    static const double costs[][2] = {{1, 1}, {2, 1}, {1, 2}, {4, 0.5}, {0.25, 0.25}};
    double prev_b = 0;
    for (size_t c = 0; c < sizeof costs / sizeof *costs; c++) {
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.cp = costs[c][0];
        p.cn = costs[c][1];
        p.eps = 1e-6;
        p.max_iter = 10000;
        p.threshold = 0;
        const uint32_t *idx;
        const float *val;
        uint32_t m = xmci_dcd_solve(&x, inst, y, 2, &p, ws, &idx, &val);
        double want = 2 * (p.cp - p.cn) / (1 + 2 * p.cp + 2 * p.cn);
        double b = bias_weight(&x, idx, val, m);
        CU_ASSERT(m <= 1);
        CU_ASSERT(fabs(b - want) < 1e-4);
        if (fabs(b - want) >= 1e-4) fprintf(stderr, "Cp=%g Cn=%g: bias %.6f, closed form %.6f\n", p.cp, p.cn, b, want);
        if (c == 1) CU_ASSERT(b > prev_b + 0.2);   /* Cp 2 > Cn 1: toward the positive */
        if (c == 2) CU_ASSERT(b < -0.2);           /* and the mirror */
        if (c == 0) prev_b = b;
    }
    /* bias value 2: b = 2 beta (Cp - Cn) / (1 + 2 beta^2 (Cp + Cn)), decision value b * beta */
    {
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.cp = 2;
        p.bias = 2;
        p.eps = 1e-6;
        p.max_iter = 10000;
        p.threshold = 0;
        const uint32_t *idx;
        const float *val;
        uint32_t m = xmci_dcd_solve(&x, inst, y, 2, &p, ws, &idx, &val);
        double b = bias_weight(&x, idx, val, m), want = 2 * 2 * (2 - 1) / (1 + 2 * 4 * (2 + 1.0));
        CU_ASSERT(fabs(b - want) < 1e-4);
        if (fabs(b - want) >= 1e-4) fprintf(stderr, "bias value 2: bias weight %.6f, closed form %.6f\n", b, want);
    }
    /* on the toy problem too: raising Cp raises the decision value of a positive that looks negative */
    xmci_csr_free(&x);
    uint32_t inst12[12];
    int8_t y12[12];
    toy_problem(&x, inst12, y12);
    xmci_dcd_ws_free(ws);
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    /* make it non-separable: a positive that looks like a negative */
    y12[9] = 1;
    double fp[2];
    for (int k = 0; k < 2; k++) {
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.cp = k ? 10 : 1;
        p.eps = 1e-4;
        p.max_iter = 5000;
        p.threshold = 0;
        const uint32_t *idx;
        const float *val;
        uint32_t m = xmci_dcd_solve(&x, inst12, y12, 12, &p, ws, &idx, &val);
        fp[k] = decide(&x, 9, idx, val, m, p.bias);
    }
    CU_ASSERT(fp[1] > fp[0]);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* Threshold t keeps |w| >= t: solving again with t = |w_k| keeps w_k, with the next float above drops it. */
static void test_threshold_strict(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12];
    toy_problem(&x, inst, y);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    p.threshold = 0;
    const uint32_t *idx;
    const float *val;
    uint32_t m0 = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
    CU_ASSERT_FATAL(m0 == 4); /* features 0, 1, 2 and the bias */
    uint32_t all_idx[4];
    float all_val[4];
    memcpy(all_idx, idx, sizeof all_idx);
    memcpy(all_val, val, sizeof all_val);
    for (uint32_t k = 0; k < m0; k++) {
        for (int above = 0; above < 2; above++) {
            float t = fabsf(all_val[k]);
            if (above) t = nextafterf(t, INFINITY);
            p.threshold = t;
            uint32_t m = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
            uint32_t want = 0;
            for (uint32_t j = 0; j < m0; j++) {
                if (!(fabsf(all_val[j]) >= t)) continue;
                CU_ASSERT(want < m && idx[want] == all_idx[j] && val[want] == all_val[j]);
                want++;
            }
            CU_ASSERT_EQUAL(m, want);
            /* w_k itself: kept at t = |w_k|, dropped just above */
            int kept = 0;
            for (uint32_t j = 0; j < m; j++) kept |= idx[j] == all_idx[k];
            CU_ASSERT_EQUAL(kept, !above);
        }
    }
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

static void test_no_bias(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12];
    toy_problem(&x, inst, y);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    p.threshold = 0;
    p.bias = 0;
    const uint32_t *idx;
    const float *val;
    uint32_t m = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
    CU_ASSERT(m >= 2);
    for (uint32_t t = 0; t < m; t++) CU_ASSERT(idx[t] < NF);
    for (uint32_t i = 0; i < 12; i++) CU_ASSERT(y[i] * decide(&x, i, idx, val, m, 0) > 0);
    xmci_csr_free(&x);
    /* featureless instances and no bias: nothing to learn */
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&x, 2, NF, 0, NULL), XMC_OK);
    int8_t y2[2] = {1, -1};
    CU_ASSERT_EQUAL(xmci_dcd_solve(&x, inst, y2, 2, &p, ws, &idx, &val), 0);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* Same problem twice, with another problem between: the same weights bit for bit. Flipping every label
 * negates every weight exactly (the updates are symmetric when Cp = Cn). A subset through inst equals the
 * same rows as a matrix of their own. */
static void test_deterministic(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12], ny[12];
    toy_problem(&x, inst, y);
    for (int i = 0; i < 12; i++) ny[i] = (int8_t)-y[i];
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    p.threshold = 0;
    p.seed = 7;
    const uint32_t *idx;
    const float *val;
    uint32_t m1 = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
    uint32_t i1[NF + 1];
    float v1[NF + 1];
    CU_ASSERT_FATAL(m1 <= NF + 1);
    memcpy(i1, idx, m1 * sizeof *idx);
    memcpy(v1, val, m1 * sizeof *val);
    uint32_t sub[5] = {11, 0, 7, 2, 5};
    int8_t ysub[5] = {-1, 1, -1, 1, 1};
    (void)xmci_dcd_solve(&x, sub, ysub, 5, &p, ws, &idx, &val);
    uint32_t m2 = xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val);
    CU_ASSERT_EQUAL(m2, m1);
    CU_ASSERT(m2 == m1 && memcmp(idx, i1, m1 * sizeof *idx) == 0 && memcmp(val, v1, m1 * sizeof *val) == 0);
    /* the mirror problem */
    uint32_t m3 = xmci_dcd_solve(&x, inst, ny, 12, &p, ws, &idx, &val);
    CU_ASSERT_EQUAL(m3, m1);
    for (uint32_t t = 0; t < m1 && t < m3; t++) CU_ASSERT(idx[t] == i1[t] && val[t] == -v1[t]);
    /* inst picks rows: the subset solve equals a solve on those rows copied out in the same order */
    uint32_t ms = xmci_dcd_solve(&x, sub, ysub, 5, &p, ws, &idx, &val);
    uint32_t is[NF + 1];
    float vs[NF + 1];
    memcpy(is, idx, ms * sizeof *idx);
    memcpy(vs, val, ms * sizeof *val);
    float dense[5][NF];
    for (int i = 0; i < 5; i++) memcpy(dense[i], toy[sub[i]], sizeof dense[i]);
    xmci_csr xs;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&xs, 5, NF, &dense[0][0]), 0);
    uint32_t seq[5] = {0, 1, 2, 3, 4};
    uint32_t mc = xmci_dcd_solve(&xs, seq, ysub, 5, &p, ws, &idx, &val);
    CU_ASSERT(mc == ms && memcmp(idx, is, ms * sizeof *idx) == 0 && memcmp(val, vs, ms * sizeof *val) == 0);
    xmci_csr_free(&xs);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* The hints of xmci_dcd_solve_rows (precomputed row norms; dense: clear and collect over every column) give the
 * weights of a plain solve bit for bit, with a threshold > 0 and with 0 (where dense must not apply), and a dense
 * solve leaves the workspace clean for the next one. */
static void test_row_hints_same_weights(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12];
    toy_problem(&x, inst, y);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    float sqn[12];
    xmci_dcd_row_sqnorms(&x, 0, 12, sqn);
    for (uint32_t r = 0; r < 12; r++) {
        float s = 0;
        for (int f = 0; f < NF; f++) s += toy[r][f] * toy[r][f];
        CU_ASSERT_DOUBLE_EQUAL(sqn[r], s, 1e-5);
    }
    uint32_t sub[5] = {11, 0, 7, 2, 5};
    int8_t ysub[5] = {-1, 1, -1, 1, 1};
    const float thresholds[] = {0.2f, 0};
    for (int ti = 0; ti < 2; ti++) {
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.threshold = thresholds[ti];
        p.seed = 3;
        for (int dense = 0; dense < 2; dense++) {
            for (int part = 0; part < 2; part++) {
                const uint32_t *in = part ? sub : inst;
                const int8_t *yy = part ? ysub : y;
                uint32_t n = part ? 5 : 12;
                const uint32_t *idx;
                const float *val;
                uint32_t m0 = xmci_dcd_solve(&x, in, yy, n, &p, ws, &idx, &val);
                uint32_t i0[NF + 1];
                float v0[NF + 1];
                CU_ASSERT_FATAL(m0 <= NF + 1);
                memcpy(i0, idx, m0 * sizeof *idx);
                memcpy(v0, val, m0 * sizeof *val);
                xmci_dcd_rows rows = {.sqnorm = sqn, .dense = dense};
                uint32_t m1 = xmci_dcd_solve_rows(&x, in, yy, n, &p, &rows, ws, &idx, &val);
                CU_ASSERT(m1 == m0 && memcmp(idx, i0, m0 * sizeof *idx) == 0 && memcmp(val, v0, m0 * sizeof *val) == 0);
                /* a threshold of 0 keeps exactly the touched features: feature 3 (all zero) never appears */
                if (p.threshold == 0)
                    for (uint32_t t = 0; t < m1; t++) CU_ASSERT(idx[t] != 3);
                /* and the next plain solve is unchanged by it */
                m1 = xmci_dcd_solve(&x, in, yy, n, &p, ws, &idx, &val);
                CU_ASSERT(m1 == m0 && memcmp(idx, i0, m0 * sizeof *idx) == 0 && memcmp(val, v0, m0 * sizeof *val) == 0);
            }
        }
    }
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* Rows that end in a run of consecutive features (dense features, an embedding after TF-IDF) are read as blocks:
 * the same problem with every feature j renamed 2j + 1 (the order in each row kept, no two features consecutive)
 * must give the same weights bit for bit. Runs of 12 to 27 features after sparse heads of 0 to 6, so runs too
 * short for the block path, and every alignment of the run and of the row's length, occur. */
static void test_consecutive_runs_same_bits(void)
{
    enum { R = 60, C = 140 };
    static float d1[R * C], d2[R * 2 * C];
    xmc_rng rng;
    xmc_rng_seed(&rng, 12345);
    memset(d1, 0, sizeof d1);
    memset(d2, 0, sizeof d2);
    uint32_t inst[R];
    int8_t y[R];
    for (int r = 0; r < R; r++) {
        for (int h = 0; h < r % 7; h++)
            d1[r * C + xmc_rng_uniform(&rng, 0, 89)] = 0.1f + (float)xmc_rng_uniform(&rng, 0, 999) / 1000.0f;
        int start = 100 + r % 5, len = 12 + r % 16;
        for (int j = 0; j < len && start + j < C; j++)
            d1[r * C + start + j] = (r % 2 ? 0.5f : -0.25f) + (float)xmc_rng_uniform(&rng, 0, 999) / 1000.0f;
        for (int j = 0; j < C; j++) d2[r * 2 * C + 2 * j + 1] = d1[r * C + j];
        inst[r] = (uint32_t)r;
        y[r] = r % 2 ? 1 : -1;
    }
    xmci_csr x1, x2;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&x1, R, C, d1), 0);
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&x2, R, 2 * C, d2), 0);
    xmci_dcd_ws *w1, *w2;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(C, R, &w1, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(2 * C, R, &w2, &err), XMC_OK);
    const float thresholds[] = {0, 0.01f};
    for (int ti = 0; ti < 2; ti++) {
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.threshold = thresholds[ti];
        p.eps = 1e-3;
        const uint32_t *i1, *i2;
        const float *v1, *v2;
        uint32_t m1 = xmci_dcd_solve(&x1, inst, y, R, &p, w1, &i1, &v1);
        uint32_t m2 = xmci_dcd_solve(&x2, inst, y, R, &p, w2, &i2, &v2);
        CU_ASSERT_FATAL(m1 == m2 && m1 > 20);
        int same = 1;
        for (uint32_t t = 0; t < m1; t++) {
            uint32_t want = i1[t] == C ? 2 * C : 2 * i1[t] + 1; /* the bias weight comes last, at cols */
            if (i2[t] != want || memcmp(&v1[t], &v2[t], sizeof *v1)) same = 0;
        }
        CU_ASSERT(same);
        CU_ASSERT(xmci_dcd_last_iters(w1) == xmci_dcd_last_iters(w2) && xmci_dcd_last_iters(w1) > 1);
    }
    xmci_dcd_ws_free(w1);
    xmci_dcd_ws_free(w2);
    xmci_csr_free(&x1);
    xmci_csr_free(&x2);
}

static void test_degenerate(void)
{
    xmci_csr x;
    uint32_t inst[12];
    int8_t y[12];
    toy_problem(&x, inst, y);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(NF, 12, &ws, &err), XMC_OK);
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    const uint32_t *idx = NULL;
    const float *val = NULL;
    /* no instances */
    CU_ASSERT_EQUAL(xmci_dcd_solve(&x, inst, y, 0, &p, ws, &idx, &val), 0);
    CU_ASSERT_PTR_NOT_NULL(idx);
    /* only positives: every one scored positive */
    int8_t pos[12], neg[12];
    for (int i = 0; i < 12; i++) { pos[i] = 1; neg[i] = -1; }
    p.threshold = 0;
    uint32_t m = xmci_dcd_solve(&x, inst, pos, 12, &p, ws, &idx, &val);
    CU_ASSERT(m >= 1);
    for (uint32_t i = 0; i < 12; i++) CU_ASSERT(decide(&x, i, idx, val, m, p.bias) > 0);
    m = xmci_dcd_solve(&x, inst, neg, 12, &p, ws, &idx, &val);
    CU_ASSERT(m >= 1);
    for (uint32_t i = 0; i < 12; i++) CU_ASSERT(decide(&x, i, idx, val, m, p.bias) < 0);
    /* one instance */
    m = xmci_dcd_solve(&x, inst + 3, pos, 1, &p, ws, &idx, &val);
    CU_ASSERT(decide(&x, 3, idx, val, m, p.bias) > 0);
    /* max_iter 0: no pass, all weights zero, none above the default threshold */
    p.threshold = 0.1f;
    p.max_iter = 0;
    CU_ASSERT_EQUAL(xmci_dcd_solve(&x, inst, y, 12, &p, ws, &idx, &val), 0);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

/* Groups of solves over the same instances (xmci_dcd_solve_group) give each solve's weights and pass count bit for
 * bit as its own xmci_dcd_solve_rows: random sparse problems with shared rows, 1 to 8 solves, costs, bias on and
 * off, thresholds, the dense-rows hint, few passes (max_iter 2: every solve still in the group at its end) and
 * many (solves that shrink leave the group mid-pass and go on alone: counted, so the test sees both ways). Rows
 * with a run of consecutive features (the block path of the single solve) are among them. */
typedef struct group_out {
    uint32_t m[XMCI_DCD_GROUP];
    uint32_t idx[XMCI_DCD_GROUP][64];
    float val[XMCI_DCD_GROUP][64];
    int passes[XMCI_DCD_GROUP], emitted[XMCI_DCD_GROUP], fail_at;
} group_out;

static int keep_group(void *ctx, int c, const uint32_t *idx, const float *val, uint32_t m, int passes)
{
    group_out *o = ctx;
    CU_ASSERT_FATAL(m <= 64 && c >= 0 && c < XMCI_DCD_GROUP);
    o->m[c] = m;
    memcpy(o->idx[c], idx, m * sizeof *idx);
    memcpy(o->val[c], val, m * sizeof *val);
    o->passes[c] = passes;
    o->emitted[c]++;
    return o->fail_at-- == 1;
}

static void test_group_same_bits(void)
{
    enum { R = 60, F = 40 };
    static float dense[R * F];
    static int8_t y[XMCI_DCD_GROUP * R];
    uint32_t inst[R];
    xmc_rng rng;
    xmc_rng_seed(&rng, 11);
    for (int r = 0; r < R; r++) {
        for (int f = 0; f < F; f++) dense[r * F + f] = (xmc_rng_next(&rng) % 5 == 0) ? (float)(xmc_rng_next(&rng) % 1000) / 500.0f : 0;
        if (r % 7 == 0) /* a run of 20 consecutive features at the end */
            for (int f = F - 20; f < F; f++) dense[r * F + f] = 0.05f + (float)(xmc_rng_next(&rng) % 100) / 100.0f;
    }
    xmci_csr x;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&x, R, F, dense), 0);
    float sqn[R];
    xmci_dcd_row_sqnorms(&x, 0, R, sqn);
    xmci_dcd_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(F, R, &ws, &err), XMC_OK);
    int left_alone = 0, stayed = 0;
    for (int trial = 0; trial < 48; trial++) {
        const uint32_t n = trial % 3 == 0 ? R : 20 + (uint32_t)(xmc_rng_next(&rng) % (R - 20));
        for (uint32_t i = 0; i < n; i++) inst[i] = (trial % 2) ? i : (i * 7 + (uint32_t)trial) % R;
        if (trial % 2 == 0) { /* distinct rows, any order */
            uint32_t used[R] = {0}, k = 0;
            for (uint32_t i = 0; k < n; i = (i + 13) % R)
                if (!used[i]) { used[i] = 1; inst[k++] = i; }
        }
        const int nsolves = 1 + trial % XMCI_DCD_GROUP;
        for (int c = 0; c < nsolves; c++)
            for (uint32_t i = 0; i < n; i++)
                y[(size_t)c * n + i] = (xmc_rng_next(&rng) % (unsigned)(2 + c)) == 0 ? 1 : -1;
        xmci_dcd_params p;
        xmci_dcd_params_default(&p);
        p.seed = (uint32_t)trial % 4;
        p.threshold = trial % 4 == 1 ? 0 : 0.05f;
        p.bias = trial % 5 == 2 ? 0 : 1;
        p.cp = trial % 6 == 3 ? 2 : 1;
        p.eps = trial % 8 < 4 ? 0.1 : 0.001;
        p.max_iter = trial % 9 == 4 ? 2 : 100;
        xmci_dcd_rows rows = {.sqnorm = trial % 2 ? sqn : NULL, .dense = trial % 4 == 3};
        group_out *o = calloc(1, sizeof *o);
        CU_ASSERT_FATAL(o != NULL);
        CU_ASSERT_EQUAL_FATAL(xmci_dcd_solve_group(&x, inst, y, n, nsolves, &p, &rows, ws, keep_group, o), 0);
        for (int c = 0; c < nsolves; c++) {
            const uint32_t *idx;
            const float *val;
            uint32_t m = xmci_dcd_solve_rows(&x, inst, y + (size_t)c * n, n, &p, &rows, ws, &idx, &val);
            int passes = xmci_dcd_last_iters(ws);
            CU_ASSERT_EQUAL(o->emitted[c], 1);
            int same = o->m[c] == m && memcmp(o->idx[c], idx, m * sizeof *idx) == 0 &&
                       memcmp(o->val[c], val, m * sizeof *val) == 0 && o->passes[c] == passes;
            if (!same) printf("\n  trial %d solve %d: group %u weights, %d passes; alone %u, %d", trial, c, o->m[c],
                              o->passes[c], m, passes);
            CU_ASSERT(same);
        }
        /* a solve that shrank left the group; one that did not stayed to its end (max_iter 2 never shrinks) */
        for (int c = 0; c < nsolves; c++) {
            if (o->passes[c] > 2) left_alone++;
            else stayed++;
        }
        free(o);
    }
    CU_ASSERT(left_alone > 10 && stayed > 10);
    /* emit's refusal stops the group; the workspace is clean after (the next solves are the same) */
    group_out *o = calloc(1, sizeof *o);
    CU_ASSERT_FATAL(o != NULL);
    for (uint32_t i = 0; i < R; i++) inst[i] = i;
    for (int c = 0; c < XMCI_DCD_GROUP; c++)
        for (uint32_t i = 0; i < R; i++) y[(size_t)c * R + i] = (i + (uint32_t)c) % 3 == 0 ? 1 : -1;
    xmci_dcd_params p;
    xmci_dcd_params_default(&p);
    o->fail_at = 3;
    CU_ASSERT_EQUAL(xmci_dcd_solve_group(&x, inst, y, R, XMCI_DCD_GROUP, &p, NULL, ws, keep_group, o), -1);
    int emitted = 0;
    for (int c = 0; c < XMCI_DCD_GROUP; c++) emitted += o->emitted[c];
    CU_ASSERT_EQUAL(emitted, 3);
    memset(o, 0, sizeof *o);
    CU_ASSERT_EQUAL(xmci_dcd_solve_group(&x, inst, y, R, XMCI_DCD_GROUP, &p, NULL, ws, keep_group, o), 0);
    for (int c = 0; c < XMCI_DCD_GROUP; c++) {
        const uint32_t *idx;
        const float *val;
        uint32_t m = xmci_dcd_solve_rows(&x, inst, y + (size_t)c * R, R, &p, NULL, ws, &idx, &val);
        CU_ASSERT(o->m[c] == m && memcmp(o->val[c], val, m * sizeof *val) == 0);
    }
    free(o);
    xmci_dcd_ws_free(ws);
    xmci_csr_free(&x);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("dcd", NULL, NULL);
    TU_ADD(s, test_separable);
    TU_ADD(s, test_row_hints_same_weights);
    TU_ADD(s, test_consecutive_runs_same_bits);
    TU_ADD(s, test_group_same_bits);
    TU_ADD(s, test_costs_move_bias);
    TU_ADD(s, test_threshold_strict);
    TU_ADD(s, test_no_bias);
    TU_ADD(s, test_deterministic);
    TU_ADD(s, test_degenerate);
    return tu_run(argc, argv);
}
