/* test_alloc_faults.c: RELIABILITY R19: fail the Nth allocation / read for N = 1..K in the loaders and the
 * batch path: an error each time (or, where the code tolerates the failure, exactly the unharmed result), no
 * leak, no half-swapped state. The injector and the sweep are tests/alloc_faults.h (how faults are injected, what
 * a step must give, how leaks are found); the Makefile links this program with --wrap and with the stage plugin
 * (plugin/xmc_stage.c: a dlopen()ed copy would escape the wrappers). Under `make test-asan` LeakSanitizer also
 * sees what libraries allocate for us, under `make test-valgrind` memcheck; `make test-faults` runs the R19 suites
 * alone under ASan.
 *
 * Swept: opening a version (TF-IDF, matrix and TF-IDF+encoder models: CURRENT, manifest, arrays, TF-IDF
 * vocabulary, tree and layers, labels, encoder weights and vocabulary, canaries), with and without checksums; a
 * workspace and xmc_classify_batch (which must make no such call at all, as xmc.h promises); the offline batch
 * path (xmci_tfidf_transform_batch then xmci_beam_search_batch, 1 and 2 threads); the data readers (TSV, XC, smat
 * pair; a failed read must leave the dataset zeroed); a whole training on a small text corpus (TF-IDF, tree,
 * every layer's rankers, grouped and single dual solves, the version's files: an error or the unharmed weights); the
 * stage plugin's create(), process() of a small batch
 * (on a fresh instance, and the first batch after a swap, which rebuilds the workspace; after a fault the next
 * process() must give the unharmed outputs) and load() of v2 while v1 serves: a refused load must leave v1
 * serving with the same outputs and a later unharmed load of v2 must succeed. */
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_faults.h"
#include "beam.h"
#include "classifier.h"
#include "dataset.h"
#include "testutil.h"
#include "train.h"
#include "xmc.pb-c.h"
#include "xmc/repo.h"
#include "xmc/stage.h"
#include "xmc/xmc.h"
#include "xrt.h"

extern const xmc_stage_api xmc_stage_plugin; /* plugin/xmc_stage.c, linked in */

/* A library call's failure: the code in err matches, a message is there. */
static af_outcome lib_error(xmc_err rc, const xmc_error *err, char *msg, size_t size)
{
    af.code = (int)rc;
    if (err->code != rc) {
        snprintf(msg, size, "returned %s, err says %s (%s)", xmc_err_name(rc), xmc_err_name(err->code), err->msg);
        return AF_WRONG;
    }
    if (err->msg[0]) snprintf(msg, size, "%s: %s", xmc_err_name(rc), err->msg);
    return AF_ERROR;
}

/* ==== fixtures ============================================================================================ */

#define NDOC 240
#define NLAB 16

static char *work;                                /* everything below lives here */
static char repo[4200];                          /* text models v1 (CURRENT) and v2 */
static char v1_dir[4300], v2_dir[4300];
static char matrix_repo[4200], encoder_repo[4200];
static char tsv_path[4300], xc_path[4300], smat_x[4300], smat_y[4300];
static int have_encoder;

static const char *probes[] = {"w3a w3b", "", "red pack w15c", "w1a w2a w3a w4a w5a w6a w7a", "w9b blue small"};
#define NPROBE (sizeof probes / sizeof *probes)
#define PROBE_K 4

static char *fresh_dir(void)
{
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
        char tmpl[] = "/dev/shm/xmc-test-XXXXXX";
        if (mkdtemp(tmpl)) return strdup(tmpl);
    }
    return tu_tmpdir();
}

/* A small TF-IDF (or TF-IDF+encoder) model as in test_faults.c: label l's words are "w<l>a w<l>b w<l>c" with
 * shared noise; shift moves every document to label l + shift, so that v2 classifies differently from v1. */
static xmc_err train_text_faults(const char *dir, const char *version, int shift, int encoder, int faults,
                                 xmc_error *err)
{
    static const char *noise[] = {"new", "set", "pack", "blue", "red", "large", "small", "pro"};
    char *texts[NDOC];
    size_t lens[NDOC];
    xmci_csr y;
    xmc_err rc = xmci_csr_alloc(&y, NDOC, NLAB, NDOC, err);
    if (rc) return rc;
    for (int i = 0; i < NDOC; i++) {
        int l = (i * 5) % NLAB;
        char buf[256];
        snprintf(buf, sizeof buf, "w%da w%d%c %s %s", l, l, "bc"[i % 2], noise[i % 8], noise[(i / 8) % 8]);
        texts[i] = strdup(buf);
        lens[i] = strlen(buf);
        y.indices[i] = (uint32_t)((l + shift) % NLAB);
        y.data[i] = 1;
        y.indptr[i + 1] = (uint64_t)i + 1;
    }
    xmci_train_opts o;
    xmci_train_opts_default(&o);
    o.tree.max_leaf_size = 4;
    o.tree.nr_splits = 2;
    o.version = version;
    o.xl.solver.threshold = 0.01f;
    if (encoder) {
        o.featurizer = XMC_FEATURIZER_BOTH;
        o.encoder.dir = tu_data("bert-tiny-pecos");
    }
    o.threads = 1; /* the same calls in the same order every run (the fault sweep counts them) */
    char out[64];
    rc = xmci_tfidf_config_parse(&o.tfidf, "word:1-2,min_df=1", err);
    if (!rc) {
        if (faults) af_on();
        rc = xmci_train((const char *const *)texts, lens, NULL, &y, NULL, &o, dir, out, sizeof out, NULL, err);
        if (faults) af_off();
    }
    for (int i = 0; i < NDOC; i++) free(texts[i]);
    xmci_csr_free(&y);
    return rc;
}

