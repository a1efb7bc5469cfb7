/* smat.c: CSR sparse matrices: allocation, transpose, normalisation, product, builder and text I/O.
 *
 * Everything here works on plain arrays; the product is Gustavson's row-by-row algorithm with a dense
 * accumulator and a list of touched columns, so its cost is proportional to the flops, not to the shape. */
#include "smat.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

xmc_err xmci_csr_alloc(xmci_csr *m, uint32_t rows, uint32_t cols, uint64_t nnz, xmc_error *err)
{
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->indptr = calloc((size_t)rows + 1, sizeof *m->indptr);
    m->indices = malloc((nnz ? nnz : 1) * sizeof *m->indices);
    m->data = malloc((nnz ? nnz : 1) * sizeof *m->data);
    m->owned = 1;
    if (!m->indptr || !m->indices || !m->data) {
        xmci_csr_free(m);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a %u x %u matrix with %llu entries",
                             rows, cols, (unsigned long long)nnz);
    }
    return XMC_OK;
}

void xmci_csr_free(xmci_csr *m)
{
    if (!m) return;
    if (m->owned) {
        free(m->indptr);
        free(m->indices);
        free(m->data);
    }
    memset(m, 0, sizeof *m);
}

xmc_err xmci_csr_copy(const xmci_csr *src, xmci_csr *dst, xmc_error *err)
{
    uint64_t nnz = xmci_csr_nnz(src);
    xmc_err rc = xmci_csr_alloc(dst, src->rows, src->cols, nnz, err);
    if (rc) return rc;
    memcpy(dst->indptr, src->indptr, ((size_t)src->rows + 1) * sizeof *dst->indptr);
    if (nnz) {
        memcpy(dst->indices, src->indices, nnz * sizeof *dst->indices);
        memcpy(dst->data, src->data, nnz * sizeof *dst->data);
    }
    return XMC_OK;
}

xmc_err xmci_csr_transpose(const xmci_csr *src, xmci_csr *dst, xmc_error *err)
{
    uint64_t nnz = xmci_csr_nnz(src);
    xmc_err rc = xmci_csr_alloc(dst, src->cols, src->rows, nnz, err);
    if (rc) return rc;
    for (uint64_t p = 0; p < nnz; p++) {
        assert(src->indices[p] < src->cols); /* every constructor of a CSR checks its columns */
        dst->indptr[src->indices[p] + 1]++;
    }
    for (uint32_t c = 0; c < src->cols; c++) dst->indptr[c + 1] += dst->indptr[c];
    uint64_t *next = malloc(((size_t)src->cols + 1) * sizeof *next);
    if (!next) {
        xmci_csr_free(dst);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory transposing a matrix");
    }
    memcpy(next, dst->indptr, ((size_t)src->cols + 1) * sizeof *next);
    for (uint32_t r = 0; r < src->rows; r++) {
        for (uint64_t p = src->indptr[r]; p < src->indptr[r + 1]; p++) {
            uint64_t q = next[src->indices[p]]++;
            dst->indices[q] = r;
            dst->data[q] = src->data[p];
        }
    }
#ifndef NDEBUG
    for (uint32_t c = 0; c < src->cols; c++) assert(next[c] == dst->indptr[c + 1]); /* every column filled */
#endif
    free(next);
    return XMC_OK;
}

/* Insertion sort for short rows, merge-free heap sort fallback would be overkill: rows are short. */
static void sort_row(uint32_t *idx, float *val, uint64_t n)
{
    for (uint64_t i = 1; i < n; i++) {
        uint32_t ki = idx[i];
        float kv = val[i];
        uint64_t j = i;
        while (j > 0 && idx[j - 1] > ki) {
            idx[j] = idx[j - 1];
            val[j] = val[j - 1];
            j--;
        }
        idx[j] = ki;
        val[j] = kv;
    }
}

typedef struct { uint32_t i; float v; } pair_t;
static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return (x->i > y->i) - (x->i < y->i);
}

