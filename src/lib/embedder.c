/* embedder.c: the public text embedder of xmc/embedder.h: a BERT-family encoder (bert.h) with its WordPiece
 * vocabulary (wordpiece.h); a workspace pairs the encoder's scratch with a reusable token batch. */
#include "xmc/embedder.h"

#include <stdio.h>
#include <stdlib.h>

#include "bert.h"
#include "wordpiece.h"

_Static_assert((int)XMC_POOLING_CLS == (int)XMCI_BERT_POOL_CLS && (int)XMC_POOLING_MEAN == (int)XMCI_BERT_POOL_MEAN &&
                   (int)XMC_POOLING_POOLER == (int)XMCI_BERT_POOL_POOLER,
               "public pooling ids are bert.h's");

struct xmc_embedder {
    xmci_bert *bert;
    xmci_wordpiece *wp;
};

struct xmc_embedder_ws {
    xmci_bert_workspace *bws;
    xmci_wordpiece_batch batch;
    int max_texts, max_len; /* what it was made for: a call asking more is refused, not grown */
};

xmc_err xmc_pooling_parse(const char *name, xmc_pooling *pooling, xmc_error *err)
{
    if (!name || !pooling) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    xmci_bert_pooling p;
    xmc_err rc = xmci_bert_pooling_parse(name, &p, err);
    if (!rc) *pooling = (xmc_pooling)p;
    return rc;
}

xmc_err xmc_embedder_open(const char *dir, const char *vocab, xmc_embedder **out, xmc_error *err)
{
    if (out) *out = NULL;
    if (!dir || !out) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    char vocab_path[4096];
    if (!vocab) {
        snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", dir);
        vocab = vocab_path;
    }
    xmc_embedder *emb = calloc(1, sizeof *emb);
    if (!emb) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc = xmci_bert_load(dir, &emb->bert, err);
    if (!rc) rc = xmci_wordpiece_load(vocab, &emb->wp, err);
    if (rc) {
        xmc_embedder_close(emb);
        return rc;
    }
    *out = emb;
    return XMC_OK;
}

void xmc_embedder_close(xmc_embedder *emb)
{
    if (!emb) return;
    xmci_wordpiece_free(emb->wp);
    xmci_bert_free(emb->bert);
    free(emb);
}

void xmc_embedder_get_info(const xmc_embedder *emb, xmc_embedder_info *info)
{
    const xmci_bert_config *cfg = xmci_bert_get_config(emb->bert);
    info->hidden = cfg->hidden;
    info->max_positions = cfg->max_positions;
    info->vocab_size = cfg->vocab_size;
    info->vocab_tokens = xmci_wordpiece_size(emb->wp);
    info->has_pooler = xmci_bert_has_pooler(emb->bert);
}

xmc_err xmc_embedder_ws_new(const xmc_embedder *emb, int max_texts, int max_len, xmc_embedder_ws **out, xmc_error *err)
{
    if (out) *out = NULL;
    if (!emb || !out) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    xmc_embedder_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc = xmci_bert_workspace_new(emb->bert, max_texts, max_len, &ws->bws, err);
    if (rc) {
        free(ws);
        return rc;
    }
    ws->max_texts = max_texts;
    ws->max_len = max_len;
    *out = ws;
    return XMC_OK;
}

void xmc_embedder_ws_free(xmc_embedder_ws *ws)
{
    if (!ws) return;
    xmci_wordpiece_batch_free(&ws->batch);
    xmci_bert_workspace_free(ws->bws);
    free(ws);
}

xmc_err xmc_embedder_embed(const xmc_embedder *emb, xmc_embedder_ws *ws, const char *const *texts, const size_t *lens,
                           int n, int max_len, xmc_pooling pooling, int normalize, float *out, xmc_error *err)
{
    if (!emb || !ws || (n > 0 && (!texts || !out)))
        return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    if (n < 0 || n > ws->max_texts || max_len < 1 || max_len > ws->max_len)
        return xmc_error_set(err, XMC_ERR_ARG, "%d texts of %d tokens: the workspace was made for up to %d of %d", n,
                             max_len, ws->max_texts, ws->max_len);
    if (n == 0) return XMC_OK; /* nothing to embed: not an error */
    xmc_err rc = xmci_wordpiece_encode_batch(emb->wp, texts, lens, n, max_len, &ws->batch, err);
    if (rc) return rc;
    return xmci_bert_embed(emb->bert, ws->bws, &ws->batch, (xmci_bert_pooling)pooling, normalize, out, err);
}
