/*
 * linear.c — fully connected layer, matrix product and batched matrix
 * product, forward and backward. Every product goes through lp_sgemm
 * (row-major), which parallelises internally and never splits K between
 * threads, so results are bit-identical for any thread count.
 *
 * Shapes follow PyTorch: a linear weight is [out_f, in_f], so the forward
 * is out = in * W^T + b and the backward is (with G = d loss / d out)
 *     d in = G * W,   d W = G^T * in,   d b = sum over rows of G.
 */
#include "internal.h"

#include <string.h>

/* ---- validation ----------------------------------------------------- */

/* Check that the three matrix sizes are positive and that the products
 * x*y, y*z and x*z fit (every operand of a linear/matmul is one of them). */
static int check_three_dims(const char *op, const char *nx, int x,
                            const char *ny, int y, const char *nz, int z)
{
    size_t count;
    LP_TRY(lp_require_positive(op, nx, x));
    LP_TRY(lp_require_positive(op, ny, y));
    LP_TRY(lp_require_positive(op, nz, z));
    LP_TRY(lp_checked_count(op, &count, 2, x, y));
    LP_TRY(lp_checked_count(op, &count, 2, y, z));
    LP_TRY(lp_checked_count(op, &count, 2, x, z));
    return LP_OK;
}

/* Batched version: batch * (x*y), batch * (y*z), batch * (x*z) must fit. */
static int check_batched_dims(const char *op, int batch, int m, int k, int n)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "batch", batch));
    LP_TRY(check_three_dims(op, "m", m, "k", k, "n", n));
    LP_TRY(lp_checked_count(op, &count, 3, batch, m, k));
    LP_TRY(lp_checked_count(op, &count, 3, batch, k, n));
    LP_TRY(lp_checked_count(op, &count, 3, batch, m, n));
    return LP_OK;
}

/* ---- linear ----------------------------------------------------------- */

int lp_linear_forward(float *out, const float *in, const float *w,
                      const float *b, int rows, int in_f, int out_f)
{
    const char *op = "lp_linear_forward";
    float beta = 0.0f;
    LP_TRY(check_three_dims(op, "rows", rows, "in_features", in_f,
                            "out_features", out_f));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(lp_require_ptr(op, "w", w));

    if (b != NULL) {
        /* Start every output row at the bias and let the GEMM add to it. */
        for (int r = 0; r < rows; r++)
            memcpy(out + (size_t)r * out_f, b, (size_t)out_f * sizeof(float));
        beta = 1.0f;
    }
    /* out[rows, out_f] = in[rows, in_f] * w[out_f, in_f]^T (+ out) */
    return lp_sgemm(0, 1, rows, out_f, in_f, 1.0f, in, in_f, w, in_f, beta,
                    out, out_f);
}

/* Columns of dout summed per block, so each thread owns whole columns and
 * walks the rows in order: the sum for column j is the same double-precision
 * sequence for any thread count. */
#define LP_BIAS_BLOCK 64

static void add_column_sums(float *db, const float *dout, int rows, int cols)
{
    int n_blocks = (cols + LP_BIAS_BLOCK - 1) / LP_BIAS_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int blk = 0; blk < n_blocks; blk++) {
        double acc[LP_BIAS_BLOCK] = {0};
        int j0 = blk * LP_BIAS_BLOCK;
        int width = cols - j0 < LP_BIAS_BLOCK ? cols - j0 : LP_BIAS_BLOCK;
        for (int r = 0; r < rows; r++) {
            const float *row = dout + (size_t)r * cols + j0;
            for (int j = 0; j < width; j++)
                acc[j] += row[j];
        }
        for (int j = 0; j < width; j++)
            db[j0 + j] += (float)acc[j];
    }
}

int lp_linear_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int rows, int in_f,
                       int out_f)
{
    const char *op = "lp_linear_backward";
    LP_TRY(check_three_dims(op, "rows", rows, "in_features", in_f,
                            "out_features", out_f));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    if (din != NULL)
        LP_TRY(lp_require_ptr(op, "w (needed for din)", w));
    if (dw != NULL)
        LP_TRY(lp_require_ptr(op, "in (needed for dw)", in));

    /* din[rows, in_f] += dout[rows, out_f] * w[out_f, in_f] */
    if (din != NULL)
        LP_TRY(lp_sgemm(0, 0, rows, in_f, out_f, 1.0f, dout, out_f, w, in_f,
                        1.0f, din, in_f));
    /* dw[out_f, in_f] += dout^T[out_f, rows] * in[rows, in_f] */
    if (dw != NULL)
        LP_TRY(lp_sgemm(1, 0, out_f, in_f, rows, 1.0f, dout, out_f, in, in_f,
                        1.0f, dw, in_f));
    if (db != NULL)
        add_column_sums(db, dout, rows, out_f);
    return LP_OK;
}

/* ---- matmul ----------------------------------------------------------- */

