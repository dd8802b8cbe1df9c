/*
 * test_golden.c — loupe's ops against PyTorch, through the golden files in
 * tests/golden/ (written by tests/gen_golden.py, format in
 * tests/golden/README.md).
 *
 * Each case holds float32 inputs, a random dout (the backward seeds
 * loss = sum(dout * out)), and PyTorch's results computed in float64 from
 * those exact inputs (plus PyTorch's float32 results as "<name>.t32", to
 * show how far PyTorch itself is from the float64 reference). loupe runs in
 * float32 through the public API only and is compared against the float64
 * result with the measure of tests/test.h:
 *     max|loupe - torch64| / max|torch64|  over the tensor,
 * forward <= 1e-5, every gradient <= 1e-4.
 *
 * One TEST per op family; run with -v to print the worst error of each.
 */
#include "golden.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4

/* Kind codes stored in params[0]; they mirror tests/gen_golden.py. */
enum { LIN_LINEAR = 0, LIN_MATMUL = 1, LIN_BMM = 2 };
enum { NORM_LAYER = 0, NORM_BN_EVAL = 1, NORM_BN_TRAIN = 2 };
enum {
    ACT_RELU = 0, ACT_GELU_ERF = 1, ACT_GELU_TANH = 2, ACT_SIGMOID = 3,
    ACT_TANH = 4, ACT_SOFTMAX = 5, ACT_LOG_SOFTMAX = 6
};
enum { POOL_MAX = 0, POOL_AVG = 1, POOL_ADAPTIVE = 2 };
enum { RS_BILINEAR = 0, RS_NEAREST = 1, RS_BICUBIC = 2 };
enum { LOSS_CE = 0, LOSS_MSE = 1 };
enum { TS_PAD_CHANNELS = 0, TS_CONCAT = 1, TS_SLICE = 2, TS_ADD = 3 };

/* ---- verbosity ---------------------------------------------------------- */

/* The runner keeps its -v flag to itself, so look at the command line
 * (Linux /proc) or at $LOUPE_TEST_VERBOSE. */
static int verbose(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *env = getenv("LOUPE_TEST_VERBOSE");
        cached = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
        FILE *fp = cached ? NULL : fopen("/proc/self/cmdline", "rb");
        if (fp != NULL) {
            char buf[4096];
            size_t n = fread(buf, 1, sizeof buf - 1, fp);
            buf[n] = '\0';
            for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
                if (strcmp(buf + i, "-v") == 0)
                    cached = 1;
            fclose(fp);
        }
    }
    return cached;
}

/* ---- comparison and bookkeeping ----------------------------------------- */

/* Worst errors seen in one op family. */
typedef struct {
    const lpg_file *file;
    const char *family;
    int cases;
    double fwd, bwd;         /* loupe vs PyTorch float64 */
    double t32_fwd, t32_bwd; /* PyTorch float32 vs PyTorch float64 */
    char fwd_at[2 * LPG_MAX_NAME + 32], bwd_at[2 * LPG_MAX_NAME + 32];
} family;

/* Compare loupe's `got` with the float64 reference "<case>/<tensor>".
 * `note` names a variant of the call ("" for the plain one). */
static void compare(family *fam, const char *cs, const char *tensor,
                    const float *got, size_t count, int backward,
                    const char *note)
{
    char t32_name[LPG_MAX_NAME + 8];
    const double *want = lpg_f64(fam->file, cs, tensor, count);
    snprintf(t32_name, sizeof t32_name, "%s.t32", tensor);
    const float *t32 = lpg_f32(fam->file, cs, t32_name, count);
    if (want == NULL || t32 == NULL || got == NULL)
        return;
    double err = lpt_max_rel_err(got, want, count);
    double err32 = lpt_max_rel_err(t32, want, count);
    double tol = backward ? BWD_TOL : FWD_TOL;
    if (!(err <= tol))
        lpt_fail(__FILE__, __LINE__,
                 "golden %s %s/%s%s: max relative error %.3g > %.3g against "
                 "PyTorch float64 (PyTorch float32 has %.3g)",
                 fam->family, cs, tensor, note, err, tol, err32);
    double *worst = backward ? &fam->bwd : &fam->fwd;
    double *worst32 = backward ? &fam->t32_bwd : &fam->t32_fwd;
    char *at = backward ? fam->bwd_at : fam->fwd_at;
    if (!(err <= *worst)) {
        *worst = err;
        snprintf(at, sizeof fam->fwd_at, "%s/%s%s", cs, tensor, note);
    }
    if (err32 > *worst32)
        *worst32 = err32;
}

static void report(const family *fam)
{
    if (!verbose())
        return;
    printf("     golden %-10s %3d cases  worst fwd %.2e (%s)  bwd %.2e (%s)"
           "  [PyTorch f32: fwd %.2e bwd %.2e]\n",
           fam->family, fam->cases, fam->fwd, fam->fwd_at[0] ? fam->fwd_at : "-",
           fam->bwd, fam->bwd_at[0] ? fam->bwd_at : "-", fam->t32_fwd,
           fam->t32_bwd);
}

