/* test_xmc_stage.c: the xmc stage plugin (plugin/xmc_stage.c) loaded as xmcd loads it, on a small trained model.
 *
 * Suite setup generates a catalog with `xmc gen` from the shipped taxonomy and trains a model with `xmc train`
 * ($XMC_BIN). The tests call the plugin through its exported xmc_stage_api: per-record errors (DECODE,
 * TOO_LARGE) and the cases that are not errors (empty text, unknown fields); labels equal to
 * `xmc predict --format text` on the same texts; bad model versions refused with the old one serving (R13);
 * model swaps while batches run, each batch on one version (R12, in process). */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "testutil.h"
#include "xmc.pb-c.h"
#include "xmc/stage.h"

static char *xs_dir;
static char xs_repo[1024], xs_version[256], xs_catalog[1024];
static const xmc_stage_api *xs_api;
static void *xs_dl;

static const char *xs_build(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static const char *xs_xmc_bin(void)
{
    static char path[1024];
    const char *env = getenv("XMC_BIN");
    if (env && *env) return env;
    snprintf(path, sizeof path, "%s/xmc", xs_build());
    return path;
}

static int xs_run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static int xs_setup(void)
{
    char cmd[4096], so[1024];
    xs_dir = tu_tmpdir();
    if (!xs_dir) return 1;
    snprintf(xs_repo, sizeof xs_repo, "%s/models", xs_dir);
    snprintf(xs_catalog, sizeof xs_catalog, "%s/catalog.tsv", xs_dir);
    snprintf(cmd, sizeof cmd, "'%s' gen --taxonomy data/demo/categories.tsv --docs 1500 --seed 7 --out '%s' 2>/dev/null",
             xs_xmc_bin(), xs_catalog);
    if (xs_run(cmd)) return 1;
    snprintf(cmd, sizeof cmd, "'%s' train --train '%s' --model '%s' --threshold 0.01 --version v1 >/dev/null 2>&1",
             xs_xmc_bin(), xs_catalog, xs_repo);
    if (xs_run(cmd)) return 1;
    snprintf(xs_version, sizeof xs_version, "v1");
    snprintf(so, sizeof so, "%s/xmc_stage.so", xs_build());
    xs_dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!xs_dl) {
        fprintf(stderr, "dlopen %s: %s\n", so, dlerror());
        return 1;
    }
    xs_api = dlsym(xs_dl, XMC_STAGE_SYMBOL);
    return !xs_api || xs_api->abi_version != XMC_STAGE_ABI_VERSION;
}

static int xs_teardown(void)
{
    if (xs_dl) dlclose(xs_dl);
    if (xs_dir && !getenv("XMC_KEEP_TMP")) tu_rmrf(xs_dir);
    free(xs_dir);
    return 0;
}

/* Creates an instance from a config text for the plugin group. */
static xmc_stage_instance *xs_create(const char *extra, config_t *cfg)
{
    char text[4096], err[512] = "";
    snprintf(text, sizeof text, "plugin = { model_repo = \"%s\"; %s };", xs_repo, extra ? extra : "");
    config_init(cfg);
    if (config_read_string(cfg, text) != CONFIG_TRUE) return NULL;
    xmc_stage_instance *inst = xs_api->create(config_lookup(cfg, "plugin"), err, sizeof err);
    if (!inst) fprintf(stderr, "create: %s\n", err);
    return inst;
}

/* Packs a Product; returns a malloc'd buffer. */
static uint8_t *xs_pack(const char *id, const char *title, const char *desc, const char *brand, size_t *len)
{
    Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
    p.id = (char *)id;
    p.title = (char *)title;
    p.description = (char *)desc;
    p.brand = (char *)brand;
    *len = xmc__v1__product__get_packed_size(&p);
    uint8_t *buf = malloc(*len + 16);
    xmc__v1__product__pack(&p, buf);
    return buf;
}

static void xs_in(xmc_stage_in *in, const void *value, size_t len, int64_t offset)
{
    memset(in, 0, sizeof *in);
    in->value = value;
    in->value_len = len;
    in->topic = "products";
    in->offset = offset;
    in->timestamp_ms = -1;
}

