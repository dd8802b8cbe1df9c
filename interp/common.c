/*
 * common.c — what several method families share: a seeded random number
 * generator and image blurs (baselines and perturbations).
 */
#include "loupe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_rng lp_rng_seed(uint64_t seed)
{
    lp_rng r;
    r.state = seed ^ 0x6a09e667f3bcc909ULL;
    return r;
}

/* splitmix64 (Steele, Lea, Flood 2014) */
uint64_t lp_rng_u64(lp_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double lp_rng_uniform(lp_rng *r)
{
    return (double)(lp_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double lp_rng_normal(lp_rng *r)
{
    double u1 = lp_rng_uniform(r), u2 = lp_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* reflect-101: -1 -> 1, n -> n-2 */
static int reflect101(int v, int n)
{
    if (n == 1)
        return 0;
    while (v < 0 || v >= n)
        v = v < 0 ? -v : 2 * n - 2 - v;
    return v;
}

/* One 1-D pass along rows (horizontal) or columns with a kernel of
 * length 2r+1 centred on the pixel (box: kernel[i] = 1/k with an
 * asymmetric window when k is even, as OpenCV's anchor k/2). */
static void pass_1d(float *out, const float *in, int h, int w, const double *kern,
                    int before, int after, int horizontal, int reflect)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double acc = 0.0;
            for (int t = -before; t <= after; t++) {
                int yy = y, xx = x;
                if (horizontal)
                    xx = reflect ? reflect101(x + t, w) : clampi(x + t, 0, w - 1);
                else
                    yy = reflect ? reflect101(y + t, h) : clampi(y + t, 0, h - 1);
                acc += kern[t + before] * in[(size_t)yy * w + xx];
            }
            out[(size_t)y * w + x] = (float)acc;
        }
}

static int separable(float *out, const float *in, int planes, int h, int w,
                     const double *kern, int before, int after, int reflect)
{
    float *tmp;
    if (out == NULL || in == NULL || planes < 1 || h < 1 || w < 1)
        return lp_set_error(LP_EINVAL, "blur: bad arguments");
    tmp = lp_alloc((size_t)h * w, sizeof(float));
    if (tmp == NULL)
        return LP_ENOMEM;
    for (int p = 0; p < planes; p++) {
        const float *src = in + (size_t)p * h * w;
        float *dst = out + (size_t)p * h * w;
        pass_1d(tmp, src, h, w, kern, before, after, 1, reflect);
        pass_1d(dst, tmp, h, w, kern, before, after, 0, reflect);
    }
    lp_free(tmp);
    return LP_OK;
}

int lp_blur_gaussian(float *out, const float *in, int planes, int h, int w,
                     float sigma)
{
    int r;
    double *k, sum = 0.0;
    int rc;
    if (!(sigma > 0.0f) || sigma > 1000.0f)
        return lp_set_error(LP_EINVAL, "blur: sigma %g outside (0, 1000]", (double)sigma);
    r = (int)ceil(3.0 * sigma);
    k = lp_alloc((size_t)(2 * r + 1), sizeof *k);
    if (k == NULL)
        return LP_ENOMEM;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = exp(-0.5 * (double)i * i / ((double)sigma * sigma));
    for (int i = 0; i < 2 * r + 1; i++)
        k[i] /= sum;
    rc = separable(out, in, planes, h, w, k, r, r, 0);
    lp_free(k);
    return rc;
}

int lp_blur_box(float *out, const float *in, int planes, int h, int w, int k)
{
    double *kern;
    int rc;
    if (k < 1 || k > 4096)
        return lp_set_error(LP_EINVAL, "box blur: size %d outside [1, 4096]", k);
    kern = lp_alloc((size_t)k, sizeof *kern);
    if (kern == NULL)
        return LP_ENOMEM;
    for (int i = 0; i < k; i++)
        kern[i] = 1.0 / k;
    /* OpenCV anchor (-1,-1) = k/2: window [x - k/2, x + (k-1) - k/2] */
    rc = separable(out, in, planes, h, w, kern, k / 2, k - 1 - k / 2, 1);
    lp_free(kern);
    return rc;
}
