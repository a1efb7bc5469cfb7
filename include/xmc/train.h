/* train.h: training a model version into a model repository (DESIGN.md section 6) with libxmc.
 *
 * From a dataset (data.h) with labels: TF-IDF and/or encoder features of texts, or the feature vectors as
 * they are; PIFA label embeddings; a k-means label tree; XR-Linear rankers per layer; canary records; and
 * an atomic write of the new version (CURRENT then names it unless make_current is 0). Nothing is written
 * until the model is complete. A configuration is plain data owned by the caller; strings it points to
 * must live during the call. */
#ifndef XMC_TRAIN_H_PUBLIC
#define XMC_TRAIN_H_PUBLIC

#include <stddef.h>
#include <stdint.h>
#include "xmc/data.h"
#include "xmc/embedder.h"
#include "xmc/xmc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults that another program's configuration table repeats (xmc retrain's train.* keys): written here once. */
#define XMC_TRAIN_DEFAULT_NR_SPLITS 16
#define XMC_TRAIN_DEFAULT_MAX_LEAF_SIZE 100
#define XMC_TRAIN_DEFAULT_THRESHOLD 0.05 /* bench/SWEEP.md: best across the datasets */

/* Tree layers a model may have at most. */
#define XMC_MAX_DEPTH 32

/* Which solver trains the rankers: PECOS's L2R_L2LOSS_SVC_DUAL or L2R_L2LOSS_SVC_PRIMAL. */
typedef enum xmc_solver { XMC_TRAIN_SOLVER_DUAL = 0, XMC_TRAIN_SOLVER_PRIMAL = 1 } xmc_solver;
/* Negatives of a node's ranker (bit set): its siblings' positives (TFN), the matcher's false hits (MAN). */
enum { XMC_TRAIN_NEG_TFN = 1, XMC_TRAIN_NEG_MAN = 2 };

/* Called from the training thread as stages advance; what names the stage. */
typedef void (*xmc_progress_fn)(void *ctx, const char *what, double done, double total);

