/* xmc.h: the public API of libxmc, extreme multi-label classification with PECOS-style XR-Linear models.
 *
 * A classifier is a trained model version opened from a model repository (DESIGN.md section 6): its files
 * are mapped read-only, checked (format version, checksums, shapes) and used in place. A classifier is
 * immutable once open and may be shared by any number of threads; each thread brings its own workspace,
 * which holds all scratch memory so that classifying a record allocates nothing.
 *
 * Ownership: the caller owns what an _open/_new returns and releases it with the matching _close/_free.
 * Every fallible call returns XMC_OK or an error code with err filled; a failed call leaves nothing
 * allocated and its outputs untouched. */
#ifndef XMC_XMC_H
#define XMC_XMC_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_VERSION_STRING "0.1.0"
/* Newest model directory format this library reads and writes (manifest key format_version): 2 lists plain
 * files copied into the version (a tfidf+encoder model's encoder); versions without them are still written as 1. */
#define XMC_MODEL_FORMAT_VERSION 2
/* Most threads any call of the library runs (training, batch classification); more are clamped to it. */
#define XMC_MAX_THREADS 64
/* Largest beam and topk a workspace serves. */
#define XMC_MAX_K 1024
/* Longest TF-IDF spec a model holds, with its NUL (xmc_classifier_tfidf_spec). */
#define XMC_TFIDF_SPEC_MAX 4096

typedef struct xmc_classifier xmc_classifier;
typedef struct xmc_workspace xmc_workspace;

/* One predicted label: index into the classifier's label table and its score (higher is better). */
typedef struct xmc_hit {
    uint32_t label;
    float score;
} xmc_hit;

/* Score post-processors (PECOS names): how a node's raw score becomes a probability-like value and how it
 * combines with its parent's along the beam. */
typedef enum xmc_post {
    XMC_POST_L3_HINGE = 0, /* exp(-max(1-v,0)^3), multiplied down the path (PECOS default) */
    XMC_POST_SIGMOID,      /* 1/(1+e^-v), multiplied */
    XMC_POST_NOOP,         /* raw score, the child's own (no combination) */
    XMC_POST_L1_HINGE,     /* exp(-max(1-v,0)), multiplied */
    XMC_POST_L2_HINGE,     /* exp(-max(1-v,0)^2), multiplied */
    XMC_POST_LOG_SIGMOID,  /* log sigmoid, added */
    XMC_POST__COUNT
} xmc_post;

/* Parses "l3-hinge", "sigmoid", "noop", ...; -1 if unknown. */
int xmc_post_from_name(const char *name);
/* The name of post (as xmc_post_from_name reads it); "unknown" out of range. */
const char *xmc_post_name(xmc_post post);

/* What turns a text into the rankers' features (manifest key featurizer.kind). A bit set: TF-IDF and the
 * encoder may be combined; MATRIX (no bit) is a model trained on feature vectors that reads no text. */
typedef enum xmc_featurizer {
    XMC_FEATURIZER_MATRIX = 0,  /* "matrix" */
    XMC_FEATURIZER_TFIDF = 1,   /* "tfidf" */
    XMC_FEATURIZER_ENCODER = 2, /* "encoder" */
    XMC_FEATURIZER_BOTH = 3     /* "tfidf+encoder" */
} xmc_featurizer;

/* Parses a manifest/CLI name ("tfidf", ...); -1 if unknown. */
int xmc_featurizer_from_name(const char *name);
/* The name of a featurizer; "?" for a value outside the enum. */
const char *xmc_featurizer_name(xmc_featurizer featurizer);

typedef struct xmc_predict_opts {
    uint32_t beam;  /* nodes kept per level; 0 = the model's default */
    uint32_t topk;  /* labels returned; 0 = the model's default */
    int post;       /* xmc_post, or -1 for the model's default */
} xmc_predict_opts;

typedef struct xmc_open_opts {
    int verify_checksums; /* 1 (default when opts is NULL): hash every file against the manifest */
    int check_canaries;   /* 1 (default when opts is NULL): classify the stored canary records */
} xmc_open_opts;

