/* disentangle.c: placing labels in several leaf clusters and merging their copies (see disentangle.h).
 *
 * Placement takes one pass over the labels with the transposed label matrix: a label's votes live in one
 * array over the leaves, reset through the list of leaves it touched, so a label costs its positives
 * times the beam, not the number of leaves. */
#include "disentangle.h"

#include <stdlib.h>
#include <string.h>

#include "beam.h"

uint32_t xmci_copy_label(const uint32_t *copy_ptr, uint32_t nr_labels, uint32_t copy)
{
    /* the last l with copy_ptr[l] <= copy */
    uint32_t lo = 0, hi = nr_labels;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (copy_ptr[mid] <= copy) lo = mid; else hi = mid;
    }
    return lo;
}

uint32_t xmci_copies_max(const uint32_t *copy_ptr, uint32_t nr_labels)
{
    uint32_t most = 1;
    for (uint32_t l = 0; l < nr_labels; l++)
        if (copy_ptr[l + 1] - copy_ptr[l] > most) most = copy_ptr[l + 1] - copy_ptr[l];
    return most;
}

uint32_t xmci_copies_merge(const uint32_t *copy_ptr, uint32_t nr_labels, const xmc_hit *in, uint32_t n, uint32_t k,
                           xmc_hit *out)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n && m < k; i++) {
        uint32_t l = xmci_copy_label(copy_ptr, nr_labels, in[i].label), j = 0;
        while (j < m && out[j].label != l) j++; /* k is small: a scan beats a table to clear per search */
        if (j == m) out[m++] = (xmc_hit){l, in[i].score};
    }
    return m;
}

/* ---- placement ---------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t leaf, votes;
    float score;
} vote;

static int cmp_vote(const void *a, const void *b)
{
    const vote *x = a, *y = b;
    if (x->votes != y->votes) return x->votes > y->votes ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->leaf > y->leaf) - (x->leaf < y->leaf);
}

/* The inner layers of tree copied into out, with room for a last layer set by the caller. */
static xmc_err copy_inner(const xmci_tree *tree, xmci_tree *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    out->depth = tree->depth;
    for (uint32_t t = 0; t + 1 < tree->depth; t++) {
        out->nr_nodes[t] = tree->nr_nodes[t];
        out->parent[t] = malloc((tree->nr_nodes[t] ? tree->nr_nodes[t] : 1) * sizeof(uint32_t));
        if (!out->parent[t]) {
            xmci_tree_free(out);
            return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        }
        memcpy(out->parent[t], tree->parent[t], tree->nr_nodes[t] * sizeof(uint32_t));
    }
    return XMC_OK;
}

