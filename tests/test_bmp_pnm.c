/*
 * test_bmp_pnm.c — BMP and PBM/PGM/PPM decoding against Pillow 9.4, and
 * against truncated, corrupted and hostile files.
 *
 * Fixtures and manifests: tests/data/images/ (tests/gen_image_fixtures.py);
 * the helpers are test_png.c's.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers shared with test_png.c (defined there) --------------------- */
typedef int (*decode_fn)(lp_image *, const uint8_t *, size_t);
int lpt_img_verbose(void);
int lpt_img_fuzz_count(void);
uint8_t *lpt_img_fixture(const char *name, size_t *size);
int lpt_img_is_empty(const lp_image *img);
int lpt_img_decode_checked(decode_fn fn, const uint8_t *data, size_t size,
                           const char *what, size_t k);
void lpt_img_check_fixtures(const char *prefix, decode_fn fn);
void lpt_img_check_bad_files(const char *prefix);
int lpt_img_list_fixtures(const char *manifest_name, const char *prefix,
                          char names[][128], int cap);
void lpt_img_flip_bits(lpt_rng *r, uint8_t *d, size_t size, size_t from);

TEST(bmp_fixtures_match_pillow) { lpt_img_check_fixtures("bmp_", lp_bmp_decode); }
TEST(pnm_fixtures_match_pillow) { lpt_img_check_fixtures("pnm_", lp_pnm_decode); }
TEST(bmp_bad_files_fail) { lpt_img_check_bad_files("bmp_"); }
TEST(pnm_bad_files_fail) { lpt_img_check_bad_files("pnm_"); }

/* Every prefix of every fixture: no crash, and for formats whose data must
 * be complete (BMP, raw PNM without trailing bytes) always an error. */
static void truncations(const char *prefix, decode_fn fn)
{
    static char names[400][128];
    int n = lpt_img_list_fixtures("images.txt", prefix, names, 400);
    size_t total = 0, rejected = 0;
    for (int i = 0; i < n; i++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(names[i], &size);
        /* plain PNM can still parse when cut (a shorter last number);
         * pnm_trailing has bytes after its raster */
        int must_fail = data != NULL && size > 2 &&
                        !(data[0] == 'P' && data[1] >= '1' && data[1] <= '3') &&
                        strstr(names[i], "trailing") == NULL;
        if (data == NULL)
            continue;
        for (size_t len = 0; len < size; len++) {
            uint8_t *copy = malloc(len ? len : 1); /* exact size for ASan */
            int rc;
            if (copy == NULL)
                break;
            memcpy(copy, data, len);
            rc = lpt_img_decode_checked(fn, copy, len, names[i], len);
            if (must_fail)
                CHECK_MSG(rc != LP_OK, "%s cut to %zu of %zu bytes decoded",
                          names[i], len, size);
            rejected += rc != LP_OK;
            total++;
            free(copy);
        }
        lp_free(data);
    }
    CHECK(n > 0);
    if (lpt_img_verbose())
        printf("    %zu truncated %s files from %d, %zu rejected\n", total,
               prefix, n, rejected);
}

TEST(bmp_every_truncation_fails) { truncations("bmp_", lp_bmp_decode); }
TEST(pnm_every_truncation) { truncations("pnm_", lp_pnm_decode); }

static void bit_flips(const char *const *seeds, size_t n_seeds, decode_fn fn,
                      uint64_t seed)
{
    lpt_rng r = lpt_rng_seed(seed);
    int per_seed = lpt_img_fuzz_count() / 2, ok = 0, fail = 0;
    for (size_t s = 0; s < n_seeds; s++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(seeds[s], &size);
        CHECK_MSG(data != NULL, "missing %s", seeds[s]);
        if (data == NULL)
            continue;
        for (int k = 0; k < per_seed; k++) {
            uint8_t *copy = malloc(size);
            if (copy == NULL)
                break;
            memcpy(copy, data, size);
            /* mostly in the headers, where the decisions are */
            size_t span = k % 2 ? size : (size < 160 ? size : 160);
            lpt_img_flip_bits(&r, copy, span, 0);
            if (lpt_img_decode_checked(fn, copy, size, seeds[s], (size_t)k) ==
                LP_OK)
                ok++;
            else
                fail++;
            free(copy);
        }
        lp_free(data);
    }
    if (lpt_img_verbose())
        printf("    bit flips: %d rejected, %d decoded\n", fail, ok);
}

TEST(bmp_bit_flips_never_crash)
{
    static const char *seeds[] = {"bmp_24_bu_33x17.bmp", "bmp_p4_7x5.bmp",
                                  "bmp_32bf_abgr_v4.bmp", "bmp_16_565_7x5.bmp",
                                  "bmp_os2_p8.bmp"};
    bit_flips(seeds, sizeof seeds / sizeof seeds[0], lp_bmp_decode, 31);
}

