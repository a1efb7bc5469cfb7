/* test_xmcd_alloc_faults.c: RELIABILITY R19 for xmcd's own code: fail the Nth allocation / read for N = 1..K in
 * the daemon's modules and its batch path. Pass for a daemon: nothing leaks, and the daemon either carries on
 * with the same outcome (every record's output or dead-letter copy, everything committed) or stops cleanly
 * (exit code 1, the failure logged) without ever committing past a record whose output or dead-letter copy was
 * not acknowledged; a restarted daemon then accounts for every record. Never a crash, a wrong output or a silent
 * drop; a failed call leaves its module as it was (a refused reload leaves the old model and config serving).
 *
 * The injector and the sweep are tests/alloc_faults.h; the Makefile links this program with --wrap and with
 * xmcd's objects (all but main.o), so their calls are the ones counted and failed. librdkafka, libconfig and the
 * fixture stage plugin (dlopen()ed) are shared objects whose own allocations are not reached.
 *
 * Swept, unit level: the offset tracker (assign, track with ring growth and wrap-around, out-of-order done,
 * drop, revoke, committable; a failed call must leave the tracker as it was, and committable must never pass an
 * offset that could not be tracked), the batcher (growth), config loading, the reload thread (start and one check
 * of CURRENT: a refused check leaves v1 serving and v2 is taken when asked again), the stats (no allocation or
 * read at all). Pipeline level: the daemon's loop (xmcd_run, as main.c runs it) on librdkafka's mock cluster in
 * this process with the upper-casing fixture plugin, every allocation counted from the first assignment on:
 * record copies, offset rings, batch and plugin call arrays, retry copies and dead-letter reasons, the config
 * reload of a SIGHUP; in three scenarios (clean with poison records, outputs rejected by the broker, deliveries
 * failing). The consumer is assigned its partitions by the test (a group join costs 3 s on the mock cluster),
 * then xmcd_rebalance() takes the assignment as the rebalance callback would. Exactly-once mode is not swept:
 * the mock cluster neither hides aborted records nor stores transactional offsets, so there is nothing to verify.
 *
 * A pipeline step's run is stopped (as by SIGTERM) once every record is acknowledged, or after 10 s: a daemon
 * that neither finishes nor stops has stalled, which fails the step. `make test` samples the pipeline sweeps:
 * call N only, for the first call of every call site of the unharmed run, the last one and calls spread over
 * 1..K, 8 values of N at least (XMC_AF_PIPELINE_STEPS); `make test-faults` runs every N, both ways
 * (XMC_AF_PIPELINE_STEPS=0). XMC_AF_VERBOSE=1 prints every step and the log's tail of a failed one. */
#include <ctype.h>
#include <libconfig.h>

#include "alloc_faults.h"
#include "xmcd_harness.h"

#include "../src/xmcd/log.h"
#include "../src/xmcd/xmcd.h"

static char *work;                /* the suite's directory */
static char plugin_path[2048];    /* the fixture plugin, build/tests/plugins/upper_stage.so */
static char repo[2200];           /* models v1 and v2 (the fixture's: model.txt = "ok") */

static int setup(void)
{
    work = tu_tmpdir();
    if (!work) return -1;
    snprintf(plugin_path, sizeof plugin_path, "%s", xh_fixture_plugin());
    if (access(plugin_path, R_OK) != 0) {
        fprintf(stderr, "no fixture plugin %s (make %s)\n", plugin_path, plugin_path);
        return -1;
    }
    snprintf(repo, sizeof repo, "%s/models", work);
    xh_write_version(repo, "v1", "ok\n");
    xh_write_version(repo, "v2", "ok\n");
    xh_set_current(repo, "v1");
    xmcd_log_set_level(XMCD_LOG_ERROR); /* the unit sweeps' refusals are expected; the pipeline logs to files */
    return 0;
}

static int teardown(void)
{
    if (work) tu_rmrf(work);
    free(work);
    work = NULL;
    return 0;
}

/* ==== the offset tracker ================================================================================== */

/* A model of one partition's tracking: the records tracked in order, finished or not, and the offset that
 * could not be tracked. The tracker must offer exactly min(one past the last record of the finished prefix,
 * the untracked offset), or nothing before the first record finishes. */
#define OT_MAX 1024
typedef struct {
    int64_t off[OT_MAX];
    uint64_t seq[OT_MAX];
    xmcd_part *part[OT_MAX];
    int state[OT_MAX]; /* 0 pending, 1 done, 2 dropped */
    int n;
    int64_t commit_at, hole;
    int assigned;
} ot_part;

typedef struct {
    xmcd_offsets *t;
    ot_part p[2];
    int refused; /* calls refused (no memory) */
    char *msg;
    size_t size;
    af_outcome res;
} ot_run;

static void ot_wrong(ot_run *r, const char *what)
{
    if (r->res != AF_WRONG) snprintf(r->msg, r->size, "%s", what);
    r->res = AF_WRONG;
}

static int64_t ot_expected(const ot_part *p)
{
    int64_t at = p->commit_at;
    if (p->hole >= 0 && at > p->hole) at = p->hole;
    return at;
}

static uint64_t ot_pending(const ot_run *r)
{
    uint64_t n = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; r->p[i].assigned && k < r->p[i].n; k++) n += r->p[i].state[k] == 0;
    return n;
}

