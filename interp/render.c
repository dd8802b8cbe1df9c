/*
 * render.c — attribution maps as pictures: the map in colour over the
 * image the model saw, and a labelled colour bar. No fonts or libraries:
 * the few characters a number needs are drawn from a 3x5 bitmap.
 */
#include "loupe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAR_GAP 8
#define BAR_W 14
#define LABEL_W 76

/* Sequential scale (dark purple -> red -> yellow, "inferno"-like). */
static const float seq_stops[6][3] = {
    {0.00f, 0.00f, 0.02f}, {0.26f, 0.04f, 0.41f}, {0.58f, 0.15f, 0.40f},
    {0.87f, 0.32f, 0.23f}, {0.99f, 0.65f, 0.04f}, {0.99f, 1.00f, 0.64f},
};
/* Diverging scale for signed maps: blue, white at 0, red. */
static const float div_stops[5][3] = {
    {0.02f, 0.19f, 0.58f}, {0.40f, 0.66f, 0.81f}, {0.97f, 0.97f, 0.97f},
    {0.94f, 0.54f, 0.38f}, {0.70f, 0.09f, 0.17f},
};

static void colour(float t, int diverging, float rgb[3])
{
    int n = diverging ? 5 : 6;
    const float(*stops)[3] = diverging ? div_stops : seq_stops;
    float f;
    int i;
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    f = t * (float)(n - 1);
    i = (int)f;
    if (i >= n - 1)
        i = n - 2;
    f -= (float)i;
    for (int c = 0; c < 3; c++)
        rgb[c] = stops[i][c] * (1.0f - f) + stops[i + 1][c] * f;
}

/* 3x5 glyphs, one row per 3 bits (MSB left). */
static const char glyph_chars[] = "0123456789.-+e";
static const unsigned char glyphs[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
    {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 2, 2},
    {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0},
    {0, 2, 7, 2, 0}, {0, 7, 7, 4, 7},
};

static void put_pixel(uint8_t *img, int w, int h, int x, int y, uint8_t v)
{
    if (x >= 0 && y >= 0 && x < w && y < h)
        for (int c = 0; c < 3; c++)
            img[((size_t)y * w + x) * 3 + c] = v;
}

/* Draw text at (x, y) with 2x2-pixel dots; unknown characters are blank. */
static void draw_text(uint8_t *img, int w, int h, int x, int y, const char *s)
{
    for (; *s; s++, x += 8) {
        const char *p = strchr(glyph_chars, *s);
        if (p == NULL)
            continue;
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 3; c++)
                if (glyphs[p - glyph_chars][r] & (4 >> c))
                    for (int d = 0; d < 4; d++)
                        put_pixel(img, w, h, x + 2 * c + (d & 1), y + 2 * r + (d >> 1), 20);
    }
}

