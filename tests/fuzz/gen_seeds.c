/*
 * gen_seeds.c — writes the generated part of the fuzz seed corpora:
 * tiny random networks and truncated copies (.lpw), data-set inputs in the
 * dataset harness's layout, labels files and loupe argument lists. The
 * copied part (images, NPY files, zlib streams, real weights) is done by
 * tests/fuzz/seeds.sh, which calls this program.
 *
 *   gen_seeds REPO_ROOT OUT_DIR     writes OUT_DIR/{lpw,dataset,labels,cli}/
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root, *out;

static void write_seed(const char *harness, const char *name, const void *data,
                       size_t size)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", out, harness);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out, harness, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static uint8_t *read_repo(const char *rel, size_t *size)
{
    char path[4096];
    uint8_t *data = NULL;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    if (lp_read_file(path, (size_t)64 << 20, &data, size) != LP_OK) {
        fprintf(stderr, "gen_seeds: %s\n", lp_last_error());
        exit(1);
    }
    return data;
}

/* Tiny networks of every family, whole and cut after the header, the
 * metadata and half the file. */
static void lpw_seeds(void)
{
    static const char *const kinds[] = {"resnet", "bottleneck", "vit", "vit_torchvision",
                                        "vit_lucidrains"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        uint8_t *bytes = NULL;
        size_t size = 0;
        char name[64];
        if (fuzz_tiny_model(kinds[k], &bytes, &size) != LP_OK) {
            fprintf(stderr, "gen_seeds: %s\n", lp_last_error());
            exit(1);
        }
        snprintf(name, sizeof name, "tiny_%s.lpw", kinds[k]);
        write_seed("lpw", name, bytes, size);
        if (k == 0) {
            write_seed("lpw", "cut_header.lpw", bytes, 128);
            write_seed("lpw", "cut_half.lpw", bytes, size / 2);
        }
        lp_free(bytes);
    }
}

/* Layout of fuzz_dataset.c: mode byte, then the file(s). */
static void dataset_seeds(void)
{
    size_t size = 0, lsize = 0;
    uint8_t *cifar = read_repo("tests/data/cifar10_test_first200.bin", &size);
    uint8_t *img = read_repo("tests/data/mnist_test_first200-images-idx3-ubyte", &size);
    uint8_t *lab = read_repo("tests/data/mnist_test_first200-labels-idx1-ubyte", &lsize);
    uint8_t *buf = malloc(1 + 2 * 3073 + 4 + 16 + 3 * 784 + 11);
    size_t isize = 16 + 2 * 784;
    if (buf == NULL)
        exit(1);
    buf[0] = 0; /* CIFAR-10, all records */
    memcpy(buf + 1, cifar, 2 * 3073);
    write_seed("dataset", "cifar_2", buf, 1 + 2 * 3073);
    buf[0] = 1 << 1; /* limit 1 */
    write_seed("dataset", "cifar_2_limit1", buf, 1 + 2 * 3073);
    buf[0] = 1; /* MNIST: two digits, header counts rewritten */
    buf[1] = buf[2] = 0;
    buf[3] = (uint8_t)(isize >> 8);
    buf[4] = (uint8_t)isize;
    memcpy(buf + 5, img, isize);
    buf[5 + 7] = 2;
    memcpy(buf + 5 + isize, lab, 10);
    buf[5 + isize + 7] = 2;
    write_seed("dataset", "mnist_2", buf, 5 + isize + 10);
    free(buf);
    lp_free(cifar);
    lp_free(img);
    lp_free(lab);
}

static void labels_seeds(void)
{
    static const char a[] = "# images and their classes\n"
                            "cat_0000.jpg 3\n"
                            "a b c.png   airplane\n"
                            "\n"
                            "   \t\n"
                            "deep/dir/x.ppm 9\r\n";
    static const char b[] = "only-one-field\n";
    static const char c[] = "x.png 1";
    write_seed("labels", "valid", a, sizeof a - 1);
    write_seed("labels", "one_field", b, sizeof b - 1);
    write_seed("labels", "no_newline", c, sizeof c - 1);
}

/* Argument lists, one per line here, written NUL-separated. */
static const char *const cli_lines[] = {
    "predict --model t.lpw --image a.png --image b.jpg --topk 2 --json",
    "predict --model r20.lpw --image b.jpg --logits-out o.npy",
    "predict --model r20.lpw --input y.npy --topk 3",
    "predict --model v.lpw --input x.npy",
    "predict --model g.lpw --image c.ppm --json",
    "layers --model t.lpw",
    "layers --model v.lpw",
    "inspect r20.lpw --verify",
    "inspect t.lpw --json",
    "capture --model t.lpw --image c.ppm --layer layer1.0.relu --out act.npy --grad-out g.npy --target 1",
    "capture --model v.lpw --input x.npy --layer blocks.1.attn.probs --out a.npy --score prob",
    "explain --model t.lpw --image b.jpg --method gradcam,integrated-gradients --png h.png --out m.npy",
    "explain --model v.lpw --image a.png --method rollout,chefer --png s.png",
    "explain --model t.lpw --image c.ppm --method rise,sobol,lime --masks 4 --out m.npy",
    "explain --model g.lpw --image a.png --method saliency,smoothgrad --target 2 --quiet",
    "explain --list",
    "explain --help",
    "evaluate --model t.lpw --data imgs --labels l.txt --method gradcam --metric deletion,insertion --out r.json",
    "evaluate --model g.lpw --data mnist-images-idx3-ubyte --method saliency --metric mufidelity --csv r.csv",
    "evaluate --model t.lpw --data cifar.bin --method gradcam,rise --metric deletion --report r.html",
    "--threads 2 info",
    "--version",
    "help",
    "predict --help",
};

static void cli_seeds(void)
{
    for (size_t i = 0; i < sizeof cli_lines / sizeof cli_lines[0]; i++) {
        char buf[512], name[32];
        size_t len = strlen(cli_lines[i]);
        memcpy(buf, cli_lines[i], len);
        for (size_t k = 0; k < len; k++)
            if (buf[k] == ' ')
                buf[k] = '\0';
        snprintf(name, sizeof name, "args_%02zu", i);
        write_seed("cli", name, buf, len);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_seeds REPO_ROOT OUT_DIR\n");
        return 2;
    }
    root = argv[1];
    out = argv[2];
    mkdir(out, 0755);
    lpw_seeds();
    dataset_seeds();
    labels_seeds();
    cli_seeds();
    return 0;
}
