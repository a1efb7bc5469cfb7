/* test_xmcd_config.c: xmcd's config key table (src/xmcd/config.c) and what is derived from it: every key's
 * default, bounds and type errors (with the key's own file:line), the SIGHUP check (live keys applied and
 * logged, restart-only keys named and kept), the listing, and conf/xmcd.conf against the table.
 *
 * Config files are written from (dotted key, value) pairs, nested into libconfig groups, so one generator
 * covers every key; the line of the key under test is recorded as it is written. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/xmcd/config.h"
#include "../src/xmcd/log.h"
#include "testutil.h"

typedef struct xc_pair {
    char key[96];
    char value[96];
} xc_pair;

typedef struct xc_file {
    xc_pair pair[64];
    int n;
} xc_file;

static char xc_dir[512];

/* The smallest valid config: the required keys only. */
static void xc_base(xc_file *f)
{
    static const char *const base[][2] = {
        {"topics.in", "\"in\""}, {"topics.out", "\"out\""}, {"topics.dlq", "\"dlq\""}, {"plugin.path", "\"p.so\""}};
    f->n = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        snprintf(f->pair[f->n].key, sizeof f->pair[0].key, "%s", base[i][0]);
        snprintf(f->pair[f->n].value, sizeof f->pair[0].value, "%s", base[i][1]);
        f->n++;
    }
}

/* Sets key to value (libconfig text), replacing it if present; value NULL removes it. */
static void xc_set(xc_file *f, const char *key, const char *value)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->pair[i].key, key)) {
            if (value) {
                snprintf(f->pair[i].value, sizeof f->pair[0].value, "%s", value);
            } else {
                f->pair[i] = f->pair[f->n - 1];
                f->n--;
            }
            return;
        }
    if (!value) return;
    snprintf(f->pair[f->n].key, sizeof f->pair[0].key, "%s", key);
    snprintf(f->pair[f->n].value, sizeof f->pair[0].value, "%s", value);
    f->n++;
}

/* Writes the pairs under prefix (plen bytes, "" or "a.b.") nested into groups; *line counts lines written and
 * *at gets the line of the key named want. */
static void xc_emit(FILE *out, const xc_file *f, const char *prefix, size_t plen, int *line, const char *want, int *at)
{
    int done[64] = {0};
    for (int i = 0; i < f->n; i++) {
        if (done[i] || strncmp(f->pair[i].key, prefix, plen)) continue;
        const char *rest = f->pair[i].key + plen, *dot = strchr(rest, '.');
        if (!dot) {
            ++*line;
            fprintf(out, "%s = %s;\n", rest, f->pair[i].value);
            if (!strcmp(f->pair[i].key, want)) *at = *line;
            done[i] = 1;
            continue;
        }
        char sub[128];
        snprintf(sub, sizeof sub, "%.*s", (int)(dot - f->pair[i].key + 1), f->pair[i].key);
        for (int j = i; j < f->n; j++) /* the whole group now: a group named twice is a duplicate */
            if (!strncmp(f->pair[j].key, sub, strlen(sub))) done[j] = 1;
        ++*line;
        fprintf(out, "%.*s = {\n", (int)(dot - rest), rest);
        xc_emit(out, f, sub, strlen(sub), line, want, at);
        ++*line;
        fprintf(out, "};\n");
    }
}

/* Writes f to a file; returns its path (static), *at the line of want (0 if absent). */
static const char *xc_write(const xc_file *f, const char *want, int *at)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/x.conf", xc_dir);
    FILE *out = fopen(path, "w");
    int line = 0, where = 0;
    xc_emit(out, f, "", 0, &line, want ? want : "", &where);
    fclose(out);
    if (at) *at = where;
    return path;
}

static xmcd_config *xc_load(const xc_file *f, char *err, size_t errlen)
{
    err[0] = 0;
    return xmcd_config_load(xc_write(f, NULL, NULL), err, errlen);
}

/* Loads f, expecting the error "path:<line of key>: <what>"; 0 when it is exactly that. */
static int xc_refused(const xc_file *f, const char *key, const char *what)
{
    int at = 0;
    char err[1024], expect[1200];
    const char *path = xc_write(f, key, &at);
    xmcd_config *conf = xmcd_config_load(path, err, sizeof err);
    snprintf(expect, sizeof expect, "%s:%d: %s", path, at, what);
    if (conf || strcmp(err, expect)) {
        fprintf(stderr, "  %s: expected \"%s\", got %s\"%s\"\n", key, expect, conf ? "a config and " : "", err);
        xmcd_config_free(conf);
        return -1;
    }
    return 0;
}

