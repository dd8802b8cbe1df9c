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
 * with tRNS, 16-bit samples reduced to their high byte as Pillow does,
 * sub-byte grey scaled to 0..255); JPEG 1 (grey) or 3 (RGB, YCbCr
 * converted as libjpeg does); BMP 3 or 4; PGM 1, PPM 3. */
int lp_png_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_jpeg_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_bmp_decode(lp_image *img, const uint8_t *data, size_t size);
int lp_pnm_decode(lp_image *img, const uint8_t *data, size_t size);

/* zlib stream (RFC 1950/1951) inflate with checked bounds: decompresses
 * into out[out_cap]; *out_len receives the size. LP_EFORMAT on corrupt
 * data or if the output would exceed out_cap. */
int lp_inflate_zlib(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *in, size_t in_len);

/* Write an 8-bit PNG (channels 1, 3 or 4) to `path`, atomically: the data
 * goes to a temporary file in the same directory that is renamed over
 * `path` only when complete. */
int lp_png_write(const char *path, const uint8_t *pixels, int width,
                 int height, int channels);

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

#ifdef __cplusplus
}
#endif

#endif /* LOUPE_FORMATS_H */
