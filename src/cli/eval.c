/* eval.c: `xmc eval`: P@k, nDCG@k, PSP@k (k = 1, 3, 5 by default) and prediction speed of a model on
 * labelled data, one figure per line. PSP's propensities come from the model's training label counts. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier.h"
#include "cli.h"
#include "data.h"
#include "metrics.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: xmc eval --model REPO[/VERSION] (--test FILE.tsv | -x X.txt -y Y.txt | --xc FILE) [options]\n"
"  -k K            report @1, @3 and @5 up to K (default 5)\n"
"  --beam N        nodes kept per tree level (default: the model's)\n"
"  --post NAME     post-processor (default: the model's)\n"
"  --threads N     threads (default 1: docs/s per core)\n"
"  --psp-a A, --psp-b B   propensity model constants (default 0.55, 1.5)\n"
"  --xc-feature-base B, --xc-label-base B   index bases of an --xc file (0 or 1)\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int xmc_cli_eval(int argc, char **argv)
{
    enum { O_MODEL = 256, O_TEST, O_BEAM, O_POST, O_THREADS, O_XC, O_XCF, O_XCL, O_PA, O_PB };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"test", 1, 0, O_TEST}, {"beam", 1, 0, O_BEAM}, {"post", 1, 0, O_POST},
        {"threads", 1, 0, O_THREADS}, {"xc", 1, 0, O_XC}, {"xc-feature-base", 1, 0, O_XCF},
        {"xc-label-base", 1, 0, O_XCL}, {"psp-a", 1, 0, O_PA}, {"psp-b", 1, 0, O_PB}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL;
    cli_input in = {0};
    long k = 5, beam = 0, threads = 1;
    double pa = 0.55, pb = 1.5;
    int post = -1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:y:k:h", opts, NULL)) != -1) {
        char *e = NULL;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TEST: in.tsv = optarg; break;
        case 'x': in.x = optarg; break;
        case 'y': in.y = optarg; break;
        case O_XC: in.xc = optarg; break;
        case O_XCF: in.xc_feature_base = (int)strtol(optarg, &e, 10); break;
        case O_XCL: in.xc_label_base = (int)strtol(optarg, &e, 10); break;
        case 'k': k = strtol(optarg, &e, 10); if (k < 1 || k > XMC_METRICS_MAXK) e = optarg; break;
        case O_BEAM: beam = strtol(optarg, &e, 10); if (beam < 1 || beam > XMC_WS_MAX_K) e = optarg; break;
        case O_THREADS: threads = strtol(optarg, &e, 10); if (threads < 1 || threads > 64) e = optarg; break;
        case O_PA: pa = strtod(optarg, &e); break;
        case O_PB: pb = strtod(optarg, &e); break;
        case O_POST:
            post = xmc_post_from_name(optarg);
            if (post < 0) { fprintf(stderr, "xmc eval: error: unknown post-processor '%s'\n", optarg); return 2; }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (e && (*e || e == optarg)) { fprintf(stderr, "xmc eval: error: bad value '%s'\n", optarg); return 2; }
    }
    if (optind < argc) { fprintf(stderr, "xmc eval: error: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!model) { fprintf(stderr, "xmc eval: error: --model is required\n"); return 2; }
    if (!!in.tsv + !!in.xc + !!(in.x || in.y) != 1 || (in.x && !in.y) || (in.y && !in.x)) {
        fprintf(stderr, "xmc eval: error: give exactly one labelled input: --test FILE.tsv, -x X.txt -y Y.txt or --xc FILE\n");
        return 2;
    }
    xmc_error err = {0};
    xmc_classifier *clf;
    if (xmc_classifier_open(model, NULL, &clf, &err)) { xmc_cli_report("eval", &err); return 1; }
    xmc_labelmap map = {0};
    xmc_dataset ds;
    if (cli_model_labelmap(clf, &map, &err) || cli_read_input(&in, in.tsv ? &map : NULL, &ds, &err)) {
        xmc_cli_report("eval", &err);
        xmc_labelmap_free(&map);
        xmc_classifier_close(clf);
        return 1;
    }
    int rc = 1;
    if (ds.Y.cols > clf->nr_labels) {
        fprintf(stderr, "xmc eval: error: the data has %u labels, the model %u\n", ds.Y.cols, clf->nr_labels);
        goto out;
    }
    if (ds.unknown_labels)
        fprintf(stderr, "note: %llu label occurrences in %u records are not labels of the model (counted as misses "
                        "nowhere: they are dropped)\n", (unsigned long long)ds.unknown_labels, ds.unknown_label_docs);
    xmc_predict_opts d = xmc_classifier_default_opts(clf);
    uint32_t K = (uint32_t)k;
    xmc_hit *hits;
    uint32_t *counts;
    double t0 = now();
    if (cli_predict_all(clf, &ds, beam ? (uint32_t)beam : d.beam, K, post, (int)threads, &hits, &counts, &err)) {
        xmc_cli_report("eval", &err);
        goto out;
    }
    double secs = now() - t0;
    double *inv = malloc(((size_t)clf->nr_labels + 1) * sizeof *inv);
    xmc_metrics m;
    if (!inv) { fprintf(stderr, "xmc eval: error: out of memory\n"); free(hits); free(counts); goto out; }
    xmc_inv_propensity(clf->label_freq, clf->nr_labels, clf->n_train, pa, pb, inv);
    xmc_csr y = ds.Y;
    y.cols = clf->nr_labels;
    if (xmc_metrics_compute(hits, counts, K, &y, inv, K, &m, &err)) {
        xmc_cli_report("eval", &err);
    } else {
        static const uint32_t ks[] = {1, 3, 5, 10, 20, 50, 100};
        for (int w = 0; w < 3; w++)
            for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ks[i] <= K; i++)
                printf("%s@%u\t%.2f\n", w == 0 ? "P" : w == 1 ? "nDCG" : "PSP", ks[i],
                       100 * (w == 0 ? m.prec[ks[i]] : w == 1 ? m.ndcg[ks[i]] : m.psp[ks[i]]));
        for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ks[i] <= K; i++) printf("R@%u\t%.2f\n", ks[i], 100 * m.recall[ks[i]]);
        printf("docs\t%u\n", ds.n);
        printf("docs/s\t%.0f\n", ds.n / (secs > 0 ? secs : 1e-9));
        printf("threads\t%ld\n", threads);
        rc = 0;
    }
    free(inv);
    free(hits);
    free(counts);
out:
    xmc_dataset_free(&ds);
    xmc_labelmap_free(&map);
    xmc_classifier_close(clf);
    return rc;
}
