/*
 * test_activation.c — ReLU, GELU (erf and tanh forms), sigmoid, tanh,
 * softmax and log-softmax against double references and central finite
 * differences.
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

#define PI 3.14159265358979323846

/* ---- references (double) ---------------------------------------------------- */

typedef enum {
    ACT_RELU,
    ACT_GELU_ERF,
    ACT_GELU_TANH,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_COUNT
} act_kind;

static const char *const act_names[ACT_COUNT] = {"relu", "gelu-erf",
                                                 "gelu-tanh", "sigmoid",
                                                 "tanh"};

static double ref_act(act_kind kind, double x)
{
    switch (kind) {
    case ACT_RELU:
        return x > 0.0 ? x : 0.0;
    case ACT_GELU_ERF:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ACT_GELU_TANH:
        /* PyTorch's approximate='tanh' */
        return 0.5 * x *
               (1.0 + tanh(sqrt(2.0 / PI) * (x + 0.044715 * x * x * x)));
    case ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case ACT_TANH:
    default:
        return tanh(x);
    }
}

/* The same functions in forms that keep their relative accuracy in the
 * tails, for checking tiny outputs: 1 + erf(-z) = erfc(z) and
 * 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)) (identities; the literal forms
 * above cancel to 0 in double long before float underflows). */
static double ref_act_tail(act_kind kind, double x)
{
    if (kind == ACT_GELU_ERF)
        return 0.5 * x * erfc(-x / sqrt(2.0));
    if (kind == ACT_GELU_TANH)
        return x / (1.0 + exp(-2.0 * sqrt(2.0 / PI) *
                              (x + 0.044715 * x * x * x)));
    return ref_act(kind, x);
}

/* d/dx of the two GELU forms, also accurate in the tails. */
static double ref_gelu_grad_tail(act_kind kind, double x)
{
    if (kind == ACT_GELU_ERF) /* Φ(x) + x φ(x) */
        return 0.5 * erfc(-x / sqrt(2.0)) +
               x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
    double k = sqrt(2.0 / PI), z = 2.0 * k * (x + 0.044715 * x * x * x);
    double s = 1.0 / (1.0 + exp(-z)), one_minus_s = 1.0 / (1.0 + exp(z));
    return s + 2.0 * x * s * one_minus_s * k * (1.0 + 3.0 * 0.044715 * x * x);
}

/* The op under test; backward from the input or from the output. */
static int act_forward(act_kind kind, float *out, const float *in, size_t n)
{
    switch (kind) {
    case ACT_RELU: return lp_relu_forward(out, in, n);
    case ACT_GELU_ERF: return lp_gelu_forward(out, in, n, LP_GELU_ERF);
    case ACT_GELU_TANH: return lp_gelu_forward(out, in, n, LP_GELU_TANH);
    case ACT_SIGMOID: return lp_sigmoid_forward(out, in, n);
    case ACT_TANH:
    default: return lp_tanh_forward(out, in, n);
    }
}

static int act_backward(act_kind kind, float *din, const float *dout,
                        const float *in, const float *out, size_t n)
{
    switch (kind) {
    case ACT_RELU: return lp_relu_backward(din, dout, in, n);
    case ACT_GELU_ERF: return lp_gelu_backward(din, dout, in, n, LP_GELU_ERF);
    case ACT_GELU_TANH:
        return lp_gelu_backward(din, dout, in, n, LP_GELU_TANH);
    case ACT_SIGMOID: return lp_sigmoid_backward(din, dout, out, n);
    case ACT_TANH:
    default: return lp_tanh_backward(din, dout, out, n);
    }
}

static void ref_softmax(double *out, const double *x, int rows, int dim,
                        int log_form)
{
    for (int r = 0; r < rows; r++) {
        const double *row = x + (size_t)r * dim;
        double max = row[0], sum = 0.0;
        for (int j = 1; j < dim; j++)
            if (row[j] > max)
                max = row[j];
        for (int j = 0; j < dim; j++)
            sum += exp(row[j] - max);
        for (int j = 0; j < dim; j++)
            out[(size_t)r * dim + j] = log_form
                                           ? row[j] - max - log(sum)
                                           : exp(row[j] - max) / sum;
    }
}

/* ---- data ------------------------------------------------------------------- */

