/*
 * jpeg.c — a JPEG decoder (ITU-T T.81), written for pixel parity with
 * libjpeg-turbo's default decompression (what Pillow's Image.open gives).
 *
 * Supported
 *   - Huffman-coded baseline (SOF0), extended sequential 8-bit (SOF1) and
 *     progressive (SOF2: spectral selection, successive approximation, DC
 *     first/refine, AC first/refine with EOB runs) frames;
 *   - 1 component (grey) or 3 components (YCbCr, or RGB when an Adobe APP14
 *     marker says transform 0 or the component ids are 'R','G','B', decided
 *     the way libjpeg decides), any sampling factors 1..4, interleaved and
 *     non-interleaved scans, restart intervals, up to 4 Huffman and 4
 *     quantisation tables (8- or 16-bit), fill bytes (FF FF) and byte
 *     stuffing (FF 00).
 * Refused with a one-line message: arithmetic coding, lossless and
 * hierarchical frames, 12-bit samples, 2 or 4 components (CMYK/YCCK),
 * sampling factors that are not integral fractions of the largest ones
 * (libjpeg refuses those too), height 0 (DNL), sizes beyond
 * LP_IMAGE_MAX_SIDE / LP_IMAGE_MAX_PIXELS.
 *
 * The pixels match libjpeg-turbo's exactly on well-formed files: the same
 * integer "islow" IDCT (Loeffler, Ligtenberg and Moschytz, "Practical fast
 * 1-D DCT algorithms with 11 multiplications", ICASSP 1989, with 13-bit
 * constants and 2 extra bits between the passes), the same "fancy"
 * triangular chroma upsampling for 2:1 ratios (replication for other
 * integral ratios, as libjpeg does) and the same 16-bit fixed-point
 * YCbCr->RGB conversion.
 *
 * Where this decoder is stricter than libjpeg (libjpeg warns and goes on,
 * we return LP_EFORMAT; the contract in loupe_formats.h is that truncated
 * or corrupt files are errors):
 *   - entropy-coded data that ends before the scan does (truncated file, or
 *     a marker in the middle of a scan): libjpeg pads with zeros, we refuse;
 *   - a restart interval not followed by the expected RSTn marker;
 *   - a bit pattern that is no Huffman code;
 *   - a scan that references an undefined Huffman table (libjpeg-turbo
 *     falls back to the standard tables for table 0/1, for Motion-JPEG);
 *   - a progressive file without EOI (Pillow refuses those too).
 * A sequential image is complete once every component has had its scan;
 * what follows (EOI or not) is not read, as with libjpeg reading scanlines.
 * Not replicated: libjpeg's block smoothing of progressive images whose
 * scans never refine the low AC coefficients to full precision (it is
 * inactive for complete progressive files such as cjpeg/Pillow write).
 *
 * Memory and time: sequential scans are decoded block by block straight
 * into one 8-bit plane per component; progressive files keep 16-bit
 * coefficients for every block until EOI. Every size is checked before
 * allocating; a DC or sequential scan must have at least one bit of data
 * per block it claims before anything is allocated for it (so a tiny file
 * cannot ask for gigabytes), and a file may have at most JPEG_MAX_SCANS
 * scans. Huffman codes are decoded with a 9-bit lookahead table (for AC
 * coefficients one lookup also gives the value when it fits), the bit
 * buffer is refilled 8 bytes at a time when they hold no FF, and the IDCT
 * runs on 8 lanes the compiler vectorises: a 1352x900 4:4:4 photo decodes
 * in about 30 ms on one core.
 */
#include "internal.h"

#include <string.h>

#define JPEG_MAX_COMPONENTS 3
#define HUFF_FAST_BITS 9 /* lookahead: codes up to 9 bits in one lookup */
/* Real progressive files have tens of scans; each scan may walk every
 * block of a component for a few bytes of data (one end-of-band run), so
 * a cap bounds the work a small hostile file can cause. */
#define JPEG_MAX_SCANS 1000

/* Zigzag position -> natural (row-major) index within the 8x8 block.
 * The 16 extra entries keep a run that overshoots position 63 in a
 * corrupt block inside the block (libjpeg does the same). */
static const uint8_t zz_natural[64 + 16] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

/* ---- types ------------------------------------------------------------ */

typedef struct {
    /* (length << 8) | symbol for every 9-bit prefix that starts with a
     * code of <= 9 bits; 0 where the code is longer (or not a code). */
    uint16_t fast[1 << HUFF_FAST_BITS];
    /* AC tables: for prefixes holding a whole code of a nonzero
     * coefficient and its extra bits (<= 9 bits in all):
     * value * 256 + run * 16 + bits used; 0 otherwise */
    int32_t fast_ac[1 << HUFF_FAST_BITS];
    int32_t maxcode[17]; /* largest code of each length, -1 if none */
    int32_t delta[17];   /* symbol index = code + delta[length] */
    uint8_t symbols[256];
    int defined;
} jpeg_huff;

/* Entropy-coded data reader: bits are taken MSB first from `bits`
 * (left-aligned). At a marker or at the end of the data it stops reading
 * and appends zero bits, counting them in `padded`: if fewer bits than
 * that remain in the buffer, the decoder used bits that are not there. */
typedef struct {
    const uint8_t *p, *end;
    uint64_t bits;
    int count;
    int padded;
    int stopped;
} jpeg_bits;

typedef struct {
    int id, h, v, tq;
    int width, height;  /* samples: ceil(image size * factor / max factor) */
    int bw, bh;         /* blocks covering those samples */
    int bw_mcu, bh_mcu; /* blocks in whole MCUs (interleaved scans fill them) */
    size_t stride;      /* plane row length = bw_mcu * 8 */
    uint8_t *plane;     /* bw_mcu*8 x bh_mcu*8 samples */
    int16_t *coef;      /* progressive: 64 coefficients per block */
    uint16_t quant[64]; /* natural order, latched at the first scan */
    int scanned;
    int dc_pred;
    const jpeg_huff *dc, *ac; /* tables of the current scan */
} jpeg_component;

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    uint16_t qt[4][64]; /* natural order */
    int qt_defined[4];
    jpeg_huff huff[2][4]; /* [0] DC, [1] AC */
    int have_frame, progressive;
    int width, height, ncomp, hmax, vmax, mcux, mcuy;
    jpeg_component comp[JPEG_MAX_COMPONENTS];
    int buffers_ready;
    int restart_interval;
    int seen_sos, scans, jfif, adobe, adobe_transform;
    /* the scan being decoded */
    int ns;
    jpeg_component *scomp[JPEG_MAX_COMPONENTS];
    int ss, se, ah, al;
    int eobrun;
    jpeg_bits br;
    int16_t block[64]; /* sequential scans: the block being decoded */
} jpeg_decoder;

typedef int (*jpeg_block_fn)(jpeg_decoder *d, jpeg_component *c, int bx,
                             int by);

/* ---- small helpers ---------------------------------------------------- */

static unsigned get16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* Two's complement wrap to 16 bits (libjpeg keeps coefficients in short). */
static inline int wrap16(int v)
{
    unsigned u = (unsigned)v & 0xFFFFu;
    return (int)u - ((u & 0x8000u) ? 0x10000 : 0);
}

static int err_truncated(void)
{
    return lp_set_error(LP_EFORMAT, "JPEG: entropy-coded data ends early "
                                    "(truncated or corrupt file)");
}

