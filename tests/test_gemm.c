/*
 * test_gemm.c — lp_sgemm / lp_sgemm_kernel against a naive double-precision
 * reference: every compiled micro-kernel, all four transposition cases,
 * alpha/beta variants, padded leading dimensions, odd shapes and shapes
 * that cross the cache-block boundaries; bit-identical results for any
 * thread count; argument validation.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Forward tolerance. Inputs are uniform in [-1, 1]; a float dot product of
 * length k has a rounding error growing like sqrt(k) * 2^-24 relative to
 * the magnitude of its terms, while the reference scale max|C| also grows
 * like sqrt(k): 1e-5 leaves a wide margin up to the k ~ 1000 used here. */
#define GEMM_TOL 1e-5

static const lp_gemm_kernel k_all_kernels[] = {LP_GEMM_SCALAR, LP_GEMM_AVX2,
                                               LP_GEMM_AVX512};
#define N_ALL_KERNELS 3

/* One test case: op(A) is m x k, op(B) is k x n, leading dimensions are the
 * minimum plus `pad`; padding in A and B holds NaN (it must never be read
 * into the result) and padding in C a sentinel (it must stay untouched). */
typedef struct {
    int ta, tb, m, n, k, pad;
    float alpha, beta;
    int nan_c; /* fill C with NaN before the call (only with beta == 0) */
} gemm_case;

typedef struct {
    float *a, *b, *c;
    int lda, ldb, ldc;
    size_t a_len, b_len, c_len;
} gemm_data;

static const float k_sentinel = 12345.0f;

static float *xalloc(size_t n)
{
    float *p = lp_alloc(n ? n : 1, sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "test_gemm: out of memory\n");
        exit(2);
    }
    return p;
}

/* Random rows x cols matrix with leading dimension ld, padding = fill. */
static void fill_matrix(lpt_rng *r, float *x, int rows, int cols, int ld,
                        float fill)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            x[(size_t)i * ld + j] =
                j < cols ? (float)(2.0 * lpt_rng_uniform(r) - 1.0) : fill;
}

static void make_data(const gemm_case *t, uint64_t seed, gemm_data *d)
{
    lpt_rng r = lpt_rng_seed(seed);
    int a_rows = t->ta ? t->k : t->m, a_cols = t->ta ? t->m : t->k;
    int b_rows = t->tb ? t->n : t->k, b_cols = t->tb ? t->k : t->n;
    d->lda = a_cols + t->pad;
    d->ldb = b_cols + t->pad;
    d->ldc = t->n + t->pad;
    if (d->lda < 1) d->lda = 1;
    if (d->ldb < 1) d->ldb = 1;
    if (d->ldc < 1) d->ldc = 1;
    d->a_len = (size_t)a_rows * d->lda;
    d->b_len = (size_t)b_rows * d->ldb;
    d->c_len = (size_t)t->m * d->ldc;
    d->a = xalloc(d->a_len);
    d->b = xalloc(d->b_len);
    d->c = xalloc(d->c_len);
    fill_matrix(&r, d->a, a_rows, a_cols, d->lda, NAN);
    fill_matrix(&r, d->b, b_rows, b_cols, d->ldb, NAN);
    fill_matrix(&r, d->c, t->m, t->n, d->ldc, k_sentinel);
    if (t->nan_c)
        for (int i = 0; i < t->m; i++)
            for (int j = 0; j < t->n; j++)
                d->c[(size_t)i * d->ldc + j] = NAN;
}

static void free_data(gemm_data *d)
{
    lp_free(d->a);
    lp_free(d->b);
    lp_free(d->c);
}

/* want[m*n] (packed) = alpha op(A) op(B) + beta C, in double */
static void ref_gemm(const gemm_case *t, const gemm_data *d, double *want)
{
    for (int i = 0; i < t->m; i++)
        for (int j = 0; j < t->n; j++) {
            double acc = 0.0;
            for (int p = 0; p < t->k; p++) {
                double av = t->ta ? d->a[(size_t)p * d->lda + i]
                                  : d->a[(size_t)i * d->lda + p];
                double bv = t->tb ? d->b[(size_t)j * d->ldb + p]
                                  : d->b[(size_t)p * d->ldb + j];
                acc += av * bv;
            }
            double v = (double)t->alpha * acc;
            if (t->beta != 0.0f)
                v += (double)t->beta * d->c[(size_t)i * d->ldc + j];
            want[(size_t)i * t->n + j] = v;
        }
}

