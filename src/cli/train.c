/* train.c: `xmc train`: reads training data, runs the training pipeline (train.h) into a model repository
 * and prints the new version. Settings come from --config (libconfig, keys named like the long options with
 * '_' for '-') and then the command line, which wins. */
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "data.h"
#include "train.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: xmc train (--train FILE.tsv | -x X.txt -y Y.txt | --xc FILE) --model REPO [options]\n"
"  Trains an XR-Linear model and writes it as a new version of the repository REPO (CURRENT points to it\n"
"  unless --no-current). Prints the version name on stdout; progress on stderr.\n"
"input\n"
"  --train FILE.tsv      labels<TAB>text lines, labels comma-separated (a TF-IDF featuriser is fitted)\n"
"  -x X.txt -y Y.txt     feature and label matrices in smat text (the features are used as they are)\n"
"  --xc FILE             XC / multi-label libsvm file  (--xc-feature-base, --xc-label-base: 0 or 1)\n"
"model\n"
"  --model REPO          model repository (created if missing)\n"
"  --config FILE         libconfig file with any of the settings below (e.g. nr_splits = 16;)\n"
"  --version NAME        version name (default: UTC time + random suffix)\n"
"  --no-current          do not point CURRENT at the new version\n"
"features (text input)\n"
"  --featurizer F        tfidf (default), encoder, or tfidf+encoder ([tfidf ; alpha * embedding], renormalised)\n"
"  --tfidf SPEC          TF-IDF spec, e.g. \"word:1-2,char_wb:3-5,min_df=2\" (default word:1-2, min_df 2)\n"
"  --encoder DIR         BERT-family encoder: DIR/config.json, DIR/model.safetensors\n"
"  --vocab FILE          its WordPiece vocabulary (default DIR/vocab.txt)\n"
"  --pooling P           cls (default), mean or pooler\n"
"  --alpha A             weight of the embedding beside TF-IDF (default 1)\n"
"  --max-length N        encoder tokens per text (default 128)\n"
"tree\n"
"  --nr-splits B         children per tree node (default 16)\n"
"  --max-leaf-size N     labels per leaf cluster at most (default 100)\n"
"  --kmeans-iter N       k-means iterations per split (default 20)\n"
"  --seed S              seed of the tree (default 0)\n"
"rankers\n"
"  --solver S            dual (coordinate descent, default) or primal (Newton with conjugate gradients):\n"
"                        PECOS's L2R_L2LOSS_SVC_DUAL and L2R_L2LOSS_SVC_PRIMAL\n"
"  --cp C, --cn C        costs of positive / negative errors (default 1, 1)\n"
"  --eps E               solver tolerance (default 0.1 dual, 0.01 primal)\n"
"  --max-iter N          dual passes / primal Newton steps at most (default 100 / 1000)\n"
"  --threshold T         drop weights with |w| < T (default 0.1)\n"
"  --bias B              bias feature value, 0 for none (default 1)\n"
"  --negatives NS        tfn, man or tfn+man (default tfn)\n"
"  --man-beam N          beam of the matcher for man negatives (default: --beam)\n"
"prediction defaults stored in the model\n"
"  --beam N              nodes kept per level (default 10)\n"
"  --topk K              labels returned (default 20)\n"
"  --post NAME           l3-hinge, sigmoid, noop, l1-hinge, l2-hinge, log-sigmoid (default l3-hinge)\n"
"other\n"
"  --threads N           threads (default 2)\n"
"  --canaries N          training records stored to check the model at load (default 8)\n"
"  --quiet               no progress\n");
}

enum { O_TRAIN = 256, O_MODEL, O_CONFIG, O_VERSION, O_NOCUR, O_TFIDF, O_SPLITS, O_LEAF, O_KITER, O_SEED, O_CP, O_CN,
       O_EPS, O_MAXIT, O_THR, O_BIAS, O_NEG, O_MANB, O_BEAM, O_TOPK, O_POST, O_THREADS, O_CAN, O_QUIET, O_XC, O_XCF,
       O_XCL, O_FEAT, O_ENC, O_VOCAB, O_POOL, O_ALPHA, O_MAXLEN, O_SOLVER };

