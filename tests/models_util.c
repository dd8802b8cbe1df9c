/*
 * models_util.c — random networks for tests (see models_util.h).
 */
#include "models_util.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tm_config_fn config;
    const char *key;
    int is_str;
    int64_t i64;
    const char *str;
} tm_meta;

static void apply_meta(lp_lpw_builder *b, const tm_meta *meta)
{
    meta->config(b);
    if (meta->key == NULL)
        return;
    if (meta->is_str)
        lp_lpw_builder_set_str(b, meta->key, meta->str);
    else
        lp_lpw_builder_set_i64(b, meta->key, meta->i64);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static void fill_tensor(lpt_rng *rng, const lp_tensor_spec *s, float *data,
                        size_t count)
{
    size_t fan_in = 1;
    for (int d = 1; d < s->ndim; d++)
        fan_in *= (size_t)s->shape[d];
    for (size_t i = 0; i < count; i++) {
        double z = lpt_rng_normal(rng);
        if (ends_with(s->name, "running_var"))
            data[i] = (float)(0.5 + lpt_rng_uniform(rng));
        else if (ends_with(s->name, "running_mean"))
            data[i] = (float)(0.1 * z);
        else if (s->ndim == 1 && ends_with(s->name, "weight"))
            data[i] = (float)(1.0 + 0.1 * z);
        else if (s->ndim == 1)
            data[i] = (float)(0.1 * z);
        else if (s->ndim == 3) /* class token, positions */
            data[i] = (float)(0.5 * z);
        else
            data[i] = (float)(z / sqrt((double)fan_in));
    }
}

/* Tensors the configuration implies (via a file with one dummy tensor). */
static int expected(const tm_meta *meta, lp_tensor_spec **specs, int *count)
{
    lp_lpw_builder *b = lp_lpw_builder_new();
    lp_lpw *f = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    int64_t one = 1;
    float zero = 0.0f;
    int rc;
    if (b == NULL)
        return LP_ENOMEM;
    apply_meta(b, meta);
    lp_lpw_builder_add_tensor(b, "dummy", 1, &one, &zero);
    rc = lp_lpw_builder_finish(b, &bytes, &size);
    if (rc == LP_OK)
        rc = lp_lpw_open_memory(&f, bytes, size, "config", 1);
    if (rc == LP_OK)
        rc = lp_model_expected_tensors(f, specs, count);
    lp_lpw_close(f);
    lp_free(bytes);
    lp_lpw_builder_free(b);
    return rc;
}

static int build(const tm_meta *meta, uint64_t seed, tm_edit edit,
                 const char *tensor, lp_model **m)
{
    lp_tensor_spec *specs = NULL;
    int count = 0, rc;
    lp_lpw_builder *b;
    lpt_rng rng = lpt_rng_seed(seed);
    uint8_t *bytes = NULL;
    size_t size = 0;
    lp_lpw *f = NULL;

    *m = NULL;
    rc = expected(meta, &specs, &count);
    if (rc != LP_OK)
        return rc;
    b = lp_lpw_builder_new();
    if (b == NULL) {
        lp_free(specs);
        return LP_ENOMEM;
    }
    apply_meta(b, meta);
    for (int i = 0; i < count && rc == LP_OK; i++) {
        lp_tensor_spec s = specs[i];
        size_t n = 1;
        float *data;
        if (edit == TM_DROP && !strcmp(s.name, tensor))
            continue;
        if (edit == TM_RESHAPE && !strcmp(s.name, tensor))
            s.shape[0] += 1;
        for (int d = 0; d < s.ndim; d++)
            n *= (size_t)s.shape[d];
        data = malloc(n * sizeof(float));
        if (data == NULL) {
            rc = LP_ENOMEM;
            break;
        }
        fill_tensor(&rng, &s, data, n);
        rc = lp_lpw_builder_add_tensor(b, s.name, s.ndim, s.shape, data);
        free(data);
    }
    if (rc == LP_OK && edit == TM_EXTRA) {
        int64_t shape = 4;
        float data[4] = {1, 2, 3, 4};
        rc = lp_lpw_builder_add_tensor(b, tensor, 1, &shape, data);
    }
    if (rc == LP_OK)
        rc = lp_lpw_builder_finish(b, &bytes, &size);
    if (rc == LP_OK)
        rc = lp_lpw_open_memory(&f, bytes, size, "random", 1);
    if (rc == LP_OK) {
        rc = lp_model_from_lpw(m, f);
        if (rc != LP_OK)
            lp_lpw_close(f);
    }
    lp_free(bytes);
    lp_free(specs);
    lp_lpw_builder_free(b);
    return rc;
}

lp_model *tm_random_model(tm_config_fn config, uint64_t seed)
{
    tm_meta meta = {config, NULL, 0, 0, NULL};
    lp_model *m = NULL;
    build(&meta, seed, TM_NONE, NULL, &m);
    return m;
}

int tm_model_with_edit(tm_config_fn config, tm_edit edit, const char *tensor,
                       lp_model **m)
{
    tm_meta meta = {config, NULL, 0, 0, NULL};
    return build(&meta, 1, edit, tensor, m);
}

int tm_model_with_meta_i64(tm_config_fn config, const char *key, int64_t v,
                           lp_model **m)
{
    tm_meta meta = {config, key, 0, v, NULL};
    int rc = build(&meta, 1, TM_NONE, NULL, m);
    lp_model_free(*m);
    *m = NULL;
    return rc;
}

int tm_model_with_meta_str(tm_config_fn config, const char *key,
                           const char *v, lp_model **m)
{
    tm_meta meta = {config, key, 1, 0, v};
    int rc = build(&meta, 1, TM_NONE, NULL, m);
    lp_model_free(*m);
    *m = NULL;
    return rc;
}
