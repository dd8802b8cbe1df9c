/*
 * golden.c — bounds-checked reader for tests/golden/ (*.bin).
 *
 * File layout (all integers little-endian u32, see tests/golden/README.md):
 *     "LPGOLD01"  record_count
 *     record_count x { name_len, name[name_len], dtype, ndim, dims[ndim],
 *                      data[prod(dims) * sizeof(dtype)] }
 * Every length is checked against the bytes that remain before it is
 * used; a file with trailing bytes is rejected too.
 */
#include "golden.h"

#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_MAGIC "LPGOLD01"
#define GOLDEN_MAX_FILE ((size_t)256 << 20) /* refuse anything absurd */
#define GOLDEN_MAX_RECORDS 100000

/* ---- parsing --------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    const char *path;
} reader;

static int read_u32(reader *r, uint32_t *v, const char *what)
{
    if (r->len - r->pos < 4)
        return lp_set_error(LP_EFORMAT, "%s: truncated at byte %zu (%s)",
                            r->path, r->pos, what);
    const unsigned char *b = r->p + r->pos;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
         (uint32_t)b[3] << 24;
    r->pos += 4;
    return LP_OK;
}

static size_t dtype_size(int dtype)
{
    switch (dtype) {
    case LPG_F32: return 4;
    case LPG_F64: return 8;
    case LPG_I32: return 4;
    default: return 0;
    }
}

static const char *dtype_name(int dtype)
{
    switch (dtype) {
    case LPG_F32: return "float32";
    case LPG_F64: return "float64";
    case LPG_I32: return "int32";
    default: return "?";
    }
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Copy `count` little-endian elements of `size` bytes into host order. */
static void copy_le(void *dst, const unsigned char *src, size_t count,
                    size_t size)
{
    memcpy(dst, src, count * size);
    if (!host_is_little_endian()) {
        unsigned char *d = dst;
        for (size_t i = 0; i < count; i++, d += size)
            for (size_t a = 0, b = size - 1; a < b; a++, b--) {
                unsigned char t = d[a];
                d[a] = d[b];
                d[b] = t;
            }
    }
}

static int parse_record(reader *r, lpg_tensor *t, int index)
{
    uint32_t name_len, dtype, ndim;
    int rc = read_u32(r, &name_len, "name length");
    if (rc != LP_OK)
        return rc;
    if (name_len == 0 || name_len > LPG_MAX_NAME)
        return lp_set_error(LP_EFORMAT, "%s: record %d: name length %u",
                            r->path, index, (unsigned)name_len);
    if (r->len - r->pos < name_len)
        return lp_set_error(LP_EFORMAT, "%s: record %d: truncated name",
                            r->path, index);
    for (uint32_t i = 0; i < name_len; i++) {
        unsigned char c = r->p[r->pos + i];
        if (c < 0x21 || c > 0x7e)
            return lp_set_error(LP_EFORMAT,
                                "%s: record %d: byte 0x%02x in the name",
                                r->path, index, c);
    }
    memcpy(t->name, r->p + r->pos, name_len);
    t->name[name_len] = '\0';
    r->pos += name_len;

    if ((rc = read_u32(r, &dtype, "dtype")) != LP_OK ||
        (rc = read_u32(r, &ndim, "ndim")) != LP_OK)
        return rc;
    if (dtype_size((int)dtype) == 0)
        return lp_set_error(LP_EFORMAT, "%s: %s: unknown dtype %u", r->path,
                            t->name, (unsigned)dtype);
    if (ndim > LPG_MAX_DIMS)
        return lp_set_error(LP_EFORMAT, "%s: %s: %u dimensions (max %d)",
                            r->path, t->name, (unsigned)ndim, LPG_MAX_DIMS);
    t->dtype = (int)dtype;
    t->ndim = (int)ndim;
    t->count = 1;
    size_t elem = dtype_size(t->dtype);
    for (uint32_t d = 0; d < ndim; d++) {
        uint32_t dim;
        if ((rc = read_u32(r, &dim, "dims")) != LP_OK)
            return rc;
        if (dim > INT_MAX)
            return lp_set_error(LP_EFORMAT, "%s: %s: dimension %u too large",
                                r->path, t->name, (unsigned)dim);
        t->dims[d] = (int)dim;
        /* count * dim * elem must fit in the remaining bytes */
        if (dim != 0 && t->count > (r->len - r->pos) / elem / dim)
            return lp_set_error(LP_EFORMAT,
                                "%s: %s: shape larger than the file",
                                r->path, t->name);
        t->count *= dim;
    }
    if (r->len - r->pos < t->count * elem)
        return lp_set_error(LP_EFORMAT,
                            "%s: %s: truncated data (%zu bytes needed, %zu "
                            "left)",
                            r->path, t->name, t->count * elem,
                            r->len - r->pos);
    t->data = malloc(t->count ? t->count * elem : 1);
    if (t->data == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory", r->path);
    copy_le(t->data, r->p + r->pos, t->count, elem);
    r->pos += t->count * elem;
    return LP_OK;
}

/* Collect the case names: every "<case>/params" record starts a case. */
static int index_cases(lpg_file *f)
{
    static const char suffix[] = "/params";
    const size_t ls = sizeof suffix - 1;
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        size_t len = strlen(f->tensors[i].name);
        if (len > ls && strcmp(f->tensors[i].name + len - ls, suffix) == 0)
            n++;
    }
    f->case_names = calloc(n ? (size_t)n : 1, sizeof *f->case_names);
    if (f->case_names == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        size_t len = strlen(name);
        if (len > ls && strcmp(name + len - ls, suffix) == 0) {
            memcpy(f->case_names[f->n_cases], name, len - ls);
            f->case_names[f->n_cases][len - ls] = '\0';
            f->n_cases++;
        }
    }
    return LP_OK;
}

