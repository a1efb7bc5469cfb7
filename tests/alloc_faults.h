/* alloc_faults.h: RELIABILITY R19's fault injector and sweep, shared by tests/test_alloc_faults.c (libxmc, the
 * stage plugin) and tests/test_xmcd_alloc_faults.c (xmcd's own modules).
 *
 * How: the Makefile links such a suite with GNU ld's --wrap for the allocation calls (malloc, calloc, realloc,
 * strdup, getline's first buffer and its growth; pthread_create counts with them) and the reads (fopen, fread, getline, open,
 * fstat, stat, mmap, realpath, jansson's json_load*). --wrap redirects only references from the objects of that
 * static link (libxmc.a, the objects it names and the suite itself); libc's and other shared libraries' own calls
 * are not reached (libconfig's parser, protobuf-c's decoder, OpenBLAS, librdkafka, a dlopen()ed plugin). While an
 * operation runs, the wrappers count the calls of one class and fail call N: an allocation gives NULL (ENOMEM), a
 * read NULL / -1 / MAP_FAILED (EIO), fread and getline with the stream's error flag set. All fault state lives
 * here; the code under test knows nothing of it.
 *
 * A sweep runs the operation unharmed to count its calls K of a class, then for N = 1..K with call N failing,
 * then again with call N and every later one failing ("N+" in the messages: error paths that allocate). Each run
 * must give an error with a message (whose code, where a library call reported one, names the failure: an
 * allocation XMC_ERR_NOMEM, a read XMC_ERR_IO or NOTFOUND), or a result equal to the unharmed one; anything else
 * fails with the sweep, N, the call and its site. Leaks are found in every build mode: while a step runs the
 * wrappers keep a table of the blocks and mappings the linked code made, and what is left after the step is
 * reported with the allocating call site (addr2line -e build/tests/<suite> ADDR); open file descriptors are
 * counted before and after each step. af_sweep_opts() narrows a sweep: some classes only, call N only, a
 * sample of N for slow operations (the first call of each call site, K, and calls spread over 1..K), and loose
 * counting for operations whose calls depend on timing (a run in which call N did not come is not a failure).
 * XMC_AF_VERBOSE=1 prints every step's outcome.
 *
 * Header-only (the wrappers are external definitions): include it from exactly one .c of a program that is
 * linked with the --wrap flags (FAULT_WRAP in the Makefile). */
#ifndef XMC_ALLOC_FAULTS_H
#define XMC_ALLOC_FAULTS_H

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xmc/xmc.h"

/* ==== the fault injector ================================================================================ */

enum { AF_ALLOC, AF_IO, AF_NCLASS };
static const char *const af_class_name[AF_NCLASS] = {"alloc", "read"};

static struct {
    atomic_int on;        /* the operation under test is running: count (and maybe fail) calls */
    int cls;              /* the class counted */
    long fail_at;         /* the call to fail, 1-based; 0: none */
    int sticky;           /* fail every later call of the class too */
    atomic_long calls;    /* calls of the class since af_on() */
    atomic_long injected; /* failures injected */
    const char *fn;       /* the first wrapper that failed, and where it was called from */
    void *site;
    int code;             /* the xmc_err a library call reported (lib_error), -1 if none */
    atomic_int tracking;  /* record allocations and mappings in af_tab */
} af;

static void af_on(void) { atomic_store(&af.on, 1); }
static void af_off(void) { atomic_store(&af.on, 0); }

/* The call sites of an unharmed run's calls, in order (for sampled sweeps: every site gets its turn). */
#define AF_SEQ_MAX 4096
static void *af_seq[AF_SEQ_MAX];

static int af_fail(int cls, const char *fn, void *site)
{
    if (!atomic_load(&af.on) || cls != af.cls) return 0;
    long n = atomic_fetch_add(&af.calls, 1) + 1;
    if (!af.fail_at && n <= AF_SEQ_MAX) af_seq[n - 1] = site;
    if (!af.fail_at || n < af.fail_at || (n > af.fail_at && !af.sticky)) return 0;
    if (atomic_fetch_add(&af.injected, 1) == 0) {
        af.fn = fn;
        af.site = site;
    }
    return 1;
}

