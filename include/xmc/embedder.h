/* embedder.h: text embeddings with a BERT-family encoder (config.json, model.safetensors, a WordPiece
 * vocab.txt), as `xmc embed` prints them and as the encoder featurizer of a model uses them.
 *
 * An embedder holds the encoder's weights and its vocabulary; it is immutable once open and may be shared
 * by threads, each with its own workspace (sized for a number of texts per call and tokens per text).
 * Ownership: the caller owns what _open/_new return and frees it with the matching _close/_free. Every
 * fallible call returns XMC_OK or a code with err filled and leaves nothing allocated. */
#ifndef XMC_EMBEDDER_H
#define XMC_EMBEDDER_H

#include <stddef.h>
#include "xmc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the token vectors of a text become one vector. */
typedef enum xmc_pooling {
    XMC_POOLING_CLS = 0, /* "cls": the [CLS] token's vector */
    XMC_POOLING_MEAN,    /* "mean": the mean over the text's tokens */
    XMC_POOLING_POOLER   /* "pooler": [CLS] through the model's pooler.dense and tanh */
} xmc_pooling;

/* Parses "cls", "mean" or "pooler"; XMC_ERR_ARG naming the choices otherwise. */
xmc_err xmc_pooling_parse(const char *name, xmc_pooling *pooling, xmc_error *err);

typedef struct xmc_embedder xmc_embedder;
typedef struct xmc_embedder_ws xmc_embedder_ws;

typedef struct xmc_embedder_info {
    int hidden;        /* floats per vector */
    int max_positions; /* tokens per text the model takes at most */
    int vocab_size;    /* token ids the model has embeddings for */
    int vocab_tokens;  /* tokens in the vocabulary file */
    int has_pooler;    /* 1 when XMC_POOLING_POOLER can be used */
} xmc_embedder_info;

/* Opens the encoder in dir and the vocabulary vocab (NULL: dir/vocab.txt). IO / PARSE / CORRUPT / SHAPE. */
xmc_err xmc_embedder_open(const char *dir, const char *vocab, xmc_embedder **out, xmc_error *err);
void xmc_embedder_close(xmc_embedder *emb);
/* Fills info with the encoder's shape and what it supports. */
void xmc_embedder_get_info(const xmc_embedder *emb, xmc_embedder_info *info);

/* Scratch for up to max_texts texts of up to max_len tokens per call. */
xmc_err xmc_embedder_ws_new(const xmc_embedder *emb, int max_texts, int max_len, xmc_embedder_ws **out, xmc_error *err);
void xmc_embedder_ws_free(xmc_embedder_ws *ws);

/* Embeds n texts (n <= max_texts; lens in bytes), each cut to max_len tokens with [CLS]/[SEP], into out
 * (n x hidden floats, row-major); normalize scales each vector to unit L2 norm. More texts or tokens than the
 * workspace was made for: XMC_ERR_ARG; n = 0 embeds nothing and succeeds. */
xmc_err xmc_embedder_embed(const xmc_embedder *emb, xmc_embedder_ws *ws, const char *const *texts, const size_t *lens,
                           int n, int max_len, xmc_pooling pooling, int normalize, float *out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
