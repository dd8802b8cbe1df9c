/*
 * peak.h — measure the machine's peak single-precision FMA rate.
 *
 * A loop of independent fused multiply-adds on as many accumulators as the
 * vector register file comfortably holds: with 12 chains no FMA ever waits
 * for the previous result (latency 4-5 cycles x 2 FMA pipes needs >= 10
 * chains), so the loop runs at the issue rate of the FMA units. Each
 * thread runs its own loop; the rate is the total over threads.
 *
 * Used by bench/peak.c and bench/gemm.c (which reports % of this peak).
 */
#ifndef LOUPE_BENCH_PEAK_H
#define LOUPE_BENCH_PEAK_H

#include <stdint.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline double peak_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Vector width (floats) and instruction set the probe uses. */
#if defined(__AVX512F__)
#define PEAK_ISA "AVX-512F FMA"
#elif defined(__AVX2__) && defined(__FMA__)
#define PEAK_ISA "AVX2 FMA"
#elif defined(__SSE2__)
#define PEAK_ISA "SSE2 mul+add (no FMA in this build)"
#else
#define PEAK_ISA "scalar mul+add (no vector ISA in this build)"
#endif

/* Run `iters` iterations of 12 independent FMA chains; returns flops done
 * (one FMA, or multiply + add, = 2 flops per lane). The result is folded into *sink so the
 * compiler cannot drop the work. */
static inline double peak_fma_loop(long iters, float *sink)
{
#if defined(__AVX512F__)
    __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
#define PEAK_INIT(i) _mm512_set1_ps(1.0f + 0.01f * (i))
#define PEAK_FMA(r) r = _mm512_fmadd_ps(r, x, y)
    const int lanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
#define PEAK_INIT(i) _mm256_set1_ps(1.0f + 0.01f * (i))
#define PEAK_FMA(r) r = _mm256_fmadd_ps(r, x, y)
    const int lanes = 8;
#elif defined(__SSE2__)
    /* no FMA: a multiply and an add per step, which the separate multiply
     * and add pipes run side by side */
    __m128 x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
#define PEAK_INIT(i) _mm_set1_ps(1.0f + 0.01f * (i))
#define PEAK_FMA(r) r = _mm_add_ps(_mm_mul_ps(r, x), y)
    const int lanes = 4;
#else
    float x = 0.999999f, y = 1e-7f;
#define PEAK_INIT(i) (1.0f + 0.01f * (i))
#define PEAK_FMA(r) r = r * x + y
    const int lanes = 1;
#endif
    /* distinct starting values: identical chains would be merged */
#if defined(__AVX512F__)
    __m512
#elif defined(__AVX2__) && defined(__FMA__)
    __m256
#elif defined(__SSE2__)
    __m128
#else
    float
#endif
        c0 = PEAK_INIT(0), c1 = PEAK_INIT(1), c2 = PEAK_INIT(2),
        c3 = PEAK_INIT(3), c4 = PEAK_INIT(4), c5 = PEAK_INIT(5),
        c6 = PEAK_INIT(6), c7 = PEAK_INIT(7), c8 = PEAK_INIT(8),
        c9 = PEAK_INIT(9), c10 = PEAK_INIT(10), c11 = PEAK_INIT(11);
#undef PEAK_INIT
    for (long i = 0; i < iters; i++) {
        PEAK_FMA(c0); PEAK_FMA(c1); PEAK_FMA(c2); PEAK_FMA(c3);
        PEAK_FMA(c4); PEAK_FMA(c5); PEAK_FMA(c6); PEAK_FMA(c7);
        PEAK_FMA(c8); PEAK_FMA(c9); PEAK_FMA(c10); PEAK_FMA(c11);
    }
#undef PEAK_FMA
#if defined(__AVX512F__)
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    *sink += _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lanes_out[8];
    _mm256_storeu_ps(lanes_out, s);
    for (int i = 0; i < 8; i++)
        *sink += lanes_out[i];
#elif defined(__SSE2__)
    __m128 s = _mm_add_ps(_mm_add_ps(_mm_add_ps(c0, c1), _mm_add_ps(c2, c3)),
                          _mm_add_ps(_mm_add_ps(c4, c5), _mm_add_ps(c6, c7)));
    s = _mm_add_ps(s, _mm_add_ps(_mm_add_ps(c8, c9), _mm_add_ps(c10, c11)));
    float lanes_out[4];
    _mm_storeu_ps(lanes_out, s);
    for (int i = 0; i < 4; i++)
        *sink += lanes_out[i];
#else
    *sink += c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
#endif
    return 2.0 * 12.0 * lanes * (double)iters;
}

/* Peak GFLOP/s with `threads` threads (each running its own FMA loop),
 * best of `reps` runs of about `seconds` each. */
static inline double peak_gflops(int threads, int reps, double seconds)
{
    float sink = 0.0f;
    long iters = 1000;
    double best = 0.0;
    /* calibrate the iteration count to roughly `seconds` on one thread */
    for (;;) {
        double t0 = peak_now();
        peak_fma_loop(iters, &sink);
        double dt = peak_now() - t0;
        if (dt > seconds / 4 || iters > (1L << 40))
            break;
        iters *= 2;
    }
    iters *= 4;
    for (int r = 0; r < reps; r++) {
        double flops = 0.0;
        double t0 = peak_now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        {
            float local = 0.0f;
            flops += peak_fma_loop(iters, &local);
            if (local == 12345.0f) /* practically never; keeps `local` live */
                flops += 1e-30;
        }
#else
        (void)threads;
        flops = peak_fma_loop(iters, &sink);
#endif
        double dt = peak_now() - t0;
        double g = flops / dt * 1e-9;
        if (g > best)
            best = g;
    }
    if (sink == 12345.0f)
        best += 1e-30;
    return best;
}

#endif /* LOUPE_BENCH_PEAK_H */
