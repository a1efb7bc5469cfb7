/* train.c: `xmc train`: reads training data, runs the training pipeline (xmc/train.h) into a model repository
 * and prints the new version. Settings come from --config (libconfig, keys named like the long options with
 * '_' for '-') and then the command line, which wins; both go through the one option table below. */
#include <cblas.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "xmc/train.h"

enum { O_TRAIN = 256, O_MODEL, O_CONFIG, O_VERSION, O_NOCUR, O_TFIDF, O_SPLITS, O_LEAF, O_KITER, O_SEED, O_CP, O_CN,
       O_EPS, O_MAXIT, O_THR, O_BIAS, O_NEG, O_MANB, O_BEAM, O_TOPK, O_POST, O_THREADS, O_CAN, O_QUIET, O_XC, O_XCF,
       O_XCL, O_FEAT, O_ENC, O_VOCAB, O_POOL, O_ALPHA, O_MAXLEN, O_SOLVER, O_DISENT, O_XRT, O_XRT_DIR, O_RESUME,
       O_XRT_BATCH, O_XRT_EPOCHS, O_XRT_STEPS, O_XRT_LR, O_XRT_HEAD_LR, O_XRT_WARMUP, O_XRT_WD, O_XRT_CLIP,
       O_XRT_ADAMW, O_XRT_LOSS, O_XRT_MAXC, O_XRT_SAVE, O_XRT_SPLITS, O_XRT_LEAF, O_XRT_NEG, O_XRT_MANK,
       O_XRT_DROPOUT, O_XRT_BOOT,
       O_WARM, O_WARM_VER, O_WARM_REBUILD, O_WARM_RATIO, O_WARM_EPS };

