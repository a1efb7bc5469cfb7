/* xrt.c: XR-Transformer fine-tuning level by level, with checkpoints (see xrt.h).
 *
 * Sizes: n records, T tokens of one row at most (seq), B records per step, H hidden, K clusters of the level,
 * A the level's padded active width. Memory besides the encoder's three arenas (weights, gradients, two AdamW
 * moments) and bert.h's training workspace (B x seq): the level's active sets (n x A entries), the head
 * (K x (H + 1)) with its gradient and two moments. No B x K score matrix is ever formed: a step scores B x A. */
#include "xrt.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bert_opt.h"
#include "head.h"
#include "pifa.h"
#include "safetensors.h"
#include "wordpiece.h"
#include "xlinear.h"
#include "xlinear_train.h"
#include "xmc/rng.h"

void xmci_xrt_opts_default(xmci_xrt_opts *o)
{
    memset(o, 0, sizeof *o);
    xmci_encoder_config_default(&o->encoder);
    xmci_tfidf_config_default(&o->tfidf);
    xmci_tree_params_default(&o->tree);
    o->tree.nr_splits = 16;
    o->tree.max_leaf_size = 16;
    o->batch = 32;
    o->epochs = 1;
    o->lr = 1e-4f;
    o->max_grad_norm = 1.0f;
    o->adamw = XMCI_ADAMW_HF;
    o->weighted = 1;
    o->max_clusters = 32768;
    o->threads = 2;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- levels: targets and active sets -------------------------------------------------------------------- */

typedef struct xrt_level {
    uint32_t K;           /* clusters */
    const uint32_t *parent; /* K: the cluster's parent in the level above; NULL for level 0 */
    xmci_csr active;      /* n x K: the active set of each record, positives (value = label count) first */
    int width;            /* longest row */
} xrt_level;

/* anc[l] = the node of layer t above label l, for every layer; anc is depth x L. */
static void ancestors(const xmci_tree *tree, uint32_t L, uint32_t *anc)
{
    uint32_t d = tree->depth;
    for (uint32_t l = 0; l < L; l++) anc[(size_t)(d - 1) * L + l] = l;
    for (uint32_t t = d - 1; t > 0; t--)
        for (uint32_t l = 0; l < L; l++) anc[(size_t)(t - 1) * L + l] = tree->parent[t][anc[(size_t)t * L + l]];
}

/* Active sets of layer t: every cluster at t = 0, else the children of the record's positive parents and of its
 * k man parents (n x k, or NULL). */
static xmc_err build_level(const xmci_tree *tree, const xmci_csr *y, const uint32_t *anc, uint32_t t,
                           const uint32_t *man, int k, xmci_csr *active, int *width, xmc_error *err)
{
    const uint32_t L = y->cols, K = tree->nr_nodes[t], Kp = t ? tree->nr_nodes[t - 1] : 1;
    const uint32_t *parent = t ? tree->parent[t] : NULL;
    *width = 0;
    float *cnt = calloc(K, sizeof *cnt);
    unsigned char *seen = calloc(Kp, 1);
    uint32_t *pos = malloc(K * sizeof *pos), *par = malloc(((size_t)Kp + (size_t)k) * sizeof *par);
    uint64_t *cptr = calloc((size_t)Kp + 1, sizeof *cptr);
    uint32_t *child = malloc(K * sizeof *child);
    xmci_csr_builder b;
    xmc_err rc = xmci_csr_builder_init(&b, K, err);
    if (rc) goto out;
    if (!cnt || !seen || !pos || !par || !cptr || !child) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory for level %u", t);
        goto out;
    }
    /* children of each parent, ascending (counting sort on the parent) */
    for (uint32_t j = 0; j < K; j++) cptr[(t ? parent[j] : 0) + 1]++;
    for (uint32_t p = 0; p < Kp; p++) cptr[p + 1] += cptr[p];
    {
        uint64_t *fill = malloc(((size_t)Kp + 1) * sizeof *fill);
        if (!fill) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory"); goto out; }
        memcpy(fill, cptr, ((size_t)Kp + 1) * sizeof *fill);
        for (uint32_t j = 0; j < K; j++) child[fill[t ? parent[j] : 0]++] = j;
        free(fill);
    }
    const uint32_t *at = anc + (size_t)t * L, *above = t ? anc + (size_t)(t - 1) * L : NULL;
    for (uint32_t i = 0; i < y->rows; i++) {
        uint32_t npos = 0, npar = 0;
        for (uint64_t e = y->indptr[i]; e < y->indptr[i + 1]; e++) {
            uint32_t c = at[y->indices[e]];
            if (cnt[c] == 0) pos[npos++] = c;
            cnt[c] += 1;
            uint32_t p = above ? above[y->indices[e]] : 0;
            if (above && !seen[p]) { seen[p] = 1; par[npar++] = p; }
        }
        for (int q = 0; above && man && q < k; q++) {
            const uint32_t p = man[(size_t)i * (size_t)k + (size_t)q];
            if (p >= Kp) {
                rc = xmc_error_set(err, XMC_ERR_RANGE, "xr-transformer: negative parent %u of record %u outside level "
                                   "%u's %u clusters", p, i, t - 1, Kp);
                break;
            }
            if (!seen[p]) { seen[p] = 1; par[npar++] = p; }
        }
        for (uint32_t q = 0; q < npos && !rc; q++) rc = xmci_csr_builder_push(&b, pos[q], cnt[pos[q]], err);
        if (!above) { /* level 0: every cluster */
            for (uint32_t j = 0; j < K && !rc; j++)
                if (cnt[j] == 0) rc = xmci_csr_builder_push(&b, j, 0, err);
        } else {
            for (uint32_t q = 0; q < npar && !rc; q++)
                for (uint64_t e = cptr[par[q]]; e < cptr[par[q] + 1] && !rc; e++)
                    if (cnt[child[e]] == 0) rc = xmci_csr_builder_push(&b, child[e], 0, err);
        }
        for (uint32_t q = 0; q < npos; q++) cnt[pos[q]] = 0;
        for (uint32_t q = 0; q < npar; q++) seen[par[q]] = 0;
        if (!rc) rc = xmci_csr_builder_end_row(&b, err);
        if (rc) goto out;
        int len = (int)(b.nnz - b.m.indptr[i]);
        if (len > *width) *width = len;
    }
    xmci_csr_builder_finish(&b, active);
    active->cols = K;
out:
    xmci_csr_builder_free(&b);
    free(cnt);
    free(seen);
    free(pos);
    free(par);
    free(cptr);
    free(child);
    return rc;
}

/* Level t's teacher-forced active sets (matcher-aware negatives are added when the level starts). */
static xmc_err level_make(const xmci_tree *tree, const xmci_csr *y, const uint32_t *anc, uint32_t t, xrt_level *lv,
                          xmc_error *err)
{
    lv->K = tree->nr_nodes[t];
    lv->parent = t ? tree->parent[t] : NULL;
    return build_level(tree, y, anc, t, NULL, 0, &lv->active, &lv->width, err);
}

