/* test_bert_train.c: the encoder's backward pass, the XMC head's loss and one AdamW / PECOS-style step against
 * PyTorch's references, and a finite-difference check of every parameter group.
 *
 * References: tests/data/bert-train-small (a small random BERT, made by tests/tools/make_bert_train_small.py).
 * The same checks run on the full reference set (shared/data/bert-train-refs on bert-random-l2) when
 * XMC_TRAIN_REFS and XMC_TRAIN_MODEL name those directories: `make bench` does that (bench/bert_train.sh).
 * Tolerances are those of the references' README: loss 1e-5 relative; d_scores, d_pooled, d_hidden 1e-6
 * absolute; a parameter gradient |g - ref| <= 1e-5 max|ref| + 1e-7 per tensor, key biases |g| <= 1e-6; after
 * one step 1e-6 where |g_ref| >= 1e-6, else 1.1e-4 (Adam's first step moves a noise-sized gradient by ~lr).
 * Each check prints its largest difference (llm.c test_gpt2 style). */
#include <cblas.h> /* openblas_set_num_threads */
#undef I              /* <complex.h>'s, from OpenBLAS's config header */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adamw.h"
#include "bert.h"
#include "head.h"
#include "parallel.h"
#include "safetensors.h"
#include "xmc/rng.h"
#include "testutil.h"
#include "xmc/xmc.h"

static const char *refs_dir(void)
{
    const char *d = getenv("XMC_TRAIN_REFS");
    return d && *d ? d : "tests/data/bert-train-small";
}

static const char *model_dir(void)
{
    const char *d = getenv("XMC_TRAIN_MODEL");
    return d && *d ? d : refs_dir();
}

static const char *ref_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", refs_dir(), name);
    return buf;
}

/* smat text: "ROWS COLS" then one line per row of "col:value" pairs, order kept. */
static int read_smat(const char *name, xmci_csr *m)
{
    FILE *f = fopen(ref_path(name), "r");
    if (!f) return -1;
    unsigned rows, cols;
    int rc = -1;
    char line[65536];
    if (fscanf(f, "%u %u", &rows, &cols) == 2 && fgets(line, sizeof line, f)) {
        memset(m, 0, sizeof *m);
        m->rows = rows, m->cols = cols;
        m->indptr = calloc(rows + 1, sizeof *m->indptr);
        size_t cap = 4096;
        m->indices = malloc(cap * sizeof *m->indices);
        m->data = malloc(cap * sizeof *m->data);
        uint64_t nnz = 0;
        rc = 0;
        for (unsigned r = 0; r < rows && !rc; r++) {
            if (!fgets(line, sizeof line, f)) { rc = -1; break; }
            char *p = line;
            unsigned c;
            float v;
            int used;
            while (sscanf(p, " %u:%f%n", &c, &v, &used) == 2 && nnz < cap) {
                m->indices[nnz] = c, m->data[nnz] = v, nnz++;
                p += used;
            }
            m->indptr[r + 1] = nnz;
        }
    }
    fclose(f);
    return rc;
}

static void free_csr(xmci_csr *m)
{
    free(m->indptr);
    free(m->indices);
    free(m->data);
}

/* A fixed pseudo-random sequence (Knuth's MMIX LCG), for directions and test values. */
static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

/* ---- the batch ------------------------------------------------------------------------------------------------ */

typedef struct batch {
    int B, T, *lens;
    int32_t *ids;
    int width;
    int n_unique, *unique; /* token ids of the batch, sorted (the .rows of word-embedding references) */
} batch;

static int load_batch(batch *b)
{
    int r1, c1, r2, c2;
    float *ids = tu_read_dense(ref_path("ids.txt"), &r1, &c1), *mask = tu_read_dense(ref_path("mask.txt"), &r2, &c2);
    json_error_t jerr;
    json_t *in = json_load_file(ref_path("inputs.json"), 0, &jerr);
    int ok = ids && mask && in && r1 == r2 && c1 == c2;
    if (ok) {
        b->B = r1, b->T = c1;
        b->lens = calloc((size_t)r1, sizeof *b->lens);
        b->ids = calloc((size_t)r1 * c1, sizeof *b->ids);
        for (int i = 0; i < r1 * c1; i++) {
            b->ids[i] = (int32_t)ids[i];
            if (mask[i] > 0) b->lens[i / c1]++;
        }
        b->width = (int)json_integer_value(json_object_get(in, "label_width"));
        json_t *u = json_object_get(in, "unique_ids");
        b->n_unique = (int)json_array_size(u);
        b->unique = calloc((size_t)b->n_unique + 1, sizeof *b->unique);
        for (int i = 0; i < b->n_unique; i++) b->unique[i] = (int)json_integer_value(json_array_get(u, (size_t)i));
    }
    free(ids);
    free(mask);
    json_decref(in);
    return ok ? 0 : -1;
}

static void free_batch(batch *b)
{
    free(b->lens);
    free(b->ids);
    free(b->unique);
}

static double loss_ref(const char *variant)
{
    json_error_t jerr;
    json_t *l = json_load_file(ref_path("loss.json"), 0, &jerr);
    double v = json_real_value(json_object_get(json_object_get(l, variant), "loss_float64"));
    json_decref(l);
    return v;
}

/* ---- one model + head, forward and backward ---------------------------------------------------------------------- */

typedef struct fixture {
    xmci_bert *bert;
    xmci_bert_params *params, *grads;
    xmci_bert_train *train;
    xmci_head head;
    float *dw, *db;
    batch b;
    float *pooled, *d_pooled;
} fixture;

/* 0: the scalar kernels (libm erff, expf) instead of the AVX2+FMA ones, for test_backward_scalar_kernels */
static int use_simd = 1;
/* 1: the last layer over every token with cls and pooler pooling too, for test_backward_full_last_layer */
static int full_last = 0;

static int fixture_open(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    xmc_error err = {0};
    if (load_batch(&fx->b)) return -1;
    if (xmci_bert_load(model_dir(), &fx->bert, &err) || xmci_bert_params_copy(fx->bert, &fx->params, &err) ||
        xmci_bert_params_zeros_like(fx->params, &fx->grads, &err) ||
        xmci_bert_train_new(fx->params, fx->b.B, fx->b.T, &fx->train, &err)) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    xmci_bert_train_use_simd(fx->train, use_simd);
    xmci_bert_train_full_last_layer(fx->train, full_last);
    xmci_safetensors *st;
    if (xmci_safetensors_open(ref_path("head_init.safetensors"), &st, &err)) return -1;
    const int H = fx->params->cfg.hidden;
    int64_t ws[2] = {64, H}, bs[1] = {64};
    const float *w, *bb;
    int rc = xmci_safetensors_f32(st, "head.weight", 2, ws, &w, &err) || xmci_safetensors_f32(st, "head.bias", 1, bs, &bb, &err);
    if (!rc) {
        fx->head.labels = 64, fx->head.hidden = H;
        fx->head.w = malloc(64 * (size_t)H * sizeof(float));
        fx->head.b = malloc(64 * sizeof(float));
        memcpy(fx->head.w, w, 64 * (size_t)H * sizeof(float));
        memcpy(fx->head.b, bb, 64 * sizeof(float));
        fx->dw = calloc(64 * (size_t)H, sizeof(float));
        fx->db = calloc(64, sizeof(float));
    }
    xmci_safetensors_close(st);
    fx->pooled = calloc((size_t)fx->b.B * H, sizeof(float));
    fx->d_pooled = calloc((size_t)fx->b.B * H, sizeof(float));
    return rc ? -1 : 0;
}

static void fixture_close(fixture *fx)
{
    xmci_bert_train_free(fx->train);
    xmci_bert_params_free(fx->params);
    xmci_bert_params_free(fx->grads);
    xmci_bert_free(fx->bert);
    free(fx->head.w);
    free(fx->head.b);
    free(fx->dw);
    free(fx->db);
    free(fx->pooled);
    free(fx->d_pooled);
    free_batch(&fx->b);
}

typedef struct variant {
    const char *name;
    xmci_bert_pooling pooling;
    int weighted;
} variant;

static const variant VARIANTS[4] = {{"cls", XMCI_BERT_POOL_CLS, 0},
                                    {"pooler", XMCI_BERT_POOL_POOLER, 0},
                                    {"mean", XMCI_BERT_POOL_MEAN, 0},
                                    {"pooler_weighted", XMCI_BERT_POOL_POOLER, 1}};

/* Forward, loss and (when backward) the gradients of the whole model into fx->grads, fx->dw, fx->db. */
static int run(fixture *fx, const variant *v, const xmci_csr *active, int backward, double *loss, float *scores,
               float *d_scores)
{
    xmc_error err = {0};
    if (xmci_bert_train_forward(fx->params, fx->train, fx->b.ids, NULL, fx->b.T, fx->b.lens, fx->b.B, v->pooling,
                               fx->pooled, &err) ||
        xmci_head_loss(&fx->head, fx->pooled, active, fx->b.width, v->weighted, loss, scores, d_scores,
                      backward ? fx->d_pooled : NULL, backward ? fx->dw : NULL, backward ? fx->db : NULL, &err) ||
        (backward && xmci_bert_train_backward(fx->params, fx->train, fx->d_pooled, fx->grads, &err))) {
        fprintf(stderr, "run %s: %s\n", v->name, err.msg);
        return -1;
    }
    return 0;
}