static const struct option long_opts[] = {
    {"train", 1, 0, O_TRAIN}, {"model", 1, 0, O_MODEL}, {"config", 1, 0, O_CONFIG}, {"version", 1, 0, O_VERSION},
    {"no-current", 0, 0, O_NOCUR}, {"tfidf", 1, 0, O_TFIDF}, {"nr-splits", 1, 0, O_SPLITS},
    {"max-leaf-size", 1, 0, O_LEAF}, {"kmeans-iter", 1, 0, O_KITER}, {"seed", 1, 0, O_SEED}, {"cp", 1, 0, O_CP},
    {"cn", 1, 0, O_CN}, {"eps", 1, 0, O_EPS}, {"max-iter", 1, 0, O_MAXIT}, {"threshold", 1, 0, O_THR},
    {"bias", 1, 0, O_BIAS}, {"negatives", 1, 0, O_NEG}, {"man-beam", 1, 0, O_MANB}, {"beam", 1, 0, O_BEAM},
    {"topk", 1, 0, O_TOPK}, {"post", 1, 0, O_POST}, {"threads", 1, 0, O_THREADS}, {"canaries", 1, 0, O_CAN},
    {"quiet", 0, 0, O_QUIET}, {"xc", 1, 0, O_XC}, {"xc-feature-base", 1, 0, O_XCF}, {"xc-label-base", 1, 0, O_XCL},
    {"featurizer", 1, 0, O_FEAT}, {"encoder", 1, 0, O_ENC}, {"vocab", 1, 0, O_VOCAB}, {"pooling", 1, 0, O_POOL},
    {"alpha", 1, 0, O_ALPHA}, {"max-length", 1, 0, O_MAXLEN}, {"solver", 1, 0, O_SOLVER}, {"help", 0, 0, 'h'},
    {0, 0, 0, 0}};

typedef struct {
    xmc_train_opts o;
    cli_input in;
    const char *model, *tfidf;
    int quiet;
    char version[128];
} settings;

