/* bert.c: BERT encoder forward pass in float32: OpenBLAS sgemm for every product, fused elementwise kernels.
 *
 * Tokens of a batch are packed: row r's lens[r] tokens sit at rows off[r] .. off[r+1]-1 of every activation
 * matrix, so the linear layers are one sgemm over all real tokens of the batch and no padding is computed.
 * Attention reads q, k, v in place from the fused [tokens x 3H] projection (sgemm leading dimensions pick one
 * head), applies 1/sqrt(d) through sgemm's alpha, and writes each head's context straight into its columns of
 * the [tokens x H] context matrix: no head split or merge copies. Bias additions cost no pass of their own:
 * the QKV bias is written first and sgemm accumulates onto it (beta 1, which also spares OpenBLAS its zeroing
 * pass), the others are fused with what follows them: GELU after the intermediate product, residual +
 * LayerNorm after the two output products.
 *
 * Elementwise kernels have a scalar form (libm expf/erff) and an AVX2+FMA form chosen at load time when the
 * CPU has it (the build targets x86-64-v2, so it is compiled with a target attribute): exp by Cephes' range
 * reduction and degree-5 polynomial (~2 ulp), erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7, what
 * PyTorch's own vectorised erf uses). Both stay far inside the 1e-4 tolerance against the references.
 *
 * Size legend: T = tokens in the batch (sum of lens), H = hidden, F = intermediate (FFN), L = one sequence's
 * length, nh = heads, d = H / nh. */
#include "bert.h"

#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "parallel.h"
#include "safetensors.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BERT_X86 1
#define SIMD __attribute__((target("avx2,fma")))
#define SIMD512 __attribute__((target("avx512f,avx2,fma")))
#endif

typedef struct bert_layer {
    float *wqkv;       /* 3H x H: query, key, value weights stacked (owned copy) */
    float *bqkv;       /* 3H (owned copy) */
    const float *wo, *bo, *ln1_w, *ln1_b; /* attention output dense [H,H], [H]; LayerNorm [H] */
    const float *wi, *bi;                 /* intermediate dense [F,H], [F] */
    const float *w2, *b2, *ln2_w, *ln2_b; /* output dense [H,F], [H]; LayerNorm [H] */
} bert_layer;

struct xmci_bert {
    xmci_bert_config cfg;
    xmci_safetensors *st;
    const float *word, *pos, *type, *emb_ln_w, *emb_ln_b;
    bert_layer *layer;
    const float *pool_w, *pool_b; /* NULL when the file has no pooler */
    int simd;                     /* AVX2+FMA kernels usable */
    int attn_own;                 /* attention in the training's kernels (simd, head size a multiple of 8) */
    int attn_wide;                /* those kernels 16 columns wide (AVX-512F) */
};

struct xmci_bert_workspace {
    const xmci_bert *bert;
    size_t cap_tokens, cap_rows, cap_seq;
    float *x;      /* T x H hidden state */
    float *big;    /* T x max(3H, F): q|k|v during attention, then the intermediate activations */
    float *ctx;    /* T x H attention context */
    float *tmp;    /* T x H output of the dense layers before residual + LN */
    float *scores; /* L x L attention probabilities of one head, or the attention kernels' scratch */
    float *rows;   /* rows x H: [CLS] vectors gathered for the pooler; the last layer's rows (last_layer_first) */
    int *off;      /* rows + 1 token offsets of the latest forward */
    int *lens;     /* rows: lengths of the latest forward */
    int n;         /* rows of the latest forward, 0 before the first */
    int first_only; /* the latest forward ran the last layer on the first tokens alone */
};

/* ---- elementwise kernels -------------------------------------------------------------------------------- */

static float gelu_scalar(float v, xmci_bert_act act)
{
    switch (act) {
    case XMCI_BERT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case XMCI_BERT_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case XMCI_BERT_RELU: return v > 0 ? v : 0;
    }
    return v;
}

/* y[j] = act(y[j] + b[j]) for a rows x n matrix. */
static void bias_act_scalar(float *y, const float *b, size_t rows, int n, xmci_bert_act act)
{
    for (size_t r = 0; r < rows; r++, y += n)
        for (int j = 0; j < n; j++) y[j] = gelu_scalar(y[j] + b[j], act);
}

/* x = LN(y + b + x) over one row of n; y may be NULL (x = LN(x)). */
static void add_ln_scalar(float *x, const float *y, const float *b, const float *w, const float *beta, int n, float eps)
{
    float sum = 0;
    for (int i = 0; i < n; i++) {
        if (y) x[i] += y[i] + b[i];
        sum += x[i];
    }
    float mean = sum / (float)n, var = 0;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    float rstd = 1.0f / sqrtf(var / (float)n + eps);
    for (int i = 0; i < n; i++) x[i] = (x[i] - mean) * rstd * w[i] + beta[i];
}

/* In-place softmax of one row of n. */
static void softmax_scalar(float *s, int n)
{
    float mx = s[0], sum = 0;
    for (int i = 1; i < n; i++) mx = s[i] > mx ? s[i] : mx;
    for (int i = 0; i < n; i++) sum += s[i] = expf(s[i] - mx);
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) s[i] *= inv;
}

#ifdef BERT_X86
SIMD static inline __m256 exp8(__m256 x)
{
    /* exp(x) = 2^k exp(r), k = round(x / ln2), r = x - k ln2 (ln2 split in two for accuracy) */
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* erf(z) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-z^2), t = 1 / (1 + p |z|), sign restored (Abramowitz-Stegun
 * 7.1.26, |error| < 1.5e-7); GELU's forward and its derivative both use it */
SIMD static inline __m256 erf8(__m256 z)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, z);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(a, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_mul_ps(_mm256_xor_ps(a, sign), a));
    return _mm256_or_ps(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), _mm256_and_ps(sign, z));
}

SIMD static inline __m256 gelu8(__m256 v)
{
    __m256 erf = erf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
    __m256 half_v = _mm256_mul_ps(v, _mm256_set1_ps(0.5f));
    return _mm256_fmadd_ps(half_v, erf, half_v);
}

SIMD static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SIMD static inline float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SIMD static void bias_gelu_simd(float *y, const float *b, size_t rows, int n)
{
    int n8 = n & ~7;
    for (size_t r = 0; r < rows; r++, y += n) {
        for (int j = 0; j < n8; j += 8)
            _mm256_storeu_ps(y + j, gelu8(_mm256_add_ps(_mm256_loadu_ps(y + j), _mm256_loadu_ps(b + j))));
        for (int j = n8; j < n; j++) y[j] = gelu_scalar(y[j] + b[j], XMCI_BERT_GELU);
    }
}

/* n must be a multiple of 8 */
SIMD static void add_ln_simd(float *x, const float *y, const float *b, const float *w, const float *beta, int n, float eps)
{
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (y) {
            v = _mm256_add_ps(v, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(b + i)));
            _mm256_storeu_ps(x + i, v);
        }
        acc = _mm256_add_ps(acc, v);
    }
    __m256 mean = _mm256_set1_ps(hsum8(acc) / (float)n);
    acc = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mean);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    __m256 rstd = _mm256_set1_ps(1.0f / sqrtf(hsum8(acc) / (float)n + eps));
    for (int i = 0; i < n; i += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mean), rstd);
        _mm256_storeu_ps(x + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(w + i), _mm256_loadu_ps(beta + i)));
    }
}

SIMD static void softmax_simd(float *s, int n)
{
    int n8 = n & ~7;
    float mx = s[0];
    if (n8) {
        __m256 m = _mm256_loadu_ps(s);
        for (int i = 8; i < n8; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + i));
        mx = hmax8(m);
    }
    for (int i = n8; i < n; i++) mx = s[i] > mx ? s[i] : mx;
    __m256 vmx = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vmx));
        _mm256_storeu_ps(s + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    for (int i = n8; i < n; i++) sum += s[i] = expf(s[i] - mx);
    float inv = 1.0f / sum;
    __m256 vinv = _mm256_set1_ps(inv);
    for (int i = 0; i < n8; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), vinv));
    for (int i = n8; i < n; i++) s[i] *= inv;
}
#endif

static void bias_act(const xmci_bert *bert, float *y, const float *b, size_t rows, int n)
{
#ifdef BERT_X86
    if (bert->simd && bert->cfg.act == XMCI_BERT_GELU) { bias_gelu_simd(y, b, rows, n); return; }
#endif
    bias_act_scalar(y, b, rows, n, bert->cfg.act);
}

static void add_ln(const xmci_bert *bert, float *x, const float *y, const float *b, const float *w, const float *beta)
{
    int n = bert->cfg.hidden;
#ifdef BERT_X86
    if (bert->simd && n % 8 == 0) { add_ln_simd(x, y, b, w, beta, n, bert->cfg.layer_norm_eps); return; }
#endif
    add_ln_scalar(x, y, b, w, beta, n, bert->cfg.layer_norm_eps);
}

static void softmax(const xmci_bert *bert, float *s, int n)
{
#ifdef BERT_X86
    if (bert->simd) { softmax_simd(s, n); return; }
#endif
    softmax_scalar(s, n);
}

/* ---- loading -------------------------------------------------------------------------------------------- */

static xmc_err config_int(json_t *root, const char *path, const char *key, int required, int dflt, int *out,
                          xmc_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        if (required) return xmc_error_set(err, XMC_ERR_PARSE, "%s: missing key \"%s\"", path, key);
        *out = dflt;
        return XMC_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 24))
        return xmc_error_set(err, XMC_ERR_PARSE, "%s: \"%s\" must be an integer in [1, 2^24]", path, key);
    *out = (int)json_integer_value(v);
    return XMC_OK;
}

static xmc_err load_config(const char *path, xmci_bert_config *cfg, xmc_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: %s", path, jerr.line, jerr.text);
    xmc_err rc = XMC_OK;
    if (!json_is_object(root)) rc = xmc_error_set(err, XMC_ERR_PARSE, "%s: not a JSON object", path);
    if (!rc) rc = config_int(root, path, "vocab_size", 1, 0, &cfg->vocab_size, err);
    if (!rc) rc = config_int(root, path, "hidden_size", 1, 0, &cfg->hidden, err);
    if (!rc) rc = config_int(root, path, "num_hidden_layers", 1, 0, &cfg->layers, err);
    if (!rc) rc = config_int(root, path, "num_attention_heads", 1, 0, &cfg->heads, err);
    if (!rc) rc = config_int(root, path, "intermediate_size", 1, 0, &cfg->intermediate, err);
    if (!rc) rc = config_int(root, path, "max_position_embeddings", 1, 0, &cfg->max_positions, err);
    if (!rc) rc = config_int(root, path, "type_vocab_size", 0, 2, &cfg->type_vocab, err);
    if (!rc && cfg->hidden % cfg->heads)
        rc = xmc_error_set(err, XMC_ERR_PARSE, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                           cfg->hidden, cfg->heads);
    if (!rc) {
        json_t *eps = json_object_get(root, "layer_norm_eps");
        cfg->layer_norm_eps = 1e-12f;
        if (eps && (!json_is_number(eps) || json_number_value(eps) < 0))
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s: \"layer_norm_eps\" must be a non-negative number", path);
        else if (eps)
            cfg->layer_norm_eps = (float)json_number_value(eps);
    }
    if (!rc) {
        json_t *act = json_object_get(root, "hidden_act");
        const char *a = act ? json_string_value(act) : "gelu";
        if (!a) rc = xmc_error_set(err, XMC_ERR_PARSE, "%s: \"hidden_act\" must be a string", path);
        else if (!strcmp(a, "gelu")) cfg->act = XMCI_BERT_GELU;
        else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) cfg->act = XMCI_BERT_GELU_TANH;
        else if (!strcmp(a, "relu")) cfg->act = XMCI_BERT_RELU;
        else rc = xmc_error_set(err, XMC_ERR_VERSION, "%s: hidden_act \"%s\" is not supported", path, a);
    }
    if (!rc) {
        json_t *pe = json_object_get(root, "position_embedding_type");
        if (pe && (!json_is_string(pe) || strcmp(json_string_value(pe), "absolute") != 0))
            rc = xmc_error_set(err, XMC_ERR_VERSION, "%s: only absolute position embeddings are supported", path);
    }
    json_decref(root);
    return rc;
}

/* The tensor name, or "bert." + name when only that exists; shape [d0] or [d0, d1]. */
static xmc_err get_tensor(const xmci_bert *bert, const char *name, int64_t d0, int64_t d1, const float **out,
                          xmc_error *err)
{
    char full[256];
    const char *use = name;
    if (!xmci_safetensors_has(bert->st, name)) {
        snprintf(full, sizeof full, "bert.%s", name);
        if (!xmci_safetensors_has(bert->st, full)) use = name; /* report the plain name as missing */
        else use = full;
    }
    int64_t shape[2] = {d0, d1};
    xmc_err rc = xmci_safetensors_f32(bert->st, use, d1 ? 2 : 1, shape, out, err);
    if (rc) return rc;
    /* a NaN or inf weight makes every embedding NaN, which no later check sees (scores compare false) */
    const int64_t n = d0 * (d1 ? d1 : 1);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite((*out)[i]))
            return xmc_error_set(err, XMC_ERR_CORRUPT, "model.safetensors: tensor %s holds %g at index %lld", use,
                                 (double)(*out)[i], (long long)i);
    return XMC_OK;
}

void xmci_bert_free(xmci_bert *bert)
{
    if (!bert) return;
    if (bert->layer)
        for (int l = 0; l < bert->cfg.layers; l++) {
            free(bert->layer[l].wqkv);
            free(bert->layer[l].bqkv);
        }
    free(bert->layer);
    xmci_safetensors_close(bert->st);
    free(bert);
}

static xmc_err load_layer(xmci_bert *bert, int l, xmc_error *err)
{
    const int64_t H = bert->cfg.hidden, F = bert->cfg.intermediate;
    bert_layer *L = &bert->layer[l];
    char name[160];
    xmc_err rc;
#define T(field, suffix, d0, d1)                                                                              \
    do {                                                                                                       \
        snprintf(name, sizeof name, "encoder.layer.%d.%s", l, suffix);                                         \
        if ((rc = get_tensor(bert, name, d0, d1, &L->field, err))) return rc;                                 \
    } while (0)
    T(wo, "attention.output.dense.weight", H, H);
    T(bo, "attention.output.dense.bias", H, 0);
    T(ln1_w, "attention.output.LayerNorm.weight", H, 0);
    T(ln1_b, "attention.output.LayerNorm.bias", H, 0);
    T(wi, "intermediate.dense.weight", F, H);
    T(bi, "intermediate.dense.bias", F, 0);
    T(w2, "output.dense.weight", H, F);
    T(b2, "output.dense.bias", H, 0);
    T(ln2_w, "output.LayerNorm.weight", H, 0);
    T(ln2_b, "output.LayerNorm.bias", H, 0);
#undef T
    L->wqkv = malloc((size_t)(3 * H * H) * sizeof(float));
    L->bqkv = malloc((size_t)(3 * H) * sizeof(float));
    if (!L->wqkv || !L->bqkv) return xmc_error_set(err, XMC_ERR_NOMEM, "bert: out of memory");
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int j = 0; j < 3; j++) {
        const float *w, *b;
        snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.weight", l, qkv[j]);
        if ((rc = get_tensor(bert, name, H, H, &w, err))) return rc;
        snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.bias", l, qkv[j]);
        if ((rc = get_tensor(bert, name, H, 0, &b, err))) return rc;
        memcpy(L->wqkv + (size_t)(j * H * H), w, (size_t)(H * H) * sizeof(float));
        memcpy(L->bqkv + j * H, b, (size_t)H * sizeof(float));
    }
    return XMC_OK;
}

