/*
 * test_alloc_fail.c — allocation failures and the memory limit.
 *
 * A small job — load the shipped ResNet-20, decode and prepare an image,
 * a forward and backward pass, integrated gradients, Grad-CAM, save the
 * map as .npy, render it and write the PNG — with every one of its
 * allocations made to fail in turn (lp_debug_fail_alloc_after). Each run
 * must return an error with a message (never crash, never succeed
 * unnoticed) and leave exactly as many live lp_alloc blocks and bytes as
 * before it: no leak on any error path.
 *
 * The job runs stage by stage: the stages before the one under test run
 * once, cleanly, and the stage is repeated with its 1st, 2nd, ... k-th
 * allocation failing. That fails each allocation of the job exactly once,
 * as rerunning the whole job for every k would (a failed stage ends the
 * job), at a fraction of the cost; and it checks that a model on which a
 * pass failed is still usable: after the failures the stage is run once
 * more and must give the same result as the first time.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *lpt_img_tmp_path(const char *name);

#define JOB_MODEL "weights/resnet20_cifar10.lpw"
#define JOB_IMAGE "weights/samples/cat_0000.jpg"
#define JOB_CLASS 3 /* cat */

/* What the stages share; every buffer is allocated before the stages. */
typedef struct {
    lp_model *m;
    int k;              /* classes */
    size_t per, hw;     /* floats per image, pixels per image */
    float *x, *dx, *logits, *dlogits, *map;
    double result;      /* what the last stage computed (a checksum) */
} job_state;