static int err_bad_code(void)
{
    return lp_set_error(LP_EFORMAT,
                        "JPEG: corrupt entropy-coded data (bad Huffman code)");
}

/* Find the next marker at or after *pos, skipping stray bytes, fill bytes
 * (FF FF) and stuffed FF 00 pairs. Returns the marker code and leaves
 * *pos after it, or -1 at the end of the data. */
static int find_marker(const uint8_t *data, size_t size, size_t *pos)
{
    size_t i = *pos;
    while (i < size) {
        if (data[i] != 0xFF) {
            i++;
            continue;
        }
        while (i < size && data[i] == 0xFF)
            i++;
        if (i >= size)
            break;
        if (data[i] == 0x00) {
            i++;
            continue;
        }
        *pos = i + 1;
        return data[i];
    }
    *pos = size;
    return -1;
}

/* ---- bit reader ------------------------------------------------------- */

static void bits_start(jpeg_bits *b, const uint8_t *p, const uint8_t *end)
{
    b->p = p;
    b->end = end;
    b->bits = 0;
    b->count = 0;
    b->padded = 0;
    b->stopped = 0;
}

/* Fill the buffer to more than 56 bits. */
static void bits_refill(jpeg_bits *b)
{
    if (!b->stopped && b->end - b->p >= 8) {
        /* fast path: the next 8 bytes hold no FF (so no stuffing and no
         * marker): take as many whole bytes as fit */
        uint64_t w = 0;
        for (int i = 0; i < 8; i++)
            w = (w << 8) | b->p[i];
        if (((~w - 0x0101010101010101u) & w & 0x8080808080808080u) == 0) {
            int n = (64 - b->count) >> 3; /* 1..8 bytes */
            uint64_t keep = n == 8 ? ~(uint64_t)0 : ~(~(uint64_t)0 >> (8 * n));
            b->bits |= (w & keep) >> b->count;
            b->count += 8 * n;
            b->p += n;
            return;
        }
    }
    while (b->count <= 56) {
        unsigned byte = 0;
        if (!b->stopped) {
            if (b->p < b->end && *b->p != 0xFF) {
                byte = *b->p++;
            } else if (b->p < b->end) {
                /* FF (FF...) 00 is a stuffed data byte FF; anything else
                 * after the FFs is a marker: stop in front of it */
                const uint8_t *q = b->p + 1;
                while (q < b->end && *q == 0xFF)
                    q++;
                if (q < b->end && *q == 0x00) {
                    byte = 0xFF;
                    b->p = q + 1;
                } else {
                    b->stopped = 1;
                }
            } else {
                b->stopped = 1;
            }
        }
        if (b->stopped)
            b->padded += 8;
        b->bits |= (uint64_t)byte << (56 - b->count);
        b->count += 8;
    }
}

/* n in 1..32; the caller made sure count >= n */
static inline unsigned bits_peek(const jpeg_bits *b, int n)
{
    return (unsigned)(b->bits >> (64 - n));
}

static inline void bits_skip(jpeg_bits *b, int n)
{
    b->bits <<= n;
    b->count -= n;
}

/* n in 1..16 */
static inline int bits_get(jpeg_bits *b, int n)
{
    if (b->count < n)
        bits_refill(b);
    int v = (int)bits_peek(b, n);
    bits_skip(b, n);
    return v;
}

static inline int bits_bit(jpeg_bits *b)
{
    if (b->count < 1)
        bits_refill(b);
    int v = (int)(b->bits >> 63);
    bits_skip(b, 1);
    return v;
}

/* s extra bits as a signed value (T.81 F.2.2.1 EXTEND), s in 1..15 */
static inline int bits_extend(jpeg_bits *b, int s)
{
    int v = bits_get(b, s);
    return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
}

/* ---- Huffman tables --------------------------------------------------- */

/* Build the decoding tables of one DHT table (T.81 Annex C): canonical
 * codes by increasing length; like libjpeg we refuse a table whose codes
 * do not fit their lengths (the all-ones code of a length is reserved). */
static int huff_build(jpeg_huff *h, const uint8_t counts[16],
                      const uint8_t *symbols, int nsym, int is_dc, int id)
{
    int code = 0, k = 0;
    memset(h, 0, sizeof *h);
    memcpy(h->symbols, symbols, (size_t)nsym);
    for (int len = 1; len <= 16; len++) {
        int n = counts[len - 1];
        if (code + n >= (1 << len))
            return lp_set_error(LP_EFORMAT,
                                "JPEG: %s Huffman table %d is invalid (too "
                                "many codes of length %d)",
                                is_dc ? "DC" : "AC", id, len);
        h->delta[len] = k - code;
        h->maxcode[len] = n ? code + n - 1 : -1;
        for (int i = 0; i < n; i++, k++, code++) {
            if (len > HUFF_FAST_BITS)
                continue;
            int shift = HUFF_FAST_BITS - len;
            uint16_t entry = (uint16_t)((len << 8) | symbols[k]);
            for (int j = 0; j < (1 << shift); j++)
                h->fast[(code << shift) + j] = entry;
        }
        code <<= 1;
    }
    if (!is_dc) {
        for (int pre = 0; pre < (1 << HUFF_FAST_BITS); pre++) {
            int len = h->fast[pre] >> 8, rs = h->fast[pre] & 0xFF;
            int r = rs >> 4, s = rs & 15;
            if (len == 0 || s == 0 || len + s > HUFF_FAST_BITS)
                continue;
            int v = (pre >> (HUFF_FAST_BITS - len - s)) & ((1 << s) - 1);
            if (v < (1 << (s - 1)))
                v -= (1 << s) - 1;
            h->fast_ac[pre] = v * 256 + r * 16 + len + s;
        }
    }
    if (is_dc) {
        for (int i = 0; i < nsym; i++)
            if (symbols[i] > 15)
                return lp_set_error(LP_EFORMAT,
                                    "JPEG: DC Huffman table %d has symbol %d "
                                    "(DC differences have at most 15 bits)",
                                    id, symbols[i]);
    }
    h->defined = 1;
    return LP_OK;
}

/* Next symbol, or -1 for a bit pattern that is no code. Leaves at least
 * 16 bits in the buffer for the extra bits that follow the code. */
static inline int huff_decode(jpeg_bits *b, const jpeg_huff *h)
{
    if (b->count < 32)
        bits_refill(b);
    unsigned e = h->fast[bits_peek(b, HUFF_FAST_BITS)];
    if (e != 0) {
        bits_skip(b, (int)(e >> 8));
        return (int)(e & 0xFF);
    }
    for (int len = HUFF_FAST_BITS + 1; len <= 16; len++) {
        int32_t code = (int32_t)bits_peek(b, len);
        if (code <= h->maxcode[len]) {
            bits_skip(b, len);
            return h->symbols[code + h->delta[len]];
        }
    }
    return -1;
}

/* ---- inverse DCT ------------------------------------------------------ */

