/*
 * loupe.h — the whole public API of loupe.
 *
 * loupe is an inference and interpretability runtime for vision models
 * (ResNets, Vision Transformers) written in C with libc and libm only.
 *
 * Conventions that hold for every function in this header
 * --------------------------------------------------------
 *  - Tensors are plain float32 arrays in PyTorch's layout, outermost
 *    dimension first: images and feature maps are NCHW, token sequences
 *    are [N, T, D], linear weights are [out, in], conv weights are
 *    [C_out, C_in/groups, KH, KW].
 *  - Every function that can fail returns an int status: LP_OK (0) on
 *    success, a negative LP_E* code otherwise. The human-readable reason is
 *    kept per thread and read with lp_last_error(). Nothing in the library
 *    calls abort(), exit() or assert() to validate input.
 *  - Backward functions ACCUMULATE (+=) into every gradient buffer they are
 *    given, like llm.c: zero the buffers before the first contribution. A
 *    NULL gradient pointer means "do not compute this gradient" — in
 *    particular passing dw = db = NULL gives the cheap input-gradient-only
 *    path that interpretability needs.
 *  - Results do not depend on the number of threads (bit-identical).
 */
#ifndef LOUPE_H
#define LOUPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOUPE_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Status codes and errors                                             */
/* ------------------------------------------------------------------ */

enum {
    LP_OK = 0,
    LP_EINVAL = -1,   /* invalid argument or shape */
    LP_ENOMEM = -2,   /* allocation failed or a size would overflow */
    LP_EIO = -3,      /* read/write failure */
    LP_EFORMAT = -4,  /* malformed file contents */
    LP_ERANGE = -5,   /* value out of the supported range */
    LP_ENOTFOUND = -6 /* named thing (layer, tensor, file) does not exist */
};

/* Message describing the most recent failure on this thread ("" if none). */
const char *lp_last_error(void);
/* Short symbolic name of a status code ("LP_EINVAL"). */
const char *lp_status_name(int status);
/* Set the thread's error message and return `status` (for library code
 * and for callers that want to report through the same channel). */
int lp_set_error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void lp_clear_error(void);

/* ------------------------------------------------------------------ */
/* Threads and build information                                       */
/* ------------------------------------------------------------------ */

/* Number of threads used by parallel kernels (1 when built without OpenMP,
 * and inside a parallel region that cannot start another). */
int lp_get_num_threads(void);
/* Set the number of threads (n >= 1); a no-op without OpenMP. */
void lp_set_num_threads(int n);
/* One-line description of the build: compiler, SIMD kernel, OpenMP. */
const char *lp_build_info(void);

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* 64-byte aligned allocation; returns NULL (and sets the error) on failure
 * or when count * size overflows. Free with lp_free. */
void *lp_alloc(size_t count, size_t size);
void *lp_calloc(size_t count, size_t size);
/* Like realloc: a new block holding the old contents (up to the new size),
 * the old block freed; NULL (old block kept) on failure. */
void *lp_realloc(void *p, size_t count, size_t size);
void lp_free(void *p);

/* Memory budget. lp_alloc counts the bytes it hands out; with a limit
 * set, an allocation that would take the live total above it fails
 * (NULL, LP_ERANGE "needs N MB, more than --max-memory M MB"). 0 means
 * no limit, the default of the library (the loupe program sets one). */
void lp_set_memory_limit(size_t bytes);
size_t lp_memory_limit(void);    /* SIZE_MAX when there is none */
size_t lp_memory_in_use(void);   /* live bytes from lp_alloc */
/* LP_OK if `bytes` more would fit under the limit now; otherwise
 * LP_ERANGE with "<what> needs N MB, more than --max-memory M MB". For
 * refusing a file or a pass before any of its allocations. */
int lp_memory_check(size_t bytes, const char *what);
/* Nonzero once the limit has refused a request (so that a caller can
 * tell "over --max-memory" from a real out-of-memory). */
