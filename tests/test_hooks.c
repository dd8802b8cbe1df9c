/*
 * test_hooks.c — forward and backward hooks, kept layers, replaced
 * backward rules, backward from any layer, q/k/v views and patterns, on
 * small random networks.
 */
#include "test.h"
#include "models_util.h"

#include <stdlib.h>
#include <string.h>

static float *random_input(lp_model *m, int n, uint64_t seed)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t count = (size_t)n * in->in_c * in->in_h * in->in_w;
    float *x = lpt_floats(count);
    lpt_rng rng = lpt_rng_seed(seed);
    lpt_fill_normal(&rng, x, count, 1.0);
    return x;
}

typedef struct {
    float *copy;
    size_t count;
    int calls;
    float scale; /* multiply the tensor by this (1 = read only) */
} grab;

static int grab_hook(const lp_hook_tensor *t, void *user)
{
    grab *g = user;
    size_t count = (size_t)t->n * t->image_stride;
    g->calls++;
    if (g->copy == NULL) {
        g->copy = lpt_floats(count);
        g->count = count;
    }
    memcpy(g->copy, t->data, count * sizeof(float));
    if (g->scale != 1.0f)
        for (size_t i = 0; i < count; i++)
            t->data[i] *= g->scale;
    return LP_OK;
}

TEST(hooks_capture_matches_activation_and_gradient)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 3);
    int n = 2, layer, k;
    float *x, *dy, *y;
    grab fwd = {NULL, 0, 0, 1.0f}, bwd = {NULL, 0, 0, 1.0f};
    CHECK(m != NULL);
    if (m == NULL) return;
    layer = lp_model_find_layer(m, "layer2.0.relu1");
    CHECK(layer > 0);
    k = lp_model_get_info(m)->out_dim;
    x = random_input(m, n, 1);
    dy = lpt_floats((size_t)n * k);
    y = lpt_floats((size_t)n * k);
    for (int i = 0; i < n * k; i++) dy[i] = (float)(i % 3) - 1.0f;
    CHECK(lp_model_add_hook(m, "layer2.0.relu1", LP_HOOK_FORWARD, grab_hook, &fwd) >= 0);
    CHECK(lp_model_add_hook(m, "layer2.0.relu1", LP_HOOK_BACKWARD, grab_hook, &bwd) >= 0);
    CHECK_OK(lp_model_forward(m, x, n, y, LP_RUN_GRAD | LP_RUN_KEEP_ALL));
    CHECK_OK(lp_model_backward(m, dy, NULL));
    CHECK(fwd.calls == 1 && bwd.calls == 1);
    if (fwd.copy && bwd.copy) {
        CHECK(!memcmp(fwd.copy, lp_model_activation(m, layer), fwd.count * sizeof(float)));
        CHECK(!memcmp(bwd.copy, lp_model_gradient(m, layer), bwd.count * sizeof(float)));
    }
    lp_model_free(m);
}

