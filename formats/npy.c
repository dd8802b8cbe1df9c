/*
 * npy.c — NumPy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.x,
 * uint32 LE for 2.x/3.x), then the header: the repr of a Python dict
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline, then the raw array data.
 *
 * The dict is parsed by hand as the Python literal it is: keys and string
 * values in single or double quotes (no escapes), True/False, shape as a
 * tuple of non-negative integers ("(5,)", "()", a trailing comma allowed,
 * an old "L" suffix accepted), whitespace anywhere, keys in any order.
 * Exactly the three keys must be present, as NumPy requires.
 *
 * dtypes: '<f4' and '|u1' (also '<u1'/'>u1') as they are; '>f4', '<f8'
 * and '>f8' are converted to float32 (doubles outside float range become
 * +-inf; NaN stays NaN). fortran_order must be False. The data must be
 * exactly count * itemsize bytes: a truncated or padded file is an error.
 *
 * lp_npy_save writes version 1.0 with the header padded so the data starts
 * on a 64-byte boundary, as NumPy does, little-endian.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define NPY_MAX_HEADER 100000 /* NumPy itself refuses more than 10000 */
#define NPY_FILE_MAX ((uint64_t)1 << 40)

typedef enum { D_F4LE, D_F4BE, D_F8LE, D_F8BE, D_U1 } npy_descr;

/* ---- header dict parser ------------------------------------------------- */

typedef struct {
    const uint8_t *s;
    size_t n, pos;
} dict_parser;

