/*
 * test_norm.c — BatchNorm2d (eval and train) and LayerNorm against naive
 * double references and central finite differences.
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- data -------------------------------------------------------------------- */

/* n floats N(offset, stddev²); their exact double values in *as_double. */
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

static float *random_uniform(lpt_rng *rng, size_t n, double lo, double hi,
                             double **as_double)
{
    float *f = lpt_floats(n);
    lpt_fill_uniform(rng, f, n, lo, hi);
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

/* ---- references (double, naive loops) ---------------------------------------- */

static double ref_value(const double *a, size_t i, double none)
{
    return a != NULL ? a[i] : none;
}

/* Batch statistics of x[n, c, hw]: mean and biased variance, two passes. */
static void ref_bn_stats(const double *x, int n, int c, int hw, int ch,
                         double *mean, double *var)
{
    double m = (double)n * hw, sum = 0.0, sq = 0.0;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < hw; i++)
            sum += x[((size_t)b * c + ch) * hw + i];
    *mean = sum / m;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < hw; i++) {
            double d = x[((size_t)b * c + ch) * hw + i] - *mean;
            sq += d * d;
        }
    *var = sq / m;
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel. */
static void ref_bn_apply(double *out, const double *x, const double *gamma,
                         const double *beta, const double *mean,
                         const double *var, double eps, int n, int c, int hw)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++) {
                size_t k = ((size_t)b * c + ch) * hw + i;
                out[k] = (x[k] - mean[ch]) / sqrt(var[ch] + eps) *
                             ref_value(gamma, ch, 1.0) +
                         ref_value(beta, ch, 0.0);
            }
}

/* Training BatchNorm: the statistics come from the batch itself. */
static void ref_bn_train(double *out, double *mean, double *var,
                         const double *x, const double *gamma,
                         const double *beta, double eps, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++)
        ref_bn_stats(x, n, c, hw, ch, &mean[ch], &var[ch]);
    ref_bn_apply(out, x, gamma, beta, mean, var, eps, n, c, hw);
}

static void ref_layernorm(double *out, const double *x, const double *gamma,
                          const double *beta, double eps, int rows, int dim)
{
    for (int r = 0; r < rows; r++) {
        const double *row = x + (size_t)r * dim;
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < dim; j++)
            mean += row[j];
        mean /= dim;
        for (int j = 0; j < dim; j++)
            var += (row[j] - mean) * (row[j] - mean);
        var /= dim;
        for (int j = 0; j < dim; j++)
            out[(size_t)r * dim + j] =
                (row[j] - mean) / sqrt(var + eps) * ref_value(gamma, j, 1.0) +
                ref_value(beta, j, 0.0);
    }
}

/* ---- finite differences --------------------------------------------------------- */

typedef enum { NORM_BN_EVAL, NORM_BN_TRAIN, NORM_LN } norm_kind;

/* loss = Σ r·forward(x; gamma, beta); FD perturbs x, gamma or beta in place. */
typedef struct {
    norm_kind kind;
    double *x, *gamma, *beta;          /* gamma/beta may be NULL */
    const double *mean, *var;          /* BN eval: fixed statistics */
    const double *r;                   /* projection, = dout */
    double *out, *scratch_mean, *scratch_var;
    double eps;
    int n, c, hw;                      /* BN; LN uses n = rows, hw = dim */
    size_t count;
} norm_ctx;

static double norm_loss(const double *unused, void *vctx)
{
    norm_ctx *k = vctx;
    double loss = 0.0;
    (void)unused; /* the perturbed array is one of k's */
    switch (k->kind) {
    case NORM_BN_EVAL:
        ref_bn_apply(k->out, k->x, k->gamma, k->beta, k->mean, k->var, k->eps,
                     k->n, k->c, k->hw);
        break;
    case NORM_BN_TRAIN:
        ref_bn_train(k->out, k->scratch_mean, k->scratch_var, k->x, k->gamma,
                     k->beta, k->eps, k->n, k->c, k->hw);
        break;
    case NORM_LN:
        ref_layernorm(k->out, k->x, k->gamma, k->beta, k->eps, k->n, k->hw);
        break;
    }
    for (size_t i = 0; i < k->count; i++)
        loss += k->r[i] * k->out[i];
    return loss;
}

/* want = initial + finite-difference gradient of `param` (length n) */
static double *fd_want(norm_ctx *k, double *param, size_t n,
                       const float *initial)
{
    double *fd = lpt_doubles(n), *want = lpt_doubles(n);
    lpt_fd_gradient(norm_loss, k, param, n, FD_EPS, fd);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)initial[i] + fd[i];
    return want;
}

/* The three gradients of one backward call. */
typedef struct {
    float *din, *dgamma, *dbeta;
} norm_grads;

static norm_grads random_grads(lpt_rng *rng, size_t count, size_t params)
{
    norm_grads g;
    g.din = random_floats(rng, count, 1.0, 0.0, NULL);
    g.dgamma = random_floats(rng, params, 1.0, 0.0, NULL);
    g.dbeta = random_floats(rng, params, 1.0, 0.0, NULL);
    return g;
}

