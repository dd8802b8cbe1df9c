/*
 * test_npy.c — .npy reading (fixtures written by NumPy 1.24 and by hand,
 * tests/gen_image_fixtures.py, manifest npy.txt), writing, round trips and
 * hostile files.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers shared with test_png.c (defined there) --------------------- */
int lpt_img_verbose(void);
int lpt_img_fuzz_count(void);
uint8_t *lpt_img_fixture(const char *name, size_t *size);
FILE *lpt_img_manifest(const char *name);
int lpt_img_next_line(FILE *f, char *buf, size_t cap);
int lpt_img_list_fixtures(const char *manifest_name, const char *prefix,
                          char names[][128], int cap);
void lpt_img_flip_bits(lpt_rng *r, uint8_t *d, size_t size, size_t from);
const char *lpt_img_tmp_path(const char *name);
void lpt_img_tmp_cleanup(void);

static int npy_is_empty(const lp_npy *a)
{
    return a->data == NULL && a->ndim == 0;
}

TEST(npy_fixtures_match_numpy)
{
    char line[512];
    int n = 0;
    FILE *f = lpt_img_manifest("npy.txt");
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char name[128], kind[8], rawname[160], rel[200];
        int ndim, off = 0, used = 0;
        long long shape[LP_NPY_MAX_DIMS];
        size_t count = 1, raw_size = 0;
        uint8_t *raw;
        lp_npy a;
        if (sscanf(line, "%127s %7s %d%n", name, kind, &ndim, &used) != 3 ||
            ndim < 0 || ndim > LP_NPY_MAX_DIMS)
            continue;
        off = used;
        for (int i = 0; i < ndim; i++) {
            if (sscanf(line + off, "%lld%n", &shape[i], &used) != 1)
                break;
            off += used;
            count *= (size_t)shape[i];
        }
        snprintf(rawname, sizeof rawname, "%.*s.raw",
                 (int)(strrchr(name, '.') - name), name);
        raw = lpt_img_fixture(rawname, &raw_size);
        snprintf(rel, sizeof rel, "tests/data/images/%s", name);
        CHECK_OK(lp_npy_load(&a, lpt_path(rel)));
        if (a.data != NULL || count == 0) {
            int is_u8 = strcmp(kind, "u8") == 0;
            CHECK_MSG(a.dtype == (is_u8 ? LP_DTYPE_U8 : LP_DTYPE_F32),
                      "%s: dtype %d", name, (int)a.dtype);
            CHECK_MSG(a.ndim == ndim, "%s: ndim %d, want %d", name, a.ndim, ndim);
            for (int i = 0; i < ndim && i < a.ndim; i++)
                CHECK_MSG(a.shape[i] == shape[i], "%s: dim %d is %lld, want %lld",
                          name, i, (long long)a.shape[i], shape[i]);
            /* bitwise, so NaN and -inf compare too */
            CHECK_MSG(raw != NULL && raw_size == count * (is_u8 ? 1 : 4) &&
                          (count == 0 || memcmp(a.data, raw, raw_size) == 0),
                      "%s: values differ from NumPy's", name);
        }
        lp_npy_free(&a);
        CHECK(npy_is_empty(&a));
        lp_free(raw);
        n++;
    }
    fclose(f);
    CHECK(n >= 10);
    if (lpt_img_verbose())
        printf("    %d .npy fixtures equal to NumPy\n", n);
}

TEST(npy_bad_files_fail)
{
    static char names[64][128];
    int n = lpt_img_list_fixtures("bad.txt", "npy_", names, 64);
    for (int i = 0; i < n; i++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(names[i], &size);
        lp_npy a;
        if (data == NULL)
            continue;
        lp_clear_error();
        CHECK_MSG(lp_npy_decode(&a, data, size) != LP_OK, "%s decoded",
                  names[i]);
        CHECK(npy_is_empty(&a) && lp_last_error()[0] != '\0');
        if (lpt_img_verbose())
            printf("    %-26s %s\n", names[i], lp_last_error());
        lp_free(data);
    }
    CHECK(n >= 10);
    /* through the path API the message starts with the path */
    {
        const char *path = lpt_path("tests/data/images/npy_bad_short.npy");
        lp_npy a;
        CHECK_FAILS(lp_npy_load(&a, path));
        CHECK_MSG(strncmp(lp_last_error(), path, strlen(path)) == 0 &&
                      strstr(lp_last_error(), ": NPY: data is") != NULL,
                  "message: %s", lp_last_error());
        CHECK(npy_is_empty(&a));
    }
}

