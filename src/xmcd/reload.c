/* reload.c: the thread that follows <repo>/CURRENT and swaps model versions in; see reload.h.
 *
 * The thread sleeps on a condition variable for poll_ms (or until kicked), reads CURRENT (a one-line file
 * that `xmc train` replaces by rename, so it is never seen half-written) with libxmc's xmc_repo_current, the
 * parser the classifier itself opens a repository with, and when it names a version that
 * is neither serving nor already refused, calls the plugin's load() on <repo>/<version>. The plugin does the
 * verification; this file only decides when to ask and reports the outcome. It also keeps a lease file naming
 * the version served (xmc/repo.h), so that pruning the repository never removes it. */
#include "reload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "xmc/repo.h"
#include "xmc/xmc.h"

struct xmcd_reload {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, kicked, poll_ms;
    xmcd_plugin *plugin;
    xmcd_stats *stats;
    char repo[1024];
    char refused[XMC_STAGE_VERSION_MAX];
    char last_error[256];
    char leased[XMC_STAGE_VERSION_MAX]; /* the version our lease file names (xmc/repo.h), "" for none */
};

/* Keeps <repo>/serving.<pid> naming the version the plugin serves, so that `xmc model prune` keeps it. */
static void xmcd_reload_lease(xmcd_reload *reload)
{
    char serving[XMC_STAGE_VERSION_MAX];
    xmc_error xerr;
    reload->plugin->api->current_version(reload->plugin->inst, serving, sizeof serving);
    if (!serving[0] || !strcmp(serving, reload->leased)) return;
    if (xmc_repo_lease(reload->repo, serving, &xerr) != XMC_OK) {
        xmcd_log(XMCD_LOG_WARN, "model_lease_failed", "version=%s reason=%s", xmcd_log_q(serving), xmcd_log_q(xerr.msg));
        return;
    }
    snprintf(reload->leased, sizeof reload->leased, "%s", serving);
}

static void xmcd_reload_check(xmcd_reload *reload, int forced)
{
    char version[XMC_STAGE_VERSION_MAX], serving[XMC_STAGE_VERSION_MAX], err[512];
    xmc_error xerr;
    if (xmc_repo_current(reload->repo, version, sizeof version, &xerr) != XMC_OK) {
        snprintf(err, sizeof err, "%s", xerr.msg);
        if (strcmp(err, reload->last_error) != 0) { /* log a broken repository once, not every poll */
            xmcd_log(XMCD_LOG_WARN, "model_repo_unreadable", "reason=%s", xmcd_log_q(err));
            snprintf(reload->last_error, sizeof reload->last_error, "%s", err);
        }
        return;
    }
    reload->last_error[0] = 0;
    reload->plugin->api->current_version(reload->plugin->inst, serving, sizeof serving);
    if (!strcmp(version, serving)) return;
    if (!forced && !strcmp(version, reload->refused)) return;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", reload->repo, version);
    uint64_t t0 = xmcd_now_ns();
    err[0] = 0;
    int rc = reload->plugin->api->load(reload->plugin->inst, dir, err, sizeof err);
    double ms = (double)(xmcd_now_ns() - t0) / 1e6;
    if (rc < 0) {
        xmcd_count(&reload->stats->refusals, 1);
        snprintf(reload->refused, sizeof reload->refused, "%s", version);
        xmcd_log(XMCD_LOG_ERROR, "model_refused", "version=%s serving=%s load_ms=%.1f reason=%s",
                 xmcd_log_q(version), xmcd_log_q(serving), ms, xmcd_log_q(err[0] ? err : "no reason given"));
        return;
    }
    reload->refused[0] = 0;
    if (rc == 0) {
        xmcd_count(&reload->stats->swaps, 1);
        xmcd_stats_set_version(reload->stats, version);
        xmcd_log(XMCD_LOG_INFO, "model_swap", "version=%s previous=%s load_ms=%.1f", xmcd_log_q(version),
                 xmcd_log_q(serving), ms);
    }
}

static void *xmcd_reload_main(void *arg)
{
    xmcd_reload *reload = arg;
    xmcd_reload_lease(reload);
    pthread_mutex_lock(&reload->lock);
    while (!reload->stop) {
        if (!reload->kicked) {
            if (reload->poll_ms > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += reload->poll_ms / 1000;
                ts.tv_nsec += (long)(reload->poll_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&reload->cond, &reload->lock, &ts);
            } else {
                pthread_cond_wait(&reload->cond, &reload->lock);
            }
        }
        if (reload->stop) break;
        int forced = reload->kicked;
        reload->kicked = 0;
        pthread_mutex_unlock(&reload->lock);
        xmcd_reload_check(reload, forced);
        xmcd_reload_lease(reload);
        pthread_mutex_lock(&reload->lock);
    }
    pthread_mutex_unlock(&reload->lock);
    return NULL;
}

xmcd_reload *xmcd_reload_start(xmcd_plugin *plugin, int poll_ms, xmcd_stats *stats)
{
    xmcd_reload *reload = calloc(1, sizeof *reload);
    if (!reload) return NULL;
    pthread_mutex_init(&reload->lock, NULL);
    pthread_cond_init(&reload->cond, NULL);
    reload->plugin = plugin;
    reload->stats = stats;
    reload->poll_ms = poll_ms;
    snprintf(reload->repo, sizeof reload->repo, "%s", plugin->repo);
    if (pthread_create(&reload->thread, NULL, xmcd_reload_main, reload) != 0) {
        pthread_mutex_destroy(&reload->lock);
        pthread_cond_destroy(&reload->cond);
        free(reload);
        return NULL;
    }
    return reload;
}

void xmcd_reload_kick(xmcd_reload *reload)
{
    if (!reload) return;
    pthread_mutex_lock(&reload->lock);
    reload->kicked = 1;
    pthread_cond_signal(&reload->cond);
    pthread_mutex_unlock(&reload->lock);
}

void xmcd_reload_set_poll_ms(xmcd_reload *reload, int poll_ms)
{
    if (!reload) return;
    pthread_mutex_lock(&reload->lock);
    reload->poll_ms = poll_ms;
    pthread_cond_signal(&reload->cond);
    pthread_mutex_unlock(&reload->lock);
}

void xmcd_reload_stop(xmcd_reload *reload)
{
    if (!reload) return;
    pthread_mutex_lock(&reload->lock);
    reload->stop = 1;
    pthread_cond_signal(&reload->cond);
    pthread_mutex_unlock(&reload->lock);
    pthread_join(reload->thread, NULL);
    if (reload->leased[0]) xmc_repo_lease_drop(reload->repo);
    pthread_mutex_destroy(&reload->lock);
    pthread_cond_destroy(&reload->cond);
    free(reload);
}
