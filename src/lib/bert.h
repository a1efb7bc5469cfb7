/* bert.h: a BERT-family encoder (HF BertModel) in float32 on OpenBLAS: load, forward a batch, pool.
 *
 * An encoder directory holds config.json (HF BertConfig keys) and model.safetensors (HF tensor names, with
 * or without a "bert." prefix; extra tensors such as a classifier head are ignored). The weights stay in
 * the read-only mapping of the file; only the query/key/value matrices of each layer are copied, side by
 * side, so that one sgemm computes all three.
 *
 * Forward (post-LN, as HF): x = LN(word[id] + position[p] + type[t]); per layer
 *   q,k,v = x Wqkv^T + b;  per sequence and head: a = softmax(q k^T / sqrt(d)) v;
 *   x = LN(a Wo^T + bo + x);  x = LN(gelu(x Wi^T + bi) W2^T + b2 + x)
 * with the exact erf GELU (hidden_act "gelu"; "gelu_new"/"gelu_pytorch_tanh" and "relu" also accepted)
 * and the biased variance inside LN. Sequences are packed: only real tokens are computed, and attention
 * of a sequence only sees its own lens[r] tokens, which is what an additive -inf padding mask gives.
 * Pooling: cls = last_hidden[0]; mean = average over the real tokens ([CLS] and [SEP] included);
 * pooler = tanh(Wp last_hidden[0] + bp). Optional L2 normalisation of the pooled vector.
 *
 * Threads: the linear layers and attention products are cblas_sgemm calls, threaded by OpenBLAS (its own
 * pool; set with OPENBLAS_NUM_THREADS or openblas_set_num_threads, which is process-wide, so the library
 * never calls it). Everything else (embeddings, LN, bias+GELU, softmax, pooling) runs in the calling
 * thread. We do not add threads of our own: two pools on the same cores would take turns spinning.
 * To embed from several threads at once, set OpenBLAS to 1 thread and give each thread its workspace.
 *
 * Ownership: xmci_bert_load returns an immutable model (shareable by threads) freed by xmci_bert_free. A
 * workspace holds every scratch buffer of a forward pass for a capacity of rows x tokens; a forward pass
 * allocates nothing unless the input is larger than any before, in which case the workspace grows. */
#ifndef XMCI_BERT_H
#define XMCI_BERT_H

#include <stddef.h>
#include <stdint.h>
#include "wordpiece.h"
#include "xmc/error.h"

typedef enum xmci_bert_act { XMCI_BERT_GELU, XMCI_BERT_GELU_TANH, XMCI_BERT_RELU } xmci_bert_act;
typedef enum xmci_bert_pooling { XMCI_BERT_POOL_CLS, XMCI_BERT_POOL_MEAN, XMCI_BERT_POOL_POOLER } xmci_bert_pooling;

typedef struct xmci_bert_config {
    int vocab_size, hidden, layers, heads, intermediate, max_positions, type_vocab;
    float layer_norm_eps;
    xmci_bert_act act;
} xmci_bert_config;

typedef struct xmci_bert xmci_bert;
typedef struct xmci_bert_workspace xmci_bert_workspace;

/* Loads dir/config.json and dir/model.safetensors. Fails with XMC_ERR_IO / XMC_ERR_NOTFOUND (a file, or a
 * tensor: the message names it), XMC_ERR_PARSE (config), XMC_ERR_SHAPE / XMC_ERR_VERSION (a tensor's shape
 * or dtype against the config), XMC_ERR_CORRUPT (bounds, truncated file) or XMC_ERR_NOMEM; *out untouched. */
xmc_err xmci_bert_load(const char *dir, xmci_bert **out, xmc_error *err);
void xmci_bert_free(xmci_bert *bert);
const xmci_bert_config *xmci_bert_get_config(const xmci_bert *bert);
/* 1 if the model has pooler.dense weights (needed by XMCI_BERT_POOL_POOLER). */
int xmci_bert_has_pooler(const xmci_bert *bert);
/* Chooses the AVX2+FMA elementwise kernels (on: the default where the CPU has them) or the scalar libm ones
 * (off); returns the setting now in force. For tests and comparisons; call it before sharing the model. */
