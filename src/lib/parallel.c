/* parallel.c: see parallel.h. */
#include "parallel.h"

#include <pthread.h>

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
