/* window.c: the training window in memory (hash by id + a list in put order) and its log; see window.h.
 *
 * A record is one allocation (header and its three strings). The hash chains records by XXH64 of the id; the
 * doubly linked list keeps them least recently put first, so the count bound and the age bound both drop from
 * its head. Puts are encoded at once into a pending buffer, which sync appends with one write, the offsets
 * entry last, then fsync. Replay decodes the same entries through the same put path. */
#include "window.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define XMCR_MAGIC "XMCRWIN"
#define XMCR_FORMAT 1u
#define XMCR_HEADER 16u
#define XMCR_ENTRY_HEAD 9u

enum { XMCR_E_PUT = 1, XMCR_E_DEL = 2, XMCR_E_OFFSETS = 3 };

typedef struct xmcr_rec {
    uint64_t hash;
    int64_t ts_ms;
    struct xmcr_rec *hnext, *prev, *next;
    uint32_t id_len, labels_len, text_len;
    char data[]; /* id\0labels\0text\0 */
} xmcr_rec;

typedef struct xmcr_buf {
    unsigned char *p;
    size_t len, cap;
} xmcr_buf;

struct xmcr_window {
    char dir[1024], path[1100];
    xmcr_window_limits limits;
    int fd, lock_fd;
    uint64_t log_bytes, live_bytes, count;
    xmcr_rec **buckets;
    size_t nbuckets;
    xmcr_rec *head, *tail;
    /* offsets: durable (synced) and pending (set since) */
    char topic[256], pending_topic[256];
    int64_t offsets[XMCR_WINDOW_MAX_PARTITIONS], pending[XMCR_WINDOW_MAX_PARTITIONS];
    int offsets_dirty;
    xmcr_buf buf; /* entries not yet written */
};

/* ==== bytes ============================================================================================== */

