/*
 * activation.c — ReLU, GELU (exact erf form and PyTorch's tanh
 * approximation), sigmoid, tanh, and softmax / log-softmax over the last
 * dimension, forward and backward.
 *
 * Forwards may run in place (out == in): every output element depends only
 * on inputs that are read before it is written. Backwards accumulate (+=).
 * Elementwise kernels split elements and the row kernels split rows between
 * threads; each value is computed by one thread in a fixed order, so
 * results never depend on the thread count.
 *
 * Formulas are chosen to avoid cancellation and overflow:
 *  - GELU (erf): 0.5 x (1 + erf(x/√2)) = 0.5 x erfc(-x/√2); the erfc form
 *    keeps full relative accuracy in the left tail, where 1 + erf(·)
 *    cancels. d/dx = Φ(x) + x φ(x).
 *  - GELU (tanh): 0.5 x (1 + tanh(u)) = x σ(2u), u = √(2/π)(x + 0.044715 x³),
 *    because 0.5 (1 + tanh u) = σ(2u); σ is evaluated without overflow
 *    and 1 - σ without cancellation.
 *    d/dx = σ(2u) + 2 x σ(2u) (1 - σ(2u)) √(2/π)(1 + 3·0.044715 x²).
 *  - softmax: exp(x - max) / Σ exp(x - max), sum in double;
 *    log-softmax: (x - max) - log Σ exp(x - max).
 */
#include "internal.h"

#include <math.h>

/* Parallelise only when there is enough work to pay for the threads. */
#define LP_ACT_PAR_MIN 65536

#define LP_SQRT1_2 0.70710678118654752440    /* 1/√2 */
#define LP_INV_SQRT_2PI 0.39894228040143267794 /* 1/√(2π) */
#define LP_SQRT_2_OVER_PI 0.79788456080286535588 /* √(2/π) */
#define LP_GELU_TANH_COEF 0.044715

/* ---- validation ------------------------------------------------------------ */

static int check_count(const char *op, size_t count)
{
    if (count == 0)
        return lp_set_error(LP_EINVAL, "%s: count must be positive", op);
    if (count > LP_MAX_ELEMENTS)
        return lp_set_error(LP_ENOMEM, "%s: count %zu is too large", op,
                            count);
    return LP_OK;
}

static int check_unary(const char *op, const float *out, const float *in,
                       size_t count)
{
    LP_TRY(check_count(op, count));
    LP_TRY(lp_require_ptr(op, "out", out));
    return lp_require_ptr(op, "in", in);
}

/* din, dout and the saved tensor (in or out) of an elementwise backward */
static int check_unary_backward(const char *op, const float *din,
                                const float *dout, const float *saved,
                                const char *saved_name, size_t count)
{
    LP_TRY(check_count(op, count));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    return lp_require_ptr(op, saved_name, saved);
}

static int check_gelu_kind(const char *op, lp_gelu_kind kind)
{
    if (kind != LP_GELU_ERF && kind != LP_GELU_TANH)
        return lp_set_error(LP_EINVAL, "%s: unknown GELU kind %d", op,
                            (int)kind);
    return LP_OK;
}

/* ---- scalar functions -------------------------------------------------------- */