static void skip_space(dict_parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int expect(dict_parser *p, char c)
{
    skip_space(p);
    if (p->pos >= p->n || p->s[p->pos] != (uint8_t)c)
        return lp_set_error(LP_EFORMAT, "NPY: header: expected '%c' at "
                            "offset %zu", c, p->pos);
    p->pos++;
    return LP_OK;
}

static int parse_string(dict_parser *p, char *out, size_t cap)
{
    uint8_t quote;
    size_t len = 0;
    skip_space(p);
    if (p->pos >= p->n || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
        return lp_set_error(LP_EFORMAT, "NPY: header: expected a string at "
                            "offset %zu", p->pos);
    quote = p->s[p->pos++];
    for (;;) {
        uint8_t c;
        if (p->pos >= p->n)
            return lp_set_error(LP_EFORMAT, "NPY: header: unterminated "
                                "string");
        c = p->s[p->pos++];
        if (c == quote)
            break;
        if (c < 0x20 || c > 0x7E || c == '\\')
            return lp_set_error(LP_EFORMAT, "NPY: header: unsupported "
                                "character 0x%02x in a string", c);
        if (len + 1 >= cap)
            return lp_set_error(LP_EFORMAT, "NPY: header: string too long");
        out[len++] = (char)c;
    }
    out[len] = '\0';
    return LP_OK;
}

static int parse_word(dict_parser *p, const char *word)
{
    size_t len = strlen(word);
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return 0;
    /* the word must end there ("Falsey" is not False) */
    if (p->n - p->pos > len) {
        uint8_t c = p->s[p->pos + len];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_')
            return 0;
    }
    p->pos += len;
    return 1;
}

static int parse_bool(dict_parser *p, int *value)
{
    skip_space(p);
    if (parse_word(p, "True"))
        *value = 1;
    else if (parse_word(p, "False"))
        *value = 0;
    else
        return lp_set_error(LP_EFORMAT, "NPY: header: fortran_order is not "
                            "True or False");
    return LP_OK;
}

static int parse_dim(dict_parser *p, int64_t *value)
{
    int digits = 0;
    int64_t v = 0;
    skip_space(p);
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        if (++digits > 18)
            return lp_set_error(LP_EFORMAT, "NPY: header: shape dimension "
                                "too large");
        v = v * 10 + (p->s[p->pos++] - '0');
    }
    if (digits == 0)
        return lp_set_error(LP_EFORMAT, "NPY: header: shape must be a tuple "
                            "of non-negative integers");
    if (p->pos < p->n && p->s[p->pos] == 'L') /* Python 2 long */
        p->pos++;
    *value = v;
    return LP_OK;
}

static int parse_shape(dict_parser *p, lp_npy *a)
{
    int trailing_comma = 0;
    LP_TRY(expect(p, '('));
    a->ndim = 0;
    for (;;) {
        skip_space(p);
        if (p->pos < p->n && p->s[p->pos] == ')') {
            p->pos++;
            break;
        }
        if (a->ndim > 0 && !trailing_comma)
            return lp_set_error(LP_EFORMAT, "NPY: header: expected ',' or "
                                "')' in the shape");
        if (a->ndim == LP_NPY_MAX_DIMS)
            return lp_set_error(LP_ERANGE, "NPY: more than %d dimensions",
                                LP_NPY_MAX_DIMS);
        LP_TRY(parse_dim(p, &a->shape[a->ndim]));
        a->ndim++;
        skip_space(p);
        trailing_comma = p->pos < p->n && p->s[p->pos] == ',';
        if (trailing_comma)
            p->pos++;
    }
    if (a->ndim == 1 && !trailing_comma) /* "(5)" is an int, not a tuple */
        return lp_set_error(LP_EFORMAT, "NPY: header: shape is not a tuple");
    return LP_OK;
}

static int parse_descr(const char *s, npy_descr *d)
{
    if (strcmp(s, "<f4") == 0)
        *d = D_F4LE;
    else if (strcmp(s, ">f4") == 0)
        *d = D_F4BE;
    else if (strcmp(s, "<f8") == 0)
        *d = D_F8LE;
    else if (strcmp(s, ">f8") == 0)
        *d = D_F8BE;
    else if (strcmp(s, "|u1") == 0 || strcmp(s, "<u1") == 0 ||
             strcmp(s, ">u1") == 0)
        *d = D_U1;
    else
        return lp_set_error(LP_EFORMAT, "NPY: unsupported dtype '%s' "
                            "(supported: <f4 >f4 <f8 >f8 |u1)", s);
    return LP_OK;
}

/* Parse the dict into a (ndim, shape) and *descr. */
static int parse_header_dict(const uint8_t *s, size_t n, lp_npy *a,
                             npy_descr *descr)
{
    dict_parser p = {s, n, 0};
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    LP_TRY(expect(&p, '{'));
    for (;;) {
        char key[32], value[32];
        skip_space(&p);
        if (p.pos < p.n && p.s[p.pos] == '}') {
            p.pos++;
            break;
        }
        LP_TRY(parse_string(&p, key, sizeof key));
        LP_TRY(expect(&p, ':'));
        if (strcmp(key, "descr") == 0 && !have_descr) {
            LP_TRY(parse_string(&p, value, sizeof value));
            LP_TRY(parse_descr(value, descr));
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            LP_TRY(parse_bool(&p, &fortran));
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            LP_TRY(parse_shape(&p, a));
            have_shape = 1;
        } else {
            return lp_set_error(LP_EFORMAT, "NPY: header: unexpected or "
                                "repeated key '%s'", key);
        }
        skip_space(&p);
        if (p.pos < p.n && p.s[p.pos] == ',') {
            p.pos++;
            continue;
        }
        LP_TRY(expect(&p, '}'));
        break;
    }
    skip_space(&p);
    if (p.pos != p.n)
        return lp_set_error(LP_EFORMAT, "NPY: header: unexpected text after "
                            "the dict");
    if (!have_descr || !have_order || !have_shape)
        return lp_set_error(LP_EFORMAT, "NPY: header lacks '%s'",
                            !have_descr ? "descr" : !have_order ? "fortran_order"
                                                                : "shape");
    if (fortran)
        return lp_set_error(LP_EFORMAT, "NPY: fortran_order=True is not "
                            "supported");
    return LP_OK;
}

/* ---- decode ------------------------------------------------------------- */

static uint64_t load_uint(const uint8_t *p, int bytes, int big_endian)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[big_endian ? i : bytes - 1 - i];
    return v;
}

