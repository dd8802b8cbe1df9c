/*
 * norm.c — BatchNorm2d (inference and training) and LayerNorm, forward and
 * backward, with PyTorch's semantics (nn.BatchNorm2d, nn.LayerNorm over the
 * last dimension).
 *
 * Notation: a BatchNorm channel or a LayerNorm row is a set of M values x;
 *     mean = Σx / M,  var = Σ(x - mean)² / M  (biased),
 *     rstd = 1 / sqrt(var + eps),  x̂ = (x - mean) rstd,  y = γ x̂ + β.
 * γ (gamma) and β (beta) may be NULL, meaning 1 and 0 (affine=False).
 *
 * Accuracy. Statistics are computed in double with two passes: the mean,
 * then the centred sums with the "corrected two-pass" term of Chan, Golub
 * and LeVeque ("Algorithms for computing the sample variance", 1983),
 * var = (Σd² - (Σd)²/M) / M with d = x - mean, which cancels the
 * rounding error of the mean. Inputs with a large mean and a small spread
 * (1000 + N(0, 1e-2)) therefore normalise as accurately as centred ones.
 * The backward passes do not trust a float save_mean either: rounded to
 * float, the mean of such an input is off by up to 3e-5, i.e. 0.3% of its
 * standard deviation. They use save_mean only as a pivot p and recover the
 * exact mean p + Σ(x - p)/M from the data, in the same pass that gathers
 * the gradient sums.
 *
 * Sums use four interleaved double accumulators in a fixed order (fast,
 * and never dependent on threads).
 *
 * Threads. Every output element and every per-channel / per-feature sum is
 * computed by exactly one thread, in an order fixed by the code, so the
 * results are bit-identical for any thread count: BatchNorm splits
 * channels (or planes), LayerNorm splits rows, and LayerNorm's
 * dgamma/dbeta split blocks of features, each summed over rows in order.
 *
 * All forwards also work in place (out == in): each channel / row is read
 * completely before it is written, by the thread that owns it.
 */
#include "internal.h"

#include <math.h>

/* Parallelise only when there is enough work to pay for the threads. */
#define LP_NORM_PAR_MIN 32768

/* LayerNorm dgamma/dbeta: features per block (one block per task). */
#define LP_LN_FEATURE_BLOCK 64

/* ---- sums over a contiguous run of floats -------------------------------- */

/* Σ x */
static double run_sum(const float *x, size_t len)
{
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        for (int k = 0; k < 4; k++)
            a[k] += x[i + k];
    for (; i < len; i++)
        a[0] += x[i];
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* Σ d and Σ d² with d = x - pivot, added to sums[0] and sums[1]. */
static void run_centred_sums(const float *x, size_t len, double pivot,
                             double sums[2])
{
    double s[4] = {0.0, 0.0, 0.0, 0.0}, q[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        for (int k = 0; k < 4; k++) {
            double d = (double)x[i + k] - pivot;
            s[k] += d;
            q[k] += d * d;
        }
    for (; i < len; i++) {
        double d = (double)x[i] - pivot;
        s[0] += d;
        q[0] += d * d;
    }
    sums[0] += (s[0] + s[1]) + (s[2] + s[3]);
    sums[1] += (q[0] + q[1]) + (q[2] + q[3]);
}

/* What the backward passes need from one set, with d = x - pivot and
 * g = dy * gamma_i (gamma NULL: g = dy). */
typedef struct {
    double d;   /* Σ d  */
    double dd;  /* Σ d² */
    double g;   /* Σ g  */
    double gd;  /* Σ g d */
} grad_sums;

/* Adds one value's terms to lane k of the four sums. */
static inline void grad_step(double s[4][4], int k, float x, float dy,
                             const float *gamma_i, double pivot)
{
    double d = (double)x - pivot;
    double g = gamma_i != NULL ? (double)dy * (double)*gamma_i : (double)dy;
    s[0][k] += d;
    s[1][k] += d * d;
    s[2][k] += g;
    s[3][k] += g * d;
}

static void run_grad_sums(grad_sums *out, const float *x, const float *dy,
                          const float *gamma, size_t len, double pivot)
{
    double s[4][4] = {{0.0}}; /* [quantity][lane] */
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        for (int k = 0; k < 4; k++)
            grad_step(s, k, x[i + k], dy[i + k],
                      gamma != NULL ? gamma + i + k : NULL, pivot);
    for (; i < len; i++)
        grad_step(s, 0, x[i], dy[i], gamma != NULL ? gamma + i : NULL, pivot);
    out->d += (s[0][0] + s[0][1]) + (s[0][2] + s[0][3]);
    out->dd += (s[1][0] + s[1][1]) + (s[1][2] + s[1][3]);
    out->g += (s[2][0] + s[2][1]) + (s[2][2] + s[2][3]);
    out->gd += (s[3][0] + s[3][1]) + (s[3][2] + s[3][3]);
}

/* ---- sets: `runs` runs of `len` floats, `stride` apart -------------------- */

/* A BatchNorm channel is n runs of hw floats, c*hw apart; a LayerNorm row is
 * one run of dim floats. */
typedef struct {
    size_t runs, len, stride;
} value_set;

/* Mean and biased variance by the corrected two-pass algorithm. */
static void set_moments(const float *x, const value_set *s, double *mean,
                        double *var)
{
    double m = (double)(s->runs * s->len), total = 0.0, sums[2] = {0.0, 0.0};
    for (size_t r = 0; r < s->runs; r++)
        total += run_sum(x + r * s->stride, s->len);
    *mean = total / m;
    for (size_t r = 0; r < s->runs; r++)
        run_centred_sums(x + r * s->stride, s->len, *mean, sums);
    *var = (sums[1] - sums[0] * sums[0] / m) / m;
    if (*var < 0.0) /* rounding only; the exact value is >= 0 */
        *var = 0.0;
}

/* ---- validation ----------------------------------------------------------- */

static int check_eps(const char *op, float eps)
{
    if (!(eps >= 0.0f) || isinf(eps))
        return lp_set_error(LP_EINVAL, "%s: eps must be finite and >= 0 "
                            "(got %g)", op, (double)eps);
    return LP_OK;
}

static int check_bn_shape(const char *op, int n, int c, int hw)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "n", n));
    LP_TRY(lp_require_positive(op, "c", c));
    LP_TRY(lp_require_positive(op, "hw", hw));
    return lp_checked_count(op, &count, 3, n, c, hw);
}

