/* test_dataset.c: TSV, XC / libsvm and smat-pair readers (contents and every error with file:line), the label
 * map, and samples of real data sets (tests/data: Reuters, yeast, the PECOS golden matrices). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "testutil.h"

static char *g_dir;

static const char *tmpfile_with(const char *name, const char *text)
{
    static char path[4][1024];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 1024, "%s/%s", g_dir, name);
    tu_write_file(p, text);
    return p;
}

static void expect_row(const xmci_csr *m, uint32_t r, const uint32_t *cols, uint32_t n)
{
    CU_ASSERT_EQUAL_FATAL(m->indptr[r + 1] - m->indptr[r], n);
    for (uint32_t i = 0; i < n; i++) CU_ASSERT_EQUAL(m->indices[m->indptr[r] + i], cols[i]);
}

static void test_tsv(void)
{
    const char *path = tmpfile_with("a.tsv", "\xef\xbb\xbf" "a,b c\tHello world\r\n"
                                             "\tno labels\n"
                                             "b c:x,a,a\t\n"
                                             "a\ttab\tinside");
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_tsv(path, NULL, &ds, &err), XMC_OK);
    CU_ASSERT_EQUAL(ds.n, 4);
    CU_ASSERT_EQUAL(ds.num_labels, 3);
    CU_ASSERT_EQUAL(ds.Y.rows, 4);
    CU_ASSERT_EQUAL(ds.Y.cols, 3);
    CU_ASSERT_STRING_EQUAL(ds.label_names[0], "a");
    CU_ASSERT_STRING_EQUAL(ds.label_names[1], "b c");
    CU_ASSERT_STRING_EQUAL(ds.label_names[2], "b c:x");
    CU_ASSERT_STRING_EQUAL(ds.texts[0], "Hello world");
    CU_ASSERT_EQUAL(ds.lens[0], 11);
    CU_ASSERT_STRING_EQUAL(ds.texts[1], "no labels");
    CU_ASSERT_STRING_EQUAL(ds.texts[2], "");
    CU_ASSERT_EQUAL(ds.lens[2], 0);
    CU_ASSERT_STRING_EQUAL(ds.texts[3], "tab\tinside");
    CU_ASSERT_EQUAL(ds.unlabeled_docs, 1);
    expect_row(&ds.Y, 0, (uint32_t[]){0, 1}, 2);
    expect_row(&ds.Y, 1, NULL, 0);
    expect_row(&ds.Y, 2, (uint32_t[]){0, 2}, 2); /* sorted, the repeated "a" once */
    expect_row(&ds.Y, 3, (uint32_t[]){0}, 1);
    CU_ASSERT_EQUAL(ds.Y.data[0], 1.0f);
    CU_ASSERT_PTR_NULL(ds.X.indptr);

    /* test data mapped with the training map: unknown names dropped and counted */
    const char *path2 = tmpfile_with("b.tsv", "a,zzz\tx\nqqq\ty\nb c\tz\n");
    xmci_dataset dt;
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_tsv(path2, ds.labels, &dt, &err), XMC_OK);
    CU_ASSERT_EQUAL(dt.n, 3);
    CU_ASSERT_EQUAL(dt.num_labels, 3);
    CU_ASSERT_EQUAL(dt.unknown_labels, 2);
    CU_ASSERT_EQUAL(dt.unknown_label_docs, 2);
    CU_ASSERT_EQUAL(dt.unlabeled_docs, 0);
    expect_row(&dt.Y, 0, (uint32_t[]){0}, 1);
    expect_row(&dt.Y, 1, NULL, 0);
    expect_row(&dt.Y, 2, (uint32_t[]){1}, 1);
    CU_ASSERT_PTR_EQUAL(dt.label_names, ds.label_names);
    xmci_dataset_free(&dt);
    xmci_dataset_free(&ds);
}

static void expect_tsv_error(const char *text, xmc_err code, const char *needle)
{
    const char *path = tmpfile_with("bad.tsv", text);
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_dataset_read_tsv(path, NULL, &ds, &err), code);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    if (!strstr(err.msg, needle)) fprintf(stderr, "\nmessage was: %s (want %s)\n", err.msg, needle);
    CU_ASSERT_EQUAL(ds.n, 0);
    CU_ASSERT_PTR_NULL(ds.texts);
}

static void test_tsv_errors(void)
{
    expect_tsv_error("a\tok\nno tab here\n", XMC_ERR_PARSE, "bad.tsv:2: no tab");
    expect_tsv_error("a\tok\n\n", XMC_ERR_PARSE, "bad.tsv:2: no tab");
    expect_tsv_error("a,,b\tx\n", XMC_ERR_PARSE, "bad.tsv:1: empty label name");
    expect_tsv_error("x\tx\na,\tx\n", XMC_ERR_PARSE, "bad.tsv:2: empty label name");
    expect_tsv_error("", XMC_ERR_EMPTY, "no documents");
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_dataset_read_tsv("/nonexistent/x.tsv", NULL, &ds, &err), XMC_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/x.tsv"));
}