static int buf_reserve(xmcr_buf *b, size_t more)
{
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Appends one entry of type with the payload pieces (ptr, len pairs) to b. */
static int entry_add(xmcr_buf *b, int type, const void *const *parts, const size_t *lens, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    if (total > XMCR_WINDOW_MAX_ENTRY || buf_reserve(b, XMCR_ENTRY_HEAD + total)) return -1;
    unsigned char *e = b->p + b->len;
    put_u32(e, (uint32_t)total);
    e[8] = (unsigned char)type;
    size_t o = XMCR_ENTRY_HEAD;
    for (int i = 0; i < n; i++) {
        if (lens[i]) memcpy(e + o, parts[i], lens[i]);
        o += lens[i];
    }
    put_u32(e + 4, XXH32(e + 8, 1 + total, (uint32_t)total)); /* seeded by the length: it is covered too */
    b->len += XMCR_ENTRY_HEAD + total;
    return 0;
}

static int entry_put(xmcr_buf *b, const char *id, const char *labels, const char *text, int64_t ts_ms)
{
    unsigned char head[20];
    size_t il = strlen(id), ll = strlen(labels), tl = strlen(text);
    put_u64(head, (uint64_t)ts_ms);
    put_u32(head + 8, (uint32_t)il);
    put_u32(head + 12, (uint32_t)ll);
    put_u32(head + 16, (uint32_t)tl);
    const void *parts[] = {head, id, labels, text};
    size_t lens[] = {sizeof head, il, ll, tl};
    return entry_add(b, XMCR_E_PUT, parts, lens, 4);
}

static int entry_del(xmcr_buf *b, const char *id, int64_t ts_ms)
{
    unsigned char head[12];
    size_t il = strlen(id);
    put_u64(head, (uint64_t)ts_ms);
    put_u32(head + 8, (uint32_t)il);
    const void *parts[] = {head, id};
    size_t lens[] = {sizeof head, il};
    return entry_add(b, XMCR_E_DEL, parts, lens, 2);
}

static int entry_offsets(xmcr_buf *b, const char *topic, const int64_t *offsets)
{
    uint32_t n = 0;
    for (int p = 0; p < XMCR_WINDOW_MAX_PARTITIONS; p++) n += offsets[p] >= 0;
    unsigned char head[8], *pairs = malloc(12 * (size_t)(n ? n : 1));
    if (!pairs) return -1;
    size_t tl = strlen(topic), o = 0;
    put_u32(head, (uint32_t)tl);
    put_u32(head + 4, n);
    for (int p = 0; p < XMCR_WINDOW_MAX_PARTITIONS; p++) {
        if (offsets[p] < 0) continue;
        put_u32(pairs + o, (uint32_t)p);
        put_u64(pairs + o + 4, (uint64_t)offsets[p]);
        o += 12;
    }
    const void *parts[] = {head, topic, pairs};
    size_t lens[] = {sizeof head, tl, o};
    int rc = entry_add(b, XMCR_E_OFFSETS, parts, lens, 3);
    free(pairs);
    return rc;
}

/* ==== records in memory ================================================================================== */

static xmcr_rec *rec_find(const xmcr_window *w, const char *id, uint64_t hash)
{
    if (!w->nbuckets) return NULL;
    for (xmcr_rec *r = w->buckets[hash & (w->nbuckets - 1)]; r; r = r->hnext)
        if (r->hash == hash && !strcmp(r->data, id)) return r;
    return NULL;
}

static void rec_unlink(xmcr_window *w, xmcr_rec *r)
{
    xmcr_rec **pp = &w->buckets[r->hash & (w->nbuckets - 1)];
    while (*pp != r) pp = &(*pp)->hnext;
    *pp = r->hnext;
    if (r->prev) r->prev->next = r->next;
    else w->head = r->next;
    if (r->next) r->next->prev = r->prev;
    else w->tail = r->prev;
    w->count--;
    w->live_bytes -= XMCR_ENTRY_HEAD + 20 + r->id_len + r->labels_len + r->text_len;
    free(r);
}

static int rec_grow(xmcr_window *w)
{
    if (w->count < w->nbuckets) return 0;
    size_t n = w->nbuckets ? w->nbuckets * 2 : 1024;
    xmcr_rec **b = calloc(n, sizeof *b);
    if (!b) return -1;
    for (xmcr_rec *r = w->head; r; r = r->next) {
        r->hnext = b[r->hash & (n - 1)];
        b[r->hash & (n - 1)] = r;
    }
    free(w->buckets);
    w->buckets = b;
    w->nbuckets = n;
    return 0;
}

/* Drops from the head while the count bound is exceeded. */
static void rec_bound(xmcr_window *w)
{
    while (w->limits.max_records && w->count > w->limits.max_records) rec_unlink(w, w->head);
}

uint64_t xmcr_window_expire(xmcr_window *w, int64_t now_ms)
{
    uint64_t n = 0;
    /* the list is in put order; times come from the records, so a late-stamped one may hide older ones behind it
     * until it expires itself: the bound is approximate by that much, never too eager */
    while (w->limits.max_age_ms && w->head && w->head->ts_ms < now_ms - w->limits.max_age_ms) {
        rec_unlink(w, w->head);
        n++;
    }
    return n;
}

/* The in-memory half of a put: returns 1 changed, 0 same, -1 no memory. */
static int rec_apply(xmcr_window *w, const char *id, const char *labels, const char *text, int64_t ts_ms)
{
    uint64_t hash = XXH64(id, strlen(id), 0);
    xmcr_rec *old = rec_find(w, id, hash);
    if (!*labels) {
        if (!old) return 0;
        rec_unlink(w, old);
        return 1;
    }
    int changed = !old || strcmp(old->data + old->id_len + 1, labels) ||
                  strcmp(old->data + old->id_len + 1 + old->labels_len + 1, text);
    size_t il = strlen(id), ll = strlen(labels), tl = strlen(text);
    xmcr_rec *r = malloc(sizeof *r + il + ll + tl + 3);
    if (!r) return -1;
    if (old) rec_unlink(w, old);
    if (rec_grow(w)) {
        free(r);
        return -1;
    }
    r->hash = hash;
    r->ts_ms = ts_ms;
    r->id_len = (uint32_t)il;
    r->labels_len = (uint32_t)ll;
    r->text_len = (uint32_t)tl;
    memcpy(r->data, id, il + 1);
    memcpy(r->data + il + 1, labels, ll + 1);
    memcpy(r->data + il + 1 + ll + 1, text, tl + 1);
    r->hnext = w->buckets[hash & (w->nbuckets - 1)];
    w->buckets[hash & (w->nbuckets - 1)] = r;
    r->prev = w->tail;
    r->next = NULL;
    if (w->tail) w->tail->next = r;
    else w->head = r;
    w->tail = r;
    w->count++;
    w->live_bytes += XMCR_ENTRY_HEAD + 20 + il + ll + tl;
    rec_bound(w);
    return changed;
}

/* ==== files ============================================================================================== */

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void header(unsigned char h[XMCR_HEADER])
{
    memcpy(h, XMCR_MAGIC, 8); /* with its NUL */
    put_u32(h + 8, XMCR_FORMAT);
    put_u32(h + 12, XXH32(h, 12, 0));
}

/* Writes a whole log (header + body) to tmp, fsyncs it, renames it to path and fsyncs dir. */
static int write_log_file(xmcr_window *w, const char *tmp, const unsigned char *body, size_t n, char *err,
                          size_t errlen)
{
    unsigned char h[XMCR_HEADER];
    header(h);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, h, sizeof h) || write_all(fd, body, n) || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, w->path) != 0) {
        snprintf(err, errlen, "rename %s -> %s: %s", tmp, w->path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return fsync_dir(w->dir, err, errlen);
}

static int reopen_append(xmcr_window *w, char *err, size_t errlen)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = open(w->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    struct stat st;
    if (w->fd < 0 || fstat(w->fd, &st) != 0) {
        snprintf(err, errlen, "open %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->log_bytes = (uint64_t)st.st_size;
    return 0;
}

/* 1 when a whole entry with a matching checksum starts at o. */
static int entry_valid(const unsigned char *p, size_t size, size_t o)
{
    if (size - o < XMCR_ENTRY_HEAD) return 0;
    uint32_t len = get_u32(p + o);
    if (len > XMCR_WINDOW_MAX_ENTRY || len > size - o - XMCR_ENTRY_HEAD) return 0;
    return XXH32(p + o + 8, 1 + (size_t)len, len) == get_u32(p + o + 4);
}

/* Replays the log's bytes into w. Returns size when whole; the offset of a torn last entry (cut short, or a
 * bad checksum reaching the end of the file); -2 - offset for damage (a bad entry with bytes after it, or a
 * checksummed but malformed one); -1 for no memory. Reason says what stopped it. */
static long long replay(xmcr_window *w, const unsigned char *p, size_t size, int64_t now_ms, uint64_t *entries,
                        char *reason, size_t rlen)
{
    size_t o = XMCR_HEADER;
    char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    while (o < size) {
        if (!entry_valid(p, size, o)) {
            /* a torn append leaves nothing whole after it; a whole entry after the bad one means damage (a length
             * field hit by it could otherwise pass for a torn tail and cut acknowledged records off) */
            int torn = 1;
            for (size_t q = o + 1; q + XMCR_ENTRY_HEAD <= size && torn; q++) torn = !entry_valid(p, size, q);
            int past = size - o < XMCR_ENTRY_HEAD || get_u32(p + o) > size - o - XMCR_ENTRY_HEAD;
            snprintf(reason, rlen, "%s at byte %zu%s", past ? "entry runs past the end" : "checksum mismatch", o,
                     torn ? "" : " with whole entries after it");
            return torn ? (long long)o : -2 - (long long)o;
        }
        uint32_t len = get_u32(p + o);
        int type = p[o + 8];
        const unsigned char *e = p + o + XMCR_ENTRY_HEAD;
        int ok = 0;
        if (type == XMCR_E_PUT && len >= 20) {
            uint64_t il = get_u32(e + 8), ll = get_u32(e + 12), tl = get_u32(e + 16);
            if (20 + il + ll + tl == len) {
                s1 = strndup((const char *)e + 20, il);
                s2 = strndup((const char *)e + 20 + il, ll);
                s3 = strndup((const char *)e + 20 + il + ll, tl);
                if (!s1 || !s2 || !s3 || rec_apply(w, s1, s2, s3, (int64_t)get_u64(e)) < 0) goto nomem;
                free(s1), free(s2), free(s3);
                s1 = s2 = s3 = NULL;
                ok = 1;
            }
        } else if (type == XMCR_E_DEL && len >= 12) {
            uint64_t il = get_u32(e + 8);
            if (12 + il == len) {
                if (!(s1 = strndup((const char *)e + 12, il)) || rec_apply(w, s1, "", "", 0) < 0) goto nomem;
                free(s1);
                s1 = NULL;
                ok = 1;
            }
        } else if (type == XMCR_E_OFFSETS && len >= 8) {
            uint64_t tl = get_u32(e), n = get_u32(e + 4);
            if (8 + tl + 12 * n == len && tl < sizeof w->topic) {
                memcpy(w->topic, e + 8, tl);
                w->topic[tl] = 0;
                for (int q = 0; q < XMCR_WINDOW_MAX_PARTITIONS; q++) w->offsets[q] = -1;
                ok = 1;
                for (uint64_t i = 0; i < n; i++) {
                    uint32_t part = get_u32(e + 8 + tl + 12 * i);
                    if (part >= XMCR_WINDOW_MAX_PARTITIONS) ok = 0;
                    else w->offsets[part] = (int64_t)get_u64(e + 8 + tl + 12 * i + 4);
                }
            }
        }
        if (!ok) { /* checksummed yet malformed: written wrong, not torn */
            snprintf(reason, rlen, "malformed entry of type %d", type);
            return -2 - (long long)o;
        }
        (*entries)++;
        o += XMCR_ENTRY_HEAD + len;
    }
    xmcr_window_expire(w, now_ms);
    return (long long)o;
nomem:
    free(s1), free(s2), free(s3);
    return -1;
}

static void clear_records(xmcr_window *w)
{
    for (xmcr_rec *r = w->head, *n; r; r = n) {
        n = r->next;
        free(r);
    }
    w->head = w->tail = NULL;
    if (w->buckets) memset(w->buckets, 0, w->nbuckets * sizeof *w->buckets);
    w->count = w->live_bytes = 0;
    w->topic[0] = 0;
    for (int q = 0; q < XMCR_WINDOW_MAX_PARTITIONS; q++) w->offsets[q] = -1;
}

/* Reads the whole log into memory. Returns the bytes (malloc'ed) or NULL with err; *missing when absent. */
static unsigned char *read_log(const char *path, size_t *size, int *missing, char *err, size_t errlen)
{
    *missing = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) *missing = 1;
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *p = malloc(n ? n : 1);
    if (!p) {
        snprintf(err, errlen, "out of memory reading %s (%zu bytes)", path, n);
        close(fd);
        return NULL;
    }
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            snprintf(err, errlen, "read %s: %s", path, k < 0 ? strerror(errno) : "short read");
            free(p);
            close(fd);
            return NULL;
        }
        got += (size_t)k;
    }
    close(fd);
    *size = n;
    return p;
}

