/*
 * surrogate.c — attributions by fitting a linear surrogate on switched-off
 * super-pixels: LIME (Ribeiro et al. 2016) and KernelSHAP (Lundberg & Lee
 * 2017). The features are each image's quick shift super-pixels
 * (segment.c, with Xplique's kernel 2, max distance 10, ratio 0.5: the
 * segmentation of lime_image and Xplique), or with --segments grid a
 * regular g x g lattice (g = o->grid, default 8). An "off" feature is 0
 * in normalised space (the mean colour) on all channels. Each returns the
 * weight of a feature painted on its pixels.
 */
#include "internal.h"
#include "perturb_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Cholesky solve of the SPD system A[n,n] b = r (A, r overwritten; the
 * solution lands in r). If A is not positive definite, retries with a
 * jitter of 1e-10 .. 1e-4 times the mean diagonal. */
static int spd_solve(double *A, double *r, int n)
{
    double *Lm = lp_alloc((size_t)n * n, sizeof(double)), md = 0.0;
    if (Lm == NULL)
        return LP_ENOMEM;
    for (int i = 0; i < n; i++)
        md += A[(size_t)i * n + i];
    md = md > 0.0 ? md / n : 1.0;
    for (double jit = 0.0; jit <= 1e-4 * md; jit = jit == 0.0 ? 1e-10 * md : jit * 100.0) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++)
            for (int j = 0; j <= i; j++) {
                double s = A[(size_t)i * n + j] + (i == j ? jit : 0.0);
                for (int k = 0; k < j; k++)
                    s -= Lm[(size_t)i * n + k] * Lm[(size_t)j * n + k];
                if (i == j) {
                    if (!(s > 0.0)) {
                        ok = 0;
                        break;
                    }
                    Lm[(size_t)i * n + i] = sqrt(s);
                } else {
                    Lm[(size_t)i * n + j] = s / Lm[(size_t)j * n + j];
                }
            }
        if (!ok)
            continue;
        for (int i = 0; i < n; i++) { /* L y = r */
            double s = r[i];
            for (int k = 0; k < i; k++)
                s -= Lm[(size_t)i * n + k] * r[k];
            r[i] = s / Lm[(size_t)i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) { /* L^T b = y */
            double s = r[i];
            for (int k = i + 1; k < n; k++)
                s -= Lm[(size_t)k * n + i] * r[k];
            r[i] = s / Lm[(size_t)i * n + i];
        }
        lp_free(Lm);
        return LP_OK;
    }
    lp_free(Lm);
    return lp_set_error(LP_EINVAL, "surrogate: the regression system is singular");
}

typedef struct {
    int C, H, W, F;
    size_t per, hw;
    int *cell; /* [H*W] the feature of each pixel */
} grid_map;

/* The features of image xb (normalised [C, H, W]): its quick shift
 * super-pixels, computed on the image de-normalised to [0, 1], or the
 * cells of a g x g grid. gm->cell is allocated here. */
static int features_of(const lp_model *m, const lp_explain_options *o, const char *who,
                       const float *xb, grid_map *gm)
{
    const lp_model_info *in = lp_model_get_info(m);
    gm->C = in->in_c; gm->H = in->in_h; gm->W = in->in_w;
    gm->hw = (size_t)gm->H * gm->W;
    gm->per = gm->hw * gm->C;
    if (o->segments == LP_SEGMENTS_QUICKSHIFT) {
        float *rgb;
        int rc;
        if (gm->C != 1 && gm->C != 3)
            return lp_set_error(LP_EINVAL, "%s: quick shift needs 1 or 3 channels (not %d); "
                                "use --segments grid", who, gm->C);
        rgb = lp_alloc(gm->per, sizeof(float));
        gm->cell = lp_alloc(gm->hw, sizeof(int));
        if (rgb == NULL || gm->cell == NULL) {
            lp_free(rgb);
            return LP_ENOMEM;
        }
        for (int q = 0; q < gm->C; q++)
            for (size_t i = 0; i < gm->hw; i++)
                rgb[(size_t)q * gm->hw + i] = xb[(size_t)q * gm->hw + i] * in->std[q] + in->mean[q];
        rc = lp_quickshift(rgb, gm->C, gm->H, gm->W, o->qs_kernel, o->qs_max_dist, o->qs_ratio,
                           gm->cell, &gm->F);
        lp_free(rgb);
        if (rc != LP_OK)
            return lp_set_error(rc, "%s: %s", who, lp_last_error());
        return LP_OK;
    }
    {
        int g = o->grid > 0 ? o->grid : 8;
        if (o->grid < 0)
            return lp_set_error(LP_EINVAL, "%s: grid %d must be >= 1", who, o->grid);
        if (g > gm->H || g > gm->W)
            return lp_set_error(LP_EINVAL, "%s: grid %d larger than the %dx%d input", who, g,
                                gm->H, gm->W);
        gm->F = g * g;
        gm->cell = lp_alloc(gm->hw, sizeof(int));
        if (gm->cell == NULL)
            return LP_ENOMEM;
        /* cell row = floor(y g / H): the cells of a nearest upsampling */
        for (int y = 0; y < gm->H; y++)
            for (int x = 0; x < gm->W; x++)
                gm->cell[(size_t)y * gm->W + x] = (int)((long)y * g / gm->H) * g +
                                                  (int)((long)x * g / gm->W);
    }
    return LP_OK;
}

