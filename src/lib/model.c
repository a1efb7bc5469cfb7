/* model.c: model directories: atomic writing into a repository, mmap opening and verification.
 *
 * Writing streams each array to <repo>/.tmp-<version>/<name>.bin while hashing it (xxh64); commit writes
 * manifest.cfg with libconfig, fsyncs the files and the directory, renames it into place and then swaps
 * CURRENT through a temporary file + rename. Reading parses the manifest, maps each listed file, and checks
 * magic, version, dtype, shape against the size, and (optionally) the checksum before anything is used. */
#include "model.h"
#include "repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "xmc/xmc.h"

static const unsigned char ARRAY_MAGIC[8] = {'X', 'M', 'C', 'A', 'R', 'R', 0, 1};

size_t xmci_dtype_size(xmci_dtype dt)
{
    switch (dt) {
    case XMCI_DT_F32: case XMCI_DT_U32: case XMCI_DT_I32: return 4;
    case XMCI_DT_U64: return 8;
    case XMCI_DT_U8: return 1;
    }
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

int xmci_valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 200) return 0;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return 0;
    return name[0] != '.';
}

xmc_err xmci_version_name_check(const char *v, xmc_error *err)
{
    /* CURRENT and serving.<pid> (the leases) are the repository's own files beside the versions */
    if (xmci_valid_name(v) && strlen(v) < XMCI_VERSION_MAX && strcmp(v, "CURRENT") != 0 && strncmp(v, "serving.", 8) != 0)
        return XMC_OK;
    return xmc_error_set(err, XMC_ERR_ARG, "bad version name '%.*s' (up to %d of letters, digits, . _ -, not starting "
                         "with '.', not CURRENT or serving.*)", 200, v ? v : "", XMCI_VERSION_MAX - 1);
}

/* A listed file: a valid name, or one subdirectory and a valid name ("encoder/vocab.txt"); never "..". */
static int valid_file(const char *file)
{
    if (!file) return 0;
    const char *slash = strchr(file, '/');
    if (!slash) return xmci_valid_name(file);
    char dir[208];
    size_t n = (size_t)(slash - file);
    if (n == 0 || n >= sizeof dir) return 0;
    memcpy(dir, file, n);
    dir[n] = 0;
    return xmci_valid_name(dir) && xmci_valid_name(slash + 1);
}

/* ---- writer ----------------------------------------------------------------------------------------------- */

struct xmci_model_writer {
    char repo[PATH_MAX];
    char version[XMCI_VERSION_MAX];
    char tmpdir[PATH_MAX];
    config_t cfg;
    config_setting_t *files;
    int has_raw; /* a plain file was copied in: the manifest says format_version 2 */
};

static config_setting_t *group_for(config_t *cfg, const char *key, const char **leaf)
{
    config_setting_t *g = config_root_setting(cfg);
    char part[128];
    const char *s = key;
    for (;;) {
        const char *dot = strchr(s, '.');
        if (!dot) break;
        size_t n = (size_t)(dot - s);
        if (n == 0 || n >= sizeof part) return NULL;
        memcpy(part, s, n);
        part[n] = 0;
        config_setting_t *c = config_setting_get_member(g, part);
        if (!c) c = config_setting_add(g, part, CONFIG_TYPE_GROUP);
        if (!c || config_setting_type(c) != CONFIG_TYPE_GROUP) return NULL;
        g = c;
        s = dot + 1;
    }
    *leaf = s;
    return g;
}

static config_setting_t *add_leaf(xmci_model_writer *w, const char *key, int type, xmc_error *err)
{
    const char *leaf;
    config_setting_t *g = group_for(&w->cfg, key, &leaf);
    if (!g) { xmc_error_set(err, XMC_ERR_ARG, "bad manifest key '%s'", key); return NULL; }
    config_setting_t *old = config_setting_get_member(g, leaf);
    if (old) config_setting_remove(g, leaf);
    config_setting_t *s = config_setting_add(g, leaf, type);
    if (!s) xmc_error_set(err, XMC_ERR_ARG, "bad manifest key '%s'", key);
    return s;
}

