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
/* Model directory format this library reads and writes (manifest key format_version). */
#define XMC_MODEL_FORMAT_VERSION 1

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
const char *xmc_post_name(xmc_post post);

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
 * the version to open). Fails with XMC_ERR_IO / NOTFOUND / CORRUPT / VERSION / SHAPE / CANARY. */
xmc_err xmc_classifier_open(const char *path, const xmc_open_opts *opts, xmc_classifier **out, xmc_error *err);
void xmc_classifier_close(xmc_classifier *clf);

/* The version name (directory name inside the repository), e.g. "20261126T103000Z-1a2b3c4d". */
const char *xmc_classifier_version(const xmc_classifier *clf);
/* Absolute path of the version directory that was opened. */
const char *xmc_classifier_path(const xmc_classifier *clf);
uint32_t xmc_classifier_num_labels(const xmc_classifier *clf);
/* Name of a label (NUL-terminated, lives as long as clf); NULL if out of range. */
const char *xmc_classifier_label_name(const xmc_classifier *clf, uint32_t label);
/* The model's default prediction options. */
xmc_predict_opts xmc_classifier_default_opts(const xmc_classifier *clf);
/* Classifies the canary records stored with the model; XMC_ERR_CANARY names the first that fails. */
xmc_err xmc_classifier_check_canaries(const xmc_classifier *clf, xmc_error *err);

/* Scratch memory for one thread and one classifier. */
xmc_err xmc_workspace_new(const xmc_classifier *clf, xmc_workspace **out, xmc_error *err);
void xmc_workspace_free(xmc_workspace *ws);

/* Classifies one raw text (UTF-8; invalid bytes are replaced, an empty text predicts from no features).
 * Writes at most opts->topk hits, best first, to hits (room for topk entries) and their count to *n.
 * Allocation-free. Fails only on bad arguments (XMC_ERR_ARG). */
xmc_err xmc_classify_text(const xmc_classifier *clf, xmc_workspace *ws, const char *text, size_t len,
                          const xmc_predict_opts *opts, xmc_hit *hits, uint32_t *n, xmc_error *err);

/* Classifies n texts: row i's hits at hits[i * stride] (stride >= topk), its count in counts[i]. Stops at
 * the first failing text (only argument errors can fail) with the rows before it filled. Allocation-free. */
xmc_err xmc_classify_batch(const xmc_classifier *clf, xmc_workspace *ws, const char *const *texts, const size_t *lens,
                           size_t n, const xmc_predict_opts *opts, xmc_hit *hits, uint32_t stride, uint32_t *counts,
                           xmc_error *err);

/* Reads <repo>/CURRENT into version (trimmed); XMC_ERR_NOTFOUND if the repository has none. */
xmc_err xmc_repo_current(const char *repo, char *version, size_t version_size, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
