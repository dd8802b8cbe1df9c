/*
 * node.c — forward and backward of one node over a batch, by calling the
 * ops. Shapes were checked when the network was built; here they only
 * have to be turned into the ops' explicit arguments.
 */
#include "model_internal.h"

#include <string.h>

const char *lp_node_kind_name(lp_node_kind kind)
{
    static const char *names[LP_NODE_KIND_COUNT] = {
        [LP_NODE_INPUT] = "input",
        [LP_NODE_CONV] = "conv2d",
        [LP_NODE_BN] = "batchnorm2d",
        [LP_NODE_RELU] = "relu",
        [LP_NODE_GELU] = "gelu",
        [LP_NODE_MAXPOOL] = "maxpool2d",
        [LP_NODE_ADD] = "add",
        [LP_NODE_PAD_SUB] = "pad_channels_subsample",
        [LP_NODE_GAP] = "global_avgpool",
        [LP_NODE_LINEAR] = "linear",
        [LP_NODE_TOKENS] = "flatten_transpose",
        [LP_NODE_PATCHIFY] = "patchify",
        [LP_NODE_EMBED] = "class_token_position_embedding",
        [LP_NODE_LAYERNORM] = "layernorm",
        [LP_NODE_ATTN_SCORES] = "attention_scores",
        [LP_NODE_SOFTMAX] = "softmax",
        [LP_NODE_ATTN_APPLY] = "attention",
        [LP_NODE_TOKEN_SELECT] = "select_class_token",
        [LP_NODE_TOKEN_MEAN] = "mean_tokens",
    };
    return (kind >= 0 && kind < LP_NODE_KIND_COUNT) ? names[kind] : "?";
}

/* Attention parameters of a node for a batch of n. */
static lp_attention_params attn_params(const lp_model *m, const lp_node *nd,
                                       int n)
{
    lp_attention_params ap;
    ap.n = n;
    /* the fused qkv node is in[0] of SCORES and in[1] of APPLY */
    ap.tokens = m->nodes[nd->kind == LP_NODE_ATTN_APPLY ? nd->in[1] : nd->in[0]].dims[0];
    ap.heads = nd->p.attn.heads;
    ap.head_dim = nd->p.attn.head_dim;
    ap.qkv_stride = 3 * ap.heads * ap.head_dim;
    ap.scale = nd->p.attn.scale;
    return ap;
}

/* [n, D, hw] <-> [n, hw, D] */
static void transpose_tokens(float *out, const float *in, int n, int d,
                             int hw, int accumulate)
{
    for (int b = 0; b < n; b++) {
        const float *src = in + (size_t)b * d * hw;
        float *dst = out + (size_t)b * d * hw;
        for (int t = 0; t < hw; t++)
            for (int c = 0; c < d; c++) {
                float v = src[(size_t)c * hw + t];
                if (accumulate)
                    dst[(size_t)t * d + c] += v;
                else
                    dst[(size_t)t * d + c] = v;
            }
    }
}

/* Patchify as lucidrains' Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)').
 * forward: out[t][f] = in[c][hi*p+p1][wi*p+p2]; backward adds the reverse. */
static void patchify(float *tokens, float *image, int n, int c, int h, int w,
                     int p, int backward)
{
    int gh = h / p, gw = w / p;
    size_t feat = (size_t)p * p * c;
    for (int b = 0; b < n; b++)
        for (int hi = 0; hi < gh; hi++)
            for (int wi = 0; wi < gw; wi++) {
                float *tok = tokens + ((size_t)b * gh * gw + (size_t)hi * gw + wi) * feat;
                for (int p1 = 0; p1 < p; p1++)
                    for (int p2 = 0; p2 < p; p2++)
                        for (int ch = 0; ch < c; ch++) {
                            size_t f = ((size_t)p1 * p + p2) * c + ch;
                            float *px = image + (((size_t)b * c + ch) * h + (size_t)hi * p + p1) * w +
                                        (size_t)wi * p + p2;
                            if (backward)
                                *px += tok[f];
                            else
                                tok[f] = *px;
                        }
            }
}

static int forward_embed(const lp_node *nd, float *out, const float *in,
                         int n)
{
    int t = nd->dims[0], d = nd->dims[1];
    for (int b = 0; b < n; b++) {
        float *o = out + (size_t)b * t * d;
        const float *x = in + (size_t)b * (t - 1) * d;
        for (int c = 0; c < d; c++)
            o[c] = nd->w[c] + nd->b[c];
        for (size_t i = 0; i < (size_t)(t - 1) * d; i++)
            o[d + i] = x[i] + nd->b[d + i];
    }
    return LP_OK;
}