/* gamma = NULL, beta = NULL behave as gamma = 1, beta = 0; the backward
 * still returns dgamma/dbeta (the gradients at that point), so the finite
 * differences use explicit ones and zeros. */
static void use_identity_affine(norm_ctx *k, int params)
{
    k->gamma = lpt_doubles((size_t)params);
    k->beta = lpt_doubles((size_t)params);
    for (int i = 0; i < params; i++)
        k->gamma[i] = 1.0;
}

/* Compare the accumulated gradients g (started from `init`) with finite
 * differences of the reference. */
static void check_grads(norm_ctx *k, const norm_grads *init,
                        const norm_grads *g, size_t params, const char *label)
{
    char what[160];
    double *want = fd_want(k, k->x, k->count, init->din);
    snprintf(what, sizeof what, "%s din", label);
    CHECK_CLOSE(what, g->din, want, k->count, BWD_TOL);
    want = fd_want(k, k->gamma, params, init->dgamma);
    snprintf(what, sizeof what, "%s dgamma", label);
    CHECK_CLOSE(what, g->dgamma, want, params, BWD_TOL);
    want = fd_want(k, k->beta, params, init->dbeta);
    snprintf(what, sizeof what, "%s dbeta", label);
    CHECK_CLOSE(what, g->dbeta, want, params, BWD_TOL);
}

/* ---- BatchNorm2d, inference ---------------------------------------------------- */

static const int bn_ns[] = {1, 3};
static const int bn_cs[] = {1, 3, 17, 64};
static const int bn_hws[] = {1, 7, 49};

TEST(norm_batchnorm_eval_forward)
{
    lpt_rng rng = lpt_rng_seed(101);
    char what[128];
    for (int ni = 0; ni < 2; ni++)
        for (int ci = 0; ci < 4; ci++)
            for (int hi = 0; hi < 3; hi++)
                for (int affine = 0; affine < 2; affine++) {
                    int n = bn_ns[ni], c = bn_cs[ci], hw = bn_hws[hi];
                    size_t count = (size_t)n * c * hw;
                    double *x_d, *g_d, *b_d, *m_d, *v_d;
                    float *x = random_floats(&rng, count, 2.0, 0.5, &x_d);
                    float *g = random_floats(&rng, c, 1.0, 0.0, &g_d);
                    float *b = random_floats(&rng, c, 1.0, 0.0, &b_d);
                    float *m = random_floats(&rng, c, 1.0, 0.0, &m_d);
                    float *v = random_uniform(&rng, c, 0.1, 3.0, &v_d);
                    double *want = lpt_doubles(count);
                    float *out = lpt_floats(count);
                    ref_bn_apply(want, x_d, affine ? g_d : NULL,
                                 affine ? b_d : NULL, m_d, v_d, 1e-5, n, c,
                                 hw);
                    CHECK_OK(lp_batchnorm2d_forward_eval(
                        out, x, affine ? g : NULL, affine ? b : NULL, m, v,
                        1e-5f, n, c, hw));
                    snprintf(what, sizeof what,
                             "bn eval n=%d c=%d hw=%d affine=%d", n, c, hw,
                             affine);
                    CHECK_CLOSE(what, out, want, count, FWD_TOL);
                    /* in place gives the same bits */
                    CHECK_OK(lp_batchnorm2d_forward_eval(
                        x, x, affine ? g : NULL, affine ? b : NULL, m, v,
                        1e-5f, n, c, hw));
                    CHECK(memcmp(x, out, count * sizeof(float)) == 0);
                }
}

/* Running statistics of a feature map with mean 1000 and std 0.01: the
 * normalisation must not lose the digits that x - mean keeps. */
TEST(norm_batchnorm_eval_forward_large_mean)
{
    lpt_rng rng = lpt_rng_seed(102);
    int n = 3, c = 5, hw = 49;
    size_t count = (size_t)n * c * hw;
    double *x_d, *g_d, *b_d, *m_d, *want = lpt_doubles(count);
    float *x = random_floats(&rng, count, 1e-2, 1000.0, &x_d);
    float *g = random_floats(&rng, c, 1.0, 0.0, &g_d);
    float *b = random_floats(&rng, c, 1.0, 0.0, &b_d);
    float *m = random_floats(&rng, c, 1e-3, 1000.0, &m_d);
    float v[5] = {1e-4f, 2e-4f, 5e-5f, 1e-4f, 3e-4f};
    double v_d[5];
    float *out = lpt_floats(count);
    lpt_to_double(v_d, v, 5);
    ref_bn_apply(want, x_d, g_d, b_d, m_d, v_d, 1e-5, n, c, hw);
    CHECK_OK(lp_batchnorm2d_forward_eval(out, x, g, b, m, v, 1e-5f, n, c, hw));
    CHECK_CLOSE("bn eval, x ~ 1000 + N(0, 1e-4)", out, want, count, FWD_TOL);
}

/* Runs one backward with all gradients, then with each gradient alone into
 * zeroed buffers: skipping the others must not change a single bit. */
typedef int (*norm_backward_fn)(const void *args, norm_grads *g);

