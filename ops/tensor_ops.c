/*
 * tensor_ops.c — tensor plumbing: residual add, token concatenation and
 * slicing ([n, t, d] sequences), and the CIFAR ResNet "option A" shortcut
 * (spatial subsampling plus zero channel padding, He et al. 2016, §4.2).
 *
 * All of these are linear maps, so each backward is the exact transpose of
 * its forward: it adds every output gradient to the single input element
 * the output was copied from (and drops the gradients of zero padding).
 *
 * Work is split between threads by batch element or by plane; every
 * output and gradient element is written by exactly one thread, so the
 * results do not depend on the thread count. Except for lp_add_forward
 * (where out may alias a or b), outputs must not overlap inputs.
 */
#include "internal.h"

#include <limits.h>
#include <string.h>

/* Parallelise only when there is enough work to pay for the threads. */
#define LP_TENSOR_PAR_MIN 65536

/* ---- residual add ----------------------------------------------------------- */

static int check_count(const char *op, size_t count)
{
    if (count == 0)
        return lp_set_error(LP_EINVAL, "%s: count must be positive", op);
    if (count > LP_MAX_ELEMENTS)
        return lp_set_error(LP_ENOMEM, "%s: count %zu is too large", op,
                            count);
    return LP_OK;
}

int lp_add_forward(float *out, const float *a, const float *b, size_t count)
{
    const char *op = "lp_add_forward";
    LP_TRY(check_count(op, count));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "a", a));
    LP_TRY(lp_require_ptr(op, "b", b));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_TENSOR_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
    return LP_OK;
}

/* da += dout ; db += dout. da == db (y = x + x) gets both contributions. */
int lp_add_backward(float *da, float *db, const float *dout, size_t count)
{
    const char *op = "lp_add_backward";
    LP_TRY(check_count(op, count));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    ptrdiff_t n = (ptrdiff_t)count;
#pragma omp parallel for schedule(static) if (n > LP_TENSOR_PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++) {
        if (da != NULL)
            da[i] += dout[i];
        if (db != NULL)
            db[i] += dout[i];
    }
    return LP_OK;
}

/* dst[i] += src[i] */
static void add_into(float *dst, const float *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] += src[i];
}

/* ---- concatenation along tokens --------------------------------------------- */

static int check_concat(const char *op, int n, int ta, int tb, int d)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "n", n));
    LP_TRY(lp_require_positive(op, "ta", ta));
    LP_TRY(lp_require_positive(op, "tb", tb));
    LP_TRY(lp_require_positive(op, "d", d));
    if ((long long)ta + tb > INT_MAX)
        return lp_set_error(LP_EINVAL, "%s: ta + tb = %lld tokens is too "
                            "many", op, (long long)ta + tb);
    return lp_checked_count(op, &count, 3, n, ta + tb, d);
}

/* out[i] = a[i] ++ b[i] for each batch element i */
int lp_concat_tokens_forward(float *out, const float *a, const float *b,
                             int n, int ta, int tb, int d)
{
    const char *op = "lp_concat_tokens_forward";
    LP_TRY(check_concat(op, n, ta, tb, d));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "a", a));
    LP_TRY(lp_require_ptr(op, "b", b));
    size_t len_a = (size_t)ta * d, len_b = (size_t)tb * d;
    size_t len_out = len_a + len_b;
#pragma omp parallel for schedule(static) if ((size_t)n * len_out > LP_TENSOR_PAR_MIN)
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * len_out;
        memcpy(o, a + (size_t)i * len_a, len_a * sizeof(float));
        memcpy(o + len_a, b + (size_t)i * len_b, len_b * sizeof(float));
    }
    return LP_OK;
}

int lp_concat_tokens_backward(float *da, float *db, const float *dout, int n,
                              int ta, int tb, int d)
{
    const char *op = "lp_concat_tokens_backward";
    LP_TRY(check_concat(op, n, ta, tb, d));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    size_t len_a = (size_t)ta * d, len_b = (size_t)tb * d;
    size_t len_out = len_a + len_b;
#pragma omp parallel for schedule(static) if ((size_t)n * len_out > LP_TENSOR_PAR_MIN)
    for (int i = 0; i < n; i++) {
        const float *g = dout + (size_t)i * len_out;
        if (da != NULL)
            add_into(da + (size_t)i * len_a, g, len_a);
        if (db != NULL)
            add_into(db + (size_t)i * len_b, g + len_a, len_b);
    }
    return LP_OK;
}

/* ---- slicing along tokens --------------------------------------------------- */

static int check_slice(const char *op, int n, int t, int d, int start, int len)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "n", n));
    LP_TRY(lp_require_positive(op, "t", t));
    LP_TRY(lp_require_positive(op, "d", d));
    LP_TRY(lp_require_positive(op, "len", len));
    LP_TRY(lp_require_nonneg(op, "start", start));
    if (start > t - len) /* no overflow: t, len > 0 */
        return lp_set_error(LP_EINVAL, "%s: tokens [%d, %lld) are outside "
                            "[0, %d)", op, start, (long long)start + len, t);
    return lp_checked_count(op, &count, 3, n, t, d);
}