/* Status of an op call: 1 on LP_OK, else a failure naming the case. */
static int call_ok(int rc, const char *expr, const char *cs, int line)
{
    if (rc == LP_OK)
        return 1;
    lpt_fail(__FILE__, line, "golden case %s: %s returned %s: %s", cs, expr,
             lp_status_name(rc), lp_last_error());
    return 0;
}
#define CALL(expr)                                  \
    do {                                            \
        if (!call_ok((expr), #expr, cs, __LINE__))  \
            return;                                 \
    } while (0)

/* Fetch helpers that end the case (return) when a tensor is missing. */
#define NEED(ptr)        \
    do {                 \
        if ((ptr) == NULL) \
            return;      \
    } while (0)

/* Run every case of one golden file through `run_case`. */
typedef void (*case_fn)(family *fam, const char *cs);

static void run_family(const char *file, const char *name, case_fn run_case)
{
    lpg_file f;
    char rel[128];
    family fam;
    memset(&fam, 0, sizeof fam);
    snprintf(rel, sizeof rel, "tests/golden/%s", file);
    if (lpg_load(&f, rel) != LP_OK)
        return;
    fam.file = &f;
    fam.family = name;
    for (int i = 0; i < lpg_case_count(&f); i++) {
        run_case(&fam, lpg_case_name(&f, i));
        fam.cases++;
    }
    report(&fam);
    lpg_free(&f);
}

/* ---- conv2d ------------------------------------------------------------- */

static void conv2d_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 15);
    NEED(P);
    lp_conv2d_params p = {
        .n = P[0], .c_in = P[1], .h_in = P[2], .w_in = P[3], .c_out = P[4],
        .k_h = P[5], .k_w = P[6], .stride_h = P[7], .stride_w = P[8],
        .pad_h = P[9], .pad_w = P[10], .dil_h = P[11], .dil_w = P[12],
        .groups = P[13]};
    int has_bias = P[14], h_out, w_out;
    CALL(lp_conv2d_output_size(&p, &h_out, &w_out));
    size_t nx = (size_t)p.n * p.c_in * p.h_in * p.w_in;
    size_t nw = (size_t)p.c_out * (p.c_in / p.groups) * p.k_h * p.k_w;
    size_t no = (size_t)p.n * p.c_out * h_out * w_out, nb = (size_t)p.c_out;
    const float *x = lpg_f32(f, cs, "x", nx), *w = lpg_f32(f, cs, "w", nw);
    const float *b = has_bias ? lpg_f32(f, cs, "b", nb) : NULL;
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(w);
    NEED(dout);
    if (has_bias)
        NEED(b);

    float *out = lpt_floats(no);
    CALL(lp_conv2d_forward(out, x, w, b, &p));
    compare(fam, cs, "out", out, no, 0, "");

    float *dx = lpt_floats(nx), *dw = lpt_floats(nw);
    float *db = has_bias ? lpt_floats(nb) : NULL;
    CALL(lp_conv2d_backward(dx, dw, db, dout, x, w, &p));
    compare(fam, cs, "dx", dx, nx, 1, "");
    compare(fam, cs, "dw", dw, nw, 1, "");
    if (has_bias)
        compare(fam, cs, "db", db, nb, 1, "");

    /* the input-gradient-only path (dw = db = NULL) and its complement */
    float *dx_only = lpt_floats(nx);
    CALL(lp_conv2d_backward(dx_only, NULL, NULL, dout, x, w, &p));
    compare(fam, cs, "dx", dx_only, nx, 1, " [dx only]");
    float *dw_only = lpt_floats(nw), *db_only = has_bias ? lpt_floats(nb) : NULL;
    CALL(lp_conv2d_backward(NULL, dw_only, db_only, dout, x, w, &p));
    compare(fam, cs, "dw", dw_only, nw, 1, " [no dx]");
    if (has_bias)
        compare(fam, cs, "db", db_only, nb, 1, " [no dx]");
}

TEST(golden_conv2d) { run_family("conv2d.bin", "conv2d", conv2d_case); }

/* ---- linear, matmul, bmm ------------------------------------------------- */

