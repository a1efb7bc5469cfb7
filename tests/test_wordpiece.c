/* test_wordpiece.c: BERT tokenizer: ids and pieces equal to the references (bert-random-h16 over the real
 * bert-base-uncased vocab, bert-tiny-pecos), known answers, padding/mask/truncation, bad input, bad vocab.
 *
 * Texts come from refs.json (jansson keeps the embedded NUL of case 10; texts.inc is checked to hold the
 * same bytes), expected ids and pieces from tokens.tsv; every mismatching case is printed with both lists. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wordpiece.h"

/* Loads refs.json "cases" (or the top-level "cases" of the tiny set): texts and their byte lengths. */
static int load_texts(const char *rel, char ***texts, size_t **lens)
{
    json_error_t jerr;
    json_t *root = json_load_file(tu_data(rel), JSON_ALLOW_NUL, &jerr);
    if (!root) { fprintf(stderr, "%s: %s\n", rel, jerr.text); return -1; }
    json_t *cases = json_object_get(root, "cases");
    int n = (int)json_array_size(cases);
    *texts = calloc((size_t)n, sizeof **texts);
    *lens = calloc((size_t)n, sizeof **lens);
    for (int i = 0; i < n; i++) {
        json_t *t = json_object_get(json_array_get(cases, (size_t)i), "text");
        size_t len = json_string_length(t);
        (*texts)[i] = malloc(len + 1);
        memcpy((*texts)[i], json_string_value(t), len + 1);
        (*lens)[i] = len;
    }
    json_decref(root);
    return n;
}

static void free_texts(char **texts, size_t *lens, int n)
{
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
}

/* Compares every row of tokens.tsv (ids in column ids_col, pieces in the next) with our tokenisation. */
static void check_against_tsv(const char *vocab_rel, const char *refs_rel, const char *tsv_rel, int ids_col)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data(vocab_rel), &wp, &err), XMC_OK);
    char **texts = NULL;
    size_t *lens = NULL;
    int n = load_texts(refs_rel, &texts, &lens);
    CU_ASSERT_FATAL(n > 0);
    xmci_wordpiece_batch batch = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, (const char *const *)texts, lens, n, 128, &batch, &err),
                          XMC_OK);
    FILE *f = fopen(tu_data(tsv_rel), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[65536];
    int rows = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *col[4] = {0};
        char *save = NULL, *s = line;
        for (int c = 0; c < 4; c++, s = NULL) col[c] = strtok_r(s, "\t", &save);
        int r = atoi(col[0]);
        CU_ASSERT_FATAL(r >= 0 && r < n);
        const char *ids = col[ids_col], *toks = col[ids_col + 1];
        int ok = 1, k = 0;
        char *end;
        for (const char *p = ids; *p; p = end, k++) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            if (k >= batch.len[r] || batch.ids[(size_t)r * batch.seq + k] != v) ok = 0;
        }
        if (k != batch.len[r]) ok = 0;
        /* the pieces, from the ids through the vocabulary, must spell tokens.tsv's fourth column */
        char mine[65536];
        size_t m = 0;
        for (int j = 0; j < batch.len[r]; j++)
            m += (size_t)snprintf(mine + m, sizeof mine - m, "%s%s", j ? " " : "",
                                  xmci_wordpiece_token(wp, batch.ids[(size_t)r * batch.seq + j]));
        if (strcmp(mine, toks) != 0) ok = 0;
        if (!ok) {
            bad++;
            fprintf(stderr, "case %d: expected [%s]\n         got      [%s]\n", r, toks, mine);
        }
        rows++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(rows, n);
    CU_ASSERT_EQUAL(bad, 0);
    printf("\n  %s: %d/%d cases identical\n", tsv_rel, rows - bad, rows);
    xmci_wordpiece_batch_free(&batch);
    free_texts(texts, lens, n);
    xmci_wordpiece_free(wp);
}

/* Decodes the C string literal at the start of a texts.inc line (octal escapes, \\, \"); returns its length. */
static size_t decode_literal(const char *line, char *out)
{
    size_t n = 0;
    const char *p = strchr(line, '"');
    for (p = p ? p + 1 : line; *p && *p != '"'; p++) {
        if (*p != '\\') { out[n++] = *p; continue; }
        p++;
        if (*p >= '0' && *p <= '7') {
            int v = 0;
            for (int k = 0; k < 3 && *p >= '0' && *p <= '7'; k++, p++) v = v * 8 + (*p - '0');
            out[n++] = (char)v;
            p--;
        } else {
            out[n++] = *p;
        }
    }
    return n;
}

