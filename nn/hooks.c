/*
 * hooks.c — callbacks on the forward outputs and backward gradients of
 * named layers, and replaced backward rules (loupe_nn.h explains the
 * contract). The executor (model.c) tests one byte per node and calls
 * lp_hooks_run only for hooked nodes.
 */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lp_hooks_init(lp_model *m)
{
    m->hook_mask = lp_calloc((size_t)m->n_nodes, 1);
    m->keep = lp_calloc((size_t)m->n_nodes, sizeof *m->keep);
    m->rules = lp_calloc((size_t)m->n_nodes, sizeof *m->rules);
    m->rule_user = lp_calloc((size_t)m->n_nodes, sizeof *m->rule_user);
    if (!m->hook_mask || !m->keep || !m->rules || !m->rule_user)
        return lp_set_error(LP_ENOMEM, "out of memory for hooks");
    return LP_OK;
}

void lp_hooks_free(lp_model *m)
{
    lp_free(m->hooks);
    lp_free(m->hook_mask);
    lp_free(m->keep);
    lp_free(m->rules);
    lp_free(m->rule_user);
}

/* ---- patterns ----------------------------------------------------------- */

/* Glob match where '*' matches any run of characters (dots included). */
static int glob(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (p[1] == '*')
                p++;
            if (p[1] == '\0')
                return 1;
            for (; *s; s++)
                if (glob(p + 1, s))
                    return 1;
            return 0;
        }
        if (*s != *p)
            return 0;
    }
    return *s == '\0';
}

static int node_matches(const lp_model *m, int i, const char *pattern)
{
    const lp_node *nd = &m->nodes[i];
    if (!strncmp(pattern, "kind:", 5))
        return !strcmp(pattern + 5, lp_node_kind_name(nd->kind));
    if (glob(pattern, nd->name))
        return 1;
    for (int a = 0; a < nd->n_alias; a++)
        if (glob(pattern, nd->alias[a]))
            return 1;
    return 0;
}

int lp_model_match_layers(const lp_model *m, const char *pattern, int *layers,
                          int cap)
{
    int count = 0;
    if (m == NULL || pattern == NULL)
        return 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (node_matches(m, i, pattern)) {
            if (count < cap && layers != NULL)
                layers[count] = i;
            count++;
        }
    return count;
}

/* "<attn>.q|k|v" of a scores node s: view 1..3 of its qkv input. */
static void view_name(const lp_model *m, int s, int view, char *buf, size_t cap)
{
    const char *name = m->nodes[s].name;
    size_t len = strlen(name) - strlen(".scores");
    snprintf(buf, cap, "%.*s.%c", (int)len, name, "qkv"[view - 1]);
}

/* ---- attaching ------------------------------------------------------------ */

static int push_hook(lp_model *m, int node, int view, const char *name,
                     unsigned when, lp_hook_fn fn, void *user, int handle)
{
    lp_hook_entry *e;
    if (m->n_hooks == m->cap_hooks) {
        int cap = m->cap_hooks ? 2 * m->cap_hooks : 16;
        lp_hook_entry *h = lp_realloc(m->hooks, (size_t)cap, sizeof *h);
        if (h == NULL)
            return lp_set_error(LP_ENOMEM, "out of memory for hooks");
        m->hooks = h;
        m->cap_hooks = cap;
    }
    e = &m->hooks[m->n_hooks++];
    e->handle = handle;
    e->node = node;
    e->view = view;
    e->when = when;
    e->fn = fn;
    e->user = user;
    snprintf(e->name, sizeof e->name, "%s", name);
    m->hook_mask[node] |= (unsigned char)(when & (LP_HOOK_FORWARD | LP_HOOK_BACKWARD));
    if (when & LP_HOOK_KEEP)
        m->keep[node]++;
    return LP_OK;
}

static void recompute_mask(lp_model *m)
{
    memset(m->hook_mask, 0, (size_t)m->n_nodes);
    for (int h = 0; h < m->n_hooks; h++)
        m->hook_mask[m->hooks[h].node] |=
            (unsigned char)(m->hooks[h].when & (LP_HOOK_FORWARD | LP_HOOK_BACKWARD));
}

/* A failed lp_model_add_hook takes back the hooks it had attached, so the
 * caller never runs with half of a pattern hooked. Keeps the error. */
static int undo_add(lp_model *m, int handle, int rc)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", lp_last_error());
    (void)lp_model_remove_hook(m, handle);
    return lp_set_error(rc, "%s", msg);
}

