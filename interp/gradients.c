/*
 * gradients.c — the gradient attribution family: raw gradient, saliency,
 * gradient x input, integrated gradients, SmoothGrad / VarGrad /
 * SquareGrad, guided backprop, DeconvNet and DeepLIFT (rescale rule).
 *
 * Every method explains the score o->score (logit by default) of the
 * resolved class classes[b] of each image of the normalised batch
 * x[n, C, H, W], through the public model API only (forward with
 * LP_RUN_GRAD, backward, replaced backward rules). Maps are [n, H, W]
 * (the raw gradient alone is [n, C, H, W]); how each method reduces the
 * channels is stated at the method and in docs/methods/gradients.md.
 *
 * Conventions shared by all methods:
 *  - passes are chunked o->batch images at a time (default 32);
 *  - rep->forwards / rep->backwards count image passes;
 *  - random draws come from one lp_rng stream seeded with o->seed and are
 *    consumed in (image, sample, element) order, so the result does not
 *    depend on the batch size or the thread count;
 *  - ReLU'(0) = 0 (PyTorch's convention), as in the model's own backward.
 */
#include "loupe.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define GR_PI 3.14159265358979323846
#define GR_SQRT1_2 0.70710678118654752440

/* ---- shared plumbing ------------------------------------------------------ */

static lp_explain_report *report_or(lp_explain_report *rep, lp_explain_report *dummy)
{
    if (rep == NULL) {
        memset(dummy, 0, sizeof *dummy);
        return dummy;
    }
    return rep;
}

static int check_args(const char *fn, lp_model *m, const float *x, int n,
                      const int *classes, const lp_explain_options *o, float *out)
{
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL)
        return lp_set_error(LP_EINVAL, "%s: NULL argument", fn);
    if (n < 1)
        return lp_set_error(LP_EINVAL, "%s: need at least one image (n = %d)", fn, n);
    if (lp_model_get_info(m)->out_dim < 1)
        return lp_set_error(LP_EINVAL, "%s: the model has no outputs to explain", fn);
    return LP_OK;
}

static int batch_of(const lp_explain_options *o)
{
    return o->batch > 0 ? o->batch : 32;
}

static void progress(const lp_explain_options *o, long done, long total)
{
    if (o->progress != NULL)
        o->progress(o->progress_user, done, total);
}

static size_t per_image(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_c * in->in_h * in->in_w;
}

/* Input gradients dx[n, C, H, W] (and scores[n] if not NULL) of the target
 * scores, o->batch images per pass. */
static int input_gradients(lp_model *m, const float *x, int n, const int *classes,
                           const lp_explain_options *o, float *scores, float *dx,
                           lp_explain_report *rep)
{
    size_t per = per_image(m);
    int batch = batch_of(o);
    for (int s = 0; s < n; s += batch) {
        int c = n - s < batch ? n - s : batch;
        LP_TRY(lp_target_gradient(m, x + (size_t)s * per, c, classes + s, o->score,
                                  scores ? scores + s : NULL, dx + (size_t)s * per));
        rep->forwards += c;
        rep->backwards += c;
        progress(o, s + c, n);
    }
    return LP_OK;
}

/* Channel reductions of v[n, C, H*W] into out[n, H*W]. */
static void reduce_max_abs(const float *v, int n, int ch, size_t hw, float *out)
{
    for (int b = 0; b < n; b++)
        for (size_t p = 0; p < hw; p++) {
            float best = 0.0f;
            for (int c = 0; c < ch; c++) {
                float a = fabsf(v[((size_t)b * ch + c) * hw + p]);
                if (a > best) best = a;
            }
            out[(size_t)b * hw + p] = best;
        }
}

/* out[b, p] = sum_c d[b, c, p] * g[b, c, p], with d = x - base (base NULL: 0) */
static void reduce_sum_product(const float *x, const float *base, const float *g,
                               const double *gd, int n, int ch, size_t hw, float *out)
{
    for (int b = 0; b < n; b++)
        for (size_t p = 0; p < hw; p++) {
            double s = 0.0;
            for (int c = 0; c < ch; c++) {
                size_t i = ((size_t)b * ch + c) * hw + p;
                double d = (double)x[i] - (base ? (double)base[i] : 0.0);
                s += d * (gd ? gd[i] : (double)g[i]);
            }
            out[(size_t)b * hw + p] = (float)s;
        }
}

