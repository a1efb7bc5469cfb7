/* tree.c: building the label tree (see tree.h).
 *
 * The binary tree is stored heap-style (root 1, children 2n and 2n+1) as one array of label ids that every
 * level re-cuts in place, so a level is a list of contiguous ranges. Each node draws its own seed from one
 * generator seeded with the tree seed, in node order, as PECOS does, which makes the split of a node
 * independent of the order threads run in. */
#include "tree.h"
#include "xmc/train.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "parallel.h"
#include "rng.h"

void xmci_tree_params_default(xmci_tree_params *p)
{
    p->nr_splits = XMC_TRAIN_DEFAULT_NR_SPLITS;
    p->max_leaf_size = XMC_TRAIN_DEFAULT_MAX_LEAF_SIZE;
    p->max_iter = 20;
    p->seed = 0;
    p->threads = 1;
}

void xmci_tree_free(xmci_tree *tree)
{
    for (uint32_t t = 0; t < tree->depth && t < XMCI_TREE_MAX_DEPTH; t++) free(tree->parent[t]);
    memset(tree, 0, sizeof *tree);
}

typedef struct {
    const xmci_csr *feat;
    uint32_t *elems;
    const uint32_t *seeds;
    uint32_t level;       /* nodes 2^level .. 2^(level+1)-1 */
    uint32_t nr_labels;
    int max_iter;
    atomic_uint next;
    xmc_err rc;
    xmc_error err;
    pthread_mutex_t lock;
} split_job;

/* Range of heap node nid at level lv when n labels are cut in halves (floor left) level by level. */
static void node_range(uint32_t nid, uint32_t lv, uint32_t n, uint32_t *b, uint32_t *e)
{
    uint32_t lo = 0, hi = n;
    for (int bit = (int)lv - 1; bit >= 0; bit--) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((nid >> bit) & 1u) lo = mid; else hi = mid;
    }
    *b = lo;
    *e = hi;
}

static void *split_worker(void *arg)
{
    split_job *job = arg;
    uint32_t first = 1u << job->level, count = 1u << job->level;
    xmci_kmeans_ws *ws = NULL;
    xmc_error err;
    if (xmci_kmeans_ws_new(job->feat->cols, job->nr_labels, &ws, &err)) {
        pthread_mutex_lock(&job->lock);
        job->rc = err.code;
        job->err = err;
        pthread_mutex_unlock(&job->lock);
        return NULL;
    }
    for (;;) {
        uint32_t k = atomic_fetch_add(&job->next, 1);
        if (k >= count) break;
        uint32_t nid = first + k, b, e;
        node_range(nid, job->level, job->nr_labels, &b, &e);
        if (e - b < 2) continue;
        xmc_rng rng;
        xmc_rng_seed(&rng, job->seeds[nid]);
        xmci_kmeans_split(job->feat, job->elems + b, e - b, &rng, job->max_iter, ws);
    }
    xmci_kmeans_ws_free(ws);
    return NULL;
}

