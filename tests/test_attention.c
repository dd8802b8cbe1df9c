/*
 * test_attention.c — multi-head attention (lp_attention_*) against a naive
 * double reference (forward) and central finite differences of it
 * (backward), for three q/k/v layouts:
 *   SEPARATE  three buffers, qkv_stride = heads*head_dim
 *   FUSED     one [n, t, 3*heads*head_dim] buffer (a fused qkv projection),
 *             q, k, v at offsets 0, D, 2D, qkv_stride = 3D
 *   PADDED    three buffers with qkv_stride = D + 3 (padding never touched)
 */
#include "test.h"

#include <limits.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

enum { SEPARATE, FUSED, PADDED };
static const char *layout_name[] = {"separate", "fused", "padded"};

/* ---- layouts ------------------------------------------------------------- */

/* How q, k, v sit in memory: n_arrays buffers of len floats each. */
typedef struct {
    lp_attention_params p;
    int kind, n_arrays, dim; /* dim = heads * head_dim */
    size_t len;
} qkv_layout;

static qkv_layout make_layout(int n, int t, int heads, int hd, int kind)
{
    qkv_layout L;
    L.kind = kind;
    L.dim = heads * hd;
    L.p.n = n;
    L.p.tokens = t;
    L.p.heads = heads;
    L.p.head_dim = hd;
    L.p.qkv_stride = kind == FUSED ? 3 * L.dim
                     : kind == PADDED ? L.dim + 3
                                      : L.dim;
    L.p.scale = (float)(1.0 / sqrt((double)hd));
    L.n_arrays = kind == FUSED ? 1 : 3;
    L.len = (size_t)n * t * L.p.qkv_stride;
    return L;
}

/* q, k, v (or dq, dk, dv) inside the layout's buffers */
static void split(const qkv_layout *L, float *const arr[3], float **q,
                  float **k, float **v)
{
    int fused = L->kind == FUSED;
    *q = arr[0];
    *k = fused ? arr[0] + L->dim : arr[1];
    *v = fused ? arr[0] + 2 * L->dim : arr[2];
}

static void split_d(const qkv_layout *L, double *const arr[3],
                    const double **q, const double **k, const double **v)
{
    int fused = L->kind == FUSED;
    *q = arr[0];
    *k = fused ? arr[0] + L->dim : arr[1];
    *v = fused ? arr[0] + 2 * L->dim : arr[2];
}

static size_t map_size(const lp_attention_params *p)
{
    return (size_t)p->n * p->heads * p->tokens * p->tokens;
}

static size_t out_size(const lp_attention_params *p)
{
    return (size_t)p->n * p->tokens * p->heads * p->head_dim;
}

/* ---- double reference ---------------------------------------------------- */

/* Index of feature h*head_dim + e of token i of item b in q/k/v. */
static size_t qkv_at(const lp_attention_params *p, int b, int i, int h, int e)
{
    return ((size_t)b * p->tokens + i) * p->qkv_stride +
           (size_t)h * p->head_dim + e;
}

static size_t map_at(const lp_attention_params *p, int b, int h, int i, int j)
{
    return (((size_t)b * p->heads + h) * p->tokens + i) * p->tokens + j;
}

static void ref_scores(double *s, const double *q, const double *k,
                       const lp_attention_params *p)
{
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++)
            for (int i = 0; i < p->tokens; i++)
                for (int j = 0; j < p->tokens; j++) {
                    double acc = 0.0;
                    for (int e = 0; e < p->head_dim; e++)
                        acc += q[qkv_at(p, b, i, h, e)] *
                               k[qkv_at(p, b, j, h, e)];
                    s[map_at(p, b, h, i, j)] = (double)p->scale * acc;
                }
}

static void ref_softmax(double *probs, const double *s, size_t rows, int t)
{
    for (size_t r = 0; r < rows; r++) {
        const double *x = s + r * t;
        double *y = probs + r * t, max = x[0], sum = 0.0;
        for (int j = 1; j < t; j++)
            if (x[j] > max)
                max = x[j];
        for (int j = 0; j < t; j++)
            sum += (y[j] = exp(x[j] - max));
        for (int j = 0; j < t; j++)
            y[j] /= sum;
    }
}