xmc_err xmci_writer_set_int(xmci_model_writer *w, const char *key, long long v, xmc_error *err)
{
    config_setting_t *s = add_leaf(w, key, CONFIG_TYPE_INT64, err);
    if (!s) return XMC_ERR_ARG;
    config_setting_set_int64(s, v);
    return XMC_OK;
}

xmc_err xmci_writer_set_float(xmci_model_writer *w, const char *key, double v, xmc_error *err)
{
    config_setting_t *s = add_leaf(w, key, CONFIG_TYPE_FLOAT, err);
    if (!s) return XMC_ERR_ARG;
    config_setting_set_float(s, v);
    return XMC_OK;
}

xmc_err xmci_writer_set_string(xmci_model_writer *w, const char *key, const char *v, xmc_error *err)
{
    config_setting_t *s = add_leaf(w, key, CONFIG_TYPE_STRING, err);
    if (!s) return XMC_ERR_ARG;
    config_setting_set_string(s, v);
    return XMC_OK;
}

static xmc_err mkdir_p(const char *path, xmc_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
    return XMC_OK;
}

void xmci_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno == EISDIR) xmci_rm_tree(p); /* a version's subdirectory (encoder/) */
    }
    closedir(d);
    rmdir(dir);
}

xmc_err xmci_writer_begin(const char *repo, const char *version, xmci_model_writer **out, xmc_error *err)
{
    *out = NULL;
    xmci_model_writer *w = calloc(1, sizeof *w);
    if (!w) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    xmc_err rc;
    if (strlen(repo) >= sizeof w->repo - 200) { free(w); return xmc_error_set(err, XMC_ERR_ARG, "repository path too long"); }
    snprintf(w->repo, sizeof w->repo, "%s", repo);
    if (version) {
        if ((rc = xmci_version_name_check(version, err))) { free(w); return rc; }
        snprintf(w->version, sizeof w->version, "%s", version);
    } else {
        xmc_repo_version_name(w->version, sizeof w->version);
    }
    if ((rc = mkdir_p(w->repo, err))) { free(w); return rc; }
    snprintf(w->tmpdir, sizeof w->tmpdir, "%s/.tmp-%s", w->repo, w->version);
    char final[PATH_MAX];
    snprintf(final, sizeof final, "%s/%s", w->repo, w->version);
    struct stat st;
    if (stat(final, &st) == 0) {
        free(w);
        return xmc_error_set(err, XMC_ERR_ARG, "version %s already exists in %s", version ? version : "", repo);
    }
    xmci_rm_tree(w->tmpdir);
    if (mkdir(w->tmpdir, 0755) != 0) {
        rc = xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", w->tmpdir, strerror(errno));
        free(w);
        return rc;
    }
    config_init(&w->cfg);
    config_setting_t *root = config_root_setting(&w->cfg);
    /* 1 until a plain file is copied in (xmci_writer_file), so versions that need no newer reader stay
     * readable by older builds */
    config_setting_set_int(config_setting_add(root, "format_version", CONFIG_TYPE_INT), XMCI_FORMAT_ARRAYS);
    config_setting_set_string(config_setting_add(root, "version", CONFIG_TYPE_STRING), w->version);
    {
        time_t now = time(NULL);
        struct tm tm;
        char buf[64];
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        config_setting_set_string(config_setting_add(root, "created", CONFIG_TYPE_STRING), buf);
        /* the same instant in microseconds: orders versions made within one second (xmc/repo.h) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        config_setting_set_int64(config_setting_add(root, "created_us", CONFIG_TYPE_INT64),
                                 (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    }
    config_setting_set_string(config_setting_add(root, "library", CONFIG_TYPE_STRING), "libxmc " XMC_VERSION_STRING);
    w->files = config_setting_add(root, "files", CONFIG_TYPE_LIST);
    *out = w;
    return XMC_OK;
}

static xmc_err write_all(int fd, const void *buf, size_t n, XXH64_state_t *h, const char *path, xmc_error *err)
{
    const char *p = buf;
    if (h) XXH64_update(h, buf, n);
    while (n) {
        ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return xmc_error_set(err, XMC_ERR_IO, "write %s: %s", path, strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return XMC_OK;
}

xmc_err xmci_writer_array(xmci_model_writer *w, const char *name, xmci_dtype dt, int ndim, const uint64_t *shape,
                         const void *data, xmc_error *err)
{
    if (!xmci_valid_name(name)) return xmc_error_set(err, XMC_ERR_ARG, "bad array name '%s'", name ? name : "");
    if (ndim < 1 || ndim > XMCI_MAX_NDIM || !xmci_dtype_size(dt))
        return xmc_error_set(err, XMC_ERR_ARG, "array %s: bad dtype or ndim", name);
    unsigned char hdr[XMCI_ARRAY_HEADER] = {0};
    memcpy(hdr, ARRAY_MAGIC, 8);
    put_u32(hdr + 8, 1);
    put_u32(hdr + 12, (uint32_t)dt);
    put_u32(hdr + 16, (uint32_t)ndim);
    uint64_t count = 1;
    for (int i = 0; i < XMCI_MAX_NDIM; i++) {
        uint64_t s = i < ndim ? shape[i] : 1;
        put_u64(hdr + 24 + 8 * i, s);
        if (s && count > UINT64_MAX / s) return xmc_error_set(err, XMC_ERR_RANGE, "array %s too large", name);
        count *= s;
    }
    uint64_t bytes = count * xmci_dtype_size(dt);
    put_u64(hdr + 56, bytes);
    char path[PATH_MAX], file[256];
    snprintf(file, sizeof file, "%s.bin", name);
    snprintf(path, sizeof path, "%s/%s", w->tmpdir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return xmc_error_set(err, XMC_ERR_IO, "open %s: %s", path, strerror(errno));
    XXH64_state_t *h = XXH64_createState();
    xmc_err rc;
    if (!h) { close(fd); return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); }
    XXH64_reset(h, 0);
    if ((rc = write_all(fd, hdr, sizeof hdr, h, path, err)) || (rc = write_all(fd, data, bytes, h, path, err))) {
        close(fd);
        XXH64_freeState(h);
        return rc;
    }
    uint64_t digest = XXH64_digest(h);
    XXH64_freeState(h);
    if (fsync(fd) != 0 || close(fd) != 0)
        return xmc_error_set(err, XMC_ERR_IO, "fsync %s: %s", path, strerror(errno));
    config_setting_t *e = config_setting_add(w->files, NULL, CONFIG_TYPE_GROUP);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest);
    config_setting_set_string(config_setting_add(e, "name", CONFIG_TYPE_STRING), name);
    config_setting_set_string(config_setting_add(e, "file", CONFIG_TYPE_STRING), file);
    config_setting_set_int64(config_setting_add(e, "bytes", CONFIG_TYPE_INT64), (long long)(bytes + XMCI_ARRAY_HEADER));
    config_setting_set_string(config_setting_add(e, "xxh64", CONFIG_TYPE_STRING), hex);
    return XMC_OK;
}

/* The manifest's last line, `manifest_xxh64 = "<hex>";`, is the xxh64 of every byte before it: the
 * manifest describes the checksums of the arrays, and this covers the manifest itself. */
#define MANIFEST_SUM_KEY "manifest_xxh64 = \""

static xmc_err read_whole(const char *path, char **buf, size_t *len, xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        if (cap > (64u << 20)) { free(b); fclose(f); return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: larger than 64 MiB", path); }
        char *b2 = realloc(b, cap * 2 + 1);
        if (!b2) { free(b); b = NULL; break; }
        b = b2;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory reading %s", path);
    if (bad) { free(b); return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path); }
    b[n] = 0;
    *buf = b;
    *len = n;
    return XMC_OK;
}

static xmc_err seal_manifest(const char *path, xmc_error *err)
{
    char *buf;
    size_t len;
    xmc_err rc = read_whole(path, &buf, &len, err);
    if (rc) return rc;
    uint64_t h = XXH64(buf, len, 0);
    free(buf);
    FILE *f = fopen(path, "a");
    if (!f) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    fprintf(f, "%s%016llx\";\n", MANIFEST_SUM_KEY, (unsigned long long)h);
    if (fclose(f) != 0) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    return XMC_OK;
}

static xmc_err check_manifest(const char *path, xmc_error *err)
{
    char *buf;
    size_t len;
    xmc_err rc = read_whole(path, &buf, &len, err);
    if (rc) return rc;
    /* the last line must be the checksum line */
    size_t end = len;
    if (end && buf[end - 1] == '\n') end--;
    size_t start = end;
    while (start > 0 && buf[start - 1] != '\n') start--;
    const size_t kl = strlen(MANIFEST_SUM_KEY);
    char want[17] = {0};
    if (end - start != kl + 18 || memcmp(buf + start, MANIFEST_SUM_KEY, kl) != 0 || buf[end - 2] != '"' || buf[end - 1] != ';') {
        free(buf);
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: no manifest_xxh64 line at the end (damaged or not an xmc manifest)", path);
    }
    memcpy(want, buf + start + kl, 16);
    char got[17];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)XXH64(buf, start, 0));
    free(buf);
    if (strcmp(got, want) != 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: checksum %s, its last line says %s (manifest damaged)", path, got, want);
    return XMC_OK;
}

xmc_err xmci_fsync_path(const char *path, int dir, xmc_error *err)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return xmc_error_set(err, XMC_ERR_IO, "open %s: %s", path, strerror(errno));
    int r = fsync(fd);
    close(fd);
    if (r != 0) return xmc_error_set(err, XMC_ERR_IO, "fsync %s: %s", path, strerror(errno));
    return XMC_OK;
}

