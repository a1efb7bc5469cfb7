/* predict.c: `xmc predict`: labels for every record of a TSV (or rows of a feature matrix), as text
 * (tab-separated label:score, best first) or as a smat text score matrix like PECOS's golden files.
 *
 * A TSV is streamed: read, classified (on the threads) and written a block at a time, so memory stays
 * bounded whatever the input's size, output starts at once, and `--test -` reads stdin (a pipe). A matrix
 * input is read whole (its rows are a matrix). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

enum { O_FORMAT = CLI_O__NEXT, O_NOVERIFY };

static const cli_opt predict_opts[] = {
    {CLI_STRING, CLI_O_MODEL, "model", 0, "REPO[/VERSION]", 0, 0, "model repository or version directory (required)"},
    {CLI_STRING, CLI_O_TEST, "test", 0, "FILE.tsv", 0, 0,
     "records to classify (labels<TAB>text; the labels are not read); - reads stdin; streamed in blocks"},
    {CLI_STRING, 'x', NULL, 'x', "X.txt", 0, 0, "feature vectors in smat text (a matrix model)"},
    {CLI_STRING, CLI_O_XC, "xc", 0, "FILE", 0, 0, "XC / multi-label libsvm file (a matrix model)"},
    {CLI_INT, 'k', "topk", 'k', "N", 1, XMC_MAX_K, "labels per record (default: the model's topk)"},
    {CLI_INT, CLI_O_BEAM, "beam", 0, "N", 1, XMC_MAX_K, "nodes kept per tree level (default: the model's beam)"},
    {CLI_STRING, CLI_O_POST, "post", 0, "NAME", 0, 0, "post-processor (default: the model's)"},
    {CLI_STRING, O_FORMAT, "format", 0, "F", 0, 0,
     "text: one line per record, tab-separated label:score, best first (default);\n"
     "matrix: smat text 'ROWS LABELS' then label-index:score per row"},
    {CLI_INT, CLI_O_THREADS, "threads", 0, "N", 1, XMC_MAX_THREADS, "threads (default 2)"},
    {CLI_FLAG, O_NOVERIFY, "no-verify", 0, NULL, 0, 0, "skip checksums and canaries when opening the model"},
    {CLI_INT, CLI_O_XCF, "xc-feature-base", 0, "B", 0, 1, "index base of an --xc file's features (0 or 1)"},
    {CLI_INT, CLI_O_XCL, "xc-label-base", 0, "B", 0, 1, "index base of an --xc file's labels (0 or 1)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command predict_cmd = {
    "predict", "--model REPO[/VERSION] (--test FILE.tsv | -x X.txt | --xc FILE) [options]",
    "  Records keep their input order.\n", predict_opts};

typedef struct {
    cli_run run;
    const char *format;
    int verify;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    int rc = cli_apply_run("predict", &s->run, o, v, num);
    if (rc >= 0) return rc;
    if (o->id == O_FORMAT) s->format = v;
    else if (o->id == O_NOVERIFY) s->verify = 0;
    return 0;
}

/* Line buffers larger than this are given back after each block. */
#define LINE_KEEP ((size_t)64 << 10)

/* Records per block of a streamed TSV: at least 4,096, and 1,024 per thread so that every thread takes several
 * of the library's 256-row chunks (fewer would leave threads idle at the end of each block). */
static size_t block_size(int threads) { return threads * (size_t)1024 > 4096 ? threads * (size_t)1024 : 4096; }

/* An anonymous temporary file in dir ($TMPDIR, default /tmp), for the matrix body: tmpfile() always uses /tmp,
 * which may be a RAM disk. NULL with errno on failure. */
static FILE *spool_file(const char *dir)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/xmc-predict-XXXXXX", dir) >= sizeof path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    unlink(path);
    FILE *f = fdopen(fd, "w+b");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

/* One record's hits as a line of --format text or matrix. */
static void print_hits(FILE *out, const xmc_classifier *clf, const xmc_hit *h, uint32_t n, int matrix)
{
    for (uint32_t i = 0; i < n; i++) {
        if (matrix)
            fprintf(out, i ? " %u:%.9g" : "%u:%.9g", h[i].label, (double)h[i].score);
        else
            fprintf(out, i ? "\t%s:%.6g" : "%s:%.6g", xmc_classifier_label_name(clf, h[i].label), (double)h[i].score);
    }
    putc('\n', out);
}

