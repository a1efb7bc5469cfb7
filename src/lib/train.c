/* train.c: the training pipeline (see train.h).
 *
 * Stages run in order and each reports progress; nothing is written until the model is complete, and the
 * version directory appears in the repository only by the final rename (model.c). Canaries are the first
 * few training records with features, spread over the data, with the label and score this model gives
 * them: a later load that does not reproduce them was damaged or mis-built. */
#include "train.h"

#include <cblas.h> /* openblas_get_num_threads */
#undef I /* <complex.h>'s, from OpenBLAS's config header */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "beam.h"
#include "classifier.h"
#include "data.h"
#include "disentangle.h"
#include "encoder.h"
#include "model.h"
#include "parallel.h"
#include "pifa.h"
#include "repo.h"
#include "warm.h"
#include "xrt.h"
#include "xmc/repo.h"

void xmci_train_opts_default(xmci_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->featurizer = XMC_FEATURIZER_TFIDF;
    xmci_tfidf_config_default(&o->tfidf);
    xmci_encoder_config_default(&o->encoder);
    xmci_tree_params_default(&o->tree);
    xmci_xlinear_params_default(&o->xl);
    /* where the product's defaults leave PECOS's (which the modules' own defaults keep, for the goldens): the best
     * across Reuters, Yeast and two taxonomy catalogs by bench/SWEEP.md's rule: unigrams, every word seen in
     * training (min_df 1: a catalog's rare words name its rare categories; addendum of 2026-12-06) and a
     * threshold of 0.05 */
    o->tfidf.base[0].ngram_max = 1;
    o->tfidf.base[0].min_df = 1;
    o->xl.solver.threshold = (float)XMC_TRAIN_DEFAULT_THRESHOLD;
    o->disentangle = 1; /* 2 is the wish; measured no better, at 2-3x the training time (docs/disentangle.md) */
    o->threads = 2;
    o->make_current = 1;
    o->nr_canaries = 8;
    o->warm_max_leaf_ratio = 2.0f;
    o->warm_eps_scale = 0.3f; /* measured on the demo catalog (docs/repository.md): 1 loses new labels, 0.3 matches a full retrain */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(const xmci_train_opts *o, const char *what, double done, double total)
{
    if (o->progress) o->progress(o->progress_ctx, what, done, total);
}

/* ---- embedding the training texts -------------------------------------------------------------------------------
 *
 * Chunks of EMB_CHUNK texts, each one xmci_encoder_embed call (batches of 32 inside), in order; the same chunks
 * whether one thread embeds them all with OpenBLAS's threads in its products or, when OpenBLAS has one thread
 * (as `xmc train --xr-transformer` sets it), each of our threads takes chunks with a workspace of its own. */
#define EMB_CHUNK 256

typedef struct emb_job {
    const xmci_train_opts *o;
    const xmci_encoder *enc;
    const char *const *texts;
    const size_t *lens;
    uint32_t n, dim;
    float *emb;
    pthread_t caller; /* reports progress: the callback may not be thread-safe */
    atomic_uint next, done;
    atomic_int failed;
    pthread_mutex_t lock; /* the first error */
    xmc_error err;
    xmc_err rc;
} emb_job;

static void *emb_worker(void *arg)
{
    emb_job *j = arg;
    xmc_error err = {0};
    xmci_encoder_ws *ws = NULL;
    xmc_err rc = xmci_encoder_ws_new(j->enc, 32, &ws, &err);
    for (uint32_t r; !rc && !atomic_load(&j->failed) && (r = atomic_fetch_add(&j->next, EMB_CHUNK)) < j->n;) {
        const uint32_t cnt = j->n - r < EMB_CHUNK ? j->n - r : EMB_CHUNK;
        rc = xmci_encoder_embed(j->enc, ws, j->texts + r, j->lens + r, (int)cnt, j->emb + (size_t)r * j->dim, &err);
        const uint32_t done = atomic_fetch_add(&j->done, cnt) + cnt;
        if (!rc && pthread_equal(pthread_self(), j->caller)) progress(j->o, "embedding", done, j->n);
    }
    xmci_encoder_ws_free(ws);
    if (rc) {
        pthread_mutex_lock(&j->lock);
        if (!atomic_exchange(&j->failed, 1)) j->rc = rc, j->err = err;
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

static xmc_err embed_texts(const xmci_train_opts *o, const xmci_encoder *enc, const char *const *texts,
                           const size_t *lens, uint32_t n, int threads, float *emb, xmc_error *err)
{
    emb_job j = {.o = o, .enc = enc, .texts = texts, .lens = lens, .n = n, .dim = xmci_encoder_dim(enc), .emb = emb,
                 .caller = pthread_self(), .rc = XMC_OK};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.lock, NULL);
    const int nt = openblas_get_num_threads() == 1 ? threads : 1;
    xmci_parallel_run(emb_worker, &j, nt);
    pthread_mutex_destroy(&j.lock);
    if (j.rc) *err = j.err;
    else progress(o, "embedding", n, n);
    return j.rc;
}

static xmc_err write_labels(xmci_model_writer *w, const xmci_csr *y, const char *const *names, xmc_error *err)
{
    uint32_t L = y->cols;
    uint64_t total = 0;
    char num[16];
    for (uint32_t l = 0; l < L; l++) total += (names ? strlen(names[l]) : (size_t)snprintf(num, sizeof num, "%u", l)) + 1;
    char *blob = malloc(total ? total : 1);
    uint64_t *off = malloc(((size_t)L + 1) * sizeof *off);
    uint32_t *freq = calloc(L ? L : 1, sizeof *freq);
    xmc_err rc = XMC_OK;
    if (!blob || !off || !freq) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    uint64_t q = 0;
    for (uint32_t l = 0; l < L; l++) {
        off[l] = q;
        size_t n = names ? strlen(names[l]) : (size_t)snprintf(num, sizeof num, "%u", l);
        memcpy(blob + q, names ? names[l] : num, n);
        q += n;
        blob[q++] = '\0';
    }
    off[L] = q;
    for (uint64_t p = 0; p < xmci_csr_nnz(y); p++) freq[y->indices[p]]++;
    uint64_t s;
    s = total;
    if ((rc = xmci_writer_array(w, "labels.names", XMCI_DT_U8, 1, &s, blob, err))) goto out;
    s = (uint64_t)L + 1;
    if ((rc = xmci_writer_array(w, "labels.offsets", XMCI_DT_U64, 1, &s, off, err))) goto out;
    s = L;
    rc = xmci_writer_array(w, "labels.freq", XMCI_DT_U32, 1, &s, freq, err);
out:
    free(blob);
    free(off);
    free(freq);
    return rc;
}

/* Picks up to k rows with features, spread evenly, and records the model's top label and score. */
static xmc_err write_canaries(xmci_model_writer *w, const xmci_xlinear *m, const xmci_csr *x, const char *const *texts,
                              const size_t *lens, uint32_t k, xmc_error *err)
{
    if (k == 0 || x->rows == 0) return XMC_OK;
    if (k > x->rows) k = x->rows;
    uint32_t *rows = malloc(k * sizeof *rows), n = 0;
    uint32_t *label = malloc(k * sizeof *label);
    float *score = malloc(k * sizeof *score);
    xmci_beam_ws *ws = NULL;
    xmc_err rc = XMC_OK;
    char *blob = NULL;
    uint64_t *off = NULL, *xptr = NULL;
    uint32_t *xidx = NULL;
    float *xval = NULL;
    if (!rows || !label || !score) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    if ((rc = xmci_beam_ws_new(m, m->beam > m->topk ? m->beam : m->topk, &ws, err))) goto out;
    uint32_t step = x->rows / k ? x->rows / k : 1;
    for (uint32_t r = 0; r < x->rows && n < k; r += step) {
        uint64_t b = x->indptr[r];
        uint32_t nnz = (uint32_t)(x->indptr[r + 1] - b);
        if (!nnz) continue;
        xmc_hit hit;
        if (xmci_beam_search(m, ws, x->indices + b, x->data + b, nnz, m->beam, 1, m->post, 0, &hit) != 1) continue;
        rows[n] = r;
        /* the best copy's label is the best label: merging by the maximum keeps the top hit */
        label[n] = m->copy_ptr ? xmci_copy_label(m->copy_ptr, m->nr_labels, hit.label) : hit.label;
        score[n] = hit.score;
        n++;
    }
    if ((rc = xmci_writer_set_int(w, "canary.count", n, err))) goto out;
    if (n == 0) goto out;
    uint64_t s = n;
    if ((rc = xmci_writer_array(w, "canary.label", XMCI_DT_U32, 1, &s, label, err)) ||
        (rc = xmci_writer_array(w, "canary.score", XMCI_DT_F32, 1, &s, score, err)))
        goto out;
    if (texts) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++) total += lens[rows[i]];
        blob = malloc(total ? total : 1);
        off = malloc((n + 1) * sizeof *off);
        if (!blob || !off) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        uint64_t q = 0;
        for (uint32_t i = 0; i < n; i++) {
            off[i] = q;
            memcpy(blob + q, texts[rows[i]], lens[rows[i]]);
            q += lens[rows[i]];
        }
        off[n] = q;
        s = total;
        if ((rc = xmci_writer_array(w, "canary.text", XMCI_DT_U8, 1, &s, blob, err))) goto out;
        s = (uint64_t)n + 1;
        rc = xmci_writer_array(w, "canary.offsets", XMCI_DT_U64, 1, &s, off, err);
    } else {
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++) total += x->indptr[rows[i] + 1] - x->indptr[rows[i]];
        xptr = malloc((n + 1) * sizeof *xptr);
        xidx = malloc((total ? total : 1) * sizeof *xidx);
        xval = malloc((total ? total : 1) * sizeof *xval);
        if (!xptr || !xidx || !xval) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        uint64_t q = 0;
        for (uint32_t i = 0; i < n; i++) {
            xptr[i] = q;
            for (uint64_t p = x->indptr[rows[i]]; p < x->indptr[rows[i] + 1]; p++, q++) {
                xidx[q] = x->indices[p];
                xval[q] = x->data[p];
            }
        }
        xptr[n] = q;
        s = (uint64_t)n + 1;
        if ((rc = xmci_writer_array(w, "canary.xptr", XMCI_DT_U64, 1, &s, xptr, err))) goto out;
        s = total;
        if ((rc = xmci_writer_array(w, "canary.xidx", XMCI_DT_U32, 1, &s, xidx, err))) goto out;
        rc = xmci_writer_array(w, "canary.xval", XMCI_DT_F32, 1, &s, xval, err);
    }
