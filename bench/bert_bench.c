/* bert_bench.c: the C side of bench/bert_bench.sh: times xmci_bert_forward + mean pooling per (seq, batch).
 *
 * usage: bert_bench DIR OUT [VOCAB TSV]. Reads DIR (config.json, model.safetensors, ids.bin: 32 x 128 int32 ids from
 * bert_torch.py gen), writes DIR/c_mean.txt (mean-pooled vectors of 4 x 32 tokens, for the cross-check in
 * bert_torch.py) and OUT: one "seq batch tokens_per_s seqs_per_s" line per point, then "rss_kb N". Each
 * point: one warm-up pass, then passes until BENCH_MIN_TIME seconds (default 2) and at least 3 passes.
 * Threads: OpenBLAS's, from OPENBLAS_NUM_THREADS. Token ids are the same as the PyTorch run's.
 * With VOCAB and TSV (label<TAB>text lines, e.g. reuters/test.tsv), also times the WordPiece tokenizer on
 * those texts (batches of 32, no truncation) and appends a "tokenizer texts bytes pieces seconds" line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bert.h"
#include "wordpiece.h"

#define MAX_B 32
#define MAX_T 128

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ids of B rows of T tokens: the first T of each stored row, [CLS] first and [SEP] last, as in the torch run */
static void make_batch(const int32_t *all, int T, int B, int32_t *ids, int *lens)
{
    for (int b = 0; b < B; b++) {
        memcpy(ids + (size_t)b * T, all + (size_t)b * MAX_T, (size_t)T * sizeof *ids);
        ids[(size_t)b * T] = 101;
        ids[(size_t)b * T + T - 1] = 102;
        lens[b] = T;
    }
}

/* Tokenises every text of a label<TAB>text file, batches of 32, and writes one summary line to o. */
static int bench_tokenizer(const char *vocab, const char *tsv, FILE *o)
{
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    if (xmci_wordpiece_load(vocab, &wp, &err)) { fprintf(stderr, "bert_bench: %s\n", err.msg); return 1; }
    FILE *f = fopen(tsv, "r");
    if (!f) { perror(tsv); return 1; }
    size_t n = 0, cap = 0, bytes = 0;
    char **texts = NULL, *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        char *tab = memchr(line, '\t', (size_t)len);
        char *t = tab ? tab + 1 : line;
        t[strcspn(t, "\n")] = 0;
        if (n == cap) { cap = cap ? 2 * cap : 1024; texts = realloc(texts, cap * sizeof *texts); }
        texts[n++] = strdup(t);
        bytes += strlen(t);
    }
    free(line);
    fclose(f);
    xmci_wordpiece_batch batch = {0};
    double pieces = 0, t0 = now();
    for (size_t i = 0; i < n; i += 32) {
        int b = n - i < 32 ? (int)(n - i) : 32;
        if (xmci_wordpiece_encode_batch(wp, (const char *const *)texts + i, NULL, b, 1 << 30, &batch, &err)) {
            fprintf(stderr, "bert_bench: %s\n", err.msg);
            return 1;
        }
        for (int r = 0; r < b; r++) pieces += batch.len[r];
    }
    double el = now() - t0;
    fprintf(o, "tokenizer %zu %zu %.0f %.4f\n", n, bytes, pieces, el);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    xmci_wordpiece_batch_free(&batch);
    xmci_wordpiece_free(wp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) { fprintf(stderr, "usage: bert_bench DIR OUT [VOCAB TSV]\n"); return 2; }
    const char *dir = argv[1];
    double min_time = getenv("BENCH_MIN_TIME") ? atof(getenv("BENCH_MIN_TIME")) : 2.0;
    char path[4096];
    snprintf(path, sizeof path, "%s/ids.bin", dir);
    static int32_t all[MAX_B * MAX_T], ids[MAX_B * MAX_T];
    int lens[MAX_B];
    FILE *f = fopen(path, "rb");
    if (!f || fread(all, sizeof *all, MAX_B * MAX_T, f) != MAX_B * MAX_T) { fprintf(stderr, "bert_bench: cannot read %s\n", path); return 1; }
    fclose(f);
    xmc_error err = {0};
    xmci_bert *bert = NULL;
    xmci_bert_workspace *ws = NULL;
    if (xmci_bert_load(dir, &bert, &err) || xmci_bert_workspace_new(bert, MAX_B, MAX_T, &ws, &err)) {
        fprintf(stderr, "bert_bench: %s\n", err.msg);
        return 1;
    }
    const int H = xmci_bert_get_config(bert)->hidden;
    float *out = malloc((size_t)MAX_B * H * sizeof *out);

    /* cross-check output */
    make_batch(all, 32, 4, ids, lens);
    if (xmci_bert_forward(bert, ws, ids, NULL, 32, lens, 4, &err) || xmci_bert_pool(bert, ws, XMCI_BERT_POOL_MEAN, 0, out, &err)) {
        fprintf(stderr, "bert_bench: %s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/c_mean.txt", dir);
    f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    fprintf(f, "4 %d\n", H);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < H; i++) fprintf(f, "%.9g%c", out[(size_t)r * H + i], i == H - 1 ? '\n' : ' ');
    fclose(f);

    FILE *o = fopen(argv[2], "w");
    if (!o) { perror(argv[2]); return 1; }
    static const int points[][2] = {{32, 1}, {32, 32}, {128, 1}, {128, 32}};
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++) {
        int T = points[p][0], B = points[p][1];
        const char *only = getenv("BENCH_ONLY"); /* "SEQ,BATCH": one point, for profiling */
        if (only) {
            int oT, oB;
            if (sscanf(only, "%d,%d", &oT, &oB) == 2 && (oT != T || oB != B)) continue;
        }
        make_batch(all, T, B, ids, lens);
        int n = 0;
        double t0 = 0, el = 0;
        for (int it = -1;; it++) { /* pass -1 is the warm-up */
            if (it == 0) t0 = now();
            if (xmci_bert_forward(bert, ws, ids, NULL, T, lens, B, &err) ||
                xmci_bert_pool(bert, ws, XMCI_BERT_POOL_MEAN, 0, out, &err)) {
                fprintf(stderr, "bert_bench: %s\n", err.msg);
                return 1;
            }
            if (it < 0) continue;
            n++;
            el = now() - t0;
            if (el >= min_time && n >= 3) break;
        }
        fprintf(o, "%d %d %.1f %.2f\n", T, B, (double)n * B * T / el, (double)n * B / el);
    }
    if (argc == 5 && bench_tokenizer(argv[3], argv[4], o)) return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(o, "rss_kb %ld\n", ru.ru_maxrss);
    fclose(o);
    free(out);
    xmci_bert_workspace_free(ws);
    xmci_bert_free(bert);
    return 0;
}