static void test_xc(void)
{
    const char *path = tmpfile_with("x.txt", "3 5 4\n"
                                             "0,3 4:2 1:0.5\n"
                                             " 2:1\n"
                                             "2 0:-1.5e0\r\n");
    xmci_dataset_xc_opts o;
    xmci_dataset_xc_opts_default(&o);
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_xc(path, &o, &ds, &err), XMC_OK);
    CU_ASSERT_EQUAL(ds.n, 3);
    CU_ASSERT_EQUAL(ds.X.cols, 5);
    CU_ASSERT_EQUAL(ds.Y.cols, 4);
    CU_ASSERT_EQUAL(ds.num_labels, 4);
    CU_ASSERT_PTR_NULL(ds.label_names);
    CU_ASSERT_PTR_NULL(ds.texts);
    expect_row(&ds.X, 0, (uint32_t[]){1, 4}, 2); /* sorted */
    CU_ASSERT_EQUAL(ds.X.data[0], 0.5f);
    CU_ASSERT_EQUAL(ds.X.data[1], 2.0f);
    expect_row(&ds.X, 2, (uint32_t[]){0}, 1);
    CU_ASSERT_EQUAL(ds.X.data[3], -1.5f);
    expect_row(&ds.Y, 0, (uint32_t[]){0, 3}, 2);
    expect_row(&ds.Y, 1, NULL, 0);
    expect_row(&ds.Y, 2, (uint32_t[]){2}, 1);
    CU_ASSERT_EQUAL(ds.unlabeled_docs, 1);
    xmci_dataset_free(&ds);

    /* libsvm multi-label: no header, features 1-based, sizes inferred */
    path = tmpfile_with("s.txt", "0,2 1:0.5 3:1\n1 2:2\n");
    o.feature_base = 1;
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_xc(path, &o, &ds, &err), XMC_OK);
    CU_ASSERT_EQUAL(ds.n, 2);
    CU_ASSERT_EQUAL(ds.X.cols, 3);
    CU_ASSERT_EQUAL(ds.Y.cols, 3);
    expect_row(&ds.X, 0, (uint32_t[]){0, 2}, 2);
    expect_row(&ds.X, 1, (uint32_t[]){1}, 1);
    xmci_dataset_free(&ds);
    o.num_features = 10;
    o.num_labels = 7;
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_xc(path, &o, &ds, &err), XMC_OK);
    CU_ASSERT_EQUAL(ds.X.cols, 10);
    CU_ASSERT_EQUAL(ds.Y.cols, 7);
    xmci_dataset_free(&ds);
}

static void expect_xc_error(const char *text, int header, uint32_t fbase, xmc_err code, const char *needle)
{
    const char *path = tmpfile_with("bad.txt", text);
    xmci_dataset_xc_opts o;
    xmci_dataset_xc_opts_default(&o);
    o.header = header;
    o.feature_base = fbase;
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_dataset_read_xc(path, &o, &ds, &err), code);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    if (!strstr(err.msg, needle)) fprintf(stderr, "\nmessage was: %s (want %s)\n", err.msg, needle);
    CU_ASSERT_PTR_NULL(ds.X.indptr);
}

static void test_xc_errors(void)
{
    expect_xc_error("2 5 4\n0 1:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:1: header says 2 rows, the file has 1");
    expect_xc_error("1 5 4\n4 1:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: label index 4 out of range");
    expect_xc_error("1 5 4\n0 5:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: feature index 5 out of range");
    expect_xc_error("1 5 4\n0 1:abc\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad value");
    expect_xc_error("1 5 4\n0 1:1e99\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad value");
    expect_xc_error("1 5 4\n0 1:2x\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad value");
    expect_xc_error("1 5 4\n0 1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad feature entry");
    expect_xc_error("1 5 4\nx 1:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad label index");
    expect_xc_error("1 5 4\n0,1, 1:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad label index");
    expect_xc_error("1 5 4\n0;1 1:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad label list");
    expect_xc_error("1 5 4\n0 99999999999:1\n", -1, 0, XMC_ERR_PARSE, "bad.txt:2: bad feature entry");
    expect_xc_error("0 1:1\n", 1, 0, XMC_ERR_PARSE, "bad.txt:1: expected a header");
    expect_xc_error("0 1:1\n1 0:1\n", 0, 1, XMC_ERR_PARSE, "bad.txt:2: feature index 0 out of range");
    xmci_dataset_xc_opts o;
    xmci_dataset_xc_opts_default(&o);
    xmci_dataset ds;
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_dataset_read_xc("/nonexistent/x.txt", &o, &ds, &err), XMC_ERR_IO);
    o.feature_base = 2;
    CU_ASSERT_EQUAL(xmci_dataset_read_xc("/nonexistent/x.txt", &o, &ds, &err), XMC_ERR_ARG);
}

