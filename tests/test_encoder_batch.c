/* test_encoder_batch.c: a tfidf+encoder model classifies a batch with one encoder forward per 32 texts, and gives
 * what it gives one text at a time (texts of mixed lengths padded together, across batch boundaries, serial and
 * threaded); scores within 1e-5, labels identical, the largest difference printed. Also: a version in the format
 * before encoders were copied in (an outside encoder directory and its checksums) still opens and classifies the
 * same, and is refused when that outside encoder changes. */
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/embedder.h"
#include "xmc/train.h"
#include "xmc/xmc.h"

#define NTEXT 75 /* 32 + 32 + 11: full and partial encoder batches */
#define TOPK 5

static char *dir, *version_dir, *texts[NTEXT], *enc_dir, *enc_vocab, *tsv; /* tu_data's buffer is reused: copies */
static size_t lens[NTEXT];
static xmc_classifier *clf;

static int setup(void)
{
    dir = tu_tmpdir();
    char repo[4200];
    snprintf(repo, sizeof repo, "%s/repo", dir);
    xmc_train_config cfg;
    xmc_train_config_default(&cfg);
    cfg.featurizer = XMC_FEATURIZER_BOTH;
    enc_dir = strdup(tu_data("bert-random-h16"));
    enc_vocab = strdup(tu_data("bert-vocab/vocab.txt"));
    tsv = strdup(tu_data("reuters-sample/train.tsv"));
    cfg.encoder_dir = enc_dir;
    cfg.encoder_vocab = enc_vocab;
    cfg.pooling = XMC_POOLING_MEAN;
    cfg.max_len = 48; /* long Reuters texts are cut, short ones padded beside them */
    cfg.topk = TOPK;
    xmc_error err = {0};
    xmc_data *data;
    xmc_data_source src = {.tsv = tsv};
    if (xmc_data_read(&src, NULL, &data, &err)) { fprintf(stderr, "read: %s\n", err.msg); return -1; }
    char version[128];
    xmc_train_report rep;
    xmc_err rc = xmc_train_data(&cfg, data, repo, version, sizeof version, &rep, &err);
    xmc_data_free(data);
    if (rc) { fprintf(stderr, "train: %s\n", err.msg); return -1; }
    if (xmc_classifier_open(repo, NULL, &clf, &err)) { fprintf(stderr, "open: %s\n", err.msg); return -1; }
    version_dir = strdup(xmc_classifier_path(clf));
    /* the test documents' texts, cut to lengths from 0 bytes to whole, so the batches mix lengths */
    FILE *f = fopen(tu_data("reuters-sample/test.tsv"), "r");
    if (!f) return -1;
    char line[65536];
    for (int i = 0; i < NTEXT; i++) {
        if (!fgets(line, sizeof line, f)) { fclose(f); return -1; }
        char *t = strchr(line, '\t');
        t = t ? t + 1 : line;
        t[strcspn(t, "\n")] = 0;
        size_t cut = i % 5 == 0 ? 0 : i % 5 == 1 ? 7 : i % 5 == 2 ? 60 : strlen(t);
        if (cut > strlen(t)) cut = strlen(t);
        texts[i] = strndup(t, cut);
        lens[i] = cut;
    }
    fclose(f);
    return 0;
}

static int teardown(void)
{
    for (int i = 0; i < NTEXT; i++) free(texts[i]);
    xmc_classifier_close(clf);
    tu_rmrf(dir);
    free(dir);
    free(enc_dir);
    free(enc_vocab);
    free(tsv);
    free(version_dir);
    return 0;
}

/* Each text alone (one encoder forward each), the reference for the batch paths. */
static void one_at_a_time(xmc_hit *hits, uint32_t *counts)
{
    xmc_workspace *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    for (int i = 0; i < NTEXT; i++)
        CU_ASSERT_EQUAL(xmc_classify_text(clf, ws, texts[i], lens[i], NULL, hits + i * TOPK, &counts[i], &err), XMC_OK);
    xmc_workspace_free(ws);
}

