/* retrain_config.c: load and validate retrain.conf into an xmcr_config; see retrain_config.h.
 *
 * The key table below is walked in order: a present key of the wrong type or out of range is an error naming
 * its file:line, a missing key takes its default. The librdkafka lists are checked by librdkafka itself with
 * xmcd's helper (xmcd_config_kafka_apply), so a bad property is refused at load, with its line. */
#include "retrain_config.h"
#include "xmc/train.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <libgen.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../xmcd/config.h"
#include "../xmcd/log.h"

/* XMCR_FIELD fails to compile when the field is not of the type the row stores */
#define XMCR_FIELD(field, type) (offsetof(xmcr_config, field) + 0 * sizeof((type *){&((xmcr_config *)0)->field}))
#define XMCR_INT(key, field, d, l, h, is_live, text)                                                           \
    {.name = key, .type = XMCR_KEY_INT, .live = is_live, .def = d, .lo = l, .hi = h,                          \
     .off = XMCR_FIELD(field, int), .doc = text}
#define XMCR_NUM(key, field, d, l, h, is_live, text)                                                           \
    {.name = key, .type = XMCR_KEY_NUMBER, .live = is_live, .def = d, .lo = l, .hi = h,                       \
     .off = XMCR_FIELD(field, double), .doc = text}
#define XMCR_STR(key, field, d, is_required, text)                                                             \
    {.name = key, .type = XMCR_KEY_STRING, .required = is_required, .def_str = d,                              \
     .off = XMCR_FIELD(field, const char *), .doc = text}
#define XMCR_CHOICE(key, field, d, list, is_live, text)                                                        \
    {.name = key, .type = XMCR_KEY_CHOICE, .live = is_live, .def_str = d, .choices = list,                    \
     .off = XMCR_FIELD(field, int), .doc = text}
#define XMCR_LIST(key, field, text)                                                                            \
    {.name = key, .type = XMCR_KEY_LIST, .off = XMCR_FIELD(field, const config_setting_t *), .doc = text}

static const xmcr_key_choice xmcr_log_levels[] = {
    {"error", XMCD_LOG_ERROR}, {"warn", XMCD_LOG_WARN}, {"info", XMCD_LOG_INFO}, {"debug", XMCD_LOG_DEBUG}, {NULL, 0}};

