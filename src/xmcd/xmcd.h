/* xmcd.h: the daemon's state and the life of one record, shared by the pipeline modules.
 *
 * One pipeline thread owns everything here: it polls the consumer, fills a batch, calls the plugin, hands
 * outputs (or dead-letter copies) to the producer and serves delivery reports, which finish records in the
 * offset tracker; commits follow. Other threads (reload, HTTP, librdkafka's) touch only the stats atomics and
 * the plugin's thread-safe calls. A record (xmcd_rec) lives from consumption until the broker acknowledges
 * its output or its dead-letter copy; it keeps the consumed message so that a late failure can still send
 * the original bytes to the dead-letter topic. */
#ifndef XMCD_XMCD_H
#define XMCD_XMCD_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>

#include "batcher.h"
#include "config.h"
#include "http.h"
#include "offsets.h"
#include "plugin.h"
#include "reload.h"
#include "stats.h"

typedef enum xmcd_target {
    XMCD_TARGET_OUT = 0,
    XMCD_TARGET_DLQ = 1
} xmcd_target;

/* A dead letter's contents, from the whole copy down (dlq.c): each refusal as too large takes the next. */
enum { XMCD_DLQ_WHOLE, XMCD_DLQ_NO_VALUE, XMCD_DLQ_MINIMAL };

struct xmcd_rec {
    rd_kafka_message_t *in; /* the consumed record (owned) */
    xmcd_part *part;        /* offset tracking: partition and sequence */
    uint64_t seq;
    uint64_t t_consumed_ns, t_produced_ns;
    int target;             /* xmcd_target of the copy in flight */
    /* a failed delivery waiting to be produced again (owned copies) */
    void *retry_value, *retry_key;
    size_t retry_value_len, retry_key_len;
    rd_kafka_headers_t *retry_headers;
    uint64_t retry_due_ns;
    char *dlq_reason; /* "CODE\0message": to be dead-lettered by the retry list (owned) */
    int dlq_level;      /* XMCD_DLQ_*: what of the dead letter was left out after a refusal as too large */
    int size_retried;   /* the broker refused the output's batch as too large once: the next refusal is its own */
    struct xmcd_rec *next; /* retry list */
    char model_version[XMC_STAGE_VERSION_MAX];
};

typedef struct xmcd {
    xmcd_config *conf;
    rd_kafka_t *consumer, *producer;
    xmcd_offsets *offsets;
    xmcd_batch batch;
    xmcd_plugin *plugin;
    xmcd_stats stats;
    xmcd_reload *reload;
    xmcd_http *http;

    xmcd_rec *retry_head, *retry_tail;
    int paused;
    int draining;  /* shutting down: consume nothing more */
    int fatal;     /* stop without committing anything more */
    int kafka_fatal; /* the fatal error was a Kafka client's (not fencing): the clients may be restarted */
    int txn_failed; /* exactly-once: a copy of the open transaction failed; it must abort */
    int queue_stalled; /* the producer's local queue stayed full for a second: don't wait on it again yet */
    uint64_t next_commit_ns, next_stats_ns, last_stall_log_ns, last_refusal_log_ns, drain_deadline_ns;
    uint64_t last_rejected_log_ns, rejected_unlogged; /* output_rejected: one line per 5 s, the rest counted */
    uint64_t txn_outputs, txn_dead_letters; /* exactly-once: copies acknowledged in the open transaction */

    volatile sig_atomic_t *stop_flag, *hup_flag;

    int embedded;            /* --embedded-kafka: brokers is the mock's address, not the file's */

    /* plugin call arrays, sized for the batch */
    xmc_stage_in *in;
    xmc_stage_out *out;
    size_t io_cap;
    xmc_stage_header *headers;
    size_t headers_cap;
} xmcd;

/* pipeline.c: the main loop. Returns the process exit code (0 after a clean drain). */
int xmcd_run(xmcd *d);
/* Destroys the clients (without a flush: what was not delivered is replayed after a restart) and frees the
 * tracker, plugin, batch and call arrays; the config, reload thread and HTTP server are the caller's. */
void xmcd_release(xmcd *d);
/* pipeline.c: after xmcd_run() returned on a fatal Kafka client error: new clients (and transactions), an empty
 * tracker, every flag as at start; the group then assigns from the committed offsets, so what the old clients
 * left uncommitted is consumed again (exactly what a process restart does, without one). 0 or -1 (err set). */
