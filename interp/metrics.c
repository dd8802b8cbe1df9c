/*
 * metrics.c — how good is an attribution map? Faithfulness (deletion,
 * insertion, MuFidelity), stability (average stability, max-sensitivity),
 * the statistics they rest on (Spearman, Pearson, SSIM) and MeGe/ReCo.
 *
 * Every definition, default and choice is written out in
 * docs/methods/metrics.md; the comments here point at the papers.
 * The model is a black box: forwards only, batched, through
 * lp_target_forward, so each metric holds at most `batch` perturbed
 * copies of an image at a time.
 */
#include "loupe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics ---------------------------------------------------------- */

typedef struct {
    float v;
    int i;
} ranked;

/* Descending value, then ascending index; NaN ranks last. */
static int cmp_desc(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    int an = isnan(a->v), bn = isnan(b->v);
    if (an != bn)
        return an - bn;
    if (!an && a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int lp_rank_pixels(const float *map, int n, int *order)
{
    ranked *r = lp_alloc((size_t)n, sizeof *r);
    if (r == NULL)
        return LP_ENOMEM;
    for (int i = 0; i < n; i++) {
        r[i].v = map[i];
        r[i].i = i;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_desc);
    for (int i = 0; i < n; i++)
        order[i] = r[i].i;
    lp_free(r);
    return LP_OK;
}

/* Ascending ranks (1-based) with ties given their average rank, as
 * scipy.stats.rankdata(method='average'). A stable bottom-up merge sort
 * of the indices: O(n log n) for maps of a few hundred thousand pixels. */
static int average_ranks(const double *v, int n, double *rank)
{
    int *idx = lp_alloc((size_t)n, sizeof *idx), *tmp = lp_alloc((size_t)n, sizeof *tmp);
    if (idx == NULL || tmp == NULL) {
        lp_free(idx);
        lp_free(tmp);
        return LP_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = (v[idx[b]] < v[idx[a]]) ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[k++] = idx[a++];
            while (b < hi)
                tmp[k++] = idx[b++];
        }
        int *t = idx;
        idx = tmp;
        tmp = t;
    }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (int k = i; k <= j; k++)
            rank[idx[k]] = (i + j) / 2.0 + 1.0;
        i = j + 1;
    }
    lp_free(tmp);
    lp_free(idx);
    return LP_OK;
}

/* Pearson correlation of two double vectors; 0 when either is constant
 * (Xplique's NaN -> 0). */
static double pearson_d(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    if (n < 2)
        return 0.0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (!(saa > 0) || !(sbb > 0))
        return 0.0;
    return sab / sqrt(saa * sbb);
}

double lp_pearson(const double *a, const double *b, int n)
{
    return pearson_d(a, b, n);
}

/* Spearman's rho = Pearson correlation of the average ranks. Returns 0
 * for a constant input (or on allocation failure, with the error set;
 * callers that must know use lp_spearman_checked). */
int lp_spearman_checked(const double *a, const double *b, int n, double *rho)
{
    double *ra = lp_alloc((size_t)n, sizeof *ra), *rb = lp_alloc((size_t)n, sizeof *rb);
    int rc = (ra && rb) ? LP_OK : LP_ENOMEM;
    *rho = 0.0;
    if (rc == LP_OK)
        rc = average_ranks(a, n, ra);
    if (rc == LP_OK)
        rc = average_ranks(b, n, rb);
    if (rc == LP_OK)
        *rho = pearson_d(ra, rb, n);
    lp_free(ra);
    lp_free(rb);
    return rc;
}

double lp_spearman(const double *a, const double *b, int n)
{
    double rho;
    lp_spearman_checked(a, b, n, &rho);
    return rho;
}

