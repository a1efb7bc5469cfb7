/* kafka_check.c: the real-broker tier's independent tool: creates topics, produces keyed inputs, and counts what
 * came out (make test-kafka, tests/kafka/run.sh).
 *
 * It trusts nothing xmcd says about itself: records have keys "id-NNNNNNN"; `count` reads the output and the
 * dead-letter topics from the beginning to their end (read_committed stops at the last stable offset, so open or
 * aborted transactions are not counted; read_uncommitted sees every copy written) and matches copies to ids:
 * lost = ids with neither an output nor a dead letter, dup = copies beyond the first per id. It uses only
 * librdkafka, the same client library as xmcd; the broker (a real Apache Kafka) is the independent part.
 *
 *   kafka_check create BS TOPIC PARTITIONS RF [name=value ...]   topic with configs (exists: ok)
 *   kafka_check produce BS TOPIC FROM TO [poison]               ids FROM..TO-1; poison: every 97th "BAD ...",
 *                                                               every 89th empty, every 101st 1,500 bytes
 *                                                               (dead letters: BAD and the 1,500-byte ones)
 *   kafka_check total BS TOPIC [PARTITION]                      sum of the partitions' high watermarks (or one's)
 *   kafka_check committed BS GROUP TOPIC                        sum of GROUP's committed offsets on TOPIC
 *   kafka_check leader BS TOPIC PARTITION                       the partition leader's broker id
 *   kafka_check coordinator BS GROUP                            the group coordinator's broker id
 *   kafka_check count BS OUT DLQ N ISOLATION [poison|poison-limit]  counts; exit 1 on a lost id (or, with
 *                                                               poison, a BAD id output or a good one dead-
 *                                                               lettered; poison-limit: the output topic takes
 *                                                               at most 1000 bytes, so BIG ids are dead letters too)
 * count prints one line: records=N lost= outputs= dup= dead_letters= dlq_dup= headers_missing= versions=v:n,...
 * Exit status: 0 ok, 1 check failed, 2 usage or broker error. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KC_MAX_PARTS 64
#define KC_MAX_VERSIONS 32

static double kc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *kc_client(rd_kafka_type_t type, const char *bs, const char *const *kv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof err) ||
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err))
        goto fail;
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err)) goto fail;
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) fprintf(stderr, "kafka_check: %s\n", err);
    return rk;
fail:
    fprintf(stderr, "kafka_check: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int kc_create(const char *bs, const char *topic, int parts, int rf, int nconf, char **confs)
{
    rd_kafka_t *rk = kc_client(RD_KAFKA_PRODUCER, bs, NULL);
    if (!rk) return 2;
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, rf, err, sizeof err);
    if (!nt) {
        fprintf(stderr, "kafka_check: %s\n", err);
        rd_kafka_destroy(rk);
        return 2;
    }
    for (int i = 0; i < nconf; i++) {
        char *eq = strchr(confs[i], '=');
        if (!eq) return 2;
        *eq = 0;
        rd_kafka_NewTopic_set_config(nt, confs[i], eq + 1);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 2;
    if (ev) {
        size_t n = 0;
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        if (!e && n == 1) e = rd_kafka_topic_result_error(tr[0]);
        if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            fprintf(stderr, "kafka_check: create %s: %s\n", topic, rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    /* wait until every partition has a leader, so that the first produce does not race the creation */
    double end = kc_now() + 30;
    while (rc == 0 && kc_now() < end) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
        int ready = 0;
        if (!rd_kafka_metadata(rk, 0, t, &md, 5000) && md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt == parts) {
            ready = 1;
            for (int p = 0; p < parts; p++) ready &= md->topics[0].partitions[p].leader >= 0;
        }
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
        if (ready) break;
        nanosleep(&(struct timespec){0, 200000000L}, NULL);
    }
    rd_kafka_destroy(rk);
    return rc;
}

enum { KC_GOOD, KC_BAD, KC_EMPTY, KC_BIG };

static int kc_kind(long id, int poison)
{
    if (!poison) return KC_GOOD;
    if (id % 97 == 13) return KC_BAD;
    if (id % 89 == 7) return KC_EMPTY;
    if (id % 101 == 17) return KC_BIG;
    return KC_GOOD;
}

static int kc_produce(const char *bs, const char *topic, long from, long to, int poison)
{
    static const char *const kv[] = {"enable.idempotence", "true", "linger.ms", "20", NULL};
    rd_kafka_t *rk = kc_client(RD_KAFKA_PRODUCER, bs, kv);
    if (!rk) return 2;
    char value[1600], key[32];
    for (long id = from; id < to; id++) {
        size_t len;
        switch (kc_kind(id, poison)) {
        case KC_BAD: len = (size_t)snprintf(value, sizeof value, "BAD record %ld", id); break;
        case KC_EMPTY: len = 0; break;
        case KC_BIG:
            memset(value, 'z', 1500);
            len = 1500;
            break;
        default: len = (size_t)snprintf(value, sizeof value, "product %ld trail running shoe", id); break;
        }
        snprintf(key, sizeof key, "id-%07ld", id);
        for (;;) {
            rd_kafka_resp_err_t e =
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (e) {
                    fprintf(stderr, "kafka_check: produce: %s\n", rd_kafka_err2str(e));
                    rd_kafka_destroy(rk);
                    return 2;
                }
                break;
            }
            rd_kafka_poll(rk, 10);
        }
    }
    int left = rd_kafka_flush(rk, 60000) ? rd_kafka_outq_len(rk) : 0;
    rd_kafka_destroy(rk);
    if (left) fprintf(stderr, "kafka_check: %d records not acknowledged\n", left);
    return left ? 2 : 0;
}

