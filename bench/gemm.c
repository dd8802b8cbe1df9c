/*
 * gemm.c — lp_sgemm throughput next to OpenBLAS's cblas_sgemm.
 *
 *   build/bench/gemm [--quick] [--reps N] [FILTER...]
 *
 * For square sizes and the products ResNet-50 and ViT-B/16 actually run,
 * prints GFLOP/s of loupe and OpenBLAS on 1 and 2 threads, loupe as a
 * percentage of the measured FMA peak (bench/peak.h) and the ratio
 * loupe / OpenBLAS. Each number is the best of several timed repetitions
 * (each repetition runs the product enough times to last >= 10 ms).
 * OpenBLAS columns are "-" when built without it (no -DHAVE_OPENBLAS).
 * FILTER arguments restrict the run to shapes whose name contains one.
 */
#include "loupe.h"
#include "peak.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct {
    const char *name;
    int ta, tb, m, n, k;
} shape;

/* Conv as GEMM: M = C_out, K = C_in*KH*KW, N = OH*OW (weights are A).
 * Backward data (dX = W^T dY) is trans_a; dW = dY X^T is trans_b.
 * ViT linears: out[rows, out_f] = in[rows, in_f] W[out_f, in_f]^T. */
static const shape k_shapes[] = {
    {"square 256", 0, 0, 256, 256, 256},
    {"square 512", 0, 0, 512, 512, 512},
    {"square 1024", 0, 0, 1024, 1024, 1024},
    {"square 1024 TN", 1, 0, 1024, 1024, 1024},
    {"square 1024 NT", 0, 1, 1024, 1024, 1024},
    {"square 1024 TT", 1, 1, 1024, 1024, 1024},
    {"square 2048", 0, 0, 2048, 2048, 2048},
    {"r50 conv1 7x7/2", 0, 0, 64, 12544, 147},
    {"r50 layer1 3x3", 0, 0, 64, 3136, 576},
    {"r50 layer1 1x1 64->256", 0, 0, 256, 3136, 64},
    {"r50 layer1 1x1 256->64", 0, 0, 64, 3136, 256},
    {"r50 layer3 3x3", 0, 0, 256, 196, 2304},
    {"r50 layer4 3x3", 0, 0, 512, 49, 4608},
    {"r50 layer1 3x3 dX (TN)", 1, 0, 576, 3136, 64},
    {"r50 layer3 3x3 dX (TN)", 1, 0, 2304, 196, 256},
    {"r50 layer3 3x3 dW (NT)", 0, 1, 256, 2304, 196},
    {"r50 layer4 3x3 dX (TN)", 1, 0, 4608, 49, 512},
    {"vit qkv 197x768x2304", 0, 1, 197, 2304, 768},
    {"vit fc1 197x768x3072", 0, 1, 197, 3072, 768},
    {"vit fc2 197x3072x768", 0, 1, 197, 768, 3072},
    {"vit proj 197x768x768", 0, 1, 197, 768, 768},
    {"vit attn q.k^T (NT)", 0, 1, 197, 197, 64},
    {"vit attn p.v", 0, 0, 197, 64, 197},
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

typedef struct {
    float *a, *b, *c;
    int lda, ldb, ldc;
} operands;

enum { LIB_LOUPE, LIB_OPENBLAS };

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int run_once(int lib, const shape *s, operands *o)
{
    if (lib == LIB_LOUPE)
        return lp_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, o->a, o->lda,
                        o->b, o->ldb, 0.0f, o->c, o->ldc);
#ifdef HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k, 1.0f,
                o->a, o->lda, o->b, o->ldb, 0.0f, o->c, o->ldc);
#endif
    return LP_OK;
}

static void set_threads(int lib, int threads)
{
    if (lib == LIB_LOUPE)
        lp_set_num_threads(threads);
#ifdef HAVE_OPENBLAS
    else
        openblas_set_num_threads(threads);
#endif
}

/* GFLOP/s of one timed repetition: the product run back to back until
 * at least `min_s` seconds have passed. */
static double timed_rate(int lib, int threads, const shape *s, operands *o,
                         double min_s)
{
    double flops = 2.0 * s->m * s->n * s->k;
    int calls = 0;
    set_threads(lib, threads);
    double t0 = peak_now(), dt;
    do {
        if (run_once(lib, s, o) != LP_OK) {
            fprintf(stderr, "lp_sgemm failed: %s\n", lp_last_error());
            exit(1);
        }
        calls++;
        dt = peak_now() - t0;
    } while (dt < min_s);
    return flops * calls / dt * 1e-9;
}

