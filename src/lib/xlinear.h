/* xlinear.h: an XR-Linear model: per-layer sparse linear rankers over a label tree (each layer laid out for
 * beam search, layer.h), trained by xlinear_train.h, and its storage in a model directory.
 *
 * Storage: arrays "xl.<t>.child_ptr|child_idx|chunk_ptr|row_feat|row_ptr|ent_child|ent_w" (the layer arrays of
 * layer.h, layer t) and manifest keys xl.depth, xl.nr_features, xl.bias, xl.beam, xl.topk, xl.post. A model
 * whose labels were disentangled (disentangle.h) also has the array "xl.copy_ptr" (u32, labels + 1: label l's
 * copies are the last layer's nodes copy_ptr[l] .. copy_ptr[l+1]-1) and the key xl.disentangle (the k it was
 * trained with); a model without them has one last-layer node per label, as before. Loading
 * views the arrays in the bundle's mapping and validates every shape, pointer and index, so a damaged file
 * cannot make search read out of bounds.
 *
 * Layers are owned (trained in memory) or views into a mapped model (loaded); xmci_xlinear_free handles
 * both. */
#ifndef XMCI_XLINEAR_H
#define XMCI_XLINEAR_H

#include <stdint.h>
#include "dcd.h"
#include "layer.h"
#include "tron.h"
#include "model.h"
#include "smat.h"
#include "tree.h"
#include "xlinear_train.h"
#include "xmc/xmc.h"

typedef struct xmci_xlinear {
    uint32_t depth;
    uint32_t nr_features;       /* without the bias feature */
    float bias;
    uint32_t beam, topk;        /* prediction defaults */
    int post;                   /* xmc_post default */
    xmci_layer layers[XMCI_TREE_MAX_DEPTH];
    uint32_t nr_labels;         /* = the last layer's nodes unless copy_ptr is set */
    uint32_t disentangle;       /* copies per label the training allowed; 1: none */
    uint32_t max_copies;        /* the most copies a label has (1 without copy_ptr) */
    const uint32_t *copy_ptr;   /* NULL, or nr_labels + 1 (disentangle.h); owned when copy_owned */
    int copy_owned;
} xmci_xlinear;

void xmci_xlinear_free(xmci_xlinear *m);

/* Storage: arrays "xl.<t>.*" and manifest keys "xl.*". Load validates shapes and every index. */
xmc_err xmci_xlinear_save(const xmci_xlinear *m, xmci_model_writer *w, xmc_error *err);
xmc_err xmci_xlinear_load(const xmci_bundle *b, xmci_xlinear *m, xmc_error *err);

#endif
