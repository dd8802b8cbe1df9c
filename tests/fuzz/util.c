/*
 * util.c — helpers shared by the fuzz harnesses (fuzz.h): invariant
 * failures, reading whole buffers under the sanitizers, and small random
 * networks written as .lpw files in memory.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    abort();
}

uint32_t fuzz_touch(const void *p, size_t size)
{
    const volatile uint8_t *b = p;
    uint32_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum += b[i];
    return sum;
}

void fuzz_check_image(const lp_image *img)
{
    if (img->width < 1 || img->height < 1 || img->width > LP_IMAGE_MAX_SIDE ||
        img->height > LP_IMAGE_MAX_SIDE || img->channels < 1 || img->channels > 4)
        fuzz_fail("decoded image has impossible dimensions");
    if ((size_t)img->width * img->height > LP_IMAGE_MAX_PIXELS)
        fuzz_fail("decoded image exceeds LP_IMAGE_MAX_PIXELS");
    if (img->pixels == NULL)
        fuzz_fail("decoded image has no pixels");
    fuzz_touch(img->pixels, (size_t)img->width * img->height * img->channels);
}

/* ---- checksum repair ------------------------------------------------------ */

#define REPAIR_MAX_INFLATED ((size_t)1 << 20)

static uint32_t rd32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32be(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

int fuzz_repair_adler(uint8_t *z, size_t size)
{
    uint8_t *out = malloc(REPAIR_MAX_INFLATED);
    const char *msg, *at;
    unsigned computed;
    size_t len = 0;
    int repaired = 0;
    if (out == NULL || size < 6)
        goto done;
    if (lp_inflate_zlib(out, REPAIR_MAX_INFLATED, &len, z, size) == LP_OK)
        goto done;
    /* "zlib: Adler-32 mismatch (stored 0x..., computed 0x...)" */
    msg = lp_last_error();
    at = strstr(msg, "Adler-32 mismatch");
    if (at != NULL && (at = strstr(at, "computed 0x")) != NULL &&
        sscanf(at, "computed 0x%x", &computed) == 1) {
        wr32be(z + size - 4, computed);
        repaired = lp_inflate_zlib(out, REPAIR_MAX_INFLATED, &len, z, size) == LP_OK;
    }
done:
    free(out);
    return repaired;
}

typedef struct {
    size_t data, len; /* offset of a chunk's data and its length */
} png_span;

/* The chunks of a PNG file, up to the first one that does not fit. */
static int png_chunks(const uint8_t *png, size_t size, png_span *spans, int cap)
{
    size_t pos = 8;
    int n = 0;
    while (n < cap && pos + 12 <= size) {
        size_t len = rd32be(png + pos);
        if (len > size - pos - 12)
            break;
        spans[n].data = pos + 8;
        spans[n++].len = len;
        pos += 12 + len;
    }
    return n;
}

/* Copy between the IDAT chunks and one contiguous stream. */
static size_t png_idat_copy(uint8_t *png, const png_span *spans, int n, uint8_t *z,
                            int to_png)
{
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *data = png + spans[i].data;
        if (memcmp(data - 4, "IDAT", 4) != 0)
            continue;
        if (z != NULL && to_png)
            memcpy(data, z + at, spans[i].len);
        else if (z != NULL)
            memcpy(z + at, data, spans[i].len);
        at += spans[i].len;
    }
    return at;
}

void fuzz_repair_png(uint8_t *png, size_t size)
{
    enum { MAX_CHUNKS = 256 };
    png_span spans[MAX_CHUNKS] = {{0, 0}};
    int n;
    size_t zlen;
    uint8_t *z;
    if (size < 8 || memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0)
        return;
    n = png_chunks(png, size, spans, MAX_CHUNKS);
    zlen = png_idat_copy(png, spans, n, NULL, 0);
    if (zlen > 0 && (z = malloc(zlen)) != NULL) {
        png_idat_copy(png, spans, n, z, 0);
        if (fuzz_repair_adler(z, zlen))
            png_idat_copy(png, spans, n, z, 1);
        free(z);
    }
    for (int i = 0; i < n; i++) /* CRC of type + data */
        wr32be(png + spans[i].data + spans[i].len,
               lp_crc32(0, png + spans[i].data - 4, spans[i].len + 4));
}