xmc_err xmci_xrt_active_sets(const xmci_tree *tree, const xmci_csr *y, uint32_t t, const uint32_t *man, int k,
                             xmci_csr *active, int *width, xmc_error *err)
{
    if (t < 1 || t >= tree->depth || k < 0 || (k > 0 && !man) || y->cols != tree->nr_nodes[tree->depth - 1])
        return xmc_error_set(err, XMC_ERR_RANGE, "xr-transformer: level %u of a %u-level tree, k %d, %u labels", t,
                             tree->depth, k, y->cols);
    uint32_t *anc = malloc((size_t)tree->depth * y->cols * sizeof *anc);
    if (!anc) return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
    ancestors(tree, y->cols, anc);
    xmc_err rc = build_level(tree, y, anc, t, man, k, active, width, err);
    free(anc);
    return rc;
}

/* ---- training state and its checkpoint ------------------------------------------------------------------ */

typedef struct state {
    xmci_bert_params *params, *grads;
    xmci_adamw *enc_opt, *hw_opt, *hb_opt; /* head optimisers: weights (K x H) and biases (K) */
    xmci_head head;                        /* w, b owned */
    float *dw, *db;                        /* head gradients, zero outside the rows a step touched */
    uint32_t level, step;
} state;

static void head_free(state *s)
{
    free(s->head.w);
    free(s->head.b);
    free(s->dw);
    free(s->db);
    xmci_adamw_free(s->hw_opt);
    xmci_adamw_free(s->hb_opt);
    s->head.w = s->head.b = s->dw = s->db = NULL;
    s->hw_opt = s->hb_opt = NULL;
}

/* A head of K clusters with zero gradients and fresh optimisers; its weights are the caller's to set. */
static xmc_err head_alloc(state *s, uint32_t K, const xmci_xrt_opts *o, xmc_error *err)
{
    const size_t H = (size_t)s->params->cfg.hidden;
    head_free(s);
    s->head.labels = (int)K;
    s->head.hidden = (int)H;
    s->head.w = malloc(K * H * sizeof(float));
    s->head.b = malloc(K * sizeof(float));
    s->dw = calloc(K * H, sizeof(float));
    s->db = calloc(K, sizeof(float));
    if (!s->head.w || !s->head.b || !s->dw || !s->db)
        return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory for a head of %u clusters", K);
    xmc_err rc = xmci_adamw_new(K * H, o->adamw, 0.9f, 0.999f, 1e-8f, &s->hw_opt, err);
    if (!rc) rc = xmci_adamw_new(K, o->adamw, 0.9f, 0.999f, 1e-8f, &s->hb_opt, err);
    return rc;
}

static void reset_opt(xmci_adamw *opt)
{
    memset(opt->m, 0, opt->n * sizeof *opt->m);
    memset(opt->v, 0, opt->n * sizeof *opt->v);
    opt->t = 0;
}

/* One array into the file and the running checksum. */
static int put(FILE *f, XXH64_state_t *h, const void *p, size_t bytes)
{
    XXH64_update(h, p, bytes);
    return fwrite(p, 1, bytes, f) == bytes ? 0 : -1;
}

static void ckpt_path(const char *dir, char *path, size_t size, const char *suffix)
{
    snprintf(path, size, "%s/checkpoint.bin%s", dir, suffix);
}

/* A file written through tmp, checksummed as it goes: out_open starts it, out_close appends the xxh64, syncs and
 * renames it to path (bad: a write already failed); on any failure tmp is removed and path left as it was. */
static xmc_err out_open(const char *tmp, FILE **f, XXH64_state_t **h, xmc_error *err)
{
    if (!(*f = fopen(tmp, "wb"))) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!(*h = XXH64_createState())) {
        fclose(*f);
        unlink(tmp);
        return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
    }
    XXH64_reset(*h, 0);
    return XMC_OK;
}

static xmc_err out_close(FILE *f, XXH64_state_t *h, int bad, const char *tmp, const char *path, const char *what,
                         xmc_error *err)
{
    uint64_t sum = XXH64_digest(h);
    XXH64_freeState(h);
    bad |= fwrite(&sum, 1, 8, f) != 8;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return xmc_error_set(err, XMC_ERR_IO, "%s: cannot write the %s: %s", path, what, strerror(e));
    }
    return XMC_OK;
}

static xmc_err ckpt_save(const state *s, const char *dir, uint64_t fingerprint, xmc_error *err)
{
    char path[4200], tmp[4210];
    ckpt_path(dir, path, sizeof path, "");
    ckpt_path(dir, tmp, sizeof tmp, ".tmp");
    FILE *f;
    XXH64_state_t *h;
    xmc_err rc = out_open(tmp, &f, &h, err);
    if (rc) return rc;
    const uint64_t n = s->params->n, K = (uint64_t)s->head.labels, H = (uint64_t)s->head.hidden;
    const uint32_t k32 = (uint32_t)K, h32 = (uint32_t)H;
    int bad = put(f, h, "XMCXRT01", 8) | put(f, h, &fingerprint, 8) | put(f, h, &s->level, 4) | put(f, h, &s->step, 4) |
              put(f, h, &n, 8) | put(f, h, &k32, 4) | put(f, h, &h32, 4) | put(f, h, &s->enc_opt->t, 8) |
              put(f, h, &s->hw_opt->t, 8) | put(f, h, s->params->mem, n * 4) | put(f, h, s->enc_opt->m, n * 4) |
              put(f, h, s->enc_opt->v, n * 4) | put(f, h, s->head.w, K * H * 4) | put(f, h, s->head.b, K * 4) |
              put(f, h, s->hw_opt->m, K * H * 4) | put(f, h, s->hw_opt->v, K * H * 4) | put(f, h, s->hb_opt->m, K * 4) |
              put(f, h, s->hb_opt->v, K * 4);
    return out_close(f, h, bad, tmp, path, "checkpoint", err);
}

/* Reads the checkpoint into s (whose encoder arenas exist); allocates the head it holds. *found = 0 when there
 * is no checkpoint file. */
static xmc_err ckpt_load(state *s, const char *dir, uint64_t fingerprint, const xmci_xrt_opts *o, int *found,
                         xmc_error *err)
{
    char path[4200];
    ckpt_path(dir, path, sizeof path, "");
    *found = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return XMC_OK;
        return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    }
    *found = 1;
    unsigned char *buf = NULL;
    long size = -1;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return xmc_error_set(err, XMC_ERR_IO, "%s: not a regular file", path);
    }
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    xmc_err rc = XMC_OK;
    if (size < 64 + 8) { rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: truncated checkpoint (%ld bytes)", path, size); goto out; }
    buf = malloc((size_t)size);
    if (!buf) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory for %ld bytes", path, size); goto out; }
    rewind(f);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) { rc = xmc_error_set(err, XMC_ERR_IO, "%s: read failed", path); goto out; }
    uint64_t sum, fp, n, et, ht;
    uint32_t level, step, K, H;
    memcpy(&sum, buf + size - 8, 8);
    memcpy(&fp, buf + 8, 8);
    memcpy(&level, buf + 16, 4);
    memcpy(&step, buf + 20, 4);
    memcpy(&n, buf + 24, 8);
    memcpy(&K, buf + 32, 4);
    memcpy(&H, buf + 36, 4);
    memcpy(&et, buf + 40, 8);
    memcpy(&ht, buf + 48, 8);
    if (memcmp(buf, "XMCXRT01", 8)) { rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: not an xmc checkpoint", path); goto out; }
    if (XXH64(buf, (size_t)size - 8, 0) != sum) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: checksum mismatch (damaged checkpoint)", path);
        goto out;
    }
    if (fp != fingerprint) {
        rc = xmc_error_set(err, XMC_ERR_ARG, "%s: checkpoint of another run (other data, encoder or options)", path);
        goto out;
    }
    if (n != s->params->n || H != (uint32_t)s->params->cfg.hidden ||
        (uint64_t)size != 56 + 12 * n + 12 * (uint64_t)K * H + 12 * (uint64_t)K + 8) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: sizes disagree with the encoder", path);
        goto out;
    }
    if ((rc = head_alloc(s, K, o, err))) goto out;
    const unsigned char *p = buf + 56;
