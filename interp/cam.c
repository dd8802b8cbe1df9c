/* cam.c — STUB: being written. */
#include "loupe.h"

int lp_gradcam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_gradcam: not implemented yet");
}

int lp_gradcampp(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_gradcampp: not implemented yet");
}

int lp_layercam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_layercam: not implemented yet");
}

int lp_hirescam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_hirescam: not implemented yet");
}

int lp_scorecam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_scorecam: not implemented yet");
}

int lp_eigencam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_eigencam: not implemented yet");
}

int lp_guided_gradcam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_guided_gradcam: not implemented yet");
}

