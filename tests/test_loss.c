/*
 * test_loss.c — lp_cross_entropy_* and lp_mse_* against double references
 * and central finite differences.
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- references ---------------------------------------------------------- */

/* log(sum exp(x)) with the max subtracted (the reference must not overflow
 * either: the tests use logits around 1000). */
static double ref_log_sum_exp(const double *x, int n)
{
    double max = x[0], sum = 0.0;
    for (int j = 1; j < n; j++)
        if (x[j] > max)
            max = x[j];
    for (int j = 0; j < n; j++)
        sum += exp(x[j] - max);
    return max + log(sum);
}

static double ref_cross_entropy(const double *logits, const int32_t *targets,
                                int rows, int classes)
{
    double total = 0.0;
    for (int r = 0; r < rows; r++) {
        const double *row = logits + (size_t)r * classes;
        total += ref_log_sum_exp(row, classes) - row[targets[r]];
    }
    return total / rows;
}

static double ref_mse(const double *pred, const double *target, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += (pred[i] - target[i]) * (pred[i] - target[i]);
    return total / (double)n;
}

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

static int32_t *random_targets(lpt_rng *rng, int rows, int classes)
{
    int32_t *t = (int32_t *)lpt_floats((size_t)rows); /* same size as float */
    for (int r = 0; r < rows; r++)
        t[r] = (int32_t)(lpt_rng_u64(rng) % (uint64_t)classes);
    return t;
}

/* ---- cross-entropy ------------------------------------------------------- */

TEST(loss_cross_entropy_forward)
{
    static const int rows_list[] = {1, 3, 7, 17};
    static const int classes_list[] = {1, 5, 17, 100, 1000};
    /* offset 1000: exp(logit) overflows even in double without the
     * max subtraction */
    static const double offsets[] = {0.0, -30.0, 1000.0};
    lpt_rng rng = lpt_rng_seed(5);
    char what[96];
    for (int ri = 0; ri < 4; ri++)
        for (int ci = 0; ci < 5; ci++)
            for (int oi = 0; oi < 3; oi++) {
                int rows = rows_list[ri], classes = classes_list[ci];
                size_t n = (size_t)rows * classes;
                double *x_d;
                float *x = random_floats(&rng, n, 4.0, offsets[oi], &x_d);
                int32_t *t = random_targets(&rng, rows, classes);
                double want = ref_cross_entropy(x_d, t, rows, classes);
                float got = NAN;
                CHECK_OK(lp_cross_entropy_forward(&got, x, t, rows, classes));
                snprintf(what, sizeof what,
                         "cross-entropy rows=%d classes=%d offset=%g", rows,
                         classes, offsets[oi]);
                CHECK_CLOSE(what, &got, &want, 1, FWD_TOL);
            }
}

typedef struct {
    double *logits;
    const int32_t *targets;
    double dloss;
    int rows, classes;
} ce_ctx;

static double ce_loss(const double *x, void *vctx)
{
    ce_ctx *c = vctx;
    (void)x; /* x is c->logits */
    return c->dloss * ref_cross_entropy(c->logits, c->targets, c->rows,
                                        c->classes);
}

static void check_cross_entropy_backward(int rows, int classes, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t n = (size_t)rows * classes;
    ce_ctx c = {0};
    float *x = random_floats(&rng, n, 2.0, 0.0, &c.logits);
    double *fd = lpt_doubles(n), *want = lpt_doubles(n);
    float *dx = random_floats(&rng, n, 1.0, 0.0, NULL);
    char what[96];
    c.targets = random_targets(&rng, rows, classes);
    c.dloss = 0.7;
    c.rows = rows;
    c.classes = classes;
    lpt_fd_gradient(ce_loss, &c, c.logits, n, FD_EPS, fd);
    for (size_t i = 0; i < n; i++)
        want[i] = dx[i] + fd[i]; /* accumulates onto the initial values */
    CHECK_OK(lp_cross_entropy_backward(dx, 0.7f, x, c.targets, rows,
                                       classes));
    snprintf(what, sizeof what, "cross-entropy dlogits rows=%d classes=%d",
             rows, classes);
    CHECK_CLOSE(what, dx, want, n, BWD_TOL);
}

TEST(loss_cross_entropy_backward_finite_differences)
{
    check_cross_entropy_backward(1, 1, 61);
    check_cross_entropy_backward(1, 4, 62);
    check_cross_entropy_backward(3, 7, 63);
    check_cross_entropy_backward(5, 2, 64);
    check_cross_entropy_backward(17, 10, 65);
}

/* Large logits: compare with the analytic gradient (softmax - onehot)/rows
 * computed in double; nothing may overflow. */
TEST(loss_cross_entropy_backward_large_logits)
{
    lpt_rng rng = lpt_rng_seed(66);
    int rows = 4, classes = 33;
    size_t n = (size_t)rows * classes;
    double *x_d, *want = lpt_doubles(n);
    float *x = random_floats(&rng, n, 50.0, 1000.0, &x_d);
    int32_t *t = random_targets(&rng, rows, classes);
    float *dx = lpt_floats(n);
    CHECK_OK(lp_cross_entropy_backward(dx, 2.0f, x, t, rows, classes));
    for (int r = 0; r < rows; r++) {
        double lse = ref_log_sum_exp(x_d + (size_t)r * classes, classes);
        for (int j = 0; j < classes; j++) {
            double p = exp(x_d[(size_t)r * classes + j] - lse);
            want[(size_t)r * classes + j] =
                2.0 * (p - (j == t[r] ? 1.0 : 0.0)) / rows;
        }
    }
    CHECK_CLOSE("cross-entropy dlogits, logits ~ 1000 +- 50", dx, want, n,
                BWD_TOL);
}

