/* xmc_stage.c: the xmc stage plugin: xmc.v1.Product in, xmc.v1.LabeledProduct out, classified by libxmc.
 *
 * process() decodes each record (protobuf-c), joins the configured text fields with ". ", classifies the
 * batch's texts with the serving model in one xmc_classify_batch (so a model with an encoder embeds the
 * micro-batch in batched forwards, not record by record) and encodes a LabeledProduct carrying the model version. Per-record failures
 * become error outputs (dead-lettered by the daemon): TOO_LARGE (over max_record_bytes), DECODE (empty
 * record, not a Product, no id), CLASSIFY (the library refused the text). An empty text is not an error:
 * it is classified from no features, as the library defines.
 *
 * Models and hot swap: the serving model is a refcounted object (classifier + version) behind a mutex that
 * guards only the pointer. load() opens a version off the record path (mmap, checksums, shapes), runs its
 * canaries, and only then swaps the pointer; the old model is closed when its last user lets go, so a batch
 * that started on it finishes on it. A refused version changes nothing. Each instance keeps one workspace
 * (scratch memory, tied to one classifier) for the pipeline thread and rebuilds it when the model changes.
 *
 * Config (the plugin.config group): model_repo (required; CURRENT names the version opened at create),
 * fields (["title", "description", "brand"]; also "attributes"), max_record_bytes (1048576), topk and beam
 * (0 = the model's defaults), include_product (false). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmc.pb-c.h"
#include "xmc/stage.h"
#include "xmc/xmc.h"

#define XMC_STAGE_MAX_FIELDS 8
#define XMC_STAGE_REPO_MAX 1024

enum { XMC_STAGE_F_TITLE, XMC_STAGE_F_DESCRIPTION, XMC_STAGE_F_BRAND, XMC_STAGE_F_ATTRIBUTES };

/* The plugin.config group as read (xmc_stage_read_config). */
typedef struct xmc_stage_conf {
    char repo[XMC_STAGE_REPO_MAX];
    int fields[XMC_STAGE_MAX_FIELDS];
    int n_fields;
    size_t max_record_bytes;
    uint32_t topk, beam; /* 0: the model's */
    int include_product;
} xmc_stage_conf;

typedef struct xmc_stage_model {
    atomic_int refs;
    xmc_classifier *clf;
    char version[XMC_STAGE_VERSION_MAX];
} xmc_stage_model;

/* A decoded record waiting for classification: its product and where its text lies in the batch's texts. */
typedef struct xmc_stage_pending {
    Xmc__V1__Product *product;
    size_t record, off, len;
} xmc_stage_pending;

struct xmc_stage_instance {
    pthread_mutex_t lock; /* guards `model` (the pointer only) */
    xmc_stage_model *model;
    pthread_mutex_t load_lock; /* one load() at a time */

    xmc_stage_conf conf;

    /* pipeline-thread state */
    xmc_stage_model *ws_model; /* the model `ws` belongs to (one reference held) */
    xmc_workspace *ws;
    char *text;
    size_t text_cap;
    uint8_t *arena; /* encoded outputs of the last process() */
    size_t arena_cap;
    size_t *offs; /* per output: offset into arena */
    size_t offs_cap;
    /* the batch being classified: decoded records, their joined texts side by side in btext, and the hits */
    struct xmc_stage_pending *pend;
    size_t pend_cap, n_pend;
    char *btext;
    size_t btext_cap, btext_used;
    const char **bptr;
    size_t bptr_cap;
    size_t *blen;
    size_t blen_cap;
    uint32_t *counts;
    size_t counts_cap;
    xmc_hit *bhits;
    size_t bhits_cap;

    atomic_uint_fast64_t records, errors, loads, refusals, classify_ns, decode_ns, encode_ns;
};

static uint64_t xmc_stage_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void xmc_stage_model_unref(xmc_stage_model *model)
{
    if (model && atomic_fetch_sub(&model->refs, 1) == 1) {
        xmc_classifier_close(model->clf);
        free(model);
    }
}

static xmc_stage_model *xmc_stage_acquire(xmc_stage_instance *inst)
{
    pthread_mutex_lock(&inst->lock);
    xmc_stage_model *model = inst->model;
    if (model) atomic_fetch_add(&model->refs, 1);
    pthread_mutex_unlock(&inst->lock);
    return model;
}

/* ---- load: open, verify, canaries, swap ----------------------------------------------------------------- */

