/* retrain.c: `xmc retrain`, the continuous retrainer: curated records from Kafka into the window, trainings
 * on a timer, a change count or a signal, each gated before it is published (docs/retrain.md).
 *
 *   xmc retrain -c retrain.conf [--bootstrap-file PATH]   run (PATH: a file whose first line is the brokers)
 *   xmc retrain -c retrain.conf --check-config            validate the file and exit (0 or 2)
 *   xmc retrain --config-keys | --metrics                  the key and metric tables (docs/retrain.md embeds them)
 *
 * One thread does everything but training: it polls the consumer, puts each record into the window, and every
 * window.sync_ms fsyncs the window (records, then the offsets after them) and only then commits those offsets
 * to Kafka. Partitions are assigned at the window's own offsets (the earliest retained record where it has
 * none), so a window rebuilt after damage refills from the topic. A training runs in a child process
 * (trainer.h) at a lower priority; this loop only checks on it, so consumption never waits for a training, and
 * no second one starts while it runs. SIGTERM/SIGINT: stop the child, sync, commit, exit 0. SIGHUP: reload the
 * config (live keys apply, others log config_restart_needed). SIGUSR1: train now. */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "../xmcd/http.h"
#include "../xmcd/log.h"
#include "../xmcd/stats.h"
#include "gate.h"
#include "retrain_config.h"
#include "trainer.h"
#include "window.h"
#include "xmc.pb-c.h"

static volatile sig_atomic_t xmcr_stop, xmcr_hup, xmcr_now;

static void xmcr_on_signal(int sig)
{
    if (sig == SIGHUP) xmcr_hup = 1;
    else if (sig == SIGUSR1) xmcr_now = 1;
    else xmcr_stop = 1;
}

/* ==== counters =========================================================================================== */

typedef struct xmcr_stats {
    atomic_uint_fast64_t consumed, bad_records, changes, syncs, commits, commit_failures, trainings, published,
        refused, train_failures, torn, damaged, expired;
    atomic_int_fast64_t records, log_bytes, training, last_train_ms, last_train_rss_kb;
    pthread_mutex_t lock; /* guards the gate figures below (read by the HTTP thread) */
    xmc_gate_result gate;
    char version[XMC_REPO_NAME_MAX];
} xmcr_stats;

#define XMCR_AT(field, type) (offsetof(xmcr_stats, field) + 0 * sizeof((type *){&((xmcr_stats *)0)->field}))
#define XMCR_COUNTER(k, m, field, h) {k, m, XMCD_STAT_COUNTER, XMCD_STAT_XMCD, XMCR_AT(field, atomic_uint_fast64_t), h}
#define XMCR_GAUGE(k, m, field, h) {k, m, XMCD_STAT_GAUGE, XMCD_STAT_XMCD, XMCR_AT(field, atomic_int_fast64_t), h}

static const xmcd_stat_field xmcr_stat_fields[] = {
    XMCR_COUNTER("consumed", "xmc_retrain_records_consumed_total", consumed, "Curated records consumed."),
    XMCR_COUNTER("bad_records", "xmc_retrain_bad_records_total", bad_records,
                 "Records skipped: not an xmc.v1.Product, no id or one over 65535 bytes or with a tab or line "
                 "break, a label with a comma, tab or line break, or more labels than 16 KiB hold."),
    XMCR_COUNTER("changes", "xmc_retrain_window_changes_total", changes,
                 "Records that were new, changed or removed in the window."),
    XMCR_COUNTER("syncs", "xmc_retrain_window_syncs_total", syncs, "Window appends made durable (fsync)."),
    XMCR_COUNTER("commits", "xmc_retrain_commits_total", commits, "Offset commits that succeeded (after a sync)."),
    XMCR_COUNTER("commit_failures", "xmc_retrain_commit_failures_total", commit_failures, "Offset commits that failed."),
    XMCR_COUNTER("expired", "xmc_retrain_window_expired_total", expired, "Records dropped by the age bound."),
    XMCR_COUNTER("torn_tails", "xmc_retrain_window_torn_tails_total", torn,
                 "Torn window appends cut off at start (their records come again from Kafka)."),
    XMCR_COUNTER("damaged", "xmc_retrain_window_damaged_total", damaged,
                 "Damaged window logs set aside at start (the window was rebuilt from the topic)."),
    XMCR_GAUGE("records", "xmc_retrain_window_records", records, "Records in the window."),
    XMCR_GAUGE("log_bytes", "xmc_retrain_window_log_bytes", log_bytes, "Bytes of the window's log."),
    XMCR_COUNTER("trainings", "xmc_retrain_trainings_total", trainings, "Trainings started."),
    XMCR_COUNTER("published", "xmc_retrain_published_total", published, "Versions the gate passed and published."),
    XMCR_COUNTER("refused", "xmc_retrain_refused_total", refused, "Versions the gate refused (kept aside)."),
    XMCR_COUNTER("train_failures", "xmc_retrain_train_failures_total", train_failures,
                 "Trainings that failed (error or the process died)."),
    XMCR_GAUGE("training", "xmc_retrain_training", training, "1 while a training runs."),
    XMCR_GAUGE("last_train_ms", "xmc_retrain_last_train_ms", last_train_ms,
               "Wall time of the last finished training, gate included (ms)."),
    XMCR_GAUGE("last_train_max_rss_kb", "xmc_retrain_last_train_max_rss_kb", last_train_rss_kb,
               "Peak resident set of the last finished training process (kB; pages shared with this one included)."),
};
#define XMCR_NFIELDS (sizeof xmcr_stat_fields / sizeof xmcr_stat_fields[0])