int xmci_bert_use_simd(xmci_bert *bert, int on);

/* A workspace for bert, with room for max_rows sequences of up to max_seq tokens (it grows later if a
 * call needs more). Fails with XMC_ERR_ARG or XMC_ERR_NOMEM. */
xmc_err xmci_bert_workspace_new(const xmci_bert *bert, int max_rows, int max_seq, xmci_bert_workspace **out,
                               xmc_error *err);
void xmci_bert_workspace_free(xmci_bert_workspace *ws);

/* Runs the encoder on n sequences: row r is lens[r] tokens at ids + r * stride (type_ids likewise, or
 * NULL for all 0). lens[r] in [1, max_positions], ids in [0, vocab). Fails with XMC_ERR_ARG, XMC_ERR_RANGE
 * (an id, type id or length outside the model) or XMC_ERR_NOMEM (growing the workspace). */
xmc_err xmci_bert_forward(const xmci_bert *bert, xmci_bert_workspace *ws, const int32_t *ids, const int32_t *type_ids,
                         int stride, const int *lens, int n, xmc_error *err);
/* Last hidden state of row r of the latest forward: lens[r] x hidden floats (after xmci_bert_embed with cls or
 * pooler pooling the first row alone is the last layer's), owned by ws, valid until the next forward. NULL when r
 * is out of range. */
const float *xmci_bert_hidden(const xmci_bert_workspace *ws, int r);
/* Pools the latest forward into out (n x hidden, row-major), L2-normalised if normalize. Fails with
 * XMC_ERR_ARG (no forward yet, unknown pooling, mean after an xmci_bert_embed that computed the first tokens
 * alone) or XMC_ERR_NOTFOUND (pooler without pooler weights). */
xmc_err xmci_bert_pool(const xmci_bert *bert, xmci_bert_workspace *ws, xmci_bert_pooling pooling, int normalize,
                      float *out, xmc_error *err);
/* Forward + pool of a tokenised batch: out gets batch->n x hidden floats. With cls or pooler pooling the last
 * layer runs on each sequence's first token alone (its keys and values on every token): the same vectors, to
 * rounding, for less work; xmci_bert_hidden then has the last layer's output at the first tokens only. */
xmc_err xmci_bert_embed(const xmci_bert *bert, xmci_bert_workspace *ws, const xmci_wordpiece_batch *batch,
                       xmci_bert_pooling pooling, int normalize, float *out, xmc_error *err);

/* "cls", "mean", "pooler" -> pooling; XMC_ERR_ARG otherwise. */
xmc_err xmci_bert_pooling_parse(const char *name, xmci_bert_pooling *pooling, xmc_error *err);

/* ---- training: trainable parameters, a forward pass that keeps its activations, the backward pass ------------
 *
 * Parameters (xmci_bert_params) are an owned copy of every tensor in one arena of floats, llm.c style; a gradient
 * arena is a second xmci_bert_params of the same layout (xmci_bert_params_zeros_like), so an optimiser walks both
 * as one flat array. tensor[] names each tensor with its HF name and shape, in HF file order (embeddings, then
 * per layer query, key, value, attention output, LayerNorm, intermediate, output, LayerNorm; the pooler last
 * when the model has it); inside the arena a layer's query, key and value weights sit side by side so that one
 * sgemm computes all three, as in the forward above.
 *
 * A training workspace (xmci_bert_train) holds two arenas sized once from max_rows x max_seq: the activations
 * the backward pass needs, and the gradients of those activations. Nothing is allocated after
 * xmci_bert_train_new; a batch with more rows or longer sequences fails with XMC_ERR_RANGE. Sequences are
 * packed as in xmci_bert_forward, which is what an additive padding mask computes: padded positions are not
 * stored, and their gradients are zero. Hidden dropout (xmci_bert_train_set_dropout) is off by default, as the
 * reference checks are; attention probabilities are never dropped.
 *
 * xmci_bert_train_backward adds (+=) into the gradient arena, so several batches can accumulate; clear it
 * with xmci_bert_params_zero. Threads: the attention of each (sequence, head) in AVX2+FMA kernels of ours (16
 * columns wide with AVX-512F, the same bits) on xmci_bert_train_set_threads threads (sgemm per head in the calling
 * thread without AVX2+FMA, with the scalar kernels, or a head size not a multiple of 8), and the elementwise passes
 * on the same threads. The linear layers' products are cblas_sgemm: on OpenBLAS's pool when it has more than one
 * thread, else, with more than one thread of ours, cut into row blocks of 64 rows' multiples, one single-threaded
 * sgemm per block on our threads (one pool, none spinning beside the other). The bits are the same for any
 * count of ours with most of OpenBLAS's kernel sets (not Haswell's or Zen's: ~1e-6 relative apart), and close
 * (not equal) between OpenBLAS's pool and ours. */

