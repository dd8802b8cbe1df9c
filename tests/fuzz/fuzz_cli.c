/*
 * fuzz_cli.c — fuzz harness for the `loupe` command line (tools/): the
 * input, split at NUL bytes, is the argument list after "loupe", run
 * in-process through loupe_main (tools/loupe.c built with -DLOUPE_NO_MAIN).
 *
 * Containment. Each input runs in a fresh directory under a private
 * temporary directory and no argument may contain '/', so every file the
 * command reads or writes is inside it. The files an input can name are
 * created there only when some argument mentions them:
 *   t.lpw v.lpw g.lpw   tiny random ResNet, ViT, 1-channel ViT (8 x 8)
 *   r20.lpw             a copy of weights/resnet20_cifar10.lpw (the only
 *                       real model; cheap commands only, see below)
 *   a.png b.jpg c.ppm   images (a, b from weights/samples; c generated)
 *   x.npy y.npy         inputs [1,3,8,8] and [1,3,32,32]
 *   imgs/  l.txt        an image folder and a labels file for evaluate
 *   cifar.bin           two CIFAR-10 records
 *   mnist-images-idx3-ubyte, mnist-labels-idx1-ubyte   three MNIST digits
 * The repository root is $LOUPE_ROOT or the starting directory.
 *
 * Bounded work. Inputs are refused (return 0 without running) when they
 * have more than 40 arguments, a number larger than 32 in magnitude, or
 * name r20.lpw with a command other than inspect, layers, predict or
 * capture, or with more than 12 arguments. explain and evaluate get small sample counts inserted before
 * the fuzzed arguments (which may override them, within the bound).
 */
#include "fuzz.h"
#include "../../tools/commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLI_FUZZ_MAX_ARGS 40
#define CLI_FUZZ_MAX_NUMBER 32.0
#define CLI_FUZZ_R20_MAX_ARGS 12 /* a few images at most through ResNet-20 */

static char root[4096], base[4096];
static int start_dir = -1; /* the caller's working directory, restored after each input */
static uint8_t *tiny[3];
static size_t tiny_size[3];
static const char *const tiny_name[3] = {"t.lpw", "v.lpw", "g.lpw"};
static const char *const tiny_kind[3] = {"resnet", "vit", "vit_lucidrains"};

/* ---- the private directory ------------------------------------------------ */

/* Remove a directory tree (entries come from readdir, never followed). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char child[8192];
            struct stat st;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

static void cleanup(void)
{
    if (base[0] != '\0' && chdir("/") == 0)
        remove_tree(base);
}

static int init(void)
{
    static int state; /* 0 not yet, 1 ready, -1 failed */
    const char *env = getenv("LOUPE_ROOT"), *tmp = getenv("TMPDIR");
    if (state != 0)
        return state;
    state = -1;
    if (env != NULL)
        snprintf(root, sizeof root, "%s", env);
    else if (getcwd(root, sizeof root) == NULL)
        return state;
    snprintf(base, sizeof base, "%s/loupe-fuzz-cli-XXXXXX",
             tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(base) == NULL || (start_dir = open(".", O_RDONLY)) < 0)
        return state;
    atexit(cleanup);
    for (int i = 0; i < 3; i++)
        if (fuzz_tiny_model(tiny_kind[i], &tiny[i], &tiny_size[i]) != LP_OK)
            return state;
    return state = 1;
}

/* ---- fixtures --------------------------------------------------------------- */

static void write_bytes(const char *name, const void *data, size_t size)
{
    FILE *f = fopen(name, "wb");
    if (f != NULL) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
}

/* Copy the first `limit` bytes (0 = all) of a repository file. */
static void copy_file(const char *name, const char *rel, size_t limit)
{
    char path[8192];
    uint8_t *data = NULL;
    size_t size = 0;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    if (lp_read_file(path, (size_t)64 << 20, &data, &size) != LP_OK)
        return;
    write_bytes(name, data, limit && limit < size ? limit : size);
    lp_free(data);
}

