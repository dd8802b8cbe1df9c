/*
 * test_real_weights.c — the shipped real-weight models (weights/) against
 * PyTorch's top-1 predictions (tests/golden/NAME_top1.u8, written by
 * tests/gen_real_golden.py): on the 200 test images committed under
 * tests/data, and on the full 10,000-image test sets when ../shared is
 * beside the repository (skipped otherwise).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int agree, correct, total;
} tally;

static int read_golden(const char *rel, uint8_t *out, int n)
{
    FILE *f = fopen(lpt_path(rel), "rb");
    size_t got;
    if (f == NULL)
        return 0;
    got = fread(out, 1, (size_t)n, f);
    fclose(f);
    return got == (size_t)n;
}

static tally evaluate(lp_model *m, const lp_dataset *d, const uint8_t *golden)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t per = (size_t)in->in_c * in->in_h * in->in_w;
    enum { CHUNK = 100 };
    float *x = lpt_floats(CHUNK * per), *y = lpt_floats(CHUNK * (size_t)in->num_classes);
    tally t = {0, 0, 0};
    for (int s = 0; s < d->n; s += CHUNK) {
        int n = d->n - s < CHUNK ? d->n - s : CHUNK;
        for (int i = 0; i < n; i++) {
            lp_image im = lp_dataset_image(d, s + i);
            if (lp_model_prepare_image(m, &im, x + (size_t)i * per) != LP_OK)
                return t;
        }
        if (lp_model_forward(m, x, n, y, 0) != LP_OK)
            return t;
        for (int i = 0; i < n; i++) {
            const float *row = y + (size_t)i * in->num_classes;
            int best = 0;
            for (int k = 1; k < in->num_classes; k++)
                if (row[k] > row[best])
                    best = k;
            t.agree += best == golden[s + i];
            t.correct += best == d->labels[s + i];
            t.total++;
        }
    }
    return t;
}

static void check_model(const char *weights, const char *golden_rel,
                        int (*load)(lp_dataset *, int full), double accuracy)
{
    lp_model *m = NULL;
    lp_dataset d;
    uint8_t *golden = (uint8_t *)lpt_floats(10000 / 4 + 1);
    tally t;
    CHECK_OK(lp_model_load(&m, lpt_path(weights)));
    CHECK_MSG(read_golden(golden_rel, golden, 10000), "cannot read %s", golden_rel);
    if (m == NULL)
        return;
    /* the committed subset */
    CHECK_OK(load(&d, 0));
    t = evaluate(m, &d, golden);
    CHECK_MSG(t.total == d.n && t.agree >= d.n - 1,
              "%s: agrees with PyTorch on %d of %d committed images", weights,
              t.agree, d.n);
    lp_dataset_free(&d);
    /* the full test set, when ../shared is there (LOUPE_TEST_QUICK=1,
     * set by make for the sanitizer build, leaves it out) */
    const char *quick = getenv("LOUPE_TEST_QUICK");
    if ((quick == NULL || !strcmp(quick, "0")) && load(&d, 1) == LP_OK) {
        double acc;
        t = evaluate(m, &d, golden);
        acc = 100.0 * t.correct / (t.total ? t.total : 1);
        CHECK_MSG(t.total == 10000 && t.agree >= 9990,
                  "%s: agrees with PyTorch on %d of %d test images", weights,
                  t.agree, t.total);
        CHECK_MSG(acc > accuracy - 0.1 && acc < accuracy + 0.1,
                  "%s: accuracy %.2f %%, PyTorch %.2f %%", weights, acc, accuracy);
        if (getenv("LOUPE_TEST_VERBOSE"))
            printf("    %s: %.2f %% accuracy, %d/%d agree with PyTorch\n", weights,
                   acc, t.agree, t.total);
        lp_dataset_free(&d);
    }
    lp_model_free(m);
}

static int load_cifar(lp_dataset *d, int full)
{
    if (!full)
        return lp_cifar10_load(d, lpt_path("tests/data/cifar10_test_first200.bin"), 0);
    return lp_cifar10_load(d, lpt_path("../shared/data/images/cifar10/cifar10_test_yk_decoded.bin"), 0);
}

static int load_mnist(lp_dataset *d, int full)
{
    char img[4096]; /* lpt_path returns a static buffer: copy the first */
    if (!full) {
        snprintf(img, sizeof img, "%s", lpt_path("tests/data/mnist_test_first200-images-idx3-ubyte"));
        return lp_mnist_load(d, img, lpt_path("tests/data/mnist_test_first200-labels-idx1-ubyte"), 0);
    }
    snprintf(img, sizeof img, "%s", lpt_path("../shared/data/images/mnist/t10k-images-idx3-ubyte"));
    return lp_mnist_load(d, img, lpt_path("../shared/data/images/mnist/t10k-labels-idx1-ubyte"), 0);
}

TEST(real_weights_resnet20_cifar10_matches_pytorch)
{
    check_model("weights/resnet20_cifar10.lpw", "tests/golden/resnet20_cifar10_top1.u8",
                load_cifar, 81.03);
}

TEST(real_weights_vit_mnist_matches_pytorch)
{
    check_model("weights/vit_mnist.lpw", "tests/golden/vit_mnist_top1.u8", load_mnist,
                97.21);
}
