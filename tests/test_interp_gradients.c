/*
 * test_interp_gradients.c — the gradient attribution family
 * (interp/gradients.c): the raw gradient against finite differences,
 * identities between methods, integrated gradients' completeness and
 * DeepLIFT's summation-to-delta on the real ResNet-20 (CIFAR-10), the
 * guided backprop rule, SmoothGrad's seeding, and argument errors.
 */
#include "test.h"
#include "models_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t per_of(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_c * in->in_h * in->in_w;
}

static size_t hw_of(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_h * in->in_w;
}

/* n random inputs for a model, and their top-1 classes */
static float *random_inputs(lp_model *m, int n, uint64_t seed, int *classes)
{
    lpt_rng r = lpt_rng_seed(seed);
    const lp_model_info *in = lp_model_get_info(m);
    float *x = lpt_floats((size_t)n * per_of(m));
    float *y = lpt_floats((size_t)n * in->out_dim);
    lp_target t = {LP_TARGET_TOP, LP_SCORE_LOGIT, -1};
    lpt_fill_normal(&r, x, (size_t)n * per_of(m), 1.0);
    CHECK_OK(lp_model_forward(m, x, n, y, 0));
    CHECK_OK(lp_target_classes(&t, y, n, in->out_dim, classes));
    return x;
}

static double score_of(lp_model *m, const float *x, int cls, lp_score_kind kind)
{
    float s = 0.0f;
    CHECK_OK(lp_target_forward(m, x, 1, 1, &cls, kind, &s));
    return s;
}

/* the ResNet-20 (CIFAR-10) of weights/ and the first committed test image */
static lp_model *resnet20(float **x, int *cls)
{
    lp_model *m = NULL;
    lp_dataset d;
    lp_image im;
    float y[10];
    if (lp_model_load(&m, lpt_path("weights/resnet20_cifar10.lpw")) != LP_OK) {
        lpt_fail(__FILE__, __LINE__, "cannot load resnet20: %s", lp_last_error());
        return NULL;
    }
    CHECK_OK(lp_cifar10_load(&d, lpt_path("tests/data/cifar10_test_first200.bin"), 2));
    *x = lpt_floats(per_of(m));
    im = lp_dataset_image(&d, 0);
    CHECK_OK(lp_model_prepare_image(m, &im, *x));
    lp_dataset_free(&d);
    CHECK_OK(lp_model_forward(m, *x, 1, y, 0));
    *cls = 0;
    for (int k = 1; k < 10; k++)
        if (y[k] > y[*cls])
            *cls = k;
    return m;
}

/* ---- the raw gradient against central differences -------------------------- */

static void check_fd(tm_config_fn cfg, lp_score_kind kind, double eps, double tol)
{
    lp_model *m = tm_random_model(cfg, 11);
    lp_explain_options o;
    lp_explain_report rep;
    int cls[2];
    size_t per;
    float *x, *g, *xp;
    lpt_rng r = lpt_rng_seed(5);
    double gmax = 0.0, worst = 0.0;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    per = per_of(m);
    x = random_inputs(m, 2, 3, cls);
    g = lpt_floats(2 * per);
    xp = lpt_floats(per);
    lp_explain_defaults(&o);
    o.score = kind;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_gradient(m, x, 2, cls, &o, g, &rep));
    CHECK(rep.forwards == 2 && rep.backwards == 2);
    for (size_t i = 0; i < 2 * per; i++)
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    CHECK(gmax > 0.0);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 12; t++) {
            size_t i = (size_t)(lpt_rng_uniform(&r) * per);
            double fp, fm, fd;
            memcpy(xp, x + b * per, per * sizeof(float));
            xp[i] += (float)eps;
            fp = score_of(m, xp, cls[b], kind);
            xp[i] -= (float)(2 * eps);
            fm = score_of(m, xp, cls[b], kind);
            fd = (fp - fm) / (2 * eps);
            if (fabs(fd - g[b * per + i]) > worst)
                worst = fabs(fd - g[b * per + i]);
        }
    CHECK_MSG(worst <= tol * gmax, "finite differences: worst error %.3g vs max |g| %.3g",
              worst, gmax);
    lp_model_free(m);
}

