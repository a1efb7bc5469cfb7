/* parallel.h: run one worker function on several threads at once, the caller's thread included.
 *
 * Workers share one job struct and take work from it themselves (an atomic counter), so that fast threads
 * take more; a thread that cannot be created just leaves its share to the others. */
#ifndef XMCI_PARALLEL_H
#define XMCI_PARALLEL_H

#include "xmc/xmc.h" /* XMC_MAX_THREADS: one limit for the library and its callers */

/* Runs fn(arg) on `threads` threads (clamped to 1..XMC_MAX_THREADS) and waits for all of them. */
void xmci_parallel_run(void *(*fn)(void *), void *arg, int threads);

#endif
