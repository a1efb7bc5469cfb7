/* stats.c: counters, log-linear histograms, the logfmt stats line and the Prometheus text; see stats.h.
 *
 * Bucket i < 16 holds the value i; above that, each power of two 2^e (e >= 4) is cut into 8 equal buckets,
 * so bucket = 16 + (e-4)*8 + the three bits after the leading one. Quantiles walk the buckets to the rank
 * and report the bucket's midpoint. */
#include "stats.h"

#include <pthread.h>
#include <stdarg.h>
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

void xmcd_stats_log(xmcd_stats *stats)
{
    char version[128], lat[512];
    size_t o = 0;
    xmcd_stats_get_version(stats, version, sizeof version);
    for (int s = 0; s < XMCD_STAGE__COUNT; s++)
        o += (size_t)snprintf(lat + o, sizeof lat - o, " %s_p50_ms=%.3f %s_p99_ms=%.3f", xmcd_stage_names[s],
                              (double)xmcd_hist_quantile(&stats->stage_us[s], 0.5) / 1000.0, xmcd_stage_names[s],
                              (double)xmcd_hist_quantile(&stats->stage_us[s], 0.99) / 1000.0);
    uint64_t batches = XMCD_LOAD(stats->batch_size.count);
    xmcd_log(XMCD_LOG_INFO, "stats",
             "consumed=%llu produced=%llu dead_lettered=%llu batches=%llu batch_size_avg=%.1f batch_size_p99=%llu "
             "inflight=%lld paused=%lld produce_retries=%llu dlq_retries=%llu commits=%llu commit_failures=%llu "
             "model_version=%s swaps=%llu refusals=%llu txn_commits=%llu txn_aborts=%llu consume_errors=%llu "
             "max_poll_exceeded=%llu lag=%lld%s",
             XMCD_LOAD(stats->consumed), XMCD_LOAD(stats->produced), XMCD_LOAD(stats->dead_lettered),
             XMCD_LOAD(stats->batches),
             batches ? (double)XMCD_LOAD(stats->batch_size.sum) / (double)batches : 0.0,
             (unsigned long long)xmcd_hist_quantile(&stats->batch_size, 0.99),
             (long long)atomic_load(&stats->inflight), (long long)atomic_load(&stats->paused),
             XMCD_LOAD(stats->produce_retries), XMCD_LOAD(stats->dlq_retries), XMCD_LOAD(stats->commits),
             XMCD_LOAD(stats->commit_failures), xmcd_log_q(version), XMCD_LOAD(stats->swaps),
             XMCD_LOAD(stats->refusals), XMCD_LOAD(stats->txn_commits), XMCD_LOAD(stats->txn_aborts),
             XMCD_LOAD(stats->consume_errors), XMCD_LOAD(stats->max_poll_exceeded), (long long)atomic_load(&stats->lag),
             lat);
    if (stats->stage_api) {
        xmc_stage_stats st;
        stats->stage_api->stats(stats->stage_inst, &st);
        double per = st.records ? 1e-3 / (double)st.records : 0.0;
        xmcd_log(XMCD_LOG_INFO, "stage_stats",
                 "stage=%s records=%llu errors=%llu loads=%llu refusals=%llu decode_us_per_record=%.2f "
                 "classify_us_per_record=%.2f encode_us_per_record=%.2f",
                 stats->stage_api->name ? stats->stage_api->name : "?", (unsigned long long)st.records,
                 (unsigned long long)st.errors, (unsigned long long)st.loads, (unsigned long long)st.refusals,
                 (double)st.decode_ns * per, (double)st.classify_ns * per, (double)st.encode_ns * per);
    }
}

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

static void xmcd_prom_counter(xmcd_buf *b, const char *name, const char *help, unsigned long long v)
{
    xmcd_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

size_t xmcd_stats_prometheus(xmcd_stats *stats, char *buf, size_t size)
{
    xmcd_buf b = {buf, size, 0};
    if (size == 0) return 0;
    buf[0] = 0;
    xmcd_prom_counter(&b, "xmcd_records_consumed_total", "Records consumed from the input topic.",
                      XMCD_LOAD(stats->consumed));
    xmcd_prom_counter(&b, "xmcd_records_produced_total", "Outputs acknowledged on the output topic.",
                      XMCD_LOAD(stats->produced));
    xmcd_prom_counter(&b, "xmcd_records_dead_lettered_total", "Records acknowledged on the dead-letter topic.",
                      XMCD_LOAD(stats->dead_lettered));
    xmcd_prom_counter(&b, "xmcd_batches_total", "Batches handed to the stage plugin.", XMCD_LOAD(stats->batches));
    xmcd_prom_counter(&b, "xmcd_produce_retries_total", "Output deliveries that failed and were produced again.",
                      XMCD_LOAD(stats->produce_retries));
    xmcd_prom_counter(&b, "xmcd_dlq_retries_total", "Dead-letter deliveries that failed and were produced again.",
                      XMCD_LOAD(stats->dlq_retries));
    xmcd_prom_counter(&b, "xmcd_commits_total", "Offset commits that succeeded.", XMCD_LOAD(stats->commits));
    xmcd_prom_counter(&b, "xmcd_commit_failures_total", "Offset commits that failed.",
                      XMCD_LOAD(stats->commit_failures));
    xmcd_prom_counter(&b, "xmcd_pauses_total", "Times consumption was paused for backpressure.",
                      XMCD_LOAD(stats->pauses));
    xmcd_prom_counter(&b, "xmcd_txn_commits_total", "Transactions committed (exactly-once mode).",
                      XMCD_LOAD(stats->txn_commits));
    xmcd_prom_counter(&b, "xmcd_txn_aborts_total", "Transactions aborted and rewound (exactly-once mode).",
                      XMCD_LOAD(stats->txn_aborts));
    xmcd_prom_counter(&b, "xmcd_consume_errors_total", "Errors returned by the consumer (not per record).",
                      XMCD_LOAD(stats->consume_errors));
    xmcd_prom_counter(&b, "xmcd_max_poll_exceeded_total", "Batches slower than max.poll.interval.ms (group left).",
                      XMCD_LOAD(stats->max_poll_exceeded));
    xmcd_prom_counter(&b, "xmcd_model_swaps_total", "Model versions swapped in.", XMCD_LOAD(stats->swaps));
    xmcd_prom_counter(&b, "xmcd_model_refusals_total", "Model versions refused.", XMCD_LOAD(stats->refusals));
    xmcd_buf_printf(&b, "# HELP xmcd_inflight_records Records consumed and not yet acknowledged.\n"
                        "# TYPE xmcd_inflight_records gauge\nxmcd_inflight_records %lld\n",
                    (long long)atomic_load(&stats->inflight));
    xmcd_buf_printf(&b, "# HELP xmcd_consumer_lag_records Records in the assigned partitions past the consumed "
                        "position (-1 before it is known).\n# TYPE xmcd_consumer_lag_records gauge\n"
                        "xmcd_consumer_lag_records %lld\n",
                    (long long)atomic_load(&stats->lag));
    xmcd_buf_printf(&b, "# HELP xmcd_paused 1 while consumption is paused for backpressure.\n"
                        "# TYPE xmcd_paused gauge\nxmcd_paused %lld\n",
                    (long long)atomic_load(&stats->paused));
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
        xmcd_prom_counter(&b, "xmcd_stage_records_total", "Records the stage plugin processed.", st.records);
        xmcd_prom_counter(&b, "xmcd_stage_errors_total", "Records the stage plugin turned into errors (DLQ).",
                          st.errors);
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
