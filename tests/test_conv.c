/*
 * test_conv.c — lp_conv2d_* against a naive double-precision reference
 * (forward), central finite differences of that reference (backward), and
 * argument validation.
 */
#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- helpers -------------------------------------------------------------- */

static lp_conv2d_params make_params(int n, int c_in, int h, int w, int c_out,
                                    int k_h, int k_w, int stride, int pad,
                                    int dil, int groups)
{
    lp_conv2d_params p = {n, c_in, h, w, c_out, k_h, k_w, stride, stride,
                          pad, pad, dil, dil, groups};
    return p;
}

static size_t in_count(const lp_conv2d_params *p)
{
    return (size_t)p->n * p->c_in * p->h_in * p->w_in;
}

static size_t w_count(const lp_conv2d_params *p)
{
    return (size_t)p->c_out * (p->c_in / p->groups) * p->k_h * p->k_w;
}

static size_t out_count(const lp_conv2d_params *p)
{
    int ho = 0, wo = 0;
    if (lp_conv2d_output_size(p, &ho, &wo) != LP_OK)
        return 0;
    return (size_t)p->n * p->c_out * ho * wo;
}

static void describe(char *buf, size_t size, const char *what,
                     const lp_conv2d_params *p)
{
    snprintf(buf, size,
             "%s n%d c%d->%d %dx%d k%dx%d s%d,%d p%d,%d d%d,%d g%d", what,
             p->n, p->c_in, p->c_out, p->h_in, p->w_in, p->k_h, p->k_w,
             p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dil_h,
             p->dil_w, p->groups);
}

/* Random float data and its exact double copy. */
static float *random_floats(lpt_rng *rng, size_t n, double **as_double)
{
    float *f = lpt_floats(n);
    lpt_fill_normal(rng, f, n, 1.0);
    if (as_double != NULL) {
        *as_double = lpt_doubles(n);
        lpt_to_double(*as_double, f, n);
    }
    return f;
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

/* ---- double reference ----------------------------------------------------- */

/* The definition, term by term (see ops/conv.c). b may be NULL. */
static void ref_conv(double *out, const double *in, const double *w,
                     const double *b, const lp_conv2d_params *p)
{
    int ho, wo;
    lp_conv2d_output_size(p, &ho, &wo);
    int cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    for (int n = 0; n < p->n; n++)
        for (int co = 0; co < p->c_out; co++) {
            int g = co / cog;
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double acc = b ? b[co] : 0.0;
                    for (int c = 0; c < cig; c++) {
                        int ci = g * cig + c;
                        for (int ki = 0; ki < p->k_h; ki++) {
                            int ih = oh * p->stride_h - p->pad_h + ki * p->dil_h;
                            if (ih < 0 || ih >= p->h_in)
                                continue;
                            for (int kj = 0; kj < p->k_w; kj++) {
                                int iw = ow * p->stride_w - p->pad_w +
                                         kj * p->dil_w;
                                if (iw < 0 || iw >= p->w_in)
                                    continue;
                                acc += w[(((size_t)co * cig + c) * p->k_h + ki) *
                                             p->k_w + kj] *
                                       in[(((size_t)n * p->c_in + ci) * p->h_in +
                                           ih) * p->w_in + iw];
                            }
                        }
                    }
                    out[(((size_t)n * p->c_out + co) * ho + oh) * wo + ow] = acc;
                }
        }
}

/* Adjoint of ref_conv, written directly from the definition (for shapes
 * too large for finite differences): din += d out/d in ^T g, etc. */
