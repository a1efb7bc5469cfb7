/* upper_stage.c: a test fixture stage plugin that upper-cases record values, for the daemon's tests.
 *
 * It exercises every part of stage.h without libxmc: process() turns a value into "<version>|<VALUE>" and
 * fails records whose value starts with fail_prefix (code "PLUGIN", message names the offset) or is longer
 * than max_record_bytes (code "TOO_LARGE"). A "model" is a directory holding model.txt: load() reads it and
 * refuses the version unless the file's first line is "ok" (the fixture's canary check); the serving
 * version's name (the directory's basename) is held in a refcounted object swapped under a mutex, so a
 * batch keeps the version it started with. Config keys (all optional): model_repo (opened at create if
 * it has CURRENT, and named to xmcd by model_repo()), fail_prefix ("BAD"), max_record_bytes (65536), sleep_us per
 * batch (0), first_sleep_ms before the first batch only (0; a batch slower than max.poll.interval.ms), trace_path
 * (none: a file that gets a "begin" line as a batch enters the sleep and an "end" line as it leaves, so that a test
 * can wait until a batch is inside the plugin instead of guessing with a sleep). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xmc/stage.h"

typedef struct upper_model {
    atomic_int refs;
    char version[XMC_STAGE_VERSION_MAX];
} upper_model;

struct xmc_stage_instance {
    pthread_mutex_t lock; /* guards model (the pointer swap only) */
    upper_model *model;
    char fail_prefix[64];
    char repo[1024]; /* model_repo, "" if none */
    size_t max_record_bytes;
    int sleep_us;
    int first_sleep_ms;
    char trace_path[1024]; /* "" when not traced */
    char *buf; /* output bytes of the last process() */
    size_t buf_cap;
    atomic_uint_fast64_t records, errors, loads, refusals;
};

static void upper_model_unref(upper_model *model)
{
    if (model && atomic_fetch_sub(&model->refs, 1) == 1) free(model);
}

static upper_model *upper_acquire(xmc_stage_instance *inst)
{
    pthread_mutex_lock(&inst->lock);
    upper_model *model = inst->model;
    if (model) atomic_fetch_add(&model->refs, 1);
    pthread_mutex_unlock(&inst->lock);
    return model;
}

static int upper_load(xmc_stage_instance *inst, const char *model_dir, char *err, size_t errlen)
{
    const char *base = strrchr(model_dir, '/');
    base = base && base[1] ? base + 1 : model_dir;
    upper_model *cur = upper_acquire(inst);
    int same = cur && !strcmp(cur->version, base);
    upper_model_unref(cur);
    if (same) return 1;

    char path[4096], line[64] = "";
    snprintf(path, sizeof path, "%s/model.txt", model_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        atomic_fetch_add(&inst->refusals, 1);
        return -1;
    }
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    if (strncmp(line, "ok", 2) != 0) {
        snprintf(err, errlen, "canary check failed: %s does not start with \"ok\"", path);
        atomic_fetch_add(&inst->refusals, 1);
        return -1;
    }
    upper_model *model = calloc(1, sizeof *model);
    if (!model) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&model->refs, 1);
    snprintf(model->version, sizeof model->version, "%s", base);
    pthread_mutex_lock(&inst->lock);
    upper_model *old = inst->model;
    inst->model = model;
    pthread_mutex_unlock(&inst->lock);
    upper_model_unref(old);
    atomic_fetch_add(&inst->loads, 1);
    return 0;
}

static xmc_stage_instance *upper_create(const config_setting_t *cfg, char *err, size_t errlen)
{
    xmc_stage_instance *inst = calloc(1, sizeof *inst);
    if (!inst) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&inst->lock, NULL);
    snprintf(inst->fail_prefix, sizeof inst->fail_prefix, "BAD");
    inst->max_record_bytes = 65536;
    const char *s;
    int v;
    if (cfg && config_setting_lookup_string(cfg, "fail_prefix", &s))
        snprintf(inst->fail_prefix, sizeof inst->fail_prefix, "%s", s);
    if (cfg && config_setting_lookup_int(cfg, "max_record_bytes", &v)) inst->max_record_bytes = (size_t)v;
    if (cfg && config_setting_lookup_int(cfg, "sleep_us", &v)) inst->sleep_us = v;
    if (cfg && config_setting_lookup_int(cfg, "first_sleep_ms", &v)) inst->first_sleep_ms = v;
    if (cfg && config_setting_lookup_string(cfg, "trace_path", &s))
        snprintf(inst->trace_path, sizeof inst->trace_path, "%s", s);
    if (cfg && config_setting_lookup_string(cfg, "model_repo", &s)) {
        snprintf(inst->repo, sizeof inst->repo, "%s", s);
        char path[4096], ver[256] = "";
        snprintf(path, sizeof path, "%s/CURRENT", s);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(ver, sizeof ver, f)) ver[0] = 0;
            fclose(f);
            ver[strcspn(ver, " \r\n")] = 0;
            snprintf(path, sizeof path, "%s/%s", s, ver);
            if (ver[0] && upper_load(inst, path, err, errlen) < 0) {
                pthread_mutex_destroy(&inst->lock);
                free(inst);
                return NULL;
            }
        }
    }
    return inst;
}