/* Streams a TSV (path, or stdin for "-") through the classifier a block at a time; the label field is not read.
 * The matrix format's header counts the rows, so its body goes to a temporary file until the end. A failed
 * write to stdout stops the work; main() reports it. */
static int predict_tsv(const char *path, const xmc_classifier *clf, const xmc_predict_opts *opts, int threads,
                       int matrix)
{
    xmc_model_info info;
    xmc_classifier_info(clf, &info);
    if (info.featurizer == XMC_FEATURIZER_MATRIX) { /* before reading anything */
        fprintf(stderr, "xmc predict: error: model %s was trained on feature vectors: give -x or --xc, not text\n",
                xmc_classifier_version(clf));
        return 1;
    }
    int is_stdin = !strcmp(path, "-"), rc = 1, nt = 0, reported = 0;
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "xmc predict: error: %s: %s\n", path, strerror(errno));
        return 1;
    }
    const char *name = is_stdin ? "stdin" : path;
    const size_t block = block_size(threads);
    xmc_error err = {0};
    xmc_workspace *ws[XMC_MAX_THREADS];
    char **line = calloc(block, sizeof *line);
    size_t *cap = calloc(block, sizeof *cap), *len = malloc(block * sizeof *len), ln = 0;
    const char **text = malloc(block * sizeof *text);
    uint32_t *counts = malloc(block * sizeof *counts);
    uint64_t rows = 0;
    xmc_hit *hits = malloc(block * opts->topk * sizeof *hits);
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    FILE *out = matrix ? spool_file(tmpdir) : stdout;
    if (!line || !cap || !len || !text || !counts || !hits) {
        xmc_error_set(&err, XMC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!out) {
        xmc_error_set(&err, XMC_ERR_IO, "a temporary file for the matrix in %s: %s", tmpdir, strerror(errno));
        goto out;
    }
    for (; nt < threads; nt++)
        if (xmc_workspace_new(clf, &ws[nt], &err)) goto out;
    for (int eof = 0; !eof;) {
        size_t n = 0, first = ln + 1;
        while (n < block) {
            errno = 0;
            ssize_t got = getline(&line[n], &cap[n], in);
            if (got < 0) {
                /* glibc's getline fails without the stream's error flag when it cannot grow the line (ENOMEM,
                 * EOVERFLOW): only feof says the input ended */
                if (ferror(in) || !feof(in)) {
                    int e = errno ? errno : EIO;
                    xmc_error_set(&err, e == ENOMEM ? XMC_ERR_NOMEM : XMC_ERR_IO, "%s:%zu: %s", name, ln + 1,
                                  strerror(e));
                    goto out;
                }
                eof = 1;
                break;
            }
            ln++;
            char *l = line[n];
            size_t k = (size_t)got;
            if (k && l[k - 1] == '\n') k--;
            if (k && l[k - 1] == '\r') k--;
            if (ln == 1 && k >= 3 && !memcmp(l, "\xef\xbb\xbf", 3)) { /* a UTF-8 byte order mark */
                l += 3;
                k -= 3;
            }
            char *tab = memchr(l, '\t', k);
            if (!tab) {
                xmc_error_set(&err, XMC_ERR_PARSE, "%s:%zu: no tab between the labels and the text", name, ln);
                goto out;
            }
            text[n] = tab + 1;
            len[n] = k - (size_t)(tab + 1 - l);
            n++;
        }
        if (xmc_classify_parallel(clf, ws, nt, text, len, n, opts, hits, opts->topk, counts, &err)) {
            xmc_error_prefix(&err, "%s: lines %zu..%zu: ", name, first, ln);
            goto out;
        }
        for (size_t i = 0; i < n; i++) print_hits(out, clf, hits + i * opts->topk, counts[i], matrix);
        rows += n;
        /* a slot keeps its line buffer for the next block, unless a long line grew it: else every slot could
         * come to hold the longest line seen there, block x longest line in all */
        for (size_t i = 0; i < n; i++)
            if (cap[i] > LINE_KEEP) {
                free(line[i]);
                line[i] = NULL;
                cap[i] = 0;
            }
        if (ferror(out)) {
            if (matrix) xmc_error_set(&err, XMC_ERR_IO, "the temporary file for the matrix: write error");
            else reported = 1; /* stdout: main() names the failed write */
            goto out;
        }
    }
    if (rows == 0) {
        xmc_error_set(&err, XMC_ERR_EMPTY, "%s: no records", name);
        goto out;
    }
    if (matrix) {
        if (rows > UINT32_MAX) {
            xmc_error_set(&err, XMC_ERR_RANGE, "%s: %llu records, more than a matrix header holds", name,
                          (unsigned long long)rows);
            goto out;
        }
        printf("%u %u\n", (uint32_t)rows, xmc_classifier_num_labels(clf));
        char buf[1 << 16];
        size_t k;
        if (fflush(out) != 0 || fseek(out, 0, SEEK_SET) != 0) {
            xmc_error_set(&err, XMC_ERR_IO, "the temporary file for the matrix: %s", strerror(errno));
            goto out;
        }
        while (!ferror(stdout) && (k = fread(buf, 1, sizeof buf, out)) > 0) fwrite(buf, 1, k, stdout);
        if (ferror(out)) {
            xmc_error_set(&err, XMC_ERR_IO, "the temporary file for the matrix: read error");
            goto out;
        }
    }
    rc = 0; /* a failed write to stdout is main()'s to report, at its final flush */
out:
    if (rc && !reported) cli_report("predict", &err);
    if (matrix && out) fclose(out);
    while (nt > 0) xmc_workspace_free(ws[--nt]);
    for (size_t i = 0; line && i < block; i++) free(line[i]);
    free(line);
    free(cap);
    free(len);
    free(text);
    free(counts);
    free(hits);
    if (!is_stdin) fclose(in);
    return rc;
}

