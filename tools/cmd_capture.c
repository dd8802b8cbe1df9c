/*
 * cmd_capture.c — `loupe capture`: write a layer's activation and the
 * gradient of a target logit with respect to it, in PyTorch's layout.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe capture --model M.lpw (--image FILE... | --input X.npy)\n"
            "                     --layer NAME [--out A.npy]\n"
            "                     [--grad-out G.npy --target top|K|label:NAME\n"
            "                      --score logit|prob|logprob|margin]\n"
            "\n"
            "Run the model and write what one layer produced, and optionally the\n"
            "gradient of the target logit with respect to it. Arrays are float32\n"
            "in PyTorch's layout: [N,C,H,W] for feature maps, [N,T,D] for tokens,\n"
            "[N,K] for vectors. `--layer input` is the (normalised) input, so\n"
            "`--layer input --grad-out G.npy` writes the input gradient.\n"
            "\n"
            "  --layer NAME   a PyTorch module path (`loupe layers` lists them)\n"
            "  --target K     class index whose score is differentiated\n"
            "  --target top   the top-1 class of each input (default)\n"
            "  --target label:NAME  the class with this name in the model file\n"
            "  --score KIND   logit (default), prob, logprob, or margin (the\n"
            "                 target's logit minus the best other class's)\n"
            "\n"
            "example:\n"
            "  loupe capture --model weights/resnet20_cifar10.lpw --image cat.png \\\n"
            "      --layer layer3 --out act.npy --grad-out grad.npy --target label:cat\n");
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

static int save_layer(const lp_model *m, int layer, int n, const float *data,
                      const char *path)
{
    int dims[4], nd = lp_model_layer_shape(m, layer, dims);
    int64_t shape[5];
    shape[0] = n;
    for (int d = 0; d < nd; d++)
        shape[d + 1] = dims[d];
    if (lp_npy_save(path, LP_DTYPE_F32, data, nd + 1, shape) != LP_OK)
        return cli_error("%s", lp_last_error());
    return CLI_OK;
}

int cmd_capture(int argc, char **argv)
{
    const char *model_path = NULL, *npy = NULL, *layer_name = NULL;
    const char *out = NULL, *grad_out = NULL, *target = NULL, *score = NULL;
    const char *images[CLI_MAX_IMAGES];
    int n_images = 0, rc, layer, k;
    lp_model *m = NULL;
    cli_batch b = {0};
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
    layer = lp_model_find_layer(m, layer_name);
    if (layer < 0) {
        rc = cli_error("%s", lp_last_error());
        goto done;
    }
    k = lp_model_get_info(m)->out_dim;
    if ((rc = cli_load_batch(m, images, n_images, npy, &b)) != CLI_OK)
        goto done;
    logits = lp_alloc((size_t)b.n * k, sizeof(float));
    dlogits = lp_alloc((size_t)b.n * k, sizeof(float));
    if (!logits || !dlogits ||
        lp_model_forward(m, b.data, b.n, logits,
                         LP_RUN_KEEP_ALL | (grad_out ? LP_RUN_GRAD : 0)) != LP_OK) {
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
    if (out && (rc = save_layer(m, layer, b.n, lp_model_activation(m, layer), out)))
        goto done;
    if (grad_out)
        rc = save_layer(m, layer, b.n, lp_model_gradient(m, layer), grad_out);
done:
    lp_free(logits);
    lp_free(dlogits);
    cli_free_batch(&b);
    lp_model_free(m);
    return rc;
}
