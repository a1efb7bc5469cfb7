/* stats.c: counters, log-linear histograms, the logfmt stats line and the Prometheus text; see stats.h.
 *
 * Both outputs walk one table of counters and gauges (xmcd_stat_fields), so a counter is named, typed and
 * documented once; the histograms follow it in each output in their own shapes.
 *
 * Bucket i < 16 holds the value i; above that, each power of two 2^e (e >= 4) is cut into 8 equal buckets,
 * so bucket = 16 + (e-4)*8 + the three bits after the leading one. Quantiles walk the buckets to the rank
 * and report the bucket's midpoint. */
#include "stats.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static pthread_mutex_t xmcd_stats_version_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const xmcd_stage_names[XMCD_STAGE__COUNT] = {"wait", "plugin", "ack", "e2e"};

uint64_t xmcd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void xmcd_stats_init(xmcd_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    atomic_store(&stats->lag, -1);
}

void xmcd_stats_set_version(xmcd_stats *stats, const char *version)
{
    pthread_mutex_lock(&xmcd_stats_version_lock);
    snprintf(stats->model_version, sizeof stats->model_version, "%s", version);
    pthread_mutex_unlock(&xmcd_stats_version_lock);
}

void xmcd_stats_get_version(xmcd_stats *stats, char *buf, size_t size)
{
    pthread_mutex_lock(&xmcd_stats_version_lock);
    snprintf(buf, size, "%s", stats->model_version);
    pthread_mutex_unlock(&xmcd_stats_version_lock);
}

static size_t xmcd_hist_index(uint64_t v)
{
    if (v < 16) return (size_t)v;
    int e = 63 - __builtin_clzll(v);
    size_t i = 16 + (size_t)(e - 4) * 8 + (size_t)((v >> (e - 3)) & 7);
    return i < XMCD_HIST_BUCKETS ? i : XMCD_HIST_BUCKETS - 1;
}

static uint64_t xmcd_hist_mid(size_t i)
{
    if (i < 16) return i;
    int e = (int)((i - 16) / 8) + 4;
    uint64_t sub = (i - 16) % 8, lo = (1ull << e) + (sub << (e - 3));
    return lo + (1ull << (e - 3)) / 2;
}