/* committable(all) against the model. */
static void ot_check(ot_run *r, const char *when)
{
    char what[256];
    if (xmcd_offsets_pending(r->t) != ot_pending(r)) {
        snprintf(what, sizeof what, "%s: %llu pending, expected %llu", when,
                 (unsigned long long)xmcd_offsets_pending(r->t), (unsigned long long)ot_pending(r));
        ot_wrong(r, what);
    }
    rd_kafka_topic_partition_list_t *list = xmcd_offsets_committable(r->t, 1);
    for (int i = 0; i < 2; i++) {
        rd_kafka_topic_partition_t *tp = list ? rd_kafka_topic_partition_list_find(list, "in", i) : NULL;
        int64_t want = r->p[i].assigned ? ot_expected(&r->p[i]) : -1;
        int64_t got = tp ? tp->offset : -1;
        if (got != want) {
            snprintf(what, sizeof what, "%s: partition %d committable at %lld, expected %lld (untracked offset %lld)",
                     when, i, (long long)got, (long long)want, (long long)r->p[i].hole);
            ot_wrong(r, what);
        }
    }
    if (list) rd_kafka_topic_partition_list_destroy(list);
}

static void ot_track(ot_run *r, int i, int64_t off)
{
    ot_part *p = &r->p[i];
    uint64_t before = xmcd_offsets_pending(r->t);
    xmcd_part *part = NULL;
    uint64_t seq = 0;
    int rc = xmcd_offsets_track(r->t, "in", i, off, &part, &seq);
    if (!p->assigned) {
        if (rc != 1 || part) ot_wrong(r, "a record of a revoked partition was tracked");
        return;
    }
    if (rc == 0 && p->n < OT_MAX) {
        p->off[p->n] = off;
        p->seq[p->n] = seq;
        p->part[p->n] = part;
        p->state[p->n++] = 0;
        return;
    }
    if (rc != -1 || part) {
        ot_wrong(r, rc == 1 ? "track: an assigned partition reported as not assigned" : "track: bad result");
        return;
    }
    if (xmcd_offsets_pending(r->t) != before) ot_wrong(r, "a refused track changed the pending count");
    if (p->hole < 0 || off < p->hole) p->hole = off;
    if (!r->refused++) snprintf(r->msg, r->size, "track of partition %d offset %lld refused (no memory)", i, (long long)off);
    if (r->res == AF_OK) r->res = AF_ERROR;
}

/* Finishes (or drops) the k-th record tracked on partition i. */
static void ot_finish(ot_run *r, int i, int k, int drop)
{
    ot_part *p = &r->p[i];
    if (k >= p->n || p->state[k]) return;
    if (drop)
        xmcd_offsets_drop(r->t, p->part[k], p->seq[k]);
    else
        xmcd_offsets_done(r->t, p->part[k], p->seq[k]);
    p->state[k] = drop ? 2 : 1;
    if (!p->assigned) return; /* a revoked partition's records no longer move anything */
    int prefix = 0;
    while (prefix < p->n && p->state[prefix] == 1) prefix++;
    if (prefix) p->commit_at = p->off[prefix - 1] + 1;
}

/* Tracks offsets from..to-1 on partition i. */
static void ot_track_range(ot_run *r, int i, int64_t from, int64_t to)
{
    for (int64_t o = from; o < to; o++) ot_track(r, i, o);
}

static af_outcome op_offsets(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(list, "in", 0);
    rd_kafka_topic_partition_list_add(list, "in", 1);
    rd_kafka_topic_partition_list_t *p1 = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(p1, "in", 1);
    static ot_run r;
    memset(&r, 0, sizeof r);
    r.msg = msg;
    r.size = size;
    for (int i = 0; i < 2; i++) r.p[i].commit_at = r.p[i].hole = -1;
    af_on();
    r.t = xmcd_offsets_new();
    if (!r.t) {
        af_off();
        snprintf(msg, size, "xmcd_offsets_new: no memory");
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_topic_partition_list_destroy(p1);
        return AF_ERROR;
    }
    if (xmcd_offsets_assign(r.t, list) != 0) {
        rd_kafka_topic_partition_list_t *a = xmcd_offsets_assigned(r.t);
        if (a->cnt) ot_wrong(&r, "a refused assign left partitions assigned");
        else snprintf(msg, size, "assign refused (no memory)");
        rd_kafka_topic_partition_list_destroy(a);
        if (r.res == AF_OK) r.res = AF_ERROR;
        goto out;
    }
    r.p[0].assigned = r.p[1].assigned = 1;
    ot_check(&r, "assigned");
    ot_track_range(&r, 0, 100, 300); /* the first ring of 256 */
    ot_track_range(&r, 1, 0, 5);
    ot_check(&r, "tracked");
    for (int k = 99; k >= 0; k--) ot_finish(&r, 0, k, 0); /* acknowledged out of order */
    ot_check(&r, "p0 first 100 done");
    ot_finish(&r, 1, 2, 0);
    ot_check(&r, "p1 #2 done");
    ot_finish(&r, 1, 0, 0);
    ot_finish(&r, 1, 1, 0);
    ot_check(&r, "p1 #0-2 done");
    ot_track_range(&r, 0, 300, 500); /* the ring wraps, then grows to 512 with its head at 100 */
    ot_check(&r, "p0 grown");
    for (int k = 100; k < 400; k++)
        if (k != 250) ot_finish(&r, 0, k, 0);
    ot_check(&r, "p0 done but #250");
    ot_finish(&r, 1, 3, 1); /* dropped: the commit point never passes it */
    ot_finish(&r, 1, 4, 0);
    ot_check(&r, "p1 #3 dropped");
    ot_finish(&r, 0, 250, 0);
    ot_check(&r, "p0 #250 done");
    xmcd_offsets_revoke(r.t, p1);
    r.p[1].assigned = 0;
    ot_check(&r, "p1 revoked");
    ot_track(&r, 1, 5); /* not ours any more */
out:
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < r.p[i].n; k++) ot_finish(&r, i, k, 0);
    xmcd_offsets_free(r.t);
    af_off();
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_topic_partition_list_destroy(p1);
    return r.res;
}