static void zero_grads(fixture *fx)
{
    xmci_bert_params_zero(fx->grads);
    memset(fx->dw, 0, 64 * (size_t)fx->head.hidden * sizeof(float));
    memset(fx->db, 0, 64 * sizeof(float));
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* The C gradient (or parameter) of a reference tensor name: encoder tensors from arena, head from fx. */
static float *tensor_of(fixture *fx, xmci_bert_params *arena, const char *name, float *hw, float *hb, size_t *n)
{
    const int H = fx->head.hidden;
    if (!strcmp(name, "head.weight")) return *n = 64 * (size_t)H, hw;
    if (!strcmp(name, "head.bias")) return *n = 64, hb;
    const xmci_bert_tensor *t = xmci_bert_params_find(arena, name);
    if (!t) return NULL;
    *n = xmci_bert_tensor_size(t);
    return arena->mem + t->offset;
}

/* Reference tensor name (or name.rows for the word embeddings), rows expanded to the full shape. */
static float *ref_tensor(xmci_safetensors *st, fixture *fx, const char *name, size_t n)
{
    const int H = fx->head.hidden;
    int64_t shape[2];
    const float *data;
    float *full = calloc(n, sizeof *full);
    char rows_name[128];
    snprintf(rows_name, sizeof rows_name, "%s.rows", name);
    if (xmci_safetensors_has(st, rows_name)) {
        shape[0] = fx->b.n_unique, shape[1] = H;
        if (xmci_safetensors_f32(st, rows_name, 2, shape, &data, NULL)) { free(full); return NULL; }
        for (int i = 0; i < fx->b.n_unique; i++) memcpy(full + (size_t)fx->b.unique[i] * H, data + (size_t)i * H, (size_t)H * sizeof(float));
        return full;
    }
    const xmci_bert_tensor *t = xmci_bert_params_find(fx->params, name);
    int nd = 1;
    if (t) shape[0] = t->rows, shape[1] = t->cols, nd = t->cols ? 2 : 1;
    else if (!strcmp(name, "head.weight")) shape[0] = 64, shape[1] = H, nd = 2;
    else shape[0] = 64;
    if (xmci_safetensors_f32(st, name, nd, shape, &data, NULL)) { free(full); return NULL; }
    memcpy(full, data, n * sizeof(float));
    return full;
}

/* Tolerance of a parameter gradient whose reference has largest entry scale; -1 for the key biases, whose
 * gradient is 0 in exact arithmetic and is checked as |g| <= 1e-6. */
static double grad_tol(double scale, const char *name)
{
    if (strstr(name, "attention.self.key.bias")) return -1;
    return 1e-5 * scale + 1e-7;
}

/* ---- the reference checks -------------------------------------------------------------------------------------- */

static void check_variant(const variant *v)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    const int H = fx.head.hidden, B = fx.b.B, T = fx.b.T;
    xmci_csr active;
    CU_ASSERT_FATAL(read_smat(v->weighted ? "active_weighted.txt" : "active.txt", &active) == 0);
    size_t nnz = active.indptr[active.rows];
    float *scores = calloc(nnz, sizeof *scores), *d_scores = calloc(nnz, sizeof *d_scores);
    double loss;
    CU_ASSERT_FATAL(run(&fx, v, &active, 1, &loss, scores, d_scores) == 0);
    char name[128];
    int r, c;

    /* loss, scores, d_scores, pooled, d_pooled */
    double lref = loss_ref(v->name), lrel = fabs(loss - lref) / fabs(lref);
    snprintf(name, sizeof name, "scores_%s.txt", v->name);
    float *sref = tu_read_dense(ref_path(name), &r, &c);
    snprintf(name, sizeof name, "d_scores_%s.txt", v->name);
    float *dsref = tu_read_dense(ref_path(name), &r, &c);
    CU_ASSERT_FATAL(sref && dsref && r == B && c == 64);
    double ds_max = 0, s_max = 0;
    for (int i = 0; i < B; i++)
        for (uint64_t e = active.indptr[i]; e < active.indptr[i + 1]; e++) {
            s_max = fmax(s_max, fabs(scores[e] - sref[i * 64 + active.indices[e]]));
            ds_max = fmax(ds_max, fabs(d_scores[e] - dsref[i * 64 + active.indices[e]]));
        }
    snprintf(name, sizeof name, "pooled_%s.txt", v->name);
    float *pref = tu_read_dense(ref_path(name), &r, &c);
    snprintf(name, sizeof name, "d_pooled_%s.txt", v->name);
    float *dpref = tu_read_dense(ref_path(name), &r, &c);
    CU_ASSERT_FATAL(pref && dpref && r == B && c == H);
    double p_max = max_abs_diff(fx.pooled, pref, (size_t)B * H), dp_max = max_abs_diff(fx.d_pooled, dpref, (size_t)B * H);

    /* hidden state and its gradient, packed here, padded there (the padded rows' gradient must be 0); the last
     * layer ran on the first tokens alone with cls and pooler pooling (unless full_last): their rows only */
    const int first_only = v->pooling != XMCI_BERT_POOL_MEAN && !full_last;
    float *href = tu_read_dense(ref_path("hidden.txt"), &r, &c);
    snprintf(name, sizeof name, "d_hidden_%s.txt", v->name);
    float *dhref = tu_read_dense(ref_path(name), &r, &c);
    CU_ASSERT_FATAL(href && dhref && r == B * T && c == H);
    double h_max = 0, dh_max = 0;
    for (int i = 0; i < B; i++) {
        const float *h = xmci_bert_train_hidden(fx.train, i), *dh = xmci_bert_train_d_hidden(fx.train, i);
        CU_ASSERT_FATAL(h && dh);
        h_max = fmax(h_max, max_abs_diff(h, href + (size_t)i * T * H, (size_t)(first_only ? 1 : fx.b.lens[i]) * H));
        dh_max = fmax(dh_max, max_abs_diff(dh, dhref + (size_t)i * T * H, (size_t)fx.b.lens[i] * H));
        for (size_t k = (size_t)fx.b.lens[i] * H; k < (size_t)T * H; k++)
            dh_max = fmax(dh_max, fabs(dhref[(size_t)i * T * H + k]));
    }
    printf("\n  %-16s%s loss %.10f (ref %.10f, rel %.2g)  scores %.2g  d_scores %.2g  pooled %.2g  d_pooled %.2g  "
           "hidden %.2g  d_hidden %.2g\n", v->name, first_only ? " (last layer on the first tokens)" : "", loss, lref, lrel, s_max, ds_max, p_max, dp_max, h_max, dh_max);
    CU_ASSERT(lrel <= 1e-5);
    CU_ASSERT(s_max <= 2e-5);
    CU_ASSERT(p_max <= 2e-5 && h_max <= 2e-5);
    CU_ASSERT(ds_max <= 1e-6 && dp_max <= 1e-6 && dh_max <= 1e-6);

    /* the gradient of every tensor */
    snprintf(name, sizeof name, "grads_%s.safetensors", v->name);
    xmci_safetensors *st;
    xmc_error err = {0};
    CU_ASSERT_FATAL(xmci_safetensors_open(ref_path(name), &st, &err) == XMC_OK);
    int bad = 0, checked = 0;
    double worst_rel = 0, key_bias = 0;
    const char *worst = "";
    for (int t = -2; t < fx.params->n_tensors; t++) {
        const char *tn = t == -2 ? "head.weight" : t == -1 ? "head.bias" : fx.params->tensor[t].name;
        size_t n;
        float *g = tensor_of(&fx, fx.grads, tn, fx.dw, fx.db, &n);
        float *gr = ref_tensor(st, &fx, tn, n);
        CU_ASSERT_FATAL(g != NULL);
        if (!gr) {
            printf("  no reference gradient for %s\n", tn);
            bad++;
            continue;
        }
        double scale = 0, d = 0;
        for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(gr[i]));
        if (grad_tol(scale, tn) < 0) {
            for (size_t i = 0; i < n; i++) key_bias = fmax(key_bias, fabs(g[i]));
            if (key_bias > 1e-6) bad++;
        } else {
            d = max_abs_diff(g, gr, n);
            if (!(d <= grad_tol(scale, tn))) {
                printf("  %s: max |g - ref| %.3g, max |ref| %.3g\n", tn, d, scale);
                bad++;
            }
            if (scale > 0 && d / scale > worst_rel) worst_rel = d / scale, worst = tn;
        }
        checked++;
        free(gr);
    }
    /* the word-embedding gradient: zero on every row not in the batch and on [PAD] (only at padded slots) */
    const xmci_bert_tensor *we = xmci_bert_params_find(fx.grads, "embeddings.word_embeddings.weight");
    double outside = 0;
    for (int row = 0; row < we->rows; row++) {
        int in_batch = 0;
        for (int i = 0; i < fx.b.n_unique; i++) in_batch |= fx.b.unique[i] == row && row != 0;
        if (in_batch) continue;
        for (int i = 0; i < H; i++) outside = fmax(outside, fabs(fx.grads->mem[we->offset + (size_t)row * H + i]));
    }
    printf("  %-16s gradients: %d tensors, worst rel %.2g (%s), key biases max |g| %.2g, word rows outside the "
           "batch %.2g\n", v->name, checked, worst_rel, worst, key_bias, outside);
    CU_ASSERT(bad == 0);
    CU_ASSERT(checked == fx.params->n_tensors + 2);
    CU_ASSERT(outside == 0);
    xmci_safetensors_close(st);
    free(sref), free(dsref), free(pref), free(dpref), free(href), free(dhref);
    free(scores), free(d_scores);
    free_csr(&active);
    fixture_close(&fx);
}

