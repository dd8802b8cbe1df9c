/*
 * vit_attention.c — explanations read from a ViT's attention
 * probabilities ("<attn>.probs", [H, T, T] per image, row = query):
 *
 *   rollout         Abnar & Zuidema 2020: A_l = mean_h probs,
 *                   Â_l = (A_l + I) / rowsum, R = Â_L ... Â_1,
 *                   map = R[0, 1:] (the class token's row).
 *   attention-last  the last block's class-token row of mean_h probs.
 *   chefer          Chefer, Gur, Wolf, CVPR 2021 ("Transformer
 *                   interpretability beyond attention visualization", the
 *                   reference code's transformer_attribution): R = I; per
 *                   block Ā = mean_h ReLU(dS/dA ⊙ R_A), R += Ā R;
 *                   map = R[0, 1:], where R_A is the LRP relevance of the
 *                   attention probabilities (interp/vit_lrp.c) and dS/dA
 *                   their gradient: a forward, a backward for the gradient
 *                   and a second backward for the relevance.
 *   chefer-grad     Chefer, Gur, Wolf, ICCV 2021 ("Generic attention-model
 *                   explainability"), the gradient-only rule: the same
 *                   rollout with Ā = mean_h ReLU(dS/dA ⊙ A).
 *   attn-gradcam    Chefer's last-layer baseline: per head the class row
 *                   A_h[0, 1:] times the mean of its gradient over that
 *                   row, mean over heads, ReLU.
 *
 * The map over the T-1 patch tokens is a g x g grid (token 1 + r*g + c),
 * upsampled to the input bilinearly (align_corners = 0).
 */
#include "loupe.h"
#include "internal.h"
#include "vit_lrp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 256

typedef struct {
    int count;
    int layers[MAX_BLOCKS]; /* probs nodes, in execution order */
    int heads, tokens, grid;
} vit_attn;

static int find_attention(const lp_model *m, vit_attn *va, const char *method)
{
    int dims[4] = {0, 0, 0, 0};
    const lp_model_info *in = lp_model_get_info(m);
    memset(va, 0, sizeof *va);
    if (strcmp(in->arch, "vit") != 0)
        return lp_set_error(LP_EINVAL, "%s needs a ViT (this model is a %s)", method,
                            in->arch[0] ? in->arch : "CNN");
    for (int i = 1; i < lp_model_layer_count(m) && va->count < MAX_BLOCKS; i++)
        if (!strcmp(lp_model_layer_kind(m, i), "softmax") &&
            lp_model_layer_shape(m, i, dims) == 3)
            va->layers[va->count++] = i;
    if (va->count == 0)
        return lp_set_error(LP_EINVAL, "%s needs a ViT with attention layers", method);
    lp_model_layer_shape(m, va->layers[0], dims);
    va->heads = dims[0];
    va->tokens = dims[1];
    va->grid = (int)floor(sqrt((double)(dims[1] - 1)) + 0.5);
    if (va->grid < 1 || va->grid * va->grid != dims[1] - 1)
        return lp_set_error(LP_EINVAL,
                            "%s: %d tokens are not a class token and a square grid",
                            method, dims[1]);
    return LP_OK;
}

static int check_args(const lp_model *m, const float *x, int n, const int *classes,
                      const lp_explain_options *o, const float *out, const char *method)
{
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "%s: bad argument", method);
    return LP_OK;
}

/* The per-image computation: probs [L][H,T,T] of one image (and their
 * gradients, or NULL), writes the patch map [g*g]. */
typedef void (*attn_map_fn)(const vit_attn *va, const float *const *probs,
                            const float *const *grads, const lp_explain_options *o,
                            double *work, float *map);

static int keep_probs(lp_model *m, const vit_attn *va, int *handles)
{
    for (int l = 0; l < va->count; l++) {
        handles[l] = lp_model_add_hook(m, lp_model_layer_name(m, va->layers[l]),
                                       LP_HOOK_KEEP, NULL, NULL);
        if (handles[l] < 0) {
            int rc = handles[l];
            for (int j = 0; j < l; j++)
                lp_model_remove_hook(m, handles[j]);
            return rc;
        }
    }
    return LP_OK;
}

