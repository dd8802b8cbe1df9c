/*
 * lpw.c — the .lpw weight file (docs/FORMAT.md): a reader that validates
 * every byte before trusting any of it, typed metadata accessors, and a
 * builder that writes files.
 *
 * The reader takes the whole file into one 64-byte aligned buffer and then
 * follows the spec's validation steps in order. Every size and offset read
 * from the file is checked with explicit overflow tests on uint64_t before
 * it is used, and nothing is allocated with a size taken from the file
 * until the structure holding that size has been validated (the tensor
 * table is allocated after the index walk, the metadata table after the
 * record walk). float32 payloads are used in place; float16 and bfloat16
 * payloads are widened into one separate float32 allocation.
 *
 * The library assumes a little-endian host (payloads are used in place),
 * which the check below makes explicit.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "loupe's .lpw reader needs a little-endian host"
#endif

/* ---- format constants (docs/FORMAT.md) ------------------------------- */

#define LPW_HEADER_SIZE 128u
#define LPW_ENTRY_SIZE 256u
#define LPW_NAME_FIELD 96u
#define LPW_KEY_MAX 64u
#define LPW_MAX_RECORDS 1024
#define LPW_MAX_TENSORS 16384u
#define LPW_STR_MAX 4096u
#define LPW_ARR_MAX ((uint32_t)64 << 10)
#define LPW_STR_ARR_MAX ((uint32_t)1 << 20)
#define LPW_META_MAX ((uint64_t)4 << 20)
#define LPW_ALIGN_MIN 64u
#define LPW_ALIGN_MAX 65536u
#define LPW_BOM 0x01020304u
#define LPW_BOM_SWAPPED 0x04030201u
#define LPW_VERSION_MAJOR 1u
#define LPW_VERSION_MINOR 0u
/* Largest file lp_lpw_open accepts (ViT-H/14 in float32 is 2.5 GB). */
#define LPW_FILE_MAX ((uint64_t)16 << 30)
/* Header field offsets */
#define H_BOM 8
#define H_MAJOR 12
#define H_MINOR 14
#define H_HEADER_SIZE 16
#define H_ALIGNMENT 20
#define H_FILE_SIZE 24
#define H_META_OFF 32
#define H_META_SIZE 40
#define H_INDEX_OFF 48
#define H_INDEX_COUNT 56
#define H_ENTRY_SIZE 60
#define H_DATA_OFF 64
#define H_DATA_SIZE 72
#define H_FLAGS 80
#define H_META_CRC 84
#define H_INDEX_CRC 88
#define H_RESERVED 92
#define H_CRC 124
/* Index entry field offsets */
#define E_DTYPE 96
#define E_NDIM 100
#define E_SHAPE 104
#define E_OFFSET 168
#define E_NBYTES 176
#define E_CRC 184
#define E_RESERVED 188

static const uint8_t lpw_magic[8] = {0x89, 'L', 'P', 'W', '\r', '\n', 0x1A, '\n'};

/* ---- little-endian access and checked arithmetic --------------------- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* a + b; 0 on overflow */
static int add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a > UINT64_MAX - b)
        return 0;
    *out = a + b;
    return 1;
}

/* x rounded up to a multiple of the power of two `align`; 0 on overflow */
static int align_u64(uint64_t x, uint64_t align, uint64_t *out)
{
    if (!add_u64(x, align - 1, out))
        return 0;
    *out &= ~(align - 1);
    return 1;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static size_t dtype_size(uint32_t dtype) { return dtype == LP_LPW_F32 ? 4 : 2; }

static const char *dtype_name(uint32_t dtype)
{
    switch (dtype) {
    case LP_LPW_F32: return "float32";
    case LP_LPW_F16: return "float16";
    case LP_LPW_BF16: return "bfloat16";
    default: return "unknown";
    }
}

static const char *meta_type_name(int type)
{
    static const char *names[] = {"?", "I64", "F64", "STR",
                                  "I64_ARR", "F64_ARR", "STR_ARR"};
    return (type >= 1 && type <= 6) ? names[type] : "?";
}

/* ---- error messages --------------------------------------------------- */

/* Set "FILE: message" and return `status`. */
static int lpw_fail(const char *file, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int lpw_fail(const char *file, int status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lp_set_error(status, "%s: %s", file, msg);
}

/* Bytes from the file made safe to print: anything outside printable
 * ASCII becomes '?', so a hostile name cannot inject terminal escapes. */
static void printable(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n && i + 1 < cap; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7F) ? (char)src[i] : '?';
    dst[i] = '\0';
}

static void format_shape(char *buf, size_t cap, int ndim, const uint64_t *shape)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", d ? "," : "",
                                 (unsigned long long)shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* ---- character rules --------------------------------------------------- */

/* Metadata key: 1..64 bytes of [a-z0-9_.], not starting or ending with '.' */
static int valid_key(const uint8_t *k, size_t n)
{
    if (n < 1 || n > LPW_KEY_MAX || k[0] == '.' || k[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.'))
            return 0;
    }
    return 1;
}

/* Tensor name characters: [A-Za-z0-9_.] */
static int valid_name_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) without NUL bytes. */
static int valid_text(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint8_t lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            if (c == 0xED) hi = 0x9F;      /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            if (c == 0xF4) hi = 0x8F;      /* above U+10FFFF */
        } else
            return 0;
        if (n - i - 1 < extra)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= extra; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += extra + 1;
    }
    return 1;
}

/* ---- the opened file ---------------------------------------------------- */

typedef struct {
    char key[LPW_KEY_MAX + 1];
    lp_meta_type type;
    const uint8_t *value; /* value_len bytes inside the file buffer */
    uint32_t len;
} lpw_meta;

struct lp_lpw {
    char *name;                     /* for messages */
    uint8_t *buf;                   /* the whole file, 64-byte aligned */
    size_t size;
    int major, minor;
    lpw_meta *meta;
    int n_meta;
    lp_lpw_tensor *tensors;         /* index order */
    const lp_lpw_tensor **by_name;  /* sorted by name, for lp_lpw_find */
    int n_tensors;
    float *widened;                 /* float16/bfloat16 payloads as float32 */
};

/* Header fields after step 1-3 of the validation. */
typedef struct {
    uint32_t alignment;
    uint64_t meta_size, index_off, data_off, data_size;
    uint32_t index_count, meta_crc, index_crc;
} lpw_layout;

/* ---- validation steps 1-3: header and section bounds -------------------- */