xmc_err xmci_bert_load(const char *dir, xmci_bert **out, xmc_error *err)
{
    char path[4096];
    xmci_bert *bert = calloc(1, sizeof *bert);
    if (!bert) return xmc_error_set(err, XMC_ERR_NOMEM, "bert: out of memory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    xmc_err rc = load_config(path, &bert->cfg, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        struct stat sb;
        if (stat(path, &sb) != 0)
            rc = xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
        else
            rc = xmci_safetensors_open(path, &bert->st, err);
    }
    const xmci_bert_config *c = &bert->cfg;
    if (!rc) rc = get_tensor(bert, "embeddings.word_embeddings.weight", c->vocab_size, c->hidden, &bert->word, err);
    if (!rc) rc = get_tensor(bert, "embeddings.position_embeddings.weight", c->max_positions, c->hidden, &bert->pos, err);
    if (!rc) rc = get_tensor(bert, "embeddings.token_type_embeddings.weight", c->type_vocab, c->hidden, &bert->type, err);
    if (!rc) rc = get_tensor(bert, "embeddings.LayerNorm.weight", c->hidden, 0, &bert->emb_ln_w, err);
    if (!rc) rc = get_tensor(bert, "embeddings.LayerNorm.bias", c->hidden, 0, &bert->emb_ln_b, err);
    if (!rc && !(bert->layer = calloc((size_t)c->layers, sizeof *bert->layer)))
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "bert: out of memory");
    for (int l = 0; !rc && l < c->layers; l++) rc = load_layer(bert, l, err);
    if (!rc) { /* a config.json with fewer layers than the weights would silently run a cut network */
        char name[96];
        snprintf(name, sizeof name, "encoder.layer.%d.attention.self.query.weight", c->layers);
        char full[104];
        snprintf(full, sizeof full, "bert.%s", name);
        if (xmci_safetensors_has(bert->st, name) || xmci_safetensors_has(bert->st, full))
            rc = xmc_error_set(err, XMC_ERR_SHAPE, "model.safetensors has more layers than the %d config.json names "
                               "(it has encoder.layer.%d, counting from 0)", c->layers, c->layers);
    }
    if (!rc) {
        /* the pooler is optional (sentence-transformers exports may drop it), but not half of it */
        xmc_error perr = {0};
        int has_w = get_tensor(bert, "pooler.dense.weight", c->hidden, c->hidden, &bert->pool_w, &perr) == XMC_OK;
        int has_b = get_tensor(bert, "pooler.dense.bias", c->hidden, 0, &bert->pool_b, &perr) == XMC_OK;
        if (has_w != has_b || (perr.code && perr.code != XMC_ERR_NOTFOUND)) {
            if (err) *err = perr;
            rc = perr.code ? perr.code : XMC_ERR_NOTFOUND;
        }
        if (!has_w || !has_b) bert->pool_w = bert->pool_b = NULL;
    }
    if (rc) {
        if (err && rc != XMC_ERR_NOMEM && !strstr(err->msg, dir)) xmc_error_prefix(err, "%s: ", dir);
        xmci_bert_free(bert);
        return rc;
    }
    xmci_bert_use_simd(bert, 1);
    *out = bert;
    return XMC_OK;
}

const xmci_bert_config *xmci_bert_get_config(const xmci_bert *bert) { return &bert->cfg; }
int xmci_bert_has_pooler(const xmci_bert *bert) { return bert->pool_w != NULL; }
/* The kernels a model gets: AVX2+FMA ones (*simd) when asked and the CPU has them; the attention in our kernels
 * (*own) when those run and the head size is a multiple of 8; 16 columns wide (*wide) when also asked and the
 * CPU has AVX-512F. One rule for the inference forward and the training. */
static void pick_kernels(const xmci_bert_config *cfg, int simd_on, int wide_on, int *simd, int *own, int *wide)
{
    *simd = *wide = 0;
#ifdef BERT_X86
    *simd = simd_on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    *own = *simd && (cfg->hidden / cfg->heads) % 8 == 0;
#ifdef BERT_X86
    *wide = wide_on && *own && __builtin_cpu_supports("avx512f");
#endif
    (void)simd_on, (void)wide_on;
}

int xmci_bert_use_simd(xmci_bert *bert, int on)
{
    pick_kernels(&bert->cfg, on, 1, &bert->simd, &bert->attn_own, &bert->attn_wide);
    return bert->simd;
}


/* ---- workspace ------------------------------------------------------------------------------------------ */

void xmci_bert_workspace_free(xmci_bert_workspace *ws)
{
    if (!ws) return;
    free(ws->x);
    free(ws->big);
    free(ws->ctx);
    free(ws->tmp);
    free(ws->scores);
    free(ws->rows);
    free(ws->off);
    free(ws->lens);
    free(ws);
}

/* Makes room for rows sequences, tokens packed tokens and sequences of up to seq tokens. */
static int ws_reserve(xmci_bert_workspace *ws, size_t rows, size_t tokens, size_t seq)
{
    const xmci_bert_config *c = &ws->bert->cfg;
    size_t H = (size_t)c->hidden, wide = 3 * H > (size_t)c->intermediate ? 3 * H : (size_t)c->intermediate;
    if (tokens > ws->cap_tokens) {
        float *p[4];
        size_t width[4] = {H, wide, H, H};
        for (int i = 0; i < 4; i++) p[i] = malloc(tokens * width[i] * sizeof(float));
        if (!p[0] || !p[1] || !p[2] || !p[3]) {
            for (int i = 0; i < 4; i++) free(p[i]);
            return -1;
        }
        free(ws->x), free(ws->big), free(ws->ctx), free(ws->tmp);
        ws->x = p[0], ws->big = p[1], ws->ctx = p[2], ws->tmp = p[3];
        ws->cap_tokens = tokens;
        ws->n = 0; /* the hidden state of the previous forward is gone */
    }
    if (seq > ws->cap_seq) {
        /* sgemm's L x L, or the kernels' a, ds (L x Lp) and three d x Lp (attn_forward_simd) */
        size_t Lp = (seq + 7) & ~(size_t)7, d = H / (size_t)c->heads, kern = 2 * seq * Lp + 3 * d * Lp;
        float *s = malloc((kern > seq * seq ? kern : seq * seq) * sizeof *s);
        if (!s) return -1;
        free(ws->scores);
        ws->scores = s;
        ws->cap_seq = seq;
    }
    if (rows > ws->cap_rows) {
        float *r = malloc(rows * H * sizeof *r);
        int *off = malloc((rows + 1) * sizeof *off), *lens = malloc(rows * sizeof *lens);
        if (!r || !off || !lens) { free(r), free(off), free(lens); return -1; }
        if (ws->n) { memcpy(off, ws->off, ((size_t)ws->n + 1) * sizeof *off); memcpy(lens, ws->lens, (size_t)ws->n * sizeof *lens); }
        free(ws->rows), free(ws->off), free(ws->lens);
        ws->rows = r, ws->off = off, ws->lens = lens;
        ws->cap_rows = rows;
    }
    return 0;
}

xmc_err xmci_bert_workspace_new(const xmci_bert *bert, int max_rows, int max_seq, xmci_bert_workspace **out,
                               xmc_error *err)
{
    if (max_rows < 1 || max_seq < 1 || max_seq > bert->cfg.max_positions)
        return xmc_error_set(err, XMC_ERR_ARG, "bert workspace: %d rows of %d tokens (model takes 1..%d tokens)",
                             max_rows, max_seq, bert->cfg.max_positions);
    xmci_bert_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "bert workspace: out of memory");
    ws->bert = bert;
    if (ws_reserve(ws, (size_t)max_rows, (size_t)max_rows * (size_t)max_seq, (size_t)max_seq)) {
        xmci_bert_workspace_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "bert workspace: out of memory for %d x %d tokens", max_rows, max_seq);
    }
    *out = ws;
    return XMC_OK;
}

/* ---- forward -------------------------------------------------------------------------------------------- */

/* y [rows x out] = x [rows x in] W^T, W being [out x in] as HF stores it. */
static void linear(const float *x, int rows, int in, const float *w, int out, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

#ifdef BERT_X86
SIMD static void attn_forward_simd(const float *q, const float *k, const float *v, int ld, float *ctx, int ldc, int L,
                                   int d, float *scratch, int wide);
#endif

/* ---- the first token's attention (the last layer when the pooling reads nothing else) ---------------------- */

/* Row r of dst (compact, width floats a row) = row off[r] of src (ld floats a row), r < n. */
static void first_rows_get(float *dst, const float *src, size_t ld, const int *off, int n, int width)
{
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)r * width, src + (size_t)off[r] * ld, (size_t)width * sizeof *dst);
}

/* Row off[r] of dst (ld floats a row) = row r of src (compact), r < n. */
static void first_rows_put(float *dst, size_t ld, const float *src, const int *off, int n, int width)
{
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)off[r] * ld, src + (size_t)r * width, (size_t)width * sizeof *dst);
}

/* One (sequence, head): the first token's query against the sequence's L keys. p: L floats of scratch. */
static void attn_first_probs(const float *qkv, int ld, int H, int h, int d, int L, float scale, float *p)
{
    const float *q = qkv + h * d;
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < L; j++) {
        const float *k = qkv + (size_t)j * ld + H + h * d;
        float s = 0;
        for (int i = 0; i < d; i++) s += q[i] * k[i];
        p[j] = s * scale;
        mx = p[j] > mx ? p[j] : mx;
    }
    for (int j = 0; j < L; j++) sum += p[j] = expf(p[j] - mx);
    const float inv = 1.0f / sum;
    for (int j = 0; j < L; j++) p[j] *= inv;
}

/* ctx (d floats) = sum_j p_j v_j over the L values of head h. */
static void attn_first_ctx(const float *qkv, int ld, int H, int h, int d, int L, const float *p, float *ctx)
{
    for (int i = 0; i < d; i++) ctx[i] = 0;
    for (int j = 0; j < L; j++) {
        const float *v = qkv + (size_t)j * ld + 2 * H + h * d;
        for (int i = 0; i < d; i++) ctx[i] += p[j] * v[i];
    }
}


/* One sequence's attention, head by head: in the training's kernels where they run (one head's products are
 * small, L x L x d, and two sgemm calls a head cost more in OpenBLAS's setup and packing than they compute),
 * else by sgemm. */
static void attention(const xmci_bert *bert, xmci_bert_workspace *ws, int r)
{
    const int H = bert->cfg.hidden, nh = bert->cfg.heads, d = H / nh, L = ws->lens[r], ld = 3 * H;
    const float *qkv = ws->big + (size_t)ws->off[r] * ld;
    float *ctx = ws->ctx + (size_t)ws->off[r] * H, *s = ws->scores;
    const float scale = 1.0f / sqrtf((float)d);
#ifdef BERT_X86
    if (bert->attn_own) {
        for (int h = 0; h < nh; h++)
            attn_forward_simd(qkv + h * d, qkv + H + h * d, qkv + 2 * H + h * d, ld, ctx + h * d, H, L, d, s,
                              bert->attn_wide);
        return;
    }
#endif
    for (int h = 0; h < nh; h++) {
        const float *q = qkv + h * d, *k = qkv + H + h * d, *v = qkv + 2 * H + h * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, d, scale, q, ld, k, ld, 0.0f, s, L);
        for (int i = 0; i < L; i++) softmax(bert, s + (size_t)i * L, L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, L, 1.0f, s, L, v, ld, 0.0f, ctx + h * d, H);
    }
}

/* A layer after its attention, on rows x[0 .. rows) whose context is in ws->ctx: output projection, residual and
 * LayerNorm, feed-forward, residual and LayerNorm, in place in x. */
static void layer_tail(const xmci_bert *bert, xmci_bert_workspace *ws, const bert_layer *L, float *x, int rows)
{
    const int H = bert->cfg.hidden, F = bert->cfg.intermediate;
    linear(ws->ctx, rows, H, L->wo, H, ws->tmp);
    for (int t = 0; t < rows; t++)
        add_ln(bert, x + (size_t)t * H, ws->tmp + (size_t)t * H, L->bo, L->ln1_w, L->ln1_b);
    linear(x, rows, H, L->wi, F, ws->big);
    bias_act(bert, ws->big, L->bi, (size_t)rows, F);
    linear(ws->big, rows, F, L->w2, H, ws->tmp);
    for (int t = 0; t < rows; t++)
        add_ln(bert, x + (size_t)t * H, ws->tmp + (size_t)t * H, L->b2, L->ln2_w, L->ln2_b);
}

/* The last layer on each sequence's first token alone (as the training's, "the last layer on the first tokens"
 * below): keys and values of every token, the rest on one row per sequence, compact in ws->rows, then put back at
 * the first tokens' rows of ws->x (the other rows keep the layer's input). */
static void last_layer_first(const xmci_bert *bert, xmci_bert_workspace *ws, const bert_layer *L, int n, int T)
{
    const int H = bert->cfg.hidden, nh = bert->cfg.heads, d = H / nh, ld = 3 * H;
    const float scale = 1.0f / sqrtf((float)d);
    for (int t = 0; t < T; t++) memcpy(ws->big + (size_t)t * ld + H, L->bqkv + H, (size_t)(2 * H) * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, 2 * H, H, 1.0f, ws->x, H, L->wqkv + (size_t)H * H, H, 1.0f,
                ws->big + H, ld);
    /* the first tokens' queries (compact in tmp), put in their rows of big */
    first_rows_get(ws->rows, ws->x, H, ws->off, n, H);
    linear(ws->rows, n, H, L->wqkv, H, ws->tmp);
    for (int r = 0; r < n; r++) {
        float *q = ws->big + (size_t)ws->off[r] * ld;
        const float *a = ws->tmp + (size_t)r * H;
        for (int i = 0; i < H; i++) q[i] = L->bqkv[i] + a[i];
    }
    for (int r = 0; r < n; r++)
        for (int h = 0; h < nh; h++) {
            const float *qkv = ws->big + (size_t)ws->off[r] * ld;
            attn_first_probs(qkv, ld, H, h, d, ws->lens[r], scale, ws->scores);
            attn_first_ctx(qkv, ld, H, h, d, ws->lens[r], ws->scores, ws->ctx + (size_t)r * H + h * d);
        }
    layer_tail(bert, ws, L, ws->rows, n);
    first_rows_put(ws->x, H, ws->rows, ws->off, n, H);
}

static xmc_err forward(const xmci_bert *bert, xmci_bert_workspace *ws, const int32_t *ids, const int32_t *type_ids,
                       int stride, const int *lens, int n, int first_only, xmc_error *err);

xmc_err xmci_bert_forward(const xmci_bert *bert, xmci_bert_workspace *ws, const int32_t *ids, const int32_t *type_ids,
                         int stride, const int *lens, int n, xmc_error *err)
{
    return forward(bert, ws, ids, type_ids, stride, lens, n, 0, err);
}