static float *random_floats(lpt_rng *rng, size_t n, double stddev,
                            double offset, double **as_double)
{
    float *f = lpt_floats(n);
    lpt_fill_normal(rng, f, n, stddev);
    for (size_t i = 0; i < n; i++)
        f[i] += (float)offset;
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

/* ---- elementwise forward ------------------------------------------------------ */

static void check_act_forward(act_kind kind, const float *x, size_t n,
                              const char *label)
{
    double *want = lpt_doubles(n);
    float *out = lpt_floats(n), *inplace = copy_floats(x, n);
    char what[128];
    for (size_t i = 0; i < n; i++)
        want[i] = ref_act(kind, x[i]);
    CHECK_OK(act_forward(kind, out, x, n));
    snprintf(what, sizeof what, "%s forward, %s, n=%zu", act_names[kind],
             label, n);
    CHECK_CLOSE(what, out, want, n, FWD_TOL);
    CHECK_OK(act_forward(kind, inplace, inplace, n));
    CHECK_MSG(memcmp(out, inplace, n * sizeof(float)) == 0,
              "%s: in-place forward differs", what);
}

TEST(activation_elementwise_forward)
{
    static const size_t counts[] = {1, 7, 33, 1000, 100003};
    lpt_rng rng = lpt_rng_seed(201);
    for (int k = 0; k < ACT_COUNT; k++)
        for (int ci = 0; ci < 5; ci++) {
            float *x = random_floats(&rng, counts[ci], 3.0, 0.0, NULL);
            check_act_forward((act_kind)k, x, counts[ci], "x~N(0,9)");
        }
}

/* Tails, tiny values and signed zeros, each checked on its own scale (a
 * relative check per value, so the tails are not hidden by the peak); the
 * GELU gradients too. The absolute floor 1e-37 is below float's normal
 * range (the left GELU tail is ~1e-30 at x = -15). */
TEST(activation_elementwise_forward_tails)
{
    static const float xs[] = {0.0f,   -0.0f, 1e-8f, -1e-8f, 1e-3f, -1e-3f,
                               0.5f,   -0.5f, -0.75f, 3.0f,  -3.0f,  5.0f,
                               -5.0f,  9.0f, -9.0f, 12.8f, -12.8f, 15.0f,
                               -15.0f, 30.0f, -30.0f, 88.0f, -88.0f, 100.0f,
                               -100.0f};
    size_t n = sizeof xs / sizeof xs[0];
    for (int k = 0; k < ACT_COUNT; k++)
        for (size_t i = 0; i < n; i++) {
            float y = NAN, dx = 0.0f, one = 1.0f;
            double want = ref_act_tail((act_kind)k, xs[i]);
            CHECK_OK(act_forward((act_kind)k, &y, &xs[i], 1));
            CHECK_MSG(fabs(y - want) <= 1e-5 * fabs(want) + 1e-37,
                      "%s(%g) = %.9g, want %.9g", act_names[k], (double)xs[i],
                      (double)y, want);
            if (k != ACT_GELU_ERF && k != ACT_GELU_TANH)
                continue;
            want = ref_gelu_grad_tail((act_kind)k, xs[i]);
            CHECK_OK(act_backward((act_kind)k, &dx, &one, &xs[i], &y, 1));
            CHECK_MSG(fabs(dx - want) <= 1e-5 * fabs(want) + 1e-37,
                      "%s'(%g) = %.9g, want %.9g", act_names[k],
                      (double)xs[i], (double)dx, want);
        }
}

/* Huge inputs give the limits, not NaN (gelu's x³ and exp overflow). */
TEST(activation_elementwise_huge_inputs)
{
    static const float xs[] = {1e10f, -1e10f, 1e30f, -1e30f, 3e38f, -3e38f};
    for (int k = 0; k < ACT_COUNT; k++)
        for (size_t i = 0; i < 6; i++) {
            float y = NAN, dx = 0.0f, one = 1.0f;
            double want = ref_act((act_kind)k, xs[i]);
            if (isnan(want)) /* the double reference overflows (x³) */
                want = xs[i] > 0 ? xs[i] : 0.0;
            CHECK_OK(act_forward((act_kind)k, &y, &xs[i], 1));
            CHECK_MSG(y == (float)want, "%s(%g) = %g, want %g", act_names[k],
                      (double)xs[i], (double)y, want);
            CHECK_OK(act_backward((act_kind)k, &dx, &one, &xs[i], &y, 1));
            double want_dx = xs[i] > 0 && k != ACT_SIGMOID && k != ACT_TANH
                                 ? 1.0
                                 : 0.0;
            CHECK_MSG(dx == (float)want_dx, "%s'(%g) = %g, want %g",
                      act_names[k], (double)xs[i], (double)dx, want_dx);
        }
}

TEST(activation_relu_nan_and_zero)
{
    float x[4] = {0.0f, -0.0f, NAN, 2.0f}, y[4], dx[4] = {1, 1, 1, 1};
    float dy[4] = {5, 5, 5, 5};
    CHECK_OK(lp_relu_forward(y, x, 4));
    CHECK(y[0] == 0.0f && y[1] == 0.0f && isnan(y[2]) && y[3] == 2.0f);
    /* relu'(0) = 0 as in PyTorch; NaN passes the gradient like PyTorch's
     * threshold_backward */
    CHECK_OK(lp_relu_backward(dx, dy, x, 4));
    CHECK(dx[0] == 1.0f && dx[1] == 1.0f && dx[2] == 6.0f && dx[3] == 6.0f);
}

/* ---- elementwise backward ----------------------------------------------------- */

typedef struct {
    act_kind kind;
    const double *r;
    size_t n;
} act_ctx;

static double act_loss(const double *x, void *vctx)
{
    act_ctx *c = vctx;
    double loss = 0.0;
    for (size_t i = 0; i < c->n; i++)
        loss += c->r[i] * ref_act(c->kind, x[i]);
    return loss;
}

static void check_act_backward(act_kind kind, double stddev, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t n = 41;
    act_ctx c = {kind, NULL, n};
    double *x_d, *r_d, *fd = lpt_doubles(n), *want = lpt_doubles(n);
    float *x = random_floats(&rng, n, stddev, 0.0, &x_d);
    float *r = random_floats(&rng, n, 1.0, 0.0, &r_d);
    float *dx = random_floats(&rng, n, 1.0, 0.0, NULL);
    float *y = lpt_floats(n);
    char what[96];
    if (kind == ACT_RELU) /* stay away from the kink at 0 */
        for (size_t i = 0; i < n; i++)
            if (fabsf(x[i]) < 0.05f) {
                x[i] = x[i] < 0.0f ? -0.05f : 0.05f;
                x_d[i] = x[i];
            }
    c.r = r_d;
    lpt_fd_gradient(act_loss, &c, x_d, n, FD_EPS, fd);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)dx[i] + fd[i]; /* accumulates */
    CHECK_OK(act_forward(kind, y, x, n));
    CHECK_OK(act_backward(kind, dx, r, x, y, n));
    snprintf(what, sizeof what, "%s backward, x~N(0,%g)", act_names[kind],
             stddev * stddev);
    CHECK_CLOSE(what, dx, want, n, BWD_TOL);
}

