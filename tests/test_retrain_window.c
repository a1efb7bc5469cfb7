/* test_retrain_window.c: the retrainer's training window (src/retrain/window.c) alone: the last put of an id
 * wins and an empty label set removes it; the count and age bounds; a torn last append is cut off at every
 * byte it could end at (records and offsets of whole entries kept, later ones gone); a damaged entry before the
 * end makes the window start empty with the file set aside; a compaction that stops at any point leaves the
 * window as it was, and one that finished leaves the same records; a seed is written whole or not at all;
 * the read-only load changes nothing; one owner at a time. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/retrain/window.h"
#include "testutil.h"

static const xmcr_window_limits no_limits = {0, 0, UINT64_MAX};

static xmcr_window *open_ok(const char *dir, const xmcr_window_limits *lim, xmcr_window_open_info *info)
{
    char err[256] = "";
    xmcr_window *w = NULL;
    int rc = xmcr_window_open(dir, lim, 1000000, &w, info, err, sizeof err);
    if (rc) fprintf(stderr, "open %s: %s\n", dir, err);
    CU_ASSERT_EQUAL(rc, 0);
    return w;
}

static int put(xmcr_window *w, const char *id, const char *labels, const char *text, int64_t ts)
{
    char err[256];
    return xmcr_window_put(w, id, labels, text, ts, err, sizeof err);
}

static int sync_ok(xmcr_window *w)
{
    char err[256] = "";
    int rc = xmcr_window_sync(w, err, sizeof err);
    if (rc) fprintf(stderr, "sync: %s\n", err);
    return rc;
}

static int dump_one(void *ctx, const xmcr_record *rec)
{
    char *s = ctx;
    size_t n = strlen(s);
    snprintf(s + n, 8192 - n, "%s=%s|%s;", rec->id, rec->labels, rec->text);
    return 0;
}

/* The records in put order as one string (8192 bytes). */
static void dump(const xmcr_window *w, char *s)
{
    s[0] = 0;
    xmcr_window_foreach(w, dump_one, s);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    return (unsigned char *)tu_read_file(path, n);
}

static void spit(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_last_put_wins_and_empty_removes(void)
{
    char *dir = tu_tmpdir(), s[8192], err[256];
    xmcr_window_open_info info;
    xmcr_window *w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_NEW);
    CU_ASSERT_EQUAL(put(w, "a", "x", "text a", 1), 1);
    CU_ASSERT_EQUAL(put(w, "b", "y,z", "text b", 2), 1);
    CU_ASSERT_EQUAL(put(w, "a", "x", "text a", 3), 0);  /* same labels and text: not a change */
    CU_ASSERT_EQUAL(put(w, "a", "w", "text a", 4), 1);  /* new labels win */
    CU_ASSERT_EQUAL(put(w, "c", "", "", 5), 0);         /* removing an absent id changes nothing */
    CU_ASSERT_EQUAL(put(w, "b", "", "", 6), 1);
    CU_ASSERT_EQUAL(xmcr_window_count(w), 1);
    CU_ASSERT_EQUAL(xmcr_window_set_offset(w, "cur", 2, 17, err, sizeof err), 0);
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 2), -1); /* not durable before the sync */
    CU_ASSERT_EQUAL(sync_ok(w), 0);
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 2), 17);
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "other", 2), -1);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "a=w|text a;");
    xmcr_window_close(w);
    w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
    CU_ASSERT_EQUAL(info.entries, 7);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "a=w|text a;");
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 2), 17);
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

static void test_count_and_age_bounds(void)
{
    char *dir = tu_tmpdir(), s[8192];
    xmcr_window_limits lim = {3, 100, UINT64_MAX};
    xmcr_window *w = open_ok(dir, &lim, NULL);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%d", i);
        put(w, id, "l", "t", 999900 + 10 * i);
    }
    put(w, "p2", "l2", "t", 999950); /* a re-put moves p2 to the end */
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "p3=l|t;p4=l|t;p2=l2|t;");
    CU_ASSERT_EQUAL(xmcr_window_expire(w, 1000035), 1); /* p3 (999930) is older than 100 ms, p4 (999940) not */
    CU_ASSERT_EQUAL(xmcr_window_count(w), 2);
    CU_ASSERT_EQUAL(sync_ok(w), 0);
    xmcr_window_close(w);
    /* a replay at a later time applies the age bound again */
    char err[256];
    xmcr_window_open_info info;
    CU_ASSERT_EQUAL(xmcr_window_open(dir, &lim, 1000045, &w, &info, err, sizeof err), 0);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "p2=l2|t;");
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