/* texts.inc (the C-literal copy of the texts) holds byte for byte what refs.json holds, NUL of case 10 included. */
static void check_texts_inc(const char *inc_rel, const char *refs_rel)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    char **texts = NULL;
    size_t *lens = NULL;
    int n = load_texts(refs_rel, &texts, &lens);
    CU_ASSERT_FATAL(n > 0);
    FILE *f = fopen(tu_data(inc_rel), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[8192], text[8192];
    int r = 0, same = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] != '"') continue;
        size_t len = decode_literal(line, text);
        if (r < n && len == lens[r] && memcmp(text, texts[r], len) == 0) same++;
        r++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(r, n);
    CU_ASSERT_EQUAL(same, n);
    free_texts(texts, lens, n);
}

static void test_texts_inc(void)
{
    check_texts_inc("bert-random-h16/texts.inc", "bert-random-h16/refs.json");
    check_texts_inc("bert-tiny-pecos/texts.inc", "bert-tiny-pecos/refs.json");
}

static void test_random_l2_tokens(void)
{
    check_against_tsv("bert-vocab/vocab.txt", "bert-random-h16/refs.json", "bert-random-h16/tokens.tsv", 2);
}

static void test_tiny_pecos_tokens(void)
{
    check_against_tsv("bert-tiny-pecos/vocab.txt", "bert-tiny-pecos/refs.json", "bert-tiny-pecos/tokens.tsv", 1);
}

/* Untruncated lengths and the truncation flag of refs.json. */
static void test_random_l2_lengths(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data("bert-vocab/vocab.txt"), &wp, &err), XMC_OK);
    json_error_t jerr;
    json_t *root = json_load_file(tu_data("bert-random-h16/refs.json"), JSON_ALLOW_NUL, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    json_t *cases = json_object_get(root, "cases");
    xmci_wordpiece_batch batch = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        json_t *t = json_object_get(c, "text");
        const char *text = json_string_value(t);
        size_t len = json_string_length(t);
        CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, &text, &len, 1, 128, &batch, &err), XMC_OK);
        CU_ASSERT_EQUAL(batch.len[0], json_integer_value(json_object_get(c, "n_tokens")));
        CU_ASSERT_EQUAL(batch.full_len[0], json_integer_value(json_object_get(c, "n_tokens_untruncated")));
        CU_ASSERT_EQUAL(batch.seq, batch.len[0]);
    }
    json_decref(root);
    xmci_wordpiece_batch_free(&batch);
    xmci_wordpiece_free(wp);
}

static void expect_ids(xmci_wordpiece *wp, const char *text, const int32_t *want, int nwant)
{
    xmc_error err = {0};
    xmci_wordpiece_batch batch = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, &text, NULL, 1, 512, &batch, &err), XMC_OK);
    CU_ASSERT_EQUAL(batch.len[0], nwant);
    int same = batch.len[0] == nwant;
    for (int i = 0; same && i < nwant; i++) same = batch.ids[i] == want[i];
    CU_ASSERT(same);
    if (!same) {
        fprintf(stderr, "\"%s\":", text);
        for (int i = 0; i < batch.len[0]; i++) fprintf(stderr, " %d", batch.ids[i]);
        fprintf(stderr, "\n");
    }
    xmci_wordpiece_batch_free(&batch);
}

