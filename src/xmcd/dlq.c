/* dlq.c: dead-letter copies: the original key and value plus headers saying what went wrong and where.
 *
 * Kafka Connect's contract: the DLQ record is the input record as it was (key, value, its own headers), with
 * context headers added: xmc.error.code, xmc.error.message, xmc.source.topic, xmc.source.partition,
 * xmc.source.offset, xmc.stage (the plugin's name) and xmc.model.version. A record that cannot be handed to
 * the producer at all is retried through the retry list, never dropped; one larger than the producer accepts
 * goes without its value (header xmc.error.value_omitted: its size). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

/* The copy's headers; omitted > 0 adds xmc.error.value_omitted (the original value's size). */
static rd_kafka_headers_t *xmcd_dlq_headers(xmcd *d, const xmcd_rec *rec, const char *code, const char *message,
                                            size_t omitted)
{
    const rd_kafka_message_t *in = rec->in;
    rd_kafka_headers_t *orig = NULL, *headers;
    if (rd_kafka_message_headers(in, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        headers = rd_kafka_headers_copy(orig);
    else
        headers = rd_kafka_headers_new(8);
    char partition[16], offset[24], size[24];
    snprintf(partition, sizeof partition, "%d", (int)in->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)in->offset);
    rd_kafka_header_add(headers, "xmc.error.code", -1, code, -1);
    rd_kafka_header_add(headers, "xmc.error.message", -1, message, -1);
    rd_kafka_header_add(headers, "xmc.source.topic", -1, rd_kafka_topic_name(in->rkt), -1);
    rd_kafka_header_add(headers, "xmc.source.partition", -1, partition, -1);
    rd_kafka_header_add(headers, "xmc.source.offset", -1, offset, -1);
    rd_kafka_header_add(headers, "xmc.stage", -1, d->plugin->api->name ? d->plugin->api->name : "stage", -1);
    rd_kafka_header_add(headers, "xmc.model.version", -1, rec->model_version, -1);
    if (omitted) {
        snprintf(size, sizeof size, "%zu", omitted);
        rd_kafka_header_add(headers, "xmc.error.value_omitted", -1, size, -1);
    }
    return headers;
}

void xmcd_dlq_send(xmcd *d, xmcd_rec *rec, const char *code, const char *message)
{
    const rd_kafka_message_t *in = rec->in;
    rec->target = XMCD_TARGET_DLQ;
    rd_kafka_resp_err_t e = rec->dlq_omit_value ? RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                                                : xmcd_producer_send(d, rec, in->payload, in->len, in->key,
                                                                     in->key_len, xmcd_dlq_headers(d, rec, code, message, 0));
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && in->len > 0) {
        /* larger than the producer accepts (message.max.bytes): as it is it can never go, and retrying it would
         * stall its partition for good (exactly-once: abort and rewind forever), so it goes without its value;
         * the headers name the source offset where the value can be read */
        xmcd_log(XMCD_LOG_WARN, "dlq_value_omitted", "topic=%s partition=%d offset=%lld bytes=%zu",
                 rd_kafka_topic_name(in->rkt), (int)in->partition, (long long)in->offset, in->len);
        e = xmcd_producer_send(d, rec, NULL, 0, in->key, in->key_len, xmcd_dlq_headers(d, rec, code, message, in->len));
    }
    if (e) {
        if (!d->fatal && xmcd_log_due(&d->last_refusal_log_ns)) /* one line per 5 s, not one per record */
            xmcd_log(XMCD_LOG_WARN, "dlq_produce_failed", "error=%s action=retry", rd_kafka_err2name(e));
        xmcd_count(&d->stats.dlq_retries, 1);
        xmcd_rec_dead_letter_later(d, rec, code, message);
    }
}
