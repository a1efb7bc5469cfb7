/* test_tokenize.c: normalisation (NFKC + case fold, checked against Python's unicodedata), word splitting,
 * invalid UTF-8, limits, and char_wb n-grams with scikit-learn's rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "testutil.h"
#include "tokenize.h"

/* Tokenises text (length strlen unless len given) and compares the words, joined by '|', with want. */
static void expect_words_n(const xmci_tok_opts *opts, const char *text, size_t len, const char *want)
{
    xmci_tok_ws ws;
    xmc_error err = {0};
    xmci_tok_opts o;
    if (opts) o = *opts; else xmci_tok_opts_default(&o);
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&ws, &o, &err), XMC_OK);
    uint32_t n = xmci_tok_words(&ws, text, len);
    char got[4096];
    size_t k = 0;
    got[0] = 0;
    for (uint32_t i = 0; i < n && k + ws.word[i].len + 2 < sizeof got; i++) {
        if (i) got[k++] = '|';
        memcpy(got + k, ws.text + ws.word[i].off, ws.word[i].len);
        k += ws.word[i].len;
        /* the layout promise: one space before and after each word */
        CU_ASSERT_EQUAL(ws.text[ws.word[i].off - 1], ' ');
        CU_ASSERT_EQUAL(ws.text[ws.word[i].off + ws.word[i].len], ' ');
    }
    got[k] = 0;
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0) fprintf(stderr, "\ninput [%s]: got [%s] want [%s]\n", text, got, want);
    xmci_tok_ws_free(&ws);
}

static void expect_words(const char *text, const char *want) { expect_words_n(NULL, text, strlen(text), want); }
static void expect_words_o(const xmci_tok_opts *opts, const char *text, const char *want)
{
    expect_words_n(opts, text, strlen(text), want);
}

static void test_ascii_split(void)
{
    expect_words("Hello, World! it's 42nd-street_x", "hello|world|it|s|42nd|street|x");
    expect_words("  \t\n", "");
    expect_words("", "");
    expect_words("a", "a");
    expect_words("ABC", "abc");
    expect_words_n(NULL, "ab\0cd", 5, "ab|cd");
}

/* Expected values from Python 3.11: unicodedata.normalize('NFKC', s).casefold() then NFKC again. */
static void test_nfkc_casefold(void)
{
    expect_words("Stra\xc3\x9f" "e", "strasse");                 /* ß folds to ss */
    expect_words("\xef\xac\x81ne", "fine");                      /* U+FB01 ligature fi */
    expect_words("\xef\xbc\xa6\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c", "full"); /* fullwidth Ｆｕｌｌ */
    expect_words("10\xe3\x8e\xa1", "10m2");                      /* ㎡ -> m2, joins the number */
    expect_words("x\xc2\xb2", "x2");                             /* superscript two */
    expect_words("Cafe\xcc\x81 CAF\xc3\x89", "caf\xc3\xa9|caf\xc3\xa9"); /* e + U+0301 composes to é */
    expect_words("\xce\xa3\xce\x91\xce\xa3", "\xcf\x83\xce\xb1\xcf\x83");   /* ΣΑΣ -> σασ */
    expect_words("\xe3\x84\xb1\xe3\x85\x8f", "\xea\xb0\x80");    /* compatibility jamo ㄱㅏ -> 가 */
    expect_words("\xef\xbd\xb6\xef\xbe\x9e", "\xe3\x82\xac");    /* halfwidth ｶﾞ -> ガ (mark after a letter) */
    expect_words("\xc2\xbd", "1|2");                             /* ½ -> 1⁄2, fraction slash separates */
    expect_words("\xc3\x84" "BC\xc3\x84", "\xc3\xa4" "bc\xc3\xa4"); /* ASCII between non-ASCII */
}

