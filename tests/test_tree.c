/* test_tree.c: the label tree: depth d = max(1, ceil(log2(L / max_leaf_size))), the chain of layers that
 * groups the 2^d leaf clusters nr_splits at a time, parents in range, leaf clusters no larger than
 * max_leaf_size, the same tree with 1 and 2 threads, and xmci_tree_from_chain's shape errors.
 *
 * Expected shapes are computed here independently of tree.c: d by repeated doubling in 64 bits, then the
 * layer sizes by ceil division from 2^d until at most nr_splits remain. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "testutil.h"
#include "tree.h"

#define NF 16

/* L random normalised rows over NF features (every row non-empty). */
static void label_embeddings(xmci_csr *feat, uint32_t L, uint32_t seed)
{
    xmc_rng rng;
    xmc_rng_seed(&rng, seed);
    float *dense = calloc((size_t)L * NF + 1, sizeof *dense);
    for (uint32_t i = 0; i < L; i++) {
        dense[(size_t)i * NF + i % NF] = 1.0f;
        for (int f = 0; f < NF; f++)
            if (xmc_rng_uniform(&rng, 0, 3) == 0) dense[(size_t)i * NF + f] += (float)xmc_rng_uniform(&rng, 1, 100) / 100.0f;
    }
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(feat, L, NF, dense), 0);
    free(dense);
    xmci_csr_normalize_rows(feat);
}

/* Layer sizes top to bottom for L labels; returns the number of layers, 0 when the build must fail. */
static uint32_t expected_layers(uint32_t L, uint32_t leaf, uint32_t splits, uint32_t *sizes)
{
    if (leaf >= L) { sizes[0] = L; return 1; }
    uint32_t d = 1;
    while ((uint64_t)leaf << d < L) d++;            /* smallest d >= 1 with leaf * 2^d >= L */
    double ld = ceil(log2((double)L / leaf));        /* the documented formula, as a cross-check */
    CU_ASSERT_EQUAL(d, ld < 1 ? 1 : (uint32_t)ld);
    if ((1ull << d) > L) return 0;                   /* more leaves than labels */
    uint32_t up[40], n = 0, K = 1u << d;
    up[n++] = K;
    while (K > splits) { K = (K + splits - 1) / splits; up[n++] = K; }
    for (uint32_t t = 0; t < n; t++) sizes[t] = up[n - 1 - t];
    sizes[n] = L;
    return n + 1;
}

/* Structure every built tree must have. */
static void check_tree(const xmci_tree *tree, uint32_t L, uint32_t leaf, uint32_t splits)
{
    CU_ASSERT_FATAL(tree->depth >= 1 && tree->depth <= XMCI_TREE_MAX_DEPTH);
    CU_ASSERT_EQUAL(tree->nr_nodes[tree->depth - 1], L);
    for (uint32_t t = 0; t < tree->depth; t++) {
        uint32_t above = t == 0 ? 1 : tree->nr_nodes[t - 1];
        uint32_t *kids = calloc(above, sizeof *kids);
        for (uint32_t j = 0; j < tree->nr_nodes[t]; j++) {
            uint32_t p = tree->parent[t][j];
            CU_ASSERT(p < above);
            if (p < above) kids[p]++;
            /* inner layers group consecutive clusters: j / nr_splits */
            if (t > 0 && t + 1 < tree->depth) CU_ASSERT_EQUAL(p, j / splits);
        }
        for (uint32_t p = 0; p < above; p++) {
            CU_ASSERT(kids[p] >= 1);                              /* no childless node */
            uint32_t most = t + 1 < tree->depth ? splits : leaf;  /* nr_splits children, or a leaf cluster */
            CU_ASSERT(kids[p] <= most);
        }
        free(kids);
    }
}

static void test_depth_and_layers(void)
{
    static const uint32_t Ls[] = {1, 2, 3, 5, 8, 20, 33, 64, 70};
    static const uint32_t splits_list[] = {2, 3, 4, 16};
    xmc_error err = {0};
    for (size_t a = 0; a < sizeof Ls / sizeof *Ls; a++) {
        uint32_t L = Ls[a];
        xmci_csr feat;
        label_embeddings(&feat, L, L);
        uint32_t leaves[] = {1, 2, 3, 4, 7, 10, L > 1 ? L - 1 : 1, L, L + 1};
        for (size_t b = 0; b < sizeof leaves / sizeof *leaves; b++) {
            for (size_t c = 0; c < sizeof splits_list / sizeof *splits_list; c++) {
                uint32_t leaf = leaves[b], splits = splits_list[c], want[40];
                uint32_t nl = expected_layers(L, leaf, splits, want);
                xmci_tree_params p;
                xmci_tree_params_default(&p);
                p.max_leaf_size = leaf;
                p.nr_splits = splits;
                xmci_tree tree;
                xmc_err rc = xmci_tree_build(&feat, &p, &tree, &err);
                if (nl == 0) {
                    /* refused with what to change (it said only "tree of depth 6 has more leaves than the 56 labels") */
                    CU_ASSERT_EQUAL(rc, XMC_ERR_ARG);
                    CU_ASSERT(strstr(err.msg, "use max_leaf_size 2 or more") != NULL);
                    continue;
                }
                CU_ASSERT_EQUAL(rc, XMC_OK);
                if (rc) { fprintf(stderr, "L=%u leaf=%u splits=%u: %s\n", L, leaf, splits, err.msg); continue; }
                CU_ASSERT_EQUAL(tree.depth, nl);
                int same = tree.depth == nl;
                for (uint32_t t = 0; same && t < nl; t++) same = tree.nr_nodes[t] == want[t];
                CU_ASSERT(same);
                if (!same) fprintf(stderr, "L=%u leaf=%u splits=%u: layer sizes differ\n", L, leaf, splits);
                check_tree(&tree, L, leaf, splits);
                xmci_tree_free(&tree);
            }
        }
        xmci_csr_free(&feat);
    }
}

