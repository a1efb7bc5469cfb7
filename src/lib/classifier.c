/* classifier.c: opening a model version and classifying with it (the public API of xmc.h).
 *
 * Opening maps the version's files (model.c), then wires views of them into the featuriser, the layers
 * and the label table; nothing is copied, so opening costs the checksum pass plus page faults. The stored
 * canary records are classified last: a version whose canaries do not come out as recorded at training
 * time is refused. */
#include "classifier.h"

#include <limits.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "disentangle.h"
#include "parallel.h"

/* Texts embedded per encoder forward in a batch: the sgemms reach most of their speed at 32 rows (docs/encoder.md,
 * Speed), and the workspace, sized for 32 x max_len tokens, is 44 MB for a MiniLM-sized encoder at max_len 128. */
#define XMCI_EMBED_BATCH 32

struct xmc_workspace {
    const xmc_classifier *clf;
    xmci_tfidf_ws *tws;
    xmci_encoder_ws *ews;
    float *emb;                          /* XMCI_EMBED_BATCH x dim */
    const char *etext[XMCI_EMBED_BATCH]; /* the texts of the batch being embedded */
    size_t elen[XMCI_EMBED_BATCH];
    uint32_t cap;
    uint32_t *idx;
    float *val;
    xmci_beam_ws *bws;
    /* the batched path (TF-IDF and matrix models, classify_*_batched): a micro-batch's features as CSR */
    xmci_beam_batch *bb;
    uint64_t *bptr;             /* XMCI_BATCH_DOCS + 1 */
    uint32_t *bidx;             /* xmci_beam_batch_max_nnz */
    float *bval;
    xmc_hit *copies;             /* XMC_MAX_K: a search's hits over label copies, before the merge */
};

/* Documents per micro-batch (xmcd's batch), and the features they may hold together beyond one longest text. */
#define XMCI_BATCH_DOCS 256
#define XMCI_BATCH_NNZ (XMCI_BATCH_DOCS * 128)

xmc_predict_opts xmc_classifier_default_opts(const xmc_classifier *clf)
{
    xmc_predict_opts o = {clf->xl.beam, clf->xl.topk, clf->xl.post};
    return o;
}

const char *xmc_classifier_version(const xmc_classifier *clf) { return clf->version; }
const char *xmc_classifier_path(const xmc_classifier *clf) { return xmci_bundle_dir(clf->bundle); }
uint32_t xmc_classifier_num_labels(const xmc_classifier *clf) { return clf->nr_labels; }

const char *xmc_classifier_label_name(const xmc_classifier *clf, uint32_t label)
{
    if (label >= clf->nr_labels) return NULL;
    return clf->names + clf->name_off[label];
}

void xmc_classifier_close(xmc_classifier *clf)
{
    if (!clf) return;
    if (clf->tfidf) xmci_tfidf_free(clf->tfidf);
    xmci_encoder_free(clf->encoder);
    xmci_xlinear_free(&clf->xl);
    xmci_bundle_close(clf->bundle);
    free(clf);
}

static xmc_err arr1(const xmci_bundle *b, const char *name, xmci_dtype dt, uint64_t *len, const void **data, xmc_error *err)
{
    uint64_t shape[1];
    xmc_err rc = xmci_bundle_array(b, name, dt, 1, shape, data, err);
    if (!rc) *len = shape[0];
    return rc;
}

static xmc_err load_labels(xmc_classifier *clf, xmc_error *err)
{
    const xmci_bundle *b = clf->bundle;
    const char *dir = xmci_bundle_dir(b);
    uint64_t nn, no, nf;
    const void *d;
    xmc_err rc;
    if ((rc = arr1(b, "labels.names", XMCI_DT_U8, &nn, &d, err))) return rc;
    clf->names = d;
    if ((rc = arr1(b, "labels.offsets", XMCI_DT_U64, &no, &d, err))) return rc;
    clf->name_off = d;
    if ((rc = arr1(b, "labels.freq", XMCI_DT_U32, &nf, &d, err))) return rc;
    clf->label_freq = d;
    uint32_t L = clf->xl.nr_labels;
    if (no != (uint64_t)L + 1 || nf != L)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s: %llu label names and %llu label counts for a tree of %u labels", dir,
                             (unsigned long long)(no - 1), (unsigned long long)nf, L);
    if (clf->name_off[0] != 0 || clf->name_off[L] != nn)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: label name offsets do not span the names", dir);
    for (uint32_t l = 0; l < L; l++)
        if (clf->name_off[l + 1] <= clf->name_off[l] || clf->name_off[l + 1] > nn ||
            clf->names[clf->name_off[l + 1] - 1] != '\0')
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: label name %u is not terminated", dir, l);
    clf->nr_labels = L;
    long long n;
    if ((rc = xmci_bundle_get_int(b, "train.n_docs", &n, err))) return rc;
    clf->n_train = (uint64_t)n;
    return XMC_OK;
}

