/*
 * test_interp_cam.c — CAMs (interp/cam.c) and ViT attention methods
 * (interp/vit_attention.c): hand computations from the model's
 * activations and gradients, identities between methods, properties,
 * errors, and the cascading-randomisation sanity check (Adebayo et al.
 * 2018) on the shipped ResNet-20.
 */
#include "models_util.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static size_t in_size(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_c * in->in_h * in->in_w;
}

static size_t map_size(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    return (size_t)in->in_h * in->in_w;
}

static float *random_input(const lp_model *m, int n, uint64_t seed)
{
    lpt_rng r = lpt_rng_seed(seed);
    float *x = lpt_floats((size_t)n * in_size(m));
    lpt_fill_normal(&r, x, (size_t)n * in_size(m), 1.0);
    return x;
}

/* Activations and gradients of the logit of classes[b] at `layer`, read
 * from a full pass with LP_RUN_KEEP_ALL; copied to act/grad [n, size]. */
static void layer_grads(lp_model *m, const float *x, int n, const int *classes,
                        int layer, float *act, float *grad, size_t size)
{
    int k = lp_model_get_info(m)->out_dim;
    float *logits = lpt_floats((size_t)n * k), *d = lpt_floats((size_t)n * k);
    CHECK_OK(lp_model_forward(m, x, n, logits, LP_RUN_GRAD | LP_RUN_KEEP_ALL));
    for (int b = 0; b < n; b++)
        d[(size_t)b * k + classes[b]] = 1.0f;
    CHECK_OK(lp_model_backward(m, d, NULL));
    memcpy(act, lp_model_activation(m, layer), (size_t)n * size * sizeof(float));
    memcpy(grad, lp_model_gradient(m, layer), (size_t)n * size * sizeof(float));
    lp_model_release(m);
}

enum { H_GRAD, H_GRADPP, H_LAYER, H_HIRES };

/* The CAM of one image by the formulas, A and G as [C][hw]. */
static void hand_cam(int kind, const float *A, const float *G, int C, int hw, int relu,
                     double *map)
{
    for (int p = 0; p < hw; p++)
        map[p] = 0.0;
    for (int k = 0; k < C; k++) {
        const float *a = A + (size_t)k * hw, *g = G + (size_t)k * hw;
        double w = 0.0, sa = 0.0;
        for (int p = 0; p < hw; p++)
            sa += a[p];
        for (int p = 0; p < hw; p++) {
            if (kind == H_GRAD)
                w += g[p] / (double)hw;
            else if (kind == H_GRADPP && g[p] != 0.0f) {
                double g2 = (double)g[p] * g[p];
                double alpha = g2 / (2 * g2 + sa * g2 * g[p] + 1e-6);
                w += (g[p] > 0 ? g[p] : 0.0) * alpha;
            }
        }
        for (int p = 0; p < hw; p++) {
            if (kind == H_GRAD || kind == H_GRADPP)
                map[p] += w * a[p];
            else if (kind == H_LAYER)
                map[p] += (g[p] > 0 ? g[p] : 0.0) * a[p];
            else
                map[p] += (double)g[p] * a[p];
        }
    }
    if (relu)
        for (int p = 0; p < hw; p++)
            if (map[p] < 0)
                map[p] = 0;
}

/* Compare a method's output with the hand CAM at `layer` (a feature
 * map, or a token map whose tokens after the first form a grid). */
static void check_hand(lp_model *m, lp_method_fn fn, int kind, const char *layer,
                       int no_relu, const char *what)
{
    const lp_model_info *in = lp_model_get_info(m);
    int n = 2, classes[2] = {1, 2}, dims[4], li = lp_model_find_layer(m, layer);
    int nd = lp_model_layer_shape(m, li, dims), C, h, tokens = 0;
    size_t size, hw;
    float *x = random_input(m, n, 11), *act, *grad, *A, *G, *low, *want_f, *got;
    double *map;
    lp_explain_options o;
    lp_explain_report rep;
    if (nd == 3) {
        C = dims[0];
        h = dims[1];
        size = (size_t)C * h * dims[2];
    } else {
        tokens = dims[0];
        C = dims[1];
        h = (int)(sqrt((double)(tokens - 1)) + 0.5);
        size = (size_t)tokens * C;
    }
    hw = (size_t)h * h;
    act = lpt_floats(n * size);
    grad = lpt_floats(n * size);
    A = lpt_floats(size);
    G = lpt_floats(size);
    low = lpt_floats(n * hw);
    map = lpt_doubles(hw);
    want_f = lpt_floats((size_t)n * map_size(m));
    got = lpt_floats((size_t)n * map_size(m));
    layer_grads(m, x, n, classes, li, act, grad, size);
    for (int b = 0; b < n; b++) {
        const float *a = act + b * size, *g = grad + b * size;
        if (tokens) { /* [T, C] -> [C, g*g] without the class token */
            for (size_t p = 0; p < hw; p++)
                for (int k = 0; k < C; k++) {
                    A[(size_t)k * hw + p] = a[(1 + p) * C + k];
                    G[(size_t)k * hw + p] = g[(1 + p) * C + k];
                }
        } else {
            memcpy(A, a, size * sizeof(float));
            memcpy(G, g, size * sizeof(float));
        }
        hand_cam(kind, A, G, C, (int)hw, !no_relu, map);
        lpt_to_float(low + b * hw, map, hw);
    }
    CHECK_OK(lp_resize_bilinear_forward(want_f, low, n, h, h, in->in_h, in->in_w, 0));
    lp_explain_defaults(&o);
    o.layer = layer;
    o.no_relu = no_relu;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(fn(m, x, n, classes, &o, got, &rep));
    CHECK_CLOSE_F(what, got, want_f, (size_t)n * map_size(m), 1e-5);
    CHECK_MSG(!strcmp(rep.layer, layer), "%s: rep.layer '%s'", what, rep.layer);
    CHECK(rep.forwards == n && rep.backwards == n);
}