/* ---- raw gradient, saliency, gradient x input ----------------------------- */

/* Raw input gradient d S_c / d x (Simonyan et al. 2014, eq. 1 before the
 * abs/max); signed, per channel: out[n, C, H, W]. */
int lp_gradient(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    lp_explain_report dummy;
    LP_TRY(check_args("lp_gradient", m, x, n, classes, o, out));
    return input_gradients(m, x, n, classes, o, NULL, out, report_or(rep, &dummy));
}

/* Saliency (Simonyan et al. 2014, sec. 3.1): M_ij = max_c |d S / d x_cij|
 * — Captum Saliency(abs=True) before its channel step, Xplique Saliency. */
int lp_saliency(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    lp_explain_report dummy;
    float *g;
    int rc;
    LP_TRY(check_args("lp_saliency", m, x, n, classes, o, out));
    in = lp_model_get_info(m);
    g = lp_alloc((size_t)n * per_image(m), sizeof(float));
    if (g == NULL)
        return lp_set_error(LP_ENOMEM, "lp_saliency: out of memory");
    rc = input_gradients(m, x, n, classes, o, NULL, g, report_or(rep, &dummy));
    if (rc == LP_OK)
        reduce_max_abs(g, n, in->in_c, (size_t)in->in_h * in->in_w, out);
    lp_free(g);
    return rc;
}

/* Gradient x input (Shrikumar et al. 2016; Captum InputXGradient):
 * sum_c x_c * d S / d x_c. Summing the channels keeps the map's total the
 * first-order (completeness-style) estimate sum_i x_i dS/dx_i. */
int lp_gradxinput(lp_model *m, const float *x, int n, const int *classes,
                  const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    lp_explain_report dummy;
    float *g;
    int rc;
    LP_TRY(check_args("lp_gradxinput", m, x, n, classes, o, out));
    in = lp_model_get_info(m);
    g = lp_alloc((size_t)n * per_image(m), sizeof(float));
    if (g == NULL)
        return lp_set_error(LP_ENOMEM, "lp_gradxinput: out of memory");
    rc = input_gradients(m, x, n, classes, o, NULL, g, report_or(rep, &dummy));
    if (rc == LP_OK)
        reduce_sum_product(x, NULL, g, NULL, n, in->in_c, (size_t)in->in_h * in->in_w, out);
    lp_free(g);
    return rc;
}

/* ---- baselines and quadrature ---------------------------------------------- */

/* The baseline x'[n, C, H, W] of each image (integrated gradients, DeepLIFT). */
static int make_baseline(const char *fn, const lp_model *m, const float *x, int n,
                         const lp_explain_options *o, float *base)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t hw = (size_t)in->in_h * in->in_w, per = per_image(m);
    switch (o->baseline) {
    case LP_BASELINE_ZERO:
        memset(base, 0, (size_t)n * per * sizeof(float));
        return LP_OK;
    case LP_BASELINE_BLACK:
        for (int b = 0; b < n; b++)
            for (int c = 0; c < in->in_c; c++) {
                float sd = in->std[c] != 0.0f ? in->std[c] : 1.0f;
                float v = (0.0f - in->mean[c]) / sd;
                float *p = base + (size_t)b * per + (size_t)c * hw;
                for (size_t i = 0; i < hw; i++)
                    p[i] = v;
            }
        return LP_OK;
    case LP_BASELINE_BLUR:
        return lp_blur_gaussian(base, x, n * in->in_c, in->in_h, in->in_w, o->blur_sigma);
    case LP_BASELINE_UNIFORM: {
        lp_rng r = lp_rng_seed(o->seed);
        for (int b = 0; b < n; b++) {
            const float *xb = x + (size_t)b * per;
            float lo = xb[0], hi = xb[0];
            for (size_t i = 1; i < per; i++) {
                if (xb[i] < lo) lo = xb[i];
                if (xb[i] > hi) hi = xb[i];
            }
            for (size_t i = 0; i < per; i++)
                base[(size_t)b * per + i] =
                    (float)((double)lo + ((double)hi - lo) * lp_rng_uniform(&r));
        }
        return LP_OK;
    }
    case LP_BASELINE_USER:
        if (o->baseline_data == NULL)
            return lp_set_error(LP_EINVAL, "%s: baseline 'user' needs options.baseline_data [C,H,W]",
                                fn);
        for (int b = 0; b < n; b++)
            memcpy(base + (size_t)b * per, o->baseline_data, per * sizeof(float));
        return LP_OK;
    }
    return lp_set_error(LP_EINVAL, "%s: unknown baseline kind %d", fn, (int)o->baseline);
}