static void token_mean(float *out, const float *in, int n, int t, int d,
                       int first, int backward)
{
    float inv = 1.0f / (float)(t - first);
    for (int b = 0; b < n; b++) {
        if (!backward) {
            for (int c = 0; c < d; c++) {
                double acc = 0.0;
                for (int i = first; i < t; i++)
                    acc += in[((size_t)b * t + i) * d + c];
                out[(size_t)b * d + c] = (float)(acc / (t - first));
            }
        } else {
            /* here `out` is din [n,t,d] and `in` is dout [n,d] */
            for (int i = first; i < t; i++)
                for (int c = 0; c < d; c++)
                    out[((size_t)b * t + i) * d + c] += in[(size_t)b * d + c] * inv;
        }
    }
}

int lp_node_forward(lp_model *m, int i, int n)
{
    lp_node *nd = &m->nodes[i];
    float *out = m->act[i];
    const float *x = nd->in[0] >= 0 ? m->act[nd->in[0]] : NULL;
    const lp_node *src = nd->in[0] >= 0 ? &m->nodes[nd->in[0]] : NULL;
    size_t count = (size_t)n * nd->size;

    switch (nd->kind) {
    case LP_NODE_INPUT:
        return LP_OK;
    case LP_NODE_CONV: {
        lp_conv2d_params cp = nd->p.conv;
        cp.n = n;
        return lp_conv2d_forward(out, x, nd->w, nd->b, &cp);
    }
    case LP_NODE_BN:
        return lp_batchnorm2d_forward_eval(out, x, nd->w, nd->b, nd->mean,
                                           nd->var, nd->eps, n, nd->dims[0],
                                           nd->dims[1] * nd->dims[2]);
    case LP_NODE_RELU:
        return lp_relu_forward(out, x, count);
    case LP_NODE_GELU:
        return lp_gelu_forward(out, x, count, nd->p.gelu);
    case LP_NODE_MAXPOOL: {
        lp_pool2d_params pp = nd->p.pool;
        pp.n = n;
        return lp_maxpool2d_forward(out, m->argmax[i], x, &pp);
    }
    case LP_NODE_ADD:
        return lp_add_forward(out, x, m->act[nd->in[1]], count);
    case LP_NODE_PAD_SUB:
        return lp_pad_channels_subsample_forward(
            out, x, n, src->dims[0], src->dims[1], src->dims[2],
            nd->p.pad.stride, nd->p.pad.before, nd->p.pad.after);
    case LP_NODE_GAP:
        return lp_adaptive_avgpool2d_forward(out, x, n, src->dims[0],
                                             src->dims[1], src->dims[2], 1, 1);
    case LP_NODE_LINEAR: {
        int rows = (int)((size_t)n * src->size / (size_t)nd->p.linear.in_f);
        return lp_linear_forward(out, x, nd->w, nd->b, rows, nd->p.linear.in_f,
                                 nd->p.linear.out_f);
    }
    case LP_NODE_TOKENS:
        transpose_tokens(out, x, n, src->dims[0], src->dims[1] * src->dims[2], 0);
        return LP_OK;
    case LP_NODE_PATCHIFY:
        patchify(out, (float *)x, n, src->dims[0], src->dims[1], src->dims[2],
                 nd->p.patch, 0);
        return LP_OK;
    case LP_NODE_EMBED:
        return forward_embed(nd, out, x, n);
    case LP_NODE_LAYERNORM: {
        int d = nd->dims[nd->ndim - 1];
        int rows = (int)(count / (size_t)d);
        return lp_layernorm_forward(out, NULL, NULL, x, nd->w, nd->b, nd->eps,
                                    rows, d);
    }
    case LP_NODE_ATTN_SCORES: {
        lp_attention_params ap = attn_params(m, nd, n);
        return lp_attention_scores_forward(out, x, x + ap.heads * ap.head_dim, &ap);
    }
    case LP_NODE_SOFTMAX: {
        int d = nd->dims[nd->ndim - 1];
        return lp_softmax_forward(out, x, (int)(count / (size_t)d), d);
    }
    case LP_NODE_ATTN_APPLY: {
        lp_attention_params ap = attn_params(m, nd, n);
        const float *qkv = m->act[nd->in[1]];
        return lp_attention_apply_forward(out, x, qkv + 2 * ap.heads * ap.head_dim, &ap);
    }
    case LP_NODE_TOKEN_SELECT: {
        int t = src->dims[0], d = src->dims[1];
        for (int b = 0; b < n; b++)
            memcpy(out + (size_t)b * d, x + (size_t)b * t * d, (size_t)d * sizeof(float));
        return LP_OK;
    }
    case LP_NODE_TOKEN_MEAN:
        token_mean(out, x, n, src->dims[0], src->dims[1], nd->p.first_token, 0);
        return LP_OK;
    default:
        return lp_set_error(LP_EINVAL, "%s: unknown node kind %d", nd->name,
                            (int)nd->kind);
    }
}