static int kc_partitions(rd_kafka_t *rk, const char *topic, int *leaders)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;
    if (!rd_kafka_metadata(rk, 0, t, &md, 10000) && md->topic_cnt == 1 && !md->topics[0].err) {
        n = md->topics[0].partition_cnt;
        for (int p = 0; p < n && p < KC_MAX_PARTS && leaders; p++) leaders[p] = md->topics[0].partitions[p].leader;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n > KC_MAX_PARTS ? KC_MAX_PARTS : n;
}

/* partition < 0: every partition */
static int kc_total(const char *bs, const char *topic, int partition)
{
    rd_kafka_t *rk = kc_client(RD_KAFKA_CONSUMER, bs, NULL);
    if (!rk) return 2;
    int n = kc_partitions(rk, topic, NULL);
    long long total = 0;
    for (int p = 0; p < n; p++) {
        if (partition >= 0 && p != partition) continue;
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000)) {
            rd_kafka_destroy(rk);
            return 2;
        }
        total += hi;
    }
    rd_kafka_destroy(rk);
    if (n < 0) return 2;
    printf("%lld\n", total);
    return 0;
}

/* The sum of GROUP's committed offsets on TOPIC (OffsetFetch only: the client never joins the group). */
static int kc_committed(const char *bs, const char *group, const char *topic)
{
    const char *kv[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    rd_kafka_t *rk = kc_client(RD_KAFKA_CONSUMER, bs, kv);
    if (!rk) return 2;
    int n = kc_partitions(rk, topic, NULL), rc = 2;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int p = 0; p < n; p++) rd_kafka_topic_partition_list_add(l, topic, p);
    if (n > 0 && !rd_kafka_committed(rk, l, 5000)) {
        long long sum = 0;
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset >= 0) sum += l->elems[i].offset;
        printf("%lld\n", sum);
        rc = 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return rc;
}

static int kc_leader(const char *bs, const char *topic, int partition)
{
    rd_kafka_t *rk = kc_client(RD_KAFKA_PRODUCER, bs, NULL);
    if (!rk) return 2;
    int leaders[KC_MAX_PARTS];
    int n = kc_partitions(rk, topic, leaders);
    rd_kafka_destroy(rk);
    if (partition < 0 || partition >= n) return 2;
    printf("%d\n", leaders[partition]);
    return 0;
}

static int kc_coordinator(const char *bs, const char *group)
{
    rd_kafka_t *rk = kc_client(RD_KAFKA_PRODUCER, bs, NULL);
    if (!rk) return 2;
    const struct rd_kafka_group_list *list = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(rk, group, &list, 10000);
    int rc = 2;
    if (!e && list && list->group_cnt == 1) {
        printf("%d\n", list->groups[0].broker.id);
        rc = 0;
    }
    if (list) rd_kafka_group_list_destroy(list);
    rd_kafka_destroy(rk);
    return rc;
}

typedef struct kc_seen {
    unsigned short out, dlq;
    unsigned char headers_ok, version;
} kc_seen;

static char kc_versions[KC_MAX_VERSIONS][64];
static long kc_version_n[KC_MAX_VERSIONS];
static int kc_nversions;

static int kc_version_id(const char *v, size_t len)
{
    if (len >= sizeof kc_versions[0]) len = sizeof kc_versions[0] - 1;
    for (int i = 0; i < kc_nversions; i++)
        if (strlen(kc_versions[i]) == len && !memcmp(kc_versions[i], v, len)) return i;
    if (kc_nversions == KC_MAX_VERSIONS) return KC_MAX_VERSIONS - 1;
    memcpy(kc_versions[kc_nversions], v, len);
    kc_versions[kc_nversions][len] = 0;
    return kc_nversions++;
}

