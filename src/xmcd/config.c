/* config.c: load and validate xmcd.conf (libconfig) into an xmcd_config; see config.h.
 *
 * The file is checked to be a regular file of sane size before libconfig reads it (a huge file or a
 * directory is refused with a reason, not parsed). Every key is then looked up with its expected type and
 * range; a present key of the wrong type or out of range is an error naming the key's own file:line, a
 * missing key takes its default. Unknown keys are left alone so that new keys do not break old daemons. */
#include "config.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define XMCD_CONFIG_MAX_BYTES (1 << 20)

static int xmcd_config_fail(const config_setting_t *s, const xmcd_config *conf, char *err, size_t errlen,
                            const char *fmt, const char *key, const char *detail)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    int line = s ? (int)config_setting_source_line(s) : 0;
    char what[512];
    snprintf(what, sizeof what, fmt, key, detail);
    snprintf(err, errlen, "%s:%d: %s", file ? file : conf->path, line, what);
    return -1;
}

static int xmcd_config_int(xmcd_config *conf, const char *key, int def, int lo, int hi, int *out, char *err,
                           size_t errlen)
{
    const config_setting_t *s = config_lookup(&conf->tree, key);
    if (!s) {
        *out = def;
        return 0;
    }
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return xmcd_config_fail(s, conf, err, errlen, "%s must be an integer%s", key, "");
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    if (v < lo || v > hi) {
        char range[96];
        snprintf(range, sizeof range, " (got %lld, allowed %d..%d)", v, lo, hi);
        return xmcd_config_fail(s, conf, err, errlen, "%s out of range%s", key, range);
    }
    *out = (int)v;
    return 0;
}

static int xmcd_config_str(xmcd_config *conf, const char *key, const char *def, int required,
                           const char **out, char *err, size_t errlen)
{
    const config_setting_t *s = config_lookup(&conf->tree, key);
    if (!s) {
        if (required) return xmcd_config_fail(NULL, conf, err, errlen, "missing required key %s%s", key, "");
        *out = def;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return xmcd_config_fail(s, conf, err, errlen, "%s must be a string%s", key, "");
    *out = config_setting_get_string(s);
    if (required && !**out) return xmcd_config_fail(s, conf, err, errlen, "%s must not be empty%s", key, "");
    return 0;
}

static int xmcd_config_kv_list(xmcd_config *conf, const char *key, const config_setting_t **out, char *err,
                               size_t errlen)
{
    const config_setting_t *s = config_lookup(&conf->tree, key);
    *out = NULL;
    if (!s) return 0;
    if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
        return xmcd_config_fail(s, conf, err, errlen, "%s must be a list of \"key=value\" strings%s", key, "");
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (!v || !strchr(v, '=') || v[0] == '=')
            return xmcd_config_fail(e, conf, err, errlen, "%s: every element must be a \"key=value\" string%s",
                                    key, "");
    }
    *out = s;
    return 0;
}