TEST(hooks_change_the_forward_and_the_backward)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 4);
    int n = 2, k, last;
    size_t per;
    float *x, *y0, *y1, *dx0, *dx1, *dy;
    grab g = {NULL, 0, 0, 0.0f};
    CHECK(m != NULL);
    if (m == NULL) return;
    k = lp_model_get_info(m)->out_dim;
    last = lp_model_layer_count(m) - 1;
    per = (size_t)lp_model_get_info(m)->in_c * lp_model_get_info(m)->in_h *
          lp_model_get_info(m)->in_w;
    x = random_input(m, n, 2);
    y0 = lpt_floats((size_t)n * k);
    y1 = lpt_floats((size_t)n * k);
    dy = lpt_floats((size_t)n * k);
    dx0 = lpt_floats(n * per);
    dx1 = lpt_floats(n * per);
    for (int i = 0; i < n * k; i++) dy[i] = 1.0f;
    /* zero the last feature map: the logits become the classifier's bias */
    CHECK(lp_model_add_hook(m, "layer2", LP_HOOK_FORWARD, grab_hook, &g) >= 0);
    CHECK_OK(lp_model_forward(m, x, n, y0, 0));
    for (int b = 0; b < n; b++)
        for (int j = 0; j < k; j++)
            CHECK_NEAR(y0[b * k + j], y0[j], 0.0); /* same for every image */
    lp_model_clear_hooks(m);
    /* doubling a gradient on its way down doubles the input gradient */
    CHECK_OK(lp_model_forward(m, x, n, y1, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx0));
    g.scale = 2.0f;
    g.copy = NULL;
    CHECK(lp_model_add_hook(m, "layer1.0.conv1", LP_HOOK_BACKWARD, grab_hook, &g) >= 0);
    CHECK_OK(lp_model_forward(m, x, n, y1, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx1));
    /* layer1.0.conv1 is on the main path only (the shortcut bypasses it),
     * so compare with a hook at the first conv, which everything passes */
    lp_model_clear_hooks(m);
    g.copy = NULL;
    CHECK(lp_model_add_hook(m, "conv1", LP_HOOK_BACKWARD, grab_hook, &g) >= 0);
    CHECK_OK(lp_model_forward(m, x, n, y1, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx1));
    for (size_t i = 0; i < n * per; i++)
        CHECK_NEAR(dx1[i], 2.0f * dx0[i], 1e-5 * (1.0 + fabs(dx0[i])));
    (void)last;
    lp_model_free(m);
}

TEST(hooks_keep_a_layer_in_inference)
{
    lp_model *m = tm_random_model(tiny_bottleneck_resnet, 5);
    int layer, other;
    float *x;
    CHECK(m != NULL);
    if (m == NULL) return;
    layer = lp_model_find_layer(m, "layer1.0.conv2");
    other = lp_model_find_layer(m, "layer1.0.conv1");
    x = random_input(m, 1, 3);
    CHECK_OK(lp_model_forward(m, x, 1, NULL, 0));
    CHECK(lp_model_activation(m, layer) == NULL);
    CHECK(lp_model_add_hook(m, "layer1.0.conv2", LP_HOOK_KEEP, NULL, NULL) >= 0);
    CHECK_OK(lp_model_forward(m, x, 1, NULL, 0));
    CHECK(lp_model_activation(m, layer) != NULL);
    CHECK(lp_model_activation(m, other) == NULL);
    lp_model_free(m);
}

TEST(hooks_backward_from_any_layer)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 6);
    int n = 2, k, last, stop;
    float *x, *dy, *dx0, *dx1;
    size_t per;
    CHECK(m != NULL);
    if (m == NULL) return;
    k = lp_model_get_info(m)->out_dim;
    last = lp_model_layer_count(m) - 1;
    stop = lp_model_find_layer(m, "layer2.0.relu1");
    per = (size_t)3 * 8 * 8;
    x = random_input(m, n, 4);
    dy = lpt_floats((size_t)n * k);
    dx0 = lpt_floats(n * per);
    dx1 = lpt_floats(n * per);
    for (int i = 0; i < n * k; i++) dy[i] = (float)i - 2.0f;
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD | LP_RUN_KEEP_ALL));
    CHECK_OK(lp_model_backward(m, dy, dx0));
    {
        size_t count = (size_t)n * 8 * 4 * 4; /* layer2 maps: 8 x 4 x 4 */
        float *full = lpt_floats(count);
        memcpy(full, lp_model_gradient(m, stop), count * sizeof(float));
        CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
        CHECK_OK(lp_model_backward_from(m, last, dy, stop, NULL));
        CHECK(lp_model_gradient(m, stop) != NULL);
        if (lp_model_gradient(m, stop))
            CHECK(!memcmp(full, lp_model_gradient(m, stop), count * sizeof(float)));
    }
    CHECK_OK(lp_model_backward_from(m, last, dy, 0, dx1));
    CHECK(!memcmp(dx0, dx1, n * per * sizeof(float)));
    CHECK_FAILS(lp_model_backward_from(m, 3, dy, 5, NULL));
    lp_model_free(m);
}

