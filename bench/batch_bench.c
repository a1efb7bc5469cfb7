/* batch_bench.c: in-process prediction speed at batch 1 and batch B, text in, one thread.
 *
 * Opens a model, reads the texts of a labels<TAB>text file (the first N lines), then classifies them all
 * with xmc_classify_batch in calls of 1 text and in calls of B texts, R times each, and prints the best
 * pass of each as CPU (and wall) microseconds per document, featurization included (what a caller of the library or the
 * xmcd plugin pays). It also checks that both passes gave the same labels and prints the largest score
 * difference, so a faster batch path that changes results shows here too. With ONLY (1 or B) it runs the passes of
 * that size alone, R times, and prints their best CPU time without the comparison: a process to profile one path
 * with perf.
 *
 * With --xc BASE the file is an --xc one (`labels f:v f:v ...`, features indexed from BASE) and the model one with
 * the MATRIX featurizer (trained with --xc): the first N rows are classified one at a time with
 * xmc_classify_features, the call a caller with feature vectors has (the library has no batched call for feature
 * input, so there is no batch-B pass), and the best pass of R prints as batch1_us_per_doc.
 *
 *   batch_bench [--xc BASE] MODEL FILE [N [B [R [ONLY]]]]     (defaults N 2000, B 256, R 3) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmc/xmc.h"

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One pass over all texts in calls of `batch`; returns CPU seconds (and wall seconds in *wall), or a negative
 * value on an error. CPU time is the figure to compare on a shared machine, where wall time is mostly noise. */
