/*
 * test_jpeg.c — the JPEG decoder against Pillow (libjpeg-turbo 2.1.5), and
 * against truncated, corrupted and hostile files.
 *
 * The fixtures in tests/data/jpeg/ and Pillow's decodes of them were made
 * by tests/gen_jpeg_fixtures.py (fixtures.txt lists them). The photos in
 * ../shared/data/images (present in the project's checkout, not in users'
 * clones: those tests skip) are checked at a sparse grid of pixels stored
 * in photo_*.raw and by a hash of the whole image.
 *
 * Environment:
 *   LOUPE_TEST_VERBOSE=1   print max/mean differences, counts and timings
 *   LOUPE_JPEG_DUMP=DIR    write loupe's full decodes to DIR (for
 *                          gen_jpeg_fixtures.py --compare DIR)
 *   LOUPE_SHARED=DIR       where shared/ is (default: ../shared beside
 *                          the source tree)
 *   LOUPE_JPEG_FUZZ=N      corrupted files per seed file (default 1000)
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARITY_TOL 2 /* max |loupe - Pillow| allowed, in 8-bit levels */

static int verbose(void)
{
    const char *v = getenv("LOUPE_TEST_VERBOSE");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* Whole file into malloc'ed memory (NULL if missing). */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = (uint8_t *)malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

static uint8_t *fixture(const char *name, const char *ext, size_t *size)
{
    char rel[512];
    snprintf(rel, sizeof rel, "tests/data/jpeg/%.200s%.50s", name, ext);
    return slurp(lpt_path(rel), size);
}

static void dump(const char *file, const lp_image *img)
{
    const char *dir = getenv("LOUPE_JPEG_DUMP");
    char path[1024];
    if (dir == NULL || dir[0] == '\0')
        return;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    fwrite(img->pixels, 1,
           (size_t)img->width * (size_t)img->height * (size_t)img->channels, f);
    fclose(f);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

/* Decode and check the lp_image contract for either outcome. */
static int decode_checked(lp_image *img, const uint8_t *data, size_t size)
{
    img->pixels = (uint8_t *)(uintptr_t)1; /* must be overwritten */
    lp_clear_error();
    int rc = lp_jpeg_decode(img, data, size);
    if (rc == LP_OK) {
        CHECK(img->pixels != NULL && img->width > 0 && img->height > 0 &&
              (img->channels == 1 || img->channels == 3));
    } else {
        const char *msg = lp_last_error();
        CHECK(img->pixels == NULL && img->width == 0 && img->height == 0);
        CHECK_MSG(strncmp(msg, "JPEG: ", 6) == 0 || strncmp(msg, "lp_", 3) == 0,
                  "unexpected message: %s", msg);
        CHECK_MSG(strchr(msg, '\n') == NULL, "message spans lines: %s", msg);
        CHECK(rc == LP_EFORMAT || rc == LP_ERANGE || rc == LP_ENOMEM ||
              rc == LP_EINVAL);
    }
    return rc;
}

/* ---- parity with Pillow ------------------------------------------------ */

TEST(jpeg_fixtures_match_pillow)
{
    size_t size;
    char *list = (char *)fixture("fixtures", ".txt", &size);
    int count = 0, exact = 0, worst = 0;
    if (list == NULL) {
        CHECK_MSG(0, "tests/data/jpeg/fixtures.txt is missing");
        return;
    }
    list[size] = '\0';
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128];
        int w, h, c;
        if (sscanf(line, "%127s %d %d %d", name, &w, &h, &c) != 4)
            continue;
        size_t jn, rn;
        uint8_t *jpg = fixture(name, ".jpg", &jn);
        uint8_t *want = fixture(name, ".raw", &rn);
        lp_image img;
        CHECK_MSG(jpg && want && rn == (size_t)w * h * c, "%s: fixture files",
                  name);
        if (jpg && want && decode_checked(&img, jpg, jn) == LP_OK) {
            CHECK_MSG(img.width == w && img.height == h && img.channels == c,
                      "%s: got %dx%dx%d, want %dx%dx%d", name, img.width,
                      img.height, img.channels, w, h, c);
            if (img.width == w && img.height == h && img.channels == c) {
                int maxd = 0;
                double sum = 0;
                for (size_t i = 0; i < rn; i++) {
                    int d = abs((int)img.pixels[i] - (int)want[i]);
                    maxd = d > maxd ? d : maxd;
                    sum += d;
                }
                CHECK_MSG(maxd <= PARITY_TOL, "%s: max |loupe - Pillow| = %d",
                          name, maxd);
                worst = maxd > worst ? maxd : worst;
                exact += maxd == 0;
                if (verbose())
                    printf("    %-26s %3dx%-3d %d ch  max %d  mean %.5f\n",
                           name, w, h, c, maxd, sum / (double)rn);
                char file[160];
                snprintf(file, sizeof file, "%s.raw", name);
                dump(file, &img);
            }
            lp_free(img.pixels);
        } else if (jpg && want) {
            CHECK_MSG(0, "%s: %s", name, lp_last_error());
        }
        free(jpg);
        free(want);
        count++;
    }
    free(list);
    CHECK(count >= 60);
    if (verbose())
        printf("    %d fixtures, %d bit-exact, worst max diff %d\n", count,
               exact, worst);
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

/* The sparse grid of gen_jpeg_fixtures.py: 0, stride, 2*stride, ... and
 * n - 1. Returns the count written to idx (room for n / stride + 2). */
static int grid(int n, int stride, int *idx)
{
    int count = 0;
    for (int i = 0; i < n; i += stride)
        idx[count++] = i;
    if (idx[count - 1] != n - 1)
        idx[count++] = n - 1;
    return count;
}

/* Compare one photo with Pillow's pixels at the stored sparse grid. */
static void check_photo(const char *rel, int w, int h, int c, int stride,
                        uint64_t want_hash, double *slowest_ms,
                        char *slowest_name, size_t name_cap)
{
    char path[2048];
    size_t jn, rn;
    const char *stem = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    char sname[256], raw[300];
    snprintf(path, sizeof path, "%s/%s", shared_dir(), rel);
    snprintf(sname, sizeof sname, "%.*s", (int)(strcspn(stem, ".")), stem);
    snprintf(raw, sizeof raw, "photo_%s", sname);
    uint8_t *jpg = slurp(path, &jn), *want = fixture(raw, ".raw", &rn);
    lp_image img;
    CHECK_MSG(jpg != NULL && want != NULL, "%s: missing", rel);
    if (jpg == NULL || want == NULL) {
        free(jpg);
        free(want);
        return;
    }
    double t0 = now_ms();
    int rc = decode_checked(&img, jpg, jn);
    double ms = now_ms() - t0;
    CHECK_MSG(rc == LP_OK, "%s: %s", rel, lp_last_error());
    if (rc == LP_OK && img.width == w && img.height == h && img.channels == c) {
        int *ys = (int *)malloc(sizeof(int) * (size_t)(h / stride + 2));
        int *xs = (int *)malloc(sizeof(int) * (size_t)(w / stride + 2));
        int ny = grid(h, stride, ys), nx = grid(w, stride, xs), maxd = 0;
        size_t n = (size_t)ny * (size_t)nx * (size_t)c, k = 0;
        double sum = 0;
        CHECK_MSG(n == rn, "%s: sample grid has %zu values, file %zu", rel, n,
                  rn);
        for (int i = 0; i < ny && n == rn; i++)
            for (int j = 0; j < nx; j++)
                for (int ch = 0; ch < c; ch++, k++) {
                    size_t at = ((size_t)ys[i] * (size_t)w + (size_t)xs[j]) *
                                    (size_t)c + (size_t)ch;
                    int d = abs((int)img.pixels[at] - (int)want[k]);
                    maxd = d > maxd ? d : maxd;
                    sum += d;
                }
        free(ys);
        free(xs);
        CHECK_MSG(maxd <= PARITY_TOL, "%s: max |loupe - Pillow| = %d", rel,
                  maxd);
        uint64_t hash = fnv1a64(img.pixels, (size_t)w * h * c);
        if (verbose())
            printf("    %-26s %4dx%-4d max %d mean %.5f on %zu samples, "
                   "whole image %s Pillow's, %.2f ms\n", sname, w, h, maxd,
                   n ? sum / (double)n : 0.0, n,
                   hash == want_hash ? "identical to" : "differs from", ms);
        if (ms > *slowest_ms) {
            *slowest_ms = ms;
            snprintf(slowest_name, name_cap, "%s", sname);
        }
        snprintf(raw, sizeof raw, "photo_%s.raw", sname);
        dump(raw, &img);
    } else if (rc == LP_OK) {
        CHECK_MSG(0, "%s: got %dx%dx%d, want %dx%dx%d", rel, img.width,
                  img.height, img.channels, w, h, c);
    }
    lp_free(img.pixels);
    free(jpg);
    free(want);
}

TEST(jpeg_photos_match_pillow)
{
    char probe[2048], slowest[256] = "", first[512];
    size_t size;
    double slowest_ms = 0;
    int count = 0;
    char *list = (char *)fixture("photos", ".txt", &size);
    CHECK(list != NULL);
    if (list == NULL)
        return;
    list[size] = '\0';
    /* the photos live in ../shared, which users' clones do not have */
    if (sscanf(list, "%511s", first) == 1) {
        snprintf(probe, sizeof probe, "%s/%s", shared_dir(), first);
        FILE *f = fopen(probe, "rb");
        if (f == NULL) {
            lpt_skip("no shared/ data (%s)", probe);
            free(list);
            return;
        }
        fclose(f);
    }
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char rel[512];
        int w, h, c, stride;
        unsigned long long hash;
        if (sscanf(line, "%511s %d %d %d %d %llx", rel, &w, &h, &c, &stride,
                   &hash) != 6)
            continue;
        check_photo(rel, w, h, c, stride, (uint64_t)hash, &slowest_ms,
                    slowest, sizeof slowest);
        count++;
    }
    free(list);
    CHECK(count > 0);
    if (verbose())
        printf("    %d photos; slowest decode %s %.2f ms\n", count, slowest,
               slowest_ms);
}

