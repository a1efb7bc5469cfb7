/* safetensors.h: read-only access to a .safetensors file: the whole file is mapped, tensors are used in place.
 *
 * Format (all integers little-endian; https://github.com/huggingface/safetensors):
 *   offset   size  meaning
 *   0        8     N, length of the header (u64); N <= file size - 8
 *   8        N     UTF-8 JSON object: "<name>": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [b, e]},
 *                  plus an optional "__metadata__": {string: string}; padded with spaces
 *   8 + N    ...   data region; tensor bytes are [8 + N + b, 8 + N + e), row-major
 * Checked at open, before anything is used: N within the file, the header parses, every tensor has a
 * dtype string, a shape of non-negative integers, 0 <= b <= e <= data region size, and for a known dtype
 * e - b = product(shape) * dtype size. A file cut short therefore fails at open naming the first tensor
 * whose bytes are missing. Checked per lookup: dtype F32, the expected shape, 4-byte alignment.
 *
 * Writing (xmci_safetensors_write): F32 tensors in the order given, data offsets increasing without gaps, the
 * header padded with spaces to a multiple of 8 bytes so that every tensor is 8-byte aligned in the file.
 *
 * Ownership: a handle owns its mapping and header; pointers it hands out live until xmci_safetensors_close. */
#ifndef XMCI_SAFETENSORS_H
#define XMCI_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

typedef struct xmci_safetensors xmci_safetensors;

/* Maps and checks path. Fails with XMC_ERR_IO (open/mmap), XMC_ERR_CORRUPT (bounds, header JSON, entry
 * fields; the message names path and tensor) or XMC_ERR_NOMEM; *out untouched on failure. */
xmc_err xmci_safetensors_open(const char *path, xmci_safetensors **out, xmc_error *err);
void xmci_safetensors_close(xmci_safetensors *st);

/* 1 if a tensor of that exact name exists. */
int xmci_safetensors_has(const xmci_safetensors *st, const char *name);
/* The F32 tensor name whose shape must be shape[0..ndim). Fails with XMC_ERR_NOTFOUND (no such tensor),
 * XMC_ERR_VERSION (another dtype), XMC_ERR_SHAPE (other shape) or XMC_ERR_CORRUPT (misaligned data); the
 * message names the file and the tensor and gives both shapes. */
xmc_err xmci_safetensors_f32(const xmci_safetensors *st, const char *name, int ndim, const int64_t *shape,
                            const float **data, xmc_error *err);

/* One F32 tensor to write: name, ndim (1 or 2) dims, and its floats (product of the dims). */
typedef struct xmci_safetensors_entry {
    const char *name;
    int ndim;
    int64_t shape[2];
    const float *data;
} xmci_safetensors_entry;

/* Writes n tensors to path (through path.tmp, fsync and rename, so a reader never sees half a file). Fails
 * with XMC_ERR_ARG (a bad entry), XMC_ERR_IO (the message names the file) or XMC_ERR_NOMEM; the file at path
 * is then untouched. */
xmc_err xmci_safetensors_write(const char *path, const xmci_safetensors_entry *entries, int n, xmc_error *err);

#endif