xmc_err xmci_writer_file(xmci_model_writer *w, const char *name, const char *file, const char *src, xmc_error *err)
{
    if (!xmci_valid_name(name)) return xmc_error_set(err, XMC_ERR_ARG, "bad file entry name '%s'", name ? name : "");
    if (!valid_file(file)) return xmc_error_set(err, XMC_ERR_ARG, "bad file name '%s' (name or dir/name)", file ? file : "");
    char path[PATH_MAX], sub[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", w->tmpdir, file);
    const char *slash = strchr(file, '/');
    if (slash) {
        snprintf(sub, sizeof sub, "%s/%.*s", w->tmpdir, (int)(slash - file), file);
        if (mkdir(sub, 0755) != 0 && errno != EEXIST) return xmc_error_set(err, XMC_ERR_IO, "mkdir %s: %s", sub, strerror(errno));
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", src, strerror(errno));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        close(in);
        return xmc_error_set(err, XMC_ERR_IO, "open %s: %s", path, strerror(errno));
    }
    XXH64_state_t *h = XXH64_createState();
    char *buf = malloc(1u << 20);
    xmc_err rc = XMC_OK;
    uint64_t bytes = 0;
    if (!h || !buf) rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory copying %s", src);
    else XXH64_reset(h, 0);
    while (!rc) {
        ssize_t k = read(in, buf, 1u << 20);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = xmc_error_set(err, XMC_ERR_IO, "read %s: %s", src, strerror(errno));
        if (k <= 0) break;
        rc = write_all(fd, buf, (size_t)k, h, path, err);
        bytes += (uint64_t)k;
    }
    uint64_t digest = rc ? 0 : XXH64_digest(h);
    free(buf);
    if (h) XXH64_freeState(h);
    close(in);
    if (!rc && fsync(fd) != 0) rc = xmc_error_set(err, XMC_ERR_IO, "fsync %s: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = xmc_error_set(err, XMC_ERR_IO, "close %s: %s", path, strerror(errno));
    if (!rc && slash) rc = xmci_fsync_path(sub, 1, err); /* the new name inside the subdirectory */
    if (rc) return rc;
    config_setting_t *e = config_setting_add(w->files, NULL, CONFIG_TYPE_GROUP);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest);
    config_setting_set_string(config_setting_add(e, "name", CONFIG_TYPE_STRING), name);
    config_setting_set_string(config_setting_add(e, "file", CONFIG_TYPE_STRING), file);
    config_setting_set_int64(config_setting_add(e, "bytes", CONFIG_TYPE_INT64), (long long)bytes);
    config_setting_set_string(config_setting_add(e, "xxh64", CONFIG_TYPE_STRING), hex);
    config_setting_set_bool(config_setting_add(e, "raw", CONFIG_TYPE_BOOL), 1);
    if (!w->has_raw) {
        w->has_raw = 1;
        config_setting_set_int(config_lookup(&w->cfg, "format_version"), XMC_MODEL_FORMAT_VERSION);
    }
    return XMC_OK;
}

xmc_err xmci_writer_commit(xmci_model_writer *w, int make_current, char *version_out, size_t version_size,
                          xmc_error *err)
{
    char path[PATH_MAX], final[PATH_MAX];
    xmc_err rc = XMC_OK;
    snprintf(path, sizeof path, "%s/manifest.cfg", w->tmpdir);
    if (!config_write_file(&w->cfg, path)) {
        rc = xmc_error_set(err, XMC_ERR_IO, "cannot write %s", path);
        goto fail;
    }
    if ((rc = seal_manifest(path, err))) goto fail;
    if ((rc = xmci_fsync_path(path, 0, err)) || (rc = xmci_fsync_path(w->tmpdir, 1, err))) goto fail;
    snprintf(final, sizeof final, "%s/%s", w->repo, w->version);
    if (rename(w->tmpdir, final) != 0) {
        rc = xmc_error_set(err, XMC_ERR_IO, "rename %s -> %s: %s", w->tmpdir, final, strerror(errno));
        goto fail;
    }
    if ((rc = xmci_fsync_path(w->repo, 1, err))) goto done;
    if (make_current) rc = xmci_repo_write_current(w->repo, w->version, err);
done:
    if (version_out && version_size) snprintf(version_out, version_size, "%s", w->version);
    config_destroy(&w->cfg);
    free(w);
    return rc;
fail:
    xmci_writer_abort(w);
    return rc;
}

void xmci_writer_abort(xmci_model_writer *w)
{
    if (!w) return;
    xmci_rm_tree(w->tmpdir);
    config_destroy(&w->cfg);
    free(w);
}

/* ---- reader ----------------------------------------------------------------------------------------------- */

typedef struct mapped {
    char name[208];
    char file[416]; /* raw files only: the path inside the version, for xmci_bundle_file */
    int raw;        /* a plain file, checked (size, xxh64) but not kept mapped: its reader maps it itself */
    void *base;
    size_t size;
    xmci_dtype dt;
    int ndim;
    uint64_t shape[XMCI_MAX_NDIM];
} mapped;

struct xmci_bundle {
    char dir[PATH_MAX];
    char version[128];
    config_t cfg;
    mapped *maps;
    size_t nmaps;
};

static const mapped *find_map(const xmci_bundle *b, const char *name);

xmc_err xmc_repo_current(const char *repo, char *version, size_t version_size, xmc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/CURRENT", repo);
    FILE *f = fopen(path, "r");
    if (!f) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) return xmc_error_set(err, XMC_ERR_IO, "%s: read error", path); /* not "no valid version name" */
    buf[n] = 0;
    char *s = buf;
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strcspn(s, " \t\r\n");
    s[len] = 0;
    if (!xmci_valid_name(s)) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: no valid version name in it", path);
    if (len + 1 > version_size) return xmc_error_set(err, XMC_ERR_RANGE, "%s: version name too long", path);
    memcpy(version, s, len + 1);
    return XMC_OK;
}