/* The brief's examples, spelled out. */
static void test_examples(void)
{
    xmci_csr feat;
    label_embeddings(&feat, 20, 1);
    xmci_tree_params p;
    xmci_tree_params_default(&p);
    xmci_tree tree;
    xmc_error err = {0};
    p.max_leaf_size = 2;
    p.nr_splits = 2;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_OK);
    uint32_t w2[] = {2, 4, 8, 16, 20};
    CU_ASSERT_EQUAL_FATAL(tree.depth, 5);
    for (int t = 0; t < 5; t++) CU_ASSERT_EQUAL(tree.nr_nodes[t], w2[t]);
    xmci_tree_free(&tree);
    CU_ASSERT_EQUAL(tree.depth, 0); /* free clears */
    p.nr_splits = 4;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_OK);
    uint32_t w4[] = {4, 16, 20};
    CU_ASSERT_EQUAL_FATAL(tree.depth, 3);
    for (int t = 0; t < 3; t++) CU_ASSERT_EQUAL(tree.nr_nodes[t], w4[t]);
    xmci_tree_free(&tree);
    p.max_leaf_size = 20;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_OK);
    CU_ASSERT_EQUAL(tree.depth, 1);
    CU_ASSERT_EQUAL(tree.nr_nodes[0], 20);
    for (int j = 0; j < 20; j++) CU_ASSERT_EQUAL(tree.parent[0][j], 0);
    xmci_tree_free(&tree);
    /* bad parameters */
    p.max_leaf_size = 2;
    p.nr_splits = 1;
    CU_ASSERT_EQUAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_ERR_ARG);
    p.nr_splits = 2;
    p.max_leaf_size = 0;
    CU_ASSERT_EQUAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_ERR_ARG);
    xmci_csr none;
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&none, 0, NF, 0, NULL), XMC_OK);
    p.max_leaf_size = 2;
    CU_ASSERT_EQUAL(xmci_tree_build(&none, &p, &tree, &err), XMC_ERR_EMPTY);
    xmci_csr_free(&none);
    xmci_csr_free(&feat);
}

/* Two groups of labels far apart in embedding space end in different clusters. */
static void test_groups_clustered(void)
{
    enum { L = 16 };
    float dense[L * NF] = {0};
    /* odd ids at 70..90 degrees in the plane of features 0 and 8, even ids at 0..20 (see test_kmeans.c: on
     * a quarter circle every seed separates the two) */
    for (int i = 0; i < L; i++) {
        double deg = (i % 2 ? 70.0 : 0.0) + 1.2 * i;
        dense[i * NF + 0] = (float)cos(deg * 3.14159265358979 / 180);
        dense[i * NF + 8] = (float)sin(deg * 3.14159265358979 / 180);
    }
    xmci_csr feat;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&feat, L, NF, dense), 0);
    xmci_csr_normalize_rows(&feat);
    xmci_tree_params p;
    xmci_tree_params_default(&p);
    p.max_leaf_size = 8;
    p.nr_splits = 2;
    xmci_tree tree;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &tree, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(tree.depth, 2);
    CU_ASSERT_EQUAL(tree.nr_nodes[0], 2);
    for (int i = 0; i < L; i++) CU_ASSERT_EQUAL(tree.parent[1][i] == tree.parent[1][1], i % 2 == 1);
    xmci_tree_free(&tree);
    xmci_csr_free(&feat);
}

static int same_tree(const xmci_tree *a, const xmci_tree *b)
{
    if (a->depth != b->depth) return 0;
    for (uint32_t t = 0; t < a->depth; t++)
        if (a->nr_nodes[t] != b->nr_nodes[t] || memcmp(a->parent[t], b->parent[t], a->nr_nodes[t] * sizeof(uint32_t)))
            return 0;
    return 1;
}

/* 1 and 2 threads (and 3, which does not divide the node counts) build the same tree; so does the same seed
 * twice; the leaf assignment is not trivially by id. */
