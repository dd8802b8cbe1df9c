/*
 * report_demo.c — writes an HTML report (tools/report.c) from a made-up
 * ev_run, for tests/test_report.sh: no model is run, so the report can be
 * checked in a browser without `loupe evaluate` and with the awkward cases
 * a real run seldom has (a skipped image, a failed map, HTML special
 * characters in names and errors, data-set-level values, an unranked
 * metric). Built by the script against a build's tools/report.o and
 * libloupe.a; it lives in tests/report/ so that the unit-test binary
 * (built from every tests/NAME.c) does not pick it up.
 *
 *   usage: report_demo OUT.html [--grey] [--model M.lpw]
 *     --grey   a 1x28x28 input (MNIST-like) instead of 3x32x32
 *     --model  take the input size and the class names from a model file
 *
 * Prints what the report must contain, as options of report_dom.py:
 *   --images N --summary-rows N --best N --plots N --polylines N --skipped N
 */
#include "loupe.h"
#include "evaluate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_IMAGES 7
#define N_METHODS 3
#define N_VALUES 5
#define N_SHOWN 4
#define STEPS 32

enum { V_DELETION, V_INSERTION, V_MUFIDELITY, V_RANDOMIZATION, V_MEGE };

static const char *const method_names[N_METHODS] = {"saliency", "gradcam", "rise"};
static const char *const value_names[N_VALUES] = {
    "deletion", "insertion", "mufidelity", "randomization", "mege"};
static const int directions[N_VALUES] = {0, 1, 1, -1, 1};

/* A small deterministic generator (no libc rand: same bytes everywhere). */
static uint32_t rng_state = 12345u;
static double uniform(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / 16777216.0;
}

static void fill_image(ev_image *im, int i)
{
    memset(im, 0, sizeof *im);
    im->ok = 1;
    im->label = i % 10;
    im->predicted = (i * 3) % 10;
    im->prob = (float)(0.5 + 0.4 * uniform());
    im->target = im->predicted;
    snprintf(im->name, sizeof im->name, "class_%d/img_%04d.png", i % 10, i);
    if (i == 1) /* a name that must be escaped */
        snprintf(im->name, sizeof im->name, "evil<script>alert(1)</script> & \"x\".jpg");
    if (i == 4) {
        im->ok = 0;
        snprintf(im->name, sizeof im->name, "broken<b>.jpg");
        snprintf(im->error, sizeof im->error,
                 "broken<b>.jpg: not a JPEG file (bad <marker> & 'tag')");
    }
}

/* A curve falling (deletion) or rising (insertion), faster for better
 * methods; AUC by the trapezoid rule on a unit axis. */
static void fill_curve(ev_value *e, int v, int m)
{
    double sum = 0.0, speed = 2.0 + 3.0 * m + uniform();
    e->curve_len = STEPS + 1;
    e->curve = lp_alloc(STEPS + 1, sizeof(float));
    for (int k = 0; k <= STEPS && e->curve != NULL; k++) {
        double t = (double)k / STEPS, drop = exp(-speed * t);
        e->curve[k] = (float)(v == V_DELETION ? 0.9 * drop : 0.9 * (1.0 - drop) + 0.05);
        sum += e->curve[k];
    }
    if (e->curve != NULL)
        e->value = (sum - 0.5 * (e->curve[0] + e->curve[STEPS])) / STEPS;
}

static void fill_values(ev_run *run)
{
    for (int i = 0; i < run->n_images; i++)
        for (int m = 0; m < N_METHODS; m++)
            for (int v = 0; v < N_VALUES; v++) {
                ev_value *e = ev_at(run, i, m, v);
                memset(e, 0, sizeof *e);
                e->value = NAN;
                if (!run->images[i].ok || v == V_MEGE)
                    continue;
                if (v == V_DELETION || v == V_INSERTION)
                    fill_curve(e, v, m);
                else
                    e->value = uniform() - 0.3 * m;
            }
}

/* Mean, sd and a normal-approximation interval (the real run uses
 * Student's t; any numbers do for the report). */
static void fill_summary(ev_run *run)
{
    for (int m = 0; m < N_METHODS; m++)
        for (int v = 0; v < N_VALUES; v++) {
            ev_summary *s = &run->summary[m * N_VALUES + v];
            double sum = 0.0, sq = 0.0;
            memset(s, 0, sizeof *s);
            for (int i = 0; i < run->n_images; i++) {
                double x = ev_at(run, i, m, v)->value;
                if (isfinite(x)) {
                    s->n++;
                    sum += x;
                    sq += x * x;
                }
            }
            if (v == V_MEGE) { /* data-set level: no per-image values */
                s->n = 1;
                s->mean = s->ci_lo = s->ci_hi = 0.4 + 0.1 * m;
                continue;
            }
            s->mean = s->n ? sum / s->n : NAN;
            s->sd = s->n > 1 ? sqrt(fmax(0.0, (sq - sum * s->mean) / (s->n - 1))) : 0.0;
            s->ci_lo = s->mean - 1.96 * s->sd / sqrt(s->n > 0 ? s->n : 1);
            s->ci_hi = s->mean + 1.96 * s->sd / sqrt(s->n > 0 ? s->n : 1);
        }
}

/* A smooth picture and, per method, a blob map; saliency's map is signed
 * (a diverging scale), rise fails on the second shown image. */
