/*
 * test_png.c — PNG decoding against Pillow, zlib inflate against Python's
 * zlib, the PNG writer, lp_image_decode/lp_image_load, and hostile input.
 *
 * Fixtures: tests/data/images/, made by tests/gen_image_fixtures.py, with
 * manifests images.txt (file w h c; file.raw holds Pillow's decode),
 * bad.txt (files that must fail), zlib.txt (streams; zlib decided whether
 * each is valid, and the size and CRC-32 of what it inflates to) and
 * photos.txt (the photos in ../shared, checked by a hash of Pillow's
 * decode; skipped when shared/ is absent, as in users' clones).
 *
 * Environment:
 *   LOUPE_TEST_VERBOSE=1   counts and timings
 *   LOUPE_SHARED=DIR       where shared/ is (default ../shared)
 *   LOUPE_IMG_FUZZ=N       corrupted files per kind of corruption (2000)
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The lpt_img_* helpers below are shared with test_bmp_pnm.c, test_npy.c
 * and test_fileio.c, which declare the ones they use.
 */
typedef int (*decode_fn)(lp_image *, const uint8_t *, size_t);

int lpt_img_verbose(void)
{
    const char *v = getenv("LOUPE_TEST_VERBOSE");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

int lpt_img_fuzz_count(void)
{
    const char *v = getenv("LOUPE_IMG_FUZZ");
    return v != NULL && atoi(v) > 0 ? atoi(v) : 2000;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* A file of tests/data/images/ (lp_free it); NULL if it cannot be read. */
uint8_t *lpt_img_fixture(const char *name, size_t *size)
{
    char rel[512];
    uint8_t *data = NULL;
    snprintf(rel, sizeof rel, "tests/data/images/%s", name);
    if (lp_read_file(lpt_path(rel), (size_t)1 << 26, &data, size) != LP_OK)
        return NULL;
    return data;
}

/* Next non-comment line of a manifest into buf; 0 at the end. */
int lpt_img_next_line(FILE *f, char *buf, size_t cap)
{
    while (fgets(buf, (int)cap, f) != NULL) {
        if (buf[0] != '#' && buf[0] != '\n')
            return 1;
    }
    return 0;
}

FILE *lpt_img_manifest(const char *name)
{
    char rel[256];
    FILE *f;
    snprintf(rel, sizeof rel, "tests/data/images/%s", name);
    f = fopen(lpt_path(rel), "r");
    if (f == NULL)
        lpt_fail(__FILE__, __LINE__, "missing manifest %s", lpt_path(rel));
    return f;
}

int lpt_img_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int lpt_img_is_empty(const lp_image *img)
{
    return img->pixels == NULL && img->width == 0 && img->height == 0 &&
           img->channels == 0;
}

/* Decode `data` with `fn`; the result must be a sane image or an error
 * with a message and an empty image. Returns the status. */

int lpt_img_decode_checked(decode_fn fn, const uint8_t *data, size_t size,
                          const char *what, size_t k)
{
    lp_image img;
    int rc;
    memset(&img, 0xAB, sizeof img); /* the decoder must reset it */
    lp_clear_error();
    rc = fn(&img, data, size);
    if (rc == LP_OK) {
        CHECK_MSG(img.pixels != NULL && img.width > 0 && img.height > 0 &&
                      img.channels >= 1 && img.channels <= 4,
                  "%s #%zu: OK but image is %dx%dx%d", what, k, img.width,
                  img.height, img.channels);
        lp_image_free(&img);
    } else {
        CHECK_MSG(lpt_img_is_empty(&img), "%s #%zu: failed but image not empty",
                  what, k);
        CHECK_MSG(lp_last_error()[0] != '\0' &&
                      strchr(lp_last_error(), '\n') == NULL,
                  "%s #%zu: failed without a one-line message", what, k);
        lp_image_free(&img);
    }
    return rc;
}

/* ---- fixtures against Pillow -------------------------------------------- */

/* Decode every images.txt entry starting with prefix and compare with its
 * .raw (Pillow's decode). */
void lpt_img_check_fixtures(const char *prefix, decode_fn fn)
{
    char line[512];
    int n = 0;
    FILE *f = lpt_img_manifest("images.txt");
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char name[256], rawname[300];
        int w, h, c;
        size_t size = 0, raw_size = 0;
        uint8_t *data, *raw;
        lp_image img;
        if (sscanf(line, "%255s %d %d %d", name, &w, &h, &c) != 4 ||
            !lpt_img_starts_with(name, prefix))
            continue;
        snprintf(rawname, sizeof rawname, "%.*s.raw",
                 (int)(strrchr(name, '.') - name), name);
        data = lpt_img_fixture(name, &size);
        raw = lpt_img_fixture(rawname, &raw_size);
        CHECK_MSG(data != NULL && raw != NULL, "%s: fixture missing", name);
        if (data != NULL && raw != NULL) {
            int rc = fn(&img, data, size);
            CHECK_MSG(rc == LP_OK, "%s: %s", name, lp_last_error());
            if (rc == LP_OK) {
                CHECK_MSG(img.width == w && img.height == h && img.channels == c,
                          "%s: got %dx%dx%d, want %dx%dx%d", name, img.width,
                          img.height, img.channels, w, h, c);
                if (img.width == w && img.height == h && img.channels == c &&
                    raw_size == (size_t)w * h * c) {
                    for (size_t i = 0; i < raw_size; i++) {
                        if (img.pixels[i] != raw[i]) {
                            size_t px = i / (size_t)c;
                            lpt_fail(__FILE__, __LINE__,
                                     "%s: pixel (%zu, %zu) channel %zu is %d, "
                                     "Pillow says %d", name, px % (size_t)w,
                                     px / (size_t)w, i % (size_t)c,
                                     img.pixels[i], raw[i]);
                            break;
                        }
                    }
                }
                lp_image_free(&img);
            }
            n++;
        }
        lp_free(data);
        lp_free(raw);
    }
    fclose(f);
    CHECK_MSG(n > 0, "no %s fixtures", prefix);
    if (lpt_img_verbose())
        printf("    %d %s fixtures equal to Pillow\n", n, prefix);
}

void lpt_img_check_bad_files(const char *prefix)
{
    char line[512];
    int n = 0;
    FILE *f = lpt_img_manifest("bad.txt");
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char name[256];
        size_t size = 0;
        uint8_t *data;
        lp_image img;
        if (sscanf(line, "%255s", name) != 1 ||
            !lpt_img_starts_with(name, prefix))
            continue;
        data = lpt_img_fixture(name, &size);
        CHECK_MSG(data != NULL, "%s: fixture missing", name);
        if (data == NULL)
            continue;
        lp_clear_error();
        CHECK_MSG(lp_image_decode(&img, data, size) != LP_OK,
                  "%s (%s) decoded", name, strchr(line, ' ') + 1);
        CHECK(lpt_img_is_empty(&img));
        CHECK(lp_last_error()[0] != '\0');
        if (lpt_img_verbose())
            printf("    %-28s %s\n", name, lp_last_error());
        lp_free(data);
        n++;
    }
    fclose(f);
    CHECK_MSG(n > 0, "no bad %s fixtures", prefix);
}

