/*
 * segment.c — super-pixels for LIME and KernelSHAP: quick shift
 * (Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking",
 * ECCV 2008), the segmentation the reference LIME implementations call
 * (lime_image and Xplique, through scikit-image's quickshift).
 *
 * Every pixel is a point in a joint space: its colour in CIELAB scaled by
 * `ratio`, and its row and column. The density at a pixel is a Parzen
 * estimate with a Gaussian kernel of width `kernel_size` over the pixels
 * of a (2w+1)^2 window, w = ceil(3 kernel_size):
 *
 *     P(p) = sum_q exp(-|f(p) - f(q)|^2 / (2 kernel_size^2))
 *
 * Each pixel then links to the nearest pixel of its window with a higher
 * density; a link longer than `max_dist` is cut. The links form a forest;
 * each tree is a segment. Ties of density (flat regions) are broken by
 * the pixel index, the lower index counting as higher, so the result is
 * deterministic (scikit-image adds 1e-5 Gaussian noise instead).
 */
#include "loupe.h"

#include <math.h>
#include <string.h>

/* sRGB in [0, 1] -> CIELAB (D65 white), as scikit-image's rgb2lab. */
static void rgb_to_lab(double r, double g, double b, double *L, double *A, double *B)
{
    double lin[3] = {r, g, b}, xyz[3], f[3];
    static const double white[3] = {0.95047, 1.0, 1.08883};
    for (int i = 0; i < 3; i++)
        lin[i] = lin[i] > 0.04045 ? pow((lin[i] + 0.055) / 1.055, 2.4) : lin[i] / 12.92;
    xyz[0] = 0.412453 * lin[0] + 0.357580 * lin[1] + 0.180423 * lin[2];
    xyz[1] = 0.212671 * lin[0] + 0.715160 * lin[1] + 0.072169 * lin[2];
    xyz[2] = 0.019334 * lin[0] + 0.119193 * lin[1] + 0.950227 * lin[2];
    for (int i = 0; i < 3; i++) {
        double t = xyz[i] / white[i];
        f[i] = t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0;
    }
    *L = xyz[1] / white[1] > 0.008856 ? 116.0 * f[1] - 16.0 : 903.3 * xyz[1] / white[1];
    *A = 500.0 * (f[0] - f[1]);
    *B = 200.0 * (f[1] - f[2]);
}

/* Follow the links to the root of p's tree. */
static int root_of(const int *parent, int p)
{
    while (parent[p] != p)
        p = parent[p];
    return p;
}

int lp_quickshift(const float *rgb, int c, int h, int w, double kernel_size, double max_dist,
                  double ratio, int *labels, int *count)
{
    size_t hw;
    int win, rc = LP_OK;
    double *feat = NULL, *dens = NULL;
    int *parent = NULL;
    if (rgb == NULL || labels == NULL || count == NULL || (c != 1 && c != 3) || h < 1 ||
        w < 1 || (size_t)h * w > ((size_t)1 << 28))
        return lp_set_error(LP_EINVAL, "quickshift: bad image (%d channels, %dx%d)", c, h, w);
    if (!(kernel_size > 0.0 && kernel_size <= 64.0) || !(max_dist >= 0.0) || !(ratio >= 0.0) ||
        !isfinite(max_dist) || !isfinite(ratio))
        return lp_set_error(LP_EINVAL,
                            "quickshift: kernel size in (0, 64], max distance and ratio >= 0");
    hw = (size_t)h * w;
    win = (int)ceil(3.0 * kernel_size);
    feat = lp_alloc(hw * 3, sizeof(double));
    dens = lp_alloc(hw, sizeof(double));
    parent = lp_alloc(hw, sizeof(int));
    if (!feat || !dens || !parent) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < hw; i++) { /* grey: its value on all three channels */
        double r = rgb[i], g = rgb[(c == 3 ? hw : 0) + i], b = rgb[(c == 3 ? 2 * hw : 0) + i];
        double L, A, B;
        rgb_to_lab(r < 0 ? 0 : r > 1 ? 1 : r, g < 0 ? 0 : g > 1 ? 1 : g,
                   b < 0 ? 0 : b > 1 ? 1 : b, &L, &A, &B);
        feat[3 * i] = ratio * L;
        feat[3 * i + 1] = ratio * A;
        feat[3 * i + 2] = ratio * B;
    }
    /* Parzen density over the window */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double *fp = feat + 3 * ((size_t)y * w + x);
            double s = 0.0;
            for (int yy = y - win > 0 ? y - win : 0; yy <= y + win && yy < h; yy++)
                for (int xx = x - win > 0 ? x - win : 0; xx <= x + win && xx < w; xx++) {
                    const double *fq = feat + 3 * ((size_t)yy * w + xx);
                    double d = (fp[0] - fq[0]) * (fp[0] - fq[0]) +
                               (fp[1] - fq[1]) * (fp[1] - fq[1]) +
                               (fp[2] - fq[2]) * (fp[2] - fq[2]) +
                               (double)(y - yy) * (y - yy) + (double)(x - xx) * (x - xx);
                    s += exp(-d / (2.0 * kernel_size * kernel_size));
                }
            dens[(size_t)y * w + x] = s;
        }
    /* link to the nearest denser pixel of the window */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t p = (size_t)y * w + x;
            const double *fp = feat + 3 * p;
            double best = INFINITY;
            int to = (int)p;
            for (int yy = y - win > 0 ? y - win : 0; yy <= y + win && yy < h; yy++)
                for (int xx = x - win > 0 ? x - win : 0; xx <= x + win && xx < w; xx++) {
                    size_t q = (size_t)yy * w + xx;
                    const double *fq = feat + 3 * q;
                    double d;
                    if (!(dens[q] > dens[p] || (dens[q] == dens[p] && q < p)))
                        continue;
                    d = (fp[0] - fq[0]) * (fp[0] - fq[0]) + (fp[1] - fq[1]) * (fp[1] - fq[1]) +
                        (fp[2] - fq[2]) * (fp[2] - fq[2]) + (double)(y - yy) * (y - yy) +
                        (double)(x - xx) * (x - xx);
                    if (d < best) {
                        best = d;
                        to = (int)q;
                    }
                }
            parent[p] = sqrt(best) <= max_dist ? to : (int)p;
        }
    /* the roots, numbered in raster order, name the segments */
    *count = 0;
    for (size_t p = 0; p < hw; p++)
        labels[p] = -1;
    for (size_t p = 0; p < hw; p++)
        if (parent[p] == (int)p)
            labels[p] = (*count)++;
    for (size_t p = 0; p < hw; p++)
        labels[p] = labels[root_of(parent, (int)p)];
done:
    lp_free(feat);
    lp_free(dens);
    lp_free(parent);
    return rc;
}