TEST(loss_cross_entropy_bad_input)
{
    float logits[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, loss = 0.0f;
    float dlogits[6] = {0};
    int32_t good[2] = {0, 2}, negative[2] = {1, -1}, too_big[2] = {3, 0};
    CHECK_OK(lp_cross_entropy_forward(&loss, logits, good, 2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, negative, 2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, too_big, 2, 3));
    CHECK(lp_cross_entropy_forward(&loss, logits, too_big, 2, 3) == LP_EINVAL);
    CHECK_FAILS(lp_cross_entropy_forward(NULL, logits, good, 2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, NULL, good, 2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, NULL, 2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, good, 0, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, good, 2, 0));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, good, -2, 3));
    CHECK_FAILS(lp_cross_entropy_forward(&loss, logits, good, INT_MAX,
                                         INT_MAX));
    /* a bad target in a later row: nothing is written */
    CHECK_FAILS(lp_cross_entropy_backward(dlogits, 1.0f, logits, negative, 2,
                                          3));
    CHECK_FAILS(lp_cross_entropy_backward(dlogits, 1.0f, logits, too_big, 2,
                                          3));
    for (int i = 0; i < 6; i++)
        CHECK(dlogits[i] == 0.0f);
    CHECK_FAILS(lp_cross_entropy_backward(NULL, 1.0f, logits, good, 2, 3));
    CHECK_FAILS(lp_cross_entropy_backward(dlogits, 1.0f, NULL, good, 2, 3));
    CHECK_FAILS(lp_cross_entropy_backward(dlogits, 1.0f, logits, NULL, 2, 3));
    CHECK_FAILS(lp_cross_entropy_backward(dlogits, 1.0f, logits, good, 2, -3));
}

/* ---- mean squared error -------------------------------------------------- */

TEST(loss_mse_forward)
{
    static const size_t counts[] = {1, 7, 100, 1001, 65537};
    lpt_rng rng = lpt_rng_seed(7);
    char what[64];
    for (int i = 0; i < 5; i++) {
        double *p_d, *t_d, want;
        float *p = random_floats(&rng, counts[i], 1.0, 0.0, &p_d);
        float *t = random_floats(&rng, counts[i], 1.0, 0.5, &t_d);
        float got = NAN;
        CHECK_OK(lp_mse_forward(&got, p, t, counts[i]));
        want = ref_mse(p_d, t_d, counts[i]);
        snprintf(what, sizeof what, "mse count=%zu", counts[i]);
        CHECK_CLOSE(what, &got, &want, 1, FWD_TOL);
    }
}

typedef struct {
    double *pred, *target, dloss;
    size_t n;
} mse_ctx;

static double mse_loss(const double *x, void *vctx)
{
    mse_ctx *c = vctx;
    (void)x; /* x is c->pred */
    return c->dloss * ref_mse(c->pred, c->target, c->n);
}

TEST(loss_mse_backward_finite_differences)
{
    static const size_t counts[] = {1, 5, 17, 70000};
    lpt_rng rng = lpt_rng_seed(8);
    char what[64];
    for (int i = 0; i < 4; i++) {
        size_t n = counts[i];
        mse_ctx c = {0};
        float *p = random_floats(&rng, n, 1.0, 0.0, &c.pred);
        float *t = random_floats(&rng, n, 1.0, 0.0, &c.target);
        float *dp = random_floats(&rng, n, 1.0, 0.0, NULL);
        double *want = lpt_doubles(n);
        c.dloss = -1.3;
        c.n = n;
        if (n <= 100) {
            lpt_fd_gradient(mse_loss, &c, c.pred, n, FD_EPS, want);
        } else { /* too many inputs for FD: the analytic gradient */
            for (size_t j = 0; j < n; j++)
                want[j] = c.dloss * 2.0 * (c.pred[j] - c.target[j]) / n;
        }
        for (size_t j = 0; j < n; j++)
            want[j] += dp[j];
        CHECK_OK(lp_mse_backward(dp, -1.3f, p, t, n));
        snprintf(what, sizeof what, "mse dpred count=%zu", n);
        CHECK_CLOSE(what, dp, want, n, BWD_TOL);
    }
}

TEST(loss_mse_bad_input)
{
    float a[4] = {0}, b[4] = {0}, loss;
    CHECK_FAILS(lp_mse_forward(&loss, a, b, 0));
    CHECK_FAILS(lp_mse_forward(NULL, a, b, 4));
    CHECK_FAILS(lp_mse_forward(&loss, NULL, b, 4));
    CHECK_FAILS(lp_mse_forward(&loss, a, NULL, 4));
    CHECK_FAILS(lp_mse_forward(&loss, a, b, SIZE_MAX));
    CHECK_FAILS(lp_mse_backward(a, 1.0f, a, b, 0));
    CHECK_FAILS(lp_mse_backward(NULL, 1.0f, a, b, 4));
    CHECK_FAILS(lp_mse_backward(a, 1.0f, NULL, b, 4));
    CHECK_FAILS(lp_mse_backward(a, 1.0f, a, NULL, 4));
    CHECK_FAILS(lp_mse_backward(a, 1.0f, a, b, SIZE_MAX / 2));
}