xmc_err xmci_disentangle(const xmci_xlinear *m, const xmci_tree *tree, const xmci_csr *x, const xmci_csr *y,
                         uint32_t k, uint32_t beam, int post, int threads, xmci_tree *tree_out,
                         xmci_csr *y_copies, uint32_t **copy_ptr_out, xmc_error *err)
{
    memset(tree_out, 0, sizeof *tree_out);
    memset(y_copies, 0, sizeof *y_copies);
    *copy_ptr_out = NULL;
    const uint32_t D = tree->depth, L = y->cols, N = y->rows;
    if (k < 1 || k > XMCI_DISENTANGLE_MAX)
        return xmc_error_set(err, XMC_ERR_ARG, "disentangle k %u outside 1..%d", k, XMCI_DISENTANGLE_MAX);
    if (D < 1 || m->depth != D || tree->nr_nodes[D - 1] != L || x->rows != N)
        return xmc_error_set(err, XMC_ERR_ARG, "model, tree and label matrix do not match");
    if (beam < 1) beam = 1;
    /* one layer: every label's only leaf is the root */
    if (D == 1) k = 1;
    const uint32_t K = D > 1 ? tree->nr_nodes[D - 2] : 1;

    xmc_hit *hits = NULL;
    uint32_t *nhits = NULL, *copy_ptr = NULL, *copy_leaf = NULL, *entry_copy = NULL, *votes = NULL, *touched = NULL;
    float *score = NULL;
    vote *cand = NULL;
    xmci_csr yt = {0};
    xmc_err rc = XMC_OK;
    uint64_t nnz = xmci_csr_nnz(y);
    copy_ptr = malloc(((size_t)L + 1) * sizeof *copy_ptr);
    copy_leaf = malloc(((size_t)L * k + 1) * sizeof *copy_leaf);
    entry_copy = malloc((nnz ? nnz : 1) * sizeof *entry_copy);
    votes = calloc(K, sizeof *votes);
    score = calloc(K, sizeof *score);
    touched = malloc(K * sizeof *touched);
    cand = malloc(K * sizeof *cand);
    if (!copy_ptr || !copy_leaf || !entry_copy || !votes || !score || !touched || !cand) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for label placement");
        goto out;
    }
    if ((rc = xmci_csr_transpose(y, &yt, err))) goto out;
    if (k > 1) {
        hits = malloc((size_t)N * beam * sizeof *hits);
        nhits = malloc(((size_t)N + 1) * sizeof *nhits);
        if (!hits || !nhits) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for %u routed instances", N); goto out; }
        if ((rc = xmci_beam_search_batch(m, x, beam, beam, post, D - 1, threads, hits, nhits, err))) goto out;
    }

    uint32_t C = 0;
    for (uint32_t l = 0; l < L; l++) {
        copy_ptr[l] = C;
        uint64_t b = yt.indptr[l], e = yt.indptr[l + 1];
        uint32_t nt = 0;
        if (k > 1) {
            for (uint64_t q = b; q < e; q++) {
                const xmc_hit *h = hits + (size_t)yt.indices[q] * beam;
                for (uint32_t a = 0; a < nhits[yt.indices[q]]; a++) {
                    uint32_t leaf = h[a].label;
                    if (!votes[leaf]) touched[nt++] = leaf;
                    votes[leaf]++;
                    score[leaf] += h[a].score;
                }
            }
        }
        if (nt == 0) {
            /* one copy in the first model's leaf */
            copy_leaf[C] = D > 1 ? tree->parent[D - 1][l] : 0;
            for (uint64_t q = b; q < e; q++) entry_copy[q] = C;
            C++;
            continue;
        }
        for (uint32_t a = 0; a < nt; a++) {
            uint32_t leaf = touched[a];
            cand[a] = (vote){leaf, votes[leaf], score[leaf]};
            votes[leaf] = 0;
            score[leaf] = 0;
        }
        qsort(cand, nt, sizeof *cand, cmp_vote);
        uint32_t nc = nt < k ? nt : k;
        uint32_t owned[XMCI_DISENTANGLE_MAX] = {0};
        /* each positive to the chosen leaf its beam ranks highest; entry_copy holds the slot for now */
        for (uint64_t q = b; q < e; q++) {
            const xmc_hit *h = hits + (size_t)yt.indices[q] * beam;
            uint32_t slot = 0, found = 0;
            for (uint32_t a = 0; a < nhits[yt.indices[q]] && !found; a++)
                for (uint32_t s = 0; s < nc; s++)
                    if (h[a].label == cand[s].leaf) { slot = s; found = 1; break; }
            entry_copy[q] = slot;
            owned[slot]++;
        }
        /* copies no positive belongs to are dropped; the others are numbered in vote order */
        uint32_t slot_copy[XMCI_DISENTANGLE_MAX];
        for (uint32_t s = 0; s < nc; s++) {
            if (!owned[s]) continue;
            slot_copy[s] = C;
            copy_leaf[C++] = cand[s].leaf;
        }
        for (uint64_t q = b; q < e; q++) entry_copy[q] = slot_copy[entry_copy[q]];
    }
    copy_ptr[L] = C;

    /* y_copies: N x C, each positive in its copy; labels run in order and so do their copies, so filling
     * the rows label by label keeps every row sorted */
    if ((rc = xmci_csr_alloc(y_copies, N, C, nnz, err))) goto out;
    for (uint32_t i = 0; i <= N; i++) y_copies->indptr[i] = 0;
    for (uint64_t q = 0; q < nnz; q++) y_copies->indptr[yt.indices[q] + 1]++;
    for (uint32_t i = 0; i < N; i++) y_copies->indptr[i + 1] += y_copies->indptr[i];
    {
        uint64_t *fill = malloc(((size_t)N + 1) * sizeof *fill);
        if (!fill) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        memcpy(fill, y_copies->indptr, ((size_t)N + 1) * sizeof *fill);
        for (uint32_t l = 0; l < L; l++)
            for (uint64_t q = yt.indptr[l]; q < yt.indptr[l + 1]; q++) {
                uint64_t p = fill[yt.indices[q]]++;
                y_copies->indices[p] = entry_copy[q];
                y_copies->data[p] = 1.0f;
            }
        free(fill);
    }

    if ((rc = copy_inner(tree, tree_out, err))) goto out;
    tree_out->nr_nodes[D - 1] = C;
    tree_out->parent[D - 1] = realloc(copy_leaf, ((size_t)C ? C : 1) * sizeof *copy_leaf);
    if (!tree_out->parent[D - 1]) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    copy_leaf = NULL;
    *copy_ptr_out = copy_ptr;
    copy_ptr = NULL;
out:
    if (rc) {
        xmci_tree_free(tree_out);
        xmci_csr_free(y_copies);
    }
    free(hits);
    free(nhits);
    free(copy_ptr);
    free(copy_leaf);
    free(entry_copy);
    free(votes);
    free(score);
    free(touched);
    free(cand);
    xmci_csr_free(&yt);
    return rc;
}
