/* test_disentangle.c: label disentanglement (disentangle.h) on a constructed case: label 0's records are two
 * clear groups, its own words and records like label 9's (a homonym; label 9 is far from it); with
 * --disentangle 2 label 0 ends in two leaves, one of them label 9's, every other label in one, and its
 * recall under a narrow beam rises. Also the copy map's merge, storage and refusal of a damaged map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disentangle.h"
#include "testutil.h"
#include "train.h"
#include "xmc/train.h"
#include "xmc/xmc.h"

#define NLAB 16
#define PER 24          /* records per label; label 9 has 3 PER, label 0's second group PER / 2 */
#define NFEAT (3 * NLAB)

static xmci_csr x, y;
static uint32_t nrec;

/* One record: 2 of label j's 3 words, weights varying with i. */
static void add_record(float *dense, uint32_t row, uint32_t words_of, uint32_t i)
{
    float *r = dense + (size_t)row * NFEAT;
    r[3 * words_of + i % 3] = 1.0f;
    r[3 * words_of + (i + 1) % 3] = 0.5f + 0.05f * (float)(i % 7);
}

static int setup(void)
{
    nrec = NLAB * PER + 2 * PER + PER / 2;
    float *dense = calloc((size_t)nrec * NFEAT, sizeof *dense), *ydense = calloc((size_t)nrec * NLAB, sizeof *ydense);
    if (!dense || !ydense) return -1;
    uint32_t row = 0;
    for (uint32_t j = 0; j < NLAB; j++)
        for (uint32_t i = 0; i < (j == 9 ? 3 * PER : PER); i++, row++) {
            add_record(dense, row, j, i);
            ydense[(size_t)row * NLAB + j] = 1;
        }
    /* label 0's second group: records just like label 9's, fewer than label 9's own, so that a plain tree
     * routes them to label 9's leaf, where label 0 is not */
    for (uint32_t i = 0; i < PER / 2; i++, row++) {
        add_record(dense, row, 9, i);
        ydense[(size_t)row * NLAB + 0] = 1;
    }
    int rc = tu_csr_from_dense(&x, nrec, NFEAT, dense) || tu_csr_from_dense(&y, nrec, NLAB, ydense);
    free(dense);
    free(ydense);
    return rc ? -1 : 0;
}

static int teardown(void)
{
    xmci_csr_free(&x);
    xmci_csr_free(&y);
    return 0;
}

/* Trains with disentangle k into a fresh repository; returns it (owned) or NULL. */
static char *train(uint32_t k)
{
    char *repo = tu_tmpdir(), version[128]; /* owned (testutil.c strdups it) */
    xmci_train_opts o;
    xmci_train_opts_default(&o);
    o.tree.max_leaf_size = 2;
    o.tree.nr_splits = 2;
    o.xl.beam = 2; /* the routing beam; recall is measured at beam 1 */
    o.xl.topk = 2;
    o.threads = 1;
    o.disentangle = k;
    xmc_error err = {0};
    if (xmci_train(NULL, NULL, &x, &y, NULL, &o, repo, version, sizeof version, NULL, &err)) {
        fprintf(stderr, "train k=%u: %s\n", k, err.msg);
        free(repo);
        return NULL;
    }
    return repo;
}

/* Label 0 among the top 2 of its records, beam 1: the recall of label 0 in hundredths. */
static int recall0(const xmc_classifier *clf)
{
    xmc_workspace *ws;
    xmc_error err = {0};
    if (xmc_workspace_new(clf, &ws, &err)) return -1;
    int found = 0, total = 0;
    for (uint32_t r = 0; r < nrec; r++) {
        int has0 = 0;
        for (uint64_t p = y.indptr[r]; p < y.indptr[r + 1]; p++) has0 |= y.indices[p] == 0;
        if (!has0) continue;
        xmc_hit hits[2];
        uint32_t n = 0;
        xmc_predict_opts po = {1, 2, -1};
        if (xmc_classify_features(clf, ws, x.indices + x.indptr[r], x.data + x.indptr[r],
                                  (uint32_t)(x.indptr[r + 1] - x.indptr[r]), &po, hits, &n, &err))
            break;
        total++;
        for (uint32_t i = 0; i < n; i++) found += hits[i].label == 0;
        /* merged hits name each label once */
        CU_ASSERT(n < 2 || hits[0].label != hits[1].label);
    }
    xmc_workspace_free(ws);
    return total ? 100 * found / total : -1;
}