typedef struct xmc_train_config {
    /* features (text input only) */
    xmc_featurizer featurizer; /* TFIDF (default), ENCODER or BOTH */
    const char *tfidf;         /* TF-IDF spec, e.g. "word:1-2,char_wb:3-5,min_df=2" (what it leaves out is the
                                * grammar's: word:1-2, min_df 2, as PECOS); NULL: word:1, min_df 1 */
    const char *encoder_dir;   /* config.json + model.safetensors (ENCODER, BOTH) */
    const char *encoder_vocab; /* NULL: encoder_dir/vocab.txt */
    xmc_pooling pooling;       /* default cls */
    float alpha;               /* weight of the embedding beside TF-IDF; default 1 */
    int max_len;               /* encoder tokens per text; default 128 */
    /* tree */
    uint32_t nr_splits;        /* children per node; default 16 */
    uint32_t max_leaf_size;    /* labels per leaf at most; default 100 */
    int kmeans_iter;           /* k-means iterations per split; default 20 */
    uint32_t seed;             /* default 0 */
    /* rankers */
    xmc_solver solver;         /* default dual */
    double cp, cn;             /* costs of positive / negative errors; default 1, 1 */
    double eps;                /* solver tolerance; 0: the solver's default (0.1 dual, 0.01 primal) */
    int max_iter;              /* dual passes / primal Newton steps; 0: the solver's default (100 / 1000) */
    float threshold;           /* drop weights with |w| below; default XMC_TRAIN_DEFAULT_THRESHOLD */
    float bias;                /* bias feature value, 0 for none; default 1 */
    int negatives;             /* XMC_TRAIN_NEG_TFN | XMC_TRAIN_NEG_MAN; default TFN */
    uint32_t man_beam;         /* beam of the matcher for MAN negatives; 0: beam */
    /* prediction defaults stored in the model */
    uint32_t beam, topk;       /* default 10, 20; 0: the default */
    int post;                  /* xmc_post; default l3-hinge */
    /* XR-Transformer: fine-tune encoder_dir on a preliminary PIFA tree of the TF-IDF features, level by level,
     * then train the rankers on [tfidf ; alpha emb] of the fine-tuned encoder (featurizer becomes BOTH) */
    int xrt;                   /* 1: on; default 0 */
    const char *xrt_dir;       /* work directory: checkpoint.bin and the fine-tuned encoder/ (the version gets a copy) */
    int xrt_resume;            /* continue from xrt_dir's checkpoint; default 0 (a checkpoint there is an error) */
    int xrt_batch;             /* records per step; default 32 */
    int xrt_epochs;            /* per level; default 1 */
    int xrt_max_steps;         /* steps per level, 0: xrt_epochs; default 0 */
    float xrt_lr;              /* peak learning rate; default 1e-4 */
    int xrt_warmup;            /* linear warm-up steps per level; default 0 */
    float xrt_weight_decay;    /* AdamW's decoupled decay, not on biases and LayerNorm weights; default 0 */
    float xrt_max_grad_norm;   /* clipping by global norm, encoder and head apart; 0: none; default 1 */
    int xrt_torch_adamw;       /* 1: torch.optim.AdamW's form; default 0: HF transformers.AdamW's (PECOS's) */
    int xrt_unweighted;        /* 1: plain squared hinge; default 0: weighted by the label counts (PECOS's configs) */
    uint32_t xrt_max_clusters; /* fine-tune the levels of at most this many clusters; default 32768 */
    int xrt_save_steps;        /* checkpoint every N steps (and at every level's end); 0: level ends only */
    uint32_t xrt_nr_splits;    /* preliminary tree: children per node; default 16 */
    uint32_t xrt_max_leaf_size;/* preliminary tree: labels per leaf at most; default 16 */
    /* other */
    int threads;               /* 1..XMC_MAX_THREADS; default 2 */
    const char *version;       /* NULL: UTC time + random suffix */
    int make_current;          /* default 1 */
    uint32_t nr_canaries;      /* training records kept to check the model at load; default 8 */
    xmc_progress_fn progress;  /* NULL: none */
    void *progress_ctx;
    /* label disentanglement (kept last so the fields above keep their offsets) */
    uint32_t disentangle;      /* leaf clusters a label may take, 1..6 (copies merged by the maximum); default 1 */
    /* XR-Transformer's negatives (appended: the fields above keep their offsets) */
    int xrt_man;               /* 1: tfn+man, the active set of a level adds the children of the xrt_man_topk parents
                                * the model trained on the level above ranks highest; default 0: tfn only */
    uint32_t xrt_man_topk;     /* parents per record for man, >= 1; default 20 (PECOS's matcher only_topk) */
    /* warm start (appended: the fields above keep their offsets). A retraining starts from a serving version:
     * - its TF-IDF configuration is refitted on the new texts (terms new since then become features; the tfidf
     *   spec of this configuration is not used) and its weights are carried over n-gram by n-gram (a term the
     *   new vocabulary lacks drops its weight); feature-vector data keeps its ids;
     * - its label tree is kept for the labels it knows; a label it does not know goes to the leaf cluster whose
     *   centroid (normalised sum of its labels' PIFA embeddings on the new data) is nearest by cosine, into one
     *   with fewer than max_leaf_size labels where there is one; a label without a positive record in the new
     *   data is retired (no leaf, no ranker; it is not in the new model), and so is a known label the data lacks;
     *   clusters left empty are dropped. When the fullest leaf then exceeds warm_max_leaf_ratio x max_leaf_size
     *   the tree is rebuilt by k-means (report.warm_tree_rebuilt), and only the label rankers start warm;
     * - every ranker whose node the serving model has starts the primal Newton solver from the serving weights
     *   (pruned ones are 0), stopping when |grad| <= eps |grad at 0|, so a start near the optimum takes fewer
     *   steps. The dual solver cannot start from weights alone (it needs the dual variables a model does not
     *   keep), so a warm start needs solver = XMC_TRAIN_SOLVER_PRIMAL (else XMC_ERR_ARG).
     * Text data needs a TF-IDF serving model, feature vectors a matrix one; not with xrt or disentangle > 1.
     * The new version's manifest records train.warm_from and the warm.* counts. */
    const char *warm_repo;     /* repository of the version to start from; NULL: a cold training (default) */
    const char *warm_version;  /* the version; NULL: the one warm_repo's CURRENT names */
    int warm_rebuild;          /* 1: train cold even though warm_repo is set (the caller's every-Nth full rebuild) */
    float warm_max_leaf_ratio; /* the tree's balance bound (see above); default 2 */
    float warm_eps_scale;      /* a warm-started solve stops at |grad| <= eps x this x |grad at 0|, (0, 1]; default 0.3:
                                * from a start that already fits the unchanged records, eps alone stops before the
                                * few changed ones (a new label's) are fitted */
    /* XR-Transformer's encoder dropout (appended: the fields above keep their offsets) */
    float xrt_dropout;         /* hidden dropout while fine-tuning, [0, 1): the embeddings' output, each layer's
                                * attention and feed-forward outputs and the pooled output (BERT's
                                * hidden_dropout_prob; PECOS trains with 0.1); attention probabilities are not
                                * dropped; default 0 */
    int xrt_linear_bootstrap;  /* 1: a level's head starts as an XR-Linear layer fit on the current encoder's
                                * embeddings (PECOS's `linear` bootstrap); default 0: each cluster inherits its
                                * parent's row (`inherit`) */
    float xrt_head_lr;         /* the head's peak learning rate, on the encoder's schedule; 0: xrt_lr (PECOS's);
                                * default 0 */
} xmc_train_config;

