/* config.c: load and validate xmcd.conf (libconfig) into an xmcd_config; see config.h.
 *
 * The file is checked to be a regular file of sane size before libconfig reads it (a huge file or a
 * directory is refused with a reason, not parsed). Then the key table below is walked in order: each key is
 * looked up with its type and range; a present key of the wrong type or out of range is an error naming the
 * key's own file:line, a missing key takes its default. A few rules tie keys together after that (exactly-once
 * needs a transactional id, three different topics, the librdkafka lists accepted by librdkafka). SIGHUP's
 * check and the listing walk the same table. Unknown keys are left alone so that new keys do not break old
 * daemons. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define XMCD_CONFIG_MAX_BYTES (1 << 20)

/* ==== the key table ======================================================================================
 * XMCD_FIELD is the field's offset, and fails to compile when the field is not of the type the row's kind
 * stores (the compound literal takes its address as that pointer type). */
#define XMCD_FIELD(field, type) (offsetof(xmcd_config, field) + 0 * sizeof((type *){&((xmcd_config *)0)->field}))
#define XMCD_INT(key, field, d, l, h, is_live, text)                                                         \
    {.name = key, .type = XMCD_KEY_INT, .live = is_live, .def = d, .lo = l, .hi = h,                        \
     .off = XMCD_FIELD(field, int), .doc = text}
#define XMCD_STR(key, field, d, is_required, text)                                                           \
    {.name = key, .type = XMCD_KEY_STRING, .required = is_required, .def_str = d,                            \
     .off = XMCD_FIELD(field, const char *), .doc = text}
#define XMCD_CHOICE(key, field, d, list, words, is_live, text)                                               \
    {.name = key, .type = XMCD_KEY_CHOICE, .live = is_live, .def_str = d, .choices = list, .allowed = words, \
     .off = XMCD_FIELD(field, int), .doc = text}
#define XMCD_LIST(key, field, text)                                                                          \
    {.name = key, .type = XMCD_KEY_LIST, .off = XMCD_FIELD(field, const config_setting_t *), .doc = text}

static const xmcd_key_choice xmcd_modes[] = {
    {"at-least-once", XMCD_MODE_AT_LEAST_ONCE}, {"exactly-once", XMCD_MODE_EXACTLY_ONCE}, {NULL, 0}};
static const xmcd_key_choice xmcd_log_levels[] = {
    {"error", XMCD_LOG_ERROR}, {"warn", XMCD_LOG_WARN}, {"info", XMCD_LOG_INFO}, {"debug", XMCD_LOG_DEBUG}, {NULL, 0}};

