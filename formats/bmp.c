/*
 * bmp.c — Windows BMP decoder, matching Pillow 9.4's BmpImagePlugin.
 *
 * Supported, as Pillow reads them:
 *   headers: OS/2 1.x (12 bytes), BITMAPINFOHEADER (40), OS/2 2.x (64),
 *            BITMAPV4HEADER (108), BITMAPV5HEADER (124)
 *   1, 4, 8 bits: palette (BI_RGB)
 *   16 bits: 5-5-5 (BI_RGB), BI_BITFIELDS 5-6-5 or 5-5-5
 *   24 bits: BGR (BI_RGB; BI_BITFIELDS with the standard masks)
 *   32 bits: BI_RGB = BGR + unused byte; BI_BITFIELDS with one of the byte
 *            layouts Pillow knows (BGRX, XBGR, ABGR, RGBA, BGRA, and
 *            all-zero masks meaning BGRA)
 *   bottom-up (positive height) and top-down (negative height) rows,
 *   rows padded to 4 bytes.
 * Output: RGBA (4 channels) when Pillow gives RGBA, i.e. 32-bit
 * BI_BITFIELDS with an alpha byte; RGB (3 channels) for everything else,
 * palette and grey files included (Pillow gives "P", "L" or "1" there and
 * .convert("RGB") equals our palette lookup).
 * 5- and 6-bit fields expand as v * 255 / 31 (or 63), truncated, like
 * Pillow's unpackers.
 *
 * Not supported (LP_EFORMAT with a message): RLE4/RLE8 compression,
 * embedded JPEG/PNG, other bitfield layouts, other header sizes.
 *
 * Two deliberate differences from Pillow, both on odd files: Pillow
 * decides a palette file is greyscale when its palette is exactly 0..n-1
 * grey (or black/white for two colours) and then unpacks the pixels as
 * 8-bit (or 1-bit) grey whatever the file's bit depth: it refuses a 4-bit
 * file with a 16-entry 0..15 ramp ("codec configuration error") and
 * garbles an 8-bit file with a 2-entry black/white palette. We always
 * use the palette, which gives the same pixels in every case Pillow
 * decodes correctly. And a palette longer than 256 entries is an error
 * here.
 *
 * Palette indices beyond the palette give grey (i, i, i), as in Pillow.
 */
#include "internal.h"

#include <string.h>

static uint32_t rd16le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3 };

typedef enum {
    PIX_PALETTE,  /* 1/4/8 bits */
    PIX_555,      /* 16 bits, x-r5-g5-b5 */
    PIX_565,      /* 16 bits, r5-g6-b5 */
    PIX_BYTES     /* 24/32 bits: channels at byte offsets */
} pixel_kind;

typedef struct {
    uint32_t width, height;
    int top_down;
    int bits, compression;
    uint32_t colors;
    pixel_kind kind;
    int off_r, off_g, off_b, off_a; /* byte offsets for PIX_BYTES; a < 0: none */
    int channels;
    uint8_t palette[256][3];
} bmp_info;

/* The 32-bit bitfield layouts Pillow accepts, and where each channel
 * lives (byte offsets in the little-endian pixel). */
static const struct {
    uint32_t r, g, b, a;
    int off_r, off_g, off_b, off_a;
} layouts32[] = {
    {0xFF0000u, 0xFF00u, 0xFFu, 0u, 2, 1, 0, -1},              /* BGRX */
    {0xFF000000u, 0xFF0000u, 0xFF00u, 0u, 3, 2, 1, -1},        /* XBGR */
    {0xFF000000u, 0xFF0000u, 0xFF00u, 0xFFu, 3, 2, 1, 0},      /* ABGR */
    {0xFFu, 0xFF00u, 0xFF0000u, 0xFF000000u, 0, 1, 2, 3},      /* RGBA */
    {0xFF0000u, 0xFF00u, 0xFFu, 0xFF000000u, 2, 1, 0, 3},      /* BGRA */
    {0u, 0u, 0u, 0u, 2, 1, 0, 3},                              /* BGRA */
};

