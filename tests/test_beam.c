/* test_beam.c: beam search on models built by hand (xmci_layer_build), where every score can be worked out
 * here: the post-processors' transform and combine, the beam cutting off a good label under a poor parent,
 * ties keeping the earlier candidate, top-k counts, unseen features, empty documents, and the batch search
 * equal to one-by-one search with 1 and 2 threads.
 *
 * The small model (3 features + bias, bias value 1):
 *   layer 0: node 0 = 2 f0,  node 1 = 0.5 f0 + 0.25 bias               (both under the root)
 *   layer 1: label 0 = f1 + 0.7 f2, label 1 = 0.2 f0 + 0.7 f2  (under node 0)
 *            label 2 = 3 f0 + f1,   label 3 = -0.5 bias         (under node 1)
 * Scores are recomputed here in double with the formulas of xmc.h, not with beam.c's functions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "rng.h"
#include "testutil.h"
#include "xlinear.h"

#define NF 3

static const float W0[2][NF + 1] = {{2, 0, 0, 0}, {0.5f, 0, 0, 0.25f}};
static const uint32_t P0[2] = {0, 0};
static const float W1[4][NF + 1] = {{0, 1, 0.7f, 0}, {0.2f, 0, 0.7f, 0}, {3, 1, 0, 0}, {0, 0, 0, -0.5f}};
static const uint32_t P1[4] = {0, 0, 1, 1};

static void build_layer(xmci_layer *L, uint32_t nodes, uint32_t nf, const float *dense, const uint32_t *parent,
                        uint32_t nr_parents)
{
    xmci_csr w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&w, nodes, nf + 1, dense), 0);
    CU_ASSERT_EQUAL_FATAL(xmci_layer_build(&w, parent, nr_parents, L, &err), XMC_OK);
    xmci_csr_free(&w);
}

static void small_model(xmci_xlinear *m)
{
    memset(m, 0, sizeof *m);
    m->depth = 2;
    m->nr_features = NF;
    m->bias = 1;
    m->beam = 2;
    m->topk = 4;
    m->post = XMC_POST_L3_HINGE;
    build_layer(&m->layers[0], 2, NF, &W0[0][0], P0, 1);
    build_layer(&m->layers[1], 4, NF, &W1[0][0], P1, 2);
}

/* ---- the reference ------------------------------------------------------------------------------------- */

static double ref_transform(int post, double v)
{
    double h = v < 1 ? 1 - v : 0;
    switch (post) {
    case XMC_POST_L3_HINGE: return exp(-h * h * h);
    case XMC_POST_L2_HINGE: return exp(-h * h);
    case XMC_POST_L1_HINGE: return exp(-h);
    case XMC_POST_SIGMOID: return 1 / (1 + exp(-v));
    case XMC_POST_LOG_SIGMOID: return -log(1 + exp(-v));
    default: return v;
    }
}

static double ref_combine(int post, double child, double parent)
{
    if (post == XMC_POST_NOOP) return child;
    if (post == XMC_POST_LOG_SIGMOID) return child + parent;
    return child * parent;
}

/* raw score of a row of a dense weight matrix for a dense document (bias value 1 in column NF) */
static double raw(const float *w, const double *doc)
{
    double s = w[NF];
    for (int f = 0; f < NF; f++) s += (double)w[f] * doc[f];
    return s;
}

/* The small model's search, beam >= 2 (every node kept): labels in order, best first, ties in candidate
 * order (parents by rank, then children). Returns the count (4). */
static uint32_t ref_search(int post, const double *doc, uint32_t k, uint32_t *labels, double *scores)
{
    double ps[2] = {ref_transform(post, raw(W0[0], doc)), ref_transform(post, raw(W0[1], doc))};
    int first = ps[1] > ps[0] ? 1 : 0; /* rank of the parents, ties to node 0 */
    uint32_t cand[4];
    double cs[4];
    int n = 0;
    for (int r = 0; r < 2; r++) {
        int p = r == 0 ? first : 1 - first;
        for (uint32_t l = 0; l < 4; l++)
            if (P1[l] == (uint32_t)p) {
                cand[n] = l;
                cs[n] = ref_combine(post, ref_transform(post, raw(W1[l], doc)), ps[p]);
                n++;
            }
    }
    /* stable insertion sort, descending */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && cs[j - 1] < cs[j]; j--) {
            double ts = cs[j]; cs[j] = cs[j - 1]; cs[j - 1] = ts;
            uint32_t tl = cand[j]; cand[j] = cand[j - 1]; cand[j - 1] = tl;
        }
    uint32_t m = k < 4 ? k : 4;
    for (uint32_t i = 0; i < m; i++) { labels[i] = cand[i]; scores[i] = cs[i]; }
    return m;
}

/* ---- tests --------------------------------------------------------------------------------------------- */

