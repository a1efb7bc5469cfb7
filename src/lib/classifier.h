/* classifier.h: internals of xmc_classifier (xmc.h) shared with training and the library's tests: the pieces
 * of a model version (featuriser, rankers, labels, canaries). Callers outside src/lib use xmc.h's facts. */
#ifndef XMCI_CLASSIFIER_H
#define XMCI_CLASSIFIER_H

#include "encoder.h"
#include "model.h"
#include "tfidf.h"
#include "xlinear.h"
#include "xmc/xmc.h"

struct xmc_classifier {
    xmci_bundle *bundle;
    char version[128];
    xmc_featurizer kind;         /* manifest key featurizer.kind */
    xmci_tfidf *tfidf;            /* NULL unless the featuriser has TF-IDF */
    xmci_encoder *encoder;        /* NULL unless it has the encoder */
    xmci_xlinear xl;
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

/* Rows to classify on several threads: texts (lens NULL: NUL-terminated), or sparse feature vectors in CSR
 * form (indptr[n + 1], ascending indices). */
typedef struct xmci_rows {
    size_t n;
    const char *const *texts;
    const size_t *lens;
    const uint64_t *indptr;
    const uint32_t *indices;
    const float *values;
} xmci_rows;

/* The worker behind xmc_classify_parallel and xmc_data_classify: rows in chunks taken from a shared counter
 * by n_ws threads (xmci_parallel_run), thread i on ws[i]. */
xmc_err xmci_classify_rows(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const xmci_rows *rows,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                          xmc_error *err);

/* Featurises a text into the workspace's buffers: *nnz entries at *idx / *val (owned by ws). */
xmc_err xmci_classifier_featurize(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                                 const uint32_t **idx, const float **val, uint32_t *nnz, xmc_error *err);

#endif