TEST(pnm_bit_flips_never_crash)
{
    static const char *seeds[] = {"pnm_p6_m255_7x5.ppm", "pnm_p5_m1000_7x5.pgm",
                                  "pnm_p3_m7_7x5.ppm", "pnm_p1_7x5.pbm",
                                  "pnm_p4_33x17.pbm", "pnm_comments.ppm"};
    bit_flips(seeds, sizeof seeds / sizeof seeds[0], lp_pnm_decode, 32);
}

/* ---- hand-made hostile headers ------------------------------------------ */

static void put_le16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, v);
    put_le16(p + 2, v >> 16);
}

/* A 2x2 24-bit BITMAPINFOHEADER file. */
static size_t bmp_2x2(uint8_t *b)
{
    memset(b, 0, 70);
    b[0] = 'B';
    b[1] = 'M';
    put_le32(b + 2, 70);
    put_le32(b + 10, 54);
    put_le32(b + 14, 40);
    put_le32(b + 18, 2);
    put_le32(b + 22, 2);
    put_le16(b + 26, 1);
    put_le16(b + 28, 24);
    for (int i = 54; i < 70; i++)
        b[i] = (uint8_t)(i * 7);
    return 70;
}

TEST(bmp_hostile_headers)
{
    uint8_t b[2048];
    lp_image img;
    size_t n = bmp_2x2(b);
    CHECK_OK(lp_bmp_decode(&img, b, n));
    if (img.pixels != NULL) {
        /* bottom-up: the first file row is the bottom image row; BGR */
        CHECK(img.width == 2 && img.height == 2 && img.channels == 3);
        CHECK(img.pixels[6] == b[56] && img.pixels[7] == b[55] &&
              img.pixels[8] == b[54]);
    }
    lp_image_free(&img);

    static const struct {
        int offset, bytes;
        uint32_t value;
        int want;
    } cases[] = {
        {18, 4, 0, LP_EFORMAT},                 /* width 0 */
        {22, 4, 0, LP_EFORMAT},                 /* height 0 */
        {18, 4, 100000, LP_ERANGE},             /* width 100000 */
        {22, 4, (uint32_t)-100000, LP_ERANGE},  /* top-down, 100000 high */
        {22, 4, 0x80000000u, LP_EFORMAT},       /* INT32_MIN */
        {18, 4, 0xFFFFFFFFu, LP_ERANGE},        /* width 2^32 - 1 */
        {18, 4, 40000, LP_ERANGE},              /* 40000 x 40000 > max pixels */
        {28, 2, 0, LP_EFORMAT},                 /* 0 bits */
        {28, 2, 64, LP_EFORMAT},                /* 64 bits */
        {30, 4, 1, LP_EFORMAT},                 /* RLE8 */
        {30, 4, 4, LP_EFORMAT},                 /* JPEG inside */
        {30, 4, 3, LP_EFORMAT},                 /* 24-bit bitfields, odd masks */
        {14, 4, 0, LP_EFORMAT},                 /* header size 0 */
        {14, 4, 0xFFFFFFF0u, LP_EFORMAT},       /* header size huge */
        {14, 4, 124, LP_EFORMAT},               /* V5 header but file too short */
        {10, 4, 0xFFFFFFF0u, LP_EFORMAT},       /* pixel offset past the end */
        {10, 4, 60, LP_EFORMAT},                /* rows run past the end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        bmp_2x2(b);
        if (cases[i].bytes == 2)
            put_le16(b + cases[i].offset, cases[i].value);
        else
            put_le32(b + cases[i].offset, cases[i].value);
        if (i == 6) /* and 40000 high */
            put_le32(b + 22, 40000);
        lp_clear_error();
        rc = lp_bmp_decode(&img, b, n);
        CHECK_MSG(rc == cases[i].want, "case %zu: %s (%s), want %s", i,
                  lp_status_name(rc), lp_last_error(),
                  lp_status_name(cases[i].want));
        CHECK(lpt_img_is_empty(&img));
        CHECK(lp_last_error()[0] != '\0');
    }

    /* palettes: more than 256 colours; palette past the end of the file */
    bmp_2x2(b);
    put_le16(b + 28, 8);
    put_le32(b + 46, 257);
    CHECK_FAILS(lp_bmp_decode(&img, b, n));
    put_le32(b + 46, 256); /* 1024 palette bytes but the file is 70 */
    CHECK_FAILS(lp_bmp_decode(&img, b, n));
    CHECK(lpt_img_is_empty(&img));

    CHECK_FAILS(lp_bmp_decode(NULL, b, n));
    CHECK_FAILS(lp_bmp_decode(&img, NULL, 5));
    CHECK_FAILS(lp_bmp_decode(&img, b, 0));
    CHECK_FAILS(lp_bmp_decode(&img, (const uint8_t *)"BA", 2));
}

