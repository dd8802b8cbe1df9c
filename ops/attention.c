/*
 * attention.c — multi-head scaled-dot-product attention (Vaswani et al.,
 * "Attention Is All You Need", 2017, eq. 1), forward and backward.
 *
 * For batch item b and head h, with Q, K, V the [t, head_dim] slices of
 * q, k, v (row stride qkv_stride, so they can sit inside a fused qkv
 * projection [n, t, 3*heads*head_dim]):
 *     S = scale * Q K^T          scores [t, t]
 *     P = softmax_rows(S)        probs  [t, t]
 *     O = P V                    out    [t, head_dim], a column block of
 *                                       the contiguous [n, t, heads*head_dim]
 * and backward, with G = d loss / d O:
 *     dP = G V^T,  dV = P^T G,
 *     dS = P .* (dP - rowsum(dP .* P))      (softmax backward),
 *     dQ = scale * dS K,  dK = scale * dS^T Q.
 *
 * Every product is one lp_sgemm per (b, h), which parallelises internally;
 * the (b, h) loops run sequentially in a fixed order, so the results do not
 * depend on the thread count.
 */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ---- layout ------------------------------------------------------------ */

/* Validate the parameters (and that every tensor size fits). */
static int check_params(const char *op, const lp_attention_params *p)
{
    size_t inner, count;
    LP_TRY(lp_require_ptr(op, "params", p));
    LP_TRY(lp_require_positive(op, "n", p->n));
    LP_TRY(lp_require_positive(op, "tokens", p->tokens));
    LP_TRY(lp_require_positive(op, "heads", p->heads));
    LP_TRY(lp_require_positive(op, "head_dim", p->head_dim));
    LP_TRY(lp_checked_count(op, &inner, 2, p->heads, p->head_dim));
    if (p->qkv_stride < 0 || (size_t)p->qkv_stride < inner)
        return lp_set_error(LP_EINVAL,
                            "%s: qkv_stride %d is smaller than heads*head_dim "
                            "= %zu",
                            op, p->qkv_stride, inner);
    if (!isfinite(p->scale))
        return lp_set_error(LP_EINVAL, "%s: scale is not finite", op);
    /* q/k/v span n*tokens rows of qkv_stride floats; out n*tokens*inner
     * (<= that, since inner <= qkv_stride); scores/probs n*heads*t*t. */
    LP_TRY(lp_checked_count(op, &count, 3, p->n, p->tokens, p->qkv_stride));
    LP_TRY(lp_checked_count(op, &count, 4, p->n, p->heads, p->tokens,
                            p->tokens));
    return LP_OK;
}

/* Offset of head h of batch item b in q, k, v (and dq, dk, dv). */
static size_t qkv_offset(const lp_attention_params *p, int b, int h)
{
    return (size_t)b * p->tokens * p->qkv_stride + (size_t)h * p->head_dim;
}

/* Offset of head h of batch item b in the contiguous out / dout. */
static size_t out_offset(const lp_attention_params *p, int b, int h)
{
    return ((size_t)b * p->tokens * p->heads + (size_t)h) * p->head_dim;
}

/* Offset of the [t, t] map of (b, h) in scores / probs. */
static size_t map_offset(const lp_attention_params *p, int b, int h)
{
    return ((size_t)b * p->heads + (size_t)h) * p->tokens * p->tokens;
}

static int inner_dim(const lp_attention_params *p)
{
    return p->heads * p->head_dim; /* fits: <= qkv_stride (checked) */
}

/* ---- per-(b, h) steps --------------------------------------------------- */
/* Each takes pointers already offset to the head's slices. */

/* S = scale * Q K^T  (beta = 0: S is overwritten) */
static int scores_head(float *s, const float *q, const float *k,
                       const lp_attention_params *p)
{
    int t = p->tokens;
    return lp_sgemm(0, 1, t, t, p->head_dim, p->scale, q, p->qkv_stride, k,
                    p->qkv_stride, 0.0f, s, t);
}

/* O = P V  (O is a column block of out: leading dimension heads*head_dim) */
static int apply_head(float *o, const float *prob, const float *v,
                      const lp_attention_params *p)
{
    int t = p->tokens;
    return lp_sgemm(0, 0, t, p->head_dim, t, 1.0f, prob, t, v, p->qkv_stride,
                    0.0f, o, inner_dim(p));
}

