/* adamw.c: AdamW (torch and HF forms) over spans or rows of a parameter arena, and global-norm clipping.
 *
 * The arithmetic follows the reference implementations operation by operation in float32 (scalars computed in
 * double and rounded once, as PyTorch does with a Python float), so that one step from the same gradients
 * matches them to the last bit or two. The norm for clipping is summed in double. */
#include "adamw.h"

#include "parallel.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> /* SSE2 (the baseline) for the norm; AVX where the CPU has it for the update */
#define ADAMW_X86 1
#endif

xmc_err xmci_adamw_new(size_t n, xmci_adamw_kind kind, float beta1, float beta2, float eps, xmci_adamw **out,
                      xmc_error *err)
{
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) ||
        (kind != XMCI_ADAMW_TORCH && kind != XMCI_ADAMW_HF))
        return xmc_error_set(err, XMC_ERR_ARG, "adamw: betas %g %g must be in [0, 1), eps %g >= 0", (double)beta1,
                             (double)beta2, (double)eps);
    xmci_adamw *opt = calloc(1, sizeof *opt);
    if (opt) {
        opt->m = calloc(n ? n : 1, sizeof *opt->m);
        opt->v = calloc(n ? n : 1, sizeof *opt->v);
    }
    if (!opt || !opt->m || !opt->v) {
        xmci_adamw_free(opt);
        return xmc_error_set(err, XMC_ERR_NOMEM, "adamw: out of memory for %zu moments", n);
    }
    opt->kind = kind, opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps, opt->n = n, opt->threads = 1;
    opt->gscale = 1.0f;
    *out = opt;
    return XMC_OK;
}

void xmci_adamw_free(xmci_adamw *opt)
{
    if (!opt) return;
    free(opt->m);
    free(opt->v);
    free(opt);
}

void xmci_adamw_next(xmci_adamw *opt)
{
    opt->t++;
    opt->gscale = 1.0f;
}

void xmci_adamw_scale_grads(xmci_adamw *opt, float c) { opt->gscale = c; }

/* The per-step scalars, computed in double and rounded once. */
typedef struct step_consts {
    float b1, one_b1, b2, one_b2, eps, decay, c2_sqrt, step, gscale;
} step_consts;

static step_consts consts(const xmci_adamw *opt, float lr, float wd)
{
    const double c1 = 1.0 - pow((double)opt->beta1, (double)opt->t), c2 = 1.0 - pow((double)opt->beta2, (double)opt->t);
    step_consts k = {opt->beta1, (float)(1.0 - (double)opt->beta1), opt->beta2, (float)(1.0 - (double)opt->beta2),
                     opt->eps, 0, (float)sqrt(c2), 0, opt->gscale};
    if (opt->kind == XMCI_ADAMW_TORCH) {
        k.decay = (float)(1.0 - (double)lr * (double)wd);
        k.step = (float)(-(double)lr / c1);
    } else {
        k.decay = (float)(-(double)lr * (double)wd);
        k.step = (float)(-(double)lr * sqrt(c2) / c1);
    }
    return k;
}

#ifdef ADAMW_X86
/* Eight floats at a time with the scalar loop's operations in its order (AVX, no FMA: the same bits); returns how
 * many it did (a multiple of 8), the scalar loop does the rest. */