/* ---- tiny networks ------------------------------------------------------ */

static void set_input(lp_lpw_builder *b, int c, int h, int w, int classes)
{
    lp_lpw_builder_set_i64(b, "input.channels", c);
    lp_lpw_builder_set_i64(b, "input.height", h);
    lp_lpw_builder_set_i64(b, "input.width", w);
    lp_lpw_builder_set_i64(b, "model.num_classes", classes);
}

static void config_resnet(lp_lpw_builder *b, int bottleneck)
{
    int64_t layers[2] = {1, 2}, planes[2] = {4, 8};
    const char *const labels[3] = {"cat", "dog", "bird"};
    lp_lpw_builder_set_str(b, "general.architecture", "resnet");
    lp_lpw_builder_set_str(b, "general.name", bottleneck ? "tiny_bottleneck" : "tiny_resnet");
    set_input(b, 3, bottleneck ? 17 : 8, bottleneck ? 17 : 8, 3);
    lp_lpw_builder_set_str_arr(b, "model.labels", labels, 3);
    lp_lpw_builder_set_str(b, "resnet.block", bottleneck ? "bottleneck" : "basic");
    lp_lpw_builder_set_i64_arr(b, "resnet.layers", layers, 2);
    lp_lpw_builder_set_i64_arr(b, "resnet.planes", planes, 2);
    lp_lpw_builder_set_str(b, "resnet.stem", bottleneck ? "imagenet" : "cifar");
    lp_lpw_builder_set_i64(b, "resnet.stem_width", 4);
    if (bottleneck)
        lp_lpw_builder_set_i64(b, "resnet.groups", 2);
    lp_lpw_builder_set_str(b, "resnet.shortcut", bottleneck ? "projection" : "option_a");
    lp_lpw_builder_set_f64(b, "resnet.bn_eps", 1e-5);
    lp_lpw_builder_set_str(b, "resnet.fc", bottleneck ? "fc" : "linear");
}

static void config_vit(lp_lpw_builder *b, const char *layout)
{
    double mean[3] = {0.5, 0.5, 0.5}, std[3] = {0.25, 0.25, 0.25};
    int lucid = !strcmp(layout, "lucidrains");
    lp_lpw_builder_set_str(b, "general.architecture", "vit");
    lp_lpw_builder_set_str(b, "general.name", layout);
    lp_lpw_builder_set_str(b, "vit.layout", layout);
    set_input(b, lucid ? 1 : 3, 8, 8, 3);
    if (!lucid) {
        lp_lpw_builder_set_f64_arr(b, "input.mean", mean, 3);
        lp_lpw_builder_set_f64_arr(b, "input.std", std, 3);
    }
    lp_lpw_builder_set_i64(b, "vit.image_size", 8);
    lp_lpw_builder_set_i64(b, "vit.patch_size", 4);
    lp_lpw_builder_set_i64(b, "vit.hidden_size", 8);
    lp_lpw_builder_set_i64(b, "vit.num_layers", 2);
    lp_lpw_builder_set_i64(b, "vit.num_heads", 2);
    lp_lpw_builder_set_i64(b, "vit.mlp_dim", 16);
    lp_lpw_builder_set_f64(b, "vit.ln_eps", 1e-6);
    lp_lpw_builder_set_str(b, "vit.mlp_act", lucid ? "relu" : "gelu_erf");
    lp_lpw_builder_set_i64(b, "vit.qkv_bias", lucid ? 0 : 1);
    lp_lpw_builder_set_str(b, "vit.pool", "token");
    lp_lpw_builder_set_i64(b, "vit.final_norm", lucid ? 0 : 1);
    if (lucid) {
        lp_lpw_builder_set_i64(b, "vit.head_dim", 6);
        lp_lpw_builder_set_i64(b, "vit.head_norm", 1);
    }
}

