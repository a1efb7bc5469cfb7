/* dlq.c: dead-letter copies: the original key and value plus headers saying what went wrong and where.
 *
 * Kafka Connect's contract: the DLQ record is the input record as it was (key, value, its own headers), with
 * context headers added: xmc.error.code, xmc.error.message, xmc.source.topic, xmc.source.partition,
 * xmc.source.offset, xmc.stage (the plugin's name) and xmc.model.version. A record that cannot be handed to
 * the producer at all is retried through the retry list, never dropped; one larger than the producer (or the
 * DLQ topic) accepts goes without its value (header xmc.error.value_omitted: its size), and if that is still
 * too large (headers of the input's own, or its key, that outgrow the limit), as the xmc.* headers alone, the
 * message cut to 256 bytes, the key kept if it is no longer (xmc.error.key_omitted,
 * xmc.error.headers_omitted: what was left out). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

/* The longest key a minimal dead letter keeps (a record's id, usually). */
#define XMCD_DLQ_KEY_KEPT 256

/* The copy's headers at a level (xmcd.h: XMCD_DLQ_*): the input's own and the context, or the context alone. */
static rd_kafka_headers_t *xmcd_dlq_headers(xmcd *d, const xmcd_rec *rec, const char *code, const char *message,
                                            int level)
{
    const rd_kafka_message_t *in = rec->in;
    rd_kafka_headers_t *orig = NULL, *headers;
    int has_orig = rd_kafka_message_headers(in, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig;
    if (has_orig && level < XMCD_DLQ_MINIMAL)
        headers = rd_kafka_headers_copy(orig);
    else
        headers = rd_kafka_headers_new(10);
    char partition[16], offset[24], size[24], cut[257];
    if (level == XMCD_DLQ_MINIMAL) { /* cut at 256 bytes, not inside a UTF-8 sequence */
        size_t n = strlen(message);
        if (n > sizeof cut - 1) {
            n = sizeof cut - 1;
            while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80) n--;
        }
        memcpy(cut, message, n);
        cut[n] = 0;
        message = cut;
    }
    snprintf(partition, sizeof partition, "%d", (int)in->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)in->offset);
    rd_kafka_header_add(headers, "xmc.error.code", -1, code, -1);
    rd_kafka_header_add(headers, "xmc.error.message", -1, message, -1);
    rd_kafka_header_add(headers, "xmc.source.topic", -1, rd_kafka_topic_name(in->rkt), -1);
    rd_kafka_header_add(headers, "xmc.source.partition", -1, partition, -1);
    rd_kafka_header_add(headers, "xmc.source.offset", -1, offset, -1);
    rd_kafka_header_add(headers, "xmc.stage", -1, d->plugin->api->name ? d->plugin->api->name : "stage", -1);
    rd_kafka_header_add(headers, "xmc.model.version", -1, rec->model_version, -1);
    if (level >= XMCD_DLQ_NO_VALUE && in->len > 0) {
        snprintf(size, sizeof size, "%zu", in->len);
        rd_kafka_header_add(headers, "xmc.error.value_omitted", -1, size, -1);
    }
    if (level == XMCD_DLQ_MINIMAL && in->key_len > XMCD_DLQ_KEY_KEPT) {
        snprintf(size, sizeof size, "%zu", in->key_len);
        rd_kafka_header_add(headers, "xmc.error.key_omitted", -1, size, -1);
    }
    if (level == XMCD_DLQ_MINIMAL && has_orig) {
        snprintf(size, sizeof size, "%zu", rd_kafka_header_cnt(orig));
        rd_kafka_header_add(headers, "xmc.error.headers_omitted", -1, size, -1);
    }
    return headers;
}

void xmcd_dlq_less(xmcd_rec *rec, const char *by)
{
    const rd_kafka_message_t *in = rec->in;
    if (rec->dlq_level == XMCD_DLQ_MINIMAL) return;
    rec->dlq_level++;
    if (rec->dlq_level == XMCD_DLQ_NO_VALUE && in->len == 0) rec->dlq_level++; /* the same copy as the whole one */
    xmcd_log(XMCD_LOG_WARN, rec->dlq_level == XMCD_DLQ_NO_VALUE ? "dlq_value_omitted" : "dlq_minimal",
             "topic=%s partition=%d offset=%lld bytes=%zu key_bytes=%zu reason=%s", rd_kafka_topic_name(in->rkt),
             (int)in->partition, (long long)in->offset, in->len, in->key_len, by);
}

void xmcd_dlq_send(xmcd *d, xmcd_rec *rec, const char *code, const char *message)
{
    const rd_kafka_message_t *in = rec->in;
    rec->target = XMCD_TARGET_DLQ;
    rd_kafka_resp_err_t e;
    /* from the level this record reached (a retry, or the broker refused the copy as too large) down: a copy
     * larger than the producer accepts (message.max.bytes) can never go as it is, and retrying it would stall its
     * partition for good (exactly-once: abort and rewind forever); the headers name the source offset where what
     * was left out can be read */
    for (;;) {
        int level = rec->dlq_level, key = level < XMCD_DLQ_MINIMAL || in->key_len <= XMCD_DLQ_KEY_KEPT;
        e = xmcd_producer_send(d, rec, level == XMCD_DLQ_WHOLE ? in->payload : NULL,
                               level == XMCD_DLQ_WHOLE ? in->len : 0, key ? in->key : NULL, key ? in->key_len : 0,
                               xmcd_dlq_headers(d, rec, code, message, level));
        if (e != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || level == XMCD_DLQ_MINIMAL) break;
        xmcd_dlq_less(rec, "producer");
    }
    if (e) {
        if (!d->fatal && xmcd_log_due(&d->last_refusal_log_ns)) /* one line per 5 s, not one per record */
            xmcd_log(XMCD_LOG_WARN, "dlq_produce_failed", "error=%s action=retry", rd_kafka_err2name(e));
        xmcd_count(&d->stats.dlq_retries, 1);
        xmcd_rec_dead_letter_later(d, rec, code, message);
    }
}
