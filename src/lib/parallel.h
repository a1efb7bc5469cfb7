/* parallel.h: run one worker function on several threads at once, the caller's thread included.
 *
 * Workers share one job struct and take work from it themselves (an atomic counter), so that fast threads
 * take more. Two ways to get the threads:
 *  - xmci_parallel_run starts them for one call and joins them after: for work that runs once or a few times
 *    (a training layer, a featurizer pass); a thread that cannot be created just leaves its share to the others.
 *  - an xmci_pool keeps them between calls: for work cut into many short passes (the encoder's training step runs
 *    some 170 a step), where starting and joining a thread per pass cost more than the pass's share (and each
 *    exit handed the thread's stack back to the kernel, to be faulted in again by the next). Its workers wait for
 *    the next pass spinning for a short while, then asleep, so an idle pool costs no CPU. */
#ifndef XMCI_PARALLEL_H
#define XMCI_PARALLEL_H

#include "xmc/xmc.h" /* XMC_MAX_THREADS: one limit for the library and its callers */

/* Runs fn(arg) on `threads` threads (clamped to 1..XMC_MAX_THREADS) and waits for all of them. */
void xmci_parallel_run(void *(*fn)(void *), void *arg, int threads);

typedef struct xmci_pool xmci_pool;

/* A pool of `threads` threads, the caller's counted (so threads - 1 are started; 1 starts none).
 * XMC_ERR_ARG outside 1..XMC_MAX_THREADS, XMC_ERR_NOMEM / XMC_ERR_IO when memory or a thread cannot be had. */
xmc_err xmci_pool_new(int threads, xmci_pool **out, xmc_error *err);
/* Stops and joins the workers. NULL is a no-op. Not while a run is in progress. */
void xmci_pool_free(xmci_pool *pool);
/* The pool's thread count, the caller's included; 1 for NULL. */
int xmci_pool_threads(const xmci_pool *pool);
/* Runs fn(arg) on min(threads, the pool's) threads, the caller's one of them, and returns when all have
 * returned. A NULL pool runs fn(arg) on the caller's thread alone. One run at a time per pool. */
void xmci_pool_run(xmci_pool *pool, void *(*fn)(void *), void *arg, int threads);

#endif