out:
    xmci_beam_ws_free(ws);
    free(rows);
    free(label);
    free(score);
    free(blob);
    free(off);
    free(xptr);
    free(xidx);
    free(xval);
    return rc;
}

/* The second pass (disentangle.h): places the labels by the first model m's beam, then retrains the rankers
 * once on the tree with copies; m becomes the new model with its copy map. On failure m is empty. */
static xmc_err disentangle(const xmci_train_opts *o, const xmci_xlinear_params *xp, const xmci_csr *x,
                           const xmci_csr *y, const xmci_csr *z, const xmci_tree *tree, xmci_xlinear *m, xmc_error *err)
{
    xmci_tree copies = {0};
    xmci_csr yc = {0};
    uint32_t *copy_ptr = NULL;
    progress(o, "placing labels", 0, 1);
    xmc_err rc = xmci_disentangle(m, tree, x, y, z, o->disentangle, xp->beam, xp->post, xp->threads, &copies, &yc,
                                  &copy_ptr, err);
    xmci_xlinear_free(m);
    if (rc) return rc;
    progress(o, "placing labels", 1, 1);
    rc = xmci_xlinear_train(x, &yc, &copies, xp, m, err);
    if (!rc) {
        m->nr_labels = y->cols;
        m->disentangle = o->disentangle;
        m->max_copies = xmci_copies_max(copy_ptr, y->cols);
        m->copy_ptr = copy_ptr;
        m->copy_owned = 1;
        copy_ptr = NULL;
    }
    free(copy_ptr);
    xmci_tree_free(&copies);
    xmci_csr_free(&yc);
    return rc;
}