/* Gauss-Legendre nodes and weights of order k on [-1, 1] by Newton's
 * iteration on the three-term recurrence of P_k, mapped to [0, 1]
 * (alpha ascending, weights summing to 1) — the rule Captum's default
 * "gausslegendre" takes from numpy.polynomial.legendre.leggauss. */
static void gauss_legendre(int k, double *alpha, double *w)
{
    for (int i = 0; i < (k + 1) / 2; i++) {
        double z = cos(GR_PI * (i + 0.75) / (k + 0.5)), pp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p1 = 1.0, p2 = 0.0, dz;
            for (int j = 1; j <= k; j++) {
                double p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
            }
            pp = k * (z * p1 - p2) / (z * z - 1.0);
            dz = p1 / pp;
            z -= dz;
            if (fabs(dz) < 1e-15)
                break;
        }
        {
            double wt = 1.0 / ((1.0 - z * z) * pp * pp); /* 2/(..) on [-1,1], halved */
            /* z > 0 is the i-th largest node: alpha (1 + z)/2 from the top */
            alpha[k - 1 - i] = 0.5 * (1.0 + z);
            alpha[i] = 0.5 * (1.0 - z);
            w[i] = w[k - 1 - i] = wt;
        }
    }
}

/* Nodes alpha[k] in [0, 1] and weights w[k] (summing to 1) of the path
 * integral's quadrature, as Captum's approximation_methods. */
static int quadrature(const char *fn, lp_quadrature q, int k, double *alpha, double *w)
{
    switch (q) {
    case LP_RIEMANN_LEFT:
    case LP_RIEMANN_RIGHT:
    case LP_RIEMANN_MIDDLE: {
        double off = q == LP_RIEMANN_LEFT ? 0.0 : q == LP_RIEMANN_RIGHT ? 1.0 : 0.5;
        for (int i = 0; i < k; i++) {
            alpha[i] = (i + off) / k;
            w[i] = 1.0 / k;
        }
        return LP_OK;
    }
    case LP_RIEMANN_TRAPEZOID:
        if (k < 2)
            return lp_set_error(LP_EINVAL, "%s: the trapezoid rule needs steps >= 2", fn);
        for (int i = 0; i < k; i++) {
            alpha[i] = (double)i / (k - 1);
            w[i] = (i == 0 || i == k - 1 ? 0.5 : 1.0) / (k - 1);
        }
        return LP_OK;
    case LP_GAUSS_LEGENDRE:
        gauss_legendre(k, alpha, w);
        return LP_OK;
    }
    return lp_set_error(LP_EINVAL, "%s: unknown quadrature %d", fn, (int)q);
}

/* ---- integrated gradients ----------------------------------------------- */

/* Integrated gradients (Sundararajan et al. 2017, eq. 1 and its Riemann
 * approximation eq. 3): IG_i = (x_i - x'_i) * int_0^1 dS(x' + a (x - x'))/dx_i da,
 * the integral by o->quadrature with o->steps nodes (Captum's rules);
 * the map is the channel sum, so sum(map) ~ S(x) - S(x') (completeness,
 * whose residual goes to rep->completeness_gap). */