int lp_memory_limit_refused(void);
/* Live blocks from lp_alloc, and blocks allocated since start-up. */
long lp_alloc_live_count(void);
long lp_alloc_total_count(void);
/* Testing hook (always compiled in; one relaxed load per allocation when
 * disarmed): the k-th lp_alloc from now (k >= 1) fails as if out of
 * memory (LP_ENOMEM); k = 0 disarms. */
void lp_debug_fail_alloc_after(long k);

/* ------------------------------------------------------------------ */
/* GEMM — ops/gemm.c                                                   */
/* ------------------------------------------------------------------ */

/* Micro-kernels compiled into this build. LP_GEMM_AUTO picks the best. */
typedef enum {
    LP_GEMM_AUTO = 0,
    LP_GEMM_SCALAR = 1, /* portable C, always compiled */
    LP_GEMM_AVX2 = 2,   /* AVX2 + FMA, when built with them */
    LP_GEMM_AVX512 = 3  /* AVX-512F, when built with it */
} lp_gemm_kernel;

/*
 * Row-major single-precision GEMM:
 *     C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n]
 * op(A) = A (trans_a == 0, A is m x k, leading dimension lda >= k) or
 * A^T (trans_a != 0, A is k x m, lda >= m); likewise for B.
 * beta == 0 means C is not read (it may hold NaN). The K dimension is never
 * split between threads, so results are bit-identical for any thread count.
 */
int lp_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc);
/* Same with an explicit micro-kernel (LP_EINVAL if not compiled in). */
int lp_sgemm_kernel(lp_gemm_kernel kernel, int trans_a, int trans_b, int m,
                    int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);
/* Is the kernel compiled into this build? */
int lp_gemm_kernel_available(lp_gemm_kernel kernel);
/* Name of a kernel ("avx2-6x16"); of the AUTO choice for LP_GEMM_AUTO. */
const char *lp_gemm_kernel_name(lp_gemm_kernel kernel);

/* ------------------------------------------------------------------ */
/* Linear, matmul, batched matmul — ops/linear.c                       */
/* ------------------------------------------------------------------ */

/* out[rows, out_f] = in[rows, in_f] * w[out_f, in_f]^T + b[out_f] (b may be NULL) */
int lp_linear_forward(float *out, const float *in, const float *w,
                      const float *b, int rows, int in_f, int out_f);
/* din[rows,in_f] += dout*w ; dw[out_f,in_f] += dout^T*in ; db[out_f] += sum(dout) */
int lp_linear_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int rows, int in_f,
                       int out_f);

/* c[m,n] = a[m,k] * b[k,n] */
int lp_matmul_forward(float *c, const float *a, const float *b, int m, int k,
                      int n);
/* da[m,k] += dc * b^T ; db[k,n] += a^T * dc (either may be NULL) */
int lp_matmul_backward(float *da, float *db, const float *dc, const float *a,
                       const float *b, int m, int k, int n);

/* For each of `batch` matrices: c_i[m,n] = op(a_i)[m,k] * op(b_i)[k,n],
 * a_i = a + i*m*k, b_i = b + i*k*n, c_i = c + i*m*n (contiguous, packed);
 * a transposed a_i is stored [k, m], a transposed b_i [n, k]. */
int lp_bmm_forward(float *c, const float *a, const float *b, int batch, int m,
                   int k, int n, int trans_a, int trans_b);
int lp_bmm_backward(float *da, float *db, const float *dc, const float *a,
                    const float *b, int batch, int m, int k, int n,
                    int trans_a, int trans_b);

/* ------------------------------------------------------------------ */
/* Convolution — ops/conv.c                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    int n, c_in, h_in, w_in;  /* input  [n, c_in, h_in, w_in] */
    int c_out, k_h, k_w;      /* weight [c_out, c_in/groups, k_h, k_w] */
    int stride_h, stride_w;   /* >= 1 */
    int pad_h, pad_w;         /* zero padding on each side, >= 0 */
    int dil_h, dil_w;         /* dilation, >= 1 */
    int groups;               /* divides c_in and c_out */
} lp_conv2d_params;

/* Validate the parameters and compute the output size
 * (h_out = (h_in + 2*pad_h - dil_h*(k_h-1) - 1)/stride_h + 1). */