static int call_gemm(lp_gemm_kernel kern, const gemm_case *t, gemm_data *d)
{
    return lp_sgemm_kernel(kern, t->ta, t->tb, t->m, t->n, t->k, t->alpha,
                           d->a, d->lda, d->b, d->ldb, t->beta, d->c, d->ldc);
}

/* Run one case with one kernel and compare with the reference; returns
 * 0 on failure so callers can stop early. */
static int check_case(lp_gemm_kernel kern, const gemm_case *t, uint64_t seed)
{
    gemm_data d;
    make_data(t, seed, &d);
    size_t mn = (size_t)t->m * t->n;
    double *want = malloc((mn ? mn : 1) * sizeof(double));
    float *got = xalloc(mn);
    if (want == NULL) {
        fprintf(stderr, "test_gemm: out of memory\n");
        exit(2);
    }
    ref_gemm(t, &d, want);
    int rc = call_gemm(kern, t, &d);
    int ok = rc == LP_OK;
    CHECK_MSG(ok, "%s: lp_sgemm_kernel failed: %s", lp_gemm_kernel_name(kern),
              lp_last_error());
    int pad_ok = 1;
    for (int i = 0; i < t->m; i++) {
        memcpy(got + (size_t)i * t->n, d.c + (size_t)i * d.ldc,
               (size_t)t->n * sizeof(float));
        for (int j = t->n; j < d.ldc; j++)
            if (d.c[(size_t)i * d.ldc + j] != k_sentinel)
                pad_ok = 0;
    }
    double err = lpt_max_rel_err(got, want, mn);
    if (ok && !(err <= GEMM_TOL && pad_ok)) {
        lpt_fail(__FILE__, __LINE__,
                 "%s ta=%d tb=%d m=%d n=%d k=%d pad=%d alpha=%g beta=%g%s: "
                 "rel err %.3g%s",
                 lp_gemm_kernel_name(kern), t->ta, t->tb, t->m, t->n, t->k,
                 t->pad, (double)t->alpha, (double)t->beta,
                 t->nan_c ? " (C=NaN)" : "", err,
                 pad_ok ? "" : ", wrote into C's padding");
        ok = 0;
    }
    free(want);
    lp_free(got);
    free_data(&d);
    return ok;
}

/* Run `t` with all four transposition combinations on every kernel. */
static int check_all(const gemm_case *base, uint64_t seed)
{
    for (int kk = 0; kk < N_ALL_KERNELS; kk++) {
        if (!lp_gemm_kernel_available(k_all_kernels[kk]))
            continue;
        for (int tr = 0; tr < 4; tr++) {
            gemm_case t = *base;
            t.ta = tr & 1;
            t.tb = tr >> 1;
            if (!check_case(k_all_kernels[kk], &t, seed + (uint64_t)tr))
                return 0;
        }
    }
    return 1;
}

TEST(gemm_kernels_listed)
{
    CHECK(lp_gemm_kernel_available(LP_GEMM_AUTO));
    CHECK(lp_gemm_kernel_available(LP_GEMM_SCALAR));
    CHECK(!lp_gemm_kernel_available((lp_gemm_kernel)99));
    CHECK(strlen(lp_gemm_kernel_name(LP_GEMM_AUTO)) > 0);
#if defined(__AVX2__) && defined(__FMA__)
    CHECK(lp_gemm_kernel_available(LP_GEMM_AVX2));
#endif
#if defined(__AVX512F__)
    CHECK(lp_gemm_kernel_available(LP_GEMM_AVX512));
#endif
}

/* Every (m, n) from the odd sizes, k rotating through its own list, all
 * transpositions and kernels; alpha/beta and padding vary with the case. */
TEST(gemm_odd_shapes)
{
    static const int sizes[] = {1, 2, 3, 5, 7, 13, 17, 33, 65, 100, 129};
    static const int ks[] = {1, 2, 3, 7, 17, 33, 65, 100};
    static const float alphas[] = {1.0f, -0.7f, 2.0f};
    static const float betas[] = {0.0f, 1.0f, 0.3f, 0.0f};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    const int nk = (int)(sizeof ks / sizeof ks[0]);
    int idx = 0;
    for (int im = 0; im < ns; im++)
        for (int in = 0; in < ns; in++, idx++) {
            gemm_case t = {0, 0, sizes[im], sizes[in], ks[(im + 3 * in) % nk],
                           idx % 3 == 0 ? 3 : 0, alphas[idx % 3],
                           betas[idx % 4], 0};
            t.nan_c = t.beta == 0.0f && idx % 8 == 0;
            if (!check_all(&t, 1000 + (uint64_t)idx * 7))
                return;
        }
}

