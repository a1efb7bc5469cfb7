/* fuzz_util.h: shared by the libFuzzer targets: write the input to a file in a per-process temp dir. */
#ifndef XMC_FUZZ_UTIL_H
#define XMC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[64];

__attribute__((unused)) static const char *fz_tmpdir(void)
{
    if (!fz_dir[0]) {
        snprintf(fz_dir, sizeof fz_dir, "/tmp/xmc-fuzz-%d", (int)getpid());
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", fz_dir, fz_dir);
        if (system(cmd) != 0) abort();
    }
    return fz_dir;
}

/* Writes data to <tmp>/<name> and returns the path (static buffer). */
__attribute__((unused)) static const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#ifdef XMC_FUZZ_SEED_MODEL
#include "train.h"
/* Trains the small model the loader and record targets damage or serve: 120 records, 12 labels, a tree of a
 * few layers, written as version `version` (NULL: generated) into repo. Aborts on failure. */
__attribute__((unused)) static void fz_seed_model(const char *repo, const char *version, char *out, size_t outlen)
{
    enum { N = 120, L = 12 };
    static char buf[N][64];
    const char *texts[N];
    size_t lens[N];
    xmci_csr y;
    xmc_error err;
    if (xmci_csr_alloc(&y, N, L, N, &err)) abort();
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "w%da w%db noise%d", i % L, i % L, i % 5);
        texts[i] = buf[i];
        lens[i] = strlen(buf[i]);
        y.indices[i] = (uint32_t)(i % L);
        y.data[i] = 1;
        y.indptr[i + 1] = (uint64_t)i + 1;
    }
    xmci_train_opts o;
    xmci_train_opts_default(&o);
    o.tree.max_leaf_size = 4;
    o.tree.nr_splits = 4;
    o.version = version;
    o.threads = 1;
    if (xmci_tfidf_config_parse(&o.tfidf, "word:1-2,min_df=1", &err)) abort();
    if (xmci_train(texts, lens, NULL, &y, NULL, &o, repo, out, outlen, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    xmci_csr_free(&y);
}
#endif

#endif
