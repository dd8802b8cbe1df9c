/*
 * png_write.c — 8-bit PNG encoder (grey, grey+alpha, RGB, RGBA; never
 * interlaced) with its own small DEFLATE compressor.
 *
 * Filtering: each row gets the filter (None, Sub, Up, Average, Paeth) whose
 * output has the smallest sum of |byte as signed|, libpng's heuristic.
 *
 * Compression: greedy LZ77 over the whole stream (hash of 3 bytes, chains
 * of previous positions followed at most MAX_CHAIN deep inside the 32 KiB
 * window, every candidate verified byte by byte) coded with the fixed
 * Huffman codes of RFC 1951 §3.2.6 in a single block. If that comes out
 * larger than storing, the data is written as stored blocks instead, so
 * the stream is never more than a few bytes per 64 KiB above the input.
 * Not as small as zlib's output, but simple, and fast enough.
 *
 * lp_png_encode assembles the file in memory; lp_png_write writes it with
 * lp_write_file_atomic.
 */
#include "internal.h"

#include <string.h>

/* ---- bit writer --------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t cap, len;
    uint64_t bits;
    int nbits;
} bit_writer;

/* Append n <= 32 bits, LSB first. The buffer is sized for the worst case
 * up front; the check only guards against a sizing mistake. */
static void put_bits(bit_writer *w, uint32_t value, int n)
{
    w->bits |= (uint64_t)value << w->nbits;
    w->nbits += n;
    while (w->nbits >= 8) {
        if (w->len < w->cap)
            w->buf[w->len] = (uint8_t)w->bits;
        w->len++;
        w->bits >>= 8;
        w->nbits -= 8;
    }
}

static void flush_bits(bit_writer *w)
{
    if (w->nbits > 0)
        put_bits(w, 0, 8 - w->nbits);
}

/* Huffman codes go out most significant bit first. */
static void put_code(bit_writer *w, uint32_t code, int len)
{
    uint32_t rev = 0;
    for (int i = 0; i < len; i++)
        rev |= ((code >> i) & 1u) << (len - 1 - i);
    put_bits(w, rev, len);
}

/* Fixed literal/length code of RFC 1951 §3.2.6. */
static void put_litlen(bit_writer *w, int sym)
{
    if (sym < 144)
        put_code(w, 0x30u + (uint32_t)sym, 8);
    else if (sym < 256)
        put_code(w, 0x190u + (uint32_t)(sym - 144), 9);
    else if (sym < 280)
        put_code(w, (uint32_t)(sym - 256), 7);
    else
        put_code(w, 0xC0u + (uint32_t)(sym - 280), 8);
}