/* Spearman of two float maps (optionally of their absolute values). */
int lp_map_spearman(const float *a, const float *b, int n, int absolute, double *rho)
{
    double *da = lp_alloc((size_t)n, sizeof *da), *db = lp_alloc((size_t)n, sizeof *db);
    int rc = (da && db) ? LP_OK : LP_ENOMEM;
    *rho = 0.0;
    if (rc == LP_OK) {
        for (int i = 0; i < n; i++) {
            da[i] = absolute ? fabs((double)a[i]) : a[i];
            db[i] = absolute ? fabs((double)b[i]) : b[i];
        }
        rc = lp_spearman_checked(da, db, n, rho);
    }
    lp_free(da);
    lp_free(db);
    return rc;
}

/* Min-max scale to [0, 1] (a constant map becomes 0). */
static void minmax(const float *m, int n, double *out)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (m[i] < lo) lo = m[i];
        if (m[i] > hi) hi = m[i];
    }
    for (int i = 0; i < n; i++)
        out[i] = hi > lo ? (m[i] - lo) / (hi - lo) : 0.0;
}

/* Mean structural similarity (Wang et al. 2004, eq. 13) of two maps
 * scaled to [0, 1], over every 7 x 7 window inside the map (uniform
 * weights, sample covariances as skimage's default), C1 = (0.01)^2,
 * C2 = (0.03)^2. Maps smaller than 7 use one window of their size. */
int lp_map_ssim(const float *a, const float *b, int h, int w, double *ssim)
{
    int n = h * w, win = 7;
    double *x = lp_alloc((size_t)n, sizeof *x), *y = lp_alloc((size_t)n, sizeof *y);
    int rc = (x && y) ? LP_OK : LP_ENOMEM;
    *ssim = 0.0;
    if (rc == LP_OK) {
        int wh = h < win ? h : win, ww = w < win ? w : win;
        double np = (double)wh * ww, cov = np > 1 ? np / (np - 1) : 1.0;
        double c1 = 1e-4, c2 = 9e-4, total = 0;
        long count = 0;
        minmax(a, n, x);
        minmax(b, n, y);
        for (int i = 0; i + wh <= h; i++)
            for (int j = 0; j + ww <= w; j++) {
                double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
                for (int u = 0; u < wh; u++)
                    for (int v = 0; v < ww; v++) {
                        double p = x[(i + u) * w + j + v], q = y[(i + u) * w + j + v];
                        mx += p;
                        my += q;
                        sxx += p * p;
                        syy += q * q;
                        sxy += p * q;
                    }
                mx /= np;
                my /= np;
                double vx = (sxx / np - mx * mx) * cov, vy = (syy / np - my * my) * cov;
                double vxy = (sxy / np - mx * my) * cov;
                total += ((2 * mx * my + c1) * (2 * vxy + c2)) /
                         ((mx * mx + my * my + c1) * (vx + vy + c2));
                count++;
            }
        *ssim = count ? total / count : 0.0;
    }
    lp_free(x);
    lp_free(y);
    return rc;
}

/* ---- deletion and insertion (Petsiuk et al. 2018, §4.1) ------------------ */

void lp_causal_defaults(lp_causal_options *o, lp_protocol protocol)
{
    memset(o, 0, sizeof *o);
    o->protocol = protocol;
    o->batch = 32;
    if (protocol == LP_PROTOCOL_XPLIQUE) {
        o->steps = 10;
        o->row_steps = 0;
        o->deletion_substrate = LP_SUBSTRATE_ZERO;
        o->insertion_substrate = LP_SUBSTRATE_ZERO;
        o->score = LP_SCORE_LOGIT;
    } else {
        o->steps = 0;          /* ceil(HW / W) */
        o->row_steps = 1;
        o->deletion_substrate = LP_SUBSTRATE_ZERO;
        o->insertion_substrate = LP_SUBSTRATE_BLUR;
        o->score = LP_SCORE_PROB;
    }
}

int lp_causal_steps(const lp_causal_options *o, int h, int w)
{
    if (o->row_steps)
        return (h * w + w - 1) / w;
    return o->steps > 0 ? o->steps : 10;
}

/* Pixels changed after step i of n. */
static long causal_count(const lp_causal_options *o, int i, int n, int h, int w)
{
    long hw = (long)h * w;
    if (o->row_steps) {
        long c = (long)i * w;
        return c < hw ? c : hw;
    }
    return (long)i * hw / n;
}

