/*
 * core.c — status codes, per-thread error messages, aligned allocation,
 * thread count and build information.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------- */

/* One message buffer per thread, like errno: no shared mutable state. */
static _Thread_local char lp_error_buf[512];

const char *lp_last_error(void) { return lp_error_buf; }

void lp_clear_error(void) { lp_error_buf[0] = '\0'; }

int lp_set_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lp_error_buf, sizeof lp_error_buf, fmt, ap);
    va_end(ap);
    return status;
}

const char *lp_status_name(int status)
{
    switch (status) {
    case LP_OK: return "LP_OK";
    case LP_EINVAL: return "LP_EINVAL";
    case LP_ENOMEM: return "LP_ENOMEM";
    case LP_EIO: return "LP_EIO";
    case LP_EFORMAT: return "LP_EFORMAT";
    case LP_ERANGE: return "LP_ERANGE";
    case LP_ENOTFOUND: return "LP_ENOTFOUND";
    default: return "LP_E?";
    }
}

int lp_checked_count(const char *op, size_t *out, int count, ...)
{
    va_list ap;
    size_t total = 1;
    int rc = LP_OK;
    va_start(ap, count);
    for (int i = 0; i < count; i++) {
        int v = va_arg(ap, int);
        if (v < 0) {
            rc = lp_set_error(LP_EINVAL, "%s: negative size %d", op, v);
            break;
        }
        if (!lp_mul_size(total, (size_t)v, &total)) {
            rc = lp_set_error(LP_ENOMEM, "%s: tensor size overflows", op);
            break;
        }
    }
    va_end(ap);
    if (rc == LP_OK)
        *out = total;
    return rc;
}

int lp_require_ptr(const char *op, const char *what, const void *p)
{
    if (p == NULL)
        return lp_set_error(LP_EINVAL, "%s: %s is NULL", op, what);
    return LP_OK;
}

int lp_require_positive(const char *op, const char *what, int v)
{
    if (v <= 0)
        return lp_set_error(LP_EINVAL, "%s: %s must be positive (got %d)", op,
                            what, v);
    return LP_OK;
}

int lp_require_nonneg(const char *op, const char *what, int v)
{
    if (v < 0)
        return lp_set_error(LP_EINVAL, "%s: %s must be >= 0 (got %d)", op,
                            what, v);
    return LP_OK;
}

/* ---- memory ------------------------------------------------------- */

void *lp_alloc(size_t count, size_t size)
{
    size_t bytes;
    void *p = NULL;
    if (size != 0 && count > SIZE_MAX / size) {
        lp_set_error(LP_ENOMEM, "allocation of %zu x %zu bytes overflows",
                     count, size);
        return NULL;
    }
    bytes = count * size;
    if (bytes == 0)
        bytes = 1;
    /* round up to the alignment as aligned_alloc requires */
    if (bytes > SIZE_MAX - 63) {
        lp_set_error(LP_ENOMEM, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    p = aligned_alloc(64, bytes);
    if (p == NULL)
        lp_set_error(LP_ENOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *lp_calloc(size_t count, size_t size)
{
    void *p = lp_alloc(count, size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

void lp_free(void *p) { free(p); }

/* ---- threads and build info --------------------------------------- */

int lp_get_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void lp_set_num_threads(int n)
{
#ifdef _OPENMP
    if (n >= 1)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}

const char *lp_build_info(void)
{
    static char info[256];
    if (info[0] == '\0') {
        snprintf(info, sizeof info, "loupe %s; %s; gemm %s; %s", LOUPE_VERSION,
#if defined(__clang__)
                 "clang " __clang_version__,
#elif defined(__GNUC__)
                 "gcc " __VERSION__,
#else
                 "cc",
#endif
                 lp_gemm_kernel_name(LP_GEMM_AUTO),
#ifdef _OPENMP
                 "OpenMP"
#else
                 "no OpenMP"
#endif
        );
    }
    return info;
}
