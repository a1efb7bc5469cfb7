/* fuzz_model.c: opening a model version whose manifest or one array file is replaced by arbitrary bytes
 * (RELIABILITY R18, model header reader). The first input byte picks the file; checksums are off for half the
 * inputs so that damaged contents reach the structure checks. Either an error, or a model that classifies. */
#include <sys/stat.h>

#define XMC_FUZZ_SEED_MODEL
#include "fuzz_util.h"
#include "xmc/xmc.h"

static char seed_dir[256];
static const char *const files[] = {"manifest.cfg", "xl.0.child_ptr.bin", "xl.1.chunk_ptr.bin", "xl.1.row_feat.bin",
                                    "xl.1.row_ptr.bin", "xl.1.ent_child.bin", "labels.offsets.bin", "labels.names.bin",
                                    "tfidf.table.bin", "tfidf.offsets.bin", "canary.offsets.bin", "CURRENT"};
#define NFILES (sizeof files / sizeof files[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char v[64];
    snprintf(seed_dir, sizeof seed_dir, "%s/seed", fz_tmpdir());
    fz_seed_model(seed_dir, "v", v, sizeof v);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *file = files[data[0] % NFILES];
    int verify = (data[0] / NFILES) & 1;
    char cmd[1024], path[512], repo[300];
    snprintf(repo, sizeof repo, "%s/r", fz_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", repo, seed_dir, repo);
    if (system(cmd) != 0) abort();
    snprintf(path, sizeof path, "%s/%s%s", repo, strcmp(file, "CURRENT") ? "v/" : "", file);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    fclose(f);
    xmc_classifier *clf = NULL;
    xmc_error err;
    xmc_open_opts oo = {verify, 1};
    if (xmc_classifier_open(repo, &oo, &clf, &err) == XMC_OK) {
        xmc_workspace *ws;
        if (xmc_workspace_new(clf, &ws, &err) == XMC_OK) {
            xmc_hit hits[8];
            uint32_t n;
            xmc_predict_opts po = {4, 8, -1};
            (void)xmc_classify_text(clf, ws, "w3a w3b", 7, &po, hits, &n, &err);
            xmc_workspace_free(ws);
        }
        xmc_classifier_close(clf);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