static void fill_pictures(ev_run *run, const lp_model_info *info, float **inputs,
                          float **maps)
{
    int c = info->in_c, h = info->in_h, w = info->in_w, s = 0;
    for (int i = 0; i < run->n_images && s < N_SHOWN; i++) {
        if (!run->images[i].ok)
            continue;
        run->shown[s] = i;
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    inputs[s][(k * h + y) * w + x] =
                        (float)((sin(0.3 * (x + 2 * k + i)) * cos(0.2 * y) * 0.3 + 0.5 -
                                 info->mean[k]) / info->std[k]);
        for (int m = 0; m < N_METHODS; m++) {
            float *map = maps[s * N_METHODS + m];
            double cy = h * (0.3 + 0.1 * m), cx = w * (0.6 - 0.1 * s);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    double d2 = ((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (w * w * 0.02);
                    map[y * w + x] = (float)(exp(-d2) - (m == 0 ? 0.4 * exp(-d2 / 9.0) : 0.0));
                }
            run->shown_map[s * N_METHODS + m] = (m == 2 && s == 1) ? NULL : map;
        }
        run->shown_input[s] = inputs[s];
        s++;
    }
    run->n_shown = s;
}

static void demo_info(lp_model_info *info, int grey)
{
    memset(info, 0, sizeof *info);
    snprintf(info->arch, sizeof info->arch, "resnet");
    snprintf(info->name, sizeof info->name, grey ? "demo-grey" : "demo-rgb");
    info->in_c = grey ? 1 : 3;
    info->in_h = info->in_w = grey ? 28 : 32;
    info->num_classes = 10;
    for (int k = 0; k < 3; k++) {
        info->mean[k] = grey ? 0.1307f : 0.49f - 0.02f * k;
        info->std[k] = grey ? 0.3081f : 0.25f;
    }
}

int main(int argc, char **argv)
{
    static ev_image images[N_IMAGES];
    static ev_value values[N_IMAGES * N_METHODS * N_VALUES];
    static ev_summary summary[N_METHODS * N_VALUES];
    static double seconds[N_METHODS] = {0.25, 1.5, 12.0};
    static int shown[N_SHOWN];
    float *inputs[N_SHOWN], *maps[N_SHOWN * N_METHODS], *shown_map[N_SHOWN * N_METHODS];
    const char *out = NULL, *model_path = NULL;
    lp_model_info info;
    lp_model *model = NULL;
    ev_run run;
    int grey = 0, rc, failed_maps = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--grey") == 0)
            grey = 1;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model_path = argv[++i];
        else
            out = argv[i];
    }
    if (out == NULL) {
        fprintf(stderr, "usage: report_demo OUT.html [--grey] [--model M.lpw]\n");
        return 2;
    }
    demo_info(&info, grey);
    if (model_path != NULL) {
        if (lp_model_load(&model, model_path) != LP_OK) {
            fprintf(stderr, "report_demo: %s\n", lp_last_error());
            return 1;
        }
        info = *lp_model_get_info(model);
    }

    memset(&run, 0, sizeof run);
    run.model_path = model_path ? model_path : "demo<model>.lpw";
    run.data_path = "data/ & <images>";
    run.protocol = "deletion: rise protocol, 32 steps, substrate zero, score prob\n"
                   "insertion: rise protocol, 32 steps, substrate blur, score prob\n"
                   "mufidelity: grid 9, subset 20 %, 200 samples, Spearman <rho>";
    run.info = &info;
    run.model = model;
    run.n_images = N_IMAGES;
    run.n_methods = N_METHODS;
    run.n_values = N_VALUES;
    for (int m = 0; m < N_METHODS; m++)
        run.method[m] = method_names[m];
    for (int v = 0; v < N_VALUES; v++) {
        run.value_name[v] = value_names[v];
        run.higher_is_better[v] = directions[v];
    }
    run.images = images;
    run.values = values;
    run.summary = summary;
    run.method_seconds = seconds;
    run.shown = shown;
    run.shown_input = inputs;
    run.shown_map = shown_map;

    for (int i = 0; i < N_IMAGES; i++)
        fill_image(&images[i], i);
    for (int s = 0; s < N_SHOWN; s++)
        inputs[s] = lp_alloc((size_t)info.in_c * info.in_h * info.in_w, sizeof(float));
    for (int k = 0; k < N_SHOWN * N_METHODS; k++)
        maps[k] = lp_alloc((size_t)info.in_h * info.in_w, sizeof(float));
    fill_values(&run);
    fill_summary(&run);
    fill_pictures(&run, &info, inputs, maps);
    for (int k = 0; k < run.n_shown * N_METHODS; k++)
        failed_maps += shown_map[k] == NULL;

    rc = ev_write_report(out, &run);
    if (rc != LP_OK) {
        fprintf(stderr, "report_demo: %s\n", lp_last_error());
    } else {
        /* every shown image: the input and one map per method that worked;
         * one summary row per (metric, method), a best one for each
         * metric but randomization (unranked); deletion and insertion
         * plots with a line per method; one skipped image */
        printf("--images %d --summary-rows %d --best %d --plots 2 --polylines %d "
               "--skipped 1\n",
               run.n_shown * (1 + N_METHODS) - failed_maps, N_VALUES * N_METHODS,
               N_VALUES - 1, 2 * N_METHODS);
    }
    for (int s = 0; s < N_SHOWN; s++)
        lp_free(inputs[s]);
    for (int k = 0; k < N_SHOWN * N_METHODS; k++)
        lp_free(maps[k]);
    for (int k = 0; k < N_IMAGES * N_METHODS * N_VALUES; k++)
        lp_free(values[k].curve);
    lp_model_free(model);
    return rc == LP_OK ? 0 : 1;
}