/* Shapes larger than the cache blocks (KC = 256, MC >= 128, NC >= 2048
 * for every kernel) so that the K loop accumulates over several blocks and
 * the M/N loops visit several blocks, plus the skinny shapes that take the
 * transposed orientation. Run on one thread too: threads split M or N, and
 * a thread's share of n = 4100 is below NC. */
TEST(gemm_block_boundaries)
{
    int saved = lp_get_num_threads();
    static const gemm_case cases[] = {
        {0, 0, 150, 37, 600, 0, 1.0f, 0.0f, 1},  /* k > KC, m > MC */
        {0, 0, 301, 20, 257, 5, -0.5f, 1.0f, 0}, /* m > 2 MC */
        {0, 0, 5, 4100, 9, 0, 1.0f, 0.5f, 0},    /* n > NC */
        {0, 0, 3, 2100, 513, 1, 1.0f, 0.0f, 0},  /* n > NC(scalar), k > 2 KC */
        {0, 0, 260, 49, 300, 2, 0.8f, 0.2f, 0},  /* skinny n: transposed */
        {0, 0, 200, 7, 520, 0, 1.0f, 0.0f, 1},   /* skinny n, NaN C */
        {0, 0, 40, 300, 1030, 0, 1.0f, 0.0f, 0}, /* long k, 5 KC blocks */
    };
    int ok = 1;
    for (int one = 0; one < 2 && ok; one++) {
        lp_set_num_threads(one ? 1 : saved);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0] && ok; i++)
            ok = check_all(&cases[i], 77 + i);
    }
    lp_set_num_threads(saved);
}

/* beta == 0 must not read C (NaN stays out), beta == 1 accumulates,
 * alpha == 0 only scales C, k == 0 gives C = beta C. */
