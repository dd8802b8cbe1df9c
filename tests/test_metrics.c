/*
 * test_metrics.c — closed forms of the evaluation metrics' building
 * blocks (interp/metrics.c): SSIM of maps, the stability and sensitivity
 * metrics, MeGe and ReCo. Deletion, insertion and MuFidelity are checked
 * against PyTorch (tests/parity/methods_metrics.py) and end to end
 * (tests/test_evaluate.sh).
 */
#include "test.h"
#include "models_util.h"

#include <math.h>
#include <string.h>

/* ---- SSIM ------------------------------------------------------------------- */

TEST(metrics_ssim_closed_forms)
{
    enum { H = 9, W = 11 };
    float a[H * W], b[H * W];
    double s;
    lpt_rng r = lpt_rng_seed(3);
    lpt_fill_uniform(&r, a, H * W, -2.0, 5.0);
    /* a map with itself, and with any increasing affine image of itself
     * (both are min-max scaled first): 1 */
    CHECK_OK(lp_map_ssim(a, a, H, W, &s));
    CHECK_NEAR(s, 1.0, 1e-12);
    for (int i = 0; i < H * W; i++)
        b[i] = 3.0f * a[i] + 7.0f;
    CHECK_OK(lp_map_ssim(a, b, H, W, &s));
    CHECK_NEAR(s, 1.0, 1e-6);
    /* one 7x7 window and y = 1 - x (scaled): my = 1 - mx, vy = vx,
     * vxy = -vx, so SSIM = (2 mx (1-mx) + C1)(C2 - 2 vx) /
     * ((mx^2 + (1-mx)^2 + C1)(2 vx + C2)) */
    {
        float p[49], q[49];
        double lo = 1e30, hi = -1e30, mx = 0, sxx = 0, vx, want;
        lpt_fill_uniform(&r, p, 49, 0.0, 1.0);
        for (int i = 0; i < 49; i++) {
            q[i] = -p[i];
            lo = fmin(lo, p[i]);
            hi = fmax(hi, p[i]);
        }
        for (int i = 0; i < 49; i++) {
            double v = (p[i] - lo) / (hi - lo);
            mx += v / 49;
            sxx += v * v;
        }
        vx = (sxx / 49 - mx * mx) * 49.0 / 48.0;
        want = (2 * mx * (1 - mx) + 1e-4) * (9e-4 - 2 * vx) /
               ((mx * mx + (1 - mx) * (1 - mx) + 1e-4) * (2 * vx + 9e-4));
        CHECK_OK(lp_map_ssim(p, q, 7, 7, &s));
        CHECK_NEAR(s, want, 1e-9);
        CHECK(s < 0.0);
    }
}

/* ---- stability and sensitivity ------------------------------------------------- */

/* A "method" whose map is the first input channel: its stability under
 * noise is the noise's own norm. */
static int channel0_map(struct lp_model *m, const float *x, int n, const int *classes,
                        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t hw = (size_t)in->in_h * in->in_w;
    (void)classes;
    (void)o;
    for (int b = 0; b < n; b++)
        memcpy(out + b * hw, x + (size_t)b * in->in_c * hw, hw * sizeof(float));
    if (rep)
        rep->forwards += n;
    return LP_OK;
}

TEST(metrics_stability_closed_form)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 5);
    const lp_model_info *in;
    lp_method me = {"channel0", channel0_map, 0, "the first channel", "-"};
    lp_explain_options o;
    size_t per, hw;
    float *x, *map, *noise;
    double stab = 0, sens = 0, want_stab = 0, want_sens = 0, ref = 0;
    long passes = 0;
    int S = 6;
    lpt_rng r = lpt_rng_seed(9);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    in = lp_model_get_info(m);
    hw = (size_t)in->in_h * in->in_w;
    per = hw * in->in_c;
    x = lpt_floats(per);
    map = lpt_floats(hw);
    noise = lpt_floats(S * per);
    lpt_fill_uniform(&r, x, per, -1.0, 1.0);
    memcpy(map, x, hw * sizeof(float));
    lp_explain_defaults(&o);
    CHECK_OK(lp_stability_noise(noise, S, per, 0.0f, 0.1f, 17));
    for (size_t i = 0; i < S * per; i++)
        CHECK(noise[i] >= 0.0f && noise[i] < 0.1f);
    for (size_t i = 0; i < hw; i++)
        ref += (double)x[i] * x[i];
    ref = sqrt(ref);
    for (int j = 0; j < S; j++) {
        double d = 0;
        for (size_t i = 0; i < hw; i++) {
            /* the method sees x + noise in float: its map differs by that */
            double e = (double)(x[i] + noise[(size_t)j * per + i]) - x[i];
            d += e * e;
        }
        d = sqrt(d);
        want_stab += d / S;
        want_sens = fmax(want_sens, d / ref);
    }
    CHECK_OK(lp_metric_stability(m, &me, &o, x, 0, map, noise, S, 0, &stab, &passes));
    CHECK_NEAR(stab, want_stab, 1e-9 * want_stab);
    CHECK(passes == S);
    CHECK_OK(lp_metric_stability(m, &me, &o, x, 0, map, noise, S, 1, &sens, NULL));
    CHECK_NEAR(sens, want_sens, 1e-9 * want_sens);
    /* no noise: perfectly stable */
    memset(noise, 0, S * per * sizeof(float));
    CHECK_OK(lp_metric_stability(m, &me, &o, x, 0, map, noise, S, 0, &stab, NULL));
    CHECK(stab == 0.0);
    lp_model_free(m);
}

/* ---- MeGe and ReCo ---------------------------------------------------------------- */

TEST(metrics_mege_reco_closed_forms)
{
    double zero[3] = {0, 0, 0}, half[2] = {0.5, 0.5}, eq[2] = {0.1, 0.2}, ne[2] = {0.8, 0.9};
    double mege, reco;
    /* models that agree perfectly: MeGe 1; no disagreeing pair: no ReCo */
    CHECK_OK(lp_mege_reco(zero, 3, NULL, 0, &mege, &reco));
    CHECK(mege == 1.0 && isnan(reco));
    CHECK_OK(lp_mege_reco(half, 2, ne, 2, &mege, &reco));
    CHECK_NEAR(mege, 1.0 / 1.5, 1e-15);
    /* separable distances: the thresholds are the sorted distances
     * themselves, compared strictly (as Xplique), so the best split,
     * gamma = 0.2 (or 0.8), counts one of the two pairs on each side:
     * TPR + TNR - 1 = 0.5 + 1 - 1 */
    CHECK_OK(lp_mege_reco(eq, 2, ne, 2, &mege, &reco));
    CHECK_NEAR(mege, 1.0 / 1.15, 1e-15);
    CHECK_NEAR(reco, 0.5, 1e-15);
    /* the same distances on both sides: no threshold separates them */
    CHECK_OK(lp_mege_reco(eq, 2, eq, 2, &mege, &reco));
    CHECK(reco <= 0.0 + 1e-15);
    /* no agreeing pair: no MeGe */
    CHECK_OK(lp_mege_reco(NULL, 0, ne, 2, &mege, &reco));
    CHECK(isnan(mege));
}
