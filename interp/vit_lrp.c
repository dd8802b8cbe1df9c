/*
 * vit_lrp.c — layer-wise relevance propagation through a ViT, the
 * relevance half of Chefer, Gur & Wolf, "Transformer Interpretability
 * Beyond Attention Visualization" (CVPR 2021), §3.1–3.2.
 *
 * Relevance R flows from the output (a one-hot at the class) down to the
 * attention probabilities of every block. It travels through loupe's
 * ordinary backward pass: each layer kind gets a replaced backward rule
 * (lp_model_set_backward_rule) that maps the relevance of its output, the
 * "gradient" dy, to the relevance of its inputs, accumulated into dx.
 * Where a tensor feeds two layers (the residual stream feeds the next
 * LayerNorm and the residual add) the backward pass sums the two
 * relevances, which is the paper's rule for such copies.
 *
 *   linear          LRP-αβ with α = 1, β = 0 (paper eq. 4; bias ignored):
 *                   with x⁺ = max(x, 0), x⁻ = min(x, 0), W⁺, W⁻ likewise,
 *                   Z = x⁺W⁺ᵀ + x⁻W⁻ᵀ (the positive contributions),
 *                   R_x = x⁺ ⊙ ((R/Z) W⁺) + x⁻ ⊙ ((R/Z) W⁻).
 *   attention       y = A·V per head, z-rule on both operands (eq. 5,
 *   (A·V)           "RelProp of a product"): with S = R/y,
 *                   R_A = A ⊙ (S Vᵀ), R_V = V ⊙ (Aᵀ S), each halved
 *                   (the two operands share the relevance, §3.2).
 *   attention_scores  scale·q·kᵀ, the same rule: with S = R/scores,
 *                   R_q = q ⊙ (S k)·scale, R_k = k ⊙ (Sᵀ q)·scale, halved.
 *   add             residual sum y = a + b: R_a = a ⊙ R/y, R_b = b ⊙ R/y,
 *                   then each rescaled so that the two keep the shares
 *                   |ΣR_a| : |ΣR_b| of ΣR (eq. 6–7: relevance is
 *                   conserved across the skip connection), per image.
 *   mean_tokens     z-rule: R_x[t] = x[t]/n ⊙ R/y.
 *   layernorm, gelu, relu, softmax: identity (R passes unchanged), as in
 *                   the paper's reference code.
 *   select_class_token: the ordinary backward (R goes to the class token).
 *
 * Divisions are stabilised as in LRP-ε: a/b is 0 where b = 0 and
 * a/(b + ε·sign(b)) elsewhere; the default ε = 1e-9 is the reference
 * code's safe_divide. Every rule receives ε through its user pointer.
 */
#include "loupe.h"
#include "internal.h"
#include "vit_lrp.h"

#include <math.h>
#include <string.h>

static inline float safe_div(float a, float b, double eps)
{
    if (b == 0.0f)
        return 0.0f;
    return (float)((double)a / ((double)b + (b > 0.0f ? eps : -eps)));
}

/* ε, from a rule's user pointer */
static inline double eps_of(const void *user) { return *(const double *)user; }

static int lrp_identity(const lp_backward_args *a, void *user)
{
    (void)user;
    if (a->dx != NULL)
        for (size_t i = 0; i < a->y_count; i++)
            a->dx[i] += a->dy[i];
    return LP_OK;
}

/* ---- linear: LRP-αβ, α = 1, β = 0 ------------------------------------------ */