typedef struct xmci_bert_tensor {
    char name[80];  /* HF name without a "bert." prefix */
    size_t offset;  /* in floats from mem */
    int rows, cols; /* cols 0: a vector of rows */
} xmci_bert_tensor;

typedef struct xmci_bert_params {
    xmci_bert_config cfg;
    int has_pooler;
    int n_tensors;
    xmci_bert_tensor *tensor;
    size_t n;   /* floats in mem */
    float *mem; /* the arena */
} xmci_bert_params;

typedef struct xmci_bert_train xmci_bert_train;

/* An owned copy of bert's weights. Fails with XMC_ERR_NOMEM; *out untouched. */
xmc_err xmci_bert_params_copy(const xmci_bert *bert, xmci_bert_params **out, xmc_error *err);
/* A zeroed arena of params's layout (a gradient). Fails with XMC_ERR_NOMEM; *out untouched. */
xmc_err xmci_bert_params_zeros_like(const xmci_bert_params *params, xmci_bert_params **out, xmc_error *err);
void xmci_bert_params_zero(xmci_bert_params *params);
void xmci_bert_params_free(xmci_bert_params *params);
/* The tensor of that HF name ("bert." prefix allowed), or NULL. */
const xmci_bert_tensor *xmci_bert_params_find(const xmci_bert_params *params, const char *name);
/* Floats in the tensor. */
size_t xmci_bert_tensor_size(const xmci_bert_tensor *tensor);

/* A workspace for batches of up to max_rows sequences of up to max_seq tokens, for params's model. Fails with
 * XMC_ERR_ARG (sizes), XMC_ERR_RANGE (too many tokens for int sgemm sizes) or XMC_ERR_NOMEM (the message gives
 * the bytes asked for); *out untouched. */
xmc_err xmci_bert_train_new(const xmci_bert_params *params, int max_rows, int max_seq, xmci_bert_train **out,
                           xmc_error *err);
void xmci_bert_train_free(xmci_bert_train *train);
/* As xmci_bert_use_simd, for the training kernels (GELU, its derivative, softmax); on by default where the CPU
 * has AVX2+FMA. Returns the setting now in force. */
int xmci_bert_train_use_simd(xmci_bert_train *train, int on);
/* The attention kernels 16 columns at a time where the CPU has AVX-512F (on by default there; set again by
 * xmci_bert_train_use_simd); the same bits as the 8-wide ones. Returns the setting now in force. */
int xmci_bert_train_use_avx512(xmci_bert_train *train, int on);
/* With cls or pooler pooling the last layer runs on each sequence's first token alone (its keys and values on every
 * token): the pooled output and every gradient are the full layer's, and xmci_bert_train_hidden has the first row
 * of each sequence only. on: the full layer whatever the pooling (tests, benches). The latest forward is
 * discarded. Returns the setting now in force. */
