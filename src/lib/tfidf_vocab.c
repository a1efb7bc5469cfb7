/* tfidf_vocab.c: a TF-IDF vocabulary: selecting and numbering the features, packing them, saving and viewing
 * the packed arrays (see tfidf_vocab.h).
 *
 * The four packed arrays are both the in-memory form and the saved one, so loading builds nothing. */
#include "tfidf_vocab.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef xmci_docfreq_entry cand;

static int cmp_bytes(const cand *a, const cand *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int cmp_cand_bytes(const void *x, const void *y) { return cmp_bytes(x, y); }

static int cmp_cand_df(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->df != b->df) return a->df > b->df ? -1 : 1;
    return cmp_bytes(a, b);
}

/* The idf formulas of tfidf_spec.h. */
static double idf_of(const xmci_tfidf_base *b, uint64_t n_docs, uint32_t df)
{
    double s = b->smooth_idf ? 1.0 : 0.0, N = (double)n_docs;
    switch (b->idf) {
    case XMCI_TFIDF_IDF_PECOS: {
        double v = log(N / ((double)df + s));
        return (v > 0 ? v : 0) + (b->add_one_idf ? 1.0 : 0.0);
    }
    case XMCI_TFIDF_IDF_SKLEARN: return log((N + s) / ((double)df + s)) + 1.0;
    case XMCI_TFIDF_IDF_NONE: break;
    }
    return 1.0;
}

/* The survivors of base b's filters in feature-id order, in *kept (owned by the caller); returns how many, or
 * SIZE_MAX when out of memory. */
static size_t select_base(const xmci_tfidf_base *base, const xmci_docfreq *dfq, uint32_t b, uint64_t n_docs,
                          cand **kept)
{
    size_t total = xmci_docfreq_distinct(dfq, b);
    *kept = malloc((total ? total : 1) * sizeof **kept);
    if (!*kept) return SIZE_MAX;
    size_t k = xmci_docfreq_filter(dfq, b, base->min_df, base->max_df * (double)n_docs, *kept);
    assert(k <= total);
    if (base->max_features && k > base->max_features) {
        qsort(*kept, k, sizeof **kept, cmp_cand_df);
        k = base->max_features;
    }
    qsort(*kept, k, sizeof **kept, cmp_cand_bytes);
    return k;
}

/* Packs the sorted survivors of every base into the four arrays. */
static xmc_err pack(xmci_tfidf_vocab *voc, const xmci_tfidf_config *cfg, uint64_t n_docs, cand *const *kept,
                    const size_t *n_kept, xmc_error *err)
{
    uint64_t dim = 0, bytes = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        voc->base_off[b] = (uint32_t)dim;
        dim += n_kept[b];
        for (size_t i = 0; i < n_kept[b]; i++) bytes += kept[b][i].len;
    }
    if (dim == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "tfidf: no n-gram passed min_df/max_df");
    if (dim >= UINT32_MAX / 4 || bytes > UINT32_MAX)
        return xmc_error_set(err, XMC_ERR_RANGE, "tfidf: %llu features, %llu vocabulary bytes: too many",
                             (unsigned long long)dim, (unsigned long long)bytes);
    voc->base_off[cfg->n_bases] = (uint32_t)dim;
    voc->dim = (uint32_t)dim;
    uint32_t cap = 16;
    while (cap < 2 * dim) cap *= 2;
    voc->table_cap = cap;
    unsigned char *vocab = malloc(bytes);
    uint32_t *offsets = malloc((dim + 1) * sizeof *offsets);
    float *idf = malloc(dim * sizeof *idf);
    uint32_t *table = calloc((size_t)cap * 2, sizeof *table);
    voc->owned[0] = vocab;
    voc->owned[1] = offsets;
    voc->owned[2] = idf;
    voc->owned[3] = table;
    if (!vocab || !offsets || !idf || !table) return xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    uint32_t id = 0, pos = 0;
    for (uint32_t b = 0; b < cfg->n_bases; b++) {
        for (size_t i = 0; i < n_kept[b]; i++, id++) {
            const cand *c = &kept[b][i];
            assert(i == 0 || cmp_bytes(&kept[b][i - 1], c) < 0); /* ids in byte order, no n-gram twice */
            offsets[id] = pos;
            memcpy(vocab + pos, c->p, c->len);
            pos += c->len;
            idf[id] = (float)idf_of(&cfg->base[b], n_docs, c->df);
            uint32_t s = (uint32_t)c->hash & (cap - 1);
            while (table[2 * s]) s = (s + 1) & (cap - 1);
            table[2 * s] = id + 1;
            table[2 * s + 1] = (uint32_t)(c->hash >> 32);
        }
    }
    assert(id == dim && pos == bytes);
    offsets[dim] = pos;
    voc->bytes = vocab;
    voc->n_bytes = bytes;
    voc->offsets = offsets;
    voc->idf = idf;
    voc->table = table;
    return XMC_OK;
}

