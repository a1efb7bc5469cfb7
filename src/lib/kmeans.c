/* kmeans.c: balanced spherical 2-means (see kmeans.h).
 *
 * Centroids live in two dense float arrays over the feature space; only the features the node's elements
 * touch are written, listed and cleared again, so a split costs O(nnz of the node), never O(features). */
#include "kmeans.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct xmci_kmeans_ws {
    float *c1, *c2;          /* dense, all zero between calls */
    uint32_t *touched;       /* features written in this call */
    unsigned char *mark;     /* 1 for a touched feature */
    uint32_t nr_features;
    struct item { float score; uint32_t id; } *items;
    uint32_t *prev;
};

xmc_err xmci_kmeans_ws_new(uint32_t nr_features, uint32_t max_elems, xmci_kmeans_ws **out, xmc_error *err)
{
    xmci_kmeans_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    size_t f = nr_features ? nr_features : 1, m = max_elems ? max_elems : 1;
    ws->nr_features = nr_features;
    ws->c1 = calloc(f, sizeof *ws->c1);
    ws->c2 = calloc(f, sizeof *ws->c2);
    ws->touched = malloc(f * sizeof *ws->touched);
    ws->mark = calloc(f, 1);
    ws->items = malloc(m * sizeof *ws->items);
    ws->prev = malloc(m * sizeof *ws->prev);
    if (!ws->c1 || !ws->c2 || !ws->touched || !ws->mark || !ws->items || !ws->prev) {
        xmci_kmeans_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for k-means scratch (%u features)", nr_features);
    }
    *out = ws;
    return XMC_OK;
}

void xmci_kmeans_ws_free(xmci_kmeans_ws *ws)
{
    if (!ws) return;
    free(ws->c1);
    free(ws->c2);
    free(ws->touched);
    free(ws->mark);
    free(ws->items);
    free(ws->prev);
    free(ws);
}

static int cmp_item(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->score < y->score) return -1;
    if (x->score > y->score) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

static inline int item_less(const struct item *x, const struct item *y)
{
    return x->score < y->score || (!(x->score > y->score) && x->id < y->id);
}

/* Moves the k smallest items (by cmp_item's order) to it[0..k), in no particular order: the split only needs
 * which elements fall in each half (each half is sorted by id afterwards), which a selection gives in O(n)
 * where the sort of every score took O(n log n). Hoare partitions around a median of three; a range that
 * shrinks too slowly for 2 log2 n rounds is sorted instead, so the worst case stays O(n log n). */
static void select_smallest(struct item *it, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n; /* the k-th boundary lies in [lo, hi) */
    int budget = 2;
    for (uint32_t m = n; m > 1; m >>= 1) budget += 2;
    while (hi - lo > 16 && k > lo && k < hi) {
        if (budget-- == 0) {
            qsort(it + lo, hi - lo, sizeof *it, cmp_item);
            return;
        }
        uint32_t mid = lo + (hi - lo) / 2;
        struct item a = it[lo], b = it[mid], c = it[hi - 1], pv;
        if (item_less(&a, &b)) pv = item_less(&b, &c) ? b : item_less(&a, &c) ? c : a;
        else pv = item_less(&a, &c) ? a : item_less(&b, &c) ? c : b;
        /* Hoare: afterwards [lo, j] <= pv <= [j+1, hi) */
        uint32_t i = lo - 1, j = hi;
        for (;;) {
            do i++; while (item_less(&it[i], &pv));
            do j--; while (item_less(&pv, &it[j]));
            if (i >= j) break;
            struct item t = it[i];
            it[i] = it[j];
            it[j] = t;
        }
        if (k <= j) hi = j + 1;
        else lo = j + 1;
    }
    if (k > lo && k < hi) qsort(it + lo, hi - lo, sizeof *it, cmp_item);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* c += sign * row e, remembering touched features. */
static uint32_t add_row(xmci_kmeans_ws *ws, float *c, const xmci_csr *feat, uint32_t e, float sign, uint32_t nt)
{
    for (uint64_t p = feat->indptr[e]; p < feat->indptr[e + 1]; p++) {
        uint32_t f = feat->indices[p];
        assert(f < ws->nr_features);
        if (!ws->mark[f]) { ws->mark[f] = 1; ws->touched[nt++] = f; }
        c[f] += sign * feat->data[p];
    }
    return nt;
}

static float dot_row(const float *c, const xmci_csr *feat, uint32_t e)
{
    float s = 0;
    for (uint64_t p = feat->indptr[e]; p < feat->indptr[e + 1]; p++) s += c[feat->indices[p]] * feat->data[p];
    return s;
}

void xmci_kmeans_split(const xmci_csr *feat, uint32_t *elems, uint32_t n, xmc_rng *rng, int max_iter,
                      xmci_kmeans_ws *ws)
{
    assert(n >= 2);
    uint32_t half = n / 2;
    for (int iter = 0; iter < max_iter; iter++) {
        uint32_t nt = 0;
        if (iter == 0) {
            uint32_t r = (uint32_t)xmc_rng_uniform(rng, 0, n - 1);
            uint32_t l = (uint32_t)((r + xmc_rng_uniform(rng, 1, n - 1)) % n);
            nt = add_row(ws, ws->c1, feat, elems[r], 1.0f, nt);
            nt = add_row(ws, ws->c1, feat, elems[l], -1.0f, nt);
        } else {
            for (uint32_t i = half; i < n; i++) nt = add_row(ws, ws->c1, feat, elems[i], 1.0f, nt);
            for (uint32_t i = 0; i < half; i++) nt = add_row(ws, ws->c2, feat, elems[i], 1.0f, nt);
            float n1 = 0, n2 = 0;
            for (uint32_t t = 0; t < nt; t++) {
                uint32_t f = ws->touched[t];
                n1 += ws->c1[f] * ws->c1[f];
                n2 += ws->c2[f] * ws->c2[f];
            }
            n1 = sqrtf(n1);
            n2 = sqrtf(n2);
            for (uint32_t t = 0; t < nt; t++) {
                uint32_t f = ws->touched[t];
                float a = n1 > 0 ? ws->c1[f] / n1 : ws->c1[f];
                float b = n2 > 0 ? ws->c2[f] / n2 : ws->c2[f];
                ws->c1[f] = a - b;
                ws->c2[f] = 0;
            }
        }
        for (uint32_t i = 0; i < n; i++) ws->items[i] = (struct item){dot_row(ws->c1, feat, elems[i]), elems[i]};
        assert(nt <= ws->nr_features);
        for (uint32_t t = 0; t < nt; t++) {
            ws->c1[ws->touched[t]] = 0;
            ws->mark[ws->touched[t]] = 0;
        }
        memcpy(ws->prev, elems, half * sizeof *elems);
        select_smallest(ws->items, n, half);
        for (uint32_t i = 0; i < n; i++) elems[i] = ws->items[i].id;
        qsort(elems, half, sizeof *elems, cmp_u32);
        qsort(elems + half, n - half, sizeof *elems, cmp_u32);
        if (memcmp(ws->prev, elems, half * sizeof *elems) == 0) break;
    }
    /* each cluster (n/2 and n - n/2 elements: balanced by construction) sorted by id, no element twice */
#ifndef NDEBUG
    for (uint32_t i = 1; i < n; i++) assert(i == half || elems[i - 1] < elems[i]);
#endif
}
