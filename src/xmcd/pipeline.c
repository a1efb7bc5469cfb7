/* pipeline.c: xmcd's main loop: consume → batch → plugin → produce → acknowledge → commit, and the drain.
 *
 * One thread runs the loop. Each turn serves delivery reports, produces due retries, applies backpressure
 * (pause all assigned partitions when the records consumed but not yet acknowledged reach
 * delivery.max_inflight or their bytes delivery.max_inflight_mb, resume when both are at half), polls the
 * consumer for one record or callback, runs the batch through the plugin when it is due, and commits the
 * tracker's safe offsets every commit interval (async).
 * Rebalance revocations and shutdown both drain: finish the open batch, wait (bounded by
 * delivery.drain_deadline_ms) for acknowledgements, then commit synchronously; whatever is still unacknowledged
 * is not committed and will be replayed by the next owner (at-least-once). A fatal error (the plugin failing
 * its instance, a fatal librdkafka error) stops everything without another commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

/* What a record counts in stats.inflight_bytes while it lives: its input's value and key. */
static uint64_t xmcd_rec_bytes(const xmcd_rec *rec)
{
    return rec->in ? (uint64_t)rec->in->len + rec->in->key_len : 0;
}

static void xmcd_rec_free(xmcd *d, xmcd_rec *rec)
{
    atomic_fetch_sub(&d->stats.inflight_bytes, (int_fast64_t)xmcd_rec_bytes(rec));
    if (rec->in) rd_kafka_message_destroy(rec->in);
    free(rec->retry_value);
    free(rec->retry_key);
    if (rec->retry_headers) rd_kafka_headers_destroy(rec->retry_headers);
    free(rec->dlq_reason);
    free(rec);
    atomic_fetch_sub(&d->stats.inflight, 1);
}

void xmcd_rec_finish(xmcd *d, xmcd_rec *rec)
{
    xmcd_hist_add(&d->stats.stage_us[XMCD_STAGE_E2E], (xmcd_now_ns() - rec->t_consumed_ns) / 1000);
    xmcd_offsets_done(d->offsets, rec->part, rec->seq);
    xmcd_rec_free(d, rec);
}

void xmcd_rec_abandon(xmcd *d, xmcd_rec *rec)
{
    xmcd_offsets_drop(d->offsets, rec->part, rec->seq);
    xmcd_rec_free(d, rec);
}

int xmcd_log_due(uint64_t *last_ns)
{
    uint64_t now = xmcd_now_ns();
    if (*last_ns && now - *last_ns < 5000000000ull) return 0;
    *last_ns = now;
    return 1;
}

/* Queues rec to be produced again from its copies, or dead-lettered (dlq_reason). lost: NULL, or what could not
 * be copied (no memory); at-least-once then stops without committing anything more rather than send a wrong copy
 * or drop the record: it is replayed after a restart. */
static void xmcd_retry_push(xmcd *d, xmcd_rec *rec, uint64_t delay_ms, const char *lost)
{
    if (d->conf->mode == XMCD_MODE_EXACTLY_ONCE && !d->fatal) {
        /* a failed copy inside a transaction: the transaction aborts and the batch is consumed again */
        d->txn_failed = 1;
        xmcd_rec_abandon(d, rec);
        return;
    }
    if (lost && !d->fatal) {
        xmcd_log(XMCD_LOG_ERROR, "out_of_memory", "where=%s partition=%d offset=%lld action=stop_without_commit", lost,
                 (int)rec->in->partition, (long long)rec->in->offset);
        d->fatal = 1; /* process_retries sends nothing more: the record waits on the list to be abandoned */
    }
    rec->retry_due_ns = xmcd_now_ns() + delay_ms * 1000000u;
    rec->next = NULL;
    if (d->retry_tail)
        d->retry_tail->next = rec;
    else
        d->retry_head = rec;
    d->retry_tail = rec;
}

static void *xmcd_memdup(const void *p, size_t n)
{
    if (!p) return NULL;
    void *c = malloc(n ? n : 1);
    if (c) memcpy(c, p, n);
    return c;
}

