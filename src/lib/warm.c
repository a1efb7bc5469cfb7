/* warm.c: the warm-started label tree (see warm.h).
 *
 * The serving tree is read back from its layers' child lists (layer.h); the centroids are one sparse product
 * (leaf-membership x PIFA) and the cosines of the new labels to them another (new PIFA rows x centroids^T), so
 * the cost is that of PIFA itself, never labels x clusters x features dense. */
#include "warm.h"

#include <stdlib.h>
#include <string.h>

void xmci_warm_tree_free(xmci_warm_tree *wt)
{
    xmci_tree_free(&wt->tree);
    for (uint32_t t = 0; t < XMCI_TREE_MAX_DEPTH; t++) free(wt->node_map[t]);
    memset(wt, 0, sizeof *wt);
}

/* parent[j] of every node of a layer, from its child lists. */
static uint32_t *layer_parents(const xmci_layer *layer, xmc_error *err)
{
    uint32_t *parent = malloc((layer->nr_nodes ? layer->nr_nodes : 1) * sizeof *parent);
    if (!parent) { xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); return NULL; }
    for (uint32_t p = 0; p < layer->nr_parents; p++)
        for (uint32_t k = layer->child_ptr[p]; k < layer->child_ptr[p + 1]; k++) parent[layer->child_idx[k]] = p;
    return parent;
}

/* Chooses a leaf for each new label (leaf_of[l] == XMCI_WARM_NONE on entry) and counts them into cnt. */
static xmc_err place_new_labels(const xmci_csr *z, uint32_t *leaf_of, uint32_t nleaves, uint32_t *cnt,
                                uint32_t max_leaf_size, xmc_error *err)
{
    const uint32_t L = z->rows;
    xmci_csr member = {0}, cent = {0}, centt = {0}, znew = {0}, score = {0};
    uint32_t *newl = NULL, nnew = 0;
    xmc_err rc = XMC_OK;
    /* membership (leaves x labels) of the known labels, then the normalised centroids */
    xmci_csr_builder b;
    if ((rc = xmci_csr_builder_init(&b, L, err))) return rc;
    {
        uint32_t *ptr = calloc((size_t)nleaves + 1, sizeof *ptr), *idx = malloc((L ? L : 1) * sizeof *idx);
        if (!ptr || !idx) {
            free(ptr);
            free(idx);
            xmci_csr_builder_free(&b);
            return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        }
        for (uint32_t l = 0; l < L; l++)
            if (leaf_of[l] != XMCI_WARM_NONE) ptr[leaf_of[l] + 1]++;
        for (uint32_t k = 0; k < nleaves; k++) ptr[k + 1] += ptr[k];
        uint32_t *fill = malloc(((size_t)nleaves + 1) * sizeof *fill);
        if (!fill) rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        else {
            memcpy(fill, ptr, ((size_t)nleaves + 1) * sizeof *fill);
            for (uint32_t l = 0; l < L; l++)
                if (leaf_of[l] != XMCI_WARM_NONE) idx[fill[leaf_of[l]]++] = l; /* ascending within a leaf */
            for (uint32_t k = 0; k < nleaves && !rc; k++) {
                for (uint32_t q = ptr[k]; q < ptr[k + 1] && !rc; q++) rc = xmci_csr_builder_push(&b, idx[q], 1.0f, err);
                if (!rc) rc = xmci_csr_builder_end_row(&b, err);
            }
        }
        free(fill);
        free(ptr);
        free(idx);
        if (rc) { xmci_csr_builder_free(&b); return rc; }
        xmci_csr_builder_finish(&b, &member);
        member.cols = L;
    }
    if ((rc = xmci_csr_matmul(&member, z, &cent, err))) goto out;
    xmci_csr_normalize_rows(&cent);
    if ((rc = xmci_csr_transpose(&cent, &centt, err))) goto out;
    /* the new labels' rows */
    newl = malloc((L ? L : 1) * sizeof *newl);
    if (!newl) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    uint64_t nnz = 0;
    for (uint32_t l = 0; l < L; l++)
        if (leaf_of[l] == XMCI_WARM_NONE) { newl[nnew++] = l; nnz += z->indptr[l + 1] - z->indptr[l]; }
    if ((rc = xmci_csr_alloc(&znew, nnew, z->cols, nnz, err))) goto out;
    nnz = 0;
    for (uint32_t i = 0; i < nnew; i++) {
        for (uint64_t q = z->indptr[newl[i]]; q < z->indptr[newl[i] + 1]; q++, nnz++) {
            znew.indices[nnz] = z->indices[q];
            znew.data[nnz] = z->data[q];
        }
        znew.indptr[i + 1] = nnz;
    }
    if ((rc = xmci_csr_matmul(&znew, &centt, &score, err))) goto out;
    for (uint32_t i = 0; i < nnew; i++) {
        uint32_t best = XMCI_WARM_NONE, best_room = XMCI_WARM_NONE;
        float bs = 0, brs = 0;
        for (uint64_t q = score.indptr[i]; q < score.indptr[i + 1]; q++) {
            uint32_t k = score.indices[q];
            float s = score.data[q];
            /* ties go to the lower cluster id: scores are scanned in ascending cluster order */
            if (best == XMCI_WARM_NONE || s > bs) { best = k; bs = s; }
            if (cnt[k] < max_leaf_size && (best_room == XMCI_WARM_NONE || s > brs)) { best_room = k; brs = s; }
        }
        uint32_t k = best_room != XMCI_WARM_NONE ? best_room : best;
        if (k == XMCI_WARM_NONE) { /* no shared feature with any cluster: the emptiest one */
            k = 0;
            for (uint32_t c = 1; c < nleaves; c++)
                if (cnt[c] < cnt[k]) k = c;
        }
        leaf_of[newl[i]] = k;
        cnt[k]++;
    }
out:
    xmci_csr_free(&member);
    xmci_csr_free(&cent);
    xmci_csr_free(&centt);
    xmci_csr_free(&znew);
    xmci_csr_free(&score);
    free(newl);
    return rc;
}