static int check_header(const char *file, const uint8_t *buf, size_t size,
                        lpw_layout *L, int *major, int *minor)
{
    uint32_t bom, stored, computed, header_size, flags;
    uint64_t file_size, meta_off, index_off, index_end, data_off, v;

    /* step 1: identification and the header's own integrity */
    if (size < LPW_HEADER_SIZE)
        return lpw_fail(file, LP_EFORMAT,
                        "file is %zu bytes, shorter than the 128-byte header "
                        "(truncated?)", size);
    if (memcmp(buf, lpw_magic, sizeof lpw_magic) != 0) {
        if (memcmp(buf + 1, "LPW", 3) == 0)
            return lpw_fail(file, LP_EFORMAT,
                            "damaged signature: line endings or 8-bit bytes "
                            "were altered (copy the file in binary mode)");
        return lpw_fail(file, LP_EFORMAT, "not a .lpw weight file (bad magic)");
    }
    bom = rd32(buf + H_BOM);
    if (bom == LPW_BOM_SWAPPED)
        return lpw_fail(file, LP_EFORMAT,
                        "file is big-endian (byte-order mark reads 0x%08X); "
                        "this reader supports little-endian files only", bom);
    if (bom != LPW_BOM)
        return lpw_fail(file, LP_EFORMAT, "bad byte-order mark 0x%08X", bom);
    *major = rd16(buf + H_MAJOR);
    *minor = rd16(buf + H_MINOR);
    if (*major != (int)LPW_VERSION_MAJOR)
        return lpw_fail(file, LP_EFORMAT,
                        "unsupported format version %d.%d (this reader reads "
                        "version 1.x)", *major, *minor);
    header_size = rd32(buf + H_HEADER_SIZE);
    if (header_size != LPW_HEADER_SIZE)
        return lpw_fail(file, LP_EFORMAT, "header_size %u, expected 128",
                        header_size);
    stored = rd32(buf + H_CRC);
    computed = lp_crc32c(0, buf, H_CRC);
    if (stored != computed)
        return lpw_fail(file, LP_EFORMAT,
                        "header CRC mismatch (stored 0x%08X, computed 0x%08X): "
                        "the file is damaged", stored, computed);
    flags = rd32(buf + H_FLAGS);
    if (flags != 0)
        return lpw_fail(file, LP_EFORMAT, "unknown flags 0x%08X in the header",
                        flags);
    if (!all_zero(buf + H_RESERVED, H_CRC - H_RESERVED))
        return lpw_fail(file, LP_EFORMAT, "reserved header bytes are not zero");

    /* step 2: real size and alignment */
    file_size = rd64(buf + H_FILE_SIZE);
    if (file_size != (uint64_t)size)
        return lpw_fail(file, LP_EFORMAT,
                        "header says the file is %llu bytes but it is %zu "
                        "(truncated or appended to?)",
                        (unsigned long long)file_size, size);
    L->alignment = rd32(buf + H_ALIGNMENT);
    if (L->alignment < LPW_ALIGN_MIN || L->alignment > LPW_ALIGN_MAX ||
        (L->alignment & (L->alignment - 1)) != 0)
        return lpw_fail(file, LP_EFORMAT,
                        "alignment %u is not a power of two in [64, 65536]",
                        L->alignment);

    /* step 3: every section where the layout puts it */
    meta_off = rd64(buf + H_META_OFF);
    if (meta_off != LPW_HEADER_SIZE)
        return lpw_fail(file, LP_EFORMAT, "meta_off %llu, expected 128",
                        (unsigned long long)meta_off);
    L->meta_size = rd64(buf + H_META_SIZE);
    if (L->meta_size > LPW_META_MAX)
        return lpw_fail(file, LP_EFORMAT,
                        "meta_size %llu exceeds the 4 MiB limit",
                        (unsigned long long)L->meta_size);
    if (!add_u64(meta_off, L->meta_size, &v) || !align_u64(v, 8, &index_off))
        return lpw_fail(file, LP_EFORMAT, "metadata bounds overflow");
    L->index_off = rd64(buf + H_INDEX_OFF);
    if (L->index_off != index_off)
        return lpw_fail(file, LP_EFORMAT, "index_off %llu, expected %llu",
                        (unsigned long long)L->index_off,
                        (unsigned long long)index_off);
    L->index_count = rd32(buf + H_INDEX_COUNT);
    if (L->index_count < 1 || L->index_count > LPW_MAX_TENSORS)
        return lpw_fail(file, LP_EFORMAT, "index_count %u is outside [1, %u]",
                        L->index_count, LPW_MAX_TENSORS);
    if (rd32(buf + H_ENTRY_SIZE) != LPW_ENTRY_SIZE)
        return lpw_fail(file, LP_EFORMAT, "index_entry_size %u, expected 256",
                        rd32(buf + H_ENTRY_SIZE));
    /* index_count <= 16384, so the product cannot overflow */
    if (!add_u64(index_off, (uint64_t)L->index_count * LPW_ENTRY_SIZE,
                 &index_end) ||
        !align_u64(index_end, L->alignment, &data_off))
        return lpw_fail(file, LP_EFORMAT, "index bounds overflow");
    L->data_off = rd64(buf + H_DATA_OFF);
    if (L->data_off != data_off)
        return lpw_fail(file, LP_EFORMAT, "data_off %llu, expected %llu",
                        (unsigned long long)L->data_off,
                        (unsigned long long)data_off);
    if (data_off > file_size)
        return lpw_fail(file, LP_EFORMAT,
                        "the data section would start at %llu, past the end of "
                        "the %llu-byte file (truncated?)",
                        (unsigned long long)data_off,
                        (unsigned long long)file_size);
    L->data_size = rd64(buf + H_DATA_SIZE);
    if (L->data_size != file_size - data_off)
        return lpw_fail(file, LP_EFORMAT,
                        "data_size %llu, expected file_size - data_off = %llu",
                        (unsigned long long)L->data_size,
                        (unsigned long long)(file_size - data_off));
    if (!all_zero(buf + index_end, (size_t)(data_off - index_end)))
        return lpw_fail(file, LP_EFORMAT,
                        "the padding between the index and the data section "
                        "is not zero");
    L->meta_crc = rd32(buf + H_META_CRC);
    L->index_crc = rd32(buf + H_INDEX_CRC);
    return LP_OK;
}

/* ---- validation step 4: metadata ---------------------------------------- */

/* Type and length rules of one value (docs/FORMAT.md "Value types").
 * Writes a reason into why[] when the value is invalid. */
