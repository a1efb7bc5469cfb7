/* xrt.h: XR-Transformer fine-tuning: one encoder trained level by level, coarse to fine, on a PIFA label tree,
 * with a checkpoint of the whole training state so that a stopped run resumes where it stopped.
 *
 * The recipe is PECOS's (../shared/XR-TRANSFORMER.md): a preliminary tree from PIFA embeddings of the TF-IDF
 * features; every tree level with at most max_clusters nodes is fine-tuned, top first. Level t is a multi-label
 * problem over its clusters with the head of head.h (score = <pooled, W_j> + b_j) and PECOS's (weighted) squared
 * hinge. Targets are the number of the record's labels under each cluster. Active set: level 0 scores every
 * cluster; a deeper level scores the children of the record's positive parents (teacher forcing, "tfn") and,
 * with man_topk > 0, of the man_topk parents that the model as trained on the level above ranks highest for the
 * record (matcher-aware negatives, "tfn+man"), positives first, each row padded to the level's widest row.
 * The matcher is the encoder and head of the level above (PECOS's "transformer-only" matcher, scored over every
 * cluster of that level), not PECOS's concat XR-Linear: it is the model being trained, needs no ranker per level,
 * and its mistakes are the negatives this encoder has to learn apart. The head of level 0 is 0.02 N(0, 1) with bias 0;
 * the head of a deeper level inherits its parent's row (PECOS's "inherit" bootstrap). Both the encoder and the
 * head get a fresh optimiser per level, as PECOS builds them per level: AdamW (HF's form by default; weight decay
 * on every tensor but biases and LayerNorm weights) for the encoder, lazy AdamW on the rows a batch touched for
 * the head (SparseAdam when weight decay is 0); gradients clipped by global norm, encoder and head separately;
 * the learning rate warms up linearly from 0 and decays linearly to 0 over the level's steps.
 *
 * Optional, as PECOS: hidden dropout (dropout > 0) and the `linear` bootstrap of a level's head (an XR-Linear
 * layer fit on the current encoder's embeddings). Not done as PECOS: matcher-aware negatives from the encoder and
 * head rather than a concat XR-Linear model; the final ranker is xmci_train's, on [tfidf ; alpha emb]. Beyond
 * PECOS: a head learning rate of its own (head_lr), since a head row is only updated on the steps whose active
 * sets reach it (a few percent of them at 10^4 clusters), where PECOS's pretrained encoders need less of it.
 *
 * Determinism: the batches of epoch e of level t are a shuffle seeded by (seed, t, e); nothing else is random
 * but the level-0 head (seeded). With the same data, options and OpenBLAS thread count the run is the same bit
 * for bit, stopped and resumed or not.
 *
 * Checkpoint: work_dir/checkpoint.bin, written through a temporary file and a rename every save_steps steps and
 * at the end of every level; layout (little-endian, as every target of xmc):
 *   offset  size       meaning
 *   0       8          magic "XMCXRT01"
 *   8       8          fingerprint: xxh64 of the token ids, labels, tree and every option that shapes the run
 *   16      4          level (u32)
 *   20      4          steps done in that level (u32); equal to the level's steps: the level is finished
 *   24      8          n, floats of the encoder (u64)
 *   32      4          K, clusters of the level (u32)
 *   36      4          H, hidden size (u32)
 *   40      8          encoder optimiser's step count (i64)
 *   48      8          head optimiser's step count (i64)
 *   56      4 n        encoder parameters, then 4 n first and 4 n second moments
 *   ...     4 K H      head weights, then 4 K bias, then the head moments (weights m, v; bias m, v)
 *   end-8   8          xxh64 of every byte before it
 * A file whose size, magic, fingerprint or checksum disagrees is refused (XMC_ERR_CORRUPT, or XMC_ERR_ARG for a
 * checkpoint of another run), never half used.
 *
 * Negatives (tfn+man only): work_dir/negatives.bin holds the man parents of the level being trained, written
 * (temporary file and rename) before its first step, so that a run resumed inside that level uses the parents
 * the level started with (the model that chose them is no longer in the checkpoint):
 *   offset  size       meaning
 *   0       8          magic "XMCXRN01"
 *   8       8          fingerprint (as the checkpoint's)
 *   16      4          level (u32)
 *   20      4          k, parents per record (u32)
 *   24      8          n, records (u64)
 *   32      4 n k      parents of record i at [i k, (i + 1) k), clusters of the level above, best first
 *   end-8   8          xxh64 of every byte before it
 *
 * Output: work_dir/encoder holds config.json and vocab.txt (copies) and model.safetensors (the fine-tuned
 * weights): an encoder directory that --featurizer tfidf+encoder serves. */
#ifndef XMCI_XRT_H
#define XMCI_XRT_H

#include <stddef.h>
#include "adamw.h"
#include "encoder.h"
#include "smat.h"
#include "tfidf.h"
#include "tree.h"

/* How the head of a level below the top starts: each child with its parent's row (PECOS's `inherit`), or fit by an
 * XR-Linear layer on the current encoder's embeddings (PECOS's `linear`, its paper configs' choice). */
