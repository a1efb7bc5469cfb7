/* consumer.c: the high-level consumer (consumer group, subscribe, rebalance and commit callbacks, pause).
 *
 * Offsets are never committed or stored automatically: enable.auto.commit and enable.auto.offset.store are
 * off and the pipeline commits what the offset tracker allows. The rebalance callback hands eager and
 * cooperative assignments to xmcd_rebalance(); the commit callback feeds results back to the tracker. Keys
 * from the config's kafka and kafka_consumer lists are applied last, so an operator can override anything. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

static void xmcd_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    xmcd_rebalance(opaque, err, parts);
}

static void xmcd_consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    xmcd *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    xmcd_offsets_commit_result(d->offsets, err, offsets);
    if (err) {
        xmcd_count(&d->stats.commit_failures, 1);
        xmcd_log(XMCD_LOG_WARN, "commit_failed", "error=%s", rd_kafka_err2name(err));
    } else {
        xmcd_count(&d->stats.commits, 1);
    }
}

void xmcd_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int our = level <= 3 ? XMCD_LOG_ERROR : level == 4 ? XMCD_LOG_WARN : level <= 6 ? XMCD_LOG_INFO : XMCD_LOG_DEBUG;
    xmcd_log(our, "kafka_log", "client=%s facility=%s msg=%s", rd_kafka_name(rk), fac, xmcd_log_q(buf));
}

int xmcd_fenced_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH || err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID ||
           err == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

void xmcd_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    xmcd *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        xmcd_log(XMCD_LOG_ERROR, "kafka_fatal", "client=%s error=%s reason=%s", rd_kafka_name(rk),
                 rd_kafka_err2name(orig), xmcd_log_q(fatal));
        d->fatal = 1;
        if (!xmcd_fenced_error(orig)) d->kafka_fatal = 1;
        return;
    }
    /* transient client errors (brokers down, ...) are retried by librdkafka; log them, they are events */
    xmcd_log(XMCD_LOG_WARN, "kafka_error", "client=%s error=%s reason=%s", rd_kafka_name(rk),
             rd_kafka_err2name((rd_kafka_resp_err_t)err), xmcd_log_q(reason));
}

rd_kafka_t *xmcd_kafka_new(xmcd *d, rd_kafka_type_t type, rd_kafka_conf_t *kconf, char *err, size_t errlen)
{
    rd_kafka_conf_set_opaque(kconf, d);
    rd_kafka_conf_set_log_cb(kconf, xmcd_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kconf, xmcd_kafka_error_cb);
    rd_kafka_t *rk = rd_kafka_new(type, kconf, err, errlen);
    if (!rk) rd_kafka_conf_destroy(kconf); /* rd_kafka_new frees kconf only on success */
    return rk;
}

rd_kafka_t *xmcd_consumer_new(xmcd *d, char *err, size_t errlen)
{
    const xmcd_config *conf = d->conf;
    const char *const defaults[] = {"group.id", conf->group_id, "enable.auto.commit", "false",
                                    "enable.auto.offset.store", "false", "auto.offset.reset", "earliest",
                                    conf->mode == XMCD_MODE_EXACTLY_ONCE ? "isolation.level" : NULL,
                                    "read_committed", NULL};
    rd_kafka_conf_t *kconf = xmcd_config_kafka_new(conf, "xmcd-consumer", defaults, conf->kafka_consumer, err, errlen);
    if (!kconf) return NULL;
    rd_kafka_conf_set_rebalance_cb(kconf, xmcd_consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(kconf, xmcd_consumer_commit_cb);
    rd_kafka_t *rk = xmcd_kafka_new(d, RD_KAFKA_CONSUMER, kconf, err, errlen);
    if (!rk) return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, conf->topic_in, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", conf->topic_in, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

void xmcd_consumer_pause(xmcd *d, int pause)
{
    rd_kafka_topic_partition_list_t *list = xmcd_offsets_assigned(d->offsets);
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(d->consumer, list)
                                  : rd_kafka_resume_partitions(d->consumer, list);
    if (e) xmcd_log(XMCD_LOG_WARN, pause ? "pause_failed" : "resume_failed", "error=%s", rd_kafka_err2name(e));
    rd_kafka_topic_partition_list_destroy(list);
    d->paused = pause;
    atomic_store(&d->stats.paused, pause);
}

void xmcd_consumer_lag(xmcd *d)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!d->consumer || rd_kafka_assignment(d->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    int64_t lag = 0;
    int known = 0;
    rd_kafka_topic_partition_list_t *unset = NULL;
    if (parts->cnt > 0 && rd_kafka_position(d->consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            if (p->offset >= 0) {
                int64_t lo, hi;
                if (rd_kafka_get_watermark_offsets(d->consumer, p->topic, p->partition, &lo, &hi) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0) {
                    if (hi > p->offset) lag += hi - p->offset;
                    known = 1;
                }
            } else {
                /* nothing consumed since the assignment: the group's committed offset is where it stands (a
                 * partition reassigned at its end has no position at all; counting it from the low watermark, as
                 * before, showed the whole partition as lag on a real broker after a coordinator failover) */
                if (!unset) unset = rd_kafka_topic_partition_list_new(parts->cnt);
                rd_kafka_topic_partition_list_add(unset, p->topic, p->partition);
            }
        }
    }
    /* a short wait (OffsetFetch to the coordinator), only while some partition has consumed nothing yet */
    if (unset && rd_kafka_committed(d->consumer, unset, 100) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < unset->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &unset->elems[i];
            int64_t lo, hi;
            if (p->err || rd_kafka_get_watermark_offsets(d->consumer, p->topic, p->partition, &lo, &hi) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
                continue;
            /* no committed offset (a new group): everything from the low watermark is behind */
            int64_t pos = p->offset >= 0 ? p->offset : lo;
            if (hi > pos) lag += hi - pos;
            known = 1;
        }
    }
    if (unset) rd_kafka_topic_partition_list_destroy(unset);
    rd_kafka_topic_partition_list_destroy(parts);
    atomic_store(&d->stats.lag, known ? lag : -1);
}