void xmcd_hist_add(xmcd_hist *hist, uint64_t value)
{
    atomic_fetch_add_explicit(&hist->bucket[xmcd_hist_index(value)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist->sum, value, memory_order_relaxed);
}

uint64_t xmcd_hist_quantile(const xmcd_hist *hist, double q)
{
    uint64_t total = 0, counts[XMCD_HIST_BUCKETS];
    for (size_t i = 0; i < XMCD_HIST_BUCKETS; i++) {
        counts[i] = atomic_load_explicit(&hist->bucket[i], memory_order_relaxed);
        total += counts[i];
    }
    if (!total) return 0;
    uint64_t rank = (uint64_t)(q * (double)total), seen = 0;
    if (rank >= total) rank = total - 1;
    for (size_t i = 0; i < XMCD_HIST_BUCKETS; i++) {
        seen += counts[i];
        if (seen > rank) return xmcd_hist_mid(i);
    }
    return xmcd_hist_mid(XMCD_HIST_BUCKETS - 1);
}

#define XMCD_LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

/* ==== the counter and gauge table ========================================================================
 * XMCD_AT is the field's offset, and fails to compile when the field is not of the type its kind is read as
 * (the compound literal takes its address as that pointer type). */
#define XMCD_AT(st, field, type) (offsetof(st, field) + 0 * sizeof((type *){&((st *)0)->field}))
#define XMCD_COUNTER(k, m, field, h)                                                                         \
    {k, m, XMCD_STAT_COUNTER, XMCD_STAT_XMCD, XMCD_AT(xmcd_stats, field, atomic_uint_fast64_t), h}
#define XMCD_GAUGE(k, m, field, h)                                                                           \
    {k, m, XMCD_STAT_GAUGE, XMCD_STAT_XMCD, XMCD_AT(xmcd_stats, field, atomic_int_fast64_t), h}
#define XMCD_PLUGIN_COUNTER(k, m, field, h)                                                                  \
    {k, m, XMCD_STAT_COUNTER, XMCD_STAT_PLUGIN, XMCD_AT(xmc_stage_stats, field, uint64_t), h}

static const xmcd_stat_field xmcd_stat_fields[] = {
    XMCD_COUNTER("consumed", "xmcd_records_consumed_total", consumed,
                 "Records read from the input topic, reads again after an exactly-once rewind included."),
    XMCD_COUNTER("rewound", "xmcd_records_rewound_total", rewound,
                 "Records handed back to be read again by an aborted transaction's rewind (exactly-once)."),
    XMCD_COUNTER("outputs", "xmcd_outputs_committed_total", outputs,
                 "Outputs that stay: acknowledged (at-least-once) or in a committed transaction (exactly-once)."),
    XMCD_COUNTER("output_acks", "xmcd_output_acks_total", output_acks,
                 "Output copies the broker acknowledged, copies in transactions aborted later included."),
    XMCD_COUNTER("dead_letters", "xmcd_dead_letters_committed_total", dead_letters,
                 "Dead letters that stay: acknowledged (at-least-once) or in a committed transaction."),
    XMCD_COUNTER("dead_letter_acks", "xmcd_dead_letter_acks_total", dead_letter_acks,
                 "Dead-letter copies the broker acknowledged, copies in transactions aborted later included."),
    XMCD_COUNTER("batches", "xmcd_batches_total", batches, "Batches handed to the stage plugin."),
    XMCD_GAUGE("inflight", "xmcd_inflight_records", inflight, "Records consumed and not yet acknowledged."),
    XMCD_GAUGE("inflight_bytes", "xmcd_inflight_bytes", inflight_bytes,
               "Bytes (values and keys) of the records consumed and not yet acknowledged."),
    XMCD_GAUGE("paused", "xmcd_paused", paused, "1 while consumption is paused for backpressure."),
    XMCD_COUNTER("pauses", "xmcd_pauses_total", pauses, "Times consumption was paused for backpressure."),
    XMCD_COUNTER("produce_retries", "xmcd_produce_retries_total", produce_retries,
                 "Output deliveries that failed and were produced again."),
    XMCD_COUNTER("output_rejected", "xmcd_outputs_rejected_total", output_rejected,
                 "Output deliveries the broker refused for what they are (too large, invalid)."),
    XMCD_COUNTER("dlq_retries", "xmcd_dlq_retries_total", dlq_retries,
                 "Dead-letter deliveries that failed and were produced again."),
    XMCD_COUNTER("commits", "xmcd_commits_total", commits, "Offset commits that succeeded."),
    XMCD_COUNTER("commit_failures", "xmcd_commit_failures_total", commit_failures, "Offset commits that failed."),
    XMCD_COUNTER("swaps", "xmcd_model_swaps_total", swaps, "Model versions swapped in."),
    XMCD_COUNTER("refusals", "xmcd_model_refusals_total", refusals, "Model versions refused."),
    XMCD_COUNTER("txn_commits", "xmcd_txn_commits_total", txn_commits, "Transactions committed (exactly-once mode)."),
    XMCD_COUNTER("txn_aborts", "xmcd_txn_aborts_total", txn_aborts,
                 "Transactions aborted and rewound (exactly-once mode)."),
    XMCD_COUNTER("consume_errors", "xmcd_consume_errors_total", consume_errors,
                 "Errors returned by the consumer (not per record)."),
    XMCD_COUNTER("max_poll_exceeded", "xmcd_max_poll_exceeded_total", max_poll_exceeded,
                 "Batches slower than max.poll.interval.ms (group left)."),
    XMCD_COUNTER("kafka_restarts", "xmcd_kafka_restarts_total", kafka_restarts,
                 "In-process restarts of the Kafka clients after a fatal client error."),
    XMCD_GAUGE("lag", "xmcd_consumer_lag_records", lag,
               "Records in the assigned partitions past the consumed position (-1 before it is known)."),
    XMCD_PLUGIN_COUNTER("records", "xmcd_stage_records_total", records, "Records the stage plugin processed."),
    XMCD_PLUGIN_COUNTER("errors", "xmcd_stage_errors_total", errors,
                        "Records the stage plugin turned into errors (DLQ)."),
    XMCD_PLUGIN_COUNTER("loads", "xmcd_stage_loads_total", loads,
                        "Model versions the stage plugin swapped in (the first included)."),
    XMCD_PLUGIN_COUNTER("refusals", "xmcd_stage_refusals_total", refusals,
                        "Model versions the stage plugin's load() refused."),
};

#define XMCD_NFIELDS (sizeof xmcd_stat_fields / sizeof xmcd_stat_fields[0])

const xmcd_stat_field *xmcd_stats_fields(size_t *count)
{
    *count = XMCD_NFIELDS;
    return xmcd_stat_fields;
}

void xmcd_stats_fields_write(FILE *f) { xmcd_stat_table_write(f, xmcd_stat_fields, XMCD_NFIELDS); }

void xmcd_stat_table_write(FILE *f, const xmcd_stat_field *fields, size_t n)
{
    fprintf(f, "| logfmt key | Prometheus metric | kind | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const xmcd_stat_field *fd = &fields[i];
        fprintf(f, "| `%s`%s | `%s` | %s | %s |\n", fd->key, fd->source == XMCD_STAT_PLUGIN ? " (stage_stats)" : "",
                fd->metric, fd->kind == XMCD_STAT_GAUGE ? "gauge" : "counter", fd->help);
    }
}

/* A row's value as text ("%llu" for a counter, "%lld" for a gauge); st is the plugin's, NULL without one. */
static void xmcd_stat_text(const xmcd_stat_field *fd, xmcd_stats *stats, const xmc_stage_stats *st, char *buf,
                           size_t size)
{
    if (fd->source == XMCD_STAT_PLUGIN)
        snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)((const char *)st + fd->off));
    else if (fd->kind == XMCD_STAT_GAUGE)
        snprintf(buf, size, "%lld", (long long)atomic_load_explicit(
                                        (atomic_int_fast64_t *)((char *)stats + fd->off), memory_order_relaxed));
    else
        snprintf(buf, size, "%llu", XMCD_LOAD(*(atomic_uint_fast64_t *)((char *)stats + fd->off)));
}

