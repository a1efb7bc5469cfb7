/* offsets.c: per-partition ring of in-flight offsets and the commit point; see offsets.h.
 *
 * Each partition keeps its pending records in a ring in consumption (= offset) order with a done flag; a
 * record is named by a sequence number, so finishing one is O(1) and the head advances over the finished
 * prefix, moving the commit point to one past the last finished offset. Out-of-order acknowledgements
 * (output topic partitions acknowledge independently) simply wait in the ring until the prefix below them is
 * done. Partitions are reference counted: the assignment holds one reference and every pending record one. */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

struct xmcd_part {
    char *topic;
    int32_t partition;
    int64_t *offs;      /* ring of pending offsets */
    uint8_t *done;      /* ring of flags: 0 pending, 1 done, 2 dropped (never committed past) */
    size_t cap, head, count;
    size_t pending;     /* records in the ring neither done nor dropped (what the partition adds to pending) */
    uint64_t head_seq;  /* sequence number of offs[head] */
    int64_t commit_at;  /* offset safe to commit, -1 = nothing consumed yet */
    int64_t untracked;  /* lowest offset that could not be tracked (no memory), -1 = none: never committed past */
    int64_t committed;  /* last offset handed out for commit, -2 = must re-offer */
    int refs;
    int detached;
    int blocked; /* a dropped record reached the head: commit_at stays below it for good */
};

struct xmcd_offsets {
    xmcd_part **parts; /* assigned partitions */
    size_t n, cap;
    uint64_t pending;
};

xmcd_offsets *xmcd_offsets_new(void) { return calloc(1, sizeof(xmcd_offsets)); }

static void xmcd_part_free(xmcd_part *part)
{
    free(part->topic);
    free(part->offs);
    free(part->done);
    free(part);
}

static void xmcd_part_unref(xmcd_part *part)
{
    if (--part->refs == 0) xmcd_part_free(part);
}

void xmcd_offsets_free(xmcd_offsets *offsets)
{
    if (!offsets) return;
    for (size_t i = 0; i < offsets->n; i++) xmcd_part_free(offsets->parts[i]);
    free(offsets->parts);
    free(offsets);
}

static xmcd_part *xmcd_offsets_find(const xmcd_offsets *offsets, const char *topic, int32_t partition,
                                    size_t *index)
{
    for (size_t i = 0; i < offsets->n; i++) {
        xmcd_part *part = offsets->parts[i];
        if (part->partition == partition && !strcmp(part->topic, topic)) {
            if (index) *index = i;
            return part;
        }
    }
    return NULL;
}

int xmcd_offsets_assign(xmcd_offsets *offsets, const rd_kafka_topic_partition_list_t *list)
{
    size_t before = offsets->n; /* on no memory, the partitions added by this call are taken back */
    for (int i = 0; list && i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (xmcd_offsets_find(offsets, tp->topic, tp->partition, NULL)) continue;
        if (offsets->n == offsets->cap) {
            size_t cap = offsets->cap ? offsets->cap * 2 : 16;
            xmcd_part **parts = realloc(offsets->parts, cap * sizeof *parts);
            if (!parts) goto no_memory;
            offsets->parts = parts;
            offsets->cap = cap;
        }
        xmcd_part *part = calloc(1, sizeof *part);
        if (!part || !(part->topic = strdup(tp->topic))) {
            free(part);
            goto no_memory;
        }
        part->partition = tp->partition;
        part->commit_at = -1;
        part->untracked = -1;
        part->committed = -1;
        part->refs = 1;
        offsets->parts[offsets->n++] = part;
    }
    return 0;
no_memory: /* new partitions hold no records yet */
    while (offsets->n > before) xmcd_part_free(offsets->parts[--offsets->n]);
    return -1;
}

static void xmcd_offsets_detach(xmcd_offsets *offsets, size_t index)
{
    xmcd_part *part = offsets->parts[index];
    offsets->parts[index] = offsets->parts[--offsets->n];
    part->detached = 1;
    /* their late acknowledgements no longer count; not part->count: the ring also holds records done or dropped
     * behind an unfinished one, which pending no longer counts */
    offsets->pending -= part->pending;
    xmcd_part_unref(part);
}

void xmcd_offsets_revoke(xmcd_offsets *offsets, const rd_kafka_topic_partition_list_t *list)
{
    if (!list) {
        while (offsets->n) xmcd_offsets_detach(offsets, offsets->n - 1);
        return;
    }
    for (int i = 0; i < list->cnt; i++) {
        size_t index;
        if (xmcd_offsets_find(offsets, list->elems[i].topic, list->elems[i].partition, &index))
            xmcd_offsets_detach(offsets, index);
    }
}

