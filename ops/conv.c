/*
 * conv.c — 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d),
 * forward and backward, through lp_sgemm.
 *
 * Layout: input [N, C_in, H, W], weight [C_out, C_in/G, KH, KW], output
 * [N, C_out, OH, OW], with G groups, stride s, zero padding p, dilation d:
 *     OH = (H + 2 p_h - d_h (KH - 1) - 1) / s_h + 1         (floor)
 *     out[n, co, oh, ow] = bias[co] + sum_{ci in group(co), ki, kj}
 *         w[co, ci, ki, kj] * in[n, ci, oh s_h - p_h + ki d_h, ow s_w - p_w + kj d_w]
 * (out-of-range input positions read as zero).
 *
 * im2col (Chellapilla et al., "High Performance Convolutional Neural
 * Networks for Document Processing", 2006): with K = C_in/G * KH * KW, the
 * "column" matrix col[K, OH*OW] of one image and group holds in row
 * r = (ci, ki, kj) and column q = (oh, ow) the input value that weight
 * (ci, ki, kj) meets at output (oh, ow). Then per image and group
 *     out_g[C_out/G, OH*OW] = W_g[C_out/G, K] * col_g[K, OH*OW]
 * and the backward is
 *     dcol_g = W_g^T * dout_g,  din = col2im(dcol)   (scatter-add),
 *     dW_g  += dout_g * col_g^T,  db[co] += sum_{n, oh, ow} dout.
 *
 * Bounded scratch: the column matrix of a whole image can be large (the
 * ResNet stem: 147 x 12544 floats = 7 MiB per image), so the OH*OW columns
 * are processed in tiles of T columns. One tile of the column matrix of
 * all groups (C_in*KH*KW rows; group g's block is rows [g K, (g+1) K)) is
 * built at a time, T chosen so that it stays within LP_CONV_COL_BUDGET
 * floats: T is a multiple of LP_CONV_MIN_TILE, evened out over the tiles,
 * and at least LP_CONV_MIN_TILE (so only when C_in*KH*KW > budget/16 does
 * the buffer exceed the budget, at 16 columns). The GEMM of a tile writes
 * straight into the tile's columns of `out` (C = out + q0, ldc = OH*OW).
 * One scratch allocation per call: a tile per thread that takes whole
 * images (below), one more for dw in a backward. im2col fills each row
 * one output row at a time: a memcpy (stride 1) or a strided gather for
 * the in-range part, zeros for the padding; col2im is the matching
 * scatter-add.
 *
 * A 1x1 convolution with stride 1 and no padding needs no im2col at all:
 * the input plane stack [C_in/G, H*W] already is the column matrix, so
 * forward, din and dW are single GEMMs per image and group.
 *
 * Threads: a batch is shared out an image a thread, each thread with its
 * own column buffer, when its images are small (CIFAR's 32x32: about
 * 2.4 M multiply-adds a layer, the many batched passes of RISE or Sobol)
 * or divide evenly between the threads; otherwise (one image, or an
 * uneven batch of large ones) each image's convolution is shared between
 * the threads inside lp_sgemm, im2col and col2im. Splitting a product
 * that takes tens of microseconds costs more in waking and joining
 * threads than it saves: Sobol on ResNet-20 took 8.2 s with 2 threads
 * against 5.5 s with 1 before images were shared out, 3.1 s after (see
 * images_in_parallel).
 *
 * Determinism: lp_sgemm never splits K between threads and gives the same
 * bits for any thread count; im2col is a copy parallelised over rows;
 * col2im is parallelised over input channels, each thread adding its own
 * channels' taps in a fixed (tile, ki, kj) order; an image computed by one
 * thread of a team sees exactly the operations it would alone; the weight
 * gradient adds the images in order (never an image a thread); the bias
 * gradient sums each channel sequentially in double. So results do not
 * depend on the number of threads.
 *
 * Padding rule: 0 <= pad <= d (k - 1), i.e. at most a "full" convolution.
 * PyTorch accepts larger padding, but the extra rows and columns only
 * produce outputs that see nothing but zeros; we reject them as a likely
 * mistake. The output size must be at least 1.
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Column-buffer budget in floats (2 MiB). Tests pick shapes above it to
 * exercise several tiles; building with -DLP_CONV_COL_BUDGET=1000 makes
 * nearly every test shape tiled. */
