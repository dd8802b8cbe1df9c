/*
 * vit.c — builds Vision Transformers (Dosovitskiy et al. 2021) from a .lpw
 * configuration, in three state-dict layouts: torchvision (vit_b_16 …),
 * timm (DeiT, ViT, DINO) and lucidrains' vit-pytorch (the MNIST ViT).
 *
 * Every block is pre-norm:  x = x + Attn(LN1(x));  x = x + MLP(LN2(x)).
 * The q/k/v projection is one linear layer whose output holds q | k | v,
 * each split into heads of head_dim contiguous features; the attention
 * node reads them in place (qkv_stride = 3 * heads * head_dim).
 *
 * Layer names follow each layout's module paths; the functional steps get
 * these names (docs/LAYERS.md):
 *   <block>.resid_mid   x after the attention residual
 *   <block>.resid_post  x after the MLP residual (= "<block>")
 *   <attn>.attention    softmax(q k^T * scale) v, before the output projection
 *   pool                the class token (or the token mean) fed to the head
 */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char layout[16];
    int image, patch, channels;
    int dim, layers, heads, head_dim, mlp;
    float eps;
    char act[16];
    int qkv_bias;
    char pool[8];
    int final_norm, head_norm;
} vit_config;

/* Module paths of one layout. Block-level names are printf formats over
 * the block prefix. */
typedef struct {
    const char *patch_conv;   /* conv patch embedding, or NULL (linear) */
    const char *patch_tokens; /* node flattening the conv map to tokens */
    const char *patchify;     /* lucidrains: rearrange node */
    const char *patch_linear; /* lucidrains: linear patch embedding */
    const char *patch_alias;  /* module holding the patch embedding, or NULL */
    const char *cls, *pos;    /* tensor names */
    const char *embed;        /* node: tokens + class token + positions */
    const char *block;        /* block prefix format, %d = index */
    const char *norm1, *qkv, *qkv_w, *qkv_b, *attention, *proj, *attn_alias;
    const char *attn_alias2;
    const char *norm2, *fc1, *act, *fc2, *mlp_alias, *mlp_alias2;
    const char *final_norm;
    const char *head_norm;
    const char *head, *head_alias;
    const char *attend_alias; /* module that receives the probabilities */
} vit_names;

static const vit_names torchvision_names = {
    "conv_proj", "patch_tokens", NULL, NULL, NULL,
    "class_token", "encoder.pos_embedding", "encoder.dropout",
    "encoder.layers.encoder_layer_%d",
    "ln_1", "self_attention.in_proj", "self_attention.in_proj_weight",
    "self_attention.in_proj_bias", "self_attention.attention",
    "self_attention.out_proj", "self_attention", NULL,
    "ln_2", "mlp.0", "mlp.1", "mlp.3", "mlp", NULL,
    "encoder.ln", NULL, "heads.head", "heads", NULL,
};

static const vit_names timm_names = {
    "patch_embed.proj", "patch_embed", NULL, NULL, NULL,
    "cls_token", "pos_embed", "pos_drop",
    "blocks.%d",
    "norm1", "attn.qkv", "attn.qkv.weight", "attn.qkv.bias", "attn.attention",
    "attn.proj", "attn", NULL,
    "norm2", "mlp.fc1", "mlp.act", "mlp.fc2", "mlp", NULL,
    "norm", "fc_norm", "head", NULL, "attn.attn_drop",
};

static const vit_names lucidrains_names = {
    NULL, NULL, "to_patch_embedding.0", "to_patch_embedding.1",
    "to_patch_embedding",
    "cls_token", "pos_embedding", "dropout",
    "transformer.layers.%d",
    "0.norm", "0.fn.to_qkv", "0.fn.to_qkv.weight", NULL, "0.fn.attention",
    "0.fn.to_out.0", "0.fn", "0",
    "1.norm", "1.fn.net.0", "1.fn.net.1", "1.fn.net.3", "1.fn", "1",
    NULL, "mlp_head.0", "mlp_head.1", "mlp_head", "0.fn.attend",
};

