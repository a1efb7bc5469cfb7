/* test_tron.c: the primal Newton-CG solver (tron.h) on problems whose answer is known: closed-form optima of
 * tiny problems (active and inactive instances, costs, bias), agreement with the dual solver (dcd.h) on a
 * random strictly convex problem when both run to tight tolerances, bit-identical repeats on a reused or a
 * fresh workspace, and the empty problem. Reproduction of PECOS's own primal results is in test_xlinear. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dcd.h"
#include "tron.h"
#include "testutil.h"

/* CSR from a dense row-major rows x cols array (zeros left out). */
static void from_dense(uint32_t rows, uint32_t cols, const float *a, xmci_csr *m)
{
    uint64_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) nnz += a[i] != 0;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(m, rows, cols, nnz, &err), XMC_OK);
    uint64_t q = 0;
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t c = 0; c < cols; c++)
            if (a[(size_t)r * cols + c] != 0) {
                m->indices[q] = c;
                m->data[q++] = a[(size_t)r * cols + c];
            }
        m->indptr[r + 1] = q;
    }
}

/* Solves and spreads the result into dense[cols + 1] (bias last). */
static uint32_t solve_dense(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                            const xmci_tron_params *p, xmci_tron_ws *ws, double *dense)
{
    const uint32_t *idx;
    const float *val;
    uint32_t m = xmci_tron_solve(x, inst, y, n, p, ws, &idx, &val);
    memset(dense, 0, ((size_t)x->cols + 1) * sizeof *dense);
    for (uint32_t i = 0; i < m; i++) {
        CU_ASSERT(idx[i] <= x->cols);
        if (i > 0) CU_ASSERT(idx[i] > idx[i - 1]);
        dense[idx[i]] = val[i];
    }
    return m;
}

/* 1-D, no bias: x = 1 (+), x = 3 (+), x = -1 (-). At the optimum the x = 3 instance has margin > 1, so
 * f = w^2/2 + (cp + cn)(1 - w)^2 there and w* = 2(cp + cn) / (1 + 2(cp + cn)): 4/5 for unit costs, 6/7 for
 * cp = 2. Then two orthogonal instances with a bias, where b* = 0 by symmetry and each weight is 2/3. */
static void test_closed_form_optima(void)
{
    const float a1[] = {1, 3, -1};
    xmci_csr x;
    from_dense(3, 1, a1, &x);
    const uint32_t inst[] = {0, 1, 2};
    const int8_t y[] = {1, 1, -1};
    xmci_tron_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(2, 4, &ws, &err), XMC_OK);
    xmci_tron_params p;
    xmci_tron_params_default(&p);
    p.bias = 0;
    p.threshold = 0;
    p.eps = 1e-6;
    double w[3];
    uint32_t m = solve_dense(&x, inst, y, 3, &p, ws, w);
    CU_ASSERT_EQUAL(m, 1);
    printf("  unit costs: w = %.9g (exact 0.8)\n", w[0]);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.8, 1e-6);
    xmci_tron_stats st;
    xmci_tron_last_stats(ws, &st);
    CU_ASSERT(st.gnorm <= p.eps * st.gnorm0);
    CU_ASSERT(st.newton_iters >= 1);
    CU_ASSERT_DOUBLE_EQUAL(st.f, 0.5 * 0.64 + 2 * 0.04, 1e-6);
    p.cp = 2;
    solve_dense(&x, inst, y, 3, &p, ws, w);
    printf("  cp = 2:     w = %.9g (exact 6/7)\n", w[0]);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 6.0 / 7.0, 1e-6);
    xmci_csr_free(&x);

    const float a2[] = {1, 0, 0, 1};
    from_dense(2, 2, a2, &x);
    xmci_tron_params_default(&p);
    p.threshold = 0;
    p.eps = 1e-6;
    const int8_t y2[] = {1, -1};
    m = solve_dense(&x, inst, y2, 2, &p, ws, w);
    CU_ASSERT_EQUAL(m, 3);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 2.0 / 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(w[1], -2.0 / 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 0.0, 1e-6);
    /* the default threshold drops the zero bias and keeps the rest */
    p.threshold = 0.1f;
    m = solve_dense(&x, inst, y2, 2, &p, ws, w);
    CU_ASSERT_EQUAL(m, 2);
    xmci_csr_free(&x);
    xmci_tron_ws_free(ws);
}

