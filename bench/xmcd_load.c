/* xmcd_load.c: load generator and independent checker for xmcd on Kafka (`make bench` stream section, R12, R20).
 *
 * It produces xmc.v1.Product records (key = "p" + a 10-digit record number, title = a line of a TSV file) to the
 * input topic, either all at once (--rate 0: a backlog for the throughput figure; xmcd is started after the
 * --ready-file appears) or at a fixed rate, and meanwhile consumes the output and dead-letter topics from the
 * beginning with a consumer of its own (assign, no group). Every copy that comes back is matched to its record by
 * the key, so the checks do not trust anything xmcd says about itself:
 *   - accounted: every record sent has an output or a dead letter (duplicates are counted, and allowed);
 *   - failed: dead letters (a correct run has none);
 *   - versions: every output carries exactly one xmc.model.version header, equal to the LabeledProduct's
 *     model_version and product_id equal to the key; per output partition the version never goes back to one
 *     older than a version already seen there (each swap names a new version directory, so "older" is exact);
 *   - latency: producer send -> output consumed, on one CLOCK_MONOTONIC, per record (first copy); records are
 *     classed by their send time as warm-up, swap window ([rename of CURRENT, + --swap-window)), kill window
 *     ([kill - 1 s, recovered + 1 s), recovered = from when on every record came out within 250 ms), or steady;
 *     R12 compares p99(swap) with p99(steady);
 *   - RSS of the process named in --pid-file (re-read at every use, because R20 restarts it): VmRSS before the
 *     first swap and at the end (R12), and a series every --rss-every seconds with the drift of each process
 *     against its own level after --warmup seconds (R20);
 *   - lag after each event (swap, kill): the time until every record sent before the event is accounted, and,
 *     with --group, until the group's committed offsets reach the input offsets acknowledged at the event (the
 *     consumer lag of those records is then 0); at the end, the committed offsets must reach the end of the input;
 *     a kill must be caught up before the next kill.
 * Events are made here, on a schedule: swaps rename a new CURRENT into --repo (as `xmc train` does), kills send
 * SIGKILL to the pid in --pid-file (the caller restarts xmcd). --inject makes a deliberately wrong run to show the
 * checks fail: lose=K skips producing every K-th record (counted as sent), poison=K sends every K-th as bytes that
 * are not a Product (xmcd dead-letters them), stale writes one output with the first version into the output topic
 * after the second swap.
 *
 * At a fixed rate the records are produced one by one at their times, or with --tick-ms T the ones due in each
 * T ms together. The mock broker returns one message set per partition per fetch and finds it by a linear scan of
 * the partition's log (rdkafka_mock.c, "FIXME: Maintain an index"), so a log of single-record message sets makes
 * every consumer fall behind within a minute; a real broker returns many batches per fetch.
 *
 * For bench/retrain.sh, --stop-file ends a fixed-rate run when the caller's experiment is over (its length is not
 * known in advance: a training's), and --latency-out writes every record's send time on the wall clock and its
 * latency, so that the caller classes them by events it logged itself (a training running or not).
 *
 * The exit status is 1 when a check named in --check fails (names: accounted, failed, versions, swap-p99, swap-rss,
 * drift, lag), 2 on a usage or setup error. Both consumers of the embedded Kafka use fetch.wait.max.ms=5: the mock
 * broker holds a fetch that finds no data for the whole wait instead of answering when data arrives, as a real
 * broker does, so a longer wait would be measured as latency (xmcd's config sets the same; see bench/stream.sh). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xmc.pb-c.h"

#define XL_MAX_PARTS 256
#define XL_KEY_PREFIX 'p'
#define XL_VERSION_MAX 128
#define XL_MAX_VERSIONS 1024

typedef struct xl_opts {
    const char *brokers, *texts, *topic_in, *topic_out, *topic_dlq, *repo, *pid_file, *group, *ready_file, *checks;
    const char *swap_versions, *stop_file, *latency_out;
    uint64_t records;
    double rate, seconds, swap_every, swap_first, kill_every, warmup, rss_every, drain, model_bytes;
    double swap_window_ms, drift_max, p99_ratio_max, linger_ms, tick_ms;
    int swaps;
    uint64_t inject_lose, inject_poison;
    int inject_stale;
} xl_opts;

enum { XL_EV_SWAP = 0, XL_EV_KILL = 1, XL_EV_END = 2 };

/* Something done to the system under test at time t (ns since the start). */
typedef struct xl_event {
    int kind, number;
    uint64_t t, sent_before;   /* records [0, sent_before) were sent before the event */
    int64_t hw[XL_MAX_PARTS];  /* input offsets acknowledged by the broker at the event, per partition */
    uint64_t acc_done;         /* time every record sent before was accounted (0: not yet) */
    uint64_t commit_done;      /* time the group's committed offsets reached hw (0: not yet) */
    uint64_t recovered;        /* kills: send time from which on every record came out within 250 ms, i.e. the
                                * backlog is gone (computed at the end; 0: never) */
    long rss_kb;               /* of the process at the event (-1 unknown) */
    int pid;
    char version[XL_VERSION_MAX];
} xl_event;

typedef struct xl_sample {
    uint64_t t;
    int pid;
    long rss_kb;
    int in_swap; /* taken inside a swap window: both models may be mapped */
} xl_sample;

/* ---- shared state (owners noted: P producer/main thread, C consumer thread, M monitor thread) ------------- */
static xl_opts O;
static uint64_t xl_t0;
static _Atomic uint64_t xl_n;               /* records planned (fewer when --stop-file ends the run early) */
static _Atomic uint64_t *xl_t_send;         /* P writes (ns since t0, +1 so 0 = not sent); C reads */
static uint8_t *xl_out_copies, *xl_dlq_copies; /* C */
static uint32_t *xl_lat_us;                 /* C: latency of the first copy, microseconds */
static _Atomic uint64_t xl_acc_prefix;      /* C: every record below is accounted */
static _Atomic uint64_t xl_accounted, xl_outputs, xl_dead, xl_dups, xl_unknown, xl_consume_errors;
static _Atomic uint64_t xl_first_copy_t, xl_last_new_t; /* C: time of the first copy, of the last new record */
static _Atomic int xl_stop_consumer, xl_stop_monitor;
static _Atomic uint64_t xl_send_failures;
static int64_t xl_hw[XL_MAX_PARTS];         /* P (delivery reports), under xl_ev_lock: acknowledged input end */
static int xl_parts_in, xl_parts_out, xl_parts_dlq;

static pthread_mutex_t xl_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static xl_event *xl_events;
static int xl_n_events, xl_cap_events, xl_next_acc_ev;

/* versions in the order they are served: [0] = CURRENT at the start, [k] = the k-th swap */
static char xl_versions[XL_MAX_VERSIONS][XL_VERSION_MAX];
static int xl_n_versions, xl_versions_distinct = 1;
/* C: version checks */
static int xl_part_version[XL_MAX_PARTS];
static uint64_t xl_tag_errors, xl_order_errors, xl_version_first_seen[XL_MAX_VERSIONS];
static char xl_first_error[512];