xmc_err xmci_model_resolve(const char *path, char *out, size_t out_size, xmc_error *err)
{
    char buf[PATH_MAX], ver[256];
    struct stat st;
    snprintf(buf, sizeof buf, "%s/manifest.cfg", path);
    if (stat(buf, &st) == 0) {
        if (!realpath(path, buf)) return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    } else {
        snprintf(buf, sizeof buf, "%s/CURRENT", path);
        if (stat(path, &st) != 0) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no such model or repository", path);
        if (stat(buf, &st) != 0)
            return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: neither a model version (manifest.cfg) nor a repository (CURRENT)", path);
        xmc_err rc = xmc_repo_current(path, ver, sizeof ver, err);
        if (rc) return rc;
        char vdir[PATH_MAX];
        snprintf(vdir, sizeof vdir, "%s/%s", path, ver);
        if (!realpath(vdir, buf)) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: CURRENT names %s, which is missing", path, ver);
    }
    if (strlen(buf) + 1 > out_size) return xmc_error_set(err, XMC_ERR_RANGE, "path too long");
    memcpy(out, buf, strlen(buf) + 1);
    return XMC_OK;
}

void xmci_bundle_close(xmci_bundle *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->nmaps; i++)
        if (b->maps[i].base) munmap(b->maps[i].base, b->maps[i].size);
    free(b->maps);
    config_destroy(&b->cfg);
    free(b);
}

