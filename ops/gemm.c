/*
 * gemm.c — single-precision GEMM, the product every layer runs through.
 *
 *     C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n]   (row-major)
 *
 * Structure (Goto & van de Geijn, "Anatomy of high-performance matrix
 * multiplication", ACM TOMS 2008; the five loops of BLIS, Van Zee & van de
 * Geijn, ACM TOMS 2015):
 *
 *   for jc in steps of NC over n:
 *     for pc in steps of KC over k:            B block kc x nc (L2/L3)
 *       for ic in steps of MC over m:
 *         pack the A block into MR-tall panels  A block mc x kc (L2)
 *         for jr in steps of NR:               B panel kc x NR (L1)
 *           for ir in steps of MR:
 *             micro-kernel: MR x NR tile of C (registers)
 *
 * Packing copies a block into the exact order the micro-kernel reads it
 * (unit stride, aligned), whatever the transpositions and leading
 * dimensions, and pads partial panels with zeros, so that the micro-kernel
 * is a single loop over k. All four transposition cases only differ in the
 * packing routine used (a row copy or an 8 x 8 register transpose). B
 * panels are packed on first use, pipelined with the micro-kernel calls
 * (see block_product), which hides the latency of reading B from memory.
 *
 * Micro-kernels: portable C 4x8 (always compiled, and the reference for the
 * SIMD ones), AVX2+FMA 6x16 (12 ymm accumulators; with variants for 1-5
 * rows for the bottom edge of C) and AVX-512F 6x32, each compiled only when
 * the build targets that instruction set. Tiles short of columns go
 * through a scratch tile.
 *
 * Orientation: when n is small (49 = 7x7 output pixels, say) a 16-wide
 * register tile would be a quarter padding. The product is then computed
 * transposed, C^T = op(B)^T op(A)^T, into a scratch matrix (so the kernel
 * still stores contiguous rows) whose finished strips are transposed into
 * C while still in cache.
 *
 * Threads (OpenMP): C's tiles are split into a grid of rectangles, one per
 * thread, each computed by the loops above with the thread's own packing
 * buffers: no barriers, no shared writes. Determinism: every element of C
 * goes through the same operations whatever the thread count, because the
 * K blocking depends on k only and is never split between threads, and the
 * orientation and block sizes depend on the shape only.
 */
#include "internal.h"

#include <string.h>

#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX2__) && defined(__FMA__)
#define LP_HAVE_AVX2 1
#endif
#if defined(__AVX512F__)
#define LP_HAVE_AVX512 1
#endif

/* ------------------------------------------------------------------ */
/* Kernel table                                                        */
/* ------------------------------------------------------------------ */

/* Micro-kernel: the full MR x NR tile C = alpha * A_panel * B_panel + beta * C
 * over kc steps, A_panel[p*MR + i], B_panel[p*NR + j] (B 64-byte aligned),
 * C row stride ldc, column stride 1. beta == 0: C is not read. */
typedef void (*ukernel_fn)(int kc, const float *a, const float *b, float *c,
                           size_t ldc, float alpha, float beta);

typedef struct {
    lp_gemm_kernel id;
    const char *name;
    int mr, nr;     /* register tile */
    int mc, kc, nc; /* cache blocks; mc a multiple of mr, nc of nr */
    ukernel_fn run; /* the full mr x nr tile */
    /* rows[r]: the top r rows of a tile only (r < mr), or NULL when the
     * kernel has no such variant (then the full tile is computed) */
    ukernel_fn rows[8];
} gemm_kernel_info;

/* ------------------------------------------------------------------ */
/* Portable micro-kernel                                               */
/* ------------------------------------------------------------------ */

#define SC_MR 4
#define SC_NR 8

/* Plain loops over a fixed-size accumulator tile; the compiler keeps it in
 * registers (and vectorises it with whatever the target offers). */
static void ukernel_scalar(int kc, const float *restrict a,
                           const float *restrict b, float *restrict c,
                           size_t ldc, float alpha, float beta)
{
    float acc[SC_MR][SC_NR];
    for (int i = 0; i < SC_MR; i++)
        for (int j = 0; j < SC_NR; j++)
            acc[i][j] = 0.0f;
    for (int p = 0; p < kc; p++) {
        const float *ap = a + (size_t)p * SC_MR, *bp = b + (size_t)p * SC_NR;
        /* fully unrolled, so the tile lives in registers, not memory */
#pragma GCC unroll 4
        for (int i = 0; i < SC_MR; i++)
#pragma GCC unroll 8
            for (int j = 0; j < SC_NR; j++)
                acc[i][j] += ap[i] * bp[j];
    }
    for (int i = 0; i < SC_MR; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < SC_NR; j++)
                ci[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < SC_NR; j++)
                ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}

/* ------------------------------------------------------------------ */
/* AVX2 + FMA micro-kernel, 6 x 16                                     */
/* ------------------------------------------------------------------ */

#ifdef LP_HAVE_AVX2

/* 6 rows x 2 ymm = 12 accumulators, 2 registers of B and one broadcast of
 * A: 15 of the 16 ymm registers. Per k step: 2 loads, 6 broadcasts, 12
 * FMAs, enough independent FMAs to cover the latency of both FMA pipes.
 *
 * The same code, instantiated for R = 1..6 rows, also serves the bottom
 * edge of C: a tile with fewer rows then costs fewer FMAs (the A panel is
 * still 6 wide, zero padded) and stores straight into C. Each element of
 * C sees exactly the same operations whichever R computes it. */
#define AVX2_ROW(r)                                                        \
    do {                                                                   \
        if (R > (r)) {                                                     \
            __m256 av = _mm256_broadcast_ss(a + (r));                      \
            c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                    \
            c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                    \
        }                                                                  \
    } while (0)

#define AVX2_STEP()                                                        \
    do {                                                                   \
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);         \
        AVX2_ROW(0); AVX2_ROW(1); AVX2_ROW(2);                             \
        AVX2_ROW(3); AVX2_ROW(4); AVX2_ROW(5);                             \
        a += 6;                                                            \
        b += 16;                                                           \
    } while (0)

