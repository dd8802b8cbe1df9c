/*
 * model.c — a model is a validated weight file plus the node list built
 * from its configuration. This file loads it, answers questions about its
 * layers, and runs passes: forward in node order, backward in reverse.
 *
 * Memory: an inference-only pass frees each output as soon as its last
 * reader has run, so at any time only the live activations exist. A pass
 * with LP_RUN_GRAD keeps what backward needs; LP_RUN_KEEP_ALL keeps every
 * output (and, after backward, every gradient) for reading.
 */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LP_MAX_BATCH 65536

/* ---- loading -------------------------------------------------------- */

static int read_info(lp_model *m)
{
    lp_model_info *in = &m->info;
    double v[4];
    int count = 0;
    LP_TRY(lp_build_meta_str(m, "general.architecture", in->arch, sizeof in->arch));
    if (lp_lpw_get_str(m->file, "general.name", in->name, sizeof in->name) != LP_OK)
        snprintf(in->name, sizeof in->name, "%s", in->arch);
    LP_TRY(lp_build_meta_int(m, "input.channels", 1, 4, &in->in_c));
    LP_TRY(lp_build_meta_int(m, "input.height", 1, 8192, &in->in_h));
    LP_TRY(lp_build_meta_int(m, "input.width", 1, 8192, &in->in_w));
    LP_TRY(lp_build_meta_int(m, "model.num_classes", 0, 1 << 20, &in->num_classes));
    LP_TRY(lp_build_meta_int_or(m, "input.resize", 0, 16384, 0, &in->resize));
    LP_TRY(lp_build_meta_int_or(m, "input.crop", 0, 16384, 0, &in->crop));
    if (lp_lpw_get_str(m->file, "input.interpolation", in->interpolation,
                       sizeof in->interpolation) != LP_OK)
        snprintf(in->interpolation, sizeof in->interpolation, "bilinear");
    for (int c = 0; c < 4; c++) {
        in->mean[c] = 0.0f;
        in->std[c] = 1.0f;
    }
    if (lp_lpw_get_f64_arr(m->file, "input.mean", v, 4, &count) == LP_OK) {
        if (count != in->in_c)
            return lp_set_error(LP_EFORMAT, "input.mean has %d values for %d channels",
                                count, in->in_c);
        for (int c = 0; c < count; c++)
            in->mean[c] = (float)v[c];
    }
    if (lp_lpw_get_f64_arr(m->file, "input.std", v, 4, &count) == LP_OK) {
        if (count != in->in_c)
            return lp_set_error(LP_EFORMAT, "input.std has %d values for %d channels",
                                count, in->in_c);
        for (int c = 0; c < count; c++) {
            if (!(v[c] > 0.0))
                return lp_set_error(LP_EFORMAT, "input.std[%d] is not positive", c);
            in->std[c] = (float)v[c];
        }
    }
    return LP_OK;
}