static xl_sample *xl_samples;
static size_t xl_n_samples, xl_cap_samples;
static _Atomic int64_t xl_lag_now = -1; /* M: input acknowledged minus committed, summed (-1 unknown) */

static uint64_t xl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - xl_t0;
}

static void xl_sleep_until(uint64_t t)
{
    uint64_t now = xl_now();
    if (t <= now) return;
    uint64_t d = t - now;
    struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
    nanosleep(&ts, NULL);
}

static double xl_s(uint64_t ns) { return (double)ns / 1e9; }

static void xl_die(const char *what)
{
    fprintf(stderr, "xmcd_load: %s\n", what);
    exit(2);
}

/* ---- texts, keys, records ---------------------------------------------------------------------------------- */
static char **xl_texts;
static size_t xl_n_texts;

static void xl_read_texts(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0, tcap = 0;
    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        char *text = strchr(line, '\t');
        text = text ? text + 1 : line;
        if (xl_n_texts == tcap) {
            tcap = tcap ? tcap * 2 : 1024;
            xl_texts = realloc(xl_texts, tcap * sizeof *xl_texts);
            if (!xl_texts) xl_die("out of memory");
        }
        if (!(xl_texts[xl_n_texts++] = strdup(text))) xl_die("out of memory");
    }
    free(line);
    fclose(f);
    if (!xl_n_texts) xl_die("no texts");
}

static int xl_key(uint64_t id, char *buf, size_t size)
{
    return snprintf(buf, size, "%c%010" PRIu64, XL_KEY_PREFIX, id);
}

/* The record number of a key, or UINT64_MAX if it is not one of ours. */
static uint64_t xl_key_id(const void *key, size_t len)
{
    const char *k = key;
    if (!k || len != 11 || k[0] != XL_KEY_PREFIX) return UINT64_MAX;
    uint64_t id = 0;
    for (size_t i = 1; i < len; i++) {
        if (k[i] < '0' || k[i] > '9') return UINT64_MAX;
        id = id * 10 + (uint64_t)(k[i] - '0');
    }
    return id < xl_n ? id : UINT64_MAX;
}

/* ---- RSS, pid ------------------------------------------------------------------------------------------------ */
static int xl_read_pid(void)
{
    if (!O.pid_file) return -1;
    FILE *f = fopen(O.pid_file, "r");
    if (!f) return -1;
    int pid = -1;
    if (fscanf(f, "%d", &pid) != 1) pid = -1;
    fclose(f);
    return pid > 0 ? pid : -1;
}

static long xl_rss_kb(int pid)
{
    if (pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- events ------------------------------------------------------------------------------------------------ */
/* Records an event; the catch-up times are filled in later by the consumer and monitor threads. Only the producer
 * thread adds events. */
static void xl_event_add(int kind, int number, uint64_t t, uint64_t sent_before, int pid, long rss_kb,
                         const char *version)
{
    pthread_mutex_lock(&xl_ev_lock);
    if (xl_n_events == xl_cap_events) {
        int cap = xl_cap_events ? xl_cap_events * 2 : 64;
        xl_event *e = realloc(xl_events, (size_t)cap * sizeof *e);
        if (!e) xl_die("out of memory");
        xl_events = e;
        xl_cap_events = cap;
    }
    xl_event *ev = &xl_events[xl_n_events++];
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->number = number;
    ev->t = t;
    ev->sent_before = sent_before;
    ev->pid = pid;
    ev->rss_kb = rss_kb;
    snprintf(ev->version, sizeof ev->version, "%s", version ? version : "");
    memcpy(ev->hw, xl_hw, sizeof ev->hw);
    if (atomic_load(&xl_acc_prefix) >= sent_before) ev->acc_done = t; /* nothing before it is outstanding */
    pthread_mutex_unlock(&xl_ev_lock);
}

/* Is time t (ns) inside [rename, rename + window) of some swap? */
static int xl_in_swap_window(uint64_t t)
{
    uint64_t w = (uint64_t)(O.swap_window_ms * 1e6);
    int in = 0;
    pthread_mutex_lock(&xl_ev_lock);
    for (int i = 0; i < xl_n_events && !in; i++)
        if (xl_events[i].kind == XL_EV_SWAP && t >= xl_events[i].t && t < xl_events[i].t + w) in = 1;
    pthread_mutex_unlock(&xl_ev_lock);
    return in;
}

/* ---- consumer thread: outputs and dead letters ------------------------------------------------------------- */
static int xl_version_index(const char *v, size_t len)
{
    for (int i = xl_n_versions - 1; i >= 0; i--)
        if (strlen(xl_versions[i]) == len && !memcmp(xl_versions[i], v, len)) return i;
    return -1;
}

static void xl_tag_error(const char *fmt, uint64_t id, int part)
{
    if (!xl_first_error[0]) snprintf(xl_first_error, sizeof xl_first_error, fmt, id, part);
}

static void xl_check_output(const rd_kafka_message_t *m, uint64_t id)
{
    rd_kafka_headers_t *h = NULL;
    const void *hv = NULL;
    size_t hlen = 0;
    int n_tags = 0;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
        const void *v;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get(h, i, "xmc.model.version", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            n_tags++;
            hv = v;
            hlen = len;
        }
    }
    if (n_tags != 1) {
        xl_tag_errors++;
        xl_tag_error("record %" PRIu64 " (output partition %d): not exactly one xmc.model.version header", id,
                     (int)m->partition);
        return;
    }
    Xmc__V1__LabeledProduct *lp = xmc__v1__labeled_product__unpack(NULL, m->len, m->payload);
    char key[16];
    xl_key(id, key, sizeof key);
    if (!lp || strcmp(lp->product_id, key) != 0 || strlen(lp->model_version) != hlen ||
        memcmp(lp->model_version, hv, hlen) != 0) {
        xl_tag_errors++;
        xl_tag_error("record %" PRIu64 " (output partition %d): body undecodable, or its product_id or model_version "
                     "differs from the key or the header", id, (int)m->partition);
    }
    if (lp) xmc__v1__labeled_product__free_unpacked(lp, NULL);
    int vi = xl_version_index(hv, hlen);
    int p = m->partition;
    if (vi < 0) {
        xl_tag_errors++;
        xl_tag_error("record %" PRIu64 " (output partition %d): a model version this run never published", id, p);
        return;
    }
    if (!xl_version_first_seen[vi]) xl_version_first_seen[vi] = xl_now();
    if (p >= 0 && p < XL_MAX_PARTS) {
        if (xl_versions_distinct && vi < xl_part_version[p]) {
            xl_order_errors++;
            if (!xl_first_error[0])
                snprintf(xl_first_error, sizeof xl_first_error,
                         "record %" PRIu64 " (output partition %d, offset %" PRId64 ") has version %s after %s was "
                         "already seen in that partition", id, p, m->offset, xl_versions[vi],
                         xl_versions[xl_part_version[p]]);
        }
        if (vi > xl_part_version[p]) xl_part_version[p] = vi;
    }
}

static void xl_handle(const rd_kafka_message_t *m, int is_dlq)
{
    uint64_t t = xl_now();
    uint64_t id = xl_key_id(m->key, m->key_len);
    uint64_t ts = id == UINT64_MAX ? 0 : atomic_load_explicit(&xl_t_send[id], memory_order_acquire);
    if (!ts) {
        atomic_fetch_add(&xl_unknown, 1);
        return;
    }
    if (is_dlq) {
        atomic_fetch_add(&xl_dead, 1);
        if (xl_dlq_copies[id] < 255) xl_dlq_copies[id]++;
    } else {
        atomic_fetch_add(&xl_outputs, 1);
        xl_check_output(m, id);
        if (xl_out_copies[id] < 255) xl_out_copies[id]++;
    }
    if (xl_out_copies[id] + xl_dlq_copies[id] > 1) {
        atomic_fetch_add(&xl_dups, 1);
        return;
    }
    uint64_t lat = (t - (ts - 1)) / 1000;
    xl_lat_us[id] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
    atomic_fetch_add(&xl_accounted, 1);
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&xl_first_copy_t, &zero, t);
    atomic_store(&xl_last_new_t, t);
    uint64_t p = atomic_load(&xl_acc_prefix);
    if (p != id) return;
    while (p < xl_n && (xl_out_copies[p] || xl_dlq_copies[p])) p++;
    atomic_store(&xl_acc_prefix, p);
    pthread_mutex_lock(&xl_ev_lock);
    while (xl_next_acc_ev < xl_n_events && xl_events[xl_next_acc_ev].sent_before <= p) {
        if (!xl_events[xl_next_acc_ev].acc_done) xl_events[xl_next_acc_ev].acc_done = t;
        xl_next_acc_ev++;
    }
    pthread_mutex_unlock(&xl_ev_lock);
}

