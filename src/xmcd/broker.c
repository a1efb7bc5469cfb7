/* broker.c: what the cluster tells xmcd at start: the broker's version and the topics' record size limits.
 *
 * librdkafka keeps the ApiVersions it negotiates to itself, so the version comes from the broker's own config:
 * DescribeConfigs on the broker that answers the metadata request gives inter.broker.protocol.version, which
 * is the broker's release unless an operator pinned it lower during an upgrade (then the features of the
 * lower version are what the cluster speaks anyway). In the same request, the output and dead-letter topics'
 * max.message.bytes: a broker refuses a whole record batch above it, so the producer's batches must not be
 * larger (producer.c). Exactly-once needs Kafka 2.5 (KIP-360: the producer epoch bump after an abortable
 * error; KIP-447); on 2.4 and older an abortable produce error inside a transaction becomes fatal
 * (UNSUPPORTED_FEATURE): xmcd then stops with exit 1 without committing, and a restart resumes from the last
 * committed transaction. A cluster without DescribeConfigs (the embedded mock) leaves both unknown, said so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmcd.h"

/* Reads the DescribeConfigs result into info; returns NULL or a static reason it could not. */
static const char *xmcd_broker_read(const xmcd *d, rd_kafka_event_t *ev, xmcd_broker_info *info)
{
    if (!ev) return "no answer in time";
    if (rd_kafka_event_error(ev)) return rd_kafka_err2name(rd_kafka_event_error(ev));
    const rd_kafka_DescribeConfigs_result_t *res = rd_kafka_event_DescribeConfigs_result(ev);
    if (!res) return "unexpected answer";
    size_t n = 0;
    const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(res, &n);
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_ConfigResource_error(rs[i])) continue;
        size_t nc = 0;
        const rd_kafka_ConfigEntry_t **cs = rd_kafka_ConfigResource_configs(rs[i], &nc);
        int topic = rd_kafka_ConfigResource_type(rs[i]) == RD_KAFKA_RESOURCE_TOPIC;
        for (size_t j = 0; j < nc; j++) {
            const char *name = rd_kafka_ConfigEntry_name(cs[j]), *value = rd_kafka_ConfigEntry_value(cs[j]);
            if (!name || !value) continue;
            if (topic && !strcmp(name, "max.message.bytes")) {
                long long v = atoll(value);
                if (v > 0 && (!info->topic_max_bytes || v < info->topic_max_bytes)) info->topic_max_bytes = v;
            } else if (!topic && !strcmp(name, "inter.broker.protocol.version")) {
                snprintf(info->version, sizeof info->version, "%s", value);
                if (sscanf(value, "%d.%d", &info->major, &info->minor) != 2) info->major = info->minor = 0;
            }
        }
    }
    (void)d;
    return NULL;
}

static void xmcd_broker_ask(xmcd *d, rd_kafka_t *rk, xmcd_broker_info *info, int timeout_ms, const char **why)
{
    /* the broker that answers the metadata request is the one asked for its config */
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, d->conf->topic_out, NULL);
    rd_kafka_resp_err_t e = t ? rd_kafka_metadata(rk, 0, t, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    if (t) rd_kafka_topic_destroy(t);
    if (e || !md || (md->orig_broker_id < 0 && md->broker_cnt < 1)) {
        *why = e ? rd_kafka_err2name(e) : "no metadata";
        if (md) rd_kafka_metadata_destroy(md);
        return;
    }
    char id[16];
    snprintf(id, sizeof id, "%d", md->orig_broker_id >= 0 ? md->orig_broker_id : md->brokers[0].id);
    rd_kafka_metadata_destroy(md);
    rd_kafka_ConfigResource_t *rs[3] = {rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, id),
                                        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, d->conf->topic_out),
                                        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, d->conf->topic_dlq)};
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char err[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof err);
    rd_kafka_DescribeConfigs(rk, rs, 3, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    *why = xmcd_broker_read(d, ev, info);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    for (int i = 0; i < 3; i++) rd_kafka_ConfigResource_destroy(rs[i]);
}

void xmcd_broker_describe(xmcd *d, xmcd_broker_info *info, int timeout_ms)
{
    memset(info, 0, sizeof *info);
    const char *why = NULL;
    char err[512];
    /* the operator's kafka and kafka_producer keys (security settings) apply, nothing transactional */
    rd_kafka_conf_t *kconf = xmcd_config_kafka_new(d->conf, "xmcd-admin", NULL, d->conf->kafka_producer, err,
                                                   sizeof err);
    rd_kafka_t *rk = kconf ? xmcd_kafka_new(d, RD_KAFKA_PRODUCER, kconf, err, sizeof err) : NULL;
    if (rk) {
        xmcd_broker_ask(d, rk, info, timeout_ms, &why);
        rd_kafka_destroy(rk);
    } else {
        why = err;
    }
    int eos = d->conf->mode == XMCD_MODE_EXACTLY_ONCE;
    char limit[32];
    snprintf(limit, sizeof limit, "%lld", info->topic_max_bytes);
    if (!info->version[0]) {
        /* unknown: say what exactly-once needs instead of guessing */
        xmcd_log(eos ? XMCD_LOG_WARN : XMCD_LOG_INFO, "broker_version",
                 "version=unknown reason=%s topic_max_message_bytes=%s exactly_once_needs=2.5 note=%s",
                 xmcd_log_q(why ? why : "the broker did not say"), info->topic_max_bytes ? limit : "unknown",
                 xmcd_log_q(eos ? "on a broker older than 2.5 an abortable produce error in a transaction is fatal "
                                  "(KIP-360): xmcd then exits 1 without committing and resumes after a restart"
                                : "at-least-once works on any version"));
        return;
    }
    int old = info->major < 2 || (info->major == 2 && info->minor < 5);
    xmcd_log(eos && old ? XMCD_LOG_WARN : XMCD_LOG_INFO, "broker_version",
             "version=%s topic_max_message_bytes=%s exactly_once_needs=2.5 exactly_once=%s%s%s", info->version,
             info->topic_max_bytes ? limit : "unknown", old ? "limited" : "full", eos && old ? " note=" : "",
             eos && old ? xmcd_log_q("this broker lacks KIP-360: an abortable produce error in a transaction is "
                                     "fatal (UNSUPPORTED_FEATURE): xmcd exits 1 without committing, nothing is "
                                     "lost, and a restart resumes from the last committed transaction")
                        : "");
}