static int check_value(int type, const uint8_t *v, uint32_t len, char *why,
                       size_t cap)
{
    switch (type) {
    case LP_META_I64:
    case LP_META_F64:
        if (len != 8)
            return snprintf(why, cap, "%s value is %u bytes, not 8",
                            meta_type_name(type), len), 0;
        return 1;
    case LP_META_STR:
        if (len > LPW_STR_MAX)
            return snprintf(why, cap, "string of %u bytes exceeds 4096", len), 0;
        if (!valid_text(v, len))
            return snprintf(why, cap, "string is not valid UTF-8 without NUL"), 0;
        return 1;
    case LP_META_I64_ARR:
    case LP_META_F64_ARR:
        if (len % 8 != 0 || len > LPW_ARR_MAX)
            return snprintf(why, cap,
                            "array of %u bytes is not a multiple of 8 within "
                            "64 KiB", len), 0;
        return 1;
    case LP_META_STR_ARR: {
        uint32_t count, pos = 4;
        if (len > LPW_STR_ARR_MAX || len < 4)
            return snprintf(why, cap,
                            "string array of %u bytes is outside [4, 1 MiB]",
                            len), 0;
        count = rd32(v);
        /* every item takes at least 4 bytes, so the loop is bounded by len */
        for (uint32_t i = 0; i < count; i++) {
            uint32_t n;
            if (len - pos < 4)
                return snprintf(why, cap,
                                "string array claims %u items but item %u "
                                "starts past its end", count, i), 0;
            n = rd32(v + pos);
            pos += 4;
            if (n > LPW_STR_MAX || n > len - pos)
                return snprintf(why, cap,
                                "string array item %u: length %u exceeds "
                                "4096 or the value", i, n), 0;
            if (!valid_text(v + pos, n))
                return snprintf(why, cap,
                                "string array item %u is not valid UTF-8 "
                                "without NUL", i), 0;
            pos += n;
        }
        if (pos != len)
            return snprintf(why, cap,
                            "string array has %u bytes after its %u items",
                            len - pos, count), 0;
        return 1;
    }
    default:
        return snprintf(why, cap, "unknown value type %d", type), 0;
    }
}

/* Walk the records (validating each); fill out[] when it is not NULL.
 * *count receives the number of records. */
static int walk_meta(const char *file, const uint8_t *m, uint64_t size,
                     lpw_meta *out, int *count)
{
    uint64_t pos = 0;
    int n = 0;
    char why[160], key[LPW_KEY_MAX + 1];
    while (pos < size) {
        uint32_t key_len, type, value_len;
        uint64_t body, end;
        if (n == LPW_MAX_RECORDS)
            return lpw_fail(file, LP_EFORMAT,
                            "more than %d metadata records", LPW_MAX_RECORDS);
        if (size - pos < 8)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata record %d at offset %llu: truncated "
                            "record header", n, (unsigned long long)pos);
        key_len = rd16(m + pos);
        type = m[pos + 2];
        value_len = rd32(m + pos + 4);
        if (key_len < 1 || key_len > LPW_KEY_MAX)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata record %d: key length %u is outside "
                            "[1, 64]", n, key_len);
        if (m[pos + 3] != 0)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata record %d: reserved byte is not zero", n);
        /* value_len < 2^32 and key_len <= 64: no overflow in uint64 */
        body = 8u + key_len + (uint64_t)value_len;
        if (body > size - pos)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata record %d: %llu bytes run past the end of "
                            "the metadata section", n,
                            (unsigned long long)body);
        printable(key, sizeof key, m + pos + 8, key_len);
        if (!valid_key(m + pos + 8, key_len))
            return lpw_fail(file, LP_EFORMAT,
                            "metadata record %d: invalid key '%s' (allowed: "
                            "[a-z0-9_.], no leading or trailing '.')", n, key);
        if (type < LP_META_I64 || type > LP_META_STR_ARR)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata '%s': unknown value type %u", key, type);
        if (!check_value((int)type, m + pos + 8 + key_len, value_len, why,
                         sizeof why))
            return lpw_fail(file, LP_EFORMAT, "metadata '%s': %s", key, why);
        end = (pos + body + 7) & ~(uint64_t)7; /* pos + body <= 4 MiB */
        if (end > size)
            return lpw_fail(file, LP_EFORMAT,
                            "metadata '%s': record padding runs past the end "
                            "of the metadata section", key);
        if (!all_zero(m + pos + body, (size_t)(end - pos - body)))
            return lpw_fail(file, LP_EFORMAT,
                            "metadata '%s': record padding is not zero", key);
        if (out != NULL) {
            memcpy(out[n].key, m + pos + 8, key_len);
            out[n].key[key_len] = '\0';
            out[n].type = (lp_meta_type)type;
            out[n].value = m + pos + 8 + key_len;
            out[n].len = value_len;
        }
        n++;
        pos = end;
    }
    *count = n;
    return LP_OK;
}

static int cmp_meta_ptr(const void *a, const void *b)
{
    const lpw_meta *x = *(const lpw_meta *const *)a;
    const lpw_meta *y = *(const lpw_meta *const *)b;
    return strcmp(x->key, y->key);
}

static int check_meta(lp_lpw *f, const lpw_layout *L)
{
    const uint8_t *m = f->buf + LPW_HEADER_SIZE;
    const lpw_meta **sorted;
    uint32_t crc = lp_crc32c(0, m, (size_t)L->meta_size);
    int n = 0, rc = LP_OK;
    if (crc != L->meta_crc)
        return lpw_fail(f->name, LP_EFORMAT,
                        "metadata CRC mismatch (stored 0x%08X, computed "
                        "0x%08X): the file is damaged", L->meta_crc, crc);
    LP_TRY(walk_meta(f->name, m, L->meta_size, NULL, &n));
    /* n <= 1024 was validated by the walk */
    f->meta = lp_calloc((size_t)(n > 0 ? n : 1), sizeof *f->meta);
    sorted = lp_alloc((size_t)(n > 0 ? n : 1), sizeof *sorted);
    if (f->meta == NULL || sorted == NULL) {
        lp_free(sorted);
        return lpw_fail(f->name, LP_ENOMEM, "out of memory for the metadata");
    }
    rc = walk_meta(f->name, m, L->meta_size, f->meta, &f->n_meta);
    for (int i = 0; i < n; i++)
        sorted[i] = &f->meta[i];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_meta_ptr);
    for (int i = 1; i < n && rc == LP_OK; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
            rc = lpw_fail(f->name, LP_EFORMAT, "duplicate metadata key '%s'",
                          sorted[i]->key);
    lp_free(sorted);
    return rc;
}

/* ---- validation step 5: the tensor index -------------------------------- */

/* Name field: 1..95 characters of [A-Za-z0-9_.], NUL-terminated, NUL-padded. */
static int check_entry_name(const char *file, int i, const uint8_t *e,
                            char *name)
{
    size_t len = 0;
    char shown[LPW_NAME_FIELD + 1];
    while (len < LPW_NAME_FIELD && e[len] != 0)
        len++;
    printable(shown, sizeof shown, e, len);
    if (len == LPW_NAME_FIELD)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor #%d: name is not NUL-terminated within 96 bytes",
                        i);
    if (len == 0)
        return lpw_fail(file, LP_EFORMAT, "tensor #%d: empty name", i);
    for (size_t k = 0; k < len; k++)
        if (!valid_name_char(e[k]))
            return lpw_fail(file, LP_EFORMAT,
                            "tensor #%d: name '%s' has a character outside "
                            "[A-Za-z0-9_.]", i, shown);
    if (!all_zero(e + len, LPW_NAME_FIELD - len))
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': name field is not NUL-padded", shown);
    memcpy(name, e, len + 1);
    return LP_OK;
}

