/* xlinear.c: an XR-Linear model: freeing it, saving it and viewing a saved one (see xlinear.h).
 *
 * Loading checks every layer before anything follows its pointers: the pointer arrays must span their data
 * and never decrease, every feature and child index must be in range, so that search over a damaged file
 * fails at load instead of reading out of bounds. */
#include "xlinear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disentangle.h"

void xmci_xlinear_free(xmci_xlinear *m)
{
    for (uint32_t t = 0; t < m->depth && t < XMCI_TREE_MAX_DEPTH; t++) xmci_layer_free(&m->layers[t]);
    if (m->copy_owned) free((void *)m->copy_ptr);
    memset(m, 0, sizeof *m);
}

#define ARR(name_fmt, t) (snprintf(name, sizeof name, name_fmt, t), name)

xmc_err xmci_xlinear_save(const xmci_xlinear *m, xmci_model_writer *w, xmc_error *err)
{
    xmc_err rc;
    char name[64];
    if ((rc = xmci_writer_set_int(w, "xl.depth", m->depth, err)) ||
        (rc = xmci_writer_set_int(w, "xl.nr_features", m->nr_features, err)) ||
        (rc = xmci_writer_set_float(w, "xl.bias", m->bias, err)) ||
        (rc = xmci_writer_set_int(w, "xl.beam", m->beam, err)) ||
        (rc = xmci_writer_set_int(w, "xl.topk", m->topk, err)) ||
        (rc = xmci_writer_set_string(w, "xl.post", xmc_post_name((xmc_post)m->post), err)))
        return rc;
    for (uint32_t t = 0; t < m->depth; t++) {
        const xmci_layer *L = &m->layers[t];
        uint64_t s;
        s = (uint64_t)L->nr_parents + 1;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.child_ptr", t), XMCI_DT_U32, 1, &s, L->child_ptr, err))) return rc;
        s = L->nr_nodes;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.child_idx", t), XMCI_DT_U32, 1, &s, L->child_idx, err))) return rc;
        s = (uint64_t)L->nr_parents + 1;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.chunk_ptr", t), XMCI_DT_U64, 1, &s, L->chunk_ptr, err))) return rc;
        s = L->nr_rows;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.row_feat", t), XMCI_DT_U32, 1, &s, L->row_feat, err))) return rc;
        s = L->nr_rows + 1;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.row_ptr", t), XMCI_DT_U64, 1, &s, L->row_ptr, err))) return rc;
        s = L->nnz;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.ent_child", t), XMCI_DT_U32, 1, &s, L->ent_child, err))) return rc;
        if ((rc = xmci_writer_array(w, ARR("xl.%u.ent_w", t), XMCI_DT_F32, 1, &s, L->ent_w, err))) return rc;
    }
    /* the copy map only where labels have copies, so that other models read as before */
    if (m->copy_ptr) {
        uint64_t s = (uint64_t)m->nr_labels + 1;
        if ((rc = xmci_writer_set_int(w, "xl.disentangle", m->disentangle, err)) ||
            (rc = xmci_writer_array(w, "xl.copy_ptr", XMCI_DT_U32, 1, &s, m->copy_ptr, err)))
            return rc;
    }
    return XMC_OK;
}

static xmc_err get_arr(const xmci_bundle *b, const char *name, xmci_dtype dt, uint64_t want, const void **data,
                       xmc_error *err)
{
    uint64_t shape[1];
    xmc_err rc = xmci_bundle_array(b, name, dt, 1, shape, data, err);
    if (rc) return rc;
    if (want != UINT64_MAX && shape[0] != want)
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s: array %s has %llu entries, want %llu", xmci_bundle_dir(b), name,
                             (unsigned long long)shape[0], (unsigned long long)want);
    return XMC_OK;
}

static uint64_t arr_len(const xmci_bundle *b, const char *name, xmci_dtype dt)
{
    uint64_t shape[1];
    const void *d;
    return xmci_bundle_array(b, name, dt, 1, shape, &d, NULL) ? UINT64_MAX : shape[0];
}