/* first_only: the last layer on the first tokens alone (pooling cls or pooler) */
static xmc_err forward(const xmci_bert *bert, xmci_bert_workspace *ws, const int32_t *ids, const int32_t *type_ids,
                       int stride, const int *lens, int n, int first_only, xmc_error *err)
{
    const xmci_bert_config *c = &bert->cfg;
    const int H = c->hidden, F = c->intermediate; /* not I: <complex.h> via cblas.h */
    if (ws->bert != bert) return xmc_error_set(err, XMC_ERR_ARG, "bert forward: workspace made for another model");
    if (n < 1 || !ids || !lens) return xmc_error_set(err, XMC_ERR_ARG, "bert forward: empty batch");
    size_t total = 0;
    int longest = 0;
    for (int r = 0; r < n; r++) {
        if (lens[r] < 1 || lens[r] > c->max_positions || lens[r] > stride)
            return xmc_error_set(err, XMC_ERR_RANGE, "bert forward: row %d has %d tokens (model takes 1..%d, stride %d)",
                                 r, lens[r], c->max_positions, stride);
        for (int p = 0; p < lens[r]; p++) {
            int32_t id = ids[(size_t)r * stride + p], tt = type_ids ? type_ids[(size_t)r * stride + p] : 0;
            if (id < 0 || id >= c->vocab_size || tt < 0 || tt >= c->type_vocab)
                return xmc_error_set(err, XMC_ERR_RANGE, "bert forward: row %d token %d: id %d / type %d outside the model",
                                     r, p, id, tt);
        }
        total += (size_t)lens[r];
        if (lens[r] > longest) longest = lens[r];
    }
    if (total > (size_t)INT32_MAX / (size_t)(3 * H + F))
        return xmc_error_set(err, XMC_ERR_RANGE, "bert forward: batch of %zu tokens is too large", total);
    if (ws_reserve(ws, (size_t)n, total, (size_t)longest))
        return xmc_error_set(err, XMC_ERR_NOMEM, "bert forward: out of memory for %zu tokens", total);
    ws->n = 0;
    ws->off[0] = 0;
    for (int r = 0; r < n; r++) {
        ws->lens[r] = lens[r];
        ws->off[r + 1] = ws->off[r] + lens[r];
    }
    const int T = (int)total;

    /* embeddings: x = LN(word + position + type) */
    for (int r = 0; r < n; r++)
        for (int p = 0; p < lens[r]; p++) {
            int32_t id = ids[(size_t)r * stride + p], tt = type_ids ? type_ids[(size_t)r * stride + p] : 0;
            float *x = ws->x + (size_t)(ws->off[r] + p) * H;
            const float *we = bert->word + (size_t)id * H, *pe = bert->pos + (size_t)p * H, *te = bert->type + (size_t)tt * H;
            for (int i = 0; i < H; i++) x[i] = we[i] + pe[i] + te[i];
            add_ln(bert, x, NULL, NULL, bert->emb_ln_w, bert->emb_ln_b);
        }

    for (int l = 0; l < c->layers; l++) {
        const bert_layer *L = &bert->layer[l];
        if (first_only && l == c->layers - 1) {
            last_layer_first(bert, ws, L, n, T);
            break;
        }
        /* self-attention */
        /* the bias is written first and sgemm adds to it (beta 1): that replaces OpenBLAS's zeroing pass */
        for (int t = 0; t < T; t++) memcpy(ws->big + (size_t)t * 3 * H, L->bqkv, (size_t)(3 * H) * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, 3 * H, H, 1.0f, ws->x, H, L->wqkv, H, 1.0f, ws->big,
                    3 * H);
        for (int r = 0; r < n; r++) attention(bert, ws, r);
        layer_tail(bert, ws, L, ws->x, T);
    }
    ws->n = n;
    ws->first_only = first_only;
    return XMC_OK;
}

const float *xmci_bert_hidden(const xmci_bert_workspace *ws, int r)
{
    if (r < 0 || r >= ws->n) return NULL;
    return ws->x + (size_t)ws->off[r] * (size_t)ws->bert->cfg.hidden;
}

/* ---- pooling -------------------------------------------------------------------------------------------- */

xmc_err xmci_bert_pooling_parse(const char *name, xmci_bert_pooling *pooling, xmc_error *err)
{
    if (!strcmp(name, "cls")) *pooling = XMCI_BERT_POOL_CLS;
    else if (!strcmp(name, "mean")) *pooling = XMCI_BERT_POOL_MEAN;
    else if (!strcmp(name, "pooler")) *pooling = XMCI_BERT_POOL_POOLER;
    else return xmc_error_set(err, XMC_ERR_ARG, "unknown pooling '%s' (cls, mean or pooler)", name);
    return XMC_OK;
}

xmc_err xmci_bert_pool(const xmci_bert *bert, xmci_bert_workspace *ws, xmci_bert_pooling pooling, int normalize,
                      float *out, xmc_error *err)
{
    const int H = bert->cfg.hidden, n = ws->n;
    if (ws->bert != bert || n < 1) return xmc_error_set(err, XMC_ERR_ARG, "bert pool: no forward pass to pool");
    switch (pooling) {
    case XMCI_BERT_POOL_CLS:
        for (int r = 0; r < n; r++) memcpy(out + (size_t)r * H, xmci_bert_hidden(ws, r), (size_t)H * sizeof *out);
        break;
    case XMCI_BERT_POOL_MEAN:
        if (ws->first_only)
            return xmc_error_set(err, XMC_ERR_ARG,
                                 "bert pool: mean of a forward that computed the last layer at the first tokens only");
        for (int r = 0; r < n; r++) {
            const float *h = xmci_bert_hidden(ws, r);
            float *o = out + (size_t)r * H;
            memset(o, 0, (size_t)H * sizeof *o);
            for (int t = 0; t < ws->lens[r]; t++)
                for (int i = 0; i < H; i++) o[i] += h[(size_t)t * H + i];
            for (int i = 0; i < H; i++) o[i] /= (float)ws->lens[r];
        }
        break;
    case XMCI_BERT_POOL_POOLER:
        if (!bert->pool_w) return xmc_error_set(err, XMC_ERR_NOTFOUND, "bert pool: the model has no pooler.dense weights");
        for (int r = 0; r < n; r++) memcpy(ws->rows + (size_t)r * H, xmci_bert_hidden(ws, r), (size_t)H * sizeof *out);
        linear(ws->rows, n, H, bert->pool_w, H, out);
        for (int r = 0; r < n; r++)
            for (int i = 0; i < H; i++) out[(size_t)r * H + i] = tanhf(out[(size_t)r * H + i] + bert->pool_b[i]);
        break;
    default:
        return xmc_error_set(err, XMC_ERR_ARG, "bert pool: unknown pooling %d", (int)pooling);
    }
    if (normalize)
        for (int r = 0; r < n; r++) {
            float *o = out + (size_t)r * H;
            double ss = 0;
            for (int i = 0; i < H; i++) ss += (double)o[i] * o[i];
            if (ss > 0) {
                float inv = (float)(1.0 / sqrt(ss));
                for (int i = 0; i < H; i++) o[i] *= inv;
            }
        }
    return XMC_OK;
}

xmc_err xmci_bert_embed(const xmci_bert *bert, xmci_bert_workspace *ws, const xmci_wordpiece_batch *batch,
                       xmci_bert_pooling pooling, int normalize, float *out, xmc_error *err)
{
    xmc_err rc = forward(bert, ws, batch->ids, NULL, batch->seq, batch->len, batch->n, pooling != XMCI_BERT_POOL_MEAN,
                         err);
    if (rc) return rc;
    return xmci_bert_pool(bert, ws, pooling, normalize, out, err);
}

/* ==== training ================================================================================================
 *
 * Mirror functions side by side, forward then backward, over plain arrays (llm.c style). The forward pass keeps
 * what the backward needs: each LayerNorm's input with its mean and 1/std, q|k|v, the context, the FFN
 * pre-activation and every layer's output. Two things are recomputed in the backward instead of kept: the
 * GELU output (T x F floats per layer) and each head's attention probabilities (heads x L^2 per sequence and
 * layer). Elementwise kernels: scalar, or AVX2+FMA for GELU, its derivative and softmax (as in the forward
 * above; LayerNorm sums in double).
 *
 * Activation arena, Tm = max_rows * max_seq tokens:
 *   emb_in [Tm x H], emb_mean/emb_rstd [Tm], x[0..layers] [Tm x H] (x[0] = embeddings, x[layers] = output),
 *   per layer: qkv [Tm x 3H], ctx [Tm x H], res1 [Tm x H], mean1/rstd1 [Tm], x1 [Tm x H],
 *              pre [Tm x F], res2 [Tm x H], mean2/rstd2 [Tm];
 *   pool_in [rows x H] ([CLS] rows), pool_out [rows x H].
 * Gradient arena: dx, dx1, dres [Tm x H], dqkv [Tm x 3H], dbig [Tm x F], probs and datt [max_seq^2], dpool [rows x H],
 * dfirst [2 rows x H] (the last layer on the first tokens: their queries' gradient and inputs, compact). */

typedef struct train_layer {
    float *qkv, *ctx, *res1, *mean1, *rstd1, *x1, *pre, *res2, *mean2, *rstd2;
} train_layer;

struct xmci_bert_train {
    xmci_bert_config cfg;
    size_t n_params;           /* layout check against the params given later */
    int has_pooler;
    size_t max_rows, max_seq;
    float *act, *grad;         /* the two arenas */
    size_t act_floats, grad_floats;
    float *emb_in, *emb_mean, *emb_rstd, **x;
    train_layer *layer;
    float *pool_in, *pool_out;
    float *dx, *dx1, *dres, *dqkv, *dbig, *probs, *datt, *dpool, *dfirst;
    int32_t *ids, *types; /* packed token ids of the latest forward */
    int *off, *lens;      /* rows + 1 offsets, rows lengths */
    int n;                /* rows of the latest forward, 0 before */
    xmci_bert_pooling pooling;
    int backward_done;
    int simd; /* AVX2+FMA GELU and softmax kernels */
    int attn_own;              /* attention in our kernels (simd, head size a multiple of 8), else sgemm */
    int attn_wide;             /* those kernels 16 columns at a time (AVX-512; the same bits) */
    int threads;               /* our own threads (attention, elementwise passes, products), 1.. */
    xmci_pool *pool;           /* those threads, kept between passes (NULL for 1) */
    size_t products_split;     /* products cut into row blocks on our threads, since xmci_bert_train_new */
    float *attn_scratch;       /* threads x attn_scratch_floats */
    size_t attn_scratch_floats;
    float drop_p;              /* hidden dropout; 0: off */
    uint32_t drop_keep;        /* an element is kept when its 16-bit draw is >= this (p x 65536) */
    uint64_t drop_seed;        /* picks the masks of the next forward */
    uint8_t *drop_mask;        /* (1 + 2 layers) token sites x max tokens x hidden, then max rows x hidden for the
                                * pooled output: 1 kept, 0 dropped; NULL until p > 0 */
    float *drop_dpooled;       /* max rows x hidden: dL/dpooled through the pooled output's mask */
    int full_last;             /* 1: the last layer over every token whatever the pooling (tests, benches) */
    int first_only;            /* the latest forward ran the last layer on each sequence's first token alone */
};

/* Scratch floats per thread of the attention kernels for sequences of up to S tokens and heads of d (at least the
 * 2 x S of attn_first's probabilities and their gradient). */
static size_t attn_scratch_floats(size_t S, size_t d)
{
    size_t Sp = (S + 7) & ~(size_t)7;
#ifdef BERT_X86
    return 2 * S * Sp + 3 * d * Sp;
#else
    (void)Sp, (void)d;
    return 2 * S;
#endif
}

/* ---- parameters ---------------------------------------------------------------------------------------------- */

/* Tensor table in HF file order; offsets place each layer's q, k, v weights (then biases) side by side. */
static xmc_err params_layout(const xmci_bert_config *c, int has_pooler, xmci_bert_params *p, xmc_error *err)
{
    const int H = c->hidden, F = c->intermediate;
    int nt = 5 + 16 * c->layers + (has_pooler ? 2 : 0);
    p->tensor = calloc((size_t)nt, sizeof *p->tensor);
    if (!p->tensor) return xmc_error_set(err, XMC_ERR_NOMEM, "bert params: out of memory");
    size_t off = 0;
    int k = 0;
#define ADD(nm, r, cc, at)                                                                                          \
    do {                                                                                                            \
        xmci_bert_tensor *t_ = &p->tensor[k++];                                                                      \
        snprintf(t_->name, sizeof t_->name, "%s", nm);                                                              \
        t_->rows = (r), t_->cols = (cc), t_->offset = (at);                                                         \
    } while (0)
    ADD("embeddings.word_embeddings.weight", c->vocab_size, H, off); off += (size_t)c->vocab_size * H;
    ADD("embeddings.position_embeddings.weight", c->max_positions, H, off); off += (size_t)c->max_positions * H;
    ADD("embeddings.token_type_embeddings.weight", c->type_vocab, H, off); off += (size_t)c->type_vocab * H;
    ADD("embeddings.LayerNorm.weight", H, 0, off); off += (size_t)H;
    ADD("embeddings.LayerNorm.bias", H, 0, off); off += (size_t)H;
    char name[80];
    for (int l = 0; l < c->layers; l++) {
        static const char *const qkv[3] = {"query", "key", "value"};
        size_t wqkv = off, bqkv = off + (size_t)3 * H * H;
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.weight", l, qkv[j]);
            ADD(name, H, H, wqkv + (size_t)j * H * H);
            snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.bias", l, qkv[j]);
            ADD(name, H, 0, bqkv + (size_t)j * H);
        }
        off += (size_t)3 * H * H + (size_t)3 * H;
        static const struct { const char *suffix; int out, in; } rest[10] = {
            {"attention.output.dense.weight", 0, 0}, {"attention.output.dense.bias", 0, -1},
            {"attention.output.LayerNorm.weight", 0, -1}, {"attention.output.LayerNorm.bias", 0, -1},
            {"intermediate.dense.weight", 1, 0}, {"intermediate.dense.bias", 1, -1},
            {"output.dense.weight", 0, 1}, {"output.dense.bias", 0, -1},
            {"output.LayerNorm.weight", 0, -1}, {"output.LayerNorm.bias", 0, -1}};
        for (int j = 0; j < 10; j++) {
            int r = rest[j].out ? F : H, cc = rest[j].in < 0 ? 0 : rest[j].in ? F : H;
            snprintf(name, sizeof name, "encoder.layer.%d.%s", l, rest[j].suffix);
            ADD(name, r, cc, off);
            off += (size_t)r * (size_t)(cc ? cc : 1);
        }
    }
    if (has_pooler) {
        ADD("pooler.dense.weight", H, H, off); off += (size_t)H * H;
        ADD("pooler.dense.bias", H, 0, off); off += (size_t)H;
    }
#undef ADD
    p->n_tensors = k;
    p->n = off;
    p->cfg = *c;
    p->has_pooler = has_pooler;
    return XMC_OK;
}

size_t xmci_bert_tensor_size(const xmci_bert_tensor *t) { return (size_t)t->rows * (size_t)(t->cols ? t->cols : 1); }

void xmci_bert_params_free(xmci_bert_params *p)
{
    if (!p) return;
    free(p->tensor);
    free(p->mem);
    free(p);
}

void xmci_bert_params_zero(xmci_bert_params *p) { memset(p->mem, 0, p->n * sizeof *p->mem); }

const xmci_bert_tensor *xmci_bert_params_find(const xmci_bert_params *p, const char *name)
{
    if (!strncmp(name, "bert.", 5)) name += 5;
    for (int i = 0; i < p->n_tensors; i++)
        if (!strcmp(p->tensor[i].name, name)) return &p->tensor[i];
    return NULL;
}

static xmc_err params_alloc(const xmci_bert_config *c, int has_pooler, xmci_bert_params **out, xmc_error *err)
{
    xmci_bert_params *p = calloc(1, sizeof *p);
    if (!p) return xmc_error_set(err, XMC_ERR_NOMEM, "bert params: out of memory");
    xmc_err rc = params_layout(c, has_pooler, p, err);
    if (!rc && !(p->mem = calloc(p->n, sizeof *p->mem)))
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "bert params: out of memory for %zu floats", p->n);
    if (rc) {
        xmci_bert_params_free(p);
        return rc;
    }
    *out = p;
    return XMC_OK;
}

xmc_err xmci_bert_params_copy(const xmci_bert *bert, xmci_bert_params **out, xmc_error *err)
{
    xmci_bert_params *p;
    xmc_err rc = params_alloc(&bert->cfg, bert->pool_w != NULL, &p, err);
    if (rc) return rc;
    for (int i = 0; i < p->n_tensors; i++) {
        const xmci_bert_tensor *t = &p->tensor[i];
        const float *src;
        if ((rc = get_tensor(bert, t->name, t->rows, t->cols, &src, err))) {
            xmci_bert_params_free(p);
            return rc;
        }
        memcpy(p->mem + t->offset, src, xmci_bert_tensor_size(t) * sizeof(float));
    }
    *out = p;
    return XMC_OK;
}

