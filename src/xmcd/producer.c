/* producer.c: the idempotent producer for outputs and dead-letter copies, and its delivery reports.
 *
 * enable.idempotence gives ordered, de-duplicated retries inside librdkafka (acks=all). A delivery report is
 * the only thing that finishes a record: success → xmcd_rec_finish (the offset may now be committed);
 * failure → an output that the broker rejects for what it is (too large, invalid) goes to the dead-letter
 * topic, anything else (timeouts, brokers or topic unavailable) is produced again later, so that a record is
 * never dropped and its offset never committed before some copy is acknowledged. Delivery reports run inside
 * rd_kafka_poll() on the pipeline thread; they never produce themselves (both go through the retry list).
 *
 * "Too large" is a verdict on the batch the record travelled in, not always on the record: a topic whose
 * max.message.bytes is below the producer's batch.size refuses whole batches of small records. So the producer's
 * message.max.bytes and batch.size follow the topics' limit when the broker tells it at start (broker.c), and an
 * output refused as too large is produced once more (in a later, smaller batch) before it is a dead letter; in
 * exactly-once the refusal aborts the transaction (its batch is consumed again). The output_rejected line is
 * written at most once per 5 s with the count of refusals not logged since the last one. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

/* Errors that say this message can never be accepted as it is: no point retrying, dead-letter it. */
static int xmcd_producer_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return 1;
    default:
        return 0;
    }
}

static void xmcd_producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    xmcd *d = opaque;
    xmcd_rec *rec = msg->_private;
    if (!msg->err) {
        xmcd_hist_add(&d->stats.stage_us[XMCD_STAGE_ACK], (xmcd_now_ns() - rec->t_produced_ns) / 1000);
        int dlq = rec->target == XMCD_TARGET_DLQ;
        xmcd_count(dlq ? &d->stats.dead_letter_acks : &d->stats.output_acks, 1);
        if (d->conf->mode == XMCD_MODE_EXACTLY_ONCE) /* they stay only if the transaction commits (txn.c) */
            (*(dlq ? &d->txn_dead_letters : &d->txn_outputs))++;
        else
            xmcd_count(dlq ? &d->stats.dead_letters : &d->stats.outputs, 1);
        xmcd_rec_finish(d, rec);
        return;
    }
    if (d->fatal || msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        /* shutting down without delivery: the record stays uncommitted and is replayed after a restart */
        xmcd_rec_abandon(d, rec);
        return;
    }
    xmcd_count(&d->stats.produce_failures, 1);
    int too_large = msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || msg->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
    if (rec->target == XMCD_TARGET_OUT && too_large && !rec->size_retried &&
        d->conf->mode != XMCD_MODE_EXACTLY_ONCE) {
        /* maybe only its batch was too large: once more, in whatever batch the retry list makes */
        rec->size_retried = 1;
        xmcd_count(&d->stats.produce_retries, 1);
        xmcd_rec_retry_later(d, rec, msg, 0);
        return;
    }
    if (rec->target == XMCD_TARGET_OUT && xmcd_producer_permanent(msg->err)) {
        char why[256];
        snprintf(why, sizeof why, "output rejected by the broker: %s", rd_kafka_err2str(msg->err));
        xmcd_count(&d->stats.output_rejected, 1);
        /* exactly-once: the whole transaction aborts and the batch is consumed again (pipeline.c) */
        if (xmcd_log_due(&d->last_rejected_log_ns)) {
            xmcd_log(XMCD_LOG_WARN, "output_rejected", "topic=%s error=%s action=%s unlogged_since_last=%llu",
                     rd_kafka_topic_name(msg->rkt), rd_kafka_err2name(msg->err),
                     d->conf->mode == XMCD_MODE_EXACTLY_ONCE ? "abort_transaction" : "dead_letter",
                     (unsigned long long)d->rejected_unlogged);
            d->rejected_unlogged = 0;
        } else {
            d->rejected_unlogged++;
        }
        xmcd_rec_dead_letter_later(d, rec, "PRODUCE", why);
        return;
    }
    if (rec->target == XMCD_TARGET_DLQ && rec->dlq_level < XMCD_DLQ_MINIMAL && too_large) {
        /* the DLQ topic takes smaller records than the input (its max.message.bytes): retried as it is, the copy
         * would stall its partition for good, so it goes again with less (see dlq.c) */
        char code[XMC_STAGE_CODE_MAX] = "PRODUCE", message[XMC_STAGE_MSG_MAX] = "dead letter refused as too large";
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t vl;
        if (rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
            if (!rd_kafka_header_get_last(h, "xmc.error.code", &v, &vl) && v && vl < sizeof code)
                snprintf(code, sizeof code, "%.*s", (int)vl, (const char *)v);
            if (!rd_kafka_header_get_last(h, "xmc.error.message", &v, &vl) && v)
                snprintf(message, sizeof message, "%.*s", (int)(vl < sizeof message ? vl : sizeof message - 1),
                         (const char *)v);
        }
        xmcd_dlq_less(rec, "broker");
        xmcd_rec_dead_letter_later(d, rec, code, message);
        return;
    }
    xmcd_count(rec->target == XMCD_TARGET_DLQ ? &d->stats.dlq_retries : &d->stats.produce_retries, 1);
    if (xmcd_log_due(&d->last_stall_log_ns)) /* one line per 5 s of stalling, not per record */
        xmcd_log(XMCD_LOG_WARN, rec->target == XMCD_TARGET_DLQ ? "dlq_delivery_failed" : "produce_delivery_failed",
                 "topic=%s error=%s action=retry inflight=%llu", rd_kafka_topic_name(msg->rkt),
                 rd_kafka_err2name(msg->err), (unsigned long long)xmcd_offsets_pending(d->offsets));
    xmcd_rec_retry_later(d, rec, msg, 500);
}