/* What a method reads besides the probabilities. */
enum { NEED_PROBS = 0, NEED_GRAD = 1, NEED_RELEVANCE = 2 };

/* The LRP relevance of every block's probabilities (vit_lrp.c): after the
 * gradient pass, copy the gradients aside (the relevance pass overwrites
 * them), seed a one-hot at each image's class and run the backward with
 * the relevance rules. grads[l][b] then hold the gradients, and the kept
 * probabilities' "gradients" the relevances. */
static int relevance_pass(lp_model *m, const vit_attn *va, int c, int k, const int *classes,
                          double eps, float *onehot, float *saved)
{
    size_t hhtt = (size_t)va->heads * va->tokens * va->tokens;
    int rc;
    for (int l = 0; l < va->count; l++) {
        const float *g = lp_model_gradient(m, va->layers[l]);
        if (g == NULL)
            return lp_set_error(LP_EINVAL, "chefer: no gradient reached block %d", l);
        memcpy(saved + (size_t)l * c * hhtt, g, (size_t)c * hhtt * sizeof(float));
    }
    memset(onehot, 0, (size_t)c * k * sizeof(float));
    for (int b = 0; b < c; b++)
        onehot[(size_t)b * k + classes[b]] = 1.0f;
    rc = lp__vit_lrp_rules(m, 1, &eps);
    if (rc == LP_OK)
        rc = lp_model_backward_from(m, lp_model_layer_count(m) - 1, onehot, va->layers[0], NULL);
    {
        int restore = lp__vit_lrp_rules(m, 0, &eps);
        if (rc == LP_OK)
            rc = restore;
    }
    return rc;
}

static int run_attention(const char *method, int need, attn_map_fn fn, lp_model *m,
                         const float *x, int n, const int *classes,
                         const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    vit_attn va;
    const lp_model_info *in;
    int batch, rc, k, g, T;
    size_t per, hhtt;
    float *logits = NULL, *dlogits = NULL, *maps = NULL, *saved = NULL;
    double *work = NULL;
    int need_grad = need != NEED_PROBS;
    const float **probs = NULL, **grads = NULL;
    int handles[MAX_BLOCKS];
    LP_TRY(check_args(m, x, n, classes, o, out, method));
    if (need == NEED_RELEVANCE && !(o->lrp_eps >= 0.0f && isfinite(o->lrp_eps)))
        return lp_set_error(LP_EINVAL, "%s: the LRP stabiliser must be >= 0 (got %g)", method,
                            (double)o->lrp_eps);
    LP_TRY(find_attention(m, &va, method));
    in = lp_model_get_info(m);
    k = in->out_dim;
    per = (size_t)in->in_c * in->in_h * in->in_w;
    g = va.grid;
    T = va.tokens;
    hhtt = (size_t)va.heads * T * T;
    /* the relevance pass holds every block's gradients aside too:
     * L*H*T^2 floats an image (ViT-B/16: 22 MB), so 8 images a pass */
    batch = o->batch > 0 ? o->batch : 32;
    if (need == NEED_RELEVANCE && batch > 8)
        batch = 8;
    if (batch > n)
        batch = n;
    logits = lp_alloc((size_t)batch * k, sizeof(float));
    dlogits = lp_alloc((size_t)batch * k, sizeof(float));
    maps = lp_alloc((size_t)n * g * g, sizeof(float));
    work = lp_alloc((size_t)3 * T * T, sizeof(double));
    probs = lp_alloc((size_t)va.count, sizeof *probs);
    grads = lp_alloc((size_t)va.count, sizeof *grads);
    if (need == NEED_RELEVANCE)
        saved = lp_alloc((size_t)va.count * batch * hhtt, sizeof(float));
    if (!logits || !dlogits || !maps || !work || !probs || !grads ||
        (need == NEED_RELEVANCE && !saved)) {
        rc = LP_ENOMEM;
        goto done;
    }
    rc = keep_probs(m, &va, handles);
    if (rc != LP_OK)
        goto done;
    for (int s = 0; s < n && rc == LP_OK; s += batch) {
        int c = n - s < batch ? n - s : batch;
        lp_target t = {0, o->score, -1};
        rc = lp_model_forward(m, x + (size_t)s * per, c, logits,
                              need_grad ? LP_RUN_GRAD : 0);
        if (rep)
            rep->forwards += c;
        if (rc == LP_OK && need_grad) {
            rc = lp_target_score(&t, logits, c, k, classes + s, NULL, dlogits);
            if (rc == LP_OK)
                rc = lp_model_backward_from(m, lp_model_layer_count(m) - 1, dlogits,
                                            va.layers[0], NULL);
            if (rep)
                rep->backwards += c;
        }
        if (rc == LP_OK && need == NEED_RELEVANCE) {
            rc = relevance_pass(m, &va, c, k, classes + s, o->lrp_eps, dlogits, saved);
            if (rep)
                rep->backwards += c;
        }
        for (int b = 0; b < c && rc == LP_OK; b++) {
            for (int l = 0; l < va.count; l++) {
                const float *a = lp_model_activation(m, va.layers[l]);
                const float *gr = need_grad ? lp_model_gradient(m, va.layers[l]) : NULL;
                if (need == NEED_RELEVANCE) { /* Ā weighs the gradient by R_A */
                    a = gr;
                    gr = saved + (size_t)l * c * hhtt; /* + b * hhtt below */
                }
                if (a == NULL) {
                    rc = lp_set_error(LP_EINVAL, "%s: attention probabilities were not kept",
                                      method);
                    break;
                }
                probs[l] = a + (size_t)b * hhtt;
                grads[l] = gr ? gr + (size_t)b * hhtt : NULL;
            }
            if (rc == LP_OK)
                fn(&va, probs, grads, o, work, maps + (size_t)(s + b) * g * g);
        }
        lp_model_release(m);
        if (o->progress)
            o->progress(o->progress_user, s + c, n);
    }
    for (int l = 0; l < va.count; l++)
        lp_model_remove_hook(m, handles[l]);
    if (rc == LP_OK)
        rc = lp_resize_bilinear_forward(out, maps, n, g, g, in->in_h, in->in_w, 0);
    if (rc == LP_OK && rep)
        snprintf(rep->layer, sizeof rep->layer, "%s",
                 lp_model_layer_name(m, va.layers[va.count - 1]));
done:
    lp_free(logits);
    lp_free(dlogits);
    lp_free(maps);
    lp_free(work);
    lp_free(probs);
    lp_free(grads);
    lp_free(saved);
    return rc;
}

