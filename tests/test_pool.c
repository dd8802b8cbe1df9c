/*
 * test_pool.c — max, average and adaptive average pooling against naive
 * double references written from PyTorch's definitions, their backward
 * against central finite differences, PyTorch's tie and NaN rules, and
 * argument validation.
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- helpers -------------------------------------------------------------- */

static lp_pool2d_params pool_params(int n, int c, int h, int w, int k_h,
                                    int k_w, int s_h, int s_w, int p_h,
                                    int p_w, int include_pad)
{
    lp_pool2d_params p = {n, c, h, w, k_h, k_w, s_h, s_w, p_h, p_w,
                          include_pad};
    return p;
}

static int out_h(const lp_pool2d_params *p)
{
    return (p->h_in + 2 * p->pad_h - p->k_h) / p->stride_h + 1;
}

static int out_w(const lp_pool2d_params *p)
{
    return (p->w_in + 2 * p->pad_w - p->k_w) / p->stride_w + 1;
}

static size_t in_count(const lp_pool2d_params *p)
{
    return (size_t)p->n * p->c * p->h_in * p->w_in;
}

static size_t out_count(const lp_pool2d_params *p)
{
    return (size_t)p->n * p->c * out_h(p) * out_w(p);
}

static void describe(char *buf, size_t size, const char *what,
                     const lp_pool2d_params *p)
{
    snprintf(buf, size, "%s n%d c%d %dx%d k%dx%d s%d,%d p%d,%d incl%d", what,
             p->n, p->c, p->h_in, p->w_in, p->k_h, p->k_w, p->stride_h,
             p->stride_w, p->pad_h, p->pad_w, p->count_include_pad);
}

static double *plus(const float *base, const double *grad, size_t n)
{
    double *w = lpt_doubles(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (double)base[i] + grad[i];
    return w;
}

static float *copy_floats(const float *x, size_t n)
{
    float *c = lpt_floats(n);
    memcpy(c, x, n * sizeof(float));
    return c;
}

/* Distinct values at least 0.01 apart in random order (no ties, so max
 * pooling has no kinks within the finite-difference step). */
static void fill_distinct(lpt_rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.01 * (double)i - 0.005 * (double)n);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(lpt_rng_u64(rng) % i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

/* ---- double references ------------------------------------------------------ */

/* PyTorch's CPU max-pool loop; argmax (may be NULL) is the in-plane index. */
static void ref_maxpool(double *out, int32_t *argmax, const double *in,
                        const lp_pool2d_params *p)
{
    int ho = out_h(p), wo = out_w(p);
    for (int pl = 0; pl < p->n * p->c; pl++) {
        const double *x = in + (size_t)pl * p->h_in * p->w_in;
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int h0 = oh * p->stride_h - p->pad_h, w0 = ow * p->stride_w - p->pad_w;
                int h1 = h0 + p->k_h < p->h_in ? h0 + p->k_h : p->h_in;
                int w1 = w0 + p->k_w < p->w_in ? w0 + p->k_w : p->w_in;
                if (h0 < 0) h0 = 0;
                if (w0 < 0) w0 = 0;
                double m = -INFINITY;
                int idx = h0 * p->w_in + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        double v = x[ih * p->w_in + iw];
                        if (v > m || isnan(v)) {
                            m = v;
                            idx = ih * p->w_in + iw;
                        }
                    }
                size_t o = ((size_t)pl * ho + oh) * wo + ow;
                out[o] = m;
                if (argmax != NULL)
                    argmax[o] = idx;
            }
    }
}

/* PyTorch's avg_pool2d: the divisor window is cut at H + pad first, then
 * the summed window at [0, H). */
