/*
 * cmd_predict.c — `loupe predict`: top-k classes of images or of an
 * already-normalised .npy batch; optionally the raw logits as .npy.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREDICT_CHUNK 16 /* images per forward pass */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe predict --model M.lpw (--image FILE... | --input X.npy)\n"
            "                     [--topk K] [--json] [--logits-out Y.npy]\n"
            "\n"
            "Classify images with a converted model and print the top-K classes\n"
            "with their softmax probabilities.\n"
            "\n"
            "  --model M.lpw       weights and configuration (see `loupe inspect`)\n"
            "  --image FILE        PNG, JPEG, BMP or PPM/PGM; repeat for several; the\n"
            "                      image is resized, cropped and normalised as the\n"
            "                      model file says (torchvision's transforms)\n"
            "  --input X.npy       float32 [N,C,H,W], already normalised\n"
            "  --topk K            classes to print per input (default 5)\n"
            "  --json              machine-readable output on stdout\n"
            "  --logits-out Y.npy  write the raw logits [N,K] (float32)\n"
            "\n"
            "A model without a classifier head (DINO) prints its embedding\n"
            "instead; --logits-out then writes the embeddings [N,D].\n"
            "\n"
            "example:\n"
            "  loupe predict --model weights/resnet20_cifar10.lpw --image cat.png\n");
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* Indices of the k largest values (ties: lower index first). */
static void top_k(const float *v, int n, int k, int *idx)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j; t++)
                taken |= idx[t] == i;
            if (!taken && (best < 0 || v[i] > v[best]))
                best = i;
        }
        idx[j] = best;
    }
}

static void softmax_row(const float *logits, float *prob, int k)
{
    double mx = logits[0], sum = 0.0;
    for (int i = 1; i < k; i++)
        if (logits[i] > mx) mx = logits[i];
    for (int i = 0; i < k; i++)
        sum += exp((double)logits[i] - mx);
    for (int i = 0; i < k; i++)
        prob[i] = (float)(exp((double)logits[i] - mx) / sum);
}

/* A model without a classifier head (DINO, num_classes 0) outputs its
 * pooled embedding: print its size, norm and first values. */
static void print_embeddings(const lp_model *m, const cli_batch *b,
                             const float *y, int json)
{
    int d = lp_model_get_info(m)->out_dim;
    if (json)
        printf("{\"model\": \"%s\", \"embedding_dim\": %d, \"results\": [",
               lp_model_get_info(m)->name, d);
    for (int i = 0; i < b->n; i++) {
        const float *row = y + (size_t)i * d;
        double norm = 0.0;
        for (int j = 0; j < d; j++)
            norm += (double)row[j] * row[j];
        if (json) {
            printf("%s\n  {\"input\": ", i ? "," : "");
            json_string(b->names[i]);
            printf(", \"l2_norm\": %.6g}", sqrt(norm));
        } else {
            printf("%s: embedding of %d features, L2 norm %.4g, first [", b->names[i],
                   d, sqrt(norm));
            for (int j = 0; j < d && j < 4; j++)
                printf("%s%.4g", j ? " " : "", row[j]);
            printf("%s]\n", d > 4 ? " ..." : "");
        }
    }
    if (json)
        printf("\n]}\n");
}

static void print_results(const lp_model *m, const cli_batch *b,
                          const float *logits, int topk, int json)
{
    int k = lp_model_get_info(m)->num_classes;
    float *prob = malloc((size_t)k * sizeof(float));
    int *idx = malloc((size_t)topk * sizeof(int));
    if (json)
        printf("{\"model\": \"%s\", \"results\": [", lp_model_get_info(m)->name);
    for (int i = 0; i < b->n && prob && idx; i++) {
        const float *row = logits + (size_t)i * k;
        softmax_row(row, prob, k);
        top_k(prob, k, topk, idx);
        if (json) {
            printf("%s\n  {\"input\": ", i ? "," : "");
            json_string(b->names[i]);
            if (b->names[i] && strstr(b->names[i], ".npy"))
                printf(", \"index\": %d", i);
            printf(", \"top\": [");
        } else {
            printf("%s", b->names[i]);
            if (strstr(b->names[i], ".npy"))
                printf("[%d]", i);
            printf(":\n");
        }
        for (int j = 0; j < topk; j++) {
            const char *label = lp_model_label(m, idx[j]);
            char fallback[32];
            if (label == NULL) {
                snprintf(fallback, sizeof fallback, "class %d", idx[j]);
                label = fallback;
            }
            if (json) {
                printf("%s{\"class\": %d, \"label\": ", j ? ", " : "", idx[j]);
                json_string(label);
                printf(", \"prob\": %.6g, \"logit\": %.6g}", prob[idx[j]], row[idx[j]]);
            } else {
                printf("  %d. %6.2f%%  %-24s (class %d, logit %.4g)\n", j + 1,
                       100.0 * prob[idx[j]], label, idx[j], row[idx[j]]);
            }
        }
        if (json)
            printf("]}");
    }
    if (json)
        printf("\n]}\n");
    free(prob);
    free(idx);
}

