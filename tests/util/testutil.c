/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dir + "/tests/data" if that is a directory holding the fixtures' README. */
static int try_root(const char *dir, char *out, size_t size)
{
    char readme[4200];
    struct stat st;
    snprintf(out, size, "%s%stests/data", dir, *dir ? "/" : "");
    snprintf(readme, sizeof readme, "%s/README.md", out);
    return stat(out, &st) == 0 && S_ISDIR(st.st_mode) && stat(readme, &st) == 0 && S_ISREG(st.st_mode);
}

const char *tu_data_dir(void)
{
    static char buf[4096];
    /* the suites run from the repository root (tests/run.sh); else walk up from the binary, build/tests/test_x */
    if (try_root("", buf, sizeof buf)) return buf;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    for (char *slash = strrchr(exe, '/'); slash && slash != exe; slash = strrchr(exe, '/')) {
        *slash = 0;
        if (try_root(exe, buf, sizeof buf)) return buf;
    }
    return NULL;
}

const char *tu_data(const char *rel)
{
    static char buf[8192];
    const char *d = tu_data_dir();
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "tests/data", rel);
    return buf;
}

char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/xmc-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void tu_rmrf(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

int tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

char *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1))) {
        if (fread(b, 1, (size_t)n, f) == (size_t)n) {
            b[n] = 0;
            *size = (size_t)n;
        } else {
            free(b);
            b = NULL;
        }
    }
    fclose(f);
    return b;
}

float *tu_read_dense(const char *path, int *rows, int *cols)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    float *m = NULL;
    if (fscanf(f, "%d %d", rows, cols) == 2 && *rows > 0 && *cols > 0) {
        m = malloc((size_t)*rows * (size_t)*cols * sizeof *m);
        for (size_t i = 0; m && i < (size_t)*rows * (size_t)*cols; i++)
            if (fscanf(f, "%f", &m[i]) != 1) { free(m); m = NULL; }
    }
    fclose(f);
    return m;
}

int tu_csr_from_dense(xmci_csr *m, uint32_t rows, uint32_t cols, const float *dense)
{
    xmc_error err = {0};
    uint64_t nnz = 0;
    for (uint64_t i = 0; i < (uint64_t)rows * cols; i++) nnz += dense[i] != 0;
    if (xmci_csr_alloc(m, rows, cols, nnz, &err)) return -1;
    uint64_t q = 0;
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t c = 0; c < cols; c++) {
            float v = dense[(uint64_t)r * cols + c];
            if (v != 0) { m->indices[q] = c; m->data[q] = v; q++; }
        }
        m->indptr[r + 1] = q;
    }
    return 0;
}

int tu_run(int argc, char **argv)
{
    CU_basic_set_mode(CU_BRM_NORMAL);
    int rc;
    if (argc > 1) {
        CU_pSuite s = CU_get_suite(argv[1]);
        if (!s) { fprintf(stderr, "no suite %s\n", argv[1]); CU_cleanup_registry(); return 2; }
        rc = CU_basic_run_suite(s);
    } else {
        rc = CU_basic_run_tests();
    }
    (void)rc;
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    unsigned tfailed = CU_get_number_of_tests_failed();
    /* a suite whose set-up failed ran none of its tests: that is a failure, not "0 tests, all passed" */
    unsigned sfailed = CU_get_number_of_suites_failed();
    printf("XMC-SUITE-RESULT %u %u\n", run - tfailed, tfailed + sfailed);
    CU_cleanup_registry();
    return failed || sfailed ? 1 : 0;
}