TEST(activation_elementwise_backward_finite_differences)
{
    for (int k = 0; k < ACT_COUNT; k++) {
        check_act_backward((act_kind)k, 1.0, 210 + (uint64_t)k);
        check_act_backward((act_kind)k, 4.0, 220 + (uint64_t)k);
    }
}

/* ---- softmax / log-softmax ---------------------------------------------------- */

static int softmax_fwd(int log_form, float *out, const float *in, int rows,
                       int dim)
{
    return log_form ? lp_log_softmax_forward(out, in, rows, dim)
                    : lp_softmax_forward(out, in, rows, dim);
}

static int softmax_bwd(int log_form, float *din, const float *dout,
                       const float *out, int rows, int dim)
{
    return log_form ? lp_log_softmax_backward(din, dout, out, rows, dim)
                    : lp_softmax_backward(din, dout, out, rows, dim);
}

TEST(activation_softmax_forward)
{
    static const int rows_list[] = {1, 3, 7, 17, 33};
    static const int dims[] = {1, 5, 17, 64, 768};
    /* offset 1000: exp overflows without the max subtraction */
    static const double offsets[] = {0.0, 1000.0, -1000.0};
    lpt_rng rng = lpt_rng_seed(230);
    char what[128];
    for (int log_form = 0; log_form < 2; log_form++)
        for (int ri = 0; ri < 5; ri++)
            for (int di = 0; di < 5; di++)
                for (int oi = 0; oi < 3; oi++) {
                    int rows = rows_list[ri], dim = dims[di];
                    size_t n = (size_t)rows * dim;
                    double *x_d, *want = lpt_doubles(n);
                    float *x = random_floats(&rng, n, 4.0, offsets[oi], &x_d);
                    float *out = lpt_floats(n);
                    ref_softmax(want, x_d, rows, dim, log_form);
                    CHECK_OK(softmax_fwd(log_form, out, x, rows, dim));
                    snprintf(what, sizeof what,
                             "%s rows=%d dim=%d offset=%g",
                             log_form ? "log-softmax" : "softmax", rows, dim,
                             offsets[oi]);
                    CHECK_CLOSE(what, out, want, n, FWD_TOL);
                    CHECK_OK(softmax_fwd(log_form, x, x, rows, dim));
                    CHECK_MSG(memcmp(x, out, n * sizeof(float)) == 0,
                              "%s: in-place forward differs", what);
                }
}

