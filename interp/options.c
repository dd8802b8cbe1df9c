/*
 * options.c — reference defaults of every method's options (the sources
 * are Captum, Xplique and the papers; ../shared/reference/interp-methods.md
 * §1-2 and docs/METHODS.md list them).
 */
#include "loupe.h"

#include <string.h>

void lp_explain_defaults(lp_explain_options *o)
{
    memset(o, 0, sizeof *o);
    o->score = LP_SCORE_LOGIT;
    o->batch = 32;
    o->seed = 0;
    o->steps = 50;                      /* Captum and Xplique */
    o->quadrature = LP_GAUSS_LEGENDRE;  /* Captum's default */
    o->baseline = LP_BASELINE_ZERO;
    o->blur_sigma = 5.0f;
    o->samples = 50;                    /* Xplique nb_samples */
    o->noise = 0.2f;                    /* Xplique; as a fraction of the range */
    o->patch = 8;
    o->stride = 8;
    o->occlusion_value = 0.0f;
    o->masks = 4000;                    /* RISE paper, Xplique */
    o->grid = 0;                        /* 0: the method's default (RISE 7, Sobol 8) */
    o->keep_prob = 0.5f;
    o->designs = 0;                     /* 0: Sobol 32, HSIC 500 */
    o->perturbation = LP_PERTURB_INPAINT;
    o->estimator = LP_SOBOL_JANSEN;
    o->lime_samples = 0;                /* 0: LIME 150, KernelSHAP 800 */
    o->segments = LP_SEGMENTS_QUICKSHIFT; /* lime_image, Xplique */
    o->qs_kernel = 2.0f;                /* Xplique: quickshift(kernel_size=2, */
    o->qs_max_dist = 10.0f;             /*   max_dist = scikit-image's 10, */
    o->qs_ratio = 0.5f;                 /*   ratio=0.5) */
    o->lrp_eps = 1e-9f;                 /* Chefer et al.'s safe_divide */
}