/* ---- truncation and corruption ------------------------------------------ */

/* Every prefix of the file: sequential files decode once all the entropy-
 * coded data is there (EOI may be missing), progressive ones need EOI. */
static void check_prefixes(const char *name, int progressive, int *n_ok,
                           int *n_err)
{
    size_t n;
    uint8_t *data = fixture(name, ".jpg", &n);
    CHECK_MSG(data != NULL, "%s missing", name);
    if (data == NULL)
        return;
    for (size_t len = 0; len <= n; len++) {
        lp_image img;
        /* a copy of exactly len bytes so ASan sees reads past the end */
        uint8_t *copy = (uint8_t *)malloc(len ? len : 1);
        memcpy(copy, data, len);
        int rc = decode_checked(&img, copy, len);
        size_t need = progressive ? n : n - 2;
        if (len >= need)
            CHECK_MSG(rc == LP_OK, "%s: prefix %zu/%zu: %s", name, len, n,
                      lp_last_error());
        else
            CHECK_MSG(rc != LP_OK, "%s: prefix %zu/%zu decoded", name, len, n);
        *n_ok += rc == LP_OK;
        *n_err += rc != LP_OK;
        lp_free(img.pixels);
        free(copy);
    }
    free(data);
}

TEST(jpeg_truncated_prefixes)
{
    int ok = 0, err = 0;
    check_prefixes("rgb420_33x17", 0, &ok, &err);
    check_prefixes("rst_3b_75x41", 0, &ok, &err);
    check_prefixes("s22_21_11_75x41", 0, &ok, &err);
    check_prefixes("prog444_33x17", 1, &ok, &err);
    check_prefixes("scans_deep_sa_rst_33x17", 1, &ok, &err);
    if (verbose())
        printf("    %d prefixes: %d decoded, %d refused\n", ok + err, ok, err);
}