static void check_null_skipping(norm_backward_fn fn, const void *args,
                                size_t count, size_t params,
                                const char *label)
{
    norm_grads one = {lpt_floats(count), NULL, NULL};
    norm_grads zero_all = {lpt_floats(count), lpt_floats(params),
                           lpt_floats(params)};
    CHECK_OK(fn(args, &zero_all));
    CHECK_OK(fn(args, &one));
    CHECK_MSG(memcmp(one.din, zero_all.din, count * sizeof(float)) == 0,
              "%s: din alone differs", label);
    one.din = NULL;
    one.dgamma = lpt_floats(params);
    CHECK_OK(fn(args, &one));
    CHECK_MSG(memcmp(one.dgamma, zero_all.dgamma, params * sizeof(float)) == 0,
              "%s: dgamma alone differs", label);
    one.dgamma = NULL;
    one.dbeta = lpt_floats(params);
    CHECK_OK(fn(args, &one));
    CHECK_MSG(memcmp(one.dbeta, zero_all.dbeta, params * sizeof(float)) == 0,
              "%s: dbeta alone differs", label);
    one.dbeta = NULL;
    CHECK_OK(fn(args, &one)); /* nothing wanted: a no-op */
}

typedef struct {
    const float *dout, *x, *gamma, *mean, *var, *save_mean, *save_rstd;
    float eps;
    int n, c, hw;
} bn_args;

static int bn_eval_backward_call(const void *vargs, norm_grads *g)
{
    const bn_args *a = vargs;
    return lp_batchnorm2d_backward_eval(g->din, g->dgamma, g->dbeta, a->dout,
                                        a->x, a->gamma, a->mean, a->var,
                                        a->eps, a->n, a->c, a->hw);
}

static int bn_train_backward_call(const void *vargs, norm_grads *g)
{
    const bn_args *a = vargs;
    return lp_batchnorm2d_backward_train(g->din, g->dgamma, g->dbeta, a->dout,
                                         a->x, a->gamma, a->save_mean,
                                         a->save_rstd, a->n, a->c, a->hw);
}

static void check_bn_eval_backward(int n, int c, int hw, int affine,
                                   uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t count = (size_t)n * c * hw;
    norm_ctx k = {0};
    double *m_d, *v_d, *r_d;
    float *x = random_floats(&rng, count, 1.5, 0.3, &k.x);
    float *g = random_floats(&rng, c, 1.0, 0.2, &k.gamma);
    float *m = random_floats(&rng, c, 0.5, 0.0, &m_d);
    float *v = random_uniform(&rng, c, 0.2, 2.0, &v_d);
    float *r = random_floats(&rng, count, 1.0, 0.0, &r_d);
    char label[96];
    random_floats(&rng, c, 1.0, 0.0, &k.beta);
    k.kind = NORM_BN_EVAL;
    if (!affine)
        use_identity_affine(&k, c);
    k.mean = m_d;
    k.var = v_d;
    k.r = r_d;
    k.out = lpt_doubles(count);
    k.eps = 1e-5;
    k.n = n;
    k.c = c;
    k.hw = hw;
    k.count = count;

    norm_grads init = random_grads(&rng, count, (size_t)c);
    norm_grads got = {copy_floats(init.din, count),
                      copy_floats(init.dgamma, (size_t)c),
                      copy_floats(init.dbeta, (size_t)c)};
    bn_args args = {r, x, affine ? g : NULL, m, v, NULL, NULL, 1e-5f,
                    n, c, hw};
    CHECK_OK(bn_eval_backward_call(&args, &got));
    snprintf(label, sizeof label, "bn eval backward n=%d c=%d hw=%d affine=%d",
             n, c, hw, affine);
    check_grads(&k, &init, &got, (size_t)c, label);
    check_null_skipping(bn_eval_backward_call, &args, count, (size_t)c,
                        label);
}

TEST(norm_batchnorm_eval_backward_finite_differences)
{
    for (int affine = 0; affine < 2; affine++) {
        check_bn_eval_backward(1, 1, 1, affine, 110);
        check_bn_eval_backward(2, 3, 5, affine, 111);
        check_bn_eval_backward(3, 2, 7, affine, 112);
        check_bn_eval_backward(1, 17, 1, affine, 113);
    }
}

/* ---- BatchNorm2d, training ----------------------------------------------------- */