static void test_backward_cls(void) { check_variant(&VARIANTS[0]); }
static void test_backward_pooler(void) { check_variant(&VARIANTS[1]); }
static void test_backward_mean(void) { check_variant(&VARIANTS[2]); }
static void test_backward_pooler_weighted(void) { check_variant(&VARIANTS[3]); }

/* The reference checks with the whole last layer computed, every token's hidden state checked (the default runs
 * it on the first tokens alone with cls and pooler pooling: the same loss and gradients, checked above). */
static void test_backward_full_last_layer(void)
{
    full_last = 1;
    printf("\n  (the last layer over every token)");
    check_variant(&VARIANTS[0]);
    check_variant(&VARIANTS[1]);
    full_last = 0;
}

static void test_backward_scalar_kernels(void)
{
    use_simd = 0;
    printf("\n  (scalar kernels)");
    for (int i = 0; i < 4; i++) check_variant(&VARIANTS[i]);
    use_simd = 1;
}

/* Parameters after one step against the reference file; g_ref decides the tolerance per entry. */
static int check_step(fixture *fx, const char *after_name, const char *grads_name, const char *label)
{
    xmci_safetensors *st, *gst;
    xmc_error err = {0};
    if (xmci_safetensors_open(ref_path(after_name), &st, &err) || xmci_safetensors_open(ref_path(grads_name), &gst, &err))
        return -1;
    int bad = 0;
    double worst_big = 0, worst_small = 0;
    for (int t = -2; t < fx->params->n_tensors; t++) {
        const char *tn = t == -2 ? "head.weight" : t == -1 ? "head.bias" : fx->params->tensor[t].name;
        size_t n;
        float *p = tensor_of(fx, fx->params, tn, fx->head.w, fx->head.b, &n);
        float *pr = ref_tensor(st, fx, tn, n), *gr = ref_tensor(gst, fx, tn, n);
        if (!pr || !gr) {
            bad++;
            free(pr), free(gr);
            continue;
        }
        char rows_name[128];
        snprintf(rows_name, sizeof rows_name, "%s.rows", tn);
        int rows_only = xmci_safetensors_has(st, rows_name);
        const int H = fx->head.hidden;
        for (size_t i = 0; i < n; i++) {
            if (rows_only) { /* rows outside the batch are not stored: they must be unchanged (g = 0, wd = 0) */
                int row = (int)(i / (size_t)H), in = 0;
                for (int k = 0; k < fx->b.n_unique; k++) in |= fx->b.unique[k] == row;
                if (!in) continue;
            }
            double d = fabs((double)p[i] - pr[i]);
            if (fabs(gr[i]) >= 1e-6) {
                worst_big = fmax(worst_big, d);
                if (!(d <= 1e-6)) bad++;
            } else {
                worst_small = fmax(worst_small, d);
                if (!(d <= 1.1e-4)) bad++;
            }
        }
        free(pr), free(gr);
    }
    printf("\n  %s: max |p - ref| %.2g where |g_ref| >= 1e-6, %.2g elsewhere; %d entries out of tolerance\n", label,
           worst_big, worst_small, bad);
    xmci_safetensors_close(st);
    xmci_safetensors_close(gst);
    return bad;
}

/* One torch.optim.AdamW step (lr 1e-4, wd 0.01 on every tensor) from our own cls gradients. */
static void test_adamw_step_cls(void)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    xmci_csr active;
    CU_ASSERT_FATAL(read_smat("active.txt", &active) == 0);
    double loss;
    CU_ASSERT_FATAL(run(&fx, &VARIANTS[0], &active, 1, &loss, NULL, NULL) == 0);
    xmci_adamw *enc, *head;
    xmc_error err = {0};
    const size_t hw = 64 * (size_t)fx.head.hidden;
    CU_ASSERT_FATAL(xmci_adamw_new(fx.params->n, XMCI_ADAMW_TORCH, 0.9f, 0.999f, 1e-8f, &enc, &err) == XMC_OK);
    CU_ASSERT_FATAL(xmci_adamw_new(hw + 64, XMCI_ADAMW_TORCH, 0.9f, 0.999f, 1e-8f, &head, &err) == XMC_OK);
    xmci_adamw_next(enc);
    xmci_adamw_next(head);
    CU_ASSERT(xmci_adamw_update(enc, 0, fx.params->mem, fx.grads->mem, fx.params->n, 1e-4f, 0.01f, &err) == XMC_OK);
    CU_ASSERT(xmci_adamw_update(head, 0, fx.head.w, fx.dw, hw, 1e-4f, 0.01f, &err) == XMC_OK);
    CU_ASSERT(xmci_adamw_update(head, hw, fx.head.b, fx.db, 64, 1e-4f, 0.01f, &err) == XMC_OK);
    CU_ASSERT(check_step(&fx, "params_after_adamw_cls.safetensors", "grads_cls.safetensors", "AdamW step (cls)") == 0);
    xmci_adamw_free(enc);
    xmci_adamw_free(head);
    free_csr(&active);
    fixture_close(&fx);
}

/* PECOS's step: encoder and head gradients clipped to norm 1 separately, then transformers.AdamW, wd 0; the
 * head through the row-lazy update on its active rows (what SparseAdam does; equal at step 1). */
static void test_pecos_step_pooler(void)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    xmci_csr active;
    CU_ASSERT_FATAL(read_smat("active.txt", &active) == 0);
    double loss;
    CU_ASSERT_FATAL(run(&fx, &VARIANTS[1], &active, 1, &loss, NULL, NULL) == 0);
    json_error_t jerr;
    json_t *cross = json_load_file(ref_path("crosscheck.json"), 0, &jerr);
    json_t *ps = json_object_get(cross, "pecos_step_pooler");
    const int H = fx.head.hidden;
    const size_t hw = 64 * (size_t)H;
    float enc_coef, head_coef;
    float *enc_buf[1] = {fx.grads->mem}, *head_buf[2] = {fx.dw, fx.db};
    size_t enc_len[1] = {fx.grads->n}, head_len[2] = {hw, 64};
    double enc_norm = xmci_clip_grad_norm(enc_buf, enc_len, 1, 1.0f, &enc_coef);
    double head_norm = xmci_clip_grad_norm(head_buf, head_len, 2, 1.0f, &head_coef);
    double enc_ref = json_real_value(json_object_get(ps, "encoder_grad_norm")),
           head_ref = json_real_value(json_object_get(ps, "head_grad_norm"));
    printf("\n  norms: encoder %.7g (ref %.7g) coef %.6g, head %.7g (ref %.7g) coef %.6g\n", enc_norm, enc_ref,
           (double)enc_coef, head_norm, head_ref, (double)head_coef);
    CU_ASSERT(fabs(enc_norm - enc_ref) <= 1e-5 * enc_ref);
    CU_ASSERT(fabs(head_norm - head_ref) <= 1e-5 * head_ref);
    CU_ASSERT(fabs(enc_coef - json_real_value(json_object_get(ps, "encoder_clip_coef"))) <= 1e-5);
    CU_ASSERT(fabs(head_coef - json_real_value(json_object_get(ps, "head_clip_coef"))) <= 1e-5);
    json_decref(cross);

    xmci_adamw *enc, *hw_opt, *hb_opt;
    xmc_error err = {0};
    CU_ASSERT_FATAL(xmci_adamw_new(fx.params->n, XMCI_ADAMW_HF, 0.9f, 0.999f, 1e-8f, &enc, &err) == XMC_OK);
    CU_ASSERT_FATAL(xmci_adamw_new(hw, XMCI_ADAMW_HF, 0.9f, 0.999f, 1e-8f, &hw_opt, &err) == XMC_OK);
    CU_ASSERT_FATAL(xmci_adamw_new(64, XMCI_ADAMW_HF, 0.9f, 0.999f, 1e-8f, &hb_opt, &err) == XMC_OK);
    xmci_adamw_next(enc), xmci_adamw_next(hw_opt), xmci_adamw_next(hb_opt);
    CU_ASSERT(xmci_adamw_update(enc, 0, fx.params->mem, fx.grads->mem, fx.params->n, 1e-4f, 0.0f, &err) == XMC_OK);
    /* the head's touched rows: the union of the active sets */
    uint32_t rows[64];
    size_t nrows = 0;
    int seen[64] = {0};
    for (uint64_t e = 0; e < active.indptr[active.rows]; e++)
        if (!seen[active.indices[e]]) seen[active.indices[e]] = 1, rows[nrows++] = active.indices[e];
    CU_ASSERT(xmci_adamw_update_rows(hw_opt, 0, fx.head.w, fx.dw, (size_t)H, rows, nrows, 1e-4f, 0.0f, &err) == XMC_OK);
    CU_ASSERT(xmci_adamw_update_rows(hb_opt, 0, fx.head.b, fx.db, 1, rows, nrows, 1e-4f, 0.0f, &err) == XMC_OK);
    CU_ASSERT(check_step(&fx, "params_after_pecos_step_pooler.safetensors", "grads_pooler.safetensors",
                         "PECOS step (pooler)") == 0);
    xmci_adamw_free(enc), xmci_adamw_free(hw_opt), xmci_adamw_free(hb_opt);
    free_csr(&active);
    fixture_close(&fx);
}