TEST(npy_truncations_and_bit_flips)
{
    static char names[64][128];
    int n = lpt_img_list_fixtures("npy.txt", "npy_", names, 64);
    int per_file = lpt_img_fuzz_count() / 4, decoded = 0, total = 0;
    lpt_rng r = lpt_rng_seed(8);
    for (int i = 0; i < n; i++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(names[i], &size);
        if (data == NULL)
            continue;
        /* the data size must match the shape exactly: every prefix fails */
        for (size_t len = 0; len < size; len++) {
            uint8_t *copy = malloc(len ? len : 1);
            lp_npy a;
            if (copy == NULL)
                break;
            memcpy(copy, data, len);
            CHECK_MSG(lp_npy_decode(&a, copy, len) != LP_OK,
                      "%s cut to %zu of %zu bytes decoded", names[i], len, size);
            CHECK(npy_is_empty(&a));
            free(copy);
        }
        for (int k = 0; k < per_file; k++) {
            uint8_t *copy = malloc(size);
            lp_npy a;
            if (copy == NULL)
                break;
            memcpy(copy, data, size);
            /* the header is where the parsing happens */
            lpt_img_flip_bits(&r, copy, size < 140 ? size : 140, 0);
            lp_clear_error();
            if (lp_npy_decode(&a, copy, size) == LP_OK) {
                decoded++;
                CHECK(a.ndim >= 0 && a.ndim <= LP_NPY_MAX_DIMS);
                lp_npy_free(&a);
            } else {
                CHECK(npy_is_empty(&a) && lp_last_error()[0] != '\0');
            }
            total++;
            free(copy);
        }
        lp_free(data);
    }
    if (lpt_img_verbose())
        printf("    npy bit flips: %d of %d still decoded\n", decoded, total);
}

TEST(npy_header_parsing)
{
    /* hand-written headers: variations NumPy accepts ... */
    static const struct {
        const char *header;
        int ndim;
        long long d0;
    } good[] = {
        {"{'descr':'<f4','fortran_order':False,'shape':(3,)}", 1, 3},
        {"{ 'shape' : ( 3 , ) , 'descr' : \"<f4\" , 'fortran_order' : False , "
         "}\n", 1, 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3)}\t\r\n", 2, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }", 1, 3},
    };
    /* ... and ones it does not (or that we refuse) */
    static const char *bad[] = {
        "",
        "{",
        "{}",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}",
        "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [3]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3 3)}",
        ("{'descr': '<f4', 'fortran_order': False, "
         "'shape': (1234567890123456789,)}"),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x",
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
        "{descr: '<f4', 'fortran_order': False, 'shape': (3,)}",
    };
    uint8_t buf[512];
    const float values[3] = {1.5f, -2.0f, 3.25f};
    lp_npy a;
    const size_t n_good = sizeof good / sizeof good[0];
    const size_t n_bad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < n_good + n_bad; i++) {
        int is_good = i < n_good;
        const char *h = is_good ? good[i].header : bad[i - n_good];
        size_t hl = strlen(h);
        memcpy(buf, "\x93NUMPY\x01\x00", 8);
        buf[8] = (uint8_t)hl;
        buf[9] = 0;
        memcpy(buf + 10, h, hl);
        memcpy(buf + 10 + hl, values, sizeof values); /* little-endian host */
        lp_clear_error();
        if (is_good) {
            CHECK_MSG(lp_npy_decode(&a, buf, 10 + hl + 12) == LP_OK, "%s: %s", h,
                      lp_last_error());
            CHECK(a.ndim == good[i].ndim && a.shape[0] == good[i].d0);
            if (a.data != NULL)
                CHECK(((float *)a.data)[2] == 3.25f);
            lp_npy_free(&a);
        } else {
            CHECK_MSG(lp_npy_decode(&a, buf, 10 + hl + 12) != LP_OK,
                      "accepted header %s", h);
            CHECK(npy_is_empty(&a) && lp_last_error()[0] != '\0');
        }
    }
    CHECK_FAILS(lp_npy_decode(NULL, buf, 10));
    CHECK_FAILS(lp_npy_decode(&a, NULL, 10));
    CHECK_FAILS(lp_npy_decode(&a, buf, 0));
}

