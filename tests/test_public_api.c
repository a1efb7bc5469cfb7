/* test_public_api.c: libxmc through include/xmc/ alone, as the CLI and third parties use it: training from a
 * dataset with a public configuration, threaded batch classification (equal to the serial path for any
 * thread count), the model facts `inspect`/`eval` print, evaluation, the featurizer names, and the argument
 * errors each of these promises. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/train.h"
#include "xmc/xmc.h"

#define NDOC 400
#define NLAB 20

static char *dir, *repo, *tsv;
static char version[128];
static char *texts[NDOC];

/* label l's words are "w<l>a w<l>b"; every record has its label's words and shared noise */
static int setup(void)
{
    static const char *noise[] = {"new", "set", "pack", "blue", "red", "large", "small", "pro"};
    dir = tu_tmpdir();
    size_t size = 64 * NDOC + 1, used = 0;
    char *text = malloc(size), path[1100];
    for (int i = 0; i < NDOC; i++) {
        int l = (i * 7) % NLAB;
        char buf[128];
        snprintf(buf, sizeof buf, "w%da w%db %s %s", l, l, noise[i % 8], noise[(i / 8) % 8]);
        texts[i] = strdup(buf);
        used += (size_t)snprintf(text + used, size - used, "lab %d\t%s\n", l, buf);
    }
    snprintf(path, sizeof path, "%s/train.tsv", dir);
    tsv = strdup(path);
    snprintf(path, sizeof path, "%s/repo", dir);
    repo = strdup(path);
    int rc = tu_write_file(tsv, text);
    free(text);
    if (rc) return -1;
    xmc_train_config cfg;
    xmc_train_config_default(&cfg);
    cfg.tfidf = "word:1-2,min_df=1";
    cfg.max_leaf_size = 4;
    cfg.nr_splits = 2;
    cfg.threshold = 0.01f;
    cfg.topk = 5;
    xmc_error err = {0};
    xmc_data *data;
    xmc_data_source src = {.tsv = tsv};
    if (xmc_data_read(&src, NULL, &data, &err)) { fprintf(stderr, "read: %s\n", err.msg); return -1; }
    xmc_train_report rep;
    rc = xmc_train_data(&cfg, data, repo, version, sizeof version, &rep, &err);
    xmc_data_free(data);
    if (rc) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    return rep.n_docs == NDOC && rep.n_labels == NLAB ? 0 : -1;
}

static int teardown(void)
{
    for (int i = 0; i < NDOC; i++) free(texts[i]);
    tu_rmrf(dir);
    free(dir);
    free(repo);
    free(tsv);
    return 0;
}

static void test_featurizer_names(void)
{
    for (int f = XMC_FEATURIZER_MATRIX; f <= XMC_FEATURIZER_BOTH; f++)
        CU_ASSERT_EQUAL(xmc_featurizer_from_name(xmc_featurizer_name((xmc_featurizer)f)), f);
    CU_ASSERT_STRING_EQUAL(xmc_featurizer_name(XMC_FEATURIZER_BOTH), "tfidf+encoder");
    CU_ASSERT_EQUAL(xmc_featurizer_from_name("bogus"), -1);
    CU_ASSERT_EQUAL(xmc_featurizer_from_name(NULL), -1);
    CU_ASSERT_STRING_EQUAL(xmc_featurizer_name((xmc_featurizer)7), "?");
}

static void test_config_checked(void)
{
    xmc_train_config cfg;
    xmc_error err = {0};
    xmc_train_config_default(&cfg);
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg.threads, 2);
    CU_ASSERT_EQUAL(cfg.nr_splits, 16);
    cfg.tfidf = "word:9-1";
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    cfg.tfidf = NULL;
    cfg.threads = XMC_MAX_THREADS + 1;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    cfg.threads = 1;
    cfg.featurizer = XMC_FEATURIZER_MATRIX; /* text featurizers only: a matrix needs no configuration */
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    /* what the command line's ranges catch, the library catches too, before any work: NaN, the search's
     * limits, names the repository keeps for itself */
    xmc_train_config_default(&cfg);
    cfg.cp = NAN;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.threshold = -1;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.topk = XMC_MAX_K + 1;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    cfg.topk = XMC_MAX_K;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_OK);
    cfg.version = "CURRENT";
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    cfg.version = "v1";
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_OK);
    /* what a model would store unopenable is refused before any data is read (it trained, then failed to open) */
    xmc_train_config_default(&cfg);
    cfg.post = XMC_POST__COUNT;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.solver = (xmc_solver)2;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.negatives = 4;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.nr_splits = 1;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    xmc_train_config_default(&cfg);
    cfg.max_leaf_size = 0;
    CU_ASSERT_EQUAL(xmc_train_config_check(&cfg, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_train_config_check(NULL, &err), XMC_ERR_ARG);
}