static int train_text(const char *dir, const char *version, int shift, int encoder)
{
    xmc_error err = {0};
    if (!train_text_faults(dir, version, shift, encoder, 0, &err)) return 0;
    fprintf(stderr, "train %s/%s: %s\n", dir, version, err.msg);
    return -1;
}

/* A feature-matrix model (as test_faults.c): its canaries are stored as features. */
static int train_matrix(const char *dir)
{
    enum { F = 40 };
    xmci_csr x, y;
    xmc_error err = {0};
    float *dense = calloc((size_t)NDOC * F, sizeof *dense);
    if (!dense || xmci_csr_alloc(&y, NDOC, NLAB, NDOC, &err)) return -1;
    for (int i = 0; i < NDOC; i++) {
        int l = (i * 5) % NLAB;
        dense[i * F + 2 * l] = 1.0f;
        dense[i * F + 2 * l + 1] = 0.2f + 0.1f * (float)(i % 5);
        dense[i * F + 32 + i % 8] = 0.5f;
        y.indices[i] = (uint32_t)l;
        y.data[i] = 1;
        y.indptr[i + 1] = (uint64_t)i + 1;
    }
    int rc = -1;
    if (tu_csr_from_dense(&x, NDOC, F, dense) == 0) {
        xmci_csr_normalize_rows(&x);
        xmci_train_opts o;
        xmci_train_opts_default(&o);
        o.tree.max_leaf_size = 4;
        o.tree.nr_splits = 2;
        o.version = "m1";
        o.xl.solver.threshold = 0.01f;
        char out[64];
        rc = xmci_train(NULL, NULL, &x, &y, NULL, &o, dir, out, sizeof out, NULL, &err) ? -1 : 0;
        if (rc) fprintf(stderr, "train %s: %s\n", dir, err.msg);
        xmci_csr_free(&x);
    }
    free(dense);
    xmci_csr_free(&y);
    return rc;
}

static int write_data_files(void)
{
    FILE *f = fopen(tsv_path, "w");
    if (!f) return -1;
    for (int i = 0; i < 60; i++) fprintf(f, "cat%d,cat%d\tw%da item %d\n", i % 7, (i + 3) % 11, i % 13, i);
    fprintf(f, "\tno labels\n");
    fclose(f);
    f = fopen(xc_path, "w");
    if (!f) return -1;
    fprintf(f, "40 30 9\n");
    for (int i = 0; i < 40; i++) fprintf(f, "%d,%d %d:1 %d:0.5 %d:0.25\n", i % 9, (i + 4) % 9, i % 30, (i + 7) % 30, (i + 11) % 30);
    fclose(f);
    FILE *fx = fopen(smat_x, "w"), *fy = fopen(smat_y, "w");
    if (!fx || !fy) return -1;
    fprintf(fx, "40 30\n");
    fprintf(fy, "40 9\n");
    for (int i = 0; i < 40; i++) {
        fprintf(fx, "%d:1 %d:0.5\n", i % 30, (i + 13) % 30 == i % 30 ? (i + 14) % 30 : (i + 13) % 30);
        fprintf(fy, "%d:1\n", i % 9);
    }
    fclose(fx);
    fclose(fy);
    return 0;
}

static int setup_once(void)
{
    static int done, rc;
    if (done) return rc;
    done = 1;
    rc = -1;
    work = fresh_dir();
    if (!work) return rc;
    snprintf(repo, sizeof repo, "%s/text", work);
    snprintf(matrix_repo, sizeof matrix_repo, "%s/matrix", work);
    snprintf(encoder_repo, sizeof encoder_repo, "%s/encoder", work);
    snprintf(v1_dir, sizeof v1_dir, "%s/v1", repo);
    snprintf(v2_dir, sizeof v2_dir, "%s/v2", repo);
    snprintf(tsv_path, sizeof tsv_path, "%s/data.tsv", work);
    snprintf(xc_path, sizeof xc_path, "%s/data.xc", work);
    snprintf(smat_x, sizeof smat_x, "%s/X.txt", work);
    snprintf(smat_y, sizeof smat_y, "%s/Y.txt", work);
    char cur[4300];
    snprintf(cur, sizeof cur, "%s/CURRENT", repo);
    if (train_text(repo, "v2", 1, 0) || train_text(repo, "v1", 0, 0) || train_matrix(matrix_repo) ||
        write_data_files())
        return rc;
    have_encoder = tu_data_dir() != NULL;
    if (have_encoder && train_text(encoder_repo, "e1", 0, 1)) return rc;
    if (tu_write_file(cur, "v1\n")) return rc;
    rc = 0;
    return rc;
}

static int setup(void) { return setup_once(); }
static int teardown(void) { return 0; }

/* ==== opening a model version ============================================================================= */

typedef struct {
    const char *path;
    xmc_open_opts opts;
    int matrix;
    char want[2048]; /* the unharmed model's hits on the probes */
} open_ctx;