static void test_smat_pair(void)
{
    xmci_dataset ds;
    xmc_error err = {0};
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    char xp[1024];
    snprintf(xp, sizeof xp, "%s", tu_data("pecos-xlinear/X.trn.txt"));
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_smat(xp, tu_data("pecos-xlinear/Y.trn.txt"), &ds, &err), XMC_OK);
    CU_ASSERT_EQUAL(ds.n, 2);
    CU_ASSERT_EQUAL(ds.X.cols, 16);
    CU_ASSERT_EQUAL(ds.X.indices[0], 1); /* sorted */
    CU_ASSERT(ds.num_labels > 0);
    xmci_dataset_free(&ds);
    const char *y3 = tmpfile_with("y3.txt", "3 2\n0:1\n1:1\n0:1\n");
    CU_ASSERT_EQUAL(xmci_dataset_read_smat(xp, y3, &ds, &err), XMC_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "y3.txt has 3"));
    CU_ASSERT_EQUAL(xmci_dataset_read_smat(xp, "/nonexistent/y.txt", &ds, &err), XMC_ERR_IO);
    const char *ybad = tmpfile_with("ybad.txt", "2 2\n0:1\n1:x\n");
    CU_ASSERT_EQUAL(xmci_dataset_read_smat(xp, ybad, &ds, &err), XMC_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ybad.txt:3:"));
}

static void test_labelmap(void)
{
    xmci_labelmap m;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_labelmap_init(&m, &err), XMC_OK);
    char name[32];
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t id;
        snprintf(name, sizeof name, "label %u", i);
        CU_ASSERT_EQUAL(xmci_labelmap_add(&m, name, strlen(name), &id, &err), XMC_OK);
        CU_ASSERT_EQUAL(id, i);
    }
    uint32_t id;
    CU_ASSERT_EQUAL(xmci_labelmap_add(&m, "label 7", 7, &id, &err), XMC_OK);
    CU_ASSERT_EQUAL(id, 7);
    CU_ASSERT_EQUAL(m.n, 5000);
    for (uint32_t i = 0; i < 5000; i += 97) {
        snprintf(name, sizeof name, "label %u", i);
        CU_ASSERT_EQUAL(xmci_labelmap_find(&m, name, strlen(name)), i);
    }
    CU_ASSERT_EQUAL(xmci_labelmap_find(&m, "label 1", 6), UINT32_MAX); /* a prefix is not a match */
    CU_ASSERT_EQUAL(xmci_labelmap_find(&m, "label 50000", 11), UINT32_MAX);
    xmci_labelmap_free(&m);
    const char *names[] = {"x", "y", "x"};
    CU_ASSERT_EQUAL(xmci_labelmap_from_names(&m, names, 2, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_labelmap_find(&m, "y", 1), 1);
    xmci_labelmap_free(&m);
    CU_ASSERT_EQUAL(xmci_labelmap_from_names(&m, names, 3, &err), XMC_ERR_ARG);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The first 300 / 100 documents of Reuters ModApte-90 train / test and the first 100 rows of yeast; the expected
 * numbers are printed by tests/tools/make_samples.py, which made the samples. */
static void test_real_samples(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmci_dataset tr, te;
    xmc_error err = {0};
    double t0 = now();
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_tsv(tu_data("reuters-sample/train.tsv"), NULL, &tr, &err), XMC_OK);
    double t1 = now();
    CU_ASSERT_EQUAL(tr.n, 300);
    CU_ASSERT_EQUAL(tr.num_labels, 56);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&tr.Y), 413);
    CU_ASSERT_STRING_EQUAL(tr.label_names[0], "cocoa");
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_tsv(tu_data("reuters-sample/test.tsv"), tr.labels, &te, &err), XMC_OK);
    CU_ASSERT_EQUAL(te.n, 100);
    CU_ASSERT_EQUAL(te.unknown_labels, 9); /* labels of the test sample absent from the train sample */
    CU_ASSERT_EQUAL(te.unknown_label_docs, 8);
    /* the time is reported, not asserted: a unit suite on a shared machine cannot promise one */
    printf("\n  reuters-sample/train.tsv read in %.4f s (%u docs, %u labels, %llu label entries)\n", t1 - t0, tr.n,
           tr.num_labels, (unsigned long long)xmci_csr_nnz(&tr.Y));
    xmci_dataset_free(&te);
    xmci_dataset_free(&tr);

    xmci_dataset_xc_opts o;
    xmci_dataset_xc_opts_default(&o);
    o.header = 0;
    o.feature_base = 1;
    CU_ASSERT_EQUAL_FATAL(xmci_dataset_read_xc(tu_data("yeast-sample/yeast_train.txt"), &o, &tr, &err), XMC_OK);
    CU_ASSERT_EQUAL(tr.n, 100);
    CU_ASSERT_EQUAL(tr.X.cols, 103);
    CU_ASSERT_EQUAL(tr.Y.cols, 14);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&tr.X), 100 * 103);
    xmci_dataset_free(&tr);
}

int main(int argc, char **argv)
{
    g_dir = tu_tmpdir();
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("dataset", NULL, NULL);
    TU_ADD(s, test_tsv);
    TU_ADD(s, test_tsv_errors);
    TU_ADD(s, test_xc);
    TU_ADD(s, test_xc_errors);
    TU_ADD(s, test_smat_pair);
    TU_ADD(s, test_labelmap);
    TU_ADD(s, test_real_samples);
    int rc = tu_run(argc, argv);
    tu_rmrf(g_dir);
    free(g_dir);
    return rc;
}