static void ref_conv_backward(double *din, double *dw, double *db,
                              const double *g, const double *in,
                              const double *w, const lp_conv2d_params *p)
{
    int ho, wo;
    lp_conv2d_output_size(p, &ho, &wo);
    int cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    for (int n = 0; n < p->n; n++)
        for (int co = 0; co < p->c_out; co++) {
            int grp = co / cog;
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double go = g[(((size_t)n * p->c_out + co) * ho + oh) * wo + ow];
                    db[co] += go;
                    for (int c = 0; c < cig; c++)
                        for (int ki = 0; ki < p->k_h; ki++) {
                            int ih = oh * p->stride_h - p->pad_h + ki * p->dil_h;
                            if (ih < 0 || ih >= p->h_in)
                                continue;
                            for (int kj = 0; kj < p->k_w; kj++) {
                                int iw = ow * p->stride_w - p->pad_w +
                                         kj * p->dil_w;
                                if (iw < 0 || iw >= p->w_in)
                                    continue;
                                size_t wi = (((size_t)co * cig + c) * p->k_h + ki) *
                                                p->k_w + kj;
                                size_t ii = (((size_t)n * p->c_in + grp * cig + c) *
                                                 p->h_in + ih) * p->w_in + iw;
                                din[ii] += w[wi] * go;
                                dw[wi] += in[ii] * go;
                            }
                        }
                }
        }
}

/* ---- forward -------------------------------------------------------------- */

/* Every kind of convolution torchvision's ResNets, ResNeXts and ViTs use,
 * on odd, non-square shapes. */
