/* config.h: xmcd's configuration: a libconfig file read into typed fields, validated with file:line errors.
 *
 * xmcd_config_load() parses and validates a whole file or fails with "file:line: reason" in err and nothing
 * allocated, which is what both start-up (exit 2) and SIGHUP (refuse, keep running) need. A loaded config
 * owns its libconfig tree; string fields point into it and live until xmcd_config_free(). The plugin's
 * config group is handed to the plugin's create() as is. Keys are documented in conf/xmcd.conf. */
#ifndef XMCD_CONFIG_H
#define XMCD_CONFIG_H

#include <libconfig.h>
#include <stddef.h>

typedef enum xmcd_mode {
    XMCD_MODE_AT_LEAST_ONCE = 0,
    XMCD_MODE_EXACTLY_ONCE = 1
} xmcd_mode;

typedef struct xmcd_config {
    config_t tree;
    char path[1024];

    const char *brokers;
    const char *group_id;
    const char *topic_in, *topic_out, *topic_dlq;

    int batch_max_records; /* live */
    int batch_max_wait_ms; /* live */

    int mode;                  /* xmcd_mode */
    int commit_interval_ms;    /* live */
    int max_inflight;          /* live: records consumed but not yet acknowledged before pausing */
    int drain_deadline_ms;     /* live */
    int message_timeout_ms;    /* producer's message.timeout.ms: a failed delivery is retried after this */
    const char *transactional_id;

    const char *plugin_path;
    const config_setting_t *plugin_cfg; /* plugin.config, may be NULL */
    const char *model_repo;             /* plugin.config.model_repo, may be NULL: nothing to poll */

    int reload_poll_ms;    /* live; 0 = do not poll (SIGHUP still checks) */
    int stats_interval_ms; /* live; 0 = no periodic line */
    int http_port;         /* 0 = no HTTP endpoint */
    const char *http_addr;
    int log_level;    /* live */
    int kafka_log_level; /* librdkafka's log_level (syslog levels) */

    const config_setting_t *kafka, *kafka_consumer, *kafka_producer; /* "key=value" string arrays */

    int embedded_brokers, embedded_partitions, embedded_dlq_partitions;
} xmcd_config;

/* Loads and validates path. Returns a new config, or NULL with "file:line: reason" in err. */
xmcd_config *xmcd_config_load(const char *path, char *err, size_t errlen);
void xmcd_config_free(xmcd_config *conf);

/* Copies the keys that can change live from src into dst and logs each change; logs a warning for every
 * restart-only key that differs. */
void xmcd_config_apply_live(xmcd_config *dst, const xmcd_config *src);

/* Applies a "key=value" string array to a librdkafka conf (kind: "kafka", ...). Returns 0 or -1 with err. */
struct rd_kafka_conf_s;
int xmcd_config_kafka_apply(const config_setting_t *list, struct rd_kafka_conf_s *kconf, char *err,
                            size_t errlen);

#endif
