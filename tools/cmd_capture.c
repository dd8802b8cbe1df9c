/*
 * cmd_capture.c — `loupe capture`: write what layers produced and the
 * gradient of a target with respect to them, in PyTorch's layout.
 *
 * Every point is read through a hook (nn/hooks.c), so the q, k and v
 * views inside an attention can be captured like any layer, and a
 * pattern ("layer4.*", "kind:relu") captures many points in one pass.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe capture --model M.lpw (--image FILE... | --input X.npy)\n"
            "                     --layer NAME|PATTERN [--out A.npy|DIR]\n"
            "                     [--grad-out G.npy|DIR --target top|K|label:NAME\n"
            "                      --score logit|prob|logprob|margin]\n"
            "\n"
            "Run the model and write what a layer produced, and optionally the\n"
            "gradient of the target's score with respect to it. Arrays are float32\n"
            "in PyTorch's layout: [N,C,H,W] for feature maps, [N,T,D] for tokens,\n"
            "[N,H,T,T] for attention scores and probabilities, [N,K] for vectors.\n"
            "`--layer input` is the (normalised) input, so `--layer input\n"
            "--grad-out G.npy` writes the input gradient.\n"
            "\n"
            "  --layer NAME     a PyTorch module path (`loupe layers` lists them), or\n"
            "                   inside a ViT attention `<attn>.q`, `.k`, `.v`\n"
            "                   (views of the fused qkv projection), `.scores`,\n"
            "                   `.probs`, `.attention`\n"
            "  --layer PATTERN  `*` matches any run of characters (`layer4.*`,\n"
            "                   `blocks.*.attn.probs`), `kind:relu` every layer of a\n"
            "                   kind. When it selects several points, --out and\n"
            "                   --grad-out are directories (created if missing) that\n"
            "                   receive one NAME.npy per point; the points are\n"
            "                   listed on stdout in execution order\n"
            "  --target K       class index whose score is differentiated\n"
            "  --target top     the top-1 class of each input (default)\n"
            "  --target label:NAME  the class with this name in the model file\n"
            "  --score KIND     logit (default), prob, logprob, or margin (the\n"
            "                   target's logit minus the best other class's)\n"
            "\n"
            "examples:\n"
            "  loupe capture --model weights/resnet20_cifar10.lpw --image cat.png \\\n"
            "      --layer layer3 --out act.npy --grad-out grad.npy --target label:cat\n"
            "  loupe capture --model weights/vit_mnist.lpw --image seven.png \\\n"
            "      --layer 'transformer.layers.*.0.fn.probs' --out probs/\n");
}

/* d = d score / d logits of each input's target (lp_target_* in
 * interp/target.c: top, K or label:NAME; logit, prob, logprob, margin). */
static int seed_target(const lp_model *m, const float *logits, int n, int k,
                       const char *target, const char *score, float *d)
{
    lp_target t = {LP_TARGET_TOP, LP_SCORE_LOGIT, -1};
    int *classes = malloc((size_t)n * sizeof *classes);
    int rc = classes ? LP_OK : LP_ENOMEM;
    if (rc == LP_OK)
        rc = lp_target_parse(m, target, &t);
    if (rc == LP_OK && score != NULL)
        rc = lp_score_parse(score, &t.score);
    if (rc == LP_OK)
        rc = lp_target_classes(&t, logits, n, k, classes);
    if (rc == LP_OK)
        rc = lp_target_score(&t, logits, n, k, classes, NULL, d);
    free(classes);
    return rc == LP_OK ? CLI_OK : cli_error("capture: %s", lp_last_error());
}

/* ---- the captured points --------------------------------------------------- */

typedef struct {
    char name[112];
    int ndim, dims[4];
    size_t per_image;  /* elements of one image */
    float *act, *grad; /* [n, dims], compact; NULL until the hook ran */
} cap_point;

typedef struct {
    cap_point *p;
    int count, cap;
} cap_set;

static cap_point *cap_find(cap_set *s, const lp_hook_tensor *t)
{
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->p[i].name, t->name))
            return &s->p[i];
    if (s->count == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        cap_point *p = realloc(s->p, (size_t)cap * sizeof *p);
        if (p == NULL)
            return NULL;
        s->p = p;
        s->cap = cap;
    }
    cap_point *c = &s->p[s->count++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", t->name);
    c->ndim = t->ndim;
    c->per_image = 1;
    for (int d = 0; d < t->ndim; d++) {
        c->dims[d] = t->dims[d];
        c->per_image *= (size_t)t->dims[d];
    }
    return c;
}

/* The hook: copy the point's tensor (a strided view for q, k, v) into a
 * compact [n, ...] array. */
static int cap_hook(const lp_hook_tensor *t, void *user)
{
    cap_point *c = cap_find(user, t);
    int last = t->dims[t->ndim - 1];
    size_t rows;
    float **dst, *out;
    if (c == NULL)
        return lp_set_error(LP_ENOMEM, "out of memory");
    dst = t->when == LP_HOOK_FORWARD ? &c->act : &c->grad;
    if (*dst == NULL && (*dst = lp_alloc((size_t)t->n * c->per_image, sizeof(float))) == NULL)
        return LP_ENOMEM;
    out = *dst;
    rows = c->per_image / (size_t)last;
    for (int b = 0; b < t->n; b++)
        for (size_t r = 0; r < rows; r++)
            memcpy(out + ((size_t)b * rows + r) * last,
                   t->data + b * t->image_stride + r * (size_t)t->row_stride,
                   (size_t)last * sizeof(float));
    return LP_OK;
}

