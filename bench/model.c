/*
 * bench/model.c — time a model's forward and forward + input-gradient
 * passes: `build/bench/model M.lpw BATCH THREADS [REPEATS]`. Prints one
 * line "forward_s=… grad_s=… peak_rss_mb=…" with the best of REPEATS runs
 * (bench/models.py runs it next to PyTorch and prints ratios).
 */
#include "loupe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    lp_model *m = NULL;
    const lp_model_info *in;
    int batch, threads, reps = 3;
    size_t per;
    float *x, *y, *dy, *dx;
    double best_f = 1e30, best_g = 1e30;
    struct rusage ru;

    if (argc < 4) {
        fprintf(stderr, "usage: %s M.lpw BATCH THREADS [REPEATS]\n", argv[0]);
        return 2;
    }
    batch = atoi(argv[2]);
    threads = atoi(argv[3]);
    if (argc > 4)
        reps = atoi(argv[4]);
    if (batch < 1 || threads < 1 || reps < 1)
        return 2;
    lp_set_num_threads(threads);
    if (lp_model_load(&m, argv[1]) != LP_OK) {
        fprintf(stderr, "%s\n", lp_last_error());
        return 1;
    }
    in = lp_model_get_info(m);
    per = (size_t)in->in_c * in->in_h * in->in_w;
    x = malloc((size_t)batch * per * sizeof(float));
    dx = malloc((size_t)batch * per * sizeof(float));
    y = malloc((size_t)batch * in->out_dim * sizeof(float));
    dy = calloc((size_t)batch * in->out_dim, sizeof(float));
    if (!x || !dx || !y || !dy)
        return 1;
    srand(1);
    for (size_t i = 0; i < (size_t)batch * per; i++)
        x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < batch; i++)
        dy[(size_t)i * in->out_dim] = 1.0f;
    for (int r = 0; r < reps + 1; r++) { /* first run warms up */
        double t0 = now(), t1, t2;
        if (lp_model_forward(m, x, batch, y, 0) != LP_OK)
            return 1;
        t1 = now();
        if (lp_model_forward(m, x, batch, y, LP_RUN_GRAD) != LP_OK ||
            lp_model_backward(m, dy, dx) != LP_OK)
            return 1;
        t2 = now();
        lp_model_release(m);
        if (r > 0) {
            if (t1 - t0 < best_f) best_f = t1 - t0;
            if (t2 - t1 < best_g) best_g = t2 - t1;
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("forward_s=%.4f grad_s=%.4f peak_rss_mb=%.1f\n", best_f, best_g,
           ru.ru_maxrss / 1024.0);
    lp_model_free(m);
    free(x);
    free(dx);
    free(y);
    free(dy);
    return 0;
}
