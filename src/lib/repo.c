/* repo.c: a model repository's upkeep (see xmc/repo.h): listing, CURRENT, rollback, pruning, gate files, leases.
 *
 * Every small file this module writes (CURRENT, gate.txt, serving.<pid>) goes through one path: a temporary
 * name in the same directory, fsync, rename over the final name, fsync of the directory; so a crash leaves the
 * old text or the new one. Removal renames a version to .trash-<version> first, so that a listing or a server
 * never sees a half-deleted version, then deletes it. */
#include "repo.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <unistd.h>

#include "model.h"
#include "xmc/xmc.h"

/* ---- small files, replaced atomically --------------------------------------------------------------------- */

/* Writes text to dir/name through dir/.<name>.tmp-<pid>. */
static xmc_err replace_file(const char *dir, const char *name, const char *text, xmc_error *err)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%d", dir, name, (int)getpid());
    snprintf(final, sizeof final, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "open %s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) { bad = 1; e = errno; }
    if (bad) {
        unlink(tmp);
        return xmc_error_set(err, XMC_ERR_IO, "write %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, final) != 0) {
        e = errno;
        unlink(tmp);
        return xmc_error_set(err, XMC_ERR_IO, "rename %s -> %s: %s", tmp, final, strerror(e));
    }
    return xmci_fsync_path(dir, 1, err);
}

xmc_err xmci_repo_write_current(const char *repo, const char *version, xmc_error *err)
{
    char line[XMC_REPO_NAME_MAX + 2];
    snprintf(line, sizeof line, "%s\n", version);
    return replace_file(repo, "CURRENT", line, err);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A version directory: a valid name with a manifest.cfg inside. */
static int is_version(const char *repo, const char *name)
{
    if (!xmci_valid_name(name)) return 0;
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/manifest.cfg", repo, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

xmc_err xmc_repo_set_current(const char *repo, const char *version, int verify, xmc_error *err)
{
    if (!version || !xmci_valid_name(version) || strlen(version) >= XMC_REPO_NAME_MAX)
        return xmc_error_set(err, XMC_ERR_ARG, "bad version name '%s'", version ? version : "");
    if (!is_version(repo, version))
        return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no version %s (no %s/manifest.cfg)", repo, version, version);
    if (verify) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", repo, version);
        xmc_classifier *clf;
        xmc_err rc = xmc_classifier_open(dir, NULL, &clf, err); /* checksums and canaries */
        if (rc) {
            xmc_error_prefix(err, "version %s refused: ", version);
            return rc;
        }
        xmc_classifier_close(clf);
    }
    return xmci_repo_write_current(repo, version, err);
}

/* ---- gate results ----------------------------------------------------------------------------------------- */

xmc_err xmc_repo_gate_write(const char *repo, const char *version, const xmc_gate_result *g, xmc_error *err)
{
    if (!repo || !g) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    if (!version || !xmci_valid_name(version)) return xmc_error_set(err, XMC_ERR_ARG, "bad version name");
    if (!is_version(repo, version)) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no version %s", repo, version);
    if (strchr(g->serving, '\n') || (g->serving[0] && !xmci_valid_name(g->serving)))
        return xmc_error_set(err, XMC_ERR_ARG, "bad serving version name '%s'", g->serving);
    char reason[sizeof g->reason];
    snprintf(reason, sizeof reason, "%s", g->reason);
    for (char *c = reason; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' '; /* one line: the format ends the value at the line's end */
    char text[1024], dir[PATH_MAX];
    snprintf(text, sizeof text,
             "# xmc gate result (xmc/repo.h)\npassed=%d\nmargin=%.9g\nheld_out=%llu\nnew.p1=%.9g\nnew.p5=%.9g\n"
             "new.r10=%.9g\nserving=%s\nserving.p1=%.9g\nserving.p5=%.9g\nserving.r10=%.9g\nreason=%s\n",
             g->passed ? 1 : 0, g->margin, (unsigned long long)g->held_out, g->new_p1, g->new_p5, g->new_r10,
             g->serving, g->serving_p1, g->serving_p5, g->serving_r10, reason);
    snprintf(dir, sizeof dir, "%s/%s", repo, version);
    return replace_file(dir, "gate.txt", text, err);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || errno == ERANGE) return -1;
    *out = d;
    return 0;
}

xmc_err xmc_repo_gate_read(const char *repo, const char *version, xmc_gate_result *gate, xmc_error *err)
{
    if (!repo || !version || !gate || !xmci_valid_name(version))
        return xmc_error_set(err, XMC_ERR_ARG, "bad repository, version name or gate");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/gate.txt", repo, version);
    FILE *f = fopen(path, "r");
    if (!f) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    xmc_gate_result g;
    memset(&g, 0, sizeof g);
    char *line = NULL; /* getline: a newer writer's long line is one line, not several */
    size_t cap = 0;
    int lineno = 0, seen_passed = 0;
    xmc_err rc = XMC_OK;
    int getline_errno = 0;
    for (;;) {
        errno = 0;
        if (getline(&line, &cap, f) < 0) {
            /* glibc's getline fails without the stream's error flag when it cannot grow the line: only feof
             * says the file ended */
            if (!feof(f)) getline_errno = errno ? errno : EIO;
            break;
        }
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *eq = strchr(line, '=');
        if (!eq) { rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: no '=' in the line", path, lineno); break; }
        *eq = 0;
        const char *key = line, *val = eq + 1;
        double d = 0;
        double *num = !strcmp(key, "margin")      ? &g.margin
                      : !strcmp(key, "new.p1")     ? &g.new_p1
                      : !strcmp(key, "new.p5")     ? &g.new_p5
                      : !strcmp(key, "new.r10")    ? &g.new_r10
                      : !strcmp(key, "serving.p1") ? &g.serving_p1
                      : !strcmp(key, "serving.p5") ? &g.serving_p5
                      : !strcmp(key, "serving.r10") ? &g.serving_r10
                                                   : NULL;
        if (!strcmp(key, "held_out")) { /* a count: all 64 bits, not through a double */
            char *end;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (!isdigit((unsigned char)*val) || *end || errno == ERANGE) {
                rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: held_out: '%s' is not a count", path, lineno, val);
                break;
            }
            g.held_out = v;
        } else if (num || !strcmp(key, "passed")) {
            if (parse_double(val, &d)) { rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: %s: '%s' is not a number", path, lineno, key, val); break; }
            if (num) *num = d;
            else if (!strcmp(key, "passed")) {
                if (d != 0 && d != 1) { rc = xmc_error_set(err, XMC_ERR_PARSE, "%s:%d: passed must be 0 or 1", path, lineno); break; }
                g.passed = (int)d;
                seen_passed = 1;
            }
        } else if (!strcmp(key, "serving")) {
            snprintf(g.serving, sizeof g.serving, "%s", val);
        } else if (!strcmp(key, "reason")) {
            snprintf(g.reason, sizeof g.reason, "%s", val);
        } /* other keys: a newer writer's, ignored */
    }
    int bad = ferror(f);
    fclose(f);
    free(line);
    if (rc) return rc;
    if (getline_errno == ENOMEM) return xmc_error_set(err, XMC_ERR_NOMEM, "%s:%d: out of memory", path, lineno + 1);
    if (bad || getline_errno) return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path);
    if (!seen_passed) return xmc_error_set(err, XMC_ERR_PARSE, "%s: no passed= line", path);
    *gate = g;
    return XMC_OK;
}

/* ---- leases ----------------------------------------------------------------------------------------------- */

xmc_err xmc_repo_lease(const char *repo, const char *version, xmc_error *err)
{
    if (!version || !xmci_valid_name(version)) return xmc_error_set(err, XMC_ERR_ARG, "bad version name");
    char name[64], line[XMC_REPO_NAME_MAX + 2];
    snprintf(name, sizeof name, "serving.%d", (int)getpid());
    snprintf(line, sizeof line, "%s\n", version);
    return replace_file(repo, name, line, err);
}

void xmc_repo_lease_drop(const char *repo)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/serving.%d", repo, (int)getpid());
    unlink(path);
}

/* The pid of a lease file's name "serving.<pid>", or 0. */
static long lease_pid(const char *name)
{
    if (strncmp(name, "serving.", 8) != 0 || !name[8]) return 0;
    char *end;
    long pid = strtol(name + 8, &end, 10);
    return *end || pid <= 0 ? 0 : pid;
}

static int pid_alive(long pid) { return kill((pid_t)pid, 0) == 0 || errno == EPERM; }

/* The versions live leases name, as one string "\nv1\nv2\n" in buf (so a lookup is a strstr of "\nname\n");
 * stale leases are removed when remove_stale. */
static void live_leases(const char *repo, char *buf, size_t size, int remove_stale)
{
    snprintf(buf, size, "\n");
    DIR *d = opendir(repo);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = lease_pid(e->d_name);
        if (!pid) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", repo, e->d_name);
        if (!pid_alive(pid)) {
            if (remove_stale) unlink(path);
            continue;
        }
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char v[XMC_REPO_NAME_MAX + 2] = {0};
        if (fgets(v, sizeof v, f)) {
            v[strcspn(v, "\r\n")] = 0;
            size_t n = strlen(buf);
            if (xmci_valid_name(v) && n + strlen(v) + 2 < size) snprintf(buf + n, size - n, "%s\n", v);
        }
        fclose(f);
    }
    closedir(d);
}

static int leased(const char *leases, const char *name)
{
    char key[XMC_REPO_NAME_MAX + 3];
    snprintf(key, sizeof key, "\n%s\n", name);
    return strstr(leases, key) != NULL;
}

/* ---- listing ---------------------------------------------------------------------------------------------- */

/* Bytes of the files in dir and its subdirectories (a version is two levels deep at most). */
static uint64_t dir_bytes(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) != 0) continue;
        if (S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode) && depth > 0) total += dir_bytes(p, depth - 1);
    }
    closedir(d);
    return total;
}