/* Live blocks and mappings made by this link's code during a sweep step: open addressing on the address. */
#define AF_SLOTS (1u << 14)
#define AF_TOMB ((uintptr_t)1)
typedef struct {
    uintptr_t p;
    void *site;
    int map; /* an mmap, not a heap block */
} af_slot;
static af_slot af_tab[AF_SLOTS];
static long af_live, af_used;
static atomic_flag af_lock = ATOMIC_FLAG_INIT;

static size_t af_hash(uintptr_t p) { return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull >> 47) & (AF_SLOTS - 1); }

static void af_track(void *p, void *site, int map)
{
    if (!p || !atomic_load(&af.tracking)) return;
    while (atomic_flag_test_and_set(&af_lock)) {}
    if (af_used >= (long)AF_SLOTS * 3 / 4) {
        fprintf(stderr, "test_alloc_faults: allocation table full\n");
        abort();
    }
    size_t i = af_hash((uintptr_t)p);
    while (af_tab[i].p > AF_TOMB) i = (i + 1) & (AF_SLOTS - 1);
    if (af_tab[i].p == 0) af_used++;
    af_tab[i] = (af_slot){(uintptr_t)p, site, map};
    af_live++;
    atomic_flag_clear(&af_lock);
}

static void af_untrack(void *p)
{
    if (!p || !atomic_load(&af.tracking)) return;
    while (atomic_flag_test_and_set(&af_lock)) {}
    for (size_t i = af_hash((uintptr_t)p); af_tab[i].p; i = (i + 1) & (AF_SLOTS - 1))
        if (af_tab[i].p == (uintptr_t)p) {
            af_tab[i].p = AF_TOMB;
            af_live--;
            break;
        }
    atomic_flag_clear(&af_lock);
}

/* A code address as an offset into its object (what addr2line takes for a PIE). */
static void af_where(void *site, char *buf, size_t size)
{
    Dl_info di;
    if (site && dladdr(site, &di) && di.dli_fname)
        snprintf(buf, size, "%s+0x%lx", strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname,
                 (unsigned long)((uintptr_t)site - (uintptr_t)di.dli_fbase));
    else
        snprintf(buf, size, "%p", site);
}

#define AF_SITE __builtin_return_address(0)

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
FILE *__real_fopen(const char *path, const char *mode);
size_t __real_fread(void *buf, size_t size, size_t n, FILE *f);
ssize_t __real_getline(char **line, size_t *cap, FILE *f);
ssize_t __real___getdelim(char **line, size_t *cap, int delim, FILE *f);
int __real_open(const char *path, int flags, ...);
int __real_fstat(int fd, struct stat *st);
int __real_stat(const char *path, struct stat *st);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
char *__real_realpath(const char *path, char *resolved);
json_t *__real_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *__real_json_load_file(const char *path, size_t flags, json_error_t *error);
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);
FILE *__wrap_fopen(const char *path, const char *mode);
size_t __wrap_fread(void *buf, size_t size, size_t n, FILE *f);
ssize_t __wrap_getline(char **line, size_t *cap, FILE *f);
ssize_t __wrap___getdelim(char **line, size_t *cap, int delim, FILE *f);
int __wrap_open(const char *path, int flags, ...);
int __wrap_fstat(int fd, struct stat *st);
int __wrap_stat(const char *path, struct stat *st);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
char *__wrap_realpath(const char *path, char *resolved);
json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t n)
{
    if (af_fail(AF_ALLOC, "malloc", AF_SITE)) { errno = ENOMEM; return NULL; }
    void *p = __real_malloc(n);
    af_track(p, AF_SITE, 0);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (af_fail(AF_ALLOC, "calloc", AF_SITE)) { errno = ENOMEM; return NULL; }
    void *p = __real_calloc(n, size);
    af_track(p, AF_SITE, 0);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (af_fail(AF_ALLOC, "realloc", AF_SITE)) { errno = ENOMEM; return NULL; }
    void *q = __real_realloc(p, n);
    if (q || !n) af_untrack(p);
    af_track(q, AF_SITE, 0);
    return q;
}

char *__wrap_strdup(const char *s)
{
    if (af_fail(AF_ALLOC, "strdup", AF_SITE)) { errno = ENOMEM; return NULL; }
    char *p = __real_strdup(s);
    af_track(p, AF_SITE, 0);
    return p;
}

