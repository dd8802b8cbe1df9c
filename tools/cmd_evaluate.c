/*
 * cmd_evaluate.c — `loupe evaluate`: run attribution methods over a data
 * set and score them with faithfulness and stability metrics
 * (docs/methods/metrics.md, docs/EVALUATE.md).
 *
 * The run is a loop over images. Each finished image becomes one line of
 * the journal (OUT.journal): its numbers in exact hexadecimal floats and a
 * CRC, appended with a single write. `--resume` reads the journal back,
 * drops a torn last line, refuses a journal made with other settings and
 * goes on from the first missing image. The output files are always
 * built from the journal lines, so a run killed and resumed any number of
 * times writes the same bytes as one that ran straight through.
 *
 * Threads (--parallel): either the images are shared out, one per thread
 * at a time, each thread with its own copy of the models and its kernels
 * single-threaded ("images": the faster choice for small inputs such as
 * CIFAR-10 and MNIST, whose layers are too small to split well), or images
 * run one after the other and the kernels split each batched forward (the
 * perturbed copies of one image) over the cores ("batches": ImageNet-size
 * inputs, no copy of the weights). Kernels and metrics reduce in a fixed
 * order and every image's draws depend on the image alone, so results are
 * bit-identical for any thread count and either choice (docs/EVALUATE.md).
 */
#include "cli.h"
#include "evaluate.h"
#include "evdata.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_STAGES 24
#define MAX_MODELS 16

enum { M_DELETION, M_INSERTION, M_MUFIDELITY, M_STABILITY, M_RANDOMIZATION, M_MEGE, M_COUNT };
static const char *metric_names[] = {"deletion", "insertion", "mufidelity", "stability",
                                     "randomization", "mege", NULL};

static void usage(FILE *f)
{
    fprintf(f,
"usage: loupe evaluate --model M.lpw --data DIR|CIFAR.bin|MNIST-IMAGES[,LABELS]\n"
"                      --method a,b,c --metric deletion,insertion,...\n"
"                      [--limit N] [--labels FILE] [--target top|label|K]\n"
"                      [--out results.json] [--csv results.csv]\n"
"                      [--report report.html] [--resume] [--quiet]\n"
"\n"
"Score attribution methods over many images. Prints one summary row per\n"
"(method, metric) with the mean and its 95%% confidence interval; writes\n"
"one row per (image, method, metric) to --out (JSON) and --csv, and a\n"
"self-contained HTML report with the maps and curves to --report.\n"
"\n"
"data:\n"
"  DIR            class/image folders (folder = class name or index), or\n"
"                 flat images with --labels FILE (\"PATH LABEL\" lines)\n"
"  FILE.bin       a CIFAR-10 binary batch\n"
"  IMAGES-idx3    an MNIST IDX pair (labels file found beside it, or\n"
"                 give IMAGES,LABELS)\n"
"  X.npy          normalised float32 inputs [N,C,H,W] (unlabelled)\n"
"  --limit N      the first N images only\n"
"  --target T     the class explained and scored: top (the prediction;\n"
"                 default), label (the data set's), or a class index\n"
"\n"
"metrics (docs/methods/metrics.md; each states its protocol in the output):\n"
"  deletion, insertion   AUC of the score while pixels are removed/added\n"
"                        in map order (lower/higher is better)\n"
"  mufidelity            correlation of score drops and removed attribution\n"
"                        (Spearman; also Pearson) over random cell subsets\n"
"  stability             average stability (Xplique) and max-sensitivity\n"
"                        (Captum) of the map under input noise (lower is better)\n"
"  randomization         cascading parameter randomisation (Adebayo 2018):\n"
"                        rank correlation / SSIM with the original map\n"
"  mege                  MeGe and ReCo across --models trained on k folds\n"
"\n"
"metric options:\n"
"  --protocol rise|xplique   deletion/insertion protocol (rise: one row of\n"
"                            pixels a step, probability, blurred insertion\n"
"                            start; xplique: 10 steps, logit, zero substrate)\n"
"  --causal-steps N  --substrate zero|blur|mean  --metric-score logit|prob\n"
"  --mufidelity-samples N (200)  --mufidelity-grid N (9)  --mufidelity-subset F (0.2)\n"
"  --stability-samples N (20)  --stability-radius F (0.1)\n"
"  --sensitivity-samples N (10)  --sensitivity-radius F (0.02)\n"
"  --models a.lpw,b.lpw,...  (mege: model i trained without split i)\n"
"  --seed N            the seed of every random draw (0)\n"
"\n"
"method options: as `loupe explain --help` (--steps, --masks, --layer, ...);\n"
"the method `random` is a uniform random map, the baseline to beat.\n"
"\n"
"threads (loupe --threads N evaluate ...; results identical either way):\n"
"  --parallel auto|images|batches  images: one image per thread, each with a\n"
"                    copy of the model (fastest; memory x threads); batches:\n"
"                    the kernels split each batch of perturbed copies; auto\n"
"                    (default): images for inputs up to 96x96, else batches\n"
"\n"
"output:\n"
"  --out FILE.json   rows, summary and protocol; FILE.json.journal keeps\n"
"                    each finished image (what --resume reads)\n"
"  --csv FILE.csv    the rows as CSV\n"
"  --report FILE.html  the report (--report-images N pictured, default 8)\n"
"  --save-maps DIR   each map as DIR/IMAGE.METHOD.npy ([H,W] float32)\n"
"  --resume          skip the images already in the journal; refuses a\n"
"                    journal made with different settings\n"
"\n"
"examples:\n"
"  loupe evaluate --model weights/resnet20_cifar10.lpw --data cifar.bin \\\n"
"      --limit 100 --method saliency,gradcam,rise,random \\\n"
"      --metric deletion,insertion,mufidelity --out r.json --report r.html\n");
}

/* ---- arguments --------------------------------------------------------- */

typedef struct {
    const char *model, *data, *labels, *methods, *metrics, *models;
    const char *out, *csv, *report, *target, *save_maps;
    int limit, resume, quiet, report_images;
    int protocol, causal_steps, substrate, metric_score; /* -1: protocol's */
    int mu_samples, mu_grid, stab_samples, sens_samples;
    float mu_subset, stab_radius, sens_radius;
    int parallel; /* PAR_AUTO, PAR_IMAGES, PAR_BATCHES */
    lp_explain_options o;
} ev_args;

enum { PAR_AUTO, PAR_IMAGES, PAR_BATCHES };

static int parse_args(int argc, char **argv, ev_args *a)
{
    static const char *protocols[] = {"rise", "xplique", NULL};
    static const char *substrates[] = {"zero", "blur", "mean", NULL};
    static const char *scores[] = {"logit", "prob", NULL};
    static const char *parallels[] = {"auto", "images", "batches", NULL};
    memset(a, 0, sizeof *a);
    lp_explain_defaults(&a->o);
    a->report_images = 8;
    a->causal_steps = a->substrate = a->metric_score = -1;
    a->mu_samples = 200;
    a->mu_grid = 9;
    a->mu_subset = 0.2f;
    a->stab_samples = 20;
    a->stab_radius = 0.1f;
    a->sens_samples = 10;
    a->sens_radius = 0.02f;
    a->target = "top";
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v;
        int rc = CLI_OK;
        if (!strcmp(k, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(k, "--resume")) { a->resume = 1; continue; }
        if (!strcmp(k, "--no-relu")) { a->o.no_relu = 1; continue; }
        if (strncmp(k, "--", 2))
            return cli_error("evaluate: unexpected argument '%s' (see loupe evaluate --help)", k);
        if ((v = cli_value(argc, argv, &i)) == NULL)
            return CLI_BAD_INPUT;
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--data")) a->data = v;
        else if (!strcmp(k, "--labels")) a->labels = v;
        else if (!strcmp(k, "--method")) a->methods = v;
        else if (!strcmp(k, "--metric")) a->metrics = v;
        else if (!strcmp(k, "--models")) a->models = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--csv")) a->csv = v;
        else if (!strcmp(k, "--report")) a->report = v;
        else if (!strcmp(k, "--save-maps")) a->save_maps = v;
        else if (!strcmp(k, "--target")) a->target = v;
        else if (!strcmp(k, "--limit")) rc = cli_int(k, v, 1, 100000000, &a->limit);
        else if (!strcmp(k, "--report-images")) rc = cli_int(k, v, 0, 1000, &a->report_images);
        else if (!strcmp(k, "--protocol")) rc = cli_enum("evaluate", k, v, protocols, &a->protocol);
        else if (!strcmp(k, "--causal-steps")) rc = cli_int(k, v, 1, 1000000, &a->causal_steps);
        else if (!strcmp(k, "--substrate")) rc = cli_enum("evaluate", k, v, substrates, &a->substrate);
        else if (!strcmp(k, "--metric-score")) rc = cli_enum("evaluate", k, v, scores, &a->metric_score);
        else if (!strcmp(k, "--parallel")) rc = cli_enum("evaluate", k, v, parallels, &a->parallel);
        else if (!strcmp(k, "--mufidelity-samples")) rc = cli_int(k, v, 2, 1000000, &a->mu_samples);
        else if (!strcmp(k, "--mufidelity-grid")) rc = cli_int(k, v, 1, 1024, &a->mu_grid);
        else if (!strcmp(k, "--mufidelity-subset")) rc = cli_float("evaluate", k, v, 0, 1, &a->mu_subset);
        else if (!strcmp(k, "--stability-samples")) rc = cli_int(k, v, 1, 100000, &a->stab_samples);
        else if (!strcmp(k, "--stability-radius")) rc = cli_float("evaluate", k, v, 0, 1e3, &a->stab_radius);
        else if (!strcmp(k, "--sensitivity-samples")) rc = cli_int(k, v, 1, 100000, &a->sens_samples);
        else if (!strcmp(k, "--sensitivity-radius")) rc = cli_float("evaluate", k, v, 0, 1e3, &a->sens_radius);
        else if ((rc = cli_method_option("evaluate", k, v, &a->o)) < 0)
            return cli_error("evaluate: unknown option '%s' (see loupe evaluate --help)", k);
        if (rc != CLI_OK)
            return rc;
    }
    if (!a->model || !a->data || !a->methods || !a->metrics)
        return cli_error("evaluate: --model, --data, --method and --metric are required "
                         "(see loupe evaluate --help)");
    if (a->resume && !a->out && !a->csv && !a->report)
        return cli_error("evaluate: --resume needs the --out (or --csv/--report) of the run "
                         "to resume");
    return CLI_OK;
}