/* A log with two synced batches; the second batch's records and offsets are what a torn append may lose. */
static void make_two_batches(const char *dir, size_t *first_end, size_t *total)
{
    char err[256], path[1100];
    xmcr_window *w = open_ok(dir, &no_limits, NULL);
    put(w, "a", "x", "ta", 1);
    put(w, "b", "y", "tb", 2);
    xmcr_window_set_offset(w, "cur", 0, 2, err, sizeof err);
    sync_ok(w);
    *first_end = xmcr_window_log_bytes(w);
    put(w, "c", "z", "tc", 3);
    put(w, "a", "", "", 4);
    xmcr_window_set_offset(w, "cur", 0, 4, err, sizeof err);
    sync_ok(w);
    *total = xmcr_window_log_bytes(w);
    xmcr_window_close(w);
    snprintf(path, sizeof path, "%s/window.log", dir);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL((size_t)st.st_size, *total);
}

static void test_torn_tail_cut_at_every_byte(void)
{
    char *dir = tu_tmpdir(), path[1100], s[8192];
    size_t first_end, total, n;
    make_two_batches(dir, &first_end, &total);
    snprintf(path, sizeof path, "%s/window.log", dir);
    unsigned char *full = slurp(path, &n);
    CU_ASSERT_EQUAL_FATAL(n, total);
    for (size_t cut = first_end; cut <= total; cut++) {
        spit(path, full, cut);
        xmcr_window_open_info info;
        xmcr_window *w = open_ok(dir, &no_limits, &info);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        dump(w, s);
        if (cut == total) {
            CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
            CU_ASSERT_STRING_EQUAL(s, "b=y|tb;c=z|tc;");
            CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 0), 4);
        } else {
            /* whatever whole entries of the second batch survived may be applied; its offsets entry (the last) is
             * not, so Kafka sends its records again, and the first batch is always whole */
            CU_ASSERT(info.state == XMCR_WINDOW_OK || info.state == XMCR_WINDOW_TORN); /* OK at entry ends */
            CU_ASSERT_EQUAL(info.torn_bytes + xmcr_window_log_bytes(w), cut);
            CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 0), 2);
            CU_ASSERT(!strncmp(s, "a=x|ta;b=y|tb;", 14) || !strncmp(s, "b=y|tb;", 7));
            CU_ASSERT_EQUAL(xmcr_window_log_bytes(w) <= cut, 1);
        }
        xmcr_window_close(w);
        /* the cut-off file reopens whole */
        w = open_ok(dir, &no_limits, &info);
        CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
        xmcr_window_close(w);
    }
    free(full);
    tu_rmrf(dir);
    free(dir);
}

static void test_damaged_entry_sets_file_aside(void)
{
    char *dir = tu_tmpdir(), path[1100];
    size_t first_end, total, n;
    make_two_batches(dir, &first_end, &total);
    snprintf(path, sizeof path, "%s/window.log", dir);
    unsigned char *full = slurp(path, &n);
    /* a byte inside the first batch: damage with whole entries after it, never a torn tail */
    for (size_t at = 16; at < first_end; at += 5) {
        full[at] ^= 0x40;
        spit(path, full, n);
        full[at] ^= 0x40;
        xmcr_window_open_info info;
        xmcr_window *w = open_ok(dir, &no_limits, &info);
        CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_DAMAGED);
        CU_ASSERT_EQUAL(xmcr_window_count(w), 0);
        CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 0), -1); /* rebuilt from the earliest records */
        struct stat st;
        CU_ASSERT_EQUAL(stat(info.damaged_path, &st), 0);
        CU_ASSERT_EQUAL((size_t)st.st_size, n);
        unlink(info.damaged_path);
        xmcr_window_close(w);
    }
    /* a bad header */
    full[3] ^= 1;
    spit(path, full, n);
    xmcr_window_open_info info;
    xmcr_window *w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_DAMAGED);
    unlink(info.damaged_path);
    xmcr_window_close(w);
    free(full);
    tu_rmrf(dir);
    free(dir);
}