static void check_bn_train_forward(lpt_rng *rng, int n, int c, int hw,
                                   int affine, double stddev, double offset)
{
    size_t count = (size_t)n * c * hw;
    double *x_d, *g_d, *b_d;
    float *x = random_floats(rng, count, stddev, offset, &x_d);
    float *g = random_floats(rng, c, 1.0, 0.0, &g_d);
    float *b = random_floats(rng, c, 1.0, 0.0, &b_d);
    double *want = lpt_doubles(count), *mean = lpt_doubles(c);
    double *var = lpt_doubles(c), *rstd = lpt_doubles(c);
    float *out = lpt_floats(count), *save_mean = lpt_floats(c);
    float *save_rstd = lpt_floats(c);
    char what[160];
    ref_bn_train(want, mean, var, x_d, affine ? g_d : NULL,
                 affine ? b_d : NULL, 1e-5, n, c, hw);
    for (int ch = 0; ch < c; ch++)
        rstd[ch] = 1.0 / sqrt(var[ch] + 1e-5);
    CHECK_OK(lp_batchnorm2d_forward_train(out, save_mean, save_rstd, x,
                                          affine ? g : NULL,
                                          affine ? b : NULL, 1e-5f, 0.1f,
                                          NULL, NULL, n, c, hw));
    snprintf(what, sizeof what, "bn train n=%d c=%d hw=%d affine=%d x~%g+N(0,%g)",
             n, c, hw, affine, offset, stddev);
    CHECK_CLOSE(what, out, want, count, FWD_TOL);
    CHECK_CLOSE("bn train save_mean", save_mean, mean, (size_t)c, FWD_TOL);
    CHECK_CLOSE("bn train save_rstd", save_rstd, rstd, (size_t)c, FWD_TOL);
    /* in place gives the same bits */
    CHECK_OK(lp_batchnorm2d_forward_train(x, save_mean, save_rstd, x,
                                          affine ? g : NULL,
                                          affine ? b : NULL, 1e-5f, 0.1f,
                                          NULL, NULL, n, c, hw));
    CHECK(memcmp(x, out, count * sizeof(float)) == 0);
}

TEST(norm_batchnorm_train_forward)
{
    lpt_rng rng = lpt_rng_seed(120);
    for (int ni = 0; ni < 2; ni++)
        for (int ci = 0; ci < 4; ci++)
            for (int hi = 0; hi < 3; hi++) {
                int n = bn_ns[ni], c = bn_cs[ci], hw = bn_hws[hi];
                if (n * hw < 2)
                    continue; /* rejected, see norm_bad_input */
                for (int affine = 0; affine < 2; affine++)
                    check_bn_train_forward(&rng, n, c, hw, affine, 2.0, 0.5);
            }
    /* mean 1000, std 0.01: the statistics must be computed accurately */
    check_bn_train_forward(&rng, 3, 5, 49, 1, 1e-2, 1000.0);
    check_bn_train_forward(&rng, 1, 3, 7, 0, 1e-2, -1000.0);
    check_bn_train_forward(&rng, 3, 2, 1, 1, 1e-2, 1000.0);
}

TEST(norm_batchnorm_train_running_stats)
{
    lpt_rng rng = lpt_rng_seed(121);
    int n = 3, c = 4, hw = 7, m = n * hw;
    size_t count = (size_t)n * c * hw;
    double *x_d, *want_out = lpt_doubles(count);
    double mean[4], var[4];
    float *x = random_floats(&rng, count, 2.0, 1.0, &x_d);
    float rm0[4] = {0.5f, -1.0f, 0.0f, 2.0f}, rv0[4] = {1.0f, 0.5f, 2.0f, 1.5f};
    float rm[4], rv[4], save_mean[4], save_rstd[4];
    float *out = lpt_floats(count), *out2 = lpt_floats(count);
    ref_bn_train(want_out, mean, var, x_d, NULL, NULL, 1e-5, n, c, hw);

    memcpy(rm, rm0, sizeof rm);
    memcpy(rv, rv0, sizeof rv);
    CHECK_OK(lp_batchnorm2d_forward_train(out, save_mean, save_rstd, x, NULL,
                                          NULL, 1e-5f, 0.1f, rm, rv, n, c,
                                          hw));
    for (int ch = 0; ch < c; ch++) {
        /* PyTorch: momentum 0.1, unbiased variance for running_var */
        double want_m = 0.9 * rm0[ch] + 0.1 * mean[ch];
        double want_v = 0.9 * rv0[ch] + 0.1 * var[ch] * m / (m - 1);
        CHECK_NEAR(rm[ch], want_m, 1e-6 * (1.0 + fabs(want_m)));
        CHECK_NEAR(rv[ch], want_v, 1e-6 * (1.0 + fabs(want_v)));
    }
    CHECK_CLOSE("bn train out with running stats", out, want_out, count,
                FWD_TOL);

    /* NULL running pointers: no update, same output; each independently */
    memcpy(rm, rm0, sizeof rm);
    memcpy(rv, rv0, sizeof rv);
    CHECK_OK(lp_batchnorm2d_forward_train(out2, save_mean, save_rstd, x, NULL,
                                          NULL, 1e-5f, 0.1f, NULL, rv, n, c,
                                          hw));
    CHECK(memcmp(out, out2, count * sizeof(float)) == 0);
    CHECK(memcmp(rm, rm0, sizeof rm) == 0);
    CHECK(memcmp(rv, rv0, sizeof rv) != 0);
    memcpy(rv, rv0, sizeof rv);
    CHECK_OK(lp_batchnorm2d_forward_train(out2, save_mean, save_rstd, x, NULL,
                                          NULL, 1e-5f, 0.1f, rm, NULL, n, c,
                                          hw));
    CHECK(memcmp(rv, rv0, sizeof rv) == 0);
    CHECK(memcmp(rm, rm0, sizeof rm) != 0);

    /* momentum 0 keeps the running values, momentum 1 replaces them */
    memcpy(rm, rm0, sizeof rm);
    memcpy(rv, rv0, sizeof rv);
    CHECK_OK(lp_batchnorm2d_forward_train(out2, save_mean, save_rstd, x, NULL,
                                          NULL, 1e-5f, 0.0f, rm, rv, n, c,
                                          hw));
    CHECK(memcmp(rm, rm0, sizeof rm) == 0 && memcmp(rv, rv0, sizeof rv) == 0);
    CHECK_OK(lp_batchnorm2d_forward_train(out2, save_mean, save_rstd, x, NULL,
                                          NULL, 1e-5f, 1.0f, rm, rv, n, c,
                                          hw));
    for (int ch = 0; ch < c; ch++) {
        CHECK_NEAR(rm[ch], mean[ch], 1e-6 * (1.0 + fabs(mean[ch])));
        CHECK_NEAR(rv[ch], var[ch] * m / (m - 1), 1e-6 * (1.0 + var[ch]));
    }
}

