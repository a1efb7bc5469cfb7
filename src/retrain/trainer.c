/* trainer.c: a retraining in a child process; see trainer.h.
 *
 * The child logs with xmcd's log (one write(2) per line, so its lines and the parent's never interleave) and
 * ends with _exit(), so nothing the parent registered (atexit handlers, librdkafka's threads, which do not
 * exist in the child) runs in it. */
#include "trainer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../xmcd/log.h"
#include "gate.h"
#include "xmc/data.h"
#include "xmc/train.h"

typedef struct xmcr_split {
    const xmcr_record **train, **held;
    size_t n_train, n_held, cap_train, cap_held;
    int pct;
} xmcr_split;

static int split_one(void *ctx, const xmcr_record *rec)
{
    xmcr_split *s = ctx;
    int held = xmcr_gate_heldout(rec->id, s->pct);
    const xmcr_record ***arr = held ? &s->held : &s->train;
    size_t *n = held ? &s->n_held : &s->n_train, *cap = held ? &s->cap_held : &s->cap_train;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        const xmcr_record **a = realloc(*arr, c * sizeof *a);
        if (!a) return -1;
        *arr = a;
        *cap = c;
    }
    xmcr_record *copy = malloc(sizeof *copy); /* the view handed to us lives for this call only */
    if (!copy) return -1;
    *copy = *rec;
    (*arr)[(*n)++] = copy;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes the training side as labels<TAB>text lines; with shuffle, label sets go to other records (a fixed
 * permutation: the test's worse model is the same every run). */
static int write_tsv(const char *path, const xmcr_split *s, int shuffle, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t *perm = malloc((s->n_train ? s->n_train : 1) * sizeof *perm);
    if (!perm) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < s->n_train; i++) perm[i] = i;
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (size_t i = s->n_train; shuffle && i > 1; i--) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((state >> 33) % i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < s->n_train; i++) fprintf(f, "%s\t%s\n", s->train[perm[i]]->labels, s->train[i]->text);
    free(perm);
    if (fflush(f) != 0 || ferror(f)) {
        snprintf(err, errlen, "write %s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

/* Scores version (NULL: CURRENT's, name into out_name) of the repository on the held-out slice. Returns 0,
 * 1 when there is no such version (no CURRENT), -1 with err. */
static int score_version(const char *repo, const char *version, const xmcr_split *s, int threads, char *out_name,
                         size_t out_size, double *p1, double *p5, double *r10, xmc_error *err)
{
    char cur[XMC_REPO_NAME_MAX], path[2048];
    if (!version) {
        xmc_err rc = xmc_repo_current(repo, cur, sizeof cur, err);
        if (rc == XMC_ERR_NOTFOUND) return 1;
        if (rc) return -1;
        version = cur;
    }
    snprintf(out_name, out_size, "%s", version);
    snprintf(path, sizeof path, "%s/%s", repo, version);
    xmc_open_opts opts = {1, 1};
    xmc_classifier *clf = NULL;
    if (xmc_classifier_open(path, &opts, &clf, err)) return -1;
    const char **texts = malloc((s->n_held ? s->n_held : 1) * sizeof *texts);
    const char **labels = malloc((s->n_held ? s->n_held : 1) * sizeof *labels);
    int rc = -1;
    if (texts && labels) {
        for (size_t i = 0; i < s->n_held; i++) {
            texts[i] = s->held[i]->text;
            labels[i] = s->held[i]->labels;
        }
        rc = xmcr_gate_score(clf, texts, labels, s->n_held, threads, p1, p5, r10, err) ? -1 : 0;
    } else {
        xmc_error_set(err, XMC_ERR_NOMEM, "gate: out of memory");
    }
    free(texts);
    free(labels);
    xmc_classifier_close(clf);
    return rc;
}

void xmcr_train_run(const xmcr_window *w, const xmcr_train_params *p, xmcr_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = XMCR_TRAIN_FAILED;
    xmcr_split s = {.pct = p->heldout_pct};
    xmc_error err = {0};
    xmc_data *data = NULL;
    char tsv[1200] = "";
    double t0 = now_s();
    if (xmcr_window_foreach(w, split_one, &s)) {
        snprintf(res->error, sizeof res->error, "out of memory splitting the window");
        goto done;
    }
    res->n_train = s.n_train;
    res->n_heldout = s.n_held;
    if (s.n_train < 2) {
        snprintf(res->error, sizeof res->error, "%zu training records: too few", s.n_train);
        goto done;
    }
    if (mkdir(p->work_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(res->error, sizeof res->error, "mkdir %s: %s", p->work_dir, strerror(errno));
        goto done;
    }
    snprintf(tsv, sizeof tsv, "%s/train-%d.tsv", p->work_dir, (int)getpid());
    if (write_tsv(tsv, &s, p->shuffle_labels, res->error, sizeof res->error)) goto done;
    xmc_data_source src = {.tsv = tsv};
    if (xmc_data_read(&src, NULL, &data, &err)) goto xmc_failed;
    res->n_labels = xmc_data_num_labels(data);
    xmc_train_config cfg;
    xmc_train_config_default(&cfg);
    cfg.threads = p->threads;
    cfg.nr_splits = (uint32_t)p->nr_splits;
    cfg.max_leaf_size = (uint32_t)p->max_leaf_size;
    cfg.seed = (uint32_t)p->seed;
    cfg.threshold = (float)p->threshold;
    cfg.make_current = 0;
    cfg.version = p->version;
    char serving[XMC_REPO_NAME_MAX];
    int has_serving = xmc_repo_current(p->repo, serving, sizeof serving, &err) == XMC_OK;
    if (p->warm) {
        cfg.solver = XMC_TRAIN_SOLVER_PRIMAL; /* a warm start needs it; the cold rebuilds use it too, to compare */
        if (has_serving && !p->rebuild) cfg.warm_repo = p->repo;
    }
    xmc_train_report report;
    xmcd_log(XMCD_LOG_INFO, "training_start", "pid=%d train=%zu heldout=%zu labels=%llu warm=%d threads=%d",
             (int)getpid(), s.n_train, s.n_held, (unsigned long long)res->n_labels, cfg.warm_repo != NULL, p->threads);
    if (xmc_train_data(&cfg, data, p->repo, res->version, sizeof res->version, &report, &err)) goto xmc_failed;
    res->warm = report.warm;
    res->sec_train = now_s() - t0;
    unlink(tsv);
    tsv[0] = 0;

    /* the gate */
    double t1 = now_s();
    xmc_gate_result *g = &res->gate;
    char name[XMC_REPO_NAME_MAX];
    g->held_out = s.n_held;
    if (score_version(p->repo, res->version, &s, p->threads, name, sizeof name, &g->new_p1, &g->new_p5, &g->new_r10,
                      &err) != 0)
        goto xmc_failed;
    if (has_serving) {
        int rc = score_version(p->repo, serving, &s, p->threads, g->serving, sizeof g->serving, &g->serving_p1,
                               &g->serving_p5, &g->serving_r10, &err);
        if (rc < 0) goto xmc_failed; /* CURRENT names a version that does not open: a person must look */
    }
    xmcr_gate_decide(g, p->margin);
    res->sec_gate = now_s() - t1;
    if (xmc_repo_gate_write(p->repo, res->version, g, &err)) goto xmc_failed;
    if (g->passed) {
        /* from here the stop signals wait until the result is written (the child _exits with them pending): a
         * SIGTERM between moving CURRENT and the result would have the retrainer log "nothing published" */
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        sigprocmask(SIG_BLOCK, &stop, NULL);
        /* already opened with checksums and canaries above: no second verification */
        if (xmc_repo_set_current(p->repo, res->version, 0, &err)) goto xmc_failed;
        /* the moment xmcd can see it: the parent's gate_passed line comes only when it next checks on the child */
        xmcd_log(XMCD_LOG_INFO, "current_moved", "pid=%d version=%s", (int)getpid(), res->version);
        if (p->publish_pause_ms > 0) {
            struct timespec ts = {p->publish_pause_ms / 1000, (long)(p->publish_pause_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        }
        res->outcome = XMCR_TRAIN_PUBLISHED;
        if (p->keep_versions > 0 && xmc_repo_prune(p->repo, (uint32_t)p->keep_versions, &res->pruned, NULL, NULL, &err))
            xmcd_log(XMCD_LOG_WARN, "prune_failed", "reason=%s", xmcd_log_q(err.msg));
    } else {
        res->outcome = XMCR_TRAIN_REFUSED;
    }
    goto done;
xmc_failed:
    snprintf(res->error, sizeof res->error, "%s (%s)", err.msg, xmc_err_name(err.code));
done:
    if (tsv[0]) unlink(tsv);
    xmc_data_free(data);
    for (size_t i = 0; i < s.n_train; i++) free((void *)s.train[i]);
    for (size_t i = 0; i < s.n_held; i++) free((void *)s.held[i]);
    free(s.train);
    free(s.held);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void xmcr_train_cleanup(const char *repo, const char *work_dir, const char *version, pid_t pid)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/.tmp-%s", repo, version);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (pid > 0) {
        snprintf(path, sizeof path, "%s/.CURRENT.tmp-%d", repo, (int)pid);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s/.gate.txt.tmp-%d", repo, version, (int)pid);
        unlink(path);
        snprintf(path, sizeof path, "%s/train-%d.tsv", work_dir, (int)pid);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/training.%s", work_dir, version);
    unlink(path);
}

int xmcr_train_cleanup_stale(const char *repo, const char *work_dir)
{
    DIR *d = opendir(work_dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    char path[2400];
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "train-", 6)) {
            snprintf(path, sizeof path, "%s/%s", work_dir, e->d_name);
            unlink(path);
        } else if (!strncmp(e->d_name, "training.", 9) && e->d_name[9]) {
            snprintf(path, sizeof path, "%s/%s", work_dir, e->d_name);
            long pid = 0;
            FILE *f = fopen(path, "r");
            if (f) {
                if (fscanf(f, "%ld", &pid) != 1) pid = 0;
                fclose(f);
            }
            xmcr_train_cleanup(repo, work_dir, e->d_name + 9, (pid_t)pid);
            found++;
        }
    }
    closedir(d);
    return found;
}

pid_t xmcr_train_spawn(const xmcr_window *w, const xmcr_train_params *p, int *fd, char *err, size_t errlen)
{
    char marker[1400];
    if (mkdir(p->work_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", p->work_dir, strerror(errno));
        return -1;
    }
    snprintf(marker, sizeof marker, "%s/training.%s", p->work_dir, p->version);
    int mfd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (mfd < 0) {
        snprintf(err, errlen, "create %s: %s", marker, strerror(errno));
        return -1;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(mfd);
        unlink(marker);
        return -1;
    }
    /* the signals wait across the fork: one that came between it and the child's SIG_DFL would run the
     * retrainer's handler in the child, which would then not stop */
    sigset_t all, before;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &before);
    pid_t parent = getpid(), pid = fork();
    if (pid != 0) sigprocmask(SIG_SETMASK, &before, NULL);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        close(mfd);
        unlink(marker);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        close(mfd);
        /* a trainer killed (kill -9 included) must not leave a training behind that could still publish */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        /* the stop signals stop it; the retrainer's reload and train-now signals are not its business (sent to
         * the process group, their default action would end the training) */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        sigprocmask(SIG_SETMASK, &before, NULL);
        setpriority(PRIO_PROCESS, 0, p->nice);
        xmcr_train_result res;
        xmcr_train_run(w, p, &res);
        ssize_t k = write(pipefd[1], &res, sizeof res);
        _exit(k == (ssize_t)sizeof res ? 0 : 1);
    }
    close(pipefd[1]);
    /* the pid names the child's temporary files; a marker without it still names the version's directory */
    dprintf(mfd, "%d\n", (int)pid);
    close(mfd);
    *fd = pipefd[0];
    return pid;
}

int xmcr_train_collect(pid_t pid, int fd, int block, xmcr_train_result *res)
{
    int status = 0;
    pid_t r;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    /* wait4, not waitpid: the kernel's peak RSS of the child comes with it, which nothing can read once the
     * child is reaped (its /proc entry is gone) */
    do r = wait4(pid, &status, block ? 0 : WNOHANG, &ru);
    while (r < 0 && errno == EINTR);
    if (r == 0) return 0;
    memset(res, 0, sizeof *res);
    size_t got = 0;
    while (r == pid && got < sizeof *res) {
        ssize_t k = read(fd, (char *)res + got, sizeof *res - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != sizeof *res) {
        memset(res, 0, sizeof *res);
        res->outcome = XMCR_TRAIN_FAILED;
        if (r != pid)
            snprintf(res->error, sizeof res->error, "waitpid: %s", strerror(errno));
        else if (WIFSIGNALED(status))
            snprintf(res->error, sizeof res->error, "the training process died of signal %d", WTERMSIG(status));
        else
            snprintf(res->error, sizeof res->error, "the training process exited %d without a result",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (r == pid) res->max_rss_kb = (uint64_t)ru.ru_maxrss; /* Linux: kilobytes */
    res->term_signal = r == pid && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 1;
}
