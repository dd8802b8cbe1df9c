/*
 * core.c — status codes, per-thread error messages, aligned allocation,
 * thread count and build information.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
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
    /* formatted aside first: callers may pass lp_last_error() itself as an
     * argument to prefix it ("layer x: %s"), which vsnprintf into the
     * same buffer would garble */
    char msg[sizeof lp_error_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(lp_error_buf, msg, strlen(msg) + 1);
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

/*
 * Every block starts with a 64-byte header that records its size, so that
 * lp_free can give the bytes back to the budget; 64 bytes keep the payload
 * 64-byte aligned. The accounting is three relaxed atomic additions per
 * allocation (allocations never happen in inner loops), so it is always
 * on: the live totals serve the memory limit (lp_set_memory_limit, the
 * CLI's --max-memory) and the leak checks of tests/test_alloc_fail.c.
 *
 * Failure injection (lp_debug_fail_alloc_after) costs one relaxed load
 * per allocation while disarmed and is compiled into every build, so the
 * test exercises the same code that ships.
 */
#define LP_ALLOC_HEADER ((size_t)64)

static atomic_size_t mem_live_bytes;
static atomic_long mem_live_blocks;
static atomic_long mem_total_blocks;
static atomic_size_t mem_limit = SIZE_MAX; /* SIZE_MAX: no limit */
static atomic_int mem_refused;             /* the limit refused something */
static atomic_long fail_countdown;         /* > 0: fail when it reaches 0 */

void lp_set_memory_limit(size_t bytes)
{
    atomic_store(&mem_limit, bytes == 0 ? SIZE_MAX : bytes);
}

size_t lp_memory_limit(void) { return atomic_load(&mem_limit); }

size_t lp_memory_in_use(void) { return atomic_load(&mem_live_bytes); }

long lp_alloc_live_count(void) { return atomic_load(&mem_live_blocks); }

long lp_alloc_total_count(void) { return atomic_load(&mem_total_blocks); }

int lp_memory_limit_refused(void) { return atomic_load(&mem_refused); }

void lp_debug_fail_alloc_after(long k)
{
    atomic_store(&fail_countdown, k > 0 ? k : 0);
}

/* Sizes in messages: MB (2^20 bytes), with a decimal below 10 MB. */
static void format_mb(char *buf, size_t cap, size_t bytes)
{
    double mb = (double)bytes / (1024.0 * 1024.0);
    snprintf(buf, cap, mb < 10.0 ? "%.1f MB" : "%.0f MB", mb);
}

/* The refusal message shared by lp_memory_check and lp_alloc. */
static int refuse(const char *what, size_t bytes, size_t in_use, size_t limit)
{
    char need[32], lim[32], used[32];
    atomic_store(&mem_refused, 1);
    format_mb(need, sizeof need, bytes);
    format_mb(lim, sizeof lim, limit);
    format_mb(used, sizeof used, in_use);
    if (in_use >= ((size_t)1 << 20))
        return lp_set_error(LP_ERANGE, "%s%sneeds %s, more than --max-memory %s "
                            "(%s already in use)", what ? what : "",
                            what ? " " : "", need, lim, used);
    return lp_set_error(LP_ERANGE, "%s%sneeds %s, more than --max-memory %s",
                        what ? what : "", what ? " " : "", need, lim);
}

int lp_memory_check(size_t bytes, const char *what)
{
    size_t limit = atomic_load(&mem_limit), used = atomic_load(&mem_live_bytes);
    if (limit == SIZE_MAX)
        return LP_OK;
    if (bytes > limit || used > limit - bytes)
        return refuse(what, bytes, used, limit);
    return LP_OK;
}

int lp_memory_check_image(const char *format, size_t w, size_t h, size_t bytes)
{
    char what[96];
    if (atomic_load(&mem_limit) == SIZE_MAX)
        return LP_OK;
    snprintf(what, sizeof what, "%s: a %zux%zu image", format, w, h);
    return lp_memory_check(bytes, what);
}

/* Take `bytes` from the budget, or set the error and return 0. */
static int reserve(size_t bytes)
{
    size_t limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
    size_t before = atomic_fetch_add_explicit(&mem_live_bytes, bytes,
                                              memory_order_relaxed);
    if (limit != SIZE_MAX && (bytes > limit || before > limit - bytes)) {
        atomic_fetch_sub_explicit(&mem_live_bytes, bytes, memory_order_relaxed);
        refuse("an allocation", bytes, before, limit);
        return 0;
    }
    return 1;
}

/* The injected failure, when armed and due. */
static int injected_failure(void)
{
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) <= 0)
        return 0;
    if (atomic_fetch_sub(&fail_countdown, 1) != 1)
        return 0;
    lp_set_error(LP_ENOMEM, "out of memory (injected allocation failure)");
    return 1;
}

void *lp_alloc(size_t count, size_t size)
{
    size_t bytes;
    unsigned char *p;
    if (size != 0 && count > SIZE_MAX / size) {
        lp_set_error(LP_ENOMEM, "allocation of %zu x %zu bytes overflows",
                     count, size);
        return NULL;
    }
    bytes = count * size;
    if (bytes == 0)
        bytes = 1;
    /* round up to the alignment as aligned_alloc requires, plus the header */
    if (bytes > SIZE_MAX - 63 - LP_ALLOC_HEADER) {
        lp_set_error(LP_ENOMEM, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    bytes = ((bytes + 63) & ~(size_t)63) + LP_ALLOC_HEADER;
    if (injected_failure() || !reserve(bytes))
        return NULL;
    p = aligned_alloc(64, bytes);
    if (p == NULL) {
        atomic_fetch_sub_explicit(&mem_live_bytes, bytes, memory_order_relaxed);
        lp_set_error(LP_ENOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memcpy(p, &bytes, sizeof bytes);
    atomic_fetch_add_explicit(&mem_live_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mem_total_blocks, 1, memory_order_relaxed);
    return p + LP_ALLOC_HEADER;
}

void *lp_calloc(size_t count, size_t size)
{
    void *p = lp_alloc(count, size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

/* Bytes the caller asked for are not recorded, only the block size; the
 * copy below moves min(old block, new request), which is what realloc does. */
void *lp_realloc(void *old, size_t count, size_t size)
{
    unsigned char *p;
    size_t old_bytes;
    if (old == NULL)
        return lp_alloc(count, size);
    p = lp_alloc(count, size);
    if (p == NULL)
        return NULL;
    memcpy(&old_bytes, (unsigned char *)old - LP_ALLOC_HEADER, sizeof old_bytes);
    old_bytes -= LP_ALLOC_HEADER;
    memcpy(p, old, old_bytes < count * size ? old_bytes : count * size);
    lp_free(old);
    return p;
}

void lp_free(void *ptr)
{
    unsigned char *p;
    size_t bytes;
    if (ptr == NULL)
        return;
    p = (unsigned char *)ptr - LP_ALLOC_HEADER;
    memcpy(&bytes, p, sizeof bytes);
    atomic_fetch_sub_explicit(&mem_live_bytes, bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&mem_live_blocks, 1, memory_order_relaxed);
    free(p);
}

/* ---- threads and build info --------------------------------------- */

int lp_get_num_threads(void)
{
#ifdef _OPENMP
    /* inside a parallel region that cannot start another (OpenMP's
     * default: one active level), a region started here gets one thread */
    if (omp_get_active_level() >= omp_get_max_active_levels())
        return 1;
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