static const xmcd_config_key xmcd_keys[] = {
    XMCD_STR("brokers", brokers, "", 0,
             "Kafka bootstrap servers (host:port,...); with --embedded-kafka the mock's address is used"),
    XMCD_STR("group_id", group_id, "xmcd", 0, "consumer group; more xmcd processes with the same one share the work"),
    XMCD_STR("topics.in", topic_in, NULL, 1, "input topic: xmc.v1.Product records keyed by product id"),
    XMCD_STR("topics.out", topic_out, NULL, 1, "output topic: xmc.v1.LabeledProduct, same key as the input"),
    XMCD_STR("topics.dlq", topic_dlq, NULL, 1, "dead-letter topic: original key, value and headers plus xmc.error.*"),
    XMCD_INT("batch.max_records", batch_max_records, 256, 1, 100000, 1, "records per plugin call"),
    XMCD_INT("batch.max_wait_ms", batch_max_wait_ms, 20, 0, 60000, 1,
             "the longest a record waits for its batch to fill"),
    XMCD_CHOICE("delivery.mode", mode, "at-least-once", xmcd_modes, "\"at-least-once\" or \"exactly-once\"", 0,
                "exactly-once makes each batch one transaction and needs delivery.transactional_id"),
    XMCD_INT("delivery.commit_interval_ms", commit_interval_ms, 500, 10, 600000, 1,
             "how often the safe offsets are committed (async; at-least-once only)"),
    XMCD_INT("delivery.max_inflight", max_inflight, 20000, 1, 10000000, 1,
             "records consumed but not yet acknowledged at which consumption pauses (resumes at half)"),
    XMCD_INT("delivery.max_inflight_mb", max_inflight_mb, 256, 1, 1048576, 1,
             "MiB of those records (values and keys) at which consumption pauses too (resumes at half)"),
    XMCD_INT("delivery.drain_deadline_ms", drain_deadline_ms, 10000, 100, 3600000, 1,
             "how long SIGTERM/SIGINT and revocations wait for acknowledgements"),
    XMCD_INT("delivery.message_timeout_ms", message_timeout_ms, 30000, 1000, 3600000, 0,
             "the producer's message.timeout.ms: a delivery failing this long is produced again"),
    XMCD_INT("delivery.fatal_restarts", fatal_restarts, 5, 0, 1000, 1,
             "in-process restarts of the Kafka clients after a fatal client error (not fencing) within 10 min; 0: exit 1"),
    XMCD_STR("delivery.transactional_id", transactional_id, NULL, 0,
             "exactly-once only: the producer's transactional.id, unique per instance"),
    XMCD_STR("plugin.path", plugin_path, NULL, 1, "the stage plugin (.so); refused if its stage ABI differs"),
    XMCD_INT("reload.poll_ms", reload_poll_ms, 2000, 0, 3600000, 1,
             "how often the plugin's model repository's CURRENT is read (0: only on SIGHUP)"),
    XMCD_INT("stats.interval_ms", stats_interval_ms, 10000, 0, 3600000, 1,
             "period of the logfmt event=stats line (0: none)"),
    XMCD_INT("stats.http_port", http_port, 0, 0, 65535, 0, "port of the Prometheus /metrics endpoint (0: none)"),
    XMCD_STR("stats.http_addr", http_addr, "127.0.0.1", 0, "IPv4 address the /metrics endpoint listens on"),
    XMCD_CHOICE("log.level", log_level, "info", xmcd_log_levels, "error, warn, info or debug", 1,
                "the most verbose event level written"),
    XMCD_INT("log.kafka_level", kafka_log_level, 4, 0, 7, 0,
             "librdkafka's log_level (syslog levels), logged as event=kafka_log"),
    XMCD_LIST("kafka", kafka, "librdkafka properties for both clients, over xmcd's defaults"),
    XMCD_LIST("kafka_consumer", kafka_consumer, "librdkafka properties for the consumer, after kafka"),
    XMCD_LIST("kafka_producer", kafka_producer, "librdkafka properties for the producer, after kafka"),
    XMCD_INT("embedded.brokers", embedded_brokers, 3, 1, 16, 0, "brokers of the embedded Kafka (mock cluster)"),
    XMCD_INT("embedded.partitions", embedded_partitions, 4, 1, 256, 0,
             "partitions of the embedded in and out topics"),
    XMCD_INT("embedded.dlq_partitions", embedded_dlq_partitions, 1, 1, 256, 0,
             "partitions of the embedded dead-letter topic"),
};

#define XMCD_NKEYS (sizeof xmcd_keys / sizeof xmcd_keys[0])

const xmcd_config_key *xmcd_config_keys(size_t *count)
{
    *count = XMCD_NKEYS;
    return xmcd_keys;
}

static int *xmcd_key_int(const xmcd_config_key *key, xmcd_config *conf) { return (int *)((char *)conf + key->off); }
static const char **xmcd_key_str(const xmcd_config_key *key, xmcd_config *conf)
{
    return (const char **)((char *)conf + key->off);
}
static const config_setting_t **xmcd_key_list(const xmcd_config_key *key, xmcd_config *conf)
{
    return (const config_setting_t **)((char *)conf + key->off);
}

/* The choice named name, or NULL. */
static const xmcd_key_choice *xmcd_key_choice_named(const xmcd_config_key *key, const char *name)
{
    for (const xmcd_key_choice *c = key->choices; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

static const char *xmcd_key_choice_name(const xmcd_config_key *key, int value)
{
    for (const xmcd_key_choice *c = key->choices; c->name; c++)
        if (c->value == value) return c->name;
    return "?";
}

/* ==== loading ============================================================================================ */

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

static int xmcd_config_int(xmcd_config *conf, const xmcd_config_key *key, const config_setting_t *s, char *err,
                           size_t errlen)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return xmcd_config_fail(s, conf, err, errlen, "%s must be an integer%s", key->name, "");
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    if (v < key->lo || v > key->hi) {
        char range[96];
        snprintf(range, sizeof range, " (got %lld, allowed %d..%d)", v, key->lo, key->hi);
        return xmcd_config_fail(s, conf, err, errlen, "%s out of range%s", key->name, range);
    }
    *xmcd_key_int(key, conf) = (int)v;
    return 0;
}

/* A string key's value into *out (a choice's name too). */
static int xmcd_config_str(xmcd_config *conf, const xmcd_config_key *key, const config_setting_t *s,
                           const char **out, char *err, size_t errlen)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return xmcd_config_fail(s, conf, err, errlen, "%s must be a string%s", key->name, "");
    *out = config_setting_get_string(s);
    if (key->required && !**out)
        return xmcd_config_fail(s, conf, err, errlen, "%s must not be empty%s", key->name, "");
    return 0;
}

