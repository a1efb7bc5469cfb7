/* parallel.c: see parallel.h. */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

void xmci_parallel_run(void *(*fn)(void *), void *arg, int threads)
{
    pthread_t th[XMC_MAX_THREADS];
    int n = 0;
    if (threads > XMC_MAX_THREADS) threads = XMC_MAX_THREADS;
    for (int i = 1; i < threads; i++)
        if (pthread_create(&th[n], NULL, fn, arg) == 0) n++;
    fn(arg);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

/* How long a worker (or the caller, for the others to finish) polls before it sleeps: long enough to bridge the
 * gap between two passes of a training step (microseconds of the caller's own work), short enough that a pool
 * left idle, or OpenBLAS's threads beside it, lose no more than this much of a core. */
#define POOL_SPIN_NS 100000

typedef struct pool_worker {
    struct xmci_pool *pool;
    int idx; /* 1..threads-1; the caller is 0 */
} pool_worker;

struct xmci_pool {
    int threads, started;
    pthread_t th[XMC_MAX_THREADS];
    pool_worker w[XMC_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    /* the job of generation gen: written by the caller before gen moves on, read by workers after they see it */
    void *(*fn)(void *);
    void *arg;
    int want;
    atomic_uint gen;
    atomic_int pending; /* workers yet to finish (or pass over) the current generation */
    atomic_int stop;    /* set before the generation that tells the workers to return */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Polls until pred(pool, v) is false, for up to POOL_SPIN_NS; returns 1 if it became false. */
static int spin_while(const struct xmci_pool *p, unsigned v, int (*pred)(const struct xmci_pool *, unsigned))
{
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        if (!pred(p, v)) return 1;
        POOL_PAUSE();
        if ((i & 255) == 255) { /* the clock every 256 polls: cheap beside them */
            uint64_t t = mono_ns();
            if (!t0) t0 = t;
            else if (t - t0 > POOL_SPIN_NS) return 0;
        }
    }
}

static int same_gen(const struct xmci_pool *p, unsigned seen)
{
    return atomic_load_explicit(&((struct xmci_pool *)p)->gen, memory_order_acquire) == seen;
}

static int busy(const struct xmci_pool *p, unsigned unused)
{
    (void)unused;
    return atomic_load_explicit(&((struct xmci_pool *)p)->pending, memory_order_acquire) > 0;
}

static void *pool_main(void *arg)
{
    pool_worker *w = arg;
    struct xmci_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        if (!spin_while(p, seen, same_gen)) {
            pthread_mutex_lock(&p->mu);
            while (same_gen(p, seen)) pthread_cond_wait(&p->work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL; /* ordered by gen's acquire */
        if (w->idx < p->want) p->fn(p->arg);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void pool_stop(xmci_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->th[i], NULL);
}

xmc_err xmci_pool_new(int threads, xmci_pool **out, xmc_error *err)
{
    *out = NULL;
    if (threads < 1 || threads > XMC_MAX_THREADS)
        return xmc_error_set(err, XMC_ERR_ARG, "thread pool: %d threads (1..%d)", threads, XMC_MAX_THREADS);
    xmci_pool *p = calloc(1, sizeof *p);
    if (!p) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory for a thread pool");
    p->threads = threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return xmc_error_set(err, XMC_ERR_NOMEM, "thread pool: cannot make a mutex");
    }
    if (pthread_cond_init(&p->work, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return xmc_error_set(err, XMC_ERR_NOMEM, "thread pool: cannot make a condition variable");
    }
    if (pthread_cond_init(&p->done, NULL)) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return xmc_error_set(err, XMC_ERR_NOMEM, "thread pool: cannot make a condition variable");
    }
    for (int i = 1; i < threads; i++) {
        p->w[i] = (pool_worker){p, i};
        int e = pthread_create(&p->th[p->started], NULL, pool_main, &p->w[i]);
        if (e) {
            xmci_pool_free(p);
            return xmc_error_set(err, XMC_ERR_IO, "thread pool: cannot start thread %d of %d: %s", i + 1, threads,
                                 strerror(e));
        }
        p->started++;
    }
    *out = p;
    return XMC_OK;
}

void xmci_pool_free(xmci_pool *p)
{
    if (!p) return;
    pool_stop(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int xmci_pool_threads(const xmci_pool *p) { return p ? p->threads : 1; }

void xmci_pool_run(xmci_pool *p, void *(*fn)(void *), void *arg, int threads)
{
    if (!p || p->started == 0 || threads <= 1) {
        fn(arg);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->want = threads;
    /* every worker takes part in every generation (those at or above want just count down), so none can be
     * left reading this job's fields when the next is written */
    atomic_store_explicit(&p->pending, p->started, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    fn(arg);
    if (!spin_while(p, 0, busy)) {
        pthread_mutex_lock(&p->mu);
        while (busy(p, 0)) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
