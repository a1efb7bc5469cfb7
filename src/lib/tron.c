/* tron.c: primal Newton-CG solver for the L2-loss SVM (see tron.h).
 *
 * Vectors over features (w, gradient g, preconditioner m, step s, CG residual r, direction d, H d, z = r/m)
 * are dense float arrays indexed by feature id, but only the features some instance of the problem has
 * (the "touched" list, sorted ascending) are ever read or written: every other entry of every vector stays
 * zero throughout, so leaving them out changes no sum. Per-instance arrays (w.x_i, s.x_i, the active set and
 * its gradient coefficients) are indexed by position in inst[]. The bias weight and its partners in each
 * vector (b, bg, bm, bs, br, bd, bhd, bz) are scalars beside the arrays.
 *
 * Rounding follows PECOS's float32 build on purpose: vector entries are float, dot products accumulate in
 * float in ascending feature order, axpy with a double scale is computed in double and rounded once, and the
 * scalars of the outer loop (f, step size, CG's alpha/beta, norms) are double. Newton with a 1% gradient
 * tolerance stops far from the exact optimum, so where it stops depends on the path: matching the rounding
 * keeps our path on PECOS's. */
#include "tron.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void xmci_tron_params_default(xmci_tron_params *p)
{
    p->cp = 1.0;
    p->cn = 1.0;
    p->eps = 0.01;
    p->max_iter = 1000;
    p->bias = 1.0f;
    p->threshold = 0.1f;
}

struct xmci_tron_ws {
    uint32_t nr_features, max_inst;
    /* feature-indexed, only touched entries live */
    float *w, *g, *m, *s, *r, *d, *hd, *z;
    uint32_t *stamp, gen;
    uint32_t *touched;
    /* position-indexed */
    float *wx;          /* w.x_i + b*bias */
    float *sx;          /* s.x_i + bs*bias (line search) */
    float *coef;        /* gradient coefficient of the k-th active instance */
    uint32_t *act;      /* positions of the active instances */
    uint32_t *out_idx;
    float *out_val;
    xmci_tron_stats stats;
};

xmc_err xmci_tron_ws_new(uint32_t nr_features, uint32_t max_inst, xmci_tron_ws **out, xmc_error *err)
{
    xmci_tron_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    size_t f = (size_t)nr_features + 1, n = max_inst ? max_inst : 1;
    ws->nr_features = nr_features;
    ws->max_inst = max_inst;
    float **fv[] = {&ws->w, &ws->g, &ws->m, &ws->s, &ws->r, &ws->d, &ws->hd, &ws->z, &ws->out_val};
    int ok = 1;
    for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) ok &= (*fv[i] = calloc(f, sizeof(float))) != NULL;
    ws->stamp = calloc(f, sizeof *ws->stamp);
    ws->touched = malloc(f * sizeof *ws->touched);
    ws->out_idx = malloc(f * sizeof *ws->out_idx);
    ws->wx = malloc(n * sizeof *ws->wx);
    ws->sx = malloc(n * sizeof *ws->sx);
    ws->coef = malloc(n * sizeof *ws->coef);
    ws->act = malloc(n * sizeof *ws->act);
    if (!ok || !ws->stamp || !ws->touched || !ws->out_idx || !ws->wx || !ws->sx || !ws->coef || !ws->act) {
        xmci_tron_ws_free(ws);
        return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for solver scratch (%u features, %u instances)",
                             nr_features, max_inst);
    }
    *out = ws;
    return XMC_OK;
}

void xmci_tron_ws_free(xmci_tron_ws *ws)
{
    if (!ws) return;
    free(ws->w);
    free(ws->g);
    free(ws->m);
    free(ws->s);
    free(ws->r);
    free(ws->d);
    free(ws->hd);
    free(ws->z);
    free(ws->out_val);
    free(ws->stamp);
    free(ws->touched);
    free(ws->out_idx);
    free(ws->wx);
    free(ws->sx);
    free(ws->coef);
    free(ws->act);
    free(ws);
}

void xmci_tron_last_stats(const xmci_tron_ws *ws, xmci_tron_stats *st)
{
    *st = ws->stats;
}