static void cap_free(cap_set *s)
{
    for (int i = 0; i < s->count; i++) {
        lp_free(s->p[i].act);
        lp_free(s->p[i].grad);
    }
    free(s->p);
}

/* ---- writing ---------------------------------------------------------------- */

static int save_point(const cap_point *c, int n, const float *data, const char *path)
{
    int64_t shape[5];
    shape[0] = n;
    for (int d = 0; d < c->ndim; d++)
        shape[d + 1] = c->dims[d];
    if (lp_npy_save(path, LP_DTYPE_F32, data, c->ndim + 1, shape) != LP_OK)
        return cli_error("%s", lp_last_error());
    return CLI_OK;
}

static int make_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0777) == 0 || (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
        return CLI_OK;
    return cli_error("capture: %s: cannot create the directory (%s)", dir,
                     errno == EEXIST ? "a file has that name" : strerror(errno));
}

/* One file, or one NAME.npy per point in a directory. The gradient of a
 * point below the target's path (none flowed back) is zero. */
static int save_all(const cap_set *s, int n, int many, const char *dest, int grads)
{
    if (many && make_dir(dest) != CLI_OK)
        return CLI_BAD_INPUT;
    for (int i = 0; i < s->count; i++) {
        const cap_point *c = &s->p[i];
        const float *data = grads ? c->grad : c->act;
        float *zeros = NULL;
        char path[8192];
        int rc;
        if (data == NULL) {
            if ((zeros = lp_alloc((size_t)n * c->per_image, sizeof(float))) == NULL)
                return cli_error("out of memory");
            data = zeros;
        }
        if (many)
            snprintf(path, sizeof path, "%s/%s.npy", dest, c->name);
        else
            snprintf(path, sizeof path, "%s", dest);
        rc = save_point(c, n, data, path);
        lp_free(zeros);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

static int is_pattern(const char *s)
{
    return strchr(s, '*') != NULL || !strncmp(s, "kind:", 5);
}

int cmd_capture(int argc, char **argv)
{
    const char *model_path = NULL, *npy = NULL, *layer_name = NULL;
    const char *out = NULL, *grad_out = NULL, *target = NULL, *score = NULL;
    const char *images[CLI_MAX_IMAGES];
    int n_images = 0, rc, handle, k, many;
    unsigned when;
    lp_model *m = NULL;
    cli_batch b = {0};
    cap_set points = {0};
    float *logits = NULL, *dlogits = NULL;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        }
        if (strcmp(a, "--model") && strcmp(a, "--image") && strcmp(a, "--input") &&
            strcmp(a, "--layer") && strcmp(a, "--out") && strcmp(a, "--grad-out") &&
            strcmp(a, "--target") && strcmp(a, "--score")) {
            return cli_error("capture: unknown option '%s' (see loupe capture --help)", a);
        }
        if ((v = cli_value(argc, argv, &i)) == NULL)
            return CLI_BAD_INPUT;
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--input")) npy = v;
        else if (!strcmp(a, "--layer")) layer_name = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--grad-out")) grad_out = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--score")) score = v;
        else {
            if (n_images >= CLI_MAX_IMAGES)
                return cli_error("at most %d images", CLI_MAX_IMAGES);
            images[n_images++] = v;
        }
    }
    if (layer_name == NULL)
        return cli_error("capture: --layer NAME is required");
    if (out == NULL && grad_out == NULL)
        return cli_error("capture: nothing to write (give --out and/or --grad-out)");
    if ((rc = cli_load_model(model_path, &m)) != CLI_OK)
        return rc;
    many = is_pattern(layer_name);
    when = LP_HOOK_FORWARD | (grad_out ? LP_HOOK_BACKWARD : 0);
    handle = lp_model_add_hook(m, layer_name, when, cap_hook, &points);
    if (handle < 0) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    k = lp_model_get_info(m)->out_dim;
    if ((rc = cli_load_batch(m, images, n_images, npy, &b)) != CLI_OK)
        goto done;
    logits = lp_alloc((size_t)b.n * k, sizeof(float));
    dlogits = lp_alloc((size_t)b.n * k, sizeof(float));
    if (!logits || !dlogits ||
        lp_model_forward(m, b.data, b.n, logits, grad_out ? LP_RUN_GRAD : 0) != LP_OK) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    /* compute everything before writing anything */
    if (grad_out) {
        if ((rc = seed_target(m, logits, b.n, k, target, score, dlogits)) != CLI_OK)
            goto done;
        if (lp_model_backward(m, dlogits, NULL) != LP_OK) {
            rc = cli_error("%s", lp_last_error());
            goto done;
        }
    }
    if (!many && points.count != 1) {
        rc = cli_error("capture: '%s' names %d points; use a pattern for several",
                       layer_name, points.count);
        goto done;
    }
    if (out && (rc = save_all(&points, b.n, many, out, 0)) != CLI_OK)
        goto done;
    if (grad_out && (rc = save_all(&points, b.n, many, grad_out, 1)) != CLI_OK)
        goto done;
    if (many)
        for (int i = 0; i < points.count; i++) {
            printf("%s [%d", points.p[i].name, b.n);
            for (int d = 0; d < points.p[i].ndim; d++)
                printf(",%d", points.p[i].dims[d]);
            printf("]\n");
        }
done:
    lp_free(logits);
    lp_free(dlogits);
    cap_free(&points);
    cli_free_batch(&b);
    lp_model_free(m);
    return rc;
}
