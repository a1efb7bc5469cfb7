/* test_kmeans.c: balanced spherical 2-means: halves of floor(n/2) and the rest, each sorted by id, a
 * permutation of the input; well-separated groups split apart; deterministic for a seed; empty embeddings.
 *
 * The "groups" are unit vectors on a quarter circle (features 3 and 7 of 10): group A at angles 0..20
 * degrees, group B at 70..90. For any two distinct starting elements the first centroid difference scores
 * the elements monotonically in angle, so every seed must end with one half at one end of the arc: this
 * holds for the algorithm, not for a lucky seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "rng.h"
#include "testutil.h"

#define NF 10
#define DEG (3.14159265358979323846 / 180.0)

/* Row i: the unit vector at angle[i] degrees over features 3 and 7. */
static void arc_embeddings(xmci_csr *feat, const double *angle, uint32_t n)
{
    float *dense = calloc((size_t)n * NF, sizeof *dense);
    for (uint32_t i = 0; i < n; i++) {
        dense[i * NF + 3] = (float)cos(angle[i] * DEG);
        dense[i * NF + 7] = (float)sin(angle[i] * DEG);
    }
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(feat, n, NF, dense), 0);
    free(dense);
}

/* Random sparse rows, L2-normalised (some rows may come out empty). */
static void random_embeddings(xmci_csr *feat, uint32_t n, uint32_t seed)
{
    xmc_rng rng;
    xmc_rng_seed(&rng, seed);
    float *dense = calloc((size_t)n * NF, sizeof *dense);
    for (uint32_t i = 0; i < n; i++)
        for (int f = 0; f < NF; f++)
            if (xmc_rng_uniform(&rng, 0, 2) == 0) dense[i * NF + f] = (float)(xmc_rng_uniform(&rng, 1, 1000)) / 1000.0f;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(feat, n, NF, dense), 0);
    free(dense);
    xmci_csr_normalize_rows(feat);
}

static int is_sorted(const uint32_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (v[i - 1] >= v[i]) return 0;
    return 1;
}

/* elems is a permutation of 0..n-1 */
static int is_permutation(const uint32_t *v, uint32_t n)
{
    unsigned char seen[256] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] >= n || seen[v[i]]) return 0;
        seen[v[i]] = 1;
    }
    return 1;
}

static void test_balanced_halves(void)
{
    xmci_kmeans_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, 50, &ws, &err), XMC_OK);
    for (uint32_t n = 2; n <= 50; n++) {
        xmci_csr feat;
        random_embeddings(&feat, n, n);
        uint32_t elems[50];
        for (uint32_t i = 0; i < n; i++) elems[i] = i;
        xmc_rng rng;
        xmc_rng_seed(&rng, 100 + n);
        xmci_kmeans_split(&feat, elems, n, &rng, 20, ws);
        CU_ASSERT(is_permutation(elems, n));
        CU_ASSERT(is_sorted(elems, n / 2));
        CU_ASSERT(is_sorted(elems + n / 2, n - n / 2));
        xmci_csr_free(&feat);
    }
    xmci_kmeans_ws_free(ws);
}

/* The arc: the left half is the floor(n/2) elements at one end of it (lowest or highest angles), for every
 * n and seed. Ids are scattered so that sorting by id alone cannot pass. */
