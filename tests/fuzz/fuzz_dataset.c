/* fuzz_dataset.c: the TSV and XC readers on arbitrary bytes (the first byte picks the reader). */
#include "dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *path = fz_write("d.txt", data + 1, size - 1);
    xmci_dataset ds;
    xmc_error err;
    xmc_err rc;
    if (data[0] & 1) {
        xmci_dataset_xc_opts o;
        xmci_dataset_xc_opts_default(&o);
        o.feature_base = (data[0] >> 1) & 1;
        o.label_base = (data[0] >> 2) & 1;
        rc = xmci_dataset_read_xc(path, &o, &ds, &err);
    } else {
        rc = xmci_dataset_read_tsv(path, NULL, &ds, &err);
    }
    if (rc == XMC_OK) {
        if (ds.Y.rows != ds.n) abort();
        xmci_dataset_free(&ds);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