int lp_conv2d_output_size(const lp_conv2d_params *p, int *h_out, int *w_out);
/* out[n, c_out, h_out, w_out]; bias may be NULL. */
int lp_conv2d_forward(float *out, const float *in, const float *w,
                      const float *bias, const lp_conv2d_params *p);
/* din needs w; dw needs in; any of din/dw/db may be NULL. */
int lp_conv2d_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w,
                       const lp_conv2d_params *p);

/* ------------------------------------------------------------------ */
/* Normalisation — ops/norm.c                                          */
/* ------------------------------------------------------------------ */

/* BatchNorm2d, inference: y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
 * over x[n, c, hw]. gamma/beta may be NULL (affine=False). */
int lp_batchnorm2d_forward_eval(float *out, const float *in,
                                const float *gamma, const float *beta,
                                const float *mean, const float *var,
                                float eps, int n, int c, int hw);
int lp_batchnorm2d_backward_eval(float *din, float *dgamma, float *dbeta,
                                 const float *dout, const float *in,
                                 const float *gamma, const float *mean,
                                 const float *var, float eps, int n, int c,
                                 int hw);
/* BatchNorm2d, training: batch statistics (biased variance for the
 * normalisation). Writes save_mean[c] and save_rstd[c] (= 1/sqrt(var+eps))
 * for the backward. If running_mean/running_var are not NULL they are
 * updated as PyTorch does (momentum, unbiased variance). */
int lp_batchnorm2d_forward_train(float *out, float *save_mean,
                                 float *save_rstd, const float *in,
                                 const float *gamma, const float *beta,
                                 float eps, float momentum,
                                 float *running_mean, float *running_var,
                                 int n, int c, int hw);
int lp_batchnorm2d_backward_train(float *din, float *dgamma, float *dbeta,
                                  const float *dout, const float *in,
                                  const float *gamma, const float *save_mean,
                                  const float *save_rstd, int n, int c,
                                  int hw);

/* LayerNorm over the last dimension of x[rows, dim]. save_mean/save_rstd
 * [rows] may be NULL in forward (then backward recomputes them from in). */
int lp_layernorm_forward(float *out, float *save_mean, float *save_rstd,
                         const float *in, const float *gamma,
                         const float *beta, float eps, int rows, int dim);
int lp_layernorm_backward(float *din, float *dgamma, float *dbeta,
                          const float *dout, const float *in,
                          const float *gamma, const float *save_mean,
                          const float *save_rstd, float eps, int rows,
                          int dim);

/* ------------------------------------------------------------------ */
/* Activations and softmax — ops/activation.c                          */
/* ------------------------------------------------------------------ */

typedef enum { LP_GELU_ERF = 0, LP_GELU_TANH = 1 } lp_gelu_kind;

/* Elementwise over `count` values; in-place (out == in) is allowed in
 * forward. relu'(0) = 0 as in PyTorch. */
int lp_relu_forward(float *out, const float *in, size_t count);
int lp_relu_backward(float *din, const float *dout, const float *in,
                     size_t count);
int lp_gelu_forward(float *out, const float *in, size_t count,
                    lp_gelu_kind kind);
int lp_gelu_backward(float *din, const float *dout, const float *in,
                     size_t count, lp_gelu_kind kind);
/* sigmoid and tanh backward use the forward OUTPUT. */
int lp_sigmoid_forward(float *out, const float *in, size_t count);
int lp_sigmoid_backward(float *din, const float *dout, const float *out,
                        size_t count);
int lp_tanh_forward(float *out, const float *in, size_t count);
int lp_tanh_backward(float *din, const float *dout, const float *out,
                     size_t count);
/* Softmax / log-softmax over the last dimension of x[rows, dim];
 * forward allows out == in; backward uses the forward OUTPUT. */
int lp_softmax_forward(float *out, const float *in, int rows, int dim);
int lp_softmax_backward(float *din, const float *dout, const float *out,
                        int rows, int dim);
int lp_log_softmax_forward(float *out, const float *in, int rows, int dim);
int lp_log_softmax_backward(float *din, const float *dout, const float *out,
                            int rows, int dim);

