/*
 * cmd_explain.c — `loupe explain`: attribution maps of images for one or
 * more methods, as .npy arrays and PNG heatmaps.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_METHODS 32

static void usage(FILE *f)
{
    fprintf(f,
"usage: loupe explain --model M.lpw (--image FILE... | --input X.npy)\n"
"                     --method NAME[,NAME...] [--target top|K|label:NAME]\n"
"                     [--score logit|prob|logprob|margin] [--out MAP.npy]\n"
"                     [--png OVERLAY.png] [method options] [--quiet]\n"
"\n"
"Explain what the model looked at: for each input, a map of how much each\n"
"pixel matters to the target class's score.\n"
"\n"
"  --method NAME    one or several (comma separated); `--list` shows them\n"
"  --target SPEC    top (default: each image's predicted class), a class\n"
"                   index, or label:NAME (a class name from the model file)\n"
"  --score KIND     the scalar explained: logit (default), prob, logprob,\n"
"                   margin (logit minus the best other class's)\n"
"  --out MAP.npy    the maps, float32 [N,H,W] ([N,C,H,W] for gradient);\n"
"                   with several methods, MAP.npy becomes MAP.METHOD.npy\n"
"  --png FILE.png   the map over the image with a colour bar; with several\n"
"                   images or methods, FILE.png becomes FILE.I.METHOD.png\n"
"  --quiet          no progress bar (it shows only on a terminal anyway)\n"
"\n"
"method options (defaults are the reference implementations'):\n"
"  --layer NAME         CAM layer (default: last conv stage; ViT: last norm1)\n"
"  --steps N            integrated-gradients steps (50)\n"
"  --quadrature Q       left|right|middle|trapezoid|gausslegendre (gausslegendre)\n"
"  --baseline B         zero|black|blur|uniform (zero = the mean colour)\n"
"  --baseline-file X.npy  a user baseline [C,H,W] (normalised)\n"
"  --samples N          smoothgrad/vargrad/squaregrad samples (50)\n"
"  --noise F            their noise std as a fraction of the input range (0.2)\n"
"  --patch N --stride N --occlusion-value F   occlusion (8, 8, 0)\n"
"  --masks N --grid N --p F                   rise (4000, 7, 0.5)\n"
"  --designs N --perturbation inpaint|blur|amplitude\n"
"  --estimator jansen|saltelli|homma|janon    sobol (32, grid 8, inpaint, jansen)\n"
"  --lime-samples N     lime (150) / kernelshap (800)\n"
"  --segments S         their features: quickshift super-pixels (default) or\n"
"                       grid (--grid cells a side, 8)\n"
"  --kernel-size F --max-dist F --ratio F     quick shift (2, 10, 0.5)\n"
"  --lrp-eps F          chefer's LRP stabiliser (1e-9, the paper's code; a\n"
"                       larger one, e.g. 0.01, steadies ill-conditioned models)\n"
"  --no-relu            CAMs keep negative evidence\n"
"  --seed N             random methods' seed (0)\n"
"  --batch N            images per forward pass (32)\n"
"\n"
"examples:\n"
"  loupe explain --model weights/resnet20_cifar10.lpw \\\n"
"      --image weights/samples/cat_0000.jpg --method gradcam --png cat.png\n"
"  loupe explain --model vit.lpw --image dog.jpg --method rollout,chefer \\\n"
"      --target label:golden_retriever --out maps.npy\n");
}

static void list_methods(void)
{
    for (const lp_method *me = lp_methods(); me->name; me++)
        printf("  %-22s %s%s (%s)\n", me->name, me->summary,
               (me->flags & LP_METHOD_VIT_ONLY) ? " [ViT]" : "", me->reference);
}

/* ---- progress ----------------------------------------------------------- */

typedef struct {
    int enabled;
    const char *method;
    struct timespec start;
    long last_done;
} progress_state;

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void on_progress(void *user, long done, long total)
{
    progress_state *p = user;
    double s = seconds_since(&p->start);
    int width = 30, fill = total > 0 ? (int)(width * done / total) : 0;
    if (!p->enabled)
        return;
    fprintf(stderr, "\r%-14s [", p->method);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '=' : (i == fill ? '>' : ' '), stderr);
    fprintf(stderr, "] %ld/%ld passes  %.1f/s ", done, total, s > 0 ? done / s : 0.0);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
    p->last_done = done;
}

/* ---- options -------------------------------------------------------------- */

typedef struct {
    const char *model, *npy, *methods, *target, *out, *png, *baseline_file;
    const char *images[CLI_MAX_IMAGES];
    int n_images, quiet;
    lp_explain_options o;
} explain_args;