TEST(interp_grad_gradient_matches_finite_differences)
{
    check_fd(tiny_vit_timm, LP_SCORE_LOGIT, 1e-2, 2e-2);
    check_fd(tiny_vit_timm, LP_SCORE_PROB, 1e-2, 2e-2);
    check_fd(tiny_cifar_resnet, LP_SCORE_LOGIT, 1e-3, 2e-2);
    check_fd(tiny_cifar_resnet, LP_SCORE_PROB, 1e-3, 2e-2);
}

/* ---- identities between methods ---------------------------------------------- */

TEST(interp_grad_saliency_and_gradxinput_reduce_the_gradient)
{
    lp_model *m = tm_random_model(tiny_bottleneck_resnet, 2);
    const lp_model_info *in;
    lp_explain_options o;
    int cls[2];
    size_t per, hw;
    float *x, *g, *sal, *gxi;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    in = lp_model_get_info(m);
    per = per_of(m);
    hw = hw_of(m);
    x = random_inputs(m, 2, 9, cls);
    g = lpt_floats(2 * per);
    sal = lpt_floats(2 * hw);
    gxi = lpt_floats(2 * hw);
    lp_explain_defaults(&o);
    CHECK_OK(lp_gradient(m, x, 2, cls, &o, g, NULL));
    CHECK_OK(lp_saliency(m, x, 2, cls, &o, sal, NULL));
    CHECK_OK(lp_gradxinput(m, x, 2, cls, &o, gxi, NULL));
    for (int b = 0; b < 2; b++)
        for (size_t p = 0; p < hw; p++) {
            double mx = 0.0, s = 0.0;
            for (int c = 0; c < in->in_c; c++) {
                size_t i = b * per + c * hw + p;
                if (fabs(g[i]) > mx) mx = fabs(g[i]);
                s += (double)x[i] * g[i];
            }
            CHECK_NEAR(sal[b * hw + p], mx, 1e-6 * (1 + mx));
            CHECK_NEAR(gxi[b * hw + p], s, 1e-5 * (1 + fabs(s)));
        }
    lp_model_free(m);
}

TEST(interp_grad_ig_one_step_identities)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 4);
    lp_explain_options o;
    lp_explain_report rep;
    int cls[2];
    size_t per, hw;
    float *x, *ig, *gxi, *ig2, *half, *gh;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    per = per_of(m);
    hw = hw_of(m);
    x = random_inputs(m, 2, 21, cls);
    ig = lpt_floats(2 * hw);
    ig2 = lpt_floats(2 * hw);
    gxi = lpt_floats(2 * hw);
    half = lpt_floats(2 * per);
    gh = lpt_floats(2 * hw);
    lp_explain_defaults(&o);
    /* steps = 1, right Riemann, zero baseline: (x - 0) * g(x) = gradxinput */
    o.steps = 1;
    o.quadrature = LP_RIEMANN_RIGHT;
    CHECK_OK(lp_integrated_gradients(m, x, 2, cls, &o, ig, &rep));
    CHECK_OK(lp_gradxinput(m, x, 2, cls, &o, gxi, NULL));
    CHECK_CLOSE_F("IG(1 step, right) vs gradxinput", ig, gxi, 2 * hw, 1e-6);
    /* steps = 1, midpoint: x * g(x / 2), i.e. 2 * gradxinput at x / 2;
     * Gauss-Legendre of order 1 is the same node */
    o.quadrature = LP_RIEMANN_MIDDLE;
    CHECK_OK(lp_integrated_gradients(m, x, 2, cls, &o, ig, NULL));
    o.quadrature = LP_GAUSS_LEGENDRE;
    CHECK_OK(lp_integrated_gradients(m, x, 2, cls, &o, ig2, NULL));
    for (size_t i = 0; i < 2 * per; i++)
        half[i] = 0.5f * x[i];
    CHECK_OK(lp_gradxinput(m, half, 2, cls, &o, gh, NULL));
    for (size_t i = 0; i < 2 * hw; i++)
        gh[i] *= 2.0f;
    CHECK_CLOSE_F("IG(1 step, middle) vs 2 gradxinput(x/2)", ig, gh, 2 * hw, 1e-5);
    CHECK_CLOSE_F("IG(1 step, Gauss-Legendre) vs middle", ig2, ig, 2 * hw, 1e-6);
    /* batch size does not change the result */
    o.steps = 7;
    o.batch = 3;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_integrated_gradients(m, x, 2, cls, &o, ig, &rep));
    CHECK(rep.forwards == 2 * 7 + 4 && rep.backwards == 2 * 7);
    o.batch = 32;
    CHECK_OK(lp_integrated_gradients(m, x, 2, cls, &o, ig2, NULL));
    CHECK_CLOSE_F("IG batch 3 vs 32", ig, ig2, 2 * hw, 1e-5);
    lp_model_free(m);
}

