/* main.c: the `xmc` command: dispatches to a subcommand (train, predict, eval, inspect, gen, embed, model). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "xmc/blas.h"
#include "xmc/xmc.h"

typedef struct {
    const char *name;
    cli_fn fn;
    const char *help;
} command;

/* one line per subcommand; a NULL name ends the table */
static const command commands[] = {
    {"train", cli_train, "train a model version into a model repository"},
    {"predict", cli_predict, "predict labels for a TSV of texts or a feature matrix"},
    {"eval", cli_eval, "P@k, nDCG@k, PSP@k and speed of a model on labelled data"},
    {"inspect", cli_inspect, "describe a model: tree shape, sizes, top features of a label"},
    {"gen", cli_gen, "generate a synthetic product catalog (Zipf-skewed labels, fixed seed)"},
    {"embed", cli_embed, "embed texts with a BERT-family encoder"},
    {"model", cli_model, "a model repository: list versions, roll CURRENT back, prune old versions"},
    {"retrain", cli_retrain, "keep retraining from curated records on Kafka, gated (docs/retrain.md)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: xmc <command> [options]   (xmc <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; commands[i].name; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nxmc %s\n", XMC_VERSION_STRING);
}

void cli_report(const char *cmd, const xmc_error *err)
{
    fprintf(stderr, "xmc %s: error: %s (%s)\n", cmd, err->msg[0] ? err->msg : "failed", xmc_err_name(err->code));
}

void cli_blas_warn(void)
{
    static int done;
    if (done) return;
    done = 1;
    xmc_blas_info bi;
    char line[512];
    xmc_blas_get_info(&bi);
    if (xmc_blas_advice(&bi, line, sizeof line)) fprintf(stderr, "xmc: warning: %s\n", line);
}

void cli_blas_warn_model(const xmc_classifier *clf)
{
    xmc_model_info mi;
    xmc_classifier_info(clf, &mi);
    if (mi.featurizer & XMC_FEATURIZER_ENCODER) cli_blas_warn(); /* only an encoder's forward is sgemm-bound */
}

void cli_progress(const char *what, double done, double total)
{
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    double pct = total > 0 ? 100.0 * done / total : 100.0;
    if (tty)
        fprintf(stderr, "\r%-40s %5.1f%%%s", what, pct, done >= total ? "\n" : "");
    else
        fprintf(stderr, "%s %.1f%%\n", what, pct);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        xmc_blas_info bi;
        xmc_blas_get_info(&bi);
        printf("xmc %s\nblas %s; kernels %s; cpu %s\n", XMC_VERSION_STRING, bi.config, bi.kernels, bi.cpu);
        cli_blas_warn();
        return 0;
    }
    for (size_t i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            /* an output that could not be written (a full disk, a closed pipe's reader gone) is a failure, even
             * when it shows only at this last flush */
            errno = 0;
            if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "xmc %s: error: cannot write the output%s%s\n", argv[1], errno ? ": " : "",
                        errno ? strerror(errno) : "");
                if (rc == 0) rc = 1;
            }
            return rc;
        }
    fprintf(stderr, "xmc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