/* A separable problem (the label is the sign of feature 0, which is never 0) is classified correctly with
 * PECOS's settings, every instance on its side with room to spare. */
static void test_separable(void)
{
    enum { N = 24, F = 6 };
    float a[N * F];
    int8_t y[N];
    uint32_t inst[N];
    uint32_t s = 12345;
    for (uint32_t i = 0; i < N; i++) {
        for (uint32_t c = 0; c < F; c++) {
            s = s * 1103515245u + 12345u;
            a[i * F + c] = (float)((s >> 8) % 1000) / 1000.0f - 0.5f;
        }
        y[i] = i % 2 ? 1 : -1;
        a[i * F] = y[i] * (1.0f + a[i * F]);
        inst[i] = i;
    }
    xmci_csr x;
    from_dense(N, F, a, &x);
    xmci_tron_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(F, N, &ws, &err), XMC_OK);
    xmci_tron_params p;
    xmci_tron_params_default(&p);
    p.cp = p.cn = 100;
    double w[F + 1];
    solve_dense(&x, inst, y, N, &p, ws, w);
    double worst = 1e9;
    for (uint32_t i = 0; i < N; i++) {
        double t = w[F];
        for (uint32_t c = 0; c < F; c++) t += w[c] * a[i * F + c];
        if (y[i] * t < worst) worst = y[i] * t;
    }
    printf("  separable: smallest margin %.3g\n", worst);
    CU_ASSERT(worst > 0.5);
    xmci_csr_free(&x);
    xmci_tron_ws_free(ws);
}

/* A random problem with overlapping classes: both solvers minimise the same strictly convex objective, so
 * run to tight tolerances they must land on the same weights (up to float rounding). */
static void test_agrees_with_dual(void)
{
    enum { N = 60, F = 20 };
    static float a[N * F];
    int8_t y[N];
    uint32_t inst[N];
    uint32_t s = 777;
    for (uint32_t i = 0; i < N; i++) {
        for (uint32_t c = 0; c < F; c++) {
            s = s * 1103515245u + 12345u;
            a[i * F + c] = (s >> 16) % 3 == 0 ? (float)((s >> 4) % 1000) / 1000.0f : 0.0f;
        }
        s = s * 1103515245u + 12345u;
        y[i] = ((s >> 16) % 3 == 0) ? 1 : -1;
        inst[N - 1 - i] = i;   /* any instance order */
    }
    xmci_csr x;
    from_dense(N, F, a, &x);
    xmc_error err = {0};
    xmci_tron_ws *tws;
    xmci_dcd_ws *dws;
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(F, N, &tws, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_dcd_ws_new(F, N, &dws, &err), XMC_OK);
    int8_t yi[N];
    for (uint32_t k = 0; k < N; k++) yi[k] = y[inst[k]];
    xmci_tron_params tp;
    xmci_tron_params_default(&tp);
    tp.cp = 2;
    tp.cn = 0.5;
    tp.eps = 1e-7;
    tp.threshold = 0;
    xmci_dcd_params dp;
    xmci_dcd_params_default(&dp);
    dp.cp = 2;
    dp.cn = 0.5;
    dp.eps = 1e-6;
    dp.max_iter = 100000;
    dp.threshold = 0;
    double wt[F + 1], wd[F + 1];
    solve_dense(&x, inst, yi, N, &tp, tws, wt);
    const uint32_t *idx;
    const float *val;
    uint32_t m = xmci_dcd_solve(&x, inst, yi, N, &dp, dws, &idx, &val);
    memset(wd, 0, sizeof wd);
    for (uint32_t i = 0; i < m; i++) wd[idx[i]] = val[i];
    double maxd = 0, maxw = 0;
    for (uint32_t c = 0; c <= F; c++) {
        if (fabs(wt[c] - wd[c]) > maxd) maxd = fabs(wt[c] - wd[c]);
        if (fabs(wd[c]) > maxw) maxw = fabs(wd[c]);
    }
    xmci_tron_stats st;
    xmci_tron_last_stats(tws, &st);
    printf("  primal vs dual: max |diff| = %.3g (max |w| %.3g; %d Newton steps, %d CG steps)\n", maxd, maxw,
           st.newton_iters, st.cg_iters);
    CU_ASSERT(maxw > 0.1);
    CU_ASSERT(maxd <= 1e-4);
    xmci_csr_free(&x);
    xmci_tron_ws_free(tws);
    xmci_dcd_ws_free(dws);
}