/* The default ReLU rule, written as a replaced rule. */
static int relu_rule(const lp_backward_args *a, void *user)
{
    (void)user;
    if (a->dx)
        for (size_t i = 0; i < a->x_count; i++)
            a->dx[i] += a->x[i] > 0.0f ? a->dy[i] : 0.0f;
    return LP_OK;
}

static int zero_rule(const lp_backward_args *a, void *user)
{
    (void)a;
    (void)user;
    return LP_OK;
}

TEST(hooks_replace_backward_rules)
{
    lp_model *m = tm_random_model(tiny_bottleneck_resnet, 7);
    int n = 1, k;
    size_t per;
    float *x, *dy, *dx0, *dx1;
    CHECK(m != NULL);
    if (m == NULL) return;
    k = lp_model_get_info(m)->out_dim;
    per = (size_t)3 * 17 * 17;
    x = random_input(m, n, 5);
    dy = lpt_floats(k);
    dx0 = lpt_floats(per);
    dx1 = lpt_floats(per);
    dy[1] = 1.0f;
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx0));
    CHECK(lp_model_set_backward_rule(m, "kind:relu", relu_rule, NULL) > 0);
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx1));
    CHECK(!memcmp(dx0, dx1, per * sizeof(float)));
    CHECK(lp_model_set_backward_rule(m, "relu", zero_rule, NULL) == 1); /* the stem's */
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx1));
    for (size_t i = 0; i < per; i++)
        CHECK(dx1[i] == 0.0f);
    CHECK(lp_model_set_backward_rule(m, "kind:relu", NULL, NULL) > 0);
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_GRAD));
    CHECK_OK(lp_model_backward(m, dy, dx1));
    CHECK(!memcmp(dx0, dx1, per * sizeof(float)));
    lp_model_free(m);
}

static int check_q_view(const lp_hook_tensor *t, void *user)
{
    int *ok = user;
    *ok = t->ndim == 2 && t->dims[1] * 3 == t->row_stride;
    return LP_OK;
}

/* Probabilities set to the identity: each token attends to itself only,
 * so the attention output is v. */
static int identity_probs(const lp_hook_tensor *t, void *user)
{
    int maps = t->n * t->dims[0], tok = t->dims[1];
    (void)user;
    for (int h = 0; h < maps; h++)
        for (int i = 0; i < tok; i++)
            for (int j = 0; j < tok; j++)
                t->data[((size_t)h * tok + i) * tok + j] = i == j ? 1.0f : 0.0f;
    return LP_OK;
}

TEST(hooks_attention_points)
{
    lp_model *m = tm_random_model(tiny_vit_timm, 8);
    int ok = 0, qkv, att, n = 2;
    float *x;
    CHECK(m != NULL);
    if (m == NULL) return;
    x = random_input(m, n, 6);
    CHECK(lp_model_add_hook(m, "blocks.*.attn.q", LP_HOOK_FORWARD, check_q_view, &ok) >= 0);
    CHECK(lp_model_add_hook(m, "blocks.1.attn.probs", LP_HOOK_FORWARD, identity_probs, NULL) >= 0);
    CHECK(lp_model_find_layer(m, "blocks.1.attn.attn_drop") ==
          lp_model_find_layer(m, "blocks.1.attn.probs"));
    CHECK_OK(lp_model_forward(m, x, n, NULL, LP_RUN_KEEP_ALL));
    CHECK(ok);
    qkv = lp_model_find_layer(m, "blocks.1.attn.qkv");
    att = lp_model_find_layer(m, "blocks.1.attn.attention");
    {
        int dims[4], tokens, inner;
        const float *a = lp_model_activation(m, att), *q = lp_model_activation(m, qkv);
        lp_model_layer_shape(m, att, dims);
        tokens = dims[0];
        inner = dims[1];
        for (int b = 0; b < n; b++)
            for (int t = 0; t < tokens; t++)
                for (int j = 0; j < inner; j++)
                    CHECK_NEAR(a[((size_t)b * tokens + t) * inner + j],
                               q[((size_t)b * tokens + t) * 3 * inner + 2 * inner + j], 1e-6);
    }
    CHECK(lp_model_add_hook(m, "blocks.9.*", LP_HOOK_FORWARD, check_q_view, &ok) == LP_ENOTFOUND);
    CHECK(strstr(lp_last_error(), "blocks.9") != NULL);
    CHECK(lp_model_match_layers(m, "kind:softmax", NULL, 0) == 2);
    lp_model_free(m);
}