TEST(interp_cam_gradcam_by_hand)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 5);
    lp_model *b = tm_random_model(tiny_bottleneck_resnet, 6);
    CHECK(m != NULL && b != NULL);
    if (m == NULL || b == NULL)
        return;
    check_hand(m, lp_gradcam, H_GRAD, "layer1", 0, "gradcam layer1");
    check_hand(m, lp_gradcam, H_GRAD, "layer2.0.conv1", 1, "gradcam no-relu conv");
    check_hand(m, lp_gradcampp, H_GRADPP, "layer1", 0, "gradcam++");
    check_hand(m, lp_layercam, H_LAYER, "layer1.0.bn1", 0, "layercam");
    check_hand(m, lp_hirescam, H_HIRES, "layer1", 0, "hirescam");
    check_hand(b, lp_gradcam, H_GRAD, "layer2", 0, "gradcam bottleneck");
    check_hand(b, lp_gradcampp, H_GRADPP, "layer1", 0, "gradcam++ bottleneck");
    lp_model_free(m);
    lp_model_free(b);
}

TEST(interp_cam_vit_token_maps)
{
    lp_model *t = tm_random_model(tiny_vit_timm, 7);
    lp_model *v = tm_random_model(tiny_vit_torchvision, 8);
    lp_model *l = tm_random_model(tiny_vit_lucidrains, 9);
    CHECK(t && v && l);
    if (!t || !v || !l)
        return;
    check_hand(t, lp_gradcam, H_GRAD, "blocks.1.norm1", 0, "vit timm gradcam");
    check_hand(v, lp_hirescam, H_HIRES, "encoder.layers.encoder_layer_1.ln_1", 1,
               "vit torchvision hirescam");
    check_hand(l, lp_layercam, H_LAYER, "transformer.layers.1.0.norm", 0,
               "vit lucidrains layercam");
    /* the defaults: the last block's first LayerNorm */
    {
        struct { lp_model *m; const char *want; } c[3] = {
            {t, "blocks.1.norm1"},
            {v, "encoder.layers.encoder_layer_1.ln_1"},
            {l, "transformer.layers.1.0.norm"}};
        for (int i = 0; i < 3; i++) {
            int cls[1] = {0};
            float *x = random_input(c[i].m, 1, 3), *out = lpt_floats(map_size(c[i].m));
            lp_explain_options o;
            lp_explain_report rep;
            lp_explain_defaults(&o);
            memset(&rep, 0, sizeof rep);
            CHECK_OK(lp_gradcam(c[i].m, x, 1, cls, &o, out, &rep));
            CHECK_MSG(!strcmp(rep.layer, c[i].want), "default %s, want %s", rep.layer,
                      c[i].want);
        }
    }
    lp_model_free(t);
    lp_model_free(v);
    lp_model_free(l);
}

/* The default layer of a CIFAR ResNet is the last stage's output, and
 * there (followed by global pooling and a linear layer) the gradient is
 * constant over the grid, so HiResCAM = Grad-CAM. */