static void test_records_errors_and_non_errors(void)
{
    config_t cfg;
    xmc_stage_instance *inst = xs_create("max_record_bytes = 2000; topk = 5;", &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    enum { N = 7 };
    size_t len[N];
    uint8_t *buf[N];
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    buf[0] = xs_pack("p0", "usb charging cable for phones", "", "", &len[0]);
    buf[1] = (uint8_t *)strdup("\xff\xff\xff\xff garbage");
    len[1] = strlen((char *)buf[1]);
    buf[2] = malloc(1);
    len[2] = 0;
    buf[3] = xs_pack("p3", "title", big, "", &len[3]);
    buf[4] = xs_pack("", "no id here", "", "", &len[4]);
    buf[5] = xs_pack("p5", "", "", "", &len[5]); /* empty text */
    {
        size_t l;
        uint8_t *b = xs_pack("p6", "dog food", "", "", &l);
        b[l] = 0x98; /* unknown field 99 (tag varint 792 = 0x98 0x06), wire type varint, value 7 */
        b[l + 1] = 0x06;
        b[l + 2] = 7;
        buf[6] = b;
        len[6] = l + 3;
    }
    xmc_stage_in in[N];
    xmc_stage_out out[N];
    for (int i = 0; i < N; i++) xs_in(&in[i], buf[i], len[i], i);
    memset(out, 0, sizeof out);
    CU_ASSERT_EQUAL_FATAL(xs_api->process(inst, in, N, out), 0);
    const int want_kind[N] = {XMC_STAGE_OUT_RECORD, XMC_STAGE_OUT_ERROR, XMC_STAGE_OUT_ERROR, XMC_STAGE_OUT_ERROR,
                              XMC_STAGE_OUT_ERROR, XMC_STAGE_OUT_RECORD, XMC_STAGE_OUT_RECORD};
    const char *want_code[N] = {"", "DECODE", "DECODE", "TOO_LARGE", "DECODE", "", ""};
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(out[i].kind, want_kind[i]);
        CU_ASSERT_STRING_EQUAL(out[i].model_version, "v1");
        if (want_kind[i] == XMC_STAGE_OUT_ERROR) {
            CU_ASSERT_STRING_EQUAL(out[i].code, want_code[i]);
            CU_ASSERT(out[i].message[0] != 0);
            continue;
        }
        Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, out[i].value_len, out[i].value);
        CU_ASSERT_FATAL(lp != NULL);
        CU_ASSERT_STRING_EQUAL(lp->model_version, "v1");
        CU_ASSERT(lp->classified_at_ms > 1600000000000LL);
        CU_ASSERT(lp->product == NULL);
        if (i == 0 || i == 6) {
            CU_ASSERT_EQUAL(lp->n_labels, 5);
            for (size_t l = 0; l < lp->n_labels; l++) CU_ASSERT(lp->labels[l]->name[0] != 0);
            for (size_t l = 1; l < lp->n_labels; l++) CU_ASSERT(lp->labels[l - 1]->score >= lp->labels[l]->score);
        }
        CU_ASSERT_STRING_EQUAL(lp->product_id, i == 0 ? "p0" : i == 5 ? "p5" : "p6");
        xmc__v1__labeled_product__free_unpacked(lp, NULL);
    }
    xmc_stage_stats st;
    xs_api->stats(inst, &st);
    CU_ASSERT_EQUAL(st.records, N);
    CU_ASSERT_EQUAL(st.errors, 4);
    CU_ASSERT_EQUAL(st.loads, 1);
    for (int i = 0; i < N; i++) free(buf[i]);
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

