/*
 * common.c: the checking wrappers declared in common.h, plus whole-file read and atomic
 * write. Wrappers report the caller's file:line so a failure points at the call site.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void die(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("tng: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

int set_error(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || err_len == 0) return -1;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, err_len, fmt, args);
    va_end(args);
    return -1;
}

int set_error_in(char *err, size_t err_len, const char *source, const char *fmt, ...) {
    if (!err || err_len == 0) return -1;
    int used = snprintf(err, err_len, "%s: ", source);
    if (used >= 0 && (size_t)used < err_len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err + used, err_len - (size_t)used, fmt, args);
        va_end(args);
    }
    return -1;
}

void *malloc_check(size_t size, const char *file, int line) {
    void *ptr = malloc(size ? size : 1);
    if (!ptr) die("out of memory allocating %zu bytes at %s:%d", size, file, line);
    return ptr;
}

void *calloc_check(size_t count, size_t size, const char *file, int line) {
    void *ptr = calloc(count ? count : 1, size ? size : 1);
    if (!ptr) die("out of memory allocating %zu x %zu bytes at %s:%d", count, size, file, line);
    return ptr;
}

void *realloc_check(void *ptr, size_t size, const char *file, int line) {
    void *grown = realloc(ptr, size ? size : 1);
    if (!grown) die("out of memory reallocating %zu bytes at %s:%d", size, file, line);
    return grown;
}

char *strdup_check(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *copy = malloc_check(n, file, line);
    memcpy(copy, s, n);
    return copy;
}

FILE *fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) die("cannot open %s (mode %s): %s, at %s:%d", path, mode, strerror(errno), file, line);
    return f;
}

void fread_check(void *ptr, size_t size, size_t count, FILE *stream, const char *file, int line) {
    size_t got = fread(ptr, size, count, stream);
    if (got != count) {
        die("short read: %zu of %zu items of %zu bytes (%s) at %s:%d", got, count, size,
            feof(stream) ? "end of file" : "I/O error", file, line);
    }
}

void fwrite_check(const void *ptr, size_t size, size_t count, FILE *stream, const char *file,
                  int line) {
    size_t put = fwrite(ptr, size, count, stream);
    if (put != count) {
        die("short write: %zu of %zu items of %zu bytes at %s:%d", put, count, size, file, line);
    }
}

void fclose_check(FILE *stream, const char *file, int line) {
    if (fclose(stream) != 0) die("fclose failed: %s at %s:%d", strerror(errno), file, line);
}

char *read_file(const char *path, size_t *out_size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, size = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (size + 1 >= cap) buf = reallocCheck(buf, cap *= 2);
        size_t got = fread(buf + size, 1, cap - size - 1, f);
        size += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[size] = '\0';
    if (out_size) *out_size = size;
    return buf;
}

long temporary_file_pid(const char *name) {
    const char *tmp = strstr(name, ".tmp");
    while (tmp && strstr(tmp + 1, ".tmp")) tmp = strstr(tmp + 1, ".tmp");
    if (!tmp || tmp[4] < '0' || tmp[4] > '9') return 0;
    char *end;
    long pid = strtol(tmp + 4, &end, 10);
    return *end == '\0' && pid > 0 ? pid : 0;
}

int write_file_atomic(const char *path, const void *data, size_t size) {
    size_t n = strlen(path);
    char *tmp = mallocCheck(n + 16);
    snprintf(tmp, n + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) goto fail;
    const char *p = data;
    for (size_t left = size; left > 0;) {
        ssize_t put = write(fd, p, left);
        if (put < 0) {
            if (errno == EINTR) continue;
            close(fd);
            goto fail_unlink;
        }
        p += put;
        left -= (size_t)put;
    }
    if (fsync(fd) != 0 || close(fd) != 0) goto fail_unlink;
    if (rename(tmp, path) != 0) goto fail_unlink;
    /* fsync the directory so the rename itself is durable */
    char *dir_copy = strdupCheck(path);
    int dir_fd = open(dirname(dir_copy), O_RDONLY);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    free(dir_copy);
    free(tmp);
    return 0;
fail_unlink:;
    int saved = errno;
    unlink(tmp);
    errno = saved;
fail:
    free(tmp);
    return -1;
}

int make_dirs(const char *dir, char *err, size_t err_len) {
    if (!dir[0]) return set_error(err, err_len, "the folder name is empty");
    char *path = strdupCheck(dir);
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        int at_end = *p == '\0';
        if (*p != '/' && !at_end) continue;
        *p = '\0';
        struct stat info;
        if (mkdir(path, 0755) != 0 &&
            (errno != EEXIST || stat(path, &info) != 0 || !S_ISDIR(info.st_mode)))
            rc = set_error_in(err, err_len, path, "cannot create folder: %s",
                              errno == EEXIST ? "a file has that name" : strerror(errno));
        if (at_end) break;
        *p = '/';
    }
    free(path);
    return rc;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
