/* test_repo.c: repository upkeep (xmc/repo.h): listing, CURRENT set and rolled back (verified), pruning that
 * keeps CURRENT and leased versions, gate.txt written and read, and the lease of a dead process ignored. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"
#include "train.h"
#include "xmc/repo.h"
#include "xmc/xmc.h"

#define NDOC 200
#define NLAB 10

/* A small real model version (it opens, its canaries pass), so that verification has something to check. */
static void train_version(const char *repo, const char *name, int make_current)
{
    static const char *noise[] = {"new", "set", "pack", "blue"};
    char *texts[NDOC];
    size_t lens[NDOC];
    xmci_csr y;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_csr_alloc(&y, NDOC, NLAB, NDOC, &err), XMC_OK);
    for (int i = 0; i < NDOC; i++) {
        int l = i % NLAB;
        char buf[64];
        snprintf(buf, sizeof buf, "w%da w%db %s", l, l, noise[i % 4]);
        texts[i] = strdup(buf);
        lens[i] = strlen(buf);
        y.indices[i] = (uint32_t)l;
        y.data[i] = 1;
        y.indptr[i + 1] = (uint64_t)i + 1;
    }
    xmci_train_opts o;
    xmci_train_opts_default(&o);
    o.tree.max_leaf_size = 4;
    o.version = name;
    o.make_current = make_current;
    CU_ASSERT_EQUAL(xmci_tfidf_config_parse(&o.tfidf, "word:1-1,min_df=1", &err), XMC_OK);
    char v[128];
    CU_ASSERT_EQUAL(xmci_train((const char *const *)texts, lens, NULL, &y, NULL, &o, repo, v, sizeof v, NULL, &err), XMC_OK);
    for (int i = 0; i < NDOC; i++) free(texts[i]);
    xmci_csr_free(&y);
}

static void expect_current(const char *repo, const char *want)
{
    char cur[128] = "";
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmc_repo_current(repo, cur, sizeof cur, &err), XMC_OK);
    CU_ASSERT_STRING_EQUAL(cur, want);
}

/* Flips one byte of the file at path. */
static void damage(const char *path)
{
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
}