/* Views the arrays of layer t (whose parents are the prev_nodes nodes of layer t-1) in b. */
static xmc_err load_layer(const xmci_bundle *b, uint32_t t, uint32_t prev_nodes, xmci_layer *L, xmc_error *err)
{
    char name[64];
    uint64_t nodes = arr_len(b, ARR("xl.%u.child_idx", t), XMCI_DT_U32);
    uint64_t rows = arr_len(b, ARR("xl.%u.row_feat", t), XMCI_DT_U32);
    uint64_t nnz = arr_len(b, ARR("xl.%u.ent_w", t), XMCI_DT_F32);
    if (nodes == UINT64_MAX || rows == UINT64_MAX || nnz == UINT64_MAX || nodes >= UINT32_MAX)
        return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: layer %u arrays missing or of the wrong type", xmci_bundle_dir(b), t);
    L->nr_nodes = (uint32_t)nodes;
    L->nr_parents = prev_nodes;
    L->nr_rows = rows;
    L->nnz = nnz;
    const void *d;
    xmc_err rc;
    if ((rc = get_arr(b, ARR("xl.%u.child_ptr", t), XMCI_DT_U32, (uint64_t)prev_nodes + 1, &d, err))) return rc;
    L->child_ptr = d;
    if ((rc = get_arr(b, ARR("xl.%u.child_idx", t), XMCI_DT_U32, nodes, &d, err))) return rc;
    L->child_idx = d;
    if ((rc = get_arr(b, ARR("xl.%u.chunk_ptr", t), XMCI_DT_U64, (uint64_t)prev_nodes + 1, &d, err))) return rc;
    L->chunk_ptr = d;
    if ((rc = get_arr(b, ARR("xl.%u.row_feat", t), XMCI_DT_U32, rows, &d, err))) return rc;
    L->row_feat = d;
    if ((rc = get_arr(b, ARR("xl.%u.row_ptr", t), XMCI_DT_U64, rows + 1, &d, err))) return rc;
    L->row_ptr = d;
    if ((rc = get_arr(b, ARR("xl.%u.ent_child", t), XMCI_DT_U32, nnz, &d, err))) return rc;
    L->ent_child = d;
    if ((rc = get_arr(b, ARR("xl.%u.ent_w", t), XMCI_DT_F32, nnz, &d, err))) return rc;
    L->ent_w = d;
    L->owned = 0;
    return XMC_OK;
}

/* Every pointer of layer t monotone and in range, every index in range; sets L->max_children. */
static xmc_err check_layer(const char *dir, uint32_t t, uint32_t nr_features, xmci_layer *L, xmc_error *err)
{
    uint32_t prev_nodes = L->nr_parents;
    uint64_t nodes = L->nr_nodes, rows = L->nr_rows, nnz = L->nnz;
    if (L->child_ptr[0] != 0 || L->child_ptr[prev_nodes] != nodes || L->chunk_ptr[0] != 0 ||
        L->chunk_ptr[prev_nodes] != rows || L->row_ptr[0] != 0 || L->row_ptr[rows] != nnz)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: pointer arrays do not span their data", dir, t);
    /* bound every pointer before following any of them */
    for (uint32_t p = 0; p < prev_nodes; p++)
        if (L->child_ptr[p + 1] < L->child_ptr[p] || L->chunk_ptr[p + 1] < L->chunk_ptr[p] ||
            L->child_ptr[p + 1] > nodes || L->chunk_ptr[p + 1] > rows)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: pointers decrease or overrun at parent %u", dir, t, p);
    for (uint64_t r = 0; r < rows; r++)
        if (L->row_ptr[r + 1] < L->row_ptr[r] || L->row_ptr[r + 1] > nnz)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: row pointers decrease or overrun at row %llu", dir, t,
                                 (unsigned long long)r);
    uint32_t maxc = 0;
    for (uint32_t p = 0; p < prev_nodes; p++) {
        uint32_t c = L->child_ptr[p + 1] - L->child_ptr[p];
        if (c > maxc) maxc = c;
        for (uint64_t r = L->chunk_ptr[p]; r < L->chunk_ptr[p + 1]; r++) {
            if (L->row_ptr[r + 1] < L->row_ptr[r] || L->row_feat[r] > nr_features ||
                (r > L->chunk_ptr[p] && L->row_feat[r] <= L->row_feat[r - 1]))
                return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: bad weight row %llu", dir, t, (unsigned long long)r);
            for (uint64_t e = L->row_ptr[r]; e < L->row_ptr[r + 1]; e++)
                if (L->ent_child[e] >= c)
                    return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: entry %llu names child %u of %u", dir, t,
                                         (unsigned long long)e, L->ent_child[e], c);
        }
    }
    for (uint64_t j = 0; j < nodes; j++)
        if (L->child_idx[j] >= nodes)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: layer %u: child index out of range", dir, t);
    L->max_children = maxc;
    return XMC_OK;
}

