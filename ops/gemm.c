/*
 * gemm.c — placeholder GEMM (naive, correct). Replaced by the blocked
 * Goto/BLIS implementation.
 */
#include "internal.h"

static int gemm_check(int trans_a, int trans_b, int m, int n, int k,
                      const float *a, int lda, const float *b, int ldb,
                      const float *c, int ldc)
{
    const char *op = "lp_sgemm";
    if (m < 0 || n < 0 || k < 0)
        return lp_set_error(LP_EINVAL, "%s: negative size (m=%d n=%d k=%d)",
                            op, m, n, k);
    if (lda < (trans_a ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (trans_b ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) ||
        ldc < (n > 1 ? n : 1))
        return lp_set_error(LP_EINVAL, "%s: leading dimension too small", op);
    if (m > 0 && n > 0 && (c == NULL || (k > 0 && (a == NULL || b == NULL))))
        return lp_set_error(LP_EINVAL, "%s: NULL matrix", op);
    return LP_OK;
}

int lp_gemm_kernel_available(lp_gemm_kernel kernel)
{
    return kernel == LP_GEMM_AUTO || kernel == LP_GEMM_SCALAR;
}

const char *lp_gemm_kernel_name(lp_gemm_kernel kernel)
{
    (void)kernel;
    return "scalar-naive";
}

int lp_sgemm_kernel(lp_gemm_kernel kernel, int trans_a, int trans_b, int m,
                    int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc)
{
    if (!lp_gemm_kernel_available(kernel))
        return lp_set_error(LP_EINVAL, "lp_sgemm: kernel %d not compiled in",
                            (int)kernel);
    LP_TRY(gemm_check(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                acc += av * bv;
            }
            float *cp = &c[(size_t)i * ldc + j];
            *cp = beta == 0.0f ? alpha * acc : alpha * acc + beta * *cp;
        }
    }
    return LP_OK;
}

int lp_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc)
{
    return lp_sgemm_kernel(LP_GEMM_AUTO, trans_a, trans_b, m, n, k, alpha, a,
                           lda, b, ldb, beta, c, ldc);
}
