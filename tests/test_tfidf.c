/* test_tfidf.c: TF-IDF against hand-computed values (idf formulas, sublinear tf, norms, df filters, hstack),
 * configuration strings, determinism across thread counts, save/load through a model directory, and Reuters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "testutil.h"
#include "tfidf.h"

#include <xxhash.h>

/* apple: df 2, banana: df 2, cherry: df 2, durian: df 1; N = 4 */
static const char *const CORPUS[] = {"apple banana apple", "Banana, cherry!", "apple cherry cherry", "durian"};
#define NDOC 4

static xmci_tfidf *fit_spec(const char *spec, int threads)
{
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    size_t lens[NDOC];
    for (int i = 0; i < NDOC; i++) lens[i] = strlen(CORPUS[i]);
    if (xmci_tfidf_config_parse(&cfg, spec, &err) != XMC_OK) {
        fprintf(stderr, "parse %s: %s\n", spec, err.msg);
        return NULL;
    }
    xmci_tfidf *tf = NULL;
    if (xmci_tfidf_fit(&cfg, CORPUS, lens, NDOC, threads, &tf, &err) != XMC_OK) {
        fprintf(stderr, "fit %s: %s\n", spec, err.msg);
        return NULL;
    }
    return tf;
}

/* Transforms text and returns nnz; idx/val must hold xmci_tfidf_max_nnz entries. */
static uint32_t vec(const xmci_tfidf *tf, const char *text, uint32_t *idx, float *val)
{
    xmci_tfidf_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_ws_new(tf, &ws, &err), XMC_OK);
    uint32_t n = xmci_tfidf_transform(tf, ws, text, strlen(text), idx, val, xmci_tfidf_max_nnz(tf));
    xmci_tfidf_ws_free(ws);
    return n;
}

static uint32_t id_of(const xmci_tfidf *tf, uint32_t base, const char *gram)
{
    return xmci_tfidf_lookup(tf, base, gram, strlen(gram));
}

static void test_idf_and_tf(void)
{
    uint32_t idx[64];
    float val[64];
    double l43 = log(4.0 / 3.0), l2 = log(2.0);
    /* raw tf * pecos idf, no norm: idf = max(ln(N / (df + 1)), 0) */
    xmci_tfidf *tf = fit_spec("word:1-1,min_df=1,sublinear=0,norm=none", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), 4);
    CU_ASSERT_EQUAL(id_of(tf, 0, "apple"), 0); /* ids in byte order */
    CU_ASSERT_EQUAL(id_of(tf, 0, "banana"), 1);
    CU_ASSERT_EQUAL(id_of(tf, 0, "cherry"), 2);
    CU_ASSERT_EQUAL(id_of(tf, 0, "durian"), 3);
    CU_ASSERT_EQUAL(id_of(tf, 0, "zebra"), UINT32_MAX);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 0), l43, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 3), l2, 1e-6);
    uint32_t n = vec(tf, "APPLE banana apple zebra", idx, val); /* zebra is unseen: ignored */
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(idx[0], 0);
    CU_ASSERT_EQUAL(idx[1], 1);
    CU_ASSERT_DOUBLE_EQUAL(val[0], 2 * l43, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(val[1], l43, 1e-6);
    xmci_tfidf_free(tf);

    /* sublinear tf and l2 */
    tf = fit_spec("word:1-1,min_df=1", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    n = vec(tf, "apple banana apple", idx, val);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    double a = (1 + log(2.0)) * l43, b = l43, norm = sqrt(a * a + b * b);
    CU_ASSERT_DOUBLE_EQUAL(val[0], a / norm, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(val[1], b / norm, 1e-6);
    CU_ASSERT_EQUAL(vec(tf, "", idx, val), 0);            /* empty text: no entry */
    CU_ASSERT_EQUAL(vec(tf, "zebra ... okapi", idx, val), 0); /* only unseen: a zero row, not NaN */
    n = vec(tf, "apple\xff" "durian", idx, val);          /* invalid UTF-8 separates */
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(idx[1], 3);
    xmci_tfidf_free(tf);

    /* add_one_idf, sklearn idf */
    tf = fit_spec("word:1-1,min_df=1,norm=none,sublinear=0,add_one_idf=1", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 0), l43 + 1, 1e-6);
    xmci_tfidf_free(tf);
    tf = fit_spec("word:1-1,min_df=1,idf=sklearn", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 0), log(5.0 / 3.0) + 1, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 3), log(5.0 / 2.0) + 1, 1e-6);
    xmci_tfidf_free(tf);
    tf = fit_spec("word:1-1,min_df=1,idf=pecos,smooth_idf=0", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, 0), log(2.0), 1e-6);
    xmci_tfidf_free(tf);
}