int lp_integrated_gradients(lp_model *m, const float *x, int n, const int *classes,
                            const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    static const char fn[] = "lp_integrated_gradients";
    const lp_model_info *in;
    lp_explain_report dummy;
    size_t per, hw;
    int batch, steps, rc;
    long total;
    float *base = NULL, *xin = NULL, *g = NULL, *sx = NULL, *sb = NULL;
    double *alpha = NULL, *w = NULL, *avg = NULL;
    int *cls = NULL;

    LP_TRY(check_args(fn, m, x, n, classes, o, out));
    if (o->steps < 1)
        return lp_set_error(LP_EINVAL, "%s: steps must be >= 1 (got %d)", fn, o->steps);
    rep = report_or(rep, &dummy);
    in = lp_model_get_info(m);
    per = per_image(m);
    hw = (size_t)in->in_h * in->in_w;
    steps = o->steps;
    batch = batch_of(o);
    if ((long)n * steps < batch)
        batch = n * steps;
    total = (long)n * steps;

    base = lp_alloc((size_t)n * per, sizeof(float));
    xin = lp_alloc((size_t)batch * per, sizeof(float));
    g = lp_alloc((size_t)batch * per, sizeof(float));
    sx = lp_alloc((size_t)n, sizeof(float));
    sb = lp_alloc((size_t)n, sizeof(float));
    alpha = lp_alloc((size_t)steps, sizeof(double));
    w = lp_alloc((size_t)steps, sizeof(double));
    avg = lp_calloc((size_t)n * per, sizeof(double));
    cls = lp_alloc((size_t)batch, sizeof(int));
    rc = (base && xin && g && sx && sb && alpha && w && avg && cls)
             ? LP_OK : lp_set_error(LP_ENOMEM, "%s: out of memory", fn);
    if (rc == LP_OK)
        rc = quadrature(fn, o->quadrature, steps, alpha, w);
    if (rc == LP_OK)
        rc = make_baseline(fn, m, x, n, o, base);

    /* the path points, image-major, o->batch per pass */
    for (long t0 = 0; rc == LP_OK && t0 < total; t0 += batch) {
        int c = total - t0 < batch ? (int)(total - t0) : batch;
        for (int j = 0; j < c; j++) {
            long t = t0 + j;
            int b = (int)(t / steps), k = (int)(t % steps);
            const float *xb = x + (size_t)b * per, *bb = base + (size_t)b * per;
            float a = (float)alpha[k];
            float *dst = xin + (size_t)j * per;
            for (size_t i = 0; i < per; i++)
                dst[i] = bb[i] + a * (xb[i] - bb[i]);
            cls[j] = classes[b];
        }
        rc = lp_target_gradient(m, xin, c, cls, o->score, NULL, g);
        if (rc != LP_OK)
            break;
        rep->forwards += c;
        rep->backwards += c;
        for (int j = 0; j < c; j++) {
            long t = t0 + j;
            int b = (int)(t / steps), k = (int)(t % steps);
            double wk = w[k];
            double *acc = avg + (size_t)b * per;
            const float *gj = g + (size_t)j * per;
            for (size_t i = 0; i < per; i++)
                acc[i] += wk * gj[i];
        }
        progress(o, t0 + c, total + 2L * n);
    }
    /* S(x) and S(x') for the completeness check */
    if (rc == LP_OK)
        rc = lp_target_forward(m, x, n, o->batch, classes, o->score, sx);
    if (rc == LP_OK)
        rc = lp_target_forward(m, base, n, o->batch, classes, o->score, sb);
    if (rc == LP_OK) {
        double gap = 0.0, mx = 0.0, mb = 0.0;
        rep->forwards += 2L * n;
        reduce_sum_product(x, base, NULL, avg, n, in->in_c, hw, out);
        for (int b = 0; b < n; b++) {
            double s = 0.0;
            for (size_t p = 0; p < hw; p++)
                s += out[(size_t)b * hw + p];
            gap += s - ((double)sx[b] - sb[b]);
            mx += sx[b];
            mb += sb[b];
        }
        rep->completeness_gap = gap / n;
        rep->score_x = mx / n;
        rep->score_baseline = mb / n;
        progress(o, total + 2L * n, total + 2L * n);
    }
    lp_free(base); lp_free(xin); lp_free(g); lp_free(sx); lp_free(sb);
    lp_free(alpha); lp_free(w); lp_free(avg); lp_free(cls);
    return rc;
}