TEST(gemm_alpha_beta)
{
    static const gemm_case cases[] = {
        {0, 0, 17, 33, 65, 1, 1.0f, 0.0f, 1},
        {0, 0, 17, 33, 65, 1, 1.0f, 1.0f, 0},
        {0, 0, 17, 33, 65, 1, -2.0f, -0.5f, 0},
        {0, 0, 17, 33, 65, 0, 0.0f, 0.5f, 0},
        {0, 0, 17, 33, 65, 0, 0.0f, 0.0f, 1},
        {0, 0, 17, 33, 0, 2, 1.0f, 0.5f, 0},
        {0, 0, 17, 33, 0, 2, 1.0f, 0.0f, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!check_all(&cases[i], 300 + i))
            return;
}

/* The kernels compute the same sums in a different order only inside a
 * register tile: they agree to float rounding. */
TEST(gemm_kernels_agree)
{
    static const gemm_case cases[] = {
        {0, 0, 64, 147, 300, 0, 1.0f, 0.0f, 0},
        {0, 1, 97, 200, 129, 0, 1.0f, 0.0f, 0},
        {1, 0, 33, 49, 520, 0, 1.0f, 0.0f, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gemm_data d;
        make_data(&cases[i], 500 + i, &d);
        size_t mn = (size_t)cases[i].m * cases[i].n;
        float *ref = xalloc(mn);
        CHECK_OK(call_gemm(LP_GEMM_SCALAR, &cases[i], &d));
        memcpy(ref, d.c, mn * sizeof(float));
        for (int kk = 1; kk < N_ALL_KERNELS; kk++) {
            if (!lp_gemm_kernel_available(k_all_kernels[kk]))
                continue;
            CHECK_OK(call_gemm(k_all_kernels[kk], &cases[i], &d));
            CHECK_CLOSE_F(lp_gemm_kernel_name(k_all_kernels[kk]), d.c, ref,
                          mn, 2e-6);
        }
        lp_free(ref);
        free_data(&d);
    }
}

/* Results are bit-identical for 1, 2 and 3 threads: K is never split. */
TEST(gemm_threads_bit_identical)
{
    static const gemm_case cases[] = {
        {0, 0, 300, 70, 600, 0, 1.0f, 0.0f, 0},
        {0, 1, 197, 197, 64, 0, 0.125f, 0.0f, 0},
        {0, 0, 197, 64, 197, 0, 1.0f, 1.0f, 0},
        {0, 0, 512, 49, 700, 0, 1.0f, 0.5f, 0}, /* skinny: transposed */
        {1, 0, 260, 60, 300, 1, -1.0f, 1.0f, 0},
        {1, 1, 13, 1000, 33, 0, 1.0f, 0.0f, 0},
        {0, 0, 64, 600, 147, 0, 1.0f, 0.0f, 0},
        {0, 0, 7, 5, 900, 0, 1.0f, 0.0f, 0},
    };
    int saved = lp_get_num_threads();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gemm_case *t = &cases[i];
        for (int kk = 0; kk < N_ALL_KERNELS; kk++) {
            if (!lp_gemm_kernel_available(k_all_kernels[kk]))
                continue;
            gemm_data d;
            make_data(t, 900 + i, &d);
            float *c0 = xalloc(d.c_len), *c1 = xalloc(d.c_len);
            memcpy(c0, d.c, d.c_len * sizeof(float));
            lp_set_num_threads(1);
            CHECK_OK(call_gemm(k_all_kernels[kk], t, &d));
            memcpy(c1, d.c, d.c_len * sizeof(float));
            for (int threads = 2; threads <= 3; threads++) {
                memcpy(d.c, c0, d.c_len * sizeof(float));
                lp_set_num_threads(threads);
                CHECK_OK(call_gemm(k_all_kernels[kk], t, &d));
                CHECK_MSG(memcmp(d.c, c1, d.c_len * sizeof(float)) == 0,
                          "%s m=%d n=%d k=%d: %d threads differ from 1",
                          lp_gemm_kernel_name(k_all_kernels[kk]), t->m, t->n,
                          t->k, threads);
            }
            lp_free(c0);
            lp_free(c1);
            free_data(&d);
        }
    }
    lp_set_num_threads(saved);
}

TEST(gemm_bad_input)
{
    float a[64] = {0}, b[64] = {0}, c[64] = {0};
    /* negative sizes */
    CHECK_FAILS(lp_sgemm(0, 0, -1, 4, 4, 1.0f, a, 4, b, 4, 0.0f, c, 4));
    CHECK_FAILS(lp_sgemm(0, 0, 4, -1, 4, 1.0f, a, 4, b, 4, 0.0f, c, 4));
    CHECK_FAILS(lp_sgemm(0, 0, 4, 4, -1, 1.0f, a, 4, b, 4, 0.0f, c, 4));
    /* leading dimensions below the row length of the stored matrix */
    CHECK_FAILS(lp_sgemm(0, 0, 4, 5, 6, 1.0f, a, 5, b, 5, 0.0f, c, 5));
    CHECK_FAILS(lp_sgemm(1, 0, 4, 5, 6, 1.0f, a, 3, b, 5, 0.0f, c, 5));
    CHECK_FAILS(lp_sgemm(0, 0, 4, 5, 6, 1.0f, a, 6, b, 4, 0.0f, c, 5));
    CHECK_FAILS(lp_sgemm(0, 1, 4, 5, 6, 1.0f, a, 6, b, 5, 0.0f, c, 5));
    CHECK_FAILS(lp_sgemm(0, 0, 4, 5, 6, 1.0f, a, 6, b, 5, 0.0f, c, 4));
    CHECK_FAILS(lp_sgemm(0, 0, 1, 1, 1, 1.0f, a, 0, b, 1, 0.0f, c, 1));
    /* NULL matrices */
    CHECK_FAILS(lp_sgemm(0, 0, 4, 4, 4, 1.0f, NULL, 4, b, 4, 0.0f, c, 4));
    CHECK_FAILS(lp_sgemm(0, 0, 4, 4, 4, 1.0f, a, 4, NULL, 4, 0.0f, c, 4));
    CHECK_FAILS(lp_sgemm(0, 0, 4, 4, 4, 1.0f, a, 4, b, 4, 0.0f, NULL, 4));
    /* kernels that are not compiled in */
    CHECK_FAILS(lp_sgemm_kernel((lp_gemm_kernel)99, 0, 0, 4, 4, 4, 1.0f, a,
                                4, b, 4, 0.0f, c, 4));
    for (int kk = 0; kk < N_ALL_KERNELS; kk++)
        if (!lp_gemm_kernel_available(k_all_kernels[kk]))
            CHECK_FAILS(lp_sgemm_kernel(k_all_kernels[kk], 0, 0, 4, 4, 4,
                                        1.0f, a, 4, b, 4, 0.0f, c, 4));
    /* empty products are fine, even with NULL operands they never touch */
    CHECK_OK(lp_sgemm(0, 0, 0, 4, 4, 1.0f, NULL, 4, NULL, 4, 0.0f, NULL, 4));
    CHECK_OK(lp_sgemm(0, 0, 4, 0, 4, 1.0f, NULL, 4, NULL, 1, 0.0f, NULL, 1));
    CHECK_OK(lp_sgemm(0, 0, 4, 4, 0, 1.0f, NULL, 1, NULL, 4, 0.0f, c, 4));
    for (int i = 0; i < 16; i++)
        CHECK(c[i] == 0.0f);
}