void xmci_csr_sort_indices(xmci_csr *m)
{
    for (uint32_t r = 0; r < m->rows; r++) {
        uint64_t b = m->indptr[r], n = m->indptr[r + 1] - b;
        int sorted = 1;
        for (uint64_t k = 1; k < n && sorted; k++) sorted = m->indices[b + k - 1] <= m->indices[b + k];
        if (sorted) continue;
        if (n <= 64) {
            sort_row(m->indices + b, m->data + b, n);
            continue;
        }
        pair_t *tmp = malloc(n * sizeof *tmp);
        if (!tmp) { sort_row(m->indices + b, m->data + b, n); continue; }
        for (uint64_t k = 0; k < n; k++) tmp[k] = (pair_t){m->indices[b + k], m->data[b + k]};
        qsort(tmp, n, sizeof *tmp, cmp_pair);
        for (uint64_t k = 0; k < n; k++) { m->indices[b + k] = tmp[k].i; m->data[b + k] = tmp[k].v; }
        free(tmp);
    }
}

void xmci_csr_normalize_rows(xmci_csr *m)
{
    for (uint32_t r = 0; r < m->rows; r++) {
        double s = 0;
        for (uint64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++) s += (double)m->data[p] * m->data[p];
        if (s <= 0) continue;
        float inv = (float)(1.0 / sqrt(s));
        for (uint64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++) m->data[p] *= inv;
    }
}

void xmci_csr_prune(xmci_csr *m, float threshold)
{
    uint64_t q = 0, start = 0;
    for (uint32_t r = 0; r < m->rows; r++) {
        uint64_t end = m->indptr[r + 1];
        for (uint64_t p = start; p < end; p++) {
            if (fabsf(m->data[p]) >= threshold) {
                m->indices[q] = m->indices[p];
                m->data[q] = m->data[p];
                q++;
            }
        }
        start = end;
        m->indptr[r + 1] = q;
    }
}

xmc_err xmci_csr_matmul(const xmci_csr *a, const xmci_csr *b, xmci_csr *c, xmc_error *err)
{
    if (a->cols != b->rows)
        return xmc_error_set(err, XMC_ERR_SHAPE, "matmul: %u x %u times %u x %u", a->rows, a->cols, b->rows, b->cols);
    xmci_csr_builder bld;
    xmc_err rc = xmci_csr_builder_init(&bld, b->cols, err);
    if (rc) return rc;
    float *acc = calloc(b->cols ? b->cols : 1, sizeof *acc);
    uint32_t *touched = malloc((b->cols ? b->cols : 1) * sizeof *touched);
    unsigned char *seen = calloc(b->cols ? b->cols : 1, 1);
    if (!acc || !touched || !seen) {
        rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory in matmul");
        goto out;
    }
    for (uint32_t i = 0; i < a->rows; i++) {
        uint32_t nt = 0;
        for (uint64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++) {
            uint32_t k = a->indices[p];
            float av = a->data[p];
            for (uint64_t q = b->indptr[k]; q < b->indptr[k + 1]; q++) {
                uint32_t j = b->indices[q];
                if (!seen[j]) { seen[j] = 1; touched[nt++] = j; }
                acc[j] += av * b->data[q];
            }
        }
        /* sort touched columns so the result rows are ordered */
        for (uint32_t x = 1; x < nt; x++) {
            uint32_t v = touched[x], y = x;
            if (nt > 256) break;
            while (y > 0 && touched[y - 1] > v) { touched[y] = touched[y - 1]; y--; }
            touched[y] = v;
        }
        for (uint32_t x = 0; x < nt; x++) {
            uint32_t j = touched[x];
            if ((rc = xmci_csr_builder_push(&bld, j, acc[j], err))) goto out;
            acc[j] = 0;
            seen[j] = 0;
        }
        if ((rc = xmci_csr_builder_end_row(&bld, err))) goto out;
    }
    xmci_csr_builder_finish(&bld, c);
    c->cols = b->cols;
    xmci_csr_sort_indices(c);
out:
    free(acc);
    free(touched);
    free(seen);
    xmci_csr_builder_free(&bld);
    return rc;
}

/* ---- builder ------------------------------------------------------------------------------------------ */

