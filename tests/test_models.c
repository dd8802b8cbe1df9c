/*
 * test_models.c — model builders and the executor on small random
 * networks of every family and layout, written as .lpw files in memory:
 * input gradients against finite differences of the whole network,
 * batch and thread invariance, names and aliases, refusal of files whose
 * tensors don't match their configuration.
 */
#include "test.h"
#include "models_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- configurations ------------------------------------------------- */

static void meta_input(lp_lpw_builder *b, int c, int h, int w, int classes)
{
    lp_lpw_builder_set_i64(b, "input.channels", c);
    lp_lpw_builder_set_i64(b, "input.height", h);
    lp_lpw_builder_set_i64(b, "input.width", w);
    lp_lpw_builder_set_i64(b, "model.num_classes", classes);
}

void tm_resnet_meta(lp_lpw_builder *b, const char *name, const char *block,
                    const int64_t *layers, const int64_t *planes, int stages,
                    const char *stem, int stem_width, const char *shortcut,
                    const char *fc)
{
    lp_lpw_builder_set_str(b, "general.architecture", "resnet");
    lp_lpw_builder_set_str(b, "general.name", name);
    lp_lpw_builder_set_str(b, "resnet.block", block);
    lp_lpw_builder_set_i64_arr(b, "resnet.layers", layers, stages);
    lp_lpw_builder_set_i64_arr(b, "resnet.planes", planes, stages);
    lp_lpw_builder_set_str(b, "resnet.stem", stem);
    lp_lpw_builder_set_i64(b, "resnet.stem_width", stem_width);
    lp_lpw_builder_set_str(b, "resnet.shortcut", shortcut);
    lp_lpw_builder_set_f64(b, "resnet.bn_eps", 1e-5);
    lp_lpw_builder_set_str(b, "resnet.fc", fc);
}

void tiny_cifar_resnet(lp_lpw_builder *b)
{
    int64_t layers[2] = {1, 2}, planes[2] = {4, 8};
    meta_input(b, 3, 8, 8, 3);
    tm_resnet_meta(b, "tiny_cifar_resnet", "basic", layers, planes, 2, "cifar", 4, "option_a", "linear");
}

void tiny_bottleneck_resnet(lp_lpw_builder *b)
{
    int64_t layers[2] = {1, 2}, planes[2] = {2, 4};
    meta_input(b, 3, 17, 17, 5);
    tm_resnet_meta(b, "tiny_resnext", "bottleneck", layers, planes, 2, "imagenet", 4, "projection", "fc");
    lp_lpw_builder_set_i64(b, "resnet.groups", 2);
    lp_lpw_builder_set_i64(b, "resnet.width_per_group", 64);
}

static void tiny_vit_common(lp_lpw_builder *b, const char *layout)
{
    lp_lpw_builder_set_str(b, "general.architecture", "vit");
    lp_lpw_builder_set_str(b, "general.name", layout);
    lp_lpw_builder_set_str(b, "vit.layout", layout);
    lp_lpw_builder_set_i64(b, "vit.image_size", 8);
    lp_lpw_builder_set_i64(b, "vit.patch_size", 4);
    lp_lpw_builder_set_i64(b, "vit.hidden_size", 8);
    lp_lpw_builder_set_i64(b, "vit.num_layers", 2);
    lp_lpw_builder_set_i64(b, "vit.num_heads", 2);
    lp_lpw_builder_set_i64(b, "vit.mlp_dim", 16);
    lp_lpw_builder_set_f64(b, "vit.ln_eps", 1e-6);
    lp_lpw_builder_set_str(b, "vit.mlp_act", "gelu_erf");
    lp_lpw_builder_set_i64(b, "vit.qkv_bias", 1);
    lp_lpw_builder_set_str(b, "vit.pool", "token");
    lp_lpw_builder_set_i64(b, "vit.final_norm", 1);
}

void tiny_vit_timm(lp_lpw_builder *b)
{
    tiny_vit_common(b, "timm");
    meta_input(b, 3, 8, 8, 3);
}

void tiny_vit_torchvision(lp_lpw_builder *b)
{
    tiny_vit_common(b, "torchvision");
    meta_input(b, 3, 8, 8, 4);
    lp_lpw_builder_set_str(b, "vit.mlp_act", "gelu_tanh");
}

void tiny_vit_timm_mean(lp_lpw_builder *b)
{
    tiny_vit_common(b, "timm");
    meta_input(b, 3, 8, 8, 3);
    lp_lpw_builder_set_str(b, "vit.pool", "mean");
    lp_lpw_builder_set_i64(b, "vit.final_norm", 0);
    lp_lpw_builder_set_i64(b, "vit.head_norm", 1);
}