enum { L1, L2, B1, B2, N_CONFIGS };

/* Best of `reps` rounds for every configuration, the configurations
 * interleaved within each round so that a noisy phase of a shared machine
 * hits all of them alike. Single-threaded rounds are cheap and run twice
 * as many. Idle worker threads spin for a while after a threaded call
 * (libgomp for a few ms, OpenBLAS for up to ~0.1 s) and would steal a core
 * from the other library, so each threaded run is followed by a pause. */
static void measure_all(const shape *s, operands *o, int reps, double min_s,
                        int threads2, int have_blas, double best[N_CONFIGS])
{
    for (int c = 0; c < N_CONFIGS; c++)
        best[c] = 0.0;
    for (int phase = 0; phase < 2; phase++) {
        int threads = phase == 0 ? 1 : threads2;
        int lc = phase == 0 ? L1 : L2, bc = phase == 0 ? B1 : B2;
        if (phase == 1 && threads2 == 1)
            break;
        for (int r = 0; r < (phase == 0 ? 2 * reps : reps); r++) {
            for (int lib = LIB_LOUPE; lib <= LIB_OPENBLAS; lib++) {
                if (lib == LIB_OPENBLAS && !have_blas)
                    continue;
                if (r == 0)
                    timed_rate(lib, threads, s, o, 0.0); /* warm-up */
                double g = timed_rate(lib, threads, s, o, min_s);
                int c = lib == LIB_LOUPE ? lc : bc;
                if (g > best[c])
                    best[c] = g;
                if (threads > 1 && have_blas)
                    sleep_ms(lib == LIB_LOUPE ? 10 : 100);
            }
        }
    }
    if (threads2 == 1) {
        best[L2] = best[L1];
        best[B2] = best[B1];
    }
}

static float *random_floats(size_t n, unsigned seed)
{
    float *x = lp_alloc(n, sizeof(float));
    if (x == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    srand(seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return x;
}

/* max |x - y| / max |y| */
static double rel_diff(const float *x, const float *y, size_t n)
{
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        if (!(d <= e))
            e = d;
        if (fabs((double)y[i]) > s)
            s = fabs((double)y[i]);
    }
    return s > 0.0 ? e / s : e;
}

static void print_cell(double v, const char *fmt, int width)
{
    if (v > 0.0)
        printf(fmt, width, v);
    else
        printf("%*s", width, "-");
}

typedef struct {
    double rate[N_CONFIGS];
} result;

static void print_row(const shape *s, const result *r, double peak1,
                      double peak2)
{
    const double *v = r->rate;
    printf("%-24s %5d %5d %5d | ", s->name, s->m, s->n, s->k);
    print_cell(v[L1], "%*.1f", 7);
    printf(" %4.0f%% ", 100.0 * v[L1] / peak1);
    print_cell(v[B1], "%*.1f", 7);
    print_cell(v[B1] > 0 ? v[L1] / v[B1] : 0.0, "%*.2f", 6);
    printf(" | ");
    print_cell(v[L2], "%*.1f", 7);
    printf(" %4.0f%% ", 100.0 * v[L2] / peak2);
    print_cell(v[B2], "%*.1f", 7);
    print_cell(v[B2] > 0 ? v[L2] / v[B2] : 0.0, "%*.2f", 6);
    printf("\n");
}

/* Geometric mean and minimum of loupe / OpenBLAS over the shapes whose
 * name starts with `prefix`. */
static void print_summary(const char *prefix, const result *res,
                          int have_blas)
{
    for (int t = 0; t < 2 && have_blas; t++) {
        int lc = t ? L2 : L1, bc = t ? B2 : B1, n = 0;
        double log_sum = 0.0, worst = 1e30;
        for (size_t i = 0; i < N_SHAPES; i++) {
            if (strncmp(k_shapes[i].name, prefix, strlen(prefix)) != 0 ||
                res[i].rate[lc] <= 0.0 || res[i].rate[bc] <= 0.0)
                continue;
            double x = res[i].rate[lc] / res[i].rate[bc];
            log_sum += log(x);
            worst = x < worst ? x : worst;
            n++;
        }
        if (n > 0)
            printf("%-9s %d thread%s: loupe / OpenBLAS geometric mean %.2f, "
                   "minimum %.2f over %d shapes\n",
                   prefix, t ? 2 : 1, t ? "s" : " ", exp(log_sum / n), worst,
                   n);
    }
}

/* Shape selected by the command line (no filters: all of them)? */
static int selected(const shape *s, int quick, int argc, char **argv)
{
    int filters = 0;
    if (quick && s->m == 2048)
        return 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        filters++;
        if (strstr(s->name, argv[i]) != NULL)
            return 1;
    }
    return filters == 0;
}

