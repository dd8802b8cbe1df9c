/*
 * golden.h — reader for the PyTorch golden files in tests/golden/ (*.bin)
 * (written by tests/gen_golden.py; the format is described in
 * tests/golden/README.md).
 *
 *   lpg_file f;
 *   if (lpg_load(&f, "tests/golden/conv2d.bin") != LP_OK) return;
 *   for (int i = 0; i < lpg_case_count(&f); i++) {
 *       const char *cs = lpg_case_name(&f, i);
 *       const int32_t *p = lpg_i32(&f, cs, "params", 15);
 *       const float *x = lpg_f32(&f, cs, "x", count);
 *       const double *want = lpg_f64(&f, cs, "out", count);
 *       ...
 *   }
 *   lpg_free(&f);
 *
 * Every failure (missing or malformed file, missing tensor, wrong type or
 * size) is recorded as a failing CHECK of the running test with the path
 * and the tensor's name, and the function returns an error / NULL.
 */
#ifndef LOUPE_GOLDEN_H
#define LOUPE_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define LPG_MAX_NAME 255
#define LPG_MAX_DIMS 8

typedef enum { LPG_F32 = 1, LPG_F64 = 2, LPG_I32 = 3 } lpg_dtype;

typedef struct {
    char name[LPG_MAX_NAME + 1]; /* "<case>/<tensor>" */
    int dtype;                   /* lpg_dtype */
    int ndim;                    /* 0 for a scalar */
    int dims[LPG_MAX_DIMS];
    size_t count;                /* product of dims (1 for a scalar) */
    void *data;                  /* host byte order, suitably aligned */
} lpg_tensor;

typedef struct {
    char path[512];              /* as given to lpg_load, for messages */
    int count;
    lpg_tensor *tensors;
    int n_cases;
    char (*case_names)[LPG_MAX_NAME + 1]; /* n_cases names */
} lpg_file;

/* Read `relative` (resolved with lpt_path, i.e. against $LOUPE_ROOT).
 * Returns LP_OK, or fails the running test and returns an LP_E* code;
 * *f is then empty (lpg_free is still allowed). */
int lpg_load(lpg_file *f, const char *relative);
/* Parse an in-memory image of a golden file (what lpg_load does after
 * reading). Does NOT fail the running test: returns LP_OK or LP_EFORMAT
 * with the reason in lp_last_error(). `path` is used for messages. */
int lpg_parse(lpg_file *f, const unsigned char *bytes, size_t len,
              const char *path);
void lpg_free(lpg_file *f);

/* Cases, in file order: every case starts with a "<case>/params" record. */
int lpg_case_count(const lpg_file *f);
const char *lpg_case_name(const lpg_file *f, int i);

/* The tensor "<case>/<tensor>" or NULL (no failure recorded). */
const lpg_tensor *lpg_find(const lpg_file *f, const char *case_name,
                           const char *tensor);
/* Typed access: fails the running test and returns NULL when the tensor
 * is missing, has another type, or (count != 0) has another element
 * count. */
const float *lpg_f32(const lpg_file *f, const char *case_name,
                     const char *tensor, size_t count);
const double *lpg_f64(const lpg_file *f, const char *case_name,
                      const char *tensor, size_t count);
const int32_t *lpg_i32(const lpg_file *f, const char *case_name,
                       const char *tensor, size_t count);

#endif /* LOUPE_GOLDEN_H */
