/* test_xmcd_stage.c: xmcd with the real xmc stage plugin on the embedded Kafka, driven with kcat.
 *
 * A small model is trained with `xmc train` on a generated catalog; kcat produces xmc.v1.Product records
 * (binary protobuf, keys and values split by multi-byte delimiters that cannot occur in the catalog text),
 * including poison records (not protobuf, oversized) and records that are not errors (empty text, unknown
 * fields). xmcd classifies them; kcat reads the outputs back; their labels must equal `xmc predict` on the
 * same texts, the poison records must be in the dead-letter topic with their codes, and every id is
 * accounted for. This is the kcat interop check and the end-to-end equivalence check (R6 with the real
 * decoder). */
#include "xmcd_harness.h"

#include "xmc.pb-c.h"

#define XS_REC "|~REC~|"
#define XS_KEY "|~KEY~|"

static const char *xs_xmc_bin(void)
{
    static char path[1024];
    const char *env = getenv("XMC_BIN");
    if (env && *env) return env;
    snprintf(path, sizeof path, "%s/xmc", xh_build());
    return path;
}

static int xs_sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
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

static void xs_put_record(FILE *f, int id, const void *value, size_t len, int *first)
{
    if (!*first) fputs(XS_REC, f);
    *first = 0;
    fprintf(f, "id-%06d" XS_KEY, id);
    fwrite(value, 1, len, f);
}