static int xl_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    int n = -1;
    for (int attempt = 0; attempt < 20 && n <= 0; attempt++) {
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
            !md->topics[0].err)
            n = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        if (n <= 0) usleep(200000);
    }
    rd_kafka_topic_destroy(t);
    if (n <= 0 || n > XL_MAX_PARTS) {
        fprintf(stderr, "xmcd_load: topic %s: no metadata or more than %d partitions\n", topic, XL_MAX_PARTS);
        exit(2);
    }
    return n;
}

static rd_kafka_conf_t *xl_conf(const char *group)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", O.brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK ||
        (group && (rd_kafka_conf_set(c, "group.id", group, err, sizeof err) != RD_KAFKA_CONF_OK ||
                   rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err) != RD_KAFKA_CONF_OK ||
                   rd_kafka_conf_set(c, "fetch.wait.max.ms", "5", err, sizeof err) != RD_KAFKA_CONF_OK)))
        xl_die(err);
    return c;
}

static rd_kafka_t *xl_consumer;

static void *xl_consume_main(void *arg)
{
    (void)arg;
    const char *dlq = O.topic_dlq;
    while (!atomic_load(&xl_stop_consumer)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(xl_consumer, 100);
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (atomic_fetch_add(&xl_consume_errors, 1) < 5)
                    fprintf(stderr, "xmcd_load: consume error: %s\n", rd_kafka_message_errstr(m));
            }
        } else {
            xl_handle(m, !strcmp(rd_kafka_topic_name(m->rkt), dlq));
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* ---- monitor thread: the group's committed offsets --------------------------------------------------------- */
static rd_kafka_t *xl_group_rk;

static void *xl_monitor_main(void *arg)
{
    (void)arg;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(xl_parts_in);
    for (int p = 0; p < xl_parts_in; p++) rd_kafka_topic_partition_list_add(list, O.topic_in, p);
    while (!atomic_load(&xl_stop_monitor)) {
        for (int i = 0; i < list->cnt; i++) list->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        if (rd_kafka_committed(xl_group_rk, list, 3000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            uint64_t t = xl_now();
            int64_t committed[XL_MAX_PARTS];
            for (int i = 0; i < list->cnt; i++) committed[list->elems[i].partition] =
                list->elems[i].err ? -1 : list->elems[i].offset;
            pthread_mutex_lock(&xl_ev_lock);
            int64_t lag = 0;
            for (int p = 0; p < xl_parts_in; p++) /* xl_hw is written by the producer thread: a recent value */
                lag += xl_hw[p] - (committed[p] > 0 ? committed[p] : 0);
            atomic_store(&xl_lag_now, lag);
            for (int i = 0; i < xl_n_events; i++) {
                xl_event *ev = &xl_events[i];
                if (ev->commit_done) continue;
                int ok = 1;
                for (int p = 0; p < xl_parts_in && ok; p++)
                    if (ev->hw[p] > 0 && committed[p] < ev->hw[p]) ok = 0;
                if (ok) ev->commit_done = t;
            }
            pthread_mutex_unlock(&xl_ev_lock);
        }
        usleep(200000);
    }
    rd_kafka_topic_partition_list_destroy(list);
    return NULL;
}

/* ---- producer ------------------------------------------------------------------------------------------------ */

static void xl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (atomic_fetch_add(&xl_send_failures, 1) < 5)
            fprintf(stderr, "xmcd_load: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (m->partition >= 0 && m->partition < XL_MAX_PARTS && !strcmp(rd_kafka_topic_name(m->rkt), O.topic_in)) {
        pthread_mutex_lock(&xl_ev_lock); /* the monitor and event snapshots read xl_hw under this lock */
        if (m->offset + 1 > xl_hw[m->partition]) xl_hw[m->partition] = m->offset + 1;
        pthread_mutex_unlock(&xl_ev_lock);
    }
}

static uint8_t *xl_buf;
static size_t xl_buf_cap;

static void xl_produce(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key, const void *value,
                       size_t len, rd_kafka_headers_t *headers)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (e) {
            if (headers) rd_kafka_headers_destroy(headers);
            if (atomic_fetch_add(&xl_send_failures, 1) < 5)
                fprintf(stderr, "xmcd_load: produce failed: %s\n", rd_kafka_err2str(e));
        }
        return;
    }
}

static void xl_send(rd_kafka_t *rk, uint64_t id)
{
    char key[16];
    xl_key(id, key, sizeof key);
    Xmc__V1__Product p = XMC__V1__PRODUCT__INIT;
    p.id = key;
    p.title = xl_texts[id % xl_n_texts];
    size_t size = xmc__v1__product__get_packed_size(&p);
    if (size > xl_buf_cap) {
        xl_buf_cap = size * 2;
        if (!(xl_buf = realloc(xl_buf, xl_buf_cap))) xl_die("out of memory");
    }
    xmc__v1__product__pack(&p, xl_buf);
    static const uint8_t poison[] = {0xff, 0xff, 0xff, 0xff, 0x0f}; /* not a protobuf message */
    int lose = O.inject_lose && id % O.inject_lose == O.inject_lose - 1;
    int bad = O.inject_poison && id % O.inject_poison == O.inject_poison - 1;
    atomic_store_explicit(&xl_t_send[id], xl_now() + 1, memory_order_release);
    if (lose) return; /* deliberately wrong: counted as sent, never produced */
    xl_produce(rk, O.topic_in, RD_KAFKA_PARTITION_UA, key, bad ? (const void *)poison : xl_buf,
               bad ? sizeof poison : size, NULL);
}

