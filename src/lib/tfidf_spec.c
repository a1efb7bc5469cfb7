/* tfidf_spec.c: the TF-IDF configuration string: defaults, parsing, checks, canonical form (see tfidf_spec.h).
 *
 * Parsing takes three passes over the comma-separated items, so that an option item applies to every base
 * wherever it stands: first the bases and their n-gram ranges, then the option items (every base), then each
 * base's own colon-separated options, which therefore win. */
#include "tfidf_spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void base_default(xmci_tfidf_base *b)
{
    b->analyzer = XMCI_TFIDF_WORD;
    b->ngram_min = 1;
    b->ngram_max = 2;
    b->min_df = 2;
    b->max_df = 1.0;
    b->max_features = 0;
    b->sublinear_tf = 1;
    b->idf = XMCI_TFIDF_IDF_PECOS;
    b->smooth_idf = 1;
    b->add_one_idf = 0;
    b->norm = XMCI_TFIDF_NORM_L2;
    b->weight = 1.0;
}

void xmci_tfidf_config_default(xmci_tfidf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_bases = 1;
    base_default(&cfg->base[0]);
    cfg->norm = XMCI_TFIDF_NORM_L2;
    xmci_tok_opts_default(&cfg->tok);
}

static int parse_u32(const char *s, uint32_t *v)
{
    if (!isdigit((unsigned char)*s)) return 0;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x > UINT32_MAX) return 0;
    *v = (uint32_t)x;
    return 1;
}

/* A real number in (lo, hi], written without blanks (as the integers): NaN and inf fail the range */
static int parse_real(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    if (!*s || isspace((unsigned char)*s)) return 0;
    double d = strtod(s, &end);
    if (*end || errno || !(d > lo && d <= hi)) return 0;
    *v = d;
    return 1;
}

static int parse_bool(const char *s, int *v)
{
    if (!strcmp(s, "0") || !strcmp(s, "false")) { *v = 0; return 1; }
    if (!strcmp(s, "1") || !strcmp(s, "true")) { *v = 1; return 1; }
    return 0;
}

static int parse_norm(const char *s, xmci_tfidf_norm *v)
{
    if (!strcmp(s, "l2")) { *v = XMCI_TFIDF_NORM_L2; return 1; }
    if (!strcmp(s, "none")) { *v = XMCI_TFIDF_NORM_NONE; return 1; }
    return 0;
}

