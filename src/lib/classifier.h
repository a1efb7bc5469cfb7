/* classifier.h: internals of xmc_classifier (xmc.h) shared with training and the CLI: classification from
 * a feature vector, and the pieces of a model version (featuriser, rankers, labels, canaries). */
#ifndef XMC_CLASSIFIER_H
#define XMC_CLASSIFIER_H

#include "encoder.h"
#include "model.h"
#include "tfidf.h"
#include "xlinear.h"
#include "xmc/xmc.h"

/* Featurisers a model version may use (manifest key featurizer.kind). */
typedef enum { XMC_FEAT_MATRIX = 0, XMC_FEAT_TFIDF = 1, XMC_FEAT_ENCODER = 2, XMC_FEAT_BOTH = 3 } xmc_feat_kind;

struct xmc_classifier {
    xmc_bundle *bundle;
    char version[128];
    xmc_feat_kind kind;
    xmc_tfidf *tfidf;            /* NULL unless the featuriser has TF-IDF */
    xmc_encoder *encoder;        /* NULL unless it has the encoder */
    xmc_xlinear xl;
    uint32_t nr_labels;
    const char *names;           /* NUL-terminated names back to back */
    const uint64_t *name_off;    /* nr_labels + 1 */
    const uint32_t *label_freq;  /* training positives per label (PSP@k) */
    uint64_t n_train;
    uint32_t n_canary;
    const char *canary_text;     /* text canaries (tfidf models) */
    const uint64_t *canary_off;
    const uint64_t *canary_xptr; /* feature canaries (matrix models) */
    const uint32_t *canary_xidx;
    const float *canary_xval;
    const uint32_t *canary_label;
    const float *canary_score;
};

/* Classifies a sparse feature vector (idx ascending). Allocation-free. */
xmc_err xmc_classify_features(const xmc_classifier *clf, xmc_workspace *ws, const uint32_t *idx, const float *val,
                              uint32_t nnz, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err);

/* Featurises a text into the workspace's buffers: *nnz entries at *idx / *val (owned by ws). */
xmc_err xmc_classifier_featurize(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                                 const uint32_t **idx, const float **val, uint32_t *nnz, xmc_error *err);

/* Largest beam/topk a workspace serves. */
#define XMC_WS_MAX_K 1024

#endif