static void test_offsets(void)
{
    af_result r;
    af_sweep_opts("offsets: assign, track, done, commit", op_offsets, NULL, &r, &(af_opts){.classes = 1u << AF_ALLOC});
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) >= 10);
}

/* ==== the batcher ========================================================================================= */

static af_outcome op_batch(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    xmcd_batch b;
    memset(&b, 0, sizeof b);
    af_outcome res = AF_OK;
    af_on();
    for (uintptr_t i = 1; i <= 600; i++) {
        xmcd_batch before = b;
        if (xmcd_batch_add(&b, (xmcd_rec *)i, 1000 * i) == 0) continue;
        if (b.n != before.n || b.cap != before.cap || b.recs != before.recs || b.first_ns != before.first_ns) {
            snprintf(msg, size, "a refused add changed the batch");
            res = AF_WRONG;
        } else {
            snprintf(msg, size, "add of record %lu refused (no memory)", (unsigned long)i);
            res = AF_ERROR;
        }
        break;
    }
    af_off();
    for (size_t i = 0; i < b.n && res != AF_WRONG; i++)
        if (b.recs[i] != (xmcd_rec *)(uintptr_t)(i + 1) || b.first_ns != 1000) {
            snprintf(msg, size, "the batch lost record %zu", i + 1);
            res = AF_WRONG;
        }
    if (res == AF_OK && (b.n != 600 || !xmcd_batch_due(&b, 600, 1000, 1000) || xmcd_batch_due(&b, 601, 1, 1000))) {
        snprintf(msg, size, "600 records added, batch of %zu", b.n);
        res = AF_WRONG;
    }
    xmcd_batch_free(&b);
    return res;
}

static void test_batcher(void)
{
    af_result r;
    af_sweep_opts("batcher: 600 records", op_batch, NULL, &r, &(af_opts){.classes = 1u << AF_ALLOC});
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT_EQUAL(r.k[AF_ALLOC], 3);
    CU_ASSERT_EQUAL(AF_ERRORS(r, AF_ALLOC), 6);
}

/* ==== config ============================================================================================== */

static const char *xa_conf_text =
    "brokers = \"127.0.0.1:1\";\n"
    "topics = { in = \"a\"; out = \"b\"; dlq = \"c\"; };\n"
    "batch = { max_records = 17; max_wait_ms = 3; };\n"
    "delivery = { commit_interval_ms = 50; };\n"
    "plugin = { path = \"/nonexistent.so\"; config = { model_repo = \"/m\"; x = 1; }; };\n"
    "kafka = [ \"socket.timeout.ms=5000\" ];\n"
    "kafka_consumer = [ \"fetch.wait.max.ms=10\" ];\n";

static af_outcome op_config(void *vctx, char *msg, size_t size)
{
    const char *path = vctx;
    char err[1024] = "";
    af_on();
    xmcd_config *conf = xmcd_config_load(path, err, sizeof err);
    af_off();
    if (!conf) {
        snprintf(msg, size, "%s", err);
        /* the reason names the failure: memory, or the file that could not be read */
        if (af.cls == AF_ALLOC ? !strstr(err, "out of memory") : !strstr(err, "cannot read")) return AF_WRONG;
        return AF_ERROR;
    }
    af_outcome res = AF_OK;
    if (conf->batch_max_records != 17 || conf->batch_max_wait_ms != 3 || conf->commit_interval_ms != 50 ||
        strcmp(conf->topic_dlq, "c") || strcmp(conf->plugin_path, "/nonexistent.so") || !conf->kafka_consumer) {
        snprintf(msg, size, "loaded, but not what the file says");
        res = AF_WRONG;
    }
    xmcd_config_free(conf);
    return res;
}