TEST(interp_cam_hirescam_equals_gradcam_before_pooling)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 12);
    int n = 3, classes[3] = {0, 1, 2};
    float *x, *a, *b;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    x = random_input(m, n, 4);
    a = lpt_floats(n * map_size(m));
    b = lpt_floats(n * map_size(m));
    for (int no_relu = 0; no_relu < 2; no_relu++) {
        lp_explain_defaults(&o);
        o.no_relu = no_relu;
        memset(&rep, 0, sizeof rep);
        CHECK_OK(lp_gradcam(m, x, n, classes, &o, a, &rep));
        CHECK_MSG(!strcmp(rep.layer, "layer2"), "default layer %s", rep.layer);
        CHECK_OK(lp_hirescam(m, x, n, classes, &o, b, &rep));
        CHECK_CLOSE_F("hirescam = gradcam", b, a, n * map_size(m), 1e-5);
    }
    /* batching gives the same maps */
    o.batch = 2;
    CHECK_OK(lp_hirescam(m, x, n, classes, &o, b, &rep));
    CHECK_CLOSE_F("batch 2", b, a, n * map_size(m), 1e-6);
    lp_model_free(m);
}

/* ---- Score-CAM, Eigen-CAM, Guided Grad-CAM -------------------------------- */

TEST(interp_cam_scorecam_properties)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 21);
    int n = 2, classes[2] = {2, 0}, li;
    float *x, *out, *act, *grad;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    li = lp_model_find_layer(m, "layer1");
    x = random_input(m, n, 5);
    out = lpt_floats(n * map_size(m));
    act = lpt_floats(n * 4 * 8 * 8);
    grad = lpt_floats(n * 4 * 8 * 8);
    layer_grads(m, x, n, classes, li, act, grad, 4 * 8 * 8);
    lp_explain_defaults(&o);
    o.layer = "layer1";
    o.batch = 3;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_scorecam(m, x, n, classes, &o, out, &rep));
    /* one forward for the activations, one per channel */
    CHECK(rep.forwards == n * (1 + 4));
    CHECK(rep.backwards == 0);
    /* softmax weights sum to 1: the map is a convex combination of the
     * channels, so it lies within their range (channels are post-ReLU) */
    for (int b = 0; b < n; b++) {
        float lo = 1e30f, hi = -1e30f;
        for (int p = 0; p < 4 * 64; p++) {
            float v = act[b * 256 + p];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        for (size_t p = 0; p < map_size(m); p++) {
            float v = out[b * map_size(m) + p];
            CHECK(v >= 0.0f && v >= lo - 1e-5f && v <= hi + 1e-5f);
        }
    }
    lp_model_free(m);
}

typedef struct { int C; int hw; } rank1_ctx;

/* Overwrite a layer with A[k][p] = a_k * s_p (rank one, positive mean). */
static int rank1_hook(const lp_hook_tensor *t, void *user)
{
    rank1_ctx *c = user;
    for (int b = 0; b < t->n; b++)
        for (int k = 0; k < c->C; k++)
            for (int p = 0; p < c->hw; p++)
                t->data[b * t->image_stride + (size_t)k * c->hw + p] =
                    (float)((0.5 + 0.25 * (k % 3)) * (1.0 + 0.1 * ((p * 7) % 11)));
    return LP_OK;
}

TEST(interp_cam_eigencam_rank_one)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 22);
    int n = 2, c1[2] = {0, 1}, c2[2] = {2, 0}, h;
    rank1_ctx ctx = {8, 16};
    float *x, *a, *b, *low, *want;
    double norm_a = 0.0, smean = 0.0;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    x = random_input(m, n, 6);
    a = lpt_floats(n * map_size(m));
    b = lpt_floats(n * map_size(m));
    lp_explain_defaults(&o);
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_eigencam(m, x, n, c1, &o, a, &rep));
    CHECK(rep.backwards == 0 && rep.forwards == n);
    CHECK(!strcmp(rep.layer, "layer2"));
    CHECK_OK(lp_eigencam(m, x, n, c2, &o, b, &rep));
    CHECK_CLOSE_F("eigencam ignores the class", b, a, n * map_size(m), 0);
    /* rank one: projection = (s - mean s) |a| */
    h = lp_model_add_hook(m, "layer2", LP_HOOK_FORWARD, rank1_hook, &ctx);
    CHECK(h >= 0);
    o.no_relu = 1;
    CHECK_OK(lp_eigencam(m, x, n, c1, &o, a, &rep));
    lp_model_remove_hook(m, h);
    for (int k = 0; k < 8; k++)
        norm_a += (0.5 + 0.25 * (k % 3)) * (0.5 + 0.25 * (k % 3));
    norm_a = sqrt(norm_a);
    for (int p = 0; p < 16; p++)
        smean += (1.0 + 0.1 * ((p * 7) % 11)) / 16;
    low = lpt_floats(n * 16);
    want = lpt_floats(n * map_size(m));
    for (int bb = 0; bb < n; bb++)
        for (int p = 0; p < 16; p++)
            low[bb * 16 + p] = (float)((1.0 + 0.1 * ((p * 7) % 11) - smean) * norm_a);
    CHECK_OK(lp_resize_bilinear_forward(want, low, n, 4, 4, 8, 8, 0));
    CHECK_CLOSE_F("eigencam rank one", a, want, n * map_size(m), 1e-5);
    lp_model_free(m);
}

