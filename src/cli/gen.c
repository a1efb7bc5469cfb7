/* gen.c: `xmc gen`, a generator of synthetic product catalogs as `labels<TAB>title` TSV.
 *
 * Two sources of categories:
 *  - --taxonomy FILE (the Shopify product taxonomy TSV of ../shared/data/taxonomy): the leaf categories, named
 *    by their path ("Animals & Pet Supplies > Live Animals"), with the words of each category and of its
 *    ancestors as the category's vocabulary;
 *  - otherwise --labels N synthetic categories "cat-000123", each with signature words drawn from a
 *    pronounceable synthetic lexicon, and grouped 100 to a topic whose words they share (so the labels have
 *    the hierarchical structure a label tree can find).
 * Each record takes 1 to 3 categories drawn from a Zipf law (exponent --zipf, default 1.1) over a random
 * permutation of the categories, and a title of a few words of each category plus shared noise words. The
 * same --seed gives the same catalog, byte for byte.
 *
 * --plant N gives the N most frequent categories a second meaning, for label disentanglement to find: half
 * of such a category's records (drawn per record) take their words from a second, unrelated word group, the
 * words of another category drawn at random (from another topic), so that the label's records form two
 * groups far apart in the label tree. Without --plant the output
 * is what it was, byte for byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "cli.h"
#include "options.h"
#include "xmc/rng.h"

typedef struct {
    char *name;
    char **words;     /* the leaf's own words first, then its ancestors' */
    uint32_t nwords;
    uint32_t nown;    /* how many of words are the leaf's own */
    char **alt;       /* planted second meaning (--plant): its own words first, then another category's */
    uint32_t nalt, naltown;
} category;

static const char *const noise_words[] = {
    "new", "premium", "classic", "pro", "set", "pack", "kit", "deluxe", "mini", "large", "small", "black", "white",
    "blue", "red", "green", "grey", "silver", "gold", "steel", "wood", "cotton", "leather", "plastic", "eco",
    "portable", "wireless", "digital", "organic", "vintage", "modern", "compact", "heavy", "duty", "light", "soft",
    "2024", "2025", "edition", "series", "model", "xl", "plus", "max", "ultra", "original", "genuine", "value",
    "bundle", "piece", "pcs", "home", "outdoor", "indoor", "travel", "kids", "men", "women", "unisex", "sport",
};
#define N_NOISE (sizeof noise_words / sizeof noise_words[0])

static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "ber", "dan", "el", "fi", "gor",
                                   "hu", "ix", "jo", "ke", "lum", "mor", "nix", "ost", "pra", "qui", "ros", "sel",
                                   "tor", "ul", "ven", "wex", "yar", "zen", "bri", "cal", "dro", "fen", "gla"};
#define N_SYL (sizeof syl / sizeof syl[0])

static char *synth_word(uint32_t i)
{
    char buf[32];
    size_t n = 0;
    /* base-36 digits of i+N_SYL^2 as syllables: distinct indices give distinct words */
    uint64_t v = (uint64_t)i + N_SYL * N_SYL;
    while (v && n < 24) {
        const char *s = syl[v % N_SYL];
        size_t l = strlen(s);
        memcpy(buf + n, s, l);
        n += l;
        v /= N_SYL;
    }
    buf[n] = 0;
    return strdup(buf);
}

static int split_words(const char *s, char ***out, uint32_t *n)
{
    /* lower-case ASCII words of letters/digits; non-ASCII bytes are kept inside words */
    char **w = NULL;
    uint32_t cnt = 0, cap = 0;
    const char *p = s;
    while (*p) {
        while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || (unsigned char)*p >= 0x80)) p++;
        const char *b = p;
        while (*p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || (unsigned char)*p >= 0x80)) p++;
        if (p > b) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                char **nw = realloc(w, cap * sizeof *nw);
                if (!nw) return -1;
                w = nw;
            }
            char *word = strndup(b, (size_t)(p - b));
            if (!word) return -1;
            for (char *c = word; *c; c++) if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
            w[cnt++] = word;
        }
    }
    *out = w;
    *n = cnt;
    return 0;
}