/* Validate entry i; *next_off is where its payload must start and becomes
 * where the next one must start. Fills t when it is not NULL. */
static int check_entry(const char *file, const uint8_t *buf,
                       const lpw_layout *L, int i, uint64_t *next_off,
                       uint64_t *prev_end, lp_lpw_tensor *t)
{
    const uint8_t *e = buf + L->index_off + (uint64_t)i * LPW_ENTRY_SIZE;
    char name[LPW_NAME_FIELD], shape_s[200];
    uint64_t shape[LP_LPW_MAX_DIMS], count = 1, want_bytes, offset, nbytes, end;
    uint32_t dtype, ndim;

    LP_TRY(check_entry_name(file, i, e, name));
    dtype = rd32(e + E_DTYPE);
    if (dtype > LP_LPW_BF16)
        return lpw_fail(file, LP_EFORMAT, "tensor '%s': unknown dtype %u", name,
                        dtype);
    ndim = rd32(e + E_NDIM);
    if (ndim < 1 || ndim > LP_LPW_MAX_DIMS)
        return lpw_fail(file, LP_EFORMAT, "tensor '%s': ndim %u is outside [1, 8]",
                        name, ndim);
    for (uint32_t d = 0; d < LP_LPW_MAX_DIMS; d++)
        shape[d] = rd64(e + E_SHAPE + 8 * d);
    format_shape(shape_s, sizeof shape_s, (int)ndim, shape);
    for (uint32_t d = 0; d < LP_LPW_MAX_DIMS; d++) {
        if (d >= ndim) {
            if (shape[d] != 0)
                return lpw_fail(file, LP_EFORMAT,
                                "tensor '%s': unused shape entries are not zero",
                                name);
            continue;
        }
        if (shape[d] == 0)
            return lpw_fail(file, LP_EFORMAT,
                            "tensor '%s': shape %s has a zero dimension", name,
                            shape_s);
        /* count <= 2^40 before the multiply, so the test cannot wrap */
        if (shape[d] > (uint64_t)LP_MAX_ELEMENTS / count)
            return lpw_fail(file, LP_EFORMAT,
                            "tensor '%s': shape %s has more than 2^40 elements",
                            name, shape_s);
        count *= shape[d];
    }
    want_bytes = count * dtype_size(dtype); /* <= 2^42 */
    offset = rd64(e + E_OFFSET);
    nbytes = rd64(e + E_NBYTES);
    if (nbytes != want_bytes)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': nbytes %llu does not match shape %s %s "
                        "(%llu)", name, (unsigned long long)nbytes, shape_s,
                        dtype_name(dtype), (unsigned long long)want_bytes);
    if (offset % L->alignment != 0)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': offset %llu is not a multiple of the "
                        "alignment %u", name, (unsigned long long)offset,
                        L->alignment);
    if (offset < *next_off)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': payload at %llu overlaps the previous "
                        "tensor (which ends at %llu)", name,
                        (unsigned long long)offset,
                        (unsigned long long)*prev_end);
    if (offset > *next_off)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': payload at %llu leaves a hole (it must "
                        "start at %llu)", name, (unsigned long long)offset,
                        (unsigned long long)*next_off);
    if (!add_u64(offset, nbytes, &end) || end > L->data_size)
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': payload of %llu bytes at %llu runs past "
                        "the end of the data section (%llu bytes)", name,
                        (unsigned long long)nbytes, (unsigned long long)offset,
                        (unsigned long long)L->data_size);
    if (rd32(e + E_RESERVED) != 0 ||
        !all_zero(e + E_RESERVED + 4, LPW_ENTRY_SIZE - E_RESERVED - 4))
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': reserved index fields are not zero", name);
    if (!all_zero(buf + L->data_off + *prev_end, (size_t)(offset - *prev_end)))
        return lpw_fail(file, LP_EFORMAT,
                        "tensor '%s': the padding before its payload is not "
                        "zero", name);
    *prev_end = end;
    /* end <= data_size < 2^63 (it fits in the file), so no overflow */
    if (!align_u64(end, L->alignment, next_off))
        return lpw_fail(file, LP_EFORMAT, "tensor '%s': offset overflow", name);
    if (t != NULL) {
        memcpy(t->name, name, sizeof t->name);
        t->dtype = (lp_lpw_dtype)dtype;
        t->ndim = (int)ndim;
        for (uint32_t d = 0; d < LP_LPW_MAX_DIMS; d++)
            t->shape[d] = (int64_t)shape[d];
        t->count = (int64_t)count;
        t->file_offset = L->data_off + offset;
        t->crc32c = rd32(e + E_CRC);
        t->data = NULL;
    }
    return LP_OK;
}

