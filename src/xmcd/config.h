/* config.h: xmcd's configuration: a libconfig file read into typed fields, validated with file:line errors.
 *
 * xmcd_config_load() parses and validates a whole file or fails with "file:line: reason" in err and nothing
 * allocated, which is what both start-up (exit 2) and SIGHUP (refuse, keep running) need. A loaded config
 * owns its libconfig tree; string fields point into it and live until xmcd_config_free(). The plugin's
 * config group is handed to the plugin's create() as is.
 *
 * Every key xmcd reads is one row of one table (xmcd_config_keys(): name, type, default, bounds, live or
 * restart-only, a line of doc). The loader, the SIGHUP check, `xmcd --config-keys` and the key list in
 * docs/xmcd.md are all derived from it, so a key is added or changed in one place. */
#ifndef XMCD_CONFIG_H
#define XMCD_CONFIG_H

#include <libconfig.h>
#include <stddef.h>
#include <stdio.h>

typedef enum xmcd_mode {
    XMCD_MODE_AT_LEAST_ONCE = 0,
    XMCD_MODE_EXACTLY_ONCE = 1
} xmcd_mode;

typedef struct xmcd_config {
    config_t tree;
    char path[1024];

    /* one field per key of the table in config.c, which says which are live and what they mean */
    const char *brokers;
    const char *group_id;
    const char *topic_in, *topic_out, *topic_dlq;

    int batch_max_records;
    int batch_max_wait_ms;

    int mode; /* xmcd_mode */
    int commit_interval_ms;
    int max_inflight;
    int max_inflight_mb;
    int drain_deadline_ms;
    int message_timeout_ms;
    const char *transactional_id;
    int fatal_restarts;

    const char *plugin_path;
    const config_setting_t *plugin_cfg; /* plugin.config, may be NULL; not a key of the table */

    int reload_poll_ms;
    int stats_interval_ms;
    int http_port;
    const char *http_addr;
    int log_level;       /* xmcd_log_level */
    int kafka_log_level; /* librdkafka's log_level (syslog levels) */

    const config_setting_t *kafka, *kafka_consumer, *kafka_producer; /* "key=value" string arrays */

    int embedded_brokers, embedded_partitions, embedded_dlq_partitions;
} xmcd_config;

typedef enum xmcd_key_type {
    XMCD_KEY_INT,    /* an integer within lo..hi, into an int field */
    XMCD_KEY_STRING, /* a string, into a const char * field pointing into the config's tree */
    XMCD_KEY_CHOICE, /* one of a few strings, stored as its value in an int field */
    XMCD_KEY_LIST    /* a list of "key=value" strings (librdkafka properties), kept as the setting */
} xmcd_key_type;

typedef struct xmcd_key_choice {
    const char *name;
    int value;
} xmcd_key_choice;

/* One config key. Only integer and choice keys can be live: a string points into its own file's tree. */
typedef struct xmcd_config_key {
    const char *name;     /* dotted path, as libconfig's config_lookup() takes it */
    xmcd_key_type type;
    int live;             /* 1: SIGHUP applies a change; 0: a change is logged as config_restart_needed */
    int required;         /* STRING: missing or empty is an error */
    int def, lo, hi;      /* INT: default and bounds */
    const char *def_str;  /* STRING: default (may be NULL); CHOICE: the default's name */
    const xmcd_key_choice *choices; /* CHOICE: the names, ended by {NULL, 0} */
    const char *allowed;  /* CHOICE: the names as the error message words them */
    size_t off;           /* the field's offset in xmcd_config */
    const char *doc;      /* one line; what 0 means where it means something */
} xmcd_config_key;

/* The key table, in the order keys are checked (the first bad key is the one reported). */
const xmcd_config_key *xmcd_config_keys(size_t *count);

/* Writes the key table as a Markdown table (the block docs/xmcd.md embeds; `xmcd --config-keys`). */
void xmcd_config_keys_write(FILE *f);

/* Loads and validates path. Returns a new config, or NULL with "file:line: reason" in err. */
xmcd_config *xmcd_config_load(const char *path, char *err, size_t errlen);
void xmcd_config_free(xmcd_config *conf);

/* Copies the live keys that differ from src into dst, logging each (config_change); logs a warning
 * (config_restart_needed) for every restart-only key that differs and leaves it as it is. */
void xmcd_config_apply_live(xmcd_config *dst, const xmcd_config *src);

/* Applies a "key=value" string array to a librdkafka conf (kind: "kafka", ...). Returns 0 or -1 with err. */
struct rd_kafka_conf_s;
/* 0 when value (key's value in tree, for its line) is a dotted IPv4 address, else -1 with "file:line: ..." in
 * err: the HTTP endpoint binds an IPv4 address, and a name such as "localhost" is refused at load, not at start. */
int xmcd_config_ipv4(const config_t *tree, const char *key, const char *value, char *err, size_t errlen);
int xmcd_config_kafka_apply(const config_setting_t *list, struct rd_kafka_conf_s *kconf, char *err,
                            size_t errlen);

/* A librdkafka conf for one of xmcd's clients, in the order that lets the file override xmcd: brokers,
 * client_id and log level from conf, then the client's own defaults (key, value pairs ended by a NULL key),
 * then the file's `kafka` list and the client's own list (role_list, may be NULL). Returns a new conf, or NULL
 * with err and nothing allocated. */
struct rd_kafka_conf_s *xmcd_config_kafka_new(const xmcd_config *conf, const char *client_id,
                                              const char *const *defaults, const config_setting_t *role_list,
                                              char *err, size_t errlen);

#endif