static const xmcr_config_key xmcr_keys[] = {
    XMCR_STR("brokers", brokers, "", 0, "Kafka bootstrap servers (host:port,...); --bootstrap-file overrides it"),
    XMCR_STR("group_id", group_id, "xmc-retrain", 0,
             "the trainer's own consumer group (its commits show its lag; the window's offsets are the truth)"),
    XMCR_STR("topic", topic, NULL, 1, "curated topic: xmc.v1.Product records whose known_labels are the truth"),
    XMCR_STR("window.dir", window_dir, NULL, 1,
             "the training window's directory: its log (window.log), its lock, the trainings' work files (work/)"),
    XMCR_STR("window.seed_tsv", seed_tsv, NULL, 0,
             "labels<TAB>text file loaded into a new (or rebuilt) window before the topic (ids seed:<line>)"),
    XMCR_INT("window.max_records", window_max_records, 1000000, 1, 100000000, 0,
             "records kept at most; the least recently put go first"),
    XMCR_INT("window.max_age_s", window_max_age_s, 0, 0, 2000000000, 0,
             "records older than this (record time) are dropped; 0: no age bound"),
    XMCR_INT("window.sync_ms", window_sync_ms, 200, 1, 60000, 1,
             "how often consumed records are fsynced into the window and their offsets committed"),
    XMCR_INT("window.compact_mb", window_compact_mb, 64, 1, 1000000, 0,
             "compact the log when it exceeds this and twice the live records' size"),
    XMCR_STR("model.repo", repo, NULL, 1, "model repository the versions are trained into (xmcd's model_repo)"),
    XMCR_INT("model.keep_versions", keep_versions, 0, 0, 1000000, 1,
             "after publishing, keep the newest N versions (never CURRENT's nor one a live xmcd serves); 0: keep all"),
    XMCR_INT("retrain.interval_s", interval_s, 3600, 0, 100000000, 1,
             "train at least this often when the window changed since the last training; 0: no timer"),
    XMCR_INT("retrain.min_changes", min_changes, 1000, 0, 100000000, 1,
             "train once this many records were new, changed or removed; 0: no count trigger"),
    XMCR_INT("retrain.min_records", min_records, 20, 2, 100000000, 1, "no training on a window smaller than this"),
    XMCR_INT("retrain.threads", threads, 1, 1, 64, 1, "training threads (keep below the cores xmcd needs)"),
    XMCR_INT("retrain.nice", nice, 10, 0, 19, 1, "the training process's nice value (xmcd keeps the CPU first)"),
    XMCR_INT("retrain.warm", warm, 0, 0, 1, 1,
             "1: start from the serving version (its tree for known labels, its weights; primal solver)"),
    XMCR_INT("retrain.rebuild_every", rebuild_every, 10, 0, 1000000, 1,
             "with retrain.warm: every Nth training (the first included) is a full one; 0: never"),
    XMCR_INT("train.nr_splits", nr_splits, XMC_TRAIN_DEFAULT_NR_SPLITS, 2, 65536, 1, "children per tree node (xmc train --nr-splits)"),
    XMCR_INT("train.max_leaf_size", max_leaf_size, XMC_TRAIN_DEFAULT_MAX_LEAF_SIZE, 1, 1000000000, 1,
             "labels per leaf cluster at most (xmc train --max-leaf-size)"),
    XMCR_INT("train.seed", seed, 0, 0, 2147483647, 1, "seed of the tree (xmc train --seed)"),
    XMCR_NUM("train.threshold", threshold, XMC_TRAIN_DEFAULT_THRESHOLD, 0, 1e9, 1, "drop ranker weights with |w| below (xmc train --threshold)"),
    XMCR_INT("gate.heldout_pct", heldout_pct, 10, 1, 50, 1,
             "percent of the window held out (by a hash of the product id) to compare the versions on"),
    XMCR_NUM("gate.margin", margin, 0.02, 0, 1, 1,
             "publish only if P@1, P@5 and R@10 are each at most this much below the serving version's"),
    XMCR_INT("test.shuffle_labels", test_shuffle_labels, 0, 0, 1, 1,
             "TESTS ONLY: train on label sets shuffled among the records (a worse model, for the gate's test)"),
    XMCR_INT("test.publish_pause_ms", test_publish_pause_ms, 0, 0, 60000, 1,
             "TESTS ONLY: the training child waits this long after moving CURRENT, before its result (a stop then)"),
    XMCR_INT("stats.interval_ms", stats_interval_ms, 10000, 0, 3600000, 1, "stats line period; 0: none"),
    XMCR_INT("stats.http_port", http_port, 0, 0, 65535, 0, "port of GET /metrics and /healthz; 0: no HTTP"),
    XMCR_STR("stats.http_addr", http_addr, "127.0.0.1", 0, "address the HTTP endpoint binds to (IPv4)"),
    XMCR_CHOICE("log.level", log_level, "info", xmcr_log_levels, 1, "\"error\", \"warn\", \"info\" or \"debug\""),
    XMCR_INT("log.kafka_level", kafka_log_level, 4, 0, 7, 0, "librdkafka's log_level (syslog levels)"),
    XMCR_LIST("kafka", kafka, "librdkafka properties for the consumer (\"key=value\" strings), over xmc retrain's defaults"),
    XMCR_LIST("kafka_consumer", kafka_consumer, "more properties, applied after kafka"),
};

#define XMCR_NKEYS (sizeof xmcr_keys / sizeof xmcr_keys[0])