const char *xmci_bundle_dir(const xmci_bundle *b) { return b->dir; }
const char *xmci_bundle_version(const xmci_bundle *b) { return b->version; }
/* A plain file listed with raw = true: its size always, its xxh64 if verify. Unmapped again afterwards, so the
 * version's RSS does not count its pages twice when its reader (e.g. safetensors) maps it. */
/* Opens path read-only and checks that it holds the manifest's byte count; *fd is open only on success. */
static xmc_err open_sized(const char *path, long long bytes, int *fd, struct stat *st, xmc_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return xmc_error_set(err, errno == ENOENT ? XMC_ERR_NOTFOUND : XMC_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(*fd, st) != 0) {
        close(*fd);
        return xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if ((long long)st->st_size != bytes) {
        close(*fd);
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: %lld bytes, manifest says %lld (truncated or replaced?)", path,
                             (long long)st->st_size, bytes);
    }
    return XMC_OK;
}

static xmc_err check_raw_file(xmci_bundle *b, mapped *m, const char *file, long long bytes, const char *hex, int verify,
                              xmc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", b->dir, file);
    m->raw = 1;
    snprintf(m->file, sizeof m->file, "%s", file);
    int fd;
    struct stat st;
    xmc_err rc = open_sized(path, bytes, &fd, &st, err);
    if (rc) return rc;
    m->size = (size_t)st.st_size;
    if (!verify) { close(fd); return XMC_OK; }
    uint64_t h = XXH64("", 0, 0);
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) { close(fd); return xmc_error_set(err, XMC_ERR_IO, "mmap %s: %s", path, strerror(errno)); }
        h = XXH64(p, (size_t)st.st_size, 0);
        munmap(p, (size_t)st.st_size);
    }
    close(fd);
    char got[17];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)h);
    if (strcmp(got, hex) != 0)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: checksum %s, manifest says %s (file damaged)", path, got, hex);
    return XMC_OK;
}

