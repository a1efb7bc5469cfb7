/* trainer.h: one retraining, run in a child process: the window split, a version trained, gated, published.
 *
 * xmcr_train_spawn() forks. The child gets a copy-on-write snapshot of the window for free (the parent keeps
 * consuming into its own copy), lowers its priority (setpriority to the configured nice value; the thread
 * count is the configured one), dies with the parent (PR_SET_PDEATHSIG), and runs xmcr_train_run(): the
 * held-out slice (gate.h) is kept in memory, the rest written as a TSV into the work directory, a version
 * trained into the repository without moving CURRENT (xmc_train_data, make_current 0: it is written whole and
 * fsynced or not at all), both versions scored, gate.txt written into the new version (xmc_repo_gate_write),
 * and only then CURRENT moved to it if it passed (xmc_repo_set_current). Its result goes back through a pipe.
 * A child killed at any point leaves at most a complete version that is not CURRENT (and temporary files that
 * xmcr_train_cleanup removes), never a CURRENT naming something half-written. */
#ifndef XMCR_TRAINER_H
#define XMCR_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "window.h"
#include "xmc/repo.h"

typedef struct xmcr_train_params {
    const char *repo, *work_dir;
    const char *version; /* the new version's name (xmc_repo_version_name), known before the child starts */
    int heldout_pct;
    double margin;
    int threads, nice;
    int nr_splits, max_leaf_size, seed;
    double threshold;
    int shuffle_labels; /* tests only: a worse model on purpose */
    int publish_pause_ms; /* tests only: a wait after moving CURRENT, before the result is written */
    int warm;           /* start from the serving version (primal solver) */
    int rebuild;        /* with warm: this run trains cold (every Nth) */
    int keep_versions;  /* prune to this many after publishing; 0: keep all */
} xmcr_train_params;

typedef enum xmcr_train_outcome {
    XMCR_TRAIN_PUBLISHED = 1,
    XMCR_TRAIN_REFUSED = 2, /* kept aside: the gate said no */
    XMCR_TRAIN_FAILED = 3
} xmcr_train_outcome;

typedef struct xmcr_train_result {
    int outcome;
    char version[XMC_REPO_NAME_MAX];
    xmc_gate_result gate;
    uint64_t n_train, n_heldout, n_labels;
    double sec_train, sec_gate;
    int warm;
    uint32_t pruned;
    uint64_t max_rss_kb; /* the child's peak resident set (getrusage of the reaped child; set by collect) */
    int term_signal;     /* the signal the child died of, 0 if it exited (set by collect) */
    char error[600];
} xmcr_train_result;

/* Runs one retraining in this process (the child's body). Never exits; the result says what happened. */
void xmcr_train_run(const xmcr_window *w, const xmcr_train_params *p, xmcr_train_result *res);

/* A fresh version name, as the library makes them (UTC time, a random suffix). */

/* Forks a child running xmcr_train_run on w. Before it, a marker <work_dir>/training.<version> is created (the
 * child's pid written into it after the fork), so that what a killed training leaves behind can be found even
 * when its parent was killed too. Returns the child's pid with *fd the pipe its result comes from, or -1 with
 * err. */
pid_t xmcr_train_spawn(const xmcr_window *w, const xmcr_train_params *p, int *fd, char *err, size_t errlen);

/* Removes what a training of version by process pid (0: unknown) may have left when it died: the library's
 * <repo>/.tmp-<version>/ (a version being written), <repo>/.CURRENT.tmp-<pid> and <repo>/<version>/.gate.txt.tmp-<pid>
 * (small files being replaced), <work_dir>/train-<pid>.tsv, and the marker. A version already renamed into place
 * is whole and stays (not CURRENT unless the gate passed it). Called after every training, whatever its end. */
void xmcr_train_cleanup(const char *repo, const char *work_dir, const char *version, pid_t pid);

/* At start: the cleanup above for every marker left in work_dir by a training that died with its parent, and
 * any train-*.tsv there. Returns the number of markers found. */
int xmcr_train_cleanup_stale(const char *repo, const char *work_dir);

/* Checks on (block 0) or waits for (block 1) the child: 0 still running; 1 finished with *res filled (a child
 * that died without a result is XMCR_TRAIN_FAILED, with how it died) and res->max_rss_kb the child's peak RSS
 * (pages it shares with the parent copy-on-write included); fd is closed then. */
int xmcr_train_collect(pid_t pid, int fd, int block, xmcr_train_result *res);

#endif