static int configure(lp_lpw_builder *b, const char *kind)
{
    if (!strcmp(kind, "resnet") || !strcmp(kind, "bottleneck"))
        config_resnet(b, !strcmp(kind, "bottleneck"));
    else if (!strcmp(kind, "vit"))
        config_vit(b, "timm");
    else if (!strcmp(kind, "vit_torchvision"))
        config_vit(b, "torchvision");
    else if (!strcmp(kind, "vit_lucidrains"))
        config_vit(b, "lucidrains");
    else
        return lp_set_error(LP_EINVAL, "fuzz_tiny_model: unknown kind %s", kind);
    return LP_OK;
}

/* The tensors a configuration implies, from a file holding only it. */
static int expected_tensors(const char *kind, lp_tensor_spec **specs, int *count)
{
    lp_lpw_builder *b = lp_lpw_builder_new();
    lp_lpw *f = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    int64_t one = 1;
    float zero = 0.0f;
    int rc = b ? configure(b, kind) : LP_ENOMEM;
    if (rc == LP_OK)
        rc = lp_lpw_builder_add_tensor(b, "dummy", 1, &one, &zero);
    if (rc == LP_OK)
        rc = lp_lpw_builder_finish(b, &bytes, &size);
    if (rc == LP_OK)
        rc = lp_lpw_open_memory(&f, bytes, size, kind, 1);
    if (rc == LP_OK)
        rc = lp_model_expected_tensors(f, specs, count);
    lp_lpw_close(f);
    lp_free(bytes);
    lp_lpw_builder_free(b);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* Deterministic weights: small values, positive variances. */
static void fill(const lp_tensor_spec *s, float *data, size_t count, uint32_t *state)
{
    for (size_t i = 0; i < count; i++) {
        float u;
        *state = *state * 1664525u + 1013904223u;
        u = (float)(*state >> 8) / 16777216.0f - 0.5f; /* [-0.5, 0.5) */
        if (ends_with(s->name, "running_var"))
            data[i] = 1.0f + u;
        else if (s->ndim == 1 && ends_with(s->name, "weight"))
            data[i] = 1.0f + 0.2f * u;
        else
            data[i] = u;
    }
}

static int add_tensors(lp_lpw_builder *b, const lp_tensor_spec *specs, int count)
{
    uint32_t state = 12345;
    int rc = LP_OK;
    for (int i = 0; i < count && rc == LP_OK; i++) {
        size_t n = 1;
        float *data;
        for (int d = 0; d < specs[i].ndim; d++)
            n *= (size_t)specs[i].shape[d];
        data = lp_alloc(n, sizeof *data);
        if (data == NULL)
            return LP_ENOMEM;
        fill(&specs[i], data, n, &state);
        rc = lp_lpw_builder_add_tensor(b, specs[i].name, specs[i].ndim,
                                       specs[i].shape, data);
        lp_free(data);
    }
    return rc;
}

int fuzz_tiny_model(const char *kind, uint8_t **bytes, size_t *size)
{
    lp_tensor_spec *specs = NULL;
    lp_lpw_builder *b = NULL;
    int count = 0;
    int rc = expected_tensors(kind, &specs, &count);
    if (rc == LP_OK && (b = lp_lpw_builder_new()) == NULL)
        rc = LP_ENOMEM;
    if (rc == LP_OK)
        rc = configure(b, kind);
    if (rc == LP_OK)
        rc = add_tensors(b, specs, count);
    if (rc == LP_OK)
        rc = lp_lpw_builder_finish(b, bytes, size);
    lp_lpw_builder_free(b);
    lp_free(specs);
    return rc;
}