int lp_node_backward(lp_model *m, int i, int n)
{
    lp_node *nd = &m->nodes[i];
    const float *dout = m->grad[i];
    const float *x = nd->in[0] >= 0 ? m->act[nd->in[0]] : NULL;
    float *dx = nd->in[0] >= 0 ? m->grad[nd->in[0]] : NULL;
    const lp_node *src = nd->in[0] >= 0 ? &m->nodes[nd->in[0]] : NULL;
    size_t count = (size_t)n * nd->size;

    switch (nd->kind) {
    case LP_NODE_INPUT:
        return LP_OK;
    case LP_NODE_CONV: {
        lp_conv2d_params cp = nd->p.conv;
        cp.n = n;
        return lp_conv2d_backward(dx, NULL, NULL, dout, x, nd->w, &cp);
    }
    case LP_NODE_BN:
        return lp_batchnorm2d_backward_eval(dx, NULL, NULL, dout, x, nd->w,
                                            nd->mean, nd->var, nd->eps, n,
                                            nd->dims[0], nd->dims[1] * nd->dims[2]);
    case LP_NODE_RELU:
        return lp_relu_backward(dx, dout, x, count);
    case LP_NODE_GELU:
        return lp_gelu_backward(dx, dout, x, count, nd->p.gelu);
    case LP_NODE_MAXPOOL: {
        lp_pool2d_params pp = nd->p.pool;
        pp.n = n;
        return lp_maxpool2d_backward(dx, dout, x, m->argmax[i], &pp);
    }
    case LP_NODE_ADD:
        return lp_add_backward(dx, m->grad[nd->in[1]], dout, count);
    case LP_NODE_PAD_SUB:
        return lp_pad_channels_subsample_backward(
            dx, dout, n, src->dims[0], src->dims[1], src->dims[2],
            nd->p.pad.stride, nd->p.pad.before, nd->p.pad.after);
    case LP_NODE_GAP:
        return lp_adaptive_avgpool2d_backward(dx, dout, n, src->dims[0],
                                              src->dims[1], src->dims[2], 1, 1);
    case LP_NODE_LINEAR: {
        int rows = (int)((size_t)n * src->size / (size_t)nd->p.linear.in_f);
        return lp_linear_backward(dx, NULL, NULL, dout, x, nd->w, rows,
                                  nd->p.linear.in_f, nd->p.linear.out_f);
    }
    case LP_NODE_TOKENS: {
        /* dout [n, hw, D] -> dx [n, D, hw]: the inverse transpose */
        int d = src->dims[0], hw = src->dims[1] * src->dims[2];
        transpose_tokens(dx, dout, n, hw, d, 1);
        return LP_OK;
    }
    case LP_NODE_PATCHIFY:
        patchify((float *)dout, dx, n, src->dims[0], src->dims[1], src->dims[2],
                 nd->p.patch, 1);
        return LP_OK;
    case LP_NODE_EMBED: {
        int t = nd->dims[0], d = nd->dims[1];
        for (int b = 0; b < n; b++)
            for (size_t k = 0; k < (size_t)(t - 1) * d; k++)
                dx[(size_t)b * (t - 1) * d + k] += dout[(size_t)b * t * d + d + k];
        return LP_OK;
    }
    case LP_NODE_LAYERNORM: {
        int d = nd->dims[nd->ndim - 1];
        int rows = (int)(count / (size_t)d);
        return lp_layernorm_backward(dx, NULL, NULL, dout, x, nd->w, NULL, NULL,
                                     nd->eps, rows, d);
    }
    case LP_NODE_ATTN_SCORES: {
        lp_attention_params ap = attn_params(m, nd, n);
        int inner = ap.heads * ap.head_dim;
        return lp_attention_scores_backward(dx, dx + inner, dout, x, x + inner, &ap);
    }
    case LP_NODE_SOFTMAX: {
        int d = nd->dims[nd->ndim - 1];
        return lp_softmax_backward(dx, dout, m->act[i], (int)(count / (size_t)d), d);
    }
    case LP_NODE_ATTN_APPLY: {
        /* dprobs into in[0]'s gradient, dv into the v part of qkv's */
        lp_attention_params ap = attn_params(m, nd, n);
        int inner = ap.heads * ap.head_dim;
        const float *qkv = m->act[nd->in[1]];
        float *dqkv = m->grad[nd->in[1]];
        return lp_attention_apply_backward(dx, dqkv + 2 * inner, dout, x,
                                           qkv + 2 * inner, &ap);
    }
    case LP_NODE_TOKEN_SELECT: {
        int t = src->dims[0], d = src->dims[1];
        for (int b = 0; b < n; b++)
            for (int c = 0; c < d; c++)
                dx[(size_t)b * t * d + c] += dout[(size_t)b * d + c];
        return LP_OK;
    }
    case LP_NODE_TOKEN_MEAN:
        token_mean(dx, dout, n, src->dims[0], src->dims[1], nd->p.first_token, 1);
        return LP_OK;
    default:
        return lp_set_error(LP_EINVAL, "%s: unknown node kind %d", nd->name,
                            (int)nd->kind);
    }
}
