/* test_xlinear_store.c: XR-Linear storage: xmci_xlinear_save then xmci_xlinear_load through a model directory
 * gives the same layers and the same search results; xmci_layer_weights gives back what xmci_layer_build was
 * given; and a layer whose index arrays are damaged but written with valid checksums (so only the structure
 * checks of the loader can catch it) is refused with the right error.
 *
 * The damaged versions are written array by array with xmci_writer_array from a good model's arrays with one
 * value changed, plus the manifest keys xmci_xlinear_save would write. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"
#include "xlinear.h"

static char *repo;

static int setup(void)
{
    repo = tu_tmpdir();
    return repo ? 0 : -1;
}

static int teardown(void)
{
    tu_rmrf(repo);
    free(repo);
    return 0;
}

/* ---- models ---------------------------------------------------------------------------------------------- */

static void build_layer(xmci_layer *L, uint32_t nodes, uint32_t nf, const float *dense, const uint32_t *parent,
                        uint32_t nr_parents)
{
    xmci_csr w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&w, nodes, nf + 1, dense), 0);
    CU_ASSERT_EQUAL_FATAL(xmci_layer_build(&w, parent, nr_parents, L, &err), XMC_OK);
    xmci_csr_free(&w);
}

#define BF 50

/* depth-3 model 3 / 10 / 30 nodes over BF features, random sparse weights */
static void random_model(xmci_xlinear *m, uint32_t seed)
{
    static const uint32_t nodes[3] = {3, 10, 30};
    memset(m, 0, sizeof *m);
    m->depth = 3;
    m->nr_features = BF;
    m->bias = 0.75f;
    m->beam = 4;
    m->topk = 7;
    m->post = XMC_POST_SIGMOID;
    xmc_rng rng;
    xmc_rng_seed(&rng, seed);
    for (uint32_t t = 0; t < 3; t++) {
        float *dense = calloc((size_t)nodes[t] * (BF + 1), sizeof *dense);
        uint32_t *parent = malloc(nodes[t] * sizeof *parent);
        uint32_t above = t ? nodes[t - 1] : 1;
        for (uint32_t j = 0; j < nodes[t]; j++) {
            parent[j] = t ? (uint32_t)xmc_rng_uniform(&rng, 0, above - 1) : 0;
            if (t && j < above) parent[j] = j;
            for (uint32_t f = 0; f <= BF; f++)
                if (xmc_rng_uniform(&rng, 0, 3) == 0)
                    dense[(size_t)j * (BF + 1) + f] = ((float)xmc_rng_uniform(&rng, 0, 2000) - 1000) / 997.0f;
        }
        build_layer(&m->layers[t], nodes[t], BF, dense, parent, above);
        free(dense);
        free(parent);
    }
}

static void open_version(const char *ver, xmci_bundle **b)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", repo, ver);
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_bundle_open(dir, 1, b, &err), XMC_OK);
}

static int same_layer(const xmci_layer *a, const xmci_layer *b)
{
    if (a->nr_nodes != b->nr_nodes || a->nr_parents != b->nr_parents || a->max_children != b->max_children ||
        a->nr_rows != b->nr_rows || a->nnz != b->nnz)
        return 0;
    return memcmp(a->child_ptr, b->child_ptr, (a->nr_parents + 1) * sizeof(uint32_t)) == 0 &&
           memcmp(a->child_idx, b->child_idx, a->nr_nodes * sizeof(uint32_t)) == 0 &&
           memcmp(a->chunk_ptr, b->chunk_ptr, (a->nr_parents + 1) * sizeof(uint64_t)) == 0 &&
           memcmp(a->row_feat, b->row_feat, a->nr_rows * sizeof(uint32_t)) == 0 &&
           memcmp(a->row_ptr, b->row_ptr, (a->nr_rows + 1) * sizeof(uint64_t)) == 0 &&
           memcmp(a->ent_child, b->ent_child, a->nnz * sizeof(uint32_t)) == 0 &&
           memcmp(a->ent_w, b->ent_w, a->nnz * sizeof(float)) == 0;
}

/* ---- tests ----------------------------------------------------------------------------------------------- */

