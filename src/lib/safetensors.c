/* safetensors.c: maps a .safetensors file and checks its header (layout table in safetensors.h).
 *
 * The header JSON is parsed once with jansson and kept; every entry is validated at open so that later
 * lookups only compare dtype and shape. Data is never copied: a lookup returns a pointer into the mapping. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct xmci_safetensors {
    char path[1024];
    const unsigned char *map;
    uint64_t size;       /* file bytes */
    uint64_t data_start; /* 8 + N */
    json_t *header;
};

static size_t dtype_size(const char *dt)
{
    static const struct { const char *name; size_t size; } sizes[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
        {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (!strcmp(dt, sizes[i].name)) return sizes[i].size;
    return 0;
}

void xmci_safetensors_close(xmci_safetensors *st)
{
    if (!st) return;
    if (st->map) munmap((void *)st->map, st->size);
    json_decref(st->header);
    free(st);
}

/* Validates one header entry (see the table in safetensors.h). */
static xmc_err check_entry(const xmci_safetensors *st, const char *name, json_t *e, xmc_error *err)
{
    json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offs = json_object_get(e, "data_offsets");
    if (!json_is_object(e) || !json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) ||
        json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s': entry needs dtype, shape and data_offsets",
                             st->path, name);
    uint64_t count = 1;
    for (size_t i = 0; i < json_array_size(shape); i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (json_int_t)1 << 40)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s': bad shape", st->path, name);
        count *= (uint64_t)json_integer_value(d);
        if (count > (uint64_t)1 << 40)
            return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s': shape too large", st->path, name);
    }
    json_int_t b = json_integer_value(json_array_get(offs, 0)), e_ = json_integer_value(json_array_get(offs, 1));
    uint64_t avail = st->size - st->data_start;
    if (b < 0 || e_ < b)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s': bad data_offsets [%lld, %lld]", st->path, name,
                             (long long)b, (long long)e_);
    if ((uint64_t)e_ > avail)
        return xmc_error_set(err, XMC_ERR_CORRUPT,
                             "%s: tensor '%s': data [%lld, %lld) runs past the end of the data region (%llu bytes): "
                             "truncated file?",
                             st->path, name, (long long)b, (long long)e_, (unsigned long long)avail);
    size_t es = dtype_size(json_string_value(dt));
    if (es && (uint64_t)(e_ - b) != count * es)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s': %lld data bytes for %llu %s elements", st->path,
                             name, (long long)(e_ - b), (unsigned long long)count, json_string_value(dt));
    return XMC_OK;
}

xmc_err xmci_safetensors_open(const char *path, xmci_safetensors **out, xmc_error *err)
{
    xmci_safetensors *st = calloc(1, sizeof *st);
    if (!st) return xmc_error_set(err, XMC_ERR_NOMEM, "%s: out of memory", path);
    snprintf(st->path, sizeof st->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
        free(st);
        return XMC_ERR_IO;
    }
    struct stat sb;
    xmc_err rc = XMC_OK;
    if (fstat(fd, &sb) != 0) rc = xmc_error_set(err, XMC_ERR_IO, "%s: %s", path, strerror(errno));
    else if (sb.st_size < 8)
        rc = xmc_error_set(err, XMC_ERR_CORRUPT, "%s: %lld bytes, too short for a safetensors header", path,
                           (long long)sb.st_size);
    if (!rc) {
        st->size = (uint64_t)sb.st_size;
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) rc = xmc_error_set(err, XMC_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        else st->map = m;
    }
    close(fd);
    if (rc) { xmci_safetensors_close(st); return rc; }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | st->map[i];
    if (n > st->size - 8) {
        xmc_error_set(err, XMC_ERR_CORRUPT, "%s: header of %llu bytes but the file has %llu: truncated file?", path,
                      (unsigned long long)n, (unsigned long long)st->size);
        xmci_safetensors_close(st);
        return XMC_ERR_CORRUPT;
    }
    st->data_start = 8 + n;
    json_error_t jerr;
    st->header = json_loadb((const char *)st->map + 8, n, 0, &jerr);
    if (!json_is_object(st->header)) {
        xmc_error_set(err, XMC_ERR_CORRUPT, "%s: header is not a JSON object: %s", path,
                      st->header ? "other JSON value" : jerr.text);
        xmci_safetensors_close(st);
        return XMC_ERR_CORRUPT;
    }
    const char *name;
    json_t *e;
    json_object_foreach(st->header, name, e) {
        if (!strcmp(name, "__metadata__")) continue;
        if ((rc = check_entry(st, name, e, err))) { xmci_safetensors_close(st); return rc; }
    }
    *out = st;
    return XMC_OK;
}

int xmci_safetensors_has(const xmci_safetensors *st, const char *name)
{
    return strcmp(name, "__metadata__") != 0 && json_object_get(st->header, name) != NULL;
}


static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++) k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