/* ---- warm start: the labels ------------------------------------------------------------------------------
 * The new model's labels are the data's labels that have a positive (a label without one is retired: it gets no
 * leaf and no ranker); each is matched by name to the serving model's label, found by binary search in the
 * serving names sorted once. */

typedef struct warm_labels {
    xmci_csr y;              /* the data's labels without the retired ones */
    const char **names;      /* their names (into the data's names or name_buf) */
    char *name_buf;          /* decimal names, when the data has none */
    uint32_t *label_map;     /* label -> serving label, or XMCI_WARM_NONE */
    uint32_t retired;        /* data labels without a positive */
} warm_labels;

static void warm_labels_free(warm_labels *wl)
{
    xmci_csr_free(&wl->y);
    free(wl->names);
    free(wl->name_buf);
    free(wl->label_map);
    memset(wl, 0, sizeof *wl);
}

static int cmp_serving_name(const void *a, const void *b, void *ctx)
{
    const xmc_classifier *clf = ctx;
    return strcmp(xmc_classifier_label_name(clf, *(const uint32_t *)a), xmc_classifier_label_name(clf, *(const uint32_t *)b));
}

typedef struct { const xmc_classifier *clf; const char *name; } name_key;

static int cmp_key_name(const void *k, const void *e)
{
    const name_key *key = k;
    return strcmp(key->name, xmc_classifier_label_name(key->clf, *(const uint32_t *)e));
}

static xmc_err warm_labels_make(const xmc_classifier *clf, const xmci_csr *y, const char *const *names, warm_labels *wl,
                                xmc_error *err)
{
    memset(wl, 0, sizeof *wl);
    const uint32_t L = y->cols, SL = clf->nr_labels;
    uint32_t *pos = calloc(L ? L : 1, sizeof *pos), *col = malloc((L ? L : 1) * sizeof *col);
    uint32_t *sorted = malloc((SL ? SL : 1) * sizeof *sorted);
    xmc_err rc = XMC_OK;
    if (!pos || !col || !sorted) goto nomem;
    for (uint64_t q = 0; q < xmci_csr_nnz(y); q++) pos[y->indices[q]]++;
    uint32_t n = 0;
    for (uint32_t l = 0; l < L; l++) col[l] = pos[l] ? n++ : XMCI_WARM_NONE;
    wl->retired = L - n;
    if ((rc = xmci_csr_alloc(&wl->y, y->rows, n, xmci_csr_nnz(y), err))) goto out;
    uint64_t k = 0;
    for (uint32_t r = 0; r < y->rows; r++) { /* every entry's label has a positive: itself */
        for (uint64_t q = y->indptr[r]; q < y->indptr[r + 1]; q++, k++) {
            wl->y.indices[k] = col[y->indices[q]];
            wl->y.data[k] = y->data[q];
        }
        wl->y.indptr[r + 1] = k;
    }
    wl->names = malloc((n ? n : 1) * sizeof *wl->names);
    wl->label_map = malloc((n ? n : 1) * sizeof *wl->label_map);
    if (!names) wl->name_buf = malloc((size_t)(n ? n : 1) * 12);
    if (!wl->names || !wl->label_map || (!names && !wl->name_buf)) goto nomem;
    for (uint32_t l = 0; l < L; l++) {
        if (col[l] == XMCI_WARM_NONE) continue;
        if (names) wl->names[col[l]] = names[l];
        else {
            char *b = wl->name_buf + (size_t)col[l] * 12;
            snprintf(b, 12, "%u", l);
            wl->names[col[l]] = b;
        }
    }
    for (uint32_t i = 0; i < SL; i++) sorted[i] = i;
    qsort_r(sorted, SL, sizeof *sorted, cmp_serving_name, (void *)clf);
    for (uint32_t l = 0; l < n; l++) {
        name_key key = {clf, wl->names[l]};
        const uint32_t *hit = bsearch(&key, sorted, SL, sizeof *sorted, cmp_key_name);
        wl->label_map[l] = hit ? *hit : XMCI_WARM_NONE;
    }
    goto out;
nomem:
    rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory matching labels to the serving model");
out:
    if (rc) warm_labels_free(wl);
    free(pos);
    free(col);
    free(sorted);
    return rc;
}

/* The serving vectoriser's features in ours (both of the same configuration, so base b is base b): map[f] is
 * our id of serving feature f's n-gram, UINT32_MAX when the new texts no longer keep it; *mapped counts the
 * features found. */
static xmc_err feature_map(const xmci_tfidf *old, const xmci_tfidf *new, uint32_t **out, uint32_t *mapped, xmc_error *err)
{
    const uint32_t dim = xmci_tfidf_dim(old);
    uint32_t *map = malloc((dim ? dim : 1) * sizeof *map), found = 0;
    if (!map) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a feature map of %u", dim);
    for (uint32_t f = 0; f < dim; f++) map[f] = UINT32_MAX;
    for (uint32_t b = 0; b < xmci_tfidf_config_of(old)->n_bases; b++) {
        uint32_t first, count;
        xmci_tfidf_base_range(old, b, &first, &count);
        for (uint32_t f = first; f < first + count && f < dim; f++) {
            size_t len;
            const char *name = xmci_tfidf_feature_name(old, f, &len);
            if (name && (map[f] = xmci_tfidf_lookup(new, b, name, len)) != UINT32_MAX) found++;
        }
    }
    *out = map;
    *mapped = found;
    return XMC_OK;
}