/* ==== the two outputs ==================================================================================== */

typedef struct xmcd_buf {
    char *p;
    size_t size, len;
} xmcd_buf;

static void xmcd_buf_printf(xmcd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xmcd_buf_printf(xmcd_buf *b, const char *fmt, ...)
{
    if (b->len >= b->size - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
    if (b->len > b->size - 1) b->len = b->size - 1;
}

/* " key=value" (logfmt) or the HELP, TYPE and sample lines (Prometheus) of every row from source. */
static void xmcd_stat_rows(xmcd_buf *b, int prometheus, xmcd_stat_source source, xmcd_stats *stats,
                           const xmc_stage_stats *st)
{
    for (size_t i = 0; i < XMCD_NFIELDS; i++) {
        const xmcd_stat_field *fd = &xmcd_stat_fields[i];
        if (fd->source != source) continue;
        char v[32];
        xmcd_stat_text(fd, stats, st, v, sizeof v);
        if (prometheus)
            xmcd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", fd->metric, fd->help, fd->metric,
                            fd->kind == XMCD_STAT_GAUGE ? "gauge" : "counter", fd->metric, v);
        else
            xmcd_buf_printf(b, " %s=%s", fd->key, v);
    }
}

size_t xmcd_stat_table_render(const xmcd_stat_field *fields, size_t n, void *base, int prometheus, char *buf,
                              size_t size)
{
    xmcd_buf b = {buf, size, 0};
    if (size == 0) return 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const xmcd_stat_field *fd = &fields[i];
        if (fd->source != XMCD_STAT_XMCD) continue;
        char v[32];
        xmcd_stat_text(fd, base, NULL, v, sizeof v); /* reads base + fd->off only */
        if (prometheus)
            xmcd_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", fd->metric, fd->help, fd->metric,
                            fd->kind == XMCD_STAT_GAUGE ? "gauge" : "counter", fd->metric, v);
        else
            xmcd_buf_printf(&b, " %s=%s", fd->key, v);
    }
    return b.len;
}

size_t xmcd_stats_logfmt(xmcd_stats *stats, char *buf, size_t size, char *stage, size_t stage_size)
{
    xmcd_buf b = {buf, size, 0}, sb = {stage, stage_size, 0};
    if (size == 0 || stage_size == 0) return 0;
    buf[0] = stage[0] = 0;
    xmcd_stat_rows(&b, 0, XMCD_STAT_XMCD, stats, NULL);
    char version[128];
    xmcd_stats_get_version(stats, version, sizeof version);
    uint64_t batches = XMCD_LOAD(stats->batch_size.count);
    xmcd_buf_printf(&b, " batch_size_avg=%.1f batch_size_p99=%llu model_version=%s",
                    batches ? (double)XMCD_LOAD(stats->batch_size.sum) / (double)batches : 0.0,
                    (unsigned long long)xmcd_hist_quantile(&stats->batch_size, 0.99), xmcd_log_q(version));
    for (int s = 0; s < XMCD_STAGE__COUNT; s++)
        xmcd_buf_printf(&b, " %s_p50_ms=%.3f %s_p99_ms=%.3f", xmcd_stage_names[s],
                        (double)xmcd_hist_quantile(&stats->stage_us[s], 0.5) / 1000.0, xmcd_stage_names[s],
                        (double)xmcd_hist_quantile(&stats->stage_us[s], 0.99) / 1000.0);
    if (stats->stage_api) {
        xmc_stage_stats st;
        stats->stage_api->stats(stats->stage_inst, &st);
        double per = st.records ? 1e-3 / (double)st.records : 0.0;
        xmcd_buf_printf(&sb, " stage=%s", stats->stage_api->name ? stats->stage_api->name : "?");
        xmcd_stat_rows(&sb, 0, XMCD_STAT_PLUGIN, stats, &st);
        xmcd_buf_printf(&sb, " decode_us_per_record=%.2f classify_us_per_record=%.2f encode_us_per_record=%.2f",
                        (double)st.decode_ns * per, (double)st.classify_ns * per, (double)st.encode_ns * per);
    }
    return b.len;
}