/* ---- a growing string ---------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static void sb_hex(sbuf *b, const char *s)
{
    if (*s == '\0')
        sb_printf(b, "-");
    for (; *s; s++)
        sb_printf(b, "%02x", (unsigned char)*s);
}

/* ---- the run's state ------------------------------------------------------ */

/* What the evaluation of one image works with. With --parallel images each
 * thread has its own worker: worker 0 borrows the run's models, the others
 * load identical copies (setup_workers), so an image gives the same bytes
 * whichever worker takes it. */
typedef struct {
    lp_model *m;
    lp_model *stage_model[MAX_STAGES];
    lp_model *fold_model[MAX_MODELS];
    int owns_models;
    float *x, *full, *map, *tmp;
} ev_worker;

typedef struct {
    ev_args a;
    lp_model *m;
    const lp_model_info *in;
    ev_data data;
    const lp_method *method[EV_MAX_METHODS];
    int n_methods;
    int has_metric[M_COUNT];
    lp_causal_options causal;
    /* values per (image, method), in this order */
    int n_values;
    const char *value_name[EV_MAX_VALUES];
    int higher[EV_MAX_VALUES];
    char value_buf[EV_MAX_VALUES][128];
    int v_deletion, v_insertion, v_mufid, v_mufid_p, v_stab, v_sens;
    int v_rand, v_rand_ssim, v_rand_stage0, v_mege, v_reco;
    /* shared random draws */
    uint8_t *mu_keep;
    float *stab_noise, *sens_noise;
    /* randomisation cascade: stage s has groups[G-1..G-1-s] redrawn */
    lp_lpw *lpw;
    lp_model *stage_model[MAX_STAGES];
    char stage_name[MAX_STAGES][96];
    int n_stages;
    /* mege models */
    lp_model *fold_model[MAX_MODELS];
    int n_folds, fold_size;
    /* the journal */
    char journal_path[4200];
    char *config;
    char **lines;      /* [data.n]: each finished image's line, or NULL */
    int fd;
    /* progress */
    struct timespec start;
    int done_before, done_now;
    /* the workers (n_workers > 1: one image per thread at a time) */
    ev_worker *workers;
    int n_workers, next_image, failed, fail_rc;
    char fail_msg[600];
} ev_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int add_value(ev_ctx *c, const char *name, int higher)
{
    if (c->n_values == EV_MAX_VALUES)
        return lp_set_error(LP_ERANGE, "too many metric values (at most %d)", EV_MAX_VALUES);
    snprintf(c->value_buf[c->n_values], sizeof c->value_buf[0], "%s", name);
    c->value_name[c->n_values] = c->value_buf[c->n_values];
    c->higher[c->n_values] = higher;
    return c->n_values++;
}

/* Methods and metrics by name, before anything heavy is loaded. */
static int parse_lists(ev_ctx *c)
{
    char list[1024];
    snprintf(list, sizeof list, "%s", c->a.methods);
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        if (c->n_methods == EV_MAX_METHODS)
            return cli_error("evaluate: at most %d methods", EV_MAX_METHODS);
        if ((c->method[c->n_methods++] = lp_find_method(t)) == NULL)
            return cli_error("%s", lp_last_error());
    }
    snprintf(list, sizeof list, "%s", c->a.metrics);
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        int k = 0;
        while (metric_names[k] && strcmp(metric_names[k], t))
            k++;
        if (!metric_names[k])
            return cli_error("evaluate: unknown metric '%s' (deletion, insertion, mufidelity, "
                             "stability, randomization, mege)", t);
        c->has_metric[k] = 1;
    }
    if (c->n_methods == 0)
        return cli_error("evaluate: --method is empty");
    if (c->has_metric[M_MEGE] && !c->a.models)
        return cli_error("evaluate: mege needs --models a.lpw,b.lpw,... (k models, model i "
                         "trained without split i)");
    return CLI_OK;
}

static void setup_values(ev_ctx *c)
{
    c->v_deletion = c->v_insertion = c->v_mufid = c->v_mufid_p = c->v_stab = c->v_sens = -1;
    c->v_rand = c->v_rand_ssim = c->v_rand_stage0 = c->v_mege = c->v_reco = -1;
    if (c->has_metric[M_DELETION]) c->v_deletion = add_value(c, "deletion", 0);
    if (c->has_metric[M_INSERTION]) c->v_insertion = add_value(c, "insertion", 1);
    if (c->has_metric[M_MUFIDELITY]) {
        c->v_mufid = add_value(c, "mufidelity", 1);
        c->v_mufid_p = add_value(c, "mufidelity-pearson", 1);
    }
    if (c->has_metric[M_STABILITY]) {
        c->v_stab = add_value(c, "stability", 0);
        c->v_sens = add_value(c, "sensitivity", 0);
    }
    if (c->has_metric[M_RANDOMIZATION]) {
        c->v_rand = add_value(c, "randomization", 0);
        c->v_rand_ssim = add_value(c, "randomization-ssim", 0);
        for (int s = 0; s < c->n_stages; s++) {
            char name[120];
            snprintf(name, sizeof name, "randomization@%s", c->stage_name[s]);
            int v = add_value(c, name, -1);
            if (s == 0)
                c->v_rand_stage0 = v;
        }
    }
    if (c->has_metric[M_MEGE]) {
        c->v_mege = add_value(c, "mege", 1);
        c->v_reco = add_value(c, "reco", 1);
    }
}

/* The deletion/insertion protocol: the named one, then the overrides. */
static void setup_causal(ev_ctx *c)
{
    lp_causal_defaults(&c->causal, (lp_protocol)c->a.protocol);
    c->causal.batch = c->a.o.batch;
    if (c->a.causal_steps > 0) {
        c->causal.steps = c->a.causal_steps;
        c->causal.row_steps = 0;
    }
    if (c->a.substrate >= 0)
        c->causal.deletion_substrate = c->causal.insertion_substrate =
            (lp_substrate)c->a.substrate;
    if (c->a.metric_score >= 0)
        c->causal.score = c->a.metric_score ? LP_SCORE_PROB : LP_SCORE_LOGIT;
}

static int custom_protocol(const ev_ctx *c)
{
    return c->a.causal_steps > 0 || c->a.substrate >= 0 || c->a.metric_score >= 0;
}

/* ---- the protocol, as text ------------------------------------------------ */

static const char *substrate_name(lp_substrate s)
{
    return s == LP_SUBSTRATE_BLUR ? "blur (RISE gkern 11, sigma 5)"
           : s == LP_SUBSTRATE_MEAN ? "per-channel mean" : "zero (normalised: mean colour)";
}