/* The plugin's labels for each catalog text equal `xmc predict` on the same texts. */
static void test_labels_equal_xmc_predict(void)
{
    const int n = 300, k = 5;
    char sample[1100], pred[1100], cmd[4096];
    snprintf(sample, sizeof sample, "%s/sample.tsv", xs_dir);
    snprintf(pred, sizeof pred, "%s/sample.pred", xs_dir);
    snprintf(cmd, sizeof cmd, "tail -n %d '%s' > '%s'", n, xs_catalog, sample);
    CU_ASSERT_FATAL(xs_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s' predict --model '%s' --test '%s' -k %d --format text > '%s' 2>/dev/null",
             xs_xmc_bin(), xs_repo, sample, k, pred);
    CU_ASSERT_FATAL(xs_run(cmd) == 0);
    config_t cfg;
    xmc_stage_instance *inst = xs_create("topk = 5; fields = [\"title\", \"description\", \"brand\"];", &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    FILE *fs = fopen(sample, "r"), *fp = fopen(pred, "r");
    CU_ASSERT_FATAL(fs && fp);
    char line[8192], pline[8192];
    int rows = 0, same = 0, empty_pred = 0;
    while (fgets(line, sizeof line, fs)) {
        line[strcspn(line, "\r\n")] = 0;
        char *text = strchr(line, '\t');
        text = text ? text + 1 : line;
        if (!fgets(pline, sizeof pline, fp)) break;
        pline[strcspn(pline, "\r\n")] = 0;
        char id[32];
        snprintf(id, sizeof id, "s%d", rows);
        size_t len;
        uint8_t *buf = xs_pack(id, text, "", "", &len);
        xmc_stage_in in;
        xmc_stage_out out;
        xs_in(&in, buf, len, rows);
        memset(&out, 0, sizeof out);
        CU_ASSERT_EQUAL(xs_api->process(inst, &in, 1, &out), 0);
        CU_ASSERT_EQUAL(out.kind, XMC_STAGE_OUT_RECORD);
        char mine[8192] = "";
        size_t o = 0;
        Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, out.value_len, out.value);
        for (size_t l = 0; lp && l < lp->n_labels; l++)
            o += (size_t)snprintf(mine + o, sizeof mine - o, l ? "\t%s:%.6g" : "%s:%.6g", lp->labels[l]->name,
                                  (double)lp->labels[l]->score);
        if (lp) xmc__v1__labeled_product__free_unpacked(lp, NULL);
        if (!strcmp(mine, pline))
            same++;
        else if (rows - same < 3)
            fprintf(stderr, "row %d differs:\n  plugin  %s\n  predict %s\n", rows, mine, pline);
        empty_pred += pline[0] == 0;
        free(buf);
        rows++;
    }
    fclose(fs);
    fclose(fp);
    fprintf(stderr, "labels equal to xmc predict: %d/%d rows\n", same, rows);
    CU_ASSERT_EQUAL(rows, n);
    CU_ASSERT_EQUAL(same, rows);
    CU_ASSERT(empty_pred < rows);
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

/* ---- a tfidf+encoder model: the micro-batch embedded together ------------------------------------------ */

/* The labels and scores of one output, or "ERROR <code>". */
static void xs_describe(const xmc_stage_out *out, char *buf, size_t size, float *scores, size_t *n_scores)
{
    *n_scores = 0;
    if (out->kind != XMC_STAGE_OUT_RECORD) { snprintf(buf, size, "ERROR %s", out->code); return; }
    Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, out->value_len, out->value);
    size_t o = (size_t)snprintf(buf, size, "%s:", lp ? lp->product_id : "?");
    for (size_t l = 0; lp && l < lp->n_labels && l < 8; l++) {
        o += (size_t)snprintf(buf + o, size - o, " %u", (unsigned)lp->labels[l]->id);
        scores[(*n_scores)++] = lp->labels[l]->score;
    }
    if (lp) xmc__v1__labeled_product__free_unpacked(lp, NULL);
}

