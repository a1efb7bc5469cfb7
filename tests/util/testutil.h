/* testutil.h: shared helpers for the CUnit suites: run the registry, locate the fixtures (tests/data), temp dirs. */
#ifndef XMC_TESTUTIL_H
#define XMC_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdint.h>

#include "smat.h"

/* Path of the repository's fixtures, tests/data (see its README.md): relative to the working directory when the
 * suite runs from the repository root, else found above the suite's binary; NULL if neither has it. */
const char *tu_data_dir(void);
/* Joins the data dir and a relative path into a static buffer (one at a time). */
const char *tu_data(const char *rel);
/* Makes a fresh temporary directory and returns its path (static buffer, one per call site ok). */
char *tu_tmpdir(void);
/* Removes a directory tree (rm -rf). */
void tu_rmrf(const char *path);
/* Writes text to a file; returns 0 on success. */
int tu_write_file(const char *path, const char *text);
/* The whole file, malloc'd with a NUL after its bytes, its size in *size; NULL if it cannot be read. */
char *tu_read_file(const char *path, size_t *size);
/* Dense text ("ROWS COLS", then the values) as a malloc'd rows x cols array; NULL on a missing or bad file. */
float *tu_read_dense(const char *path, int *rows, int *cols);
/* Fills m (owned) from a dense row-major rows x cols array, keeping the non-zero entries in column order;
 * returns 0 on success. */
int tu_csr_from_dense(xmci_csr *m, uint32_t rows, uint32_t cols, const float *dense);
/* Runs every registered suite in basic mode (or only the one named by argv[1]); returns failures. */
int tu_run(int argc, char **argv);

#define TU_ADD(suite, fn) CU_add_test(suite, #fn, fn)

#endif
