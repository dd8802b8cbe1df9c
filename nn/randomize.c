/*
 * randomize.c — copies of a model with some parameters redrawn at random:
 * the model-parameter randomisation test of Adebayo et al. 2018
 * ("Sanity checks for saliency maps", §3.1), cascading from the output
 * towards the input. A redrawn tensor keeps its own mean and standard
 * deviation (so activations keep their scale); BatchNorm running
 * statistics are left as they are.
 */
#include "loupe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* splitmix64 + Box-Muller: the same stream on every platform. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_normal(uint64_t *s)
{
    double u1 = ((next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int is_number(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* The parameter group of a tensor name: the path up to and including the
 * first numbered component ("blocks.11", "encoder.layers.encoder_layer_11",
 * "transformer.layers.3"), a ResNet stage "layerN", or else the first
 * component ("fc", "conv1", "head", "cls_token"). */
static void group_of(const char *name, char *out, size_t cap)
{
    const char *p = name;
    size_t first = strcspn(name, ".");
    if (!strncmp(name, "layer", 5) && is_number(name + 5, first - 5)) {
        snprintf(out, cap, "%.*s", (int)first, name);
        return;
    }
    while (*p) {
        size_t n = strcspn(p, ".");
        if (is_number(p, n) || !strncmp(p, "encoder_layer_", 14)) {
            snprintf(out, cap, "%.*s", (int)(p - name + n), name);
            return;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    snprintf(out, cap, "%.*s", (int)first, name);
}

int lp_lpw_param_groups(const lp_lpw *f, char (*groups)[96], int max, int *count)
{
    int n = 0;
    for (int i = 0; i < lp_lpw_tensor_count(f); i++) {
        char g[96];
        int seen = 0;
        group_of(lp_lpw_tensor_at(f, i)->name, g, sizeof g);
        for (int k = 0; k < n && !seen; k++)
            seen = !strcmp(groups[k], g);
        if (seen)
            continue;
        if (n == max)
            return lp_set_error(LP_ERANGE, "more than %d parameter groups", max);
        snprintf(groups[n++], 96, "%s", g);
    }
    *count = n;
    return LP_OK;
}

static int starts_group(const char *name, const char *group)
{
    size_t n = strlen(group);
    return !strncmp(name, group, n) && (name[n] == '.' || name[n] == '\0');
}

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* Every metadata entry of f into b, unchanged. */
static int copy_metadata(const lp_lpw *f, lp_lpw_builder *b)
{
    enum { ARR = 1024, STR = 4096 };
    int rc = LP_OK;
    for (int i = 0; i < lp_lpw_meta_count(f) && rc == LP_OK; i++) {
        const char *key;
        lp_meta_type type;
        if ((rc = lp_lpw_meta_key(f, i, &key, &type)) != LP_OK)
            break;
        if (type == LP_META_I64) {
            int64_t v;
            if ((rc = lp_lpw_get_i64(f, key, &v)) == LP_OK)
                rc = lp_lpw_builder_set_i64(b, key, v);
        } else if (type == LP_META_F64) {
            double v;
            if ((rc = lp_lpw_get_f64(f, key, &v)) == LP_OK)
                rc = lp_lpw_builder_set_f64(b, key, v);
        } else if (type == LP_META_STR) {
            char *s = lp_alloc(STR, 1);
            rc = s ? lp_lpw_get_str(f, key, s, STR) : LP_ENOMEM;
            if (rc == LP_OK)
                rc = lp_lpw_builder_set_str(b, key, s);
            lp_free(s);
        } else if (type == LP_META_I64_ARR) {
            int64_t *v = lp_alloc(ARR, sizeof *v);
            int count = 0;
            rc = v ? lp_lpw_get_i64_arr(f, key, v, ARR, &count) : LP_ENOMEM;
            if (rc == LP_OK)
                rc = lp_lpw_builder_set_i64_arr(b, key, v, count);
            lp_free(v);
        } else if (type == LP_META_F64_ARR) {
            double *v = lp_alloc(ARR, sizeof *v);
            int count = 0;
            rc = v ? lp_lpw_get_f64_arr(f, key, v, ARR, &count) : LP_ENOMEM;
            if (rc == LP_OK)
                rc = lp_lpw_builder_set_f64_arr(b, key, v, count);
            lp_free(v);
        } else if (type == LP_META_STR_ARR) {
            int count = 0;
            char **items = NULL, *pool = NULL;
            rc = lp_lpw_get_str_arr_count(f, key, &count);
            if (rc == LP_OK) {
                items = lp_alloc((size_t)count + 1, sizeof *items);
                pool = lp_alloc((size_t)count + 1, STR);
                rc = (items && pool) ? LP_OK : LP_ENOMEM;
            }
            for (int k = 0; k < count && rc == LP_OK; k++) {
                items[k] = pool + (size_t)k * STR;
                rc = lp_lpw_get_str_arr_item(f, key, k, items[k], STR);
            }
            if (rc == LP_OK)
                rc = lp_lpw_builder_set_str_arr(b, key, (const char *const *)items, count);
            lp_free(items);
            lp_free(pool);
        }
    }
    return rc;
}

/* Redraw t's values from N(mean(t), std(t)), from a stream seeded by the
 * run's seed and the tensor's name: a tensor gets the same values whatever
 * other groups are redrawn with it, so cascading stages nest. */
static int redraw(lp_lpw_builder *b, const lp_lpw_tensor *t, uint64_t seed)
{
    uint64_t h = 0xCBF29CE484222325ull, st;
    uint64_t *state = &st;
    for (const char *c = t->name; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001B3ull;
    st = seed ^ h;
    float *d = lp_alloc((size_t)t->count, sizeof *d);
    double mean = 0, var = 0;
    int rc;
    if (d == NULL)
        return LP_ENOMEM;
    for (int64_t k = 0; k < t->count; k++)
        mean += t->data[k];
    mean /= (double)(t->count > 0 ? t->count : 1);
    for (int64_t k = 0; k < t->count; k++)
        var += (t->data[k] - mean) * (t->data[k] - mean);
    var /= (double)(t->count > 0 ? t->count : 1);
    for (int64_t k = 0; k < t->count; k++)
        d[k] = (float)(mean + sqrt(var) * next_normal(state));
    rc = lp_lpw_builder_add_tensor(b, t->name, t->ndim, t->shape, d);
    lp_free(d);
    return rc;
}

int lp_model_randomized(lp_model **out, const lp_lpw *f, const char *const *groups,
                        int n_groups, uint64_t seed)
{
    lp_lpw_builder *b = lp_lpw_builder_new();
    lp_lpw *g = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    int rc = b ? copy_metadata(f, b) : LP_ENOMEM;
    *out = NULL;
    for (int i = 0; i < lp_lpw_tensor_count(f) && rc == LP_OK; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        int chosen = 0;
        for (int k = 0; k < n_groups && !chosen; k++)
            chosen = starts_group(t->name, groups[k]);
        if (ends_with(t->name, "running_mean") || ends_with(t->name, "running_var") ||
            ends_with(t->name, "num_batches_tracked"))
            chosen = 0;
        rc = chosen ? redraw(b, t, seed)
                    : lp_lpw_builder_add_tensor(b, t->name, t->ndim, t->shape, t->data);
    }
    if (rc == LP_OK)
        rc = lp_lpw_builder_finish(b, &bytes, &size);
    if (rc == LP_OK)
        rc = lp_lpw_open_memory(&g, bytes, size, "randomized copy", 0);
    if (rc == LP_OK && (rc = lp_model_from_lpw(out, g)) != LP_OK)
        lp_lpw_close(g);
    lp_free(bytes);
    lp_lpw_builder_free(b);
    return rc;
}