static void expect_same(const char *what, const xmc_hit *want, const uint32_t *want_n, const xmc_hit *got,
                        const uint32_t *got_n)
{
    double maxdiff = 0;
    int labels_differ = 0;
    for (int i = 0; i < NTEXT; i++) {
        CU_ASSERT_EQUAL(got_n[i], want_n[i]);
        for (uint32_t k = 0; k < want_n[i] && k < got_n[i]; k++) {
            if (got[i * TOPK + k].label != want[i * TOPK + k].label) labels_differ++;
            double d = fabs((double)got[i * TOPK + k].score - want[i * TOPK + k].score);
            if (d > maxdiff) maxdiff = d;
        }
    }
    printf("\n  %s vs one at a time: %d labels differ, max |score difference| %.3g (tolerance 1e-5)\n", what,
           labels_differ, maxdiff);
    CU_ASSERT_EQUAL(labels_differ, 0);
    CU_ASSERT(maxdiff <= 1e-5);
}

static void test_batch_equals_single(void)
{
    xmc_hit want[NTEXT * TOPK], got[NTEXT * TOPK];
    uint32_t want_n[NTEXT], got_n[NTEXT];
    one_at_a_time(want, want_n);
    xmc_workspace *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    /* lengths given, then NUL-terminated texts (lens NULL), then twice through the same workspace */
    for (int pass = 0; pass < 3; pass++) {
        memset(got, 0, sizeof got);
        memset(got_n, 0xff, sizeof got_n);
        CU_ASSERT_EQUAL_FATAL(xmc_classify_batch(clf, ws, (const char *const *)texts, pass == 1 ? NULL : lens, NTEXT, NULL,
                                                 got, TOPK, got_n, &err), XMC_OK);
        expect_same(pass == 1 ? "batch (NUL-terminated)" : "batch", want, want_n, got, got_n);
    }
    xmc_workspace_free(ws);
}

static void test_parallel_equals_single(void)
{
    xmc_hit want[NTEXT * TOPK], got[NTEXT * TOPK];
    uint32_t want_n[NTEXT], got_n[NTEXT];
    one_at_a_time(want, want_n);
    xmc_workspace *ws[2];
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws[0], &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws[1], &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_classify_parallel(clf, ws, 2, (const char *const *)texts, lens, NTEXT, NULL, got, TOPK,
                                                got_n, &err), XMC_OK);
    expect_same("2 threads", want, want_n, got, got_n);
    xmc_workspace_free(ws[0]);
    xmc_workspace_free(ws[1]);
}

static void test_batch_errors(void)
{
    xmc_workspace *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &ws, &err), XMC_OK);
    xmc_hit hits[3 * TOPK];
    uint32_t counts[3];
    const char *bad[3] = {"grain", NULL, "oil"};
    size_t bad_lens[3] = {5, 4, 3};
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, bad, bad_lens, 3, NULL, hits, TOPK, counts, &err), XMC_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NULL argument (text 1)"));
    bad_lens[1] = 0; /* NULL with length 0: the empty text, as xmc_classify_text takes it */
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, bad, bad_lens, 3, NULL, hits, TOPK, counts, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, bad, bad_lens, 3, NULL, hits, 1, counts, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, bad, bad_lens, 0, NULL, hits, TOPK, counts, &err), XMC_OK);
    /* a bad text inside an encoder block of 32: the rows before it are filled (as xmc.h says), the error names
     * its row in the whole input; on two threads too, past the first 256-row chunk a thread takes */
    {
        enum { M = 300 };
        static xmc_hit h[M * TOPK];
        static uint32_t c[M];
        const char *t[M];
        size_t l[M];
        for (int i = 0; i < M; i++) {
            t[i] = texts[i % NTEXT];
            l[i] = strlen(t[i]);
        }
        t[40] = NULL; /* the second block, 8 rows in */
        l[40] = 4;
        memset(c, 0xff, sizeof c);
        CU_ASSERT_EQUAL(xmc_classify_batch(clf, ws, t, l, 60, NULL, h, TOPK, c, &err), XMC_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "text 40"));
        int filled = 0;
        for (int i = 0; i < 40; i++) filled += c[i] != UINT32_MAX;
        CU_ASSERT_EQUAL(filled, 40);
        CU_ASSERT_EQUAL(c[40], UINT32_MAX);
        t[40] = texts[40];
        l[40] = strlen(texts[40]);
        t[270] = NULL; /* in the second chunk, 14 rows in */
        l[270] = 4;
        xmc_workspace *two[2] = {ws, NULL};
        CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(clf, &two[1], &err), XMC_OK);
        xmc_error_clear(&err);
        CU_ASSERT_EQUAL(xmc_classify_parallel(clf, two, 2, t, l, M, NULL, h, TOPK, c, &err), XMC_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "text 270"));
        xmc_workspace_free(two[1]);
    }
    xmc_workspace_free(ws);
}

