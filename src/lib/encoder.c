/* encoder.c: WordPiece + BERT + pooling as a featuriser, and the encoder files of a model version
 * (see encoder.h). */
#include "encoder.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct xmci_encoder {
    xmci_bert *bert;
    xmci_wordpiece *wp;
    xmci_bert_pooling pooling;
    int max_len;
    float alpha;
    uint32_t dim;
    char dir[PATH_MAX], vocab[PATH_MAX]; /* where it was opened from: the files a new version copies */
};

struct xmci_encoder_ws {
    xmci_bert_workspace *bws;
    xmci_wordpiece_batch batch;
    int max_rows;
};

static const char *const pool_names[] = {"cls", "mean", "pooler"};

void xmci_encoder_config_default(xmci_encoder_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->pooling = XMCI_BERT_POOL_CLS;
    cfg->max_len = 128;
    cfg->alpha = 1.0f;
}

/* xxh64 of a whole file, as 16 hex digits. */
static xmc_err hash_file(const char *path, char hex[17], xmc_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno)); }
    uint64_t h = XXH64("", 0, 0);
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) { close(fd); return xmc_error_set(err, XMC_ERR_IO, "mmap %s: %s", path, strerror(errno)); }
        h = XXH64(p, (size_t)st.st_size, 0);
        munmap(p, (size_t)st.st_size);
    }
    close(fd);
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return XMC_OK;
}

xmc_err xmci_encoder_open(const xmci_encoder_config *cfg, xmci_encoder **out, xmc_error *err)
{
    *out = NULL;
    if (!cfg->dir) return xmc_error_set(err, XMC_ERR_ARG, "no encoder directory");
    if (cfg->max_len < 2) return xmc_error_set(err, XMC_ERR_ARG, "encoder max length must be at least 2");
    if (!(cfg->alpha > 0) || !isfinite(cfg->alpha)) return xmc_error_set(err, XMC_ERR_ARG, "encoder alpha must be > 0");
    xmci_encoder *enc = calloc(1, sizeof *enc);
    if (!enc) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc;
    char vocab[PATH_MAX];
    if (cfg->vocab) snprintf(vocab, sizeof vocab, "%s", cfg->vocab);
    else snprintf(vocab, sizeof vocab, "%s/vocab.txt", cfg->dir);
    if (!realpath(cfg->dir, enc->dir)) { rc = xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: %s", cfg->dir, strerror(errno)); goto fail; }
    if (!realpath(vocab, enc->vocab)) { rc = xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: %s", vocab, strerror(errno)); goto fail; }
    if ((rc = xmci_bert_load(enc->dir, &enc->bert, err))) goto fail;
    if ((rc = xmci_wordpiece_load(enc->vocab, &enc->wp, err))) goto fail;
    const xmci_bert_config *bc = xmci_bert_get_config(enc->bert);
    if (xmci_wordpiece_size(enc->wp) > bc->vocab_size) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "%s has %d tokens, the encoder's vocabulary %d", enc->vocab,
                           xmci_wordpiece_size(enc->wp), bc->vocab_size);
        goto fail;
    }
    if (cfg->pooling == XMCI_BERT_POOL_POOLER && !xmci_bert_has_pooler(enc->bert)) {
        rc = xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: pooling 'pooler' but the encoder has no pooler weights", enc->dir);
        goto fail;
    }
    enc->pooling = cfg->pooling;
    enc->max_len = cfg->max_len < bc->max_positions ? cfg->max_len : bc->max_positions;
    enc->alpha = cfg->alpha;
    enc->dim = (uint32_t)bc->hidden;
    *out = enc;
    return XMC_OK;
fail:
    xmci_encoder_free(enc);
    return rc;
}

void xmci_encoder_free(xmci_encoder *enc)
{
    if (!enc) return;
    if (enc->bert) xmci_bert_free(enc->bert);
    if (enc->wp) xmci_wordpiece_free(enc->wp);
    free(enc);
}

uint32_t xmci_encoder_dim(const xmci_encoder *enc) { return enc->dim; }
float xmci_encoder_alpha(const xmci_encoder *enc) { return enc->alpha; }