#ifndef LP_CONV_COL_BUDGET
#define LP_CONV_COL_BUDGET (512 * 1024)
#endif
/* Tile widths are multiples of this (GEMM-friendly), and at least this. */
#define LP_CONV_MIN_TILE 16
/* Below this many floats, im2col / col2im / bias loops run serially. */
#define LP_CONV_PAR_MIN 32768
/* Below this many multiply-adds per image, a batch is shared out an image
 * a thread instead of sharing each image's products (see the top). */
#ifndef LP_CONV_IMAGE_WORK
#define LP_CONV_IMAGE_WORK (32.0 * 1024 * 1024)
#endif

/* Everything derived from lp_conv2d_params once validated. */
typedef struct {
    int n, c_in, h_in, w_in, c_out, k_h, k_w;
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int h_out, w_out;
    int c_in_g, c_out_g; /* channels per group */
    int k;               /* rows of one group's column matrix: c_in_g*k_h*k_w */
    int rows;            /* rows of the whole column matrix: c_in*k_h*k_w */
    int in_hw, out_hw;   /* h_in*w_in, h_out*w_out */
    int direct;          /* 1x1, stride 1, no padding: no im2col */
} conv_geom;

/* ---- validation ---------------------------------------------------------- */

/* Output size along one axis; checks the padding rule and that the result
 * is positive. All arithmetic in 64 bits. */
static int axis_output(const char *op, const char *axis, int in, int k,
                       int stride, int pad, int dil, int *out)
{
    int64_t extent = (int64_t)dil * (k - 1); /* dilated kernel size - 1 */
    int64_t padded = (int64_t)in + 2 * (int64_t)pad;
    if (pad > extent)
        return lp_set_error(LP_EINVAL,
                            "%s: pad_%s = %d exceeds dil*(k-1) = %lld (at most "
                            "a full convolution)",
                            op, axis, pad, (long long)extent);
    if (padded > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: padded %s size %lld is too large",
                            op, axis, (long long)padded);
    if (padded - extent - 1 < 0)
        return lp_set_error(LP_EINVAL,
                            "%s: dilated kernel (%lld) is larger than the "
                            "padded input along %s (%lld): output size <= 0",
                            op, (long long)(extent + 1), axis,
                            (long long)padded);
    *out = (int)((padded - extent - 1) / stride + 1);
    return LP_OK;
}

