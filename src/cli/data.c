/* data.c: input options of the CLI and batch prediction over a dataset (see data.h). */
#include "data.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "parallel.h"

xmc_err cli_read_input(const cli_input *in, const xmc_labelmap *labels, xmc_dataset *ds, xmc_error *err)
{
    if (in->tsv) return xmc_dataset_read_tsv(in->tsv, labels, ds, err);
    if (in->xc) {
        xmc_dataset_xc_opts o;
        xmc_dataset_xc_opts_default(&o);
        o.feature_base = (uint32_t)in->xc_feature_base;
        o.label_base = (uint32_t)in->xc_label_base;
        return xmc_dataset_read_xc(in->xc, &o, ds, err);
    }
    if (in->x && in->y) return xmc_dataset_read_smat(in->x, in->y, ds, err);
    if (in->x) {
        /* features only (prediction): an empty label matrix of the same height */
        memset(ds, 0, sizeof *ds);
        xmc_err rc = xmc_csr_read_text(in->x, &ds->X, err);
        if (rc) return rc;
        xmc_csr_sort_indices(&ds->X);
        ds->n = ds->X.rows;
        return xmc_csr_alloc(&ds->Y, ds->n, 0, 0, err);
    }
    return xmc_error_set(err, XMC_ERR_ARG, "no input: give a TSV, -x X.txt [-y Y.txt] or --xc FILE");
}

xmc_err cli_model_labelmap(const xmc_classifier *clf, xmc_labelmap *map, xmc_error *err)
{
    uint32_t L = xmc_classifier_num_labels(clf);
    const char **names = malloc((L ? L : 1) * sizeof *names);
    if (!names) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < L; l++) names[l] = xmc_classifier_label_name(clf, l);
    xmc_err rc = xmc_labelmap_from_names(map, names, L, err);
    free(names);
    return rc;
}

typedef struct {
    const xmc_classifier *clf;
    const xmc_dataset *ds;
    xmc_predict_opts opts;
    uint32_t k;
    xmc_hit *hits;
    uint32_t *counts;
    atomic_uint next;
    atomic_int failed;
    xmc_error err;
} job_t;

static void *worker(void *arg)
{
    job_t *job = arg;
    xmc_workspace *ws;
    xmc_error err;
    if (xmc_workspace_new(job->clf, &ws, &err)) {
        if (!atomic_exchange(&job->failed, 1)) job->err = err;
        return NULL;
    }
    const xmc_dataset *ds = job->ds;
    for (;;) {
        uint32_t start = atomic_fetch_add(&job->next, 256);
        if (start >= ds->n || atomic_load(&job->failed)) break;
        uint32_t end = start + 256 < ds->n ? start + 256 : ds->n;
        for (uint32_t r = start; r < end; r++) {
            xmc_err rc;
            xmc_hit *out = job->hits + (size_t)r * job->k;
            if (ds->texts) {
                rc = xmc_classify_text(job->clf, ws, ds->texts[r], ds->lens[r], &job->opts, out, &job->counts[r], &err);
            } else {
                uint64_t b = ds->X.indptr[r];
                rc = xmc_classify_features(job->clf, ws, ds->X.indices + b, ds->X.data + b,
                                           (uint32_t)(ds->X.indptr[r + 1] - b), &job->opts, out, &job->counts[r], &err);
            }
            if (rc) {
                if (!atomic_exchange(&job->failed, 1)) job->err = err;
                break;
            }
        }
    }
    xmc_workspace_free(ws);
    return NULL;
}

xmc_err cli_predict_all(const xmc_classifier *clf, const xmc_dataset *ds, uint32_t beam, uint32_t k, int post,
                        int threads, xmc_hit **hits, uint32_t **counts, xmc_error *err)
{
    if (ds->texts && clf->kind == XMC_FEAT_MATRIX)
        return xmc_error_set(err, XMC_ERR_ARG, "model %s was trained on feature vectors: give -x or --xc, not text", clf->version);
    if (!ds->texts && clf->kind != XMC_FEAT_MATRIX)
        return xmc_error_set(err, XMC_ERR_ARG, "model %s reads text: give a TSV", clf->version);
    if (!ds->texts && ds->X.cols > clf->xl.nr_features)
        return xmc_error_set(err, XMC_ERR_SHAPE, "input has %u features, the model %u", ds->X.cols, clf->xl.nr_features);
    job_t job = {.clf = clf, .ds = ds, .opts = {beam, k, post}, .k = k};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    job.hits = malloc(((size_t)ds->n * k + 1) * sizeof *job.hits);
    job.counts = calloc((size_t)ds->n + 1, sizeof *job.counts);
    if (!job.hits || !job.counts) {
        free(job.hits);
        free(job.counts);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for %u predictions", ds->n);
    }
    xmc_parallel_run(worker, &job, threads);
    if (atomic_load(&job.failed)) {
        free(job.hits);
        free(job.counts);
        if (err) *err = job.err;
        return job.err.code ? job.err.code : XMC_ERR_NOMEM;
    }
    *hits = job.hits;
    *counts = job.counts;
    return XMC_OK;
}