static int read_config(lp_model *m, vit_config *c)
{
    LP_TRY(lp_build_meta_str(m, "vit.layout", c->layout, sizeof c->layout));
    LP_TRY(lp_build_meta_int(m, "vit.image_size", 1, 8192, &c->image));
    LP_TRY(lp_build_meta_int(m, "vit.patch_size", 1, 1024, &c->patch));
    LP_TRY(lp_build_meta_int(m, "input.channels", 1, 4, &c->channels));
    LP_TRY(lp_build_meta_int(m, "vit.hidden_size", 1, 16384, &c->dim));
    LP_TRY(lp_build_meta_int(m, "vit.num_layers", 0, 256, &c->layers));
    LP_TRY(lp_build_meta_int(m, "vit.num_heads", 1, 1024, &c->heads));
    LP_TRY(lp_build_meta_int_or(m, "vit.head_dim", 1, 16384,
                                c->dim / c->heads, &c->head_dim));
    LP_TRY(lp_build_meta_int(m, "vit.mlp_dim", 1, 65536, &c->mlp));
    LP_TRY(lp_build_meta_float(m, "vit.ln_eps", 0.0, 1.0, &c->eps));
    LP_TRY(lp_build_meta_str(m, "vit.mlp_act", c->act, sizeof c->act));
    LP_TRY(lp_build_meta_int_or(m, "vit.qkv_bias", 0, 1, 1, &c->qkv_bias));
    LP_TRY(lp_build_meta_str(m, "vit.pool", c->pool, sizeof c->pool));
    LP_TRY(lp_build_meta_int_or(m, "vit.final_norm", 0, 1, 1, &c->final_norm));
    LP_TRY(lp_build_meta_int_or(m, "vit.head_norm", 0, 1, 0, &c->head_norm));
    if (c->image % c->patch)
        return lp_set_error(LP_EFORMAT, "vit.image_size %d is not a multiple of "
                            "vit.patch_size %d", c->image, c->patch);
    if ((long long)(c->image / c->patch) * (c->image / c->patch) > 65536)
        return lp_set_error(LP_ERANGE, "too many patches");
    if (c->head_dim * c->heads > 65536)
        return lp_set_error(LP_ERANGE, "attention width too large");
    if (strcmp(c->act, "gelu_erf") && strcmp(c->act, "gelu_tanh") &&
        strcmp(c->act, "relu"))
        return lp_set_error(LP_EFORMAT, "vit.mlp_act '%s' is not gelu_erf, "
                            "gelu_tanh or relu", c->act);
    if (strcmp(c->pool, "token") && strcmp(c->pool, "mean"))
        return lp_set_error(LP_EFORMAT, "vit.pool '%s' is not token or mean",
                            c->pool);
    return LP_OK;
}

static int add_linear(lp_model *m, const char *name, const char *wname,
                      const char *bname, int in, int out_f)
{
    const lp_node *src = &m->nodes[in];
    int dims[4], node, in_f = src->dims[src->ndim - 1];
    char t[LP_NODE_NAME + 16];
    lp_node *nd;
    for (int d = 0; d < src->ndim; d++)
        dims[d] = src->dims[d];
    dims[src->ndim - 1] = out_f;
    node = lp_build_node(m, LP_NODE_LINEAR, name, in, -1, src->ndim, dims);
    if (node < 0)
        return node;
    nd = &m->nodes[node];
    nd->p.linear.in_f = in_f;
    nd->p.linear.out_f = out_f;
    if (wname == NULL) {
        snprintf(t, sizeof t, "%s.weight", name);
        wname = t;
    }
    nd->w = lp_build_tensor(m, wname, 2, out_f, in_f);
    if (nd->w == NULL)
        return LP_EFORMAT;
    if (bname != NULL) {
        nd->b = lp_build_tensor(m, bname, 1, out_f);
        if (nd->b == NULL)
            return LP_EFORMAT;
    }
    return node;
}

/* Linear with the default "<name>.weight" / "<name>.bias" tensors. */
static int add_linear_b(lp_model *m, const char *name, int in, int out_f)
{
    char b[LP_NODE_NAME + 8];
    snprintf(b, sizeof b, "%s.bias", name);
    return add_linear(m, name, NULL, b, in, out_f);
}

static int add_layernorm(lp_model *m, const char *name, int in, float eps)
{
    char t[LP_NODE_NAME + 8];
    const lp_node *src = &m->nodes[in];
    int d = src->dims[src->ndim - 1];
    int node = lp_build_node(m, LP_NODE_LAYERNORM, name, in, -1, src->ndim,
                             src->dims);
    lp_node *nd;
    if (node < 0)
        return node;
    nd = &m->nodes[node];
    nd->eps = eps;
    snprintf(t, sizeof t, "%s.weight", name);
    nd->w = lp_build_tensor(m, t, 1, d);
    snprintf(t, sizeof t, "%s.bias", name);
    nd->b = nd->w ? lp_build_tensor(m, t, 1, d) : NULL;
    return nd->b ? node : LP_EFORMAT;
}

static int add_alias(lp_model *m, int node, const char *alias)
{
    if (node < 0 || alias == NULL)
        return node;
    LP_TRY(lp_build_alias(m, node, alias));
    return node;
}

