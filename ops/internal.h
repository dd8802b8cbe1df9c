/*
 * internal.h — helpers shared by the library's own source files.
 * Not part of the public API.
 */
#ifndef LOUPE_INTERNAL_H
#define LOUPE_INTERNAL_H

#include "loupe.h"

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Largest element count any single tensor may have (2^40 floats = 4 TiB):
 * products are checked against it so that size arithmetic never wraps. */
#define LP_MAX_ELEMENTS ((size_t)1 << 40)

/* a * b with overflow check against LP_MAX_ELEMENTS; returns 0 on overflow. */
static inline int lp_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > LP_MAX_ELEMENTS / a)
        return 0;
    *out = a * b;
    return 1;
}

/* Product of `count` non-negative ints with overflow check. Returns LP_OK
 * and writes the product, or sets an error naming `op`. */
int lp_checked_count(const char *op, size_t *out, int count, ...);

/* Validation helpers: each returns LP_OK or sets the error and returns
 * LP_EINVAL. `op` and `what` name the function and argument. */
int lp_require_ptr(const char *op, const char *what, const void *p);
int lp_require_positive(const char *op, const char *what, int v);
int lp_require_nonneg(const char *op, const char *what, int v);

/* lp_memory_check for decoding a w x h image into `bytes` bytes, with the
 * message "FORMAT: a WxH image needs N MB, more than --max-memory M MB". */
int lp_memory_check_image(const char *format, size_t w, size_t h, size_t bytes);

#define LP_TRY(expr)               \
    do {                           \
        int lp_try_rc_ = (expr);   \
        if (lp_try_rc_ != LP_OK)   \
            return lp_try_rc_;     \
    } while (0)

#endif /* LOUPE_INTERNAL_H */