static void test_separators_and_marks(void)
{
    expect_words("don\xe2\x80\x99t stop", "don|t|stop");       /* right single quote separates */
    expect_words("co\xc2\xad" "op", "coop");                     /* soft hyphen is ignorable */
    expect_words("\xe0\xa4\x95\xe0\xa4\xbf\xe0\xa4\xa4\xe0\xa4\xbe\xe0\xa4\xac", /* किताब: marks stay inside */
                 "\xe0\xa4\x95\xe0\xa4\xbf\xe0\xa4\xa4\xe0\xa4\xbe\xe0\xa4\xac");
    expect_words("\xcc\x81" "a", "a");                           /* a mark with no letter before separates */
    expect_words("\xe4\xb8\xad\xe6\x96\x87\xe3\x80\x82\xe5\xad\x97", "\xe4\xb8\xad\xe6\x96\x87|\xe5\xad\x97");
    expect_words("a\xe2\x82\xac" "b", "a|b");                    /* € is a symbol */
}

static void test_invalid_utf8(void)
{
    expect_words("caf\xff" "e", "caf|e");
    expect_words("ab\xe2\x82", "ab");          /* truncated sequence at the end */
    expect_words("\xc0\xaf" "x", "x");         /* overlong */
    expect_words("\xed\xa0\x80" "y", "y");     /* surrogate */
    expect_words("\x80\x80\x80", "");
}

static void test_limits(void)
{
    xmci_tok_opts o;
    xmci_tok_opts_default(&o);
    o.max_tokens = 2;
    expect_words_n(&o, "one two three", 13, "one|two");
    xmci_tok_opts_default(&o);
    o.min_token_len = 2;
    expect_words_n(&o, "a bc d \xc3\xa9\xc3\xa9 \xc3\xa9", 14, "bc|\xc3\xa9\xc3\xa9");
    xmci_tok_opts_default(&o);
    o.max_word_bytes = 4;
    expect_words_n(&o, "abcdefg hi \xc3\xa9\xc3\xa9\xc3\xa9", 17, "abcd|hi|\xc3\xa9\xc3\xa9");
    xmci_tok_opts_default(&o);
    o.max_bytes = 8; /* " ab cd " is 7 bytes; "ef" would need 3 more */
    expect_words_n(&o, "ab cd ef", 8, "ab|cd");
    o.max_tokens = 0;
    xmci_tok_ws ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_tok_ws_init(&ws, &o, &err), XMC_ERR_ARG);
}

/* split=space and casefold=0, PECOS's word tokenizer: punctuation stays in the word, white space of any kind
 * separates, case is kept while NFKC still applies. */
static void test_split_space_keep_case(void)
{
    xmci_tok_opts o;
    xmci_tok_opts_default(&o);
    o.split = XMCI_TOK_SPLIT_SPACE;
    expect_words_o(&o, "Hello, World! it's 42nd-street_x", "hello,|world!|it's|42nd-street_x");
    expect_words_o(&o, "a\tb\n(c)  \x7f d", "a|b|(c)|d");
    expect_words_o(&o, "a\xc2\xa0" "b\xe2\x80\xa8" "c", "a|b|c");  /* no-break space, line separator */
    expect_words_o(&o, "don\xe2\x80\x99t 3.5mm", "don\xe2\x80\x99t|3.5mm"); /* right quote stays */
    expect_words_o(&o, "caf\xff" "e", "caf|e");                   /* an invalid byte still separates */
    o.casefold = 0;
    expect_words_o(&o, "Hello, World!", "Hello,|World!");
    expect_words_o(&o, "CAF\xc3\x89 Cafe\xcc\x81", "CAF\xc3\x89|Caf\xc3\xa9"); /* composed, not folded */
    expect_words_o(&o, "Stra\xc3\x9f" "e \xef\xac\x81ne", "Stra\xc3\x9f" "e|fine"); /* ß kept, ligature NFKC */
    o.split = XMCI_TOK_SPLIT_ALNUM;
    expect_words_o(&o, "Hello, World! it's", "Hello|World|it|s");
    xmci_tok_ws ws;
    xmc_error err = {0};
    o.casefold = 2;
    CU_ASSERT_EQUAL(xmci_tok_ws_init(&ws, &o, &err), XMC_ERR_ARG);
    o.casefold = 1;
    o.split = 2;
    CU_ASSERT_EQUAL(xmci_tok_ws_init(&ws, &o, &err), XMC_ERR_ARG);
}

