/*
 * fuzz_lpw.c — fuzz harness for the .lpw weight-file reader
 * (formats/lpw.c) and the model builder behind it (nn/): a file that
 * parses must either build or be refused with an error, and a model that
 * builds must answer questions about its layers and, when it is small,
 * run a forward and a backward pass without a sanitizer report.
 *
 * The header, metadata and index CRCs are recomputed over the input
 * before it is parsed (an attacker can do the same, and otherwise almost
 * every mutation would stop at the first CRC). Payload CRCs are checked
 * separately and their result ignored, so damaged payloads still build.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

/* Forward only when sum(activations) x params stays below this (an
 * upper bound on the multiply-adds of the pass). */
#define LPW_FUZZ_MAX_WORK 2e7
#define LPW_FUZZ_MAX_ACTIVATIONS 200000.0

static uint64_t rd(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the CRCs that the reader checks before the payloads
 * (docs/FORMAT.md header fields 84, 88 and 124). */
static void repair_crcs(uint8_t *buf, size_t size)
{
    uint64_t meta_off, meta_size, index_off, index_bytes;
    if (size < 128)
        return;
    meta_off = rd(buf + 32, 8);
    meta_size = rd(buf + 40, 8);
    index_off = rd(buf + 48, 8);
    index_bytes = rd(buf + 56, 4) * 256;
    if (meta_off <= size && meta_size <= size - meta_off)
        wr32(buf + 84, lp_crc32c(0, buf + meta_off, (size_t)meta_size));
    if (index_off <= size && index_bytes <= size - index_off)
        wr32(buf + 88, lp_crc32c(0, buf + index_off, (size_t)index_bytes));
    wr32(buf + 124, lp_crc32c(0, buf, 124));
}

/* Read every metadata value through the typed accessors. */
static void walk_metadata(const lp_lpw *f)
{
    char small[4], big[4096];
    int64_t iv[16];
    double dv[16];
    for (int i = 0; i < lp_lpw_meta_count(f); i++) {
        const char *key = NULL;
        lp_meta_type type;
        int count = 0;
        double d;
        if (lp_lpw_meta_key(f, i, &key, &type) != LP_OK || key == NULL)
            fuzz_fail("lp_lpw_meta_key failed for an index in range");
        lp_lpw_get_i64(f, key, iv);
        lp_lpw_get_f64(f, key, &d);
        lp_lpw_get_str(f, key, small, sizeof small);
        lp_lpw_get_str(f, key, big, sizeof big);
        lp_lpw_get_i64_arr(f, key, iv, 16, &count);
        lp_lpw_get_f64_arr(f, key, dv, 16, &count);
        if (lp_lpw_get_str_arr_count(f, key, &count) == LP_OK)
            for (int k = 0; k < count && k < 64; k++) {
                lp_lpw_get_str_arr_item(f, key, k, small, sizeof small);
                lp_lpw_get_str_arr_item(f, key, k, big, sizeof big);
            }
    }
}

static void walk_tensors(const lp_lpw *f)
{
    for (int i = 0; i < lp_lpw_tensor_count(f); i++) {
        const lp_lpw_tensor *t = lp_lpw_tensor_at(f, i);
        if (t == NULL || t->ndim < 1 || t->ndim > LP_LPW_MAX_DIMS || t->count < 1)
            fuzz_fail("an opened file has a malformed tensor entry");
        if (memchr(t->name, '\0', sizeof t->name) == NULL)
            fuzz_fail("a tensor name is not NUL-terminated");
        if (lp_lpw_find(f, t->name) != t)
            fuzz_fail("lp_lpw_find does not find a listed tensor");
        fuzz_touch(t->data, (size_t)t->count * sizeof(float));
    }
}

static int small_enough(const lp_model *m)
{
    double acts = 0.0;
    for (int l = 0; l < lp_model_layer_count(m); l++) {
        int dims[4] = {0, 0, 0, 0};
        int nd = lp_model_layer_shape(m, l, dims);
        double n = 1.0;
        if (nd < 1 || nd > 4)
            fuzz_fail("a layer has an impossible rank");
        for (int d = 0; d < nd; d++)
            n *= dims[d];
        acts += n;
    }
    return acts <= LPW_FUZZ_MAX_ACTIVATIONS &&
           acts * (double)(lp_model_get_info(m)->num_params + 1) <= LPW_FUZZ_MAX_WORK;
}

static void walk_layers(const lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    for (int l = 0; l < lp_model_layer_count(m); l++) {
        const char *name = lp_model_layer_name(m, l);
        if (name == NULL || lp_model_layer_kind(m, l) == NULL)
            fuzz_fail("a layer has no name or kind");
        if (lp_model_find_layer(m, name) < 0)
            fuzz_fail("lp_model_find_layer does not find a layer by its name");
        for (int k = 0; lp_model_layer_alias(m, l, k) != NULL && k < 16; k++)
            ;
    }
    for (int k = 0; k < in->num_classes && k < 64; k++)
        lp_model_label(m, k);
}

/* A 7 x 5 RGB image through the model's own preprocessing, when the
 * configured resize and crop keep it small. */
static void try_preprocess(const lp_model *m, float *x)
{
    const lp_model_info *in = lp_model_get_info(m);
    uint8_t px[7 * 5 * 3];
    lp_image img = {7, 5, 3, px};
    if (in->resize > 256 || in->crop > 256)
        return;
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 37);
    lp_model_prepare_image(m, &img, x);
}

static void run_model(lp_model *m)
{
    const lp_model_info *in = lp_model_get_info(m);
    size_t n_in = (size_t)in->in_c * in->in_h * in->in_w;
    float *x = calloc(n_in, sizeof *x), *dx = calloc(n_in, sizeof *dx);
    float *y = calloc((size_t)in->out_dim, sizeof *y);
    float *dy = calloc((size_t)in->out_dim, sizeof *dy);
    if (x && dx && y && dy) {
        try_preprocess(m, x);
        for (size_t i = 0; i < n_in; i++)
            x[i] = (float)((int)(i % 7) - 3) * 0.25f;
        for (int k = 0; k < in->out_dim; k++)
            dy[k] = 1.0f;
        if (lp_model_forward(m, x, 1, y, LP_RUN_GRAD) == LP_OK)
            lp_model_backward(m, dy, dx);
        lp_model_release(m);
    }
    free(x);
    free(dx);
    free(y);
    free(dy);
}

static void build_and_run(lp_lpw *f)
{
    lp_model *m = NULL;
    lp_tensor_spec *specs = NULL;
    char groups[16][96];
    int count = 0;
    if (lp_model_expected_tensors(f, &specs, &count) == LP_OK)
        lp_free(specs);
    lp_lpw_param_groups(f, groups, 16, &count);
    if (lp_model_from_lpw(&m, f) != LP_OK) {
        lp_lpw_close(f);
        return;
    }
    if (lp_model_get_info(m)->out_dim < 1)
        fuzz_fail("a built model has no output");
    walk_layers(m);
    if (small_enough(m))
        run_model(m);
    lp_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    lp_lpw *f = NULL;
    if (buf == NULL)
        return 0;
    if (size)
        memcpy(buf, data, size);
    repair_crcs(buf, size);
    if (lp_lpw_open_memory(&f, buf, size, "fuzz.lpw", 0) == LP_OK) {
        walk_metadata(f);
        walk_tensors(f);
        lp_lpw_verify(f);
        build_and_run(f);
    }
    free(buf);
    return 0;
}
