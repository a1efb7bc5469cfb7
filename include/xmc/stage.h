/* stage.h: the versioned ABI between xmcd (which moves bytes between Kafka topics) and a stage plugin.
 *
 * A plugin is a shared object that exports exactly one symbol, `xmc_stage_plugin` (a const xmc_stage_api,
 * marked XMC_STAGE_EXPORT; build with -fvisibility=hidden and a version script so that nothing else of it,
 * such as a statically linked libxmc, is exported: plugin/xmc_stage.map). Its first field is the ABI version
 * it was built against. xmcd dlopen()s the plugin, reads abi_version before touching anything else and
 * refuses any version but its own, with a message naming both versions. Only plain data and opaque handles
 * cross this boundary: no libxmc, librdkafka or protobuf type appears here, so either side can be rebuilt
 * alone. Rules (librdkafka's ABI policy): never change a published field or signature; a new capability is
 * a new ABI version with fields appended at the end.
 *
 * Versions: 1 the functions up to destroy(); 2 adds model_repo(), from which xmcd learns the model repository
 * it watches (xmcd itself knows no plugin's configuration keys); 3 adds check_config(), so that
 * `xmcd --check-config` checks the plugin's keys too and a bad plugin config is a config error at start.
 *
 * Model repository: a directory of version directories and a one-line file CURRENT naming the version to
 * serve (DESIGN.md section 6). xmcd reads CURRENT with libxmc's parser (xmc_repo_current, xmc/xmc.h), and
 * when it names a version that is not serving hands <repo>/<version> to load().
 *
 * Threads: process() is called by one thread at a time per instance (xmcd's pipeline thread). load(),
 * current_version() and stats() may be called from another thread (xmcd's reload thread) while process()
 * runs; a plugin makes that safe. load() must do its slow work (open, verify, canaries) without blocking
 * process(), then swap atomically: a batch that started on the old model finishes on it.
 *
 * Records: each input gets exactly one output slot. An output is a record (bytes + optional key) for the
 * output topic, or an error (a short stable code such as "DECODE" or "TOO_LARGE" and a message), which xmcd
 * sends to the dead-letter topic with the original bytes. One bad record never fails its batch: process()
 * returns non-zero only when the instance itself cannot go on (then xmcd stops without committing the batch).
 *
 * Ownership: the daemon owns the inputs (valid during the call) and the config group handed to create() (valid
 * during create() only: copy what you keep). The plugin owns the bytes an output points to; they stay valid
 * until the next process() or destroy() on the same instance (xmcd copies them before that). */
#ifndef XMC_STAGE_H
#define XMC_STAGE_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_STAGE_ABI_VERSION 3
#define XMC_STAGE_SYMBOL "xmc_stage_plugin"
/* On the definition of xmc_stage_plugin: exported even when the plugin is built with -fvisibility=hidden. */
#define XMC_STAGE_EXPORT __attribute__((visibility("default")))

/* Sizes of the fixed text fields below (including the NUL). */
#define XMC_STAGE_CODE_MAX 32
#define XMC_STAGE_MSG_MAX 256
#define XMC_STAGE_VERSION_MAX 128

/* Opaque per-instance state, defined by each plugin. */
typedef struct xmc_stage_instance xmc_stage_instance;

/* One Kafka header of an input record (value may be NULL). */
typedef struct xmc_stage_header {
    const char *name;
    const void *value;
    size_t value_len;
} xmc_stage_header;

/* One input record. Strings and bytes are owned by the daemon and valid during process() only. */
typedef struct xmc_stage_in {
    const void *value;
    size_t value_len;
    const void *key; /* may be NULL */
    size_t key_len;
    const xmc_stage_header *headers;
    size_t n_headers;
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the record's Kafka timestamp, -1 if none */
} xmc_stage_in;