/* Validate p and fill g. `op` names the public function for messages. */
static int conv_setup(const char *op, const lp_conv2d_params *p, conv_geom *g)
{
    size_t count;
    LP_TRY(lp_require_ptr(op, "params", p));
    LP_TRY(lp_require_positive(op, "n", p->n));
    LP_TRY(lp_require_positive(op, "c_in", p->c_in));
    LP_TRY(lp_require_positive(op, "h_in", p->h_in));
    LP_TRY(lp_require_positive(op, "w_in", p->w_in));
    LP_TRY(lp_require_positive(op, "c_out", p->c_out));
    LP_TRY(lp_require_positive(op, "k_h", p->k_h));
    LP_TRY(lp_require_positive(op, "k_w", p->k_w));
    LP_TRY(lp_require_positive(op, "stride_h", p->stride_h));
    LP_TRY(lp_require_positive(op, "stride_w", p->stride_w));
    LP_TRY(lp_require_nonneg(op, "pad_h", p->pad_h));
    LP_TRY(lp_require_nonneg(op, "pad_w", p->pad_w));
    LP_TRY(lp_require_positive(op, "dil_h", p->dil_h));
    LP_TRY(lp_require_positive(op, "dil_w", p->dil_w));
    LP_TRY(lp_require_positive(op, "groups", p->groups));
    if (p->c_in % p->groups != 0 || p->c_out % p->groups != 0)
        return lp_set_error(LP_EINVAL,
                            "%s: groups = %d must divide c_in = %d and c_out "
                            "= %d",
                            op, p->groups, p->c_in, p->c_out);

    memset(g, 0, sizeof *g);
    LP_TRY(axis_output(op, "h", p->h_in, p->k_h, p->stride_h, p->pad_h,
                       p->dil_h, &g->h_out));
    LP_TRY(axis_output(op, "w", p->w_in, p->k_w, p->stride_w, p->pad_w,
                       p->dil_w, &g->w_out));

    /* every tensor's element count must fit ... */
    LP_TRY(lp_checked_count(op, &count, 4, p->n, p->c_in, p->h_in, p->w_in));
    LP_TRY(lp_checked_count(op, &count, 4, p->n, p->c_out, g->h_out,
                            g->w_out));
    LP_TRY(lp_checked_count(op, &count, 4, p->c_out, p->c_in / p->groups,
                            p->k_h, p->k_w));
    /* ... and so must the GEMM dimensions, which are ints */
    LP_TRY(lp_checked_count(op, &count, 3, p->c_in, p->k_h, p->k_w));
    if (count > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: c_in*k_h*k_w = %zu is too large",
                            op, count);
    g->rows = (int)count;
    LP_TRY(lp_checked_count(op, &count, 2, p->h_in, p->w_in));
    if (count > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: h_in*w_in = %zu is too large", op,
                            count);
    g->in_hw = (int)count;
    LP_TRY(lp_checked_count(op, &count, 2, g->h_out, g->w_out));
    if (count > INT_MAX)
        return lp_set_error(LP_ERANGE, "%s: h_out*w_out = %zu is too large",
                            op, count);
    g->out_hw = (int)count;

    g->n = p->n;
    g->c_in = p->c_in;
    g->h_in = p->h_in;
    g->w_in = p->w_in;
    g->c_out = p->c_out;
    g->k_h = p->k_h;
    g->k_w = p->k_w;
    g->stride_h = p->stride_h;
    g->stride_w = p->stride_w;
    g->pad_h = p->pad_h;
    g->pad_w = p->pad_w;
    g->dil_h = p->dil_h;
    g->dil_w = p->dil_w;
    g->groups = p->groups;
    g->c_in_g = p->c_in / p->groups;
    g->c_out_g = p->c_out / p->groups;
    g->k = g->rows / p->groups;
    g->direct = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 &&
                p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0;
    return LP_OK;
}

int lp_conv2d_output_size(const lp_conv2d_params *p, int *h_out, int *w_out)
{
    const char *op = "lp_conv2d_output_size";
    conv_geom g;
    LP_TRY(lp_require_ptr(op, "h_out", h_out));
    LP_TRY(lp_require_ptr(op, "w_out", w_out));
    LP_TRY(conv_setup(op, p, &g));
    *h_out = g.h_out;
    *w_out = g.w_out;
    return LP_OK;
}

/* ---- tiling ------------------------------------------------------------- */

/* Columns per tile: as many as fit the budget for all g->rows rows, a
 * multiple of LP_CONV_MIN_TILE, then evened out over the tiles so the last
 * one is not a sliver. */
static int tile_columns(const conv_geom *g)
{
    size_t t = LP_CONV_COL_BUDGET / (size_t)g->rows;
    size_t n_tiles;
    t -= t % LP_CONV_MIN_TILE;
    if (t < LP_CONV_MIN_TILE)
        t = LP_CONV_MIN_TILE;
    if (t >= (size_t)g->out_hw)
        return g->out_hw;
    n_tiles = ((size_t)g->out_hw + t - 1) / t;
    t = ((size_t)g->out_hw + n_tiles - 1) / n_tiles;
    t = (t + LP_CONV_MIN_TILE - 1) / LP_CONV_MIN_TILE * LP_CONV_MIN_TILE;
    return (int)t;
}