/* RISE's blur kernel, gkern(11, 5) of eclique/RISE utils.py: scipy's
 * gaussian_filter (sigma 5, truncate 4 -> radius 20, 'reflect' borders)
 * applied to an 11 x 11 unit impulse. The filter is separable, so the 2-D
 * kernel is the outer product of the filtered 1-D impulse with itself. */
static void rise_kernel(double k1[11])
{
    const int len = 11, radius = 20, centre = 5;
    const double sigma = 5.0;
    double g[41], sum = 0;
    for (int j = -radius; j <= radius; j++) {
        g[j + radius] = exp(-0.5 * j * j / (sigma * sigma));
        sum += g[j + radius];
    }
    for (int i = 0; i < len; i++) {
        k1[i] = 0;
        for (int j = -radius; j <= radius; j++) {
            /* scipy 'reflect' = half-sample symmetric, period 2 * len */
            int p = ((i + j) % (2 * len) + 2 * len) % (2 * len);
            if (p >= len)
                p = 2 * len - 1 - p;
            if (p == centre)
                k1[i] += g[j + radius] / sum;
        }
    }
}

/* RISE insertion substrate: each channel convolved with gkern(11, 5),
 * zero padding 5 (torch conv2d). */
static void rise_blur(const float *x, int c, int h, int w, float *out)
{
    double k[11];
    rise_kernel(k);
    for (int ch = 0; ch < c; ch++) {
        const float *src = x + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * h * w;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                double s = 0;
                for (int u = 0; u < 11; u++) {
                    int y = i + u - 5;
                    if (y < 0 || y >= h)
                        continue;
                    for (int v = 0; v < 11; v++) {
                        int xx = j + v - 5;
                        if (xx >= 0 && xx < w)
                            s += k[u] * k[v] * src[y * w + xx];
                    }
                }
                dst[i * w + j] = (float)s;
            }
    }
}

int lp_substrate_make(lp_substrate s, const float *x, int c, int h, int w, float *out)
{
    size_t plane = (size_t)h * w;
    switch (s) {
    case LP_SUBSTRATE_ZERO:
        memset(out, 0, (size_t)c * plane * sizeof *out);
        return LP_OK;
    case LP_SUBSTRATE_BLUR:
        rise_blur(x, c, h, w, out);
        return LP_OK;
    case LP_SUBSTRATE_MEAN:
        for (int ch = 0; ch < c; ch++) {
            double m = 0;
            for (size_t i = 0; i < plane; i++)
                m += x[ch * plane + i];
            m /= (double)plane;
            for (size_t i = 0; i < plane; i++)
                out[ch * plane + i] = (float)m;
        }
        return LP_OK;
    }
    return lp_set_error(LP_EINVAL, "unknown substrate %d", (int)s);
}

/* Copy the pixels order[from..to) of src into dst (all channels). */
static void move_pixels(float *dst, const float *src, const int *order, long from,
                        long to, int c, size_t plane)
{
    for (long p = from; p < to; p++)
        for (int ch = 0; ch < c; ch++)
            dst[ch * plane + order[p]] = src[ch * plane + order[p]];
}

