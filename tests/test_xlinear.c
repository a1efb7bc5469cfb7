/* test_xlinear.c: XR-Linear against PECOS's golden fixtures (tests/data/pecos-xlinear):
 * - inference alone: PECOS's trained trees and weights (models/) + our beam search = golden predictions;
 * - training: our PIFA, tree, solver (dual, or primal for Yt_primal_pred) and negatives on X/Y, then our
 *   search = golden predictions, and for the primal solver also our weights = PECOS's trained weights;
 * each within GOLDEN_TOL, printing the max difference (missing entries count as 0, as PECOS's test compares). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "pifa.h"
#include "smat.h"
#include "testutil.h"
#include "tree.h"
#include "xlinear.h"

/* What README promises: PECOS's own test allows 1e-6; the float32 sums here land within ~1e-8 of its scores. */
#define GOLDEN_TOL 1e-7

static const char *G(const char *rel) { return tu_data(rel); }

static int read_m(const char *rel, xmci_csr *m)
{
    xmc_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s", G(rel));
    if (xmci_csr_read_text(path, m, &err)) { fprintf(stderr, "%s\n", err.msg); return -1; }
    return 0;
}

/* Max |ours - golden| over the dense 2 x 20 matrices. */
static double compare(const xmci_xlinear *m, const xmci_csr *x, const char *golden_rel, uint32_t beam, uint32_t topk,
                      int post, const char *what)
{
    xmci_csr g;
    if (read_m(golden_rel, &g)) return 1e9;
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(m, beam > topk ? beam : topk, &ws, &err), XMC_OK);
    double maxd = 0;
    xmc_hit hits[64];
    for (uint32_t r = 0; r < x->rows; r++) {
        float dense_ours[64] = {0}, dense_gold[64] = {0};
        uint64_t b = x->indptr[r];
        uint32_t n = xmci_beam_search(m, ws, x->indices + b, x->data + b, (uint32_t)(x->indptr[r + 1] - b), beam, topk,
                                     post, 0, hits);
        for (uint32_t i = 0; i < n; i++) dense_ours[hits[i].label] = hits[i].score;
        for (uint64_t p = g.indptr[r]; p < g.indptr[r + 1]; p++) dense_gold[g.indices[p]] = g.data[p];
        for (uint32_t c = 0; c < g.cols; c++) {
            double d = fabs((double)dense_ours[c] - dense_gold[c]);
            if (d > maxd) maxd = d;
        }
        CU_ASSERT_EQUAL(n, g.indptr[r + 1] - g.indptr[r]);
    }
    printf("  %-34s max |diff| = %.3g\n", what, maxd);
    xmci_beam_ws_free(ws);
    xmci_csr_free(&g);
    return maxd;
}

/* Loads PECOS's dumped model folder into our layout. */
static int load_pecos_model(const char *dir, uint32_t depth, xmci_xlinear *m, xmci_tree *tree)
{
    xmci_csr c[8];
    char rel[256];
    xmc_error err = {0};
    for (uint32_t t = 0; t < depth; t++) {
        snprintf(rel, sizeof rel, "pecos-xlinear/models/%s/layer%u.C.txt", dir, t);
        if (read_m(rel, &c[t])) return -1;
    }
    if (xmci_tree_from_chain(c, depth, tree, &err)) { fprintf(stderr, "%s\n", err.msg); return -1; }
    memset(m, 0, sizeof *m);
    m->depth = depth;
    m->bias = 1.0f;
    for (uint32_t t = 0; t < depth; t++) {
        xmci_csr w, wt;
        snprintf(rel, sizeof rel, "pecos-xlinear/models/%s/layer%u.W.txt", dir, t);
        if (read_m(rel, &w)) return -1;
        m->nr_features = w.rows - 1;
        if (xmci_csr_transpose(&w, &wt, &err)) return -1;
        if (xmci_layer_build(&wt, tree->parent[t], t == 0 ? 1 : tree->nr_nodes[t - 1], &m->layers[t], &err)) return -1;
        xmci_csr_free(&w);
        xmci_csr_free(&wt);
        xmci_csr_free(&c[t]);
    }
    return 0;
}