/* Three steps of both forms with weight decay against the formulas written out in double (the references
 * cover step 1 only, and the HF form there with wd 0): from step 2 on the forms differ, by eps's place and by
 * when the decay is applied. Also the lazy row update leaves the other rows and their moments alone. */
static void test_adamw_three_steps(void)
{
    enum { N = 64 };
    const double lr = 1e-2, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-3; /* eps large enough to matter */
    for (int kind = 0; kind < 2; kind++) {
        xmci_adamw *opt;
        xmc_error err = {0};
        CU_ASSERT_FATAL(xmci_adamw_new(N, kind ? XMCI_ADAMW_HF : XMCI_ADAMW_TORCH, (float)b1, (float)b2, (float)eps, &opt,
                                      &err) == XMC_OK);
        float p[N], g[N];
        double pd[N], m[N] = {0}, v[N] = {0};
        uint64_t seed = 7;
        for (int i = 0; i < N; i++) pd[i] = p[i] = (float)((double)(lcg(&seed) % 2001) / 1000.0 - 1.0);
        double worst = 0, moved = 0;
        for (int t = 1; t <= 3; t++) {
            for (int i = 0; i < N; i++) g[i] = (float)((double)(lcg(&seed) % 2001) / 1e5 - 0.01);
            xmci_adamw_next(opt);
            CU_ASSERT(xmci_adamw_update(opt, 0, p, g, N, (float)lr, (float)wd, &err) == XMC_OK);
            const double c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t);
            for (int i = 0; i < N; i++) {
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
                double before = pd[i];
                if (kind == 0) {
                    pd[i] *= 1 - lr * wd;
                    pd[i] -= lr / c1 * m[i] / (sqrt(v[i]) / sqrt(c2) + eps);
                } else {
                    pd[i] -= lr * sqrt(c2) / c1 * m[i] / (sqrt(v[i]) + eps);
                    pd[i] -= lr * wd * pd[i];
                }
                moved = fmax(moved, fabs(pd[i] - before));
                worst = fmax(worst, fabs(p[i] - pd[i]));
            }
        }
        printf("\n  AdamW %s, 3 steps with wd: max |p - double formula| %.2g (steps move up to %.2g)",
               kind ? "HF" : "torch", worst, moved);
        CU_ASSERT(worst <= 5e-7); /* float32 rounding of p near 1; the two forms differ by ~1e-5 here */
        /* rows 1 and 3 of a 4 x 16 matrix: rows 0 and 2 keep their values and zero moments */
        float before[N];
        memcpy(before, p, sizeof p);
        uint32_t rows[2] = {1, 3};
        xmci_adamw_next(opt);
        CU_ASSERT(xmci_adamw_update_rows(opt, 0, p, g, 16, rows, 2, (float)lr, (float)wd, &err) == XMC_OK);
        int others_same = 1, touched_moved = 1;
        for (int i = 0; i < N; i++) {
            int row = i / 16;
            if (row == 0 || row == 2) others_same &= p[i] == before[i];
            else touched_moved &= p[i] != before[i];
        }
        CU_ASSERT(others_same && touched_moved);
        xmci_adamw_free(opt);
    }
    printf("\n");
}

/* ---- finite differences ----------------------------------------------------------------------------------------- */

/* For every parameter tensor (and the head), along a random direction u over the whole tensor:
 * (L(p + h u) - L(p - h u)) / 2h against <g, u>, in float32 with u in [-1, 1] and h = 3e-3; the loss is a sum
 * of float32 terms near 2, so the difference quotient carries ~1e-5 of rounding noise and the check allows 5e-4
 * of sum |g u| (+ 1e-4). A wrong backward formula is off by O(1). With dropout the masks are fixed (one seed). */

static void fd_variant(const variant *v, float dropout)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    xmc_error derr = {0};
    /* one seed for every run: the same masks, so the loss is a smooth function of the parameters again */
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, dropout, 77, &derr) == XMC_OK);
    xmci_csr active;
    CU_ASSERT_FATAL(read_smat(v->weighted ? "active_weighted.txt" : "active.txt", &active) == 0);
    double loss;
    CU_ASSERT_FATAL(run(&fx, v, &active, 1, &loss, NULL, NULL) == 0);
    uint64_t seed = 20261204;
    int bad = 0, checked = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int t = -2; t < fx.params->n_tensors; t++) {
        const char *tn = t == -2 ? "head.weight" : t == -1 ? "head.bias" : fx.params->tensor[t].name;
        if (v->pooling != XMCI_BERT_POOL_POOLER && !strncmp(tn, "pooler.", 7)) continue; /* unused: g = 0 */
        size_t n;
        float *p = tensor_of(&fx, fx.params, tn, fx.head.w, fx.head.b, &n);
        const float *g = tensor_of(&fx, fx.grads, tn, fx.dw, fx.db, &n);
        float *u = malloc(n * sizeof *u), *orig = malloc(n * sizeof *orig);
        memcpy(orig, p, n * sizeof *p);
        double gu = 0, gnorm = 0;
        for (size_t i = 0; i < n; i++) {
            u[i] = (float)((double)(lcg(&seed) % 2000001) / 1e6 - 1.0);
            gu += (double)g[i] * u[i];
            gnorm += fabs((double)g[i] * u[i]);
        }
        const float h = 3e-3f;
        double lp, lm;
        for (size_t i = 0; i < n; i++) p[i] = orig[i] + h * u[i];
        int rc = run(&fx, v, &active, 0, &lp, NULL, NULL);
        for (size_t i = 0; i < n; i++) p[i] = orig[i] - h * u[i];
        rc |= run(&fx, v, &active, 0, &lm, NULL, NULL);
        memcpy(p, orig, n * sizeof *p);
        CU_ASSERT_FATAL(rc == 0);
        /* the absolute term covers the key biases, whose gradient is 0 (softmax ignores a shift along a row): their
         * quotient is rounding noise alone, up to ~6e-5 with dropout's 1 / (1 - p) scaling */
        double fd = (lp - lm) / (2.0 * h), d = fabs(fd - gu), tol = 5e-4 * gnorm + 1e-4;
        if (!(d <= tol)) {
            printf("\n  %s %s: FD %.8g, <g, u> %.8g", v->name, tn, fd, gu);
            bad++;
        }
        if (gnorm > 1e-3 && d / gnorm > worst) worst = d / gnorm, worst_name = tn; /* key biases: g ~ 0 */
        checked++;
        free(u), free(orig);
    }
    printf("\n  %-16s finite differences over %d tensors, dropout %.2f: worst |FD - <g,u>| / sum|g u| = %.2g (%s)\n",
           v->name, checked, dropout, worst, worst_name);
    CU_ASSERT(bad == 0);
    free_csr(&active);
    fixture_close(&fx);
}

static void test_finite_differences(void)
{
    for (int i = 0; i < 4; i++) fd_variant(&VARIANTS[i], 0.0f);
}

/* The backward pass through the dropout masks: the same check with p = 0.3 on three poolings. */
static void test_finite_differences_dropout(void)
{
    for (int i = 0; i < 3; i++) fd_variant(&VARIANTS[i], 0.3f);
}

/* Dropout's masks: about p of the elements dropped; the same seed gives the same bits on 1 and 3 threads, another
 * seed other outputs; p = 0 again gives the dropout-free bits; p outside [0, 1) is refused; a backward after a new
 * setting is refused. */
