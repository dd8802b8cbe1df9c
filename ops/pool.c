/*
 * pool.c — 2-D max pooling, average pooling and adaptive average pooling,
 * forward and backward, with PyTorch's semantics (nn.MaxPool2d,
 * nn.AvgPool2d, nn.AdaptiveAvgPool2d) on NCHW float tensors.
 *
 * Output size (floor mode): OH = (H + 2 pad_h - k_h) / stride_h + 1.
 * ceil_mode is NOT supported: torchvision's ResNets and ViTs use floor
 * mode, and ceil mode's "last window must start inside the input" rule is
 * a separate code path we do not need. Dilation is not supported either.
 *
 * Padding rule (as PyTorch): 0 <= pad <= kernel / 2 (integer division),
 * so every window overlaps the input.
 *
 * Max pooling: padding counts as -inf. Windows are scanned in row-major
 * order and a value replaces the running maximum when it is greater, or
 * when it is NaN — exactly the update of PyTorch's CPU kernel. Hence ties
 * go to the FIRST maximum, a NaN anywhere in the window makes the output
 * NaN (the last NaN in scan order is the recorded argmax), and a window of
 * only -inf keeps its first in-range element as argmax. The argmax is the
 * flat index ih * w_in + iw within the (n, c) plane.
 *
 * Average pooling: the window [h0, h0 + k) with h0 = oh * stride - pad is
 * clipped to [0, H) for the sum. The divisor is the size of the window
 * clipped only at H + pad (padding included) when count_include_pad is
 * set, else the size of the window clipped to the input. (In floor mode
 * no window reaches past H + pad, so that clip is a no-op; it is kept to
 * mirror PyTorch's formula.) divisor_override is not supported.
 *
 * Adaptive average pooling: output i along an axis of input size H and
 * output size Ho averages input rows [floor(i H / Ho), ceil((i+1) H / Ho)),
 * computed in exact integer arithmetic.
 *
 * Every kernel works on whole (n, c) planes, parallelised over planes, so
 * each thread owns its planes of the output and of the gradients: the
 * results are the same for any number of threads.
 */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* Parallelise over planes only when there is enough work. */
#define LP_POOL_PAR_MIN 32768

/* ---- validation --------------------------------------------------------- */

typedef struct {
    int planes;        /* n * c */
    int h_in, w_in, h_out, w_out;
    int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    size_t in_hw, out_hw;
} pool_geom;

static int pool_axis(const char *op, const char *axis, int in, int k,
                     int stride, int pad, int *out)
{
    if (pad > k / 2)
        return lp_set_error(LP_EINVAL,
                            "%s: pad_%s = %d must be at most kernel/2 = %d",
                            op, axis, pad, k / 2);
    /* window bounds are ints in [-pad, in + pad] */
    if ((int64_t)in + 2 * (int64_t)pad > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: padded %s size is too large", op,
                            axis);
    int64_t span = (int64_t)in + 2 * (int64_t)pad - k;
    if (span < 0)
        return lp_set_error(LP_EINVAL,
                            "%s: kernel %d is larger than the padded input "
                            "along %s (%lld): output size <= 0",
                            op, k, axis, (long long)in + 2 * (long long)pad);
    *out = (int)(span / stride + 1);
    return LP_OK;
}

