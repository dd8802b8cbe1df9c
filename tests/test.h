/*
 * test.h — loupe's tiny test framework.
 *
 *   TEST(conv_forward_odd_shapes) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *
 * Tests register themselves at start-up; tests/test_main.c runs them all
 * (or those whose name contains a filter given on the command line) and
 * prints the closing line "N passed, N failed".
 */
#ifndef LOUPE_TEST_H
#define LOUPE_TEST_H

#include "loupe.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*lpt_fn)(void);
void lpt_register(const char *name, const char *file, lpt_fn fn);

#define TEST(name)                                                        \
    static void lpt_test_##name(void);                                    \
    __attribute__((constructor)) static void lpt_register_##name(void)   \
    {                                                                     \
        lpt_register(#name, __FILE__, lpt_test_##name);                   \
    }                                                                     \
    static void lpt_test_##name(void)

/* Record a failure (test continues). */
void lpt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Mark the running test as skipped with a reason. */
void lpt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 if the running test has recorded a failure */
int lpt_failed(void);

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            lpt_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);              \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (!(cond))                                                       \
            lpt_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
    } while (0)

#define CHECK_OK(expr)                                                     \
    do {                                                                   \
        int lpt_rc_ = (expr);                                              \
        if (lpt_rc_ != LP_OK)                                              \
            lpt_fail(__FILE__, __LINE__, "%s returned %s: %s", #expr,      \
                     lp_status_name(lpt_rc_), lp_last_error());            \
    } while (0)

/* Expect a failing status (any LP_E* code) and a non-empty message. */
#define CHECK_FAILS(expr)                                                  \
    do {                                                                   \
        lp_clear_error();                                                  \
        int lpt_rc_ = (expr);                                              \
        if (lpt_rc_ == LP_OK)                                              \
            lpt_fail(__FILE__, __LINE__, "%s unexpectedly succeeded", #expr); \
        else if (lp_last_error()[0] == '\0')                               \
            lpt_fail(__FILE__, __LINE__, "%s failed without a message", #expr); \
    } while (0)

#define CHECK_NEAR(got, want, tol)                                         \
    do {                                                                   \
        double lpt_g_ = (double)(got), lpt_w_ = (double)(want);            \
        if (!(fabs(lpt_g_ - lpt_w_) <= (tol)))                             \
            lpt_fail(__FILE__, __LINE__, "%s = %.9g, want %.9g (tol %g)",  \
                     #got, lpt_g_, lpt_w_, (double)(tol));                 \
    } while (0)

/* ---- comparisons ---------------------------------------------------- */

/* The error measure used throughout the tests ("max relative error"):
 *     max_i |got_i - want_i| / max(max_i |want_i|, floor)
 * i.e. the worst absolute error relative to the reference's scale. */
double lpt_max_rel_err(const float *got, const double *want, size_t n);
double lpt_max_rel_err_f(const float *got, const float *want, size_t n);

/* CHECK that lpt_max_rel_err(got, want, n) <= tol, naming `what`. */
void lpt_check_close(const char *file, int line, const char *what,
                     const float *got, const double *want, size_t n,
                     double tol);
void lpt_check_close_f(const char *file, int line, const char *what,
                       const float *got, const float *want, size_t n,
                       double tol);
#define CHECK_CLOSE(what, got, want, n, tol) \
    lpt_check_close(__FILE__, __LINE__, what, got, want, n, tol)
#define CHECK_CLOSE_F(what, got, want, n, tol) \
    lpt_check_close_f(__FILE__, __LINE__, what, got, want, n, tol)

/* ---- random data ---------------------------------------------------- */

typedef struct { uint64_t s; } lpt_rng;
lpt_rng lpt_rng_seed(uint64_t seed);
uint64_t lpt_rng_u64(lpt_rng *r);
double lpt_rng_uniform(lpt_rng *r);               /* [0, 1) */
double lpt_rng_normal(lpt_rng *r);                /* N(0, 1) */
void lpt_fill_uniform(lpt_rng *r, float *x, size_t n, double lo, double hi);
void lpt_fill_normal(lpt_rng *r, float *x, size_t n, double stddev);

/* ---- finite differences --------------------------------------------- */

/* A scalar function of a double vector: the op's reference forward in
 * double precision followed by a fixed random projection of its output. */
typedef double (*lpt_scalar_fn)(const double *x, void *ctx);

/* Central differences (f(x+eps e_i) - f(x-eps e_i)) / 2 eps for each of
 * the n inputs, written to grad[n]. x is restored afterwards. */
void lpt_fd_gradient(lpt_scalar_fn f, void *ctx, double *x, size_t n,
                     double eps, double *grad);

/* ---- helpers -------------------------------------------------------- */

float *lpt_floats(size_t n);    /* zeroed; freed at the end of the test */
double *lpt_doubles(size_t n);  /* zeroed; freed at the end of the test */
void lpt_to_double(double *dst, const float *src, size_t n);
void lpt_to_float(float *dst, const double *src, size_t n);
/* Path of a file in the source tree (tests/golden/...), resolved against
 * $LOUPE_ROOT or the current directory. Static buffer. */
const char *lpt_path(const char *relative);

#endif /* LOUPE_TEST_H */