static void describe_protocol(const ev_ctx *c, sbuf *b)
{
    int h = c->in->in_h, w = c->in->in_w;
    if (c->has_metric[M_DELETION] || c->has_metric[M_INSERTION])
        sb_printf(b,
                  "deletion/insertion: protocol %s, %d steps (%s), score %s of the target, "
                  "deletion substrate %s, insertion start %s, AUC by the trapezoid rule on "
                  "[0,1]\n",
                  custom_protocol(c) ? "custom" : (c->a.protocol ? "xplique" : "rise"),
                  lp_causal_steps(&c->causal, h, w),
                  c->causal.row_steps ? "one image row of pixels a step" : "equal pixel counts",
                  c->causal.score == LP_SCORE_PROB ? "softmax probability" : "logit",
                  substrate_name(c->causal.deletion_substrate),
                  substrate_name(c->causal.insertion_substrate));
    if (c->has_metric[M_MUFIDELITY])
        sb_printf(b,
                  "mufidelity: %d samples, grid %d, subset %.3g removed to 0, logit of the "
                  "target, Spearman (mufidelity) and Pearson (mufidelity-pearson)\n",
                  c->a.mu_samples, c->a.mu_grid, c->a.mu_subset);
    if (c->has_metric[M_STABILITY])
        sb_printf(b,
                  "stability: Xplique average stability, %d samples of U[0, %.3g), L2; "
                  "sensitivity: Captum max-sensitivity, %d samples of U[-%.3g, %.3g], "
                  "relative Frobenius\n",
                  c->a.stab_samples, c->a.stab_radius, c->a.sens_samples, c->a.sens_radius,
                  c->a.sens_radius);
    if (c->has_metric[M_RANDOMIZATION])
        sb_printf(b,
                  "randomization: cascading parameter randomisation over %d stages, Spearman "
                  "of |map| and SSIM (7x7) against the original map\n", c->n_stages);
    if (c->has_metric[M_MEGE])
        sb_printf(b, "mege/reco: %d models on %d consecutive splits of %d images\n",
                  c->n_folds, c->n_folds, c->fold_size);
    sb_printf(b, "target: %s; seed %llu\n", c->a.target, (unsigned long long)c->a.o.seed);
}

/* ---- setup: random draws, cascades, fold models --------------------------- */

static int setup_draws(ev_ctx *c)
{
    size_t per = (size_t)c->in->in_c * c->in->in_h * c->in->in_w;
    if (c->has_metric[M_MUFIDELITY]) {
        int g = c->a.mu_grid;
        c->mu_keep = lp_alloc((size_t)c->a.mu_samples * g * g, 1);
        if (c->mu_keep == NULL)
            return LP_ENOMEM;
        lp_mufidelity_cells(c->mu_keep, c->a.mu_samples, g, c->a.mu_subset, c->a.o.seed);
    }
    if (c->has_metric[M_STABILITY]) {
        c->stab_noise = lp_alloc((size_t)c->a.stab_samples * per, sizeof(float));
        c->sens_noise = lp_alloc((size_t)c->a.sens_samples * per, sizeof(float));
        if (!c->stab_noise || !c->sens_noise)
            return LP_ENOMEM;
        lp_stability_noise(c->stab_noise, c->a.stab_samples, per, 0.0f, c->a.stab_radius,
                           c->a.o.seed + 1);
        lp_stability_noise(c->sens_noise, c->a.sens_samples, per, -c->a.sens_radius,
                           c->a.sens_radius, c->a.o.seed + 2);
    }
    return LP_OK;
}

/* Stage s redraws the last s + 1 parameter groups (output side first). */
static int setup_cascade(ev_ctx *c)
{
    char groups[64][96];
    const char *chosen[64];
    int n = 0, rc = lp_lpw_open(&c->lpw, c->a.model, 0);
    if (rc == LP_OK)
        rc = lp_lpw_param_groups(c->lpw, groups, 64, &n);
    if (rc != LP_OK)
        return rc;
    c->n_stages = n < MAX_STAGES ? n : MAX_STAGES;
    for (int s = 0; s < c->n_stages && rc == LP_OK; s++) {
        chosen[s] = groups[n - 1 - s];
        snprintf(c->stage_name[s], sizeof c->stage_name[s], "%s", groups[n - 1 - s]);
        rc = lp_model_randomized(&c->stage_model[s], c->lpw, chosen, s + 1,
                                 c->a.o.seed + 12345);
    }
    return rc;
}

static int setup_folds(ev_ctx *c)
{
    char list[4096];
    int rc = LP_OK;
    snprintf(list, sizeof list, "%s", c->a.models);
    for (char *t = strtok(list, ","); t && rc == LP_OK; t = strtok(NULL, ",")) {
        if (c->n_folds == MAX_MODELS)
            return lp_set_error(LP_ERANGE, "--models: at most %d models", MAX_MODELS);
        rc = lp_model_load(&c->fold_model[c->n_folds], t);
        if (rc == LP_OK) {
            const lp_model_info *f = lp_model_get_info(c->fold_model[c->n_folds]);
            if (f->in_c != c->in->in_c || f->in_h != c->in->in_h || f->in_w != c->in->in_w ||
                f->out_dim != c->in->out_dim)
                rc = lp_set_error(LP_EINVAL, "%s: input or classes differ from --model", t);
            c->n_folds++;
        }
    }
    if (rc == LP_OK && c->n_folds < 2)
        rc = lp_set_error(LP_EINVAL, "--models: MeGe needs at least 2 models");
    if (rc == LP_OK) {
        c->fold_size = c->data.n / c->n_folds;
        if (c->fold_size == 0)
            rc = lp_set_error(LP_EINVAL, "mege: %d images for %d splits", c->data.n,
                              c->n_folds);
    }
    return rc;
}

/* ---- the configuration a journal belongs to -------------------------------- */

static int build_config(ev_ctx *c)
{
    sbuf b = {0};
    uint8_t *bytes = NULL;
    size_t size = 0;
    const lp_explain_options *o = &c->a.o;
    int rc = lp_read_file(c->a.model, (size_t)1 << 40, &bytes, &size);
    if (rc != LP_OK)
        return rc;
    sb_printf(&b, "model-bytes=%zu model-crc32c=%08x data=", size, lp_crc32c(0, bytes, size));
    lp_free(bytes);
    sb_hex(&b, c->a.data);
    sb_printf(&b, " labels=");
    sb_hex(&b, c->a.labels ? c->a.labels : "");
    sb_printf(&b, " data-crc32c=%08x", ev_data_fingerprint(&c->data));
    sb_printf(&b, " images=%d methods=%s metrics=%s target=%s", c->data.n, c->a.methods,
              c->a.metrics, c->a.target);
    sb_printf(&b, " protocol=%d steps=%d rows=%d sub=%d,%d score=%d", (int)c->causal.protocol,
              c->causal.steps, c->causal.row_steps, (int)c->causal.deletion_substrate,
              (int)c->causal.insertion_substrate, (int)c->causal.score);
    sb_printf(&b, " mufidelity=%d,%d,%a stability=%d,%a,%d,%a", c->a.mu_samples, c->a.mu_grid,
              (double)c->a.mu_subset, c->a.stab_samples, (double)c->a.stab_radius,
              c->a.sens_samples, (double)c->a.sens_radius);
    sb_printf(&b, " models=");
    sb_hex(&b, c->a.models ? c->a.models : "");
    sb_printf(&b, " score=%d layer=%s batch=%d seed=%llu steps=%d quad=%d baseline=%d "
              "blur=%a samples=%d noise=%a patch=%d stride=%d occl=%a masks=%d grid=%d p=%a "
              "designs=%d pert=%d est=%d lime=%d norelu=%d lrp=%a seg=%d,%a,%a,%a",
              (int)o->score, o->layer ? o->layer : "-", o->batch, (unsigned long long)o->seed,
              o->steps, (int)o->quadrature, (int)o->baseline, (double)o->blur_sigma, o->samples,
              (double)o->noise, o->patch, o->stride, (double)o->occlusion_value, o->masks,
              o->grid, (double)o->keep_prob, o->designs, (int)o->perturbation,
              (int)o->estimator, o->lime_samples, o->no_relu, (double)o->lrp_eps,
              (int)o->segments, (double)o->qs_kernel, (double)o->qs_max_dist,
              (double)o->qs_ratio);
    if (b.failed) {
        free(b.s);
        return LP_ENOMEM;
    }
    c->config = b.s;
    return LP_OK;
}

/* ---- one image ------------------------------------------------------------- */