static int xmcd_config_kv_list(xmcd_config *conf, const xmcd_config_key *key, const config_setting_t *s,
                               char *err, size_t errlen)
{
    if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
        return xmcd_config_fail(s, conf, err, errlen, "%s must be a list of \"key=value\" strings%s", key->name,
                                "");
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (!v || !strchr(v, '=') || v[0] == '=')
            return xmcd_config_fail(e, conf, err, errlen, "%s: every element must be a \"key=value\" string%s",
                                    key->name, "");
    }
    *xmcd_key_list(key, conf) = s;
    return 0;
}

/* One key of the table: its value, or its default when absent. */
static int xmcd_config_key_load(xmcd_config *conf, const xmcd_config_key *key, char *err, size_t errlen)
{
    const config_setting_t *s = config_lookup(&conf->tree, key->name);
    const char *name = key->def_str;
    if (!s) {
        if (key->required)
            return xmcd_config_fail(NULL, conf, err, errlen, "missing required key %s%s", key->name, "");
        switch (key->type) {
        case XMCD_KEY_INT: *xmcd_key_int(key, conf) = key->def; break;
        case XMCD_KEY_STRING: *xmcd_key_str(key, conf) = key->def_str; break;
        case XMCD_KEY_CHOICE: *xmcd_key_int(key, conf) = xmcd_key_choice_named(key, key->def_str)->value; break;
        case XMCD_KEY_LIST: *xmcd_key_list(key, conf) = NULL; break;
        }
        return 0;
    }
    switch (key->type) {
    case XMCD_KEY_INT: return xmcd_config_int(conf, key, s, err, errlen);
    case XMCD_KEY_STRING: return xmcd_config_str(conf, key, s, xmcd_key_str(key, conf), err, errlen);
    case XMCD_KEY_LIST: return xmcd_config_kv_list(conf, key, s, err, errlen);
    case XMCD_KEY_CHOICE:
        if (xmcd_config_str(conf, key, s, &name, err, errlen)) return -1;
        const xmcd_key_choice *c = xmcd_key_choice_named(key, name);
        if (!c) return xmcd_config_fail(s, conf, err, errlen, "%s must be %s", key->name, key->allowed);
        *xmcd_key_int(key, conf) = c->value;
        return 0;
    }
    return xmcd_config_fail(s, conf, err, errlen, "%s has an unknown key type%s", key->name, "");
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
    for (size_t i = 0; i < XMCD_NKEYS; i++)
        if (xmcd_config_key_load(conf, &xmcd_keys[i], err, errlen)) goto fail;
    /* the rules that tie keys together */
    if (conf->mode == XMCD_MODE_EXACTLY_ONCE && (!conf->transactional_id || !*conf->transactional_id)) {
        xmcd_config_fail(config_lookup(&conf->tree, "delivery.mode"), conf, err, errlen,
                         "%s needs delivery.transactional_id%s", "delivery.mode \"exactly-once\"", "");
        goto fail;
    }
    if (!strcmp(conf->topic_in, conf->topic_out) || !strcmp(conf->topic_in, conf->topic_dlq) ||
        !strcmp(conf->topic_out, conf->topic_dlq)) {
        xmcd_config_fail(config_lookup(&conf->tree, "topics"), conf, err, errlen,
                         "%s in, out and dlq must be three different topics%s", "topics:", "");
        goto fail;
    }
    if (xmcd_config_ipv4(&conf->tree, "stats.http_addr", conf->http_addr, err, errlen)) goto fail;
    rd_kafka_conf_t *kconf = rd_kafka_conf_new(); /* check the passthrough keys now, with their file:line */
    int rc = xmcd_config_kafka_apply(conf->kafka, kconf, err, errlen);
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

/* ==== SIGHUP ============================================================================================= */

/* A key's value as text into buf; returns buf. */
static const char *xmcd_key_text(const xmcd_config_key *key, xmcd_config *conf, char *buf, size_t size)
{
    const char *s = "";
    switch (key->type) {
    case XMCD_KEY_INT: snprintf(buf, size, "%d", *xmcd_key_int(key, conf)); return buf;
    case XMCD_KEY_CHOICE: s = xmcd_key_choice_name(key, *xmcd_key_int(key, conf)); break;
    case XMCD_KEY_STRING: s = *xmcd_key_str(key, conf) ? *xmcd_key_str(key, conf) : ""; break;
    case XMCD_KEY_LIST: break;
    }
    snprintf(buf, size, "%s", s);
    return buf;
}

/* A setting's type, a libconfig list ( ) taken as the array [ ] it reads the same as. */
static int xmcd_setting_kind(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_LIST ? CONFIG_TYPE_ARRAY : t;
}

/* Whether two config settings differ in name, type, value or members, in order. Either may be NULL (absent), which
 * is the same as an empty list or group (`kafka = [ ];` changes nothing). */
static int xmcd_setting_differ(const config_setting_t *a, const config_setting_t *b)
{
    if (!a || !b) {
        const config_setting_t *c = a ? a : b;
        return c && !(config_setting_is_aggregate(c) && config_setting_length(c) == 0);
    }
    int type = xmcd_setting_kind(a);
    if (type != xmcd_setting_kind(b)) return 1;
    const char *na = config_setting_name(a), *nb = config_setting_name(b);
    if ((na == NULL) != (nb == NULL) || (na && strcmp(na, nb))) return 1;
    switch (type) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return config_setting_get_int64(a) != config_setting_get_int64(b);
    case CONFIG_TYPE_FLOAT: return config_setting_get_float(a) != config_setting_get_float(b);
    case CONFIG_TYPE_BOOL: return config_setting_get_bool(a) != config_setting_get_bool(b);
    case CONFIG_TYPE_STRING: return strcmp(config_setting_get_string(a), config_setting_get_string(b)) != 0;
    default: {
        int n = config_setting_length(a);
        if (n != config_setting_length(b)) return 1;
        for (int i = 0; i < n; i++)
            if (xmcd_setting_differ(config_setting_get_elem(a, (unsigned)i), config_setting_get_elem(b, (unsigned)i)))
                return 1;
        return 0;
    }
    }
}