/* small fixtures covering baseline, grey, restarts, progressive, deep
 * successive approximation, 16-bit tables, odd sampling, multi-scan */
static const char *const fuzz_seeds[] = {
    "rgb420_33x17",        "grey_33x17",
    "rst_1b_33x17",        "prog444_33x17",
    "s141_33x17",          "rst_grey_prog_33x17",
    "scans_deep_sa_rst_33x17", "q5_16bit_prog_33x17",
    "rgb422_9x2",          "scans_seq3_33x17"};

/* Offset just past the first SOS header (headers are where most checks
 * are; random positions mostly land in entropy-coded data). */
static size_t header_end(const uint8_t *d, size_t n)
{
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xFF) {
        size_t len = ((size_t)d[i + 2] << 8) | d[i + 3];
        if (d[i + 1] == 0xDA)
            return i + 2 + len < n ? i + 2 + len : n;
        i += 2 + len;
    }
    return n;
}

TEST(jpeg_random_corruption)
{
    lpt_rng rng = lpt_rng_seed(20240611);
    const char *env = getenv("LOUPE_JPEG_FUZZ");
    int ok = 0, err = 0, per_seed = env ? atoi(env) : 1000;
    size_t nseeds = sizeof fuzz_seeds / sizeof fuzz_seeds[0];
    for (size_t s = 0; s < nseeds; s++) {
        size_t n;
        uint8_t *data = fixture(fuzz_seeds[s], ".jpg", &n);
        CHECK_MSG(data != NULL, "%s missing", fuzz_seeds[s]);
        if (data == NULL)
            continue;
        size_t hdr = header_end(data, n);
        uint8_t *buf = (uint8_t *)malloc(n);
        for (int it = 0; it < per_seed && !lpt_failed(); it++) {
            size_t len = n;
            memcpy(buf, data, n);
            int edits = 1 + (int)(lpt_rng_u64(&rng) % 4);
            for (int e = 0; e < edits; e++) {
                uint64_t r = lpt_rng_u64(&rng);
                /* half of the edits in the headers */
                size_t pos = (r & 1) ? (size_t)((r >> 8) % hdr)
                                     : (size_t)((r >> 8) % n);
                switch ((r >> 1) % 5) {
                case 0:
                    buf[pos] ^= (uint8_t)(1u << ((r >> 40) % 8));
                    break;
                case 1:
                    buf[pos] = (uint8_t)(r >> 48);
                    break;
                case 2: /* a marker prefix */
                    buf[pos] = 0xFF;
                    break;
                case 3: /* after an FF: stuffing, RSTn, SOI or EOI */
                    buf[pos] = (uint8_t)((r >> 48) % 2 ? 0x00
                                                      : 0xD0 + (r >> 56) % 10);
                    break;
                default: /* truncate somewhere too */
                    if (pos > 2 && pos < len)
                        len = pos;
                    break;
                }
            }
            lp_image img;
            uint8_t *copy = (uint8_t *)malloc(len);
            memcpy(copy, buf, len);
            int rc = decode_checked(&img, copy, len);
            ok += rc == LP_OK;
            err += rc != LP_OK;
            lp_free(img.pixels);
            free(copy);
        }
        free(buf);
        free(data);
    }
    if (verbose())
        printf("    %d corrupted files: %d decoded, %d refused\n", ok + err,
               ok, err);
}