static void linear_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 0);
    NEED(P);
    if (P[0] == LIN_LINEAR) {
        NEED(P = lpg_i32(f, cs, "params", 5));
        int rows = P[1], in_f = P[2], out_f = P[3], has_bias = P[4];
        size_t nx = (size_t)rows * in_f, nw = (size_t)out_f * in_f;
        size_t no = (size_t)rows * out_f;
        const float *x = lpg_f32(f, cs, "x", nx), *w = lpg_f32(f, cs, "w", nw);
        const float *b = has_bias ? lpg_f32(f, cs, "b", out_f) : NULL;
        const float *dout = lpg_f32(f, cs, "dout", no);
        NEED(x);
        NEED(w);
        NEED(dout);
        if (has_bias)
            NEED(b);
        float *out = lpt_floats(no);
        CALL(lp_linear_forward(out, x, w, b, rows, in_f, out_f));
        compare(fam, cs, "out", out, no, 0, "");
        float *dx = lpt_floats(nx), *dw = lpt_floats(nw);
        float *db = has_bias ? lpt_floats(out_f) : NULL;
        CALL(lp_linear_backward(dx, dw, db, dout, x, w, rows, in_f, out_f));
        compare(fam, cs, "dx", dx, nx, 1, "");
        compare(fam, cs, "dw", dw, nw, 1, "");
        if (has_bias)
            compare(fam, cs, "db", db, out_f, 1, "");
        float *dx_only = lpt_floats(nx);
        CALL(lp_linear_backward(dx_only, NULL, NULL, dout, x, w, rows, in_f,
                                out_f));
        compare(fam, cs, "dx", dx_only, nx, 1, " [dx only]");
    } else if (P[0] == LIN_MATMUL) {
        NEED(P = lpg_i32(f, cs, "params", 4));
        int m = P[1], k = P[2], n = P[3];
        size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
        const float *a = lpg_f32(f, cs, "a", na), *b = lpg_f32(f, cs, "b", nb);
        const float *dout = lpg_f32(f, cs, "dout", nc);
        NEED(a);
        NEED(b);
        NEED(dout);
        float *c = lpt_floats(nc), *da = lpt_floats(na), *db = lpt_floats(nb);
        CALL(lp_matmul_forward(c, a, b, m, k, n));
        compare(fam, cs, "out", c, nc, 0, "");
        CALL(lp_matmul_backward(da, db, dout, a, b, m, k, n));
        compare(fam, cs, "da", da, na, 1, "");
        compare(fam, cs, "db", db, nb, 1, "");
    } else if (P[0] == LIN_BMM) {
        NEED(P = lpg_i32(f, cs, "params", 7));
        int batch = P[1], m = P[2], k = P[3], n = P[4], ta = P[5], tb = P[6];
        size_t na = (size_t)batch * m * k, nb = (size_t)batch * k * n;
        size_t nc = (size_t)batch * m * n;
        const float *a = lpg_f32(f, cs, "a", na), *b = lpg_f32(f, cs, "b", nb);
        const float *dout = lpg_f32(f, cs, "dout", nc);
        NEED(a);
        NEED(b);
        NEED(dout);
        float *c = lpt_floats(nc), *da = lpt_floats(na), *db = lpt_floats(nb);
        CALL(lp_bmm_forward(c, a, b, batch, m, k, n, ta, tb));
        compare(fam, cs, "out", c, nc, 0, "");
        CALL(lp_bmm_backward(da, db, dout, a, b, batch, m, k, n, ta, tb));
        compare(fam, cs, "da", da, na, 1, "");
        compare(fam, cs, "db", db, nb, 1, "");
    } else {
        lpt_fail(__FILE__, __LINE__, "golden linear %s: unknown kind %d", cs,
                 (int)P[0]);
    }
}

TEST(golden_linear) { run_family("linear.bin", "linear", linear_case); }

/* ---- attention ---------------------------------------------------------- */