static void test_df_filters(void)
{
    size_t len;
    xmci_tfidf *tf = fit_spec("word:1-1", 1); /* default min_df 2 drops durian */
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), 3);
    CU_ASSERT_EQUAL(id_of(tf, 0, "durian"), UINT32_MAX);
    xmci_tfidf_free(tf);
    tf = fit_spec("word:1-1,min_df=1,max_df=0.4", 1); /* df <= 1.6 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), 1);
    const char *name = xmci_tfidf_feature_name(tf, 0, &len);
    CU_ASSERT(name && len == 6 && !memcmp(name, "durian", 6));
    CU_ASSERT_PTR_NULL(xmci_tfidf_feature_name(tf, 1, &len));
    xmci_tfidf_free(tf);
    tf = fit_spec("word:1-1,min_df=1,max_features=2", 1); /* ties of df 2 broken by bytes */
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), 2);
    CU_ASSERT_EQUAL(id_of(tf, 0, "apple"), 0);
    CU_ASSERT_EQUAL(id_of(tf, 0, "banana"), 1);
    xmci_tfidf_free(tf);
    /* nothing survives */
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    size_t lens[NDOC];
    for (int i = 0; i < NDOC; i++) lens[i] = strlen(CORPUS[i]);
    xmci_tfidf_config_parse(&cfg, "min_df=5", &err);
    CU_ASSERT_EQUAL(xmci_tfidf_fit(&cfg, CORPUS, lens, NDOC, 1, &tf, &err), XMC_ERR_EMPTY);
    CU_ASSERT_EQUAL(xmci_tfidf_fit(&cfg, CORPUS, lens, 0, 1, &tf, &err), XMC_ERR_EMPTY);
}

/* Texts with no kept feature (empty, or only unknown words) give empty rows; on 4 threads some slices hold only
 * such rows, which the batch must gather without touching their unallocated buffers (UBSan, make test-asan). */
static void test_batch_empty_rows(void)
{
    xmci_tfidf *tf = fit_spec("word:1-1", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    static const char *const texts[] = {"", "zzz qqq", "apple", "", "xyzzy", "banana apple", "", "nothing known"};
    enum { N = sizeof texts / sizeof *texts };
    size_t lens[N];
    for (int i = 0; i < N; i++) lens[i] = strlen(texts[i]);
    xmci_csr m;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_transform_batch(tf, texts, lens, N, 4, &m, &err), XMC_OK);
    CU_ASSERT_EQUAL(m.rows, N);
    static const uint32_t want_nnz[N] = {0, 0, 1, 0, 0, 2, 0, 0};
    for (int d = 0; d < N; d++) CU_ASSERT_EQUAL(m.indptr[d + 1] - m.indptr[d], want_nnz[d]);
    CU_ASSERT_EQUAL(m.indices[m.indptr[2]], id_of(tf, 0, "apple"));
    xmci_csr_free(&m);
    xmci_tfidf_free(tf);
}

