/*
 * test_linear.c — lp_linear_*, lp_matmul_*, lp_bmm_* against naive double
 * references (forward) and central finite differences of those references
 * (backward).
 */
#include "test.h"

#include <limits.h>
#include <string.h>

static const int k_rows[] = {1, 3, 7, 17, 33};
static const int k_features[] = {1, 5, 17, 64, 100};
#define N_SHAPES 5

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_EPS 1e-6

/* ---- double references -------------------------------------------------- */

/* out[rows, out_f] = in[rows, in_f] w[out_f, in_f]^T + b (b may be NULL) */
static void ref_linear(double *out, const double *in, const double *w,
                       const double *b, int rows, int in_f, int out_f)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_f; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in_f; i++)
                acc += in[(size_t)r * in_f + i] * w[(size_t)o * in_f + i];
            out[(size_t)r * out_f + o] = acc;
        }
}

/* Element (i, p) of op(x) where op(x) is rows x cols; x is stored rows x
 * cols, or cols x rows when trans. */
static double op_at(const double *x, int trans, int rows, int cols, int i,
                    int p)
{
    return trans ? x[(size_t)p * rows + i] : x[(size_t)i * cols + p];
}

/* c_i = op(a_i) op(b_i) for each batch item (matmul is batch 1, no trans) */
static void ref_bmm(double *c, const double *a, const double *b, int batch,
                    int m, int k, int n, int trans_a, int trans_b)
{
    for (int bi = 0; bi < batch; bi++) {
        const double *ai = a + (size_t)bi * m * k, *bb = b + (size_t)bi * k * n;
        double *ci = c + (size_t)bi * m * n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0.0;
                for (int p = 0; p < k; p++)
                    acc += op_at(ai, trans_a, m, k, i, p) *
                           op_at(bb, trans_b, k, n, p, j);
                ci[(size_t)i * n + j] = acc;
            }
    }
}

