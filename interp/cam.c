/*
 * cam.c — class activation maps on any layer with a spatial grid:
 * Grad-CAM, Grad-CAM++, Layer-CAM, HiResCAM, Score-CAM, Eigen-CAM and
 * Guided Grad-CAM (docs/methods/cam.md has the formulas and the choices).
 *
 * A CAM layer is a feature map [C,h,w] (ResNets) or a token sequence
 * [T,D] whose tokens after the class token form a g x g grid (ViTs):
 * token 1 + r*g + c is grid cell (r, c), and the map is viewed as
 * [D,g,g]. The default layer is the last feature map with h, w > 1
 * ("layer4", CIFAR "layer3"), or for a ViT the first LayerNorm of the
 * last block (the patch tokens of the last block's output get no
 * gradient when the head reads only the class token).
 *
 * Every map is computed at the layer's resolution, then upsampled to
 * the input with bilinear interpolation (align_corners = 0) and left
 * unnormalised: the values are the CAM's own (display code normalises).
 */
#include "loupe.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int layer;      /* node index */
    int c, h, w;    /* the map viewed as [c, h, w] */
    int tokens;     /* 0: a feature map; else T, the layer is [T, c] */
    int prefix;     /* tokens before the grid (class token) */
    size_t per;     /* layer elements per image */
} cam_layer;

static int isqrt_exact(int v)
{
    int r = (int)floor(sqrt((double)v) + 0.5);
    return (r > 0 && r * r == v) ? r : -1;
}

/* The map geometry of layer i, or LP_EINVAL when it has no grid. */
static int layer_grid(const lp_model *m, int i, cam_layer *L)
{
    int dims[4] = {0, 0, 0, 0};
    int nd = lp_model_layer_shape(m, i, dims);
    memset(L, 0, sizeof *L);
    L->layer = i;
    if (nd == 3) {
        L->c = dims[0];
        L->h = dims[1];
        L->w = dims[2];
        L->per = (size_t)dims[0] * dims[1] * dims[2];
        return LP_OK;
    }
    if (nd == 2) {
        int g = isqrt_exact(dims[0] - 1), prefix = 1;
        if (g < 0) {
            g = isqrt_exact(dims[0]);
            prefix = 0;
        }
        if (g > 0) {
            L->c = dims[1];
            L->h = L->w = g;
            L->tokens = dims[0];
            L->prefix = prefix;
            L->per = (size_t)dims[0] * dims[1];
            return LP_OK;
        }
    }
    return LP_EINVAL;
}

static const char *shortest_name(const lp_model *m, int i)
{
    const char *best = lp_model_layer_name(m, i), *a;
    for (int k = 0; (a = lp_model_layer_alias(m, i, k)) != NULL; k++)
        if (strlen(a) < strlen(best))
            best = a;
    return best;
}

/* The CAM layer: o->layer, or the default (see the top of the file). */
static int cam_resolve(const lp_model *m, const lp_explain_options *o,
                       cam_layer *L, lp_explain_report *rep, const char *method)
{
    int count = lp_model_layer_count(m), i = -1;
    const char *shown;
    if (o != NULL && o->layer != NULL && o->layer[0] != '\0') {
        int dims[4] = {0, 0, 0, 0}, nd;
        i = lp_model_find_layer(m, o->layer);
        if (i < 0)
            return i;
        if (layer_grid(m, i, L) != LP_OK) {
            char shape[64] = "[";
            nd = lp_model_layer_shape(m, i, dims);
            for (int d = 0; d < nd && d < 4; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%d",
                         d ? "," : "", dims[d]);
            return lp_set_error(LP_EINVAL,
                                "%s: layer '%s' %s] has no spatial grid; give a feature "
                                "map [C,H,W] or a token map [1+g*g,D]",
                                method, o->layer, shape);
        }
        shown = o->layer;
    } else {
        const lp_model_info *in = lp_model_get_info(m);
        if (!strcmp(in->arch, "vit")) {
            int probs = -1;
            for (int j = count - 1; j > 0 && probs < 0; j--)
                if (!strcmp(lp_model_layer_kind(m, j), "softmax"))
                    probs = j;
            for (int j = probs - 1; j > 0 && i < 0; j--)
                if (!strcmp(lp_model_layer_kind(m, j), "layernorm"))
                    i = j;
        } else {
            for (int j = count - 1; j > 0 && i < 0; j--) {
                int dims[4], nd = lp_model_layer_shape(m, j, dims);
                if (nd == 3 && dims[1] > 1 && dims[2] > 1)
                    i = j;
            }
        }
        if (i < 0 || layer_grid(m, i, L) != LP_OK)
            return lp_set_error(LP_EINVAL, "%s: the model has no layer with a spatial grid",
                                method);
        shown = shortest_name(m, i);
    }
    if (rep != NULL)
        snprintf(rep->layer, sizeof rep->layer, "%s", shown);
    return LP_OK;
}

