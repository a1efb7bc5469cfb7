/* xlinear_train.h: training the rankers of an XR-Linear model (xlinear.h) over a label tree, with
 * teacher-forced and matcher-aware negatives.
 *
 * Training goes top-down. For layer t, every node j with parent c is one binary problem over the instances
 * "matched" to c: those whose true path passes c (teacher-forced negatives, tfn) and/or those the model so far
 * routes to c with its beam (matcher-aware negatives, man), plus j's own positives; j's positives are +1, the
 * rest -1, solved by the dual (dcd.h) or primal (tron.h) solver. */
#ifndef XMCI_XLINEAR_TRAIN_H
#define XMCI_XLINEAR_TRAIN_H

#include <stdint.h>
#include "dcd.h"
#include "smat.h"
#include "tree.h"
#include "tron.h"
#include "xmc/error.h"

typedef struct xmci_xlinear xmci_xlinear;

enum { XMCI_NEG_TFN = 1, XMCI_NEG_MAN = 2 };
/* Which solver trains the rankers: PECOS's L2R_L2LOSS_SVC_DUAL or L2R_L2LOSS_SVC_PRIMAL. */
enum { XMCI_SOLVER_DUAL = 0, XMCI_SOLVER_PRIMAL = 1 };

typedef struct xmci_xlinear_params {
    xmci_dcd_params solver;      /* cp, cn, bias, threshold serve both solvers; eps, max_iter, seed the dual */
    int solver_type;            /* XMCI_SOLVER_DUAL (default) or XMCI_SOLVER_PRIMAL */
    double newton_eps;          /* primal: relative gradient tolerance; default 0.01 (PECOS's newton_eps) */
    int newton_max_iter;        /* primal: Newton steps at most; default 1000 (PECOS's fixed value) */
    int negatives;              /* XMCI_NEG_TFN | XMCI_NEG_MAN; default TFN */
    uint32_t man_beam;          /* beam of the matcher that picks matcher-aware negatives; default = beam */
    int man_post;               /* post-processor of that matcher; default = post */
    uint32_t beam, topk;        /* stored prediction defaults: 10, 20 */
    int post;                   /* stored default post-processor: l3-hinge */
    int threads;
    void (*progress)(void *ctx, const char *what, double done, double total);
    void *progress_ctx;
    /* warm start (primal solver only): node j of layer t starts from warm's weights of node warm_node[t][j]
     * (UINT32_MAX: from zero), features of the same ids, warm's bias feature onto ours; NULL: every node from 0 */
    const xmci_xlinear *warm;
    uint32_t *const *warm_node;
    const uint32_t *warm_feat;  /* warm's feature f is our feature warm_feat[f] (UINT32_MAX: gone); NULL: the same id */
    uint64_t *solver_iters;     /* NULL, or where the solves' iterations are added (Newton steps / dual passes) */
} xmci_xlinear_params;

void xmci_xlinear_params_default(xmci_xlinear_params *p);

/* Trains every layer of tree on X (N x F, rows sorted) and Y (N x L, L = the tree's last layer) into *out.
 * XMC_ERR_SHAPE, XMC_ERR_EMPTY, XMC_ERR_ARG (bad params), XMC_ERR_NOMEM; *out is then empty. */
xmc_err xmci_xlinear_train(const xmci_csr *x, const xmci_csr *y, const xmci_tree *tree, const xmci_xlinear_params *p,
                          xmci_xlinear *out, xmc_error *err);

#endif