static void ref_avgpool(double *out, const double *in, const lp_pool2d_params *p)
{
    int ho = out_h(p), wo = out_w(p);
    for (int pl = 0; pl < p->n * p->c; pl++) {
        const double *x = in + (size_t)pl * p->h_in * p->w_in;
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int h0 = oh * p->stride_h - p->pad_h, w0 = ow * p->stride_w - p->pad_w;
                int h1 = h0 + p->k_h, w1 = w0 + p->k_w;
                if (h1 > p->h_in + p->pad_h) h1 = p->h_in + p->pad_h;
                if (w1 > p->w_in + p->pad_w) w1 = p->w_in + p->pad_w;
                int pool_size = (h1 - h0) * (w1 - w0);
                if (h0 < 0) h0 = 0;
                if (w0 < 0) w0 = 0;
                if (h1 > p->h_in) h1 = p->h_in;
                if (w1 > p->w_in) w1 = p->w_in;
                double sum = 0.0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += x[ih * p->w_in + iw];
                int div = p->count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
                out[((size_t)pl * ho + oh) * wo + ow] = sum / div;
            }
    }
}

/* Adaptive average pooling with bins [floor(i H / Ho), ceil((i+1) H / Ho)). */
static void ref_adaptive(double *out, const double *in, int planes, int h,
                         int w, int ho, int wo)
{
    for (int pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int h0 = (int)floor((double)oh * h / ho);
                int h1 = (int)ceil((double)(oh + 1) * h / ho);
                int w0 = (int)floor((double)ow * w / wo);
                int w1 = (int)ceil((double)(ow + 1) * w / wo);
                double sum = 0.0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += in[((size_t)pl * h + ih) * w + iw];
                out[((size_t)pl * ho + oh) * wo + ow] =
                    sum / ((h1 - h0) * (w1 - w0));
            }
}

/* loss = sum r * pool(x) for finite differences. */
typedef struct {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    const lp_pool2d_params *p;
    int planes, h, w, ho, wo; /* adaptive */
    const double *r;
    double *out;
    size_t n_out;
} pool_loss_ctx;

static double pool_loss(const double *x, void *vctx)
{
    pool_loss_ctx *c = vctx;
    double s = 0.0;
    if (c->kind == 0)
        ref_maxpool(c->out, NULL, x, c->p);
    else if (c->kind == 1)
        ref_avgpool(c->out, x, c->p);
    else
        ref_adaptive(c->out, x, c->planes, c->h, c->w, c->ho, c->wo);
    for (size_t i = 0; i < c->n_out; i++)
        s += c->r[i] * c->out[i];
    return s;
}

/* ---- shapes ---------------------------------------------------------------- */

static const lp_pool2d_params k_cases[] = {
    /* n, c, h, w, kh, kw, sh, sw, ph, pw, count_include_pad */
    {2, 3, 9, 11, 3, 3, 2, 2, 1, 1, 1},   /* ResNet maxpool */
    {1, 2, 16, 15, 3, 3, 2, 2, 1, 1, 0},
    {1, 2, 7, 8, 2, 2, 2, 2, 0, 0, 1},    /* 2x2 s2 */
    {3, 2, 5, 6, 3, 3, 1, 1, 1, 1, 1},    /* 3x3 s1 p1 */
    {3, 2, 5, 6, 3, 3, 1, 1, 1, 1, 0},
    {1, 3, 8, 7, 3, 2, 2, 1, 1, 1, 0},    /* non-square kernel */
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},    /* trivial */
    {2, 2, 13, 9, 5, 3, 3, 2, 2, 1, 1},
    {2, 2, 13, 9, 5, 3, 3, 2, 2, 1, 0},
    {1, 2, 6, 6, 2, 4, 1, 3, 1, 2, 1},    /* pad = kernel/2 */
};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])

/* ---- max pooling ------------------------------------------------------------- */

TEST(pool_output_size)
{
    int ho = 0, wo = 0;
    lp_pool2d_params p = pool_params(1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1);
    CHECK_OK(lp_pool2d_output_size(&p, &ho, &wo));
    CHECK(ho == 56 && wo == 56);
    p = pool_params(1, 1, 7, 8, 2, 2, 2, 2, 0, 0, 1);
    CHECK_OK(lp_pool2d_output_size(&p, &ho, &wo)); /* floor mode */
    CHECK(ho == 3 && wo == 4);
    p = pool_params(1, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1);
    CHECK_OK(lp_pool2d_output_size(&p, &ho, &wo));
    CHECK(ho == 1 && wo == 1);
}