static void check_bn_train_backward(int n, int c, int hw, int affine,
                                    double stddev, double offset,
                                    uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t count = (size_t)n * c * hw;
    norm_ctx k = {0};
    double *r_d;
    float *x = random_floats(&rng, count, stddev, offset, &k.x);
    float *g = random_floats(&rng, c, 1.0, 0.2, &k.gamma);
    float *b = random_floats(&rng, c, 1.0, 0.0, &k.beta);
    float *r = random_floats(&rng, count, 1.0, 0.0, &r_d);
    float *out = lpt_floats(count), *save_mean = lpt_floats(c);
    float *save_rstd = lpt_floats(c);
    char label[160];
    k.kind = NORM_BN_TRAIN;
    if (!affine)
        use_identity_affine(&k, c);
    k.r = r_d;
    k.out = lpt_doubles(count);
    k.scratch_mean = lpt_doubles(c);
    k.scratch_var = lpt_doubles(c);
    k.eps = 1e-5;
    k.n = n;
    k.c = c;
    k.hw = hw;
    k.count = count;
    CHECK_OK(lp_batchnorm2d_forward_train(out, save_mean, save_rstd, x,
                                          affine ? g : NULL,
                                          affine ? b : NULL, 1e-5f, 0.1f,
                                          NULL, NULL, n, c, hw));

    norm_grads init = random_grads(&rng, count, (size_t)c);
    norm_grads got = {copy_floats(init.din, count),
                      copy_floats(init.dgamma, (size_t)c),
                      copy_floats(init.dbeta, (size_t)c)};
    bn_args args = {r, x, affine ? g : NULL, NULL, NULL, save_mean, save_rstd,
                    1e-5f, n, c, hw};
    CHECK_OK(bn_train_backward_call(&args, &got));
    snprintf(label, sizeof label,
             "bn train backward n=%d c=%d hw=%d affine=%d x~%g+N(0,%g)", n, c,
             hw, affine, offset, stddev);
    check_grads(&k, &init, &got, (size_t)c, label);
    check_null_skipping(bn_train_backward_call, &args, count,
                        (size_t)c, label);
}

TEST(norm_batchnorm_train_backward_finite_differences)
{
    for (int affine = 0; affine < 2; affine++) {
        check_bn_train_backward(1, 1, 2, affine, 1.0, 0.0, 130);
        check_bn_train_backward(2, 3, 5, affine, 1.5, 0.3, 131);
        check_bn_train_backward(3, 2, 7, affine, 1.0, -0.5, 132);
        check_bn_train_backward(3, 4, 1, affine, 2.0, 0.0, 133);
        check_bn_train_backward(1, 3, 17, affine, 1.0, 0.0, 134);
    }
    /* the float save_mean of such data is off by ~0.3% of the std */
    check_bn_train_backward(2, 3, 7, 1, 1e-2, 1000.0, 135);
    check_bn_train_backward(3, 2, 5, 0, 1e-2, -1000.0, 136);
}

/* ---- LayerNorm ------------------------------------------------------------------ */