static xmc_err map_file(xmci_bundle *b, mapped *m, const char *file, long long bytes, const char *hex, int verify,
                        xmc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", b->dir, file);
    int fd;
    struct stat st;
    xmc_err rc = open_sized(path, bytes, &fd, &st, err);
    if (rc) return rc;
    if (st.st_size < XMCI_ARRAY_HEADER) {
        close(fd);
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: %lld bytes, shorter than the %d-byte header", path,
                             (long long)st.st_size, XMCI_ARRAY_HEADER);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return xmc_error_set(err, XMC_ERR_IO, "mmap %s: %s", path, strerror(errno));
    m->base = base;
    m->size = (size_t)st.st_size;
    const unsigned char *h = base;
    if (memcmp(h, ARRAY_MAGIC, 8) != 0) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: bad magic (not an xmc array file)", path);
    if (get_u32(h + 8) != 1) return xmc_error_set(err, XMC_ERR_VERSION, "%s: array format version %u, this build reads 1", path, get_u32(h + 8));
    m->dt = (xmci_dtype)get_u32(h + 12);
    m->ndim = (int)get_u32(h + 16);
    if (!xmci_dtype_size(m->dt) || m->ndim < 1 || m->ndim > XMCI_MAX_NDIM)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: bad dtype %u or ndim %d", path, (unsigned)m->dt, m->ndim);
    uint64_t count = 1;
    for (int i = 0; i < XMCI_MAX_NDIM; i++) {
        m->shape[i] = get_u64(h + 24 + 8 * i);
        if (m->shape[i] && count > UINT64_MAX / m->shape[i]) return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: shape overflows", path);
        count *= m->shape[i];
    }
    uint64_t data = get_u64(h + 56);
    if (count > UINT64_MAX / 8 || data != count * xmci_dtype_size(m->dt) || data != (uint64_t)st.st_size - XMCI_ARRAY_HEADER)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: shape and data size disagree with the file size", path);
    if (verify) {
        char got[17];
        snprintf(got, sizeof got, "%016llx", (unsigned long long)XXH64(base, (size_t)st.st_size, 0));
        if (strcmp(got, hex) != 0)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: checksum %s, manifest says %s (file damaged)", path, got, hex);
    }
    return XMC_OK;
}

