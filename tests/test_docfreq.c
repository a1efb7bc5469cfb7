/* test_docfreq.c: document frequencies (docfreq.h) against a plain count made here n-gram by n-gram, for
 * every thread count, with repeated n-grams in one document counted once; the df filter; the limit check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docfreq.h"
#include "ngram.h"
#include "testutil.h"

#include <xxhash.h>

static const char *const CORPUS[] = {
    "apple banana apple apple", "Banana, cherry! banana", "apple cherry cherry",
    "durian", "", "elderberry apple banana cherry durian fig",
};
#define NDOC 6
#define MAX_GRAMS 2048

/* The plain count: every distinct (base, bytes) and the number of documents it occurs in. */
typedef struct gram { uint32_t base, len, df, last; char bytes[64]; } gram;

static gram *find_gram(gram *g, size_t n, uint32_t b, const char *p, uint32_t len)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].base == b && g[i].len == len && !memcmp(g[i].bytes, p, len)) return &g[i];
    return NULL;
}

static size_t plain_count(const xmci_tfidf_config *cfg, gram *g)
{
    xmci_tok_ws tok;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&tok, &cfg->tok, &err), XMC_OK);
    xmci_tok_span *spans = malloc(4096 * sizeof *spans);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spans);
    size_t n = 0;
    for (uint32_t d = 0; d < NDOC; d++) {
        xmci_tok_words(&tok, CORPUS[d], strlen(CORPUS[d]));
        for (uint32_t b = 0; b < cfg->n_bases; b++) {
            uint32_t k = xmci_ngram_spans(&cfg->base[b], &tok, spans, 4096);
            for (uint32_t i = 0; i < k; i++) {
                const char *p = tok.text + spans[i].off;
                uint32_t len = spans[i].len;
                CU_ASSERT_FATAL(len < sizeof g->bytes);
                gram *e = find_gram(g, n, b, p, len);
                if (!e) {
                    CU_ASSERT_FATAL(n < MAX_GRAMS);
                    e = &g[n++];
                    *e = (gram){.base = b, .len = len, .last = UINT32_MAX};
                    memcpy(e->bytes, p, len);
                }
                if (e->last != d) { e->last = d; e->df++; }
            }
        }
    }
    free(spans);
    xmci_tok_ws_free(&tok);
    return n;
}

static void count_texts(const xmci_tfidf_config *cfg, int threads, xmci_docfreq **dfq)
{
    size_t lens[NDOC];
    for (int i = 0; i < NDOC; i++) lens[i] = strlen(CORPUS[i]);
    xmc_error err = {0};
    xmc_err rc = xmci_docfreq_count(cfg, CORPUS, lens, NDOC, threads, dfq, &err);
    if (rc) fprintf(stderr, "docfreq: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, XMC_OK);
}

/* Every thread count (more threads than documents included) gives the plain count, hashes included. */
static void test_matches_plain_count(void)
{
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-2,char_wb:2-3", &err), XMC_OK);
    gram *g = calloc(MAX_GRAMS, sizeof *g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    size_t n = plain_count(&cfg, g);
    CU_ASSERT(n > 50);
    for (int threads = 1; threads <= 8; threads++) {
        xmci_docfreq *dfq;
        count_texts(&cfg, threads, &dfq);
        size_t total = 0;
        for (uint32_t b = 0; b < cfg.n_bases; b++) {
            size_t distinct = xmci_docfreq_distinct(dfq, b);
            xmci_docfreq_entry *e = malloc((distinct + 1) * sizeof *e);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            size_t k = xmci_docfreq_filter(dfq, b, 0, 1e9, e);
            CU_ASSERT_EQUAL(k, distinct);
            for (size_t i = 0; i < k; i++) {
                gram *want = find_gram(g, n, b, e[i].p, e[i].len);
                CU_ASSERT_PTR_NOT_NULL_FATAL(want);
                CU_ASSERT_EQUAL(e[i].df, want->df);
                CU_ASSERT_EQUAL(e[i].hash, XXH64(e[i].p, e[i].len, b));
            }
            total += k;
            free(e);
        }
        CU_ASSERT_EQUAL(total, n); /* and nothing the plain count lacks, since each entry was found there */
        xmci_docfreq_free(dfq);
    }
    free(g);
}

/* Hand values: "apple" is in documents 0, 2, 5 (three times in document 0), "banana" in 0, 1, 5 (normalised
 * case, twice in document 1), "fig" in 5 alone; the filter keeps min_df <= df <= max_df. */
static void test_filter_and_repeats(void)
{
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "word:1-1", &err), XMC_OK);
    xmci_docfreq *dfq;
    count_texts(&cfg, 3, &dfq);
    xmci_docfreq_entry e[64];
    CU_ASSERT_FATAL(xmci_docfreq_distinct(dfq, 0) <= 64);
    size_t k = xmci_docfreq_filter(dfq, 0, 3, 3.0, e);
    int apple = 0, banana = 0;
    for (size_t i = 0; i < k; i++) {
        CU_ASSERT_EQUAL(e[i].df, 3);
        apple += e[i].len == 5 && !memcmp(e[i].p, "apple", 5);
        banana += e[i].len == 6 && !memcmp(e[i].p, "banana", 6);
    }
    CU_ASSERT_EQUAL(apple, 1);
    CU_ASSERT_EQUAL(banana, 1);
    k = xmci_docfreq_filter(dfq, 0, 1, 1.0, e);
    int fig = 0;
    for (size_t i = 0; i < k; i++) {
        CU_ASSERT_EQUAL(e[i].df, 1);
        fig += e[i].len == 3 && !memcmp(e[i].p, "fig", 3);
    }
    CU_ASSERT_EQUAL(fig, 1);
    xmci_docfreq_free(dfq);
}

/* Document limits that would allow over 2^31 n-grams of one base are refused before anything is counted. */
static void test_limits_refused(void)
{
    xmci_tfidf_config cfg;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tfidf_config_parse(&cfg, "char_wb:1-16", &err), XMC_OK);
    cfg.tok.max_bytes = UINT32_MAX / 4;
    xmci_docfreq *dfq = NULL;
    size_t lens[NDOC];
    for (int i = 0; i < NDOC; i++) lens[i] = strlen(CORPUS[i]);
    CU_ASSERT_EQUAL(xmci_docfreq_count(&cfg, CORPUS, lens, NDOC, 2, &dfq, &err), XMC_ERR_ARG);
    CU_ASSERT_PTR_NULL(dfq);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("docfreq", NULL, NULL);
    TU_ADD(s, test_matches_plain_count);
    TU_ADD(s, test_filter_and_repeats);
    TU_ADD(s, test_limits_refused);
    return tu_run(argc, argv);
}