static value_set bn_channel_set(int n, int c, int hw)
{
    value_set s = {(size_t)n, (size_t)hw, (size_t)c * (size_t)hw};
    return s;
}

/* Work estimate for the OpenMP `if` clauses (no overflow: checked). */
#define BN_COUNT(n, c, hw) ((size_t)(n) * (size_t)(c) * (size_t)(hw))

/* ---- BatchNorm2d, inference ----------------------------------------------- */

static double rsqrt_eps(double var, float eps)
{
    return 1.0 / sqrt(var + (double)eps);
}

/*
 * y = (x - mean) * scale + beta with scale = gamma / sqrt(var + eps)
 * computed in double. The float x - mean is exact when x is close to the
 * mean (Sterbenz), so unlike the folded x * scale + (beta - mean * scale)
 * this does not lose digits when |mean| >> sqrt(var).
 */
int lp_batchnorm2d_forward_eval(float *out, const float *in,
                                const float *gamma, const float *beta,
                                const float *mean, const float *var,
                                float eps, int n, int c, int hw)
{
    const char *op = "lp_batchnorm2d_forward_eval";
    LP_TRY(check_bn_shape(op, n, c, hw));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(lp_require_ptr(op, "mean", mean));
    LP_TRY(lp_require_ptr(op, "var", var));
    LP_TRY(check_eps(op, eps));
    ptrdiff_t planes = (ptrdiff_t)n * c;
#pragma omp parallel for schedule(static) if (BN_COUNT(n, c, hw) > LP_NORM_PAR_MIN)
    for (ptrdiff_t p = 0; p < planes; p++) {
        int ch = (int)(p % c);
        double g = gamma != NULL ? gamma[ch] : 1.0;
        float scale = (float)(g * rsqrt_eps(var[ch], eps));
        float shift = beta != NULL ? beta[ch] : 0.0f;
        float m = mean[ch];
        const float *x = in + (size_t)p * hw;
        float *y = out + (size_t)p * hw;
        for (int i = 0; i < hw; i++)
            y[i] = (x[i] - m) * scale + shift;
    }
    return LP_OK;
}

/*
 * With fixed statistics the layer is affine per channel:
 *   din += dy * gamma * rstd,  dgamma += Σ dy x̂,  dbeta += Σ dy.
 * `in` is needed only for dgamma.
 */