static void ref_apply(double *out, const double *probs, const double *v,
                      const lp_attention_params *p)
{
    int d = p->heads * p->head_dim;
    for (int b = 0; b < p->n; b++)
        for (int h = 0; h < p->heads; h++)
            for (int i = 0; i < p->tokens; i++)
                for (int e = 0; e < p->head_dim; e++) {
                    double acc = 0.0;
                    for (int j = 0; j < p->tokens; j++)
                        acc += probs[map_at(p, b, h, i, j)] *
                               v[qkv_at(p, b, j, h, e)];
                    out[((size_t)b * p->tokens + i) * d +
                        (size_t)h * p->head_dim + e] = acc;
                }
}

static double dot(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* ---- test data ----------------------------------------------------------- */

static float *random_floats(lpt_rng *rng, size_t n, double stddev,
                            double **as_double)
{
    float *f = lpt_floats(n);
    lpt_fill_normal(rng, f, n, stddev);
    if (as_double != NULL) {
        *as_double = lpt_doubles(n);
        lpt_to_double(*as_double, f, n);
    }
    return f;
}

static float *nan_floats(size_t n)
{
    float *f = lpt_floats(n);
    for (size_t i = 0; i < n; i++)
        f[i] = NAN;
    return f;
}

/* Random q/k/v buffers of the layout (float and double copies). */
typedef struct {
    float *arr[3];
    double *arr_d[3];
} qkv_data;

static qkv_data random_qkv(lpt_rng *rng, const qkv_layout *L, double stddev)
{
    qkv_data d = {{NULL, NULL, NULL}, {NULL, NULL, NULL}};
    for (int a = 0; a < L->n_arrays; a++)
        d.arr[a] = random_floats(rng, L->len, stddev, &d.arr_d[a]);
    return d;
}

/* ---- forward ------------------------------------------------------------- */

static void check_forward(lpt_rng *rng, int n, int t, int heads, int hd,
                          int kind, double stddev)
{
    qkv_layout L = make_layout(n, t, heads, hd, kind);
    const lp_attention_params *p = &L.p;
    size_t n_map = map_size(p), n_out = out_size(p);
    qkv_data data = random_qkv(rng, &L, stddev);
    float *q, *k, *v;
    const double *qd, *kd, *vd;
    double *s_want = lpt_doubles(n_map), *p_want = lpt_doubles(n_map),
           *o_want = lpt_doubles(n_out);
    float *scores = nan_floats(n_map), *probs = nan_floats(n_map),
          *out = nan_floats(n_out);
    char what[160];
    int len;

    split(&L, data.arr, &q, &k, &v);
    split_d(&L, data.arr_d, &qd, &kd, &vd);
    ref_scores(s_want, qd, kd, p);
    ref_softmax(p_want, s_want, (size_t)n * heads * t, t);
    ref_apply(o_want, p_want, vd, p);
    len = snprintf(what, sizeof what, "n=%d t=%d heads=%d head_dim=%d %s: ",
                   n, t, heads, hd, layout_name[kind]);

    /* all three steps, scores kept */
    CHECK_OK(lp_attention_forward(out, scores, probs, q, k, v, p));
    snprintf(what + len, sizeof what - (size_t)len, "scores");
    CHECK_CLOSE(what, scores, s_want, n_map, FWD_TOL);
    snprintf(what + len, sizeof what - (size_t)len, "probs");
    CHECK_CLOSE(what, probs, p_want, n_map, FWD_TOL);
    snprintf(what + len, sizeof what - (size_t)len, "out");
    CHECK_CLOSE(what, out, o_want, n_out, FWD_TOL);

    /* without a scores buffer (softmax in place in probs) */
    probs = nan_floats(n_map);
    out = nan_floats(n_out);
    CHECK_OK(lp_attention_forward(out, NULL, probs, q, k, v, p));
    snprintf(what + len, sizeof what - (size_t)len, "probs (scores NULL)");
    CHECK_CLOSE(what, probs, p_want, n_map, FWD_TOL);
    snprintf(what + len, sizeof what - (size_t)len, "out (scores NULL)");
    CHECK_CLOSE(what, out, o_want, n_out, FWD_TOL);

    /* the steps separately */
    scores = nan_floats(n_map);
    CHECK_OK(lp_attention_scores_forward(scores, q, k, p));
    snprintf(what + len, sizeof what - (size_t)len, "scores step");
    CHECK_CLOSE(what, scores, s_want, n_map, FWD_TOL);
    out = nan_floats(n_out);
    CHECK_OK(lp_attention_apply_forward(out, probs, v, p));
    snprintf(what + len, sizeof what - (size_t)len, "apply step");
    CHECK_CLOSE(what, out, o_want, n_out, FWD_TOL);
}

/* Every combination of heads {1,4,12}, tokens {1,5,17,50 = 49 patches +
 * cls} and head_dim {1,8,64}; heads=4, head_dim=64 is the MNIST ViT
 * (inner dim 256). */
static void check_forward_grid(int kind, uint64_t seed)
{
    static const int heads_list[] = {1, 4, 12};
    static const int tokens_list[] = {1, 5, 17, 50};
    static const int hd_list[] = {1, 8, 64};
    lpt_rng rng = lpt_rng_seed(seed);
    for (int hi = 0; hi < 3; hi++)
        for (int ti = 0; ti < 4; ti++)
            for (int di = 0; di < 3; di++) {
                int n = tokens_list[ti] * hd_list[di] <= 400 ? 3 : 1;
                check_forward(&rng, n, tokens_list[ti], heads_list[hi],
                              hd_list[di], kind, 1.0);
            }
}

TEST(attention_forward_separate_qkv) { check_forward_grid(SEPARATE, 101); }
TEST(attention_forward_fused_qkv) { check_forward_grid(FUSED, 102); }
TEST(attention_forward_padded_stride) { check_forward_grid(PADDED, 103); }

/* Scores of magnitude ~100: the softmax must subtract the row max. */
TEST(attention_forward_large_scores)
{
    lpt_rng rng = lpt_rng_seed(104);
    check_forward(&rng, 2, 17, 4, 64, FUSED, 4.0);
    check_forward(&rng, 1, 50, 3, 8, SEPARATE, 10.0);
}

/* ---- backward ------------------------------------------------------------ */

/* loss = sum r * (the output of `mode`), as a function of the double inputs */
enum { FULL, SCORES_ONLY, APPLY_ONLY };

typedef struct {
    const qkv_layout *L;
    int mode;
    double *arr[3];   /* q/k/v buffers, perturbed in place by the FD */
    double *probs_in; /* APPLY_ONLY: the probabilities are an input */
    const double *r;  /* projection of the output */
    double *scores, *probs, *out;
} att_ctx;

static double attention_loss(const double *x, void *vctx)
{
    att_ctx *c = vctx;
    const lp_attention_params *p = &c->L->p;
    const double *q, *k, *v;
    (void)x; /* x is one of c's own buffers */
    split_d(c->L, c->arr, &q, &k, &v);
    if (c->mode == APPLY_ONLY) {
        ref_apply(c->out, c->probs_in, v, p);
        return dot(c->r, c->out, out_size(p));
    }
    ref_scores(c->scores, q, k, p);
    if (c->mode == SCORES_ONLY)
        return dot(c->r, c->scores, map_size(p));
    ref_softmax(c->probs, c->scores, (size_t)p->n * p->heads * p->tokens,
                p->tokens);
    ref_apply(c->out, c->probs, v, p);
    return dot(c->r, c->out, out_size(p));
}

static att_ctx make_ctx(const qkv_layout *L, int mode, qkv_data *data,
                        const double *r)
{
    att_ctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.mode = mode;
    for (int a = 0; a < 3; a++)
        c.arr[a] = data->arr_d[a];
    c.r = r;
    c.scores = lpt_doubles(map_size(&L->p));
    c.probs = lpt_doubles(map_size(&L->p));
    c.out = lpt_doubles(out_size(&L->p));
    return c;
}

/* FD gradients of every q/k/v buffer; for each, want = start + fd where
 * `start` is the initial content of the matching gradient buffer. */
typedef struct {
    float *grad[3];  /* gradient buffers (random initial values) */
    float *start[3]; /* copies of the initial values */
    double *fd[3];
} qkv_grads;

static qkv_grads fd_qkv(lpt_rng *rng, att_ctx *c)
{
    qkv_grads g = {{NULL, NULL, NULL}, {NULL, NULL, NULL}, {NULL, NULL, NULL}};
    size_t len = c->L->len;
    for (int a = 0; a < c->L->n_arrays; a++) {
        g.grad[a] = random_floats(rng, len, 1.0, NULL);
        g.start[a] = lpt_floats(len);
        memcpy(g.start[a], g.grad[a], len * sizeof(float));
        g.fd[a] = lpt_doubles(len);
        lpt_fd_gradient(attention_loss, c, c->arr[a], len, FD_EPS, g.fd[a]);
    }
    return g;
}

/* CHECK grad == start + fd (acc = 1) or grad == fd (acc = 0) */
static void check_qkv_grads(const qkv_layout *L, const qkv_grads *g, int acc,
                            const char *what)
{
    char msg[192];
    for (int a = 0; a < L->n_arrays; a++) {
        double *want = lpt_doubles(L->len);
        for (size_t i = 0; i < L->len; i++)
            want[i] = (acc ? (double)g->start[a][i] : 0.0) + g->fd[a][i];
        snprintf(msg, sizeof msg,
                 "%s n=%d t=%d heads=%d head_dim=%d %s buffer %d", what,
                 L->p.n, L->p.tokens, L->p.heads, L->p.head_dim,
                 layout_name[L->kind], a);
        CHECK_CLOSE(msg, g->grad[a], want, L->len, BWD_TOL);
    }
}

static void zero_grads(const qkv_layout *L, qkv_grads *g)
{
    for (int a = 0; a < L->n_arrays; a++)
        memset(g->grad[a], 0, L->len * sizeof(float));
}

/* lp_attention_backward: all three gradients accumulated at once, then
 * each alone (from zero) with the inputs it does not need passed as NULL. */
static void check_backward(int n, int t, int heads, int hd, int kind,
                           uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    qkv_layout L = make_layout(n, t, heads, hd, kind);
    const lp_attention_params *p = &L.p;
    qkv_data data = random_qkv(&rng, &L, 1.0);
    double *r_d;
    float *r = random_floats(&rng, out_size(p), 1.0, &r_d);
    float *probs = lpt_floats(map_size(p)), *out = lpt_floats(out_size(p));
    float *q, *k, *v, *dq, *dk, *dv;
    att_ctx c = make_ctx(&L, FULL, &data, r_d);
    qkv_grads g = fd_qkv(&rng, &c);

    split(&L, data.arr, &q, &k, &v);
    split(&L, g.grad, &dq, &dk, &dv);
    CHECK_OK(lp_attention_forward(out, NULL, probs, q, k, v, p));
    CHECK_OK(lp_attention_backward(dq, dk, dv, r, q, k, v, probs, p));
    check_qkv_grads(&L, &g, 1, "attention backward");

    zero_grads(&L, &g);
    CHECK_OK(lp_attention_backward(dq, NULL, NULL, r, NULL, k, v, probs, p));
    CHECK_OK(lp_attention_backward(NULL, dk, NULL, r, q, NULL, v, probs, p));
    CHECK_OK(lp_attention_backward(NULL, NULL, dv, r, NULL, NULL, NULL, probs,
                                   p));
    CHECK_OK(lp_attention_backward(NULL, NULL, NULL, r, NULL, NULL, NULL,
                                   NULL, p));
    check_qkv_grads(&L, &g, 0, "attention backward, one at a time");
}

/* Backward of the two GEMM steps separately. */
static void check_step_backward(int n, int t, int heads, int hd, int kind,
                                uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    qkv_layout L = make_layout(n, t, heads, hd, kind);
    const lp_attention_params *p = &L.p;
    size_t n_map = map_size(p);
    qkv_data data = random_qkv(&rng, &L, 1.0);
    float *q, *k, *v, *dq, *dk, *dv;
    double *r_d, *probs_d, *dprobs_want = lpt_doubles(n_map);
    char what[160];

    split(&L, data.arr, &q, &k, &v);

    /* scores = scale * Q K^T: dq, dk (dv untouched) */
    {
        float *r = random_floats(&rng, n_map, 1.0, &r_d);
        att_ctx c = make_ctx(&L, SCORES_ONLY, &data, r_d);
        qkv_grads g = fd_qkv(&rng, &c);
        split(&L, g.grad, &dq, &dk, &dv);
        CHECK_OK(lp_attention_scores_backward(dq, dk, r, q, k, p));
        check_qkv_grads(&L, &g, 1, "scores backward");
        zero_grads(&L, &g);
        CHECK_OK(lp_attention_scores_backward(dq, NULL, r, NULL, k, p));
        CHECK_OK(lp_attention_scores_backward(NULL, dk, r, q, NULL, p));
        CHECK_OK(lp_attention_scores_backward(NULL, NULL, r, NULL, NULL, p));
        check_qkv_grads(&L, &g, 0, "scores backward, one at a time");
    }

    /* out = P V with P an arbitrary input: dprobs, dv (dq, dk untouched) */
    {
        float *r = random_floats(&rng, out_size(p), 1.0, &r_d);
        float *probs = lpt_floats(n_map);
        float *dprobs = random_floats(&rng, n_map, 1.0, NULL);
        att_ctx c = make_ctx(&L, APPLY_ONLY, &data, r_d);
        qkv_grads g;
        lpt_fill_uniform(&rng, probs, n_map, 0.0, 1.0);
        probs_d = lpt_doubles(n_map);
        lpt_to_double(probs_d, probs, n_map);
        c.probs_in = probs_d;
        g = fd_qkv(&rng, &c);
        lpt_fd_gradient(attention_loss, &c, probs_d, n_map, FD_EPS,
                        dprobs_want);
        for (size_t i = 0; i < n_map; i++)
            dprobs_want[i] += dprobs[i];

        split(&L, g.grad, &dq, &dk, &dv);
        CHECK_OK(lp_attention_apply_backward(dprobs, dv, r, probs, v, p));
        check_qkv_grads(&L, &g, 1, "apply backward");
        snprintf(what, sizeof what,
                 "apply backward dprobs n=%d t=%d heads=%d head_dim=%d %s", n,
                 t, heads, hd, layout_name[kind]);
        CHECK_CLOSE(what, dprobs, dprobs_want, n_map, BWD_TOL);

        zero_grads(&L, &g);
        memset(dprobs, 0, n_map * sizeof(float));
        CHECK_OK(lp_attention_apply_backward(NULL, dv, r, probs, NULL, p));
        CHECK_OK(lp_attention_apply_backward(dprobs, NULL, r, NULL, v, p));
        CHECK_OK(lp_attention_apply_backward(NULL, NULL, r, NULL, NULL, p));
        check_qkv_grads(&L, &g, 0, "apply backward, one at a time");
        lpt_fd_gradient(attention_loss, &c, probs_d, n_map, FD_EPS,
                        dprobs_want);
        CHECK_CLOSE("apply backward dprobs alone", dprobs, dprobs_want, n_map,
                    BWD_TOL);
    }
}

static const int bwd_shapes[][4] = {
    /* n, tokens, heads, head_dim */
    {1, 1, 1, 1}, {2, 3, 2, 3}, {1, 5, 3, 2}, {2, 4, 1, 5}, {1, 6, 4, 2}};
#define N_BWD_SHAPES (sizeof bwd_shapes / sizeof bwd_shapes[0])

TEST(attention_backward_finite_differences)
{
    for (int kind = SEPARATE; kind <= PADDED; kind++)
        for (size_t s = 0; s < N_BWD_SHAPES; s++)
            check_backward(bwd_shapes[s][0], bwd_shapes[s][1],
                           bwd_shapes[s][2], bwd_shapes[s][3], kind,
                           200 + 10 * (uint64_t)kind + s);
}

TEST(attention_step_backward_finite_differences)
{
    for (int kind = SEPARATE; kind <= PADDED; kind++)
        for (size_t s = 0; s < N_BWD_SHAPES; s++)
            check_step_backward(bwd_shapes[s][0], bwd_shapes[s][1],
                                bwd_shapes[s][2], bwd_shapes[s][3], kind,
                                300 + 10 * (uint64_t)kind + s);
}

/* Forward and backward are bit-identical for any thread count. */
TEST(attention_thread_count_independent)
{
    lpt_rng rng = lpt_rng_seed(400);
    qkv_layout L = make_layout(2, 50, 4, 64, FUSED);
    const lp_attention_params *p = &L.p;
    size_t n_map = map_size(p), n_out = out_size(p);
    qkv_data data = random_qkv(&rng, &L, 1.0);
    float *dout = random_floats(&rng, n_out, 1.0, NULL);
    float *q, *k, *v, *dq, *dk, *dv, *out[2], *probs[2];
    float *grad[2][3] = {{NULL, NULL, NULL}, {NULL, NULL, NULL}};
    int saved = lp_get_num_threads();
    split(&L, data.arr, &q, &k, &v);
    for (int run = 0; run < 2; run++) {
        out[run] = lpt_floats(n_out);
        probs[run] = lpt_floats(n_map);
        grad[run][0] = lpt_floats(L.len);
        split(&L, grad[run], &dq, &dk, &dv);
        lp_set_num_threads(run == 0 ? 1 : 4);
        CHECK_OK(lp_attention_forward(out[run], NULL, probs[run], q, k, v, p));
        CHECK_OK(lp_attention_backward(dq, dk, dv, dout, q, k, v, probs[run],
                                       p));
    }
    lp_set_num_threads(saved);
    CHECK(memcmp(out[0], out[1], n_out * sizeof(float)) == 0);
    CHECK(memcmp(probs[0], probs[1], n_map * sizeof(float)) == 0);
    CHECK(memcmp(grad[0][0], grad[1][0], L.len * sizeof(float)) == 0);
}

/* ---- bad input ----------------------------------------------------------- */

TEST(attention_bad_input)
{
    float x[64] = {0};
    lp_attention_params ok = {1, 2, 2, 2, 4, 0.5f}, p;
    CHECK_OK(lp_attention_forward(x, NULL, x + 16, x + 32, x + 40, x + 48,
                                  &ok));

    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, NULL));
    p = ok; p.n = 0;
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, &p));
    p = ok; p.tokens = -1;
    CHECK_FAILS(lp_attention_scores_forward(x, x, x, &p));
    p = ok; p.heads = 0;
    CHECK_FAILS(lp_attention_apply_forward(x, x, x, &p));
    p = ok; p.head_dim = -2;
    CHECK_FAILS(lp_attention_backward(x, x, x, x, x, x, x, x, &p));
    p = ok; p.qkv_stride = 3; /* < heads*head_dim */
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, &p));
    CHECK_FAILS(lp_attention_scores_backward(x, x, x, x, x, &p));
    p = ok; p.qkv_stride = -4;
    CHECK_FAILS(lp_attention_apply_backward(x, x, x, x, x, &p));
    p = ok; p.heads = INT_MAX; p.head_dim = 4; p.qkv_stride = INT_MAX;
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, &p));
    p = ok; p.n = INT_MAX; p.tokens = INT_MAX;
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, &p));
    p = ok; p.n = 1 << 20; p.tokens = 1 << 20; p.qkv_stride = 4;
    CHECK_FAILS(lp_attention_scores_forward(x, x, x, &p)); /* t*t overflows */
    p = ok; p.scale = NAN;
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, x, &p));

    /* NULL required pointers */
    CHECK_FAILS(lp_attention_forward(NULL, NULL, x, x, x, x, &ok));
    CHECK_FAILS(lp_attention_forward(x, x, NULL, x, x, x, &ok));
    CHECK_FAILS(lp_attention_forward(x, NULL, x, NULL, x, x, &ok));
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_forward(x, NULL, x, x, x, NULL, &ok));
    CHECK_FAILS(lp_attention_scores_forward(NULL, x, x, &ok));
    CHECK_FAILS(lp_attention_scores_forward(x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_apply_forward(x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_apply_forward(x, x, NULL, &ok));
    CHECK_FAILS(lp_attention_apply_backward(x, x, NULL, x, x, &ok));
    CHECK_FAILS(lp_attention_apply_backward(x, NULL, x, x, NULL, &ok));
    CHECK_FAILS(lp_attention_apply_backward(NULL, x, x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_scores_backward(x, x, NULL, x, x, &ok));
    CHECK_FAILS(lp_attention_scores_backward(x, NULL, x, x, NULL, &ok));
    CHECK_FAILS(lp_attention_scores_backward(NULL, x, x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_backward(x, x, x, NULL, x, x, x, x, &ok));
    CHECK_FAILS(lp_attention_backward(x, x, x, x, x, x, x, NULL, &ok));
    CHECK_FAILS(lp_attention_backward(x, NULL, NULL, x, x, x, NULL, x, &ok));
    CHECK_FAILS(lp_attention_backward(x, NULL, NULL, x, x, NULL, x, x, &ok));
    CHECK_FAILS(lp_attention_backward(NULL, x, NULL, x, NULL, x, x, x, &ok));
}
