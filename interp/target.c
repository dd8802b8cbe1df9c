/*
 * target.c — what a method explains: the target class of each image and
 * the score of it (logit, probability, log-probability or margin), with
 * the derivative of that score with respect to the logits, which seeds
 * every backward pass of the gradient methods.
 */
#include "loupe.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int argmax_excluding(const float *z, int k, int skip)
{
    int best = -1;
    for (int j = 0; j < k; j++)
        if (j != skip && (best < 0 || z[j] > z[best]))
            best = j;
    return best;
}

int lp_target_classes(const lp_target *t, const float *logits, int n, int k,
                      int *classes)
{
    if (t == NULL || logits == NULL || classes == NULL || n < 1 || k < 1)
        return lp_set_error(LP_EINVAL, "lp_target_classes: bad argument");
    if (t->class_index >= k)
        return lp_set_error(LP_ERANGE, "target class %d out of range: the model has %d outputs",
                            t->class_index, k);
    for (int b = 0; b < n; b++)
        classes[b] = t->class_index >= 0 ? t->class_index
                                         : argmax_excluding(logits + (size_t)b * k, k, -1);
    return LP_OK;
}

/* softmax(z)_c and log softmax(z)_c in double, stable */
static double log_softmax_at(const float *z, int k, int c, double *p_all_scale, double *mx_out)
{
    double mx = z[0], sum = 0.0;
    for (int j = 1; j < k; j++)
        if (z[j] > mx) mx = z[j];
    for (int j = 0; j < k; j++)
        sum += exp((double)z[j] - mx);
    *p_all_scale = sum;
    *mx_out = mx;
    return (double)z[c] - mx - log(sum);
}

int lp_target_score(const lp_target *t, const float *logits, int n, int k,
                    const int *classes, float *score, float *dlogits)
{
    if (t == NULL || logits == NULL || classes == NULL)
        return lp_set_error(LP_EINVAL, "lp_target_score: NULL argument");
    for (int b = 0; b < n; b++) {
        const float *z = logits + (size_t)b * k;
        float *dz = dlogits ? dlogits + (size_t)b * k : NULL;
        int c = classes[b];
        double s = 0.0, sum, mx;
        if (c < 0 || c >= k)
            return lp_set_error(LP_ERANGE, "target class %d out of range [0, %d)", c, k);
        if (dz)
            memset(dz, 0, (size_t)k * sizeof(float));
        switch (t->score) {
        case LP_SCORE_LOGIT:
            s = z[c];
            if (dz) dz[c] = 1.0f;
            break;
        case LP_SCORE_PROB:
        case LP_SCORE_LOGPROB: {
            double lp = log_softmax_at(z, k, c, &sum, &mx);
            double p = exp(lp);
            s = t->score == LP_SCORE_PROB ? p : lp;
            if (dz)
                for (int j = 0; j < k; j++) {
                    double pj = exp((double)z[j] - mx) / sum;
                    /* d log p_c / dz_j = [j==c] - p_j ; d p_c = p_c * that */
                    double d = (j == c ? 1.0 : 0.0) - pj;
                    dz[j] = (float)(t->score == LP_SCORE_PROB ? p * d : d);
                }
            break;
        }
        case LP_SCORE_MARGIN: {
            int o = t->other_class >= 0 ? t->other_class : argmax_excluding(z, k, c);
            if (o < 0 || o >= k || o == c)
                return lp_set_error(LP_ERANGE, "margin needs another class than %d", c);
            s = (double)z[c] - z[o];
            if (dz) {
                dz[c] = 1.0f;
                dz[o] = -1.0f;
            }
            break;
        }
        default:
            return lp_set_error(LP_EINVAL, "unknown score kind %d", (int)t->score);
        }
        if (score)
            score[b] = (float)s;
    }
    return LP_OK;
}

int lp_score_parse(const char *name, lp_score_kind *score)
{
    static const char *names[] = {"logit", "prob", "logprob", "margin"};
    for (int i = 0; i < 4; i++)
        if (name != NULL && !strcmp(name, names[i])) {
            *score = (lp_score_kind)i;
            return LP_OK;
        }
    return lp_set_error(LP_EINVAL, "unknown score '%s' (logit, prob, logprob or margin)",
                        name ? name : "");
}

int lp_target_parse(const lp_model *m, const char *spec, lp_target *t)
{
    int k = lp_model_get_info(m)->out_dim;
    if (spec == NULL || !strcmp(spec, "top")) {
        t->class_index = LP_TARGET_TOP;
        return LP_OK;
    }
    if (!strncmp(spec, "label:", 6)) {
        for (int c = 0; c < k; c++) {
            const char *l = lp_model_label(m, c);
            if (l != NULL && !strcmp(l, spec + 6)) {
                t->class_index = c;
                return LP_OK;
            }
        }
        return lp_set_error(LP_ENOTFOUND, "no class labelled '%s' in this model", spec + 6);
    }
    {
        char *end;
        long v = strtol(spec, &end, 10);
        if (*spec == '\0' || *end != '\0' || v < 0)
            return lp_set_error(LP_EINVAL, "target '%s': give top, a class index or label:NAME",
                                spec);
        if (v >= k)
            return lp_set_error(LP_ERANGE, "target class %ld out of range: the model has %d outputs",
                                v, k);
        t->class_index = (int)v;
    }
    return LP_OK;
}

int lp_target_gradient(lp_model *m, const float *x, int n, const int *classes,
                       lp_score_kind score, float *scores, float *dx)
{
    int k = lp_model_get_info(m)->out_dim;
    lp_target t = {0, score, -1};
    float *logits = lp_alloc((size_t)n * k, sizeof(float));
    float *dlogits = lp_alloc((size_t)n * k, sizeof(float));
    int rc = (logits && dlogits) ? LP_OK : LP_ENOMEM;
    if (rc == LP_OK)
        rc = lp_model_forward(m, x, n, logits, LP_RUN_GRAD);
    if (rc == LP_OK)
        rc = lp_target_score(&t, logits, n, k, classes, scores, dlogits);
    if (rc == LP_OK)
        rc = lp_model_backward(m, dlogits, dx);
    lp_free(logits);
    lp_free(dlogits);
    return rc;
}

int lp_target_forward(lp_model *m, const float *x, int n, int batch,
                      const int *classes, lp_score_kind score, float *scores)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t per = (size_t)in->in_c * in->in_h * in->in_w;
    int k = in->out_dim, rc = LP_OK;
    lp_target t = {0, score, -1};
    float *logits;
    if (batch < 1)
        batch = 32;
    logits = lp_alloc((size_t)(n < batch ? n : batch) * k, sizeof(float));
    if (logits == NULL)
        return LP_ENOMEM;
    for (int s = 0; s < n && rc == LP_OK; s += batch) {
        int c = n - s < batch ? n - s : batch;
        rc = lp_model_forward(m, x + (size_t)s * per, c, logits, 0);
        if (rc == LP_OK)
            rc = lp_target_score(&t, logits, c, k, classes + s, scores + s, NULL);
    }
    lp_free(logits);
    return rc;
}