static double dot(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* Random float data and its exact double copy. */
static float *random_floats(lpt_rng *rng, size_t n, double **as_double)
{
    float *f = lpt_floats(n);
    lpt_fill_normal(rng, f, n, 1.0);
    if (as_double != NULL) {
        *as_double = lpt_doubles(n);
        lpt_to_double(*as_double, f, n);
    }
    return f;
}

/* want[i] = base[i] + grad[i]: what an accumulating backward must produce
 * when the gradient buffer started at `base`. */
static double *plus(const float *base, const double *grad, size_t n)
{
    double *w = lpt_doubles(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (double)base[i] + grad[i];
    return w;
}

static float *copy_floats(const float *x, size_t n)
{
    float *c = lpt_floats(n);
    memcpy(c, x, n * sizeof(float));
    return c;
}

/* ---- linear -------------------------------------------------------------- */

TEST(linear_forward_odd_shapes)
{
    lpt_rng rng = lpt_rng_seed(1);
    size_t max_in = 33 * 100, max_w = 100 * 100, max_out = 33 * 100;
    double *in_d, *w_d, *b_d;
    float *in = random_floats(&rng, max_in, &in_d);
    float *w = random_floats(&rng, max_w, &w_d);
    float *b = random_floats(&rng, 100, &b_d);
    float *out = lpt_floats(max_out);
    double *want = lpt_doubles(max_out);
    char what[96];

    for (int ri = 0; ri < N_SHAPES; ri++)
        for (int ii = 0; ii < N_SHAPES; ii++)
            for (int oi = 0; oi < N_SHAPES; oi++)
                for (int bias = 0; bias < 2; bias++) {
                    int rows = k_rows[ri], in_f = k_features[ii],
                        out_f = k_features[oi];
                    size_t n_out = (size_t)rows * out_f;
                    /* the output must be written, not read */
                    for (size_t i = 0; i < n_out; i++)
                        out[i] = NAN;
                    CHECK_OK(lp_linear_forward(out, in, w, bias ? b : NULL,
                                               rows, in_f, out_f));
                    ref_linear(want, in_d, w_d, bias ? b_d : NULL, rows, in_f,
                               out_f);
                    snprintf(what, sizeof what,
                             "linear rows=%d in=%d out=%d bias=%d", rows,
                             in_f, out_f, bias);
                    CHECK_CLOSE(what, out, want, n_out, FWD_TOL);
                }
}

typedef struct {
    double *in, *w, *b;
    const double *r; /* projection of the output: loss = sum r * out */
    double *out;     /* scratch */
    int rows, in_f, out_f;
} linear_ctx;

/* x is one of ctx's own arrays, perturbed in place by lpt_fd_gradient */
static double linear_loss(const double *x, void *vctx)
{
    linear_ctx *c = vctx;
    (void)x;
    ref_linear(c->out, c->in, c->w, c->b, c->rows, c->in_f, c->out_f);
    return dot(c->r, c->out, (size_t)c->rows * c->out_f);
}

static void check_linear_backward(int rows, int in_f, int out_f, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    size_t n_in = (size_t)rows * in_f, n_w = (size_t)out_f * in_f,
           n_out = (size_t)rows * out_f;
    linear_ctx c = {0};
    float *in = random_floats(&rng, n_in, &c.in);
    float *w = random_floats(&rng, n_w, &c.w);
    /* the bias is an input of the reference only: backward does not need it */
    (void)random_floats(&rng, (size_t)out_f, &c.b);
    double *r_d;
    float *r = random_floats(&rng, n_out, &r_d);
    double *g_in = lpt_doubles(n_in), *g_w = lpt_doubles(n_w),
           *g_b = lpt_doubles((size_t)out_f);
    /* gradient buffers start non-zero: backward must accumulate */
    float *din = random_floats(&rng, n_in, NULL);
    float *dw = random_floats(&rng, n_w, NULL);
    float *db = random_floats(&rng, (size_t)out_f, NULL);
    double *want_in = NULL, *want_w = NULL, *want_b = NULL;
    char what[96];

    c.r = r_d;
    c.out = lpt_doubles(n_out);
    c.rows = rows;
    c.in_f = in_f;
    c.out_f = out_f;
    lpt_fd_gradient(linear_loss, &c, c.in, n_in, FD_EPS, g_in);
    lpt_fd_gradient(linear_loss, &c, c.w, n_w, FD_EPS, g_w);
    lpt_fd_gradient(linear_loss, &c, c.b, (size_t)out_f, FD_EPS, g_b);
    want_in = plus(din, g_in, n_in);
    want_w = plus(dw, g_w, n_w);
    want_b = plus(db, g_b, (size_t)out_f);

    CHECK_OK(lp_linear_backward(din, dw, db, r, in, w, rows, in_f, out_f));
    snprintf(what, sizeof what, "linear din rows=%d in=%d out=%d", rows, in_f,
             out_f);
    CHECK_CLOSE(what, din, want_in, n_in, BWD_TOL);
    snprintf(what, sizeof what, "linear dw rows=%d in=%d out=%d", rows, in_f,
             out_f);
    CHECK_CLOSE(what, dw, want_w, n_w, BWD_TOL);
    snprintf(what, sizeof what, "linear db rows=%d in=%d out=%d", rows, in_f,
             out_f);
    CHECK_CLOSE(what, db, want_b, (size_t)out_f, BWD_TOL);

    /* Each gradient alone, from zero; the inputs it does not need may be
     * NULL (din needs only w, dw only in). */
    memset(din, 0, n_in * sizeof(float));
    memset(dw, 0, n_w * sizeof(float));
    memset(db, 0, (size_t)out_f * sizeof(float));
    CHECK_OK(lp_linear_backward(din, NULL, NULL, r, NULL, w, rows, in_f,
                                out_f));
    CHECK_OK(lp_linear_backward(NULL, dw, NULL, r, in, NULL, rows, in_f,
                                out_f));
    CHECK_OK(lp_linear_backward(NULL, NULL, db, r, NULL, NULL, rows, in_f,
                                out_f));
    CHECK_CLOSE("linear din alone", din, g_in, n_in, BWD_TOL);
    CHECK_CLOSE("linear dw alone", dw, g_w, n_w, BWD_TOL);
    CHECK_CLOSE("linear db alone", db, g_b, (size_t)out_f, BWD_TOL);
    CHECK_OK(lp_linear_backward(NULL, NULL, NULL, r, NULL, NULL, rows, in_f,
                                out_f));
}

TEST(linear_backward_finite_differences)
{
    check_linear_backward(1, 1, 1, 11);
    check_linear_backward(3, 5, 4, 12);
    check_linear_backward(7, 17, 5, 13);
    check_linear_backward(2, 3, 17, 14);
}

/* The bias gradient is a column sum split between threads by columns: the
 * result must be bit-identical for any thread count. */
TEST(linear_backward_thread_count_independent)
{
    lpt_rng rng = lpt_rng_seed(21);
    int rows = 301, in_f = 9, out_f = 333, saved = lp_get_num_threads();
    float *dout = random_floats(&rng, (size_t)rows * out_f, NULL);
    float *in = random_floats(&rng, (size_t)rows * in_f, NULL);
    float *w = random_floats(&rng, (size_t)out_f * in_f, NULL);
    float *din[2], *dw[2], *db[2];
    for (int t = 0; t < 2; t++) {
        din[t] = lpt_floats((size_t)rows * in_f);
        dw[t] = lpt_floats((size_t)out_f * in_f);
        db[t] = lpt_floats((size_t)out_f);
        lp_set_num_threads(t == 0 ? 1 : 4);
        CHECK_OK(lp_linear_backward(din[t], dw[t], db[t], dout, in, w, rows,
                                    in_f, out_f));
    }
    lp_set_num_threads(saved);
    CHECK(memcmp(din[0], din[1], (size_t)rows * in_f * sizeof(float)) == 0);
    CHECK(memcmp(dw[0], dw[1], (size_t)out_f * in_f * sizeof(float)) == 0);
    CHECK(memcmp(db[0], db[1], (size_t)out_f * sizeof(float)) == 0);
}

TEST(linear_bad_input)
{
    float x[16] = {0};
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, 0, 1, 1));
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, 1, -1, 1));
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, 1, 1, 0));
    CHECK_FAILS(lp_linear_forward(NULL, x, x, NULL, 1, 1, 1));
    CHECK_FAILS(lp_linear_forward(x, NULL, x, NULL, 1, 1, 1));
    CHECK_FAILS(lp_linear_forward(x, x, NULL, NULL, 1, 1, 1));
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, INT_MAX, INT_MAX, 1));
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, 1, INT_MAX, INT_MAX));
    CHECK_FAILS(lp_linear_forward(x, x, x, NULL, INT_MAX, 1, INT_MAX));
    CHECK_FAILS(lp_linear_backward(x, x, x, NULL, x, x, 1, 1, 1));
    CHECK_FAILS(lp_linear_backward(x, NULL, NULL, x, x, NULL, 1, 1, 1));
    CHECK_FAILS(lp_linear_backward(NULL, x, NULL, x, NULL, x, 1, 1, 1));
    CHECK_FAILS(lp_linear_backward(x, x, x, x, x, x, 1, 0, 1));
    CHECK_FAILS(lp_linear_backward(x, x, x, x, x, x, 1 << 30, 1 << 30, 1));
}

