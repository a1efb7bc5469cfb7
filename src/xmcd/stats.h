/* stats.h: xmcd's counters and latency histograms, printed as a logfmt line and as Prometheus text.
 *
 * Counters and histogram buckets are relaxed atomics: the pipeline thread increments them, the HTTP and
 * reload threads read or add to them, and nobody takes a lock on the record path. A histogram has
 * log-linear buckets (8 per power of two, in microseconds or plain units) so p50/p99 are within ~12 %.
 *
 * Every counter and gauge is one row of one table (xmcd_stats_fields(): logfmt key, Prometheus name, kind,
 * help); the logfmt line, /metrics and `xmcd --metrics` (the list in docs/xmcd.md) are derived from it. The
 * histograms and the model version have shapes of their own and are written beside the table's rows. */
#ifndef XMCD_STATS_H
#define XMCD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "xmc/stage.h"

#define XMCD_HIST_BUCKETS 320

typedef struct xmcd_hist {
    atomic_uint_fast64_t bucket[XMCD_HIST_BUCKETS];
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum;
} xmcd_hist;

typedef enum xmcd_stage {
    XMCD_STAGE_WAIT = 0, /* first record of a batch consumed -> batch handed to the plugin */
    XMCD_STAGE_PLUGIN,   /* the plugin's process() for one batch */
    XMCD_STAGE_ACK,      /* produce -> broker acknowledgement, per record */
    XMCD_STAGE_E2E,      /* consumed -> acknowledged, per record */
    XMCD_STAGE__COUNT
} xmcd_stage;

typedef struct xmcd_stats {
    /* consumed counts every read (re-reads after a rewind too), rewound the records handed back to be read
     * again; *_acks count the broker's acknowledgements (exactly-once: copies in aborted transactions too),
     * outputs and dead_letters only the copies that stay (acknowledged, or in a committed transaction) */
    atomic_uint_fast64_t consumed, rewound, output_acks, outputs, dead_letter_acks, dead_letters, batches,
        produce_retries, dlq_retries, produce_failures, output_rejected, commits, commit_failures, pauses, swaps, refusals, consume_errors, txn_commits, txn_aborts,
        max_poll_exceeded, kafka_restarts;
    atomic_int_fast64_t inflight, inflight_bytes, paused;
    atomic_int_fast64_t lag; /* records in the assigned partitions past the consumed position; -1 unknown */
    xmcd_hist stage_us[XMCD_STAGE__COUNT];
    xmcd_hist batch_size;
    char model_version[128]; /* guarded by version_lock in stats.c */
    /* the plugin's own counters (decode / classify / encode time), read when stats are shown; may be NULL */
    const xmc_stage_api *stage_api;
    xmc_stage_instance *stage_inst;
} xmcd_stats;

typedef enum xmcd_stat_kind { XMCD_STAT_COUNTER, XMCD_STAT_GAUGE } xmcd_stat_kind;

/* Where a row's value lives: xmcd's own stats, or the plugin's xmc_stage_stats (read when stats are shown). */
typedef enum xmcd_stat_source { XMCD_STAT_XMCD, XMCD_STAT_PLUGIN } xmcd_stat_source;

typedef struct xmcd_stat_field {
    const char *key;    /* logfmt key (event=stats, or event=stage_stats for the plugin's) */
    const char *metric; /* Prometheus name */
    xmcd_stat_kind kind; /* a counter is an atomic_uint_fast64_t (plugin: uint64_t), a gauge an atomic_int_fast64_t */
    xmcd_stat_source source;
    size_t off;         /* the field's offset in xmcd_stats or xmc_stage_stats */
    const char *help;   /* one line, the Prometheus HELP text */
} xmcd_stat_field;

/* The table of counters and gauges, in the order they are written. */
const xmcd_stat_field *xmcd_stats_fields(size_t *count);

/* Writes the table as a Markdown table (the block docs/xmcd.md embeds; `xmcd --metrics`). */
void xmcd_stats_fields_write(FILE *f);

/* The same for another program's table (xmc retrain's): rows of source XMCD_STAT_XMCD whose offsets are into
 * base. Markdown as above; or the rows as logfmt " key=value" pairs or Prometheus text into buf (its length
 * returned, cut at size-1). */
void xmcd_stat_table_write(FILE *f, const xmcd_stat_field *fields, size_t n);
size_t xmcd_stat_table_render(const xmcd_stat_field *fields, size_t n, void *base, int prometheus, char *buf,
                              size_t size);

void xmcd_stats_init(xmcd_stats *stats);
void xmcd_stats_set_version(xmcd_stats *stats, const char *version);
void xmcd_stats_get_version(xmcd_stats *stats, char *buf, size_t size);

void xmcd_hist_add(xmcd_hist *hist, uint64_t value);
/* The value below which a fraction q of the samples fall (bucket midpoint); 0 when empty. */
uint64_t xmcd_hist_quantile(const xmcd_hist *hist, double q);

/* Writes the periodic logfmt stats line (and the plugin's stage_stats line). */
void xmcd_stats_log(xmcd_stats *stats);
/* The key=value tail of those two lines into buf and stage (stage is "" without a plugin); returns the length
 * of buf's (cut at size-1). */
size_t xmcd_stats_logfmt(xmcd_stats *stats, char *buf, size_t size, char *stage, size_t stage_size);
/* Writes the Prometheus text exposition into buf; returns its length (cut at size-1). */
size_t xmcd_stats_prometheus(xmcd_stats *stats, char *buf, size_t size);

static inline void xmcd_count(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* Monotonic clock in nanoseconds. */
uint64_t xmcd_now_ns(void);

#endif