const xmcr_config_key *xmcr_config_keys(size_t *count)
{
    *count = XMCR_NKEYS;
    return xmcr_keys;
}

#define XMCR_AT(conf, key, type) ((type *)((char *)(conf) + (key)->off))

static int fail(const config_setting_t *s, const xmcr_config *conf, char *err, size_t errlen, const char *what,
                const char *key)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(err, errlen, "%s:%d: %s %s", file ? file : conf->path, s ? (int)config_setting_source_line(s) : 0, key,
             what);
    return -1;
}

static int key_load(xmcr_config *conf, const xmcr_config_key *key, char *err, size_t errlen)
{
    const config_setting_t *s = config_lookup(&conf->tree, key->name);
    if (!s) {
        if (key->required) return fail(NULL, conf, err, errlen, "is required", key->name);
        switch (key->type) {
        case XMCR_KEY_INT: *XMCR_AT(conf, key, int) = (int)key->def; break;
        case XMCR_KEY_NUMBER: *XMCR_AT(conf, key, double) = key->def; break;
        case XMCR_KEY_STRING: *XMCR_AT(conf, key, const char *) = key->def_str; break;
        case XMCR_KEY_LIST: *XMCR_AT(conf, key, const config_setting_t *) = NULL; break;
        case XMCR_KEY_CHOICE:
            for (const xmcr_key_choice *c = key->choices; c->name; c++)
                if (!strcmp(c->name, key->def_str)) *XMCR_AT(conf, key, int) = c->value;
            break;
        }
        return 0;
    }
    int t = config_setting_type(s);
    switch (key->type) {
    case XMCR_KEY_INT: {
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) return fail(s, conf, err, errlen, "must be an integer", key->name);
        long long v = config_setting_get_int64(s);
        if (v < key->lo || v > key->hi) {
            char what[96];
            snprintf(what, sizeof what, "must be within %.0f..%.0f", key->lo, key->hi);
            return fail(s, conf, err, errlen, what, key->name);
        }
        *XMCR_AT(conf, key, int) = (int)v;
        return 0;
    }
    case XMCR_KEY_NUMBER: {
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64 && t != CONFIG_TYPE_FLOAT)
            return fail(s, conf, err, errlen, "must be a number", key->name);
        double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : (double)config_setting_get_int64(s);
        if (!(v >= key->lo && v <= key->hi)) {
            char what[96];
            snprintf(what, sizeof what, "must be within %g..%g", key->lo, key->hi);
            return fail(s, conf, err, errlen, what, key->name);
        }
        *XMCR_AT(conf, key, double) = v;
        return 0;
    }
    case XMCR_KEY_STRING:
    case XMCR_KEY_CHOICE: {
        const char *v = config_setting_get_string(s);
        if (!v) return fail(s, conf, err, errlen, "must be a string", key->name);
        if (key->required && !*v) return fail(s, conf, err, errlen, "must not be empty", key->name);
        if (key->type == XMCR_KEY_STRING) {
            *XMCR_AT(conf, key, const char *) = v;
            return 0;
        }
        for (const xmcr_key_choice *c = key->choices; c->name; c++)
            if (!strcmp(c->name, v)) {
                *XMCR_AT(conf, key, int) = c->value;
                return 0;
            }
        return fail(s, conf, err, errlen, "has an unknown value", key->name);
    }
    case XMCR_KEY_LIST:
        if (!config_setting_is_array(s) && !config_setting_is_list(s))
            return fail(s, conf, err, errlen, "must be a list of \"key=value\" strings", key->name);
        for (int i = 0; i < config_setting_length(s); i++) {
            const char *kv = config_setting_get_string_elem(s, i);
            if (!kv || !strchr(kv, '='))
                return fail(s, conf, err, errlen, "must be a list of \"key=value\" strings", key->name);
        }
        *XMCR_AT(conf, key, const config_setting_t *) = s;
        return 0;
    }
    return fail(s, conf, err, errlen, "has an unknown key type", key->name);
}