TEST(interp_cam_guided_gradcam)
{
    lp_model *m = tm_random_model(tiny_cifar_resnet, 23);
    int n = 2, classes[2] = {1, 2};
    size_t hw;
    float *x, *gg, *cam, *dx0, *dx1;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = map_size(m);
    x = random_input(m, n, 8);
    gg = lpt_floats(n * hw);
    cam = lpt_floats(n * hw);
    dx0 = lpt_floats(n * in_size(m));
    dx1 = lpt_floats(n * in_size(m));
    CHECK_OK(lp_target_gradient(m, x, n, classes, LP_SCORE_LOGIT, NULL, dx0));
    lp_explain_defaults(&o);
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_gradcam(m, x, n, classes, &o, cam, &rep));
    CHECK_OK(lp_guided_gradcam(m, x, n, classes, &o, gg, &rep));
    {
        int nonzero = 0;
        for (size_t i = 0; i < n * hw; i++) {
            CHECK(gg[i] >= 0.0f);
            if (cam[i] == 0.0f)
                CHECK(gg[i] == 0.0f);
            nonzero += gg[i] > 0.0f;
        }
        CHECK(nonzero > 0);
    }
    /* the ReLU backward rules are restored afterwards */
    CHECK_OK(lp_target_gradient(m, x, n, classes, LP_SCORE_LOGIT, NULL, dx1));
    CHECK_CLOSE_F("plain gradient after guided", dx1, dx0, n * in_size(m), 0);
    lp_model_free(m);
}

/* ---- ViT attention methods ------------------------------------------------ */

typedef struct { int mode; } attn_ctx; /* 0 identity, 1 uniform */

static int set_attention(const lp_hook_tensor *t, void *user)
{
    const attn_ctx *c = user;
    int H = t->dims[0], T = t->dims[1];
    for (int b = 0; b < t->n; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    t->data[b * t->image_stride + ((size_t)h * T + i) * t->row_stride + j] =
                        c->mode == 0 ? (i == j ? 1.0f : 0.0f) : 1.0f / T;
    return LP_OK;
}

TEST(interp_cam_rollout_fixed_attention)
{
    lp_model *m = tm_random_model(tiny_vit_timm, 31);
    int n = 2, classes[2] = {0, 1}, h;
    size_t hw;
    attn_ctx ctx = {0};
    float *x, *out;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = map_size(m);
    x = random_input(m, n, 9);
    out = lpt_floats(n * hw);
    lp_explain_defaults(&o);
    memset(&rep, 0, sizeof rep);
    h = lp_model_add_hook(m, "*.probs", LP_HOOK_FORWARD, set_attention, &ctx);
    CHECK(h >= 0);
    /* identity attention: the class token keeps to itself, every patch 0 */
    CHECK_OK(lp_rollout(m, x, n, classes, &o, out, &rep));
    for (size_t i = 0; i < n * hw; i++)
        CHECK_NEAR(out[i], 0.0, 1e-7);
    CHECK(!strcmp(rep.layer, "blocks.1.attn.probs"));
    /* uniform attention over T = 5 tokens: Â = (U + I)/2, two blocks;
     * row 0 of Â^2 on a patch = 2 * (1/2)(1/2)(1/5) + (1/2)(1/2)(1/5)... */
    ctx.mode = 1;
    CHECK_OK(lp_rollout(m, x, n, classes, &o, out, &rep));
    {
        /* Â = (U + I)/2 with U = 1/5: (Â^2)[0][j != 0] = 1/10 + 1/10 * ... */
        double U = 0.2, offd = U / 2, want = 0.0;
        double A[5][5], A2[5][5];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
                A[i][j] = i == j ? (U + 1) / 2 : offd;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                A2[i][j] = 0;
                for (int k = 0; k < 5; k++)
                    A2[i][j] += A[i][k] * A[k][j];
            }
        want = A2[0][1];
        for (size_t i = 0; i < n * hw; i++)
            CHECK_NEAR(out[i], want, 1e-6);
    }
    CHECK_OK(lp_attention_last(m, x, n, classes, &o, out, &rep));
    for (size_t i = 0; i < n * hw; i++)
        CHECK_NEAR(out[i], 0.2, 1e-6);
    lp_model_remove_hook(m, h);
    lp_model_free(m);
}

/* Chefer's gradient rollout (chefer-grad) and attention Grad-CAM by hand
 * from the kept probabilities and their gradients (two blocks, T = 5,
 * grid 2 x 2). */