int lp_slice_tokens_forward(float *out, const float *in, int n, int t, int d,
                            int start, int len)
{
    const char *op = "lp_slice_tokens_forward";
    LP_TRY(check_slice(op, n, t, d, start, len));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    size_t len_in = (size_t)t * d, len_out = (size_t)len * d;
    size_t skip = (size_t)start * d;
#pragma omp parallel for schedule(static) if ((size_t)n * len_out > LP_TENSOR_PAR_MIN)
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * len_out, in + (size_t)i * len_in + skip,
               len_out * sizeof(float));
    return LP_OK;
}

int lp_slice_tokens_backward(float *din, const float *dout, int n, int t,
                             int d, int start, int len)
{
    const char *op = "lp_slice_tokens_backward";
    LP_TRY(check_slice(op, n, t, d, start, len));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    size_t len_in = (size_t)t * d, len_out = (size_t)len * d;
    size_t skip = (size_t)start * d;
#pragma omp parallel for schedule(static) if ((size_t)n * len_out > LP_TENSOR_PAR_MIN)
    for (int i = 0; i < n; i++)
        add_into(din + (size_t)i * len_in + skip, dout + (size_t)i * len_out,
                 len_out);
    return LP_OK;
}

/* ---- option-A shortcut: subsample, then zero-pad channels -------------------- */

typedef struct {
    int c_out;     /* pad_before + c + pad_after */
    int h_out, w_out;
    size_t in_hw, out_hw;
} pad_geom;

/* Spatial output ceil(h / s) = (h - 1) / s + 1 (no overflow for h > 0). */
static int check_pad_subsample(const char *op, int n, int c, int h, int w,
                               int stride, int pad_before, int pad_after,
                               pad_geom *g)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "n", n));
    LP_TRY(lp_require_positive(op, "c", c));
    LP_TRY(lp_require_positive(op, "h", h));
    LP_TRY(lp_require_positive(op, "w", w));
    LP_TRY(lp_require_positive(op, "stride", stride));
    LP_TRY(lp_require_nonneg(op, "pad_before", pad_before));
    LP_TRY(lp_require_nonneg(op, "pad_after", pad_after));
    long long c_out = (long long)pad_before + c + pad_after;
    if (c_out > INT_MAX)
        return lp_set_error(LP_EINVAL, "%s: output channels %lld are too "
                            "many", op, c_out);
    g->c_out = (int)c_out;
    g->h_out = (h - 1) / stride + 1;
    g->w_out = (w - 1) / stride + 1;
    LP_TRY(lp_checked_count(op, &count, 4, n, c, h, w));
    LP_TRY(lp_checked_count(op, &count, 4, n, g->c_out, g->h_out, g->w_out));
    g->in_hw = (size_t)h * w;
    g->out_hw = (size_t)g->h_out * g->w_out;
    return LP_OK;
}

/* out[b, pad_before + ci, i, j] = in[b, ci, i*s, j*s]; other channels 0 */
int lp_pad_channels_subsample_forward(float *out, const float *in, int n,
                                      int c, int h, int w, int stride,
                                      int pad_before, int pad_after)
{
    const char *op = "lp_pad_channels_subsample_forward";
    pad_geom g;
    LP_TRY(check_pad_subsample(op, n, c, h, w, stride, pad_before, pad_after,
                               &g));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    ptrdiff_t planes = (ptrdiff_t)n * g.c_out;
#pragma omp parallel for schedule(static) if ((size_t)planes * g.out_hw > LP_TENSOR_PAR_MIN)
    for (ptrdiff_t p = 0; p < planes; p++) {
        ptrdiff_t b = p / g.c_out;
        int ci = (int)(p % g.c_out) - pad_before;
        float *o = out + (size_t)p * g.out_hw;
        if (ci < 0 || ci >= c) {
            memset(o, 0, g.out_hw * sizeof(float));
            continue;
        }
        const float *x = in + ((size_t)b * c + (size_t)ci) * g.in_hw;
        for (int i = 0; i < g.h_out; i++) {
            const float *row = x + (size_t)i * stride * w;
            for (int j = 0; j < g.w_out; j++)
                o[(size_t)i * g.w_out + j] = row[(size_t)j * stride];
        }
    }
    return LP_OK;
}

/* din[b, ci, i*s, j*s] += dout[b, pad_before + ci, i, j] */
int lp_pad_channels_subsample_backward(float *din, const float *dout, int n,
                                       int c, int h, int w, int stride,
                                       int pad_before, int pad_after)
{
    const char *op = "lp_pad_channels_subsample_backward";
    pad_geom g;
    LP_TRY(check_pad_subsample(op, n, c, h, w, stride, pad_before, pad_after,
                               &g));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    ptrdiff_t planes = (ptrdiff_t)n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * g.out_hw > LP_TENSOR_PAR_MIN)
    for (ptrdiff_t p = 0; p < planes; p++) {
        ptrdiff_t b = p / c;
        int ci = (int)(p % c);
        const float *go = dout + ((size_t)b * g.c_out + (size_t)pad_before +
                                  (size_t)ci) * g.out_hw;
        float *dx = din + (size_t)p * g.in_hw;
        for (int i = 0; i < g.h_out; i++) {
            float *row = dx + (size_t)i * stride * w;
            for (int j = 0; j < g.w_out; j++)
                row[(size_t)j * stride] += go[(size_t)i * g.w_out + j];
        }
    }
    return LP_OK;
}