static void test_save_load_search(void)
{
    xmci_xlinear m, l;
    random_model(&m, 11);
    xmci_model_writer *w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, "roundtrip", &w, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_xlinear_save(&m, w, &err), XMC_OK);
    char v[128];
    CU_ASSERT_EQUAL_FATAL(xmci_writer_commit(w, 0, v, sizeof v, &err), XMC_OK);
    xmci_bundle *b;
    open_version("roundtrip", &b);
    CU_ASSERT_EQUAL_FATAL(xmci_xlinear_load(b, &l, &err), XMC_OK);
    CU_ASSERT_EQUAL(l.depth, m.depth);
    CU_ASSERT_EQUAL(l.nr_features, m.nr_features);
    CU_ASSERT_EQUAL(l.bias, m.bias);
    CU_ASSERT_EQUAL(l.beam, m.beam);
    CU_ASSERT_EQUAL(l.topk, m.topk);
    CU_ASSERT_EQUAL(l.post, m.post);
    for (uint32_t t = 0; t < m.depth; t++) {
        CU_ASSERT(same_layer(&m.layers[t], &l.layers[t]));
        CU_ASSERT_EQUAL(l.layers[t].owned, 0);
    }
    /* identical search results, bit for bit, for random documents and every post-processor */
    xmci_beam_ws *wm, *wl;
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 8, &wm, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&l, 8, &wl, &err), XMC_OK);
    xmc_rng rng;
    xmc_rng_seed(&rng, 3);
    int same = 1, some = 0;
    for (int d = 0; d < 200; d++) {
        uint32_t idx[BF + 2], nnz = 0;
        float val[BF + 2];
        for (uint32_t f = 0; f < BF + 2; f++)
            if (xmc_rng_uniform(&rng, 0, 4) == 0) { idx[nnz] = f; val[nnz] = (float)xmc_rng_uniform(&rng, 1, 100) / 50.0f; nnz++; }
        for (int post = 0; post < XMC_POST__COUNT; post++) {
            xmc_hit a[8], c[8];
            uint32_t na = xmci_beam_search(&m, wm, idx, val, nnz, 4, 8, post, 0, a);
            uint32_t nc = xmci_beam_search(&l, wl, idx, val, nnz, 4, 8, post, 0, c);
            same &= na == nc && memcmp(a, c, na * sizeof *a) == 0;
            some += na > 0;
        }
    }
    CU_ASSERT(same);
    CU_ASSERT(some > 0);
    xmci_beam_ws_free(wm);
    xmci_beam_ws_free(wl);
    xmci_xlinear_free(&l); /* views: frees nothing of the mapping */
    CU_ASSERT_EQUAL(l.depth, 0);
    xmci_bundle_close(b);
    xmci_xlinear_free(&m);
}

/* xmci_layer_weights(xmci_layer_build(W)) == W, with empty rows and a parent that has no children. */
static void test_layer_weights_round_trip(void)
{
    enum { N = 25, P = 6, F = 40 };
    xmc_rng rng;
    xmc_rng_seed(&rng, 21);
    float *dense = calloc((size_t)N * (F + 1), sizeof *dense);
    uint32_t parent[N];
    for (uint32_t j = 0; j < N; j++) {
        parent[j] = (uint32_t)xmc_rng_uniform(&rng, 0, P - 2); /* parent P-1 gets no child */
        if (j % 7 == 3) continue;                             /* an empty weight row */
        for (uint32_t f = 0; f <= F; f++)
            if (xmc_rng_uniform(&rng, 0, 2) == 0) dense[(size_t)j * (F + 1) + f] = (float)xmc_rng_uniform(&rng, 1, 999) / 7.0f;
    }
    xmci_csr w, back;
    CU_ASSERT_EQUAL_FATAL(tu_csr_from_dense(&w, N, F + 1, dense), 0);
    xmci_layer L;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_layer_build(&w, parent, P, &L, &err), XMC_OK);
    CU_ASSERT_EQUAL(L.nr_nodes, N);
    CU_ASSERT_EQUAL(L.nr_parents, P);
    CU_ASSERT_EQUAL(L.nnz, xmci_csr_nnz(&w));
    CU_ASSERT_EQUAL(L.child_ptr[P], N);
    CU_ASSERT_EQUAL(L.child_ptr[P - 1], N); /* the childless parent */
    CU_ASSERT_EQUAL(L.chunk_ptr[P - 1], L.chunk_ptr[P]);
    /* children of each parent ascending */
    for (uint32_t p = 0; p < P; p++)
        for (uint32_t c = L.child_ptr[p]; c < L.child_ptr[p + 1]; c++) {
            CU_ASSERT_EQUAL(parent[L.child_idx[c]], p);
            if (c > L.child_ptr[p]) CU_ASSERT(L.child_idx[c - 1] < L.child_idx[c]);
        }
    CU_ASSERT_EQUAL_FATAL(xmci_layer_weights(&L, F, &back, &err), XMC_OK);
    CU_ASSERT_EQUAL(back.rows, w.rows);
    CU_ASSERT_EQUAL(back.cols, w.cols);
    CU_ASSERT(memcmp(back.indptr, w.indptr, (N + 1) * sizeof *w.indptr) == 0);
    CU_ASSERT(memcmp(back.indices, w.indices, xmci_csr_nnz(&w) * sizeof *w.indices) == 0);
    CU_ASSERT(memcmp(back.data, w.data, xmci_csr_nnz(&w) * sizeof *w.data) == 0);
    xmci_csr_free(&back);
    xmci_layer_free(&L);
    CU_ASSERT_PTR_NULL(L.child_ptr);
    /* a parent out of range */
    parent[4] = P;
    CU_ASSERT_EQUAL(xmci_layer_build(&w, parent, P, &L, &err), XMC_ERR_SHAPE);
    /* no nodes at all */
    xmci_csr none;
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&none, 0, F + 1, 0, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_layer_build(&none, parent, 2, &L, &err), XMC_OK);
    CU_ASSERT(L.nr_nodes == 0 && L.nnz == 0 && L.child_ptr[2] == 0);
    CU_ASSERT_EQUAL(xmci_layer_weights(&L, F, &back, &err), XMC_OK);
    CU_ASSERT_EQUAL(back.rows, 0);
    xmci_csr_free(&back);
    xmci_layer_free(&L);
    xmci_csr_free(&none);
    xmci_csr_free(&w);
    free(dense);
}

