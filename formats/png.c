/*
 * png.c — PNG decoder (ISO/IEC 15948 / PNG 1.2): every colour type and bit
 * depth, Adam7 interlacing, the five filters, any number of IDAT chunks.
 *
 * Output (8 bits per sample), chosen to equal what Pillow 9.4 gives for
 * Image.open(f).convert(mode) with the mode of the same channel count:
 *   colour type 0 grey         -> 1 channel ("L")
 *   colour type 2 RGB          -> 3 channels ("RGB")
 *   colour type 3 palette      -> 3 channels, or 4 when a tRNS chunk is
 *                                 present ("RGB" / "RGBA")
 *   colour type 4 grey+alpha   -> 2 channels ("LA")
 *   colour type 6 RGBA         -> 4 channels ("RGBA")
 * Sample conversion, all as Pillow does it:
 *   - 1/2/4-bit grey is scaled to 0..255 (x 255, 85, 17).
 *   - 16-bit samples keep their high byte, EXCEPT 16-bit grey (colour type
 *     0): Pillow opens it as a 32-bit integer image (mode "I") and its
 *     conversion to 8 bits CLAMPS the 16-bit value to 0..255 instead of
 *     scaling it, so any value >= 255 becomes 255. We reproduce that, odd
 *     as it is, so that loupe sees the same pixels as a Pillow/torchvision
 *     pipeline would.
 *   - Palette indices beyond the PLTE entries give grey (i, i, i), alpha
 *     255 (Pillow's palettes start as a grey ramp). tRNS alphas apply to
 *     the first entries; entries past its end are opaque.
 *   - tRNS on grey and RGB images (a colour key) is ignored: the output
 *     keeps 1 or 3 channels, like Pillow's convert("L") / convert("RGB").
 *   - Gamma, colour profiles and the like (gAMA, cHRM, sRGB, iCCP) are
 *     ignored, as Pillow does when decoding.
 *
 * Validation: the signature; chunk lengths against the file size; every
 * chunk's CRC (a mismatch is an error, even in ancillary chunks); IHDR
 * first and well-formed; unknown critical chunks are rejected; PLTE/tRNS
 * before the IDATs; IDATs consecutive; IEND present (so a truncated file
 * is always an error). Sizes beyond LP_IMAGE_MAX_SIDE/LP_IMAGE_MAX_PIXELS
 * are refused before any allocation, and so is image data that could not
 * possibly inflate to the size IHDR implies (DEFLATE expands at most
 * 1032:1), which stops decompression bombs from tiny files. The inflated
 * data must be exactly the size IHDR implies.
 *
 * Deliberately stricter than Pillow, which stops reading once it has all
 * the rows and does not check the CRCs of IDAT chunks: we reject image
 * data longer than IHDR implies, a missing or wrong Adler-32, a missing
 * IEND, a bad CRC in any chunk, unknown critical chunks, and PLTE/tRNS
 * after the image data. Bytes after IEND are ignored.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G',
                                         0x0D, 0x0A, 0x1A, 0x0A};

typedef struct {
    uint32_t width, height;
    int depth, color_type, interlace;
    int samples;        /* samples per pixel in the file */
    int bits_per_pixel; /* depth * samples */
    int channels;       /* output channels */
    uint8_t palette[256][4];
    int palette_size;   /* PLTE entries (0 = no PLTE) */
    int has_trns;
    /* the IDAT payloads, concatenated (points into the file when there is
     * a single IDAT chunk) */
    const uint8_t *idat;
    size_t idat_size;
    uint8_t *idat_owned;
} png_info;