TEST(pool_maxpool_forward_vs_reference)
{
    lpt_rng rng = lpt_rng_seed(3);
    char what[128];
    for (size_t ci = 0; ci < N_CASES; ci++) {
        const lp_pool2d_params *p = &k_cases[ci];
        size_t n_in = in_count(p), n_out = out_count(p);
        float *in = lpt_floats(n_in), *out = lpt_floats(n_out),
              *out2 = lpt_floats(n_out);
        double *in_d = lpt_doubles(n_in), *want = lpt_doubles(n_out);
        int32_t *argmax = (int32_t *)lpt_floats(n_out);
        int32_t *want_arg = (int32_t *)lpt_floats(n_out);
        lpt_fill_normal(&rng, in, n_in, 1.0);
        lpt_to_double(in_d, in, n_in);
        ref_maxpool(want, want_arg, in_d, p);
        for (size_t i = 0; i < n_out; i++)
            out[i] = out2[i] = NAN;
        CHECK_OK(lp_maxpool2d_forward(out, argmax, in, p));
        CHECK_OK(lp_maxpool2d_forward(out2, NULL, in, p));
        describe(what, sizeof what, "maxpool", p);
        CHECK_CLOSE(what, out, want, n_out, 0.0); /* a max is exact */
        CHECK_CLOSE_F(what, out2, out, n_out, 0.0);
        CHECK_MSG(memcmp(argmax, want_arg, n_out * sizeof(int32_t)) == 0,
                  "%s: argmax differs", what);
    }
}

/* Equal values: the first maximum in row-major window order wins, in the
 * forward argmax and in where the backward sends the gradient. */
TEST(pool_maxpool_ties_first_wins)
{
    float in[16], out[4], din[16] = {0}, dout[4] = {1, 1, 1, 1};
    int32_t argmax[4];
    for (int i = 0; i < 16; i++)
        in[i] = 2.5f;
    /* 4x4 plane, 3x3 s2 p1: windows start at rows/cols -1, 1 */
    lp_pool2d_params p = pool_params(1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1);
    CHECK_OK(lp_maxpool2d_forward(out, argmax, in, &p));
    CHECK(argmax[0] == 0 && argmax[1] == 1 && argmax[2] == 4 &&
          argmax[3] == 5);
    CHECK_OK(lp_maxpool2d_backward(din, dout, in, NULL, &p));
    for (int i = 0; i < 16; i++)
        CHECK_NEAR(din[i], (i == 0 || i == 1 || i == 4 || i == 5) ? 1.0 : 0.0,
                   0.0);

    /* a tie between later elements: [1 5 ; 5 5] -> index 1 */
    float t2[4] = {1, 5, 5, 5}, o2, d2[4] = {0}, g2 = 3;
    int32_t a2;
    lp_pool2d_params q = pool_params(1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 1);
    CHECK_OK(lp_maxpool2d_forward(&o2, &a2, t2, &q));
    CHECK(o2 == 5.0f && a2 == 1);
    CHECK_OK(lp_maxpool2d_backward(d2, &g2, t2, NULL, &q));
    CHECK(d2[0] == 0 && d2[1] == 3 && d2[2] == 0 && d2[3] == 0);

    /* all -inf: the max is -inf at the first in-range element */
    for (int i = 0; i < 16; i++)
        in[i] = -INFINITY;
    CHECK_OK(lp_maxpool2d_forward(out, argmax, in, &p));
    CHECK(out[0] == -INFINITY && out[3] == -INFINITY);
    CHECK(argmax[0] == 0 && argmax[1] == 1 && argmax[2] == 4 &&
          argmax[3] == 5);
}