/*
 * The "islow" integer IDCT: a separable 8-point IDCT after Loeffler,
 * Ligtenberg and Moschytz (12 multiplications per 1-D transform), with
 * the cosine constants scaled by 2^13. Pass 1 transforms the columns and
 * keeps 2 extra fractional bits, pass 2 the rows, dividing by 8 for the
 * 2-D normalisation. Same arithmetic, hence the same results, as
 * libjpeg's jpeg_idct_islow.
 *
 * Overflow: every intermediate value of a 1-D transform is a linear form
 * in its 8 inputs; with all |inputs| <= B it is bounded by B times the
 * sum of the form's absolute coefficients, which is at most 61214 (the
 * largest over all intermediates and outputs, computed once offline).
 * 61214 * 32767 + 2^17 < 2^31, so 32-bit arithmetic is exact while the
 * inputs of each pass stay within IDCT_SAFE_32; other blocks (16-bit
 * quantisers, corrupt files) take the 64-bit path.
 * Relies on >> of a negative value being an arithmetic shift, as it is on
 * every compiler loupe supports.
 */
#define IDCT_CONST_BITS 13
#define IDCT_PASS1_BITS 2
#define IDCT_SAFE_32 32767
#define FIX_0_298631336 2446 /* round(0.298631336 * 2^13) ... */
#define FIX_0_390180644 3196
#define FIX_0_541196100 4433
#define FIX_0_765366865 6270
#define FIX_0_899976223 7373
#define FIX_1_175875602 9633
#define FIX_1_501321110 12299
#define FIX_1_847759065 15137
#define FIX_1_961570560 16069
#define FIX_2_053119869 16819
#define FIX_2_562915447 20995
#define FIX_3_072711026 25172

/* One 8-point IDCT (in[k * step], k = 0..7), outputs scaled by 2^13 and
 * not yet rounded; defined for 32- and 64-bit arithmetic. */
#define DEFINE_IDCT_1D(sfx, T)                                              \
    static inline void idct_1d_##sfx(const T *in, int step, T out[8])                 \
    {                                                                        \
        /* even part: inputs 0, 2, 4, 6 */                                   \
        T x0 = in[0], x2 = in[2 * step], x4 = in[4 * step];                  \
        T x6 = in[6 * step];                                                 \
        T z1 = (x2 + x6) * FIX_0_541196100;                                  \
        T t2 = z1 - x6 * FIX_1_847759065;                                    \
        T t3 = z1 + x2 * FIX_0_765366865;                                    \
        T t0 = (x0 + x4) * (1 << IDCT_CONST_BITS);                           \
        T t1 = (x0 - x4) * (1 << IDCT_CONST_BITS);                           \
        T e0 = t0 + t3, e3 = t0 - t3, e1 = t1 + t2, e2 = t1 - t2;            \
        /* odd part: inputs 7, 5, 3, 1, rotations sharing z5 */              \
        T o0 = in[7 * step], o1 = in[5 * step], o2 = in[3 * step];           \
        T o3 = in[step];                                                     \
        T s1 = o0 + o3, s2 = o1 + o2, s3 = o0 + o2, s4 = o1 + o3;            \
        T z5 = (s3 + s4) * FIX_1_175875602;                                  \
        o0 *= FIX_0_298631336;                                               \
        o1 *= FIX_2_053119869;                                               \
        o2 *= FIX_3_072711026;                                               \
        o3 *= FIX_1_501321110;                                               \
        s1 *= -FIX_0_899976223;                                              \
        s2 *= -FIX_2_562915447;                                              \
        s3 = s3 * -FIX_1_961570560 + z5;                                     \
        s4 = s4 * -FIX_0_390180644 + z5;                                     \
        o0 += s1 + s3;                                                       \
        o1 += s2 + s4;                                                       \
        o2 += s2 + s3;                                                       \
        o3 += s1 + s4;                                                       \
        out[0] = e0 + o3;                                                    \
        out[7] = e0 - o3;                                                    \
        out[1] = e1 + o2;                                                    \
        out[6] = e1 - o2;                                                    \
        out[2] = e2 + o1;                                                    \
        out[5] = e2 - o1;                                                    \
        out[3] = e3 + o0;                                                    \
        out[4] = e3 - o0;                                                    \
    }
DEFINE_IDCT_1D(32, int32_t)
DEFINE_IDCT_1D(64, int64_t)

static inline int64_t descale64(int64_t x, int n)
{
    return (x + ((int64_t)1 << (n - 1))) >> n;
}

static inline uint8_t clamp_sample(int64_t v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/*
 * 32-bit path, written for the compiler's vectoriser: each pass runs the
 * 1-D transform on 8 independent lanes (pass 1: the 8 columns; pass 2:
 * the 8 rows, after a transpose) without branches:
 * in[k * 8 + lane] -> out[k * 8 + lane], rounded, shifted right by
 * `shift`, plus `bias`.
 */
static inline void idct_lanes_32(const int32_t *restrict in,
                                 int32_t *restrict out, int shift,
                                 int32_t bias)
{
    const int32_t round = (int32_t)1 << (shift - 1);
    for (int lane = 0; lane < 8; lane++) {
        /* named results and unrolled stores: gcc then vectorises the lane
         * loop (it does not with an inner loop over r[k]) */
        int32_t r[8];
        idct_1d_32(in + lane, 8, r);
        int32_t r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
        int32_t r4 = r[4], r5 = r[5], r6 = r[6], r7 = r[7];
        out[lane] = ((r0 + round) >> shift) + bias;
        out[8 + lane] = ((r1 + round) >> shift) + bias;
        out[16 + lane] = ((r2 + round) >> shift) + bias;
        out[24 + lane] = ((r3 + round) >> shift) + bias;
        out[32 + lane] = ((r4 + round) >> shift) + bias;
        out[40 + lane] = ((r5 + round) >> shift) + bias;
        out[48 + lane] = ((r6 + round) >> shift) + bias;
        out[56 + lane] = ((r7 + round) >> shift) + bias;
    }
}

/* 64-bit path for blocks whose values could overflow 32 bits: columns
 * then rows, the same rounding. */
static void idct_block_64(const int32_t *dq, uint8_t *out, size_t stride)
{
    int64_t ws[64], in[8], res[8];
    for (int col = 0; col < 8; col++) {
        for (int k = 0; k < 8; k++)
            in[k] = dq[8 * k + col];
        idct_1d_64(in, 1, res);
        for (int k = 0; k < 8; k++)
            ws[8 * k + col] =
                descale64(res[k], IDCT_CONST_BITS - IDCT_PASS1_BITS);
    }
    for (int row = 0; row < 8; row++) {
        idct_1d_64(ws + 8 * row, 1, res);
        for (int k = 0; k < 8; k++)
            out[(size_t)row * stride + (size_t)k] = clamp_sample(
                descale64(res[k], IDCT_CONST_BITS + IDCT_PASS1_BITS + 3) +
                128);
    }
}

/* Dequantise coef (natural order) with q and write the 8x8 samples. */
static void idct_block(const int16_t *coef, const uint16_t *q, uint8_t *out,
                       size_t stride)
{
    int32_t dq[64], ws[64], wt[64], big = 0, ac = 0;
    for (int i = 0; i < 64; i++) {
        /* |coef * q| <= 32768 * 65535 < 2^31 */
        dq[i] = (int32_t)coef[i] * (int32_t)q[i];
        big |= dq[i] < 0 ? -dq[i] : dq[i];
        ac |= i ? dq[i] : 0;
    }
    if (ac == 0) {
        /* DC only: all samples equal (exactly what the passes give) */
        int64_t v = descale64((int64_t)dq[0] * (1 << IDCT_PASS1_BITS),
                              IDCT_PASS1_BITS + 3);
        for (int row = 0; row < 8; row++)
            memset(out + (size_t)row * stride, clamp_sample(v + 128), 8);
        return;
    }
    /* (an OR of the magnitudes: above 0x7FFF iff one of them is) */
    if (big > IDCT_SAFE_32) {
        idct_block_64(dq, out, stride);
        return;
    }
    idct_lanes_32(dq, ws, IDCT_CONST_BITS - IDCT_PASS1_BITS, 0);
    big = 0;
    for (int i = 0; i < 64; i++) {
        big |= ws[i] < 0 ? -ws[i] : ws[i];
        wt[(i & 7) * 8 + (i >> 3)] = ws[i]; /* transpose: rows become lanes */
    }
    if (big > IDCT_SAFE_32) {
        idct_block_64(dq, out, stride);
        return;
    }
    idct_lanes_32(wt, ws, IDCT_CONST_BITS + IDCT_PASS1_BITS + 3, 128);
    /* ws[x * 8 + y] is the sample at row y, column x */
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            out[(size_t)y * stride + (size_t)x] = clamp_sample(ws[x * 8 + y]);
}

/* ---- marker segments -------------------------------------------------- */

/* The payload of the segment whose marker was just read (length field
 * excluded); advances d->pos past it. */
static int read_segment(jpeg_decoder *d, int marker, const uint8_t **p,
                        size_t *n)
{
    if (d->size - d->pos < 2)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: data ends inside marker 0x%02X (truncated "
                            "file?)", marker);
    size_t len = get16(d->data + d->pos);
    if (len < 2)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: marker 0x%02X has invalid length %zu",
                            marker, len);
    if (len > d->size - d->pos)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: marker 0x%02X segment of %zu bytes runs "
                            "past the end of the data (truncated file?)",
                            marker, len);
    *p = d->data + d->pos + 2;
    *n = len - 2;
    d->pos += len;
    return LP_OK;
}