/* The uniform and the user baselines: completeness from each (a smooth
 * GELU ViT, so 64 Gauss-Legendre nodes are exact to rounding), the
 * uniform one seeded, the user one equal to x giving a zero map. */
TEST(interp_grad_ig_uniform_and_user_baselines)
{
    lp_model *m = tm_random_model(tiny_vit_timm, 14);
    lp_explain_options o;
    lp_explain_report rep;
    int cls[1];
    size_t per, hw;
    float *x, *base, *ig, *ig2;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    per = per_of(m);
    hw = hw_of(m);
    x = random_inputs(m, 1, 31, cls);
    base = lpt_floats(per);
    ig = lpt_floats(hw);
    ig2 = lpt_floats(hw);
    {
        lpt_rng r = lpt_rng_seed(77);
        lpt_fill_normal(&r, base, per, 0.5);
    }
    lp_explain_defaults(&o);
    o.steps = 64;
    for (int kind = 0; kind < 2; kind++) {
        double sum = 0, delta;
        memset(&rep, 0, sizeof rep);
        o.baseline = kind ? LP_BASELINE_USER : LP_BASELINE_UNIFORM;
        o.baseline_data = kind ? base : NULL;
        o.seed = 5;
        CHECK_OK(lp_integrated_gradients(m, x, 1, cls, &o, ig, &rep));
        for (size_t i = 0; i < hw; i++)
            sum += ig[i];
        delta = rep.score_x - rep.score_baseline;
        if (kind)
            CHECK_NEAR(rep.score_baseline, score_of(m, base, cls[0], LP_SCORE_LOGIT), 1e-5);
        CHECK(fabs(delta) > 1e-3);
        CHECK_MSG(fabs(sum - delta) <= 1e-3 * fabs(delta) + 1e-6,
                  "%s baseline: sum %.6g vs f(x) - f(x') %.6g", kind ? "user" : "uniform", sum,
                  delta);
        CHECK_NEAR(rep.completeness_gap, sum - delta, 1e-4 * fabs(delta) + 1e-6);
    }
    /* the uniform baseline is seeded: same seed, same map; another, another */
    o.baseline = LP_BASELINE_UNIFORM;
    o.baseline_data = NULL;
    o.seed = 5;
    CHECK_OK(lp_integrated_gradients(m, x, 1, cls, &o, ig, NULL));
    CHECK_OK(lp_integrated_gradients(m, x, 1, cls, &o, ig2, NULL));
    CHECK(memcmp(ig, ig2, hw * sizeof(float)) == 0);
    o.seed = 6;
    CHECK_OK(lp_integrated_gradients(m, x, 1, cls, &o, ig2, NULL));
    CHECK(memcmp(ig, ig2, hw * sizeof(float)) != 0);
    lp_model_free(m);
}

/* ---- completeness and summation-to-delta on a real network ------------------ */

TEST(interp_grad_ig_completeness_resnet20)
{
    static const lp_quadrature qs[3] = {LP_GAUSS_LEGENDRE, LP_RIEMANN_TRAPEZOID,
                                        LP_GAUSS_LEGENDRE};
    static const lp_baseline_kind bs[3] = {LP_BASELINE_ZERO, LP_BASELINE_ZERO,
                                           LP_BASELINE_BLACK};
    float *x = NULL, *map;
    int cls = 0;
    lp_model *m = resnet20(&x, &cls);
    if (m == NULL)
        return;
    map = lpt_floats(hw_of(m));
    for (int q = 0; q < 3; q++) {
        lp_explain_options o;
        lp_explain_report rep;
        double delta;
        lp_explain_defaults(&o);
        o.steps = 256;
        o.quadrature = qs[q];
        o.baseline = bs[q];
        o.batch = 64;
        memset(&rep, 0, sizeof rep);
        CHECK_OK(lp_integrated_gradients(m, x, 1, &cls, &o, map, &rep));
        delta = rep.score_x - rep.score_baseline;
        CHECK(fabs(delta) > 1e-3);
        /* 1 % from the mean-colour baseline; the longer path from black
         * crosses more ReLU kinks (measured 1.06 % at 256 steps) */
        CHECK_MSG(fabs(rep.completeness_gap) <= (q < 2 ? 0.01 : 0.02) * fabs(delta),
                  "IG quadrature %d: sum(attr) - delta = %.4g, delta = %.4g", q,
                  rep.completeness_gap, delta);
        CHECK(rep.forwards == 256 + 2 && rep.backwards == 256);
        if (getenv("LOUPE_TEST_VERBOSE"))
            printf("    IG q%d: f(x) %.4f f(x') %.4f gap %.3g (%.3g %%)\n", q, rep.score_x,
                   rep.score_baseline, rep.completeness_gap,
                   100 * rep.completeness_gap / delta);
    }
    lp_model_free(m);
}