/* Applies key=value to base b (or, with b NULL, to every base and the global fields). */
static xmc_err apply_option(xmci_tfidf_config *cfg, xmci_tfidf_base *b, char *kv, xmc_error *err)
{
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is not key=value", kv);
    *eq = 0;
    const char *key = kv, *val = eq + 1;
    int ok = 1;
    xmci_tfidf_base *first = b ? b : &cfg->base[0];
    xmci_tfidf_base *last = b ? b : &cfg->base[cfg->n_bases - 1];
    if (!strcmp(key, "max_tokens") || !strcmp(key, "max_bytes") || !strcmp(key, "max_word_bytes") ||
        !strcmp(key, "min_token_len") || !strcmp(key, "split") || !strcmp(key, "casefold")) {
        if (b) { *eq = '='; return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is not a per-base option", kv); }
        uint32_t v;
        int f;
        if (!strcmp(key, "split")) {
            if (!strcmp(val, "alnum")) cfg->tok.split = XMCI_TOK_SPLIT_ALNUM;
            else if (!strcmp(val, "space")) cfg->tok.split = XMCI_TOK_SPLIT_SPACE;
            else ok = 0;
        } else if (!strcmp(key, "casefold")) {
            if ((ok = parse_bool(val, &f))) cfg->tok.casefold = (uint32_t)f;
        } else if ((ok = parse_u32(val, &v)) && !strcmp(key, "max_tokens")) cfg->tok.max_tokens = v;
        else if (ok && !strcmp(key, "max_bytes")) cfg->tok.max_bytes = v;
        else if (ok && !strcmp(key, "max_word_bytes")) cfg->tok.max_word_bytes = v;
        else if (ok) cfg->tok.min_token_len = v;
    } else {
        for (xmci_tfidf_base *p = first; ok && p <= last; p++) {
            uint32_t u;
            if (!strcmp(key, "min_df")) {
                ok = parse_u32(val, &u);
                if (ok) p->min_df = u;
            } else if (!strcmp(key, "max_df")) {
                ok = parse_real(val, 0, 1, &p->max_df);
            } else if (!strcmp(key, "weight")) {
                ok = parse_real(val, XMCI_TFIDF_MIN_WEIGHT, 16, &p->weight);
            } else if (!strcmp(key, "max_features")) {
                ok = parse_u32(val, &u);
                if (ok) p->max_features = u;
            } else if (!strcmp(key, "sublinear")) {
                ok = parse_bool(val, &p->sublinear_tf);
            } else if (!strcmp(key, "idf")) {
                if (!strcmp(val, "pecos")) p->idf = XMCI_TFIDF_IDF_PECOS;
                else if (!strcmp(val, "sklearn")) p->idf = XMCI_TFIDF_IDF_SKLEARN;
                else if (!strcmp(val, "none")) p->idf = XMCI_TFIDF_IDF_NONE;
                else ok = 0;
            } else if (!strcmp(key, "smooth_idf")) {
                ok = parse_bool(val, &p->smooth_idf);
            } else if (!strcmp(key, "add_one_idf")) {
                ok = parse_bool(val, &p->add_one_idf);
            } else if (!strcmp(key, "norm")) {
                ok = parse_norm(val, &p->norm);
                if (ok && !b) ok = parse_norm(val, &cfg->norm);
            } else {
                *eq = '=';
                return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: unknown option '%s'", kv);
            }
        }
    }
    *eq = '=';
    if (!ok) return xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad value in '%s'", kv);
    return XMC_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

xmc_err xmci_tfidf_config_check(const xmci_tfidf_config *cfg, xmc_error *err)
{
    if (cfg->n_bases < 1 || cfg->n_bases > XMCI_TFIDF_MAX_BASES)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: %u bases (1..%d)", cfg->n_bases, XMCI_TFIDF_MAX_BASES);
    for (uint32_t i = 0; i < cfg->n_bases; i++) {
        const xmci_tfidf_base *b = &cfg->base[i];
        if (b->analyzer != XMCI_TFIDF_WORD && b->analyzer != XMCI_TFIDF_CHAR_WB)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: unknown analyzer", i);
        if (b->ngram_min < 1 || b->ngram_min > b->ngram_max || b->ngram_max > XMCI_TFIDF_MAX_NGRAM)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: n-gram range %u-%u (1..%d, min <= max)", i,
                                 b->ngram_min, b->ngram_max, XMCI_TFIDF_MAX_NGRAM);
        if (!(b->max_df > 0 && b->max_df <= 1))
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: max_df %g not in (0, 1]", i, b->max_df);
        if (!(b->weight > XMCI_TFIDF_MIN_WEIGHT && b->weight <= 16))
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: weight %g not in (%g, 16]", i, b->weight,
                                 XMCI_TFIDF_MIN_WEIGHT);
        if ((unsigned)b->idf > XMCI_TFIDF_IDF_NONE || (unsigned)b->norm > XMCI_TFIDF_NORM_L2)
            return xmc_error_set(err, XMC_ERR_ARG, "tfidf base %u: unknown idf or norm", i);
    }
    if ((unsigned)cfg->norm > XMCI_TFIDF_NORM_L2) return xmc_error_set(err, XMC_ERR_ARG, "tfidf: unknown norm");
    if (cfg->tok.max_tokens < 1 || cfg->tok.max_bytes < 16 || cfg->tok.max_word_bytes < 1 ||
        cfg->tok.min_token_len < 1 || cfg->tok.split > XMCI_TOK_SPLIT_SPACE || cfg->tok.casefold > 1)
        return xmc_error_set(err, XMC_ERR_ARG, "tfidf: max_tokens, max_word_bytes, min_token_len must be >= 1, "
                             "split alnum or space, casefold 0 or 1 and "
                             "max_bytes >= 16");
    return XMC_OK;
}

