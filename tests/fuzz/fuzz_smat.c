/* fuzz_smat.c: the smat text reader on arbitrary bytes: an error code or a well-formed matrix, never a crash. */
#include "fuzz_util.h"
#include "smat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmci_csr m;
    xmc_error err;
    if (xmci_csr_read_text(fz_write("m.txt", data, size), &m, &err) == XMC_OK) {
        for (uint32_t r = 0; r < m.rows; r++)
            for (uint64_t p = m.indptr[r]; p < m.indptr[r + 1]; p++)
                if (m.indices[p] >= m.cols) abort();
        xmci_csr_free(&m);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
