/*
 * loupe.c — the `loupe` command-line program: dispatches to one
 * subcommand per file (tools/cmd_*.c).
 */
#include "cli.h"
#include "commands.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static int cmd_info(int argc, char **argv);

/* inspect takes argv starting at its own name */
static int run_inspect(int argc, char **argv) { return cmd_inspect(argc - 1, argv + 1); }

static const command commands[] = {
    {"predict", cmd_predict, "classify images: top-k classes and probabilities"},
    {"explain", cmd_explain, "attribution maps (Grad-CAM, IG, RISE, Sobol, rollout...) as .npy/PNG"},
    {"capture", cmd_capture, "write a layer's activation and its gradient (.npy)"},
    {"layers", cmd_layers, "list a model's named layers and their shapes"},
    {"inspect", run_inspect, "print a weight file's metadata and tensors; --verify checksums"},
    {"info", cmd_info, "how this loupe was built (SIMD kernel, threads)"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe [--threads N] COMMAND [OPTIONS]\n"
            "\n"
            "loupe runs ResNets and Vision Transformers converted from PyTorch\n"
            "(tools/convert.py) and shows what they look at.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "`loupe COMMAND --help` explains each command.\n"
            "\n"
            "options:\n"
            "  --threads N   threads for the kernels (default: all cores;\n"
            "                results are identical for any N)\n"
            "  --version     print the version\n");
}

static int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("%s\n", lp_build_info());
    printf("threads: %d\n", lp_get_num_threads());
    printf("gemm kernels:");
    for (int k = LP_GEMM_SCALAR; k <= LP_GEMM_AVX512; k++)
        if (lp_gemm_kernel_available((lp_gemm_kernel)k))
            printf(" %s", lp_gemm_kernel_name((lp_gemm_kernel)k));
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* global options come before the command */
    while (argc >= 2 && !strcmp(argv[1], "--threads")) {
        int n;
        if (argc < 3 || cli_int("--threads", argv[2], 1, 1024, &n))
            return CLI_BAD_INPUT;
        lp_set_num_threads(n);
        argv += 2;
        argc -= 2;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_BAD_INPUT;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("loupe %s\n", LOUPE_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc, argv);
    return cli_error("unknown command '%s' (try 'loupe help')", argv[1]);
}
