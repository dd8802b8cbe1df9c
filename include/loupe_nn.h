/*
 * loupe_nn.h — models: load a .lpw file, build the network it describes,
 * run it forward and backward, read any named layer (nn/).
 * Included by loupe.h; conventions are loupe.h's.
 *
 * Layers carry PyTorch's module paths as names ("layer4.1.conv2",
 * "encoder.layers.encoder_layer_11.mlp", "blocks.11.attn"). A layer that
 * ends several nested PyTorch modules answers to all of their names
 * (the last ReLU of a torchvision block is "layer4.1.relu", "layer4.1" and,
 * for the last block of the stage, "layer4"). The names of the functional
 * steps PyTorch does without a module are listed in docs/LAYERS.md.
 */
#ifndef LOUPE_NN_H
#define LOUPE_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lp_lpw;
typedef struct lp_model lp_model;

/* What the model is and what input it wants (from the file's metadata). */
typedef struct {
    char arch[16];          /* "resnet" or "vit" */
    char name[64];          /* converter arch name, e.g. "resnet50" */
    int in_c, in_h, in_w;   /* input tensor per image */
    int num_classes;        /* classifier outputs; 0 = backbone only */
    int out_dim;            /* size of the output per image */
    int resize;             /* shorter side before crop (0: to in_h x in_w) */
    int crop;               /* centre crop (0: none) */
    char interpolation[16]; /* "bilinear" or "bicubic" */
    float mean[4], std[4];  /* per input channel, after scaling to [0,1] */
    int num_layers;         /* named layers (nodes) */
    int64_t num_params;     /* parameters (running statistics excluded) */
} lp_model_info;

/* A tensor a configuration requires. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[8];
} lp_tensor_spec;

/* The exact tensors (names and shapes, in build order) that the
 * configuration in `file`'s metadata implies; the file's own tensors are
 * ignored. *specs is lp_alloc'ed: free with lp_free. Lets C code write
 * complete weight files (tests, random models) with lp_lpw_builder. */
int lp_model_expected_tensors(const struct lp_lpw *file, lp_tensor_spec **specs,
                              int *count);

/* Load and validate a weight file, then build the network (the builder
 * checks every tensor the configuration implies: name, shape, dtype; an
 * extra tensor is also an error). */
int lp_model_load(lp_model **out, const char *path);
/* Build from an opened file; on success the model owns `file`. */
int lp_model_from_lpw(lp_model **out, struct lp_lpw *file);
void lp_model_free(lp_model *m);

/* Parameter groups of a weight file in file (= forward) order: "conv1",
 * "layer4", "fc"; "blocks.11", "encoder.layers.encoder_layer_11", "head"
 * (nn/randomize.c). groups[k] holds up to 95 characters. */
int lp_lpw_param_groups(const struct lp_lpw *f, char (*groups)[96], int max,
                        int *count);
/* A new model from f with every tensor of the named groups redrawn from a
 * normal with the tensor's own mean and std (BatchNorm running statistics
 * kept): Adebayo et al. 2018's model-parameter randomisation. Seeded. */
int lp_model_randomized(lp_model **out, const struct lp_lpw *f,
                        const char *const *groups, int n_groups, uint64_t seed);

const lp_model_info *lp_model_get_info(const lp_model *m);
/* Class name of output k, or NULL when the file has no labels. */
const char *lp_model_label(const lp_model *m, int k);

/* Layers, in execution order. Index 0 is the input. */
int lp_model_layer_count(const lp_model *m);
const char *lp_model_layer_name(const lp_model *m, int layer);
/* Index of the layer with this name or alias. LP_ENOTFOUND otherwise,
 * with a message that suggests the nearest names. */
int lp_model_find_layer(const lp_model *m, const char *name);
/* Per-image shape of a layer's output: [C,H,W] for feature maps, [T,D]
 * for token sequences, [K] for vectors. Returns ndim. */