static const uint16_t len_base[29] = {
    3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                                      1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                      4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
    1025, 1537, 2049, 3073, 4097, 6145,  8193,  12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2,  2,  3,  3,
                                       4, 4, 5, 5, 6, 6, 7,  7,  8,  8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static void put_match(bit_writer *w, int length, int distance)
{
    int k = 28, d = 29;
    while (len_base[k] > length)
        k--;
    put_litlen(w, 257 + k);
    put_bits(w, (uint32_t)(length - len_base[k]), len_extra[k]);
    while (dist_base[d] > distance)
        d--;
    put_code(w, (uint32_t)d, 5);
    put_bits(w, (uint32_t)(distance - dist_base[d]), dist_extra[d]);
}

/* ---- LZ77 + fixed Huffman ----------------------------------------------- */

#define WINDOW 32768
#define HASH_BITS 15
#define MAX_CHAIN 32
#define MIN_MATCH 3
#define MAX_MATCH 258

static uint32_t hash3(const uint8_t *p)
{
    uint32_t v = ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

/* One fixed-Huffman block holding all of src. head/prev: scratch. */
static void deflate_fixed(bit_writer *w, const uint8_t *src, size_t n,
                          int32_t *head, int32_t *prev)
{
    size_t i = 0;
    for (int k = 0; k < (1 << HASH_BITS); k++)
        head[k] = -1;
    put_bits(w, 1, 1); /* BFINAL */
    put_bits(w, 1, 2); /* BTYPE = fixed */
    while (i < n) {
        int best_len = 0, best_dist = 0;
        if (n - i >= MIN_MATCH) {
            uint32_t h = hash3(src + i);
            int32_t j = head[h];
            size_t limit = n - i < MAX_MATCH ? n - i : MAX_MATCH;
            for (int depth = 0; depth < MAX_CHAIN && j >= 0; depth++) {
                size_t len = 0;
                if (i - (size_t)j > WINDOW)
                    break;
                while (len < limit && src[(size_t)j + len] == src[i + len])
                    len++;
                if ((int)len > best_len) {
                    best_len = (int)len;
                    best_dist = (int)(i - (size_t)j);
                    if (len == limit)
                        break;
                }
                {
                    int32_t next = prev[(size_t)j & (WINDOW - 1)];
                    if (next >= j) /* slot reused by a newer position */
                        break;
                    j = next;
                }
            }
            prev[i & (WINDOW - 1)] = head[h];
            head[h] = (int32_t)i;
        }
        if (best_len >= MIN_MATCH) {
            put_match(w, best_len, best_dist);
            /* index the positions inside the match for later searches */
            size_t end = i + (size_t)best_len;
            for (size_t k = i + 1; k < end && n - k >= MIN_MATCH; k++) {
                uint32_t h = hash3(src + k);
                prev[k & (WINDOW - 1)] = head[h];
                head[h] = (int32_t)k;
            }
            i += (size_t)best_len;
        } else {
            put_litlen(w, src[i]);
            i++;
        }
    }
    put_litlen(w, 256);
    flush_bits(w);
}

/* Stored blocks of at most 65535 bytes. */
static size_t stored_size(size_t n)
{
    size_t blocks = n == 0 ? 1 : (n + 65534) / 65535;
    return n + 5 * blocks;
}

static void deflate_stored(uint8_t *out, const uint8_t *src, size_t n)
{
    size_t pos = 0;
    do {
        size_t len = n - pos > 65535 ? 65535 : n - pos;
        *out++ = pos + len == n ? 1 : 0; /* BFINAL, BTYPE = 00 */
        *out++ = (uint8_t)len;
        *out++ = (uint8_t)(len >> 8);
        *out++ = (uint8_t)~len;
        *out++ = (uint8_t)(~len >> 8);
        if (len > 0)
            memcpy(out, src + pos, len);
        out += len;
        pos += len;
    } while (pos < n);
}

/* zlib stream of src into a new lp_alloc'ed buffer. */
static int zlib_compress(const uint8_t *src, size_t n, uint8_t **out,
                         size_t *out_len)
{
    size_t fixed_cap, stored = stored_size(n), body;
    uint8_t *buf;
    int32_t *head, *prev;
    bit_writer w;
    uint32_t adler = lp_adler32(1, src, n);

    /* a literal costs at most 9 bits and a match of >= 3 bytes at most 25
     * (7-bit length code + 5-bit distance code + 13 extra bits), so 9/8 of
     * the input (+ block header and end code) always suffices */
    if (n > (SIZE_MAX - 64) / 2)
        return lp_set_error(LP_ENOMEM, "PNG write: image too large");
    fixed_cap = n + n / 8 + 16;
    buf = lp_alloc((fixed_cap > stored ? fixed_cap : stored) + 6, 1);
    head = lp_alloc((size_t)1 << HASH_BITS, sizeof(int32_t));
    prev = lp_alloc(WINDOW, sizeof(int32_t));
    if (buf == NULL || head == NULL || prev == NULL) {
        lp_free(buf);
        lp_free(head);
        lp_free(prev);
        return LP_ENOMEM;
    }
    buf[0] = 0x78; /* deflate, 32 KiB window */
    buf[1] = 0x01; /* no dictionary, check bits: 0x7801 % 31 == 0 */
    memset(&w, 0, sizeof w);
    w.buf = buf + 2;
    w.cap = fixed_cap;
    deflate_fixed(&w, src, n, head, prev);
    lp_free(head);
    lp_free(prev);
    if (w.len > fixed_cap) { /* cannot happen (see the bound above) */
        lp_free(buf);
        return lp_set_error(LP_EINVAL, "PNG write: internal error: "
                            "compressed data overflowed its buffer");
    }
    body = w.len;
    if (body >= stored) {
        deflate_stored(buf + 2, src, n);
        body = stored;
    }
    buf[2 + body] = (uint8_t)(adler >> 24);
    buf[3 + body] = (uint8_t)(adler >> 16);
    buf[4 + body] = (uint8_t)(adler >> 8);
    buf[5 + body] = (uint8_t)adler;
    *out = buf;
    *out_len = body + 6;
    return LP_OK;
}

/* ---- filtering ---------------------------------------------------------- */

static int paeth(int a, int b, int c)
{
    int pa = b - c, pb = a - c, pc;
    pc = pa + pb;
    pa = pa < 0 ? -pa : pa;
    pb = pb < 0 ? -pb : pb;
    pc = pc < 0 ? -pc : pc;
    if (pa <= pb && pa <= pc)
        return a;
    return pb <= pc ? b : c;
}

/* Filter row (n bytes, bpp bytes per pixel) with `type` into out. */
static void filter_row(uint8_t *out, const uint8_t *row, const uint8_t *prior,
                       size_t n, size_t bpp, int type)
{
    for (size_t i = 0; i < n; i++) {
        int a = i >= bpp ? row[i - bpp] : 0;
        int b = prior != NULL ? prior[i] : 0;
        int c = (i >= bpp && prior != NULL) ? prior[i - bpp] : 0;
        int pred = type == 0   ? 0
                   : type == 1 ? a
                   : type == 2 ? b
                   : type == 3 ? (a + b) >> 1
                               : paeth(a, b, c);
        out[i] = (uint8_t)(row[i] - pred);
    }
}

static uint64_t cost(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i] < 128 ? p[i] : 256u - p[i];
    return s;
}

/* All rows, each prefixed by its filter byte. */
static int filter_image(const uint8_t *pixels, int width, int height,
                        int channels, uint8_t **out, size_t *out_len)
{
    size_t stride = (size_t)width * (size_t)channels, total;
    uint8_t *buf, *scratch;
    if (!lp_mul_size(stride + 1, (size_t)height, &total))
        return lp_set_error(LP_ENOMEM, "PNG write: image too large");
    buf = lp_alloc(total, 1);
    scratch = lp_alloc(stride, 1);
    if (buf == NULL || scratch == NULL) {
        lp_free(buf);
        lp_free(scratch);
        return LP_ENOMEM;
    }
    for (int y = 0; y < height; y++) {
        const uint8_t *row = pixels + (size_t)y * stride;
        const uint8_t *prior = y > 0 ? row - stride : NULL;
        uint8_t *dst = buf + (size_t)y * (stride + 1);
        uint64_t best = UINT64_MAX;
        for (int type = 0; type < 5; type++) {
            uint64_t c;
            filter_row(scratch, row, prior, stride, (size_t)channels, type);
            c = cost(scratch, stride);
            if (c < best) {
                best = c;
                dst[0] = (uint8_t)type;
                memcpy(dst + 1, scratch, stride);
            }
        }
    }
    lp_free(scratch);
    *out = buf;
    *out_len = total;
    return LP_OK;
}

/* ---- file --------------------------------------------------------------- */

static void wr32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write a chunk at p (12 + len bytes); returns the bytes written. */
static size_t put_chunk(uint8_t *p, const char *type, const uint8_t *body,
                        size_t len)
{
    wr32be(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    if (len > 0)
        memcpy(p + 8, body, len);
    wr32be(p + 8 + len, lp_crc32(0, p + 4, len + 4));
    return len + 12;
}

#define IDAT_MAX ((size_t)1 << 30) /* chunk lengths must stay < 2^31 */

int lp_png_encode(uint8_t **out, size_t *size, const uint8_t *pixels,
                  int width, int height, int channels)
{
    static const uint8_t color_types[5] = {0, 0, 4, 2, 6};
    uint8_t ihdr[13], *filtered = NULL, *z = NULL, *file = NULL, *p;
    size_t filtered_len = 0, z_len = 0, n_idat, file_len;
    int rc;

    if (out == NULL || size == NULL || pixels == NULL)
        return lp_set_error(LP_EINVAL, "lp_png_encode: NULL argument");
    if (channels < 1 || channels > 4)
        return lp_set_error(LP_EINVAL, "lp_png_encode: %d channels (1 to 4 "
                            "supported)", channels);
    if (width < 1 || height < 1 || width > LP_IMAGE_MAX_SIDE ||
        height > LP_IMAGE_MAX_SIDE ||
        (size_t)width * (size_t)height > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_EINVAL, "lp_png_encode: bad image size %dx%d",
                            width, height);

    rc = filter_image(pixels, width, height, channels, &filtered,
                      &filtered_len);
    if (rc != LP_OK)
        return rc;
    rc = zlib_compress(filtered, filtered_len, &z, &z_len);
    lp_free(filtered);
    if (rc != LP_OK)
        return rc;

    n_idat = (z_len + IDAT_MAX - 1) / IDAT_MAX;
    file_len = 8 + (12 + 13) + 12 * n_idat + z_len + 12;
    file = lp_alloc(file_len, 1);
    if (file == NULL) {
        lp_free(z);
        return LP_ENOMEM;
    }
    memcpy(file, "\x89PNG\r\n\x1a\n", 8);
    p = file + 8;
    wr32be(ihdr, (uint32_t)width);
    wr32be(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;                      /* bit depth */
    ihdr[9] = color_types[channels];  /* colour type */
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, filter set 0, no interlace */
    p += put_chunk(p, "IHDR", ihdr, 13);
    for (size_t off = 0; off < z_len; off += IDAT_MAX) {
        size_t len = z_len - off < IDAT_MAX ? z_len - off : IDAT_MAX;
        p += put_chunk(p, "IDAT", z + off, len);
    }
    p += put_chunk(p, "IEND", NULL, 0);
    lp_free(z);
    *out = file;
    *size = (size_t)(p - file);
    return LP_OK;
}

int lp_png_write(const char *path, const uint8_t *pixels, int width,
                 int height, int channels)
{
    uint8_t *file = NULL;
    size_t size = 0;
    int rc;
    if (path == NULL)
        return lp_set_error(LP_EINVAL, "lp_png_write: NULL path");
    rc = lp_png_encode(&file, &size, pixels, width, height, channels);
    if (rc != LP_OK)
        return rc;
    rc = lp_write_file_atomic(path, file, size);
    lp_free(file);
    return rc;
}