static size_t xmcr_render(void *ctx, char *buf, size_t size)
{
    xmcr_stats *st = ctx;
    size_t n = xmcd_stat_table_render(xmcr_stat_fields, XMCR_NFIELDS, st, 1, buf, size);
    pthread_mutex_lock(&st->lock);
    if (st->version[0] && n < size) {
        const xmc_gate_result *g = &st->gate;
        int k = snprintf(buf + n, size - n,
                         "# HELP xmc_retrain_gate The last gate's figures on the held-out slice.\n"
                         "# TYPE xmc_retrain_gate gauge\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"new\",metric=\"p1\"} %.6f\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"new\",metric=\"p5\"} %.6f\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"new\",metric=\"r10\"} %.6f\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"serving\",metric=\"p1\"} %.6f\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"serving\",metric=\"p5\"} %.6f\n"
                         "xmc_retrain_gate{version=\"%s\",model=\"serving\",metric=\"r10\"} %.6f\n"
                         "xmc_retrain_gate_passed{version=\"%s\"} %d\n",
                         st->version, g->new_p1, st->version, g->new_p5, st->version, g->new_r10, g->serving,
                         g->serving_p1, g->serving, g->serving_p5, g->serving, g->serving_r10, st->version, g->passed);
        if (k > 0) n = (size_t)k < size - n ? n + (size_t)k : size - 1;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

/* ==== the retrainer ====================================================================================== */

typedef struct xmcr {
    xmcr_config *conf;
    char conf_path[1024], brokers[1024];
    xmcr_window *window;
    rd_kafka_t *consumer;
    xmcr_stats stats;
    xmcd_http *http;
    uint64_t pending;           /* records put since the last sync */
    uint64_t changes_since;     /* changes since the last training started */
    uint64_t trainings_done;
    double last_train_start, last_sync, last_stats, last_expire;
    pid_t child;
    int child_fd;
    char child_version[XMC_REPO_NAME_MAX]; /* the version the child trains */
    double child_start;
    char work_dir[1100];
    int fatal;
} xmcr;

static double xmcr_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t xmcr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void xmcr_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int our = level <= 3 ? XMCD_LOG_ERROR : level == 4 ? XMCD_LOG_WARN : level <= 6 ? XMCD_LOG_INFO : XMCD_LOG_DEBUG;
    xmcd_log(our, "kafka_log", "client=%s facility=%s msg=%s", rd_kafka_name(rk), fac, xmcd_log_q(buf));
}

static void xmcr_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    xmcr *r = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) r->fatal = 1;
    xmcd_log(err == RD_KAFKA_RESP_ERR__FATAL ? XMCD_LOG_ERROR : XMCD_LOG_WARN, "kafka_error", "error=%s reason=%s",
             rd_kafka_err2name((rd_kafka_resp_err_t)err), xmcd_log_q(reason));
}

static void xmcr_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                           void *opaque)
{
    xmcr *r = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    if (err) {
        xmcd_count(&r->stats.commit_failures, 1);
        xmcd_log(XMCD_LOG_WARN, "commit_failed", "error=%s", rd_kafka_err2name(err));
    } else {
        xmcd_count(&r->stats.commits, 1);
    }
}

/* Makes the window's buffered records and offsets durable, then commits the offsets (force: even with nothing
 * new). Always asynchronously: the window's own offsets are where its partitions are assigned from, the group's
 * are for monitoring and --dump-window's check, and a synchronous commit waits for the group coordinator: with
 * the broker gone a SIGTERM took 13 s to exit. A failed fsync is fatal: the records are in memory only, and a
 * restart replays them from Kafka. */