static uint64_t digest(const char *const *texts, const size_t *lens, const xmci_csr *x, const xmci_csr *y)
{
    XXH64_state_t *h = XXH64_createState();
    if (!h) return 0;
    XXH64_reset(h, 0);
    if (texts) {
        for (uint32_t i = 0; i < y->rows; i++) {
            XXH64_update(h, texts[i], lens[i]);
            XXH64_update(h, "\n", 1);
        }
    } else {
        XXH64_update(h, x->indptr, ((size_t)x->rows + 1) * sizeof *x->indptr);
        XXH64_update(h, x->indices, xmci_csr_nnz(x) * sizeof *x->indices);
        XXH64_update(h, x->data, xmci_csr_nnz(x) * sizeof *x->data);
    }
    XXH64_update(h, y->indptr, ((size_t)y->rows + 1) * sizeof *y->indptr);
    XXH64_update(h, y->indices, xmci_csr_nnz(y) * sizeof *y->indices);
    uint64_t d = XXH64_digest(h);
    XXH64_freeState(h);
    return d;
}

/* A new version must open as a server opens it (every checksum, the canaries) before CURRENT may name it:
 * training data the model format cannot hold (two labels one name apart in C, a bad feature id in a canary)
 * is then caught here, CURRENT stays where it was, and the version that does not open is removed. */
static xmc_err open_new_version(const char *repo, const char *ver, int make_current, xmc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", repo, ver);
    xmc_classifier *clf = NULL;
    xmc_error oerr = {0};
    if (xmc_classifier_open(path, NULL, &clf, &oerr) != XMC_OK) {
        /* out of memory or of file handles says nothing of the version: it stays, for a later open or rollback */
        int transient = oerr.code == XMC_ERR_NOMEM || oerr.code == XMC_ERR_IO;
        if (!transient) xmci_rm_tree(path);
        return xmc_error_set(err, oerr.code, "the new version %s does not open, so it was %s%s: %s", ver,
                             transient ? "kept" : "removed", make_current ? " and CURRENT left as it was" : "",
                             oerr.msg);
    }
    xmc_classifier_close(clf);
    return make_current ? xmci_repo_write_current(repo, ver, err) : XMC_OK;
}

