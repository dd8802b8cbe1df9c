/*
 * preprocess.c — turn a decoded image into the tensor a model wants, as
 * torchvision's transforms do on a PIL image:
 *
 *   convert to the model's channels (grey -> RGB replicates; RGB -> grey
 *   uses ITU-R 601-2 luma like PIL's convert('L'); alpha is dropped)
 *   Resize(input.resize)   shorter side to `resize`, the other side
 *                          truncated as torchvision does: int(size * long / short)
 *   CenterCrop(input.crop) top = round((h - crop) / 2)
 *   ToTensor + Normalize   x / 255, then (x - mean[c]) / std[c]
 *
 * The resize is PIL's antialiased resampling (Image.resize with BILINEAR
 * or BICUBIC, as torchvision calls it): a separable filter whose support
 * grows with the downscaling factor, with 22-bit fixed-point coefficients,
 * horizontal pass first, each pass rounded and clipped to 8 bits.
 */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double filter_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* PIL's bicubic uses a = -0.5 */
static double filter_bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

typedef struct {
    int *start;     /* first source index per output */
    int *taps;      /* number of taps per output */
    int32_t *coef;  /* [out][max_taps] fixed-point weights */
    int max_taps;
} resample_plan;

static void plan_free(resample_plan *p)
{
    lp_free(p->start);
    lp_free(p->taps);
    lp_free(p->coef);
}

/* PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
static int plan_axis(resample_plan *p, int in_size, int out_size, int bicubic)
{
    double (*filter)(double) = bicubic ? filter_bicubic : filter_bilinear;
    double support = bicubic ? 2.0 : 1.0;
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double *w;
    support *= filterscale;
    p->max_taps = (int)ceil(support) * 2 + 1;
    p->start = lp_calloc((size_t)out_size, sizeof(int));
    p->taps = lp_calloc((size_t)out_size, sizeof(int));
    p->coef = lp_calloc((size_t)out_size * (size_t)p->max_taps, sizeof(int32_t));
    w = lp_calloc((size_t)p->max_taps, sizeof(double));
    if (!p->start || !p->taps || !p->coef || !w) {
        lp_free(w);
        plan_free(p);
        return lp_set_error(LP_ENOMEM, "out of memory resizing");
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax;
        if (xmin < 0)
            xmin = 0;
        xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > p->max_taps)
            xmax = p->max_taps;
        for (int x = 0; x < xmax; x++) {
            w[x] = filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double k = ww != 0.0 ? w[x] / ww : 0.0;
            p->coef[(size_t)xx * p->max_taps + x] =
                (int32_t)(k * (1 << PIL_PRECISION_BITS) + (k < 0 ? -0.5 : 0.5));
        }
        p->start[xx] = xmin;
        p->taps[xx] = xmax;
    }
    lp_free(w);
    return LP_OK;
}

static uint8_t clip8(int64_t v)
{
    v >>= PIL_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Resample src[h][w][c] to dst[oh][ow][c] (8-bit, interleaved), PIL-style. */
static int resize_pil(uint8_t *dst, int ow, int oh, const uint8_t *src, int w,
                      int h, int c, int bicubic)
{
    resample_plan ph = {0}, pv = {0};
    uint8_t *tmp;
    LP_TRY(plan_axis(&ph, w, ow, bicubic));
    if (plan_axis(&pv, h, oh, bicubic) != LP_OK) {
        plan_free(&ph);
        return LP_ENOMEM;
    }
    tmp = lp_alloc((size_t)ow * h, (size_t)c);
    if (tmp == NULL) {
        plan_free(&ph);
        plan_free(&pv);
        return lp_set_error(LP_ENOMEM, "out of memory resizing");
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
                const int32_t *k = ph.coef + (size_t)x * ph.max_taps;
                for (int t = 0; t < ph.taps[x]; t++)
                    acc += (int64_t)src[((size_t)y * w + ph.start[x] + t) * c + ch] * k[t];
                tmp[((size_t)y * ow + x) * c + ch] = clip8(acc);
            }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
                const int32_t *k = pv.coef + (size_t)y * pv.max_taps;
                for (int t = 0; t < pv.taps[y]; t++)
                    acc += (int64_t)tmp[((size_t)(pv.start[y] + t) * ow + x) * c + ch] * k[t];
                dst[((size_t)y * ow + x) * c + ch] = clip8(acc);
            }
    lp_free(tmp);
    plan_free(&ph);
    plan_free(&pv);
    return LP_OK;
}