#define TAKE(dst, bytes) (memcpy((dst), p, (bytes)), p += (bytes))
    TAKE(s->params->mem, n * 4);
    TAKE(s->enc_opt->m, n * 4);
    TAKE(s->enc_opt->v, n * 4);
    TAKE(s->head.w, (size_t)K * H * 4);
    TAKE(s->head.b, (size_t)K * 4);
    TAKE(s->hw_opt->m, (size_t)K * H * 4);
    TAKE(s->hw_opt->v, (size_t)K * H * 4);
    TAKE(s->hb_opt->m, (size_t)K * 4);
    TAKE(s->hb_opt->v, (size_t)K * 4);
#undef TAKE
    s->enc_opt->t = (int64_t)et;
    s->hw_opt->t = s->hb_opt->t = (int64_t)ht;
    s->level = level;
    s->step = step;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* ---- matcher-aware negatives of a level: work_dir/negatives.bin (layout in xrt.h) ------------------------ */

static xmc_err neg_save(const char *dir, uint64_t fingerprint, uint32_t level, uint32_t k, uint64_t n,
                        const uint32_t *man, xmc_error *err)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof path, "%s/negatives.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f;
    XXH64_state_t *h;
    xmc_err rc = out_open(tmp, &f, &h, err);
    if (rc) return rc;
    int bad = put(f, h, "XMCXRN01", 8) | put(f, h, &fingerprint, 8) | put(f, h, &level, 4) | put(f, h, &k, 4) |
              put(f, h, &n, 8) | put(f, h, man, (size_t)n * k * 4);
    return out_close(f, h, bad, tmp, path, "negatives", err);
}

/* Reads the man parents of level into man (n x k); any disagreement is XMC_ERR_CORRUPT. */
static xmc_err neg_load(const char *dir, uint64_t fingerprint, uint32_t level, uint32_t k, uint64_t n, uint32_t *man,
                        xmc_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/negatives.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: %s (the checkpoint's level needs it)", path, strerror(errno));
    const size_t size = 32 + (size_t)n * k * 4 + 8;
    unsigned char *buf = malloc(size + 1);
    xmc_err rc = XMC_OK;
    if (!buf) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path); goto out; }
    if (fread(buf, 1, size + 1, f) != size) { rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: not %zu bytes", path, size); goto out; }
    uint64_t sum, fp, nn;
    uint32_t lv, kk;
    memcpy(&fp, buf + 8, 8);
    memcpy(&lv, buf + 16, 4);
    memcpy(&kk, buf + 20, 4);
    memcpy(&nn, buf + 24, 8);
    memcpy(&sum, buf + size - 8, 8);
    if (memcmp(buf, "XMCXRN01", 8) || XXH64(buf, size - 8, 0) != sum || fp != fingerprint || lv != level || kk != k ||
        nn != n) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: damaged, or not the negatives of level %u of this run", path, level);
        goto out;
    }
    memcpy(man, buf + 32, (size_t)n * k * 4);
out:
    free(buf);
    fclose(f);
    return rc;
}

/* ---- the encoder directory ------------------------------------------------------------------------------ */

static xmc_err copy_file(const char *from, const char *to, xmc_error *err)
{
    char tmp[4210];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *in = fopen(from, "rb"), *out = in ? fopen(tmp, "wb") : NULL;
    if (!in || !out) {
        int e = errno;
        if (in) fclose(in);
        return xmc_error_set(err, XMC_ERR_IO, "%s: %s", in ? tmp : from, strerror(e));
    }
    char buf[65536];
    size_t got;
    int bad = 0;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, got, out) != got;
    bad |= ferror(in) != 0;
    fclose(in);
    bad |= fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, to)) {
        int e = errno;
        unlink(tmp);
        return xmc_error_set(err, XMC_ERR_IO, "copying %s to %s: %s", from, to, strerror(e));
    }
    return XMC_OK;
}

static xmc_err write_encoder(const xmci_bert_params *params, const xmci_xrt_opts *o, const char *dir, xmc_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", dir, strerror(errno));
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/config.json", o->encoder.dir);
    snprintf(to, sizeof to, "%s/config.json", dir);
    xmc_err rc = copy_file(from, to, err);
    if (rc) return rc;
    if (o->encoder.vocab) snprintf(from, sizeof from, "%s", o->encoder.vocab);
    else snprintf(from, sizeof from, "%s/vocab.txt", o->encoder.dir);
    snprintf(to, sizeof to, "%s/vocab.txt", dir);
    if ((rc = copy_file(from, to, err))) return rc;
    xmci_safetensors_entry *e = calloc((size_t)params->n_tensors, sizeof *e);
    if (!e) return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
    for (int i = 0; i < params->n_tensors; i++) {
        const xmci_bert_tensor *t = &params->tensor[i];
        e[i] = (xmci_safetensors_entry){t->name, t->cols ? 2 : 1, {t->rows, t->cols}, params->mem + t->offset};
    }
    snprintf(to, sizeof to, "%s/model.safetensors", dir);
    rc = xmci_safetensors_write(to, e, params->n_tensors, err);
    free(e);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------------------- */

/* Standard normal from two uniform draws (Box-Muller). */
static double normal(xmc_rng *r)
{
    double u1 = ((double)xmc_rng_next(r) + 1.0) / 4294967297.0, u2 = (double)xmc_rng_next(r) / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* HF's linear schedule: update k (from 0) gets lr k / warmup during warm-up, then decays to 0 at total. */
static float schedule(const xmci_xrt_opts *o, int k, int total)
{
    if (k < o->warmup) return o->lr * (float)k / (float)o->warmup;
    if (total <= o->warmup) return 0;
    double f = (double)(total - k) / (double)(total - o->warmup);
    return (float)(o->lr * (f > 0 ? f : 0));
}

/* The work directory is a directory this process can write: found now, not when the first checkpoint is written
 * after a level's work. */
static xmc_err work_dir_check(const char *dir, xmc_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return xmc_error_set(err, XMC_ERR_IO, "%s: not a directory", dir);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.xmc-probe-%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "wb");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "%s: cannot write there: %s", dir, strerror(errno));
    fclose(f);
    unlink(probe);
    snprintf(probe, sizeof probe, "%s/encoder", dir);
    if (stat(probe, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return xmc_error_set(err, XMC_ERR_IO, "%s: not a directory (the fine-tuned encoder goes there)", probe);
    return XMC_OK;
}

/* Two runs on one work directory would write one checkpoint through one temporary file: the second is refused
 * while the first holds WORK/lock (flock: released when the process ends, however it ends). */
static xmc_err work_dir_lock(const char *dir, int *fd, xmc_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return xmc_error_set(err, e == EWOULDBLOCK ? XMC_ERR_ARG : XMC_ERR_IO, "%s: %s", dir,
                             e == EWOULDBLOCK ? "another xr-transformer run is using it" : strerror(e));
    }
    return XMC_OK;
}

/* The vocabulary fits the encoder's embedding table (as the featurizer checks it when it opens an encoder). */
static xmc_err vocab_check(const xmci_bert *bert, const xmci_wordpiece *wp, const char *vocab, const char *dir,
                           xmc_error *err)
{
    const xmci_bert_config *bc = xmci_bert_get_config(bert);
    if (xmci_wordpiece_size(wp) > bc->vocab_size)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s has %d tokens, more than %s/config.json's vocab_size %d", vocab,
                             xmci_wordpiece_size(wp), dir, bc->vocab_size);
    return XMC_OK;
}

