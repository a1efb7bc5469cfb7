/* encoder.h: the Transformer half of the featuriser: text -> WordPiece -> BERT -> pooled, L2-normalised
 * embedding, and how a model version refers to the encoder it was trained with.
 *
 * A model version holds its encoder: config.json, model.safetensors and vocab.txt are copied into
 * <version>/encoder/ and listed in the manifest (encoder.config, encoder.weights, encoder.vocab) with size and
 * xxh64 like every array, so a version is published, copied or rolled back as one directory and a damaged
 * weight file refuses the version. Versions written before (encoder.dir + encoder.*_xxh64 naming a directory
 * outside) are still read, their two files re-hashed at every open.
 * Featurisers (featurizer.kind): "tfidf", "encoder" (the embedding alone) or "tfidf+encoder", PECOS's
 * concatenation [tfidf ; alpha * emb] renormalised to unit L2 norm; the TF-IDF part stays sparse. */
#ifndef XMCI_ENCODER_H
#define XMCI_ENCODER_H

#include <stddef.h>
#include <stdint.h>
#include "bert.h"
#include "model.h"
#include "smat.h"
#include "wordpiece.h"
#include "xmc/error.h"

typedef struct xmci_encoder_config {
    const char *dir;          /* config.json + model.safetensors */
    const char *vocab;        /* NULL: dir/vocab.txt */
    xmci_bert_pooling pooling; /* default cls */
    int max_len;              /* tokens per text, [CLS]/[SEP] included; default 128 */
    float alpha;              /* weight of the embedding beside TF-IDF; default 1 */
} xmci_encoder_config;

typedef struct xmci_encoder xmci_encoder;
typedef struct xmci_encoder_ws xmci_encoder_ws;

void xmci_encoder_config_default(xmci_encoder_config *cfg);
/* Loads the encoder (see bert.h, wordpiece.h for the errors). */
xmc_err xmci_encoder_open(const xmci_encoder_config *cfg, xmci_encoder **out, xmc_error *err);
void xmci_encoder_free(xmci_encoder *enc);
uint32_t xmci_encoder_dim(const xmci_encoder *enc);
float xmci_encoder_alpha(const xmci_encoder *enc);

/* Scratch for one thread, for batches of up to max_rows texts. */
xmc_err xmci_encoder_ws_new(const xmci_encoder *enc, int max_rows, xmci_encoder_ws **out, xmc_error *err);
void xmci_encoder_ws_free(xmci_encoder_ws *ws);
/* Embeds n texts into out (n x dim, each row L2-normalised). */
xmc_err xmci_encoder_embed(const xmci_encoder *enc, xmci_encoder_ws *ws, const char *const *texts, const size_t *lens,
                          int n, float *out, xmc_error *err);

/* Appends alpha * emb (dim floats, ids offset..offset+dim-1) after the nnz sparse entries of a row and
 * L2-normalises the whole row in place; idx/val need room for nnz + dim. Returns the new count. */
uint32_t xmci_encoder_append(uint32_t *idx, float *val, uint32_t nnz, uint32_t offset, const float *emb, uint32_t dim,
                            float alpha);
/* The training matrix: rows of sparse (n x offset, may be NULL for the embedding alone) followed by the n x dim
 * embeddings, each row renormalised as xmci_encoder_append does. */
xmc_err xmci_encoder_concat(const xmci_csr *sparse, uint32_t offset, const float *emb, uint32_t n, uint32_t dim, float alpha,
                           xmci_csr *out, xmc_error *err);

/* Copies the encoder's three files into the version (encoder/) and sets the manifest keys encoder.* (pooling,
 * max_len, alpha, dim, copied_from: where the files came from, for people only). */
xmc_err xmci_encoder_save(const xmci_encoder *enc, xmci_model_writer *w, xmc_error *err);
/* Opens the encoder a version holds (its files checked by xmci_bundle_open), or the outside directory an older
 * version names after re-hashing its two files (XMC_ERR_CORRUPT if changed). */
xmc_err xmci_encoder_load(const xmci_bundle *b, xmci_encoder **out, xmc_error *err);

#endif