static xmc_err load_canaries(xmc_classifier *clf, xmc_error *err)
{
    const xmci_bundle *b = clf->bundle;
    const char *dir = xmci_bundle_dir(b);
    uint64_t n, m, k, len;
    const void *d;
    xmc_err rc;
    long long declared = 0;
    if (xmci_bundle_get_int(b, "canary.count", &declared, NULL) != XMC_OK) declared = 0;
    if (!xmci_bundle_has(b, "canary.label")) {
        if (declared > 0) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: %lld canaries declared, none stored", dir, declared);
        return XMC_OK;
    }
    if ((rc = arr1(b, "canary.label", XMCI_DT_U32, &n, &d, err))) return rc;
    clf->canary_label = d;
    if ((rc = arr1(b, "canary.score", XMCI_DT_F32, &m, &d, err))) return rc;
    clf->canary_score = d;
    if (m != n) return xmc_error_set(err, XMC_ERR_SHAPE, "%s: canary labels and scores differ in count", dir);
    if ((long long)n != declared)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s: %llu canaries stored, the manifest declares %lld", dir, (unsigned long long)n, declared);
    for (uint64_t i = 0; i < n; i++)
        if (clf->canary_label[i] >= clf->nr_labels) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: canary %llu names no label", dir, (unsigned long long)i);
    if (clf->kind != XMC_FEATURIZER_MATRIX) {
        if ((rc = arr1(b, "canary.text", XMCI_DT_U8, &len, &d, err))) return rc;
        clf->canary_text = d;
        if ((rc = arr1(b, "canary.offsets", XMCI_DT_U64, &k, &d, err))) return rc;
        clf->canary_off = d;
        if (k != n + 1 || clf->canary_off[0] != 0 || clf->canary_off[n] != len)
            return xmc_error_set(err, XMC_ERR_SHAPE, "%s: canary text offsets do not match", dir);
        for (uint64_t i = 0; i < n; i++)
            if (clf->canary_off[i + 1] < clf->canary_off[i] || clf->canary_off[i + 1] > len) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: canary offsets decrease", dir);
    } else {
        uint64_t nnz, nv;
        if ((rc = arr1(b, "canary.xptr", XMCI_DT_U64, &k, &d, err))) return rc;
        clf->canary_xptr = d;
        if ((rc = arr1(b, "canary.xidx", XMCI_DT_U32, &nnz, &d, err))) return rc;
        clf->canary_xidx = d;
        if ((rc = arr1(b, "canary.xval", XMCI_DT_F32, &nv, &d, err))) return rc;
        clf->canary_xval = d;
        if (k != n + 1 || nv != nnz || clf->canary_xptr[0] != 0 || clf->canary_xptr[n] != nnz)
            return xmc_error_set(err, XMC_ERR_SHAPE, "%s: canary feature arrays do not match", dir);
        for (uint64_t i = 0; i < n; i++) {
            if (clf->canary_xptr[i + 1] < clf->canary_xptr[i] || clf->canary_xptr[i + 1] > nnz)
                return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: canary pointers decrease or overrun", dir);
            for (uint64_t p = clf->canary_xptr[i]; p < clf->canary_xptr[i + 1]; p++)
                if (clf->canary_xidx[p] >= clf->xl.nr_features || (p > clf->canary_xptr[i] && clf->canary_xidx[p] <= clf->canary_xidx[p - 1]))
                    return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: canary %llu has bad feature ids", dir, (unsigned long long)i);
        }
    }
    clf->n_canary = (uint32_t)n;
    return XMC_OK;
}

xmc_err xmc_classifier_open(const char *path, const xmc_open_opts *opts, xmc_classifier **out, xmc_error *err)
{
    if (out) *out = NULL;
    if (!path || !out) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    int verify = opts ? opts->verify_checksums : 1, canaries = opts ? opts->check_canaries : 1;
    char dir[PATH_MAX];
    xmc_err rc = xmci_model_resolve(path, dir, sizeof dir, err);
    if (rc) return rc;
    xmc_classifier *clf = calloc(1, sizeof *clf);
    if (!clf) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    if ((rc = xmci_bundle_open(dir, verify, &clf->bundle, err))) goto fail;
    snprintf(clf->version, sizeof clf->version, "%s", xmci_bundle_version(clf->bundle));
    const char *kind;
    if ((rc = xmci_bundle_get_string(clf->bundle, "featurizer.kind", &kind, err))) goto fail;
    int featurizer = xmc_featurizer_from_name(kind);
    if (featurizer >= 0) clf->kind = (xmc_featurizer)featurizer;
    else {
        rc = xmc_error_set(err, XMC_ERR_VERSION, "%s: featurizer.kind '%s' is not one this build knows", dir, kind);
        goto fail;
    }
    if ((clf->kind & XMC_FEATURIZER_TFIDF) && (rc = xmci_tfidf_load(clf->bundle, "tfidf", &clf->tfidf, err))) goto fail;
    if ((clf->kind & XMC_FEATURIZER_ENCODER) && (rc = xmci_encoder_load(clf->bundle, &clf->encoder, err))) goto fail;
    if ((rc = xmci_xlinear_load(clf->bundle, &clf->xl, err))) goto fail;
    if (clf->kind != XMC_FEATURIZER_MATRIX) {
        uint64_t dim = (clf->tfidf ? xmci_tfidf_dim(clf->tfidf) : 0) + (clf->encoder ? xmci_encoder_dim(clf->encoder) : 0);
        if (dim != clf->xl.nr_features) {
            rc = xmc_error_set(err, XMC_ERR_SHAPE, "%s: the featuriser makes %llu features, the rankers take %u", dir,
                               (unsigned long long)dim, clf->xl.nr_features);
            goto fail;
        }
    }
    if ((rc = load_labels(clf, err))) goto fail;
    if ((rc = load_canaries(clf, err))) goto fail;
    if (canaries && (rc = xmc_classifier_check_canaries(clf, err))) goto fail;
    *out = clf;
    return XMC_OK;
fail:
    xmc_classifier_close(clf);
    return rc;
}