static int lrp_linear(const lp_backward_args *a, void *user)
{
    lp_layer_params p;
    int in, out, rows, rc = LP_OK;
    float *wp = NULL, *wn = NULL, *xp = NULL, *xn = NULL, *s = NULL, *t = NULL;
    double eps = eps_of(user);
    if (a->dx == NULL)
        return LP_OK;
    LP_TRY(lp_model_layer_params(a->model, a->layer, &p));
    in = p.in_features;
    out = p.out_features;
    if (p.weight == NULL || in < 1 || out < 1 || a->x_count % (size_t)in != 0 ||
        a->x_count / (size_t)in > (size_t)1 << 30)
        return lp_set_error(LP_EINVAL, "LRP: layer %d is not a linear layer",
                            a->layer);
    rows = (int)(a->x_count / (size_t)in);
    wp = lp_alloc((size_t)out * in, sizeof(float));
    wn = lp_alloc((size_t)out * in, sizeof(float));
    xp = lp_alloc(a->x_count, sizeof(float));
    xn = lp_alloc(a->x_count, sizeof(float));
    s = lp_alloc((size_t)rows * out, sizeof(float));
    t = lp_alloc(a->x_count, sizeof(float));
    if (!wp || !wn || !xp || !xn || !s || !t) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < (size_t)out * in; i++) {
        wp[i] = p.weight[i] > 0.0f ? p.weight[i] : 0.0f;
        wn[i] = p.weight[i] < 0.0f ? p.weight[i] : 0.0f;
    }
    for (size_t i = 0; i < a->x_count; i++) {
        xp[i] = a->x[i] > 0.0f ? a->x[i] : 0.0f;
        xn[i] = a->x[i] < 0.0f ? a->x[i] : 0.0f;
    }
    /* Z = x⁺W⁺ᵀ + x⁻W⁻ᵀ, then S = R / Z */
    rc = lp_sgemm(0, 1, rows, out, in, 1.0f, xp, in, wp, in, 0.0f, s, out);
    if (rc == LP_OK)
        rc = lp_sgemm(0, 1, rows, out, in, 1.0f, xn, in, wn, in, 1.0f, s, out);
    if (rc != LP_OK)
        goto done;
    for (size_t i = 0; i < (size_t)rows * out; i++)
        s[i] = safe_div(a->dy[i], s[i], eps);
    /* R_x = x⁺ ⊙ (S W⁺) + x⁻ ⊙ (S W⁻) */
    rc = lp_sgemm(0, 0, rows, in, out, 1.0f, s, out, wp, in, 0.0f, t, in);
    if (rc != LP_OK)
        goto done;
    for (size_t i = 0; i < a->x_count; i++)
        a->dx[i] += xp[i] * t[i];
    rc = lp_sgemm(0, 0, rows, in, out, 1.0f, s, out, wn, in, 0.0f, t, in);
    if (rc != LP_OK)
        goto done;
    for (size_t i = 0; i < a->x_count; i++)
        a->dx[i] += xn[i] * t[i];
done:
    lp_free(wp);
    lp_free(wn);
    lp_free(xp);
    lp_free(xn);
    lp_free(s);
    lp_free(t);
    return rc;
}

/* ---- attention: the two products ------------------------------------------ */

/* Shapes of an attention layer: heads H, width d, tokens T, images n. */
typedef struct {
    int heads, d, tokens, n, inner, stride; /* stride: qkv row = 3 * inner */
    float scale;
} attn_shape;

static int attn_shape_of(const lp_backward_args *a, int probs_is_x, attn_shape *sh)
{
    lp_layer_params p;
    LP_TRY(lp_model_layer_params(a->model, a->layer, &p));
    if (p.heads < 1 || p.head_dim < 1)
        return lp_set_error(LP_EINVAL, "LRP: layer %d is not an attention layer", a->layer);
    sh->heads = p.heads;
    sh->d = p.head_dim;
    sh->inner = p.heads * p.head_dim;
    sh->stride = 3 * sh->inner;
    sh->scale = p.scale;
    sh->n = a->n;
    /* tokens from the qkv tensor: x (scores) or x2 (apply) holds n*T rows */
    sh->tokens = (int)((probs_is_x ? a->y_count / (size_t)sh->inner : a->x_count / (size_t)sh->stride) /
                       (size_t)a->n);
    return LP_OK;
}

/* y = A·V (layer "attention"): x = probs [n,H,T,T], x2 = qkv [n,T,3·inner],
 * y = [n,T,inner]. */