/* 70 records in one process() (mixed lengths, two bad records among them) give what each gives alone. */
static void test_encoder_micro_batch_equals_one_by_one(void)
{
    enum { N = 70 };
    char repo[1100], cmd[8192], sample[1100];
    snprintf(repo, sizeof repo, "%s/enc-models", xs_dir);
    snprintf(sample, sizeof sample, "%s/enc-train.tsv", xs_dir);
    /* tu_data reuses one buffer: copies */
    char enc[1024], vocab[1024];
    snprintf(enc, sizeof enc, "%s", tu_data("bert-random-h16"));
    snprintf(vocab, sizeof vocab, "%s", tu_data("bert-vocab/vocab.txt"));
    snprintf(cmd, sizeof cmd, "head -n 400 '%s' > '%s' && '%s' train --quiet --train '%s' --model '%s' --featurizer tfidf+encoder "
             "--encoder '%s' --vocab '%s' --pooling mean --max-length 32 >/dev/null",
             xs_catalog, sample, xs_xmc_bin(), sample, repo, enc, vocab);
    CU_ASSERT_FATAL(xs_run(cmd) == 0);
    char text[4200], err[512] = "";
    snprintf(text, sizeof text, "plugin = { model_repo = \"%s\"; topk = 5; };", repo);
    config_t cfg;
    config_init(&cfg);
    CU_ASSERT_FATAL(config_read_string(&cfg, text) == CONFIG_TRUE);
    xmc_stage_instance *inst = xs_api->create(config_lookup(&cfg, "plugin"), err, sizeof err);
    if (!inst) fprintf(stderr, "create: %s\n", err);
    CU_ASSERT_FATAL(inst != NULL);
    FILE *f = fopen(xs_catalog, "r");
    CU_ASSERT_FATAL(f != NULL);
    static uint8_t *bufs[N];
    static xmc_stage_in in[N];
    static xmc_stage_out out[N], alone;
    char line[8192];
    for (int i = 0; i < N; i++) {
        CU_ASSERT_FATAL(fgets(line, sizeof line, f) != NULL);
        line[strcspn(line, "\r\n")] = 0;
        char *t = strchr(line, '\t');
        t = t ? t + 1 : line;
        if (i % 3 == 1 && strlen(t) > 12) t[12] = 0; /* short titles beside long texts cut at 32 tokens */
        char id[32];
        snprintf(id, sizeof id, "e%d", i);
        size_t len;
        bufs[i] = xs_pack(i == 20 ? "" : id, t, i % 2 ? t : "", "", &len); /* record 20: no id */
        xs_in(&in[i], bufs[i], i == 41 ? 0 : len, i);                    /* record 41: empty */
    }
    fclose(f);
    /* each alone first: process() reuses its output buffers */
    static char want[N][256];
    static float want_s[N][8];
    size_t want_n[N], got_n;
    for (int i = 0; i < N; i++) {
        memset(&alone, 0, sizeof alone);
        CU_ASSERT_EQUAL(xs_api->process(inst, &in[i], 1, &alone), 0);
        xs_describe(&alone, want[i], sizeof want[i], want_s[i], &want_n[i]);
    }
    memset(out, 0, sizeof out);
    CU_ASSERT_EQUAL(xs_api->process(inst, in, N, out), 0);
    int same = 0;
    double maxdiff = 0;
    for (int i = 0; i < N; i++) {
        char got[256];
        float got_s[8];
        xs_describe(&out[i], got, sizeof got, got_s, &got_n);
        if (!strcmp(got, want[i]) && got_n == want_n[i]) same++;
        else fprintf(stderr, "record %d: batch %s, alone %s\n", i, got, want[i]);
        for (size_t k = 0; k < got_n && k < want_n[i]; k++)
            if (fabs((double)got_s[k] - want_s[i][k]) > maxdiff) maxdiff = fabs((double)got_s[k] - want_s[i][k]);
    }
    fprintf(stderr, "encoder micro-batch of %d vs one by one: %d equal, max |score difference| %.3g\n", N, same, maxdiff);
    CU_ASSERT_EQUAL(same, N);
    CU_ASSERT(maxdiff <= 1e-5);
    CU_ASSERT_STRING_EQUAL(want[20], "ERROR DECODE");
    CU_ASSERT_STRING_EQUAL(want[41], "ERROR DECODE");
    for (int i = 0; i < N; i++) free(bufs[i]);
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

/* ---- R13: bad model versions ---------------------------------------------------------------------------- */

static void xs_copy_version(const char *name)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s' && cp -r '%s/%s' '%s/%s'", xs_repo, name, xs_repo, xs_version, xs_repo,
             name);
    CU_ASSERT_FATAL(xs_run(cmd) == 0);
}

static char *xs_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* Recomputes the manifest's own checksum line (model.c: the last line is the xxh64 of the bytes before it), as
 * a writer that produced a wrong but well-formed version would have. */
static void xs_reseal(const char *mpath)
{
    size_t mlen;
    char *man = xs_slurp(mpath, &mlen);
    CU_ASSERT_FATAL(man != NULL);
    char *last = strstr(man, "manifest_xxh64 = \"");
    size_t keep = last ? (size_t)(last - man) : mlen;
    FILE *f = fopen(mpath, "w");
    fwrite(man, 1, keep, f);
    fprintf(f, "manifest_xxh64 = \"%016llx\";\n", (unsigned long long)XXH64(man, keep, 0));
    fclose(f);
    free(man);
}

/* Rewrites the manifest entry of file (bytes and xxh64) to match its current content, so that a deliberate
 * damage inside it gets past the checksum and reaches the check under test. */
