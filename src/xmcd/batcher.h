/* batcher.h: the micro-batch between the consumer and the plugin: up to max records or max wait.
 *
 * A batch is due when it holds max_records records or when its first record has waited max_wait_ms. It
 * holds xmcd_rec pointers (not owned: records are owned by the pipeline until acknowledged). */
#ifndef XMCD_BATCHER_H
#define XMCD_BATCHER_H

#include <stddef.h>
#include <stdint.h>

typedef struct xmcd_rec xmcd_rec;

typedef struct xmcd_batch {
    xmcd_rec **recs;
    size_t n, cap;
    uint64_t first_ns; /* when the first record arrived */
} xmcd_batch;

/* Appends rec (grows the array). Returns 0 or -1 on no memory. */
int xmcd_batch_add(xmcd_batch *batch, xmcd_rec *rec, uint64_t now_ns);
/* 1 when the batch should be processed now. */
int xmcd_batch_due(const xmcd_batch *batch, int max_records, int max_wait_ms, uint64_t now_ns);
/* Milliseconds until the batch is due by time (0 if due, -1 if empty). */
int xmcd_batch_wait_ms(const xmcd_batch *batch, int max_wait_ms, uint64_t now_ns);
void xmcd_batch_clear(xmcd_batch *batch);
void xmcd_batch_free(xmcd_batch *batch);

#endif