static void test_config(void)
{
    char path[2300];
    snprintf(path, sizeof path, "%s/unit.conf", work);
    CU_ASSERT_FATAL(tu_write_file(path, xa_conf_text) == 0);
    af_result r;
    af_sweep("config load", op_config, path, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

/* ==== the reload thread =================================================================================== */

static xmcd_plugin *xa_plugin_v1(char *err, size_t errlen)
{
    char text[2600];
    config_t cfg;
    xh_set_current(repo, "v1");
    snprintf(text, sizeof text, "c = { model_repo = \"%s\"; };", repo);
    config_init(&cfg);
    xmcd_plugin *plugin = NULL;
    if (config_read_string(&cfg, text) == CONFIG_TRUE)
    {
        int refused;
        plugin = xmcd_plugin_open(plugin_path, config_lookup(&cfg, "c"), &refused, err, errlen);
    }
    config_destroy(&cfg);
    return plugin;
}

static void xa_serving(xmcd_plugin *plugin, char *ver, size_t size)
{
    plugin->api->current_version(plugin->inst, ver, size);
}

/* Starts the reload thread, asks it to check the repository (CURRENT names v2) and stops it. Returns 1 when
 * the check ran (v2 taken or refused), 0 when the thread did not start or the check did not come to a load. */
static int xa_reload_once(xmcd_plugin *plugin, xmcd_stats *stats, int armed)
{
    if (armed) af_on();
    xmcd_reload *reload = xmcd_reload_start(plugin, 0, stats);
    if (reload) {
        xmcd_reload_kick(reload);
        double end = xh_now() + 5;
        /* until the check is over: a load was tried, or the injected failure happened (a failed read of CURRENT
         * ends the check without either). Not "a read was made": on a loaded machine the stop could then come
         * before the kicked check got to call N, and the sweep saw a run whose calls did not repeat. */
        while (xh_now() < end && atomic_load(&stats->swaps) + atomic_load(&stats->refusals) == 0 &&
               !(armed && atomic_load(&af.injected) > 0))
            xh_sleep_ms(1);
        xmcd_reload_stop(reload); /* joins: the check in progress ends first */
    }
    if (armed) af_off();
    return atomic_load(&stats->swaps) + atomic_load(&stats->refusals) > 0;
}

static af_outcome op_reload(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    char err[512] = "", ver[XMC_STAGE_VERSION_MAX];
    static xmcd_stats stats;
    xmcd_stats_init(&stats);
    xmcd_plugin *plugin = xa_plugin_v1(err, sizeof err);
    if (!plugin) {
        snprintf(msg, size, "setup: %s", err);
        return AF_WRONG;
    }
    xh_set_current(repo, "v2");
    int checked = xa_reload_once(plugin, &stats, 1);
    af_outcome res = AF_OK;
    xa_serving(plugin, ver, sizeof ver);
    if (!checked) {
        snprintf(msg, size, "reload check refused (thread or CURRENT), serving %s", ver);
        res = AF_ERROR;
        if (strcmp(ver, "v1") || atomic_load(&stats.swaps)) {
            snprintf(msg, size, "the check was refused, but serving %s", ver);
            res = AF_WRONG;
        } else if (!xa_reload_once(plugin, &stats, 0)) { /* asked again unharmed: v2 is taken */
            snprintf(msg, size, "v2 not taken when asked again");
            res = AF_WRONG;
        } else {
            xa_serving(plugin, ver, sizeof ver);
        }
    }
    if (res != AF_WRONG && (strcmp(ver, "v2") || atomic_load(&stats.swaps) != 1)) {
        snprintf(msg, size, "after the check: serving %s, %llu swaps", ver, (unsigned long long)atomic_load(&stats.swaps));
        res = AF_WRONG;
    }
    xmcd_plugin_close(plugin);
    xh_set_current(repo, "v1");
    return res;
}

static void test_reload(void)
{
    af_result r;
    af_sweep("reload thread: v1 serving, CURRENT v2", op_reload, NULL, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0 && AF_ERRORS(r, AF_IO) > 0);
}

/* ==== stats: no allocation or read at all ================================================================= */

static af_outcome op_stats(void *vctx, char *msg, size_t size)
{
    (void)vctx;
    static xmcd_stats stats;
    static char buf[64 * 1024];
    xmcd_stats_init(&stats);
    af_on();
    for (uint64_t v = 0; v < 5000; v += 7) xmcd_hist_add(&stats.stage_us[XMCD_STAGE_E2E], v);
    xmcd_count(&stats.consumed, 3);
    xmcd_stats_set_version(&stats, "v1");
    uint64_t p99 = xmcd_hist_quantile(&stats.stage_us[XMCD_STAGE_E2E], 0.99);
    size_t len = xmcd_stats_prometheus(&stats, buf, sizeof buf);
    xmcd_stats_log(&stats);
    af_off();
    if (p99 < 4000 || !len || !strstr(buf, "xmcd_records_consumed_total 3")) {
        snprintf(msg, size, "stats wrong: p99 %llu, %zu bytes", (unsigned long long)p99, len);
        return AF_WRONG;
    }
    return AF_OK;
}

static void test_stats(void)
{
    af_result r;
    af_sweep("stats: histograms, text", op_stats, NULL, &r);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT_EQUAL(r.k[AF_ALLOC], 0); /* the record path counts without allocating */
    CU_ASSERT_EQUAL(r.k[AF_IO], 0);
}

/* ==== the pipeline on the mock cluster ===================================================================== */

/* Record kinds: good ones become "v1|<VALUE upper-cased>", BAD ones are failed by the plugin (PLUGIN) and big
 * ones are over the fixture's max_record_bytes (TOO_LARGE): both dead-lettered. */
enum { XA_GOOD, XA_BAD, XA_BIG };

static int xa_kind(int id) { return id % 8 == 3 ? XA_BAD : id % 11 == 5 ? XA_BIG : XA_GOOD; }

static const char *xa_value(int id, size_t *len)
{
    static char buf[1600];
    switch (xa_kind(id)) {
    case XA_BAD: *len = (size_t)snprintf(buf, sizeof buf, "BAD record %d", id); break;
    case XA_BIG:
        memset(buf, 'z', 1500);
        *len = 1500;
        break;
    default: *len = (size_t)snprintf(buf, sizeof buf, "product %d trail shoe", id); break;
    }
    return buf;
}

typedef struct {
    const char *name;
    int records;
    int hup;                 /* a SIGHUP (config reload with a changed batch size) as the first thing */
    rd_kafka_resp_err_t err; /* pushed on Produce requests before the run (0: none) */
    int err_count;
    const char *dlq_ok;      /* the code a good record may be dead-lettered with (NULL: none) */
} xa_scenario;

/* What the verifier found for one id. */
typedef struct {
    int out_ok, dlq_ok, bad; /* right outputs, right dead-letter copies, anything else with its key */
    char why[160];
} xa_seen;

static volatile sig_atomic_t xa_stop_flag, xa_hup_flag;

/* A consumer as consumer.c makes it, but assigned by the test (xmcd_rebalance) instead of by a group join. */
static void xa_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                         void *opaque)
{
    (void)rk;
    xmcd *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    xmcd_offsets_commit_result(d->offsets, err, offsets);
    xmcd_count(err ? &d->stats.commit_failures : &d->stats.commits, 1);
}

static rd_kafka_t *xa_consumer_new(xmcd *d, char *err, size_t errlen)
{
    static const char *const kv[][2] = {{"client.id", "xmcd-consumer"}, {"enable.auto.commit", "false"},
                                        {"enable.auto.offset.store", "false"}, {"auto.offset.reset", "earliest"},
                                        {"fetch.wait.max.ms", "5"}, {"log_level", "3"},
                                        {"reconnect.backoff.ms", "5"}, {"reconnect.backoff.max.ms", "50"}};
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", d->conf->brokers, err, errlen) ||
        rd_kafka_conf_set(kc, "group.id", d->conf->group_id, err, errlen)) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(kc, kv[i][0], kv[i][1], err, errlen)) {
            rd_kafka_conf_destroy(kc);
            return NULL;
        }
    rd_kafka_conf_set_opaque(kc, d);
    rd_kafka_conf_set_offset_commit_cb(kc, xa_commit_cb);
    rd_kafka_conf_set_log_cb(kc, xmcd_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, xmcd_kafka_error_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Tears down what xa_daemon_up built, as main.c does. */
static void xa_daemon_down(xmcd *d)
{
    xmcd_release(d);
    xmcd_config_free(d->conf);
    memset(d, 0, sizeof *d);
}

/* The daemon as main.c starts it (no reload thread, no HTTP), its input partitions assigned from the offsets
 * given: the group's committed ones, which the consumer would fetch itself, are read by the test and handed over
 * (librdkafka waits 100 ms before it looks up a partition's start on its own). */
static int xa_daemon_up(xmcd *d, const char *conf_path, const int64_t *from, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    xmcd_stats_init(&d->stats);
    xa_stop_flag = xa_hup_flag = 0;
    d->stop_flag = &xa_stop_flag;
    d->hup_flag = &xa_hup_flag;
    d->conf = xmcd_config_load(conf_path, err, errlen);
    if (!d->conf) return -1;
    xmcd_log_set_level(d->conf->log_level);
    int refused;
    d->plugin = xmcd_plugin_open(d->conf->plugin_path, d->conf->plugin_cfg, &refused, err, errlen);
    if (!d->plugin) goto fail;
    d->stats.stage_api = d->plugin->api;
    d->stats.stage_inst = d->plugin->inst;
    d->offsets = xmcd_offsets_new();
    d->producer = d->offsets ? xmcd_producer_new(d, err, errlen) : NULL;
    d->consumer = d->producer ? xa_consumer_new(d, err, errlen) : NULL;
    if (!d->consumer) goto fail;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(XH_PARTS);
    for (int p = 0; p < XH_PARTS; p++)
        rd_kafka_topic_partition_list_add(parts, d->conf->topic_in, p)->offset = from[p] < 0 ? 0 : from[p];
    xmcd_rebalance(d, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (d->fatal) {
        snprintf(err, errlen, "assignment failed");
        goto fail;
    }
    return 0;
fail:
    xa_daemon_down(d);
    return -1;
}

/* Stops the run (stop flag, as SIGTERM) once `target` records are acknowledged, or at the deadline. */
typedef struct {
    xmcd *d;
    uint64_t target;
    double deadline;
    atomic_int over, timed_out;
} xa_watch;

static void *xa_watch_main(void *arg)
{
    xa_watch *w = arg;
    while (!atomic_load(&w->over)) {
        uint64_t acks = atomic_load(&w->d->stats.output_acks) + atomic_load(&w->d->stats.dead_letter_acks);
        if (acks < w->target && xh_now() > w->deadline) atomic_store(&w->timed_out, 1);
        if (acks >= w->target || atomic_load(&w->timed_out)) {
            xa_stop_flag = 1;
            /* wake the consumer poll: the loop would see the flag at the poll's timeout (100 ms when idle) */
            rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(w->d->consumer);
            if (q) {
                rd_kafka_queue_yield(q);
                rd_kafka_queue_destroy(q);
            }
            break;
        }
        usleep(2000);
    }
    return NULL;
}

/* Runs xmcd_run() on d until `target` acknowledgements (or the deadline); armed: with the fault armed. Returns
 * its exit code; *timed_out when the watcher had to stop it. */
static int xa_run(xmcd *d, uint64_t target, double timeout_s, int armed, int *timed_out)
{
    static xa_watch w;
    w.d = d;
    w.target = target;
    w.deadline = xh_now() + timeout_s;
    atomic_store(&w.over, 0);
    atomic_store(&w.timed_out, 0);
    pthread_t th;
    int rc = -1;
    if (pthread_create(&th, NULL, xa_watch_main, &w) == 0) {
        if (armed) af_on();
        rc = xmcd_run(d);
        if (armed) af_off();
        atomic_store(&w.over, 1);
        pthread_join(th, NULL);
    }
    *timed_out = atomic_load(&w.timed_out);
    return rc;
}

/* A pipeline sweep's state: one mock cluster and its topics for the whole sweep (a topic created on the mock
 * costs a second); each step has its own consumer group, so that it reads the input from the start, and reads
 * back only the copies past the marks it took before its run. */
typedef struct {
    const xa_scenario *sc;
    xh_mock mock;
    rd_kafka_t *reader; /* the verifier's consumer */
    int step;
    char group[64];
    int64_t mark[2][XH_PARTS]; /* output and dead-letter partitions' high watermarks before the step */
} xa_sweep;

static const char *const xa_topics[2] = {XH_TOPIC_OUT, XH_TOPIC_DLQ};
static const int xa_parts[2] = {XH_PARTS, 1};

/* The high watermarks of the output and dead-letter partitions; -1 if one cannot be read. */
static int xa_high(rd_kafka_t *rk, int64_t high[2][XH_PARTS])
{
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < xa_parts[t]; p++) {
            int64_t lo;
            if (rd_kafka_query_watermark_offsets(rk, xa_topics[t], p, &lo, &high[t][p], 5000)) return -1;
        }
    return 0;
}

static void xa_write_conf(const char *path, const xa_sweep *x, int max_records)
{
    char text[4096];
    snprintf(text, sizeof text,
             "brokers = \"%s\";\n"
             "group_id = \"%s\";\n"
             "topics = { in = \"" XH_TOPIC_IN "\"; out = \"" XH_TOPIC_OUT "\"; dlq = \"" XH_TOPIC_DLQ "\"; };\n"
             "batch = { max_records = %d; max_wait_ms = 5; };\n"
             "delivery = { commit_interval_ms = 20; max_inflight = 1000; drain_deadline_ms = 3000;\n"
             "             message_timeout_ms = 1000; };\n"
             "plugin = { path = \"%s\"; config = { model_repo = \"%s\"; max_record_bytes = 1000; }; };\n"
             "stats = { interval_ms = 0; };\n"
             "log = { level = \"info\"; kafka_level = 3; };\n"
             "kafka = [ \"reconnect.backoff.ms=5\", \"reconnect.backoff.max.ms=50\" ];\n"
             "kafka_producer = [ \"linger.ms=1\" ];\n",
             x->mock.bootstraps, x->group, max_records, plugin_path, repo);
    tu_write_file(path, text);
}

/* Reads what the step added to the output and dead-letter topics into seen[]: an output must be the good
 * record's value upper-cased, a dead-letter copy the input's value with its error code and context headers.
 * Returns -1 if they cannot be read. */
static int xa_collect(xa_sweep *x, int n, xa_seen *seen)
{
    int64_t high[2][XH_PARTS];
    if (xa_high(x->reader, high)) return -1;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(XH_PARTS + 1);
    int remaining = 0;
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < xa_parts[t]; p++) {
            if (high[t][p] > x->mark[t][p]) {
                rd_kafka_topic_partition_list_add(list, xa_topics[t], p)->offset = x->mark[t][p];
                remaining++;
            } else {
                high[t][p] = -1; /* nothing to read */
            }
        }
    rd_kafka_assign(x->reader, list);
    double end = xh_now() + 20;
    while (remaining > 0 && xh_now() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(x->reader, 100);
        if (!m) continue;
        int dlq = m->rkt && !strcmp(rd_kafka_topic_name(m->rkt), XH_TOPIC_DLQ), p = m->partition;
        if (!m->err) {
            char key[16] = "", value[1700], code[64] = "", hv[64];
            int id = -1;
            if (m->key_len > 3 && m->key_len < sizeof key) {
                memcpy(key, m->key, m->key_len);
                key[m->key_len] = 0;
                id = atoi(key + 3);
            }
            if (id >= 0 && id < n) {
                xa_seen *s = &seen[id];
                size_t len;
                const char *in = xa_value(id, &len);
                if (!dlq) {
                    size_t vl = (size_t)snprintf(value, sizeof value, "v1|%.*s", (int)len, in);
                    for (size_t i = 3; i < vl; i++) value[i] = (char)toupper((unsigned char)value[i]);
                    if (xa_kind(id) == XA_GOOD && m->len == vl && !memcmp(m->payload, value, vl))
                        s->out_ok++;
                    else if (!s->bad++)
                        snprintf(s->why, sizeof s->why, "output of %zu bytes \"%.40s\"", m->len,
                                 m->payload ? (const char *)m->payload : "");
                } else {
                    const char *want =
                        xa_kind(id) == XA_BAD ? "PLUGIN" : xa_kind(id) == XA_BIG ? "TOO_LARGE" : x->sc->dlq_ok;
                    xh_header(m, "xmc.error.code", code, sizeof code);
                    int ok = want && !strcmp(code, want) && m->len == len && !memcmp(m->payload, in, len) &&
                             !xh_header(m, "xmc.source.offset", hv, sizeof hv) &&
                             !xh_header(m, "xmc.error.message", hv, sizeof hv);
                    if (ok)
                        s->dlq_ok++;
                    else if (!s->bad++)
                        snprintf(s->why, sizeof s->why, "dead-letter copy with code \"%s\" of %zu bytes", code, m->len);
                }
            }
        }
        int64_t *h = &high[dlq][p >= 0 && p < XH_PARTS ? p : 0];
        if (*h >= 0 && (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || !m->err) && m->offset + (m->err ? 0 : 1) >= *h) {
            *h = -1;
            remaining--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(x->reader, NULL);
    rd_kafka_topic_partition_list_destroy(list);
    return remaining ? -1 : 0;
}

/* Why the daemon stopped: the first line at level error before the "stopped" line (an out_of_memory one if
 * there is one), from its event on; "" if none. */
static void xa_stop_reason(const char *log, char *out, size_t size)
{
    FILE *f = fopen(log, "r");
    char line[1024];
    int oom = 0;
    out[0] = 0;
    while (f && fgets(line, sizeof line, f) && !strstr(line, "event=stopped"))
        if (strstr(line, "level=error") && (!out[0] || (!oom && strstr(line, "event=out_of_memory")))) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, size, "%s", strstr(line, "event=") ? strstr(line, "event=") : line);
            oom = strstr(line, "event=out_of_memory") != NULL;
        }
    if (f) fclose(f);
}

