/*
 * explain.c — the table of attribution methods (name, function, flags,
 * reference) that `loupe explain` and the report look methods up in, and
 * how many image passes each will take.
 */
#include "loupe.h"

#include <stdio.h>
#include <string.h>

static const lp_method methods[] = {
    {"gradient", lp_gradient, LP_METHOD_PER_CHANNEL,
     "raw input gradient of the score [N,C,H,W]", "Simonyan et al. 2014"},
    {"saliency", lp_saliency, 0, "|gradient|, max over channels", "Simonyan et al. 2014"},
    {"gradxinput", lp_gradxinput, 0, "input x gradient, summed over channels",
     "Shrikumar et al. 2016"},
    {"integrated-gradients", lp_integrated_gradients, 0,
     "path integral of gradients from a baseline (--steps, --baseline, --quadrature)",
     "Sundararajan et al. 2017"},
    {"smoothgrad", lp_smoothgrad, 0, "mean gradient over noisy copies (--samples, --noise)",
     "Smilkov et al. 2017"},
    {"vargrad", lp_vargrad, 0, "variance of gradients over noisy copies",
     "Adebayo et al. 2018"},
    {"squaregrad", lp_squaregrad, 0, "mean squared gradient over noisy copies",
     "Hooker et al. 2019"},
    {"guided-backprop", lp_guided_backprop, 0, "gradients through ReLUs passing only positive signal",
     "Springenberg et al. 2015"},
    {"deconvnet", lp_deconvnet, 0, "ReLU backward on the sign of the gradient only",
     "Zeiler & Fergus 2014"},
    {"deeplift", lp_deeplift, 0, "rescale-rule multipliers against a baseline",
     "Shrikumar et al. 2017"},
    {"gradcam", lp_gradcam, 0, "channel weights = mean gradient (--layer)", "Selvaraju et al. 2017"},
    {"gradcam++", lp_gradcampp, 0, "higher-order channel weights", "Chattopadhay et al. 2018"},
    {"layercam", lp_layercam, 0, "positive gradients x activations per position",
     "Jiang et al. 2021"},
    {"hirescam", lp_hirescam, 0, "gradients x activations summed over channels",
     "Draelos & Carin 2020"},
    {"scorecam", lp_scorecam, 0, "channels as masks weighted by the score they keep",
     "Wang et al. 2020"},
    {"eigencam", lp_eigencam, 0, "first principal component of the activations (no gradient)",
     "Muhammad & Yeasin 2020"},
    {"guided-gradcam", lp_guided_gradcam, 0, "Grad-CAM x guided backprop", "Selvaraju et al. 2017"},
    {"rollout", lp_rollout, LP_METHOD_VIT_ONLY, "attention rollout over all blocks",
     "Abnar & Zuidema 2020"},
    {"attention-last", lp_attention_last, LP_METHOD_VIT_ONLY,
     "class-token attention of the last block", "Dosovitskiy et al. 2021"},
    {"chefer", lp_chefer, LP_METHOD_VIT_ONLY,
     "rollout of attention relevance (LRP) x gradient: transformer attribution",
     "Chefer et al. 2021 (CVPR)"},
    {"chefer-grad", lp_chefer_grad, LP_METHOD_VIT_ONLY,
     "rollout of attention x gradient (no LRP)", "Chefer et al. 2021 (ICCV)"},
    {"attn-gradcam", lp_attn_gradcam, LP_METHOD_VIT_ONLY,
     "last block's attention x mean gradient", "Chefer et al. 2021"},
    {"occlusion", lp_occlusion, 0, "score drop when a patch is hidden (--patch, --stride)",
     "Zeiler & Fergus 2014"},
    {"rise", lp_rise, 0, "random masks weighted by the score (--masks, --grid, --p)",
     "Petsiuk et al. 2018"},
    {"sobol", lp_sobol_attribution, 0, "total Sobol indices of grid cells (--designs, --grid)",
     "Fel et al. 2021"},
    {"hsic", lp_hsic_attribution, 0, "HSIC dependence of the score on grid cells",
     "Novello et al. 2022"},
    {"lime", lp_lime, 0, "local linear surrogate on grid cells", "Ribeiro et al. 2016"},
    {"kernelshap", lp_kernelshap, 0, "Shapley values of grid cells by weighted regression",
     "Lundberg & Lee 2017"},
    {"random", lp_random_attribution, 0,
     "random map on a --grid lattice (8), upsampled: the baseline a method must beat",
     "Hooker et al. 2019; Petsiuk et al. 2018"},
    {NULL, NULL, 0, NULL, NULL},
};

const lp_method *lp_methods(void) { return methods; }

/* letters in common, in order (longest common subsequence) */
static int lcs(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), best = 0;
    int prev[64] = {0}, cur[64];
    if (la > 63) la = 63;
    if (lb > 63) lb = 63;
    for (int i = 1; i <= la; i++) {
        cur[0] = 0;
        for (int j = 1; j <= lb; j++) {
            cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1
                                           : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
            if (cur[j] > best) best = cur[j];
        }
        memcpy(prev, cur, sizeof prev);
    }
    return best;
}

const lp_method *lp_find_method(const char *name)
{
    const char *near = NULL;
    int best = -1;
    for (const lp_method *me = methods; me->name; me++)
        if (name != NULL && !strcmp(me->name, name))
            return me;
    for (const lp_method *me = methods; me->name && name; me++) {
        int s = 2 * lcs(name, me->name) - (int)strlen(me->name);
        if (s > best) {
            best = s;
            near = me->name;
        }
    }
    lp_set_error(LP_ENOTFOUND, "unknown method '%s'%s%s%s (`loupe explain --list` shows all)",
                 name ? name : "", near ? " (did you mean " : "", near ? near : "",
                 near ? "?)" : "");
    return NULL;
}

static int or_default(int v, int d) { return v > 0 ? v : d; }

long lp_method_passes(const lp_method *me, const lp_model *m,
                      const lp_explain_options *o)
{
    const lp_model_info *in = lp_model_get_info(m);
    const char *n = me->name;
    if (!strcmp(n, "integrated-gradients"))
        return o->steps + 1;
    if (!strcmp(n, "smoothgrad") || !strcmp(n, "vargrad") || !strcmp(n, "squaregrad"))
        return o->samples;
    if (!strcmp(n, "deeplift") || !strcmp(n, "guided-gradcam"))
        return 2;
    if (!strcmp(n, "occlusion")) {
        int p = o->patch, s = o->stride > 0 ? o->stride : 1;
        long ny = in->in_h > p ? (in->in_h - p + s - 1) / s + 1 : 1;
        long nx = in->in_w > p ? (in->in_w - p + s - 1) / s + 1 : 1;
        return ny * nx + 1;
    }
    if (!strcmp(n, "rise"))
        return o->masks + 1;
    if (!strcmp(n, "sobol")) {
        long g = or_default(o->grid, 8);
        return (long)or_default(o->designs, 32) * (g * g + 2);
    }
    if (!strcmp(n, "hsic"))
        return or_default(o->designs, 512);
    if (!strcmp(n, "lime"))
        return or_default(o->lime_samples, 150);
    if (!strcmp(n, "kernelshap"))
        return or_default(o->lime_samples, 800);
    if (!strcmp(n, "random"))
        return 0;
    if (!strcmp(n, "scorecam"))
        return 1 + 2048; /* one forward per channel of the layer; at most */
    return 1;
}
