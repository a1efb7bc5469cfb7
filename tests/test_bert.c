/* test_bert.c: BERT encoder against the PyTorch references (bert-random-h16, bert-tiny-pecos) and its load errors.
 *
 * Numerics (llm.c test_gpt2 style): tokenise the reference texts, run one padded batch, compare the hidden
 * states and the cls / mean / pooler vectors with the dense-text references and print the max |difference|
 * of each. Errors: damaged copies of bert-tiny-pecos in a temp dir (tensor removed, shape or dtype changed,
 * file truncated, config missing or wrong), each of which must fail with the right code and name the
 * tensor or file. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "testutil.h"
#include "wordpiece.h"

/* ---- reference files ------------------------------------------------------------------------------------ */

static int load_texts(const char *rel, char ***texts, size_t **lens)
{
    json_error_t jerr;
    json_t *root = json_load_file(tu_data(rel), JSON_ALLOW_NUL, &jerr);
    if (!root) return -1;
    json_t *cases = json_object_get(root, "cases");
    int n = (int)json_array_size(cases);
    *texts = calloc((size_t)n, sizeof **texts);
    *lens = calloc((size_t)n, sizeof **lens);
    for (int i = 0; i < n; i++) {
        json_t *t = json_object_get(json_array_get(cases, (size_t)i), "text");
        (*lens)[i] = json_string_length(t);
        (*texts)[i] = malloc((*lens)[i] + 1);
        memcpy((*texts)[i], json_string_value(t), (*lens)[i] + 1);
    }
    json_decref(root);
    return n;
}