/* c = alpha * acc (+ beta * c), the same ops for every element */
static inline void avx2_store(float *c, __m256 acc, __m256 va, __m256 vb,
                              int use_beta)
{
    __m256 v = _mm256_mul_ps(va, acc);
    if (use_beta)
        v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), v);
    _mm256_storeu_ps(c, v);
}

#define AVX2_STORE_ROW(r)                                                  \
    do {                                                                   \
        if (R > (r)) {                                                     \
            avx2_store(c + (r) * ldc, c##r##0, va, vb, ub);                \
            avx2_store(c + (r) * ldc + 8, c##r##1, va, vb, ub);            \
        }                                                                  \
    } while (0)

static inline __attribute__((always_inline)) void
avx2_rows_x16(const int R, int kc, const float *restrict a,
              const float *restrict b, float *restrict c, size_t ldc,
              float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
           c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
           c50 = c00, c51 = c00;
    for (int r = 0; r < R; r++)
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        AVX2_STEP(); AVX2_STEP(); AVX2_STEP(); AVX2_STEP();
    }
    for (; p < kc; p++)
        AVX2_STEP();

    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    int ub = beta != 0.0f;
    AVX2_STORE_ROW(0); AVX2_STORE_ROW(1); AVX2_STORE_ROW(2);
    AVX2_STORE_ROW(3); AVX2_STORE_ROW(4); AVX2_STORE_ROW(5);
}

#define AVX2_KERNEL(R)                                                     \
    static void ukernel_avx2_##R##x16(int kc, const float *restrict a,     \
                                      const float *restrict b,             \
                                      float *restrict c, size_t ldc,       \
                                      float alpha, float beta)             \
    {                                                                      \
        avx2_rows_x16(R, kc, a, b, c, ldc, alpha, beta);                   \
    }
AVX2_KERNEL(1)
AVX2_KERNEL(2)
AVX2_KERNEL(3)
AVX2_KERNEL(4)
AVX2_KERNEL(5)
AVX2_KERNEL(6)

#undef AVX2_KERNEL
#undef AVX2_STORE_ROW
#undef AVX2_ROW
#undef AVX2_STEP
#endif /* LP_HAVE_AVX2 */

/* ------------------------------------------------------------------ */
/* AVX-512F micro-kernel, 6 x 32                                       */
/* ------------------------------------------------------------------ */

#ifdef LP_HAVE_AVX512

/* The AVX2 kernel with 16-float vectors: 6 rows x 2 zmm accumulators
 * (named variables, so that they live in registers). */
#define AVX512_ROW(r)                                                      \
    do {                                                                   \
        __m512 av = _mm512_set1_ps(a[r]);                                  \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                        \
        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                        \
    } while (0)

static inline void avx512_store(float *c, __m512 acc, __m512 va, __m512 vb,
                                int use_beta)
{
    __m512 v = _mm512_mul_ps(va, acc);
    if (use_beta)
        v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), v);
    _mm512_storeu_ps(c, v);
}

static void ukernel_avx512_6x32(int kc, const float *restrict a,
                                const float *restrict b, float *restrict c,
                                size_t ldc, float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
           c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
           c50 = c00, c51 = c00;
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        AVX512_ROW(0); AVX512_ROW(1); AVX512_ROW(2);
        AVX512_ROW(3); AVX512_ROW(4); AVX512_ROW(5);
        a += 6;
        b += 32;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    int ub = beta != 0.0f;
    avx512_store(c, c00, va, vb, ub);
    avx512_store(c + 16, c01, va, vb, ub);
    avx512_store(c + ldc, c10, va, vb, ub);
    avx512_store(c + ldc + 16, c11, va, vb, ub);
    avx512_store(c + 2 * ldc, c20, va, vb, ub);
    avx512_store(c + 2 * ldc + 16, c21, va, vb, ub);
    avx512_store(c + 3 * ldc, c30, va, vb, ub);
    avx512_store(c + 3 * ldc + 16, c31, va, vb, ub);
    avx512_store(c + 4 * ldc, c40, va, vb, ub);
    avx512_store(c + 4 * ldc + 16, c41, va, vb, ub);
    avx512_store(c + 5 * ldc, c50, va, vb, ub);
    avx512_store(c + 5 * ldc + 16, c51, va, vb, ub);
}
#undef AVX512_ROW
#endif /* LP_HAVE_AVX512 */

/* Cache blocks. KC: a kc x NR panel of B (16 KiB for 256 x 16) stays in the
 * 32 KiB L1 next to the streaming A panels; MC x KC of A (~150 KiB) sits in
 * the 512 KiB L2; KC x NC of B (4 MiB) in L3. */
static const gemm_kernel_info k_kernels[] = {
    {LP_GEMM_SCALAR, "scalar-4x8", SC_MR, SC_NR, 128, 256, 2048,
     ukernel_scalar, {NULL}},
#ifdef LP_HAVE_AVX2
    {LP_GEMM_AVX2, "avx2-6x16", 6, 16, 144, 256, 4080, ukernel_avx2_6x16,
     {NULL, ukernel_avx2_1x16, ukernel_avx2_2x16, ukernel_avx2_3x16,
      ukernel_avx2_4x16, ukernel_avx2_5x16}},
#endif
#ifdef LP_HAVE_AVX512
    {LP_GEMM_AVX512, "avx512-6x32", 6, 32, 144, 256, 4064,
     ukernel_avx512_6x32, {NULL}},
#endif
};
#define N_KERNELS (sizeof k_kernels / sizeof k_kernels[0])

/* The kernel for `id`; LP_GEMM_AUTO is the last (widest) one compiled. */
static const gemm_kernel_info *find_kernel(lp_gemm_kernel id)
{
    if (id == LP_GEMM_AUTO)
        return &k_kernels[N_KERNELS - 1];
    for (size_t i = 0; i < N_KERNELS; i++)
        if (k_kernels[i].id == id)
            return &k_kernels[i];
    return NULL;
}

int lp_gemm_kernel_available(lp_gemm_kernel kernel)
{
    return find_kernel(kernel) != NULL;
}