int xmci_bert_train_full_last_layer(xmci_bert_train *train, int on);
/* Threads of the library's own (default 1) for the attention of each layer (the (sequence, head) pairs are
 * shared out between them, with the AVX2+FMA kernels), the elementwise passes and, when OpenBLAS has one thread,
 * the products; never at the same time as OpenBLAS's threads. The result does not depend on the count (each
 * pair, row, element and product block is computed the same way on any thread; products: see above). Each thread has 2 x max_seq^2 + 3 x max_seq x head-size floats of scratch (2 x max_seq without the x86 kernels), allocated here. Fails with
 * XMC_ERR_ARG (outside 1..XMC_MAX_THREADS) or XMC_ERR_NOMEM (then the count in force is unchanged). */
xmc_err xmci_bert_train_set_threads(xmci_bert_train *train, int threads, xmc_error *err);
/* Those threads, kept between passes (parallel.h), for other work of the same step (the optimiser's update);
 * NULL with one. Owned by the training workspace: valid until the next set_threads or xmci_bert_train_free. */
struct xmci_pool *xmci_bert_train_pool(const xmci_bert_train *train);
/* Products cut into row blocks on the library's threads since xmci_bert_train_new (see above; tests and benches). */
size_t xmci_bert_train_products_split(const xmci_bert_train *train);
/* Hidden dropout of the following forwards, as BERT's hidden_dropout_prob: on the embeddings' output, on each
 * layer's attention and feed-forward outputs before their residual sums and on the pooled output (PECOS drops it
 * before its head), kept values scaled by 1 / (1 - p); the backward pass goes through the same masks. p in [0, 1), 0 is off (the default). The masks are a hash of
 * (seed, site, element): the same for any thread count, and the same every forward until the seed changes, so a
 * trainer sets a new seed per step (xrt.c: from its seed, level and step). The first p > 0 allocates one byte per
 * element of each site, (1 + 2 layers) x max_rows x max_seq x hidden + max_rows x hidden, and max_rows x hidden
 * floats. The latest forward is discarded (a backward needs a new one). Fails with XMC_ERR_ARG (p) or
 * XMC_ERR_NOMEM; then nothing changes. */
xmc_err xmci_bert_train_set_dropout(xmci_bert_train *train, float p, uint64_t seed, xmc_error *err);
/* Elements the latest forward's dropout kept, of the total it drew (0 of 0 when dropout was off). */
void xmci_bert_train_dropout_kept(const xmci_bert_train *train, size_t *kept, size_t *total);
/* Bytes of the two arenas: activations and activation gradients. */
void xmci_bert_train_bytes(const xmci_bert_train *train, size_t *activations, size_t *gradients);
/* Forward of n sequences as xmci_bert_forward, keeping the activations, then pools them into pooled (n x
 * hidden, not normalised). Fails with XMC_ERR_ARG (another model's workspace, empty batch, pooler without
 * pooler weights) or XMC_ERR_RANGE (an id or length outside the model or the workspace). */
xmc_err xmci_bert_train_forward(const xmci_bert_params *params, xmci_bert_train *train, const int32_t *ids,
                               const int32_t *type_ids, int stride, const int *lens, int n,
                               xmci_bert_pooling pooling, float *pooled, xmc_error *err);
/* Backward of the latest forward: d_pooled (n x hidden) is dL/dpooled; adds dL/dparameter into grads (of
 * params's layout). Fails with XMC_ERR_ARG (no forward, another layout). */
xmc_err xmci_bert_train_backward(const xmci_bert_params *params, xmci_bert_train *train, const float *d_pooled,
                                xmci_bert_params *grads, xmc_error *err);
/* Last hidden state of row r of the latest forward (lens[r] x hidden; the first row alone when the last layer ran
 * on the first tokens, xmci_bert_train_full_last_layer) and its gradient after a backward, owned by train; NULL
 * when r is out of range. */
const float *xmci_bert_train_hidden(const xmci_bert_train *train, int r);
const float *xmci_bert_train_d_hidden(const xmci_bert_train *train, int r);

#endif