int lp_batchnorm2d_backward_eval(float *din, float *dgamma, float *dbeta,
                                 const float *dout, const float *in,
                                 const float *gamma, const float *mean,
                                 const float *var, float eps, int n, int c,
                                 int hw)
{
    const char *op = "lp_batchnorm2d_backward_eval";
    LP_TRY(check_bn_shape(op, n, c, hw));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    LP_TRY(lp_require_ptr(op, "mean", mean));
    LP_TRY(lp_require_ptr(op, "var", var));
    if (dgamma != NULL)
        LP_TRY(lp_require_ptr(op, "in (needed for dgamma)", in));
    LP_TRY(check_eps(op, eps));
    if (din == NULL && dgamma == NULL && dbeta == NULL)
        return LP_OK;
    value_set set = bn_channel_set(n, c, hw);
#pragma omp parallel for schedule(static) if (BN_COUNT(n, c, hw) > LP_NORM_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        double rstd = rsqrt_eps(var[ch], eps);
        size_t first = (size_t)ch * set.len;
        if (din != NULL) {
            float scale = (float)((gamma != NULL ? gamma[ch] : 1.0) * rstd);
            for (size_t r = 0; r < set.runs; r++) {
                const float *dy = dout + first + r * set.stride;
                float *dx = din + first + r * set.stride;
                for (size_t i = 0; i < set.len; i++)
                    dx[i] += dy[i] * scale;
            }
        }
        if (dgamma != NULL || dbeta != NULL) {
            grad_sums s = {0.0, 0.0, 0.0, 0.0};
            for (size_t r = 0; r < set.runs; r++) {
                const float *dy = dout + first + r * set.stride;
                if (dgamma != NULL)
                    run_grad_sums(&s, in + first + r * set.stride, dy, NULL,
                                  set.len, mean[ch]);
                else
                    s.g += run_sum(dy, set.len);
            }
            if (dgamma != NULL)
                dgamma[ch] += (float)(s.gd * rstd);
            if (dbeta != NULL)
                dbeta[ch] += (float)s.g;
        }
    }
    return LP_OK;
}

/* ---- BatchNorm2d, training ------------------------------------------------ */

static int check_momentum(const char *op, float momentum)
{
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return lp_set_error(LP_EINVAL, "%s: momentum must be in [0, 1] "
                            "(got %g)", op, (double)momentum);
    return LP_OK;
}

/* PyTorch: running = (1 - momentum) running + momentum batch_stat, with the
 * UNBIASED variance var * M / (M - 1) for running_var. */
static void update_running(float *running, double batch_stat, float momentum)
{
    double m = momentum;
    *running = (float)((1.0 - m) * (double)*running + m * batch_stat);
}

int lp_batchnorm2d_forward_train(float *out, float *save_mean,
                                 float *save_rstd, const float *in,
                                 const float *gamma, const float *beta,
                                 float eps, float momentum,
                                 float *running_mean, float *running_var,
                                 int n, int c, int hw)
{
    const char *op = "lp_batchnorm2d_forward_train";
    LP_TRY(check_bn_shape(op, n, c, hw));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "save_mean", save_mean));
    LP_TRY(lp_require_ptr(op, "save_rstd", save_rstd));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(check_eps(op, eps));
    LP_TRY(check_momentum(op, momentum));
    value_set set = bn_channel_set(n, c, hw);
    size_t m = set.runs * set.len;
    /* As PyTorch: the unbiased variance needs two values per channel. */
    if (m < 2)
        return lp_set_error(LP_EINVAL, "%s: expected more than 1 value per "
                            "channel when training (n*hw = %zu)", op, m);
    double unbias = (double)m / (double)(m - 1);
#pragma omp parallel for schedule(static) if (BN_COUNT(n, c, hw) > LP_NORM_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        size_t first = (size_t)ch * set.len;
        double mean, var;
        set_moments(in + first, &set, &mean, &var);
        double rstd = rsqrt_eps(var, eps);
        double scale = (gamma != NULL ? gamma[ch] : 1.0) * rstd;
        double shift = beta != NULL ? beta[ch] : 0.0;
        for (size_t r = 0; r < set.runs; r++) {
            const float *x = in + first + r * set.stride;
            float *y = out + first + r * set.stride;
            for (size_t i = 0; i < set.len; i++)
                y[i] = (float)(((double)x[i] - mean) * scale + shift);
        }
        save_mean[ch] = (float)mean;
        save_rstd[ch] = (float)rstd;
        if (running_mean != NULL)
            update_running(&running_mean[ch], mean, momentum);
        if (running_var != NULL)
            update_running(&running_var[ch], var * unbias, momentum);
    }
    return LP_OK;
}