/* Opens a model. path is a version directory (has manifest.cfg) or a repository (has CURRENT, which names
 * the version to open). Fails with XMC_ERR_IO / NOTFOUND / CORRUPT / VERSION / SHAPE / CANARY / RANGE (a
 * stored index out of range) / ARG / NOMEM. */
xmc_err xmc_classifier_open(const char *path, const xmc_open_opts *opts, xmc_classifier **out, xmc_error *err);
void xmc_classifier_close(xmc_classifier *clf);

/* The version name (directory name inside the repository), e.g. "20261126T103000Z-1a2b3c4d". */
const char *xmc_classifier_version(const xmc_classifier *clf);
/* Absolute path of the version directory that was opened. */
const char *xmc_classifier_path(const xmc_classifier *clf);
/* Labels the model knows (label ids are 0 .. this - 1). */
uint32_t xmc_classifier_num_labels(const xmc_classifier *clf);
/* Name of a label (NUL-terminated, lives as long as clf); NULL if out of range. */
const char *xmc_classifier_label_name(const xmc_classifier *clf, uint32_t label);
/* The model's default prediction options. */
xmc_predict_opts xmc_classifier_default_opts(const xmc_classifier *clf);
/* Classifies the canary records stored with the model: each must give its recorded label and score first,
 * or tied with the first; XMC_ERR_CANARY names the first that fails. */
xmc_err xmc_classifier_check_canaries(const xmc_classifier *clf, xmc_error *err);

/* Scratch memory for one thread and one classifier. */
xmc_err xmc_workspace_new(const xmc_classifier *clf, xmc_workspace **out, xmc_error *err);
void xmc_workspace_free(xmc_workspace *ws);

/* Classifies one raw text (UTF-8; invalid bytes are replaced, an empty text predicts from no features).
 * Writes at most opts->topk hits, best first, to hits (room for topk entries) and their count to *n; equal
 * scores (the hinge post-processors saturate at 1) are ordered by the raw ranker score. Allocation-free.
 * Fails only on bad arguments (XMC_ERR_ARG). */
xmc_err xmc_classify_text(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err);

/* Classifies n texts: row i's hits at hits[i * stride] (stride >= topk), its count in counts[i]. Stops at
 * the first failing text (only argument errors can fail) with the rows before it filled. Allocation-free.
 * A TF-IDF model searches the texts together, up to 256 at a time (one micro-batch search: each weight chunk
 * read once for the texts that reach it), which costs less per text than one call per text; the hits are
 * xmc_classify_text's, bit for bit. */
xmc_err xmc_classify_batch(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts, const size_t *lens,
                           size_t n, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                           xmc_error *err);

/* Classifies n texts on n_ws threads, one workspace each (ws[i] of this classifier, from xmc_workspace_new):
 * the caller's thread is one of them, so n_ws = 1 runs on it alone; n_ws is at most XMC_MAX_THREADS. Rows
 * and outputs as in xmc_classify_batch (lens NULL: NUL-terminated texts); rows keep their input order.
 * Allocates nothing but the threads (a thread that cannot be started leaves its share to the others). On
 * failure (argument errors only) err names the first failing row seen; other rows may be filled or not. */
xmc_err xmc_classify_parallel(const xmc_classifier *clf, xmc_workspace *const *ws, int n_ws, const char *const *texts,
                              const size_t *lens, size_t n, const xmc_predict_opts *opts, xmc_hit *hits,
                              uint32_t stride, uint32_t *counts, xmc_error *err);

/* Classifies one sparse feature vector (idx strictly ascending, values finite; indices at or past
 * xmc_model_info.nr_features are ignored), as a model with the MATRIX featurizer takes its input.
 * Allocation-free; fails only on bad arguments (XMC_ERR_ARG: a NULL pointer, an index out of order or
 * repeated, a value NaN or infinite). */
xmc_err xmc_classify_features(const xmc_classifier *clf, xmc_workspace *ws, const uint32_t *idx, const float *val,
                              uint32_t nnz, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err);