/* beam and topk 0 mean the defaults (the check's own words), so such a model opens with 10 and 20 */
static void test_zero_means_default(void)
{
    xmc_train_config cfg;
    xmc_train_config_default(&cfg);
    cfg.tfidf = "word:1-2,min_df=1";
    cfg.beam = 0;
    cfg.topk = 0;
    cfg.version = "zero";
    cfg.make_current = 0;
    xmc_error err = {0};
    xmc_data *data;
    xmc_data_source src = {.tsv = tsv};
    CU_ASSERT_EQUAL_FATAL(xmc_data_read(&src, NULL, &data, &err), XMC_OK);
    char v[128], path[1200];
    xmc_train_report rep;
    CU_ASSERT_EQUAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    xmc_data_free(data);
    snprintf(path, sizeof path, "%s/zero", repo);
    xmc_classifier *clf;
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(path, NULL, &clf, &err), XMC_OK);
    xmc_model_info info;
    xmc_classifier_info(clf, &info);
    CU_ASSERT_EQUAL(info.defaults.beam, 10);
    CU_ASSERT_EQUAL(info.defaults.topk, 20);
    /* 20 labels under max_leaf_size 100: one layer, no leaf clusters (xmc.h) */
    uint32_t leaves[4];
    CU_ASSERT_EQUAL(info.depth, 1);
    CU_ASSERT_EQUAL(xmc_classifier_label_leaves(clf, 0, leaves, 4), 0);
    xmc_classifier_close(clf);
}

/* NULL where a pointer is needed is XMC_ERR_ARG (or "not found"), not a crash; two inputs at once are refused */
static void test_null_arguments(void)
{
    xmc_classifier *clf;
    xmc_workspace *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &clf, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    xmc_hit hits[8];
    uint32_t n, idx[3] = {0, 1, 2};
    float val[3] = {1, 1, 1};
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, val, 3, NULL, NULL, &n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, val, 3, NULL, hits, NULL, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, NULL, val, 3, NULL, hits, &n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, NULL, NULL, 0, NULL, hits, &n, &err), XMC_OK);
    /* a row out of order, repeated or not finite is refused with its reason, not searched */
    uint32_t unsorted[3] = {0, 2, 1}, repeated[3] = {0, 1, 1};
    float nan_val[3] = {1, NAN, 1}, inf_val[3] = {1, 1, -INFINITY};
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, unsorted, val, 3, NULL, hits, &n, &err), XMC_ERR_ARG);
    CU_ASSERT(strstr(err.msg, "not strictly ascending: 1 after 2") != NULL);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, repeated, val, 3, NULL, hits, &n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, nan_val, 3, NULL, hits, &n, &err), XMC_ERR_ARG);
    CU_ASSERT(strstr(err.msg, "feature 1 has a value that is not finite") != NULL);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, inf_val, 3, NULL, hits, &n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, val, 3, NULL, hits, &n, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_classify_batch(NULL, ws, (const char *const *)texts, NULL, 2, NULL, hits, 8, &n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, NULL, NULL, 2, NULL, hits, 8, &n, &err), XMC_ERR_ARG);
    xmc_workspace *ws2 = ws;
    CU_ASSERT_EQUAL(xmc_workspace_new(NULL, &ws2, &err), XMC_ERR_ARG);
    CU_ASSERT(ws2 == NULL); /* *out is NULL on every failure, so that a caller's cleanup frees nothing stale */
    CU_ASSERT_EQUAL(xmc_classifier_open(repo, NULL, NULL, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classifier_find_label(clf, NULL), UINT32_MAX);
    xmc_data *data = NULL;
    xmc_data_source two = {.tsv = tsv, .xc = tsv};
    CU_ASSERT_EQUAL(xmc_data_read(&two, NULL, &data, &err), XMC_ERR_ARG);
    CU_ASSERT(data == NULL);
    CU_ASSERT_EQUAL(xmc_data_read(NULL, NULL, &data, &err), XMC_ERR_ARG);
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
}

