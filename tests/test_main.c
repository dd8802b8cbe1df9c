/*
 * test_main.c — the test runner: runs every registered TEST (or those
 * whose name contains one of the arguments) and prints "N passed, N failed".
 *
 *   build/loupe_tests               run everything
 *   build/loupe_tests conv gemm     run tests whose name contains conv or gemm
 *   build/loupe_tests --list        list test names
 */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TESTS 4096
#define MAX_TEMPS 4096

typedef struct {
    const char *name;
    const char *file;
    lpt_fn fn;
} lpt_case;

static lpt_case cases[MAX_TESTS];
static int n_cases;
static int cur_failures;
static int cur_skipped;
static char skip_reason[256];
static void *temps[MAX_TEMPS];
static int n_temps;

void lpt_register(const char *name, const char *file, lpt_fn fn)
{
    if (n_cases < MAX_TESTS)
        cases[n_cases++] = (lpt_case){name, file, fn};
}

void lpt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (cur_failures < 10) {
        fprintf(stderr, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    } else if (cur_failures == 10) {
        fprintf(stderr, "    (further failures in this test not shown)\n");
    }
    cur_failures++;
}

int lpt_failed(void) { return cur_failures > 0; }

void lpt_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
    cur_skipped = 1;
}

static void *remember(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    if (n_temps < MAX_TEMPS)
        temps[n_temps++] = p;
    return p;
}

float *lpt_floats(size_t n) { return remember(lp_calloc(n ? n : 1, sizeof(float))); }
double *lpt_doubles(size_t n) { return remember(lp_calloc(n ? n : 1, sizeof(double))); }

static void free_temps(void)
{
    for (int i = 0; i < n_temps; i++)
        lp_free(temps[i]);
    n_temps = 0;
}

static int matches(const char *name, int argc, char **argv)
{
    int any_filter = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        any_filter = 1;
        if (strstr(name, argv[i]) != NULL)
            return 1;
    }
    return !any_filter;
}

static int cmp_case(const void *a, const void *b)
{
    const lpt_case *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0, verbose = 0;
    qsort(cases, (size_t)n_cases, sizeof cases[0], cmp_case);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            for (int j = 0; j < n_cases; j++)
                printf("%s\n", cases[j].name);
            return 0;
        }
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
    }
    printf("loupe tests: %s, %d thread(s)\n", lp_build_info(),
           lp_get_num_threads());
    for (int i = 0; i < n_cases; i++) {
        clock_t t0;
        double secs;
        if (!matches(cases[i].name, argc, argv))
            continue;
        cur_failures = 0;
        cur_skipped = 0;
        skip_reason[0] = '\0';
        lp_clear_error();
        t0 = clock();
        cases[i].fn();
        secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        free_temps();
        if (cur_failures) {
            failed++;
            printf("FAIL %s (%s)\n", cases[i].name, cases[i].file);
        } else if (cur_skipped) {
            skipped++;
            printf("skip %s: %s\n", cases[i].name, skip_reason);
        } else {
            passed++;
            if (verbose || secs > 2.0)
                printf("ok   %s (%.1fs cpu)\n", cases[i].name, secs);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