/* A NaN in the window is the maximum (PyTorch: later NaNs replace earlier
 * ones; a number never replaces a NaN). */
TEST(pool_maxpool_nan_propagates)
{
    float in[9] = {1, NAN, 3, NAN, 2, 0, 5, 6, 7};
    float out[4], din[9] = {0}, dout[4] = {1, 1, 1, 1};
    int32_t argmax[4];
    lp_pool2d_params p = pool_params(1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 1);
    CHECK_OK(lp_maxpool2d_forward(out, argmax, in, &p));
    CHECK(isnan(out[0]) && isnan(out[1]) && isnan(out[2]));
    CHECK(out[3] == 7.0f);
    /* as torch.nn.functional.max_pool2d(..., return_indices=True) */
    CHECK(argmax[0] == 3 && argmax[1] == 1 && argmax[2] == 3 &&
          argmax[3] == 8);
    CHECK_OK(lp_maxpool2d_backward(din, dout, in, NULL, &p));
    CHECK(din[1] == 1 && din[3] == 2 && din[8] == 1);
    CHECK(din[0] == 0 && din[2] == 0 && din[4] == 0 && din[7] == 0);
}

TEST(pool_maxpool_backward_vs_finite_differences)
{
    lpt_rng rng = lpt_rng_seed(4);
    char what[128];
    for (size_t ci = 0; ci < N_CASES; ci++) {
        const lp_pool2d_params *p = &k_cases[ci];
        size_t n_in = in_count(p), n_out = out_count(p);
        float *in = lpt_floats(n_in), *r = lpt_floats(n_out);
        double *in_d = lpt_doubles(n_in), *r_d = lpt_doubles(n_out),
               *grad = lpt_doubles(n_in);
        int32_t *argmax = (int32_t *)lpt_floats(n_out);
        fill_distinct(&rng, in, n_in);
        lpt_to_double(in_d, in, n_in);
        lpt_fill_normal(&rng, r, n_out, 1.0);
        lpt_to_double(r_d, r, n_out);
        pool_loss_ctx ctx = {0, p, 0, 0, 0, 0, 0, r_d, lpt_doubles(n_out), n_out};
        lpt_fd_gradient(pool_loss, &ctx, in_d, n_in, FD_EPS, grad);

        float *din = lpt_floats(n_in);
        lpt_fill_normal(&rng, din, n_in, 1.0);
        float *din0 = copy_floats(din, n_in), *din2 = copy_floats(din, n_in);
        float *out = lpt_floats(n_out);
        CHECK_OK(lp_maxpool2d_forward(out, argmax, in, p));
        CHECK_OK(lp_maxpool2d_backward(din, r, NULL, argmax, p));
        CHECK_OK(lp_maxpool2d_backward(din2, r, in, NULL, p));
        describe(what, sizeof what, "maxpool din (argmax)", p);
        CHECK_CLOSE(what, din, plus(din0, grad, n_in), n_in, BWD_TOL);
        describe(what, sizeof what, "maxpool din (recomputed)", p);
        CHECK_CLOSE_F(what, din2, din, n_in, 0.0);
    }
}

/* ---- average pooling ----------------------------------------------------------- */