static void write_npy(const char *name, int c, int h, int w)
{
    int64_t shape[4] = {1, c, h, w};
    size_t n = (size_t)c * h * w;
    float *x = malloc(n * sizeof *x);
    if (x == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(i % 11) - 5) * 0.2f;
    lp_npy_save(name, LP_DTYPE_F32, x, 4, shape);
    free(x);
}

/* Three MNIST digits: the first 3 of the 200 in tests/data. */
static void write_mnist(void)
{
    static const uint8_t img_head[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28};
    static const uint8_t lab_head[8] = {0, 0, 8, 1, 0, 0, 0, 3};
    char path[8192];
    uint8_t *img = NULL, *lab = NULL, *buf;
    size_t isize = 0, lsize = 0;
    snprintf(path, sizeof path, "%s/tests/data/mnist_test_first200-images-idx3-ubyte", root);
    lp_read_file(path, (size_t)1 << 20, &img, &isize);
    snprintf(path, sizeof path, "%s/tests/data/mnist_test_first200-labels-idx1-ubyte", root);
    lp_read_file(path, (size_t)1 << 20, &lab, &lsize);
    buf = malloc(16 + 3 * 784);
    if (img && lab && buf && isize >= 16 + 3 * 784 && lsize >= 11) {
        memcpy(buf, img_head, 16);
        memcpy(buf + 16, img + 16, 3 * 784);
        write_bytes("mnist-images-idx3-ubyte", buf, 16 + 3 * 784);
        memcpy(buf, lab_head, 8);
        memcpy(buf + 8, lab + 8, 3);
        write_bytes("mnist-labels-idx1-ubyte", buf, 11);
    }
    free(buf);
    lp_free(img);
    lp_free(lab);
}

static void write_image_dir(void)
{
    static const char labels[] = "# path label\na.png 1\nb.jpg cat\n";
    if (mkdir("imgs", 0700) != 0 || chdir("imgs") != 0)
        return;
    copy_file("a.png", "weights/samples/mnist_7_0000.png", 0);
    copy_file("b.jpg", "weights/samples/cat_0000.jpg", 0);
    write_bytes("l.txt", labels, sizeof labels - 1);
    if (chdir("..") != 0)
        fuzz_fail("cannot leave the image folder");
    write_bytes("l.txt", labels, sizeof labels - 1);
}

static int mentioned(char **argv, int argc, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strstr(argv[i], name) != NULL)
            return 1;
    return 0;
}

static void make_fixtures(char **argv, int argc)
{
    static const uint8_t ppm[] = "P6 3 2 255\n"
                                 "\xff\x00\x00\x00\xff\x00\x00\x00\xff"
                                 "\x10\x20\x30\x80\x80\x80\xff\xff\xff";
    for (int i = 0; i < 3; i++)
        if (mentioned(argv, argc, tiny_name[i]))
            write_bytes(tiny_name[i], tiny[i], tiny_size[i]);
    if (mentioned(argv, argc, "r20"))
        copy_file("r20.lpw", "weights/resnet20_cifar10.lpw", 0);
    if (mentioned(argv, argc, "a.png") || mentioned(argv, argc, "."))
        copy_file("a.png", "weights/samples/mnist_7_0000.png", 0);
    if (mentioned(argv, argc, "b.jpg") || mentioned(argv, argc, "."))
        copy_file("b.jpg", "weights/samples/cat_0000.jpg", 0);
    if (mentioned(argv, argc, "c.ppm") || mentioned(argv, argc, "."))
        write_bytes("c.ppm", ppm, sizeof ppm - 1);
    if (mentioned(argv, argc, "x.npy"))
        write_npy("x.npy", 3, 8, 8);
    if (mentioned(argv, argc, "y.npy"))
        write_npy("y.npy", 3, 32, 32);
    if (mentioned(argv, argc, "imgs") || mentioned(argv, argc, "l.txt"))
        write_image_dir();
    if (mentioned(argv, argc, "cifar"))
        copy_file("cifar.bin", "tests/data/cifar10_test_first200.bin", 2 * 3073);
    if (mentioned(argv, argc, "mnist"))
        write_mnist();
}

/* ---- the argument list ------------------------------------------------------ */