/* A forged output with the first version, into output partition 0 after later versions were seen there. */
static void xl_send_stale(rd_kafka_t *rk, uint64_t id)
{
    char key[16];
    xl_key(id, key, sizeof key);
    Xmc__V1__LabeledProduct lp = XMC__V1__LABELED_PRODUCT__INIT;
    lp.product_id = key;
    lp.model_version = xl_versions[0];
    uint8_t buf[256];
    size_t size = xmc__v1__labeled_product__pack(&lp, buf);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "xmc.model.version", -1, xl_versions[0], -1);
    xl_produce(rk, O.topic_out, 0, key, buf, size, h);
    fprintf(stderr, "xmcd_load: injected a stale output (version %s) for record %" PRIu64 "\n", xl_versions[0], id);
}

/* ---- swaps -------------------------------------------------------------------------------------------------- */
static int xl_read_current(char *buf, size_t size)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/CURRENT", O.repo);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(buf, (int)size, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, " \t\r\n")] = 0;
    return buf[0] ? 0 : -1;
}

static void xl_write_current(const char *version)
{
    char tmp[2048], path[2048];
    snprintf(tmp, sizeof tmp, "%s/.CURRENT.xmcd_load", O.repo);
    snprintf(path, sizeof path, "%s/CURRENT", O.repo);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", version) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        exit(2);
    }
}

/* ---- statistics ---------------------------------------------------------------------------------------------- */
static int xl_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct xl_dist {
    size_t n;
    double p50, p99, max; /* ms */
} xl_dist;

static xl_dist xl_distribution(uint32_t *v, size_t n)
{
    xl_dist d = {n, NAN, NAN, NAN};
    if (!n) return d;
    qsort(v, n, sizeof *v, xl_cmp_u32);
    d.p50 = v[(size_t)(0.50 * (double)(n - 1) + 0.5)] / 1000.0;
    d.p99 = v[(size_t)(0.99 * (double)(n - 1) + 0.5)] / 1000.0;
    d.max = v[n - 1] / 1000.0;
    return d;
}

static int xl_check_named(const char *name)
{
    if (!O.checks) return 0;
    size_t len = strlen(name);
    for (const char *s = O.checks; (s = strstr(s, name)); s += len)
        if ((s == O.checks || s[-1] == ',') && (s[len] == 0 || s[len] == ',')) return 1;
    return 0;
}

static int xl_failed;

static void xl_result(const char *name, int pass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void xl_result(const char *name, int pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-9s ", name);
    vprintf(fmt, ap);
    va_end(ap);
    int decides = xl_check_named(name);
    printf("  [%s%s]\n", pass ? "PASS" : "FAIL", decides ? "" : ", not checked in this run");
    if (!pass && decides) xl_failed = 1;
}

/* ---- options -------------------------------------------------------------------------------------------------- */
static void xl_usage(void)
{
    fprintf(stderr,
            "usage: xmcd_load -b BROKERS --texts FILE.tsv [options]   (see the comment at the top of bench/xmcd_load.c)\n"
            "  --in T --out T --dlq T     topics (products, labeled, dlq)\n"
            "  --rate R --seconds S       records/s for S seconds; --rate 0 --records N: a backlog of N, then\n"
            "  --tick-ms T                produce the records due every T ms together (0: each at its time)\n"
            "  --linger-ms L              the producer's linger.ms at a fixed rate (1)\n"
            "  --ready-file F             created when the backlog is in Kafka (start xmcd then)\n"
            "  --repo DIR --swaps K --swap-every S [--swap-first S] --swap-versions a,b,...\n"
            "                             every S seconds CURRENT is renamed to name the next version (distinct names)\n"
            "  --swap-window MS           latency/RSS samples this long after a rename count as in the swap (1000)\n"
            "  --pid-file F               xmcd's pid (re-read each time): RSS, kills\n"
            "  --kill-every S             SIGKILL that pid every S seconds\n"
            "  --rss-every S --warmup S   RSS series; drift per process from its level after S seconds of life\n"
            "  --group G                  xmcd's group: committed-offset lag after each event and at the end\n"
            "  --model-bytes B            R12: RSS after the swaps must stay within steady + B\n"
            "  --drain S                  wait at most S seconds for every record after the last send (60)\n"
            "  --check LIST               accounted,failed,versions,swap-p99,swap-rss,drift,lag decide the exit\n"
            "  --p99-ratio X --drift-max PCT   criteria (2, 5)\n"
            "  --inject lose=K|poison=K|stale  deliberately wrong runs, to see the checks fail\n"
            "  --stop-file F              at a fixed rate: stop producing when F exists (the run ends early)\n"
            "  --latency-out F            write send time (Unix s) and latency (ms) of every record into F\n");
    exit(2);
}

static void xl_parse(int argc, char **argv)
{
    O.topic_in = "products";
    O.topic_out = "labeled";
    O.topic_dlq = "dlq";
    O.rate = 1000;
    O.seconds = 10;
    O.swap_window_ms = 1000;
    O.drain = 60;
    O.drift_max = 5;
    O.p99_ratio_max = 2;
    O.linger_ms = 1;
    O.swap_first = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) xl_usage();
        const char *v = argv[++i];
        if (!strcmp(a, "-b") || !strcmp(a, "--brokers")) O.brokers = v;
        else if (!strcmp(a, "--texts")) O.texts = v;
        else if (!strcmp(a, "--in")) O.topic_in = v;
        else if (!strcmp(a, "--out")) O.topic_out = v;
        else if (!strcmp(a, "--dlq")) O.topic_dlq = v;
        else if (!strcmp(a, "--rate")) O.rate = atof(v);
        else if (!strcmp(a, "--seconds")) O.seconds = atof(v);
        else if (!strcmp(a, "--records")) O.records = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ready-file")) O.ready_file = v;
        else if (!strcmp(a, "--repo")) O.repo = v;
        else if (!strcmp(a, "--swaps")) O.swaps = atoi(v);
        else if (!strcmp(a, "--swap-every")) O.swap_every = atof(v);
        else if (!strcmp(a, "--swap-first")) O.swap_first = atof(v);
        else if (!strcmp(a, "--swap-versions")) O.swap_versions = v;
        else if (!strcmp(a, "--swap-window")) O.swap_window_ms = atof(v);
        else if (!strcmp(a, "--pid-file")) O.pid_file = v;
        else if (!strcmp(a, "--kill-every")) O.kill_every = atof(v);
        else if (!strcmp(a, "--rss-every")) O.rss_every = atof(v);
        else if (!strcmp(a, "--warmup")) O.warmup = atof(v);
        else if (!strcmp(a, "--group")) O.group = v;
        else if (!strcmp(a, "--model-bytes")) O.model_bytes = atof(v);
        else if (!strcmp(a, "--drain")) O.drain = atof(v);
        else if (!strcmp(a, "--check")) O.checks = v;
        else if (!strcmp(a, "--p99-ratio")) O.p99_ratio_max = atof(v);
        else if (!strcmp(a, "--drift-max")) O.drift_max = atof(v);
        else if (!strcmp(a, "--linger-ms")) O.linger_ms = atof(v);
        else if (!strcmp(a, "--tick-ms")) O.tick_ms = atof(v);
        else if (!strcmp(a, "--stop-file")) O.stop_file = v;
        else if (!strcmp(a, "--latency-out")) O.latency_out = v;
        else if (!strcmp(a, "--inject")) {
            if (!strncmp(v, "lose=", 5)) O.inject_lose = strtoull(v + 5, NULL, 10);
            else if (!strncmp(v, "poison=", 7)) O.inject_poison = strtoull(v + 7, NULL, 10);
            else if (!strcmp(v, "stale")) O.inject_stale = 1;
            else xl_usage();
        } else xl_usage();
    }
    if (!O.brokers || !O.texts) xl_usage();
    if (O.rate > 0 && !O.records) O.records = (uint64_t)(O.rate * O.seconds);
    if (!O.records) xl_usage();
    if (O.swaps > 0 && (!O.repo || !O.swap_versions || O.swap_every <= 0)) xl_usage();
    if (O.swap_first < 0) O.swap_first = O.swap_every;
    if (O.rate <= 0 && (O.swaps || O.kill_every > 0)) xl_die("--rate 0 (backlog) runs no swaps or kills");
}