static int parse_dqt(jpeg_decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15;
        if (pq > 1)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: DQT table precision %d (must be 0 or 1)",
                                pq);
        if (tq > 3)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: DQT table id %d (must be 0-3)", tq);
        size_t need = 1 + (pq ? 128 : 64);
        if (n < need)
            return lp_set_error(LP_EFORMAT, "JPEG: DQT segment too short");
        for (int k = 0; k < 64; k++)
            d->qt[tq][zz_natural[k]] =
                (uint16_t)(pq ? get16(p + 1 + 2 * k) : p[1 + k]);
        d->qt_defined[tq] = 1;
        p += need;
        n -= need;
    }
    return LP_OK;
}

static int parse_dht(jpeg_decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 17)
            return lp_set_error(LP_EFORMAT, "JPEG: DHT segment too short");
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        if (tc > 1)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: DHT table class %d (must be 0 or 1)",
                                tc);
        if (th > 3)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: DHT table id %d (must be 0-3)", th);
        for (int i = 0; i < 16; i++)
            total += p[1 + i];
        if (total > 256)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: Huffman table with %d symbols (at most "
                                "256)", total);
        if ((size_t)total > n - 17)
            return lp_set_error(LP_EFORMAT, "JPEG: DHT segment too short");
        LP_TRY(huff_build(&d->huff[tc][th], p + 1, p + 17, total, tc == 0,
                          th));
        p += 17 + (size_t)total;
        n -= 17 + (size_t)total;
    }
    return LP_OK;
}

static int parse_sof(jpeg_decoder *d, int marker, const uint8_t *p, size_t n)
{
    if (d->have_frame)
        return lp_set_error(LP_EFORMAT, "JPEG: more than one SOF marker");
    if (n < 6)
        return lp_set_error(LP_EFORMAT, "JPEG: SOF segment too short");
    int precision = p[0], nf = p[5];
    int height = (int)get16(p + 1), width = (int)get16(p + 3);
    if (precision != 8)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: %d-bit samples are not supported (only "
                            "8-bit)", precision);
    if (nf == 4)
        return lp_set_error(LP_EFORMAT, "JPEG: 4-component (CMYK/YCCK) "
                                        "images are not supported");
    if (nf != 1 && nf != 3)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: %d-component images are not supported "
                            "(only 1 or 3)", nf);
    if (n != 6 + 3 * (size_t)nf)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: SOF segment length %zu does not match %d "
                            "components", n + 2, nf);
    if (height == 0)
        return lp_set_error(LP_EFORMAT, "JPEG: image height 0 (height set "
                                        "by a DNL marker) is not supported");
    if (width == 0)
        return lp_set_error(LP_EFORMAT, "JPEG: image width is 0");
    if (width > LP_IMAGE_MAX_SIDE || height > LP_IMAGE_MAX_SIDE ||
        (size_t)width * (size_t)height > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_ERANGE,
                            "JPEG: image of %dx%d pixels exceeds the limits "
                            "(%d per side, %zu pixels)", width, height,
                            LP_IMAGE_MAX_SIDE, (size_t)LP_IMAGE_MAX_PIXELS);
    /* the component planes and the pixels, each about w x h x components */
    LP_TRY(lp_memory_check_image("JPEG", (size_t)width, (size_t)height,
                                 (size_t)width * height * (size_t)nf * 2));
    d->width = width;
    d->height = height;
    d->ncomp = nf;
    d->progressive = marker == 0xC2;
    d->hmax = d->vmax = 1;
    for (int i = 0; i < nf; i++) {
        jpeg_component *c = &d->comp[i];
        const uint8_t *q = p + 6 + 3 * i;
        c->id = q[0];
        c->h = q[1] >> 4;
        c->v = q[1] & 15;
        c->tq = q[2];
        for (int j = 0; j < i; j++)
            if (d->comp[j].id == c->id)
                return lp_set_error(LP_EFORMAT,
                                    "JPEG: component id %d appears twice in "
                                    "SOF", c->id);
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: component %d has sampling factors "
                                "%dx%d (must be 1-4)", c->id, c->h, c->v);
        if (c->tq > 3)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: component %d uses quantization table "
                                "%d (must be 0-3)", c->id, c->tq);
        if (c->h > d->hmax)
            d->hmax = c->h;
        if (c->v > d->vmax)
            d->vmax = c->v;
    }
    for (int i = 0; i < nf; i++) {
        const jpeg_component *c = &d->comp[i];
        if (d->hmax % c->h != 0 || d->vmax % c->v != 0)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: component %d sampling %dx%d is not an "
                                "integral fraction of %dx%d (not supported)",
                                c->id, c->h, c->v, d->hmax, d->vmax);
    }
    /* all of these are bounded by 65535 * 4, far from int overflow */
    d->mcux = (width + 8 * d->hmax - 1) / (8 * d->hmax);
    d->mcuy = (height + 8 * d->vmax - 1) / (8 * d->vmax);
    for (int i = 0; i < nf; i++) {
        jpeg_component *c = &d->comp[i];
        c->width = (width * c->h + d->hmax - 1) / d->hmax;
        c->height = (height * c->v + d->vmax - 1) / d->vmax;
        c->bw = (c->width + 7) / 8;
        c->bh = (c->height + 7) / 8;
        c->bw_mcu = d->mcux * c->h;
        c->bh_mcu = d->mcuy * c->v;
        c->stride = (size_t)c->bw_mcu * 8;
    }
    d->have_frame = 1;
    return LP_OK;
}

