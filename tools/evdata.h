/*
 * evdata.h — the data set of `loupe evaluate` (tools/evdata.c).
 */
#ifndef LOUPE_EVDATA_H
#define LOUPE_EVDATA_H

#include "loupe.h"

enum { EV_DATA_FILES = 1, EV_DATA_SET = 2, EV_DATA_NPY = 3 };

typedef struct {
    int kind;
    int n;              /* images to evaluate (after --limit) */
    char root[4096];    /* --data */
    /* EV_DATA_FILES: paths relative to root, labels (-1 unknown) */
    char **files;
    int *labels;
    int n_files, cap;
    /* EV_DATA_SET: CIFAR-10 or MNIST in memory */
    lp_dataset set;
    /* EV_DATA_NPY: normalised inputs [N, C, H, W] */
    lp_npy npy;
} ev_data;

/* Open --data (a directory: class/image folders, or flat with --labels
 * FILE; a CIFAR-10 .bin; an MNIST IDX pair "IMAGES[,LABELS]"; an .npy
 * of normalised inputs [N, C, H, W], unlabelled). Folder and
 * label-file classes must be class names or indices of the model. */
int ev_data_open(ev_data *d, const char *data, const char *labels_path, int limit,
                 const lp_model *m);
void ev_data_close(ev_data *d);
/* A CRC32C of what the data set is: for CIFAR-10, MNIST and .npy data
 * the bytes of the n images and labels evaluated; for a directory the
 * relative path, label, size and modification time of each of its n
 * files (reading every image twice would double the work). `--resume`
 * refuses a journal written for another fingerprint. */
uint32_t ev_data_fingerprint(const ev_data *d);
/* Image i as the model's input x[C, H, W]; its display name and label. An
 * unreadable image returns an error (the caller skips it). */
int ev_data_load(const ev_data *d, int i, const lp_model *m, float *x, char *name,
                 size_t name_cap, int *label);

#endif