/* Versions: [0] = CURRENT now, then the --swap-versions names in order, cycling if there are fewer than swaps. */
static void xl_plan_versions(void)
{
    if (!O.repo) return;
    if (xl_read_current(xl_versions[0], XL_VERSION_MAX) != 0) xl_die("cannot read CURRENT of --repo");
    xl_n_versions = 1;
    if (!O.swaps) return;
    char names[XL_MAX_VERSIONS][XL_VERSION_MAX];
    int n_names = 0;
    char *copy = strdup(O.swap_versions), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n_names < XL_MAX_VERSIONS; t = strtok_r(NULL, ",", &save))
        snprintf(names[n_names++], XL_VERSION_MAX, "%s", t);
    free(copy);
    if (!n_names || O.swaps >= XL_MAX_VERSIONS) xl_die("bad --swap-versions or --swaps");
    for (int k = 0; k < O.swaps; k++) memcpy(xl_versions[xl_n_versions++], names[k % n_names], XL_VERSION_MAX);
    for (int i = 0; i < xl_n_versions; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(xl_versions[i], xl_versions[j])) xl_versions_distinct = 0;
}

/* ---- main ----------------------------------------------------------------------------------------------------- */
int main(int argc, char **argv)
{
    struct timespec ts0, rt0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    clock_gettime(CLOCK_REALTIME, &rt0); /* --latency-out's Unix times: this instant + monotonic time since */
    xl_t0 = (uint64_t)ts0.tv_sec * 1000000000u + (uint64_t)ts0.tv_nsec;
    double unix0 = (double)rt0.tv_sec + 1e-9 * (double)rt0.tv_nsec;
    setvbuf(stdout, NULL, _IOLBF, 0);
    xl_parse(argc, argv);
    xl_read_texts(O.texts);
    xl_plan_versions();
    xl_n = O.records;
    xl_t_send = calloc(xl_n, sizeof *xl_t_send);
    xl_out_copies = calloc(xl_n, 1);
    xl_dlq_copies = calloc(xl_n, 1);
    xl_lat_us = calloc(xl_n, sizeof *xl_lat_us);
    if (!xl_t_send || !xl_out_copies || !xl_dlq_copies || !xl_lat_us) xl_die("out of memory");

    /* producer */
    char err[512], linger[32];
    rd_kafka_conf_t *pc = xl_conf(NULL);
    snprintf(linger, sizeof linger, "%g", O.rate > 0 ? O.linger_ms : 5.0);
    if (rd_kafka_conf_set(pc, "linger.ms", linger, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(pc, "queue.buffering.max.messages", "1000000", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(pc, "enable.idempotence", "true", err, sizeof err) != RD_KAFKA_CONF_OK)
        xl_die(err);
    rd_kafka_conf_set_dr_msg_cb(pc, xl_dr_cb);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (!producer) xl_die(err);
    xl_parts_in = xl_partitions(producer, O.topic_in);
    xl_parts_out = xl_partitions(producer, O.topic_out);
    xl_parts_dlq = xl_partitions(producer, O.topic_dlq);

    /* checker's consumer: every partition of the output and dead-letter topics from the beginning */
    xl_consumer = rd_kafka_new(RD_KAFKA_CONSUMER, xl_conf("xmcd-load-checker"), err, sizeof err);
    if (!xl_consumer) xl_die(err);
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(xl_parts_out + xl_parts_dlq);
    for (int p = 0; p < xl_parts_out; p++)
        rd_kafka_topic_partition_list_add(assign, O.topic_out, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    for (int p = 0; p < xl_parts_dlq; p++)
        rd_kafka_topic_partition_list_add(assign, O.topic_dlq, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(xl_consumer, assign)) xl_die("assign failed");
    rd_kafka_topic_partition_list_destroy(assign);
    pthread_t consumer_thread, monitor_thread;
    if (pthread_create(&consumer_thread, NULL, xl_consume_main, NULL) != 0) xl_die("thread");
    if (O.group) {
        xl_group_rk = rd_kafka_new(RD_KAFKA_CONSUMER, xl_conf(O.group), err, sizeof err);
        if (!xl_group_rk) xl_die(err);
        if (pthread_create(&monitor_thread, NULL, xl_monitor_main, NULL) != 0) xl_die("thread");
    }

    uint64_t w_ns = (uint64_t)(O.swap_window_ms * 1e6);
    printf("load: %" PRIu64 " records, %s; texts %s (%zu lines); topics %s -> %s + %s (%d/%d/%d partitions)\n", xl_n,
           O.rate > 0 ? "at a fixed rate" : "as a backlog produced before xmcd starts", O.texts, xl_n_texts,
           O.topic_in, O.topic_out, O.topic_dlq, xl_parts_in, xl_parts_out, xl_parts_dlq);
    if (O.rate > 0)
        printf("rate %.0f records/s for %.1f s (produced every %.0f ms); swaps %d (first at %.1f s, every %.1f s, "
               "window %.0f ms)\n", O.rate, (double)xl_n / O.rate, O.tick_ms, O.swaps, O.swaps ? O.swap_first : 0.0,
               O.swap_every, O.swap_window_ms);
    if (O.kill_every > 0) printf("kill -9 of the pid in %s every %.1f s (restarted by the caller)\n", O.pid_file,
                                 O.kill_every);
    if (O.inject_lose || O.inject_poison || O.inject_stale)
        printf("INJECTED FAULTS (a deliberately wrong run): lose=%" PRIu64 " poison=%" PRIu64 " stale=%d\n",
               O.inject_lose, O.inject_poison, O.inject_stale);

    /* the checker's consumer needs metadata and the start offsets before its first fetch (about half a second on
     * the mock): records sent before that would be measured late */
    usleep(1000000);
    uint64_t t_start = xl_now(), t_ready = 0;
    long rss_steady = -1;
    int pid_steady = -1;
    if (O.rate <= 0) {
        for (uint64_t id = 0; id < xl_n; id++) {
            xl_send(producer, id);
            rd_kafka_poll(producer, 0);
        }
        rd_kafka_flush(producer, 60000);
        t_ready = xl_now();
        printf("backlog of %" PRIu64 " records in Kafka after %.2f s\n", xl_n, xl_s(t_ready - t_start));
        if (O.ready_file) {
            FILE *f = fopen(O.ready_file, "w");
            if (f) fclose(f);
        }
    } else {
        double period_ns = 1e9 / O.rate;
        uint64_t tick_ns = (uint64_t)(O.tick_ms * 1e6);
        uint64_t next = 0, next_swap = (uint64_t)(O.swap_first * 1e9), next_kill = (uint64_t)(O.kill_every * 1e9);
        uint64_t next_rss = 0, stale_at = UINT64_MAX;
        int swaps_done = 0, kills_done = 0;
        if (O.rss_every > 0) printf("rss: t_s pid rss_kb sent accounted committed_lag [s = inside a swap window]\n");
        while (next < xl_n) {
            uint64_t t = xl_now() - t_start;
            if (O.stop_file && access(O.stop_file, F_OK) == 0) {
                /* the caller's experiment is over: the records sent so far are the run (none later was sent, so
                 * the consumer never sees a key at or above the new end) */
                xl_n = next;
                printf("stop file %s seen at %.1f s: %" PRIu64 " records sent\n", O.stop_file, xl_s(t), next);
                break;
            }
            uint64_t tick_start = tick_ns ? t - t % tick_ns : t;
            uint64_t due = (uint64_t)((double)tick_start / period_ns) + 1;
            while (next < xl_n && next < due) xl_send(producer, next++);
            rd_kafka_poll(producer, 0);
            if (swaps_done < O.swaps && t >= next_swap) {
                int pid = xl_read_pid();
                long rss = xl_rss_kb(pid);
                if (swaps_done == 0) {
                    rss_steady = rss;
                    pid_steady = pid;
                }
                swaps_done++;
                xl_write_current(xl_versions[swaps_done]);
                xl_event_add(XL_EV_SWAP, swaps_done, xl_now(), next, pid, rss, xl_versions[swaps_done]);
                next_swap += (uint64_t)(O.swap_every * 1e9);
                if (O.inject_stale && swaps_done == 2) stale_at = xl_now() + w_ns;
            }
            if (xl_now() >= stale_at && next > 0) {
                xl_send_stale(producer, next - 1);
                stale_at = UINT64_MAX;
            }
            /* no kill in the last half interval: each one gets time under load to be caught up */
            if (O.kill_every > 0 && t >= next_kill && xl_s(next_kill) <= (double)xl_n / O.rate - O.kill_every / 2) {
                int pid = xl_read_pid();
                if (pid > 0 && kill(pid, SIGKILL) == 0) {
                    kills_done++;
                    xl_event_add(XL_EV_KILL, kills_done, xl_now(), next, pid, -1, NULL);
                    printf("kill %d: SIGKILL to pid %d at %.1f s\n", kills_done, pid, xl_s(xl_now() - t_start));
                } else {
                    printf("kill skipped at %.1f s: no live pid in %s\n", xl_s(t), O.pid_file);
                }
                next_kill += (uint64_t)(O.kill_every * 1e9);
            }
            if (O.rss_every > 0 && t >= next_rss) {
                int pid = xl_read_pid();
                long rss = xl_rss_kb(pid);
                uint64_t now = xl_now();
                int in_swap = xl_in_swap_window(now);
                if (rss > 0) {
                    if (xl_n_samples == xl_cap_samples) {
                        xl_cap_samples = xl_cap_samples ? xl_cap_samples * 2 : 256;
                        if (!(xl_samples = realloc(xl_samples, xl_cap_samples * sizeof *xl_samples)))
                            xl_die("out of memory");
                    }
                    xl_samples[xl_n_samples++] = (xl_sample){now - t_start, pid, rss, in_swap};
                }
                printf("rss: %6.0f %7d %8ld %9" PRIu64 " %9" PRIu64 " %8" PRId64 "%s\n", xl_s(now - t_start), pid, rss,
                       next, atomic_load(&xl_accounted), atomic_load(&xl_lag_now), in_swap ? " s" : "");
                next_rss += (uint64_t)(O.rss_every * 1e9);
            }
            uint64_t wake = t_start + (tick_ns ? (xl_now() - t_start) / tick_ns * tick_ns + tick_ns
                                               : (uint64_t)((double)next * period_ns));
            uint64_t cap = xl_now() + 5000000u; /* events and delivery reports at least every 5 ms */
            xl_sleep_until(wake < cap ? wake : cap);
        }
        rd_kafka_flush(producer, 30000);
    }
    uint64_t t_sent = xl_now();

    /* drain: wait until every record is accounted (or --drain runs out) */
    uint64_t deadline = t_sent + (uint64_t)(O.drain * 1e9);
    while (atomic_load(&xl_acc_prefix) < xl_n && xl_now() < deadline) usleep(20000);
    uint64_t t_drained = xl_now();
    int drained = atomic_load(&xl_acc_prefix) >= xl_n;
    long rss_end = xl_rss_kb(xl_read_pid());
    int pid_end = xl_read_pid();
    /* the end as an event: the committed offsets must reach the end of the input (lag 0) */
    rd_kafka_poll(producer, 0);
    xl_event_add(XL_EV_END, 0, t_drained, xl_n, pid_end, rss_end, NULL);
    uint64_t end_t = t_drained;
    if (O.group) {
        uint64_t commit_deadline = xl_now() + 15000000000ull;
        for (;;) {
            pthread_mutex_lock(&xl_ev_lock);
            int done = xl_events[xl_n_events - 1].commit_done != 0;
            pthread_mutex_unlock(&xl_ev_lock);
            if (done || xl_now() > commit_deadline) break;
            usleep(100000);
        }
    }
    usleep(300000); /* late duplicates still count as duplicates */
    atomic_store(&xl_stop_consumer, 1);
    atomic_store(&xl_stop_monitor, 1);
    pthread_join(consumer_thread, NULL);
    if (O.group) pthread_join(monitor_thread, NULL);

    /* ---- report ---- */
    printf("\n");
    uint64_t acc = atomic_load(&xl_accounted), lost = xl_n - acc;
    if (O.rate <= 0) {
        uint64_t a = atomic_load(&xl_first_copy_t), b = atomic_load(&xl_last_new_t);
        printf("throughput: %" PRIu64 " records from the first output to the last in %.3f s = %.0f records/s "
               "(xmcd started after the backlog was in Kafka)\n", acc, xl_s(b - a),
               b > a ? (double)(acc - 1) / xl_s(b - a) : 0.0);
    }
    printf("records sent %" PRIu64 " in %.1f s; %s %.1f s after the last send%s\n", xl_n, xl_s(t_sent - t_start),
           drained ? "all accounted" : "NOT all accounted (timed out)", xl_s(t_drained - t_sent),
           O.rate > 0 ? "" : " (xmcd's start, model load and first group join included)");
    xl_result("accounted", lost == 0 && !atomic_load(&xl_unknown) && !atomic_load(&xl_send_failures),
              "%" PRIu64 " of %" PRIu64 " records have an output or a dead letter: outputs %" PRIu64 ", dead letters "
              "%" PRIu64 ", lost %" PRIu64 ", duplicates %" PRIu64 ", unknown keys %" PRIu64 ", send failures %" PRIu64,
              acc, xl_n, atomic_load(&xl_outputs), atomic_load(&xl_dead), lost, atomic_load(&xl_dups),
              atomic_load(&xl_unknown), atomic_load(&xl_send_failures));
    if (lost) {
        uint64_t shown = 0;
        printf("          first lost records:");
        for (uint64_t id = 0; id < xl_n && shown < 5; id++)
            if (!xl_out_copies[id] && !xl_dlq_copies[id]) {
                printf(" %" PRIu64, id);
                shown++;
            }
        printf("\n");
    }
    xl_result("failed", atomic_load(&xl_dead) == 0, "%" PRIu64 " dead-lettered records", atomic_load(&xl_dead));
    if (O.repo) {
        int seen = 0;
        for (int i = 0; i < xl_n_versions; i++) seen += xl_version_first_seen[i] != 0;
        xl_result("versions", !xl_tag_errors && !xl_order_errors && xl_versions_distinct,
                  "%d of %d published versions seen in outputs; tag errors %" PRIu64 ", outputs older than a version "
                  "already seen in their partition %" PRIu64 "%s", seen, xl_n_versions, xl_tag_errors,
                  xl_order_errors, xl_versions_distinct ? "" : " (version names repeat: order not checkable)");
        if (xl_first_error[0]) printf("          first: %s\n", xl_first_error);
    }

    /* Recovery after each kill: the first send time s after the kill such that every record sent up to s (those
     * in flight at the kill included) came out within 250 ms of s, i.e. the backlog is gone. Records sent from 1 s
     * before the kill to 1 s after that are the kill window; RSS samples before then are not used as a process's
     * baseline. */
    const uint64_t second = 1000000000u, recovered_within = 250000000u;
    for (int i = 0; i < xl_n_events; i++) {
        xl_event *ev = &xl_events[i];
        if (ev->kind != XL_EV_KILL) continue;
        uint64_t runmax = 0;
        for (uint64_t id = 0; id < xl_n; id++) {
            uint64_t ts = atomic_load(&xl_t_send[id]);
            if (!ts) break;
            ts--;
            uint64_t r = xl_out_copies[id] || xl_dlq_copies[id] ? ts + (uint64_t)xl_lat_us[id] * 1000u : UINT64_MAX;
            if (r > runmax) runmax = r;
            if (id >= ev->sent_before && runmax <= ts + recovered_within) {
                ev->recovered = ts;
                break;
            }
        }
    }

    /* every record's latency with its send time on the wall clock, for a caller that classes them by its own
     * events (bench/retrain.sh: while a training runs or not) */
    if (O.latency_out) {
        FILE *f = fopen(O.latency_out, "w");
        if (!f) {
            perror(O.latency_out);
            exit(2);
        }
        for (uint64_t id = 0; id < xl_n; id++) {
            if (!xl_out_copies[id] && !xl_dlq_copies[id]) continue;
            uint64_t ts = atomic_load(&xl_t_send[id]) - 1; /* since xl_t0 */
            fprintf(f, "%.6f %.3f\n", unix0 + xl_s(ts), xl_lat_us[id] / 1000.0);
        }
        if (fclose(f) != 0) {
            perror(O.latency_out);
            exit(2);
        }
    }

    /* latency classes by send time */
    if (O.rate > 0) {
        uint32_t *steady = malloc(xl_n * sizeof *steady), *swap = malloc(xl_n * sizeof *swap),
                 *killed = malloc(xl_n * sizeof *killed), *all = malloc(xl_n * sizeof *all);
        size_t ns = 0, nw = 0, nk = 0, na = 0, nwarm = 0;
        if (!steady || !swap || !killed || !all) xl_die("out of memory");
        uint64_t warm = t_start + (uint64_t)(O.warmup * 1e9);
        for (uint64_t id = 0; id < xl_n; id++) {
            if (!xl_out_copies[id] && !xl_dlq_copies[id]) continue;
            uint64_t ts = atomic_load(&xl_t_send[id]) - 1;
            uint32_t lat = xl_lat_us[id];
            all[na++] = lat;
            if (ts < warm) {
                nwarm++;
                continue;
            }
            int cls = 0; /* 0 steady, 1 swap, 2 kill */
            for (int i = 0; i < xl_n_events && cls != 2; i++) {
                const xl_event *ev = &xl_events[i];
                if (ev->kind == XL_EV_SWAP && ts >= ev->t && ts < ev->t + w_ns) cls = 1;
                if (ev->kind == XL_EV_KILL && ts + second >= ev->t && ts < (ev->recovered ? ev->recovered + second : end_t))
                    cls = 2; /* from 1 s before the kill to 1 s after it recovered */
            }
            if (cls == 0) steady[ns++] = lat;
            else if (cls == 1) swap[nw++] = lat;
            else killed[nk++] = lat;
        }
        xl_dist ds = xl_distribution(steady, ns), dw = xl_distribution(swap, nw), dk = xl_distribution(killed, nk),
                da = xl_distribution(all, na);
        printf("latency, producer send -> output or dead letter consumed (first copy), ms; classes by send time:\n");
        printf("  %-44s %9s %9s %9s %9s\n", "class", "records", "p50", "p99", "max");
        printf("  %-44s %9zu %9.2f %9.2f %9.2f\n", "all", da.n, da.p50, da.p99, da.max);
        printf("  %-44s %9zu %9.2f %9.2f %9.2f\n", "steady (after warm-up, outside the windows)", ds.n, ds.p50, ds.p99,
               ds.max);
        if (O.swaps)
            printf("  %-44s %9zu %9.2f %9.2f %9.2f\n", "swap windows (rename + swap window)", dw.n, dw.p50, dw.p99,
                   dw.max);
        if (O.kill_every > 0)
            printf("  %-44s %9zu %9.2f %9.2f %9.2f\n", "kill windows (kill -1 s .. recovered +1 s)", dk.n, dk.p50,
                   dk.p99, dk.max);
        printf("  (warm-up: the first %.0f s, %zu records, not classed)\n", O.warmup, nwarm);
        if (O.swaps && xl_check_named("swap-p99")) {
            double ratio = dw.p99 / ds.p99;
            xl_result("swap-p99", ds.n && dw.n && ratio <= O.p99_ratio_max,
                      "R12: p99 in swap windows %.2f ms / steady %.2f ms = %.2f (criterion <= %.2f)", dw.p99, ds.p99,
                      ratio, O.p99_ratio_max);
        }
        free(steady);
        free(swap);
        free(killed);
        free(all);
    }

    /* events: lag back to 0 */
    if (xl_n_events > 1) {
        printf("events (lag of the records sent before each, back to 0: when all of them were accounted; when the\n"
               "group's committed offsets passed them; for kills, from when on every record came out within 250 ms):\n");
        printf("  %9s  %-28s %12s %12s %12s\n", "time", "event", "accounted", "committed", "recovered");
        int lag_ok = 1, late = 0;
        uint64_t worst_acc = 0, worst_commit = 0, worst_rec = 0;
        for (int i = 0; i < xl_n_events; i++) {
            const xl_event *ev = &xl_events[i];
            char what[200], a[32], c[32], r[32];
            if (ev->kind == XL_EV_SWAP) snprintf(what, sizeof what, "swap %d to %s", ev->number, ev->version);
            else if (ev->kind == XL_EV_KILL) snprintf(what, sizeof what, "kill %d of pid %d", ev->number, ev->pid);
            else snprintf(what, sizeof what, "end of input");
            uint64_t da = ev->acc_done ? ev->acc_done - ev->t : 0;
            uint64_t dc = ev->commit_done > ev->t ? ev->commit_done - ev->t : 0;
            uint64_t dr = ev->recovered > ev->t ? ev->recovered - ev->t : 0;
            snprintf(a, sizeof a, ev->acc_done ? "%.2f s" : "NEVER", xl_s(da));
            snprintf(c, sizeof c, !O.group ? "-" : ev->commit_done ? "%.2f s" : "NEVER", xl_s(dc));
            snprintf(r, sizeof r, ev->kind != XL_EV_KILL ? "-" : ev->recovered ? "%.2f s" : "NEVER", xl_s(dr));
            if (!ev->acc_done || (O.group && !ev->commit_done) || (ev->kind == XL_EV_KILL && !ev->recovered)) lag_ok = 0;
            /* a kill must be behind us before the next one */
            for (int j = i + 1; j < xl_n_events && ev->kind == XL_EV_KILL; j++)
                if (xl_events[j].kind == XL_EV_KILL) {
                    if (!ev->acc_done || ev->acc_done > xl_events[j].t) late = 1;
                    break;
                }
            if (da > worst_acc) worst_acc = da;
            if (dc > worst_commit) worst_commit = dc;
            if (dr > worst_rec) worst_rec = dr;
            if (ev->kind != XL_EV_SWAP || xl_n_events <= 12 || ev->number <= 2 || i >= xl_n_events - 3)
                printf("  %7.1f s  %-28s %12s %12s %12s\n", xl_s(ev->t - t_start), what, a, c, r);
            else if (ev->number == 3)
                printf("  ... (every swap is checked; the others are not printed)\n");
        }
        char commit[128], rec[96];
        snprintf(commit, sizeof commit, O.group ? ", committed offsets past them within %.2f s" : "", xl_s(worst_commit));
        snprintf(rec, sizeof rec, O.kill_every > 0 ? ", recovered from every kill within %.2f s" : "", xl_s(worst_rec));
        xl_result("lag", lag_ok && !late, "after every event all records sent before it accounted within %.2f s%s%s%s",
                  xl_s(worst_acc), commit, rec, late ? "; a kill was NOT caught up before the next one" : "");
    }

    /* RSS */
    if (O.swaps && O.pid_file && xl_check_named("swap-rss")) {
        int same = pid_steady == pid_end;
        double limit = (double)rss_steady + O.model_bytes / 1024.0;
        xl_result("swap-rss", rss_steady > 0 && rss_end > 0 && same && (double)rss_end <= limit,
                  "R12: RSS before the first swap %ld kB, after the %d swaps %ld kB (%+.1f%%), limit steady + one model "
                  "(%.0f kB) = %.0f kB%s", rss_steady, O.swaps, rss_end,
                  rss_steady > 0 ? 100.0 * (double)(rss_end - rss_steady) / (double)rss_steady : 0.0,
                  O.model_bytes / 1024.0, limit, same ? "" : " (xmcd was restarted: not comparable)");
    }
    if (O.rss_every > 0 && xl_n_samples) {
        /* per process: baseline = its first sample at least --warmup s after it was first seen, outside swap windows */
        printf("RSS drift per xmcd process (VmRSS), each against its own first sample %.0f s after it was first seen;\n"
               "not used as baseline or end point: samples inside a swap window (both models may be mapped) and\n"
               "samples taken while catching up after a kill:\n", O.warmup);
        int drift_ok = 1, measured = 0;
        double worst = -1e9;
        for (size_t i = 0; i < xl_n_samples; i++) {
            int pid = xl_samples[i].pid;
            int first_of_pid = 1;
            for (size_t j = 0; j < i; j++)
                if (xl_samples[j].pid == pid) first_of_pid = 0;
            if (!first_of_pid) continue;
            uint64_t born = xl_samples[i].t;
            long base = -1, last = -1, max = 0;
            uint64_t tb = 0, tl = 0;
            size_t cnt = 0;
            for (size_t j = i; j < xl_n_samples; j++) {
                const xl_sample *s = &xl_samples[j];
                if (s->pid != pid) continue;
                if (s->rss_kb > max) max = s->rss_kb;
                if (s->t < born + (uint64_t)(O.warmup * 1e9) || s->in_swap) continue;
                int recovering = 0; /* still catching up after a kill: buffers of the backlog */
                for (int e = 0; e < xl_n_events; e++)
                    if (xl_events[e].kind == XL_EV_KILL && s->t + t_start >= xl_events[e].t &&
                        (!xl_events[e].recovered || s->t + t_start < xl_events[e].recovered + second))
                        recovering = 1;
                if (recovering) continue;
                if (base < 0) {
                    base = s->rss_kb;
                    tb = s->t;
                }
                last = s->rss_kb;
                tl = s->t;
                cnt++;
            }
            if (cnt < 2) {
                printf("  pid %d (first seen at %.0f s): too short-lived for a drift after the warm-up\n", pid,
                       xl_s(born));
                continue;
            }
            double drift = 100.0 * (double)(last - base) / (double)base;
            measured++;
            if (drift > worst) worst = drift;
            if (drift >= O.drift_max) drift_ok = 0;
            printf("  pid %d: %ld kB at %.0f s -> %ld kB at %.0f s (%.0f s), max %ld kB: drift %+.1f%%\n", pid, base,
                   xl_s(tb), last, xl_s(tl), xl_s(tl - tb), max, drift);
        }
        xl_result("drift", measured > 0 && drift_ok, "RSS drift of every measured process < %.0f%%: worst %+.1f%% "
                  "(%d processes measured)", O.drift_max, measured ? worst : 0.0, measured);
    }
    rd_kafka_destroy(producer);
    rd_kafka_consumer_close(xl_consumer);
    rd_kafka_destroy(xl_consumer);
    if (xl_group_rk) {
        rd_kafka_consumer_close(xl_group_rk);
        rd_kafka_destroy(xl_group_rk);
    }
    printf("xmcd_load: %s\n", xl_failed ? "FAILED" : "ok");
    return xl_failed ? 1 : 0;
}