static int xmc_stage_load(xmc_stage_instance *inst, const char *model_dir, char *err, size_t errlen)
{
    const char *base = strrchr(model_dir, '/');
    base = base && base[1] ? base + 1 : model_dir;
    pthread_mutex_lock(&inst->load_lock);
    xmc_stage_model *cur = xmc_stage_acquire(inst);
    int same = cur && !strcmp(cur->version, base);
    xmc_stage_model_unref(cur);
    if (same) {
        pthread_mutex_unlock(&inst->load_lock);
        return 1;
    }
    xmc_error xerr;
    xmc_error_clear(&xerr);
    xmc_classifier *clf = NULL;
    xmc_open_opts opts = {.verify_checksums = 1, .check_canaries = 0};
    xmc_err rc = xmc_classifier_open(model_dir, &opts, &clf, &xerr);
    if (rc == XMC_OK && xmc_classifier_num_labels(clf) == 0)
        rc = xmc_error_set(&xerr, XMC_ERR_EMPTY, "%s: the model has no labels", model_dir);
    if (rc == XMC_OK) { /* records carry text: a model of feature vectors would dead-letter every one */
        xmc_model_info info;
        xmc_classifier_info(clf, &info);
        if (info.featurizer == XMC_FEATURIZER_MATRIX)
            rc = xmc_error_set(&xerr, XMC_ERR_ARG, "%s: a model trained on feature vectors cannot classify text",
                               model_dir);
    }
    if (rc == XMC_OK) rc = xmc_classifier_check_canaries(clf, &xerr);
    if (rc != XMC_OK) {
        snprintf(err, errlen, "%s: %s", xmc_err_name(rc), xerr.msg);
        xmc_classifier_close(clf);
        atomic_fetch_add(&inst->refusals, 1);
        pthread_mutex_unlock(&inst->load_lock);
        return -1;
    }
    xmc_stage_model *model = calloc(1, sizeof *model);
    if (!model) {
        snprintf(err, errlen, "out of memory");
        xmc_classifier_close(clf);
        atomic_fetch_add(&inst->refusals, 1);
        pthread_mutex_unlock(&inst->load_lock);
        return -1;
    }
    atomic_init(&model->refs, 1);
    model->clf = clf;
    /* served under the name CURRENT uses (the directory), which is the manifest's unless it was copied */
    snprintf(model->version, sizeof model->version, "%s", base);
    pthread_mutex_lock(&inst->lock);
    xmc_stage_model *old = inst->model;
    inst->model = model;
    pthread_mutex_unlock(&inst->lock);
    xmc_stage_model_unref(old); /* closed now, or when the batch using it lets go */
    atomic_fetch_add(&inst->loads, 1);
    pthread_mutex_unlock(&inst->load_lock);
    return 0;
}

/* ---- create / destroy ----------------------------------------------------------------------------------- */

static int xmc_stage_field_id(const char *name)
{
    if (!strcmp(name, "title")) return XMC_STAGE_F_TITLE;
    if (!strcmp(name, "description")) return XMC_STAGE_F_DESCRIPTION;
    if (!strcmp(name, "brand")) return XMC_STAGE_F_BRAND;
    if (!strcmp(name, "attributes")) return XMC_STAGE_F_ATTRIBUTES;
    return -1;
}

/* The line of member `name` of cfg, for messages. */
static int xmc_stage_line(const config_setting_t *cfg, const char *name)
{
    const config_setting_t *m = config_setting_get_member(cfg, name);
    return m ? (int)config_setting_source_line(m) : 0;
}

/* Reads the plugin.config group into c (defaults for keys that are absent). Every key
 * present must have its type and range: a `topk = "5"` is refused rather than read as the default. Unknown
 * keys are ignored, as xmcd ignores its own (an older plugin reads a newer file). 0, or -1 with err. */