TEST(interp_cam_chefer_grad_by_hand)
{
    lp_model *m = tm_random_model(tiny_vit_lucidrains, 32);
    int n = 2, classes[2] = {2, 0}, layers[2], H = 2, T = 5;
    size_t tt = 25, hw;
    float *x, *probs[2], *grads[2], *got, *low, *want;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(m != NULL);
    if (m == NULL)
        return;
    hw = map_size(m);
    CHECK(lp_model_match_layers(m, "*.probs", layers, 2) == 2);
    x = random_input(m, n, 10);
    for (int l = 0; l < 2; l++) {
        probs[l] = lpt_floats(n * H * tt);
        grads[l] = lpt_floats(n * H * tt);
        layer_grads(m, x, n, classes, layers[l], probs[l], grads[l], H * tt);
    }
    got = lpt_floats(n * hw);
    low = lpt_floats(n * 4);
    want = lpt_floats(n * hw);
    lp_explain_defaults(&o);
    memset(&rep, 0, sizeof rep);
    /* chefer-grad: R = I; R += mean_h relu(g a) R */
    for (int b = 0; b < n; b++) {
        double R[5][5], Ab[5][5], t[5][5];
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++)
                R[i][j] = i == j;
        for (int l = 0; l < 2; l++) {
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    Ab[i][j] = 0;
                    for (int h = 0; h < H; h++) {
                        size_t e = (size_t)b * H * tt + h * tt + i * T + j;
                        double v = (double)grads[l][e] * probs[l][e];
                        Ab[i][j] += (v > 0 ? v : 0) / H;
                    }
                }
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    t[i][j] = 0;
                    for (int k = 0; k < T; k++)
                        t[i][j] += Ab[i][k] * R[k][j];
                }
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    R[i][j] += t[i][j];
        }
        for (int j = 1; j < T; j++)
            low[b * 4 + j - 1] = (float)R[0][j];
    }
    CHECK_OK(lp_resize_bilinear_forward(want, low, n, 2, 2, 8, 8, 0));
    CHECK_OK(lp_chefer_grad(m, x, n, classes, &o, got, &rep));
    CHECK_CLOSE_F("chefer-grad", got, want, n * hw, 1e-5);
    CHECK(rep.backwards == n);
    /* attn-gradcam: last block, mean_h A_h[0,1:] * mean_j grad_h[0,j] */
    for (int b = 0; b < n; b++)
        for (int j = 1; j < T; j++) {
            double s = 0;
            for (int h = 0; h < H; h++) {
                double w = 0;
                for (int jj = 1; jj < T; jj++)
                    w += grads[1][(size_t)b * H * tt + h * tt + jj] / (T - 1.0);
                s += probs[1][(size_t)b * H * tt + h * tt + j] * w / H;
            }
            low[b * 4 + j - 1] = (float)(s > 0 ? s : 0);
        }
    CHECK_OK(lp_resize_bilinear_forward(want, low, n, 2, 2, 8, 8, 0));
    CHECK_OK(lp_attn_gradcam(m, x, n, classes, &o, got, &rep));
    CHECK_CLOSE_F("attn-gradcam", got, want, n * hw, 1e-5);
    lp_model_free(m);
}

/* Chefer et al. 2021 (CVPR): the LRP relevance rules through the shipped
 * MNIST ViT against PyTorch (tests/gen_chefer_golden.py: an independent
 * implementation of the paper's rules, float64) on four test digits, at
 * --lrp-eps 0.01 where the map is well conditioned; chefer-grad too. */
