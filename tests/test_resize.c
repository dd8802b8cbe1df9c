/*
 * test_resize.c — bilinear, nearest and bicubic resizing against double
 * references written from PyTorch's formulas (F.interpolate, no
 * antialias), their backward against finite differences and as the exact
 * adjoint of the forward, and argument validation.
 */
#include "test.h"

#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

enum { MODE_BILINEAR, MODE_NEAREST, MODE_BICUBIC };

/* One configuration: mode + align_corners. */
typedef struct {
    int mode, align;
    const char *name;
} resize_mode;

static const resize_mode k_modes[] = {
    {MODE_BILINEAR, 0, "bilinear"},
    {MODE_BILINEAR, 1, "bilinear align_corners"},
    {MODE_NEAREST, 0, "nearest"},
    {MODE_BICUBIC, 0, "bicubic"},
    {MODE_BICUBIC, 1, "bicubic align_corners"},
};
#define N_MODES (sizeof k_modes / sizeof k_modes[0])

static int run_forward(const resize_mode *m, float *out, const float *in,
                       int planes, int h, int w, int ho, int wo)
{
    switch (m->mode) {
    case MODE_BILINEAR:
        return lp_resize_bilinear_forward(out, in, planes, h, w, ho, wo,
                                          m->align);
    case MODE_NEAREST:
        return lp_resize_nearest_forward(out, in, planes, h, w, ho, wo);
    default:
        return lp_resize_bicubic_forward(out, in, planes, h, w, ho, wo,
                                         m->align);
    }
}

static int run_backward(const resize_mode *m, float *din, const float *dout,
                        int planes, int h, int w, int ho, int wo)
{
    switch (m->mode) {
    case MODE_BILINEAR:
        return lp_resize_bilinear_backward(din, dout, planes, h, w, ho, wo,
                                           m->align);
    case MODE_NEAREST:
        return lp_resize_nearest_backward(din, dout, planes, h, w, ho, wo);
    default:
        return lp_resize_bicubic_backward(din, dout, planes, h, w, ho, wo,
                                          m->align);
    }
}

/* ---- reference: per-axis taps in double ----------------------------------- */

#define MAX_TAPS 4

static int clampi(int i, int n) { return i < 0 ? 0 : i > n - 1 ? n - 1 : i; }