/* Backward from an inner layer with the seeds interpretability uses —
 * one unit, and the mean of one channel over the tokens — against
 * central differences of that scalar, read from the layer's output in
 * forward passes. A torchvision-layout ViT: GELU and LayerNorm are
 * smooth, so no ReLU kink spoils the differences. */
static double inner_scalar(lp_model *m, int layer, const float *x, int which, int unit,
                           int ch)
{
    int dims[4];
    const float *a;
    double s = 0;
    lp_model_layer_shape(m, layer, dims); /* [T, D] */
    if (lp_model_forward(m, x, 1, NULL, 0) != LP_OK || (a = lp_model_activation(m, layer)) == NULL)
        return NAN;
    if (which == 0)
        return a[unit];
    for (int t = 0; t < dims[0]; t++)
        s += a[(size_t)t * dims[1] + ch];
    return s / dims[0];
}

TEST(hooks_backward_from_inner_unit_and_channel_mean)
{
    lp_model *m = tm_random_model(tiny_vit_torchvision, 21);
    int layer, dims[4], h;
    size_t per, size;
    float *x, *seed, *dx;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    layer = lp_model_find_layer(m, "encoder.layers.encoder_layer_0.mlp");
    CHECK(layer > 0);
    h = lp_model_add_hook(m, "encoder.layers.encoder_layer_0.mlp", LP_HOOK_KEEP, NULL, NULL);
    CHECK(h >= 0);
    lp_model_layer_shape(m, layer, dims);
    size = (size_t)dims[0] * dims[1];
    per = (size_t)lp_model_get_info(m)->in_c * lp_model_get_info(m)->in_h *
          lp_model_get_info(m)->in_w;
    x = random_input(m, 1, 8);
    seed = lpt_floats(size);
    dx = lpt_floats(per);
    for (int which = 0; which < 2; which++) {
        int unit = 3 * dims[1] + 2, ch = 1;
        double worst = 0, scale = 0;
        memset(seed, 0, size * sizeof(float));
        if (which == 0)
            seed[unit] = 1.0f; /* d(one unit) */
        else
            for (int t = 0; t < dims[0]; t++) /* d(mean over tokens of channel ch) */
                seed[(size_t)t * dims[1] + ch] = 1.0f / dims[0];
        CHECK_OK(lp_model_forward(m, x, 1, NULL, LP_RUN_GRAD));
        CHECK_OK(lp_model_backward_from(m, layer, seed, 0, dx));
        for (size_t i = 0; i < per; i++)
            scale = fmax(scale, fabs(dx[i]));
        CHECK(scale > 0);
        for (size_t i = 0; i < per; i += 7) {
            float keep = x[i];
            double fp, fm, fd;
            x[i] = keep + 1e-2f;
            fp = inner_scalar(m, layer, x, which, unit, ch);
            x[i] = keep - 1e-2f;
            fm = inner_scalar(m, layer, x, which, unit, ch);
            x[i] = keep;
            fd = (fp - fm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
            worst = fmax(worst, fabs(fd - dx[i]));
        }
        CHECK_MSG(worst <= 2e-3 * scale, "%s: finite differences differ by %.3g (max |grad| %.3g)",
                  which ? "channel mean" : "unit", worst, scale);
    }
    lp_model_free(m);
}