int cmd_predict(int argc, char **argv)
{
    const char *model_path = NULL, *npy = NULL, *logits_out = NULL;
    const char *images[CLI_MAX_IMAGES];
    int n_images = 0, topk = 5, json = 0, rc, k;
    lp_model *m = NULL;
    cli_batch b;
    float *logits;
    const lp_model_info *info;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--image") ||
                   !strcmp(a, "--input") || !strcmp(a, "--topk") ||
                   !strcmp(a, "--logits-out")) {
            if ((v = cli_value(argc, argv, &i)) == NULL)
                return CLI_BAD_INPUT;
            if (!strcmp(a, "--model")) model_path = v;
            else if (!strcmp(a, "--input")) npy = v;
            else if (!strcmp(a, "--logits-out")) logits_out = v;
            else if (!strcmp(a, "--topk")) {
                if (cli_int(a, v, 1, 100000, &topk)) return CLI_BAD_INPUT;
            } else {
                if (n_images >= CLI_MAX_IMAGES)
                    return cli_error("at most %d images", CLI_MAX_IMAGES);
                images[n_images++] = v;
            }
        } else {
            return cli_error("predict: unknown option '%s' (see loupe predict --help)", a);
        }
    }
    if ((rc = cli_load_model(model_path, &m)) != CLI_OK)
        return rc;
    info = lp_model_get_info(m);
    k = info->num_classes ? info->num_classes : info->out_dim;
    if (topk > k)
        topk = k;
    if ((rc = cli_load_batch(m, images, n_images, npy, &b)) != CLI_OK) {
        lp_model_free(m);
        return rc;
    }
    logits = lp_alloc((size_t)b.n * k, sizeof(float));
    rc = logits ? LP_OK : LP_ENOMEM;
    for (int s = 0; s < b.n && rc == LP_OK; s += PREDICT_CHUNK) {
        int n = b.n - s < PREDICT_CHUNK ? b.n - s : PREDICT_CHUNK;
        size_t per = (size_t)info->in_c * info->in_h * info->in_w;
        rc = lp_model_forward(m, b.data + (size_t)s * per, n,
                              logits + (size_t)s * k, 0);
    }
    if (rc == LP_OK && logits_out != NULL) {
        int64_t shape[2] = {b.n, k};
        rc = lp_npy_save(logits_out, LP_DTYPE_F32, logits, 2, shape);
    }
    if (rc == LP_OK && info->num_classes == 0)
        print_embeddings(m, &b, logits, json);
    else if (rc == LP_OK)
        print_results(m, &b, logits, topk, json);
    else
        cli_error("%s", lp_last_error());
    lp_free(logits);
    cli_free_batch(&b);
    lp_model_free(m);
    return cli_status(rc);
}

int cmd_layers(int argc, char **argv)
{
    const char *model_path = NULL;
    lp_model *m = NULL;
    int rc;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--model")) {
            if ((model_path = cli_value(argc, argv, &i)) == NULL)
                return CLI_BAD_INPUT;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: loupe layers --model M.lpw\n\n"
                   "List the named layers of a model in execution order with their\n"
                   "kind and output shape per image; any of these names (and the\n"
                   "aliases in docs/LAYERS.md) can be hooked or captured.\n");
            return CLI_OK;
        } else {
            return cli_error("layers: unknown option '%s'", argv[i]);
        }
    }
    if ((rc = cli_load_model(model_path, &m)) != CLI_OK)
        return rc;
    for (int l = 0; l < lp_model_layer_count(m); l++) {
        int dims[4], nd = lp_model_layer_shape(m, l, dims);
        printf("%4d  %-52s %-24s [", l, lp_model_layer_name(m, l),
               lp_model_layer_kind(m, l));
        for (int d = 0; d < nd; d++)
            printf("%s%d", d ? "," : "", dims[d]);
        printf("]");
        for (int k = 0; lp_model_layer_alias(m, l, k); k++)
            printf("%s%s", k ? ", " : "  = ", lp_model_layer_alias(m, l, k));
        printf("\n");
    }
    lp_model_free(m);
    return CLI_OK;
}