int lp_matmul_forward(float *c, const float *a, const float *b, int m, int k,
                      int n)
{
    const char *op = "lp_matmul_forward";
    LP_TRY(check_three_dims(op, "m", m, "k", k, "n", n));
    LP_TRY(lp_require_ptr(op, "c", c));
    LP_TRY(lp_require_ptr(op, "a", a));
    LP_TRY(lp_require_ptr(op, "b", b));
    return lp_sgemm(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}

int lp_matmul_backward(float *da, float *db, const float *dc, const float *a,
                       const float *b, int m, int k, int n)
{
    const char *op = "lp_matmul_backward";
    LP_TRY(check_three_dims(op, "m", m, "k", k, "n", n));
    LP_TRY(lp_require_ptr(op, "dc", dc));
    if (da != NULL)
        LP_TRY(lp_require_ptr(op, "b (needed for da)", b));
    if (db != NULL)
        LP_TRY(lp_require_ptr(op, "a (needed for db)", a));

    /* da[m, k] += dc[m, n] * b[k, n]^T */
    if (da != NULL)
        LP_TRY(lp_sgemm(0, 1, m, k, n, 1.0f, dc, n, b, n, 1.0f, da, k));
    /* db[k, n] += a[m, k]^T * dc[m, n] */
    if (db != NULL)
        LP_TRY(lp_sgemm(1, 0, k, n, m, 1.0f, a, k, dc, n, 1.0f, db, n));
    return LP_OK;
}

/* ---- batched matmul --------------------------------------------------- */

/*
 * Storage of one batch item: a_i is m x k (lda = k), or k x m when
 * trans_a (lda = m); b_i is k x n (ldb = n), or n x k when trans_b
 * (ldb = k). Either way a_i has m*k and b_i k*n elements.
 */
int lp_bmm_forward(float *c, const float *a, const float *b, int batch, int m,
                   int k, int n, int trans_a, int trans_b)
{
    const char *op = "lp_bmm_forward";
    size_t a_size, b_size, c_size;
    int lda = trans_a ? m : k, ldb = trans_b ? k : n;
    LP_TRY(check_batched_dims(op, batch, m, k, n));
    LP_TRY(lp_require_ptr(op, "c", c));
    LP_TRY(lp_require_ptr(op, "a", a));
    LP_TRY(lp_require_ptr(op, "b", b));
    a_size = (size_t)m * k;
    b_size = (size_t)k * n;
    c_size = (size_t)m * n;
    for (int i = 0; i < batch; i++)
        LP_TRY(lp_sgemm(trans_a, trans_b, m, n, k, 1.0f, a + i * a_size, lda,
                        b + i * b_size, ldb, 0.0f, c + i * c_size, n));
    return LP_OK;
}

/*
 * With C = op(A) op(B) and G = dC, the gradients of the operands are
 *     d op(A) = G op(B)^T   [m, k]      d op(B) = op(A)^T G   [k, n].
 * When A is stored transposed (trans_a), dA = (d op(A))^T = op(B) G^T,
 * which is again a single GEMM, laid out as A is ([k, m]); likewise
 * dB = (d op(B))^T = G^T op(A) ([n, k]) when trans_b. Transposing op(X)
 * flips the trans flag used for X's storage.
 */
static int bmm_backward_item(float *da, float *db, const float *g,
                             const float *a, const float *b, int m, int k,
                             int n, int trans_a, int trans_b)
{
    int lda = trans_a ? m : k, ldb = trans_b ? k : n;
    if (da != NULL) {
        if (!trans_a) /* da[m,k] += G[m,n] op(B)^T[n,k] */
            LP_TRY(lp_sgemm(0, !trans_b, m, k, n, 1.0f, g, n, b, ldb, 1.0f,
                            da, k));
        else /* da[k,m] += op(B)[k,n] G^T[n,m] */
            LP_TRY(lp_sgemm(trans_b, 1, k, m, n, 1.0f, b, ldb, g, n, 1.0f,
                            da, m));
    }
    if (db != NULL) {
        if (!trans_b) /* db[k,n] += op(A)^T[k,m] G[m,n] */
            LP_TRY(lp_sgemm(!trans_a, 0, k, n, m, 1.0f, a, lda, g, n, 1.0f,
                            db, n));
        else /* db[n,k] += G^T[n,m] op(A)[m,k] */
            LP_TRY(lp_sgemm(1, trans_a, n, k, m, 1.0f, g, n, a, lda, 1.0f,
                            db, k));
    }
    return LP_OK;
}

int lp_bmm_backward(float *da, float *db, const float *dc, const float *a,
                    const float *b, int batch, int m, int k, int n,
                    int trans_a, int trans_b)
{
    const char *op = "lp_bmm_backward";
    size_t a_size, b_size, c_size;
    LP_TRY(check_batched_dims(op, batch, m, k, n));
    LP_TRY(lp_require_ptr(op, "dc", dc));
    if (da != NULL)
        LP_TRY(lp_require_ptr(op, "b (needed for da)", b));
    if (db != NULL)
        LP_TRY(lp_require_ptr(op, "a (needed for db)", a));
    if (da == NULL && db == NULL)
        return LP_OK;
    a_size = (size_t)m * k;
    b_size = (size_t)k * n;
    c_size = (size_t)m * n;
    for (int i = 0; i < batch; i++)
        LP_TRY(bmm_backward_item(da ? da + i * a_size : NULL,
                                 db ? db + i * b_size : NULL, dc + i * c_size,
                                 a ? a + i * a_size : NULL,
                                 b ? b + i * b_size : NULL, m, k, n, trans_a,
                                 trans_b));
    return LP_OK;
}