/* "2026-12-04T21:15:57Z" -> seconds, or -1. */
static int64_t parse_created(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) return -1;
    return (int64_t)timegm(&tm);
}

static void describe(const char *repo, xmc_repo_version *v)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", repo, v->name);
    v->bytes = dir_bytes(dir, 1);
    v->created = v->created_us = -1;
    xmci_bundle *b;
    xmc_error e;
    if (xmci_bundle_open(dir, 0, &b, &e)) {
        snprintf(v->problem, sizeof v->problem, "%s", e.msg);
    } else {
        v->readable = 1;
        const char *s;
        long long i;
        double d;
        if (!xmci_bundle_get_string(b, "created", &s, &e)) v->created = parse_created(s);
        v->created_us = v->created >= 0 ? v->created * 1000000 : -1;
        if (!xmci_bundle_get_int(b, "created_us", &i, &e)) v->created_us = i;
        if (!xmci_bundle_get_string(b, "featurizer.kind", &s, &e)) snprintf(v->featurizer, sizeof v->featurizer, "%s", s);
        if (!xmci_bundle_get_int(b, "train.n_docs", &i, &e) && i > 0) v->n_docs = (uint64_t)i;
        if (!xmci_bundle_get_int(b, "train.n_labels", &i, &e) && i > 0) v->n_labels = (uint64_t)i;
        if (!xmci_bundle_get_string(b, "train.warm_from", &s, &e)) snprintf(v->warm_from, sizeof v->warm_from, "%s", s);
        if (!xmci_bundle_get_float(b, "train.seconds", &d, &e)) v->sec_train = d;
        xmci_bundle_close(b);
    }
    v->has_gate = xmc_repo_gate_read(repo, v->name, &v->gate, &e) == XMC_OK;
}