static void test_threads_and_seed(void)
{
    enum { L = 300 };
    xmci_csr feat;
    label_embeddings(&feat, L, 77);
    xmci_tree_params p;
    xmci_tree_params_default(&p);
    p.max_leaf_size = 10;
    p.nr_splits = 4;
    p.seed = 3;
    xmci_tree t1, t2, t3, t1b;
    xmc_error err = {0};
    p.threads = 1;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &t1, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &t1b, &err), XMC_OK);
    p.threads = 2;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &t2, &err), XMC_OK);
    p.threads = 3;
    CU_ASSERT_EQUAL_FATAL(xmci_tree_build(&feat, &p, &t3, &err), XMC_OK);
    CU_ASSERT(same_tree(&t1, &t1b));
    CU_ASSERT(same_tree(&t1, &t2));
    CU_ASSERT(same_tree(&t1, &t3));
    check_tree(&t1, L, 10, 4);
    /* labels are really moved by the k-means: not leaf = id * 32 / L */
    uint32_t moved = 0;
    for (uint32_t i = 0; i < L; i++) moved += t1.parent[t1.depth - 1][i] != i * 32 / L;
    CU_ASSERT(moved > 0);
    xmci_tree_free(&t1);
    xmci_tree_free(&t1b);
    xmci_tree_free(&t2);
    xmci_tree_free(&t3);
    xmci_csr_free(&feat);
}

/* ---- xmci_tree_from_chain ------------------------------------------------------------------------------ */

/* A chain matrix rows x cols from one parent per row; parents[j] < 0 leaves row j empty, >= 100 gives row j
 * the two parents 0 and 1. */
static void chain_matrix(xmci_csr *c, uint32_t rows, uint32_t cols, const int *parents)
{
    float *dense = calloc((size_t)rows * cols + 1, sizeof *dense);
    for (uint32_t j = 0; j < rows; j++) {
        if (parents[j] >= 100) { dense[j * cols + 0] = 1; dense[j * cols + 1] = 1; }
        else if (parents[j] >= 0) dense[j * cols + (uint32_t)parents[j]] = 1;
    }
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(c, rows, cols, dense), 0);
    free(dense);
}

static void test_from_chain(void)
{
    xmci_csr c[3];
    int p0[] = {0, 0}, p1[] = {0, 0, 1, 1}, p2[] = {3, 2, 1, 0, 0, 2};
    chain_matrix(&c[0], 2, 1, p0);
    chain_matrix(&c[1], 4, 2, p1);
    chain_matrix(&c[2], 6, 4, p2);
    xmci_tree tree;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tree_from_chain(c, 3, &tree, &err), XMC_OK);
    CU_ASSERT_EQUAL(tree.depth, 3);
    CU_ASSERT(tree.nr_nodes[0] == 2 && tree.nr_nodes[1] == 4 && tree.nr_nodes[2] == 6);
    for (int j = 0; j < 6; j++) CU_ASSERT_EQUAL(tree.parent[2][j], (uint32_t)p2[j]);
    for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(tree.parent[1][j], (uint32_t)p1[j]);
    xmci_tree_free(&tree);
    CU_ASSERT_EQUAL(xmci_tree_from_chain(c, 0, &tree, &err), XMC_ERR_ARG);
    xmci_csr_free(&c[2]);

    /* a node with no parent */
    int none[] = {3, 2, -1, 0, 0, 2};
    chain_matrix(&c[2], 6, 4, none);
    CU_ASSERT_EQUAL(xmci_tree_from_chain(c, 3, &tree, &err), XMC_ERR_SHAPE);
    CU_ASSERT_EQUAL(tree.depth, 0);
    xmci_csr_free(&c[2]);
    /* a node with two parents */
    int two[] = {3, 2, 1, 100, 0, 2};
    chain_matrix(&c[2], 6, 4, two);
    CU_ASSERT_EQUAL(xmci_tree_from_chain(c, 3, &tree, &err), XMC_ERR_SHAPE);
    xmci_csr_free(&c[2]);
    /* 3 columns under a layer of 4 nodes */
    int ok3[] = {2, 2, 1, 0, 0, 2};
    chain_matrix(&c[2], 6, 3, ok3);
    CU_ASSERT_EQUAL(xmci_tree_from_chain(c, 3, &tree, &err), XMC_ERR_SHAPE);
    xmci_csr_free(&c[2]);
    /* the top layer must have one column (the root) */
    xmci_csr_free(&c[0]);
    int top2[] = {0, 1};
    chain_matrix(&c[0], 2, 2, top2);
    CU_ASSERT_EQUAL(xmci_tree_from_chain(c, 2, &tree, &err), XMC_ERR_SHAPE);
    xmci_csr_free(&c[0]);
    xmci_csr_free(&c[1]);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("tree", NULL, NULL);
    TU_ADD(s, test_depth_and_layers);
    TU_ADD(s, test_examples);
    TU_ADD(s, test_groups_clustered);
    TU_ADD(s, test_threads_and_seed);
    TU_ADD(s, test_from_chain);
    return tu_run(argc, argv);
}