static void free_texts(char **texts, size_t *lens, int n)
{
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

/* ---- forward against references ------------------------------------------------------------------------- */

typedef struct {
    const char *dir, *vocab, *refs;
    const char *hidden_fmt; /* printf format of the per-case hidden file, with the case index and name */
    const int *hidden_cases;
    int n_hidden;
    double tol;
} ref_set;

static const char *case_name(json_t *cases, int i)
{
    const char *s = json_string_value(json_object_get(json_array_get(cases, (size_t)i), "name"));
    return s ? s : "";
}

static void check_reference(const ref_set *rs)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    xmci_bert *bert = NULL;
    xmci_bert_workspace *ws = NULL;
    char rel[512];
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data(rs->vocab), &wp, &err), XMC_OK);
    if (xmci_bert_load(tu_data(rs->dir), &bert, &err)) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bert);
    const int H = xmci_bert_get_config(bert)->hidden;
    char **texts = NULL;
    size_t *lens = NULL;
    snprintf(rel, sizeof rel, "%s/refs.json", rs->dir);
    int n = load_texts(rel, &texts, &lens);
    CU_ASSERT_FATAL(n > 0);
    json_error_t jerr;
    json_t *root = json_load_file(tu_data(rel), JSON_ALLOW_NUL, &jerr);
    json_t *cases = json_object_get(root, "cases");
    xmci_wordpiece_batch batch = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, (const char *const *)texts, lens, n, 128, &batch, &err),
                          XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_bert_workspace_new(bert, 4, 16, &ws, &err), XMC_OK); /* grows to the batch */
    float *out = malloc((size_t)n * H * sizeof *out);
    static const char *const pool_name[3] = {"cls", "mean", "pooler"};
    static const xmci_bert_pooling pool_kind[3] = {XMCI_BERT_POOL_CLS, XMCI_BERT_POOL_MEAN, XMCI_BERT_POOL_POOLER};
    for (int simd = 1; simd >= 0; simd--) {
        int on = xmci_bert_use_simd(bert, simd);
        if (simd && !on) continue; /* no AVX2 here: the scalar pass below covers it */
        printf("\n  %s kernels\n", on ? "AVX2" : "scalar");
        CU_ASSERT_EQUAL_FATAL(xmci_bert_forward(bert, ws, batch.ids, NULL, batch.seq, batch.len, n, &err), XMC_OK);
        /* hidden states of the cases that have a reference file */
        for (int k = 0; k < rs->n_hidden; k++) {
            int c = rs->hidden_cases[k], rows, cols;
            snprintf(rel, sizeof rel, rs->hidden_fmt, rs->dir, c, case_name(cases, c));
            float *ref = tu_read_dense(tu_data(rel), &rows, &cols);
            CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
            CU_ASSERT_EQUAL(rows, batch.len[c]);
            CU_ASSERT_EQUAL(cols, H);
            double d = max_diff(xmci_bert_hidden(ws, c), ref, (size_t)rows * (size_t)H);
            printf("  %-44s max |diff| %.3g\n", rel, d);
            CU_ASSERT(d < rs->tol);
            free(ref);
        }
        for (int p = 0; p < 3; p++) {
            int rows, cols;
            snprintf(rel, sizeof rel, "%s/%s.txt", rs->dir, pool_name[p]);
            float *ref = tu_read_dense(tu_data(rel), &rows, &cols);
            CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
            CU_ASSERT_EQUAL_FATAL(rows, n);
            CU_ASSERT_EQUAL_FATAL(cols, H);
            CU_ASSERT_EQUAL_FATAL(xmci_bert_pool(bert, ws, pool_kind[p], 0, out, &err), XMC_OK);
            double d = max_diff(out, ref, (size_t)n * H);
            printf("  %-44s max |diff| %.3g (%d texts, one padded batch)\n", rel, d, n);
            CU_ASSERT(d < rs->tol);
            /* normalised: unit length and parallel to the reference */
            CU_ASSERT_EQUAL_FATAL(xmci_bert_pool(bert, ws, pool_kind[p], 1, out, &err), XMC_OK);
            double worst = 0;
            for (int r = 0; r < n; r++) {
                double ss = 0, ns = 0;
                for (int i = 0; i < H; i++) ss += (double)ref[(size_t)r * H + i] * ref[(size_t)r * H + i];
                for (int i = 0; i < H; i++) {
                    double dd = fabs(out[(size_t)r * H + i] - ref[(size_t)r * H + i] / sqrt(ss));
                    if (dd > worst) worst = dd;
                    ns += (double)out[(size_t)r * H + i] * out[(size_t)r * H + i];
                }
                CU_ASSERT_DOUBLE_EQUAL(ns, 1.0, 1e-5);
            }
            CU_ASSERT(worst < rs->tol);
            free(ref);
        }
    }
    /* xmci_bert_embed with cls and pooler pooling runs the last layer on the first tokens alone: the references
     * and the full forward's vectors all the same, with each kernel set (the scalar ones last, as the loop above
     * ends: what follows runs on them) */
    for (int k = 0; k < 4; k++) {
        const int p = k % 2 ? 2 : 0, simd = k < 2;
        if (xmci_bert_use_simd(bert, simd) != simd) continue; /* no AVX2 here */
        int rows, cols;
        snprintf(rel, sizeof rel, "%s/%s.txt", rs->dir, pool_name[p]);
        float *ref = tu_read_dense(tu_data(rel), &rows, &cols), *full = malloc((size_t)n * H * sizeof *full);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
        CU_ASSERT_EQUAL_FATAL(xmci_bert_forward(bert, ws, batch.ids, NULL, batch.seq, batch.len, n, &err), XMC_OK);
        CU_ASSERT_EQUAL_FATAL(xmci_bert_pool(bert, ws, pool_kind[p], 0, full, &err), XMC_OK);
        float second[64]; /* the second token of the first text: the full forward's last layer output ... */
        CU_ASSERT_FATAL(H <= 64 && batch.len[0] >= 2);
        memcpy(second, xmci_bert_hidden(ws, 0) + H, (size_t)H * sizeof *second);
        CU_ASSERT_EQUAL_FATAL(xmci_bert_embed(bert, ws, &batch, pool_kind[p], 0, out, &err), XMC_OK);
        /* ... which embed did not compute (the row holds the layer's input): the first-token path ran */
        CU_ASSERT(memcmp(second, xmci_bert_hidden(ws, 0) + H, (size_t)H * sizeof *second) != 0);
        double d = max_diff(out, ref, (size_t)n * H), df = max_diff(out, full, (size_t)n * H);
        printf("  %-44s max |diff| %.3g, %.3g against the full last layer (embed: the first tokens alone, %s)\n", rel,
               d, df, simd ? "AVX2" : "scalar");
        CU_ASSERT(d < rs->tol);
        CU_ASSERT(df < 1e-5);
        /* the other tokens' rows are not the last layer's: a mean over them is refused, not made up */
        CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_MEAN, 0, full, &err), XMC_ERR_ARG);
        free(ref);
        free(full);
    }
    CU_ASSERT_EQUAL_FATAL(xmci_bert_forward(bert, ws, batch.ids, NULL, batch.seq, batch.len, n, &err), XMC_OK);
    /* each text alone gives what the batch gave (padding and packing change nothing) */
    float *alone = malloc((size_t)H * sizeof *alone), *batched = malloc((size_t)n * H * sizeof *batched);
    CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_MEAN, 0, batched, &err), XMC_OK);
    double worst = 0;
    for (int r = 0; r < n; r++) {
        CU_ASSERT_EQUAL_FATAL(xmci_bert_forward(bert, ws, batch.ids + (size_t)r * batch.seq, NULL, batch.seq,
                                               batch.len + r, 1, &err), XMC_OK);
        CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_MEAN, 0, alone, &err), XMC_OK);
        double d = max_diff(alone, batched + (size_t)r * H, (size_t)H);
        if (d > worst) worst = d;
    }
    printf("  %-44s max |diff| %.3g (each text alone vs batch)\n", "mean", worst);
    CU_ASSERT(worst < 1e-5);
    free(alone);
    free(batched);
    free(out);
    json_decref(root);
    xmci_wordpiece_batch_free(&batch);
    free_texts(texts, lens, n);
    xmci_bert_workspace_free(ws);
    xmci_bert_free(bert);
    xmci_wordpiece_free(wp);
}