static void softmax_top(const float *z, int k, int *top, float *prob)
{
    int t = 0;
    double sum = 0;
    for (int i = 1; i < k; i++)
        if (z[i] > z[t])
            t = i;
    for (int i = 0; i < k; i++)
        sum += exp((double)z[i] - z[t]);
    *top = t;
    *prob = (float)(1.0 / sum);
}

/* The target of an image: its prediction, its label or a fixed class. */
static int pick_target(const ev_ctx *c, int predicted, int label, int *target, char *err,
                       size_t cap)
{
    if (!strcmp(c->a.target, "top")) {
        *target = predicted;
    } else if (!strcmp(c->a.target, "label")) {
        if (label < 0) {
            snprintf(err, cap, "no label for --target label");
            return -1;
        }
        *target = label;
    } else {
        *target = atoi(c->a.target);
    }
    return 0;
}

/* A method's map of x for class target, as [H, W] (channel mean for the
 * per-channel `gradient`, as Xplique averages channels). full receives
 * the method's own output. */
static int method_map(lp_model *m, const lp_method *me, const lp_explain_options *o,
                      const float *x, int target, float *full, float *map, long *passes)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t hw = (size_t)in->in_h * in->in_w;
    lp_explain_report rep;
    int rc;
    memset(&rep, 0, sizeof rep);
    rc = me->run(m, x, 1, &target, o, full, &rep);
    if (passes)
        *passes += rep.forwards + rep.backwards;
    if (rc != LP_OK)
        return rc;
    if (me->flags & LP_METHOD_PER_CHANNEL) {
        for (size_t i = 0; i < hw; i++) {
            double s = 0;
            for (int ch = 0; ch < in->in_c; ch++)
                s += full[ch * hw + i];
            map[i] = (float)(s / in->in_c);
        }
    } else {
        memcpy(map, full, hw * sizeof *map);
    }
    return LP_OK;
}

typedef struct {
    double v[EV_MAX_VALUES];
    float *curve[EV_MAX_VALUES];
    int curve_len[EV_MAX_VALUES];
} method_values;

static int run_randomization(ev_ctx *c, ev_worker *w, const lp_method *me, const float *x,
                             int target, const float *map, float *full, float *rmap,
                             method_values *mv)
{
    const lp_model_info *in = c->in;
    int hw = in->in_h * in->in_w, rc = LP_OK;
    for (int s = 0; s < c->n_stages && rc == LP_OK; s++) {
        double rho = 0, ssim = 0;
        rc = method_map(w->stage_model[s], me, &c->a.o, x, target, full, rmap, NULL);
        if (rc == LP_OK)
            rc = lp_map_spearman(map, rmap, hw, 1, &rho);
        if (rc == LP_OK)
            rc = lp_map_ssim(map, rmap, in->in_h, in->in_w, &ssim);
        mv->v[c->v_rand_stage0 + s] = rho;
        mv->v[c->v_rand] = rho;
        mv->v[c->v_rand_ssim] = ssim;
    }
    return rc;
}

/* MeGe pairs of image i: the k - 1 model pairs that include the model
 * trained without i's split; curve holds (distance, same prediction) x
 * pairs, distance NaN when dropped (no model right, or a NaN). */
static int run_mege(ev_ctx *c, ev_worker *w, const lp_method *me, int i, const float *x,
                    int label, float *full, method_values *mv)
{
    const lp_model_info *in = c->in;
    int k = c->n_folds, split = i / c->fold_size, hw = in->in_h * in->in_w, rc = LP_OK;
    int pred[MAX_MODELS], n = 0;
    float *maps = NULL, *logits = lp_alloc((size_t)in->out_dim, sizeof(float));
    float *curve = lp_alloc((size_t)2 * k, sizeof(float));
    if (logits == NULL || curve == NULL || split >= k) {
        lp_free(logits);
        lp_free(curve);
        return (split >= k) ? LP_OK : LP_ENOMEM; /* the remainder: not in any split */
    }
    maps = lp_alloc((size_t)k * hw, sizeof(float));
    rc = maps ? LP_OK : LP_ENOMEM;
    for (int j = 0; j < k && rc == LP_OK; j++) {
        float p;
        rc = lp_model_forward(w->fold_model[j], x, 1, logits, 0);
        if (rc == LP_OK) {
            softmax_top(logits, in->out_dim, &pred[j], &p);
            rc = method_map(w->fold_model[j], me, &c->a.o, x, label >= 0 ? label : pred[j],
                            full, maps + (size_t)j * hw, NULL);
        }
    }
    for (int j = 0; j < k && rc == LP_OK; j++) {
        double rho = 0;
        if (j == split)
            continue;
        rc = lp_map_spearman(maps + (size_t)split * hw, maps + (size_t)j * hw, hw, 0, &rho);
        int right = pred[split] == label || pred[j] == label;
        curve[2 * n] = right ? (float)sqrt(1.0 - fabs(rho)) : NAN;
        curve[2 * n + 1] = pred[split] == pred[j];
        n++;
    }
    if (rc == LP_OK) {
        mv->curve[c->v_reco] = curve;
        mv->curve_len[c->v_reco] = 2 * n;
        double s = 0;
        int m = 0;
        for (int j = 0; j < n; j++)
            if (curve[2 * j + 1] > 0.5f && !isnan(curve[2 * j])) {
                s += curve[2 * j];
                m++;
            }
        mv->v[c->v_mege] = m ? s / m : NAN;
        mv->v[c->v_reco] = NAN;
    } else {
        lp_free(curve);
    }
    lp_free(maps);
    lp_free(logits);
    return rc;
}

static int run_metrics(ev_ctx *c, ev_worker *w, const lp_method *me, int i, const float *x,
                       int target, int label, method_values *mv)
{
    const float *map = w->map;
    float *full = w->full, *tmp = w->tmp;
    int rc = LP_OK, n = lp_causal_steps(&c->causal, c->in->in_h, c->in->in_w);
    for (int v = 0; v < EV_MAX_VALUES; v++) {
        mv->v[v] = NAN;
        mv->curve[v] = NULL;
        mv->curve_len[v] = 0;
    }
    for (int ins = 0; ins < 2 && rc == LP_OK; ins++) {
        int v = ins ? c->v_insertion : c->v_deletion;
        if (v < 0)
            continue;
        mv->curve[v] = lp_alloc((size_t)n + 1, sizeof(float));
        mv->curve_len[v] = n + 1;
        rc = mv->curve[v] ? lp_metric_causal(w->m, x, target, map, ins, &c->causal,
                                             mv->curve[v], &mv->v[v], NULL)
                          : LP_ENOMEM;
    }
    if (rc == LP_OK && c->v_mufid >= 0)
        rc = lp_metric_mufidelity(w->m, x, target, map, c->mu_keep, c->a.mu_samples,
                                  c->a.mu_grid, c->a.o.batch, &mv->v[c->v_mufid],
                                  &mv->v[c->v_mufid_p], NULL);
    if (rc == LP_OK && c->v_stab >= 0)
        rc = lp_metric_stability(w->m, me, &c->a.o, x, target, full, c->stab_noise,
                                 c->a.stab_samples, 0, &mv->v[c->v_stab], NULL);
    if (rc == LP_OK && c->v_sens >= 0)
        rc = lp_metric_stability(w->m, me, &c->a.o, x, target, full, c->sens_noise,
                                 c->a.sens_samples, 1, &mv->v[c->v_sens], NULL);
    if (rc == LP_OK && c->v_rand >= 0)
        rc = run_randomization(c, w, me, x, target, map, full, tmp, mv);
    if (rc == LP_OK && c->v_mege >= 0)
        rc = run_mege(c, w, me, i, x, label, full, mv);
    return rc;
}

static void put_value(sbuf *b, double v, const float *curve, int len)
{
    sb_printf(b, "\t%a", v);
    for (int k = 0; k < len; k++)
        sb_printf(b, "%c%a", k ? ',' : ':', (double)curve[k]);
}

