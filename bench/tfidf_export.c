/* tfidf_export.c: fits xmc's TF-IDF featurizer on a TSV and writes its vocabulary and feature rows, for comparing
 * them with another featurizer's (bench/peer_pecos.py --export writes PECOS's in the same layout).
 *
 * usage: tfidf_export SPEC TRAIN.tsv OUTDIR [TEST.tsv]
 *   SPEC is an `xmc train --tfidf` spec ("" for the defaults). TRAIN.tsv and TEST.tsv are labels<TAB>text lines.
 *   OUTDIR/vocab.tsv   one line per feature in id order: ngram<TAB>idf  (the n-gram's words joined by one space)
 *   OUTDIR/train.svm   one line per document: labels<TAB>id:value id:value ... (ids ascending, values %.6g)
 *   OUTDIR/test.svm    the same for TEST.tsv, when given
 * The featurizer is fitted on the texts of TRAIN.tsv only, as `xmc train --train` fits it. Built by make as
 * build/bench/tfidf_export; docs/featurizer.md shows the comparison it serves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tfidf.h"

typedef struct tsv {
    char *buf;
    size_t n;
    const char **labels, **texts;
    size_t *lens;
} tsv;

/* Reads the whole file and splits it into lines in place; a line without a TAB is all text (no labels). */
static int tsv_read(const char *path, tsv *t)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    size_t cap = 1 << 20, len = 0;
    t->buf = malloc(cap + 1);
    size_t got;
    while (t->buf && (got = fread(t->buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *grown = realloc(t->buf, (cap *= 2) + 1);
            if (!grown) { free(t->buf); t->buf = NULL; }
            t->buf = grown;
        }
    }
    fclose(f);
    if (!t->buf) { fprintf(stderr, "tfidf_export: %s: out of memory\n", path); return -1; }
    t->buf[len] = 0;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += t->buf[i] == '\n';
    lines += len > 0 && t->buf[len - 1] != '\n';
    t->labels = malloc((lines + 1) * sizeof *t->labels);
    t->texts = malloc((lines + 1) * sizeof *t->texts);
    t->lens = malloc((lines + 1) * sizeof *t->lens);
    if (!t->labels || !t->texts || !t->lens) return -1;
    t->n = 0;
    for (char *p = t->buf; p < t->buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(t->buf + len - p));
        if (!nl) nl = t->buf + len;
        *nl = 0;
        char *tab = strchr(p, '\t');
        if (tab) { *tab = 0; t->labels[t->n] = p; t->texts[t->n] = tab + 1; }
        else { t->labels[t->n] = ""; t->texts[t->n] = p; }
        t->lens[t->n] = strlen(t->texts[t->n]);
        t->n++;
        p = nl + 1;
    }
    return 0;
}

static void tsv_free(tsv *t)
{
    free(t->buf); free(t->labels); free(t->texts); free(t->lens);
}

static int write_rows(const xmci_tfidf *tf, const tsv *t, const char *path)
{
    xmc_error err = {0};
    xmci_csr x = {0};
    if (xmci_tfidf_transform_batch(tf, t->texts, t->lens, t->n, 2, &x, &err)) {
        fprintf(stderr, "tfidf_export: %s\n", err.msg);
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); xmci_csr_free(&x); return -1; }
    for (uint32_t r = 0; r < x.rows; r++) {
        fputs(t->labels[r], f);
        fputc('\t', f);
        for (uint64_t k = x.indptr[r]; k < x.indptr[r + 1]; k++)
            fprintf(f, "%s%u:%.6g", k > x.indptr[r] ? " " : "", x.indices[k], x.data[k]);
        fputc('\n', f);
    }
    int rc = fclose(f);
    xmci_csr_free(&x);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: tfidf_export SPEC TRAIN.tsv OUTDIR [TEST.tsv]\n");
        return 2;
    }
    xmc_error err = {0};
    xmci_tfidf_config cfg;
    if (xmci_tfidf_config_parse(&cfg, argv[1], &err)) { fprintf(stderr, "tfidf_export: %s\n", err.msg); return 2; }
    tsv train = {0}, test = {0};
    if (tsv_read(argv[2], &train) || (argc == 5 && tsv_read(argv[4], &test))) return 1;
    xmci_tfidf *tf = NULL;
    if (xmci_tfidf_fit(&cfg, train.texts, train.lens, train.n, 2, &tf, &err)) {
        fprintf(stderr, "tfidf_export: %s\n", err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.tsv", argv[3]);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    for (uint32_t id = 0; id < xmci_tfidf_dim(tf); id++) {
        size_t len;
        const char *name = xmci_tfidf_feature_name(tf, id, &len);
        fprintf(f, "%.*s\t%.6g\n", (int)len, name, xmci_tfidf_idf_of(tf, id));
    }
    if (fclose(f)) return 1;
    snprintf(path, sizeof path, "%s/train.svm", argv[3]);
    if (write_rows(tf, &train, path)) return 1;
    if (argc == 5) {
        snprintf(path, sizeof path, "%s/test.svm", argv[3]);
        if (write_rows(tf, &test, path)) return 1;
    }
    xmci_tfidf_free(tf);
    tsv_free(&train);
    tsv_free(&test);
    return 0;
}
