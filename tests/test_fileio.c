/*
 * test_fileio.c — lp_read_file (size cap, errors naming the path) and
 * lp_write_file_atomic (contents, permissions, no temporary files left
 * behind, failures leave the target alone).
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers shared with test_png.c (defined there) --------------------- */
const char *lpt_img_tmp_path(const char *name);
void lpt_img_tmp_cleanup(void);

/* Number of entries in the directory holding `path` (. and .. excluded). */
static int entries_beside(const char *path)
{
    char dir[256];
    const char *slash = strrchr(path, '/');
    DIR *d;
    struct dirent *e;
    int n = 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    d = opendir(dir);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

TEST(fileio_write_then_read)
{
    static const size_t sizes[] = {0, 1, 4095, 4096, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s], got_size = 12345;
        uint8_t *buf = malloc(n + 1), *got = NULL;
        const char *path = lpt_img_tmp_path("data.bin");
        if (buf == NULL)
            return;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(i * 31 + s);
        CHECK_OK(lp_write_file_atomic(path, buf, n));
        /* a cap equal to the size is fine */
        CHECK_OK(lp_read_file(path, n, &got, &got_size));
        CHECK(got != NULL && got_size == n);
        if (got != NULL && got_size == n && n > 0)
            CHECK(memcmp(got, buf, n) == 0);
        lp_free(got);
        /* only the target is left: the temporary file was renamed */
        CHECK(entries_beside(path) == 1);
        free(buf);
    }
    lpt_img_tmp_cleanup();
}

TEST(fileio_overwrite_keeps_mode)
{
    const char *path = lpt_img_tmp_path("keep.bin");
    struct stat st;
    uint8_t *got = NULL;
    size_t size = 0;
    CHECK_OK(lp_write_file_atomic(path, "first version", 13));
    CHECK(chmod(path, 0640) == 0);
    CHECK_OK(lp_write_file_atomic(path, "second", 6));
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    CHECK_OK(lp_read_file(path, 100, &got, &size));
    CHECK(size == 6 && got != NULL && memcmp(got, "second", 6) == 0);
    lp_free(got);
    CHECK(entries_beside(path) == 1);
    lpt_img_tmp_cleanup();
}

TEST(fileio_write_failures)
{
    char path[256];
    const char *target = lpt_img_tmp_path("dir_target");
    /* a directory that does not exist: error naming the path */
    snprintf(path, sizeof path, "%s", lpt_img_tmp_path("nope/x.bin"));
    lp_clear_error();
    CHECK(lp_write_file_atomic(path, "abc", 3) == LP_EIO);
    CHECK_MSG(strstr(lp_last_error(), path) != NULL, "message: %s",
              lp_last_error());
    /* the target is a directory: rename fails, the temporary is removed */
    CHECK(mkdir(target, 0755) == 0);
    CHECK_FAILS(lp_write_file_atomic(target, "abc", 3));
    CHECK(strstr(lp_last_error(), "dir_target") != NULL);
    CHECK(entries_beside(target) == 1); /* just the directory */
    rmdir(target);
    /* arguments */
    CHECK(lp_write_file_atomic(NULL, "abc", 3) == LP_EINVAL);
    CHECK(lp_write_file_atomic(lpt_img_tmp_path("x"), NULL, 3) == LP_EINVAL);
    CHECK(lp_write_file_atomic("", "abc", 3) == LP_EINVAL);
    CHECK_OK(lp_write_file_atomic(lpt_img_tmp_path("empty"), NULL, 0));
    lpt_img_tmp_cleanup();
}

TEST(fileio_read_limits_and_errors)
{
    const char *path = lpt_img_tmp_path("hundred.bin");
    uint8_t buf[100], *data = NULL;
    size_t size = 7;
    memset(buf, 0x5A, sizeof buf);
    CHECK_OK(lp_write_file_atomic(path, buf, sizeof buf));
    /* one byte over the cap */
    lp_clear_error();
    CHECK(lp_read_file(path, 99, &data, &size) == LP_ERANGE);
    CHECK(data == NULL && size == 0);
    CHECK_MSG(strstr(lp_last_error(), path) != NULL, "message: %s",
              lp_last_error());
    /* missing file: LP_ENOTFOUND, naming it */
    CHECK(lp_read_file(lpt_img_tmp_path("absent.bin"), 100, &data, &size) ==
          LP_ENOTFOUND);
    CHECK(strstr(lp_last_error(), "absent.bin") != NULL);
    /* a directory */
    {
        char dir[256];
        snprintf(dir, sizeof dir, "%s", lpt_img_tmp_path("adir"));
        CHECK(mkdir(dir, 0755) == 0);
        CHECK_FAILS(lp_read_file(dir, 100, &data, &size));
        CHECK(data == NULL);
        rmdir(dir);
    }
    /* an endless character device stops at the cap */
    if (access("/dev/zero", R_OK) == 0) {
        CHECK(lp_read_file("/dev/zero", 100000, &data, &size) == LP_ERANGE);
        CHECK(data == NULL);
    }
    /* an empty file */
    CHECK_OK(lp_write_file_atomic(path, NULL, 0));
    CHECK_OK(lp_read_file(path, 0, &data, &size));
    CHECK(size == 0);
    lp_free(data);
    /* arguments */
    CHECK(lp_read_file(NULL, 10, &data, &size) == LP_EINVAL);
    CHECK(lp_read_file(path, 10, NULL, &size) == LP_EINVAL);
    CHECK(lp_read_file(path, 10, &data, NULL) == LP_EINVAL);
    CHECK(lp_read_file("", 10, &data, &size) == LP_EINVAL);
    lpt_img_tmp_cleanup();
}

TEST(fileio_unreadable_file)
{
    const char *path = lpt_img_tmp_path("secret.bin");
    uint8_t *data = NULL;
    size_t size;
    if (geteuid() == 0) { /* root reads anything */
        lpt_skip("running as root");
        lpt_img_tmp_cleanup();
        return;
    }
    CHECK_OK(lp_write_file_atomic(path, "x", 1));
    CHECK(chmod(path, 0) == 0);
    CHECK(lp_read_file(path, 10, &data, &size) == LP_EIO);
    CHECK(strstr(lp_last_error(), "secret.bin") != NULL);
    lpt_img_tmp_cleanup();
}
