/*
 * safetensors.h: reading, validating and writing safetensors files.
 *
 * Layout: a u64 little-endian header length N, N bytes of JSON naming each tensor's dtype,
 * shape and [begin, end) byte range inside the data that follows, then the data.
 *
 * The reader never exits on bad input: it is fed untrusted files and fuzzed, so every
 * function returns 0 on success or -1 with a message (prefixed by the file's name) in the
 * caller's buffer. A parsed file is validated in full before anything reads from it:
 * tensors must tile the data region exactly (no gaps, no overlaps, nothing after the last),
 * so a reader can trust every offset afterwards.
 *
 * The writer keeps tensors in the order it is given (the Python library sorts them by
 * dtype, then name; readers do not care). It serialises into memory and then writes the
 * file atomically, so a checkpoint on disk is the old one or the new one, never half.
 */
#ifndef TNG_SAFETENSORS_H
#define TNG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* Header lengths above this are rejected (the Python library's limit). */
#define ST_MAX_HEADER_BYTES 100000000ull
#define ST_MAX_DIMS 8

typedef enum {
    ST_BOOL,
    ST_U8,
    ST_I8,
    ST_F8_E5M2,
    ST_F8_E4M3,
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_F64,
    ST_I64,
    ST_U64,
    ST_NUM_DTYPES
} StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim; /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte range inside the data region */
} StTensor;

typedef struct {
    char *source;        /* file name (or "<memory>") that prefixes every message */
    const uint8_t *data; /* the data region: 8 + N bytes into the file */
    size_t data_size;
    StTensor *tensors; /* in header order */
    int count;
    char **meta_keys, **meta_values; /* the optional __metadata__ */
    int meta_count;
    void *mapping; /* st_open's mmap of the whole file, NULL for st_parse */
    size_t mapping_size;
} SafeTensors;

/* Parses and validates a file held in memory. Borrows buf: keep it alive until st_close.
 * source names the file in messages (NULL gives "<memory>"). */
int st_parse(SafeTensors *st, const void *buf, size_t size, const char *source, char *err,
             size_t err_len);
/* Maps the file read-only and parses it. */
int st_open(SafeTensors *st, const char *path, char *err, size_t err_len);
/* Frees everything st_parse / st_open made. Safe on a zeroed or failed SafeTensors. */
void st_close(SafeTensors *st);

const StTensor *st_find(const SafeTensors *st, const char *name);
/* The value of a __metadata__ key, or NULL. */
const char *st_meta(const SafeTensors *st, const char *key);

/* Reads `count` elements starting at element `first` of a floating-point tensor (F32, F16,
 * BF16 or F64) as float32. Widening is exact; F64 narrows with round-to-nearest-even. */
int st_read_f32_range(const SafeTensors *st, const StTensor *t, size_t first, size_t count,
                      float *out, char *err, size_t err_len);
/* The whole tensor as float32 (t->numel floats). */
int st_read_f32(const SafeTensors *st, const StTensor *t, float *out, char *err, size_t err_len);
/* An integer tensor (I8, U8, I16, U16, I32, U32, I64, U64) as int32; values outside the
 * int32 range are an error. For token ids and labels saved by PyTorch as int64. */
int st_read_i32(const SafeTensors *st, const StTensor *t, int32_t *out, char *err, size_t err_len);

const char *st_dtype_name(StDtype dtype);
size_t st_dtype_size(StDtype dtype);
/* Returns 0 and sets *out for a known dtype name ("F32"), else -1. */
int st_dtype_parse(const char *name, StDtype *out);
/* Writes a shape as "[16, 64]" ("[]" for a scalar). */
void st_format_shape(char *buf, size_t len, const int64_t *shape, int ndim);

/* ----------------------------------------------------------------------------
 * Writing */

typedef struct {
    const char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes, little-endian */
} StWriteTensor;

/* Serialises tensors (in the given order) and metadata into one malloc'd buffer holding a
 * complete file. Rejects empty, duplicate or reserved names and bad shapes. */
int st_serialize(const StWriteTensor *tensors, int count, const char *const *meta_keys,
                 const char *const *meta_values, int meta_count, void **out, size_t *out_size,
                 char *err, size_t err_len);
/* st_serialize, then write_file_atomic (temp file, fsync, rename). */
int st_write(const char *path, const StWriteTensor *tensors, int count,
             const char *const *meta_keys, const char *const *meta_values, int meta_count,
             char *err, size_t err_len);

#endif
