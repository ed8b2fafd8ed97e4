/*
 * metrics_log.c: the crash-safe metrics.jsonl (metrics_log.h).
 */
#include "io/metrics_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct MetricsLog {
    int fd;
    char *path;
    char *line; /* the record being written, grown as needed */
    size_t capacity;
};

/* The value of a line's "step" field, or -1 when it has none. */
static long record_step(const char *line, const char *end) {
    const char *key = "\"step\":";
    size_t key_len = strlen(key);
    for (const char *p = line; p + key_len <= end; p++)
        if (memcmp(p, key, key_len) == 0) return strtol(p + key_len, NULL, 10);
    return -1;
}

/* Rewrites path with only its whole lines whose step is at most keep (lines without a step
 * are kept: they are not tied to a step). A missing file is an empty log. */
static int cut_back(const char *path, long keep, char *err, size_t err_len) {
    size_t size;
    char *text = read_file(path, &size);
    if (!text) return errno == ENOENT ? 0 : set_error(err, err_len, "%s: cannot read: %s", path, strerror(errno));
    char *out = mallocCheck(size + 1);
    size_t used = 0;
    for (char *line = text; line < text + size;) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        if (!nl) break; /* a torn last line: dropped */
        if (record_step(line, nl) <= keep) {
            memcpy(out + used, line, (size_t)(nl + 1 - line));
            used += (size_t)(nl + 1 - line);
        }
        line = nl + 1;
    }
    int rc = used == size ? 0 : write_file_atomic(path, out, used);
    free(text);
    free(out);
    return rc == 0 ? 0 : set_error(err, err_len, "%s: cannot rewrite: %s", path, strerror(errno));
}

MetricsLog *metrics_log_open(const char *path, long keep_through_step, char *err, size_t err_len) {
    if (keep_through_step >= 0 && cut_back(path, keep_through_step, err, err_len) != 0) return NULL;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (keep_through_step < 0 ? O_TRUNC : 0);
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        set_error(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    MetricsLog *log = callocCheck(1, sizeof *log);
    log->fd = fd;
    log->path = strdupCheck(path);
    return log;
}

void metrics_log_write(MetricsLog *log, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(log->line, log->capacity, fmt, args);
    va_end(args);
    if (len < 0) die("%s: cannot format a record", log->path);
    if ((size_t)len + 2 > log->capacity) {
        log->capacity = (size_t)len + 2;
        log->line = reallocCheck(log->line, log->capacity);
        va_start(args, fmt);
        vsnprintf(log->line, log->capacity, fmt, args);
        va_end(args);
    }
    log->line[len] = '\n';
    ssize_t written = write(log->fd, log->line, (size_t)len + 1);
    if (written != len + 1)
        die("%s: cannot write a record: %s", log->path, written < 0 ? strerror(errno) : "short write");
}

void metrics_log_close(MetricsLog *log) {
    if (!log) return;
    close(log->fd);
    free(log->path);
    free(log->line);
    free(log);
}