const char *lp_gemm_kernel_name(lp_gemm_kernel kernel)
{
    const gemm_kernel_info *k = find_kernel(kernel);
    if (k != NULL)
        return k->name;
    switch (kernel) {
    case LP_GEMM_AVX2: return "avx2-6x16 (not compiled)";
    case LP_GEMM_AVX512: return "avx512-6x32 (not compiled)";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------ */
/* Packing                                                             */
/* ------------------------------------------------------------------ */

/* Prefetch the cache line holding p. An asm statement on x86 because GCC
 * deletes loops whose only statements are __builtin_prefetch calls. */
static inline void prefetch_line(const float *p)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#elif defined(__GNUC__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/*
 * One micro-panel, W wide (W = MR for A, NR for B), kc deep:
 *     dst[p*W + i] = src[i*s_i + p*s_p]   for i < w,   0 for w <= i < W.
 * For A, i runs over rows of op(A) and p over k; for B, i over columns of
 * op(B). Two layouts are common: the panel's width contiguous (s_i == 1,
 * a row copy per k step) or k contiguous (s_p == 1, a transpose).
 */
static inline __attribute__((always_inline)) void
pack_panel_w(float *restrict dst, const float *restrict src, ptrdiff_t s_i,
             ptrdiff_t s_p, int w, const int W, int kc)
{
    if (w == W && s_i == 1) {
        for (int p = 0; p < kc; p++)
            for (int i = 0; i < W; i++)
                dst[(size_t)p * W + i] = src[p * s_p + i];
        return;
    }
    if (s_p == 1) {
        /* transpose in strips of 8 k steps: W rows read contiguously */
        int p = 0;
        for (; p + 8 <= kc; p += 8) {
            for (int i = 0; i < w; i++) {
                const float *row = src + i * s_i + p;
                for (int q = 0; q < 8; q++)
                    dst[(size_t)(p + q) * W + i] = row[q];
            }
            for (int i = w; i < W; i++)
                for (int q = 0; q < 8; q++)
                    dst[(size_t)(p + q) * W + i] = 0.0f;
        }
        for (; p < kc; p++) {
            for (int i = 0; i < w; i++)
                dst[(size_t)p * W + i] = src[i * s_i + p];
            for (int i = w; i < W; i++)
                dst[(size_t)p * W + i] = 0.0f;
        }
        return;
    }
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < w; i++)
            dst[(size_t)p * W + i] = src[i * s_i + p * s_p];
        for (int i = w; i < W; i++)
            dst[(size_t)p * W + i] = 0.0f;
    }
}

#ifdef LP_HAVE_AVX2
/* In-register 8 x 8 transpose of the named variables r0..r7 (row i in,
 * column i out): unpack pairs, shuffle quads, swap 128-bit halves. */
#define TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7)                           \
    do {                                                                     \
        __m256 t0_ = _mm256_unpacklo_ps(r0, r1), t1_ = _mm256_unpackhi_ps(r0, r1); \
        __m256 t2_ = _mm256_unpacklo_ps(r2, r3), t3_ = _mm256_unpackhi_ps(r2, r3); \
        __m256 t4_ = _mm256_unpacklo_ps(r4, r5), t5_ = _mm256_unpackhi_ps(r4, r5); \
        __m256 t6_ = _mm256_unpacklo_ps(r6, r7), t7_ = _mm256_unpackhi_ps(r6, r7); \
        __m256 s0_ = _mm256_shuffle_ps(t0_, t2_, 0x44);                       \
        __m256 s1_ = _mm256_shuffle_ps(t0_, t2_, 0xEE);                       \
        __m256 s2_ = _mm256_shuffle_ps(t1_, t3_, 0x44);                       \
        __m256 s3_ = _mm256_shuffle_ps(t1_, t3_, 0xEE);                       \
        __m256 s4_ = _mm256_shuffle_ps(t4_, t6_, 0x44);                       \
        __m256 s5_ = _mm256_shuffle_ps(t4_, t6_, 0xEE);                       \
        __m256 s6_ = _mm256_shuffle_ps(t5_, t7_, 0x44);                       \
        __m256 s7_ = _mm256_shuffle_ps(t5_, t7_, 0xEE);                       \
        r0 = _mm256_permute2f128_ps(s0_, s4_, 0x20);                          \
        r1 = _mm256_permute2f128_ps(s1_, s5_, 0x20);                          \
        r2 = _mm256_permute2f128_ps(s2_, s6_, 0x20);                          \
        r3 = _mm256_permute2f128_ps(s3_, s7_, 0x20);                          \
        r4 = _mm256_permute2f128_ps(s0_, s4_, 0x31);                          \
        r5 = _mm256_permute2f128_ps(s1_, s5_, 0x31);                          \
        r6 = _mm256_permute2f128_ps(s2_, s6_, 0x31);                          \
        r7 = _mm256_permute2f128_ps(s3_, s7_, 0x31);                          \
    } while (0)

/* Mask selecting the first w (0..8) lanes, for loads that must not read
 * past the end of a row. */
static inline __m256i first_lanes(int w)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(w),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 16-wide B panel, columns contiguous (s_i == 1): one row copy per k. */
static void pack16_copy(float *restrict dst, const float *restrict src,
                        ptrdiff_t s_p, int w, int kc)
{
    if (w == 16) {
        for (int p = 0; p < kc; p++) {
            const float *s = src + p * s_p;
            _mm256_store_ps(dst + 16 * p, _mm256_loadu_ps(s));
            _mm256_store_ps(dst + 16 * p + 8, _mm256_loadu_ps(s + 8));
        }
        return;
    }
    __m256i m0 = first_lanes(w < 8 ? w : 8), m1 = first_lanes(w > 8 ? w - 8 : 0);
    for (int p = 0; p < kc; p++) {
        const float *s = src + p * s_p;
        _mm256_store_ps(dst + 16 * p, _mm256_maskload_ps(s, m0));
        _mm256_store_ps(dst + 16 * p + 8, _mm256_maskload_ps(s + 8, m1));
    }
}

