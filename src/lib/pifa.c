/* pifa.c: PIFA label embedding (see pifa.h): one transpose and one sparse product. */
#include "pifa.h"

xmc_err xmc_pifa(const xmc_csr *x, const xmc_csr *y, xmc_csr *out, xmc_error *err)
{
    if (x->rows != y->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "pifa: %u feature rows but %u label rows", x->rows, y->rows);
    xmc_csr yn, yt;
    xmc_err rc = xmc_csr_copy(y, &yn, err);
    if (rc) return rc;
    xmc_csr_normalize_rows(&yn);
    rc = xmc_csr_transpose(&yn, &yt, err);
    xmc_csr_free(&yn);
    if (rc) return rc;
    rc = xmc_csr_matmul(&yt, x, out, err);
    xmc_csr_free(&yt);
    if (rc) return rc;
    xmc_csr_normalize_rows(out);
    return XMC_OK;
}