/* ------------------------------------------------------------------ */
/* Pooling — ops/pool.c                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    int n, c, h_in, w_in;
    int k_h, k_w;
    int stride_h, stride_w;
    int pad_h, pad_w;          /* pad <= kernel/2, as in PyTorch */
    int count_include_pad;     /* avgpool only; PyTorch default 1 */
} lp_pool2d_params;

int lp_pool2d_output_size(const lp_pool2d_params *p, int *h_out, int *w_out);
/* Max pooling. Padding counts as -inf. Tie rule: the FIRST maximum in
 * row-major window order wins (as PyTorch's CPU kernel); NaN propagates.
 * argmax (may be NULL) receives, per output, the flat index h*w_in+w of
 * the chosen input within its plane; backward uses it when given, else
 * recomputes it from `in`. */
int lp_maxpool2d_forward(float *out, int32_t *argmax, const float *in,
                         const lp_pool2d_params *p);
int lp_maxpool2d_backward(float *din, const float *dout, const float *in,
                          const int32_t *argmax, const lp_pool2d_params *p);
int lp_avgpool2d_forward(float *out, const float *in,
                         const lp_pool2d_params *p);
int lp_avgpool2d_backward(float *din, const float *dout,
                          const lp_pool2d_params *p);
/* Adaptive average pooling of x[n, c, h_in, w_in] to [n, c, h_out, w_out]
 * with PyTorch's bins: start = floor(i*H/Ho), end = ceil((i+1)*H/Ho). */
int lp_adaptive_avgpool2d_forward(float *out, const float *in, int n, int c,
                                  int h_in, int w_in, int h_out, int w_out);
int lp_adaptive_avgpool2d_backward(float *din, const float *dout, int n,
                                   int c, int h_in, int w_in, int h_out,
                                   int w_out);

/* ------------------------------------------------------------------ */
/* Tensor plumbing — ops/tensor_ops.c                                  */
/* ------------------------------------------------------------------ */

/* out = a + b (residual). out may alias a or b. */
int lp_add_forward(float *out, const float *a, const float *b, size_t count);
/* da += dout ; db += dout (either may be NULL). */
int lp_add_backward(float *da, float *db, const float *dout, size_t count);

/* Concatenate along the token axis: a[n, ta, d] ++ b[n, tb, d] -> out[n, ta+tb, d] */
int lp_concat_tokens_forward(float *out, const float *a, const float *b,
                             int n, int ta, int tb, int d);
int lp_concat_tokens_backward(float *da, float *db, const float *dout, int n,
                              int ta, int tb, int d);
/* Slice tokens [start, start+len) of in[n, t, d] -> out[n, len, d] */
int lp_slice_tokens_forward(float *out, const float *in, int n, int t, int d,
                            int start, int len);
int lp_slice_tokens_backward(float *din, const float *dout, int n, int t,
                             int d, int start, int len);

/* CIFAR ResNet "option A" shortcut: out = zero-pad-channels(x[:, :, ::s, ::s])
 * with pad_before zero channels before and pad_after after.
 * in [n, c, h, w] -> out [n, pad_before + c + pad_after, ceil(h/s), ceil(w/s)] */
int lp_pad_channels_subsample_forward(float *out, const float *in, int n,
                                      int c, int h, int w, int stride,
                                      int pad_before, int pad_after);
int lp_pad_channels_subsample_backward(float *din, const float *dout, int n,
                                       int c, int h, int w, int stride,
                                       int pad_before, int pad_after);

/* ------------------------------------------------------------------ */
/* Multi-head scaled-dot-product attention — ops/attention.c           */
/* ------------------------------------------------------------------ */

/*
 * q, k, v are [n, t, heads*head_dim] viewed with a row stride of
 * `qkv_stride` floats between consecutive tokens (heads*head_dim for
 * separate buffers, 3*heads*head_dim to read straight out of a fused qkv
 * projection). Head h uses features [h*head_dim, (h+1)*head_dim).
 *   scores[n, h, i, j] = scale * <q_i, k_j>       (scale usually 1/sqrt(head_dim))
 *   probs = softmax_j(scores)                      (materialised, hookable)
 *   out[n, i, h*head_dim + e] = sum_j probs[n,h,i,j] * v[n, j, h*head_dim + e]
 * out is contiguous [n, t, heads*head_dim].
 */