/* Output positions ow in [*lo, *hi) read an in-range input column
 * iw = ow * stride + offset, 0 <= iw < w_in; clamped to [0, w_out). */
static void valid_columns(int w_in, int w_out, int stride, int offset,
                          int *lo, int *hi)
{
    int64_t l = 0, h;
    if (offset < 0)
        l = ((int64_t)-offset + stride - 1) / stride;
    h = (int64_t)w_in - offset <= 0
            ? 0
            : ((int64_t)w_in - offset + stride - 1) / stride;
    if (l > w_out)
        l = w_out;
    if (h > w_out)
        h = w_out;
    if (h < l)
        h = l;
    *lo = (int)l;
    *hi = (int)h;
}

/* ---- im2col / col2im ---------------------------------------------------- */

/* d[x] = s[x * stride] for x < len. Stride 2 (every strided conv in
 * ResNets) is written out in blocks of 8 so that the compiler's
 * basic-block vectoriser turns each into a load-and-shuffle at -O2. */
static void gather_strided(float *restrict d, const float *restrict s,
                           int stride, int len)
{
    int x = 0;
    if (stride == 1) {
        memcpy(d, s, (size_t)len * sizeof(float));
        return;
    }
    if (stride == 2)
        for (; x + 8 <= len; x += 8) {
            const float *p = s + 2 * x;
            float *q = d + x;
            q[0] = p[0], q[1] = p[2], q[2] = p[4], q[3] = p[6];
            q[4] = p[8], q[5] = p[10], q[6] = p[12], q[7] = p[14];
        }
    for (; x < len; x++)
        d[x] = s[(ptrdiff_t)x * stride];
}

/* d[x * stride] += s[x] for x < len (the adjoint of gather_strided); the
 * unit-stride case in blocks of 8 with a constant trip count, which the
 * compiler vectorises at -O2. */
static void scatter_add_strided(float *restrict d, const float *restrict s,
                                int stride, int len)
{
    int x = 0;
    if (stride == 1)
        for (; x + 8 <= len; x += 8)
            for (int l = 0; l < 8; l++)
                d[x + l] += s[x + l];
    for (; x < len; x++)
        d[(ptrdiff_t)x * stride] += s[x];
}

/* One row (ci, ki, kj) of the column matrix for tile columns [q0, q0+t):
 * dst[j] = plane[ih, iw] for output position q0 + j, or 0 in the padding.
 * The tile is walked one output row (oh) at a time; within it, output
 * columns [lo, hi) read inside the input row, the rest is padding. */
static void im2col_row(float *dst, const float *plane, const conv_geom *g,
                       int ki, int kj, int q0, int t)
{
    int oh = q0 / g->w_out, ow = q0 % g->w_out;
    int w_off = kj * g->dil_w - g->pad_w;
    int lo, hi;
    valid_columns(g->w_in, g->w_out, g->stride_w, w_off, &lo, &hi);
    for (int done = 0; done < t; oh++, ow = 0) {
        int len = g->w_out - ow < t - done ? g->w_out - ow : t - done;
        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
        int a = ow > lo ? ow : lo, b = ow + len < hi ? ow + len : hi;
        float *d = dst + done; /* d[x - ow] is output column x */
        done += len;
        if (ih < 0 || ih >= g->h_in || a >= b) {
            memset(d, 0, (size_t)len * sizeof(float));
            continue;
        }
        const float *row = plane + (size_t)ih * g->w_in;
        memset(d, 0, (size_t)(a - ow) * sizeof(float));
        gather_strided(d + (a - ow),
                       row + ((ptrdiff_t)a * g->stride_w + w_off),
                       g->stride_w, b - a);
        memset(d + (b - ow), 0, (size_t)(ow + len - b) * sizeof(float));
    }
}