xmc_err xmci_bert_params_zeros_like(const xmci_bert_params *params, xmci_bert_params **out, xmc_error *err)
{
    return params_alloc(&params->cfg, params->has_pooler, out, err);
}

/* Pointers into one arena, per layer, in the order of params_layout. */
typedef struct param_layer {
    float *wqkv, *bqkv, *wo, *bo, *ln1_w, *ln1_b, *wi, *bi, *w2, *b2, *ln2_w, *ln2_b;
} param_layer;

typedef struct param_view {
    float *word, *pos, *type, *ln_w, *ln_b, *pool_w, *pool_b;
} param_view;

static param_view view_of(const xmci_bert_params *p)
{
    float *m = p->mem;
    param_view v = {m + p->tensor[0].offset, m + p->tensor[1].offset, m + p->tensor[2].offset,
                    m + p->tensor[3].offset, m + p->tensor[4].offset, NULL, NULL};
    if (p->has_pooler) {
        v.pool_w = m + p->tensor[p->n_tensors - 2].offset;
        v.pool_b = m + p->tensor[p->n_tensors - 1].offset;
    }
    return v;
}

static param_layer layer_of(const xmci_bert_params *p, int l)
{
    const xmci_bert_tensor *t = p->tensor + 5 + 16 * l;
    float *m = p->mem;
    /* t[0] query weight (start of wqkv), t[1] query bias (start of bqkv), t[6..15] the rest in order */
    param_layer L = {m + t[0].offset, m + t[1].offset, m + t[6].offset, m + t[7].offset, m + t[8].offset,
                     m + t[9].offset, m + t[10].offset, m + t[11].offset, m + t[12].offset, m + t[13].offset,
                     m + t[14].offset, m + t[15].offset};
    return L;
}

/* ---- workspace ----------------------------------------------------------------------------------------------- */

void xmci_bert_train_free(xmci_bert_train *tr)
{
    if (!tr) return;
    free(tr->act);
    free(tr->grad);
    free(tr->x);
    free(tr->layer);
    free(tr->ids);
    free(tr->types);
    free(tr->off);
    free(tr->lens);
    free(tr->attn_scratch);
    free(tr->drop_mask);
    free(tr->drop_dpooled);
    xmci_pool_free(tr->pool);
    free(tr);
}

xmc_err xmci_bert_train_new(const xmci_bert_params *params, int max_rows, int max_seq, xmci_bert_train **out,
                           xmc_error *err)
{
    const xmci_bert_config *c = &params->cfg;
    if (max_rows < 1 || max_seq < 1 || max_seq > c->max_positions)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train: %d rows of %d tokens (model takes 1..%d tokens)",
                             max_rows, max_seq, c->max_positions);
    const size_t H = (size_t)c->hidden, F = (size_t)c->intermediate, NL = (size_t)c->layers;
    const size_t R = (size_t)max_rows, S = (size_t)max_seq, Tm = R * S;
    if (Tm > (size_t)INT32_MAX / (3 * H + F))
        return xmc_error_set(err, XMC_ERR_RANGE, "bert train: %d x %d tokens is too large", max_rows, max_seq);
    xmci_bert_train *tr = calloc(1, sizeof *tr);
    if (!tr) return xmc_error_set(err, XMC_ERR_NOMEM, "bert train: out of memory");
    tr->cfg = *c;
    tr->n_params = params->n;
    tr->has_pooler = params->has_pooler;
    tr->max_rows = R, tr->max_seq = S;
    tr->act_floats = Tm * H + 2 * Tm + (NL + 1) * Tm * H + NL * (Tm * 3 * H + 3 * Tm * H + 4 * Tm + Tm * F + Tm * H) +
                     2 * R * H;
    tr->grad_floats = 3 * Tm * H + Tm * 3 * H + Tm * F + 2 * S * S + R * H + 2 * R * H;
    tr->act = malloc(tr->act_floats * sizeof(float));
    tr->grad = malloc(tr->grad_floats * sizeof(float));
    tr->x = calloc(NL + 1, sizeof *tr->x);
    tr->layer = calloc(NL, sizeof *tr->layer);
    tr->ids = malloc(Tm * sizeof *tr->ids);
    tr->types = malloc(Tm * sizeof *tr->types);
    tr->off = malloc((R + 1) * sizeof *tr->off);
    tr->lens = malloc(R * sizeof *tr->lens);
    tr->threads = 1;
    /* our attention kernels' (x86), or at least the first-token attention's (attn_first: 2 x S), everywhere */
    tr->attn_scratch_floats = attn_scratch_floats(S, H / (size_t)c->heads);
    tr->attn_scratch = malloc(tr->attn_scratch_floats * sizeof(float));
    if (!tr->act || !tr->grad || !tr->x || !tr->layer || !tr->ids || !tr->types || !tr->off || !tr->lens ||
        (tr->attn_scratch_floats && !tr->attn_scratch)) {
        size_t bytes = (tr->act_floats + tr->grad_floats) * sizeof(float);
        xmci_bert_train_free(tr);
        return xmc_error_set(err, XMC_ERR_NOMEM, "bert train: out of memory for %zu bytes (%d x %d tokens)", bytes,
                             max_rows, max_seq);
    }
    float *a = tr->act;
#define TAKE(ptr, count) (ptr = a, a += (count))
    TAKE(tr->emb_in, Tm * H);
    TAKE(tr->emb_mean, Tm);
    TAKE(tr->emb_rstd, Tm);
    for (size_t l = 0; l <= NL; l++) TAKE(tr->x[l], Tm * H);
    for (size_t l = 0; l < NL; l++) {
        train_layer *L = &tr->layer[l];
        TAKE(L->qkv, Tm * 3 * H);
        TAKE(L->ctx, Tm * H);
        TAKE(L->res1, Tm * H);
        TAKE(L->mean1, Tm);
        TAKE(L->rstd1, Tm);
        TAKE(L->x1, Tm * H);
        TAKE(L->pre, Tm * F);
        TAKE(L->res2, Tm * H);
        TAKE(L->mean2, Tm);
        TAKE(L->rstd2, Tm);
    }
    TAKE(tr->pool_in, R * H);
    TAKE(tr->pool_out, R * H);
    a = tr->grad;
    TAKE(tr->dx, Tm * H);
    TAKE(tr->dx1, Tm * H);
    TAKE(tr->dres, Tm * H);
    TAKE(tr->dqkv, Tm * 3 * H);
    TAKE(tr->dbig, Tm * F);
    TAKE(tr->probs, S * S);
    TAKE(tr->datt, S * S);
    TAKE(tr->dpool, R * H);
    TAKE(tr->dfirst, 2 * R * H);
#undef TAKE
    xmci_bert_train_use_simd(tr, 1);
    *out = tr;
    return XMC_OK;
}

int xmci_bert_train_use_simd(xmci_bert_train *tr, int on)
{
    pick_kernels(&tr->cfg, on, 1, &tr->simd, &tr->attn_own, &tr->attn_wide);
    return tr->simd;
}

int xmci_bert_train_use_avx512(xmci_bert_train *tr, int on)
{
    int simd, own;
    pick_kernels(&tr->cfg, tr->simd, on, &simd, &own, &tr->attn_wide);
    return tr->attn_wide;
}

int xmci_bert_train_full_last_layer(xmci_bert_train *tr, int on)
{
    tr->full_last = on != 0;
    tr->n = 0; /* a backward needs a forward made the same way */
    return tr->full_last;
}

xmc_err xmci_bert_train_set_threads(xmci_bert_train *tr, int threads, xmc_error *err)
{
    if (threads < 1 || threads > XMC_MAX_THREADS)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train: %d threads (1..%d)", threads, XMC_MAX_THREADS);
    if (tr->attn_scratch_floats && threads > tr->threads) {
        float *p = realloc(tr->attn_scratch, (size_t)threads * tr->attn_scratch_floats * sizeof(float));
        if (!p)
            return xmc_error_set(err, XMC_ERR_NOMEM, "bert train: out of memory for %d threads' attention scratch",
                                 threads);
        tr->attn_scratch = p;
    }
    if (threads != xmci_pool_threads(tr->pool)) {
        xmci_pool *pool = NULL;
        xmc_err rc = threads > 1 ? xmci_pool_new(threads, &pool, err) : XMC_OK;
        if (rc) return rc;
        xmci_pool_free(tr->pool);
        tr->pool = pool;
    }
    tr->threads = threads;
    return XMC_OK;
}

xmc_err xmci_bert_train_set_dropout(xmci_bert_train *tr, float p, uint64_t seed, xmc_error *err)
{
    if (!(p >= 0.0f && p < 1.0f)) return xmc_error_set(err, XMC_ERR_ARG, "bert train: dropout %g (0 <= p < 1)", p);
    if (p > 0.0f && !tr->drop_mask) {
        const size_t RH = tr->max_rows * (size_t)tr->cfg.hidden,
                     bytes = (1 + 2 * (size_t)tr->cfg.layers) * tr->max_seq * RH + RH;
        tr->drop_mask = malloc(bytes);
        tr->drop_dpooled = malloc(RH * sizeof(float));
        if (!tr->drop_mask || !tr->drop_dpooled) {
            free(tr->drop_mask), free(tr->drop_dpooled);
            tr->drop_mask = NULL, tr->drop_dpooled = NULL;
            return xmc_error_set(err, XMC_ERR_NOMEM, "bert train: out of memory for %zu bytes of dropout masks",
                                 bytes + RH * sizeof(float));
        }
    }
    tr->drop_p = p;
    tr->drop_keep = (uint32_t)lrintf(p * 65536.0f);
    tr->drop_seed = seed;
    tr->n = 0; /* the latest forward's masks belong to the old setting: a backward needs a new forward */
    tr->backward_done = 0;
    return XMC_OK;
}

xmci_pool *xmci_bert_train_pool(const xmci_bert_train *tr) { return tr->pool; }

size_t xmci_bert_train_products_split(const xmci_bert_train *tr) { return tr->products_split; }

void xmci_bert_train_bytes(const xmci_bert_train *tr, size_t *activations, size_t *gradients)
{
    if (activations) *activations = tr->act_floats * sizeof(float);
    if (gradients) *gradients = tr->grad_floats * sizeof(float);
}

const float *xmci_bert_train_hidden(const xmci_bert_train *tr, int r)
{
    if (r < 0 || r >= tr->n) return NULL;
    return tr->x[tr->cfg.layers] + (size_t)tr->off[r] * (size_t)tr->cfg.hidden;
}

const float *xmci_bert_train_d_hidden(const xmci_bert_train *tr, int r)
{
    if (r < 0 || r >= tr->n || !tr->backward_done) return NULL;
    return tr->dx + (size_t)tr->off[r] * (size_t)tr->cfg.hidden;
}

/* ---- the elementwise passes on the library's threads -----------------------------------------------------------
 *
 * Why: between two products OpenBLAS's worker only waits, so a pass on the calling thread alone leaves a core
 * idle (LayerNorm, GELU and the bias sums were ~8 % of a step's samples, all on one core). Rows (or elements) are
 * shared out in chunks from a counter; the reductions over rows (LayerNorm's and the biases' gradients) are split
 * by columns instead, each column summed over the rows in order, so the bits do not depend on the thread count. */

typedef struct par_job {
    void (*fn)(const void *ctx, size_t lo, size_t hi);
    const void *ctx;
    size_t n, grain;
    atomic_size_t next;
} par_job;

static void *par_worker(void *arg)
{
    par_job *j = arg;
    for (size_t lo; (lo = atomic_fetch_add(&j->next, j->grain)) < j->n;)
        j->fn(j->ctx, lo, lo + j->grain < j->n ? lo + j->grain : j->n);
    return NULL;
}

/* fn(ctx, lo, hi) over [0, n) items of `width` floats each, on up to threads threads: about four chunks per thread
 * (the counter balances them), chunk starts a multiple of align; on the caller's thread alone below PAR_MIN_FLOATS,
 * where starting threads would cost more than the pass. */
#define PAR_MIN_FLOATS 8192
static void par_for(xmci_pool *pool, size_t n, size_t width, size_t align, void (*fn)(const void *, size_t, size_t),
                    const void *ctx)
{
    const int threads = xmci_pool_threads(pool);
    if (threads <= 1 || n * width < PAR_MIN_FLOATS) {
        fn(ctx, 0, n);
        return;
    }
    size_t grain = (n + 4 * (size_t)threads - 1) / (4 * (size_t)threads);
    grain = (grain + align - 1) / align * align;
    size_t chunks = (n + grain - 1) / grain;
    par_job j = {.fn = fn, .ctx = ctx, .n = n, .grain = grain};
    atomic_init(&j.next, 0);
    xmci_pool_run(pool, par_worker, &j, chunks < (size_t)threads ? (int)chunks : threads);
}

/* Column and element chunks start at multiples of 8 floats: whole vectors for the SIMD kernels, so that the same
 * elements take the vector path (and give the same bits) for any thread count. */
#define PAR_COLS(cols, rows) (size_t)(cols), (size_t)(rows), 8
#define PAR_ROWS(rows, cols) (size_t)(rows), (size_t)(cols), 1
#define PAR_ELEMS(n) (size_t)(n), 1, 8

/* ---- LayerNorm ----------------------------------------------------------------------------------------------- */

typedef struct ln_args {
    float *res;           /* forward: LN's input; res += add first when add is not NULL */
    const float *add, *in, *dout, *mean_in, *rstd_in, *w, *b;
    float *out, *mean, *rstd, *din, *dw, *db;
    int n, rows_for_cols;
    float eps;
} ln_args;

/* out = LN(res (+= add)) over rows of n, keeping mean and 1/std per row (sums in double: the reference is float64). */
static void ln_forward_rows(const void *ctx, size_t lo, size_t hi)
{
    const ln_args *A = ctx;
    const int n = A->n;
    for (size_t r = lo; r < hi; r++) {
        float *in = A->res + r * n, *out = A->out + r * n;
        int i = 0;
        if (A->add) {
            const float *add = A->add + r * n;
#ifdef __SSE2__
            for (; i + 4 <= n; i += 4) _mm_storeu_ps(in + i, _mm_add_ps(_mm_loadu_ps(in + i), _mm_loadu_ps(add + i)));
#endif
            for (; i < n; i++) in[i] += add[i];
        }
        double s = 0, v = 0;
        for (i = 0; i < n; i++) s += in[i];
        double mu = s / n;
        for (i = 0; i < n; i++) v += (in[i] - mu) * (in[i] - mu);
        float rs = (float)(1.0 / sqrt(v / n + A->eps));
        A->mean[r] = (float)mu, A->rstd[r] = rs;
        i = 0;
#ifdef __SSE2__
        /* the scalar loop's operations in its order, four columns at a time: the same bits */
        const __m128 vmu = _mm_set1_ps((float)mu), vrs = _mm_set1_ps(rs);
        for (; i + 4 <= n; i += 4) {
            __m128 t = _mm_mul_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(in + i), vmu), vrs), _mm_loadu_ps(A->w + i));
            _mm_storeu_ps(out + i, _mm_add_ps(t, _mm_loadu_ps(A->b + i)));
        }
#endif
        for (; i < n; i++) out[i] = (in[i] - (float)mu) * rs * A->w[i] + A->b[i];
    }
}

static void ln_forward(xmci_pool *pool, float *res, const float *add, float *out, float *mean, float *rstd, const float *w,
                       const float *b, int rows, int n, float eps)
{
    ln_args A = {.res = res, .add = add, .out = out, .mean = mean, .rstd = rstd, .w = w, .b = b, .n = n, .eps = eps};
    par_for(pool, PAR_ROWS(rows, n), ln_forward_rows, &A);
}