static int *xc_int(const xmcd_config_key *key, xmcd_config *conf) { return (int *)((char *)conf + key->off); }
static const char *xc_str(const xmcd_config_key *key, xmcd_config *conf)
{
    return *(const char **)((char *)conf + key->off);
}
static const char *xc_choice_name(const xmcd_config_key *key, int value)
{
    for (const xmcd_key_choice *c = key->choices; c->name; c++)
        if (c->value == value) return c->name;
    return "?";
}
static const config_setting_t *xc_list(const xmcd_config_key *key, xmcd_config *conf)
{
    return *(const config_setting_t **)((char *)conf + key->off);
}

static int xc_choice(const xmcd_config_key *key, const char *name)
{
    for (const xmcd_key_choice *c = key->choices; c->name; c++)
        if (!strcmp(c->name, name)) return c->value;
    return -1000;
}

/* stderr into a file while fn runs; returns the text (static). */
static const char *xc_capture(void (*fn)(void *), void *arg)
{
    static char text[16384];
    char path[600];
    snprintf(path, sizeof path, "%s/stderr", xc_dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    dup2(fd, 2);
    fn(arg);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = 0;
    close(fd);
    return text;
}

/* ==== tests ============================================================================================== */

/* A key left out takes the table's default; the defaults that other docs and scripts rely on are pinned. */
static void test_defaults(void)
{
    xc_file f;
    xc_base(&f);
    char err[1024];
    xmcd_config *conf = xc_load(&f, err, sizeof err);
    CU_ASSERT_FATAL(conf != NULL);
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    CU_ASSERT(n > 20);
    for (size_t i = 0; i < n; i++) {
        const xmcd_config_key *key = &keys[i];
        int ok = 1;
        switch (key->type) {
        case XMCD_KEY_INT: ok = *xc_int(key, conf) == key->def; break;
        case XMCD_KEY_CHOICE: ok = *xc_int(key, conf) == xc_choice(key, key->def_str); break;
        case XMCD_KEY_LIST: ok = xc_list(key, conf) == NULL; break;
        case XMCD_KEY_STRING:
            if (key->required) break;
            ok = key->def_str ? xc_str(key, conf) && !strcmp(xc_str(key, conf), key->def_str) : !xc_str(key, conf);
            break;
        }
        if (!ok) fprintf(stderr, "  %s: not its default\n", key->name);
        CU_ASSERT(ok);
    }
    CU_ASSERT_EQUAL(conf->batch_max_records, 256);
    CU_ASSERT_EQUAL(conf->batch_max_wait_ms, 20);
    CU_ASSERT_EQUAL(conf->mode, XMCD_MODE_AT_LEAST_ONCE);
    CU_ASSERT_EQUAL(conf->commit_interval_ms, 500);
    CU_ASSERT_EQUAL(conf->max_inflight, 20000);
    CU_ASSERT_EQUAL(conf->message_timeout_ms, 30000);
    CU_ASSERT_EQUAL(conf->reload_poll_ms, 2000);
    CU_ASSERT_EQUAL(conf->log_level, XMCD_LOG_INFO);
    CU_ASSERT_STRING_EQUAL(conf->group_id, "xmcd");
    CU_ASSERT_STRING_EQUAL(conf->http_addr, "127.0.0.1");
    CU_ASSERT_EQUAL(conf->embedded_brokers, 3);
    xmcd_config_free(conf);
}

/* Every integer key: both bounds taken, one past either refused with the key's own line and the range. */
static void test_bounds(void)
{
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    int ints = 0;
    for (size_t i = 0; i < n; i++) {
        const xmcd_config_key *key = &keys[i];
        if (key->type != XMCD_KEY_INT) continue;
        ints++;
        xc_file f;
        xc_base(&f);
        char v[32], what[256], err[1024];
        const int edge[2] = {key->lo, key->hi};
        for (int e = 0; e < 2; e++) {
            snprintf(v, sizeof v, "%d", edge[e]);
            xc_set(&f, key->name, v);
            xmcd_config *conf = xc_load(&f, err, sizeof err);
            CU_ASSERT(conf != NULL && *xc_int(key, conf) == edge[e]);
            if (!conf) fprintf(stderr, "  %s = %d refused: %s\n", key->name, edge[e], err);
            xmcd_config_free(conf);
            long long past = e ? (long long)key->hi + 1 : (long long)key->lo - 1;
            snprintf(v, sizeof v, "%lld", past);
            xc_set(&f, key->name, v);
            snprintf(what, sizeof what, "%s out of range (got %lld, allowed %d..%d)", key->name, past, key->lo,
                     key->hi);
            CU_ASSERT_EQUAL(xc_refused(&f, key->name, what), 0);
        }
    }
    CU_ASSERT(ints >= 10);
}

/* A value of the wrong type, a bad choice, a missing or empty required string: the messages of today. */
static void test_type_errors(void)
{
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const xmcd_config_key *key = &keys[i];
        xc_file f;
        xc_base(&f);
        char what[256];
        switch (key->type) {
        case XMCD_KEY_INT:
            xc_set(&f, key->name, "\"7\"");
            snprintf(what, sizeof what, "%s must be an integer", key->name);
            break;
        case XMCD_KEY_STRING:
        case XMCD_KEY_CHOICE:
            xc_set(&f, key->name, "7");
            snprintf(what, sizeof what, "%s must be a string", key->name);
            break;
        case XMCD_KEY_LIST:
            xc_set(&f, key->name, "7");
            snprintf(what, sizeof what, "%s must be a list of \"key=value\" strings", key->name);
            break;
        }
        CU_ASSERT_EQUAL(xc_refused(&f, key->name, what), 0);
        if (key->type == XMCD_KEY_LIST) {
            xc_set(&f, key->name, "[ \"=x\" ]");
            snprintf(what, sizeof what, "%s: every element must be a \"key=value\" string", key->name);
            CU_ASSERT_EQUAL(xc_refused(&f, key->name, what), 0);
        }
        if (key->type == XMCD_KEY_CHOICE) {
            xc_set(&f, key->name, "\"none-of-them\"");
            snprintf(what, sizeof what, "%s must be %s", key->name, key->allowed);
            CU_ASSERT_EQUAL(xc_refused(&f, key->name, what), 0);
        }
        if (key->required) {
            xc_set(&f, key->name, "\"\"");
            snprintf(what, sizeof what, "%s must not be empty", key->name);
            CU_ASSERT_EQUAL(xc_refused(&f, key->name, what), 0);
            xc_set(&f, key->name, NULL);
            char err[1024], expect[1200];
            const char *path = xc_write(&f, NULL, NULL);
            xmcd_config *conf = xmcd_config_load(path, err, sizeof err);
            snprintf(expect, sizeof expect, "%s:0: missing required key %s", path, key->name);
            CU_ASSERT(conf == NULL && !strcmp(err, expect));
            xmcd_config_free(conf);
        }
    }
    /* the two choice messages as they were written before the table */
    xc_file f;
    xc_base(&f);
    xc_set(&f, "delivery.mode", "\"twice\"");
    CU_ASSERT_EQUAL(xc_refused(&f, "delivery.mode", "delivery.mode must be \"at-least-once\" or \"exactly-once\""), 0);
    xc_base(&f);
    xc_set(&f, "log.level", "\"loud\"");
    CU_ASSERT_EQUAL(xc_refused(&f, "log.level", "log.level must be error, warn, info or debug"), 0);
    /* the rules between keys */
    xc_base(&f);
    xc_set(&f, "delivery.mode", "\"exactly-once\"");
    CU_ASSERT_EQUAL(xc_refused(&f, "delivery.mode", "delivery.mode \"exactly-once\" needs delivery.transactional_id"),
                    0);
    xc_base(&f);
    xc_set(&f, "topics.dlq", "\"in\"");
    char err[1024];
    xmcd_config *conf = xc_load(&f, err, sizeof err);
    CU_ASSERT(conf == NULL && strstr(err, "topics: in, out and dlq must be three different topics"));
    xmcd_config_free(conf);
    /* the endpoint binds IPv4: a host name is refused at load (it failed only at start before) */
    xc_base(&f);
    xc_set(&f, "stats.http_addr", "\"localhost\"");
    CU_ASSERT_EQUAL(xc_refused(&f, "stats.http_addr", "stats.http_addr: 'localhost' is not an IPv4 address (a.b.c.d)"), 0);
    /* the properties the daemon owns are refused in every passthrough list: librdkafka's own commits would
     * commit records not yet delivered (at-least-once void without a word) */
    static const char *const lists[] = {"kafka", "kafka_consumer", "kafka_producer"};
    static const char *const owned[] = {"enable.auto.commit=true", "enable.auto.offset.store=true", "group.id=g2"};
    for (size_t l = 0; l < 3; l++)
        for (size_t o = 0; o < 3; o++) {
            char value[128], what[128];
            snprintf(value, sizeof value, "[ \"%s\" ]", owned[o]);
            snprintf(what, sizeof what, "%.*s may not be set here", (int)(strchr(owned[o], '=') - owned[o]), owned[o]);
            xc_base(&f);
            xc_set(&f, lists[l], value);
            int at = 0;
            const char *path = xc_write(&f, lists[l], &at);
            conf = xmcd_config_load(path, err, sizeof err);
            char where[1200];
            snprintf(where, sizeof where, "%s:%d: %s", path, at, what);
            CU_ASSERT(conf == NULL && strstr(err, where) == err);
            xmcd_config_free(conf);
        }
}

