/* options.h: the command line of every `xmc` subcommand as one table per subcommand, from which both the
 * parser (getopt_long) and the --help text are derived, and the one number parser of the CLI.
 *
 * A table row is an option (long name, optional short letter, the kind of value it takes and, for numbers,
 * the range allowed) or a section heading of the help text. The subcommand applies each parsed option in a
 * switch on the row's id; numbers arrive already parsed and range-checked. Error messages name the command:
 * "xmc <cmd>: error: --<name>: '<value>' is not a number in [lo, hi]". */
#ifndef XMC_CLI_OPTIONS_H
#define XMC_CLI_OPTIONS_H

#include <stdio.h>

typedef enum cli_kind {
    CLI_END = 0,   /* ends a table */
    CLI_SECTION,   /* a heading line of --help (help is its text) */
    CLI_FLAG,      /* no value */
    CLI_STRING,    /* any text */
    CLI_INT,       /* a whole number in [lo, hi] */
    CLI_NUMBER     /* a number in [lo, hi] */
} cli_kind;

typedef struct cli_opt {
    cli_kind kind;
    int id;             /* the subcommand's code for it: the letter itself when there is one, else >= 256 */
    const char *name;   /* long name without "--" */
    char letter;        /* short option, 0 if none */
    const char *arg;    /* the value's name in --help ("N", "FILE") */
    double lo, hi;      /* CLI_INT / CLI_NUMBER */
    const char *help;   /* one line; '\n' continues it on the next line, aligned */
} cli_opt;

typedef struct cli_command {
    const char *name;     /* "predict" */
    const char *synopsis; /* the text after "usage: " up to the options, may hold more lines */
    const char *footer;   /* printed after the options; may be NULL */
    const cli_opt *opts;  /* ends with a CLI_END row */
} cli_command;

/* Called once per parsed option: text is its value (NULL for a flag), num the parsed number. 0 to go on,
 * non-zero to stop (the callback has printed why). */
typedef int (*cli_apply_fn)(void *ctx, const cli_opt *opt, const char *text, double num);

/* Prints the derived help text of cmd. */
void cli_usage(const cli_command *cmd, FILE *f);

/* Parses argv (argv[0] is the subcommand) against cmd's table, calling apply for each option in order.
 * --help/-h prints the help on stdout. Returns 0 when everything was applied (*first_arg: the index of the
 * first non-option argument), 1 after --help, 2 on a usage error (message on stderr), or apply's value. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_apply_fn apply, void *ctx, int *first_arg);

/* The row of cmd named name (long name), or NULL. */
const cli_opt *cli_find(const cli_command *cmd, const char *name);

/* The one number parser: text as a number of opt's kind and range into *out; 0, or -1 with the message
 * printed for command cmd. */
int cli_number(const char *cmd, const cli_opt *opt, const char *text, double *out);

/* The options that `predict` and `eval` share (the model, the input records, the beam): the same ids in both
 * tables, applied by one function. */
#include "xmc/data.h"

enum {
    CLI_O_MODEL = 256, CLI_O_TEST, CLI_O_XC, CLI_O_XCF, CLI_O_XCL, CLI_O_BEAM, CLI_O_POST, CLI_O_THREADS,
    CLI_O__NEXT /* a subcommand's own ids start here */
};

typedef struct cli_run {
    const char *model;
    xmc_data_source src;
    uint32_t k, beam, threads; /* 0: the model's (k, beam) */
    int post;                  /* -1: the model's */
} cli_run;

/* Applies o to r if it is one of the shared options (-x, -y, -k and the CLI_O_ ids). Returns 0 when applied,
 * 2 on a bad value (message printed for cmd), -1 when o is not one of them. */
int cli_apply_run(const char *cmd, cli_run *r, const cli_opt *o, const char *text, double num);

#endif