/* Pooling through the pooler needs its weights: said now, naming the encoder, not at the first step. */
static xmc_err pooler_check(const xmci_bert *bert, xmci_bert_pooling pooling, const char *dir, xmc_error *err)
{
    if (pooling == XMCI_BERT_POOL_POOLER && !xmci_bert_has_pooler(bert))
        return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: pooling 'pooler' but the encoder has no pooler.dense weights",
                             dir);
    return XMC_OK;
}

static uint64_t fingerprint(const xmci_wordpiece_batch *tok, const xmci_csr *y, const xmci_tree *tree,
                            const xmci_bert_params *params, const xmci_xrt_opts *o)
{
    XXH64_state_t *h = XXH64_createState();
    if (!h) return 0;
    XXH64_reset(h, 0x58525431);
    for (int r = 0; r < tok->n; r++) XXH64_update(h, tok->ids + (size_t)r * tok->seq, (size_t)tok->len[r] * 4);
    XXH64_update(h, y->indptr, ((size_t)y->rows + 1) * sizeof *y->indptr);
    XXH64_update(h, y->indices, xmci_csr_nnz(y) * sizeof *y->indices);
    for (uint32_t t = 0; t < tree->depth; t++) {
        XXH64_update(h, &tree->nr_nodes[t], 4);
        XXH64_update(h, tree->parent[t], (size_t)tree->nr_nodes[t] * 4);
    }
    XXH64_update(h, params->mem, params->n * sizeof *params->mem);
    const xmci_bert_config *c = &params->cfg; /* what config.json says beyond the weights' shapes */
    const double arch[] = {c->vocab_size, c->hidden, c->layers, c->heads, c->intermediate, c->max_positions,
                           c->type_vocab, c->layer_norm_eps, c->act};
    XXH64_update(h, arch, sizeof arch);
    const double knobs[] = {o->batch, o->epochs, o->max_steps, o->lr, o->warmup, o->weight_decay, o->max_grad_norm,
                            o->adamw, o->weighted, o->max_clusters, o->seed, o->encoder.pooling, o->encoder.max_len};
    XXH64_update(h, knobs, sizeof knobs);
    if (o->man_topk > 0) { /* hashed only when on, so that a tfn run keeps the fingerprint it had before man */
        const double man[] = {1, o->man_topk};
        XXH64_update(h, man, sizeof man);
    }
    if (o->dropout > 0) { /* the same: a run without dropout keeps its fingerprint */
        const double drop[] = {2, o->dropout};
        XXH64_update(h, drop, sizeof drop);
    }
    if (o->bootstrap != XMCI_XRT_INHERIT) { /* and one with the inherited head keeps its own */
        const double boot[] = {3, o->bootstrap};
        XXH64_update(h, boot, sizeof boot);
    }
    if (o->head_lr > 0) { /* and one whose head learns at lr */
        const double hlr[] = {4, o->head_lr};
        XXH64_update(h, hlr, sizeof hlr);
    }
    uint64_t d = XXH64_digest(h);
    XXH64_freeState(h);
    return d;
}

typedef struct run {
    const xmci_xrt_opts *o;
    const xmci_wordpiece_batch *tok;
    xmci_bert_train *train;
    state *s;
    uint64_t fp;
    int B;            /* rows of train's workspace */
    uint64_t batch_cap; /* entries batch can hold */
    /* per step */
    int32_t *ids;
    int *lens;
    float *pooled, *d_pooled;
    xmci_csr batch;   /* B x K view-sized buffers */
    uint32_t *touched;
    unsigned char *mark;
    float **bufs;
    size_t *blens;
    xmci_bert_opt *opt; /* the encoder's step: zeroing, clipping, AdamW, the word table by rows */
} run;

/* One update: forward, head loss, backward, clipping, both optimisers. */
static xmc_err step(run *R, const xrt_level *lv, const uint32_t *rows, int B, float lr, uint64_t drop_seed,
                    double *loss, size_t *tokens, xmc_error *err)
{
    const xmci_xrt_opts *o = R->o;
    state *s = R->s;
    const int H = s->head.hidden, T = R->tok->seq;
    *tokens = 0;
    /* the batch's active rows, and its token rows packed at stride T */
    R->batch.rows = (uint32_t)B;
    R->batch.cols = lv->K;
    R->batch.indptr[0] = 0;
    uint64_t q = 0;
    uint32_t ntouched = 0;
    for (int i = 0; i < B; i++) {
        const uint32_t r = rows[i];
        memcpy(R->ids + (size_t)i * T, R->tok->ids + (size_t)r * T, (size_t)T * sizeof *R->ids);
        R->lens[i] = R->tok->len[r];
        *tokens += (size_t)R->lens[i];
        for (uint64_t e = lv->active.indptr[r]; e < lv->active.indptr[r + 1]; e++, q++) {
            const uint32_t j = lv->active.indices[e];
            R->batch.indices[q] = j;
            R->batch.data[q] = lv->active.data[e];
            if (!R->mark[j]) { R->mark[j] = 1; R->touched[ntouched++] = j; }
        }
        R->batch.indptr[i + 1] = q;
    }
    xmc_err rc = xmci_bert_train_set_dropout(R->train, o->dropout, drop_seed, err);
    if (!rc)
        rc = xmci_bert_train_forward(s->params, R->train, R->ids, NULL, T, R->lens, B, o->encoder.pooling, R->pooled,
                                     err);
    if (!rc) rc = xmci_head_loss(&s->head, R->pooled, &R->batch, lv->width, o->weighted, loss, NULL, NULL, R->d_pooled,
                                 s->dw, s->db, err);
    if (!rc) {
        xmci_bert_opt_zero(R->opt, s->grads);
        xmci_bert_opt_rows(R->opt, R->ids, T, R->lens, B);
        rc = xmci_bert_train_backward(s->params, R->train, R->d_pooled, s->grads, err);
    }
    if (!rc && !isfinite(*loss))
        rc = xmc_error_set(err, XMC_ERR_RANGE, "the loss is not finite (%g)", *loss);
    if (!rc) {
        const double gn = xmci_bert_opt_clip(R->opt, s->grads, o->max_grad_norm);
        if (!isfinite(gn)) rc = xmc_error_set(err, XMC_ERR_RANGE, "the encoder's gradient norm is not finite (%g)", gn);
        /* the head's norm over the rows it touched: the other rows' gradients are zero */
        for (uint32_t k = 0; k < ntouched; k++) {
            const uint32_t j = R->touched[k];
            R->bufs[2 * k] = s->dw + (size_t)j * H;
            R->blens[2 * k] = (size_t)H;
            R->bufs[2 * k + 1] = s->db + j;
            R->blens[2 * k + 1] = 1;
        }
        const double hn = xmci_clip_grad_norm(R->bufs, R->blens, (int)(2 * ntouched), o->max_grad_norm, NULL);
        if (!rc && !isfinite(hn)) rc = xmc_error_set(err, XMC_ERR_RANGE, "the head's gradient norm is not finite (%g)", hn);
    }
    if (!rc) {
        xmci_adamw_next(s->enc_opt);
        rc = xmci_bert_opt_update(R->opt, s->enc_opt, s->params, s->grads, lr, o->weight_decay, err);
        xmci_adamw_next(s->hw_opt);
        xmci_adamw_next(s->hb_opt);
        /* the head's rate follows the same schedule, scaled */
        const float hlr = o->head_lr > 0 ? (float)((double)lr * o->head_lr / o->lr) : lr;
        if (!rc)
            rc = xmci_adamw_update_rows(s->hw_opt, 0, s->head.w, s->dw, (size_t)H, R->touched, ntouched, hlr, 0, err);
        if (!rc) rc = xmci_adamw_update_rows(s->hb_opt, 0, s->head.b, s->db, 1, R->touched, ntouched, hlr, 0, err);
    }
    for (uint32_t k = 0; k < ntouched; k++) {
        const uint32_t j = R->touched[k];
        memset(s->dw + (size_t)j * H, 0, (size_t)H * sizeof *s->dw);
        s->db[j] = 0;
        R->mark[j] = 0;
    }
    return rc;
}

