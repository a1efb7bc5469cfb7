/* retrain_config.h: `xmc retrain`'s configuration: a libconfig file read through one key table, as xmcd's is.
 *
 * xmcr_config_load() parses and validates a whole file or fails with "file:line: reason" and nothing allocated
 * (start-up exits 2, SIGHUP keeps the running config). Every key is one row of the table in retrain_config.c
 * (name, type, default, bounds, live or restart-only, a line of doc): the loader, SIGHUP's apply, `xmc retrain
 * --config-keys`, conf/retrain.conf's comments and docs/retrain.md's list all follow it. String fields point
 * into the loaded tree and live until xmcr_config_free(). */
#ifndef XMCR_RETRAIN_CONFIG_H
#define XMCR_RETRAIN_CONFIG_H

#include <libconfig.h>
#include <stddef.h>
#include <stdio.h>

struct rd_kafka_conf_s;

typedef struct xmcr_config {
    config_t tree;
    char path[1024];

    const char *brokers, *group_id, *topic;
    const char *window_dir, *seed_tsv;
    int window_max_records, window_max_age_s, window_sync_ms, window_compact_mb;
    const char *repo;
    int keep_versions;
    int interval_s, min_changes, min_records, threads, nice, warm, rebuild_every;
    int nr_splits, max_leaf_size, seed;
    double threshold;
    int heldout_pct;
    double margin;
    int test_shuffle_labels, test_publish_pause_ms;
    int stats_interval_ms, http_port;
    const char *http_addr;
    int log_level, kafka_log_level;
    const config_setting_t *kafka, *kafka_consumer;
} xmcr_config;

typedef enum xmcr_key_type { XMCR_KEY_INT, XMCR_KEY_NUMBER, XMCR_KEY_STRING, XMCR_KEY_CHOICE, XMCR_KEY_LIST } xmcr_key_type;

typedef struct xmcr_key_choice {
    const char *name;
    int value;
} xmcr_key_choice;

typedef struct xmcr_config_key {
    const char *name;    /* dotted path for config_lookup() */
    xmcr_key_type type;
    int live;            /* 1: SIGHUP applies a change (integers, numbers and choices only) */
    int required;        /* STRING: missing or empty is an error */
    double def, lo, hi;  /* INT, NUMBER: default and bounds */
    const char *def_str; /* STRING: default (NULL: none); CHOICE: the default's name */
    const xmcr_key_choice *choices;
    size_t off;          /* the field's offset in xmcr_config */
    const char *doc;
} xmcr_config_key;

const xmcr_config_key *xmcr_config_keys(size_t *count);
/* The table as Markdown (`xmc retrain --config-keys`, docs/retrain.md). */
void xmcr_config_keys_write(FILE *f);

xmcr_config *xmcr_config_load(const char *path, char *err, size_t errlen);
void xmcr_config_free(xmcr_config *conf);
/* Copies the live keys that differ from src into dst, logging each (config_change); logs config_restart_needed
 * for every other key that differs. */
void xmcr_config_apply_live(xmcr_config *dst, const xmcr_config *src);

/* The consumer's librdkafka conf: brokers, client id, log level, then defaults (key, value pairs ended by NULL),
 * then the file's kafka and kafka_consumer lists. NULL with err on a refused property. */
struct rd_kafka_conf_s *xmcr_config_kafka_new(const xmcr_config *conf, const char *const *defaults, char *err,
                                              size_t errlen);

#endif
