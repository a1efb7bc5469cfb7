/* dataset.c: readers for labelled text TSV, XC / multi-label libsvm files and smat pairs; the label map.
 *
 * Text readers load the whole file into one buffer (texts then point into it, NUL-terminated in place) and
 * walk it line by line with memchr, so that reading costs one pass and no allocation per line. Label rows go
 * through a small per-row id buffer that is sorted and de-duplicated before it enters the CSR builder. The
 * label map is an open-addressing table of ids over the names, with each name's hash kept for growing. A UTF-8
 * byte order mark at the start of a file is skipped. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- label map ------------------------------------------------------------------------------------------ */

xmc_err xmci_labelmap_init(xmci_labelmap *m, xmc_error *err)
{
    memset(m, 0, sizeof *m);
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) return xmc_error_set(err, XMC_ERR_NOMEM, "label map: out of memory");
    return XMC_OK;
}

void xmci_labelmap_free(xmci_labelmap *m)
{
    if (!m) return;
    for (uint32_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->hashes);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint32_t find_hashed(const xmci_labelmap *m, uint64_t h, const char *name, size_t len)
{
    if (!m->cap) return UINT32_MAX;
    uint32_t mask = m->cap - 1;
    for (uint32_t s = (uint32_t)h & mask;; s = (s + 1) & mask) {
        uint32_t id1 = m->slots[s];
        if (!id1) return UINT32_MAX;
        const char *nm = m->names[id1 - 1];
        if (m->hashes[id1 - 1] == h && !strncmp(nm, name, len) && nm[len] == 0) return id1 - 1;
    }
}

uint32_t xmci_labelmap_find(const xmci_labelmap *m, const char *name, size_t len)
{
    return find_hashed(m, XXH64(name, len, 0), name, len);
}

xmc_err xmci_labelmap_add(xmci_labelmap *m, const char *name, size_t len, uint32_t *id, xmc_error *err)
{
    uint64_t h = XXH64(name, len, 0);
    uint32_t found = find_hashed(m, h, name, len);
    if (found != UINT32_MAX) { *id = found; return XMC_OK; }
    if (m->n >= UINT32_MAX / 4) return xmc_error_set(err, XMC_ERR_RANGE, "label map: too many labels");
    if (m->n == m->names_cap) {
        uint32_t cap = m->names_cap ? m->names_cap * 2 : 64;
        char **names = realloc(m->names, cap * sizeof *names);
        if (!names) return xmc_error_set(err, XMC_ERR_NOMEM, "label map: out of memory");
        m->names = names;
        uint64_t *hashes = realloc(m->hashes, cap * sizeof *hashes);
        if (!hashes) return xmc_error_set(err, XMC_ERR_NOMEM, "label map: out of memory");
        m->hashes = hashes;
        m->names_cap = cap;
    }
    if ((uint64_t)(m->n + 1) * 2 > m->cap) { /* keep the load under one half */
        uint32_t cap = m->cap * 2, mask = cap - 1;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return xmc_error_set(err, XMC_ERR_NOMEM, "label map: out of memory");
        for (uint32_t i = 0; i < m->n; i++) {
            uint32_t s = (uint32_t)m->hashes[i] & mask;
            while (slots[s]) s = (s + 1) & mask;
            slots[s] = i + 1;
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return xmc_error_set(err, XMC_ERR_NOMEM, "label map: out of memory");
    memcpy(copy, name, len);
    copy[len] = 0;
    uint32_t s = (uint32_t)h & (m->cap - 1);
    while (m->slots[s]) s = (s + 1) & (m->cap - 1);
    m->slots[s] = m->n + 1;
    m->names[m->n] = copy;
    m->hashes[m->n] = h;
    *id = m->n++;
    return XMC_OK;
}

xmc_err xmci_labelmap_from_names(xmci_labelmap *m, const char *const *names, uint32_t n, xmc_error *err)
{
    xmc_err rc = xmci_labelmap_init(m, err);
    for (uint32_t i = 0; !rc && i < n; i++) {
        uint32_t id;
        if ((rc = xmci_labelmap_add(m, names[i], strlen(names[i]), &id, err))) break;
        if (id != i) rc = xmc_error_set(err, XMC_ERR_ARG, "label map: '%s' appears twice (%u and %u)", names[i], id, i);
    }
    if (rc) xmci_labelmap_free(m);
    return rc;
}

/* ---- shared helpers ------------------------------------------------------------------------------------- */

static xmc_err read_file(const char *path, char **buf, size_t *size, xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t c = cap ? cap * 2 : 1 << 20;
            char *b2 = realloc(b, c + 1);
            if (!b2) { free(b); fclose(f); return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path); }
            b = b2;
            cap = c;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(b); return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path); }
    b[n] = 0;
    *buf = b;
    *size = n;
    return XMC_OK;
}