static int lrp_attention_apply(const lp_backward_args *a, void *user)
{
    attn_shape sh;
    int T, d, rc = LP_OK;
    float *s = NULL, *t = NULL;
    double eps = eps_of(user);
    LP_TRY(attn_shape_of(a, 1, &sh));
    T = sh.tokens;
    d = sh.d;
    s = lp_alloc((size_t)T * d, sizeof(float));
    t = lp_alloc((size_t)T * (T > d ? T : d), sizeof(float));
    if (!s || !t) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (int b = 0; b < sh.n && rc == LP_OK; b++)
        for (int h = 0; h < sh.heads && rc == LP_OK; h++) {
            size_t yo = (size_t)b * T * sh.inner + (size_t)h * d;
            const float *P = a->x + ((size_t)b * sh.heads + h) * T * T;
            const float *V = a->x2 + (size_t)b * T * sh.stride + 2 * sh.inner + (size_t)h * d;
            float *dP = a->dx ? a->dx + ((size_t)b * sh.heads + h) * T * T : NULL;
            float *dV = a->dx2 ? a->dx2 + (size_t)b * T * sh.stride + 2 * sh.inner +
                                     (size_t)h * d
                               : NULL;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < d; j++)
                    s[(size_t)i * d + j] = safe_div(a->dy[yo + (size_t)i * sh.inner + j],
                                                    a->y[yo + (size_t)i * sh.inner + j], eps);
            if (dP != NULL) { /* R_A = A ⊙ (S Vᵀ) / 2 */
                rc = lp_sgemm(0, 1, T, T, d, 1.0f, s, d, V, sh.stride, 0.0f, t, T);
                for (size_t i = 0; rc == LP_OK && i < (size_t)T * T; i++)
                    dP[i] += 0.5f * P[i] * t[i];
            }
            if (dV != NULL && rc == LP_OK) { /* R_V = V ⊙ (Aᵀ S) / 2 */
                rc = lp_sgemm(1, 0, T, d, T, 1.0f, P, T, s, d, 0.0f, t, d);
                for (int i = 0; rc == LP_OK && i < T; i++)
                    for (int j = 0; j < d; j++)
                        dV[(size_t)i * sh.stride + j] +=
                            0.5f * V[(size_t)i * sh.stride + j] * t[(size_t)i * d + j];
            }
        }
done:
    lp_free(s);
    lp_free(t);
    return rc;
}

/* scores = scale · q kᵀ (layer "<attn>.scores"): x = qkv [n,T,3·inner],
 * y = [n,H,T,T]. */
static int lrp_attention_scores(const lp_backward_args *a, void *user)
{
    attn_shape sh;
    int T, d, rc = LP_OK;
    float *s = NULL, *t = NULL;
    double eps = eps_of(user);
    if (a->dx == NULL)
        return LP_OK;
    LP_TRY(attn_shape_of(a, 0, &sh));
    T = sh.tokens;
    d = sh.d;
    s = lp_alloc((size_t)T * T, sizeof(float));
    t = lp_alloc((size_t)T * d, sizeof(float));
    if (!s || !t) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (int b = 0; b < sh.n && rc == LP_OK; b++)
        for (int h = 0; h < sh.heads && rc == LP_OK; h++) {
            size_t so = ((size_t)b * sh.heads + h) * T * T;
            size_t qo = (size_t)b * T * sh.stride + (size_t)h * d;
            const float *Q = a->x + qo, *K = a->x + qo + sh.inner;
            float *dQ = a->dx + qo, *dK = a->dx + qo + sh.inner;
            for (size_t i = 0; i < (size_t)T * T; i++)
                s[i] = safe_div(a->dy[so + i], a->y[so + i], eps);
            /* R_q = q ⊙ (S k)·scale / 2 */
            rc = lp_sgemm(0, 0, T, d, T, sh.scale, s, T, K, sh.stride, 0.0f, t, d);
            for (int i = 0; rc == LP_OK && i < T; i++)
                for (int j = 0; j < d; j++)
                    dQ[(size_t)i * sh.stride + j] +=
                        0.5f * Q[(size_t)i * sh.stride + j] * t[(size_t)i * d + j];
            /* R_k = k ⊙ (Sᵀ q)·scale / 2 */
            if (rc == LP_OK)
                rc = lp_sgemm(1, 0, T, d, T, sh.scale, s, T, Q, sh.stride, 0.0f, t, d);
            for (int i = 0; rc == LP_OK && i < T; i++)
                for (int j = 0; j < d; j++)
                    dK[(size_t)i * sh.stride + j] +=
                        0.5f * K[(size_t)i * sh.stride + j] * t[(size_t)i * d + j];
        }
done:
    lp_free(s);
    lp_free(t);
    return rc;
}