static void test_inference_on_pecos_models(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmci_csr x;
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/X.tst.txt", &x), 0);
    xmci_csr_sort_indices(&x);
    struct { const char *dir; uint32_t depth; const char *golden; uint32_t beam, topk; int post; } cases[] = {
        {"default_mls10", 2, "pecos-xlinear/Yt_pred.txt", 10, 20, XMC_POST_L3_HINGE},
        {"tfn_man", 2, "pecos-xlinear/Yt_pred_tfn_man.txt", 4, 20, XMC_POST_SIGMOID},
        {"nr_splits_2", 5, "pecos-xlinear/P_nr_splits_2.txt", 10, 20, XMC_POST_L3_HINGE},
        {"nr_splits_4", 3, "pecos-xlinear/P_nr_splits_4.txt", 10, 20, XMC_POST_L3_HINGE},
        {"primal", 2, "pecos-xlinear/Yt_primal_pred.txt", 10, 20, XMC_POST_L3_HINGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xmci_xlinear m;
        xmci_tree tree;
        CU_ASSERT_EQUAL_FATAL(load_pecos_model(cases[i].dir, cases[i].depth, &m, &tree), 0);
        char what[128];
        snprintf(what, sizeof what, "predict with PECOS model %s", cases[i].dir);
        CU_ASSERT(compare(&m, &x, cases[i].golden, cases[i].beam, cases[i].topk, cases[i].post, what) <= GOLDEN_TOL);
        xmci_xlinear_free(&m);
        xmci_tree_free(&tree);
    }
    xmci_csr_free(&x);
}

/* Max |ours - PECOS| over every layer's dense weight matrix, against the model PECOS trained (models/DIR);
 * a structural mismatch (another tree) counts as 1e9. */
static double compare_weights(const xmci_xlinear *m, const char *dir)
{
    double maxd = 0;
    xmc_error err = {0};
    for (uint32_t t = 0; t < m->depth; t++) {
        char rel[256];
        xmci_csr g, gt, w;
        snprintf(rel, sizeof rel, "pecos-xlinear/models/%s/layer%u.W.txt", dir, t);
        if (read_m(rel, &g)) return 1e9;
        CU_ASSERT_EQUAL_FATAL(xmci_csr_transpose(&g, &gt, &err), XMC_OK);
        xmci_csr_sort_indices(&gt);
        CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m->layers[t], m->nr_features, &w, &err), XMC_OK);
        xmci_csr_sort_indices(&w);
        if (w.rows != gt.rows || w.cols != gt.cols) maxd = 1e9;
        for (uint32_t r = 0; r < w.rows && r < gt.rows; r++) {
            double dense[4096] = {0};
            if (gt.cols > 4096) return 1e9;
            for (uint64_t q = gt.indptr[r]; q < gt.indptr[r + 1]; q++) dense[gt.indices[q]] -= gt.data[q];
            for (uint64_t q = w.indptr[r]; q < w.indptr[r + 1]; q++) dense[w.indices[q]] += w.data[q];
            for (uint32_t c = 0; c < gt.cols; c++)
                if (fabs(dense[c]) > maxd) maxd = fabs(dense[c]);
        }
        xmci_csr_free(&g);
        xmci_csr_free(&gt);
        xmci_csr_free(&w);
    }
    return maxd;
}

/* Trains on X/Y, compares the predictions with golden; with model_dir also the weights with PECOS's model
 * (*wdiff). */