static int read_labels(lp_model *m)
{
    int count = 0;
    char buf[4096];
    if (lp_lpw_get_str_arr_count(m->file, "model.labels", &count) != LP_OK)
        return LP_OK; /* labels are optional */
    if (count != m->info.num_classes)
        return lp_set_error(LP_EFORMAT, "model.labels has %d names for %d classes",
                            count, m->info.num_classes);
    m->labels = lp_calloc((size_t)count, sizeof *m->labels);
    if (m->labels == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory for labels");
    for (int k = 0; k < count; k++) {
        LP_TRY(lp_lpw_get_str_arr_item(m->file, "model.labels", k, buf, sizeof buf));
        m->labels[k] = lp_alloc(strlen(buf) + 1, 1);
        if (m->labels[k] == NULL)
            return lp_set_error(LP_ENOMEM, "out of memory for labels");
        memcpy(m->labels[k], buf, strlen(buf) + 1);
    }
    return LP_OK;
}

static int build(lp_model *m)
{
    int dims[3];
    int n_tensors = lp_lpw_tensor_count(m->file);
    LP_TRY(read_info(m));
    LP_TRY(read_labels(m));
    m->nodes = lp_calloc(LP_MAX_NODES, sizeof *m->nodes);
    m->tensor_used = lp_calloc((size_t)(n_tensors > 0 ? n_tensors : 1), 1);
    if (m->nodes == NULL || m->tensor_used == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory building the model");
    dims[0] = m->info.in_c;
    dims[1] = m->info.in_h;
    dims[2] = m->info.in_w;
    LP_TRY(lp_build_node(m, LP_NODE_INPUT, "input", -1, -1, 3, dims) < 0
               ? LP_EFORMAT : LP_OK);
    if (!strcmp(m->info.arch, "resnet"))
        LP_TRY(lp_build_resnet(m));
    else if (!strcmp(m->info.arch, "vit"))
        LP_TRY(lp_build_vit(m));
    else
        return lp_set_error(LP_EFORMAT, "unknown architecture '%s'", m->info.arch);
    if (m->collect != NULL)
        return LP_OK; /* dry run: no buffers */
    LP_TRY(lp_build_check_all_used(m));
    m->info.num_layers = m->n_nodes;
    m->info.out_dim = (int)m->nodes[m->n_nodes - 1].size;
    m->info.num_params = 0;
    for (int i = 0; i < n_tensors; i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(m->file, i);
        if (!strstr(t->name, "running_"))
            m->info.num_params += t->count;
    }
    m->act = lp_calloc((size_t)m->n_nodes, sizeof *m->act);
    m->grad = lp_calloc((size_t)m->n_nodes, sizeof *m->grad);
    m->argmax = lp_calloc((size_t)m->n_nodes, sizeof *m->argmax);
    m->act_off = lp_calloc((size_t)m->n_nodes, sizeof *m->act_off);
    m->plan_keep = lp_calloc((size_t)m->n_nodes, 1);
    if (!m->act || !m->grad || !m->argmax || !m->act_off || !m->plan_keep)
        return lp_set_error(LP_ENOMEM, "out of memory building the model");
    return lp_hooks_init(m);
}

int lp_model_from_lpw(lp_model **out, lp_lpw *file)
{
    lp_model *m;
    int rc;
    if (out == NULL || file == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_from_lpw: NULL argument");
    *out = NULL;
    m = lp_calloc(1, sizeof *m);
    if (m == NULL)
        return LP_ENOMEM;
    m->file = file;
    rc = build(m);
    if (rc != LP_OK) {
        m->file = NULL; /* the caller keeps the file on failure */
        lp_model_free(m);
        return rc;
    }
    *out = m;
    return LP_OK;
}

int lp_model_expected_tensors(const lp_lpw *file, lp_tensor_spec **specs,
                              int *count)
{
    lp_model *m;
    int rc;
    if (file == NULL || specs == NULL || count == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_expected_tensors: NULL argument");
    *specs = NULL;
    *count = 0;
    m = lp_calloc(1, sizeof *m);
    if (m == NULL)
        return LP_ENOMEM;
    m->file = (lp_lpw *)file; /* only read */
    m->collect = lp_alloc(64, sizeof *m->collect);
    m->cap_collect = 64;
    rc = m->collect ? build(m) : LP_ENOMEM;
    if (rc == LP_OK) {
        *specs = m->collect;
        *count = m->n_collect;
        m->collect = NULL;
    }
    lp_free(m->collect);
    m->file = NULL;
    lp_model_free(m);
    return rc;
}

int lp_model_load(lp_model **out, const char *path)
{
    lp_lpw *f = NULL;
    int rc;
    if (out == NULL || path == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_load: NULL argument");
    *out = NULL;
    LP_TRY(lp_lpw_open(&f, path, 1));
    rc = lp_model_from_lpw(out, f);
    if (rc != LP_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        lp_lpw_close(f);
        return lp_set_error(rc, "%s: %s", path, msg);
    }
    return LP_OK;
}

void lp_model_free(lp_model *m)
{
    if (m == NULL)
        return;
    lp_model_release(m);
    if (m->labels) {
        for (int k = 0; k < m->info.num_classes; k++)
            lp_free(m->labels[k]);
        lp_free(m->labels);
    }
    lp_free(m->act);
    lp_free(m->grad);
    lp_free(m->argmax);
    lp_free(m->act_off);
    lp_free(m->plan_keep);
    lp_hooks_free(m);
    lp_free(m->nodes);
    lp_free(m->tensor_used);
    lp_lpw_close(m->file);
    lp_free(m);
}

/* ---- questions -------------------------------------------------------- */

const lp_model_info *lp_model_get_info(const lp_model *m) { return &m->info; }

const char *lp_model_label(const lp_model *m, int k)
{
    if (m->labels == NULL || k < 0 || k >= m->info.num_classes)
        return NULL;
    return m->labels[k];
}

int lp_model_layer_count(const lp_model *m) { return m->n_nodes; }

const char *lp_model_layer_name(const lp_model *m, int layer)
{
    return (layer >= 0 && layer < m->n_nodes) ? m->nodes[layer].name : NULL;
}

const char *lp_model_layer_alias(const lp_model *m, int layer, int k)
{
    if (layer < 0 || layer >= m->n_nodes || k < 0 || k >= m->nodes[layer].n_alias)
        return NULL;
    return m->nodes[layer].alias[k];
}

const char *lp_model_layer_kind(const lp_model *m, int layer)
{
    return (layer >= 0 && layer < m->n_nodes)
               ? lp_node_kind_name(m->nodes[layer].kind) : NULL;
}

int lp_model_layer_shape(const lp_model *m, int layer, int dims[4])
{
    if (layer < 0 || layer >= m->n_nodes)
        return lp_set_error(LP_EINVAL, "layer index %d out of range", layer);
    for (int d = 0; d < m->nodes[layer].ndim; d++)
        dims[d] = m->nodes[layer].dims[d];
    return m->nodes[layer].ndim;
}

/* Edit distance, for suggesting names. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), row[LP_NODE_NAME + 1];
    if (la >= LP_NODE_NAME || lb >= LP_NODE_NAME)
        return 1 << 20;
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static int node_has_name(const lp_node *nd, const char *name)
{
    if (!strcmp(nd->name, name))
        return 1;
    for (int a = 0; a < nd->n_alias; a++)
        if (!strcmp(nd->alias[a], name))
            return 1;
    return 0;
}

/* Keep the three closest candidates (by edit distance), one per name. */
static void consider(const char *name, const char *cand, const char **best, int *best_d)
{
    int d = edit_distance(name, cand);
    for (int s = 0; s < 3; s++)
        if (best[s] != NULL && !strcmp(best[s], cand))
            return;
    for (int s = 0; s < 3; s++) {
        if (d < best_d[s]) {
            for (int t = 2; t > s; t--) {
                best_d[t] = best_d[t - 1];
                best[t] = best[t - 1];
            }
            best_d[s] = d;
            best[s] = cand;
            return;
        }
    }
}

int lp_model_find_layer(const lp_model *m, const char *name)
{
    const char *best[3] = {NULL, NULL, NULL};
    int best_d[3] = {1 << 30, 1 << 30, 1 << 30};
    if (name == NULL)
        return lp_set_error(LP_EINVAL, "layer name is NULL");
    for (int i = 0; i < m->n_nodes; i++)
        if (node_has_name(&m->nodes[i], name))
            return i;
    /* suggestions: names and aliases ("layer9" -> "layer1, layer2, ...") */
    for (int i = 0; i < m->n_nodes; i++) {
        consider(name, m->nodes[i].name, best, best_d);
        for (int a = 0; a < m->nodes[i].n_alias; a++)
            consider(name, m->nodes[i].alias[a], best, best_d);
    }
    return lp_set_error(LP_ENOTFOUND,
                        "no layer named '%s' (nearest: %s%s%s%s%s; "
                        "'loupe layers' lists them all)",
                        name, best[0] ? best[0] : "", best[1] ? ", " : "",
                        best[1] ? best[1] : "", best[2] ? ", " : "",
                        best[2] ? best[2] : "");
}

/* ---- passes ------------------------------------------------------------ */

static void free_slot(float **slot)
{
    lp_free(*slot);
    *slot = NULL;
}

/* Forget the last pass: its gradients and max-pool choices go, its
 * outputs' bytes stay in the arena for the next pass. */
static void drop_pass(lp_model *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        m->act[i] = NULL;
        free_slot(&m->grad[i]);
        lp_free(m->argmax[i]);
        m->argmax[i] = NULL;
    }
    m->batch = 0;
}

void lp_model_release(lp_model *m)
{
    /* a model whose build failed half-way may lack some of the arrays */
    if (m == NULL || m->act == NULL || m->grad == NULL || m->argmax == NULL)
        return;
    drop_pass(m);
    lp_free(m->arena);
    m->arena = NULL;
    m->arena_floats = 0;
    m->plan_batch = 0;
}

static int alloc_floats(float **slot, int n, size_t per_image, int zero)
{
    size_t count;
    if (!lp_mul_size((size_t)n, per_image, &count))
        return lp_set_error(LP_ENOMEM, "batch of %d is too large", n);
    *slot = zero ? lp_calloc(count, sizeof(float)) : lp_alloc(count, sizeof(float));
    return *slot ? LP_OK : LP_ENOMEM;
}

/* Scratch a node needs beside its output: attention probabilities,
 * max-pool choices (kept for backward). */
static int alloc_aux(lp_model *m, int i, int n)
{
    const lp_node *nd = &m->nodes[i];
    if (nd->kind == LP_NODE_MAXPOOL && (m->flags & LP_RUN_GRAD)) {
        m->argmax[i] = lp_alloc((size_t)n * nd->size, sizeof(int32_t));
        return m->argmax[i] ? LP_OK : LP_ENOMEM;
    }
    return LP_OK;
}

/* ---- the activation arena --------------------------------------------------
 *
 * A forward pass needs every layer's output only from the node that
 * computes it to the last node that reads it (to the end of the pass with
 * LP_RUN_GRAD or LP_RUN_KEEP_ALL, for backward, or when a hook keeps it).
 * Outputs whose lifetimes do not overlap can share bytes, so one block,
 * the arena, holds them all at offsets planned once per (batch, keep
 * requests): largest output first, each at the lowest offset clear of the
 * already placed outputs it lives alongside (first fit by size, the
 * strategy of TFLite's and ggml's planners). The arena is kept for the
 * next pass with the same plan: allocating each output anew on every pass
 * cost page faults and kernel zeroing (about 15 % of an evaluate run on
 * ResNet-20) and a lock both threads fight over. lp_model_release frees it.
 */

static size_t add_sat(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

/* Floats of node i's output over n images, rounded up to 64 bytes;
 * SIZE_MAX when that does not fit. */
static size_t out_floats(const lp_model *m, int i, int n)
{
    size_t count;
    if (!lp_mul_size((size_t)n, m->nodes[i].size, &count) || count > SIZE_MAX / 8)
        return SIZE_MAX;
    return (count + 15) & ~(size_t)15;
}

/* The last node of the pass that needs node i's output. */
static int lifetime_end(const lp_model *m, int i, int keep_all)
{
    int u = m->nodes[i].last_use;
    return (keep_all || m->keep[i] || u <= i) ? m->n_nodes : u;
}

static int plan_matches(const lp_model *m, int n, int keep_all)
{
    if (m->arena == NULL || m->plan_batch != n || m->plan_keep_all != keep_all)
        return 0;
    for (int i = 0; i < m->n_nodes; i++)
        if ((m->keep[i] != 0) != m->plan_keep[i])
            return 0;
    return 1;
}

typedef struct {
    size_t floats;
    int node;
} plan_item;

static int by_size_desc(const void *pa, const void *pb)
{
    const plan_item *a = pa, *b = pb;
    if (a->floats != b->floats)
        return a->floats < b->floats ? 1 : -1;
    return a->node - b->node;
}

/* m->act_off for every output and the arena's size, in floats. */
static int plan_offsets(lp_model *m, int n, int keep_all, size_t *total)
{
    int nn = m->n_nodes, placed_n = 0, rc = LP_OK;
    plan_item *items = lp_alloc((size_t)nn, sizeof *items);
    size_t *floats = lp_alloc((size_t)nn, sizeof *floats);
    int *placed = lp_alloc((size_t)nn, sizeof *placed); /* by offset */
    *total = 0;
    if (items == NULL || floats == NULL || placed == NULL) {
        rc = LP_ENOMEM;
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        items[i].floats = floats[i] = out_floats(m, i, n);
        items[i].node = i;
        if (items[i].floats == SIZE_MAX) {
            rc = lp_set_error(LP_ENOMEM, "a forward pass of %d images: layer %s is too large",
                              n, m->nodes[i].name);
            goto done;
        }
    }
    qsort(items, (size_t)nn, sizeof *items, by_size_desc);
    for (int t = 0; t < nn; t++) {
        int i = items[t].node, end_i = lifetime_end(m, i, keep_all), at = placed_n;
        size_t off = 0, size = floats[i], end;
        for (int k = 0; k < placed_n; k++) {
            int j = placed[k];
            size_t end_j = add_sat(m->act_off[j], floats[j]);
            if (j > end_i || lifetime_end(m, j, keep_all) < i)
                continue; /* never alive at the same time */
            if (add_sat(off, size) <= m->act_off[j])
                break; /* fits in the gap below j (placed is sorted by offset) */
            if (end_j > off)
                off = end_j;
        }
        m->act_off[i] = off;
        end = add_sat(off, size);
        if (end > *total)
            *total = end;
        while (at > 0 && m->act_off[placed[at - 1]] > off)
            at--;
        memmove(placed + at + 1, placed + at, (size_t)(placed_n - at) * sizeof *placed);
        placed[at] = i;
        placed_n++;
    }
    if (*total > SIZE_MAX / sizeof(float) - 64)
        rc = lp_set_error(LP_ENOMEM, "a forward pass of %d images is too large", n);
done:
    lp_free(items);
    lp_free(floats);
    lp_free(placed);
    return rc;
}

/* Bytes of the max-pool choices a pass keeps for backward. */
static size_t argmax_bytes(const lp_model *m, int n, unsigned flags)
{
    size_t total = 0;
    if (!(flags & LP_RUN_GRAD))
        return 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].kind == LP_NODE_MAXPOOL) {
            size_t f = out_floats(m, i, n);
            total = add_sat(total, f == SIZE_MAX ? SIZE_MAX : f * sizeof(int32_t) + 64);
        }
    return total;
}

/* The arena for a pass of n images (reusing the last one when the plan
 * is the same); a pass over the memory limit is refused here, before
 * any of its allocations. */
static int prepare_arena(lp_model *m, int n, unsigned flags)
{
    int keep_all = (flags & (LP_RUN_GRAD | LP_RUN_KEEP_ALL)) != 0;
    size_t total = 0, need;
    char what[64];
    snprintf(what, sizeof what, "a forward pass of %d image%s", n, n == 1 ? "" : "s");
    if (plan_matches(m, n, keep_all))
        return lp_memory_check(argmax_bytes(m, n, flags), what);
    lp_free(m->arena);
    m->arena = NULL;
    m->plan_batch = 0;
    LP_TRY(plan_offsets(m, n, keep_all, &total));
    need = add_sat(total * sizeof(float) + 128, argmax_bytes(m, n, flags));
    LP_TRY(lp_memory_check(need, what));
    m->arena = lp_alloc(total, sizeof(float));
    if (m->arena == NULL)
        return LP_ENOMEM;
    m->arena_floats = total;
    m->plan_batch = n;
    m->plan_keep_all = keep_all;
    for (int i = 0; i < m->n_nodes; i++)
        m->plan_keep[i] = m->keep[i] != 0;
    return LP_OK;
}

int lp_model_forward(lp_model *m, const float *input, int n, float *output,
                     unsigned flags)
{
    int last;
    if (m == NULL || input == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_forward: NULL argument");
    if (n < 1 || n > LP_MAX_BATCH)
        return lp_set_error(LP_EINVAL, "batch size %d outside [1, %d]", n,
                            LP_MAX_BATCH);
    drop_pass(m);
    {
        int rc = prepare_arena(m, n, flags);
        if (rc != LP_OK) {
            lp_model_release(m);
            return rc;
        }
    }
    m->batch = n;
    m->flags = flags;
    last = m->n_nodes - 1;
    m->act[0] = m->arena + m->act_off[0];
    memcpy(m->act[0], input, (size_t)n * m->nodes[0].size * sizeof(float));
    if (m->hook_mask[0] & LP_HOOK_FORWARD) {
        int rc = lp_hooks_run(m, 0, LP_HOOK_FORWARD);
        if (rc != LP_OK) {
            lp_model_release(m);
            return rc;
        }
    }
    for (int i = 1; i <= last; i++) {
        int rc;
        m->act[i] = m->arena + m->act_off[i];
        rc = alloc_aux(m, i, n);
        if (rc == LP_OK)
            rc = lp_node_forward(m, i, n);
        if (rc == LP_OK && (m->hook_mask[i] & LP_HOOK_FORWARD))
            rc = lp_hooks_run(m, i, LP_HOOK_FORWARD);
        if (rc != LP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lp_last_error());
            lp_model_release(m);
            return lp_set_error(rc, "layer %s: %s", m->nodes[i].name, msg);
        }
        if (flags & (LP_RUN_GRAD | LP_RUN_KEEP_ALL))
            continue;
        /* inference: what no later node reads and no hook keeps is gone
         * (its bytes may hold a later output) */
        for (int k = 0; k < 2; k++) {
            int j = m->nodes[i].in[k];
            if (j >= 0 && m->nodes[j].last_use == i && !m->keep[j])
                m->act[j] = NULL;
        }
    }
    if (output != NULL)
        memcpy(output, m->act[last], (size_t)n * m->nodes[last].size * sizeof(float));
    return LP_OK;
}

int lp_model_backward_from(lp_model *m, int layer, const float *dlayer,
                           int stop, float *dinput)
{
    int n;
    if (m == NULL || dlayer == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_backward: NULL argument");
    if (m->batch == 0 || !(m->flags & LP_RUN_GRAD))
        return lp_set_error(LP_EINVAL,
                            "lp_model_backward needs a forward with LP_RUN_GRAD");
    if (layer < 0 || layer >= m->n_nodes || stop < 0 || stop > layer)
        return lp_set_error(LP_EINVAL, "backward from layer %d down to %d: out of range",
                            layer, stop);
    n = m->batch;
    for (int i = 0; i < m->n_nodes; i++)
        free_slot(&m->grad[i]);
    LP_TRY(alloc_floats(&m->grad[layer], n, m->nodes[layer].size, 0));
    memcpy(m->grad[layer], dlayer, (size_t)n * m->nodes[layer].size * sizeof(float));
    for (int i = layer; i > stop; i--) {
        const lp_node *nd = &m->nodes[i];
        int rc = LP_OK;
        if (m->grad[i] == NULL)
            continue; /* nothing flows back through this node */
        if (m->hook_mask[i] & LP_HOOK_BACKWARD)
            rc = lp_hooks_run(m, i, LP_HOOK_BACKWARD);
        for (int k = 0; k < 2 && rc == LP_OK; k++) {
            int j = nd->in[k];
            if (j >= 0 && m->grad[j] == NULL)
                rc = alloc_floats(&m->grad[j], n, m->nodes[j].size, 1);
        }
        if (rc == LP_OK)
            rc = m->rules[i] ? lp_hooks_backward_rule(m, i, n) : lp_node_backward(m, i, n);
        if (rc != LP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lp_last_error());
            return lp_set_error(rc, "backward of layer %s: %s", nd->name, msg);
        }
        if (!(m->flags & LP_RUN_KEEP_ALL) && !m->keep[i])
            free_slot(&m->grad[i]);
    }
    if (m->grad[stop] != NULL && (m->hook_mask[stop] & LP_HOOK_BACKWARD))
        LP_TRY(lp_hooks_run(m, stop, LP_HOOK_BACKWARD));
    if (stop == 0 && dinput != NULL) {
        size_t count = (size_t)n * m->nodes[0].size;
        if (m->grad[0] != NULL)
            memcpy(dinput, m->grad[0], count * sizeof(float));
        else
            memset(dinput, 0, count * sizeof(float));
    }
    return LP_OK;
}

int lp_model_backward(lp_model *m, const float *doutput, float *dinput)
{
    if (m == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_backward: NULL argument");
    return lp_model_backward_from(m, m->n_nodes - 1, doutput, 0, dinput);
}

const float *lp_model_activation(const lp_model *m, int layer)
{
    if (m == NULL || layer < 0 || layer >= m->n_nodes)
        return NULL;
    return m->act[layer];
}

const float *lp_model_gradient(const lp_model *m, int layer)
{
    if (m == NULL || layer < 0 || layer >= m->n_nodes)
        return NULL;
    return m->grad[layer];
}

int lp_model_layer_params(const lp_model *m, int layer, lp_layer_params *p)
{
    const lp_node *nd;
    if (m == NULL || p == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_layer_params: NULL argument");
    if (layer < 0 || layer >= m->n_nodes)
        return lp_set_error(LP_EINVAL, "layer %d out of range", layer);
    nd = &m->nodes[layer];
    memset(p, 0, sizeof *p);
    p->weight = nd->w;
    p->bias = nd->b;
    switch (nd->kind) {
    case LP_NODE_LINEAR:
        p->out_features = nd->p.linear.out_f;
        p->in_features = nd->p.linear.in_f;
        break;
    case LP_NODE_CONV:
        p->out_features = nd->p.conv.c_out;
        p->in_features = nd->p.conv.c_in / nd->p.conv.groups * nd->p.conv.k_h * nd->p.conv.k_w;
        break;
    case LP_NODE_ATTN_SCORES:
    case LP_NODE_ATTN_APPLY:
        p->heads = nd->p.attn.heads;
        p->head_dim = nd->p.attn.head_dim;
        p->scale = nd->p.attn.scale;
        break;
    case LP_NODE_TOKEN_MEAN:
        p->first_token = nd->p.first_token;
        break;
    default:
        break;
    }
    return LP_OK;
}
