/* encoder_serve.c: records/s of classifying texts with a tfidf+encoder model, one text per call (the stage's
 * path before micro-batches were embedded together) and through xmc_classify_batch at batch 1, 32 and 256.
 *
 * Usage: encoder_serve MODEL TSV short|long   (public API only). Reads the first 256 texts of TSV (label<TAB>text);
 * "short" keeps each text's headline (up to the first ". "), like a product title, "long" the whole text. Each
 * point classifies all 256 texts, repeated for BENCH_MIN_TIME seconds (default 1); prints
 * "point records_per_s" lines. Threads: OpenBLAS's (OPENBLAS_NUM_THREADS), the library adds none here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmc/xmc.h"

#define N 256
#define TOPK 10

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: encoder_serve MODEL TSV short|long\n"); return 2; }
    int shorten = strcmp(argv[3], "short") == 0;
    double min_time = getenv("BENCH_MIN_TIME") ? atof(getenv("BENCH_MIN_TIME")) : 1.0;
    xmc_error err = {0};
    xmc_classifier *clf;
    if (xmc_classifier_open(argv[1], NULL, &clf, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 1; }
    static char *texts[N];
    static size_t lens[N];
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (n < N && getline(&line, &cap, f) > 0) {
        char *t = strchr(line, '\t');
        t = t ? t + 1 : line;
        size_t len = strcspn(t, "\n");
        if (shorten) {
            char *dot = strstr(t, ". ");
            if (dot && (size_t)(dot - t) < len) len = (size_t)(dot - t);
        }
        texts[n] = strndup(t, len);
        lens[n++] = len;
    }
    free(line);
    fclose(f);
    for (int i = n; i < N; i++) { texts[i] = texts[i % n]; lens[i] = lens[i % n]; } /* fewer texts: repeated */
    xmc_workspace *ws;
    if (xmc_workspace_new(clf, &ws, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    static xmc_hit hits[N * TOPK];
    static uint32_t counts[N];
    xmc_predict_opts opts = xmc_classifier_default_opts(clf);
    opts.topk = TOPK;
    const int batches[] = {0, 1, 32, 256}; /* 0: xmc_classify_text per record */
    for (int p = 0; p < 4; p++) {
        int b = batches[p];
        long done = 0;
        double t0 = now(), t;
        do {
            for (int s = 0; s < N; s += b ? b : 1) {
                xmc_err rc = b ? xmc_classify_batch(clf, ws, (const char *const *)texts + s, lens + s, (size_t)b, &opts,
                                                    hits + (size_t)s * TOPK, TOPK, counts + s, &err)
                               : xmc_classify_text(clf, ws, texts[s], lens[s], &opts, hits + (size_t)s * TOPK, &counts[s], &err);
                if (rc) { fprintf(stderr, "%s\n", err.msg); return 1; }
            }
            done += N;
            t = now() - t0;
        } while (t < min_time);
        printf("%s %.1f\n", b ? (b == 1 ? "batch1" : b == 32 ? "batch32" : "batch256") : "text", done / t);
        fflush(stdout);
    }
    xmc_workspace_free(ws);
    xmc_classifier_close(clf);
    for (int i = 0; i < n; i++) free(texts[i]);
    return 0;
}