/* Keys' cubic convolution kernel, a = -0.75 */
static double keys(double x)
{
    const double a = -0.75;
    x = fabs(x);
    if (x <= 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a;
    return 0.0;
}

/* Taps of output index d along an axis in -> out; returns their count. */
static int ref_taps(const resize_mode *m, int in, int out, int d, int *idx,
                    double *wt)
{
    if (m->mode == MODE_NEAREST) {
        /* PyTorch computes this one in float: floor(d * (float)(in/out)) */
        float scale = (float)in / (float)out;
        idx[0] = clampi((int)floorf((float)d * scale), in);
        wt[0] = 1.0;
        return 1;
    }
    /* PyTorch's scale is a float (in / out, or (in - 1) / (out - 1) with
     * align_corners); the source index is then evaluated in double. With
     * a double scale, 224 -> 7 with align_corners would differ by ~1e-5
     * from PyTorch. Everything after the scale is double. */
    float fscale = m->align ? (out > 1 ? (float)(in - 1) / (float)(out - 1)
                                       : 0.0f)
                            : (float)in / (float)out;
    double src = m->align ? (double)fscale * d : (d + 0.5) * fscale - 0.5;
    if (m->mode == MODE_BILINEAR) {
        if (src < 0.0)
            src = 0.0;
        int i0 = (int)floor(src);
        idx[0] = clampi(i0, in);
        idx[1] = clampi(i0 + 1, in);
        wt[1] = src - i0;
        wt[0] = 1.0 - wt[1];
        return 2;
    }
    int i = (int)floor(src);
    double t = src - i;
    for (int j = 0; j < 4; j++) {
        idx[j] = clampi(i - 1 + j, in);
        wt[j] = keys(t - (j - 1));
    }
    return 4;
}

static void ref_resize(const resize_mode *m, double *out, const double *in,
                       int planes, int h, int w, int ho, int wo)
{
    int hi[MAX_TAPS], wi[MAX_TAPS];
    double hw[MAX_TAPS], ww[MAX_TAPS];
    for (int p = 0; p < planes; p++)
        for (int oh = 0; oh < ho; oh++) {
            int nh = ref_taps(m, h, ho, oh, hi, hw);
            for (int ow = 0; ow < wo; ow++) {
                int nw = ref_taps(m, w, wo, ow, wi, ww);
                double acc = 0.0;
                for (int i = 0; i < nh; i++)
                    for (int j = 0; j < nw; j++)
                        acc += hw[i] * ww[j] *
                               in[((size_t)p * h + hi[i]) * w + wi[j]];
                out[((size_t)p * ho + oh) * wo + ow] = acc;
            }
        }
}

/* ---- forward ------------------------------------------------------------------ */

static const int k_shapes[][4] = {
    /* h_in, w_in, h_out, w_out */
    {7, 7, 224, 224},  /* Grad-CAM map of a ResNet up to the image */
    {14, 14, 224, 224}, /* ViT-B/16 token grid up to the image */
    {5, 5, 3, 3},      {3, 3, 8, 8},   {224, 224, 7, 7}, {5, 9, 12, 4},
    {1, 1, 3, 3},      {3, 5, 1, 1},   {6, 6, 6, 6},     {4, 4, 8, 8},
    {13, 7, 5, 16},    {2, 3, 17, 11},
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

TEST(resize_forward_vs_reference)
{
    lpt_rng rng = lpt_rng_seed(13);
    char what[128];
    const int planes = 2;
    for (size_t si = 0; si < N_SHAPES; si++) {
        int h = k_shapes[si][0], w = k_shapes[si][1];
        int ho = k_shapes[si][2], wo = k_shapes[si][3];
        size_t n_in = (size_t)planes * h * w, n_out = (size_t)planes * ho * wo;
        float *in = lpt_floats(n_in), *out = lpt_floats(n_out);
        double *in_d = lpt_doubles(n_in), *want = lpt_doubles(n_out);
        lpt_fill_normal(&rng, in, n_in, 1.0);
        lpt_to_double(in_d, in, n_in);
        for (size_t mi = 0; mi < N_MODES; mi++) {
            const resize_mode *m = &k_modes[mi];
            ref_resize(m, want, in_d, planes, h, w, ho, wo);
            for (size_t i = 0; i < n_out; i++)
                out[i] = NAN;
            CHECK_OK(run_forward(m, out, in, planes, h, w, ho, wo));
            snprintf(what, sizeof what, "%s %dx%d -> %dx%d", m->name, h, w,
                     ho, wo);
            CHECK_CLOSE(what, out, want, n_out, FWD_TOL);
        }
    }
}

/* Values worked out by hand from PyTorch's rules (and checked against
 * torch.nn.functional.interpolate). */
TEST(resize_known_values)
{
    float x[4] = {0, 1, 2, 3}, y[8];
    /* bilinear 4 -> 8, align_corners=False: src = (d + 0.5)/2 - 0.5,
     * clamped at 0: 0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3 (clamped) */
    CHECK_OK(lp_resize_bilinear_forward(y, x, 1, 1, 4, 1, 8, 0));
    const double bl[8] = {0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3};
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(y[i], bl[i], 1e-6);
    /* align_corners=True: src = d * 3/7 */
    CHECK_OK(lp_resize_bilinear_forward(y, x, 1, 1, 4, 1, 8, 1));
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(y[i], i * 3.0 / 7.0, 1e-6);
    /* nearest 4 -> 3: floor(d * 4/3) = 0, 1, 2 */
    CHECK_OK(lp_resize_nearest_forward(y, x, 1, 1, 4, 1, 3));
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 2);
    /* nearest 3 -> 8 (x = 0 1 2): floor(d * 0.375) = 0 0 0 1 1 1 2 2 */
    CHECK_OK(lp_resize_nearest_forward(y, x, 1, 1, 3, 1, 8));
    const float nn[8] = {0, 0, 0, 1, 1, 1, 2, 2};
    CHECK(memcmp(y, nn, sizeof nn) == 0);
    /* bicubic 4 -> 8, align_corners=False: output 3 has src = 1.25, taps
     * 0..3, t = 0.25: W(.25) + 2 W(.75) + 3 W(1.75) = 1.296875 (a = -0.75
     * does not reproduce a ramp exactly; torch gives the same), and by
     * symmetry output 4 is 3 - 1.296875 */
    CHECK_OK(lp_resize_bicubic_forward(y, x, 1, 1, 4, 1, 8, 0));
    CHECK_NEAR(y[3], 1.296875, 1e-6);
    CHECK_NEAR(y[4], 1.703125, 1e-6);
    /* at the left border the unclamped src = -0.25 uses taps -2..1
     * clamped to 0 0 0 1, t = 0.75: 0*(W(1.75)+W(.75)+W(.25)) + 1*W(1.25) */
    CHECK_NEAR(y[0], -0.75 * (1.25 * 1.25 * 1.25 - 5 * 1.25 * 1.25 + 8 * 1.25 - 4),
               1e-6);
}

/* ---- backward ----------------------------------------------------------------- */

typedef struct {
    const resize_mode *m;
    int planes, h, w, ho, wo;
    const double *r;
    double *out;
} resize_loss_ctx;

static double resize_loss(const double *x, void *vctx)
{
    resize_loss_ctx *c = vctx;
    size_t n_out = (size_t)c->planes * c->ho * c->wo;
    double s = 0.0;
    ref_resize(c->m, c->out, x, c->planes, c->h, c->w, c->ho, c->wo);
    for (size_t i = 0; i < n_out; i++)
        s += c->r[i] * c->out[i];
    return s;
}

TEST(resize_backward_vs_finite_differences)
{
    static const int shapes[][4] = {
        {3, 4, 5, 7}, {7, 5, 3, 2}, {5, 5, 3, 3}, {3, 3, 8, 8},
        {1, 1, 3, 3}, {4, 6, 4, 6}, {2, 6, 9, 1},
    };
    lpt_rng rng = lpt_rng_seed(14);
    char what[128];
    const int planes = 2;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int h = shapes[si][0], w = shapes[si][1];
        int ho = shapes[si][2], wo = shapes[si][3];
        size_t n_in = (size_t)planes * h * w, n_out = (size_t)planes * ho * wo;
        for (size_t mi = 0; mi < N_MODES; mi++) {
            const resize_mode *m = &k_modes[mi];
            double *x = lpt_doubles(n_in), *r_d = lpt_doubles(n_out),
                   *grad = lpt_doubles(n_in), *want = lpt_doubles(n_in);
            float *r = lpt_floats(n_out), *din = lpt_floats(n_in);
            for (size_t i = 0; i < n_in; i++)
                x[i] = lpt_rng_normal(&rng);
            lpt_fill_normal(&rng, r, n_out, 1.0);
            lpt_to_double(r_d, r, n_out);
            resize_loss_ctx ctx = {m, planes, h, w, ho, wo, r_d,
                                   lpt_doubles(n_out)};
            lpt_fd_gradient(resize_loss, &ctx, x, n_in, FD_EPS, grad);
            /* accumulate onto a non-zero buffer */
            lpt_fill_normal(&rng, din, n_in, 1.0);
            for (size_t i = 0; i < n_in; i++)
                want[i] = din[i] + grad[i];
            CHECK_OK(run_backward(m, din, r, planes, h, w, ho, wo));
            snprintf(what, sizeof what, "%s din %dx%d -> %dx%d", m->name, h,
                     w, ho, wo);
            CHECK_CLOSE(what, din, want, n_in, BWD_TOL);
        }
    }
}