static void test_arc_split_sizes(void)
{
    xmci_kmeans_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, 50, &ws, &err), XMC_OK);
    for (uint32_t n = 2; n <= 50; n++) {
        /* element i sits at rank[i] along the arc, a shuffled order */
        uint32_t rank[50];
        for (uint32_t i = 0; i < n; i++) rank[i] = i;
        xmc_rng r0;
        xmc_rng_seed(&r0, 7 * n);
        xmc_rng_shuffle_u32(&r0, rank, n);
        double angle[50];
        for (uint32_t i = 0; i < n; i++) angle[i] = 90.0 * rank[i] / (n - 1);
        xmci_csr feat;
        arc_embeddings(&feat, angle, n);
        for (uint32_t seed = 0; seed < 4; seed++) {
            uint32_t elems[50];
            for (uint32_t i = 0; i < n; i++) elems[i] = i;
            xmc_rng rng;
            xmc_rng_seed(&rng, seed);
            xmci_kmeans_split(&feat, elems, n, &rng, 20, ws);
            CU_ASSERT(is_permutation(elems, n));
            CU_ASSERT(is_sorted(elems, n / 2));
            CU_ASSERT(is_sorted(elems + n / 2, n - n / 2));
            /* left = ranks 0..n/2-1, or ranks n-n/2..n-1 */
            int low = 1, high = 1;
            for (uint32_t i = 0; i < n / 2; i++) {
                low &= rank[elems[i]] < n / 2;
                high &= rank[elems[i]] >= n - n / 2;
            }
            CU_ASSERT(low || high);
            if (!(low || high)) fprintf(stderr, "n=%u seed=%u: left half is not one end of the arc\n", n, seed);
        }
        xmci_csr_free(&feat);
    }
    xmci_kmeans_ws_free(ws);
}

/* Two groups of 12, 50 degrees apart, ids interleaved: each half is exactly one group, for many seeds. */
static void test_separated_groups(void)
{
    enum { N = 24 };
    double angle[N];
    for (uint32_t i = 0; i < N; i++) angle[i] = (i % 2 ? 70.0 : 0.0) + 20.0 * (double)((i * 5) % N) / N;
    xmci_csr feat;
    arc_embeddings(&feat, angle, N);
    xmci_kmeans_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, N, &ws, &err), XMC_OK);
    for (uint32_t seed = 0; seed < 20; seed++) {
        uint32_t elems[N];
        for (uint32_t i = 0; i < N; i++) elems[i] = i;
        xmc_rng rng;
        xmc_rng_seed(&rng, seed);
        xmci_kmeans_split(&feat, elems, N, &rng, 20, ws);
        for (uint32_t i = 1; i < N / 2; i++) CU_ASSERT_EQUAL(elems[i] % 2, elems[0] % 2);
        for (uint32_t i = N / 2; i < N; i++) CU_ASSERT_NOT_EQUAL(elems[i] % 2, elems[0] % 2);
    }
    /* a sub-range of a larger id space: only the listed elements move, the others are untouched */
    uint32_t sub[8] = {1, 2, 5, 8, 11, 14, 17, 22}; /* 4 odd (group B), 4 even (group A) */
    xmc_rng rng;
    xmc_rng_seed(&rng, 3);
    xmci_kmeans_split(&feat, sub, 8, &rng, 20, ws);
    for (uint32_t i = 1; i < 4; i++) CU_ASSERT_EQUAL(sub[i] % 2, sub[0] % 2);
    for (uint32_t i = 4; i < 8; i++) CU_ASSERT_NOT_EQUAL(sub[i] % 2, sub[0] % 2);
    CU_ASSERT(is_sorted(sub, 4) && is_sorted(sub + 4, 4));
    xmci_kmeans_ws_free(ws);
    xmci_csr_free(&feat);
}

/* A converged split is a fixed point: more iterations change nothing (on the arc it converges after the
 * first re-centring; random rows within 50 iterations). A centroid difference of the wrong sign would swap
 * the halves on every iteration, so the result would depend on max_iter's parity. */
static void test_converged_is_fixed(void)
{
    xmci_kmeans_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, 50, &ws, &err), XMC_OK);
    for (uint32_t n = 3; n <= 50; n++) {
        for (int kind = 0; kind < 2; kind++) {
            xmci_csr feat;
            if (kind == 0) {
                double angle[50];
                for (uint32_t i = 0; i < n; i++) angle[i] = 90.0 * ((i * 7) % n) / (n - 1);
                arc_embeddings(&feat, angle, n);
            } else {
                random_embeddings(&feat, n, 1000 + n);
            }
            static const int iters[] = {50, 51, 200};
            uint32_t first[50];
            for (int k = 0; k < 3; k++) {
                uint32_t elems[50];
                for (uint32_t i = 0; i < n; i++) elems[i] = i;
                xmc_rng rng;
                xmc_rng_seed(&rng, n);
                xmci_kmeans_split(&feat, elems, n, &rng, kind == 0 ? iters[k] - 45 : iters[k], ws);
                if (k == 0) memcpy(first, elems, n * sizeof *elems);
                else CU_ASSERT(memcmp(first, elems, n * sizeof *elems) == 0);
            }
            xmci_csr_free(&feat);
        }
    }
    xmci_kmeans_ws_free(ws);
}