TEST(npy_save_round_trip)
{
    static const int64_t shapes[][LP_NPY_MAX_DIMS] = {
        {0}, {5}, {2, 3}, {0, 4}, {3, 1, 4, 2}, {1, 1, 1, 1, 1, 1, 1, 3}};
    static const int ndims[] = {0, 1, 2, 2, 4, 8};
    lpt_rng r = lpt_rng_seed(12);
    for (size_t s = 0; s < sizeof ndims / sizeof ndims[0]; s++) {
        for (int u8 = 0; u8 <= 1; u8++) {
            size_t count = 1, size = 0, hlen;
            float *f;
            uint8_t *bytes, *file = NULL;
            lp_npy a;
            const char *path = lpt_img_tmp_path("a.npy");
            for (int i = 0; i < ndims[s]; i++)
                count *= (size_t)shapes[s][i];
            f = lpt_floats(count + 1);
            bytes = (uint8_t *)f;
            lpt_fill_normal(&r, f, count, 10.0);
            CHECK_OK(lp_npy_save(path, u8 ? LP_DTYPE_U8 : LP_DTYPE_F32, f,
                                 ndims[s], shapes[s]));
            /* the NumPy layout: version 1.0, data 64-byte aligned */
            CHECK_OK(lp_read_file(path, 1 << 20, &file, &size));
            if (file != NULL && size >= 10) {
                hlen = (size_t)file[8] | ((size_t)file[9] << 8);
                CHECK(memcmp(file, "\x93NUMPY\x01\x00", 8) == 0);
                CHECK((10 + hlen) % 64 == 0 && file[10 + hlen - 1] == '\n');
                CHECK(size == 10 + hlen + count * (u8 ? 1 : 4));
            }
            lp_free(file);
            CHECK_OK(lp_npy_load(&a, path));
            CHECK(a.dtype == (u8 ? LP_DTYPE_U8 : LP_DTYPE_F32));
            CHECK(a.ndim == ndims[s]);
            for (int i = 0; i < ndims[s] && i < a.ndim; i++)
                CHECK(a.shape[i] == shapes[s][i]);
            if (count > 0 && a.data != NULL)
                CHECK(memcmp(a.data, bytes, count * (u8 ? 1 : 4)) == 0);
            lp_npy_free(&a);
        }
    }
    lpt_img_tmp_cleanup();
}

TEST(npy_save_bad_arguments)
{
    float x[4] = {0};
    int64_t shape[9] = {2, 2, 1, 1, 1, 1, 1, 1, 1};
    int64_t neg[2] = {2, -1};
    int64_t huge[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 2};
    const char *path = lpt_img_tmp_path("bad.npy");
    lp_npy a;
    CHECK_FAILS(lp_npy_save(NULL, LP_DTYPE_F32, x, 2, shape));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, NULL, 2, shape));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, x, 2, NULL));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, x, 9, shape));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, x, -1, shape));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, x, 2, neg));
    CHECK_FAILS(lp_npy_save(path, LP_DTYPE_F32, x, 3, huge));
    CHECK_FAILS(lp_npy_save(path, (lp_dtype)7, x, 2, shape));
    /* an empty array needs no data */
    {
        int64_t empty[2] = {0, 3};
        CHECK_OK(lp_npy_save(path, LP_DTYPE_F32, NULL, 2, empty));
    }
    CHECK(lp_npy_load(&a, lpt_img_tmp_path("missing.npy")) == LP_ENOTFOUND);
    CHECK(strstr(lp_last_error(), "missing.npy") != NULL);
    CHECK(npy_is_empty(&a));
    CHECK_FAILS(lp_npy_load(NULL, path));
    lp_npy_free(NULL);
    lpt_img_tmp_cleanup();
}
