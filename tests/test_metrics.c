/* test_metrics.c: P@k/R@k reproduce PECOS's evaluate print on its golden prediction; nDCG and PSP by hand. */
#include <math.h>
#include <stdio.h>
#include "metrics.h"
#include "testutil.h"

static void test_pecos_evaluate(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmci_csr p, y;
    xmc_error err = {0};
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s", tu_data("pecos-xlinear/Yt_pred.txt"));
    snprintf(b, sizeof b, "%s", tu_data("pecos-xlinear/Y.tst.txt"));
    CU_ASSERT_EQUAL_FATAL(xmci_csr_read_text(a, &p, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_csr_read_text(b, &y, &err), XMC_OK);
    xmc_hit hits[2 * 20];
    uint32_t counts[2];
    for (uint32_t r = 0; r < 2; r++) {
        counts[r] = (uint32_t)(p.indptr[r + 1] - p.indptr[r]);
        for (uint32_t i = 0; i < counts[r]; i++)
            hits[r * 20 + i] = (xmc_hit){p.indices[p.indptr[r] + i], p.data[p.indptr[r] + i]};
    }
    xmci_metrics m;
    CU_ASSERT_EQUAL_FATAL(xmci_metrics_compute(hits, counts, 20, &y, NULL, 10, &m, &err), XMC_OK);
    /* PECOS: prec = 100.00 50.00 33.33 25.00 20.00 16.67 14.29 12.50 11.11 10.00, recall all 100 */
    char line[256], *s = line;
    for (int k = 1; k <= 10; k++) s += sprintf(s, "%s%4.2f", k > 1 ? " " : "", 100 * m.prec[k]);
    CU_ASSERT_STRING_EQUAL(line, "100.00 50.00 33.33 25.00 20.00 16.67 14.29 12.50 11.11 10.00");
    for (int k = 1; k <= 10; k++) CU_ASSERT_DOUBLE_EQUAL(m.recall[k], 1.0, 1e-12);
    xmci_csr_free(&p);
    xmci_csr_free(&y);
}

static void test_ndcg_psp_by_hand(void)
{
    /* one doc, truth {1, 3}; predicted 3, 2, 1 */
    xmci_csr y;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&y, 1, 4, 2, &err), XMC_OK);
    y.indices[0] = 1; y.indices[1] = 3; y.data[0] = y.data[1] = 1; y.indptr[1] = 2;
    xmc_hit hits[3] = {{3, 0.9f}, {2, 0.5f}, {1, 0.4f}};
    uint32_t counts[1] = {3};
    double inv[4] = {1, 2, 1, 4};
    xmci_metrics m;
    CU_ASSERT_EQUAL_FATAL(xmci_metrics_compute(hits, counts, 3, &y, inv, 3, &m, &err), XMC_OK);
    CU_ASSERT_DOUBLE_EQUAL(m.prec[1], 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m.prec[3], 2.0 / 3, 1e-12);
    double dcg3 = 1 + 1 / log2(4), idcg = 1 + 1 / log2(3);
    CU_ASSERT_DOUBLE_EQUAL(m.ndcg[3], dcg3 / idcg, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m.ndcg[2], 1 / idcg, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m.psp[1], 4.0 / 4.0, 1e-12);   /* hit label 3 (4) over best 4 */
    CU_ASSERT_DOUBLE_EQUAL(m.psp[2], 4.0 / 6.0, 1e-12);   /* 4 over 4+2 */
    CU_ASSERT_DOUBLE_EQUAL(m.psp[3], 6.0 / 6.0, 1e-12);
    /* propensity formula: N=100, A=.55, B=1.5, freq 0 -> 1 + (ln100 - 1) 2.5^.55 1.5^-.55 */
    uint32_t f[1] = {0};
    double ip;
    xmci_inv_propensity(f, 1, 100, 0.55, 1.5, &ip);
    CU_ASSERT_DOUBLE_EQUAL(ip, 1 + (log(100) - 1) * pow(2.5, 0.55) * pow(1.5, -0.55), 1e-12);
    xmci_csr_free(&y);
}

/* Equal scores keep the order they come in (the classifier's rank, ties broken by raw score); an unsorted
 * row is still sorted by score. */
static void test_ties_keep_given_order(void)
{
    xmci_csr y;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&y, 2, 8, 2, &err), XMC_OK);
    y.indices[0] = 5; y.indices[1] = 5; y.data[0] = y.data[1] = 1; y.indptr[1] = 1; y.indptr[2] = 2;
    /* row 0: 5 before 2 at the same score (a lower-label rule would put 2 first); row 1: unsorted */
    xmc_hit hits[2 * 3] = {{5, 1.0f}, {2, 1.0f}, {7, 0.5f}, {7, 0.2f}, {2, 0.3f}, {5, 0.9f}};
    uint32_t counts[2] = {3, 3};
    xmci_metrics m;
    CU_ASSERT_EQUAL_FATAL(xmci_metrics_compute(hits, counts, 3, &y, NULL, 3, &m, &err), XMC_OK);
    CU_ASSERT_DOUBLE_EQUAL(m.prec[1], 1.0, 1e-12);
    xmci_csr_free(&y);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    TU_ADD(s, test_pecos_evaluate);
    TU_ADD(s, test_ndcg_psp_by_hand);
    TU_ADD(s, test_ties_keep_given_order);
    return tu_run(argc, argv);
}