/* Reads topic from the beginning to its end under isolation into seen[]. Returns records read or -1. */
static long kc_read(const char *bs, const char *topic, const char *isolation, long n, kc_seen *seen, int dlq)
{
    static const char *kv[] = {"group.id", "kafka-check", "enable.auto.commit", "false", "enable.partition.eof",
                               "true", "isolation.level", NULL, NULL};
    kv[7] = isolation;
    rd_kafka_t *rk = kc_client(RD_KAFKA_CONSUMER, bs, kv);
    if (!rk) return -1;
    int parts = kc_partitions(rk, topic, NULL);
    if (parts < 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    int eof[KC_MAX_PARTS] = {0}, left = parts;
    long read = 0;
    double end = kc_now() + 120;
    while (left > 0 && kc_now() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!eof[m->partition]) left--;
            eof[m->partition] = 1;
        } else if (m->err) {
            fprintf(stderr, "kafka_check: read %s: %s\n", topic, rd_kafka_message_errstr(m));
        } else {
            read++;
            long id = -1;
            if (m->key_len == 10 && !memcmp(m->key, "id-", 3)) id = strtol((const char *)m->key + 3, NULL, 10);
            if (id >= 0 && id < n) {
                kc_seen *s = &seen[id];
                if (dlq) {
                    s->dlq++;
                    rd_kafka_headers_t *h = NULL;
                    static const char *const names[] = {"xmc.error.code", "xmc.error.message", "xmc.source.topic",
                                                        "xmc.source.partition", "xmc.source.offset", "xmc.stage",
                                                        "xmc.model.version"};
                    int ok = !rd_kafka_message_headers(m, &h) && h;
                    for (size_t i = 0; ok && i < sizeof names / sizeof names[0]; i++) {
                        const void *v;
                        size_t vl;
                        ok = !rd_kafka_header_get_last(h, names[i], &v, &vl);
                    }
                    s->headers_ok = (unsigned char)ok;
                } else {
                    s->out++;
                    const char *bar = m->payload ? memchr(m->payload, '|', m->len) : NULL;
                    int vid = kc_version_id(m->payload, bar ? (size_t)(bar - (const char *)m->payload) : 0);
                    s->version = (unsigned char)vid;
                    if (s->out == 1) kc_version_n[vid]++;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (left > 0) fprintf(stderr, "kafka_check: %s: %d partitions not read to their end in 120 s\n", topic, left);
    return left > 0 ? -1 : read;
}

static int kc_count(const char *bs, const char *out, const char *dlq, long n, const char *isolation, int poison)
{
    kc_seen *seen = calloc((size_t)n, sizeof *seen);
    if (!seen) return 2;
    if (kc_read(bs, out, isolation, n, seen, 0) < 0 || kc_read(bs, dlq, isolation, n, seen, 1) < 0) {
        free(seen);
        return 2;
    }
    long lost = 0, outputs = 0, dup = 0, dead = 0, dlq_dup = 0, headers_missing = 0, wrong = 0;
    for (long id = 0; id < n; id++) {
        const kc_seen *s = &seen[id];
        lost += !s->out && !s->dlq;
        outputs += s->out > 0;
        dup += s->out > 1 ? s->out - 1 : 0;
        dead += s->dlq > 0;
        dlq_dup += s->dlq > 1 ? s->dlq - 1 : 0;
        headers_missing += s->dlq && !s->headers_ok;
        /* an empty value is a record like any other (the fixture plugin outputs it); BAD fails in the plugin;
         * BIG's output fits a default topic but not one limited to 1000 bytes (poison == 2, R6) */
        if (poison) {
            int k = kc_kind(id, 1), to_dlq = k == KC_BAD || (k == KC_BIG && poison == 2);
            wrong += to_dlq ? s->out > 0 : s->dlq > 0;
        }
    }
    printf("records=%ld lost=%ld outputs=%ld dup=%ld dead_letters=%ld dlq_dup=%ld headers_missing=%ld", n, lost,
           outputs, dup, dead, dlq_dup, headers_missing);
    if (poison) printf(" misrouted=%ld", wrong);
    printf(" versions=");
    for (int i = 0; i < kc_nversions; i++) printf("%s%s:%ld", i ? "," : "", kc_versions[i], kc_version_n[i]);
    printf("\n");
    free(seen);
    return lost || headers_missing || wrong ? 1 : 0;
}

static void kc_usage(void)
{
    fprintf(stderr, "usage: kafka_check create|produce|total|committed|leader|coordinator|count ... (see tests/kafka/kafka_check.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 4) kc_usage();
    const char *cmd = argv[1], *bs = argv[2];
    if (!strcmp(cmd, "create") && argc >= 6) return kc_create(bs, argv[3], atoi(argv[4]), atoi(argv[5]), argc - 6, argv + 6);
    if (!strcmp(cmd, "produce") && argc >= 6)
        return kc_produce(bs, argv[3], atol(argv[4]), atol(argv[5]), argc > 6 && !strcmp(argv[6], "poison"));
    if (!strcmp(cmd, "total")) return kc_total(bs, argv[3], argc >= 5 ? atoi(argv[4]) : -1);
    if (!strcmp(cmd, "committed") && argc >= 5) return kc_committed(bs, argv[3], argv[4]);
    if (!strcmp(cmd, "leader") && argc >= 5) return kc_leader(bs, argv[3], atoi(argv[4]));
    if (!strcmp(cmd, "coordinator")) return kc_coordinator(bs, argv[3]);
    if (!strcmp(cmd, "count") && argc >= 7)
        return kc_count(bs, argv[3], argv[4], atol(argv[5]), argv[6], argc > 7 ? !strcmp(argv[7], "poison") ? 1 : !strcmp(argv[7], "poison-limit") ? 2 : 0 : 0);
    kc_usage();
    return 2;
}