xmc_err xmci_warm_tree_build(const xmci_xlinear *serving, const uint32_t *label_map, const xmci_csr *z,
                            uint32_t max_leaf_size, xmci_warm_tree *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    const uint32_t D = serving->depth, L = z->rows;
    if (D < 1 || D > XMCI_TREE_MAX_DEPTH) return xmc_error_set(err, XMC_ERR_SHAPE, "serving model of depth %u", D);
    if (serving->copy_ptr) return xmc_error_set(err, XMC_ERR_ARG, "warm start from a disentangled model is not supported");
    const uint32_t oldL = serving->layers[D - 1].nr_nodes;
    for (uint32_t l = 0; l < L; l++)
        if (label_map[l] != XMCI_WARM_NONE && label_map[l] >= oldL)
            return xmc_error_set(err, XMC_ERR_SHAPE, "label %u maps to serving label %u of %u", l, label_map[l], oldL);
    xmc_err rc = XMC_OK;
    uint32_t *old_parent[XMCI_TREE_MAX_DEPTH] = {0}, *newid[XMCI_TREE_MAX_DEPTH] = {0};
    uint32_t *leaf_of = NULL, *cnt = NULL;
    for (uint32_t l = 0; l < L; l++) {
        if (label_map[l] != XMCI_WARM_NONE) out->kept++;
        else out->added++;
    }
    if (!(out->node_map[D - 1] = malloc((L ? L : 1) * sizeof(uint32_t)))) goto nomem;
    memcpy(out->node_map[D - 1], label_map, (size_t)L * sizeof(uint32_t));
    out->tree.depth = D;
    if (D == 1) { /* one flat layer: every label under the root */
        out->tree.nr_nodes[0] = L;
        if (!(out->tree.parent[0] = calloc(L ? L : 1, sizeof(uint32_t)))) goto nomem;
        out->max_leaf = L;
        return XMC_OK;
    }
    for (uint32_t t = 0; t < D; t++)
        if (!(old_parent[t] = layer_parents(&serving->layers[t], err))) { rc = XMC_ERR_NOMEM; goto fail; }
    const uint32_t nleaves = serving->layers[D - 2].nr_nodes;
    leaf_of = malloc((L ? L : 1) * sizeof *leaf_of);
    cnt = calloc(nleaves ? nleaves : 1, sizeof *cnt);
    if (!leaf_of || !cnt) goto nomem;
    for (uint32_t l = 0; l < L; l++) {
        leaf_of[l] = label_map[l] == XMCI_WARM_NONE ? XMCI_WARM_NONE : old_parent[D - 1][label_map[l]];
        if (leaf_of[l] != XMCI_WARM_NONE) cnt[leaf_of[l]]++;
    }
    if (out->added && (rc = place_new_labels(z, leaf_of, nleaves, cnt, max_leaf_size, err))) goto fail;
    for (uint32_t k = 0; k < nleaves; k++)
        if (cnt[k] > out->max_leaf) out->max_leaf = cnt[k];
    /* keep a node when its subtree still has a label; renumber the kept ones in their old order */
    for (int t = (int)D - 2; t >= 0; t--) {
        const uint32_t n = serving->layers[t].nr_nodes;
        uint32_t *keep = calloc(n ? n : 1, sizeof *keep);
        if (!keep) goto nomem;
        if (t == (int)D - 2) {
            for (uint32_t k = 0; k < n; k++) keep[k] = cnt[k] > 0;
        } else {
            for (uint32_t j = 0; j < serving->layers[t + 1].nr_nodes; j++)
                if (newid[t + 1][j] != XMCI_WARM_NONE) keep[old_parent[t + 1][j]] = 1;
        }
        uint32_t m = 0;
        for (uint32_t j = 0; j < n; j++) keep[j] = keep[j] ? m++ : XMCI_WARM_NONE;
        newid[t] = keep;
        out->tree.nr_nodes[t] = m;
        if (!(out->tree.parent[t] = malloc((m ? m : 1) * sizeof(uint32_t))) ||
            !(out->node_map[t] = malloc((m ? m : 1) * sizeof(uint32_t))))
            goto nomem;
    }
    for (uint32_t t = 0; t + 1 < D; t++)
        for (uint32_t j = 0; j < serving->layers[t].nr_nodes; j++) {
            uint32_t nj = newid[t][j];
            if (nj == XMCI_WARM_NONE) continue;
            out->tree.parent[t][nj] = t == 0 ? 0 : newid[t - 1][old_parent[t][j]];
            out->node_map[t][nj] = j;
        }
    out->tree.nr_nodes[D - 1] = L;
    if (!(out->tree.parent[D - 1] = malloc((L ? L : 1) * sizeof(uint32_t)))) goto nomem;
    for (uint32_t l = 0; l < L; l++) out->tree.parent[D - 1][l] = newid[D - 2][leaf_of[l]];
    goto done;
nomem:
    rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for the warm-started tree");
fail:
    xmci_warm_tree_free(out);
done:
    for (uint32_t t = 0; t < D; t++) {
        free(old_parent[t]);
        free(newid[t]);
    }
    free(leaf_of);
    free(cnt);
    return rc;
}