/* Known answers from the HF documentation and course, on the real vocabulary. */
static void test_real_vocab_known_answers(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data("bert-vocab/vocab.txt"), &wp, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_wordpiece_size(wp), 30522);
    CU_ASSERT_EQUAL(xmci_wordpiece_pad(wp), 0);
    CU_ASSERT_EQUAL(xmci_wordpiece_unk(wp), 100);
    CU_ASSERT_EQUAL(xmci_wordpiece_cls(wp), 101);
    CU_ASSERT_EQUAL(xmci_wordpiece_sep(wp), 102);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "[MASK]"), 103);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "!"), 999);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "the"), 1996);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "##proof"), 18907);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "no-such-token"), -1);
    CU_ASSERT_STRING_EQUAL(xmci_wordpiece_token(wp, 1996), "the");
    CU_ASSERT_PTR_NULL(xmci_wordpiece_token(wp, 30522));
    static const int32_t a[] = {101, 7592, 1010, 2026, 3899, 2003, 10140, 102};
    expect_ids(wp, "Hello, my dog is cute", a, 8);
    static const int32_t b[] = {101, 1045, 1005, 2310, 2042, 3403, 2005, 1037, 17662, 12172, 2607, 2026, 2878, 2166,
                                1012, 102};
    expect_ids(wp, "I've been waiting for a HuggingFace course my whole life.", b, 16);
    static const int32_t empty[] = {101, 102};
    expect_ids(wp, "", empty, 2);
    expect_ids(wp, " \t\r\n\xc2\xa0 ", empty, 2);
    /* invalid UTF-8 (stray continuation, truncated sequence, overlong, 0xFF) is dropped, not fatal */
    static const int32_t dog[] = {101, 3899, 102};
    expect_ids(wp, "\x80\xff" "d\xc3o\xe2\x82g\xc0\xaf", dog, 3);
    xmci_wordpiece_free(wp);
}

/* Regression cases from a differential run against tests/tools/bert_ref.py (9,000 random texts mixing
 * Greek, Cyrillic, CJK, Hangul, combining marks, controls, separators, private use, astral planes: all equal);
 * ids from bert_ref.tokenize. Final sigma, Zl/Zp as separators, U+0130's full lower-casing, dropped Cf
 * (BOM, ZWJ) that join words, canonical reordering of marks before they are stripped. */
static void test_unicode_regressions(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data("bert-vocab/vocab.txt"), &wp, &err), XMC_OK);
    static const struct { const char *text; int32_t ids[10]; int n; } cases[] = {
        {"\316\237\316\224\316\237\316\243 \316\243\316\221\316\243 \316\243", /* ΟΔΟΣ ΣΑΣ Σ: ο ##δ ##ος σ ##α ##ς σ */
         {101, 1169, 29722, 15297, 1173, 14608, 19579, 1173, 102}, 9},
        {"line\342\200\250break\342\200\251para", {101, 2240, 3338, 11498, 102}, 5},
        {"\304\260STANBUL \307\205emal \357\254\203 \342\205\247", {101, 9960, 100, 100, 100, 102}, 6},
        {"a\314\201\314\243b \341\271\251", {101, 11113, 1055, 102}, 4},
        {"\360\235\220\200\360\235\220\232", {101, 100, 102}, 3},
        {"x\357\273\277y\342\200\215z", {101, 1060, 2100, 2480, 102}, 5},
        {"\357\274\241\357\274\242 \343\200\200 end", {101, 100, 2203, 102}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_ids(wp, cases[i].text, cases[i].ids, cases[i].n);
    xmci_wordpiece_free(wp);
}

/* A batch is padded to its longest row with [PAD] and a 0 mask; truncation keeps [SEP] last. */
static void test_batch_padding_truncation(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data("bert-vocab/vocab.txt"), &wp, &err), XMC_OK);
    const char *texts[] = {"the", "", "the the the the the the"};
    xmci_wordpiece_batch batch = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, texts, NULL, 3, 6, &batch, &err), XMC_OK);
    CU_ASSERT_EQUAL(batch.n, 3);
    CU_ASSERT_EQUAL(batch.seq, 6);
    CU_ASSERT_EQUAL(batch.len[0], 3);
    CU_ASSERT_EQUAL(batch.len[1], 2);
    CU_ASSERT_EQUAL(batch.len[2], 6);
    CU_ASSERT_EQUAL(batch.full_len[2], 8);
    static const int32_t want[3][6] = {{101, 1996, 102, 0, 0, 0}, {101, 102, 0, 0, 0, 0},
                                       {101, 1996, 1996, 1996, 1996, 102}};
    int same = 1;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 6; j++) {
            same &= batch.ids[r * 6 + j] == want[r][j];
            same &= batch.mask[r * 6 + j] == (j < batch.len[r]);
        }
    CU_ASSERT(same);
    /* reuse of the same batch with a smaller input */
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_encode_batch(wp, texts, NULL, 1, 6, &batch, &err), XMC_OK);
    CU_ASSERT_EQUAL(batch.seq, 3);
    CU_ASSERT_EQUAL(xmci_wordpiece_encode_batch(wp, texts, NULL, 1, 1, &batch, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmci_wordpiece_encode_batch(wp, texts, NULL, 0, 8, &batch, &err), XMC_ERR_ARG);
    xmci_wordpiece_batch_free(&batch);
    xmci_wordpiece_free(wp);
}

