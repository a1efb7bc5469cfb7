/* txn.c: exactly-once mode: each batch is one Kafka transaction holding its outputs, its dead-letter copies
 * and its consumed offsets (send_offsets_to_transaction), so they become visible and committed together.
 *
 * Error classes follow librdkafka's transactional API: a retriable error repeats the same call (with a short
 * backoff, bounded by delivery.drain_deadline_ms); an error that requires abort aborts the transaction and
 * rewinds the consumer to the batch's first offsets (everything before them was committed by earlier
 * transactions), so the batch is consumed and processed again; a fatal error (including a fenced producer)
 * stops the daemon without committing anything more. Each call and outcome is one logfmt event. The embedded
 * mock cluster shows only this call sequence: it neither hides aborted records nor stores the offsets. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "xmcd.h"

typedef enum { XMCD_TXN_OK = 0, XMCD_TXN_ABORT = 1, XMCD_TXN_FATAL = -1 } xmcd_txn_rc;

/* Classifies err (consumed). Retriable errors are retried by the caller; returns the outcome otherwise. */
static xmcd_txn_rc xmcd_txn_class(xmcd *d, rd_kafka_error_t *error, const char *call, int *retry)
{
    *retry = 0;
    if (!error) return XMCD_TXN_OK;
    int fatal = rd_kafka_error_is_fatal(error), abortable = rd_kafka_error_txn_requires_abort(error);
    int retriable = rd_kafka_error_is_retriable(error);
    /* a fatal error other than fencing may be restarted from (main.c): on Kafka < 2.5 librdkafka makes errors
     * fatal that newer brokers let it recover from (KIP-360) */
    if (fatal && !xmcd_fenced_error(rd_kafka_error_code(error))) d->kafka_fatal = 1;
    xmcd_log(fatal ? XMCD_LOG_ERROR : XMCD_LOG_WARN, "txn_error", "call=%s error=%s reason=%s class=%s", call,
             rd_kafka_error_name(error), xmcd_log_q(rd_kafka_error_string(error)),
             fatal ? "fatal" : abortable ? "abortable" : retriable ? "retriable" : "unknown");
    rd_kafka_error_destroy(error);
    if (fatal) return XMCD_TXN_FATAL;
    if (abortable) return XMCD_TXN_ABORT;
    if (retriable) {
        *retry = 1;
        return XMCD_TXN_OK;
    }
    return XMCD_TXN_FATAL; /* unknown: treated as fatal */
}

static int xmcd_txn_timeout_ms(const xmcd *d) { return d->conf->drain_deadline_ms; }

int xmcd_txn_init(xmcd *d)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int retry;
        xmcd_txn_rc rc = xmcd_txn_class(d, rd_kafka_init_transactions(d->producer, xmcd_txn_timeout_ms(d)),
                                        "init_transactions", &retry);
        if (rc == XMCD_TXN_OK && !retry) {
            xmcd_log(XMCD_LOG_INFO, "txn_init", "transactional_id=%s", d->conf->transactional_id);
            return 0;
        }
        if (rc != XMCD_TXN_OK) break;
        nanosleep(&(struct timespec){0, 200000000L}, NULL);
    }
    d->fatal = 1;
    return -1;
}

int xmcd_txn_begin(xmcd *d)
{
    int retry;
    d->txn_failed = 0;
    d->txn_outputs = d->txn_dead_letters = 0;
    if (xmcd_txn_class(d, rd_kafka_begin_transaction(d->producer), "begin_transaction", &retry) != XMCD_TXN_OK ||
        retry) {
        d->fatal = 1; /* begin fails only on state errors: nothing sane to go on with */
        return -1;
    }
    return 0;
}