/* Split at NUL bytes into argv[1..]; argv[0] = "loupe". */
static int split_args(char *text, size_t size, char **argv, int cap)
{
    int argc = 0;
    static char program[] = "loupe";
    argv[argc++] = program;
    for (size_t i = 0; i <= size;) {
        size_t len = strlen(text + i);
        if (argc >= cap)
            return -1;
        argv[argc++] = text + i;
        i += len + 1;
    }
    argv[argc] = NULL;
    return argc;
}

static int too_large_number(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && !(v >= -CLI_FUZZ_MAX_NUMBER && v <= CLI_FUZZ_MAX_NUMBER);
}

/* Index of the command (after any global "--threads N"), or argc. */
static int command_index(char **argv, int argc)
{
    int i = 1;
    while (i + 1 < argc && !strcmp(argv[i], "--threads"))
        i += 2;
    return i;
}

static int acceptable(char **argv, int argc)
{
    int cmd = command_index(argv, argc);
    for (int i = 1; i < argc; i++)
        if (strchr(argv[i], '/') != NULL || too_large_number(argv[i]))
            return 0;
    if (mentioned(argv, argc, "r20") && cmd < argc) {
        const char *c = argv[cmd];
        if (argc > CLI_FUZZ_R20_MAX_ARGS ||
            (strcmp(c, "inspect") && strcmp(c, "layers") && strcmp(c, "predict") &&
             strcmp(c, "capture")))
            return 0;
    }
    return 1;
}

/* Small sample counts for the methods and metrics, before the fuzzed
 * options (a later option wins). */
static int insert_bounds(char **argv, int argc, int cap)
{
    static char *bounds[] = {"--steps", "4", "--samples", "3", "--masks", "8", "--grid", "3",
                             "--designs", "2", "--lime-samples", "8", "--batch", "8"};
    static char *ev_bounds[] = {"--limit", "2", "--causal-steps", "3",
                                "--mufidelity-samples", "3", "--mufidelity-grid", "2",
                                "--stability-samples", "2", "--sensitivity-samples", "2",
                                "--report-images", "1"};
    int nb = (int)(sizeof bounds / sizeof bounds[0]);
    int ne = (int)(sizeof ev_bounds / sizeof ev_bounds[0]);
    int cmd = command_index(argv, argc), n;
    if (cmd >= argc || (strcmp(argv[cmd], "explain") && strcmp(argv[cmd], "evaluate")))
        return argc;
    n = nb + (strcmp(argv[cmd], "evaluate") ? 0 : ne);
    if (argc + n >= cap)
        return -1;
    memmove(argv + cmd + 1 + n, argv + cmd + 1, (size_t)(argc - cmd) * sizeof *argv);
    memcpy(argv + cmd + 1, bounds, (size_t)nb * sizeof *argv);
    if (n > nb)
        memcpy(argv + cmd + 1 + nb, ev_bounds, (size_t)ne * sizeof *argv);
    return argc + n;
}

/* ---- running one input ------------------------------------------------------ */

/* Run loupe in a fresh directory with stdout discarded. */
static void run_contained(char **argv, int argc)
{
    char work[8192];
    int saved = -1, null_fd;
    snprintf(work, sizeof work, "%s/run", base);
    if (mkdir(work, 0700) != 0 || chdir(work) != 0)
        fuzz_fail("cannot enter the work directory");
    make_fixtures(argv, argc);
    lp_set_num_threads(1);
    fflush(stdout);
    null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
        saved = dup(1);
        dup2(null_fd, 1);
        close(null_fd);
    }
    loupe_main(argc, argv);
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, 1);
        close(saved);
    }
    if (fchdir(start_dir) != 0)
        fuzz_fail("cannot return to the starting directory");
    remove_tree(work);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[CLI_FUZZ_MAX_ARGS + 64], *text;
    int argc;
    if (size > 4096 || init() != 1)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    argc = split_args(text, size, argv, CLI_FUZZ_MAX_ARGS + 1);
    if (argc > 0 && acceptable(argv, argc)) {
        argc = insert_bounds(argv, argc, (int)(sizeof argv / sizeof argv[0]));
        if (argc > 0)
            run_contained(argv, argc);
    }
    free(text);
    return 0;
}
