/* classify_stdin.c: libxmc through its public header alone. Opens a model (argv[1]), classifies the lines of
 * stdin in batches on argv[2] threads (default 2) and prints each line's labels as `xmc predict` does
 * (label:score, tab-separated, best first). Build: cc -Iinclude classify_stdin.c libxmc.a <its libraries>. */
#include <stdio.h>
#include <stdlib.h>
#include <xmc/xmc.h>

#define BATCH 512

int main(int argc, char **argv)
{
    int threads = argc > 2 ? atoi(argv[2]) : 2, nt = 0, eof = 0;
    if (argc < 2 || threads < 1 || threads > XMC_MAX_THREADS) { fprintf(stderr, "usage: classify_stdin MODEL [THREADS]\n"); return 2; }
    xmc_error err = {0};
    xmc_classifier *clf = NULL;
    xmc_workspace *ws[XMC_MAX_THREADS];
    char *text[BATCH] = {0};
    size_t len[BATCH], cap[BATCH] = {0};
    uint32_t counts[BATCH], k = 0;
    xmc_hit *hits = NULL;
    if (xmc_classifier_open(argv[1], NULL, &clf, &err)) goto out;
    for (; nt < threads; nt++) if (xmc_workspace_new(clf, &ws[nt], &err)) goto out;
    k = xmc_classifier_default_opts(clf).topk; /* NULL options below: the model's defaults */
    if (!(hits = malloc(sizeof *hits * k * BATCH))) { xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    while (!eof) {
        size_t n = 0;
        for (ssize_t got; n < BATCH && !(eof = (got = getline(&text[n], &cap[n], stdin)) < 0); n++)
            len[n] = (size_t)got - (text[n][got - 1] == '\n');
        if (xmc_classify_parallel(clf, ws, nt, (const char *const *)text, len, n, NULL, hits, k, counts, &err)) goto out;
        for (size_t i = 0; i < n; i++, putchar('\n'))
            for (uint32_t j = 0; j < counts[i]; j++)
                printf("%s%s:%.6g", j ? "\t" : "", xmc_classifier_label_name(clf, hits[i * k + j].label), (double)hits[i * k + j].score);
    }
out:
    if (err.code) fprintf(stderr, "classify_stdin: %s (%s)\n", err.msg, xmc_err_name(err.code));
    for (int i = 0; i < BATCH; i++) free(text[i]);
    while (nt > 0) xmc_workspace_free(ws[--nt]);
    free(hits);
    xmc_classifier_close(clf);
    return err.code ? 1 : 0;
}