/* Evaluate image i into its journal line (without the CRC). */
static int evaluate_image(ev_ctx *c, ev_worker *w, int i, sbuf *line, char *warning,
                          size_t warning_cap)
{
    float *x = w->x;
    char name[256], err[200] = "";
    int label = -1, predicted = -1, target = -1, ok = 1, rc;
    float prob = 0, *logits = lp_alloc((size_t)c->in->out_dim, sizeof(float));
    double seconds[EV_MAX_METHODS] = {0};
    if (logits == NULL)
        return LP_ENOMEM;
    rc = ev_data_load(&c->data, i, w->m, x, name, sizeof name, &label);
    if (rc != LP_OK) {
        if (rc == LP_ENOMEM) {
            lp_free(logits);
            return rc;
        }
        snprintf(err, sizeof err, "%s", lp_last_error());
        ok = 0;
        rc = LP_OK;
    }
    if (ok && (rc = lp_model_forward(w->m, x, 1, logits, 0)) == LP_OK) {
        softmax_top(logits, c->in->out_dim, &predicted, &prob);
        if (pick_target(c, predicted, label, &target, err, sizeof err) < 0)
            ok = 0;
    }
    lp_free(logits);
    if (rc != LP_OK)
        return rc;
    if (!ok)
        snprintf(warning, warning_cap, "skipping %s: %s", name, err);
    sb_printf(line, "%d\t%d\t%d\t%d\t%a\t%d\t", i, ok, label, predicted, (double)prob, target);
    sb_hex(line, name);
    sb_printf(line, "\t");
    sb_hex(line, err);
    for (int mi = 0; mi < c->n_methods && ok && rc == LP_OK; mi++) {
        method_values mv = {{0}, {NULL}, {0}}; /* freed below even when method_map fails */
        double t0 = now_s();
        rc = method_map(w->m, c->method[mi], &c->a.o, x, target, w->full, w->map, NULL);
        if (rc == LP_OK && c->a.save_maps) {
            char path[4400];
            int64_t shape[2] = {c->in->in_h, c->in->in_w};
            snprintf(path, sizeof path, "%s/%d.%s.npy", c->a.save_maps, i, c->method[mi]->name);
            rc = lp_npy_save(path, LP_DTYPE_F32, w->map, 2, shape);
        }
        if (rc == LP_OK)
            rc = run_metrics(c, w, c->method[mi], i, x, target, label, &mv);
        seconds[mi] = now_s() - t0;
        for (int v = 0; v < c->n_values && rc == LP_OK; v++)
            put_value(line, mv.v[v], mv.curve[v], mv.curve_len[v]);
        for (int v = 0; v < EV_MAX_VALUES; v++)
            lp_free(mv.curve[v]);
        if (rc != LP_OK)
            snprintf(err, sizeof err, "%s: %s", c->method[mi]->name, lp_last_error());
    }
    if (rc != LP_OK)
        return lp_set_error(rc, "%s: %s", name, err);
    sb_printf(line, "\tT");
    for (int mi = 0; mi < c->n_methods; mi++)
        sb_printf(line, "%c%.6f", mi ? ',' : ':', ok ? seconds[mi] : 0.0);
    return line->failed ? LP_ENOMEM : LP_OK;
}

/* ---- the journal ------------------------------------------------------------ */

static const char JOURNAL_MAGIC[] = "loupe-evaluate-journal 1";

static void finish_line(sbuf *b)
{
    uint32_t crc = lp_crc32c(0, b->s, b->len);
    sb_printf(b, "\t%08x\n", crc);
}

/* A journal line is good when it ends in "\t<crc>\n" matching its text. */
static int line_ok(const char *s, size_t len)
{
    char hex[9];
    if (len < 11 || s[len - 1] != '\n' || s[len - 10] != '\t')
        return 0;
    memcpy(hex, s + len - 9, 8);
    hex[8] = '\0';
    return strtoul(hex, NULL, 16) == lp_crc32c(0, s, len - 10) &&
           strspn(hex, "0123456789abcdef") == 8;
}

static int append_journal(ev_ctx *c, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = write(c->fd, s, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return lp_set_error(LP_EIO, "%s: write failed: %s", c->journal_path,
                                strerror(errno));
        s += w;
        len -= (size_t)w;
    }
    if (fsync(c->fd) != 0 && errno != EINVAL)
        return lp_set_error(LP_EIO, "%s: fsync failed: %s", c->journal_path, strerror(errno));
    return LP_OK;
}

/* "the run's settings differ" -> name the first setting that differs */
static int config_mismatch(const ev_ctx *c, const char *have)
{
    const char *a = c->config, *b = have;
    while (*a && *b) {
        size_t la = strcspn(a, " "), lb = strcspn(b, " ");
        if (la != lb || memcmp(a, b, la)) {
            size_t key = strcspn(a, "=");
            return cli_error("evaluate: %s was written with different settings (%.*s "
                             "differs); use another --out or drop --resume",
                             c->journal_path, (int)(key < la ? key : la), a);
        }
        a += la + (a[la] == ' ');
        b += lb + (b[lb] == ' ');
    }
    if (*a || *b)
        return cli_error("evaluate: %s was written with different settings; use another "
                         "--out or drop --resume", c->journal_path);
    return CLI_OK;
}

/* Read the journal back: keep its good lines, cut a torn tail. */
static int load_journal(ev_ctx *c)
{
    uint8_t *data = NULL;
    size_t size = 0, at, good_end;
    int rc = lp_read_file(c->journal_path, (size_t)1 << 34, &data, &size);
    if (rc != LP_OK)
        return rc;
    const char *t = (const char *)data;
    size_t head = strlen(JOURNAL_MAGIC);
    const char *nl = memchr(t, '\n', size);
    if (size < head + 1 || memcmp(t, JOURNAL_MAGIC, head) || t[head] != '\t' || nl == NULL) {
        lp_free(data);
        return cli_error("evaluate: %s is not a loupe evaluate journal", c->journal_path);
    }
    {
        size_t clen = (size_t)(nl - t) - head - 1;
        char *cfg = malloc(clen + 1);
        if (cfg == NULL) {
            lp_free(data);
            return cli_error("out of memory");
        }
        memcpy(cfg, t + head + 1, clen);
        cfg[clen] = '\0';
        rc = config_mismatch(c, cfg);
        free(cfg);
        if (rc != CLI_OK) {
            lp_free(data);
            return rc;
        }
    }
    at = good_end = (size_t)(nl - t) + 1;
    while (at < size) {
        const char *e = memchr(t + at, '\n', size - at);
        size_t len = e ? (size_t)(e - (t + at)) + 1 : size - at;
        int idx = atoi(t + at);
        if (!line_ok(t + at, len) || idx < 0 || idx >= c->data.n)
            break;
        if (c->lines[idx] == NULL) {
            c->lines[idx] = malloc(len + 1);
            if (c->lines[idx] == NULL)
                break;
            memcpy(c->lines[idx], t + at, len);
            c->lines[idx][len] = '\0';
            c->done_before++;
        }
        at += len;
        good_end = at;
    }
    lp_free(data);
    if (good_end < size && truncate(c->journal_path, (off_t)good_end) != 0)
        return cli_error("evaluate: %s: cannot cut its torn last line: %s", c->journal_path,
                         strerror(errno));
    return CLI_OK;
}

