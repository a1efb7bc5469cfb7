/* data.h: what an xmc_data (xmc/data.h) holds: a dataset (dataset.h) and, for test data named by a model's
 * labels, the label map built from that model's label table. Training reads it (train.c). */
#ifndef XMCI_DATA_INTERNAL_H
#define XMCI_DATA_INTERNAL_H

#include "dataset.h"
#include "xmc/data.h"

struct xmc_data {
    xmci_dataset ds;
    xmci_labelmap map; /* the classifier's labels (empty unless the data was read with one) */
};

#endif