static int parse_args(int argc, char **argv, explain_args *a)
{
    lp_explain_defaults(&a->o);
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v;
        int rc = CLI_OK;
        if (!strcmp(k, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(k, "--no-relu")) { a->o.no_relu = 1; continue; }
        if (strncmp(k, "--", 2) || !strcmp(k, "--help") || !strcmp(k, "--list"))
            return cli_error("explain: unexpected argument '%s' (see loupe explain --help)", k);
        if ((v = cli_value(argc, argv, &i)) == NULL)
            return CLI_BAD_INPUT;
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--input")) a->npy = v;
        else if (!strcmp(k, "--image")) {
            if (a->n_images >= CLI_MAX_IMAGES)
                return cli_error("explain: at most %d images", CLI_MAX_IMAGES);
            a->images[a->n_images++] = v;
        } else if (!strcmp(k, "--method")) a->methods = v;
        else if (!strcmp(k, "--target")) a->target = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--png")) a->png = v;
        else if (!strcmp(k, "--baseline-file")) a->baseline_file = v;
        else if ((rc = cli_method_option("explain", k, v, &a->o)) < 0)
            return cli_error("explain: unknown option '%s' (see loupe explain --help)", k);
        if (rc != CLI_OK)
            return rc;
    }
    if (a->model == NULL)
        return cli_error("explain: --model M.lpw is required");
    if (a->methods == NULL)
        return cli_error("explain: --method NAME is required (`loupe explain --list`)");
    return CLI_OK;
}

/* "maps.npy" + "gradcam" -> "maps.gradcam.npy"; index >= 0 adds ".I" */
static void output_name(char *buf, size_t cap, const char *path, int index,
                        const char *method, int several_methods)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    int stem = (dot && (!slash || dot > slash)) ? (int)(dot - path) : (int)strlen(path);
    char mid[96] = "";
    if (index >= 0)
        snprintf(mid + strlen(mid), sizeof mid - strlen(mid), ".%d", index);
    if (several_methods)
        snprintf(mid + strlen(mid), sizeof mid - strlen(mid), ".%s", method);
    snprintf(buf, cap, "%.*s%s%s", stem, path, mid, path + stem);
}

/* ---- the command ------------------------------------------------------------ */

typedef struct {
    const lp_method *method;
    float *map;
    size_t per_image; /* floats per image in map */
    lp_explain_report rep;
} method_run;

static int write_outputs(const explain_args *a, const lp_model *m, const cli_batch *b,
                         const method_run *runs, int n_runs)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t plane = (size_t)in->in_h * in->in_w;
    char path[1024];
    for (int r = 0; r < n_runs; r++) {
        const method_run *run = &runs[r];
        int per_channel = (run->method->flags & LP_METHOD_PER_CHANNEL) != 0;
        if (a->out) {
            int64_t shape[4] = {b->n, per_channel ? in->in_c : in->in_h,
                                per_channel ? in->in_h : in->in_w, in->in_w};
            output_name(path, sizeof path, a->out, -1, run->method->name, n_runs > 1);
            if (lp_npy_save(path, LP_DTYPE_F32, run->map, per_channel ? 4 : 3, shape) != LP_OK)
                return cli_error("%s", lp_last_error());
        }
        if (a->png) {
            float *flat = lp_alloc(plane, sizeof(float));
            if (flat == NULL)
                return cli_error("out of memory");
            for (int i = 0; i < b->n; i++) {
                const float *map = run->map + (size_t)i * run->per_image;
                uint8_t *rgb = NULL;
                int w, h, rc;
                if (per_channel) { /* show |g| max over channels */
                    for (size_t p = 0; p < plane; p++) {
                        float v = 0.0f;
                        for (int c = 0; c < in->in_c; c++) {
                            float g = map[c * plane + p];
                            g = g < 0 ? -g : g;
                            if (g > v) v = g;
                        }
                        flat[p] = v;
                    }
                    map = flat;
                }
                rc = lp_render_heatmap(in, b->data + (size_t)i * in->in_c * plane, map,
                                       in->in_h, in->in_w, &rgb, &w, &h);
                output_name(path, sizeof path, a->png, b->n > 1 ? i : -1, run->method->name,
                            n_runs > 1);
                if (rc == LP_OK)
                    rc = lp_png_write(path, rgb, w, h, 3);
                lp_free(rgb);
                if (rc != LP_OK) {
                    lp_free(flat);
                    return cli_error("%s", lp_last_error());
                }
            }
            lp_free(flat);
        }
    }
    return CLI_OK;
}

static void print_summary(const lp_model *m, const cli_batch *b, const int *classes,
                          const method_run *runs, int n_runs, double seconds)
{
    for (int i = 0; i < b->n; i++) {
        const char *label = lp_model_label(m, classes[i]);
        printf("%s: target class %d%s%s%s\n", b->names[i] ? b->names[i] : "input", classes[i],
               label ? " (" : "", label ? label : "", label ? ")" : "");
    }
    for (int r = 0; r < n_runs; r++) {
        const method_run *run = &runs[r];
        printf("  %-20s %ld forward, %ld backward passes", run->method->name,
               run->rep.forwards, run->rep.backwards);
        if (run->rep.layer[0])
            printf("; layer %s", run->rep.layer);
        if (!strcmp(run->method->name, "integrated-gradients"))
            printf("; completeness gap %.3g (f(x) %.4g, f(baseline) %.4g)",
                   run->rep.completeness_gap, run->rep.score_x, run->rep.score_baseline);
        printf("\n");
    }
    printf("  %.2f s\n", seconds);
}

