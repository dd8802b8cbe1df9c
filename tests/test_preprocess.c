/*
 * test_preprocess.c — lp_model_prepare_image against torchvision's
 * Resize(256) + CenterCrop(224) + ToTensor + Normalize on a shipped photo
 * (golden from tests/gen_preprocess_golden.py), and the grey-to-RGB rule.
 */
#include "test.h"
#include "models_util.h"

#include <stdlib.h>

static const double imagenet_mean[3] = {0.485, 0.456, 0.406};
static const double imagenet_std[3] = {0.229, 0.224, 0.225};

/* A tiny bottleneck ResNet (any input size) that asks for ImageNet
 * preprocessing at 224x224. */
static void imagenet_input_resnet(lp_lpw_builder *b)
{
    int64_t layers[1] = {1}, planes[1] = {2};
    lp_lpw_builder_set_i64(b, "input.channels", 3);
    lp_lpw_builder_set_i64(b, "input.height", 224);
    lp_lpw_builder_set_i64(b, "input.width", 224);
    lp_lpw_builder_set_i64(b, "input.resize", 256);
    lp_lpw_builder_set_i64(b, "input.crop", 224);
    lp_lpw_builder_set_str(b, "input.interpolation", "bilinear");
    lp_lpw_builder_set_f64_arr(b, "input.mean", imagenet_mean, 3);
    lp_lpw_builder_set_f64_arr(b, "input.std", imagenet_std, 3);
    lp_lpw_builder_set_i64(b, "model.num_classes", 2);
    tm_resnet_meta(b, "tiny_imagenet_input", "bottleneck", layers, planes, 1,
                   "imagenet", 4, "projection", "fc");
}

TEST(preprocess_matches_torchvision_on_photo)
{
    lp_model *m = tm_random_model(imagenet_input_resnet, 5);
    lp_image img = {0};
    lp_npy grid = {0}, stats = {0};
    float *x = lpt_floats(3 * 224 * 224);
    double max_grid = 0.0;
    CHECK_MSG(m != NULL, "%s", lp_last_error());
    CHECK_OK(lp_image_load(&img, lpt_path("weights/samples/chelsea.png")));
    CHECK_OK(lp_npy_load(&grid, lpt_path("tests/golden/preprocess_chelsea.npy")));
    CHECK_OK(lp_npy_load(&stats, lpt_path("tests/golden/preprocess_chelsea_stats.npy")));
    if (m == NULL || img.pixels == NULL || grid.data == NULL || stats.data == NULL)
        goto done;
    CHECK_OK(lp_model_prepare_image(m, &img, x));
    CHECK(grid.ndim == 3 && grid.shape[1] == 56 && grid.shape[2] == 56);
    for (int c = 0; c < 3; c++) {
        double mean = 0.0, mean_abs = 0.0;
        const float *ref = (const float *)stats.data;
        for (int i = 0; i < 224 * 224; i++) {
            mean += x[c * 224 * 224 + i];
            mean_abs += fabs(x[c * 224 * 224 + i]);
        }
        mean /= 224 * 224;
        mean_abs /= 224 * 224;
        /* the bar: mean abs difference <= 1/255 in pixel units */
        CHECK_MSG(fabs(mean - ref[c]) <= 1e-4, "channel %d mean %.6f vs %.6f", c, mean, ref[c]);
        CHECK_MSG(fabs(mean_abs - ref[3 + c]) <= 1e-4, "channel %d mean |x| %.6f vs %.6f",
                  c, mean_abs, ref[3 + c]);
        for (int y = 0; y < 56; y++)
            for (int xx = 0; xx < 56; xx++) {
                double d = fabs(x[(c * 224 + 4 * y) * 224 + 4 * xx] -
                                ((const float *)grid.data)[(c * 56 + y) * 56 + xx]);
                if (d > max_grid)
                    max_grid = d;
            }
    }
    /* PIL-exact resampling: identical 8-bit pixels, so only float rounding
     * of the normalisation remains; 1 level = 1/255/std ~ 0.0175 */
    CHECK_MSG(max_grid <= 1e-5, "max |loupe - torchvision| on the grid %.3g", max_grid);
done:
    lp_image_free(&img);
    lp_npy_free(&grid);
    lp_npy_free(&stats);
    lp_model_free(m);
}

TEST(preprocess_grey_image_fills_three_channels)
{
    lp_model *m = tm_random_model(imagenet_input_resnet, 6);
    lp_image img = {0};
    float *x = lpt_floats(3 * 224 * 224);
    CHECK_MSG(m != NULL, "%s", lp_last_error());
    if (m == NULL)
        return;
    img.width = 300;
    img.height = 260;
    img.channels = 1;
    img.pixels = lp_alloc((size_t)300 * 260, 1);
    for (int i = 0; i < 300 * 260; i++)
        img.pixels[i] = (uint8_t)((i * 7) % 251);
    CHECK_OK(lp_model_prepare_image(m, &img, x));
    /* each channel is the same grey value, normalised with its own mean/std */
    for (int i = 0; i < 224 * 224; i += 97) {
        double g0 = x[i] * imagenet_std[0] + imagenet_mean[0];
        double g1 = x[224 * 224 + i] * imagenet_std[1] + imagenet_mean[1];
        double g2 = x[2 * 224 * 224 + i] * imagenet_std[2] + imagenet_mean[2];
        CHECK_MSG(fabs(g0 - g1) <= 1e-6 && fabs(g0 - g2) <= 1e-6, "pixel %d: %g %g %g", i, g0, g1, g2);
    }
    lp_image_free(&img);
    lp_model_free(m);
}