static void parse_app(jpeg_decoder *d, int marker, const uint8_t *p,
                      size_t n)
{
    if (d->seen_sos) /* libjpeg decides the colour space at the first SOS */
        return;
    if (marker == 0xE0 && n >= 14 && memcmp(p, "JFIF", 5) == 0)
        d->jfif = 1;
    if (marker == 0xEE && n >= 12 && memcmp(p, "Adobe", 5) == 0) {
        d->adobe = 1;
        d->adobe_transform = p[11];
    }
}

/* ---- scans ------------------------------------------------------------ */

/* Allocate the per-component buffers (at the first scan, once the frame
 * is known to have entropy-coded data). */
static int alloc_buffers(jpeg_decoder *d)
{
    for (int i = 0; i < d->ncomp; i++) {
        jpeg_component *c = &d->comp[i];
        size_t blocks;
        if (!lp_mul_size((size_t)c->bw_mcu, (size_t)c->bh_mcu, &blocks) ||
            !lp_mul_size(blocks, 64, &blocks))
            return lp_set_error(LP_ENOMEM, "JPEG: image too large");
        if (d->progressive) {
            c->coef = (int16_t *)lp_calloc(blocks, sizeof(int16_t));
            if (c->coef == NULL)
                return lp_set_error(LP_ENOMEM,
                                    "JPEG: out of memory for %zu coefficients",
                                    blocks);
        } else {
            c->plane = (uint8_t *)lp_calloc(blocks, 1);
            if (c->plane == NULL)
                return lp_set_error(LP_ENOMEM,
                                    "JPEG: out of memory for %zu samples",
                                    blocks);
        }
    }
    d->buffers_ready = 1;
    return LP_OK;
}

static int parse_sos(jpeg_decoder *d, const uint8_t *p, size_t n)
{
    if (!d->have_frame)
        return lp_set_error(LP_EFORMAT, "JPEG: SOS marker before SOF");
    if (n < 1)
        return lp_set_error(LP_EFORMAT, "JPEG: SOS segment too short");
    int ns = p[0];
    if (ns < 1 || ns > d->ncomp)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: SOS with %d components (frame has %d)", ns,
                            d->ncomp);
    if (n != 4 + 2 * (size_t)ns)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: SOS segment length %zu does not match %d "
                            "components", n + 2, ns);
    d->ns = ns;
    d->ss = p[1 + 2 * ns];
    d->se = p[2 + 2 * ns];
    d->ah = p[3 + 2 * ns] >> 4;
    d->al = p[3 + 2 * ns] & 15;
    if (d->progressive) {
        int bad = d->al > 13 || (d->ah != 0 && d->al != d->ah - 1);
        if (d->ss == 0)
            bad |= d->se != 0;
        else
            bad |= d->ss > d->se || d->se > 63 || ns != 1;
        if (bad)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: invalid progressive scan (Ss=%d Se=%d "
                                "Ah=%d Al=%d, %d components)", d->ss, d->se,
                                d->ah, d->al, ns);
    }
    int need_dc = !d->progressive || (d->ss == 0 && d->ah == 0);
    int need_ac = !d->progressive || d->ss > 0;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i], td = p[2 + 2 * i] >> 4, ta = p[2 + 2 * i] & 15;
        jpeg_component *c = NULL;
        for (int j = 0; j < d->ncomp; j++)
            if (d->comp[j].id == id)
                c = &d->comp[j];
        if (c == NULL)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: SOS references unknown component id %d",
                                id);
        for (int j = 0; j < i; j++)
            if (d->scomp[j] == c)
                return lp_set_error(LP_EFORMAT,
                                    "JPEG: SOS lists component %d twice", id);
        if ((need_dc && td > 3) || (need_ac && ta > 3))
            return lp_set_error(LP_EFORMAT,
                                "JPEG: SOS references Huffman table %d (must "
                                "be 0-3)", need_dc && td > 3 ? td : ta);
        if (need_dc && !d->huff[0][td].defined)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: SOS references undefined DC Huffman "
                                "table %d", td);
        if (need_ac && !d->huff[1][ta].defined)
            return lp_set_error(LP_EFORMAT,
                                "JPEG: SOS references undefined AC Huffman "
                                "table %d", ta);
        c->dc = need_dc ? &d->huff[0][td] : NULL;
        c->ac = need_ac ? &d->huff[1][ta] : NULL;
        if (!c->scanned) { /* libjpeg latches the table at the first scan */
            if (!d->qt_defined[c->tq])
                return lp_set_error(LP_EFORMAT,
                                    "JPEG: component %d uses undefined "
                                    "quantization table %d", id, c->tq);
            memcpy(c->quant, d->qt[c->tq], sizeof c->quant);
        }
        d->scomp[i] = c;
    }
    return LP_OK;
}

/* Every DC scan and every sequential scan spends at least one bit on each
 * block; refuse a scan that claims more blocks than the data has bits
 * before allocating anything for it. */
static int check_scan_size(const jpeg_decoder *d)
{
    size_t blocks = 0, remaining = d->size - d->pos;
    if (d->progressive && d->ss != 0)
        return LP_OK;
    if (d->ns == 1) {
        blocks = (size_t)d->scomp[0]->bw * (size_t)d->scomp[0]->bh;
    } else {
        for (int i = 0; i < d->ns; i++)
            blocks += (size_t)d->scomp[i]->h * (size_t)d->scomp[i]->v;
        blocks *= (size_t)d->mcux * (size_t)d->mcuy;
    }
    if (remaining < (size_t)-1 / 8 && blocks > remaining * 8)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: scan of %zu blocks has only %zu bytes of "
                            "data (truncated file?)", blocks, remaining);
    return LP_OK;
}

/* Sequential: decode one block (T.81 F.2.2) and write its samples. */
static int seq_block(jpeg_decoder *d, jpeg_component *c, int bx, int by)
{
    jpeg_bits *b = &d->br;
    int16_t *blk = d->block;
    int s = huff_decode(b, c->dc);
    if (s < 0)
        return err_bad_code();
    c->dc_pred = wrap16(c->dc_pred + (s ? bits_extend(b, s) : 0));
    blk[0] = (int16_t)c->dc_pred;
    for (int k = 1; k < 64; k++) {
        if (b->count < 32)
            bits_refill(b);
        int32_t e = c->ac->fast_ac[bits_peek(b, HUFF_FAST_BITS)];
        if (e != 0) { /* code and value in one lookup */
            k += (e >> 4) & 15;
            bits_skip(b, e & 15);
            blk[zz_natural[k]] = (int16_t)(e >> 8);
            continue;
        }
        int rs = huff_decode(b, c->ac);
        if (rs < 0)
            return err_bad_code();
        int r = rs >> 4;
        s = rs & 15;
        if (s) {
            k += r;
            blk[zz_natural[k]] = (int16_t)bits_extend(b, s);
        } else if (r == 15) {
            k += 15; /* ZRL: 16 zeros */
        } else {
            break; /* EOB */
        }
    }
    if (bx < c->bw && by < c->bh) /* blocks beyond the edge are not shown */
        idct_block(blk, c->quant,
                   c->plane + (size_t)by * 8 * c->stride + (size_t)bx * 8,
                   c->stride);
    memset(blk, 0, sizeof d->block);
    return LP_OK;
}