static void test_random_l2_forward(void)
{
    static const int hidden[] = {0, 6, 24};
    ref_set rs = {"bert-random-h16", "bert-vocab/vocab.txt", "refs.json", "%s/hidden_%02d_%s.txt", hidden, 3, 1e-4};
    check_reference(&rs);
}

static void test_tiny_pecos_forward(void)
{
    static const int hidden[] = {0, 1, 2, 3, 4, 5, 6};
    ref_set rs = {"bert-tiny-pecos", "bert-tiny-pecos/vocab.txt", "refs.json", "%s/hidden_%d.txt%.0s", hidden, 7, 1e-5};
    check_reference(&rs);
}

static void test_forward_arguments(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_bert *bert = NULL;
    xmci_bert_workspace *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_bert_load(tu_data("bert-tiny-pecos"), &bert, &err), XMC_OK);
    const xmci_bert_config *c = xmci_bert_get_config(bert);
    CU_ASSERT_EQUAL(c->hidden, 8);
    CU_ASSERT_EQUAL(c->layers, 1);
    CU_ASSERT_EQUAL(c->max_positions, 256);
    CU_ASSERT(xmci_bert_has_pooler(bert));
    CU_ASSERT_EQUAL(xmci_bert_workspace_new(bert, 1, 257, &ws, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL_FATAL(xmci_bert_workspace_new(bert, 1, 8, &ws, &err), XMC_OK);
    float out[8];
    CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_CLS, 0, out, &err), XMC_ERR_ARG); /* no forward yet */
    int32_t ids[4] = {2, 5, 15, 3};
    int len = 4;
    CU_ASSERT_EQUAL(xmci_bert_forward(bert, ws, ids, NULL, 4, &len, 1, &err), XMC_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "15"));
    ids[2] = 6;
    len = 0;
    CU_ASSERT_EQUAL(xmci_bert_forward(bert, ws, ids, NULL, 4, &len, 1, &err), XMC_ERR_RANGE);
    len = 4;
    int32_t types[4] = {0, 0, 2, 0};
    CU_ASSERT_EQUAL(xmci_bert_forward(bert, ws, ids, types, 4, &len, 1, &err), XMC_ERR_RANGE);
    CU_ASSERT_EQUAL(xmci_bert_forward(bert, ws, ids, NULL, 4, &len, 1, &err), XMC_OK);
    CU_ASSERT_PTR_NOT_NULL(xmci_bert_hidden(ws, 0));
    CU_ASSERT_PTR_NULL(xmci_bert_hidden(ws, 1));
    CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_POOLER, 0, out, &err), XMC_OK);
    xmci_bert_pooling pooling;
    CU_ASSERT_EQUAL(xmci_bert_pooling_parse("mean", &pooling, &err), XMC_OK);
    CU_ASSERT_EQUAL(pooling, XMCI_BERT_POOL_MEAN);
    CU_ASSERT_EQUAL(xmci_bert_pooling_parse("max", &pooling, &err), XMC_ERR_ARG);
    xmci_bert_workspace_free(ws);
    xmci_bert_free(bert);
}