/* The decomposition buffer must hold utf8proc's longest per-codepoint result. */
static void test_decomposition_bound(void)
{
    int32_t buf[64];
    int bc = 0;
    utf8proc_ssize_t longest = 0;
    for (int32_t c = 0; c < 0x110000; c++) {
        if (c >= 0xD800 && c < 0xE000) continue;
        utf8proc_ssize_t m = utf8proc_decompose_char(
            c, buf, 64, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE, &bc);
        if (m > longest) longest = m;
    }
    CU_ASSERT(longest <= 32);
    CU_ASSERT(longest >= 18);
}

static void expect_char_wb(const char *text, uint32_t nmin, uint32_t nmax, const char *want)
{
    xmci_tok_ws ws;
    xmci_tok_opts o;
    xmc_error err = {0};
    xmci_tok_opts_default(&o);
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&ws, &o, &err), XMC_OK);
    uint32_t n = xmci_tok_words(&ws, text, strlen(text));
    char got[1024];
    size_t k = 0;
    for (uint32_t w = 0; w < n; w++) {
        xmci_tok_span sp[64];
        uint32_t c = xmci_tok_char_wb(&ws, w, nmin, nmax, sp, 64);
        CU_ASSERT_EQUAL(c, xmci_tok_char_wb_count(&ws, w, nmin, nmax));
        for (uint32_t i = 0; i < c; i++) {
            if (k) got[k++] = '|';
            memcpy(got + k, ws.text + sp[i].off, sp[i].len);
            k += sp[i].len;
        }
    }
    got[k] = 0;
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0) fprintf(stderr, "\nchar_wb [%s]: got [%s] want [%s]\n", text, got, want);
    xmci_tok_ws_free(&ws);
}

/* Expected strings from sklearn's CountVectorizer(analyzer="char_wb")._char_wb_ngrams. */
static void test_char_wb(void)
{
    expect_char_wb("ab", 3, 5, " ab|ab | ab ");
    expect_char_wb("a", 3, 5, " a ");
    expect_char_wb("abc", 2, 3, " a|ab|bc|c | ab|abc|bc ");
    expect_char_wb("ab cd", 4, 4, " ab | cd ");
    expect_char_wb("\xc3\xa9" "a", 2, 2, " \xc3\xa9|\xc3\xa9" "a|a ");
    expect_char_wb("abcd", 1, 1, " |a|b|c|d| ");
}

static void test_word_ngram_span(void)
{
    xmci_tok_ws ws;
    xmci_tok_opts o;
    xmc_error err = {0};
    xmci_tok_opts_default(&o);
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&ws, &o, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_tok_words(&ws, "X, y;; Zed", 10), 3);
    xmci_tok_span s = xmci_tok_word_ngram(&ws, 0, 3);
    CU_ASSERT_EQUAL(s.len, 7);
    CU_ASSERT_EQUAL(memcmp(ws.text + s.off, "x y zed", 7), 0);
    s = xmci_tok_word_ngram(&ws, 1, 2);
    CU_ASSERT_EQUAL(memcmp(ws.text + s.off, "y zed", 5), 0);
    CU_ASSERT_EQUAL(s.len, 5);
    xmci_tok_ws_free(&ws);
}

/* Random bytes (ASCII, valid multi-byte, combining marks, invalid bytes) under small limits: the layout and
 * the limits hold, every word is valid UTF-8 with the codepoint count given, and char_wb agrees with its count. */
