/* data.c: the public datasets of xmc/data.h: reading one source into a dataset, classifying all its records
 * on several threads, and scoring the predictions (metrics.h).
 *
 * A TSV read for a model maps its label names through a label map built from the model's label table, so
 * that test label ids are the model's; the map lives in the xmc_data because the dataset points into it. */
#include "data.h"

#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "metrics.h"

_Static_assert(XMC_EVAL_MAXK == XMCI_METRICS_MAXK, "xmc_eval holds the figures metrics.c computes");

static xmc_err model_labelmap(const xmc_classifier *clf, xmci_labelmap *map, xmc_error *err)
{
    uint32_t L = xmc_classifier_num_labels(clf);
    const char **names = malloc((L ? L : 1) * sizeof *names);
    if (!names) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < L; l++) names[l] = xmc_classifier_label_name(clf, l);
    xmc_err rc = xmci_labelmap_from_names(map, names, L, err);
    free(names);
    return rc;
}

static xmc_err read_source(const xmc_data_source *src, const xmci_labelmap *labels, xmci_dataset *ds, xmc_error *err)
{
    if (!!src->tsv + !!src->xc + !!(src->x || src->y) > 1)
        return xmc_error_set(err, XMC_ERR_ARG, "more than one input: give one of a TSV, -x X.txt [-y Y.txt] or --xc FILE");
    if (src->tsv) return xmci_dataset_read_tsv(src->tsv, labels, ds, err);
    if (src->xc) {
        xmci_dataset_xc_opts o;
        xmci_dataset_xc_opts_default(&o);
        o.feature_base = src->xc_feature_base;
        o.label_base = src->xc_label_base;
        return xmci_dataset_read_xc(src->xc, &o, ds, err);
    }
    if (src->x && src->y) return xmci_dataset_read_smat(src->x, src->y, ds, err);
    if (src->x) {
        /* features only (prediction): an empty label matrix of the same height */
        memset(ds, 0, sizeof *ds);
        xmc_err rc = xmci_csr_read_text(src->x, &ds->X, err);
        if (rc) return rc;
        xmci_csr_sort_indices(&ds->X);
        ds->n = ds->X.rows;
        if ((rc = xmci_csr_alloc(&ds->Y, ds->n, 0, 0, err))) xmci_dataset_free(ds);
        return rc;
    }
    return xmc_error_set(err, XMC_ERR_ARG, "no input: give a TSV, -x X.txt [-y Y.txt] or --xc FILE");
}

xmc_err xmc_data_read(const xmc_data_source *src, const xmc_classifier *labels, xmc_data **out, xmc_error *err)
{
    if (out) *out = NULL;
    if (!src || !out) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    xmc_data *data = calloc(1, sizeof *data);
    if (!data) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc = XMC_OK;
    if (labels && src->tsv) rc = model_labelmap(labels, &data->map, err);
    if (!rc) rc = read_source(src, labels && src->tsv ? &data->map : NULL, &data->ds, err);
    if (rc) {
        xmci_labelmap_free(&data->map);
        free(data);
        return rc;
    }
    *out = data;
    return XMC_OK;
}

void xmc_data_free(xmc_data *data)
{
    if (!data) return;
    xmci_dataset_free(&data->ds);
    xmci_labelmap_free(&data->map);
    free(data);
}

uint32_t xmc_data_rows(const xmc_data *data) { return data->ds.n; }
uint32_t xmc_data_num_labels(const xmc_data *data) { return data->ds.Y.cols; }
int xmc_data_has_text(const xmc_data *data) { return data->ds.texts != NULL; }

void xmc_data_unknown_labels(const xmc_data *data, uint64_t *occurrences, uint32_t *records)
{
    *occurrences = data->ds.unknown_labels;
    *records = data->ds.unknown_label_docs;
}

uint32_t xmc_data_rows_without_labels(const xmc_data *data)
{
    const xmci_csr *y = &data->ds.Y;
    uint32_t n = 0;
    for (uint32_t r = 0; r < y->rows; r++) n += y->indptr[r + 1] == y->indptr[r];
    return n;
}

uint32_t xmc_data_labels_without_rows(const xmc_data *data)
{
    const xmci_csr *y = &data->ds.Y;
    unsigned char *seen = calloc((size_t)y->cols + 1, 1);
    if (!seen) return 0; /* a count for a note: without memory for it, none */
    for (uint64_t p = 0; p < xmci_csr_nnz(y); p++) seen[y->indices[p]] = 1;
    uint32_t n = 0;
    for (uint32_t l = 0; l < y->cols; l++) n += !seen[l];
    free(seen);
    return n;
}

xmc_err xmc_data_classify(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const xmc_data *data,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                          xmc_error *err)
{
    const xmci_dataset *ds = &data->ds;
    if (ds->texts && clf->kind == XMC_FEATURIZER_MATRIX)
        return xmc_error_set(err, XMC_ERR_ARG, "model %s was trained on feature vectors: give -x or --xc, not text", clf->version);
    if (!ds->texts && clf->kind != XMC_FEATURIZER_MATRIX)
        return xmc_error_set(err, XMC_ERR_ARG, "model %s reads text: give a TSV", clf->version);
    if (!ds->texts && ds->X.cols > clf->xl.nr_features)
        return xmc_error_set(err, XMC_ERR_SHAPE, "input has %u features, the model %u", ds->X.cols, clf->xl.nr_features);
    xmci_rows rows = {.n = ds->n, .texts = (const char *const *)ds->texts, .lens = ds->lens};
    if (!ds->texts) {
        rows.indptr = ds->X.indptr;
        rows.indices = ds->X.indices;
        rows.values = ds->X.data;
    }
    return xmci_classify_rows(clf, ws, n_ws, &rows, opts, hits, stride, counts, err);
}

xmc_err xmc_data_evaluate(const xmc_classifier *clf, const xmc_data *data, const xmc_hit *hits, const uint32_t *counts,
                          uint32_t kmax, double psp_a, double psp_b, xmc_eval *out, xmc_error *err)
{
    const xmci_dataset *ds = &data->ds;
    if (ds->Y.cols > clf->nr_labels)
        return xmc_error_set(err, XMC_ERR_SHAPE, "the data has %u labels, the model %u", ds->Y.cols, clf->nr_labels);
    double *inv = malloc(((size_t)clf->nr_labels + 1) * sizeof *inv);
    if (!inv) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmci_inv_propensity(clf->label_freq, clf->nr_labels, clf->n_train, psp_a, psp_b, inv);
    xmci_csr y = ds->Y;
    y.cols = clf->nr_labels; /* labels the test data never names are still the model's */
    xmci_metrics m;
    xmc_err rc = xmci_metrics_compute(hits, counts, kmax, &y, inv, kmax, &m, err);
    free(inv);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->kmax = m.kmax;
    out->n = m.n;
    memcpy(out->prec, m.prec, sizeof out->prec);
    memcpy(out->recall, m.recall, sizeof out->recall);
    memcpy(out->ndcg, m.ndcg, sizeof out->ndcg);
    memcpy(out->psp, m.psp, sizeof out->psp);
    return XMC_OK;
}