/* ---- damaged models ------------------------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, size, f), size);
    fclose(f);
}

/* Copies bert-tiny-pecos into dir, its safetensors header passed through edit (NULL: unchanged), the file
 * then cut to keep bytes (0: whole). */
static void make_copy(const char *dir, void (*edit)(json_t *header), size_t keep)
{
    char path[1024];
    size_t size;
    char *cfg = tu_read_file(tu_data("bert-tiny-pecos/config.json"), &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, cfg, size);
    free(cfg);
    char *st = tu_read_file(tu_data("bert-tiny-pecos/model.safetensors"), &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)st[i];
    json_t *header = json_loadb(st + 8, n, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(header);
    if (edit) edit(header);
    char *h = json_dumps(header, JSON_COMPACT);
    size_t hn = strlen(h), padded = (hn + 7) / 8 * 8;
    size_t total = 8 + padded + (size - 8 - n);
    unsigned char *outb = malloc(total);
    for (int i = 0; i < 8; i++) outb[i] = (unsigned char)(padded >> (8 * i));
    memcpy(outb + 8, h, hn);
    memset(outb + 8 + hn, ' ', padded - hn);
    memcpy(outb + 8 + padded, st + 8 + n, size - 8 - n);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_bytes(path, outb, keep ? keep : total);
    free(outb);
    free(h);
    json_decref(header);
    free(st);
}

static void expect_load_error(const char *dir, xmc_err code, const char *needle)
{
    xmc_error err = {0};
    xmci_bert *bert = NULL;
    xmc_err rc = xmci_bert_load(dir, &bert, &err);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NULL(bert);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    if (rc != code || !strstr(err.msg, needle))
        fprintf(stderr, "expected %s with '%s', got %s: %s\n", xmc_err_name(code), needle, xmc_err_name(rc), err.msg);
    xmci_bert_free(bert);
}

static void drop_query(json_t *h) { json_object_del(h, "bert.encoder.layer.0.attention.self.query.weight"); }
static void drop_pooler_bias(json_t *h) { json_object_del(h, "bert.pooler.dense.bias"); }
static void drop_pooler(json_t *h)
{
    json_object_del(h, "bert.pooler.dense.bias");
    json_object_del(h, "bert.pooler.dense.weight");
}

/* intermediate.dense.bias [10] -> [9], its offsets shortened to match so that only the shape is wrong */
static void shrink_bias(json_t *h)
{
    json_t *e = json_object_get(h, "bert.encoder.layer.0.intermediate.dense.bias");
    json_array_set_new(json_object_get(e, "shape"), 0, json_integer(9));
    json_t *offs = json_object_get(e, "data_offsets");
    json_array_set_new(offs, 1, json_integer(json_integer_value(json_array_get(offs, 1)) - 4));
}

static void retype_bias(json_t *h)
{
    json_object_set_new(json_object_get(h, "bert.encoder.layer.0.output.dense.bias"), "dtype", json_string("I32"));
}

/* unprefixed names are accepted as well */
static void strip_prefix(json_t *h)
{
    json_t *copy = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) json_object_set(copy, strncmp(k, "bert.", 5) ? k : k + 5, v);
    json_object_clear(h);
    json_object_update(h, copy);
    json_decref(copy);
}