/* din = dLN(dout) (overwritten), by rows */
static void ln_backward_rows(const void *ctx, size_t lo, size_t hi)
{
    const ln_args *A = ctx;
    const int n = A->n;
    for (size_t r = lo; r < hi; r++) {
        const float *dout = A->dout + r * n, *in = A->in + r * n, mu = A->mean_in[r], rs = A->rstd_in[r];
        float *din = A->din + r * n;
        double mdn = 0, mdnx = 0;
        for (int i = 0; i < n; i++) {
            float xhat = (in[i] - mu) * rs, dn = dout[i] * A->w[i];
            mdn += dn, mdnx += (double)dn * xhat;
        }
        float a = (float)(mdn / n), bb = (float)(mdnx / n);
        int i = 0;
#ifdef __SSE2__
        const __m128 vmu = _mm_set1_ps(mu), vrs = _mm_set1_ps(rs), va = _mm_set1_ps(a), vb = _mm_set1_ps(bb);
        for (; i + 4 <= n; i += 4) {
            __m128 xhat = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(in + i), vmu), vrs);
            __m128 t = _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(dout + i), _mm_loadu_ps(A->w + i)), va);
            _mm_storeu_ps(din + i, _mm_mul_ps(vrs, _mm_sub_ps(t, _mm_mul_ps(xhat, vb))));
        }
#endif
        for (; i < n; i++) {
            float xhat = (in[i] - mu) * rs;
            din[i] = rs * (dout[i] * A->w[i] - a - xhat * bb);
        }
    }
}

/* Columns summed per sub-chunk in local accumulators: through the argument struct's pointers (which may alias) GCC
 * loads and stores dw, db at every row and does not vectorise. Four columns at a time (SSE, x86-64's baseline):
 * each column still adds its rows in order, so the sums are the same bits as one column at a time. */
#define COL_BLOCK 256

/* dw += sum over rows of dout * xhat, db += sum of dout, for the columns [lo, hi) */
static void ln_backward_cols(const void *ctx, size_t lo, size_t hi)
{
    const ln_args *A = ctx;
    const size_t n = (size_t)A->n, rows = (size_t)A->rows_for_cols;
    for (size_t c0 = lo; c0 < hi; c0 += COL_BLOCK) {
        const size_t w = hi - c0 < COL_BLOCK ? hi - c0 : COL_BLOCK;
        float dw[COL_BLOCK], db[COL_BLOCK];
        memcpy(dw, A->dw + c0, w * sizeof *dw);
        memcpy(db, A->db + c0, w * sizeof *db);
        for (size_t r = 0; r < rows; r++) {
            const float *restrict dout = A->dout + r * n + c0, *restrict in = A->in + r * n + c0;
            const float mu = A->mean_in[r], rs = A->rstd_in[r];
            size_t i = 0;
#ifdef __SSE2__
            const __m128 vmu = _mm_set1_ps(mu), vrs = _mm_set1_ps(rs);
            for (; i + 4 <= w; i += 4) {
                __m128 d = _mm_loadu_ps(dout + i);
                __m128 xhat = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(in + i), vmu), vrs);
                _mm_storeu_ps(dw + i, _mm_add_ps(_mm_loadu_ps(dw + i), _mm_mul_ps(d, xhat)));
                _mm_storeu_ps(db + i, _mm_add_ps(_mm_loadu_ps(db + i), d));
            }
#endif
            for (; i < w; i++) {
                dw[i] += dout[i] * ((in[i] - mu) * rs);
                db[i] += dout[i];
            }
        }
        memcpy(A->dw + c0, dw, w * sizeof *dw);
        memcpy(A->db + c0, db, w * sizeof *db);
    }
}

/* din = dLN(dout) (overwritten); dw += dout * xhat, db += dout. */
static void ln_backward(xmci_pool *pool, const float *dout, const float *in, const float *mean, const float *rstd,
                        const float *w, float *din, float *dw, float *db, int rows, int n)
{
    ln_args A = {.in = in, .dout = dout, .mean_in = mean, .rstd_in = rstd, .w = w, .din = din, .dw = dw, .db = db,
                 .n = n, .rows_for_cols = rows};
    par_for(pool, PAR_COLS(n, rows), ln_backward_cols, &A);
    par_for(pool, PAR_ROWS(rows, n), ln_backward_rows, &A);
}

/* ---- linear layers: y = x W^T + b; dx (+)= dy W, dW += dy^T x, db += colsum(dy) -------------------------------- */

/* ---- the products: OpenBLAS's threads or ours, never both ----------------------------------------------------
 *
 * Why: with OpenBLAS at several threads its workers spin (sched_yield, 2^28 cycles by default) between two
 * products, on the same cores as our elementwise passes, and the process cannot shorten that wait
 * (OPENBLAS_THREAD_TIMEOUT is read when OpenBLAS loads). With OpenBLAS at one thread and ours at more, each
 * product is cut into row blocks of C, one single-threaded sgemm per block on our threads, and only one pool
 * exists. Blocks start at multiples of GEMM_ROW_ALIGN rows, so every block meets the kernels' tiles as the whole
 * product does: with SkylakeX's, Sandybridge's and Prescott's kernels the same bits for any thread count, with
 * Haswell's and Zen's not (about 1e-6 relative apart; test_products_split_same_bits). */
#define GEMM_ROW_ALIGN 64
#define GEMM_MIN_FLOPS (1 << 22) /* below this a product runs on the calling thread */

typedef struct gemm_args {
    CBLAS_TRANSPOSE ta, tb;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b, *bias; /* bias: when set, each C row is set to it first (beta must be 1) */
    float *c;
} gemm_args;

static void gemm_rows(const void *ctx, size_t lo, size_t hi)
{
    const gemm_args *g = ctx;
    const float *a = g->a + (g->ta == CblasNoTrans ? lo * (size_t)g->lda : lo);
    float *c = g->c + lo * (size_t)g->ldc;
    if (g->bias)
        for (size_t r = 0; r < hi - lo; r++) memcpy(c + r * g->ldc, g->bias, (size_t)g->n * sizeof *c);
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, (int)(hi - lo), g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
                c, g->ldc);
}

static void gemm_run(xmci_bert_train *tr, const gemm_args *g)
{
    const int threads = tr->threads;
    const size_t blocks = ((size_t)g->m + GEMM_ROW_ALIGN - 1) / GEMM_ROW_ALIGN;
    if (threads <= 1 || blocks < 2 || (double)g->m * g->n * g->k < GEMM_MIN_FLOPS || openblas_get_num_threads() > 1) {
        gemm_rows(g, 0, (size_t)g->m);
        return;
    }
    /* one contiguous part per thread: each packs op(B) once */
    const int parts = (size_t)threads < blocks ? threads : (int)blocks;
    tr->products_split++;
    const size_t grain = (blocks + (size_t)parts - 1) / (size_t)parts * GEMM_ROW_ALIGN;
    par_job j = {.fn = gemm_rows, .ctx = g, .n = (size_t)g->m, .grain = grain};
    atomic_init(&j.next, 0);
    xmci_pool_run(tr->pool, par_worker, &j, parts);
}

static void gemm(xmci_bert_train *tr, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_args g = {ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, a, b, NULL, c};
    gemm_run(tr, &g);
}

static void linear_forward(xmci_bert_train *tr, const float *x, int rows, int in, const float *w, const float *b,
                           int out, float *y)
{
    gemm_args g = {CblasNoTrans, CblasTrans, rows, out, in, in, in, out, 1.0f, 1.0f, x, w, b, y};
    gemm_run(tr, &g);
}

typedef struct colsum_args {
    const float *dy;
    float *db;
    size_t rows, cols;
} colsum_args;

static void colsum_cols(const void *ctx, size_t lo, size_t hi)
{
    const colsum_args *A = ctx;
    for (size_t c0 = lo; c0 < hi; c0 += COL_BLOCK) {
        const size_t w = hi - c0 < COL_BLOCK ? hi - c0 : COL_BLOCK;
        float db[COL_BLOCK];
        memcpy(db, A->db + c0, w * sizeof *db);
        for (size_t r = 0; r < A->rows; r++) {
            const float *restrict dy = A->dy + r * A->cols + c0;
            size_t j = 0;
#ifdef __SSE2__
            for (; j + 4 <= w; j += 4) _mm_storeu_ps(db + j, _mm_add_ps(_mm_loadu_ps(db + j), _mm_loadu_ps(dy + j)));
#endif
            for (; j < w; j++) db[j] += dy[j];
        }
        memcpy(A->db + c0, db, w * sizeof *db);
    }
}

/* db += colsum(dy), dy: rows x cols */
static void colsum_add(xmci_pool *pool, const float *dy, int rows, int cols, float *db)
{
    colsum_args A = {dy, db, (size_t)rows, (size_t)cols};
    par_for(pool, PAR_COLS(cols, rows), colsum_cols, &A);
}

/* accumulate: dx += (1) or dx = (0) */
static void linear_backward(xmci_bert_train *tr, const float *dy, const float *x, int rows, int in,
                            const float *w, int out, float *dx, int accumulate, float *dw, float *db)
{
    gemm(tr, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w, in, accumulate ? 1.0f : 0.0f, dx, in);
    gemm(tr, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dw, in);
    colsum_add(tr->pool, dy, rows, out, db);
}

/* ---- GELU ---------------------------------------------------------------------------------------------------- */

static float act_grad(float v, xmci_bert_act act)
{
    switch (act) {
    case XMCI_BERT_GELU:
        return 0.5f * (1.0f + erff(v * 0.70710678118654752f)) + v * expf(-0.5f * v * v) * 0.39894228040143268f;
    case XMCI_BERT_GELU_TANH: {
        const float k = 0.79788456080286536f;
        float u = k * (v + 0.044715f * v * v * v), t = tanhf(u);
        return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * v * v);
    }
    case XMCI_BERT_RELU: return v > 0 ? 1.0f : 0.0f;
    }
    return 1.0f;
}

#ifdef BERT_X86

SIMD static void gelu_forward_simd(const float *pre, float *out, size_t n)
{
    size_t n8 = n & ~(size_t)7;
    for (size_t i = 0; i < n8; i += 8) _mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(pre + i)));
    for (size_t i = n8; i < n; i++) out[i] = gelu_scalar(pre[i], XMCI_BERT_GELU);
}

/* d *= gelu'(v) = Phi(v) + v phi(v) */
SIMD static void gelu_backward_simd(const float *pre, float *d, size_t n)
{
    size_t n8 = n & ~(size_t)7;
    for (size_t i = 0; i < n8; i += 8) {
        __m256 v = _mm256_loadu_ps(pre + i);
        __m256 cdf = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), erf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f))),
                                     _mm256_set1_ps(0.5f));
        __m256 pdf = _mm256_mul_ps(exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(v, v))),
                                   _mm256_set1_ps(0.39894228040143268f));
        _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_loadu_ps(d + i), _mm256_fmadd_ps(v, pdf, cdf)));
    }
    for (size_t i = n8; i < n; i++) d[i] *= act_grad(pre[i], XMCI_BERT_GELU);
}
#endif

typedef struct act_args {
    const float *pre;
    float *out; /* forward: act(pre); backward: d *= act'(pre) in place */
    xmci_bert_act act;
    int simd, backward;
} act_args;

static void act_range(const void *ctx, size_t lo, size_t hi)
{
    const act_args *A = ctx;
    const float *pre = A->pre + lo;
    float *o = A->out + lo;
    const size_t n = hi - lo;
#ifdef BERT_X86
    if (A->simd && A->act == XMCI_BERT_GELU) {
        if (A->backward) gelu_backward_simd(pre, o, n);
        else gelu_forward_simd(pre, o, n);
        return;
    }
#endif
    if (A->backward)
        for (size_t i = 0; i < n; i++) o[i] *= act_grad(pre[i], A->act);
    else
        for (size_t i = 0; i < n; i++) o[i] = gelu_scalar(pre[i], A->act);
}

/* out = act(pre) */
static void act_forward(xmci_pool *pool, const float *pre, float *out, size_t n, xmci_bert_act act, int simd)
{
    act_args A = {pre, out, act, simd, 0};
    par_for(pool, PAR_ELEMS(n), act_range, &A);
}

/* d *= act'(pre) */
static void act_backward(xmci_pool *pool, const float *pre, float *d, size_t n, xmci_bert_act act, int simd)
{
    act_args A = {pre, d, act, simd, 1};
    par_for(pool, PAR_ELEMS(n), act_range, &A);
}

/* ---- attention of one sequence (L tokens at qkv, ld = 3H) ---------------------------------------------------- */

/* A = softmax(scale q k^T) of one head into a (L x L). The backward pass calls it again rather than keeping
 * every head's probabilities: that would be rows x heads x seq^2 floats per layer (24 MiB of 32 x 128 for
 * MiniLM, 100 MiB at seq 256), against one more L x L x d product per head (~3 % of the step). */
static void attention_probs(const float *q, const float *k, int ld, float *a, int L, int d, int simd)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, d, 1.0f / sqrtf((float)d), q, ld, k, ld, 0.0f, a, L);
    for (int i = 0; i < L; i++) {
#ifdef BERT_X86
        if (simd) {
            softmax_simd(a + (size_t)i * L, L);
            continue;
        }
#endif
        softmax_scalar(a + (size_t)i * L, L);
    }
    (void)simd;
}

/* a is L x L scratch */
static void attention_forward(const float *qkv, float *a, float *ctx, int L, int H, int nh, int simd)
{
    const int d = H / nh, ld = 3 * H;
    for (int h = 0; h < nh; h++) {
        const float *q = qkv + h * d, *k = qkv + H + h * d, *v = qkv + 2 * H + h * d;
        attention_probs(q, k, ld, a, L, d, simd);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, L, 1.0f, a, L, v, ld, 0.0f, ctx + h * d, H);
    }
}

/* ctx_h = A V_h:  dA = dctx_h V_h^T, dV_h = A^T dctx_h;  dS = A o (dA - rowsum(dA o A));
 * S = scale Q K^T:  dQ = scale dS K, dK = scale dS^T Q.  dqkv is overwritten; a and datt are L x L scratch. */
static void attention_backward(const float *qkv, float *a, const float *dctx, float *dqkv, float *datt, int L, int H,
                               int nh, int simd)
{
    const int d = H / nh, ld = 3 * H;
    const float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < nh; h++) {
        const float *q = qkv + h * d, *k = qkv + H + h * d, *v = qkv + 2 * H + h * d;
        attention_probs(q, k, ld, a, L, d, simd);
        const float *dc = dctx + h * d;
        float *dq = dqkv + h * d, *dk = dqkv + H + h * d, *dv = dqkv + 2 * H + h * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, d, 1.0f, dc, H, v, ld, 0.0f, datt, L);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, L, 1.0f, a, L, dc, H, 0.0f, dv, ld);
        for (int i = 0; i < L; i++) {
            float *ds = datt + (size_t)i * L;
            const float *ai = a + (size_t)i * L;
            double dot = 0;
            for (int j = 0; j < L; j++) dot += (double)ds[j] * ai[j];
            for (int j = 0; j < L; j++) ds[j] = ai[j] * (ds[j] - (float)dot);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, L, scale, datt, L, k, ld, 0.0f, dq, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, L, scale, datt, L, q, ld, 0.0f, dk, ld);
    }
}

#ifdef BERT_X86
/* ---- attention of one (sequence, head) in kernels of our own --------------------------------------------------
 *
 * Why not sgemm: these products are L x L x d (128 x 128 x 32 for MiniLM), 16,000 of them per training step;
 * OpenBLAS wakes its thread pool for each one and repacks both operands, and ran them at a tenth of its large-product
 * speed. These kernels run one (sequence, head) on one thread, so that the caller runs the pairs on threads of its
 * own (attn_run) while OpenBLAS's pool is idle between the linear layers. Register blocks of 8 accumulators: FMA's
 * latency (4) times its two pipes. Lp = L rounded up to 8 is the row stride of the L x L scratch; the columns past
 * L are zero or ignored and never read as data. d must be a multiple of 8 (attn_kernels_fit). */

/* Rows i0 .. i0 + m - 1 (m <= 6) of s = alpha x yt over NV vectors of W columns from j; rows past m repeat row i0
 * and are not stored. One body for the 8-wide (AVX2) and the 16-wide (AVX-512) kernels: P is the intrinsics'
 * prefix (_mm256 / _mm512), V the vector type. */