static inline int16_t *coef_block(jpeg_component *c, int bx, int by)
{
    return c->coef + ((size_t)by * (size_t)c->bw_mcu + (size_t)bx) * 64;
}

/* Progressive, T.81 G.1.2: DC first scan (difference scaled by 2^Al). */
static int prog_dc_first(jpeg_decoder *d, jpeg_component *c, int bx, int by)
{
    int s = huff_decode(&d->br, c->dc);
    if (s < 0)
        return err_bad_code();
    c->dc_pred = wrap16(c->dc_pred + (s ? bits_extend(&d->br, s) : 0));
    coef_block(c, bx, by)[0] = (int16_t)wrap16(c->dc_pred * (1 << d->al));
    return LP_OK;
}

/* DC refinement: one more bit of every DC coefficient. */
static int prog_dc_refine(jpeg_decoder *d, jpeg_component *c, int bx, int by)
{
    int16_t *blk = coef_block(c, bx, by);
    if (bits_bit(&d->br))
        blk[0] = (int16_t)(blk[0] | (1 << d->al));
    return LP_OK;
}

/* AC first scan of the band Ss..Se, with end-of-band runs across blocks. */
static int prog_ac_first(jpeg_decoder *d, jpeg_component *c, int bx, int by)
{
    jpeg_bits *b = &d->br;
    if (d->eobrun > 0) {
        d->eobrun--;
        return LP_OK;
    }
    int16_t *blk = coef_block(c, bx, by);
    for (int k = d->ss; k <= d->se; k++) {
        if (b->count < 32)
            bits_refill(b);
        int32_t e = c->ac->fast_ac[bits_peek(b, HUFF_FAST_BITS)];
        if (e != 0) {
            k += (e >> 4) & 15;
            bits_skip(b, e & 15);
            blk[zz_natural[k]] = (int16_t)wrap16((e >> 8) * (1 << d->al));
            continue;
        }
        int rs = huff_decode(b, c->ac);
        if (rs < 0)
            return err_bad_code();
        int r = rs >> 4, s = rs & 15;
        if (s) {
            k += r;
            blk[zz_natural[k]] =
                (int16_t)wrap16(bits_extend(b, s) * (1 << d->al));
        } else if (r == 15) {
            k += 15;
        } else {
            /* EOBr: this block and 2^r - 1 + (r bits) more end here */
            d->eobrun = (1 << r) - 1;
            if (r)
                d->eobrun += bits_get(b, r);
            break;
        }
    }
    return LP_OK;
}

/* Correction bit of a coefficient that is already nonzero: if set, its
 * magnitude grows by 2^Al (unless that bit is already there). */
static inline void refine_nonzero(jpeg_bits *b, int16_t *coef, int p1)
{
    if (bits_bit(b) && (*coef & p1) == 0)
        *coef = (int16_t)wrap16(*coef >= 0 ? *coef + p1 : *coef - p1);
}

/* AC refinement (T.81 G.1.2.3): new coefficients of magnitude 2^Al placed
 * after runs of still-zero ones, correction bits for the nonzero ones
 * passed over, and for the rest of the band in end-of-band runs. */
static int prog_ac_refine(jpeg_decoder *d, jpeg_component *c, int bx,
                          int by)
{
    jpeg_bits *b = &d->br;
    int16_t *blk = coef_block(c, bx, by);
    int p1 = 1 << d->al, k = d->ss;
    if (d->eobrun == 0) {
        for (; k <= d->se; k++) {
            int rs = huff_decode(b, c->ac);
            if (rs < 0)
                return err_bad_code();
            int r = rs >> 4, s = rs & 15, value = 0;
            if (s) {
                /* the size is always 1 in a valid file (libjpeg warns and
                 * reads one bit whatever it is) */
                value = bits_bit(b) ? p1 : -p1;
            } else if (r != 15) {
                d->eobrun = 1 << r;
                if (r)
                    d->eobrun += bits_get(b, r);
                break;
            }
            /* skip r zero coefficients, refining nonzero ones on the way */
            while (k <= d->se) {
                int16_t *coef = &blk[zz_natural[k]];
                if (*coef != 0)
                    refine_nonzero(b, coef, p1);
                else if (r-- == 0)
                    break;
                k++;
            }
            if (value)
                blk[zz_natural[k]] = (int16_t)value;
        }
    }
    if (d->eobrun > 0) {
        /* the rest of the band: a correction bit for each nonzero
         * coefficient (branch-free, this is the hot loop) */
        for (; k <= d->se; k++) {
            if (b->count < 1)
                bits_refill(b);
            int16_t *coef = &blk[zz_natural[k]];
            int v = *coef, nz = v != 0;
            int grow = (int)(b->bits >> 63) & nz & ((v & p1) == 0);
            b->bits <<= nz;
            b->count -= nz;
            *coef = (int16_t)wrap16(v + (grow ? (v < 0 ? -p1 : p1) : 0));
        }
        d->eobrun--;
    }
    return LP_OK;
}

static void reset_predictors(jpeg_decoder *d)
{
    for (int i = 0; i < d->ncomp; i++)
        d->comp[i].dc_pred = 0;
    d->eobrun = 0;
}

/* At the end of a restart interval: the expected RSTn marker must follow
 * (after any stray bytes, which libjpeg skips too). */
static int restart(jpeg_decoder *d, int *next_rst)
{
    if (d->br.count < d->br.padded)
        return err_truncated();
    size_t pos = (size_t)(d->br.p - d->data);
    int marker = find_marker(d->data, d->size, &pos);
    if (marker < 0)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: data ends where restart marker RST%d was "
                            "expected (truncated file?)", *next_rst);
    if (marker != 0xD0 + *next_rst)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: expected restart marker RST%d, found "
                            "marker 0x%02X", *next_rst, marker);
    *next_rst = (*next_rst + 1) & 7;
    bits_start(&d->br, d->data + pos, d->data + d->size);
    reset_predictors(d);
    return LP_OK;
}

/* Run fn over every block of the scan in MCU order (T.81 A.2). */
static int decode_scan(jpeg_decoder *d, jpeg_block_fn fn)
{
    jpeg_component *c0 = d->scomp[0];
    int single = d->ns == 1; /* non-interleaved: one block per MCU */
    int mcus_x = single ? c0->bw : d->mcux;
    int mcus_y = single ? c0->bh : d->mcuy;
    int left = d->restart_interval, next_rst = 0;
    bits_start(&d->br, d->data + d->pos, d->data + d->size);
    reset_predictors(d);
    for (int my = 0; my < mcus_y; my++) {
        for (int mx = 0; mx < mcus_x; mx++) {
            if (d->restart_interval) {
                if (left == 0) {
                    LP_TRY(restart(d, &next_rst));
                    left = d->restart_interval;
                }
                left--;
            }
            if (single) {
                LP_TRY(fn(d, c0, mx, my));
            } else {
                for (int i = 0; i < d->ns; i++) {
                    jpeg_component *c = d->scomp[i];
                    for (int v = 0; v < c->v; v++)
                        for (int h = 0; h < c->h; h++)
                            LP_TRY(fn(d, c, mx * c->h + h, my * c->v + v));
                }
            }
            if (d->br.count < d->br.padded)
                return err_truncated();
        }
    }
    d->pos = (size_t)(d->br.p - d->data);
    return LP_OK;
}

