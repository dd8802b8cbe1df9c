/*
 * resize.c — bilinear, nearest and bicubic resizing of planes
 * x[planes, h_in, w_in] -> out[planes, h_out, w_out], forward and backward,
 * matching torch.nn.functional.interpolate (no scale_factor, no antialias)
 * on the CPU, float32.
 *
 * All three are separable: output (oh, ow) is
 *     out = sum_i wh[oh][i] * ( sum_j ww[ow][j] * x[hidx[oh][i], widx[ow][j]] )
 * over taps i, j (1 for nearest, 2 for bilinear, 4 for bicubic), with the
 * per-axis index/weight tables below built once per call. The sum order
 * (inner over w, outer over h) is PyTorch's. The backward is the adjoint:
 *     din[hidx[oh][i], widx[ow][j]] += wh[oh][i] * ww[ow][j] * dout[oh, ow].
 *
 * Conventions along one axis (input size in, output size out, output
 * index d):
 *
 *   scale   align_corners = 0: in / out                       (float)
 *           align_corners = 1: (in - 1) / (out - 1), or 0 when out == 1
 *   src     align_corners = 0: scale * (d + 0.5) - 0.5        (double)
 *           align_corners = 1: scale * d
 *           i.e. the float scale widened to double, as PyTorch 1.13's CPU
 *           kernels do (accscalar_t); the fractional weights are rounded
 *           to float. (PyTorch's bicubic backward evaluates src in float
 *           instead; the difference is ~1e-7 relative.)
 *
 *   bilinear  src < 0 is clamped to 0 (align_corners = 0); i0 = floor(src),
 *             i1 = i0 + 1 unless i0 is the last index (then i1 = i0),
 *             l1 = clamp(src - i0, 0, 1), l0 = 1 - l1. When in == out the
 *             axis is an exact copy (l0 = 1, l1 = 0, i1 = i0).
 *   nearest   PyTorch's legacy mode='nearest': i = min(floor(d * scale),
 *             in - 1) with scale = in / out (float); d when in == out and
 *             d / 2 when out == 2 in. align_corners does not apply.
 *   bicubic   src is NOT clamped; i = min(floor(src), in - 1),
 *             t = clamp(src - i, 0, 1); taps i-1 .. i+2, each clamped to
 *             [0, in - 1] (border replication); Keys' cubic convolution
 *             kernel with a = -0.75 (R. Keys, "Cubic convolution
 *             interpolation for digital image processing", 1981; Keys
 *             recommends a = -0.5, PyTorch and OpenCV use -0.75):
 *                 W(x) = (a+2)|x|^3 - (a+3)|x|^2 + 1          |x| <= 1
 *                 W(x) = a|x|^3 - 5a|x|^2 + 8a|x| - 4a        1 < |x| < 2
 *             weights W(t+1), W(t), W(1-t), W(2-t).
 *
 * The kernels are parallelised over planes; each thread owns its planes of
 * out / din, so results do not depend on the thread count.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#define LP_RESIZE_PAR_MIN 32768

/* Index / weight tables of one axis: entry [d * taps + j]. */
typedef struct {
    int taps;
    int *h_idx, *w_idx;
    float *h_wt, *w_wt;
    void *mem; /* the single allocation behind the four arrays */
} resize_plan;

typedef void (*axis_fn)(int *idx, float *wt, int in, int out,
                        int align_corners);

/* ---- per-axis conventions ----------------------------------------------- */

static float axis_scale(int in, int out, int align_corners)
{
    if (align_corners)
        return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    return (float)in / (float)out;
}

/* The source coordinate in double from the float scale, as PyTorch
 * 1.13's CPU kernels (accscalar_t = double) compute it. */
static double source_index(float scale, int d, int align_corners)
{
    if (align_corners)
        return (double)scale * d;
    return (double)scale * ((double)d + 0.5) - 0.5;
}

static double clamp01(double x) { return x < 0.0 ? 0.0 : x > 1.0 ? 1.0 : x; }

static void axis_bilinear(int *idx, float *wt, int in, int out,
                          int align_corners)
{
    float scale = axis_scale(in, out, align_corners);
    for (int d = 0; d < out; d++) {
        int i0 = d;
        float l1 = 0.0f;
        if (in != out) {
            double src = source_index(scale, d, align_corners);
            if (src < 0.0)
                src = 0.0;
            i0 = (int)src; /* src >= 0: truncation is floor */
            if (i0 > in - 1)
                i0 = in - 1;
            l1 = (float)clamp01(src - i0);
        }
        idx[2 * d] = i0;
        idx[2 * d + 1] = i0 < in - 1 && in != out ? i0 + 1 : i0;
        wt[2 * d] = 1.0f - l1;
        wt[2 * d + 1] = l1;
    }
}