/* Where the data starts: after a UTF-8 byte order mark, which some editors write and which would otherwise
 * become part of the first label. */
static char *data_start(char *buf, size_t size)
{
    return size >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? buf + 3 : buf;
}

static size_t count_lines(const char *buf, size_t size)
{
    size_t lines = 0;
    for (const char *p = buf, *end = buf + size; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    return lines;
}

/* Cuts the next line out of [*p, end): NUL-terminates it in place (dropping \r) and returns its length. */
static size_t next_line(char **p, char *end, char **line)
{
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r') e--;
    *e = 0;
    *line = s;
    return (size_t)(e - s);
}

/* One Y row: ids sorted and de-duplicated, pushed with value 1. */
typedef struct row_ids {
    uint32_t *id;
    size_t n, cap;
} row_ids;

static int row_push(row_ids *r, uint32_t id)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        uint32_t *a = realloc(r->id, cap * sizeof *a);
        if (!a) return 0;
        r->id = a;
        r->cap = cap;
    }
    r->id[r->n++] = id;
    return 1;
}

static xmc_err row_flush(row_ids *r, xmci_csr_builder *y, xmc_error *err)
{
    for (size_t i = 1; i < r->n; i++) { /* rows are short: insertion sort */
        uint32_t v = r->id[i];
        size_t j = i;
        while (j > 0 && r->id[j - 1] > v) { r->id[j] = r->id[j - 1]; j--; }
        r->id[j] = v;
    }
    xmc_err rc;
    for (size_t i = 0; i < r->n; i++)
        if ((i == 0 || r->id[i] != r->id[i - 1]) && (rc = xmci_csr_builder_push(y, r->id[i], 1.0f, err))) return rc;
    r->n = 0;
    return xmci_csr_builder_end_row(y, err);
}

void xmci_dataset_free(xmci_dataset *ds)
{
    if (!ds) return;
    free(ds->texts);
    free(ds->lens);
    xmci_csr_free(&ds->X);
    xmci_csr_free(&ds->Y);
    if (ds->own_labels) {
        xmci_labelmap_free(ds->own_labels);
        free(ds->own_labels);
    }
    free(ds->buf);
    memset(ds, 0, sizeof *ds);
}

/* ---- TSV ------------------------------------------------------------------------------------------------ */