rd_kafka_t *xmcd_producer_new(xmcd *d, char *err, size_t errlen)
{
    const xmcd_config *conf = d->conf;
    char timeout[16], max_bytes[24];
    snprintf(timeout, sizeof timeout, "%d", conf->message_timeout_ms);
    xmcd_broker_info info;
    xmcd_broker_describe(d, &info, 5000);
    /* librdkafka's defaults are 1,000,000 for both; a topic that takes less refuses whole batches. Below 1000
     * (librdkafka's least message.max.bytes) the producer cannot follow: the retry and the DLQ handle it. */
    int follow = info.topic_max_bytes >= 1000 && info.topic_max_bytes < 1000000;
    snprintf(max_bytes, sizeof max_bytes, "%lld", info.topic_max_bytes);
    const char *defaults[17] = {"enable.idempotence", "true", "acks", "all", "linger.ms", "5",
                                "message.timeout.ms", timeout};
    size_t k = 8;
    if (follow) {
        defaults[k++] = "message.max.bytes";
        defaults[k++] = max_bytes;
        defaults[k++] = "batch.size";
        defaults[k++] = max_bytes;
    }
    if (conf->mode == XMCD_MODE_EXACTLY_ONCE) {
        defaults[k++] = "transactional.id";
        defaults[k++] = conf->transactional_id;
    }
    defaults[k] = NULL;
    rd_kafka_conf_t *kconf = xmcd_config_kafka_new(conf, "xmcd-producer", defaults, conf->kafka_producer, err, errlen);
    if (!kconf) return NULL;
    if (follow)
        xmcd_log(XMCD_LOG_INFO, "producer_limits", "message_max_bytes=%s batch_size=%s reason=topic_max_message_bytes",
                 max_bytes, max_bytes);
    rd_kafka_conf_set_dr_msg_cb(kconf, xmcd_producer_dr_cb);
    rd_kafka_t *rk = xmcd_kafka_new(d, RD_KAFKA_PRODUCER, kconf, err, errlen);
    if (!rk) return NULL;
    /* learn the leaders of the output and dead-letter topics now, so the first batch does not pay for it */
    const char *topics[2] = {conf->topic_out, conf->topic_dlq};
    for (int i = 0; i < 2; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topics[i], NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = t ? rd_kafka_metadata(rk, 0, t, &md, 5000) : RD_KAFKA_RESP_ERR__FAIL;
        if (e) xmcd_log(XMCD_LOG_WARN, "producer_metadata", "topic=%s error=%s", topics[i], rd_kafka_err2name(e));
        if (md) rd_kafka_metadata_destroy(md);
        if (t) rd_kafka_topic_destroy(t);
    }
    return rk;
}

rd_kafka_resp_err_t xmcd_producer_send(xmcd *d, xmcd_rec *rec, const void *value, size_t value_len,
                                       const void *key, size_t key_len, rd_kafka_headers_t *headers)
{
    const char *topic = rec->target == XMCD_TARGET_DLQ ? d->conf->topic_dlq : d->conf->topic_out;
    rec->t_produced_ns = xmcd_now_ns();
    /* A full local queue is waited out for at most a second, and not at all while it stays full (queue_stalled)
     * or a stop is asked: longer, and the pipeline thread would starve the consumer (max.poll.interval.ms) and
     * SIGTERM. The caller keeps a refused copy on the retry list. */
    uint64_t until = rec->t_produced_ns + 1000000000u;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !d->queue_stalled && !*d->stop_flag && xmcd_now_ns() < until) {
            rd_kafka_poll(d->producer, 10); /* serve delivery reports, then try again */
            continue;
        }
        d->queue_stalled = e == RD_KAFKA_RESP_ERR__QUEUE_FULL;
        if (e && headers) rd_kafka_headers_destroy(headers);
        /* the producer is dead (its error_cb logs why when served): stop before anything else commits */
        if (e == RD_KAFKA_RESP_ERR__FATAL) d->fatal = 1;
        return e;
    }
}
