/*
 * loss.c — mean cross-entropy over integer targets and mean squared error,
 * forward and backward.
 *
 * Sums are accumulated in double and in a fixed (sequential) order, so the
 * loss does not depend on the thread count.
 */
#include "internal.h"

#include <math.h>

/* ---- cross-entropy ---------------------------------------------------- */

static int check_cross_entropy(const char *op, const float *logits,
                               const int32_t *targets, int rows, int classes)
{
    size_t count;
    LP_TRY(lp_require_positive(op, "rows", rows));
    LP_TRY(lp_require_positive(op, "classes", classes));
    LP_TRY(lp_checked_count(op, &count, 2, rows, classes));
    LP_TRY(lp_require_ptr(op, "logits", logits));
    LP_TRY(lp_require_ptr(op, "targets", targets));
    for (int r = 0; r < rows; r++)
        if (targets[r] < 0 || targets[r] >= classes)
            return lp_set_error(LP_EINVAL,
                                "%s: target %ld of row %d is outside "
                                "[0, %d)",
                                op, (long)targets[r], r, classes);
    return LP_OK;
}

/* log(sum_j exp(x_j)) computed as max + log(sum_j exp(x_j - max)), so no
 * term overflows and the largest term is exactly 1. */
static double log_sum_exp(const float *x, int n, double *max_out)
{
    double max = x[0], sum = 0.0;
    for (int j = 1; j < n; j++)
        if (x[j] > max)
            max = x[j];
    for (int j = 0; j < n; j++)
        sum += exp((double)x[j] - max);
    *max_out = max;
    return max + log(sum);
}

/* loss = mean over rows of (logsumexp(logits_r) - logits_r[target_r]) */
int lp_cross_entropy_forward(float *loss, const float *logits,
                             const int32_t *targets, int rows, int classes)
{
    const char *op = "lp_cross_entropy_forward";
    double total = 0.0, max;
    LP_TRY(lp_require_ptr(op, "loss", loss));
    LP_TRY(check_cross_entropy(op, logits, targets, rows, classes));
    for (int r = 0; r < rows; r++) {
        const float *row = logits + (size_t)r * classes;
        total += log_sum_exp(row, classes, &max) - (double)row[targets[r]];
    }
    *loss = (float)(total / rows);
    return LP_OK;
}

/* d loss / d logits[r, j] = dloss * (softmax(logits_r)_j - [j == t_r]) / rows */
int lp_cross_entropy_backward(float *dlogits, float dloss,
                              const float *logits, const int32_t *targets,
                              int rows, int classes)
{
    const char *op = "lp_cross_entropy_backward";
    double scale;
    LP_TRY(lp_require_ptr(op, "dlogits", dlogits));
    LP_TRY(check_cross_entropy(op, logits, targets, rows, classes));
    scale = (double)dloss / rows;
    /* Rows are independent: any split between threads gives the same bits. */
#pragma omp parallel for schedule(static) if ((size_t)rows * classes > 65536)
    for (int r = 0; r < rows; r++) {
        const float *row = logits + (size_t)r * classes;
        float *grad = dlogits + (size_t)r * classes;
        double max, lse = log_sum_exp(row, classes, &max);
        for (int j = 0; j < classes; j++) {
            double p = exp((double)row[j] - lse);
            if (j == targets[r])
                p -= 1.0;
            grad[j] += (float)(scale * p);
        }
    }
    return LP_OK;
}

/* ---- mean squared error ----------------------------------------------- */

static int check_mse(const char *op, const float *pred, const float *target,
                     size_t count)
{
    if (count == 0)
        return lp_set_error(LP_EINVAL, "%s: count must be positive", op);
    if (count > LP_MAX_ELEMENTS)
        return lp_set_error(LP_ENOMEM, "%s: count %zu is too large", op,
                            count);
    LP_TRY(lp_require_ptr(op, "pred", pred));
    LP_TRY(lp_require_ptr(op, "target", target));
    return LP_OK;
}

int lp_mse_forward(float *loss, const float *pred, const float *target,
                   size_t count)
{
    const char *op = "lp_mse_forward";
    double total = 0.0;
    LP_TRY(lp_require_ptr(op, "loss", loss));
    LP_TRY(check_mse(op, pred, target, count));
    for (size_t i = 0; i < count; i++) {
        double d = (double)pred[i] - (double)target[i];
        total += d * d;
    }
    *loss = (float)(total / (double)count);
    return LP_OK;
}

/* d loss / d pred_i = dloss * 2 (pred_i - target_i) / count */
int lp_mse_backward(float *dpred, float dloss, const float *pred,
                    const float *target, size_t count)
{
    const char *op = "lp_mse_backward";
    double scale;
    ptrdiff_t n = (ptrdiff_t)count;
    LP_TRY(lp_require_ptr(op, "dpred", dpred));
    LP_TRY(check_mse(op, pred, target, count));
    scale = 2.0 * (double)dloss / (double)count;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (ptrdiff_t i = 0; i < n; i++)
        dpred[i] += (float)(scale * ((double)pred[i] - (double)target[i]));
    return LP_OK;
}
