/*
 * test_tensor_ops.c — residual add, token concat / slice and the CIFAR
 * option-A shortcut (subsample + zero channel padding) against naive
 * references; backward against central finite differences (these maps are
 * linear, so the differences are exact up to rounding).
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-6
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- data ----------------------------------------------------------------------- */

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

static float *copy_floats(const float *src, size_t n)
{
    float *f = lpt_floats(n);
    memcpy(f, src, n * sizeof(float));
    return f;
}

/* ---- shapes and references (double) ------------------------------------------------ */

typedef struct {
    int n, ta, tb, d;             /* concat: a[n,ta,d] ++ b[n,tb,d] */
    int t, start, len;            /* slice: in[n,t,d][:, start:start+len] */
    int c, h, w, stride, before, after; /* pad-subsample */
} op_shape;

static void ref_concat(double *out, const double *const *in,
                       const op_shape *s)
{
    size_t k = 0;
    for (int b = 0; b < s->n; b++) {
        for (int i = 0; i < s->ta * s->d; i++)
            out[k++] = in[0][(size_t)b * s->ta * s->d + i];
        for (int i = 0; i < s->tb * s->d; i++)
            out[k++] = in[1][(size_t)b * s->tb * s->d + i];
    }
}

static void ref_slice(double *out, const double *const *in, const op_shape *s)
{
    for (int b = 0; b < s->n; b++)
        for (int t = 0; t < s->len; t++)
            for (int j = 0; j < s->d; j++)
                out[((size_t)b * s->len + t) * s->d + j] =
                    in[0][((size_t)b * s->t + s->start + t) * s->d + j];
}

static int out_size(int h, int stride) { return (h + stride - 1) / stride; }

/* y = x[:, :, ::s, ::s] with `before` zero channels in front and `after`
 * behind: the literal definition, output position by output position. */
static void ref_pad_subsample(double *out, const double *const *in,
                              const op_shape *s)
{
    int ho = out_size(s->h, s->stride), wo = out_size(s->w, s->stride);
    int c_out = s->before + s->c + s->after;
    for (int b = 0; b < s->n; b++)
        for (int co = 0; co < c_out; co++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++) {
                    int ci = co - s->before;
                    double v = 0.0;
                    if (ci >= 0 && ci < s->c)
                        v = in[0][(((size_t)b * s->c + ci) * s->h +
                                   (size_t)i * s->stride) * s->w +
                                  (size_t)j * s->stride];
                    out[(((size_t)b * c_out + co) * ho + i) * wo + j] = v;
                }
}

static void ref_add(double *out, const double *const *in, const op_shape *s)
{
    for (int i = 0; i < s->n; i++)
        out[i] = in[0][i] + in[1][i];
}

/* ---- finite differences of a reference: loss = Σ r·f(inputs) ------------------------ */

typedef void (*ref_fn)(double *out, const double *const *in,
                       const op_shape *s);

typedef struct {
    ref_fn f;
    const double *in[2];
    const op_shape *shape;
    const double *r;
    double *out;
    size_t out_n;
} lin_ctx;

static double lin_loss(const double *x, void *vctx)
{
    lin_ctx *c = vctx;
    double loss = 0.0;
    (void)x; /* x is one of c->in */
    c->f(c->out, c->in, c->shape);
    for (size_t i = 0; i < c->out_n; i++)
        loss += c->r[i] * c->out[i];
    return loss;
}

/* Check the accumulated gradient `got` (started from `init`) of input k. */
static void check_fd(lin_ctx *c, int k, size_t n, const float *init,
                     const float *got, const char *what)
{
    double *fd = lpt_doubles(n), *want = lpt_doubles(n);
    lpt_fd_gradient(lin_loss, c, (double *)c->in[k], n, FD_EPS, fd);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)init[i] + fd[i];
    CHECK_CLOSE(what, got, want, n, BWD_TOL);
}

/* ---- add ------------------------------------------------------------------------- */