void xmcd_config_apply_live(xmcd_config *dst, const xmcd_config *src)
{
    xmcd_config *from = (xmcd_config *)src; /* only read: the field accessors are shared with the loader */
    /* the reload's own lines at the more verbose of the two levels: a raised log.level (warn -> info) is
     * logged too, not only a lowered one */
    if (from->log_level > dst->log_level) xmcd_log_set_level(from->log_level);
    for (size_t i = 0; i < XMCD_NKEYS; i++) {
        const xmcd_config_key *key = &xmcd_keys[i];
        int differ = 0;
        switch (key->type) {
        case XMCD_KEY_INT:
        case XMCD_KEY_CHOICE: differ = *xmcd_key_int(key, dst) != *xmcd_key_int(key, from); break;
        case XMCD_KEY_STRING: {
            const char *a = *xmcd_key_str(key, dst), *b = *xmcd_key_str(key, from);
            differ = (a == NULL) != (b == NULL) || (a && strcmp(a, b));
            break;
        }
        case XMCD_KEY_LIST: differ = xmcd_setting_differ(*xmcd_key_list(key, dst), *xmcd_key_list(key, from)); break;
        }
        if (!differ) continue;
        char old[256], now[256];
        if (key->type == XMCD_KEY_LIST) /* no values: librdkafka properties may hold credentials */
            xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s", key->name);
        else if (!key->live)
            xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s running=%s file=%s", key->name,
                     xmcd_log_q(xmcd_key_text(key, dst, old, sizeof old)),
                     xmcd_log_q(xmcd_key_text(key, from, now, sizeof now)));
        else { /* the table allows live integers and choices only; a choice is logged by its name */
            xmcd_log(XMCD_LOG_INFO, "config_change", "key=%s old=%s new=%s", key->name,
                     xmcd_log_q(xmcd_key_text(key, dst, old, sizeof old)),
                     xmcd_log_q(xmcd_key_text(key, from, now, sizeof now)));
            *xmcd_key_int(key, dst) = *xmcd_key_int(key, from);
        }
    }
    /* the plugin's group is not in the table (xmcd knows none of its keys) and is read once, by create():
     * a change is named as a whole, without values (they are the plugin's to interpret) */
    if (xmcd_setting_differ(dst->plugin_cfg, src->plugin_cfg))
        xmcd_log(XMCD_LOG_WARN, "config_restart_needed", "key=%s", "plugin.config");
    xmcd_log_set_level(dst->log_level);
}