void __wrap_free(void *p)
{
    af_untrack(p);
    __real_free(p);
}

/* A read error as the stream reports it: ferror() true (glibc's flag; the wrappers run only on glibc). */
static void af_stream_error(FILE *f)
{
    f->_flags |= _IO_ERR_SEEN;
    errno = EIO;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    if (af_fail(AF_IO, "fopen", AF_SITE)) { errno = EIO; return NULL; }
    return __real_fopen(path, mode);
}

size_t __wrap_fread(void *buf, size_t size, size_t n, FILE *f)
{
    if (af_fail(AF_IO, "fread", AF_SITE)) { af_stream_error(f); return 0; }
    return __real_fread(buf, size, n, f);
}

/* getline() grows *line with libc's own realloc: keep the table in step with it. */
static ssize_t af_getdelim(char **line, size_t *cap, int delim, FILE *f, const char *fn, void *site)
{
    /* its first call allocates the buffer: failing that is what glibc does when its malloc fails */
    if (!*line && af_fail(AF_ALLOC, fn, site)) { errno = ENOMEM; return -1; }
    if (af_fail(AF_IO, fn, site)) { af_stream_error(f); return -1; }
    char *old = *line;
    ssize_t r = __real___getdelim(line, cap, delim, f);
    if (*line != old) {
        af_untrack(old);
        af_track(*line, site, 0);
        /* a line that grew the buffer: failing that growth is glibc's ENOMEM mid-line, the stream's error flag
         * not set and the line's start consumed */
        if (old && af_fail(AF_ALLOC, fn, site)) { errno = ENOMEM; return -1; }
    }
    return r;
}

ssize_t __wrap_getline(char **line, size_t *cap, FILE *f) { return af_getdelim(line, cap, '\n', f, "getline", AF_SITE); }

ssize_t __wrap___getdelim(char **line, size_t *cap, int delim, FILE *f)
{
    return af_getdelim(line, cap, delim, f, "getline", AF_SITE);
}

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (af_fail(AF_IO, "open", AF_SITE)) { errno = EIO; return -1; }
    return __real_open(path, flags, mode);
}

int __wrap_fstat(int fd, struct stat *st)
{
    if (af_fail(AF_IO, "fstat", AF_SITE)) { errno = EIO; return -1; }
    return __real_fstat(fd, st);
}

int __wrap_stat(const char *path, struct stat *st)
{
    if (af_fail(AF_IO, "stat", AF_SITE)) { errno = EIO; return -1; }
    return __real_stat(path, st);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (af_fail(AF_IO, "mmap", AF_SITE)) { errno = ENOMEM; return MAP_FAILED; }
    void *p = __real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED) af_track(p, AF_SITE, 1);
    return p;
}

int __wrap_munmap(void *addr, size_t len)
{
    af_untrack(addr);
    return __real_munmap(addr, len);
}

char *__wrap_realpath(const char *path, char *resolved)
{
    if (af_fail(AF_IO, "realpath", AF_SITE)) { errno = EIO; return NULL; }
    char *r = __real_realpath(path, resolved);
    if (!resolved) af_track(r, AF_SITE, 0);
    return r;
}

static json_t *af_json_fail(json_error_t *error)
{
    if (error) {
        memset(error, 0, sizeof *error);
        snprintf(error->text, sizeof error->text, "injected read error");
    }
    errno = EIO;
    return NULL;
}

json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    if (af_fail(AF_IO, "json_loadb", AF_SITE)) return af_json_fail(error);
    return __real_json_loadb(buf, len, flags, error);
}

json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error)
{
    if (af_fail(AF_IO, "json_load_file", AF_SITE)) return af_json_fail(error);
    return __real_json_load_file(path, flags, error);
}

/* A thread is a resource too: counted with the allocations. */
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (af_fail(AF_ALLOC, "pthread_create", AF_SITE)) return EAGAIN;
    return __real_pthread_create(th, attr, fn, arg);
}

/* ==== sweeps ============================================================================================== */

/* What one run of an operation gave. An operation sets up what it needs, calls af_on() just before the call
 * under test and af_off() just after, checks the outcome (a success must give the unharmed result: else
 * AF_WRONG, with what differed in msg; an error puts its message in msg) and releases everything. */
