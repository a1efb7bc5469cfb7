/* inspect.c: `xmc inspect`: what a model version is made of: manifest facts, the tree per layer, weights
 * per layer, file sizes, and the heaviest features of one label. */
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "classifier.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xmc inspect --model REPO[/VERSION] [--label NAME] [--top N]\n"
            "  Prints the version, featuriser, tree shape and weights per layer, file sizes, and with --label the\n"
            "  N (default 20) features with the largest weights in that label's ranker.\n");
}

typedef struct { uint32_t f; float w; } fw;
static int cmp_fw(const void *a, const void *b)
{
    float x = fabsf(((const fw *)a)->w), y = fabsf(((const fw *)b)->w);
    return (x < y) - (x > y);
}

int xmc_cli_inspect(int argc, char **argv)
{
    const char *model = NULL, *label = NULL;
    unsigned top = 20;
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"label", 1, 0, 'l'}, {"top", 1, 0, 't'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'l': label = optarg; break;
        case 't': top = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || optind < argc) { usage(stderr); return 2; }
    xmc_classifier *clf;
    xmc_error err = {0};
    xmc_open_opts oo = {1, 1};
    if (xmc_classifier_open(model, &oo, &clf, &err)) { xmc_cli_report("inspect", &err); return 1; }
    const xmc_xlinear *xl = &clf->xl;
    printf("version        %s\n", clf->version);
    printf("path           %s\n", xmc_classifier_path(clf));
    static const char *const kinds[] = {"matrix", "tfidf", "encoder", "tfidf+encoder"};
    printf("featurizer     %s\n", kinds[clf->kind]);
    if (clf->tfidf) {
        char spec[1024];
        xmc_tfidf_config_format(xmc_tfidf_config_of(clf->tfidf), spec, sizeof spec);
        printf("tfidf          %s\n", spec);
    }
    printf("features       %u (+1 bias)\n", xl->nr_features);
    printf("labels         %u\n", clf->nr_labels);
    printf("trained on     %llu records\n", (unsigned long long)clf->n_train);
    printf("defaults       beam %u, topk %u, post %s\n", xl->beam, xl->topk, xmc_post_name((xmc_post)xl->post));
    printf("canaries       %u (checked)\n", clf->n_canary);
    printf("tree           %u layers\n", xl->depth);
    printf("  layer  nodes      parents    max_children  weight_rows  nnz\n");
    for (uint32_t t = 0; t < xl->depth; t++) {
        const xmc_layer *L = &xl->layers[t];
        printf("  %-6u %-10u %-10u %-13u %-12llu %llu\n", t, L->nr_nodes, L->nr_parents, L->max_children,
               (unsigned long long)L->nr_rows, (unsigned long long)L->nnz);
    }
    DIR *d = opendir(xmc_classifier_path(clf));
    if (d) {
        struct dirent *e;
        unsigned long long total = 0;
        printf("files\n");
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[4200];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", xmc_classifier_path(clf), e->d_name);
            if (stat(p, &st) == 0) {
                printf("  %-28s %12lld\n", e->d_name, (long long)st.st_size);
                total += (unsigned long long)st.st_size;
            }
        }
        closedir(d);
        printf("  %-28s %12llu\n", "total", total);
    }
    int rc = 0;
    if (label) {
        uint32_t id = UINT32_MAX;
        for (uint32_t l = 0; l < clf->nr_labels; l++)
            if (strcmp(xmc_classifier_label_name(clf, l), label) == 0) { id = l; break; }
        if (id == UINT32_MAX) {
            fprintf(stderr, "xmc inspect: error: no label named '%s'\n", label);
            rc = 1;
        } else {
            xmc_csr w;
            if (xmc_layer_weights(&xl->layers[xl->depth - 1], xl->nr_features, &w, &err)) {
                xmc_cli_report("inspect", &err);
                rc = 1;
            } else {
                uint64_t b = w.indptr[id], n = w.indptr[id + 1] - b;
                fw *v = malloc((n ? n : 1) * sizeof *v);
                for (uint64_t i = 0; v && i < n; i++) v[i] = (fw){w.indices[b + i], w.data[b + i]};
                if (v) qsort(v, n, sizeof *v, cmp_fw);
                printf("label %s: %llu weights; largest %u:\n", label, (unsigned long long)n, top);
                for (uint64_t i = 0; v && i < n && i < top; i++) {
                    size_t len = 0;
                    const char *name = NULL;
                    if (v[i].f == xl->nr_features) { name = "(bias)"; len = 6; }
                    else if (clf->tfidf && v[i].f < xmc_tfidf_dim(clf->tfidf)) name = xmc_tfidf_feature_name(clf->tfidf, v[i].f, &len);
                    else if (clf->encoder) { name = "(embedding dimension)"; len = 21; }
                    if (name) printf("  %+.4f  %.*s\n", (double)v[i].w, (int)len, name);
                    else printf("  %+.4f  feature %u\n", (double)v[i].w, v[i].f);
                }
                free(v);
                xmc_csr_free(&w);
            }
        }
    }
    xmc_classifier_close(clf);
    return rc;
}