static double pass(const xmc_classifier *clf, xmc_workspace *ws, char **texts, size_t *lens, size_t n, size_t batch,
                   uint32_t stride, xmc_hit *hits, uint32_t *counts, double *wall)
{
    xmc_error err;
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (size_t i = 0; i < n; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        if (xmc_classify_batch(clf, ws, (const char *const *)texts + i, lens + i, m, NULL, hits + i * stride, stride,
                               counts + i, &err)) {
            fprintf(stderr, "batch_bench: %s\n", err.msg);
            return -1;
        }
    }
    *wall = now_s(CLOCK_MONOTONIC) - w0;
    return now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* The first `want` rows of an --xc file as CSR arrays (idx ascending as written; features below BASE dropped). */
typedef struct {
    size_t n;
    size_t *start; /* n + 1 offsets into idx/val */
    uint32_t *idx;
    float *val;
} xc_rows;

static int read_xc(const char *path, size_t want, uint32_t base, xc_rows *r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap_nnz = 1024, nnz = 0, cap = 0;
    r->n = 0;
    r->start = calloc(want + 1, sizeof *r->start);
    r->idx = malloc(cap_nnz * sizeof *r->idx);
    r->val = malloc(cap_nnz * sizeof *r->val);
    char *line = NULL;
    int rc = 0;
    while (r->start && r->idx && r->val && r->n < want && getline(&line, &cap, f) >= 0) {
        char *save = NULL;
        char *tok = strtok_r(line, " \t\r\n", &save);
        if (tok && !strchr(tok, ':')) tok = strtok_r(NULL, " \t\r\n", &save); /* the labels */
        for (; tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
            char *colon = strchr(tok, ':');
            if (!colon) continue;
            unsigned long id = strtoul(tok, NULL, 10);
            if (id < base) continue;
            if (nnz == cap_nnz) {
                cap_nnz *= 2;
                uint32_t *ni = realloc(r->idx, cap_nnz * sizeof *ni);
                if (ni) r->idx = ni;
                float *nv = realloc(r->val, cap_nnz * sizeof *nv);
                if (nv) r->val = nv;
                if (!ni || !nv) {
                    rc = -1;
                    break;
                }
            }
            r->idx[nnz] = (uint32_t)(id - base);
            r->val[nnz++] = strtof(colon + 1, NULL);
        }
        if (rc) break;
        r->start[++r->n] = nnz;
    }
    free(line);
    fclose(f);
    if (!r->start || !r->idx || !r->val) rc = -1;
    if (rc) fprintf(stderr, "batch_bench: out of memory reading %s\n", path);
    return rc;
}

/* One pass over the rows, one xmc_classify_features call each; CPU seconds (wall in *wall), negative on an error. */
static double pass_xc(const xmc_classifier *clf, xmc_workspace *ws, const xc_rows *r, xmc_hit *hits, uint32_t stride,
                      uint32_t *counts, double *wall)
{
    xmc_error err;
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (size_t i = 0; i < r->n; i++)
        if (xmc_classify_features(clf, ws, r->idx + r->start[i], r->val + r->start[i],
                                  (uint32_t)(r->start[i + 1] - r->start[i]), NULL, hits + i * stride, counts + i, &err)) {
            fprintf(stderr, "batch_bench: %s\n", err.msg);
            return -1;
        }
    *wall = now_s(CLOCK_MONOTONIC) - w0;
    return now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
}

static int main_xc(const char *model, const char *path, uint32_t base, size_t want, int reps)
{
    xmc_classifier *clf;
    xmc_workspace *ws;
    xmc_error err;
    if (xmc_classifier_open(model, NULL, &clf, &err) || xmc_workspace_new(clf, &ws, &err)) {
        fprintf(stderr, "batch_bench: %s\n", err.msg);
        return 1;
    }
    xc_rows r = {0};
    int rc = read_xc(path, want, base, &r);
    uint32_t stride = xmc_classifier_default_opts(clf).topk;
    xmc_hit *hits = rc ? NULL : malloc((r.n ? r.n : 1) * stride * sizeof *hits);
    uint32_t *counts = rc ? NULL : malloc((r.n ? r.n : 1) * sizeof *counts);
    double best = 1e30, best_wall = 1e30, w = 0;
    if (!rc && (!hits || !counts)) {
        fprintf(stderr, "batch_bench: out of memory\n");
        rc = -1;
    }
    if (!rc && !r.n) {
        fprintf(stderr, "batch_bench: no rows in %s\n", path);
        rc = -1;
    }
    for (int i = 0; i < reps && !rc; i++) {
        double t = pass_xc(clf, ws, &r, hits, stride, counts, &w);
        if (t < 0) {
            rc = -1;
            break;
        }
        if (t < best) best = t;
        if (w < best_wall) best_wall = w;
    }
    if (!rc)
        printf("docs %zu labels %u batch1_us_per_doc %.2f wall_batch1_us %.2f (feature input, best of %d)\n", r.n,
               xmc_classifier_num_labels(clf), best * 1e6 / (double)r.n, best_wall * 1e6 / (double)r.n, reps);
    free(hits);
    free(counts);
    free(r.start);
    free(r.idx);
    free(r.val);
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    long xc_base = -1;
    if (argc > 2 && !strcmp(argv[1], "--xc")) {
        xc_base = strtol(argv[2], NULL, 10);
        argc -= 2;
        argv += 2;
    }
    if (argc < 3 || xc_base > 1) {
        fprintf(stderr, "usage: batch_bench [--xc 0|1] MODEL FILE [N [B [R [ONLY]]]]\n");
        return 2;
    }
    size_t want = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000;
    size_t batch = argc > 4 ? strtoul(argv[4], NULL, 10) : 256;
    int reps = argc > 5 ? atoi(argv[5]) : 3;
    size_t only = argc > 6 ? strtoul(argv[6], NULL, 10) : 0;
    if (!want || !batch || reps < 1 || (only && only != 1 && only != batch)) {
        fprintf(stderr, "batch_bench: N, B and R must be positive, ONLY 1 or B\n");
        return 2;
    }
    if (xc_base >= 0) return main_xc(argv[1], argv[2], (uint32_t)xc_base, want, reps);
    xmc_classifier *clf;
    xmc_workspace *ws;
    xmc_error err;
    if (xmc_classifier_open(argv[1], NULL, &clf, &err) || xmc_workspace_new(clf, &ws, &err)) {
        fprintf(stderr, "batch_bench: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    char **texts = calloc(want, sizeof *texts);
    size_t *lens = calloc(want, sizeof *lens);
    size_t n = 0, cap = 0;
    char *line = NULL;
    ssize_t len;
    while (n < want && (len = getline(&line, &cap, f)) >= 0) {
        char *tab = strchr(line, '\t');
        char *t = tab ? tab + 1 : line;
        size_t l = strcspn(t, "\r\n");
        texts[n] = strndup(t, l);
        lens[n++] = l;
    }
    free(line);
    fclose(f);
    xmc_predict_opts opts = xmc_classifier_default_opts(clf);
    uint32_t stride = opts.topk;
    xmc_hit *h1 = malloc(n * stride * sizeof *h1), *hb = malloc(n * stride * sizeof *hb);
    uint32_t *c1 = malloc(n * sizeof *c1), *cb = malloc(n * sizeof *cb);
    if (!texts || !lens || !h1 || !hb || !c1 || !cb) {
        fprintf(stderr, "batch_bench: out of memory\n");
        return 1;
    }
    double best1 = 1e30, bestb = 1e30, wall1 = 1e30, wallb = 1e30, w1, wb;
    if (only) {
        for (int r = 0; r < reps; r++) {
            double t = pass(clf, ws, texts, lens, n, only, stride, hb, cb, &wb);
            if (t < 0) return 1;
            if (t < bestb) bestb = t;
        }
        printf("docs %zu labels %u batch%zu_us_per_doc %.2f (alone, best of %d)\n", n, xmc_classifier_num_labels(clf), only,
               bestb * 1e6 / (double)n, reps);
    }
    for (int r = 0; r < reps && !only; r++) {
        double t1 = pass(clf, ws, texts, lens, n, 1, stride, h1, c1, &w1);
        double tb = pass(clf, ws, texts, lens, n, batch, stride, hb, cb, &wb);
        if (t1 < 0 || tb < 0) return 1;
        if (t1 < best1) best1 = t1;
        if (tb < bestb) bestb = tb;
        if (w1 < wall1) wall1 = w1;
        if (wb < wallb) wallb = wb;
    }
    size_t differ = 0;
    double maxdiff = 0;
    for (size_t i = 0; i < n && !only; i++) {
        int same = c1[i] == cb[i];
        for (uint32_t j = 0; same && j < c1[i]; j++) {
            const xmc_hit *a = &h1[i * stride + j], *b = &hb[i * stride + j];
            if (a->label != b->label) same = 0;
            double d = fabs((double)a->score - (double)b->score);
            if (d > maxdiff) maxdiff = d;
        }
        differ += !same;
    }
    if (!only)
        printf("docs %zu labels %u batch1_us_per_doc %.2f batch%zu_us_per_doc %.2f speedup %.2f wall_batch1_us %.2f "
               "wall_batch%zu_us %.2f rows_differing %zu max_score_diff %.3g\n",
               n, xmc_classifier_num_labels(clf), best1 * 1e6 / (double)n, batch, bestb * 1e6 / (double)n,
               best1 / bestb, wall1 * 1e6 / (double)n, batch, wallb * 1e6 / (double)n, differ, maxdiff);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(h1);
    free(hb);
    free(c1);
    free(cb);
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
    return differ ? 1 : 0;
}
