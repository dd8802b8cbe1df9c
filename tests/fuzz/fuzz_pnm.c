/*
 * fuzz_pnm.c — fuzz harness for the PBM/PGM/PPM (formats/pnm.c): ASCII and binary, comments, maxval, 16-bit samples.
 * A decoded image must have sane dimensions and a pixel buffer of exactly
 * width x height x channels bytes; a refused one must leave the image empty.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_image img;
    if (lp_pnm_decode(&img, data, size) == LP_OK)
        fuzz_check_image(&img);
    else if (img.pixels != NULL || img.width != 0 || img.height != 0)
        fuzz_fail("a refused image is not left empty");
    lp_image_free(&img);
    return 0;
}