static double sum_of(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

static int stage_load(job_state *s)
{
    lp_model *m = NULL;
    int rc = lp_model_load(&m, lpt_path(JOB_MODEL));
    s->result = rc == LP_OK ? (double)lp_model_get_info(m)->num_params : 0.0;
    lp_model_free(m);
    return rc;
}

static int stage_image(job_state *s)
{
    lp_image img;
    int rc = lp_image_load(&img, lpt_path(JOB_IMAGE));
    if (rc == LP_OK)
        rc = lp_model_prepare_image(s->m, &img, s->x);
    lp_image_free(&img);
    s->result = rc == LP_OK ? sum_of(s->x, s->per) : 0.0;
    return rc;
}

/* Forward with gradients, then backward of the cat logit. */
static int stage_passes(job_state *s)
{
    int rc = lp_model_forward(s->m, s->x, 1, s->logits, LP_RUN_GRAD);
    memset(s->dlogits, 0, (size_t)s->k * sizeof(float));
    s->dlogits[JOB_CLASS] = 1.0f;
    if (rc == LP_OK)
        rc = lp_model_backward(s->m, s->dlogits, s->dx);
    s->result = rc == LP_OK ? s->logits[JOB_CLASS] + sum_of(s->dx, s->per) : 0.0;
    return rc;
}

static int stage_integrated_gradients(job_state *s)
{
    lp_explain_options o;
    int cls = JOB_CLASS, rc;
    lp_explain_defaults(&o);
    o.steps = 1;
    rc = lp_integrated_gradients(s->m, s->x, 1, &cls, &o, s->map, NULL);
    s->result = rc == LP_OK ? sum_of(s->map, s->hw) : 0.0;
    return rc;
}

static int stage_gradcam(job_state *s)
{
    lp_explain_options o;
    int cls = JOB_CLASS, rc;
    lp_explain_defaults(&o);
    rc = lp_gradcam(s->m, s->x, 1, &cls, &o, s->map, NULL);
    s->result = rc == LP_OK ? sum_of(s->map, s->hw) : 0.0;
    return rc;
}

/* The map as .npy, and as a heatmap PNG; removes both files again. */
static int stage_write(job_state *s)
{
    const lp_model_info *in = lp_model_get_info(s->m);
    int64_t shape[2] = {in->in_h, in->in_w};
    const char *npy = lpt_img_tmp_path("alloc_fail.npy");
    const char *png = lpt_img_tmp_path("alloc_fail.png");
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int rc = lp_npy_save(npy, LP_DTYPE_F32, s->map, 2, shape);
    if (rc == LP_OK)
        rc = lp_render_heatmap(in, s->x, s->map, in->in_h, in->in_w, &rgb, &w, &h);
    if (rc == LP_OK)
        rc = lp_png_write(png, rgb, w, h, 3);
    lp_free(rgb);
    s->result = (access(npy, F_OK) == 0) + 2.0 * (access(png, F_OK) == 0);
    unlink(npy);
    unlink(png);
    return rc;
}

typedef struct {
    const char *name;
    int (*run)(job_state *);
} job_stage;

static const job_stage stages[] = {
    {"load", stage_load},
    {"image", stage_image},
    {"forward+backward", stage_passes},
    {"integrated-gradients", stage_integrated_gradients},
    {"gradcam", stage_gradcam},
    {"write", stage_write},
};

/* Run one stage and drop what the model kept from it. */
static int run_stage(const job_stage *st, job_state *s)
{
    int rc = st->run(s);
    lp_model_release(s->m);
    return rc;
}

/* Fail each allocation of stage st in turn; returns its allocation count. */
static long fail_each_allocation(const job_stage *st, job_state *s)
{
    long blocks0 = lp_alloc_live_count(), total0 = lp_alloc_total_count(), n;
    size_t bytes0 = lp_memory_in_use();
    double want;
    CHECK_MSG(run_stage(st, s) == LP_OK, "stage %s: %s", st->name, lp_last_error());
    want = s->result;
    n = lp_alloc_total_count() - total0;
    CHECK_MSG(lp_alloc_live_count() == blocks0, "stage %s leaks", st->name);
    for (long kth = 1; kth <= n && !lpt_failed(); kth++) {
        int rc;
        lp_clear_error();
        lp_debug_fail_alloc_after(kth);
        rc = run_stage(st, s);
        lp_debug_fail_alloc_after(0);
        CHECK_MSG(rc != LP_OK, "stage %s: allocation %ld of %ld failed unnoticed",
                  st->name, kth, n);
        CHECK_MSG(rc == LP_OK || lp_last_error()[0] != '\0',
                  "stage %s: allocation %ld of %ld: %s without a message", st->name,
                  kth, n, lp_status_name(rc));
        CHECK_MSG(lp_alloc_live_count() == blocks0 && lp_memory_in_use() == bytes0,
                  "stage %s: allocation %ld of %ld failed (%s): %ld blocks, %zd bytes "
                  "leaked", st->name, kth, n, lp_last_error(),
                  lp_alloc_live_count() - blocks0,
                  (ssize_t)(lp_memory_in_use() - bytes0));
    }
    /* the model is still good after all those failures */
    CHECK_MSG(run_stage(st, s) == LP_OK && s->result == want,
              "stage %s: after the failures: %s (result %.9g, want %.9g)", st->name,
              lp_last_error(), s->result, want);
    return n;
}

static int job_setup(job_state *s)
{
    const lp_model_info *in;
    memset(s, 0, sizeof *s);
    if (lp_model_load(&s->m, lpt_path(JOB_MODEL)) != LP_OK)
        return LP_ENOTFOUND;
    in = lp_model_get_info(s->m);
    s->k = in->out_dim;
    s->per = (size_t)in->in_c * in->in_h * in->in_w;
    s->hw = (size_t)in->in_h * in->in_w;
    s->x = lp_alloc(s->per, sizeof(float));
    s->dx = lp_alloc(s->per, sizeof(float));
    s->logits = lp_alloc((size_t)s->k, sizeof(float));
    s->dlogits = lp_alloc((size_t)s->k, sizeof(float));
    s->map = lp_calloc(s->hw, sizeof(float));
    return (s->x && s->dx && s->logits && s->dlogits && s->map) ? LP_OK : LP_ENOMEM;
}

static void job_free(job_state *s)
{
    lp_model_free(s->m);
    lp_free(s->x);
    lp_free(s->dx);
    lp_free(s->logits);
    lp_free(s->dlogits);
    lp_free(s->map);
    memset(s, 0, sizeof *s);
}

TEST(alloc_fail_every_allocation_of_a_job)
{
    job_state s;
    long blocks0 = lp_alloc_live_count(), total = 0;
    size_t bytes0 = lp_memory_in_use();
    int threads = lp_get_num_threads();
    clock_t t0 = clock();
    if (access(lpt_path(JOB_MODEL), R_OK) != 0) {
        lpt_skip("%s not found", JOB_MODEL);
        return;
    }
    /* one thread: the same allocations in the same order on every run */
    lp_set_num_threads(1);
    CHECK_OK(job_setup(&s));
    for (size_t i = 0; i < sizeof stages / sizeof stages[0] && !lpt_failed(); i++) {
        clock_t ts = clock();
        long n = fail_each_allocation(&stages[i], &s);
        printf("    %-22s %4ld allocations, %.2f s\n", stages[i].name, n,
               (double)(clock() - ts) / CLOCKS_PER_SEC);
        total += n;
        CHECK_MSG(n > 0, "stage %s allocates nothing", stages[i].name);
    }
    job_free(&s);
    lp_set_num_threads(threads);
    CHECK(lp_alloc_live_count() == blocks0 && lp_memory_in_use() == bytes0);
    printf("    %ld allocations failed one by one, %.1f s cpu\n", total,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
}

TEST(alloc_fail_injection_is_one_shot)
{
    void *a, *b, *c;
    long live = lp_alloc_live_count();
    lp_debug_fail_alloc_after(2);
    a = lp_alloc(10, 1);
    b = lp_alloc(10, 1);
    c = lp_alloc(10, 1);
    CHECK(a != NULL && b == NULL && c != NULL);
    CHECK(strstr(lp_last_error(), "injected") != NULL);
    CHECK(lp_alloc_live_count() == live + 2);
    lp_free(a);
    lp_free(c);
    CHECK(lp_alloc_live_count() == live);
}

TEST(alloc_realloc_keeps_contents_and_counts)
{
    long live = lp_alloc_live_count();
    size_t used = lp_memory_in_use();
    int *p = lp_alloc(100, sizeof(int)), *q;
    CHECK(p != NULL);
    if (p == NULL)
        return;
    for (int i = 0; i < 100; i++)
        p[i] = i;
    q = lp_realloc(p, 1000, sizeof(int));
    CHECK(q != NULL && ((uintptr_t)q & 63) == 0);
    if (q != NULL) {
        for (int i = 0; i < 100; i++)
            CHECK(q[i] == i);
        p = q;
    }
    CHECK(lp_alloc_live_count() == live + 1);
    lp_debug_fail_alloc_after(1);
    CHECK(lp_realloc(p, 5000, sizeof(int)) == NULL); /* p is kept */
    q = lp_realloc(p, 10, sizeof(int));
    CHECK(q != NULL && q[9] == 9);
    lp_free(q != NULL ? q : p);
    CHECK(lp_alloc_live_count() == live && lp_memory_in_use() == used);
}

TEST(memory_limit_refuses_before_allocating)
{
    lp_model *m = NULL;
    long live = lp_alloc_live_count();
    size_t used = lp_memory_in_use();
    if (access(lpt_path(JOB_MODEL), R_OK) != 0) {
        lpt_skip("%s not found", JOB_MODEL);
        return;
    }
    /* the weight file (1.1 MB) does not fit in 256 KB */
    lp_set_memory_limit(used + ((size_t)256 << 10));
    CHECK(lp_model_load(&m, lpt_path(JOB_MODEL)) == LP_ERANGE);
    CHECK_MSG(strstr(lp_last_error(), "resnet20_cifar10.lpw") != NULL &&
                  strstr(lp_last_error(), "more than --max-memory") != NULL,
              "message: %s", lp_last_error());
    CHECK(lp_memory_limit_refused());
    CHECK(lp_alloc_live_count() == live && lp_memory_in_use() == used);
    /* the model fits in 8 MB, a forward pass of 512 images does not */
    lp_set_memory_limit(used + ((size_t)8 << 20));
    CHECK_OK(lp_model_load(&m, lpt_path(JOB_MODEL)));
    if (m != NULL) {
        float *x = lp_calloc((size_t)512 * 3 * 32 * 32, sizeof(float));
        float y[10];
        if (x != NULL) {
            CHECK(lp_model_forward(m, x, 512, NULL, 0) == LP_ERANGE);
            CHECK_MSG(strstr(lp_last_error(), "a forward pass of 512 images needs") != NULL,
                      "message: %s", lp_last_error());
            CHECK_OK(lp_model_forward(m, x, 1, y, 0));
            CHECK_OK(lp_model_forward(m, x, 1, y, LP_RUN_GRAD));
        }
        lp_free(x);
        lp_model_free(m);
    }
    /* a plain allocation over the limit */
    CHECK(lp_alloc((size_t)16 << 20, 1) == NULL);
    CHECK(strstr(lp_last_error(), "more than --max-memory") != NULL);
    CHECK(lp_memory_check((size_t)1 << 30, "a test") == LP_ERANGE);
    lp_set_memory_limit(0);
    CHECK(lp_memory_limit() == SIZE_MAX);
    CHECK_OK(lp_memory_check((size_t)1 << 40, "no limit"));
    CHECK(lp_alloc_live_count() == live && lp_memory_in_use() == used);
}
