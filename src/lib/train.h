/* train.h: the whole training pipeline, from texts (or a feature matrix) and labels to a new model version
 * in a repository: TF-IDF fit and transform, PIFA, label tree, XR-Linear rankers, canaries, atomic write.
 * xmc_train_data (xmc/train.h) is the public face of xmci_train: a plain configuration mapped onto these options. */
#ifndef XMCI_TRAIN_H
#define XMCI_TRAIN_H

#include <stddef.h>
#include "smat.h"
#include "encoder.h"
#include "tfidf.h"
#include "tree.h"
#include "xlinear.h"
#include "xmc/train.h"

typedef struct xmci_train_opts {
    xmc_featurizer featurizer; /* text input only: TFIDF, ENCODER or BOTH; default TFIDF */
    xmci_tfidf_config tfidf;
    xmci_encoder_config encoder;
    xmci_tree_params tree;
    xmci_xlinear_params xl;
    uint32_t disentangle;    /* leaves a label may take (disentangle.h), 1..6; 1: one leaf, no second pass */
    int threads;
    const char *version;     /* NULL: generated */
    int make_current;        /* replace CURRENT with the new version; default 1 */
    uint32_t nr_canaries;    /* training records kept to check the model at load; default 8 */
    void (*progress)(void *ctx, const char *what, double done, double total);
    void *progress_ctx;
    /* warm start (xmc/train.h): the serving model whose vocabulary, tree and weights this training starts from;
     * NULL: a cold training. It must stay open during the call. */
    const xmc_classifier *warm;
    float warm_max_leaf_ratio; /* rebuild the tree when a leaf would exceed this x tree.max_leaf_size; default 2 */
} xmci_train_opts;

void xmci_train_opts_default(xmci_train_opts *o);

/* texts/lens (n = y->rows) with a TF-IDF featuriser, or x (n x F, texts NULL) used as is. label_names: L
 * names (NULL: the decimal label ids). Writes the version, returns its name in version_out. */
xmc_err xmci_train(const char *const *texts, const size_t *lens, const xmci_csr *x, const xmci_csr *y,
                  const char *const *label_names, const xmci_train_opts *o, const char *repo, char *version_out,
                  size_t version_size, xmc_train_report *report, xmc_error *err);

#endif