/* col[rows, t] for tile [q0, q0+t) of one image (all channels, all groups:
 * group gi's block is rows [gi*k, (gi+1)*k)). */
static void im2col_tile(float *col, const float *image, const conv_geom *g,
                        int q0, int t)
{
    int taps = g->k_h * g->k_w;
#pragma omp parallel for schedule(static) \
    if ((size_t)g->rows * t >= LP_CONV_PAR_MIN)
    for (int r = 0; r < g->rows; r++) {
        int ci = r / taps, ki = r % taps / g->k_w, kj = r % g->k_w;
        im2col_row(col + (size_t)r * t, image + (size_t)ci * g->in_hw, g, ki,
                   kj, q0, t);
    }
}

/* Adjoint of im2col_row: plane[ih, iw] += src[j] for every in-range tap. */
static void col2im_row(float *plane, const float *src, const conv_geom *g,
                       int ki, int kj, int q0, int t)
{
    int oh = q0 / g->w_out, ow = q0 % g->w_out;
    int w_off = kj * g->dil_w - g->pad_w;
    int lo, hi;
    valid_columns(g->w_in, g->w_out, g->stride_w, w_off, &lo, &hi);
    for (int done = 0; done < t; oh++, ow = 0) {
        int len = g->w_out - ow < t - done ? g->w_out - ow : t - done;
        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
        int a = ow > lo ? ow : lo, b = ow + len < hi ? ow + len : hi;
        const float *s = src + done; /* s[x - ow] is output column x */
        done += len;
        if (ih < 0 || ih >= g->h_in || a >= b)
            continue;
        float *row = plane + (size_t)ih * g->w_in;
        scatter_add_strided(row + ((ptrdiff_t)a * g->stride_w + w_off),
                            s + (a - ow), g->stride_w, b - a);
    }
}

/* image += col2im(dcol[rows, t]) for tile [q0, q0+t). Threads own input
 * channels, and each channel's taps are added in the fixed (ki, kj) order. */
static void col2im_tile(float *image, const float *dcol, const conv_geom *g,
                        int q0, int t)
{
    int taps = g->k_h * g->k_w;
#pragma omp parallel for schedule(static) \
    if ((size_t)g->rows * t >= LP_CONV_PAR_MIN)
    for (int ci = 0; ci < g->c_in; ci++) {
        float *plane = image + (size_t)ci * g->in_hw;
        for (int tap = 0; tap < taps; tap++)
            col2im_row(plane, dcol + ((size_t)ci * taps + tap) * t, g,
                       tap / g->k_w, tap % g->k_w, q0, t);
    }
}

/* ---- the three products of one tile ---------------------------------------- */

/* out_b[:, q0:q0+t] (+)= W_g * col_g for every group (out_b: one image). */
static int tile_output(float *out_b, const float *w, const float *col,
                       const conv_geom *g, int q0, int t, int accumulate)
{
    size_t w_group = (size_t)g->c_out_g * g->k;
    for (int gi = 0; gi < g->groups; gi++)
        LP_TRY(lp_sgemm(0, 0, g->c_out_g, t, g->k, 1.0f, w + gi * w_group,
                        g->k, col + (size_t)gi * g->k * t, t,
                        accumulate ? 1.0f : 0.0f,
                        out_b + (size_t)gi * g->c_out_g * g->out_hw + q0,
                        g->out_hw));
    return LP_OK;
}