static void test_bigrams_and_names(void)
{
    xmci_tfidf *tf = fit_spec("word:1-2,min_df=1", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    /* unigrams 4 + bigrams: apple banana, banana apple, banana cherry, apple cherry, cherry cherry */
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tf), 9);
    CU_ASSERT_EQUAL(id_of(tf, 0, "apple"), 0);
    CU_ASSERT_EQUAL(id_of(tf, 0, "apple banana"), 1);
    CU_ASSERT_EQUAL(id_of(tf, 0, "apple cherry"), 2);
    CU_ASSERT_EQUAL(id_of(tf, 0, "banana"), 3);
    CU_ASSERT_EQUAL(id_of(tf, 0, "cherry cherry"), 7);
    for (uint32_t i = 0; i < 9; i++) {
        size_t len;
        const char *name = xmci_tfidf_feature_name(tf, i, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_EQUAL(xmci_tfidf_lookup(tf, 0, name, len), i);
    }
    uint32_t idx[64];
    float val[64];
    /* "banana apple" (df 1): bigram found across the comma, since punctuation only separates words */
    uint32_t n = vec(tf, "banana, apple", idx, val);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(idx[2], id_of(tf, 0, "banana apple"));
    /* cap: the first entries only, values of the whole row */
    xmci_tfidf_ws *ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_ws_new(tf, &ws, &err), XMC_OK);
    float full[64];
    uint32_t fidx[64];
    uint32_t nf = xmci_tfidf_transform(tf, ws, "banana, apple", 13, fidx, full, 64);
    CU_ASSERT_EQUAL(xmci_tfidf_transform(tf, ws, "banana, apple", 13, idx, val, 1), 1);
    CU_ASSERT_EQUAL(nf, 3);
    CU_ASSERT_EQUAL(val[0], full[0]);
    xmci_tfidf_ws_free(ws);
    xmci_tfidf_free(tf);
}