int xmcd_restart_clients(xmcd *d, char *err, size_t errlen);
/* consumer.c: 1 when a fatal error code means another instance took over (fenced): never restarted. */
int xmcd_fenced_error(rd_kafka_resp_err_t err);
/* pipeline.c: finishes a record (acknowledged): offsets, stats, frees it. */
void xmcd_rec_finish(xmcd *d, xmcd_rec *rec);
/* pipeline.c: queues a record whose delivery failed to be produced again (a copy of failed is kept). */
void xmcd_rec_retry_later(xmcd *d, xmcd_rec *rec, const rd_kafka_message_t *failed, uint64_t delay_ms);
/* pipeline.c: queues a record to be sent to the dead-letter topic with code and message. */
void xmcd_rec_dead_letter_later(xmcd *d, xmcd_rec *rec, const char *code, const char *message);
/* pipeline.c: drops a record without finishing it (shutdown): its offset is never committed past. */
void xmcd_rec_abandon(xmcd *d, xmcd_rec *rec);
/* 1 when a per-record event may be logged now (at most one line per 5 s per *last_ns), else 0. */
int xmcd_log_due(uint64_t *last_ns);
/* pipeline.c: the rebalance handler (called from consumer.c's callback). */
void xmcd_rebalance(xmcd *d, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts);
/* pipeline.c: sends the processed batch, produces due retries; used by the rebalance handler too. */
void xmcd_process_batch(xmcd *d);

/* consumer.c */
rd_kafka_t *xmcd_consumer_new(xmcd *d, char *err, size_t errlen);
void xmcd_consumer_pause(xmcd *d, int pause);
/* Sums high watermark - position over the assigned partitions into stats.lag (cached watermarks: no request). */
void xmcd_consumer_lag(xmcd *d);

/* producer.c: the producer; its message.max.bytes and batch.size follow the output and dead-letter topics'
 * max.message.bytes when the broker tells them (broker.c) and the operator has not set them. */
rd_kafka_t *xmcd_producer_new(xmcd *d, char *err, size_t errlen);
/* Produces one copy of rec to the topic of its target; value/key are copied, headers are owned by the
 * producer on success (destroyed here on failure). Waits (serving delivery reports) while the local queue is
 * full. Returns 0 or the librdkafka error. */
rd_kafka_resp_err_t xmcd_producer_send(xmcd *d, xmcd_rec *rec, const void *value, size_t value_len,
                                       const void *key, size_t key_len, rd_kafka_headers_t *headers);

/* txn.c: exactly-once mode (one transaction per batch). init/begin return 0 or -1 (fatal set). */
int xmcd_txn_init(xmcd *d);
int xmcd_txn_begin(xmcd *d);
/* The batch's next offsets (to commit) and first offsets (to rewind to), computed before producing. */
void xmcd_txn_offsets(xmcd_rec **recs, size_t n, rd_kafka_topic_partition_list_t **next,
                      rd_kafka_topic_partition_list_t **first);
/* Sends the offsets, commits; aborts and rewinds on abortable errors; sets fatal on fatal ones. */
void xmcd_txn_finish(xmcd *d, rd_kafka_topic_partition_list_t *next, rd_kafka_topic_partition_list_t *first,
                     size_t n);

/* broker.c: what the cluster says at start (DescribeConfigs): the broker's version and the smaller of the output
 * and dead-letter topics' max.message.bytes. Fields left at 0 / "" are unknown (the reason is logged). */
typedef struct xmcd_broker_info {
    char version[32];        /* inter.broker.protocol.version, e.g. "2.4-IV1" */
    int major, minor;        /* parsed from version; 0.0 when unknown */
    long long topic_max_bytes; /* min max.message.bytes of the output and dead-letter topics; 0 unknown */
} xmcd_broker_info;
/* Asks the cluster (a short-lived client of its own, bounded by timeout_ms) and logs event=broker_version with
 * what exactly-once needs. Never fails: what cannot be learned stays unknown. */
void xmcd_broker_describe(xmcd *d, xmcd_broker_info *info, int timeout_ms);

/* dlq.c: sends rec's original record to the dead-letter topic with the reason headers. */
void xmcd_dlq_send(xmcd *d, xmcd_rec *rec, const char *code, const char *message);
/* After rec's dead letter was refused as too large (by: "producer" or "broker"): its next copy carries less
 * (XMCD_DLQ_*), logged once per level. Not past XMCD_DLQ_MINIMAL. */
void xmcd_dlq_less(xmcd_rec *rec, const char *by);

/* log.c-style bridge for librdkafka's own logs (consumer.c and producer.c install it). */
void xmcd_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
void xmcd_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);
/* consumer.c: a client of xmcd's (d as opaque, the two callbacks above) from kconf, which it takes in any case
 * (freed on failure). Returns the client, or NULL with err. */
rd_kafka_t *xmcd_kafka_new(xmcd *d, rd_kafka_type_t type, rd_kafka_conf_t *kconf, char *err, size_t errlen);

#endif