/* The batched path's buffers, sized once: allocation-free batches after this. */
static xmc_err batch_ws_new(const xmc_classifier *clf, xmc_workspace *ws, xmc_error *err)
{
    uint32_t max_nnz = ws->cap + XMCI_BATCH_NNZ;
    xmc_err rc = xmci_beam_batch_new(&clf->xl, XMCI_BATCH_DOCS, max_nnz, 0, &ws->bb, err);
    if (rc) return rc;
    ws->bptr = malloc((XMCI_BATCH_DOCS + 1) * sizeof *ws->bptr);
    if (clf->tfidf) {
        ws->bidx = malloc(max_nnz * sizeof *ws->bidx);
        ws->bval = malloc(max_nnz * sizeof *ws->bval);
        if (!ws->bidx || !ws->bval) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    }
    if (!ws->bptr) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    return XMC_OK;
}

xmc_err xmc_workspace_new(const xmc_classifier *clf, xmc_workspace **out, xmc_error *err)
{
    if (out) *out = NULL;
    if (!clf || !out) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    xmc_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    ws->clf = clf;
    xmc_err rc;
    if (clf->kind != XMC_FEATURIZER_MATRIX) {
        if (clf->tfidf) {
            if ((rc = xmci_tfidf_ws_new(clf->tfidf, &ws->tws, err))) goto fail;
            ws->cap = xmci_tfidf_max_nnz(clf->tfidf);
        }
        if (clf->encoder) {
            uint32_t dim = xmci_encoder_dim(clf->encoder);
            if ((rc = xmci_encoder_ws_new(clf->encoder, XMCI_EMBED_BATCH, &ws->ews, err))) goto fail;
            ws->emb = malloc((size_t)XMCI_EMBED_BATCH * dim * sizeof *ws->emb);
            if (!ws->emb) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto fail; }
            ws->cap += dim;
        }
        ws->idx = malloc((ws->cap ? ws->cap : 1) * sizeof *ws->idx);
        ws->val = malloc((ws->cap ? ws->cap : 1) * sizeof *ws->val);
        if (!ws->idx || !ws->val) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto fail; }
    }
    if ((rc = xmci_beam_ws_new(&clf->xl, XMC_MAX_K, &ws->bws, err))) goto fail;
    if (!clf->encoder && !clf->xl.copy_ptr && (rc = batch_ws_new(clf, ws, err))) goto fail;
    if (clf->xl.copy_ptr && !(ws->copies = malloc(XMC_MAX_K * sizeof *ws->copies))) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = ws;
    return XMC_OK;
fail:
    xmc_workspace_free(ws);
    return rc;
}

void xmc_workspace_free(xmc_workspace *ws)
{
    if (!ws) return;
    if (ws->tws) xmci_tfidf_ws_free(ws->tws);
    xmci_encoder_ws_free(ws->ews);
    free(ws->emb);
    free(ws->idx);
    free(ws->val);
    xmci_beam_ws_free(ws->bws);
    xmci_beam_batch_free(ws->bb);
    free(ws->bptr);
    free(ws->bidx);
    free(ws->bval);
    free(ws->copies);
    free(ws);
}

static xmc_err resolve_opts(const xmc_classifier *clf, const xmc_predict_opts *opts, uint32_t *beam, uint32_t *topk,
                            int *post, xmc_error *err)
{
    *beam = opts && opts->beam ? opts->beam : clf->xl.beam;
    *topk = opts && opts->topk ? opts->topk : clf->xl.topk;
    *post = opts && opts->post >= 0 ? opts->post : clf->xl.post;
    if (*beam > XMC_MAX_K || *topk > XMC_MAX_K)
        return xmc_error_set(err, XMC_ERR_ARG, "beam %u / topk %u above the limit of %d", *beam, *topk, XMC_MAX_K);
    if (*post < 0 || *post >= XMC_POST__COUNT) return xmc_error_set(err, XMC_ERR_ARG, "unknown post-processor %d", *post);
    return XMC_OK;
}