/* One step: the daemon runs with the fault armed from the first assignment on; then, unless it carried on to
 * the end, a restart runs unharmed from the committed offsets; then the verdict on the copies and the commits. */
static af_outcome xa_step(xa_sweep *x, const char *log, char *msg, size_t size)
{
    const xa_scenario *sc = x->sc;
    const int n = sc->records;
    char conf[2400], conf2[2400], err[1024] = "", stopped[600] = "";
    snprintf(conf, sizeof conf, "%s/xmcd.conf", work);
    snprintf(conf2, sizeof conf2, "%s/xmcd.conf.hup", work);
    snprintf(x->group, sizeof x->group, "xmcd-af-%d", ++x->step);
    if (xa_high(x->reader, x->mark)) {
        snprintf(msg, size, "setup: cannot read the output topics' watermarks");
        return AF_WRONG;
    }
    xa_write_conf(conf, x, 4);
    static xmcd d;
    static const int64_t start[XH_PARTS];
    if (xa_daemon_up(&d, conf, start, err, sizeof err) != 0) {
        snprintf(msg, size, "setup: %s", err);
        return AF_WRONG;
    }
    if (sc->hup) { /* SIGHUP with a changed file: batch.max_records 4 -> 5 */
        xa_write_conf(conf2, x, 5);
        rename(conf2, conf);
        xa_hup_flag = 1;
    }
    size_t stacked = 0; /* each step starts with err_count errors stacked on the broker (a step may leave some) */
    rd_kafka_mock_broker_error_stack_cnt(x->mock.mc, 1, 0 /* Produce */, &stacked);
    for (int i = (int)stacked; i < sc->err_count; i++)
        rd_kafka_mock_broker_push_request_error_rtts(x->mock.mc, 1, 0 /* Produce */, 1, sc->err, 0);
    int timed_out = 0, timed_out2 = 0, rc2 = 0;
    int rc = xa_run(&d, (uint64_t)n, 10, 1, &timed_out);
    int max_records = d.conf->batch_max_records;
    xa_daemon_down(&d);
    int64_t com[XH_PARTS], high[XH_PARTS];
    if (xh_committed(x->mock.bootstraps, x->group, com) != 0) {
        snprintf(msg, size, "cannot read the committed offsets");
        return AF_WRONG;
    }
    xh_input_high(x->mock.bootstraps, high);
    uint64_t left = 0;
    for (int p = 0; p < XH_PARTS; p++) left += (uint64_t)(high[p] - (com[p] < 0 ? 0 : com[p]));
    if (rc == 1) xa_stop_reason(log, stopped, sizeof stopped);
    if (left) { /* a restart, unharmed, accounts for the records from the committed offsets on */
        if (xa_daemon_up(&d, conf, com, err, sizeof err) != 0) {
            snprintf(msg, size, "restart: %s", err);
            return AF_WRONG;
        }
        rc2 = xa_run(&d, left, 15, 0, &timed_out2);
        xa_daemon_down(&d);
    }
    xa_seen *seen = calloc((size_t)n, sizeof *seen);
    if (!seen || xa_collect(x, n, seen)) {
        free(seen);
        snprintf(msg, size, "cannot read the output topics");
        return AF_WRONG;
    }
    int lost = 0, bad = 0, passed = 0, first_lost = -1, first_bad = -1;
    for (int id = 0; id < n; id++) {
        int accounted = seen[id].out_ok + seen[id].dlq_ok > 0;
        if (!accounted && lost++ == 0) first_lost = id;
        if (seen[id].bad && bad++ == 0) first_bad = id;
        /* the restart replays from the committed offsets: a record below them had to be accounted for before */
        passed += !accounted && xh_inputs[id].offset < com[xh_inputs[id].partition];
    }
    af_outcome res = AF_WRONG;
    if (bad)
        snprintf(msg, size, "id %d: %s", first_bad, seen[first_bad].why);
    else if (passed)
        snprintf(msg, size, "%d records below the committed offsets were never accounted for", passed);
    else if (lost)
        snprintf(msg, size, "id %d and %d more never accounted for (exit %d%s, restart exit %d%s)", first_lost, lost - 1,
                 rc, timed_out ? ", stalled" : "", rc2, timed_out2 ? ", stalled" : "");
    else if (rc == 0 && (timed_out || left))
        snprintf(msg, size, "carried on, but %s", timed_out ? "stalled" : "left records uncommitted");
    else if (rc2 != 0 || timed_out2)
        snprintf(msg, size, "the restart exited %d%s", rc2, timed_out2 ? " (stalled)" : "");
    else if (rc != 0 && rc != 1)
        snprintf(msg, size, "exit %d", rc);
    else if (rc == 1 && !stopped[0])
        snprintf(msg, size, "exit 1 without an error logged");
    else if (sc->hup && max_records != (xh_file_count(log, "event=config_reload_refused") ? 4 : 5))
        snprintf(msg, size, "after the SIGHUP, batch.max_records is %d (refused: the old 4; taken: the new 5)", max_records);
    else if (rc == 1) {
        snprintf(msg, size, "stopped: %s", stopped);
        res = AF_ERROR;
    } else
        res = AF_OK;
    free(seen);
    return res;
}