static int xmc_stage_read_config(const config_setting_t *cfg, xmc_stage_conf *c, char *err, size_t errlen)
{
    c->max_record_bytes = 1u << 20;
    c->fields[0] = XMC_STAGE_F_TITLE;
    c->fields[1] = XMC_STAGE_F_DESCRIPTION;
    c->fields[2] = XMC_STAGE_F_BRAND;
    c->n_fields = 3;
    c->topk = c->beam = 0;
    c->include_product = 0;
    const char *repo = NULL;
    if (!cfg || !config_setting_get_member(cfg, "model_repo")) {
        snprintf(err, errlen, "plugin.config.model_repo (the model repository) is required");
        return -1;
    }
    if (!config_setting_lookup_string(cfg, "model_repo", &repo) || !*repo) {
        snprintf(err, errlen, "plugin.config.model_repo must be a non-empty string (line %d)",
                 xmc_stage_line(cfg, "model_repo"));
        return -1;
    }
    if (strlen(repo) >= sizeof c->repo) {
        snprintf(err, errlen, "plugin.config.model_repo is longer than %zu bytes (line %d)", sizeof c->repo - 1,
                 xmc_stage_line(cfg, "model_repo"));
        return -1;
    }
    snprintf(c->repo, sizeof c->repo, "%s", repo);
    /* the integer keys: name, lowest, highest, where it goes */
    struct { const char *name; long long lo, hi; } ints[] = {
        {"max_record_bytes", 1, 1LL << 30}, {"topk", 0, XMC_MAX_K}, {"beam", 0, XMC_MAX_K}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        const config_setting_t *m = config_setting_get_member(cfg, ints[k].name);
        if (!m) continue;
        int type = config_setting_type(m);
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            snprintf(err, errlen, "plugin.config.%s must be an integer (line %d)", ints[k].name,
                     (int)config_setting_source_line(m));
            return -1;
        }
        long long v = config_setting_get_int64(m);
        if (v < ints[k].lo || v > ints[k].hi) {
            snprintf(err, errlen, "plugin.config.%s = %lld is out of range %lld..%lld (line %d)", ints[k].name, v,
                     ints[k].lo, ints[k].hi, (int)config_setting_source_line(m));
            return -1;
        }
        if (k == 0) c->max_record_bytes = (size_t)v;
        else if (k == 1) c->topk = (uint32_t)v;
        else c->beam = (uint32_t)v;
    }
    const config_setting_t *ip = config_setting_get_member(cfg, "include_product");
    if (ip) {
        if (config_setting_type(ip) != CONFIG_TYPE_BOOL) {
            snprintf(err, errlen, "plugin.config.include_product must be true or false (line %d)",
                     (int)config_setting_source_line(ip));
            return -1;
        }
        c->include_product = config_setting_get_bool(ip);
    }
    const config_setting_t *fields = config_setting_get_member(cfg, "fields");
    if (fields) {
        int n = config_setting_length(fields);
        if (!config_setting_is_array(fields) || n < 1 || n > XMC_STAGE_MAX_FIELDS) {
            snprintf(err, errlen, "plugin.config.fields must be an array of 1..%d field names (line %d)",
                     XMC_STAGE_MAX_FIELDS, (int)config_setting_source_line(fields));
            return -1;
        }
        c->n_fields = 0;
        for (int i = 0; i < n; i++) {
            const char *name = config_setting_get_string_elem(fields, i);
            int id = name ? xmc_stage_field_id(name) : -1;
            if (id < 0) {
                snprintf(err, errlen, "plugin.config.fields: unknown field \"%s\" (line %d; known: title, "
                         "description, brand, attributes)", name ? name : "?", (int)config_setting_source_line(fields));
                return -1;
            }
            c->fields[c->n_fields++] = id;
        }
    }
    return 0;
}

/* ABI 3: the config as create() reads it, nothing opened. */
static int xmc_stage_check_config(const config_setting_t *cfg, char *err, size_t errlen)
{
    xmc_stage_conf c;
    return xmc_stage_read_config(cfg, &c, err, errlen);
}

static void xmc_stage_destroy(xmc_stage_instance *inst)
{
    if (!inst) return;
    xmc_workspace_free(inst->ws);
    xmc_stage_model_unref(inst->ws_model);
    xmc_stage_model_unref(inst->model);
    pthread_mutex_destroy(&inst->lock);
    pthread_mutex_destroy(&inst->load_lock);
    free(inst->text);
    free(inst->arena);
    free(inst->offs);
    free(inst->pend);
    free(inst->btext);
    free(inst->bptr);
    free(inst->blen);
    free(inst->counts);
    free(inst->bhits);
    free(inst);
}