static void test_dropout_masks(void)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    const int B = fx.b.B, H = fx.params->cfg.hidden;
    const size_t np = (size_t)B * H;
    xmc_error err = {0};
    float *p0 = malloc(np * sizeof *p0), *pa = malloc(np * sizeof *pa), *pb = malloc(np * sizeof *pb),
          *ga = malloc(fx.grads->n * sizeof *ga);
    for (size_t i = 0; i < np; i++) fx.d_pooled[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
#define FWD(out)                                                                                                    \
    CU_ASSERT_FATAL(xmci_bert_train_forward(fx.params, fx.train, fx.b.ids, NULL, fx.b.T, fx.b.lens, B,             \
                                            XMCI_BERT_POOL_MEAN, out, &err) == XMC_OK)
    FWD(p0);
    size_t kept, total;
    xmci_bert_train_dropout_kept(fx.train, &kept, &total);
    CU_ASSERT(kept == 0 && total == 0);
    CU_ASSERT(xmci_bert_train_set_dropout(fx.train, 1.0f, 1, &err) == XMC_ERR_ARG);
    CU_ASSERT(xmci_bert_train_set_dropout(fx.train, -0.1f, 1, &err) == XMC_ERR_ARG);
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, 0.25f, 5, &err) == XMC_OK);
    FWD(pa);
    xmci_bert_train_dropout_kept(fx.train, &kept, &total);
    const double frac = total ? 1.0 - (double)kept / (double)total : 0;
    printf("\n  dropout 0.25: %zu of %zu dropped (%.4f)\n", total - kept, total, frac);
    CU_ASSERT(total > 1000 && fabs(frac - 0.25) < 0.02);
    CU_ASSERT(memcmp(pa, p0, np * sizeof *pa) != 0);
    zero_grads(&fx);
    CU_ASSERT_FATAL(xmci_bert_train_backward(fx.params, fx.train, fx.d_pooled, fx.grads, &err) == XMC_OK);
    memcpy(ga, fx.grads->mem, fx.grads->n * sizeof *ga);
    CU_ASSERT_FATAL(xmci_bert_train_set_threads(fx.train, 3, &err) == XMC_OK);
    FWD(pb);
    CU_ASSERT(memcmp(pa, pb, np * sizeof *pa) == 0);
    zero_grads(&fx);
    CU_ASSERT_FATAL(xmci_bert_train_backward(fx.params, fx.train, fx.d_pooled, fx.grads, &err) == XMC_OK);
    CU_ASSERT(memcmp(ga, fx.grads->mem, fx.grads->n * sizeof *ga) == 0);
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, 0.25f, 6, &err) == XMC_OK);
    FWD(pb);
    CU_ASSERT(memcmp(pa, pb, np * sizeof *pa) != 0);
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, 0.0f, 6, &err) == XMC_OK);
    FWD(pb);
    CU_ASSERT(memcmp(p0, pb, np * sizeof *pb) == 0);
    /* cls pooling runs the last layer on the first tokens alone: the same masks there as over every token, so the
     * same pooled output as the full layer's (to rounding: products over fewer rows) */
    float *pc = malloc(np * sizeof *pc);
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, 0.25f, 5, &err) == XMC_OK);
    CU_ASSERT_FATAL(xmci_bert_train_forward(fx.params, fx.train, fx.b.ids, NULL, fx.b.T, fx.b.lens, B,
                                            XMCI_BERT_POOL_CLS, pc, &err) == XMC_OK);
    xmci_bert_train_full_last_layer(fx.train, 1);
    CU_ASSERT_FATAL(xmci_bert_train_forward(fx.params, fx.train, fx.b.ids, NULL, fx.b.T, fx.b.lens, B,
                                            XMCI_BERT_POOL_CLS, pb, &err) == XMC_OK);
    xmci_bert_train_full_last_layer(fx.train, 0);
    const double cls_diff = max_abs_diff(pc, pb, np);
    printf("  dropout 0.25, cls pooling: last layer on the first tokens vs over every token: max |diff| %.2g\n", cls_diff);
    CU_ASSERT(cls_diff < 1e-5);
    free(pc);
    FWD(pb); /* a forward to discard (the switch above discarded the one before) */
    /* a new setting discards the forward whose masks it would not match */
    CU_ASSERT_FATAL(xmci_bert_train_set_dropout(fx.train, 0.25f, 7, &err) == XMC_OK);
    CU_ASSERT(xmci_bert_train_backward(fx.params, fx.train, fx.d_pooled, fx.grads, &err) == XMC_ERR_ARG);
#undef FWD
    free(p0), free(pa), free(pb), free(ga);
    fixture_close(&fx);
}

/* ---- arguments, limits and the head's own checks ---------------------------------------------------------------- */

static void test_bounds(void)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    xmc_error err = {0};
    int lens[5] = {2, 2, 2, 2, 2};
    int32_t ids[5 * 4] = {0};
    /* more rows, or longer rows, than the workspace was sized for: refused, nothing allocated */
    CU_ASSERT(xmci_bert_train_forward(fx.params, fx.train, ids, NULL, 4, lens, fx.b.B + 1, XMCI_BERT_POOL_CLS,
                                     fx.pooled, &err) == XMC_ERR_RANGE);
    int long_lens[1] = {fx.b.T + 1};
    int32_t *long_ids = calloc((size_t)fx.b.T + 1, sizeof *long_ids);
    CU_ASSERT(xmci_bert_train_forward(fx.params, fx.train, long_ids, NULL, fx.b.T + 1, long_lens, 1, XMCI_BERT_POOL_CLS,
                                     fx.pooled, &err) == XMC_ERR_RANGE);
    ids[1] = fx.params->cfg.vocab_size;
    CU_ASSERT(xmci_bert_train_forward(fx.params, fx.train, ids, NULL, 4, lens, 1, XMCI_BERT_POOL_CLS, fx.pooled, &err) ==
              XMC_ERR_RANGE);
    /* backward before any forward */
    CU_ASSERT(xmci_bert_train_backward(fx.params, fx.train, fx.d_pooled, fx.grads, &err) == XMC_ERR_ARG);
    /* a head row out of range, a row wider than width, a negative value */
    uint64_t indptr[2] = {0, 2};
    uint32_t idx[2] = {3, 64};
    float val[2] = {1, 0};
    xmci_csr a = {.rows = 1, .cols = 64, .indptr = indptr, .indices = idx, .data = val};
    double loss;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 24, 0, &loss, NULL, NULL, NULL, NULL, NULL, &err) == XMC_ERR_RANGE);
    idx[1] = 5;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 1, 0, &loss, NULL, NULL, NULL, NULL, NULL, &err) == XMC_ERR_SHAPE);
    val[1] = -1;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 24, 0, &loss, NULL, NULL, NULL, NULL, NULL, &err) == XMC_ERR_RANGE);
    /* padding: an empty active row of width A costs exactly 1 and has no gradient */
    indptr[1] = 0;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 24, 0, &loss, NULL, NULL, fx.d_pooled, NULL, NULL, &err) == XMC_OK);
    CU_ASSERT(loss == 1.0);
    CU_ASSERT(max_abs_diff(fx.d_pooled, (float[16]){0}, 16) == 0);
    /* a duplicate entry (negatives drawn with replacement) counts twice: loss term and head-row gradient */
    for (int i = 0; i < fx.head.hidden; i++) fx.pooled[i] = 0.1f * (float)(i % 5) - 0.2f;
    indptr[1] = 1, idx[0] = 7, val[0] = 0;
    double once, twice;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 4, 0, &once, NULL, NULL, NULL, fx.dw, fx.db, &err) == XMC_OK);
    float db_once = fx.db[7];
    fx.db[7] = 0;
    indptr[1] = 2, idx[1] = 7, val[1] = 0;
    CU_ASSERT(xmci_head_loss(&fx.head, fx.pooled, &a, 4, 0, &twice, NULL, NULL, NULL, NULL, fx.db, &err) == XMC_OK);
    CU_ASSERT(db_once != 0);
    CU_ASSERT(fabs((twice - 0.5) - 2 * (once - 0.75)) <= 1e-12); /* 3 then 2 padding slots of 1/4 each */
    CU_ASSERT(fabsf(fx.db[7] - 2 * db_once) <= 1e-7f);
    /* the optimiser refuses spans outside its moments and updates before a step */
    xmci_adamw *opt;
    CU_ASSERT_FATAL(xmci_adamw_new(8, XMCI_ADAMW_HF, 0.9f, 0.999f, 1e-8f, &opt, &err) == XMC_OK);
    float p[8] = {0}, g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CU_ASSERT(xmci_adamw_update(opt, 0, p, g, 8, 1e-3f, 0, &err) == XMC_ERR_RANGE);
    xmci_adamw_next(opt);
    CU_ASSERT(xmci_adamw_update(opt, 4, p, g, 8, 1e-3f, 0, &err) == XMC_ERR_RANGE);
    uint32_t row = 2;
    CU_ASSERT(xmci_adamw_update_rows(opt, 0, p, g, 4, &row, 1, 1e-3f, 0, &err) == XMC_ERR_RANGE);
    CU_ASSERT(xmci_adamw_new(8, XMCI_ADAMW_HF, 1.0f, 0.999f, 1e-8f, &opt, &err) == XMC_ERR_ARG);
    xmci_adamw_free(opt);
    free(long_ids);
    fixture_close(&fx);
}

/* Two sets of the same rows accumulate: backward adds into the gradient arena. */
static void test_accumulates(void)
{
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    xmci_csr active;
    CU_ASSERT_FATAL(read_smat("active.txt", &active) == 0);
    double loss;
    CU_ASSERT_FATAL(run(&fx, &VARIANTS[2], &active, 1, &loss, NULL, NULL) == 0);
    float *once = malloc(fx.grads->n * sizeof *once);
    memcpy(once, fx.grads->mem, fx.grads->n * sizeof *once);
    CU_ASSERT_FATAL(run(&fx, &VARIANTS[2], &active, 1, &loss, NULL, NULL) == 0);
    double d = 0;
    for (size_t i = 0; i < fx.grads->n; i++) d = fmax(d, fabs(fx.grads->mem[i] - 2 * once[i]));
    CU_ASSERT(d <= 1e-6);
    zero_grads(&fx);
    for (size_t i = 0; i < fx.grads->n; i++) CU_ASSERT_FATAL(fx.grads->mem[i] == 0);
    free(once);
    free_csr(&active);
    fixture_close(&fx);
}

/* The workspace size is known before the first step: report it for a MiniLM-L6-H384 shape, batch 32 x 128. */
static void test_arena_sizes(void)
{
    xmci_bert_params p = {0};
    p.cfg = (xmci_bert_config){30522, 384, 6, 12, 1536, 512, 2, 1e-12f, XMCI_BERT_GELU};
    p.has_pooler = 1;
    xmci_bert_train *tr;
    xmc_error err = {0};
    /* params_layout is internal; sizes only need cfg, so a zero-length arena stands in for the weights */
    CU_ASSERT_FATAL(xmci_bert_train_new(&p, 32, 128, &tr, &err) == XMC_OK);
    size_t act, grad;
    xmci_bert_train_bytes(tr, &act, &grad);
    printf("\n  MiniLM-L6-H384, batch 32 x 128: activations %.1f MiB, activation gradients %.1f MiB\n",
           act / 1048576.0, grad / 1048576.0);
    CU_ASSERT(act > 0 && grad > 0);
    xmci_bert_train_free(tr);
}

