/* test_model.c: model directories: atomic write, CURRENT, mmap open, and refusal of damaged files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"
#include "xmc/xmc.h"

static char *write_version(const char *repo, const char *ver)
{
    xmci_model_writer *w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, ver, &w, &err), XMC_OK);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint64_t shape[2] = {2, 3};
    CU_ASSERT_EQUAL(xmci_writer_array(w, "a", XMCI_DT_F32, 2, shape, a, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_int(w, "tree.depth", 3, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_set_string(w, "featurizer.kind", "tfidf", &err), XMC_OK);
    char v[128];
    CU_ASSERT_EQUAL(xmci_writer_commit(w, 1, v, sizeof v, &err), XMC_OK);
    return strdup(v);
}

static void test_write_open(void)
{
    char *repo = tu_tmpdir();
    char *v = write_version(repo, "v1");
    CU_ASSERT_STRING_EQUAL(v, "v1");
    char cur[64];
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmc_repo_current(repo, cur, sizeof cur, &err), XMC_OK);
    CU_ASSERT_STRING_EQUAL(cur, "v1");
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(xmci_model_resolve(repo, dir, sizeof dir, &err), XMC_OK);
    xmci_bundle *b;
    CU_ASSERT_EQUAL_FATAL(xmci_bundle_open(dir, 1, &b, &err), XMC_OK);
    uint64_t shape[2];
    const void *data;
    CU_ASSERT_EQUAL(xmci_bundle_array(b, "a", XMCI_DT_F32, 2, shape, &data, &err), XMC_OK);
    CU_ASSERT_EQUAL(shape[0], 2);
    CU_ASSERT_EQUAL(shape[1], 3);
    CU_ASSERT_EQUAL(((const float *)data)[5], 6.0f);
    CU_ASSERT_EQUAL(xmci_bundle_array(b, "a", XMCI_DT_U32, 2, shape, &data, &err), XMC_ERR_SHAPE);
    CU_ASSERT_EQUAL(xmci_bundle_array(b, "nope", XMCI_DT_F32, 2, shape, &data, &err), XMC_ERR_NOTFOUND);
    long long depth;
    CU_ASSERT_EQUAL(xmci_bundle_get_int(b, "tree.depth", &depth, &err), XMC_OK);
    CU_ASSERT_EQUAL(depth, 3);
    const char *kind;
    CU_ASSERT_EQUAL(xmci_bundle_get_string(b, "featurizer.kind", &kind, &err), XMC_OK);
    CU_ASSERT_STRING_EQUAL(kind, "tfidf");
    xmci_bundle_close(b);
    /* no temporary directory left behind */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.tmp-v1", repo);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(tmp, &st), 0);
    /* the same version cannot be written twice */
    xmci_model_writer *w;
    CU_ASSERT_EQUAL(xmci_writer_begin(repo, "v1", &w, &err), XMC_ERR_ARG);
    free(v);
    tu_rmrf(repo);
    free(repo);
}