/* One image's layer tensor as [c, h, w]. */
static void to_chw(const cam_layer *L, const float *src, float *dst)
{
    size_t hw = (size_t)L->h * L->w;
    if (L->tokens == 0) {
        memcpy(dst, src, L->per * sizeof(float));
        return;
    }
    for (size_t p = 0; p < hw; p++) {
        const float *tok = src + (L->prefix + p) * (size_t)L->c;
        for (int k = 0; k < L->c; k++)
            dst[(size_t)k * hw + p] = tok[k];
    }
}

static int model_in_size(const lp_model *m, int *h, int *w, size_t *per)
{
    const lp_model_info *in = lp_model_get_info(m);
    *h = in->in_h;
    *w = in->in_w;
    *per = (size_t)in->in_c * in->in_h * in->in_w;
    return in->out_dim;
}

static int check_args(const lp_model *m, const float *x, int n, const int *classes,
                      const lp_explain_options *o, const float *out, const char *method)
{
    if (m == NULL || x == NULL || classes == NULL || o == NULL || out == NULL || n < 1)
        return lp_set_error(LP_EINVAL, "%s: bad argument", method);
    return LP_OK;
}

/* Activations A and gradients G of the target scores at the CAM layer
 * for images x[0..c), both [c, C, h, w]. The backward stops at the
 * layer: nothing below it runs. */
static int grad_pass(lp_model *m, const cam_layer *L, const float *x, int c,
                     const int *classes, const lp_explain_options *o, float *A,
                     float *G, lp_explain_report *rep)
{
    int k = lp_model_get_info(m)->out_dim, last = lp_model_layer_count(m) - 1;
    lp_target t = {0, o->score, -1};
    float *logits = lp_alloc((size_t)c * k, sizeof(float));
    float *dlogits = lp_alloc((size_t)c * k, sizeof(float));
    const float *act, *grad;
    int rc = (logits && dlogits) ? LP_OK : LP_ENOMEM;
    if (rc == LP_OK)
        rc = lp_model_forward(m, x, c, logits, LP_RUN_GRAD);
    if (rc == LP_OK)
        rc = lp_target_score(&t, logits, c, k, classes, NULL, dlogits);
    if (rc == LP_OK)
        rc = lp_model_backward_from(m, last, dlogits, L->layer, NULL);
    if (rc == LP_OK) {
        act = lp_model_activation(m, L->layer);
        grad = lp_model_gradient(m, L->layer);
        for (int b = 0; b < c; b++) {
            size_t off = (size_t)b * L->per;
            to_chw(L, act + off, A + off);
            if (grad != NULL)
                to_chw(L, grad + off, G + off);
            else
                memset(G + off, 0, L->per * sizeof(float));
        }
        if (rep) {
            rep->forwards += c;
            rep->backwards += c;
        }
    }
    lp_model_release(m);
    lp_free(logits);
    lp_free(dlogits);
    return rc;
}

typedef enum { CAM_GRAD, CAM_GRADPP, CAM_LAYER, CAM_HIRES } cam_kind;

/* The map [h, w] of one image from A, G [C, h, w]. */
static int combine(cam_kind kind, const cam_layer *L, const float *A, const float *G,
                   int relu, float *map)
{
    size_t hw = (size_t)L->h * L->w;
    double *acc = lp_calloc(hw, sizeof(double));
    if (acc == NULL)
        return LP_ENOMEM;
    for (int k = 0; k < L->c; k++) {
        const float *a = A + (size_t)k * hw, *g = G + (size_t)k * hw;
        double wk = 0.0;
        if (kind == CAM_GRAD) {
            for (size_t p = 0; p < hw; p++)
                wk += g[p];
            wk /= (double)hw;
        } else if (kind == CAM_GRADPP) {
            double suma = 0.0;
            for (size_t p = 0; p < hw; p++)
                suma += a[p];
            for (size_t p = 0; p < hw; p++) {
                double gp = g[p], g2 = gp * gp, g3 = g2 * gp, alpha;
                if (gp == 0.0)
                    continue;
                alpha = g2 / (2.0 * g2 + suma * g3 + 1e-6);
                if (gp > 0.0)
                    wk += gp * alpha;
            }
        }
        if (kind == CAM_GRAD || kind == CAM_GRADPP) {
            for (size_t p = 0; p < hw; p++)
                acc[p] += wk * a[p];
        } else if (kind == CAM_LAYER) {
            for (size_t p = 0; p < hw; p++)
                if (g[p] > 0.0f)
                    acc[p] += (double)g[p] * a[p];
        } else {
            for (size_t p = 0; p < hw; p++)
                acc[p] += (double)g[p] * a[p];
        }
    }
    for (size_t p = 0; p < hw; p++)
        map[p] = (float)((relu && acc[p] < 0.0) ? 0.0 : acc[p]);
    lp_free(acc);
    return LP_OK;
}