static xmc_stage_instance *xmc_stage_create(const config_setting_t *cfg, char *err, size_t errlen)
{
    xmc_stage_instance *inst = calloc(1, sizeof *inst);
    if (!inst) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&inst->lock, NULL);
    pthread_mutex_init(&inst->load_lock, NULL);
    if (xmc_stage_read_config(cfg, &inst->conf, err, errlen) != 0) goto fail;
    char version[XMC_STAGE_VERSION_MAX], dir[1200];
    xmc_error xerr;
    if (xmc_repo_current(inst->conf.repo, version, sizeof version, &xerr) != XMC_OK) {
        snprintf(err, errlen, "no model to serve in %s: %s", inst->conf.repo, xerr.msg);
        goto fail;
    }
    snprintf(dir, sizeof dir, "%s/%s", inst->conf.repo, version);
    char lerr[512];
    if (xmc_stage_load(inst, dir, lerr, sizeof lerr) < 0) {
        snprintf(err, errlen, "model %s refused: %s", dir, lerr);
        goto fail;
    }
    return inst;
fail:
    xmc_stage_destroy(inst);
    return NULL;
}

/* ---- process -------------------------------------------------------------------------------------------- */

static int xmc_stage_reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int xmc_stage_append(xmc_stage_instance *inst, size_t *len, const char *s)
{
    size_t sl = strlen(s);
    if (!sl) return 0;
    size_t sep = *len ? 2 : 0;
    if (xmc_stage_reserve((void **)&inst->text, &inst->text_cap, *len + sep + sl + 1, 1)) return -1;
    if (sep) memcpy(inst->text + *len, ". ", 2);
    memcpy(inst->text + *len + sep, s, sl);
    *len += sep + sl;
    inst->text[*len] = 0;
    return 0;
}

/* Joins the configured fields of p into inst->text; returns the length or -1 (no memory). */
static long xmc_stage_text(xmc_stage_instance *inst, const Xmc__V1__Product *p)
{
    size_t len = 0;
    if (xmc_stage_reserve((void **)&inst->text, &inst->text_cap, 1, 1)) return -1;
    inst->text[0] = 0;
    for (int f = 0; f < inst->conf.n_fields; f++) {
        int rc = 0;
        switch (inst->conf.fields[f]) {
        case XMC_STAGE_F_TITLE: rc = xmc_stage_append(inst, &len, p->title); break;
        case XMC_STAGE_F_DESCRIPTION: rc = xmc_stage_append(inst, &len, p->description); break;
        case XMC_STAGE_F_BRAND: rc = xmc_stage_append(inst, &len, p->brand); break;
        case XMC_STAGE_F_ATTRIBUTES:
            for (size_t i = 0; i < p->n_attributes && !rc; i++) rc = xmc_stage_append(inst, &len, p->attributes[i]->value);
            break;
        }
        if (rc) return -1;
    }
    return (long)len;
}

static void xmc_stage_fail(xmc_stage_instance *inst, xmc_stage_out *out, const char *code, const char *fmt,
                           const char *detail)
{
    out->kind = XMC_STAGE_OUT_ERROR;
    snprintf(out->code, sizeof out->code, "%s", code);
    snprintf(out->message, sizeof out->message, fmt, detail);
    atomic_fetch_add(&inst->errors, 1);
}

/* Makes sure the workspace belongs to model. Returns 0 or -1. */
static int xmc_stage_workspace(xmc_stage_instance *inst, xmc_stage_model *model)
{
    if (inst->ws_model != model) {
        xmc_workspace_free(inst->ws);
        inst->ws = NULL;
        xmc_stage_model_unref(inst->ws_model);
        inst->ws_model = NULL;
        xmc_error xerr;
        if (xmc_workspace_new(model->clf, &inst->ws, &xerr) != XMC_OK) return -1;
        atomic_fetch_add(&model->refs, 1);
        inst->ws_model = model;
    }
    return 0;
}

/* Phase 1 of process(): checks and decodes record i and appends its joined text to the batch's texts. Returns
 * 1 when the record waits for classification (inst->pend[inst->n_pend - 1]), 0 when it failed (out[i] says why). */
