/* eval.c: `xmc eval`: P@k, nDCG@k, PSP@k (k = 1, 3, 5 by default) and prediction speed of a model on
 * labelled data, one figure per line. PSP's propensities come from the model's training label counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "options.h"

enum { O_PA = CLI_O__NEXT, O_PB };

static const cli_opt eval_opts[] = {
    {CLI_STRING, CLI_O_MODEL, "model", 0, "REPO[/VERSION]", 0, 0, "model repository or version directory (required)"},
    {CLI_STRING, CLI_O_TEST, "test", 0, "FILE.tsv", 0, 0, "labelled records (labels<TAB>text)"},
    {CLI_STRING, 'x', NULL, 'x', "X.txt", 0, 0, "feature vectors in smat text, with -y"},
    {CLI_STRING, 'y', NULL, 'y', "Y.txt", 0, 0, "their labels in smat text"},
    {CLI_STRING, CLI_O_XC, "xc", 0, "FILE", 0, 0, "XC / multi-label libsvm file"},
    {CLI_INT, 'k', NULL, 'k', "K", 1, XMC_EVAL_MAXK, "report P@k, R@k, nDCG@k, PSP@k at k = 1, 3, 5, 10, 20, 50, 100 up to K (default 5)"},
    {CLI_INT, CLI_O_BEAM, "beam", 0, "N", 1, XMC_MAX_K, "nodes kept per tree level (default: the model's)"},
    {CLI_STRING, CLI_O_POST, "post", 0, "NAME", 0, 0, "post-processor (default: the model's)"},
    {CLI_INT, CLI_O_THREADS, "threads", 0, "N", 1, XMC_MAX_THREADS, "threads (default 1: docs/s per core)"},
    {CLI_NUMBER, O_PA, "psp-a", 0, "A", -1e9, 1e9, "propensity model constant A (default 0.55)"},
    {CLI_NUMBER, O_PB, "psp-b", 0, "B", -1e9, 1e9, "propensity model constant B (default 1.5)"},
    {CLI_INT, CLI_O_XCF, "xc-feature-base", 0, "B", 0, 1, "index base of an --xc file's features (0 or 1)"},
    {CLI_INT, CLI_O_XCL, "xc-label-base", 0, "B", 0, 1, "index base of an --xc file's labels (0 or 1)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command eval_cmd = {
    "eval", "--model REPO[/VERSION] (--test FILE.tsv | -x X.txt -y Y.txt | --xc FILE) [options]", NULL, eval_opts};

typedef struct {
    cli_run run;
    double pa, pb;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    int rc = cli_apply_run("eval", &s->run, o, v, num);
    if (rc >= 0) return rc;
    if (o->id == O_PA) s->pa = num;
    else if (o->id == O_PB) s->pb = num;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_eval(int argc, char **argv)
{
    settings s = {.run = {.k = 5, .threads = 1, .post = -1}, .pa = 0.55, .pb = 1.5};
    int first, rc = cli_parse(&eval_cmd, argc, argv, apply, &s, &first);
    if (rc) return rc == 1 ? 0 : rc;
    const xmc_data_source *in = &s.run.src;
    if (first < argc) { fprintf(stderr, "xmc eval: error: unexpected argument '%s'\n", argv[first]); return 2; }
    if (!s.run.model) { fprintf(stderr, "xmc eval: error: --model is required\n"); return 2; }
    if (!!in->tsv + !!in->xc + !!(in->x || in->y) != 1 || (in->x && !in->y) || (in->y && !in->x)) {
        fprintf(stderr, "xmc eval: error: give exactly one labelled input: --test FILE.tsv, -x X.txt -y Y.txt or --xc FILE\n");
        return 2;
    }
    xmc_error err = {0};
    xmc_classifier *clf;
    if (xmc_classifier_open(s.run.model, NULL, &clf, &err)) { cli_report("eval", &err); return 1; }
    cli_blas_warn_model(clf);
    xmc_data *data;
    if (xmc_data_read(in, clf, &data, &err)) {
        cli_report("eval", &err);
        xmc_classifier_close(clf);
        return 1;
    }
    rc = 1;
    uint32_t L = xmc_classifier_num_labels(clf), n = xmc_data_rows(data);
    if (xmc_data_num_labels(data) > L) {
        fprintf(stderr, "xmc eval: error: the data has %u labels, the model %u\n", xmc_data_num_labels(data), L);
        goto out;
    }
    uint64_t unknown;
    uint32_t unknown_docs;
    xmc_data_unknown_labels(data, &unknown, &unknown_docs);
    if (unknown)
        fprintf(stderr, "note: %llu label occurrences in %u records are not labels of the model: dropped from those "
                        "records' label sets\n", (unsigned long long)unknown, unknown_docs);
    uint32_t bare = xmc_data_rows_without_labels(data);
    if (bare == n) {
        fprintf(stderr, "xmc eval: error: none of the %u records has a label of the model: nothing to evaluate\n", n);
        goto out;
    }
    if (bare)
        fprintf(stderr, "note: %u of %u records have no label of the model: they count in P@k, R@k and nDCG@k as "
                        "records with no hit and add nothing to PSP@k\n", bare, n);
    xmc_predict_opts d = xmc_classifier_default_opts(clf);
    xmc_predict_opts opts = {s.run.beam ? s.run.beam : d.beam, s.run.k, s.run.post};
    xmc_hit *hits;
    uint32_t *counts;
    double t0 = now();
    if (cli_classify_all("eval", clf, data, &opts, (int)s.run.threads, &hits, &counts)) goto out;
    double secs = now() - t0;
    xmc_eval m;
    if (xmc_data_evaluate(clf, data, hits, counts, s.run.k, s.pa, s.pb, &m, &err)) {
        cli_report("eval", &err);
    } else {
        static const uint32_t ks[] = {1, 3, 5, 10, 20, 50, 100};
        for (int w = 0; w < 3; w++)
            for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ks[i] <= s.run.k; i++)
                printf("%s@%u\t%.2f\n", w == 0 ? "P" : w == 1 ? "nDCG" : "PSP", ks[i],
                       100 * (w == 0 ? m.prec[ks[i]] : w == 1 ? m.ndcg[ks[i]] : m.psp[ks[i]]));
        for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ks[i] <= s.run.k; i++) printf("R@%u\t%.2f\n", ks[i], 100 * m.recall[ks[i]]);
        printf("docs\t%u\n", n);
        printf("docs/s\t%.0f\n", n / (secs > 0 ? secs : 1e-9));
        printf("threads\t%u\n", s.run.threads);
        rc = 0;
    }
    free(hits);
    free(counts);
out:
    xmc_data_free(data);
    xmc_classifier_close(clf);
    return rc;
}