static af_outcome op_pipeline(void *vctx, char *msg, size_t size)
{
    char log[2300];
    snprintf(log, sizeof log, "%s/xmcd.log", work);
    unlink(log);
    int fds = af_open_fds();
    fflush(stderr); /* the daemon's log (fd 2) goes to the file while the step runs */
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    af_outcome res = xa_step(vctx, log, msg, size);
    dup2(saved, 2);
    close(saved);
    /* the mock broker closes its side of the step's connections on its own thread: give it a moment */
    for (int i = 0; i < 200 && af_open_fds() > fds; i++) xh_sleep_ms(5);
    if (res == AF_WRONG && getenv("XMC_AF_VERBOSE")) {
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "grep -v 'event=kafka_log' '%s' | tail -15 >&2", log);
        if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
    }
    return res;
}

static void sweep_pipeline(const xa_scenario *sc)
{
    static xa_sweep x;
    memset(&x, 0, sizeof x);
    x.sc = sc;
    xh_inputs = calloc((size_t)sc->records, sizeof *xh_inputs);
    CU_ASSERT_FATAL(xh_inputs != NULL);
    CU_ASSERT_FATAL(xh_mock_start(&x.mock, 1, 1) == 0);
    CU_ASSERT_FATAL(xh_produce(x.mock.bootstraps, 0, sc->records, xa_value) == sc->records);
    char err[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", x.mock.bootstraps, err, sizeof err);
    rd_kafka_conf_set(kc, "group.id", "xa-verifier", err, sizeof err);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(kc, "fetch.wait.max.ms", "5", err, sizeof err);
    rd_kafka_conf_set(kc, "log_level", "2", err, sizeof err);
    x.reader = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
    CU_ASSERT_FATAL(x.reader != NULL);
    /* the reader's connections are opened now, so that the steps' descriptor counts hold */
    xa_seen none;
    CU_ASSERT_FATAL(xa_high(x.reader, x.mark) == 0 && xa_collect(&x, 0, &none) == 0);
    xh_sleep_ms(300);
    /* sampled (call N only, every call site's first call among them) unless XMC_AF_PIPELINE_STEPS=0 */
    const char *env = getenv("XMC_AF_PIPELINE_STEPS");
    long steps = env ? atol(env) : 8;
    af_opts o = {.classes = 1u << AF_ALLOC, .loose = 1, .max_steps = steps, .once = steps > 0};
    char what[128];
    snprintf(what, sizeof what, "xmcd pipeline: %s", sc->name);
    af_result r;
    af_sweep_opts(what, op_pipeline, &x, &r, &o);
    CU_ASSERT_EQUAL(r.bad, 0);
    CU_ASSERT(AF_ERRORS(r, AF_ALLOC) > 0);
    rd_kafka_destroy(x.reader);
    xh_mock_stop(&x.mock);
    free(xh_inputs);
    xh_inputs = NULL;
}

static void test_pipeline_clean(void)
{
    static const xa_scenario sc = {.name = "poison records, SIGHUP", .records = 24, .hup = 1};
    sweep_pipeline(&sc);
}

static void test_pipeline_rejected(void)
{
    static const xa_scenario sc = {.name = "outputs rejected", .records = 16, .err = RD_KAFKA_RESP_ERR_INVALID_RECORD,
                                   .err_count = 1, .dlq_ok = "PRODUCE"};
    sweep_pipeline(&sc);
}

static void test_pipeline_failed(void)
{
    static const xa_scenario sc = {.name = "deliveries failed", .records = 16,
                                   .err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, .err_count = 1};
    sweep_pipeline(&sc);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("units", setup, teardown);
    TU_ADD(s, test_offsets);
    TU_ADD(s, test_batcher);
    TU_ADD(s, test_config);
    TU_ADD(s, test_reload);
    TU_ADD(s, test_stats);
    /* one suite per scenario, so that each runs alone: build/tests/test_xmcd_alloc_faults pipeline_rejected */
    TU_ADD(CU_add_suite("pipeline_clean", setup, teardown), test_pipeline_clean);
    TU_ADD(CU_add_suite("pipeline_rejected", setup, teardown), test_pipeline_rejected);
    TU_ADD(CU_add_suite("pipeline_failed", setup, teardown), test_pipeline_failed);
    return tu_run(argc, argv);
}
