/* test_tfidf_pecos.c: xmc's TF-IDF with PECOS's tokenization (split=space, casefold=0) against PECOS's own Tfidf
 * on the Reuters sample (tests/data/pecos-tfidf/reuters_sample.tsv, made by tests/tools/make_pecos_tfidf_ref.py):
 * the same feature count, idf and row values to 1e-5.
 *
 * The reference holds PECOS's feature count, the idf of a sample of its features and every value of six training
 * rows, each keyed by the n-gram's text, so feature numbering (which differs, docs/featurizer.md) does not matter.
 * The tolerance covers the six decimals PECOS writes idf with and the %.6g the rows were written with. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tfidf.h"

#define TOL 1e-5

typedef struct corpus {
    char *buf;
    const char **texts;
    size_t *lens;
    size_t n;
} corpus;

/* labels<TAB>text lines of path; 0 when the file is missing. */
static int load_tsv(const char *path, corpus *c)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    c->buf = malloc((size_t)size + 1);
    if (!c->buf || fread(c->buf, 1, (size_t)size, f) != (size_t)size) { fclose(f); return 0; }
    fclose(f);
    c->buf[size] = 0;
    size_t lines = 0;
    for (long i = 0; i < size; i++) lines += c->buf[i] == '\n';
    c->texts = malloc((lines + 1) * sizeof *c->texts);
    c->lens = malloc((lines + 1) * sizeof *c->lens);
    for (char *p = c->buf; *p;) {
        char *nl = strchr(p, '\n'), *tab = strchr(p, '\t');
        if (!nl || !tab || tab > nl) break;
        c->texts[c->n] = tab + 1;
        c->lens[c->n++] = (size_t)(nl - tab - 1);
        p = nl + 1;
    }
    return 1;
}

static void corpus_free(corpus *c)
{
    free(c->buf);
    free(c->texts);
    free(c->lens);
}

/* Value of the feature named (name, len) in row r of m, 0 if absent or unknown. */
static double value_in_row(const xmci_tfidf *tf, const xmci_csr *m, uint32_t r, const char *name, size_t len)
{
    uint32_t id = xmci_tfidf_lookup(tf, 0, name, len);
    if (id == UINT32_MAX) return 0;
    for (uint64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++)
        if (m->indices[p] == id) return m->data[p];
    return 0;
}

static void test_reuters_matches_pecos(void)
{
    corpus c;
    if (!tu_data_dir() || !load_tsv(tu_data("reuters-sample/train.tsv"), &c)) {
        CU_FAIL("tests/data/reuters-sample/train.tsv missing");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(c.n, 300);
    FILE *ref = fopen(tu_data("pecos-tfidf/reuters_sample.tsv"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2,min_df=2,sublinear=1,norm=l2,split=space,casefold=0",
                                                 &err), XMC_OK);
    xmci_tfidf *tf;
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_fit(&cfg, c.texts, c.lens, c.n, 2, &tf, &err), XMC_OK);
    xmci_csr m;
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_transform_batch(tf, c.texts, c.lens, c.n, 2, &m, &err), XMC_OK);

    char line[4096];
    unsigned n_idf = 0, n_val = 0, missing = 0, row_nnz[300] = {0}, dim_checked = 0;
    double max_idf = 0, max_val = 0;
    while (fgets(line, sizeof line, ref)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#') continue;
        char *f1 = strchr(line, '\t');
        if (!f1) continue;
        *f1++ = 0;
        if (!strcmp(line, "dim")) { /* dim<TAB>count: the only line with two fields */
            CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), (uint32_t)atol(f1));
            dim_checked = 1;
            continue;
        }
        char *last = strrchr(f1, '\t');
        if (!last) continue;
        *last++ = 0;
        double want = atof(last);
        if (!strcmp(line, "idf")) {
            uint32_t id = xmci_tfidf_lookup(tf, 0, f1, strlen(f1));
            if (id == UINT32_MAX) { missing++; continue; }
            double d = fabs(xmci_tfidf_idf_of(tf, id) - want);
            if (d > max_idf) max_idf = d;
            n_idf++;
        } else if (!strcmp(line, "row")) {
            char *name = strchr(f1, '\t');
            if (!name) continue;
            *name++ = 0;
            uint32_t r = (uint32_t)atol(f1);
            if (r >= m.rows) { missing++; continue; }
            if (xmci_tfidf_lookup(tf, 0, name, strlen(name)) == UINT32_MAX) { missing++; continue; }
            double d = fabs(value_in_row(tf, &m, r, name, strlen(name)) - want);
            if (d > max_val) max_val = d;
            row_nnz[r]++;
            n_val++;
        }
    }
    fclose(ref);
    /* the rows hold nothing PECOS's lack: same non-zero counts */
    unsigned nnz_diff = 0;
    for (uint32_t r = 0; r < m.rows; r++)
        if (row_nnz[r] && row_nnz[r] != m.indptr[r + 1] - m.indptr[r]) nnz_diff++;
    printf("\n  reuters, PECOS's tokens: %u features; %u idf max |diff| %.2g, %u row values max |diff| %.2g, "
           "%u reference n-grams missing, %u rows with another non-zero count\n",
           xmci_tfidf_dim(tf), n_idf, max_idf, n_val, max_val, missing, nnz_diff);
    CU_ASSERT(dim_checked);
    CU_ASSERT(n_idf > 200);
    CU_ASSERT(n_val > 500);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(nnz_diff, 0);
    CU_ASSERT(max_idf <= TOL);
    CU_ASSERT(max_val <= TOL);
    xmci_csr_free(&m);
    xmci_tfidf_free(tf);
    corpus_free(&c);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("tfidf_pecos", NULL, NULL);
    TU_ADD(s, test_reuters_matches_pecos);
    return tu_run(argc, argv);
}