TEST(png_fixtures_match_pillow) { lpt_img_check_fixtures("png_", lp_png_decode); }

TEST(png_fixtures_through_image_load)
{
    /* every 5th fixture (all formats) through the path API and the
     * sniffing dispatcher; the pixels are checked above */
    char line[512];
    FILE *f = lpt_img_manifest("images.txt");
    int k = 0;
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char name[256], rel[300];
        int w, h, c;
        lp_image img;
        if (k++ % 5 != 0 ||
            sscanf(line, "%255s %d %d %d", name, &w, &h, &c) != 4)
            continue;
        snprintf(rel, sizeof rel, "tests/data/images/%s", name);
        CHECK_OK(lp_image_load(&img, lpt_path(rel)));
        CHECK_MSG(img.width == w && img.height == h && img.channels == c,
                  "%s: %dx%dx%d", name, img.width, img.height, img.channels);
        lp_image_free(&img);
        CHECK(lpt_img_is_empty(&img));
    }
    fclose(f);
}

TEST(png_bad_files_fail) { lpt_img_check_bad_files("png_"); }

/* ---- hand-built files --------------------------------------------------- */

typedef struct {
    uint8_t buf[8192];
    size_t len;
} bytes;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void add(bytes *b, const void *p, size_t n)
{
    if (n > 0 && b->len + n <= sizeof b->buf) {
        memcpy(b->buf + b->len, p, n);
        b->len += n;
    }
}

static void add_chunk(bytes *b, const char *type, const uint8_t *body,
                      size_t n)
{
    uint8_t hdr[8], crc[4];
    put_be32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    add(b, hdr, 8);
    add(b, body, n);
    put_be32(crc, lp_crc32(lp_crc32(0, type, 4), body, n));
    add(b, crc, 4);
}

/* zlib stream of stored blocks (at most 65535 bytes per block). */
static size_t zlib_stored(uint8_t *out, const uint8_t *src, size_t n)
{
    size_t o = 0, pos = 0;
    out[o++] = 0x78;
    out[o++] = 0x01;
    do {
        size_t len = n - pos > 65535 ? 65535 : n - pos;
        out[o++] = pos + len == n;
        out[o++] = (uint8_t)len;
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)~len;
        out[o++] = (uint8_t)(~len >> 8);
        memcpy(out + o, src + pos, len);
        o += len;
        pos += len;
    } while (pos < n);
    put_be32(out + o, lp_adler32(1, src, n));
    return o + 4;
}

static void png_start(bytes *b, uint32_t w, uint32_t h, int depth, int ctype,
                      int interlace)
{
    uint8_t ihdr[13];
    b->len = 0;
    add(b, "\x89PNG\r\n\x1a\n", 8);
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    ihdr[10] = 0;
    ihdr[11] = 0;
    ihdr[12] = (uint8_t)interlace;
    add_chunk(b, "IHDR", ihdr, 13);
}

static void png_idat_iend(bytes *b, const uint8_t *raw, size_t n)
{
    uint8_t z[4096];
    add_chunk(b, "IDAT", z, zlib_stored(z, raw, n));
    add_chunk(b, "IEND", NULL, 0);
}

static int decode_bytes(const bytes *b, lp_image *img)
{
    return lp_png_decode(img, b->buf, b->len);
}

TEST(png_hand_built_valid)
{
    /* 2x2 grey, filter types Sub and Up, stored deflate */
    static const uint8_t raw[] = {1, 10, 5, 2, 3, 4};
    bytes b;
    lp_image img;
    png_start(&b, 2, 2, 8, 0, 0);
    png_idat_iend(&b, raw, sizeof raw);
    CHECK_OK(decode_bytes(&b, &img));
    CHECK(img.width == 2 && img.height == 2 && img.channels == 1);
    if (img.pixels != NULL)
        CHECK(img.pixels[0] == 10 && img.pixels[1] == 15 &&
              img.pixels[2] == 13 && img.pixels[3] == 19);
    lp_image_free(&img);

    /* trailing bytes after IEND are ignored */
    add(&b, "junk", 4);
    CHECK_OK(decode_bytes(&b, &img));
    lp_image_free(&img);

    /* palette image, index 200 beyond a 1-entry palette: grey (200) */
    {
        static const uint8_t praw[] = {0, 0, 200};
        static const uint8_t plte[3] = {9, 8, 7};
        png_start(&b, 2, 1, 8, 3, 0);
        add_chunk(&b, "PLTE", plte, 3);
        png_idat_iend(&b, praw, sizeof praw);
        CHECK_OK(decode_bytes(&b, &img));
        CHECK(img.channels == 3);
        if (img.pixels != NULL)
            CHECK(img.pixels[0] == 9 && img.pixels[2] == 7 &&
                  img.pixels[3] == 200 && img.pixels[5] == 200);
        lp_image_free(&img);
    }
}