void xmcd_stats_log(xmcd_stats *stats)
{
    char line[2048], stage[512];
    xmcd_stats_logfmt(stats, line, sizeof line, stage, sizeof stage);
    /* the tails start with a space: xmcd_log puts one after event= already */
    xmcd_log(XMCD_LOG_INFO, "stats", "%s", line[0] ? line + 1 : line);
    if (stage[0]) xmcd_log(XMCD_LOG_INFO, "stage_stats", "%s", stage + 1);
}

size_t xmcd_stats_prometheus(xmcd_stats *stats, char *buf, size_t size)
{
    xmcd_buf b = {buf, size, 0};
    if (size == 0) return 0;
    buf[0] = 0;
    xmcd_stat_rows(&b, 1, XMCD_STAT_XMCD, stats, NULL);
    char version[128];
    xmcd_stats_get_version(stats, version, sizeof version);
    xmcd_buf_printf(&b, "# HELP xmcd_model_info The model version serving now.\n# TYPE xmcd_model_info gauge\n"
                        "xmcd_model_info{version=\"%s\"} 1\n",
                    version);
    xmcd_buf_printf(&b, "# HELP xmcd_stage_latency_seconds Latency per pipeline stage.\n"
                        "# TYPE xmcd_stage_latency_seconds summary\n");
    for (int s = 0; s < XMCD_STAGE__COUNT; s++) {
        const xmcd_hist *h = &stats->stage_us[s];
        xmcd_buf_printf(&b, "xmcd_stage_latency_seconds{stage=\"%s\",quantile=\"0.5\"} %.6f\n",
                        xmcd_stage_names[s], (double)xmcd_hist_quantile(h, 0.5) / 1e6);
        xmcd_buf_printf(&b, "xmcd_stage_latency_seconds{stage=\"%s\",quantile=\"0.99\"} %.6f\n",
                        xmcd_stage_names[s], (double)xmcd_hist_quantile(h, 0.99) / 1e6);
        xmcd_buf_printf(&b, "xmcd_stage_latency_seconds_sum{stage=\"%s\"} %.6f\n", xmcd_stage_names[s],
                        (double)XMCD_LOAD(h->sum) / 1e6);
        xmcd_buf_printf(&b, "xmcd_stage_latency_seconds_count{stage=\"%s\"} %llu\n", xmcd_stage_names[s],
                        XMCD_LOAD(h->count));
    }
    if (stats->stage_api) {
        xmc_stage_stats st;
        stats->stage_api->stats(stats->stage_inst, &st);
        xmcd_stat_rows(&b, 1, XMCD_STAT_PLUGIN, stats, &st);
        xmcd_buf_printf(&b, "# HELP xmcd_stage_seconds_total Time the stage plugin spent, by phase.\n"
                            "# TYPE xmcd_stage_seconds_total counter\n"
                            "xmcd_stage_seconds_total{phase=\"decode\"} %.6f\n"
                            "xmcd_stage_seconds_total{phase=\"classify\"} %.6f\n"
                            "xmcd_stage_seconds_total{phase=\"encode\"} %.6f\n",
                        (double)st.decode_ns / 1e9, (double)st.classify_ns / 1e9, (double)st.encode_ns / 1e9);
    }
    xmcd_buf_printf(&b, "# HELP xmcd_batch_size Records per batch.\n# TYPE xmcd_batch_size summary\n"
                        "xmcd_batch_size{quantile=\"0.5\"} %llu\nxmcd_batch_size{quantile=\"0.99\"} %llu\n"
                        "xmcd_batch_size_sum %llu\nxmcd_batch_size_count %llu\n",
                    (unsigned long long)xmcd_hist_quantile(&stats->batch_size, 0.5),
                    (unsigned long long)xmcd_hist_quantile(&stats->batch_size, 0.99),
                    XMCD_LOAD(stats->batch_size.sum), XMCD_LOAD(stats->batch_size.count));
    return b.len;
}
