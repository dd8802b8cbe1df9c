/*
 * build.c — helpers the model builders use: appending nodes, fetching
 * tensors with an exact shape check, reading configuration values with a
 * range check. The configuration comes from an untrusted file, so every
 * value is bounded here before anything is sized by it.
 */
#include "model_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int valid_name(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len < LP_NODE_NAME;
}

int lp_build_node(lp_model *m, lp_node_kind kind, const char *name, int in0,
                  int in1, int ndim, const int *dims)
{
    lp_node *nd;
    size_t size = 1;
    if (m->n_nodes >= LP_MAX_NODES)
        return lp_set_error(LP_ERANGE, "model has more than %d layers",
                            LP_MAX_NODES);
    if (!valid_name(name))
        return lp_set_error(LP_EINVAL, "layer name too long: %.40s...", name);
    if (ndim < 1 || ndim > 4)
        return lp_set_error(LP_EINVAL, "%s: bad rank %d", name, ndim);
    for (int d = 0; d < ndim; d++) {
        if (dims[d] <= 0)
            return lp_set_error(LP_EFORMAT, "%s: output size %d is not positive",
                                name, dims[d]);
        if (!lp_mul_size(size, (size_t)dims[d], &size))
            return lp_set_error(LP_ERANGE, "%s: output too large", name);
    }
    if ((in0 >= m->n_nodes) || (in1 >= m->n_nodes))
        return lp_set_error(LP_EINVAL, "%s: input from a later layer", name);
    nd = &m->nodes[m->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->in[0] = in0;
    nd->in[1] = in1;
    nd->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        nd->dims[d] = dims[d];
    nd->size = size;
    nd->last_use = m->n_nodes;
    if (in0 >= 0)
        m->nodes[in0].last_use = m->n_nodes;
    if (in1 >= 0)
        m->nodes[in1].last_use = m->n_nodes;
    return m->n_nodes++;
}

int lp_build_alias(lp_model *m, int node, const char *alias)
{
    lp_node *nd = &m->nodes[node];
    if (nd->n_alias >= LP_NODE_ALIASES || !valid_name(alias))
        return lp_set_error(LP_EINVAL, "%s: cannot add alias %s", nd->name,
                            alias);
    snprintf(nd->alias[nd->n_alias++], LP_NODE_NAME, "%s", alias);
    return LP_OK;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld",
                                 d ? "," : "", (long long)shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* Dry run: remember the tensor and return a stand-in pointer (the
 * builders never read weights, they only keep pointers). */
static const float *collect_tensor(lp_model *m, const char *name, int ndim,
                                   const int64_t *shape)
{
    static const float stand_in[1];
    lp_tensor_spec *s;
    if (m->n_collect == m->cap_collect) {
        int cap = m->cap_collect ? 2 * m->cap_collect : 64;
        lp_tensor_spec *grown = lp_alloc((size_t)cap, sizeof *grown);
        if (grown == NULL)
            return NULL;
        if (m->n_collect)
            memcpy(grown, m->collect, (size_t)m->n_collect * sizeof *grown);
        lp_free(m->collect);
        m->collect = grown;
        m->cap_collect = cap;
    }
    s = &m->collect[m->n_collect++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    for (int d = 0; d < ndim && d < 8; d++)
        s->shape[d] = shape[d];
    return stand_in;
}

const float *lp_build_tensor(lp_model *m, const char *name, int ndim, ...)
{
    int64_t want[LP_LPW_MAX_DIMS] = {0};
    const lp_lpw_tensor *t;
    va_list ap;
    int same;
    char want_s[128], have_s[128];

    va_start(ap, ndim);
    for (int d = 0; d < ndim && d < LP_LPW_MAX_DIMS; d++)
        want[d] = va_arg(ap, int);
    va_end(ap);
    format_shape(want_s, sizeof want_s, ndim, want);

    if (m->collect != NULL)
        return collect_tensor(m, name, ndim, want);
    t = lp_lpw_find(m->file, name);
    if (t == NULL) {
        lp_set_error(LP_EFORMAT, "%s: missing tensor '%s' %s", m->info.name,
                     name, want_s);
        return NULL;
    }
    same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == want[d];
    if (!same) {
        format_shape(have_s, sizeof have_s, t->ndim, t->shape);
        lp_set_error(LP_EFORMAT, "%s: tensor '%s' has shape %s, expected %s",
                     m->info.name, name, have_s, want_s);
        return NULL;
    }
    for (int i = 0; i < lp_lpw_tensor_count(m->file); i++)
        if (lp_lpw_tensor_at(m->file, i) == t)
            m->tensor_used[i] = 1;
    return t->data;
}

int lp_build_check_all_used(const lp_model *m)
{
    for (int i = 0; i < lp_lpw_tensor_count(m->file); i++)
        if (!m->tensor_used[i])
            return lp_set_error(LP_EFORMAT,
                                "%s: unexpected tensor '%s' (not used by the "
                                "configured architecture)",
                                m->info.name, lp_lpw_tensor_at(m->file, i)->name);
    return LP_OK;
}

int lp_build_meta_int_or(const lp_model *m, const char *key, int lo, int hi,
                         int fallback, int *value)
{
    int64_t v;
    int rc = lp_lpw_get_i64(m->file, key, &v);
    if (rc == LP_ENOTFOUND) {
        *value = fallback;
        return LP_OK;
    }
    if (rc != LP_OK)
        return lp_set_error(rc, "metadata %s: %s", key, lp_last_error());
    if (v < lo || v > hi)
        return lp_set_error(LP_ERANGE, "metadata %s = %lld is outside [%d, %d]",
                            key, (long long)v, lo, hi);
    *value = (int)v;
    return LP_OK;
}

int lp_build_meta_int(const lp_model *m, const char *key, int lo, int hi,
                      int *value)
{
    int64_t v;
    int rc = lp_lpw_get_i64(m->file, key, &v);
    if (rc != LP_OK)
        return lp_set_error(rc == LP_ENOTFOUND ? LP_EFORMAT : rc,
                            "metadata %s: missing or not an integer", key);
    return lp_build_meta_int_or(m, key, lo, hi, 0, value);
}

int lp_build_meta_float(const lp_model *m, const char *key, double lo,
                        double hi, float *value)
{
    double v;
    int rc = lp_lpw_get_f64(m->file, key, &v);
    if (rc != LP_OK)
        return lp_set_error(LP_EFORMAT, "metadata %s: missing or not a number",
                            key);
    if (!(v >= lo && v <= hi))
        return lp_set_error(LP_ERANGE, "metadata %s = %g is outside [%g, %g]",
                            key, v, lo, hi);
    *value = (float)v;
    return LP_OK;
}

int lp_build_meta_str(const lp_model *m, const char *key, char *buf,
                      size_t cap)
{
    int rc = lp_lpw_get_str(m->file, key, buf, cap);
    if (rc != LP_OK)
        return lp_set_error(LP_EFORMAT, "metadata %s: missing or not a string",
                            key);
    return LP_OK;
}

int lp_build_meta_ints(const lp_model *m, const char *key, int lo, int hi,
                       int *values, int cap, int *count)
{
    int64_t tmp[64];
    int n = 0;
    int rc;
    if (cap > 64)
        cap = 64;
    rc = lp_lpw_get_i64_arr(m->file, key, tmp, cap, &n);
    if (rc != LP_OK)
        return lp_set_error(LP_EFORMAT,
                            "metadata %s: missing, not an integer array or "
                            "longer than %d",
                            key, cap);
    for (int i = 0; i < n; i++) {
        if (tmp[i] < lo || tmp[i] > hi)
            return lp_set_error(LP_ERANGE,
                                "metadata %s[%d] = %lld is outside [%d, %d]",
                                key, i, (long long)tmp[i], lo, hi);
        values[i] = (int)tmp[i];
    }
    *count = n;
    return LP_OK;
}