static void convert_data(void *dst, const uint8_t *src, size_t count,
                         npy_descr d)
{
    if (d == D_U1) {
        if (count > 0)
            memcpy(dst, src, count);
        return;
    }
    float *out = (float *)dst;
    if (d == D_F4LE || d == D_F4BE) {
        for (size_t i = 0; i < count; i++) {
            uint32_t bits = (uint32_t)load_uint(src + 4 * i, 4, d == D_F4BE);
            memcpy(&out[i], &bits, 4);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t bits = load_uint(src + 8 * i, 8, d == D_F8BE);
            double v;
            memcpy(&v, &bits, 8);
            out[i] = (float)v;
        }
    }
}

static void format_shape(const lp_npy *a, char *buf, size_t cap)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < a->ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld",
                                i ? ", " : "", (long long)a->shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, a->ndim == 1 ? ",)" : ")");
}

int lp_npy_decode(lp_npy *a, const uint8_t *data, size_t size)
{
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    size_t hlen, prefix, count = 1, itemsize, nbytes;
    npy_descr descr = D_F4LE;
    lp_npy parsed;
    int major;

    if (a == NULL)
        return lp_set_error(LP_EINVAL, "lp_npy_decode: NULL array");
    memset(a, 0, sizeof *a);
    if (data == NULL && size > 0)
        return lp_set_error(LP_EINVAL, "lp_npy_decode: NULL data");
    if (size < 10 || memcmp(data, magic, 6) != 0)
        return lp_set_error(LP_EFORMAT, "NPY: bad magic (not a .npy file)");
    major = data[6];
    if (major < 1 || major > 3 || data[7] != 0)
        return lp_set_error(LP_EFORMAT, "NPY: unsupported format version "
                            "%d.%d", data[6], data[7]);
    if (major == 1) {
        hlen = (size_t)load_uint(data + 8, 2, 0);
        prefix = 10;
    } else {
        if (size < 12)
            return lp_set_error(LP_EFORMAT, "NPY: file ends inside the "
                                "header (truncated)");
        hlen = (size_t)load_uint(data + 8, 4, 0);
        prefix = 12;
    }
    if (hlen > NPY_MAX_HEADER)
        return lp_set_error(LP_EFORMAT, "NPY: header of %zu bytes is too "
                            "long", hlen);
    if (size - prefix < hlen)
        return lp_set_error(LP_EFORMAT, "NPY: file ends inside the %zu-byte "
                            "header (truncated)", hlen);

    memset(&parsed, 0, sizeof parsed);
    LP_TRY(parse_header_dict(data + prefix, hlen, &parsed, &descr));
    for (int i = 0; i < parsed.ndim; i++) {
        /* a zero dimension makes the array empty but the others must
         * still be sane */
        if ((uint64_t)parsed.shape[i] > LP_MAX_ELEMENTS ||
            !lp_mul_size(count, (size_t)parsed.shape[i], &count))
            return lp_set_error(LP_ERANGE, "NPY: shape has too many "
                                "elements");
    }
    itemsize = (descr == D_U1) ? 1 : (descr == D_F4LE || descr == D_F4BE) ? 4 : 8;
    nbytes = count * itemsize; /* count <= 2^40 */
    if (size - prefix - hlen != nbytes) {
        char shape[160];
        format_shape(&parsed, shape, sizeof shape);
        return lp_set_error(LP_EFORMAT, "NPY: data is %zu bytes but shape "
                            "%s needs %zu (%s)", size - prefix - hlen, shape,
                            nbytes,
                            size - prefix - hlen < nbytes ? "truncated"
                                                          : "trailing bytes");
    }
    parsed.dtype = descr == D_U1 ? LP_DTYPE_U8 : LP_DTYPE_F32;
    parsed.data = lp_alloc(count, descr == D_U1 ? 1 : sizeof(float));
    if (parsed.data == NULL)
        return LP_ENOMEM;
    convert_data(parsed.data, data + prefix + hlen, count, descr);
    *a = parsed;
    return LP_OK;
}

