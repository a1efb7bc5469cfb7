/* bert_train_bench.c: the C side of bench/bert_train.sh: times one training step of the encoder per (seq, batch).
 *
 * usage: bert_train_bench DIR OUT. DIR as made by bert_torch.py gen (config.json, model.safetensors, ids.bin: 32 x
 * 128 int32 ids). A step = xmci_bert_train_forward (mean pooling) + loss sum(pooled o r) with a fixed r (so that
 * dL/dpooled = r, the same in the PyTorch run) + xmci_bert_train_backward + an AdamW step (torch form, wd 0.01)
 * over the whole encoder arena. BENCH_RECIPE=pecos: PECOS's step instead, the one `xmc train --xr-transformer`
 * runs (bert_opt.h): HF's AdamW without weight decay after clipping to global norm 1, the word-embedding table
 * zeroed, clipped and stepped by rows. Each point: one warm-up step, then steps until BENCH_MIN_TIME seconds (default 2)
 * and at least 2 steps. Writes one "seq batch tokens_per_s fwd_s bwd_s step_s" line per point (the last three:
 * mean seconds per step), then "arena_bytes params grads adam activations activation_grads" and "rss_kb N".
 * BENCH_POOLING=cls: the first token's hidden state instead of the mean (the last layer then runs on the first
 * tokens alone, xmci_bert_train_full_last_layer; BENCH_FULL_LAST=1 runs it over every token all the same).
 * With DIR/title_ids.bin and title_lens.bin (bert_train.sh: catalog titles, 32 x 128 ids, their lengths), one more
 * line "titles_packed B texts_per_s tokens": the titles' training step, packed.
 * Then the work and the machine's rate, so that a speed can be read against what the cores can do: per point
 * "flops T B C_FLOP full_FLOP" (the floating-point operations of one step's matrix products, as C runs it and with
 * every token of the last layer, as PyTorch's BertModel does; step_flops) and once "sgemm_gflops G" (sgemm_rate).
 * BENCH_ONLY_SEQ=T: only the point of sequence length T (32 or 128), for a profiler.
 * Threads: OPENBLAS_NUM_THREADS of the library's own for everything, OpenBLAS at one (BENCH_PRODUCTS=openblas:
 * the products on OpenBLAS's pool of that many, ours between them). */
#include <cblas.h> /* openblas_set_num_threads */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "adamw.h"
#include "bert.h"
#include "bert_opt.h"

#define MAX_B 32
#define MAX_T 128

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The floating-point operations (2 per multiply-add) of one training step's matrix products, B sequences of T
 * tokens: the linear layers and attention's two products (scores and context) per layer; backward is twice
 * forward (a product's two gradients; the attention's four). first_only: the last layer as C runs it under cls
 * pooling (keys and values of every token, the rest on the first tokens alone; layer_forward_first in bert.c).
 * The elementwise passes, softmax, LayerNorm and the optimiser are left out: the products are what the cores'
 * FMA units bound. */
static double step_flops(const xmci_bert_config *c, double B, double T, int first_only)
{
    const double d = c->hidden, f = c->intermediate, n = B * T;
    const double full = 2 * n * (4 * d * d + 2 * d * f) + 2 * 2 * B * T * T * d;
    const double first = 2 * n * 2 * d * d + 2 * B * (2 * d * d + 2 * d * f) + 2 * 2 * B * T * d;
    return 3 * ((c->layers - 1) * full + (first_only ? first : full));
}

/* The rate of sgemm on this machine as the step's products run: `threads` threads at once, each one
 * single-threaded OpenBLAS call after another on its share of `rows` tokens (the larger point's 4,096), in the
 * three layouts of a linear layer (forward y = x W^T, backward dx = dy W and dW = dy^T x) at the FFN's shape; the
 * best of 5 passes. 0 when its buffers cannot be had. */
typedef struct rate_arg {
    int rows, d, f;
    float *x, *w, *y;
} rate_arg;

