/* test_warm.c: warm-started training on a constructed catalog: 4 topics of 4 labels, each record its topic's
 * word, its label's word and noise. A serving model is trained; then a warm retraining
 *  - on the same data keeps every label's leaf, gives the same P@1 (within 0.01) in fewer solver iterations;
 *  - with a new label of topic 2 puts it in the leaf of topic 2's labels; known labels keep their leaves;
 *  - without a label's records retires that label (not in the new model);
 *  - with the balance bound at its tightest and several new labels rebuilds the tree;
 *  - with the dual solver is refused (the dual needs the serving dual variables). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/train.h"
#include "xmc/xmc.h"

#define TOPICS 4
#define PER_TOPIC 4
#define PER_LABEL 40

static char *repo;
static char serving[128];

/* Writes the catalog: labels t<topic>l<i>; extra: how many labels of the new topic-2 kind (n2l0, n2l1, ...);
 * skip: a label left out ("" none). */
static char *write_catalog(const char *name, int extra, const char *skip)
{
    static const char *noise[] = {"new", "set", "pack", "blue", "red", "large", "small", "pro"};
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", repo, name);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    int n = 0;
    for (int t = 0; t < TOPICS; t++)
        for (int i = 0; i < PER_TOPIC; i++) {
            char label[32];
            snprintf(label, sizeof label, "t%dl%d", t, i);
            if (!strcmp(label, skip)) continue;
            for (int r = 0; r < PER_LABEL; r++, n++)
                fprintf(f, "%s\ttopic%c word%c%c %s %s\n", label, 'a' + t, 'a' + t, 'a' + i, noise[n % 8],
                        noise[(n / 8) % 8]);
        }
    for (int e = 0; e < extra; e++)
        for (int r = 0; r < PER_LABEL; r++, n++) /* topic 2's word and a word the serving vocabulary lacks */
            fprintf(f, "n2l%d\ttopicc fresh%c %s\n", e, 'a' + e, noise[n % 8]);
    fclose(f);
    return path;
}

static xmc_data *read_tsv(const char *path)
{
    xmc_data_source src = {.tsv = path};
    xmc_data *data = NULL;
    xmc_error err = {0};
    if (xmc_data_read(&src, NULL, &data, &err)) fprintf(stderr, "%s\n", err.msg);
    return data;
}

static void config(xmc_train_config *cfg, const char *version)
{
    xmc_train_config_default(cfg);
    cfg->tfidf = "word:1-1,min_df=1";
    cfg->max_leaf_size = 5; /* 16 labels: 4 leaf clusters of 4, one free place each */
    cfg->nr_splits = 4;
    cfg->solver = XMC_TRAIN_SOLVER_PRIMAL;
    cfg->threshold = 0.01f;
    cfg->version = version;
    cfg->make_current = 0;
    cfg->threads = 1;
}

static int setup(void)
{
    repo = tu_tmpdir();
    xmc_data *data = read_tsv(write_catalog("base.tsv", 0, ""));
    if (!data) return -1;
    xmc_train_config cfg;
    config(&cfg, "serving");
    cfg.make_current = 1;
    xmc_error err = {0};
    xmc_err rc = xmc_train_data(&cfg, data, repo, serving, sizeof serving, NULL, &err);
    xmc_data_free(data);
    if (rc) fprintf(stderr, "train: %s\n", err.msg);
    return rc ? -1 : 0;
}

static int teardown(void)
{
    tu_rmrf(repo);
    free(repo);
    return 0;
}

static xmc_classifier *open_version(const char *version)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/%s", repo, version);
    xmc_classifier *clf = NULL;
    xmc_error err = {0};
    if (xmc_classifier_open(dir, NULL, &clf, &err)) fprintf(stderr, "open %s: %s\n", dir, err.msg);
    return clf;
}

static uint32_t leaf_of(const xmc_classifier *clf, const char *label)
{
    uint32_t l = xmc_classifier_find_label(clf, label), leaf = UINT32_MAX;
    if (l == UINT32_MAX || xmc_classifier_label_leaves(clf, l, &leaf, 1) != 1) return UINT32_MAX;
    return leaf;
}

/* 1 when labels a and b share a leaf in clf. */
static int together(const xmc_classifier *clf, const char *a, const char *b)
{
    uint32_t la = leaf_of(clf, a), lb = leaf_of(clf, b);
    return la != UINT32_MAX && la == lb;
}

