/* offsets.h: per-partition progress of consumed records, and the offsets that are safe to commit.
 *
 * Every consumed record is tracked (in offset order) until its output or its dead-letter copy is
 * acknowledged by the broker. A partition's commit point is the lowest offset still unfinished, or one past
 * the last finished offset when nothing is pending, so a commit never passes a record whose output is not
 * acknowledged (at-least-once). Partitions are created on assignment and detached on revocation; a detached
 * partition lives on until its last tracked record completes (late acknowledgements are then ignored for
 * commits: the partition belongs to someone else). Single-threaded: used by the pipeline thread only. */
#ifndef XMCD_OFFSETS_H
#define XMCD_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct xmcd_offsets xmcd_offsets;
typedef struct xmcd_part xmcd_part;

xmcd_offsets *xmcd_offsets_new(void);
/* Frees the tracker. Every tracked record must have been finished (xmcd_offsets_done) before. */
void xmcd_offsets_free(xmcd_offsets *offsets);

/* Starts tracking the partitions in list (already tracked ones are kept). Returns 0, or -1 on no memory with the
 * tracker as it was. */
int xmcd_offsets_assign(xmcd_offsets *offsets, const rd_kafka_topic_partition_list_t *list);
/* Stops tracking the partitions in list (all when list is NULL). */
void xmcd_offsets_revoke(xmcd_offsets *offsets, const rd_kafka_topic_partition_list_t *list);

/* Records that offset was consumed from topic/partition. Returns 0 with the partition handle (one more
 * reference) in *part and the record's sequence number in *seq; 1 when the partition is not assigned (the record
 * is someone else's: it must not be processed); -1 on no memory: the record is not tracked and must not be
 * processed, and the partition's commit point never passes offset from then on (until it is assigned again). */
int xmcd_offsets_track(xmcd_offsets *offsets, const char *topic, int32_t partition, int64_t offset,
                       xmcd_part **part, uint64_t *seq);
/* Marks a tracked record finished and drops its partition reference (the handle may be freed). */
void xmcd_offsets_done(xmcd_offsets *offsets, xmcd_part *part, uint64_t seq);

/* Drops a tracked record without finishing it: the commit point never passes it (shutdown, abandon). */
void xmcd_offsets_drop(xmcd_offsets *offsets, xmcd_part *part, uint64_t seq);

/* Number of records tracked but not finished, over all partitions. */
uint64_t xmcd_offsets_pending(const xmcd_offsets *offsets);

/* Returns a new list of the assigned partitions whose commit point moved since the last call that was
 * confirmed (every one when all is set), or NULL when there is nothing to commit. The caller destroys it. */
rd_kafka_topic_partition_list_t *xmcd_offsets_committable(xmcd_offsets *offsets, int all);
/* Feeds the result of a commit back: partitions that failed are offered again by the next call. */
void xmcd_offsets_commit_result(xmcd_offsets *offsets, rd_kafka_resp_err_t err,
                                const rd_kafka_topic_partition_list_t *list);
/* The list of the assigned partitions (for pause/resume); the caller destroys it. */
rd_kafka_topic_partition_list_t *xmcd_offsets_assigned(const xmcd_offsets *offsets);

#endif
