/*
 * loupe_formats.h — image codecs and array files (formats/).
 * Included by loupe.h; conventions are loupe.h's.
 *
 * Every decoder validates its input completely: a truncated, corrupt or
 * malicious file gives LP_EFORMAT (or LP_ERANGE for sizes beyond the limits
 * below, LP_ENOMEM when memory runs out) with a one-line message in
 * lp_last_error(), never a crash, and leaves *img empty.
 */
#ifndef LOUPE_FORMATS_H
#define LOUPE_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits enforced before any pixel buffer is allocated. */
#define LP_IMAGE_MAX_SIDE 65535
#define LP_IMAGE_MAX_PIXELS ((size_t)1 << 28) /* 268 M pixels */

/* A decoded 8-bit image, row-major, channels interleaved:
 * 1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA. */
typedef struct {
    int width, height, channels;
    uint8_t *pixels; /* width*height*channels bytes, lp_alloc'ed */
} lp_image;

void lp_image_free(lp_image *img);

/* Decode by sniffing the signature (PNG, JPEG, BMP, PPM/PGM). */
int lp_image_decode(lp_image *img, const uint8_t *data, size_t size);
/* Read a whole file and decode it; errors name the path. */
int lp_image_load(lp_image *img, const char *path);

/* Individual decoders, same contract as lp_image_decode. Output channels
 * follow the file: PNG grey/grey+alpha/RGB/RGBA (palette -> RGB or RGBA
 * with tRNS, 16-bit samples reduced to their high byte as Pillow does --
 * except 16-bit grey, which Pillow clamps to 255 -- sub-byte grey scaled
 * to 0..255); JPEG 1 (grey) or 3 (RGB, YCbCr converted as libjpeg does);
 * BMP 3 or 4; PBM/PGM 1, PPM 3. Pixel values equal Pillow 9.4's
 * Image.open(f).convert() to the same channel count (details at the top
 * of each formats/ file). */
int lp_png_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_jpeg_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_bmp_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_pnm_decode(lp_image *img, const uint8_t *data, size_t size);

/* zlib stream (RFC 1950/1951) inflate with checked bounds: decompresses
 * into out[out_cap]; *out_len receives the size. LP_EFORMAT on corrupt
 * data or if the output would exceed out_cap. */
int lp_inflate_zlib(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *in, size_t in_len);
/* The checksums of zlib streams and PNG chunks (formats/inflate.c), with
 * zlib's conventions: lp_adler32 starts from 1, lp_crc32 (polynomial
 * 0xEDB88320, not the Castagnoli one) from 0; pass the previous result to
 * continue over more data. */
uint32_t lp_adler32(uint32_t adler, const void *data, size_t size);
uint32_t lp_crc32(uint32_t crc, const void *data, size_t size);

/* Write an 8-bit PNG (channels 1, 3 or 4; 2 = grey+alpha also works) to
 * `path`, atomically: the data goes to a temporary file in the same
 * directory that is renamed over `path` only when complete. */
int lp_png_write(const char *path, const uint8_t *pixels, int width,
                 int height, int channels);
/* The same PNG file in memory: *out (lp_alloc'ed, *size bytes) holds
 * exactly the bytes lp_png_write would write. */
int lp_png_encode(uint8_t **out, size_t *size, const uint8_t *pixels,
                  int width, int height, int channels);

/* ---- NPY arrays (NumPy format 1.0/2.0, C order, little-endian) ---- */

typedef enum { LP_DTYPE_F32 = 0, LP_DTYPE_U8 = 1 } lp_dtype;

#define LP_NPY_MAX_DIMS 8

typedef struct {
    lp_dtype dtype;
    int ndim;
    int64_t shape[LP_NPY_MAX_DIMS];
    void *data; /* lp_alloc'ed; float* for F32, uint8_t* for U8 */
} lp_npy;

void lp_npy_free(lp_npy *a);
/* Parse an .npy file in memory / on disk ('<f4', '|u1'; also '<f8' and
 * '>f4' converted to float32; fortran_order must be False). */