/* 16-wide B panel, k contiguous (s_p == 1): 8 x 8 transposes, rows
 * 0-7 into the low half of 8 packed k steps, rows 8-15 into the high. */
static void pack16_transpose(float *restrict dst, const float *restrict src,
                             ptrdiff_t s_i, int w, int kc)
{
    int p = 0;
    if (w == 16) {
        for (; p + 8 <= kc; p += 8) {
            for (int h = 0; h < 2; h++) {
                const float *s = src + 8 * h * s_i + p;
                float *d = dst + 16 * p + 8 * h;
                __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + s_i),
                       r2 = _mm256_loadu_ps(s + 2 * s_i),
                       r3 = _mm256_loadu_ps(s + 3 * s_i),
                       r4 = _mm256_loadu_ps(s + 4 * s_i),
                       r5 = _mm256_loadu_ps(s + 5 * s_i),
                       r6 = _mm256_loadu_ps(s + 6 * s_i),
                       r7 = _mm256_loadu_ps(s + 7 * s_i);
                TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
                _mm256_store_ps(d, r0);
                _mm256_store_ps(d + 16, r1);
                _mm256_store_ps(d + 32, r2);
                _mm256_store_ps(d + 48, r3);
                _mm256_store_ps(d + 64, r4);
                _mm256_store_ps(d + 80, r5);
                _mm256_store_ps(d + 96, r6);
                _mm256_store_ps(d + 112, r7);
            }
        }
    }
    for (; p < kc; p++) {
        for (int i = 0; i < w; i++)
            dst[16 * p + i] = src[i * s_i + p];
        for (int i = w; i < 16; i++)
            dst[16 * p + i] = 0.0f;
    }
}

/* 6-tall A panel, k contiguous (s_p == 1, A not transposed): 8 k steps of
 * the 6 rows at a time through an 8 x 8 transpose (2 rows of zeros). */
static inline void store6(float *d, __m256 v)
{
    _mm_storeu_ps(d, _mm256_castps256_ps128(v));
    _mm_storel_pi((__m64 *)(d + 4), _mm256_extractf128_ps(v, 1));
}

static void pack6_transpose(float *restrict dst, const float *restrict src,
                            ptrdiff_t s_i, int w, int kc)
{
    int p = 0;
    if (w == 6) {
        for (; p + 8 <= kc; p += 8) {
            const float *s = src + p;
            float *d = dst + 6 * p;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + s_i),
                   r2 = _mm256_loadu_ps(s + 2 * s_i),
                   r3 = _mm256_loadu_ps(s + 3 * s_i),
                   r4 = _mm256_loadu_ps(s + 4 * s_i),
                   r5 = _mm256_loadu_ps(s + 5 * s_i), r6 = _mm256_setzero_ps(),
                   r7 = r6;
            TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            /* column q = the 6 rows at k step p+q */
            store6(d, r0);
            store6(d + 6, r1);
            store6(d + 12, r2);
            store6(d + 18, r3);
            store6(d + 24, r4);
            store6(d + 30, r5);
            store6(d + 36, r6);
            store6(d + 42, r7);
        }
    }
    for (; p < kc; p++) {
        for (int i = 0; i < w; i++)
            dst[6 * p + i] = src[i * s_i + p];
        for (int i = w; i < 6; i++)
            dst[6 * p + i] = 0.0f;
    }
}

/* 6-tall A panel, rows contiguous (s_i == 1, A transposed). */
static void pack6_copy(float *restrict dst, const float *restrict src,
                       ptrdiff_t s_p, int w, int kc)
{
    if (w == 6) {
        for (int p = 0; p < kc; p++) {
            const float *s = src + p * s_p;
            float *d = dst + 6 * p;
            _mm_storeu_ps(d, _mm_loadu_ps(s));
            _mm_storel_pi((__m64 *)(d + 4),
                          _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(s + 4)));
        }
        return;
    }
    __m256i mask = first_lanes(w);
    for (int p = 0; p < kc; p++) {
        __m256 v = _mm256_maskload_ps(src + p * s_p, mask);
        store6(dst + 6 * p, v);
    }
}
#endif /* LP_HAVE_AVX2 */

/* Dispatch on the panel width so the loops above see a constant W. */
static void pack_panel(float *dst, const float *src, ptrdiff_t s_i,
                       ptrdiff_t s_p, int w, int W, int kc)
{
#ifdef LP_HAVE_AVX2
    if (W == 16 && s_i == 1) {
        pack16_copy(dst, src, s_p, w, kc);
        return;
    }
    if (W == 16 && s_p == 1) {
        pack16_transpose(dst, src, s_i, w, kc);
        return;
    }
    if (W == 6 && s_i == 1) {
        pack6_copy(dst, src, s_p, w, kc);
        return;
    }
    if (W == 6 && s_p == 1) {
        pack6_transpose(dst, src, s_i, w, kc);
        return;
    }
#endif
    switch (W) {
    case 4: pack_panel_w(dst, src, s_i, s_p, w, 4, kc); break;
    case 6: pack_panel_w(dst, src, s_i, s_p, w, 6, kc); break;
    case 8: pack_panel_w(dst, src, s_i, s_p, w, 8, kc); break;
    case 16: pack_panel_w(dst, src, s_i, s_p, w, 16, kc); break;
    case 32: pack_panel_w(dst, src, s_i, s_p, w, 32, kc); break;
    default: pack_panel_w(dst, src, s_i, s_p, w, W, kc); break;
    }
}

/* Distance in floats between consecutive packed A panels: one cache line
 * more than the panel, so that the panels do not all start at the same
 * offset modulo 4 KiB (kc * 6 * 4 bytes is often a multiple of 2 KiB),
 * which would send the concurrent writes of pack6_block_rows, and the
 * kernel's reads, to the same few L1 sets. */
static size_t a_panel_stride(int kc, int mr) { return (size_t)kc * mr + 16; }

#ifdef LP_HAVE_AVX2
/* A block of 6-tall panels, rows contiguous (s_i == 1, A transposed):
 * sweep the source row by row (each k step one contiguous run of len
 * floats) and deal each row out to the panels. Going down each panel
 * instead would read 24 bytes from each of kc far-apart rows per panel. */