int lp_metric_causal(lp_model *m, const float *x, int cls, const float *map,
                     int insertion, const lp_causal_options *o, float *curve,
                     double *auc, long *forwards)
{
    const lp_model_info *in = lp_model_get_info(m);
    int c = in->in_c, h = in->in_h, w = in->in_w;
    size_t plane = (size_t)h * w, per = (size_t)c * plane;
    int n = lp_causal_steps(o, h, w), batch = o->batch > 0 ? o->batch : 32;
    lp_substrate sub = insertion ? o->insertion_substrate : o->deletion_substrate;
    float *substrate = lp_alloc(per, sizeof(float));
    float *current = lp_alloc(per, sizeof(float));
    float *chunk = lp_alloc((size_t)batch * per, sizeof(float));
    int *order = lp_alloc(plane, sizeof(int)), *classes = lp_alloc((size_t)batch, sizeof(int));
    int rc = (substrate && current && chunk && order && classes) ? LP_OK : LP_ENOMEM;
    if (rc == LP_OK)
        rc = lp_rank_pixels(map, (int)plane, order);
    if (rc == LP_OK)
        rc = lp_substrate_make(sub, x, c, h, w, substrate);
    if (rc == LP_OK) {
        const float *finish = insertion ? x : substrate;
        memcpy(current, insertion ? substrate : x, per * sizeof(float));
        for (int b = 0; b < batch; b++)
            classes[b] = cls;
        long done = 0;
        for (int s = 0; s <= n && rc == LP_OK; s += batch) {
            int k = n + 1 - s < batch ? n + 1 - s : batch;
            for (int j = 0; j < k; j++) {
                long want = causal_count(o, s + j, n, h, w);
                move_pixels(current, finish, order, done, want, c, plane);
                done = want;
                memcpy(chunk + (size_t)j * per, current, per * sizeof(float));
            }
            rc = lp_target_forward(m, chunk, k, batch, classes, o->score, curve + s);
            if (forwards)
                *forwards += k;
        }
    }
    if (rc == LP_OK) {
        /* trapezoid rule on a unit x-axis (RISE evaluation.py `auc`) */
        double sum = 0;
        for (int i = 0; i <= n; i++)
            sum += curve[i];
        *auc = (sum - curve[0] / 2.0 - curve[n] / 2.0) / n;
    }
    lp_free(substrate);
    lp_free(current);
    lp_free(chunk);
    lp_free(order);
    lp_free(classes);
    return rc;
}

/* ---- MuFidelity (Bhatt et al. 2020, def. 3) ------------------------------ */

int lp_mufidelity_cells(uint8_t *keep, int samples, int grid, float subset,
                        uint64_t seed)
{
    lp_rng r = lp_rng_seed(seed);
    if (samples < 2 || grid < 1)
        return lp_set_error(LP_EINVAL, "mufidelity needs >= 2 samples and a grid >= 1");
    for (long i = 0; i < (long)samples * grid * grid; i++)
        keep[i] = lp_rng_uniform(&r) > subset;
    return LP_OK;
}

/* Nearest-neighbour upsampling with TensorFlow's half-pixel rule:
 * source cell floor((y + 0.5) * grid / h). */
static int cell_of(int y, int grid, int h)
{
    int c = (int)floor((y + 0.5) * grid / h);
    return c < grid ? c : grid - 1;
}

int lp_metric_mufidelity(lp_model *m, const float *x, int cls, const float *map,
                         const uint8_t *keep, int samples, int grid, int batch,
                         double *spearman, double *pearson, long *forwards)
{
    const lp_model_info *in = lp_model_get_info(m);
    int c = in->in_c, h = in->in_h, w = in->in_w;
    size_t plane = (size_t)h * w, per = (size_t)c * plane;
    if (batch < 1)
        batch = 32;
    float *chunk = lp_alloc((size_t)batch * per, sizeof(float));
    float *scores = lp_alloc((size_t)samples + 1, sizeof(float));
    double *delta = lp_alloc((size_t)samples, sizeof(double));
    double *attr = lp_alloc((size_t)samples, sizeof(double));
    int *classes = lp_alloc((size_t)batch, sizeof(int));
    int rc = (chunk && scores && delta && attr && classes) ? LP_OK : LP_ENOMEM;
    for (int b = 0; rc == LP_OK && b < batch; b++)
        classes[b] = cls;
    if (rc == LP_OK)
        rc = lp_target_forward(m, x, 1, 1, classes, LP_SCORE_LOGIT, scores + samples);
    for (int s = 0; s < samples && rc == LP_OK; s += batch) {
        int k = samples - s < batch ? samples - s : batch;
        for (int j = 0; j < k; j++) {
            const uint8_t *cells = keep + (size_t)(s + j) * grid * grid;
            float *dst = chunk + (size_t)j * per;
            double a = 0;
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    int on = cells[cell_of(y, grid, h) * grid + cell_of(xx, grid, w)];
                    size_t p = (size_t)y * w + xx;
                    for (int ch = 0; ch < c; ch++)
                        dst[ch * plane + p] = on ? x[ch * plane + p] : 0.0f;
                    if (!on)
                        a += map[p];
                }
            attr[s + j] = a;
        }
        rc = lp_target_forward(m, chunk, k, batch, classes, LP_SCORE_LOGIT, scores + s);
        if (forwards)
            *forwards += k;
    }
    if (rc == LP_OK) {
        for (int s = 0; s < samples; s++)
            delta[s] = (double)scores[samples] - scores[s];
        *pearson = pearson_d(delta, attr, samples);
        rc = lp_spearman_checked(delta, attr, samples, spearman);
        if (forwards)
            *forwards += 1;
    }
    lp_free(chunk);
    lp_free(scores);
    lp_free(delta);
    lp_free(attr);
    lp_free(classes);
    return rc;
}

