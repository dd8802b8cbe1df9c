/* vit_attention.c — STUB: being written. */
#include "loupe.h"

int lp_rollout(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_rollout: not implemented yet");
}

int lp_attention_last(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_attention_last: not implemented yet");
}

int lp_chefer(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_chefer: not implemented yet");
}

int lp_attn_gradcam(lp_model *m, const float *x, int n, const int *classes,
        const lp_explain_options *o, float *out, lp_explain_report *rep)
{
    (void)m; (void)x; (void)n; (void)classes; (void)o; (void)out; (void)rep;
    return lp_set_error(LP_EINVAL, "lp_attn_gradcam: not implemented yet");
}

