/*
 * evdata.c — the data set of `loupe evaluate`: a directory of images
 * (labels from a class/image folder layout or a labels file), a CIFAR-10
 * binary batch, or an MNIST IDX pair. Every image is turned into the
 * model's input (lp_model_prepare_image, the file's preprocessing).
 */
#include "evdata.h"
#include "cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EV_MAX_FILES 1000000

static int has_image_ext(const char *name)
{
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp",
                                ".PNG", ".JPG", ".JPEG", ".PPM", ".PGM", ".BMP", NULL};
    size_t n = strlen(name);
    for (int i = 0; ext[i]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcmp(name + n - e, ext[i]))
            return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sorted entries of a directory (names without the directory), skipping
 * hidden ones; want_dirs selects directories or image files. */
static int list_dir(const char *dir, int want_dirs, char ***out, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int n = 0, cap = 0;
    *out = NULL;
    *count = 0;
    if (d == NULL)
        return lp_set_error(LP_ENOTFOUND, "%s: cannot open the directory", dir);
    while ((e = readdir(d)) != NULL) {
        char path[4200];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (want_dirs ? !is_dir(path) : (is_dir(path) || !has_image_ext(e->d_name)))
            continue;
        if (n == cap) {
            char **bigger;
            if (cap >= EV_MAX_FILES)
                break;
            cap = cap ? 2 * cap : 64;
            bigger = realloc(names, (size_t)cap * sizeof *names);
            if (bigger == NULL)
                goto nomem;
            names = bigger;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            goto nomem;
        n++;
    }
    closedir(d);
    if (n > 1) /* qsort(NULL, 0, ...) is undefined */
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *count = n;
    return LP_OK;
nomem:
    closedir(d);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return lp_set_error(LP_ENOMEM, "out of memory listing %s", dir);
}

static void free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* A class name or index of the model -> class index, or -1. */
static int class_of(const lp_model *m, const char *s)
{
    const lp_model_info *in = lp_model_get_info(m);
    char *end;
    long k = strtol(s, &end, 10);
    if (*s && *end == '\0')
        return (k >= 0 && k < in->out_dim) ? (int)k : -1;
    for (int c = 0; c < in->out_dim; c++) {
        const char *name = lp_model_label(m, c);
        if (name && !strcmp(name, s))
            return c;
    }
    return -1;
}

static int add_file(ev_data *d, const char *rel, int label)
{
    if (d->n_files == d->cap) {
        int cap = d->cap ? 2 * d->cap : 256;
        char **p = realloc(d->files, (size_t)cap * sizeof *p);
        int *l;
        if (p == NULL)
            return LP_ENOMEM;
        d->files = p;
        l = realloc(d->labels, (size_t)cap * sizeof *l);
        if (l == NULL)
            return LP_ENOMEM;
        d->labels = l;
        d->cap = cap;
    }
    if ((d->files[d->n_files] = strdup(rel)) == NULL)
        return LP_ENOMEM;
    d->labels[d->n_files++] = label;
    d->n = d->n_files;
    return LP_OK;
}

/* class/image layout: every sub-directory is a class (a name or index of
 * the model's classes); images directly in `dir` have no label. */
static int open_dir(ev_data *d, const char *dir, const lp_model *m)
{
    char **classes, **files;
    int nc, nf, rc = list_dir(dir, 1, &classes, &nc);
    if (rc != LP_OK)
        return rc;
    for (int c = 0; c < nc && rc == LP_OK; c++) {
        char sub[4200];
        int label = class_of(m, classes[c]);
        snprintf(sub, sizeof sub, "%s/%s", dir, classes[c]);
        if (label < 0) {
            rc = lp_set_error(LP_EINVAL,
                              "%s: folder '%s' is not a class of the model (a class name "
                              "or index)", dir, classes[c]);
            break;
        }
        if ((rc = list_dir(sub, 0, &files, &nf)) != LP_OK)
            break;
        for (int i = 0; i < nf && rc == LP_OK; i++) {
            char rel[4200];
            snprintf(rel, sizeof rel, "%s/%s", classes[c], files[i]);
            rc = add_file(d, rel, label);
        }
        free_list(files, nf);
    }
    free_list(classes, nc);
    if (rc == LP_OK && (rc = list_dir(dir, 0, &files, &nf)) == LP_OK) {
        for (int i = 0; i < nf && rc == LP_OK; i++)
            rc = add_file(d, files[i], -1);
        free_list(files, nf);
    }
    return rc;
}

/* A labels file decides both the list of images and their labels. */
static int open_labels(ev_data *d, const char *labels_path, const lp_model *m)
{
    lp_labels l;
    int rc = lp_labels_load(&l, labels_path);
    for (int i = 0; rc == LP_OK && i < l.n; i++) {
        int label = class_of(m, l.label[i]);
        if (label < 0)
            rc = lp_set_error(LP_EINVAL, "%s: '%s' (for %s) is not a class of the model",
                              labels_path, l.label[i], l.path[i]);
        else
            rc = add_file(d, l.path[i], label);
    }
    lp_labels_free(&l);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* "t10k-images-idx3-ubyte" -> "t10k-labels-idx1-ubyte" */
static int mnist_labels_path(const char *images, char *out, size_t cap)
{
    const char *p = strstr(images, "images-idx3");
    if (p == NULL)
        return lp_set_error(LP_EINVAL, "%s: give the MNIST pair as IMAGES,LABELS", images);
    snprintf(out, cap, "%.*slabels-idx1%s", (int)(p - images), images, p + strlen("images-idx3"));
    return LP_OK;
}

int ev_data_open(ev_data *d, const char *data, const char *labels_path, int limit,
                 const lp_model *m)
{
    int rc;
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s", data);
    if (is_dir(data)) {
        d->kind = EV_DATA_FILES;
        rc = labels_path ? open_labels(d, labels_path, m) : open_dir(d, data, m);
        if (rc == LP_OK && d->n == 0)
            rc = lp_set_error(LP_EINVAL, "%s: no images (.png .jpg .ppm .pgm .bmp) found", data);
        if (rc == LP_OK && limit > 0 && d->n > limit)
            d->n = limit; /* the names past n are freed with the rest */
        if (rc != LP_OK)
            ev_data_close(d);
        return rc;
    }
    if (labels_path)
        return lp_set_error(LP_EINVAL, "--labels goes with a directory of images");
    if (ends_with(data, ".npy")) {
        const lp_model_info *in = lp_model_get_info(m);
        d->kind = EV_DATA_NPY;
        rc = lp_npy_load(&d->npy, data);
        if (rc == LP_OK && (d->npy.dtype != LP_DTYPE_F32 || d->npy.ndim != 4 ||
                            d->npy.shape[1] != in->in_c || d->npy.shape[2] != in->in_h ||
                            d->npy.shape[3] != in->in_w || d->npy.shape[0] < 1))
            rc = lp_set_error(LP_EINVAL, "%s: expected a float32 [N,%d,%d,%d] array of "
                              "normalised inputs", data, in->in_c, in->in_h, in->in_w);
        if (rc == LP_OK) {
            d->n = (int)(d->npy.shape[0] < 100000000 ? d->npy.shape[0] : 100000000);
            if (limit > 0 && d->n > limit)
                d->n = limit;
        }
        if (rc != LP_OK)
            ev_data_close(d);
        return rc;
    }
    if (strchr(data, ',') || strstr(data, "idx3")) {
        char images[4096], labels[4096];
        const char *comma = strchr(data, ',');
        d->kind = EV_DATA_SET;
        if (comma) {
            snprintf(images, sizeof images, "%.*s", (int)(comma - data), data);
            snprintf(labels, sizeof labels, "%s", comma + 1);
        } else {
            snprintf(images, sizeof images, "%s", data);
            if ((rc = mnist_labels_path(images, labels, sizeof labels)) != LP_OK)
                return rc;
        }
        rc = lp_mnist_load(&d->set, images, labels, limit);
    } else if (ends_with(data, ".bin")) {
        d->kind = EV_DATA_SET;
        rc = lp_cifar10_load(&d->set, data, limit);
    } else {
        struct stat st;
        if (stat(data, &st) != 0)
            return lp_set_error(LP_ENOTFOUND, "%s: no such file or directory", data);
        return lp_set_error(LP_EINVAL,
                            "%s: --data takes a directory of images, a CIFAR-10 .bin batch "
                            "or an MNIST IDX pair", data);
    }
    if (rc == LP_OK) {
        d->n = d->set.n;
        if (d->n == 0)
            rc = lp_set_error(LP_EINVAL, "%s: the data set is empty", data);
    }
    return rc;
}

uint32_t ev_data_fingerprint(const ev_data *d)
{
    uint32_t crc = lp_crc32c(0, &d->kind, sizeof d->kind);
    crc = lp_crc32c(crc, &d->n, sizeof d->n);
    if (d->kind == EV_DATA_SET) {
        size_t per = (size_t)d->set.width * d->set.height * d->set.channels;
        crc = lp_crc32c(crc, d->set.pixels, (size_t)d->n * per);
        return lp_crc32c(crc, d->set.labels, (size_t)d->n);
    }
    if (d->kind == EV_DATA_NPY) {
        size_t per = (size_t)(d->npy.shape[1] * d->npy.shape[2] * d->npy.shape[3]);
        return lp_crc32c(crc, d->npy.data, (size_t)d->n * per * sizeof(float));
    }
    for (int i = 0; i < d->n; i++) {
        char path[8400];
        struct stat st;
        int64_t meta[3] = {0, 0, 0};
        snprintf(path, sizeof path, "%s/%s", d->root, d->files[i]);
        if (stat(path, &st) == 0) {
            meta[0] = (int64_t)st.st_size;
            meta[1] = (int64_t)st.st_mtim.tv_sec;
            meta[2] = (int64_t)st.st_mtim.tv_nsec;
        }
        crc = lp_crc32c(crc, d->files[i], strlen(d->files[i]) + 1);
        crc = lp_crc32c(crc, &d->labels[i], sizeof d->labels[i]);
        crc = lp_crc32c(crc, meta, sizeof meta);
    }
    return crc;
}

void ev_data_close(ev_data *d)
{
    for (int i = 0; i < d->n_files; i++)
        free(d->files[i]);
    free(d->files);
    free(d->labels);
    lp_dataset_free(&d->set);
    lp_npy_free(&d->npy);
    memset(d, 0, sizeof *d);
}

int ev_data_load(const ev_data *d, int i, const lp_model *m, float *x, char *name,
                 size_t name_cap, int *label)
{
    if (d->kind == EV_DATA_NPY) {
        const lp_model_info *in = lp_model_get_info(m);
        size_t per = (size_t)in->in_c * in->in_h * in->in_w;
        snprintf(name, name_cap, "input[%d]", i);
        *label = -1;
        memcpy(x, (const float *)d->npy.data + (size_t)i * per, per * sizeof *x);
        return LP_OK;
    }
    if (d->kind == EV_DATA_SET) {
        lp_image img = lp_dataset_image(&d->set, i);
        snprintf(name, name_cap, "%s[%d]", d->set.channels == 1 ? "mnist" : "cifar10", i);
        *label = d->set.labels[i];
        return lp_model_prepare_image(m, &img, x);
    }
    {
        char path[8400];
        lp_image img = {0};
        int rc;
        snprintf(name, name_cap, "%s", d->files[i]);
        snprintf(path, sizeof path, "%s/%s", d->root, d->files[i]);
        *label = d->labels[i];
        rc = lp_image_load(&img, path);
        if (rc == LP_OK)
            rc = lp_model_prepare_image(m, &img, x);
        lp_image_free(&img);
        return rc;
    }
}