/* ---- the pieces of the objective ------------------------------------------------------------------------ */

/* One solve's view: the problem, its touched features and the workspace. */
typedef struct {
    const xmci_csr *x;
    const uint32_t *inst;
    const int8_t *y;
    uint32_t n, nt;
    const uint32_t *t;      /* touched features, ascending */
    double bias;            /* > 0: bias feature present */
    float cp, cn;           /* per-class costs as float, as PECOS stores them */
    xmci_tron_ws *ws;
    uint32_t nact;          /* active set size after the last gradient */
} prob;

static inline float cost(const prob *P, uint32_t k) { return P->y[k] > 0 ? P->cp : P->cn; }

/* a . b over the touched features, float accumulation in feature order (zeros elsewhere add nothing) */
static float dot_t(const prob *P, const float *a, const float *b)
{
    float acc = 0;
    for (uint32_t j = 0; j < P->nt; j++) acc += a[P->t[j]] * b[P->t[j]];
    return acc;
}

/* v . x_r, float accumulation along the row */
static float dot_row(const prob *P, const float *v, uint32_t r)
{
    const xmci_csr *x = P->x;
    float acc = 0;
    for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) acc += v[x->indices[q]] * x->data[q];
    return acc;
}

/* loss of one instance at margin value t: C (1 - y t)^2 when positive */
static inline double c_times_loss(const prob *P, uint32_t k, double t)
{
    double d = 1.0 - (double)P->y[k] * t;
    return d > 0 ? (double)cost(P, k) * d * d : 0.0;
}

/* out_k = v . x_k (+ bv * bias), rounded to float in two steps as PECOS's Xv does */
static void xv(const prob *P, const float *v, float bv, float *out)
{
    for (uint32_t k = 0; k < P->n; k++) {
        float t = dot_row(P, v, P->inst[k]);
        if (P->bias > 0) t = (float)((double)t + P->bias * (double)bv);
        out[k] = t;
    }
}

/* Gradient at the current w (wx up to date); also fixes the active set the Hessian and preconditioner use. */
static void grad(prob *P, float b, float *bg)
{
    xmci_tron_ws *ws = P->ws;
    const xmci_csr *x = P->x;
    uint32_t na = 0;
    for (uint32_t k = 0; k < P->n; k++) {
        float yf = (float)P->y[k];
        float t = ws->wx[k] * yf;
        if (t < 1) {
            ws->coef[na] = cost(P, k) * yf * (t - 1);
            ws->act[na++] = k;
        }
    }
    P->nact = na;
    for (uint32_t j = 0; j < P->nt; j++) ws->g[P->t[j]] = 0;
    float gb = 0;
    for (uint32_t a = 0; a < na; a++) {
        uint32_t r = P->inst[ws->act[a]];
        float c = ws->coef[a];
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) ws->g[x->indices[q]] += c * x->data[q];
        if (P->bias > 0) gb = (float)((double)gb + P->bias * (double)c);
    }
    for (uint32_t j = 0; j < P->nt; j++) {
        uint32_t f = P->t[j];
        ws->g[f] = ws->w[f] + 2 * ws->g[f];
    }
    *bg = P->bias > 0 ? b + 2 * gb : gb;
}

/* diag(H) over the active set, blended 1% toward it from the identity (liblinear's alpha_pcg) */
static void preconditioner(const prob *P, float *bm)
{
    xmci_tron_ws *ws = P->ws;
    const xmci_csr *x = P->x;
    for (uint32_t j = 0; j < P->nt; j++) ws->m[P->t[j]] = 1;
    float mb = 1;
    for (uint32_t a = 0; a < P->nact; a++) {
        uint32_t k = ws->act[a];
        uint32_t r = P->inst[k];
        float c2 = 2 * cost(P, k);
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++)
            ws->m[x->indices[q]] += x->data[q] * x->data[q] * c2;
        if (P->bias > 0) mb = (float)((double)mb + P->bias * P->bias * 2 * (double)cost(P, k));
    }
    const double alpha_pcg = 0.01;
    for (uint32_t j = 0; j < P->nt; j++) {
        uint32_t f = P->t[j];
        ws->m[f] = (float)((1 - alpha_pcg) + alpha_pcg * ws->m[f]);
    }
    *bm = (float)((1 - alpha_pcg) + alpha_pcg * mb);
}