typedef enum { AF_OK, AF_ERROR, AF_WRONG } af_outcome;
typedef af_outcome (*af_op)(void *ctx, char *msg, size_t size);

typedef struct {
    long k[AF_NCLASS];            /* calls of each class in an unharmed run */
    long errors[AF_NCLASS][2];    /* runs that gave an error, failing call N only / N and every later one */
    long tolerated[AF_NCLASS][2]; /* runs that gave the unharmed result */
    long not_reached[AF_NCLASS];  /* loose sweeps: runs in which call N did not come */
    long bad;                     /* runs that broke a rule */
} af_result;

/* How to sweep (af_sweep_opts); all zero: every class, N = 1..K both ways, the calls repeatable. */
typedef struct {
    unsigned classes; /* bit (1u << class) per class swept; 0: every class */
    int loose;        /* the calls depend on timing (threads, a broker): a run in which call N did not come is
                       * counted as not reached instead of failing the sweep */
    long max_steps;   /* sample N: the first call of each call site of the unharmed run, and K, then calls spread
                       * evenly over 1..K up to this many in all; 0: every N */
    int once;         /* fail call N only, not also N and every later one */
} af_opts;

static int af_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void af_step_begin(int cls, long fail_at, int sticky)
{
    memset(af_tab, 0, sizeof af_tab);
    af_live = af_used = 0;
    af.cls = cls;
    af.fail_at = fail_at;
    af.sticky = sticky;
    atomic_store(&af.calls, 0);
    atomic_store(&af.injected, 0);
    af.fn = NULL;
    af.site = NULL;
    af.code = -1;
    atomic_store(&af.tracking, 1);
}

/* Ends a step; returns the blocks and mappings still live, each printed with its call site. */
static long af_step_end(const char *what, int cls, long n)
{
    atomic_store(&af.tracking, 0);
    af_off();
    long shown = 0;
    for (size_t i = 0; i < AF_SLOTS && af_live; i++)
        if (af_tab[i].p > AF_TOMB && shown++ < 8) {
            char where[256];
            af_where(af_tab[i].site, where, sizeof where);
            fprintf(stderr, "  %s, %s fault %ld: %s left by the call at %s\n", what, af_class_name[cls], n,
                    af_tab[i].map ? "mapping" : "block", where);
        }
    return af_live;
}

/* Whether a library error code says what failed: an allocation XMC_ERR_NOMEM, a read XMC_ERR_IO or
 * XMC_ERR_NOTFOUND; jansson's parsers cannot tell a read error from bad JSON, so theirs may say so. */
static int af_code_fits(int cls, const char *fn, int code)
{
    if (code < 0) return 1;
    if (fn && !strcmp(fn, "pthread_create")) return code == XMC_ERR_NOMEM || code == XMC_ERR_IO; /* tfidf.h: IO */
    if (cls == AF_ALLOC) return code == XMC_ERR_NOMEM;
    return code == XMC_ERR_IO || code == XMC_ERR_NOTFOUND || (fn && !strncmp(fn, "json_", 5));
}

/* The values of N a sampled sweep takes (max_steps < K), into want[1..k]: the first call of each site the
 * unharmed run called (af_seq), K, then evenly spread calls until max_steps are taken. Returns how many. */
static long af_sample(long k, long max_steps, char *want)
{
    long taken = 0;
    memset(want, 0, (size_t)k + 1);
    for (long n = 1; n <= k && n <= AF_SEQ_MAX; n++) {
        int first = 1;
        for (long m = 1; m < n && first; m++) first = af_seq[m - 1] != af_seq[n - 1];
        if (first) want[n] = 1, taken++;
    }
    if (!want[k]) want[k] = 1, taken++;
    for (long i = 0, m = max_steps; taken < max_steps && i < m; i++) {
        long n = m < 2 ? 1 : 1 + (i * (k - 1) + (m - 1) / 2) / (m - 1);
        if (!want[n]) want[n] = 1, taken++;
    }
    return taken;
}