TEST(tensor_add_forward)
{
    static const size_t counts[] = {1, 7, 1000, 100003};
    lpt_rng rng = lpt_rng_seed(301);
    for (int ci = 0; ci < 4; ci++) {
        size_t n = counts[ci];
        double *a_d, *b_d, *want = lpt_doubles(n);
        float *a = random_floats(&rng, n, &a_d), *b = random_floats(&rng, n, &b_d);
        float *out = lpt_floats(n);
        for (size_t i = 0; i < n; i++)
            want[i] = a_d[i] + b_d[i];
        CHECK_OK(lp_add_forward(out, a, b, n));
        CHECK_CLOSE("add forward", out, want, n, FWD_TOL);
        /* out may alias a or b */
        float *a2 = copy_floats(a, n), *b2 = copy_floats(b, n);
        CHECK_OK(lp_add_forward(a2, a2, b, n));
        CHECK_OK(lp_add_forward(b2, a, b2, n));
        CHECK(memcmp(a2, out, n * sizeof(float)) == 0);
        CHECK(memcmp(b2, out, n * sizeof(float)) == 0);
    }
}

TEST(tensor_add_backward)
{
    lpt_rng rng = lpt_rng_seed(302);
    size_t n = 37;
    op_shape s = {0};
    double *a_d, *b_d, *r_d;
    random_floats(&rng, n, &a_d);
    random_floats(&rng, n, &b_d);
    float *r = random_floats(&rng, n, &r_d);
    float *da = random_floats(&rng, n, NULL), *db = random_floats(&rng, n, NULL);
    float *da0 = copy_floats(da, n), *db0 = copy_floats(db, n);
    s.n = (int)n;
    lin_ctx c = {ref_add, {a_d, b_d}, &s, r_d, lpt_doubles(n), n};
    CHECK_OK(lp_add_backward(da, db, r, n));
    check_fd(&c, 0, n, da0, da, "add da");
    check_fd(&c, 1, n, db0, db, "add db");
    /* NULL skips; da == db (y = x + x) receives both contributions */
    float *only = copy_floats(da0, n), *same = copy_floats(da0, n);
    CHECK_OK(lp_add_backward(only, NULL, r, n));
    CHECK(memcmp(only, da, n * sizeof(float)) == 0);
    CHECK_OK(lp_add_backward(NULL, only, r, n));
    CHECK_OK(lp_add_backward(NULL, NULL, r, n));
    CHECK_OK(lp_add_backward(same, same, r, n));
    CHECK(memcmp(only, same, n * sizeof(float)) == 0);
}

/* ---- concat ---------------------------------------------------------------------- */

static void check_concat(int n, int ta, int tb, int d, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    op_shape s = {0};
    size_t na = (size_t)n * ta * d, nb = (size_t)n * tb * d, no = na + nb;
    double *a_d, *b_d, *r_d, *want = lpt_doubles(no);
    float *a = random_floats(&rng, na, &a_d), *b = random_floats(&rng, nb, &b_d);
    float *r = random_floats(&rng, no, &r_d), *out = lpt_floats(no);
    float *da = random_floats(&rng, na, NULL), *db = random_floats(&rng, nb, NULL);
    float *da0 = copy_floats(da, na), *db0 = copy_floats(db, nb);
    char what[96];
    s.n = n;
    s.ta = ta;
    s.tb = tb;
    s.d = d;
    const double *in[2] = {a_d, b_d};
    ref_concat(want, in, &s);
    CHECK_OK(lp_concat_tokens_forward(out, a, b, n, ta, tb, d));
    snprintf(what, sizeof what, "concat n=%d ta=%d tb=%d d=%d", n, ta, tb, d);
    CHECK_CLOSE(what, out, want, no, 0.0); /* a copy: exact */

    lin_ctx c = {ref_concat, {a_d, b_d}, &s, r_d, lpt_doubles(no), no};
    CHECK_OK(lp_concat_tokens_backward(da, db, r, n, ta, tb, d));
    check_fd(&c, 0, na, da0, da, what);
    check_fd(&c, 1, nb, db0, db, what);
    /* NULL skips that gradient only */
    float *da1 = copy_floats(da0, na), *db1 = copy_floats(db0, nb);
    CHECK_OK(lp_concat_tokens_backward(da1, NULL, r, n, ta, tb, d));
    CHECK_OK(lp_concat_tokens_backward(NULL, db1, r, n, ta, tb, d));
    CHECK(memcmp(da1, da, na * sizeof(float)) == 0);
    CHECK(memcmp(db1, db, nb * sizeof(float)) == 0);
}