static void test_list_and_gate(void)
{
    char *repo = tu_tmpdir();
    xmc_error err = {0};
    train_version(repo, "v1", 1);
    train_version(repo, "v2", 0);
    xmc_gate_result g = {.passed = 0, .margin = 0.01, .held_out = 123, .new_p1 = 0.5, .new_p5 = 0.2, .new_r10 = 0.7,
                         .serving_p1 = 0.9, .serving_p5 = 0.3, .serving_r10 = 0.8};
    snprintf(g.serving, sizeof g.serving, "v1");
    snprintf(g.reason, sizeof g.reason, "P@1 0.5 below 0.9 - 0.01\nsecond line joined");
    CU_ASSERT_EQUAL(xmc_repo_gate_write(repo, "v2", &g, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmc_repo_gate_write(repo, "nope", &g, &err), XMC_ERR_NOTFOUND);
    xmc_gate_result back;
    CU_ASSERT_EQUAL_FATAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_OK);
    CU_ASSERT_EQUAL(back.passed, 0);
    CU_ASSERT_EQUAL(back.held_out, 123);
    CU_ASSERT_DOUBLE_EQUAL(back.new_p1, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(back.serving_r10, 0.8, 1e-12);
    CU_ASSERT_STRING_EQUAL(back.serving, "v1");
    CU_ASSERT_STRING_EQUAL(back.reason, "P@1 0.5 below 0.9 - 0.01 second line joined");
    CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v1", &back, &err), XMC_ERR_NOTFOUND);

    xmc_repo_version *v;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(xmc_repo_list(repo, &v, &n, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(v[0].name, "v1");
    CU_ASSERT_EQUAL(v[0].current, 1);
    CU_ASSERT_EQUAL(v[0].readable, 1);
    CU_ASSERT_EQUAL(v[0].n_docs, NDOC);
    CU_ASSERT_EQUAL(v[0].n_labels, NLAB);
    CU_ASSERT_STRING_EQUAL(v[0].featurizer, "tfidf");
    CU_ASSERT(v[0].bytes > 1000);
    CU_ASSERT(v[0].created > 1700000000);
    CU_ASSERT_EQUAL(v[0].has_gate, 0);
    CU_ASSERT_EQUAL(v[1].current, 0);
    CU_ASSERT_EQUAL(v[1].has_gate, 1);
    CU_ASSERT_EQUAL(v[1].gate.passed, 0);
    xmc_repo_list_free(v);

    /* a malformed gate file is a parse error naming its line; unknown keys are ignored */
    char path[4200];
    snprintf(path, sizeof path, "%s/v2/gate.txt", repo);
    CU_ASSERT_EQUAL(tu_write_file(path, "passed=1\nfuture.key=7\nnew.p1=abc\n"), 0);
    CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":3:"));
    CU_ASSERT_EQUAL(tu_write_file(path, "# c\nfuture.key=7\npassed=1\n"), 0);
    CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_OK);
    CU_ASSERT_EQUAL(back.passed, 1);
    /* a newer writer's long line is one ignored line, not several bad ones; held_out is a 64-bit count, read
     * exactly, and one out of range is a parse error, not a wrapped or zeroed number */
    {
        static char big[4096];
        size_t o = (size_t)snprintf(big, sizeof big, "passed=1\nfuture.notes=");
        memset(big + o, 'x', 1500);
        snprintf(big + o + 1500, sizeof big - o - 1500, "\nheld_out=12345678901234567\n");
        CU_ASSERT_EQUAL(tu_write_file(path, big), 0);
        CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_OK);
        CU_ASSERT_EQUAL(back.held_out, 12345678901234567ull);
        CU_ASSERT_EQUAL(tu_write_file(path, "passed=1\nheld_out=1e30\n"), 0);
        CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_ERR_PARSE);
        CU_ASSERT_EQUAL(tu_write_file(path, "passed=1\nheld_out=99999999999999999999\n"), 0);
        CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_ERR_PARSE);
        CU_ASSERT_EQUAL(tu_write_file(path, "passed=1\nheld_out=-3\n"), 0);
        CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "v2", &back, &err), XMC_ERR_PARSE);
        /* a version name that is a path is refused, as gate_write refuses it */
        CU_ASSERT_EQUAL(xmc_repo_gate_read(repo, "../v2", &back, &err), XMC_ERR_ARG);
        CU_ASSERT_EQUAL(xmc_repo_gate_write(repo, "v2", NULL, &err), XMC_ERR_ARG);
    }
    /* a directory without a manifest is not a version; an empty repository lists nothing */
    snprintf(path, sizeof path, "%s/notaversion", repo);
    mkdir(path, 0755);
    CU_ASSERT_EQUAL_FATAL(xmc_repo_list(repo, &v, &n, &err), XMC_OK);
    CU_ASSERT_EQUAL(n, 2);
    xmc_repo_list_free(v);
    CU_ASSERT_EQUAL(xmc_repo_list("/nonexistent/xmc-repo", &v, &n, &err), XMC_ERR_NOTFOUND);
    tu_rmrf(repo);
    free(repo);
}

static void test_rollback(void)
{
    char *repo = tu_tmpdir();
    xmc_error err = {0};
    char chosen[128];
    train_version(repo, "v1", 1);
    train_version(repo, "v2", 1);
    train_version(repo, "v3", 0); /* refused by its gate: never a rollback target */
    train_version(repo, "v4", 1);
    xmc_gate_result g = {.passed = 0};
    CU_ASSERT_EQUAL(xmc_repo_gate_write(repo, "v3", &g, &err), XMC_OK);
    expect_current(repo, "v4");
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, NULL, chosen, sizeof chosen, &err), XMC_OK);
    CU_ASSERT_STRING_EQUAL(chosen, "v2"); /* v3 skipped: its gate refused it */
    expect_current(repo, "v2");
    /* a damaged version is refused by name and skipped as "previous" */
    char path[4200];
    snprintf(path, sizeof path, "%s/v1/labels.freq.bin", repo);
    damage(path);
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, "v1", chosen, sizeof chosen, &err), XMC_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "v1 refused"));
    expect_current(repo, "v2");
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, NULL, chosen, sizeof chosen, &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "v1"));
    expect_current(repo, "v2");
    /* forward by name works too; a missing or badly named one is refused */
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, "v4", chosen, sizeof chosen, &err), XMC_OK);
    expect_current(repo, "v4");
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, "v9", chosen, sizeof chosen, &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xmc_repo_rollback(repo, "../x", chosen, sizeof chosen, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_repo_set_current(repo, "v3", 1, &err), XMC_OK); /* explicit publish: no gate check */
    expect_current(repo, "v3");
    /* no temporary CURRENT left behind */
    snprintf(path, sizeof path, "%s/.CURRENT.tmp-%d", repo, (int)getpid());
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    tu_rmrf(repo);
    free(repo);
}