TEST(interp_grad_deeplift_summation_to_delta_resnet20)
{
    static const lp_baseline_kind bs[3] = {LP_BASELINE_ZERO, LP_BASELINE_BLACK,
                                           LP_BASELINE_BLUR};
    float *x = NULL, *map;
    int cls = 0;
    lp_model *m = resnet20(&x, &cls);
    if (m == NULL)
        return;
    map = lpt_floats(hw_of(m));
    for (int b = 0; b < 3; b++) {
        lp_explain_options o;
        lp_explain_report rep;
        double delta, sum = 0.0;
        lp_explain_defaults(&o);
        o.baseline = bs[b];
        o.blur_sigma = 2.0f;
        memset(&rep, 0, sizeof rep);
        CHECK_OK(lp_deeplift(m, x, 1, &cls, &o, map, &rep));
        for (size_t p = 0; p < hw_of(m); p++)
            sum += map[p];
        delta = score_of(m, x, cls, LP_SCORE_LOGIT);
        delta -= rep.score_baseline;
        CHECK_NEAR(rep.score_x, score_of(m, x, cls, LP_SCORE_LOGIT), 1e-4);
        CHECK_MSG(fabs(sum - delta) <= 1e-3 * fabs(delta),
                  "DeepLIFT baseline %d: sum %.6g vs f(x) - f(x') %.6g", b, sum, delta);
        CHECK(rep.forwards == 2 && rep.backwards == 2);
        if (getenv("LOUPE_TEST_VERBOSE"))
            printf("    DeepLIFT b%d: delta %.5f rel. gap %.2g\n", b, delta,
                   fabs(sum - delta) / fabs(delta));
    }
    /* the rules are restored: plain gradients come back */
    {
        lp_explain_options o;
        float *g1 = lpt_floats(per_of(m)), *g2 = lpt_floats(per_of(m));
        lp_explain_defaults(&o);
        CHECK_OK(lp_gradient(m, x, 1, &cls, &o, g1, NULL));
        CHECK_OK(lp_target_gradient(m, x, 1, &cls, LP_SCORE_LOGIT, NULL, g2));
        CHECK_CLOSE_F("gradient after deeplift", g1, g2, per_of(m), 0.0);
    }
    lp_model_free(m);
}

TEST(interp_grad_deeplift_runs_on_vit_and_batches)
{
    lp_model *m = tm_random_model(tiny_vit_timm, 6);
    lp_explain_options o;
    lp_explain_report rep;
    int cls[3];
    size_t hw;
    float *x, *a, *b;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = hw_of(m);
    x = random_inputs(m, 3, 8, cls);
    a = lpt_floats(3 * hw);
    b = lpt_floats(3 * hw);
    lp_explain_defaults(&o);
    o.batch = 2; /* one image (and its baseline) per pass */
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_deeplift(m, x, 3, cls, &o, a, &rep));
    CHECK(rep.forwards == 6);
    o.batch = 32;
    CHECK_OK(lp_deeplift(m, x, 3, cls, &o, b, NULL));
    CHECK_CLOSE_F("deeplift batch 2 vs 32", a, b, 3 * hw, 1e-5);
    /* roughly complete even with softmax and layer norm at their gradients */
    CHECK(isfinite(rep.completeness_gap));
    lp_model_free(m);
}

/* ---- guided backprop --------------------------------------------------------- */

typedef struct {
    float *buf;
    size_t cap;
} capture;

static int capture_hook(const lp_hook_tensor *t, void *user)
{
    capture *c = user;
    size_t count = (size_t)t->n * t->image_stride;
    if (count <= c->cap)
        memcpy(c->buf, t->data, count * sizeof(float));
    return LP_OK;
}