/* ---- SmoothGrad, VarGrad, SquareGrad ------------------------------------ */

enum { SG_MEAN, SG_VAR, SG_SQUARE };

/* Statistics of the input gradient over o->samples noisy copies
 * x + N(0, sigma^2), sigma = o->noise * (max(x_b) - min(x_b)) per image
 * (the SmoothGrad paper's "noise level" relative to the input range).
 * SG_MEAN: mean g; SG_VAR: mean g^2 - (mean g)^2; SG_SQUARE: mean g^2;
 * then the maximum over channels of |.| into out[n, H, W]. */
static int noise_tunnel(const char *fn, int what, lp_model *m, const float *x, int n,
                        const int *classes, const lp_explain_options *o, float *out,
                        lp_explain_report *rep)
{
    const lp_model_info *in;
    lp_explain_report dummy;
    size_t per, hw;
    int batch, S, rc;
    long total;
    float *xin = NULL, *g = NULL, *stat = NULL;
    double *sum = NULL, *sq = NULL, *sigma = NULL;
    int *cls = NULL;
    lp_rng r;

    LP_TRY(check_args(fn, m, x, n, classes, o, out));
    if (o->samples < 1)
        return lp_set_error(LP_EINVAL, "%s: samples must be >= 1 (got %d)", fn, o->samples);
    if (!(o->noise >= 0.0f) || !isfinite(o->noise))
        return lp_set_error(LP_EINVAL, "%s: noise must be a finite value >= 0 (got %g)", fn,
                            (double)o->noise);
    rep = report_or(rep, &dummy);
    in = lp_model_get_info(m);
    per = per_image(m);
    hw = (size_t)in->in_h * in->in_w;
    S = o->samples;
    batch = batch_of(o);
    if ((long)n * S < batch)
        batch = n * S;
    total = (long)n * S;
    r = lp_rng_seed(o->seed);

    xin = lp_alloc((size_t)batch * per, sizeof(float));
    g = lp_alloc((size_t)batch * per, sizeof(float));
    stat = lp_alloc((size_t)n * per, sizeof(float));
    sum = lp_calloc((size_t)n * per, sizeof(double));
    sq = lp_calloc((size_t)n * per, sizeof(double));
    sigma = lp_alloc((size_t)n, sizeof(double));
    cls = lp_alloc((size_t)batch, sizeof(int));
    rc = (xin && g && stat && sum && sq && sigma && cls)
             ? LP_OK : lp_set_error(LP_ENOMEM, "%s: out of memory", fn);
    for (int b = 0; rc == LP_OK && b < n; b++) {
        const float *xb = x + (size_t)b * per;
        float lo = xb[0], hi = xb[0];
        for (size_t i = 1; i < per; i++) {
            if (xb[i] < lo) lo = xb[i];
            if (xb[i] > hi) hi = xb[i];
        }
        sigma[b] = (double)o->noise * ((double)hi - lo);
    }
    for (long t0 = 0; rc == LP_OK && t0 < total; t0 += batch) {
        int c = total - t0 < batch ? (int)(total - t0) : batch;
        for (int j = 0; j < c; j++) {
            int b = (int)((t0 + j) / S);
            const float *xb = x + (size_t)b * per;
            float *dst = xin + (size_t)j * per;
            for (size_t i = 0; i < per; i++)
                dst[i] = xb[i] + (float)(sigma[b] * lp_rng_normal(&r));
            cls[j] = classes[b];
        }
        rc = lp_target_gradient(m, xin, c, cls, o->score, NULL, g);
        if (rc != LP_OK)
            break;
        rep->forwards += c;
        rep->backwards += c;
        for (int j = 0; j < c; j++) {
            int b = (int)((t0 + j) / S);
            const float *gj = g + (size_t)j * per;
            double *s1 = sum + (size_t)b * per, *s2 = sq + (size_t)b * per;
            for (size_t i = 0; i < per; i++) {
                s1[i] += gj[i];
                s2[i] += (double)gj[i] * gj[i];
            }
        }
        progress(o, t0 + c, total);
    }
    if (rc == LP_OK) {
        for (size_t i = 0; i < (size_t)n * per; i++) {
            double mean = sum[i] / S, m2 = sq[i] / S, v;
            if (what == SG_MEAN)
                v = mean;
            else if (what == SG_SQUARE)
                v = m2;
            else
                v = m2 - mean * mean > 0.0 ? m2 - mean * mean : 0.0;
            stat[i] = (float)v;
        }
        reduce_max_abs(stat, n, in->in_c, hw, out);
    }
    lp_free(xin); lp_free(g); lp_free(stat); lp_free(sum); lp_free(sq);
    lp_free(sigma); lp_free(cls);
    return rc;
}