static void pack6_block_rows(float *restrict dst, const float *restrict src,
                             ptrdiff_t s_p, int len, int kc)
{
    int full = len / 6 * 6;
    __m256i tail = first_lanes(len - full);
    for (int p = 0; p < kc; p++) {
        const float *row = src + p * s_p;
        float *d = dst + 6 * (size_t)p;
        if (p + 4 < kc) /* rows are far apart: fetch a few rows ahead */
            for (int i = 0; i < len; i += 16)
                prefetch_line(row + 4 * s_p + i);
        for (int i = 0; i < full; i += 6, d += a_panel_stride(kc, 6)) {
            _mm_storeu_ps(d, _mm_loadu_ps(row + i));
            _mm_storel_pi((__m64 *)(d + 4),
                          _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(row + i + 4)));
        }
        if (full < len)
            store6(d, _mm256_maskload_ps(row + full, tail));
    }
}
#endif

/* Pack `len` rows of op(A) starting at src into W-tall panels, panel i at
 * dst + i * a_panel_stride(kc, W). */
static void pack_a_block(float *dst, const float *src, ptrdiff_t s_i,
                         ptrdiff_t s_p, int len, int W, int kc)
{
#ifdef LP_HAVE_AVX2
    if (s_i == 1 && W == 6) {
        pack6_block_rows(dst, src, s_p, len, kc);
        return;
    }
#endif
    for (int i = 0; i < len; i += W) {
        int w = len - i < W ? len - i : W;
        pack_panel(dst + i / W * a_panel_stride(kc, W), src + i * s_i, s_i,
                   s_p, w, W, kc);
    }
}

/* ------------------------------------------------------------------ */
/* The blocked product                                                 */
/* ------------------------------------------------------------------ */

/* A product with general strides: op(A)(i,p) = a[i*a_rs + p*a_cs],
 * op(B)(p,j) = b[p*b_rs + j*b_cs], C row-major with leading dimension ldc. */
typedef struct {
    int m, n, k;
    const float *a;
    ptrdiff_t a_rs, a_cs;
    const float *b;
    ptrdiff_t b_rs, b_cs;
    float *c;
    size_t ldc;
    float alpha, beta;
    /* Set when c is scratch holding C^T (the transposed orientation):
     * each tile, once final, is added into the caller's matrix as
     * out = out_alpha * tile^T + out_beta * out. */
    float *out;
    size_t ldo;
    float out_alpha, out_beta;
} gemm_problem;

/* Block sizes and thread layout for one call. The blocks depend on the
 * shape only; the thread grid only decides who computes which tiles. */
typedef struct {
    int kc;     /* k step (all KC blocks but the last have this size) */
    int mc, nc; /* upper bounds of the M and N blocks inside a region */
    int tm, tn; /* regions: a tm x tn grid over C's tiles */
    int m_tiles, n_tiles; /* tiles per region (the last may have fewer) */
} gemm_plan;

/* ceil(x / d) for x >= 0, d > 0, without overflow */
static int ceil_div(int x, int d) { return x / d + (x % d != 0); }

/* x rounded up to a multiple of g (callers keep x + g within int) */
static int round_up(int x, int g) { return ceil_div(x, g) * g; }

/* Split `len` into ceil(len/max) near-equal blocks, each a multiple of g
 * (max is itself a multiple of g). */
static int balanced_block(int len, int max, int g)
{
    int b = round_up(ceil_div(len, ceil_div(len, max)), g);
    return b < max ? b : max;
}

/* C tile (rows x cols at c) through the micro-kernel. Tiles short of
 * columns go through a full-width scratch tile (so every element sees the
 * same operations); tiles short of rows use the kernel's row variant when
 * it has one. */
static void run_tile(const gemm_kernel_info *K, int kc, const float *pa,
                     const float *pb, float *c, size_t ldc, int rows,
                     int cols, float alpha, float beta, float *tile)
{
    ukernel_fn f = rows < K->mr && K->rows[rows] ? K->rows[rows] : K->run;
    if (cols == K->nr && (rows == K->mr || f != K->run)) {
        f(kc, pa, pb, c, ldc, alpha, beta);
        return;
    }
    if (beta != 0.0f)
        for (int i = 0; i < rows; i++)
            memcpy(tile + (size_t)i * K->nr, c + i * ldc,
                   (size_t)cols * sizeof(float));
    f(kc, pa, pb, tile, (size_t)K->nr, alpha, beta);
    for (int i = 0; i < rows; i++)
        memcpy(c + i * ldc, tile + (size_t)i * K->nr,
               (size_t)cols * sizeof(float));
}

/* Where B micro-panel number `panel` of the packed kc x nc block lives.
 * When the block is reused by several M blocks every panel has its own
 * slot; with a single M block nothing is reused, so two slots (current and
 * next) alternate and stay in L1. */
static float *b_slot(float *pb, int panel, int kc, int nr, int reused)
{
    size_t slot = reused ? (size_t)panel : (size_t)(panel % 2);
    return pb + slot * (size_t)kc * nr;
}

/* Prefetch k steps [p0, p1) of a w-wide micro-panel's source (the layout
 * of pack_panel) so that packing it finds the lines in cache. */
static void prefetch_panel_part(const float *src, ptrdiff_t s_i,
                                ptrdiff_t s_p, int w, int p0, int p1)
{
    if (s_i == 1) {
        for (int p = p0; p < p1; p++) {
            prefetch_line(src + p * s_p);
            prefetch_line(src + p * s_p + w - 1);
        }
    } else if (s_p == 1 && p1 > p0) {
        /* each of the w rows: the 64-byte lines spanning [p0, p1) */
        for (int i = 0; i < w; i++) {
            uintptr_t first = (uintptr_t)(src + i * s_i + p0) & ~(uintptr_t)63;
            uintptr_t last = (uintptr_t)(src + i * s_i + p1 - 1);
            for (uintptr_t line = first; line <= last; line += 64)
                prefetch_line((const float *)line);
        }
    }
}