/* On the big shapes: <resize(x), y> == <x, resize_backward(y)>. */
TEST(resize_backward_is_adjoint)
{
    lpt_rng rng = lpt_rng_seed(15);
    char what[128];
    const int planes = 3;
    for (size_t si = 0; si < N_SHAPES; si++) {
        int h = k_shapes[si][0], w = k_shapes[si][1];
        int ho = k_shapes[si][2], wo = k_shapes[si][3];
        size_t n_in = (size_t)planes * h * w, n_out = (size_t)planes * ho * wo;
        float *x = lpt_floats(n_in), *y = lpt_floats(n_out);
        float *rx = lpt_floats(n_out), *ry = lpt_floats(n_in);
        lpt_fill_normal(&rng, x, n_in, 1.0);
        lpt_fill_normal(&rng, y, n_out, 1.0);
        for (size_t mi = 0; mi < N_MODES; mi++) {
            const resize_mode *m = &k_modes[mi];
            double lhs = 0.0, rhs = 0.0, mag = 0.0;
            memset(ry, 0, n_in * sizeof(float));
            CHECK_OK(run_forward(m, rx, x, planes, h, w, ho, wo));
            CHECK_OK(run_backward(m, ry, y, planes, h, w, ho, wo));
            for (size_t i = 0; i < n_out; i++) {
                lhs += (double)rx[i] * y[i];
                mag += fabs((double)rx[i] * y[i]);
            }
            for (size_t i = 0; i < n_in; i++)
                rhs += (double)x[i] * ry[i];
            snprintf(what, sizeof what, "%s %dx%d -> %dx%d", m->name, h, w,
                     ho, wo);
            CHECK_MSG(fabs(lhs - rhs) <= 1e-5 * mag,
                      "%s: <Rx,y> = %.9g, <x,R'y> = %.9g", what, lhs, rhs);
        }
    }
}

