/*
 * fuzz_npy.c — fuzz harness for the NPY reader (formats/npy.c,
 * lp_npy_decode): the Python-literal header, dtypes, shapes, versions.
 * A decoded array must have a valid rank and a data buffer of exactly
 * product(shape) elements.
 */
#include "fuzz.h"

#include <string.h>

static size_t element_count(const lp_npy *a)
{
    size_t n = 1;
    if (a->ndim < 0 || a->ndim > LP_NPY_MAX_DIMS)
        fuzz_fail("decoded array has an impossible rank");
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] < 0)
            fuzz_fail("decoded array has a negative dimension");
        if (a->shape[d] > 0 && n > SIZE_MAX / (size_t)a->shape[d])
            fuzz_fail("decoded array's element count overflows");
        n *= (size_t)a->shape[d];
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_npy a;
    memset(&a, 0, sizeof a);
    if (lp_npy_decode(&a, data, size) == LP_OK) {
        size_t n = element_count(&a);
        size_t elem = a.dtype == LP_DTYPE_F32 ? 4 : 1;
        if (a.dtype != LP_DTYPE_F32 && a.dtype != LP_DTYPE_U8)
            fuzz_fail("decoded array has an unknown dtype");
        if (n > 0 && a.data == NULL)
            fuzz_fail("decoded array has no data");
        if (n > 0)
            fuzz_touch(a.data, n * elem);
    }
    lp_npy_free(&a);
    return 0;
}