/*
 * Backward through the batch statistics. With ĝ = dy γ (γ constant per
 * channel), the gradient of y = γ x̂ + β w.r.t. x is
 *   dx = rstd/M (M ĝ - Σ ĝ - x̂ Σ ĝ x̂) = γ rstd (dy - Σdy/M - x̂ Σ(dy x̂)/M)
 * (Ioffe & Szegedy 2015, section 3, with the mean and variance terms
 * combined), dγ = Σ dy x̂, dβ = Σ dy.
 * Σ dy x̂ = rstd (Σ dy (x - p) - shift Σ dy) where p = save_mean and
 * shift = Σ(x - p)/M puts the mean back to full precision.
 */
int lp_batchnorm2d_backward_train(float *din, float *dgamma, float *dbeta,
                                  const float *dout, const float *in,
                                  const float *gamma, const float *save_mean,
                                  const float *save_rstd, int n, int c,
                                  int hw)
{
    const char *op = "lp_batchnorm2d_backward_train";
    LP_TRY(check_bn_shape(op, n, c, hw));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(lp_require_ptr(op, "save_mean", save_mean));
    LP_TRY(lp_require_ptr(op, "save_rstd", save_rstd));
    if (din == NULL && dgamma == NULL && dbeta == NULL)
        return LP_OK;
    value_set set = bn_channel_set(n, c, hw);
    double m = (double)(set.runs * set.len);
#pragma omp parallel for schedule(static) if (BN_COUNT(n, c, hw) > LP_NORM_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        size_t first = (size_t)ch * set.len;
        double pivot = save_mean[ch], rstd = save_rstd[ch];
        grad_sums s = {0.0, 0.0, 0.0, 0.0};
        for (size_t r = 0; r < set.runs; r++)
            run_grad_sums(&s, in + first + r * set.stride,
                          dout + first + r * set.stride, NULL, set.len, pivot);
        double shift = s.d / m;
        double sum_dy = s.g;
        double sum_dy_xhat = rstd * (s.gd - shift * s.g);
        if (dgamma != NULL)
            dgamma[ch] += (float)sum_dy_xhat;
        if (dbeta != NULL)
            dbeta[ch] += (float)sum_dy;
        if (din == NULL)
            continue;
        double scale = (gamma != NULL ? gamma[ch] : 1.0) * rstd;
        double mean_dy = sum_dy / m, mean_dy_xhat = sum_dy_xhat / m;
        for (size_t r = 0; r < set.runs; r++) {
            const float *x = in + first + r * set.stride;
            const float *dy = dout + first + r * set.stride;
            float *dx = din + first + r * set.stride;
            for (size_t i = 0; i < set.len; i++) {
                double xhat = ((double)x[i] - pivot - shift) * rstd;
                dx[i] += (float)(scale * ((double)dy[i] - mean_dy -
                                          xhat * mean_dy_xhat));
            }
        }
    }
    return LP_OK;
}

/* ---- LayerNorm -------------------------------------------------------------- */

static int check_ln_shape(const char *op, int rows, int dim)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "rows", rows));
    LP_TRY(lp_require_positive(op, "dim", dim));
    return lp_checked_count(op, &count, 2, rows, dim);
}

int lp_layernorm_forward(float *out, float *save_mean, float *save_rstd,
                         const float *in, const float *gamma,
                         const float *beta, float eps, int rows, int dim)
{
    const char *op = "lp_layernorm_forward";
    LP_TRY(check_ln_shape(op, rows, dim));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(check_eps(op, eps));
    value_set set = {1, (size_t)dim, (size_t)dim};
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_NORM_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double mean, var;
        set_moments(x, &set, &mean, &var);
        double rstd = rsqrt_eps(var, eps);
        for (int j = 0; j < dim; j++) {
            double xhat = ((double)x[j] - mean) * rstd;
            if (gamma != NULL)
                xhat *= gamma[j];
            y[j] = (float)(beta != NULL ? xhat + beta[j] : xhat);
        }
        if (save_mean != NULL)
            save_mean[r] = (float)mean;
        if (save_rstd != NULL)
            save_rstd[r] = (float)rstd;
    }
    return LP_OK;
}

/*
 * One row's mean and rstd for the backward plus, when din is wanted, its
 * input gradient. With ĝ_j = dy_j γ_j:
 *   dx = rstd (ĝ - Σĝ/M - x̂ Σ(ĝ x̂)/M)        (Ba, Kiros, Hinton 2016)
 * The mean is save_mean + Σ(x - save_mean)/M, exact in double; without
 * save_mean the pivot is the row mean itself. Without save_rstd the
 * variance is Σ(x - p)²/M - shift², accurate because p is (almost) the mean.
 */
