/*
 * pnm.c — Netpbm decoder: P1/P4 (bitmap), P2/P5 (grey), P3/P6 (RGB), plain
 * (ASCII) and raw (binary), any maxval 1..65535, matching Pillow 9.4's
 * PpmImagePlugin.
 *
 * Header: magic, then width, height and (except for bitmaps) maxval as
 * decimal tokens of at most 10 digits separated by whitespace (space, \t,
 * \n, \v, \f, \r). A '#' starts a comment up to the next CR or LF; it may
 * sit anywhere, even inside a token, which then continues after it (as
 * the Netpbm spec and Pillow have it). Exactly one whitespace byte
 * separates the last header token from a raw raster.
 *
 * Output: 1 channel for P1/P2/P4/P5, 3 for P3/P6. Samples become 8 bits as
 * Pillow's decode followed by convert("L"/"RGB") gives them, where round()
 * is Python's (half to even) of the double v / maxval * scale:
 *   - bitmaps: bit 1 = black (0), bit 0 = white (255);
 *   - maxval 255: the byte itself;
 *   - raw, maxval != 255 (except 16-bit grey): min(255, round(v/maxval*255));
 *   - plain, maxval <= 255 or RGB: round(v/maxval*255), v > maxval is an
 *     error;
 *   - 16-bit GREY (P2/P5 with maxval > 255): Pillow makes a 32-bit "I"
 *     image of round(v/maxval*65535) (the value itself for P5 at 65535)
 *     and convert("L") then CLAMPS it to 255 rather than scaling it, so
 *     nearly every pixel comes out 255. We reproduce that oddity for
 *     parity with Pillow-based pipelines.
 * Raw 16-bit samples are big-endian. Data after the raster is ignored; a
 * short raster is an error.
 *
 * Deliberate differences from Pillow on malformed headers: tokens must be
 * plain decimal digits (Python's int() would also take "+5" or "1_0"), and
 * a zero width or height is an error.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    int kind;         /* 1..6 from the magic */
    uint32_t width, height, maxval;
    int channels;
} pnm_header;

static int is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/* Skip a comment whose '#' was just read: up to and including CR or LF. */
static void skip_comment(const uint8_t *d, size_t n, size_t *pos)
{
    while (*pos < n) {
        uint8_t c = d[(*pos)++];
        if (c == '\r' || c == '\n')
            break;
    }
}

/* One decimal token; consumes the whitespace byte that ends it. End of
 * data also ends a token; with no digit read at all it is an error. */