typedef struct {
    int n, tokens, heads, head_dim;
    int qkv_stride;
    float scale;
} lp_attention_params;

/* The three steps separately, so a caller (the hook system) can read or
 * change scores and probs between them. */
int lp_attention_scores_forward(float *scores, const float *q, const float *k,
                                const lp_attention_params *p);
int lp_attention_apply_forward(float *out, const float *probs, const float *v,
                               const lp_attention_params *p);
/* All three: scores (may be NULL: then computed in probs' buffer), probs. */
int lp_attention_forward(float *out, float *scores, float *probs,
                         const float *q, const float *k, const float *v,
                         const lp_attention_params *p);
/* Gradient of the out of lp_attention_apply_forward: dprobs and dv. */
int lp_attention_apply_backward(float *dprobs, float *dv, const float *dout,
                                const float *probs, const float *v,
                                const lp_attention_params *p);
/* Gradient of lp_attention_scores_forward: dq and dk from dscores. */
int lp_attention_scores_backward(float *dq, float *dk, const float *dscores,
                                 const float *q, const float *k,
                                 const lp_attention_params *p);
/* Whole backward; dq/dk/dv use the same qkv_stride as q/k/v; any may be
 * NULL. Needs scratch of 2 * tokens * tokens floats (allocated inside). */
int lp_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v,
                          const float *probs, const lp_attention_params *p);

/* ------------------------------------------------------------------ */
/* Resizing — ops/resize.c                                             */
/* ------------------------------------------------------------------ */

/* x[planes, h_in, w_in] -> out[planes, h_out, w_out], where planes = N*C.
 * Match torch.nn.functional.interpolate with align_corners=False
 * (bilinear also supports align_corners=True), without antialiasing.
 * Nearest is PyTorch's mode='nearest' (src = floor(dst * in/out)).
 * Bicubic uses Keys' cubic convolution with a = -0.75 (as PyTorch),
 * clamping source indices at the border. */
int lp_resize_bilinear_forward(float *out, const float *in, int planes,
                               int h_in, int w_in, int h_out, int w_out,
                               int align_corners);
int lp_resize_bilinear_backward(float *din, const float *dout, int planes,
                                int h_in, int w_in, int h_out, int w_out,
                                int align_corners);
int lp_resize_nearest_forward(float *out, const float *in, int planes,
                              int h_in, int w_in, int h_out, int w_out);
int lp_resize_nearest_backward(float *din, const float *dout, int planes,
                               int h_in, int w_in, int h_out, int w_out);
int lp_resize_bicubic_forward(float *out, const float *in, int planes,
                              int h_in, int w_in, int h_out, int w_out,
                              int align_corners);
int lp_resize_bicubic_backward(float *din, const float *dout, int planes,
                               int h_in, int w_in, int h_out, int w_out,
                               int align_corners);

/* ------------------------------------------------------------------ */
/* Losses — ops/loss.c                                                 */
/* ------------------------------------------------------------------ */

/* Mean cross-entropy of logits[rows, classes] against integer targets.
 * *loss receives the mean over rows; backward adds
 * dloss * (softmax(logits) - onehot(target)) / rows to dlogits. */
int lp_cross_entropy_forward(float *loss, const float *logits,
                             const int32_t *targets, int rows, int classes);
int lp_cross_entropy_backward(float *dlogits, float dloss,
                              const float *logits, const int32_t *targets,
                              int rows, int classes);
/* Mean squared error: *loss = mean((pred - target)^2). */
int lp_mse_forward(float *loss, const float *pred, const float *target,
                   size_t count);
int lp_mse_backward(float *dpred, float dloss, const float *pred,
                    const float *target, size_t count);

#ifdef __cplusplus
}
#endif

#include "loupe_formats.h"
#include "loupe_nn.h"
#include "loupe_interp.h"

#endif /* LOUPE_H */
