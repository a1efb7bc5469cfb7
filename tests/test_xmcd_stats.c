/* test_xmcd_stats.c: xmcd's counter and gauge table (src/xmcd/stats.c) and the two outputs derived from it:
 * every row appears with its own value in the logfmt line and in the Prometheus text (HELP, TYPE and sample),
 * each metric family is declared once, and the names that scripts, tests and dashboards read are all there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/xmcd/stats.h"
#include "testutil.h"

static xmc_stage_stats xs_plugin; /* what the fake plugin reports */

static void xs_plugin_stats(xmc_stage_instance *inst, xmc_stage_stats *st)
{
    (void)inst;
    *st = xs_plugin;
}

static const xmc_stage_api xs_api = {.abi_version = XMC_STAGE_ABI_VERSION, .name = "fake", .stats = xs_plugin_stats};

/* Sets every row to its own value, 1000 + its index (a gauge: minus that), so a row that read another's
 * field shows the wrong number. */
static void xs_fill(xmcd_stats *stats, const xmcd_stat_field *rows, size_t n)
{
    xmcd_stats_init(stats);
    memset(&xs_plugin, 0, sizeof xs_plugin);
    stats->stage_api = &xs_api;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].source == XMCD_STAT_PLUGIN)
            *(uint64_t *)((char *)&xs_plugin + rows[i].off) = 1000 + i;
        else if (rows[i].kind == XMCD_STAT_GAUGE)
            atomic_store((atomic_int_fast64_t *)((char *)stats + rows[i].off), -(int_fast64_t)(1000 + i));
        else
            atomic_store((atomic_uint_fast64_t *)((char *)stats + rows[i].off), 1000 + i);
    }
}

static long long xs_value(const xmcd_stat_field *row, size_t i)
{
    return row->source != XMCD_STAT_PLUGIN && row->kind == XMCD_STAT_GAUGE ? -(long long)(1000 + i)
                                                                            : (long long)(1000 + i);
}

/* Occurrences of needle in hay. */
static int xs_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Every row of the table, with its own value, in both outputs. */
static void test_every_row_in_both(void)
{
    size_t n;
    const xmcd_stat_field *rows = xmcd_stats_fields(&n);
    CU_ASSERT_FATAL(n >= 20);
    static xmcd_stats stats;
    xs_fill(&stats, rows, n);
    char line[4096], stage[1024], prom[65536];
    xmcd_stats_logfmt(&stats, line, sizeof line, stage, sizeof stage);
    size_t len = xmcd_stats_prometheus(&stats, prom, sizeof prom);
    CU_ASSERT(len > 0 && len < sizeof prom - 1);
    /* logfmt tails with spaces around every pair, so " key=value " finds one whole pair */
    char tail[4200], stail[1100];
    snprintf(tail, sizeof tail, "%s ", line);
    snprintf(stail, sizeof stail, "%s ", stage);
    for (size_t i = 0; i < n; i++) {
        const xmcd_stat_field *row = &rows[i];
        char want[512];
        snprintf(want, sizeof want, " %s=%lld ", row->key, xs_value(row, i));
        int in_log = strstr(row->source == XMCD_STAT_PLUGIN ? stail : tail, want) != NULL;
        CU_ASSERT(in_log);
        if (!in_log) fprintf(stderr, "  logfmt lacks \"%s\"\n", want);
        const char *kind = row->kind == XMCD_STAT_GAUGE ? "gauge" : "counter";
        snprintf(want, sizeof want, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", row->metric, row->help, row->metric,
                 kind, row->metric, xs_value(row, i));
        int in_prom = strstr(prom, want) != NULL;
        CU_ASSERT(in_prom);
        if (!in_prom) fprintf(stderr, "  /metrics lacks \"%s\"\n", want);
        /* one family each: a row written twice (or two rows with one name) would declare it twice */
        snprintf(want, sizeof want, "# TYPE %s ", row->metric);
        CU_ASSERT_EQUAL(xs_count(prom, want), 1);
        CU_ASSERT(strchr(row->help, '\n') == NULL && strchr(row->help, '|') == NULL);
    }
}

/* The names on the wire that other code reads (tests/, bench/, scripts/, docs/xmcd.md), written out here by
 * hand: a row renamed in the table fails this. */