int lp_model_layer_shape(const lp_model *m, int layer, int dims[4]);
/* k-th alias of a layer (another module path for the same output), or
 * NULL when it has no more. */
const char *lp_model_layer_alias(const lp_model *m, int layer, int k);
/* Kind of the layer ("conv2d", "batchnorm2d", "relu", "attention", ...). */
const char *lp_model_layer_kind(const lp_model *m, int layer);

/* Run flags. */
enum {
    LP_RUN_GRAD = 1,    /* keep what a later lp_model_backward needs */
    LP_RUN_KEEP_ALL = 2 /* keep every layer's output for reading */
};

/* Forward a batch input[n, in_c, in_h, in_w] (normalised); output[n,
 * out_dim] receives the logits (or features). Buffers of the pass stay
 * owned by the model until the next pass or lp_model_release. */
int lp_model_forward(lp_model *m, const float *input, int n, float *output,
                     unsigned flags);
/* Backward of the last forward (which needs LP_RUN_GRAD): given
 * doutput[n, out_dim], writes (overwrites) dinput[n, in_c, in_h, in_w] if
 * not NULL. Afterwards lp_model_gradient gives every layer's gradient. */
int lp_model_backward(lp_model *m, const float *doutput, float *dinput);
/* Output of a layer in the last pass ([n, ...] as lp_model_layer_shape),
 * or NULL if it was not kept (use LP_RUN_KEEP_ALL). */
const float *lp_model_activation(const lp_model *m, int layer);
/* Gradient of the backward's objective w.r.t. a layer's output, or NULL. */
const float *lp_model_gradient(const lp_model *m, int layer);
/* Free the buffers of the last pass. */
void lp_model_release(lp_model *m);

/* Backward from any layer: seed the gradient of `layer`'s output with
 * dlayer[n, layer size] (the derivative of any scalar of that layer: one
 * unit, a channel mean, a direction) and propagate down to node `stop`
 * (0 = the input; then dinput, if not NULL, receives the input gradient).
 * Only the nodes between them run, so a CAM that needs the gradient at
 * layer4 pays for nothing below it. Gradients of hooked or kept layers,
 * and of `stop`, stay readable with lp_model_gradient. */
int lp_model_backward_from(lp_model *m, int layer, const float *dlayer,
                           int stop, float *dinput);

/* ---- hooks (nn/hooks.c) -------------------------------------------------
 *
 * A hook is a callback on a point of the network: a layer's output as
 * the forward pass produces it (LP_HOOK_FORWARD) or the gradient of the
 * backward's objective with respect to that output, once complete and
 * before it flows further down (LP_HOOK_BACKWARD). The callback may read
 * the tensor (capture) or change it in place (ablate, patch, scale,
 * clamp): later layers, or lower gradients, see the change.
 *
 * Points are named by a pattern over layer names and aliases, where `*`
 * matches any run of characters ("layer4.*", "blocks.*.attn.probs"), or
 * "kind:relu" for every layer of a kind (lp_model_layer_kind). Inside
 * attention, besides "<attn>.scores", "<attn>.probs" and
 * "<attn>.attention" (which are layers), "<attn>.q", "<attn>.k" and
 * "<attn>.v" are views into the fused qkv projection: their tensor has
 * row_stride 3*inner.
 *
 * With no hook attached the cost is one flag test per layer.
 */
enum {
    LP_HOOK_FORWARD = 1,
    LP_HOOK_BACKWARD = 2,
    LP_HOOK_KEEP = 4 /* keep this layer's output (and gradient) after the
                        pass, readable by lp_model_activation/gradient */
};

typedef struct {
    const lp_model *model;
    int layer;              /* node index */
    const char *name;       /* the point's name (layer name or "<attn>.q") */
    unsigned when;          /* LP_HOOK_FORWARD or LP_HOOK_BACKWARD */
    int n;                  /* images in the pass */
    int ndim, dims[4];      /* per-image shape of the point */
    float *data;            /* element [b][r][j] (r = row over all but the
                               last dim, j < dims[ndim-1]) is
                               data[b*image_stride + r*row_stride + j] */
    size_t image_stride;
    int row_stride;
} lp_hook_tensor;