/* ---- stability ----------------------------------------------------------- */

int lp_stability_noise(float *noise, int samples, size_t per, float lo, float hi,
                       uint64_t seed)
{
    lp_rng r = lp_rng_seed(seed);
    for (size_t i = 0; i < (size_t)samples * per; i++)
        noise[i] = (float)(lo + (hi - lo) * lp_rng_uniform(&r));
    return LP_OK;
}

/* Xplique AverageStability (relative = 0): mean_j ||phi(x + e_j) - phi(x)||_2.
 * Captum sensitivity_max (relative = 1): max_j ||.||_F / ||phi(x)||_F. */
int lp_metric_stability(lp_model *m, const lp_method *method,
                        const lp_explain_options *o, const float *x, int cls,
                        const float *map, const float *noise, int samples,
                        int relative, double *value, long *passes)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t per = (size_t)in->in_c * in->in_h * in->in_w;
    size_t msize = (method->flags & LP_METHOD_PER_CHANNEL) ? per
                   : (size_t)in->in_h * in->in_w;
    float *xn = lp_alloc(per, sizeof(float)), *mn = lp_alloc(msize, sizeof(float));
    int rc = (xn && mn) ? LP_OK : LP_ENOMEM;
    double ref = 0, acc = 0.0;
    for (size_t i = 0; i < msize; i++)
        ref += (double)map[i] * map[i];
    ref = sqrt(ref);
    for (int j = 0; j < samples && rc == LP_OK; j++) {
        lp_explain_report rep;
        memset(&rep, 0, sizeof rep);
        for (size_t i = 0; i < per; i++)
            xn[i] = x[i] + noise[(size_t)j * per + i];
        rc = method->run(m, xn, 1, &cls, o, mn, &rep);
        if (passes)
            *passes += rep.forwards + rep.backwards;
        if (rc != LP_OK)
            break;
        double d = 0;
        for (size_t i = 0; i < msize; i++)
            d += ((double)mn[i] - map[i]) * ((double)mn[i] - map[i]);
        d = sqrt(d);
        if (relative) {
            double v = ref > 0 ? d / ref : (d > 0 ? INFINITY : 0.0);
            acc = v > acc ? v : acc;
        } else {
            acc += d / samples;
        }
    }
    if (rc == LP_OK)
        *value = acc;
    lp_free(xn);
    lp_free(mn);
    return rc;
}

/* ---- MeGe and ReCo (Fel et al. 2020, §3; Xplique representativity.py) ---- */

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