/* hv = H v = v + 2 sum_{active} C_i (x_i . v) x_i, with the bias coordinate bv / *bhv */
static void hess_vec(const prob *P, const float *v, float bv, float *hv, float *bhv)
{
    xmci_tron_ws *ws = P->ws;
    const xmci_csr *x = P->x;
    for (uint32_t j = 0; j < P->nt; j++) hv[P->t[j]] = 0;
    float hb = 0;
    for (uint32_t a = 0; a < P->nact; a++) {
        uint32_t k = ws->act[a];
        uint32_t r = P->inst[k];
        double xt = dot_row(P, v, r);
        if (P->bias > 0) xt += P->bias * (double)bv;
        xt = (double)cost(P, k) * xt;
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) {
            uint32_t f = x->indices[q];
            hv[f] = (float)((double)hv[f] + xt * (double)x->data[q]);
        }
        if (P->bias > 0) hb = (float)((double)hb + xt * P->bias);
    }
    for (uint32_t j = 0; j < P->nt; j++) {
        uint32_t f = P->t[j];
        hv[f] = v[f] + 2 * hv[f];
    }
    *bhv = bv + 2 * hb;
}

/* ---- conjugate gradients ---------------------------------------------------------------------------------- */

/* Approximately solves H s = -g, preconditioned by m; stops on liblinear's quadratic-decrease rule
 * (cg_iter * (Q_new - Q_old) >= cgtol * Q_new, cgtol = min(eps_cg, sqrt |g|_{M^-1})), when the curvature
 * along d vanishes, or after max(nr_features + bias, 5) iterations. Returns the iterations done. */
static int pcg(const prob *P, float bg, float bm, float *bs_out)
{
    xmci_tron_ws *ws = P->ws;
    float *s = ws->s, *r = ws->r, *d = ws->d, *hd = ws->hd, *z = ws->z;
    const float *g = ws->g, *m = ws->m;
    const int has_bias = P->bias > 0;
    const double eps_cg = 0.5;
    float bs = 0, br = 0, bz = 0, bd = 0, bhd = 0;
    for (uint32_t j = 0; j < P->nt; j++) {
        uint32_t f = P->t[j];
        s[f] = 0;
        r[f] = -g[f];
        z[f] = r[f] / m[f];
        d[f] = z[f];
    }
    if (has_bias) {
        br = -bg;
        bz = br / bm;
        bd = bz;
    }
    double ztr = dot_t(P, z, r);
    if (has_bias) ztr += (double)bz * br;
    double cgtol = sqrt(sqrt(ztr));
    if (eps_cg < cgtol) cgtol = eps_cg;
    const long max_cg = (long)P->x->cols + has_bias > 5 ? (long)P->x->cols + has_bias : 5;
    double q = 0;
    long it = 0;
    while (it < max_cg) {
        it++;
        hess_vec(P, d, bd, hd, &bhd);
        double dhd = dot_t(P, d, hd);
        if (has_bias) dhd += (double)bd * bhd;
        if (dhd <= 1.0e-16) break;
        double alpha = ztr / dhd;
        for (uint32_t j = 0; j < P->nt; j++) {
            uint32_t f = P->t[j];
            s[f] = (float)((double)s[f] + alpha * (double)d[f]);
        }
        if (has_bias) bs = (float)((double)bs + alpha * (double)bd);
        alpha = -alpha;
        for (uint32_t j = 0; j < P->nt; j++) {
            uint32_t f = P->t[j];
            r[f] = (float)((double)r[f] + alpha * (double)hd[f]);
        }
        if (has_bias) br = (float)((double)br + alpha * (double)bhd);
        /* Q(s) = g.s + 1/2 s.H s = -1/2 (s.r - s.g), since r = -g - H s; the difference of the two float
         * dot products is itself taken in float, as PECOS does */
        float srsg = dot_t(P, s, r) - dot_t(P, s, g);
        double qnew = -0.5 * (double)srsg;
        if (has_bias) qnew -= 0.5 * (double)(bs * br - bs * bg);
        double qdiff = qnew - q;
        if (!(qnew <= 0 && qdiff <= 0)) break; /* not a descent model any more: keep what we have */
        if ((double)it * qdiff >= cgtol * qnew) break;
        q = qnew;
        for (uint32_t j = 0; j < P->nt; j++) {
            uint32_t f = P->t[j];
            z[f] = r[f] / m[f];
        }
        if (has_bias) bz = br / bm;
        double znew = dot_t(P, z, r);
        if (has_bias) znew += (double)bz * br;
        double beta = znew / ztr;
        for (uint32_t j = 0; j < P->nt; j++) {
            uint32_t f = P->t[j];
            d[f] = (float)((double)d[f] + (beta - 1.0) * (double)d[f]);
            d[f] = (float)((double)d[f] + (double)z[f]);
        }
        if (has_bias) {
            bd = (float)((double)bd * beta);
            bd = (float)((double)bd + (double)bz);
        }
        ztr = znew;
    }
    *bs_out = bs;
    return (int)it;
}