/* Patch embedding + class token + positions: returns the [T, D] node. */
static int add_embedding(lp_model *m, const vit_config *c, const vit_names *nm)
{
    int grid = c->image / c->patch, tokens = grid * grid, x, dims[2];
    char t[LP_NODE_NAME + 16];
    lp_node *nd;
    if (nm->patch_conv != NULL) {
        lp_conv2d_params p = {1, c->channels, c->image, c->image, c->dim,
                              c->patch, c->patch, c->patch, c->patch, 0, 0,
                              1, 1, 1};
        int cdims[3] = {c->dim, grid, grid};
        x = lp_build_node(m, LP_NODE_CONV, nm->patch_conv, 0, -1, 3, cdims);
        if (x < 0) return x;
        nd = &m->nodes[x];
        nd->p.conv = p;
        snprintf(t, sizeof t, "%s.weight", nm->patch_conv);
        nd->w = lp_build_tensor(m, t, 4, c->dim, c->channels, c->patch, c->patch);
        snprintf(t, sizeof t, "%s.bias", nm->patch_conv);
        nd->b = nd->w ? lp_build_tensor(m, t, 1, c->dim) : NULL;
        if (nd->b == NULL) return LP_EFORMAT;
        dims[0] = tokens;
        dims[1] = c->dim;
        x = lp_build_node(m, LP_NODE_TOKENS, nm->patch_tokens, x, -1, 2, dims);
    } else {
        dims[0] = tokens;
        dims[1] = c->patch * c->patch * c->channels;
        x = lp_build_node(m, LP_NODE_PATCHIFY, nm->patchify, 0, -1, 2, dims);
        if (x < 0) return x;
        m->nodes[x].p.patch = c->patch;
        x = add_alias(m, add_linear_b(m, nm->patch_linear, x, c->dim),
                      nm->patch_alias);
    }
    if (x < 0) return x;
    dims[0] = tokens + 1;
    dims[1] = c->dim;
    x = lp_build_node(m, LP_NODE_EMBED, nm->embed, x, -1, 2, dims);
    if (x < 0) return x;
    nd = &m->nodes[x];
    nd->w = lp_build_tensor(m, nm->cls, 3, 1, 1, c->dim);
    nd->b = nd->w ? lp_build_tensor(m, nm->pos, 3, 1, tokens + 1, c->dim) : NULL;
    return nd->b ? x : LP_EFORMAT;
}

/* Attention as three hookable nodes after the fused qkv projection:
 *   <attn>.scores  q k^T * scale        [H, T, T]
 *   <attn>.probs   softmax of the rows  [H, T, T]
 *   <attn>.attention  probs v, heads concatenated [T, H*head_dim]
 * where <attn> is the module holding qkv ("blocks.3.attn"). */
static int add_attention(lp_model *m, const vit_config *c, const vit_names *nm,
                         const char *prefix, int qkv, int tokens)
{
    char base[LP_NODE_NAME], name[LP_NODE_NAME + 16];
    const char *dot;
    int dims[3] = {c->heads, tokens, tokens}, s, p, y;
    snprintf(base, sizeof base, "%s.%s", prefix, nm->attention);
    dot = strrchr(base, '.');
    base[dot - base] = '\0'; /* "blocks.3.attn.attention" -> "blocks.3.attn" */
    snprintf(name, sizeof name, "%s.scores", base);
    s = lp_build_node(m, LP_NODE_ATTN_SCORES, name, qkv, -1, 3, dims);
    if (s < 0) return s;
    snprintf(name, sizeof name, "%s.probs", base);
    p = lp_build_node(m, LP_NODE_SOFTMAX, name, s, -1, 3, dims);
    if (p < 0) return p;
    if (nm->attend_alias != NULL) {
        snprintf(name, sizeof name, "%s.%s", prefix, nm->attend_alias);
        LP_TRY(lp_build_alias(m, p, name));
    }
    dims[0] = tokens;
    dims[1] = c->heads * c->head_dim;
    snprintf(name, sizeof name, "%s.%s", prefix, nm->attention);
    y = lp_build_node(m, LP_NODE_ATTN_APPLY, name, p, qkv, 2, dims);
    if (y < 0) return y;
    for (int k = 0; k < 2; k++) {
        lp_node *nd = &m->nodes[k ? y : s];
        nd->p.attn.heads = c->heads;
        nd->p.attn.head_dim = c->head_dim;
        nd->p.attn.scale = (float)(1.0 / sqrt((double)c->head_dim));
    }
    return y;
}