static void check_layernorm_forward(lpt_rng *rng, int rows, int dim,
                                    float eps, int affine, double stddev,
                                    double offset)
{
    size_t count = (size_t)rows * dim;
    double *x_d, *g_d, *b_d, *want = lpt_doubles(count);
    double *mean = lpt_doubles(rows), *rstd = lpt_doubles(rows);
    float *x = random_floats(rng, count, stddev, offset, &x_d);
    float *g = random_floats(rng, dim, 1.0, 1.0, &g_d);
    float *b = random_floats(rng, dim, 1.0, 0.0, &b_d);
    float *out = lpt_floats(count), *out2 = lpt_floats(count);
    float *save_mean = lpt_floats(rows), *save_rstd = lpt_floats(rows);
    char what[160];
    ref_layernorm(want, x_d, affine ? g_d : NULL, affine ? b_d : NULL, eps,
                  rows, dim);
    for (int r = 0; r < rows; r++) {
        double s = 0.0, q = 0.0;
        for (int j = 0; j < dim; j++)
            s += x_d[(size_t)r * dim + j];
        mean[r] = s / dim;
        for (int j = 0; j < dim; j++) {
            double d = x_d[(size_t)r * dim + j] - mean[r];
            q += d * d;
        }
        rstd[r] = 1.0 / sqrt(q / dim + eps);
    }
    CHECK_OK(lp_layernorm_forward(out, save_mean, save_rstd, x,
                                  affine ? g : NULL, affine ? b : NULL, eps,
                                  rows, dim));
    snprintf(what, sizeof what,
             "layernorm rows=%d dim=%d eps=%g affine=%d x~%g+N(0,%g)", rows,
             dim, (double)eps, affine, offset, stddev);
    CHECK_CLOSE(what, out, want, count, FWD_TOL);
    CHECK_CLOSE("layernorm save_mean", save_mean, mean, (size_t)rows, FWD_TOL);
    CHECK_CLOSE("layernorm save_rstd", save_rstd, rstd, (size_t)rows, FWD_TOL);
    /* without saved statistics, and in place: the same bits */
    CHECK_OK(lp_layernorm_forward(out2, NULL, NULL, x, affine ? g : NULL,
                                  affine ? b : NULL, eps, rows, dim));
    CHECK(memcmp(out, out2, count * sizeof(float)) == 0);
    CHECK_OK(lp_layernorm_forward(x, NULL, save_rstd, x, affine ? g : NULL,
                                  affine ? b : NULL, eps, rows, dim));
    CHECK(memcmp(out, x, count * sizeof(float)) == 0);
}

TEST(norm_layernorm_forward)
{
    static const int rows_list[] = {1, 3, 7, 17, 33};
    static const int dims[] = {1, 5, 17, 64, 768};
    static const float epss[] = {1e-5f, 1e-6f, 1e-12f};
    lpt_rng rng = lpt_rng_seed(140);
    for (int ri = 0; ri < 5; ri++)
        for (int di = 0; di < 5; di++)
            for (int ei = 0; ei < 3; ei++)
                check_layernorm_forward(&rng, rows_list[ri], dims[di],
                                        epss[ei], (ri + di + ei) % 2, 2.0,
                                        0.5);
    /* large eps (affects the result visibly) and both affine settings */
    check_layernorm_forward(&rng, 7, 17, 0.5f, 1, 1.0, 0.0);
    check_layernorm_forward(&rng, 7, 17, 0.5f, 0, 1.0, 0.0);
    /* mean 1000, std 0.01: the statistics must be computed accurately */
    check_layernorm_forward(&rng, 17, 768, 1e-6f, 1, 1e-2, 1000.0);
    check_layernorm_forward(&rng, 3, 64, 1e-12f, 0, 1e-2, -1000.0);
    check_layernorm_forward(&rng, 5, 5, 1e-5f, 1, 1e-2, 1000.0);
}

typedef struct {
    const float *dout, *x, *gamma, *save_mean, *save_rstd;
    float eps;
    int rows, dim;
} ln_args;

static int ln_backward_call(const void *vargs, norm_grads *g)
{
    const ln_args *a = vargs;
    return lp_layernorm_backward(g->din, g->dgamma, g->dbeta, a->dout, a->x,
                                 a->gamma, a->save_mean, a->save_rstd, a->eps,
                                 a->rows, a->dim);
}

/* saved: 0 = no saved statistics, 1 = save_mean and save_rstd,
 * 2 = save_mean only, 3 = save_rstd only */
static void check_layernorm_backward(int rows, int dim, int affine, int saved,
                                     float eps, double stddev, double offset,
                                     uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t count = (size_t)rows * dim;
    norm_ctx k = {0};
    double *r_d;
    float *x = random_floats(&rng, count, stddev, offset, &k.x);
    float *g = random_floats(&rng, dim, 1.0, 0.5, &k.gamma);
    float *b = random_floats(&rng, dim, 1.0, 0.0, &k.beta);
    float *r = random_floats(&rng, count, 1.0, 0.0, &r_d);
    float *out = lpt_floats(count), *save_mean = lpt_floats(rows);
    float *save_rstd = lpt_floats(rows);
    char label[160];
    k.kind = NORM_LN;
    if (!affine)
        use_identity_affine(&k, dim);
    k.r = r_d;
    k.out = lpt_doubles(count);
    k.eps = eps;
    k.n = rows;
    k.hw = dim;
    k.count = count;
    CHECK_OK(lp_layernorm_forward(out, save_mean, save_rstd, x,
                                  affine ? g : NULL, affine ? b : NULL, eps,
                                  rows, dim));

    norm_grads init = random_grads(&rng, count, (size_t)dim);
    norm_grads got = {copy_floats(init.din, count),
                      copy_floats(init.dgamma, (size_t)dim),
                      copy_floats(init.dbeta, (size_t)dim)};
    ln_args args = {r, x, affine ? g : NULL,
                    saved == 1 || saved == 2 ? save_mean : NULL,
                    saved == 1 || saved == 3 ? save_rstd : NULL, eps, rows,
                    dim};
    CHECK_OK(ln_backward_call(&args, &got));
    snprintf(label, sizeof label,
             "layernorm backward rows=%d dim=%d affine=%d saved=%d "
             "x~%g+N(0,%g)",
             rows, dim, affine, saved, offset, stddev);
    check_grads(&k, &init, &got, (size_t)dim, label);
    check_null_skipping(ln_backward_call, &args, count, (size_t)dim,
                        label);
}