/* ---- line search ------------------------------------------------------------------------------------------ */

/* Backtracking from step 1 along s until f drops by at least 1% of the predicted decrease (Armijo), at most
 * 20 halvings. The objective along the line is exact and cheap: the margins move as wx + a sx, and
 * |w + a s|^2 = wTw + 2a wTs + a^2 sTs. On success updates w, b, wx, *wtw and *f, returns the step;
 * otherwise returns 0 and leaves everything as it was. */
static double line_search(prob *P, double *f, double *wtw, float *b, float bs, float bg)
{
    xmci_tron_ws *ws = P->ws;
    const double eta = 0.01;
    const double fold = *f;
    xv(P, ws->s, bs, ws->sx);
    double sts = dot_t(P, ws->s, ws->s), wts = dot_t(P, ws->s, ws->w), gts = dot_t(P, ws->s, ws->g);
    if (P->bias > 0) {
        sts += (double)bs * bs;
        wts += (double)bs * *b;
        gts += (double)bs * bg;
    }
    double alpha = 1;
    int tries;
    for (tries = 0; tries < 20; tries++) {
        double loss = 0;
        for (uint32_t k = 0; k < P->n; k++) loss += c_times_loss(P, k, (double)ws->sx[k] * alpha + (double)ws->wx[k]);
        double fn = loss + (alpha * alpha * sts + *wtw) / 2.0 + alpha * wts;
        if (fn - fold <= eta * alpha * gts) {
            *f = fn;
            for (uint32_t k = 0; k < P->n; k++) ws->wx[k] = (float)((double)ws->wx[k] + alpha * (double)ws->sx[k]);
            break;
        }
        alpha *= 0.5;
    }
    if (tries >= 20) return 0;
    for (uint32_t j = 0; j < P->nt; j++) {
        uint32_t fid = P->t[j];
        ws->w[fid] = (float)((double)ws->w[fid] + alpha * (double)ws->s[fid]);
    }
    *b = (float)((double)*b + alpha * (double)bs);
    *wtw += alpha * alpha * sts + 2 * alpha * wts;
    return alpha;
}