/* n_ws threads give exactly the serial batch's hits, in input order */
static void test_parallel_equals_serial(void)
{
    xmc_classifier *clf;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &clf, &err), XMC_OK);
    xmc_workspace *ws[4];
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws[i], &err), XMC_OK);
    xmc_predict_opts opts = {0, 3, -1};
    static xmc_hit want[NDOC * 3], got[NDOC * 3];
    static uint32_t want_n[NDOC], got_n[NDOC];
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws[0], (const char *const *)texts, NULL, NDOC, &opts, want, 3, want_n, &err), XMC_OK);
    for (int nt = 1; nt <= 4; nt++) {
        memset(got, 0, sizeof got);
        memset(got_n, 0, sizeof got_n);
        CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, nt, (const char *const *)texts, NULL, NDOC, &opts, got, 3, got_n, &err), XMC_OK);
        CU_ASSERT(memcmp(want_n, got_n, sizeof want_n) == 0);
        int same = 1;
        for (int i = 0; i < NDOC; i++)
            for (uint32_t j = 0; j < want_n[i]; j++)
                same &= want[i * 3 + j].label == got[i * 3 + j].label && want[i * 3 + j].score == got[i * 3 + j].score;
        CU_ASSERT(same);
    }
    /* the records' own labels come first */
    int top1 = 0;
    for (int i = 0; i < NDOC; i++) {
        char name[32];
        snprintf(name, sizeof name, "lab %d", (i * 7) % NLAB);
        top1 += want_n[i] > 0 && want[i * 3].label == xmc_classifier_find_label(clf, name);
    }
    CU_ASSERT(top1 > NDOC * 9 / 10);
    /* argument errors */
    CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, 0, (const char *const *)texts, NULL, NDOC, &opts, got, 3, got_n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, XMC_MAX_THREADS + 1, (const char *const *)texts, NULL, NDOC, &opts, got, 3, got_n, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, 2, (const char *const *)texts, NULL, NDOC, &opts, got, 2, got_n, &err), XMC_ERR_ARG);
    xmc_classifier *other;
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &other, &err), XMC_OK);
    xmc_workspace *mixed[2] = {ws[0], NULL};
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(other, &mixed[1], &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_classify_parallel(clf, mixed, 2, (const char *const *)texts, NULL, NDOC, &opts, got, 3, got_n, &err), XMC_ERR_ARG);
    CU_ASSERT(strstr(err.msg, "workspace 1") != NULL);
    xmc_workspace_free(mixed[1]);
    xmc_classifier_close(other);
    CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, 2, NULL, NULL, 0, &opts, got, 3, got_n, &err), XMC_OK);
    /* a bad text is named by its row in the whole input, not in the chunk a thread took */
    const char *bad[NDOC];
    size_t bad_lens[NDOC];
    for (int i = 0; i < NDOC; i++) {
        bad[i] = texts[i];
        bad_lens[i] = strlen(texts[i]);
    }
    bad[333] = NULL;
    for (int nt = 1; nt <= 2; nt++) {
        xmc_error_clear(&err);
        CU_ASSERT_EQUAL(xmc_classify_parallel(clf, ws, nt, bad, bad_lens, NDOC, &opts, got, 3, got_n, &err), XMC_ERR_ARG);
        CU_ASSERT(strstr(err.msg, "text 333") != NULL);
        if (!strstr(err.msg, "text 333")) fprintf(stderr, "  parallel error: %s\n", err.msg);
    }
    for (int i = 0; i < 4; i++) xmc_workspace_free(ws[i]);
    xmc_classifier_close(clf);
}

/* xmc_classify_batch (the micro-batch search) gives xmc_classify_text's hits bit for bit on random texts of
 * the model's words, unseen words and empty texts, at several beams; a NULL text stops it with the rows
 * before it filled. */