int lp_npy_decode(lp_npy *a, const uint8_t *data, size_t size);
int lp_npy_load(lp_npy *a, const char *path);
/* Write atomically (temporary file + rename). */
int lp_npy_save(const char *path, lp_dtype dtype, const void *data,
                int ndim, const int64_t *shape);

/* Read a whole file into memory (lp_alloc'ed), refusing files larger than
 * max_bytes; errors name the path. */
int lp_read_file(const char *path, size_t max_bytes, uint8_t **data,
                 size_t *size);
/* Write a buffer atomically (temporary file in the same directory, fsync,
 * rename); on any failure nothing is left at `path` or beside it. */
int lp_write_file_atomic(const char *path, const void *data, size_t size);


/* ---- .lpw weight files (formats/lpw.c; spec in docs/FORMAT.md) ---- */

#define LP_LPW_MAX_DIMS 8
#define LP_LPW_NAME_MAX 96

/* Metadata value types (docs/FORMAT.md). */
typedef enum {
    LP_META_I64 = 1,
    LP_META_F64 = 2,
    LP_META_STR = 3,
    LP_META_I64_ARR = 4,
    LP_META_F64_ARR = 5,
    LP_META_STR_ARR = 6
} lp_meta_type;

/* Tensor storage types in the file. Payloads are always exposed as float32. */
typedef enum { LP_LPW_F32 = 0, LP_LPW_F16 = 1, LP_LPW_BF16 = 2 } lp_lpw_dtype;

typedef struct {
    char name[LP_LPW_NAME_MAX];
    lp_lpw_dtype dtype;       /* storage type in the file */
    int ndim;
    int64_t shape[LP_LPW_MAX_DIMS];
    int64_t count;            /* product of shape */
    const float *data;        /* count float32 values, 64-byte aligned */
    uint64_t file_offset;     /* absolute offset of the payload in the file */
    uint32_t crc32c;
} lp_lpw_tensor;

typedef struct lp_lpw lp_lpw; /* an opened, fully validated weight file */

/* Open and validate (docs/FORMAT.md "Validation" steps 1-5; step 6, the
 * payload CRCs, too when verify_crc != 0). Reads the file with fread into
 * one aligned buffer. Errors: one line naming the file and what is wrong. */
int lp_lpw_open(lp_lpw **out, const char *path, int verify_crc);
/* Same from memory (the bytes are copied). `name` is used in messages. */
int lp_lpw_open_memory(lp_lpw **out, const uint8_t *data, size_t size,
                       const char *name, int verify_crc);
void lp_lpw_close(lp_lpw *f);
/* Check every payload CRC; LP_EFORMAT naming the first bad tensor. */
int lp_lpw_verify(const lp_lpw *f);

int lp_lpw_version(const lp_lpw *f, int *major, int *minor);
int lp_lpw_tensor_count(const lp_lpw *f);
const lp_lpw_tensor *lp_lpw_tensor_at(const lp_lpw *f, int i);
/* NULL when absent (no error set). */
const lp_lpw_tensor *lp_lpw_find(const lp_lpw *f, const char *name);

/* Metadata. Accessors return LP_ENOTFOUND for a missing key and
 * LP_EFORMAT when the key holds another type. Strings are not
 * NUL-terminated in the file; these copy into a caller buffer and fail
 * with LP_ERANGE when it is too small. */
int lp_lpw_meta_count(const lp_lpw *f);
int lp_lpw_meta_key(const lp_lpw *f, int i, const char **key,
                    lp_meta_type *type); /* key is NUL-terminated */
int lp_lpw_get_i64(const lp_lpw *f, const char *key, int64_t *value);
int lp_lpw_get_f64(const lp_lpw *f, const char *key, double *value);
int lp_lpw_get_str(const lp_lpw *f, const char *key, char *buf, size_t cap);
/* Arrays: *count receives the number of elements; at most cap are copied
 * (LP_ERANGE if more exist). */