/* Convert to `want` channels (1 or 3) as PIL's convert('L') / ('RGB'). */
static uint8_t *convert_channels(const lp_image *img, int want)
{
    size_t pixels = (size_t)img->width * img->height;
    uint8_t *out = lp_alloc(pixels, (size_t)want);
    int c = img->channels;
    if (out == NULL) {
        lp_set_error(LP_ENOMEM, "out of memory converting the image");
        return NULL;
    }
    for (size_t i = 0; i < pixels; i++) {
        const uint8_t *px = img->pixels + i * (size_t)c;
        if (want == 3) {
            if (c >= 3) {
                out[i * 3] = px[0];
                out[i * 3 + 1] = px[1];
                out[i * 3 + 2] = px[2];
            } else {
                out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = px[0];
            }
        } else if (c >= 3) {
            /* PIL: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 */
            out[i] = (uint8_t)(((uint32_t)px[0] * 19595u + (uint32_t)px[1] * 38470u +
                                (uint32_t)px[2] * 7471u + 0x8000u) >> 16);
        } else {
            out[i] = px[0];
        }
    }
    return out;
}

int lp_image_resize(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src,
                    int src_w, int src_h, int channels, int bicubic)
{
    if (!dst || !src || dst_w < 1 || dst_h < 1 || src_w < 1 || src_h < 1 ||
        channels < 1 || channels > 4)
        return lp_set_error(LP_EINVAL, "lp_image_resize: bad arguments");
    if (dst_w == src_w && dst_h == src_h) {
        memcpy(dst, src, (size_t)src_w * src_h * channels);
        return LP_OK;
    }
    return resize_pil(dst, dst_w, dst_h, src, src_w, src_h, channels, bicubic);
}

int lp_model_prepare_image(const lp_model *m, const lp_image *img, float *out)
{
    const lp_model_info *in = &m->info;
    int c = in->in_c, rw, rh, bicubic = !strcmp(in->interpolation, "bicubic");
    int crop_w = in->in_w, crop_h = in->in_h, top, left, rc;
    uint8_t *conv, *resized;
    if (img == NULL || img->pixels == NULL || out == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_prepare_image: NULL argument");
    if (c != 1 && c != 3)
        return lp_set_error(LP_EINVAL, "model wants %d channels; images give 1 or 3", c);
    /* size after Resize */
    if (in->resize > 0) {
        int shorter = img->width < img->height ? img->width : img->height;
        int longer = img->width < img->height ? img->height : img->width;
        int other = (int)((long long)in->resize * longer / shorter);
        if (img->width <= img->height) {
            rw = in->resize;
            rh = other;
        } else {
            rh = in->resize;
            rw = other;
        }
    } else {
        rw = in->in_w;
        rh = in->in_h;
    }
    if (in->crop > 0)
        crop_w = crop_h = in->crop;
    if (crop_w != in->in_w || crop_h != in->in_h || rw < crop_w || rh < crop_h)
        return lp_set_error(LP_EINVAL, "preprocessing gives %dx%d, model wants %dx%d",
                            rw < crop_w ? rw : crop_w, rh < crop_h ? rh : crop_h,
                            in->in_w, in->in_h);
    conv = convert_channels(img, c);
    if (conv == NULL)
        return LP_ENOMEM;
    resized = lp_alloc((size_t)rw * rh, (size_t)c);
    if (resized == NULL) {
        lp_free(conv);
        return lp_set_error(LP_ENOMEM, "out of memory resizing");
    }
    rc = lp_image_resize(resized, rw, rh, conv, img->width, img->height, c, bicubic);
    lp_free(conv);
    if (rc != LP_OK) {
        lp_free(resized);
        return rc;
    }
    /* torchvision CenterCrop: top = int(round((h - crop) / 2.0)) */
    top = (int)nearbyint((rh - crop_h) / 2.0); /* Python round(): half to even */
    left = (int)nearbyint((rw - crop_w) / 2.0);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < crop_h; y++)
            for (int x = 0; x < crop_w; x++) {
                float v = resized[((size_t)(y + top) * rw + x + left) * c + ch] / 255.0f;
                out[((size_t)ch * crop_h + y) * crop_w + x] = (v - in->mean[ch]) / in->std[ch];
            }
    lp_free(resized);
    return LP_OK;
}