static uint32_t rd32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static int is_letter(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Chunk type as printable text for messages (non-letters as '?'). */
static void type_text(const uint8_t *t, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = is_letter(t[i]) ? (char)t[i] : '?';
    out[4] = '\0';
}

/* ---- header ------------------------------------------------------------- */

static int parse_ihdr(png_info *p, const uint8_t *d, uint32_t len)
{
    int d_ok;
    if (len != 13)
        return lp_set_error(LP_EFORMAT, "PNG: IHDR chunk is %u bytes, not 13",
                            len);
    p->width = rd32be(d);
    p->height = rd32be(d + 4);
    p->depth = d[8];
    p->color_type = d[9];
    if (p->width == 0 || p->height == 0)
        return lp_set_error(LP_EFORMAT, "PNG: image is %ux%u (zero size)",
                            p->width, p->height);
    if (p->width > 0x7FFFFFFFu || p->height > 0x7FFFFFFFu)
        return lp_set_error(LP_EFORMAT, "PNG: invalid image size %ux%u",
                            p->width, p->height);
    if (p->width > LP_IMAGE_MAX_SIDE || p->height > LP_IMAGE_MAX_SIDE ||
        (size_t)p->width * p->height > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_ERANGE, "PNG: image is %ux%u, beyond the "
                            "supported %d per side and %zu pixels",
                            p->width, p->height, LP_IMAGE_MAX_SIDE,
                            LP_IMAGE_MAX_PIXELS);
    switch (p->color_type) {
    case 0:
        p->samples = 1;
        p->channels = 1;
        d_ok = p->depth == 1 || p->depth == 2 || p->depth == 4 ||
               p->depth == 8 || p->depth == 16;
        break;
    case 2:
        p->samples = 3;
        p->channels = 3;
        d_ok = p->depth == 8 || p->depth == 16;
        break;
    case 3:
        p->samples = 1;
        p->channels = 3; /* 4 once a tRNS chunk turns up */
        d_ok = p->depth == 1 || p->depth == 2 || p->depth == 4 ||
               p->depth == 8;
        break;
    case 4:
        p->samples = 2;
        p->channels = 2;
        d_ok = p->depth == 8 || p->depth == 16;
        break;
    case 6:
        p->samples = 4;
        p->channels = 4;
        d_ok = p->depth == 8 || p->depth == 16;
        break;
    default:
        return lp_set_error(LP_EFORMAT, "PNG: invalid colour type %d",
                            p->color_type);
    }
    if (!d_ok)
        return lp_set_error(LP_EFORMAT, "PNG: bit depth %d is not allowed "
                            "for colour type %d", p->depth, p->color_type);
    p->bits_per_pixel = p->depth * p->samples;
    if (d[10] != 0)
        return lp_set_error(LP_EFORMAT, "PNG: unknown compression method %d",
                            d[10]);
    if (d[11] != 0)
        return lp_set_error(LP_EFORMAT, "PNG: unknown filter method %d",
                            d[11]);
    if (d[12] > 1)
        return lp_set_error(LP_EFORMAT, "PNG: unknown interlace method %d",
                            d[12]);
    p->interlace = d[12];
    return LP_OK;
}

static int parse_plte(png_info *p, const uint8_t *d, uint32_t len)
{
    if (p->color_type != 3)
        return LP_OK; /* a suggested palette for true colour, or misplaced
                         in grey images: not needed to decode */
    if (p->palette_size > 0)
        return lp_set_error(LP_EFORMAT, "PNG: more than one PLTE chunk");
    if (len == 0 || len % 3 != 0 || len > 768)
        return lp_set_error(LP_EFORMAT, "PNG: PLTE chunk of %u bytes is not "
                            "1 to 256 RGB entries", len);
    p->palette_size = (int)(len / 3);
    for (int i = 0; i < p->palette_size; i++) {
        p->palette[i][0] = d[3 * i];
        p->palette[i][1] = d[3 * i + 1];
        p->palette[i][2] = d[3 * i + 2];
    }
    return LP_OK;
}

static int parse_trns(png_info *p, const uint8_t *d, uint32_t len)
{
    if (p->color_type != 3)
        return LP_OK; /* colour keys are ignored (see the top) */
    if (p->has_trns)
        return lp_set_error(LP_EFORMAT, "PNG: more than one tRNS chunk");
    if (len > 256)
        return lp_set_error(LP_EFORMAT, "PNG: tRNS chunk has %u entries, "
                            "more than 256", len);
    for (uint32_t i = 0; i < len; i++)
        p->palette[i][3] = d[i];
    p->has_trns = 1;
    p->channels = 4;
    return LP_OK;
}

/* ---- chunk walk --------------------------------------------------------- */

/* Walk every chunk: check lengths, CRCs and order, read IHDR/PLTE/tRNS and
 * gather the IDAT data. */
static int read_chunks(png_info *p, const uint8_t *data, size_t size)
{
    size_t pos = 8, first_idat = 0, n_idat = 0;
    int seen_ihdr = 0, idat_state = 0; /* 0 none yet, 1 in run, 2 after */

    for (int i = 0; i < 256; i++) { /* Pillow's palettes start as a ramp */
        p->palette[i][0] = p->palette[i][1] = p->palette[i][2] = (uint8_t)i;
        p->palette[i][3] = 255;
    }
    for (;;) {
        uint32_t len, crc_stored, crc;
        const uint8_t *type, *body;
        char name[5];
        if (size - pos < 8)
            return lp_set_error(LP_EFORMAT, "PNG: file ends at byte %zu "
                                "before the IEND chunk (truncated)", size);
        len = rd32be(data + pos);
        type = data + pos + 4;
        type_text(type, name);
        if (!is_letter(type[0]) || !is_letter(type[1]) ||
            !is_letter(type[2]) || !is_letter(type[3]))
            return lp_set_error(LP_EFORMAT, "PNG: invalid chunk type at "
                                "offset %zu", pos);
        if (len > 0x7FFFFFFFu)
            return lp_set_error(LP_EFORMAT, "PNG: chunk '%s' at offset %zu "
                                "has invalid length %u", name, pos, len);
        if (size - pos - 8 < (size_t)len + 4)
            return lp_set_error(LP_EFORMAT, "PNG: chunk '%s' at offset %zu "
                                "needs %u bytes but the file has %zu left "
                                "(truncated)", name, pos, len + 4,
                                size - pos - 8);
        body = data + pos + 8;
        crc_stored = rd32be(body + len);
        crc = lp_crc32(0, type, (size_t)len + 4);
        if (crc != crc_stored)
            return lp_set_error(LP_EFORMAT, "PNG: CRC mismatch in chunk '%s' "
                                "at offset %zu (stored 0x%08x, computed "
                                "0x%08x)", name, pos, crc_stored, crc);

        if (!seen_ihdr) {
            if (memcmp(type, "IHDR", 4) != 0)
                return lp_set_error(LP_EFORMAT, "PNG: first chunk is '%s', "
                                    "not IHDR", name);
            LP_TRY(parse_ihdr(p, body, len));
            seen_ihdr = 1;
        } else if (memcmp(type, "IHDR", 4) == 0) {
            return lp_set_error(LP_EFORMAT, "PNG: more than one IHDR chunk");
        } else if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_state == 2)
                return lp_set_error(LP_EFORMAT, "PNG: IDAT chunks are not "
                                    "consecutive (another IDAT at offset "
                                    "%zu)", pos);
            if (idat_state == 0)
                first_idat = pos;
            idat_state = 1;
            n_idat++;
            p->idat_size += len; /* <= file size, cannot overflow */
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        } else {
            if (idat_state == 1)
                idat_state = 2;
            if (memcmp(type, "PLTE", 4) == 0) {
                if (idat_state != 0)
                    return lp_set_error(LP_EFORMAT, "PNG: PLTE chunk after "
                                        "the image data");
                LP_TRY(parse_plte(p, body, len));
            } else if (memcmp(type, "tRNS", 4) == 0) {
                if (idat_state != 0)
                    return lp_set_error(LP_EFORMAT, "PNG: tRNS chunk after "
                                        "the image data");
                LP_TRY(parse_trns(p, body, len));
            } else if (!(type[0] & 0x20u)) {
                /* lower-case first letter = ancillary, safe to skip */
                return lp_set_error(LP_EFORMAT, "PNG: unknown critical chunk "
                                    "'%s'", name);
            }
        }
        pos += (size_t)len + 12;
    }

    if (n_idat == 0)
        return lp_set_error(LP_EFORMAT, "PNG: no IDAT chunk");
    if (p->color_type == 3 && p->palette_size == 0)
        return lp_set_error(LP_EFORMAT, "PNG: palette image without a PLTE "
                            "chunk");
    if (n_idat == 1) {
        p->idat = data + first_idat + 8;
        return LP_OK;
    }
    p->idat_owned = lp_alloc(p->idat_size, 1);
    if (p->idat_owned == NULL)
        return LP_ENOMEM;
    p->idat = p->idat_owned;
    {
        size_t at = first_idat, off = 0;
        for (size_t k = 0; k < n_idat; k++) {
            uint32_t len = rd32be(data + at);
            memcpy(p->idat_owned + off, data + at + 8, len);
            off += len;
            at += (size_t)len + 12;
        }
    }
    return LP_OK;
}

