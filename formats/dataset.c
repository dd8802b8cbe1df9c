/*
 * dataset.c — readers for the two standard small test sets:
 * CIFAR-10's binary batches and MNIST's IDX files. Both are trusted no
 * more than any other input: sizes are checked against the file before
 * anything is allocated.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIFAR_RECORD (1 + 3 * 32 * 32)
#define DATASET_MAX_BYTES ((size_t)1 << 32) /* 4 GiB */

void lp_dataset_free(lp_dataset *d)
{
    if (d == NULL)
        return;
    lp_free(d->pixels);
    lp_free(d->labels);
    memset(d, 0, sizeof *d);
}

static int dataset_alloc(lp_dataset *d, int n, int w, int h, int c)
{
    d->n = n;
    d->width = w;
    d->height = h;
    d->channels = c;
    d->pixels = lp_alloc((size_t)n * w * h * c, 1);
    d->labels = lp_alloc((size_t)n, 1);
    if (d->pixels == NULL || d->labels == NULL) {
        lp_dataset_free(d);
        return LP_ENOMEM;
    }
    return LP_OK;
}

/* CIFAR-10 records from memory; `name` is used in messages. */
static int cifar10_parse_named(lp_dataset *d, const uint8_t *data, size_t size,
                               int limit, const char *name)
{
    int n, rc;
    if (size == 0 || size % CIFAR_RECORD != 0 || size / CIFAR_RECORD > (1u << 30))
        return lp_set_error(LP_EFORMAT,
                            "%s: %zu bytes is not a whole number of CIFAR-10 "
                            "records (%d bytes each)", name, size, CIFAR_RECORD);
    n = (int)(size / CIFAR_RECORD);
    if (limit > 0 && limit < n)
        n = limit;
    rc = dataset_alloc(d, n, 32, 32, 3);
    for (int i = 0; i < n && rc == LP_OK; i++) {
        const uint8_t *rec = data + (size_t)i * CIFAR_RECORD;
        uint8_t *px = d->pixels + (size_t)i * 3072;
        if (rec[0] > 9) {
            lp_dataset_free(d);
            rc = lp_set_error(LP_EFORMAT, "%s: record %d has label %d (not 0..9)",
                              name, i, rec[0]);
            break;
        }
        d->labels[i] = rec[0];
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++)
                px[p * 3 + c] = rec[1 + c * 1024 + p];
    }
    return rc;
}

int lp_cifar10_parse(lp_dataset *d, const uint8_t *data, size_t size, int limit)
{
    if (d == NULL || (data == NULL && size > 0) || limit < 0)
        return lp_set_error(LP_EINVAL, "lp_cifar10_parse: bad arguments");
    memset(d, 0, sizeof *d);
    return cifar10_parse_named(d, data, size, limit, "CIFAR-10 data");
}

int lp_cifar10_load(lp_dataset *d, const char *path, int limit)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc;
    if (d == NULL || path == NULL || limit < 0)
        return lp_set_error(LP_EINVAL, "lp_cifar10_load: bad arguments");
    memset(d, 0, sizeof *d);
    LP_TRY(lp_read_file(path, DATASET_MAX_BYTES, &data, &size));
    rc = cifar10_parse_named(d, data, size, limit, path);
    lp_free(data);
    return rc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An MNIST IDX pair from memory; the names are used in messages. */
static int mnist_parse_named(lp_dataset *d, const uint8_t *img, size_t isize,
                             const uint8_t *lab, size_t lsize, int limit,
                             const char *iname, const char *lname)
{
    uint32_t n, rows, cols;
    int rc = LP_EFORMAT;
    if (isize < 16 || be32(img) != 0x803)
        lp_set_error(rc, "%s: not an MNIST IDX image file (magic 0x803)", iname);
    else if (lsize < 8 || be32(lab) != 0x801)
        lp_set_error(rc, "%s: not an MNIST IDX label file (magic 0x801)", lname);
    else if ((n = be32(img + 4)) != be32(lab + 4) || n == 0 || n > (1u << 30))
        lp_set_error(rc, "%s: %u images but %s has %u labels", iname,
                     be32(img + 4), lname, be32(lab + 4));
    else if ((rows = be32(img + 8)) == 0 || (cols = be32(img + 12)) == 0 ||
             rows > 4096 || cols > 4096)
        lp_set_error(rc, "%s: bad image size %ux%u", iname, be32(img + 8),
                     be32(img + 12));
    else if (isize != 16 + (size_t)n * rows * cols || lsize != 8 + (size_t)n)
        lp_set_error(rc, "%s: file sizes do not match %u images of %ux%u",
                     iname, n, rows, cols);
    else {
        int count = (limit > 0 && (uint32_t)limit < n) ? limit : (int)n;
        rc = dataset_alloc(d, count, (int)cols, (int)rows, 1);
        if (rc == LP_OK) {
            memcpy(d->pixels, img + 16, (size_t)count * rows * cols);
            memcpy(d->labels, lab + 8, (size_t)count);
        }
    }
    return rc;
}

int lp_mnist_parse(lp_dataset *d, const uint8_t *images, size_t images_size,
                   const uint8_t *labels, size_t labels_size, int limit)
{
    if (d == NULL || (images == NULL && images_size > 0) ||
        (labels == NULL && labels_size > 0) || limit < 0)
        return lp_set_error(LP_EINVAL, "lp_mnist_parse: bad arguments");
    memset(d, 0, sizeof *d);
    return mnist_parse_named(d, images, images_size, labels, labels_size, limit,
                             "MNIST images", "MNIST labels");
}

int lp_mnist_load(lp_dataset *d, const char *images_path,
                  const char *labels_path, int limit)
{
    uint8_t *img = NULL, *lab = NULL;
    size_t isize = 0, lsize = 0;
    int rc;
    if (d == NULL || images_path == NULL || labels_path == NULL || limit < 0)
        return lp_set_error(LP_EINVAL, "lp_mnist_load: bad arguments");
    memset(d, 0, sizeof *d);
    LP_TRY(lp_read_file(images_path, DATASET_MAX_BYTES, &img, &isize));
    rc = lp_read_file(labels_path, DATASET_MAX_BYTES, &lab, &lsize);
    if (rc == LP_OK)
        rc = mnist_parse_named(d, img, isize, lab, lsize, limit, images_path,
                               labels_path);
    lp_free(img);
    lp_free(lab);
    return rc;
}

lp_image lp_dataset_image(const lp_dataset *d, int i)
{
    lp_image im = {0, 0, 0, NULL};
    if (d == NULL || i < 0 || i >= d->n)
        return im;
    im.width = d->width;
    im.height = d->height;
    im.channels = d->channels;
    im.pixels = d->pixels + (size_t)i * d->width * d->height * d->channels;
    return im;
}