/* The AdamW pass (eight floats at a time where the CPU has AVX, split between threads for long spans, started per
 * span or a pool's) gives the bits of the plain scalar loop, both forms, with and without decay, on spans that are
 * neither a multiple of 8 nor short enough to stay in one thread. 65,553 on 2 threads: halves of a multiple of 8
 * and one float over, which the split once left without its update. */
/* The clipping norm: the same bits for one buffer and for it cut at multiples of 8 floats with its zero pieces
 * left out (adamw.h; bert_opt.c's word rows rely on it), within 1e-12 of a long-double sum, and each buffer scaled by
 * the coefficient when it clips (the tail past the last multiple of 4 too). */
static void test_clip_norm_cuts(void)
{
    enum { N = 1003 };
    float a[N], b[N];
    uint32_t x = 5;
    long double ref = 0;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = (i / 24) % 3 == 1 ? 0.0f : (float)(x >> 8) / 16777216.0f - 0.5f; /* zero pieces of 24 */
        ref += (long double)a[i] * a[i];
    }
    memcpy(b, a, sizeof a);
    const float last = a[N - 1]; /* in a piece of 11 floats: past the scaling's last block of 4 */
    float *whole[1] = {a};
    size_t whole_len[1] = {N};
    float *pieces[64];
    size_t piece_len[64];
    int k = 0;
    for (int at = 0; at < N; at += 24) { /* the nonzero pieces of 24 floats, the last one shorter */
        const int len = N - at < 24 ? N - at : 24;
        if ((at / 24) % 3 == 1) continue;
        pieces[k] = b + at;
        piece_len[k++] = (size_t)len;
    }
    float ca, cb;
    const double na = xmci_clip_grad_norm(whole, whole_len, 1, 0.5f, &ca);
    const double nb = xmci_clip_grad_norm(pieces, piece_len, k, 0.5f, &cb);
    CU_ASSERT(na == nb && ca == cb);
    CU_ASSERT(fabsl((long double)na - sqrtl(ref)) <= 1e-12L * na);
    CU_ASSERT(ca < 1 && !memcmp(a, b, sizeof a));
    CU_ASSERT(last != 0 && a[N - 1] == last * ca);
}

/* A step that reads the gradient scaled (xmci_adamw_scale_grads) gives the bits of one on the gradient scaled
 * first, both forms, with and without decay, over a span with a tail past the vector width; the next step reads
 * it as it is again. */