/* The copy map (xlinear.h): increasing from 0 to the last layer's nodes, every label at least one copy and
 * at most xl.disentangle. Without it every last-layer node is a label. */
static xmc_err load_copies(const xmci_bundle *b, xmci_xlinear *m, xmc_error *err)
{
    const char *dir = xmci_bundle_dir(b);
    uint32_t nodes = m->layers[m->depth - 1].nr_nodes;
    m->nr_labels = nodes;
    m->disentangle = 1;
    m->max_copies = 1;
    if (!xmci_bundle_has(b, "xl.copy_ptr")) return XMC_OK;
    long long k;
    uint64_t len = arr_len(b, "xl.copy_ptr", XMCI_DT_U32);
    xmc_err rc = xmci_bundle_get_int(b, "xl.disentangle", &k, err);
    if (rc) return rc;
    if (k < 1 || k > XMCI_DISENTANGLE_MAX)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: xl.disentangle %lld outside 1..%d", dir, k, XMCI_DISENTANGLE_MAX);
    if (len == UINT64_MAX || len < 2 || len - 1 > nodes)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: xl.copy_ptr missing, of the wrong type or longer than the %u copies",
                             dir, nodes);
    const void *d;
    if ((rc = get_arr(b, "xl.copy_ptr", XMCI_DT_U32, len, &d, err))) return rc;
    const uint32_t *cp = d;
    uint32_t L = (uint32_t)(len - 1), most = 1;
    if (cp[0] != 0 || cp[L] != nodes)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: xl.copy_ptr does not span the %u copies", dir, nodes);
    for (uint32_t l = 0; l < L; l++) {
        if (cp[l + 1] <= cp[l] || cp[l + 1] - cp[l] > (uint32_t)k)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: label %u has %lld copies, want 1..%lld", dir, l,
                                 (long long)cp[l + 1] - (long long)cp[l], k);
        if (cp[l + 1] - cp[l] > most) most = cp[l + 1] - cp[l];
    }
    m->copy_ptr = cp;
    m->copy_owned = 0;
    m->nr_labels = L;
    m->disentangle = (uint32_t)k;
    m->max_copies = most;
    return XMC_OK;
}

xmc_err xmci_xlinear_load(const xmci_bundle *b, xmci_xlinear *m, xmc_error *err)
{
    memset(m, 0, sizeof *m);
    long long depth, nf, beam, topk;
    double bias;
    const char *post;
    xmc_err rc;
    if ((rc = xmci_bundle_get_int(b, "xl.depth", &depth, err)) || (rc = xmci_bundle_get_int(b, "xl.nr_features", &nf, err)) ||
        (rc = xmci_bundle_get_float(b, "xl.bias", &bias, err)) || (rc = xmci_bundle_get_int(b, "xl.beam", &beam, err)) ||
        (rc = xmci_bundle_get_int(b, "xl.topk", &topk, err)) || (rc = xmci_bundle_get_string(b, "xl.post", &post, err)))
        return rc;
    if (depth < 1 || depth > XMCI_TREE_MAX_DEPTH || nf < 0 || nf >= UINT32_MAX || beam < 1 || topk < 1 ||
        beam > XMC_MAX_K || topk > XMC_MAX_K || xmc_post_from_name(post) < 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: bad xl.* values in the manifest", xmci_bundle_dir(b));
    m->depth = (uint32_t)depth;
    m->nr_features = (uint32_t)nf;
    m->bias = (float)bias;
    m->beam = (uint32_t)beam;
    m->topk = (uint32_t)topk;
    m->post = xmc_post_from_name(post);
    uint32_t prev_nodes = 1;
    for (uint32_t t = 0; t < m->depth; t++) {
        xmci_layer *L = &m->layers[t];
        if ((rc = load_layer(b, t, prev_nodes, L, err)) ||
            (rc = check_layer(xmci_bundle_dir(b), t, m->nr_features, L, err)))
            return rc;
        prev_nodes = L->nr_nodes;
    }
    return load_copies(b, m, err);
}