static void axis_nearest(int *idx, float *wt, int in, int out,
                         int align_corners)
{
    float scale = (float)in / (float)out;
    (void)align_corners;
    for (int d = 0; d < out; d++) {
        int i;
        if (out == in) {
            i = d;
        } else if ((int64_t)out == 2 * (int64_t)in) {
            i = d >> 1;
        } else {
            float f = floorf((float)d * scale);
            i = f < (float)(in - 1) ? (int)f : in - 1;
        }
        idx[d] = i;
        wt[d] = 1.0f;
    }
}

/* Keys' kernel for 0 <= x <= 1 and for 1 <= x <= 2 (a = -0.75). */
static float cubic_near(float x, float a)
{
    return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
}

static float cubic_far(float x, float a)
{
    return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
}

static void axis_bicubic(int *idx, float *wt, int in, int out,
                         int align_corners)
{
    const float a = -0.75f;
    float scale = axis_scale(in, out, align_corners);
    for (int d = 0; d < out; d++) {
        double src = source_index(scale, d, align_corners);
        double f = floor(src);
        int i = f < (double)(in - 1) ? (int)f : in - 1;
        float t = (float)clamp01(src - i);
        /* t + 1, 1 - t and (1 - t) + 1 rounded from double, as PyTorch's
         * expressions with double literals are */
        float t1 = (float)((double)t + 1.0), u = (float)(1.0 - (double)t);
        float u1 = (float)((double)u + 1.0);
        wt[4 * d + 0] = cubic_far(t1, a);
        wt[4 * d + 1] = cubic_near(t, a);
        wt[4 * d + 2] = cubic_near(u, a);
        wt[4 * d + 3] = cubic_far(u1, a);
        for (int j = 0; j < 4; j++) {
            int k = i - 1 + j;
            idx[4 * d + j] = k < 0 ? 0 : k > in - 1 ? in - 1 : k;
        }
    }
}

/* ---- validation and plans ----------------------------------------------- */

static int resize_check(const char *op, int planes, int h_in, int w_in,
                        int h_out, int w_out, int align_corners)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "planes", planes));
    LP_TRY(lp_require_positive(op, "h_in", h_in));
    LP_TRY(lp_require_positive(op, "w_in", w_in));
    LP_TRY(lp_require_positive(op, "h_out", h_out));
    LP_TRY(lp_require_positive(op, "w_out", w_out));
    if (align_corners != 0 && align_corners != 1)
        return lp_set_error(LP_EINVAL, "%s: align_corners must be 0 or 1 "
                            "(got %d)", op, align_corners);
    LP_TRY(lp_checked_count(op, &count, 3, planes, h_in, w_in));
    LP_TRY(lp_checked_count(op, &count, 3, planes, h_out, w_out));
    return LP_OK;
}

/* Build both axes' tables (one allocation). */
static int plan_build(resize_plan *pl, int taps, axis_fn axis, int h_in,
                      int w_in, int h_out, int w_out, int align_corners)
{
    size_t entries = (size_t)taps * ((size_t)h_out + (size_t)w_out);
    pl->mem = lp_alloc(entries, sizeof(float) + sizeof(int));
    if (pl->mem == NULL)
        return LP_ENOMEM;
    pl->taps = taps;
    pl->h_wt = pl->mem;
    pl->w_wt = pl->h_wt + (size_t)taps * h_out;
    pl->h_idx = (int *)(pl->w_wt + (size_t)taps * w_out);
    pl->w_idx = pl->h_idx + (size_t)taps * h_out;
    axis(pl->h_idx, pl->h_wt, h_in, h_out, align_corners);
    axis(pl->w_idx, pl->w_wt, w_in, w_out, align_corners);
    return LP_OK;
}

/* ---- the separable kernels ---------------------------------------------- */

static void resize_apply(float *out, const float *in, int planes, int h_in,
                         int w_in, int h_out, int w_out, const resize_plan *pl)
{
    size_t in_hw = (size_t)h_in * w_in, out_hw = (size_t)h_out * w_out;
    int taps = pl->taps;
#pragma omp parallel for schedule(static) \
    if ((size_t)planes * out_hw * taps >= LP_RESIZE_PAR_MIN)
    for (int p = 0; p < planes; p++) {
        const float *x = in + (size_t)p * in_hw;
        float *y = out + (size_t)p * out_hw;
        for (int oh = 0; oh < h_out; oh++) {
            const int *hi = pl->h_idx + (size_t)oh * taps;
            const float *hw = pl->h_wt + (size_t)oh * taps;
            for (int ow = 0; ow < w_out; ow++) {
                const int *wi = pl->w_idx + (size_t)ow * taps;
                const float *ww = pl->w_wt + (size_t)ow * taps;
                float acc = 0.0f;
                for (int i = 0; i < taps; i++) {
                    const float *row = x + (size_t)hi[i] * w_in;
                    float inner = 0.0f;
                    for (int j = 0; j < taps; j++)
                        inner += row[wi[j]] * ww[j];
                    acc += inner * hw[i];
                }
                y[(size_t)oh * w_out + ow] = acc;
            }
        }
    }
}