TEST(png_hostile_headers)
{
    static const uint8_t raw[4] = {0, 1, 2, 3};
    static const struct {
        uint32_t w, h;
        int depth, ctype, interlace;
        int want;
    } cases[] = {
        {0, 1, 8, 0, 0, LP_EFORMAT},         {1, 0, 8, 0, 0, LP_EFORMAT},
        {100000, 1, 8, 0, 0, LP_ERANGE},     {1, 100000, 8, 0, 0, LP_ERANGE},
        {65535, 65535, 8, 0, 0, LP_ERANGE},  /* > LP_IMAGE_MAX_PIXELS */
        {0x80000000u, 1, 8, 0, 0, LP_EFORMAT},
        {0xFFFFFFFFu, 0xFFFFFFFFu, 8, 0, 0, LP_EFORMAT},
        {1, 1, 3, 0, 0, LP_EFORMAT},         {1, 1, 8, 1, 0, LP_EFORMAT},
        {1, 1, 8, 5, 0, LP_EFORMAT},         {1, 1, 16, 3, 0, LP_EFORMAT},
        {1, 1, 4, 2, 0, LP_EFORMAT},         {1, 1, 8, 0, 2, LP_EFORMAT},
        {3, 1, 8, 0, 0, LP_EFORMAT},         /* needs 4 bytes, gets 3 */
        {16000, 16000, 8, 6, 0, LP_EFORMAT}, /* bomb: 4 bytes for 1 GB */
    };
    bytes b;
    lp_image img;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        png_start(&b, cases[i].w, cases[i].h, cases[i].depth, cases[i].ctype,
                  cases[i].interlace);
        png_idat_iend(&b, raw, i == 13 ? 3 : sizeof raw);
        lp_clear_error();
        rc = decode_bytes(&b, &img);
        CHECK_MSG(rc == cases[i].want, "case %zu: got %s (%s), want %s", i,
                  lp_status_name(rc), lp_last_error(),
                  lp_status_name(cases[i].want));
        CHECK(lpt_img_is_empty(&img));
        CHECK(lp_last_error()[0] != '\0');
    }
    /* compression / filter method bytes */
    for (int field = 10; field <= 11; field++) {
        png_start(&b, 2, 1, 8, 0, 0);
        b.buf[8 + 8 + field] = 1;
        put_be32(b.buf + 8 + 8 + 13, lp_crc32(0, b.buf + 12, 17));
        png_idat_iend(&b, raw, 3);
        CHECK_FAILS(decode_bytes(&b, &img));
    }
}

TEST(png_hostile_chunks)
{
    static const uint8_t raw[3] = {0, 5, 6};
    static const uint8_t plte[6] = {1, 2, 3, 4, 5, 6};
    uint8_t big[800];
    bytes b;
    lp_image img;
    memset(big, 7, sizeof big);

    /* IHDR not first */
    b.len = 0;
    add(&b, "\x89PNG\r\n\x1a\n", 8);
    add_chunk(&b, "tEXt", (const uint8_t *)"a\0b", 3);
    CHECK_FAILS(decode_bytes(&b, &img));
    /* two IHDRs */
    png_start(&b, 2, 1, 8, 0, 0);
    {
        bytes c = b;
        add(&b, c.buf + 8, 25);
    }
    png_idat_iend(&b, raw, 3);
    CHECK_FAILS(decode_bytes(&b, &img));
    /* PLTE sizes: 0, not a multiple of 3, more than 256 entries; twice */
    {
        size_t lens[] = {0, 4, 771};
        for (int i = 0; i < 3; i++) {
            png_start(&b, 2, 1, 8, 3, 0);
            add_chunk(&b, "PLTE", big, lens[i]);
            png_idat_iend(&b, raw, 3);
            CHECK_FAILS(decode_bytes(&b, &img));
        }
        png_start(&b, 2, 1, 8, 3, 0);
        add_chunk(&b, "PLTE", plte, 6);
        add_chunk(&b, "PLTE", plte, 6);
        png_idat_iend(&b, raw, 3);
        CHECK_FAILS(decode_bytes(&b, &img));
    }
    /* tRNS with 257 entries; tRNS after IDAT; PLTE after IDAT */
    png_start(&b, 2, 1, 8, 3, 0);
    add_chunk(&b, "PLTE", plte, 6);
    add_chunk(&b, "tRNS", big, 257);
    png_idat_iend(&b, raw, 3);
    CHECK_FAILS(decode_bytes(&b, &img));
    {
        uint8_t z[64];
        size_t zn = zlib_stored(z, raw, 3);
        png_start(&b, 2, 1, 8, 3, 0);
        add_chunk(&b, "PLTE", plte, 6);
        add_chunk(&b, "IDAT", z, zn);
        add_chunk(&b, "tRNS", big, 2);
        add_chunk(&b, "IEND", NULL, 0);
        CHECK_FAILS(decode_bytes(&b, &img));
        png_start(&b, 2, 1, 8, 3, 0);
        add_chunk(&b, "IDAT", z, zn);
        add_chunk(&b, "PLTE", plte, 6);
        add_chunk(&b, "IEND", NULL, 0);
        CHECK_FAILS(decode_bytes(&b, &img));
        /* a chunk length beyond the file, and one >= 2^31 */
        png_start(&b, 2, 1, 8, 0, 0);
        add_chunk(&b, "IDAT", z, zn);
        put_be32(b.buf + 33, 5000);
        add_chunk(&b, "IEND", NULL, 0);
        CHECK_FAILS(decode_bytes(&b, &img));
        put_be32(b.buf + 33, 0x80000000u);
        CHECK_FAILS(decode_bytes(&b, &img));
        /* a chunk type with a non-letter */
        png_start(&b, 2, 1, 8, 0, 0);
        add_chunk(&b, "ID@T", z, zn);
        add_chunk(&b, "IEND", NULL, 0);
        CHECK_FAILS(decode_bytes(&b, &img));
        /* an ancillary chunk with a bad CRC is still an error */
        png_start(&b, 2, 1, 8, 0, 0);
        add_chunk(&b, "tEXt", (const uint8_t *)"k\0v", 3);
        b.buf[b.len - 1] ^= 1;
        add_chunk(&b, "IDAT", z, zn);
        add_chunk(&b, "IEND", NULL, 0);
        CHECK_FAILS(decode_bytes(&b, &img));
    }
    /* arguments */
    CHECK_FAILS(lp_png_decode(NULL, b.buf, b.len));
    CHECK_FAILS(lp_png_decode(&img, NULL, 10));
    CHECK_FAILS(lp_png_decode(&img, b.buf, 0));
    CHECK_FAILS(lp_png_decode(&img, (const uint8_t *)"\x89PNG\r\n\x1a", 7));
}