__attribute__((target("avx"))) static size_t update_avx(const xmci_adamw *opt, const step_consts *k, float *m, float *v,
                                                        float *p, const float *g, size_t n, float wd)
{
    const size_t n8 = n & ~(size_t)7;
    const __m256 b1 = _mm256_set1_ps(k->b1), ob1 = _mm256_set1_ps(k->one_b1), b2 = _mm256_set1_ps(k->b2),
                 ob2 = _mm256_set1_ps(k->one_b2), eps = _mm256_set1_ps(k->eps), decay = _mm256_set1_ps(k->decay),
                 c2 = _mm256_set1_ps(k->c2_sqrt), step = _mm256_set1_ps(k->step);
    const int torch = opt->kind == XMCI_ADAMW_TORCH, decays = wd != 0, scaled = k->gscale != 1.0f;
    const __m256 gs = _mm256_set1_ps(k->gscale);
    for (size_t i = 0; i < n8; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
        if (scaled) gi = _mm256_mul_ps(gi, gs);
        if (torch && decays) pi = _mm256_mul_ps(pi, decay);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1), _mm256_mul_ps(gi, ob1));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2), _mm256_mul_ps(_mm256_mul_ps(ob2, gi), gi));
        __m256 root = _mm256_sqrt_ps(vi);
        __m256 denom = _mm256_add_ps(torch ? _mm256_div_ps(root, c2) : root, eps);
        pi = _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(step, mi), denom));
        if (!torch && decays) pi = _mm256_add_ps(pi, _mm256_mul_ps(pi, decay));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, pi);
    }
    return n8;
}
#endif

static void update_scalar(const xmci_adamw *opt, const step_consts *k, float *m, float *v, float *p, const float *g,
                          size_t n, float wd)
{
    const int scaled = k->gscale != 1.0f;
    if (opt->kind == XMCI_ADAMW_TORCH) {
        for (size_t i = 0; i < n; i++) {
            const float gi = scaled ? g[i] * k->gscale : g[i];
            if (wd != 0) p[i] *= k->decay;
            m[i] = m[i] * k->b1 + gi * k->one_b1;
            v[i] = v[i] * k->b2 + k->one_b2 * gi * gi;
            float denom = sqrtf(v[i]) / k->c2_sqrt + k->eps;
            p[i] += k->step * m[i] / denom;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const float gi = scaled ? g[i] * k->gscale : g[i];
            m[i] = m[i] * k->b1 + gi * k->one_b1;
            v[i] = v[i] * k->b2 + k->one_b2 * gi * gi;
            float denom = sqrtf(v[i]) + k->eps;
            p[i] += k->step * m[i] / denom;
            if (wd != 0) p[i] += p[i] * k->decay;
        }
    }
}

static void update_one(const xmci_adamw *opt, const step_consts *k, float *m, float *v, float *p, const float *g,
                       size_t n, float wd)
{
    size_t done = 0;
#ifdef ADAMW_X86
    if (__builtin_cpu_supports("avx")) done = update_avx(opt, k, m, v, p, g, n, wd);
#endif
    update_scalar(opt, k, m + done, v + done, p + done, g + done, n - done, wd);
}

/* One part of a span. */
typedef struct span_job {
    const xmci_adamw *opt;
    const step_consts *k;
    float *m, *v, *p;
    const float *g;
    size_t n;
    float wd;
} span_job;

/* A span's parts: each thread takes parts from a counter until none is left. */
typedef struct span_parts {
    span_job *part;
    int n;
    atomic_int next;
} span_parts;

static void *span_parts_thread(void *arg)
{
    span_parts *sp = arg;
    for (int i; (i = atomic_fetch_add(&sp->next, 1)) < sp->n;) {
        const span_job *j = &sp->part[i];
        update_one(j->opt, j->k, j->m, j->v, j->p, j->g, j->n, j->wd);
    }
    return NULL;
}

/* Each element is updated on its own, so splitting a span between threads changes no bit. Spans under 2^16
 * floats stay in the caller's thread (a thread costs more than they do). The parts go to the pool's threads when
 * there is one, else to threads started for this span (one that cannot start leaves its parts to the others). */