/* σ(z) = 1 / (1 + e^-z), evaluated with e^-|z| <= 1 so nothing overflows. */
static inline float sigmoid_f(float z)
{
    if (z >= 0.0f)
        return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

/* NaN propagates (as PyTorch's clamp_min): only x <= 0 maps to 0. */
static inline float relu_f(float x) { return x <= 0.0f ? 0.0f : x; }

/*
 * GELU is evaluated in double and rounded once. In float, the rounding of
 * the argument x/√2 (or of u) is amplified in the left tail by the
 * condition number of erfc (~2z²) or of exp (~2|u|), costing up to 1e-5
 * relative there; libm's double erfc is about as fast as erfcf.
 */
static inline float gelu_erf_f(float xf)
{
    double x = xf;
    return (float)(0.5 * x * erfc(-x * LP_SQRT1_2));
}

/* Φ(x) + x φ(x) */
static inline float gelu_erf_grad(float xf)
{
    double x = xf;
    double cdf = 0.5 * erfc(-x * LP_SQRT1_2);
    double pdf = LP_INV_SQRT_2PI * exp(-0.5 * x * x);
    if (pdf == 0.0) /* |x| > ~38.6, also x = ±inf (no inf * 0) */
        return (float)cdf;
    return (float)(cdf + x * pdf);
}

/* σ(z) and 1 - σ(z), both to full relative accuracy, without overflow. */
static inline void sigmoid_pair(double z, double *s, double *one_minus_s)
{
    if (z >= 0.0) {
        double e = exp(-z);
        *s = 1.0 / (1.0 + e);
        *one_minus_s = e * *s;
    } else {
        double e = exp(z);
        *one_minus_s = 1.0 / (1.0 + e);
        *s = e * *one_minus_s;
    }
}

static inline double gelu_tanh_arg(double x)
{
    return LP_SQRT_2_OVER_PI * (x + LP_GELU_TANH_COEF * x * x * x);
}

static inline float gelu_tanh_f(float xf)
{
    double x = xf, s, one_minus_s;
    sigmoid_pair(2.0 * gelu_tanh_arg(x), &s, &one_minus_s);
    return (float)(x * s);
}

static inline float gelu_tanh_grad(float xf)
{
    double x = xf, s, one_minus_s;
    sigmoid_pair(2.0 * gelu_tanh_arg(x), &s, &one_minus_s);
    double t = s * one_minus_s;
    /* t underflows to 0 for |u| > ~373 (|x| > ~20); the second term is
     * then 0 as well, except that x = ±inf would give inf * 0. */
    if (t == 0.0)
        return (float)s;
    double du = LP_SQRT_2_OVER_PI * (1.0 + 3.0 * LP_GELU_TANH_COEF * x * x);
    return (float)(s + 2.0 * x * t * du);
}

/* ---- ReLU ---------------------------------------------------------------------- */

int lp_relu_forward(float *out, const float *in, size_t count)
{
    LP_TRY(check_unary("lp_relu_forward", out, in, count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = relu_f(in[i]);
    return LP_OK;
}

/* relu'(x) = 0 for x <= 0 (relu'(0) = 0), else 1 — NaN passes the
 * gradient through, as PyTorch's threshold_backward. */
int lp_relu_backward(float *din, const float *dout, const float *in,
                     size_t count)
{
    LP_TRY(check_unary_backward("lp_relu_backward", din, dout, in, "in",
                                count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        if (!(in[i] <= 0.0f))
            din[i] += dout[i];
    return LP_OK;
}

/* ---- GELU ---------------------------------------------------------------------- */

int lp_gelu_forward(float *out, const float *in, size_t count,
                    lp_gelu_kind kind)
{
    const char *op = "lp_gelu_forward";
    LP_TRY(check_unary(op, out, in, count));
    LP_TRY(check_gelu_kind(op, kind));
    ptrdiff_t n = (ptrdiff_t)count;
    if (kind == LP_GELU_ERF) {
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = gelu_erf_f(in[i]);
    } else {
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = gelu_tanh_f(in[i]);
    }
    return LP_OK;
}

int lp_gelu_backward(float *din, const float *dout, const float *in,
                     size_t count, lp_gelu_kind kind)
{
    const char *op = "lp_gelu_backward";
    LP_TRY(check_unary_backward(op, din, dout, in, "in", count));
    LP_TRY(check_gelu_kind(op, kind));
    ptrdiff_t n = (ptrdiff_t)count;
    if (kind == LP_GELU_ERF) {
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
        for (ptrdiff_t i = 0; i < n; i++)
            din[i] += dout[i] * gelu_erf_grad(in[i]);
    } else {
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
        for (ptrdiff_t i = 0; i < n; i++)
            din[i] += dout[i] * gelu_tanh_grad(in[i]);
    }
    return LP_OK;
}

/* ---- sigmoid and tanh ---------------------------------------------------------- */

int lp_sigmoid_forward(float *out, const float *in, size_t count)
{
    LP_TRY(check_unary("lp_sigmoid_forward", out, in, count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = sigmoid_f(in[i]);
    return LP_OK;
}

/* σ' = y (1 - y) with y the forward output */
int lp_sigmoid_backward(float *din, const float *dout, const float *out,
                        size_t count)
{
    LP_TRY(check_unary_backward("lp_sigmoid_backward", din, dout, out, "out",
                                count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        din[i] += dout[i] * (out[i] * (1.0f - out[i]));
    return LP_OK;
}

int lp_tanh_forward(float *out, const float *in, size_t count)
{
    LP_TRY(check_unary("lp_tanh_forward", out, in, count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tanhf(in[i]);
    return LP_OK;
}

/* tanh' = 1 - y² with y the forward output */
int lp_tanh_backward(float *din, const float *dout, const float *out,
                     size_t count)
{
    LP_TRY(check_unary_backward("lp_tanh_backward", din, dout, out, "out",
                                count));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_ACT_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        din[i] += dout[i] * (1.0f - out[i] * out[i]);
    return LP_OK;
}

/* ---- softmax and log-softmax --------------------------------------------------- */

static int check_rows(const char *op, const float *a, const char *a_name,
                      const float *b, const char *b_name, int rows, int dim)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "rows", rows));
    LP_TRY(lp_require_positive(op, "dim", dim));
    LP_TRY(lp_checked_count(op, &count, 2, rows, dim));
    LP_TRY(lp_require_ptr(op, a_name, a));
    return lp_require_ptr(op, b_name, b);
}

static float row_max(const float *x, int dim)
{
    float max = x[0];
    for (int j = 1; j < dim; j++)
        if (x[j] > max)
            max = x[j];
    return max;
}

/* y = exp(x - max) / Σ exp(x - max); in place: pass 2 writes y[j] only
 * after reading x[j]. */
static void softmax_row(float *y, const float *x, int dim)
{
    float max = row_max(x, dim);
    double sum = 0.0;
    for (int j = 0; j < dim; j++) {
        float e = expf(x[j] - max);
        y[j] = e;
        sum += e;
    }
    double inv = 1.0 / sum;
    for (int j = 0; j < dim; j++)
        y[j] = (float)((double)y[j] * inv);
}

/* y = (x - max) - log Σ exp(x - max) */
static void log_softmax_row(float *y, const float *x, int dim)
{
    float max = row_max(x, dim);
    double sum = 0.0;
    for (int j = 0; j < dim; j++)
        sum += exp((double)x[j] - (double)max);
    double log_sum = log(sum);
    for (int j = 0; j < dim; j++)
        y[j] = (float)(((double)x[j] - (double)max) - log_sum);
}

int lp_softmax_forward(float *out, const float *in, int rows, int dim)
{
    LP_TRY(check_rows("lp_softmax_forward", out, "out", in, "in", rows, dim));
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_ACT_PAR_MIN)
    for (int r = 0; r < rows; r++)
        softmax_row(out + (size_t)r * dim, in + (size_t)r * dim, dim);
    return LP_OK;
}

int lp_log_softmax_forward(float *out, const float *in, int rows, int dim)
{
    LP_TRY(check_rows("lp_log_softmax_forward", out, "out", in, "in", rows,
                      dim));
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_ACT_PAR_MIN)
    for (int r = 0; r < rows; r++)
        log_softmax_row(out + (size_t)r * dim, in + (size_t)r * dim, dim);
    return LP_OK;
}

/* softmax: dx = y ⊙ (dy - Σ dy·y) */
int lp_softmax_backward(float *din, const float *dout, const float *out,
                        int rows, int dim)
{
    const char *op = "lp_softmax_backward";
    LP_TRY(check_rows(op, din, "din", dout, "dout", rows, dim));
    LP_TRY(lp_require_ptr(op, "out", out));
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_ACT_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        size_t off = (size_t)r * dim;
        const float *y = out + off, *dy = dout + off;
        float *dx = din + off;
        double dot = 0.0;
        for (int j = 0; j < dim; j++)
            dot += (double)dy[j] * (double)y[j];
        for (int j = 0; j < dim; j++)
            dx[j] += (float)((double)y[j] * ((double)dy[j] - dot));
    }
    return LP_OK;
}

/* log-softmax: dx = dy - exp(y) Σ dy */
int lp_log_softmax_backward(float *din, const float *dout, const float *out,
                            int rows, int dim)
{
    const char *op = "lp_log_softmax_backward";
    LP_TRY(check_rows(op, din, "din", dout, "dout", rows, dim));
    LP_TRY(lp_require_ptr(op, "out", out));
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)dim > LP_ACT_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        size_t off = (size_t)r * dim;
        const float *y = out + off, *dy = dout + off;
        float *dx = din + off;
        double sum = 0.0;
        for (int j = 0; j < dim; j++)
            sum += dy[j];
        for (int j = 0; j < dim; j++)
            dx[j] += (float)((double)dy[j] - exp((double)y[j]) * sum);
    }
    return LP_OK;
}