/* dP (+)= G V^T (beta chooses overwrite or accumulate); dV += P^T G */
static int apply_head_backward(float *dprob, float dprob_beta, float *dv,
                               const float *g, const float *prob,
                               const float *v, const lp_attention_params *p)
{
    int t = p->tokens, hd = p->head_dim, ld_out = inner_dim(p);
    if (dprob != NULL)
        LP_TRY(lp_sgemm(0, 1, t, t, hd, 1.0f, g, ld_out, v, p->qkv_stride,
                        dprob_beta, dprob, t));
    if (dv != NULL)
        LP_TRY(lp_sgemm(1, 0, t, hd, t, 1.0f, prob, t, g, ld_out, 1.0f, dv,
                        p->qkv_stride));
    return LP_OK;
}

/* dQ += scale * dS K ; dK += scale * dS^T Q */
static int scores_head_backward(float *dq, float *dk, const float *ds,
                                const float *q, const float *k,
                                const lp_attention_params *p)
{
    int t = p->tokens, hd = p->head_dim, ld = p->qkv_stride;
    if (dq != NULL)
        LP_TRY(lp_sgemm(0, 0, t, hd, t, p->scale, ds, t, k, ld, 1.0f, dq, ld));
    if (dk != NULL)
        LP_TRY(lp_sgemm(1, 0, t, hd, t, p->scale, ds, t, q, ld, 1.0f, dk, ld));
    return LP_OK;
}

/* Row softmax over `rows` rows of length dim, in chunks that fit an int. */
static int softmax_rows(float *out, const float *in, size_t rows, int dim)
{
    size_t chunk = (size_t)INT_MAX;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t cnt = rows - r0 < chunk ? rows - r0 : chunk;
        size_t off = r0 * (size_t)dim;
        LP_TRY(lp_softmax_forward(out + off, in + off, (int)cnt, dim));
    }
    return LP_OK;
}

/* ---- forward ------------------------------------------------------------ */

int lp_attention_scores_forward(float *scores, const float *q, const float *k,
                                const lp_attention_params *p)
{
    const char *op = "lp_attention_scores_forward";
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "scores", scores));
    LP_TRY(lp_require_ptr(op, "q", q));
    LP_TRY(lp_require_ptr(op, "k", k));
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++) {
            size_t o = qkv_offset(p, b, h);
            LP_TRY(scores_head(scores + map_offset(p, b, h), q + o, k + o, p));
        }
    return LP_OK;
}

int lp_attention_apply_forward(float *out, const float *probs, const float *v,
                               const lp_attention_params *p)
{
    const char *op = "lp_attention_apply_forward";
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "probs", probs));
    LP_TRY(lp_require_ptr(op, "v", v));
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++)
            LP_TRY(apply_head(out + out_offset(p, b, h),
                              probs + map_offset(p, b, h),
                              v + qkv_offset(p, b, h), p));
    return LP_OK;
}

int lp_attention_forward(float *out, float *scores, float *probs,
                         const float *q, const float *k, const float *v,
                         const lp_attention_params *p)
{
    const char *op = "lp_attention_forward";
    float *s;
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "probs", probs));
    LP_TRY(lp_require_ptr(op, "q", q));
    LP_TRY(lp_require_ptr(op, "k", k));
    LP_TRY(lp_require_ptr(op, "v", v));
    /* Without a scores buffer the scores are written to probs and the
     * softmax runs in place. */
    s = scores != NULL ? scores : probs;
    LP_TRY(lp_attention_scores_forward(s, q, k, p));
    LP_TRY(softmax_rows(probs, s, (size_t)p->n * p->heads * p->tokens,
                        p->tokens));
    return lp_attention_apply_forward(out, probs, v, p);
}

/* ---- backward ----------------------------------------------------------- */