static void test_two_groups_two_leaves(void)
{
    char *plain = train(1), *dis = train(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dis);
    xmc_classifier *c1, *c2;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(plain, NULL, &c1, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(dis, NULL, &c2, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_classifier_disentangle(c1), 1);
    CU_ASSERT_EQUAL(xmc_classifier_disentangle(c2), 2);
    CU_ASSERT_EQUAL(xmc_classifier_num_labels(c2), NLAB);
    uint32_t leaves[4], leaf9[4];
    CU_ASSERT_EQUAL(xmc_classifier_label_leaves(c1, 0, leaves, 4), 1);
    CU_ASSERT_EQUAL(xmc_classifier_label_leaves(c2, 0, leaves, 4), 2);
    CU_ASSERT_EQUAL(xmc_classifier_label_leaves(c2, 9, leaf9, 4), 1);
    CU_ASSERT(leaves[0] != leaves[1]);
    CU_ASSERT(leaves[0] == leaf9[0] || leaves[1] == leaf9[0]);
    for (uint32_t l = 1; l < NLAB; l++) CU_ASSERT_EQUAL(xmc_classifier_label_leaves(c2, l, NULL, 0), 1);
    CU_ASSERT_EQUAL(xmc_classifier_label_leaves(c2, NLAB, NULL, 0), 0);
    int r1 = recall0(c1), r2 = recall0(c2);
    printf("\n  recall of label 0 at beam 1, top 2: %d%% plain, %d%% disentangled\n", r1, r2);
    CU_ASSERT(r1 >= 0 && r2 > r1);
    xmc_classifier_close(c1);
    xmc_classifier_close(c2);
    tu_rmrf(plain);
    tu_rmrf(dis);
    free(plain);
    free(dis);
}

static void test_merge_by_maximum(void)
{
    /* labels 0: copies 0,1; 1: copy 2; 2: copies 3,4,5 */
    const uint32_t copy_ptr[] = {0, 2, 3, 6};
    CU_ASSERT_EQUAL(xmci_copy_label(copy_ptr, 3, 0), 0);
    CU_ASSERT_EQUAL(xmci_copy_label(copy_ptr, 3, 1), 0);
    CU_ASSERT_EQUAL(xmci_copy_label(copy_ptr, 3, 2), 1);
    CU_ASSERT_EQUAL(xmci_copy_label(copy_ptr, 3, 5), 2);
    CU_ASSERT_EQUAL(xmci_copies_max(copy_ptr, 3), 3);
    const xmc_hit in[] = {{4, 0.9f}, {1, 0.8f}, {3, 0.7f}, {2, 0.6f}, {0, 0.5f}};
    xmc_hit out[3];
    CU_ASSERT_EQUAL_FATAL(xmci_copies_merge(copy_ptr, 3, in, 5, 3, out), 3);
    CU_ASSERT(out[0].label == 2 && out[0].score == 0.9f);
    CU_ASSERT(out[1].label == 0 && out[1].score == 0.8f);
    CU_ASSERT(out[2].label == 1 && out[2].score == 0.6f);
    CU_ASSERT_EQUAL(xmci_copies_merge(copy_ptr, 3, in, 5, 1, out), 1);
}

/* A copy map that does not span the copies, or gives a label more copies than xl.disentangle, is refused. */
static void test_damaged_copy_map_refused(void)
{
    char *dis = train(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dis);
    char cmd[8192];
    /* entry 1 of the map (after the 64-byte array header) made huge: with checksums the file is refused as
     * damaged, without them the map's own check refuses it */
    snprintf(cmd, sizeof cmd,
             "cd %s/*/ && printf '\\377\\377\\0\\0' | dd of=xl.copy_ptr.bin bs=1 seek=68 conv=notrunc status=none", dis);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    xmc_classifier *clf;
    xmc_error err = {0};
    xmc_open_opts no_sums = {0, 0};
    xmc_err rc = xmc_classifier_open(dis, &no_sums, &clf, &err);
    CU_ASSERT_EQUAL(rc, XMC_ERR_CORRUPT);
    if (rc == XMC_OK) xmc_classifier_close(clf);
    else printf("\n  refused: %s\n", err.msg);
    xmc_open_opts sums = {1, 0};
    CU_ASSERT_NOT_EQUAL(xmc_classifier_open(dis, &sums, &clf, &err), XMC_OK);
    tu_rmrf(dis);
    free(dis);
}

/* The public configuration takes 1..6 and defaults to one leaf per label. */
static void test_config_range(void)
{
    xmc_train_config cfg;
    xmc_error err = {0};
    xmc_train_config_default(&cfg);
    CU_ASSERT_EQUAL(cfg.disentangle, 1);
    for (uint32_t k = 0; k <= 7; k++) {
        cfg.disentangle = k;
        CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), k >= 1 && k <= 6 ? XMC_OK : XMC_ERR_ARG);
    }
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("disentangle", setup, teardown);
    TU_ADD(s, test_two_groups_two_leaves);
    TU_ADD(s, test_merge_by_maximum);
    TU_ADD(s, test_damaged_copy_map_refused);
    TU_ADD(s, test_config_range);
    return tu_run(argc, argv);
}