xmc_err xmci_csr_builder_init(xmci_csr_builder *b, uint32_t cols, xmc_error *err)
{
    memset(b, 0, sizeof *b);
    b->cap_rows = 1024;
    b->cap_nnz = 4096;
    b->m.cols = cols;
    b->m.owned = 1;
    b->m.indptr = calloc(b->cap_rows + 1, sizeof *b->m.indptr);
    b->m.indices = malloc(b->cap_nnz * sizeof *b->m.indices);
    b->m.data = malloc(b->cap_nnz * sizeof *b->m.data);
    if (!b->m.indptr || !b->m.indices || !b->m.data) {
        xmci_csr_builder_free(b);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory starting a matrix");
    }
    return XMC_OK;
}

xmc_err xmci_csr_builder_push(xmci_csr_builder *b, uint32_t col, float val, xmc_error *err)
{
    uint64_t n = b->nnz;
    if (n == b->cap_nnz) {
        uint64_t cap = b->cap_nnz * 2;
        uint32_t *i2 = realloc(b->m.indices, cap * sizeof *i2);
        if (!i2) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory growing a matrix");
        b->m.indices = i2;
        float *d2 = realloc(b->m.data, cap * sizeof *d2);
        if (!d2) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory growing a matrix");
        b->m.data = d2;
        b->cap_nnz = cap;
    }
    b->m.indices[n] = col;
    b->m.data[n] = val;
    b->nnz = n + 1;
    return XMC_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

uint32_t xmci_csr_builder_row_duplicate(const xmci_csr_builder *b)
{
    const uint32_t *c = b->m.indices + b->m.indptr[b->m.rows];
    uint64_t n = b->nnz - b->m.indptr[b->m.rows];
    uint64_t k = 1;
    while (k < n && c[k - 1] < c[k]) k++; /* files list a row's columns in order: one pass tells */
    if (k >= n) return UINT32_MAX;
    uint32_t *s = malloc(n * sizeof *s);
    if (s) {
        memcpy(s, c, n * sizeof *s);
        qsort(s, n, sizeof *s, cmp_u32);
        uint32_t dup = UINT32_MAX;
        for (k = 1; k < n && dup == UINT32_MAX; k++)
            if (s[k - 1] == s[k]) dup = s[k];
        free(s);
        return dup;
    }
    for (uint64_t i = 0; i < n; i++) /* no memory for a sorted copy: quadratic, still exact */
        for (uint64_t j = i + 1; j < n; j++)
            if (c[i] == c[j]) return c[i];
    return UINT32_MAX;
}

xmc_err xmci_csr_builder_end_row(xmci_csr_builder *b, xmc_error *err)
{
    if (b->m.rows == UINT32_MAX) return xmc_error_set(err, XMC_ERR_RANGE, "too many rows");
    if (b->m.rows + 1 > b->cap_rows) {
        uint64_t cap = b->cap_rows * 2;
        uint64_t *p2 = realloc(b->m.indptr, (cap + 1) * sizeof *p2);
        if (!p2) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory growing a matrix");
        b->m.indptr = p2;
        b->cap_rows = cap;
    }
    assert(b->m.indptr[b->m.rows] <= b->nnz); /* row pointers monotone */
    b->m.rows++;
    b->m.indptr[b->m.rows] = b->nnz;
    return XMC_OK;
}

void xmci_csr_builder_finish(xmci_csr_builder *b, xmci_csr *out)
{
    /* entries pushed after the last end_row are dropped: the builder contract is whole rows */
    uint32_t maxc = 0;
    for (uint64_t p = 0; p < b->m.indptr[b->m.rows]; p++)
        if (b->m.indices[p] + 1 > maxc) maxc = b->m.indices[p] + 1;
    if (maxc > b->m.cols) b->m.cols = maxc;
    *out = b->m;
    memset(b, 0, sizeof *b);
}

void xmci_csr_builder_free(xmci_csr_builder *b)
{
    xmci_csr_free(&b->m);
    memset(b, 0, sizeof *b);
}

/* ---- smat text ---------------------------------------------------------------------------------------- */

/* After getline() returned -1 with errno cleared before it: the error, or XMC_OK at the end of the file, so
 * that a failed read or allocation is not reported as a short or empty file. */
static xmc_err line_error(FILE *f, const char *path, xmc_error *err)
{
    if (errno == ENOMEM) return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory reading a line", path);
    if (ferror(f)) return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path);
    return XMC_OK;
}

