/* repo.h: a model repository's upkeep: list its versions, move CURRENT (publish, roll back), prune old versions,
 * and the two small files that say which versions matter: a version's gate result and a server's lease.
 *
 * A repository (DESIGN.md section 6) holds version directories <repo>/<version>/ and <repo>/CURRENT. Besides
 * them this header reads and writes:
 *   <repo>/<version>/gate.txt   the gate's verdict on that version (written by whoever gates it, e.g. the
 *                               retrainer, after the version is written and before or instead of publishing it)
 *   <repo>/serving.<pid>        a lease: process pid (xmcd) serves the version named inside (one line)
 * Both are replaced by rename(2) from a temporary file, so a reader sees the old or the new text, never half.
 *
 * gate.txt format (one key=value per line, '#' starts a comment line, unknown keys are ignored so that a newer
 * writer's extra keys do not break an older reader; a line without '=' or a bad number is XMC_ERR_PARSE):
 *   passed=1|0            published (1) or kept aside (0)
 *   margin=0.01           the largest drop of P@1, P@5 or R@10 the gate allowed
 *   held_out=1234         records of the held-out slice both versions were evaluated on
 *   new.p1= new.p5= new.r10=            this version's P@1, P@5, R@10 on them
 *   serving=VERSION       the version it was compared with (empty: none was serving)
 *   serving.p1= serving.p5= serving.r10=  that version's figures on the same records
 *   reason=TEXT           one line, to the end of the line: why it was refused (or what passed it)
 *
 * Leases: a process that serves a version from a repository keeps serving.<its pid> naming it, and removes it
 * on exit. A lease counts while kill(pid, 0) says the process exists; a lease of a dead process is stale and
 * ignored (prune removes it). Pids are reused, so a stale lease whose pid was reused protects a version a
 * little longer than needed: the safe direction.
 *
 * Ordering: versions are ordered by the manifest's creation time (created_us, else created), then by name. "Previous" and "last N"
 * follow that order. Only directories with a manifest.cfg are versions; .tmp-* (a training in flight) and
 * .trash-* (a removal in flight) are never listed and never touched by prune, except .trash-* that prune
 * finishes removing.
 *
 * Every fallible call returns XMC_OK or a code with err filled, as everywhere in libxmc. */
#ifndef XMC_REPO_H
#define XMC_REPO_H

#include <stddef.h>
#include <stdint.h>
#include "xmc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_REPO_NAME_MAX 128

/* A new version's name as xmc train makes one: the UTC time, then 8 hex digits from the clock's nanoseconds and
 * the pid (20261205T075210Z-d97a3d6b), so names sort by time and two trainers do not collide. */
void xmc_repo_version_name(char *out, size_t size);

/* The gate's verdict on one version (gate.txt). */
typedef struct xmc_gate_result {
    int passed;                        /* 1: published, 0: kept aside */
    double margin;                     /* the largest P@1, P@5 or R@10 drop allowed */
    uint64_t held_out;                 /* records evaluated */
    double new_p1, new_p5, new_r10;    /* this version */
    char serving[XMC_REPO_NAME_MAX];   /* the version compared with; "" when none */
    double serving_p1, serving_p5, serving_r10;
    char reason[256];
} xmc_gate_result;

/* One version as `xmc model list` shows it. */
typedef struct xmc_repo_version {
    char name[XMC_REPO_NAME_MAX];
    uint64_t bytes;            /* the version directory's files, summed */
    int64_t created;           /* seconds since the epoch (manifest key created); -1 when unreadable */
    int64_t created_us;        /* microseconds (manifest key created_us; versions written before it: created) */
    int readable;              /* 1: the manifest and every listed file opened (checksums not verified here) */
    char problem[160];         /* readable 0: why */
    int current;               /* CURRENT names it */
    int serving;               /* a live lease names it */
    /* training facts from the manifest (zero / empty when absent) */
    char featurizer[24];
    uint64_t n_docs;
    uint64_t n_labels;
    char warm_from[XMC_REPO_NAME_MAX]; /* trained warm-started from this version (manifest train.warm_from) */
    double sec_train;          /* manifest train.seconds: features to rankers, wall clock */
    int has_gate;              /* gate.txt exists and parsed */
    xmc_gate_result gate;
} xmc_repo_version;

