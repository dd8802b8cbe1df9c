/*
 * fuzz_png.c — fuzz harness for the PNG (formats/png.c): every chunk type, bit depth, colour type, interlacing, the inflate stream under it.
 * A decoded image must have sane dimensions and a pixel buffer of exactly
 * width x height x channels bytes; a refused one must leave the image empty.
 * The chunk CRCs and the Adler-32 of the image data are recomputed before
 * decoding (fuzz_repair_png), or nearly every mutation would stop there.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    lp_image img;
    if (copy == NULL)
        return 0;
    if (size)
        memcpy(copy, data, size);
    fuzz_repair_png(copy, size); /* PNG only: chunk CRCs and Adler-32 */
    if (lp_png_decode(&img, copy, size) == LP_OK)
        fuzz_check_image(&img);
    else if (img.pixels != NULL || img.width != 0 || img.height != 0)
        fuzz_fail("a refused image is not left empty");
    lp_image_free(&img);
    free(copy);
    return 0;
}
