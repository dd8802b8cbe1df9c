/*
 * cli.c — shared helpers of the loupe subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("loupe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_BAD_INPUT;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_int(const char *opt, const char *text, int lo, int hi, int *out)
{
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi) {
        cli_error("%s expects an integer in [%d, %d], got '%s'", opt, lo, hi, text);
        return CLI_BAD_INPUT;
    }
    *out = (int)v;
    return CLI_OK;
}

int cli_load_model(const char *path, lp_model **m)
{
    if (path == NULL)
        return cli_error("--model FILE.lpw is required");
    if (lp_model_load(m, path) != LP_OK)
        return cli_error("%s", lp_last_error());
    return CLI_OK;
}

static int load_npy_batch(const lp_model *m, const char *path, cli_batch *b)
{
    const lp_model_info *in = lp_model_get_info(m);
    lp_npy a;
    if (lp_npy_load(&a, path) != LP_OK)
        return cli_error("%s", lp_last_error());
    if (a.dtype != LP_DTYPE_F32 || a.ndim != 4 || a.shape[1] != in->in_c ||
        a.shape[2] != in->in_h || a.shape[3] != in->in_w || a.shape[0] < 1 ||
        a.shape[0] > CLI_MAX_IMAGES) {
        lp_npy_free(&a);
        return cli_error("%s: expected a float32 array [N,%d,%d,%d] with 1 <= N <= %d",
                         path, in->in_c, in->in_h, in->in_w, CLI_MAX_IMAGES);
    }
    b->n = (int)a.shape[0];
    b->data = a.data; /* take ownership */
    a.data = NULL;
    for (int i = 0; i < b->n; i++)
        b->names[i] = path;
    return CLI_OK;
}

int cli_load_batch(const lp_model *m, const char *const *images, int n_images,
                   const char *npy_path, cli_batch *b)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t per = (size_t)in->in_c * in->in_h * in->in_w;
    memset(b, 0, sizeof *b);
    if ((npy_path != NULL) == (n_images > 0))
        return cli_error("give either --image FILE (one or more) or --input X.npy");
    if (npy_path != NULL)
        return load_npy_batch(m, npy_path, b);
    b->data = lp_alloc((size_t)n_images * per, sizeof(float));
    if (b->data == NULL)
        return cli_error("%s", lp_last_error());
    for (int i = 0; i < n_images; i++) {
        lp_image img = {0};
        if (lp_image_load(&img, images[i]) != LP_OK ||
            lp_model_prepare_image(m, &img, b->data + (size_t)i * per) != LP_OK) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s", lp_last_error());
            lp_image_free(&img);
            cli_free_batch(b);
            return cli_error("%s", msg);
        }
        lp_image_free(&img);
        b->names[i] = images[i];
    }
    b->n = n_images;
    return CLI_OK;
}

void cli_free_batch(cli_batch *b)
{
    lp_free(b->data);
    b->data = NULL;
    b->n = 0;
}

int cli_status(int lp_rc)
{
    if (lp_rc == LP_OK)
        return CLI_OK;
    /* refused by --max-memory: the input is too large for the limit */
    if (lp_rc == LP_ENOMEM && !lp_memory_limit_refused())
        return CLI_FAIL;
    return CLI_BAD_INPUT;
}

/* ---- options shared by explain and evaluate ---------------------------- */

int cli_enum(const char *cmd, const char *opt, const char *v, const char *const *names,
             int *out)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return CLI_OK;
        }
    return cli_error("%s: %s '%s' is not one of the choices (see --help)", cmd, opt, v);
}

int cli_float(const char *cmd, const char *opt, const char *v, double lo, double hi,
              float *out)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(d >= lo && d <= hi))
        return cli_error("%s: %s expects a number in [%g, %g], got '%s'", cmd, opt, lo, hi, v);
    *out = (float)d;
    return CLI_OK;
}

int cli_method_option(const char *cmd, const char *k, const char *v, lp_explain_options *o)
{
    static const char *quads[] = {"left", "right", "middle", "trapezoid", "gausslegendre", NULL};
    static const char *bases[] = {"zero", "black", "blur", "uniform", NULL};
    static const char *perts[] = {"inpaint", "blur", "amplitude", NULL};
    static const char *ests[] = {"jansen", "saltelli", "homma", "janon", NULL};
    static const char *segs[] = {"quickshift", "grid", NULL};
    int e = 0, rc = CLI_OK;
    if (!strcmp(k, "--layer")) o->layer = v;
    else if (!strcmp(k, "--score")) {
        if (lp_score_parse(v, &o->score) != LP_OK) rc = cli_error("%s: %s", cmd, lp_last_error());
    } else if (!strcmp(k, "--steps")) rc = cli_int(k, v, 1, 100000, &o->steps);
    else if (!strcmp(k, "--quadrature")) { rc = cli_enum(cmd, k, v, quads, &e); o->quadrature = (lp_quadrature)e; }
    else if (!strcmp(k, "--baseline")) { rc = cli_enum(cmd, k, v, bases, &e); o->baseline = (lp_baseline_kind)e; }
    else if (!strcmp(k, "--samples")) rc = cli_int(k, v, 1, 1000000, &o->samples);
    else if (!strcmp(k, "--noise")) rc = cli_float(cmd, k, v, 0.0, 100.0, &o->noise);
    else if (!strcmp(k, "--patch")) rc = cli_int(k, v, 1, 100000, &o->patch);
    else if (!strcmp(k, "--stride")) rc = cli_int(k, v, 1, 100000, &o->stride);
    else if (!strcmp(k, "--occlusion-value")) rc = cli_float(cmd, k, v, -1e6, 1e6, &o->occlusion_value);
    else if (!strcmp(k, "--masks")) rc = cli_int(k, v, 1, 10000000, &o->masks);
    else if (!strcmp(k, "--grid")) rc = cli_int(k, v, 1, 100000, &o->grid);
    else if (!strcmp(k, "--p")) rc = cli_float(cmd, k, v, 0.0, 1.0, &o->keep_prob);
    else if (!strcmp(k, "--designs")) rc = cli_int(k, v, 1, 1 << 24, &o->designs);
    else if (!strcmp(k, "--perturbation")) { rc = cli_enum(cmd, k, v, perts, &e); o->perturbation = (lp_perturbation)e; }
    else if (!strcmp(k, "--estimator")) { rc = cli_enum(cmd, k, v, ests, &e); o->estimator = (lp_sobol_estimator)e; }
    else if (!strcmp(k, "--lime-samples")) rc = cli_int(k, v, 1, 1000000, &o->lime_samples);
    else if (!strcmp(k, "--lrp-eps")) rc = cli_float(cmd, k, v, 0.0, 1e6, &o->lrp_eps);
    else if (!strcmp(k, "--segments")) { rc = cli_enum(cmd, k, v, segs, &e); o->segments = (lp_segments)e; }
    else if (!strcmp(k, "--kernel-size")) rc = cli_float(cmd, k, v, 0.01, 64.0, &o->qs_kernel);
    else if (!strcmp(k, "--max-dist")) rc = cli_float(cmd, k, v, 0.0, 1e6, &o->qs_max_dist);
    else if (!strcmp(k, "--ratio")) rc = cli_float(cmd, k, v, 0.0, 1e6, &o->qs_ratio);
    else if (!strcmp(k, "--batch")) rc = cli_int(k, v, 1, 4096, &o->batch);
    else if (!strcmp(k, "--seed")) {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        if (*v == '\0' || *end != '\0') rc = cli_error("%s: --seed expects an integer", cmd);
        o->seed = (uint64_t)s;
    } else
        return -1;
    return rc;
}