static int xmcr_sync(xmcr *r, int force)
{
    char err[512];
    if (xmcr_window_sync(r->window, err, sizeof err)) {
        xmcd_log(XMCD_LOG_ERROR, "window_sync_failed", "reason=%s", xmcd_log_q(err));
        r->fatal = 1;
        return -1;
    }
    xmcd_count(&r->stats.syncs, 1);
    atomic_store(&r->stats.records, (int64_t)xmcr_window_count(r->window));
    atomic_store(&r->stats.log_bytes, (int64_t)xmcr_window_log_bytes(r->window));
    r->last_sync = xmcr_now_s();
    if (!r->pending && !force) return 0;
    r->pending = 0;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (!r->consumer || rd_kafka_assignment(r->consumer, &assigned) || !assigned) return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(assigned->cnt);
    for (int i = 0; i < assigned->cnt; i++) {
        int64_t next = xmcr_window_offset(r->window, r->conf->topic, assigned->elems[i].partition);
        if (next >= 0) rd_kafka_topic_partition_list_add(list, r->conf->topic, assigned->elems[i].partition)->offset = next;
    }
    if (list->cnt) rd_kafka_commit(r->consumer, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_topic_partition_list_destroy(assigned);
    return 0;
}

static void xmcr_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                           void *opaque)
{
    xmcr *r = opaque;
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int64_t next = xmcr_window_offset(r->window, parts->elems[i].topic, parts->elems[i].partition);
            parts->elems[i].offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
            xmcd_log(XMCD_LOG_INFO, "assigned", "topic=%s partition=%d from=%lld", parts->elems[i].topic,
                     (int)parts->elems[i].partition, (long long)next);
        }
        if (coop) rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else rd_kafka_assign(rk, parts);
    } else {
        xmcr_sync(r, 1); /* what was consumed from them is made durable and committed before they go */
        if (coop) rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else rd_kafka_assign(rk, NULL);
    }
}

/* Leaves the group (the revocation's sync and commit run in the rebalance callback, served here), for at most
 * timeout_ms: with the coordinator gone rd_kafka_consumer_close() waits for the commits to time out, and SIGTERM
 * should stop the retrainer promptly. The window is durable already; nothing is lost by giving up. */
static void xmcr_consumer_close(rd_kafka_t *rk, xmcr *r, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *e = q ? rd_kafka_consumer_close_queue(rk, q) : NULL;
    if (e) {
        xmcd_log(XMCD_LOG_WARN, "consumer_close", "error=%s", xmcd_log_q(rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    } else if (q) {
        /* served as events, not callbacks: fetched messages still queued come to this queue too, and a callback
         * poll cannot take them (librdkafka asserts); they are dropped here (not in the window, so not committed)
         * and the rebalance, which the callback would have handled, is handed to it */
        double end = xmcr_now_s() + timeout_ms / 1000.0;
        while (!rd_kafka_consumer_closed(rk) && xmcr_now_s() < end) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (!ev) continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                xmcr_rebalance(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), r);
            rd_kafka_event_destroy(ev);
        }
        if (!rd_kafka_consumer_closed(rk))
            xmcd_log(XMCD_LOG_WARN, "consumer_close", "error=timeout timeout_ms=%d", timeout_ms);
    }
    if (q) rd_kafka_queue_destroy(q);
}

/* The consumer's configuration: the group, no automatic commits, the file's properties, the bootstrap file's
 * brokers. NULL with err. */