int cli_predict(int argc, char **argv)
{
    settings s = {.run = {.threads = 2, .post = -1}, .format = "text", .verify = 1};
    int first, rc = cli_parse(&predict_cmd, argc, argv, apply, &s, &first);
    if (rc) return rc == 1 ? 0 : rc;
    if (first < argc) { fprintf(stderr, "xmc predict: error: unexpected argument '%s'\n", argv[first]); return 2; }
    if (!s.run.model) { fprintf(stderr, "xmc predict: error: --model is required\n"); return 2; }
    if (strcmp(s.format, "text") && strcmp(s.format, "matrix")) {
        fprintf(stderr, "xmc predict: error: --format must be text or matrix\n");
        return 2;
    }
    if (!!s.run.src.tsv + !!s.run.src.x + !!s.run.src.xc != 1) {
        fprintf(stderr, "xmc predict: error: give exactly one input: --test FILE.tsv, -x X.txt or --xc FILE\n");
        return 2;
    }
    xmc_error err = {0};
    xmc_classifier *clf;
    xmc_open_opts oo = {s.verify, s.verify};
    if (xmc_classifier_open(s.run.model, &oo, &clf, &err)) { cli_report("predict", &err); return 1; }
    cli_blas_warn_model(clf);
    xmc_predict_opts d = xmc_classifier_default_opts(clf);
    xmc_predict_opts opts = {s.run.beam ? s.run.beam : d.beam, s.run.k ? s.run.k : d.topk, s.run.post};
    int matrix = !strcmp(s.format, "matrix");
    if (s.run.src.tsv) {
        rc = predict_tsv(s.run.src.tsv, clf, &opts, (int)s.run.threads, matrix);
        xmc_classifier_close(clf);
        return rc;
    }
    xmc_data *data;
    if (xmc_data_read(&s.run.src, clf, &data, &err)) {
        cli_report("predict", &err);
        xmc_classifier_close(clf);
        return 1;
    }
    xmc_hit *hits;
    uint32_t *counts;
    rc = 1;
    if (cli_classify_all("predict", clf, data, &opts, (int)s.run.threads, &hits, &counts)) goto out;
    uint32_t n = xmc_data_rows(data);
    if (matrix) printf("%u %u\n", n, xmc_classifier_num_labels(clf));
    for (uint32_t r = 0; r < n; r++) print_hits(stdout, clf, hits + (size_t)r * opts.topk, counts[r], matrix);
    free(hits);
    free(counts);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    xmc_data_free(data);
    xmc_classifier_close(clf);
    return rc;
}