/* ---- matmul -------------------------------------------------------------- */

TEST(matmul_forward_odd_shapes)
{
    lpt_rng rng = lpt_rng_seed(2);
    double *a_d, *b_d;
    float *a = random_floats(&rng, 33 * 100, &a_d);
    float *b = random_floats(&rng, 100 * 100, &b_d);
    float *c = lpt_floats(33 * 100);
    double *want = lpt_doubles(33 * 100);
    char what[96];
    for (int mi = 0; mi < N_SHAPES; mi++)
        for (int ki = 0; ki < N_SHAPES; ki++)
            for (int ni = 0; ni < N_SHAPES; ni++) {
                int m = k_rows[mi], k = k_features[ki], n = k_features[ni];
                for (int i = 0; i < m * n; i++)
                    c[i] = NAN;
                CHECK_OK(lp_matmul_forward(c, a, b, m, k, n));
                ref_bmm(want, a_d, b_d, 1, m, k, n, 0, 0);
                snprintf(what, sizeof what, "matmul m=%d k=%d n=%d", m, k, n);
                CHECK_CLOSE(what, c, want, (size_t)m * n, FWD_TOL);
            }
}

/* Shared by matmul and bmm: loss = sum r * bmm(a, b). */
typedef struct {
    double *a, *b;
    const double *r;
    double *c;
    int batch, m, k, n, trans_a, trans_b;
} bmm_ctx;

static double bmm_loss(const double *x, void *vctx)
{
    bmm_ctx *c = vctx;
    (void)x;
    ref_bmm(c->c, c->a, c->b, c->batch, c->m, c->k, c->n, c->trans_a,
            c->trans_b);
    return dot(c->r, c->c, (size_t)c->batch * c->m * c->n);
}

/* FD gradients of sum r * op(a) op(b) w.r.t. a and b, and the float
 * inputs/projection they were computed at. */
typedef struct {
    float *a, *b, *r;
    double *ga, *gb;
    size_t n_a, n_b, n_c;
} bmm_case;