int lp_mege_reco(const double *s_eq, int n_eq, const double *s_ne, int n_ne,
                 double *mege, double *reco)
{
    double mean = 0;
    int n = n_eq + n_ne, stride = n / 20 + 1;
    double *all;
    for (int i = 0; i < n_eq; i++)
        mean += s_eq[i] / n_eq;
    *mege = n_eq ? 1.0 / (1.0 + mean) : NAN;
    *reco = NAN;
    if (n_eq == 0 || n_ne == 0)
        return LP_OK;
    all = lp_alloc((size_t)n, sizeof *all);
    if (all == NULL)
        return LP_ENOMEM;
    memcpy(all, s_eq, (size_t)n_eq * sizeof *all);
    memcpy(all + n_eq, s_ne, (size_t)n_ne * sizeof *all);
    qsort(all, (size_t)n, sizeof *all, cmp_double);
    double best = -INFINITY;
    for (int g = 0; g < n; g += stride) {
        double gamma = all[g];
        int tp = 0, tn = 0;
        for (int i = 0; i < n_eq; i++)
            tp += s_eq[i] < gamma;
        for (int i = 0; i < n_ne; i++)
            tn += s_ne[i] > gamma;
        double v = (double)tp / n_eq + (double)tn / n_ne - 1.0;
        best = v > best ? v : best;
    }
    *reco = best;
    lp_free(all);
    return LP_OK;
}

/* ---- the random baseline --------------------------------------------------- */

/* Bilinear weights of output index o of n from a lattice of g cells
 * (align_corners = False, edges clamped): lo, hi and the weight of hi. */
static void lattice_weights(int o, int n, int g, int *lo, int *hi, double *t)
{
    double s = (o + 0.5) * g / n - 0.5;
    if (s < 0)
        s = 0;
    if (s > g - 1)
        s = g - 1;
    *lo = (int)floor(s);
    *hi = *lo + 1 < g ? *lo + 1 : *lo;
    *t = s - *lo;
}

/* A random map: U[0, 1) values on a grid x grid lattice (--grid, default
 * 8) upsampled bilinearly — the baseline of the metrics. The lattice
 * matters: a map random per pixel makes deletion remove scattered pixels,
 * whose high-frequency artefacts drop the score faster than removing any
 * real map's regions (CIFAR ResNet-20, 30 images, RISE protocol: deletion
 * AUC 0.18 per-pixel random, 0.29 Grad-CAM, 0.35 random 8 x 8, 0.53 the
 * reversed Grad-CAM; docs/methods/metrics.md). The stream is seeded by
 * o->seed and the image's bytes: the same image gets the same map in any
 * batch and on any thread count. */
int lp_random_attribution(lp_model *m, const float *x, int n, const int *classes,
                          const lp_explain_options *o, float *out,
                          lp_explain_report *rep)
{
    const lp_model_info *in = lp_model_get_info(m);
    int h = in->in_h, w = in->in_w, g = o->grid > 0 ? o->grid : 8;
    size_t per = (size_t)in->in_c * h * w, hw = (size_t)h * w;
    double *cells = lp_alloc((size_t)g * g, sizeof *cells);
    (void)classes;
    (void)rep;
    if (cells == NULL)
        return LP_ENOMEM;
    for (int b = 0; b < n; b++) {
        uint64_t hash = o->seed ^ 0x6A09E667F3BCC908ull;
        const uint8_t *bytes = (const uint8_t *)(x + (size_t)b * per);
        for (size_t i = 0; i < per * sizeof(float); i++)
            hash = (hash ^ bytes[i]) * 0x100000001B3ull; /* FNV-1a */
        lp_rng r = lp_rng_seed(hash);
        for (int i = 0; i < g * g; i++)
            cells[i] = lp_rng_uniform(&r);
        for (int y = 0; y < h; y++) {
            int y0, y1;
            double ty;
            lattice_weights(y, h, g, &y0, &y1, &ty);
            for (int xx = 0; xx < w; xx++) {
                int x0, x1;
                double tx;
                lattice_weights(xx, w, g, &x0, &x1, &tx);
                double top = cells[y0 * g + x0] * (1 - tx) + cells[y0 * g + x1] * tx;
                double bot = cells[y1 * g + x0] * (1 - tx) + cells[y1 * g + x1] * tx;
                out[(size_t)b * hw + (size_t)y * w + xx] = (float)(top * (1 - ty) + bot * ty);
            }
        }
    }
    lp_free(cells);
    return LP_OK;
}
