/*
 * loupe_interp.h — interpretability methods (interp/), built only on the
 * public model API (forward, backward, hooks). Included by loupe.h.
 *
 * Every attribution method has the same shape (lp_method_fn): given a
 * model, a normalised input batch x[n, C, H, W], one target class per
 * image and the options, it writes a map per image — [n, H, W] at input
 * resolution, or [n, C, H, W] for methods flagged LP_METHOD_PER_CHANNEL
 * (the raw gradient). lp_explain() looks a method up by name and runs it.
 */
#ifndef LOUPE_INTERP_H
#define LOUPE_INTERP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- targets (interp/target.c) --------------------------------------- */

/* What scalar of the output a method explains. */
typedef enum {
    LP_SCORE_LOGIT = 0,   /* z_c (default; Grad-CAM's pre-softmax score) */
    LP_SCORE_PROB,        /* softmax(z)_c */
    LP_SCORE_LOGPROB,     /* log softmax(z)_c */
    LP_SCORE_MARGIN       /* z_c - max_{j != c} z_j (or - z_other) */
} lp_score_kind;

#define LP_TARGET_TOP (-1)

typedef struct {
    int class_index;      /* >= 0, or LP_TARGET_TOP: each image's top-1 */
    lp_score_kind score;
    int other_class;      /* MARGIN against this class; -1: the best other */
} lp_target;

/* Per-image classes of a target given the logits [n, k]. */
int lp_target_classes(const lp_target *t, const float *logits, int n, int k,
                      int *classes);
/* score[b] of image b and, if dlogits != NULL, d score[b] / d logits[b,:]
 * (written, [n, k]). */
int lp_target_score(const lp_target *t, const float *logits, int n, int k,
                    const int *classes, float *score, float *dlogits);
/* Parse "top", "K" or "label:NAME" (a class name of the model) into
 * t->class_index, and "logit|prob|logprob|margin" into t->score. */
int lp_target_parse(const struct lp_model *m, const char *spec, lp_target *t);
int lp_score_parse(const char *name, lp_score_kind *score);

/* One forward with LP_RUN_GRAD and one backward of the target scores of
 * x[n]: writes score[n] (may be NULL) and the input gradient dx (may be
 * NULL). The model keeps the pass (activations, gradients of kept or
 * hooked layers) for the caller to read. */
int lp_target_gradient(struct lp_model *m, const float *x, int n,
                       const int *classes, lp_score_kind score, float *scores,
                       float *dx);
/* Forward only, in chunks of at most `batch` images: scores[n] of the
 * target classes (perturbation methods). */
int lp_target_forward(struct lp_model *m, const float *x, int n, int batch,
                      const int *classes, lp_score_kind score, float *scores);

/* ---- shared helpers (interp/common.c) ------------------------------------ */

/* Seeded random numbers (splitmix64): the same seed gives the same
 * stream on every platform and thread count. */
typedef struct { uint64_t state; } lp_rng;
lp_rng lp_rng_seed(uint64_t seed);
uint64_t lp_rng_u64(lp_rng *r);
double lp_rng_uniform(lp_rng *r); /* [0, 1) */
double lp_rng_normal(lp_rng *r);  /* N(0, 1), Box-Muller */

/* Separable Gaussian blur of planes[planes, h, w] with std sigma pixels
 * (kernel radius ceil(3 sigma), borders replicated); out != in. */
int lp_blur_gaussian(float *out, const float *in, int planes, int h, int w,
                     float sigma);
/* Box blur of side k (OpenCV's cv2.blur: mean over a k x k window whose
 * anchor is the centre, borders reflected 101); out != in. */
int lp_blur_box(float *out, const float *in, int planes, int h, int w, int k);

/* ---- options and reports ------------------------------------------------ */

typedef enum {
    LP_BASELINE_ZERO = 0, /* 0 in the normalised input space (= mean colour) */
    LP_BASELINE_BLACK,    /* pixel value 0 (-mean/std after normalisation) */
    LP_BASELINE_BLUR,     /* the input blurred (Gaussian, sigma = blur_sigma px) */
    LP_BASELINE_UNIFORM,  /* uniform noise over the input's range, seeded */
    LP_BASELINE_USER      /* options.baseline: [C, H, W] normalised */
} lp_baseline_kind;