static void attention_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 5);
    NEED(P);
    int n = P[0], t = P[1], heads = P[2], hd = P[3], fused = P[4];
    int d = heads * hd;
    lp_attention_params p = {.n = n, .tokens = t, .heads = heads,
                             .head_dim = hd, .qkv_stride = fused ? 3 * d : d,
                             .scale = (float)(1.0 / sqrt((double)hd))};
    size_t nq = (size_t)n * t * d, nmap = (size_t)n * heads * t * t;
    const float *q, *k, *v;
    float *dq, *dk, *dv, *dqkv = NULL;
    if (fused) {
        const float *qkv = lpg_f32(f, cs, "qkv", 3 * nq);
        NEED(qkv);
        q = qkv;
        k = qkv + d;
        v = qkv + 2 * d;
        dqkv = lpt_floats(3 * nq);
        dq = dqkv;
        dk = dqkv + d;
        dv = dqkv + 2 * d;
    } else {
        q = lpg_f32(f, cs, "q", nq);
        k = lpg_f32(f, cs, "k", nq);
        v = lpg_f32(f, cs, "v", nq);
        NEED(q);
        NEED(k);
        NEED(v);
        dq = lpt_floats(nq);
        dk = lpt_floats(nq);
        dv = lpt_floats(nq);
    }
    const float *dout = lpg_f32(f, cs, "dout", nq);
    NEED(dout);

    /* the fused call, with and without a scores buffer */
    float *out = lpt_floats(nq), *scores = lpt_floats(nmap);
    float *probs = lpt_floats(nmap);
    CALL(lp_attention_forward(out, scores, probs, q, k, v, &p));
    compare(fam, cs, "out", out, nq, 0, "");
    compare(fam, cs, "scores", scores, nmap, 0, "");
    compare(fam, cs, "probs", probs, nmap, 0, "");
    float *out2 = lpt_floats(nq), *probs2 = lpt_floats(nmap);
    CALL(lp_attention_forward(out2, NULL, probs2, q, k, v, &p));
    compare(fam, cs, "out", out2, nq, 0, " [scores NULL]");
    compare(fam, cs, "probs", probs2, nmap, 0, " [scores NULL]");

    /* the hookable steps one by one */
    float *scores3 = lpt_floats(nmap), *out3 = lpt_floats(nq);
    CALL(lp_attention_scores_forward(scores3, q, k, &p));
    compare(fam, cs, "scores", scores3, nmap, 0, " [scores step]");
    CALL(lp_attention_apply_forward(out3, probs, v, &p));
    compare(fam, cs, "out", out3, nq, 0, " [apply step]");

    CALL(lp_attention_backward(dq, dk, dv, dout, q, k, v, probs, &p));
    if (fused) {
        compare(fam, cs, "dqkv", dqkv, 3 * nq, 1, "");
    } else {
        compare(fam, cs, "dq", dq, nq, 1, "");
        compare(fam, cs, "dk", dk, nq, 1, "");
        compare(fam, cs, "dv", dv, nq, 1, "");
    }

    /* backward through the steps: apply, softmax (in double here), scores */
    float *dprobs = lpt_floats(nmap), *dscores = lpt_floats(nmap);
    float *dq2 = lpt_floats(fused ? 3 * nq : nq);
    float *dk2 = lpt_floats(fused ? 3 * nq : nq);
    float *dv2 = lpt_floats(fused ? 3 * nq : nq);
    int off = fused ? d : 0; /* dq2/dk2/dv2 share q's layout: k = +d, v = +2d */
    CALL(lp_attention_apply_backward(dprobs, dv2 + 2 * off, dout, probs, v,
                                     &p));
    for (size_t r = 0; r < nmap; r += (size_t)t) {
        double dot = 0.0;
        for (int j = 0; j < t; j++)
            dot += (double)dprobs[r + j] * probs[r + j];
        for (int j = 0; j < t; j++)
            dscores[r + j] = (float)(probs[r + j] * (dprobs[r + j] - dot));
    }
    CALL(lp_attention_scores_backward(dq2, dk2 + off, dscores, q, k, &p));
    if (fused) {
        /* gather the three strided gradients into one [n, t, 3d] */
        float *g = lpt_floats(3 * nq);
        for (size_t row = 0; row < (size_t)n * t; row++)
            for (int e = 0; e < d; e++) {
                g[row * 3 * d + e] = dq2[row * 3 * d + e];
                g[row * 3 * d + d + e] = dk2[row * 3 * d + d + e];
                g[row * 3 * d + 2 * d + e] = dv2[row * 3 * d + 2 * d + e];
            }
        compare(fam, cs, "dqkv", g, 3 * nq, 1, " [step by step]");
    } else {
        compare(fam, cs, "dq", dq2, nq, 1, " [step by step]");
        compare(fam, cs, "dk", dk2, nq, 1, " [step by step]");
        compare(fam, cs, "dv", dv2, nq, 1, " [step by step]");
    }
}

TEST(golden_attention)
{
    run_family("attention.bin", "attention", attention_case);
}

/* ---- normalisation ------------------------------------------------------ */

static void layernorm_case(family *fam, const char *cs, int rows, int dim)
{
    const lpg_file *f = fam->file;
    size_t nx = (size_t)rows * dim;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *gamma = lpg_f32(f, cs, "gamma", dim);
    const float *beta = lpg_f32(f, cs, "beta", dim);
    const float *eps = lpg_f32(f, cs, "eps", 1);
    const float *dout = lpg_f32(f, cs, "dout", nx);
    NEED(x);
    NEED(gamma);
    NEED(beta);
    NEED(eps);
    NEED(dout);
    float *out = lpt_floats(nx), *mean = lpt_floats(rows);
    float *rstd = lpt_floats(rows);
    CALL(lp_layernorm_forward(out, mean, rstd, x, gamma, beta, *eps, rows,
                              dim));
    compare(fam, cs, "out", out, nx, 0, "");
    float *out2 = lpt_floats(nx);
    CALL(lp_layernorm_forward(out2, NULL, NULL, x, gamma, beta, *eps, rows,
                              dim));
    compare(fam, cs, "out", out2, nx, 0, " [no saved stats]");

    float *dx = lpt_floats(nx), *dg = lpt_floats(dim), *db = lpt_floats(dim);
    CALL(lp_layernorm_backward(dx, dg, db, dout, x, gamma, mean, rstd, *eps,
                               rows, dim));
    compare(fam, cs, "dx", dx, nx, 1, "");
    compare(fam, cs, "dgamma", dg, dim, 1, "");
    compare(fam, cs, "dbeta", db, dim, 1, "");
    float *dx2 = lpt_floats(nx);
    CALL(lp_layernorm_backward(dx2, NULL, NULL, dout, x, gamma, NULL, NULL,
                               *eps, rows, dim));
    compare(fam, cs, "dx", dx2, nx, 1, " [recomputed stats, dx only]");
}