TEST(pool_avgpool_forward_vs_reference)
{
    lpt_rng rng = lpt_rng_seed(5);
    char what[128];
    for (size_t ci = 0; ci < N_CASES; ci++) {
        const lp_pool2d_params *p = &k_cases[ci];
        size_t n_in = in_count(p), n_out = out_count(p);
        float *in = lpt_floats(n_in), *out = lpt_floats(n_out);
        double *in_d = lpt_doubles(n_in), *want = lpt_doubles(n_out);
        lpt_fill_normal(&rng, in, n_in, 1.0);
        lpt_to_double(in_d, in, n_in);
        ref_avgpool(want, in_d, p);
        for (size_t i = 0; i < n_out; i++)
            out[i] = NAN;
        CHECK_OK(lp_avgpool2d_forward(out, in, p));
        describe(what, sizeof what, "avgpool", p);
        CHECK_CLOSE(what, out, want, n_out, FWD_TOL);
    }

    /* values from torch.nn.functional.avg_pool2d(arange(16).view(1,1,4,4),
     * 3, 2, 1, count_include_pad=True / False) */
    float in[16], out[4];
    for (int i = 0; i < 16; i++)
        in[i] = (float)i;
    lp_pool2d_params p = pool_params(1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1);
    CHECK_OK(lp_avgpool2d_forward(out, in, &p));
    CHECK_NEAR(out[0], 10.0 / 9.0, 1e-6);
    CHECK_NEAR(out[1], 24.0 / 9.0, 1e-6);
    CHECK_NEAR(out[2], 51.0 / 9.0, 1e-6);
    CHECK_NEAR(out[3], 10.0, 1e-6);
    p.count_include_pad = 0;
    CHECK_OK(lp_avgpool2d_forward(out, in, &p));
    CHECK_NEAR(out[0], 2.5, 1e-6);
    CHECK_NEAR(out[1], 4.0, 1e-6);
    CHECK_NEAR(out[2], 8.5, 1e-6);
    CHECK_NEAR(out[3], 10.0, 1e-6);
}

TEST(pool_avgpool_backward_vs_finite_differences)
{
    lpt_rng rng = lpt_rng_seed(6);
    char what[128];
    for (size_t ci = 0; ci < N_CASES; ci++) {
        const lp_pool2d_params *p = &k_cases[ci];
        size_t n_in = in_count(p), n_out = out_count(p);
        double *in_d = lpt_doubles(n_in), *r_d = lpt_doubles(n_out),
               *grad = lpt_doubles(n_in);
        float *r = lpt_floats(n_out), *din = lpt_floats(n_in);
        for (size_t i = 0; i < n_in; i++)
            in_d[i] = lpt_rng_normal(&rng);
        lpt_fill_normal(&rng, r, n_out, 1.0);
        lpt_to_double(r_d, r, n_out);
        pool_loss_ctx ctx = {1, p, 0, 0, 0, 0, 0, r_d, lpt_doubles(n_out), n_out};
        lpt_fd_gradient(pool_loss, &ctx, in_d, n_in, FD_EPS, grad);
        lpt_fill_normal(&rng, din, n_in, 1.0);
        float *din0 = copy_floats(din, n_in);
        CHECK_OK(lp_avgpool2d_backward(din, r, p));
        describe(what, sizeof what, "avgpool din", p);
        CHECK_CLOSE(what, din, plus(din0, grad, n_in), n_in, BWD_TOL);
    }
}

/* ---- adaptive average pooling ----------------------------------------------- */

static const int k_adaptive[][4] = {
    /* h, w, h_out, w_out */
    {7, 7, 1, 1}, {5, 5, 3, 3}, {7, 7, 2, 2}, {1, 1, 3, 3},
    {7, 5, 2, 3}, {10, 6, 4, 4}, {6, 13, 6, 5}, {3, 4, 7, 9},
};
#define N_ADAPTIVE (sizeof k_adaptive / sizeof k_adaptive[0])