static void test_batch_equals_text(void)
{
    static const char *words[] = {"w1a", "w3b", "w7a", "w7b", "w12a", "new", "blue", "pro", "zzz", "qq", "w19b", "small"};
    enum { N = 300, K = 10 };
    xmc_classifier *clf;
    xmc_workspace *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &clf, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    static char buf[N][160];
    const char *rt[N];
    size_t lens[N];
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        size_t used = 0;
        seed = seed * 1103515245u + 12345u;
        int nw = i % 9 == 0 ? 0 : (int)(seed >> 16) % 12; /* every ninth text empty */
        for (int w = 0; w < nw; w++) {
            seed = seed * 1103515245u + 12345u;
            used += (size_t)snprintf(buf[i] + used, sizeof buf[i] - used, "%s%s", w ? " " : "", words[(seed >> 16) % 12]);
        }
        buf[i][used] = 0;
        rt[i] = buf[i];
        lens[i] = used;
    }
    static xmc_hit want[N * K], got[N * K];
    static uint32_t want_n[N], got_n[N];
    const uint32_t beams[3] = {1, 3, 20};
    int differ = 0;
    for (int bi = 0; bi < 3; bi++)
        for (int post = 0; post < XMC_POST__COUNT; post += 3) {
            xmc_predict_opts opts = {beams[bi], K, post};
            for (int i = 0; i < N; i++)
                CU_ASSERT_EQUAL(xmc_classify_text(clf, ws, rt[i], lens[i], &opts, want + i * K, &want_n[i], &err), XMC_OK);
            memset(got, 0, sizeof got);
            memset(got_n, 0xff, sizeof got_n);
            CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, rt, bi == 1 ? NULL : lens, N, &opts, got, K, got_n, &err), XMC_OK);
            for (int i = 0; i < N; i++)
                differ += want_n[i] != got_n[i] || memcmp(want + i * K, got + i * K, want_n[i] * sizeof *got) != 0;
        }
    CU_ASSERT_EQUAL(differ, 0);
    /* a NULL text with a length: the rows before it are filled, the error names it */
    const char *bad[4] = {rt[1], rt[2], NULL, rt[3]};
    size_t bad_lens[4] = {lens[1], lens[2], 5, lens[3]};
    xmc_predict_opts opts = {0, K, -1};
    memset(got_n, 0xff, sizeof got_n);
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, bad, bad_lens, 4, &opts, got, K, got_n, &err), XMC_ERR_ARG);
    CU_ASSERT(got_n[0] != UINT32_MAX && got_n[1] != UINT32_MAX && got_n[3] == UINT32_MAX);
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
}

/* A matrix model: xmc_data_classify (rows in micro-batches, on 2 threads) gives xmc_classify_features's
 * hits row by row, bit for bit, empty rows included. */
static void test_matrix_batch_equals_features(void)
{
    enum { R = 300, F = 40, L = 8, K = 5 };
    static uint32_t idx[R][F];
    static float val[R][F];
    static uint32_t nnz[R];
    size_t size = (size_t)R * F * 16 + 64, used = 0, yused = 0;
    char *xt = malloc(size), *yt = malloc((size_t)R * 8 + 64), path[1100], ypath[1100], mrepo[1100];
    used += (size_t)snprintf(xt, size, "%d %d\n", R, F);
    yused += (size_t)snprintf(yt, 64, "%d %d\n", R, L);
    uint32_t seed = 777;
    for (int r = 0; r < R; r++) {
        int l = r % L;
        for (int f = 0; f < F; f++) {
            seed = seed * 1103515245u + 12345u;
            int on = r % 13 == 0 ? 0 : (f == l || (seed >> 16) % 7 == 0); /* every 13th row empty */
            if (!on) continue;
            idx[r][nnz[r]] = (uint32_t)f;
            val[r][nnz[r]] = f == l ? 1.0f : (float)((seed >> 8) % 100) / 200.0f;
            used += (size_t)snprintf(xt + used, size - used, "%s%d:%g", nnz[r] ? " " : "", f, val[r][nnz[r]]);
            nnz[r]++;
        }
        used += (size_t)snprintf(xt + used, size - used, "\n");
        yused += (size_t)snprintf(yt + yused, 16, "%d:1\n", l);
    }
    snprintf(path, sizeof path, "%s/mx.txt", dir);
    snprintf(ypath, sizeof ypath, "%s/my.txt", dir);
    snprintf(mrepo, sizeof mrepo, "%s/mrepo", dir);
    CU_ASSERT_EQUAL_FATAL(tu_write_file(path, xt), 0);
    CU_ASSERT_EQUAL_FATAL(tu_write_file(ypath, yt), 0);
    free(xt);
    free(yt);
    xmc_error err = {0};
    xmc_data *data;
    xmc_data_source src = {.x = path, .y = ypath};
    CU_ASSERT_EQUAL_FATAL(xmc_data_read(&src, NULL, &data, &err), XMC_OK);
    xmc_train_config cfg;
    xmc_train_config_default(&cfg);
    cfg.max_leaf_size = 2;
    cfg.nr_splits = 2;
    cfg.threshold = 0.01f;
    cfg.topk = K;
    char ver[128];
    xmc_train_report rep;
    xmc_err rc = xmc_train_data(&cfg, data, mrepo, ver, sizeof ver, &rep, &err);
    if (rc) fprintf(stderr, "train: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, XMC_OK);
    xmc_classifier *clf;
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(mrepo, NULL, &clf, &err), XMC_OK);
    xmc_workspace *ws[2];
    for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws[i], &err), XMC_OK);
    static xmc_hit want[R * K], got[R * K];
    static uint32_t want_n[R], got_n[R];
    int differ = 0;
    for (int beam = 1; beam <= 4; beam += 3) {
        xmc_predict_opts opts = {(uint32_t)beam, K, -1};
        for (int r = 0; r < R; r++)
            CU_ASSERT_EQUAL(xmc_classify_features(clf, ws[0], idx[r], val[r], nnz[r], &opts, want + r * K, &want_n[r], &err), XMC_OK);
        memset(got_n, 0xff, sizeof got_n);
        CU_ASSERT_EQUAL(xmc_data_classify(clf, ws, 2, data, &opts, got, K, got_n, &err), XMC_OK);
        for (int r = 0; r < R; r++)
            differ += want_n[r] != got_n[r] || memcmp(want + r * K, got + r * K, want_n[r] * sizeof *got) != 0;
    }
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT(want_n[1] > 0);
    for (int i = 0; i < 2; i++) xmc_workspace_free(ws[i]);
    xmc_classifier_close(clf);
    xmc_data_free(data);
}