/* Every pair of the known labels is together in new exactly when it is in old. */
static void expect_same_partition(const xmc_classifier *old, const xmc_classifier *new)
{
    char a[16], b[16];
    int diff = 0;
    for (int i = 0; i < TOPICS * PER_TOPIC; i++)
        for (int j = 0; j < TOPICS * PER_TOPIC; j++) {
            snprintf(a, sizeof a, "t%dl%d", i / PER_TOPIC, i % PER_TOPIC);
            snprintf(b, sizeof b, "t%dl%d", j / PER_TOPIC, j % PER_TOPIC);
            if (xmc_classifier_find_label(new, a) == UINT32_MAX || xmc_classifier_find_label(new, b) == UINT32_MAX) continue;
            diff += together(old, a, b) != together(new, a, b);
        }
    CU_ASSERT_EQUAL(diff, 0);
}

static double p_at_1(const xmc_classifier *clf, const char *tsv)
{
    xmc_data_source src = {.tsv = tsv};
    xmc_data *data = NULL;
    xmc_error err = {0};
    if (xmc_data_read(&src, clf, &data, &err)) return -1;
    uint32_t n = xmc_data_rows(data), k = 1;
    xmc_hit *hits = malloc((size_t)n * sizeof *hits);
    uint32_t *counts = malloc((size_t)n * sizeof *counts);
    xmc_workspace *ws = NULL;
    xmc_predict_opts opts = {.beam = 10, .topk = 1, .post = -1};
    xmc_eval ev;
    double p = -1;
    if (hits && counts && !xmc_workspace_new(clf, &ws, &err) &&
        !xmc_data_classify(clf, &ws, 1, data, &opts, hits, k, counts, &err) &&
        !xmc_data_evaluate(clf, data, hits, counts, k, 0.55, 1.5, &ev, &err))
        p = ev.prec[1];
    xmc_workspace_free(ws);
    free(hits);
    free(counts);
    xmc_data_free(data);
    return p;
}

static void test_topics_give_topic_leaves(void)
{
    /* the construction holds: the cold tree put each topic in one leaf */
    xmc_classifier *old = open_version(serving);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT(together(old, "t2l0", "t2l3"));
    CU_ASSERT(!together(old, "t2l0", "t1l0"));
    xmc_classifier_close(old);
}

static void test_same_data(void)
{
    const char *tsv = write_catalog("same.tsv", 0, "");
    xmc_data *data = read_tsv(tsv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    xmc_train_config cfg;
    xmc_train_report cold, warm;
    xmc_error err = {0};
    char v[128];
    config(&cfg, "cold-again");
    CU_ASSERT_EQUAL_FATAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &cold, &err), XMC_OK);
    config(&cfg, "warm-same");
    cfg.warm_repo = repo;
    CU_ASSERT_EQUAL_FATAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &warm, &err), XMC_OK);
    xmc_data_free(data);
    CU_ASSERT_EQUAL(cold.warm, 0);
    CU_ASSERT_EQUAL(warm.warm, 1);
    CU_ASSERT_EQUAL(warm.warm_kept, TOPICS * PER_TOPIC);
    CU_ASSERT_EQUAL(warm.warm_added, 0);
    CU_ASSERT_EQUAL(warm.warm_retired, 0);
    printf("\n  same data: solver iterations cold %llu, warm %llu\n", (unsigned long long)cold.solver_iters,
           (unsigned long long)warm.solver_iters);
    CU_ASSERT(warm.solver_iters < cold.solver_iters);
    xmc_classifier *old = open_version(serving), *new = open_version("warm-same");
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT_PTR_NOT_NULL_FATAL(new);
    expect_same_partition(old, new);
    double p_old = p_at_1(old, tsv), p_new = p_at_1(new, tsv);
    printf("  same data: P@1 serving %.4f, warm %.4f (|diff| %.4f, tolerance 0.01)\n", p_old, p_new,
           p_old > p_new ? p_old - p_new : p_new - p_old);
    CU_ASSERT(p_old > 0.5);
    CU_ASSERT_DOUBLE_EQUAL(p_new, p_old, 0.01);
    xmc_classifier_close(old);
    xmc_classifier_close(new);
}