static void test_adamw_scaled_grads_same_bits(void)
{
    enum { N = 1003 };
    static float p0[N], g[N], gs[N], pa[N], pb[N];
    uint32_t x = 17;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        p0[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
        x = x * 1664525u + 1013904223u;
        g[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 3;
    }
    const float c = 0.3171f;
    for (int i = 0; i < N; i++) gs[i] = g[i] * c;
    xmc_error err = {0};
    for (int kind = 0; kind < 2; kind++)
        for (int decay = 0; decay < 2; decay++) {
            xmci_adamw *a, *b;
            const xmci_adamw_kind k = kind ? XMCI_ADAMW_HF : XMCI_ADAMW_TORCH;
            CU_ASSERT_FATAL(xmci_adamw_new(N, k, 0.9f, 0.999f, 1e-8f, &a, &err) == XMC_OK);
            CU_ASSERT_FATAL(xmci_adamw_new(N, k, 0.9f, 0.999f, 1e-8f, &b, &err) == XMC_OK);
            memcpy(pa, p0, sizeof pa);
            memcpy(pb, p0, sizeof pb);
            for (int step = 0; step < 2; step++) { /* step 1 scaled, step 2 not */
                xmci_adamw_next(a);
                xmci_adamw_next(b);
                if (step == 0) xmci_adamw_scale_grads(a, c);
                CU_ASSERT(xmci_adamw_update(a, 0, pa, g, N, 1e-3f, decay ? 0.01f : 0, &err) == XMC_OK);
                CU_ASSERT(xmci_adamw_update(b, 0, pb, step == 0 ? gs : g, N, 1e-3f, decay ? 0.01f : 0, &err) == XMC_OK);
            }
            CU_ASSERT(!memcmp(pa, pb, sizeof pa) && !memcmp(a->m, b->m, sizeof pa) && !memcmp(a->v, b->v, sizeof pa));
            CU_ASSERT(memcmp(pa, p0, sizeof pa) != 0);
            xmci_adamw_free(a);
            xmci_adamw_free(b);
        }
}

/* Whether row r has a gradient at step 2 of the test below: some rows listed then have none, so their moments
 * only decay (a live row no batch touched). */
static int r_keeps_grad(uint32_t r, int step) { return step == 1 || r % 2 == 0; }

/* xmci_adamw_update_rows on threads (its own or a pool's) gives the bits of one thread, and those of a dense update
 * of the whole matrix whose gradient and moments are zero outside the rows listed (no weight decay: such a row
 * is left exactly as it was, which bert_opt.c's word rows rely on). 3,001 rows of 64: above the threading floor. */
static void test_adamw_rows_threads_same_bits(void)
{
    enum { R = 3001, C = 64 };
    static const int threads_of[][2] = {{1, 0}, {3, 0}, {2, 2}}; /* threads, pool (0: none) */
    float *p0 = malloc((size_t)R * C * sizeof *p0), *g = calloc((size_t)R * C, sizeof *g),
          *pd = malloc((size_t)R * C * sizeof *pd), *pr = malloc((size_t)R * C * sizeof *pr);
    uint32_t *rows = malloc(R * sizeof *rows);
    CU_ASSERT_FATAL(p0 && g && pd && pr && rows);
    uint32_t x = 99;
    for (size_t i = 0; i < (size_t)R * C; i++) {
        x = x * 1664525u + 1013904223u;
        p0[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
    }
    xmc_error err = {0};
    for (int kind = 0; kind < 2; kind++)
        for (size_t ti = 0; ti < sizeof threads_of / sizeof *threads_of; ti++) {
            xmci_adamw *dense, *byrow;
            xmci_pool *pool = NULL;
            const xmci_adamw_kind k = kind ? XMCI_ADAMW_HF : XMCI_ADAMW_TORCH;
            CU_ASSERT_FATAL(xmci_adamw_new((size_t)R * C, k, 0.9f, 0.999f, 1e-8f, &dense, &err) == XMC_OK);
            CU_ASSERT_FATAL(xmci_adamw_new((size_t)R * C, k, 0.9f, 0.999f, 1e-8f, &byrow, &err) == XMC_OK);
            if (threads_of[ti][1]) CU_ASSERT_FATAL(xmci_pool_new(threads_of[ti][1], &pool, &err) == XMC_OK);
            byrow->threads = threads_of[ti][0];
            byrow->pool = pool;
            memcpy(pd, p0, (size_t)R * C * sizeof *pd);
            memcpy(pr, p0, (size_t)R * C * sizeof *pr);
            uint32_t nrows = 0;
            for (int step = 1; step <= 2; step++) {
                /* step 1: every third row; step 2: those and every fifth (rows listed out of order) */
                memset(g, 0, (size_t)R * C * sizeof *g);
                nrows = 0;
                for (uint32_t r = R; r-- > 0;)
                    if (r % 3 == 0 || (step == 2 && r % 5 == 0)) rows[nrows++] = r;
                for (uint32_t a = 0; a < nrows; a++)
                    for (int c = 0; c < C; c++) {
                        x = x * 1664525u + 1013904223u;
                        if (r_keeps_grad(rows[a], step)) g[(size_t)rows[a] * C + c] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 1e-2f;
                    }
                xmci_adamw_next(dense);
                xmci_adamw_next(byrow);
                CU_ASSERT_FATAL(xmci_adamw_update(dense, 0, pd, g, (size_t)R * C, 1e-3f, 0, &err) == XMC_OK);
                CU_ASSERT_FATAL(xmci_adamw_update_rows(byrow, 0, pr, g, C, rows, nrows, 1e-3f, 0, &err) == XMC_OK);
            }
            CU_ASSERT(!memcmp(pd, pr, (size_t)R * C * sizeof *pd));
            CU_ASSERT(!memcmp(dense->m, byrow->m, (size_t)R * C * sizeof *dense->m));
            CU_ASSERT(!memcmp(dense->v, byrow->v, (size_t)R * C * sizeof *dense->v));
            CU_ASSERT(memcmp(pd, p0, (size_t)R * C * sizeof *pd) != 0);
            xmci_adamw_free(dense);
            xmci_adamw_free(byrow);
            xmci_pool_free(pool);
        }
    free(p0);
    free(g);
    free(pd);
    free(pr);
    free(rows);
}

static void test_adamw_vector_and_threads_same_bits(void)
{
    static const size_t sizes[] = {100003, 65553};
    static const int threads_of[][2] = {{1, 0}, {2, 0}, {3, 0}, {2, 2}, {3, 3}, {4, 2}}; /* threads, pool (0: none) */
    const size_t nmax = 100003;
    float *p0 = malloc(nmax * sizeof *p0), *g = malloc(nmax * sizeof *g), *p = malloc(nmax * sizeof *p);
    float *m = calloc(nmax, sizeof *m), *v = calloc(nmax, sizeof *v);
    CU_ASSERT_FATAL(p0 && g && p && m && v);
    xmc_error err = {0};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
    for (int kind = 0; kind < 2; kind++)
        for (int decay = 0; decay < 2; decay++) {
            const size_t n = sizes[si];
            const float lr = 1e-3f, wd = decay ? 0.01f : 0;
            for (size_t ti = 0; ti < sizeof threads_of / sizeof *threads_of; ti++) {
                const int threads = threads_of[ti][0];
                uint32_t x = 12345;
                for (size_t i = 0; i < n; i++) {
                    x = x * 1664525u + 1013904223u;
                    p0[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
                    x = x * 1664525u + 1013904223u;
                    g[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 1e-2f;
                }
                xmci_adamw *opt;
                xmci_pool *pool = NULL;
                CU_ASSERT_FATAL(xmci_adamw_new(n, kind ? XMCI_ADAMW_HF : XMCI_ADAMW_TORCH, 0.9f, 0.999f, 1e-8f, &opt, &err) == XMC_OK);
                if (threads_of[ti][1]) CU_ASSERT_FATAL(xmci_pool_new(threads_of[ti][1], &pool, &err) == XMC_OK);
                opt->threads = threads;
                opt->pool = pool;
                memcpy(p, p0, n * sizeof *p);
                memset(m, 0, n * sizeof *m);
                memset(v, 0, n * sizeof *v);
                size_t bad = 0;
                for (int step = 1; step <= 2; step++) {
                    xmci_adamw_next(opt);
                    CU_ASSERT_FATAL(xmci_adamw_update(opt, 0, p, g, n, lr, wd, &err) == XMC_OK);
                    /* the scalar formula of adamw.h, in float, in its order */
                    const double c1 = 1.0 - pow((double)0.9f, step), c2 = 1.0 - pow((double)0.999f, step);
                    const float b1 = 0.9f, ob1 = (float)(1.0 - (double)0.9f), b2 = 0.999f, ob2 = (float)(1.0 - (double)0.999f);
                    const float c2s = (float)sqrt(c2);
                    for (size_t i = 0; i < n; i++) {
                        m[i] = m[i] * b1 + g[i] * ob1;
                        v[i] = v[i] * b2 + ob2 * g[i] * g[i];
                        if (!kind) {
                            float q = p0[i]; /* p0 holds the previous step's result */
                            if (wd != 0) q *= (float)(1.0 - (double)lr * (double)wd);
                            float denom = sqrtf(v[i]) / c2s + 1e-8f;
                            p0[i] = q + (float)(-(double)lr / c1) * m[i] / denom;
                        } else {
                            float denom = sqrtf(v[i]) + 1e-8f;
                            float q = p0[i] + (float)(-(double)lr * sqrt(c2) / c1) * m[i] / denom;
                            if (wd != 0) q += q * (float)(-(double)lr * (double)wd);
                            p0[i] = q;
                        }
                    }
                    for (size_t i = 0; i < n; i++) bad += memcmp(&p[i], &p0[i], sizeof *p) != 0;
                    for (size_t i = 0; i < n; i++) bad += memcmp(&opt->m[i], &m[i], sizeof *m) != 0 ||
                                                          memcmp(&opt->v[i], &v[i], sizeof *v) != 0;
                }
                if (bad) printf("\n  %s, wd %g, n %zu, %d threads, pool %d: %zu values differ from the scalar loop",
                                kind ? "hf" : "torch", (double)wd, n, threads, threads_of[ti][1], bad);
                CU_ASSERT(bad == 0);
                xmci_adamw_free(opt);
                xmci_pool_free(pool);
            }
        }
    free(p0);
    free(g);
    free(p);
    free(m);
    free(v);
}

/* The library's own threads (attention pairs, LayerNorm, GELU, bias sums): each (sequence, head), row, element
 * and column is computed the same way on any thread, so 1 and 3 threads give the same bits. The batch repeats the
 * fixture's 4 rows 24 times (744 tokens), enough for every pass to be shared out. Bad counts fail. */
static void test_threads_same_bits(void)
{
    enum { REP = 24 };
    fixture fx;
    CU_ASSERT_FATAL(fixture_open(&fx) == 0);
    const int B = REP * fx.b.B, T = fx.b.T, H = fx.params->cfg.hidden;
    int32_t *ids = malloc((size_t)B * T * sizeof *ids);
    int *lens = malloc((size_t)B * sizeof *lens);
    float *pooled = malloc((size_t)B * H * sizeof *pooled), *d_pooled = malloc((size_t)B * H * sizeof *d_pooled);
    for (int r = 0; r < B; r++) {
        memcpy(ids + (size_t)r * T, fx.b.ids + (size_t)(r % fx.b.B) * T, (size_t)T * sizeof *ids);
        lens[r] = fx.b.lens[r % fx.b.B];
    }
    for (int i = 0; i < B * H; i++) d_pooled[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    xmci_bert_train *tr = NULL;
    xmc_error err = {0};
    CU_ASSERT_FATAL(xmci_bert_train_new(fx.params, B, T, &tr, &err) == XMC_OK);
    const size_t n = fx.grads->n;
    float *g1 = malloc(n * sizeof *g1), *p1 = malloc((size_t)B * H * sizeof *p1);
    /* mean pooling (every layer over every token) and cls (the last one on the first tokens) */
    static const xmci_bert_pooling pools[2] = {XMCI_BERT_POOL_MEAN, XMCI_BERT_POOL_CLS};
    for (int pi = 0; pi < 2; pi++) {
        for (int pass = 0; pass < 2; pass++) {
            CU_ASSERT_FATAL(xmci_bert_train_set_threads(tr, pass ? 3 : 1, &err) == XMC_OK);
            zero_grads(&fx);
            CU_ASSERT_FATAL(xmci_bert_train_forward(fx.params, tr, ids, NULL, T, lens, B, pools[pi], pooled, &err) ==
                            XMC_OK);
            CU_ASSERT_FATAL(xmci_bert_train_backward(fx.params, tr, d_pooled, fx.grads, &err) == XMC_OK);
            if (!pass) {
                memcpy(g1, fx.grads->mem, n * sizeof *g1);
                memcpy(p1, pooled, (size_t)B * H * sizeof *p1);
            }
        }
        CU_ASSERT(memcmp(g1, fx.grads->mem, n * sizeof *g1) == 0);
        CU_ASSERT(memcmp(p1, pooled, (size_t)B * H * sizeof *p1) == 0);
    }
    CU_ASSERT(xmci_bert_train_set_threads(tr, 0, &err) == XMC_ERR_ARG);
    CU_ASSERT(xmci_bert_train_set_threads(tr, XMC_MAX_THREADS + 1, &err) == XMC_ERR_ARG);
    xmci_bert_train_free(tr);
    free(g1), free(p1), free(ids), free(lens), free(pooled), free(d_pooled);
    fixture_close(&fx);
}

/* Writes a random BERT of hidden 64, 2 heads (head size 32), 1 layer, 64 positions into dir: big enough that the
 * 16-column attention kernels take their two-register blocks, their one-register blocks and the 8-column tail. */
static int write_wide_model(const char *dir)
{
    enum { V = 64, H = 64, I = 96, P = 64, NT = 16 };
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"model_type\": \"bert\", \"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"intermediate_size\": %d, \"hidden_act\": \"gelu\", "
               "\"max_position_embeddings\": %d, \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12}\n", V, H, I, P);
    fclose(f);
    static const struct { const char *name; int rows, cols; } t[NT] = {
        {"embeddings.word_embeddings.weight", V, H}, {"embeddings.position_embeddings.weight", P, H},
        {"embeddings.token_type_embeddings.weight", 2, H}, {"embeddings.LayerNorm.weight", H, 0},
        {"embeddings.LayerNorm.bias", H, 0}, {"encoder.layer.0.attention.self.query.weight", H, H},
        {"encoder.layer.0.attention.self.query.bias", H, 0}, {"encoder.layer.0.attention.self.key.weight", H, H},
        {"encoder.layer.0.attention.self.key.bias", H, 0}, {"encoder.layer.0.attention.self.value.weight", H, H},
        {"encoder.layer.0.attention.self.value.bias", H, 0}, {"encoder.layer.0.attention.output.dense.weight", H, H},
        {"encoder.layer.0.attention.output.dense.bias", H, 0},
        {"encoder.layer.0.attention.output.LayerNorm.weight", H, 0},
        {"encoder.layer.0.attention.output.LayerNorm.bias", H, 0}, {"encoder.layer.0.intermediate.dense.weight", I, H},
    };
    static const struct { const char *name; int rows, cols; } t2[5] = {
        {"encoder.layer.0.intermediate.dense.bias", I, 0}, {"encoder.layer.0.output.dense.weight", H, I},
        {"encoder.layer.0.output.dense.bias", H, 0}, {"encoder.layer.0.output.LayerNorm.weight", H, 0},
        {"encoder.layer.0.output.LayerNorm.bias", H, 0},
    };
    xmci_safetensors_entry e[NT + 5];
    float *mem[NT + 5] = {0};
    xmc_rng rng;
    xmc_rng_seed(&rng, 77);
    int rc = 0;
    for (int i = 0; i < NT + 5; i++) {
        const char *name = i < NT ? t[i].name : t2[i - NT].name;
        int rows = i < NT ? t[i].rows : t2[i - NT].rows, cols = i < NT ? t[i].cols : t2[i - NT].cols;
        size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
        if (!(mem[i] = malloc(n * sizeof(float)))) rc = -1;
        const int ln_weight = strstr(name, "LayerNorm.weight") != NULL;
        for (size_t k = 0; mem[i] && k < n; k++)
            mem[i][k] = ln_weight ? 1.0f + 0.1f * ((float)xmc_rng_uniform(&rng, 0, 2000) / 1000.0f - 1.0f)
                                  : 0.3f * ((float)xmc_rng_uniform(&rng, 0, 2000) / 1000.0f - 1.0f);
        e[i] = (xmci_safetensors_entry){name, cols ? 2 : 1, {rows, cols}, mem[i]};
    }
    xmc_error err = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc && xmci_safetensors_write(path, e, NT + 5, &err) != XMC_OK) rc = -1;
    for (int i = 0; i < NT + 5; i++) free(mem[i]);
    return rc;
}

/* The wide model written to a temporary directory, loaded, with a parameter copy and zeroed gradients. */
typedef struct wide_model {
    char dir[32];
    xmci_bert *bert;
    xmci_bert_params *params, *grads;
} wide_model;

static int wide_open(wide_model *w)
{
    xmc_error err = {0};
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/xmc-bert-wide-XXXXXX");
    if (!mkdtemp(w->dir) || write_wide_model(w->dir) || xmci_bert_load(w->dir, &w->bert, &err) ||
        xmci_bert_params_copy(w->bert, &w->params, &err) || xmci_bert_params_zeros_like(w->params, &w->grads, &err))
        return -1;
    return 0;
}

static void wide_close(wide_model *w)
{
    xmci_bert_params_free(w->params), xmci_bert_params_free(w->grads);
    xmci_bert_free(w->bert);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", w->dir), remove(path);
    snprintf(path, sizeof path, "%s/model.safetensors", w->dir), remove(path);
    rmdir(w->dir);
}

/* The AVX-512 attention kernels give the 8-wide kernels' bits: pooled outputs and every gradient, on sequences
 * whose lengths take every block shape (64: two registers; 40 and 17: one and the 8-column tail; 5: the tail
 * alone; 6-row blocks with 1-5 rows left over). */
static void test_attention_avx512_same_bits(void)
{
    wide_model wm;
    CU_ASSERT_FATAL(wide_open(&wm) == 0);
    xmc_error err = {0};
    xmci_bert_params *params = wm.params, *grads = wm.grads;
    xmci_bert_train *tr = NULL;
    enum { B = 4, T = 64, H = 64 };
    static const int lens[B] = {64, 40, 17, 5};
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % 64;
    CU_ASSERT_FATAL(xmci_bert_train_new(params, B, T, &tr, &err) == XMC_OK);
    CU_ASSERT_FATAL(xmci_bert_train_set_threads(tr, 2, &err) == XMC_OK);
    float pooled[2][B * H], d_pooled[B * H];
    for (int i = 0; i < B * H; i++) d_pooled[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    float *g[2] = {malloc(grads->n * sizeof(float)), malloc(grads->n * sizeof(float))};
    int wide_in_force = 0;
    for (int pass = 0; pass < 2; pass++) {
        int on = xmci_bert_train_use_avx512(tr, pass);
        if (pass) wide_in_force = on;
        xmci_bert_params_zero(grads);
        CU_ASSERT_FATAL(xmci_bert_train_forward(params, tr, ids, NULL, T, lens, B, XMCI_BERT_POOL_MEAN, pooled[pass],
                                                &err) == XMC_OK);
        CU_ASSERT_FATAL(xmci_bert_train_backward(params, tr, d_pooled, grads, &err) == XMC_OK);
        memcpy(g[pass], grads->mem, grads->n * sizeof(float));
    }
    if (!wide_in_force) printf("\n  no AVX-512F on this CPU (or no AVX2 kernels): the 8-wide kernels ran twice\n");
    CU_ASSERT(memcmp(pooled[0], pooled[1], sizeof pooled[0]) == 0);
    CU_ASSERT(memcmp(g[0], g[1], grads->n * sizeof(float)) == 0);
    double gmax = 0;
    for (size_t i = 0; i < grads->n; i++) gmax = fmax(gmax, fabs(g[1][i]));
    CU_ASSERT(gmax > 0 && isfinite(gmax)); /* gradients that are not all zero, so the comparison means something */
    free(g[0]), free(g[1]);
    xmci_bert_train_free(tr);
    wide_close(&wm);
}

/* With OpenBLAS at one thread the library cuts each product into row blocks on its own threads: 1 thread of ours
 * (whole products) and 3 (cut: the counter says so) give the same bits with the kernels named below, close ones
 * with the others; OpenBLAS's 2 threads (not cut) give close ones. The wide model's products at 1,446 tokens are large enough to be cut, the last block short. */
static void test_products_split_same_bits(void)
{
    wide_model wm;
    CU_ASSERT_FATAL(wide_open(&wm) == 0);
    xmc_error err = {0};
    xmci_bert_params *params = wm.params, *grads = wm.grads;
    xmci_bert_train *tr = NULL;
    enum { B = 32, T = 64, H = 64, PASSES = 3 };
    int lens[B], tokens = 0;
    for (int r = 0; r < B; r++) tokens += lens[r] = 64 - (r * 7) % 41;
    CU_ASSERT(tokens == 1446); /* 22 blocks of 64 and one of 38 */
    static int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % 64;
    CU_ASSERT_FATAL(xmci_bert_train_new(params, B, T, &tr, &err) == XMC_OK);
    static float pooled[PASSES][B * H], d_pooled[B * H];
    for (int i = 0; i < B * H; i++) d_pooled[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    float *g[PASSES];
    for (int p = 0; p < PASSES; p++) CU_ASSERT_FATAL((g[p] = malloc(grads->n * sizeof(float))) != NULL);
    const int blas_threads = openblas_get_num_threads();
    static const int ours[PASSES] = {1, 3, 2}, theirs[PASSES] = {1, 1, 2};
    size_t split[PASSES];
    for (int p = 0; p < PASSES; p++) {
        openblas_set_num_threads(theirs[p]);
        CU_ASSERT_FATAL(xmci_bert_train_set_threads(tr, ours[p], &err) == XMC_OK);
        const size_t before = xmci_bert_train_products_split(tr);
        xmci_bert_params_zero(grads);
        CU_ASSERT_FATAL(xmci_bert_train_forward(params, tr, ids, NULL, T, lens, B, XMCI_BERT_POOL_MEAN, pooled[p],
                                                &err) == XMC_OK);
        CU_ASSERT_FATAL(xmci_bert_train_backward(params, tr, d_pooled, grads, &err) == XMC_OK);
        split[p] = xmci_bert_train_products_split(tr) - before;
        memcpy(g[p], grads->mem, grads->n * sizeof(float));
    }
    openblas_set_num_threads(blas_threads);
    CU_ASSERT(split[0] == 0);
    CU_ASSERT(split[1] >= 10); /* forward 4, backward 7 of the 8 (dW2 has 64 rows: one block) */
    if (openblas_get_num_threads() > 1 || theirs[2] > 1) CU_ASSERT(split[2] == 0);
    /* The same bits where OpenBLAS's kernels compute a row the same in any block of 64 rows' multiples (checked:
     * SkylakeX, Sandybridge, Prescott); Haswell's and Zen's do not (valgrind's CPU gets Haswell's), and OpenBLAS's
     * own threads do not keep its one thread's bits either (2e-6 apart here): close, there */
    const char *core = openblas_get_corename();
    const int exact = !strcasecmp(core, "skylakex") || !strcasecmp(core, "sandybridge") || !strcasecmp(core, "prescott");
    if (exact) {
        CU_ASSERT(memcmp(pooled[0], pooled[1], sizeof pooled[0]) == 0);
        CU_ASSERT(memcmp(g[0], g[1], grads->n * sizeof(float)) == 0);
    }
    double gmax = 0, d1 = 0, d2 = 0;
    for (size_t i = 0; i < grads->n; i++) {
        gmax = fmax(gmax, fabs(g[0][i]));
        d1 = fmax(d1, fabs(g[1][i] - g[0][i])), d2 = fmax(d2, fabs(g[2][i] - g[0][i]));
    }
    CU_ASSERT(gmax > 0 && isfinite(gmax));
    CU_ASSERT(d1 <= 1e-4 * gmax);
    CU_ASSERT(d2 <= 1e-4 * gmax);
    for (int p = 0; p < PASSES; p++) free(g[p]);
    xmci_bert_train_free(tr);
    wide_close(&wm);
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("bert_train", NULL, NULL);
    TU_ADD(s, test_backward_cls);
    TU_ADD(s, test_backward_pooler);
    TU_ADD(s, test_backward_mean);
    TU_ADD(s, test_backward_pooler_weighted);
    TU_ADD(s, test_backward_full_last_layer);
    TU_ADD(s, test_backward_scalar_kernels);
    TU_ADD(s, test_adamw_step_cls);
    TU_ADD(s, test_pecos_step_pooler);
    TU_ADD(s, test_adamw_three_steps);
    TU_ADD(s, test_adamw_vector_and_threads_same_bits);
    TU_ADD(s, test_adamw_rows_threads_same_bits);
    TU_ADD(s, test_clip_norm_cuts);
    TU_ADD(s, test_adamw_scaled_grads_same_bits);
    TU_ADD(s, test_finite_differences);
    TU_ADD(s, test_finite_differences_dropout);
    TU_ADD(s, test_dropout_masks);
    TU_ADD(s, test_bounds);
    TU_ADD(s, test_accumulates);
    TU_ADD(s, test_arena_sizes);
    TU_ADD(s, test_threads_same_bits);
    TU_ADD(s, test_attention_avx512_same_bits);
    TU_ADD(s, test_products_split_same_bits);
    return tu_run(argc, argv);
}