TEST(png_error_messages_are_specific)
{
    static const uint8_t raw[6] = {0, 1, 2, 0, 3, 4};
    bytes b;
    lp_image img;
    png_start(&b, 2, 2, 8, 0, 0);
    png_idat_iend(&b, raw, 5); /* one byte short */
    CHECK_FAILS(decode_bytes(&b, &img));
    CHECK_MSG(strstr(lp_last_error(), "PNG: IDAT data shorter than IHDR "
                                      "implies (needed 6 bytes, got 5)") != NULL,
              "message: %s", lp_last_error());
    png_start(&b, 2, 2, 8, 0, 0);
    png_idat_iend(&b, raw, 6);
    b.buf[45] ^= 0x40; /* inside the IDAT data */
    CHECK_FAILS(decode_bytes(&b, &img));
    CHECK_MSG(strstr(lp_last_error(), "CRC mismatch in chunk 'IDAT'") != NULL,
              "message: %s", lp_last_error());
}

/* Pass p's size in pixels (Adam7, or the whole image), and bytes of one
 * of its rows with the filter byte. An independent restatement of the
 * spec, not the decoder's code. */
static void pass_size(int p, int interlace, uint32_t w, uint32_t h, int bpp,
                      size_t *pw, size_t *ph, size_t *row)
{
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0};
    static const int y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1};
    static const int dy[7] = {8, 8, 8, 4, 4, 2, 2};
    *pw = interlace ? (w + (uint32_t)(dx[p] - x0[p] - 1)) / (uint32_t)dx[p] : w;
    *ph = interlace ? (h + (uint32_t)(dy[p] - y0[p] - 1)) / (uint32_t)dy[p] : h;
    *row = 1 + (*pw * (size_t)bpp + 7) / 8;
}

TEST(png_random_structures)
{
    /* random legal headers and random image bytes of exactly the right
     * size: valid filter bytes must decode, one bad filter byte must fail */
    static const int combos[15][2] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16},
                                      {2, 8}, {2, 16}, {3, 1}, {3, 2}, {3, 4},
                                      {3, 8}, {4, 8}, {4, 16}, {6, 8}, {6, 16}};
    static const int samples[7] = {1, 0, 3, 1, 2, 0, 4};
    static bytes b;
    static uint8_t raw[70000], z[72000], plte[768];
    lpt_rng r = lpt_rng_seed(404);
    int n = lpt_img_fuzz_count(), decoded = 0, rejected = 0;
    for (int k = 0; k < n; k++) {
        const int *c = combos[lpt_rng_u64(&r) % 15];
        uint32_t w = 1 + (uint32_t)(lpt_rng_u64(&r) % 40);
        uint32_t h = 1 + (uint32_t)(lpt_rng_u64(&r) % 40);
        int interlace = (int)(lpt_rng_u64(&r) % 2);
        int bpp = c[1] * samples[c[0]], bad_filter = k % 4 == 3, rc;
        size_t size = 0, zn;
        /* random bytes, with a random valid filter byte starting each row */
        for (int p = 0; p < (interlace ? 7 : 1); p++) {
            size_t pw, ph, row;
            pass_size(p, interlace, w, h, bpp, &pw, &ph, &row);
            for (size_t y = 0; pw > 0 && y < ph; y++) {
                raw[size] = (uint8_t)(lpt_rng_u64(&r) % 5);
                for (size_t i = 1; i < row; i++)
                    raw[size + i] = (uint8_t)lpt_rng_u64(&r);
                size += row;
            }
        }
        if (bad_filter) /* break the first row's filter byte */
            raw[0] = (uint8_t)(5 + lpt_rng_u64(&r) % 251);
        png_start(&b, w, h, c[1], c[0], interlace);
        if (c[0] == 3) {
            size_t entries = 1 + lpt_rng_u64(&r) % 256;
            for (size_t i = 0; i < 3 * entries; i++)
                plte[i] = (uint8_t)lpt_rng_u64(&r);
            add_chunk(&b, "PLTE", plte, 3 * entries);
            if (lpt_rng_u64(&r) % 2)
                add_chunk(&b, "tRNS", plte, lpt_rng_u64(&r) % (entries + 1));
        }
        zn = zlib_stored(z, raw, size);
        /* IDAT split at a random point to exercise concatenation */
        {
            size_t cut = lpt_rng_u64(&r) % (zn + 1);
            uint8_t *file = malloc(b.len + zn + 48);
            size_t len = b.len;
            uint8_t tail[12];
            if (file == NULL)
                break;
            memcpy(file, b.buf, b.len);
            for (int part = 0; part < 2; part++) {
                const uint8_t *body = z + (part ? cut : 0);
                size_t bl = part ? zn - cut : cut;
                put_be32(file + len, (uint32_t)bl);
                memcpy(file + len + 4, "IDAT", 4);
                if (bl > 0)
                    memcpy(file + len + 8, body, bl);
                put_be32(file + len + 8 + bl,
                         lp_crc32(0, file + len + 4, bl + 4));
                len += bl + 12;
            }
            put_be32(tail, 0);
            memcpy(tail + 4, "IEND", 4);
            put_be32(tail + 8, lp_crc32(0, "IEND", 4));
            memcpy(file + len, tail, 12);
            len += 12;
            rc = lpt_img_decode_checked(lp_png_decode, file, len, "random",
                                        (size_t)k);
            free(file);
        }
        if (bad_filter) {
            CHECK_MSG(rc != LP_OK, "#%d: bad filter byte accepted", k);
            rejected += rc != LP_OK;
        } else {
            CHECK_MSG(rc == LP_OK, "#%d: %ux%u type %d depth %d interlace "
                      "%d: %s", k, w, h, c[0], c[1], interlace,
                      lp_last_error());
            decoded += rc == LP_OK;
        }
    }
    if (lpt_img_verbose())
        printf("    %d random PNG structures decoded, %d with a bad filter "
               "byte rejected\n", decoded, rejected);
}