/* Same seed, same split; the workspace comes back clean (a split after another one gives what a fresh
 * workspace gives). */
static void test_deterministic(void)
{
    enum { N = 37 };
    xmci_csr feat;
    random_embeddings(&feat, N, 99);
    xmci_kmeans_ws *ws1, *ws2;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, N, &ws1, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, N, &ws2, &err), XMC_OK);
    uint32_t a[N], b[N], c[N];
    for (uint32_t i = 0; i < N; i++) a[i] = b[i] = c[i] = i;
    xmc_rng rng;
    xmc_rng_seed(&rng, 5);
    xmci_kmeans_split(&feat, a, N, &rng, 20, ws1);
    /* dirty ws2 with another split first */
    xmc_rng_seed(&rng, 11);
    xmci_kmeans_split(&feat, c, N, &rng, 20, ws2);
    xmc_rng_seed(&rng, 5);
    xmci_kmeans_split(&feat, b, N, &rng, 20, ws2);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    /* and again on ws1 */
    for (uint32_t i = 0; i < N; i++) b[i] = i;
    xmc_rng_seed(&rng, 5);
    xmci_kmeans_split(&feat, b, N, &rng, 20, ws1);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    xmci_kmeans_ws_free(ws1);
    xmci_kmeans_ws_free(ws2);
    xmci_csr_free(&feat);
}

/* All-zero embeddings score 0: ties go by id, so the left half is the smallest ids. Mixed with non-empty
 * rows the split still is a sorted permutation. */
static void test_zero_embeddings(void)
{
    enum { N = 11 };
    xmci_csr feat;
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&feat, N, NF, 0, NULL), XMC_OK);
    xmci_kmeans_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_kmeans_ws_new(NF, N, &ws, &err), XMC_OK);
    uint32_t elems[N] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    xmc_rng rng;
    xmc_rng_seed(&rng, 1);
    xmci_kmeans_split(&feat, elems, N, &rng, 20, ws);
    for (uint32_t i = 0; i < N; i++) CU_ASSERT_EQUAL(elems[i], i);
    xmci_csr_free(&feat);

    /* half the rows empty */
    float dense[N * NF] = {0};
    for (uint32_t i = 0; i < N; i += 2) dense[i * NF + i % NF] = 1.0f;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&feat, N, NF, dense), 0);
    for (uint32_t seed = 0; seed < 5; seed++) {
        for (uint32_t i = 0; i < N; i++) elems[i] = i;
        xmc_rng_seed(&rng, seed);
        xmci_kmeans_split(&feat, elems, N, &rng, 20, ws);
        CU_ASSERT(is_permutation(elems, N));
        CU_ASSERT(is_sorted(elems, N / 2) && is_sorted(elems + N / 2, N - N / 2));
    }
    /* two elements, both empty */
    uint32_t two[2] = {3, 1};
    xmci_kmeans_split(&feat, two, 2, &rng, 20, ws);
    CU_ASSERT(two[0] == 1 && two[1] == 3);
    xmci_kmeans_ws_free(ws);
    xmci_csr_free(&feat);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("kmeans", NULL, NULL);
    TU_ADD(s, test_balanced_halves);
    TU_ADD(s, test_arc_split_sizes);
    TU_ADD(s, test_separated_groups);
    TU_ADD(s, test_converged_is_fixed);
    TU_ADD(s, test_deterministic);
    TU_ADD(s, test_zero_embeddings);
    return tu_run(argc, argv);
}