/* Every row of a softmax sums to 1; a wide spread underflows cleanly. */
TEST(activation_softmax_rows_sum_to_one)
{
    lpt_rng rng = lpt_rng_seed(231);
    int rows = 9, dim = 197;
    size_t n = (size_t)rows * dim;
    float *x = random_floats(&rng, n, 60.0, 0.0, NULL);
    float *y = lpt_floats(n);
    CHECK_OK(lp_softmax_forward(y, x, rows, dim));
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int j = 0; j < dim; j++) {
            CHECK(y[(size_t)r * dim + j] >= 0.0f);
            s += y[(size_t)r * dim + j];
        }
        CHECK_NEAR(s, 1.0, 1e-6);
    }
}

typedef struct {
    const double *r;
    double *out;
    int rows, dim, log_form;
} softmax_ctx;

static double softmax_loss(const double *x, void *vctx)
{
    softmax_ctx *c = vctx;
    size_t n = (size_t)c->rows * c->dim;
    double loss = 0.0;
    ref_softmax(c->out, x, c->rows, c->dim, c->log_form);
    for (size_t i = 0; i < n; i++)
        loss += c->r[i] * c->out[i];
    return loss;
}

static void check_softmax_backward(int log_form, int rows, int dim,
                                   double stddev, double offset,
                                   uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t n = (size_t)rows * dim;
    softmax_ctx c = {NULL, lpt_doubles(n), rows, dim, log_form};
    double *x_d, *r_d, *fd = lpt_doubles(n), *want = lpt_doubles(n);
    float *x = random_floats(&rng, n, stddev, offset, &x_d);
    float *r = random_floats(&rng, n, 1.0, 0.0, &r_d);
    float *dx = random_floats(&rng, n, 1.0, 0.0, NULL);
    float *y = lpt_floats(n);
    char what[128];
    c.r = r_d;
    lpt_fd_gradient(softmax_loss, &c, x_d, n, FD_EPS, fd);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)dx[i] + fd[i];
    CHECK_OK(softmax_fwd(log_form, y, x, rows, dim));
    CHECK_OK(softmax_bwd(log_form, dx, r, y, rows, dim));
    snprintf(what, sizeof what, "%s backward rows=%d dim=%d offset=%g",
             log_form ? "log-softmax" : "softmax", rows, dim, offset);
    CHECK_CLOSE(what, dx, want, n, BWD_TOL);
}

TEST(activation_softmax_backward_finite_differences)
{
    for (int log_form = 0; log_form < 2; log_form++) {
        check_softmax_backward(log_form, 1, 1, 1.0, 0.0, 240);
        check_softmax_backward(log_form, 3, 5, 1.0, 0.0, 241);
        check_softmax_backward(log_form, 2, 17, 2.0, 1000.0, 242);
        check_softmax_backward(log_form, 7, 3, 0.5, -50.0, 243);
        check_softmax_backward(log_form, 1, 64, 3.0, 0.0, 244);
    }
}

/* ---- threads -------------------------------------------------------------------- */