/* n_text product records cycle through n_sample distinct catalog texts, top k labels each. */
static void xs_run(int n_text, int k)
{
    const int n_sample = n_text < 1000 ? n_text : 1000;
    const int n = n_text + 4; /* + garbage, oversized, empty text, unknown field */
    char *dir = tu_tmpdir();
    char repo[1100], catalog[1100], sample[1100], pred[1100], recs[1100], outs[1100], conf[1100], log[1100];
    char cmd[8192];
    snprintf(repo, sizeof repo, "%s/models", dir);
    snprintf(catalog, sizeof catalog, "%s/catalog.tsv", dir);
    snprintf(sample, sizeof sample, "%s/sample.tsv", dir);
    snprintf(pred, sizeof pred, "%s/sample.pred", dir);
    snprintf(recs, sizeof recs, "%s/records.bin", dir);
    snprintf(outs, sizeof outs, "%s/outputs.bin", dir);
    snprintf(conf, sizeof conf, "%s/xmcd.conf", dir);
    snprintf(log, sizeof log, "%s/xmcd.log", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' gen --taxonomy data/demo/categories.tsv --docs 1500 --seed 11 --out '%s' 2>/dev/null && "
             "'%s' train --train '%s' --model '%s' --threshold 0.01 --version m1 >/dev/null 2>&1 && "
             "tail -n %d '%s' > '%s' && '%s' predict --model '%s' --test '%s' -k %d --format text > '%s' 2>/dev/null",
             xs_xmc_bin(), catalog, xs_xmc_bin(), catalog, repo, n_sample, catalog, sample, xs_xmc_bin(), repo, sample, k,
             pred);
    CU_ASSERT_FATAL(xs_sh(cmd) == 0);

    /* the records, as kcat will produce them */
    char **texts = calloc((size_t)n, sizeof *texts);
    FILE *fs = fopen(sample, "r"), *fr = fopen(recs, "wb");
    CU_ASSERT_FATAL(fs && fr);
    char line[8192];
    int first = 1;
    for (int id = 0; id < n_sample && fgets(line, sizeof line, fs); id++) {
        line[strcspn(line, "\r\n")] = 0;
        char *text = strchr(line, '\t');
        texts[id] = strdup(text ? text + 1 : line);
    }
    for (int id = 0; id < n_text && texts[id % n_sample]; id++) {
        Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
        char pid[32];
        snprintf(pid, sizeof pid, "id-%06d", id);
        p.id = pid;
        p.title = texts[id % n_sample];
        uint8_t buf[9000];
        size_t len = xmc__v1__product__pack(&p, buf);
        xs_put_record(fr, id, buf, len, &first);
    }
    fclose(fs);
    const int garbage = n_text, big = n_text + 1, empty = n_text + 2, unknown = n_text + 3;
    xs_put_record(fr, garbage, "\x0a\xff\xff\xff not protobuf", 17, &first);
    {
        Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
        char *desc = malloc(6000);
        memset(desc, 'd', 5999);
        desc[5999] = 0;
        p.id = "id-big";
        p.title = "big";
        p.description = desc;
        uint8_t *buf = malloc(7000);
        size_t len = xmc__v1__product__pack(&p, buf);
        xs_put_record(fr, big, buf, len, &first);
        free(buf);
        free(desc);
    }
    {
        Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
        uint8_t buf[256];
        p.id = "id-empty";
        size_t len = xmc__v1__product__pack(&p, buf);
        xs_put_record(fr, empty, buf, len, &first);
        p.id = "id-unknown";
        p.title = "usb cable";
        len = xmc__v1__product__pack(&p, buf);
        buf[len++] = 0x98; /* unknown field 99 = 7 */
        buf[len++] = 0x06;
        buf[len++] = 7;
        xs_put_record(fr, unknown, buf, len, &first);
    }
    fclose(fr);

    xh_mock mock;
    CU_ASSERT_FATAL(xh_mock_start(&mock, 3, 1) == 0);
    char text[4096], so[1100];
    snprintf(so, sizeof so, "%s/xmc_stage.so", xh_build());
    char *so_abs = realpath(so, NULL);
    CU_ASSERT_FATAL(so_abs != NULL);
    snprintf(text, sizeof text,
             "brokers = \"%s\";\ngroup_id = \"xmcd-stage\";\n"
             "topics = { in = \"" XH_TOPIC_IN "\"; out = \"" XH_TOPIC_OUT "\"; dlq = \"" XH_TOPIC_DLQ "\"; };\n"
             "batch = { max_records = 64; max_wait_ms = 5; };\n"
             "plugin = { path = \"%s\"; config = { model_repo = \"%s\"; topk = %d; max_record_bytes = 4000; }; };\n"
             "stats = { interval_ms = 1000; };\n"
             "kafka_consumer = [ \"session.timeout.ms=6000\", \"heartbeat.interval.ms=500\" ];\n",
             mock.bootstraps, so_abs, repo, k);
    free(so_abs);
    tu_write_file(conf, text);
    pid_t pid = xh_spawn(conf, log);
    CU_ASSERT_FATAL(xh_wait_log(log, "event=assigned", 1, 30) == 0);
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -P -t " XH_TOPIC_IN " -D '" XS_REC "' -K '" XS_KEY "' < '%s'",
             mock.bootstraps, recs);
    CU_ASSERT_FATAL(xs_sh(cmd) == 0);
    xh_seen *seen = calloc((size_t)n, sizeof *seen);
    CU_ASSERT_EQUAL(xh_wait_accounted(mock.bootstraps, n, seen, 60 + n / 1000), n);
    CU_ASSERT_EQUAL(seen[garbage].dlq, 1);
    CU_ASSERT_STRING_EQUAL(seen[garbage].code, "DECODE");
    CU_ASSERT_EQUAL(seen[big].dlq, 1);
    CU_ASSERT_STRING_EQUAL(seen[big].code, "TOO_LARGE");
    CU_ASSERT(seen[garbage].has_all_headers && seen[big].has_all_headers);
    CU_ASSERT_EQUAL(seen[empty].out, 1);
    CU_ASSERT_EQUAL(seen[unknown].out, 1);

    /* kcat reads the outputs; their labels equal xmc predict's */
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -C -t " XH_TOPIC_OUT " -e -q -f '%%k" XS_KEY "%%s" XS_REC "' > '%s'",
             mock.bootstraps, outs);
    CU_ASSERT_FATAL(xs_sh(cmd) == 0);
    size_t olen = 0;
    char *obuf = xs_slurp(outs, &olen);
    CU_ASSERT_FATAL(obuf != NULL);
    char **mine = calloc((size_t)n, sizeof *mine);
    int outputs = 0, wrong_version = 0;
    for (char *p = obuf; p < obuf + olen;) {
        char *end = memmem(p, (size_t)(obuf + olen - p), XS_REC, strlen(XS_REC));
        if (!end) break;
        char *kd = memmem(p, (size_t)(end - p), XS_KEY, strlen(XS_KEY));
        if (kd) {
            int id = atoi(p + 3);
            char *v = kd + strlen(XS_KEY);
            Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, (size_t)(end - v), (uint8_t *)v);
            if (lp && id >= 0 && id < n) {
                char s[8192] = "";
                size_t o = 0;
                for (size_t l = 0; l < lp->n_labels; l++)
                    o += (size_t)snprintf(s + o, sizeof s - o, l ? "\t%s:%.6g" : "%s:%.6g", lp->labels[l]->name,
                                          (double)lp->labels[l]->score);
                free(mine[id]);
                mine[id] = strdup(s);
                wrong_version += strcmp(lp->model_version, "m1") != 0;
                outputs++;
            }
            if (lp) xmc__v1__labeled_product__free_unpacked(lp, NULL);
        }
        p = end + strlen(XS_REC);
    }
    char **want = calloc((size_t)n_sample, sizeof *want);
    FILE *fp = fopen(pred, "r");
    for (int row = 0; fp && row < n_sample && fgets(line, sizeof line, fp); row++) {
        line[strcspn(line, "\r\n")] = 0;
        want[row] = strdup(line);
    }
    if (fp) fclose(fp);
    int same = 0;
    for (int id = 0; id < n_text; id++) {
        const char *w = want[id % n_sample];
        if (mine[id] && w && !strcmp(mine[id], w))
            same++;
        else if (id - same < 3)
            fprintf(stderr, "id %d: xmcd %s | predict %s\n", id, mine[id] ? mine[id] : "(none)", w ? w : "(none)");
    }
    for (int row = 0; row < n_sample; row++) free(want[row]);
    free(want);
    fprintf(stderr, "kcat -> xmcd(xmc_stage) -> kcat: %d outputs, labels equal to xmc predict for %d/%d\n", outputs,
            same, n_text);
    CU_ASSERT_EQUAL(outputs, n_text + 2);
    CU_ASSERT_EQUAL(same, n_text);
    CU_ASSERT_EQUAL(wrong_version, 0);
    kill(pid, SIGTERM);
    CU_ASSERT_EQUAL(xh_wait_exit(pid, 15), 0);
    if (same != n_text) {
        snprintf(cmd, sizeof cmd, "grep -v event=stats '%s' | tail -20 >&2", log);
        xs_sh(cmd);
    }
    xh_mock_stop(&mock);
    for (int i = 0; i < n; i++) {
        free(texts[i]);
        free(mine[i]);
    }
    free(texts);
    free(mine);
    free(seen);
    free(obuf);
    if (!getenv("XMC_KEEP_TMP")) tu_rmrf(dir);
    free(dir);
}

static void test_kcat_in_xmc_stage_out_labels_equal_predict(void) { xs_run(300, 5); }

/* The 100,000-record run, top 1: the embedded Kafka keeps only 5 MiB per partition, so the outputs of
 * 100,000 records (3.8 MB per partition at top 1) must stay small enough to be read back whole. */
static void test_100k_records_all_accounted_labels_equal_predict(void) { xs_run(100000, 1); }

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("xmcd_stage", NULL, NULL);
    TU_ADD(s, test_kcat_in_xmc_stage_out_labels_equal_predict);
    TU_ADD(s, test_100k_records_all_accounted_labels_equal_predict);
    return tu_run(argc, argv);
}