static double train_and_compare_model(uint32_t nr_splits, uint32_t max_leaf, int negatives, uint32_t man_beam,
                                      int man_post, int solver_type, const char *golden, uint32_t beam, int post,
                                      const char *what, const char *model_dir, double *wdiff)
{
    xmci_csr x, y, z;
    xmc_error err = {0};
    if (read_m("pecos-xlinear/X.trn.txt", &x) || read_m("pecos-xlinear/Y.trn.txt", &y)) return 1e9;
    xmci_csr_sort_indices(&x);
    CU_ASSERT_EQUAL_FATAL(xmci_pifa(&x, &y, &z, &err), XMC_OK);
    xmci_tree_params tp;
    xmci_tree_params_default(&tp);
    tp.nr_splits = nr_splits;
    tp.max_leaf_size = max_leaf;
    xmci_tree tree;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&z, &tp, &tree, &err), XMC_OK);
    xmci_xlinear_params p;
    xmci_xlinear_params_default(&p);
    p.negatives = negatives;
    p.man_beam = man_beam;
    p.man_post = man_post;
    p.solver_type = solver_type;
    xmci_xlinear m;
    CU_ASSERT_EQUAL_FATAL(xmci_xlinear_train(&x, &y, &tree, &p, &m, &err), XMC_OK);
    double d = compare(&m, &x, golden, beam, 20, post, what);
    if (model_dir) {
        *wdiff = compare_weights(&m, model_dir);
        printf("  %-34s max |diff| = %.3g\n", "  weights vs PECOS's trained model", *wdiff);
    }
    xmci_xlinear_free(&m);
    xmci_tree_free(&tree);
    xmci_csr_free(&x);
    xmci_csr_free(&y);
    xmci_csr_free(&z);
    return d;
}

static double train_and_compare(uint32_t nr_splits, uint32_t max_leaf, int negatives, uint32_t man_beam, int man_post,
                                int solver_type, const char *golden, uint32_t beam, int post, const char *what)
{
    return train_and_compare_model(nr_splits, max_leaf, negatives, man_beam, man_post, solver_type, golden, beam,
                                   post, what, NULL, NULL);
}

static void test_training_reproduces_pecos(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    CU_ASSERT(train_and_compare(16, 10, XMCI_NEG_TFN, 0, -1, XMCI_SOLVER_DUAL, "pecos-xlinear/Yt_pred.txt", 10,
                                XMC_POST_L3_HINGE, "train default (leaf 10)") <= GOLDEN_TOL);
    CU_ASSERT(train_and_compare(16, 10, XMCI_NEG_TFN | XMCI_NEG_MAN, 2, XMC_POST_NOOP, XMCI_SOLVER_DUAL,
                                "pecos-xlinear/Yt_pred_tfn_man.txt", 4, XMC_POST_SIGMOID, "train tfn+man") <= GOLDEN_TOL);
    CU_ASSERT(train_and_compare(2, 2, XMCI_NEG_TFN, 0, -1, XMCI_SOLVER_DUAL, "pecos-xlinear/P_nr_splits_2.txt", 10,
                                XMC_POST_L3_HINGE, "train nr_splits 2, leaf 2") <= GOLDEN_TOL);
    CU_ASSERT(train_and_compare(4, 2, XMCI_NEG_TFN, 0, -1, XMCI_SOLVER_DUAL, "pecos-xlinear/P_nr_splits_4.txt", 10,
                                XMC_POST_L3_HINGE, "train nr_splits 4, leaf 2") <= GOLDEN_TOL);
    /* L2R_L2LOSS_SVC_PRIMAL (newton_eps 0.01): predictions, and the weights against PECOS's own model */
    double wd = 1e9;
    CU_ASSERT(train_and_compare_model(16, 10, XMCI_NEG_TFN, 0, -1, XMCI_SOLVER_PRIMAL, "pecos-xlinear/Yt_primal_pred.txt",
                                      10, XMC_POST_L3_HINGE, "train primal solver (leaf 10)", "primal", &wd) <= GOLDEN_TOL);
    CU_ASSERT(wd <= GOLDEN_TOL);
}