static int do_scan(jpeg_decoder *d)
{
    jpeg_block_fn fn;
    if (++d->scans > JPEG_MAX_SCANS)
        return lp_set_error(LP_EFORMAT, "JPEG: more than %d scans",
                            JPEG_MAX_SCANS);
    LP_TRY(check_scan_size(d));
    if (!d->buffers_ready)
        LP_TRY(alloc_buffers(d));
    for (int i = 0; i < d->ns; i++)
        d->scomp[i]->scanned = 1;
    if (!d->progressive)
        fn = seq_block;
    else if (d->ss == 0)
        fn = d->ah == 0 ? prog_dc_first : prog_dc_refine;
    else
        fn = d->ah == 0 ? prog_ac_first : prog_ac_refine;
    return decode_scan(d, fn);
}

static int all_scanned(const jpeg_decoder *d)
{
    for (int i = 0; i < d->ncomp; i++)
        if (!d->comp[i].scanned)
            return 0;
    return 1;
}

/* Read markers and decode scans until the image is complete. */
static int decode_stream(jpeg_decoder *d)
{
    d->pos = 2; /* after SOI */
    for (;;) {
        const uint8_t *p;
        size_t n;
        int m = find_marker(d->data, d->size, &d->pos);
        if (m < 0) {
            if (!d->have_frame)
                return lp_set_error(LP_EFORMAT, "JPEG: no SOF marker before "
                                                "the end of the data");
            return lp_set_error(LP_EFORMAT, "JPEG: data ends before the image "
                                            "is complete (truncated file?)");
        }
        switch (m) {
        case 0xD8:
            return lp_set_error(LP_EFORMAT, "JPEG: duplicate SOI marker");
        case 0xD9: /* EOI */
            if (!d->have_frame || !d->seen_sos)
                return lp_set_error(LP_EFORMAT,
                                    "JPEG: EOI before any image data");
            if (!all_scanned(d))
                return lp_set_error(LP_EFORMAT, "JPEG: EOI before every "
                                                "component had a scan");
            return LP_OK;
        case 0xC0:
        case 0xC1:
        case 0xC2:
            LP_TRY(read_segment(d, m, &p, &n));
            LP_TRY(parse_sof(d, m, p, n));
            break;
        case 0xC3:
            return lp_set_error(LP_EFORMAT,
                                "JPEG: lossless JPEG (SOF3) is not supported");
        case 0xC5:
        case 0xC6:
        case 0xC7:
        case 0xDE:
        case 0xDF:
            return lp_set_error(LP_EFORMAT, "JPEG: hierarchical JPEG (marker "
                                            "0x%02X) is not supported", m);
        case 0xC9:
        case 0xCA:
        case 0xCB:
        case 0xCD:
        case 0xCE:
        case 0xCF:
            return lp_set_error(LP_EFORMAT, "JPEG: arithmetic coding (SOF%d) "
                                            "is not supported", m - 0xC0);
        case 0xC4:
            LP_TRY(read_segment(d, m, &p, &n));
            LP_TRY(parse_dht(d, p, n));
            break;
        case 0xDB:
            LP_TRY(read_segment(d, m, &p, &n));
            LP_TRY(parse_dqt(d, p, n));
            break;
        case 0xDD:
            LP_TRY(read_segment(d, m, &p, &n));
            if (n != 2)
                return lp_set_error(LP_EFORMAT, "JPEG: DRI segment length "
                                                "%zu (must be 4)", n + 2);
            d->restart_interval = (int)get16(p);
            break;
        case 0xDA:
            LP_TRY(read_segment(d, m, &p, &n));
            LP_TRY(parse_sos(d, p, n));
            d->seen_sos = 1;
            LP_TRY(do_scan(d));
            if (!d->progressive && all_scanned(d))
                return LP_OK; /* every sample is known */
            break;
        case 0x01: /* TEM and RSTn outside a scan carry no data */
        case 0xD0:
        case 0xD1:
        case 0xD2:
        case 0xD3:
        case 0xD4:
        case 0xD5:
        case 0xD6:
        case 0xD7:
            break;
        default:
            if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE || m == 0xDC ||
                m == 0xCC || (m >= 0xF0 && m <= 0xFD)) {
                /* APPn, COM, DNL, DAC, JPGn: skipped (APP0/APP14 noted) */
                LP_TRY(read_segment(d, m, &p, &n));
                parse_app(d, m, p, n);
                break;
            }
            return lp_set_error(LP_EFORMAT, "JPEG: unknown marker 0x%02X", m);
        }
    }
}

/* ---- upsampling and colour conversion --------------------------------- */

typedef enum {
    UP_COPY,      /* full resolution */
    UP_H2V1,      /* libjpeg's "fancy" triangular filters for 2:1 ratios */
    UP_H1V2,
    UP_H2V2,
    UP_REPLICATE  /* other integral ratios (and 2:1 on <= 2 samples) */
} upsample_kind;

/* How libjpeg-turbo (jinit_upsampler) upsamples this component; the
 * ratios are integers (parse_sof refuses others, as libjpeg does). */
static upsample_kind upsample_choose(const jpeg_decoder *d,
                                     const jpeg_component *c)
{
    int hr = d->hmax / c->h, vr = d->vmax / c->v;
    if (hr == 1 && vr == 1)
        return UP_COPY;
    if (hr == 2 && vr == 1)
        return c->width > 2 ? UP_H2V1 : UP_REPLICATE;
    if (hr == 1 && vr == 2)
        return UP_H1V2;
    if (hr == 2 && vr == 2)
        return c->width > 2 ? UP_H2V2 : UP_REPLICATE;
    return UP_REPLICATE;
}

/* The row of component samples nearest to output row y and its other
 * neighbour (above for even y, below for odd y), clamped at the edges. */
static void rows_v2(const jpeg_component *c, int y, const uint8_t **near,
                    const uint8_t **far)
{
    int iy = y >> 1, fy = (y & 1) ? iy + 1 : iy - 1;
    if (fy < 0)
        fy = 0;
    if (fy > c->height - 1)
        fy = c->height - 1;
    *near = c->plane + (size_t)iy * c->stride;
    *far = c->plane + (size_t)fy * c->stride;
}

/*
 * Output row y of component c at full resolution into out (which has room
 * for width + 1 samples). The 2:1 filters weight the nearer input sample
 * 3/4 and the other 1/4 in each direction, with libjpeg's alternating
 * rounding biases; the edge samples have themselves as outer neighbour.
 */