TEST(tensor_concat_tokens)
{
    static const int ns[] = {1, 3}, tas[] = {1, 2, 5}, tbs[] = {1, 7, 16};
    static const int ds[] = {1, 5, 17};
    uint64_t seed = 310;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                for (int e = 0; e < 3; e++)
                    check_concat(ns[a], tas[b], tbs[c], ds[e], seed++);
    check_concat(2, 1, 196, 3, seed++); /* ViT: class token ++ patches */
}

/* ---- slice ------------------------------------------------------------------------ */

static void check_slice(int n, int t, int d, int start, int len,
                        uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    op_shape s = {0};
    size_t ni = (size_t)n * t * d, no = (size_t)n * len * d;
    double *x_d, *r_d, *want = lpt_doubles(no);
    float *x = random_floats(&rng, ni, &x_d), *r = random_floats(&rng, no, &r_d);
    float *out = lpt_floats(no), *dx = random_floats(&rng, ni, NULL);
    float *dx0 = copy_floats(dx, ni);
    char what[96];
    s.n = n;
    s.t = t;
    s.d = d;
    s.start = start;
    s.len = len;
    const double *in[1] = {x_d};
    ref_slice(want, in, &s);
    CHECK_OK(lp_slice_tokens_forward(out, x, n, t, d, start, len));
    snprintf(what, sizeof what, "slice n=%d t=%d d=%d [%d, %d)", n, t, d,
             start, start + len);
    CHECK_CLOSE(what, out, want, no, 0.0);

    lin_ctx c = {ref_slice, {x_d, NULL}, &s, r_d, lpt_doubles(no), no};
    CHECK_OK(lp_slice_tokens_backward(dx, r, n, t, d, start, len));
    check_fd(&c, 0, ni, dx0, dx, what);
}

TEST(tensor_slice_tokens)
{
    uint64_t seed = 330;
    static const int ts[] = {1, 3, 7, 17};
    for (int ti = 0; ti < 4; ti++) {
        int t = ts[ti];
        for (int start = 0; start < t; start++)
            for (int len = 1; start + len <= t; len++)
                if (t < 17 || len == 1 || len == t - start)
                    check_slice(ti % 2 ? 3 : 1, t, ti % 2 ? 5 : 1, start, len,
                                seed++);
    }
    check_slice(2, 197, 3, 0, 1, seed++);   /* ViT: the class token */
    check_slice(2, 197, 3, 1, 196, seed++); /* ... and the patches */
}

/* ---- pad-channels-subsample ------------------------------------------------------- */

static void check_pad_subsample(int n, int c, int h, int w, int stride,
                                int before, int after, int grads,
                                uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    op_shape s = {0};
    int ho = out_size(h, stride), wo = out_size(w, stride);
    size_t ni = (size_t)n * c * h * w;
    size_t no = (size_t)n * (before + c + after) * ho * wo;
    double *x_d, *r_d, *want = lpt_doubles(no);
    float *x = random_floats(&rng, ni, &x_d), *r = random_floats(&rng, no, &r_d);
    float *out = random_floats(&rng, no, NULL); /* every value overwritten */
    char what[128];
    s.n = n;
    s.c = c;
    s.h = h;
    s.w = w;
    s.stride = stride;
    s.before = before;
    s.after = after;
    const double *in[1] = {x_d};
    ref_pad_subsample(want, in, &s);
    CHECK_OK(lp_pad_channels_subsample_forward(out, x, n, c, h, w, stride,
                                               before, after));
    snprintf(what, sizeof what,
             "pad-subsample n=%d c=%d %dx%d stride=%d pad=%d+%d", n, c, h, w,
             stride, before, after);
    CHECK_CLOSE(what, out, want, no, 0.0);
    if (!grads)
        return;
    float *dx = random_floats(&rng, ni, NULL), *dx0 = copy_floats(dx, ni);
    lin_ctx lc = {ref_pad_subsample, {x_d, NULL}, &s, r_d, lpt_doubles(no),
                  no};
    CHECK_OK(lp_pad_channels_subsample_backward(dx, r, n, c, h, w, stride,
                                                before, after));
    check_fd(&lc, 0, ni, dx0, dx, what);
}