static void test_bad_vocab(void)
{
    char *dir = tu_tmpdir();
    char path[512];
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    tu_write_file(path, "[PAD]\n[CLS]\n[SEP]\nhello\n");
    CU_ASSERT_EQUAL(xmci_wordpiece_load(path, &wp, &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "[UNK]"));
    tu_write_file(path, "");
    CU_ASSERT_EQUAL(xmci_wordpiece_load(path, &wp, &err), XMC_ERR_PARSE);
    tu_write_file(path, "[UNK]\n[CLS]\n[SEP]\nbad\xff\n");
    CU_ASSERT_EQUAL(xmci_wordpiece_load(path, &wp, &err), XMC_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":4:"));
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    CU_ASSERT_EQUAL(xmci_wordpiece_load(path, &wp, &err), XMC_ERR_IO);
    CU_ASSERT_PTR_NULL(wp);
    /* CRLF lines, no final newline, a repeated token keeps its first id, ## pieces */
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    tu_write_file(path, "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nun\r\n##aff\r\nun\r\n##able");
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(path, &wp, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_wordpiece_size(wp), 8);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "un"), 4);
    CU_ASSERT_EQUAL(xmci_wordpiece_id(wp, "##able"), 7);
    static const int32_t want[] = {2, 4, 5, 7, 1, 3};
    expect_ids(wp, "UnAffable unable2", want, 6);
    xmci_wordpiece_free(wp);
    tu_rmrf(dir);
    free(dir);
}

/* Random bytes (mostly invalid UTF-8, controls, NULs) tokenise without error: [CLS] first, [SEP] last, ids in range. */
static void test_random_bytes(void)
{
    if (!tu_data_dir()) { CU_FAIL("tests/data missing"); return; }
    xmc_error err = {0};
    xmci_wordpiece *wp = NULL;
    CU_ASSERT_EQUAL_FATAL(xmci_wordpiece_load(tu_data("bert-vocab/vocab.txt"), &wp, &err), XMC_OK);
    xmci_wordpiece_batch batch = {0};
    uint32_t state = 12345;
    char buf[8][600];
    const char *texts[8];
    size_t lens[8];
    int bad = 0;
    for (int round = 0; round < 300; round++) {
        for (int r = 0; r < 8; r++) {
            state = state * 1664525u + 1013904223u;
            lens[r] = (state >> 8) % sizeof buf[r];
            for (size_t i = 0; i < lens[r]; i++) {
                state = state * 1664525u + 1013904223u;
                /* half the rounds ASCII-heavy (real words), half arbitrary bytes */
                unsigned v = state >> 24;
                buf[r][i] = (char)(round % 2 ? v : (v < 200 ? 'a' + v % 26 : v));
            }
            texts[r] = buf[r];
        }
        if (xmci_wordpiece_encode_batch(wp, texts, lens, 8, 64, &batch, &err) != XMC_OK) { bad++; continue; }
        for (int r = 0; r < 8; r++) {
            const int32_t *row = batch.ids + (size_t)r * batch.seq;
            if (row[0] != 101 || row[batch.len[r] - 1] != 102 || batch.len[r] > 64) bad++;
            for (int j = 0; j < batch.len[r]; j++)
                if (row[j] < 0 || row[j] >= 30522) bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    xmci_wordpiece_batch_free(&batch);
    xmci_wordpiece_free(wp);
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("wordpiece", NULL, NULL);
    TU_ADD(s, test_texts_inc);
    TU_ADD(s, test_random_l2_tokens);
    TU_ADD(s, test_tiny_pecos_tokens);
    TU_ADD(s, test_random_l2_lengths);
    TU_ADD(s, test_real_vocab_known_answers);
    TU_ADD(s, test_unicode_regressions);
    TU_ADD(s, test_batch_padding_truncation);
    TU_ADD(s, test_bad_vocab);
    TU_ADD(s, test_random_bytes);
    return tu_run(argc, argv);
}