void tiny_vit_lucidrains(lp_lpw_builder *b)
{
    tiny_vit_common(b, "lucidrains");
    meta_input(b, 1, 8, 8, 3);
    lp_lpw_builder_set_i64(b, "vit.head_dim", 6);
    lp_lpw_builder_set_i64(b, "vit.qkv_bias", 0);
    lp_lpw_builder_set_str(b, "vit.mlp_act", "relu");
    lp_lpw_builder_set_f64(b, "vit.ln_eps", 1e-5);
    lp_lpw_builder_set_i64(b, "vit.final_norm", 0);
    lp_lpw_builder_set_i64(b, "vit.head_norm", 1);
}

typedef struct {
    const char *name;
    tm_config_fn config;
} tiny_case;

static const tiny_case tiny_cases[] = {
    {"cifar_resnet", tiny_cifar_resnet},
    {"bottleneck_resnet", tiny_bottleneck_resnet},
    {"vit_timm", tiny_vit_timm},
    {"vit_torchvision", tiny_vit_torchvision},
    {"vit_timm_mean", tiny_vit_timm_mean},
    {"vit_lucidrains", tiny_vit_lucidrains},
};
#define N_TINY (int)(sizeof tiny_cases / sizeof tiny_cases[0])

/* ---- tests ------------------------------------------------------------ */

static size_t input_size(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_c * in->in_h * in->in_w;
}

/* loss = sum(r * logits) */
static double loss_of(lp_model *m, const float *x, int n, const float *r)
{
    int k = lp_model_get_info(m)->out_dim;
    float *y = malloc((size_t)n * k * sizeof(float));
    double l = 0.0;
    if (lp_model_forward(m, x, n, y, 0) == LP_OK)
        for (int i = 0; i < n * k; i++)
            l += (double)r[i] * y[i];
    free(y);
    return l;
}

TEST(models_input_gradient_matches_finite_differences)
{
    for (int c = 0; c < N_TINY; c++) {
        lp_model *m = tm_random_model(tiny_cases[c].config, 11 + c);
        lpt_rng rng = lpt_rng_seed(100 + c);
        int n = 2, k;
        size_t per;
        float *x, *r, *dx;
        double num2 = 0.0, err2 = 0.0;
        int kinks = 0;
        CHECK_MSG(m != NULL, "%s: %s", tiny_cases[c].name, lp_last_error());
        if (m == NULL)
            continue;
        k = lp_model_get_info(m)->out_dim;
        per = input_size(m);
        x = lpt_floats(n * per);
        r = lpt_floats((size_t)n * k);
        dx = lpt_floats(n * per);
        lpt_fill_normal(&rng, x, n * per, 1.0);
        lpt_fill_normal(&rng, r, (size_t)n * k, 1.0);
        CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
        CHECK_OK(lp_model_backward(m, r, dx));
        /* Central differences at two step sizes: where they disagree the
         * step crossed a ReLU/max kink and the sample says nothing about
         * the gradient, so it is skipped (at most a few are). */
        for (int s = 0; s < 24; s++) {
            size_t i = (size_t)(lpt_rng_u64(&rng) % (n * per));
            float saved = x[i];
            double g[2];
            for (int e = 0; e < 2; e++) {
                const float eps = e ? 1e-3f : 2e-3f;
                double lp, lm;
                x[i] = saved + eps;
                lp = loss_of(m, x, n, r);
                x[i] = saved - eps;
                lm = loss_of(m, x, n, r);
                x[i] = saved;
                g[e] = (lp - lm) / (2.0 * eps);
            }
            if (fabs(g[0] - g[1]) > 0.02 * fabs(g[1]) + 1e-6) {
                kinks++;
                continue;
            }
            num2 += g[1] * g[1];
            err2 += (g[1] - dx[i]) * (g[1] - dx[i]);
        }
        CHECK_MSG(kinks <= 6, "%s: %d of 24 samples hit a kink", tiny_cases[c].name, kinks);
        CHECK_MSG(err2 <= 4e-4 * num2 + 1e-10,
                  "%s: relative L2 error of the input gradient %.3g",
                  tiny_cases[c].name, sqrt(err2 / (num2 + 1e-30)));
        lp_model_free(m);
    }
}