/* Opens the window; read_only: replays without touching the directory (no log created, no tail cut, no damaged
 * log renamed) and leaves no file open for appending. */
static int window_open(const char *dir, const xmcr_window_limits *limits, int64_t now_ms, int read_only,
                       xmcr_window **out, xmcr_window_open_info *info, char *err, size_t errlen)
{
    xmcr_window_open_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (!read_only && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    xmcr_window *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->fd = w->lock_fd = -1;
    w->limits = *limits;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->path, sizeof w->path, "%s/window.log", dir);
    if (!read_only) {
        /* one owner: a second retrainer (or a training child that outlived its parent, which inherited the lock)
         * would append to the same log and remove the first one's temporary files */
        char lock[1100];
        snprintf(lock, sizeof lock, "%s/window.lock", dir);
        w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errlen, errno == EWOULDBLOCK ? "%s is in use by another process (%s held)" : "lock %s: %s",
                     errno == EWOULDBLOCK ? dir : lock, errno == EWOULDBLOCK ? "window.lock" : strerror(errno));
            goto fail;
        }
    }
    for (int q = 0; q < XMCR_WINDOW_MAX_PARTITIONS; q++) w->offsets[q] = w->pending[q] = -1;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
    /* a compaction that crashed before its rename: the log it would have replaced is whole */
    if (!read_only) unlink(tmp);

    size_t size = 0;
    int missing;
    unsigned char *p = read_log(w->path, &size, &missing, err, errlen);
    if (!p && (!missing || read_only)) goto fail;
    if (!p) {
        info->state = XMCR_WINDOW_NEW;
        if (write_log_file(w, tmp, NULL, 0, err, errlen) || reopen_append(w, err, errlen)) goto fail;
        *out = w;
        return 0;
    }
    unsigned char h[XMCR_HEADER];
    header(h);
    long long stop;
    if (size < XMCR_HEADER || memcmp(p, h, XMCR_HEADER) != 0) {
        /* a log is created whole (tmp + rename), so a bad header is never a torn append */
        snprintf(info->reason, sizeof info->reason, size < XMCR_HEADER ? "file shorter than its header"
                                                                       : "bad magic, format version or header checksum");
        stop = -2;
    } else {
        stop = replay(w, p, size, now_ms, &info->entries, info->reason, sizeof info->reason);
    }
    free(p);
    if (stop == -1) {
        snprintf(err, errlen, "out of memory replaying %s", w->path);
        goto fail;
    }
    if (stop >= 0 && (size_t)stop == size) {
        info->state = XMCR_WINDOW_OK;
    } else if (stop >= 0) {
        /* the bad entry runs to the end of the file: the last append was torn by a crash */
        info->state = XMCR_WINDOW_TORN;
        info->bad_offset = (uint64_t)stop;
        info->torn_bytes = size - (size_t)stop;
        if (read_only) goto done;
        if (truncate(w->path, (off_t)stop) != 0) {
            snprintf(err, errlen, "truncate %s: %s", w->path, strerror(errno));
            goto fail;
        }
        int fd = open(w->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            snprintf(err, errlen, "fsync %s: %s", w->path, strerror(errno));
            if (fd >= 0) close(fd);
            goto fail;
        }
        close(fd);
    } else {
        info->state = XMCR_WINDOW_DAMAGED;
        info->bad_offset = stop == -2 ? 0 : (uint64_t)(-2 - stop);
        clear_records(w);
        if (read_only) goto done;
        snprintf(info->damaged_path, sizeof info->damaged_path, "%s.damaged-%lld", w->path, (long long)time(NULL));
        if (rename(w->path, info->damaged_path) != 0) {
            snprintf(err, errlen, "rename %s -> %s: %s", w->path, info->damaged_path, strerror(errno));
            goto fail;
        }
        if (write_log_file(w, tmp, NULL, 0, err, errlen)) goto fail;
    }
    if (!read_only && reopen_append(w, err, errlen)) goto fail;
