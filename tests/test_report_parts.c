/*
 * test_report_parts.c — the library pieces the HTML report of `loupe
 * evaluate` is made of: the in-memory PNG encoder (lp_png_encode) and the
 * map thumbnails (lp_render_overlay). The report itself is checked in a
 * browser by tests/test_report.sh.
 */
#include "test.h"

#include <math.h>
#include <string.h>

/* test_png.c's temporary directory */
const char *lpt_img_tmp_path(const char *name);
void lpt_img_tmp_cleanup(void);

static void gradient_pixels(uint8_t *px, int w, int h, int c)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                px[((size_t)y * w + x) * c + k] = (uint8_t)(x * 7 + y * 3 + k * 50);
}

TEST(png_encode_equals_png_write_and_decodes)
{
    static const int sizes[][2] = {{1, 1}, {5, 3}, {40, 29}};
    for (int c = 1; c <= 4; c++)
        for (int s = 0; s < 3; s++) {
            int w = sizes[s][0], h = sizes[s][1];
            uint8_t *px = lp_alloc((size_t)w * h * c, 1), *png = NULL, *file = NULL;
            size_t png_size = 0, file_size = 0;
            const char *path = lpt_img_tmp_path("enc.png");
            lp_image img = {0};
            if (px == NULL)
                continue;
            gradient_pixels(px, w, h, c);
            CHECK_OK(lp_png_encode(&png, &png_size, px, w, h, c));
            CHECK_OK(lp_png_write(path, px, w, h, c));
            CHECK_OK(lp_read_file(path, 1 << 20, &file, &file_size));
            CHECK_MSG(png != NULL && file != NULL && png_size == file_size &&
                          memcmp(png, file, png_size) == 0,
                      "%dx%dx%d: encoded bytes differ from the written file", w, h, c);
            CHECK_OK(lp_png_decode(&img, png, png_size));
            CHECK_MSG(img.width == w && img.height == h && img.channels == c &&
                          memcmp(img.pixels, px, (size_t)w * h * c) == 0,
                      "%dx%dx%d: decoded pixels differ", w, h, c);
            lp_image_free(&img);
            lp_free(png);
            lp_free(file);
            lp_free(px);
        }
    lpt_img_tmp_cleanup();
}

TEST(png_encode_bad_arguments)
{
    uint8_t px[12] = {0}, *out = NULL;
    size_t size = 0;
    CHECK_FAILS(lp_png_encode(NULL, &size, px, 2, 2, 3));
    CHECK_FAILS(lp_png_encode(&out, NULL, px, 2, 2, 3));
    CHECK_FAILS(lp_png_encode(&out, &size, NULL, 2, 2, 3));
    CHECK_FAILS(lp_png_encode(&out, &size, px, 0, 2, 3));
    CHECK_FAILS(lp_png_encode(&out, &size, px, 2, 2, 0));
    CHECK_FAILS(lp_png_encode(&out, &size, px, 70000, 1, 1));
    CHECK(out == NULL);
}

static lp_model_info overlay_info(int c, int h, int w)
{
    lp_model_info info;
    memset(&info, 0, sizeof info);
    info.in_c = c;
    info.in_h = h;
    info.in_w = w;
    for (int k = 0; k < 3; k++) {
        info.mean[k] = 0.5f;
        info.std[k] = 0.25f;
    }
    return info;
}

/* At 224 x 224 the heatmap is not scaled up, so its left part is the
 * overlay pixel for pixel (the colour bar is on the right). */
TEST(render_overlay_is_the_heatmap_without_its_bar)
{
    int h = 224, w = 224, bw = 0, bh = 0;
    lp_model_info info = overlay_info(3, h, w);
    float *x = lpt_floats((size_t)3 * h * w), *map = lpt_floats((size_t)h * w);
    uint8_t *overlay = NULL, *heat = NULL;
    float range[2];
    for (int i = 0; i < 3 * h * w; i++)
        x[i] = (float)sin(0.01 * i);
    for (int i = 0; i < h * w; i++)
        map[i] = (float)(i % 97) - 10.0f; /* both signs: diverging */
    CHECK_OK(lp_render_overlay(&info, x, map, h, w, &overlay, range));
    CHECK_OK(lp_render_heatmap(&info, x, map, h, w, &heat, &bw, &bh));
    CHECK_MSG(range[0] == -86.0f && range[1] == 86.0f,
              "diverging range {%g, %g}, want {-86, 86}", range[0], range[1]);
    if (overlay != NULL && heat != NULL)
        for (int y = 0; y < h; y++)
            CHECK_MSG(memcmp(overlay + (size_t)y * w * 3, heat + (size_t)y * bw * 3,
                             (size_t)w * 3) == 0, "row %d differs", y);
    lp_free(overlay);
    lp_free(heat);
}

TEST(render_overlay_grey_input_and_range)
{
    int h = 5, w = 7;
    lp_model_info info = overlay_info(1, h, w);
    float *x = lpt_floats((size_t)h * w), *map = lpt_floats((size_t)h * w);
    uint8_t *rgb = NULL;
    float range[2];
    for (int i = 0; i < h * w; i++) {
        x[i] = 0.0f;             /* de-normalised: 0.5 grey */
        map[i] = (float)i - 1.0f; /* tiny negative part: sequential */
    }
    map[3] = NAN;
    CHECK_OK(lp_render_overlay(&info, x, map, h, w, &rgb, range));
    CHECK_MSG(range[0] == -1.0f && range[1] == (float)(h * w - 2),
              "range {%g, %g}", range[0], range[1]);
    CHECK_FAILS(lp_render_overlay(&info, NULL, map, h, w, &rgb, range));
    CHECK_FAILS(lp_render_overlay(&info, x, map, 0, w, &rgb, range));
    lp_free(rgb);
}