static rd_kafka_conf_t *xmcr_kafka_conf(xmcr *r, char *err, size_t errlen)
{
    const char *const defaults[] = {"group.id", r->conf->group_id, "enable.auto.commit", "false",
                                    "enable.auto.offset.store", "false", "auto.offset.reset", "earliest", NULL};
    rd_kafka_conf_t *kconf = xmcr_config_kafka_new(r->conf, defaults, err, errlen);
    if (!kconf) return NULL;
    if (r->brokers[0] && rd_kafka_conf_set(kconf, "bootstrap.servers", r->brokers, err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    return kconf;
}

static rd_kafka_t *xmcr_consumer_new(xmcr *r, char *err, size_t errlen)
{
    rd_kafka_conf_t *kconf = xmcr_kafka_conf(r, err, errlen);
    if (!kconf) return NULL;
    rd_kafka_conf_set_opaque(kconf, r);
    rd_kafka_conf_set_log_cb(kconf, xmcr_kafka_log);
    rd_kafka_conf_set_error_cb(kconf, xmcr_kafka_error);
    rd_kafka_conf_set_rebalance_cb(kconf, xmcr_rebalance);
    rd_kafka_conf_set_offset_commit_cb(kconf, xmcr_commit_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, r->conf->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", r->conf->topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Appends s to buf (cap bytes) with sep before it when buf is not empty; tabs and line breaks become spaces
 * (the window's text goes into a TSV). */
static void xmcr_append(char *buf, size_t cap, size_t *len, const char *sep, const char *s)
{
    if (!s || !*s) return;
    if (*len && sep) {
        size_t sl = strlen(sep);
        if (*len + sl < cap) {
            memcpy(buf + *len, sep, sl);
            *len += sl;
        }
    }
    for (; *s && *len + 1 < cap; s++) buf[(*len)++] = (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s;
    buf[*len] = 0;
}

/* One consumed record into the window; its offset is set whether or not it was usable (a bad record is not
 * consumed again). */
static void xmcr_consume(xmcr *r, rd_kafka_message_t *m)
{
    char err[256];
    xmcd_count(&r->stats.consumed, 1);
    Xmc__V1__Product *p = xmc__v1__product__unpack(NULL, m->len, m->payload);
    static char text[65536], labels[16384];
    size_t tl = 0, ll = 0;
    text[0] = labels[0] = 0;
    /* what the window and its TSV could not hold as it is makes the record bad (counted, skipped), never a cut
     * label or a stop: an id of 1..65535 bytes without tab or line break; labels without ',', tab or line
     * break, all of them together within the label buffer */
    int bad = !p || !p->id || !*p->id || strlen(p->id) > 65535 || strpbrk(p->id, "\t\r\n");
    for (size_t i = 0; !bad && i < p->n_known_labels; i++) {
        const char *l = p->known_labels[i];
        if (!*l || strpbrk(l, ",\t\r\n") || ll + 1 + strlen(l) + 1 > sizeof labels) bad = 1;
        else xmcr_append(labels, sizeof labels, &ll, ",", l);
    }
    if (!bad) {
        /* the stage's text: title, description, brand joined by ". " (plugin.config.fields' default) */
        xmcr_append(text, sizeof text, &tl, ". ", p->title);
        xmcr_append(text, sizeof text, &tl, ". ", p->description);
        xmcr_append(text, sizeof text, &tl, ". ", p->brand);
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (ts <= 0) ts = xmcr_wall_ms();
        int rc = xmcr_window_put(r->window, p->id, labels, text, ts, err, sizeof err);
        if (rc < 0) {
            xmcd_log(XMCD_LOG_ERROR, "window_put_failed", "reason=%s", xmcd_log_q(err));
            r->fatal = 1;
        } else if (rc > 0) {
            xmcd_count(&r->stats.changes, 1);
            r->changes_since++;
        }
    } else {
        xmcd_count(&r->stats.bad_records, 1);
        xmcd_log(XMCD_LOG_DEBUG, "bad_record", "partition=%d offset=%lld", (int)m->partition, (long long)m->offset);
    }
    if (p) xmc__v1__product__free_unpacked(p, NULL);
    if (xmcr_window_set_offset(r->window, rd_kafka_topic_name(m->rkt), m->partition, m->offset + 1, err, sizeof err)) {
        xmcd_log(XMCD_LOG_ERROR, "window_offset_failed", "reason=%s", xmcd_log_q(err));
        r->fatal = 1;
    }
    r->pending++;
}

static void xmcr_train_start(xmcr *r, const char *why)
{
    char err[512];
    if (xmcr_sync(r, 0)) return;
    const xmcr_config *c = r->conf;
    xmc_repo_version_name(r->child_version, sizeof r->child_version);
    xmcr_train_params p = {.repo = c->repo, .work_dir = r->work_dir, .version = r->child_version,
                           .heldout_pct = c->heldout_pct,
                           .margin = c->margin, .threads = c->threads, .nice = c->nice, .nr_splits = c->nr_splits,
                           .max_leaf_size = c->max_leaf_size, .seed = c->seed, .threshold = c->threshold,
                           .shuffle_labels = c->test_shuffle_labels,
                           .publish_pause_ms = c->test_publish_pause_ms, .warm = c->warm,
                           .rebuild = c->rebuild_every > 0 && r->trainings_done % (uint64_t)c->rebuild_every == 0,
                           .keep_versions = c->keep_versions};
    r->last_train_start = xmcr_now_s();
    r->changes_since = 0;
    r->child = xmcr_train_spawn(r->window, &p, &r->child_fd, err, sizeof err);
    if (r->child < 0) {
        r->child = 0;
        xmcd_count(&r->stats.train_failures, 1);
        xmcd_log(XMCD_LOG_ERROR, "training_failed", "reason=%s", xmcd_log_q(err));
        return;
    }
    r->child_start = r->last_train_start;
    xmcd_count(&r->stats.trainings, 1);
    atomic_store(&r->stats.training, 1);
    xmcd_log(XMCD_LOG_INFO, "training_spawned", "pid=%d trigger=%s records=%llu version=%s", (int)r->child, why,
             (unsigned long long)xmcr_window_count(r->window), r->child_version);
}

/* Collects a finished training (block: wait for it). stopped: the retrainer sent it SIGTERM on shutdown. While
 * the retrainer stops (that, or its own SIGTERM/SIGINT: a signal to the process group, Ctrl-C, reaches the child
 * too and may end it before the parent's own kill), a child that died of SIGTERM or SIGINT is logged as
 * training_stopped, not as a failure (one that failed on its own, or died of another signal, is still a failure). */
static void xmcr_train_finish(xmcr *r, int block, int stopped)
{
    xmcr_train_result res;
    if (!r->child || !xmcr_train_collect(r->child, r->child_fd, block, &res)) return;
    xmcr_train_cleanup(r->conf->repo, r->work_dir, r->child_version, r->child);
    r->child = 0;
    r->trainings_done++;
    atomic_store(&r->stats.training, 0);
    atomic_store(&r->stats.last_train_ms, (int64_t)((xmcr_now_s() - r->child_start) * 1000));
    atomic_store(&r->stats.last_train_rss_kb, (int64_t)res.max_rss_kb);
    const xmc_gate_result *g = &res.gate;
    if (res.outcome == XMCR_TRAIN_FAILED && (stopped || xmcr_stop) &&
        (res.term_signal == SIGTERM || res.term_signal == SIGINT)) {
        xmcd_log(XMCD_LOG_INFO, "training_stopped", "version=%s reason=%s", r->child_version, xmcd_log_q(res.error));
        return;
    }
    if (res.outcome == XMCR_TRAIN_FAILED) {
        xmcd_count(&r->stats.train_failures, 1);
        xmcd_log(XMCD_LOG_ERROR, "training_failed", "max_rss_kb=%llu reason=%s", (unsigned long long)res.max_rss_kb,
                 xmcd_log_q(res.error));
        return;
    }
    pthread_mutex_lock(&r->stats.lock);
    r->stats.gate = *g;
    snprintf(r->stats.version, sizeof r->stats.version, "%s", res.version);
    pthread_mutex_unlock(&r->stats.lock);
    xmcd_count(res.outcome == XMCR_TRAIN_PUBLISHED ? &r->stats.published : &r->stats.refused, 1);
    xmcd_log(res.outcome == XMCR_TRAIN_PUBLISHED ? XMCD_LOG_INFO : XMCD_LOG_WARN,
             res.outcome == XMCR_TRAIN_PUBLISHED ? "gate_passed" : "gate_refused",
             "version=%s serving=%s held_out=%llu new_p1=%.4f new_p5=%.4f new_r10=%.4f serving_p1=%.4f "
             "serving_p5=%.4f serving_r10=%.4f margin=%.4f train=%llu labels=%llu warm=%d train_s=%.2f gate_s=%.2f "
             "wall_s=%.2f max_rss_kb=%llu reason=%s",
             res.version, xmcd_log_q(g->serving), (unsigned long long)g->held_out, g->new_p1, g->new_p5, g->new_r10,
             g->serving_p1, g->serving_p5, g->serving_r10, g->margin, (unsigned long long)res.n_train,
             (unsigned long long)res.n_labels, res.warm, res.sec_train, res.sec_gate, xmcr_now_s() - r->child_start,
             (unsigned long long)res.max_rss_kb, xmcd_log_q(g->reason));
    if (res.outcome == XMCR_TRAIN_PUBLISHED)
        xmcd_log(XMCD_LOG_INFO, "published", "version=%s pruned=%u", res.version, res.pruned);
}

static void xmcr_stats_line(xmcr *r)
{
    char line[2048];
    size_t n = xmcd_stat_table_render(xmcr_stat_fields, XMCR_NFIELDS, &r->stats, 0, line, sizeof line);
    (void)n;
    xmcd_log(XMCD_LOG_INFO, "stats", "%s", line[0] ? line + 1 : line);
}

static void xmcr_reload(xmcr *r)
{
    char err[1024];
    xmcr_config *fresh = xmcr_config_load(r->conf_path, err, sizeof err);
    if (!fresh) {
        xmcd_log(XMCD_LOG_ERROR, "config_reload_failed", "reason=%s", xmcd_log_q(err));
        return;
    }
    /* with --bootstrap-file the file's brokers are not what runs, and a restart would not use them either */
    if (r->brokers[0]) fresh->brokers = r->conf->brokers;
    xmcr_config_apply_live(r->conf, fresh);
    xmcr_config_free(fresh);
    xmcd_log(XMCD_LOG_INFO, "config_reloaded", "path=%s", xmcd_log_q(r->conf_path));
}

static int xmcr_run(xmcr *r)
{
    r->last_train_start = r->last_sync = r->last_stats = r->last_expire = xmcr_now_s();
    while (!xmcr_stop && !r->fatal) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 50);
        if (m) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) xmcr_consume(r, m);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                xmcd_log(XMCD_LOG_WARN, "consume_error", "error=%s", rd_kafka_err2name(m->err));
            rd_kafka_message_destroy(m);
        }
        const xmcr_config *c = r->conf;
        double now = xmcr_now_s();
        if (r->pending && (now - r->last_sync >= c->window_sync_ms / 1000.0 || r->pending >= 10000)) xmcr_sync(r, 0);
        if (c->window_max_age_s && now - r->last_expire >= 1.0) {
            xmcd_count(&r->stats.expired, xmcr_window_expire(r->window, xmcr_wall_ms()));
            r->last_expire = now;
        }
        if (xmcr_hup) {
            xmcr_hup = 0;
            xmcr_reload(r);
        }
        xmcr_train_finish(r, 0, 0);
        if (!r->child && !xmcr_stop) { /* a stop signal may have come during this pass: no new training then */
            const char *why = NULL;
            if (xmcr_now) why = "signal";
            else if (c->min_changes && r->changes_since >= (uint64_t)c->min_changes) why = "changes";
            else if (c->interval_s && r->changes_since && now - r->last_train_start >= c->interval_s) why = "interval";
            xmcr_now = 0;
            if (why && xmcr_window_count(r->window) < (uint64_t)c->min_records) {
                xmcd_log(XMCD_LOG_WARN, "training_skipped", "trigger=%s records=%llu min_records=%d", why,
                         (unsigned long long)xmcr_window_count(r->window), c->min_records);
                r->last_train_start = now;
                r->changes_since = 0;
            } else if (why) {
                xmcr_train_start(r, why);
            }
        }
        if (c->stats_interval_ms && (now - r->last_stats) * 1000 >= c->stats_interval_ms) {
            xmcr_stats_line(r);
            r->last_stats = now;
        }
    }
    if (r->child) { /* a clean stop does not wait for a training: it publishes nothing half-way (trainer.h) */
        kill(r->child, SIGTERM);
        xmcr_train_finish(r, 1, 1);
    }
    xmcr_sync(r, 1);
    xmcr_stats_line(r);
    return r->fatal ? 1 : 0;
}

/* ==== --dump-window ====================================================================================== */

static int xmcr_dump_one(void *ctx, const xmcr_record *rec)
{
    return fprintf(ctx, "%s\t%s\t%s\n", rec->id, rec->labels, rec->text) < 0;
}

/* Appends " p:offset" pairs as "p:o,p:o" to buf. */
static void xmcr_pair(char *buf, size_t cap, size_t *len, int32_t part, int64_t off)
{
    int k = snprintf(buf + *len, cap - *len, "%s%d:%lld", *len ? "," : "", (int)part, (long long)off);
    if (k > 0 && (size_t)k < cap - *len) *len += (size_t)k;
}

/* The group's committed offsets of the topic's partitions into committed[] (-1: none committed), asked of Kafka
 * without joining the group (no subscription, so the running retrainer keeps its partitions). 0, or -1 with err. */
static int xmcr_group_committed(xmcr *r, int64_t *committed, char *err, size_t errlen)
{
    rd_kafka_conf_t *kconf = xmcr_kafka_conf(r, err, errlen);
    if (!kconf) return -1;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(kconf);
        return -1;
    }
    int rc = -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r->conf->topic, NULL);
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : rd_kafka_last_error();
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e) {
        snprintf(err, errlen, "metadata of %s: %s", r->conf->topic, rd_kafka_err2str(e));
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(list, r->conf->topic, md->topics[0].partitions[i].id);
    if ((e = rd_kafka_committed(rk, list, 10000))) {
        snprintf(err, errlen, "committed offsets of group %s: %s", r->conf->group_id, rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        int32_t p = list->elems[i].partition;
        if (p < 0 || p >= XMCR_WINDOW_MAX_PARTITIONS) continue;
        if (list->elems[i].err) {
            snprintf(err, errlen, "committed offset of partition %d: %s", (int)p, rd_kafka_err2str(list->elems[i].err));
            goto out;
        }
        committed[p] = list->elems[i].offset >= 0 ? list->elems[i].offset : -1;
    }
    rc = 0;
out:
    if (list) rd_kafka_topic_partition_list_destroy(list);
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* xmc retrain -c CONF --dump-window: the window's records on stdout (id TAB labels TAB text, least recently put
 * first), read without changing a byte of it (xmcr_window_load), so it may run beside the retrainer; on stderr
 * one logfmt line: what the replay found, the window's durable offsets, the group's committed ones, and behind:
 * the partitions where the group committed past the window, i.e. acknowledged records the window lacks. Exit 0;
 * 1 when the window or Kafka cannot be read; 3 when behind is not 0. */
static int xmcr_dump_window(xmcr *r)
{
    const xmcr_config *c = r->conf;
    char err[1024];
    xmcr_window_limits lim = {(uint64_t)c->window_max_records, (int64_t)c->window_max_age_s * 1000,
                              (uint64_t)c->window_compact_mb << 20};
    xmcr_window *w = NULL;
    xmcr_window_open_info info;
    if (xmcr_window_load(c->window_dir, &lim, xmcr_wall_ms(), &w, &info, err, sizeof err)) {
        xmcd_log(XMCD_LOG_ERROR, "window_failed", "reason=%s", xmcd_log_q(err));
        return 1;
    }
    int rc = xmcr_window_foreach(w, xmcr_dump_one, stdout) || fflush(stdout) ? 1 : 0;
    static int64_t committed[XMCR_WINDOW_MAX_PARTITIONS];
    for (int p = 0; p < XMCR_WINDOW_MAX_PARTITIONS; p++) committed[p] = -1;
    char kerr[512] = "";
    int asked = xmcr_group_committed(r, committed, kerr, sizeof kerr) == 0;
    char wbuf[2048] = "", cbuf[2048] = "";
    size_t wl = 0, cl = 0;
    int behind = 0;
    for (int p = 0; p < XMCR_WINDOW_MAX_PARTITIONS; p++) {
        int64_t have = xmcr_window_offset(w, c->topic, p);
        if (have >= 0) xmcr_pair(wbuf, sizeof wbuf, &wl, p, have);
        if (committed[p] >= 0) xmcr_pair(cbuf, sizeof cbuf, &cl, p, committed[p]);
        behind += committed[p] > (have >= 0 ? have : 0);
    }
    static const char *const states[] = {"new", "ok", "torn", "damaged"};
    xmcd_log(XMCD_LOG_INFO, "window_dump",
             "dir=%s state=%s entries=%llu records=%llu log_bytes=%llu topic=%s window_offsets=%s group=%s "
             "committed=%s behind=%d reason=%s",
             xmcd_log_q(c->window_dir), states[info.state], (unsigned long long)info.entries,
             (unsigned long long)xmcr_window_count(w), (unsigned long long)xmcr_window_log_bytes(w),
             xmcd_log_q(xmcr_window_topic(w)), xmcd_log_q(wbuf), c->group_id,
             asked ? xmcd_log_q(cbuf) : "unknown", behind, xmcd_log_q(info.reason));
    if (!asked) {
        xmcd_log(XMCD_LOG_ERROR, "committed_failed", "reason=%s", xmcd_log_q(kerr));
        rc = 1;
    } else if (behind) {
        xmcd_log(XMCD_LOG_ERROR, "window_behind_group",
                 "partitions=%d reason=\"the group committed offsets past the window's: records it acknowledged are "
                 "missing from the window\"",
                 behind);
        rc = 3;
    }
    xmcr_window_close(w);
    return rc;
}

static void xmcr_usage(FILE *f)
{
    fprintf(f, "usage: xmc retrain -c CONFIG [--bootstrap-file PATH] [--check-config | --dump-window]\n"
               "       xmc retrain --config-keys | --metrics\n"
               "--dump-window: the window's records (id TAB labels TAB text) on stdout, read-only; on stderr its\n"
               "  offsets beside the group's committed ones (exit 3 when the group committed past the window)\n"
               "signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the config, SIGUSR1 trains now\n");
}

int cli_retrain(int argc, char **argv)
{
    const char *conf_path = NULL, *bfile = NULL;
    int check = 0, dump = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"bootstrap-file", required_argument, NULL, 'b'},
        {"check-config", no_argument, NULL, 'k'}, {"config-keys", no_argument, NULL, 'K'},
        {"metrics", no_argument, NULL, 'M'},      {"dump-window", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'b': bfile = optarg; break;
        case 'k': check = 1; break;
        case 'D': dump = 1; break;
        case 'K': xmcr_config_keys_write(stdout); return 0;
        case 'M': xmcd_stat_table_write(stdout, xmcr_stat_fields, XMCR_NFIELDS); return 0;
        case 'h': xmcr_usage(stdout); return 0;
        default: xmcr_usage(stderr); return 2;
        }
    }
    if (!conf_path) {
        xmcr_usage(stderr);
        return 2;
    }
    char err[1024];
    xmcr *r = calloc(1, sizeof *r);
    if (!r) return 1;
    pthread_mutex_init(&r->stats.lock, NULL);
    snprintf(r->conf_path, sizeof r->conf_path, "%s", conf_path);
    r->conf = xmcr_config_load(conf_path, err, sizeof err);
    int rc = 2;
    if (!r->conf) {
        xmcd_log(XMCD_LOG_ERROR, "config_invalid", "reason=%s", xmcd_log_q(err));
        fprintf(stderr, "xmc retrain: %s\n", err);
        goto out;
    }
    xmcd_log_set_level(r->conf->log_level);
    if (check) {
        printf("%s: ok\n", conf_path);
        rc = 0;
        goto out;
    }
    rc = 1;
    if (bfile) {
        FILE *f = fopen(bfile, "r");
        if (!f || !fgets(r->brokers, sizeof r->brokers, f)) {
            xmcd_log(XMCD_LOG_ERROR, "bootstrap_failed", "file=%s", xmcd_log_q(bfile));
            if (f) fclose(f);
            goto out;
        }
        fclose(f);
        r->brokers[strcspn(r->brokers, "\r\n")] = 0;
    }
    if (dump) {
        rc = xmcr_dump_window(r);
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = xmcr_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const xmcr_config *c = r->conf;
    snprintf(r->work_dir, sizeof r->work_dir, "%s/work", c->window_dir);
    xmcr_window_limits lim = {(uint64_t)c->window_max_records, (int64_t)c->window_max_age_s * 1000,
                              (uint64_t)c->window_compact_mb << 20};
    xmcr_window_open_info info;
    if (xmcr_window_open(c->window_dir, &lim, xmcr_wall_ms(), &r->window, &info, err, sizeof err)) {
        xmcd_log(XMCD_LOG_ERROR, "window_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    if (info.state == XMCR_WINDOW_TORN) {
        xmcd_count(&r->stats.torn, 1);
        xmcd_log(XMCD_LOG_WARN, "window_torn_tail", "at=%llu bytes=%llu reason=%s",
                 (unsigned long long)info.bad_offset, (unsigned long long)info.torn_bytes, xmcd_log_q(info.reason));
    } else if (info.state == XMCR_WINDOW_DAMAGED) {
        xmcd_count(&r->stats.damaged, 1);
        xmcd_log(XMCD_LOG_ERROR, "window_damaged", "at=%llu reason=%s moved_to=%s action=rebuild_from_topic",
                 (unsigned long long)info.bad_offset, xmcd_log_q(info.reason), xmcd_log_q(info.damaged_path));
    }
    /* a new or rebuilt window, or one whose log holds no entry (a crash while seeding: the seed is written whole
     * or not at all, xmcr_window_seed_tsv), gets the seed; an entry means the seed, or what came after it, is in */
    if ((info.state == XMCR_WINDOW_DAMAGED || info.entries == 0) && c->seed_tsv && *c->seed_tsv) {
        long n = xmcr_window_seed_tsv(r->window, c->seed_tsv, XMCR_SEED_PREFIX, xmcr_wall_ms(), err, sizeof err);
        if (n < 0) {
            xmcd_log(XMCD_LOG_ERROR, "seed_failed", "reason=%s", xmcd_log_q(err));
            goto out;
        }
        xmcd_log(XMCD_LOG_INFO, "window_seeded", "file=%s records=%ld", xmcd_log_q(c->seed_tsv), n);
    }
    int stale = xmcr_train_cleanup_stale(c->repo, r->work_dir);
    if (stale)
        xmcd_log(XMCD_LOG_WARN, "stale_training_removed", "count=%d reason=\"a training died with its retrainer\"",
                 stale);
    atomic_store(&r->stats.records, (int64_t)xmcr_window_count(r->window));
    atomic_store(&r->stats.log_bytes, (int64_t)xmcr_window_log_bytes(r->window));
    r->http = xmcd_http_start_render(c->http_addr, c->http_port, xmcr_render, &r->stats, err, sizeof err);
    if (!r->http && err[0]) {
        xmcd_log(XMCD_LOG_ERROR, "http_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    r->consumer = xmcr_consumer_new(r, err, sizeof err);
    if (!r->consumer) {
        xmcd_log(XMCD_LOG_ERROR, "consumer_failed", "reason=%s", xmcd_log_q(err));
        goto out;
    }
    xmcd_log(XMCD_LOG_INFO, "start", "pid=%d brokers=%s group=%s topic=%s window=%s window_state=%d records=%llu repo=%s",
             (int)getpid(), xmcd_log_q(r->brokers[0] ? r->brokers : c->brokers), c->group_id, c->topic,
             xmcd_log_q(c->window_dir), (int)info.state, (unsigned long long)xmcr_window_count(r->window),
             xmcd_log_q(c->repo));
    rc = xmcr_run(r);
    xmcr_consumer_close(r->consumer, r, 3000);
    xmcd_log(XMCD_LOG_INFO, "stopped", "rc=%d", rc);
out:
    /* closed above (or never joined): destroying must not try again and wait for a coordinator */
    if (r->consumer) rd_kafka_destroy_flags(r->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    xmcd_http_stop(r->http);
    xmcr_window_close(r->window);
    xmcr_config_free(r->conf);
    pthread_mutex_destroy(&r->stats.lock);
    free(r);
    return rc;
}
