/* xlinear.h: XR-Linear models: per-layer sparse linear rankers over a label tree, their training with
 * teacher-forced and matcher-aware negatives, and their storage in a model directory.
 *
 * Layer layout, built for beam search (each parent's children are scored together, MSCM-style):
 *   children of parent p  = child_idx[child_ptr[p] .. child_ptr[p+1])          (ascending node ids)
 *   the weights of those children form chunk p: rows chunk_ptr[p] .. chunk_ptr[p+1], one row per feature
 *   that any of them uses (row_feat ascending), and row r holds entries row_ptr[r] .. row_ptr[r+1] of
 *   (ent_child = position of the child among p's children, ent_w = weight).
 * Scoring the children of p for a document x is then one merge of x's sorted features with the chunk's
 * rows: cost ~ nnz(x) * log(rows) + matched entries, independent of how long a child's weight vector is.
 * Features are 0..nr_features-1 plus the bias feature nr_features (value `bias` in every document).
 *
 * Arrays are owned (trained in memory) or views into a mapped model (loaded); xmc_xlinear_free handles
 * both. */
#ifndef XMC_XLINEAR_H
#define XMC_XLINEAR_H

#include <stdint.h>
#include "dcd.h"
#include "tron.h"
#include "model.h"
#include "smat.h"
#include "tree.h"
#include "xmc/xmc.h"

typedef struct xmc_layer {
    uint32_t nr_nodes, nr_parents, max_children;
    uint64_t nr_rows, nnz;
    const uint32_t *child_ptr;  /* nr_parents + 1 */
    const uint32_t *child_idx;  /* nr_nodes */
    const uint64_t *chunk_ptr;  /* nr_parents + 1 */
    const uint32_t *row_feat;   /* nr_rows */
    const uint64_t *row_ptr;    /* nr_rows + 1 */
    const uint32_t *ent_child;  /* nnz */
    const float *ent_w;         /* nnz */
    int owned;
} xmc_layer;

typedef struct xmc_xlinear {
    uint32_t depth;
    uint32_t nr_features;       /* without the bias feature */
    float bias;
    uint32_t beam, topk;        /* prediction defaults */
    int post;                   /* xmc_post default */
    xmc_layer layers[XMC_TREE_MAX_DEPTH];
} xmc_xlinear;

enum { XMC_NEG_TFN = 1, XMC_NEG_MAN = 2 };
/* Which solver trains the rankers: PECOS's L2R_L2LOSS_SVC_DUAL or L2R_L2LOSS_SVC_PRIMAL. */
enum { XMC_SOLVER_DUAL = 0, XMC_SOLVER_PRIMAL = 1 };

typedef struct xmc_xlinear_params {
    xmc_dcd_params solver;      /* cp, cn, bias, threshold serve both solvers; eps, max_iter, seed the dual */
    int solver_type;            /* XMC_SOLVER_DUAL (default) or XMC_SOLVER_PRIMAL */
    double newton_eps;          /* primal: relative gradient tolerance; default 0.01 (PECOS's newton_eps) */
    int newton_max_iter;        /* primal: Newton steps at most; default 1000 (PECOS's fixed value) */
    int negatives;              /* XMC_NEG_TFN | XMC_NEG_MAN; default TFN */
    uint32_t man_beam;          /* beam of the matcher that picks matcher-aware negatives; default = beam */
    int man_post;               /* post-processor of that matcher; default = post */
    uint32_t beam, topk;        /* stored prediction defaults: 10, 20 */
    int post;                   /* stored default post-processor: l3-hinge */
    int threads;
    void (*progress)(void *ctx, const char *what, double done, double total);
    void *progress_ctx;
} xmc_xlinear_params;

void xmc_xlinear_params_default(xmc_xlinear_params *p);

/* Trains every layer of tree on X (N x F, rows sorted) and Y (N x L, L = the tree's last layer). */
xmc_err xmc_xlinear_train(const xmc_csr *x, const xmc_csr *y, const xmc_tree *tree, const xmc_xlinear_params *p,
                          xmc_xlinear *out, xmc_error *err);

/* Builds layer t of a model from per-node weight columns: w is nr_nodes x (nr_features + 1) CSR (a row
 * per node, sorted), parent[j] the parent of node j among nr_parents. */
xmc_err xmc_layer_build(const xmc_csr *w, const uint32_t *parent, uint32_t nr_parents, xmc_layer *layer,
                        xmc_error *err);
void xmc_layer_free(xmc_layer *layer);
/* The weight rows back as CSR nr_nodes x (nr_features + 1) (for inspect and tests). */
xmc_err xmc_layer_weights(const xmc_layer *layer, uint32_t nr_features, xmc_csr *w, xmc_error *err);

void xmc_xlinear_free(xmc_xlinear *m);

/* Storage: arrays "xl.<t>.*" and manifest keys "xl.*". Load validates shapes and every index. */
xmc_err xmc_xlinear_save(const xmc_xlinear *m, xmc_model_writer *w, xmc_error *err);
xmc_err xmc_xlinear_load(const xmc_bundle *b, xmc_xlinear *m, xmc_error *err);

#endif