static void test_pifa_golden(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmci_csr x, y, z, g;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/X.trn.txt", &x), 0);
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/Y.trn.txt", &y), 0);
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/L.pifa.txt", &g), 0);
    xmci_csr_sort_indices(&x);
    xmci_csr_sort_indices(&g);
    CU_ASSERT_EQUAL_FATAL(xmci_pifa(&x, &y, &z, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_csr_nnz(&z), xmci_csr_nnz(&g));
    for (uint32_t r = 0; r < g.rows; r++) {
        CU_ASSERT_EQUAL(z.indptr[r + 1], g.indptr[r + 1]);
        for (uint64_t p = g.indptr[r]; p < g.indptr[r + 1] && p < xmci_csr_nnz(&z); p++) {
            CU_ASSERT_EQUAL(z.indices[p], g.indices[p]);
            CU_ASSERT_DOUBLE_EQUAL(z.data[p], g.data[p], 1e-6);
        }
    }
    xmci_csr_free(&x);
    xmci_csr_free(&y);
    xmci_csr_free(&z);
    xmci_csr_free(&g);
}

/* Every thread count gives the same weights, bit for bit: a layer's work is cut into units of a parent and a run
 * of its children (the top layer's one parent among all threads), and a child's solve must not depend on which
 * thread took it or what that thread trained before. */
static void test_threads_give_same_weights(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmci_csr x, y, z;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/X.trn.txt", &x), 0);
    CU_ASSERT_EQUAL_FATAL(read_m("pecos-xlinear/Y.trn.txt", &y), 0);
    xmci_csr_sort_indices(&x);
    CU_ASSERT_EQUAL_FATAL(xmci_pifa(&x, &y, &z, &err), XMC_OK);
    const uint32_t splits[][2] = {{16, 10}, {2, 2}};   /* one top parent of 2 children; a deep binary tree */
    for (size_t c = 0; c < sizeof splits / sizeof *splits; c++) {
        xmci_tree_params tp;
        xmci_tree_params_default(&tp);
        tp.nr_splits = splits[c][0];
        tp.max_leaf_size = splits[c][1];
        xmci_tree tree;
        CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&z, &tp, &tree, &err), XMC_OK);
        xmci_xlinear m[3];
        const int threads[3] = {1, 2, 3};
        for (int k = 0; k < 3; k++) {
            xmci_xlinear_params p;
            xmci_xlinear_params_default(&p);
            p.threads = threads[k];
            CU_ASSERT_EQUAL_FATAL(xmci_xlinear_train(&x, &y, &tree, &p, &m[k], &err), XMC_OK);
        }
        int same = 1;
        for (int k = 1; k < 3; k++)
            for (uint32_t t = 0; t < m[0].depth; t++) {
                xmci_csr a, b;
                CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m[0].layers[t], m[0].nr_features, &a, &err), XMC_OK);
                CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m[k].layers[t], m[k].nr_features, &b, &err), XMC_OK);
                uint64_t nnz = xmci_csr_nnz(&a);
                same &= a.rows == b.rows && nnz == xmci_csr_nnz(&b) &&
                        !memcmp(a.indptr, b.indptr, ((size_t)a.rows + 1) * sizeof *a.indptr) &&
                        !memcmp(a.indices, b.indices, nnz * sizeof *a.indices) &&
                        !memcmp(a.data, b.data, nnz * sizeof *a.data);
                xmci_csr_free(&a);
                xmci_csr_free(&b);
            }
        printf("  nr_splits %u, leaf %u: %u layers, threads 1/2/3 %s\n", splits[c][0], splits[c][1], m[0].depth,
               same ? "bit-identical" : "DIFFER");
        CU_ASSERT(same);
        for (int k = 0; k < 3; k++) xmci_xlinear_free(&m[k]);
        xmci_tree_free(&tree);
    }
    xmci_csr_free(&x);
    xmci_csr_free(&y);
    xmci_csr_free(&z);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("xlinear", NULL, NULL);
    TU_ADD(s, test_pifa_golden);
    TU_ADD(s, test_inference_on_pecos_models);
    TU_ADD(s, test_training_reproduces_pecos);
    TU_ADD(s, test_threads_give_same_weights);
    return tu_run(argc, argv);
}