xmcr_config *xmcr_config_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
        snprintf(err, errlen, "%s:0: not a readable regular file of at most 1 MiB", path);
        return NULL;
    }
    xmcr_config *conf = calloc(1, sizeof *conf);
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
        goto fail;
    }
    for (size_t i = 0; i < XMCR_NKEYS; i++)
        if (key_load(conf, &xmcr_keys[i], err, errlen)) goto fail;
    if (xmcd_config_ipv4(&conf->tree, "stats.http_addr", conf->http_addr, err, errlen)) goto fail;
    rd_kafka_conf_t *kconf = rd_kafka_conf_new(); /* the passthrough properties, checked now with their lines */
    int rc = xmcd_config_kafka_apply(conf->kafka, kconf, err, errlen);
    rc = rc ? rc : xmcd_config_kafka_apply(conf->kafka_consumer, kconf, err, errlen);
    rd_kafka_conf_destroy(kconf);
    if (rc) goto fail;
    return conf;
fail:
    xmcr_config_free(conf);
    return NULL;
}

void xmcr_config_free(xmcr_config *conf)
{
    if (!conf) return;
    config_destroy(&conf->tree);
    free(conf);
}

/* A scalar key's value as the file would write it (a choice by its name), for the SIGHUP log lines. */
static const char *key_text(const xmcr_config_key *key, xmcr_config *conf, char *buf, size_t size)
{
    const char *s = "";
    switch (key->type) {
    case XMCR_KEY_INT: snprintf(buf, size, "%d", *XMCR_AT(conf, key, int)); return buf;
    case XMCR_KEY_NUMBER: snprintf(buf, size, "%g", *XMCR_AT(conf, key, double)); return buf;
    case XMCR_KEY_CHOICE:
        for (const xmcr_key_choice *c = key->choices; c->name; c++)
            if (c->value == *XMCR_AT(conf, key, int)) s = c->name;
        break;
    case XMCR_KEY_STRING: s = *XMCR_AT(conf, key, const char *) ? *XMCR_AT(conf, key, const char *) : ""; break;
    case XMCR_KEY_LIST: break;
    }
    snprintf(buf, size, "%s", s);
    return buf;
}

void xmcr_config_apply_live(xmcr_config *dst, const xmcr_config *src)
{
    xmcr_config *from = (xmcr_config *)src; /* read only */
    /* the reload's own lines at the more verbose of the two levels: a raised log.level (warn -> info) is
     * logged too, not only a lowered one */
    if (from->log_level > dst->log_level) xmcd_log_set_level(from->log_level);
    for (size_t i = 0; i < XMCR_NKEYS; i++) {
        const xmcr_config_key *key = &xmcr_keys[i];
        int differ = 0;
        switch (key->type) {
        case XMCR_KEY_INT:
        case XMCR_KEY_CHOICE: differ = *XMCR_AT(dst, key, int) != *XMCR_AT(from, key, int); break;
        case XMCR_KEY_NUMBER: differ = *XMCR_AT(dst, key, double) != *XMCR_AT(from, key, double); break;
        case XMCR_KEY_STRING: {
            const char *a = *XMCR_AT(dst, key, const char *), *b = *XMCR_AT(from, key, const char *);
            differ = (a == NULL) != (b == NULL) || (a && strcmp(a, b));
            break;
        }
        case XMCR_KEY_LIST: {
            const config_setting_t *a = *XMCR_AT(dst, key, const config_setting_t *),
                                   *b = *XMCR_AT(from, key, const config_setting_t *);
            int na = a ? config_setting_length(a) : 0, nb = b ? config_setting_length(b) : 0;
            differ = na != nb;
            for (int j = 0; j < na && !differ; j++)
                differ = strcmp(config_setting_get_string_elem(a, j), config_setting_get_string_elem(b, j)) != 0;
            break;
        }
        }
        if (!differ) continue;
        char old[256], now[256];
        if (key->type == XMCR_KEY_LIST) { /* no values: librdkafka properties may hold credentials */
            xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s", key->name);
        } else if (!key->live) {
            xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s running=%s file=%s", key->name,
                     xmcd_log_q(key_text(key, dst, old, sizeof old)), xmcd_log_q(key_text(key, from, now, sizeof now)));
        } else {
            xmcd_log(XMCD_LOG_INFO, "config_change", "key=%s old=%s new=%s", key->name,
                     xmcd_log_q(key_text(key, dst, old, sizeof old)), xmcd_log_q(key_text(key, from, now, sizeof now)));
            if (key->type == XMCR_KEY_NUMBER) *XMCR_AT(dst, key, double) = *XMCR_AT(from, key, double);
            else *XMCR_AT(dst, key, int) = *XMCR_AT(from, key, int);
        }
    }
    xmcd_log_set_level(dst->log_level);
}