static void apply_coalition(const grid_map *gm, const float *xb, const unsigned char *z,
                            float *dst)
{
    for (int q = 0; q < gm->C; q++)
        for (size_t i = 0; i < gm->hw; i++)
            dst[(size_t)q * gm->hw + i] = z[gm->cell[i]] ? xb[(size_t)q * gm->hw + i] : 0.0f;
}

/* Scores of S coalitions z[S, F] for one image, in chunks of o->batch. */
static int eval_coalitions(lp_model *m, const grid_map *gm, const float *xb,
                           const unsigned char *z, int S, int cls,
                           const lp_explain_options *o, float *buf, float *sc,
                           lp_explain_report *rep, long *done, long total)
{
    int bs = o->batch > 0 ? o->batch : 32, rc = LP_OK;
    for (int s0 = 0; s0 < S && rc == LP_OK; s0 += bs) {
        int c = S - s0 < bs ? S - s0 : bs;
        for (int j = 0; j < c; j++)
            apply_coalition(gm, xb, z + (size_t)(s0 + j) * gm->F, buf + (size_t)j * gm->per);
        rc = lp__perturb_forward(m, buf, c, cls, o, sc + s0, rep, done, total);
    }
    return rc;
}

static void paint(const grid_map *gm, const double *w, float *ob)
{
    for (size_t i = 0; i < gm->hw; i++)
        ob[i] = (float)w[gm->cell[i]];
}

/* ---- LIME -----------------------------------------------------------------
 *
 * S samples (default 150, Xplique's nb_samples); sample 0 is the image
 * itself (all features on, as the original lime_image), the others switch
 * each feature on with probability 0.5 (seeded: the same draws for every
 * image with the same number of features). Weights: the original
 * lime_image kernel, sqrt(exp(-d^2 / 0.25^2)) with d the cosine distance
 * between z and the all-on vector (Xplique uses an exponential kernel of
 * width 45 on a Euclidean distance, Captum width 1 on cosine). Fit: ridge
 * with alpha = 1 and an unpenalised intercept (sklearn Ridge, the original
 * lime_base default; Xplique uses alpha = 2) on the weighted-centred data,
 * solved by Cholesky. S forwards per image. */

/* One image: its features, S coalitions, the fit, the painted map ob. */
static int lime_image(lp_model *m, const float *xb, int cls, int S,
                      const lp_explain_options *o, float *buf, float *sc, float *ob,
                      lp_explain_report *rep, long *done, long total)
{
    grid_map gm = {0};
    int F, rc;
    unsigned char *z = NULL;
    double *wt = NULL, *A = NULL, *r = NULL, *zm = NULL, sw = 0.0, ym = 0.0;
    LP_TRY(features_of(m, o, "lime", xb, &gm));
    F = gm.F;
    z = lp_alloc((size_t)S * F, 1);
    wt = lp_alloc((size_t)S, sizeof(double));
    A = lp_alloc((size_t)F * F, sizeof(double));
    r = lp_alloc((size_t)F, sizeof(double));
    zm = lp_alloc((size_t)F, sizeof(double));
    if (!z || !wt || !A || !r || !zm) {
        rc = LP_ENOMEM;
        goto done;
    }
    {
        lp_rng rg = lp_rng_seed(o->seed);
        for (int s = 0; s < S; s++) {
            int on = 0;
            for (int f = 0; f < F; f++) {
                z[(size_t)s * F + f] = s == 0 ? 1 : (lp_rng_uniform(&rg) < 0.5 ? 1 : 0);
                on += z[(size_t)s * F + f];
            }
            /* cosine distance to all-ones: 1 - on / (sqrt(on) sqrt(F)) */
            double dd = on > 0 ? 1.0 - sqrt((double)on) / sqrt((double)F) : 1.0;
            wt[s] = sqrt(exp(-dd * dd / (0.25 * 0.25)));
        }
    }
    rc = eval_coalitions(m, &gm, xb, z, S, cls, o, buf, sc, rep, done, total);
    if (rc != LP_OK)
        goto done;
    memset(zm, 0, (size_t)F * sizeof(double));
    for (int s = 0; s < S; s++) {
        sw += wt[s];
        ym += wt[s] * sc[s];
        for (int f = 0; f < F; f++)
            zm[f] += wt[s] * z[(size_t)s * F + f];
    }
    ym /= sw;
    for (int f = 0; f < F; f++)
        zm[f] /= sw;
    memset(A, 0, (size_t)F * F * sizeof(double));
    memset(r, 0, (size_t)F * sizeof(double));
    for (int s = 0; s < S; s++) {
        const unsigned char *zs = z + (size_t)s * F;
        double yc = sc[s] - ym;
        for (int i = 0; i < F; i++) {
            double zi = zs[i] - zm[i];
            r[i] += wt[s] * zi * yc;
            for (int j = 0; j <= i; j++)
                A[(size_t)i * F + j] += wt[s] * zi * (zs[j] - zm[j]);
        }
    }
    for (int i = 0; i < F; i++) {
        A[(size_t)i * F + i] += 1.0; /* ridge alpha = 1 */
        for (int j = 0; j < i; j++)
            A[(size_t)j * F + i] = A[(size_t)i * F + j];
    }
    rc = spd_solve(A, r, F);
    if (rc == LP_OK)
        paint(&gm, r, ob);
done:
    lp_free(gm.cell); lp_free(z); lp_free(wt); lp_free(A); lp_free(r); lp_free(zm);
    return rc;
}

