/* fuzz_record.c: the stage plugin's record path (protobuf decode, featurise, classify, encode) on arbitrary
 * record bytes (RELIABILITY R17): every input gets exactly one slot, a record or an error with a code (its DLQ
 * reason); never a crash. The first input byte splits the rest into a micro-batch of up to 8 records. */
#include <libconfig.h>

#define XMC_FUZZ_SEED_MODEL
#include "fuzz_util.h"
#include "xmc/stage.h"

extern const xmc_stage_api xmc_stage_plugin;
static xmc_stage_instance *inst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char repo[256], v[64];
    snprintf(repo, sizeof repo, "%s/models", fz_tmpdir());
    fz_seed_model(repo, NULL, v, sizeof v);
    config_t cfg;
    config_init(&cfg);
    config_setting_t *root = config_root_setting(&cfg);
    config_setting_set_string(config_setting_add(root, "model_repo", CONFIG_TYPE_STRING), repo);
    config_setting_set_int(config_setting_add(root, "max_record_bytes", CONFIG_TYPE_INT), 2000);
    char e[512];
    inst = xmc_stage_plugin.create(root, e, sizeof e);
    if (!inst) { fprintf(stderr, "create: %s\n", e); abort(); }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", repo, v);
    if (xmc_stage_plugin.load(inst, dir, e, sizeof e) < 0) { fprintf(stderr, "load: %s\n", e); abort(); }
    config_destroy(&cfg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = (size_t)(data[0] % 8) + 1;
    xmc_stage_in in[8];
    xmc_stage_out out[8];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    size_t rest = size - 1, chunk = rest / n;
    for (size_t i = 0; i < n; i++) {
        in[i].value = data + 1 + i * chunk;
        in[i].value_len = i + 1 == n ? rest - i * chunk : chunk;
        in[i].topic = "products";
        in[i].offset = (int64_t)i;
        in[i].timestamp_ms = -1;
    }
    if (xmc_stage_plugin.process(inst, in, n, out) != 0) abort();
    for (size_t i = 0; i < n; i++) {
        if (out[i].kind == XMC_STAGE_OUT_ERROR) {
            if (!out[i].code[0]) abort(); /* a rejected record must carry its DLQ reason */
        } else if (out[i].kind != XMC_STAGE_OUT_RECORD) {
            abort();
        }
    }
    return 0;
}