TEST(interp_grad_guided_backprop_rule)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 7);
    lp_explain_options o;
    int cls[1], relu, dims[4], nd, h1, h2, h3;
    size_t size = 1, hw;
    float *x, *gb, *dc, *sal;
    capture y, dy, dx;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = hw_of(m);
    x = random_inputs(m, 1, 31, cls);
    /* the stem: bn1 -> relu, bn1's output read by the ReLU alone */
    relu = lp_model_find_layer(m, "relu");
    CHECK(relu > 1 && !strcmp(lp_model_layer_kind(m, relu), "relu"));
    CHECK(!strcmp(lp_model_layer_kind(m, relu - 1), "batchnorm2d"));
    nd = lp_model_layer_shape(m, relu, dims);
    for (int i = 0; i < nd; i++)
        size *= (size_t)dims[i];
    y.buf = lpt_floats(size); y.cap = size;
    dy.buf = lpt_floats(size); dy.cap = size;
    dx.buf = lpt_floats(size); dx.cap = size;
    h1 = lp_model_add_hook(m, "relu", LP_HOOK_FORWARD, capture_hook, &y);
    h2 = lp_model_add_hook(m, "relu", LP_HOOK_BACKWARD, capture_hook, &dy);
    h3 = lp_model_add_hook(m, lp_model_layer_name(m, relu - 1), LP_HOOK_BACKWARD,
                           capture_hook, &dx);
    CHECK(h1 >= 0 && h2 >= 0 && h3 >= 0);
    gb = lpt_floats(hw);
    dc = lpt_floats(hw);
    sal = lpt_floats(hw);
    lp_explain_defaults(&o);
    CHECK_OK(lp_guided_backprop(m, x, 1, cls, &o, gb, NULL));
    {
        size_t blocked = 0, bad = 0, passed = 0;
        for (size_t i = 0; i < size; i++) {
            float want = (y.buf[i] > 0.0f && dy.buf[i] > 0.0f) ? dy.buf[i] : 0.0f;
            if (dx.buf[i] != want)
                bad++;
            if (y.buf[i] > 0.0f && dy.buf[i] < 0.0f)
                blocked++; /* ordinary backprop passes these, guided does not */
            passed += want != 0.0f;
        }
        CHECK_MSG(bad == 0, "guided rule broken at %zu of %zu elements", bad, size);
        CHECK(blocked > 0 && passed > 0);
    }
    lp_model_remove_hook(m, h1);
    lp_model_remove_hook(m, h2);
    lp_model_remove_hook(m, h3);
    CHECK_OK(lp_deconvnet(m, x, 1, cls, &o, dc, NULL));
    CHECK_OK(lp_saliency(m, x, 1, cls, &o, sal, NULL));
    {
        double d1 = 0.0, d2 = 0.0, s = 0.0;
        for (size_t p = 0; p < hw; p++) {
            d1 += fabs(gb[p] - sal[p]);
            d2 += fabs(dc[p] - gb[p]);
            s += fabs(sal[p]);
            CHECK(gb[p] >= 0.0f && dc[p] >= 0.0f);
        }
        CHECK(s > 0.0 && d1 > 1e-3 * s && d2 > 1e-3 * s);
    }
    /* ViTs have no ReLU: an error, and the model is left as it was */
    {
        lp_model *v = tm_random_model(tiny_vit_timm, 1);
        int vc[1];
        float *vx, *vm;
        CHECK(v != NULL);
        if (v != NULL) {
            vx = random_inputs(v, 1, 2, vc);
            vm = lpt_floats(hw_of(v));
            CHECK_FAILS(lp_guided_backprop(v, vx, 1, vc, &o, vm, NULL));
            CHECK_FAILS(lp_deconvnet(v, vx, 1, vc, &o, vm, NULL));
            lp_model_free(v);
        }
    }
    lp_model_free(m);
}

/* ---- SmoothGrad, VarGrad, SquareGrad -------------------------------------- */