void lp_npy_free(lp_npy *a)
{
    if (a == NULL)
        return;
    lp_free(a->data);
    memset(a, 0, sizeof *a);
}

int lp_npy_load(lp_npy *a, const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc;
    size_t cap = (uint64_t)SIZE_MAX < NPY_FILE_MAX ? SIZE_MAX
                                                   : (size_t)NPY_FILE_MAX;
    if (a != NULL)
        memset(a, 0, sizeof *a);
    if (a == NULL || path == NULL)
        return lp_set_error(LP_EINVAL, "lp_npy_load: NULL argument");
    LP_TRY(lp_read_file(path, cap, &data, &size));
    rc = lp_npy_decode(a, data, size);
    lp_free(data);
    if (rc != LP_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        lp_set_error(rc, "%s: %s", path, msg);
    }
    return rc;
}

/* ---- save --------------------------------------------------------------- */

int lp_npy_save(const char *path, lp_dtype dtype, const void *data, int ndim,
                const int64_t *shape)
{
    char header[512];
    size_t count = 1, hlen, total, itemsize;
    int len, rc;
    uint8_t *buf;

    if (path == NULL || (ndim > 0 && shape == NULL))
        return lp_set_error(LP_EINVAL, "lp_npy_save: NULL argument");
    if (dtype != LP_DTYPE_F32 && dtype != LP_DTYPE_U8)
        return lp_set_error(LP_EINVAL, "lp_npy_save: unknown dtype %d",
                            (int)dtype);
    if (ndim < 0 || ndim > LP_NPY_MAX_DIMS)
        return lp_set_error(LP_EINVAL, "lp_npy_save: ndim %d not in 0..%d",
                            ndim, LP_NPY_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > LP_MAX_ELEMENTS ||
            !lp_mul_size(count, (size_t)shape[i], &count))
            return lp_set_error(LP_EINVAL, "lp_npy_save: bad shape "
                                "(dimension %d is %lld)", i,
                                (long long)shape[i]);
    }
    if (data == NULL && count > 0)
        return lp_set_error(LP_EINVAL, "lp_npy_save: NULL data");

    len = snprintf(header, sizeof header,
                   "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   dtype == LP_DTYPE_F32 ? "<f4" : "|u1");
    for (int i = 0; i < ndim; i++)
        len += snprintf(header + len, sizeof header - (size_t)len, "%s%lld",
                        i ? ", " : "", (long long)shape[i]);
    len += snprintf(header + len, sizeof header - (size_t)len, "%s), }",
                    ndim == 1 ? "," : "");
    /* pad with spaces and a final newline so the data is 64-byte aligned */
    hlen = (size_t)len + 1;
    hlen = (10 + hlen + 63) / 64 * 64 - 10;

    itemsize = dtype == LP_DTYPE_F32 ? 4 : 1;
    total = 10 + hlen + count * itemsize;
    buf = lp_alloc(total, 1);
    if (buf == NULL)
        return LP_ENOMEM;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xFF);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)len);
    memset(buf + 10 + len, ' ', hlen - (size_t)len - 1);
    buf[10 + hlen - 1] = '\n';
    if (dtype == LP_DTYPE_U8) {
        if (count > 0)
            memcpy(buf + 10 + hlen, data, count);
    } else {
        const float *f = (const float *)data;
        uint8_t *o = buf + 10 + hlen;
        for (size_t i = 0; i < count; i++) {
            uint32_t bits;
            memcpy(&bits, &f[i], 4);
            o[4 * i] = (uint8_t)bits;
            o[4 * i + 1] = (uint8_t)(bits >> 8);
            o[4 * i + 2] = (uint8_t)(bits >> 16);
            o[4 * i + 3] = (uint8_t)(bits >> 24);
        }
    }
    rc = lp_write_file_atomic(path, buf, total);
    lp_free(buf);
    return rc;
}