xmcd_config *xmcd_config_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s:0: cannot read config: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s:0: not a regular file", path);
        return NULL;
    }
    if (st.st_size > XMCD_CONFIG_MAX_BYTES) {
        snprintf(err, errlen, "%s:0: config file of %lld bytes is larger than the %d byte limit", path,
                 (long long)st.st_size, XMCD_CONFIG_MAX_BYTES);
        return NULL;
    }
    xmcd_config *conf = calloc(1, sizeof *conf);
    if (!conf) {
        snprintf(err, errlen, "%s:0: out of memory", path);
        return NULL;
    }
    snprintf(conf->path, sizeof conf->path, "%s", path);
    config_init(&conf->tree);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    config_set_include_dir(&conf->tree, dirname(dir));
    if (config_read_file(&conf->tree, path) != CONFIG_TRUE) {
        const char *file = config_error_file(&conf->tree);
        snprintf(err, errlen, "%s:%d: %s", file ? file : path, config_error_line(&conf->tree),
                 config_error_text(&conf->tree));
        xmcd_config_free(conf);
        return NULL;
    }
    const char *mode = NULL, *level = NULL;
    int rc = 0;
    rc = rc ? rc : xmcd_config_str(conf, "brokers", "", 0, &conf->brokers, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "group_id", "xmcd", 0, &conf->group_id, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "topics.in", NULL, 1, &conf->topic_in, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "topics.out", NULL, 1, &conf->topic_out, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "topics.dlq", NULL, 1, &conf->topic_dlq, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "batch.max_records", 256, 1, 100000, &conf->batch_max_records, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "batch.max_wait_ms", 20, 0, 60000, &conf->batch_max_wait_ms, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "delivery.mode", "at-least-once", 0, &mode, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "delivery.commit_interval_ms", 500, 10, 600000,
                                   &conf->commit_interval_ms, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "delivery.max_inflight", 20000, 1, 10000000, &conf->max_inflight, err,
                                   errlen);
    rc = rc ? rc : xmcd_config_int(conf, "delivery.drain_deadline_ms", 10000, 100, 3600000,
                                   &conf->drain_deadline_ms, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "delivery.message_timeout_ms", 30000, 1000, 3600000,
                                   &conf->message_timeout_ms, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "delivery.transactional_id", NULL, 0, &conf->transactional_id, err,
                                   errlen);
    rc = rc ? rc : xmcd_config_str(conf, "plugin.path", NULL, 1, &conf->plugin_path, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "plugin.config.model_repo", NULL, 0, &conf->model_repo, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "reload.poll_ms", 2000, 0, 3600000, &conf->reload_poll_ms, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "stats.interval_ms", 10000, 0, 3600000, &conf->stats_interval_ms, err,
                                   errlen);
    rc = rc ? rc : xmcd_config_int(conf, "stats.http_port", 0, 0, 65535, &conf->http_port, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "stats.http_addr", "127.0.0.1", 0, &conf->http_addr, err, errlen);
    rc = rc ? rc : xmcd_config_str(conf, "log.level", "info", 0, &level, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "log.kafka_level", 4, 0, 7, &conf->kafka_log_level, err, errlen);
    rc = rc ? rc : xmcd_config_kv_list(conf, "kafka", &conf->kafka, err, errlen);
    rc = rc ? rc : xmcd_config_kv_list(conf, "kafka_consumer", &conf->kafka_consumer, err, errlen);
    rc = rc ? rc : xmcd_config_kv_list(conf, "kafka_producer", &conf->kafka_producer, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "embedded.brokers", 3, 1, 16, &conf->embedded_brokers, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "embedded.partitions", 4, 1, 256, &conf->embedded_partitions, err, errlen);
    rc = rc ? rc : xmcd_config_int(conf, "embedded.dlq_partitions", 1, 1, 256, &conf->embedded_dlq_partitions,
                                   err, errlen);
    if (rc) goto fail;

    if (!strcmp(mode, "at-least-once")) {
        conf->mode = XMCD_MODE_AT_LEAST_ONCE;
    } else if (!strcmp(mode, "exactly-once")) {
        conf->mode = XMCD_MODE_EXACTLY_ONCE;
        if (!conf->transactional_id || !*conf->transactional_id) {
            xmcd_config_fail(config_lookup(&conf->tree, "delivery.mode"), conf, err, errlen,
                             "%s needs delivery.transactional_id%s", "delivery.mode \"exactly-once\"", "");
            goto fail;
        }
    } else {
        xmcd_config_fail(config_lookup(&conf->tree, "delivery.mode"), conf, err, errlen,
                         "%s must be \"at-least-once\" or \"exactly-once\"%s", "delivery.mode", "");
        goto fail;
    }
    conf->log_level = xmcd_log_level_from_name(level);
    if (conf->log_level < 0) {
        xmcd_config_fail(config_lookup(&conf->tree, "log.level"), conf, err, errlen,
                         "%s must be error, warn, info or debug%s", "log.level", "");
        goto fail;
    }
    if (!strcmp(conf->topic_in, conf->topic_out) || !strcmp(conf->topic_in, conf->topic_dlq) ||
        !strcmp(conf->topic_out, conf->topic_dlq)) {
        xmcd_config_fail(config_lookup(&conf->tree, "topics"), conf, err, errlen,
                         "%s in, out and dlq must be three different topics%s", "topics:", "");
        goto fail;
    }
    rd_kafka_conf_t *kconf = rd_kafka_conf_new(); /* check the passthrough keys now, with their file:line */
    rc = xmcd_config_kafka_apply(conf->kafka, kconf, err, errlen);
    rc = rc ? rc : xmcd_config_kafka_apply(conf->kafka_consumer, kconf, err, errlen);
    rc = rc ? rc : xmcd_config_kafka_apply(conf->kafka_producer, kconf, err, errlen);
    rd_kafka_conf_destroy(kconf);
    if (rc) goto fail;
    conf->plugin_cfg = config_lookup(&conf->tree, "plugin.config");
    if (conf->plugin_cfg && !config_setting_is_group(conf->plugin_cfg)) {
        xmcd_config_fail(conf->plugin_cfg, conf, err, errlen, "%s must be a group { ... }%s", "plugin.config", "");
        goto fail;
    }
    return conf;
fail:
    xmcd_config_free(conf);
    return NULL;
}