static int xmc_stage_decode(xmc_stage_instance *inst, const xmc_stage_in *in, size_t i, xmc_stage_out *out)
{
    char detail[64];
    if (in->value_len > inst->conf.max_record_bytes) {
        snprintf(detail, sizeof detail, "%zu bytes > max_record_bytes %zu", in->value_len, inst->conf.max_record_bytes);
        xmc_stage_fail(inst, out, "TOO_LARGE", "record of %s", detail);
        return 0;
    }
    if (in->value_len == 0) {
        xmc_stage_fail(inst, out, "DECODE", "empty record (0 bytes)%s", "");
        return 0;
    }
    Xmc__V1__Product *p = xmc__v1__product__unpack(NULL, in->value_len, in->value);
    if (!p) {
        xmc_stage_fail(inst, out, "DECODE", "not a valid xmc.v1.Product protobuf%s", "");
        return 0;
    }
    if (!p->id || !*p->id) {
        xmc__v1__product__free_unpacked(p, NULL);
        xmc_stage_fail(inst, out, "DECODE", "product has no id%s", "");
        return 0;
    }
    long text_len = xmc_stage_text(inst, p);
    if (text_len < 0 || xmc_stage_reserve((void **)&inst->btext, &inst->btext_cap, inst->btext_used + (size_t)text_len + 1, 1)) {
        xmc__v1__product__free_unpacked(p, NULL);
        xmc_stage_fail(inst, out, "NOMEM", "%s", "out of memory joining the text fields");
        return 0;
    }
    xmc_stage_pending *q = &inst->pend[inst->n_pend++];
    q->product = p;
    q->record = i;
    q->off = inst->btext_used;
    q->len = (size_t)text_len;
    memcpy(inst->btext + inst->btext_used, inst->text, (size_t)text_len + 1);
    inst->btext_used += (size_t)text_len + 1;
    return 1;
}

/* Phase 3 of process(): the LabeledProduct of a classified record, packed into the arena. */
static void xmc_stage_encode(xmc_stage_instance *inst, xmc_stage_model *model, const xmc_stage_pending *q,
                             const xmc_hit *hits, uint32_t nh, Xmc__V1__Label *labels, Xmc__V1__Label **label_ptrs,
                             int64_t now_ms, size_t *used, xmc_stage_out *out)
{
    Xmc__V1__LabeledProduct lp = XMC__V1__LABELED_PRODUCT__INIT;
    lp.product_id = q->product->id;
    lp.product = inst->conf.include_product ? q->product : NULL;
    for (uint32_t h = 0; h < nh; h++) {
        xmc__v1__label__init(&labels[h]);
        labels[h].id = hits[h].label;
        labels[h].name = (char *)xmc_classifier_label_name(model->clf, hits[h].label);
        if (!labels[h].name) labels[h].name = "";
        labels[h].score = hits[h].score;
        label_ptrs[h] = &labels[h];
    }
    lp.n_labels = nh;
    lp.labels = label_ptrs;
    lp.model_version = model->version;
    lp.classified_at_ms = now_ms;
    size_t size = xmc__v1__labeled_product__get_packed_size(&lp);
    if (xmc_stage_reserve((void **)&inst->arena, &inst->arena_cap, *used + size + 1, 1) != 0) {
        xmc_stage_fail(inst, out, "NOMEM", "out of memory encoding the output%s", "");
        return;
    }
    xmc__v1__labeled_product__pack(&lp, inst->arena + *used);
    out->kind = XMC_STAGE_OUT_RECORD;
    out->value_len = size;
    inst->offs[q->record] = *used;
    *used += size;
}

/* Decodes every record, classifies all the decoded ones in one xmc_classify_batch (a model with an encoder embeds
 * them in batched forwards), then encodes the outputs. A failure of the batch call fails each of its records
 * with the library's message. */
