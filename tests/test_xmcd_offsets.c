/* test_xmcd_offsets.c: xmcd's offset tracker (src/xmcd/offsets.c) alone: the commit point follows the lowest
 * unfinished offset, the pending count stays exact when a partition with finished records waiting behind an
 * unfinished one is revoked, and a dropped record releases its slot without the commit point passing it. */
#include <malloc.h>

#include "../src/xmcd/offsets.h"
#include "testutil.h"

static rd_kafka_topic_partition_list_t *parts(int n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++) rd_kafka_topic_partition_list_add(l, "in", p);
    return l;
}

/* The commit point of partition p in a committable(all) list, -1 when absent. */
static int64_t commit_point(xmcd_offsets *o, int p)
{
    rd_kafka_topic_partition_list_t *l = xmcd_offsets_committable(o, 1);
    rd_kafka_topic_partition_t *tp = l ? rd_kafka_topic_partition_list_find(l, "in", p) : NULL;
    int64_t at = tp ? tp->offset : -1;
    if (l) rd_kafka_topic_partition_list_destroy(l);
    return at;
}

/* The handle of a tracked record, or NULL (not assigned or no memory). */
static xmcd_part *xt_track(xmcd_offsets *o, const char *topic, int32_t partition, int64_t offset, uint64_t *seq)
{
    xmcd_part *part = NULL;
    return xmcd_offsets_track(o, topic, partition, offset, &part, seq) == 0 ? part : NULL;
}

static void test_commit_point_waits_for_lowest(void)
{
    xmcd_offsets *o = xmcd_offsets_new();
    rd_kafka_topic_partition_list_t *l = parts(1);
    CU_ASSERT_EQUAL(xmcd_offsets_assign(o, l), 0);
    uint64_t seq[3], none;
    xmcd_part *h[3], *other = NULL;
    CU_ASSERT_EQUAL(xmcd_offsets_track(o, "in", 1, 7, &other, &none), 1); /* not assigned: not tracked */
    CU_ASSERT_PTR_NULL(other);
    for (int i = 0; i < 3; i++) {
        h[i] = xt_track(o, "in", 0, 100 + i, &seq[i]); /* assigned */
        CU_ASSERT_PTR_NOT_NULL_FATAL(h[i]);
    }
    xmcd_offsets_done(o, h[2], seq[2]);
    xmcd_offsets_done(o, h[1], seq[1]);
    CU_ASSERT_EQUAL(commit_point(o, 0), -1); /* 100 is not acknowledged */
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 1);
    xmcd_offsets_done(o, h[0], seq[0]);
    CU_ASSERT_EQUAL(commit_point(o, 0), 103);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 0);
    xmcd_offsets_revoke(o, NULL);
    rd_kafka_topic_partition_list_destroy(l);
    xmcd_offsets_free(o);
}

/* Revoking a partition whose ring holds acknowledged records behind an unacknowledged one takes off pending
 * only the unacknowledged one (the count used to wrap below zero, pausing consumption for good). */
static void test_revoke_with_finished_behind_unfinished(void)
{
    xmcd_offsets *o = xmcd_offsets_new();
    rd_kafka_topic_partition_list_t *l = parts(2);
    CU_ASSERT_EQUAL(xmcd_offsets_assign(o, l), 0);
    uint64_t seq[4], other;
    xmcd_part *h[4];
    for (int i = 0; i < 4; i++) h[i] = xt_track(o, "in", 0, 10 + i, &seq[i]);
    xmcd_part *ho = xt_track(o, "in", 1, 5, &other);
    xmcd_offsets_done(o, h[1], seq[1]);
    xmcd_offsets_done(o, h[3], seq[3]);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 3);
    rd_kafka_topic_partition_list_t *p0 = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(p0, "in", 0);
    xmcd_offsets_revoke(o, p0);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 1); /* partition 1's record only */
    xmcd_offsets_done(o, h[0], seq[0]);          /* late acknowledgements of the revoked partition */
    xmcd_offsets_done(o, h[2], seq[2]);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 1);
    xmcd_offsets_done(o, ho, other);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 0);
    xmcd_offsets_revoke(o, NULL);
    rd_kafka_topic_partition_list_destroy(p0);
    rd_kafka_topic_partition_list_destroy(l);
    xmcd_offsets_free(o);
}

/* A dropped record (exactly-once: a copy of an aborted transaction) is never committed past, does not count
 * twice when its partition is revoked, and does not hold its ring: a partition that keeps running after a
 * drop uses bounded memory. */
static void test_drop_blocks_commit_and_frees_slot(void)
{
    xmcd_offsets *o = xmcd_offsets_new();
    rd_kafka_topic_partition_list_t *l = parts(1);
    CU_ASSERT_EQUAL(xmcd_offsets_assign(o, l), 0);
    uint64_t seq[3];
    xmcd_part *h[3];
    for (int i = 0; i < 3; i++) h[i] = xt_track(o, "in", 0, 20 + i, &seq[i]);
    xmcd_offsets_done(o, h[0], seq[0]);
    xmcd_offsets_drop(o, h[1], seq[1]);
    xmcd_offsets_done(o, h[2], seq[2]);
    CU_ASSERT_EQUAL(commit_point(o, 0), 21); /* stops below the dropped record */
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 0);
    /* a long run after the drop: the ring does not grow with it */
    struct mallinfo2 before = mallinfo2();
    int untracked = 0;
    for (int64_t off = 23; off < 23 + 2000000; off++) {
        uint64_t s;
        xmcd_part *p = xt_track(o, "in", 0, off, &s);
        if (p)
            xmcd_offsets_done(o, p, s);
        else
            untracked++;
    }
    struct mallinfo2 after = mallinfo2();
    CU_ASSERT_EQUAL(untracked, 0);
    CU_ASSERT(after.uordblks < before.uordblks + (1u << 20));
    CU_ASSERT_EQUAL(commit_point(o, 0), 21);
    uint64_t s;
    xmcd_part *p = xt_track(o, "in", 0, 3000000, &s);
    xmcd_offsets_drop(o, p, s);
    xmcd_offsets_revoke(o, NULL);
    CU_ASSERT_EQUAL(xmcd_offsets_pending(o), 0);
    rd_kafka_topic_partition_list_destroy(l);
    xmcd_offsets_free(o);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("xmcd_offsets", NULL, NULL);
    TU_ADD(s, test_commit_point_waits_for_lowest);
    TU_ADD(s, test_revoke_with_finished_behind_unfinished);
    TU_ADD(s, test_drop_blocks_commit_and_frees_slot);
    return tu_run(argc, argv);
}