/* ---- hostile and unsupported headers ------------------------------------ */

/* Offset of the first marker m before the first SOS (-1 if none). */
static long find_segment(const uint8_t *d, size_t n, int m)
{
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xFF) {
        if (d[i + 1] == m)
            return (long)i;
        if (d[i + 1] == 0xDA)
            break;
        i += 2 + (((size_t)d[i + 2] << 8) | d[i + 3]);
    }
    return -1;
}

/* Decode `data` (n bytes) and expect failure with `code` (0: any) and a
 * message containing `needle`. */
static void expect_error(const char *what, const uint8_t *data, size_t n,
                         int code, const char *needle)
{
    lp_image img;
    uint8_t *copy = (uint8_t *)malloc(n ? n : 1);
    memcpy(copy, data, n);
    int rc = decode_checked(&img, copy, n);
    free(copy);
    if (rc == LP_OK) {
        CHECK_MSG(0, "%s: decoded", what);
        lp_free(img.pixels);
        return;
    }
    CHECK_MSG(code == 0 || rc == code, "%s: status %s, want %s (%s)", what,
              lp_status_name(rc), lp_status_name(code), lp_last_error());
    CHECK_MSG(strstr(lp_last_error(), needle) != NULL,
              "%s: message \"%s\" lacks \"%s\"", what, lp_last_error(), needle);
    if (verbose())
        printf("    %-28s -> %s\n", what, lp_last_error());
}