xmc_err xmci_safetensors_f32(const xmci_safetensors *st, const char *name, int ndim, const int64_t *shape,
                            const float **data, xmc_error *err)
{
    json_t *e = xmci_safetensors_has(st, name) ? json_object_get(st->header, name) : NULL;
    if (!e) return xmc_error_set(err, XMC_ERR_NOTFOUND, "%s: missing tensor '%s'", st->path, name);
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    if (strcmp(dt, "F32") != 0)
        return xmc_error_set(err, XMC_ERR_VERSION, "%s: tensor '%s' has dtype %s, only F32 is supported", st->path,
                             name, dt);
    json_t *sh = json_object_get(e, "shape");
    int64_t got[8];
    int gnd = (int)json_array_size(sh);
    int same = gnd == ndim;
    for (int i = 0; i < gnd && i < 8; i++) {
        got[i] = (int64_t)json_integer_value(json_array_get(sh, (size_t)i));
        if (i < ndim && got[i] != shape[i]) same = 0;
    }
    if (!same) {
        char want[128], have[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(have, sizeof have, gnd < 8 ? gnd : 8, got);
        return xmc_error_set(err, XMC_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", st->path, name, have,
                             want);
    }
    uint64_t at = st->data_start + (uint64_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    if (at % 4)
        return xmc_error_set(err, XMC_ERR_CORRUPT, "%s: tensor '%s' data at byte %llu is not 4-byte aligned", st->path,
                             name, (unsigned long long)at);
    *data = (const float *)(const void *)(st->map + at);
    return XMC_OK;
}

/* ---- writing ------------------------------------------------------------------------------------------------ */

static xmc_err write_all(FILE *f, const void *p, size_t n, const char *path, xmc_error *err)
{
    if (n && fwrite(p, 1, n, f) != n) return xmc_error_set(err, XMC_ERR_IO, "%s: write: %s", path, strerror(errno));
    return XMC_OK;
}

xmc_err xmci_safetensors_write(const char *path, const xmci_safetensors_entry *entries, int n, xmc_error *err)
{
    json_t *root = json_object();
    if (!root) return xmc_error_set(err, XMC_ERR_NOMEM, "safetensors: out of memory");
    xmc_err rc = XMC_OK;
    uint64_t off = 0;
    for (int i = 0; i < n && !rc; i++) {
        const xmci_safetensors_entry *e = &entries[i];
        if (!e->name || e->ndim < 1 || e->ndim > 2 || !e->data || e->shape[0] < 0 || (e->ndim == 2 && e->shape[1] < 0)) {
            rc = xmc_error_set(err, XMC_ERR_ARG, "safetensors: entry %d is not a 1-D or 2-D F32 tensor", i);
            break;
        }
        uint64_t bytes = (uint64_t)e->shape[0] * (e->ndim == 2 ? (uint64_t)e->shape[1] : 1) * 4;
        json_t *shape = e->ndim == 2 ? json_pack("[II]", (json_int_t)e->shape[0], (json_int_t)e->shape[1])
                                     : json_pack("[I]", (json_int_t)e->shape[0]);
        json_t *ent = shape ? json_pack("{s:s,s:o,s:[II]}", "dtype", "F32", "shape", shape, "data_offsets",
                                        (json_int_t)off, (json_int_t)(off + bytes))
                            : NULL;
        if (!ent || json_object_set_new(root, e->name, ent))
            rc = xmc_error_set(err, XMC_ERR_NOMEM, "safetensors: out of memory");
        off += bytes;
    }
    char *hdr = rc ? NULL : json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(root);
    if (rc) return rc;
    if (!hdr) return xmc_error_set(err, XMC_ERR_NOMEM, "safetensors: out of memory");
    size_t hlen = strlen(hdr);
    uint64_t padded = (hlen + 7) / 8 * 8;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(hdr);
        return xmc_error_set(err, XMC_ERR_ARG, "safetensors: path too long");
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(hdr);
        return xmc_error_set(err, XMC_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(padded >> (8 * i));
    rc = write_all(f, le, 8, tmp, err);
    if (!rc) rc = write_all(f, hdr, hlen, tmp, err);
    for (uint64_t i = hlen; i < padded && !rc; i++) rc = write_all(f, " ", 1, tmp, err);
    free(hdr);
    /* floats are written as they are in memory: the format is little-endian, as every target of xmc */
    for (int i = 0; i < n && !rc; i++) {
        const xmci_safetensors_entry *e = &entries[i];
        size_t count = (size_t)e->shape[0] * (e->ndim == 2 ? (size_t)e->shape[1] : 1);
        rc = write_all(f, e->data, count * sizeof(float), tmp, err);
    }
    if (!rc && (fflush(f) || fsync(fileno(f)))) rc = xmc_error_set(err, XMC_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (fclose(f) && !rc) rc = xmc_error_set(err, XMC_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = xmc_error_set(err, XMC_ERR_IO, "%s: rename: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}