/* The classifier's hits on the probes as text (labels and scores), to compare two opens of one version. */
static void probe_hits(const xmc_classifier *clf, char *out, size_t size)
{
    xmc_workspace *ws;
    xmc_error err = {0};
    size_t k = 0;
    out[0] = 0;
    if (xmc_workspace_new(clf, &ws, &err)) {
        snprintf(out, size, "workspace: %s", err.msg);
        return;
    }
    xmc_predict_opts po = {8, PROBE_K, -1};
    xmc_hit hits[PROBE_K];
    for (size_t i = 0; i < NPROBE && k < size; i++) {
        uint32_t n = 0;
        xmc_err rc;
        if (clf->kind == XMC_FEATURIZER_MATRIX) {
            const uint32_t idx[] = {(uint32_t)(2 * i), (uint32_t)(2 * i + 1), 33};
            const float val[] = {1, 0.5f, 0.5f};
            rc = xmc_classify_features(clf, ws, idx, val, 3, &po, hits, &n, &err);
        } else {
            rc = xmc_classify_text(clf, ws, probes[i], strlen(probes[i]), &po, hits, &n, &err);
        }
        k += (size_t)snprintf(out + k, size - k, "%s|", rc ? "error" : "");
        for (uint32_t h = 0; h < n && k < size; h++) k += (size_t)snprintf(out + k, size - k, "%u:%.9g ", hits[h].label, (double)hits[h].score);
    }
    xmc_workspace_free(ws);
}

static af_outcome op_open(void *vctx, char *msg, size_t size)
{
    open_ctx *c = vctx;
    xmc_classifier *clf = (xmc_classifier *)&clf; /* must come back NULL on failure */
    xmc_error err = {0};
    af_on();
    xmc_err rc = xmc_classifier_open(c->path, &c->opts, &clf, &err);
    af_off();
    if (rc) {
        if (clf) { snprintf(msg, size, "failed (%s) but *out is not NULL", err.msg); return AF_WRONG; }
        return lib_error(rc, &err, msg, size);
    }
    char got[sizeof c->want];
    probe_hits(clf, got, sizeof got);
    xmc_classifier_close(clf);
    if (strcmp(got, c->want)) { snprintf(msg, size, "hits %.200s, unharmed %.200s", got, c->want); return AF_WRONG; }
    return AF_OK;
}

static void sweep_open(const char *what, const char *path, int verify, af_result *res)
{
    open_ctx *c = calloc(1, sizeof *c);
    c->path = path;
    c->opts = (xmc_open_opts){verify, 1};
    xmc_classifier *clf;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(path, &c->opts, &clf, &err), XMC_OK);
    probe_hits(clf, c->want, sizeof c->want);
    xmc_classifier_close(clf);
    af_sweep(what, op_open, c, res);
    free(c);
}