static void batchnorm_eval_case(family *fam, const char *cs, int n, int c,
                                int hw)
{
    const lpg_file *f = fam->file;
    size_t nx = (size_t)n * c * hw;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *gamma = lpg_f32(f, cs, "gamma", c);
    const float *beta = lpg_f32(f, cs, "beta", c);
    const float *mean = lpg_f32(f, cs, "mean", c);
    const float *var = lpg_f32(f, cs, "var", c);
    const float *eps = lpg_f32(f, cs, "eps", 1);
    const float *dout = lpg_f32(f, cs, "dout", nx);
    NEED(x);
    NEED(gamma);
    NEED(beta);
    NEED(mean);
    NEED(var);
    NEED(eps);
    NEED(dout);
    float *out = lpt_floats(nx);
    CALL(lp_batchnorm2d_forward_eval(out, x, gamma, beta, mean, var, *eps, n,
                                     c, hw));
    compare(fam, cs, "out", out, nx, 0, "");
    float *dx = lpt_floats(nx), *dg = lpt_floats(c), *db = lpt_floats(c);
    CALL(lp_batchnorm2d_backward_eval(dx, dg, db, dout, x, gamma, mean, var,
                                      *eps, n, c, hw));
    compare(fam, cs, "dx", dx, nx, 1, "");
    compare(fam, cs, "dgamma", dg, c, 1, "");
    compare(fam, cs, "dbeta", db, c, 1, "");
}

static void batchnorm_train_case(family *fam, const char *cs, int n, int c,
                                 int hw)
{
    const lpg_file *f = fam->file;
    size_t nx = (size_t)n * c * hw;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *gamma = lpg_f32(f, cs, "gamma", c);
    const float *beta = lpg_f32(f, cs, "beta", c);
    const float *rm0 = lpg_f32(f, cs, "running_mean", c);
    const float *rv0 = lpg_f32(f, cs, "running_var", c);
    const float *eps = lpg_f32(f, cs, "eps", 1);
    const float *momentum = lpg_f32(f, cs, "momentum", 1);
    const float *dout = lpg_f32(f, cs, "dout", nx);
    NEED(x);
    NEED(gamma);
    NEED(beta);
    NEED(rm0);
    NEED(rv0);
    NEED(eps);
    NEED(momentum);
    NEED(dout);
    float *out = lpt_floats(nx), *mean = lpt_floats(c), *rstd = lpt_floats(c);
    float *rm = lpt_floats(c), *rv = lpt_floats(c);
    memcpy(rm, rm0, (size_t)c * sizeof *rm);
    memcpy(rv, rv0, (size_t)c * sizeof *rv);
    CALL(lp_batchnorm2d_forward_train(out, mean, rstd, x, gamma, beta, *eps,
                                      *momentum, rm, rv, n, c, hw));
    compare(fam, cs, "out", out, nx, 0, "");
    compare(fam, cs, "save_mean", mean, c, 0, "");
    compare(fam, cs, "save_rstd", rstd, c, 0, "");
    compare(fam, cs, "running_mean_new", rm, c, 0, "");
    compare(fam, cs, "running_var_new", rv, c, 0, "");
    float *dx = lpt_floats(nx), *dg = lpt_floats(c), *db = lpt_floats(c);
    CALL(lp_batchnorm2d_backward_train(dx, dg, db, dout, x, gamma, mean, rstd,
                                       n, c, hw));
    compare(fam, cs, "dx", dx, nx, 1, "");
    compare(fam, cs, "dgamma", dg, c, 1, "");
    compare(fam, cs, "dbeta", db, c, 1, "");
}

static void norm_case(family *fam, const char *cs)
{
    const int32_t *P = lpg_i32(fam->file, cs, "params", 0);
    NEED(P);
    NEED(P = lpg_i32(fam->file, cs, "params", P[0] == NORM_LAYER ? 3 : 4));
    switch (P[0]) {
    case NORM_LAYER: layernorm_case(fam, cs, P[1], P[2]); break;
    case NORM_BN_EVAL: batchnorm_eval_case(fam, cs, P[1], P[2], P[3]); break;
    case NORM_BN_TRAIN: batchnorm_train_case(fam, cs, P[1], P[2], P[3]); break;
    default:
        lpt_fail(__FILE__, __LINE__, "golden norm %s: unknown kind %d", cs,
                 (int)P[0]);
    }
}

TEST(golden_norm) { run_family("norm.bin", "norm", norm_case); }

/* ---- activations and softmax -------------------------------------------- */

static int act_forward(int kind, float *out, const float *in, int rows,
                       int dim)
{
    size_t count = (size_t)rows * dim;
    switch (kind) {
    case ACT_RELU: return lp_relu_forward(out, in, count);
    case ACT_GELU_ERF: return lp_gelu_forward(out, in, count, LP_GELU_ERF);
    case ACT_GELU_TANH: return lp_gelu_forward(out, in, count, LP_GELU_TANH);
    case ACT_SIGMOID: return lp_sigmoid_forward(out, in, count);
    case ACT_TANH: return lp_tanh_forward(out, in, count);
    case ACT_SOFTMAX: return lp_softmax_forward(out, in, rows, dim);
    case ACT_LOG_SOFTMAX: return lp_log_softmax_forward(out, in, rows, dim);
    default: return lp_set_error(LP_EINVAL, "unknown activation %d", kind);
    }
}

