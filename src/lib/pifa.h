/* pifa.h: PIFA label embedding: each label is the L2-normalised sum of the (row-normalised-Y weighted)
 * features of its positive instances, Z = rownorm(rownorm(Y)^T X), as PECOS computes it. */
#ifndef XMCI_PIFA_H
#define XMCI_PIFA_H

#include "smat.h"

/* X: N x F (rows sorted), Y: N x L. out: L x F with sorted rows; a label with no positive instance gets an
 * empty row. */
xmc_err xmci_pifa(const xmci_csr *x, const xmci_csr *y, xmci_csr *out, xmc_error *err);

#endif