static const cli_opt train_opts[] = {
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "input"},
    {CLI_STRING, O_TRAIN, "train", 0, "FILE.tsv", 0, 0,
     "labels<TAB>text lines, labels comma-separated (a TF-IDF featuriser is fitted)"},
    {CLI_STRING, 'x', NULL, 'x', "X.txt", 0, 0, "feature matrix in smat text (the features are used as they are)"},
    {CLI_STRING, 'y', NULL, 'y', "Y.txt", 0, 0, "label matrix in smat text, with -x"},
    {CLI_STRING, O_XC, "xc", 0, "FILE", 0, 0, "XC / multi-label libsvm file"},
    {CLI_INT, O_XCF, "xc-feature-base", 0, "B", 0, 1, "index base of its features (0 or 1)"},
    {CLI_INT, O_XCL, "xc-label-base", 0, "B", 0, 1, "index base of its labels (0 or 1)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "model"},
    {CLI_STRING, O_MODEL, "model", 0, "REPO", 0, 0, "model repository (created if missing)"},
    {CLI_STRING, O_CONFIG, "config", 0, "FILE", 0, 0, "libconfig file with any of these settings (e.g. nr_splits = 16;)"},
    {CLI_STRING, O_VERSION, "version", 0, "NAME", 0, 0, "version name (default: UTC time + random suffix)"},
    {CLI_FLAG, O_NOCUR, "no-current", 0, NULL, 0, 0, "do not point CURRENT at the new version"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "features (text input)"},
    {CLI_STRING, O_FEAT, "featurizer", 0, "F", 0, 0,
     "tfidf (default), encoder, or tfidf+encoder ([tfidf ; alpha * embedding], renormalised)"},
    {CLI_STRING, O_TFIDF, "tfidf", 0, "SPEC", 0, 0,
     "TF-IDF spec, e.g. \"word:1-2,char_wb:3-5,min_df=2\"; what a SPEC leaves out is the grammar's (word:1-2, "
     "min_df 2, as PECOS); without --tfidf: word:1, min_df 1; \"word:1:min_df=1,word:2:min_df=1:weight=0.5\" adds "
     "bigrams at half weight (more accurate on large catalogs, slower: docs/featurizer.md)"},
    {CLI_STRING, O_ENC, "encoder", 0, "DIR", 0, 0, "BERT-family encoder: DIR/config.json, DIR/model.safetensors"},
    {CLI_STRING, O_VOCAB, "vocab", 0, "FILE", 0, 0, "its WordPiece vocabulary (default DIR/vocab.txt)"},
    {CLI_STRING, O_POOL, "pooling", 0, "P", 0, 0, "cls (default), mean or pooler"},
    {CLI_NUMBER, O_ALPHA, "alpha", 0, "A", 1e-6, 1e6, "weight of the embedding beside TF-IDF (default 1)"},
    {CLI_INT, O_MAXLEN, "max-length", 0, "N", 2, 4096, "encoder tokens per text (default 128)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "XR-Transformer (fine-tunes --encoder on a label tree, then ranks on tfidf+encoder)"},
    {CLI_FLAG, O_XRT, "xr-transformer", 0, NULL, 0, 0, "fine-tune the encoder level by level before training the rankers"},
    {CLI_STRING, O_XRT_DIR, "xrt-dir", 0, "DIR", 0, 0,
     "work directory: checkpoint.bin and the fine-tuned encoder DIR/encoder\n(the version gets a copy; keep DIR to --resume)"},
    {CLI_FLAG, O_RESUME, "resume", 0, NULL, 0, 0, "continue from the checkpoint in --xrt-dir (same data and options)"},
    {CLI_INT, O_XRT_BATCH, "xrt-batch", 0, "N", 1, 65536, "records per step (default 32)"},
    {CLI_INT, O_XRT_EPOCHS, "xrt-epochs", 0, "N", 1, 1e6, "epochs per level (default 1)"},
    {CLI_INT, O_XRT_STEPS, "xrt-max-steps", 0, "N", 0, 1e9, "steps per level; 0: --xrt-epochs (default 0)"},
    {CLI_NUMBER, O_XRT_LR, "xrt-lr", 0, "LR", 1e-12, 10, "peak learning rate (default 1e-4)"},
    {CLI_NUMBER, O_XRT_HEAD_LR, "xrt-head-lr", 0, "LR", 1e-12, 10, "the head's peak learning rate (default: --xrt-lr)"},
    {CLI_INT, O_XRT_WARMUP, "xrt-warmup", 0, "N", 0, 1e9, "linear warm-up steps per level (default 0)"},
    {CLI_NUMBER, O_XRT_WD, "xrt-weight-decay", 0, "W", 0, 10, "AdamW weight decay, not on biases and LayerNorm (default 0)"},
    {CLI_NUMBER, O_XRT_CLIP, "xrt-max-grad-norm", 0, "G", 0, 1e9, "clip by global norm, encoder and head apart; 0: off (default 1)"},
    {CLI_STRING, O_XRT_ADAMW, "xrt-adamw", 0, "F", 0, 0, "hf (transformers.AdamW, PECOS's; default) or torch"},
    {CLI_STRING, O_XRT_LOSS, "xrt-loss", 0, "L", 0, 0, "weighted-squared-hinge (default) or squared-hinge"},
    {CLI_INT, O_XRT_MAXC, "xrt-max-clusters", 0, "N", 1, 1e9, "fine-tune the levels of at most N clusters (default 32768)"},
    {CLI_INT, O_XRT_SAVE, "xrt-save-steps", 0, "N", 0, 1e9, "checkpoint every N steps besides each level's end (default 0)"},
    {CLI_INT, O_XRT_SPLITS, "xrt-nr-splits", 0, "B", 2, 65536, "children per node of the fine-tuning tree (default 16)"},
    {CLI_INT, O_XRT_LEAF, "xrt-max-leaf-size", 0, "N", 1, 1e9, "labels per leaf of the fine-tuning tree (default 16)"},
    {CLI_STRING, O_XRT_NEG, "xrt-negatives", 0, "N", 0, 0,
     "tfn (default: children of the positive parents) or tfn+man (also the children of\n"
     "the --xrt-man-topk parents the model of the level above ranks highest)"},
    {CLI_INT, O_XRT_MANK, "xrt-man-topk", 0, "K", 1, 1048576, "parents per record for tfn+man (default 20)"},
    {CLI_NUMBER, O_XRT_DROPOUT, "xrt-dropout", 0, "P", 0, 0.99, "the encoder's hidden dropout while fine-tuning (default 0)"},
    {CLI_STRING, O_XRT_BOOT, "xrt-bootstrap", 0, "B", 0, 0,
     "a level's head starts from its parents' rows (inherit, default) or fit on the encoder's embeddings (linear)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "tree"},
    {CLI_INT, O_SPLITS, "nr-splits", 0, "B", 2, 65536, "children per tree node (default 16)"},
    {CLI_INT, O_LEAF, "max-leaf-size", 0, "N", 1, 1e9, "labels per leaf cluster at most (default 100)"},
    {CLI_INT, O_KITER, "kmeans-iter", 0, "N", 1, 1000, "k-means iterations per split (default 20)"},
    {CLI_INT, O_SEED, "seed", 0, "S", 0, 4294967295.0, "seed of the tree (default 0)"},
    {CLI_INT, O_DISENT, "disentangle", 0, "K", 1, 6,
     "leaf clusters a label may take (default 1, off): a first model routes each label's\n"
     "training records; a group of them clearly closer to another of the K leaves they\n"
     "reach most gets a copy of the label there; the rankers are retrained once, and\n"
     "predictions merge a label's copies by the maximum (docs/disentangle.md)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "warm start (a retraining from a serving version; needs --solver primal)"},
    {CLI_STRING, O_WARM, "warm", 0, "REPO", 0, 0,
     "start from REPO's CURRENT version: its TF-IDF vocabulary, its tree for the labels it\n"
     "knows (new labels to the nearest leaf cluster by PIFA), its weights as the solver's start"},
    {CLI_STRING, O_WARM_VER, "warm-version", 0, "V", 0, 0, "start from version V of the --warm repository instead"},
    {CLI_FLAG, O_WARM_REBUILD, "warm-rebuild", 0, NULL, 0, 0, "train cold even with --warm (a periodic full rebuild)"},
    {CLI_NUMBER, O_WARM_RATIO, "warm-max-leaf-ratio", 0, "R", 1, 1e6,
     "rebuild the tree when a leaf would exceed R x --max-leaf-size (default 2)"},
    {CLI_NUMBER, O_WARM_EPS, "warm-eps-scale", 0, "S", 1e-6, 1,
     "a warm-started solve's tolerance is --eps x S (default 0.3)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "rankers"},
    {CLI_STRING, O_SOLVER, "solver", 0, "S", 0, 0,
     "dual (coordinate descent, default) or primal (Newton with conjugate gradients):\n"
     "PECOS's L2R_L2LOSS_SVC_DUAL and L2R_L2LOSS_SVC_PRIMAL"},
    {CLI_NUMBER, O_CP, "cp", 0, "C", 1e-9, 1e9, "cost of positive errors (default 1)"},
    {CLI_NUMBER, O_CN, "cn", 0, "C", 1e-9, 1e9, "cost of negative errors (default 1)"},
    {CLI_NUMBER, O_EPS, "eps", 0, "E", 1e-12, 1e3, "solver tolerance (default 0.1 dual, 0.01 primal)"},
    {CLI_INT, O_MAXIT, "max-iter", 0, "N", 1, 1e7, "dual passes / primal Newton steps at most (default 100 / 1000)"},
    {CLI_NUMBER, O_THR, "threshold", 0, "T", 0, 1e9, "drop weights with |w| < T (default 0.05)"},
    {CLI_NUMBER, O_BIAS, "bias", 0, "B", 0, 1e6, "bias feature value, 0 for none (default 1)"},
    {CLI_STRING, O_NEG, "negatives", 0, "NS", 0, 0, "tfn, man or tfn+man (default tfn)"},
    {CLI_INT, O_MANB, "man-beam", 0, "N", 1, XMC_MAX_K, "beam of the matcher for man negatives (default: --beam)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "prediction defaults stored in the model"},
    {CLI_INT, O_BEAM, "beam", 0, "N", 1, XMC_MAX_K, "nodes kept per level (default 10)"},
    {CLI_INT, O_TOPK, "topk", 0, "K", 1, XMC_MAX_K, "labels returned (default 20)"},
    {CLI_STRING, O_POST, "post", 0, "NAME", 0, 0,
     "l3-hinge, sigmoid, noop, l1-hinge, l2-hinge, log-sigmoid (default l3-hinge)"},
    {CLI_SECTION, 0, NULL, 0, NULL, 0, 0, "other"},
    {CLI_INT, O_THREADS, "threads", 0, "N", 1, XMC_MAX_THREADS, "threads (default 2)"},
    {CLI_INT, O_CAN, "canaries", 0, "N", 0, 1000, "training records stored to check the model at load (default 8)"},
    {CLI_FLAG, O_QUIET, "quiet", 0, NULL, 0, 0, "no progress"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command train_cmd = {
    "train", "(--train FILE.tsv | -x X.txt -y Y.txt | --xc FILE) --model REPO [options]\n"
    "  Trains an XR-Linear model and writes it as a new version of the repository REPO (CURRENT points to it\n"
    "  unless --no-current). Prints the version name on stdout; progress on stderr.",
    NULL, train_opts};

typedef struct {
    xmc_train_config cfg;
    xmc_data_source in;
    const char *model;
    int quiet, pass; /* pass 1 reads --config only, pass 2 everything else */
    int featurizer_given; /* --featurizer (or the config key) named one: --xr-transformer takes tfidf+encoder only */
    /* one config_t per --config file: the settings taken from a file point into it until the end */
    config_t files[8];
    int nfiles;
    char version[128];
} settings;

static int read_config(settings *s, const char *path);

/* A setting that names one of two choices: *out = 0 for a, 1 for b; 0 ok, 2 neither (message printed). */
static int one_of(const char *opt, const char *v, const char *a, const char *b, int *out)
{
    if (!strcmp(v, a)) *out = 0;
    else if (!strcmp(v, b)) *out = 1;
    else {
        fprintf(stderr, "xmc train: error: --%s: '%s' is not %s or %s\n", opt, v, a, b);
        return 2;
    }
    return 0;
}

/* Applies one setting; numbers arrive parsed and range-checked. 0 ok, 2 bad value (message printed). */
static int apply(void *ctx, const cli_opt *o, const char *v, double d)
{
    settings *s = ctx;
    if ((o->id == O_CONFIG) != (s->pass == 1)) return 0;
    xmc_train_config *c = &s->cfg;
    switch (o->id) {
    case O_CONFIG: return read_config(s, v);
    case O_TRAIN: s->in.tsv = v; break;
    case 'x': s->in.x = v; break;
    case 'y': s->in.y = v; break;
    case O_XC: s->in.xc = v; break;
    case O_XCF: s->in.xc_feature_base = (uint32_t)d; break;
    case O_XCL: s->in.xc_label_base = (uint32_t)d; break;
    case O_MODEL: s->model = v; break;
    case O_VERSION:
        if (strlen(v) >= sizeof s->version) {
            fprintf(stderr, "xmc train: error: --version: a name of at most %zu bytes\n", sizeof s->version - 1);
            return 2;
        }
        snprintf(s->version, sizeof s->version, "%s", v);
        c->version = s->version;
        break;
    case O_NOCUR: c->make_current = 0; break;
    case O_TFIDF: c->tfidf = v; break;
    case O_SPLITS: c->nr_splits = (uint32_t)d; break;
    case O_LEAF: c->max_leaf_size = (uint32_t)d; break;
    case O_KITER: c->kmeans_iter = (int)d; break;
    case O_SEED: c->seed = (uint32_t)d; break;
    case O_DISENT: c->disentangle = (uint32_t)d; break;
    case O_CP: c->cp = d; break;
    case O_CN: c->cn = d; break;
    case O_EPS: c->eps = d; break;
    case O_MAXIT: c->max_iter = (int)d; break;
    case O_SOLVER:
        if (!strcmp(v, "dual")) c->solver = XMC_TRAIN_SOLVER_DUAL;
        else if (!strcmp(v, "primal")) c->solver = XMC_TRAIN_SOLVER_PRIMAL;
        else { fprintf(stderr, "xmc train: error: --solver: '%s' is not dual or primal\n", v); return 2; }
        break;
    case O_THR: c->threshold = (float)d; break;
    case O_BIAS: c->bias = (float)d; break;
    case O_NEG:
        if (!strcmp(v, "tfn")) c->negatives = XMC_TRAIN_NEG_TFN;
        else if (!strcmp(v, "man")) c->negatives = XMC_TRAIN_NEG_MAN;
        else if (!strcmp(v, "tfn+man")) c->negatives = XMC_TRAIN_NEG_TFN | XMC_TRAIN_NEG_MAN;
        else { fprintf(stderr, "xmc train: error: --negatives: '%s' is not tfn, man or tfn+man\n", v); return 2; }
        break;
    case O_MANB: c->man_beam = (uint32_t)d; break;
    case O_BEAM: c->beam = (uint32_t)d; break;
    case O_TOPK: c->topk = (uint32_t)d; break;
    case O_POST:
        if (xmc_post_from_name(v) < 0) { fprintf(stderr, "xmc train: error: --post: unknown post-processor '%s'\n", v); return 2; }
        c->post = xmc_post_from_name(v);
        break;
    case O_THREADS: c->threads = (int)d; break;
    case O_CAN: c->nr_canaries = (uint32_t)d; break;
    case O_QUIET: s->quiet = 1; break;
    case O_FEAT: {
        int f = xmc_featurizer_from_name(v);
        if (f <= XMC_FEATURIZER_MATRIX) {
            fprintf(stderr, "xmc train: error: --featurizer: '%s' is not tfidf, encoder or tfidf+encoder\n", v);
            return 2;
        }
        c->featurizer = (xmc_featurizer)f;
        s->featurizer_given = 1;
        break;
    }
    case O_ENC: c->encoder_dir = v; break;
    case O_VOCAB: c->encoder_vocab = v; break;
    case O_POOL: {
        xmc_error e;
        if (xmc_pooling_parse(v, &c->pooling, &e)) { fprintf(stderr, "xmc train: error: --pooling: %s\n", e.msg); return 2; }
        break;
    }
    case O_ALPHA: c->alpha = (float)d; break;
    case O_MAXLEN: c->max_len = (int)d; break;
    case O_XRT: c->xrt = 1; break;
    case O_XRT_DIR: c->xrt_dir = v; break;
    case O_RESUME: c->xrt_resume = 1; break;
    case O_XRT_BATCH: c->xrt_batch = (int)d; break;
    case O_XRT_EPOCHS: c->xrt_epochs = (int)d; break;
    case O_XRT_STEPS: c->xrt_max_steps = (int)d; break;
    case O_XRT_LR: c->xrt_lr = (float)d; break;
    case O_XRT_HEAD_LR: c->xrt_head_lr = (float)d; break;
    case O_XRT_WARMUP: c->xrt_warmup = (int)d; break;
    case O_XRT_WD: c->xrt_weight_decay = (float)d; break;
    case O_XRT_CLIP: c->xrt_max_grad_norm = (float)d; break;
    case O_XRT_ADAMW: return one_of("xrt-adamw", v, "hf", "torch", &c->xrt_torch_adamw);
    case O_XRT_LOSS: return one_of("xrt-loss", v, "weighted-squared-hinge", "squared-hinge", &c->xrt_unweighted);
    case O_XRT_MAXC: c->xrt_max_clusters = (uint32_t)d; break;
    case O_XRT_SAVE: c->xrt_save_steps = (int)d; break;
    case O_XRT_SPLITS: c->xrt_nr_splits = (uint32_t)d; break;
    case O_XRT_LEAF: c->xrt_max_leaf_size = (uint32_t)d; break;
    case O_XRT_NEG: return one_of("xrt-negatives", v, "tfn", "tfn+man", &c->xrt_man);
    case O_XRT_MANK: c->xrt_man_topk = (uint32_t)d; break;
    case O_XRT_DROPOUT: c->xrt_dropout = (float)d; break;
    case O_XRT_BOOT: return one_of("xrt-bootstrap", v, "inherit", "linear", &c->xrt_linear_bootstrap);
    case O_WARM: c->warm_repo = v; break;
    case O_WARM_VER: c->warm_version = v; break;
    case O_WARM_REBUILD: c->warm_rebuild = 1; break;
    case O_WARM_RATIO: c->warm_max_leaf_ratio = (float)d; break;
    case O_WARM_EPS: c->warm_eps_scale = (float)d; break;
    }
    return 0;
}

/* Settings from a libconfig file: every top-level key must be an option of the table (with '_'). */
static int read_config(settings *s, const char *path)
{
    if (s->nfiles == (int)(sizeof s->files / sizeof s->files[0])) {
        fprintf(stderr, "xmc train: error: %s: more than %d --config files\n", path, s->nfiles);
        return 2;
    }
    config_t *cfg = &s->files[s->nfiles++];
    config_init(cfg);
    if (!config_read_file(cfg, path)) {
        if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
            fprintf(stderr, "xmc train: error: %s: cannot read\n", path);
        else
            fprintf(stderr, "xmc train: error: %s:%d: %s\n", path, config_error_line(cfg), config_error_text(cfg));
        return 2;
    }
    s->pass = 2; /* the file's settings apply as the command line's would */
    int rc = 0;
    config_setting_t *root = config_root_setting(cfg);
    for (int i = 0; i < config_setting_length(root) && !rc; i++) {
        config_setting_t *e = config_setting_get_elem(root, (unsigned)i);
        char key[64];
        snprintf(key, sizeof key, "%s", config_setting_name(e));
        for (char *c = key; *c; c++) if (*c == '_') *c = '-';
        const cli_opt *o = cli_find(&train_cmd, key);
        if (!o || o->id == O_CONFIG) {
            fprintf(stderr, "xmc train: error: %s:%d: unknown setting '%s'\n", path, config_setting_source_line(e),
                    config_setting_name(e));
            rc = 2;
            break;
        }
        char buf[64];
        const char *v = buf;
        switch (config_setting_type(e)) {
        case CONFIG_TYPE_INT: snprintf(buf, sizeof buf, "%d", config_setting_get_int(e)); break;
        case CONFIG_TYPE_INT64: snprintf(buf, sizeof buf, "%lld", config_setting_get_int64(e)); break;
        case CONFIG_TYPE_FLOAT: snprintf(buf, sizeof buf, "%.17g", config_setting_get_float(e)); break;
        case CONFIG_TYPE_BOOL:
            if (!config_setting_get_bool(e)) continue;
            buf[0] = 0;
            break;
        case CONFIG_TYPE_STRING: v = config_setting_get_string(e); break;
        default:
            fprintf(stderr, "xmc train: error: %s:%d: '%s' must be a number, string or boolean\n", path,
                    config_setting_source_line(e), config_setting_name(e));
            rc = 2;
            continue;
        }
        if (o->kind == CLI_FLAG && config_setting_type(e) != CONFIG_TYPE_BOOL) {
            /* `no_current = 0;` must not mean on */
            fprintf(stderr, "xmc train: error: %s:%d: '%s' is a switch: true or false\n", path,
                    config_setting_source_line(e), config_setting_name(e));
            rc = 2;
            continue;
        }
        double d = 0;
        if (((o->kind == CLI_INT || o->kind == CLI_NUMBER) && cli_number("train", o, v, &d)) ||
            apply(s, o, o->kind == CLI_FLAG ? NULL : v, d)) {
            fprintf(stderr, "xmc train: error: %s:%d: bad value for '%s'\n", path, config_setting_source_line(e),
                    config_setting_name(e));
            rc = 2;
        }
    }
    s->pass = 1;
    return rc;
}

static void progress(void *ctx, const char *what, double done, double total)
{
    (void)ctx;
    cli_progress(what, done, total);
}

static int check(const settings *s)
{
    const xmc_train_config *c = &s->cfg;
    if (!s->model) { fprintf(stderr, "xmc train: error: --model REPO is required\n"); return 2; }
    int inputs = !!s->in.tsv + !!s->in.xc + !!(s->in.x || s->in.y);
    if (inputs != 1 || (!s->in.tsv && !s->in.xc && !(s->in.x && s->in.y))) {
        fprintf(stderr, "xmc train: error: give exactly one input: --train FILE.tsv, -x X.txt -y Y.txt, or --xc FILE\n");
        return 2;
    }
    if (c->xrt) {
        if (!c->encoder_dir || !c->xrt_dir || !s->in.tsv) {
            fprintf(stderr, "xmc train: error: --xr-transformer needs --encoder DIR, --xrt-dir DIR and --train FILE.tsv\n");
            return 2;
        }
        if (s->featurizer_given && c->featurizer != XMC_FEATURIZER_BOTH) {
            fprintf(stderr, "xmc train: error: --xr-transformer ranks on tfidf+encoder, not --featurizer %s\n",
                    xmc_featurizer_name(c->featurizer));
            return 2;
        }
        xmc_train_config dflt;
        xmc_train_config_default(&dflt);
        if (!c->xrt_man && c->xrt_man_topk != dflt.xrt_man_topk) { /* a top-k that would do nothing is a mistake */
            fprintf(stderr, "xmc train: error: --xrt-man-topk goes with --xrt-negatives tfn+man\n");
            return 2;
        }
    } else if (c->xrt_resume || c->xrt_dir) {
        fprintf(stderr, "xmc train: error: --resume and --xrt-dir go with --xr-transformer\n");
        return 2;
    }
    if ((c->featurizer & XMC_FEATURIZER_ENCODER) && !c->encoder_dir) {
        fprintf(stderr, "xmc train: error: --featurizer %s needs --encoder DIR\n", xmc_featurizer_name(c->featurizer));
        return 2;
    }
    if (c->encoder_dir && !(c->featurizer & XMC_FEATURIZER_ENCODER) && !c->xrt) {
        fprintf(stderr, "xmc train: error: --encoder given but --featurizer is tfidf\n");
        return 2;
    }
    if (c->featurizer != XMC_FEATURIZER_TFIDF && !s->in.tsv) {
        fprintf(stderr, "xmc train: error: the encoder featurizer needs text input (--train FILE.tsv)\n");
        return 2;
    }
    if ((c->warm_version || c->warm_rebuild) && !c->warm_repo) {
        fprintf(stderr, "xmc train: error: --warm-version and --warm-rebuild go with --warm REPO\n");
        return 2;
    }
    xmc_error err = {0};
    if (xmc_train_config_check(c, &err)) { cli_report("train", &err); return 2; }
    return 0;
}

int cli_train(int argc, char **argv)
{
    settings s;
    memset(&s, 0, sizeof s);
    xmc_train_config_default(&s.cfg);
    int first, rc;
    s.pass = 1;
    rc = cli_parse(&train_cmd, argc, argv, apply, &s, &first);
    if (!rc) {
        s.pass = 2;
        rc = cli_parse(&train_cmd, argc, argv, apply, &s, &first);
    }
    if (rc) {
        rc = rc == 1 ? 0 : rc; /* 1: --help was printed */
        goto out;
    }
    rc = 2;
    if (first < argc) { fprintf(stderr, "xmc train: error: unexpected argument '%s'\n", argv[first]); goto out; }
    if (check(&s)) goto out;
    if (!s.quiet) s.cfg.progress = progress;
    rc = 1;
    xmc_error err = {0};
    xmc_data *data;
    /* The encoder's training runs its products on the library's --threads threads when OpenBLAS has one: one pool,
     * none spinning beside the other (docs/encoder.md, "Threads"). */
    if (s.cfg.xrt) openblas_set_num_threads(1);
    if ((s.cfg.featurizer & XMC_FEATURIZER_ENCODER) || s.cfg.xrt) cli_blas_warn();
    if (!s.quiet) fprintf(stderr, "reading training data\n");
    if (xmc_data_read(&s.in, NULL, &data, &err)) { cli_report("train", &err); goto out; }
    {
        /* said before the work, since training holds every label of the space: a stray id of 50,000,000 in an
         * XC file without a header means 50M labels (minutes, gigabytes) */
        uint32_t L = xmc_data_num_labels(data), empty = xmc_data_labels_without_rows(data);
        /* ids as the input numbers them (--xc-label-base); a warm start keeps only labels with records */
        uint32_t base = s.in.xc_label_base;
        if (empty && !s.quiet)
            fprintf(stderr, "note: %u of the %u labels (ids %u..%llu: the largest id in the input, or its header) "
                            "have no positive record%s\n", empty, L, base, (unsigned long long)L - 1 + base,
                    s.cfg.warm_repo && !s.cfg.warm_rebuild ? "" : "; the model holds every one");
    }
    char version[128];
    xmc_train_report rep;
    xmc_err trc = xmc_train_data(&s.cfg, data, s.model, version, sizeof version, &rep, &err);
    xmc_data_free(data);
    if (trc) { cli_report("train", &err); goto out; }
    if (!s.quiet) {
        if (s.cfg.xrt) fprintf(stderr, "xr-transformer fine-tuning: %.2f s\n", rep.sec_finetune);
        fprintf(stderr, "trained %s: %u records, %u labels, %u features, %u layers (%.2f s features, %.2f s tree, "
                        "%.2f s rankers, %.2f s write)\n",
                version, rep.n_docs, rep.n_labels, rep.n_features, rep.depth, rep.sec_features, rep.sec_tree,
                rep.sec_rankers, rep.sec_write);
        fprintf(stderr, "verified before CURRENT moved: %.2f s (checksums, canaries)\n", rep.sec_verify);
        if (rep.docs_without_label) fprintf(stderr, "note: %u records have no label (used as negatives only)\n", rep.docs_without_label);
        fprintf(stderr, "solver iterations: %llu\n", (unsigned long long)rep.solver_iters);
        if (rep.warm)
            fprintf(stderr, "warm start: %u labels kept, %u new, %u retired; fullest leaf %u labels%s\n", rep.warm_kept,
                    rep.warm_added, rep.warm_retired, rep.warm_max_leaf, rep.warm_tree_rebuilt ? " (tree rebuilt)" : "");
    }
    /* the library opened the new version (checksums, canaries) before CURRENT named it */
    printf("%s\n", version);
    rc = 0;
out:
    for (int i = 0; i < s.nfiles; i++) config_destroy(&s.files[i]);
    return rc;
}