TEST(interp_cam_chefer_matches_pytorch)
{
    lp_model *m = NULL;
    lp_dataset set;
    lp_npy golden;
    int n = 4, classes[4];
    size_t hw = 28 * 28;
    float *x, *logits, *got;
    lp_explain_options o;
    lp_explain_report rep;
    memset(&set, 0, sizeof set);
    memset(&golden, 0, sizeof golden);
    CHECK_OK(lp_model_load(&m, lpt_path("weights/vit_mnist.lpw")));
    {   /* lpt_path's buffer is static: one path at a time */
        char images[4096];
        snprintf(images, sizeof images, "%s",
                 lpt_path("tests/data/mnist_test_first200-images-idx3-ubyte"));
        CHECK_OK(lp_mnist_load(&set, images,
                               lpt_path("tests/data/mnist_test_first200-labels-idx1-ubyte"), n));
    }
    CHECK_OK(lp_npy_load(&golden, lpt_path("tests/golden/chefer_vit_mnist.npy")));
    if (m == NULL || set.n < n || golden.data == NULL)
        goto done;
    CHECK(golden.ndim == 4 && golden.shape[0] == 2 && golden.shape[1] == n &&
          golden.shape[2] == 28 && golden.shape[3] == 28);
    x = lpt_floats(n * hw);
    logits = lpt_floats(n * 10);
    got = lpt_floats(n * hw);
    for (int b = 0; b < n; b++) {
        lp_image img = lp_dataset_image(&set, b);
        CHECK_OK(lp_model_prepare_image(m, &img, x + b * hw));
    }
    CHECK_OK(lp_model_forward(m, x, n, logits, 0));
    for (int b = 0; b < n; b++) {
        classes[b] = 0;
        for (int k = 1; k < 10; k++)
            if (logits[b * 10 + k] > logits[b * 10 + classes[b]])
                classes[b] = k;
    }
    {   /* the input gradient before (grad0) and after the method */
        float *d = lpt_floats(n * 10);
        float *grad0 = lpt_floats(n * hw), *grad1 = lpt_floats(n * hw);
        for (int b = 0; b < n; b++)
            d[b * 10 + classes[b]] = 1.0f;
        CHECK_OK(lp_model_forward(m, x, n, logits, LP_RUN_GRAD));
        CHECK_OK(lp_model_backward(m, d, grad0));
        lp_explain_defaults(&o);
        memset(&rep, 0, sizeof rep);
        o.lrp_eps = 0.01f;
        CHECK_OK(lp_chefer(m, x, n, classes, &o, got, &rep));
        CHECK_OK(lp_model_forward(m, x, n, logits, LP_RUN_GRAD));
        CHECK_OK(lp_model_backward(m, d, grad1));
        CHECK_MSG(memcmp(grad0, grad1, n * hw * sizeof(float)) == 0,
                  "the relevance rules were left in place");
    }
    CHECK(rep.forwards == n && rep.backwards == 2 * n);
    CHECK_CLOSE_F("chefer (LRP)", got, (const float *)golden.data, n * hw, 1e-4);
    CHECK_OK(lp_chefer_grad(m, x, n, classes, &o, got, &rep));
    CHECK_CLOSE_F("chefer-grad", got, (const float *)golden.data + n * hw, n * hw, 1e-4);
    o.lrp_eps = -1.0f;
    CHECK(lp_chefer(m, x, n, classes, &o, got, &rep) == LP_EINVAL);
done:
    lp_npy_free(&golden);
    lp_dataset_free(&set);
    lp_model_free(m);
}

/* ---- errors --------------------------------------------------------------- */

TEST(interp_cam_errors)
{
    lp_model *r = tm_random_model(tiny_cifar_resnet, 41);
    lp_model *v = tm_random_model(tiny_vit_torchvision, 42);
    int classes[1] = {0};
    float *x, *out;
    lp_explain_options o;
    lp_explain_report rep;
    CHECK(r && v);
    if (!r || !v)
        return;
    x = random_input(r, 1, 1);
    out = lpt_floats(map_size(r));
    memset(&rep, 0, sizeof rep);
    lp_explain_defaults(&o);
    o.layer = "avgpool";
    lp_clear_error();
    CHECK(lp_gradcam(r, x, 1, classes, &o, out, &rep) == LP_EINVAL);
    CHECK(strstr(lp_last_error(), "no spatial grid") != NULL);
    CHECK(strchr(lp_last_error(), '\n') == NULL);
    CHECK_FAILS(lp_scorecam(r, x, 1, classes, &o, out, &rep));
    o.layer = "layer9";
    CHECK(lp_gradcam(r, x, 1, classes, &o, out, &rep) == LP_ENOTFOUND);
    CHECK(strstr(lp_last_error(), "layer9") != NULL);
    CHECK(lp_eigencam(r, x, 1, classes, &o, out, &rep) == LP_ENOTFOUND);
    lp_explain_defaults(&o);
    CHECK(lp_rollout(r, x, 1, classes, &o, out, &rep) == LP_EINVAL);
    CHECK(strstr(lp_last_error(), "needs a ViT") != NULL);
    CHECK_FAILS(lp_chefer(r, x, 1, classes, &o, out, &rep));
    CHECK_FAILS(lp_attention_last(r, x, 1, classes, &o, out, &rep));
    CHECK_FAILS(lp_attn_gradcam(r, x, 1, classes, &o, out, &rep));
    /* a ViT layer without a token grid */
    o.layer = "pool";
    CHECK(lp_gradcam(v, random_input(v, 1, 2), 1, classes, &o, out, &rep) == LP_EINVAL);
    lp_model_free(r);
    lp_model_free(v);
}

/* ---- cascading randomisation (Adebayo et al. 2018) ------------------------ */

/* Ranks with ties averaged, 1-based. */
static void ranks(const float *v, int n, double *r)
{
    int *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    /* insertion sort: n is small */
    for (int i = 1; i < n; i++) {
        int t = idx[i], j = i - 1;
        while (j >= 0 && v[idx[j]] > v[t]) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = t;
    }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (int k = i; k <= j; k++)
            r[idx[k]] = (i + j) / 2.0 + 1.0;
        i = j + 1;
    }
    free(idx);
}