int lp_model_add_hook(lp_model *m, const char *pattern, unsigned when,
                      lp_hook_fn fn, void *user)
{
    int rc;
    int handle, found = 0;
    if (m == NULL || pattern == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_add_hook: NULL argument");
    if (fn == NULL && !(when & LP_HOOK_KEEP))
        return lp_set_error(LP_EINVAL, "lp_model_add_hook: no callback and no LP_HOOK_KEEP");
    if (fn == NULL)
        when &= LP_HOOK_KEEP; /* a pure keep request */
    handle = m->next_handle++;
    for (int i = 0; i < m->n_nodes; i++)
        if (node_matches(m, i, pattern)) {
            rc = push_hook(m, i, 0, m->nodes[i].name, when, fn, user, handle);
            if (rc != LP_OK)
                return undo_add(m, handle, rc);
            found++;
        }
    /* q, k, v views of every attention */
    for (int s = 0; s < m->n_nodes && strncmp(pattern, "kind:", 5); s++) {
        if (m->nodes[s].kind != LP_NODE_ATTN_SCORES)
            continue;
        for (int v = 1; v <= 3; v++) {
            char name[LP_NODE_NAME + 8];
            view_name(m, s, v, name, sizeof name);
            if (glob(pattern, name)) {
                rc = push_hook(m, m->nodes[s].in[0], v, name, when, fn, user, handle);
                if (rc != LP_OK)
                    return undo_add(m, handle, rc);
                found++;
            }
        }
    }
    if (!found) {
        m->next_handle--;
        (void)lp_model_find_layer(m, pattern); /* sets a message with suggestions */
        return lp_set_error(LP_ENOTFOUND, "no layer matches '%s' (%s)", pattern,
                            lp_last_error());
    }
    return handle;
}

int lp_model_remove_hook(lp_model *m, int handle)
{
    int kept = 0, found = 0;
    if (m == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_remove_hook: NULL model");
    for (int h = 0; h < m->n_hooks; h++) {
        if (m->hooks[h].handle == handle) {
            if (m->hooks[h].when & LP_HOOK_KEEP)
                m->keep[m->hooks[h].node]--;
            found = 1;
            continue;
        }
        m->hooks[kept++] = m->hooks[h];
    }
    m->n_hooks = kept;
    recompute_mask(m);
    return found ? LP_OK : lp_set_error(LP_ENOTFOUND, "no hook with handle %d", handle);
}

void lp_model_clear_hooks(lp_model *m)
{
    if (m == NULL)
        return;
    m->n_hooks = 0;
    memset(m->hook_mask, 0, (size_t)m->n_nodes);
    memset(m->keep, 0, (size_t)m->n_nodes * sizeof *m->keep);
    memset(m->rules, 0, (size_t)m->n_nodes * sizeof *m->rules);
}

/* ---- running ------------------------------------------------------------- */

int lp_hooks_run(lp_model *m, int i, unsigned when)
{
    const lp_node *nd = &m->nodes[i];
    float *base = (when == LP_HOOK_FORWARD) ? m->act[i] : m->grad[i];
    if (base == NULL)
        return LP_OK;
    for (int h = 0; h < m->n_hooks; h++) {
        const lp_hook_entry *e = &m->hooks[h];
        lp_hook_tensor t;
        int rc;
        if (e->node != i || !(e->when & when) || e->fn == NULL)
            continue;
        memset(&t, 0, sizeof t);
        t.model = m;
        t.layer = i;
        t.name = e->name;
        t.when = when;
        t.n = m->batch;
        t.ndim = nd->ndim;
        memcpy(t.dims, nd->dims, sizeof t.dims);
        t.image_stride = nd->size;
        t.row_stride = nd->dims[nd->ndim - 1];
        t.data = base;
        if (e->view > 0) { /* q, k or v: a third of the last dimension */
            int inner = nd->dims[nd->ndim - 1] / 3;
            t.dims[nd->ndim - 1] = inner;
            t.data = base + (size_t)(e->view - 1) * inner;
        }
        rc = e->fn(&t, e->user);
        if (rc != LP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lp_last_error());
            return lp_set_error(rc, "hook on %s: %s", e->name, msg);
        }
    }
    return LP_OK;
}

int lp_model_set_backward_rule(lp_model *m, const char *pattern,
                               lp_backward_rule rule, void *user)
{
    int count = 0;
    if (m == NULL || pattern == NULL)
        return lp_set_error(LP_EINVAL, "lp_model_set_backward_rule: NULL argument");
    for (int i = 1; i < m->n_nodes; i++)
        if (node_matches(m, i, pattern)) {
            m->rules[i] = rule;
            m->rule_user[i] = user;
            count++;
        }
    if (count == 0) {
        if (strncmp(pattern, "kind:", 5))
            (void)lp_model_find_layer(m, pattern);
        else
            lp_set_error(LP_ENOTFOUND, "the model has no layer of that kind");
        return lp_set_error(LP_ENOTFOUND, "no layer matches '%s' (%s)", pattern,
                            lp_last_error());
    }
    return count;
}

int lp_hooks_backward_rule(lp_model *m, int i, int n)
{
    const lp_node *nd = &m->nodes[i];
    lp_backward_args a;
    memset(&a, 0, sizeof a);
    a.model = m;
    a.layer = i;
    a.n = n;
    a.y = m->act[i];
    a.dy = m->grad[i];
    a.y_count = (size_t)n * nd->size;
    if (nd->in[0] >= 0) {
        a.x = m->act[nd->in[0]];
        a.dx = m->grad[nd->in[0]];
        a.x_count = (size_t)n * m->nodes[nd->in[0]].size;
    }
    if (nd->in[1] >= 0) {
        a.x2 = m->act[nd->in[1]];
        a.dx2 = m->grad[nd->in[1]];
    }
    return m->rules[i](&a, m->rule_user[i]);
}