static void af_sweep_opts(const char *what, af_op op, void *ctx, af_result *res, const af_opts *opts)
{
    static const af_opts all;
    if (!opts) opts = &all;
    memset(res, 0, sizeof *res);
    char msg[1024];
    int verbose = getenv("XMC_AF_VERBOSE") != NULL;
    for (int cls = 0; cls < AF_NCLASS; cls++) {
        if (opts->classes && !(opts->classes & (1u << cls))) continue;
        int fds = af_open_fds();
        af_step_begin(cls, 0, 0);
        msg[0] = 0;
        af_outcome r = op(ctx, msg, sizeof msg);
        long k = atomic_load(&af.calls);
        long leaked = af_step_end(what, cls, 0);
        if (r != AF_OK || leaked || af_open_fds() != fds) {
            fprintf(stderr, "  %s: the unharmed run failed (%s), %ld left live, fds %d -> %d\n", what, msg, leaked, fds,
                    af_open_fds());
            res->bad++;
            continue;
        }
        res->k[cls] = k;
        char *want = NULL;
        if (opts->max_steps > 0 && opts->max_steps < k) {
            want = malloc((size_t)k + 1);
            if (want) af_sample(k, opts->max_steps, want);
        }
        for (int sticky = 0; sticky <= !opts->once; sticky++) {
            for (long n = 1; n <= k; n++) {
                if (want && !want[n]) continue;
                fds = af_open_fds();
                af_step_begin(cls, n, sticky);
                msg[0] = 0;
                r = op(ctx, msg, sizeof msg);
                const char *fn = af.fn;
                void *site = af.site;
                long injected = atomic_load(&af.injected);
                leaked = af_step_end(what, cls, n);
                int fds_after = af_open_fds();
                if (opts->loose && injected < 1 && r != AF_WRONG && !leaked && fds_after == fds) {
                    res->not_reached[cls]++;
                    if (verbose)
                        fprintf(stderr, "  %s: %s fault %ld%s/%ld: not reached (%s)\n", what, af_class_name[cls], n,
                                sticky ? "+" : "", k, r == AF_ERROR ? msg : "same result");
                    continue;
                }
                const char *why = (!opts->loose && injected < 1) || (!sticky && injected > 1)
                                      ? "the fault did not happen (the calls are not repeatable)"
                                  : r == AF_WRONG                         ? "wrong outcome"
                                  : r == AF_ERROR && !msg[0]              ? "an error without a message"
                                  : r == AF_ERROR && !af_code_fits(cls, fn, af.code) ? "an error code that misnames the failure"
                                  : leaked                                ? "memory or a mapping leaked"
                                  : fds_after != fds                      ? "a file descriptor leaked"
                                                                          : NULL;
                char where[256];
                af_where(site, where, sizeof where);
                if (why) {
                    fprintf(stderr, "  %s: %s fault %ld%s/%ld (%s called at %s): %s: %s\n", what, af_class_name[cls], n,
                            sticky ? "+" : "", k, fn ? fn : "?", where, why, msg);
                    res->bad++;
                    continue;
                }
                if (r == AF_ERROR) res->errors[cls][sticky]++;
                else res->tolerated[cls][sticky]++;
                if (verbose)
                    fprintf(stderr, "  %s: %s fault %ld%s/%ld (%s at %s): %s\n", what, af_class_name[cls], n,
                            sticky ? "+" : "", k, fn ? fn : "?", where, r == AF_ERROR ? msg : "tolerated, same result");
            }
        }
        free(want);
    }
    printf("\n  %-36s", what);
    for (int cls = 0; cls < AF_NCLASS; cls++) {
        if (opts->classes && !(opts->classes & (1u << cls))) continue;
        printf(" %s K=%-3ld (%ld+%ld errors, %ld+%ld same result", af_class_name[cls], res->k[cls],
               res->errors[cls][0], res->errors[cls][1], res->tolerated[cls][0], res->tolerated[cls][1]);
        if (opts->loose) printf(", %ld not reached", res->not_reached[cls]);
        printf(")");
    }
    fflush(stdout);
}

static void af_sweep(const char *what, af_op op, void *ctx, af_result *res) { af_sweep_opts(what, op, ctx, res, NULL); }

/* Errors of a sweep, both ways of failing. */
#define AF_ERRORS(r, cls) ((r).errors[cls][0] + (r).errors[cls][1])

#endif