TEST(activation_results_do_not_depend_on_threads)
{
    int saved = lp_get_num_threads();
    int rows = 197, dim = 768;
    size_t n = (size_t)rows * dim;
    lpt_rng rng = lpt_rng_seed(250);
    float *x = random_floats(&rng, n, 3.0, 0.0, NULL);
    float *dy = random_floats(&rng, n, 1.0, 0.0, NULL);
    float *out[2], *grad[2];
    for (int t = 0; t < 2; t++) {
        float *y = out[t] = lpt_floats(4 * n);
        float *g = grad[t] = lpt_floats(4 * n);
        lp_set_num_threads(t + 1);
        CHECK_OK(lp_gelu_forward(y, x, n, LP_GELU_ERF));
        CHECK_OK(lp_gelu_backward(g, dy, x, n, LP_GELU_TANH));
        CHECK_OK(lp_softmax_forward(y + n, x, rows, dim));
        CHECK_OK(lp_softmax_backward(g + n, dy, y + n, rows, dim));
        CHECK_OK(lp_log_softmax_forward(y + 2 * n, x, rows, dim));
        CHECK_OK(lp_log_softmax_backward(g + 2 * n, dy, y + 2 * n, rows, dim));
        CHECK_OK(lp_sigmoid_forward(y + 3 * n, x, n));
        CHECK_OK(lp_tanh_backward(g + 3 * n, dy, y + 3 * n, n));
    }
    lp_set_num_threads(saved);
    CHECK(memcmp(out[0], out[1], 4 * n * sizeof(float)) == 0);
    CHECK(memcmp(grad[0], grad[1], 4 * n * sizeof(float)) == 0);
}

/* ---- bad input ------------------------------------------------------------------ */

TEST(activation_bad_input)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6], d[6] = {0};
    size_t huge = SIZE_MAX;
    for (int k = 0; k < ACT_COUNT; k++) {
        CHECK_OK(act_forward((act_kind)k, y, x, 6));
        CHECK_FAILS(act_forward((act_kind)k, NULL, x, 6));
        CHECK_FAILS(act_forward((act_kind)k, y, NULL, 6));
        CHECK_FAILS(act_forward((act_kind)k, y, x, 0));
        CHECK_FAILS(act_forward((act_kind)k, y, x, huge));
        CHECK_OK(act_backward((act_kind)k, d, x, x, y, 6));
        CHECK_FAILS(act_backward((act_kind)k, NULL, x, x, y, 6));
        CHECK_FAILS(act_backward((act_kind)k, d, NULL, x, y, 6));
        CHECK_FAILS(act_backward((act_kind)k, d, x, NULL, NULL, 6));
        CHECK_FAILS(act_backward((act_kind)k, d, x, x, y, 0));
        CHECK_FAILS(act_backward((act_kind)k, d, x, x, y, huge));
    }
    CHECK_FAILS(lp_gelu_forward(y, x, 6, (lp_gelu_kind)2));
    CHECK_FAILS(lp_gelu_forward(y, x, 6, (lp_gelu_kind)-1));
    CHECK_FAILS(lp_gelu_backward(d, x, x, 6, (lp_gelu_kind)2));
    for (int log_form = 0; log_form < 2; log_form++) {
        CHECK_OK(softmax_fwd(log_form, y, x, 2, 3));
        CHECK_FAILS(softmax_fwd(log_form, NULL, x, 2, 3));
        CHECK_FAILS(softmax_fwd(log_form, y, NULL, 2, 3));
        CHECK_FAILS(softmax_fwd(log_form, y, x, 0, 3));
        CHECK_FAILS(softmax_fwd(log_form, y, x, 2, 0));
        CHECK_FAILS(softmax_fwd(log_form, y, x, -2, 3));
        CHECK_FAILS(softmax_fwd(log_form, y, x, 2, -3));
        CHECK_FAILS(softmax_fwd(log_form, y, x, INT_MAX, INT_MAX));
        CHECK_OK(softmax_bwd(log_form, d, x, y, 2, 3));
        CHECK_FAILS(softmax_bwd(log_form, NULL, x, y, 2, 3));
        CHECK_FAILS(softmax_bwd(log_form, d, NULL, y, 2, 3));
        CHECK_FAILS(softmax_bwd(log_form, d, x, NULL, 2, 3));
        CHECK_FAILS(softmax_bwd(log_form, d, x, y, 0, 3));
        CHECK_FAILS(softmax_bwd(log_form, d, x, y, 2, -1));
    }
}