typedef enum {
    LP_RIEMANN_LEFT = 0, LP_RIEMANN_RIGHT, LP_RIEMANN_MIDDLE,
    LP_RIEMANN_TRAPEZOID, LP_GAUSS_LEGENDRE
} lp_quadrature;

typedef enum {
    LP_PERTURB_INPAINT = 0, /* x * M (masked pixels -> 0, the mean colour) */
    LP_PERTURB_BLUR,        /* x * M + blur(x) * (1 - M) */
    LP_PERTURB_AMPLITUDE    /* x * (M - 0.5) * sigma, sigma = 1 (the Sobol code; sobol.c) */
} lp_perturbation;

typedef enum {
    LP_SOBOL_JANSEN = 0, LP_SOBOL_SALTELLI, LP_SOBOL_HOMMA, LP_SOBOL_JANON
} lp_sobol_estimator;

/* The features LIME and KernelSHAP switch on and off. */
typedef enum {
    LP_SEGMENTS_QUICKSHIFT = 0, /* quick shift super-pixels of each image */
    LP_SEGMENTS_GRID            /* a grid x grid lattice of cells */
} lp_segments;

/* Progress of a long method: done / total passes. */
typedef void (*lp_progress_fn)(void *user, long done, long total);

typedef struct {
    lp_score_kind score;      /* what is explained (default logit) */
    const char *layer;        /* CAM layer (NULL: the method's default) */
    int batch;                /* max images per forward (default 32) */
    uint64_t seed;            /* RNG seed of random methods (default 0) */
    /* integrated gradients (and deeplift's baseline) */
    int steps;                /* IG steps (default 50) */
    lp_quadrature quadrature; /* default Gauss-Legendre, as Captum */
    lp_baseline_kind baseline;
    const float *baseline_data; /* LP_BASELINE_USER: [C, H, W] */
    float blur_sigma;         /* default 5 px */
    /* smoothgrad / vargrad / squaregrad */
    int samples;              /* default 50 */
    float noise;              /* sigma as a fraction of (max - min) of x (default 0.2) */
    /* occlusion */
    int patch, stride;        /* default 8 and 8 (pixels) */
    float occlusion_value;    /* default 0 (normalised: the mean colour) */
    /* rise */
    int masks;                /* default 4000 */
    int grid;                 /* RISE default 7; Sobol/HSIC default 8 */
    float keep_prob;          /* RISE p (default 0.5) */
    /* sobol / hsic */
    int designs;              /* Sobol default 32 (power of 2); HSIC 500 */
    lp_perturbation perturbation;
    lp_sobol_estimator estimator;
    /* lime / kernelshap */
    int lime_samples;         /* default LIME 150 (Xplique), KernelSHAP 800 */
    lp_segments segments;     /* default quick shift, as lime and Xplique */
    float qs_kernel, qs_max_dist, qs_ratio; /* quick shift (2, 10, 0.5: Xplique's) */
    /* chefer: the LRP stabiliser, a/b -> a/(b + eps*sign(b)), 0 where
       b = 0 (default 1e-9, the reference code's) */
    float lrp_eps;
    /* output */
    int no_relu;              /* CAMs: keep negative values (Captum style) */
    lp_progress_fn progress;
    void *progress_user;
} lp_explain_options;

/* Fill options with the reference defaults (documented per field). */
void lp_explain_defaults(lp_explain_options *o);

typedef struct {
    long forwards, backwards; /* image passes done (a batch of 16 = 16) */
    double completeness_gap;  /* IG: sum(attr) - (f(x) - f(x')), mean over images */
    double score_x, score_baseline; /* IG: mean f(x), f(x') */
    char layer[96];           /* the layer a CAM used */
} lp_explain_report;

typedef int (*lp_method_fn)(struct lp_model *m, const float *x, int n,
                            const int *classes, const lp_explain_options *o,
                            float *out, lp_explain_report *rep);

enum { LP_METHOD_PER_CHANNEL = 1, LP_METHOD_VIT_ONLY = 2, LP_METHOD_CNN_ONLY = 4 };