static void test_hstack_renorm(void)
{
    xmci_tfidf *tf = fit_spec("word:1-1,char_wb:2-2,min_df=1,sublinear=0", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    uint32_t first, count, wdim;
    xmci_tfidf_base_range(tf, 0, &first, &wdim);
    CU_ASSERT_EQUAL(first, 0);
    CU_ASSERT_EQUAL(wdim, 4);
    xmci_tfidf_base_range(tf, 1, &first, &count);
    CU_ASSERT_EQUAL(first, 4);
    CU_ASSERT_EQUAL(wdim + count, xmci_tfidf_dim(tf));
    uint32_t idx[128];
    float val[128];
    /* "durian": the word (idf ln 2) alone in base 0 -> 1; base 1: " d" "du" "ur" "ri" "ia" "n " have df 1
     * (idf ln 2) and "an" has df 3 (banana x2, durian), idf ln(4/4) = 0, so it is dropped: six equal entries
     * of 1/sqrt 6; the row [1, six of 1/sqrt 6] has norm sqrt 2 */
    uint32_t n = vec(tf, "durian", idx, val);
    CU_ASSERT_EQUAL_FATAL(n, 7);
    CU_ASSERT_EQUAL(idx[0], id_of(tf, 0, "durian"));
    CU_ASSERT_DOUBLE_EQUAL(val[0], 1 / sqrt(2.0), 1e-6);
    double ss = val[0] * val[0];
    for (uint32_t i = 1; i < n; i++) {
        CU_ASSERT(idx[i] >= 4 && idx[i] > idx[i - 1]);
        CU_ASSERT_DOUBLE_EQUAL(val[i], 1 / sqrt(12.0), 1e-6);
        ss += val[i] * val[i];
    }
    CU_ASSERT_DOUBLE_EQUAL(ss, 1.0, 1e-6);
    CU_ASSERT_EQUAL(id_of(tf, 1, " d"), idx[1]);
    CU_ASSERT_EQUAL(id_of(tf, 0, " d"), UINT32_MAX); /* the same bytes in another base are another feature */
    CU_ASSERT(id_of(tf, 1, "an") != UINT32_MAX);
    CU_ASSERT_DOUBLE_EQUAL(xmci_tfidf_idf_of(tf, id_of(tf, 1, "an")), 0.0, 1e-9);
    xmci_tfidf_free(tf);
}

/* weight=W scales a base's block after its own norm and before the row's: "durian" as above with the char block
 * weighted 0.5 is [1, six of 0.5/sqrt 6], norm sqrt 1.25; and a weight of 1 is the unweighted featurizer. */
static void test_base_weight(void)
{
    xmci_tfidf *tf = fit_spec("word:1-1,char_wb:2-2:weight=0.5,min_df=1,sublinear=0", 1);
    xmci_tfidf *t1 = fit_spec("word:1-1,char_wb:2-2:weight=1,min_df=1,sublinear=0", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t1);
    uint32_t idx[128], idx1[128];
    float val[128], val1[128];
    uint32_t n = vec(tf, "durian", idx, val);
    CU_ASSERT_EQUAL_FATAL(n, 7);
    CU_ASSERT_DOUBLE_EQUAL(val[0], 1 / sqrt(1.25), 1e-6);
    for (uint32_t i = 1; i < n; i++) CU_ASSERT_DOUBLE_EQUAL(val[i], 0.5 / sqrt(6.0) / sqrt(1.25), 1e-6);
    CU_ASSERT_EQUAL_FATAL(vec(t1, "durian", idx1, val1), 7);
    CU_ASSERT_DOUBLE_EQUAL(val1[0], 1 / sqrt(2.0), 1e-6);
    /* a weight survives the model's spec string (what a saved model keeps) and 1 is not written */
    char s[1024];
    xmci_tfidf_config_format(xmci_tfidf_config_of(tf), s, sizeof s);
    CU_ASSERT(strstr(s, "char_wb:2-2:") != NULL && strstr(s, ":weight=0.5") != NULL);
    xmci_tfidf_config_format(xmci_tfidf_config_of(t1), s, sizeof s);
    CU_ASSERT(strstr(s, "weight") == NULL);
    xmci_tfidf_free(tf);
    xmci_tfidf_free(t1);
}

static void test_config_strings(void)
{
    xmci_tfidf_config cfg, cfg2;
    xmc_error err = {0};
    xmci_tfidf_config_default(&cfg);
    CU_ASSERT_EQUAL(cfg.n_bases, 1);
    CU_ASSERT_EQUAL(cfg.base[0].ngram_max, 2);
    CU_ASSERT_EQUAL(cfg.base[0].min_df, 2);
    CU_ASSERT_EQUAL(cfg.base[0].sublinear_tf, 1);
    CU_ASSERT_EQUAL(cfg.tok.max_tokens, 4096);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2, char_wb:3-5:max_features=50000:min_df=1,min_df=3,"
                                                       "idf=sklearn,max_df=0.9,min_token_len=2", &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg.n_bases, 2);
    CU_ASSERT_EQUAL(cfg.base[1].analyzer, XMCI_TFIDF_CHAR_WB);
    CU_ASSERT_EQUAL(cfg.base[1].ngram_min, 3);
    CU_ASSERT_EQUAL(cfg.base[1].ngram_max, 5);
    CU_ASSERT_EQUAL(cfg.base[1].max_features, 50000);
    CU_ASSERT_EQUAL(cfg.base[0].max_features, 0);
    CU_ASSERT_EQUAL(cfg.base[0].min_df, 3);
    CU_ASSERT_EQUAL(cfg.base[1].min_df, 1); /* its own option wins over the item that comes after it */
    CU_ASSERT_EQUAL(cfg.base[1].idf, XMCI_TFIDF_IDF_SKLEARN);
    CU_ASSERT_DOUBLE_EQUAL(cfg.base[0].max_df, 0.9, 1e-12);
    CU_ASSERT_EQUAL(cfg.tok.min_token_len, 2);
    CU_ASSERT_EQUAL(cfg.base[0].weight, 1.0);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2, char_wb:3-5:max_features=50000:min_df=1,min_df=3,"
                                                       "idf=sklearn,max_df=0.9,min_token_len=2,word:2:weight=0.3",
                                                  &err), XMC_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.base[2].weight, 0.3, 1e-15);
    char s1[1024], s2[1024];
    CU_ASSERT(xmci_tfidf_config_format(&cfg, s1, sizeof s1) < sizeof s1);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg2, s1, &err), XMC_OK);
    xmci_tfidf_config_format(&cfg2, s2, sizeof s2);
    CU_ASSERT_STRING_EQUAL(s1, s2);
    CU_ASSERT_EQUAL(cfg2.base[0].max_df, cfg.base[0].max_df);
    CU_ASSERT_EQUAL(cfg2.base[2].weight, cfg.base[2].weight);
    /* reals in their shortest exact form (it was 0.29999999999999999, which pushed specs past inspect's buffer) */
    CU_ASSERT(strstr(s1, ":max_df=0.9:") != NULL && strstr(s1, ":weight=0.3") != NULL);
    CU_ASSERT(strstr(s1, "split=") == NULL); /* a default tokenizer is not written: old models read the same */
    /* PECOS's tokenization: both options round-trip, and only as items */
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2,split=space,casefold=0", &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg.tok.split, XMCI_TOK_SPLIT_SPACE);
    CU_ASSERT_EQUAL(cfg.tok.casefold, 0);
    xmci_tfidf_config_format(&cfg, s1, sizeof s1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s1, ",split=space,casefold=0"));
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg2, s1, &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg2.tok.split, XMCI_TOK_SPLIT_SPACE);
    CU_ASSERT_EQUAL(cfg2.tok.casefold, 0);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "word:1-2:split=space", &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "split=words", &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "casefold=2", &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "norm=none,word:1-1:norm=l2", &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg.norm, XMCI_TFIDF_NORM_NONE);
    CU_ASSERT_EQUAL(cfg.base[0].norm, XMCI_TFIDF_NORM_L2);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "", &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, "word:1-3", &err), XMC_OK);
    CU_ASSERT_EQUAL(cfg.base[0].ngram_max, 3);
    const char *bad[] = {"word:0-2", "word:3-2", "word:1-17", "word:", "chars:1-2", "foo", "min_df=x", "max_df=1.5",
                         "max_df=0", "word:1-2:max_tokens=3", "bogus=1", "idf=bm25", "norm=l1", "sublinear=2",
                         "max_bytes=8", "weight=0", "weight=-1", "weight=17", "weight=nan", "weight=1e-300", "weight= 2",
                         "max_df= 0.5",
                         "weight=inf", "weight=", "word:1-1:weight=1x", "word:1-1,word:1-1,word:1-1,word:1-1,word:1-1,word:1-1,word:1-1,word:1-1,word:1-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        xmc_error_clear(&err);
        CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&cfg, bad[i], &err), XMC_ERR_ARG);
        CU_ASSERT(err.msg[0] != 0);
    }
}