int main(int argc, char **argv)
{
    int quick = 0, reps_arg = 0;
    for (int i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "--quick") == 0;
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps_arg = atoi(argv[i + 1]);
            argv[i + 1] = (char *)"-"; /* not a filter */
        }
    }
    /* many short rounds rather than a few long ones: on a shared machine
     * the best of them is the one that ran undisturbed */
    int reps = reps_arg > 0 ? reps_arg : quick ? 3 : 8;
    double min_s = 0.01;
    int saved_threads = lp_get_num_threads();
    int threads2 = saved_threads >= 2 ? 2 : 1;
#ifdef HAVE_OPENBLAS
    int have_blas = 1;
#else
    int have_blas = 0;
#endif
    static result res[N_SHAPES];

    /* The peak is measured before and after the table (best of both): a
     * busy neighbour on a shared machine can only lower it. */
    double peak1 = peak_gflops(1, quick ? 3 : 5, 0.1);
    double peak2 = peak_gflops(threads2, quick ? 3 : 5, 0.1);
    printf("loupe GEMM benchmark: %s\n", lp_build_info());
    printf("OpenBLAS: %s\n", have_blas ? "cblas_sgemm (libopenblas)"
                                       : "not built in");
    fflush(stdout);

    for (size_t i = 0; i < N_SHAPES; i++) {
        const shape *s = &k_shapes[i];
        if (!selected(s, quick, argc, argv))
            continue;
        operands o;
        int a_rows = s->ta ? s->k : s->m, a_cols = s->ta ? s->m : s->k;
        int b_rows = s->tb ? s->n : s->k, b_cols = s->tb ? s->k : s->n;
        o.lda = a_cols;
        o.ldb = b_cols;
        o.ldc = s->n;
        o.a = random_floats((size_t)a_rows * a_cols, 1 + (unsigned)i);
        o.b = random_floats((size_t)b_rows * b_cols, 100 + (unsigned)i);
        o.c = random_floats((size_t)s->m * s->n, 200 + (unsigned)i);
        if (have_blas) {
            /* agreement check: the two libraries compute the same product */
            size_t mn = (size_t)s->m * s->n;
            float *mine = lp_alloc(mn, sizeof(float));
            if (mine == NULL)
                return 1;
            lp_set_num_threads(1);
            run_once(LIB_LOUPE, s, &o);
            memcpy(mine, o.c, mn * sizeof(float));
            set_threads(LIB_OPENBLAS, 1);
            run_once(LIB_OPENBLAS, s, &o);
            double d = rel_diff(mine, o.c, mn);
            if (d > 1e-4)
                printf("WARNING: %s: loupe and OpenBLAS differ by %.3g\n",
                       s->name, d);
            lp_free(mine);
        }
        measure_all(s, &o, reps, min_s, threads2, have_blas, res[i].rate);
        lp_free(o.a);
        lp_free(o.b);
        lp_free(o.c);
    }

    double p1 = peak_gflops(1, quick ? 3 : 5, 0.1);
    double p2 = peak_gflops(threads2, quick ? 3 : 5, 0.1);
    peak1 = p1 > peak1 ? p1 : peak1;
    peak2 = p2 > peak2 ? p2 : peak2;
    printf("measured FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f on %d\n",
           PEAK_ISA, peak1, peak2, threads2);
    printf("GFLOP/s, best of %d rounds (%d on 1 thread); %%pk = loupe / "
           "measured peak for the same thread count; x = loupe / OpenBLAS\n\n",
           reps, 2 * reps);
    printf("%-24s %5s %5s %5s | %7s %5s %7s %5s | %7s %5s %7s %5s\n", "shape",
           "M", "N", "K", "loupe1", "%pk", "blas1", "x", "loupe2", "%pk",
           "blas2", "x");
    printf("%.*s\n", 104,
           "---------------------------------------------------------------"
           "---------------------------------------------------------------");
    for (size_t i = 0; i < N_SHAPES; i++)
        if (selected(&k_shapes[i], quick, argc, argv))
            print_row(&k_shapes[i], &res[i], peak1, peak2);
    printf("\n");
    print_summary("square", res, have_blas);
    print_summary("r50", res, have_blas);
    print_summary("vit", res, have_blas);
    lp_set_num_threads(saved_threads);
    return 0;
}