void xmcd_rec_retry_later(xmcd *d, xmcd_rec *rec, const rd_kafka_message_t *failed, uint64_t delay_ms)
{
    free(rec->retry_value);
    free(rec->retry_key);
    if (rec->retry_headers) rd_kafka_headers_destroy(rec->retry_headers);
    rec->retry_headers = NULL;
    rec->retry_value = xmcd_memdup(failed->payload, failed->len);
    rec->retry_value_len = failed->len;
    rec->retry_key = xmcd_memdup(failed->key, failed->key_len);
    rec->retry_key_len = failed->key_len;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(failed, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        rec->retry_headers = rd_kafka_headers_copy(h);
    int kept = (rec->retry_value || !failed->payload) && (rec->retry_key || !failed->key);
    xmcd_retry_push(d, rec, delay_ms, kept ? NULL : "retry_copy");
}

void xmcd_rec_dead_letter_later(xmcd *d, xmcd_rec *rec, const char *code, const char *message)
{
    size_t cl = strlen(code), ml = strlen(message);
    char *reason = malloc(cl + ml + 2);
    if (reason) {
        memcpy(reason, code, cl + 1);
        memcpy(reason + cl + 1, message, ml + 1);
    }
    free(rec->dlq_reason);
    rec->dlq_reason = reason;
    xmcd_retry_push(d, rec, 200, reason ? NULL : "dead_letter_reason");
}

static void xmcd_process_retries(xmcd *d)
{
    if (!d->retry_head) return;
    uint64_t now = xmcd_now_ns();
    xmcd_rec *list = d->retry_head;
    d->retry_head = d->retry_tail = NULL;
    while (list) {
        xmcd_rec *rec = list;
        list = rec->next;
        rec->next = NULL;
        if (rec->retry_due_ns > now || d->fatal) { /* not yet: back on the list, keeping its due time */
            uint64_t due = rec->retry_due_ns;
            xmcd_retry_push(d, rec, due > now ? (due - now + 999999) / 1000000u : 0, NULL);
            continue;
        }
        if (rec->dlq_reason) {
            char code[XMC_STAGE_CODE_MAX], message[XMC_STAGE_MSG_MAX];
            snprintf(code, sizeof code, "%s", rec->dlq_reason);
            snprintf(message, sizeof message, "%s", rec->dlq_reason + strlen(rec->dlq_reason) + 1);
            free(rec->dlq_reason);
            rec->dlq_reason = NULL;
            xmcd_dlq_send(d, rec, code, message);
            continue;
        }
        rd_kafka_headers_t *h = rec->retry_headers ? rd_kafka_headers_copy(rec->retry_headers) : NULL;
        rd_kafka_resp_err_t e =
            xmcd_producer_send(d, rec, rec->retry_value, rec->retry_value_len, rec->retry_key, rec->retry_key_len, h);
        if (e) {
            xmcd_retry_push(d, rec, 500, NULL);
            continue;
        }
        free(rec->retry_value);
        free(rec->retry_key);
        if (rec->retry_headers) rd_kafka_headers_destroy(rec->retry_headers);
        rec->retry_value = rec->retry_key = NULL;
        rec->retry_headers = NULL;
    }
}

static int xmcd_io_reserve(xmcd *d, size_t n, size_t n_headers)
{
    if (n > d->io_cap) {
        xmc_stage_in *in = realloc(d->in, n * sizeof *in);
        if (!in) return -1;
        d->in = in;
        xmc_stage_out *out = realloc(d->out, n * sizeof *out);
        if (!out) return -1;
        d->out = out;
        d->io_cap = n;
    }
    if (n_headers > d->headers_cap) {
        xmc_stage_header *h = realloc(d->headers, n_headers * sizeof *h);
        if (!h) return -1;
        d->headers = h;
        d->headers_cap = n_headers;
    }
    return 0;
}

static void xmcd_send_output(xmcd *d, xmcd_rec *rec, const xmc_stage_out *out)
{
    const rd_kafka_message_t *in = rec->in;
    const void *key = out->key ? out->key : in->key;
    size_t key_len = out->key ? out->key_len : in->key_len;
    rd_kafka_headers_t *headers = rd_kafka_headers_new(1);
    rd_kafka_header_add(headers, "xmc.model.version", -1, rec->model_version, -1);
    rec->target = XMCD_TARGET_OUT;
    rd_kafka_resp_err_t e = xmcd_producer_send(d, rec, out->value, out->value_len, key, key_len, headers);
    if (!e) return;
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        char why[256];
        snprintf(why, sizeof why, "output of %zu bytes refused by the producer: %s", out->value_len,
                 rd_kafka_err2str(e));
        xmcd_dlq_send(d, rec, "PRODUCE", why);
        return;
    }
    /* keep a copy and try again later: the record is neither lost nor committed meanwhile */
    rec->retry_value = xmcd_memdup(out->value, out->value_len);
    rec->retry_value_len = out->value_len;
    rec->retry_key = xmcd_memdup(key, key_len);
    rec->retry_key_len = key_len;
    rec->retry_headers = rd_kafka_headers_new(1);
    rd_kafka_header_add(rec->retry_headers, "xmc.model.version", -1, rec->model_version, -1);
    if (!d->fatal && xmcd_log_due(&d->last_refusal_log_ns)) /* one line per 5 s, not one per record */
        xmcd_log(XMCD_LOG_WARN, "produce_refused", "error=%s action=retry", rd_kafka_err2name(e));
    xmcd_count(&d->stats.produce_retries, 1);
    int kept = (rec->retry_value || !out->value) && (rec->retry_key || !key);
    xmcd_retry_push(d, rec, 500, kept ? NULL : "retry_copy");
}