static int open_journal(ev_ctx *c)
{
    const char *base = c->a.out ? c->a.out : c->a.csv ? c->a.csv : c->a.report;
    c->fd = -1;
    if (base == NULL)
        return CLI_OK;
    snprintf(c->journal_path, sizeof c->journal_path, "%s.journal", base);
    if (c->a.resume && access(c->journal_path, F_OK) == 0) {
        int rc = load_journal(c);
        if (rc != CLI_OK)
            return rc;
        c->fd = open(c->journal_path, O_WRONLY | O_APPEND);
    } else {
        sbuf head = {0};
        c->fd = open(c->journal_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (c->fd >= 0) {
            sb_printf(&head, "%s\t%s\n", JOURNAL_MAGIC, c->config);
            int rc = head.failed ? LP_ENOMEM : append_journal(c, head.s, head.len);
            free(head.s);
            if (rc != LP_OK)
                return cli_error("%s", lp_last_error());
        }
    }
    if (c->fd < 0)
        return cli_error("evaluate: %s: cannot write: %s", c->journal_path, strerror(errno));
    return CLI_OK;
}

/* ---- progress ---------------------------------------------------------------- */

static void progress(const ev_ctx *c, int done, int total)
{
    double s = now_s() - ((double)c->start.tv_sec + 1e-9 * (double)c->start.tv_nsec);
    int now = done - c->done_before, width = 30, fill = total ? width * done / total : 0;
    double rate = s > 0 ? now / s : 0, left = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\revaluate [");
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '=' : (i == fill ? '>' : ' '), stderr);
    fprintf(stderr, "] %d/%d images  %.2f img/s  %d:%02d left ", done, total, rate,
            (int)left / 60, (int)left % 60);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- from journal lines to an ev_run --------------------------------------- */

static int unhex(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (!strcmp(s, "-")) {
        out[0] = '\0';
        return 0;
    }
    while (s[0] && s[1] && n + 1 < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            return -1;
        out[n++] = (char)v;
        s += 2;
    }
    out[n] = '\0';
    return 0;
}

/* Fields: idx ok label pred prob target name err values... "T:..." crc */
static int parse_line(const ev_run *r, char *line, int idx, double *seconds)
{
    ev_image *im = &r->images[idx];
    char *save = NULL, *f[8];
    for (int k = 0; k < 8; k++)
        if ((f[k] = strtok_r(k ? NULL : line, "\t", &save)) == NULL)
            return -1;
    im->ok = atoi(f[1]);
    im->label = atoi(f[2]);
    im->predicted = atoi(f[3]);
    im->prob = (float)strtod(f[4], NULL);
    im->target = atoi(f[5]);
    unhex(f[6], im->name, sizeof im->name);
    unhex(f[7], im->error, sizeof im->error);
    for (int mi = 0; im->ok && mi < r->n_methods; mi++)
        for (int v = 0; v < r->n_values; v++) {
            char *tok = strtok_r(NULL, "\t", &save), *colon;
            ev_value *ev = ev_at(r, idx, mi, v);
            if (tok == NULL)
                return -1;
            ev->value = strtod(tok, &colon);
            if (*colon == ':') {
                int n = 1;
                for (char *p = colon + 1; *p; p++)
                    n += *p == ',';
                ev->curve = lp_alloc((size_t)n, sizeof(float));
                if (ev->curve == NULL)
                    return -1;
                char *p = colon + 1;
                for (int k = 0; k < n; k++) {
                    ev->curve[k] = (float)strtod(p, &p);
                    if (*p == ',')
                        p++;
                }
                ev->curve_len = n;
            }
        }
    {
        char *tok = strtok_r(NULL, "\t", &save);
        if (tok && tok[0] == 'T' && tok[1] == ':') {
            char *p = tok + 2;
            for (int mi = 0; mi < r->n_methods; mi++) {
                seconds[mi] += strtod(p, &p);
                if (*p == ',')
                    p++;
            }
        }
    }
    return 0;
}

/* Student's t quantile t_{0.975, df}: a table to 30, then the
 * Cornish-Fisher expansion around the normal quantile. */
static double t975(int df)
{
    static const double tab[31] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                   2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                   2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                   2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    double z = 1.959964, v = df;
    if (df <= 30)
        return tab[df < 1 ? 1 : df];
    return z + (z * z * z + z) / (4 * v) +
           (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * v * v);
}

static void summarise(ev_run *r, const ev_ctx *c)
{
    for (int mi = 0; mi < r->n_methods; mi++)
        for (int v = 0; v < r->n_values; v++) {
            ev_summary *s = &r->summary[mi * r->n_values + v];
            double sum = 0, sq = 0;
            int n = 0;
            for (int i = 0; i < r->n_images; i++) {
                double x = ev_at(r, i, mi, v)->value;
                if (r->images[i].ok && isfinite(x)) {
                    sum += x;
                    n++;
                }
            }
            s->n = n;
            s->mean = n ? sum / n : NAN;
            for (int i = 0; i < r->n_images; i++) {
                double x = ev_at(r, i, mi, v)->value;
                if (r->images[i].ok && isfinite(x))
                    sq += (x - s->mean) * (x - s->mean);
            }
            s->sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
            double half = n > 1 ? t975(n - 1) * s->sd / sqrt((double)n) : 0;
            s->ci_lo = s->mean - half;
            s->ci_hi = s->mean + half;
        }
    /* MeGe and ReCo are numbers of the whole data set (Fel et al. 2020) */
    if (c->v_mege >= 0)
        for (int mi = 0; mi < r->n_methods; mi++) {
            double *eq = malloc(sizeof(double) * (size_t)(r->n_images * MAX_MODELS + 1));
            double *ne = malloc(sizeof(double) * (size_t)(r->n_images * MAX_MODELS + 1));
            int neq = 0, nne = 0;
            double mege = NAN, reco = NAN;
            for (int i = 0; eq && ne && i < r->n_images; i++) {
                const ev_value *p = ev_at(r, i, mi, c->v_reco);
                for (int k = 0; r->images[i].ok && k + 1 < p->curve_len; k += 2) {
                    if (isnan(p->curve[k]))
                        continue;
                    if (p->curve[k + 1] > 0.5f)
                        eq[neq++] = p->curve[k];
                    else
                        ne[nne++] = p->curve[k];
                }
            }
            if (eq && ne)
                lp_mege_reco(eq, neq, ne, nne, &mege, &reco);
            free(eq);
            free(ne);
            ev_summary *sm = &r->summary[mi * r->n_values + c->v_mege];
            ev_summary *sr = &r->summary[mi * r->n_values + c->v_reco];
            sm->n = neq;
            sm->mean = sm->ci_lo = sm->ci_hi = mege;
            sr->n = neq + nne;
            sr->mean = sr->ci_lo = sr->ci_hi = reco;
            sm->sd = sr->sd = 0;
        }
}

static int build_run(ev_ctx *c, ev_run *r, sbuf *protocol)
{
    int n = c->data.n;
    memset(r, 0, sizeof *r);
    r->model_path = c->a.model;
    r->data_path = c->a.data;
    r->protocol = protocol->s ? protocol->s : "";
    r->info = c->in;
    r->model = c->m;
    r->n_images = n;
    r->n_methods = c->n_methods;
    r->n_values = c->n_values;
    for (int mi = 0; mi < c->n_methods; mi++)
        r->method[mi] = c->method[mi]->name;
    for (int v = 0; v < c->n_values; v++) {
        r->value_name[v] = c->value_name[v];
        r->higher_is_better[v] = c->higher[v];
    }
    r->images = calloc((size_t)n, sizeof *r->images);
    r->values = calloc((size_t)n * c->n_methods * (c->n_values ? c->n_values : 1),
                       sizeof *r->values);
    r->summary = calloc((size_t)c->n_methods * (c->n_values ? c->n_values : 1),
                        sizeof *r->summary);
    r->method_seconds = calloc((size_t)c->n_methods, sizeof(double));
    if (!r->images || !r->values || !r->summary || !r->method_seconds)
        return LP_ENOMEM;
    for (long k = 0; k < (long)n * c->n_methods * c->n_values; k++)
        r->values[k].value = NAN;
    for (int i = 0; i < n; i++) {
        char *copy = strdup(c->lines[i]);
        if (copy == NULL)
            return LP_ENOMEM;
        int bad = parse_line(r, copy, i, r->method_seconds);
        free(copy);
        if (bad)
            return lp_set_error(LP_EFORMAT, "%s: image %d: unreadable record",
                                c->journal_path, i);
    }
    summarise(r, c);
    return LP_OK;
}

static void free_run(ev_run *r)
{
    if (r->values)
        for (long k = 0; k < (long)r->n_images * r->n_methods * r->n_values; k++)
            lp_free(r->values[k].curve);
    for (int s = 0; s < r->n_shown; s++) {
        lp_free(r->shown_input ? r->shown_input[s] : NULL);
        for (int mi = 0; r->shown_map && mi < r->n_methods; mi++)
            lp_free(r->shown_map[s * r->n_methods + mi]);
    }
    free(r->shown);
    free(r->shown_input);
    free(r->shown_map);
    free(r->images);
    free(r->values);
    free(r->summary);
    free(r->method_seconds);
}

/* ---- outputs ----------------------------------------------------------------- */

static void json_string(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            sb_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            sb_printf(b, "\\u%04x", ch);
        else
            sb_printf(b, "%c", ch);
    }
    sb_printf(b, "\"");
}

static void json_number(sbuf *b, double v)
{
    if (isfinite(v))
        sb_printf(b, "%.9g", v);
    else
        sb_printf(b, "null");
}

static int write_json(const ev_run *r, const char *path)
{
    sbuf b = {0};
    int first = 1, rc;
    sb_printf(&b, "{\n  \"loupe_evaluate\": 1,\n  \"model\": ");
    json_string(&b, r->model_path);
    sb_printf(&b, ",\n  \"data\": ");
    json_string(&b, r->data_path);
    sb_printf(&b, ",\n  \"protocol\": [");
    {
        const char *p = r->protocol;
        int k = 0;
        while (*p) {
            size_t n = strcspn(p, "\n");
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(n < 1023 ? n : 1023), p);
            sb_printf(&b, "%s\n    ", k++ ? "," : "");
            json_string(&b, line);
            p += n + (p[n] == '\n');
        }
    }
    sb_printf(&b, "\n  ],\n  \"images\": [");
    for (int i = 0; i < r->n_images; i++) {
        const ev_image *im = &r->images[i];
        sb_printf(&b, "%s\n    {\"index\": %d, \"name\": ", i ? "," : "", i);
        json_string(&b, im->name);
        sb_printf(&b, ", \"ok\": %s, \"label\": %d", im->ok ? "true" : "false", im->label);
        if (im->ok) {
            sb_printf(&b, ", \"predicted\": %d, \"prob\": ", im->predicted);
            json_number(&b, im->prob);
            sb_printf(&b, ", \"target\": %d}", im->target);
        } else {
            sb_printf(&b, ", \"error\": ");
            json_string(&b, im->error);
            sb_printf(&b, "}");
        }
    }
    sb_printf(&b, "\n  ],\n  \"rows\": [");
    for (int i = 0; i < r->n_images; i++)
        for (int mi = 0; r->images[i].ok && mi < r->n_methods; mi++)
            for (int v = 0; v < r->n_values; v++) {
                const ev_value *ev = ev_at(r, i, mi, v);
                sb_printf(&b, "%s\n    {\"image\": %d, \"method\": \"%s\", \"metric\": ",
                          first ? "" : ",", i, r->method[mi]);
                json_string(&b, r->value_name[v]);
                sb_printf(&b, ", \"value\": ");
                json_number(&b, ev->value);
                if (ev->curve_len && strcmp(r->value_name[v], "reco")) {
                    sb_printf(&b, ", \"curve\": [");
                    for (int k = 0; k < ev->curve_len; k++) {
                        sb_printf(&b, "%s", k ? ", " : "");
                        json_number(&b, ev->curve[k]);
                    }
                    sb_printf(&b, "]");
                }
                sb_printf(&b, "}");
                first = 0;
            }
    sb_printf(&b, "\n  ],\n  \"summary\": [");
    first = 1;
    for (int mi = 0; mi < r->n_methods; mi++)
        for (int v = 0; v < r->n_values; v++) {
            const ev_summary *s = &r->summary[mi * r->n_values + v];
            sb_printf(&b, "%s\n    {\"method\": \"%s\", \"metric\": ", first ? "" : ",",
                      r->method[mi]);
            json_string(&b, r->value_name[v]);
            sb_printf(&b, ", \"n\": %d, \"mean\": ", s->n);
            json_number(&b, s->mean);
            sb_printf(&b, ", \"ci95\": [");
            json_number(&b, s->ci_lo);
            sb_printf(&b, ", ");
            json_number(&b, s->ci_hi);
            sb_printf(&b, "], \"higher_is_better\": %s}",
                      r->higher_is_better[v] == 1 ? "true"
                      : r->higher_is_better[v] == 0 ? "false" : "null");
            first = 0;
        }
    {
        int skipped = 0;
        for (int i = 0; i < r->n_images; i++)
            skipped += !r->images[i].ok;
        sb_printf(&b, "\n  ],\n  \"skipped\": %d\n}\n", skipped);
    }
    rc = b.failed ? LP_ENOMEM : lp_write_file_atomic(path, b.s, b.len);
    free(b.s);
    return rc;
}