static void xs_fix_manifest(const char *version, const char *file)
{
    char path[2048], mpath[2048];
    size_t len, mlen;
    snprintf(path, sizeof path, "%s/%s/%s", xs_repo, version, file);
    snprintf(mpath, sizeof mpath, "%s/%s/manifest.cfg", xs_repo, version);
    char *data = xs_slurp(path, &len);
    char *man = xs_slurp(mpath, &mlen);
    CU_ASSERT_FATAL(data && man);
    char needle[512];
    snprintf(needle, sizeof needle, "file = \"%s\";", file);
    char *at = strstr(man, needle);
    CU_ASSERT_FATAL(at != NULL);
    char *bytes = strstr(at, "bytes = "), *hash = strstr(at, "xxh64 = \"");
    CU_ASSERT_FATAL(bytes && hash);
    char *bytes_end = strchr(bytes, ';');
    FILE *f = fopen(mpath, "w");
    fwrite(man, 1, (size_t)(bytes - man), f);
    fprintf(f, "bytes = %zuL", len);
    fwrite(bytes_end, 1, (size_t)(hash - bytes_end), f);
    fprintf(f, "xxh64 = \"%016llx\"", (unsigned long long)XXH64(data, len, 0));
    fputs(strchr(hash + 9, '"') + 1, f);
    fclose(f);
    free(data);
    free(man);
    xs_reseal(mpath);
}

static void xs_patch(const char *version, const char *file, long offset, const void *bytes, size_t n, long truncate_to)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/%s", xs_repo, version, file);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    if (bytes) {
        fseek(f, offset, SEEK_SET);
        fwrite(bytes, 1, n, f);
    }
    fclose(f);
    if (truncate_to >= 0) CU_ASSERT(truncate(path, truncate_to) == 0);
}