static void layernorm_backward_row(float *dx, const float *dy, const float *x,
                                   const float *gamma, const float *save_mean,
                                   const float *save_rstd, float eps, int r,
                                   int dim, double *mean_out,
                                   double *rstd_out)
{
    double m = (double)dim;
    double pivot = save_mean != NULL ? (double)save_mean[r]
                                     : run_sum(x, (size_t)dim) / m;
    grad_sums s = {0.0, 0.0, 0.0, 0.0};
    run_grad_sums(&s, x, dy, gamma, (size_t)dim, pivot);
    double shift = s.d / m;
    double rstd;
    if (save_rstd != NULL) {
        rstd = save_rstd[r];
    } else {
        double var = s.dd / m - shift * shift;
        rstd = rsqrt_eps(var > 0.0 ? var : 0.0, eps);
    }
    *mean_out = pivot + shift;
    *rstd_out = rstd;
    if (dx == NULL)
        return;
    double mean_g = s.g / m;
    double mean_g_xhat = rstd * (s.gd - shift * s.g) / m;
    for (int j = 0; j < dim; j++) {
        double xhat = ((double)x[j] - pivot - shift) * rstd;
        double g = gamma != NULL ? (double)dy[j] * (double)gamma[j]
                                 : (double)dy[j];
        dx[j] += (float)(rstd * (g - mean_g - xhat * mean_g_xhat));
    }
}

/*
 * dgamma_j += Σ_r dy[r,j] x̂[r,j], dbeta_j += Σ_r dy[r,j]: each block of
 * features belongs to one thread and is summed over rows in order.
 * stats holds (mean, rstd) per row.
 */
static void layernorm_param_grads(float *dgamma, float *dbeta,
                                  const float *dout, const float *in,
                                  const double *stats, int rows, int dim)
{
    int blocks = (dim + LP_LN_FEATURE_BLOCK - 1) / LP_LN_FEATURE_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_NORM_PAR_MIN)
    for (int b = 0; b < blocks; b++) {
        int j0 = b * LP_LN_FEATURE_BLOCK;
        int len = dim - j0 < LP_LN_FEATURE_BLOCK ? dim - j0
                                                 : LP_LN_FEATURE_BLOCK;
        double sum_g[LP_LN_FEATURE_BLOCK] = {0.0};
        double sum_b[LP_LN_FEATURE_BLOCK] = {0.0};
        for (int r = 0; r < rows; r++) {
            const float *x = in + (size_t)r * dim + j0;
            const float *dy = dout + (size_t)r * dim + j0;
            double mean = stats[2 * (size_t)r], rstd = stats[2 * (size_t)r + 1];
            for (int j = 0; j < len; j++) {
                sum_g[j] += (double)dy[j] * (((double)x[j] - mean) * rstd);
                sum_b[j] += dy[j];
            }
        }
        for (int j = 0; j < len; j++) {
            if (dgamma != NULL)
                dgamma[j0 + j] += (float)sum_g[j];
            if (dbeta != NULL)
                dbeta[j0 + j] += (float)sum_b[j];
        }
    }
}

int lp_layernorm_backward(float *din, float *dgamma, float *dbeta,
                          const float *dout, const float *in,
                          const float *gamma, const float *save_mean,
                          const float *save_rstd, float eps, int rows,
                          int dim)
{
    const char *op = "lp_layernorm_backward";
    LP_TRY(check_ln_shape(op, rows, dim));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(check_eps(op, eps));
    int want_params = dgamma != NULL || dbeta != NULL;
    if (din == NULL && !want_params)
        return LP_OK;
    double *stats = NULL;
    if (want_params) {
        stats = lp_alloc(2 * (size_t)rows, sizeof *stats);
        if (stats == NULL)
            return LP_ENOMEM;
    }
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_NORM_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        size_t off = (size_t)r * dim;
        double mean, rstd;
        layernorm_backward_row(din != NULL ? din + off : NULL, dout + off,
                               in + off, gamma, save_mean, save_rstd, eps, r,
                               dim, &mean, &rstd);
        if (stats != NULL) {
            stats[2 * (size_t)r] = mean;
            stats[2 * (size_t)r + 1] = rstd;
        }
    }
    if (want_params)
        layernorm_param_grads(dgamma, dbeta, dout, in, stats, rows, dim);
    lp_free(stats);
    return LP_OK;
}
