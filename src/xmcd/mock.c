/* mock.c: start librdkafka's mock cluster in-process and publish its address; see mock.h.
 *
 * The mock needs an rd_kafka_t of its own for bookkeeping (a producer with no bootstrap.servers; its log
 * level is lowered so it does not warn about that). Brokers run on librdkafka's internal threads, so the
 * owner only has to keep the handle alive. */
#include "mock.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct xmcd_mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *cluster;
    int brokers;
};

xmcd_mock *xmcd_mock_start(int brokers, char *err, size_t errlen)
{
    xmcd_mock *mock = calloc(1, sizeof *mock);
    if (!mock) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    rd_kafka_conf_set(kconf, "log_level", "3", NULL, 0);
    mock->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, err, errlen);
    if (!mock->rk) {
        free(mock);
        return NULL;
    }
    mock->cluster = rd_kafka_mock_cluster_new(mock->rk, brokers);
    if (!mock->cluster) {
        snprintf(err, errlen, "rd_kafka_mock_cluster_new(%d brokers) failed", brokers);
        rd_kafka_destroy(mock->rk);
        free(mock);
        return NULL;
    }
    mock->brokers = brokers;
    return mock;
}

int xmcd_mock_topic(xmcd_mock *mock, const char *topic, int partitions, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(mock->cluster, topic, partitions, mock->brokers < 3 ? mock->brokers : 3);
    if (e) {
        snprintf(err, errlen, "cannot create topic %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

const char *xmcd_mock_bootstraps(xmcd_mock *mock) { return rd_kafka_mock_cluster_bootstraps(mock->cluster); }

int xmcd_mock_write_bootstrap(xmcd_mock *mock, const char *path, char *err, size_t errlen)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\n", xmcd_mock_bootstraps(mock));
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0, e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno; /* closed whatever failed: no descriptor left behind */
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(e));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void xmcd_mock_stop(xmcd_mock *mock)
{
    if (!mock) return;
    rd_kafka_mock_cluster_destroy(mock->cluster);
    rd_kafka_destroy(mock->rk);
    free(mock);
}