/* mean over heads of probs [H, T, T] -> A [T, T] */
static void head_mean(const vit_attn *va, const float *p, double *A)
{
    size_t tt = (size_t)va->tokens * va->tokens;
    for (size_t i = 0; i < tt; i++) {
        double s = 0.0;
        for (int h = 0; h < va->heads; h++)
            s += p[(size_t)h * tt + i];
        A[i] = s / va->heads;
    }
}

static void rollout_map(const vit_attn *va, const float *const *probs,
                        const float *const *grads, const lp_explain_options *o,
                        double *work, float *map)
{
    int T = va->tokens;
    double *A = work, *r = work + (size_t)T * T, *t = r + T;
    (void)grads;
    (void)o;
    /* row 0 of Â_L ... Â_1: r = e_0, then r <- r Â_l from the top block down */
    for (int j = 0; j < T; j++)
        r[j] = j == 0 ? 1.0 : 0.0;
    for (int l = va->count - 1; l >= 0; l--) {
        head_mean(va, probs[l], A);
        for (int i = 0; i < T; i++) {
            double s = 0.0;
            A[(size_t)i * T + i] += 1.0;
            for (int j = 0; j < T; j++)
                s += A[(size_t)i * T + j];
            for (int j = 0; j < T; j++)
                A[(size_t)i * T + j] /= s;
        }
        for (int j = 0; j < T; j++)
            t[j] = 0.0;
        for (int i = 0; i < T; i++) {
            const double *row = A + (size_t)i * T;
            if (r[i] == 0.0)
                continue;
            for (int j = 0; j < T; j++)
                t[j] += r[i] * row[j];
        }
        memcpy(r, t, (size_t)T * sizeof(double));
    }
    for (int j = 1; j < T; j++)
        map[j - 1] = (float)r[j];
}