/* Lists the versions of repo, oldest first, into *out (n entries; free with xmc_repo_list_free). A version
 * that does not open is listed with readable 0 and its problem, not an error. XMC_ERR_NOTFOUND (no such
 * directory), XMC_ERR_IO, XMC_ERR_NOMEM; *out is then NULL. */
xmc_err xmc_repo_list(const char *repo, xmc_repo_version **out, size_t *n, xmc_error *err);
void xmc_repo_list_free(xmc_repo_version *list);

/* Makes version the one CURRENT names: writes <repo>/.CURRENT.tmp-<pid>, fsyncs it, renames it over CURRENT and
 * fsyncs the directory. With verify, the version is first opened with its checksums and canaries checked, and
 * one that fails is refused (its error returned, CURRENT untouched). XMC_ERR_ARG (bad name), XMC_ERR_NOTFOUND,
 * XMC_ERR_IO, or the open's error. */
xmc_err xmc_repo_set_current(const char *repo, const char *version, int verify, xmc_error *err);

/* Rolls CURRENT back: to version when it is not NULL (whatever CURRENT holds, even nothing readable: the way
 * to mend it), else to the newest version older than the current one that has no failed gate and opens
 * verified (a version that fails is skipped); when the current version's manifest cannot be read (it has no
 * creation time, so "older" means nothing), to the newest other such version. Every candidate is opened with
 * checksums and canaries before CURRENT moves; a named version that fails is refused. The version now current goes to chosen (chosen_size bytes, may be NULL).
 * XMC_ERR_NOTFOUND (no CURRENT, or no version that opens), the error of an unreadable CURRENT when no version is
 * named, or the errors of xmc_repo_set_current. */
xmc_err xmc_repo_rollback(const char *repo, const char *version, char *chosen, size_t chosen_size, xmc_error *err);

/* Called by xmc_repo_prune for each version it removed. */
typedef void (*xmc_repo_removed_fn)(void *ctx, const char *version);

/* Keeps the newest keep versions (keep >= 1) and removes the older ones, except the one CURRENT names and any a
 * live lease names. A version is removed by renaming it to .trash-<version> (so it vanishes at once) and then
 * deleting it; .trash-* left by a crash and stale leases are removed too. The number removed goes to *removed
 * (may be NULL), each name to on_removed (may be NULL). On an error, the versions removed so far stay removed.
 * A CURRENT that cannot be read or names no version here removes no version (the one meant to be current
 * could be among the old ones): its error, or XMC_ERR_NOTFOUND; no CURRENT at all prunes by age alone.
 * XMC_ERR_ARG (keep 0), the errors of xmc_repo_list, XMC_ERR_IO. */
xmc_err xmc_repo_prune(const char *repo, uint32_t keep, uint32_t *removed, xmc_repo_removed_fn on_removed, void *ctx,
                       xmc_error *err);

/* Writes <repo>/<version>/gate.txt from *gate (the version must exist). XMC_ERR_NOTFOUND, XMC_ERR_IO, XMC_ERR_ARG. */
xmc_err xmc_repo_gate_write(const char *repo, const char *version, const xmc_gate_result *gate, xmc_error *err);
/* Reads it. XMC_ERR_NOTFOUND when the version has none, XMC_ERR_PARSE (file:line), XMC_ERR_IO, XMC_ERR_ARG (a bad
 * version name, as xmc_repo_gate_write refuses it). */
xmc_err xmc_repo_gate_read(const char *repo, const char *version, xmc_gate_result *gate, xmc_error *err);

/* Declares that this process serves version from repo: replaces <repo>/serving.<getpid()>. XMC_ERR_IO, XMC_ERR_ARG. */
xmc_err xmc_repo_lease(const char *repo, const char *version, xmc_error *err);
/* Removes this process's lease, if any. Cannot fail in a way the caller could act on. */
void xmc_repo_lease_drop(const char *repo);

#ifdef __cplusplus
}
#endif
#endif