/* dW_g[c_out_g, K] += dout_g[:, q0:q0+t] * col_g[K, t]^T for every group. */
static int tile_weight_grad(float *dw, const float *dout_b, const float *col,
                            const conv_geom *g, int q0, int t)
{
    size_t w_group = (size_t)g->c_out_g * g->k;
    for (int gi = 0; gi < g->groups; gi++)
        LP_TRY(lp_sgemm(0, 1, g->c_out_g, g->k, t, 1.0f,
                        dout_b + (size_t)gi * g->c_out_g * g->out_hw + q0,
                        g->out_hw, col + (size_t)gi * g->k * t, t, 1.0f,
                        dw + gi * w_group, g->k));
    return LP_OK;
}

/* dcol_g[K, t] = W_g^T[K, c_out_g] * dout_g[:, q0:q0+t] for every group. */
static int tile_column_grad(float *dcol, const float *w, const float *dout_b,
                            const conv_geom *g, int q0, int t)
{
    size_t w_group = (size_t)g->c_out_g * g->k;
    for (int gi = 0; gi < g->groups; gi++)
        LP_TRY(lp_sgemm(1, 0, g->k, t, g->c_out_g, 1.0f, w + gi * w_group,
                        g->k,
                        dout_b + (size_t)gi * g->c_out_g * g->out_hw + q0,
                        g->out_hw, 0.0f, dcol + (size_t)gi * g->k * t, t));
    return LP_OK;
}

/* ---- an image a thread -------------------------------------------------- */

/* Threads to share a batch out image by image: 1 (share each image's
 * products instead) unless there are several images and several threads
 * free to take them (not already inside a parallel region), and either
 * one image has too little work to share well or the images divide evenly
 * between the threads (then whole images beat shared products even when
 * large: ResNet-50, batch 16, 2 threads, predict 1.32 -> 1.21 s). */
static int images_in_parallel(const conv_geom *g)
{
    double work = (double)g->c_out * g->out_hw * g->k;
    int threads = lp_get_num_threads();
    if (g->n < 2 || threads < 2)
        return 1;
    if (work < LP_CONV_IMAGE_WORK)
        return threads < g->n ? threads : g->n;
    return g->n % threads == 0 ? threads : 1;
}

/* What one image's work needs besides its index and scratch. */
typedef struct {
    const conv_geom *g;
    float *out, *din, *dw;
    const float *in, *dout, *w, *bias;
    int tile;
} conv_job;

typedef int (*image_fn)(const conv_job *job, int b, float *scratch);

/* fn(job, b, scratch) for every image b, on `threads` threads, each with
 * its own `per_thread` floats of scratch. The first error (with its
 * message, which lp_set_error keeps per thread) is the result. */
static int for_each_image(const conv_job *job, image_fn fn, int threads,
                          float *scratch, size_t per_thread)
{
    int rc = LP_OK;
    if (threads <= 1) {
        for (int b = 0; b < job->g->n && rc == LP_OK; b++)
            rc = fn(job, b, scratch);
        return rc;
    }
#ifdef _OPENMP
    char msg[512] = "";
#pragma omp parallel num_threads(threads)
    {
        float *mine = scratch + (size_t)omp_get_thread_num() * per_thread;
#pragma omp for schedule(static)
        for (int b = 0; b < job->g->n; b++) {
            int r = fn(job, b, mine);
            if (r != LP_OK) {
#pragma omp critical(lp_conv_image_error)
                if (rc == LP_OK) {
                    rc = r;
                    snprintf(msg, sizeof msg, "%s", lp_last_error());
                }
            }
        }
    }
    if (rc != LP_OK)
        lp_set_error(rc, "%s", msg);
#else
    (void)per_thread;
#endif
    return rc;
}

/* ---- forward ------------------------------------------------------------ */

/* out[c, :] = bias[c] for every channel of one image. */
static void fill_bias(float *out, const float *bias, const conv_geom *g)
{
    for (int c = 0; c < g->c_out; c++) {
        float *row = out + (size_t)c * g->out_hw;
        for (int q = 0; q < g->out_hw; q++)
            row[q] = bias[c];
    }
}