static void last_map(const vit_attn *va, const float *const *probs,
                     const float *const *grads, const lp_explain_options *o,
                     double *work, float *map)
{
    int T = va->tokens;
    size_t tt = (size_t)T * T;
    const float *p = probs[va->count - 1];
    (void)grads;
    (void)o;
    (void)work;
    for (int j = 1; j < T; j++) {
        double s = 0.0;
        for (int h = 0; h < va->heads; h++)
            s += p[(size_t)h * tt + j];
        map[j - 1] = (float)(s / va->heads);
    }
}

static void chefer_map(const vit_attn *va, const float *const *probs,
                       const float *const *grads, const lp_explain_options *o,
                       double *work, float *map)
{
    int T = va->tokens;
    size_t tt = (size_t)T * T;
    double *R = work, *Ab = work + tt, *t = work + 2 * tt;
    (void)o;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            R[(size_t)i * T + j] = i == j ? 1.0 : 0.0;
    for (int l = 0; l < va->count; l++) {
        const float *p = probs[l], *g = grads[l];
        for (size_t i = 0; i < tt; i++) {
            double s = 0.0;
            if (g != NULL)
                for (int h = 0; h < va->heads; h++) {
                    double v = (double)g[(size_t)h * tt + i] * p[(size_t)h * tt + i];
                    if (v > 0.0)
                        s += v;
                }
            Ab[i] = s / va->heads;
        }
        /* R <- R + Ā R */
        for (size_t i = 0; i < tt; i++)
            t[i] = 0.0;
        for (int i = 0; i < T; i++)
            for (int k = 0; k < T; k++) {
                double a = Ab[(size_t)i * T + k];
                const double *rk = R + (size_t)k * T;
                double *ti = t + (size_t)i * T;
                if (a == 0.0)
                    continue;
                for (int j = 0; j < T; j++)
                    ti[j] += a * rk[j];
            }
        for (size_t i = 0; i < tt; i++)
            R[i] += t[i];
    }
    for (int j = 1; j < T; j++)
        map[j - 1] = (float)R[j];
}

static void attn_gradcam_map(const vit_attn *va, const float *const *probs,
                             const float *const *grads, const lp_explain_options *o,
                             double *work, float *map)
{
    int T = va->tokens;
    size_t tt = (size_t)T * T;
    const float *p = probs[va->count - 1], *g = grads[va->count - 1];
    (void)work;
    for (int j = 1; j < T; j++)
        map[j - 1] = 0.0f;
    for (int h = 0; h < va->heads; h++) {
        double w = 0.0;
        const float *ph = p + (size_t)h * tt, *gh = g ? g + (size_t)h * tt : NULL;
        if (gh != NULL)
            for (int j = 1; j < T; j++)
                w += gh[j];
        w /= (double)(T - 1);
        for (int j = 1; j < T; j++)
            map[j - 1] += (float)(ph[j] * w / va->heads);
    }
    if (!o->no_relu)
        for (int j = 1; j < T; j++)
            if (map[j - 1] < 0.0f)
                map[j - 1] = 0.0f;
}

int lp_rollout(lp_model *m, const float *x, int n, const int *classes,
               const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return run_attention("rollout", NEED_PROBS, rollout_map, m, x, n, classes, o, out, rep);
}

int lp_attention_last(lp_model *m, const float *x, int n, const int *classes,
                      const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return run_attention("attention-last", NEED_PROBS, last_map, m, x, n, classes, o, out, rep);
}

int lp_chefer(lp_model *m, const float *x, int n, const int *classes,
              const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return run_attention("chefer", NEED_RELEVANCE, chefer_map, m, x, n, classes, o, out, rep);
}

int lp_chefer_grad(lp_model *m, const float *x, int n, const int *classes,
                   const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return run_attention("chefer-grad", NEED_GRAD, chefer_map, m, x, n, classes, o, out, rep);
}

int lp_attn_gradcam(lp_model *m, const float *x, int n, const int *classes,
                    const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return run_attention("attn-gradcam", NEED_GRAD, attn_gradcam_map, m, x, n, classes, o, out, rep);
}