xmc_err xmci_tfidf_vocab_build(xmci_tfidf_vocab *voc, const xmci_tfidf_config *cfg, const xmci_docfreq *dfq,
                              uint64_t n_docs, xmc_error *err)
{
    memset(voc, 0, sizeof *voc);
    voc->n_bases = cfg->n_bases;
    cand *kept[XMCI_TFIDF_MAX_BASES] = {0};
    size_t n_kept[XMCI_TFIDF_MAX_BASES] = {0};
    xmc_err rc = XMC_OK;
    for (uint32_t b = 0; b < cfg->n_bases && !rc; b++)
        if ((n_kept[b] = select_base(&cfg->base[b], dfq, b, n_docs, &kept[b])) == SIZE_MAX)
            rc = xmc_error_set(err, XMC_ERR_NOMEM, "tfidf: out of memory");
    if (!rc) rc = pack(voc, cfg, n_docs, kept, n_kept, err);
    for (uint32_t b = 0; b < cfg->n_bases; b++) free(kept[b]);
    if (rc) xmci_tfidf_vocab_free(voc);
    return rc;
}

void xmci_tfidf_vocab_free(xmci_tfidf_vocab *voc)
{
    for (int i = 0; i < 4; i++) free(voc->owned[i]);
    memset(voc, 0, sizeof *voc);
}

const char *xmci_tfidf_vocab_name(const xmci_tfidf_vocab *voc, uint32_t id, size_t *len)
{
    if (id >= voc->dim) return NULL;
    uint32_t a = voc->offsets[id], z = voc->offsets[id + 1];
    if (a > z || z > voc->n_bytes) return NULL; /* a damaged file */
    *len = z - a;
    return (const char *)voc->bytes + a;
}

/* ---- persistence ---------------------------------------------------------------------------------------- */

xmc_err xmci_tfidf_key(char *buf, size_t size, const char *prefix, const char *what, xmc_error *err)
{
    if ((size_t)snprintf(buf, size, "%s.%s", prefix, what) >= size)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: prefix '%s' too long", prefix);
    return XMC_OK;
}

xmc_err xmci_tfidf_vocab_save(const xmci_tfidf_vocab *voc, xmci_model_writer *w, const char *prefix, xmc_error *err)
{
    char key[256];
    xmc_err rc;
    uint64_t shape[2];
    shape[0] = voc->n_bytes;
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "vocab", err)) ||
        (rc = xmci_writer_array(w, key, XMCI_DT_U8, 1, shape, voc->bytes, err)))
        return rc;
    shape[0] = (uint64_t)voc->dim + 1;
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "offsets", err)) ||
        (rc = xmci_writer_array(w, key, XMCI_DT_U32, 1, shape, voc->offsets, err)))
        return rc;
    shape[0] = voc->dim;
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "idf", err)) ||
        (rc = xmci_writer_array(w, key, XMCI_DT_F32, 1, shape, voc->idf, err)))
        return rc;
    shape[0] = voc->table_cap;
    shape[1] = 2;
    if ((rc = xmci_tfidf_key(key, sizeof key, prefix, "table", err)) ||
        (rc = xmci_writer_array(w, key, XMCI_DT_U32, 2, shape, voc->table, err)))
        return rc;
    return XMC_OK;
}

static xmc_err get_array(const xmci_bundle *bd, const char *prefix, const char *what, xmci_dtype dt, int ndim,
                         uint64_t *shape, const void **data, xmc_error *err)
{
    char key[256];
    xmc_err rc = xmci_tfidf_key(key, sizeof key, prefix, what, err);
    return rc ? rc : xmci_bundle_array(bd, key, dt, ndim, shape, data, err);
}

xmc_err xmci_tfidf_vocab_load(xmci_tfidf_vocab *voc, const xmci_bundle *bd, const char *prefix, xmc_error *err)
{
    uint64_t shape[2], dim = voc->dim;
    const void *data;
    xmc_err rc;
    if ((rc = get_array(bd, prefix, "vocab", XMCI_DT_U8, 1, shape, &data, err))) return rc;
    voc->bytes = data;
    voc->n_bytes = shape[0];
    if ((rc = get_array(bd, prefix, "offsets", XMCI_DT_U32, 1, shape, &data, err))) return rc;
    voc->offsets = data;
    if (shape[0] != dim + 1 || voc->offsets[0] != 0 || voc->offsets[dim] != voc->n_bytes)
        return xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': offsets [%llu] do not span the vocabulary (%llu bytes, "
                             "%llu features)", prefix, (unsigned long long)shape[0], (unsigned long long)voc->n_bytes,
                             (unsigned long long)dim);
    if ((rc = get_array(bd, prefix, "idf", XMCI_DT_F32, 1, shape, &data, err))) return rc;
    voc->idf = data;
    if (shape[0] != dim)
        return xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': idf has %llu entries, not %llu", prefix,
                             (unsigned long long)shape[0], (unsigned long long)dim);
    if ((rc = get_array(bd, prefix, "table", XMCI_DT_U32, 2, shape, &data, err))) return rc;
    voc->table = data;
    if (shape[1] != 2 || shape[0] <= dim || shape[0] > UINT32_MAX || (shape[0] & (shape[0] - 1)))
        return xmc_error_set(err, XMC_ERR_SHAPE, "tfidf '%s': table [%llu, %llu] is not [power of two > dim, 2]",
                             prefix, (unsigned long long)shape[0], (unsigned long long)shape[1]);
    voc->table_cap = (uint32_t)shape[0];
    return XMC_OK;
}