/* A copy of fixture `name` with one byte at marker+offset replaced. */
typedef struct {
    uint8_t *data;
    size_t n;
    long sof, sos, dht, dqt, dri;
} jfile;

static jfile load(const char *name)
{
    jfile f = {0};
    f.data = fixture(name, ".jpg", &f.n);
    CHECK_MSG(f.data != NULL, "%s missing", name);
    if (f.data == NULL) {
        f.data = (uint8_t *)calloc(1, 16);
        f.n = 16;
    }
    f.sof = find_segment(f.data, f.n, 0xC0);
    if (f.sof < 0)
        f.sof = find_segment(f.data, f.n, 0xC2);
    f.sos = find_segment(f.data, f.n, 0xDA);
    f.dht = find_segment(f.data, f.n, 0xC4);
    f.dqt = find_segment(f.data, f.n, 0xDB);
    f.dri = find_segment(f.data, f.n, 0xDD);
    return f;
}

static void patched(const char *what, const char *name, long seg, int off,
                    int value, int code, const char *needle)
{
    jfile f = load(name);
    if (seg == 'F')
        seg = f.sof;
    else if (seg == 'S')
        seg = f.sos;
    else if (seg == 'H')
        seg = f.dht;
    else if (seg == 'Q')
        seg = f.dqt;
    CHECK_MSG(seg >= 0 && (size_t)(seg + off) < f.n, "%s: no segment", what);
    if (seg >= 0 && (size_t)(seg + off) < f.n) {
        f.data[seg + off] = (uint8_t)value;
        expect_error(what, f.data, f.n, code, needle);
    }
    free(f.data);
}

