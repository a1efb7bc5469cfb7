/* embed.c: `xmc embed`: one text per stdin line in, one embedding vector per stdout line out.
 *
 * Lines are read into a batch of --batch texts, embedded (xmc/embedder.h: WordPiece with vocab.txt of the
 * encoder directory or --vocab, the encoder, pooling), and each vector is printed as space-separated %.9g
 * floats, in input order. A trailing \r is dropped from each line; an empty line embeds the empty text
 * ([CLS] [SEP]). --threads sets OpenBLAS's thread count (the encoder's only threads). */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "xmc/embedder.h"

enum { O_ENCODER = 256, O_VOCAB, O_POOLING, O_NORMALIZE, O_MAXLEN, O_BATCH, O_THREADS };

static const cli_opt embed_opts[] = {
    {CLI_STRING, O_ENCODER, "encoder", 0, "DIR", 0, 0, "encoder directory (required)"},
    {CLI_STRING, O_VOCAB, "vocab", 0, "FILE", 0, 0, "WordPiece vocabulary (default DIR/vocab.txt)"},
    {CLI_STRING, O_POOLING, "pooling", 0, "cls|mean|pooler", 0, 0, "how a text's token vectors become one (default cls)"},
    {CLI_FLAG, O_NORMALIZE, "normalize", 0, NULL, 0, 0, "scale every vector to unit L2 norm"},
    {CLI_INT, O_MAXLEN, "max-length", 0, "N", 2, 1 << 20,
     "tokens per text incl. [CLS]/[SEP], longer texts are truncated (default 128)"},
    {CLI_INT, O_BATCH, "batch", 0, "N", 1, 1 << 16, "texts per forward pass (default 32)"},
    {CLI_INT, O_THREADS, "threads", 0, "N", 1, XMC_MAX_THREADS, "OpenBLAS threads (default: OpenBLAS's own, OPENBLAS_NUM_THREADS)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command embed_cmd = {
    "embed", "--encoder DIR [options] < texts.txt > vectors.txt\n"
    "\n"
    "Embeds one text per input line with a BERT-family encoder (DIR/config.json, DIR/model.safetensors)\n"
    "and prints one vector per line (space-separated floats).\n"
    "\n"
    "options:", NULL, embed_opts};

typedef struct {
    const char *dir, *vocab, *pool_name;
    int normalize, max_len, batch_size, threads;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    switch (o->id) {
    case O_ENCODER: s->dir = v; break;
    case O_VOCAB: s->vocab = v; break;
    case O_POOLING: s->pool_name = v; break;
    case O_NORMALIZE: s->normalize = 1; break;
    case O_MAXLEN: s->max_len = (int)num; break;
    case O_BATCH: s->batch_size = (int)num; break;
    case O_THREADS: s->threads = (int)num; break;
    }
    return 0;
}

typedef struct {
    char **text;
    size_t *len, *cap;
    int n, max;
} lines;

/* Embeds the n buffered lines and prints them. */
static int flush(const xmc_embedder *emb, xmc_embedder_ws *ws, lines *in, xmc_pooling pooling, const settings *s,
                 int hidden, float *out)
{
    xmc_error err = {0};
    if (xmc_embedder_embed(emb, ws, (const char *const *)in->text, in->len, in->n, s->max_len, pooling, s->normalize,
                           out, &err)) {
        cli_report("embed", &err);
        return 1;
    }
    for (int r = 0; r < in->n; r++) {
        const float *v = out + (size_t)r * hidden;
        for (int i = 0; i < hidden; i++) printf(i ? " %.9g" : "%.9g", v[i]);
        putchar('\n');
    }
    in->n = 0;
    if (ferror(stdout)) {
        fprintf(stderr, "xmc embed: error writing output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int cli_embed(int argc, char **argv)
{
    settings s = {.pool_name = "cls", .max_len = 128, .batch_size = 32};
    int first, rc = cli_parse(&embed_cmd, argc, argv, apply, &s, &first);
    if (rc) return rc == 1 ? 0 : rc;
    if (first < argc) { fprintf(stderr, "xmc embed: error: unexpected argument '%s'\n", argv[first]); return 2; }
    if (!s.dir) {
        fprintf(stderr, "xmc embed: --encoder DIR is required\n");
        cli_usage(&embed_cmd, stderr);
        return 2;
    }
    xmc_error err = {0};
    xmc_pooling pooling;
    if (xmc_pooling_parse(s.pool_name, &pooling, &err)) { cli_report("embed", &err); return 2; }
    if (s.threads) openblas_set_num_threads(s.threads);
    cli_blas_warn();

    xmc_embedder *emb = NULL;
    xmc_embedder_ws *ws = NULL;
    if (xmc_embedder_open(s.dir, s.vocab, &emb, &err)) {
        cli_report("embed", &err);
        return 1;
    }
    xmc_embedder_info info;
    xmc_embedder_get_info(emb, &info);
    if (s.max_len > info.max_positions) {
        fprintf(stderr, "xmc embed: --max-length %d is more than the model's %d positions\n", s.max_len, info.max_positions);
        rc = 2;
    } else if (pooling == XMC_POOLING_POOLER && !info.has_pooler) {
        fprintf(stderr, "xmc embed: --pooling pooler: the model has no pooler.dense weights\n");
        rc = 2;
    } else if (info.vocab_tokens > info.vocab_size) {
        fprintf(stderr, "xmc embed: vocabulary %s%s has %d tokens but the model only %d\n", s.vocab ? s.vocab : s.dir,
                s.vocab ? "" : "/vocab.txt", info.vocab_tokens, info.vocab_size);
        rc = 1;
    } else if (xmc_embedder_ws_new(emb, s.batch_size, s.max_len, &ws, &err)) {
        cli_report("embed", &err);
        rc = 1;
    }
    lines in = {0};
    in.max = s.batch_size;
    in.text = calloc((size_t)s.batch_size, sizeof *in.text);
    in.len = calloc((size_t)s.batch_size, sizeof *in.len);
    in.cap = calloc((size_t)s.batch_size, sizeof *in.cap);
    float *out = malloc((size_t)s.batch_size * (size_t)info.hidden * sizeof *out);
    if (!rc && (!in.text || !in.len || !in.cap || !out)) {
        fprintf(stderr, "xmc embed: out of memory\n");
        rc = 1;
    }
    while (!rc) {
        ssize_t n = getline(&in.text[in.n], &in.cap[in.n], stdin);
        if (n < 0) break;
        if (n && in.text[in.n][n - 1] == '\n') n--;
        if (n && in.text[in.n][n - 1] == '\r') n--;
        in.text[in.n][n] = 0;
        in.len[in.n++] = (size_t)n;
        if (in.n == in.max) rc = flush(emb, ws, &in, pooling, &s, info.hidden, out);
    }
    if (!rc && (ferror(stdin) || !feof(stdin))) { /* getline's -1 without the end: also ENOMEM on a long line */
        fprintf(stderr, "xmc embed: error reading input: %s\n", strerror(errno));
        rc = 1;
    }
    if (!rc && in.n) rc = flush(emb, ws, &in, pooling, &s, info.hidden, out);
    if (!rc && fflush(stdout)) {
        fprintf(stderr, "xmc embed: error writing output: %s\n", strerror(errno));
        rc = 1;
    }
    for (int i = 0; in.text && i < in.max; i++) free(in.text[i]);
    free(in.text);
    free(in.len);
    free(in.cap);
    free(out);
    xmc_embedder_ws_free(ws);
    xmc_embedder_close(emb);
    return rc;
}