static void test_post_processors(void)
{
    const double e = 1e-6;
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L3_HINGE, 0.5f), exp(-0.125), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L3_HINGE, 2.0f), 1.0, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L3_HINGE, 1.0f), 1.0, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L3_HINGE, -1.0f), exp(-8.0), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L2_HINGE, 0.5f), exp(-0.25), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_L1_HINGE, 0.5f), exp(-0.5), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_SIGMOID, 0.0f), 0.5, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_SIGMOID, 2.0f), 1 / (1 + exp(-2.0)), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_SIGMOID, -3.0f), 1 / (1 + exp(3.0)), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_NOOP, -3.5f), -3.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_NOOP, 7.25f), 7.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_LOG_SIGMOID, 0.0f), -log(2.0), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_LOG_SIGMOID, 2.0f), -log(1 + exp(-2.0)), e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_transform(XMC_POST_LOG_SIGMOID, -2.0f), -log(1 + exp(2.0)), e);
    /* combine: multiply for the probability-like ones, the child alone for noop, add for log-sigmoid */
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_combine(XMC_POST_L3_HINGE, 0.5f, 0.8f), 0.4, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_combine(XMC_POST_SIGMOID, 0.5f, 0.8f), 0.4, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_combine(XMC_POST_L1_HINGE, 0.25f, 0.5f), 0.125, e);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_combine(XMC_POST_NOOP, 0.5f, 0.8f), 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(xmci_post_combine(XMC_POST_LOG_SIGMOID, -0.5f, -0.25f), -0.75, e);
    /* names */
    CU_ASSERT_EQUAL(xmc_post_from_name("l3-hinge"), XMC_POST_L3_HINGE);
    CU_ASSERT_EQUAL(xmc_post_from_name("sigmoid"), XMC_POST_SIGMOID);
    CU_ASSERT_EQUAL(xmc_post_from_name("noop"), XMC_POST_NOOP);
    CU_ASSERT_EQUAL(xmc_post_from_name("log-sigmoid"), XMC_POST_LOG_SIGMOID);
    CU_ASSERT_EQUAL(xmc_post_from_name("L3-hinge"), -1);
    CU_ASSERT_EQUAL(xmc_post_from_name(NULL), -1);
    for (int p = 0; p < XMC_POST__COUNT; p++) CU_ASSERT_EQUAL(xmc_post_from_name(xmc_post_name((xmc_post)p)), p);
    CU_ASSERT_STRING_EQUAL(xmc_post_name((xmc_post)99), "unknown");
}

/* Every post-processor, several documents, against the reference. */
static void test_search_by_hand(void)
{
    xmci_xlinear m;
    small_model(&m);
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 8, &ws, &err), XMC_OK);
    static const double docs[][NF] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5, 0.3, 0.9}, {0, 0, 0}, {-1, 2, 0.5}};
    for (int post = 0; post < XMC_POST__COUNT; post++) {
        for (size_t d = 0; d < sizeof docs / sizeof *docs; d++) {
            uint32_t idx[NF], nnz = 0;
            float val[NF];
            for (uint32_t f = 0; f < NF; f++)
                if (docs[d][f] != 0) { idx[nnz] = f; val[nnz] = (float)docs[d][f]; nnz++; }
            for (uint32_t k = 1; k <= 5; k++) {
                xmc_hit hits[8];
                uint32_t labels[4];
                double scores[4];
                uint32_t n = xmci_beam_search(&m, ws, idx, val, nnz, 2, k, post, 0, hits);
                uint32_t want = ref_search(post, docs[d], k, labels, scores);
                CU_ASSERT_EQUAL(n, want);
                for (uint32_t i = 0; i < n && i < want; i++) {
                    CU_ASSERT_EQUAL(hits[i].label, labels[i]);
                    CU_ASSERT_DOUBLE_EQUAL(hits[i].score, scores[i], 1e-5 * (1 + fabs(scores[i])));
                    if (hits[i].label != labels[i] || fabs(hits[i].score - scores[i]) > 1e-5 * (1 + fabs(scores[i])))
                        fprintf(stderr, "post %s doc %zu k %u hit %u: %u %.7g, want %u %.7g\n",
                                xmc_post_name((xmc_post)post), d, k, i, hits[i].label, (double)hits[i].score,
                                labels[i], scores[i]);
                }
            }
        }
    }
    xmci_beam_ws_free(ws);
    xmci_xlinear_free(&m);
}

/* Document f0 = 1 under l3-hinge: node 0 (raw 2 -> 1.0) beats node 1 (raw 0.75 -> 0.9845), but node 1's
 * label 2 (raw 3) is the best label. Beam 1 never looks under node 1; beam 2 does. */