static int cmp_version(const void *a, const void *b)
{
    const xmc_repo_version *x = a, *y = b;
    if (x->created_us != y->created_us) return x->created_us < y->created_us ? -1 : 1;
    return strcmp(x->name, y->name);
}

xmc_err xmc_repo_list(const char *repo, xmc_repo_version **out, size_t *n, xmc_error *err)
{
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!repo || !out || !n) return xmc_error_set(err, XMC_ERR_ARG, "NULL argument");
    DIR *d = opendir(repo);
    if (!d) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", repo, strerror(errno));
    xmc_repo_version *list = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_version(repo, e->d_name) || strlen(e->d_name) >= XMC_REPO_NAME_MAX) continue;
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 16;
            xmc_repo_version *nl = realloc(list, nc * sizeof *nl);
            if (!nl) {
                closedir(d);
                free(list);
                return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory listing %s", repo);
            }
            list = nl;
            cap = nc;
        }
        memset(&list[cnt], 0, sizeof list[cnt]);
        snprintf(list[cnt].name, sizeof list[cnt].name, "%s", e->d_name);
        cnt++;
    }
    closedir(d);
    char current[XMC_REPO_NAME_MAX] = "", leases[8192];
    xmc_error e2;
    if (xmc_repo_current(repo, current, sizeof current, &e2)) current[0] = 0;
    live_leases(repo, leases, sizeof leases, 0);
    for (size_t i = 0; i < cnt; i++) {
        describe(repo, &list[i]);
        list[i].current = !strcmp(list[i].name, current);
        list[i].serving = leased(leases, list[i].name);
    }
    if (cnt) qsort(list, cnt, sizeof *list, cmp_version);
    *out = list ? list : calloc(1, sizeof *list); /* an empty repository lists as an empty array, not NULL */
    if (!*out) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    *n = cnt;
    return XMC_OK;
}

void xmc_repo_list_free(xmc_repo_version *list) { free(list); }

/* ---- rollback --------------------------------------------------------------------------------------------- */