static int xmc_stage_process(xmc_stage_instance *inst, const xmc_stage_in *in, size_t n, xmc_stage_out *out)
{
    xmc_stage_model *model = xmc_stage_acquire(inst); /* the whole batch runs on this version */
    if (!model) return -1;
    xmc_predict_opts opts = xmc_classifier_default_opts(model->clf);
    if (inst->conf.topk) opts.topk = inst->conf.topk;
    if (inst->conf.beam) opts.beam = inst->conf.beam;
    uint32_t stride = opts.topk ? opts.topk : 1;
    if (xmc_stage_workspace(inst, model) != 0 ||
        xmc_stage_reserve((void **)&inst->offs, &inst->offs_cap, n + 1, sizeof *inst->offs) != 0 ||
        xmc_stage_reserve((void **)&inst->pend, &inst->pend_cap, n + 1, sizeof *inst->pend) != 0 ||
        xmc_stage_reserve((void **)&inst->bptr, &inst->bptr_cap, n + 1, sizeof *inst->bptr) != 0 ||
        xmc_stage_reserve((void **)&inst->blen, &inst->blen_cap, n + 1, sizeof *inst->blen) != 0 ||
        xmc_stage_reserve((void **)&inst->counts, &inst->counts_cap, n + 1, sizeof *inst->counts) != 0 ||
        xmc_stage_reserve((void **)&inst->bhits, &inst->bhits_cap, (n + 1) * stride, sizeof *inst->bhits) != 0) {
        xmc_stage_model_unref(model);
        return -1;
    }
    Xmc__V1__Label *labels = calloc(stride, sizeof *labels);
    Xmc__V1__Label **label_ptrs = calloc(stride, sizeof *label_ptrs);
    if (!labels || !label_ptrs) {
        free(labels);
        free(label_ptrs);
        xmc_stage_model_unref(model);
        return -1;
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;

    uint64_t t0 = xmc_stage_now_ns();
    inst->n_pend = 0;
    inst->btext_used = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(out[i].model_version, sizeof out[i].model_version, "%s", model->version);
        inst->offs[i] = (size_t)-1;
        xmc_stage_decode(inst, &in[i], i, &out[i]);
    }
    for (size_t k = 0; k < inst->n_pend; k++) { /* btext may have moved while it grew: point into it only now */
        inst->bptr[k] = inst->btext + inst->pend[k].off;
        inst->blen[k] = inst->pend[k].len;
    }

    uint64_t t1 = xmc_stage_now_ns();
    xmc_error xerr;
    xmc_error_clear(&xerr);
    xmc_err rc = xmc_classify_batch(model->clf, inst->ws, inst->bptr, inst->blen, inst->n_pend, &opts, inst->bhits,
                                    stride, inst->counts, &xerr);

    uint64_t t2 = xmc_stage_now_ns();
    size_t used = 0;
    for (size_t k = 0; k < inst->n_pend; k++) {
        const xmc_stage_pending *q = &inst->pend[k];
        if (rc != XMC_OK) /* the batch as a whole failed (its texts are never NULL): the same reason for each */
            xmc_stage_fail(inst, &out[q->record], rc == XMC_ERR_NOMEM ? "NOMEM" : "CLASSIFY",
                           "the batch's classification failed: %s", xerr.msg);
        else
            xmc_stage_encode(inst, model, q, inst->bhits + k * stride, inst->counts[k], labels, label_ptrs, now_ms, &used,
                             &out[q->record]);
        xmc__v1__product__free_unpacked(q->product, NULL);
    }
    for (size_t i = 0; i < n; i++) /* the arena may have moved while it grew: point at it only now */
        if (out[i].kind == XMC_STAGE_OUT_RECORD) out[i].value = inst->arena + inst->offs[i];
    uint64_t t3 = xmc_stage_now_ns();
    free(labels);
    free(label_ptrs);
    atomic_fetch_add(&inst->records, n);
    atomic_fetch_add(&inst->decode_ns, t1 - t0);
    atomic_fetch_add(&inst->classify_ns, t2 - t1);
    atomic_fetch_add(&inst->encode_ns, t3 - t2);
    xmc_stage_model_unref(model);
    return 0;
}

static int xmc_stage_current_version(xmc_stage_instance *inst, char *buf, size_t size)
{
    xmc_stage_model *model = xmc_stage_acquire(inst);
    snprintf(buf, size, "%s", model ? model->version : "");
    xmc_stage_model_unref(model);
    return model ? 0 : -1;
}

static void xmc_stage_get_stats(xmc_stage_instance *inst, xmc_stage_stats *st)
{
    memset(st, 0, sizeof *st);
    st->records = atomic_load(&inst->records);
    st->errors = atomic_load(&inst->errors);
    st->loads = atomic_load(&inst->loads);
    st->refusals = atomic_load(&inst->refusals);
    st->classify_ns = atomic_load(&inst->classify_ns);
    st->decode_ns = atomic_load(&inst->decode_ns);
    st->encode_ns = atomic_load(&inst->encode_ns);
}

static int xmc_stage_model_repo(xmc_stage_instance *inst, char *buf, size_t size)
{
    snprintf(buf, size, "%s", inst->conf.repo);
    return 0;
}

XMC_STAGE_EXPORT const xmc_stage_api xmc_stage_plugin = {
    .abi_version = XMC_STAGE_ABI_VERSION,
    .name = "xmc",
    .create = xmc_stage_create,
    .process = xmc_stage_process,
    .load = xmc_stage_load,
    .current_version = xmc_stage_current_version,
    .stats = xmc_stage_get_stats,
    .destroy = xmc_stage_destroy,
    .model_repo = xmc_stage_model_repo,
    .check_config = xmc_stage_check_config,
};