static int load_taxonomy(const char *path, category **cats, uint32_t *ncat)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return -1; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t n = 0, c = 0, lineno = 0;
    category *v = NULL;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (lineno == 1) continue; /* header */
        if (line[len - 1] == '\n') line[--len] = 0;
        char *fields[7] = {0};
        char *s = line;
        for (int i = 0; i < 7 && s; i++) {
            fields[i] = s;
            s = strchr(s, '\t');
            if (s) *s++ = 0;
        }
        if (!fields[5]) { fprintf(stderr, "xmc gen: error: %s:%u: expected 7 tab-separated fields\n", path, lineno); goto fail; }
        if (strcmp(fields[3], "1") != 0) continue; /* leaves only */
        if (!fields[5][0] || strspn(fields[5], " |") == strlen(fields[5])) {
            /* it would be written as records with no label */
            fprintf(stderr, "xmc gen: error: %s:%u: a leaf category with an empty label\n", path, lineno);
            goto fail;
        }
        if (n == c) {
            c = c ? c * 2 : 1024;
            category *nv = realloc(v, c * sizeof *nv);
            if (!nv) goto fail;
            v = nv;
        }
        /* name: the path with " > " between levels; the label column uses '|' */
        size_t L = strlen(fields[5]);
        char *name = malloc(3 * L + 1), *q = name;
        if (!name) goto fail;
        for (const char *p = fields[5]; *p; p++) {
            if (*p == '|') { memcpy(q, " > ", 3); q += 3; }
            else if (*p == ',' || *p == '\t') *q++ = ' ';
            else *q++ = *p;
        }
        *q = 0;
        v[n] = (category){.name = name}; /* no planted meaning until --plant gives one */
        char **own, **all;
        uint32_t nown, nall;
        if (split_words(fields[4], &own, &nown) || split_words(fields[5], &all, &nall)) goto fail;
        v[n].words = realloc(own, (nown + nall + 1) * sizeof *own);
        if (!v[n].words) goto fail;
        memcpy(v[n].words + nown, all, nall * sizeof *all);
        free(all);
        v[n].nwords = nown + nall;
        v[n].nown = nown;
        n++;
    }
    if (!feof(f)) { /* getline's -1 without the end: a read error, or a line it could not grow to (ENOMEM) */
        fprintf(stderr, "xmc gen: error: %s:%u: %s\n", path, lineno + 1, strerror(errno ? errno : EIO));
        goto fail;
    }
    free(line);
    fclose(f);
    if (n == 0) { fprintf(stderr, "xmc gen: error: %s: no leaf categories\n", path); free(v); return -1; }
    *cats = v;
    *ncat = n;
    return 0;
fail:
    free(line);
    fclose(f);
    return -1;
}

static int synth_categories(uint32_t n, xmc_rng *rng, category **cats)
{
    category *v = calloc(n, sizeof *v);
    if (!v) return -1;
    uint32_t lex = n * 3 + 20000;
    for (uint32_t l = 0; l < n; l++) {
        char buf[32];
        snprintf(buf, sizeof buf, "cat-%06u", l);
        v[l].name = strdup(buf);
        v[l].nwords = 6;
        v[l].nown = 4;
        v[l].words = malloc(6 * sizeof *v[l].words);
        if (!v[l].name || !v[l].words) return -1;
        uint32_t topic = l / 100;
        /* 2 topic words shared by the 100 categories of a topic, 4 of its own */
        for (int k = 0; k < 4; k++) v[l].words[k] = synth_word((uint32_t)xmc_rng_uniform(rng, 0, lex - 1));
        v[l].words[4] = synth_word(lex + topic * 2);
        v[l].words[5] = synth_word(lex + topic * 2 + 1);
    }
    *cats = v;
    return 0;
}

/* Gives category l a second meaning: the words of category other (as a homonym: "apple" the fruit and
 * the computer maker), so that those records look like other's records but carry label l. */
static int plant_meaning(category *cats, uint32_t l, uint32_t other)
{
    category *c = &cats[l], *o = &cats[other];
    c->alt = calloc(o->nwords ? o->nwords : 1, sizeof *c->alt);
    if (!c->alt) return -1;
    for (uint32_t j = 0; j < o->nwords; j++)
        if (!(c->alt[j] = strdup(o->words[j]))) return -1;
    c->naltown = o->nown;
    c->nalt = o->nwords;
    return 0;
}