/* xmc_embedder_embed: n and max_len within what the workspace was made for, else XMC_ERR_ARG (it grew before) */
static void test_embedder_limits(void)
{
    xmc_embedder *emb;
    xmc_embedder_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmc_embedder_open(enc_dir, enc_vocab, &emb, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmc_embedder_ws_new(emb, 4, 16, &ws, &err), XMC_OK);
    xmc_embedder_info info;
    xmc_embedder_get_info(emb, &info);
    float *out = calloc((size_t)8 * info.hidden, sizeof *out);
    const char *t[8] = {"grain", "oil", "wheat", "corn", "gold", "ship", "trade", "money"};
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, t, NULL, 4, 16, XMC_POOLING_MEAN, 1, out, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, t, NULL, 8, 16, XMC_POOLING_MEAN, 1, out, &err), XMC_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "made for up to 4"));
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, t, NULL, 2, 64, XMC_POOLING_MEAN, 1, out, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, t, NULL, -1, 16, XMC_POOLING_MEAN, 1, out, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, NULL, NULL, 2, 16, XMC_POOLING_MEAN, 1, out, &err), XMC_ERR_ARG);
    /* no texts: nothing to do, not an error (the tokenizer refused an empty batch) */
    CU_ASSERT_EQUAL(xmc_embedder_embed(emb, ws, NULL, NULL, 0, 16, XMC_POOLING_MEAN, 1, NULL, &err), XMC_OK);
    xmc_embedder_ws *none_ws = ws;
    CU_ASSERT_EQUAL(xmc_embedder_ws_new(NULL, 4, 16, &none_ws, &err), XMC_ERR_ARG);
    CU_ASSERT(none_ws == NULL);
    xmc_embedder *none = emb;
    CU_ASSERT_EQUAL(xmc_embedder_open(NULL, NULL, &none, &err), XMC_ERR_ARG);
    CU_ASSERT(none == NULL);
    xmc_pooling p;
    CU_ASSERT_EQUAL(xmc_pooling_parse(NULL, &p, &err), XMC_ERR_ARG);
    free(out);
    xmc_embedder_ws_free(ws);
    xmc_embedder_close(emb);
}

static int hash_file(const char *path, char hex[17])
{
    size_t len;
    char *buf = tu_read_file(path, &len);
    if (!buf) return -1;
    snprintf(hex, 17, "%016llx", (unsigned long long)XXH64(buf, len, 0));
    free(buf);
    return 0;
}

/* Rewrites the copy of a version at vdir into the format before the encoder was copied in: no plain files,
 * format_version 1, encoder.dir/vocab naming enc_dir and the checksums of its files, the manifest resealed. */