/* Maps [n, h, w] at layer resolution -> out [n, H, W]. */
static int upsample(const cam_layer *L, const float *maps, int n, int H, int W, float *out)
{
    return lp_resize_bilinear_forward(out, maps, n, L->h, L->w, H, W, 0);
}

static int gradient_cam(cam_kind kind, const char *method, lp_model *m, const float *x,
                        int n, const int *classes, const lp_explain_options *o,
                        float *out, lp_explain_report *rep, float *layer_maps)
{
    cam_layer L;
    int H, W, batch, rc;
    size_t per;
    float *A = NULL, *G = NULL, *maps = NULL;
    LP_TRY(check_args(m, x, n, classes, o, out, method));
    LP_TRY(cam_resolve(m, o, &L, rep, method));
    model_in_size(m, &H, &W, &per);
    batch = o->batch > 0 ? o->batch : 32;
    if (batch > n)
        batch = n;
    A = lp_alloc((size_t)batch * L.per, sizeof(float));
    G = lp_alloc((size_t)batch * L.per, sizeof(float));
    maps = layer_maps ? layer_maps : lp_alloc((size_t)n * L.h * L.w, sizeof(float));
    rc = (A && G && maps) ? LP_OK : LP_ENOMEM;
    for (int s = 0; s < n && rc == LP_OK; s += batch) {
        int c = n - s < batch ? n - s : batch;
        rc = grad_pass(m, &L, x + (size_t)s * per, c, classes + s, o, A, G, rep);
        for (int b = 0; b < c && rc == LP_OK; b++)
            rc = combine(kind, &L, A + (size_t)b * L.per, G + (size_t)b * L.per,
                         !o->no_relu, maps + (size_t)(s + b) * L.h * L.w);
        if (o->progress)
            o->progress(o->progress_user, s + c, n);
    }
    if (rc == LP_OK)
        rc = upsample(&L, maps, n, H, W, out);
    lp_free(A);
    lp_free(G);
    if (maps != layer_maps)
        lp_free(maps);
    return rc;
}

int lp_gradcam(lp_model *m, const float *x, int n, const int *classes,
               const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return gradient_cam(CAM_GRAD, "gradcam", m, x, n, classes, o, out, rep, NULL);
}

int lp_gradcampp(lp_model *m, const float *x, int n, const int *classes,
                 const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return gradient_cam(CAM_GRADPP, "gradcam++", m, x, n, classes, o, out, rep, NULL);
}

int lp_layercam(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return gradient_cam(CAM_LAYER, "layercam", m, x, n, classes, o, out, rep, NULL);
}

int lp_hirescam(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    return gradient_cam(CAM_HIRES, "hirescam", m, x, n, classes, o, out, rep, NULL);
}

/* ---- Score-CAM ------------------------------------------------------------ */

/* Activations at the layer ([n, C, h, w]) from one forward. */
static int forward_activations(lp_model *m, const cam_layer *L, const float *x, int n,
                               float *A, lp_explain_report *rep)
{
    int k = lp_model_get_info(m)->out_dim;
    float *logits = lp_alloc((size_t)n * k, sizeof(float));
    int rc = logits ? LP_OK : LP_ENOMEM;
    const float *act;
    if (rc == LP_OK)
        rc = lp_model_forward(m, x, n, logits, LP_RUN_KEEP_ALL);
    if (rc == LP_OK) {
        act = lp_model_activation(m, L->layer);
        for (int b = 0; b < n; b++)
            to_chw(L, act + (size_t)b * L->per, A + (size_t)b * L->per);
        if (rep)
            rep->forwards += n;
    }
    lp_model_release(m);
    lp_free(logits);
    return rc;
}