/* Feature ids and values must not depend on the thread count. */
static void test_threads_deterministic(void)
{
    xmci_tfidf *t1 = fit_spec("word:1-2,char_wb:1-3,min_df=1", 1);
    xmci_tfidf *t3 = fit_spec("word:1-2,char_wb:1-3,min_df=1", 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t3);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_dim(t1), xmci_tfidf_dim(t3));
    for (uint32_t i = 0; i < xmci_tfidf_dim(t1); i++) {
        size_t l1, l3;
        const char *a = xmci_tfidf_feature_name(t1, i, &l1), *b = xmci_tfidf_feature_name(t3, i, &l3);
        CU_ASSERT(l1 == l3 && !memcmp(a, b, l1));
        CU_ASSERT_EQUAL(xmci_tfidf_idf_of(t1, i), xmci_tfidf_idf_of(t3, i));
    }
    xmci_tfidf_free(t1);
    xmci_tfidf_free(t3);
}

static void test_save_load(void)
{
    xmci_tfidf *tf = fit_spec("word:1-2,char_wb:2-4:sublinear=0,min_df=1,add_one_idf=1", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    char *repo = tu_tmpdir();
    xmci_model_writer *w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, "v1", &w, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_save(tf, w, "feat", &err), XMC_OK);
    char ver[64];
    CU_ASSERT_EQUAL_FATAL(xmci_writer_commit(w, 1, ver, sizeof ver, &err), XMC_OK);
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(xmci_model_resolve(repo, dir, sizeof dir, &err), XMC_OK);
    xmci_bundle *b;
    CU_ASSERT_EQUAL_FATAL(xmci_bundle_open(dir, 1, &b, &err), XMC_OK);
    xmci_tfidf *tl;
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_load(b, "feat", &tl, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_tfidf_dim(tl), xmci_tfidf_dim(tf));
    CU_ASSERT_EQUAL(xmci_tfidf_max_nnz(tl), xmci_tfidf_max_nnz(tf));
    char s1[1024], s2[1024];
    xmci_tfidf_config_format(xmci_tfidf_config_of(tf), s1, sizeof s1);
    xmci_tfidf_config_format(xmci_tfidf_config_of(tl), s2, sizeof s2);
    CU_ASSERT_STRING_EQUAL(s1, s2);
    const char *probe[] = {"apple banana apple", "Banana, cherry!", "durian apple", "", "nothing known", "\xff\xfe"};
    uint32_t cap = xmci_tfidf_max_nnz(tf);
    uint32_t *i1 = malloc(cap * sizeof *i1), *i2 = malloc(cap * sizeof *i2);
    float *v1 = malloc(cap * sizeof *v1), *v2 = malloc(cap * sizeof *v2);
    for (size_t p = 0; p < sizeof probe / sizeof *probe; p++) {
        uint32_t n1 = vec(tf, probe[p], i1, v1), n2 = vec(tl, probe[p], i2, v2);
        CU_ASSERT_EQUAL(n1, n2);
        if (n1 == n2) {
            CU_ASSERT_EQUAL(memcmp(i1, i2, n1 * sizeof *i1), 0);
            CU_ASSERT_EQUAL(memcmp(v1, v2, n1 * sizeof *v1), 0);
        }
    }
    size_t len;
    const char *name = xmci_tfidf_feature_name(tl, 0, &len);
    CU_ASSERT(name && len == 5 && !memcmp(name, "apple", 5));
    /* batch through the loaded vectoriser equals one-by-one */
    size_t lens[NDOC];
    for (int i = 0; i < NDOC; i++) lens[i] = strlen(CORPUS[i]);
    xmci_csr m;
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_transform_batch(tl, CORPUS, lens, NDOC, 3, &m, &err), XMC_OK);
    CU_ASSERT_EQUAL(m.rows, NDOC);
    CU_ASSERT_EQUAL(m.cols, xmci_tfidf_dim(tl));
    for (int d = 0; d < NDOC; d++) {
        uint32_t n1 = vec(tf, CORPUS[d], i1, v1);
        CU_ASSERT_EQUAL(m.indptr[d + 1] - m.indptr[d], n1);
        CU_ASSERT_EQUAL(memcmp(m.indices + m.indptr[d], i1, n1 * sizeof *i1), 0);
        CU_ASSERT_EQUAL(memcmp(m.data + m.indptr[d], v1, n1 * sizeof *v1), 0);
    }
    xmci_csr_free(&m);
    CU_ASSERT_EQUAL(xmci_tfidf_load(b, "nope", &tl, &err), XMC_ERR_NOTFOUND);
    free(i1); free(i2); free(v1); free(v2);
    xmci_tfidf_free(tl);
    xmci_bundle_close(b);
    xmci_tfidf_free(tf);
    tu_rmrf(repo);
    free(repo);
}

