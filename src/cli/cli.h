/* cli.h: the subcommands of the `xmc` command, one file each (src/cli/<name>.c), and their shared helpers.
 * The CLI uses libxmc through its public headers (include/xmc/) only. */
#ifndef XMC_CLI_H
#define XMC_CLI_H

#include "xmc/data.h"
#include "xmc/error.h"
#include "xmc/xmc.h"

typedef int (*cli_fn)(int argc, char **argv);

/* Each returns the process exit status: 0 ok, 1 runtime error, 2 usage error. */
int cli_train(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_gen(int argc, char **argv);
int cli_embed(int argc, char **argv);
/* src/retrain/retrain.c: the continuous retrainer (a long-running process, docs/retrain.md) */
int cli_retrain(int argc, char **argv);
int cli_model(int argc, char **argv);

/* Prints "xmc <cmd>: error: <message> (<code>)" for err on stderr. */
void cli_report(const char *cmd, const xmc_error *err);
/* Progress on stderr: a line per call when stderr is not a terminal, an updating line when it is. */
void cli_progress(const char *what, double done, double total);

/* Prints "xmc: warning: ..." on stderr, once per process, when OpenBLAS runs kernels older than this CPU's
 * (xmc/blas.h); for the commands that run the encoder. */
void cli_blas_warn(void);
/* cli_blas_warn when the model has an encoder. */
void cli_blas_warn_model(const xmc_classifier *clf);

/* Classifies every record of data on `threads` threads into *hits (rows x k, malloc'ed) and *counts; the
 * caller frees both. Reports failures itself (as cmd) and returns non-zero. */
int cli_classify_all(const char *cmd, const xmc_classifier *clf, const xmc_data *data,
                         const xmc_predict_opts *opts, int threads, xmc_hit **hits, uint32_t **counts);

#endif
