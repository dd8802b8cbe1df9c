/*
 * perturb_internal.h — what the black-box methods (perturbation.c,
 * sobol.c, surrogate.c) share. Not part of the public API.
 */
#ifndef LOUPE_PERTURB_INTERNAL_H
#define LOUPE_PERTURB_INTERNAL_H

#include "loupe.h"

/* The target scores of `c` perturbed copies xs[c, C, H, W] of one image
 * of class `cls`, in chunks of o->batch; counts the forwards in rep and
 * reports progress (*done of total). Defined in perturbation.c. */
int lp__perturb_forward(lp_model *m, const float *xs, int c, int cls,
                        const lp_explain_options *o, float *scores,
                        lp_explain_report *rep, long *done, long total);

#endif