static int num(const char *name, const char *v, double lo, double hi, double *out)
{
    char *e;
    double d = strtod(v, &e);
    if (e == v || *e || d < lo || d > hi) {
        fprintf(stderr, "xmc train: error: --%s: '%s' is not a number in [%g, %g]\n", name, v, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

/* Applies one setting by option code; value as text. 0 ok, -1 bad value. */
static int apply(settings *s, int code, const char *name, const char *v)
{
    double d;
    switch (code) {
    case O_TRAIN: s->in.tsv = v; return 0;
    case 'x': s->in.x = v; return 0;
    case 'y': s->in.y = v; return 0;
    case O_XC: s->in.xc = v; return 0;
    case O_XCF: if (num(name, v, 0, 1, &d)) return -1; s->in.xc_feature_base = (int)d; return 0;
    case O_XCL: if (num(name, v, 0, 1, &d)) return -1; s->in.xc_label_base = (int)d; return 0;
    case O_MODEL: s->model = v; return 0;
    case O_VERSION: snprintf(s->version, sizeof s->version, "%s", v); s->o.version = s->version; return 0;
    case O_NOCUR: s->o.make_current = 0; return 0;
    case O_TFIDF: s->tfidf = v; return 0;
    case O_SPLITS: if (num(name, v, 2, 65536, &d)) return -1; s->o.tree.nr_splits = (uint32_t)d; return 0;
    case O_LEAF: if (num(name, v, 1, 1e9, &d)) return -1; s->o.tree.max_leaf_size = (uint32_t)d; return 0;
    case O_KITER: if (num(name, v, 1, 1000, &d)) return -1; s->o.tree.max_iter = (int)d; return 0;
    case O_SEED: if (num(name, v, 0, 4294967295.0, &d)) return -1; s->o.tree.seed = (uint32_t)d; return 0;
    case O_CP: if (num(name, v, 1e-9, 1e9, &d)) return -1; s->o.xl.solver.cp = d; return 0;
    case O_CN: if (num(name, v, 1e-9, 1e9, &d)) return -1; s->o.xl.solver.cn = d; return 0;
    /* tolerance and iteration cap go to both solvers: only the chosen one runs, and the order of --solver
     * and --eps on the command line then does not matter */
    case O_EPS:
        if (num(name, v, 1e-12, 1e3, &d)) return -1;
        s->o.xl.solver.eps = d;
        s->o.xl.newton_eps = d;
        return 0;
    case O_MAXIT:
        if (num(name, v, 1, 1e7, &d)) return -1;
        s->o.xl.solver.max_iter = (int)d;
        s->o.xl.newton_max_iter = (int)d;
        return 0;
    case O_SOLVER:
        if (!strcmp(v, "dual")) s->o.xl.solver_type = XMC_SOLVER_DUAL;
        else if (!strcmp(v, "primal")) s->o.xl.solver_type = XMC_SOLVER_PRIMAL;
        else { fprintf(stderr, "xmc train: error: --solver: '%s' is not dual or primal\n", v); return -1; }
        return 0;
    case O_THR: if (num(name, v, 0, 1e9, &d)) return -1; s->o.xl.solver.threshold = (float)d; return 0;
    case O_BIAS: if (num(name, v, 0, 1e6, &d)) return -1; s->o.xl.solver.bias = (float)d; return 0;
    case O_NEG:
        if (!strcmp(v, "tfn")) s->o.xl.negatives = XMC_NEG_TFN;
        else if (!strcmp(v, "man")) s->o.xl.negatives = XMC_NEG_MAN;
        else if (!strcmp(v, "tfn+man")) s->o.xl.negatives = XMC_NEG_TFN | XMC_NEG_MAN;
        else { fprintf(stderr, "xmc train: error: --negatives: '%s' is not tfn, man or tfn+man\n", v); return -1; }
        return 0;
    case O_MANB: if (num(name, v, 1, 1024, &d)) return -1; s->o.xl.man_beam = (uint32_t)d; return 0;
    case O_BEAM: if (num(name, v, 1, 1024, &d)) return -1; s->o.xl.beam = (uint32_t)d; return 0;
    case O_TOPK: if (num(name, v, 1, 1024, &d)) return -1; s->o.xl.topk = (uint32_t)d; return 0;
    case O_POST:
        if (xmc_post_from_name(v) < 0) { fprintf(stderr, "xmc train: error: --post: unknown post-processor '%s'\n", v); return -1; }
        s->o.xl.post = xmc_post_from_name(v);
        return 0;
    case O_THREADS: if (num(name, v, 1, 64, &d)) return -1; s->o.threads = (int)d; return 0;
    case O_CAN: if (num(name, v, 0, 1000, &d)) return -1; s->o.nr_canaries = (uint32_t)d; return 0;
    case O_QUIET: s->quiet = 1; return 0;
    case O_FEAT:
        if (!strcmp(v, "tfidf")) s->o.featurizer = XMC_FEATURIZER_TFIDF;
        else if (!strcmp(v, "encoder")) s->o.featurizer = XMC_FEATURIZER_ENCODER;
        else if (!strcmp(v, "tfidf+encoder")) s->o.featurizer = XMC_FEATURIZER_BOTH;
        else { fprintf(stderr, "xmc train: error: --featurizer: '%s' is not tfidf, encoder or tfidf+encoder\n", v); return -1; }
        return 0;
    case O_ENC: s->o.encoder.dir = v; return 0;
    case O_VOCAB: s->o.encoder.vocab = v; return 0;
    case O_POOL: {
        xmc_error e;
        if (xmc_bert_pooling_parse(v, &s->o.encoder.pooling, &e)) { fprintf(stderr, "xmc train: error: --pooling: %s\n", e.msg); return -1; }
        return 0;
    }
    case O_ALPHA: if (num(name, v, 1e-6, 1e6, &d)) return -1; s->o.encoder.alpha = (float)d; return 0;
    case O_MAXLEN: if (num(name, v, 2, 4096, &d)) return -1; s->o.encoder.max_len = (int)d; return 0;
    }
    return -1;
}

/* Settings from a libconfig file: every top-level key must be a known option name (with '_'). */
static int read_config(settings *s, const char *path, config_t *cfg)
{
    if (!config_read_file(cfg, path)) {
        if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
            fprintf(stderr, "xmc train: error: %s: cannot read\n", path);
        else
            fprintf(stderr, "xmc train: error: %s:%d: %s\n", path, config_error_line(cfg), config_error_text(cfg));
        return -1;
    }
    config_setting_t *root = config_root_setting(cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *e = config_setting_get_elem(root, (unsigned)i);
        char key[64];
        snprintf(key, sizeof key, "%s", config_setting_name(e));
        for (char *c = key; *c; c++) if (*c == '_') *c = '-';
        const struct option *o = long_opts;
        while (o->name && strcmp(o->name, key)) o++;
        if (!o->name || o->val == O_CONFIG || o->val == 'h') {
            fprintf(stderr, "xmc train: error: %s:%d: unknown setting '%s'\n", path, config_setting_source_line(e),
                    config_setting_name(e));
            return -1;
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
            return -1;
        }
        if (apply(s, o->val, o->name, v)) {
            fprintf(stderr, "xmc train: error: %s:%d: bad value for '%s'\n", path, config_setting_source_line(e),
                    config_setting_name(e));
            return -1;
        }
    }
    return 0;
}

static void progress(void *ctx, const char *what, double done, double total)
{
    (void)ctx;
    xmc_cli_progress(what, done, total);
}

int xmc_cli_train(int argc, char **argv)
{
    settings s;
    memset(&s, 0, sizeof s);
    xmc_train_opts_default(&s.o);
    config_t cfg;
    config_init(&cfg);
    int rc = 2, c;
    /* pass 1: --config and --help; pass 2: everything else, overriding the file */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "x:y:h", long_opts, NULL)) != -1) {
        if (c == 'h') { usage(stdout); config_destroy(&cfg); return 0; }
        if (c == O_CONFIG && read_config(&s, optarg, &cfg)) goto out;
    }
    optind = 1;
    opterr = 1;
    int idx;
    while ((c = getopt_long(argc, argv, "x:y:h", long_opts, &idx)) != -1) {
        if (c == '?' || c == ':') { usage(stderr); goto out; }
        if (c == O_CONFIG) continue;
        const char *name = c == 'x' ? "x" : c == 'y' ? "y" : long_opts[idx].name;
        if (apply(&s, c, name, optarg ? optarg : "")) goto out;
    }
    if (optind < argc) { fprintf(stderr, "xmc train: error: unexpected argument '%s'\n", argv[optind]); goto out; }
    if (!s.model) { fprintf(stderr, "xmc train: error: --model REPO is required\n"); goto out; }
    int inputs = !!s.in.tsv + !!s.in.xc + !!(s.in.x || s.in.y);
    if (inputs != 1 || (!s.in.tsv && !s.in.xc && !(s.in.x && s.in.y))) {
        fprintf(stderr, "xmc train: error: give exactly one input: --train FILE.tsv, -x X.txt -y Y.txt, or --xc FILE\n");
        goto out;
    }
    if ((s.o.featurizer & XMC_FEATURIZER_ENCODER) && !s.o.encoder.dir) {
        fprintf(stderr, "xmc train: error: --featurizer %s needs --encoder DIR\n",
                s.o.featurizer == XMC_FEATURIZER_BOTH ? "tfidf+encoder" : "encoder");
        goto out;
    }
    if (s.o.encoder.dir && !(s.o.featurizer & XMC_FEATURIZER_ENCODER)) {
        fprintf(stderr, "xmc train: error: --encoder given but --featurizer is tfidf\n");
        goto out;
    }
    if (s.o.featurizer != XMC_FEATURIZER_TFIDF && !s.in.tsv) {
        fprintf(stderr, "xmc train: error: the encoder featurizer needs text input (--train FILE.tsv)\n");
        goto out;
    }
    xmc_error err = {0};
    if (s.tfidf && xmc_tfidf_config_parse(&s.o.tfidf, s.tfidf, &err)) { xmc_cli_report("train", &err); goto out; }
    if (!s.quiet) {
        s.o.progress = progress;
    }
    rc = 1;
    xmc_dataset ds;
    if (!s.quiet) fprintf(stderr, "reading training data\n");
    if (cli_read_input(&s.in, NULL, &ds, &err)) { xmc_cli_report("train", &err); goto out; }
    char version[128];
    xmc_train_report rep;
    if (xmc_train((const char *const *)ds.texts, ds.lens, ds.texts ? NULL : &ds.X, &ds.Y,
                  (const char *const *)ds.label_names, &s.o, s.model, version, sizeof version, &rep, &err)) {
        xmc_cli_report("train", &err);
        xmc_dataset_free(&ds);
        goto out;
    }
    xmc_dataset_free(&ds);
    if (!s.quiet) {
        fprintf(stderr, "trained %s: %u records, %u labels, %u features, %u layers (%.2f s features, %.2f s tree, "
                        "%.2f s rankers, %.2f s write)\n",
                version, rep.n_docs, rep.n_labels, rep.n_features, rep.depth, rep.sec_features, rep.sec_tree,
                rep.sec_rankers, rep.sec_write);
        if (rep.docs_without_label) fprintf(stderr, "note: %u records have no label (used as negatives only)\n", rep.docs_without_label);
        if (rep.labels_without_doc) fprintf(stderr, "note: %u labels have no positive record\n", rep.labels_without_doc);
    }
    /* the new version must open: checksums and canaries, as a server would check it */
    xmc_classifier *clf;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s.model, version);
    if (xmc_classifier_open(path, NULL, &clf, &err)) { xmc_cli_report("train", &err); goto out; }
    xmc_classifier_close(clf);
    printf("%s\n", version);
    rc = 0;
out:
    config_destroy(&cfg);
    return rc;
}