static void test_open_text(void)
{
    af_result r;
    sweep_open("open text model (repository)", repo, 1, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(r.k[AF_ALLOC] > 20 && r.k[AF_IO] > 20);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
    sweep_open("open text model, no checksums", v1_dir, 0, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

static void test_open_matrix(void)
{
    af_result r;
    sweep_open("open matrix model", matrix_repo, 1, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

static void test_open_encoder(void)
{
    if (!have_encoder) { CU_FAIL("tests/data missing"); return; }
    af_result r;
    sweep_open("open tfidf+encoder model", encoder_repo, 1, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

/* ==== the batch path ====================================================================================== */

enum { BATCH_N = 24, BATCH_K = 5 };
static const char *batch_texts[BATCH_N];
static size_t batch_lens[BATCH_N];
static char batch_buf[BATCH_N][64];

typedef struct {
    xmc_classifier *clf;
    int threads;
    char want[8192];
} batch_ctx;

static void make_batch_texts(void)
{
    for (int i = 0; i < BATCH_N; i++) {
        snprintf(batch_buf[i], sizeof batch_buf[i], "w%da w%db %s", (i * 3) % NLAB, (i * 3) % NLAB,
                 i % 2 ? "blue pack" : "pro");
        if (i % 7 == 6) batch_buf[i][0] = 0; /* an empty text now and then */
        batch_texts[i] = batch_buf[i];
        batch_lens[i] = strlen(batch_buf[i]);
    }
}

static void render_hits(const xmc_hit *hits, uint32_t stride, const uint32_t *counts, size_t n, char *out, size_t size)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k < size; i++) {
        for (uint32_t h = 0; h < counts[i] && k < size; h++)
            k += (size_t)snprintf(out + k, size - k, "%u:%.9g ", hits[i * stride + h].label, (double)hits[i * stride + h].score);
        if (k < size) k += (size_t)snprintf(out + k, size - k, "|");
    }
}

/* A workspace, then xmc_classify_batch (the serving path: xmc predict, the plugin). */
static af_outcome op_classify_batch(void *vctx, char *msg, size_t size)
{
    batch_ctx *c = vctx;
    xmc_hit hits[BATCH_N * BATCH_K];
    uint32_t counts[BATCH_N] = {0};
    xmc_predict_opts po = {8, BATCH_K, -1};
    xmc_workspace *ws = NULL;
    xmc_error err = {0};
    af_on();
    xmc_err rc = xmc_workspace_new(c->clf, &ws, &err);
    if (!rc) rc = xmc_classify_batch(c->clf, ws, batch_texts, batch_lens, BATCH_N, &po, hits, BATCH_K, counts, &err);
    af_off();
    xmc_workspace_free(ws);
    if (rc) return lib_error(rc, &err, msg, size);
    char got[sizeof c->want];
    render_hits(hits, BATCH_K, counts, BATCH_N, got, sizeof got);
    if (strcmp(got, c->want)) { snprintf(msg, size, "hits %.200s, unharmed %.200s", got, c->want); return AF_WRONG; }
    return AF_OK;
}

/* The offline batch path (xmc eval, training): all texts to a CSR, then a threaded beam search over it. */
static af_outcome op_transform_search(void *vctx, char *msg, size_t size)
{
    batch_ctx *c = vctx;
    xmc_hit hits[BATCH_N * BATCH_K];
    uint32_t counts[BATCH_N] = {0};
    xmci_csr x = {0};
    xmc_error err = {0};
    af_on();
    xmc_err rc = xmci_tfidf_transform_batch(c->clf->tfidf, batch_texts, batch_lens, BATCH_N, c->threads, &x, &err);
    if (!rc)
        rc = xmci_beam_search_batch(&c->clf->xl, &x, 8, BATCH_K, c->clf->xl.post, 0, c->threads, hits, counts, &err);
    af_off();
    xmci_csr_free(&x);
    if (rc) return lib_error(rc, &err, msg, size);
    char got[sizeof c->want];
    render_hits(hits, BATCH_K, counts, BATCH_N, got, sizeof got);
    if (strcmp(got, c->want)) { snprintf(msg, size, "hits %.200s, unharmed %.200s", got, c->want); return AF_WRONG; }
    return AF_OK;
}

static void test_classify_batch(void)
{
    make_batch_texts();
    batch_ctx *c = calloc(1, sizeof *c);
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &c->clf, &err), XMC_OK);
    /* the unharmed result, and xmc.h's promise that classifying allocates (and reads) nothing */
    xmc_workspace *ws;
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(c->clf, &ws, &err), XMC_OK);
    xmc_hit hits[BATCH_N * BATCH_K];
    uint32_t counts[BATCH_N];
    xmc_predict_opts po = {8, BATCH_K, -1};
    for (int cls = 0; cls < AF_NCLASS; cls++) {
        af_step_begin(cls, 0, 0);
        af_on();
        CU_ASSERT_EQUAL(xmc_classify_batch(c->clf, ws, batch_texts, batch_lens, BATCH_N, &po, hits, BATCH_K, counts, &err), XMC_OK);
        af_off();
        CU_ASSERT_EQUAL(atomic_load(&af.calls), 0);
        CU_ASSERT_EQUAL(af_step_end("classify_batch", cls, 0), 0);
    }
    xmc_workspace_free(ws);
    render_hits(hits, BATCH_K, counts, BATCH_N, c->want, sizeof c->want);
    af_result r;
    af_sweep("workspace + classify_batch", op_classify_batch, c, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
    xmc_classifier_close(c->clf);
    free(c);
}

static void test_transform_search_batch(void)
{
    make_batch_texts();
    batch_ctx *c = calloc(1, sizeof *c);
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &c->clf, &err), XMC_OK);
    {
        /* the unharmed result */
        xmc_hit hits[BATCH_N * BATCH_K];
        uint32_t counts[BATCH_N];
        xmci_csr x;
        CU_ASSERT_EQUAL_FATAL(xmci_tfidf_transform_batch(c->clf->tfidf, batch_texts, batch_lens, BATCH_N, 1, &x, &err), XMC_OK);
        CU_ASSERT_EQUAL_FATAL(xmci_beam_search_batch(&c->clf->xl, &x, 8, BATCH_K, c->clf->xl.post, 0, 1, hits, counts, &err), XMC_OK);
        xmci_csr_free(&x);
        render_hits(hits, BATCH_K, counts, BATCH_N, c->want, sizeof c->want);
    }
    for (c->threads = 1; c->threads <= 2; c->threads++) {
        af_result r;
        af_sweep(c->threads == 1 ? "transform_batch + beam batch, 1 thr" : "transform_batch + beam batch, 2 thr",
                 op_transform_search, c, &r);
        CU_ASSERT_EQUAL(r.bad, 0);
        CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
    }
    xmc_classifier_close(c->clf);
    free(c);
}

/* ==== data readers ======================================================================================== */

typedef struct {
    int kind; /* 0 TSV, 1 XC, 2 smat pair */
    xmci_dataset want;
} data_ctx;

static int csr_equal(const xmci_csr *a, const xmci_csr *b)
{
    if (a->rows != b->rows || a->cols != b->cols) return 0;
    if ((!a->indptr) != (!b->indptr)) return 0;
    if (!a->indptr) return 1;
    uint64_t nnz = a->indptr[a->rows];
    return nnz == b->indptr[b->rows] && !memcmp(a->indptr, b->indptr, (a->rows + 1) * sizeof *a->indptr) &&
           !memcmp(a->indices, b->indices, nnz * sizeof *a->indices) && !memcmp(a->data, b->data, nnz * sizeof *a->data);
}

static int ds_equal(const xmci_dataset *a, const xmci_dataset *b)
{
    if (a->n != b->n || a->num_labels != b->num_labels || a->unlabeled_docs != b->unlabeled_docs) return 0;
    if (!csr_equal(&a->X, &b->X) || !csr_equal(&a->Y, &b->Y)) return 0;
    if ((!a->texts) != (!b->texts) || (!a->label_names) != (!b->label_names)) return 0;
    for (uint32_t i = 0; a->texts && i < a->n; i++)
        if (a->lens[i] != b->lens[i] || strcmp(a->texts[i], b->texts[i])) return 0;
    for (uint32_t l = 0; a->label_names && l < a->num_labels; l++)
        if (strcmp(a->label_names[l], b->label_names[l])) return 0;
    return 1;
}

static xmc_err read_data(int kind, xmci_dataset *ds, xmc_error *err)
{
    xmci_dataset_xc_opts xo;
    xmci_dataset_xc_opts_default(&xo);
    switch (kind) {
    case 0: return xmci_dataset_read_tsv(tsv_path, NULL, ds, err);
    case 1: return xmci_dataset_read_xc(xc_path, &xo, ds, err);
    default: return xmci_dataset_read_smat(smat_x, smat_y, ds, err);
    }
}

static af_outcome op_read_data(void *vctx, char *msg, size_t size)
{
    data_ctx *c = vctx;
    xmci_dataset ds, zero;
    memset(&ds, 0x5a, sizeof ds);
    memset(&zero, 0, sizeof zero);
    xmc_error err = {0};
    af_on();
    xmc_err rc = read_data(c->kind, &ds, &err);
    af_off();
    if (rc) {
        /* dataset.h: a failed read leaves the dataset zeroed */
        if (memcmp(&ds, &zero, sizeof ds)) { snprintf(msg, size, "failed (%s), dataset not zeroed", err.msg); return AF_WRONG; }
        return lib_error(rc, &err, msg, size);
    }
    int same = ds_equal(&ds, &c->want);
    xmci_dataset_free(&ds);
    if (!same) { snprintf(msg, size, "read a different dataset"); return AF_WRONG; }
    return AF_OK;
}

static void test_data_readers(void)
{
    static const char *names[] = {"read TSV dataset", "read XC dataset", "read smat X/Y pair"};
    for (int kind = 0; kind < 3; kind++) {
        data_ctx c = {.kind = kind};
        xmc_error err = {0};
        CU_ASSERT_EQUAL_FATAL(read_data(kind, &c.want, &err), XMC_OK);
        af_result r;
        af_sweep(names[kind], op_read_data, &c, &r);
        CU_ASSERT_EQUAL(r.bad, 0);
        CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
        xmci_dataset_free(&c.want);
    }
}

/* gate.txt of a version (xmc retrain's verdict), with a note longer than any line buffer's first size: a
 * failed read or allocation is IO or NOMEM, never "no passed= line" or a gate with fields left zero (getline
 * fails without the stream's error flag when it cannot grow the line; that was taken for the end) */
static char gate_repo[4300];

static af_outcome op_gate_read(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    xmc_gate_result g;
    xmc_error err = {0};
    af_on();
    xmc_err rc = xmc_repo_gate_read(gate_repo, "v1", &g, &err);
    af_off();
    if (rc) return lib_error(rc, &err, msg, size);
    if (!g.passed || g.held_out != 12345 || g.margin != 0.5) {
        snprintf(msg, size, "read passed=%d held_out=%llu margin=%g", g.passed, (unsigned long long)g.held_out, g.margin);
        return AF_WRONG;
    }
    return AF_OK;
}

static void test_gate_read(void)
{
    snprintf(gate_repo, sizeof gate_repo, "%s/gate-repo", work);
    char path[4400];
    snprintf(path, sizeof path, "%s/v1", gate_repo);
    CU_ASSERT_FATAL(mkdir(gate_repo, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/v1/gate.txt", gate_repo);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "passed=1\nnote=");
    for (int i = 0; i < 3000; i++) fputs("a long note ", f);
    fprintf(f, "\nmargin=0.5\nheld_out=12345\n");
    CU_ASSERT_FATAL(fclose(f) == 0);
    af_result r;
    af_sweep("read gate.txt", op_gate_read, NULL, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

/* ==== the stage plugin ==================================================================================== */

#define NREC 6
static uint8_t *recs[NREC];
static size_t rec_lens[NREC];
static xmc_stage_in rec_in[NREC];
static char out_v1[4096], out_v2[4096]; /* the unharmed outputs of the batch on v1 and on v2 */

static uint8_t *pack_product(const char *id, const char *title, const char *brand, size_t *len)
{
    Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
    p.id = (char *)id;
    p.title = (char *)title;
    p.brand = (char *)brand;
    *len = xmc__v1__product__get_packed_size(&p);
    uint8_t *buf = malloc(*len + 1);
    xmc__v1__product__pack(&p, buf);
    return buf;
}

static void make_records(void)
{
    if (recs[0]) return;
    recs[0] = pack_product("p0", "w3a w3b", "pro", &rec_lens[0]);
    recs[1] = pack_product("p1", "w5a w5c large", "", &rec_lens[1]);
    recs[2] = (uint8_t *)strdup("\xff\xff\xff garbage"); /* DECODE */
    rec_lens[2] = strlen((char *)recs[2]);
    recs[3] = pack_product("p3", "", "", &rec_lens[3]); /* empty text: classified from no features */
    recs[4] = pack_product("p4", "w9b blue small", "w9a", &rec_lens[4]);
    recs[5] = pack_product("p5", "w12a w12b w12c", "set", &rec_lens[5]);
    for (int i = 0; i < NREC; i++) {
        memset(&rec_in[i], 0, sizeof rec_in[i]);
        rec_in[i].value = recs[i];
        rec_in[i].value_len = rec_lens[i];
        rec_in[i].topic = "products";
        rec_in[i].offset = i;
        rec_in[i].timestamp_ms = -1;
    }
}

static void free_records(void)
{
    for (int i = 0; i < NREC; i++) {
        free(recs[i]);
        recs[i] = NULL;
    }
}

/* The outputs as text: "R id version label:name:score ..." or "E CODE", per slot (the timestamp left out). */
static int render_outs(const xmc_stage_out *o, size_t n, char *out, size_t size)
{
    size_t k = 0;
    int errors = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k < size; i++) {
        if (o[i].kind == XMC_STAGE_OUT_ERROR) {
            k += (size_t)snprintf(out + k, size - k, "E %s%s|", o[i].code, o[i].message[0] ? "" : " (no message)");
            errors++;
        } else if (o[i].kind != XMC_STAGE_OUT_RECORD) {
            k += (size_t)snprintf(out + k, size - k, "NONE|");
        } else {
            Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, o[i].value_len, o[i].value);
            if (!lp) { k += (size_t)snprintf(out + k, size - k, "UNDECODABLE|"); continue; }
            k += (size_t)snprintf(out + k, size - k, "R %s %s/%s", lp->product_id, lp->model_version, o[i].model_version);
            for (size_t h = 0; h < lp->n_labels && k < size; h++)
                k += (size_t)snprintf(out + k, size - k, " %u:%s:%.9g", lp->labels[h]->id, lp->labels[h]->name,
                                      (double)lp->labels[h]->score);
            if (k < size) k += (size_t)snprintf(out + k, size - k, "|");
            xmc__v1__labeled_product__free_unpacked(lp, NULL);
        }
    }
    return errors;
}

static int run_batch(xmc_stage_instance *inst, char *out, size_t size)
{
    xmc_stage_out o[NREC];
    memset(o, 0, sizeof o);
    int rc = xmc_stage_plugin.process(inst, rec_in, NREC, o);
    if (rc) snprintf(out, size, "process() = %d", rc);
    else render_outs(o, NREC, out, size);
    return rc;
}

/* Creates an instance serving the repository (v1); armed: with the fault armed around create(). */
static xmc_stage_instance *plugin_create(config_t *cfg, int armed, char *err, size_t errlen)
{
    char text[4600];
    snprintf(text, sizeof text, "plugin = { model_repo = \"%s\"; topk = 3; };", repo);
    config_init(cfg);
    if (config_read_string(cfg, text) != CONFIG_TRUE) {
        snprintf(err, errlen, "config: %s", config_error_text(cfg));
        return NULL;
    }
    if (armed) af_on();
    xmc_stage_instance *inst = xmc_stage_plugin.create(config_lookup(cfg, "plugin"), err, errlen);
    if (armed) af_off();
    return inst;
}

/* The plugin's error text as an error outcome; the library's code, when the text names one, goes to the
 * sweep's check that it names the failure. */
static af_outcome plugin_error(const char *err, char *msg, size_t size)
{
    snprintf(msg, size, "%s", err);
    const char *name = strstr(err, "XMC_ERR_");
    for (int c = 0; name && c < XMC_ERR__COUNT; c++) {
        size_t len = strlen(xmc_err_name((xmc_err)c));
        if (!strncmp(name, xmc_err_name((xmc_err)c), len) && name[len] == ':') af.code = c;
    }
    return AF_ERROR;
}

static af_outcome op_plugin_create(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    config_t cfg;
    char err[512] = "", got[4096];
    xmc_stage_instance *inst = plugin_create(&cfg, 1, err, sizeof err);
    config_destroy(&cfg);
    if (!inst) return plugin_error(err, msg, size);
    run_batch(inst, got, sizeof got);
    xmc_stage_plugin.destroy(inst);
    if (strcmp(got, out_v1)) { snprintf(msg, size, "outputs %.300s, unharmed %.300s", got, out_v1); return AF_WRONG; }
    return AF_OK;
}

/* process() of the batch: on a fresh instance, or (swapped) on one that served v1 and then loaded v2, so that
 * process() rebuilds its workspace. -1 and error slots are errors; every record slot must be the unharmed one,
 * and the next unharmed process() must give the unharmed outputs (the instance is not left broken). */
typedef struct {
    int swapped;
} process_ctx;

static af_outcome op_plugin_process(void *vctx, char *msg, size_t size)
{
    process_ctx *c = vctx;
    config_t cfg;
    char err[512] = "", got[4096];
    xmc_stage_instance *inst = plugin_create(&cfg, 0, err, sizeof err);
    if (!inst) { snprintf(msg, size, "create: %s", err); config_destroy(&cfg); return AF_WRONG; }
    const char *want = c->swapped ? out_v2 : out_v1;
    if (c->swapped && (run_batch(inst, got, sizeof got) || xmc_stage_plugin.load(inst, v2_dir, err, sizeof err) != 0)) {
        snprintf(msg, size, "unharmed setup failed: %s", err);
        xmc_stage_plugin.destroy(inst);
        config_destroy(&cfg);
        return AF_WRONG;
    }
    xmc_stage_out o[NREC];
    memset(o, 0, sizeof o);
    af_on();
    int rc = xmc_stage_plugin.process(inst, rec_in, NREC, o);
    af_off();
    af_outcome res = AF_OK;
    int errors = 0;
    if (rc != 0) {
        snprintf(msg, size, "process() = %d (the instance cannot go on)", rc);
        res = AF_ERROR;
    } else {
        /* slots that the unharmed run also fails (DECODE) stay as they are; others are the same record or an
         * error with code and message */
        char want_slot[NREC][512], got_slot[NREC][512];
        for (int i = 0; i < NREC; i++) render_outs(&o[i], 1, got_slot[i], sizeof got_slot[i]);
        /* split the unharmed rendering per slot */
        const char *s = want;
        for (int i = 0; i < NREC; i++) {
            const char *bar = strchr(s, '|');
            size_t len = bar ? (size_t)(bar - s) + 1 : strlen(s);
            snprintf(want_slot[i], sizeof want_slot[i], "%.*s", (int)len, s);
            s += len;
        }
        for (int i = 0; i < NREC && res != AF_WRONG; i++) {
            if (!strcmp(got_slot[i], want_slot[i])) continue;
            if (o[i].kind == XMC_STAGE_OUT_ERROR && o[i].code[0] && o[i].message[0] && want_slot[i][0] == 'R') {
                /* docs/xmcd.md: NOMEM is the dead-letter code of an allocation failure */
                if (af.cls == AF_ALLOC && strcmp(o[i].code, "NOMEM")) {
                    snprintf(msg, size, "slot %d: an allocation failure dead-lettered as %s: %s", i, o[i].code, o[i].message);
                    res = AF_WRONG;
                    break;
                }
                errors++;
                snprintf(msg, size, "slot %d: %s: %s", i, o[i].code, o[i].message);
                continue;
            }
            snprintf(msg, size, "slot %d: %.300s, unharmed %.300s", i, got_slot[i], want_slot[i]);
            res = AF_WRONG;
        }
        if (res == AF_OK && errors) res = AF_ERROR;
    }
    if (res != AF_WRONG) {
        run_batch(inst, got, sizeof got);
        if (strcmp(got, want)) {
            snprintf(msg, size, "after the fault: outputs %.300s, unharmed %.300s", got, want);
            res = AF_WRONG;
        }
    }
    xmc_stage_plugin.destroy(inst);
    config_destroy(&cfg);
    return res;
}

/* load(v2) while v1 serves: refused -> v1 still serving with the same outputs, and v2 loads when asked again
 * unharmed; accepted -> v2 serving with v2's outputs. Never anything in between. */
static af_outcome op_plugin_swap(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    config_t cfg;
    char err[512] = "", got[4096], ver[XMC_STAGE_VERSION_MAX];
    xmc_stage_instance *inst = plugin_create(&cfg, 0, err, sizeof err);
    if (!inst) { snprintf(msg, size, "create: %s", err); config_destroy(&cfg); return AF_WRONG; }
    af_outcome res = AF_OK;
    run_batch(inst, got, sizeof got); /* v1 serving, its workspace built */
    af_on();
    int rc = xmc_stage_plugin.load(inst, v2_dir, err, sizeof err);
    af_off();
    xmc_stage_plugin.current_version(inst, ver, sizeof ver);
    run_batch(inst, got, sizeof got);
    if (rc == -1) {
        res = plugin_error(err, msg, size);
        if (strcmp(ver, "v1") || strcmp(got, out_v1)) {
            snprintf(msg, size, "refused (%s) but serving %s: %.300s", err, ver, got);
            res = AF_WRONG;
        } else if (xmc_stage_plugin.load(inst, v2_dir, err, sizeof err) != 0) {
            snprintf(msg, size, "v2 refused again unharmed: %s", err);
            res = AF_WRONG;
        } else {
            xmc_stage_plugin.current_version(inst, ver, sizeof ver);
            run_batch(inst, got, sizeof got);
        }
    } else if (rc != 0) {
        snprintf(msg, size, "load() = %d", rc);
        res = AF_WRONG;
    }
    if (res != AF_WRONG && (strcmp(ver, "v2") || strcmp(got, out_v2))) {
        snprintf(msg, size, "v2 loaded, serving %s: %.300s", ver, got);
        res = AF_WRONG;
    }
    xmc_stage_plugin.destroy(inst);
    config_destroy(&cfg);
    return res;
}

static int setup_plugin(void)
{
    if (setup_once()) return -1;
    make_records();
    config_t cfg;
    char err[512] = "";
    xmc_stage_instance *inst = plugin_create(&cfg, 0, err, sizeof err);
    int rc = -1;
    if (inst && run_batch(inst, out_v1, sizeof out_v1) == 0 && xmc_stage_plugin.load(inst, v2_dir, err, sizeof err) == 0 &&
        run_batch(inst, out_v2, sizeof out_v2) == 0)
        rc = 0;
    if (rc) fprintf(stderr, "plugin setup: %s\n", err);
    xmc_stage_plugin.destroy(inst);
    config_destroy(&cfg);
    /* the fixture itself: v1 and v2 differ, and the garbage record is dead-lettered */
    if (!rc && (!strcmp(out_v1, out_v2) || !strstr(out_v1, "E DECODE|"))) rc = -1;
    return rc;
}

static int teardown_plugin(void)
{
    free_records();
    return 0;
}

static void test_plugin_create(void)
{
    af_result r;
    af_sweep("plugin create", op_plugin_create, NULL, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

static void test_plugin_process(void)
{
    process_ctx c = {0};
    af_result r;
    af_sweep("plugin process, first batch", op_plugin_process, &c, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
    c.swapped = 1;
    af_sweep("plugin process, first after swap", op_plugin_process, &c, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
}

static void test_plugin_swap(void)
{
    af_result r;
    af_sweep("plugin load v2 while v1 serves", op_plugin_swap, NULL, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

/* ==== XR-Transformer fine-tuning: every allocation and read of a run (a sample of them), each in a fresh work
 * directory; a run that succeeds must write the unharmed run's encoder bytes ============================== */

#define XRT_NDOC 24
typedef struct xrt_ctx {
    char text[XRT_NDOC][64];
    const char *texts[XRT_NDOC];
    size_t lens[XRT_NDOC];
    xmci_csr y;
    char enc[4200];
    int runs;
    unsigned char *want;
    long want_bytes;
} xrt_ctx;

/* One run in work/xrt-N: 0 ok (the encoder's bytes in *bytes), else the library's code. */
static xmc_err xrt_run(xrt_ctx *c, int faults, xmc_error *err, unsigned char **bytes, long *n)
{
    char dir[4300], out[4400], f[4500];
    snprintf(dir, sizeof dir, "%s/xrt-%d", work, c->runs++);
    xmci_xrt_opts o;
    xmci_xrt_opts_default(&o);
    o.encoder.dir = c->enc;
    o.encoder.max_len = 12;
    o.tree.nr_splits = 2;
    o.tree.max_leaf_size = 2;
    o.work_dir = dir;
    o.batch = 8;
    o.epochs = 2;
    o.save_steps = 2;
    o.threads = 1;
    if (faults) af_on();
    xmc_err rc = xmci_xrt_finetune(c->texts, c->lens, &c->y, &o, out, sizeof out, NULL, err);
    if (faults) af_off();
    *n = -1;
    if (!rc) {
        snprintf(f, sizeof f, "%s/model.safetensors", out);
        size_t sz;
        *bytes = (unsigned char *)tu_read_file(f, &sz);
        if (*bytes) *n = (long)sz;
    }
    tu_rmrf(dir);
    return rc;
}

static af_outcome op_xrt(void *vctx, char *msg, size_t size)
{
    xrt_ctx *c = vctx;
    xmc_error err = {0};
    unsigned char *got = NULL;
    long n;
    xmc_err rc = xrt_run(c, 1, &err, &got, &n);
    if (rc) return lib_error(rc, &err, msg, size);
    int same = n == c->want_bytes && !memcmp(got, c->want, (size_t)n);
    free(got);
    if (!same) { snprintf(msg, size, "the fine-tuned encoder differs from the unharmed run's"); return AF_WRONG; }
    return AF_OK;
}

static void test_xrt_finetune(void)
{
    if (!have_encoder) return;
    xrt_ctx *c = calloc(1, sizeof *c);
    CU_ASSERT_FATAL(c != NULL);
    float dense[XRT_NDOC * 8] = {0};
    for (int i = 0; i < XRT_NDOC; i++) {
        snprintf(c->text[i], sizeof c->text[i], "w%da w%db %s", i % 8, i % 8, i % 2 ? "red" : "blue");
        c->texts[i] = c->text[i];
        c->lens[i] = strlen(c->text[i]);
        dense[i * 8 + i % 8] = 1;
    }
    snprintf(c->enc, sizeof c->enc, "%s", tu_data("bert-tiny-pecos"));
    CU_ASSERT_FATAL(tu_csr_from_dense(&c->y, XRT_NDOC, 8, dense) == 0);
    xmc_error err = {0};
    CU_ASSERT_FATAL(xrt_run(c, 0, &err, &c->want, &c->want_bytes) == XMC_OK && c->want_bytes > 0);
    af_result r;
    af_sweep("xr-transformer fine-tuning", op_xrt, c, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
    free(c->want);
    xmci_csr_free(&c->y);
    free(c);
}

/* ==== training ============================================================================================ */

/* The rankers' weights of a version, every layer's in a row (NULL when a file is missing). */
static unsigned char *layer_weights(const char *vdir, long *n)
{
    unsigned char *all = NULL;
    *n = 0;
    for (int t = 0;; t++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/xl.%d.ent_w.bin", vdir, t);
        size_t sz;
        unsigned char *b = (unsigned char *)tu_read_file(f, &sz);
        if (!b) return t > 0 ? all : NULL;
        unsigned char *grown = realloc(all, (size_t)*n + sz + 1);
        if (!grown) { free(b); free(all); return NULL; }
        all = grown;
        memcpy(all + *n, b, sz);
        *n += (long)sz;
        free(b);
    }
}

typedef struct {
    unsigned char *want;
    long want_bytes;
} train_ctx;

/* xmci_train on a small text corpus (TF-IDF, tree, every layer's rankers with the dual solver's grouped and single
 * solves, the version's files): an error, or the unharmed run's weights. */
static af_outcome op_train(void *vctx, char *msg, size_t size)
{
    train_ctx *c = vctx;
    char *dir = fresh_dir();
    if (!dir) { snprintf(msg, size, "no scratch folder"); return AF_WRONG; }
    xmc_error err = {0};
    xmc_err rc = train_text_faults(dir, "t", 0, 0, 1, &err);
    af_outcome out;
    if (rc) {
        out = lib_error(rc, &err, msg, size);
    } else {
        char vdir[4400];
        snprintf(vdir, sizeof vdir, "%s/t", dir);
        long n;
        unsigned char *got = layer_weights(vdir, &n);
        out = got && n == c->want_bytes && !memcmp(got, c->want, (size_t)n) ? AF_OK : AF_WRONG;
        if (out == AF_WRONG) snprintf(msg, size, "the trained weights differ from the unharmed run's");
        free(got);
    }
    tu_rmrf(dir);
    free(dir);
    return out;
}

static void test_train_text(void)
{
    train_ctx c = {0};
    char *dir = fresh_dir();
    CU_ASSERT_FATAL(dir != NULL);
    xmc_error err = {0};
    CU_ASSERT_FATAL(train_text_faults(dir, "t", 0, 0, 0, &err) == XMC_OK);
    char vdir[4400];
    snprintf(vdir, sizeof vdir, "%s/t", dir);
    c.want = layer_weights(vdir, &c.want_bytes);
    CU_ASSERT_FATAL(c.want != NULL && c.want_bytes > 0);
    tu_rmrf(dir);
    free(dir);
    /* every call site's first call and K, then calls spread over 1..K: some thousands of calls in all */
    af_opts opts = {.max_steps = 400};
    af_result r;
    af_sweep_opts("train (tfidf, tree, rankers, version)", op_train, &c, &r, &opts);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
    free(c.want);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("open", setup, teardown);
    TU_ADD(s, test_open_text);
    TU_ADD(s, test_open_matrix);
    TU_ADD(s, test_open_encoder);
    s = CU_add_suite("batch", setup, teardown);
    TU_ADD(s, test_classify_batch);
    TU_ADD(s, test_transform_search_batch);
    s = CU_add_suite("readers", setup, teardown);
    TU_ADD(s, test_data_readers);
    TU_ADD(s, test_gate_read);
    s = CU_add_suite("train", setup, teardown);
    TU_ADD(s, test_train_text);
    s = CU_add_suite("xrt", setup, teardown);
    TU_ADD(s, test_xrt_finetune);
    s = CU_add_suite("plugin", setup_plugin, teardown_plugin);
    TU_ADD(s, test_plugin_create);
    TU_ADD(s, test_plugin_process);
    TU_ADD(s, test_plugin_swap);
    int rc = tu_run(argc, argv);
    if (work) tu_rmrf(work);
    free(work);
    return rc;
}