/* xmc_classify_features on a row known to be well formed (the featurizers' own). */
static xmc_err classify_row(const xmc_classifier *clf, xmc_workspace *ws, const uint32_t *idx, const float *val,
                            uint32_t nnz, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err)
{
    uint32_t beam, topk;
    int post;
    if (!clf || !hits || !n || (nnz && (!idx || !val))) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    if (!ws || ws->clf != clf) return xmc_error_set(err, XMC_ERR_ARG, "workspace belongs to another classifier");
    xmc_err rc = resolve_opts(clf, opts, &beam, &topk, &post, err);
    if (rc) return rc;
    if (!clf->xl.copy_ptr) {
        *n = xmci_beam_search(&clf->xl, ws->bws, idx, val, nnz, beam, topk, post, 0, hits);
        return XMC_OK;
    }
    /* labels with copies: enough copies that topk distinct labels are among them, merged by the maximum */
    uint64_t want = (uint64_t)topk * clf->xl.max_copies;
    uint32_t got = xmci_beam_search(&clf->xl, ws->bws, idx, val, nnz, beam, want < XMC_MAX_K ? (uint32_t)want : XMC_MAX_K,
                                    post, 0, ws->copies);
    *n = xmci_copies_merge(clf->xl.copy_ptr, clf->nr_labels, ws->copies, got, topk, hits);
    return XMC_OK;
}

/* The search merges the row with each chunk's features in order: an index out of order or repeated would be
 * missed without a word, and a value that is not finite makes scores that are not numbers. */
xmc_err xmc_classify_features(const xmc_classifier *clf, xmc_workspace *ws, const uint32_t *idx, const float *val,
                              uint32_t nnz, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err)
{
    if (nnz && idx && val)
        for (uint32_t i = 0; i < nnz; i++) {
            if (i && idx[i] <= idx[i - 1])
                return xmc_error_set(err, XMC_ERR_ARG, "feature indices not strictly ascending: %u after %u (entry %u)",
                                     idx[i], idx[i - 1], i);
            if (!isfinite(val[i]))
                return xmc_error_set(err, XMC_ERR_ARG, "feature %u has a value that is not finite (%g)", idx[i],
                                     (double)val[i]);
        }
    return classify_row(clf, ws, idx, val, nnz, opts, hits, n, err);
}

/* ---- encoder featurisation: a batch of texts per encoder forward ----------------------------------------
 * embed_texts runs the encoder once over up to XMCI_EMBED_BATCH texts into ws->emb (allocation-free: the
 * workspace was sized for that many rows of max_len tokens); featurize_embedded then builds each row's
 * [tfidf ; alpha * emb] from its embedding. One text alone is the batch of one. */

/* The first text of n that is NULL with a length (no text to read), or n. */
static size_t first_bad_text(const char *const *texts, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!texts[i] && lens && lens[i]) return i;
    return n;
}

/* texts must have passed first_bad_text */
static xmc_err embed_texts(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts, const size_t *lens,
                           size_t n, xmc_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *t = texts[i];
        ws->etext[i] = t ? t : "";
        ws->elen[i] = t ? (lens ? lens[i] : strlen(t)) : 0;
    }
    return xmci_encoder_embed(clf->encoder, ws->ews, ws->etext, ws->elen, (int)n, ws->emb, err);
}

static uint32_t featurize_embedded(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                                   const float *emb)
{
    uint32_t n = 0;
    if (clf->tfidf) n = xmci_tfidf_transform(clf->tfidf, ws->tws, text, len, ws->idx, ws->val, ws->cap);
    return xmci_encoder_append(ws->idx, ws->val, n, clf->tfidf ? xmci_tfidf_dim(clf->tfidf) : 0, emb,
                               xmci_encoder_dim(clf->encoder), xmci_encoder_alpha(clf->encoder));
}

/* xmc_classify_batch for a model with an encoder: texts embedded XMCI_EMBED_BATCH at a time, then each
 * classified from its embedding; the first failure stops it, rows before it are classified (a bad text ends its
 * block after the rows before it). base: the index of texts[0] in the caller's rows, for the message. */
static xmc_err classify_texts_embedded(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts,
                                       const size_t *lens, size_t n, size_t base, const xmc_predict_opts *opts,
                                       xmc_hit *hits, uint32_t stride, uint32_t *counts, xmc_error *err)
{
    uint32_t dim = xmci_encoder_dim(clf->encoder);
    for (size_t start = 0; start < n; start += XMCI_EMBED_BATCH) {
        size_t m = n - start < XMCI_EMBED_BATCH ? n - start : XMCI_EMBED_BATCH;
        size_t bad = first_bad_text(texts + start, lens ? lens + start : NULL, m);
        m = bad;
        xmc_err rc = m ? embed_texts(clf, ws, texts + start, lens ? lens + start : NULL, m, err) : XMC_OK;
        if (rc) return rc;
        for (size_t i = 0; i < m; i++) {
            uint32_t nnz = featurize_embedded(clf, ws, ws->etext[i], ws->elen[i], ws->emb + i * dim);
            rc = classify_row(clf, ws, ws->idx, ws->val, nnz, opts, hits + (start + i) * stride, &counts[start + i],
                              err);
            if (rc) return rc;
        }
        if (m < (n - start < XMCI_EMBED_BATCH ? n - start : XMCI_EMBED_BATCH))
            return xmc_error_set(err, XMC_ERR_ARG, "NULL argument (text %zu)", base + start + m);
    }
    return XMC_OK;
}