/* Pooled embeddings (B x hidden, into out) of training records first .. first + B - 1 as the encoder predicts
 * (the training forward without dropout: the caller sets dropout 0 once before a pass over the records). */
static xmc_err embed_rows(run *R, int first, int B, float *out, xmc_error *err)
{
    const int T = R->tok->seq;
    memcpy(R->ids, R->tok->ids + (size_t)first * T, (size_t)B * T * sizeof *R->ids);
    for (int i = 0; i < B; i++) R->lens[i] = R->tok->len[first + i];
    return xmci_bert_train_forward(R->s->params, R->train, R->ids, NULL, T, R->lens, B, R->o->encoder.pooling, out, err);
}

/* man (n x k): for each record, the k clusters of the current head (the level above the one to train) that the
 * current encoder and head score highest, best first, ties to the lower index; the training forward in batches
 * of R->B rows, every cluster scored (the level has at most max_clusters). */
static xmc_err man_predict(run *R, int k, uint32_t *man, xmc_error *err)
{
    const xmci_head *head = &R->s->head;
    const int H = head->hidden, K = head->labels, n = R->tok->n;
    float *scores = malloc((size_t)R->B * (size_t)K * sizeof *scores), *best = malloc((size_t)k * sizeof *best);
    if (!scores || !best) {
        free(scores);
        free(best);
        return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory for %d x %d scores", R->B, K);
    }
    xmc_err rc = xmci_bert_train_set_dropout(R->train, 0.0f, 0, err); /* the model as it predicts */
    for (int first = 0; first < n && !rc; first += R->B) {
        const int B = n - first < R->B ? n - first : R->B;
        if ((rc = embed_rows(R, first, B, R->pooled, err))) break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, K, H, 1.0f, R->pooled, H, head->w, H, 0.0f, scores, K);
        for (int i = 0; i < B; i++) {
            const float *row = scores + (size_t)i * K;
            uint32_t *top = man + (size_t)(first + i) * (size_t)k;
            int have = 0;
            for (int j = 0; j < K; j++) { /* insertion into the sorted top k; a tie keeps the earlier cluster */
                const float v = row[j] + head->b[j];
                if (have == k && !(v > best[k - 1])) continue;
                int at = have < k ? have++ : k - 1;
                while (at > 0 && v > best[at - 1]) {
                    best[at] = best[at - 1];
                    top[at] = top[at - 1];
                    at--;
                }
                best[at] = v;
                top[at] = (uint32_t)j;
            }
        }
    }
    free(scores);
    free(best);
    return rc;
}

/* Updates per level. */
static int level_steps(const xmci_xrt_opts *o, uint32_t n)
{
    const int64_t spe = ((int64_t)n + o->batch - 1) / o->batch;
    const int64_t total = o->max_steps > 0 ? o->max_steps : (int64_t)o->epochs * spe;
    return total < INT_MAX ? (int)total : INT_MAX; /* xmci_xrt_train refuses more before it starts */
}

/* Level t's active sets with matcher-aware negatives: the man parents predicted by the current encoder and head
 * (the level above's, trained) and saved, or, for a level resumed mid-way, read back from the file the level
 * started with. The batch buffer grows to the level's width. */
static xmc_err level_man(run *R, const xmci_tree *tree, const xmci_csr *y, const uint32_t *anc, int t, int resumed,
                         xrt_level *lv, xmc_error *err)
{
    const xmci_xrt_opts *o = R->o;
    const uint32_t n = y->rows, Kp = tree->nr_nodes[t - 1];
    const int k = (uint32_t)o->man_topk < Kp ? o->man_topk : (int)Kp;
    uint32_t *man = malloc((size_t)n * (size_t)k * sizeof *man);
    if (!man) return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory for the negatives");
    xmc_err rc;
    if (resumed) {
        rc = neg_load(o->work_dir, R->fp, (uint32_t)t, (uint32_t)k, n, man, err);
    } else {
        if (o->progress) {
            char what[160];
            snprintf(what, sizeof what, "xr-transformer level %d: matcher-aware negatives (top %d of level %d's %u clusters)",
                     t + 1, k, t, Kp);
            o->progress(o->progress_ctx, what, 0, 1);
        }
        rc = man_predict(R, k, man, err);
        if (!rc) rc = neg_save(o->work_dir, R->fp, (uint32_t)t, (uint32_t)k, n, man, err);
    }
    if (!rc) {
        xmci_csr_free(&lv->active);
        rc = build_level(tree, y, anc, (uint32_t)t, man, k, &lv->active, &lv->width, err);
    }
    free(man);
    if (!rc && (uint64_t)R->B * (uint64_t)lv->width > R->batch_cap) {
        const uint32_t cols = R->batch.cols;
        xmci_csr_free(&R->batch);
        R->batch_cap = (uint64_t)R->B * (uint64_t)lv->width;
        rc = xmci_csr_alloc(&R->batch, (uint32_t)R->B, cols, R->batch_cap, err);
    }
    return rc;
}