TEST(bmp_one_bit_palette_and_padding)
{
    /* 9x2, 1 bit: rows of 2 bytes padded to 4; palette red/green */
    uint8_t b[62 + 8];
    lp_image img;
    memset(b, 0, sizeof b);
    b[0] = 'B';
    b[1] = 'M';
    put_le32(b + 10, 62);
    put_le32(b + 14, 40);
    put_le32(b + 18, 9);
    put_le32(b + 22, (uint32_t)-2); /* top-down */
    put_le16(b + 28, 1);
    b[54 + 2] = 255; /* entry 0: B G R 0 = red */
    b[58 + 1] = 255; /* entry 1: green */
    b[62] = 0xA5;    /* row 0: 1010 0101 1 */
    b[63] = 0x80;
    b[66] = 0x00; /* row 1: all red */
    CHECK_OK(lp_bmp_decode(&img, b, sizeof b));
    if (img.pixels != NULL) {
        static const int row0[9] = {1, 0, 1, 0, 0, 1, 0, 1, 1};
        for (int x = 0; x < 9; x++) {
            CHECK(img.pixels[3 * x] == (row0[x] ? 0 : 255));
            CHECK(img.pixels[3 * x + 1] == (row0[x] ? 255 : 0));
            CHECK(img.pixels[27 + 3 * x] == 255);
        }
    }
    lp_image_free(&img);
}

TEST(pnm_hostile_headers)
{
    static const char *bad[] = {
        "P5",                       /* nothing after the magic */
        "P5\n",                     /* no width */
        "P5\n2",                    /* no height */
        "P5\n2 2",                  /* no maxval */
        "P5\n2 2\n255",             /* no raster */
        "P5\n2 2\n255\n\x01\x02\x03", /* raster one byte short */
        "P6\n65535 65535\n255\n",   /* beyond the pixel limit */
        "P6\n99999999999 1\n255\n", /* 11 digits */
        "P6\n-1 1\n255\n",          /* sign */
        "P6\n1 1\n99999\n",         /* maxval > 65535 */
        "P6 # comment to the end",  /* comment eats the rest */
        "P2\n2 1\n255\n1 x\n",      /* letter in plain data */
        "P3\n1 1\n255\n1 2\n",      /* plain: a sample missing */
        "P1\n3 1\n0 1 2\n",         /* '2' in a bitmap */
        "P4\n9 2\n\xff\xff\xff",    /* 9 wide: 2 bytes per row, 3 given */
        "P7\n1 1\n255\n\x00",       /* PAM: not supported */
    };
    lp_image img;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lp_clear_error();
        CHECK_MSG(lp_pnm_decode(&img, (const uint8_t *)bad[i], strlen(bad[i])) !=
                      LP_OK,
                  "case %zu decoded", i);
        CHECK(lpt_img_is_empty(&img));
        CHECK_MSG(lp_last_error()[0] != '\0', "case %zu: no message", i);
    }
    CHECK(lp_pnm_decode(&img, (const uint8_t *)"P6\n65535 65535\n255\n", 20) ==
          LP_ERANGE);
    /* an absurd size with no data: refused before allocating 12 GB */
    CHECK_FAILS(lp_pnm_decode(&img, (const uint8_t *)"P6\n65535 4096\n255\n",
                              19));
    CHECK_FAILS(lp_pnm_decode(NULL, (const uint8_t *)"P5", 2));
    CHECK_FAILS(lp_pnm_decode(&img, NULL, 2));
}

TEST(pnm_sixteen_bit_and_rounding)
{
    lp_image img;
    /* P6, maxval 1000, big-endian: 0, 500, 1000 -> 0, round(127.5) = 128
     * (half to even), 255 */
    static const uint8_t p6[] = "P6\n1 1\n1000\n\x00\x00\x01\xf4\x03\xe8";
    /* P5 16-bit: Pillow clamps the value instead of scaling: 300 -> 255,
     * 7 -> 7 */
    static const uint8_t p5[] = "P5\n2 1\n65535\n\x01\x2c\x00\x07";
    CHECK_OK(lp_pnm_decode(&img, p6, sizeof p6 - 1));
    if (img.pixels != NULL)
        CHECK(img.pixels[0] == 0 && img.pixels[1] == 128 && img.pixels[2] == 255);
    lp_image_free(&img);
    CHECK_OK(lp_pnm_decode(&img, p5, sizeof p5 - 1));
    if (img.pixels != NULL)
        CHECK(img.pixels[0] == 255 && img.pixels[1] == 7);
    lp_image_free(&img);
}
