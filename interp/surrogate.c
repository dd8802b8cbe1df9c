/*
 * surrogate.c — attributions by fitting a linear surrogate on switched-off
 * super-pixels: LIME (Ribeiro et al. 2016) and KernelSHAP (Lundberg & Lee
 * 2017). Both replace quickshift super-pixels by a regular g x g grid of
 * cells (g = o->grid, default 8); an "off" cell is 0 in normalised space
 * (the mean colour) on all channels. Each returns the weight of a cell
 * painted on the pixels of that cell.
 */
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
    int C, H, W, g, F;
    size_t per, hw;
    int *cell; /* [H*W] cell index of each pixel */
} grid_map;

static int grid_setup(lp_model *m, const lp_explain_options *o, const char *who,
                      grid_map *gm)
{
    const lp_model_info *in = lp_model_get_info(m);
    gm->C = in->in_c; gm->H = in->in_h; gm->W = in->in_w;
    gm->g = o->grid > 0 ? o->grid : 8;
    if (o->grid < 0)
        return lp_set_error(LP_EINVAL, "%s: grid %d must be >= 1", who, o->grid);
    if (gm->g > gm->H || gm->g > gm->W)
        return lp_set_error(LP_EINVAL, "%s: grid %d larger than the %dx%d input", who,
                            gm->g, gm->H, gm->W);
    gm->F = gm->g * gm->g;
    gm->hw = (size_t)gm->H * gm->W;
    gm->per = gm->hw * gm->C;
    gm->cell = lp_alloc(gm->hw, sizeof(int));
    if (gm->cell == NULL)
        return LP_ENOMEM;
    /* cell row = floor(y g / H): the cells of a nearest upsampling */
    for (int y = 0; y < gm->H; y++)
        for (int x = 0; x < gm->W; x++)
            gm->cell[(size_t)y * gm->W + x] = (int)((long)y * gm->g / gm->H) * gm->g +
                                              (int)((long)x * gm->g / gm->W);
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
 * itself (all cells on, as the original lime_image), the others switch
 * each cell on with probability 0.5 (seeded). Weights: the original
 * lime_image kernel, sqrt(exp(-d^2 / 0.25^2)) with d the cosine distance
 * between z and the all-on vector (Xplique uses an exponential kernel of
 * width 45 on a Euclidean distance, Captum width 1 on cosine). Fit: ridge
 * with alpha = 1 and an unpenalised intercept (sklearn Ridge, the original
 * lime_base default; Xplique uses alpha = 2) on the weighted-centred data,
 * solved by Cholesky. S forwards per image. */
int lp_lime(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    grid_map gm = {0};
    int S, F, rc;
    long done = 0, total;
    unsigned char *z = NULL;
    float *buf = NULL, *sc = NULL;
    double *wt = NULL, *A = NULL, *r = NULL, *zm = NULL;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "lime: bad argument");
    S = o->lime_samples > 0 ? o->lime_samples : 150;
    if (o->lime_samples < 0 || S < 2)
        return lp_set_error(LP_EINVAL, "lime: samples must be >= 2 (got %d)", o->lime_samples);
    rc = grid_setup(m, o, "lime", &gm);
    if (rc != LP_OK)
        return rc;
    F = gm.F;
    total = (long)n * S;
    z = lp_alloc((size_t)S * F, 1);
    buf = lp_alloc((size_t)(o->batch > 0 ? o->batch : 32) * gm.per, sizeof(float));
    sc = lp_alloc((size_t)S, sizeof(float));
    wt = lp_alloc((size_t)S, sizeof(double));
    A = lp_alloc((size_t)F * F, sizeof(double));
    r = lp_alloc((size_t)F, sizeof(double));
    zm = lp_alloc((size_t)F, sizeof(double));
    if (!z || !buf || !sc || !wt || !A || !r || !zm) {
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
    for (int b = 0; b < n && rc == LP_OK; b++) {
        double sw = 0.0, ym = 0.0;
        rc = eval_coalitions(m, &gm, x + (size_t)b * gm.per, z, S, classes[b], o, buf, sc,
                             rep, &done, total);
        if (rc != LP_OK)
            break;
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
            paint(&gm, r, out + (size_t)b * gm.hw);
    }
done:
    lp_free(gm.cell); lp_free(z); lp_free(buf); lp_free(sc); lp_free(wt);
    lp_free(A); lp_free(r); lp_free(zm);
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
int lp_kernelshap(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    grid_map gm = {0};
    int S, F, P, rc;
    long done = 0, total;
    unsigned char *z = NULL;
    float *buf = NULL, *sc = NULL;
    double *A = NULL, *r = NULL, *phi = NULL, *cum = NULL;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "kernelshap: bad argument");
    S = o->lime_samples > 0 ? o->lime_samples : 800;
    if (o->lime_samples < 0)
        return lp_set_error(LP_EINVAL, "kernelshap: samples must be >= 1 (got %d)", o->lime_samples);
    rc = grid_setup(m, o, "kernelshap", &gm);
    if (rc != LP_OK)
        return rc;
    F = gm.F;
    if (F < 2) {
        lp_free(gm.cell);
        return lp_set_error(LP_EINVAL, "kernelshap: needs at least 2 cells (grid >= 2)");
    }
    P = F - 1; /* unknowns after the elimination */
    if (S < F + 2) {
        lp_free(gm.cell);
        return lp_set_error(LP_EINVAL, "kernelshap: %d samples are too few for %d cells (need >= %d)",
                            S, F, F + 2);
    }
    S = 2 + ((S - 2) / 2) * 2; /* pairs */
    total = (long)n * S;
    z = lp_alloc((size_t)S * F, 1);
    buf = lp_alloc((size_t)(o->batch > 0 ? o->batch : 32) * gm.per, sizeof(float));
    sc = lp_alloc((size_t)S, sizeof(float));
    A = lp_alloc((size_t)P * P, sizeof(double));
    r = lp_alloc((size_t)P, sizeof(double));
    phi = lp_alloc((size_t)F, sizeof(double));
    cum = lp_alloc((size_t)F, sizeof(double));
    if (!z || !buf || !sc || !A || !r || !phi || !cum) {
        rc = LP_ENOMEM;
        goto done;
    }
    {
        lp_rng rg = lp_rng_seed(o->seed);
        int *perm = lp_alloc((size_t)F, sizeof(int));
        double c = 0.0;
        if (perm == NULL) {
            rc = LP_ENOMEM;
            goto done;
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
    }
    for (int b = 0; b < n && rc == LP_OK; b++) {
        double f0, fx, tot, sum = 0.0;
        rc = eval_coalitions(m, &gm, x + (size_t)b * gm.per, z, S, classes[b], o, buf, sc,
                             rep, &done, total);
        if (rc != LP_OK)
            break;
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
            break;
        for (int i = 0; i < P; i++) {
            phi[i] = r[i];
            sum += r[i];
        }
        phi[F - 1] = tot - sum;
        paint(&gm, phi, out + (size_t)b * gm.hw);
    }
done:
    lp_free(gm.cell); lp_free(z); lp_free(buf); lp_free(sc); lp_free(A);
    lp_free(r); lp_free(phi); lp_free(cum);
    return rc;
}