typedef enum { XMCI_XRT_INHERIT = 0, XMCI_XRT_LINEAR = 1 } xmci_xrt_bootstrap;

typedef struct xmci_xrt_opts {
    xmci_encoder_config encoder; /* dir, vocab, pooling, max_len (alpha is the ranker's) */
    xmci_tfidf_config tfidf;     /* features of the preliminary tree's PIFA embeddings */
    xmci_tree_params tree;       /* the preliminary tree; default nr_splits 16, max_leaf_size 16 */
    const char *work_dir;        /* checkpoint and the fine-tuned encoder; required */
    int resume;                  /* 1: continue from work_dir's checkpoint; 0: a checkpoint there is an error */
    int batch;                   /* records per step; default 32 */
    int epochs;                  /* per level, when max_steps is 0; default 1 */
    int max_steps;               /* updates per level; 0: epochs x ceil(n / batch) */
    float lr;                    /* peak learning rate; default 1e-4 */
    float head_lr;               /* the head's peak learning rate, same schedule; 0: lr (PECOS's); default 0 */
    int warmup;                  /* warm-up steps per level; default 0 */
    float weight_decay;          /* default 0 */
    float max_grad_norm;         /* 0: no clipping; default 1 */
    xmci_adamw_kind adamw;       /* default XMCI_ADAMW_HF */
    int weighted;                /* weighted squared hinge (label counts as weights); default 1 */
    uint32_t max_clusters;       /* fine-tune levels of at most this many clusters; default 32768 */
    int save_steps;              /* checkpoint every so many steps; 0: only at level ends */
    int man_topk;                /* matcher-aware negatives: the top k parents per record; 0: tfn only (default) */
    float dropout;               /* the encoder's hidden dropout while training, [0, 1); default 0 (bert.h) */
    xmci_xrt_bootstrap bootstrap; /* the head of levels below the top; default XMCI_XRT_INHERIT */
    uint32_t seed;               /* batches and the level-0 head; default 0 */
    int whole_table;             /* tests: each step zeroes, clips and updates the whole word-embedding table
                                  * rather than the rows that can change (bert_opt.h; the same bits) */
    int threads; /* TF-IDF, the tree, the encoder's AdamW, attention, elementwise passes; products if OpenBLAS has 1 */
    void (*progress)(void *ctx, const char *what, double done, double total);
    void *progress_ctx;
} xmci_xrt_opts;

void xmci_xrt_opts_default(xmci_xrt_opts *o);

/* What fine-tuning did, per level. */
typedef struct xmci_xrt_report {
    int levels;                          /* levels fine-tuned */
    uint32_t clusters[XMCI_TREE_MAX_DEPTH];
    int steps[XMCI_TREE_MAX_DEPTH];
    double loss_first[XMCI_TREE_MAX_DEPTH]; /* mean loss of the first epoch this run trained (-1: none) */
    double loss[XMCI_TREE_MAX_DEPTH];    /* mean loss of the last epoch this run trained */
    double seconds[XMCI_TREE_MAX_DEPTH]; /* wall time in this run (0 for a level done before a resume) */
    double tokens_per_s[XMCI_TREE_MAX_DEPTH];
    int width[XMCI_TREE_MAX_DEPTH];      /* the level's padded active width */
    double active_mean[XMCI_TREE_MAX_DEPTH]; /* active entries per record, mean */
    int resumed_level, resumed_step;     /* where the run started: 0, 0 unless resumed */
} xmci_xrt_report;

/* Fine-tunes the encoder of o->encoder on texts/lens (n = y->rows) and labels y, and writes it to
 * o->work_dir/encoder, whose path goes to encoder_dir (size bytes). Fails with XMC_ERR_ARG (options, a
 * checkpoint of another run or one present without resume), XMC_ERR_EMPTY, the errors of the encoder, TF-IDF
 * and tree, XMC_ERR_IO / XMC_ERR_CORRUPT (checkpoint) or XMC_ERR_NOMEM. A failure leaves the latest checkpoint,
 * from which a run with resume continues. report may be NULL. */
xmc_err xmci_xrt_finetune(const char *const *texts, const size_t *lens, const xmci_csr *y, const xmci_xrt_opts *o,
                         char *encoder_dir, size_t size, xmci_xrt_report *report, xmc_error *err);

/* Active sets of level t (1 <= t < tree->depth) of tree for labels y (n = y->rows, y->cols = the tree's labels):
 * row i holds the clusters of level t above i's labels (value: how many of them), then each other child (value
 * 0, once) of the level t-1 parents of those labels and of man[i k .. i k + k) (clusters of level t-1; man may
 * be NULL with k 0), parent by parent. *width = the longest row. active is the caller's to free with
 * xmci_csr_free. Fails with XMC_ERR_RANGE (a man parent outside level t-1, t out of range) or XMC_ERR_NOMEM;
 * nothing is left allocated then. */
xmc_err xmci_xrt_active_sets(const xmci_tree *tree, const xmci_csr *y, uint32_t t, const uint32_t *man, int k,
                             xmci_csr *active, int *width, xmc_error *err);

#endif