static void test_beam_width(void)
{
    xmci_xlinear m;
    small_model(&m);
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 8, &ws, &err), XMC_OK);
    uint32_t idx[1] = {0};
    float val[1] = {1};
    xmc_hit hits[8];
    uint32_t n = xmci_beam_search(&m, ws, idx, val, 1, 1, 4, XMC_POST_L3_HINGE, 0, hits);
    CU_ASSERT_EQUAL(n, 2); /* only node 0's two children were candidates */
    CU_ASSERT_EQUAL(hits[0].label, 1);
    CU_ASSERT_DOUBLE_EQUAL(hits[0].score, exp(-0.512), 1e-6);
    CU_ASSERT_EQUAL(hits[1].label, 0);
    for (uint32_t i = 0; i < n; i++) CU_ASSERT(hits[i].label != 2);
    n = xmci_beam_search(&m, ws, idx, val, 1, 2, 4, XMC_POST_L3_HINGE, 0, hits);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(hits[0].label, 2);
    CU_ASSERT_DOUBLE_EQUAL(hits[0].score, exp(-0.015625), 1e-6);
    /* beam 0 means 1; a beam above the workspace's max_k is clamped to it */
    n = xmci_beam_search(&m, ws, idx, val, 1, 0, 4, XMC_POST_L3_HINGE, 0, hits);
    CU_ASSERT(n == 2 && hits[0].label == 1);
    /* nlayers 1 stops at the clusters: node 0 first */
    n = xmci_beam_search(&m, ws, idx, val, 1, 2, 2, XMC_POST_L3_HINGE, 1, hits);
    CU_ASSERT(n == 2 && hits[0].label == 0 && hits[1].label == 1);
    CU_ASSERT_DOUBLE_EQUAL(hits[1].score, exp(-0.015625), 1e-6);
    xmci_beam_ws_free(ws);
    xmci_xlinear_free(&m);
}

/* Document f1 = 1 under noop: node 1 (bias 0.25) ranks above node 0 (0); labels 0 and 2 both score 1.
 * The earlier candidate is label 2 (under the first-ranked parent), not the lower id. Document f2 = 1:
 * labels 0 and 1 tie under one parent, the earlier child wins. */
static void test_ties(void)
{
    xmci_xlinear m;
    small_model(&m);
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 8, &ws, &err), XMC_OK);
    uint32_t idx[1] = {1};
    float val[1] = {1};
    xmc_hit hits[8];
    uint32_t n = xmci_beam_search(&m, ws, idx, val, 1, 2, 1, XMC_POST_NOOP, 0, hits);
    CU_ASSERT(n == 1 && hits[0].label == 2 && hits[0].score == 1.0f);
    n = xmci_beam_search(&m, ws, idx, val, 1, 2, 2, XMC_POST_NOOP, 0, hits);
    CU_ASSERT(n == 2 && hits[0].label == 2 && hits[1].label == 0 && hits[1].score == 1.0f);
    idx[0] = 2;
    n = xmci_beam_search(&m, ws, idx, val, 1, 2, 1, XMC_POST_NOOP, 0, hits);
    CU_ASSERT(n == 1 && hits[0].label == 0);
    n = xmci_beam_search(&m, ws, idx, val, 1, 2, 4, XMC_POST_NOOP, 0, hits);
    CU_ASSERT(n == 4 && hits[0].label == 0 && hits[1].label == 1);
    /* the empty document under noop: labels 2, 0, 1 all score 0; candidate order is 2, 3, 0, 1 */
    n = xmci_beam_search(&m, ws, NULL, NULL, 0, 2, 4, XMC_POST_NOOP, 0, hits);
    CU_ASSERT(n == 4 && hits[0].label == 2 && hits[1].label == 0 && hits[2].label == 1 && hits[3].label == 3);
    /* ties at the layer-0 cut: a model whose two clusters tie keeps cluster 0 with beam 1 */
    xmci_xlinear t;
    small_model(&t);
    xmci_layer_free(&t.layers[0]);
    static const float tie0[2][NF + 1] = {{0, 0, 0, 0.5f}, {0, 0, 0, 0.5f}};
    build_layer(&t.layers[0], 2, NF, &tie0[0][0], P0, 1);
    n = xmci_beam_search(&t, ws, NULL, NULL, 0, 1, 4, XMC_POST_SIGMOID, 0, hits);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(hits[0].label < 2 && hits[1].label < 2);
    xmci_xlinear_free(&t);
    xmci_beam_ws_free(ws);
    xmci_xlinear_free(&m);
}

static void test_topk_count(void)
{
    xmci_xlinear m;
    small_model(&m);
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 3, &ws, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_beam_ws_max_k(ws), 3);
    uint32_t idx[2] = {0, 2};
    float val[2] = {1, 1};
    xmc_hit hits[8];
    for (uint32_t k = 1; k <= 3; k++) CU_ASSERT_EQUAL(xmci_beam_search(&m, ws, idx, val, 2, 2, k, 0, 0, hits), k);
    /* k above max_k (3) is clamped; k 0 means 1 */
    CU_ASSERT_EQUAL(xmci_beam_search(&m, ws, idx, val, 2, 2, 7, 0, 0, hits), 3);
    CU_ASSERT_EQUAL(xmci_beam_search(&m, ws, idx, val, 2, 2, 0, 0, 0, hits), 1);
    xmci_beam_ws_free(ws);
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 10, &ws, &err), XMC_OK);
    /* fewer labels than k: all 4 */
    CU_ASSERT_EQUAL(xmci_beam_search(&m, ws, idx, val, 2, 10, 10, 0, 0, hits), 4);
    xmci_beam_ws_free(ws);
    xmci_xlinear_free(&m);
}

/* Features >= nr_features are dropped, the bias feature's id (3) included: a document may not add to the
 * bias weight. */