TEST(norm_layernorm_backward_finite_differences)
{
    for (int affine = 0; affine < 2; affine++)
        for (int saved = 0; saved < 4; saved++) {
            check_layernorm_backward(1, 1, affine, saved, 1e-5f, 1.0, 0.0,
                                     150);
            check_layernorm_backward(3, 5, affine, saved, 1e-5f, 1.0, 0.3,
                                     151);
            check_layernorm_backward(2, 17, affine, saved, 1e-6f, 2.0, -1.0,
                                     152);
        }
    check_layernorm_backward(7, 64, 1, 1, 1e-6f, 1.0, 0.0, 153);
    check_layernorm_backward(3, 130, 1, 0, 1e-6f, 1.0, 0.0, 154);
    check_layernorm_backward(4, 9, 1, 1, 0.5f, 1.0, 0.0, 155);
    /* the float save_mean of such data is off by ~0.3% of the std */
    check_layernorm_backward(3, 33, 1, 1, 1e-6f, 1e-2, 1000.0, 156);
    check_layernorm_backward(3, 33, 1, 0, 1e-6f, 1e-2, 1000.0, 157);
    check_layernorm_backward(2, 17, 0, 2, 1e-6f, 1e-2, -1000.0, 158);
}

/* ---- determinism ---------------------------------------------------------------- */

/* Every output of one configuration, concatenated. */
typedef struct {
    float *data;
    size_t len;
} run_outputs;

static run_outputs norm_run_all(int threads)
{
    /* big enough to take the parallel paths */
    enum { N = 4, C = 24, HW = 400, ROWS = 64, DIM = 768 };
    size_t bn = (size_t)N * C * HW, ln = (size_t)ROWS * DIM;
    lpt_rng rng = lpt_rng_seed(160);
    float *x = random_floats(&rng, bn, 1.0, 0.5, NULL);
    float *dy = random_floats(&rng, bn, 1.0, 0.0, NULL);
    float *g = random_floats(&rng, C, 1.0, 1.0, NULL);
    float *b = random_floats(&rng, C, 1.0, 0.0, NULL);
    float *v = random_uniform(&rng, C, 0.5, 2.0, NULL);
    float *lx = random_floats(&rng, ln, 1.0, 0.5, NULL);
    float *ldy = random_floats(&rng, ln, 1.0, 0.0, NULL);
    float *lg = random_floats(&rng, DIM, 1.0, 1.0, NULL);
    float *lb = random_floats(&rng, DIM, 1.0, 0.0, NULL);
    run_outputs o;
    o.len = 4 * bn + 8 * C + 2 * ln + 4 * DIM + 2 * ROWS;
    o.data = lpt_floats(o.len);
    float *p = o.data;
    float *rm = p, *rv = p + C, *sm = p + 2 * C, *sr = p + 3 * C;
    p += 4 * C;
    lp_set_num_threads(threads);
    CHECK_OK(lp_batchnorm2d_forward_train(p, sm, sr, x, g, b, 1e-5f, 0.1f, rm,
                                          rv, N, C, HW));
    p += bn;
    CHECK_OK(lp_batchnorm2d_backward_train(p, p + bn, p + bn + C, dy, x, g,
                                           sm, sr, N, C, HW));
    p += bn + 2 * C;
    CHECK_OK(lp_batchnorm2d_forward_eval(p, x, g, b, sm, v, 1e-5f, N, C, HW));
    p += bn;
    CHECK_OK(lp_batchnorm2d_backward_eval(p, p + bn, p + bn + C, dy, x, g,
                                          sm, v, 1e-5f, N, C, HW));
    p += bn + 2 * C;
    float *lsm = p, *lsr = p + ROWS;
    p += 2 * ROWS;
    CHECK_OK(lp_layernorm_forward(p, lsm, lsr, lx, lg, lb, 1e-6f, ROWS, DIM));
    p += ln;
    CHECK_OK(lp_layernorm_backward(p, p + ln, p + ln + DIM, ldy, lx, lg, NULL,
                                   NULL, 1e-6f, ROWS, DIM));
    p += ln + 2 * DIM;
    CHECK_OK(lp_layernorm_backward(NULL, p, p + DIM, ldy, lx, lg, lsm, lsr,
                                   1e-6f, ROWS, DIM));
    p += 2 * DIM;
    CHECK(p == o.data + o.len);
    return o;
}

TEST(norm_results_do_not_depend_on_threads)
{
    int saved = lp_get_num_threads();
    run_outputs one = norm_run_all(1);
    for (int t = 2; t <= 3; t++) {
        run_outputs many = norm_run_all(t);
        CHECK_MSG(memcmp(one.data, many.data, one.len * sizeof(float)) == 0,
                  "norm outputs with %d threads differ from 1 thread", t);
    }
    lp_set_num_threads(saved);
}

