/* predict.c: `xmc predict`: labels for every record of a TSV (or rows of a feature matrix), as text
 * (tab-separated label:score, best first) or as a smat text score matrix like PECOS's golden files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

enum { O_MODEL = 256, O_TEST, O_BEAM, O_POST, O_FORMAT, O_THREADS, O_NOVERIFY, O_XC, O_XCF, O_XCL };

static const cli_opt predict_opts[] = {
    {CLI_STRING, O_MODEL, "model", 0, "REPO[/VERSION]", 0, 0, "model repository or version directory (required)"},
    {CLI_STRING, O_TEST, "test", 0, "FILE.tsv", 0, 0, "records to classify (labels<TAB>text; the labels are ignored)"},
    {CLI_STRING, 'x', NULL, 'x', "X.txt", 0, 0, "feature vectors in smat text (a matrix model)"},
    {CLI_STRING, O_XC, "xc", 0, "FILE", 0, 0, "XC / multi-label libsvm file (a matrix model)"},
    {CLI_INT, 'k', "topk", 'k', "N", 1, XMC_MAX_K, "labels per record (default: the model's topk)"},
    {CLI_INT, O_BEAM, "beam", 0, "N", 1, XMC_MAX_K, "nodes kept per tree level (default: the model's beam)"},
    {CLI_STRING, O_POST, "post", 0, "NAME", 0, 0, "post-processor (default: the model's)"},
    {CLI_STRING, O_FORMAT, "format", 0, "F", 0, 0,
     "text: one line per record, tab-separated label:score, best first (default);\n"
     "matrix: smat text 'ROWS LABELS' then label-index:score per row"},
    {CLI_INT, O_THREADS, "threads", 0, "N", 1, XMC_MAX_THREADS, "threads (default 2)"},
    {CLI_FLAG, O_NOVERIFY, "no-verify", 0, NULL, 0, 0, "skip checksums and canaries when opening the model"},
    {CLI_INT, O_XCF, "xc-feature-base", 0, "B", 0, 1, "index base of an --xc file's features (0 or 1)"},
    {CLI_INT, O_XCL, "xc-label-base", 0, "B", 0, 1, "index base of an --xc file's labels (0 or 1)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command predict_cmd = {
    "predict", "--model REPO[/VERSION] (--test FILE.tsv | -x X.txt | --xc FILE) [options]",
    "  Records keep their input order.\n", predict_opts};

typedef struct {
    const char *model, *format;
    xmc_data_source src;
    uint32_t k, beam, threads;
    int post, verify;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    switch (o->id) {
    case O_MODEL: s->model = v; break;
    case O_TEST: s->src.tsv = v; break;
    case 'x': s->src.x = v; break;
    case O_XC: s->src.xc = v; break;
    case O_XCF: s->src.xc_feature_base = (uint32_t)num; break;
    case O_XCL: s->src.xc_label_base = (uint32_t)num; break;
    case 'k': s->k = (uint32_t)num; break;
    case O_BEAM: s->beam = (uint32_t)num; break;
    case O_THREADS: s->threads = (uint32_t)num; break;
    case O_POST:
        s->post = xmc_post_from_name(v);
        if (s->post < 0) { fprintf(stderr, "xmc predict: error: unknown post-processor '%s'\n", v); return 2; }
        break;
    case O_FORMAT: s->format = v; break;
    case O_NOVERIFY: s->verify = 0; break;
    }
    return 0;
}

int xmc_cli_predict(int argc, char **argv)
{
    settings s = {.format = "text", .threads = 2, .post = -1, .verify = 1};
    int first, rc = cli_parse(&predict_cmd, argc, argv, apply, &s, &first);
    if (rc) return rc == 1 ? 0 : rc;
    if (first < argc) { fprintf(stderr, "xmc predict: error: unexpected argument '%s'\n", argv[first]); return 2; }
    if (!s.model) { fprintf(stderr, "xmc predict: error: --model is required\n"); return 2; }
    if (strcmp(s.format, "text") && strcmp(s.format, "matrix")) {
        fprintf(stderr, "xmc predict: error: --format must be text or matrix\n");
        return 2;
    }
    if (!!s.src.tsv + !!s.src.x + !!s.src.xc != 1) {
        fprintf(stderr, "xmc predict: error: give exactly one input: --test FILE.tsv, -x X.txt or --xc FILE\n");
        return 2;
    }
    xmc_error err = {0};
    xmc_classifier *clf;
    xmc_open_opts oo = {s.verify, s.verify};
    if (xmc_classifier_open(s.model, &oo, &clf, &err)) { xmc_cli_report("predict", &err); return 1; }
    xmc_predict_opts d = xmc_classifier_default_opts(clf);
    xmc_predict_opts opts = {s.beam ? s.beam : d.beam, s.k ? s.k : d.topk, s.post};
    xmc_data *data;
    if (xmc_data_read(&s.src, clf, &data, &err)) {
        xmc_cli_report("predict", &err);
        xmc_classifier_close(clf);
        return 1;
    }
    xmc_hit *hits;
    uint32_t *counts;
    rc = 1;
    if (xmc_cli_classify_all("predict", clf, data, &opts, (int)s.threads, &hits, &counts)) goto out;
    int matrix = !strcmp(s.format, "matrix");
    uint32_t n = xmc_data_rows(data);
    if (matrix) printf("%u %u\n", n, xmc_classifier_num_labels(clf));
    for (uint32_t r = 0; r < n; r++) {
        const xmc_hit *h = hits + (size_t)r * opts.topk;
        for (uint32_t i = 0; i < counts[r]; i++) {
            if (matrix)
                printf(i ? " %u:%.9g" : "%u:%.9g", h[i].label, (double)h[i].score);
            else
                printf(i ? "\t%s:%.6g" : "%s:%.6g", xmc_classifier_label_name(clf, h[i].label), (double)h[i].score);
        }
        putchar('\n');
    }
    free(hits);
    free(counts);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    xmc_data_free(data);
    xmc_classifier_close(clf);
    return rc;
}