/* Same input, same bits: again on the same workspace after another problem ran on it, and on a new one. */
static void test_deterministic(void)
{
    enum { N = 30, F = 12 };
    float a[N * F];
    int8_t y[N];
    uint32_t inst[N];
    uint32_t s = 99;
    for (uint32_t i = 0; i < N; i++) {
        for (uint32_t c = 0; c < F; c++) {
            s = s * 1103515245u + 12345u;
            a[i * F + c] = (s >> 16) % 2 ? (float)((s >> 4) % 997) / 997.0f : 0.0f;
        }
        y[i] = (i * 7) % 3 == 0 ? 1 : -1;
        inst[i] = i;
    }
    xmci_csr x;
    from_dense(N, F, a, &x);
    xmc_error err = {0};
    xmci_tron_ws *ws1, *ws2;
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(F, N, &ws1, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(F, N, &ws2, &err), XMC_OK);
    xmci_tron_params p;
    xmci_tron_params_default(&p);
    p.threshold = 0.01f;
    double w1[F + 1], w2[F + 1], w3[F + 1];
    uint32_t m1 = solve_dense(&x, inst, y, N, &p, ws1, w1);
    /* a different problem on ws1: a subset with flipped labels */
    int8_t yf[N];
    for (uint32_t k = 0; k < N; k++) yf[k] = (int8_t)-y[k];
    solve_dense(&x, inst + 5, yf + 5, N - 10, &p, ws1, w3);
    uint32_t m2 = solve_dense(&x, inst, y, N, &p, ws1, w2);
    uint32_t m3 = solve_dense(&x, inst, y, N, &p, ws2, w3);
    CU_ASSERT(m1 > 0);
    CU_ASSERT_EQUAL(m1, m2);
    CU_ASSERT_EQUAL(m1, m3);
    CU_ASSERT(memcmp(w1, w2, sizeof w1) == 0);
    CU_ASSERT(memcmp(w1, w3, sizeof w1) == 0);
    xmci_csr_free(&x);
    xmci_tron_ws_free(ws1);
    xmci_tron_ws_free(ws2);
}

/* No instances: the gradient at 0 is 0, so nothing moves and nothing is kept. */
static void test_zero_instances(void)
{
    const float a[] = {1, 2};
    xmci_csr x;
    from_dense(1, 2, a, &x);
    xmc_error err = {0};
    xmci_tron_ws *ws;
    CU_ASSERT_EQUAL_FATAL(xmci_tron_ws_new(2, 0, &ws, &err), XMC_OK);
    xmci_tron_params p;
    xmci_tron_params_default(&p);
    const uint32_t *idx = NULL;
    const float *val = NULL;
    CU_ASSERT_EQUAL(xmci_tron_solve(&x, NULL, NULL, 0, &p, ws, &idx, &val), 0);
    CU_ASSERT_PTR_NOT_NULL(idx);
    CU_ASSERT_PTR_NOT_NULL(val);
    xmci_tron_stats st;
    xmci_tron_last_stats(ws, &st);
    CU_ASSERT_EQUAL(st.newton_iters, 0);
    CU_ASSERT_EQUAL(st.f, 0.0);
    xmci_csr_free(&x);
    xmci_tron_ws_free(ws);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("tron", NULL, NULL);
    TU_ADD(s, test_closed_form_optima);
    TU_ADD(s, test_separable);
    TU_ADD(s, test_agrees_with_dual);
    TU_ADD(s, test_deterministic);
    TU_ADD(s, test_zero_instances);
    return tu_run(argc, argv);
}