TEST(tensor_pad_channels_subsample)
{
    static const int sizes[] = {1, 5, 7, 8};
    static const int pads[][2] = {{0, 0}, {2, 3}, {0, 4}, {5, 0}};
    uint64_t seed = 350;
    for (int hi = 0; hi < 4; hi++)
        for (int wi = 0; wi < 4; wi++)
            for (int stride = 1; stride <= 3; stride++)
                for (int pi = 0; pi < 4; pi++) {
                    int grads = (hi + wi + pi) % 3 == 0;
                    check_pad_subsample(hi % 2 ? 2 : 1, pi % 2 ? 3 : 1,
                                        sizes[hi], sizes[wi], stride,
                                        pads[pi][0], pads[pi][1], grads,
                                        seed++);
                }
    /* CIFAR ResNet: 16 -> 32 channels at 32x32 -> 16x16, 32 -> 64 at 16 -> 8 */
    check_pad_subsample(2, 16, 32, 32, 2, 8, 8, 0, seed++);
    check_pad_subsample(1, 32, 16, 16, 2, 16, 16, 0, seed++);
    check_pad_subsample(1, 4, 16, 16, 2, 2, 2, 1, seed++);
    check_pad_subsample(1, 2, 9, 4, 5, 1, 1, 1, seed++); /* stride > w */
}

/* ---- threads ---------------------------------------------------------------------- */

TEST(tensor_results_do_not_depend_on_threads)
{
    int saved = lp_get_num_threads();
    int n = 8, t = 197, d = 192, c = 32, hw = 32;
    size_t tok = (size_t)n * t * d, img = (size_t)n * c * hw * hw;
    size_t pad_out = (size_t)n * 2 * c * (hw / 2) * (hw / 2);
    lpt_rng rng = lpt_rng_seed(370);
    float *x = random_floats(&rng, tok, NULL), *y = random_floats(&rng, tok, NULL);
    float *im = random_floats(&rng, img, NULL);
    float *g = random_floats(&rng, pad_out, NULL);
    size_t total = tok + 2 * tok + pad_out + img;
    float *res[2];
    for (int k = 0; k < 2; k++) {
        float *p = res[k] = lpt_floats(total);
        lp_set_num_threads(k + 1);
        CHECK_OK(lp_add_forward(p, x, y, tok));
        CHECK_OK(lp_add_backward(p, p, y, tok));
        p += tok;
        CHECK_OK(lp_concat_tokens_forward(p, x, y, n, t, t, d));
        CHECK_OK(lp_slice_tokens_backward(p, x, n, 2 * t, d, 5, t));
        p += 2 * tok;
        CHECK_OK(lp_pad_channels_subsample_forward(p, im, n, c, hw, hw, 2,
                                                   c / 2, c / 2));
        p += pad_out;
        CHECK_OK(lp_pad_channels_subsample_backward(p, g, n, c, hw, hw, 2,
                                                    c / 2, c / 2));
    }
    lp_set_num_threads(saved);
    CHECK(memcmp(res[0], res[1], total * sizeof(float)) == 0);
}

/* ---- bad input --------------------------------------------------------------------- */

