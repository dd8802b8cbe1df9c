/*
 * fileio.c — whole-file read with a size cap, and atomic whole-file write.
 *
 * lp_read_file reads regular files in one allocation sized by fstat and
 * anything else (pipes, character devices) in growing steps, refusing to
 * go past max_bytes either way, so /dev/zero or a huge file cannot exhaust
 * memory.
 *
 * lp_write_file_atomic writes to "<path>.tmp.<unique>" beside the target
 * (same directory, hence same file system, so rename() is atomic), fsyncs
 * it, renames it over the target and fsyncs the directory (best effort).
 * The temporary name is created with O_CREAT|O_EXCL and retried on
 * collision, like mkstemp; unlike mkstemp it is created with mode 0666 so
 * the process umask applies as for any new file, and when the target
 * already exists its permission bits are kept. On any failure the
 * temporary file is removed and the target is untouched.
 *
 * Every error message starts with the path.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* strerror() is not thread-safe; the POSIX strerror_r fills our buffer. */
static const char *errno_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0)
        snprintf(buf, cap, "error %d", err);
    return buf;
}

static int io_error(int status, const char *path, const char *what, int err)
{
    char msg[128];
    return lp_set_error(status, "%s: %s: %s", path, what,
                        errno_text(err, msg, sizeof msg));
}

/* read() until n bytes or end of file; returns bytes read or -1. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* A regular file: one allocation of the size fstat reports. A file that
 * grows while we read is cut at that size; one that shrinks is an error. */
static int read_regular(int fd, const char *path, size_t max_bytes,
                        off_t st_size, uint8_t **data, size_t *size)
{
    uint8_t *buf;
    ssize_t got;
    size_t n;
    if (st_size < 0 || (uintmax_t)st_size > (uintmax_t)max_bytes)
        return lp_set_error(LP_ERANGE,
                            "%s: file is %jd bytes, more than the %zu allowed",
                            path, (intmax_t)st_size, max_bytes);
    n = (size_t)st_size;
    /* refuse a file larger than the memory budget before reading it */
    if (lp_memory_check(n, "reading it") != LP_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        return lp_set_error(LP_ERANGE, "%s: %s", path, msg);
    }
    buf = lp_alloc(n, 1);
    if (buf == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory reading %zu bytes",
                            path, n);
    got = read_full(fd, buf, n);
    if (got < 0) {
        int err = errno;
        lp_free(buf);
        return io_error(LP_EIO, path, "read failed", err);
    }
    if ((size_t)got != n) {
        lp_free(buf);
        return lp_set_error(LP_EIO, "%s: file shrank while reading (%zd of "
                            "%zu bytes)", path, got, n);
    }
    *data = buf;
    *size = n;
    return LP_OK;
}

/* Pipes and devices: read in doubling steps up to max_bytes + 1 (to tell
 * "exactly max_bytes" from "more"). */
static int read_stream(int fd, const char *path, size_t max_bytes,
                       uint8_t **data, size_t *size)
{
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    for (;;) {
        ssize_t got;
        if (len == cap) {
            size_t want = cap == 0 ? 65536 : cap * 2;
            uint8_t *grown;
            if (want < cap || want > max_bytes)
                want = max_bytes == SIZE_MAX ? SIZE_MAX : max_bytes + 1;
            if (want <= cap) { /* cap already holds max_bytes + 1 */
                lp_free(buf);
                return lp_set_error(LP_ERANGE, "%s: more than the %zu bytes "
                                    "allowed", path, max_bytes);
            }
            grown = lp_alloc(want, 1);
            if (grown == NULL) {
                lp_free(buf);
                return lp_set_error(LP_ENOMEM, "%s: out of memory reading "
                                    "%zu bytes", path, want);
            }
            if (len > 0)
                memcpy(grown, buf, len);
            lp_free(buf);
            buf = grown;
            cap = want;
        }
        got = read_full(fd, buf + len, cap - len);
        if (got < 0) {
            int err = errno;
            lp_free(buf);
            return io_error(LP_EIO, path, "read failed", err);
        }
        len += (size_t)got;
        if (len > max_bytes) {
            lp_free(buf);
            return lp_set_error(LP_ERANGE, "%s: more than the %zu bytes "
                                "allowed", path, max_bytes);
        }
        if (len < cap)
            break; /* end of file */
    }
    *data = buf;
    *size = len;
    return LP_OK;
}