int lp_scorecam(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    cam_layer L;
    int H, W, batch, rc, cin = lp_model_get_info(m) ? lp_model_get_info(m)->in_c : 0;
    size_t per, hw, HW;
    float *A = NULL, *up = NULL, *xb = NULL, *scores = NULL, *maps = NULL;
    int *cls = NULL;
    LP_TRY(check_args(m, x, n, classes, o, out, "scorecam"));
    LP_TRY(cam_resolve(m, o, &L, rep, "scorecam"));
    model_in_size(m, &H, &W, &per);
    hw = (size_t)L.h * L.w;
    HW = (size_t)H * W;
    batch = o->batch > 0 ? o->batch : 32;
    if (batch > L.c)
        batch = L.c;
    A = lp_alloc(L.per, sizeof(float));
    up = lp_alloc((size_t)L.c * HW, sizeof(float));
    xb = lp_alloc((size_t)batch * per, sizeof(float));
    scores = lp_alloc((size_t)L.c, sizeof(float));
    cls = lp_alloc((size_t)L.c, sizeof(int));
    maps = lp_alloc((size_t)n * hw, sizeof(float));
    rc = (A && up && xb && scores && cls && maps) ? LP_OK : LP_ENOMEM;
    for (int b = 0; b < n && rc == LP_OK; b++) {
        const float *xi = x + (size_t)b * per;
        double mx = -HUGE_VAL, sum = 0.0;
        rc = forward_activations(m, &L, xi, 1, A, rep);
        if (rc == LP_OK)
            rc = lp_resize_bilinear_forward(up, A, L.c, L.h, L.w, H, W, 0);
        if (rc != LP_OK)
            break;
        /* per-channel min-max normalisation of the upsampled masks */
        for (int k = 0; k < L.c; k++) {
            float *u = up + (size_t)k * HW, lo = u[0], hi = u[0];
            for (size_t p = 1; p < HW; p++) {
                if (u[p] < lo) lo = u[p];
                if (u[p] > hi) hi = u[p];
            }
            for (size_t p = 0; p < HW; p++)
                u[p] = (float)((u[p] - lo) / ((double)hi - lo + 1e-8));
            cls[k] = classes[b];
        }
        /* score of x * mask_k for every channel, in batches */
        for (int k0 = 0; k0 < L.c && rc == LP_OK; k0 += batch) {
            int c = L.c - k0 < batch ? L.c - k0 : batch;
            for (int j = 0; j < c; j++) {
                const float *u = up + (size_t)(k0 + j) * HW;
                float *dst = xb + (size_t)j * per;
                for (int ch = 0; ch < cin; ch++)
                    for (size_t p = 0; p < HW; p++)
                        dst[(size_t)ch * HW + p] = xi[(size_t)ch * HW + p] * u[p];
            }
            rc = lp_target_forward(m, xb, c, c, cls + k0, o->score, scores + k0);
            if (rep)
                rep->forwards += c;
            if (o->progress)
                o->progress(o->progress_user, (long)b * L.c + k0 + c, (long)n * L.c);
        }
        if (rc != LP_OK)
            break;
        /* weights: softmax over channels of the scores */
        for (int k = 0; k < L.c; k++)
            if (scores[k] > mx) mx = scores[k];
        for (int k = 0; k < L.c; k++)
            sum += exp((double)scores[k] - mx);
        {
            double *acc = lp_calloc(hw, sizeof(double));
            float *map = maps + (size_t)b * hw;
            if (acc == NULL) {
                rc = LP_ENOMEM;
                break;
            }
            for (int k = 0; k < L.c; k++) {
                double wk = exp((double)scores[k] - mx) / sum;
                const float *a = A + (size_t)k * hw;
                for (size_t p = 0; p < hw; p++)
                    acc[p] += wk * a[p];
            }
            for (size_t p = 0; p < hw; p++)
                map[p] = (float)((!o->no_relu && acc[p] < 0.0) ? 0.0 : acc[p]);
            lp_free(acc);
        }
    }
    if (rc == LP_OK)
        rc = upsample(&L, maps, n, H, W, out);
    lp_free(A);
    lp_free(up);
    lp_free(xb);
    lp_free(scores);
    lp_free(cls);
    lp_free(maps);
    return rc;
}

/* ---- Eigen-CAM ------------------------------------------------------------ */