enum { O_TAXONOMY = 't', O_LABELS = 'l', O_DOCS = 'd', O_SEED = 's', O_ZIPF = 'z', O_OUT = 'o', O_PLANT = 256 };

static const cli_opt gen_opts[] = {
    {CLI_STRING, O_TAXONOMY, "taxonomy", 't', "FILE", 0, 0,
     "categories from a taxonomy TSV (id, parent_id, depth, is_leaf, name, label, ...)"},
    {CLI_INT, O_LABELS, "labels", 'l', "N", 1, 1e7, "N synthetic categories (default 10000) when no taxonomy is given"},
    {CLI_INT, O_DOCS, "docs", 'd', "M", 1, 1e12, "records to write (default 100000)"},
    {CLI_INT, O_SEED, "seed", 's', "S", 0, 4294967295.0, "random seed (default 1)"},
    {CLI_NUMBER, O_ZIPF, "zipf", 'z', "A", 1e-9, 1e3, "Zipf exponent of category frequencies (default 1.1)"},
    {CLI_STRING, O_OUT, "out", 'o', "FILE", 0, 0, "output file (written to FILE.tmp, then renamed)"},
    {CLI_INT, O_PLANT, "plant", 0, "N", 0, 1e7,
     "give the N most frequent categories a second, unrelated meaning: half their records\n"
     "take the words of another category, from another topic (default 0)"},
    {CLI_END, 0, NULL, 0, NULL, 0, 0, NULL},
};

static const cli_command gen_cmd = {
    "gen", "[--taxonomy FILE | --labels N] --docs M [--seed S] [--zipf A] [--plant N] [--out FILE]\n"
    "  Writes a synthetic product catalog as labels<TAB>title lines (to stdout by default).",
    NULL, gen_opts};

typedef struct {
    const char *taxonomy, *out;
    unsigned long nlabels, ndocs, seed, plant;
    double zipf;
} settings;

static int apply(void *ctx, const cli_opt *o, const char *v, double num)
{
    settings *s = ctx;
    switch (o->id) {
    case O_TAXONOMY: s->taxonomy = v; break;
    case O_LABELS: s->nlabels = (unsigned long)num; break;
    case O_DOCS: s->ndocs = (unsigned long)num; break;
    case O_SEED: s->seed = (unsigned long)num; break;
    case O_ZIPF: s->zipf = num; break;
    case O_OUT: s->out = v; break;
    case O_PLANT: s->plant = (unsigned long)num; break;
    }
    return 0;
}

