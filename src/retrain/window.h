/* window.h: the retrainer's training window: curated records keyed by product id, kept on disk durably.
 *
 * The window maps a product id to its last label set and text (the last put wins; an empty label set removes
 * the product), bounded by a record count and an age (the least recently put records go first). It lives in
 * memory and in one append-only log, <dir>/window.log, which a compaction rewrites from time to time.
 *
 * Durability: puts and offsets are buffered by xmcr_window_put / xmcr_window_set_offset and reach the disk at
 * xmcr_window_sync(), which appends them (the offsets entry last), fsyncs the log and only then returns: a
 * caller commits to Kafka the offsets it set before a successful sync, never before, so every record whose
 * offset was committed is in a durable entry. Opening replays the log; an entry that fails its checksum or runs
 * past the end of the file, with no whole entry after it, is a torn append (a crash during it): it is cut off,
 * reported and its records come again from Kafka (their offsets were never stored). A bad entry anywhere else
 * (a whole, checksummed entry follows it, or the header is bad) is damage: the
 * file is renamed aside (window.log.damaged-<time>), reported, and the window starts empty with no offsets, to
 * be rebuilt from the topic's earliest retained records; it is never used as it is.
 *
 * Compaction writes the live records and the offsets into window.log.tmp, fsyncs it, renames it over
 * window.log and fsyncs the directory; a crash before the rename leaves the old log (the tmp file is removed
 * at the next open), after it the new one.
 *
 * Log format (little-endian):
 *   offset size  meaning
 *   0      8     magic "XMCRWIN\0"
 *   8      4     format version (1)
 *   12     4     XXH32 (seed 0) of bytes 0..11
 *   16     ...   entries, each:
 *                 0  4  payload length L (at most XMCR_WINDOW_MAX_ENTRY)
 *                 4  4  XXH32 of the type byte and the payload, seeded with L
 *                 8  1  type: 1 put, 2 remove, 3 offsets
 *                 9  L  payload
 *   put:     i64 time (ms since the epoch), u32 id length, u32 labels length, u32 text length, id, labels, text
 *   remove:  i64 time, u32 id length, id
 *   offsets: u32 topic length, u32 n, topic, n x (i32 partition, i64 next offset to consume)
 *
 * Ownership: the window owns its records; pointers handed to callbacks live until the next put or sync.
 * Functions that can fail return 0 or -1 with err (and leave the window usable in memory; the log may hold a
 * partial append, which the next open cuts off as a torn tail). One thread at a time. */
#ifndef XMCR_WINDOW_H
#define XMCR_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#define XMCR_WINDOW_MAX_ENTRY (64u << 20)
#define XMCR_WINDOW_MAX_PARTITIONS 1024

typedef struct xmcr_window xmcr_window;

typedef struct xmcr_window_limits {
    uint64_t max_records;    /* 0: no bound */
    int64_t max_age_ms;      /* 0: no bound; records put longer ago than this are dropped */
    uint64_t compact_bytes;  /* compact when the log exceeds this and twice the live records' size */
} xmcr_window_limits;

/* What opening found. */
typedef enum xmcr_window_state {
    XMCR_WINDOW_NEW = 0,   /* no log: created empty */
    XMCR_WINDOW_OK,        /* the log replayed whole */
    XMCR_WINDOW_TORN,      /* a torn tail was cut off (torn_bytes) */
    XMCR_WINDOW_DAMAGED    /* the log was damaged: renamed to damaged_path, the window starts empty */
} xmcr_window_state;

typedef struct xmcr_window_open_info {
    xmcr_window_state state;
    uint64_t entries;          /* entries replayed */
    uint64_t torn_bytes;       /* TORN: bytes cut off */
    uint64_t bad_offset;       /* TORN, DAMAGED: where the first bad entry starts */
    char damaged_path[1100];   /* DAMAGED: where the damaged log now is */
    char reason[160];          /* TORN, DAMAGED: what was wrong */
} xmcr_window_open_info;