xmc_err xmci_classifier_featurize(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                                 const uint32_t **idx, const float **val, uint32_t *nnz, xmc_error *err)
{
    uint32_t n = 0;
    if (clf->encoder) {
        if (!text && len) return xmc_error_set(err, XMC_ERR_ARG, "NULL text of length %zu", len);
        xmc_err rc = embed_texts(clf, ws, &text, &len, 1, err);
        if (rc) return rc;
        n = featurize_embedded(clf, ws, text, len, ws->emb);
    } else if (clf->tfidf) {
        n = xmci_tfidf_transform(clf->tfidf, ws->tws, text, len, ws->idx, ws->val, ws->cap);
    }
    *idx = ws->idx;
    *val = ws->val;
    *nnz = n;
    return XMC_OK;
}

xmc_err xmc_classify_text(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err)
{
    if (!clf || !ws || !hits || !n || (!text && len)) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    if (clf->kind == XMC_FEATURIZER_MATRIX)
        return xmc_error_set(err, XMC_ERR_ARG, "model %s takes feature vectors, not text", clf->version);
    if (!ws || ws->clf != clf) return xmc_error_set(err, XMC_ERR_ARG, "workspace belongs to another classifier");
    const uint32_t *idx;
    const float *val;
    uint32_t nnz;
    xmc_err rc = xmci_classifier_featurize(clf, ws, text ? text : "", len, &idx, &val, &nnz, err);
    if (rc) return rc;
    return classify_row(clf, ws, idx, val, nnz, opts, hits, n, err);
}

/* ---- the batched path (TF-IDF and matrix models) ------------------------------------------------------------
 * Texts are featurized into one CSR of up to XMCI_BATCH_DOCS rows (fewer at a large beam, or when the next
 * text might not fit the features left), then searched together (xmci_beam_search_rows): the same hits as
 * one xmc_classify_text per text. */

static xmc_err classify_texts_batched(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts,
                                      const size_t *lens, size_t n, size_t base, uint32_t beam, uint32_t topk,
                                      int post, xmc_hit *hits, uint32_t stride, uint32_t *counts, xmc_error *err)
{
    uint32_t max_docs = xmci_beam_batch_docs(ws->bb, beam, topk), max_nnz = xmci_beam_batch_max_nnz(ws->bb);
    size_t i = 0;
    while (i < n) {
        uint32_t m = 0, nz = 0;
        const char *bad = NULL;
        ws->bptr[0] = 0;
        while (i + m < n && m < max_docs && nz + ws->cap <= max_nnz) {
            const char *t = texts[i + m];
            size_t len = lens ? lens[i + m] : (t ? strlen(t) : 0);
            if (!t && len) {
                bad = "NULL argument";
                break;
            }
            nz += xmci_tfidf_transform(clf->tfidf, ws->tws, t ? t : "", len, ws->bidx + nz, ws->bval + nz, ws->cap);
            ws->bptr[++m] = nz;
        }
        if (m)
            xmci_beam_search_rows(&clf->xl, ws->bb, ws->bptr, ws->bidx, ws->bval, m, beam, topk, post, 0,
                                  hits + i * stride, stride, counts + i);
        i += m;
        if (bad) return xmc_error_set(err, XMC_ERR_ARG, "%s (text %zu)", bad, base + i);
    }
    return XMC_OK;
}

/* Rows of a feature matrix (indices ascending per row) in micro-batches; a row longer than the batch's
 * feature room is searched alone. */
static void classify_rows_batched(const xmc_classifier *clf, xmc_workspace *ws, const uint64_t *indptr,
                                  const uint32_t *indices, const float *values, size_t n, uint32_t beam, uint32_t topk,
                                  int post, xmc_hit *hits, uint32_t stride, uint32_t *counts)
{
    uint32_t max_docs = xmci_beam_batch_docs(ws->bb, beam, topk), max_nnz = xmci_beam_batch_max_nnz(ws->bb);
    size_t i = 0;
    while (i < n) {
        if (indptr[i + 1] - indptr[i] > max_nnz) {
            counts[i] = xmci_beam_search(&clf->xl, ws->bws, indices + indptr[i], values + indptr[i],
                                         (uint32_t)(indptr[i + 1] - indptr[i]), beam, topk, post, 0, hits + i * stride);
            i++;
            continue;
        }
        uint32_t m = 1;
        while (i + m < n && m < max_docs && indptr[i + m + 1] - indptr[i] <= max_nnz) m++;
        xmci_beam_search_rows(&clf->xl, ws->bb, indptr + i, indices + indptr[i], values + indptr[i], m, beam, topk,
                              post, 0, hits + i * stride, stride, counts + i);
        i += m;
    }
}