xmc_err xmci_dataset_read_tsv(const char *path, const xmci_labelmap *labels, xmci_dataset *ds, xmc_error *err)
{
    memset(ds, 0, sizeof *ds);
    size_t size;
    xmc_err rc = read_file(path, &ds->buf, &size, err);
    if (rc) return rc;
    char *start = data_start(ds->buf, size), *end = ds->buf + size;
    size_t lines = count_lines(start, (size_t)(end - start));
    xmci_csr_builder y;
    row_ids row = {0};
    int have_y = 0;
    if (lines == 0) { rc = xmc_error_set(err, XMC_ERR_EMPTY, "%s: no documents", path); goto fail; }
    if (lines > UINT32_MAX - 1) { rc = xmc_error_set(err, XMC_ERR_RANGE, "%s: too many lines", path); goto fail; }
    ds->texts = malloc(lines * sizeof *ds->texts);
    ds->lens = malloc(lines * sizeof *ds->lens);
    if (!ds->texts || !ds->lens) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if (!labels) {
        ds->own_labels = malloc(sizeof *ds->own_labels);
        if (!ds->own_labels) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path); goto fail; }
        if ((rc = xmci_labelmap_init(ds->own_labels, err))) { free(ds->own_labels); ds->own_labels = NULL; goto fail; }
        labels = ds->own_labels;
    }
    if ((rc = xmci_csr_builder_init(&y, 0, err))) goto fail;
    have_y = 1;
    char *p = start;
    for (size_t ln = 1; p < end; ln++) {
        char *line;
        size_t len = next_line(&p, end, &line);
        char *tab = memchr(line, '\t', len);
        if (!tab) {
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: no tab between the labels and the text", path, ln);
            goto fail;
        }
        if (memchr(line, '\0', (size_t)(tab - line))) {
            /* label names are C strings in the model: "x\0y" and "x\0z" would both be "x" */
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: a NUL byte in the labels", path, ln);
            goto fail;
        }
        ds->texts[ds->n] = tab + 1;
        ds->lens[ds->n] = len - (size_t)(tab + 1 - line);
        if (tab == line) ds->unlabeled_docs++;
        int lost = 0;
        for (char *s = line; tab > line && s <= tab;) {
            char *comma = memchr(s, ',', (size_t)(tab - s));
            char *e = comma ? comma : tab;
            if (e == s) {
                rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: empty label name in '%.*s'", path, ln,
                                   (int)(tab - line > 200 ? 200 : tab - line), line);
                goto fail;
            }
            uint32_t id;
            if (ds->own_labels) {
                if ((rc = xmci_labelmap_add(ds->own_labels, s, (size_t)(e - s), &id, err))) goto fail;
            } else if ((id = xmci_labelmap_find(labels, s, (size_t)(e - s))) == UINT32_MAX) {
                ds->unknown_labels++;
                lost = 1;
                s = e + 1;
                continue;
            }
            if (!row_push(&row, id)) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path); goto fail; }
            s = e + 1;
        }
        ds->unknown_label_docs += lost;
        if ((rc = row_flush(&row, &y, err))) goto fail;
        ds->n++;
    }
    xmci_csr_builder_finish(&y, &ds->Y);
    ds->Y.cols = labels->n; /* labels seen only in a given map still count */
    ds->num_labels = labels->n;
    ds->label_names = labels->names;
    ds->labels = labels;
    free(row.id);
    return XMC_OK;
fail:
    if (have_y) xmci_csr_builder_free(&y);
    free(row.id);
    xmci_dataset_free(ds);
    return rc;
}

/* ---- XC / libsvm ---------------------------------------------------------------------------------------- */

void xmci_dataset_xc_opts_default(xmci_dataset_xc_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->header = -1;
}

/* Reads a decimal uint32 at *s (digits only); advances *s. */
static int read_u32(char **s, uint32_t *v)
{
    char *p = *s;
    uint64_t x = 0;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') {
        x = x * 10 + (uint64_t)(*p - '0');
        if (x > UINT32_MAX) return 0;
        p++;
    }
    *s = p;
    *v = (uint32_t)x;
    return 1;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Whether the line is exactly three integers: "N F L". */
static int parse_header(char *line, uint32_t hdr[3])
{
    char *s = line;
    for (int i = 0; i < 3; i++) {
        while (is_blank(*s)) s++;
        if (!read_u32(&s, &hdr[i])) return 0;
        if (*s && !is_blank(*s)) return 0;
    }
    while (is_blank(*s)) s++;
    return *s == 0;
}

/* One XC file being read: where, with which options, what was seen so far. */
typedef struct xc_reader {
    const char *path;
    const xmci_dataset_xc_opts *opts;
    size_t ln;              /* the line being parsed */
    uint32_t nf, nl;        /* feature and label counts; 0: unknown, inferred */
    uint32_t max_f, max_l;  /* 1 + the largest index seen */
    uint32_t hdr[3];        /* rows, features, labels of the header */
    int has_header;
} xc_reader;