static int make_old_format(const char *vdir, const char *outside)
{
    char path[4300], weights[4300], vocab[4300], wh[17], vh[17];
    snprintf(path, sizeof path, "%s/manifest.cfg", vdir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", outside);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", outside);
    if (hash_file(weights, wh) || hash_file(vocab, vh)) return -1;
    config_t cfg;
    config_init(&cfg);
    int ok = config_read_file(&cfg, path) == CONFIG_TRUE;
    config_setting_t *files = ok ? config_lookup(&cfg, "files") : NULL, *enc = ok ? config_lookup(&cfg, "encoder") : NULL;
    ok = files && enc;
    for (int i = ok ? config_setting_length(files) - 1 : -1; i >= 0; i--) {
        int raw = 0;
        if (config_setting_lookup_bool(config_setting_get_elem(files, (unsigned)i), "raw", &raw) && raw)
            config_setting_remove_elem(files, (unsigned)i);
    }
    if (ok) {
        config_setting_set_int(config_lookup(&cfg, "format_version"), 1);
        config_setting_remove(config_root_setting(&cfg), "manifest_xxh64");
        config_setting_remove(enc, "copied_from");
        config_setting_set_string(config_setting_add(enc, "dir", CONFIG_TYPE_STRING), outside);
        config_setting_set_string(config_setting_add(enc, "vocab", CONFIG_TYPE_STRING), vocab);
        config_setting_set_string(config_setting_add(enc, "weights_xxh64", CONFIG_TYPE_STRING), wh);
        config_setting_set_string(config_setting_add(enc, "vocab_xxh64", CONFIG_TYPE_STRING), vh);
        ok = config_write_file(&cfg, path) == CONFIG_TRUE;
    }
    config_destroy(&cfg);
    if (!ok) return -1;
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text) return -1;
    FILE *f = fopen(path, "a");
    if (!f) { free(text); return -1; }
    fprintf(f, "manifest_xxh64 = \"%016llx\";\n", (unsigned long long)XXH64(text, len, 0));
    free(text);
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/encoder", vdir);
    tu_rmrf(sub);
    return fclose(f) == 0 ? 0 : -1;
}

static void test_old_format_outside_encoder(void)
{
    char old[4200], enc[4200], cmd[13000];
    snprintf(old, sizeof old, "%s/old-version", dir);
    snprintf(enc, sizeof enc, "%s/outside-encoder", dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && mkdir '%s' && cp '%s'/config.json '%s'/model.safetensors '%s' && cp '%s' '%s'/vocab.txt",
             version_dir, old, enc, enc_dir, enc_dir, enc, enc_vocab, enc);
    CU_ASSERT_FATAL(system(cmd) == 0);
    CU_ASSERT_FATAL(make_old_format(old, enc) == 0);
    xmc_classifier *oc = NULL;
    xmc_error err = {0};
    xmc_err rc = xmc_classifier_open(old, NULL, &oc, &err);
    if (rc) fprintf(stderr, "open old format: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, XMC_OK);
    xmc_hit want[NTEXT * TOPK], got[NTEXT * TOPK];
    uint32_t want_n[NTEXT], got_n[NTEXT];
    one_at_a_time(want, want_n);
    xmc_workspace *ws;
    CU_ASSERT_EQUAL_FATAL(xmc_workspace_new(oc, &ws, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_classify_batch(oc, ws, (const char *const *)texts, lens, NTEXT, NULL, got, TOPK, got_n, &err), XMC_OK);
    expect_same("old format, outside encoder", want, want_n, got, got_n);
    xmc_workspace_free(ws);
    xmc_classifier_close(oc);
    /* the outside encoder changes: refused */
    snprintf(cmd, sizeof cmd, "printf '\\001' | dd of='%s/model.safetensors' bs=1 seek=2000 conv=notrunc 2>/dev/null", enc);
    CU_ASSERT_FATAL(system(cmd) == 0);
    oc = NULL;
    CU_ASSERT_EQUAL(xmc_classifier_open(old, NULL, &oc, &err), XMC_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "changed since training"));
    CU_ASSERT_PTR_NULL(oc);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("encoder_batch", setup, teardown);
    TU_ADD(s, test_batch_equals_single);
    TU_ADD(s, test_parallel_equals_single);
    TU_ADD(s, test_batch_errors);
    TU_ADD(s, test_embedder_limits);
    TU_ADD(s, test_old_format_outside_encoder);
    return tu_run(argc, argv);
}