TEST(models_batch_and_threads_do_not_change_outputs)
{
    for (int c = 0; c < N_TINY; c++) {
        lp_model *m = tm_random_model(tiny_cases[c].config, 21 + c);
        lpt_rng rng = lpt_rng_seed(7);
        int k, threads = lp_get_num_threads();
        size_t per;
        float *x, *y2, *y1, *yt;
        if (m == NULL) {
            CHECK_MSG(0, "%s: %s", tiny_cases[c].name, lp_last_error());
            continue;
        }
        k = lp_model_get_info(m)->out_dim;
        per = input_size(m);
        x = lpt_floats(3 * per);
        y2 = lpt_floats(3 * (size_t)k);
        y1 = lpt_floats(3 * (size_t)k);
        yt = lpt_floats(3 * (size_t)k);
        lpt_fill_normal(&rng, x, 3 * per, 1.0);
        CHECK_OK(lp_model_forward(m, x, 3, y2, 0));
        for (int i = 0; i < 3; i++)
            CHECK_OK(lp_model_forward(m, x + i * per, 1, y1 + (size_t)i * k, LP_RUN_GRAD));
        CHECK_CLOSE_F(tiny_cases[c].name, y1, y2, 3 * (size_t)k, 1e-6);
        lp_set_num_threads(1);
        CHECK_OK(lp_model_forward(m, x, 3, yt, LP_RUN_KEEP_ALL));
        lp_set_num_threads(threads);
        CHECK_MSG(memcmp(yt, y2, 3 * (size_t)k * sizeof(float)) == 0,
                  "%s: outputs differ between thread counts", tiny_cases[c].name);
        lp_model_free(m);
    }
}

TEST(models_keep_all_exposes_every_layer)
{
    lp_model *m = tm_random_model(tiny_bottleneck_resnet, 3);
    lpt_rng rng = lpt_rng_seed(5);
    float *x;
    int k;
    if (m == NULL) {
        CHECK_MSG(0, "%s", lp_last_error());
        return;
    }
    x = lpt_floats(input_size(m));
    k = lp_model_get_info(m)->out_dim;
    lpt_fill_normal(&rng, x, input_size(m), 1.0);
    CHECK_OK(lp_model_forward(m, x, 1, NULL, 0));
    CHECK(lp_model_activation(m, 1) == NULL); /* inference frees early */
    CHECK_OK(lp_model_forward(m, x, 1, NULL, LP_RUN_GRAD | LP_RUN_KEEP_ALL));
    for (int l = 0; l < lp_model_layer_count(m); l++)
        CHECK(lp_model_activation(m, l) != NULL);
    {
        float *r = lpt_floats((size_t)k);
        r[0] = 1.0f;
        CHECK_OK(lp_model_backward(m, r, NULL));
        for (int l = 0; l < lp_model_layer_count(m); l++)
            CHECK(lp_model_gradient(m, l) != NULL);
    }
    lp_model_free(m);
}

TEST(models_layer_names_follow_pytorch)
{
    lp_model *r = tm_random_model(tiny_bottleneck_resnet, 1);
    lp_model *v = tm_random_model(tiny_vit_torchvision, 2);
    lp_model *t = tm_random_model(tiny_vit_timm, 3);
    lp_model *l = tm_random_model(tiny_vit_lucidrains, 4);
    if (!r || !v || !t || !l) {
        CHECK_MSG(0, "%s", lp_last_error());
        goto done;
    }
    CHECK(lp_model_find_layer(r, "layer2.1.conv2") > 0);
    CHECK(lp_model_find_layer(r, "layer2.0.downsample.0") > 0);
    CHECK(lp_model_find_layer(r, "layer2") == lp_model_find_layer(r, "layer2.1"));
    CHECK(lp_model_find_layer(r, "layer2.1") == lp_model_find_layer(r, "layer2.1.relu"));
    CHECK(lp_model_find_layer(r, "fc") == lp_model_layer_count(r) - 1);
    CHECK(lp_model_find_layer(v, "encoder.layers.encoder_layer_1.mlp") > 0);
    CHECK(lp_model_find_layer(v, "encoder.layers.encoder_layer_1.self_attention") > 0);
    CHECK(lp_model_find_layer(v, "heads") == lp_model_layer_count(v) - 1);
    CHECK(lp_model_find_layer(t, "blocks.1.attn") > 0);
    CHECK(lp_model_find_layer(t, "blocks.1") == lp_model_find_layer(t, "blocks.1.resid_post"));
    CHECK(lp_model_find_layer(l, "transformer.layers.1.0") > 0);
    CHECK(lp_model_find_layer(l, "mlp_head") == lp_model_layer_count(l) - 1);
    lp_clear_error();
    CHECK(lp_model_find_layer(r, "layer2.1.conv9") == LP_ENOTFOUND);
    CHECK_MSG(strstr(lp_last_error(), "layer2.1.conv2") != NULL,
              "no suggestion in: %s", lp_last_error());
done:
    lp_model_free(r);
    lp_model_free(v);
    lp_model_free(t);
    lp_model_free(l);
}