/* Return LP_OK, or an error status to abort the pass (its message is
 * reported as the pass's error). */
typedef int (*lp_hook_fn)(const lp_hook_tensor *t, void *user);

/* Attach fn to every point matching pattern, for the passes in `when`
 * (LP_HOOK_FORWARD | LP_HOOK_BACKWARD, optionally | LP_HOOK_KEEP).
 * Returns a handle (>= 0) for lp_model_remove_hook, or LP_ENOTFOUND when
 * nothing matches (the message lists the nearest layer names). Hooks on
 * one point run in the order they were added. */
int lp_model_add_hook(lp_model *m, const char *pattern, unsigned when,
                      lp_hook_fn fn, void *user);
int lp_model_remove_hook(lp_model *m, int handle);
void lp_model_clear_hooks(lp_model *m);

/* Replacing a layer's backward rule (guided backprop, deconvnet,
 * DeepLIFT's rescale, LRP-style rules). The rule receives the layer's
 * first input x, its output y and the gradient dy, and must ACCUMULATE
 * into dx (which may be NULL when nothing below needs it); for a
 * two-input layer (add) x2/dx2 are the second input. */
typedef struct {
    const lp_model *model;
    int layer, n;
    const float *x, *x2, *y, *dy;
    float *dx, *dx2;
    size_t x_count, y_count; /* elements over the batch */
} lp_backward_args;
typedef int (*lp_backward_rule)(const lp_backward_args *a, void *user);
/* Set (or, with rule NULL, restore) the backward of every layer matching
 * pattern. Returns the number of layers changed, or LP_ENOTFOUND. */
int lp_model_set_backward_rule(lp_model *m, const char *pattern,
                               lp_backward_rule rule, void *user);
/* Layers matching a pattern, in execution order: fills up to cap indices
 * and returns how many match (0: none). */
int lp_model_match_layers(const lp_model *m, const char *pattern, int *layers,
                          int cap);

/* What a backward rule may need to know about a layer besides its
 * tensors (LRP's rules weigh a linear layer's inputs by its weights).
 * Pointers are borrowed from the model (NULL when the layer has none). */
typedef struct {
    const float *weight;     /* linear [out, in]; conv [C_out, C_in/g, KH, KW];
                                batchnorm2d / layernorm gamma */
    const float *bias;       /* bias, or beta */
    int out_features;        /* linear: out; conv: C_out */
    int in_features;         /* linear: in; conv: C_in/g * KH * KW */
    int heads, head_dim;     /* attention_scores / attention: the heads and
                                their width; q, k, v are the column blocks
                                [0, H*d), [H*d, 2H*d), [2H*d, 3H*d) of the
                                fused qkv input */
    float scale;             /* attention_scores: scores = scale * q k^T */
    int first_token;         /* token_mean: mean over tokens first_token.. */
} lp_layer_params;
/* Fill p for a layer (fields that do not apply are 0 / NULL). */
int lp_model_layer_params(const lp_model *m, int layer, lp_layer_params *p);

/* ---- input ---------------------------------------------------------- */

/* Turn a decoded image into the model's input tensor [in_c, in_h, in_w]
 * exactly as torchvision's Resize + CenterCrop + ToTensor + Normalize on a
 * PIL image, driven by the file's input.* metadata (nn/preprocess.c). */
int lp_model_prepare_image(const lp_model *m, const lp_image *img, float *out);
/* PIL's antialiased resampling of an 8-bit interleaved image
 * (bilinear, or bicubic when `bicubic` != 0). */
int lp_image_resize(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src,
                    int src_w, int src_h, int channels, int bicubic);

#ifdef __cplusplus
}
#endif

#endif /* LOUPE_NN_H */