done:
    if (read_only) w->log_bytes = size;
    *out = w;
    return 0;
fail:
    xmcr_window_close(w);
    return -1;
}

int xmcr_window_open(const char *dir, const xmcr_window_limits *limits, int64_t now_ms, xmcr_window **out,
                     xmcr_window_open_info *info, char *err, size_t errlen)
{
    return window_open(dir, limits, now_ms, 0, out, info, err, errlen);
}

int xmcr_window_load(const char *dir, const xmcr_window_limits *limits, int64_t now_ms, xmcr_window **out,
                     xmcr_window_open_info *info, char *err, size_t errlen)
{
    return window_open(dir, limits, now_ms, 1, out, info, err, errlen);
}

void xmcr_window_close(xmcr_window *w)
{
    if (!w) return;
    clear_records(w);
    free(w->buckets);
    free(w->buf.p);
    if (w->fd >= 0) close(w->fd);
    if (w->lock_fd >= 0) close(w->lock_fd);
    free(w);
}

int xmcr_window_put(xmcr_window *w, const char *id, const char *labels, const char *text, int64_t ts_ms, char *err,
                    size_t errlen)
{
    if (!*id || strlen(id) > 65535) {
        snprintf(err, errlen, "product id empty or longer than 65535 bytes");
        return -1;
    }
    size_t mark = w->buf.len;
    int rc = *labels ? entry_put(&w->buf, id, labels, text, ts_ms) : entry_del(&w->buf, id, ts_ms);
    if (rc == 0) rc = rec_apply(w, id, labels, text, ts_ms);
    if (rc < 0) {
        w->buf.len = mark;
        snprintf(err, errlen, "out of memory (or a record over %u bytes)", XMCR_WINDOW_MAX_ENTRY);
        return -1;
    }
    return rc;
}