xmc_err xmci_bundle_open(const char *dir, int verify, xmci_bundle **out, xmc_error *err)
{
    *out = NULL;
    xmci_bundle *b = calloc(1, sizeof *b);
    if (!b) return xmc_error_set(err, XMC_ERR_NOMEM, "out of memory");
    config_init(&b->cfg);
    xmc_err rc = XMC_OK;
    if (strlen(dir) >= sizeof b->dir - 32) { rc = xmc_error_set(err, XMC_ERR_ARG, "path too long"); goto fail; }
    snprintf(b->dir, sizeof b->dir, "%s", dir);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/manifest.cfg", dir);
    if (verify && (rc = check_manifest(path, err))) goto fail;
    if (!config_read_file(&b->cfg, path)) {
        if (config_error_type(&b->cfg) == CONFIG_ERR_FILE_IO)
            rc = xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: cannot read (%s)", path, strerror(errno));
        else
            rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s:%d: %s", path, config_error_line(&b->cfg), config_error_text(&b->cfg));
        goto fail;
    }
    int fv;
    if (!config_lookup_int(&b->cfg, "format_version", &fv)) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: no format_version", path);
        goto fail;
    }
    if (fv < XMCI_FORMAT_ARRAYS || fv > XMC_MODEL_FORMAT_VERSION) {
        rc = xmc_error_set(err, XMC_ERR_VERSION, "%s: format_version %d, this build reads %d to %d", path, fv,
                           XMCI_FORMAT_ARRAYS, XMC_MODEL_FORMAT_VERSION);
        goto fail;
    }
    const char *ver;
    if (!config_lookup_string(&b->cfg, "version", &ver) || strlen(ver) >= sizeof b->version) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: no version", path);
        goto fail;
    }
    snprintf(b->version, sizeof b->version, "%s", ver);
    config_setting_t *files = config_lookup(&b->cfg, "files");
    if (!files || !config_setting_is_list(files)) {
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: no files list", path);
        goto fail;
    }
    int n = config_setting_length(files);
    b->maps = calloc(n ? (size_t)n : 1, sizeof *b->maps);
    if (!b->maps) { rc = xmc_error_set(err, XMC_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(files, (unsigned)i);
        const char *name, *file, *hex;
        long long bytes;
        int raw = 0;
        if (!config_setting_lookup_bool(e, "raw", &raw)) raw = 0;
        if (!config_setting_lookup_string(e, "name", &name) || !config_setting_lookup_string(e, "file", &file) ||
            !config_setting_lookup_string(e, "xxh64", &hex) || !config_setting_lookup_int64(e, "bytes", &bytes) ||
            !xmci_valid_name(name) || !(raw ? valid_file(file) : xmci_valid_name(file)) || (raw && fv < 2) ||
            find_map(b, name)) {
            rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s:%d: bad files entry %d", path, config_setting_source_line(e), i);
            goto fail;
        }
        mapped *m = &b->maps[b->nmaps++];
        snprintf(m->name, sizeof m->name, "%s", name);
        if ((rc = raw ? check_raw_file(b, m, file, bytes, hex, verify, err) : map_file(b, m, file, bytes, hex, verify, err)))
            goto fail;
    }
    *out = b;
    return XMC_OK;
fail:
    xmci_bundle_close(b);
    return rc;
}

