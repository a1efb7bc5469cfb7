/* pifa.h: PIFA label embedding: each label is the L2-normalised sum of the (row-normalised-Y weighted)
 * features of its positive instances, Z = rownorm(rownorm(Y)^T X), as PECOS computes it. */
#ifndef XMC_PIFA_H
#define XMC_PIFA_H

#include "smat.h"

/* X: N x F (rows sorted), Y: N x L. out: L x F with sorted rows; a label with no positive instance gets an
 * empty row. */
xmc_err xmc_pifa(const xmc_csr *x, const xmc_csr *y, xmc_csr *out, xmc_error *err);

#endif