TEST(pool_adaptive_avgpool_forward_vs_reference)
{
    lpt_rng rng = lpt_rng_seed(7);
    char what[128];
    for (size_t ci = 0; ci < N_ADAPTIVE; ci++) {
        int n = 2, c = 3, h = k_adaptive[ci][0], w = k_adaptive[ci][1];
        int ho = k_adaptive[ci][2], wo = k_adaptive[ci][3];
        size_t n_in = (size_t)n * c * h * w, n_out = (size_t)n * c * ho * wo;
        float *in = lpt_floats(n_in), *out = lpt_floats(n_out);
        double *in_d = lpt_doubles(n_in), *want = lpt_doubles(n_out);
        lpt_fill_normal(&rng, in, n_in, 1.0);
        lpt_to_double(in_d, in, n_in);
        ref_adaptive(want, in_d, n * c, h, w, ho, wo);
        for (size_t i = 0; i < n_out; i++)
            out[i] = NAN;
        CHECK_OK(lp_adaptive_avgpool2d_forward(out, in, n, c, h, w, ho, wo));
        snprintf(what, sizeof what, "adaptive %dx%d -> %dx%d", h, w, ho, wo);
        CHECK_CLOSE(what, out, want, n_out, FWD_TOL);
    }

    /* 5 -> 3 along one axis: bins [0,2), [1,4), [3,5) */
    float x[5] = {1, 2, 4, 8, 16}, y[3];
    CHECK_OK(lp_adaptive_avgpool2d_forward(y, x, 1, 1, 1, 5, 1, 3));
    CHECK_NEAR(y[0], 1.5, 1e-6);
    CHECK_NEAR(y[1], 14.0 / 3.0, 1e-6);
    CHECK_NEAR(y[2], 12.0, 1e-6);
}

TEST(pool_adaptive_avgpool_backward_vs_finite_differences)
{
    lpt_rng rng = lpt_rng_seed(8);
    char what[128];
    for (size_t ci = 0; ci < N_ADAPTIVE; ci++) {
        int n = 2, c = 2, h = k_adaptive[ci][0], w = k_adaptive[ci][1];
        int ho = k_adaptive[ci][2], wo = k_adaptive[ci][3];
        size_t n_in = (size_t)n * c * h * w, n_out = (size_t)n * c * ho * wo;
        double *in_d = lpt_doubles(n_in), *r_d = lpt_doubles(n_out),
               *grad = lpt_doubles(n_in);
        float *r = lpt_floats(n_out), *din = lpt_floats(n_in);
        for (size_t i = 0; i < n_in; i++)
            in_d[i] = lpt_rng_normal(&rng);
        lpt_fill_normal(&rng, r, n_out, 1.0);
        lpt_to_double(r_d, r, n_out);
        pool_loss_ctx ctx = {2, NULL, n * c, h, w, ho, wo, r_d,
                             lpt_doubles(n_out), n_out};
        lpt_fd_gradient(pool_loss, &ctx, in_d, n_in, FD_EPS, grad);
        lpt_fill_normal(&rng, din, n_in, 1.0);
        float *din0 = copy_floats(din, n_in);
        CHECK_OK(lp_adaptive_avgpool2d_backward(din, r, n, c, h, w, ho, wo));
        snprintf(what, sizeof what, "adaptive din %dx%d -> %dx%d", h, w, ho, wo);
        CHECK_CLOSE(what, din, plus(din0, grad, n_in), n_in, BWD_TOL);
    }
}

/* ---- bad input ------------------------------------------------------------- */