/* xmc_classify_batch over rows base.. of the caller's (base only names a failing text in the message). */
static xmc_err classify_batch_at(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts,
                                 const size_t *lens, size_t n, size_t base, const xmc_predict_opts *opts,
                                 xmc_hit *hits, uint32_t stride, uint32_t *counts, xmc_error *err)
{
    if (!clf || (n && (!texts || !hits || !counts))) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    uint32_t topk = opts && opts->topk ? opts->topk : clf->xl.topk;
    if (stride < topk) return xmc_error_set(err, XMC_ERR_ARG, "stride %u below topk %u", stride, topk);
    if (clf->encoder) {
        if (!ws || ws->clf != clf) return xmc_error_set(err, XMC_ERR_ARG, "workspace belongs to another classifier");
        return classify_texts_embedded(clf, ws, texts, lens, n, base, opts, hits, stride, counts, err);
    }
    /* a batch of one takes the single search: grouping one document's pairs gains nothing */
    if (ws && ws->clf == clf && ws->bb && clf->tfidf && n > 1 && texts && hits && counts) {
        uint32_t beam;
        int post;
        xmc_err rc = resolve_opts(clf, opts, &beam, &topk, &post, err);
        if (rc) return rc;
        return classify_texts_batched(clf, ws, texts, lens, n, base, beam, topk, post, hits, stride, counts, err);
    }
    for (size_t i = 0; i < n; i++) {
        xmc_err rc = xmc_classify_text(clf, ws, texts[i], lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0), opts,
                                       hits + i * stride, &counts[i], err);
        if (rc) {
            xmc_error_prefix(err, "text %zu: ", base + i);
            return rc;
        }
    }
    return XMC_OK;
}

xmc_err xmc_classify_batch(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts, const size_t *lens,
                           size_t n, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                           xmc_error *err)
{
    return classify_batch_at(clf, ws, texts, lens, n, 0, opts, hits, stride, counts, err);
}

/* Hits a canary search returns: the recorded label may sit among this many tied first hits. */
#define CANARY_TIES 32

xmc_err xmc_classifier_check_canaries(const xmc_classifier *clf, xmc_error *err)
{
    if (clf->n_canary == 0) return XMC_OK;
    xmc_workspace *ws;
    xmc_err rc = xmc_workspace_new(clf, &ws, err);
    if (rc) return rc;
    /* the recorded label must be the first hit, or tie with it: saturated post-processed scores tie, and the
     * order among them (raw score today, node order before) is not what a canary checks */
    xmc_hit hits[CANARY_TIES];
    xmc_predict_opts o = xmc_classifier_default_opts(clf);
    o.topk = CANARY_TIES;
    for (uint32_t i = 0; i < clf->n_canary && !rc; i++) {
        uint32_t n = 0;
        if (clf->kind != XMC_FEATURIZER_MATRIX) {
            const char *t = clf->canary_text + clf->canary_off[i];
            rc = xmc_classify_text(clf, ws, t, (size_t)(clf->canary_off[i + 1] - clf->canary_off[i]), &o, hits, &n, err);
        } else {
            uint64_t b = clf->canary_xptr[i];
            rc = xmc_classify_features(clf, ws, clf->canary_xidx + b, clf->canary_xval + b,
                                       (uint32_t)(clf->canary_xptr[i + 1] - b), &o, hits, &n, err);
        }
        if (rc) break;
        float want = clf->canary_score[i], tol = 1e-4f * (1 + fabsf(want));
        uint32_t j = 0;
        while (j < n && hits[j].label != clf->canary_label[i] && hits[j].score == hits[0].score) j++;
        if (n < 1 || fabsf(hits[0].score - want) > tol || j == n || hits[j].label != clf->canary_label[i] ||
            hits[j].score != hits[0].score)
            rc = xmc_error_set(err, XMC_ERR_CANARY,
                               "%s: canary %u gives label %s (%.6g), recorded at training: %s (%.6g)",
                               xmci_bundle_dir(clf->bundle), i, n ? xmc_classifier_label_name(clf, hits[0].label) : "none",
                               n ? (double)hits[0].score : 0.0, xmc_classifier_label_name(clf, clf->canary_label[i]),
                               (double)want);
    }
    xmc_workspace_free(ws);
    return rc;
}

/* ---- featurizer names ----------------------------------------------------------------------------------- */

static const char *const featurizer_names[] = {"matrix", "tfidf", "encoder", "tfidf+encoder"};

int xmc_featurizer_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, featurizer_names[i]) == 0) return i;
    return -1;
}