static int add_block(lp_model *m, const vit_config *c, const vit_names *nm,
                     int index, int x)
{
    char prefix[64], name[LP_NODE_NAME], wname[LP_NODE_NAME], bname[LP_NODE_NAME];
    int inner = c->heads * c->head_dim, y, mid;
#define NAME(buf, suffix) (snprintf(buf, sizeof buf, "%s.%s", prefix, suffix), buf)
    snprintf(prefix, sizeof prefix, nm->block, index);

    y = add_layernorm(m, NAME(name, nm->norm1), x, c->eps);
    if (y < 0) return y;
    y = add_linear(m, NAME(name, nm->qkv), NAME(wname, nm->qkv_w),
                   c->qkv_bias && nm->qkv_b ? NAME(bname, nm->qkv_b) : NULL, y,
                   3 * inner);
    if (y < 0) return y;
    y = add_attention(m, c, nm, prefix, y, m->nodes[x].dims[0]);
    y = add_linear_b(m, NAME(name, nm->proj), y, c->dim);
    y = add_alias(m, y, NAME(name, nm->attn_alias));
    if (nm->attn_alias2) y = add_alias(m, y, NAME(name, nm->attn_alias2));
    if (y < 0) return y;
    mid = lp_build_node(m, LP_NODE_ADD, NAME(name, "resid_mid"), x, y, 2,
                        m->nodes[x].dims);
    if (mid < 0) return mid;

    y = add_layernorm(m, NAME(name, nm->norm2), mid, c->eps);
    if (y >= 0) y = add_linear_b(m, NAME(name, nm->fc1), y, c->mlp);
    if (y >= 0) {
        int relu = !strcmp(c->act, "relu");
        y = lp_build_node(m, relu ? LP_NODE_RELU : LP_NODE_GELU,
                          NAME(name, nm->act), y, -1, 2, m->nodes[y].dims);
        if (y >= 0 && !relu)
            m->nodes[y].p.gelu = strcmp(c->act, "gelu_tanh") ? LP_GELU_ERF
                                                               : LP_GELU_TANH;
    }
    if (y >= 0) y = add_linear_b(m, NAME(name, nm->fc2), y, c->dim);
    y = add_alias(m, y, NAME(name, nm->mlp_alias));
    if (nm->mlp_alias2) y = add_alias(m, y, NAME(name, nm->mlp_alias2));
    if (y < 0) return y;
    y = lp_build_node(m, LP_NODE_ADD, NAME(name, "resid_post"), mid, y, 2,
                      m->nodes[mid].dims);
#undef NAME
    return add_alias(m, y, prefix);
}

static int add_head(lp_model *m, const vit_config *c, const vit_names *nm,
                    int x)
{
    int dims[1] = {c->dim};
    int mean = !strcmp(c->pool, "mean");
    if (c->final_norm) {
        if (nm->final_norm == NULL)
            return lp_set_error(LP_EFORMAT, "layout %s has no final norm",
                                c->layout);
        x = add_layernorm(m, nm->final_norm, x, c->eps);
        if (x < 0) return x;
    }
    x = lp_build_node(m, mean ? LP_NODE_TOKEN_MEAN : LP_NODE_TOKEN_SELECT, "pool",
                      x, -1, 1, dims);
    if (x < 0) return x;
    /* timm's average pool skips the class token; lucidrains' includes it */
    m->nodes[x].p.first_token = strcmp(c->layout, "timm") ? 0 : 1;
    if (c->head_norm) {
        x = add_layernorm(m, nm->head_norm, x, c->eps);
        if (x < 0) return x;
    }
    if (m->info.num_classes == 0)
        return x;
    x = add_linear_b(m, nm->head, x, m->info.num_classes);
    return add_alias(m, x, nm->head_alias);
}

int lp_build_vit(lp_model *m)
{
    vit_config c;
    const vit_names *nm;
    int x;
    memset(&c, 0, sizeof c);
    LP_TRY(read_config(m, &c));
    if (!strcmp(c.layout, "torchvision"))
        nm = &torchvision_names;
    else if (!strcmp(c.layout, "timm"))
        nm = &timm_names;
    else if (!strcmp(c.layout, "lucidrains"))
        nm = &lucidrains_names;
    else
        return lp_set_error(LP_EFORMAT, "vit.layout '%s' is not torchvision, "
                            "timm or lucidrains", c.layout);
    if (m->info.in_h != c.image || m->info.in_w != c.image)
        return lp_set_error(LP_EFORMAT, "input %dx%d does not match "
                            "vit.image_size %d", m->info.in_h, m->info.in_w,
                            c.image);
    x = add_embedding(m, &c, nm);
    for (int i = 0; i < c.layers && x >= 0; i++)
        x = add_block(m, &c, nm, i, x);
    if (x >= 0)
        x = add_head(m, &c, nm, x);
    return x < 0 ? x : LP_OK;
}