int cmd_explain(int argc, char **argv)
{
    explain_args a;
    lp_model *m = NULL;
    cli_batch b = {0};
    method_run runs[MAX_METHODS];
    int n_runs = 0, rc, *classes = NULL;
    lp_npy baseline = {0};
    char list[512];
    progress_state prog;
    struct timespec t0;

    memset(&a, 0, sizeof a);
    memset(runs, 0, sizeof runs);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return CLI_OK; }
        if (!strcmp(argv[i], "--list")) { list_methods(); return CLI_OK; }
    }
    if ((rc = parse_args(argc, argv, &a)) != CLI_OK)
        return rc;
    /* methods first: a typo should not cost a model load */
    snprintf(list, sizeof list, "%s", a.methods);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n_runs >= MAX_METHODS)
            return cli_error("explain: at most %d methods at once", MAX_METHODS);
        if ((runs[n_runs].method = lp_find_method(tok)) == NULL)
            return cli_error("%s", lp_last_error());
        n_runs++;
    }
    if (n_runs == 0)
        return cli_error("explain: --method is empty");
    if ((rc = cli_load_model(a.model, &m)) != CLI_OK)
        return rc;
    for (int r = 0; r < n_runs; r++)
        if ((runs[r].method->flags & LP_METHOD_VIT_ONLY) &&
            strcmp(lp_model_get_info(m)->arch, "vit")) {
            rc = cli_error("explain: %s needs a Vision Transformer; %s is a %s",
                           runs[r].method->name, a.model, lp_model_get_info(m)->arch);
            goto done;
        }
    if (a.baseline_file) {
        const lp_model_info *in = lp_model_get_info(m);
        if (lp_npy_load(&baseline, a.baseline_file) != LP_OK) {
            rc = cli_error("%s", lp_last_error());
            goto done;
        }
        if (baseline.dtype != LP_DTYPE_F32 || baseline.ndim != 3 ||
            baseline.shape[0] != in->in_c || baseline.shape[1] != in->in_h ||
            baseline.shape[2] != in->in_w) {
            rc = cli_error("%s: a baseline must be float32 [%d,%d,%d]", a.baseline_file,
                           in->in_c, in->in_h, in->in_w);
            goto done;
        }
        a.o.baseline = LP_BASELINE_USER;
        a.o.baseline_data = baseline.data;
    }
    if ((rc = cli_load_batch(m, a.images, a.n_images, a.npy, &b)) != CLI_OK)
        goto done;
    {
        const lp_model_info *in = lp_model_get_info(m);
        lp_target t = {LP_TARGET_TOP, a.o.score, -1};
        float *logits = lp_alloc((size_t)b.n * in->out_dim, sizeof(float));
        classes = malloc((size_t)b.n * sizeof *classes);
        rc = (logits && classes) ? LP_OK : LP_ENOMEM;
        if (rc == LP_OK)
            rc = lp_target_parse(m, a.target, &t);
        if (rc == LP_OK)
            rc = lp_model_forward(m, b.data, b.n, logits, 0);
        if (rc == LP_OK)
            rc = lp_target_classes(&t, logits, b.n, in->out_dim, classes);
        lp_free(logits);
        if (rc != LP_OK) {
            rc = cli_error("%s", lp_last_error());
            goto done;
        }
    }
    prog.enabled = !a.quiet && isatty(2);
    a.o.progress = on_progress;
    a.o.progress_user = &prog;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < n_runs; r++) {
        const lp_model_info *in = lp_model_get_info(m);
        method_run *run = &runs[r];
        long passes = lp_method_passes(run->method, m, &a.o) * b.n;
        run->per_image = (size_t)in->in_h * in->in_w *
                         ((run->method->flags & LP_METHOD_PER_CHANNEL) ? in->in_c : 1);
        run->map = lp_calloc((size_t)b.n * run->per_image, sizeof(float));
        if (run->map == NULL) {
            rc = cli_error("out of memory");
            goto done;
        }
        if (!a.quiet)
            fprintf(stderr, "%s: about %ld image pass(es) for %d image(s)\n", run->method->name,
                    passes, b.n);
        prog.method = run->method->name;
        clock_gettime(CLOCK_MONOTONIC, &prog.start);
        prog.last_done = 0;
        if (run->method->run(m, b.data, b.n, classes, &a.o, run->map, &run->rep) != LP_OK) {
            if (prog.enabled && prog.last_done > 0)
                fputc('\n', stderr);
            rc = cli_error("%s: %s", run->method->name, lp_last_error());
            goto done;
        }
    }
    /* everything computed: now write */
    if ((rc = write_outputs(&a, m, &b, runs, n_runs)) != CLI_OK)
        goto done;
    print_summary(m, &b, classes, runs, n_runs, seconds_since(&t0));
done:
    for (int r = 0; r < n_runs; r++)
        lp_free(runs[r].map);
    free(classes);
    lp_npy_free(&baseline);
    cli_free_batch(&b);
    lp_model_free(m);
    return rc;
}