/* Reads the header line at *p when there is one (opts->header -1: maybe, 1: must) and moves *p past it. */
static xmc_err xc_header(xc_reader *rd, char **p, char *end, xmc_error *err)
{
    if (rd->opts->header == 0 || *p >= end) return XMC_OK;
    /* parse a copy of the first line, so that a data line is left intact for the caller */
    char first[128], *nlp = memchr(*p, '\n', (size_t)(end - *p));
    size_t len = (size_t)((nlp ? nlp : end) - *p);
    if (len < sizeof first) {
        memcpy(first, *p, len);
        first[len] = 0;
        if (len && first[len - 1] == '\r') first[len - 1] = 0;
        rd->has_header = parse_header(first, rd->hdr);
    }
    if (!rd->has_header && rd->opts->header == 1)
        return xmc_error_set(err, XMC_ERR_PARSE, "%s:1: expected a header 'ROWS FEATURES LABELS'", rd->path);
    if (rd->has_header) {
        if ((rd->nf && rd->nf != rd->hdr[1]) || (rd->nl && rd->nl != rd->hdr[2]))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:1: header says %u features and %u labels, options say "
                                 "%u and %u", rd->path, rd->hdr[1], rd->hdr[2], rd->nf, rd->nl);
        rd->nf = rd->hdr[1];
        rd->nl = rd->hdr[2];
        *p = nlp ? nlp + 1 : end;
        rd->ln = 2;
    }
    return XMC_OK;
}

/* Reads the label list that starts a line (a first token without ':'; nothing when the line starts with a
 * blank) into row, and moves *sp past it. */
static xmc_err xc_labels(xc_reader *rd, char **sp, row_ids *row, xmc_error *err)
{
    char *s = *sp;
    size_t tok = strcspn(s, " \t");
    if (!tok || memchr(s, ':', tok)) return XMC_OK;
    for (;;) {
        uint32_t l;
        if (!read_u32(&s, &l))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: bad label index at '%.20s'", rd->path, rd->ln, s);
        if (l < rd->opts->label_base || (rd->nl && l - rd->opts->label_base >= rd->nl))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: label index %u out of range (%u labels, base %u)",
                                 rd->path, rd->ln, l, rd->nl, rd->opts->label_base);
        l -= rd->opts->label_base;
        if (l + 1 > rd->max_l) rd->max_l = l + 1;
        if (!row_push(row, l)) return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", rd->path);
        if (*s != ',') break;
        s++;
    }
    if (*s && !is_blank(*s))
        return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: bad label list at '%.20s'", rd->path, rd->ln, s);
    *sp = s;
    return XMC_OK;
}

/* Pushes the index:value features of the rest of a line to x, without ending the row. */
static xmc_err xc_features(xc_reader *rd, char *s, xmci_csr_builder *x, xmc_error *err)
{
    for (;;) {
        while (is_blank(*s)) s++;
        if (!*s) return XMC_OK;
        uint32_t f;
        char *at = s;
        if (!read_u32(&s, &f) || *s != ':')
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: bad feature entry at '%.20s' (want index:value)",
                                 rd->path, rd->ln, at);
        if (f < rd->opts->feature_base || (rd->nf && f - rd->opts->feature_base >= rd->nf))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: feature index %u out of range (%u features, base %u)",
                                 rd->path, rd->ln, f, rd->nf, rd->opts->feature_base);
        f -= rd->opts->feature_base;
        char *vs = ++s, *ve;
        errno = 0;
        float v = strtof(vs, &ve);
        if (ve == vs || (*ve && !is_blank(*ve)) || !isfinite(v))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: bad value at '%.20s'", rd->path, rd->ln, vs);
        s = ve;
        if (f + 1 > rd->max_f) rd->max_f = f + 1;
        xmc_err rc = xmci_csr_builder_push(x, f, v, err);
        if (rc) return rc;
    }
}