const char *xmc_featurizer_name(xmc_featurizer featurizer)
{
    return (unsigned)featurizer < 4 ? featurizer_names[featurizer] : "?";
}

/* ---- several threads ------------------------------------------------------------------------------------
 * Threads take chunks of rows from one counter, so fast threads take more; the first error wins and stops
 * the others at their next chunk. */

#define ROWS_PER_CHUNK 256

typedef struct {
    const xmc_classifier *clf;
    xmc_workspace *const *ws;
    const xmci_rows *rows;
    const xmc_predict_opts *opts;
    xmc_hit *hits;
    uint32_t stride;
    uint32_t *counts;
    atomic_size_t next;
    atomic_int slot, failed;
    xmc_error err;
} rows_job;

static void *rows_worker(void *arg)
{
    rows_job *job = arg;
    xmc_workspace *ws = job->ws[atomic_fetch_add(&job->slot, 1)];
    const xmci_rows *rows = job->rows;
    xmc_error err;
    for (;;) {
        size_t start = atomic_fetch_add(&job->next, ROWS_PER_CHUNK);
        if (start >= rows->n || atomic_load(&job->failed)) break;
        size_t end = start + ROWS_PER_CHUNK < rows->n ? start + ROWS_PER_CHUNK : rows->n;
        xmc_err rc = XMC_OK;
        if (rows->texts) {
            /* a chunk of texts is one batched call (xmc_classify_batch) */
            rc = classify_batch_at(job->clf, ws, rows->texts + start, rows->lens ? rows->lens + start : NULL,
                                   end - start, start, job->opts, job->hits + start * job->stride, job->stride,
                                   job->counts + start, &err);
        } else if (ws->bb) {
            uint32_t beam, topk;
            int post;
            rc = resolve_opts(job->clf, job->opts, &beam, &topk, &post, &err);
            if (!rc)
                classify_rows_batched(job->clf, ws, rows->indptr + start, rows->indices, rows->values, end - start,
                                      beam, topk, post, job->hits + start * job->stride, job->stride,
                                      job->counts + start);
        } else {
            for (size_t r = start; r < end && !rc; r++) {
                uint64_t b = rows->indptr[r];
                rc = xmc_classify_features(job->clf, ws, rows->indices + b, rows->values + b,
                                           (uint32_t)(rows->indptr[r + 1] - b), job->opts, job->hits + r * job->stride,
                                           &job->counts[r], &err);
            }
        }
        if (rc) {
            if (!atomic_exchange(&job->failed, 1)) job->err = err;
            return NULL;
        }
    }
    return NULL;
}

xmc_err xmci_classify_rows(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const xmci_rows *rows,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                          xmc_error *err)
{
    if (!clf || !ws || !rows || (rows->n && (!hits || !counts)))
        return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    if (n_ws < 1 || n_ws > XMC_MAX_THREADS)
        return xmc_error_set(err, XMC_ERR_ARG, "%d workspaces: one per thread, 1 to %d", n_ws, XMC_MAX_THREADS);
    uint32_t topk = opts && opts->topk ? opts->topk : clf->xl.topk;
    if (stride < topk) return xmc_error_set(err, XMC_ERR_ARG, "stride %u below topk %u", stride, topk);
    for (int i = 0; i < n_ws; i++)
        if (!ws[i] || ws[i]->clf != clf) return xmc_error_set(err, XMC_ERR_ARG, "workspace %d belongs to another classifier", i);
    rows_job job = {.clf = clf, .ws = ws, .rows = rows, .opts = opts, .hits = hits, .stride = stride, .counts = counts};
    atomic_init(&job.next, 0);
    atomic_init(&job.slot, 0);
    atomic_init(&job.failed, 0);
    xmci_parallel_run(rows_worker, &job, n_ws);
    if (atomic_load(&job.failed)) {
        if (err) *err = job.err;
        return job.err.code;
    }
    return XMC_OK;
}

xmc_err xmc_classify_parallel(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const char *const *texts,
                              const size_t *lens, size_t n, const xmc_predict_opts *opts, xmc_hit *hits,
                              uint32_t stride, uint32_t *counts, xmc_error *err)
{
    if (n && !texts) return xmc_error_set(err, XMC_ERR_ARG, "NULL texts");
    xmci_rows rows = {.n = n, .texts = texts, .lens = lens};
    return xmci_classify_rows(clf, ws, n_ws, &rows, opts, hits, stride, counts, err);
}

/* ---- model facts ---------------------------------------------------------------------------------------- */

void xmc_classifier_info(const xmc_classifier *clf, xmc_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->featurizer = clf->kind;
    info->nr_features = clf->xl.nr_features;
    info->nr_labels = clf->nr_labels;
    info->depth = clf->xl.depth;
    info->n_train = clf->n_train;
    info->n_canary = clf->n_canary;
    info->defaults = xmc_classifier_default_opts(clf);
}