/* Runs level t from step s->step to its end, checkpointing on the way. */
static xmc_err run_level(run *R, const xrt_level *lv, int t, int nlevels, xmci_xrt_report *rep, xmc_error *err)
{
    const xmci_xrt_opts *o = R->o;
    state *s = R->s;
    const uint32_t n = (uint32_t)R->tok->n;
    const int spe = (int)((n + (uint32_t)o->batch - 1) / (uint32_t)o->batch);
    const int total = level_steps(o, n);
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) return xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
    xmc_err rc = XMC_OK;
    double t0 = now(), epoch_loss = 0, first_loss = -1;
    size_t tokens_total = 0;
    int epoch_steps = 0, perm_epoch = -1, ran = 0;
    const int every = total / 20 > 0 ? total / 20 : 1;
    xmci_bert_opt_sync(R->opt, s->enc_opt); /* the optimiser was reset for the level, or read back from a checkpoint */
    for (int k = (int)s->step; k < total && !rc; k++) {
        const int epoch = k / spe, at = k % spe;
        if (epoch != perm_epoch) {
            xmc_rng rng;
            xmc_rng_seed(&rng, o->seed * 2654435761u ^ (uint32_t)t * 40503u ^ (uint32_t)epoch * 2246822519u);
            for (uint32_t i = 0; i < n; i++) perm[i] = i;
            xmc_rng_shuffle_u32(&rng, perm, n);
            perm_epoch = epoch;
        }
        const uint32_t first = (uint32_t)at * (uint32_t)o->batch;
        const int B = n - first < (uint32_t)o->batch ? (int)(n - first) : o->batch;
        double loss;
        size_t tokens;
        /* dropout's masks: a function of (seed, level, step), so a resumed run draws the ones it would have */
        const uint64_t drop_seed = ((uint64_t)o->seed << 32 | (uint64_t)t << 24) ^ (uint64_t)k;
        if ((rc = step(R, lv, perm + first, B, schedule(o, k, total), drop_seed, &loss, &tokens, err))) {
            /* a diverged run (a rate or weight decay too large) stops here rather than publish NaN weights */
            xmc_error_prefix(err, "xr-transformer level %d step %d (lr %g, weight decay %g): ", t + 1, k + 1,
                             (double)schedule(o, k, total), (double)o->weight_decay);
            break;
        }
        s->step = (uint32_t)k + 1;
        ran++;
        tokens_total += tokens;
        epoch_loss += loss;
        epoch_steps++;
        if (at == spe - 1 || k == total - 1) {
            if (first_loss < 0) first_loss = epoch_loss / epoch_steps;
            rep->loss[t] = epoch_loss / epoch_steps;
            epoch_loss = 0;
            epoch_steps = 0;
        }
        if (o->save_steps > 0 && s->step % (uint32_t)o->save_steps == 0 && (int)s->step < total &&
            (rc = ckpt_save(s, o->work_dir, R->fp, err)))
            break;
        if (o->progress && (ran % every == 0 || k == total - 1)) {
            double el = now() - t0, left = el / ran * (total - k - 1);
            char what[160];
            snprintf(what, sizeof what, "xr-transformer level %d/%d (%u clusters): step %d/%d loss %.4f, %.0f tok/s, %.0f s left",
                     t + 1, nlevels, lv->K, k + 1, total, epoch_steps ? epoch_loss / epoch_steps : rep->loss[t],
                     tokens_total / (el > 0 ? el : 1e-9), left);
            o->progress(o->progress_ctx, what, k + 1, total);
        }
    }
    free(perm);
    if (rc) return rc;
    rep->clusters[t] = lv->K;
    rep->width[t] = lv->width;
    rep->active_mean[t] = (double)xmci_csr_nnz(&lv->active) / (double)n;
    rep->steps[t] = total;
    rep->seconds[t] = now() - t0;
    rep->tokens_per_s[t] = rep->seconds[t] > 0 ? tokens_total / rep->seconds[t] : 0;
    rep->loss_first[t] = first_loss;
    if (ran) rc = ckpt_save(s, o->work_dir, R->fp, err); /* the level is finished */
    if (!rc && ran && o->progress) {
        char what[240];
        snprintf(what, sizeof what, "xr-transformer level %d/%d done: %u clusters, width %d (%.1f active per record), %d steps, "
                 "loss %.4f -> %.4f (first and last epoch), %.0f tok/s, %.1f s", t + 1, nlevels, lv->K, lv->width,
                 rep->active_mean[t], total, first_loss,
                 rep->loss[t], rep->tokens_per_s[t], rep->seconds[t]);
        o->progress(o->progress_ctx, what, 1, 1);
    }
    return rc;
}

/* PECOS's `linear` bootstrap of level t's head: an XR-Linear layer fit on the current encoder's un-normalised
 * embeddings of the training records (L2-loss SVM by dual coordinate descent, Cp = Cn = 100, bias 1, nothing
 * pruned: its MLModel.train(..., threshold=0, Cp=100, Cn=100)), each cluster against the records of its parent
 * (teacher forcing); row j of the head is cluster j's weights, its bias the bias feature's weight. The rankers of
 * the levels above are trained on the way (xmci_xlinear_train works top-down) and dropped: they are small. Memory:
 * the n x H embeddings as a dense CSR. */
static xmc_err head_linear(run *R, const xmci_tree *tree, const xrt_level *lv, int t, xmc_error *err)
{
    const xmci_xrt_opts *o = R->o;
    state *s = R->s;
    const uint32_t H = (uint32_t)s->params->cfg.hidden, n = (uint32_t)R->tok->n;
    xmci_csr x = {0}, y = {0}, w = {0};
    xmci_xlinear m = {0};
    uint64_t pos = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t e = lv->active.indptr[i]; e < lv->active.indptr[i + 1]; e++) pos += lv->active.data[e] > 0;
    xmc_err rc = xmci_csr_alloc(&x, n, H, (uint64_t)n * H, err);
    if (!rc) rc = xmci_csr_alloc(&y, n, lv->K, pos, err);
    if (!rc) rc = xmci_bert_train_set_dropout(R->train, 0.0f, 0, err); /* the embeddings as the encoder predicts */
    for (uint32_t first = 0; first < n && !rc; first += (uint32_t)R->B) {
        const int B = n - first < (uint32_t)R->B ? (int)(n - first) : R->B;
        rc = embed_rows(R, (int)first, B, x.data + (size_t)first * H, err);
    }
    if (!rc) {
        uint64_t q = 0;
        for (uint32_t i = 0; i < n; i++) {
            x.indptr[i] = (uint64_t)i * H;
            for (uint32_t f = 0; f < H; f++) x.indices[(size_t)i * H + f] = f;
            y.indptr[i] = q;
            for (uint64_t e = lv->active.indptr[i]; e < lv->active.indptr[i + 1]; e++)
                if (lv->active.data[e] > 0) y.indices[q] = lv->active.indices[e], y.data[q++] = 1.0f;
        }
        x.indptr[n] = (uint64_t)n * H;
        y.indptr[n] = q;
        xmci_csr_sort_indices(&y);
        xmci_tree view = *tree; /* the levels down to t: the parent arrays are tree's */
        view.depth = (uint32_t)t + 1;
        xmci_xlinear_params p;
        xmci_xlinear_params_default(&p);
        p.solver.cp = p.solver.cn = 100;
        p.solver.bias = 1.0f;
        p.solver.threshold = 0.0f;
        p.negatives = XMCI_NEG_TFN;
        p.threads = o->threads;
        rc = xmci_xlinear_train(&x, &y, &view, &p, &m, err);
    }
    if (!rc) rc = xmci_layer_weights(&m.layers[t], H, &w, err);
    if (!rc) {
        memset(s->head.w, 0, (size_t)lv->K * H * sizeof *s->head.w);
        memset(s->head.b, 0, lv->K * sizeof *s->head.b);
        for (uint32_t j = 0; j < w.rows && j < lv->K; j++)
            for (uint64_t e = w.indptr[j]; e < w.indptr[j + 1]; e++) {
                if (w.indices[e] < H) s->head.w[(size_t)j * H + w.indices[e]] = w.data[e];
                else s->head.b[j] = w.data[e] * m.bias;
            }
    }
    xmci_csr_free(&x);
    xmci_csr_free(&y);
    xmci_csr_free(&w);
    xmci_xlinear_free(&m);
    return rc;
}