/* k steps [*p0, *p1) of the B slice packed before tile t of `tiles`:
 * near-equal, whole strips of 8 (the transposing packers' unit). */
static void slice_bounds(int kc, int t, int tiles, int *p0, int *p1)
{
    *p0 = kc * t / tiles / 8 * 8;
    *p1 = t + 1 == tiles ? kc : kc * (t + 1) / tiles / 8 * 8;
}

/* C = alpha * T^T + beta * C over rows [j0,j1) and columns [i0,i1) of C,
 * where T (leading dimension ld_t) is the scratch result of the transposed
 * product; 8 x 8 blocks go through registers when AVX2 is there. */
static void add_transposed(const float *t, size_t ld_t, int i0, int i1,
                           int j0, int j1, float alpha, float beta, float *c,
                           size_t ldc)
{
    int i_vec = i0; /* columns [i0, i_vec) done with vectors */
#ifdef LP_HAVE_AVX2
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    int j_vec = j0 + (j1 - j0) / 8 * 8;
    i_vec = i0 + (i1 - i0) / 8 * 8;
    for (int j = j0; j < j_vec; j += 8) {
        for (int i = i0; i < i_vec; i += 8) {
            const float *s = t + (size_t)i * ld_t + j;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld_t),
                   r2 = _mm256_loadu_ps(s + 2 * ld_t),
                   r3 = _mm256_loadu_ps(s + 3 * ld_t),
                   r4 = _mm256_loadu_ps(s + 4 * ld_t),
                   r5 = _mm256_loadu_ps(s + 5 * ld_t),
                   r6 = _mm256_loadu_ps(s + 6 * ld_t),
                   r7 = _mm256_loadu_ps(s + 7 * ld_t);
            TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            float *d = c + (size_t)j * ldc + i;
            int ub = beta != 0.0f;
            avx2_store(d, r0, va, vb, ub);
            avx2_store(d + ldc, r1, va, vb, ub);
            avx2_store(d + 2 * ldc, r2, va, vb, ub);
            avx2_store(d + 3 * ldc, r3, va, vb, ub);
            avx2_store(d + 4 * ldc, r4, va, vb, ub);
            avx2_store(d + 5 * ldc, r5, va, vb, ub);
            avx2_store(d + 6 * ldc, r6, va, vb, ub);
            avx2_store(d + 7 * ldc, r7, va, vb, ub);
        }
    }
    /* rows below the last full group of 8 */
    for (int j = j_vec; j < j1; j++) {
        float *cj = c + (size_t)j * ldc;
        for (int i = i0; i < i_vec; i++) {
            __m256 v = _mm256_set1_ps(t[(size_t)i * ld_t + j]);
            v = _mm256_mul_ps(va, v);
            if (beta != 0.0f)
                v = _mm256_fmadd_ps(vb, _mm256_set1_ps(cj[i]), v);
            cj[i] = _mm256_cvtss_f32(v);
        }
    }
#endif
    /* remaining columns, with the same per-element operations */
    for (int j = j0; j < j1; j++) {
        float *cj = c + (size_t)j * ldc;
        for (int i = i_vec; i < i1; i++) {
#ifdef LP_HAVE_AVX2
            __m256 v = _mm256_mul_ps(va, _mm256_set1_ps(t[(size_t)i * ld_t + j]));
            if (beta != 0.0f)
                v = _mm256_fmadd_ps(vb, _mm256_set1_ps(cj[i]), v);
            cj[i] = _mm256_cvtss_f32(v);
#else
            float v = alpha * t[(size_t)i * ld_t + j];
            cj[i] = beta == 0.0f ? v : v + beta * cj[i];
#endif
        }
    }
}

/* The packed A block (rows ic.., mc x kc) times B block (columns jc..,
 * K block pc.., kc x nc) into C.
 *
 * When `pack_b` is set the B panels are packed here, on first use, in a
 * software pipeline over the micro-kernel calls of the current panel:
 * before each call one slice of the next panel is packed and the same
 * slice of the panel after it is prefetched. Reading B (usually from L3
 * or memory, with a large stride) then overlaps with the arithmetic and
 * finds its lines already in cache, instead of stalling in a separate
 * packing pass; the packed panel is still in L1 when the kernel uses it. */
static void block_product(const gemm_kernel_info *K, const gemm_problem *pr,
                          int ic, int jc, int pc, int mc, int nc, int kc,
                          const float *pa, float *pb, int reused, int pack_b,
                          float *tile)
{
    const int MR = K->mr, NR = K->nr;
    const int tiles = (mc + MR - 1) / MR;
    const ptrdiff_t b_rs = pr->b_rs, b_cs = pr->b_cs;
    const float *bsrc = pr->b + pc * b_rs + jc * b_cs;
    float *c = pr->c + (size_t)ic * pr->ldc + jc;
    /* later K blocks accumulate onto the first one's result */
    float beta = pc == 0 ? pr->beta : 1.0f;
    int last = pc + kc == pr->k;
    if (pack_b) {
        if (nc > NR)
            prefetch_panel_part(bsrc + NR * b_cs, b_cs, b_rs,
                                nc - NR < NR ? nc - NR : NR, 0, kc);
        pack_panel(b_slot(pb, 0, kc, NR, reused), bsrc, b_cs, b_rs,
                   nc < NR ? nc : NR, NR, kc);
    }
    for (int jr = 0; jr < nc; jr += NR) {
        int cols = nc - jr < NR ? nc - jr : NR;
        /* widths of the next two panels (<= 0: past the end) */
        int w1 = nc - jr - NR < NR ? nc - jr - NR : NR;
        int w2 = nc - jr - 2 * NR < NR ? nc - jr - 2 * NR : NR;
        const float *pbj = b_slot(pb, jr / NR, kc, NR, reused);
        float *pb1 = b_slot(pb, jr / NR + 1, kc, NR, reused);
        const float *src1 = bsrc + (jr + NR) * b_cs;
        for (int t = 0; t < tiles; t++) {
            int ir = t * MR, rows = mc - ir < MR ? mc - ir : MR;
            if (pack_b && w1 > 0) {
                int p0, p1;
                slice_bounds(kc, t, tiles, &p0, &p1);
                if (p1 > p0)
                    pack_panel(pb1 + (size_t)p0 * NR, src1 + p0 * b_rs, b_cs,
                               b_rs, w1, NR, p1 - p0);
                if (w2 > 0)
                    prefetch_panel_part(src1 + NR * b_cs, b_cs, b_rs, w2, p0,
                                        p1);
            }
            run_tile(K, kc, pa + (size_t)t * a_panel_stride(kc, MR), pbj,
                     c + (size_t)ir * pr->ldc + jr, pr->ldc, rows, cols,
                     pr->alpha, beta, tile);
        }
        /* transposed orientation: the finished mc x NR strip of C^T is
         * still in cache; it becomes NR whole consecutive rows of C */
        if (last && pr->out != NULL)
            add_transposed(pr->c, pr->ldc, ic, ic + mc, jc + jr,
                           jc + jr + cols, pr->out_alpha, pr->out_beta,
                           pr->out, pr->ldo);
    }
}