static void test_unseen_features(void)
{
    xmci_xlinear m;
    small_model(&m);
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 8, &ws, &err), XMC_OK);
    uint32_t idx_a[1] = {0}, idx_b[4] = {0, 3, 7, 4000000000u};
    float val_a[1] = {1}, val_b[4] = {1, 5, 2, 9};
    for (int post = 0; post < XMC_POST__COUNT; post++) {
        xmc_hit a[8], b[8];
        uint32_t na = xmci_beam_search(&m, ws, idx_a, val_a, 1, 2, 4, post, 0, a);
        uint32_t nb = xmci_beam_search(&m, ws, idx_b, val_b, 4, 2, 4, post, 0, b);
        CU_ASSERT(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    }
    /* only unseen features = the empty document */
    uint32_t idx_c[2] = {3, 5};
    float val_c[2] = {1, 1};
    xmc_hit c[8], e[8];
    uint32_t nc = xmci_beam_search(&m, ws, idx_c, val_c, 2, 2, 4, XMC_POST_L3_HINGE, 0, c);
    uint32_t ne = xmci_beam_search(&m, ws, NULL, NULL, 0, 2, 4, XMC_POST_L3_HINGE, 0, e);
    CU_ASSERT(nc == ne && memcmp(c, e, nc * sizeof *c) == 0);
    /* the empty document by hand: label 3 = t(-0.5) * t(0.25) under l3-hinge */
    double want3 = exp(-1.5 * 1.5 * 1.5) * exp(-0.75 * 0.75 * 0.75);
    int found = 0;
    for (uint32_t i = 0; i < ne; i++)
        if (e[i].label == 3) { found = 1; CU_ASSERT_DOUBLE_EQUAL(e[i].score, want3, 1e-6); }
    CU_ASSERT(found);
    xmci_beam_ws_free(ws);
    xmci_xlinear_free(&m);
}

/* ---- a bigger random model: chunk scoring paths and the batch search ------------------------------------ */

#define BF 60

/* depth-3 model 4 / 12 / 40 nodes over BF features with random weights; bias 1 */
static void random_model(xmci_xlinear *m, uint32_t seed)
{
    static const uint32_t nodes[3] = {4, 12, 40};
    memset(m, 0, sizeof *m);
    m->depth = 3;
    m->nr_features = BF;
    m->bias = 1;
    m->beam = 3;
    m->topk = 5;
    xmc_rng rng;
    xmc_rng_seed(&rng, seed);
    for (uint32_t t = 0; t < 3; t++) {
        float *dense = calloc((size_t)nodes[t] * (BF + 1), sizeof *dense);
        uint32_t *parent = malloc(nodes[t] * sizeof *parent);
        uint32_t above = t ? nodes[t - 1] : 1;
        for (uint32_t j = 0; j < nodes[t]; j++) {
            parent[j] = t ? (uint32_t)xmc_rng_uniform(&rng, 0, above - 1) : 0;
            if (t && j < above) parent[j] = j; /* no childless parent */
            for (uint32_t f = 0; f <= BF; f++)
                if (xmc_rng_uniform(&rng, 0, 1)) dense[(size_t)j * (BF + 1) + f] = ((float)xmc_rng_uniform(&rng, 0, 2000) - 1000) / 1000.0f;
        }
        build_layer(&m->layers[t], nodes[t], BF, dense, parent, above);
        free(dense);
        free(parent);
    }
}

static void random_docs(xmci_csr *x, uint32_t rows, uint32_t cols, uint32_t seed)
{
    xmc_rng rng;
    xmc_rng_seed(&rng, seed);
    float *dense = calloc((size_t)rows * cols, sizeof *dense);
    for (uint32_t r = 0; r < rows; r++) {
        uint32_t density = (uint32_t)xmc_rng_uniform(&rng, 1, 40); /* 2.5% .. 100% of the features */
        for (uint32_t f = 0; f < cols; f++)
            if (xmc_rng_uniform(&rng, 0, 39) < density) dense[(size_t)r * cols + f] = (float)xmc_rng_uniform(&rng, 1, 1000) / 1000.0f;
    }
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(x, rows, cols, dense), 0);
    free(dense);
}

/* Layer 0 alone (nlayers 1, noop) is w . x + bias: both the merge and the binary-search chunk paths agree
 * with the weights read back through xmci_layer_weights. */
static void test_chunk_scores(void)
{
    xmci_xlinear m;
    random_model(&m, 1);
    xmci_csr w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m.layers[0], BF, &w, &err), XMC_OK);
    xmci_csr x;
    random_docs(&x, 100, BF, 2);
    xmci_beam_ws *ws;
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 4, &ws, &err), XMC_OK);
    double maxd = 0;
    for (uint32_t r = 0; r < x.rows; r++) {
        double want[4];
        for (uint32_t j = 0; j < 4; j++) {
            double s = 0;
            for (uint64_t q = w.indptr[j]; q < w.indptr[j + 1]; q++) {
                if (w.indices[q] == BF) { s += w.data[q]; continue; }
                for (uint64_t e = x.indptr[r]; e < x.indptr[r + 1]; e++)
                    if (x.indices[e] == w.indices[q]) s += (double)w.data[q] * x.data[e];
            }
            want[j] = s;
        }
        xmc_hit hits[4];
        uint64_t b = x.indptr[r];
        uint32_t n = xmci_beam_search(&m, ws, x.indices + b, x.data + b, (uint32_t)(x.indptr[r + 1] - b), 4, 4,
                                     XMC_POST_NOOP, 1, hits);
        CU_ASSERT_EQUAL(n, 4);
        for (uint32_t i = 0; i < n; i++) {
            double d = fabs(hits[i].score - want[hits[i].label]);
            if (d > maxd) maxd = d;
            if (i) CU_ASSERT(hits[i - 1].score >= hits[i].score);
        }
    }
    printf("\n  chunk scores: max |beam - dense| = %.3g\n", maxd);
    CU_ASSERT(maxd < 1e-4);
    xmci_beam_ws_free(ws);
    xmci_csr_free(&x);
    xmci_csr_free(&w);
    xmci_xlinear_free(&m);
}

