/* pifa.c: PIFA label embedding (see pifa.h): one transpose and one sparse product. */
#include "pifa.h"

xmc_err xmci_pifa(const xmci_csr *x, const xmci_csr *y, xmci_csr *out, xmc_error *err)
{
    if (x->rows != y->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "pifa: %u feature rows but %u label rows", x->rows, y->rows);
    xmci_csr yn, yt;
    xmc_err rc = xmci_csr_copy(y, &yn, err);
    if (rc) return rc;
    xmci_csr_normalize_rows(&yn);
    rc = xmci_csr_transpose(&yn, &yt, err);
    xmci_csr_free(&yn);
    if (rc) return rc;
    rc = xmci_csr_matmul(&yt, x, out, err);
    xmci_csr_free(&yt);
    if (rc) return rc;
    xmci_csr_normalize_rows(out);
    return XMC_OK;
}
