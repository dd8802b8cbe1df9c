/*
 * replay.c — a plain main() for the fuzz harnesses: runs every file named
 * on the command line, or found (recursively, in name order) in a named
 * directory, through LLVMFuzzerTestOneInput, once each. Built with any
 * compiler; `make test` uses it to replay tests/fuzz/corpus/NAME and
 * tests/fuzz/regress/NAME (under ASan/UBSan with SANITIZE=1).
 *
 *   replay_NAME [-v] PATH...     exit 0 when every input ran, 1 on an
 *                                unreadable path; a bug aborts.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_FILE ((size_t)64 << 20)

static int verbose;
static long replayed;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t size = 0, cap = 0, got;
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    do {
        if (size == cap) {
            uint8_t *grown;
            cap = cap ? 2 * cap : 4096;
            if (cap > REPLAY_MAX_FILE || (grown = realloc(data, cap)) == NULL) {
                fprintf(stderr, "replay: %s is too large\n", path);
                free(data);
                fclose(f);
                return 1;
            }
            data = grown;
        }
        got = fread(data + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    fclose(f);
    if (verbose)
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    /* an exact-size copy, so that ASan sees reads past the end */
    {
        uint8_t *exact = malloc(size ? size : 1);
        if (exact == NULL) {
            free(data);
            return 1;
        }
        if (size)
            memcpy(exact, data, size);
        free(data);
        LLVMFuzzerTestOneInput(exact, size);
        free(exact);
    }
    replayed++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path);

/* Every entry of a directory except dot files, in name order. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open directory %s\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (grown == NULL)
                break;
            names = grown;
        }
        len = strlen(dir) + strlen(e->d_name) + 2;
        if ((names[n] = malloc(len)) == NULL)
            break;
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        rc |= run_path(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: cannot stat %s\n", path);
        return 1;
    }
    return S_ISDIR(st.st_mode) ? run_dir(path) : run_file(path);
}

int main(int argc, char **argv)
{
    int rc = 0;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            rc |= run_path(argv[i]);
    }
    printf("%s: %ld inputs replayed%s\n", name, replayed, rc ? ", some paths unreadable" : "");
    return rc;
}
