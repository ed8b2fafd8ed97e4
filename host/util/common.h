/*
 * common.h: checking wrappers and small helpers shared by every host file.
 *
 * Every allocation, file open, read and write goes through a wrapper that names the
 * file and line of the caller on failure and exits non-zero. Nothing fails silently.
 */
#ifndef TNG_COMMON_H
#define TNG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TNG_NORETURN __attribute__((noreturn))
#define TNG_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))

/* Print "tng: <message>" to stderr and exit(1). */
TNG_NORETURN TNG_PRINTF(1, 2) void die(const char *fmt, ...);

void *malloc_check(size_t size, const char *file, int line);
void *calloc_check(size_t count, size_t size, const char *file, int line);
void *realloc_check(void *ptr, size_t size, const char *file, int line);
char *strdup_check(const char *s, const char *file, int line);
FILE *fopen_check(const char *path, const char *mode, const char *file, int line);
void fread_check(void *ptr, size_t size, size_t count, FILE *stream, const char *file, int line);
void fwrite_check(const void *ptr, size_t size, size_t count, FILE *stream, const char *file,
                  int line);
void fclose_check(FILE *stream, const char *file, int line);

#define mallocCheck(size) malloc_check(size, __FILE__, __LINE__)
#define callocCheck(count, size) calloc_check(count, size, __FILE__, __LINE__)
#define reallocCheck(ptr, size) realloc_check(ptr, size, __FILE__, __LINE__)
#define strdupCheck(s) strdup_check(s, __FILE__, __LINE__)
#define fopenCheck(path, mode) fopen_check(path, mode, __FILE__, __LINE__)
#define freadCheck(ptr, size, count, stream) fread_check(ptr, size, count, stream, __FILE__, __LINE__)
#define fwriteCheck(ptr, size, count, stream) \
    fwrite_check(ptr, size, count, stream, __FILE__, __LINE__)
#define fcloseCheck(stream) fclose_check(stream, __FILE__, __LINE__)

/* Formats a message into err (err_len bytes; NULL allowed) and returns -1, so that library
 * code that reports errors instead of exiting can write `return set_error(err, len, ...)`.
 * set_error_in prefixes the message with "<source>: " (a file name). */
int set_error(char *err, size_t err_len, const char *fmt, ...) TNG_PRINTF(3, 4);
int set_error_in(char *err, size_t err_len, const char *source, const char *fmt, ...)
    TNG_PRINTF(4, 5);

/* mkdir -p: creates path and every missing folder above it. Returns 0, or -1 with a message
 * naming the folder that could not be made. */
int make_dirs(const char *path, char *err, size_t err_len);

/* Reads a whole file into a NUL-terminated buffer. Returns NULL (errno set) on failure. */
char *read_file(const char *path, size_t *out_size);

/*
 * Writes `size` bytes to `path` atomically: a temporary file beside it, fsync, rename,
 * then fsync of the directory. A crash leaves either the old file or the new one, never
 * a half-written file under the real name. Returns 0 on success, -1 with errno set.
 */
int write_file_atomic(const char *path, const void *data, size_t size);
/* The writer's pid in the name of such a temporary file (NAME.tmp<pid>), 0 for other names. */
long temporary_file_pid(const char *name);

/* Monotonic wall clock in seconds. */
double now_seconds(void);

#endif
