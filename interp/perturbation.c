/*
 * perturbation.c — black-box attributions by masking the input: occlusion
 * (Zeiler & Fergus 2014, Captum's Occlusion semantics) and RISE (Petsiuk et
 * al. 2018, the original code's normalisation). Sobol and HSIC live in
 * sobol.c, LIME and KernelSHAP in surrogate.c; all of them use the chunked
 * forward helper defined here (lp__perturb_forward).
 *
 * Every method builds its perturbed inputs in chunks of at most o->batch
 * images, so memory stays O(batch) whatever the number of masks.
 */
#include "perturb_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lp__perturb_forward(lp_model *m, const float *xs, int c, int cls,
                        const lp_explain_options *o, float *scores,
                        lp_explain_report *rep, long *done, long total)
{
    int *classes = lp_alloc((size_t)c, sizeof(int)), rc;
    if (classes == NULL)
        return LP_ENOMEM;
    for (int i = 0; i < c; i++)
        classes[i] = cls;
    rc = lp_target_forward(m, xs, c, c, classes, o->score, scores);
    lp_free(classes);
    if (rc != LP_OK)
        return rc;
    if (rep)
        rep->forwards += c;
    *done += c;
    if (o->progress)
        o->progress(o->progress_user, *done, total);
    return LP_OK;
}

static int batch_of(const lp_explain_options *o)
{
    return o->batch > 0 ? o->batch : 32;
}

/* ---- occlusion ---------------------------------------------------------
 *
 * Captum's Occlusion: a patch x patch window over all channels slides with
 * the stride from the top-left corner (positions 0, s, 2s, ... while the
 * window fits: floor((H - patch) / s) + 1 per axis); each window is filled
 * with occlusion_value and the drop S(x) - S(x_occluded) is added to every
 * pixel it covers; a pixel's attribution is the mean over the windows that
 * cover it. Pixels no window covers (when (H - patch) % stride != 0) get 0
 * (Captum divides 0 by 0 there). Forwards per image: 1 + positions.
 */
int lp_occlusion(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    int C, H, W, p, s, ny, nx, npos, bs, rc = LP_OK;
    size_t per, hw;
    float *buf = NULL, *sc = NULL, *cnt = NULL;
    long done = 0, total;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "occlusion: bad argument");
    in = lp_model_get_info(m);
    C = in->in_c; H = in->in_h; W = in->in_w;
    p = o->patch; s = o->stride;
    if (p < 1 || s < 1)
        return lp_set_error(LP_EINVAL, "occlusion: patch (%d) and stride (%d) must be >= 1", p, s);
    if (p > H || p > W)
        return lp_set_error(LP_EINVAL, "occlusion: patch %d larger than the %dx%d input", p, H, W);
    ny = (H - p) / s + 1; nx = (W - p) / s + 1; npos = ny * nx;
    per = (size_t)C * H * W; hw = (size_t)H * W;
    bs = batch_of(o);
    total = (long)n * (npos + 1);
    buf = lp_alloc((size_t)bs * per, sizeof(float));
    sc = lp_alloc((size_t)bs, sizeof(float));
    cnt = lp_alloc(hw, sizeof(float));
    if (buf == NULL || sc == NULL || cnt == NULL) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (int b = 0; b < n && rc == LP_OK; b++) {
        const float *xb = x + (size_t)b * per;
        float *ob = out + (size_t)b * hw, base;
        memset(ob, 0, hw * sizeof(float));
        memset(cnt, 0, hw * sizeof(float));
        rc = lp__perturb_forward(m, xb, 1, classes[b], o, &base, rep, &done, total);
        for (int k0 = 0; k0 < npos && rc == LP_OK; k0 += bs) {
            int c = npos - k0 < bs ? npos - k0 : bs;
            for (int j = 0; j < c; j++) {
                int py = (k0 + j) / nx * s, px = (k0 + j) % nx * s;
                float *d = buf + (size_t)j * per;
                memcpy(d, xb, per * sizeof(float));
                for (int ch = 0; ch < C; ch++)
                    for (int yy = py; yy < py + p; yy++)
                        for (int xx = px; xx < px + p; xx++)
                            d[(size_t)ch * hw + (size_t)yy * W + xx] = o->occlusion_value;
            }
            rc = lp__perturb_forward(m, buf, c, classes[b], o, sc, rep, &done, total);
            for (int j = 0; j < c && rc == LP_OK; j++) {
                int py = (k0 + j) / nx * s, px = (k0 + j) % nx * s;
                float diff = base - sc[j];
                for (int yy = py; yy < py + p; yy++)
                    for (int xx = px; xx < px + p; xx++) {
                        ob[(size_t)yy * W + xx] += diff;
                        cnt[(size_t)yy * W + xx] += 1.0f;
                    }
            }
        }
        for (size_t i = 0; i < hw; i++)
            ob[i] = cnt[i] > 0.0f ? ob[i] / cnt[i] : 0.0f;
    }