static bmm_case make_bmm_case(int batch, int m, int k, int n, int trans_a,
                              int trans_b, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed);
    bmm_case t;
    bmm_ctx c = {0};
    double *r_d;
    t.n_a = (size_t)batch * m * k;
    t.n_b = (size_t)batch * k * n;
    t.n_c = (size_t)batch * m * n;
    t.a = random_floats(&rng, t.n_a, &c.a);
    t.b = random_floats(&rng, t.n_b, &c.b);
    t.r = random_floats(&rng, t.n_c, &r_d);
    t.ga = lpt_doubles(t.n_a);
    t.gb = lpt_doubles(t.n_b);
    c.r = r_d;
    c.c = lpt_doubles(t.n_c);
    c.batch = batch;
    c.m = m;
    c.k = k;
    c.n = n;
    c.trans_a = trans_a;
    c.trans_b = trans_b;
    lpt_fd_gradient(bmm_loss, &c, c.a, t.n_a, FD_EPS, t.ga);
    lpt_fd_gradient(bmm_loss, &c, c.b, t.n_b, FD_EPS, t.gb);
    return t;
}

static void check_matmul_backward(int m, int k, int n, uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed + 100);
    bmm_case t = make_bmm_case(1, m, k, n, 0, 0, seed);
    float *da = random_floats(&rng, t.n_a, NULL);
    float *db = random_floats(&rng, t.n_b, NULL);
    double *want_a = plus(da, t.ga, t.n_a), *want_b = plus(db, t.gb, t.n_b);
    char what[96];
    CHECK_OK(lp_matmul_backward(da, db, t.r, t.a, t.b, m, k, n));
    snprintf(what, sizeof what, "matmul da m=%d k=%d n=%d", m, k, n);
    CHECK_CLOSE(what, da, want_a, t.n_a, BWD_TOL);
    snprintf(what, sizeof what, "matmul db m=%d k=%d n=%d", m, k, n);
    CHECK_CLOSE(what, db, want_b, t.n_b, BWD_TOL);

    /* one at a time; da needs only b, db only a */
    memset(da, 0, t.n_a * sizeof(float));
    memset(db, 0, t.n_b * sizeof(float));
    CHECK_OK(lp_matmul_backward(da, NULL, t.r, NULL, t.b, m, k, n));
    CHECK_OK(lp_matmul_backward(NULL, db, t.r, t.a, NULL, m, k, n));
    CHECK_CLOSE("matmul da alone", da, t.ga, t.n_a, BWD_TOL);
    CHECK_CLOSE("matmul db alone", db, t.gb, t.n_b, BWD_TOL);
}

TEST(matmul_backward_finite_differences)
{
    check_matmul_backward(1, 1, 1, 31);
    check_matmul_backward(3, 5, 4, 32);
    check_matmul_backward(7, 2, 6, 33);
    check_matmul_backward(5, 17, 1, 34);
}

TEST(matmul_bad_input)
{
    float x[16] = {0};
    CHECK_FAILS(lp_matmul_forward(x, x, x, 0, 1, 1));
    CHECK_FAILS(lp_matmul_forward(x, x, x, 1, -3, 1));
    CHECK_FAILS(lp_matmul_forward(NULL, x, x, 1, 1, 1));
    CHECK_FAILS(lp_matmul_forward(x, NULL, x, 1, 1, 1));
    CHECK_FAILS(lp_matmul_forward(x, x, NULL, 1, 1, 1));
    CHECK_FAILS(lp_matmul_forward(x, x, x, INT_MAX, INT_MAX, 1));
    CHECK_FAILS(lp_matmul_backward(x, x, NULL, x, x, 1, 1, 1));
    CHECK_FAILS(lp_matmul_backward(x, NULL, x, x, NULL, 1, 1, 1));
    CHECK_FAILS(lp_matmul_backward(NULL, x, x, NULL, x, 1, 1, 1));
    CHECK_FAILS(lp_matmul_backward(x, x, x, x, x, 1, 1, 0));
    CHECK_FAILS(lp_matmul_backward(x, x, x, x, x, 1, INT_MAX, INT_MAX));
}

/* ---- batched matmul ----------------------------------------------------- */