void xmcd_process_batch(xmcd *d)
{
    xmcd_batch *batch = &d->batch;
    size_t n = batch->n;
    if (!n) return;
    size_t n_headers = 0;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(batch->recs[i]->in, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
            n_headers += rd_kafka_header_cnt(h);
    }
    if (xmcd_io_reserve(d, n, n_headers) != 0) {
        xmcd_log(XMCD_LOG_ERROR, "out_of_memory", "where=batch records=%zu", n);
        d->fatal = 1;
        return;
    }
    uint64_t t0 = xmcd_now_ns();
    size_t hpos = 0;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = batch->recs[i]->in;
        xmc_stage_in *in = &d->in[i];
        in->value = m->payload;
        in->value_len = m->len;
        in->key = m->key;
        in->key_len = m->key_len;
        in->topic = rd_kafka_topic_name(m->rkt);
        in->partition = m->partition;
        in->offset = m->offset;
        in->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
        in->headers = d->headers + hpos;
        in->n_headers = 0;
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
            const char *name;
            const void *value;
            size_t size;
            for (size_t j = 0; rd_kafka_header_get_all(h, j, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
                 j++) {
                d->headers[hpos].name = name;
                d->headers[hpos].value = value;
                d->headers[hpos].value_len = size;
                hpos++;
                in->n_headers++;
            }
        }
    }
    memset(d->out, 0, n * sizeof *d->out);
    xmcd_hist_add(&d->stats.stage_us[XMCD_STAGE_WAIT], (t0 - batch->first_ns) / 1000);
    int rc = d->plugin->api->process(d->plugin->inst, d->in, n, d->out);
    uint64_t t1 = xmcd_now_ns();
    xmcd_hist_add(&d->stats.stage_us[XMCD_STAGE_PLUGIN], (t1 - t0) / 1000);
    xmcd_hist_add(&d->stats.batch_size, n);
    xmcd_count(&d->stats.batches, 1);
    if (rc != 0) {
        xmcd_log(XMCD_LOG_ERROR, "plugin_failed", "records=%zu action=stop_without_commit", n);
        d->fatal = 1;
        return; /* the batch stays open and is abandoned at shutdown */
    }
    int eos = d->conf->mode == XMCD_MODE_EXACTLY_ONCE;
    rd_kafka_topic_partition_list_t *txn_next = NULL, *txn_first = NULL;
    if (eos) {
        xmcd_txn_offsets(batch->recs, n, &txn_next, &txn_first); /* before any record can be finished */
        if (xmcd_txn_begin(d) != 0) {
            rd_kafka_topic_partition_list_destroy(txn_next);
            rd_kafka_topic_partition_list_destroy(txn_first);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        xmcd_rec *rec = batch->recs[i];
        const xmc_stage_out *out = &d->out[i];
        snprintf(rec->model_version, sizeof rec->model_version, "%s", out->model_version);
        if (out->kind == XMC_STAGE_OUT_RECORD && (out->value || out->value_len == 0)) {
            xmcd_send_output(d, rec, out);
        } else if (out->kind == XMC_STAGE_OUT_ERROR) {
            char code[XMC_STAGE_CODE_MAX], message[XMC_STAGE_MSG_MAX];
            snprintf(code, sizeof code, "%s", out->code[0] ? out->code : "PLUGIN");
            snprintf(message, sizeof message, "%s", out->message);
            xmcd_dlq_send(d, rec, code, message);
        } else {
            xmcd_dlq_send(d, rec, "NO_OUTPUT", "the plugin left this record's output empty");
        }
    }
    xmcd_batch_clear(batch);
    if (eos) {
        xmcd_txn_finish(d, txn_next, txn_first, n);
        rd_kafka_topic_partition_list_destroy(txn_next);
        rd_kafka_topic_partition_list_destroy(txn_first);
    }
}

