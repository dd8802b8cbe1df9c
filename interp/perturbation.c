/* perturbation.c — STUB: being written. */
#include "loupe.h"

int lp_occlusion(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_occlusion: not implemented yet");
}

int lp_rise(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_rise: not implemented yet");
}

int lp_sobol_attribution(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_sobol_attribution: not implemented yet");
}

int lp_hsic_attribution(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_hsic_attribution: not implemented yet");
}

int lp_lime(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_lime: not implemented yet");
}

int lp_kernelshap(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_kernelshap: not implemented yet");
}