typedef struct xc_live {
    xmcd_config *dst, *src;
} xc_live;

static void xc_apply(void *arg)
{
    xc_live *l = arg;
    xmcd_config_apply_live(l->dst, l->src);
}

/* SIGHUP with every key changed: live keys are applied and logged with old and new, restart-only keys are
 * named and keep their running value; the same file again logs nothing. */
static void test_apply_live(void)
{
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    xc_file f, g;
    xc_base(&f);
    xc_base(&g);
    for (size_t i = 0; i < n; i++) {
        const xmcd_config_key *key = &keys[i];
        char v[96];
        switch (key->type) {
        case XMCD_KEY_INT: snprintf(v, sizeof v, "%d", key->def == key->lo ? key->hi : key->lo); break;
        case XMCD_KEY_STRING: snprintf(v, sizeof v, "\"v2-%s\"", key->name); break;
        case XMCD_KEY_LIST: snprintf(v, sizeof v, "[ \"client.id=v2\" ]"); break;
        case XMCD_KEY_CHOICE:
            for (const xmcd_key_choice *c = key->choices; c->name; c++)
                if (strcmp(c->name, key->def_str)) { /* the first other one */
                    snprintf(v, sizeof v, "\"%s\"", c->name);
                    break;
                }
            break;
        }
        if (!strcmp(key->name, "stats.http_addr")) snprintf(v, sizeof v, "\"127.0.0.2\""); /* checked: IPv4 */
        xc_set(&g, key->name, v);
    }
    char err[1024];
    xmcd_config *a = xc_load(&f, err, sizeof err);
    CU_ASSERT_FATAL(a != NULL);
    xmcd_config *a2 = xc_load(&f, err, sizeof err);
    CU_ASSERT_FATAL(a2 != NULL);
    xmcd_config *b = xc_load(&g, err, sizeof err);
    if (!b) fprintf(stderr, "  changed config refused: %s\n", err);
    CU_ASSERT_FATAL(b != NULL);

    xc_live same = {a, a2};
    const char *log = xc_capture(xc_apply, &same);
    CU_ASSERT_STRING_EQUAL(log, "");

    int before[64];
    for (size_t i = 0; i < n && i < 64; i++)
        if (keys[i].type == XMCD_KEY_INT || keys[i].type == XMCD_KEY_CHOICE) before[i] = *xc_int(&keys[i], a);
    xc_live change = {a, b};
    log = xc_capture(xc_apply, &change);
    int live = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        const xmcd_config_key *key = &keys[i];
        char want[256];
        if (key->live) {
            live++;
            CU_ASSERT(key->type == XMCD_KEY_INT || key->type == XMCD_KEY_CHOICE);
            if (key->type == XMCD_KEY_CHOICE) /* a choice is logged by its name, as the file writes it */
                snprintf(want, sizeof want, "event=config_change key=%s old=%s new=%s", key->name,
                         xc_choice_name(key, before[i]), xc_choice_name(key, *xc_int(key, b)));
            else
                snprintf(want, sizeof want, "event=config_change key=%s old=%d new=%d", key->name, before[i],
                         *xc_int(key, b));
            CU_ASSERT(strstr(log, want) != NULL);
            CU_ASSERT_EQUAL(*xc_int(key, a), *xc_int(key, b));
        } else {
            snprintf(want, sizeof want, "event=config_restart_needed key=%s", key->name);
            CU_ASSERT(strstr(log, want) != NULL);
            if (key->type == XMCD_KEY_INT || key->type == XMCD_KEY_CHOICE) {
                CU_ASSERT_EQUAL(*xc_int(key, a), before[i]);
            } else if (key->type == XMCD_KEY_STRING) {
                CU_ASSERT(xc_str(key, a) != xc_str(key, b));
            }
        }
        if (!strstr(log, want)) fprintf(stderr, "  no \"%s\" in:\n%s", want, log);
    }
    CU_ASSERT(live >= 5);
    /* a restart-only integer names both values */
    CU_ASSERT(strstr(log, "key=delivery.message_timeout_ms running=30000 file=1000") != NULL);
    CU_ASSERT(strstr(log, "key=delivery.mode running=at-least-once file=exactly-once") != NULL);
    CU_ASSERT(strstr(log, "event=config_change key=log.level old=info new=error") != NULL);
    CU_ASSERT_EQUAL(xmcd_log_get_level(), XMCD_LOG_ERROR); /* log.level "error" was applied */
    xmcd_log_set_level(XMCD_LOG_INFO);
    xmcd_config_free(a);
    xmcd_config_free(a2);
    xmcd_config_free(b);

    /* a raised level is logged too: warn -> info wrote nothing (the line went out at info under warn) */
    xc_file w, i;
    xc_base(&w);
    xc_base(&i);
    xc_set(&w, "log.level", "\"warn\"");
    xc_set(&i, "log.level", "\"info\"");
    xmcd_config *cw = xc_load(&w, err, sizeof err), *ci = xc_load(&i, err, sizeof err);
    CU_ASSERT_FATAL(cw != NULL && ci != NULL);
    xmcd_log_set_level(XMCD_LOG_WARN);
    xc_live raise = {cw, ci};
    log = xc_capture(xc_apply, &raise);
    CU_ASSERT(strstr(log, "event=config_change key=log.level old=warn new=info") != NULL);
    CU_ASSERT_EQUAL(xmcd_log_get_level(), XMCD_LOG_INFO);
    xmcd_config_free(cw);
    xmcd_config_free(ci);
}