static int pool_setup(const char *op, const lp_pool2d_params *p, pool_geom *g)
{
    size_t count;
    LP_TRY(lp_require_ptr(op, "params", p));
    LP_TRY(lp_require_positive(op, "n", p->n));
    LP_TRY(lp_require_positive(op, "c", p->c));
    LP_TRY(lp_require_positive(op, "h_in", p->h_in));
    LP_TRY(lp_require_positive(op, "w_in", p->w_in));
    LP_TRY(lp_require_positive(op, "k_h", p->k_h));
    LP_TRY(lp_require_positive(op, "k_w", p->k_w));
    LP_TRY(lp_require_positive(op, "stride_h", p->stride_h));
    LP_TRY(lp_require_positive(op, "stride_w", p->stride_w));
    LP_TRY(lp_require_nonneg(op, "pad_h", p->pad_h));
    LP_TRY(lp_require_nonneg(op, "pad_w", p->pad_w));
    memset(g, 0, sizeof *g);
    LP_TRY(pool_axis(op, "h", p->h_in, p->k_h, p->stride_h, p->pad_h,
                     &g->h_out));
    LP_TRY(pool_axis(op, "w", p->w_in, p->k_w, p->stride_w, p->pad_w,
                     &g->w_out));
    LP_TRY(lp_checked_count(op, &count, 4, p->n, p->c, p->h_in, p->w_in));
    LP_TRY(lp_checked_count(op, &count, 4, p->n, p->c, g->h_out, g->w_out));
    LP_TRY(lp_checked_count(op, &count, 2, p->n, p->c));
    if (count > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: n*c = %zu is too large", op, count);
    g->planes = (int)count;
    /* argmax is an int32 index within a plane */
    LP_TRY(lp_checked_count(op, &count, 2, p->h_in, p->w_in));
    if (count > INT32_MAX)
        return lp_set_error(LP_ERANGE, "%s: h_in*w_in = %zu is too large", op,
                            count);
    g->in_hw = count;
    g->out_hw = (size_t)g->h_out * g->w_out;
    g->h_in = p->h_in;
    g->w_in = p->w_in;
    g->k_h = p->k_h;
    g->k_w = p->k_w;
    g->stride_h = p->stride_h;
    g->stride_w = p->stride_w;
    g->pad_h = p->pad_h;
    g->pad_w = p->pad_w;
    return LP_OK;
}

int lp_pool2d_output_size(const lp_pool2d_params *p, int *h_out, int *w_out)
{
    const char *op = "lp_pool2d_output_size";
    pool_geom g;
    LP_TRY(lp_require_ptr(op, "h_out", h_out));
    LP_TRY(lp_require_ptr(op, "w_out", w_out));
    LP_TRY(pool_setup(op, p, &g));
    *h_out = g.h_out;
    *w_out = g.w_out;
    return LP_OK;
}

/* Window of output o along one axis, clipped to the input [0, in). */
static void clip_window(int o, int stride, int pad, int k, int in, int *lo,
                        int *hi)
{
    int start = o * stride - pad, end = start + k;
    *lo = start > 0 ? start : 0;
    *hi = end < in ? end : in;
}

/* ---- max pooling -------------------------------------------------------- */

/* Flat in-plane index of the maximum of window (oh, ow) (see the rule at
 * the top of the file); *max receives its value. */
static int32_t window_argmax(const float *plane, const pool_geom *g, int oh,
                             int ow, float *max)
{
    int h0, h1, w0, w1;
    clip_window(oh, g->stride_h, g->pad_h, g->k_h, g->h_in, &h0, &h1);
    clip_window(ow, g->stride_w, g->pad_w, g->k_w, g->w_in, &w0, &w1);
    int32_t best = (int32_t)(h0 * g->w_in + w0);
    float m = -INFINITY;
    for (int ih = h0; ih < h1; ih++) {
        const float *row = plane + (size_t)ih * g->w_in;
        for (int iw = w0; iw < w1; iw++) {
            float v = row[iw];
            if (v > m || isnan(v)) {
                m = v;
                best = (int32_t)(ih * g->w_in + iw);
            }
        }
    }
    *max = m;
    return best;
}

int lp_maxpool2d_forward(float *out, int32_t *argmax, const float *in,
                         const lp_pool2d_params *p)
{
    const char *op = "lp_maxpool2d_forward";
    pool_geom g;
    LP_TRY(pool_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));

#pragma omp parallel for schedule(static) \
    if ((size_t)g.planes * g.out_hw >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < g.planes; pl++) {
        const float *plane = in + (size_t)pl * g.in_hw;
        size_t base = (size_t)pl * g.out_hw;
        for (int oh = 0; oh < g.h_out; oh++)
            for (int ow = 0; ow < g.w_out; ow++) {
                size_t o = base + (size_t)oh * g.w_out + ow;
                int32_t idx = window_argmax(plane, &g, oh, ow, &out[o]);
                if (argmax != NULL)
                    argmax[o] = idx;
            }
    }
    return LP_OK;
}