/* What training saw and did, for the caller to report. */
typedef struct xmc_train_report {
    uint32_t n_docs, n_labels, n_features;
    uint32_t docs_without_label, labels_without_doc;
    uint32_t depth;
    uint64_t nnz_per_layer[XMC_MAX_DEPTH];
    double sec_features, sec_tree, sec_rankers, sec_write;
    double sec_finetune;       /* XR-Transformer fine-tuning, this run */
    /* appended: solver work and the warm start */
    uint64_t solver_iters;     /* iterations of all the rankers' solves: Newton steps (primal) or passes (dual) */
    int warm;                  /* 1: started from a serving version (warm_repo, not warm_rebuild) */
    int warm_tree_rebuilt;     /* 1: the serving tree was too unbalanced once extended, and was rebuilt */
    uint32_t warm_kept;        /* labels the serving version knew */
    uint32_t warm_added;       /* labels new to it, placed by their PIFA embedding */
    uint32_t warm_retired;     /* serving labels not in the new model */
    uint32_t warm_max_leaf;    /* labels in the fullest leaf cluster of the extended tree */
    uint32_t warm_features_mapped; /* serving TF-IDF features found, by their n-gram, in the refitted vocabulary */
    double sec_verify;         /* opening the written version with every check before CURRENT names it (not in
                                * sec_write, which is the writing alone, as before this step existed) */
} xmc_train_report;

/* Fills cfg with the defaults (the same as `xmc train` without options); call it first, then set fields. */
void xmc_train_config_default(xmc_train_config *cfg);
/* Checks what can be checked before reading any data (the TF-IDF spec, the featurizer); XMC_ERR_ARG. */
xmc_err xmc_train_config_check(const xmc_train_config *cfg, xmc_error *err);

/* Trains on data (texts: with the configured featurizer; feature vectors: used as they are) into the
 * repository repo (created if missing); the new version's name goes to version (version_size bytes) and
 * the report to *report (may be NULL). A failure leaves no version and CURRENT untouched. */
xmc_err xmc_train_data(const xmc_train_config *cfg, const xmc_data *data, const char *repo, char *version,
                       size_t version_size, xmc_train_report *report, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