/* ---- model facts (what `xmc inspect` and `xmc eval` show) -------------------------------------------------
 * All read the open classifier; nothing fails but a bad argument, and returned pointers live as long as clf. */

typedef struct xmc_model_info {
    xmc_featurizer featurizer;
    uint32_t nr_features;      /* the rankers' input dimension (without the bias feature) */
    uint32_t nr_labels;
    uint32_t depth;            /* tree layers; the last one has a node per label (per copy, disentangled) */
    uint64_t n_train;          /* training records */
    uint32_t n_canary;         /* canary records stored with the model */
    xmc_predict_opts defaults; /* = xmc_classifier_default_opts */
} xmc_model_info;

/* Fills info with the model's facts (see xmc_model_info). */
void xmc_classifier_info(const xmc_classifier *clf, xmc_model_info *info);

/* One tree layer: its nodes, their parents (the previous layer's nodes), and its ranker weights. */
typedef struct xmc_layer_info {
    uint32_t nr_nodes, nr_parents, max_children;
    uint64_t weight_rows; /* features with at least one weight in this layer */
    uint64_t nnz;         /* stored weights */
} xmc_layer_info;

/* Layer t (0 = below the root); XMC_ERR_ARG if t >= depth. */
xmc_err xmc_classifier_layer(const xmc_classifier *clf, uint32_t t, xmc_layer_info *info, xmc_error *err);

/* Label disentanglement (xmc_train_config.disentangle): the most leaf clusters a label could take when the
 * model was trained (1: one each, as in a model trained without it). */
uint32_t xmc_classifier_disentangle(const xmc_classifier *clf);

/* The number of leaf clusters (nodes of layer depth-2; 0 in a one-layer tree) label sits in, 0 for a
 * label out of range; the first min(that, cap) of them go to leaves, most voted first. */
uint32_t xmc_classifier_label_leaves(const xmc_classifier *clf, uint32_t label, uint32_t *leaves, uint32_t cap);

/* Training positives per label (nr_labels entries), the counts PSP@k's propensities come from. */
const uint32_t *xmc_classifier_label_freq(const xmc_classifier *clf);

/* The label named name, or UINT32_MAX. */
uint32_t xmc_classifier_find_label(const xmc_classifier *clf, const char *name);

/* Writes the TF-IDF featurizer's spec ("word:1-2,min_df=2"-style, as `xmc train --tfidf` takes) into buf;
 * XMC_ERR_NOTFOUND if the model has no TF-IDF featurizer, XMC_ERR_RANGE if buf is too small (a model's spec is
 * at most XMC_TFIDF_SPEC_MAX bytes with its NUL). */
xmc_err xmc_classifier_tfidf_spec(const xmc_classifier *clf, char *buf, size_t size, xmc_error *err);

/* A name for feature f of the rankers' input, len bytes (not NUL-terminated): the TF-IDF term, "(bias)" for
 * f == nr_features, "(embedding dimension)" for an encoder dimension; NULL when there is none. */
const char *xmc_classifier_feature_name(const xmc_classifier *clf, uint32_t f, size_t *len);

/* One weight of a label's ranker. */
typedef struct xmc_feature_weight {
    uint32_t feature; /* nr_features is the bias */
    float weight;
} xmc_feature_weight;

/* The label's ranker weights with the largest magnitudes, largest first: at most cap into out, their number
 * in *n and the number of the label's weights in *total. Allocates scratch (XMC_ERR_NOMEM); XMC_ERR_ARG for
 * a label out of range. */
xmc_err xmc_classifier_top_features(const xmc_classifier *clf, uint32_t label, xmc_feature_weight *out, uint32_t cap,
                                    uint32_t *n, uint64_t *total, xmc_error *err);

/* Reads <repo>/CURRENT into version (trimmed); XMC_ERR_NOTFOUND if the repository has none, XMC_ERR_IO if it
 * cannot be read, XMC_ERR_CORRUPT if it names no valid version name, XMC_ERR_RANGE if the name does not fit. */
xmc_err xmc_repo_current(const char *repo, char *version, size_t version_size, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