static void xmcd_commit(xmcd *d, int sync)
{
    if (d->fatal || d->conf->mode == XMCD_MODE_EXACTLY_ONCE) return; /* transactions carry the offsets */
    /* a synchronous commit (revocation, shutdown) offers every partition again: an async commit of the same
     * offsets may still be in flight and fail with the rebalance, and then these offsets would be lost */
    rd_kafka_topic_partition_list_t *list = xmcd_offsets_committable(d->offsets, sync);
    if (!list) return;
    rd_kafka_resp_err_t e = rd_kafka_commit(d->consumer, list, sync ? 0 : 1);
    if (e) {
        xmcd_offsets_commit_result(d->offsets, e, list);
        if (sync || e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            xmcd_log(XMCD_LOG_WARN, "commit_failed", "error=%s sync=%d", rd_kafka_err2name(e), sync);
    }
    if (sync) {
        for (int i = 0; i < list->cnt; i++)
            xmcd_log(XMCD_LOG_DEBUG, "committed", "topic=%s partition=%d offset=%lld error=%s",
                     list->elems[i].topic, (int)list->elems[i].partition, (long long)list->elems[i].offset,
                     rd_kafka_err2name(e ? e : list->elems[i].err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Finishes the open batch, waits for acknowledgements until deadline_ns, then commits synchronously. */
static void xmcd_drain(xmcd *d, uint64_t deadline_ns)
{
    if (!d->fatal) xmcd_process_batch(d);
    while (!d->fatal && xmcd_offsets_pending(d->offsets) > 0 && xmcd_now_ns() < deadline_ns) {
        rd_kafka_poll(d->producer, 10);
        xmcd_process_retries(d);
    }
    xmcd_commit(d, 1);
}

static void xmcd_log_parts(const char *event, const rd_kafka_topic_partition_list_t *parts)
{
    char list[1024];
    size_t o = 0;
    list[0] = 0;
    for (int i = 0; i < parts->cnt && o < sizeof list - 16; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%d", i ? "," : "", (int)parts->elems[i].partition);
    xmcd_log(XMCD_LOG_INFO, event, "topic=%s partitions=%s", parts->cnt ? parts->elems[0].topic : "-",
             list[0] ? list : "-");
}

void xmcd_rebalance(xmcd *d, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts)
{
    int coop = !strcmp(rd_kafka_rebalance_protocol(d->consumer), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        xmcd_log_parts("assigned", parts);
        if (xmcd_offsets_assign(d->offsets, parts) != 0) {
            xmcd_log(XMCD_LOG_ERROR, "out_of_memory", "where=assign");
            d->fatal = 1;
        }
        /* a refused assignment (the consumer closing or failed) leaves the tracker without those partitions,
         * so that pause, resume and commits act only on partitions this consumer owns */
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(d->consumer, parts);
            if (e) {
                xmcd_log(XMCD_LOG_ERROR, "assign_failed", "error=%s", xmcd_log_q(rd_kafka_error_string(e)));
                rd_kafka_error_destroy(e);
                xmcd_offsets_revoke(d->offsets, parts);
                return;
            }
        } else {
            rd_kafka_resp_err_t e = rd_kafka_assign(d->consumer, parts);
            if (e) {
                xmcd_log(XMCD_LOG_ERROR, "assign_failed", "error=%s", rd_kafka_err2name(e));
                xmcd_offsets_revoke(d->offsets, parts);
                return;
            }
        }
        /* librdkafka keeps an application pause on a partition across unassign/assign: a partition revoked
         * while paused would come back paused for good once d->paused is cleared, so set each newly assigned
         * partition's state explicitly */
        if (d->paused)
            rd_kafka_pause_partitions(d->consumer, parts);
        else
            rd_kafka_resume_partitions(d->consumer, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(d->consumer);
        xmcd_log_parts(lost ? "lost" : "revoked", parts);
        uint64_t deadline = d->draining ? d->drain_deadline_ns
                                        : xmcd_now_ns() + (uint64_t)d->conf->drain_deadline_ms * 1000000u;
        if (!lost)
            xmcd_drain(d, deadline);
        else if (!d->fatal) /* a failed plugin's instance cannot go on (stage.h): its batch stays open */
            xmcd_process_batch(d); /* the records are someone else's now; their copies still go out */
        xmcd_offsets_revoke(d->offsets, parts);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(d->consumer, parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(d->consumer, NULL);
            d->paused = 0;
            atomic_store(&d->stats.paused, 0);
        }
        return;
    }
    xmcd_log(XMCD_LOG_ERROR, "rebalance_error", "error=%s", rd_kafka_err2name(err));
    xmcd_offsets_revoke(d->offsets, NULL);
    rd_kafka_assign(d->consumer, NULL);
}

static void xmcd_consume_one(xmcd *d, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED) {
            /* a batch took longer than max.poll.interval.ms: librdkafka left the group; it rejoins on this
             * poll and the partitions come back through the rebalance callback (their uncommitted records are
             * consumed again: at-least-once) */
            xmcd_count(&d->stats.max_poll_exceeded, 1);
            xmcd_log(XMCD_LOG_ERROR, "max_poll_exceeded", "reason=%s action=rejoin",
                     xmcd_log_q(rd_kafka_message_errstr(m)));
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            /* a high-level consumer's fatal error (e.g. a fenced static member) comes here, not to error_cb */
            xmcd_kafka_error_cb(d->consumer, m->err, rd_kafka_message_errstr(m), d);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            xmcd_count(&d->stats.consume_errors, 1);
            xmcd_log(XMCD_LOG_WARN, "consume_error", "error=%s reason=%s", rd_kafka_err2name(m->err),
                     xmcd_log_q(rd_kafka_message_errstr(m)));
        }
        rd_kafka_message_destroy(m);
        return;
    }
    uint64_t seq = 0;
    xmcd_part *part = NULL;
    int tracked = xmcd_offsets_track(d->offsets, rd_kafka_topic_name(m->rkt), m->partition, m->offset, &part, &seq);
    if (tracked == 1) { /* not ours (revoked meanwhile): not processed, the partition's next owner consumes it */
        xmcd_log(XMCD_LOG_WARN, "record_skipped", "partition=%d offset=%lld reason=not_assigned", (int)m->partition,
                 (long long)m->offset);
        rd_kafka_message_destroy(m);
        return;
    }
    xmcd_rec *rec = tracked == 0 ? calloc(1, sizeof *rec) : NULL;
    if (!rec) {
        /* no memory: the record cannot be processed and the tracker never commits past it (one tracked is
         * dropped, which holds the commit point the same way). Records after it would finish but never commit:
         * stop without committing anything more, so that a restart replays it instead of stalling here. */
        if (part) xmcd_offsets_drop(d->offsets, part, seq);
        xmcd_log(XMCD_LOG_ERROR, "out_of_memory", "where=consume partition=%d offset=%lld action=stop_without_commit",
                 (int)m->partition, (long long)m->offset);
        d->fatal = 1;
        rd_kafka_message_destroy(m);
        return;
    }
    uint64_t now = xmcd_now_ns();
    rec->in = m;
    rec->part = part;
    rec->seq = seq;
    rec->t_consumed_ns = now;
    atomic_fetch_add(&d->stats.inflight, 1);
    atomic_fetch_add(&d->stats.inflight_bytes, (int_fast64_t)xmcd_rec_bytes(rec));
    xmcd_count(&d->stats.consumed, 1);
    if (xmcd_batch_add(&d->batch, rec, now) != 0) {
        xmcd_log(XMCD_LOG_ERROR, "out_of_memory", "where=batch");
        xmcd_rec_abandon(d, rec);
        d->fatal = 1;
    }
}

static void xmcd_reload_config(xmcd *d)
{
    char err[1024];
    xmcd_config *fresh = xmcd_config_load(d->conf->path, err, sizeof err);
    if (!fresh) {
        xmcd_log(XMCD_LOG_ERROR, "config_reload_refused", "reason=%s action=keep_running_config", xmcd_log_q(err));
    } else {
        if (d->embedded) fresh->brokers = d->conf->brokers; /* the file's is ignored in this mode: no false change */
        xmcd_config_apply_live(d->conf, fresh);
        xmcd_config_free(fresh);
        xmcd_reload_set_poll_ms(d->reload, d->conf->reload_poll_ms);
        xmcd_log(XMCD_LOG_INFO, "config_reloaded", "path=%s", xmcd_log_q(d->conf->path));
    }
    xmcd_reload_kick(d->reload); /* and check the model repository now */
}

static void xmcd_shutdown(xmcd *d)
{
    d->draining = 1;
    d->drain_deadline_ns = xmcd_now_ns() + (uint64_t)d->conf->drain_deadline_ms * 1000000u;
    xmcd_log(XMCD_LOG_INFO, "drain_start", "inflight=%llu batch=%zu deadline_ms=%d fatal=%d",
             (unsigned long long)xmcd_offsets_pending(d->offsets), d->batch.n, d->conf->drain_deadline_ms,
             d->fatal);
    xmcd_drain(d, d->drain_deadline_ns);
    uint64_t left = xmcd_offsets_pending(d->offsets);
    if (left)
        xmcd_log(XMCD_LOG_WARN, "drain_incomplete", "uncommitted_records=%llu reason=%s", (unsigned long long)left,
                 d->fatal ? "fatal_error" : "deadline");
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(d->consumer); /* revokes: one more drain+commit */
    if (e) xmcd_log(XMCD_LOG_WARN, "consumer_close", "error=%s", rd_kafka_err2name(e));
    /* what is still in flight is given up: uncommitted, replayed after a restart */
    rd_kafka_purge(d->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    d->fatal = 1; /* from here delivery reports only release records */
    /* the purged copies' reports come from the broker threads, not all at once: served until none is left
     * (bounded), so that every record is released before the clients are destroyed or restarted */
    rd_kafka_flush(d->producer, 5000);
    while (d->retry_head) {
        xmcd_rec *rec = d->retry_head;
        d->retry_head = rec->next;
        xmcd_rec_abandon(d, rec);
    }
    d->retry_tail = NULL;
    for (size_t i = 0; i < d->batch.n; i++) xmcd_rec_abandon(d, d->batch.recs[i]);
    xmcd_batch_clear(&d->batch);
}

void xmcd_release(xmcd *d)
{
    if (d->consumer) rd_kafka_destroy(d->consumer);
    if (d->producer) rd_kafka_destroy(d->producer);
    xmcd_offsets_free(d->offsets);
    xmcd_plugin_close(d->plugin);
    xmcd_batch_free(&d->batch);
    free(d->in);
    free(d->out);
    free(d->headers);
}

int xmcd_restart_clients(xmcd *d, char *err, size_t errlen)
{
    /* xmcd_shutdown() closed the consumer, purged the producer and released every record */
    if (d->consumer) rd_kafka_destroy(d->consumer);
    if (d->producer) rd_kafka_destroy(d->producer);
    d->consumer = d->producer = NULL;
    xmcd_offsets_free(d->offsets);
    d->offsets = xmcd_offsets_new();
    d->paused = d->draining = d->fatal = d->kafka_fatal = d->txn_failed = d->queue_stalled = 0;
    d->txn_outputs = d->txn_dead_letters = 0;
    atomic_store(&d->stats.paused, 0);
    atomic_store(&d->stats.lag, -1);
    if (!d->offsets) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->producer = xmcd_producer_new(d, err, errlen);
    if (!d->producer) return -1;
    if (d->conf->mode == XMCD_MODE_EXACTLY_ONCE && xmcd_txn_init(d) != 0) {
        snprintf(err, errlen, "init_transactions failed");
        return -1;
    }
    d->consumer = xmcd_consumer_new(d, err, errlen);
    return d->consumer ? 0 : -1;
}

int xmcd_run(xmcd *d)
{
    uint64_t now = xmcd_now_ns();
    d->next_commit_ns = now + (uint64_t)d->conf->commit_interval_ms * 1000000u;
    d->next_stats_ns = now + (uint64_t)d->conf->stats_interval_ms * 1000000u;
    int was_fatal = 0;
    while (!d->fatal && !*d->stop_flag) {
        if (*d->hup_flag) {
            *d->hup_flag = 0;
            xmcd_reload_config(d);
        }
        rd_kafka_poll(d->producer, 0);
        xmcd_process_retries(d);

        uint64_t pending = xmcd_offsets_pending(d->offsets);
        /* records held until acknowledged are bounded in number and in bytes: 20,000 records of 1 MiB would
         * otherwise be 20 GB of memory during an acknowledgement stall */
        uint64_t bytes = (uint64_t)atomic_load(&d->stats.inflight_bytes);
        uint64_t max_bytes = (uint64_t)d->conf->max_inflight_mb << 20;
        if (!d->paused && (pending >= (uint64_t)d->conf->max_inflight || bytes >= max_bytes)) {
            xmcd_consumer_pause(d, 1);
            xmcd_count(&d->stats.pauses, 1);
            xmcd_log(XMCD_LOG_INFO, "backpressure_pause",
                     "inflight=%llu max_inflight=%d inflight_bytes=%llu max_inflight_mb=%d", (unsigned long long)pending,
                     d->conf->max_inflight, (unsigned long long)bytes, d->conf->max_inflight_mb);
        } else if (d->paused && pending <= (uint64_t)d->conf->max_inflight / 2 && bytes <= max_bytes / 2) {
            xmcd_consumer_pause(d, 0);
            xmcd_log(XMCD_LOG_INFO, "backpressure_resume", "inflight=%llu inflight_bytes=%llu",
                     (unsigned long long)pending, (unsigned long long)bytes);
        }

        now = xmcd_now_ns();
        int wait = xmcd_batch_wait_ms(&d->batch, d->conf->batch_max_wait_ms, now);
        if (wait < 0) wait = 100;
        if (pending > 0 && wait > 5) wait = 5; /* delivery reports are served between polls */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, wait);
        if (m) xmcd_consume_one(d, m);

        now = xmcd_now_ns();
        if (xmcd_batch_due(&d->batch, d->conf->batch_max_records, d->conf->batch_max_wait_ms, now))
            xmcd_process_batch(d);
        if (now >= d->next_commit_ns) {
            xmcd_commit(d, 0);
            xmcd_consumer_lag(d); /* for /metrics between stats lines */
            d->next_commit_ns = now + (uint64_t)d->conf->commit_interval_ms * 1000000u;
        }
        if (d->conf->stats_interval_ms > 0 && now >= d->next_stats_ns) {
            xmcd_consumer_lag(d);
            xmcd_stats_log(&d->stats);
            d->next_stats_ns = now + (uint64_t)d->conf->stats_interval_ms * 1000000u;
        }
    }
    was_fatal = d->fatal;
    xmcd_shutdown(d);
    xmcd_stats_log(&d->stats);
    if (was_fatal && d->kafka_fatal) /* main.c restarts the clients or logs the stop itself */
        xmcd_log(XMCD_LOG_ERROR, "clients_stopped", "reason=kafka_fatal");
    else
        xmcd_log(was_fatal ? XMCD_LOG_ERROR : XMCD_LOG_INFO, "stopped", "exit=%d", was_fatal ? 1 : 0);
    return was_fatal ? 1 : 0;
}