static void removed_cb(void *ctx, const char *version)
{
    char *names = ctx;
    strcat(names, version);
    strcat(names, " ");
}

static void test_prune(void)
{
    char *repo = tu_tmpdir();
    xmc_error err = {0};
    for (int i = 1; i <= 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "v%d", i);
        train_version(repo, name, i == 2);
    }
    /* a live process (a child that waits) serves v3; a dead one "served" v4 */
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/serving.%d", repo, (int)child);
    CU_ASSERT_EQUAL(tu_write_file(path, "v3\n"), 0);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(path, sizeof path, "%s/serving.%d", repo, (int)dead);
    CU_ASSERT_EQUAL(tu_write_file(path, "v4\n"), 0);
    /* our own lease, through the API */
    CU_ASSERT_EQUAL(xmc_repo_lease(repo, "v5", &err), XMC_OK);
    /* a removal a crash interrupted */
    snprintf(path, sizeof path, "%s/.trash-v0", repo);
    mkdir(path, 0755);

    xmc_repo_version *v;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(xmc_repo_list(repo, &v, &n, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    CU_ASSERT_EQUAL(v[2].serving, 1); /* v3 */
    CU_ASSERT_EQUAL(v[3].serving, 0); /* v4: its process is gone */
    CU_ASSERT_EQUAL(v[4].serving, 1); /* v5: ours */
    xmc_repo_list_free(v);

    char names[256] = "";
    uint32_t removed = 99;
    CU_ASSERT_EQUAL(xmc_repo_prune(repo, 0, &removed, NULL, NULL, &err), XMC_ERR_ARG);
    CU_ASSERT_EQUAL(xmc_repo_prune(repo, 1, &removed, removed_cb, names, &err), XMC_OK);
    /* kept: v6 (newest), v2 (CURRENT), v3 (live lease), v5 (our lease) */
    CU_ASSERT_EQUAL(removed, 2);
    CU_ASSERT_STRING_EQUAL(names, "v1 v4 ");
    struct stat st;
    const char *gone[] = {"v1", "v4", ".trash-v0", ".trash-v1", ".trash-v4"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        snprintf(path, sizeof path, "%s/%s", repo, gone[i]);
        CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    }
    snprintf(path, sizeof path, "%s/serving.%d", repo, (int)dead);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0); /* the stale lease is gone */
    const char *kept[] = {"v2", "v3", "v5", "v6"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        snprintf(path, sizeof path, "%s/%s/manifest.cfg", repo, kept[i]);
        CU_ASSERT_EQUAL(stat(path, &st), 0);
    }
    /* once the leases are gone, the next prune takes v3 and v5 */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    xmc_repo_lease_drop(repo);
    CU_ASSERT_EQUAL(xmc_repo_prune(repo, 1, &removed, NULL, NULL, &err), XMC_OK);
    CU_ASSERT_EQUAL(removed, 2);
    CU_ASSERT_EQUAL_FATAL(xmc_repo_list(repo, &v, &n, &err), XMC_OK);
    CU_ASSERT_EQUAL(n, 2);
    if (n == 2) {
        CU_ASSERT_STRING_EQUAL(v[0].name, "v2");
        CU_ASSERT_STRING_EQUAL(v[1].name, "v6");
    }
    xmc_repo_list_free(v);
    expect_current(repo, "v2");
    tu_rmrf(repo);
    free(repo);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("repo", NULL, NULL);
    TU_ADD(s, test_list_and_gate);
    TU_ADD(s, test_rollback);
    TU_ADD(s, test_prune);
    return tu_run(argc, argv);
}
