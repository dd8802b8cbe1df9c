/*
 * fuzz_labels.c — fuzz harness for the labels file of `loupe evaluate
 * --labels` (formats/labels.c, lp_labels_parse): "PATH LABEL" lines,
 * comments, blank lines, long fields. Every parsed entry must be two
 * non-empty NUL-terminated strings inside the pool.
 */
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_labels l;
    if (lp_labels_parse(&l, (const char *)data, size, "fuzz") != LP_OK) {
        if (l.pool != NULL || l.path != NULL || l.label != NULL)
            fuzz_fail("a refused labels file is not left empty");
        return 0;
    }
    if (l.n < 0)
        fuzz_fail("negative entry count");
    for (int i = 0; i < l.n; i++) {
        size_t lp = strlen(l.path[i]), ll = strlen(l.label[i]);
        if (lp == 0 || ll == 0)
            fuzz_fail("an entry has an empty path or label");
        if (l.path[i] < l.pool || l.label[i] + ll > l.pool + size + 1)
            fuzz_fail("an entry points outside the pool");
    }
    lp_labels_free(&l);
    return 0;
}