int lp_maxpool2d_backward(float *din, const float *dout, const float *in,
                          const int32_t *argmax, const lp_pool2d_params *p)
{
    const char *op = "lp_maxpool2d_backward";
    pool_geom g;
    size_t n_out;
    LP_TRY(pool_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    if (argmax == NULL)
        LP_TRY(lp_require_ptr(op, "in (needed when argmax is NULL)", in));

    /* A bad index would write outside its plane: check them all first so
     * that a failure leaves din untouched. */
    n_out = (size_t)g.planes * g.out_hw;
    if (argmax != NULL)
        for (size_t o = 0; o < n_out; o++)
            if (argmax[o] < 0 || (size_t)argmax[o] >= g.in_hw)
                return lp_set_error(LP_EINVAL,
                                    "%s: argmax[%zu] = %d outside the %zu "
                                    "elements of a plane",
                                    op, o, (int)argmax[o], g.in_hw);

#pragma omp parallel for schedule(static) if (n_out >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < g.planes; pl++) {
        float *dplane = din + (size_t)pl * g.in_hw;
        const float *plane = in != NULL ? in + (size_t)pl * g.in_hw : NULL;
        size_t base = (size_t)pl * g.out_hw;
        for (int oh = 0; oh < g.h_out; oh++)
            for (int ow = 0; ow < g.w_out; ow++) {
                size_t o = base + (size_t)oh * g.w_out + ow;
                float unused;
                int32_t idx = argmax != NULL
                                  ? argmax[o]
                                  : window_argmax(plane, &g, oh, ow, &unused);
                dplane[idx] += dout[o];
            }
    }
    return LP_OK;
}

/* ---- average pooling ---------------------------------------------------- */

/* Divisor of window (oh, ow) following PyTorch (see the top of the file). */
static double avg_divisor(const pool_geom *g, int count_include_pad, int oh,
                          int ow)
{
    if (count_include_pad) {
        int h0 = oh * g->stride_h - g->pad_h, w0 = ow * g->stride_w - g->pad_w;
        int h1 = h0 + g->k_h, w1 = w0 + g->k_w;
        if (h1 > g->h_in + g->pad_h)
            h1 = g->h_in + g->pad_h;
        if (w1 > g->w_in + g->pad_w)
            w1 = g->w_in + g->pad_w;
        return (double)(h1 - h0) * (w1 - w0);
    }
    int h0, h1, w0, w1;
    clip_window(oh, g->stride_h, g->pad_h, g->k_h, g->h_in, &h0, &h1);
    clip_window(ow, g->stride_w, g->pad_w, g->k_w, g->w_in, &w0, &w1);
    return (double)(h1 - h0) * (w1 - w0);
}