int lp_lime(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    int S, rc = LP_OK;
    long done = 0, total;
    size_t per, hw;
    float *buf = NULL, *sc = NULL;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "lime: bad argument");
    S = o->lime_samples > 0 ? o->lime_samples : 150;
    if (o->lime_samples < 0 || S < 2)
        return lp_set_error(LP_EINVAL, "lime: samples must be >= 2 (got %d)", o->lime_samples);
    in = lp_model_get_info(m);
    hw = (size_t)in->in_h * in->in_w;
    per = hw * in->in_c;
    total = (long)n * S;
    buf = lp_alloc((size_t)(o->batch > 0 ? o->batch : 32) * per, sizeof(float));
    sc = lp_alloc((size_t)S, sizeof(float));
    if (!buf || !sc)
        rc = LP_ENOMEM;
    for (int b = 0; b < n && rc == LP_OK; b++)
        rc = lime_image(m, x + (size_t)b * per, classes[b], S, o, buf, sc, out + (size_t)b * hw,
                        rep, &done, total);
    lp_free(buf); lp_free(sc);
    return rc;
}

/* ---- KernelSHAP --------------------------------------------------------------
 *
 * S evaluations per image (default 800): the empty and the full coalition,
 * then S - 2 sampled ones in complementary pairs (z, 1 - z) as the shap
 * package does. The Shapley kernel pi(s) = (F - 1) / (C(F, s) s (F - s))
 * is folded into the sampling: the size s in 1..F-1 is drawn with
 * probability proportional to C(F, s) pi(s) = (F - 1) / (s (F - s)), the
 * members uniformly, and every sample then weighs the same. f(empty) and
 * f(full) (the infinite-weight coalitions) are enforced exactly by
 * eliminating the last feature under the efficiency constraint
 *   sum_j phi_j = f(x) - f(empty),
 * then solving the weighted least squares by Cholesky: the attributions
 * add up to f(x) - f(empty) up to rounding. Same seed, same result. */

/* S coalitions z[S, F] (seeded): empty, full, then complementary pairs. */
static int shap_coalitions(unsigned char *z, int S, int F, uint64_t seed)
{
    lp_rng rg = lp_rng_seed(seed);
    int *perm = lp_alloc((size_t)F, sizeof(int));
    double *cum = lp_alloc((size_t)F, sizeof(double)), c = 0.0;
    if (perm == NULL || cum == NULL) {
        lp_free(perm);
        lp_free(cum);
        return LP_ENOMEM;
    }
    for (int s = 1; s < F; s++) {
        c += (double)(F - 1) / ((double)s * (F - s));
        cum[s] = c;
    }
    memset(z, 0, (size_t)S * F);         /* sample 0: empty */
    memset(z + F, 1, (size_t)F);         /* sample 1: full */
    for (int s = 2; s < S; s += 2) {
        double u = lp_rng_uniform(&rg) * c;
        int size = 1;
        while (size < F - 1 && cum[size] <= u)
            size++;
        for (int f = 0; f < F; f++)
            perm[f] = f;
        for (int k = 0; k < size; k++) { /* partial Fisher-Yates */
            int j = k + (int)(lp_rng_uniform(&rg) * (F - k));
            int t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
            z[(size_t)s * F + perm[k]] = 1;
        }
        for (int f = 0; f < F; f++)
            z[(size_t)(s + 1) * F + f] = (unsigned char)(1 - z[(size_t)s * F + f]);
    }
    lp_free(perm);
    lp_free(cum);
    return LP_OK;
}