#define ATTN_NT_BLOCK(NAME, ATTR, V, P, W)                                                                            \
    ATTR static inline __attribute__((always_inline)) void NAME(const float *x, int ldx, const float *yt, float *s,  \
                                                                int Lp, int d, int i0, int m, int j, V va,          \
                                                                const int NV)                                       \
    {                                                                                                               \
        V c[6][2];                                                                                                  \
        const float *xr[6];                                                                                         \
        _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++)                                                         \
        {                                                                                                           \
            xr[r] = x + (size_t)(i0 + (r < m ? r : 0)) * ldx;                                                       \
            c[r][0] = c[r][1] = P##_setzero_ps();                                                                   \
        }                                                                                                           \
        for (int k = 0; k < d; k++) {                                                                               \
            V y[2];                                                                                                 \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                                    \
                y[v] = P##_loadu_ps(yt + (size_t)k * Lp + j + W * v);                                               \
            _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++)                                                     \
            {                                                                                                       \
                V b = P##_set1_ps(xr[r][k]);                                                                        \
                _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) c[r][v] = P##_fmadd_ps(b, y[v], c[r][v]);      \
            }                                                                                                       \
        }                                                                                                           \
        _Pragma("GCC unroll 6") for (int r = 0; r < 6; r++) if (r < m)                                              \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                                    \
                P##_storeu_ps(s + (size_t)(i0 + r) * Lp + j + W * v, P##_mul_ps(va, c[r][v]));                      \
    }

ATTN_NT_BLOCK(attn_nt_block, SIMD, __m256, _mm256, 8)

/* s (L x Lp) = alpha x yt, x: L x d (row stride ldx), yt: d x Lp (y transposed, zero past L). */
SIMD static void attn_nt8(const float *x, int ldx, const float *yt, float *s, int L, int Lp, int d, float alpha)
{
    const __m256 va = _mm256_set1_ps(alpha);
    for (int i = 0; i < L; i += 6) {
        int m = L - i < 6 ? L - i : 6, j = 0;
        for (; j + 16 <= Lp; j += 16) attn_nt_block(x, ldx, yt, s, Lp, d, i, m, j, va, 2);
        for (; j < Lp; j += 8) attn_nt_block(x, ldx, yt, s, Lp, d, i, m, j, va, 1);
    }
}

/* Rows i0 .. i0 + m - 1 (m <= 3) of out = alpha P z over NV * 8 columns from col; P(i, j) = p[i * ps + j * pt],
 * j < L. Rows past m repeat row i0 and are not stored. */
SIMD static inline __attribute__((always_inline)) void attn_pz_block(const float *p, int ps, int pt, const float *z,
                                                                    int ldz, float *out, int ldo, int i0, int m,
                                                                    int col, int L, __m256 va, const int NV)
{
    __m256 c0[4], c1[4], c2[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) c0[v] = c1[v] = c2[v] = _mm256_setzero_ps();
    const float *p0 = p + (size_t)i0 * ps, *p1 = p0 + (m > 1 ? ps : 0), *p2 = p0 + (m > 2 ? 2 * (size_t)ps : 0);
    const float *zc = z + col;
    for (int j = 0; j < L; j++) {
        const size_t o = (size_t)j * pt;
        __m256 b0 = _mm256_broadcast_ss(p0 + o), b1 = _mm256_broadcast_ss(p1 + o), b2 = _mm256_broadcast_ss(p2 + o);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 zv = _mm256_loadu_ps(zc + (size_t)j * ldz + 8 * v);
            c0[v] = _mm256_fmadd_ps(b0, zv, c0[v]);
            c1[v] = _mm256_fmadd_ps(b1, zv, c1[v]);
            c2[v] = _mm256_fmadd_ps(b2, zv, c2[v]);
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        _mm256_storeu_ps(out + (size_t)i0 * ldo + col + 8 * v, _mm256_mul_ps(va, c0[v]));
        if (m > 1) _mm256_storeu_ps(out + (size_t)(i0 + 1) * ldo + col + 8 * v, _mm256_mul_ps(va, c1[v]));
        if (m > 2) _mm256_storeu_ps(out + (size_t)(i0 + 2) * ldo + col + 8 * v, _mm256_mul_ps(va, c2[v]));
    }
}

/* out (rows x d, row stride ldo) = alpha P z, P as in attn_pz_block (rows x L), z: L x d (row stride ldz). */
SIMD static void attn_pz8(const float *p, int ps, int pt, const float *z, int ldz, float *out, int ldo, int rows, int L,
                          int d, float alpha)
{
    const __m256 va = _mm256_set1_ps(alpha);
    for (int i = 0; i < rows; i += 3) {
        int m = rows - i < 3 ? rows - i : 3, col = 0;
        for (; col + 32 <= d; col += 32) attn_pz_block(p, ps, pt, z, ldz, out, ldo, i, m, col, L, va, 4);
        for (; col < d; col += 8) attn_pz_block(p, ps, pt, z, ldz, out, ldo, i, m, col, L, va, 1);
    }
}

/* The same two products 16 columns at a time (AVX-512): every output element is still alpha times the FMA chain
 * over k (or j) in order from zero, so the bits are those of the 8-wide kernels above, which take the last 8
 * columns. Rows in blocks of 6 for both (12 or 6 accumulators of the 32 registers). */
ATTN_NT_BLOCK(attn_nt_block16, SIMD512, __m512, _mm512, 16)

SIMD512 static void attn_nt16(const float *x, int ldx, const float *yt, float *s, int L, int Lp, int d, float alpha)
{
    const __m512 va = _mm512_set1_ps(alpha);
    const __m256 va8 = _mm256_set1_ps(alpha);
    for (int i = 0; i < L; i += 6) {
        int m = L - i < 6 ? L - i : 6, j = 0;
        for (; j + 32 <= Lp; j += 32) attn_nt_block16(x, ldx, yt, s, Lp, d, i, m, j, va, 2);
        for (; j + 16 <= Lp; j += 16) attn_nt_block16(x, ldx, yt, s, Lp, d, i, m, j, va, 1);
        for (; j < Lp; j += 8) attn_nt_block(x, ldx, yt, s, Lp, d, i, m, j, va8, 1);
    }
}

SIMD512 static inline __attribute__((always_inline)) void attn_pz_block16(const float *p, int ps, int pt,
                                                                         const float *z, int ldz, float *out, int ldo,
                                                                         int i0, int m, int col, int L, __m512 va,
                                                                         const int NV)
{
    __m512 c[6][2];
    const float *pr[6];
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        pr[r] = p + (size_t)(i0 + (r < m ? r : 0)) * ps;
        c[r][0] = c[r][1] = _mm512_setzero_ps();
    }
    const float *zc = z + col;
    for (int j = 0; j < L; j++) {
        const size_t o = (size_t)j * pt;
        __m512 zv[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) zv[v] = _mm512_loadu_ps(zc + (size_t)j * ldz + 16 * v);
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            __m512 b = _mm512_set1_ps(pr[r][o]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) c[r][v] = _mm512_fmadd_ps(b, zv[v], c[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
        if (r < m)
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                _mm512_storeu_ps(out + (size_t)(i0 + r) * ldo + col + 16 * v, _mm512_mul_ps(va, c[r][v]));
}

SIMD512 static void attn_pz16(const float *p, int ps, int pt, const float *z, int ldz, float *out, int ldo, int rows,
                              int L, int d, float alpha)
{
    const __m512 va = _mm512_set1_ps(alpha);
    const __m256 va8 = _mm256_set1_ps(alpha);
    for (int i = 0; i < rows; i += 6) {
        int m = rows - i < 6 ? rows - i : 6, col = 0;
        for (; col + 32 <= d; col += 32) attn_pz_block16(p, ps, pt, z, ldz, out, ldo, i, m, col, L, va, 2);
        for (; col + 16 <= d; col += 16) attn_pz_block16(p, ps, pt, z, ldz, out, ldo, i, m, col, L, va, 1);
        for (; col < d; col += 8)
            for (int i3 = i; i3 < i + m; i3 += 3)
                attn_pz_block(p, ps, pt, z, ldz, out, ldo, i3, i + m - i3 < 3 ? i + m - i3 : 3, col, L, va8, 1);
    }
}

/* wide: the AVX-512 kernels (same bits) */
SIMD static void attn_nt(const float *x, int ldx, const float *yt, float *s, int L, int Lp, int d, float alpha, int wide)
{
    if (wide) attn_nt16(x, ldx, yt, s, L, Lp, d, alpha);
    else attn_nt8(x, ldx, yt, s, L, Lp, d, alpha);
}

SIMD static void attn_pz(const float *p, int ps, int pt, const float *z, int ldz, float *out, int ldo, int rows, int L,
                         int d, float alpha, int wide)
{
    if (wide) attn_pz16(p, ps, pt, z, ldz, out, ldo, rows, L, d, alpha);
    else attn_pz8(p, ps, pt, z, ldz, out, ldo, rows, L, d, alpha);
}

/* yt (d x Lp) = y^T, zero past L; y: L x d with row stride ld. */
static void attn_transpose(const float *y, int ld, float *yt, int L, int Lp, int d)
{
    for (int k = 0; k < d; k++) {
        float *o = yt + (size_t)k * Lp;
        for (int j = 0; j < L; j++) o[j] = y[(size_t)j * ld + k];
        for (int j = L; j < Lp; j++) o[j] = 0;
    }
}

/* yp (L x d, contiguous) = y (row stride ld). Why: the rows of one head are 3H floats apart in qkv, a stride that
 * maps all L rows to a few L1 sets (MiniLM: 4,608 bytes, 8 of 64 sets), so the kernels read them from L2 at a third
 * of their speed; a packed copy costs L x d moves against 2 L^2 d flops per product. */
static void attn_pack(const float *y, int ld, float *yp, int L, int d)
{
    for (int j = 0; j < L; j++) memcpy(yp + (size_t)j * d, y + (size_t)j * ld, (size_t)d * sizeof *y);
}

/* a (L x Lp) = softmax(scale q k^T) by rows over the first L columns; kt, qp: scratch of d x Lp. */
SIMD static void attn_probs_simd(const float *q, const float *k, int ld, float *a, float *kt, float *qp, int L, int Lp,
                                 int d, int wide)
{
    attn_transpose(k, ld, kt, L, Lp, d);
    attn_pack(q, ld, qp, L, d);
    attn_nt(qp, d, kt, a, L, Lp, d, 1.0f / sqrtf((float)d), wide);
    for (int i = 0; i < L; i++) softmax_simd(a + (size_t)i * Lp, L);
}

/* One head of one sequence; qkv rows of ld = 3H floats, the head's q, k, v at columns 0, H, 2H. Scratch as
 * attn_scratch_floats: a, ds (L x Lp), then three d x Lp. */
SIMD static void attn_forward_simd(const float *q, const float *k, const float *v, int ld, float *ctx, int ldc, int L,
                                   int d, float *scratch, int wide)
{
    const int Lp = (L + 7) & ~7;
    float *a = scratch, *t0 = scratch + 2 * (size_t)L * Lp, *t1 = t0 + (size_t)d * Lp;
    attn_probs_simd(q, k, ld, a, t0, t1, L, Lp, d, wide);
    attn_pack(v, ld, t0, L, d);
    attn_pz(a, Lp, 1, t0, d, ctx, ldc, L, L, d, 1.0f, wide);
}

/* As attention_backward for one head: dq, dk, dv (row stride ld) are overwritten. */
SIMD static void attn_backward_simd(const float *q, const float *k, const float *v, int ld, const float *dc, int lddc,
                                    float *dq, float *dk, float *dv, int L, int d, float *scratch, int wide)
{
    const int Lp = (L + 7) & ~7, L8 = L & ~7;
    const float scale = 1.0f / sqrtf((float)d);
    float *a = scratch, *ds = scratch + (size_t)L * Lp, *t0 = scratch + 2 * (size_t)L * Lp, *t1 = t0 + (size_t)d * Lp,
          *t2 = t1 + (size_t)d * Lp;
    attn_probs_simd(q, k, ld, a, t0, t1, L, Lp, d, wide); /* t1: q packed */
    attn_transpose(v, ld, t0, L, Lp, d);
    attn_pack(dc, lddc, t2, L, d);
    attn_nt(t2, d, t0, ds, L, Lp, d, 1.0f, wide);         /* dA = dctx V^T */
    attn_pz(a, 1, Lp, t2, d, dv, ld, L, L, d, 1.0f, wide); /* dV = A^T dctx */
    for (int i = 0; i < L; i++) { /* dS = A o (dA - rowsum(dA o A)), the sum in double as the scalar path */
        float *dsi = ds + (size_t)i * Lp;
        const float *ai = a + (size_t)i * Lp;
        __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
        for (int j = 0; j < L8; j += 8) {
            __m256 pr = _mm256_mul_ps(_mm256_loadu_ps(dsi + j), _mm256_loadu_ps(ai + j));
            acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(pr)));
            acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(pr, 1)));
        }
        double lanes[4];
        _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
        double dot = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        for (int j = L8; j < L; j++) dot += (double)(dsi[j] * ai[j]);
        const __m256 vdot = _mm256_set1_ps((float)dot);
        for (int j = 0; j < L8; j += 8)
            _mm256_storeu_ps(dsi + j, _mm256_mul_ps(_mm256_loadu_ps(ai + j), _mm256_sub_ps(_mm256_loadu_ps(dsi + j), vdot)));
        for (int j = L8; j < L; j++) dsi[j] = ai[j] * (dsi[j] - (float)dot);
    }
    attn_pack(k, ld, t0, L, d);
    attn_pz(ds, Lp, 1, t0, d, dq, ld, L, L, d, scale, wide); /* dQ = scale dS K */
    attn_pz(ds, 1, Lp, t1, d, dk, ld, L, L, d, scale, wide); /* dK = scale dS^T Q */
}
#endif

/* Attention of every (sequence, head) of a layer on tr->threads threads of our own, one pair at a time from a
 * shared counter; each thread has its own scratch. backward: dctx -> dqkv, else qkv -> ctx. */
typedef struct attn_job {
    const xmci_bert_train *tr;
    const float *qkv, *dctx;
    float *ctx, *dqkv;
    int backward;
    atomic_int next, slot;
} attn_job;

static void *attn_worker(void *arg)
{
    attn_job *job = arg;
    const xmci_bert_train *tr = job->tr;
    const int H = tr->cfg.hidden, nh = tr->cfg.heads, d = H / nh, ld = 3 * H, total = tr->n * nh;
    float *scratch = tr->attn_scratch + (size_t)atomic_fetch_add(&job->slot, 1) * tr->attn_scratch_floats;
    for (int it; (it = atomic_fetch_add(&job->next, 1)) < total;) {
        const int r = it / nh, h = it % nh, L = tr->lens[r];
        const float *qkv = job->qkv + (size_t)tr->off[r] * ld;
        const float *q = qkv + h * d, *k = qkv + H + h * d, *v = qkv + 2 * H + h * d;
#ifdef BERT_X86
        if (job->backward) {
            float *dqkv = job->dqkv + (size_t)tr->off[r] * ld;
            attn_backward_simd(q, k, v, ld, job->dctx + (size_t)tr->off[r] * H + h * d, H, dqkv + h * d,
                               dqkv + H + h * d, dqkv + 2 * H + h * d, L, d, scratch, tr->attn_wide);
        } else
            attn_forward_simd(q, k, v, ld, job->ctx + (size_t)tr->off[r] * H + h * d, H, L, d, scratch, tr->attn_wide);
#else
        (void)q, (void)k, (void)v, (void)L, (void)scratch;
#endif
    }
    return NULL;
}