static void csv_field(sbuf *b, const char *s)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "\"");
    for (; *s; s++)
        sb_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    sb_printf(b, "\"");
}

static int write_csv(const ev_run *r, const char *path)
{
    sbuf b = {0};
    int rc;
    sb_printf(&b, "image,name,label,predicted,target,method,metric,value\n");
    for (int i = 0; i < r->n_images; i++)
        for (int mi = 0; r->images[i].ok && mi < r->n_methods; mi++)
            for (int v = 0; v < r->n_values; v++) {
                const ev_image *im = &r->images[i];
                double x = ev_at(r, i, mi, v)->value;
                sb_printf(&b, "%d,", i);
                csv_field(&b, im->name);
                sb_printf(&b, ",%d,%d,%d,%s,%s,", im->label, im->predicted, im->target,
                          r->method[mi], r->value_name[v]);
                if (isfinite(x))
                    sb_printf(&b, "%.9g", x);
                sb_printf(&b, "\n");
            }
    rc = b.failed ? LP_ENOMEM : lp_write_file_atomic(path, b.s, b.len);
    free(b.s);
    return rc;
}

static void print_summary(const ev_run *r)
{
    int ok = 0;
    for (int i = 0; i < r->n_images; i++)
        ok += r->images[i].ok;
    printf("%d image(s) evaluated, %d skipped\n", ok, r->n_images - ok);
    printf("%-22s %-26s %6s %11s   %s\n", "method", "metric", "n", "mean", "95% CI");
    for (int v = 0; v < r->n_values; v++)
        for (int mi = 0; mi < r->n_methods; mi++) {
            const ev_summary *s = &r->summary[mi * r->n_values + v];
            printf("%-22s %-26s %6d %#11.4g   [%#10.4g, %#10.4g]\n", r->method[mi],
                   r->value_name[v], s->n, s->mean, s->ci_lo, s->ci_hi);
        }
    printf("time per method (all images, with its metrics):");
    for (int mi = 0; mi < r->n_methods; mi++)
        printf(" %s %.1f s%s", r->method[mi], r->method_seconds[mi],
               mi + 1 < r->n_methods ? "," : "\n");
}

/* The maps of the pictured images, recomputed (every method is
 * deterministic given its seed, so they are the maps that were scored). */
static int shown_maps(ev_ctx *c, ev_run *r)
{
    size_t per = (size_t)c->in->in_c * c->in->in_h * c->in->in_w;
    size_t hw = (size_t)c->in->in_h * c->in->in_w;
    float *full = lp_alloc(per, sizeof(float));
    int rc = full ? LP_OK : LP_ENOMEM, want = c->a.report_images;
    r->shown = calloc((size_t)want + 1, sizeof *r->shown);
    r->shown_input = calloc((size_t)want + 1, sizeof *r->shown_input);
    r->shown_map = calloc((size_t)(want + 1) * c->n_methods, sizeof *r->shown_map);
    if (!r->shown || !r->shown_input || !r->shown_map)
        rc = LP_ENOMEM;
    for (int i = 0; i < r->n_images && r->n_shown < want && rc == LP_OK; i++) {
        char name[256];
        int label, s = r->n_shown;
        if (!r->images[i].ok)
            continue;
        r->shown_input[s] = lp_alloc(per, sizeof(float));
        if (r->shown_input[s] == NULL) {
            rc = LP_ENOMEM;
            break;
        }
        r->shown[s] = i;
        r->n_shown++;
        rc = ev_data_load(&c->data, i, c->m, r->shown_input[s], name, sizeof name, &label);
        for (int mi = 0; mi < c->n_methods && rc == LP_OK; mi++) {
            float *map = lp_alloc(hw, sizeof(float));
            r->shown_map[s * c->n_methods + mi] = map;
            rc = map ? method_map(c->m, c->method[mi], &c->a.o, r->shown_input[s],
                                  r->images[i].target, full, map, NULL)
                     : LP_ENOMEM;
        }
    }
    lp_free(full);
    return rc;
}

static int write_outputs(ev_ctx *c, sbuf *protocol)
{
    ev_run r;
    int rc = build_run(c, &r, protocol);
    if (rc == LP_OK && c->a.out)
        rc = write_json(&r, c->a.out);
    if (rc == LP_OK && c->a.csv)
        rc = write_csv(&r, c->a.csv);
    if (rc == LP_OK && c->a.report) {
        rc = shown_maps(c, &r);
        if (rc == LP_OK)
            rc = ev_write_report(c->a.report, &r);
    }
    if (rc == LP_OK)
        print_summary(&r);
    free_run(&r);
    return rc == LP_OK ? CLI_OK : cli_error("%s", lp_last_error());
}

/* ---- the command ------------------------------------------------------------------ */

static int check_methods(const ev_ctx *c)
{
    for (int mi = 0; mi < c->n_methods; mi++)
        if ((c->method[mi]->flags & LP_METHOD_VIT_ONLY) && strcmp(c->in->arch, "vit"))
            return cli_error("evaluate: %s needs a Vision Transformer; %s is a %s",
                             c->method[mi]->name, c->a.model, c->in->arch);
    if (strcmp(c->a.target, "top") && strcmp(c->a.target, "label")) {
        int k;
        if (cli_int("--target", c->a.target, 0, c->in->out_dim - 1, &k) != CLI_OK)
            return CLI_BAD_INPUT;
    }
    return CLI_OK;
}

/* ---- the workers ------------------------------------------------------------- */

/* Inputs of at most this many pixels are evaluated an image per thread
 * under --parallel auto. Measured on 2 cores (docs/EVALUATE.md): CIFAR-10
 * on ResNet-20 runs 1.37x faster so than with split kernels; ResNet-50 at
 * 224x224 only 1.13x, for twice the memory (a copy of the weights and of
 * every tape per thread: 5 GB each for integrated gradients), so large
 * inputs split the kernels instead. */