static int cmp_tensor_ptr(const void *a, const void *b)
{
    const lp_lpw_tensor *x = *(const lp_lpw_tensor *const *)a;
    const lp_lpw_tensor *y = *(const lp_lpw_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int check_index(lp_lpw *f, const lpw_layout *L)
{
    const uint8_t *index = f->buf + L->index_off;
    size_t index_bytes = (size_t)L->index_count * LPW_ENTRY_SIZE;
    uint32_t crc = lp_crc32c(0, index, index_bytes);
    uint64_t next_off = 0, prev_end = 0;
    int n = (int)L->index_count;
    if (crc != L->index_crc)
        return lpw_fail(f->name, LP_EFORMAT,
                        "index CRC mismatch (stored 0x%08X, computed 0x%08X): "
                        "the file is damaged", L->index_crc, crc);
    /* first pass: every entry on its own, nothing allocated */
    for (int i = 0; i < n; i++)
        LP_TRY(check_entry(f->name, f->buf, L, i, &next_off, &prev_end, NULL));
    if (prev_end != L->data_size)
        return lpw_fail(f->name, LP_EFORMAT,
                        "the data section has %llu bytes after the last "
                        "tensor's payload (it must end exactly at data_size)",
                        (unsigned long long)(L->data_size - prev_end));
    /* the index is sound: now the table, bounded by 16384 entries */
    f->tensors = lp_calloc((size_t)n, sizeof *f->tensors);
    f->by_name = lp_alloc((size_t)n, sizeof *f->by_name);
    if (f->tensors == NULL || f->by_name == NULL)
        return lpw_fail(f->name, LP_ENOMEM, "out of memory for %d tensors", n);
    next_off = prev_end = 0;
    for (int i = 0; i < n; i++) {
        LP_TRY(check_entry(f->name, f->buf, L, i, &next_off, &prev_end,
                           &f->tensors[i]));
        f->by_name[i] = &f->tensors[i];
    }
    f->n_tensors = n;
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_tensor_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return lpw_fail(f->name, LP_EFORMAT, "duplicate tensor name '%s'",
                            f->by_name[i]->name);
    return LP_OK;
}

/* ---- payloads ------------------------------------------------------------ */

/* IEEE binary16 -> binary32, exact (subnormals, infinities and NaNs kept). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
    float out;
    if (exp == 0x1F)
        bits = sign | 0x7F800000u | (mant << 13);
    else if (exp != 0)
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    else if (mant == 0)
        bits = sign;
    else {
        /* subnormal: mant * 2^-24; normalise the leading 1 into bit 10 */
        uint32_t e = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
    }
    memcpy(&out, &bits, sizeof out);
    return out;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

static int verify_tensor(const lp_lpw *f, const lp_lpw_tensor *t)
{
    size_t nbytes = (size_t)t->count * dtype_size((uint32_t)t->dtype);
    uint32_t crc = lp_crc32c(0, f->buf + t->file_offset, nbytes);
    if (crc != t->crc32c)
        return lpw_fail(f->name, LP_EFORMAT,
                        "tensor '%s': payload CRC mismatch (stored 0x%08X, "
                        "computed 0x%08X): the file is damaged", t->name,
                        t->crc32c, crc);
    return LP_OK;
}

int lp_lpw_verify(const lp_lpw *f)
{
    if (f == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_verify: NULL file");
    for (int i = 0; i < f->n_tensors; i++)
        LP_TRY(verify_tensor(f, &f->tensors[i]));
    return LP_OK;
}

/* Point float32 tensors into the buffer; widen the others. */
static int attach_payloads(lp_lpw *f)
{
    /* float count, each tensor rounded up to 16 floats (64 bytes) so that
     * every one starts aligned; bounded by the file size */
    uint64_t widened = 0;
    float *dst;
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].dtype != LP_LPW_F32)
            widened += ((uint64_t)f->tensors[i].count + 15) & ~(uint64_t)15;
    if (widened > 0) {
        /* the widened copies come on top of the file: refuse up front */
        if (widened > SIZE_MAX / sizeof(float))
            return lpw_fail(f->name, LP_ERANGE, "too many half-precision values");
        if (lp_memory_check((size_t)widened * sizeof(float),
                            "widening its half-precision tensors") != LP_OK)
            return lpw_fail(f->name, LP_ERANGE, "%s", lp_last_error());
        f->widened = lp_alloc((size_t)widened, sizeof(float));
        if (f->widened == NULL)
            return lpw_fail(f->name, LP_ENOMEM,
                            "out of memory widening %llu half-precision values",
                            (unsigned long long)widened);
    }
    dst = f->widened;
    for (int i = 0; i < f->n_tensors; i++) {
        lp_lpw_tensor *t = &f->tensors[i];
        const uint8_t *src = f->buf + t->file_offset;
        if (t->dtype == LP_LPW_F32) {
            t->data = (const float *)(const void *)src;
            continue;
        }
        for (int64_t k = 0; k < t->count; k++) {
            uint16_t h = rd16(src + 2 * k);
            dst[k] = t->dtype == LP_LPW_F16 ? half_to_float(h) : bf16_to_float(h);
        }
        t->data = dst;
        dst += (t->count + 15) & ~(int64_t)15;
    }
    return LP_OK;
}

/* ---- open / close ---------------------------------------------------------- */

void lp_lpw_close(lp_lpw *f)
{
    if (f == NULL)
        return;
    lp_free(f->name);
    lp_free(f->buf);
    lp_free(f->meta);
    lp_free(f->tensors);
    lp_free(f->by_name);
    lp_free(f->widened);
    lp_free(f);
}

/* Validate `buf` (taking ownership of it) and produce the opened file. */
static int open_owned(lp_lpw **out, uint8_t *buf, size_t size,
                      const char *name, int verify_crc)
{
    lpw_layout L;
    lp_lpw *f;
    size_t name_len = strlen(name);
    int rc;
    *out = NULL;
    f = lp_calloc(1, sizeof *f);
    if (f == NULL) {
        lp_free(buf);
        return LP_ENOMEM;
    }
    f->buf = buf;
    f->size = size;
    f->name = lp_alloc(name_len + 1, 1);
    if (f->name == NULL) {
        lp_lpw_close(f);
        return LP_ENOMEM;
    }
    memcpy(f->name, name, name_len + 1);
    memset(&L, 0, sizeof L);
    rc = check_header(f->name, buf, size, &L, &f->major, &f->minor);
    if (rc == LP_OK)
        rc = check_meta(f, &L);
    if (rc == LP_OK)
        rc = check_index(f, &L);
    if (rc == LP_OK && verify_crc)
        rc = lp_lpw_verify(f);
    if (rc == LP_OK)
        rc = attach_payloads(f);
    if (rc != LP_OK) {
        lp_lpw_close(f);
        return rc;
    }
    *out = f;
    return LP_OK;
}

int lp_lpw_open_memory(lp_lpw **out, const uint8_t *data, size_t size,
                       const char *name, int verify_crc)
{
    uint8_t *copy;
    if (out == NULL || (data == NULL && size > 0))
        return lp_set_error(LP_EINVAL, "lp_lpw_open_memory: NULL argument");
    *out = NULL;
    if (name == NULL)
        name = "<memory>";
    if ((uint64_t)size > LPW_FILE_MAX)
        return lpw_fail(name, LP_ERANGE, "%zu bytes exceeds the 16 GiB limit",
                        size);
    copy = lp_alloc(size, 1);
    if (copy == NULL)
        return lpw_fail(name, LP_ENOMEM, "out of memory for %zu bytes", size);
    if (size > 0)
        memcpy(copy, data, size);
    return open_owned(out, copy, size, name, verify_crc);
}

