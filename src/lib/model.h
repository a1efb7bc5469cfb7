/* model.h: the model directory: typed binary arrays + a libconfig manifest, written atomically into a
 * repository, opened by mmap and verified.
 *
 * Repository layout (DESIGN.md section 6):
 *   <repo>/<version>/manifest.cfg     libconfig: format_version, created, keys set by the writer, files list
 *   <repo>/<version>/<name>.bin        one array per file (layout below)
 *   <repo>/CURRENT                     the version to serve, one line; replaced by rename(2)
 * A version is written into <repo>/.tmp-<version>/, every file fsynced, then renamed to <repo>/<version>/;
 * only then is CURRENT replaced. A reader that follows CURRENT never sees a half-written version.
 *
 * Array file layout (little-endian; every field checked against the file size before use):
 *   offset size meaning
 *   0      8    magic "XMCARR\0\1"
 *   8      4    format version (1)
 *   12     4    dtype (xmci_dtype)
 *   16     4    ndim (1..4)
 *   20     4    reserved, 0
 *   24     32   shape[4] (uint64; unused dimensions 1)
 *   56     8    data size in bytes (= product of shape * dtype size)
 *   64     ...  data, row-major
 * The manifest lists every file with its size and xxh64 checksum (hex) over the whole file.
 * Plain files (format_version 2): an entry with raw = true is a file copied in byte for byte (an encoder's
 * config.json, model.safetensors, vocab.txt), possibly one directory down ("encoder/vocab.txt"); it has no
 * array header, and is checked for size and xxh64 like the arrays. A version without plain files is written as
 * format_version 1, which builds before plain files still read.
 *
 * Ownership: a writer owns copies of nothing: arrays are written when added. A bundle owns its mappings;
 * pointers it hands out live until xmci_bundle_close. */
#ifndef XMCI_MODEL_H
#define XMCI_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

typedef enum xmci_dtype {
    XMCI_DT_F32 = 1,
    XMCI_DT_U32 = 2,
    XMCI_DT_U64 = 3,
    XMCI_DT_U8 = 4,
    XMCI_DT_I32 = 5,
} xmci_dtype;

size_t xmci_dtype_size(xmci_dtype dt);

/* The oldest manifest format_version read (arrays only); XMC_MODEL_FORMAT_VERSION is the newest. */
#define XMCI_FORMAT_ARRAYS 1

#define XMCI_ARRAY_HEADER 64
#define XMCI_MAX_NDIM 4

/* 1 if name may name a version or a file: letters, digits, '.', '_', '-', not starting with '.', 1..200 bytes. */
int xmci_valid_name(const char *name);
/* Whether a new version may take this name: a valid name under XMCI_VERSION_MAX bytes, not CURRENT, not
 * serving.*. XMC_OK, or XMC_ERR_ARG saying so. */
#define XMCI_VERSION_MAX 128
xmc_err xmci_version_name_check(const char *version, xmc_error *err);
/* Removes dir, its files and its subdirectories' files (a version is at most two levels deep). */
void xmci_rm_tree(const char *dir);
/* fsync(2) of a file (dir 0) or a directory (dir 1). XMC_ERR_IO. */
xmc_err xmci_fsync_path(const char *path, int dir, xmc_error *err);

/* ---- writing -------------------------------------------------------------------------------------------- */
typedef struct xmci_model_writer xmci_model_writer;

/* Starts a new version in repo (created if missing). version NULL = generated from the time and a random
 * suffix. */
xmc_err xmci_writer_begin(const char *repo, const char *version, xmci_model_writer **out, xmc_error *err);
/* Writes one array file now. */
xmc_err xmci_writer_array(xmci_model_writer *w, const char *name, xmci_dtype dt, int ndim, const uint64_t *shape,
                         const void *data, xmc_error *err);
/* Copies the file at src into the version as file ("name" or "dir/name"), listed as name with raw = true;
 * makes the manifest format_version 2. On failure the version is unchanged but for a partial file the abort
 * or a failed commit removes. */
xmc_err xmci_writer_file(xmci_model_writer *w, const char *name, const char *file, const char *src, xmc_error *err);
/* Manifest keys: dotted paths create groups ("tree.depth"). Values are kept until commit. */
xmc_err xmci_writer_set_int(xmci_model_writer *w, const char *key, long long v, xmc_error *err);
xmc_err xmci_writer_set_float(xmci_model_writer *w, const char *key, double v, xmc_error *err);
xmc_err xmci_writer_set_string(xmci_model_writer *w, const char *key, const char *v, xmc_error *err);
/* Writes the manifest, fsyncs, renames the directory into place and, if make_current, replaces CURRENT.
 * The writer is freed whatever the result. On failure the temporary directory is removed. */
xmc_err xmci_writer_commit(xmci_model_writer *w, int make_current, char *version_out, size_t version_size,
                          xmc_error *err);
/* Abandons the version: removes the temporary directory and frees the writer. */
void xmci_writer_abort(xmci_model_writer *w);

/* ---- reading -------------------------------------------------------------------------------------------- */
typedef struct xmci_bundle xmci_bundle;

/* Resolves path (a version dir, or a repo with CURRENT) to a version dir; out gets the absolute path. */
xmc_err xmci_model_resolve(const char *path, char *out, size_t out_size, xmc_error *err);
/* Opens a version directory: parses the manifest, checks format_version, maps and checks every listed
 * file (size, header, and xxh64 if verify). */
xmc_err xmci_bundle_open(const char *dir, int verify, xmci_bundle **out, xmc_error *err);
void xmci_bundle_close(xmci_bundle *b);
const char *xmci_bundle_dir(const xmci_bundle *b);
const char *xmci_bundle_version(const xmci_bundle *b);
/* The array called name with dtype dt and ndim dims; shape written to shape (ndim entries). */
xmc_err xmci_bundle_array(const xmci_bundle *b, const char *name, xmci_dtype dt, int ndim, uint64_t *shape,
                         const void **data, xmc_error *err);
/* The path of the plain file listed as name (checked at open like the arrays) and its size (may be NULL). */
xmc_err xmci_bundle_file(const xmci_bundle *b, const char *name, char *path, size_t path_size, uint64_t *size,
                        xmc_error *err);
/* 1 if an array or plain file of that name exists. */
int xmci_bundle_has(const xmci_bundle *b, const char *name);
/* Manifest lookups; return XMC_ERR_NOTFOUND if missing or of the wrong type. */
xmc_err xmci_bundle_get_int(const xmci_bundle *b, const char *key, long long *v, xmc_error *err);
xmc_err xmci_bundle_get_float(const xmci_bundle *b, const char *key, double *v, xmc_error *err);
xmc_err xmci_bundle_get_string(const xmci_bundle *b, const char *key, const char **v, xmc_error *err);

#endif