TEST(jpeg_bad_headers)
{
    /* SOF: FF Cx len(2) P(1) H(2) W(2) Nf(1) {id hv tq}... at +9 */
    const char *b = "rgb420_33x17", *g = "grey_33x17";
    patched("SOF height 0", b, 'F', 6, 0, LP_EFORMAT, "height 0");
    {
        jfile f = load(b); /* 0x0 */
        f.data[f.sof + 5] = f.data[f.sof + 6] = f.data[f.sof + 7] =
            f.data[f.sof + 8] = 0;
        expect_error("SOF 0x0", f.data, f.n, LP_EFORMAT, "JPEG:");
        /* 65535 x 65535: over LP_IMAGE_MAX_PIXELS (16-bit sides cannot say
         * 100000) */
        memset(f.data + f.sof + 5, 0xFF, 4);
        expect_error("SOF 65535x65535", f.data, f.n, LP_ERANGE, "exceeds");
        /* 65535 x 4097 = just over 2^28 pixels */
        f.data[f.sof + 5] = 0x10;
        f.data[f.sof + 6] = 0x01;
        expect_error("SOF 65535x4097", f.data, f.n, LP_ERANGE, "exceeds");
        /* 65535 x 4096 is allowed, but the data has too few bits for it:
         * refused before anything that size is allocated */
        f.data[f.sof + 6] = 0x00;
        expect_error("SOF 65535x4096, 1 KB data", f.data, f.n, LP_EFORMAT,
                     "truncated");
        free(f.data);
    }
    patched("SOF width 0", g, 'F', 8, 0, LP_EFORMAT, "width is 0");
    patched("12-bit precision", b, 'F', 4, 12, LP_EFORMAT, "12-bit");
    patched("sampling factor 0", b, 'F', 11, 0x02, LP_EFORMAT, "sampling");
    patched("sampling factor 5", b, 'F', 11, 0x51, LP_EFORMAT, "sampling");
    patched("fractional sampling", b, 'F', 14, 0x31, LP_EFORMAT, "integral");
    patched("quant table id 4", b, 'F', 12, 4, LP_EFORMAT, "quantization");
    patched("undefined quant table", b, 'F', 12, 3, LP_EFORMAT,
            "undefined quantization table 3");
    patched("duplicate component id", b, 'F', 13, 1, LP_EFORMAT, "twice");
    patched("SOF3 lossless", b, 'F', 1, 0xC3, LP_EFORMAT, "lossless");
    patched("SOF5 hierarchical", b, 'F', 1, 0xC5, LP_EFORMAT, "hierarchical");
    patched("SOF9 arithmetic", b, 'F', 1, 0xC9, LP_EFORMAT, "arithmetic");
    patched("4 components", g, 'F', 9, 4, LP_EFORMAT, "CMYK");
    patched("2 components", g, 'F', 9, 2, LP_EFORMAT, "2-component");
    /* SOS: FF DA len(2) Ns(1) {id, td<<4|ta}... */
    patched("SOS unknown component", b, 'S', 5, 9, LP_EFORMAT,
            "unknown component id 9");
    patched("SOS undefined DC table", b, 'S', 6, 0x31, LP_EFORMAT,
            "undefined DC Huffman table 3");
    patched("SOS undefined AC table", b, 'S', 6, 0x03, LP_EFORMAT,
            "undefined AC Huffman table 3");
    patched("SOS table id 5", b, 'S', 6, 0x50, LP_EFORMAT, "must be 0-3");
    patched("SOS repeated component", b, 'S', 7, 1, LP_EFORMAT, "twice");
    patched("SOS 0 components", b, 'S', 4, 0, LP_EFORMAT, "SOS");
    patched("progressive Al > 13", "prog444_33x17", 'S', 13, 0x0E,
            LP_EFORMAT, "progressive");
    patched("progressive DC scan Se=5", "prog444_33x17", 'S', 12, 5,
            LP_EFORMAT, "progressive");
    /* DHT: FF C4 len(2) tc|th counts[16] ... */
    patched("DHT class 2", b, 'H', 4, 0x20, LP_EFORMAT, "class");
    patched("DHT id 4", b, 'H', 4, 0x04, LP_EFORMAT, "table id");
    {
        /* two codes of length 1 (the luminance DC table has 0 of length 1
         * and 5 of length 3: move two) */
        jfile f = load(b);
        CHECK(f.data[f.dht + 5] == 0 && f.data[f.dht + 7] == 5);
        f.data[f.dht + 5] = 2;
        f.data[f.dht + 7] = 3;
        expect_error("DHT oversubscribed", f.data, f.n, LP_EFORMAT,
                     "too many codes of length 1");
        free(f.data);
    }
    patched("DHT > 256 symbols", b, 'H', 20, 255, LP_EFORMAT, "JPEG:");
    patched("DQT precision 2", b, 'Q', 4, 0x20, LP_EFORMAT, "precision");
    patched("segment past end", b, 'Q', 2, 0xFF, LP_EFORMAT, "past the end");
    patched("second SOI", b, 'Q', 1, 0xD8, LP_EFORMAT, "SOI");
    patched("unknown marker", b, 'Q', 1, 0x02, LP_EFORMAT, "unknown marker");

    /* arithmetic-coded files from cjpeg */
    static const char *arith[] = {"bad_arith", "bad_arith_prog"};
    for (int i = 0; i < 2; i++) {
        size_t n;
        uint8_t *d = fixture(arith[i], ".jpg", &n);
        CHECK(d != NULL);
        if (d)
            expect_error(arith[i], d, n, LP_EFORMAT, "arithmetic coding");
        free(d);
    }

    /* wrong restart marker: RST1 where RST0 is due */
    {
        jfile f = load("rst_3b_75x41");
        long pos = -1;
        for (size_t i = (size_t)f.sos + 2; i + 1 < f.n; i++)
            if (f.data[i] == 0xFF && f.data[i + 1] == 0xD0) {
                pos = (long)i + 1;
                break;
            }
        CHECK(pos > 0);
        if (pos > 0) {
            f.data[pos] = 0xD1;
            expect_error("wrong RST marker", f.data, f.n, LP_EFORMAT,
                         "expected restart marker RST0");
        }
        free(f.data);
    }

    /* not JPEG at all, and bad arguments */
    lp_image img;
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
    expect_error("PNG signature", png, sizeof png, LP_EFORMAT, "SOI");
    expect_error("empty", png, 0, LP_EFORMAT, "SOI");
    static const uint8_t soi_only[] = {0xFF, 0xD8};
    expect_error("SOI only", soi_only, 2, LP_EFORMAT, "no SOF");
    static const uint8_t soi_eoi[] = {0xFF, 0xD8, 0xFF, 0xD9};
    expect_error("SOI EOI", soi_eoi, 4, LP_EFORMAT, "EOI");
    CHECK_FAILS(lp_jpeg_decode(NULL, soi_eoi, 4));
    CHECK_FAILS(lp_jpeg_decode(&img, NULL, 4));
    CHECK(img.pixels == NULL);
}