static void test_model_facts(void)
{
    xmc_classifier *clf;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &clf, &err), XMC_OK);
    xmc_model_info info;
    xmc_classifier_info(clf, &info);
    CU_ASSERT_EQUAL(info.featurizer, XMC_FEATURIZER_TFIDF);
    CU_ASSERT_EQUAL(info.nr_labels, NLAB);
    CU_ASSERT_EQUAL(info.n_train, NDOC);
    CU_ASSERT(info.depth >= 3);
    CU_ASSERT_EQUAL(info.defaults.topk, 5);
    CU_ASSERT(info.nr_features > 2 * NLAB);
    xmc_layer_info layer;
    CU_ASSERT_EQUAL(xmc_classifier_layer(clf, info.depth - 1, &layer, &err), XMC_OK);
    CU_ASSERT_EQUAL(layer.nr_nodes, NLAB);
    CU_ASSERT(layer.nnz > 0 && layer.weight_rows > 0);
    CU_ASSERT_EQUAL(xmc_classifier_layer(clf, info.depth, &layer, &err), XMC_ERR_ARG);
    uint64_t total = 0;
    for (uint32_t l = 0; l < NLAB; l++) total += xmc_classifier_label_freq(clf)[l];
    CU_ASSERT_EQUAL(total, NDOC);
    CU_ASSERT_EQUAL(xmc_classifier_find_label(clf, "lab 7"), xmc_classifier_find_label(clf, "lab 7"));
    CU_ASSERT_STRING_EQUAL(xmc_classifier_label_name(clf, xmc_classifier_find_label(clf, "lab 7")), "lab 7");
    CU_ASSERT_EQUAL(xmc_classifier_find_label(clf, "lab 99"), UINT32_MAX);
    char spec[256];
    CU_ASSERT_EQUAL(xmc_classifier_tfidf_spec(clf, spec, sizeof spec, &err), XMC_OK);
    CU_ASSERT(strstr(spec, "word:1-2") != NULL);
    /* a buffer too small for the spec is refused, not filled with a cut spec (that reads as another featurizer) */
    char small[40];
    CU_ASSERT_EQUAL(xmc_classifier_tfidf_spec(clf, small, sizeof small, &err), XMC_ERR_RANGE);
    CU_ASSERT(strstr(err.msg, "the buffer holds 40") != NULL);
    size_t len;
    const char *name = xmc_classifier_feature_name(clf, info.nr_features, &len);
    CU_ASSERT(name && len == 6 && !memcmp(name, "(bias)", 6));
    CU_ASSERT_PTR_NULL(xmc_classifier_feature_name(clf, info.nr_features + 1, &len));
    /* label 7's heaviest weights: by magnitude, and its own words among the top */
    xmc_feature_weight top[5];
    uint32_t n;
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_top_features(clf, xmc_classifier_find_label(clf, "lab 7"), top, 5, &n, &total, &err), XMC_OK);
    CU_ASSERT(n > 0 && n <= 5 && total >= n);
    int own = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i) CU_ASSERT(fabsf(top[i].weight) <= fabsf(top[i - 1].weight));
        name = xmc_classifier_feature_name(clf, top[i].feature, &len);
        own += name && len >= 3 && !memcmp(name, "w7", 2);
    }
    CU_ASSERT(own > 0);
    CU_ASSERT_EQUAL(xmc_classifier_top_features(clf, NLAB, top, 5, &n, &total, &err), XMC_ERR_ARG);
    /* feature vectors: indices past the model's features are ignored (beam search drops them) */
    xmc_workspace *ws;
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    uint32_t idx[2] = {0, info.nr_features};
    float val[2] = {1, 1};
    xmc_hit hits[5];
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, val, 1, NULL, hits, &n, &err), XMC_OK);
    xmc_hit hits2[5];
    uint32_t n2;
    CU_ASSERT_EQUAL(xmc_classify_features(clf, ws, idx, val, 2, NULL, hits2, &n2, &err), XMC_OK);
    CU_ASSERT(n2 == n && memcmp(hits, hits2, n * sizeof *hits) == 0);
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
}

