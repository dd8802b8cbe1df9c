/*
 * cmd_inspect.c — `loupe inspect FILE.lpw [--verify] [--json]`: show what
 * a weight file holds (docs/FORMAT.md) so it can be audited before use.
 *
 * The file is fully validated first (steps 1-5 of the spec; step 6, the
 * payload CRCs, with --verify). Text read from the file is never printed
 * raw: control characters (C0, DEL, C1) are escaped, so a hostile label
 * cannot drive the terminal.
 */
#include "commands.h"
#include "loupe.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX_ITEMS 8    /* array values shown in text mode */
#define TEXT_MAX_LABELS 5   /* strings of a STR_ARR shown in text mode */
#define TEXT_MAX_BYTES 80   /* bytes of a label shown in text mode */
#define STR_BUF 4097        /* longest string the format allows, + NUL */

static void inspect_usage(FILE *out)
{
    fprintf(out,
            "usage: loupe inspect FILE.lpw [--verify] [--json]\n"
            "\n"
            "Validates a .lpw weight file and prints its metadata and its\n"
            "tensor table (name, dtype, shape, offset in the file, bytes,\n"
            "CRC32C of the payload).\n"
            "\n"
            "  --verify   also check every payload CRC\n"
            "  --json     print one JSON object (nothing abbreviated)\n");
}

static int fail_file(void)
{
    fprintf(stderr, "loupe: %s\n", lp_last_error());
    return 2;
}

/* ---- printing text safely ------------------------------------------------ */

/* Length of the UTF-8 sequence starting at s (the reader validated it). */
static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* A string in double quotes, controls escaped; cut after `max` bytes (on
 * a character boundary) with "..." when max > 0. */
static void put_string(FILE *out, const char *s, size_t max, int json)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = strlen(s);
    fputc('"', out);
    while (i < n) {
        unsigned char c = p[i];
        size_t len = utf8_len(c);
        if (len > n - i) /* only a path from the command line can be cut */
            len = n - i;
        if (max > 0 && i + len > max) {
            fputs("...", out);
            break;
        }
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            fprintf(out, json ? "\\u%04x" : "\\x%02x", c);
        else if (c == 0xC2 && i + 1 < n && p[i + 1] < 0xA0) /* C1 control */
            fprintf(out, "\\u%04x", p[i + 1]);
        else
            fwrite(p + i, 1, len, out);
        i += len;
    }
    fputc('"', out);
}

