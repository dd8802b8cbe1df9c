/*
 * vit_lrp.h — the LRP backward rules of interp/vit_lrp.c (internal to
 * interp/, used by the chefer method in vit_attention.c).
 */
#ifndef LOUPE_VIT_LRP_H
#define LOUPE_VIT_LRP_H

#include "loupe.h"

/* Replace (on != 0) or restore (on == 0) the backward rule of every
 * linear, attention, add, token-mean, layernorm, activation and softmax
 * layer of m with its relevance rule; a backward pass seeded with the
 * relevance of the output then carries relevance, not gradient. *eps is
 * the stabiliser ε and must outlive the passes.
 * Restoring also drops any rule a caller had set on those layers. */
int lp__vit_lrp_rules(lp_model *m, int on, const double *eps);

#endif