/* relu and gelu differentiate at the input, the others at the output. */
static int act_backward(int kind, float *din, const float *dout,
                        const float *in, const float *out, int rows, int dim)
{
    size_t count = (size_t)rows * dim;
    switch (kind) {
    case ACT_RELU: return lp_relu_backward(din, dout, in, count);
    case ACT_GELU_ERF:
        return lp_gelu_backward(din, dout, in, count, LP_GELU_ERF);
    case ACT_GELU_TANH:
        return lp_gelu_backward(din, dout, in, count, LP_GELU_TANH);
    case ACT_SIGMOID: return lp_sigmoid_backward(din, dout, out, count);
    case ACT_TANH: return lp_tanh_backward(din, dout, out, count);
    case ACT_SOFTMAX: return lp_softmax_backward(din, dout, out, rows, dim);
    case ACT_LOG_SOFTMAX:
        return lp_log_softmax_backward(din, dout, out, rows, dim);
    default: return lp_set_error(LP_EINVAL, "unknown activation %d", kind);
    }
}

static void activation_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 3);
    NEED(P);
    int kind = P[0], rows = P[1], dim = P[2];
    size_t count = (size_t)rows * dim;
    const float *x = lpg_f32(f, cs, "x", count);
    const float *dout = lpg_f32(f, cs, "dout", count);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(count), *dx = lpt_floats(count);
    CALL(act_forward(kind, out, x, rows, dim));
    compare(fam, cs, "out", out, count, 0, "");
    float *inplace = lpt_floats(count);
    memcpy(inplace, x, count * sizeof *inplace);
    CALL(act_forward(kind, inplace, inplace, rows, dim));
    compare(fam, cs, "out", inplace, count, 0, " [in place]");
    CALL(act_backward(kind, dx, dout, x, out, rows, dim));
    compare(fam, cs, "dx", dx, count, 1, "");
}

TEST(golden_activation)
{
    run_family("activation.bin", "activation", activation_case);
}

/* ---- pooling ------------------------------------------------------------ */

static void window_pool_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    int kind = P[0];
    lp_pool2d_params p = {.n = P[1], .c = P[2], .h_in = P[3], .w_in = P[4],
                          .k_h = P[5], .k_w = P[6], .stride_h = P[7],
                          .stride_w = P[8], .pad_h = P[9], .pad_w = P[10],
                          .count_include_pad = P[11]};
    int h_out, w_out;
    CALL(lp_pool2d_output_size(&p, &h_out, &w_out));
    size_t nx = (size_t)p.n * p.c * p.h_in * p.w_in;
    size_t no = (size_t)p.n * p.c * h_out * w_out;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(no), *dx = lpt_floats(nx);
    if (kind == POOL_MAX) {
        int32_t *argmax = calloc(no, sizeof *argmax);
        if (argmax == NULL) {
            lpt_fail(__FILE__, __LINE__, "out of memory");
            return;
        }
        int rc = lp_maxpool2d_forward(out, argmax, x, &p);
        if (call_ok(rc, "lp_maxpool2d_forward", cs, __LINE__)) {
            compare(fam, cs, "out", out, no, 0, "");
            rc = lp_maxpool2d_backward(dx, dout, x, argmax, &p);
            if (call_ok(rc, "lp_maxpool2d_backward", cs, __LINE__))
                compare(fam, cs, "dx", dx, nx, 1, "");
        }
        free(argmax);
        float *out2 = lpt_floats(no), *dx2 = lpt_floats(nx);
        CALL(lp_maxpool2d_forward(out2, NULL, x, &p));
        compare(fam, cs, "out", out2, no, 0, " [no argmax]");
        CALL(lp_maxpool2d_backward(dx2, dout, x, NULL, &p));
        compare(fam, cs, "dx", dx2, nx, 1, " [argmax recomputed]");
    } else {
        CALL(lp_avgpool2d_forward(out, x, &p));
        compare(fam, cs, "out", out, no, 0, "");
        CALL(lp_avgpool2d_backward(dx, dout, &p));
        compare(fam, cs, "dx", dx, nx, 1, "");
    }
}

static void adaptive_pool_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    int n = P[1], c = P[2], h = P[3], w = P[4], ho = P[5], wo = P[6];
    size_t nx = (size_t)n * c * h * w, no = (size_t)n * c * ho * wo;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(no), *dx = lpt_floats(nx);
    CALL(lp_adaptive_avgpool2d_forward(out, x, n, c, h, w, ho, wo));
    compare(fam, cs, "out", out, no, 0, "");
    CALL(lp_adaptive_avgpool2d_backward(dx, dout, n, c, h, w, ho, wo));
    compare(fam, cs, "dx", dx, nx, 1, "");
}

static void pool_case(family *fam, const char *cs)
{
    const int32_t *P = lpg_i32(fam->file, cs, "params", 0);
    NEED(P);
    if (P[0] == POOL_MAX || P[0] == POOL_AVG) {
        NEED(P = lpg_i32(fam->file, cs, "params", 12));
        window_pool_case(fam, cs, P);
    } else if (P[0] == POOL_ADAPTIVE) {
        NEED(P = lpg_i32(fam->file, cs, "params", 7));
        adaptive_pool_case(fam, cs, P);
    } else {
        lpt_fail(__FILE__, __LINE__, "golden pool %s: unknown kind %d", cs,
                 (int)P[0]);
    }
}

