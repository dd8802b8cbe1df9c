/*
 * loupe.c — the `loupe` command-line program: dispatches to one
 * subcommand per file (tools/cmd_*.c).
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static int cmd_info(int argc, char **argv);
static size_t default_memory_limit(void);

/* inspect takes argv starting at its own name */
static int run_inspect(int argc, char **argv) { return cmd_inspect(argc - 1, argv + 1); }

static const command commands[] = {
    {"predict", cmd_predict, "classify images: top-k classes and probabilities"},
    {"explain", cmd_explain, "attribution maps (Grad-CAM, IG, RISE, Sobol, rollout...) as .npy/PNG"},
    {"evaluate", cmd_evaluate, "score methods over a data set (deletion, insertion, MuFidelity...)"},
    {"capture", cmd_capture, "write a layer's activation and its gradient (.npy)"},
    {"layers", cmd_layers, "list a model's named layers and their shapes"},
    {"inspect", run_inspect, "print a weight file's metadata and tensors; --verify checksums"},
    {"info", cmd_info, "how this loupe was built (SIMD kernel, threads)"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loupe [--threads N] [--max-memory SIZE] COMMAND [OPTIONS]\n"
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
            "  --threads N          threads for the kernels (default: all cores;\n"
            "                       results are identical for any N)\n"
            "  --max-memory SIZE    refuse a weight file, image, array or pass that\n"
            "                       would need more memory than SIZE (bytes, or with\n"
            "                       K, M, G, T: 512M, 4G; 'none': no limit), before\n"
            "                       allocating it; default 3/4 of the physical\n"
            "                       memory or of the container's limit (%zu MB here)\n"
            "  --version            print the version\n",
            default_memory_limit() >> 20);
}

/* ---- --max-memory ----------------------------------------------------- */

/* The container's memory limit (cgroup v2, then v1), SIZE_MAX if none. */
static size_t cgroup_memory_limit(void)
{
    static const char *const files[] = {"/sys/fs/cgroup/memory.max",
                                        "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *fp = fopen(files[i], "r");
        unsigned long long v;
        int ok;
        if (fp == NULL)
            continue;
        ok = fscanf(fp, "%llu", &v) == 1;
        fclose(fp);
        if (ok && v > 0 && v < SIZE_MAX)
            return (size_t)v;
    }
    return SIZE_MAX;
}

/* 3/4 of the physical memory (or of a lower container limit). Linux
 * overcommits: a request far beyond what the machine has succeeds and the
 * process (or a bystander) is killed when the pages are touched. Refusing
 * at 3/4 turns that into a clean error while leaving a quarter for the
 * kernel, the page cache and other programs. No limit when unknown. */
static size_t default_memory_limit(void)
{
    size_t total = SIZE_MAX, cg = cgroup_memory_limit();
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages <= SIZE_MAX / (size_t)page)
        total = (size_t)pages * (size_t)page;
#endif
    if (cg < total)
        total = cg;
    return total == SIZE_MAX ? 0 : total / 4 * 3;
}

/* "1073741824", "512M", "4G", "1.5G", "64k", "2GiB"; "none" = no limit (0). */
static int parse_size(const char *text, size_t *out)
{
    char *end = NULL;
    double v, scale = 1.0;
    if (!strcmp(text, "none") || !strcmp(text, "unlimited")) {
        *out = 0;
        return CLI_OK;
    }
    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || !(v >= 0.0))
        return CLI_BAD_INPUT;
    switch (*end) {
    case 'k': case 'K': scale = 1024.0; end++; break;
    case 'm': case 'M': scale = 1024.0 * 1024.0; end++; break;
    case 'g': case 'G': scale = 1024.0 * 1024.0 * 1024.0; end++; break;
    case 't': case 'T': scale = 1024.0 * 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
    }
    if (scale > 1.0 && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    v *= scale;
    if (*end != '\0' || v < 1.0 || v >= 18e18 || (double)SIZE_MAX < v)
        return CLI_BAD_INPUT;
    *out = (size_t)v;
    return CLI_OK;
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

/* The whole program; main is a wrapper so that the CLI fuzz harness
 * (tests/fuzz/fuzz_cli.c) can run it in-process. */
int loupe_main(int argc, char **argv)
{
    lp_set_memory_limit(default_memory_limit());
    /* global options come before the command */
    while (argc >= 2 && (!strcmp(argv[1], "--threads") || !strcmp(argv[1], "--max-memory"))) {
        if (argc < 3)
            return cli_error("option %s needs a value", argv[1]);
        if (!strcmp(argv[1], "--threads")) {
            int n;
            if (cli_int("--threads", argv[2], 1, 1024, &n))
                return CLI_BAD_INPUT;
            lp_set_num_threads(n);
        } else {
            size_t bytes;
            if (parse_size(argv[2], &bytes) != CLI_OK)
                return cli_error("--max-memory expects a size such as 512M, 4G or "
                                 "1073741824 (bytes), or 'none'; got '%s'", argv[2]);
            lp_set_memory_limit(bytes);
        }
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

#ifndef LOUPE_NO_MAIN
/* OpenMP threads that finish their share of a parallel region spin for a
 * while before they sleep (libgomp's default, "active" waiting). On a
 * machine where another program keeps a core busy, the spinning thread
 * and the one it waits for fight over that core: loupe then runs 4x to
 * 100x slower (docs/PERFORMANCE.md, "Threads and busy machines"), against
 * 5-45 % faster on an idle machine. Robust wins: unless the user chose a
 * policy, loupe restarts itself once with OMP_WAIT_POLICY=passive.
 * libgomp reads the variable before main runs, hence the exec; where it
 * fails (no /proc) loupe simply runs on as it is. */
static void prefer_passive_waiting(char **argv)
{
#if defined(_OPENMP) && defined(__linux__)
    if (getenv("OMP_WAIT_POLICY") != NULL || getenv("GOMP_SPINCOUNT") != NULL)
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", argv);
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    prefer_passive_waiting(argv);
    return loupe_main(argc, argv);
}
#endif