static int read_masks(bmp_info *b, const uint8_t *data, size_t size,
                      uint32_t hsize)
{
    uint32_t r, g, bl, a = 0;
    /* three masks follow a 40-byte header, or sit inside larger ones (Pillow
     * reads them at the same place, offset 54, either way) */
    if (size < 54 + 12)
        return lp_set_error(LP_EFORMAT, "BMP: file ends inside the "
                            "bitfield masks (truncated)");
    r = rd32le(data + 54);
    g = rd32le(data + 58);
    bl = rd32le(data + 62);
    if (hsize >= 56)
        a = rd32le(data + 66);
    if (b->bits == 32) {
        for (size_t i = 0; i < sizeof layouts32 / sizeof layouts32[0]; i++) {
            if (layouts32[i].r == r && layouts32[i].g == g &&
                layouts32[i].b == bl && layouts32[i].a == a) {
                b->kind = PIX_BYTES;
                b->off_r = layouts32[i].off_r;
                b->off_g = layouts32[i].off_g;
                b->off_b = layouts32[i].off_b;
                b->off_a = layouts32[i].off_a;
                b->channels = b->off_a >= 0 ? 4 : 3;
                return LP_OK;
            }
        }
    } else if (b->bits == 24) {
        if (r == 0xFF0000u && g == 0xFF00u && bl == 0xFFu) {
            b->kind = PIX_BYTES;
            return LP_OK; /* offsets already BGR */
        }
    } else if (b->bits == 16) {
        if (r == 0xF800u && g == 0x7E0u && bl == 0x1Fu) {
            b->kind = PIX_565;
            return LP_OK;
        }
        if (r == 0x7C00u && g == 0x3E0u && bl == 0x1Fu) {
            b->kind = PIX_555;
            return LP_OK;
        }
    }
    return lp_set_error(LP_EFORMAT, "BMP: unsupported %d-bit bitfields "
                        "layout (masks 0x%x 0x%x 0x%x 0x%x)", b->bits, r, g,
                        bl, a);
}

/* Parse the headers; *pixel_offset receives where the rows start. */
static int parse_header(bmp_info *b, const uint8_t *data, size_t size,
                        size_t *pixel_offset)
{
    uint32_t hsize, off_bits;
    size_t pal_pos, entry;
    if (size < 18)
        return lp_set_error(LP_EFORMAT, "BMP: file of %zu bytes is too short "
                            "(truncated)", size);
    off_bits = rd32le(data + 10);
    hsize = rd32le(data + 14);
    if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 &&
        hsize != 124)
        return lp_set_error(LP_EFORMAT, "BMP: unsupported header size %u",
                            hsize);
    if (size < 14 + (size_t)hsize)
        return lp_set_error(LP_EFORMAT, "BMP: file ends inside the %u-byte "
                            "header (truncated)", hsize);
    if (hsize == 12) {
        b->width = rd16le(data + 18);
        b->height = rd16le(data + 20);
        b->bits = (int)rd16le(data + 24);
        b->compression = BI_RGB;
        entry = 3;
    } else {
        int32_t h = (int32_t)rd32le(data + 22);
        b->width = rd32le(data + 18);
        if (h < 0) {
            if (h == INT32_MIN)
                return lp_set_error(LP_EFORMAT, "BMP: invalid height");
            b->top_down = 1;
            h = -h;
        }
        b->height = (uint32_t)h;
        b->bits = (int)rd16le(data + 28);
        b->compression = (int)rd32le(data + 30);
        b->colors = rd32le(data + 46);
        entry = 4;
    }
    if (b->width == 0 || b->height == 0)
        return lp_set_error(LP_EFORMAT, "BMP: image is %ux%u (zero size)",
                            b->width, b->height);
    if (b->width > LP_IMAGE_MAX_SIDE || b->height > LP_IMAGE_MAX_SIDE ||
        (size_t)b->width * b->height > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_ERANGE, "BMP: image is %ux%u, beyond the "
                            "supported %d per side and %zu pixels", b->width,
                            b->height, LP_IMAGE_MAX_SIDE,
                            LP_IMAGE_MAX_PIXELS);
    if (b->bits != 1 && b->bits != 4 && b->bits != 8 && b->bits != 16 &&
        b->bits != 24 && b->bits != 32)
        return lp_set_error(LP_EFORMAT, "BMP: unsupported bit depth %d",
                            b->bits);

    b->channels = 3;
    b->off_r = 2;
    b->off_g = 1;
    b->off_b = 0;
    b->off_a = -1;
    b->kind = b->bits <= 8 ? PIX_PALETTE : b->bits == 16 ? PIX_555 : PIX_BYTES;
    if (b->compression == BI_BITFIELDS) {
        if (b->bits < 16)
            return lp_set_error(LP_EFORMAT, "BMP: bitfields with %d bits per "
                                "pixel", b->bits);
        LP_TRY(read_masks(b, data, size, hsize));
    } else if (b->compression == BI_RLE8 || b->compression == BI_RLE4) {
        return lp_set_error(LP_EFORMAT, "BMP: RLE compression is not "
                            "supported");
    } else if (b->compression != BI_RGB) {
        return lp_set_error(LP_EFORMAT, "BMP: unsupported compression %d",
                            b->compression);
    }

    /* palette: right after the header; colors == 0 means 2^bits */
    pal_pos = 14 + (size_t)hsize;
    if (b->compression == BI_BITFIELDS && hsize == 40)
        pal_pos += 12;
    if (b->colors == 0 && b->bits <= 8)
        b->colors = 1u << b->bits;
    for (int i = 0; i < 256; i++) /* indices past the palette: grey */
        b->palette[i][0] = b->palette[i][1] = b->palette[i][2] = (uint8_t)i;
    if (b->kind == PIX_PALETTE) {
        if (b->colors > 256)
            return lp_set_error(LP_EFORMAT, "BMP: palette of %u colours "
                                "(at most 256 supported)", b->colors);
        if (size < pal_pos || (size - pal_pos) / entry < b->colors)
            return lp_set_error(LP_EFORMAT, "BMP: file ends inside the "
                                "%u-colour palette (truncated)", b->colors);
        for (uint32_t i = 0; i < b->colors; i++) {
            const uint8_t *e = data + pal_pos + i * entry; /* B, G, R (, 0) */
            b->palette[i][0] = e[2];
            b->palette[i][1] = e[1];
            b->palette[i][2] = e[0];
        }
        pal_pos += b->colors * entry;
    }

    /* Pillow: bfOffBits, corrected when it ignores the palette, or the end
     * of the palette when it is 0 */
    *pixel_offset = off_bits;
    if (b->bits <= 8 && off_bits == 14 + hsize)
        *pixel_offset += 4 * (size_t)b->colors;
    if (off_bits == 0)
        *pixel_offset = pal_pos;
    return LP_OK;
}