static int shap_image(lp_model *m, const float *xb, int cls, int S0,
                      const lp_explain_options *o, float *buf, float *sc, float *ob,
                      lp_explain_report *rep, long *done, long total)
{
    grid_map gm = {0};
    int S, F, P, rc;
    unsigned char *z = NULL;
    double *A = NULL, *r = NULL, *phi = NULL, f0, fx, tot, sum = 0.0;
    LP_TRY(features_of(m, o, "kernelshap", xb, &gm));
    F = gm.F;
    P = F - 1; /* unknowns after the elimination */
    if (F < 2 || S0 < F + 2) {
        lp_free(gm.cell);
        if (F < 2)
            return lp_set_error(LP_EINVAL, "kernelshap: the image has %d feature(s); needs >= 2",
                                F);
        return lp_set_error(LP_EINVAL,
                            "kernelshap: %d samples are too few for %d features (need >= %d)",
                            S0, F, F + 2);
    }
    S = 2 + ((S0 - 2) / 2) * 2; /* pairs */
    z = lp_alloc((size_t)S * F, 1);
    A = lp_alloc((size_t)P * P, sizeof(double));
    r = lp_alloc((size_t)P, sizeof(double));
    phi = lp_alloc((size_t)F, sizeof(double));
    if (!z || !A || !r || !phi) {
        rc = LP_ENOMEM;
        goto done;
    }
    if ((rc = shap_coalitions(z, S, F, o->seed)) != LP_OK)
        goto done;
    rc = eval_coalitions(m, &gm, xb, z, S, cls, o, buf, sc, rep, done, total);
    if (rc != LP_OK)
        goto done;
    f0 = sc[0]; fx = sc[1]; tot = fx - f0;
    /* y' = f(z) - f0 - z_last tot = sum_{j<last} phi_j (z_j - z_last) */
    memset(A, 0, (size_t)P * P * sizeof(double));
    memset(r, 0, (size_t)P * sizeof(double));
    for (int s = 2; s < S; s++) {
        const unsigned char *zs = z + (size_t)s * F;
        double zl = zs[F - 1], y = sc[s] - f0 - zl * tot;
        for (int i = 0; i < P; i++) {
            double xi = zs[i] - zl;
            if (xi == 0.0)
                continue;
            r[i] += xi * y;
            for (int j = 0; j <= i; j++)
                A[(size_t)i * P + j] += xi * (zs[j] - zl);
        }
    }
    for (int i = 0; i < P; i++)
        for (int j = 0; j < i; j++)
            A[(size_t)j * P + i] = A[(size_t)i * P + j];
    rc = spd_solve(A, r, P);
    if (rc != LP_OK)
        goto done;
    for (int i = 0; i < P; i++) {
        phi[i] = r[i];
        sum += r[i];
    }
    phi[F - 1] = tot - sum;
    paint(&gm, phi, ob);
done:
    lp_free(gm.cell); lp_free(z); lp_free(A); lp_free(r); lp_free(phi);
    return rc;
}

int lp_kernelshap(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    int S, rc = LP_OK;
    long done = 0, total;
    size_t per, hw;
    float *buf = NULL, *sc = NULL;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "kernelshap: bad argument");
    S = o->lime_samples > 0 ? o->lime_samples : 800;
    if (o->lime_samples < 0)
        return lp_set_error(LP_EINVAL, "kernelshap: samples must be >= 1 (got %d)", o->lime_samples);
    in = lp_model_get_info(m);
    hw = (size_t)in->in_h * in->in_w;
    per = hw * in->in_c;
    total = (long)n * (2 + ((S - 2) / 2) * 2);
    buf = lp_alloc((size_t)(o->batch > 0 ? o->batch : 32) * per, sizeof(float));
    sc = lp_alloc((size_t)S, sizeof(float));
    if (!buf || !sc)
        rc = LP_ENOMEM;
    for (int b = 0; b < n && rc == LP_OK; b++)
        rc = shap_image(m, x + (size_t)b * per, classes[b], S, o, buf, sc, out + (size_t)b * hw,
                        rep, &done, total);
    lp_free(buf); lp_free(sc);
    return rc;
}