/* ---- the residual add ---------------------------------------------------------- */

static int lrp_add(const lp_backward_args *a, void *user)
{
    size_t per = a->y_count / (size_t)a->n;
    double eps = eps_of(user);
    for (int b = 0; b < a->n; b++) {
        const float *x1 = a->x + (size_t)b * per, *x2 = a->x2 + (size_t)b * per;
        const float *y = a->y + (size_t)b * per, *r = a->dy + (size_t)b * per;
        double s1 = 0.0, s2 = 0.0, sr = 0.0, f1, f2;
        for (size_t i = 0; i < per; i++) {
            float q = safe_div(r[i], y[i], eps);
            s1 += (double)(x1[i] * q);
            s2 += (double)(x2[i] * q);
            sr += r[i];
        }
        /* shares of ΣR: |Σa| / (|Σa| + |Σb|), then a *= share·ΣR / Σa */
        f1 = safe_div((float)(safe_div((float)fabs(s1), (float)(fabs(s1) + fabs(s2)), eps) * sr),
                      (float)s1, eps);
        f2 = safe_div((float)(safe_div((float)fabs(s2), (float)(fabs(s1) + fabs(s2)), eps) * sr),
                      (float)s2, eps);
        for (size_t i = 0; i < per; i++) {
            float q = safe_div(r[i], y[i], eps);
            if (a->dx != NULL)
                a->dx[(size_t)b * per + i] += (float)(x1[i] * q * f1);
            if (a->dx2 != NULL)
                a->dx2[(size_t)b * per + i] += (float)(x2[i] * q * f2);
        }
    }
    return LP_OK;
}

/* ---- token mean: z-rule ---------------------------------------------------------- */

static int lrp_mean_tokens(const lp_backward_args *a, void *user)
{
    lp_layer_params p;
    int D;
    size_t T;
    double eps = eps_of(user);
    if (a->dx == NULL)
        return LP_OK;
    LP_TRY(lp_model_layer_params(a->model, a->layer, &p));
    D = (int)(a->y_count / (size_t)a->n);
    T = a->x_count / (size_t)a->n / (size_t)D;
    for (int b = 0; b < a->n; b++) {
        const float *x = a->x + (size_t)b * T * D, *y = a->y + (size_t)b * D;
        const float *r = a->dy + (size_t)b * D;
        float *dx = a->dx + (size_t)b * T * D;
        double cnt = (double)(T - (size_t)p.first_token);
        for (size_t t = (size_t)p.first_token; t < T; t++)
            for (int j = 0; j < D; j++)
                dx[t * D + j] += (float)(x[t * D + j] / cnt) * safe_div(r[j], y[j], eps);
    }
    return LP_OK;
}

/* ---- switching the rules on and off --------------------------------------------- */

static const struct {
    const char *kind;
    lp_backward_rule rule;
} rules[] = {
    {"kind:linear", lrp_linear},
    {"kind:attention", lrp_attention_apply},
    {"kind:attention_scores", lrp_attention_scores},
    {"kind:add", lrp_add},
    {"kind:mean_tokens", lrp_mean_tokens},
    {"kind:layernorm", lrp_identity},
    {"kind:gelu", lrp_identity},
    {"kind:relu", lrp_identity},
    {"kind:softmax", lrp_identity},
};

int lp__vit_lrp_rules(lp_model *m, int on, const double *eps)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        int layers[1];
        if (lp_model_match_layers(m, rules[k].kind, layers, 1) == 0)
            continue; /* the model has no layer of this kind */
        int rc = lp_model_set_backward_rule(m, rules[k].kind, on ? rules[k].rule : NULL,
                                            (void *)eps);
        if (rc < 0) {
            if (on)
                (void)lp__vit_lrp_rules(m, 0, eps);
            return rc;
        }
    }
    return LP_OK;
}