static void xs_set_manifest_key(const char *version, const char *from, const char *to)
{
    char mpath[2048];
    size_t mlen;
    snprintf(mpath, sizeof mpath, "%s/%s/manifest.cfg", xs_repo, version);
    char *man = xs_slurp(mpath, &mlen);
    char *at = man ? strstr(man, from) : NULL;
    CU_ASSERT_FATAL(at != NULL);
    FILE *f = fopen(mpath, "w");
    fwrite(man, 1, (size_t)(at - man), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(man);
    xs_reseal(mpath);
}

static void xs_expect_refused(xmc_stage_instance *inst, const char *version, const char *code)
{
    char dir[2048], err[512] = "", cur[256];
    snprintf(dir, sizeof dir, "%s/%s", xs_repo, version);
    int rc = xs_api->load(inst, dir, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    if (code && !strstr(err, code)) {
        fprintf(stderr, "%s: refused with \"%s\", expected %s\n", version, err, code);
        CU_FAIL("refusal reason");
    }
    xs_api->current_version(inst, cur, sizeof cur);
    CU_ASSERT_STRING_EQUAL(cur, "v1");
    /* and the old model still serves */
    size_t len;
    uint8_t *buf = xs_pack("x", "usb cable", "", "", &len);
    xmc_stage_in in;
    xmc_stage_out out;
    xs_in(&in, buf, len, 0);
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(xs_api->process(inst, &in, 1, &out), 0);
    CU_ASSERT_EQUAL(out.kind, XMC_STAGE_OUT_RECORD);
    CU_ASSERT_STRING_EQUAL(out.model_version, "v1");
    free(buf);
}

static void test_R13_bad_versions_refused_old_serves(void)
{
    config_t cfg;
    xmc_stage_instance *inst = xs_create("topk = 3;", &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    /* truncated file */
    xs_copy_version("bad-truncated");
    xs_patch("bad-truncated", "xl.1.ent_w.bin", 0, NULL, 0, 1000);
    xs_expect_refused(inst, "bad-truncated", NULL);
    /* bad magic (checksum made to match, so the magic check itself refuses it) */
    xs_copy_version("bad-magic");
    xs_patch("bad-magic", "tfidf.idf.bin", 0, "JUNK", 4, -1);
    xs_fix_manifest("bad-magic", "tfidf.idf.bin");
    xs_expect_refused(inst, "bad-magic", "XMC_ERR_CORRUPT");
    /* wrong format version */
    xs_copy_version("bad-format");
    xs_set_manifest_key("bad-format", "format_version = 1;", "format_version = 99;");
    xs_expect_refused(inst, "bad-format", "XMC_ERR_VERSION");
    /* label count mismatch: one label frequency fewer than the tree has labels */
    {
        char path[2048];
        size_t len;
        xs_copy_version("bad-labels");
        snprintf(path, sizeof path, "%s/bad-labels/labels.freq.bin", xs_repo);
        char *data = xs_slurp(path, &len);
        CU_ASSERT_FATAL(data && len > 68);
        uint64_t shape0, bytes;
        memcpy(&shape0, data + 24, 8);
        memcpy(&bytes, data + 56, 8);
        shape0 -= 1;
        bytes -= 4;
        free(data);
        xs_patch("bad-labels", "labels.freq.bin", 24, &shape0, 8, -1);
        xs_patch("bad-labels", "labels.freq.bin", 56, &bytes, 8, (long)len - 4);
        xs_fix_manifest("bad-labels", "labels.freq.bin");
        xs_expect_refused(inst, "bad-labels", "XMC_ERR_SHAPE");
    }
    /* failing canaries: the first canary's expected label changed */
    {
        char path[2048];
        size_t len;
        xs_copy_version("bad-canary");
        snprintf(path, sizeof path, "%s/bad-canary/canary.label.bin", xs_repo);
        char *data = xs_slurp(path, &len);
        CU_ASSERT_FATAL(data && len >= 68);
        uint32_t label;
        memcpy(&label, data + 64, 4);
        label = label == 0 ? 1 : label - 1;
        free(data);
        xs_patch("bad-canary", "canary.label.bin", 64, &label, 4, -1);
        xs_fix_manifest("bad-canary", "canary.label.bin");
        xs_expect_refused(inst, "bad-canary", "XMC_ERR_CANARY");
    }
    /* a model of feature vectors (trained on an XC file): records carry text, so it would dead-letter them all */
    {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "'%s' train --xc '%s' --model '%s' --version bad-matrix --no-current --quiet "
                 ">/dev/null 2>&1", xs_xmc_bin(), tu_data("yeast-sample/yeast_train.txt"), xs_repo);
        CU_ASSERT_EQUAL_FATAL(xs_run(cmd), 0);
        xs_expect_refused(inst, "bad-matrix", "feature vectors cannot classify text");
    }
    xmc_stage_stats st;
    xs_api->stats(inst, &st);
    CU_ASSERT_EQUAL(st.refusals, 6);
    /* a later good version is still taken */
    xs_copy_version("v2");
    char dir[2048], err[512] = "", cur[256];
    snprintf(dir, sizeof dir, "%s/v2", xs_repo);
    CU_ASSERT_EQUAL(xs_api->load(inst, dir, err, sizeof err), 0);
    CU_ASSERT_EQUAL(xs_api->load(inst, dir, err, sizeof err), 1); /* already serving */
    xs_api->current_version(inst, cur, sizeof cur);
    CU_ASSERT_STRING_EQUAL(cur, "v2");
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

/* ---- R14: a model directory copied in slowly ------------------------------------------------------------ */

/* The version is copied file by file under its final name (the wrong way: not into a temporary name and
 * renamed, as xmc train does). Pointed at half-way, after each file, it is refused with the reason and the old
 * version keeps serving; once every file is there it is taken. */
static void test_R14_slow_copy_never_half_loaded(void)
{
    config_t cfg;
    xmc_stage_instance *inst = xs_create("topk = 3;", &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    char src[2048], dst[2048], cmd[8192];
    snprintf(src, sizeof src, "%s/%s", xs_repo, xs_version);
    snprintf(dst, sizeof dst, "%s/slow", xs_repo);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s' && ls '%s' > '%s.files'", dst, dst, src, dst);
    CU_ASSERT_FATAL(xs_run(cmd) == 0);
    char list[2100];
    snprintf(list, sizeof list, "%s.files", dst);
    FILE *f = fopen(list, "r");
    CU_ASSERT_FATAL(f != NULL);
    char name[256];
    int copied = 0, refused = 0, total = 0;
    char files[64][256];
    while (total < 64 && fgets(name, sizeof name, f)) {
        name[strcspn(name, "\n")] = 0;
        snprintf(files[total++], sizeof files[0], "%s", name);
    }
    fclose(f);
    /* manifest last would be the careful order; copy it first, the worst case */
    for (int i = 0; i < total; i++)
        if (strcmp(files[i], "manifest.cfg") == 0 && i) {
            char t[256];
            memcpy(t, files[0], sizeof t);
            memcpy(files[0], files[i], sizeof t);
            memcpy(files[i], t, sizeof t);
        }
    for (int i = 0; i < total; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s/%s'", src, files[i], dst, files[i]);
        CU_ASSERT_FATAL(xs_run(cmd) == 0);
        copied++;
        if (copied < total) {
            xs_expect_refused(inst, "slow", NULL);
            refused++;
        }
    }
    CU_ASSERT_EQUAL(refused, total - 1);
    char err[512] = "", cur[256];
    CU_ASSERT_EQUAL(xs_api->load(inst, dst, err, sizeof err), 0);
    xs_api->current_version(inst, cur, sizeof cur);
    CU_ASSERT_STRING_EQUAL(cur, "slow"); /* versions are named by their directory in the repository */
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

/* ---- R12 (in process): swaps while batches run ---------------------------------------------------------- */

typedef struct xs_swapper {
    xmc_stage_instance *inst;
    atomic_int stop;
    int swaps, failures;
} xs_swapper;

static void *xs_swap_main(void *arg)
{
    xs_swapper *s = arg;
    char dir[2][2048], err[512];
    snprintf(dir[0], sizeof dir[0], "%s/v2", xs_repo);
    snprintf(dir[1], sizeof dir[1], "%s/v1", xs_repo);
    for (int i = 0; i < 20 && !atomic_load(&s->stop); i++) {
        if (xs_api->load(s->inst, dir[i % 2], err, sizeof err) == 0)
            s->swaps++;
        else
            s->failures++;
        usleep(20000);
    }
    return NULL;
}

static void test_R12_swaps_under_load_one_version_per_batch(void)
{
    config_t cfg;
    xmc_stage_instance *inst = xs_create("topk = 3;", &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    xs_copy_version("v2");
    enum { B = 32 };
    uint8_t *buf[B];
    size_t len[B];
    xmc_stage_in in[B];
    xmc_stage_out out[B];
    for (int i = 0; i < B; i++) {
        char id[16], title[64];
        snprintf(id, sizeof id, "r%d", i);
        snprintf(title, sizeof title, "wireless mouse %d black", i);
        buf[i] = xs_pack(id, title, "ergonomic", "acme", &len[i]);
        xs_in(&in[i], buf[i], len[i], i);
    }
    xs_swapper s = {.inst = inst};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, xs_swap_main, &s) == 0);
    int batches = 0, mixed = 0, failed = 0, seen_v1 = 0, seen_v2 = 0;
    /* until the 20 swaps are done, bounded by time and not by rounds: under valgrind 100,000 batches went by in 16 */
    const time_t give_up = time(NULL) + 600;
    while (s.swaps + s.failures < 20 && time(NULL) < give_up) {
        memset(out, 0, sizeof out);
        if (xs_api->process(inst, in, B, out) != 0) failed++;
        for (int i = 0; i < B; i++) {
            if (out[i].kind != XMC_STAGE_OUT_RECORD) failed++;
            if (strcmp(out[i].model_version, out[0].model_version)) mixed++;
        }
        Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, out[B - 1].value_len, out[B - 1].value);
        if (!lp || strcmp(lp->model_version, out[0].model_version)) mixed++;
        if (lp) xmc__v1__labeled_product__free_unpacked(lp, NULL);
        seen_v1 += !strcmp(out[0].model_version, "v1");
        seen_v2 += !strcmp(out[0].model_version, "v2");
        batches++;
    }
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "R12: %d batches, %d swaps, v1 batches %d, v2 batches %d\n", batches, s.swaps, seen_v1, seen_v2);
    CU_ASSERT_EQUAL(s.swaps, 20);
    CU_ASSERT_EQUAL(s.failures, 0);
    CU_ASSERT_EQUAL(mixed, 0);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(seen_v1 > 0 && seen_v2 > 0);
    for (int i = 0; i < B; i++) free(buf[i]);
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

static void test_create_refuses_bad_config(void)
{
    char err[512] = "";
    config_t cfg;
    config_init(&cfg);
    CU_ASSERT_FATAL(config_read_string(&cfg, "plugin = { fields = [\"title\"]; };") == CONFIG_TRUE);
    CU_ASSERT(xs_api->create(config_lookup(&cfg, "plugin"), err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, "model_repo") != NULL);
    config_destroy(&cfg);
    CU_ASSERT(xs_create("fields = [\"colour\"];", &cfg) == NULL);
    config_destroy(&cfg);
    config_init(&cfg);
    CU_ASSERT_FATAL(config_read_string(&cfg, "plugin = { model_repo = \"/nonexistent/repo\"; };") == CONFIG_TRUE);
    CU_ASSERT(xs_api->create(config_lookup(&cfg, "plugin"), err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, "no model to serve") != NULL);
    config_destroy(&cfg);
}

/* ABI 3: check_config() reads the group as create() does, opening nothing: a repository that does not exist
 * passes (create() is where the model is opened), a key of the wrong type or range is refused with its line. */
static void test_check_config(void)
{
    static const struct { const char *group; const char *expect; } cases[] = {
        {"model_repo = \"/nonexistent/repo\";", NULL},
        {"model_repo = \"/r\"; fields = [\"title\", \"attributes\"]; topk = 0; beam = 1024; max_record_bytes = 1;"
         " include_product = true; some_future_key = 1;", NULL},
        {"fields = [\"title\"];", "model_repo (the model repository) is required"},
        {"model_repo = 5;", "model_repo must be a non-empty string (line 1)"},
        {"model_repo = \"\";", "model_repo must be a non-empty string"},
        {"model_repo = \"/r\"; topk = \"5\";", "topk must be an integer (line 1)"},
        {"model_repo = \"/r\"; topk = -1;", "topk = -1 is out of range 0..1024"},
        {"model_repo = \"/r\"; beam = 1025;", "beam = 1025 is out of range 0..1024"},
        {"model_repo = \"/r\"; max_record_bytes = 0;", "max_record_bytes = 0 is out of range"},
        {"model_repo = \"/r\"; max_record_bytes = 1.5;", "max_record_bytes must be an integer"},
        {"model_repo = \"/r\"; include_product = 1;", "include_product must be true or false"},
        {"model_repo = \"/r\"; fields = [\"colour\"];", "unknown field \"colour\""},
        {"model_repo = \"/r\"; fields = [];", "fields must be an array of 1..8 field names"},
    };
    CU_ASSERT_PTR_NOT_NULL_FATAL(xs_api->check_config);
    char err[512];
    CU_ASSERT_EQUAL(xs_api->check_config(NULL, err, sizeof err), -1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        config_t cfg;
        config_init(&cfg);
        snprintf(text, sizeof text, "plugin = { %s };", cases[i].group);
        CU_ASSERT_FATAL(config_read_string(&cfg, text) == CONFIG_TRUE);
        err[0] = 0;
        int rc = xs_api->check_config(config_lookup(&cfg, "plugin"), err, sizeof err);
        if (!cases[i].expect) {
            CU_ASSERT_EQUAL(rc, 0);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT(strstr(err, cases[i].expect) != NULL);
            if (!strstr(err, cases[i].expect)) fprintf(stderr, "case %zu: %s\n", i, err);
            /* create() refuses the same group for the same reason */
            char cerr[512] = "";
            CU_ASSERT(xs_api->create(config_lookup(&cfg, "plugin"), cerr, sizeof cerr) == NULL);
            CU_ASSERT_STRING_EQUAL(cerr, err);
        }
        config_destroy(&cfg);
    }
}

/* ABI 2: the plugin names the repository it serves from, the one xmcd's reload thread then watches. */
static void test_model_repo_named_to_xmcd(void)
{
    config_t cfg;
    xmc_stage_instance *inst = xs_create(NULL, &cfg);
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xs_api->model_repo);
    char repo[1024] = "unset";
    CU_ASSERT_EQUAL(xs_api->model_repo(inst, repo, sizeof repo), 0);
    CU_ASSERT_STRING_EQUAL(repo, xs_repo);
    char tiny[4];
    CU_ASSERT_EQUAL(xs_api->model_repo(inst, tiny, sizeof tiny), 0); /* cut, still terminated */
    CU_ASSERT_EQUAL(strlen(tiny), 3);
    xs_api->destroy(inst);
    config_destroy(&cfg);
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("xmc_stage", xs_setup, xs_teardown);
    TU_ADD(s, test_records_errors_and_non_errors);
    TU_ADD(s, test_labels_equal_xmc_predict);
    TU_ADD(s, test_check_config);
    TU_ADD(s, test_encoder_micro_batch_equals_one_by_one);
    TU_ADD(s, test_create_refuses_bad_config);
    TU_ADD(s, test_model_repo_named_to_xmcd);
    TU_ADD(s, test_R13_bad_versions_refused_old_serves);
    TU_ADD(s, test_R12_swaps_under_load_one_version_per_batch);
    TU_ADD(s, test_R14_slow_copy_never_half_loaded);
    return tu_run(argc, argv);
}
