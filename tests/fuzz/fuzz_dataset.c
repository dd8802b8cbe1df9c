/*
 * fuzz_dataset.c — fuzz harness for the data-set readers
 * (formats/dataset.c): CIFAR-10 binary batches and MNIST IDX pairs.
 *
 * Input layout: byte 0 chooses the reader (bit 0: 0 = CIFAR-10,
 * 1 = MNIST) and the record limit (bits 1..7: 0 = all). For CIFAR-10 the
 * rest is the file. For MNIST, bytes 1..4 are the length L of the image
 * file (big-endian, clamped to what is left), then L bytes of image file,
 * then the label file.
 */
#include "fuzz.h"

static void check_dataset(const lp_dataset *d, int limit)
{
    size_t per;
    if (d->n < 1 || (limit > 0 && d->n > limit) || d->width < 1 || d->height < 1 ||
        d->channels < 1 || d->channels > 4)
        fuzz_fail("data set has impossible dimensions");
    per = (size_t)d->width * d->height * d->channels;
    fuzz_touch(d->pixels, per * (size_t)d->n);
    fuzz_touch(d->labels, (size_t)d->n);
    for (int i = 0; i < d->n; i++) {
        lp_image im = lp_dataset_image(d, i);
        if (im.pixels == NULL)
            fuzz_fail("lp_dataset_image returned no pixels for a valid index");
    }
    if (lp_dataset_image(d, d->n).pixels != NULL || lp_dataset_image(d, -1).pixels != NULL)
        fuzz_fail("lp_dataset_image accepted an index out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_dataset d;
    int limit, rc;
    if (size < 1)
        return 0;
    limit = data[0] >> 1;
    if ((data[0] & 1) == 0) {
        rc = lp_cifar10_parse(&d, data + 1, size - 1, limit);
    } else {
        size_t isize;
        if (size < 5)
            return 0;
        isize = (size_t)data[1] << 24 | (size_t)data[2] << 16 | (size_t)data[3] << 8 | data[4];
        if (isize > size - 5)
            isize = size - 5;
        rc = lp_mnist_parse(&d, data + 5, isize, data + 5 + isize, size - 5 - isize, limit);
    }
    if (rc == LP_OK)
        check_dataset(&d, limit);
    else if (d.pixels != NULL || d.labels != NULL || d.n != 0)
        fuzz_fail("a refused data set is not left empty");
    lp_dataset_free(&d);
    return 0;
}
