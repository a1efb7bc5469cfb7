/* main.c: the xmcd command line: run the daemon, or only an embedded Kafka for tests and demos.
 *
 *   xmcd -c xmcd.conf [--embedded-kafka [--bootstrap-file PATH]]     run the stage daemon
 *   xmcd -c xmcd.conf --check-config                  validate the file and the plugin's keys, exit (0 or 2)
 *   xmcd --mock-only --bootstrap-file PATH [--brokers N] [--topic NAME:PARTITIONS]... [-c xmcd.conf]
 *                                                                    run librdkafka's mock cluster only
 *   xmcd --encode-products FILE.tsv [--id-prefix P] [--known-labels]  |  xmcd --decode-labeled      record helpers (tool.c)
 *   xmcd --config-keys  |  xmcd --metrics            the config key and metric tables (docs/xmcd.md embeds them)
 * Start-up order: config (a broken file exits 2 with file:line), embedded Kafka, plugin (load and ABI check,
 * its check_config: either failing exits 2; create, first model), reload thread, HTTP, consumer and producer,
 * then the pipeline loop until SIGTERM/SIGINT (drain, commit, exit 0) or a fatal error (exit 1). SIGHUP reloads the config and checks the models. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mock.h"
#include "tool.h"
#include "xmcd.h"
#include "xmc/blas.h"

static volatile sig_atomic_t xmcd_stop_flag, xmcd_hup_flag;

static void xmcd_on_signal(int sig)
{
    if (sig == SIGHUP)
        xmcd_hup_flag = 1;
    else
        xmcd_stop_flag = 1;
}

static void xmcd_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = xmcd_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void xmcd_usage(FILE *f)
{
    fprintf(f, "usage: xmcd -c CONFIG [--embedded-kafka [--bootstrap-file PATH]] [--check-config]\n"
               "       xmcd --mock-only --bootstrap-file PATH [--brokers N] [--topic NAME:PARTS]... [-c CONFIG]\n"
               "       xmcd --encode-products FILE.tsv [--id-prefix P] [--known-labels]\n"
               "                                 (Products for kcat -P -D '%s' -K '%s'; labels column as known_labels)\n"
               "       xmcd --decode-labeled                             (reads kcat -C -f '%%k%s%%s%s')\n"
               "       xmcd --config-keys | --metrics                    (every config key; every counter and gauge)\n",
            XMCD_TOOL_REC, XMCD_TOOL_KEY, XMCD_TOOL_KEY, XMCD_TOOL_REC);
}

static int xmcd_mock_main(const xmcd_config *conf, int brokers, char **topics, int n_topics, const char *bfile)
{
    char err[512];
    xmcd_mock *mock = xmcd_mock_start(brokers > 0 ? brokers : conf ? conf->embedded_brokers : 3, err, sizeof err);
    if (!mock) {
        xmcd_log(XMCD_LOG_ERROR, "mock_failed", "reason=%s", xmcd_log_q(err));
        return 1;
    }
    int rc = 0;
    if (conf) {
        rc |= xmcd_mock_topic(mock, conf->topic_in, conf->embedded_partitions, err, sizeof err);
        rc |= xmcd_mock_topic(mock, conf->topic_out, conf->embedded_partitions, err, sizeof err);
        rc |= xmcd_mock_topic(mock, conf->topic_dlq, conf->embedded_dlq_partitions, err, sizeof err);
    }
    for (int i = 0; i < n_topics && !rc; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s", topics[i]);
        char *colon = strchr(name, ':');
        int parts = 1;
        if (colon) {
            *colon = 0;
            parts = atoi(colon + 1);
        }
        rc |= xmcd_mock_topic(mock, name, parts > 0 ? parts : 1, err, sizeof err);
    }
    if (!rc && bfile) rc = xmcd_mock_write_bootstrap(mock, bfile, err, sizeof err);
    if (rc) {
        xmcd_log(XMCD_LOG_ERROR, "mock_failed", "reason=%s", xmcd_log_q(err));
        xmcd_mock_stop(mock);
        return 1;
    }
    xmcd_log(XMCD_LOG_INFO, "mock_ready", "bootstrap=%s file=%s", xmcd_mock_bootstraps(mock),
             xmcd_log_q(bfile ? bfile : ""));
    xmcd_signals();
    while (!xmcd_stop_flag) pause();
    xmcd_mock_stop(mock);
    xmcd_log(XMCD_LOG_INFO, "mock_stopped", "reason=signal");
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL, *bfile = NULL, *encode = NULL, *id_prefix = "p";
    int decode = 0, known_labels = 0;
    int embedded = 0, mock_only = 0, check = 0, brokers = 0, n_topics = 0;
    char *topics[64];
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},       {"embedded-kafka", no_argument, NULL, 'e'},
        {"bootstrap-file", required_argument, NULL, 'b'}, {"mock-only", no_argument, NULL, 'm'},
        {"brokers", required_argument, NULL, 'n'},       {"topic", required_argument, NULL, 't'},
        {"check-config", no_argument, NULL, 'k'},        {"help", no_argument, NULL, 'h'},
        {"encode-products", required_argument, NULL, 'E'}, {"id-prefix", required_argument, NULL, 'P'},
        {"decode-labeled", no_argument, NULL, 'D'},     {"config-keys", no_argument, NULL, 'K'},
        {"metrics", no_argument, NULL, 'M'},            {"known-labels", no_argument, NULL, 'L'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'e': embedded = 1; break;
        case 'b': bfile = optarg; break;
        case 'm': mock_only = 1; break;
        case 'n': brokers = atoi(optarg); break;
        case 't':
            if (n_topics < 64) topics[n_topics++] = optarg;
            break;
        case 'k': check = 1; break;
        case 'E': encode = optarg; break;
        case 'P': id_prefix = optarg; break;
        case 'D': decode = 1; break;
        case 'L': known_labels = 1; break;
        case 'K': xmcd_config_keys_write(stdout); return 0;
        case 'M': xmcd_stats_fields_write(stdout); return 0;
        case 'h': xmcd_usage(stdout); return 0;
        default: xmcd_usage(stderr); return 2;
        }
    }
    if (encode) return xmcd_tool_encode(encode, id_prefix, known_labels);
    if (decode) return xmcd_tool_decode();
    if (!conf_path && !mock_only) {
        xmcd_usage(stderr);
        return 2;
    }
    if (mock_only && !bfile) {
        fprintf(stderr, "xmcd: --mock-only needs --bootstrap-file PATH (where the cluster's random address is written)\n");
        return 2;
    }
    if (bfile && !embedded && !mock_only) {
        /* it is where an embedded Kafka's address is written; xmcd never reads it (xmc retrain does) */
        fprintf(stderr, "xmcd: --bootstrap-file needs --embedded-kafka or --mock-only (it is where their address is "
                        "written); against a cluster, set brokers in the config\n");
        return 2;
    }
    char err[1024];
    xmcd_config *conf = NULL;
    if (conf_path) {
        conf = xmcd_config_load(conf_path, err, sizeof err);
        if (!conf) {
            xmcd_log(XMCD_LOG_ERROR, "config_invalid", "reason=%s", xmcd_log_q(err));
            fprintf(stderr, "xmcd: %s\n", err);
            return 2;
        }
        xmcd_log_set_level(conf->log_level);
        if (check) {
            /* the plugin's keys too: its check_config() (stage.h ABI 3) opens no model */
            int prc = xmcd_plugin_check(conf->plugin_path, conf->plugin_cfg, err, sizeof err);
            if (prc != 0) {
                fprintf(stderr, "xmcd: %s: %s\n", conf_path, err);
                xmcd_config_free(conf);
                return 2;
            }
            printf("%s: ok\n", conf_path);
            xmcd_config_free(conf);
            return 0;
        }
    }
    if (mock_only) {
        int rc = xmcd_mock_main(conf, brokers, topics, n_topics, bfile);
        xmcd_config_free(conf);
        return rc;
    }

    xmcd *d = calloc(1, sizeof *d);
    if (!d) return 1;
    int rc = 1;
    xmcd_mock *mock = NULL;
    d->conf = conf;
    d->stop_flag = &xmcd_stop_flag;
    d->hup_flag = &xmcd_hup_flag;
    xmcd_stats_init(&d->stats);
    xmcd_signals();
    if (embedded) {
        mock = xmcd_mock_start(conf->embedded_brokers, err, sizeof err);
        int bad = !mock;
        bad = bad || xmcd_mock_topic(mock, conf->topic_in, conf->embedded_partitions, err, sizeof err);
        bad = bad || xmcd_mock_topic(mock, conf->topic_out, conf->embedded_partitions, err, sizeof err);
        bad = bad || xmcd_mock_topic(mock, conf->topic_dlq, conf->embedded_dlq_partitions, err, sizeof err);
        bad = bad || (bfile && xmcd_mock_write_bootstrap(mock, bfile, err, sizeof err));
        if (bad) {
            xmcd_log(XMCD_LOG_ERROR, "mock_failed", "reason=%s", xmcd_log_q(err));
            goto out;
        }
        conf->brokers = xmcd_mock_bootstraps(mock);
        d->embedded = 1;
        xmcd_log(XMCD_LOG_INFO, "mock_ready", "bootstrap=%s", conf->brokers);
    }
    int config_refused = 0;
    d->plugin = xmcd_plugin_open(conf->plugin_path, conf->plugin_cfg, &config_refused, err, sizeof err);
    if (!d->plugin) {
        /* a plugin.path that loads no plugin of this ABI, or a plugin.config its check_config() refuses, is a
         * config error, as a bad key of xmcd's own; a create() that fails (no model to open) is not */
        xmcd_log(XMCD_LOG_ERROR, config_refused ? "config_invalid" : "plugin_failed", "reason=%s", xmcd_log_q(err));
        if (config_refused) {
            fprintf(stderr, "xmcd: %s\n", err);
            rc = 2;
        }
        goto out;
    }
    d->stats.stage_api = d->plugin->api;
    d->stats.stage_inst = d->plugin->inst;
    char version[XMC_STAGE_VERSION_MAX];
    d->plugin->api->current_version(d->plugin->inst, version, sizeof version);
    xmcd_stats_set_version(&d->stats, version);
    if (d->plugin->repo[0]) { /* the plugin names the repository it serves from (stage.h model_repo()) */
        d->reload = xmcd_reload_start(d->plugin, conf->reload_poll_ms, &d->stats);
        if (!d->reload) {
            xmcd_log(XMCD_LOG_ERROR, "reload_failed", "reason=%s", "cannot start the reload thread");
            goto out;
        }
    }
    d->http = xmcd_http_start(conf->http_addr, conf->http_port, &d->stats, err, sizeof err);
    if (!d->http && err[0]) {
        xmcd_log(XMCD_LOG_ERROR, "http_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    d->offsets = xmcd_offsets_new();
    if (!d->offsets) goto out;
    d->producer = xmcd_producer_new(d, err, sizeof err);
    if (!d->producer) {
        xmcd_log(XMCD_LOG_ERROR, "producer_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    if (conf->mode == XMCD_MODE_EXACTLY_ONCE && xmcd_txn_init(d) != 0) {
        xmcd_log(XMCD_LOG_ERROR, "producer_failed", "reason=%s", "init_transactions failed");
        goto out;
    }
    d->consumer = xmcd_consumer_new(d, err, sizeof err);
    if (!d->consumer) {
        xmcd_log(XMCD_LOG_ERROR, "consumer_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    xmcd_log(XMCD_LOG_INFO, "start",
             "pid=%d brokers=%s group=%s in=%s out=%s dlq=%s mode=%s plugin=%s stage=%s model_version=%s "
             "batch_max_records=%d batch_max_wait_ms=%d max_inflight=%d",
             (int)getpid(), xmcd_log_q(conf->brokers), conf->group_id, conf->topic_in, conf->topic_out,
             conf->topic_dlq, conf->mode == XMCD_MODE_EXACTLY_ONCE ? "exactly-once" : "at-least-once",
             xmcd_log_q(conf->plugin_path), d->plugin->api->name ? d->plugin->api->name : "?",
             xmcd_log_q(version), conf->batch_max_records, conf->batch_max_wait_ms, conf->max_inflight);
    {
        /* one process-wide OpenBLAS serves the plugin's encoder too; its kernels are fixed at load */
        xmc_blas_info bi;
        char advice[512];
        xmc_blas_get_info(&bi);
        if (xmc_blas_advice(&bi, advice, sizeof advice))
            xmcd_log(XMCD_LOG_WARN, "blas_kernels", "kernels=%s cpu=%s advised=OPENBLAS_CORETYPE=%s reason=%s",
                     bi.kernels, bi.cpu, bi.advised, xmcd_log_q(advice));
    }
    rc = xmcd_run(d);
    /* A fatal Kafka client error (not fencing) restarts the clients in-process, from the committed offsets: on
     * Kafka < 2.5 librdkafka's idempotent and transactional producers make fatal what newer brokers let them
     * recover from (KIP-360; `make test-kafka` meets it after a broker's kill -9). Backoff 1, 2, 4 .. 30 s; at
     * most delivery.fatal_restarts in 10 minutes, then exit 1 for a supervisor to see. */
    double window_start = 0;
    int in_window = 0, backoff_ms = 1000;
    while (rc == 1 && d->kafka_fatal && !xmcd_stop_flag) {
        double now = (double)xmcd_now_ns() / 1e9;
        if (now - window_start > 600) {
            window_start = now;
            in_window = 0;
            backoff_ms = 1000;
        }
        if (in_window >= conf->fatal_restarts) {
            xmcd_log(XMCD_LOG_ERROR, "kafka_restart_refused", "restarts=%d within_s=600 limit=%d", in_window,
                     conf->fatal_restarts);
            break;
        }
        in_window++;
        xmcd_count(&d->stats.kafka_restarts, 1);
        xmcd_log(XMCD_LOG_WARN, "kafka_restart", "attempt=%d backoff_ms=%d", in_window, backoff_ms);
        for (int waited = 0; waited < backoff_ms && !xmcd_stop_flag; waited += 100)
            nanosleep(&(struct timespec){0, 100000000L}, NULL);
        if (xmcd_stop_flag) { /* an ordinary stop: the failed run released every record, nothing is in flight */
            xmcd_log(XMCD_LOG_INFO, "stopped", "exit=0 reason=signal_during_restart_backoff");
            rc = 0;
            break;
        }
        backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
        if (xmcd_restart_clients(d, err, sizeof err) != 0) {
            xmcd_log(XMCD_LOG_ERROR, "kafka_restart_failed", "reason=%s", xmcd_log_q(err));
            d->kafka_fatal = 1; /* for the stop line below */
            rc = 1;
            break;
        }
        rc = xmcd_run(d);
    }
    if (rc == 1 && d->kafka_fatal) xmcd_log(XMCD_LOG_ERROR, "stopped", "exit=1");
out:
    xmcd_reload_stop(d->reload);
    xmcd_http_stop(d->http);
    xmcd_release(d);
    xmcd_mock_stop(mock);
    xmcd_config_free(conf);
    free(d);
    return rc;
}
