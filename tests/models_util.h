/*
 * models_util.h — small random networks for tests, written as .lpw files
 * in memory with the tensors their configuration implies.
 */
#ifndef LOUPE_TEST_MODELS_UTIL_H
#define LOUPE_TEST_MODELS_UTIL_H

#include "loupe.h"

typedef void (*tm_config_fn)(lp_lpw_builder *b);

/* The configurations used by the tests (test_models.c). */
void tiny_cifar_resnet(lp_lpw_builder *b);
void tiny_bottleneck_resnet(lp_lpw_builder *b);
void tiny_vit_timm(lp_lpw_builder *b);
void tiny_vit_torchvision(lp_lpw_builder *b);
void tiny_vit_timm_mean(lp_lpw_builder *b);
void tiny_vit_lucidrains(lp_lpw_builder *b);

/* The keys every ResNet configuration sets (general.architecture and
 * .name, resnet.*; bn_eps 1e-5). */
void tm_resnet_meta(lp_lpw_builder *b, const char *name, const char *block,
                    const int64_t *layers, const int64_t *planes, int stages,
                    const char *stem, int stem_width, const char *shortcut,
                    const char *fc);

/* A model with seeded random weights (NULL on failure, error set). */
lp_model *tm_random_model(tm_config_fn config, uint64_t seed);

typedef enum { TM_NONE, TM_DROP, TM_RESHAPE, TM_EXTRA } tm_edit;
/* Build with one tensor dropped, reshaped or added; returns the status of
 * lp_model_from_lpw (the model in *m on success). */
int tm_model_with_edit(tm_config_fn config, tm_edit edit, const char *tensor,
                       lp_model **m);
/* Build with one metadata value overridden. */
int tm_model_with_meta_i64(tm_config_fn config, const char *key, int64_t v,
                           lp_model **m);
int tm_model_with_meta_str(tm_config_fn config, const char *key,
                           const char *v, lp_model **m);

#endif