/* 1x1 stride-1 unpadded: out_g[c_out_g, HW] = W_g[c_out_g, c_in_g] * in_g. */
static int forward_direct(float *out_b, const float *image, const float *w,
                          const conv_geom *g, int accumulate)
{
    size_t w_group = (size_t)g->c_out_g * g->k;
    for (int gi = 0; gi < g->groups; gi++)
        LP_TRY(lp_sgemm(0, 0, g->c_out_g, g->out_hw, g->k, 1.0f,
                        w + gi * w_group, g->k,
                        image + (size_t)gi * g->c_in_g * g->in_hw, g->in_hw,
                        accumulate ? 1.0f : 0.0f,
                        out_b + (size_t)gi * g->c_out_g * g->out_hw,
                        g->out_hw));
    return LP_OK;
}

/* Output of image b, through the column buffer col (rows x tile). */
static int forward_image(const conv_job *job, int b, float *col)
{
    const conv_geom *g = job->g;
    const float *image = job->in + (size_t)b * g->c_in * g->in_hw;
    float *out_b = job->out + (size_t)b * g->c_out * g->out_hw;
    int accumulate = job->bias != NULL;
    /* with a bias, start from it and let the products add to it */
    if (job->bias != NULL)
        fill_bias(out_b, job->bias, g);
    if (g->direct)
        return forward_direct(out_b, image, job->w, g, accumulate);
    for (int q0 = 0; q0 < g->out_hw; q0 += job->tile) {
        int t = g->out_hw - q0 < job->tile ? g->out_hw - q0 : job->tile;
        im2col_tile(col, image, g, q0, t);
        LP_TRY(tile_output(out_b, job->w, col, g, q0, t, accumulate));
    }
    return LP_OK;
}

int lp_conv2d_forward(float *out, const float *in, const float *w,
                      const float *bias, const lp_conv2d_params *p)
{
    const char *op = "lp_conv2d_forward";
    conv_geom g;
    float *col = NULL;
    size_t one = 0;
    int threads, rc;
    LP_TRY(conv_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "out", out));
    LP_TRY(lp_require_ptr(op, "in", in));
    LP_TRY(lp_require_ptr(op, "w", w));

    conv_job job = {&g, out, NULL, NULL, in, NULL, w, bias, 0};
    threads = images_in_parallel(&g);
    if (!g.direct) {
        job.tile = tile_columns(&g);
        one = (size_t)g.rows * job.tile;
        col = lp_alloc((size_t)threads * one, sizeof(float));
        if (col == NULL)
            return LP_ENOMEM;
    }
    rc = for_each_image(&job, forward_image, threads, col, one);
    lp_free(col);
    return rc;
}

/* ---- backward ----------------------------------------------------------- */

/* db[c] += sum over images and positions of dout[n, c, :], in double. */
static void bias_grad(float *db, const float *dout, const conv_geom *g)
{
#pragma omp parallel for schedule(static) \
    if ((size_t)g->n * g->c_out * g->out_hw >= LP_CONV_PAR_MIN)
    for (int c = 0; c < g->c_out; c++) {
        double acc = 0.0;
        for (int b = 0; b < g->n; b++) {
            const float *row = dout + ((size_t)b * g->c_out + c) * g->out_hw;
            for (int q = 0; q < g->out_hw; q++)
                acc += row[q];
        }
        db[c] += (float)acc;
    }
}

/* din of image b: din_g[c_in_g, HW] += W_g^T dout_g, directly (1x1) or
 * through dcol (rows x tile) and col2im. */