TEST(pool_rejects_bad_input)
{
    float buf[1024] = {0};
    int32_t arg[64] = {0};
    int ho, wo;
    lp_pool2d_params ok = pool_params(1, 2, 8, 8, 3, 3, 2, 2, 1, 1, 1);
    lp_pool2d_params p;
    CHECK_OK(lp_maxpool2d_forward(buf, arg, buf + 256, &ok));

#define BAD(field, value)                                                  \
    do {                                                                   \
        p = ok;                                                            \
        p.field = (value);                                                 \
        CHECK_FAILS(lp_pool2d_output_size(&p, &ho, &wo));                  \
        CHECK_FAILS(lp_maxpool2d_forward(buf, arg, buf, &p));              \
        CHECK_FAILS(lp_maxpool2d_backward(buf, buf, buf, NULL, &p));       \
        CHECK_FAILS(lp_avgpool2d_forward(buf, buf, &p));                   \
        CHECK_FAILS(lp_avgpool2d_backward(buf, buf, &p));                  \
    } while (0)
    BAD(n, 0);
    BAD(c, -1);
    BAD(h_in, 0);
    BAD(w_in, -5);
    BAD(k_h, 0);
    BAD(k_w, -1);
    BAD(stride_h, 0);
    BAD(stride_w, -1);
    BAD(pad_h, -1);
    BAD(pad_w, 2); /* > kernel / 2 */
    BAD(k_h, 11);  /* larger than the padded input */
#undef BAD
    p = ok;
    p.k_h = p.k_w = 2; /* pad 1 = 2/2 is allowed */
    CHECK_OK(lp_pool2d_output_size(&p, &ho, &wo));
    CHECK(ho == 5 && wo == 5);
    p.pad_h = 2;
    CHECK_FAILS(lp_pool2d_output_size(&p, &ho, &wo));
    CHECK(strstr(lp_last_error(), "lp_pool2d_output_size") != NULL);
    CHECK(strstr(lp_last_error(), "pad_h") != NULL);

    /* NULL pointers */
    CHECK_FAILS(lp_pool2d_output_size(NULL, &ho, &wo));
    CHECK_FAILS(lp_pool2d_output_size(&ok, NULL, &wo));
    CHECK_FAILS(lp_maxpool2d_forward(NULL, arg, buf, &ok));
    CHECK_FAILS(lp_maxpool2d_forward(buf, arg, NULL, &ok));
    CHECK_FAILS(lp_maxpool2d_forward(buf, arg, buf, NULL));
    CHECK_FAILS(lp_maxpool2d_backward(NULL, buf, buf, arg, &ok));
    CHECK_FAILS(lp_maxpool2d_backward(buf, NULL, buf, arg, &ok));
    CHECK_FAILS(lp_maxpool2d_backward(buf, buf, NULL, NULL, &ok));
    CHECK_FAILS(lp_avgpool2d_forward(NULL, buf, &ok));
    CHECK_FAILS(lp_avgpool2d_backward(buf, NULL, &ok));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(NULL, buf, 1, 1, 4, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, NULL, 1, 1, 4, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_backward(NULL, buf, 1, 1, 4, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_backward(buf, NULL, 1, 1, 4, 4, 2, 2));

    /* argmax outside the plane: rejected before touching din */
    float din[128] = {0}, dout[32] = {0};
    CHECK_OK(lp_maxpool2d_forward(dout, arg, buf, &ok));
    dout[0] = 1.0f;
    arg[5] = 64;
    CHECK_FAILS(lp_maxpool2d_backward(din, dout, NULL, arg, &ok));
    arg[5] = -1;
    CHECK_FAILS(lp_maxpool2d_backward(din, dout, NULL, arg, &ok));
    for (int i = 0; i < 128; i++)
        CHECK(din[i] == 0.0f);

    /* adaptive: sizes */
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 0, 1, 4, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 1, -1, 4, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 1, 1, 0, 4, 2, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 1, 1, 4, 4, 0, 2));
    CHECK_FAILS(lp_adaptive_avgpool2d_backward(buf, buf, 1, 1, 4, 4, 2, -2));

    /* overflowing element counts */
    p = pool_params(1 << 20, 1 << 20, 1 << 20, 1 << 20, 1, 1, 1, 1, 0, 0, 1);
    CHECK_FAILS(lp_pool2d_output_size(&p, &ho, &wo));
    CHECK_FAILS(lp_maxpool2d_forward(buf, arg, buf, &p));
    CHECK_FAILS(lp_avgpool2d_forward(buf, buf, &p));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 1 << 20, 1 << 20,
                                              1 << 20, 1 << 20, 1, 1));
    CHECK_FAILS(lp_adaptive_avgpool2d_forward(buf, buf, 1, 1, 1, 1, 1 << 20,
                                              1 << 30));
    p = pool_params(1, 1, INT_MAX, 1, 3, 1, 1, 1, 1, 0, 1);
    CHECK_FAILS(lp_pool2d_output_size(&p, &ho, &wo));
    p = pool_params(1, 1, 1 << 16, 1 << 16, 1, 1, 1, 1, 0, 0, 1);
    CHECK_FAILS(lp_pool2d_output_size(&p, &ho, &wo)); /* argmax range */
}