typedef struct {
    const char *name;         /* "gradcam", "integrated-gradients", ... */
    lp_method_fn run;
    unsigned flags;
    const char *summary;      /* one line for --help */
    const char *reference;    /* paper */
} lp_method;

/* The method table (interp/explain.c), NULL-terminated; lp_find_method
 * returns NULL (with an error naming the nearest methods) when unknown. */
const lp_method *lp_methods(void);
const lp_method *lp_find_method(const char *name);

/* Estimated image passes (forward + backward) of a method, for the
 * "this will take N passes" line and the progress bar. */
long lp_method_passes(const lp_method *me, const struct lp_model *m,
                      const lp_explain_options *o);

/* ---- pictures (interp/render.c) ----------------------------------------- */

/* Paint map[h, w] as a colour heatmap over the model input x[C, h, w]
 * (normalised; shown de-normalised with info's mean/std, grey inputs as
 * grey), scaled up so the shorter side is at least 224 px, with a colour
 * bar on the right labelled with the map's range. A map with both signs
 * uses a diverging blue-white-red scale centred on 0; otherwise a
 * sequential dark-to-bright scale from the map's minimum to its maximum.
 * *rgb (lp_alloc'ed, *out_w x *out_h x 3) is ready for lp_png_write. */
int lp_render_heatmap(const lp_model_info *info, const float *x,
                      const float *map, int h, int w, uint8_t **rgb,
                      int *out_w, int *out_h);
/* The same overlay at the input's own size, without the colour bar
 * (thumbnails, e.g. the evaluate report): *rgb is lp_alloc'ed h x w x 3;
 * range (may be NULL) receives the map values at the two ends of the
 * scale: {lo, hi}, with lo == -hi < 0 when the scale is diverging. */
int lp_render_overlay(const lp_model_info *info, const float *x,
                      const float *map, int h, int w, uint8_t **rgb,
                      float range[2]);

/* ---- metrics (interp/metrics.c; docs/methods/metrics.md) ---------------- */

typedef enum { LP_PROTOCOL_RISE = 0, LP_PROTOCOL_XPLIQUE } lp_protocol;
typedef enum {
    LP_SUBSTRATE_ZERO = 0, /* 0 in normalised space (the mean colour) */
    LP_SUBSTRATE_BLUR,     /* RISE's gkern(11, 5) blur of the image */
    LP_SUBSTRATE_MEAN      /* each channel's mean over the image */
} lp_substrate;

/* Deletion / insertion protocol (Petsiuk et al. 2018). */
typedef struct {
    lp_protocol protocol;
    int steps;                 /* n steps (row_steps = 0) */
    int row_steps;             /* 1: n = ceil(HW / W), W pixels a step (RISE) */
    lp_substrate deletion_substrate, insertion_substrate;
    lp_score_kind score;       /* RISE: prob; Xplique: logit */
    int batch;                 /* images per forward (default 32) */
} lp_causal_options;

void lp_causal_defaults(lp_causal_options *o, lp_protocol protocol);
/* Number of steps n (the curve has n + 1 points) for an h x w input. */
int lp_causal_steps(const lp_causal_options *o, int h, int w);
/* The substrate of x[c, h, w] (out != x). */
int lp_substrate_make(lp_substrate s, const float *x, int c, int h, int w,
                      float *out);
/* Pixel indices by decreasing map value (ties: lower index first). */
int lp_rank_pixels(const float *map, int n, int *order);
/* Deletion (insertion = 0) or insertion curve of one image x[C, H, W]
 * explained by map[H, W] for class cls: writes curve[n + 1] and its AUC
 * (trapezoid rule on [0, 1]); adds the forwards done to *forwards. */
int lp_metric_causal(struct lp_model *m, const float *x, int cls,
                     const float *map, int insertion, const lp_causal_options *o,
                     float *curve, double *auc, long *forwards);

/* MuFidelity (Bhatt et al. 2020): keep[samples, grid, grid] = u > subset,
 * seeded; then the Spearman and Pearson correlations between the logit
 * drop f(x) - f(x * m) and the removed attribution sum(map * (1 - m)). */
int lp_mufidelity_cells(uint8_t *keep, int samples, int grid, float subset,
                        uint64_t seed);