static double spearman(const float *a, const float *b, int n)
{
    double *ra = malloc((size_t)n * sizeof *ra), *rb = malloc((size_t)n * sizeof *rb);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    ranks(a, n, ra);
    ranks(b, n, rb);
    for (int i = 0; i < n; i++) {
        ma += ra[i] / n;
        mb += rb[i] / n;
    }
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : 0.0;
}

static int starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int ends_with(const char *s, const char *p)
{
    size_t ls = strlen(s), lp = strlen(p);
    return ls >= lp && !strcmp(s + ls - lp, p);
}

/* A copy of `f` (every metadata value and tensor) where the tensors whose
 * name starts with one of prefixes[0..np) are redrawn from a normal with
 * the original tensor's mean and std (BatchNorm running statistics kept). */
static lp_model *randomised_copy(const lp_lpw *f, const char *const *prefixes, int np,
                                 uint64_t seed)
{
    lp_lpw_builder *b = lp_lpw_builder_new();
    lpt_rng rng = lpt_rng_seed(seed);
    lp_model *m = NULL;
    lp_lpw *g = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    int rc = b ? LP_OK : LP_ENOMEM;
    for (int i = 0; i < lp_lpw_meta_count(f) && rc == LP_OK; i++) {
        const char *key;
        lp_meta_type type;
        char buf[4096];
        rc = lp_lpw_meta_key(f, i, &key, &type);
        if (rc != LP_OK)
            break;
        if (type == LP_META_I64) {
            int64_t v;
            rc = lp_lpw_get_i64(f, key, &v);
            if (rc == LP_OK) rc = lp_lpw_builder_set_i64(b, key, v);
        } else if (type == LP_META_F64) {
            double v;
            rc = lp_lpw_get_f64(f, key, &v);
            if (rc == LP_OK) rc = lp_lpw_builder_set_f64(b, key, v);
        } else if (type == LP_META_STR) {
            rc = lp_lpw_get_str(f, key, buf, sizeof buf);
            if (rc == LP_OK) rc = lp_lpw_builder_set_str(b, key, buf);
        } else if (type == LP_META_I64_ARR || type == LP_META_F64_ARR) {
            int count = 0;
            if (type == LP_META_I64_ARR) {
                int64_t v[1024];
                rc = lp_lpw_get_i64_arr(f, key, v, 1024, &count);
                if (rc == LP_OK) rc = lp_lpw_builder_set_i64_arr(b, key, v, count);
            } else {
                double v[1024];
                rc = lp_lpw_get_f64_arr(f, key, v, 1024, &count);
                if (rc == LP_OK) rc = lp_lpw_builder_set_f64_arr(b, key, v, count);
            }
        } else if (type == LP_META_STR_ARR) {
            int count = 0;
            char **items;
            rc = lp_lpw_get_str_arr_count(f, key, &count);
            items = calloc((size_t)count + 1, sizeof *items);
            for (int k = 0; k < count && rc == LP_OK; k++) {
                items[k] = malloc(4096);
                rc = lp_lpw_get_str_arr_item(f, key, k, items[k], 4096);
            }
            if (rc == LP_OK)
                rc = lp_lpw_builder_set_str_arr(b, key, (const char *const *)items, count);
            for (int k = 0; k < count; k++)
                free(items[k]);
            free(items);
        }
    }
    for (int i = 0; i < lp_lpw_tensor_count(f) && rc == LP_OK; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        int redraw = 0;
        for (int p = 0; p < np; p++)
            if (starts_with(t->name, prefixes[p]))
                redraw = 1;
        if (ends_with(t->name, "running_mean") || ends_with(t->name, "running_var") ||
            ends_with(t->name, "num_batches_tracked"))
            redraw = 0;
        if (!redraw) {
            rc = lp_lpw_builder_add_tensor(b, t->name, t->ndim, t->shape, t->data);
        } else {
            float *d = malloc((size_t)t->count * sizeof(float));
            double mean = 0, var = 0;
            for (int64_t k = 0; k < t->count; k++)
                mean += t->data[k] / (double)t->count;
            for (int64_t k = 0; k < t->count; k++)
                var += (t->data[k] - mean) * (t->data[k] - mean) / (double)t->count;
            for (int64_t k = 0; k < t->count; k++)
                d[k] = (float)(mean + sqrt(var) * lpt_rng_normal(&rng));
            rc = lp_lpw_builder_add_tensor(b, t->name, t->ndim, t->shape, d);
            free(d);
        }
    }
    if (rc == LP_OK)
        rc = lp_lpw_builder_finish(b, &bytes, &size);
    if (rc == LP_OK)
        rc = lp_lpw_open_memory(&g, bytes, size, "randomised", 0);
    if (rc == LP_OK && lp_model_from_lpw(&m, g) != LP_OK) {
        lp_lpw_close(g);
        m = NULL;
    }
    lp_free(bytes);
    lp_lpw_builder_free(b);
    if (rc != LP_OK)
        lpt_fail(__FILE__, __LINE__, "randomised copy: %s", lp_last_error());
    return m;
}