xmc_err xmci_tfidf_config_parse(xmci_tfidf_config *cfg, const char *spec, xmc_error *err)
{
    xmci_tfidf_config_default(cfg);
    if (!spec || !*spec) return XMC_OK;
    char *copy = strdup(spec);
    if (!copy) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc = XMC_OK;
    /* pass 1: the bases and their ranges; pass 2: global options; pass 3: each base's own options */
    char *items[256];
    int n_items = 0;
    for (char *save = NULL, *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (n_items == 256) { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: too many items"); goto out; }
        items[n_items++] = trim(it);
    }
    uint32_t nb = 0;
    int base_of[256];
    for (int i = 0; i < n_items; i++) {
        char *it = items[i];
        base_of[i] = -1;
        xmci_tfidf_analyzer an;
        size_t pre;
        if (!strncmp(it, "word:", 5)) { an = XMCI_TFIDF_WORD; pre = 5; }
        else if (!strncmp(it, "char_wb:", 8)) { an = XMCI_TFIDF_CHAR_WB; pre = 8; }
        else if (strchr(it, '=')) continue;
        else { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: '%s' is neither a base (word:N-M, char_wb:N-M) "
                                  "nor key=value", it); goto out; }
        if (nb == XMCI_TFIDF_MAX_BASES) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: more than %d bases", XMCI_TFIDF_MAX_BASES);
            goto out;
        }
        xmci_tfidf_base *b = &cfg->base[nb];
        base_default(b);
        b->analyzer = an;
        char range[32];
        size_t rl = strcspn(it + pre, ":");
        if (rl == 0 || rl >= sizeof range) { rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad range in '%s'", it); goto out; }
        memcpy(range, it + pre, rl);
        range[rl] = 0;
        char *dash = strchr(range, '-');
        if (dash) *dash = 0;
        if (!parse_u32(range, &b->ngram_min) || !parse_u32(dash ? dash + 1 : range, &b->ngram_max) ||
            b->ngram_min < 1 || b->ngram_min > b->ngram_max || b->ngram_max > XMCI_TFIDF_MAX_NGRAM) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "tfidf spec: bad n-gram range in '%s' (1..%d, min <= max)", it,
                               XMCI_TFIDF_MAX_NGRAM);
            goto out;
        }
        items[i] = it + pre + rl; /* "" or ":k=v:k=v" */
        base_of[i] = (int)nb++;
    }
    if (nb) cfg->n_bases = nb;
    for (int i = 0; i < n_items; i++)
        if (base_of[i] < 0 && (rc = apply_option(cfg, NULL, items[i], err))) goto out;
    for (int i = 0; i < n_items; i++) {
        if (base_of[i] < 0) continue;
        char *save = NULL;
        for (char *kv = strtok_r(items[i], ":", &save); kv; kv = strtok_r(NULL, ":", &save))
            if ((rc = apply_option(cfg, &cfg->base[base_of[i]], trim(kv), err))) goto out;
    }
    rc = xmci_tfidf_config_check(cfg, err);
out:
    free(copy);
    return rc;
}

/* The shortest %g form of v that reads back as v (0.3, not 0.29999999999999999). */
static const char *real_text(double v, char *out, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    return out;
}

size_t xmci_tfidf_config_format(const xmci_tfidf_config *cfg, char *buf, size_t size)
{
    static const char *const idf_name[] = {"pecos", "sklearn", "none"};
    static const char *const norm_name[] = {"none", "l2"};
    size_t k = 0;
    char tmp[512], real[32];
    for (uint32_t i = 0; i < cfg->n_bases && i < XMCI_TFIDF_MAX_BASES; i++) {
        const xmci_tfidf_base *b = &cfg->base[i];
        int n = snprintf(tmp, sizeof tmp,
                         "%s%s:%u-%u:min_df=%u:max_df=%s:max_features=%u:sublinear=%d:idf=%s:smooth_idf=%d:"
                         "add_one_idf=%d:norm=%s", i ? "," : "", b->analyzer == XMCI_TFIDF_CHAR_WB ? "char_wb" : "word",
                         b->ngram_min, b->ngram_max, b->min_df, real_text(b->max_df, real, sizeof real),
                         b->max_features, b->sublinear_tf ? 1 : 0,
                         idf_name[(unsigned)b->idf <= 2 ? b->idf : 0], b->smooth_idf ? 1 : 0, b->add_one_idf ? 1 : 0,
                         norm_name[b->norm == XMCI_TFIDF_NORM_L2]);
        if (k < size) snprintf(buf + k, size - k, "%s", tmp);
        k += (size_t)n;
        if (b->weight != 1.0) { /* written only when set, so specs and models without it read as before */
            n = snprintf(tmp, sizeof tmp, ":weight=%s", real_text(b->weight, real, sizeof real));
            if (k < size) snprintf(buf + k, size - k, "%s", tmp);
            k += (size_t)n;
        }
    }
    int n = snprintf(tmp, sizeof tmp, ",norm=%s,max_tokens=%u,max_bytes=%u,max_word_bytes=%u,min_token_len=%u",
                     norm_name[cfg->norm == XMCI_TFIDF_NORM_L2], cfg->tok.max_tokens, cfg->tok.max_bytes,
                     cfg->tok.max_word_bytes, cfg->tok.min_token_len);
    /* the global norm item must not undo the bases' own: they are applied after the items */
    if (k < size) snprintf(buf + k, size - k, "%s", tmp);
    k += (size_t)n;
    /* written only when not the default, so a default spec (and the models saved with it) reads as before */
    if (cfg->tok.split != XMCI_TOK_SPLIT_ALNUM || cfg->tok.casefold != 1) {
        n = snprintf(tmp, sizeof tmp, ",split=%s,casefold=%u", cfg->tok.split == XMCI_TOK_SPLIT_SPACE ? "space" : "alnum",
                     cfg->tok.casefold ? 1 : 0);
        if (k < size) snprintf(buf + k, size - k, "%s", tmp);
        k += (size_t)n;
    }
    return k;
}