int lp_lpw_open(lp_lpw **out, const char *path, int verify_crc)
{
    uint8_t *data = NULL;
    size_t size = 0;
    size_t cap = (uint64_t)SIZE_MAX < LPW_FILE_MAX ? SIZE_MAX : (size_t)LPW_FILE_MAX;
    if (out == NULL || path == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_open: NULL argument");
    *out = NULL;
    /* lp_read_file checks the size against the cap before it reads */
    LP_TRY(lp_read_file(path, cap, &data, &size));
    return open_owned(out, data, size, path, verify_crc);
}

/* ---- accessors ---------------------------------------------------------- */

int lp_lpw_version(const lp_lpw *f, int *major, int *minor)
{
    if (f == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_version: NULL file");
    if (major != NULL)
        *major = f->major;
    if (minor != NULL)
        *minor = f->minor;
    return LP_OK;
}

int lp_lpw_tensor_count(const lp_lpw *f) { return f ? f->n_tensors : 0; }

const lp_lpw_tensor *lp_lpw_tensor_at(const lp_lpw *f, int i)
{
    if (f == NULL || i < 0 || i >= f->n_tensors)
        return NULL;
    return &f->tensors[i];
}

const lp_lpw_tensor *lp_lpw_find(const lp_lpw *f, const char *name)
{
    int lo = 0, hi;
    if (f == NULL || name == NULL)
        return NULL;
    hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

int lp_lpw_meta_count(const lp_lpw *f) { return f ? f->n_meta : 0; }

int lp_lpw_meta_key(const lp_lpw *f, int i, const char **key,
                    lp_meta_type *type)
{
    if (f == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_meta_key: NULL file");
    if (i < 0 || i >= f->n_meta)
        return lp_set_error(LP_ERANGE, "%s: metadata index %d out of range "
                            "[0, %d)", f->name, i, f->n_meta);
    if (key != NULL)
        *key = f->meta[i].key;
    if (type != NULL)
        *type = f->meta[i].type;
    return LP_OK;
}

/* The record for `key`, checked to hold `type`. */
static int lookup(const lp_lpw *f, const char *key, lp_meta_type type,
                  const lpw_meta **out)
{
    if (f == NULL || key == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_get: NULL argument");
    for (int i = 0; i < f->n_meta; i++) {
        if (strcmp(f->meta[i].key, key) != 0)
            continue;
        if (f->meta[i].type != type)
            return lpw_fail(f->name, LP_EFORMAT,
                            "metadata '%s' is %s, not %s", key,
                            meta_type_name(f->meta[i].type),
                            meta_type_name(type));
        *out = &f->meta[i];
        return LP_OK;
    }
    return lpw_fail(f->name, LP_ENOTFOUND, "no metadata key '%s'", key);
}

int lp_lpw_get_i64(const lp_lpw *f, const char *key, int64_t *value)
{
    const lpw_meta *m;
    LP_TRY(lookup(f, key, LP_META_I64, &m));
    if (value != NULL)
        *value = (int64_t)rd64(m->value);
    return LP_OK;
}

int lp_lpw_get_f64(const lp_lpw *f, const char *key, double *value)
{
    const lpw_meta *m;
    uint64_t bits;
    LP_TRY(lookup(f, key, LP_META_F64, &m));
    bits = rd64(m->value);
    if (value != NULL)
        memcpy(value, &bits, sizeof *value);
    return LP_OK;
}

static int copy_text(const lp_lpw *f, const char *key, const uint8_t *s,
                     size_t n, char *buf, size_t cap)
{
    if (buf == NULL || cap < n + 1)
        return lpw_fail(f->name, LP_ERANGE,
                        "metadata '%s': a %zu-byte string does not fit a "
                        "%zu-byte buffer", key, n, cap);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return LP_OK;
}

int lp_lpw_get_str(const lp_lpw *f, const char *key, char *buf, size_t cap)
{
    const lpw_meta *m;
    LP_TRY(lookup(f, key, LP_META_STR, &m));
    return copy_text(f, key, m->value, m->len, buf, cap);
}

static int get_arr(const lp_lpw *f, const char *key, lp_meta_type type,
                   void *values, int cap, int *count)
{
    const lpw_meta *m;
    int n;
    LP_TRY(lookup(f, key, type, &m));
    n = (int)(m->len / 8); /* <= 8192 */
    if (count != NULL)
        *count = n;
    if (cap < 0 || (cap > 0 && values == NULL))
        return lp_set_error(LP_EINVAL, "lp_lpw_get_*_arr: bad buffer");
    for (int i = 0; i < n && i < cap; i++) {
        uint64_t bits = rd64(m->value + 8 * (size_t)i);
        if (type == LP_META_I64_ARR)
            ((int64_t *)values)[i] = (int64_t)bits;
        else
            memcpy((double *)values + i, &bits, sizeof(double));
    }
    if (n > cap)
        return lpw_fail(f->name, LP_ERANGE,
                        "metadata '%s' has %d values, more than %d", key, n,
                        cap);
    return LP_OK;
}

int lp_lpw_get_i64_arr(const lp_lpw *f, const char *key, int64_t *values,
                       int cap, int *count)
{
    return get_arr(f, key, LP_META_I64_ARR, values, cap, count);
}

int lp_lpw_get_f64_arr(const lp_lpw *f, const char *key, double *values,
                       int cap, int *count)
{
    return get_arr(f, key, LP_META_F64_ARR, values, cap, count);
}

int lp_lpw_get_str_arr_count(const lp_lpw *f, const char *key, int *count)
{
    const lpw_meta *m;
    LP_TRY(lookup(f, key, LP_META_STR_ARR, &m));
    if (count != NULL)
        *count = (int)rd32(m->value); /* <= 262143, validated */
    return LP_OK;
}

int lp_lpw_get_str_arr_item(const lp_lpw *f, const char *key, int index,
                            char *buf, size_t cap)
{
    const lpw_meta *m;
    uint32_t count, pos = 4, n = 0;
    LP_TRY(lookup(f, key, LP_META_STR_ARR, &m));
    count = rd32(m->value);
    if (index < 0 || (uint32_t)index >= count)
        return lpw_fail(f->name, LP_ERANGE,
                        "metadata '%s': item %d out of range [0, %u)", key,
                        index, count);
    /* the structure was validated when the file was opened */
    for (int i = 0;; i++) {
        n = rd32(m->value + pos);
        pos += 4;
        if (i == index)
            break;
        pos += n;
    }
    return copy_text(f, key, m->value + pos, n, buf, cap);
}

/* ---- builder ---------------------------------------------------------------- */

typedef struct {
    char key[LPW_KEY_MAX + 1];
    lp_meta_type type;
    uint8_t *value;
    uint32_t len;
} builder_meta;

typedef struct {
    char name[LPW_NAME_FIELD];
    int ndim;
    uint64_t shape[LP_LPW_MAX_DIMS];
    uint64_t count;
    float *data;
} builder_tensor;

struct lp_lpw_builder {
    builder_meta *meta; /* LPW_MAX_RECORDS slots */
    int n_meta;
    builder_tensor *tensors;
    int n_tensors, cap_tensors;
};

lp_lpw_builder *lp_lpw_builder_new(void)
{
    lp_lpw_builder *b = calloc(1, sizeof *b);
    if (b == NULL) {
        lp_set_error(LP_ENOMEM, "out of memory for a .lpw builder");
        return NULL;
    }
    b->meta = calloc(LPW_MAX_RECORDS, sizeof *b->meta);
    if (b->meta == NULL) {
        free(b);
        lp_set_error(LP_ENOMEM, "out of memory for a .lpw builder");
        return NULL;
    }
    return b;
}

void lp_lpw_builder_free(lp_lpw_builder *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->n_meta; i++)
        free(b->meta[i].value);
    for (int i = 0; i < b->n_tensors; i++)
        free(b->tensors[i].data);
    free(b->meta);
    free(b->tensors);
    free(b);
}

/* Store a value (taking ownership of `value`), replacing an earlier one. */
static int builder_set(lp_lpw_builder *b, const char *key, lp_meta_type type,
                       uint8_t *value, uint32_t len)
{
    char why[160];
    size_t key_len;
    int slot;
    if (b == NULL || key == NULL) {
        free(value);
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_set: NULL argument");
    }
    key_len = strlen(key);
    if (!valid_key((const uint8_t *)key, key_len)) {
        free(value);
        return lp_set_error(LP_EINVAL,
                            "lp_lpw_builder_set: invalid key '%.80s' (1..64 of "
                            "[a-z0-9_.], no leading or trailing '.')", key);
    }
    if (!check_value(type, value, len, why, sizeof why)) {
        free(value);
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_set: '%s': %s", key, why);
    }
    for (slot = 0; slot < b->n_meta; slot++)
        if (strcmp(b->meta[slot].key, key) == 0)
            break;
    if (slot == b->n_meta) {
        if (b->n_meta == LPW_MAX_RECORDS) {
            free(value);
            return lp_set_error(LP_ERANGE, "lp_lpw_builder_set: more than %d "
                                "metadata keys", LPW_MAX_RECORDS);
        }
        b->n_meta++;
        memcpy(b->meta[slot].key, key, key_len + 1);
    } else
        free(b->meta[slot].value);
    b->meta[slot].type = type;
    b->meta[slot].value = value;
    b->meta[slot].len = len;
    return LP_OK;
}

static uint8_t *value_alloc(size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        lp_set_error(LP_ENOMEM, "out of memory for a metadata value");
    return p;
}

int lp_lpw_builder_set_i64(lp_lpw_builder *b, const char *key, int64_t v)
{
    uint8_t *p = value_alloc(8);
    if (p == NULL)
        return LP_ENOMEM;
    wr64(p, (uint64_t)v);
    return builder_set(b, key, LP_META_I64, p, 8);
}

int lp_lpw_builder_set_f64(lp_lpw_builder *b, const char *key, double v)
{
    uint8_t *p = value_alloc(8);
    uint64_t bits;
    if (p == NULL)
        return LP_ENOMEM;
    memcpy(&bits, &v, sizeof bits);
    wr64(p, bits);
    return builder_set(b, key, LP_META_F64, p, 8);
}

int lp_lpw_builder_set_str(lp_lpw_builder *b, const char *key, const char *v)
{
    size_t n;
    uint8_t *p;
    if (v == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_set_str: NULL value");
    n = strlen(v);
    if (n > LPW_STR_MAX)
        return lp_set_error(LP_ERANGE, "lp_lpw_builder_set_str: '%.80s': "
                            "%zu bytes exceeds 4096", key ? key : "", n);
    p = value_alloc(n);
    if (p == NULL)
        return LP_ENOMEM;
    memcpy(p, v, n);
    return builder_set(b, key, LP_META_STR, p, (uint32_t)n);
}

static int set_arr(lp_lpw_builder *b, const char *key, lp_meta_type type,
                   const void *v, int count)
{
    uint8_t *p;
    if (count < 0 || (count > 0 && v == NULL))
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_set_*_arr: bad array");
    if ((size_t)count > LPW_ARR_MAX / 8)
        return lp_set_error(LP_ERANGE, "lp_lpw_builder_set_*_arr: %d values "
                            "exceed 64 KiB", count);
    p = value_alloc((size_t)count * 8);
    if (p == NULL)
        return LP_ENOMEM;
    for (int i = 0; i < count; i++) {
        uint64_t bits;
        if (type == LP_META_I64_ARR)
            bits = (uint64_t)((const int64_t *)v)[i];
        else
            memcpy(&bits, (const double *)v + i, sizeof bits);
        wr64(p + 8 * (size_t)i, bits);
    }
    return builder_set(b, key, type, p, (uint32_t)count * 8);
}

int lp_lpw_builder_set_i64_arr(lp_lpw_builder *b, const char *key,
                               const int64_t *v, int count)
{
    return set_arr(b, key, LP_META_I64_ARR, v, count);
}

int lp_lpw_builder_set_f64_arr(lp_lpw_builder *b, const char *key,
                               const double *v, int count)
{
    return set_arr(b, key, LP_META_F64_ARR, v, count);
}

int lp_lpw_builder_set_str_arr(lp_lpw_builder *b, const char *key,
                               const char *const *v, int count)
{
    uint64_t total = 4;
    uint8_t *p;
    size_t pos = 4;
    if (count < 0 || (count > 0 && v == NULL))
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_set_str_arr: bad array");
    for (int i = 0; i < count; i++) {
        if (v[i] == NULL)
            return lp_set_error(LP_EINVAL, "lp_lpw_builder_set_str_arr: "
                                "item %d is NULL", i);
        total += 4 + (uint64_t)strnlen(v[i], LPW_STR_ARR_MAX);
        if (total > LPW_STR_ARR_MAX)
            return lp_set_error(LP_ERANGE, "lp_lpw_builder_set_str_arr: "
                                "more than 1 MiB of strings");
    }
    p = value_alloc((size_t)total);
    if (p == NULL)
        return LP_ENOMEM;
    wr32(p, (uint32_t)count);
    for (int i = 0; i < count; i++) {
        size_t n = strlen(v[i]);
        wr32(p + pos, (uint32_t)n);
        memcpy(p + pos + 4, v[i], n);
        pos += 4 + n;
    }
    return builder_set(b, key, LP_META_STR_ARR, p, (uint32_t)total);
}

int lp_lpw_builder_add_tensor(lp_lpw_builder *b, const char *name, int ndim,
                              const int64_t *shape, const float *data)
{
    builder_tensor *t;
    size_t len;
    uint64_t count = 1;
    if (b == NULL || name == NULL || shape == NULL || data == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: NULL argument");
    len = strnlen(name, LPW_NAME_FIELD);
    if (len == 0 || len >= LPW_NAME_FIELD)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: name "
                            "'%.100s' must have 1..95 characters", name);
    for (size_t i = 0; i < len; i++)
        if (!valid_name_char((uint8_t)name[i]))
            return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: name "
                                "'%s' has a character outside [A-Za-z0-9_.]",
                                name);
    for (int i = 0; i < b->n_tensors; i++)
        if (strcmp(b->tensors[i].name, name) == 0)
            return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: "
                                "duplicate tensor '%s'", name);
    if (ndim < 1 || ndim > LP_LPW_MAX_DIMS)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: '%s': ndim "
                            "%d is outside [1, 8]", name, ndim);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || (uint64_t)shape[d] > (uint64_t)LP_MAX_ELEMENTS / count)
            return lp_set_error(LP_EINVAL, "lp_lpw_builder_add_tensor: '%s': "
                                "bad or too large shape", name);
        count *= (uint64_t)shape[d];
    }
    if (count > SIZE_MAX / sizeof(float))
        return lp_set_error(LP_ENOMEM, "lp_lpw_builder_add_tensor: '%s' is "
                            "too large", name);
    if (b->n_tensors == (int)LPW_MAX_TENSORS)
        return lp_set_error(LP_ERANGE, "lp_lpw_builder_add_tensor: more than "
                            "%u tensors", LPW_MAX_TENSORS);
    if (b->n_tensors == b->cap_tensors) {
        int cap = b->cap_tensors ? 2 * b->cap_tensors : 64;
        builder_tensor *grown = realloc(b->tensors, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return lp_set_error(LP_ENOMEM, "out of memory adding a tensor");
        b->tensors = grown;
        b->cap_tensors = cap;
    }
    t = &b->tensors[b->n_tensors];
    memset(t, 0, sizeof *t);
    t->data = malloc((size_t)count * sizeof(float));
    if (t->data == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory copying tensor '%s'", name);
    memcpy(t->data, data, (size_t)count * sizeof(float));
    memcpy(t->name, name, len + 1);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = (uint64_t)shape[d];
    t->count = count;
    b->n_tensors++;
    return LP_OK;
}

int lp_lpw_builder_finish(lp_lpw_builder *b, uint8_t **data, size_t *size)
{
    const uint64_t align = LPW_ALIGN_MIN;
    uint64_t meta_size = 0, index_off, data_off, data_size = 0, file_size;
    uint64_t *offsets;
    uint8_t *out, *p;
    if (b == NULL || data == NULL || size == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_finish: NULL argument");
    *data = NULL;
    *size = 0;
    if (b->n_tensors == 0)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_finish: no tensors");
    for (int i = 0; i < b->n_meta; i++)
        meta_size += (8 + strlen(b->meta[i].key) + b->meta[i].len + 7) & ~7ull;
    if (meta_size > LPW_META_MAX)
        return lp_set_error(LP_ERANGE, "lp_lpw_builder_finish: %llu bytes of "
                            "metadata exceed 4 MiB",
                            (unsigned long long)meta_size);
    index_off = LPW_HEADER_SIZE + meta_size; /* a multiple of 8 */
    data_off = (index_off + (uint64_t)b->n_tensors * LPW_ENTRY_SIZE + align - 1) &
               ~(align - 1);
    offsets = malloc((size_t)b->n_tensors * sizeof *offsets);
    if (offsets == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory writing a .lpw file");
    /* at most 16384 tensors of at most 2^42 bytes: no overflow below 2^57 */
    for (int i = 0; i < b->n_tensors; i++) {
        if (i > 0)
            data_size = (data_size + align - 1) & ~(align - 1);
        offsets[i] = data_size;
        data_size += b->tensors[i].count * 4;
    }
    if (!add_u64(data_off, data_size, &file_size) || file_size > SIZE_MAX ||
        file_size > LPW_FILE_MAX) {
        free(offsets);
        return lp_set_error(LP_ERANGE, "lp_lpw_builder_finish: the file "
                            "would exceed 16 GiB");
    }
    out = lp_calloc((size_t)file_size, 1); /* zero padding everywhere */
    if (out == NULL) {
        free(offsets);
        return LP_ENOMEM;
    }
    /* metadata records */
    p = out + LPW_HEADER_SIZE;
    for (int i = 0; i < b->n_meta; i++) {
        const builder_meta *m = &b->meta[i];
        size_t key_len = strlen(m->key);
        wr16(p, (uint16_t)key_len);
        p[2] = (uint8_t)m->type;
        wr32(p + 4, m->len);
        memcpy(p + 8, m->key, key_len);
        if (m->len > 0)
            memcpy(p + 8 + key_len, m->value, m->len);
        p += (8 + key_len + m->len + 7) & ~(size_t)7;
    }
    /* index and payloads */
    for (int i = 0; i < b->n_tensors; i++) {
        const builder_tensor *t = &b->tensors[i];
        uint8_t *e = out + index_off + (size_t)i * LPW_ENTRY_SIZE;
        uint8_t *payload = out + data_off + offsets[i];
        size_t nbytes = (size_t)t->count * 4;
        memcpy(e, t->name, strlen(t->name));
        wr32(e + E_DTYPE, LP_LPW_F32);
        wr32(e + E_NDIM, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            wr64(e + E_SHAPE + 8 * d, t->shape[d]);
        wr64(e + E_OFFSET, offsets[i]);
        wr64(e + E_NBYTES, nbytes);
        memcpy(payload, t->data, nbytes); /* little-endian host */
        wr32(e + E_CRC, lp_crc32c(0, payload, nbytes));
    }
    free(offsets);
    /* header last: it holds the CRCs of the other sections */
    memcpy(out, lpw_magic, sizeof lpw_magic);
    wr32(out + H_BOM, LPW_BOM);
    wr16(out + H_MAJOR, LPW_VERSION_MAJOR);
    wr16(out + H_MINOR, LPW_VERSION_MINOR);
    wr32(out + H_HEADER_SIZE, LPW_HEADER_SIZE);
    wr32(out + H_ALIGNMENT, (uint32_t)align);
    wr64(out + H_FILE_SIZE, file_size);
    wr64(out + H_META_OFF, LPW_HEADER_SIZE);
    wr64(out + H_META_SIZE, meta_size);
    wr64(out + H_INDEX_OFF, index_off);
    wr32(out + H_INDEX_COUNT, (uint32_t)b->n_tensors);
    wr32(out + H_ENTRY_SIZE, LPW_ENTRY_SIZE);
    wr64(out + H_DATA_OFF, data_off);
    wr64(out + H_DATA_SIZE, data_size);
    wr32(out + H_META_CRC, lp_crc32c(0, out + LPW_HEADER_SIZE, (size_t)meta_size));
    wr32(out + H_INDEX_CRC, lp_crc32c(0, out + index_off,
                                       (size_t)b->n_tensors * LPW_ENTRY_SIZE));
    wr32(out + H_CRC, lp_crc32c(0, out, H_CRC));
    *data = out;
    *size = (size_t)file_size;
    return LP_OK;
}

int lp_lpw_builder_write(lp_lpw_builder *b, const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc;
    if (path == NULL)
        return lp_set_error(LP_EINVAL, "lp_lpw_builder_write: NULL path");
    LP_TRY(lp_lpw_builder_finish(b, &data, &size));
    rc = lp_write_file_atomic(path, data, size);
    lp_free(data);
    return rc;
}