static int read_token(const uint8_t *d, size_t n, size_t *pos, uint64_t *value,
                      const char *what)
{
    int len = 0;
    uint64_t v = 0;
    while (*pos < n) {
        uint8_t c = d[(*pos)++];
        if (is_ws(c)) {
            if (len == 0)
                continue;
            break;
        }
        if (c == '#') {
            skip_comment(d, n, pos);
            continue;
        }
        if (c < '0' || c > '9')
            return lp_set_error(LP_EFORMAT, "PNM: invalid character 0x%02x "
                                "in the %s", c, what);
        if (++len > 10)
            return lp_set_error(LP_EFORMAT, "PNM: number longer than 10 "
                                "digits in the %s", what);
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (len == 0)
        return lp_set_error(LP_EFORMAT, "PNM: file ends in the %s "
                            "(truncated)", what);
    *value = v;
    return LP_OK;
}

static int parse_header(pnm_header *h, const uint8_t *d, size_t n,
                        size_t *pos)
{
    uint64_t w, ht, maxval = 1;
    if (n < 2 || d[0] != 'P' || d[1] < '1' || d[1] > '6')
        return lp_set_error(LP_EFORMAT, "PNM: bad signature (not a "
                            "PBM/PGM/PPM file)");
    if (n < 3 || !is_ws(d[2]))
        return lp_set_error(LP_EFORMAT, "PNM: the magic number is not "
                            "followed by whitespace");
    h->kind = d[1] - '0';
    *pos = 3;
    LP_TRY(read_token(d, n, pos, &w, "width"));
    LP_TRY(read_token(d, n, pos, &ht, "height"));
    if (h->kind != 1 && h->kind != 4) {
        LP_TRY(read_token(d, n, pos, &maxval, "maxval"));
        if (maxval == 0 || maxval > 65535)
            return lp_set_error(LP_EFORMAT, "PNM: maxval %llu is not in "
                                "1..65535", (unsigned long long)maxval);
    }
    if (w == 0 || ht == 0)
        return lp_set_error(LP_EFORMAT, "PNM: image is %llux%llu (zero size)",
                            (unsigned long long)w, (unsigned long long)ht);
    if (w > LP_IMAGE_MAX_SIDE || ht > LP_IMAGE_MAX_SIDE ||
        w * ht > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_ERANGE, "PNM: image is %llux%llu, beyond the "
                            "supported %d per side and %zu pixels",
                            (unsigned long long)w, (unsigned long long)ht,
                            LP_IMAGE_MAX_SIDE, LP_IMAGE_MAX_PIXELS);
    h->width = (uint32_t)w;
    h->height = (uint32_t)ht;
    h->maxval = (uint32_t)maxval;
    h->channels = (h->kind == 3 || h->kind == 6) ? 3 : 1;
    return LP_OK;
}

/* Python's round(v / maxval * scale), half to even (the default rounding
 * mode; nearbyint does not raise inexact). */
static double py_round_scale(uint32_t v, uint32_t maxval, double scale)
{
    return nearbyint((double)v / (double)maxval * scale);
}

/* Output byte for sample value v (see the top of the file). */
static uint8_t map_sample(const pnm_header *h, uint32_t v, int plain)
{
    double x;
    int grey16 = h->maxval > 255 && h->channels == 1;
    if (h->maxval == 255)
        return (uint8_t)(v > 255 ? 255 : v);
    if (grey16) {
        if (!plain && h->maxval == 65535)
            x = v; /* read as raw "I;16B" */
        else
            x = py_round_scale(v, h->maxval, 65535.0);
    } else {
        x = py_round_scale(v, h->maxval, 255.0);
    }
    return (uint8_t)(x > 255.0 ? 255.0 : x);
}

static int decode_raw(const pnm_header *h, const uint8_t *d, size_t n,
                      size_t pos, uint8_t *out)
{
    size_t count = (size_t)h->width * h->height * (size_t)h->channels;
    int wide = h->maxval > 255;
    size_t need = wide ? 2 * count : count;
    uint8_t *lut;
    size_t lut_size = wide ? 65536 : 256;
    if (n - pos < need)
        return lp_set_error(LP_EFORMAT, "PNM: raster shorter than the header "
                            "implies (needed %zu bytes, got %zu)", need,
                            n - pos);
    lut = lp_alloc(lut_size, 1);
    if (lut == NULL)
        return LP_ENOMEM;
    for (size_t v = 0; v < lut_size; v++)
        lut[v] = map_sample(h, (uint32_t)v, 0);
    d += pos;
    if (wide) {
        for (size_t i = 0; i < count; i++)
            out[i] = lut[((size_t)d[2 * i] << 8) | d[2 * i + 1]];
    } else {
        for (size_t i = 0; i < count; i++)
            out[i] = lut[d[i]];
    }
    lp_free(lut);
    return LP_OK;
}

static int decode_pbm_raw(const pnm_header *h, const uint8_t *d, size_t n,
                          size_t pos, uint8_t *out)
{
    size_t row = ((size_t)h->width + 7) / 8, need = row * h->height;
    if (n - pos < need)
        return lp_set_error(LP_EFORMAT, "PNM: raster shorter than the header "
                            "implies (needed %zu bytes, got %zu)", need,
                            n - pos);
    for (uint32_t y = 0; y < h->height; y++) {
        const uint8_t *src = d + pos + (size_t)y * row;
        for (uint32_t x = 0; x < h->width; x++)
            *out++ = ((src[x / 8] >> (7 - x % 8)) & 1u) ? 0 : 255;
    }
    return LP_OK;
}

/* Plain (ASCII) rasters: one token per sample; P1 digits need no
 * separators. */
static int decode_plain(const pnm_header *h, const uint8_t *d, size_t n,
                        size_t pos, uint8_t *out)
{
    size_t count = (size_t)h->width * h->height * (size_t)h->channels;
    if (h->kind == 1) {
        size_t i = 0;
        while (i < count) {
            uint8_t c;
            if (pos >= n)
                return lp_set_error(LP_EFORMAT, "PNM: raster ends after %zu "
                                    "of %zu pixels (truncated)", i, count);
            c = d[pos++];
            if (is_ws(c))
                continue;
            if (c == '#') {
                skip_comment(d, n, &pos);
                continue;
            }
            if (c != '0' && c != '1')
                return lp_set_error(LP_EFORMAT, "PNM: invalid character "
                                    "0x%02x in a plain bitmap", c);
            out[i++] = c == '1' ? 0 : 255;
        }
        return LP_OK;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t v;
        LP_TRY(read_token(d, n, &pos, &v, "raster"));
        if (v > h->maxval)
            return lp_set_error(LP_EFORMAT, "PNM: sample %llu exceeds maxval "
                                "%u", (unsigned long long)v, h->maxval);
        out[i] = map_sample(h, (uint32_t)v, 1);
    }
    return LP_OK;
}

/* Before allocating: the bytes left must be able to hold the raster (a
 * plain sample takes at least one byte). */
static int check_raster_size(const pnm_header *h, size_t left)
{
    size_t count = (size_t)h->width * h->height * (size_t)h->channels, need;
    if (h->kind == 4)
        need = ((size_t)h->width + 7) / 8 * h->height;
    else if (h->kind >= 5)
        need = h->maxval > 255 ? 2 * count : count;
    else
        need = count;
    if (left < need)
        return lp_set_error(LP_EFORMAT, "PNM: raster shorter than the header "
                            "implies (needed %s%zu bytes, got %zu)",
                            h->kind <= 3 ? "at least " : "", need, left);
    return LP_OK;
}

int lp_pnm_decode(lp_image *img, const uint8_t *data, size_t size)
{
    pnm_header h;
    size_t pos = 0;
    uint8_t *pixels;
    int rc;

    if (img == NULL)
        return lp_set_error(LP_EINVAL, "lp_pnm_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (data == NULL && size > 0)
        return lp_set_error(LP_EINVAL, "lp_pnm_decode: NULL data");
    memset(&h, 0, sizeof h);
    LP_TRY(parse_header(&h, data, size, &pos));
    LP_TRY(check_raster_size(&h, size - pos));
    LP_TRY(lp_memory_check_image("PNM", h.width, h.height,
                                 (size_t)h.width * h.height * h.channels));
    pixels = lp_alloc((size_t)h.width * h.height, (size_t)h.channels);
    if (pixels == NULL)
        return LP_ENOMEM;
    if (h.kind == 4)
        rc = decode_pbm_raw(&h, data, size, pos, pixels);
    else if (h.kind >= 5)
        rc = decode_raw(&h, data, size, pos, pixels);
    else
        rc = decode_plain(&h, data, size, pos, pixels);
    if (rc != LP_OK) {
        lp_free(pixels);
        return rc;
    }
    img->width = (int)h.width;
    img->height = (int)h.height;
    img->channels = h.channels;
    img->pixels = pixels;
    return LP_OK;
}