/* SmoothGrad (Smilkov et al. 2017, eq. 3): mean of the gradients of
 * noisy copies; map = max over channels of |mean gradient|. */
int lp_smoothgrad(lp_model *m, const float *x, int n, const int *classes,
                  const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return noise_tunnel("lp_smoothgrad", SG_MEAN, m, x, n, classes, o, out, rep);
}

/* VarGrad (Adebayo et al. 2018, "Local explanation methods for deep
 * neural networks lack sensitivity to parameter values"): variance (1/N)
 * of the noisy gradients; map = max over channels. */
int lp_vargrad(lp_model *m, const float *x, int n, const int *classes,
               const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return noise_tunnel("lp_vargrad", SG_VAR, m, x, n, classes, o, out, rep);
}

/* SquareGrad (Hooker et al. 2019, "A benchmark for interpretability
 * methods", SG-SQ): mean of the squared noisy gradients; map = max over
 * channels. */
int lp_squaregrad(lp_model *m, const float *x, int n, const int *classes,
                  const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return noise_tunnel("lp_squaregrad", SG_SQUARE, m, x, n, classes, o, out, rep);
}

/* ---- guided backprop and DeconvNet ------------------------------------- */

/* Guided backprop ReLU (Springenberg et al. 2015, fig. 1):
 * dx += [x > 0] [dy > 0] dy. */
static int rule_guided(const lp_backward_args *a, void *user)
{
    (void)user;
    if (a->dx == NULL)
        return LP_OK;
    for (size_t i = 0; i < a->y_count; i++)
        if (a->x[i] > 0.0f && a->dy[i] > 0.0f)
            a->dx[i] += a->dy[i];
    return LP_OK;
}

/* DeconvNet ReLU (Zeiler & Fergus 2014, sec. 2.1): the ReLU acts on the
 * signal going down, dx += [dy > 0] dy, whatever x was. */
static int rule_deconv(const lp_backward_args *a, void *user)
{
    (void)user;
    if (a->dx == NULL)
        return LP_OK;
    for (size_t i = 0; i < a->y_count; i++)
        if (a->dy[i] > 0.0f)
            a->dx[i] += a->dy[i];
    return LP_OK;
}

/* Input gradients with every ReLU's backward replaced by `rule`, restored
 * afterwards (also on error); map = max over channels of |g|. */