typedef enum xmc_stage_out_kind {
    XMC_STAGE_OUT_NONE = 0,   /* not filled: the daemon treats it as an error "NO_OUTPUT" */
    XMC_STAGE_OUT_RECORD = 1, /* value/key below go to the output topic */
    XMC_STAGE_OUT_ERROR = 2   /* code/message below; the input goes to the dead-letter topic */
} xmc_stage_out_kind;

/* One output slot; the daemon zeroes the array before process(). */
typedef struct xmc_stage_out {
    int kind; /* xmc_stage_out_kind */
    const void *value;
    size_t value_len;
    const void *key; /* NULL: keep the input's key */
    size_t key_len;
    char code[XMC_STAGE_CODE_MAX];             /* error: short stable code, upper case ("DECODE") */
    char message[XMC_STAGE_MSG_MAX];           /* error: human message */
    char model_version[XMC_STAGE_VERSION_MAX]; /* the model version that produced this slot ("" if none) */
} xmc_stage_out;

/* Counters a plugin reports; all cumulative since create(). */
typedef struct xmc_stage_stats {
    uint64_t records;       /* inputs processed */
    uint64_t errors;        /* outputs that were errors */
    uint64_t loads;         /* model versions swapped in (including the first) */
    uint64_t refusals;      /* model versions refused by load() */
    uint64_t classify_ns;   /* time spent classifying (excluding decode/encode) */
    uint64_t decode_ns;     /* time spent decoding inputs (the xmc plugin: protobuf and joining the text
                             * fields; its featurising is part of classify_ns) */
    uint64_t encode_ns;     /* time spent encoding outputs */
} xmc_stage_stats;

typedef struct xmc_stage_api {
    uint32_t abi_version; /* XMC_STAGE_ABI_VERSION the plugin was built with; always the first field */
    const char *name;     /* short name for logs */

    /* Creates an instance from the plugin's config group (may be NULL: defaults). On failure returns NULL
     * with err filled; nothing is left allocated. */
    xmc_stage_instance *(*create)(const config_setting_t *cfg, char *err, size_t errlen);

    /* Processes n inputs into n outputs (see the header comment). Returns 0, or -1 when the instance cannot
     * go on at all (no output of this call may then be used). */
    int (*process)(xmc_stage_instance *inst, const xmc_stage_in *in, size_t n, xmc_stage_out *out);

    /* Opens and verifies the model version directory model_dir, then swaps it in. Returns 0 when it is now
     * serving, 1 when it was already serving (nothing done), -1 when it was refused (err says why; the
     * previous version keeps serving). */
    int (*load)(xmc_stage_instance *inst, const char *model_dir, char *err, size_t errlen);

    /* Writes the serving model version into buf; returns 0, or -1 when no model is loaded (buf = ""). */
    int (*current_version)(xmc_stage_instance *inst, char *buf, size_t size);

    /* Fills st with the instance's counters. */
    void (*stats)(xmc_stage_instance *inst, xmc_stage_stats *st);

    /* Frees everything; inst may be NULL. No other call may be running. */
    void (*destroy)(xmc_stage_instance *inst);

    /* ---- ABI version 2 ---- */

    /* Writes the model repository the instance serves from (a path, as configured) into buf and returns 0,
     * or returns -1 with buf = "" when it follows none (xmcd then watches nothing). Called once, after
     * create(), before any other call. */
    int (*model_repo)(xmc_stage_instance *inst, char *buf, size_t size);

    /* ---- ABI version 3 ---- */

    /* Checks a config group (may be NULL) as create() would read it, opening nothing (no model, no file, no
     * thread): 0, or -1 with err filled (the key, its line, what is wrong). xmcd calls it for `--check-config`
     * and before create(): a config it refuses makes xmcd exit 2 (a config error, like its own keys), and a
     * create() that fails after it passed exits 1 (a run-time failure, such as a model that cannot be opened). */
    int (*check_config)(const config_setting_t *cfg, char *err, size_t errlen);
} xmc_stage_api;

#ifdef __cplusplus
}
#endif
#endif