static void test_data_classify_and_evaluate(void)
{
    xmc_classifier *clf;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_classifier_open(repo, NULL, &clf, &err), XMC_OK);
    xmc_data *data;
    xmc_data_source none = {0};
    CU_ASSERT_EQUAL(xmc_data_read(&none, clf, &data, &err), XMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(data);
    /* test data naming a label the model does not have: dropped and counted */
    char path[1100];
    snprintf(path, sizeof path, "%s/test.tsv", dir);
    CU_ASSERT_EQUAL_FATAL(tu_write_file(path, "lab 3,nope\tw3a w3b\nlab 5\tw5a\n"), 0);
    xmc_data_source src = {.tsv = path};
    CU_ASSERT_EQUAL_FATAL(xmc_data_read(&src, clf, &data, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_data_rows(data), 2);
    CU_ASSERT(xmc_data_has_text(data));
    uint64_t unknown;
    uint32_t unknown_docs;
    xmc_data_unknown_labels(data, &unknown, &unknown_docs);
    CU_ASSERT(unknown == 1 && unknown_docs == 1);
    xmc_workspace *ws[2];
    for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws[i], &err), XMC_OK);
    xmc_predict_opts opts = {0, 5, -1};
    xmc_hit hits[10];
    uint32_t counts[2];
    CU_ASSERT_EQUAL_FATAL(xmc_data_classify(clf, ws, 2, data, &opts, hits, 5, counts, &err), XMC_OK);
    CU_ASSERT_STRING_EQUAL(xmc_classifier_label_name(clf, hits[0].label), "lab 3");
    CU_ASSERT_STRING_EQUAL(xmc_classifier_label_name(clf, hits[5].label), "lab 5");
    xmc_eval ev;
    CU_ASSERT_EQUAL_FATAL(xmc_data_evaluate(clf, data, hits, counts, 5, 0.55, 1.5, &ev, &err), XMC_OK);
    CU_ASSERT_EQUAL(ev.kmax, 5);
    CU_ASSERT_EQUAL(ev.n, 2);
    CU_ASSERT_DOUBLE_EQUAL(ev.prec[1], 1.0, 1e-12);
    CU_ASSERT(ev.psp[1] > 0.99 && ev.ndcg[5] > 0.99);
    xmc_data_free(data);
    /* feature vectors for a text model are refused */
    snprintf(path, sizeof path, "%s/x.txt", dir);
    CU_ASSERT_EQUAL_FATAL(tu_write_file(path, "1 3\n0:1 2:0.5\n"), 0);
    xmc_data_source xs = {.x = path};
    CU_ASSERT_EQUAL_FATAL(xmc_data_read(&xs, clf, &data, &err), XMC_OK);
    CU_ASSERT_FALSE(xmc_data_has_text(data));
    CU_ASSERT_EQUAL(xmc_data_classify(clf, ws, 1, data, &opts, hits, 5, counts, &err), XMC_ERR_ARG);
    xmc_data_free(data);
    for (int i = 0; i < 2; i++) xmc_workspace_free(ws[i]);
    xmc_classifier_close(clf);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("public_api", setup, teardown);
    TU_ADD(s, test_featurizer_names);
    TU_ADD(s, test_config_checked);
    TU_ADD(s, test_zero_means_default);
    TU_ADD(s, test_null_arguments);
    TU_ADD(s, test_parallel_equals_serial);
    TU_ADD(s, test_batch_equals_text);
    TU_ADD(s, test_matrix_batch_equals_features);
    TU_ADD(s, test_model_facts);
    TU_ADD(s, test_data_classify_and_evaluate);
    return tu_run(argc, argv);
}