static void test_batch_equals_single(void)
{
    xmci_xlinear m;
    random_model(&m, 5);
    xmci_csr x;
    random_docs(&x, 300, BF + 5, 6); /* some features past the model's */
    const uint32_t beam = 3, k = 5;
    xmci_beam_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, k, &ws, &err), XMC_OK);
    xmc_hit *one = calloc((size_t)x.rows * k, sizeof *one), *out = calloc((size_t)x.rows * k, sizeof *out);
    uint32_t *cnt1 = calloc(x.rows, sizeof *cnt1), *cnt = calloc(x.rows, sizeof *cnt);
    for (int post = 0; post < XMC_POST__COUNT; post += 2) {
        for (uint32_t r = 0; r < x.rows; r++) {
            uint64_t b = x.indptr[r];
            cnt1[r] = xmci_beam_search(&m, ws, x.indices + b, x.data + b, (uint32_t)(x.indptr[r + 1] - b), beam, k, post,
                                      0, one + (size_t)r * k);
        }
        for (int threads = 1; threads <= 2; threads++) {
            memset(out, 0xff, (size_t)x.rows * k * sizeof *out);
            memset(cnt, 0xff, x.rows * sizeof *cnt);
            CU_ASSERT_EQUAL(xmci_beam_search_batch(&m, &x, beam, k, post, 0, threads, out, cnt, &err), XMC_OK);
            int same = 1;
            for (uint32_t r = 0; r < x.rows; r++)
                same &= cnt[r] == cnt1[r] && memcmp(out + (size_t)r * k, one + (size_t)r * k, cnt1[r] * sizeof *out) == 0;
            CU_ASSERT(same);
            if (!same) fprintf(stderr, "batch differs: post %d, %d threads\n", post, threads);
        }
    }
    /* every row found k labels (40 labels, beam 3 over 12 clusters with >= 1 child each) */
    for (uint32_t r = 0; r < x.rows; r++) CU_ASSERT(cnt1[r] >= 1);
    free(one);
    free(out);
    free(cnt1);
    free(cnt);
    xmci_beam_ws_free(ws);
    xmci_csr_free(&x);
    xmci_xlinear_free(&m);
}

/* xmci_beam_search_rows (the micro-batch search) returns xmci_beam_search's hits bit for bit: every
 * post-processor, beams 1 / 3 / 12 and k 1 / 5 / 40, batches of 1, 7 and 300 rows split as the workspace
 * allows, empty rows, rows of 1-2 features (a group's short list is searched in a chunk, a long one scanned
 * against it: both ways run) and features past the model's; weights on a coarse grid so that ties happen and
 * their order is checked too. A workspace of 16 documents takes fewer at a wide beam; one with room for the raw
 * scores of about 40 children searches each layer in ranges of a few documents. */