/* |g|, with the bias coordinate (zero when there is none) */
static double gnorm(const prob *P, float bg)
{
    double acc = 0;
    for (uint32_t j = 0; j < P->nt; j++) {
        float v = P->ws->g[P->t[j]];
        acc += (double)v * v;
    }
    acc += (double)bg * bg;
    return sqrt(acc);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ---- the solve -------------------------------------------------------------------------------------------- */

uint32_t xmci_tron_solve(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                        const xmci_tron_params *p, xmci_tron_ws *ws, const uint32_t **out_idx, const float **out_val)
{
    return xmci_tron_solve_from(x, inst, y, n, p, NULL, NULL, 0, 0, ws, out_idx, out_val);
}

uint32_t xmci_tron_solve_from(const xmci_csr *x, const uint32_t *inst, const int8_t *y, uint32_t n,
                             const xmci_tron_params *p, const uint32_t *w0_idx, const float *w0_val, uint32_t w0_n,
                             float b0, xmci_tron_ws *ws, const uint32_t **out_idx, const float **out_val)
{
    /* list the features this problem can touch, ascending so that sums run in PECOS's order */
    if (++ws->gen == 0) { memset(ws->stamp, 0, ((size_t)ws->nr_features + 1) * sizeof *ws->stamp); ws->gen = 1; }
    uint32_t nt = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t r = inst[k];
        for (uint64_t q = x->indptr[r]; q < x->indptr[r + 1]; q++) {
            uint32_t f = x->indices[q];
            if (ws->stamp[f] != ws->gen) { ws->stamp[f] = ws->gen; ws->touched[nt++] = f; }
        }
    }
    qsort(ws->touched, nt, sizeof *ws->touched, cmp_u32);
    prob P = {.x = x, .inst = inst, .y = y, .n = n, .nt = nt, .t = ws->touched,
              .bias = p->bias > 0 ? (double)p->bias : 0.0, .cp = (float)p->cp, .cn = (float)p->cn, .ws = ws};
    memset(&ws->stats, 0, sizeof ws->stats);

    /* w = 0: every margin is 0 (b too) and f = sum of the costs */
    for (uint32_t j = 0; j < nt; j++) ws->w[ws->touched[j]] = 0;
    float b = 0, bg, bs, bm;
    double f = 0, wtw = 0;
    for (uint32_t k = 0; k < n; k++) {
        ws->wx[k] = 0;
        f += c_times_loss(&P, k, 0.0);
    }
    grad(&P, b, &bg);
    const double gnorm0 = gnorm(&P, bg);
    double gn = gnorm0;
    /* a warm start: w0 on the touched features (the others would only be pulled to 0 by the regulariser), b0 for
     * the bias; the tolerance stays relative to |g(0)|, as liblinear's Newton does, so a good start stops early */
    if (w0_n || b0 != 0) {
        for (uint32_t e = 0; e < w0_n; e++)
            if (w0_idx[e] < x->cols && ws->stamp[w0_idx[e]] == ws->gen) ws->w[w0_idx[e]] = w0_val[e];
        b = P.bias > 0 ? b0 : 0;
        xv(&P, ws->w, b, ws->wx);
        f = 0;
        for (uint32_t k = 0; k < n; k++) f += c_times_loss(&P, k, (double)ws->wx[k]);
        wtw = (double)dot_t(&P, ws->w, ws->w) + (double)b * b;
        f += wtw / 2.0;
        grad(&P, b, &bg);
        gn = gnorm(&P, bg);
    }
    /* PECOS computes |g(0)| and |g(w_start)| separately; from w_start = 0 they are equal, so the test below
     * only skips problems whose gradient vanishes at 0 (no instances) or when eps >= 1 */
    int search = !(gn <= p->eps * gnorm0);
    for (int iter = 1; search && iter <= p->max_iter; iter++) {
        preconditioner(&P, &bm);
        ws->stats.cg_iters += pcg(&P, bg, bm, &bs);
        double fold = f;
        if (line_search(&P, &f, &wtw, &b, bs, bg) == 0) break;
        ws->stats.newton_iters++;
        grad(&P, b, &bg);
        gn = gnorm(&P, bg);
        if (gn <= p->eps * gnorm0) break;
        if (f < -1.0e+32) break;
        if (fabs(fold - f) <= 1.0e-12 * fabs(f)) break;
    }
    ws->stats.f = f;
    ws->stats.gnorm0 = gnorm0;
    ws->stats.gnorm = gn;

    /* kept weights in feature order (touched is sorted), then the bias */
    uint32_t m = 0;
    for (uint32_t j = 0; j < nt; j++) {
        uint32_t fid = ws->touched[j];
        if (fabsf(ws->w[fid]) >= p->threshold) {
            ws->out_idx[m] = fid;
            ws->out_val[m++] = ws->w[fid];
        }
    }
    if (p->bias > 0 && fabsf(b) >= p->threshold) { ws->out_idx[m] = x->cols; ws->out_val[m] = b; m++; }
    *out_idx = ws->out_idx;
    *out_val = ws->out_val;
    return m;
}