/* A file that ends after the headers and a few bytes of data is refused
 * quickly whatever size it claims (within the limits). */
TEST(jpeg_huge_claim_tiny_data)
{
    jfile f = load("prog444_33x17");
    /* 16384 x 16384 = 2^28 pixels, allowed by the limits */
    f.data[f.sof + 5] = f.data[f.sof + 7] = 0x40;
    f.data[f.sof + 6] = f.data[f.sof + 8] = 0x00;
    double t0 = now_ms();
    expect_error("16384x16384 progressive", f.data, f.n, LP_EFORMAT,
                 "truncated");
    double ms = now_ms() - t0;
    CHECK_MSG(ms < 2000, "took %.0f ms", ms);
    free(f.data);
}

/* A progressive file whose first scan is repeated 1001 times: every scan
 * is valid, but no real file has that many (each may walk every block). */
TEST(jpeg_too_many_scans)
{
    jfile f = load("prog444_33x17");
    long first = f.sos, second = -1;
    for (size_t i = (size_t)first + 2; i + 1 < f.n; i++)
        if (f.data[i] == 0xFF && f.data[i + 1] == 0xDA) {
            second = (long)i;
            break;
        }
    CHECK(first > 0 && second > first);
    if (first > 0 && second > first) {
        size_t seg = (size_t)(second - first), reps = 1001;
        size_t n = f.n + seg * reps;
        uint8_t *big = (uint8_t *)malloc(n), *p = big;
        memcpy(p, f.data, (size_t)second);
        p += second;
        for (size_t r = 0; r < reps; r++, p += seg)
            memcpy(p, f.data + first, seg);
        memcpy(p, f.data + second, f.n - (size_t)second);
        expect_error("1001 extra scans", big, n, LP_EFORMAT,
                     "more than 1000 scans");
        /* 10 extra copies are fine: the result is the same image */
        lp_image a, b;
        CHECK_OK(lp_jpeg_decode(&a, f.data, f.n));
        n = f.n + seg * 10;
        memcpy(big + second + seg * 10, f.data + second,
               f.n - (size_t)second);
        CHECK_OK(lp_jpeg_decode(&b, big, n));
        if (a.pixels && b.pixels)
            CHECK(memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * 3) ==
                  0);
        lp_free(a.pixels);
        lp_free(b.pixels);
        free(big);
    }
    free(f.data);
}