static void *rate_worker(void *p)
{
    const rate_arg *a = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->rows, a->f, a->d, 1, a->x, a->d, a->w, a->d, 0, a->y, a->f);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->rows, a->d, a->f, 1, a->y, a->f, a->w, a->d, 0, a->x, a->d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, a->f, a->d, a->rows, 1, a->y, a->f, a->x, a->d, 0, a->w, a->d);
    return NULL;
}

static double sgemm_rate(int threads, int rows, int d, int f)
{
    enum { MAX_THREADS = 64 };
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    rate_arg a[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    const int share = rows / threads;
    double best = 0;
    int ok = 1;
    for (int t = 0; t < threads; t++) {
        a[t] = (rate_arg){share, d, f, calloc((size_t)share * d, sizeof(float)), calloc((size_t)f * d, sizeof(float)),
                          calloc((size_t)share * f, sizeof(float))};
        if (!a[t].x || !a[t].w || !a[t].y) {
            ok = 0;
            continue;
        }
        for (size_t i = 0; i < (size_t)share * d; i++) a[t].x[i] = (float)(i % 7) * 0.01f;
        for (size_t i = 0; i < (size_t)f * d; i++) a[t].w[i] = (float)(i % 5) * 0.01f;
    }
    for (int pass = 0; ok && pass < 5; pass++) {
        int started[MAX_THREADS] = {0};
        double t0 = now();
        for (int t = 1; t < threads; t++) started[t] = pthread_create(&th[t], NULL, rate_worker, &a[t]) == 0;
        for (int t = 0; t < threads; t++)
            if (!started[t]) rate_worker(&a[t]); /* the calling thread's share, and any a thread could not take */
        for (int t = 1; t < threads; t++)
            if (started[t]) pthread_join(th[t], NULL);
        double r = 3 * 2.0 * share * d * f * threads / (now() - t0) / 1e9;
        if (r > best) best = r;
    }
    for (int t = 0; t < threads; t++) free(a[t].x), free(a[t].w), free(a[t].y);
    return best;
}

/* The optimiser of a recipe: bo NULL for torch's (the whole arena, wd 0.01), else PECOS's through bo. */
typedef struct recipe {
    xmci_bert_opt *bo;
    xmci_adamw *opt;
} recipe;

/* Before the backward: the gradient zeroed (and, for PECOS's, the batch's table rows noted). */
static void step_zero(recipe *rc, xmci_bert_params *grads, const int32_t *ids, int T, const int *lens, int B)
{
    if (!rc->bo) {
        xmci_bert_params_zero(grads);
        return;
    }
    xmci_bert_opt_zero(rc->bo, grads);
    xmci_bert_opt_rows(rc->bo, ids, T, lens, B);
}

/* After it: clipping (PECOS's) and the AdamW step. */
static xmc_err step_update(recipe *rc, xmci_bert_params *params, xmci_bert_params *grads, xmc_error *err)
{
    xmci_adamw_next(rc->opt);
    if (!rc->bo) return xmci_adamw_update(rc->opt, 0, params->mem, grads->mem, params->n, 1e-4f, 0.01f, err);
    xmci_bert_opt_clip(rc->bo, grads, 1.0f);
    return xmci_bert_opt_update(rc->bo, rc->opt, params, grads, 1e-4f, 0, err);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bert_train_bench DIR OUT\n");
        return 2;
    }
    static const int points[2][2] = {{32, 32}, {128, 32}};
    const char *min_env = getenv("BENCH_MIN_TIME");
    const double min_time = min_env ? atof(min_env) : 2.0;
    xmc_error err = {0};
    xmci_bert *bert = NULL;
    xmci_bert_params *params = NULL, *grads = NULL;
    xmci_bert_train *train = NULL;
    xmci_adamw *opt = NULL;
    const char *recipe_env = getenv("BENCH_RECIPE");
    const int pecos = recipe_env && !strcmp(recipe_env, "pecos");
    recipe rc = {0};
    if (xmci_bert_load(argv[1], &bert, &err) || xmci_bert_params_copy(bert, &params, &err) ||
        xmci_bert_params_zeros_like(params, &grads, &err) || xmci_bert_train_new(params, MAX_B, MAX_T, &train, &err) ||
        xmci_adamw_new(params->n, pecos ? XMCI_ADAMW_HF : XMCI_ADAMW_TORCH, 0.9f, 0.999f, 1e-8f, &opt, &err) ||
        (pecos && xmci_bert_opt_new(params, MAX_B * MAX_T, 0, &rc.bo, &err))) {
        fprintf(stderr, "bert_train_bench: %s\n", err.msg);
        return 1;
    }
    /* The library's threads: as many as OPENBLAS_NUM_THREADS says, for AdamW, the attention, the elementwise
     * passes and, with OpenBLAS then set to one thread, the products (as `xmc train --xr-transformer` runs);
     * BENCH_PRODUCTS=openblas leaves the products to OpenBLAS's pool (the way before 2026-12-06). */
    const char *nt = getenv("OPENBLAS_NUM_THREADS"), *prod = getenv("BENCH_PRODUCTS");
    opt->threads = nt && atoi(nt) > 0 ? atoi(nt) : 1;
    if (!(prod && strcmp(prod, "openblas") == 0)) openblas_set_num_threads(1);
    if (xmci_bert_train_set_threads(train, opt->threads, &err)) {
        fprintf(stderr, "bert_train_bench: %s\n", err.msg);
        return 1;
    }
    opt->pool = xmci_bert_train_pool(train); /* the optimiser on the same threads, as xrt.c runs it */
    rc.opt = opt;
    const char *pool_env = getenv("BENCH_POOLING"), *full_env = getenv("BENCH_FULL_LAST");
    const xmci_bert_pooling pooling = pool_env && !strcmp(pool_env, "cls") ? XMCI_BERT_POOL_CLS : XMCI_BERT_POOL_MEAN;
    const int full_last = full_env && atoi(full_env) == 1;
    xmci_bert_train_full_last_layer(train, full_last);
    xmci_bert_free(bert); /* the parameters are a copy: the mapping is not needed any more */
    char path[4096];
    snprintf(path, sizeof path, "%s/ids.bin", argv[1]);
    FILE *f = fopen(path, "rb");
    int32_t *all = malloc((size_t)MAX_B * MAX_T * sizeof *all), *ids = malloc((size_t)MAX_B * MAX_T * sizeof *ids);
    if (!f || fread(all, sizeof *all, (size_t)MAX_B * MAX_T, f) != (size_t)MAX_B * MAX_T) {
        fprintf(stderr, "bert_train_bench: cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    const int H = params->cfg.hidden;
    float *pooled = malloc((size_t)MAX_B * H * sizeof *pooled), *r = malloc((size_t)MAX_B * H * sizeof *r);
    for (int i = 0; i < MAX_B * H; i++) r[i] = (float)((i * 7919) % 2001 - 1000) * 1e-6f; /* same r in bert_train_torch.py */
    FILE *o = fopen(argv[2], "w");
    if (!o) { perror(argv[2]); return 1; }
    const char *only_env = getenv("BENCH_ONLY_SEQ"); /* one point alone, for a profiler */
    for (int pi = 0; pi < 2; pi++) {
        const int T = points[pi][0], B = points[pi][1];
        if (only_env && atoi(only_env) != T) continue;
        int lens[MAX_B];
        for (int b = 0; b < B; b++) {
            memcpy(ids + (size_t)b * T, all + (size_t)b * MAX_T, (size_t)T * sizeof *ids);
            ids[(size_t)b * T] = 101, ids[(size_t)b * T + T - 1] = 102, lens[b] = T;
        }
        double tf = 0, tb = 0, ts = 0, t0 = 0;
        int n = -1; /* step -1 is the warm-up */
        for (;;) {
            if (n == 0) t0 = now(), tf = tb = ts = 0;
            double a = now();
            if (xmci_bert_train_forward(params, train, ids, NULL, T, lens, B, pooling, pooled, &err)) break;
            double b1 = now();
            step_zero(&rc, grads, ids, T, lens, B);
            if (xmci_bert_train_backward(params, train, r, grads, &err)) break;
            double b2 = now();
            if (step_update(&rc, params, grads, &err)) break;
            double b3 = now();
            tf += b1 - a, tb += b2 - b1, ts += b3 - b2;
            n++;
            if (n >= 2 && now() - t0 >= min_time) break;
        }
        if (err.code) { fprintf(stderr, "bert_train_bench: %s\n", err.msg); return 1; }
        double el = now() - t0;
        fprintf(o, "%d %d %.1f %.4f %.4f %.4f\n", T, B, n * (double)B * T / el, tf / n, tb / n, ts / n);
        fprintf(o, "flops %d %d %.0f %.0f\n", T, B,
                step_flops(&params->cfg, B, T, pooling == XMCI_BERT_POOL_CLS && !full_last),
                step_flops(&params->cfg, B, T, 0));
        fflush(o);
    }
    /* catalog titles (DIR/title_ids.bin, title_lens.bin from bert_train.sh): packed, as the library runs them */
    snprintf(path, sizeof path, "%s/title_lens.bin", argv[1]);
    FILE *tl = fopen(path, "rb");
    if (tl) {
        int tlens[MAX_B];
        const int B = (int)fread(tlens, sizeof *tlens, MAX_B, tl);
        fclose(tl);
        snprintf(path, sizeof path, "%s/title_ids.bin", argv[1]);
        FILE *ti = fopen(path, "rb");
        if (!ti || B < 1 || fread(ids, sizeof *ids, (size_t)B * MAX_T, ti) != (size_t)B * MAX_T) {
            fprintf(stderr, "bert_train_bench: cannot read the titles in %s\n", argv[1]);
            return 1;
        }
        fclose(ti);
        long tokens = 0;
        for (int b = 0; b < B; b++) tokens += tlens[b];
        double t0 = 0;
        int n = -1;
        for (;;) {
            if (n == 0) t0 = now();
            if (xmci_bert_train_forward(params, train, ids, NULL, MAX_T, tlens, B, pooling, pooled, &err)) break;
            step_zero(&rc, grads, ids, MAX_T, tlens, B);
            if (xmci_bert_train_backward(params, train, r, grads, &err) || step_update(&rc, params, grads, &err))
                break;
            n++;
            if (n >= 2 && now() - t0 >= min_time) break;
        }
        if (err.code) { fprintf(stderr, "bert_train_bench: %s\n", err.msg); return 1; }
        fprintf(o, "titles_packed %d %.1f %ld\n", B, n * (double)B / (now() - t0), tokens);
    }
    openblas_set_num_threads(1); /* BENCH_PRODUCTS=openblas set it to the threads: the probe's calls are one each */
    fprintf(o, "sgemm_gflops %.1f\n", sgemm_rate(opt->threads, MAX_B * MAX_T, params->cfg.hidden, params->cfg.intermediate));
    size_t act, agrad;
    xmci_bert_train_bytes(train, &act, &agrad);
    fprintf(o, "arena_bytes %zu %zu %zu %zu %zu\n", params->n * sizeof(float), grads->n * sizeof(float),
            2 * opt->n * sizeof(float), act, agrad);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(o, "rss_kb %ld\n", ru.ru_maxrss);
    fclose(o);
    xmci_adamw_free(opt);
    xmci_bert_opt_free(rc.bo);
    xmci_bert_train_free(train);
    xmci_bert_params_free(params);
    xmci_bert_params_free(grads);
    free(all), free(ids), free(pooled), free(r);
    return 0;
}
