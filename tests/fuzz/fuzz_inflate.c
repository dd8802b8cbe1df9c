/*
 * fuzz_inflate.c — fuzz harness for the zlib/DEFLATE decoder under the PNG
 * reader (formats/inflate.c, lp_inflate_zlib). Besides the sanitizers it
 * checks the output-capacity contract: a stream that inflates to L bytes
 * must inflate identically into exactly L bytes and must be refused with
 * L - 1. A stream whose only fault is its Adler-32 is also checked once
 * the checksum is repaired.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#define INFLATE_FUZZ_CAP ((size_t)256 << 10)

/* The checks on a stream that inflated to out[len]. */
static void check_capacity(const uint8_t *data, size_t size, const uint8_t *out,
                           size_t len)
{
    uint8_t *again;
    size_t len2 = 0;
    if (len > INFLATE_FUZZ_CAP)
        fuzz_fail("inflate reports more bytes than its capacity");
    again = malloc(len ? len : 1);
    if (again != NULL) {
        if (lp_inflate_zlib(again, len, &len2, data, size) != LP_OK || len2 != len ||
            memcmp(again, out, len) != 0)
            fuzz_fail("inflate into an exact-size buffer differs");
        if (len > 0 && lp_inflate_zlib(again, len - 1, &len2, data, size) == LP_OK)
            fuzz_fail("inflate accepted a buffer one byte too small");
        free(again);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(INFLATE_FUZZ_CAP), *copy = malloc(size ? size : 1);
    size_t len = 0;
    if (out != NULL && copy != NULL) {
        if (size)
            memcpy(copy, data, size);
        /* first as given (every error path), then with a repaired Adler-32 */
        if (lp_inflate_zlib(out, INFLATE_FUZZ_CAP, &len, copy, size) == LP_OK ||
            (fuzz_repair_adler(copy, size) &&
             lp_inflate_zlib(out, INFLATE_FUZZ_CAP, &len, copy, size) == LP_OK))
            check_capacity(copy, size, out, len);
    }
    free(out);
    free(copy);
    return 0;
}