static void test_rows_equal_single(void)
{
    xmci_xlinear m;
    random_model(&m, 9);
    /* coarse weights: many equal scores */
    for (uint32_t t = 0; t < m.depth; t++)
        for (uint64_t e = 0; e < m.layers[t].nnz; e++)
            ((float *)m.layers[t].ent_w)[e] = roundf(m.layers[t].ent_w[e] * 2) / 2;
    xmci_csr x;
    random_docs(&x, 300, BF + 5, 10);
    for (uint32_t r = 0; r < x.rows; r += 11) /* empty rows */
        for (uint64_t e = x.indptr[r]; e < x.indptr[r + 1]; e++) x.indices[e] = BF + 1 + (x.indices[e] % 4 == 0);
    for (uint32_t r = 1; r < x.rows; r += 3) /* rows of at most 2 features: groups whose list is short beside a chunk */
        for (uint64_t e = x.indptr[r] + 2; e < x.indptr[r + 1]; e++) x.indices[e] = BF + 1 + (x.indices[e] % 4 == 0);
    for (uint32_t r = 0; r < x.rows; r++) { /* keep each row sorted after the rewrite above */
        uint64_t a = x.indptr[r], b = x.indptr[r + 1];
        for (uint64_t i = a + 1; i < b; i++)
            for (uint64_t j = i; j > a && x.indices[j - 1] > x.indices[j]; j--) {
                uint32_t ti = x.indices[j]; x.indices[j] = x.indices[j - 1]; x.indices[j - 1] = ti;
                float tv = x.data[j]; x.data[j] = x.data[j - 1]; x.data[j - 1] = tv;
            }
    }
    xmc_error err = {0};
    xmci_beam_ws *ws;
    xmci_beam_batch *bb, *small, *narrow;
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 64, &ws, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_beam_batch_new(&m, 300, (uint32_t)x.indptr[x.rows], 0, &bb, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_beam_batch_new(&m, 16, (uint32_t)x.indptr[x.rows], 0, &small, &err), XMC_OK);
    /* room for the scores of about 40 children: a layer's documents are searched in ranges of a few */
    CU_ASSERT_EQUAL_FATAL(xmci_beam_batch_new(&m, 300, (uint32_t)x.indptr[x.rows], 40, &narrow, &err), XMC_OK);
    CU_ASSERT(xmci_beam_batch_docs(small, 3, 5) == 16);
    CU_ASSERT(xmci_beam_batch_docs(small, 1024, 5) == 1);
    const uint32_t beams[3] = {1, 3, 12}, ks[3] = {1, 5, 40}, sizes[3] = {1, 7, 300};
    const uint32_t stride = 40;
    xmc_hit *one = calloc((size_t)x.rows * stride, sizeof *one), *out = calloc((size_t)x.rows * stride, sizeof *out);
    uint32_t *cnt1 = calloc(x.rows, sizeof *cnt1), *cnt = calloc(x.rows, sizeof *cnt);
    int differ = 0, ties = 0;
    for (int post = 0; post < XMC_POST__COUNT; post++)
        for (int bi = 0; bi < 3; bi++)
            for (int ki = 0; ki < 3; ki++) {
                uint32_t beam = beams[bi], k = ks[ki];
                for (uint32_t r = 0; r < x.rows; r++) {
                    uint64_t b = x.indptr[r];
                    cnt1[r] = xmci_beam_search(&m, ws, x.indices + b, x.data + b, (uint32_t)(x.indptr[r + 1] - b), beam,
                                               k, post, 0, one + (size_t)r * stride);
                    for (uint32_t i = 1; i < cnt1[r]; i++) ties += one[r * stride + i].score == one[r * stride + i - 1].score;
                }
                for (int si = 0; si < 5; si++) {
                    xmci_beam_batch *use = si == 3 ? small : si == 4 ? narrow : bb;
                    uint32_t size = si >= 3 ? 300 : sizes[si];
                    memset(out, 0xff, (size_t)x.rows * stride * sizeof *out);
                    memset(cnt, 0xff, x.rows * sizeof *cnt);
                    for (uint32_t r = 0; r < x.rows;) {
                        uint32_t n = x.rows - r < size ? x.rows - r : size, cap = xmci_beam_batch_docs(use, beam, k);
                        if (n > cap) n = cap;
                        xmci_beam_search_rows(&m, use, x.indptr + r, x.indices + x.indptr[r], x.data + x.indptr[r], n,
                                              beam, k, post, 0, out + (size_t)r * stride, stride, cnt + r);
                        r += n;
                    }
                    for (uint32_t r = 0; r < x.rows; r++)
                        if (cnt[r] != cnt1[r] ||
                            memcmp(out + (size_t)r * stride, one + (size_t)r * stride, cnt1[r] * sizeof *out) != 0) {
                            if (!differ++)
                                fprintf(stderr, "rows differ: post %d beam %u k %u batch %u row %u\n", post, beam, k,
                                        size, r);
                        }
                }
            }
    printf("\n  rows vs single: %d rows differ, %d tied neighbours checked; unscored nodes: %llu single, %llu batched\n",
           differ, ties, (unsigned long long)xmci_beam_ws_skipped(ws), (unsigned long long)xmci_beam_batch_skipped(bb));
    CU_ASSERT_EQUAL(differ, 0);
    /* the nodes ruled out before scoring: the equality above covers that path in both searches */
    CU_ASSERT(xmci_beam_ws_skipped(ws) > 0);
    CU_ASSERT(xmci_beam_batch_skipped(bb) > 0 && xmci_beam_batch_skipped(small) > 0 && xmci_beam_batch_skipped(narrow) > 0);
    CU_ASSERT(ties > 0);
    free(one);
    free(out);
    free(cnt1);
    free(cnt);
    xmci_beam_batch_free(small);
    xmci_beam_batch_free(narrow);
    xmci_beam_batch_free(bb);
    xmci_beam_ws_free(ws);
    xmci_csr_free(&x);
    xmci_xlinear_free(&m);
}

/* The search without any shortcut, written out here: every child of every kept node scored from the weight
 * rows (features ascending, bias last: the order of beam.c's sums), transformed and combined with
 * xmci_post_transform / xmci_post_combine, kept by a stable top list ordered by that score and, on a tie,
 * by the raw score. */