int lpg_parse(lpg_file *f, const unsigned char *bytes, size_t len,
              const char *path)
{
    reader r = {bytes, len, 0, path};
    uint32_t count;
    int rc;
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    if (bytes == NULL || len < 8 || memcmp(bytes, GOLDEN_MAGIC, 8) != 0)
        return lp_set_error(LP_EFORMAT, "%s: not a golden file (no %s magic)",
                            path, GOLDEN_MAGIC);
    r.pos = 8;
    if ((rc = read_u32(&r, &count, "record count")) != LP_OK)
        return rc;
    if (count > GOLDEN_MAX_RECORDS)
        return lp_set_error(LP_EFORMAT, "%s: %u records", path,
                            (unsigned)count);
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (f->tensors == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory", path);
    for (uint32_t i = 0; i < count; i++) {
        rc = parse_record(&r, &f->tensors[i], (int)i);
        if (rc != LP_OK) {
            free(f->tensors[i].data);
            f->tensors[i].data = NULL;
            lpg_free(f);
            return rc;
        }
        f->count++;
    }
    if (r.pos != len) {
        lp_set_error(LP_EFORMAT, "%s: %zu trailing bytes after %u records",
                     path, len - r.pos, (unsigned)count);
        lpg_free(f);
        return LP_EFORMAT;
    }
    if ((rc = index_cases(f)) != LP_OK) {
        lpg_free(f);
        return rc;
    }
    return LP_OK;
}

/* ---- loading ------------------------------------------------------------ */

static int read_whole_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    *out = NULL;
    *len = 0;
    if (fp == NULL)
        return lp_set_error(LP_ENOTFOUND,
                            "cannot open golden file %s (run from the "
                            "source tree or set LOUPE_ROOT; regenerate with "
                            "`make golden`)",
                            path);
    for (;;) {
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : (size_t)1 << 16;
            unsigned char *nb;
            if (new_cap > GOLDEN_MAX_FILE) {
                free(buf);
                fclose(fp);
                return lp_set_error(LP_EFORMAT, "%s: larger than %zu bytes",
                                    path, GOLDEN_MAX_FILE);
            }
            nb = realloc(buf, new_cap);
            if (nb == NULL) {
                free(buf);
                fclose(fp);
                return lp_set_error(LP_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = new_cap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        free(buf);
        fclose(fp);
        return lp_set_error(LP_EIO, "%s: read error", path);
    }
    fclose(fp);
    *out = buf;
    *len = n;
    return LP_OK;
}

int lpg_load(lpg_file *f, const char *relative)
{
    char path[512];
    unsigned char *bytes;
    size_t len;
    int rc;
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s", lpt_path(relative));
    snprintf(f->path, sizeof f->path, "%s", path);
    rc = read_whole_file(path, &bytes, &len);
    if (rc == LP_OK) {
        rc = lpg_parse(f, bytes, len, path);
        free(bytes);
    }
    if (rc == LP_OK && f->n_cases == 0) {
        lpg_free(f);
        rc = lp_set_error(LP_EFORMAT, "%s: no cases", path);
    }
    if (rc != LP_OK)
        lpt_fail(__FILE__, __LINE__, "golden: %s", lp_last_error());
    return rc;
}

void lpg_free(lpg_file *f)
{
    for (int i = 0; i < f->count; i++)
        free(f->tensors[i].data);
    free(f->tensors);
    free(f->case_names);
    f->tensors = NULL;
    f->case_names = NULL;
    f->count = 0;
    f->n_cases = 0;
}

/* ---- access ------------------------------------------------------------- */

int lpg_case_count(const lpg_file *f) { return f->n_cases; }

const char *lpg_case_name(const lpg_file *f, int i)
{
    return (i >= 0 && i < f->n_cases) ? f->case_names[i] : "";
}

const lpg_tensor *lpg_find(const lpg_file *f, const char *case_name,
                           const char *tensor)
{
    size_t lc = strlen(case_name);
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, case_name, lc) == 0 && name[lc] == '/' &&
            strcmp(name + lc + 1, tensor) == 0)
            return &f->tensors[i];
    }
    return NULL;
}

static const void *typed(const lpg_file *f, const char *case_name,
                         const char *tensor, size_t count, int dtype)
{
    const lpg_tensor *t = lpg_find(f, case_name, tensor);
    if (t == NULL) {
        lpt_fail(__FILE__, __LINE__, "golden %s: no tensor %s/%s", f->path,
                 case_name, tensor);
        return NULL;
    }
    if (t->dtype != dtype) {
        lpt_fail(__FILE__, __LINE__, "golden %s: %s is %s, expected %s",
                 f->path, t->name, dtype_name(t->dtype), dtype_name(dtype));
        return NULL;
    }
    if (count != 0 && t->count != count) {
        lpt_fail(__FILE__, __LINE__,
                 "golden %s: %s has %zu elements, expected %zu", f->path,
                 t->name, t->count, count);
        return NULL;
    }
    return t->data;
}

const float *lpg_f32(const lpg_file *f, const char *case_name,
                     const char *tensor, size_t count)
{
    return typed(f, case_name, tensor, count, LPG_F32);
}

const double *lpg_f64(const lpg_file *f, const char *case_name,
                      const char *tensor, size_t count)
{
    return typed(f, case_name, tensor, count, LPG_F64);
}

const int32_t *lpg_i32(const lpg_file *f, const char *case_name,
                       const char *tensor, size_t count)
{
    return typed(f, case_name, tensor, count, LPG_I32);
}