xmc_err xmci_train(const char *const *texts, const size_t *lens, const xmci_csr *x_in, const xmci_csr *y,
                  const char *const *label_names, const xmci_train_opts *o, const char *repo, char *version_out,
                  size_t version_size, xmc_train_report *report, xmc_error *err)
{
    xmc_train_report rep;
    memset(&rep, 0, sizeof rep);
    xmc_err rc = XMC_OK;
    xmci_tfidf *tf = NULL;
    xmci_encoder *enc = NULL;
    float *emb = NULL;
    xmci_csr x = {0}, z = {0};
    xmci_tree tree = {0};
    xmci_xlinear m = {0};
    xmci_model_writer *w = NULL;
    const xmci_tfidf *tfv = NULL; /* the vectoriser in use: tf, or the serving model's (warm start) */
    warm_labels wl = {0};
    xmci_warm_tree wt = {0};
    uint32_t *warm_node[XMCI_TREE_MAX_DEPTH] = {0};
    uint32_t *warm_feat = NULL;             /* serving feature -> ours, by term (warm start from texts) */
    const xmci_csr *yy = y;                 /* the labels trained on: y, or y less its retired labels (warm) */
    const char *const *names = label_names;
    int threads = o->threads > 0 ? o->threads : 1;
    if (!texts && !x_in) return xmc_error_set(err, XMC_ERR_ARG, "no texts and no feature matrix");
    if (y->rows == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no training records");
    if (y->cols == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no labels in the training data");
    if (x_in && x_in->rows != y->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%u feature rows but %u label rows", x_in->rows, y->rows);
    if (o->warm) {
        /* the serving model's features must be this training's: its TF-IDF vocabulary (so that weights line up
         * by feature id) or the same kind of feature vectors */
        if (texts && (o->featurizer != XMC_FEATURIZER_TFIDF || o->warm->kind != XMC_FEATURIZER_TFIDF || !o->warm->tfidf))
            return xmc_error_set(err, XMC_ERR_ARG, "warm start: text data needs a TF-IDF model to start from (%s is %s)",
                                 o->warm->version, xmc_featurizer_name(o->warm->kind));
        if (!texts && o->warm->kind != XMC_FEATURIZER_MATRIX)
            return xmc_error_set(err, XMC_ERR_ARG, "warm start: feature vectors need a matrix model to start from");
        if (o->warm->xl.copy_ptr || o->disentangle > 1)
            return xmc_error_set(err, XMC_ERR_ARG, "warm start: not with label disentanglement");
    }

    double t0 = now();
    progress(o, "features", 0, 1);
    if (texts) {
        if (o->featurizer < XMC_FEATURIZER_TFIDF || o->featurizer > XMC_FEATURIZER_BOTH) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "unknown featurizer %d", o->featurizer);
            goto out;
        }
        if (o->featurizer & XMC_FEATURIZER_TFIDF) {
            /* a warm start refits the serving model's configuration on the new texts (new terms become features)
             * and maps the serving weights onto it term by term */
            const xmci_tfidf_config *tcfg = o->warm ? xmci_tfidf_config_of(o->warm->tfidf) : &o->tfidf;
            if ((rc = xmci_tfidf_fit(tcfg, texts, lens, y->rows, threads, &tf, err))) goto out;
            tfv = tf;
            if ((rc = xmci_tfidf_transform_batch(tfv, texts, lens, y->rows, threads, &x, err))) goto out;
            if (o->warm && (rc = feature_map(o->warm->tfidf, tf, &warm_feat, &rep.warm_features_mapped, err))) goto out;
        }
        if (o->featurizer & XMC_FEATURIZER_ENCODER) {
            if ((rc = xmci_encoder_open(&o->encoder, &enc, err))) goto out;
            uint32_t dim = xmci_encoder_dim(enc), off = tf ? xmci_tfidf_dim(tf) : 0;
            emb = malloc((size_t)y->rows * dim * sizeof *emb);
            if (!emb) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for %u embeddings", y->rows); goto out; }
            if ((rc = embed_texts(o, enc, texts, lens, y->rows, threads, emb, err))) goto out;
            xmci_csr both;
            rc = xmci_encoder_concat(tf ? &x : NULL, off, emb, y->rows, dim, xmci_encoder_alpha(enc), &both, err);
            xmci_csr_free(&x);
            if (rc) goto out;
            x = both;
        }
    } else {
        if ((rc = xmci_csr_copy(x_in, &x, err))) goto out;
        xmci_csr_sort_indices(&x);
    }
    progress(o, "features", 1, 1);
    rep.n_docs = y->rows;
    rep.n_labels = y->cols;
    rep.n_features = x.cols;
    for (uint32_t r = 0; r < y->rows; r++) rep.docs_without_label += y->indptr[r + 1] == y->indptr[r];
    {
        unsigned char *has = calloc(y->cols, 1);
        if (!has) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        for (uint64_t p = 0; p < xmci_csr_nnz(y); p++) has[y->indices[p]] = 1;
        for (uint32_t l = 0; l < y->cols; l++) rep.labels_without_doc += !has[l];
        free(has);
    }
    if (o->warm) {
        if ((rc = warm_labels_make(o->warm, y, label_names, &wl, err))) goto out;
        if (wl.y.cols == 0) { rc = xmc_error_set(err, XMC_ERR_EMPTY, "no label has a positive record"); goto out; }
        yy = &wl.y;
        names = wl.names;
    }
    double t1 = now();
    rep.sec_features = t1 - t0;

    progress(o, "label tree", 0, 1);
    xmci_tree_params tp = o->tree;
    tp.threads = threads;
    if ((rc = xmci_pifa(&x, yy, &z, err))) goto out;
    if (o->warm) {
        if ((rc = xmci_warm_tree_build(&o->warm->xl, wl.label_map, &z, tp.max_leaf_size, &wt, err))) goto out;
        rep.warm = 1;
        rep.warm_kept = wt.kept;
        rep.warm_added = wt.added;
        rep.warm_retired = o->warm->nr_labels - wt.kept;
        rep.warm_max_leaf = wt.max_leaf;
        if ((double)wt.max_leaf > (double)o->warm_max_leaf_ratio * tp.max_leaf_size) {
            /* too unbalanced to keep: a fresh tree; the label rankers still start from the serving ones */
            rep.warm_tree_rebuilt = 1;
            if ((rc = xmci_tree_build(&z, &tp, &tree, err))) goto out;
            warm_node[tree.depth - 1] = wt.node_map[wt.tree.depth - 1];
        } else {
            tree = wt.tree;
            memset(&wt.tree, 0, sizeof wt.tree);
            for (uint32_t t = 0; t < tree.depth; t++) warm_node[t] = wt.node_map[t];
        }
    } else if ((rc = xmci_tree_build(&z, &tp, &tree, err))) {
        goto out;
    }
    if (o->disentangle <= 1) xmci_csr_free(&z); /* else the placement needs it */
    progress(o, "label tree", 1, 1);
    double t2 = now();
    rep.sec_tree = t2 - t1;

    xmci_xlinear_params xp = o->xl;
    xp.threads = threads;
    xp.progress = o->progress;
    xp.progress_ctx = o->progress_ctx;
    xp.solver_iters = &rep.solver_iters;
    if (o->warm) {
        xp.warm = &o->warm->xl;
        xp.warm_node = warm_node;
        xp.warm_feat = warm_feat;
        xp.warm_eps_scale = o->warm_eps_scale;
    }
    if ((rc = xmci_xlinear_train(&x, yy, &tree, &xp, &m, err))) goto out;
    if (o->disentangle > 1 && tree.depth > 1 && (rc = disentangle(o, &xp, &x, yy, &z, &tree, &m, err))) goto out;
    xmci_csr_free(&z);
    rep.depth = m.depth;
    for (uint32_t t = 0; t < m.depth; t++) rep.nnz_per_layer[t] = m.layers[t].nnz;
    double t3 = now();
    rep.sec_rankers = t3 - t2;

    progress(o, "writing model", 0, 1);
    if ((rc = xmci_writer_begin(repo, o->version, &w, err))) goto out;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest(texts, lens, &x, yy));
    /* solver.eps and solver.max_iter record the settings of the solver that ran */
    const int primal = o->xl.solver_type == XMCI_SOLVER_PRIMAL;
    const char *kind = xmc_featurizer_name(texts ? o->featurizer : XMC_FEATURIZER_MATRIX);
    if ((rc = xmci_writer_set_string(w, "featurizer.kind", kind, err)) ||
        (rc = xmci_writer_set_int(w, "train.n_docs", yy->rows, err)) ||
        (rc = xmci_writer_set_int(w, "train.n_labels", yy->cols, err)) ||
        (rc = xmci_writer_set_float(w, "train.seconds", t3 - t0, err)) ||
        (rc = xmci_writer_set_int(w, "train.solver_iters", (long long)rep.solver_iters, err)) ||
        (rc = xmci_writer_set_string(w, "train.data_xxh64", hex, err)) ||
        (rc = xmci_writer_set_int(w, "tree.nr_splits", o->tree.nr_splits, err)) ||
        (rc = xmci_writer_set_int(w, "tree.max_leaf_size", o->tree.max_leaf_size, err)) ||
        (rc = xmci_writer_set_int(w, "tree.seed", o->tree.seed, err)) ||
        (rc = xmci_writer_set_int(w, "tree.disentangle", o->disentangle, err)) ||
        (rc = xmci_writer_set_string(w, "solver.type", primal ? "primal" : "dual", err)) ||
        (rc = xmci_writer_set_float(w, "solver.cp", o->xl.solver.cp, err)) ||
        (rc = xmci_writer_set_float(w, "solver.cn", o->xl.solver.cn, err)) ||
        (rc = xmci_writer_set_float(w, "solver.eps", primal ? o->xl.newton_eps : o->xl.solver.eps, err)) ||
        (rc = xmci_writer_set_int(w, "solver.max_iter", primal ? o->xl.newton_max_iter : o->xl.solver.max_iter, err)) ||
        (rc = xmci_writer_set_float(w, "solver.threshold", o->xl.solver.threshold, err)) ||
        (rc = xmci_writer_set_string(w, "solver.negatives",
                                    o->xl.negatives == (XMCI_NEG_TFN | XMCI_NEG_MAN) ? "tfn+man"
                                    : o->xl.negatives == XMCI_NEG_MAN              ? "man"
                                                                                  : "tfn",
                                    err)))
        goto out;
    if (o->warm &&
        ((rc = xmci_writer_set_string(w, "train.warm_from", o->warm->version, err)) ||
         (rc = xmci_writer_set_int(w, "warm.kept_labels", rep.warm_kept, err)) ||
         (rc = xmci_writer_set_int(w, "warm.new_labels", rep.warm_added, err)) ||
         (rc = xmci_writer_set_int(w, "warm.retired_labels", rep.warm_retired, err)) ||
         (rc = xmci_writer_set_int(w, "warm.max_leaf", rep.warm_max_leaf, err)) ||
         (rc = xmci_writer_set_int(w, "warm.features_mapped", rep.warm_features_mapped, err)) ||
         (rc = xmci_writer_set_int(w, "warm.tree_rebuilt", rep.warm_tree_rebuilt, err))))
        goto out;
    if (tfv && (rc = xmci_tfidf_save(tfv, w, "tfidf", err))) goto out;
    if (enc && (rc = xmci_encoder_save(enc, w, err))) goto out;
    if ((rc = xmci_xlinear_save(&m, w, err))) goto out;
    if ((rc = write_labels(w, yy, names, err))) goto out;
    if ((rc = write_canaries(w, &m, &x, texts, lens, o->nr_canaries, err))) goto out;
    char ver[256];
    rc = xmci_writer_commit(w, 0, ver, sizeof ver, err);
    w = NULL;
    if (rc) goto out;
    double t4 = now();
    rep.sec_write = t4 - t3;
    if ((rc = open_new_version(repo, ver, o->make_current, err))) goto out;
    rep.sec_verify = now() - t4;
    if (version_out && version_size) snprintf(version_out, version_size, "%s", ver);
    progress(o, "writing model", 1, 1);
out:
    if (w) xmci_writer_abort(w);
    if (tf) xmci_tfidf_free(tf);
    xmci_encoder_free(enc);
    free(emb);
    xmci_csr_free(&x);
    xmci_csr_free(&z);
    xmci_tree_free(&tree);
    xmci_xlinear_free(&m);
    xmci_warm_tree_free(&wt);
    warm_labels_free(&wl);
    free(warm_feat);
    if (report) *report = rep;
    return rc;
}