/* ---- truncation and bit flips ------------------------------------------- */

/* Recompute every chunk CRC so that corruption reaches the chunk parsers
 * and the inflater instead of stopping at the CRC check. */
static void fix_crcs(uint8_t *d, size_t size)
{
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t len = ((uint32_t)d[pos] << 24) | ((uint32_t)d[pos + 1] << 16) |
                       ((uint32_t)d[pos + 2] << 8) | d[pos + 3];
        if (len > size - pos - 12)
            break;
        put_be32(d + pos + 8 + len, lp_crc32(0, d + pos + 4, (size_t)len + 4));
        pos += (size_t)len + 12;
    }
}

/* Names of a manifest's fixtures starting with prefix; returns how many. */
int lpt_img_list_fixtures(const char *manifest_name, const char *prefix,
                         char names[][128], int cap)
{
    char line[512];
    int n = 0;
    FILE *f = lpt_img_manifest(manifest_name);
    if (f == NULL)
        return 0;
    while (n < cap && lpt_img_next_line(f, line, sizeof line)) {
        char name[256];
        if (sscanf(line, "%255s", name) == 1 &&
            lpt_img_starts_with(name, prefix) &&
            strlen(name) < 128)
            strcpy(names[n++], name);
    }
    fclose(f);
    return n;
}

TEST(png_every_truncation_fails)
{
    static char names[400][128];
    int n = lpt_img_list_fixtures("images.txt", "png_", names, 400);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(names[i], &size), *copy;
        if (data == NULL)
            continue;
        /* an exact-size copy per prefix lets ASan see any overread */
        for (size_t len = 0; len < size; len++) {
            copy = malloc(len ? len : 1);
            if (copy == NULL)
                break;
            memcpy(copy, data, len);
            CHECK_MSG(lpt_img_decode_checked(lp_png_decode, copy, len,
                                             names[i], len) != LP_OK,
                      "%s cut to %zu of %zu bytes decoded", names[i], len, size);
            free(copy);
            total++;
        }
        lp_free(data);
    }
    if (lpt_img_verbose())
        printf("    %zu truncated PNGs from %d files, all rejected\n", total, n);
}

void lpt_img_flip_bits(lpt_rng *r, uint8_t *d, size_t size, size_t from)
{
    int flips = 1 + (int)(lpt_rng_u64(r) % 3);
    if (size <= from)
        return;
    for (int k = 0; k < flips; k++) {
        size_t pos = from + (size_t)(lpt_rng_u64(r) % (size - from));
        d[pos] ^= (uint8_t)(1u << (lpt_rng_u64(r) % 8));
    }
}

TEST(png_bit_flips_never_crash)
{
    static const char *seeds[] = {
        "png_c2_d8_n_33x17.png", "png_c6_d16_i_33x17.png",
        "png_c3_d4_i_33x17.png", "png_c0_d1_n_33x17.png",
        "png_var_multi_idat.png", "png_long_codes.png", "png_trns_short.png",
        "png_c4_d8_i_7x5.png", "png_pillow_rgba.png", "png_var_fixed.png"};
    const int per_seed = lpt_img_fuzz_count() / 5;
    lpt_rng r = lpt_rng_seed(2024);
    int ok[2] = {0, 0}, fails[2] = {0, 0};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        size_t size = 0;
        uint8_t *data = lpt_img_fixture(seeds[s], &size);
        CHECK_MSG(data != NULL, "missing %s", seeds[s]);
        if (data == NULL)
            continue;
        for (int fix = 0; fix < 2; fix++) {
            for (int k = 0; k < per_seed; k++) {
                uint8_t *copy = malloc(size);
                int rc;
                if (copy == NULL)
                    break;
                memcpy(copy, data, size);
                lpt_img_flip_bits(&r, copy, size, fix ? 8 : 0);
                if (fix)
                    fix_crcs(copy, size);
                rc = lpt_img_decode_checked(lp_png_decode, copy, size, seeds[s],
                                    (size_t)k);
                if (rc == LP_OK)
                    ok[fix]++;
                else
                    fails[fix]++;
                free(copy);
            }
        }
        lp_free(data);
    }
    if (lpt_img_verbose())
        printf("    bit flips: %d rejected / %d decoded; with CRCs fixed up: "
               "%d rejected / %d decoded\n", fails[0], ok[0], fails[1], ok[1]);
}

