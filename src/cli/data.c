/* data.c: classifying a whole dataset for `xmc predict` and `xmc eval`: a workspace per thread, then the
 * library's threaded xmc_data_classify (cli.h). */
#include <stdlib.h>

#include "cli.h"

int cli_classify_all(const char *cmd, const xmc_classifier *clf, const xmc_data *data,
                         const xmc_predict_opts *opts, int threads, xmc_hit **hits, uint32_t **counts)
{
    xmc_error err = {0};
    xmc_workspace *ws[XMC_MAX_THREADS] = {0};
    uint32_t n = xmc_data_rows(data), k = opts->topk;
    xmc_hit *h = malloc(((size_t)n * k + 1) * sizeof *h);
    uint32_t *c = calloc((size_t)n + 1, sizeof *c);
    int rc = 1, i;
    if (!h || !c) {
        xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory for %u predictions", n);
        goto out;
    }
    for (i = 0; i < threads; i++)
        if (xmc_workspace_new(clf, &ws[i], &err)) goto out;
    if (xmc_data_classify(clf, ws, threads, data, opts, h, k, c, &err)) goto out;
    *hits = h;
    *counts = c;
    h = NULL;
    c = NULL;
    rc = 0;
out:
    if (rc) cli_report(cmd, &err);
    for (i = 0; i < threads; i++) xmc_workspace_free(ws[i]);
    free(h);
    free(c);
    return rc;
}