/* ---- damaged index arrays --------------------------------------------------------------------------------- */

/* Mutable copies of one layer's arrays. */
typedef struct {
    uint32_t nr_parents, nr_nodes;
    uint64_t rows, nnz;
    uint32_t child_ptr[64], child_idx[64];
    uint64_t chunk_ptr[64], row_ptr[256];
    uint32_t row_feat[256], ent_child[512];
    float ent_w[512];
} raw_layer;

static void to_raw(const xmci_layer *L, raw_layer *r)
{
    CU_ASSERT_FATAL(L->nr_parents < 64 && L->nr_nodes <= 64 && L->nr_rows < 256 && L->nnz <= 512);
    memset(r, 0, sizeof *r);
    r->nr_parents = L->nr_parents;
    r->nr_nodes = L->nr_nodes;
    r->rows = L->nr_rows;
    r->nnz = L->nnz;
    memcpy(r->child_ptr, L->child_ptr, (L->nr_parents + 1) * sizeof(uint32_t));
    memcpy(r->child_idx, L->child_idx, L->nr_nodes * sizeof(uint32_t));
    memcpy(r->chunk_ptr, L->chunk_ptr, (L->nr_parents + 1) * sizeof(uint64_t));
    memcpy(r->row_feat, L->row_feat, L->nr_rows * sizeof(uint32_t));
    memcpy(r->row_ptr, L->row_ptr, (L->nr_rows + 1) * sizeof(uint64_t));
    memcpy(r->ent_child, L->ent_child, L->nnz * sizeof(uint32_t));
    memcpy(r->ent_w, L->ent_w, L->nnz * sizeof(float));
}

enum { SKIP_NONE = -1 };

/* Writes a version "name" holding layers r[0..depth) and the manifest keys; array number `skip` of layer
 * `skip_layer` is left out, and child_ptr of layer short_layer gets one entry less. Returns the commit's code. */