/* ---- passes, filters ---------------------------------------------------- */

/* Adam7 pass geometry: first column/row and steps. Pass 0 with step 1 is
 * the whole image for non-interlaced files. */
typedef struct {
    int x0, y0, dx, dy;
} pass_geom;

static const pass_geom adam7[7] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8},
                                   {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2},
                                   {0, 1, 1, 2}};
static const pass_geom whole = {0, 0, 1, 1};

/* Pixels of a pass along one axis: positions start, start+step, ... */
static uint32_t pass_extent(uint32_t size, int start, int step)
{
    if (size <= (uint32_t)start)
        return 0;
    return (size - (uint32_t)start + (uint32_t)step - 1) / (uint32_t)step;
}

/* Bytes of one filtered row of `w` pixels, without the filter byte. */
static size_t row_bytes(const png_info *p, uint32_t w)
{
    return ((size_t)w * (size_t)p->bits_per_pixel + 7) / 8;
}

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

/* Undo the filter of one row in place. prior = previous row of the same
 * pass, already unfiltered (all zero for the first row). bpp = bytes per
 * complete pixel, at least 1. */
static int unfilter_row(uint8_t *row, const uint8_t *prior, size_t n,
                        size_t bpp, int filter, uint32_t row_index)
{
    size_t i;
    switch (filter) {
    case 0:
        break;
    case 1:
        for (i = bpp; i < n; i++)
            row[i] = (uint8_t)(row[i] + row[i - bpp]);
        break;
    case 2:
        for (i = 0; i < n; i++)
            row[i] = (uint8_t)(row[i] + prior[i]);
        break;
    case 3:
        for (i = 0; i < bpp && i < n; i++)
            row[i] = (uint8_t)(row[i] + (prior[i] >> 1));
        for (; i < n; i++)
            row[i] = (uint8_t)(row[i] + ((row[i - bpp] + prior[i]) >> 1));
        break;
    case 4:
        for (i = 0; i < bpp && i < n; i++)
            row[i] = (uint8_t)(row[i] + prior[i]); /* paeth(0, b, 0) = b */
        for (; i < n; i++)
            row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prior[i],
                                              prior[i - bpp]));
        break;
    default:
        return lp_set_error(LP_EFORMAT, "PNG: invalid filter type %d on row "
                            "%u", filter, row_index);
    }
    return LP_OK;
}

