/* data.h: labelled and unlabelled datasets for training, prediction and evaluation with libxmc.
 *
 * A dataset is read from one source: a TSV of "labels<TAB>text" lines, a pair of smat text files (features X,
 * optional labels Y), or an XC / multi-label libsvm file. Label names of a TSV are mapped through an open
 * classifier's label table (test data: unknown names are dropped and counted) or numbered in order of first
 * appearance (training data). The dataset owns everything it holds; a classifier whose labels it uses must
 * outlive it. Every fallible call returns XMC_OK or a code with err filled and leaves nothing allocated. */
#ifndef XMC_DATA_H
#define XMC_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/xmc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_data xmc_data;

/* Exactly one of tsv, x (with y, or alone for prediction) and xc is set. */
typedef struct xmc_data_source {
    const char *tsv;                   /* labels<TAB>text */
    const char *x, *y;                 /* smat text pair (y optional when nothing needs labels) */
    const char *xc;                    /* XC / multi-label libsvm */
    uint32_t xc_feature_base;          /* 0 or 1: index of an --xc file's first feature */
    uint32_t xc_label_base;            /* 0 or 1: the same for labels */
} xmc_data_source;

/* Reads the source; labels: the classifier whose label names a TSV's names map to, or NULL (training data).
 * Fails with XMC_ERR_ARG (no source, or more than one), IO, PARSE, SHAPE, EMPTY (a TSV without a record), NOMEM. */
xmc_err xmc_data_read(const xmc_data_source *src, const xmc_classifier *labels, xmc_data **out, xmc_error *err);
void xmc_data_free(xmc_data *data);

/* Records (rows). */
uint32_t xmc_data_rows(const xmc_data *data);
/* Labels the data knows (columns of its label matrix). */
uint32_t xmc_data_num_labels(const xmc_data *data);
/* 1 when the records are texts (TSV), 0 when they are feature vectors. */
int xmc_data_has_text(const xmc_data *data);
/* Label occurrences dropped because the classifier does not know them, and the records that lost one. */
void xmc_data_unknown_labels(const xmc_data *data, uint64_t *occurrences, uint32_t *records);
/* Records left with no label (none given, or only labels the classifier does not know). */
uint32_t xmc_data_rows_without_labels(const xmc_data *data);
/* Labels of the label space no record carries (an XC or smat file's labels are ids 0..largest: a stray large
 * id makes a large space); 0 for a TSV read for training, whose labels are the names it holds. */
uint32_t xmc_data_labels_without_rows(const xmc_data *data);

/* Classifies every record on n_ws threads (one workspace of clf each, as xmc_classify_parallel): row r's
 * hits at hits[r * stride], their count in counts[r]. Text records need a text model, feature records a
 * MATRIX model with at most its number of features (XMC_ERR_ARG / XMC_ERR_SHAPE otherwise). */
xmc_err xmc_data_classify(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const xmc_data *data,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                          xmc_error *err);

/* ---- evaluation ------------------------------------------------------------------------------------------ */

#define XMC_EVAL_MAXK 100

/* Figures @k at index k = 1..kmax, as fractions. PSP@k uses inverse propensities from the model's training
 * label counts (Jain et al. 2016: 1 + (ln N - 1)(B + 1)^A (N_l + B)^-A). */
typedef struct xmc_eval {
    uint32_t kmax, n;
    double prec[XMC_EVAL_MAXK + 1], recall[XMC_EVAL_MAXK + 1], ndcg[XMC_EVAL_MAXK + 1], psp[XMC_EVAL_MAXK + 1];
} xmc_eval;

/* Scores the predictions of xmc_data_classify (stride = kmax) against the data's labels, as PECOS's
 * evaluate does, except for ties: predictions are sorted by score, equal scores kept in the classifier's
 * order (by raw score; PECOS's evaluate puts the lower label first). psp_a/psp_b: the propensity
 * constants (0.55, 1.5 usual). XMC_ERR_SHAPE if the data has more labels than clf; NOMEM. */
xmc_err xmc_data_evaluate(const xmc_classifier *clf, const xmc_data *data, const xmc_hit *hits, const uint32_t *counts,
                          uint32_t kmax, double psp_a, double psp_b, xmc_eval *out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