static void update_span(const xmci_adamw *opt, const step_consts *k, float *m, float *v, float *p, const float *g,
                        size_t n, float wd)
{
    int nt = opt->threads > 1 ? opt->threads : 1;
    if (opt->pool && nt > xmci_pool_threads(opt->pool)) nt = xmci_pool_threads(opt->pool);
    if (nt > XMCI_ADAMW_MAX_THREADS) nt = XMCI_ADAMW_MAX_THREADS;
    if (n < ((size_t)1 << 16)) nt = 1;
    if (nt == 1) {
        update_one(opt, k, m, v, p, g, n, wd);
        return;
    }
    span_job job[XMCI_ADAMW_MAX_THREADS];
    const size_t chunk = ((n + (size_t)nt - 1) / (size_t)nt + 7) & ~(size_t)7; /* nt chunks cover n */
    span_parts sp = {.part = job, .n = 0};
    for (size_t a = 0; a < n && sp.n < nt; a += chunk, sp.n++)
        job[sp.n] = (span_job){opt, k, m + a, v + a, p + a, g + a, (a + chunk < n ? a + chunk : n) - a, wd};
    atomic_init(&sp.next, 0);
    if (opt->pool) xmci_pool_run(opt->pool, span_parts_thread, &sp, sp.n);
    else xmci_parallel_run(span_parts_thread, &sp, sp.n);
}

xmc_err xmci_adamw_update(xmci_adamw *opt, size_t off, float *p, const float *g, size_t n, float lr, float wd,
                         xmc_error *err)
{
    if (off > opt->n || n > opt->n - off || opt->t < 1)
        return xmc_error_set(err, XMC_ERR_RANGE, "adamw: span [%zu, +%zu) of %zu moments at step %lld", off, n, opt->n,
                             (long long)opt->t);
    step_consts k = consts(opt, lr, wd);
    update_span(opt, &k, opt->m + off, opt->v + off, p, g, n, wd);
    return XMC_OK;
}

/* A list of rows in parts, as span_parts: each thread takes parts (ROWS_PART rows each) from a counter. */
#define ROWS_PART 64

typedef struct rows_parts {
    const xmci_adamw *opt;
    const step_consts *k;
    size_t off, cols, nrows;
    float *p;
    const float *g;
    const uint32_t *rows;
    float wd;
    atomic_size_t next;
} rows_parts;

static void *rows_parts_thread(void *arg)
{
    rows_parts *rp = arg;
    const xmci_adamw *opt = rp->opt;
    for (size_t a; (a = atomic_fetch_add(&rp->next, ROWS_PART)) < rp->nrows;) {
        const size_t end = a + ROWS_PART < rp->nrows ? a + ROWS_PART : rp->nrows;
        for (size_t i = a; i < end; i++) {
            const size_t at = (size_t)rp->rows[i] * rp->cols;
            update_one(opt, rp->k, opt->m + rp->off + at, opt->v + rp->off + at, rp->p + at, rp->g + at, rp->cols,
                       rp->wd);
        }
    }
    return NULL;
}

xmc_err xmci_adamw_update_rows(xmci_adamw *opt, size_t off, float *p, const float *g, size_t cols,
                              const uint32_t *rows, size_t nrows, float lr, float wd, xmc_error *err)
{
    for (size_t i = 0; i < nrows; i++)
        if (cols == 0 || off > opt->n || rows[i] >= (opt->n - off) / cols || opt->t < 1)
            return xmc_error_set(err, XMC_ERR_RANGE, "adamw: row %u of %zu columns outside %zu moments from %zu",
                                 rows[i], cols, opt->n, off);
    step_consts k = consts(opt, lr, wd);
    /* rows are updated on their own as spans are, so the threads change no bit; few floats stay in this thread */
    int nt = opt->threads > 1 ? opt->threads : 1;
    if (opt->pool && nt > xmci_pool_threads(opt->pool)) nt = xmci_pool_threads(opt->pool);
    if (nt > XMCI_ADAMW_MAX_THREADS) nt = XMCI_ADAMW_MAX_THREADS;
    if (nrows * cols < ((size_t)1 << 16) || nrows <= ROWS_PART) nt = 1;
    rows_parts rp = {.opt = opt, .k = &k, .off = off, .cols = cols, .nrows = nrows, .p = p, .g = g, .rows = rows,
                     .wd = wd};
    atomic_init(&rp.next, 0);
    if (nt == 1) rows_parts_thread(&rp);
    else if (opt->pool) xmci_pool_run(opt->pool, rows_parts_thread, &rp, nt);
    else xmci_parallel_run(rows_parts_thread, &rp, nt);
    return XMC_OK;
}