static void test_new_label_nearest_leaf(void)
{
    xmc_data *data = read_tsv(write_catalog("new.tsv", 1, ""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    xmc_train_config cfg;
    xmc_train_report rep;
    xmc_error err = {0};
    char v[128];
    config(&cfg, "warm-new");
    cfg.warm_repo = repo;
    cfg.warm_version = serving;
    CU_ASSERT_EQUAL_FATAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    xmc_data_free(data);
    CU_ASSERT_EQUAL(rep.warm_added, 1);
    CU_ASSERT_EQUAL(rep.warm_tree_rebuilt, 0);
    xmc_classifier *old = open_version(serving), *new = open_version("warm-new");
    CU_ASSERT_PTR_NOT_NULL_FATAL(new);
    CU_ASSERT(together(new, "n2l0", "t2l0"));
    CU_ASSERT(!together(new, "n2l0", "t1l0"));
    expect_same_partition(old, new);
    xmc_classifier_close(old);
    xmc_classifier_close(new);
}

static void test_retired_label(void)
{
    xmc_data *data = read_tsv(write_catalog("retired.tsv", 0, "t3l1"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    xmc_train_config cfg;
    xmc_train_report rep;
    xmc_error err = {0};
    char v[128];
    config(&cfg, "warm-retired");
    cfg.warm_repo = repo;
    cfg.warm_version = serving;
    CU_ASSERT_EQUAL_FATAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    xmc_data_free(data);
    CU_ASSERT_EQUAL(rep.warm_retired, 1);
    CU_ASSERT_EQUAL(rep.warm_kept, TOPICS * PER_TOPIC - 1);
    xmc_classifier *old = open_version(serving), *new = open_version("warm-retired");
    CU_ASSERT_PTR_NOT_NULL_FATAL(new);
    CU_ASSERT_EQUAL(xmc_classifier_num_labels(new), TOPICS * PER_TOPIC - 1);
    CU_ASSERT_EQUAL(xmc_classifier_find_label(new, "t3l1"), UINT32_MAX);
    expect_same_partition(old, new);
    xmc_classifier_close(old);
    xmc_classifier_close(new);
}

static void test_unbalanced_rebuilds(void)
{
    /* six new labels, four free places (one per leaf): the last two overflow their best leaf to 6 or 7 labels,
     * over a bound of 1 x max_leaf_size, so the tree is rebuilt */
    xmc_data *data = read_tsv(write_catalog("flood.tsv", 6, ""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    xmc_train_config cfg;
    xmc_train_report rep;
    xmc_error err = {0};
    char v[128];
    config(&cfg, "warm-flood");
    cfg.warm_repo = repo;
    cfg.warm_version = serving;
    cfg.warm_max_leaf_ratio = 1.0f;
    CU_ASSERT_EQUAL_FATAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    CU_ASSERT_EQUAL(rep.warm_added, 6);
    CU_ASSERT(rep.warm_max_leaf > 5);
    CU_ASSERT_EQUAL(rep.warm_tree_rebuilt, 1);
    xmc_classifier *new = open_version("warm-flood");
    CU_ASSERT_PTR_NOT_NULL(new);
    xmc_classifier_close(new);
    /* asked to rebuild: a cold training */
    config(&cfg, "warm-asked");
    cfg.warm_repo = repo;
    cfg.warm_rebuild = 1;
    CU_ASSERT_EQUAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    CU_ASSERT_EQUAL(rep.warm, 0);
    /* the dual solver cannot start warm */
    config(&cfg, "warm-dual");
    cfg.warm_repo = repo;
    cfg.solver = XMC_TRAIN_SOLVER_DUAL;
    CU_ASSERT_EQUAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "primal"));
    /* a missing serving version */
    config(&cfg, "warm-missing");
    cfg.warm_repo = repo;
    cfg.warm_version = "nope";
    CU_ASSERT_NOT_EQUAL(xmc_train_data(&cfg, data, repo, v, sizeof v, &rep, &err), XMC_OK);
    xmc_data_free(data);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("warm", setup, teardown);
    TU_ADD(s, test_topics_give_topic_leaves);
    TU_ADD(s, test_same_data);
    TU_ADD(s, test_new_label_nearest_leaf);
    TU_ADD(s, test_retired_label);
    TU_ADD(s, test_unbalanced_rebuilds);
    return tu_run(argc, argv);
}