/* ---- hand-written model directories: damaged or inconsistent ones must be refused or be harmless ------- */

enum { TINY_OK, TINY_GARBAGE_TABLE, TINY_BAD_OFFSET, TINY_FORMAT2, TINY_SHORT_OFFSETS, TINY_NBASES, TINY_BAD_CONFIG,
       TINY_TABLE_NOT_POW2 };

/* Writes a vectoriser of two features "a" (0) and "b" (1), word 1-1, damaged as variant says. */
static xmc_err write_tiny(const char *repo, int variant, xmci_bundle **out, xmc_error *err)
{
    char ver[32];
    snprintf(ver, sizeof ver, "v%d", variant);
    xmci_model_writer *w;
    xmc_err rc = xmci_writer_begin(repo, ver, &w, err);
    if (rc) return rc;
    uint32_t offsets[3] = {0, 1, 2}, table[8] = {0};
    float idf[2] = {1, 1};
    const char *gram[2] = {"a", "b"};
    for (uint32_t id = 0; id < 2; id++) {
        uint64_t h = XXH64(gram[id], 1, 0);
        uint32_t slot = (uint32_t)h & 3;
        while (table[2 * slot]) slot = (slot + 1) & 3;
        table[2 * slot] = id + 1;
        table[2 * slot + 1] = (uint32_t)(h >> 32);
    }
    if (variant == TINY_GARBAGE_TABLE)
        for (int i = 0; i < 8; i++) table[i] = i % 2 ? 0 : 7; /* no empty slot, ids beyond dim */
    if (variant == TINY_BAD_OFFSET) offsets[1] = 99;
    uint64_t shape[2] = {2, 0};
    xmci_writer_array(w, "f.vocab", XMCI_DT_U8, 1, shape, "ab", err);
    shape[0] = variant == TINY_SHORT_OFFSETS ? 2 : 3;
    xmci_writer_array(w, "f.offsets", XMCI_DT_U32, 1, shape, offsets, err);
    shape[0] = 2;
    xmci_writer_array(w, "f.idf", XMCI_DT_F32, 1, shape, idf, err);
    shape[0] = variant == TINY_TABLE_NOT_POW2 ? 3 : 4;
    shape[1] = 2;
    xmci_writer_array(w, "f.table", XMCI_DT_U32, 2, shape, table, err);
    xmci_writer_set_int(w, "f.format", variant == TINY_FORMAT2 ? 2 : 1, err);
    xmci_writer_set_string(w, "f.config", variant == TINY_BAD_CONFIG ? "word:9-1" : "word:1-1,min_df=1", err);
    xmci_writer_set_int(w, "f.dim", 2, err);
    xmci_writer_set_int(w, "f.n_docs", 2, err);
    xmci_writer_set_int(w, "f.n_bases", variant == TINY_NBASES ? 2 : 1, err);
    xmci_writer_set_int(w, "f.base0.offset", 0, err);
    xmci_writer_set_int(w, "f.base0.dim", 2, err);
    if ((rc = xmci_writer_commit(w, 0, NULL, 0, err))) return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", repo, ver);
    return xmci_bundle_open(dir, 1, out, err);
}