/* saliency |grad| max over channels, and Grad-CAM (default layer) */
static void two_maps(lp_model *m, const float *x, int n, const int *classes, float *sal,
                     float *cam)
{
    size_t per = in_size(m), hw = map_size(m);
    int cin = lp_model_get_info(m)->in_c;
    float *dx = lpt_floats(n * per);
    lp_explain_options o;
    lp_explain_report rep;
    CHECK_OK(lp_target_gradient(m, x, n, classes, LP_SCORE_LOGIT, NULL, dx));
    lp_model_release(m);
    for (int b = 0; b < n; b++)
        for (size_t p = 0; p < hw; p++) {
            float best = 0;
            for (int c = 0; c < cin; c++) {
                float v = fabsf(dx[b * per + c * hw + p]);
                if (v > best) best = v;
            }
            sal[b * hw + p] = best;
        }
    lp_explain_defaults(&o);
    memset(&rep, 0, sizeof rep);
    CHECK_OK(lp_gradcam(m, x, n, classes, &o, cam, &rep));
}

TEST(interp_cam_cascading_randomisation)
{
    static const char *cifar[] = {"airplane", "automobile", "bird", "cat", "deer",
                                  "dog", "frog", "horse", "ship", "truck"};
    static const char *cascade[] = {"linear", "layer3", "layer2", "layer1", "conv1", "bn1"};
    const int n = 10;
    lp_lpw *f = NULL;
    lp_model *m = NULL;
    int classes[10], k;
    float *x, *logits, *sal0, *cam0, *sal, *cam;
    size_t per, hw;
    if (lp_lpw_open(&f, lpt_path("weights/resnet20_cifar10.lpw"), 0) != LP_OK) {
        lpt_skip("weights/resnet20_cifar10.lpw: %s", lp_last_error());
        return;
    }
    m = randomised_copy(f, NULL, 0, 1);
    CHECK(m != NULL);
    if (m == NULL) {
        lp_lpw_close(f);
        return;
    }
    per = in_size(m);
    hw = map_size(m);
    k = lp_model_get_info(m)->out_dim;
    x = lpt_floats(n * per);
    logits = lpt_floats(n * k);
    for (int i = 0; i < n; i++) {
        char rel[96];
        lp_image img;
        snprintf(rel, sizeof rel, "weights/samples/%s_0000.jpg", cifar[i]);
        CHECK_OK(lp_image_load(&img, lpt_path(rel)));
        CHECK_OK(lp_model_prepare_image(m, &img, x + i * per));
        lp_image_free(&img);
    }
    CHECK_OK(lp_model_forward(m, x, n, logits, 0));
    CHECK_OK(lp_target_classes(&(lp_target){LP_TARGET_TOP, LP_SCORE_LOGIT, -1}, logits,
                               n, k, classes));
    sal0 = lpt_floats(n * hw);
    cam0 = lpt_floats(n * hw);
    sal = lpt_floats(n * hw);
    cam = lpt_floats(n * hw);
    two_maps(m, x, n, classes, sal0, cam0);
    lp_model_free(m);
    printf("    cascading randomisation, mean Spearman over %d images:\n", n);
    for (int depth = 0; depth <= 6; depth++) {
        double rs = 0, rc = 0;
        int counted = 0;
        m = randomised_copy(f, cascade, depth, 100 + depth);
        if (m == NULL)
            break;
        two_maps(m, x, n, classes, sal, cam);
        for (int b = 0; b < n; b++) {
            rs += spearman(sal0 + b * hw, sal + b * hw, (int)hw) / n;
            rc += spearman(cam0 + b * hw, cam + b * hw, (int)hw) / n;
            counted++;
        }
        printf("      randomised down to %-7s saliency %.3f  gradcam %.3f\n",
               depth ? cascade[depth - 1] : "(none)", rs, rc);
        if (depth == 0) {
            CHECK_NEAR(rs, 1.0, 1e-9);
            CHECK_NEAR(rc, 1.0, 1e-9);
        }
        if (depth >= 3) { /* linear, layer3 and layer2 randomised */
            CHECK_MSG(rs < 0.5, "saliency Spearman %.3f at depth %d", rs, depth);
            CHECK_MSG(rc < 0.5, "gradcam Spearman %.3f at depth %d", rc, depth);
        }
        (void)counted;
        lp_model_free(m);
    }
    lp_lpw_close(f);
}