int lp_lpw_get_i64_arr(const lp_lpw *f, const char *key, int64_t *values,
                       int cap, int *count);
int lp_lpw_get_f64_arr(const lp_lpw *f, const char *key, double *values,
                       int cap, int *count);
int lp_lpw_get_str_arr_count(const lp_lpw *f, const char *key, int *count);
int lp_lpw_get_str_arr_item(const lp_lpw *f, const char *key, int index,
                            char *buf, size_t cap);

/* Building a file in C (tests, tools): set metadata, add float32 tensors
 * in order, then serialise. Data is copied. */
typedef struct lp_lpw_builder lp_lpw_builder;
lp_lpw_builder *lp_lpw_builder_new(void);
void lp_lpw_builder_free(lp_lpw_builder *b);
int lp_lpw_builder_set_i64(lp_lpw_builder *b, const char *key, int64_t v);
int lp_lpw_builder_set_f64(lp_lpw_builder *b, const char *key, double v);
int lp_lpw_builder_set_str(lp_lpw_builder *b, const char *key,
                           const char *v);
int lp_lpw_builder_set_i64_arr(lp_lpw_builder *b, const char *key,
                               const int64_t *v, int count);
int lp_lpw_builder_set_f64_arr(lp_lpw_builder *b, const char *key,
                               const double *v, int count);
int lp_lpw_builder_set_str_arr(lp_lpw_builder *b, const char *key,
                               const char *const *v, int count);
int lp_lpw_builder_add_tensor(lp_lpw_builder *b, const char *name, int ndim,
                              const int64_t *shape, const float *data);
/* Serialise into a new lp_alloc'ed buffer (free with lp_free). */
int lp_lpw_builder_finish(lp_lpw_builder *b, uint8_t **data, size_t *size);
/* Serialise and write atomically. */
int lp_lpw_builder_write(lp_lpw_builder *b, const char *path);

/* CRC32C (Castagnoli), for the format and for tests. */
uint32_t lp_crc32c(uint32_t crc, const void *data, size_t size);

/* ---- datasets: CIFAR-10 binary, MNIST IDX (formats/dataset.c) ---- */

/* n images of h x w x c 8-bit pixels (interleaved, like lp_image) with
 * one label each. */
typedef struct {
    int n, width, height, channels;
    uint8_t *pixels;  /* n * height * width * channels */
    uint8_t *labels;  /* n */
} lp_dataset;

void lp_dataset_free(lp_dataset *d);
/* CIFAR-10 binary batch: records of 1 label byte + 3072 planar RGB bytes.
 * Reads at most `limit` records (0 = all); the file size must be a whole
 * number of records. */
int lp_cifar10_load(lp_dataset *d, const char *path, int limit);
/* MNIST IDX pair (big-endian headers, magic 0x803 and 0x801). */
int lp_mnist_load(lp_dataset *d, const char *images_path,
                  const char *labels_path, int limit);
/* The same from memory (the bytes are copied; messages say "CIFAR-10
 * data" / "MNIST images" / "MNIST labels" instead of a path). */
int lp_cifar10_parse(lp_dataset *d, const uint8_t *data, size_t size, int limit);
int lp_mnist_parse(lp_dataset *d, const uint8_t *images, size_t images_size,
                   const uint8_t *labels, size_t labels_size, int limit);
/* A view of image i (pixels point into the dataset; do not free). */
lp_image lp_dataset_image(const lp_dataset *d, int i);

/* ---- labels files (formats/labels.c) ---- */

/* "PATH LABEL" per line (LABEL = the last field: a class index or name;
 * '#' comments and blank lines skipped). Strings point into `pool`. */
typedef struct {
    int n;
    char **path, **label;
    char *pool;
} lp_labels;

int lp_labels_parse(lp_labels *l, const char *text, size_t size, const char *name);
int lp_labels_load(lp_labels *l, const char *path);
void lp_labels_free(lp_labels *l);

#ifdef __cplusplus
}
#endif

#endif /* LOUPE_FORMATS_H */