int lp_attention_apply_backward(float *dprobs, float *dv, const float *dout,
                                const float *probs, const float *v,
                                const lp_attention_params *p)
{
    const char *op = "lp_attention_apply_backward";
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    if (dprobs != NULL)
        LP_TRY(lp_require_ptr(op, "v (needed for dprobs)", v));
    if (dv != NULL)
        LP_TRY(lp_require_ptr(op, "probs (needed for dv)", probs));
    if (dprobs == NULL && dv == NULL)
        return LP_OK;
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++) {
            size_t o = qkv_offset(p, b, h), m = map_offset(p, b, h);
            LP_TRY(apply_head_backward(dprobs ? dprobs + m : NULL, 1.0f,
                                       dv ? dv + o : NULL,
                                       dout + out_offset(p, b, h),
                                       probs ? probs + m : NULL,
                                       v ? v + o : NULL, p));
        }
    return LP_OK;
}

int lp_attention_scores_backward(float *dq, float *dk, const float *dscores,
                                 const float *q, const float *k,
                                 const lp_attention_params *p)
{
    const char *op = "lp_attention_scores_backward";
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "dscores", dscores));
    if (dq != NULL)
        LP_TRY(lp_require_ptr(op, "k (needed for dq)", k));
    if (dk != NULL)
        LP_TRY(lp_require_ptr(op, "q (needed for dk)", q));
    if (dq == NULL && dk == NULL)
        return LP_OK;
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++) {
            size_t o = qkv_offset(p, b, h);
            LP_TRY(scores_head_backward(dq ? dq + o : NULL, dk ? dk + o : NULL,
                                        dscores + map_offset(p, b, h),
                                        q ? q + o : NULL, k ? k + o : NULL,
                                        p));
        }
    return LP_OK;
}

/* Backward of one (b, h) through all three steps. dprob and dscore are
 * [t, t] scratch maps, overwritten. */
static int attention_head_backward(float *dq, float *dk, float *dv,
                                   const float *g, const float *q,
                                   const float *k, const float *v,
                                   const float *prob, float *dprob,
                                   float *dscore,
                                   const lp_attention_params *p)
{
    int t = p->tokens;
    int need_dscore = dq != NULL || dk != NULL;
    LP_TRY(apply_head_backward(need_dscore ? dprob : NULL, 0.0f, dv, g, prob,
                               v, p));
    if (!need_dscore)
        return LP_OK;
    /* softmax backward accumulates, so start dS from zero */
    memset(dscore, 0, (size_t)t * t * sizeof(float));
    LP_TRY(lp_softmax_backward(dscore, dprob, prob, t, t));
    return scores_head_backward(dq, dk, dscore, q, k, p);
}

/*
 * The (b, h) heads are processed one at a time, so the scratch is two
 * [t, t] maps (dP and dS) rather than the whole [n, heads, t, t] tensor,
 * and they stay in cache between the three steps.
 */
int lp_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v,
                          const float *probs, const lp_attention_params *p)
{
    const char *op = "lp_attention_backward";
    int need_dscore = dq != NULL || dk != NULL;
    size_t map;
    float *scratch = NULL;
    int rc = LP_OK;
    LP_TRY(check_params(op, p));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    if (dq == NULL && dk == NULL && dv == NULL)
        return LP_OK;
    LP_TRY(lp_require_ptr(op, "probs", probs));
    if (need_dscore)
        LP_TRY(lp_require_ptr(op, "v (needed for dq, dk)", v));
    if (dq != NULL)
        LP_TRY(lp_require_ptr(op, "k (needed for dq)", k));
    if (dk != NULL)
        LP_TRY(lp_require_ptr(op, "q (needed for dk)", q));

    map = (size_t)p->tokens * p->tokens;
    if (need_dscore) {
        scratch = lp_alloc(2 * map, sizeof(float));
        if (scratch == NULL)
            return LP_ENOMEM; /* lp_alloc has set the message */
    }
    for (int b = 0; b < p->n && rc == LP_OK; b++)
        for (int h = 0; h < p->heads && rc == LP_OK; h++) {
            size_t o = qkv_offset(p, b, h);
            rc = attention_head_backward(
                dq ? dq + o : NULL, dk ? dk + o : NULL, dv ? dv + o : NULL,
                dout + out_offset(p, b, h), q ? q + o : NULL,
                k ? k + o : NULL, v ? v + o : NULL,
                probs + map_offset(p, b, h), scratch,
                scratch ? scratch + map : NULL, p);
        }
    lp_free(scratch);
    return rc;
}