/* Appends one line to trace_path (if set); a single O_APPEND write, so a reader never sees half a line. */
static void upper_trace(const xmc_stage_instance *inst, const char *line)
{
    if (!inst->trace_path[0]) return;
    int fd = open(inst->trace_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, line, strlen(line)); /* a lost line only makes the waiting test time out */
    (void)w;
    close(fd);
}

static int upper_process(xmc_stage_instance *inst, const xmc_stage_in *in, size_t n, xmc_stage_out *out)
{
    upper_model *model = upper_acquire(inst); /* the whole batch runs on this version */
    const char *version = model ? model->version : "none";
    size_t need = 0;
    for (size_t i = 0; i < n; i++) need += in[i].value_len + strlen(version) + 2;
    if (need > inst->buf_cap) {
        char *nb = realloc(inst->buf, need);
        if (!nb) {
            upper_model_unref(model);
            return -1;
        }
        inst->buf = nb;
        inst->buf_cap = need;
    }
    upper_trace(inst, "begin\n");
    if (inst->sleep_us) usleep((useconds_t)inst->sleep_us);
    if (inst->first_sleep_ms) { /* once, and through signals (nanosleep restarted with what is left) */
        struct timespec left = {inst->first_sleep_ms / 1000, (long)(inst->first_sleep_ms % 1000) * 1000000L};
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
        inst->first_sleep_ms = 0;
    }
    upper_trace(inst, "end\n");
    size_t pos = 0, plen = strlen(inst->fail_prefix);
    for (size_t i = 0; i < n; i++) {
        snprintf(out[i].model_version, sizeof out[i].model_version, "%s", version);
        if (in[i].value_len > inst->max_record_bytes) {
            out[i].kind = XMC_STAGE_OUT_ERROR;
            snprintf(out[i].code, sizeof out[i].code, "TOO_LARGE");
            snprintf(out[i].message, sizeof out[i].message, "record of %zu bytes exceeds max_record_bytes %zu",
                     in[i].value_len, inst->max_record_bytes);
            atomic_fetch_add(&inst->errors, 1);
            continue;
        }
        if (plen && in[i].value_len >= plen && !memcmp(in[i].value, inst->fail_prefix, plen)) {
            out[i].kind = XMC_STAGE_OUT_ERROR;
            snprintf(out[i].code, sizeof out[i].code, "PLUGIN");
            snprintf(out[i].message, sizeof out[i].message, "value at offset %lld starts with %s",
                     (long long)in[i].offset, inst->fail_prefix);
            atomic_fetch_add(&inst->errors, 1);
            continue;
        }
        char *dst = inst->buf + pos;
        size_t vl = strlen(version);
        memcpy(dst, version, vl);
        dst[vl] = '|';
        const unsigned char *src = in[i].value;
        for (size_t j = 0; j < in[i].value_len; j++) dst[vl + 1 + j] = (char)toupper(src[j]);
        out[i].kind = XMC_STAGE_OUT_RECORD;
        out[i].value = dst;
        out[i].value_len = vl + 1 + in[i].value_len;
        pos += out[i].value_len;
    }
    atomic_fetch_add(&inst->records, n);
    upper_model_unref(model);
    return 0;
}

static int upper_current_version(xmc_stage_instance *inst, char *buf, size_t size)
{
    upper_model *model = upper_acquire(inst);
    snprintf(buf, size, "%s", model ? model->version : "");
    upper_model_unref(model);
    return model ? 0 : -1;
}

static void upper_stats(xmc_stage_instance *inst, xmc_stage_stats *st)
{
    memset(st, 0, sizeof *st);
    st->records = atomic_load(&inst->records);
    st->errors = atomic_load(&inst->errors);
    st->loads = atomic_load(&inst->loads);
    st->refusals = atomic_load(&inst->refusals);
}

static void upper_destroy(xmc_stage_instance *inst)
{
    if (!inst) return;
    upper_model_unref(inst->model);
    pthread_mutex_destroy(&inst->lock);
    free(inst->buf);
    free(inst);
}

static int upper_model_repo(xmc_stage_instance *inst, char *buf, size_t size)
{
    snprintf(buf, size, "%s", inst->repo);
    return inst->repo[0] ? 0 : -1;
}

/* ABI 3: max_record_bytes, when given, must be a positive integer (the one key this fixture checks, so that
 * the daemon's handling of a refused plugin config can be tested). */
static int upper_check_config(const config_setting_t *cfg, char *err, size_t errlen)
{
    const config_setting_t *m = cfg ? config_setting_get_member(cfg, "max_record_bytes") : NULL;
    if (m && (config_setting_type(m) != CONFIG_TYPE_INT || config_setting_get_int(m) <= 0)) {
        snprintf(err, errlen, "plugin.config.max_record_bytes must be a positive integer (line %d)",
                 (int)config_setting_source_line(m));
        return -1;
    }
    return 0;
}

XMC_STAGE_EXPORT const xmc_stage_api xmc_stage_plugin = {
    .abi_version = XMC_STAGE_ABI_VERSION,
    .name = "upper",
    .create = upper_create,
    .process = upper_process,
    .load = upper_load,
    .current_version = upper_current_version,
    .stats = upper_stats,
    .destroy = upper_destroy,
    .model_repo = upper_model_repo,
    .check_config = upper_check_config,
};