xmc_err xmc_classifier_layer(const xmc_classifier *clf, uint32_t t, xmc_layer_info *info, xmc_error *err)
{
    if (t >= clf->xl.depth) return xmc_error_set(err, XMC_ERR_ARG, "layer %u of a tree of %u", t, clf->xl.depth);
    const xmci_layer *layer = &clf->xl.layers[t];
    info->nr_nodes = layer->nr_nodes;
    info->nr_parents = layer->nr_parents;
    info->max_children = layer->max_children;
    info->weight_rows = layer->nr_rows;
    info->nnz = layer->nnz;
    return XMC_OK;
}

uint32_t xmc_classifier_disentangle(const xmc_classifier *clf) { return clf->xl.disentangle; }

uint32_t xmc_classifier_label_leaves(const xmc_classifier *clf, uint32_t label, uint32_t *leaves, uint32_t cap)
{
    const xmci_xlinear *xl = &clf->xl;
    if (label >= clf->nr_labels || xl->depth < 2) return 0; /* one layer: the labels hang off the root */
    uint32_t first = xl->copy_ptr ? xl->copy_ptr[label] : label, end = xl->copy_ptr ? xl->copy_ptr[label + 1] : label + 1;
    const xmci_layer *last = &xl->layers[xl->depth - 1];
    /* the layer stores children per parent; a copy's parent is found by a scan, which inspect can afford */
    for (uint32_t c = first; c < end && c - first < cap; c++) {
        leaves[c - first] = 0;
        for (uint32_t p = 0; p < last->nr_parents; p++)
            for (uint32_t q = last->child_ptr[p]; q < last->child_ptr[p + 1]; q++)
                if (last->child_idx[q] == c) leaves[c - first] = p;
    }
    return end - first;
}

const uint32_t *xmc_classifier_label_freq(const xmc_classifier *clf) { return clf->label_freq; }

uint32_t xmc_classifier_find_label(const xmc_classifier *clf, const char *name)
{
    if (!name) return UINT32_MAX;
    for (uint32_t l = 0; l < clf->nr_labels; l++)
        if (strcmp(xmc_classifier_label_name(clf, l), name) == 0) return l;
    return UINT32_MAX;
}

xmc_err xmc_classifier_tfidf_spec(const xmc_classifier *clf, char *buf, size_t size, xmc_error *err)
{
    if (!clf->tfidf) return xmc_error_set(err, XMC_ERR_NOTFOUND, "model %s has no TF-IDF featurizer", clf->version);
    size_t need = xmci_tfidf_config_format(xmci_tfidf_config_of(clf->tfidf), buf, size);
    if (need >= size) /* a cut spec would read as a different featurizer */
        return xmc_error_set(err, XMC_ERR_RANGE, "model %s's TF-IDF spec takes %zu bytes, the buffer holds %zu",
                             clf->version, need + 1, size);
    return XMC_OK;
}

const char *xmc_classifier_feature_name(const xmc_classifier *clf, uint32_t f, size_t *len)
{
    if (f == clf->xl.nr_features) { *len = 6; return "(bias)"; }
    if (clf->tfidf && f < xmci_tfidf_dim(clf->tfidf)) return xmci_tfidf_feature_name(clf->tfidf, f, len);
    if (clf->encoder && f < clf->xl.nr_features) { *len = 21; return "(embedding dimension)"; }
    return NULL;
}

static int cmp_weight(const void *a, const void *b)
{
    float x = fabsf(((const xmc_feature_weight *)a)->weight), y = fabsf(((const xmc_feature_weight *)b)->weight);
    return (x < y) - (x > y);
}

xmc_err xmc_classifier_top_features(const xmc_classifier *clf, uint32_t label, xmc_feature_weight *out, uint32_t cap,
                                    uint32_t *n, uint64_t *total, xmc_error *err)
{
    if (label >= clf->nr_labels) return xmc_error_set(err, XMC_ERR_ARG, "label %u of %u", label, clf->nr_labels);
    xmci_csr w;
    xmc_err rc = xmci_layer_weights(&clf->xl.layers[clf->xl.depth - 1], clf->xl.nr_features, &w, err);
    if (rc) return rc;
    /* a label with copies shows its first (most voted) copy's ranker */
    uint32_t node = clf->xl.copy_ptr ? clf->xl.copy_ptr[label] : label;
    uint64_t b = w.indptr[node], cnt = w.indptr[node + 1] - b;
    xmc_feature_weight *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        xmci_csr_free(&w);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for %llu weights", (unsigned long long)cnt);
    }
    for (uint64_t i = 0; i < cnt; i++) v[i] = (xmc_feature_weight){w.indices[b + i], w.data[b + i]};
    qsort(v, cnt, sizeof *v, cmp_weight);
    uint32_t k = cnt < cap ? (uint32_t)cnt : cap;
    memcpy(out, v, k * sizeof *v);
    *n = k;
    *total = cnt;
    free(v);
    xmci_csr_free(&w);
    return XMC_OK;
}
