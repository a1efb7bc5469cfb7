/* data.h: how the CLI subcommands name and read their inputs: one set of options (--train/--test TSV,
 * -x/-y smat pair, --xc file with its index bases) mapped to dataset.h readers. */
#ifndef XMC_CLI_DATA_H
#define XMC_CLI_DATA_H

#include "dataset.h"
#include "xmc/xmc.h"

typedef struct cli_input {
    const char *tsv;        /* labels<TAB>text */
    const char *x, *y;      /* smat text pair (y optional for predict) */
    const char *xc;         /* XC / multi-label libsvm */
    int xc_feature_base, xc_label_base;
} cli_input;

/* Reads whichever input is set; labels: the map of a model (test data) or NULL (training data). */
xmc_err cli_read_input(const cli_input *in, const xmc_labelmap *labels, xmc_dataset *ds, xmc_error *err);
/* The label map of an open model's label names. */
struct xmc_classifier;
xmc_err cli_model_labelmap(const struct xmc_classifier *clf, xmc_labelmap *map, xmc_error *err);
/* Predicts every row of ds with `threads` threads into hits (rows x k) and counts. */
xmc_err cli_predict_all(const struct xmc_classifier *clf, const xmc_dataset *ds, uint32_t beam, uint32_t k, int post,
                        int threads, xmc_hit **hits, uint32_t **counts, xmc_error *err);

#endif