int lp_read_file(const char *path, size_t max_bytes, uint8_t **data,
                 size_t *size)
{
    struct stat st;
    int fd, rc;
    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (path == NULL || data == NULL || size == NULL)
        return lp_set_error(LP_EINVAL, "lp_read_file: NULL argument");
    if (path[0] == '\0')
        return lp_set_error(LP_EINVAL, "lp_read_file: empty path");
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int err = errno;
        return io_error(err == ENOENT ? LP_ENOTFOUND : LP_EIO, path,
                        "cannot open", err);
    }
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return io_error(LP_EIO, path, "cannot stat", err);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return lp_set_error(LP_EIO, "%s: is a directory", path);
    }
    if (S_ISREG(st.st_mode))
        rc = read_regular(fd, path, max_bytes, st.st_size, data, size);
    else
        rc = read_stream(fd, path, max_bytes, data, size);
    close(fd);
    return rc;
}

/* ---- atomic write ------------------------------------------------------- */

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        /* some systems reject single writes above 2 GiB */
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, p, step);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Create "<path>.tmp.<unique>" exclusively; fills tmp, returns the fd. */
static int create_temp(const char *path, char *tmp, size_t tmp_cap)
{
    static atomic_ulong counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        unsigned long n = atomic_fetch_add(&counter, 1);
        unsigned long long mix;
        int fd;
        clock_gettime(CLOCK_REALTIME, &ts);
        mix = ((unsigned long long)ts.tv_nsec << 20) ^
              (unsigned long long)ts.tv_sec ^ (n * 0x9E3779B97F4A7C15ull);
        snprintf(tmp, tmp_cap, "%s.tmp.%ld.%06llx", path, (long)getpid(),
                 mix & 0xFFFFFFull);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    char small[256], *dir = small;
    int fd;
    if (len + 2 > sizeof small && (dir = lp_alloc(len + 2, 1)) == NULL)
        return; /* best effort */
    if (len == 0) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* not supported everywhere; best effort */
        close(fd);
    }
    if (dir != small)
        lp_free(dir);
}

int lp_write_file_atomic(const char *path, const void *data, size_t size)
{
    struct stat st;
    size_t tmp_cap;
    char *tmp;
    int fd, err;
    const char *what;
    if (path == NULL || (data == NULL && size > 0))
        return lp_set_error(LP_EINVAL, "lp_write_file_atomic: NULL argument");
    if (path[0] == '\0')
        return lp_set_error(LP_EINVAL, "lp_write_file_atomic: empty path");
    tmp_cap = strlen(path) + 48;
    tmp = lp_alloc(tmp_cap, 1);
    if (tmp == NULL)
        return lp_set_error(LP_ENOMEM, "%s: out of memory", path);
    fd = create_temp(path, tmp, tmp_cap);
    if (fd < 0) {
        err = errno;
        io_error(LP_EIO, path, "cannot create temporary file", err);
        lp_free(tmp);
        return LP_EIO;
    }
    /* keep the permissions of the file we replace */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        fchmod(fd, st.st_mode & 07777) != 0) {
        what = "cannot set permissions of the temporary file";
        goto fail;
    }
    if (write_full(fd, (const uint8_t *)data, size) != 0) {
        what = "write failed";
        goto fail;
    }
    if (fsync(fd) != 0) {
        what = "fsync failed";
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        what = "close failed";
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        what = "cannot rename the temporary file over it";
        goto fail;
    }
    lp_free(tmp);
    sync_parent_dir(path);
    return LP_OK;

fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    lp_free(tmp);
    return io_error(LP_EIO, path, what, err);
}