static uint32_t plain_search(const xmci_xlinear *m, const xmci_csr *w, const uint32_t *idx, const float *val,
                             uint32_t nnz, uint32_t beam, uint32_t k, int post, xmc_hit *out)
{
    xmc_hit cur[64], next[64];
    float raw[64];
    uint32_t ncur = 1;
    cur[0] = (xmc_hit){0, 1.0f};
    for (uint32_t t = 0; t < m->depth; t++) {
        const xmci_layer *L = &m->layers[t];
        uint32_t keep = t + 1 == m->depth ? k : beam, nn = 0;
        for (uint32_t b = 0; b < ncur; b++)
            for (uint32_t c = L->child_ptr[cur[b].label]; c < L->child_ptr[cur[b].label + 1]; c++) {
                uint32_t j = L->child_idx[c];
                float acc = 0;
                for (uint64_t q = w[t].indptr[j]; q < w[t].indptr[j + 1]; q++) {
                    if (w[t].indices[q] == m->nr_features) { acc += w[t].data[q] * m->bias; continue; }
                    for (uint32_t i = 0; i < nnz; i++)
                        if (idx[i] == w[t].indices[q]) acc += w[t].data[q] * val[i];
                }
                float sc = xmci_post_transform(post, acc);
                if (t > 0) sc = xmci_post_combine(post, sc, cur[b].score);
#define ABOVE(i) (sc > next[i].score || (sc == next[i].score && acc > raw[i]))
                if (nn == keep && !ABOVE(nn - 1)) continue;
                uint32_t i = nn < keep ? nn++ : keep - 1;
                while (i > 0 && ABOVE(i - 1)) { next[i] = next[i - 1]; raw[i] = raw[i - 1]; i--; }
#undef ABOVE
                next[i] = (xmc_hit){j, sc};
                raw[i] = acc;
            }
        memcpy(cur, next, nn * sizeof *cur);
        ncur = nn;
        if (!ncur) break;
    }
    memcpy(out, cur, ncur * sizeof *out);
    return ncur;
}

/* Children that cannot be kept are dropped before their transform (beam.c, post_prunable): the hits and
 * scores are still exactly those of the search that scores every child, for every post-processor. */
static void test_pruning_exact(void)
{
    xmci_xlinear m;
    random_model(&m, 21);
    xmci_csr w[3], x;
    xmc_error err = {0};
    for (uint32_t t = 0; t < 3; t++) CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m.layers[t], BF, &w[t], &err), XMC_OK);
    random_docs(&x, 200, BF, 22);
    xmci_beam_ws *ws;
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 40, &ws, &err), XMC_OK);
    const uint32_t beams[2] = {1, 3}, ks[3] = {1, 5, 40};
    int differ = 0, ties = 0;
    for (int post = 0; post < XMC_POST__COUNT; post++)
        for (int bi = 0; bi < 2; bi++)
            for (int ki = 0; ki < 3; ki++)
                for (uint32_t r = 0; r < x.rows; r++) {
                    uint64_t b = x.indptr[r];
                    uint32_t nnz = (uint32_t)(x.indptr[r + 1] - b);
                    xmc_hit got[40], want[40];
                    uint32_t ng = xmci_beam_search(&m, ws, x.indices + b, x.data + b, nnz, beams[bi], ks[ki], post, 0, got);
                    uint32_t nw = plain_search(&m, w, x.indices + b, x.data + b, nnz, beams[bi], ks[ki], post, want);
                    if (ng != nw || memcmp(got, want, nw * sizeof *got) != 0) {
                        if (!differ++) fprintf(stderr, "pruned search differs: post %d beam %u k %u row %u\n", post, beams[bi], ks[ki], r);
                    }
                    for (uint32_t i = 1; i < ng; i++) ties += got[i].score == got[i - 1].score;
                }
    CU_ASSERT_EQUAL(differ, 0);
    fprintf(stderr, "  pruning exact: %d adjacent equal scores among the hits (ordered by raw score), %llu nodes unscored\n",
            ties, (unsigned long long)xmci_beam_ws_skipped(ws));
    CU_ASSERT(xmci_beam_ws_skipped(ws) > 0); /* nodes ruled out before scoring, and still the plain search's hits */
    CU_ASSERT(ties > 0); /* the saturated hinges do tie: the raw-score order is exercised */
    xmci_beam_ws_free(ws);
    for (uint32_t t = 0; t < 3; t++) xmci_csr_free(&w[t]);
    xmci_csr_free(&x);
    xmci_xlinear_free(&m);
}

/* The same labels in the same order and the same scores bit for bit, NaN but for its sign and payload (which
 * operand of a sum of two NaNs the compiler puts first decides them, not the search). */
static int same_hits(const xmc_hit *a, const xmc_hit *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].label != b[i].label || (isnan(a[i].score) ? !isnan(b[i].score)
                                                         : memcmp(&a[i].score, &b[i].score, sizeof a[i].score) != 0))
            return 0;
    return 1;
}

/* Scores that are not numbers: weights NaN or infinite (a sum of +inf and -inf is NaN too). A NaN taken into a
 * list while it fills stops the insertions there, so the kept nodes of the next layer come out of rank order
 * (a node after it may score above the one before); the shortcuts that assume rank order (a node ruled out
 * by the list's worst, the pruning bound carried to the next node) must still give the search that scores
 * everything, and the batched search the single one, for every post-processor. */