static const mapped *find_map(const xmci_bundle *b, const char *name)
{
    for (size_t i = 0; i < b->nmaps; i++)
        if (strcmp(b->maps[i].name, name) == 0) return &b->maps[i];
    return NULL;
}

int xmci_bundle_has(const xmci_bundle *b, const char *name) { return find_map(b, name) != NULL; }

xmc_err xmci_bundle_file(const xmci_bundle *b, const char *name, char *path, size_t path_size, uint64_t *size,
                        xmc_error *err)
{
    const mapped *m = find_map(b, name);
    if (!m) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no file '%s' in the manifest", b->dir, name);
    if (!m->raw) return xmc_error_set(err, XMC_ERR_SHAPE, "%s: '%s' is an array, not a plain file", b->dir, name);
    if ((size_t)snprintf(path, path_size, "%s/%s", b->dir, m->file) >= path_size)
        return xmc_error_set(err, XMC_ERR_RANGE, "%s/%s: path too long", b->dir, m->file);
    if (size) *size = m->size;
    return XMC_OK;
}

xmc_err xmci_bundle_array(const xmci_bundle *b, const char *name, xmci_dtype dt, int ndim, uint64_t *shape,
                         const void **data, xmc_error *err)
{
    const mapped *m = find_map(b, name);
    if (!m) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: no array '%s' in the manifest", b->dir, name);
    if (m->raw) return xmc_error_set(err, XMC_ERR_SHAPE, "%s: '%s' is a plain file, not an array", b->dir, name);
    if (m->dt != dt) return xmc_error_set(err, XMC_ERR_SHAPE, "%s: array '%s' has dtype %d, want %d", b->dir, name, m->dt, dt);
    if (m->ndim != ndim) return xmc_error_set(err, XMC_ERR_SHAPE, "%s: array '%s' has %d dims, want %d", b->dir, name, m->ndim, ndim);
    for (int i = 0; i < ndim; i++) shape[i] = m->shape[i];
    *data = (const unsigned char *)m->base + XMCI_ARRAY_HEADER;
    return XMC_OK;
}

xmc_err xmci_bundle_get_int(const xmci_bundle *b, const char *key, long long *v, xmc_error *err)
{
    if (config_lookup_int64(&b->cfg, key, v)) return XMC_OK;
    int i;
    if (config_lookup_int(&b->cfg, key, &i)) { *v = i; return XMC_OK; }
    return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s/manifest.cfg: no integer '%s'", b->dir, key);
}

xmc_err xmci_bundle_get_float(const xmci_bundle *b, const char *key, double *v, xmc_error *err)
{
    if (config_lookup_float(&b->cfg, key, v)) return XMC_OK;
    long long i;
    if (config_lookup_int64(&b->cfg, key, &i)) { *v = (double)i; return XMC_OK; }
    return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s/manifest.cfg: no number '%s'", b->dir, key);
}

xmc_err xmci_bundle_get_string(const xmci_bundle *b, const char *key, const char **v, xmc_error *err)
{
    if (config_lookup_string(&b->cfg, key, v)) return XMC_OK;
    return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s/manifest.cfg: no string '%s'", b->dir, key);
}