TEST(golden_pool) { run_family("pool.bin", "pool", pool_case); }

/* ---- resize ------------------------------------------------------------- */

static void resize_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 7);
    NEED(P);
    int mode = P[0], planes = P[1], h = P[2], w = P[3], ho = P[4], wo = P[5];
    int ac = P[6];
    size_t nx = (size_t)planes * h * w, no = (size_t)planes * ho * wo;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(no), *dx = lpt_floats(nx);
    switch (mode) {
    case RS_BILINEAR:
        CALL(lp_resize_bilinear_forward(out, x, planes, h, w, ho, wo, ac));
        CALL(lp_resize_bilinear_backward(dx, dout, planes, h, w, ho, wo, ac));
        break;
    case RS_NEAREST:
        CALL(lp_resize_nearest_forward(out, x, planes, h, w, ho, wo));
        CALL(lp_resize_nearest_backward(dx, dout, planes, h, w, ho, wo));
        break;
    case RS_BICUBIC:
        CALL(lp_resize_bicubic_forward(out, x, planes, h, w, ho, wo, ac));
        CALL(lp_resize_bicubic_backward(dx, dout, planes, h, w, ho, wo, ac));
        break;
    default:
        lpt_fail(__FILE__, __LINE__, "golden resize %s: unknown mode %d", cs,
                 mode);
        return;
    }
    compare(fam, cs, "out", out, no, 0, "");
    compare(fam, cs, "dx", dx, nx, 1, "");
}

TEST(golden_resize) { run_family("resize.bin", "resize", resize_case); }

/* ---- losses ------------------------------------------------------------- */

static void loss_case(family *fam, const char *cs)
{
    const lpg_file *f = fam->file;
    const int32_t *P = lpg_i32(f, cs, "params", 0);
    NEED(P);
    const float *dloss = lpg_f32(f, cs, "dout", 1);
    NEED(dloss);
    float loss = 0.0f;
    if (P[0] == LOSS_CE) {
        NEED(P = lpg_i32(f, cs, "params", 3));
        int rows = P[1], classes = P[2];
        size_t nl = (size_t)rows * classes;
        const float *logits = lpg_f32(f, cs, "logits", nl);
        const int32_t *targets = lpg_i32(f, cs, "targets", rows);
        NEED(logits);
        NEED(targets);
        float *dlogits = lpt_floats(nl);
        CALL(lp_cross_entropy_forward(&loss, logits, targets, rows, classes));
        compare(fam, cs, "out", &loss, 1, 0, "");
        CALL(lp_cross_entropy_backward(dlogits, *dloss, logits, targets, rows,
                                       classes));
        compare(fam, cs, "dlogits", dlogits, nl, 1, "");
    } else if (P[0] == LOSS_MSE) {
        NEED(P = lpg_i32(f, cs, "params", 2));
        size_t count = (size_t)P[1];
        const float *pred = lpg_f32(f, cs, "pred", count);
        const float *target = lpg_f32(f, cs, "target", count);
        NEED(pred);
        NEED(target);
        float *dpred = lpt_floats(count);
        CALL(lp_mse_forward(&loss, pred, target, count));
        compare(fam, cs, "out", &loss, 1, 0, "");
        CALL(lp_mse_backward(dpred, *dloss, pred, target, count));
        compare(fam, cs, "dpred", dpred, count, 1, "");
    } else {
        lpt_fail(__FILE__, __LINE__, "golden loss %s: unknown kind %d", cs,
                 (int)P[0]);
    }
}

TEST(golden_loss) { run_family("loss.bin", "loss", loss_case); }

/* ---- tensor plumbing ---------------------------------------------------- */

static void pad_channels_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    int n = P[1], c = P[2], h = P[3], w = P[4], s = P[5], before = P[6];
    int after = P[7];
    int ho = (h + s - 1) / s, wo = (w + s - 1) / s;
    size_t nx = (size_t)n * c * h * w;
    size_t no = (size_t)n * (before + c + after) * ho * wo;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(no), *dx = lpt_floats(nx);
    CALL(lp_pad_channels_subsample_forward(out, x, n, c, h, w, s, before,
                                           after));
    compare(fam, cs, "out", out, no, 0, "");
    CALL(lp_pad_channels_subsample_backward(dx, dout, n, c, h, w, s, before,
                                            after));
    compare(fam, cs, "dx", dx, nx, 1, "");
}

static void concat_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    int n = P[1], ta = P[2], tb = P[3], d = P[4];
    size_t na = (size_t)n * ta * d, nb = (size_t)n * tb * d, no = na + nb;
    const float *a = lpg_f32(f, cs, "a", na), *b = lpg_f32(f, cs, "b", nb);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(a);
    NEED(b);
    NEED(dout);
    float *out = lpt_floats(no), *da = lpt_floats(na), *db = lpt_floats(nb);
    CALL(lp_concat_tokens_forward(out, a, b, n, ta, tb, d));
    compare(fam, cs, "out", out, no, 0, "");
    CALL(lp_concat_tokens_backward(da, db, dout, n, ta, tb, d));
    compare(fam, cs, "da", da, na, 1, "");
    compare(fam, cs, "db", db, nb, 1, "");
}

