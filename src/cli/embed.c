/* embed.c: `xmc embed`: one text per stdin line in, one embedding vector per stdout line out.
 *
 * Lines are read into a batch of --batch texts, tokenised (WordPiece, vocab.txt of the encoder directory or
 * --vocab), run through the encoder and pooled; each vector is printed as space-separated %.9g floats, in
 * input order. A trailing \r is dropped from each line; an empty line embeds the empty text ([CLS] [SEP]).
 * --threads sets OpenBLAS's thread count (the encoder's only threads; see src/lib/bert.h). */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "cli.h"
#include "wordpiece.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xmc embed --encoder DIR [options] < texts.txt > vectors.txt\n"
            "\n"
            "Embeds one text per input line with a BERT-family encoder (DIR/config.json, DIR/model.safetensors)\n"
            "and prints one vector per line (space-separated floats).\n"
            "\n"
            "options:\n"
            "  --encoder DIR          encoder directory (required)\n"
            "  --vocab FILE           WordPiece vocabulary (default DIR/vocab.txt)\n"
            "  --pooling cls|mean|pooler   how a text's token vectors become one (default cls)\n"
            "  --normalize            scale every vector to unit L2 norm\n"
            "  --max-length N         tokens per text incl. [CLS]/[SEP], longer texts are truncated (default 128)\n"
            "  --batch N              texts per forward pass (default 32)\n"
            "  --threads N            OpenBLAS threads (default: OpenBLAS's own, OPENBLAS_NUM_THREADS)\n"
            "  --help                 this text\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "xmc embed: %s needs an integer in [%d, %d], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

typedef struct {
    char **text;
    size_t *len, *cap;
    int n, max;
} lines;

/* Embeds the n buffered lines and prints them. */
static int flush(const xmc_wordpiece *wp, const xmc_bert *bert, xmc_bert_workspace *ws, xmc_wordpiece_batch *batch,
                 lines *in, xmc_bert_pooling pooling, int normalize, int max_len, float *out)
{
    xmc_error err = {0};
    int H = xmc_bert_get_config(bert)->hidden;
    if (xmc_wordpiece_encode_batch(wp, (const char *const *)in->text, in->len, in->n, max_len, batch, &err) ||
        xmc_bert_embed(bert, ws, batch, pooling, normalize, out, &err)) {
        xmc_cli_report("embed", &err);
        return 1;
    }
    for (int r = 0; r < in->n; r++) {
        const float *v = out + (size_t)r * H;
        for (int i = 0; i < H; i++) printf(i ? " %.9g" : "%.9g", v[i]);
        putchar('\n');
    }
    in->n = 0;
    if (ferror(stdout)) {
        fprintf(stderr, "xmc embed: error writing output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int xmc_cli_embed(int argc, char **argv)
{
    const char *dir = NULL, *vocab = NULL, *pool_name = "cls";
    int normalize = 0, max_len = 128, batch_size = 32, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--normalize")) { normalize = 1; continue; }
        if (i + 1 >= argc ||
            (strcmp(a, "--encoder") && strcmp(a, "--vocab") && strcmp(a, "--pooling") && strcmp(a, "--max-length") &&
             strcmp(a, "--batch") && strcmp(a, "--threads"))) {
            fprintf(stderr, "xmc embed: %s '%s'\n", i + 1 >= argc && a[0] == '-' ? "missing value for" : "unknown option", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--encoder")) dir = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--pooling")) pool_name = v;
        else if (!strcmp(a, "--max-length") && parse_int(a, v, 2, 1 << 20, &max_len)) return 2;
        else if (!strcmp(a, "--batch") && parse_int(a, v, 1, 1 << 16, &batch_size)) return 2;
        else if (!strcmp(a, "--threads") && parse_int(a, v, 1, 1024, &threads)) return 2;
    }
    if (!dir) {
        fprintf(stderr, "xmc embed: --encoder DIR is required\n");
        usage(stderr);
        return 2;
    }
    xmc_error err = {0};
    xmc_bert_pooling pooling;
    if (xmc_bert_pooling_parse(pool_name, &pooling, &err)) { xmc_cli_report("embed", &err); return 2; }
    if (threads) openblas_set_num_threads(threads);

    char vocab_path[4096];
    if (!vocab) {
        snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", dir);
        vocab = vocab_path;
    }
    xmc_bert *bert = NULL;
    xmc_wordpiece *wp = NULL;
    xmc_bert_workspace *ws = NULL;
    if (xmc_bert_load(dir, &bert, &err) || xmc_wordpiece_load(vocab, &wp, &err)) {
        xmc_cli_report("embed", &err);
        xmc_bert_free(bert);
        return 1;
    }
    int rc = 0;
    const xmc_bert_config *cfg = xmc_bert_get_config(bert);
    if (max_len > cfg->max_positions) {
        fprintf(stderr, "xmc embed: --max-length %d is more than the model's %d positions\n", max_len, cfg->max_positions);
        rc = 2;
    } else if (pooling == XMC_BERT_POOL_POOLER && !xmc_bert_has_pooler(bert)) {
        fprintf(stderr, "xmc embed: --pooling pooler: the model has no pooler.dense weights\n");
        rc = 2;
    } else if (xmc_wordpiece_size(wp) > cfg->vocab_size) {
        fprintf(stderr, "xmc embed: vocabulary %s has %d tokens but the model only %d\n", vocab, xmc_wordpiece_size(wp),
                cfg->vocab_size);
        rc = 1;
    } else if (xmc_bert_workspace_new(bert, batch_size, max_len, &ws, &err)) {
        xmc_cli_report("embed", &err);
        rc = 1;
    }
    lines in = {0};
    in.max = batch_size;
    in.text = calloc((size_t)batch_size, sizeof *in.text);
    in.len = calloc((size_t)batch_size, sizeof *in.len);
    in.cap = calloc((size_t)batch_size, sizeof *in.cap);
    float *out = malloc((size_t)batch_size * (size_t)cfg->hidden * sizeof *out);
    if (!rc && (!in.text || !in.len || !in.cap || !out)) {
        fprintf(stderr, "xmc embed: out of memory\n");
        rc = 1;
    }
    xmc_wordpiece_batch batch = {0};
    while (!rc) {
        ssize_t n = getline(&in.text[in.n], &in.cap[in.n], stdin);
        if (n < 0) break;
        if (n && in.text[in.n][n - 1] == '\n') n--;
        if (n && in.text[in.n][n - 1] == '\r') n--;
        in.text[in.n][n] = 0;
        in.len[in.n++] = (size_t)n;
        if (in.n == in.max) rc = flush(wp, bert, ws, &batch, &in, pooling, normalize, max_len, out);
    }
    if (!rc && ferror(stdin)) {
        fprintf(stderr, "xmc embed: error reading input: %s\n", strerror(errno));
        rc = 1;
    }
    if (!rc && in.n) rc = flush(wp, bert, ws, &batch, &in, pooling, normalize, max_len, out);
    if (!rc && fflush(stdout)) {
        fprintf(stderr, "xmc embed: error writing output: %s\n", strerror(errno));
        rc = 1;
    }
    for (int i = 0; in.text && i < in.max; i++) free(in.text[i]);
    free(in.text);
    free(in.len);
    free(in.cap);
    free(out);
    xmc_wordpiece_batch_free(&batch);
    xmc_bert_workspace_free(ws);
    xmc_wordpiece_free(wp);
    xmc_bert_free(bert);
    return rc;
}
