/*
 * fuzz_image.c — fuzz harness for lp_image_decode (formats/image.c), which
 * picks the decoder by the file's signature: what the CLI does with every
 * --image file. The corpus mixes all four formats, so the fuzzer also
 * tries one format's body behind another's signature. PNG checksums are
 * repaired first, as in fuzz_png.c.
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
    if (lp_image_decode(&img, copy, size) == LP_OK)
        fuzz_check_image(&img);
    else if (img.pixels != NULL || img.width != 0 || img.height != 0)
        fuzz_fail("a refused image is not left empty");
    lp_image_free(&img);
    free(copy);
    return 0;
}