/* The sum of squares in double over CLIP_LANES partial sums: element i of a buffer goes to sum i % CLIP_LANES,
 * each sum taking its elements in buffer order, and the sums are added in a fixed tree at the end. Why lanes:
 * one running sum is a chain of dependent adds (4 cycles each), 10 ms a step over a 22 M-float encoder on one
 * core; eight independent ones run at the adder's throughput. What the lanes give: the same bits however the
 * buffers are cut, provided each cut falls at a multiple of CLIP_LANES floats, and pieces so cut that are all zero
 * may be left out, as they add +0 to every sum (bert_opt.c passes a table's rows that can be nonzero, of a width
 * that is such a multiple, and gets the whole table's sum). */
#define CLIP_LANES 8

double xmci_grad_norm(float *const *bufs, const size_t *lens, int k)
{
    double s[CLIP_LANES] = {0};
    for (int b = 0; b < k; b++) {
        const float *x = bufs[b];
        const size_t n = lens[b], n8 = n - n % CLIP_LANES;
        size_t i = 0;
#ifdef __SSE2__
        /* lanes (0, 1), (2, 3), (4, 5), (6, 7) in four registers: the scalar loop's multiplies and adds */
        __m128d a0 = _mm_loadu_pd(s), a1 = _mm_loadu_pd(s + 2), a2 = _mm_loadu_pd(s + 4), a3 = _mm_loadu_pd(s + 6);
        for (; i < n8; i += CLIP_LANES) {
            const __m128 lo = _mm_loadu_ps(x + i), hi = _mm_loadu_ps(x + i + 4);
            const __m128d d0 = _mm_cvtps_pd(lo), d1 = _mm_cvtps_pd(_mm_movehl_ps(lo, lo)), d2 = _mm_cvtps_pd(hi),
                          d3 = _mm_cvtps_pd(_mm_movehl_ps(hi, hi));
            a0 = _mm_add_pd(a0, _mm_mul_pd(d0, d0));
            a1 = _mm_add_pd(a1, _mm_mul_pd(d1, d1));
            a2 = _mm_add_pd(a2, _mm_mul_pd(d2, d2));
            a3 = _mm_add_pd(a3, _mm_mul_pd(d3, d3));
        }
        _mm_storeu_pd(s, a0);
        _mm_storeu_pd(s + 2, a1);
        _mm_storeu_pd(s + 4, a2);
        _mm_storeu_pd(s + 6, a3);
#endif
        for (; i < n8; i += CLIP_LANES)
            for (int j = 0; j < CLIP_LANES; j++) s[j] += (double)x[i + (size_t)j] * x[i + (size_t)j];
        for (i = n8; i < n; i++) s[i - n8] += (double)x[i] * x[i];
    }
    const double ss = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    return sqrt(ss);
}

float xmci_clip_coef(double norm, float max_norm)
{
    if (!(max_norm > 0)) return 1.0f;
    const float f = (float)((double)max_norm / (norm + 1e-6));
    return f < 1.0f ? f : 1.0f;
}

double xmci_clip_grad_norm(float *const *bufs, const size_t *lens, int k, float max_norm, float *coef)
{
    const double norm = xmci_grad_norm(bufs, lens, k);
    const float c = xmci_clip_coef(norm, max_norm);
    if (c < 1.0f)
        for (int b = 0; b < k; b++) {
            float *x = bufs[b];
            size_t i = 0;
#ifdef __SSE2__
            const __m128 cv = _mm_set1_ps(c);
            for (; i + 4 <= lens[b]; i += 4) _mm_storeu_ps(x + i, _mm_mul_ps(_mm_loadu_ps(x + i), cv));
#endif
            for (; i < lens[b]; i++) x[i] *= c;
        }
    if (coef) *coef = c;
    return norm;
}
