/* test_parallel.c: xmci_parallel_run and the thread pool: every share of the work is done once, on as many
 * distinct threads as asked (never more than the pool has), runs after one another see each other's writes, a
 * pool that slept between runs wakes for the next, and bad sizes are refused. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "testutil.h"

#define ITEMS 10000

typedef struct job {
    atomic_int next;
    int *hits;        /* hits[i]: how many times item i was done */
    int *from;        /* item i's value read from the previous run's output */
    const int *prev;
    atomic_int seen;  /* distinct threads that ran fn */
    pthread_t ids[XMC_MAX_THREADS];
    pthread_mutex_t mu;
} job;

static void *work(void *arg)
{
    job *j = arg;
    pthread_t me = pthread_self();
    pthread_mutex_lock(&j->mu);
    int n = atomic_load(&j->seen), known = 0;
    for (int i = 0; i < n; i++) known |= pthread_equal(j->ids[i], me);
    if (!known && n < XMC_MAX_THREADS) {
        j->ids[n] = me;
        atomic_store(&j->seen, n + 1);
    }
    pthread_mutex_unlock(&j->mu);
    /* small items from a counter: every thread gets some only if it started at once */
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < ITEMS;) {
        j->hits[i]++;
        if (j->prev) j->from[i] = j->prev[i] + 1;
        struct timespec ts = {0, 1000};
        if (i % 500 == 0) nanosleep(&ts, NULL); /* let the other threads in */
    }
    return NULL;
}

static int run_once(int use_pool, xmci_pool *pool, int want, int *hits, int *from, const int *prev)
{
    job j = {.hits = hits, .from = from, .prev = prev};
    atomic_init(&j.next, 0);
    atomic_init(&j.seen, 0);
    pthread_mutex_init(&j.mu, NULL);
    memset(hits, 0, ITEMS * sizeof *hits);
    if (use_pool) xmci_pool_run(pool, work, &j, want);
    else xmci_parallel_run(work, &j, want);
    pthread_mutex_destroy(&j.mu);
    for (int i = 0; i < ITEMS; i++) CU_ASSERT_EQUAL_FATAL(hits[i], 1);
    return atomic_load(&j.seen);
}

static int hits[ITEMS], a[ITEMS], b[ITEMS];

static void test_parallel_run(void)
{
    CU_ASSERT(run_once(0, NULL, 1, hits, a, NULL) == 1);
    CU_ASSERT(run_once(0, NULL, 3, hits, a, NULL) <= 3);
}

static void test_pool_runs(void)
{
    xmc_error err = {0};
    xmci_pool *pool = NULL;
    CU_ASSERT_FATAL(xmci_pool_new(3, &pool, &err) == XMC_OK);
    CU_ASSERT_EQUAL(xmci_pool_threads(pool), 3);
    for (int i = 0; i < ITEMS; i++) a[i] = i;
    /* 200 runs back to back, each reading the one before's output: a worker that ran late or twice, or a run
     * that returned before its workers were done, shows as a wrong count or value */
    int most = 0;
    for (int r = 0; r < 200; r++) {
        int *in = r % 2 ? b : a, *out = r % 2 ? a : b;
        int want = 1 + r % 4; /* 4 is more than the pool: 3 are used */
        int seen = run_once(1, pool, want, hits, out, in);
        CU_ASSERT(seen >= 1 && seen <= (want < 3 ? want : 3));
        if (seen > most) most = seen;
    }
    for (int i = 0; i < ITEMS; i++) CU_ASSERT_EQUAL_FATAL(a[i], i + 200);
    CU_ASSERT(most > 1); /* the workers did take part */
    /* long enough idle for the workers to sleep: the next run wakes them */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CU_ASSERT(run_once(1, pool, 3, hits, b, a) >= 1);
    for (int i = 0; i < ITEMS; i++) CU_ASSERT_EQUAL_FATAL(b[i], i + 201);
    xmci_pool_free(pool);
}

static void test_pool_sizes(void)
{
    xmc_error err = {0};
    xmci_pool *pool = (xmci_pool *)&err;
    CU_ASSERT(xmci_pool_new(0, &pool, &err) == XMC_ERR_ARG);
    CU_ASSERT(pool == NULL);
    CU_ASSERT(strstr(err.msg, "0 threads") != NULL);
    CU_ASSERT(xmci_pool_new(XMC_MAX_THREADS + 1, &pool, &err) == XMC_ERR_ARG);
    /* one thread: no workers, runs on the caller */
    CU_ASSERT_FATAL(xmci_pool_new(1, &pool, &err) == XMC_OK);
    CU_ASSERT(run_once(1, pool, 4, hits, a, NULL) == 1);
    xmci_pool_free(pool);
    /* NULL: the caller alone; freeing NULL is a no-op */
    CU_ASSERT_EQUAL(xmci_pool_threads(NULL), 1);
    CU_ASSERT(run_once(1, NULL, 4, hits, a, NULL) == 1);
    xmci_pool_free(NULL);
    /* a pool made and freed without a run */
    CU_ASSERT_FATAL(xmci_pool_new(4, &pool, &err) == XMC_OK);
    xmci_pool_free(pool);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("parallel", NULL, NULL);
    TU_ADD(s, test_parallel_run);
    TU_ADD(s, test_pool_runs);
    TU_ADD(s, test_pool_sizes);
    return tu_run(argc, argv);
}