static void resize_apply_adjoint(float *din, const float *dout, int planes,
                                 int h_in, int w_in, int h_out, int w_out,
                                 const resize_plan *pl)
{
    size_t in_hw = (size_t)h_in * w_in, out_hw = (size_t)h_out * w_out;
    int taps = pl->taps;
#pragma omp parallel for schedule(static) \
    if ((size_t)planes * out_hw * taps >= LP_RESIZE_PAR_MIN)
    for (int p = 0; p < planes; p++) {
        float *dx = din + (size_t)p * in_hw;
        const float *dy = dout + (size_t)p * out_hw;
        for (int oh = 0; oh < h_out; oh++) {
            const int *hi = pl->h_idx + (size_t)oh * taps;
            const float *hw = pl->h_wt + (size_t)oh * taps;
            for (int ow = 0; ow < w_out; ow++) {
                const int *wi = pl->w_idx + (size_t)ow * taps;
                const float *ww = pl->w_wt + (size_t)ow * taps;
                float g = dy[(size_t)oh * w_out + ow];
                for (int i = 0; i < taps; i++) {
                    float *row = dx + (size_t)hi[i] * w_in;
                    float gh = g * hw[i];
                    for (int j = 0; j < taps; j++)
                        row[wi[j]] += gh * ww[j];
                }
            }
        }
    }
}

/* Shared body of every public function. */
static int resize_run(const char *op, int backward, int taps, axis_fn axis,
                      float *dst, const float *src, int planes, int h_in,
                      int w_in, int h_out, int w_out, int align_corners)
{
    resize_plan pl;
    LP_TRY(resize_check(op, planes, h_in, w_in, h_out, w_out, align_corners));
    LP_TRY(lp_require_ptr(op, backward ? "din" : "out", dst));
    LP_TRY(lp_require_ptr(op, backward ? "dout" : "in", src));
    LP_TRY(plan_build(&pl, taps, axis, h_in, w_in, h_out, w_out,
                      align_corners));
    if (backward)
        resize_apply_adjoint(dst, src, planes, h_in, w_in, h_out, w_out, &pl);
    else
        resize_apply(dst, src, planes, h_in, w_in, h_out, w_out, &pl);
    lp_free(pl.mem);
    return LP_OK;
}

/* ---- public API ----------------------------------------------------------- */

int lp_resize_bilinear_forward(float *out, const float *in, int planes,
                               int h_in, int w_in, int h_out, int w_out,
                               int align_corners)
{
    return resize_run("lp_resize_bilinear_forward", 0, 2, axis_bilinear, out,
                      in, planes, h_in, w_in, h_out, w_out, align_corners);
}

int lp_resize_bilinear_backward(float *din, const float *dout, int planes,
                                int h_in, int w_in, int h_out, int w_out,
                                int align_corners)
{
    return resize_run("lp_resize_bilinear_backward", 1, 2, axis_bilinear, din,
                      dout, planes, h_in, w_in, h_out, w_out, align_corners);
}

int lp_resize_nearest_forward(float *out, const float *in, int planes,
                              int h_in, int w_in, int h_out, int w_out)
{
    return resize_run("lp_resize_nearest_forward", 0, 1, axis_nearest, out, in,
                      planes, h_in, w_in, h_out, w_out, 0);
}

int lp_resize_nearest_backward(float *din, const float *dout, int planes,
                               int h_in, int w_in, int h_out, int w_out)
{
    return resize_run("lp_resize_nearest_backward", 1, 1, axis_nearest, din,
                      dout, planes, h_in, w_in, h_out, w_out, 0);
}

int lp_resize_bicubic_forward(float *out, const float *in, int planes,
                              int h_in, int w_in, int h_out, int w_out,
                              int align_corners)
{
    return resize_run("lp_resize_bicubic_forward", 0, 4, axis_bicubic, out, in,
                      planes, h_in, w_in, h_out, w_out, align_corners);
}

int lp_resize_bicubic_backward(float *din, const float *dout, int planes,
                               int h_in, int w_in, int h_out, int w_out,
                               int align_corners)
{
    return resize_run("lp_resize_bicubic_backward", 1, 4, axis_bicubic, din,
                      dout, planes, h_in, w_in, h_out, w_out, align_corners);
}