/* One record as the window holds it; strings are NUL-terminated. */
typedef struct xmcr_record {
    const char *id, *labels, *text; /* labels: comma-separated names, as `xmc train` reads them */
    int64_t ts_ms;
} xmcr_record;

/* Opens (or creates) the window in dir (created if missing), replaying its log with the limits applied at
 * now_ms. The window has one owner: open takes an exclusive flock on <dir>/window.lock, held until close or the
 * death of the last process holding it (a forked child inherits it), and fails while another holds it. Returns 0
 * with *out, or -1 with err and nothing allocated. info may be NULL. */
int xmcr_window_open(const char *dir, const xmcr_window_limits *limits, int64_t now_ms, xmcr_window **out,
                     xmcr_window_open_info *info, char *err, size_t errlen);
/* Replays the log as xmcr_window_open does, read-only: nothing in dir is created, cut, renamed or removed, so it
 * may run beside the process that owns the window (an append in flight reads as a torn tail; info says so). The
 * window it gives can be read, not put into or synced. -1 with err when there is no log. */
int xmcr_window_load(const char *dir, const xmcr_window_limits *limits, int64_t now_ms, xmcr_window **out,
                     xmcr_window_open_info *info, char *err, size_t errlen);
/* Frees the window; unsynced puts are lost (their offsets were never stored). */
void xmcr_window_close(xmcr_window *w);

/* Puts a record (labels "" removes id) in memory and buffers its log entry. Returns 1 when the window changed
 * (new id, other labels or text, or a removal of a present id), 0 when not, -1 with err (no memory). */
int xmcr_window_put(xmcr_window *w, const char *id, const char *labels, const char *text, int64_t ts_ms, char *err,
                    size_t errlen);
/* Drops the records older than now_ms - max_age_ms (in memory; the log catches up at compaction, and a replay
 * drops them again). Returns the number dropped. */
uint64_t xmcr_window_expire(xmcr_window *w, int64_t now_ms);
/* Buffers "next offset to consume" for topic/partition (written by the next sync). -1 with err for a partition
 * out of 0..XMCR_WINDOW_MAX_PARTITIONS-1. A different topic than the stored one replaces the stored offsets. */
int xmcr_window_set_offset(xmcr_window *w, const char *topic, int32_t partition, int64_t next, char *err,
                           size_t errlen);
/* The durable (synced) next offset of topic/partition, or -1 when none is stored. */
int64_t xmcr_window_offset(const xmcr_window *w, const char *topic, int32_t partition);
/* Appends the buffered entries and the offsets, fsyncs; compacts when due. 0, or -1 with err. */
int xmcr_window_sync(xmcr_window *w, char *err, size_t errlen);
/* Rewrites the log now (see above). 0, or -1 with err (the old log stays in use). */
int xmcr_window_compact(xmcr_window *w, char *err, size_t errlen);

/* Loads a TSV of "labels<TAB>text" lines (what `xmc train` reads) as records "<prefix><line number>" and writes
 * them by a compaction (see above), so the log holds the whole seed or, after a crash, none of it (no entry:
 * info.entries 0 at the next open, which is when a caller seeds). Returns the records put, or -1 with err. */
long xmcr_window_seed_tsv(xmcr_window *w, const char *path, const char *prefix, int64_t ts_ms, char *err,
                          size_t errlen);

uint64_t xmcr_window_count(const xmcr_window *w);
/* The topic of the durable offsets ("" when none is stored). */
const char *xmcr_window_topic(const xmcr_window *w);
/* Bytes of the log on disk (synced). */
uint64_t xmcr_window_log_bytes(const xmcr_window *w);
/* Looks a record up; 0 with *rec filled, -1 when absent. */
int xmcr_window_get(const xmcr_window *w, const char *id, xmcr_record *rec);
/* Calls fn for each record, least recently put first; stops at and returns fn's first non-zero result. */
int xmcr_window_foreach(const xmcr_window *w, int (*fn)(void *ctx, const xmcr_record *rec), void *ctx);

#endif