static void convert_row(const bmp_info *b, const uint8_t *src, uint8_t *dst)
{
    const uint32_t w = b->width;
    switch (b->kind) {
    case PIX_PALETTE: {
        const int bits = b->bits;
        const unsigned mask = (1u << bits) - 1u;
        for (uint32_t x = 0; x < w; x++) {
            size_t bit = (size_t)x * (size_t)bits;
            unsigned v = (src[bit / 8] >> (8 - bits - (int)(bit % 8))) & mask;
            memcpy(dst + 3 * (size_t)x, b->palette[v], 3);
        }
        break;
    }
    case PIX_555:
        for (uint32_t x = 0; x < w; x++, dst += 3) {
            uint32_t v = rd16le(src + 2 * (size_t)x);
            dst[0] = (uint8_t)(((v >> 10) & 31u) * 255u / 31u);
            dst[1] = (uint8_t)(((v >> 5) & 31u) * 255u / 31u);
            dst[2] = (uint8_t)((v & 31u) * 255u / 31u);
        }
        break;
    case PIX_565:
        for (uint32_t x = 0; x < w; x++, dst += 3) {
            uint32_t v = rd16le(src + 2 * (size_t)x);
            dst[0] = (uint8_t)(((v >> 11) & 31u) * 255u / 31u);
            dst[1] = (uint8_t)(((v >> 5) & 63u) * 255u / 63u);
            dst[2] = (uint8_t)((v & 31u) * 255u / 31u);
        }
        break;
    case PIX_BYTES: {
        const size_t step = (size_t)b->bits / 8;
        for (uint32_t x = 0; x < w; x++, src += step) {
            *dst++ = src[b->off_r];
            *dst++ = src[b->off_g];
            *dst++ = src[b->off_b];
            if (b->off_a >= 0)
                *dst++ = src[b->off_a];
        }
        break;
    }
    }
}

int lp_bmp_decode(lp_image *img, const uint8_t *data, size_t size)
{
    bmp_info *b;
    size_t offset = 0, stride, need = 0;
    uint8_t *pixels;
    int rc;

    if (img == NULL)
        return lp_set_error(LP_EINVAL, "lp_bmp_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (data == NULL && size > 0)
        return lp_set_error(LP_EINVAL, "lp_bmp_decode: NULL data");
    if (size < 2 || data[0] != 'B' || data[1] != 'M')
        return lp_set_error(LP_EFORMAT, "BMP: bad signature (not a BMP "
                            "file)");
    b = lp_calloc(1, sizeof *b);
    if (b == NULL)
        return LP_ENOMEM;
    rc = parse_header(b, data, size, &offset);
    if (rc != LP_OK) {
        lp_free(b);
        return rc;
    }
    /* rows are padded to 4 bytes; width <= 65535 keeps this small */
    stride = (((size_t)b->width * (size_t)b->bits + 31) / 32) * 4;
    if (!lp_mul_size(stride, b->height, &need) || offset > size ||
        size - offset < need) {
        rc = lp_set_error(LP_EFORMAT, "BMP: pixel data shorter than the "
                          "header implies (needed %zu bytes at offset %zu, "
                          "file has %zu)", need, offset, size);
        lp_free(b);
        return rc;
    }
    rc = lp_memory_check_image("BMP", b->width, b->height,
                               (size_t)b->width * b->height * b->channels);
    pixels = rc == LP_OK ? lp_alloc((size_t)b->width * b->height, (size_t)b->channels)
                         : NULL;
    if (pixels == NULL) {
        lp_free(b);
        return rc == LP_OK ? LP_ENOMEM : rc;
    }
    for (uint32_t y = 0; y < b->height; y++) {
        uint32_t file_row = b->top_down ? y : b->height - 1 - y;
        convert_row(b, data + offset + (size_t)file_row * stride,
                    pixels + (size_t)y * b->width * (size_t)b->channels);
    }
    img->width = (int)b->width;
    img->height = (int)b->height;
    img->channels = b->channels;
    img->pixels = pixels;
    lp_free(b);
    return LP_OK;
}
