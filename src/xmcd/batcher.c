/* batcher.c: the micro-batch (max records, max wait); see batcher.h.
 *
 * A growable array of record pointers plus the arrival time of its first record, from which the time
 * trigger is computed. */
#include "batcher.h"

#include <stdlib.h>

int xmcd_batch_add(xmcd_batch *batch, xmcd_rec *rec, uint64_t now_ns)
{
    if (batch->n == batch->cap) {
        size_t cap = batch->cap ? batch->cap * 2 : 256;
        xmcd_rec **recs = realloc(batch->recs, cap * sizeof *recs);
        if (!recs) return -1;
        batch->recs = recs;
        batch->cap = cap;
    }
    if (batch->n == 0) batch->first_ns = now_ns;
    batch->recs[batch->n++] = rec;
    return 0;
}

int xmcd_batch_due(const xmcd_batch *batch, int max_records, int max_wait_ms, uint64_t now_ns)
{
    if (batch->n == 0) return 0;
    if (batch->n >= (size_t)max_records) return 1;
    return now_ns - batch->first_ns >= (uint64_t)max_wait_ms * 1000000u;
}

int xmcd_batch_wait_ms(const xmcd_batch *batch, int max_wait_ms, uint64_t now_ns)
{
    if (batch->n == 0) return -1;
    uint64_t waited = (now_ns - batch->first_ns) / 1000000u;
    return waited >= (uint64_t)max_wait_ms ? 0 : (int)((uint64_t)max_wait_ms - waited);
}

void xmcd_batch_clear(xmcd_batch *batch) { batch->n = 0; }

void xmcd_batch_free(xmcd_batch *batch)
{
    free(batch->recs);
    batch->recs = NULL;
    batch->n = batch->cap = 0;
}