/* worker over every (sequence, head) pair on our threads, each with its slot of attn_scratch */
static void attn_run(xmci_bert_train *tr, void *(*worker)(void *), const float *qkv, float *ctx, const float *dctx,
                     float *dqkv, int backward)
{
    attn_job job = {.tr = tr, .qkv = qkv, .dctx = dctx, .ctx = ctx, .dqkv = dqkv, .backward = backward};
    atomic_init(&job.next, 0);
    atomic_init(&job.slot, 0);
    xmci_pool_run(tr->pool, worker, &job, tr->threads);
}

/* Our kernels where the CPU and the head size allow them (tr->attn_own), else sgemm per head in this thread. */
static void attn_layer(xmci_bert_train *tr, const float *qkv, float *ctx, const float *dctx, float *dqkv, int backward)
{
    const int H = tr->cfg.hidden;
    if (tr->attn_own) {
        attn_run(tr, attn_worker, qkv, ctx, dctx, dqkv, backward);
        return;
    }
    for (int r = 0; r < tr->n; r++) {
        const size_t o = (size_t)tr->off[r];
        if (backward)
            attention_backward(qkv + o * 3 * H, tr->probs, dctx + o * H, dqkv + o * 3 * H, tr->datt, tr->lens[r], H,
                               tr->cfg.heads, tr->simd);
        else
            attention_forward(qkv + o * 3 * H, tr->probs, ctx + o * H, tr->lens[r], H, tr->cfg.heads, tr->simd);
    }
}

/* ---- the last layer on the first tokens alone ----------------------------------------------------------------
 *
 * Why: with cls or pooler pooling the loss reads the last layer's output at each sequence's first token only, so
 * of that layer only the keys and values of every token are needed (the first token's query attends to them);
 * its attention, output projection, LayerNorms and feed-forward run on one row per sequence. For MiniLM's shape
 * at 128 tokens that is ~13 % of a training step's products that PyTorch computes and throws away. The results
 * are the full layer's, computed on fewer rows (xmci_bert_train_full_last_layer runs the full one, for tests).
 * Compact buffers: row r of the layer's ctx, res1, x1, pre, res2 (and mean, rstd) is sequence r's first token. */

/* attn_worker's job, with dctx and ctx of one row per sequence, dqkv zero where the pass writes nothing */
static void *attn_first_worker(void *arg)
{
    attn_job *job = arg;
    const xmci_bert_train *tr = job->tr;
    const int H = tr->cfg.hidden, nh = tr->cfg.heads, d = H / nh, ld = 3 * H, total = tr->n * nh;
    const float scale = 1.0f / sqrtf((float)d);
    float *p = tr->attn_scratch + (size_t)atomic_fetch_add(&job->slot, 1) * tr->attn_scratch_floats;
    for (int it; (it = atomic_fetch_add(&job->next, 1)) < total;) {
        const int r = it / nh, h = it % nh, L = tr->lens[r];
        const float *qkv = job->qkv + (size_t)tr->off[r] * ld;
        attn_first_probs(qkv, ld, H, h, d, L, scale, p);
        if (!job->backward) {
            attn_first_ctx(qkv, ld, H, h, d, L, p, job->ctx + (size_t)r * H + h * d);
            continue;
        }
        /* dA_j = dctx . v_j, dV_j = p_j dctx; dS_j = p_j (dA_j - p . dA) (the sum in double, as the full pass);
         * dq = scale sum_j dS_j k_j, dK_j = scale dS_j q */
        const float *dc = job->dctx + (size_t)r * H + h * d, *q = qkv + h * d;
        float *dqkv = job->dqkv + (size_t)tr->off[r] * ld, *da = p + tr->max_seq;
        double dot = 0;
        for (int j = 0; j < L; j++) {
            const float *v = qkv + (size_t)j * ld + 2 * H + h * d;
            float *dv = dqkv + (size_t)j * ld + 2 * H + h * d, a = 0;
            for (int i = 0; i < d; i++) {
                a += dc[i] * v[i];
                dv[i] = p[j] * dc[i];
            }
            da[j] = a;
            dot += (double)(a * p[j]);
        }
        float *dq = dqkv + h * d;
        for (int i = 0; i < d; i++) dq[i] = 0;
        for (int j = 0; j < L; j++) {
            const float ds = p[j] * (da[j] - (float)dot) * scale;
            const float *k = qkv + (size_t)j * ld + H + h * d;
            float *dk = dqkv + (size_t)j * ld + H + h * d;
            for (int i = 0; i < d; i++) {
                dq[i] += ds * k[i];
                dk[i] = ds * q[i];
            }
        }
    }
    return NULL;
}

/* backward: dctx (rows x H) -> dqkv (every token's; the queries of the tokens after the first 0), else qkv ->
 * ctx (rows x H); the (sequence, head) pairs on our threads. */
static void attn_first(xmci_bert_train *tr, const float *qkv, float *ctx, const float *dctx, float *dqkv, int backward)
{
    if (backward) memset(dqkv, 0, (size_t)tr->off[tr->n] * 3 * (size_t)tr->cfg.hidden * sizeof *dqkv);
    attn_run(tr, attn_first_worker, qkv, ctx, dctx, dqkv, backward);
}

/* ---- hidden dropout -------------------------------------------------------------------------------------------
 *
 * Element i of site s (0: the embeddings' output, 1 + 2l / 2 + 2l: layer l's attention / feed-forward output
 * before its residual sum, 1 + 2 layers: the pooled output, as PECOS drops it before its head) is kept when a 16-bit draw of a counter-based hash of (seed, s, i) is at or above
 * p x 65536, and kept values are scaled by 1 / (1 - p) (inverted dropout, as torch's). A hash rather than a
 * stream generator: the mask does not depend on the thread count or on the order the passes run in, so a run
 * stopped and resumed draws the same masks. */

typedef struct drop_args {
    float *y;
    uint8_t *mask;
    uint64_t key;
    uint32_t keep;
    float scale;
} drop_args;

static uint64_t drop_mix(uint64_t z) /* splitmix64's finaliser */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The draws of a site's elements 4c .. 4c + 3: 16 bits each of one hash. */
static uint64_t drop_draws(uint64_t key, size_t c) { return drop_mix(key + c * 0x9e3779b97f4a7c15ULL); }

static void drop_range(const void *ctx, size_t lo, size_t hi) /* lo a multiple of 4 (PAR_ELEMS chunks) */
{
    const drop_args *A = ctx;
    for (size_t i = lo; i < hi; i += 4) {
        uint64_t h = drop_draws(A->key, i >> 2);
        for (size_t j = i; j < i + 4 && j < hi; j++, h >>= 16) {
            uint8_t k = (uint32_t)(h & 0xffff) >= A->keep;
            A->mask[j] = k;
            A->y[j] = k ? A->y[j] * A->scale : 0.0f;
        }
    }
}

static int drop_pooled_site(const xmci_bert_train *tr) { return 1 + 2 * tr->cfg.layers; }

/* Elements of site for the latest forward: tokens x hidden, or rows x hidden for the pooled output. */
/* The last layer's two sites hold one row per sequence when that layer ran on the first tokens alone. */
static int drop_first_site(const xmci_bert_train *tr, int site)
{
    return tr->first_only && (site == 2 * tr->cfg.layers - 1 || site == 2 * tr->cfg.layers);
}

/* Elements of site for the latest forward: tokens x hidden, or rows x hidden for the pooled output and for the
 * last layer's sites when it ran on the first tokens alone (stored by row, drop_forward_first). */
static size_t drop_count(const xmci_bert_train *tr, int site)
{
    return (size_t)(site == drop_pooled_site(tr) || drop_first_site(tr, site) ? tr->n : tr->off[tr->n]) *
           (size_t)tr->cfg.hidden;
}

static uint8_t *drop_site(const xmci_bert_train *tr, int site)
{
    return tr->drop_mask + (size_t)site * tr->max_rows * tr->max_seq * (size_t)tr->cfg.hidden;
}

/* The hash key of site's masks for the latest forward. */
static uint64_t drop_key(const xmci_bert_train *tr, int site)
{
    return drop_mix(tr->drop_seed ^ drop_mix((uint64_t)site + 1));
}

/* Draws site's mask for the latest forward and applies it to y, in place. */
static void drop_forward(xmci_bert_train *tr, int site, float *y)
{
    if (tr->drop_p <= 0.0f) return;
    const size_t n = drop_count(tr, site);
    drop_args A = {.y = y, .mask = drop_site(tr, site), .key = drop_key(tr, site), .keep = tr->drop_keep,
                   .scale = 1.0f / (1.0f - tr->drop_p)};
    par_for(tr->pool, PAR_ELEMS(n), drop_range, &A);
}

/* As drop_forward on y, rows x hidden, row r being sequence r's first token: the same draws as that token's
 * elements get over every token (drop_range's hash of the element's place among all tokens), the mask stored by
 * row. n x hidden elements: on the calling thread. */
static void drop_forward_first(xmci_bert_train *tr, int site, float *y)
{
    if (tr->drop_p <= 0.0f) return;
    const size_t H = (size_t)tr->cfg.hidden;
    const uint64_t key = drop_key(tr, site);
    const float scale = 1.0f / (1.0f - tr->drop_p);
    uint8_t *mask = drop_site(tr, site);
    for (int r = 0; r < tr->n; r++)
        for (size_t c = 0; c < H; c++) {
            const size_t i = (size_t)tr->off[r] * H + c, j = (size_t)r * H + c;
            const uint64_t h = drop_draws(key, i >> 2) >> (16 * (i & 3));
            mask[j] = (uint32_t)(h & 0xffff) >= tr->drop_keep;
            y[j] = mask[j] ? y[j] * scale : 0.0f;
        }
}

/* dL/dy through site's mask: out = d x mask / (1 - p); returns d itself when dropout is off (no copy). */
static const float *drop_backward(const xmci_bert_train *tr, int site, const float *d, float *out)
{
    if (tr->drop_p <= 0.0f) return d;
    const size_t n = drop_count(tr, site);
    const uint8_t *m = drop_site(tr, site);
    const float scale = 1.0f / (1.0f - tr->drop_p);
    for (size_t i = 0; i < n; i++) out[i] = m[i] ? d[i] * scale : 0.0f;
    return out;
}

void xmci_bert_train_dropout_kept(const xmci_bert_train *tr, size_t *kept, size_t *total)
{
    size_t k = 0, t = 0;
    if (tr->drop_p > 0.0f && tr->n > 0) {
        const int sites = 2 + 2 * tr->cfg.layers;
        for (int s = 0; s < sites; s++) {
            const size_t n = drop_count(tr, s);
            const uint8_t *m = drop_site(tr, s);
            for (size_t i = 0; i < n; i++) k += m[i];
            t += n;
        }
    }
    *kept = k, *total = t;
}

/* ---- forward / backward of the whole encoder ----------------------------------------------------------------- */

/* Embeddings: x0 = LN(word[id] + position[p] + type[t]) over the packed tokens. */
static void embed_forward(xmci_bert_train *tr, const param_view *pv)
{
    const int H = tr->cfg.hidden, T = tr->off[tr->n];
    for (int r = 0; r < tr->n; r++)
        for (int p = 0; p < tr->lens[r]; p++) {
            int t = tr->off[r] + p;
            float *e = tr->emb_in + (size_t)t * H;
            const float *we = pv->word + (size_t)tr->ids[t] * H, *pe = pv->pos + (size_t)p * H,
                        *te = pv->type + (size_t)tr->types[t] * H;
            for (int i = 0; i < H; i++) e[i] = we[i] + pe[i] + te[i];
        }
    ln_forward(tr->pool, tr->emb_in, NULL, tr->x[0], tr->emb_mean, tr->emb_rstd, pv->ln_w, pv->ln_b, T, H,
               tr->cfg.layer_norm_eps);
    drop_forward(tr, 0, tr->x[0]);
}

/* From dL/dx0 in tr->dx1: the LayerNorm, then each token's row of the three tables (only the rows used). */
static void embed_backward(xmci_bert_train *tr, const param_view *pv, const param_view *gv)
{
    const int H = tr->cfg.hidden, T = tr->off[tr->n];
    drop_backward(tr, 0, tr->dx1, tr->dx1); /* elementwise: in place is safe; nothing when dropout is off */
    ln_backward(tr->pool, tr->dx1, tr->emb_in, tr->emb_mean, tr->emb_rstd, pv->ln_w, tr->dres, gv->ln_w, gv->ln_b,
                T, H);
    for (int r = 0; r < tr->n; r++)
        for (int p = 0; p < tr->lens[r]; p++) {
            int t = tr->off[r] + p;
            const float *d = tr->dres + (size_t)t * H;
            float *gw = gv->word + (size_t)tr->ids[t] * H, *gp = gv->pos + (size_t)p * H,
                  *gt = gv->type + (size_t)tr->types[t] * H;
            for (int i = 0; i < H; i++) gw[i] += d[i], gp[i] += d[i], gt[i] += d[i];
        }
}

/* Layer l: x[l] -> x[l + 1]. */
static void layer_forward(xmci_bert_train *tr, const xmci_bert_params *params, int l)
{
    const xmci_bert_config *c = &tr->cfg;
    const int H = c->hidden, F = c->intermediate, T = tr->off[tr->n];
    const param_layer P = layer_of(params, l);
    train_layer *L = &tr->layer[l];
    const float *x = tr->x[l];
    /* self-attention, residual, LayerNorm */
    linear_forward(tr, x, T, H, P.wqkv, P.bqkv, 3 * H, L->qkv);
    attn_layer(tr, L->qkv, L->ctx, NULL, NULL, 0);
    linear_forward(tr, L->ctx, T, H, P.wo, P.bo, H, L->res1);
    drop_forward(tr, 1 + 2 * l, L->res1);
    ln_forward(tr->pool, L->res1, x, L->x1, L->mean1, L->rstd1, P.ln1_w, P.ln1_b, T, H, c->layer_norm_eps);
    /* feed-forward, residual, LayerNorm; act(pre) lives in the gradient scratch for the moment */
    linear_forward(tr, L->x1, T, H, P.wi, P.bi, F, L->pre);
    act_forward(tr->pool, L->pre, tr->dbig, (size_t)T * F, c->act, tr->simd);
    linear_forward(tr, tr->dbig, T, F, P.w2, P.b2, H, L->res2);
    drop_forward(tr, 2 + 2 * l, L->res2);
    ln_forward(tr->pool, L->res2, L->x1, tr->x[l + 1], L->mean2, L->rstd2, P.ln2_w, P.ln2_b, T, H,
               c->layer_norm_eps);
}

#define SWAP_BUF(a, b)                                                                                                 \
    do {                                                                                                               \
        float *swap_ = (a);                                                                                            \
        (a) = (b);                                                                                                     \
        (b) = swap_;                                                                                                   \
    } while (0)

/* dL/dx[l + 1] in tr->dx1 -> dL/dx[l] in tr->dx1, adding the layer's parameter gradients into grads. tr->dx1 and
 * tr->dres are two T x H buffers of the gradient arena whose roles swap inside a layer (twice, so they end where
 * they started); nothing else keeps their addresses. */