void xmcd_config_free(xmcd_config *conf)
{
    if (!conf) return;
    config_destroy(&conf->tree);
    free(conf);
}

#define XMCD_LIVE_INT(field, key)                                                                            \
    do {                                                                                                     \
        if (dst->field != src->field) {                                                                      \
            xmcd_log(XMCD_LOG_INFO, "config_change", "key=%s old=%d new=%d", key, dst->field, src->field);   \
            dst->field = src->field;                                                                         \
        }                                                                                                    \
    } while (0)

static void xmcd_config_restart_only(const char *key, const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
        xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s running=%s file=%s", key, xmcd_log_q(a ? a : ""),
                 xmcd_log_q(b ? b : ""));
}

/* 1 when two "key=value" lists (either may be NULL) hold different strings. */
static int xmcd_config_kv_differ(const config_setting_t *a, const config_setting_t *b)
{
    int na = a ? config_setting_length(a) : 0, nb = b ? config_setting_length(b) : 0;
    if (na != nb) return 1;
    for (int i = 0; i < na; i++)
        if (strcmp(config_setting_get_string_elem(a, i), config_setting_get_string_elem(b, i))) return 1;
    return 0;
}

void xmcd_config_apply_live(xmcd_config *dst, const xmcd_config *src)
{
    XMCD_LIVE_INT(batch_max_records, "batch.max_records");
    XMCD_LIVE_INT(batch_max_wait_ms, "batch.max_wait_ms");
    XMCD_LIVE_INT(commit_interval_ms, "delivery.commit_interval_ms");
    XMCD_LIVE_INT(max_inflight, "delivery.max_inflight");
    XMCD_LIVE_INT(drain_deadline_ms, "delivery.drain_deadline_ms");
    XMCD_LIVE_INT(reload_poll_ms, "reload.poll_ms");
    XMCD_LIVE_INT(stats_interval_ms, "stats.interval_ms");
    XMCD_LIVE_INT(log_level, "log.level");
    xmcd_log_set_level(dst->log_level);
    xmcd_config_restart_only("brokers", dst->brokers, src->brokers);
    xmcd_config_restart_only("group_id", dst->group_id, src->group_id);
    xmcd_config_restart_only("topics.in", dst->topic_in, src->topic_in);
    xmcd_config_restart_only("topics.out", dst->topic_out, src->topic_out);
    xmcd_config_restart_only("topics.dlq", dst->topic_dlq, src->topic_dlq);
    xmcd_config_restart_only("plugin.path", dst->plugin_path, src->plugin_path);
    xmcd_config_restart_only("plugin.config.model_repo", dst->model_repo, src->model_repo);
    if (dst->mode != src->mode) xmcd_config_restart_only("delivery.mode", "changed", "");
    if (dst->http_port != src->http_port) xmcd_config_restart_only("stats.http_port", "changed", "");
    /* the other restart-only keys: a change is named rather than silently ignored */
    xmcd_config_restart_only("delivery.transactional_id", dst->transactional_id, src->transactional_id);
    xmcd_config_restart_only("stats.http_addr", dst->http_addr, src->http_addr);
    if (dst->message_timeout_ms != src->message_timeout_ms)
        xmcd_config_restart_only("delivery.message_timeout_ms", "changed", "");
    if (dst->kafka_log_level != src->kafka_log_level) xmcd_config_restart_only("log.kafka_level", "changed", "");
    if (xmcd_config_kv_differ(dst->kafka, src->kafka)) xmcd_config_restart_only("kafka", "changed", "");
    if (xmcd_config_kv_differ(dst->kafka_consumer, src->kafka_consumer))
        xmcd_config_restart_only("kafka_consumer", "changed", "");
    if (xmcd_config_kv_differ(dst->kafka_producer, src->kafka_producer))
        xmcd_config_restart_only("kafka_producer", "changed", "");
}

int xmcd_config_kafka_apply(const config_setting_t *list, rd_kafka_conf_t *kconf, char *err, size_t errlen)
{
    if (!list) return 0;
    for (int i = 0; i < config_setting_length(list); i++) {
        const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        const char *kv = config_setting_get_string(e);
        char key[256];
        const char *eq = strchr(kv, '=');
        size_t kl = (size_t)(eq - kv);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, kv, kl);
        key[kl] = 0;
        char kerr[256];
        if (rd_kafka_conf_set(kconf, key, eq + 1, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            const char *file = config_setting_source_file(e);
            snprintf(err, errlen, "%s:%d: %s", file ? file : "?", (int)config_setting_source_line(e), kerr);
            return -1;
        }
    }
    return 0;
}
