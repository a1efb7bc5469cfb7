/* smat.h: sparse matrices in compressed sparse row form (CSR), float32 values, uint32 indices.
 *
 * One struct serves CSR and CSC: a CSC matrix of A is the CSR of A's transpose, so "rows" below means the
 * major dimension. Row pointers are 64-bit (nnz can pass 2^32 at 10^7 records); column indices are 32-bit.
 * Ownership: a matrix from xmci_csr_alloc/builder/reader owns its three arrays (owned = 1) and xmci_csr_free
 * releases them; a matrix that views a mapped model file has owned = 0 and free only clears it.
 *
 * The text format ("smat text") is ../shared/data/README.md's: line 1 "ROWS COLS", then one line per row of
 * "c:v" pairs. Readers keep stored order unless asked to sort; every parse error names file:line. */
#ifndef XMCI_SMAT_H
#define XMCI_SMAT_H

#include <stdint.h>
#include <stdio.h>
#include "xmc/error.h"

typedef struct xmci_csr {
    uint32_t rows, cols;
    uint64_t *indptr;   /* rows + 1 */
    uint32_t *indices;  /* indptr[rows] column indices */
    float *data;        /* indptr[rows] values */
    int owned;
} xmci_csr;

static inline uint64_t xmci_csr_nnz(const xmci_csr *m) { return m->indptr ? m->indptr[m->rows] : 0; }

/* Allocates a rows x cols matrix with room for nnz entries; indptr zeroed. */
xmc_err xmci_csr_alloc(xmci_csr *m, uint32_t rows, uint32_t cols, uint64_t nnz, xmc_error *err);
void xmci_csr_free(xmci_csr *m);
/* Deep copy. */
xmc_err xmci_csr_copy(const xmci_csr *src, xmci_csr *dst, xmc_error *err);

/* dst = transpose(src), with sorted indices in every row of dst. */
xmc_err xmci_csr_transpose(const xmci_csr *src, xmci_csr *dst, xmc_error *err);
/* Sorts the entries of every row by column (stable: equal columns keep order). */
void xmci_csr_sort_indices(xmci_csr *m);
/* Scales every row to unit L2 norm (empty or all-zero rows stay as they are). */
void xmci_csr_normalize_rows(xmci_csr *m);
/* Drops entries with |v| < threshold (in place, keeps order). */
void xmci_csr_prune(xmci_csr *m, float threshold);
/* C = A * B (A: n x k, B: k x m, both CSR); rows of C sorted. Uses a dense accumulator of m floats. */
xmc_err xmci_csr_matmul(const xmci_csr *a, const xmci_csr *b, xmci_csr *c, xmc_error *err);

/* Row builder: append entries then end the row. Grows geometrically. */
typedef struct xmci_csr_builder {
    xmci_csr m;
    uint64_t cap_rows, cap_nnz;
    uint64_t nnz; /* entries pushed so far, the open row included */
} xmci_csr_builder;
xmc_err xmci_csr_builder_init(xmci_csr_builder *b, uint32_t cols, xmc_error *err);
xmc_err xmci_csr_builder_push(xmci_csr_builder *b, uint32_t col, float val, xmc_error *err);
xmc_err xmci_csr_builder_end_row(xmci_csr_builder *b, xmc_error *err);
/* A column the open row (pushed since the last end_row) holds twice, or UINT32_MAX when none: readers of files
 * refuse such rows, since a sparse row with a column twice means nothing one reading would agree on. */
uint32_t xmci_csr_builder_row_duplicate(const xmci_csr_builder *b);
/* Moves the matrix out (the builder is left empty); cols may be raised to the largest index + 1. */
void xmci_csr_builder_finish(xmci_csr_builder *b, xmci_csr *out);
void xmci_csr_builder_free(xmci_csr_builder *b);

/* smat text I/O. read: exact ROWS+1 lines, indices < COLS; errors name path:line. */
xmc_err xmci_csr_read_text(const char *path, xmci_csr *m, xmc_error *err);
xmc_err xmci_csr_write_text(FILE *f, const xmci_csr *m, xmc_error *err);

#endif