static void layer_backward(xmci_bert_train *tr, const xmci_bert_params *params, xmci_bert_params *grads, int l)
{
    const xmci_bert_config *c = &tr->cfg;
    const int H = c->hidden, F = c->intermediate, T = tr->off[tr->n];
    const param_layer P = layer_of(params, l), G = layer_of(grads, l);
    const train_layer *L = &tr->layer[l];
    float *dcur = tr->dx1;
    /* x_out = LN2(res2), res2 = x1 + act(x1 Wi^T + bi) W2^T + b2 */
    ln_backward(tr->pool, dcur, L->res2, L->mean2, L->rstd2, P.ln2_w, tr->dres, G.ln2_w, G.ln2_b, T, H);
    /* through the dropout on the branch (dqkv is free until the attention); the residual takes dres unmasked */
    const float *dbr = drop_backward(tr, 2 + 2 * l, tr->dres, tr->dqkv);
    act_forward(tr->pool, L->pre, tr->dbig, (size_t)T * F, c->act, tr->simd); /* recomputed act(pre), for dW2 */
    gemm(tr, CblasTrans, CblasNoTrans, H, F, T, 1.0f, dbr, H, tr->dbig, F, 1.0f, G.w2, F);
    colsum_add(tr->pool, dbr, T, H, G.b2);
    gemm(tr, CblasNoTrans, CblasNoTrans, T, F, H, 1.0f, dbr, H, P.w2, F, 0.0f, tr->dbig, F);
    act_backward(tr->pool, L->pre, tr->dbig, (size_t)T * F, c->act, tr->simd);
    /* d x1 = dres2 (residual) + dpre Wi, summed into dres's buffer, which then swaps roles with dcur's: no copy */
    linear_backward(tr, tr->dbig, L->x1, T, H, P.wi, F, tr->dres, 1, G.wi, G.bi);
    SWAP_BUF(tr->dres, dcur);
    /* x1 = LN1(res1), res1 = x + ctx Wo^T + bo */
    ln_backward(tr->pool, dcur, L->res1, L->mean1, L->rstd1, P.ln1_w, tr->dres, G.ln1_w, G.ln1_b, T, H);
    float *dctx = dcur; /* d x1 is spent: its buffer takes d ctx */
    dbr = drop_backward(tr, 1 + 2 * l, tr->dres, tr->dbig); /* dbig is spent too */
    linear_backward(tr, dbr, L->ctx, T, H, P.wo, H, dctx, 0, G.wo, G.bo);
    attn_layer(tr, L->qkv, NULL, dctx, tr->dqkv, 1);
    /* d x = dres1 (residual) + dqkv Wqkv, in dres's buffer, which is dx1's: the second swap gives both their
     * roles back */
    linear_backward(tr, tr->dqkv, tr->x[l], T, H, P.wqkv, 3 * H, tr->dres, 1, G.wqkv, G.bqkv);
    SWAP_BUF(tr->dres, dcur);
}

/* Layer l (the last) on each sequence's first token (the section above attn_first): the keys and values of every
 * token, the rest in compact rows; the output's rows are put back at the first tokens of x[l + 1], whose other
 * rows are not computed. */
static void layer_forward_first(xmci_bert_train *tr, const xmci_bert_params *params, int l)
{
    const xmci_bert_config *c = &tr->cfg;
    const int H = c->hidden, F = c->intermediate, T = tr->off[tr->n], n = tr->n;
    const param_layer P = layer_of(params, l);
    train_layer *L = &tr->layer[l];
    const float *x = tr->x[l];
    /* keys and values of every token (columns H .. 3H of qkv); the first tokens' queries alone, through ctx's
     * rows (free until the attention) and put at their tokens' rows; the other rows' queries are never read */
    gemm_args kv = {CblasNoTrans, CblasTrans, T, 2 * H, H, H, H, 3 * H, 1.0f, 1.0f, x, P.wqkv + (size_t)H * H,
                    P.bqkv + H, L->qkv + H};
    gemm_run(tr, &kv);
    first_rows_get(L->res1, x, H, tr->off, n, H); /* x's first rows, in res1's (free until the output projection) */
    linear_forward(tr, L->res1, n, H, P.wqkv, P.bqkv, H, L->ctx);
    first_rows_put(L->qkv, 3 * H, L->ctx, tr->off, n, H);
    attn_first(tr, L->qkv, L->ctx, NULL, NULL, 0);
    linear_forward(tr, L->ctx, n, H, P.wo, P.bo, H, L->res1);
    drop_forward_first(tr, 1 + 2 * l, L->res1);
    for (int r = 0; r < n; r++) { /* the residual: ln_forward's add, from the first tokens' rows */
        float *o = L->res1 + (size_t)r * H;
        const float *a = x + (size_t)tr->off[r] * H;
        for (int i = 0; i < H; i++) o[i] += a[i];
    }
    ln_forward(tr->pool, L->res1, NULL, L->x1, L->mean1, L->rstd1, P.ln1_w, P.ln1_b, n, H, c->layer_norm_eps);
    linear_forward(tr, L->x1, n, H, P.wi, P.bi, F, L->pre);
    act_forward(tr->pool, L->pre, tr->dbig, (size_t)n * F, c->act, tr->simd);
    linear_forward(tr, tr->dbig, n, F, P.w2, P.b2, H, L->res2);
    drop_forward_first(tr, 2 + 2 * l, L->res2);
    float *out = tr->dbig; /* spent: the output's compact rows, then put in place */
    ln_forward(tr->pool, L->res2, L->x1, out, L->mean2, L->rstd2, P.ln2_w, P.ln2_b, n, H, c->layer_norm_eps);
    first_rows_put(tr->x[l + 1], H, out, tr->off, n, H);
}

/* The backward of layer_forward_first: dL/dx[l + 1] in tr->dx1 (read at the first tokens) -> dL/dx[l] in tr->dx1.
 * Compact rows in the first n rows of dres (A) and dx1 (C), roles as the comments say. */
static void layer_backward_first(xmci_bert_train *tr, const xmci_bert_params *params, xmci_bert_params *grads, int l)
{
    const xmci_bert_config *c = &tr->cfg;
    const int H = c->hidden, F = c->intermediate, T = tr->off[tr->n], n = tr->n;
    const param_layer P = layer_of(params, l), G = layer_of(grads, l);
    const train_layer *L = &tr->layer[l];
    float *A = tr->dres, *C = tr->dx1;
    first_rows_get(A, tr->dx1, H, tr->off, n, H); /* A = dL/dout, compact */
    /* out = LN2(res2), res2 = x1 + act(x1 Wi^T + bi) W2^T + b2: C = dres2 */
    ln_backward(tr->pool, A, L->res2, L->mean2, L->rstd2, P.ln2_w, C, G.ln2_w, G.ln2_b, n, H);
    const float *dbr = drop_backward(tr, 2 + 2 * l, C, A); /* A is spent */
    act_forward(tr->pool, L->pre, tr->dbig, (size_t)n * F, c->act, tr->simd);
    gemm(tr, CblasTrans, CblasNoTrans, H, F, n, 1.0f, dbr, H, tr->dbig, F, 1.0f, G.w2, F);
    colsum_add(tr->pool, dbr, n, H, G.b2);
    gemm(tr, CblasNoTrans, CblasNoTrans, n, F, H, 1.0f, dbr, H, P.w2, F, 0.0f, tr->dbig, F);
    act_backward(tr->pool, L->pre, tr->dbig, (size_t)n * F, c->act, tr->simd);
    linear_backward(tr, tr->dbig, L->x1, n, H, P.wi, F, C, 1, G.wi, G.bi); /* C = d x1 */
    /* x1 = LN1(res1), res1 = x + ctx Wo^T + bo: A = dres1 (also the residual's part of d x) */
    ln_backward(tr->pool, C, L->res1, L->mean1, L->rstd1, P.ln1_w, A, G.ln1_w, G.ln1_b, n, H);
    dbr = drop_backward(tr, 1 + 2 * l, A, tr->dbig);
    linear_backward(tr, dbr, L->ctx, n, H, P.wo, H, C, 0, G.wo, G.bo); /* C = d ctx */
    attn_first(tr, L->qkv, NULL, C, tr->dqkv, 1);
    /* d x = (the residual's A + dq Wq) at the first tokens + d[k|v] W[k|v] over every token, into dx1; dq and x
     * at the first tokens compact in dfirst */
    const float *x = tr->x[l];
    float *dq = tr->dfirst, *xf = tr->dfirst + (size_t)n * H;
    first_rows_get(dq, tr->dqkv, 3 * H, tr->off, n, H);
    first_rows_get(xf, x, H, tr->off, n, H);
    gemm(tr, CblasNoTrans, CblasNoTrans, n, H, H, 1.0f, dq, H, P.wqkv, H, 1.0f, A, H);
    memset(tr->dx1, 0, (size_t)T * H * sizeof *tr->dx1);
    first_rows_put(tr->dx1, H, A, tr->off, n, H);
    const float *wkv = P.wqkv + (size_t)H * H;
    gemm(tr, CblasNoTrans, CblasNoTrans, T, H, 2 * H, 1.0f, tr->dqkv + H, 3 * H, wkv, H, 1.0f, tr->dx1, H);
    gemm(tr, CblasTrans, CblasNoTrans, 2 * H, H, T, 1.0f, tr->dqkv + H, 3 * H, x, H, 1.0f, G.wqkv + (size_t)H * H, H);
    gemm(tr, CblasTrans, CblasNoTrans, H, H, n, 1.0f, dq, H, xf, H, 1.0f, G.wqkv, H);
    /* the biases' sums over dqkv's columns: its queries' are 0 but at the first tokens, so the same sums */
    colsum_add(tr->pool, tr->dqkv, T, 3 * H, G.bqkv);
}

/* cls = h[0]; mean = average of the real tokens (summed in double); pooler = tanh(h[0] Wp^T + bp). */
static void pool_forward(xmci_bert_train *tr, const param_view *pv, float *pooled)
{
    const int H = tr->cfg.hidden, n = tr->n;
    const float *hid = tr->x[tr->cfg.layers];
    for (int r = 0; r < n; r++) {
        const float *h = hid + (size_t)tr->off[r] * H;
        float *o = pooled + (size_t)r * H;
        if (tr->pooling == XMCI_BERT_POOL_MEAN) {
            for (int i = 0; i < H; i++) {
                double s = 0;
                for (int t = 0; t < tr->lens[r]; t++) s += h[(size_t)t * H + i];
                o[i] = (float)(s / tr->lens[r]);
            }
        } else {
            memcpy(tr->pool_in + (size_t)r * H, h, (size_t)H * sizeof *h);
            memcpy(o, h, (size_t)H * sizeof *h);
        }
    }
    if (tr->pooling == XMCI_BERT_POOL_POOLER) {
        linear_forward(tr, tr->pool_in, n, H, pv->pool_w, pv->pool_b, H, tr->pool_out);
        for (size_t i = 0; i < (size_t)n * H; i++) pooled[i] = tr->pool_out[i] = tanhf(tr->pool_out[i]);
    }
    drop_forward(tr, drop_pooled_site(tr), pooled);
}

/* dL/dpooled -> dL/dhidden in tr->dx (0 on tokens the pooling does not read), pooler gradients into gv. */
static void pool_backward(xmci_bert_train *tr, const param_view *pv, const param_view *gv, const float *d_pooled)
{
    const int H = tr->cfg.hidden, n = tr->n;
    float *dx = tr->dx;
    memset(dx, 0, (size_t)tr->off[n] * H * sizeof *dx);
    d_pooled = drop_backward(tr, drop_pooled_site(tr), d_pooled, tr->drop_dpooled);
    const float *dp = d_pooled;
    if (tr->pooling == XMCI_BERT_POOL_POOLER) {
        /* pooled = tanh(pre): dpre = dpooled (1 - pooled^2); then the dense layer */
        for (size_t i = 0; i < (size_t)n * H; i++) tr->dpool[i] = d_pooled[i] * (1.0f - tr->pool_out[i] * tr->pool_out[i]);
        linear_backward(tr, tr->dpool, tr->pool_in, n, H, pv->pool_w, H, tr->dres, 0, gv->pool_w, gv->pool_b);
        dp = tr->dres;
    }
    for (int r = 0; r < n; r++) {
        float *d = dx + (size_t)tr->off[r] * H;
        const float *g = dp + (size_t)r * H;
        if (tr->pooling == XMCI_BERT_POOL_MEAN) {
            float inv = 1.0f / (float)tr->lens[r];
            for (int t = 0; t < tr->lens[r]; t++)
                for (int i = 0; i < H; i++) d[(size_t)t * H + i] = g[i] * inv;
        } else
            memcpy(d, g, (size_t)H * sizeof *d);
    }
}

xmc_err xmci_bert_train_forward(const xmci_bert_params *params, xmci_bert_train *tr, const int32_t *ids,
                               const int32_t *type_ids, int stride, const int *lens, int n,
                               xmci_bert_pooling pooling, float *pooled, xmc_error *err)
{
    const xmci_bert_config *c = &params->cfg;
    if (params->n != tr->n_params || params->has_pooler != tr->has_pooler)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train: workspace made for another model");
    if (n < 1 || !ids || !lens || !pooled) return xmc_error_set(err, XMC_ERR_ARG, "bert train: empty batch");
    if (pooling == XMCI_BERT_POOL_POOLER && !params->has_pooler)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train: pooler pooling but the model has no pooler.dense weights");
    if (pooling != XMCI_BERT_POOL_CLS && pooling != XMCI_BERT_POOL_MEAN && pooling != XMCI_BERT_POOL_POOLER)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train: unknown pooling %d", (int)pooling);
    if ((size_t)n > tr->max_rows)
        return xmc_error_set(err, XMC_ERR_RANGE, "bert train: %d rows, workspace holds %zu", n, tr->max_rows);
    for (int r = 0; r < n; r++) {
        if (lens[r] < 1 || (size_t)lens[r] > tr->max_seq || lens[r] > stride)
            return xmc_error_set(err, XMC_ERR_RANGE, "bert train: row %d has %d tokens (workspace 1..%zu, stride %d)",
                                 r, lens[r], tr->max_seq, stride);
        for (int p = 0; p < lens[r]; p++) {
            int32_t id = ids[(size_t)r * stride + p], tt = type_ids ? type_ids[(size_t)r * stride + p] : 0;
            if (id < 0 || id >= c->vocab_size || tt < 0 || tt >= c->type_vocab)
                return xmc_error_set(err, XMC_ERR_RANGE, "bert train: row %d token %d: id %d / type %d outside the model",
                                     r, p, id, tt);
        }
    }
    tr->n = 0;
    tr->backward_done = 0;
    tr->off[0] = 0;
    for (int r = 0; r < n; r++) {
        tr->lens[r] = lens[r];
        tr->off[r + 1] = tr->off[r] + lens[r];
        for (int p = 0; p < lens[r]; p++) {
            tr->ids[tr->off[r] + p] = ids[(size_t)r * stride + p];
            tr->types[tr->off[r] + p] = type_ids ? type_ids[(size_t)r * stride + p] : 0;
        }
    }
    tr->n = n;
    tr->pooling = pooling;
    const param_view pv = view_of(params);
    /* the pooled output reads the first tokens alone: the last layer need not compute the others */
    tr->first_only = pooling != XMCI_BERT_POOL_MEAN && !tr->full_last;
    embed_forward(tr, &pv);
    for (int l = 0; l < c->layers; l++) {
        if (l == c->layers - 1 && tr->first_only)
            layer_forward_first(tr, params, l);
        else
            layer_forward(tr, params, l);
    }
    pool_forward(tr, &pv, pooled);
    return XMC_OK;
}

xmc_err xmci_bert_train_backward(const xmci_bert_params *params, xmci_bert_train *tr, const float *d_pooled,
                                xmci_bert_params *grads, xmc_error *err)
{
    if (params->n != tr->n_params || grads->n != params->n || grads->has_pooler != params->has_pooler)
        return xmc_error_set(err, XMC_ERR_ARG, "bert train backward: parameters, gradients and workspace differ");
    if (tr->n < 1 || !d_pooled) return xmc_error_set(err, XMC_ERR_ARG, "bert train backward: no forward pass to go back through");
    const param_view pv = view_of(params), gv = view_of(grads);
    pool_backward(tr, &pv, &gv, d_pooled);
    /* tr->dx keeps dL/dhidden (xmci_bert_train_d_hidden); the layers pass their gradient on in tr->dx1 */
    memcpy(tr->dx1, tr->dx, (size_t)tr->off[tr->n] * (size_t)tr->cfg.hidden * sizeof *tr->dx);
    for (int l = tr->cfg.layers - 1; l >= 0; l--) {
        if (l == tr->cfg.layers - 1 && tr->first_only)
            layer_backward_first(tr, params, grads, l);
        else
            layer_backward(tr, params, grads, l);
    }
    embed_backward(tr, &pv, &gv);
    tr->backward_done = 1;
    return XMC_OK;
}
