/* mock.h: the embedded Kafka: librdkafka's in-process mock cluster with xmcd's topics created.
 *
 * Used by `xmcd --embedded-kafka` (the daemon connects to a cluster living in its own process) and by
 * `xmcd --mock-only` (a broker-only process that tests, kcat and a separately started xmcd share; it survives
 * the daemon's crashes, which the kill -9 tests need). The mock keeps everything in memory (at most 5 MiB per
 * partition) and picks random ports, so the bootstrap address is written atomically to a file (tmp + rename)
 * for scripts to pick up. */
#ifndef XMCD_MOCK_H
#define XMCD_MOCK_H

#include <stddef.h>

typedef struct xmcd_mock xmcd_mock;

/* Creates a cluster of `brokers` brokers. Returns NULL with err on failure. */
xmcd_mock *xmcd_mock_start(int brokers, char *err, size_t errlen);
/* Creates a topic (replication min(3, brokers)). Returns 0 or -1 with err. */
int xmcd_mock_topic(xmcd_mock *mock, const char *topic, int partitions, char *err, size_t errlen);
/* "host:port,..." of the brokers; lives as long as the mock. */
const char *xmcd_mock_bootstraps(xmcd_mock *mock);
/* Writes the bootstrap string and a newline to path atomically. Returns 0 or -1 with err. */
int xmcd_mock_write_bootstrap(xmcd_mock *mock, const char *path, char *err, size_t errlen);
void xmcd_mock_stop(xmcd_mock *mock);

#endif