int xmcr_window_set_offset(xmcr_window *w, const char *topic, int32_t partition, int64_t next, char *err,
                           size_t errlen)
{
    if (partition < 0 || partition >= XMCR_WINDOW_MAX_PARTITIONS || strlen(topic) >= sizeof w->topic) {
        snprintf(err, errlen, "partition %d or topic out of range", (int)partition);
        return -1;
    }
    if (!w->offsets_dirty) {
        snprintf(w->pending_topic, sizeof w->pending_topic, "%s", w->topic);
        memcpy(w->pending, w->offsets, sizeof w->pending);
    }
    if (strcmp(w->pending_topic, topic)) {
        snprintf(w->pending_topic, sizeof w->pending_topic, "%s", topic);
        for (int q = 0; q < XMCR_WINDOW_MAX_PARTITIONS; q++) w->pending[q] = -1;
    }
    w->pending[partition] = next;
    w->offsets_dirty = 1;
    return 0;
}

int64_t xmcr_window_offset(const xmcr_window *w, const char *topic, int32_t partition)
{
    if (partition < 0 || partition >= XMCR_WINDOW_MAX_PARTITIONS || strcmp(w->topic, topic)) return -1;
    return w->offsets[partition];
}

int xmcr_window_sync(xmcr_window *w, char *err, size_t errlen)
{
    if (w->offsets_dirty && entry_offsets(&w->buf, w->pending_topic, w->pending)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!w->buf.len) return 0;
    if (w->fd < 0) {
        snprintf(err, errlen, "%s was loaded read-only", w->path);
        return -1;
    }
    if (write_all(w->fd, w->buf.p, w->buf.len) || fdatasync(w->fd) != 0) {
        snprintf(err, errlen, "append to %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->log_bytes += w->buf.len;
    w->buf.len = 0;
    if (w->offsets_dirty) {
        snprintf(w->topic, sizeof w->topic, "%s", w->pending_topic);
        memcpy(w->offsets, w->pending, sizeof w->offsets);
        w->offsets_dirty = 0;
    }
    if (w->log_bytes > w->limits.compact_bytes && w->log_bytes > 2 * w->live_bytes + XMCR_HEADER + 4096)
        return xmcr_window_compact(w, err, errlen);
    return 0;
}

int xmcr_window_compact(xmcr_window *w, char *err, size_t errlen)
{
    if (w->fd < 0) {
        snprintf(err, errlen, "%s was loaded read-only", w->path);
        return -1;
    }
    /* unsynced entries would be lost by the rewrite: sync them first */
    if (w->buf.len || w->offsets_dirty) {
        xmcr_window_limits keep = w->limits;
        w->limits.compact_bytes = UINT64_MAX;
        int rc = xmcr_window_sync(w, err, errlen);
        w->limits = keep;
        if (rc) return -1;
    }
    xmcr_buf body = {0};
    for (xmcr_rec *r = w->head; r; r = r->next) {
        const char *labels = r->data + r->id_len + 1;
        if (entry_put(&body, r->data, labels, labels + r->labels_len + 1, r->ts_ms)) goto nomem;
    }
    if (w->topic[0] && entry_offsets(&body, w->topic, w->offsets)) goto nomem;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
    int rc = write_log_file(w, tmp, body.p, body.len, err, errlen);
    free(body.p);
    if (rc) return -1;
    return reopen_append(w, err, errlen);
nomem:
    free(body.p);
    snprintf(err, errlen, "out of memory compacting %s", w->path);
    return -1;
}

long xmcr_window_seed_tsv(xmcr_window *w, const char *path, const char *prefix, int64_t ts_ms, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL, id[300];
    size_t cap = 0, mark = w->buf.len;
    ssize_t n;
    long lineno = 0, put = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) {
            if (!n) continue;
            snprintf(err, errlen, "%s:%ld: no TAB between labels and text", path, lineno);
            goto fail;
        }
        *tab = 0;
        if (!*line) continue; /* no labels: nothing to learn from */
        snprintf(id, sizeof id, "%s%ld", prefix, lineno);
        if (xmcr_window_put(w, id, line, tab + 1, ts_ms, err, errlen) < 0) goto fail;
        put++;
    }
    if (!feof(f)) { /* getline's -1 without the end: a read error, or a line it could not grow to (ENOMEM) */
        snprintf(err, errlen, "%s:%ld: %s", path, lineno + 1, strerror(errno ? errno : EIO));
        goto fail;
    }
    free(line);
    fclose(f);
    /* the seed reaches the disk whole or not at all: a compaction (tmp file, rename) writes it, not an append,
     * so a crash while seeding leaves a log with no entry, which the caller seeds again (xmcr_window_open_info) */
    w->buf.len = mark;
    return xmcr_window_compact(w, err, errlen) ? -1 : put;
fail:
    free(line);
    fclose(f);
    return -1;
}

uint64_t xmcr_window_count(const xmcr_window *w) { return w->count; }
const char *xmcr_window_topic(const xmcr_window *w) { return w->topic; }
uint64_t xmcr_window_log_bytes(const xmcr_window *w) { return w->log_bytes; }

int xmcr_window_get(const xmcr_window *w, const char *id, xmcr_record *rec)
{
    xmcr_rec *r = rec_find(w, id, XXH64(id, strlen(id), 0));
    if (!r) return -1;
    rec->id = r->data;
    rec->labels = r->data + r->id_len + 1;
    rec->text = rec->labels + r->labels_len + 1;
    rec->ts_ms = r->ts_ms;
    return 0;
}

int xmcr_window_foreach(const xmcr_window *w, int (*fn)(void *ctx, const xmcr_record *rec), void *ctx)
{
    for (xmcr_rec *r = w->head; r; r = r->next) {
        xmcr_record rec = {r->data, r->data + r->id_len + 1, r->data + r->id_len + 1 + r->labels_len + 1, r->ts_ms};
        int rc = fn(ctx, &rec);
        if (rc) return rc;
    }
    return 0;
}