xmc_err xmc_repo_rollback(const char *repo, const char *version, char *chosen, size_t chosen_size, xmc_error *err)
{
    xmc_err rc;
    if (version) {
        /* a named version needs no readable CURRENT: this is how a damaged one is mended */
        if ((rc = xmc_repo_set_current(repo, version, 1, err))) return rc;
        if (chosen && chosen_size) snprintf(chosen, chosen_size, "%s", version);
        return XMC_OK;
    }
    char current[XMC_REPO_NAME_MAX];
    if ((rc = xmc_repo_current(repo, current, sizeof current, err))) {
        if (rc == XMC_ERR_NOTFOUND) return rc; /* nothing is current: nothing to roll back from */
        xmc_error_prefix(err, "CURRENT unreadable; name the version to go to: ");
        return rc;
    }
    xmc_repo_version *list;
    size_t n;
    if ((rc = xmc_repo_list(repo, &list, &n, err))) return rc;
    /* the candidates: versions before the current one in the order; all the others when the current one is gone
     * or does not open (a damaged version has no creation time, so it sorts first and "older" means nothing) */
    size_t end = n, skip = n;
    for (size_t i = 0; i < n; i++)
        if (list[i].current) end = skip = i;
    if (end < n && !list[end].readable) end = n;
    rc = xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no version %s %s that opens and passed its gate", repo,
                       end < n ? "older than" : "other than", current);
    char skipped[512] = "";
    for (size_t i = end; i-- > 0;) {
        const xmc_repo_version *v = &list[i];
        if (i == skip || !v->readable || (v->has_gate && !v->gate.passed)) continue;
        xmc_error e;
        if (xmc_repo_set_current(repo, v->name, 1, &e) == XMC_OK) {
            if (chosen && chosen_size) snprintf(chosen, chosen_size, "%s", v->name);
            rc = XMC_OK;
            xmc_error_clear(err);
            break;
        }
        size_t k = strlen(skipped);
        snprintf(skipped + k, sizeof skipped - k, "%s%s", k ? ", " : "", v->name);
    }
    if (rc && skipped[0]) xmc_error_prefix(err, "(refused: %s) ", skipped);
    xmc_repo_list_free(list);
    return rc;
}

/* ---- pruning ---------------------------------------------------------------------------------------------- */

static xmc_err remove_version(const char *repo, const char *name, xmc_error *err)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/%s", repo, name);
    snprintf(to, sizeof to, "%s/.trash-%s", repo, name);
    xmci_rm_tree(to); /* a leftover of an earlier crash under the same name */
    if (rename(from, to) != 0) return xmc_error_set(err, XMC_ERR_IO, "rename %s -> %s: %s", from, to, strerror(errno));
    xmc_err rc = xmci_fsync_path(repo, 1, err);
    xmci_rm_tree(to);
    return rc;
}

xmc_err xmc_repo_prune(const char *repo, uint32_t keep, uint32_t *removed, xmc_repo_removed_fn on_removed, void *ctx,
                       xmc_error *err)
{
    if (removed) *removed = 0;
    if (keep < 1) return xmc_error_set(err, XMC_ERR_ARG, "keep must be at least 1 (the current version always stays)");
    /* finish removals a crash interrupted, and forget leases of processes that are gone */
    DIR *d = opendir(repo);
    if (!d) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", repo, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, ".trash-", 7) != 0) continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", repo, e->d_name);
        if (is_dir(p)) xmci_rm_tree(p);
    }
    closedir(d);
    char leases[8192];
    live_leases(repo, leases, sizeof leases, 1);
    xmc_repo_version *list;
    size_t n;
    xmc_err rc = xmc_repo_list(repo, &list, &n, err);
    if (rc) return rc;
    /* the version CURRENT names always stays, so a CURRENT that names none here stops the pruning: the one meant
     * to be current could otherwise be among those removed. No CURRENT at all (versions made with --no-current)
     * protects nothing and prunes by age alone. */
    char current[XMC_REPO_NAME_MAX];
    xmc_error ce;
    xmc_err crc = xmc_repo_current(repo, current, sizeof current, &ce);
    int named = 0;
    for (size_t i = 0; i < n; i++) named |= list[i].current;
    if ((crc && crc != XMC_ERR_NOTFOUND) || (!crc && !named)) {
        xmc_repo_list_free(list);
        if (crc) return xmc_error_set(err, crc, "nothing pruned: %s (set CURRENT first: xmc model rollback REPO VERSION)", ce.msg);
        return xmc_error_set(err, XMC_ERR_NOTFOUND, "nothing pruned: CURRENT names %s, which is not a version in %s "
                             "(set CURRENT first: xmc model rollback REPO VERSION)", current, repo);
    }
    uint32_t count = 0;
    for (size_t i = 0; i + keep < n && !rc; i++) {
        const xmc_repo_version *v = &list[i];
        if (v->current || leased(leases, v->name)) continue;
        if ((rc = remove_version(repo, v->name, err))) break;
        count++;
        if (on_removed) on_removed(ctx, v->name);
    }
    xmc_repo_list_free(list);
    if (removed) *removed = count;
    return rc;
}

void xmc_repo_version_name(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    uint64_t salt = XXH64(&ts, sizeof ts, (uint64_t)getpid());
    snprintf(out, size, "%s-%08x", stamp, (unsigned)(salt & 0xffffffffu));
}
