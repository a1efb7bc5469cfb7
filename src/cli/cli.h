/* cli.h: the subcommands of the `xmc` command, one file each (src/cli/<name>.c), and their shared helpers. */
#ifndef XMC_CLI_H
#define XMC_CLI_H

#include "xmc/error.h"

typedef int (*xmc_cli_fn)(int argc, char **argv);

/* Each returns the process exit status: 0 ok, 1 runtime error, 2 usage error. */
int xmc_cli_train(int argc, char **argv);
int xmc_cli_predict(int argc, char **argv);
int xmc_cli_eval(int argc, char **argv);
int xmc_cli_inspect(int argc, char **argv);
int xmc_cli_gen(int argc, char **argv);
int xmc_cli_embed(int argc, char **argv);

/* Prints "xmc <cmd>: <message>" for err on stderr. */
void xmc_cli_report(const char *cmd, const xmc_error *err);
/* Progress on stderr: a line per call when stderr is not a terminal, an updating line when it is. */
void xmc_cli_progress(const char *what, double done, double total);

#endif