/* ---- inflate ------------------------------------------------------------ */

TEST(png_checksums)
{
    CHECK(lp_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(lp_crc32(lp_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    CHECK(lp_crc32(0, "", 0) == 0);
    CHECK(lp_adler32(1, "Wikipedia", 9) == 0x11E60398u);
    CHECK(lp_adler32(lp_adler32(1, "Wiki", 4), "pedia", 5) == 0x11E60398u);
    CHECK(lp_adler32(1, NULL, 0) == 1);
    {
        /* long inputs take the 8-bytes-per-step path; short pieces (below
         * its threshold) the byte-wise one: they must agree */
        size_t n = 50003;
        uint8_t *buf = malloc(n);
        lpt_rng r = lpt_rng_seed(3);
        uint32_t pieces = 0;
        if (buf != NULL) {
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)lpt_rng_u64(&r);
            for (size_t off = 0; off < n; off += 1000)
                pieces = lp_crc32(pieces, buf + off,
                                  n - off < 1000 ? n - off : 1000);
            CHECK(lp_crc32(0, buf, n) == pieces);
            CHECK(lp_crc32(lp_crc32(0, buf, 7), buf + 7, n - 7) == pieces);
            free(buf);
        }
    }
    {
        /* long input: the modulo is taken in blocks */
        size_t n = 100000;
        uint8_t *buf = malloc(n);
        uint32_t a = 1, b = 0;
        if (buf != NULL) {
            for (size_t i = 0; i < n; i++) {
                buf[i] = 0xFF;
                a = (a + 0xFF) % 65521u;
                b = (b + a) % 65521u;
            }
            CHECK(lp_adler32(1, buf, n) == ((b << 16) | a));
            free(buf);
        }
    }
}

TEST(png_inflate_matches_zlib)
{
    char line[512];
    int n_ok = 0, n_fail = 0;
    FILE *f = lpt_img_manifest("zlib.txt");
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char name[256], verdict[16];
        size_t size = 0, out_len = 12345, want_len = 0;
        unsigned int want_crc = 0;
        uint8_t *data, *out;
        int fields = sscanf(line, "%255s %15s %zu %x", name, verdict,
                            &want_len, &want_crc);
        if (fields < 2)
            continue;
        data = lpt_img_fixture(name, &size);
        CHECK_MSG(data != NULL, "missing %s", name);
        if (data == NULL)
            continue;
        out = malloc(want_len + 65536);
        if (strcmp(verdict, "ok") == 0 && fields == 4 && out != NULL) {
            int rc = lp_inflate_zlib(out, want_len, &out_len, data, size);
            CHECK_MSG(rc == LP_OK, "%s: %s", name, lp_last_error());
            CHECK_MSG(out_len == want_len, "%s: %zu bytes, want %zu", name,
                      out_len, want_len);
            CHECK_MSG(lp_crc32(0, out, out_len) == want_crc,
                      "%s: output differs from zlib's", name);
            if (want_len > 0) { /* one byte less room: must fail */
                CHECK_FAILS(lp_inflate_zlib(out, want_len - 1, &out_len, data,
                                            size));
                CHECK(out_len == 0);
            }
            /* every truncation fails (the Adler-32 comes last) */
            for (size_t len = 0; len < size; len++) {
                uint8_t *cut = malloc(len ? len : 1);
                if (cut == NULL)
                    break;
                memcpy(cut, data, len);
                CHECK_MSG(lp_inflate_zlib(out, want_len + 65536, &out_len, cut,
                                          len) != LP_OK,
                          "%s cut to %zu bytes inflated", name, len);
                free(cut);
            }
            n_ok++;
        } else if (out != NULL) {
            lp_clear_error();
            CHECK_MSG(lp_inflate_zlib(out, 65536, &out_len, data, size) !=
                          LP_OK,
                      "%s: zlib rejects it but we accept it", name);
            CHECK(strncmp(lp_last_error(), "zlib: ", 6) == 0);
            if (lpt_img_verbose())
                printf("    %-28s %s\n", name, lp_last_error());
            n_fail++;
        }
        free(out);
        lp_free(data);
    }
    fclose(f);
    CHECK(n_ok >= 5 && n_fail >= 10);
    /* arguments */
    {
        size_t len;
        uint8_t out[4];
        CHECK_FAILS(lp_inflate_zlib(out, 4, NULL, (const uint8_t *)"x", 1));
        CHECK_FAILS(lp_inflate_zlib(out, 4, &len, NULL, 3));
        CHECK_FAILS(lp_inflate_zlib(NULL, 4, &len, (const uint8_t *)"x", 1));
        CHECK_FAILS(lp_inflate_zlib(out, 4, &len, (const uint8_t *)"x", 1));
    }
}

TEST(png_inflate_bit_flips_never_crash)
{
    static const char *seeds[] = {"zlib_skewed.z", "zlib_far_matches.z",
                                  "zlib_dist_32768.z", "zlib_stored_multi.z",
                                  "zlib_dyn_single_dist.z"};
    lpt_rng r = lpt_rng_seed(77);
    int per_seed = lpt_img_fuzz_count() / 4, accepted = 0;
    uint8_t *out = malloc(1 << 17);
    if (out == NULL)
        return;
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        size_t size = 0, out_len;
        uint8_t *data = lpt_img_fixture(seeds[s], &size);
        if (data == NULL)
            continue;
        for (int k = 0; k < per_seed; k++) {
            uint8_t *copy = malloc(size);
            int rc;
            if (copy == NULL)
                break;
            memcpy(copy, data, size);
            lpt_img_flip_bits(&r, copy, size, 2);
            /* a tight output buffer catches any write past the end */
            rc = lp_inflate_zlib(out, (size_t)1 << 17, &out_len, copy, size);
            if (rc == LP_OK)
                accepted++;
            else
                CHECK(out_len == 0 && lp_last_error()[0] != '\0');
            free(copy);
        }
        lp_free(data);
    }
    free(out);
    if (lpt_img_verbose())
        printf("    inflate bit flips: %d of %d still valid\n", accepted,
               per_seed * 5);
}