/* ---- the public configuration (xmc/train.h) -------------------------------------------------------------
 * Its defaults are read off the internal ones, so that there is one place each default is set. */

_Static_assert(XMC_MAX_DEPTH == XMCI_TREE_MAX_DEPTH, "xmc_train_report's layer array is the tree's depth limit");
_Static_assert((int)XMC_TRAIN_SOLVER_DUAL == (int)XMCI_SOLVER_DUAL && (int)XMC_TRAIN_SOLVER_PRIMAL == (int)XMCI_SOLVER_PRIMAL,
               "solver ids");
_Static_assert((int)XMC_TRAIN_NEG_TFN == (int)XMCI_NEG_TFN && (int)XMC_TRAIN_NEG_MAN == (int)XMCI_NEG_MAN, "negative-set bits");

void xmc_train_config_default(xmc_train_config *cfg)
{
    xmci_train_opts o;
    xmci_train_opts_default(&o);
    memset(cfg, 0, sizeof *cfg);
    cfg->featurizer = o.featurizer;
    cfg->pooling = (xmc_pooling)o.encoder.pooling;
    cfg->alpha = o.encoder.alpha;
    cfg->max_len = o.encoder.max_len;
    cfg->nr_splits = o.tree.nr_splits;
    cfg->max_leaf_size = o.tree.max_leaf_size;
    cfg->kmeans_iter = o.tree.max_iter;
    cfg->seed = o.tree.seed;
    cfg->disentangle = o.disentangle;
    cfg->solver = (xmc_solver)o.xl.solver_type;
    cfg->cp = o.xl.solver.cp;
    cfg->cn = o.xl.solver.cn;
    cfg->threshold = o.xl.solver.threshold;
    cfg->bias = o.xl.solver.bias;
    cfg->negatives = o.xl.negatives;
    cfg->man_beam = o.xl.man_beam;
    cfg->beam = o.xl.beam;
    cfg->topk = o.xl.topk;
    cfg->post = o.xl.post;
    xmci_xrt_opts x;
    xmci_xrt_opts_default(&x);
    cfg->xrt_batch = x.batch;
    cfg->xrt_epochs = x.epochs;
    cfg->xrt_max_steps = x.max_steps;
    cfg->xrt_lr = x.lr;
    cfg->xrt_warmup = x.warmup;
    cfg->xrt_weight_decay = x.weight_decay;
    cfg->xrt_max_grad_norm = x.max_grad_norm;
    cfg->xrt_torch_adamw = x.adamw == XMCI_ADAMW_TORCH;
    cfg->xrt_unweighted = !x.weighted;
    cfg->xrt_max_clusters = x.max_clusters;
    cfg->xrt_save_steps = x.save_steps;
    cfg->xrt_nr_splits = x.tree.nr_splits;
    cfg->xrt_max_leaf_size = x.tree.max_leaf_size;
    cfg->xrt_man = x.man_topk > 0;
    cfg->xrt_man_topk = 20;
    cfg->xrt_dropout = x.dropout;
    cfg->xrt_linear_bootstrap = x.bootstrap == XMCI_XRT_LINEAR;
    cfg->xrt_head_lr = x.head_lr;
    cfg->threads = o.threads;
    cfg->make_current = o.make_current;
    cfg->nr_canaries = o.nr_canaries;
    cfg->warm_max_leaf_ratio = o.warm_max_leaf_ratio;
    cfg->warm_eps_scale = o.warm_eps_scale;
}

