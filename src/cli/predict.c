/* predict.c: `xmc predict`: labels for every record of a TSV (or rows of a feature matrix), as text
 * (tab-separated label:score, best first) or as a smat text score matrix like PECOS's golden files. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "cli.h"
#include "data.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: xmc predict --model REPO[/VERSION] (--test FILE.tsv | -x X.txt | --xc FILE) [options]\n"
"  -k N            labels per record (default: the model's topk)\n"
"  --beam N        nodes kept per tree level (default: the model's beam)\n"
"  --post NAME     post-processor (default: the model's)\n"
"  --format F      text: one line per record, tab-separated label:score, best first (default);\n"
"                  matrix: smat text 'ROWS LABELS' then label-index:score per row\n"
"  --threads N     threads (default 2)\n"
"  --no-verify     skip checksums and canaries when opening the model\n"
"  --xc-feature-base B, --xc-label-base B   index bases of an --xc file (0 or 1)\n"
"  The label field of a TSV is ignored; records keep their input order.\n");
}

int xmc_cli_predict(int argc, char **argv)
{
    enum { O_MODEL = 256, O_TEST, O_BEAM, O_POST, O_FORMAT, O_THREADS, O_NOVERIFY, O_XC, O_XCF, O_XCL };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"test", 1, 0, O_TEST}, {"beam", 1, 0, O_BEAM}, {"post", 1, 0, O_POST},
        {"format", 1, 0, O_FORMAT}, {"threads", 1, 0, O_THREADS}, {"no-verify", 0, 0, O_NOVERIFY},
        {"xc", 1, 0, O_XC}, {"xc-feature-base", 1, 0, O_XCF}, {"xc-label-base", 1, 0, O_XCL},
        {"topk", 1, 0, 'k'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *format = "text";
    cli_input in = {0};
    long k = 0, beam = 0, threads = 2;
    int post = -1, verify = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:k:h", opts, NULL)) != -1) {
        char *e = NULL;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TEST: in.tsv = optarg; break;
        case 'x': in.x = optarg; break;
        case O_XC: in.xc = optarg; break;
        case O_XCF: in.xc_feature_base = (int)strtol(optarg, &e, 10); break;
        case O_XCL: in.xc_label_base = (int)strtol(optarg, &e, 10); break;
        case 'k': k = strtol(optarg, &e, 10); if (k < 1 || k > XMC_WS_MAX_K) e = optarg; break;
        case O_BEAM: beam = strtol(optarg, &e, 10); if (beam < 1 || beam > XMC_WS_MAX_K) e = optarg; break;
        case O_THREADS: threads = strtol(optarg, &e, 10); if (threads < 1 || threads > 64) e = optarg; break;
        case O_POST:
            post = xmc_post_from_name(optarg);
            if (post < 0) { fprintf(stderr, "xmc predict: error: unknown post-processor '%s'\n", optarg); return 2; }
            break;
        case O_FORMAT: format = optarg; break;
        case O_NOVERIFY: verify = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (e && (*e || e == optarg)) { fprintf(stderr, "xmc predict: error: bad value '%s'\n", optarg); return 2; }
    }
    if (optind < argc) { fprintf(stderr, "xmc predict: error: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!model) { fprintf(stderr, "xmc predict: error: --model is required\n"); return 2; }
    if (strcmp(format, "text") && strcmp(format, "matrix")) {
        fprintf(stderr, "xmc predict: error: --format must be text or matrix\n");
        return 2;
    }
    if (!!in.tsv + !!in.x + !!in.xc != 1) {
        fprintf(stderr, "xmc predict: error: give exactly one input: --test FILE.tsv, -x X.txt or --xc FILE\n");
        return 2;
    }
    xmc_error err = {0};
    xmc_classifier *clf;
    xmc_open_opts oo = {verify, verify};
    if (xmc_classifier_open(model, &oo, &clf, &err)) { xmc_cli_report("predict", &err); return 1; }
    xmc_predict_opts d = xmc_classifier_default_opts(clf);
    uint32_t K = k ? (uint32_t)k : d.topk;
    xmc_labelmap map = {0};
    xmc_dataset ds;
    int rc = 1;
    if (cli_model_labelmap(clf, &map, &err) || cli_read_input(&in, in.tsv ? &map : NULL, &ds, &err)) {
        xmc_cli_report("predict", &err);
        xmc_labelmap_free(&map);
        xmc_classifier_close(clf);
        return 1;
    }
    xmc_hit *hits;
    uint32_t *counts;
    if (cli_predict_all(clf, &ds, beam ? (uint32_t)beam : d.beam, K, post, (int)threads, &hits, &counts, &err)) {
        xmc_cli_report("predict", &err);
        goto out;
    }
    if (!strcmp(format, "matrix")) printf("%u %u\n", ds.n, xmc_classifier_num_labels(clf));
    for (uint32_t r = 0; r < ds.n; r++) {
        const xmc_hit *h = hits + (size_t)r * K;
        for (uint32_t i = 0; i < counts[r]; i++) {
            if (!strcmp(format, "matrix"))
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
    xmc_dataset_free(&ds);
    xmc_labelmap_free(&map);
    xmc_classifier_close(clf);
    return rc;
}