static void test_load_damaged(void)
{
    char *repo = tu_tmpdir();
    xmc_error err = {0};
    xmci_bundle *b;
    xmci_tfidf *tf;
    uint32_t idx[8];
    float val[8];
    size_t len;
    /* the hand-made model is valid */
    CU_ASSERT_EQUAL_FATAL(write_tiny(repo, TINY_OK, &b, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_load(b, "f", &tf, &err), XMC_OK);
    CU_ASSERT_EQUAL(id_of(tf, 0, "b"), 1);
    CU_ASSERT_EQUAL(vec(tf, "b A c", idx, val), 2);
    xmci_tfidf_free(tf);
    xmci_bundle_close(b);
    /* a table with no empty slot and ids beyond dim: lookups end and find nothing */
    CU_ASSERT_EQUAL_FATAL(write_tiny(repo, TINY_GARBAGE_TABLE, &b, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_load(b, "f", &tf, &err), XMC_OK);
    CU_ASSERT_EQUAL(id_of(tf, 0, "a"), UINT32_MAX);
    CU_ASSERT_EQUAL(vec(tf, "a b", idx, val), 0);
    xmci_tfidf_free(tf);
    xmci_bundle_close(b);
    /* an offset beyond the vocabulary: that feature has no name and never matches */
    CU_ASSERT_EQUAL_FATAL(write_tiny(repo, TINY_BAD_OFFSET, &b, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_load(b, "f", &tf, &err), XMC_OK);
    CU_ASSERT_PTR_NULL(xmci_tfidf_feature_name(tf, 0, &len));
    CU_ASSERT_EQUAL(id_of(tf, 0, "a"), UINT32_MAX);
    xmci_tfidf_free(tf);
    xmci_bundle_close(b);
    struct { int variant; xmc_err want; } refused[] = {
        {TINY_FORMAT2, XMC_ERR_VERSION}, {TINY_SHORT_OFFSETS, XMC_ERR_SHAPE}, {TINY_NBASES, XMC_ERR_CORRUPT},
        {TINY_BAD_CONFIG, XMC_ERR_ARG}, {TINY_TABLE_NOT_POW2, XMC_ERR_SHAPE}};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        CU_ASSERT_EQUAL_FATAL(write_tiny(repo, refused[i].variant, &b, &err), XMC_OK);
        xmc_error_clear(&err);
        tf = NULL;
        CU_ASSERT_EQUAL(xmci_tfidf_load(b, "f", &tf, &err), refused[i].want);
        CU_ASSERT_PTR_NULL(tf);
        CU_ASSERT(err.msg[0] != 0);
        xmci_bundle_close(b);
    }
    tu_rmrf(repo);
    free(repo);
}

/* ---- Reuters (tests/data/reuters-sample: the first 300 train documents) ---------------------------------- */

typedef struct corpus {
    char *buf;
    const char **texts;
    size_t *lens;
    size_t n;
} corpus;

static int load_reuters(corpus *c)
{
    memset(c, 0, sizeof *c);
    if (!tu_data_dir()) return 0;
    FILE *f = fopen(tu_data("reuters-sample/train.tsv"), "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    c->buf = malloc((size_t)size + 1);
    if (fread(c->buf, 1, (size_t)size, f) != (size_t)size) { fclose(f); return 0; }
    fclose(f);
    c->buf[size] = 0;
    size_t lines = 0;
    for (long i = 0; i < size; i++) lines += c->buf[i] == '\n';
    c->texts = malloc(lines * sizeof *c->texts);
    c->lens = malloc(lines * sizeof *c->lens);
    for (char *p = c->buf; *p;) {
        char *nl = strchr(p, '\n'), *tab = strchr(p, '\t');
        if (!nl) break;
        c->texts[c->n] = tab + 1;
        c->lens[c->n++] = (size_t)(nl - tab - 1);
        p = nl + 1;
    }
    return 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_reuters(void)
{
    corpus c;
    if (!load_reuters(&c)) { CU_FAIL("tests/data/reuters-sample/train.tsv missing"); return; }
    CU_ASSERT_EQUAL(c.n, 300);
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    xmci_tfidf *tf, *tf2;
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2,min_df=2", &err), XMC_OK);
    double t0 = now();
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_fit(&cfg, c.texts, c.lens, c.n, 2, &tf, &err), XMC_OK);
    double t1 = now();
    uint32_t dim = xmci_tfidf_dim(tf);
    CU_ASSERT_EQUAL(dim, 6665); /* make_samples.py, scikit-learn's analyzer with token pattern (?u)\b\w+\b */
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2,min_df=2,min_token_len=2", &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_fit(&cfg, c.texts, c.lens, c.n, 2, &tf2, &err), XMC_OK);
    uint32_t dim2 = xmci_tfidf_dim(tf2);
    /* scikit-learn's count with its token pattern (?u)\b\w\w+\b, by tests/tools/make_samples.py (110263 on
     * all 7,770 documents, as scikit-learn 1.2.1 reported there) */
    CU_ASSERT_EQUAL(dim2, 6217);
    xmci_csr m;
    double t2 = now();
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_transform_batch(tf, c.texts, c.lens, c.n, 2, &m, &err), XMC_OK);
    double t3 = now();
    /* every non-empty row has unit norm */
    uint32_t bad = 0;
    for (uint32_t r = 0; r < m.rows; r++) {
        double ss = 0;
        for (uint64_t p = m.indptr[r]; p < m.indptr[r + 1]; p++) {
            ss += (double)m.data[p] * m.data[p];
            if (p > m.indptr[r] && m.indices[p] <= m.indices[p - 1]) bad++;
        }
        if (m.indptr[r + 1] > m.indptr[r] && fabs(ss - 1) > 1e-4) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    printf("\n  reuters-sample word 1-2 min_df 2: %u features (%u with min_token_len=2; sklearn keeps 6217); "
           "fit %.3f s (2 threads); transform %.0f docs/s (2 threads), nnz %llu\n",
           dim, dim2, t1 - t0, c.n / (t3 - t2), (unsigned long long)xmci_csr_nnz(&m));
    xmci_csr_free(&m);
    xmci_tfidf_free(tf);
    xmci_tfidf_free(tf2);
    free(c.buf);
    free(c.texts);
    free(c.lens);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("tfidf", NULL, NULL);
    TU_ADD(s, test_idf_and_tf);
    TU_ADD(s, test_df_filters);
    TU_ADD(s, test_batch_empty_rows);
    TU_ADD(s, test_bigrams_and_names);
    TU_ADD(s, test_hstack_renorm);
    TU_ADD(s, test_base_weight);
    TU_ADD(s, test_config_strings);
    TU_ADD(s, test_threads_deterministic);
    TU_ADD(s, test_save_load);
    TU_ADD(s, test_load_damaged);
    TU_ADD(s, test_reuters);
    return tu_run(argc, argv);
}