/* Projection of the centred activations X [hw x C] (from A [C, hw]) on
 * their first right singular vector v: proj = X v, written to map[hw].
 * The eigenvector comes from power iteration on the smaller Gram matrix
 * (X X^T when hw <= C: its top eigenvector u gives X v = sigma u). The
 * sign is chosen so that the uncentred activations project with a
 * positive sum (mean activation . v > 0). */
static int eigen_projection(const float *A, int C, size_t hw, float *map)
{
    int side = hw <= (size_t)C ? (int)hw : C;
    double *X = lp_alloc(hw * (size_t)C, sizeof(double)); /* [hw][C] centred */
    double *mean = lp_calloc((size_t)C, sizeof(double));
    double *Gm = lp_alloc((size_t)side * side, sizeof(double));
    double *u = lp_alloc((size_t)side, sizeof(double)), *t = lp_alloc((size_t)side, sizeof(double));
    double *proj = lp_calloc(hw, sizeof(double));
    double lambda = 0.0, dot = 0.0;
    int rc = (X && mean && Gm && u && t && proj) ? LP_OK : LP_ENOMEM;
    if (rc != LP_OK)
        goto done;
    for (int k = 0; k < C; k++) {
        double s = 0.0;
        for (size_t p = 0; p < hw; p++)
            s += A[(size_t)k * hw + p];
        mean[k] = s / (double)hw;
        for (size_t p = 0; p < hw; p++)
            X[p * C + k] = A[(size_t)k * hw + p] - mean[k];
    }
    /* Gram matrix of the smaller side */
    for (int i = 0; i < side; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0.0;
            if (side == (int)hw) {
                const double *a = X + (size_t)i * C, *b = X + (size_t)j * C;
                for (int k = 0; k < C; k++)
                    s += a[k] * b[k];
            } else {
                for (size_t p = 0; p < hw; p++)
                    s += X[p * C + i] * X[p * C + j];
            }
            Gm[(size_t)i * side + j] = Gm[(size_t)j * side + i] = s;
        }
    /* start: the column with the largest diagonal */
    {
        int best = 0;
        for (int i = 1; i < side; i++)
            if (Gm[(size_t)i * side + i] > Gm[(size_t)best * side + best])
                best = i;
        if (!(Gm[(size_t)best * side + best] > 0.0))
            goto write; /* constant activations: zero map */
        for (int i = 0; i < side; i++)
            u[i] = Gm[(size_t)i * side + best] + 1e-3 * Gm[(size_t)best * side + best] * ((i % 7) - 3);
    }
    for (int it = 0; it < 20000; it++) {
        double norm = 0.0, diff = 0.0;
        for (int i = 0; i < side; i++)
            norm += u[i] * u[i];
        norm = sqrt(norm);
        if (!(norm > 0.0))
            break;
        for (int i = 0; i < side; i++)
            u[i] /= norm;
        for (int i = 0; i < side; i++) {
            double s = 0.0;
            const double *row = Gm + (size_t)i * side;
            for (int j = 0; j < side; j++)
                s += row[j] * u[j];
            t[i] = s;
        }
        lambda = 0.0;
        for (int i = 0; i < side; i++)
            lambda += t[i] * u[i];
        for (int i = 0; i < side; i++) {
            double d = t[i] - lambda * u[i];
            diff += d * d;
        }
        memcpy(u, t, (size_t)side * sizeof(double));
        if (sqrt(diff) <= 1e-13 * fabs(lambda))
            break;
    }
    {
        double norm = 0.0;
        for (int i = 0; i < side; i++)
            norm += u[i] * u[i];
        norm = sqrt(norm);
        for (int i = 0; i < side; i++)
            u[i] /= norm;
    }
    if (side == (int)hw) {
        /* X v = sigma u with sigma = sqrt(lambda); v = X^T u / sigma */
        double sigma = sqrt(lambda > 0.0 ? lambda : 0.0);
        for (size_t p = 0; p < hw; p++)
            proj[p] = sigma * u[p];
        for (int k = 0; k < C; k++) {
            double vk = 0.0;
            for (size_t p = 0; p < hw; p++)
                vk += X[p * C + k] * u[p];
            dot += mean[k] * vk;
        }
    } else {
        for (size_t p = 0; p < hw; p++) {
            double s = 0.0;
            for (int k = 0; k < C; k++)
                s += X[p * C + k] * u[k];
            proj[p] = s;
        }
        for (int k = 0; k < C; k++)
            dot += mean[k] * u[k];
    }
    if (dot < 0.0)
        for (size_t p = 0; p < hw; p++)
            proj[p] = -proj[p];
write:
    for (size_t p = 0; p < hw; p++)
        map[p] = (float)proj[p];
done:
    lp_free(X);
    lp_free(mean);
    lp_free(Gm);
    lp_free(u);
    lp_free(t);
    lp_free(proj);
    return rc;
}