TEST(interp_grad_smoothgrad_seeded)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 8);
    lp_explain_options o;
    lp_explain_report rep;
    int cls[2];
    size_t hw;
    float *x, *a, *b, *c, *sal, *var, *sq;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = hw_of(m);
    x = random_inputs(m, 2, 41, cls);
    a = lpt_floats(2 * hw);
    b = lpt_floats(2 * hw);
    c = lpt_floats(2 * hw);
    sal = lpt_floats(2 * hw);
    var = lpt_floats(2 * hw);
    sq = lpt_floats(2 * hw);
    lp_explain_defaults(&o);
    o.samples = 6;
    o.seed = 3;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_smoothgrad(m, x, 2, cls, &o, a, &rep));
    CHECK(rep.forwards == 12 && rep.backwards == 12);
    o.batch = 5; /* the same draws whatever the batch */
    CHECK_OK(lp_smoothgrad(m, x, 2, cls, &o, b, NULL));
    CHECK_CLOSE_F("smoothgrad, same seed", b, a, 2 * hw, 1e-5);
    o.seed = 4;
    CHECK_OK(lp_smoothgrad(m, x, 2, cls, &o, c, NULL));
    {
        double d = 0.0;
        for (size_t i = 0; i < 2 * hw; i++)
            d += fabs(c[i] - a[i]);
        CHECK_MSG(d > 1e-6, "another seed gave the same map");
    }
    /* noise 0: the saliency map; one sample: zero variance */
    o.noise = 0.0f;
    CHECK_OK(lp_smoothgrad(m, x, 2, cls, &o, c, NULL));
    CHECK_OK(lp_saliency(m, x, 2, cls, &o, sal, NULL));
    CHECK_CLOSE_F("smoothgrad with no noise", c, sal, 2 * hw, 1e-5);
    o.noise = 0.2f;
    o.samples = 1;
    CHECK_OK(lp_vargrad(m, x, 2, cls, &o, var, NULL));
    for (size_t i = 0; i < 2 * hw; i++)
        CHECK(var[i] == 0.0f);
    o.samples = 6;
    CHECK_OK(lp_vargrad(m, x, 2, cls, &o, var, NULL));
    CHECK_OK(lp_squaregrad(m, x, 2, cls, &o, sq, NULL));
    for (size_t i = 0; i < 2 * hw; i++)
        CHECK(var[i] >= 0.0f && sq[i] >= var[i] * (1 - 1e-5f));
    lp_model_free(m);
}

/* ---- errors ----------------------------------------------------------------- */

TEST(interp_grad_bad_options)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 9);
    lp_explain_options o;
    int cls[1];
    float *x, *out;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    x = random_inputs(m, 1, 1, cls);
    out = lpt_floats(per_of(m));
    lp_explain_defaults(&o);
    CHECK_FAILS(lp_gradient(m, x, 0, cls, &o, out, NULL));
    CHECK_FAILS(lp_saliency(m, NULL, 1, cls, &o, out, NULL));
    CHECK_FAILS(lp_deeplift(m, x, 1, cls, &o, NULL, NULL));
    o.steps = 0;
    CHECK_FAILS(lp_integrated_gradients(m, x, 1, cls, &o, out, NULL));
    o.steps = 1;
    o.quadrature = LP_RIEMANN_TRAPEZOID;
    CHECK_FAILS(lp_integrated_gradients(m, x, 1, cls, &o, out, NULL));
    lp_explain_defaults(&o);
    o.baseline = LP_BASELINE_USER;
    CHECK_FAILS(lp_integrated_gradients(m, x, 1, cls, &o, out, NULL));
    CHECK_FAILS(lp_deeplift(m, x, 1, cls, &o, out, NULL));
    o.baseline_data = x; /* with data it runs: IG from x to x is zero */
    o.steps = 4;
    CHECK_OK(lp_integrated_gradients(m, x, 1, cls, &o, out, NULL));
    for (size_t i = 0; i < hw_of(m); i++)
        CHECK(out[i] == 0.0f);
    lp_explain_defaults(&o);
    o.samples = 0;
    CHECK_FAILS(lp_smoothgrad(m, x, 1, cls, &o, out, NULL));
    CHECK_FAILS(lp_vargrad(m, x, 1, cls, &o, out, NULL));
    o.samples = 2;
    o.noise = -1.0f;
    CHECK_FAILS(lp_squaregrad(m, x, 1, cls, &o, out, NULL));
    lp_explain_defaults(&o);
    o.baseline = LP_BASELINE_BLUR;
    o.blur_sigma = 0.0f;
    CHECK_FAILS(lp_integrated_gradients(m, x, 1, cls, &o, out, NULL));
    cls[0] = 1000;
    lp_explain_defaults(&o);
    CHECK_FAILS(lp_gradient(m, x, 1, cls, &o, out, NULL));
    lp_model_free(m);
}