/* Shortest decimal that reads back as the same double. */
static void put_double(FILE *out, double v, int json)
{
    char buf[40];
    if (!isfinite(v)) {
        fputs(json ? "null" : (isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf")), out);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

/* ---- metadata values ----------------------------------------------------- */

static int print_number_array(FILE *out, const lp_lpw *f, const char *key,
                              lp_meta_type type, int json)
{
    int n = 0, shown;
    void *values;
    /* the first call only asks for the count */
    if (type == LP_META_I64_ARR)
        lp_lpw_get_i64_arr(f, key, NULL, 0, &n);
    else
        lp_lpw_get_f64_arr(f, key, NULL, 0, &n);
    values = malloc((size_t)(n > 0 ? n : 1) * 8);
    if (values == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory");
    if (type == LP_META_I64_ARR)
        lp_lpw_get_i64_arr(f, key, values, n, &n);
    else
        lp_lpw_get_f64_arr(f, key, values, n, &n);
    shown = (!json && n > TEXT_MAX_ITEMS) ? TEXT_MAX_ITEMS - 1 : n;
    fputc('[', out);
    for (int i = 0; i < shown; i++) {
        if (i)
            fputs(", ", out);
        if (type == LP_META_I64_ARR)
            fprintf(out, "%" PRId64, ((int64_t *)values)[i]);
        else
            put_double(out, ((double *)values)[i], json);
    }
    if (shown < n) {
        fputs(", ... ", out);
        if (type == LP_META_I64_ARR)
            fprintf(out, "%" PRId64, ((int64_t *)values)[n - 1]);
        else
            put_double(out, ((double *)values)[n - 1], json);
        fprintf(out, "] (%d values)", n);
    } else
        fputc(']', out);
    free(values);
    return LP_OK;
}

static int print_string_array(FILE *out, const lp_lpw *f, const char *key,
                              int json)
{
    char buf[STR_BUF];
    int n = 0;
    int rc = lp_lpw_get_str_arr_count(f, key, &n);
    if (rc != LP_OK)
        return rc;
    if (!json)
        fprintf(out, "%d: ", n);
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        if (!json && n > TEXT_MAX_LABELS + 1 && i == TEXT_MAX_LABELS - 1) {
            fputs(", ...", out);
            i = n - 1;
        }
        rc = lp_lpw_get_str_arr_item(f, key, i, buf, sizeof buf);
        if (rc != LP_OK)
            return rc;
        if (i)
            fputs(", ", out);
        put_string(out, buf, json ? 0 : TEXT_MAX_BYTES, json);
    }
    fputc(']', out);
    return LP_OK;
}

static int print_value(FILE *out, const lp_lpw *f, const char *key,
                       lp_meta_type type, int json)
{
    char buf[STR_BUF];
    int64_t i64;
    double f64;
    int rc;
    switch (type) {
    case LP_META_I64:
        rc = lp_lpw_get_i64(f, key, &i64);
        if (rc == LP_OK)
            fprintf(out, "%" PRId64, i64);
        return rc;
    case LP_META_F64:
        rc = lp_lpw_get_f64(f, key, &f64);
        if (rc == LP_OK)
            put_double(out, f64, json);
        return rc;
    case LP_META_STR:
        rc = lp_lpw_get_str(f, key, buf, sizeof buf);
        if (rc == LP_OK)
            put_string(out, buf, 0, json);
        return rc;
    case LP_META_I64_ARR:
    case LP_META_F64_ARR:
        return print_number_array(out, f, key, type, json);
    case LP_META_STR_ARR:
        return print_string_array(out, f, key, json);
    }
    return lp_set_error(LP_EFORMAT, "metadata '%s': unknown type", key);
}

static const char *type_name(lp_meta_type type)
{
    switch (type) {
    case LP_META_I64: return "I64";
    case LP_META_F64: return "F64";
    case LP_META_STR: return "STR";
    case LP_META_I64_ARR: return "I64_ARR";
    case LP_META_F64_ARR: return "F64_ARR";
    case LP_META_STR_ARR: return "STR_ARR";
    }
    return "?";
}

/* ---- tensors --------------------------------------------------------------- */

static const char *dtype_name(lp_lpw_dtype d)
{
    return d == LP_LPW_F32 ? "float32" : d == LP_LPW_F16 ? "float16" : "bfloat16";
}

static uint64_t tensor_nbytes(const lp_lpw_tensor *t)
{
    return (uint64_t)t->count * (t->dtype == LP_LPW_F32 ? 4u : 2u);
}

static void shape_string(char *buf, size_t cap, const lp_lpw_tensor *t)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64,
                                 d ? "," : "", t->shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* ---- the two output forms ---------------------------------------------------- */

static int print_json(FILE *out, const char *path, const lp_lpw *f, int verified)
{
    int major, minor, n = lp_lpw_tensor_count(f);
    const lp_lpw_tensor *last = lp_lpw_tensor_at(f, n - 1);
    char shape[200];
    lp_lpw_version(f, &major, &minor);
    fputs("{\n  \"file\": ", out);
    put_string(out, path, 0, 1);
    fprintf(out, ",\n  \"version\": \"%d.%d\",\n  \"file_size\": %" PRIu64
                 ",\n  \"metadata\": {",
            major, minor, last->file_offset + tensor_nbytes(last));
    for (int i = 0; i < lp_lpw_meta_count(f); i++) {
        const char *key;
        lp_meta_type type;
        lp_lpw_meta_key(f, i, &key, &type);
        fprintf(out, "%s\n    \"%s\": {\"type\": \"%s\", \"value\": ",
                i ? "," : "", key, type_name(type));
        if (print_value(out, f, key, type, 1) != LP_OK)
            return LP_EFORMAT;
        fputc('}', out);
    }
    fputs("\n  },\n  \"tensors\": [", out);
    for (int i = 0; i < n; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        shape_string(shape, sizeof shape, t);
        fprintf(out,
                "%s\n    {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": %s, "
                "\"file_offset\": %" PRIu64 ", \"nbytes\": %" PRIu64
                ", \"crc32c\": \"0x%08x\"}",
                i ? "," : "", t->name, dtype_name(t->dtype), shape,
                t->file_offset, tensor_nbytes(t), (unsigned)t->crc32c);
    }
    fprintf(out, "\n  ],\n  \"verified\": %s\n}\n", verified ? "true" : "false");
    return LP_OK;
}

static int print_text(FILE *out, const char *path, const lp_lpw *f)
{
    int major, minor, n = lp_lpw_tensor_count(f), n_meta = lp_lpw_meta_count(f);
    int name_w = 4, shape_w = 5, key_w = 3;
    const lp_lpw_tensor *last = lp_lpw_tensor_at(f, n - 1);
    uint64_t values = 0, half = 0;
    char shape[200];
    lp_lpw_version(f, &major, &minor);
    for (int i = 0; i < n; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        int len = (int)strlen(t->name);
        shape_string(shape, sizeof shape, t);
        if (len > name_w) name_w = len;
        if ((int)strlen(shape) > shape_w) shape_w = (int)strlen(shape);
        values += (uint64_t)t->count;
        if (t->dtype != LP_LPW_F32)
            half += (uint64_t)t->count;
    }
    for (int i = 0; i < n_meta; i++) {
        const char *key;
        lp_lpw_meta_key(f, i, &key, NULL);
        if ((int)strlen(key) > key_w) key_w = (int)strlen(key);
    }
    fputs("file: ", out);
    put_string(out, path, 0, 0);
    fprintf(out, "\nformat: .lpw %d.%d, %" PRIu64 " bytes, %d tensors, %" PRIu64
                 " values (%" PRIu64 " stored as 16-bit)\n",
            major, minor, last->file_offset + tensor_nbytes(last), n, values,
            half);
    fprintf(out, "metadata: %d keys\n", n_meta);
    for (int i = 0; i < n_meta; i++) {
        const char *key;
        lp_meta_type type;
        lp_lpw_meta_key(f, i, &key, &type);
        fprintf(out, "  %-*s  %-7s  ", key_w, key, type_name(type));
        if (print_value(out, f, key, type, 0) != LP_OK)
            return LP_EFORMAT;
        fputc('\n', out);
    }
    fprintf(out, "tensors: %d\n  %5s  %-*s  %-8s  %-*s  %12s  %12s  %s\n", n,
            "#", name_w, "name", "dtype", shape_w, "shape", "offset", "nbytes",
            "crc32c");
    for (int i = 0; i < n; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        shape_string(shape, sizeof shape, t);
        fprintf(out, "  %5d  %-*s  %-8s  %-*s  %12" PRIu64 "  %12" PRIu64
                     "  0x%08x\n",
                i, name_w, t->name, dtype_name(t->dtype), shape_w, shape,
                t->file_offset, tensor_nbytes(t), (unsigned)t->crc32c);
    }
    return LP_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int verify = 0, json = 0, rc;
    lp_lpw *f = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--verify") == 0)
            verify = 1;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            inspect_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "loupe: inspect: unknown option '%s' (see loupe inspect --help)\n",
                    argv[i]);
            return 2;
        } else if (path == NULL)
            path = argv[i];
        else {
            fprintf(stderr, "loupe: inspect: one file at a time\n");
            return 2;
        }
    }
    if (path == NULL) {
        inspect_usage(stderr);
        return 2;
    }
    if (lp_lpw_open(&f, path, 0) != LP_OK)
        return fail_file();
    if (json) {
        /* verify first, so that the output is either whole or absent */
        if (verify && lp_lpw_verify(f) != LP_OK)
            rc = LP_EFORMAT;
        else
            rc = print_json(stdout, path, f, verify);
    } else {
        rc = print_text(stdout, path, f);
        if (rc == LP_OK && verify) {
            rc = lp_lpw_verify(f);
            if (rc == LP_OK)
                printf("verify: all %d tensors OK\n", lp_lpw_tensor_count(f));
        }
    }
    lp_lpw_close(f);
    if (fflush(stdout) != 0)
        return lp_set_error(LP_EIO, "write error"), fail_file();
    return rc == LP_OK ? 0 : fail_file();
}