static void test_wire_names(void)
{
    static const char *const keys[] = {
        "consumed", "rewound", "outputs", "output_acks", "dead_letters", "dead_letter_acks", "output_rejected",
        "batches", "batch_size_avg", "batch_size_p99", "inflight",
        "paused", "produce_retries", "dlq_retries", "commits", "commit_failures", "model_version", "swaps",
        "refusals", "txn_commits", "txn_aborts", "consume_errors", "max_poll_exceeded", "lag", "wait_p50_ms",
        "wait_p99_ms", "plugin_p50_ms", "plugin_p99_ms", "ack_p50_ms", "ack_p99_ms", "e2e_p50_ms", "e2e_p99_ms"};
    static const char *const stage_keys[] = {"stage", "records", "errors", "loads", "refusals",
                                             "decode_us_per_record", "classify_us_per_record",
                                             "encode_us_per_record"};
    static const char *const metrics[] = {
        "xmcd_records_consumed_total", "xmcd_records_rewound_total", "xmcd_outputs_committed_total",
        "xmcd_output_acks_total", "xmcd_dead_letters_committed_total", "xmcd_dead_letter_acks_total",
        "xmcd_outputs_rejected_total",
        "xmcd_batches_total", "xmcd_produce_retries_total", "xmcd_dlq_retries_total", "xmcd_commits_total",
        "xmcd_commit_failures_total", "xmcd_pauses_total", "xmcd_consume_errors_total",
        "xmcd_max_poll_exceeded_total", "xmcd_txn_commits_total", "xmcd_txn_aborts_total", "xmcd_model_swaps_total",
        "xmcd_model_refusals_total", "xmcd_inflight_records", "xmcd_paused", "xmcd_consumer_lag_records",
        "xmcd_model_info", "xmcd_stage_latency_seconds", "xmcd_stage_records_total", "xmcd_stage_errors_total",
        "xmcd_stage_seconds_total", "xmcd_batch_size"};
    size_t n;
    const xmcd_stat_field *rows = xmcd_stats_fields(&n);
    static xmcd_stats stats;
    xs_fill(&stats, rows, n);
    xmcd_stats_set_version(&stats, "v 1"); /* a space: quoted in logfmt */
    char line[4096], stage[1024], prom[65536], want[256];
    xmcd_stats_logfmt(&stats, line, sizeof line, stage, sizeof stage);
    xmcd_stats_prometheus(&stats, prom, sizeof prom);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(want, sizeof want, " %s=", keys[i]);
        CU_ASSERT(xs_count(line, want) == 1);
        if (xs_count(line, want) != 1) fprintf(stderr, "  stats line: \"%s\" not once\n", want);
    }
    CU_ASSERT(strstr(line, " model_version=\"v 1\"") != NULL);
    for (size_t i = 0; i < sizeof stage_keys / sizeof stage_keys[0]; i++) {
        snprintf(want, sizeof want, " %s=", stage_keys[i]);
        CU_ASSERT(xs_count(stage, want) == 1);
    }
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        snprintf(want, sizeof want, "# TYPE %s ", metrics[i]);
        CU_ASSERT(xs_count(prom, want) == 1);
        if (xs_count(prom, want) != 1) fprintf(stderr, "  /metrics: \"%s\" not once\n", want);
    }
    CU_ASSERT(strstr(prom, "xmcd_model_info{version=\"v 1\"} 1\n") != NULL);
    /* without a plugin: no stage_stats line and none of the plugin's families */
    stats.stage_api = NULL;
    xmcd_stats_logfmt(&stats, line, sizeof line, stage, sizeof stage);
    xmcd_stats_prometheus(&stats, prom, sizeof prom);
    CU_ASSERT_STRING_EQUAL(stage, "");
    CU_ASSERT(strstr(prom, "xmcd_stage_records_total") == NULL);
    CU_ASSERT(strstr(prom, "xmcd_records_consumed_total 1000\n") != NULL);
}

/* The listing: one Markdown row per table row, in order. */
static void test_listing(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    xmcd_stats_fields_write(f);
    fclose(f);
    size_t n;
    const xmcd_stat_field *rows = xmcd_stats_fields(&n);
    const char *at = text;
    for (size_t i = 0; i < n; i++) {
        char row[256];
        snprintf(row, sizeof row, "| `%s`", rows[i].key);
        const char *p = strstr(at, row);
        CU_ASSERT(p != NULL);
        if (!p) continue;
        const char *end = strchr(p, '\n');
        char line[512];
        snprintf(line, sizeof line, "%.*s", end ? (int)(end - p + 1) : 0, p);
        snprintf(row, sizeof row, "| `%s` | %s | %s |\n", rows[i].metric,
                 rows[i].kind == XMCD_STAT_GAUGE ? "gauge" : "counter", rows[i].help);
        CU_ASSERT(strstr(line, row) != NULL);
        at = p + 1;
    }
    free(text);
}

/* Small buffers cut the text, never overrun it. */
static void test_small_buffers(void)
{
    size_t n;
    const xmcd_stat_field *rows = xmcd_stats_fields(&n);
    static xmcd_stats stats;
    xs_fill(&stats, rows, n);
    char buf[64], stage[16];
    memset(buf, 'x', sizeof buf);
    size_t len = xmcd_stats_prometheus(&stats, buf, 40);
    CU_ASSERT(len == 39 && buf[39] == 0 && buf[40] == 'x');
    len = xmcd_stats_logfmt(&stats, buf, 30, stage, sizeof stage);
    CU_ASSERT(len == 29 && buf[29] == 0 && strlen(stage) == 15);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("xmcd_stats", NULL, NULL);
    TU_ADD(s, test_every_row_in_both);
    TU_ADD(s, test_wire_names);
    TU_ADD(s, test_listing);
    TU_ADD(s, test_small_buffers);
    return tu_run(argc, argv);
}