/* ---- bad input ---------------------------------------------------------------- */

TEST(norm_bad_input)
{
    float x[24] = {0}, y[24], g[4] = {1, 1, 1, 1}, b[4] = {0};
    float m[4] = {0}, v[4] = {1, 1, 1, 1}, sm[4], sr[4] = {1, 1, 1, 1};
    float d[24] = {0}, dg[4] = {0}, db[4] = {0}, rm[4] = {0};
    float rv[4] = {1, 1, 1, 1};
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;

    /* BatchNorm eval: [2, 3, 4] */
    CHECK_OK(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, 2, 3, 4));
    CHECK_OK(lp_batchnorm2d_forward_eval(y, x, NULL, NULL, m, v, 0.0f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(NULL, x, g, b, m, v, 1e-5f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, NULL, g, b, m, v, 1e-5f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, NULL, v, 1e-5f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, NULL, 1e-5f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, 0, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, 2, 0, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, 2, 3, 0));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, -2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, 2, 3, -4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, -1e-5f, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, NAN, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, INFINITY, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_eval(y, x, g, b, m, v, 1e-5f, INT_MAX,
                                            INT_MAX, INT_MAX));
    CHECK_OK(lp_batchnorm2d_backward_eval(d, dg, db, y, x, g, m, v, 1e-5f, 2, 3, 4));
    CHECK_OK(lp_batchnorm2d_backward_eval(d, NULL, db, y, NULL, g, m, v, 1e-5f,
                                          2, 3, 4)); /* in only for dgamma */
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, y, NULL, g, m, v, 1e-5f,
                                             2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, NULL, x, g, m, v, 1e-5f,
                                             2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, y, x, g, NULL, v, 1e-5f,
                                             2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, y, x, g, m, NULL, 1e-5f,
                                             2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, y, x, g, m, v, 1e-5f,
                                             2, 0, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_eval(d, dg, db, y, x, g, m, v, -1.0f,
                                             2, 3, 4));

    /* BatchNorm train */
    CHECK_OK(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, 0.1f, rm,
                                          rv, 2, 3, 4));
    CHECK_OK(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, 0.1f, rm,
                                          rv, 2, 3, 1)); /* n*hw = 2 */
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, 0.1f,
                                             rm, rv, 1, 3, 1)); /* n*hw = 1 */
    CHECK_FAILS(lp_batchnorm2d_forward_train(NULL, sm, sr, x, g, b, 1e-5f,
                                             0.1f, rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, NULL, sr, x, g, b, 1e-5f,
                                             0.1f, rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, NULL, x, g, b, 1e-5f,
                                             0.1f, rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, NULL, g, b, 1e-5f,
                                             0.1f, rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f,
                                             -0.1f, rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, 1.5f,
                                             rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, NAN,
                                             rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, -1e-5f, 0.1f,
                                             rm, rv, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_forward_train(y, sm, sr, x, g, b, 1e-5f, 0.1f,
                                             rm, rv, 2, -3, 4));
    CHECK_OK(lp_batchnorm2d_backward_train(d, dg, db, y, x, g, sm, sr, 2, 3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, NULL, x, g, sm, sr, 2,
                                              3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, y, NULL, g, sm, sr, 2,
                                              3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, y, x, g, NULL, sr, 2,
                                              3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, y, x, g, sm, NULL, 2,
                                              3, 4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, y, x, g, sm, sr, 0, 3,
                                              4));
    CHECK_FAILS(lp_batchnorm2d_backward_train(d, dg, db, y, x, g, sm, sr, 2, 3,
                                              INT_MIN));

    /* LayerNorm: [4, 6] */
    CHECK_OK(lp_layernorm_forward(y, NULL, NULL, x, NULL, NULL, 0.0f, 4, 6));
    CHECK_FAILS(lp_layernorm_forward(NULL, sm, sr, x, NULL, NULL, 1e-5f, 4, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, NULL, NULL, NULL, 1e-5f, 4, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, 1e-5f, 0, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, 1e-5f, 4, 0));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, 1e-5f, -4, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, -1.0f, 4, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, NAN, 4, 6));
    CHECK_FAILS(lp_layernorm_forward(y, sm, sr, x, NULL, NULL, 1e-5f, INT_MAX,
                                     INT_MAX));
    CHECK_OK(lp_layernorm_backward(d, NULL, NULL, y, x, NULL, NULL, NULL,
                                   1e-5f, 4, 6));
    CHECK_FAILS(lp_layernorm_backward(d, NULL, NULL, NULL, x, NULL, NULL, NULL,
                                      1e-5f, 4, 6));
    CHECK_FAILS(lp_layernorm_backward(d, NULL, NULL, y, NULL, NULL, NULL, NULL,
                                      1e-5f, 4, 6));
    CHECK_FAILS(lp_layernorm_backward(d, NULL, NULL, y, x, NULL, NULL, NULL,
                                      1e-5f, 4, -6));
    CHECK_FAILS(lp_layernorm_backward(d, NULL, NULL, y, x, NULL, NULL, NULL,
                                      -1e-5f, 4, 6));
}
