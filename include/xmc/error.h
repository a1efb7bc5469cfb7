/* error.h: the one result type of libxmc and the caller-owned error record.
 *
 * Every fallible function returns an xmc_err and, when it fails, fills the caller's xmc_error with the
 * code and a human message (file:line where the input has lines). XMC_OK is 0. The library never prints
 * and never exits: the message is the caller's to show. Codes are classed like librdkafka's: a per-record
 * error (bad input for one document) lets a stream go on; anything unknown is to be treated as fatal. */
#ifndef XMC_ERROR_H
#define XMC_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xmc_err {
    XMC_OK = 0,
    XMC_ERR_NOMEM,     /* allocation failed */
    XMC_ERR_IO,        /* open/read/write/rename/mmap failed (errno text in the message) */
    XMC_ERR_PARSE,     /* malformed input data (message names file:line) */
    XMC_ERR_ARG,       /* invalid argument or option value */
    XMC_ERR_CORRUPT,   /* checksum, magic or bounds check failed on a model file */
    XMC_ERR_VERSION,   /* unsupported format or ABI version */
    XMC_ERR_SHAPE,     /* arrays whose shapes disagree */
    XMC_ERR_NOTFOUND,  /* a named file, tensor, label or version is missing */
    XMC_ERR_CANARY,    /* a model's canary records did not give their expected labels */
    XMC_ERR_EMPTY,     /* nothing to work on (no rows, no labels) */
    XMC_ERR_RANGE,     /* a value outside what the format can hold */
    XMC_ERR__COUNT
} xmc_err;

typedef struct xmc_error {
    xmc_err code;
    char msg[512];
} xmc_error;

/* Short stable name of a code ("XMC_ERR_PARSE"); never NULL. */
const char *xmc_err_name(xmc_err code);

/* Sets err (if not NULL) and returns code, so that `return xmc_error_set(err, ...)` reads naturally. */
xmc_err xmc_error_set(xmc_error *err, xmc_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with more context ("reading model: " + old message). */
void xmc_error_prefix(xmc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to XMC_OK and an empty message. */
void xmc_error_clear(xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
