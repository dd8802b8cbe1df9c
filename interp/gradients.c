/* gradients.c — STUB: being written. */
#include "loupe.h"

int lp_gradient(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_gradient: not implemented yet");
}

int lp_saliency(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_saliency: not implemented yet");
}

int lp_gradxinput(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_gradxinput: not implemented yet");
}

int lp_integrated_gradients(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_integrated_gradients: not implemented yet");
}

int lp_smoothgrad(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_smoothgrad: not implemented yet");
}

int lp_vargrad(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_vargrad: not implemented yet");
}

int lp_squaregrad(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_squaregrad: not implemented yet");
}

int lp_guided_backprop(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_guided_backprop: not implemented yet");
}

int lp_deconvnet(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_deconvnet: not implemented yet");
}

int lp_deeplift(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_deeplift: not implemented yet");
}