static int din_image(const conv_job *job, int b, float *dcol)
{
    const conv_geom *g = job->g;
    size_t w_group = (size_t)g->c_out_g * g->k;
    float *din_b = job->din + (size_t)b * g->c_in * g->in_hw;
    const float *dout_b = job->dout + (size_t)b * g->c_out * g->out_hw;
    if (g->direct) {
        for (int gi = 0; gi < g->groups; gi++)
            LP_TRY(lp_sgemm(1, 0, g->c_in_g, g->in_hw, g->c_out_g, 1.0f,
                            job->w + gi * w_group, g->k,
                            dout_b + (size_t)gi * g->c_out_g * g->out_hw,
                            g->out_hw, 1.0f,
                            din_b + (size_t)gi * g->c_in_g * g->in_hw,
                            g->in_hw));
        return LP_OK;
    }
    for (int q0 = 0; q0 < g->out_hw; q0 += job->tile) {
        int t = g->out_hw - q0 < job->tile ? g->out_hw - q0 : job->tile;
        LP_TRY(tile_column_grad(dcol, job->w, dout_b, g, q0, t));
        col2im_tile(din_b, dcol, g, q0, t);
    }
    return LP_OK;
}

/* dW += image b's share: dW_g += dout_g col_g^T (col = the input planes
 * when 1x1, else im2col tiles built in col). Called for the images in
 * order, on one thread, so the sum over images has a fixed order. */
static int dw_image(const conv_job *job, int b, float *col)
{
    const conv_geom *g = job->g;
    size_t w_group = (size_t)g->c_out_g * g->k;
    const float *in_b = job->in + (size_t)b * g->c_in * g->in_hw;
    const float *dout_b = job->dout + (size_t)b * g->c_out * g->out_hw;
    float *dw = job->dw;
    if (g->direct) {
        for (int gi = 0; gi < g->groups; gi++)
            LP_TRY(lp_sgemm(0, 1, g->c_out_g, g->k, g->out_hw, 1.0f,
                            dout_b + (size_t)gi * g->c_out_g * g->out_hw,
                            g->out_hw,
                            in_b + (size_t)gi * g->c_in_g * g->in_hw,
                            g->in_hw, 1.0f, dw + gi * w_group, g->k));
        return LP_OK;
    }
    for (int q0 = 0; q0 < g->out_hw; q0 += job->tile) {
        int t = g->out_hw - q0 < job->tile ? g->out_hw - q0 : job->tile;
        im2col_tile(col, in_b, g, q0, t);
        LP_TRY(tile_weight_grad(dw, dout_b, col, g, q0, t));
    }
    return LP_OK;
}

int lp_conv2d_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w,
                       const lp_conv2d_params *p)
{
    const char *op = "lp_conv2d_backward";
    conv_geom g;
    float *scratch = NULL, *col = NULL, *dcol = NULL;
    size_t one = 0;
    int threads, rc = LP_OK;
    LP_TRY(conv_setup(op, p, &g));
    LP_TRY(lp_require_ptr(op, "dout", dout));
    if (din != NULL)
        LP_TRY(lp_require_ptr(op, "w (needed for din)", w));
    if (dw != NULL)
        LP_TRY(lp_require_ptr(op, "in (needed for dw)", in));

    conv_job job = {&g, NULL, din, dw, in, dout, w, NULL, 0};
    threads = din != NULL ? images_in_parallel(&g) : 1;
    /* scratch first, so that running out of memory changes nothing: a
     * dcol tile per din thread, one col tile for dw */
    if (!g.direct && (din != NULL || dw != NULL)) {
        job.tile = tile_columns(&g);
        one = (size_t)g.rows * job.tile;
        size_t buffers = (size_t)(dw != NULL) +
                         (din != NULL ? (size_t)threads : 0);
        scratch = lp_alloc(buffers * one, sizeof(float));
        if (scratch == NULL)
            return LP_ENOMEM;
        col = dw != NULL ? scratch : NULL;
        dcol = din != NULL ? scratch + (dw != NULL ? one : 0) : NULL;
    }
    if (db != NULL)
        bias_grad(db, dout, &g);
    if (din != NULL)
        rc = for_each_image(&job, din_image, threads, dcol, one);
    if (rc == LP_OK && dw != NULL)
        rc = for_each_image(&job, dw_image, 1, col, one);
    lp_free(scratch);
    return rc;
}