/* ---- bad input ---------------------------------------------------------------- */

TEST(resize_rejects_bad_input)
{
    float buf[256] = {0};
    for (size_t mi = 0; mi < N_MODES; mi++) {
        const resize_mode *m = &k_modes[mi];
        CHECK_OK(run_forward(m, buf, buf + 128, 2, 4, 4, 3, 5));
        CHECK_FAILS(run_forward(m, buf, buf, 0, 4, 4, 3, 3));
        CHECK_FAILS(run_forward(m, buf, buf, 1, -4, 4, 3, 3));
        CHECK_FAILS(run_forward(m, buf, buf, 1, 4, 0, 3, 3));
        CHECK_FAILS(run_forward(m, buf, buf, 1, 4, 4, 0, 3));
        CHECK_FAILS(run_forward(m, buf, buf, 1, 4, 4, 3, -3));
        CHECK_FAILS(run_backward(m, buf, buf, 1, 4, 4, 3, 0));
        CHECK_FAILS(run_forward(m, NULL, buf, 1, 4, 4, 3, 3));
        CHECK_FAILS(run_forward(m, buf, NULL, 1, 4, 4, 3, 3));
        CHECK_FAILS(run_backward(m, NULL, buf, 1, 4, 4, 3, 3));
        CHECK_FAILS(run_backward(m, buf, NULL, 1, 4, 4, 3, 3));
        CHECK_FAILS(run_forward(m, buf, buf, 1 << 20, 1 << 20, 1 << 20, 1, 1));
        CHECK_FAILS(run_backward(m, buf, buf, 1, 1, 1, 1 << 20, 1 << 30));
    }
    CHECK_FAILS(lp_resize_bilinear_forward(buf, buf, 1, 4, 4, 3, 3, 2));
    CHECK(strstr(lp_last_error(), "align_corners") != NULL);
    CHECK_FAILS(lp_resize_bicubic_backward(buf, buf, 1, 4, 4, 3, 3, -1));
    CHECK_FAILS(lp_resize_bilinear_forward(buf, buf, 1, 0, 4, 3, 3, 0));
    CHECK(strstr(lp_last_error(), "lp_resize_bilinear_forward") != NULL);
}