static void upsample_row(const jpeg_decoder *d, const jpeg_component *c,
                         upsample_kind kind, int y, uint8_t *out)
{
    int w = d->width, n = c->width;
    const uint8_t *in = c->plane, *far;
    switch (kind) {
    case UP_COPY:
        memcpy(out, in + (size_t)y * c->stride, (size_t)w);
        return;
    case UP_H2V1:
        in += (size_t)y * c->stride;
        out[0] = in[0];
        out[1] = (uint8_t)((in[0] * 3 + in[1] + 2) >> 2);
        for (int i = 1; i < n - 1; i++) {
            int t = in[i] * 3;
            out[2 * i] = (uint8_t)((t + in[i - 1] + 1) >> 2);
            out[2 * i + 1] = (uint8_t)((t + in[i + 1] + 2) >> 2);
        }
        out[2 * n - 2] = (uint8_t)((in[n - 1] * 3 + in[n - 2] + 1) >> 2);
        out[2 * n - 1] = in[n - 1];
        return;
    case UP_H1V2: {
        int bias = (y & 1) ? 2 : 1;
        rows_v2(c, y, &in, &far);
        for (int x = 0; x < w; x++)
            out[x] = (uint8_t)((in[x] * 3 + far[x] + bias) >> 2);
        return;
    }
    case UP_H2V2: {
        /* column sums of the vertical filter (x4), then horizontal (x4) */
        rows_v2(c, y, &in, &far);
        int prev = in[0] * 3 + far[0], cur = prev;
        for (int i = 0; i < n; i++) {
            int next = i + 1 < n ? in[i + 1] * 3 + far[i + 1] : cur;
            out[2 * i] = (uint8_t)((cur * 3 + prev + 8) >> 4);
            out[2 * i + 1] = (uint8_t)((cur * 3 + next + 7) >> 4);
            prev = cur;
            cur = next;
        }
        return;
    }
    case UP_REPLICATE: {
        int hr = d->hmax / c->h, vr = d->vmax / c->v;
        in += (size_t)(y / vr) * c->stride;
        for (int x = 0, i = 0; x < w; i++)
            for (int r = 0; r < hr && x < w; r++)
                out[x++] = in[i];
        return;
    }
    }
}

/* libjpeg's YCbCr -> RGB: 16-bit fixed point, rounded table entries. */
#define YCC_FIX(x) ((int32_t)((x) * 65536.0 + 0.5))

typedef struct {
    int32_t cr_r[256], cb_b[256], cr_g[256], cb_g[256];
} ycc_tables;

static void ycc_init(ycc_tables *t)
{
    for (int i = 0; i < 256; i++) {
        int32_t x = i - 128;
        t->cr_r[i] = (YCC_FIX(1.40200) * x + 32768) >> 16;
        t->cb_b[i] = (YCC_FIX(1.77200) * x + 32768) >> 16;
        t->cr_g[i] = -YCC_FIX(0.71414) * x;
        t->cb_g[i] = -YCC_FIX(0.34414) * x + 32768;
    }
}

static inline uint8_t clamp255(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void ycc_to_rgb(const ycc_tables *t, const uint8_t *y,
                       const uint8_t *cb, const uint8_t *cr, uint8_t *out,
                       int w)
{
    for (int x = 0; x < w; x++) {
        int yy = y[x];
        out[3 * x + 0] = clamp255(yy + t->cr_r[cr[x]]);
        out[3 * x + 1] = clamp255(yy + ((t->cb_g[cb[x]] + t->cr_g[cr[x]]) >> 16));
        out[3 * x + 2] = clamp255(yy + t->cb_b[cb[x]]);
    }
}

/* libjpeg's guess of the colour space of a 3-component file. */
static int is_rgb(const jpeg_decoder *d)
{
    if (d->jfif)
        return 0;
    if (d->adobe)
        return d->adobe_transform == 0;
    return d->comp[0].id == 'R' && d->comp[1].id == 'G' &&
           d->comp[2].id == 'B';
}

/* Progressive: turn the coefficients into samples. */
static int idct_planes(jpeg_decoder *d)
{
    for (int i = 0; i < d->ncomp; i++) {
        jpeg_component *c = &d->comp[i];
        size_t bytes = (size_t)c->bw_mcu * (size_t)c->bh_mcu * 64;
        c->plane = (uint8_t *)lp_calloc(bytes, 1);
        if (c->plane == NULL)
            return lp_set_error(LP_ENOMEM,
                                "JPEG: out of memory for %zu samples", bytes);
        for (int by = 0; by < c->bh; by++)
            for (int bx = 0; bx < c->bw; bx++)
                idct_block(coef_block(c, bx, by), c->quant,
                           c->plane + (size_t)by * 8 * c->stride +
                               (size_t)bx * 8,
                           c->stride);
        lp_free(c->coef);
        c->coef = NULL;
    }
    return LP_OK;
}

static int emit_image(jpeg_decoder *d, lp_image *img)
{
    int w = d->width, h = d->height, channels = d->ncomp == 1 ? 1 : 3;
    size_t row_bytes = (size_t)w * (size_t)channels;
    uint8_t *pixels, *rows = NULL;
    if (d->progressive)
        LP_TRY(idct_planes(d));
    pixels = (uint8_t *)lp_alloc(row_bytes * (size_t)h, 1);
    if (pixels == NULL)
        return lp_set_error(LP_ENOMEM, "JPEG: out of memory for %dx%d pixels",
                            w, h);
    if (channels == 1) {
        /* a single component is never subsampled */
        for (int y = 0; y < h; y++)
            memcpy(pixels + (size_t)y * row_bytes,
                   d->comp[0].plane + (size_t)y * d->comp[0].stride,
                   (size_t)w);
    } else {
        size_t rlen = (size_t)w + 2;
        upsample_kind kind[3];
        ycc_tables t;
        int rgb = is_rgb(d);
        rows = (uint8_t *)lp_alloc(3 * rlen, 1);
        if (rows == NULL) {
            lp_free(pixels);
            return lp_set_error(LP_ENOMEM, "JPEG: out of memory");
        }
        for (int i = 0; i < 3; i++)
            kind[i] = upsample_choose(d, &d->comp[i]);
        ycc_init(&t);
        for (int y = 0; y < h; y++) {
            uint8_t *out = pixels + (size_t)y * row_bytes;
            for (int i = 0; i < 3; i++)
                upsample_row(d, &d->comp[i], kind[i], y, rows + i * rlen);
            if (rgb) {
                for (int x = 0; x < w; x++)
                    for (int i = 0; i < 3; i++)
                        out[3 * x + i] = rows[i * rlen + (size_t)x];
            } else {
                ycc_to_rgb(&t, rows, rows + rlen, rows + 2 * rlen, out, w);
            }
        }
        lp_free(rows);
    }
    img->width = w;
    img->height = h;
    img->channels = channels;
    img->pixels = pixels;
    return LP_OK;
}

/* ---- entry point ------------------------------------------------------ */

int lp_jpeg_decode(lp_image *img, const uint8_t *data, size_t size)
{
    jpeg_decoder *d;
    int rc;
    if (img == NULL)
        return lp_set_error(LP_EINVAL, "lp_jpeg_decode: img is NULL");
    img->width = img->height = img->channels = 0;
    img->pixels = NULL;
    if (data == NULL && size != 0)
        return lp_set_error(LP_EINVAL, "lp_jpeg_decode: data is NULL");
    if (size < 2 || data[0] != 0xFF || data[1] != 0xD8)
        return lp_set_error(LP_EFORMAT,
                            "JPEG: missing SOI marker (not a JPEG file)");
    d = (jpeg_decoder *)lp_calloc(1, sizeof *d);
    if (d == NULL)
        return lp_set_error(LP_ENOMEM, "JPEG: out of memory");
    d->data = data;
    d->size = size;
    rc = decode_stream(d);
    if (rc == LP_OK)
        rc = emit_image(d, img);
    for (int i = 0; i < JPEG_MAX_COMPONENTS; i++) {
        lp_free(d->comp[i].plane);
        lp_free(d->comp[i].coef);
    }
    lp_free(d);
    return rc;
}