/* The head of level t from the one before: 0.02 N(0, 1) and bias 0 at the top; below it each child inherits its
 * parent's row (o->bootstrap XMCI_XRT_INHERIT) or the rows are fit by head_linear (XMCI_XRT_LINEAR). */
static xmc_err head_init(run *R, state *s, const xmci_tree *tree, const xrt_level *lv, int t, const xmci_xrt_opts *o,
                         xmc_error *err)
{
    const size_t H = (size_t)s->params->cfg.hidden;
    float *pw = s->head.w, *pb = s->head.b;
    s->head.w = s->head.b = NULL; /* kept through head_alloc */
    xmc_err rc = head_alloc(s, lv->K, o, err);
    if (!rc && t == 0) {
        xmc_rng rng;
        xmc_rng_seed(&rng, o->seed ^ 0x68656164u);
        for (size_t i = 0; i < (size_t)lv->K * H; i++) s->head.w[i] = (float)(0.02 * normal(&rng));
        memset(s->head.b, 0, lv->K * sizeof *s->head.b);
    } else if (!rc && o->bootstrap == XMCI_XRT_LINEAR) {
        if (o->progress) {
            char what[96];
            snprintf(what, sizeof what, "xr-transformer level %d: linear bootstrap of %u clusters", t + 1, lv->K);
            o->progress(o->progress_ctx, what, 0, 1);
        }
        rc = head_linear(R, tree, lv, t, err);
    } else if (!rc) {
        for (uint32_t j = 0; j < lv->K; j++) {
            memcpy(s->head.w + (size_t)j * H, pw + (size_t)lv->parent[j] * H, H * sizeof *pw);
            s->head.b[j] = pb[lv->parent[j]];
        }
    }
    free(pw);
    free(pb);
    reset_opt(s->enc_opt);
    s->step = 0;
    s->level = (uint32_t)t;
    return rc;
}