int lp_eigencam(lp_model *m, const float *x, int n, const int *classes,
                const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    cam_layer L;
    int H, W, rc, batch;
    size_t per, hw;
    float *A = NULL, *maps = NULL;
    LP_TRY(check_args(m, x, n, classes, o, out, "eigencam"));
    LP_TRY(cam_resolve(m, o, &L, rep, "eigencam"));
    model_in_size(m, &H, &W, &per);
    hw = (size_t)L.h * L.w;
    batch = o->batch > 0 ? o->batch : 32;
    if (batch > n)
        batch = n;
    A = lp_alloc((size_t)batch * L.per, sizeof(float));
    maps = lp_alloc((size_t)n * hw, sizeof(float));
    rc = (A && maps) ? LP_OK : LP_ENOMEM;
    for (int s = 0; s < n && rc == LP_OK; s += batch) {
        int c = n - s < batch ? n - s : batch;
        rc = forward_activations(m, &L, x + (size_t)s * per, c, A, rep);
        for (int b = 0; b < c && rc == LP_OK; b++) {
            float *map = maps + (size_t)(s + b) * hw;
            rc = eigen_projection(A + (size_t)b * L.per, L.c, hw, map);
            if (!o->no_relu)
                for (size_t p = 0; p < hw; p++)
                    if (map[p] < 0.0f)
                        map[p] = 0.0f;
        }
    }
    if (rc == LP_OK)
        rc = upsample(&L, maps, n, H, W, out);
    lp_free(A);
    lp_free(maps);
    return rc;
}

/* ---- Guided Grad-CAM ---------------------------------------------------- */

/* Guided backpropagation through a ReLU: dx += (x > 0) (dy > 0) dy. */
static int guided_relu(const lp_backward_args *a, void *user)
{
    (void)user;
    if (a->dx == NULL)
        return LP_OK;
    for (size_t i = 0; i < a->y_count; i++)
        if (a->x[i] > 0.0f && a->dy[i] > 0.0f)
            a->dx[i] += a->dy[i];
    return LP_OK;
}

/* Grad-CAM (upsampled) times the guided-backprop saliency
 * max_c |guided gradient|: the map is [n, H, W], not per channel. */
int lp_guided_gradcam(lp_model *m, const float *x, int n, const int *classes,
                      const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    int H, W, rc, cin, batch, changed;
    size_t per, HW;
    float *dx = NULL;
    LP_TRY(check_args(m, x, n, classes, o, out, "guided-gradcam"));
    LP_TRY(gradient_cam(CAM_GRAD, "guided-gradcam", m, x, n, classes, o, out, rep, NULL));
    model_in_size(m, &H, &W, &per);
    cin = lp_model_get_info(m)->in_c;
    HW = (size_t)H * W;
    changed = lp_model_set_backward_rule(m, "kind:relu", guided_relu, NULL);
    if (changed < 0)
        return lp_set_error(LP_EINVAL, "guided-gradcam needs a model with ReLUs "
                            "(guided backpropagation is defined on them)");
    batch = o->batch > 0 ? o->batch : 32;
    if (batch > n)
        batch = n;
    dx = lp_alloc((size_t)batch * per, sizeof(float));
    rc = dx ? LP_OK : LP_ENOMEM;
    for (int s = 0; s < n && rc == LP_OK; s += batch) {
        int c = n - s < batch ? n - s : batch;
        rc = lp_target_gradient(m, x + (size_t)s * per, c, classes + s, o->score, NULL, dx);
        lp_model_release(m);
        if (rep) {
            rep->forwards += c;
            rep->backwards += c;
        }
        for (int b = 0; b < c && rc == LP_OK; b++) {
            float *map = out + (size_t)(s + b) * HW;
            const float *g = dx + (size_t)b * per;
            for (size_t p = 0; p < HW; p++) {
                float best = 0.0f;
                for (int ch = 0; ch < cin; ch++) {
                    float v = fabsf(g[(size_t)ch * HW + p]);
                    if (v > best) best = v;
                }
                map[p] *= best;
            }
        }
    }
    lp_model_set_backward_rule(m, "kind:relu", NULL, NULL);
    lp_free(dx);
    return rc;
}