/* The internal options a public configuration stands for. */
static xmc_err config_to_opts(const xmc_train_config *cfg, xmci_train_opts *o, xmc_error *err)
{
    xmci_train_opts_default(o);
    if (cfg->featurizer < XMC_FEATURIZER_TFIDF || cfg->featurizer > XMC_FEATURIZER_BOTH)
        return xmc_error_set(err, XMC_ERR_ARG, "unknown featurizer %d", (int)cfg->featurizer);
    if (cfg->threads < 1 || cfg->threads > XMC_MAX_THREADS)
        return xmc_error_set(err, XMC_ERR_ARG, "threads %d outside 1..%d", cfg->threads, XMC_MAX_THREADS);
    o->featurizer = cfg->featurizer;
    xmc_err rc;
    if (cfg->tfidf && (rc = xmci_tfidf_config_parse(&o->tfidf, cfg->tfidf, err))) return rc;
    o->encoder.dir = cfg->encoder_dir;
    o->encoder.vocab = cfg->encoder_vocab;
    o->encoder.pooling = (xmci_bert_pooling)cfg->pooling;
    o->encoder.alpha = cfg->alpha;
    o->encoder.max_len = cfg->max_len;
    o->tree.nr_splits = cfg->nr_splits;
    o->tree.max_leaf_size = cfg->max_leaf_size;
    o->tree.max_iter = cfg->kmeans_iter;
    o->tree.seed = cfg->seed;
    if (cfg->disentangle < 1 || cfg->disentangle > XMCI_DISENTANGLE_MAX)
        return xmc_error_set(err, XMC_ERR_ARG, "disentangle %u outside 1..%d", cfg->disentangle, XMCI_DISENTANGLE_MAX);
    o->disentangle = cfg->disentangle;
    if (cfg->beam > XMC_MAX_K || cfg->topk > XMC_MAX_K || cfg->man_beam > XMC_MAX_K)
        return xmc_error_set(err, XMC_ERR_ARG, "beam %u, topk %u, man_beam %u: at most %d each (0: the default)",
                             cfg->beam, cfg->topk, cfg->man_beam, XMC_MAX_K);
    /* what the model would store unopenable is refused here, before any data is read */
    if (cfg->post < 0 || cfg->post >= XMC_POST__COUNT)
        return xmc_error_set(err, XMC_ERR_ARG, "unknown post-processor %d", cfg->post);
    if (cfg->solver != XMC_TRAIN_SOLVER_DUAL && cfg->solver != XMC_TRAIN_SOLVER_PRIMAL)
        return xmc_error_set(err, XMC_ERR_ARG, "unknown solver %d", (int)cfg->solver);
    if (cfg->negatives < 0 || cfg->negatives > (XMC_TRAIN_NEG_TFN | XMC_TRAIN_NEG_MAN))
        return xmc_error_set(err, XMC_ERR_ARG, "negatives %d: a set of XMC_TRAIN_NEG_TFN and XMC_TRAIN_NEG_MAN",
                             cfg->negatives);
    if (cfg->nr_splits < 2 || cfg->max_leaf_size < 1 || cfg->kmeans_iter < 0)
        return xmc_error_set(err, XMC_ERR_ARG, "nr_splits %u (>= 2), max_leaf_size %u (>= 1), kmeans_iter %d (>= 0): "
                             "one is out of range", cfg->nr_splits, cfg->max_leaf_size, cfg->kmeans_iter);
    if (cfg->version && xmci_version_name_check(cfg->version, err)) return XMC_ERR_ARG;
    /* NaN passes every comparison: the solver's numbers are checked as "inside", not "not outside" */
    if (!(cfg->cp > 0 && isfinite(cfg->cp)) || !(cfg->cn > 0 && isfinite(cfg->cn)) ||
        !(cfg->eps >= 0 && isfinite(cfg->eps)) || !(cfg->threshold >= 0 && isfinite(cfg->threshold)) ||
        !(cfg->bias >= 0 && isfinite(cfg->bias)) || !(cfg->alpha >= 0 && isfinite(cfg->alpha)))
        return xmc_error_set(err, XMC_ERR_ARG, "cp %g, cn %g (> 0), eps %g, threshold %g, bias %g, alpha %g (>= 0): "
                             "one is out of range or not a number", (double)cfg->cp, (double)cfg->cn,
                             (double)cfg->eps, (double)cfg->threshold, (double)cfg->bias, (double)cfg->alpha);
    o->xl.solver_type = (int)cfg->solver;
    o->xl.solver.cp = cfg->cp;
    o->xl.solver.cn = cfg->cn;
    /* one tolerance and one cap for whichever solver runs; 0 keeps each solver's own default */
    if (cfg->eps > 0) o->xl.solver.eps = o->xl.newton_eps = cfg->eps;
    if (cfg->max_iter > 0) o->xl.solver.max_iter = o->xl.newton_max_iter = cfg->max_iter;
    o->xl.solver.threshold = cfg->threshold;
    o->xl.solver.bias = cfg->bias;
    o->xl.negatives = cfg->negatives;
    o->xl.man_beam = cfg->man_beam;
    if (cfg->beam) o->xl.beam = cfg->beam; /* 0: the default, as the check above words it */
    if (cfg->topk) o->xl.topk = cfg->topk;
    o->xl.post = cfg->post;
    o->threads = cfg->threads;
    o->version = cfg->version;
    o->make_current = cfg->make_current;
    o->nr_canaries = cfg->nr_canaries;
    o->progress = cfg->progress;
    o->progress_ctx = cfg->progress_ctx;
    o->warm_max_leaf_ratio = cfg->warm_max_leaf_ratio;
    o->warm_eps_scale = cfg->warm_eps_scale;
    if (cfg->warm_repo && !cfg->warm_rebuild) {
        if (cfg->solver != XMC_TRAIN_SOLVER_PRIMAL)
            return xmc_error_set(err, XMC_ERR_ARG, "a warm start needs the primal solver (the dual one needs the "
                                                   "serving model's dual variables, which a model does not keep)");
        if (cfg->xrt || cfg->disentangle > 1)
            return xmc_error_set(err, XMC_ERR_ARG, "a warm start does not combine with XR-Transformer or disentangle");
        if (!(cfg->warm_max_leaf_ratio >= 1))
            return xmc_error_set(err, XMC_ERR_ARG, "warm_max_leaf_ratio %g below 1", (double)cfg->warm_max_leaf_ratio);
        if (!(cfg->warm_eps_scale > 0 && cfg->warm_eps_scale <= 1))
            return xmc_error_set(err, XMC_ERR_ARG, "warm_eps_scale %g outside (0, 1]", (double)cfg->warm_eps_scale);
    }
    if (cfg->xrt && (!cfg->encoder_dir || !cfg->xrt_dir))
        return xmc_error_set(err, XMC_ERR_ARG, "XR-Transformer training needs an encoder directory and a work directory");
    if (cfg->xrt && (cfg->xrt_batch < 1 || cfg->xrt_epochs < 1 || cfg->xrt_max_steps < 0 || !(cfg->xrt_lr > 0) ||
                     !(cfg->xrt_head_lr >= 0) ||
                     cfg->xrt_warmup < 0 || cfg->xrt_weight_decay < 0 ||
                     !(cfg->xrt_dropout >= 0 && cfg->xrt_dropout < 1) || cfg->xrt_max_grad_norm < 0 ||
                     cfg->xrt_save_steps < 0 || cfg->xrt_max_clusters < 1 || cfg->xrt_nr_splits < 2 ||
                     cfg->xrt_max_leaf_size < 1 || (cfg->xrt_man && (cfg->xrt_man_topk < 1 || cfg->xrt_man_topk > 1u << 20))))
        return xmc_error_set(err, XMC_ERR_ARG, "XR-Transformer: a schedule or tree setting out of range");
    return XMC_OK;
}

