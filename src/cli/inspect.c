/* inspect.c: `xmc inspect`: what a model version is made of: manifest facts, the tree per layer, weights
 * per layer, file sizes, and the heaviest features of one label. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"

enum { O_MODEL = 'm', O_LABEL = 'l', O_TOP = 't' };

static const cli_opt inspect_opts[] = {
    {CLI_STRING, O_MODEL, "model", 'm', "REPO[/VERSION]", 0, 0, "model repository or version directory (required)"},
    {CLI_STRING, O_LABEL, "label", 'l', "NAME", 0, 0, "also list the largest weights of this label's ranker"},
    {CLI_INT, O_TOP, "top", 't', "N", 0, 4294967295.0, "how many of them (default 20)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command inspect_cmd = {
    "inspect", "--model REPO[/VERSION] [--label NAME] [--top N]",
    "  Prints the version, featuriser, tree shape and weights per layer, how many labels sit in 1, 2, ...\n"
    "  leaf clusters (disentangled models), file sizes, and with --label the label's leaf clusters and the\n"
    "  N features with the largest weights in its ranker (its first copy's).\n", inspect_opts};

typedef struct {
    const char *model, *label;
    uint32_t top;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    switch (o->id) {
    case O_MODEL: s->model = v; break;
    case O_LABEL: s->label = v; break;
    case O_TOP: s->top = (uint32_t)num; break;
    }
    return 0;
}

static void print_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    unsigned long long total = 0;
    printf("files\n");
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0) {
            printf("  %-28s %12lld\n", e->d_name, (long long)st.st_size);
            total += (unsigned long long)st.st_size;
        }
    }
    closedir(d);
    printf("  %-28s %12llu\n", "total", total);
}

/* The label's top weights with the names of their features. */
static int print_label(const xmc_classifier *clf, const xmc_model_info *info, const char *label, uint32_t top)
{
    uint32_t id = xmc_classifier_find_label(clf, label);
    if (id == UINT32_MAX) {
        fprintf(stderr, "xmc inspect: error: no label named '%s'\n", label);
        return 1;
    }
    xmc_error err = {0};
    uint32_t cap = top < info->nr_features + 1 ? top : info->nr_features + 1, n;
    uint64_t total;
    xmc_feature_weight *v = malloc((cap ? cap : 1) * sizeof *v);
    if (!v) {
        xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory");
        cli_report("inspect", &err);
        return 1;
    }
    if (xmc_classifier_top_features(clf, id, v, cap, &n, &total, &err)) {
        cli_report("inspect", &err);
        free(v);
        return 1;
    }
    uint32_t leaves[8], nl = xmc_classifier_label_leaves(clf, id, leaves, 8);
    if (info->depth < 2) {
        printf("label %s: one layer under the root (no leaf clusters)\n", label);
    } else {
        printf("label %s: in %u leaf cluster%s:", label, nl, nl == 1 ? "" : "s");
        for (uint32_t i = 0; i < nl && i < 8; i++) printf(" %u", leaves[i]);
        printf("\n");
    }
    printf("label %s: %llu weights; largest %u:\n", label, (unsigned long long)total, top);
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *name = xmc_classifier_feature_name(clf, v[i].feature, &len);
        if (name) printf("  %+.4f  %.*s\n", (double)v[i].weight, (int)len, name);
        else printf("  %+.4f  feature %u\n", (double)v[i].weight, v[i].feature);
    }
    free(v);
    return 0;
}

int cli_inspect(int argc, char **argv)
{
    settings s = {.top = 20};
    int first, rc = cli_parse(&inspect_cmd, argc, argv, apply, &s, &first);
    if (rc) return rc == 1 ? 0 : rc;
    if (!s.model || first < argc) { cli_usage(&inspect_cmd, stderr); return 2; }
    xmc_classifier *clf;
    xmc_error err = {0};
    xmc_open_opts oo = {1, 1};
    if (xmc_classifier_open(s.model, &oo, &clf, &err)) { cli_report("inspect", &err); return 1; }
    xmc_model_info info;
    xmc_classifier_info(clf, &info);
    printf("version        %s\n", xmc_classifier_version(clf));
    printf("path           %s\n", xmc_classifier_path(clf));
    printf("featurizer     %s\n", xmc_featurizer_name(info.featurizer));
    char spec[XMC_TFIDF_SPEC_MAX];
    if (xmc_classifier_tfidf_spec(clf, spec, sizeof spec, NULL) == XMC_OK) printf("tfidf          %s\n", spec);
    printf("features       %u (+1 bias)\n", info.nr_features);
    printf("labels         %u\n", info.nr_labels);
    printf("trained on     %llu records\n", (unsigned long long)info.n_train);
    printf("defaults       beam %u, topk %u, post %s\n", info.defaults.beam, info.defaults.topk,
           xmc_post_name((xmc_post)info.defaults.post));
    printf("canaries       %u (checked)\n", info.n_canary);
    printf("tree           %u layers\n", info.depth);
    printf("  layer  nodes      parents    max_children  weight_rows  nnz\n");
    for (uint32_t t = 0; t < info.depth; t++) {
        xmc_layer_info layer;
        if (xmc_classifier_layer(clf, t, &layer, &err)) break; /* t < depth: cannot fail */
        printf("  %-6u %-10u %-10u %-13u %-12llu %llu\n", t, layer.nr_nodes, layer.nr_parents, layer.max_children,
               (unsigned long long)layer.weight_rows, (unsigned long long)layer.nnz);
    }
    uint32_t k = xmc_classifier_disentangle(clf);
    if (k > 1) {
        /* how many labels took 1, 2, ... k leaves */
        uint64_t hist[8] = {0};
        for (uint32_t l = 0; l < info.nr_labels; l++) {
            uint32_t c = xmc_classifier_label_leaves(clf, l, NULL, 0);
            hist[c < 7 ? c : 7]++;
        }
        printf("disentangle    up to %u leaves per label\n", k);
        for (uint32_t c = 1; c <= k && c < 8; c++)
            printf("  %u %-11s %llu labels\n", c, c == 1 ? "leaf" : "leaves", (unsigned long long)hist[c]);
    }
    print_files(xmc_classifier_path(clf));
    if (s.label) rc = print_label(clf, &info, s.label, s.top);
    xmc_classifier_close(clf);
    return rc;
}