done:
    lp_free(buf); lp_free(sc); lp_free(cnt);
    return rc;
}

/* ---- RISE ----------------------------------------------------------------
 *
 * The original code (eclique/RISE explanations.py): N binary grids s x s
 * with P(1) = p; cell = ceil(H / s) (ceil(W / s) across); each grid is
 * upsampled bilinearly (half-pixel centres, border clamped: what skimage's
 * resize(order=1, mode='reflect') does) to (s+1)*cell and cropped to H x W
 * at an independent random offset in [0, cell) per mask (Xplique instead
 * shares one offset per batch). Saliency = sum_i S(x . M_i) M_i / (N p)
 * (Xplique divides by sum_i M_i instead, which makes a constant model's
 * map exactly 1). S is the configured target score (logit by default; the
 * original wraps the model in a softmax: use --score prob for that).
 * The masks depend only on the seed, so every image sees the same masks.
 */
static void rise_mask(lp_rng *r, int s, float p, int H, int W, int ch, int cw,
                      float *grid, float *up, float *mask)
{
    int uh = (s + 1) * ch, uw = (s + 1) * cw, oy, ox;
    for (int i = 0; i < s * s; i++)
        grid[i] = lp_rng_uniform(r) < p ? 1.0f : 0.0f;
    oy = (int)(lp_rng_uniform(r) * ch);
    ox = (int)(lp_rng_uniform(r) * cw);
    lp_resize_bilinear_forward(up, grid, 1, s, s, uh, uw, 0);
    for (int y = 0; y < H; y++)
        memcpy(mask + (size_t)y * W, up + (size_t)(y + oy) * uw + ox, (size_t)W * sizeof(float));
}

int lp_rise(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    const lp_model_info *in;
    int C, H, W, s, N, bs, ch, cw, rc = LP_OK;
    float p;
    size_t per, hw;
    float *buf = NULL, *masks = NULL, *sc = NULL, *grid = NULL, *up = NULL;
    long done = 0, total;
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "rise: bad argument");
    in = lp_model_get_info(m);
    C = in->in_c; H = in->in_h; W = in->in_w;
    s = o->grid > 0 ? o->grid : 7;
    N = o->masks;
    p = o->keep_prob;
    if (o->grid < 0)
        return lp_set_error(LP_EINVAL, "rise: grid %d must be >= 1", o->grid);
    if (s > H || s > W)
        return lp_set_error(LP_EINVAL, "rise: grid %d larger than the %dx%d input", s, H, W);
    if (N < 1)
        return lp_set_error(LP_EINVAL, "rise: masks must be >= 1 (got %d)", N);
    if (!(p > 0.0f && p < 1.0f))
        return lp_set_error(LP_EINVAL, "rise: keep probability %g outside (0, 1)", (double)p);
    ch = (H + s - 1) / s; cw = (W + s - 1) / s;
    per = (size_t)C * H * W; hw = (size_t)H * W;
    bs = batch_of(o);
    total = (long)n * N;
    buf = lp_alloc((size_t)bs * per, sizeof(float));
    masks = lp_alloc((size_t)bs * hw, sizeof(float));
    sc = lp_alloc((size_t)bs, sizeof(float));
    grid = lp_alloc((size_t)s * s, sizeof(float));
    up = lp_alloc((size_t)(s + 1) * ch * (s + 1) * cw, sizeof(float));
    if (!buf || !masks || !sc || !grid || !up) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (int b = 0; b < n && rc == LP_OK; b++) {
        const float *xb = x + (size_t)b * per;
        float *ob = out + (size_t)b * hw;
        double *acc = lp_alloc(hw, sizeof(double));
        lp_rng r = lp_rng_seed(o->seed);
        if (acc == NULL) {
            rc = LP_ENOMEM;
            break;
        }
        memset(acc, 0, hw * sizeof(double));
        for (int k0 = 0; k0 < N && rc == LP_OK; k0 += bs) {
            int c = N - k0 < bs ? N - k0 : bs;
            for (int j = 0; j < c; j++) {
                float *mk = masks + (size_t)j * hw, *d = buf + (size_t)j * per;
                rise_mask(&r, s, p, H, W, ch, cw, grid, up, mk);
                for (int q = 0; q < C; q++)
                    for (size_t i = 0; i < hw; i++)
                        d[(size_t)q * hw + i] = xb[(size_t)q * hw + i] * mk[i];
            }
            rc = lp__perturb_forward(m, buf, c, classes[b], o, sc, rep, &done, total);
            for (int j = 0; j < c && rc == LP_OK; j++) {
                const float *mk = masks + (size_t)j * hw;
                for (size_t i = 0; i < hw; i++)
                    acc[i] += (double)sc[j] * mk[i];
            }
        }
        for (size_t i = 0; i < hw; i++)
            ob[i] = (float)(acc[i] / ((double)N * p));
        lp_free(acc);
    }
done:
    lp_free(buf); lp_free(masks); lp_free(sc); lp_free(grid); lp_free(up);
    return rc;
}