/* ==== listing ============================================================================================ */

void xmcd_config_keys_write(FILE *f)
{
    static const char *const types[] = {"integer", "string", "choice", "list"};
    fprintf(f, "| key | type | default | allowed | on SIGHUP | meaning |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < XMCD_NKEYS; i++) {
        const xmcd_config_key *key = &xmcd_keys[i];
        char def[64] = "", allowed[128] = "";
        switch (key->type) {
        case XMCD_KEY_INT:
            snprintf(def, sizeof def, "%d", key->def);
            snprintf(allowed, sizeof allowed, "%d..%d", key->lo, key->hi);
            break;
        case XMCD_KEY_STRING:
            if (key->required) snprintf(def, sizeof def, "required");
            else if (key->def_str) snprintf(def, sizeof def, "`\"%s\"`", key->def_str);
            else snprintf(def, sizeof def, "none");
            snprintf(allowed, sizeof allowed, "%s", key->required ? "non-empty string" : "string");
            break;
        case XMCD_KEY_CHOICE:
            snprintf(def, sizeof def, "`%s`", key->def_str);
            snprintf(allowed, sizeof allowed, "%s", key->allowed);
            break;
        case XMCD_KEY_LIST:
            snprintf(def, sizeof def, "`[ ]`");
            snprintf(allowed, sizeof allowed, "`[ \"key=value\", ... ]`");
            break;
        }
        fprintf(f, "| `%s` | %s | %s | %s | %s | %s |\n", key->name, types[key->type], def, allowed,
                key->live ? "live" : "restart", key->doc);
    }
}

/* ==== librdkafka ========================================================================================= */

/* librdkafka properties the daemons set themselves and a passthrough list may not: offsets are stored and
 * committed by the daemon only once their records are delivered (xmcd) or durable in the window (xmc retrain);
 * librdkafka's own commits would commit records that have neither, and the group has its own key. */
static const char *const xmcd_kafka_owned[][2] = {
    {"enable.auto.commit", "offsets are committed by the daemon, once their records are delivered or stored"},
    {"enable.auto.offset.store", "offsets are stored by the daemon, once their records are delivered or stored"},
    {"group.id", "set group_id instead"},
};

int xmcd_config_ipv4(const config_t *tree, const char *key, const char *value, char *err, size_t errlen)
{
    struct in_addr a;
    if (value && inet_pton(AF_INET, value, &a) == 1) return 0;
    const config_setting_t *s = config_lookup(tree, key);
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(err, errlen, "%s:%d: %s: '%s' is not an IPv4 address (a.b.c.d)", file ? file : "?",
             s ? (int)config_setting_source_line(s) : 0, key, value ? value : "");
    return -1;
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
        for (size_t o = 0; o < sizeof xmcd_kafka_owned / sizeof xmcd_kafka_owned[0]; o++)
            if (!strcmp(key, xmcd_kafka_owned[o][0])) {
                const char *file = config_setting_source_file(e);
                snprintf(err, errlen, "%s:%d: %s may not be set here: %s", file ? file : "?",
                         (int)config_setting_source_line(e), key, xmcd_kafka_owned[o][1]);
                return -1;
            }
        char kerr[256];
        if (rd_kafka_conf_set(kconf, key, eq + 1, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            const char *file = config_setting_source_file(e);
            snprintf(err, errlen, "%s:%d: %s", file ? file : "?", (int)config_setting_source_line(e), kerr);
            return -1;
        }
    }
    return 0;
}

rd_kafka_conf_t *xmcd_config_kafka_new(const xmcd_config *conf, const char *client_id, const char *const *defaults,
                                       const config_setting_t *role_list, char *err, size_t errlen)
{
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    char level[16];
    snprintf(level, sizeof level, "%d", conf->kafka_log_level);
    const char *const common[] = {"bootstrap.servers", conf->brokers && *conf->brokers ? conf->brokers : NULL,
                                  "client.id", client_id, "log_level", level};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i += 2)
        if (common[i + 1] && rd_kafka_conf_set(kconf, common[i], common[i + 1], err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (rd_kafka_conf_set(kconf, defaults[i], defaults[i + 1], err, errlen) != RD_KAFKA_CONF_OK) goto fail;
    if (xmcd_config_kafka_apply(conf->kafka, kconf, err, errlen) != 0) goto fail;
    if (xmcd_config_kafka_apply(role_list, kconf, err, errlen) != 0) goto fail;
    return kconf;
fail:
    rd_kafka_conf_destroy(kconf);
    return NULL;
}