int cli_gen(int argc, char **argv)
{
    settings set = {.nlabels = 10000, .ndocs = 100000, .seed = 1, .zipf = 1.1};
    int first_arg, prc = cli_parse(&gen_cmd, argc, argv, apply, &set, &first_arg);
    if (prc) return prc == 1 ? 0 : prc;
    if (first_arg < argc) { fprintf(stderr, "xmc gen: error: unexpected argument '%s'\n", argv[first_arg]); return 2; }
    const char *taxonomy = set.taxonomy, *out = set.out;
    unsigned long nlabels = set.nlabels, ndocs = set.ndocs, seed = set.seed;
    double zipf = set.zipf;
    xmc_rng rng;
    xmc_rng_seed(&rng, (uint32_t)seed);
    category *cats = NULL;
    uint32_t ncat = 0;
    if (taxonomy) {
        if (load_taxonomy(taxonomy, &cats, &ncat)) return 1;
    } else {
        ncat = (uint32_t)nlabels;
        if (synth_categories(ncat, &rng, &cats)) { fprintf(stderr, "xmc gen: error: out of memory\n"); return 1; }
    }
    /* Zipf over a random permutation of the categories: cumulative weights, drawn by binary search */
    uint32_t *perm = malloc(ncat * sizeof *perm);
    double *cum = malloc(ncat * sizeof *cum);
    if (!perm || !cum) { fprintf(stderr, "xmc gen: error: out of memory\n"); return 1; }
    for (uint32_t i = 0; i < ncat; i++) perm[i] = i;
    xmc_rng_shuffle_u32(&rng, perm, ncat);
    double s = 0;
    for (uint32_t i = 0; i < ncat; i++) { s += pow(i + 1.0, -zipf); cum[i] = s; }
    if (set.plant > ncat) { fprintf(stderr, "xmc gen: error: --plant %lu: only %u categories\n", set.plant, ncat); return 2; }
    if (set.plant && ncat < 2) { fprintf(stderr, "xmc gen: error: --plant needs two categories or more\n"); return 2; }
    for (uint32_t i = 0; i < set.plant; i++) {
        /* the head of the Zipf order; the other meaning from another topic where there are several */
        uint32_t l = perm[i], other;
        do other = (uint32_t)xmc_rng_uniform(&rng, 0, ncat - 1);
        while (other == l || (!taxonomy && ncat > 100 && other / 100 == l / 100));
        if (plant_meaning(cats, l, other)) { fprintf(stderr, "xmc gen: error: out of memory\n"); return 1; }
    }
    char tmp[4096];
    FILE *f = stdout;
    if (out) {
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        f = fopen(tmp, "w");
        if (!f) { perror(tmp); return 1; }
    }
    for (unsigned long d = 0; d < ndocs; d++) {
        uint32_t nl = 1 + (xmc_rng_next(&rng) % 100 < 20) + (xmc_rng_next(&rng) % 100 < 5), labs[3];
        for (uint32_t k = 0; k < nl; k++) {
            double u = (xmc_rng_next(&rng) + 0.5) / 4294967296.0 * s;
            uint32_t lo = 0, hi = ncat - 1;
            while (lo < hi) { uint32_t mid = (lo + hi) / 2; if (cum[mid] < u) lo = mid + 1; else hi = mid; }
            labs[k] = perm[lo];
            for (uint32_t j = 0; j < k; j++) if (labs[j] == labs[k]) { k--; nl--; break; }
        }
        for (uint32_t k = 0; k < nl; k++) fprintf(f, "%s%s", k ? "," : "", cats[labs[k]].name);
        fputc('\t', f);
        int first = 1;
        for (uint32_t k = 0; k < nl; k++) {
            category *cat = &cats[labs[k]];
            char **words = cat->words;
            uint32_t nwords = cat->nwords, nown = cat->nown;
            if (cat->alt && xmc_rng_next(&rng) % 2) { words = cat->alt; nwords = cat->nalt; nown = cat->naltown; }
            uint32_t nw = 2 + xmc_rng_next(&rng) % 3;
            for (uint32_t j = 0; j < nw && nwords; j++) {
                /* 70 % of the words from the category's own name, the rest from its ancestors or topic */
                uint32_t pick = (nown && xmc_rng_next(&rng) % 10 < 7) ? xmc_rng_next(&rng) % nown
                                                                      : xmc_rng_next(&rng) % nwords;
                fprintf(f, "%s%s", first ? "" : " ", words[pick]);
                first = 0;
            }
        }
        uint32_t nn = 2 + xmc_rng_next(&rng) % 5;
        for (uint32_t j = 0; j < nn; j++) {
            /* noise words Zipf-like: squares favour the head of the list */
            uint32_t r = xmc_rng_next(&rng) % N_NOISE;
            r = (uint32_t)((uint64_t)r * r / N_NOISE);
            fprintf(f, "%s%s", first ? "" : " ", noise_words[r]);
            first = 0;
        }
        fputc('\n', f);
    }
    int rc = 0;
    if (out) {
        if (fclose(f) != 0 || rename(tmp, out) != 0) { perror(out); rc = 1; }
    } else if (fflush(f) != 0) {
        rc = 1;
    }
    for (uint32_t i = 0; i < ncat; i++) {
        for (uint32_t j = 0; j < cats[i].nwords; j++) free(cats[i].words[j]);
        free(cats[i].words);
        for (uint32_t j = 0; j < cats[i].nalt; j++) free(cats[i].alt[j]);
        free(cats[i].alt);
        free(cats[i].name);
    }
    free(cats);
    free(perm);
    free(cum);
    return rc;
}