/* ---- writer ------------------------------------------------------------- */

static char tmpdir[64]; /* made on first use */

/* Path of `name` in a temporary directory made on first use. The result
 * lives in one of 8 rotating buffers, so a few can be held at once. */
const char *lpt_img_tmp_path(const char *name)
{
    static char paths[8][160];
    static int next;
    char *path = paths[next++ % 8];
    if (tmpdir[0] == '\0') {
        strcpy(tmpdir, "/tmp/loupe_img_XXXXXX");
        if (mkdtemp(tmpdir) == NULL)
            tmpdir[0] = '\0';
    }
    snprintf(path, sizeof paths[0], "%s/%s", tmpdir, name);
    return path;
}

/* Remove the files we made and the directory. */
void lpt_img_tmp_cleanup(void)
{
    DIR *d;
    struct dirent *e;
    char path[512];
    if (tmpdir[0] == '\0')
        return;
    d = opendir(tmpdir);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            remove(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

/* Photo-like content: gradients plus noise of the given amplitude. */
static uint8_t *synthetic(int w, int h, int c, int noise, uint64_t seed)
{
    lpt_rng r = lpt_rng_seed(seed);
    uint8_t *p = malloc((size_t)w * h * c);
    if (p == NULL)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                int v = (x * (k + 1) + y * 2 + k * 40) % 256;
                if (noise > 0)
                    v += (int)(lpt_rng_u64(&r) % (uint64_t)(2 * noise + 1)) -
                         noise;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                p[((size_t)y * w + x) * c + k] = (uint8_t)v;
            }
    return p;
}

TEST(png_write_round_trip)
{
    static const int sizes[][2] = {{1, 1}, {7, 5}, {33, 17}, {200, 150}};
    for (int c = 1; c <= 4; c++) {
        for (size_t s = 0; s < 4; s++) {
            for (int noise = 0; noise <= 128; noise += 128) {
                int w = sizes[s][0], h = sizes[s][1];
                uint8_t *px = synthetic(w, h, c, noise, (uint64_t)(c * 100 + s));
                lp_image img;
                const char *path = lpt_img_tmp_path("rt.png");
                if (px == NULL)
                    continue;
                CHECK_OK(lp_png_write(path, px, w, h, c));
                CHECK_OK(lp_image_load(&img, path));
                CHECK_MSG(img.width == w && img.height == h && img.channels == c,
                          "%dx%dx%d came back %dx%dx%d", w, h, c, img.width,
                          img.height, img.channels);
                if (img.pixels != NULL && img.width == w && img.height == h &&
                    img.channels == c)
                    CHECK_MSG(memcmp(img.pixels, px, (size_t)w * h * c) == 0,
                              "%dx%dx%d noise %d: pixels differ", w, h, c, noise);
                lp_image_free(&img);
                free(px);
            }
        }
    }
    lpt_img_tmp_cleanup();
}

TEST(png_write_compresses_and_bounds_size)
{
    int w = 256, h = 128;
    uint8_t *smooth = synthetic(w, h, 3, 0, 1);
    uint8_t *noisy = malloc((size_t)w * h * 3);
    lpt_rng r = lpt_rng_seed(5);
    uint8_t *file = NULL;
    size_t size = 0;
    if (smooth == NULL || noisy == NULL) {
        free(smooth);
        free(noisy);
        return;
    }
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        noisy[i] = (uint8_t)lpt_rng_u64(&r);
    CHECK_OK(lp_png_write(lpt_img_tmp_path("smooth.png"), smooth, w, h, 3));
    CHECK_OK(lp_read_file(lpt_img_tmp_path("smooth.png"), 1 << 24, &file, &size));
    CHECK_MSG(size < (size_t)w * h * 3 / 20, "smooth image: %zu bytes", size);
    lp_free(file);
    /* random data: stored blocks, so at most a little above raw size */
    CHECK_OK(lp_png_write(lpt_img_tmp_path("noisy.png"), noisy, w, h, 3));
    CHECK_OK(lp_read_file(lpt_img_tmp_path("noisy.png"), 1 << 24, &file, &size));
    CHECK_MSG(size <= (size_t)(w * 3 + 1) * h + 200, "noisy image: %zu bytes",
              size);
    lp_free(file);
    free(smooth);
    free(noisy);
    lpt_img_tmp_cleanup();
}

TEST(png_write_bad_arguments)
{
    uint8_t px[12] = {0};
    char path[200];
    CHECK_FAILS(lp_png_write(NULL, px, 2, 2, 3));
    CHECK_FAILS(lp_png_write(lpt_img_tmp_path("x.png"), NULL, 2, 2, 3));
    CHECK_FAILS(lp_png_write(lpt_img_tmp_path("x.png"), px, 0, 2, 3));
    CHECK_FAILS(lp_png_write(lpt_img_tmp_path("x.png"), px, 2, -1, 3));
    CHECK_FAILS(lp_png_write(lpt_img_tmp_path("x.png"), px, 2, 2, 5));
    CHECK_FAILS(lp_png_write(lpt_img_tmp_path("x.png"), px, 70000, 1, 1));
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", lpt_img_tmp_path(""));
    CHECK_FAILS(lp_png_write(path, px, 2, 2, 3));
    CHECK_MSG(strstr(lp_last_error(), "no/such/dir/x.png") != NULL,
              "message does not name the path: %s", lp_last_error());
    lpt_img_tmp_cleanup();
}

/* ---- dispatcher, photos, speed ------------------------------------------ */

TEST(png_image_decode_dispatch)
{
    lp_image img;
    lp_clear_error();
    CHECK(lp_image_decode(&img, (const uint8_t *)"GIF89a....", 10) == LP_EFORMAT);
    CHECK(strstr(lp_last_error(), "47 49 46 38") != NULL);
    CHECK(lpt_img_is_empty(&img));
    CHECK_FAILS(lp_image_decode(&img, (const uint8_t *)"", 0));
    CHECK_FAILS(lp_image_decode(&img, (const uint8_t *)"\xff\xd8\xff", 3));
    CHECK_FAILS(lp_image_decode(&img, (const uint8_t *)"BM", 2));
    CHECK_FAILS(lp_image_decode(&img, (const uint8_t *)"P6", 2));
    CHECK_FAILS(lp_image_decode(NULL, (const uint8_t *)"P6", 2));
    CHECK(lp_image_load(&img, lpt_img_tmp_path("missing.png")) == LP_ENOTFOUND);
    CHECK(strstr(lp_last_error(), "missing.png") != NULL);
    /* a corrupt file: the message starts with its path */
    {
        const char *path = lpt_path("tests/data/images/png_bad_crc.png");
        CHECK_FAILS(lp_image_load(&img, path));
        CHECK_MSG(strncmp(lp_last_error(), path, strlen(path)) == 0 &&
                      strstr(lp_last_error(), "PNG: CRC mismatch") != NULL,
                  "message: %s", lp_last_error());
    }
    lp_image_free(NULL);
    lpt_img_tmp_cleanup();
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static const char *shared_dir(void)
{
    static char buf[1024];
    const char *env = getenv("LOUPE_SHARED");
    if (env != NULL && env[0] != '\0')
        return env;
    snprintf(buf, sizeof buf, "%s", lpt_path("../shared"));
    return buf;
}

TEST(png_photos_match_pillow)
{
    char line[512];
    int n = 0;
    FILE *f = lpt_img_manifest("photos.txt");
    if (f == NULL)
        return;
    while (lpt_img_next_line(f, line, sizeof line)) {
        char rel[256], path[1400];
        int w, h, c;
        unsigned long long want;
        lp_image img;
        double t0, ms;
        FILE *probe;
        if (sscanf(line, "%255s %d %d %d %llx", rel, &w, &h, &c, &want) != 5)
            continue;
        snprintf(path, sizeof path, "%s/%s", shared_dir(), rel);
        probe = fopen(path, "rb");
        if (probe == NULL) {
            lpt_skip("no shared/ data (%s)", path);
            break;
        }
        fclose(probe);
        t0 = now_ms();
        CHECK_OK(lp_image_load(&img, path));
        ms = now_ms() - t0;
        if (img.pixels != NULL) {
            uint64_t got = fnv1a64(img.pixels, (size_t)img.width * img.height *
                                                   (size_t)img.channels);
            CHECK_MSG(img.width == w && img.height == h && img.channels == c,
                      "%s: %dx%dx%d", rel, img.width, img.height, img.channels);
            CHECK_MSG(got == want, "%s: pixels differ from Pillow's (hash "
                      "%016llx, want %016llx)", rel, (unsigned long long)got,
                      want);
            if (lpt_img_verbose())
                printf("    %s %dx%d: identical to Pillow, %.1f ms\n", rel, w,
                       h, ms);
        }
        lp_image_free(&img);
        n++;
    }
    fclose(f);
}

TEST(png_decode_speed)
{
    /* a 1352x900 RGB image (the size of the largest demo photo) */
    int w = 1352, h = 900;
    uint8_t *px = synthetic(w, h, 3, 12, 9), *file = NULL;
    size_t size = 0;
    lp_image img;
    double t0, ms;
    if (px == NULL)
        return;
    t0 = now_ms();
    CHECK_OK(lp_png_write(lpt_img_tmp_path("big.png"), px, w, h, 3));
    ms = now_ms() - t0;
    CHECK_OK(lp_read_file(lpt_img_tmp_path("big.png"), 1 << 26, &file, &size));
    if (lpt_img_verbose())
        printf("    write 1352x900: %.1f ms, %zu bytes\n", ms, size);
    t0 = now_ms();
    CHECK_OK(lp_png_decode(&img, file, size));
    ms = now_ms() - t0;
    if (img.pixels != NULL)
        CHECK(memcmp(img.pixels, px, (size_t)w * h * 3) == 0);
    if (lpt_img_verbose())
        printf("    decode 1352x900: %.1f ms\n", ms);
    /* generous: milliseconds at -O2, well under a second with sanitizers */
    CHECK_MSG(ms < 5000, "decoding took %.0f ms", ms);
    lp_image_free(&img);
    lp_free(file);
    free(px);
    lpt_img_tmp_cleanup();
}
