/*
 * image.c — decode an image by its signature, load one from a file.
 *
 *   PNG   89 50 4E 47 0D 0A 1A 0A   formats/png.c
 *   JPEG  FF D8 FF                  formats/jpeg.c
 *   BMP   "BM"                      formats/bmp.c
 *   PNM   "P1" .. "P6"              formats/pnm.c
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Largest image file lp_image_load reads (a 65535 x 4096 16-bit PPM is
 * about 1.6 GB; the decoders' pixel limits come first anyway). */
#define IMAGE_FILE_MAX ((uint64_t)1 << 31)

void lp_image_free(lp_image *img)
{
    if (img == NULL)
        return;
    lp_free(img->pixels);
    memset(img, 0, sizeof *img);
}

int lp_image_decode(lp_image *img, const uint8_t *data, size_t size)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G',
                                       0x0D, 0x0A, 0x1A, 0x0A};
    if (img == NULL)
        return lp_set_error(LP_EINVAL, "lp_image_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (data == NULL && size > 0)
        return lp_set_error(LP_EINVAL, "lp_image_decode: NULL data");
    if (size >= 8 && memcmp(data, png_sig, 8) == 0)
        return lp_png_decode(img, data, size);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return lp_jpeg_decode(img, data, size);
    if (size >= 2 && data[0] == 'B' && data[1] == 'M')
        return lp_bmp_decode(img, data, size);
    if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '6')
        return lp_pnm_decode(img, data, size);
    if (size == 0)
        return lp_set_error(LP_EFORMAT, "empty file, not an image");
    {
        char hex[3 * 8 + 1] = "";
        size_t len = 0;
        for (size_t i = 0; i < size && i < 8; i++)
            len += (size_t)snprintf(hex + len, sizeof hex - len, "%s%02x",
                                    i ? " " : "", data[i]);
        return lp_set_error(LP_EFORMAT, "unrecognised image format (first "
                            "bytes %s; PNG, JPEG, BMP and PBM/PGM/PPM are "
                            "supported)", hex);
    }
}

int lp_image_load(lp_image *img, const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    size_t cap = (uint64_t)SIZE_MAX < IMAGE_FILE_MAX ? SIZE_MAX
                                                     : (size_t)IMAGE_FILE_MAX;
    int rc;
    if (img != NULL)
        memset(img, 0, sizeof *img);
    if (img == NULL || path == NULL)
        return lp_set_error(LP_EINVAL, "lp_image_load: NULL argument");
    LP_TRY(lp_read_file(path, cap, &data, &size));
    rc = lp_image_decode(img, data, size);
    lp_free(data);
    if (rc != LP_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        lp_set_error(rc, "%s: %s", path, msg);
    }
    return rc;
}