xmc_err xmci_dataset_read_xc(const char *path, const xmci_dataset_xc_opts *opts, xmci_dataset *ds, xmc_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (opts->feature_base > 1 || opts->label_base > 1 || opts->header < -1 || opts->header > 1)
        return xmc_error_set(err, XMC_ERR_ARG, "%s: index bases must be 0 or 1 and header -1, 0 or 1", path);
    char *buf;
    size_t size;
    xmc_err rc = read_file(path, &buf, &size, err);
    if (rc) return rc;
    xmci_csr_builder x, y;
    int have_x = 0, have_y = 0;
    row_ids row = {0};
    char *p = data_start(buf, size), *end = buf + size;
    xc_reader rd = {.path = path, .opts = opts, .ln = 1, .nf = opts->num_features, .nl = opts->num_labels};
    if ((rc = xc_header(&rd, &p, end, err))) goto fail;
    if ((rc = xmci_csr_builder_init(&x, rd.nf, err))) goto fail;
    have_x = 1;
    if ((rc = xmci_csr_builder_init(&y, rd.nl, err))) goto fail;
    have_y = 1;
    for (; p < end; rd.ln++) {
        char *line;
        next_line(&p, end, &line);
        if ((rc = xc_labels(&rd, &line, &row, err)) || (rc = xc_features(&rd, line, &x, err))) goto fail;
        uint32_t dup = xmci_csr_builder_row_duplicate(&x);
        if (dup != UINT32_MAX) {
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%zu: feature %u appears twice in the row", path, rd.ln,
                               dup + rd.opts->feature_base);
            goto fail;
        }
        if ((rc = xmci_csr_builder_end_row(&x, err)) || (rc = row_flush(&row, &y, err))) goto fail;
    }
    if (rd.has_header && x.m.rows != rd.hdr[0]) {
        rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:1: header says %u rows, the file has %u", path, rd.hdr[0], x.m.rows);
        goto fail;
    }
    xmci_csr_builder_finish(&x, &ds->X);
    have_x = 0;
    xmci_csr_builder_finish(&y, &ds->Y);
    have_y = 0;
    ds->X.cols = rd.nf ? rd.nf : rd.max_f;
    ds->Y.cols = rd.nl ? rd.nl : rd.max_l;
    xmci_csr_sort_indices(&ds->X);
    ds->n = ds->X.rows;
    ds->num_labels = ds->Y.cols;
    for (uint32_t r = 0; r < ds->n; r++) ds->unlabeled_docs += ds->Y.indptr[r + 1] == ds->Y.indptr[r];
    free(row.id);
    free(buf);
    return XMC_OK;
fail:
    if (have_x) xmci_csr_builder_free(&x);
    if (have_y) xmci_csr_builder_free(&y);
    free(row.id);
    free(buf);
    xmci_dataset_free(ds);
    return rc;
}

/* ---- smat pair ------------------------------------------------------------------------------------------ */

xmc_err xmci_dataset_read_smat(const char *x_path, const char *y_path, xmci_dataset *ds, xmc_error *err)
{
    memset(ds, 0, sizeof *ds);
    xmc_err rc = xmci_csr_read_text(x_path, &ds->X, err);
    if (rc) return rc;
    if ((rc = xmci_csr_read_text(y_path, &ds->Y, err))) {
        xmci_dataset_free(ds);
        return rc;
    }
    if (ds->X.rows != ds->Y.rows) {
        rc = xmc_error_set(err, XMC_ERR_SHAPE, "%s has %u rows but %s has %u", x_path, ds->X.rows, y_path,
                           ds->Y.rows);
        xmci_dataset_free(ds);
        return rc;
    }
    xmci_csr_sort_indices(&ds->X);
    xmci_csr_sort_indices(&ds->Y);
    ds->n = ds->X.rows;
    ds->num_labels = ds->Y.cols;
    for (uint32_t r = 0; r < ds->n; r++) ds->unlabeled_docs += ds->Y.indptr[r + 1] == ds->Y.indptr[r];
    return XMC_OK;
}