static xmc_err write_raw(const char *name, const raw_layer *r, uint32_t depth, long long manifest_depth, uint32_t nf,
                         const char *post, int skip_layer, int skip, int short_layer)
{
    xmci_model_writer *w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, name, &w, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_int(w, "xl.depth", manifest_depth, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_int(w, "xl.nr_features", nf, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_float(w, "xl.bias", 1.0, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_int(w, "xl.beam", 2, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_int(w, "xl.topk", 4, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_string(w, "xl.post", post, &err), XMC_OK);
    for (uint32_t t = 0; t < depth; t++) {
        const raw_layer *L = &r[t];
        char an[64];
        uint64_t s;
        for (int a = 0; a < 7; a++) {
            if ((int)t == skip_layer && a == skip) continue;
            switch (a) {
            case 0:
                s = L->nr_parents + 1 - ((int)t == short_layer);
                snprintf(an, sizeof an, "xl.%u.child_ptr", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U32, 1, &s, L->child_ptr, &err), XMC_OK);
                break;
            case 1:
                s = L->nr_nodes;
                snprintf(an, sizeof an, "xl.%u.child_idx", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U32, 1, &s, L->child_idx, &err), XMC_OK);
                break;
            case 2:
                s = L->nr_parents + 1;
                snprintf(an, sizeof an, "xl.%u.chunk_ptr", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U64, 1, &s, L->chunk_ptr, &err), XMC_OK);
                break;
            case 3:
                s = L->rows;
                snprintf(an, sizeof an, "xl.%u.row_feat", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U32, 1, &s, L->row_feat, &err), XMC_OK);
                break;
            case 4:
                s = L->rows + 1;
                snprintf(an, sizeof an, "xl.%u.row_ptr", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U64, 1, &s, L->row_ptr, &err), XMC_OK);
                break;
            case 5:
                s = L->nnz;
                snprintf(an, sizeof an, "xl.%u.ent_child", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_U32, 1, &s, L->ent_child, &err), XMC_OK);
                break;
            default:
                s = L->nnz;
                snprintf(an, sizeof an, "xl.%u.ent_w", t);
                CU_ASSERT_EQUAL(xmci_writer_array(w, an, XMCI_DT_F32, 1, &s, L->ent_w, &err), XMC_OK);
                break;
            }
        }
    }
    return xmci_writer_commit(w, 0, NULL, 0, &err);
}

/* Opens version name with checksums verified (they are valid) and loads the rankers. */
static xmc_err load_raw(const char *name, char *msg, size_t msg_size)
{
    xmci_bundle *b;
    open_version(name, &b);
    xmci_xlinear m;
    xmc_error err = {0};
    xmc_err rc = xmci_xlinear_load(b, &m, &err);
    snprintf(msg, msg_size, "%s", err.msg);
    if (rc == XMC_OK) {
        /* a loaded model must be searchable */
        xmci_beam_ws *ws;
        CU_ASSERT_EQUAL_FATAL(xmci_beam_ws_new(&m, 4, &ws, &err), XMC_OK);
        uint32_t idx[2] = {0, 2};
        float val[2] = {1, 1};
        xmc_hit hits[4];
        (void)xmci_beam_search(&m, ws, idx, val, 2, 2, 4, 0, 0, hits);
        xmci_beam_ws_free(ws);
    }
    xmci_xlinear_free(&m);
    xmci_bundle_close(b);
    return rc;
}

/* The small model of test_beam.c: 2 clusters, 4 labels, 3 features. */
static void small_raw(raw_layer r[2])
{
    static const float W0[2][4] = {{2, 0, 0, 0}, {0.5f, 0, 0, 0.25f}};
    static const float W1[4][4] = {{0, 1, 0.7f, 0}, {0.2f, 0, 0.7f, 0}, {3, 1, 0, 0}, {0, 0, 0, -0.5f}};
    static const uint32_t P0[2] = {0, 0}, P1[4] = {0, 0, 1, 1};
    xmci_layer L0, L1;
    build_layer(&L0, 2, 3, &W0[0][0], P0, 1);
    build_layer(&L1, 4, 3, &W1[0][0], P1, 2);
    to_raw(&L0, &r[0]);
    to_raw(&L1, &r[1]);
    xmci_layer_free(&L0);
    xmci_layer_free(&L1);
}