static int relu_rule_map(const char *fn, const char *what, lp_backward_rule rule,
                         lp_model *m, const float *x, int n, const int *classes,
                         const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    lp_explain_report dummy;
    float *g;
    int rc;
    LP_TRY(check_args(fn, m, x, n, classes, o, out));
    in = lp_model_get_info(m);
    if (lp_model_match_layers(m, "kind:relu", NULL, 0) == 0)
        return lp_set_error(LP_EINVAL, "%s: %s is defined on ReLU layers and this model has none",
                            fn, what);
    g = lp_alloc((size_t)n * per_image(m), sizeof(float));
    if (g == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory", fn);
    rc = lp_model_set_backward_rule(m, "kind:relu", rule, NULL);
    if (rc >= 0) {
        rc = input_gradients(m, x, n, classes, o, NULL, g, report_or(rep, &dummy));
        (void)lp_model_set_backward_rule(m, "kind:relu", NULL, NULL);
    }
    if (rc == LP_OK)
        reduce_max_abs(g, n, in->in_c, (size_t)in->in_h * in->in_w, out);
    lp_free(g);
    return rc;
}

/* Guided backpropagation (Springenberg et al. 2015, "Striving for
 * simplicity", sec. 3.4): the input gradient with each ReLU passing only
 * positive gradient where its input was positive; map = max_c |g|. */
int lp_guided_backprop(lp_model *m, const float *x, int n, const int *classes,
                       const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return relu_rule_map("lp_guided_backprop", "guided backprop", rule_guided, m, x, n,
                         classes, o, out, rep);
}

/* DeconvNet (Zeiler & Fergus 2014) as a backward rule: ReLUs rectify the
 * gradient instead of masking it by the forward input; map = max_c |g|. */
int lp_deconvnet(lp_model *m, const float *x, int n, const int *classes,
                 const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return relu_rule_map("lp_deconvnet", "deconvnet", rule_deconv, m, x, n, classes, o,
                         out, rep);
}

/* ---- DeepLIFT --------------------------------------------------------------- */

#define DL_EPS 1e-7f

/* DeepLIFT's rescale rule (Shrikumar et al. 2017, sec. 3.3 and eq. 6):
 * the pass runs on [x ; x'] (2h images); the first half's multiplier is
 * m = (y - y') / (x - x') where |x - x'| > 1e-7, else the ordinary
 * derivative at x (ReLU: [x > 0]; GELU: Phi(x) + x phi(x), the erf form).
 * Nothing flows to the baseline half (its dy is zero). */
static int rule_rescale(const lp_backward_args *a, void *user)
{
    int gelu = *(const int *)user;
    size_t per, half;
    if (a->dx == NULL)
        return LP_OK;
    per = a->y_count / (size_t)a->n;
    half = (size_t)(a->n / 2) * per;
    for (size_t i = 0; i < half; i++) {
        float xa = a->x[i], xr = a->x[i + half], d = xa - xr, mult;
        if (a->dy[i] == 0.0f)
            continue;
        if (fabsf(d) > DL_EPS)
            mult = (a->y[i] - a->y[i + half]) / d;
        else if (gelu)
            mult = (float)(0.5 * (1.0 + erf(xa * GR_SQRT1_2)) +
                           xa * exp(-0.5 * (double)xa * xa) * 0.3989422804014327);
        else
            mult = xa > 0.0f ? 1.0f : 0.0f;
        a->dx[i] += a->dy[i] * mult;
    }
    return LP_OK;
}

/* DeepLIFT with the rescale rule (Shrikumar et al. 2017; Captum DeepLift):
 * multipliers m = d_DL S / d x against the baseline x' (o->baseline, as
 * for IG), map = sum_c (x - x') * m. Linear layers (conv, BN, linear,
 * add, average pools) keep their gradients, which is exact for them; ReLU
 * and GELU use the rescale rule; other nonlinearities (max-pool, softmax
 * inside attention, layer norm) keep their gradient at x, so summation-
 * to-delta, sum(map) = S(x) - S(x'), is exact only for networks built of
 * linear layers and ReLU/GELU (the CIFAR ResNets; not ResNet-50's
 * max-pool, as Captum warns, nor ViTs). */
int lp_deeplift(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    static const char fn[] = "lp_deeplift";
    static const int kind_relu = 0, kind_gelu = 1;
    const lp_model_info *in;
    lp_explain_report dummy;
    size_t per, hw;
    int h, k, rc, set_relu = 0, set_gelu = 0;
    float *base = NULL, *xin = NULL, *g = NULL, *logits = NULL, *dlog = NULL;
    float *sc = NULL, *sx = NULL, *sb = NULL;
    int *cls = NULL;
    lp_target t = {0, LP_SCORE_LOGIT, -1};

    LP_TRY(check_args(fn, m, x, n, classes, o, out));
    rep = report_or(rep, &dummy);
    in = lp_model_get_info(m);
    per = per_image(m);
    hw = (size_t)in->in_h * in->in_w;
    k = in->out_dim;
    t.score = o->score;
    h = batch_of(o) / 2; /* images per pass: each travels with its baseline */
    if (h < 1) h = 1;
    if (h > n) h = n;

    base = lp_alloc((size_t)n * per, sizeof(float));
    xin = lp_alloc((size_t)2 * h * per, sizeof(float));
    g = lp_alloc((size_t)2 * h * per, sizeof(float));
    logits = lp_alloc((size_t)2 * h * k, sizeof(float));
    dlog = lp_alloc((size_t)2 * h * k, sizeof(float));
    sc = lp_alloc((size_t)2 * h, sizeof(float));
    sx = lp_alloc((size_t)n, sizeof(float));
    sb = lp_alloc((size_t)n, sizeof(float));
    cls = lp_alloc((size_t)2 * h, sizeof(int));
    rc = (base && xin && g && logits && dlog && sc && sx && sb && cls)
             ? LP_OK : lp_set_error(LP_ENOMEM, "%s: out of memory", fn);
    if (rc == LP_OK)
        rc = make_baseline(fn, m, x, n, o, base);
    if (rc == LP_OK && lp_model_match_layers(m, "kind:relu", NULL, 0) > 0) {
        rc = lp_model_set_backward_rule(m, "kind:relu", rule_rescale, (void *)&kind_relu);
        set_relu = rc > 0;
        rc = rc > 0 ? LP_OK : rc;
    }
    if (rc == LP_OK && lp_model_match_layers(m, "kind:gelu", NULL, 0) > 0) {
        rc = lp_model_set_backward_rule(m, "kind:gelu", rule_rescale, (void *)&kind_gelu);
        set_gelu = rc > 0;
        rc = rc > 0 ? LP_OK : rc;
    }
    for (int s = 0; rc == LP_OK && s < n; s += h) {
        int c = n - s < h ? n - s : h;
        memcpy(xin, x + (size_t)s * per, (size_t)c * per * sizeof(float));
        memcpy(xin + (size_t)c * per, base + (size_t)s * per, (size_t)c * per * sizeof(float));
        for (int j = 0; j < c; j++)
            cls[j] = cls[c + j] = classes[s + j];
        rc = lp_model_forward(m, xin, 2 * c, logits, LP_RUN_GRAD);
        if (rc == LP_OK)
            rc = lp_target_score(&t, logits, 2 * c, k, cls, sc, dlog);
        if (rc != LP_OK)
            break;
        memset(dlog + (size_t)c * k, 0, (size_t)c * k * sizeof(float));
        rc = lp_model_backward(m, dlog, g);
        if (rc != LP_OK)
            break;
        rep->forwards += 2L * c;
        rep->backwards += 2L * c;
        reduce_sum_product(x + (size_t)s * per, base + (size_t)s * per, g, NULL, c, in->in_c,
                           hw, out + (size_t)s * hw);
        for (int j = 0; j < c; j++) {
            sx[s + j] = sc[j];
            sb[s + j] = sc[c + j];
        }
        progress(o, s + c, n);
    }
    if (set_relu)
        (void)lp_model_set_backward_rule(m, "kind:relu", NULL, NULL);
    if (set_gelu)
        (void)lp_model_set_backward_rule(m, "kind:gelu", NULL, NULL);
    if (rc == LP_OK) {
        double gap = 0.0, mx = 0.0, mb = 0.0;
        for (int b = 0; b < n; b++) {
            double sum = 0.0;
            for (size_t p = 0; p < hw; p++)
                sum += out[(size_t)b * hw + p];
            gap += sum - ((double)sx[b] - sb[b]);
            mx += sx[b];
            mb += sb[b];
        }
        rep->completeness_gap = gap / n;
        rep->score_x = mx / n;
        rep->score_baseline = mb / n;
    }
    lp_free(base); lp_free(xin); lp_free(g); lp_free(logits); lp_free(dlog);
    lp_free(sc); lp_free(sx); lp_free(sb); lp_free(cls);
    return rc;
}