static int xmcd_part_grow(xmcd_part *part)
{
    size_t cap = part->cap ? part->cap * 2 : 256;
    int64_t *offs = malloc(cap * sizeof *offs);
    uint8_t *done = malloc(cap);
    if (!offs || !done) {
        free(offs);
        free(done);
        return -1;
    }
    for (size_t i = 0; i < part->count; i++) {
        offs[i] = part->offs[(part->head + i) % part->cap];
        done[i] = part->done[(part->head + i) % part->cap];
    }
    free(part->offs);
    free(part->done);
    part->offs = offs;
    part->done = done;
    part->cap = cap;
    part->head = 0;
    return 0;
}

int xmcd_offsets_track(xmcd_offsets *offsets, const char *topic, int32_t partition, int64_t offset,
                       xmcd_part **part_out, uint64_t *seq)
{
    *part_out = NULL;
    xmcd_part *part = xmcd_offsets_find(offsets, topic, partition, NULL);
    if (!part) return 1;
    if (part->count == part->cap && xmcd_part_grow(part) != 0) {
        /* the record will not be processed: records after it may finish, the commit point must not pass it */
        if (part->untracked < 0 || offset < part->untracked) part->untracked = offset;
        return -1;
    }
    size_t slot = (part->head + part->count) % part->cap;
    part->offs[slot] = offset;
    part->done[slot] = 0;
    *seq = part->head_seq + part->count;
    part->count++;
    part->pending++;
    part->refs++;
    offsets->pending++;
    *part_out = part;
    return 0;
}

/* Marks seq done (1) or dropped (2) and moves the head over the finished prefix. */
static void xmcd_part_finish(xmcd_part *part, uint64_t seq, uint8_t how)
{
    part->done[(part->head + (seq - part->head_seq)) % part->cap] = how;
    part->pending--;
    while (part->count && part->done[part->head]) {
        if (part->done[part->head] == 2) part->blocked = 1;
        if (!part->blocked) part->commit_at = part->offs[part->head] + 1;
        part->head = (part->head + 1) % part->cap;
        part->head_seq++;
        part->count--;
    }
}

void xmcd_offsets_done(xmcd_offsets *offsets, xmcd_part *part, uint64_t seq)
{
    if (!part->detached) {
        xmcd_part_finish(part, seq, 1);
        offsets->pending--;
    }
    xmcd_part_unref(part);
}

void xmcd_offsets_drop(xmcd_offsets *offsets, xmcd_part *part, uint64_t seq)
{
    /* the slot is released (a ring stuck on it would grow without bound: exactly-once drops the copies of
     * an aborted transaction and keeps running) but the commit point stops below it */
    if (!part->detached) {
        xmcd_part_finish(part, seq, 2);
        offsets->pending--;
    }
    xmcd_part_unref(part);
}

uint64_t xmcd_offsets_pending(const xmcd_offsets *offsets) { return offsets->pending; }

rd_kafka_topic_partition_list_t *xmcd_offsets_committable(xmcd_offsets *offsets, int all)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    for (size_t i = 0; i < offsets->n; i++) {
        xmcd_part *part = offsets->parts[i];
        int64_t at = part->untracked >= 0 && part->commit_at > part->untracked ? part->untracked : part->commit_at;
        if (at < 0 || (!all && at == part->committed)) continue;
        if (!list) list = rd_kafka_topic_partition_list_new((int)offsets->n);
        rd_kafka_topic_partition_list_add(list, part->topic, part->partition)->offset = at;
        part->committed = at;
    }
    return list;
}

void xmcd_offsets_commit_result(xmcd_offsets *offsets, rd_kafka_resp_err_t err,
                                const rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; list && i < list->cnt; i++) {
        if (!err && !list->elems[i].err) continue;
        xmcd_part *part = xmcd_offsets_find(offsets, list->elems[i].topic, list->elems[i].partition, NULL);
        if (part) part->committed = -2;
    }
}

rd_kafka_topic_partition_list_t *xmcd_offsets_assigned(const xmcd_offsets *offsets)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)offsets->n + 1);
    for (size_t i = 0; i < offsets->n; i++)
        rd_kafka_topic_partition_list_add(list, offsets->parts[i]->topic, offsets->parts[i]->partition);
    return list;
}