static void xmcd_txn_rewind(xmcd *d, rd_kafka_topic_partition_list_t *first)
{
    rd_kafka_error_t *error = rd_kafka_seek_partitions(d->consumer, first, xmcd_txn_timeout_ms(d));
    if (error) {
        xmcd_log(XMCD_LOG_ERROR, "txn_rewind_failed", "reason=%s", xmcd_log_q(rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
        d->fatal = 1;
        return;
    }
    for (int i = 0; i < first->cnt; i++)
        xmcd_log(XMCD_LOG_INFO, "txn_rewind", "topic=%s partition=%d offset=%lld", first->elems[i].topic,
                 (int)first->elems[i].partition, (long long)first->elems[i].offset);
}

/* Aborts the open transaction and rewinds to first (its n records are read again). */
static void xmcd_txn_abort(xmcd *d, rd_kafka_topic_partition_list_t *first, size_t n)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int retry;
        xmcd_txn_rc rc = xmcd_txn_class(d, rd_kafka_abort_transaction(d->producer, xmcd_txn_timeout_ms(d)),
                                        "abort_transaction", &retry);
        if (rc == XMCD_TXN_OK && !retry) {
            xmcd_count(&d->stats.txn_aborts, 1);
            xmcd_count(&d->stats.rewound, n);
            xmcd_log(XMCD_LOG_WARN, "txn_abort", "action=rewind");
            xmcd_txn_rewind(d, first);
            return;
        }
        if (rc != XMCD_TXN_OK) break;
    }
    d->fatal = 1;
}

void xmcd_txn_offsets(xmcd_rec **recs, size_t n, rd_kafka_topic_partition_list_t **next_out,
                      rd_kafka_topic_partition_list_t **first_out)
{
    rd_kafka_topic_partition_list_t *next = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_t *first = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = recs[i]->in;
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(next, topic, m->partition);
        if (!tp) tp = rd_kafka_topic_partition_list_add(next, topic, m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
        tp = rd_kafka_topic_partition_list_find(first, topic, m->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(first, topic, m->partition);
            tp->offset = m->offset;
        }
        if (m->offset < tp->offset) tp->offset = m->offset;
    }
    *next_out = next;
    *first_out = first;
}

void xmcd_txn_finish(xmcd *d, rd_kafka_topic_partition_list_t *next, rd_kafka_topic_partition_list_t *first,
                     size_t n)
{
    xmcd_txn_rc rc = d->txn_failed ? XMCD_TXN_ABORT : XMCD_TXN_OK; /* a copy could not even be queued */
    uint64_t deadline = xmcd_now_ns() + (uint64_t)xmcd_txn_timeout_ms(d) * 1000000u;
    while (rc == XMCD_TXN_OK) { /* the consumed offsets join the transaction */
        int retry;
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(d->consumer);
        rc = xmcd_txn_class(d, rd_kafka_send_offsets_to_transaction(d->producer, next, cgmd, xmcd_txn_timeout_ms(d)),
                            "send_offsets_to_transaction", &retry);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        if (rc != XMCD_TXN_OK || !retry) break;
        if (xmcd_now_ns() > deadline) {
            rc = XMCD_TXN_ABORT;
            break;
        }
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
    }
    while (rc == XMCD_TXN_OK) { /* commit: flushes the outputs; their delivery reports run in here */
        int retry;
        rc = xmcd_txn_class(d, rd_kafka_commit_transaction(d->producer, xmcd_txn_timeout_ms(d)), "commit_transaction",
                            &retry);
        if (rc != XMCD_TXN_OK || !retry) break;
        if (xmcd_now_ns() > deadline) {
            rc = XMCD_TXN_ABORT;
            break;
        }
    }
    if (rc == XMCD_TXN_OK) {
        xmcd_count(&d->stats.txn_commits, 1);
        xmcd_count(&d->stats.outputs, d->txn_outputs); /* acknowledged inside it: they stay now */
        xmcd_count(&d->stats.dead_letters, d->txn_dead_letters);
        xmcd_log(XMCD_LOG_DEBUG, "txn_commit", "records=%zu partitions=%d", n, next->cnt);
    } else if (rc == XMCD_TXN_ABORT) {
        xmcd_txn_abort(d, first, n);
    } else {
        xmcd_log(XMCD_LOG_ERROR, "txn_fatal", "action=stop_without_commit");
        d->fatal = 1;
    }
}