/* Pushes the col:value entries of one line (line lineno of path) to b, without ending the row. */
static xmc_err parse_row(char *s, unsigned long long cols, xmci_csr_builder *b, const char *path,
                         unsigned long long lineno, xmc_error *err)
{
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\n' || *s == '\r' || *s == '\0') return XMC_OK;
        char *e;
        errno = 0;
        unsigned long long c = strtoull(s, &e, 10);
        if (e == s || *e != ':' || errno || c >= cols)
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%llu: bad entry near '%.20s' (want col:value, col < %llu)",
                                 path, lineno, s, cols);
        s = e + 1;
        float v = strtof(s, &e);
        if (e == s || (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r') || !isfinite(v))
            return xmc_error_set(err, XMC_ERR_PARSE, "%s:%llu: bad value near '%.20s'", path, lineno, s);
        s = e;
        xmc_err rc = xmci_csr_builder_push(b, (uint32_t)c, v, err);
        if (rc) return rc;
    }
}

xmc_err xmci_csr_read_text(const char *path, xmci_csr *m, xmc_error *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    xmc_err rc = XMC_OK;
    xmci_csr_builder b;
    int have_b = 0;
    unsigned long long rows = 0, cols = 0, lineno = 0;

    errno = 0;
    if ((len = getline(&line, &cap, f)) < 0) {
        if (!(rc = line_error(f, path, err)))
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:1: empty file, expected 'ROWS COLS'", path);
        goto out;
    }
    lineno = 1;
    {
        char *e1, *e2;
        errno = 0;
        rows = strtoull(line, &e1, 10);
        cols = strtoull(e1, &e2, 10);
        while (*e2 == ' ' || *e2 == '\n' || *e2 == '\r') e2++;
        if (e1 == line || e2 == e1 || *e2 || errno || rows > UINT32_MAX || cols > UINT32_MAX) {
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:1: expected 'ROWS COLS'", path);
            goto out;
        }
    }
    if ((rc = xmci_csr_builder_init(&b, (uint32_t)cols, err))) goto out;
    have_b = 1;
    for (unsigned long long r = 0; r < rows; r++) {
        errno = 0;
        if ((len = getline(&line, &cap, f)) < 0) {
            if (!(rc = line_error(f, path, err)))
                rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%llu: file ends after %llu of %llu rows", path,
                                   lineno + 1, r, rows);
            goto out;
        }
        lineno++;
        if ((rc = parse_row(line, cols, &b, path, lineno, err))) goto out;
        uint32_t dup = xmci_csr_builder_row_duplicate(&b);
        if (dup != UINT32_MAX) {
            rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%llu: column %u appears twice in the row", path, lineno, dup);
            goto out;
        }
        if ((rc = xmci_csr_builder_end_row(&b, err))) goto out;
    }
    while ((errno = 0, len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        for (ssize_t i = 0; i < len; i++) {
            if (line[i] != ' ' && line[i] != '\n' && line[i] != '\r') {
                rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%llu: more rows than the %llu declared", path, lineno, rows);
                goto out;
            }
        }
    }
    if ((rc = line_error(f, path, err))) goto out;
    xmci_csr_builder_finish(&b, m);
    m->cols = (uint32_t)cols;
    have_b = 0;
out:
    if (have_b) xmci_csr_builder_free(&b);
    free(line);
    fclose(f);
    return rc;
}

xmc_err xmci_csr_write_text(FILE *f, const xmci_csr *m, xmc_error *err)
{
    fprintf(f, "%u %u\n", m->rows, m->cols);
    for (uint32_t r = 0; r < m->rows; r++) {
        for (uint64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++)
            fprintf(f, p == m->indptr[r] ? "%u:%.9g" : " %u:%.9g", m->indices[p], (double)m->data[p]);
        fputc('\n', f);
    }
    if (ferror(f)) return xmc_error_set(err, XMC_ERR_IO, "write failed: %s", strerror(errno));
    return XMC_OK;
}
