/*
 * loupe.c — the `loupe` command-line program.
 */
#include "loupe.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe COMMAND [OPTIONS]\n"
            "\n"
            "loupe runs ResNets and Vision Transformers converted from PyTorch\n"
            "and shows what they look at.\n"
            "\n"
            "commands:\n"
            "  info        print how this loupe was built (SIMD kernel, threads)\n"
            "  help        show this help\n"
            "\n"
            "options:\n"
            "  --version   print the version\n");
}

static int cmd_info(void)
{
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
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("loupe %s\n", LOUPE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "info") == 0)
        return cmd_info();
    fprintf(stderr, "loupe: unknown command '%s' (try 'loupe help')\n", argv[1]);
    return 2;
}