TEST(bmm_forward_all_transposes)
{
    static const int shapes[][3] = {
        {1, 1, 1}, {3, 5, 7}, {17, 64, 5}, {33, 17, 100}, {7, 100, 17}};
    lpt_rng rng = lpt_rng_seed(3);
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int batch = 1; batch <= 3; batch += 2)
            for (int tr = 0; tr < 4; tr++) {
                int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
                int ta = tr & 1, tb = tr >> 1;
                size_t n_c = (size_t)batch * m * n;
                double *a_d, *b_d, *want = lpt_doubles(n_c);
                float *a = random_floats(&rng, (size_t)batch * m * k, &a_d);
                float *b = random_floats(&rng, (size_t)batch * k * n, &b_d);
                float *c = lpt_floats(n_c);
                for (size_t i = 0; i < n_c; i++)
                    c[i] = NAN;
                CHECK_OK(lp_bmm_forward(c, a, b, batch, m, k, n, ta, tb));
                ref_bmm(want, a_d, b_d, batch, m, k, n, ta, tb);
                snprintf(what, sizeof what,
                         "bmm batch=%d m=%d k=%d n=%d trans_a=%d trans_b=%d",
                         batch, m, k, n, ta, tb);
                CHECK_CLOSE(what, c, want, n_c, FWD_TOL);
            }
}

static void check_bmm_backward(int batch, int m, int k, int n, int ta, int tb,
                               uint64_t seed)
{
    lpt_rng rng = lpt_rng_seed(seed + 100);
    bmm_case t = make_bmm_case(batch, m, k, n, ta, tb, seed);
    float *da = random_floats(&rng, t.n_a, NULL);
    float *db = random_floats(&rng, t.n_b, NULL);
    float *da0 = copy_floats(da, t.n_a), *db0 = copy_floats(db, t.n_b);
    double *want_a = plus(da, t.ga, t.n_a), *want_b = plus(db, t.gb, t.n_b);
    char what[128];
    CHECK_OK(lp_bmm_backward(da, db, t.r, t.a, t.b, batch, m, k, n, ta, tb));
    snprintf(what, sizeof what,
             "bmm da batch=%d m=%d k=%d n=%d trans_a=%d trans_b=%d", batch, m,
             k, n, ta, tb);
    CHECK_CLOSE(what, da, want_a, t.n_a, BWD_TOL);
    snprintf(what, sizeof what,
             "bmm db batch=%d m=%d k=%d n=%d trans_a=%d trans_b=%d", batch, m,
             k, n, ta, tb);
    CHECK_CLOSE(what, db, want_b, t.n_b, BWD_TOL);

    /* one at a time (the unneeded operand may be NULL), accumulating onto
     * the same starting values */
    CHECK_OK(lp_bmm_backward(da0, NULL, t.r, NULL, t.b, batch, m, k, n, ta,
                             tb));
    CHECK_OK(lp_bmm_backward(NULL, db0, t.r, t.a, NULL, batch, m, k, n, ta,
                             tb));
    CHECK_CLOSE("bmm da alone", da0, want_a, t.n_a, BWD_TOL);
    CHECK_CLOSE("bmm db alone", db0, want_b, t.n_b, BWD_TOL);
}

TEST(bmm_backward_finite_differences_all_transposes)
{
    for (int tr = 0; tr < 4; tr++) {
        int ta = tr & 1, tb = tr >> 1;
        check_bmm_backward(1, 1, 1, 1, ta, tb, 40 + (uint64_t)tr);
        check_bmm_backward(2, 3, 4, 5, ta, tb, 50 + (uint64_t)tr);
        check_bmm_backward(3, 5, 2, 1, ta, tb, 60 + (uint64_t)tr);
        check_bmm_backward(2, 1, 6, 3, ta, tb, 70 + (uint64_t)tr);
    }
}

TEST(bmm_bad_input)
{
    float x[16] = {0};
    CHECK_FAILS(lp_bmm_forward(x, x, x, 0, 1, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_forward(x, x, x, 1, 0, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_forward(x, x, x, 1, 1, -1, 1, 1, 0));
    CHECK_FAILS(lp_bmm_forward(x, x, x, 1, 1, 1, 0, 0, 1));
    CHECK_FAILS(lp_bmm_forward(NULL, x, x, 1, 1, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_forward(x, NULL, x, 1, 1, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_forward(x, x, NULL, 1, 1, 1, 1, 0, 0));
    /* each matrix fits, the batch does not */
    CHECK_FAILS(lp_bmm_forward(x, x, x, INT_MAX, 1024, 1024, 1, 0, 0));
    CHECK_FAILS(lp_bmm_backward(x, x, NULL, x, x, 1, 1, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_backward(x, NULL, x, x, NULL, 1, 1, 1, 1, 0, 1));
    CHECK_FAILS(lp_bmm_backward(NULL, x, x, NULL, x, 1, 1, 1, 1, 1, 0));
    CHECK_FAILS(lp_bmm_backward(x, x, x, x, x, -2, 1, 1, 1, 0, 0));
    CHECK_FAILS(lp_bmm_backward(x, x, x, x, x, INT_MAX, 1024, 1, 1024, 1, 1));
}