/* ---- sample conversion -------------------------------------------------- */

/* Convert one unfiltered row of n pixels into output pixels. */
static void convert_row(const png_info *p, const uint8_t *src, uint32_t n,
                        uint8_t *dst)
{
    static const uint8_t grey_scale[9] = {0, 255, 85, 0, 17, 0, 0, 0, 1};
    const int depth = p->depth;
    const int ch = p->channels;

    if (depth < 8) {
        const unsigned mask = (1u << depth) - 1u;
        const uint32_t per_byte = (uint32_t)(8 / depth);
        for (uint32_t x = 0; x < n; x++) {
            /* samples are packed from the most significant bit */
            int shift = 8 - depth * (int)(x % per_byte + 1);
            unsigned v = (src[x / per_byte] >> shift) & mask;
            if (p->color_type == 0) {
                dst[x] = (uint8_t)(v * grey_scale[depth]);
            } else {
                memcpy(dst + (size_t)x * (size_t)ch, p->palette[v], (size_t)ch);
            }
        }
        return;
    }
    if (p->color_type == 3) {
        for (uint32_t x = 0; x < n; x++)
            memcpy(dst + (size_t)x * (size_t)ch, p->palette[src[x]], (size_t)ch);
        return;
    }
    if (depth == 8) {
        memcpy(dst, src, (size_t)n * (size_t)ch);
        return;
    }
    /* 16-bit */
    if (p->color_type == 0) {
        for (uint32_t x = 0; x < n; x++) { /* Pillow's I -> L clamps */
            unsigned v = ((unsigned)src[2 * x] << 8) | src[2 * x + 1];
            dst[x] = (uint8_t)(v > 255 ? 255 : v);
        }
        return;
    }
    for (size_t i = 0, count = (size_t)n * (size_t)ch; i < count; i++)
        dst[i] = src[2 * i]; /* high byte */
}

/* ---- decode ------------------------------------------------------------- */

