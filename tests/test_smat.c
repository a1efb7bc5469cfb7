/* test_smat.c: CSR matrices: text round trip, transpose, matmul, normalisation, builder, parse errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smat.h"
#include "testutil.h"

static void test_read_golden_x(void)
{
    xmci_csr m;
    xmc_error err = {0};
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    CU_ASSERT_EQUAL_FATAL(xmci_csr_read_text(tu_data("pecos-xlinear/X.trn.txt"), &m, &err), XMC_OK);
    CU_ASSERT_EQUAL(m.rows, 2);
    CU_ASSERT_EQUAL(m.cols, 16);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&m), 16);
    CU_ASSERT_EQUAL(m.indices[0], 15); /* stored order is kept */
    xmci_csr_sort_indices(&m);
    CU_ASSERT_EQUAL(m.indices[0], 1);
    CU_ASSERT_DOUBLE_EQUAL(m.data[0], 0.353553385, 1e-9);
    xmci_csr_free(&m);
}

static void test_transpose_matmul(void)
{
    /* A = [[1 0 2],[0 3 0]] ; A * A^T = [[5 0],[0 9]] */
    xmci_csr_builder b;
    xmc_error err = {0};
    xmci_csr a, at, c;
    CU_ASSERT_EQUAL_FATAL(xmci_csr_builder_init(&b, 3, &err), XMC_OK);
    xmci_csr_builder_push(&b, 0, 1, &err);
    xmci_csr_builder_push(&b, 2, 2, &err);
    xmci_csr_builder_end_row(&b, &err);
    xmci_csr_builder_push(&b, 1, 3, &err);
    xmci_csr_builder_end_row(&b, &err);
    xmci_csr_builder_finish(&b, &a);
    CU_ASSERT_EQUAL(a.rows, 2);
    CU_ASSERT_EQUAL(a.indptr[0], 0);
    CU_ASSERT_EQUAL(a.indptr[1], 2);
    CU_ASSERT_EQUAL(a.indptr[2], 3);
    CU_ASSERT_EQUAL_FATAL(xmci_csr_transpose(&a, &at, &err), XMC_OK);
    CU_ASSERT_EQUAL(at.rows, 3);
    CU_ASSERT_EQUAL(at.indptr[3], 3);
    CU_ASSERT_EQUAL(at.indices[at.indptr[2]], 0);
    CU_ASSERT_EQUAL_FATAL(xmci_csr_matmul(&a, &at, &c, &err), XMC_OK);
    CU_ASSERT_EQUAL(c.rows, 2);
    CU_ASSERT_EQUAL(c.cols, 2);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&c), 2);
    CU_ASSERT_DOUBLE_EQUAL(c.data[0], 5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(c.data[1], 9, 1e-6);
    xmci_csr_normalize_rows(&a);
    CU_ASSERT_DOUBLE_EQUAL(a.data[0] * a.data[0] + a.data[1] * a.data[1], 1.0, 1e-6);
    xmci_csr_prune(&a, 0.5f);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&a), 2); /* 1/sqrt5 = .447 dropped */
    xmci_csr_free(&a);
    xmci_csr_free(&at);
    xmci_csr_free(&c);
}

static void expect_parse_error(const char *text, const char *needle)
{
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.txt", dir);
    tu_write_file(path, text);
    xmci_csr m;
    xmc_error err = {0};
    xmc_err rc = xmci_csr_read_text(path, &m, &err);
    CU_ASSERT_EQUAL(rc, XMC_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    if (!strstr(err.msg, needle)) fprintf(stderr, "message was: %s\n", err.msg);
    tu_rmrf(dir);
    free(dir);
}

static void test_parse_errors(void)
{
    expect_parse_error("", ":1:");
    expect_parse_error("2 3\n0:1\n", ":3: file ends");
    expect_parse_error("1 3\n3:1\n", ":2: bad entry");
    expect_parse_error("1 3\n1:x\n", ":2: bad value");
    expect_parse_error("1 3\n1:1\n2:2\n", ":3: more rows");
}

static void test_round_trip(void)
{
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.txt", dir);
    tu_write_file(path, "3 5\n4:0.5 0:-1.25\n\n2:3\n");
    xmci_csr m, m2;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_csr_read_text(path, &m, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&m), 3);
    FILE *f = fopen(path, "w");
    xmci_csr_write_text(f, &m, &err);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(xmci_csr_read_text(path, &m2, &err), XMC_OK);
    CU_ASSERT_EQUAL(m2.rows, 3);
    CU_ASSERT_EQUAL(memcmp(m.indices, m2.indices, 3 * 4), 0);
    CU_ASSERT_EQUAL(memcmp(m.data, m2.data, 3 * 4), 0);
    xmci_csr_free(&m);
    xmci_csr_free(&m2);
    tu_rmrf(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("smat", NULL, NULL);
    TU_ADD(s, test_read_golden_x);
    TU_ADD(s, test_transpose_matmul);
    TU_ADD(s, test_parse_errors);
    TU_ADD(s, test_round_trip);
    return tu_run(argc, argv);
}
