/*
 * testutil.c — comparisons, random numbers and finite differences for
 * the tests.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

double lpt_max_rel_err(const float *got, const double *want, size_t n)
{
    double max_err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= max_err)) /* also catches NaN */
            max_err = isnan(e) ? INFINITY : e;
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    }
    if (scale < 1e-30)
        scale = 1.0;
    return max_err / scale;
}

double lpt_max_rel_err_f(const float *got, const float *want, size_t n)
{
    double max_err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= max_err))
            max_err = isnan(e) ? INFINITY : e;
        if (fabs((double)want[i]) > scale)
            scale = fabs((double)want[i]);
    }
    if (scale < 1e-30)
        scale = 1.0;
    return max_err / scale;
}

void lpt_check_close(const char *file, int line, const char *what,
                     const float *got, const double *want, size_t n,
                     double tol)
{
    double err = lpt_max_rel_err(got, want, n);
    if (!(err <= tol))
        lpt_fail(file, line, "%s: max relative error %.3g > %.3g", what, err,
                 tol);
}

void lpt_check_close_f(const char *file, int line, const char *what,
                       const float *got, const float *want, size_t n,
                       double tol)
{
    double err = lpt_max_rel_err_f(got, want, n);
    if (!(err <= tol))
        lpt_fail(file, line, "%s: max relative error %.3g > %.3g", what, err,
                 tol);
}

/* splitmix64: tiny, seedable, good enough for test data */
lpt_rng lpt_rng_seed(uint64_t seed)
{
    lpt_rng r = {seed ^ 0x9E3779B97F4A7C15ull};
    return r;
}

uint64_t lpt_rng_u64(lpt_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double lpt_rng_uniform(lpt_rng *r)
{
    return (double)(lpt_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double lpt_rng_normal(lpt_rng *r)
{
    /* Box-Muller */
    double u1 = lpt_rng_uniform(r), u2 = lpt_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void lpt_fill_uniform(lpt_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * lpt_rng_uniform(r));
}

void lpt_fill_normal(lpt_rng *r, float *x, size_t n, double stddev)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(stddev * lpt_rng_normal(r));
}

void lpt_fd_gradient(lpt_scalar_fn f, void *ctx, double *x, size_t n,
                     double eps, double *grad)
{
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + eps;
        double fp = f(x, ctx);
        x[i] = saved - eps;
        double fm = f(x, ctx);
        x[i] = saved;
        grad[i] = (fp - fm) / (2.0 * eps);
    }
}

void lpt_to_double(double *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

void lpt_to_float(float *dst, const double *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

const char *lpt_path(const char *relative)
{
    static char buf[4096];
    const char *root = getenv("LOUPE_ROOT");
    if (root == NULL || root[0] == '\0')
        root = ".";
    snprintf(buf, sizeof buf, "%s/%s", root, relative);
    return buf;
}