TEST(tensor_bad_input)
{
    float a[64] = {0}, b[64] = {0}, o[256] = {0};
    size_t huge = SIZE_MAX;

    CHECK_OK(lp_add_forward(o, a, b, 64));
    CHECK_FAILS(lp_add_forward(NULL, a, b, 64));
    CHECK_FAILS(lp_add_forward(o, NULL, b, 64));
    CHECK_FAILS(lp_add_forward(o, a, NULL, 64));
    CHECK_FAILS(lp_add_forward(o, a, b, 0));
    CHECK_FAILS(lp_add_forward(o, a, b, huge));
    CHECK_FAILS(lp_add_backward(a, b, NULL, 64));
    CHECK_FAILS(lp_add_backward(a, b, o, 0));
    CHECK_FAILS(lp_add_backward(a, b, o, huge));

    /* concat a[2,3,4] ++ b[2,5,4] */
    CHECK_OK(lp_concat_tokens_forward(o, a, b, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(NULL, a, b, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, NULL, b, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, NULL, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, 0, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, 2, 0, 5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, 2, 3, -5, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, 2, 3, 5, 0));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, 2, INT_MAX, INT_MAX, 4));
    CHECK_FAILS(lp_concat_tokens_forward(o, a, b, INT_MAX, INT_MAX / 2,
                                         INT_MAX / 2, INT_MAX));
    CHECK_OK(lp_concat_tokens_backward(NULL, NULL, o, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_backward(a, b, NULL, 2, 3, 5, 4));
    CHECK_FAILS(lp_concat_tokens_backward(a, b, o, 2, 3, 5, -4));

    /* slice in[2, 6, 4] */
    CHECK_OK(lp_slice_tokens_forward(o, a, 2, 6, 4, 0, 6));
    CHECK_OK(lp_slice_tokens_forward(o, a, 2, 6, 4, 5, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, 5, 2));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, 6, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, -1, 2));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, 0, 0));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, 0, 7));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, 2, INT_MAX));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 4, INT_MAX, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 0, 6, 4, 0, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 0, 4, 0, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, 2, 6, 0, 0, 1));
    CHECK_FAILS(lp_slice_tokens_forward(NULL, a, 2, 6, 4, 0, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, NULL, 2, 6, 4, 0, 1));
    CHECK_FAILS(lp_slice_tokens_forward(o, a, INT_MAX, INT_MAX, INT_MAX, 0,
                                        1));
    CHECK_OK(lp_slice_tokens_backward(a, o, 2, 6, 4, 1, 3));
    CHECK_FAILS(lp_slice_tokens_backward(NULL, o, 2, 6, 4, 1, 3));
    CHECK_FAILS(lp_slice_tokens_backward(a, NULL, 2, 6, 4, 1, 3));
    CHECK_FAILS(lp_slice_tokens_backward(a, o, 2, 6, 4, 4, 3));

    /* pad-subsample in[1, 2, 5, 5] */
    CHECK_OK(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, 0, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, -2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, 2, -1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, 2, 1, -1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 0, 2, 5, 5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 0, 5, 5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 0, 5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, -5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(NULL, a, 1, 2, 5, 5, 2, 1,
                                                  1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, NULL, 1, 2, 5, 5, 2, 1,
                                                  1));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, 1, 2, 5, 5, 2,
                                                  INT_MAX, INT_MAX));
    CHECK_FAILS(lp_pad_channels_subsample_forward(o, a, INT_MAX, INT_MAX,
                                                  INT_MAX, INT_MAX, 1, 0, 0));
    CHECK_OK(lp_pad_channels_subsample_backward(a, o, 1, 2, 5, 5, 2, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_backward(NULL, o, 1, 2, 5, 5, 2, 1,
                                                   1));
    CHECK_FAILS(lp_pad_channels_subsample_backward(a, NULL, 1, 2, 5, 5, 2, 1,
                                                   1));
    CHECK_FAILS(lp_pad_channels_subsample_backward(a, o, 1, 2, 5, 5, 0, 1, 1));
    CHECK_FAILS(lp_pad_channels_subsample_backward(a, o, 1, 2, 5, 5, 2, -3,
                                                   1));
}