xmc_err xmci_tree_build(const xmci_csr *feat, const xmci_tree_params *p, xmci_tree *tree, xmc_error *err)
{
    memset(tree, 0, sizeof *tree);
    uint32_t L = feat->rows;
    if (L == 0) return xmc_error_set(err, XMC_ERR_EMPTY, "no labels to build a tree over");
    if (p->nr_splits < 2) return xmc_error_set(err, XMC_ERR_ARG, "nr_splits must be at least 2");
    if (p->max_leaf_size < 1) return xmc_error_set(err, XMC_ERR_ARG, "max_leaf_size must be at least 1");
    if (p->max_leaf_size >= L) {
        tree->depth = 1;
        tree->nr_nodes[0] = L;
        tree->parent[0] = calloc(L, sizeof(uint32_t));
        if (!tree->parent[0]) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
        return XMC_OK;
    }
    uint32_t d = 1;
    while (d < 31 && ((uint64_t)p->max_leaf_size << d) < L) d++; /* smallest d with L / 2^d <= max_leaf_size */
    /* leaves come from balanced binary splits, 2^d of them: max_leaf_size 1 has one leaf per label only when L
     * is a power of two; otherwise some leaves would be empty */
    if ((1u << d) > L)
        return xmc_error_set(err, XMC_ERR_ARG, "max_leaf_size %u needs %u leaf clusters (balanced binary splits) for "
                             "%u labels, more than there are labels: use max_leaf_size 2 or more",
                             p->max_leaf_size, 1u << d, L);
    uint32_t nodes = 1u << (d + 1);
    uint32_t *seeds = malloc(nodes * sizeof *seeds);
    uint32_t *elems = malloc(L * sizeof *elems);
    uint32_t *leaf_of = malloc(L * sizeof *leaf_of);
    xmc_err rc = XMC_OK;
    if (!seeds || !elems || !leaf_of) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
    xmc_rng rng;
    xmc_rng_seed(&rng, p->seed);
    for (uint32_t i = 0; i < nodes; i++) seeds[i] = xmc_rng_next(&rng);
    for (uint32_t i = 0; i < L; i++) elems[i] = i;
    int threads = p->threads > 0 ? p->threads : 1;
    for (uint32_t lv = 0; lv < d; lv++) {
        split_job job = {.feat = feat, .elems = elems, .seeds = seeds, .level = lv, .nr_labels = L,
                         .max_iter = p->max_iter > 0 ? p->max_iter : 20};
        atomic_init(&job.next, 0);
        pthread_mutex_init(&job.lock, NULL);
        int nt = (1u << lv) < (uint32_t)threads ? (int)(1u << lv) : threads;
        xmci_parallel_run(split_worker, &job, nt);
        pthread_mutex_destroy(&job.lock);
        if (job.rc) { rc = job.rc; if (err) *err = job.err; goto out; }
    }
    /* leaf cluster of every label */
    for (uint32_t k = 0; k < (1u << d); k++) {
        uint32_t b, e;
        node_range((1u << d) + k, d, L, &b, &e);
        for (uint32_t i = b; i < e; i++) leaf_of[elems[i]] = k;
    }
    /* the chain: group clusters nr_splits at a time while more than nr_splits remain */
    uint32_t counts[XMCI_TREE_MAX_DEPTH], nlev = 0;
    uint32_t K = 1u << d;
    counts[nlev++] = K;
    while (K > p->nr_splits && nlev < XMCI_TREE_MAX_DEPTH - 2) {
        K = (K + p->nr_splits - 1) / p->nr_splits;
        counts[nlev++] = K;
    }
    /* layers top to bottom: [K_top clusters (parent root)] ... [2^d clusters] [L labels] */
    tree->depth = nlev + 1;
    for (uint32_t t = 0; t < nlev; t++) {
        uint32_t cnt = counts[nlev - 1 - t];
        tree->nr_nodes[t] = cnt;
        tree->parent[t] = malloc(cnt * sizeof(uint32_t));
        if (!tree->parent[t]) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto out; }
        for (uint32_t j = 0; j < cnt; j++) tree->parent[t][j] = t == 0 ? 0 : j / p->nr_splits;
    }
    tree->nr_nodes[nlev] = L;
    tree->parent[nlev] = leaf_of;
    leaf_of = NULL;
out:
    if (rc) xmci_tree_free(tree);
    free(seeds);
    free(elems);
    free(leaf_of);
    return rc;
}

xmc_err xmci_tree_from_chain(const xmci_csr *c, uint32_t depth, xmci_tree *tree, xmc_error *err)
{
    memset(tree, 0, sizeof *tree);
    if (depth < 1 || depth > XMCI_TREE_MAX_DEPTH) return xmc_error_set(err, XMC_ERR_ARG, "bad tree depth %u", depth);
    tree->depth = depth;
    for (uint32_t t = 0; t < depth; t++) {
        uint32_t want_cols = t == 0 ? 1 : c[t - 1].rows;
        if (c[t].cols != want_cols) {
            xmci_tree_free(tree);
            return xmc_error_set(err, XMC_ERR_SHAPE, "cluster layer %u has %u columns, the layer above has %u nodes", t,
                                 c[t].cols, want_cols);
        }
        tree->nr_nodes[t] = c[t].rows;
        tree->parent[t] = malloc((c[t].rows ? c[t].rows : 1) * sizeof(uint32_t));
        if (!tree->parent[t]) { xmci_tree_free(tree); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
        for (uint32_t j = 0; j < c[t].rows; j++) {
            if (c[t].indptr[j + 1] - c[t].indptr[j] != 1) {
                xmci_tree_free(tree);
                return xmc_error_set(err, XMC_ERR_SHAPE, "cluster layer %u: node %u has %llu parents, want 1", t, j,
                                     (unsigned long long)(c[t].indptr[j + 1] - c[t].indptr[j]));
            }
            tree->parent[t][j] = c[t].indices[c[t].indptr[j]];
        }
    }
    return XMC_OK;
}