static const lp_conv2d_params k_forward_cases[] = {
    /* n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups */
    {1, 3, 23, 19, 5, 7, 7, 2, 2, 3, 3, 1, 1, 1},      /* ResNet stem */
    {3, 3, 17, 20, 4, 7, 7, 2, 2, 3, 3, 1, 1, 1},      /* stem, batch 3 */
    {3, 7, 9, 11, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* 3x3 s1 p1 */
    {1, 5, 10, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1},       /* 3x3 s2 p1 */
    {3, 5, 9, 8, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},        /* 3x3 s2 p1 */
    {3, 17, 5, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1, 1},       /* 1x1 direct */
    {1, 8, 6, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},        /* 1x1 direct, g2 */
    {3, 6, 9, 8, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1},        /* 1x1 s2 downsample */
    {1, 3, 33, 48, 7, 16, 16, 16, 16, 0, 0, 1, 1, 1},  /* ViT patch embed */
    {3, 3, 32, 35, 4, 16, 16, 16, 16, 0, 0, 1, 1, 1},  /* patch, batch 3 */
    {1, 64, 7, 6, 64, 3, 3, 1, 1, 1, 1, 1, 1, 32},     /* ResNeXt g32 */
    {3, 32, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1, 32},     /* ResNeXt g32 s2 */
    {1, 8, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},        /* groups 2 */
    {3, 8, 9, 7, 32, 3, 3, 2, 2, 1, 1, 1, 1, 2},       /* g2, GEMM per group */
    {1, 64, 5, 6, 96, 1, 3, 1, 1, 0, 1, 1, 1, 4},      /* g4, GEMM per group */
    {3, 8, 7, 5, 12, 3, 3, 2, 2, 1, 1, 1, 1, 4},       /* groups 4 */
    {1, 5, 8, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5},        /* depthwise */
    {1, 4, 11, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},       /* dilation 2 */
    {3, 4, 13, 10, 6, 3, 3, 2, 2, 2, 2, 2, 2, 2},      /* dil 2, s2, g2 */
    {1, 3, 6, 7, 2, 3, 3, 1, 1, 2, 2, 1, 1, 1},        /* full padding */
    {1, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},        /* 1x1 image */
    {1, 3, 9, 7, 4, 1, 3, 1, 2, 0, 1, 1, 1, 1},        /* 1x3, mixed */
    {1, 3, 8, 12, 4, 5, 2, 3, 1, 2, 1, 1, 2, 1},       /* all mixed */
    /* Several im2col tiles (the buffer budget is 512Ki floats): 72 rows x
     * 8100 columns in 2 tiles, a tile boundary inside an output row. */
    {1, 8, 90, 90, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    /* 144 rows x 8576 columns: 3 tiles, with dilation and groups (16
     * output channels per group: a GEMM per group) */
    {1, 16, 128, 67, 32, 3, 3, 1, 1, 2, 2, 2, 2, 2},
    /* 36864 rows: the minimum tile of 16 columns, 4 tiles. */
    {1, 4096, 8, 8, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};
#define N_FORWARD_CASES (sizeof k_forward_cases / sizeof k_forward_cases[0])

TEST(conv_forward_vs_reference)
{
    lpt_rng rng = lpt_rng_seed(11);
    char what[160];
    for (size_t ci = 0; ci < N_FORWARD_CASES; ci++) {
        const lp_conv2d_params *p = &k_forward_cases[ci];
        size_t n_in = in_count(p), n_w = w_count(p), n_out = out_count(p);
        CHECK(n_out > 0);
        double *in_d, *w_d, *b_d;
        float *in = random_floats(&rng, n_in, &in_d);
        float *w = random_floats(&rng, n_w, &w_d);
        float *b = random_floats(&rng, (size_t)p->c_out, &b_d);
        float *out = lpt_floats(n_out);
        double *want = lpt_doubles(n_out);
        for (int bias = 0; bias < 2; bias++) {
            /* the output must be written, never read */
            for (size_t i = 0; i < n_out; i++)
                out[i] = NAN;
            ref_conv(want, in_d, w_d, bias ? b_d : NULL, p);
            CHECK_OK(lp_conv2d_forward(out, in, w, bias ? b : NULL, p));
            describe(what, sizeof what, bias ? "forward+bias" : "forward", p);
            CHECK_CLOSE(what, out, want, n_out, FWD_TOL);
        }
    }
}

TEST(conv_output_size)
{
    int ho = 0, wo = 0;
    lp_conv2d_params stem = make_params(1, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1);
    lp_conv2d_params patch =
        make_params(1, 3, 224, 224, 768, 16, 16, 16, 0, 1, 1);
    lp_conv2d_params dil = make_params(1, 4, 28, 28, 4, 3, 3, 1, 2, 2, 1);
    CHECK_OK(lp_conv2d_output_size(&stem, &ho, &wo));
    CHECK(ho == 112 && wo == 112);
    CHECK_OK(lp_conv2d_output_size(&patch, &ho, &wo));
    CHECK(ho == 14 && wo == 14);
    CHECK_OK(lp_conv2d_output_size(&dil, &ho, &wo));
    CHECK(ho == 28 && wo == 28);
    /* floor: 56 + 2 - 3 = 55, / 2 + 1 = 28 */
    lp_conv2d_params s2 = make_params(1, 4, 56, 57, 4, 3, 3, 2, 1, 1, 1);
    CHECK_OK(lp_conv2d_output_size(&s2, &ho, &wo));
    CHECK(ho == 28 && wo == 29);
}

/* The ViT-B/16 patch embedding at full size against the reference on a
 * sample of outputs (the full reference is slow under sanitizers). */
TEST(conv_forward_vit_patch_embedding)
{
    lpt_rng rng = lpt_rng_seed(5);
    lp_conv2d_params p = make_params(1, 3, 224, 224, 768, 16, 16, 16, 0, 1, 1);
    size_t n_in = in_count(&p), n_w = w_count(&p), n_out = out_count(&p);
    float *in = random_floats(&rng, n_in, NULL);
    float *w = random_floats(&rng, n_w, NULL);
    float *b = random_floats(&rng, 768, NULL);
    float *out = lpt_floats(n_out);
    CHECK(n_out == (size_t)768 * 14 * 14);
    CHECK_OK(lp_conv2d_forward(out, in, w, b, &p));
    double max_err = 0.0, scale = 0.0;
    for (int s = 0; s < 200; s++) {
        int co = (int)(lpt_rng_u64(&rng) % 768), q = (int)(lpt_rng_u64(&rng) % 196);
        int oh = q / 14, ow = q % 14;
        double acc = b[co];
        for (int c = 0; c < 3; c++)
            for (int ki = 0; ki < 16; ki++)
                for (int kj = 0; kj < 16; kj++)
                    acc += (double)w[((co * 3 + c) * 16 + ki) * 16 + kj] *
                           in[((size_t)c * 224 + oh * 16 + ki) * 224 + ow * 16 + kj];
        double err = fabs(out[(size_t)co * 196 + q] - acc);
        if (err > max_err)
            max_err = err;
        if (fabs(acc) > scale)
            scale = fabs(acc);
    }
    CHECK_MSG(max_err / scale <= FWD_TOL, "patch embedding rel err %.3g",
              max_err / scale);
}

/* ---- backward ------------------------------------------------------------- */

/* loss = sum r * conv(in, w, b): which argument varies is `which`. */
typedef struct {
    const lp_conv2d_params *p;
    const double *in, *w, *b, *r;
    double *out;
    int which; /* 0: in, 1: w, 2: b */
} conv_loss_ctx;

static double conv_loss(const double *x, void *vctx)
{
    conv_loss_ctx *c = vctx;
    const double *in = c->which == 0 ? x : c->in;
    const double *w = c->which == 1 ? x : c->w;
    const double *b = c->which == 2 ? x : c->b;
    size_t n_out = out_count(c->p);
    double s = 0.0;
    ref_conv(c->out, in, w, b, c->p);
    for (size_t i = 0; i < n_out; i++)
        s += c->r[i] * c->out[i];
    return s;
}

static const lp_conv2d_params k_backward_cases[] = {
    /* n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups */
    {2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* 3x3 s1 p1 */
    {1, 2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},   /* 3x3 s2 p1 */
    {1, 2, 9, 8, 2, 7, 7, 2, 2, 3, 3, 1, 1, 1},   /* stem */
    {1, 2, 6, 7, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},   /* dilation 2 */
    {2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},   /* groups 2 */
    {1, 2, 5, 4, 32, 3, 3, 2, 2, 1, 1, 1, 1, 2},  /* g2, GEMM per group */
    {1, 4, 7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4},   /* depthwise s2 */
    {2, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1},   /* 1x1 direct */
    {1, 4, 3, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},   /* 1x1 direct, g2 */
    {2, 3, 5, 6, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1},   /* 1x1 s2 */
    {1, 2, 8, 9, 3, 4, 4, 4, 4, 0, 0, 1, 1, 1},   /* patchify */
    {1, 4, 7, 8, 4, 3, 2, 2, 1, 2, 1, 2, 1, 2},   /* mixed */
};
#define N_BACKWARD_CASES (sizeof k_backward_cases / sizeof k_backward_cases[0])

TEST(conv_backward_vs_finite_differences)
{
    lpt_rng rng = lpt_rng_seed(21);
    char what[160];
    for (size_t ci = 0; ci < N_BACKWARD_CASES; ci++) {
        const lp_conv2d_params *p = &k_backward_cases[ci];
        size_t n_in = in_count(p), n_w = w_count(p), n_out = out_count(p);
        size_t n_b = (size_t)p->c_out;
        double *in_d, *w_d, *b_d, *r_d;
        float *in = random_floats(&rng, n_in, &in_d);
        float *w = random_floats(&rng, n_w, &w_d);
        random_floats(&rng, n_b, &b_d);
        float *r = random_floats(&rng, n_out, &r_d);
        /* gradient buffers start non-zero: the backward must add */
        float *din = random_floats(&rng, n_in, NULL);
        float *dw = random_floats(&rng, n_w, NULL);
        float *db = random_floats(&rng, n_b, NULL);
        float *din0 = copy_floats(din, n_in), *dw0 = copy_floats(dw, n_w),
              *db0 = copy_floats(db, n_b);
        double *g_in = lpt_doubles(n_in), *g_w = lpt_doubles(n_w),
               *g_b = lpt_doubles(n_b);
        conv_loss_ctx ctx = {p, in_d, w_d, b_d, r_d, lpt_doubles(n_out), 0};

        ctx.which = 0;
        lpt_fd_gradient(conv_loss, &ctx, in_d, n_in, FD_EPS, g_in);
        ctx.which = 1;
        lpt_fd_gradient(conv_loss, &ctx, w_d, n_w, FD_EPS, g_w);
        ctx.which = 2;
        lpt_fd_gradient(conv_loss, &ctx, b_d, n_b, FD_EPS, g_b);

        CHECK_OK(lp_conv2d_backward(din, dw, db, r, in, w, p));
        describe(what, sizeof what, "din", p);
        CHECK_CLOSE(what, din, plus(din0, g_in, n_in), n_in, BWD_TOL);
        describe(what, sizeof what, "dw", p);
        CHECK_CLOSE(what, dw, plus(dw0, g_w, n_w), n_w, BWD_TOL);
        describe(what, sizeof what, "db", p);
        CHECK_CLOSE(what, db, plus(db0, g_b, n_b), n_b, BWD_TOL);

        /* each gradient alone, with the inputs it does not need NULL */
        float *din1 = copy_floats(din0, n_in), *dw1 = copy_floats(dw0, n_w),
              *db1 = copy_floats(db0, n_b);
        CHECK_OK(lp_conv2d_backward(din1, NULL, NULL, r, NULL, w, p));
        CHECK_OK(lp_conv2d_backward(NULL, dw1, NULL, r, in, NULL, p));
        CHECK_OK(lp_conv2d_backward(NULL, NULL, db1, r, NULL, NULL, p));
        CHECK_OK(lp_conv2d_backward(NULL, NULL, NULL, r, NULL, NULL, p));
        describe(what, sizeof what, "din alone", p);
        CHECK_CLOSE_F(what, din1, din, n_in, 1e-6);
        describe(what, sizeof what, "dw alone", p);
        CHECK_CLOSE_F(what, dw1, dw, n_w, 1e-6);
        describe(what, sizeof what, "db alone", p);
        CHECK_CLOSE_F(what, db1, db, n_b, 1e-6);
    }
}

/* Shapes with several im2col tiles: the backward against the reference
 * adjoint (finite differences would be too slow here). */
TEST(conv_backward_multi_tile)
{
    static const lp_conv2d_params cases[] = {
        {1, 8, 90, 90, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {2, 16, 128, 67, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2},
        {1, 16, 128, 67, 32, 3, 3, 1, 1, 2, 2, 2, 2, 2},
        {1, 4096, 8, 8, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {1, 6, 181, 175, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3},
    };
    lpt_rng rng = lpt_rng_seed(31);
    char what[160];
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const lp_conv2d_params *p = &cases[ci];
        size_t n_in = in_count(p), n_w = w_count(p), n_out = out_count(p);
        size_t n_b = (size_t)p->c_out;
        double *in_d, *w_d, *g_d;
        float *in = random_floats(&rng, n_in, &in_d);
        float *w = random_floats(&rng, n_w, &w_d);
        float *g = random_floats(&rng, n_out, &g_d);
        float *din = lpt_floats(n_in), *dw = lpt_floats(n_w),
              *db = lpt_floats(n_b);
        double *want_in = lpt_doubles(n_in), *want_w = lpt_doubles(n_w),
               *want_b = lpt_doubles(n_b);
        ref_conv_backward(want_in, want_w, want_b, g_d, in_d, w_d, p);
        CHECK_OK(lp_conv2d_backward(din, dw, db, g, in, w, p));
        describe(what, sizeof what, "din", p);
        CHECK_CLOSE(what, din, want_in, n_in, BWD_TOL);
        describe(what, sizeof what, "dw", p);
        CHECK_CLOSE(what, dw, want_w, n_w, BWD_TOL);
        describe(what, sizeof what, "db", p);
        CHECK_CLOSE(what, db, want_b, n_b, BWD_TOL);
    }
}

/* One shape's forward, full backward and din-only backward (the path that
 * shares a batch out an image a thread) with `threads` threads. */
static void conv_run_with_threads(const lp_conv2d_params *p, int threads,
                                  const float *in, const float *w,
                                  const float *b, float *out, float *din,
                                  float *dw, float *db, float *din_only)
{
    lp_set_num_threads(threads);
    CHECK_OK(lp_conv2d_forward(out, in, w, b, p));
    CHECK_OK(lp_conv2d_backward(din, dw, db, out, in, w, p));
    CHECK_OK(lp_conv2d_backward(din_only, NULL, NULL, out, in, w, p));
}

/* Results must not depend on the thread count (loupe.h promise): 1
 * thread against 3 (an odd split of every parallel loop), on batches
 * shared out an image a thread (small images; 2 and 5 of them: more
 * threads than images, and an uneven share), on one image whose products
 * are shared instead, and on a 1x1 convolution (no im2col). */
TEST(conv_bit_identical_across_threads)
{
    int threads = lp_get_num_threads();
    lp_set_num_threads(3);
    if (lp_get_num_threads() != 3) {
        lp_set_num_threads(threads);
        lpt_skip("built without OpenMP");
        return;
    }
    static const lp_conv2d_params cases[] = {
        {2, 16, 61, 67, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2},
        {5, 8, 20, 18, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {1, 64, 96, 96, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {5, 24, 14, 14, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    };
    lpt_rng rng = lpt_rng_seed(41);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const lp_conv2d_params *p = &cases[ci];
        size_t n_in = in_count(p), n_w = w_count(p), n_out = out_count(p);
        size_t n_b = (size_t)p->c_out;
        float *in = random_floats(&rng, n_in, NULL);
        float *w = random_floats(&rng, n_w, NULL);
        float *b = random_floats(&rng, n_b, NULL);
        float *out[2], *din[2], *dw[2], *db[2], *din_only[2];
        for (int t = 0; t < 2; t++) {
            out[t] = lpt_floats(n_out);
            din[t] = lpt_floats(n_in);
            dw[t] = lpt_floats(n_w);
            db[t] = lpt_floats(n_b);
            din_only[t] = lpt_floats(n_in);
            conv_run_with_threads(p, t == 0 ? 1 : 3, in, w, b, out[t], din[t],
                                  dw[t], db[t], din_only[t]);
        }
        lp_set_num_threads(threads);
        CHECK(memcmp(out[0], out[1], n_out * sizeof(float)) == 0);
        CHECK(memcmp(din[0], din[1], n_in * sizeof(float)) == 0);
        CHECK(memcmp(dw[0], dw[1], n_w * sizeof(float)) == 0);
        CHECK(memcmp(db[0], db[1], n_b * sizeof(float)) == 0);
        CHECK(memcmp(din_only[0], din[0], n_in * sizeof(float)) == 0);
    }
}

/* ---- bad input ------------------------------------------------------------ */

TEST(conv_rejects_bad_input)
{
    float buf[4096] = {0};
    int ho, wo;
    lp_conv2d_params ok = make_params(1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1);
    lp_conv2d_params p;
    CHECK_OK(lp_conv2d_forward(buf, buf + 1024, buf + 2048, NULL, &ok));

#define BAD(field, value)                                        \
    do {                                                         \
        p = ok;                                                  \
        p.field = (value);                                       \
        CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo));        \
        CHECK_FAILS(lp_conv2d_forward(buf, buf, buf, NULL, &p)); \
        CHECK_FAILS(lp_conv2d_backward(buf, buf, buf, buf, buf, buf, &p)); \
    } while (0)
    BAD(n, 0);
    BAD(n, -1);
    BAD(c_in, 0);
    BAD(h_in, -3);
    BAD(w_in, 0);
    BAD(c_out, 0);
    BAD(k_h, 0);
    BAD(k_w, -1);
    BAD(stride_h, 0);
    BAD(stride_w, -2);
    BAD(pad_h, -1);
    BAD(dil_w, 0);
    BAD(groups, 0);
    BAD(groups, -4);
    BAD(groups, 3); /* does not divide c_in = 4 */
    BAD(pad_h, 3);  /* > dil*(k-1) = 2 */
    BAD(pad_w, 100);
#undef BAD
    /* while h_in = 1 with k3 p1 is a valid one-row output */
    p = ok;
    p.h_in = 1;
    CHECK_OK(lp_conv2d_output_size(&p, &ho, &wo));
    CHECK(ho == 1);

    /* groups must divide c_out too */
    p = ok;
    p.groups = 4;
    p.c_out = 6;
    CHECK_FAILS(lp_conv2d_forward(buf, buf, buf, NULL, &p));
    CHECK(strstr(lp_last_error(), "lp_conv2d_forward") != NULL);
    CHECK(strstr(lp_last_error(), "groups") != NULL);

    /* kernel larger than the padded input: output size <= 0 */
    p = make_params(1, 1, 4, 4, 1, 7, 7, 1, 1, 1, 1);
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo));
    p = make_params(1, 1, 4, 4, 1, 3, 3, 1, 0, 3, 1); /* extent 7 > 4 */
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo));

    /* NULL pointers */
    CHECK_FAILS(lp_conv2d_output_size(NULL, &ho, &wo));
    CHECK_FAILS(lp_conv2d_output_size(&ok, NULL, &wo));
    CHECK_FAILS(lp_conv2d_output_size(&ok, &ho, NULL));
    CHECK_FAILS(lp_conv2d_forward(NULL, buf, buf, NULL, &ok));
    CHECK_FAILS(lp_conv2d_forward(buf, NULL, buf, NULL, &ok));
    CHECK_FAILS(lp_conv2d_forward(buf, buf, NULL, NULL, &ok));
    CHECK(strstr(lp_last_error(), "w is NULL") != NULL);
    CHECK_FAILS(lp_conv2d_forward(buf, buf, buf, NULL, NULL));
    CHECK_FAILS(lp_conv2d_backward(buf, NULL, NULL, NULL, buf, buf, &ok));
    CHECK_FAILS(lp_conv2d_backward(buf, NULL, NULL, buf, buf, NULL, &ok));
    CHECK_FAILS(lp_conv2d_backward(NULL, buf, NULL, buf, NULL, buf, &ok));
    CHECK_FAILS(lp_conv2d_backward(buf, buf, buf, buf, buf, buf, NULL));

    /* overflowing element counts */
    p = make_params(1 << 20, 1 << 20, 1 << 20, 1 << 20, 1, 1, 1, 1, 0, 1, 1);
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo));
    CHECK_FAILS(lp_conv2d_forward(buf, buf, buf, NULL, &p));
    p = make_params(1, 1, 1 << 12, 1 << 12, 1 << 20, 1 << 12, 1 << 12, 1, 0,
                    1, 1);
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo)); /* weight size */
    p = make_params(1, 1, INT_MAX, 1, 1, 3, 1, 1, 1, 1, 1);
    p.pad_w = 0;
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo)); /* padded size */
    p = make_params(1, 1, 1 << 16, 1 << 16, 1, 1, 1, 1, 0, 1, 1);
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo)); /* h*w > INT_MAX */
    p = make_params(1, 1, 8, 8, 1, 3, 3, 1, 1, INT_MAX, 1);
    CHECK_FAILS(lp_conv2d_output_size(&p, &ho, &wo)); /* huge dilation */
}