static void slice_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    int n = P[1], t = P[2], d = P[3], start = P[4], len = P[5];
    size_t nx = (size_t)n * t * d, no = (size_t)n * len * d;
    const float *x = lpg_f32(f, cs, "x", nx);
    const float *dout = lpg_f32(f, cs, "dout", no);
    NEED(x);
    NEED(dout);
    float *out = lpt_floats(no), *dx = lpt_floats(nx);
    CALL(lp_slice_tokens_forward(out, x, n, t, d, start, len));
    compare(fam, cs, "out", out, no, 0, "");
    CALL(lp_slice_tokens_backward(dx, dout, n, t, d, start, len));
    compare(fam, cs, "dx", dx, nx, 1, "");
}

static void add_case(family *fam, const char *cs, const int32_t *P)
{
    const lpg_file *f = fam->file;
    size_t count = (size_t)P[1];
    const float *a = lpg_f32(f, cs, "a", count), *b = lpg_f32(f, cs, "b", count);
    const float *dout = lpg_f32(f, cs, "dout", count);
    NEED(a);
    NEED(b);
    NEED(dout);
    float *out = lpt_floats(count), *da = lpt_floats(count);
    float *db = lpt_floats(count);
    CALL(lp_add_forward(out, a, b, count));
    compare(fam, cs, "out", out, count, 0, "");
    CALL(lp_add_backward(da, db, dout, count));
    compare(fam, cs, "da", da, count, 1, "");
    compare(fam, cs, "db", db, count, 1, "");
}

static void tensor_case(family *fam, const char *cs)
{
    static const size_t n_params[] = {8, 5, 6, 2};
    const int32_t *P = lpg_i32(fam->file, cs, "params", 0);
    NEED(P);
    if (P[0] < 0 || P[0] > TS_ADD) {
        lpt_fail(__FILE__, __LINE__, "golden tensor %s: unknown kind %d", cs,
                 (int)P[0]);
        return;
    }
    NEED(P = lpg_i32(fam->file, cs, "params", n_params[P[0]]));
    switch (P[0]) {
    case TS_PAD_CHANNELS: pad_channels_case(fam, cs, P); break;
    case TS_CONCAT: concat_case(fam, cs, P); break;
    case TS_SLICE: slice_case(fam, cs, P); break;
    case TS_ADD: add_case(fam, cs, P); break;
    }
}

TEST(golden_tensor_ops) { run_family("tensor.bin", "tensor", tensor_case); }

/* ---- the reader itself -------------------------------------------------- */

/* A well-formed two-record image, then every truncation of it and a few
 * corruptions must be rejected cleanly (no crash, a message). */
TEST(golden_reader_rejects_bad_files)
{
    static const unsigned char good[] = {
        'L', 'P', 'G', 'O', 'L', 'D', '0', '1', 2, 0, 0, 0,
        /* "c/params" i32 [2] = {7, -1} */
        8, 0, 0, 0, 'c', '/', 'p', 'a', 'r', 'a', 'm', 's', 3, 0, 0, 0,
        1, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        /* "c/x" f32 scalar 1.5 */
        3, 0, 0, 0, 'c', '/', 'x', 1, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0xc0, 0x3f};
    lpg_file f;
    CHECK_OK(lpg_parse(&f, good, sizeof good, "good"));
    CHECK(lpg_case_count(&f) == 1);
    CHECK(strcmp(lpg_case_name(&f, 0), "c") == 0);
    const int32_t *p = lpg_i32(&f, "c", "params", 2);
    const float *x = lpg_f32(&f, "c", "x", 1);
    CHECK(p != NULL && p[0] == 7 && p[1] == -1);
    CHECK(x != NULL && *x == 1.5f);
    CHECK(lpg_find(&f, "c", "missing") == NULL);
    CHECK(lpg_find(&f, "", "x") == NULL);
    lpg_free(&f);

    for (size_t len = 0; len < sizeof good; len++)
        CHECK_FAILS(lpg_parse(&f, good, len, "truncated"));
    unsigned char bad[sizeof good + 1];
    memcpy(bad, good, sizeof good);
    bad[sizeof good] = 0;
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good + 1, "trailing byte"));
    memcpy(bad, good, sizeof good);
    bad[7] = '2';
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good, "bad magic"));
    memcpy(bad, good, sizeof good);
    bad[12 + 4 + 8] = 9; /* dtype */
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good, "bad dtype"));
    memcpy(bad, good, sizeof good);
    bad[12 + 4 + 8 + 8] = 0xff; /* dims[0] = 0xff00...ff: larger than file */
    bad[12 + 4 + 8 + 8 + 3] = 0x7f;
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good, "huge dims"));
    memcpy(bad, good, sizeof good);
    bad[12] = 0xff; /* name length */
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good, "long name"));
    memcpy(bad, good, sizeof good);
    bad[8] = 3; /* one record more than present */
    CHECK_FAILS(lpg_parse(&f, bad, sizeof good, "record count"));
}