void xmcr_config_keys_write(FILE *f)
{
    static const char *const types[] = {"integer", "number", "string", "choice", "list"};
    fprintf(f, "| key | type | default | allowed | on SIGHUP | meaning |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < XMCR_NKEYS; i++) {
        const xmcr_config_key *key = &xmcr_keys[i];
        char def[64] = "", allowed[128] = "";
        switch (key->type) {
        case XMCR_KEY_INT:
            snprintf(def, sizeof def, "%.0f", key->def);
            snprintf(allowed, sizeof allowed, "%.0f..%.0f", key->lo, key->hi);
            break;
        case XMCR_KEY_NUMBER:
            snprintf(def, sizeof def, "%g", key->def);
            snprintf(allowed, sizeof allowed, "%g..%g", key->lo, key->hi);
            break;
        case XMCR_KEY_STRING:
            snprintf(def, sizeof def, "%s", key->required ? "required" : key->def_str ? "" : "none");
            if (!key->required && key->def_str) snprintf(def, sizeof def, "`\"%s\"`", key->def_str);
            snprintf(allowed, sizeof allowed, "%s", key->required ? "non-empty string" : "string");
            break;
        case XMCR_KEY_CHOICE: {
            size_t o = 0;
            snprintf(def, sizeof def, "`%s`", key->def_str);
            for (const xmcr_key_choice *c = key->choices; c->name && o < sizeof allowed; c++)
                o += (size_t)snprintf(allowed + o, sizeof allowed - o, "%s`%s`", o ? ", " : "", c->name);
            break;
        }
        case XMCR_KEY_LIST:
            snprintf(def, sizeof def, "`[ ]`");
            snprintf(allowed, sizeof allowed, "`[ \"key=value\", ... ]`");
            break;
        }
        fprintf(f, "| `%s` | %s | %s | %s | %s | %s |\n", key->name, types[key->type], def, allowed,
                key->live ? "live" : "restart", key->doc);
    }
}

rd_kafka_conf_t *xmcr_config_kafka_new(const xmcr_config *conf, const char *const *defaults, char *err, size_t errlen)
{
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    char level[16];
    snprintf(level, sizeof level, "%d", conf->kafka_log_level);
    const char *const common[] = {"bootstrap.servers", conf->brokers && *conf->brokers ? conf->brokers : NULL,
                                  "client.id", "xmc-retrain", "log_level", level};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i += 2)
        if (common[i + 1] && rd_kafka_conf_set(kconf, common[i], common[i + 1], err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (rd_kafka_conf_set(kconf, defaults[i], defaults[i + 1], err, errlen) != RD_KAFKA_CONF_OK) goto fail;
    if (xmcd_config_kafka_apply(conf->kafka, kconf, err, errlen) != 0) goto fail;
    if (xmcd_config_kafka_apply(conf->kafka_consumer, kconf, err, errlen) != 0) goto fail;
    return kconf;
fail:
    rd_kafka_conf_destroy(kconf);
    return NULL;
}