/* The five loops over the C rectangle [i0,i1) x [j0,j1). pa holds
 * plan->mc / MR packed A panels, pb plan->kc x plan->nc (at least two
 * panels), tile MR x NR floats (see buffer_sizes). */
static void gemm_region(const gemm_kernel_info *K, const gemm_problem *pr,
                        const gemm_plan *plan, int i0, int i1, int j0, int j1,
                        float *pa, float *pb, float *tile)
{
    const int MR = K->mr, NR = K->nr;
    int nc_blk = balanced_block(j1 - j0, plan->nc, NR);
    int mc_blk = balanced_block(i1 - i0, plan->mc, MR);
    int reused = mc_blk < i1 - i0; /* several M blocks share packed B */
    /* each loop advances by the block it just did, never past the end */
    for (int jc = j0, nc = 0; jc < j1; jc += nc) {
        nc = j1 - jc < nc_blk ? j1 - jc : nc_blk;
        for (int pc = 0, kc = 0; pc < pr->k; pc += kc) {
            kc = pr->k - pc < plan->kc ? pr->k - pc : plan->kc;
            for (int ic = i0, mc = 0; ic < i1; ic += mc) {
                mc = i1 - ic < mc_blk ? i1 - ic : mc_blk;
                pack_a_block(pa, pr->a + ic * pr->a_rs + pc * pr->a_cs,
                           pr->a_rs, pr->a_cs, mc, MR, kc);
                block_product(K, pr, ic, jc, pc, mc, nc, kc, pa, pb, reused,
                              ic == i0, tile);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Orientation and threads                                             */
/* ------------------------------------------------------------------ */

/* Multiply-adds the register tiles perform for an m x n product. */
static double padded_work(const gemm_kernel_info *K, int m, int n)
{
    return (double)ceil_div(m, K->mr) * K->mr * (double)ceil_div(n, K->nr) *
           K->nr;
}

/* Compute C^T = op(B)^T op(A)^T instead when that wastes clearly less of
 * the register tile (skinny n), and the scratch copy of C stays small. */
static int use_transposed(const gemm_kernel_info *K, int m, int n)
{
    if ((size_t)m * (size_t)n > ((size_t)1 << 22))
        return 0;
    return padded_work(K, n, m) < 0.95 * padded_work(K, m, n);
}

/* Minimum multiply-adds per thread worth a thread's start-up cost. */
#define GEMM_MIN_WORK_PER_THREAD 131072.0

/* Number of threads and their tm x tn grid over C's mt x nt tiles: the
 * factorisation with the smallest largest share; ties split N, whose
 * threads then share nothing but the (cheap) packing of A. */
static void thread_grid(const gemm_problem *pr, int mt, int nt, int *tm,
                        int *tn)
{
    int want = lp_get_num_threads();
    double by_work = (double)pr->m * pr->n * pr->k / GEMM_MIN_WORK_PER_THREAD;
    if (want > by_work)
        want = by_work > 1.0 ? (int)by_work : 1;
    if ((double)want > (double)mt * nt)
        want = mt * nt;
    double best = -1.0;
    *tm = *tn = 1;
    for (int a = 1; a <= want; a++) {
        int b = want / a;
        if (want % a != 0 || a > mt || b > nt)
            continue;
        double share = (double)ceil_div(mt, a) * ceil_div(nt, b);
        if (best < 0.0 || share < best || (share == best && b > *tn)) {
            best = share;
            *tm = a;
            *tn = b;
        }
    }
}

static void make_plan(const gemm_kernel_info *K, const gemm_problem *pr,
                      gemm_plan *plan)
{
    int mt = ceil_div(pr->m, K->mr), nt = ceil_div(pr->n, K->nr);
    plan->kc = balanced_block(pr->k, K->kc, 8);
    thread_grid(pr, mt, nt, &plan->tm, &plan->tn);
    plan->m_tiles = ceil_div(mt, plan->tm);
    plan->n_tiles = ceil_div(nt, plan->tn);
    /* a region smaller than a cache block needs no more than itself */
    plan->mc = plan->m_tiles < K->mc / K->mr ? plan->m_tiles * K->mr : K->mc;
    plan->nc = plan->n_tiles < K->nc / K->nr ? plan->n_tiles * K->nr : K->nc;
}

/* [*lo, *hi): the part of 0..len in chunk `index` of `tiles` tiles of
 * `size`, clamped to len (computed wide: the last chunk may overshoot). */
static void region_range(int index, int tiles, int size, int len, int *lo,
                         int *hi)
{
    long long a = (long long)index * tiles * size, b = a + (long long)tiles * size;
    *lo = a < len ? (int)a : len;
    *hi = b < len ? (int)b : len;
}

/* Per-thread scratch: the packed A block, the packed B block (at least
 * two panels, for the packing pipeline) and one C tile, each rounded to
 * whole cache lines. */
typedef struct {
    size_t pa, pb, tile, total;
} gemm_buffers;

static gemm_buffers buffer_sizes(const gemm_kernel_info *K,
                                 const gemm_plan *plan)
{
    gemm_buffers s;
    s.pa = (size_t)(plan->mc / K->mr) * a_panel_stride(plan->kc, K->mr);
    s.pb = ((size_t)plan->kc * round_up(plan->nc, 2 * K->nr) + 15) / 16 * 16;
    s.tile = ((size_t)K->mr * K->nr + 15) / 16 * 16;
    s.total = s.pa + s.pb + s.tile;
    return s;
}

/* The problem for C^T = op(B)^T op(A)^T into scratch (leading dimension
 * ld_t), whose tiles are added into the caller's C as they complete. */
static gemm_problem transposed_problem(const gemm_problem *user,
                                       float *scratch, size_t ld_t)
{
    gemm_problem t = *user;
    t.m = user->n;
    t.n = user->m;
    t.a = user->b;
    t.a_rs = user->b_cs;
    t.a_cs = user->b_rs;
    t.b = user->a;
    t.b_rs = user->a_cs;
    t.b_cs = user->a_rs;
    t.c = scratch;
    t.ldc = ld_t;
    t.alpha = 1.0f;
    t.beta = 0.0f;
    t.out = user->c;
    t.ldo = user->ldc;
    t.out_alpha = user->alpha;
    t.out_beta = user->beta;
    return t;
}

/* Everything after validation: orientation, plan, buffers, threads. */
static int gemm_run(const gemm_kernel_info *K, const gemm_problem *user)
{
    gemm_problem pr = *user;
    float *scratch_c = NULL;
    if (use_transposed(K, user->m, user->n)) {
        /* rows of the scratch C^T padded off multiples of 4 KiB, which
         * would map all rows of a tile to the same few L1 sets (m is
         * small here: m * n <= 2^22) */
        size_t ld_t = (size_t)round_up(user->m, 16) + 16;
        scratch_c = lp_alloc(ld_t * (size_t)user->n, sizeof(float));
        if (scratch_c == NULL)
            return LP_ENOMEM;
        pr = transposed_problem(user, scratch_c, ld_t);
    }

    gemm_plan plan;
    make_plan(K, &pr, &plan);
    gemm_buffers size = buffer_sizes(K, &plan);
    int regions = plan.tm * plan.tn;
    float *buf = lp_alloc((size_t)regions * size.total, sizeof(float));
    if (buf == NULL) {
        lp_free(scratch_c);
        return LP_ENOMEM;
    }

#pragma omp parallel num_threads(regions) if (regions > 1)
    {
        int tid = 0, team = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        team = omp_get_num_threads();
#endif
        float *pa = buf + (size_t)tid * size.total;
        float *pb = pa + size.pa, *tile = pb + size.pb;
        /* the columns of an edge tile past C's edge are computed but
         * dropped; start them from zeros rather than uninitialised memory */
        memset(tile, 0, size.tile * sizeof(float));
        /* a smaller team than asked (nested parallelism) takes several */
        for (int r = tid; r < regions; r += team) {
            int i0, i1, j0, j1;
            region_range(r / plan.tn, plan.m_tiles, K->mr, pr.m, &i0, &i1);
            region_range(r % plan.tn, plan.n_tiles, K->nr, pr.n, &j0, &j1);
            if (i0 < i1 && j0 < j1)
                gemm_region(K, &pr, &plan, i0, i1, j0, j1, pa, pb, tile);
        }
    }
    lp_free(buf);
    lp_free(scratch_c);
    return LP_OK;
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

static int gemm_check(int trans_a, int trans_b, int m, int n, int k,
                      const float *a, int lda, const float *b, int ldb,
                      const float *c, int ldc)
{
    const char *op = "lp_sgemm";
    int min_lda = trans_a ? m : k, min_ldb = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0)
        return lp_set_error(LP_EINVAL, "%s: negative size (m=%d n=%d k=%d)",
                            op, m, n, k);
    if (lda < (min_lda > 1 ? min_lda : 1))
        return lp_set_error(LP_EINVAL, "%s: lda=%d < %d", op, lda, min_lda);
    if (ldb < (min_ldb > 1 ? min_ldb : 1))
        return lp_set_error(LP_EINVAL, "%s: ldb=%d < %d", op, ldb, min_ldb);
    if (ldc < (n > 1 ? n : 1))
        return lp_set_error(LP_EINVAL, "%s: ldc=%d < %d", op, ldc, n);
    if (m > 0 && n > 0 && c == NULL)
        return lp_set_error(LP_EINVAL, "%s: C is NULL", op);
    if (m > 0 && n > 0 && k > 0 && (a == NULL || b == NULL))
        return lp_set_error(LP_EINVAL, "%s: %s is NULL", op,
                            a == NULL ? "A" : "B");
    return LP_OK;
}

/* C = beta * C (beta == 0 writes zeros without reading C). */
static void scale_c(int m, int n, float beta, float *c, size_t ldc)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(ci, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f)
            for (int j = 0; j < n; j++)
                ci[j] *= beta;
    }
}

int lp_sgemm_kernel(lp_gemm_kernel kernel, int trans_a, int trans_b, int m,
                    int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc)
{
    const gemm_kernel_info *K = find_kernel(kernel);
    if (K == NULL)
        return lp_set_error(LP_EINVAL, "lp_sgemm: kernel %d not compiled in",
                            (int)kernel);
    LP_TRY(gemm_check(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
    if (m == 0 || n == 0)
        return LP_OK;
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, (size_t)ldc);
        return LP_OK;
    }
    gemm_problem pr = {
        .m = m, .n = n, .k = k,
        .a = a,
        .a_rs = trans_a ? 1 : lda,
        .a_cs = trans_a ? lda : 1,
        .b = b,
        .b_rs = trans_b ? 1 : ldb,
        .b_cs = trans_b ? ldb : 1,
        .c = c, .ldc = (size_t)ldc,
        .alpha = alpha, .beta = beta,
        .out = NULL,
    };
    return gemm_run(K, &pr);
}

int lp_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc)
{
    return lp_sgemm_kernel(LP_GEMM_AUTO, trans_a, trans_b, m, n, k, alpha, a,
                           lda, b, ldb, beta, c, ldc);
}