static void test_random_bytes(void)
{
    static const char *const pieces[] = {"a", "Z", "9", " ", ",", "\xc3\xa9", "\xcc\x81", "\xe4\xb8\xad", "\xff",
                                         "\xe2\x82", "\xf0\x9f\x98\x80", "\xef\xac\x81", "\xe1\x84\x80", "\xe1\x85\xa1",
                                         "'", "\xc2\xad", "\xe3\x8e\xa1", "\x00", "\xed\xa0\x80", "Q"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int mode = 0; mode < 3; mode++) { /* default; split=space; split=space with casefold=0 */
    xmci_tok_opts o;
    xmci_tok_opts_default(&o);
    o.max_tokens = 50;
    o.max_bytes = 300;
    o.max_word_bytes = 20;
    o.split = mode ? XMCI_TOK_SPLIT_SPACE : XMCI_TOK_SPLIT_ALNUM;
    o.casefold = mode < 2;
    xmci_tok_ws ws;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&ws, &o, &err), XMC_OK);
    char doc[4096];
    unsigned bad = 0;
    for (int d = 0; d < 300; d++) {
        size_t len = 0;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t target = (size_t)(x % 3000);
        while (len + 4 < target) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            const char *p = pieces[x % (sizeof pieces / sizeof *pieces)];
            size_t k = p[0] ? strlen(p) : 1;
            memcpy(doc + len, p, k);
            len += k;
        }
        uint32_t n = xmci_tok_words(&ws, doc, len);
        if (n > o.max_tokens || ws.text_len > o.max_bytes) bad++;
        for (uint32_t i = 0; i < n; i++) {
            const xmci_tok_span *w = &ws.word[i];
            if (w->len == 0 || w->len > o.max_word_bytes || ws.text[w->off - 1] != ' ' ||
                ws.text[w->off + w->len] != ' ' || w->off + w->len >= ws.text_len)
                bad++;
            uint32_t cps = 0;
            for (uint32_t p = 0; p < w->len;) {
                int32_t cp;
                utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)ws.text + w->off + p, w->len - p, &cp);
                if (k <= 0 || cp == ' ') { bad++; break; }
                p += (uint32_t)k;
                cps++;
            }
            if (cps != ws.ncp[i]) bad++;
            xmci_tok_span sp[256];
            uint32_t c = xmci_tok_char_wb_count(&ws, i, 1, 3);
            if (c > 256 || xmci_tok_char_wb(&ws, i, 1, 3, sp, 256) != c) bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    xmci_tok_ws_free(&ws);
    }
}

/* A letter followed by thousands of combining marks: more than one normalisation segment, one (cut) word. */
static void test_long_mark_run(void)
{
    size_t len = 1 + 2 * 3000;
    char *doc = malloc(len);
    doc[0] = 'a';
    for (size_t i = 1; i < len; i += 2) { doc[i] = '\xcc'; doc[i + 1] = '\x81'; }
    xmci_tok_ws ws;
    xmci_tok_opts o;
    xmc_error err = {0};
    xmci_tok_opts_default(&o);
    CU_ASSERT_EQUAL_FATAL(xmci_tok_ws_init(&ws, &o, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_tok_words(&ws, doc, len), 1);
    CU_ASSERT(ws.word[0].len <= o.max_word_bytes);
    CU_ASSERT_EQUAL(memcmp(ws.text + ws.word[0].off, "\xc3\xa1", 2), 0); /* a + U+0301 composed */
    xmci_tok_ws_free(&ws);
    free(doc);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("tokenize", NULL, NULL);
    TU_ADD(s, test_ascii_split);
    TU_ADD(s, test_nfkc_casefold);
    TU_ADD(s, test_separators_and_marks);
    TU_ADD(s, test_invalid_utf8);
    TU_ADD(s, test_limits);
    TU_ADD(s, test_split_space_keep_case);
    TU_ADD(s, test_decomposition_bound);
    TU_ADD(s, test_char_wb);
    TU_ADD(s, test_word_ngram_span);
    TU_ADD(s, test_random_bytes);
    TU_ADD(s, test_long_mark_run);
    return tu_run(argc, argv);
}