static void damage(const char *path, long off, int truncate_to)
{
    if (truncate_to >= 0) { CU_ASSERT_EQUAL(truncate(path, truncate_to), 0); return; }
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static void expect_open_fails(const char *what, long off, int truncate_to, xmc_err want, int verify)
{
    char *repo = tu_tmpdir();
    free(write_version(repo, "v1"));
    char path[4200];
    snprintf(path, sizeof path, "%s/v1/%s", repo, what);
    damage(path, off, truncate_to);
    snprintf(path, sizeof path, "%s/v1", repo);
    xmci_bundle *b = NULL;
    xmc_error err = {0};
    xmc_err rc = xmci_bundle_open(path, verify, &b, &err);
    CU_ASSERT_EQUAL(rc, want);
    if (rc != want) fprintf(stderr, "%s: got %s: %s\n", what, xmc_err_name(rc), err.msg);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT(strlen(err.msg) > 0);
    tu_rmrf(repo);
    free(repo);
}

static void test_damaged(void)
{
    expect_open_fails("a.bin", 70, -1, XMC_ERR_CORRUPT, 1);      /* bit flip in data: checksum */
    expect_open_fails("a.bin", 0, -1, XMC_ERR_CORRUPT, 0);       /* bad magic even without checksums */
    expect_open_fails("a.bin", 8, -1, XMC_ERR_VERSION, 0);       /* array format version */
    expect_open_fails("a.bin", 0, 40, XMC_ERR_CORRUPT, 0);       /* truncated */
    expect_open_fails("a.bin", 24, -1, XMC_ERR_CORRUPT, 0);      /* shape disagrees with size */
    expect_open_fails("manifest.cfg", 0, 10, XMC_ERR_CORRUPT, 1); /* truncated manifest: parse error */
}

static void test_missing(void)
{
    char *repo = tu_tmpdir();
    char dir[4096];
    xmc_error err = {0};
    CU_ASSERT_EQUAL(xmci_model_resolve(repo, dir, sizeof dir, &err), XMC_ERR_NOTFOUND);
    char p[4200];
    snprintf(p, sizeof p, "%s/CURRENT", repo);
    tu_write_file(p, "v9\n");
    CU_ASSERT_EQUAL(xmci_model_resolve(repo, dir, sizeof dir, &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "v9"));
    tu_write_file(p, "../etc\n");
    CU_ASSERT_EQUAL(xmci_model_resolve(repo, dir, sizeof dir, &err), XMC_ERR_CORRUPT);
    tu_rmrf(repo);
    free(repo);
}

/* Plain files copied into a version (an encoder's files): listed, checked like arrays, found by name. */
static void test_plain_files(void)
{
    char *repo = tu_tmpdir();
    char src[4200], p[4300];
    snprintf(src, sizeof src, "%s/src.txt", repo);
    tu_write_file(src, "plain bytes, no array header\n");
    xmci_model_writer *w;
    xmc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, "v1", &w, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_file(w, "x", "../x", src, &err), XMC_ERR_ARG);      /* outside the version */
    CU_ASSERT_EQUAL(xmci_writer_file(w, "x", "a/b/x", src, &err), XMC_ERR_ARG);     /* one directory at most */
    CU_ASSERT_EQUAL(xmci_writer_file(w, "x", "enc/x", "/nonexistent/x", &err), XMC_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xmci_writer_file(w, "enc.text", "enc/text.txt", src, &err), XMC_OK);
    float a[2] = {1, 2};
    uint64_t shape[1] = {2};
    CU_ASSERT_EQUAL(xmci_writer_array(w, "a", XMCI_DT_F32, 1, shape, a, &err), XMC_OK);
    CU_ASSERT_EQUAL_FATAL(xmci_writer_commit(w, 1, NULL, 0, &err), XMC_OK);
    snprintf(p, sizeof p, "%s/v1", repo);
    xmci_bundle *b;
    CU_ASSERT_EQUAL_FATAL(xmci_bundle_open(p, 1, &b, &err), XMC_OK);
    char path[4400];
    uint64_t size = 0;
    const void *data;
    CU_ASSERT_EQUAL(xmci_bundle_file(b, "enc.text", path, sizeof path, &size, &err), XMC_OK);
    CU_ASSERT_EQUAL(size, strlen("plain bytes, no array header\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(path, "/v1/enc/text.txt"));
    CU_ASSERT_EQUAL(xmci_bundle_array(b, "enc.text", XMCI_DT_U8, 1, shape, &data, &err), XMC_ERR_SHAPE);
    CU_ASSERT_EQUAL(xmci_bundle_file(b, "a", path, sizeof path, &size, &err), XMC_ERR_SHAPE);
    CU_ASSERT(xmci_bundle_has(b, "enc.text"));
    long long fv = 0;
    CU_ASSERT_EQUAL(xmci_bundle_get_int(b, "format_version", &fv, &err), XMC_OK);
    CU_ASSERT_EQUAL(fv, 2);
    xmci_bundle_close(b);
    /* a flipped byte: refused with verification, accepted (same size) without */
    snprintf(path, sizeof path, "%s/v1/enc/text.txt", repo);
    damage(path, 3, -1);
    b = NULL;
    CU_ASSERT_EQUAL(xmci_bundle_open(p, 1, &b, &err), XMC_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "enc/text.txt"));
    CU_ASSERT_EQUAL(xmci_bundle_open(p, 0, &b, &err), XMC_OK);
    xmci_bundle_close(b);
    damage(path, 0, 5); /* truncated: refused even without checksums */
    CU_ASSERT_EQUAL(xmci_bundle_open(p, 0, &b, &err), XMC_ERR_CORRUPT);
    /* an arrays-only version stays format 1; an abandoned version with a subdirectory leaves nothing */
    CU_ASSERT_EQUAL_FATAL(xmci_writer_begin(repo, "v2", &w, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_writer_file(w, "enc.text", "enc/text.txt", src, &err), XMC_OK);
    xmci_writer_abort(w);
    struct stat st;
    snprintf(p, sizeof p, "%s/.tmp-v2", repo);
    CU_ASSERT_NOT_EQUAL(stat(p, &st), 0);
    free(write_version(repo, "v3"));
    snprintf(p, sizeof p, "%s/v3", repo);
    CU_ASSERT_EQUAL_FATAL(xmci_bundle_open(p, 1, &b, &err), XMC_OK);
    CU_ASSERT_EQUAL(xmci_bundle_get_int(b, "format_version", &fv, &err), XMC_OK);
    CU_ASSERT_EQUAL(fv, 1);
    xmci_bundle_close(b);
    tu_rmrf(repo);
    free(repo);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("model", NULL, NULL);
    TU_ADD(s, test_write_open);
    TU_ADD(s, test_damaged);
    TU_ADD(s, test_missing);
    TU_ADD(s, test_plain_files);
    return tu_run(argc, argv);
}
