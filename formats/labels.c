/*
 * labels.c — the labels file of `loupe evaluate --labels FILE`: one image
 * per line, "PATH LABEL", where LABEL (the last whitespace-separated
 * field) is a class index or a class name and PATH (everything before it,
 * so it may contain spaces) is relative to the data directory. Blank
 * lines and lines starting with '#' are skipped. The text is untrusted:
 * lengths are bounded and every line is checked.
 */
#include "internal.h"

#include <string.h>

#define LABELS_MAX_LINES 10000000
#define LABELS_MAX_FIELD 4096

void lp_labels_free(lp_labels *l)
{
    if (l == NULL)
        return;
    lp_free(l->pool);
    lp_free(l->path);
    lp_free(l->label);
    memset(l, 0, sizeof *l);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Count the lines that hold an entry. */
static long count_entries(const char *t, size_t size)
{
    long n = 0;
    size_t i = 0;
    while (i < size) {
        size_t end = i;
        while (end < size && t[end] != '\n')
            end++;
        size_t a = i;
        while (a < end && is_space(t[a]))
            a++;
        if (a < end && t[a] != '#')
            n++;
        i = end + 1;
    }
    return n;
}

int lp_labels_parse(lp_labels *l, const char *text, size_t size, const char *name)
{
    long n = count_entries(text, size), k = 0;
    size_t i = 0, at = 0, line = 0;
    memset(l, 0, sizeof *l);
    if (memchr(text, '\0', size))
        return lp_set_error(LP_EFORMAT, "%s: not a text file (NUL byte)", name);
    if (n > LABELS_MAX_LINES)
        return lp_set_error(LP_ERANGE, "%s: more than %d entries", name, LABELS_MAX_LINES);
    l->pool = lp_alloc(size + 1, 1);
    l->path = lp_alloc((size_t)n + 1, sizeof *l->path);
    l->label = lp_alloc((size_t)n + 1, sizeof *l->label);
    if (l->pool == NULL || l->path == NULL || l->label == NULL) {
        lp_labels_free(l);
        return LP_ENOMEM;
    }
    while (i < size) {
        size_t end = i, a = i, b;
        line++;
        while (end < size && text[end] != '\n')
            end++;
        while (a < end && is_space(text[a]))
            a++;
        b = end;
        while (b > a && is_space(text[b - 1]))
            b--;
        if (a < b && text[a] != '#') {
            size_t s = b;
            while (s > a && !is_space(text[s - 1]))
                s--; /* text[s..b) is the label */
            size_t pe = s;
            while (pe > a && is_space(text[pe - 1]))
                pe--; /* text[a..pe) is the path */
            if (pe == a) {
                lp_labels_free(l);
                return lp_set_error(LP_EFORMAT, "%s:%zu: expected \"PATH LABEL\"", name, line);
            }
            if (pe - a > LABELS_MAX_FIELD || b - s > LABELS_MAX_FIELD) {
                lp_labels_free(l);
                return lp_set_error(LP_ERANGE, "%s:%zu: field longer than %d bytes", name,
                                    line, LABELS_MAX_FIELD);
            }
            memcpy(l->pool + at, text + a, pe - a);
            l->path[k] = l->pool + at;
            at += pe - a;
            l->pool[at++] = '\0';
            /* the label reuses the gap: pe < s, so at stays <= size */
            memcpy(l->pool + at, text + s, b - s);
            l->label[k] = l->pool + at;
            at += b - s;
            l->pool[at++] = '\0';
            k++;
        }
        i = end + 1;
    }
    l->n = (int)k;
    return LP_OK;
}

int lp_labels_load(lp_labels *l, const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc;
    memset(l, 0, sizeof *l); /* the caller frees *l on every path */
    rc = lp_read_file(path, (size_t)1 << 30, &data, &size);
    if (rc == LP_OK)
        rc = lp_labels_parse(l, (const char *)data, size, path);
    lp_free(data);
    return rc;
}
