/* test_core.c — errors, allocation, size checks. */
#include "test.h"

#include <stdint.h>
#include <string.h>

TEST(core_error_message_is_kept)
{
    lp_clear_error();
    CHECK(lp_last_error()[0] == '\0');
    CHECK(lp_set_error(LP_EINVAL, "bad %d", 7) == LP_EINVAL);
    CHECK(strcmp(lp_last_error(), "bad 7") == 0);
    CHECK(strcmp(lp_status_name(LP_ENOMEM), "LP_ENOMEM") == 0);
}

TEST(core_alloc_is_aligned_and_checks_overflow)
{
    float *p = lp_alloc(17, sizeof(float));
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    lp_free(p);
    lp_clear_error();
    CHECK(lp_alloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(lp_last_error()[0] != '\0');
}