static float input_pixel(const lp_model_info *info, const float *x, int c, int h,
                         int w, int yy, int xx)
{
    int cc = c < info->in_c ? c : 0; /* grey (or 2-channel) input: grey */
    float v = x[((size_t)cc * h + yy) * w + xx] * info->std[cc] + info->mean[cc];
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* The colour scale of a map: [lo, hi] over its finite values; a map with
 * a real negative part gets a diverging scale centred on 0. */
static int map_scale(const float *map, size_t n, float *lo_out, float *hi_out)
{
    float lo = INFINITY, hi = -INFINITY;
    int diverging;
    for (size_t i = 0; i < n; i++)
        if (isfinite(map[i])) {
            if (map[i] < lo) lo = map[i];
            if (map[i] > hi) hi = map[i];
        }
    if (!(lo <= hi))
        lo = hi = 0.0f;
    diverging = lo < 0.0f && hi > 0.0f && -lo > 0.05f * hi;
    if (diverging) {
        float a = fmaxf(-lo, hi);
        lo = -a;
        hi = a;
    }
    *lo_out = lo;
    *hi_out = hi;
    return diverging;
}

/* Paint the map at half opacity over the de-normalised input, each input
 * pixel as a scale x scale block, into img (rows of `stride` RGB pixels). */
static void paint_overlay(const lp_model_info *info, const float *x,
                          const float *map, int h, int w, int scale, float lo,
                          float hi, int diverging, uint8_t *img, int stride)
{
    float span = hi > lo ? hi - lo : 1.0f;
    for (int y = 0; y < h * scale; y++)
        for (int xx = 0; xx < w * scale; xx++) {
            int sy = y / scale, sx = xx / scale;
            float v = map[(size_t)sy * w + sx], col[3], a = 0.5f;
            colour(isfinite(v) ? (v - lo) / span : 0.0f, diverging, col);
            for (int c = 0; c < 3; c++) {
                float base = input_pixel(info, x, c, h, w, sy, sx);
                float o = (1.0f - a) * base + a * col[c];
                img[((size_t)y * stride + xx) * 3 + c] = (uint8_t)(o * 255.0f + 0.5f);
            }
        }
}

int lp_render_overlay(const lp_model_info *info, const float *x,
                      const float *map, int h, int w, uint8_t **rgb,
                      float range[2])
{
    float lo, hi;
    int diverging;
    uint8_t *img;
    if (info == NULL || x == NULL || map == NULL || rgb == NULL || h < 1 ||
        w < 1 || (size_t)h * (size_t)w > LP_IMAGE_MAX_PIXELS)
        return lp_set_error(LP_EINVAL, "lp_render_overlay: bad arguments");
    diverging = map_scale(map, (size_t)h * w, &lo, &hi);
    img = lp_alloc((size_t)h * w * 3, 1);
    if (img == NULL)
        return LP_ENOMEM;
    paint_overlay(info, x, map, h, w, 1, lo, hi, diverging, img, w);
    if (range != NULL) {
        range[0] = lo;
        range[1] = hi;
    }
    *rgb = img;
    return LP_OK;
}

int lp_render_heatmap(const lp_model_info *info, const float *x,
                      const float *map, int h, int w, uint8_t **rgb,
                      int *out_w, int *out_h)
{
    float lo, hi;
    int scale, iw, ih, W, H, diverging;
    uint8_t *img;
    char label[32];
    if (info == NULL || x == NULL || map == NULL || rgb == NULL || h < 1 || w < 1)
        return lp_set_error(LP_EINVAL, "lp_render_heatmap: bad arguments");
    diverging = map_scale(map, (size_t)h * w, &lo, &hi);
    scale = (h < w ? h : w) >= 224 ? 1 : (224 + (h < w ? h : w) - 1) / (h < w ? h : w);
    iw = w * scale;
    ih = h * scale;
    W = iw + BAR_GAP + BAR_W + 4 + LABEL_W;
    H = ih < 60 ? 60 : ih;
    img = lp_alloc((size_t)W * H * 3, 1);
    if (img == NULL)
        return LP_ENOMEM;
    memset(img, 255, (size_t)W * H * 3);
    paint_overlay(info, x, map, h, w, scale, lo, hi, diverging, img, W);
    /* the bar: top = hi, bottom = lo */
    for (int y = 0; y < ih; y++) {
        float col[3];
        colour(1.0f - (float)y / (float)(ih > 1 ? ih - 1 : 1), diverging, col);
        for (int b = 0; b < BAR_W; b++)
            for (int c = 0; c < 3; c++)
                img[((size_t)y * W + iw + BAR_GAP + b) * 3 + c] =
                    (uint8_t)(col[c] * 255.0f + 0.5f);
    }
    snprintf(label, sizeof label, "%.3g", (double)hi);
    draw_text(img, W, H, iw + BAR_GAP + BAR_W + 4, 0, label);
    snprintf(label, sizeof label, "%.3g", (double)lo);
    draw_text(img, W, H, iw + BAR_GAP + BAR_W + 4, ih - 10, label);
    if (diverging)
        draw_text(img, W, H, iw + BAR_GAP + BAR_W + 4, ih / 2 - 5, "0");
    *rgb = img;
    *out_w = W;
    *out_h = H;
    return LP_OK;
}