static void test_compaction_crash_points(void)
{
    char *dir = tu_tmpdir(), path[1100], tmp[1200], s[8192], before[8192], err[256];
    snprintf(path, sizeof path, "%s/window.log", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    xmcr_window *w = open_ok(dir, &no_limits, NULL);
    for (int i = 0; i < 60; i++) {
        char id[16], labels[16];
        snprintf(id, sizeof id, "p%d", i % 13);
        snprintf(labels, sizeof labels, i % 7 == 3 ? "" : "l%d", i);
        put(w, id, labels, "some text", i);
    }
    xmcr_window_set_offset(w, "cur", 1, 60, err, sizeof err);
    sync_ok(w);
    dump(w, before);
    size_t old_n, new_n;
    unsigned char *old = slurp(path, &old_n);
    CU_ASSERT_EQUAL(xmcr_window_compact(w, err, sizeof err), 0);
    CU_ASSERT(xmcr_window_log_bytes(w) < old_n);
    xmcr_window_close(w);
    unsigned char *fresh = slurp(path, &new_n);
    /* stopped before the rename: the old log and any prefix of the new one as window.log.tmp */
    for (size_t cut = 0; cut <= new_n; cut++) {
        spit(path, old, old_n);
        spit(tmp, fresh, cut);
        xmcr_window_open_info info;
        w = open_ok(dir, &no_limits, &info);
        CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
        dump(w, s);
        CU_ASSERT_STRING_EQUAL(s, before);
        CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 1), 60);
        CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
        xmcr_window_close(w);
    }
    /* after the rename: the new log alone */
    spit(path, fresh, new_n);
    xmcr_window_open_info info;
    w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, before);
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 1), 60);
    xmcr_window_close(w);
    free(old);
    free(fresh);
    tu_rmrf(dir);
    free(dir);
}

static void test_sync_compacts_when_due(void)
{
    char *dir = tu_tmpdir(), s[8192], again[8192];
    xmcr_window_limits lim = {0, 0, 2048};
    xmcr_window *w = open_ok(dir, &lim, NULL);
    for (int i = 0; i < 400; i++) {
        put(w, i % 2 ? "odd" : "even", i % 3 ? "a" : "b", "the same text each time", i);
        CU_ASSERT_EQUAL(sync_ok(w), 0);
    }
    CU_ASSERT(xmcr_window_log_bytes(w) < 8192); /* 400 puts of ~60 bytes each would be 24 KB */
    dump(w, s);
    xmcr_window_close(w);
    w = open_ok(dir, &lim, NULL);
    dump(w, again);
    CU_ASSERT_STRING_EQUAL(s, again);
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

static void test_seed_tsv(void)
{
    char *dir = tu_tmpdir(), tsv[1100], s[8192], err[256];
    snprintf(tsv, sizeof tsv, "%s/seed.tsv", dir);
    CU_ASSERT_EQUAL(tu_write_file(tsv, "a,b\tfirst text\n\tno labels\nc\tthird\n"), 0);
    xmcr_window *w = open_ok(dir, &no_limits, NULL);
    CU_ASSERT_EQUAL(xmcr_window_seed_tsv(w, tsv, "seed:", 5, err, sizeof err), 2);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "seed:1=a,b|first text;seed:3=c|third;");
    CU_ASSERT_EQUAL(tu_write_file(tsv, "no tab here\n"), 0);
    CU_ASSERT_EQUAL(xmcr_window_seed_tsv(w, tsv, "seed:", 5, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1: no TAB"));
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

/* A crash while seeding leaves the log without an entry (the retrainer seeds such a window again): the seed is
 * written by a compaction, whole, never as an append a crash could cut between records. */
static void test_seed_whole_or_nothing(void)
{
    char *dir = tu_tmpdir(), tsv[1100], s[8192], err[256];
    snprintf(tsv, sizeof tsv, "%s/seed.tsv", dir);
    CU_ASSERT_EQUAL(tu_write_file(tsv, "a\tone\nb\ttwo\nc\tthree\n"), 0);
    xmcr_window_open_info info;
    xmcr_window *w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_NEW);
    xmcr_window_close(w); /* the process died before its seed reached the disk */
    w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
    CU_ASSERT_EQUAL(info.entries, 0);
    put(w, "k", "x", "consumed before the seed", 1);
    CU_ASSERT_EQUAL(xmcr_window_set_offset(w, "cur", 1, 7, err, sizeof err), 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/window.log", dir);
    struct stat before, after;
    CU_ASSERT_EQUAL(stat(path, &before), 0);
    CU_ASSERT_EQUAL(xmcr_window_seed_tsv(w, tsv, "seed:", 5, err, sizeof err), 3);
    /* a new file renamed over the log, not an append to it */
    CU_ASSERT_EQUAL(stat(path, &after), 0);
    CU_ASSERT_NOT_EQUAL(before.st_ino, after.st_ino);
    /* no compaction leftover; the reopened log holds everything put, the offsets too, as whole entries */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/window.log.tmp", dir);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    xmcr_window_close(w);
    w = open_ok(dir, &no_limits, &info);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_OK);
    CU_ASSERT_EQUAL(info.entries, 5); /* 4 records and the offsets */
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "k=x|consumed before the seed;seed:1=a|one;seed:2=b|two;seed:3=c|three;");
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 1), 7);
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