static int decode_pixels(const png_info *p, uint8_t *raw, size_t raw_size,
                         uint8_t *pixels)
{
    const int npasses = p->interlace ? 7 : 1;
    const size_t bpp = p->bits_per_pixel >= 8 ? (size_t)p->bits_per_pixel / 8 : 1;
    const size_t out_stride = (size_t)p->width * (size_t)p->channels;
    uint8_t *zero_row, *tmp = NULL;
    size_t pos = 0;
    int rc = LP_OK;

    zero_row = lp_calloc(row_bytes(p, p->width) + 1, 1);
    if (zero_row == NULL)
        return LP_ENOMEM;
    if (p->interlace) {
        tmp = lp_alloc(out_stride + 1, 1);
        if (tmp == NULL) {
            lp_free(zero_row);
            return LP_ENOMEM;
        }
    }
    for (int k = 0; k < npasses && rc == LP_OK; k++) {
        const pass_geom *g = p->interlace ? &adam7[k] : &whole;
        uint32_t pw = pass_extent(p->width, g->x0, g->dx);
        uint32_t ph = pass_extent(p->height, g->y0, g->dy);
        size_t n = row_bytes(p, pw);
        const uint8_t *prior = zero_row;
        if (pw == 0 || ph == 0)
            continue;
        for (uint32_t y = 0; y < ph; y++) {
            uint8_t *row = raw + pos + 1;
            uint32_t out_y = (uint32_t)g->y0 + y * (uint32_t)g->dy;
            if (raw_size - pos < n + 1) { /* cannot happen: size checked */
                rc = lp_set_error(LP_EFORMAT, "PNG: image data too short");
                break;
            }
            rc = unfilter_row(row, prior, n, bpp, raw[pos], out_y);
            if (rc != LP_OK)
                break;
            if (!p->interlace) {
                convert_row(p, row, pw, pixels + (size_t)out_y * out_stride);
            } else {
                uint8_t *out_row = pixels + (size_t)out_y * out_stride;
                size_t c = (size_t)p->channels;
                convert_row(p, row, pw, tmp);
                for (uint32_t x = 0; x < pw; x++) {
                    size_t out_x = (size_t)g->x0 + (size_t)x * (size_t)g->dx;
                    memcpy(out_row + out_x * c, tmp + (size_t)x * c, c);
                }
            }
            prior = row;
            pos += n + 1;
        }
    }
    lp_free(tmp);
    lp_free(zero_row);
    return rc;
}

/* Size of the inflated image data: every pass's rows with filter bytes. */
static size_t expected_raw_size(const png_info *p)
{
    size_t total = 0;
    const int npasses = p->interlace ? 7 : 1;
    for (int k = 0; k < npasses; k++) {
        const pass_geom *g = p->interlace ? &adam7[k] : &whole;
        uint32_t pw = pass_extent(p->width, g->x0, g->dx);
        uint32_t ph = pass_extent(p->height, g->y0, g->dy);
        if (pw == 0 || ph == 0)
            continue;
        /* <= 65535 rows of <= 524281 bytes: no overflow in 64 bits; the
         * pixel limit keeps the sum below 2^31 * 8 */
        total += (size_t)ph * (row_bytes(p, pw) + 1);
    }
    return total;
}

int lp_png_decode(lp_image *img, const uint8_t *data, size_t size)
{
    png_info *p;
    uint8_t *raw = NULL, *pixels = NULL;
    size_t expected, got = 0, npix;
    int rc;

    if (img == NULL)
        return lp_set_error(LP_EINVAL, "lp_png_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (data == NULL && size > 0)
        return lp_set_error(LP_EINVAL, "lp_png_decode: NULL data");
    if (size < 8 || memcmp(data, png_signature, 8) != 0)
        return lp_set_error(LP_EFORMAT, "PNG: bad signature (not a PNG "
                            "file)");
    p = lp_calloc(1, sizeof *p);
    if (p == NULL)
        return LP_ENOMEM;
    rc = read_chunks(p, data, size);
    if (rc != LP_OK)
        goto done;

    expected = expected_raw_size(p);
    /* DEFLATE cannot expand more than 1032:1 (258 bytes per 2 bits) */
    if (p->idat_size < 2 || (expected - 2) / 1032 > p->idat_size) {
        rc = lp_set_error(LP_EFORMAT, "PNG: IDAT data shorter than IHDR "
                          "implies (%zu compressed bytes cannot hold the "
                          "%zu bytes of a %ux%u image)", p->idat_size,
                          expected, p->width, p->height);
        goto done;
    }
    npix = (size_t)p->width * p->height;
    rc = lp_memory_check_image("PNG", p->width, p->height,
                               expected + npix * (size_t)p->channels);
    if (rc != LP_OK)
        goto done;
    raw = lp_alloc(expected, 1);
    pixels = lp_alloc(npix, (size_t)p->channels);
    if (raw == NULL || pixels == NULL) {
        rc = LP_ENOMEM;
        goto done;
    }
    rc = lp_inflate_zlib(raw, expected, &got, p->idat, p->idat_size);
    if (rc != LP_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        rc = lp_set_error(rc, "PNG: corrupt image data: %s", msg);
        goto done;
    }
    if (got != expected) {
        rc = lp_set_error(LP_EFORMAT, "PNG: IDAT data shorter than IHDR "
                          "implies (needed %zu bytes, got %zu)", expected,
                          got);
        goto done;
    }
    rc = decode_pixels(p, raw, expected, pixels);
    if (rc != LP_OK)
        goto done;
    img->width = (int)p->width;
    img->height = (int)p->height;
    img->channels = p->channels;
    img->pixels = pixels;
    pixels = NULL;

done:
    lp_free(pixels);
    lp_free(raw);
    lp_free(p->idat_owned);
    lp_free(p);
    return rc;
}
