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
            "                     [--grad-out G.npy --target K|top]\n"
            "\n"
            "Run the model and write what one layer produced, and optionally the\n"
            "gradient of the target logit with respect to it. Arrays are float32\n"
            "in PyTorch's layout: [N,C,H,W] for feature maps, [N,T,D] for tokens,\n"
            "[N,K] for vectors. `--layer input` is the (normalised) input, so\n"
            "`--layer input --grad-out G.npy` writes the input gradient.\n"
            "\n"
            "  --layer NAME   a PyTorch module path (`loupe layers` lists them)\n"
            "  --target K     class index whose logit is differentiated\n"
            "  --target top   the top-1 class of each input (default)\n");
}

/* Fill d = one-hot rows selecting each input's target logit. */
static int seed_target(const float *logits, int n, int k, const char *target,
                       float *d)
{
    int fixed = -1;
    if (target != NULL && strcmp(target, "top")) {
        if (cli_int("--target", target, 0, k - 1, &fixed))
            return CLI_BAD_INPUT;
    }
    memset(d, 0, (size_t)n * k * sizeof(float));
    for (int i = 0; i < n; i++) {
        int t = fixed;
        if (t < 0) {
            t = 0;
            for (int j = 1; j < k; j++)
                if (logits[(size_t)i * k + j] > logits[(size_t)i * k + t])
                    t = j;
        }
        d[(size_t)i * k + t] = 1.0f;
    }
    return CLI_OK;
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
    const char *out = NULL, *grad_out = NULL, *target = NULL;
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
            strcmp(a, "--target")) {
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
        if ((rc = seed_target(logits, b.n, k, target, dlogits)) != CLI_OK)
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