int lp_metric_mufidelity(struct lp_model *m, const float *x, int cls,
                         const float *map, const uint8_t *keep, int samples,
                         int grid, int batch, double *spearman, double *pearson,
                         long *forwards);

/* Stability: noise[samples, per] ~ U[lo, hi) (seeded); then average
 * stability (relative = 0, Xplique: mean L2 distance of the maps) or max
 * sensitivity (relative = 1, Captum: max relative Frobenius distance)
 * of `method` re-run on x + noise_j. map is method's map of x. */
int lp_stability_noise(float *noise, int samples, size_t per, float lo,
                       float hi, uint64_t seed);
int lp_metric_stability(struct lp_model *m, const lp_method *method,
                        const lp_explain_options *o, const float *x, int cls,
                        const float *map, const float *noise, int samples,
                        int relative, double *value, long *passes);

/* Statistics: Pearson and Spearman (average ranks for ties) correlation,
 * 0 when a side is constant; of maps, optionally of absolute values;
 * mean SSIM of two maps scaled to [0, 1] (7 x 7 windows). */
double lp_pearson(const double *a, const double *b, int n);
double lp_spearman(const double *a, const double *b, int n);
int lp_spearman_checked(const double *a, const double *b, int n, double *rho);
int lp_map_spearman(const float *a, const float *b, int n, int absolute,
                    double *rho);
int lp_map_ssim(const float *a, const float *b, int h, int w, double *ssim);
/* MeGe and ReCo (Fel et al. 2020) from the distances of the pairs whose
 * models agree (s_eq) and disagree (s_ne). NaN when undefined. */
int lp_mege_reco(const double *s_eq, int n_eq, const double *s_ne, int n_ne,
                 double *mege, double *reco);

/* ---- the methods (one file per family) -------------------------------- */

/* interp/gradients.c */
int lp_gradient(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_saliency(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_gradxinput(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_integrated_gradients(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_smoothgrad(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_vargrad(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_squaregrad(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_guided_backprop(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_deconvnet(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_deeplift(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);

/* interp/cam.c */
int lp_gradcam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_gradcampp(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_layercam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_hirescam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_scorecam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_eigencam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_guided_gradcam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);

/* interp/vit_attention.c (ViT) */
int lp_rollout(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_attention_last(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_chefer(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_chefer_grad(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_attn_gradcam(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);

/* interp/perturbation.c, interp/sobol.c, interp/surrogate.c (lime, kernelshap) */
int lp_occlusion(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_rise(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_sobol_attribution(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_hsic_attribution(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_lime(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
int lp_kernelshap(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);
/* metrics.c: a uniform random map, the baseline of the metrics */
int lp_random_attribution(struct lp_model *, const float *, int, const int *, const lp_explain_options *, float *, lp_explain_report *);

/* interp/segment.c — quick shift super-pixels (Vedaldi & Soatto 2008) of
 * an image rgb[c, h, w] with values in [0, 1] (c = 3, or 1 for grey):
 * colour in CIELAB times `ratio`, Parzen kernel width `kernel_size`,
 * links longer than `max_dist` cut. labels[h*w] receive 0 .. *count-1. */
int lp_quickshift(const float *rgb, int c, int h, int w, double kernel_size,
                  double max_dist, double ratio, int *labels, int *count);

/* interp/sobol.c — the quasi-random design and estimator core of Sobol
 * attribution, public for tests and for other sensitivity analyses. */
/* The first N points of the unscrambled dim-dimensional Sobol' sequence
 * (Joe-Kuo direction numbers, dim <= 512), origin first: exactly
 * scipy.stats.qmc.Sobol(dim, scramble=False).random(N). out[N][dim]. */
int lp_sobol_sequence(double *out, int N, int dim);
/* Total-order Sobol' indices st[d] from f(A)[N], f(B)[N] and f(C_i)[d][N]
 * (C_i = A with column i taken from B); Var(f(A)) with ddof=1, >= 1e-12. */
int lp_sobol_total_order(const float *fA, const float *fB, const float *fC,
                         int N, int d, lp_sobol_estimator e, double *st);

#ifdef __cplusplus
}
#endif

#endif /* LOUPE_INTERP_H */