static void test_load_errors(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    char *dir = tu_tmpdir();
    char path[1024];
    xmc_error err = {0};
    xmci_bert *bert = NULL;

    make_copy(dir, drop_query, 0);
    expect_load_error(dir, XMC_ERR_NOTFOUND, "encoder.layer.0.attention.self.query.weight");
    make_copy(dir, drop_pooler_bias, 0);
    expect_load_error(dir, XMC_ERR_NOTFOUND, "pooler.dense.bias");
    make_copy(dir, shrink_bias, 0);
    expect_load_error(dir, XMC_ERR_SHAPE, "encoder.layer.0.intermediate.dense.bias' has shape [9], expected [10]");
    make_copy(dir, retype_bias, 0);
    expect_load_error(dir, XMC_ERR_VERSION, "encoder.layer.0.output.dense.bias' has dtype I32");
    make_copy(dir, NULL, 13792 - 100); /* last tensor cut short */
    expect_load_error(dir, XMC_ERR_CORRUPT, "truncated");
    make_copy(dir, NULL, 16); /* header cut short */
    expect_load_error(dir, XMC_ERR_CORRUPT, "truncated");

    /* intact copies load: prefix stripped; no pooler at all (then pooling "pooler" fails) */
    make_copy(dir, strip_prefix, 0);
    CU_ASSERT_EQUAL(xmci_bert_load(dir, &bert, &err), XMC_OK);
    xmci_bert_free(bert);
    bert = NULL;
    make_copy(dir, drop_pooler, 0);
    CU_ASSERT_EQUAL_FATAL(xmci_bert_load(dir, &bert, &err), XMC_OK);
    CU_ASSERT(!xmci_bert_has_pooler(bert));
    xmci_bert_workspace *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_bert_workspace_new(bert, 1, 4, &ws, &err), XMC_OK);
    int32_t ids[3] = {2, 5, 3};
    int len = 3;
    float out[8];
    CU_ASSERT_EQUAL(xmci_bert_forward(bert, ws, ids, NULL, 3, &len, 1, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_POOLER, 0, out, &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xmci_bert_pool(bert, ws, XMCI_BERT_POOL_CLS, 0, out, &err), XMC_OK);
    xmci_bert_workspace_free(ws);
    xmci_bert_free(bert);

    /* config: missing, unsupported activation, missing key; weights missing */
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    expect_load_error(dir, XMC_ERR_NOTFOUND, "config.json");
    tu_write_file(path, "{\"vocab_size\": 15, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 1,"
                        " \"intermediate_size\": 10, \"max_position_embeddings\": 256, \"hidden_act\": \"swish\"}");
    expect_load_error(dir, XMC_ERR_VERSION, "swish");
    tu_write_file(path, "{\"vocab_size\": 15, \"hidden_size\": 8, \"num_attention_heads\": 1,"
                        " \"intermediate_size\": 10, \"max_position_embeddings\": 256}");
    expect_load_error(dir, XMC_ERR_PARSE, "num_hidden_layers");
    tu_write_file(path, "{\"vocab_size\": 15, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 3,"
                        " \"intermediate_size\": 10, \"max_position_embeddings\": 256}");
    expect_load_error(dir, XMC_ERR_PARSE, "multiple");
    tu_write_file(path, "{\"vocab_size\": 16, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 1,"
                        " \"intermediate_size\": 10, \"max_position_embeddings\": 256}");
    expect_load_error(dir, XMC_ERR_SHAPE, "word_embeddings.weight' has shape [15,8], expected [16,8]");
    tu_write_file(path, "{not json");
    expect_load_error(dir, XMC_ERR_PARSE, "config.json:1");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    remove(path);
    make_copy(dir, NULL, 0);
    remove(path);
    expect_load_error(dir, XMC_ERR_NOTFOUND, "model.safetensors");
    tu_rmrf(dir);
    free(dir);
}

/* Every 5th header byte of bert-tiny-pecos' safetensors set to a few troublesome values: each load either
 * succeeds or fails with an error code and a message, never crashes (run it under ASan). */
static void test_header_corruption(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    size_t size;
    char *st = tu_read_file(tu_data("bert-tiny-pecos/model.safetensors"), &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    char *dir = tu_tmpdir(), path[1024];
    size_t cfg_size;
    char *cfg = tu_read_file(tu_data("bert-tiny-pecos/config.json"), &cfg_size);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, cfg, cfg_size);
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)st[i];
    static const char vals[] = {'9', '"', '}', '-', 0};
    int loaded = 0, failed = 0, unexplained = 0;
    for (size_t at = 0; at < 8 + n; at += 5) {
        char old = st[at];
        st[at] = vals[at % sizeof vals];
        write_bytes(path, st, size);
        st[at] = old;
        xmc_error err = {0};
        xmci_bert *bert = NULL;
        xmc_err rc = xmci_bert_load(dir, &bert, &err);
        if (rc == XMC_OK) loaded++, xmci_bert_free(bert);
        else failed++, unexplained += err.msg[0] == 0 || err.code != rc;
    }
    printf("\n  header corruption: %d loads ok, %d refused\n", loaded, failed);
    CU_ASSERT(failed > 0);
    CU_ASSERT_EQUAL(unexplained, 0);
    free(st);
    tu_rmrf(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("bert", NULL, NULL);
    TU_ADD(s, test_random_l2_forward);
    TU_ADD(s, test_tiny_pecos_forward);
    TU_ADD(s, test_forward_arguments);
    TU_ADD(s, test_load_errors);
    TU_ADD(s, test_header_corruption);
    return tu_run(argc, argv);
}