xmc_err xmci_encoder_ws_new(const xmci_encoder *enc, int max_rows, xmci_encoder_ws **out, xmc_error *err)
{
    *out = NULL;
    xmci_encoder_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    ws->max_rows = max_rows < 1 ? 1 : max_rows;
    xmc_err rc = xmci_bert_workspace_new(enc->bert, ws->max_rows, enc->max_len, &ws->bws, err);
    if (rc) { free(ws); return rc; }
    *out = ws;
    return XMC_OK;
}

void xmci_encoder_ws_free(xmci_encoder_ws *ws)
{
    if (!ws) return;
    xmci_bert_workspace_free(ws->bws);
    xmci_wordpiece_batch_free(&ws->batch);
    free(ws);
}

xmc_err xmci_encoder_embed(const xmci_encoder *enc, xmci_encoder_ws *ws, const char *const *texts, const size_t *lens,
                          int n, float *out, xmc_error *err)
{
    for (int start = 0; start < n; start += ws->max_rows) {
        int m = n - start < ws->max_rows ? n - start : ws->max_rows;
        xmc_err rc = xmci_wordpiece_encode_batch(enc->wp, texts + start, lens ? lens + start : NULL, m, enc->max_len,
                                                &ws->batch, err);
        if (rc) return rc;
        if ((rc = xmci_bert_embed(enc->bert, ws->bws, &ws->batch, enc->pooling, 1, out + (size_t)start * enc->dim, err)))
            return rc;
    }
    return XMC_OK;
}

/* The files a version holds, as (manifest name, path in the version, file in the source directory). */
static const char *const copied[3][3] = {
    {"encoder.config", "encoder/config.json", "config.json"},
    {"encoder.weights", "encoder/model.safetensors", "model.safetensors"},
    {"encoder.vocab", "encoder/vocab.txt", NULL}, /* from enc->vocab, which may live elsewhere */
};

xmc_err xmci_encoder_save(const xmci_encoder *enc, xmci_model_writer *w, xmc_error *err)
{
    xmc_err rc;
    char src[PATH_MAX];
    for (int i = 0; i < 3; i++) {
        if (copied[i][2]) snprintf(src, sizeof src, "%s/%s", enc->dir, copied[i][2]);
        else snprintf(src, sizeof src, "%s", enc->vocab);
        if ((rc = xmci_writer_file(w, copied[i][0], copied[i][1], src, err))) return rc;
    }
    if ((rc = xmci_writer_set_string(w, "encoder.copied_from", enc->dir, err)) ||
        (rc = xmci_writer_set_string(w, "encoder.pooling", pool_names[enc->pooling], err)) ||
        (rc = xmci_writer_set_int(w, "encoder.max_len", enc->max_len, err)) ||
        (rc = xmci_writer_set_float(w, "encoder.alpha", enc->alpha, err)) ||
        (rc = xmci_writer_set_int(w, "encoder.dim", enc->dim, err)))
        return rc;
    return XMC_OK;
}

/* The encoder directory inside the version: config.json and model.safetensors side by side, as xmci_bert_load
 * wants them; the bundle has checked all three files at open. */
static xmc_err copied_paths(const xmci_bundle *b, char *dir, char *vocab, xmc_error *err)
{
    char config[PATH_MAX], weights[PATH_MAX];
    xmc_err rc;
    if ((rc = xmci_bundle_file(b, copied[0][0], config, sizeof config, NULL, err)) ||
        (rc = xmci_bundle_file(b, copied[1][0], weights, sizeof weights, NULL, err)) ||
        (rc = xmci_bundle_file(b, copied[2][0], vocab, PATH_MAX, NULL, err)))
        return rc;
    size_t n = strlen(config) - strlen("/config.json");
    if (strlen(config) < sizeof "/config.json" || strcmp(config + n, "/config.json") != 0 ||
        strlen(weights) != n + strlen("/model.safetensors") || strncmp(weights, config, n) != 0 ||
        strcmp(weights + n, "/model.safetensors") != 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: the encoder's config.json and model.safetensors are not side by side",
                             xmci_bundle_dir(b));
    memcpy(dir, config, n);
    dir[n] = 0;
    return XMC_OK;
}

/* Versions written before the encoder was copied in name a directory outside (encoder.dir, encoder.vocab) and
 * its files' checksums: still read, with both files re-hashed, so a changed encoder is refused. */