#define PAR_IMAGES_MAX_PIXELS (96 * 96)

static int worker_buffers(const ev_ctx *c, ev_worker *w)
{
    size_t per = (size_t)c->in->in_c * c->in->in_h * c->in->in_w;
    size_t hw = (size_t)c->in->in_h * c->in->in_w;
    w->x = lp_alloc(per, sizeof(float));
    w->full = lp_alloc(per, sizeof(float));
    w->map = lp_alloc(hw, sizeof(float));
    w->tmp = lp_alloc(hw, sizeof(float));
    return (w->x && w->full && w->map && w->tmp) ? LP_OK : LP_ENOMEM;
}

/* Worker k > 0: the same models as the run's, loaded again. */
static int worker_models(const ev_ctx *c, ev_worker *w)
{
    const char *chosen[MAX_STAGES];
    char list[4096];
    int rc = lp_model_load(&w->m, c->a.model), k = 0;
    w->owns_models = 1;
    for (int s = 0; s < c->n_stages && rc == LP_OK; s++) {
        chosen[s] = c->stage_name[s];
        rc = lp_model_randomized(&w->stage_model[s], c->lpw, chosen, s + 1,
                                 c->a.o.seed + 12345);
    }
    if (c->n_folds > 0)
        snprintf(list, sizeof list, "%s", c->a.models);
    for (char *t = c->n_folds > 0 ? strtok(list, ",") : NULL; t && rc == LP_OK && k < c->n_folds;
         t = strtok(NULL, ","))
        rc = lp_model_load(&w->fold_model[k++], t);
    return rc;
}

static void free_workers(ev_ctx *c)
{
    for (int k = 0; c->workers && k < c->n_workers; k++) {
        ev_worker *w = &c->workers[k];
        lp_free(w->x);
        lp_free(w->full);
        lp_free(w->map);
        lp_free(w->tmp);
        if (!w->owns_models)
            continue;
        lp_model_free(w->m);
        for (int s = 0; s < MAX_STAGES; s++)
            lp_model_free(w->stage_model[s]);
        for (int j = 0; j < MAX_MODELS; j++)
            lp_model_free(w->fold_model[j]);
    }
    free(c->workers);
    c->workers = NULL;
}

/* One worker, or one per thread when images are shared out. */
static int setup_workers(ev_ctx *c)
{
    int threads = lp_get_num_threads(), todo = c->data.n - c->done_before, rc = LP_OK;
    int per_image = c->a.parallel == PAR_IMAGES ||
                    (c->a.parallel == PAR_AUTO &&
                     c->in->in_h * c->in->in_w <= PAR_IMAGES_MAX_PIXELS);
    c->n_workers = per_image && threads > 1 ? (threads < todo ? threads : todo) : 1;
    if (c->n_workers < 1)
        c->n_workers = 1;
    c->workers = calloc((size_t)c->n_workers, sizeof *c->workers);
    if (c->workers == NULL) {
        c->n_workers = 0;
        return lp_set_error(LP_ENOMEM, "out of memory");
    }
    c->workers[0].m = c->m;
    memcpy(c->workers[0].stage_model, c->stage_model, sizeof c->stage_model);
    memcpy(c->workers[0].fold_model, c->fold_model, sizeof c->fold_model);
    for (int k = 0; k < c->n_workers && rc == LP_OK; k++) {
        rc = worker_buffers(c, &c->workers[k]);
        if (rc == LP_OK && k > 0)
            rc = worker_models(c, &c->workers[k]);
    }
    return rc;
}

/* ---- the loop over images ------------------------------------------------------- */

/* Evaluate image i with worker w, then journal it (one thread at a time). */
static void evaluate_one(ev_ctx *c, ev_worker *w, int i, int show)
{
    sbuf line = {0};
    char warning[600] = "";
    int rc = evaluate_image(c, w, i, &line, warning, sizeof warning);
    if (rc == LP_OK) {
        finish_line(&line);
        if (line.failed)
            rc = lp_set_error(LP_ENOMEM, "out of memory");
    }
#pragma omp critical(ev_state)
    {
        if (rc == LP_OK && c->fd >= 0)
            rc = append_journal(c, line.s, line.len);
        if (rc == LP_OK) {
            c->lines[i] = line.s;
            line.s = NULL;
            c->done_now++;
            if (warning[0])
                fprintf(stderr, "%sloupe: warning: %s\n", show ? "\n" : "", warning);
        } else if (!c->failed) {
            c->failed = 1;
            c->fail_rc = rc;
            snprintf(c->fail_msg, sizeof c->fail_msg, "%s", lp_last_error());
        }
        if (show)
            progress(c, c->done_before + c->done_now, c->data.n);
    }
    free(line.s);
}

/* The next image nobody has taken (-1: none left, or a worker failed). */
static int take_image(ev_ctx *c)
{
    int i = -1;
#pragma omp critical(ev_state)
    {
        while (c->next_image < c->data.n && c->lines[c->next_image])
            c->next_image++;
        if (c->next_image < c->data.n && !c->failed)
            i = c->next_image++;
    }
    return i;
}

/* Worker w's share: images until none is left. */
static void work(ev_ctx *c, ev_worker *w, int show)
{
    for (int i = take_image(c); i >= 0; i = take_image(c))
        evaluate_one(c, w, i, show);
}

static int run_images(ev_ctx *c)
{
    int show = !c->a.quiet && isatty(2), rc = setup_workers(c);
    if (rc != LP_OK)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    if (c->n_workers == 1) {
        /* not inside a parallel region: the kernels' own regions would be
         * nested, and libgomp starts new threads for every nested team */
        work(c, &c->workers[0], show);
    } else {
#pragma omp parallel num_threads(c->n_workers)
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            lp_set_num_threads(1); /* this thread's kernels: the cores are taken */
            work(c, &c->workers[tid], show);
        }
    }
    return c->failed ? lp_set_error(c->fail_rc, "%s", c->fail_msg) : LP_OK;
}

static void cleanup(ev_ctx *c)
{
    free_workers(c);
    if (c->fd >= 0)
        close(c->fd);
    for (int i = 0; c->lines && i < c->data.n; i++)
        free(c->lines[i]);
    free(c->lines);
    free(c->config);
    lp_free(c->mu_keep);
    lp_free(c->stab_noise);
    lp_free(c->sens_noise);
    for (int s = 0; s < c->n_stages; s++)
        lp_model_free(c->stage_model[s]);
    for (int k = 0; k < c->n_folds; k++)
        lp_model_free(c->fold_model[k]);
    lp_lpw_close(c->lpw);
    ev_data_close(&c->data);
    lp_model_free(c->m);
}

int cmd_evaluate(int argc, char **argv)
{
    ev_ctx c;
    sbuf protocol = {0};
    int rc;
    memset(&c, 0, sizeof c);
    c.fd = -1;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return CLI_OK;
        }
    if ((rc = parse_args(argc, argv, &c.a)) != CLI_OK)
        return rc;
    if ((rc = parse_lists(&c)) != CLI_OK)
        return rc;
    if ((rc = cli_load_model(c.a.model, &c.m)) != CLI_OK)
        return rc;
    c.in = lp_model_get_info(c.m);
    if ((rc = check_methods(&c)) != CLI_OK)
        goto done;
    if (ev_data_open(&c.data, c.a.data, c.a.labels, c.a.limit, c.m) != LP_OK) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    setup_causal(&c);
    if ((c.has_metric[M_RANDOMIZATION] && setup_cascade(&c) != LP_OK) ||
        (c.has_metric[M_MEGE] && setup_folds(&c) != LP_OK) || setup_draws(&c) != LP_OK ||
        build_config(&c) != LP_OK) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    setup_values(&c);
    describe_protocol(&c, &protocol);
    c.lines = calloc((size_t)c.data.n, sizeof *c.lines);
    if (c.lines == NULL || protocol.failed) {
        rc = cli_error("out of memory");
        goto done;
    }
    if ((rc = open_journal(&c)) != CLI_OK)
        goto done;
    if (!c.a.quiet)
        fprintf(stderr, "evaluate: %d image(s)%s, %d method(s), %d value(s) each\n", c.data.n,
                c.done_before ? " (resuming)" : "", c.n_methods, c.n_values);
    if (run_images(&c) != LP_OK) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    rc = write_outputs(&c, &protocol);
done:
    free(protocol.s);
    cleanup(&c);
    return rc;
}
