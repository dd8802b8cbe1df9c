/*
 * evaluate.h — what one `loupe evaluate` run produced, in memory.
 *
 * cmd_evaluate.c fills an ev_run (from the journal of finished images, so
 * a resumed run and an uninterrupted one hold the same numbers), then the
 * writers turn it into JSON, CSV, the aligned summary table and the HTML
 * report (report.c).
 */
#ifndef LOUPE_EVALUATE_H
#define LOUPE_EVALUATE_H

#include "loupe.h"

#include <stdint.h>

#define EV_MAX_METHODS 32
#define EV_MAX_VALUES 32

/* One input of the data set. */
typedef struct {
    char name[256];   /* file path relative to --data, or "cifar10[17]" */
    int label;        /* data set label, -1 when unknown */
    int predicted;    /* top-1 class of the model */
    float prob;       /* its softmax probability */
    int target;       /* the class explained and scored */
    int ok;           /* 0: unreadable, skipped; `error` says why */
    char error[200];
} ev_image;

/* One number of one (image, method): a metric's value (NaN when it could
 * not be computed) and, for deletion/insertion, the curve it integrates. */
typedef struct {
    double value;
    int curve_len;    /* 0, or steps + 1 */
    float *curve;     /* score after each step (lp_alloc'ed) */
} ev_value;

/* Mean and 95 % confidence interval of one (method, value) over images
 * (Student's t; ci_lo = ci_hi = mean when n < 2). */
typedef struct {
    int n;
    double mean, sd, ci_lo, ci_hi;
} ev_summary;

typedef struct {
    /* what was run, for the report's header and the output files */
    const char *model_path, *data_path;
    const char *protocol;          /* one line per metric, '\n' separated */
    const lp_model_info *info;     /* input size, mean/std, labels */
    const lp_model *model;         /* for class names (lp_model_label) */

    int n_images;                  /* rows (ok or skipped) */
    int n_methods;
    int n_values;
    const char *method[EV_MAX_METHODS];      /* "saliency", "gradcam", ... */
    const char *value_name[EV_MAX_VALUES];   /* "deletion", "insertion",
                                                "mufidelity", ... */
    int higher_is_better[EV_MAX_VALUES];     /* 1, 0 (deletion), or -1
                                                when neither (randomisation) */
    ev_image *images;              /* [n_images] */
    ev_value *values;              /* [n_images][n_methods][n_values] */
    ev_summary *summary;           /* [n_methods][n_values] */
    double *method_seconds;        /* [n_methods] time in each method and
                                      its metrics, summed over images */

    /* pictures for the report: the first n_shown ok images */
    int n_shown;
    int *shown;                    /* [n_shown] indices into images */
    float **shown_input;           /* [n_shown] normalised [C, H, W] */
    float **shown_map;             /* [n_shown * n_methods] maps [H, W] at
                                      the input size (NULL: method failed) */
} ev_run;

static inline ev_value *ev_at(const ev_run *r, int image, int method, int value)
{
    return &r->values[((long)image * r->n_methods + method) * r->n_values + value];
}

/* The self-contained HTML report (report.c): written atomically; returns
 * an LP_ status (the error is set). */
int ev_write_report(const char *path, const ev_run *run);

#endif /* LOUPE_EVALUATE_H */