TEST(models_refuse_files_that_do_not_match_their_configuration)
{
    static const char *missing[] = {"layer1.0.bn2.running_var", NULL};
    lp_model *m = NULL;
    /* a missing tensor is named */
    CHECK(tm_model_with_edit(tiny_bottleneck_resnet, TM_DROP, "layer1.0.bn2.running_var", &m) != LP_OK);
    CHECK_MSG(strstr(lp_last_error(), missing[0]) != NULL, "%s", lp_last_error());
    /* a wrong shape is named with both shapes */
    CHECK(tm_model_with_edit(tiny_bottleneck_resnet, TM_RESHAPE, "fc.weight", &m) != LP_OK);
    CHECK_MSG(strstr(lp_last_error(), "fc.weight") != NULL, "%s", lp_last_error());
    /* an extra tensor is refused */
    CHECK(tm_model_with_edit(tiny_vit_timm, TM_EXTRA, "blocks.9.norm1.weight", &m) != LP_OK);
    CHECK_MSG(strstr(lp_last_error(), "blocks.9.norm1.weight") != NULL, "%s", lp_last_error());
    /* the unedited file builds */
    CHECK_OK(tm_model_with_edit(tiny_vit_timm, TM_NONE, NULL, &m));
    lp_model_free(m);
}

TEST(models_refuse_out_of_range_configuration)
{
    lp_model *m = NULL;
    CHECK(tm_model_with_meta_i64(tiny_cifar_resnet, "input.channels", 0, &m) != LP_OK);
    CHECK(tm_model_with_meta_i64(tiny_cifar_resnet, "model.num_classes", -1, &m) != LP_OK);
    CHECK(tm_model_with_meta_i64(tiny_vit_timm, "vit.num_heads", 0, &m) != LP_OK);
    CHECK(tm_model_with_meta_i64(tiny_vit_timm, "vit.patch_size", 3, &m) != LP_OK);
    CHECK(tm_model_with_meta_i64(tiny_vit_timm, "vit.num_layers", 100000, &m) != LP_OK);
    CHECK(tm_model_with_meta_str(tiny_cifar_resnet, "resnet.block", "mystery", &m) != LP_OK);
    CHECK(tm_model_with_meta_str(tiny_cifar_resnet, "general.architecture", "lstm", &m) != LP_OK);
    CHECK(lp_last_error()[0] != '\0');
}

/* ---- the memory bar -------------------------------------------------- */

static void resnet50_config(lp_lpw_builder *b)
{
    int64_t layers[4] = {3, 4, 6, 3}, planes[4] = {64, 128, 256, 512};
    meta_input(b, 3, 224, 224, 1000);
    tm_resnet_meta(b, "resnet50", "bottleneck", layers, planes, 4, "imagenet", 64, "projection", "fc");
}

/* Issue 3's bar: an inference-only forward of ResNet-50 at batch 1 needs
 * no more than 2x the weights plus the two largest activations. Checked
 * with the library's own allocation budget (every byte the model, its
 * activation arena and the kernels' workspaces take goes through lp_alloc):
 * with the limit set at the bar, the pass must succeed. */
TEST(models_resnet50_inference_fits_the_memory_bar)
{
    lp_model *m = tm_random_model(resnet50_config, 11);
    size_t largest = (size_t)64 * 112 * 112 * sizeof(float); /* conv1, layer1 */
    size_t weights, bar, old_limit = lp_memory_limit();
    float *x = malloc((size_t)3 * 224 * 224 * sizeof(float)), logits[1000];
    CHECK(m != NULL && x != NULL);
    if (m == NULL || x == NULL) {
        lp_model_free(m);
        free(x);
        return;
    }
    weights = lp_memory_in_use(); /* the file's tensors and the model's tables */
    bar = 2 * weights + 2 * largest;
    for (size_t i = 0; i < (size_t)3 * 224 * 224; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    lp_set_memory_limit(bar);
    CHECK_MSG(lp_model_forward(m, x, 1, logits, 0) == LP_OK, "%s", lp_last_error());
    CHECK_MSG(lp_memory_in_use() <= bar, "%zu bytes in use, bar %zu", lp_memory_in_use(), bar);
    printf("    ResNet-50 batch 1: %.1f MB of weights, %.1f MB live after the pass, bar %.1f MB\n",
           weights / 1e6, lp_memory_in_use() / 1e6, bar / 1e6);
    lp_set_memory_limit(old_limit == SIZE_MAX ? 0 : old_limit);
    lp_model_free(m);
    free(x);
}