int lp_avgpool2d_forward(float *out, const float *in,
                         const lp_pool2d_params *p)
{
    const char *op = "lp_avgpool2d_forward";
    pool_geom g;
    LP_TRY(pool_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    int include_pad = p->count_include_pad != 0;

#pragma omp parallel for schedule(static) \
    if ((size_t)g.planes * g.out_hw >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < g.planes; pl++) {
        const float *plane = in + (size_t)pl * g.in_hw;
        float *oplane = out + (size_t)pl * g.out_hw;
        for (int oh = 0; oh < g.h_out; oh++)
            for (int ow = 0; ow < g.w_out; ow++) {
                int h0, h1, w0, w1;
                double sum = 0.0;
                clip_window(oh, g.stride_h, g.pad_h, g.k_h, g.h_in, &h0, &h1);
                clip_window(ow, g.stride_w, g.pad_w, g.k_w, g.w_in, &w0, &w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += plane[(size_t)ih * g.w_in + iw];
                oplane[(size_t)oh * g.w_out + ow] =
                    (float)(sum / avg_divisor(&g, include_pad, oh, ow));
            }
    }
    return LP_OK;
}

int lp_avgpool2d_backward(float *din, const float *dout,
                          const lp_pool2d_params *p)
{
    const char *op = "lp_avgpool2d_backward";
    pool_geom g;
    LP_TRY(pool_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    int include_pad = p->count_include_pad != 0;

#pragma omp parallel for schedule(static) \
    if ((size_t)g.planes * g.out_hw >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < g.planes; pl++) {
        float *dplane = din + (size_t)pl * g.in_hw;
        const float *gplane = dout + (size_t)pl * g.out_hw;
        for (int oh = 0; oh < g.h_out; oh++)
            for (int ow = 0; ow < g.w_out; ow++) {
                int h0, h1, w0, w1;
                float share = gplane[(size_t)oh * g.w_out + ow] /
                              (float)avg_divisor(&g, include_pad, oh, ow);
                clip_window(oh, g.stride_h, g.pad_h, g.k_h, g.h_in, &h0, &h1);
                clip_window(ow, g.stride_w, g.pad_w, g.k_w, g.w_in, &w0, &w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        dplane[(size_t)ih * g.w_in + iw] += share;
            }
    }
    return LP_OK;
}

/* ---- adaptive average pooling ------------------------------------------- */

/* Input range [*lo, *hi) of adaptive bin i of `out` bins over `in`. */
static void adaptive_bin(int i, int in, int out, int *lo, int *hi)
{
    *lo = (int)(((int64_t)i * in) / out);
    *hi = (int)(((int64_t)(i + 1) * in + out - 1) / out);
}

static int adaptive_setup(const char *op, int n, int c, int h_in, int w_in,
                          int h_out, int w_out, int *planes)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "n", n));
    LP_TRY(lp_require_positive(op, "c", c));
    LP_TRY(lp_require_positive(op, "h_in", h_in));
    LP_TRY(lp_require_positive(op, "w_in", w_in));
    LP_TRY(lp_require_positive(op, "h_out", h_out));
    LP_TRY(lp_require_positive(op, "w_out", w_out));
    LP_TRY(lp_checked_count(op, &count, 4, n, c, h_in, w_in));
    LP_TRY(lp_checked_count(op, &count, 4, n, c, h_out, w_out));
    LP_TRY(lp_checked_count(op, &count, 2, n, c));
    if (count > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: n*c = %zu is too large", op, count);
    *planes = (int)count;
    return LP_OK;
}

int lp_adaptive_avgpool2d_forward(float *out, const float *in, int n, int c,
                                  int h_in, int w_in, int h_out, int w_out)
{
    const char *op = "lp_adaptive_avgpool2d_forward";
    int planes;
    LP_TRY(adaptive_setup(op, n, c, h_in, w_in, h_out, w_out, &planes));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    size_t in_hw = (size_t)h_in * w_in, out_hw = (size_t)h_out * w_out;

#pragma omp parallel for schedule(static) \
    if ((size_t)planes * (in_hw + out_hw) >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const float *plane = in + (size_t)pl * in_hw;
        float *oplane = out + (size_t)pl * out_hw;
        for (int oh = 0; oh < h_out; oh++) {
            int h0, h1;
            adaptive_bin(oh, h_in, h_out, &h0, &h1);
            for (int ow = 0; ow < w_out; ow++) {
                int w0, w1;
                double sum = 0.0;
                adaptive_bin(ow, w_in, w_out, &w0, &w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += plane[(size_t)ih * w_in + iw];
                oplane[(size_t)oh * w_out + ow] =
                    (float)(sum / ((double)(h1 - h0) * (w1 - w0)));
            }
        }
    }
    return LP_OK;
}

int lp_adaptive_avgpool2d_backward(float *din, const float *dout, int n,
                                   int c, int h_in, int w_in, int h_out,
                                   int w_out)
{
    const char *op = "lp_adaptive_avgpool2d_backward";
    int planes;
    LP_TRY(adaptive_setup(op, n, c, h_in, w_in, h_out, w_out, &planes));
    LP_TRY(lp_require_ptr(op, "din", din));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    size_t in_hw = (size_t)h_in * w_in, out_hw = (size_t)h_out * w_out;

#pragma omp parallel for schedule(static) \
    if ((size_t)planes * (in_hw + out_hw) >= LP_POOL_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        float *dplane = din + (size_t)pl * in_hw;
        const float *gplane = dout + (size_t)pl * out_hw;
        for (int oh = 0; oh < h_out; oh++) {
            int h0, h1;
            adaptive_bin(oh, h_in, h_out, &h0, &h1);
            for (int ow = 0; ow < w_out; ow++) {
                int w0, w1;
                adaptive_bin(ow, w_in, w_out, &w0, &w1);
                float share = gplane[(size_t)oh * w_out + ow] /
                              (float)((double)(h1 - h0) * (w1 - w0));
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        dplane[(size_t)ih * w_in + iw] += share;
            }
        }
    }
    return LP_OK;
}