static void test_damaged_index_refused(void)
{
    raw_layer good[2], r[2];
    small_raw(good);
    /* layer 1, parent 0: chunk rows f0 (label 1), f1 (label 0), f2 (labels 0 and 1); parent 1: f0, f1, bias */
    CU_ASSERT_FATAL(good[1].rows == 6 && good[1].chunk_ptr[1] == 3 && good[1].nnz == 7);
    char msg[512];
    int n = 0;
#define CASE(want, ...)                                                                                              \
    do {                                                                                                             \
        char name[32];                                                                                               \
        snprintf(name, sizeof name, "case%d", n++);                                                                  \
        CU_ASSERT_EQUAL_FATAL(write_raw(name, __VA_ARGS__), XMC_OK);                                                 \
        xmc_err rc_ = load_raw(name, msg, sizeof msg);                                                               \
        CU_ASSERT_EQUAL(rc_, want);                                                                                  \
        if (rc_ != (want)) fprintf(stderr, "case %d (line %d): %s, want %s (%s)\n", n - 1, __LINE__,                 \
                                   xmc_err_name(rc_), xmc_err_name(want), msg);                                      \
    } while (0)

    /* the control: written the same way, undamaged */
    memcpy(r, good, sizeof r);
    CASE(XMC_OK, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* an entry names child 2 of parent 0, which has 2 children (0, 1) */
    memcpy(r, good, sizeof r);
    r[1].ent_child[0] = 2;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "child"));
    memcpy(r, good, sizeof r);
    r[1].ent_child[r[1].nnz - 1] = 0xffffffffu;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[0].ent_child[0] = 2; /* layer 0: the root has 2 children */
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* a child index past the layer's nodes */
    memcpy(r, good, sizeof r);
    r[1].child_idx[3] = 4;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[0].child_idx[1] = 2;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* a row feature past the bias feature (3) */
    memcpy(r, good, sizeof r);
    r[1].row_feat[2] = 4;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    /* row features out of order inside a chunk */
    memcpy(r, good, sizeof r);
    r[1].row_feat[0] = 1; /* rows 0, 1 both feature 1 */
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* row pointers: decreasing; not spanning the entries */
    memcpy(r, good, sizeof r);
    r[1].row_ptr[1] = r[1].row_ptr[2] + 1;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].row_ptr[r[1].rows] = r[1].nnz - 1;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].row_ptr[0] = 1;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* child and chunk pointers: decreasing, not starting at 0, not spanning */
    memcpy(r, good, sizeof r);
    r[1].child_ptr[1] = 5;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].child_ptr[0] = 1;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].child_ptr[2] = 3;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].chunk_ptr[1] = 7;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
    memcpy(r, good, sizeof r);
    r[1].chunk_ptr[2] = 5;
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* a chunk pointer past the rows, with rows that stay ascending across the chunk boundary: layer 1 of a
     * model whose parent 0 uses only feature 0 and parent 1 features 1 and 2 (rows f0 | f1, f2) */
    {
        static const float W1b[4][4] = {{1, 0, 0, 0}, {0.5f, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}};
        static const uint32_t P1[4] = {0, 0, 1, 1};
        xmci_layer L1;
        build_layer(&L1, 4, 3, &W1b[0][0], P1, 2);
        memcpy(r, good, sizeof r);
        to_raw(&L1, &r[1]);
        xmci_layer_free(&L1);
        CU_ASSERT_FATAL(r[1].rows == 3 && r[1].chunk_ptr[1] == 1 && r[1].chunk_ptr[2] == 3);
        CASE(XMC_OK, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
        r[1].chunk_ptr[1] = 4; /* chunk 0 = rows 0..3 of 3, chunk 1 = rows 4..3 */
        CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l3-hinge", -1, -1, -1);
        /* Regression LOAD_CHUNK_PTR_OOB: the loader once walked chunk p's rows before checking chunk_ptr[p + 1]
         * <= nr_rows, reading past both arrays and reporting "bad weight row 3" of 3 rows. */
        CU_ASSERT_PTR_NULL(strstr(msg, "row 3"));
    }

    /* shapes: child_ptr one short; an array missing; manifest depth beyond the layers written */
    memcpy(r, good, sizeof r);
    CASE(XMC_ERR_SHAPE, r, 2, 2, 3, "l3-hinge", -1, -1, 1);
    CASE(XMC_ERR_NOTFOUND, r, 2, 2, 3, "l3-hinge", 1, 5, -1);
    CASE(XMC_ERR_NOTFOUND, r, 2, 2, 3, "l3-hinge", 0, 3, -1);
    CASE(XMC_ERR_NOTFOUND, r, 2, 3, 3, "l3-hinge", -1, -1, -1);
    /* layer 1 written for 3 parents where layer 0 has 2 nodes */
    memcpy(r, good, sizeof r);
    r[1].nr_parents = 3;
    r[1].child_ptr[3] = 4;
    r[1].chunk_ptr[3] = 6;
    CASE(XMC_ERR_SHAPE, r, 2, 2, 3, "l3-hinge", -1, -1, -1);

    /* manifest values */
    memcpy(r, good, sizeof r);
    CASE(XMC_ERR_CORRUPT, r, 2, 0, 3, "l3-hinge", -1, -1, -1);
    CASE(XMC_ERR_CORRUPT, r, 2, XMCI_TREE_MAX_DEPTH + 1, 3, "l3-hinge", -1, -1, -1);
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 3, "l4-hinge", -1, -1, -1);
    /* nr_features 2: row feature 2 is now the bias, 3 is past it */
    CASE(XMC_ERR_CORRUPT, r, 2, 2, 2, "l3-hinge", -1, -1, -1);
#undef CASE
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("xlinear_store", setup, teardown);
    TU_ADD(s, test_save_load_search);
    TU_ADD(s, test_layer_weights_round_trip);
    TU_ADD(s, test_damaged_index_refused);
    return tu_run(argc, argv);
}