static xmc_err check_outside(const xmci_bundle *b, const char *dir, const char *vocab, xmc_error *err)
{
    const char *wh, *vh;
    char weights[PATH_MAX], got_w[17], got_v[17];
    xmc_err rc;
    if ((rc = xmci_bundle_get_string(b, "encoder.weights_xxh64", &wh, err)) ||
        (rc = xmci_bundle_get_string(b, "encoder.vocab_xxh64", &vh, err)))
        return rc;
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    if ((rc = hash_file(weights, got_w, err)) || (rc = hash_file(vocab, got_v, err))) {
        xmc_error_prefix(err, "%s: the model's encoder: ", xmci_bundle_dir(b));
        return rc;
    }
    if (strcmp(got_w, wh) != 0 || strcmp(got_v, vh) != 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: encoder %s changed since training (checksum %s/%s, manifest %s/%s)",
                             xmci_bundle_dir(b), dir, got_w, got_v, wh, vh);
    return XMC_OK;
}

xmc_err xmci_encoder_load(const xmci_bundle *b, xmci_encoder **out, xmc_error *err)
{
    const char *pool;
    long long max_len, dim;
    double alpha;
    char dir[PATH_MAX], vocab[PATH_MAX];
    int outside = !xmci_bundle_has(b, copied[1][0]);
    xmc_err rc;
    if ((rc = xmci_bundle_get_string(b, "encoder.pooling", &pool, err)) ||
        (rc = xmci_bundle_get_int(b, "encoder.max_len", &max_len, err)) ||
        (rc = xmci_bundle_get_float(b, "encoder.alpha", &alpha, err)) || (rc = xmci_bundle_get_int(b, "encoder.dim", &dim, err)))
        return rc;
    xmci_encoder_config cfg;
    xmci_encoder_config_default(&cfg);
    if (outside) {
        /* checked before loading, so a damaged file is named by its checksum, not by a parse error */
        if ((rc = xmci_bundle_get_string(b, "encoder.dir", &cfg.dir, err)) ||
            (rc = xmci_bundle_get_string(b, "encoder.vocab", &cfg.vocab, err)) ||
            (rc = check_outside(b, cfg.dir, cfg.vocab, err)))
            return rc;
    } else {
        if ((rc = copied_paths(b, dir, vocab, err))) return rc;
        cfg.dir = dir;
        cfg.vocab = vocab;
    }
    cfg.max_len = (int)max_len;
    cfg.alpha = (float)alpha;
    if ((rc = xmci_bert_pooling_parse(pool, &cfg.pooling, err))) return rc;
    xmci_encoder *enc;
    if ((rc = xmci_encoder_open(&cfg, &enc, err))) {
        xmc_error_prefix(err, "%s: the model's encoder: ", xmci_bundle_dir(b));
        return rc;
    }
    if ((long long)enc->dim != dim) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "%s: the encoder makes %u dimensions, the manifest says %lld", xmci_bundle_dir(b),
                           enc->dim, dim);
        xmci_encoder_free(enc);
        return rc;
    }
    *out = enc;
    return XMC_OK;
}

uint32_t xmci_encoder_append(uint32_t *idx, float *val, uint32_t nnz, uint32_t offset, const float *emb, uint32_t dim,
                            float alpha)
{
    for (uint32_t j = 0; j < dim; j++) {
        idx[nnz + j] = offset + j;
        val[nnz + j] = alpha * emb[j];
    }
    nnz += dim;
    double s = 0;
    for (uint32_t i = 0; i < nnz; i++) s += (double)val[i] * val[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (uint32_t i = 0; i < nnz; i++) val[i] *= inv;
    }
    return nnz;
}

xmc_err xmci_encoder_concat(const xmci_csr *sparse, uint32_t offset, const float *emb, uint32_t n, uint32_t dim, float alpha,
                           xmci_csr *out, xmc_error *err)
{
    uint64_t nnz = (uint64_t)n * dim + (sparse ? xmci_csr_nnz(sparse) : 0);
    xmc_err rc = xmci_csr_alloc(out, n, offset + dim, nnz, err);
    if (rc) return rc;
    uint64_t q = 0;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t k = 0;
        if (sparse) {
            for (uint64_t p = sparse->indptr[r]; p < sparse->indptr[r + 1]; p++, k++) {
                out->indices[q + k] = sparse->indices[p];
                out->data[q + k] = sparse->data[p];
            }
        }
        q += xmci_encoder_append(out->indices + q, out->data + q, k, offset, emb + (size_t)r * dim, dim, alpha);
        out->indptr[r + 1] = q;
    }
    return XMC_OK;
}
