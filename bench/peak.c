/*
 * peak.c — print the measured peak FP32 FMA rate of this machine, on one
 * thread and on every thread loupe would use (see bench/peak.h).
 *
 *   build/bench/peak [--quick]
 */
#include "loupe.h"
#include "peak.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 3 : 7;
    double seconds = quick ? 0.1 : 0.25;
    int threads = lp_get_num_threads();

    printf("peak FP32 FMA rate (%s, best of %d)\n", PEAK_ISA, reps);
    double p1 = peak_gflops(1, reps, seconds);
    printf("  1 thread : %8.1f GFLOP/s\n", p1);
    for (int t = 2; t <= threads; t *= 2) {
        double pt = peak_gflops(t, reps, seconds);
        printf("  %d threads: %8.1f GFLOP/s (%.2fx)\n", t, pt, pt / p1);
    }
    return 0;
}
