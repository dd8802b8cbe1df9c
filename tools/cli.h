/*
 * cli.h — what the loupe subcommands share: error reporting, option
 * parsing helpers, loading a model and a batch of inputs.
 */
#ifndef LOUPE_CLI_H
#define LOUPE_CLI_H

#include "loupe.h"

#include <stdio.h>

/* Exit statuses: 0 ok, 1 runtime failure, 2 bad input or usage. */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_BAD_INPUT 2

/* Exit status for a library status code: out of memory is a runtime
 * failure (1); everything else (bad file, bad shape, unwritable output
 * path, more memory than --max-memory allows) was caused by the input (2). */
int cli_status(int lp_rc);

/* Print "loupe: <message>" on stderr and return CLI_BAD_INPUT. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Option value after argv[*i] (advances *i); NULL with an error printed
 * when missing. */
const char *cli_value(int argc, char **argv, int *i);
/* Parse an int in [lo, hi]; prints an error naming `opt` on failure. */
int cli_int(const char *opt, const char *text, int lo, int hi, int *out);

#define CLI_MAX_IMAGES 1024

/* A batch of model inputs from images (preprocessed per the model file)
 * or from an .npy [N,C,H,W] float32 array. */
typedef struct {
    int n;
    float *data;                        /* [n, c, h, w] */
    const char *names[CLI_MAX_IMAGES];  /* image paths (or "input[i]") */
} cli_batch;

int cli_load_batch(const lp_model *m, const char *const *images, int n_images,
                   const char *npy_path, cli_batch *batch);
void cli_free_batch(cli_batch *batch);

/* Load a model, printing a one-line error on failure. */
int cli_load_model(const char *path, lp_model **m);

/* Parse an option value: one of names[] (index into *out), a float in
 * [lo, hi]. Errors are printed as "loupe: CMD: ..." (CLI_BAD_INPUT). */
int cli_enum(const char *cmd, const char *opt, const char *v, const char *const *names,
             int *out);
int cli_float(const char *cmd, const char *opt, const char *v, double lo, double hi,
              float *out);
/* An attribution-method option (--steps, --masks, --layer, --seed ...)
 * into o: CLI_OK, CLI_BAD_INPUT (error printed), or -1 when k is not one. */
int cli_method_option(const char *cmd, const char *k, const char *v,
                      lp_explain_options *o);

/* Subcommands */
int cmd_predict(int argc, char **argv);
int cmd_layers(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);

#endif /* LOUPE_CLI_H */