/* The listing: one Markdown row per key, in table order, with its live/restart word. */
static void test_listing(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    xmcd_config_keys_write(f);
    fclose(f);
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    const char *at = strstr(text, "|---");
    CU_ASSERT_FATAL(at != NULL);
    for (size_t i = 0; i < n; i++) {
        char row[160];
        snprintf(row, sizeof row, "\n| `%s` |", keys[i].name);
        const char *p = strstr(at, row);
        CU_ASSERT(p != NULL);
        if (!p) continue;
        const char *end = strchr(p + 1, '\n');
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(end - p - 1), p + 1);
        CU_ASSERT(strstr(line, keys[i].live ? "| live |" : "| restart |") != NULL);
        int bars = 0;
        for (const char *c = line; *c; c++) bars += *c == '|';
        CU_ASSERT_EQUAL(bars, 7); /* no '|' inside a cell */
        at = p + 1;
    }
    free(text);
}

/* conf/xmcd.conf is valid, names every key, and each integer it sets is the table's default. */
static void test_conf_file(void)
{
    char err[1024];
    xmcd_config *conf = xmcd_config_load("conf/xmcd.conf", err, sizeof err);
    if (!conf) fprintf(stderr, "  conf/xmcd.conf: %s\n", err);
    CU_ASSERT_FATAL(conf != NULL);
    FILE *f = fopen("conf/xmcd.conf", "r");
    CU_ASSERT_FATAL(f != NULL);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    size_t n;
    const xmcd_config_key *keys = xmcd_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const char *leaf = strrchr(keys[i].name, '.');
        leaf = leaf ? leaf + 1 : keys[i].name;
        char words[128];
        snprintf(words, sizeof words, "%s = ", leaf);
        CU_ASSERT(strstr(text, words) != NULL);
        if (!strstr(text, words)) fprintf(stderr, "  conf/xmcd.conf does not name %s\n", keys[i].name);
        if (keys[i].type == XMCD_KEY_INT && config_lookup(&conf->tree, keys[i].name)) {
            CU_ASSERT_EQUAL(*xc_int(&keys[i], conf), keys[i].def);
            if (*xc_int(&keys[i], conf) != keys[i].def)
                fprintf(stderr, "  conf/xmcd.conf: %s = %d, the default is %d\n", keys[i].name,
                        *xc_int(&keys[i], conf), keys[i].def);
        }
    }
    xmcd_config_free(conf);
}

int main(int argc, char **argv)
{
    char *dir = tu_tmpdir();
    snprintf(xc_dir, sizeof xc_dir, "%s", dir);
    free(dir);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("xmcd_config", NULL, NULL);
    TU_ADD(s, test_defaults);
    TU_ADD(s, test_bounds);
    TU_ADD(s, test_type_errors);
    TU_ADD(s, test_apply_live);
    TU_ADD(s, test_listing);
    TU_ADD(s, test_conf_file);
    int rc = tu_run(argc, argv);
    tu_rmrf(xc_dir);
    return rc;
}