/* xmcr_window_load reads what open would, and changes no byte: a torn tail stays, a damaged log stays in place,
 * nothing is created; the window it gives cannot be synced. */
static void test_load_is_read_only(void)
{
    char *dir = tu_tmpdir(), path[1100], s[8192], err[256], missing[1200];
    size_t first_end, total, n, n2;
    xmcr_window_open_info info;
    xmcr_window *w = NULL;
    snprintf(missing, sizeof missing, "%s/none", dir);
    CU_ASSERT_EQUAL(xmcr_window_load(missing, &no_limits, 1000000, &w, &info, err, sizeof err), -1);
    CU_ASSERT_EQUAL(access(missing, F_OK), -1);
    make_two_batches(dir, &first_end, &total);
    snprintf(path, sizeof path, "%s/window.log", dir);
    unsigned char *full = slurp(path, &n);
    spit(path, full, total - 3); /* an append in flight */
    CU_ASSERT_EQUAL_FATAL(xmcr_window_load(dir, &no_limits, 1000000, &w, &info, err, sizeof err), 0);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_TORN);
    CU_ASSERT_EQUAL(xmcr_window_offset(w, "cur", 0), 2);
    CU_ASSERT_STRING_EQUAL(xmcr_window_topic(w), "cur");
    CU_ASSERT_EQUAL(xmcr_window_log_bytes(w), total - 3);
    put(w, "z", "q", "t", 9);
    CU_ASSERT_EQUAL(xmcr_window_sync(w, err, sizeof err), -1);
    CU_ASSERT_EQUAL(xmcr_window_compact(w, err, sizeof err), -1);
    xmcr_window_close(w);
    unsigned char *after = slurp(path, &n2);
    CU_ASSERT_EQUAL(n2, total - 3);
    CU_ASSERT_EQUAL(memcmp(after, full, n2), 0);
    free(after);
    full[20] ^= 0x40; /* damage inside the first batch */
    spit(path, full, total);
    CU_ASSERT_EQUAL_FATAL(xmcr_window_load(dir, &no_limits, 1000000, &w, &info, err, sizeof err), 0);
    CU_ASSERT_EQUAL(info.state, XMCR_WINDOW_DAMAGED);
    dump(w, s);
    CU_ASSERT_STRING_EQUAL(s, "");
    xmcr_window_close(w);
    after = slurp(path, &n2); /* still there, as it was */
    CU_ASSERT_EQUAL(n2, total);
    CU_ASSERT_PTR_NOT_NULL(after);
    if (after) CU_ASSERT_EQUAL(memcmp(after, full, n2), 0);
    free(after);
    free(full);
    tu_rmrf(dir);
    free(dir);
}

/* One owner at a time: a second open fails while the first holds the window; reading it stays possible. */
static void test_one_owner(void)
{
    char *dir = tu_tmpdir(), err[256] = "";
    xmcr_window *w = open_ok(dir, &no_limits, NULL), *w2 = NULL;
    CU_ASSERT_EQUAL(xmcr_window_open(dir, &no_limits, 1000000, &w2, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use by another process"));
    CU_ASSERT_EQUAL(xmcr_window_load(dir, &no_limits, 1000000, &w2, NULL, err, sizeof err), 0);
    xmcr_window_close(w2);
    xmcr_window_close(w);
    w = open_ok(dir, &no_limits, NULL);
    xmcr_window_close(w);
    tu_rmrf(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("retrain_window", NULL, NULL);
    TU_ADD(s, test_last_put_wins_and_empty_removes);
    TU_ADD(s, test_count_and_age_bounds);
    TU_ADD(s, test_torn_tail_cut_at_every_byte);
    TU_ADD(s, test_damaged_entry_sets_file_aside);
    TU_ADD(s, test_compaction_crash_points);
    TU_ADD(s, test_sync_compacts_when_due);
    TU_ADD(s, test_seed_tsv);
    TU_ADD(s, test_seed_whole_or_nothing);
    TU_ADD(s, test_load_is_read_only);
    TU_ADD(s, test_one_owner);
    return tu_run(argc, argv);
}
