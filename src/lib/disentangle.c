/* disentangle.c: placing labels in several leaf clusters and merging their copies (see disentangle.h).
 *
 * Placement takes one pass over the labels with the transposed label matrix: a label's votes live in one
 * array over the leaves, reset through the list of leaves it touched, so a label costs its positives
 * times the beam, not the number of leaves. */
#include "disentangle.h"

#include <math.h>
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

/* How many times closer than the label's own leaf (or, without it among the candidates, the most voted)
 * another leaf must be to take a positive: near leaves of one topic are about as close as each other, a
 * second meaning's leaf is many times closer. */
#define MARGIN 1.5f

typedef struct {
    uint32_t leaf, votes;
    float score;
} vote;

static int cmp_vote(const void *a, const void *b)
{
    const vote *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->votes != y->votes) return x->votes > y->votes ? -1 : 1;
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

/* Leaf sums S (K x F): the label embeddings of each leaf's labels added up, with each row's squared norm. */
static xmc_err leaf_sums(const xmci_tree *tree, const xmci_csr *z, xmci_csr *sums, double **sq, xmc_error *err)
{
    const uint32_t D = tree->depth, K = tree->nr_nodes[D - 2], L = tree->nr_nodes[D - 1];
    xmci_csr members = {0};
    xmc_err rc = xmci_csr_alloc(&members, K, L, L, err);
    if (rc) return rc;
    const uint32_t *leaf = tree->parent[D - 1];
    for (uint32_t l = 0; l < L; l++) members.indptr[leaf[l] + 1]++;
    for (uint32_t c = 0; c < K; c++) members.indptr[c + 1] += members.indptr[c];
    uint64_t *fill = malloc(((size_t)K + 1) * sizeof *fill);
    if (!fill) { xmci_csr_free(&members); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    memcpy(fill, members.indptr, ((size_t)K + 1) * sizeof *fill);
    for (uint32_t l = 0; l < L; l++) {
        uint64_t p = fill[leaf[l]]++;
        members.indices[p] = l;
        members.data[p] = 1.0f;
    }
    free(fill);
    rc = xmci_csr_matmul(&members, z, sums, err);
    xmci_csr_free(&members);
    if (rc) return rc;
    *sq = malloc(((size_t)K ? K : 1) * sizeof **sq);
    if (!*sq) { xmci_csr_free(sums); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    for (uint32_t c = 0; c < K; c++) {
        double v = 0;
        for (uint64_t p = sums->indptr[c]; p < sums->indptr[c + 1]; p++) v += (double)sums->data[p] * sums->data[p];
        (*sq)[c] = v;
    }
    return XMC_OK;
}

/* x's row i dotted with a dense vector. */
static double row_dot(const xmci_csr *x, uint32_t i, const float *dense)
{
    double v = 0;
    for (uint64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) v += (double)x->data[p] * dense[x->indices[p]];
    return v;
}

xmc_err xmci_disentangle(const xmci_xlinear *m, const xmci_tree *tree, const xmci_csr *x, const xmci_csr *y,
                         const xmci_csr *z, uint32_t k, uint32_t beam, int post, int threads, xmci_tree *tree_out,
                         xmci_csr *y_copies, uint32_t **copy_ptr_out, xmc_error *err)
{
    memset(tree_out, 0, sizeof *tree_out);
    memset(y_copies, 0, sizeof *y_copies);
    *copy_ptr_out = NULL;
    const uint32_t D = tree->depth, L = y->cols, N = y->rows, F = x->cols;
    if (k < 1 || k > XMCI_DISENTANGLE_MAX)
        return xmc_error_set(err, XMC_ERR_ARG, "disentangle k %u outside 1..%d", k, XMCI_DISENTANGLE_MAX);
    if (D < 1 || m->depth != D || tree->nr_nodes[D - 1] != L || x->rows != N || z->rows != L || z->cols != F)
        return xmc_error_set(err, XMC_ERR_ARG, "model, tree, label embeddings and label matrix do not match");
    if (beam < 1) beam = 1;
    /* one layer: every label's only leaf is the root */
    if (D == 1) k = 1;
    const uint32_t K = D > 1 ? tree->nr_nodes[D - 2] : 1;

    xmc_hit *hits = NULL;
    uint32_t *nhits = NULL, *copy_ptr = NULL, *copy_leaf = NULL, *entry_copy = NULL, *votes = NULL, *touched = NULL;
    float *score = NULL, *dense = NULL, *aff = NULL;
    double *sq = NULL;
    vote *cand = NULL;
    xmci_csr yt = {0}, sums = {0};
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
        uint64_t most = 0; /* the most positives of a label: the affinity table's rows */
        for (uint32_t l = 0; l < L; l++)
            if (yt.indptr[l + 1] - yt.indptr[l] > most) most = yt.indptr[l + 1] - yt.indptr[l];
        hits = malloc((size_t)N * beam * sizeof *hits);
        nhits = malloc(((size_t)N + 1) * sizeof *nhits);
        dense = calloc((size_t)F + 1, sizeof *dense);
        aff = malloc(((size_t)most * k + 1) * sizeof *aff);
        if (!hits || !nhits || !dense || !aff) {
            rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for %u routed instances", N);
            goto out;
        }
        if ((rc = leaf_sums(tree, z, &sums, &sq, err))) goto out;
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
        if (nt <= 1) {
            /* one copy: in the leaf its records reach, or without any in the first model's leaf */
            copy_leaf[C] = nt ? touched[0] : D > 1 ? tree->parent[D - 1][l] : 0;
            if (nt) votes[touched[0]] = 0, score[touched[0]] = 0;
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
        uint32_t nc = nt < k ? nt : k, n = (uint32_t)(e - b);
        /* the label's own leaf (its first model's), when a candidate, is where positives stay by default */
        const uint32_t own = tree->parent[D - 1][l];
        for (uint32_t s = 1; s < nc; s++)
            if (cand[s].leaf == own) { vote v = cand[s]; memmove(cand + 1, cand, s * sizeof *cand); cand[0] = v; break; }
        /* affinity of each positive to each candidate: cosine with the sum of the leaf's label embeddings */
        for (uint32_t s = 0; s < nc; s++) {
            uint32_t c = cand[s].leaf;
            for (uint64_t p = sums.indptr[c]; p < sums.indptr[c + 1]; p++) dense[sums.indices[p]] = sums.data[p];
            double norm = sq[c] > 1e-12 ? sqrt(sq[c]) : 0;
            for (uint32_t a = 0; a < n; a++)
                aff[(size_t)a * nc + s] = norm > 0 ? (float)(row_dot(x, yt.indices[b + a], dense) / norm) : 0.0f;
            for (uint64_t p = sums.indptr[c]; p < sums.indptr[c + 1]; p++) dense[sums.indices[p]] = 0;
        }
        /* each positive to its most similar candidate; a candidate left with less than a 1/(2k) share
         * of the positives is dropped (noise, not a meaning) and its positives go to the best of the rest */
        uint32_t keep[XMCI_DISENTANGLE_MAX], owned[XMCI_DISENTANGLE_MAX] = {0};
        for (uint32_t s = 0; s < nc; s++) keep[s] = 1;
        for (int round = 0; round < 2; round++) {
            memset(owned, 0, sizeof owned);
            for (uint32_t a = 0; a < n; a++) {
                /* the most voted candidate unless another is clearly closer (MARGIN times its affinity) */
                const float *af = aff + (size_t)a * nc;
                uint32_t best = UINT32_MAX;
                for (uint32_t s = 0; s < nc; s++)
                    if (keep[s] && best == UINT32_MAX) best = s;
                const float base = af[best];
                for (uint32_t s = best + 1; s < nc; s++)
                    if (keep[s] && af[s] > MARGIN * base && af[s] > af[best]) best = s;
                entry_copy[b + a] = best;
                owned[best]++;
            }
            if (round) break;
            uint32_t top = 0;
            for (uint32_t s = 1; s < nc; s++) if (owned[s] > owned[top]) top = s;
            for (uint32_t s = 0; s < nc; s++) keep[s] = s == top || (uint64_t)owned[s] * 2 * k >= n;
        }
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
    free(dense);
    free(aff);
    free(sq);
    xmci_csr_free(&yt);
    xmci_csr_free(&sums);
    return rc;
}