static void test_nonfinite_scores(void)
{
    xmci_xlinear m;
    random_model(&m, 31);
    xmc_rng rng;
    xmc_rng_seed(&rng, 32);
    for (uint32_t t = 0; t < m.depth; t++)
        for (uint64_t e = 0; e < m.layers[t].nnz; e++) {
            uint32_t u = (uint32_t)xmc_rng_uniform(&rng, 0, 99);
            float *w = (float *)&m.layers[t].ent_w[e];
            if (u < 3) *w = NAN;
            else if (u < 5) *w = u == 3 ? INFINITY : -INFINITY;
        }
    xmci_csr w[3], x;
    xmc_error err = {0};
    for (uint32_t t = 0; t < 3; t++) CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&m.layers[t], BF, &w[t], &err), XMC_OK);
    random_docs(&x, 200, BF, 33);
    xmci_beam_ws *ws;
    xmci_beam_batch *bb;
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 40, &ws, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_beam_batch_new(&m, 64, (uint32_t)x.indptr[x.rows], 0, &bb, &err), XMC_OK);
    const uint32_t beams[3] = {2, 3, 4}, ks[3] = {1, 2, 5};
    const uint32_t stride = 5;
    xmc_hit *one = calloc((size_t)x.rows * stride, sizeof *one), *out = calloc((size_t)x.rows * stride, sizeof *out);
    uint32_t *cnt1 = calloc(x.rows, sizeof *cnt1), *cnt = calloc(x.rows, sizeof *cnt);
    int differ = 0, batch_differ = 0, disorder = 0;
    for (int post = 0; post < XMC_POST__COUNT; post++)
        for (int bi = 0; bi < 3; bi++) {
            /* lists out of rank order: a NaN with a number after it above the one before it */
            for (uint32_t r = 0; r < x.rows; r++) {
                uint64_t b = x.indptr[r];
                xmc_hit top[4];
                uint32_t n = xmci_beam_search(&m, ws, x.indices + b, x.data + b, (uint32_t)(x.indptr[r + 1] - b),
                                              beams[bi], beams[bi], post, 1, top);
                for (uint32_t i = 1; i + 1 < n; i++)
                    disorder += isnan(top[i].score) && top[i + 1].score > top[i - 1].score;
            }
            for (int ki = 0; ki < 3; ki++) {
                for (uint32_t r = 0; r < x.rows; r++) {
                    uint64_t b = x.indptr[r];
                    uint32_t nnz = (uint32_t)(x.indptr[r + 1] - b);
                    xmc_hit want[5];
                    cnt1[r] = xmci_beam_search(&m, ws, x.indices + b, x.data + b, nnz, beams[bi], ks[ki], post, 0,
                                               one + (size_t)r * stride);
                    uint32_t nw = plain_search(&m, w, x.indices + b, x.data + b, nnz, beams[bi], ks[ki], post, want);
                    if (cnt1[r] != nw || !same_hits(one + (size_t)r * stride, want, nw)) {
                        if (!differ++)
                            fprintf(stderr, "non-finite: search differs from plain: post %d beam %u k %u row %u\n", post,
                                    beams[bi], ks[ki], r);
                    }
                }
                for (uint32_t r = 0; r < x.rows;) {
                    uint32_t n = x.rows - r < 64 ? x.rows - r : 64, cap = xmci_beam_batch_docs(bb, beams[bi], ks[ki]);
                    if (n > cap) n = cap;
                    xmci_beam_search_rows(&m, bb, x.indptr + r, x.indices + x.indptr[r], x.data + x.indptr[r], n,
                                          beams[bi], ks[ki], post, 0, out + (size_t)r * stride, stride, cnt + r);
                    r += n;
                }
                for (uint32_t r = 0; r < x.rows; r++)
                    if (cnt[r] != cnt1[r] || !same_hits(out + (size_t)r * stride, one + (size_t)r * stride, cnt1[r])) {
                        if (!batch_differ++)
                            fprintf(stderr, "non-finite: batch differs from single: post %d beam %u k %u row %u\n",
                                    post, beams[bi], ks[ki], r);
                    }
            }
        }
    fprintf(stderr, "  non-finite scores: %d lists out of rank order; %d rows differ from plain, %d batch from single; "
            "%llu / %llu nodes unscored\n", disorder, differ, batch_differ, (unsigned long long)xmci_beam_ws_skipped(ws),
            (unsigned long long)xmci_beam_batch_skipped(bb));
    CU_ASSERT(disorder > 0);
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(batch_differ, 0);
    CU_ASSERT(xmci_beam_ws_skipped(ws) > 0 && xmci_beam_batch_skipped(bb) > 0);
    free(one);
    free(out);
    free(cnt1);
    free(cnt);
    xmci_beam_batch_free(bb);
    xmci_beam_ws_free(ws);
    for (uint32_t t = 0; t < 3; t++) xmci_csr_free(&w[t]);
    xmci_csr_free(&x);
    xmci_xlinear_free(&m);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("beam", NULL, NULL);
    TU_ADD(s, test_post_processors);
    TU_ADD(s, test_search_by_hand);
    TU_ADD(s, test_beam_width);
    TU_ADD(s, test_ties);
    TU_ADD(s, test_topk_count);
    TU_ADD(s, test_unseen_features);
    TU_ADD(s, test_chunk_scores);
    TU_ADD(s, test_batch_equals_single);
    TU_ADD(s, test_rows_equal_single);
    TU_ADD(s, test_pruning_exact);
    TU_ADD(s, test_nonfinite_scores);
    return tu_run(argc, argv);
}