/* The fine-tuning options of a public configuration (its encoder, TF-IDF and tree settings as o's). */
static void config_to_xrt(const xmc_train_config *cfg, const xmci_train_opts *o, xmci_xrt_opts *x)
{
    xmci_xrt_opts_default(x);
    x->encoder = o->encoder;
    x->tfidf = o->tfidf;
    x->tree.max_iter = o->tree.max_iter;
    x->tree.seed = o->tree.seed;
    x->tree.nr_splits = cfg->xrt_nr_splits;
    x->tree.max_leaf_size = cfg->xrt_max_leaf_size;
    x->work_dir = cfg->xrt_dir;
    x->resume = cfg->xrt_resume;
    x->batch = cfg->xrt_batch;
    x->epochs = cfg->xrt_epochs;
    x->max_steps = cfg->xrt_max_steps;
    x->lr = cfg->xrt_lr;
    x->head_lr = cfg->xrt_head_lr;
    x->warmup = cfg->xrt_warmup;
    x->weight_decay = cfg->xrt_weight_decay;
    x->max_grad_norm = cfg->xrt_max_grad_norm;
    x->adamw = cfg->xrt_torch_adamw ? XMCI_ADAMW_TORCH : XMCI_ADAMW_HF;
    x->weighted = !cfg->xrt_unweighted;
    x->max_clusters = cfg->xrt_max_clusters;
    x->save_steps = cfg->xrt_save_steps;
    x->man_topk = cfg->xrt_man ? (int)cfg->xrt_man_topk : 0;
    x->dropout = cfg->xrt_dropout;
    x->bootstrap = cfg->xrt_linear_bootstrap ? XMCI_XRT_LINEAR : XMCI_XRT_INHERIT;
    x->seed = cfg->seed;
    x->threads = o->threads;
    x->progress = o->progress;
    x->progress_ctx = o->progress_ctx;
}

xmc_err xmc_train_config_check(const xmc_train_config *cfg, xmc_error *err)
{
    if (!cfg) return xmc_error_set(err, XMC_ERR_ARG, "NULL configuration");
    xmci_train_opts o;
    return config_to_opts(cfg, &o, err);
}

xmc_err xmc_train_data(const xmc_train_config *cfg, const xmc_data *data, const char *repo, char *version,
                       size_t version_size, xmc_train_report *report, xmc_error *err)
{
    xmci_train_opts o;
    xmc_err rc = config_to_opts(cfg, &o, err);
    if (rc) return rc;
    const xmci_dataset *ds = &data->ds;
    char enc_dir[4200];
    double sec_finetune = 0;
    if (cfg->xrt) {
        /* fine-tune first; the rankers then see [tfidf ; alpha emb] of the fine-tuned encoder */
        if (!ds->texts) return xmc_error_set(err, XMC_ERR_ARG, "XR-Transformer training needs text input");
        xmci_xrt_opts x;
        config_to_xrt(cfg, &o, &x);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if ((rc = xmci_xrt_finetune((const char *const *)ds->texts, ds->lens, &ds->Y, &x, enc_dir, sizeof enc_dir, NULL,
                                    err)))
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &b);
        sec_finetune = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
        o.featurizer = XMC_FEATURIZER_BOTH;
        o.encoder.dir = enc_dir;
        o.encoder.vocab = NULL; /* copied beside the weights */
    }
    xmc_classifier *warm = NULL;
    if (cfg->warm_repo && !cfg->warm_rebuild) {
        char dir[4200], cur[XMC_REPO_NAME_MAX];
        const char *ver = cfg->warm_version;
        if (!ver) {
            if ((rc = xmc_repo_current(cfg->warm_repo, cur, sizeof cur, err))) return rc;
            ver = cur;
        }
        snprintf(dir, sizeof dir, "%s/%s", cfg->warm_repo, ver);
        xmc_open_opts oo = {.verify_checksums = 1, .check_canaries = 0}; /* its weights are read, not served */
        if ((rc = xmc_classifier_open(dir, &oo, &warm, err))) {
            xmc_error_prefix(err, "warm start from %s: ", dir);
            return rc;
        }
        o.warm = warm;
    }
    rc = xmci_train((const char *const *)ds->texts, ds->lens, ds->texts ? NULL : &ds->X, &ds->Y,
                     (const char *const *)ds->label_names, &o, repo, version, version_size, report, err);
    xmc_classifier_close(warm);
    if (report) report->sec_finetune = sec_finetune;
    return rc;
}