xmc_err xmci_xrt_finetune(const char *const *texts, const size_t *lens, const xmci_csr *y, const xmci_xrt_opts *o,
                         char *encoder_dir, size_t size, xmci_xrt_report *report, xmc_error *err)
{
    xmci_xrt_report rep;
    memset(&rep, 0, sizeof rep);
    if (!o->work_dir || !o->encoder.dir)
        return xmc_error_set(err, XMC_ERR_ARG, "xr-transformer: needs an encoder directory and a work directory");
    if (o->batch < 1 || o->epochs < 1 || o->max_steps < 0 || o->warmup < 0 || !(o->lr > 0) || !(o->head_lr >= 0) ||
        o->max_clusters < 1 ||
        o->save_steps < 0 || o->weight_decay < 0 || o->max_grad_norm < 0 || o->man_topk < 0 ||
        !(o->dropout >= 0 && o->dropout < 1) || (o->bootstrap != XMCI_XRT_INHERIT && o->bootstrap != XMCI_XRT_LINEAR))
        return xmc_error_set(err, XMC_ERR_ARG, "xr-transformer: batch, epochs and learning rate must be positive, "
                                               "steps, warm-up, weight decay, clipping and man top-k not negative, "
                                               "dropout in [0, 1), bootstrap inherit or linear");
    if (y->rows == 0 || y->cols == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "xr-transformer: no records or no labels");
    xmc_err rc = XMC_OK;
    xmci_tfidf *tf = NULL;
    xmci_csr x = {0}, z = {0};
    xmci_tree tree = {0};
    xmci_bert *bert = NULL;
    xmci_wordpiece *wp = NULL;
    xmci_wordpiece_batch tok = {0};
    uint32_t *anc = NULL;
    xrt_level lv[XMCI_TREE_MAX_DEPTH];
    memset(lv, 0, sizeof lv);
    state s;
    memset(&s, 0, sizeof s);
    run R;
    memset(&R, 0, sizeof R);
    int nlevels = 0, lock_fd = -1;
    const uint32_t n = y->rows;

    if (mkdir(o->work_dir, 0755) != 0 && errno != EEXIST)
        return xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", o->work_dir, strerror(errno));
    if ((rc = work_dir_check(o->work_dir, err))) return rc;
    {
        const int64_t spe = ((int64_t)n + o->batch - 1) / o->batch;
        if (o->max_steps <= 0 && (int64_t)o->epochs * spe >= INT_MAX)
            return xmc_error_set(err, XMC_ERR_ARG, "xr-transformer: %d epochs of %lld steps is %lld steps a level, "
                                 "more than %d", o->epochs, (long long)spe, (long long)((int64_t)o->epochs * spe),
                                 INT_MAX - 1);
    }
    if ((rc = work_dir_lock(o->work_dir, &lock_fd, err))) return rc;
    /* the preliminary tree: PIFA of TF-IDF */
    if (o->progress) o->progress(o->progress_ctx, "xr-transformer: label tree", 0, 1);
    if ((rc = xmci_tfidf_fit(&o->tfidf, texts, lens, n, o->threads, &tf, err)) ||
        (rc = xmci_tfidf_transform_batch(tf, texts, lens, n, o->threads, &x, err)) || (rc = xmci_pifa(&x, y, &z, err)))
        goto out;
    xmci_tree_params tp = o->tree;
    tp.threads = o->threads;
    if ((rc = xmci_tree_build(&z, &tp, &tree, err))) goto out;
    xmci_csr_free(&x);
    xmci_csr_free(&z);
    while (nlevels < (int)tree.depth && tree.nr_nodes[nlevels] <= o->max_clusters) nlevels++;
    if (nlevels == 0) {
        rc = xmc_error_set(err, XMC_ERR_ARG, "xr-transformer: the top level has %u clusters, more than %u",
                           tree.nr_nodes[0], o->max_clusters);
        goto out;
    }
    if (!(anc = malloc((size_t)tree.depth * y->cols * sizeof *anc))) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
        goto out;
    }
    ancestors(&tree, y->cols, anc);
    for (int t = 0; t < nlevels; t++)
        if ((rc = level_make(&tree, y, anc, (uint32_t)t, &lv[t], err))) goto out;
    if (o->progress) o->progress(o->progress_ctx, "xr-transformer: label tree", 1, 1);

    /* the encoder, its tokens (once for all levels) and the training state */
    char vocab[4200];
    if (o->encoder.vocab) snprintf(vocab, sizeof vocab, "%s", o->encoder.vocab);
    else snprintf(vocab, sizeof vocab, "%s/vocab.txt", o->encoder.dir);
    if ((rc = xmci_bert_load(o->encoder.dir, &bert, err)) || (rc = xmci_wordpiece_load(vocab, &wp, err)) ||
        (rc = vocab_check(bert, wp, vocab, o->encoder.dir, err)) ||
        (rc = pooler_check(bert, o->encoder.pooling, o->encoder.dir, err)))
        goto out;
    /* a max length above the encoder's positions is cut to them, as the featurizer that serves the model cuts it
     * (the version's manifest records what was used) */
    const int max_len = o->encoder.max_len < xmci_bert_get_config(bert)->max_positions
                            ? o->encoder.max_len : xmci_bert_get_config(bert)->max_positions;
    if (max_len < o->encoder.max_len && o->progress) {
        char what[200];
        snprintf(what, sizeof what, "xr-transformer: max length %d cut to the encoder's %d positions", o->encoder.max_len,
                 max_len);
        o->progress(o->progress_ctx, what, 0, 1);
    }
    if ((rc = xmci_wordpiece_encode_batch(wp, texts, lens, (int)n, max_len, &tok, err)) ||
        (rc = xmci_bert_params_copy(bert, &s.params, err)) || (rc = xmci_bert_params_zeros_like(s.params, &s.grads, err)) ||
        (rc = xmci_adamw_new(s.params->n, o->adamw, 0.9f, 0.999f, 1e-8f, &s.enc_opt, err)))
        goto out;
    s.enc_opt->threads = o->threads; /* between steps; the same bits for any count */
    xmci_bert_free(bert);
    bert = NULL;
    const int B = o->batch < (int)n ? o->batch : (int)n, H = s.params->cfg.hidden;
    uint32_t Kmax = 0;
    int Amax = 0;
    for (int t = 0; t < nlevels; t++) {
        if (lv[t].K > Kmax) Kmax = lv[t].K;
        if (lv[t].width > Amax) Amax = lv[t].width;
    }
    R.o = o;
    R.tok = &tok;
    R.s = &s;
    R.fp = fingerprint(&tok, y, &tree, s.params, o);
    R.ids = malloc((size_t)B * tok.seq * sizeof *R.ids);
    R.lens = malloc((size_t)B * sizeof *R.lens);
    R.pooled = malloc((size_t)B * H * sizeof *R.pooled);
    R.d_pooled = malloc((size_t)B * H * sizeof *R.d_pooled);
    R.touched = malloc(Kmax * sizeof *R.touched);
    R.mark = calloc(Kmax, 1);
    R.bufs = malloc(2 * (size_t)Kmax * sizeof *R.bufs);
    R.blens = malloc(2 * (size_t)Kmax * sizeof *R.blens);
    if (!R.ids || !R.lens || !R.pooled || !R.d_pooled || !R.touched || !R.mark || !R.bufs || !R.blens) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "xr-transformer: out of memory");
        goto out;
    }
    if ((rc = xmci_bert_opt_new(s.params, B * tok.seq, o->whole_table, &R.opt, err))) goto out;
    R.B = B;
    R.batch_cap = (uint64_t)B * (uint64_t)Amax;
    if ((rc = xmci_csr_alloc(&R.batch, (uint32_t)B, Kmax, R.batch_cap, err)) ||
        (rc = xmci_bert_train_new(s.params, B, tok.seq, &R.train, err)) ||
        (rc = xmci_bert_train_set_threads(R.train, o->threads, err))) /* and the products when OpenBLAS has 1 */
        goto out;
    s.enc_opt->pool = xmci_bert_train_pool(R.train); /* freed with R.train, after the last step */

    int found = 0, start = 0;
    char path[4200];
    ckpt_path(o->work_dir, path, sizeof path, "");
    if (!o->resume && access(path, F_OK) == 0) {
        rc = xmc_error_set(err, XMC_ERR_ARG, "%s holds a checkpoint: resume it, or remove it to start again", o->work_dir);
        goto out;
    }
    if (o->resume && (rc = ckpt_load(&s, o->work_dir, R.fp, o, &found, err))) goto out;
    if (o->resume && !found && o->progress)
        o->progress(o->progress_ctx, "xr-transformer: no checkpoint to resume, starting at level 1", 0, 1);
    if (found) {
        if ((int)s.level >= nlevels || (uint32_t)s.head.labels != lv[s.level].K) {
            rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: checkpoint level %u does not fit the tree", o->work_dir, s.level);
            goto out;
        }
        start = (int)s.level;
        rep.resumed_level = start;
        rep.resumed_step = (int)s.step;
        if (o->progress) {
            char what[120];
            snprintf(what, sizeof what, "xr-transformer: resuming at level %d step %u", start + 1, s.step);
            o->progress(o->progress_ctx, what, 0, 1);
        }
    }
    rep.levels = nlevels;
    for (int t = start; t < nlevels; t++) {
        const int resumed = found && t == start;
        /* a level resumed after its last step needs no active sets; one resumed mid-way reads its negatives back */
        if (o->man_topk > 0 && t > 0 && !(resumed && (int)s.step >= level_steps(o, n)) &&
            (rc = level_man(&R, &tree, y, anc, t, resumed, &lv[t], err)))
            goto out;
        if (!resumed && (rc = head_init(&R, &s, &tree, &lv[t], t, o, err))) goto out;
        if ((rc = run_level(&R, &lv[t], t, nlevels, &rep, err))) goto out;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/encoder", o->work_dir);
    if ((rc = write_encoder(s.params, o, dir, err))) goto out;
    if ((size_t)snprintf(encoder_dir, size, "%s", dir) >= size)
        rc = xmc_error_set(err, XMC_ERR_ARG, "xr-transformer: encoder path longer than %zu bytes", size);
out:
    if (report) *report = rep;
    if (tf) xmci_tfidf_free(tf);
    xmci_csr_free(&x);
    xmci_csr_free(&z);
    xmci_tree_free(&tree);
    xmci_bert_free(bert);
    xmci_wordpiece_free(wp);
    xmci_wordpiece_batch_free(&tok);
    free(anc);
    for (int t = 0; t < XMCI_TREE_MAX_DEPTH; t++) xmci_csr_free(&lv[t].active);
    head_free(&s);
    xmci_bert_params_free(s.params);
    xmci_bert_params_free(s.grads);
    xmci_adamw_free(s.enc_opt);
    xmci_bert_train_free(R.train);
    xmci_csr_free(&R.batch);
    free(R.ids);
    free(R.lens);
    free(R.pooled);
    free(R.d_pooled);
    free(R.touched);
    free(R.mark);
    free(R.bufs);
    free(R.blens);
    xmci_bert_opt_free(R.opt);
    if (lock_fd >= 0) close(lock_fd);
    return rc;
}
