/*
 * safetensors.c: the safetensors reader and writer declared in safetensors.h.
 *
 * The parser validates the header completely before returning: every dtype known, every
 * shape a product that does not overflow, every byte range inside the data and exactly the
 * size its shape needs, names unique, and the ranges tiling the data region with no gap or
 * overlap. After that, readers index the data without further checks. Values are read with
 * memcpy because nothing aligns the data region (the header length need not be a multiple
 * of 8), and the format is little-endian, like every host this engine targets.
 */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h" // defines: mallocCheck, callocCheck, strdupCheck, write_file_atomic

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; this reader copies it as is");

/* JSON numbers are doubles in cJSON: integers above 2^53 cannot be told apart. */
#define ST_MAX_JSON_INT 9007199254740992.0

static const struct {
    const char *name;
    size_t size;
} dtype_table[ST_NUM_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},           [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},         [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},         [ST_U32] = {"U32", 4},         [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},         [ST_I64] = {"I64", 8},         [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(StDtype dtype) {
    return (unsigned)dtype < ST_NUM_DTYPES ? dtype_table[dtype].name : "?";
}

size_t st_dtype_size(StDtype dtype) {
    return (unsigned)dtype < ST_NUM_DTYPES ? dtype_table[dtype].size : 0;
}

int st_dtype_parse(const char *name, StDtype *out) {
    for (int i = 0; i < ST_NUM_DTYPES; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (StDtype)i;
            return 0;
        }
    }
    return -1;
}

void st_format_shape(char *buf, size_t len, const int64_t *shape, int ndim) {
    size_t used = 0;
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* Product of the dims times the element size, or -1 if it overflows size_t. */
static int shape_bytes(const int64_t *shape, int ndim, size_t elem_size, size_t *numel,
                       size_t *bytes) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, (size_t)shape[i], &n)) return -1;
    }
    *numel = n;
    return __builtin_mul_overflow(n, elem_size, bytes) ? -1 : 0;
}

static int compare_name_ptrs(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a name that occurs twice in names[0..n), or NULL. */
static const char *find_duplicate(const char *const *names, int n) {
    if (n < 2) return NULL;
    const char **sorted = mallocCheck((size_t)n * sizeof *sorted);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_name_ptrs);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

/* ----------------------------------------------------------------------------
 * Parsing */

/* A JSON number that is a non-negative integer cJSON holds exactly. */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= ST_MAX_JSON_INT) || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_metadata(SafeTensors *st, const cJSON *meta, char *err, size_t err_len) {
    if (!cJSON_IsObject(meta))
        return set_error_in(err, err_len, st->source, "__metadata__ is not an object");
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = callocCheck((size_t)n, sizeof(char *));
    st->meta_values = callocCheck((size_t)n, sizeof(char *));
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return set_error_in(err, err_len, st->source, "__metadata__ value of \"%s\" is not a string",
                        item->string);
        st->meta_keys[st->meta_count] = strdupCheck(item->string);
        st->meta_values[st->meta_count] = strdupCheck(item->valuestring);
        st->meta_count++;
    }
    const char *dup = find_duplicate((const char *const *)st->meta_keys, st->meta_count);
    if (dup) return set_error_in(err, err_len, st->source, "__metadata__ key \"%s\" appears twice", dup);
    return 0;
}

static int parse_tensor(SafeTensors *st, const cJSON *entry, StTensor *t, char *err,
                        size_t err_len) {
    const char *src = st->source, *name = entry->string;
    t->name = strdupCheck(name);
    if (!name[0]) return set_error_in(err, err_len, src, "a tensor has an empty name");
    if (!cJSON_IsObject(entry))
        return set_error_in(err, err_len, src, "tensor %s: header entry is not an object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return set_error_in(err, err_len, src, "tensor %s: \"dtype\" is missing or not a string", name);
    if (st_dtype_parse(dtype->valuestring, &t->dtype) != 0)
        return set_error_in(err, err_len, src, "tensor %s has unknown dtype \"%.32s\"", name,
                    dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return set_error_in(err, err_len, src, "tensor %s: \"shape\" is missing or not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return set_error_in(err, err_len, src, "tensor %s has %d dimensions, more than the %d supported",
                    name, ndim, ST_MAX_DIMS);
    t->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t d;
        if (json_uint(dim, &d) != 0)
            return cJSON_IsNumber(dim)
                       ? set_error_in(err, err_len, src,
                              "tensor %s: shape entry %d is %g, expected a non-negative integer",
                              name, t->ndim, dim->valuedouble)
                       : set_error_in(err, err_len, src,
                              "tensor %s: shape entry %d is not a number, expected a "
                              "non-negative integer",
                              name, t->ndim);
        t->shape[t->ndim++] = (int64_t)d;
    }
    char shape_str[160];
    st_format_shape(shape_str, sizeof shape_str, t->shape, t->ndim);
    size_t bytes;
    if (shape_bytes(t->shape, t->ndim, st_dtype_size(t->dtype), &t->numel, &bytes) != 0)
        return set_error_in(err, err_len, src, "tensor %s: shape %s overflows", name, shape_str);

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(cJSON_GetArrayItem(offsets, 0), &begin) != 0 ||
        json_uint(cJSON_GetArrayItem(offsets, 1), &end) != 0)
        return set_error_in(err, err_len, src,
                    "tensor %s: \"data_offsets\" must be two non-negative integers", name);
    if (begin > end)
        return set_error_in(err, err_len, src, "tensor %s: data_offsets [%llu, %llu) end before they begin",
                    name, (unsigned long long)begin, (unsigned long long)end);
    if (end > st->data_size)
        return set_error_in(err, err_len, src,
                    "tensor %s: data_offsets [%llu, %llu) run past the %zu bytes of data", name,
                    (unsigned long long)begin, (unsigned long long)end, st->data_size);
    if (end - begin != bytes)
        return set_error_in(err, err_len, src,
                    "tensor %s: data_offsets [%llu, %llu) hold %llu bytes, but %s %s needs %zu",
                    name, (unsigned long long)begin, (unsigned long long)end,
                    (unsigned long long)(end - begin), st_dtype_name(t->dtype), shape_str, bytes);
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    return 0;
}

static int compare_by_offsets(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The byte ranges, sorted, must follow each other exactly from 0 to the end of the data. */
static int check_tiling(SafeTensors *st, char *err, size_t err_len) {
    const StTensor **order = mallocCheck((size_t)(st->count ? st->count : 1) * sizeof *order);
    for (int i = 0; i < st->count; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->count, sizeof *order, compare_by_offsets);
    size_t pos = 0;
    int rc = 0;
    for (int i = 0; i < st->count && rc == 0; i++) {
        const StTensor *t = order[i];
        if (t->begin < pos)
            rc = set_error_in(err, err_len, st->source,
                      "tensor %s: data_offsets [%zu, %zu) overlap tensor %s, which ends at %zu",
                      t->name, t->begin, t->end, order[i - 1]->name, pos);
        else if (t->begin > pos)
            rc = set_error_in(err, err_len, st->source,
                      "gap in the data: bytes [%zu, %zu) belong to no tensor (next is %s)", pos,
                      t->begin, t->name);
        pos = t->end;
    }
    if (rc == 0 && pos != st->data_size)
        rc = set_error_in(err, err_len, st->source,
                  "tensors end at byte %zu of the data, but the file holds %zu bytes of data", pos,
                  st->data_size);
    free(order);
    return rc;
}

static int parse_header(SafeTensors *st, const uint8_t *bytes, size_t size, char *err,
                        size_t err_len) {
    const char *src = st->source;
    if (size < 8)
        return set_error_in(err, err_len, src,
                    "truncated header: the file has %zu bytes, fewer than the 8 of the header "
                    "length",
                    size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)bytes[i] << (8 * i);
    if (n > ST_MAX_HEADER_BYTES)
        return set_error_in(err, err_len, src, "header length %llu exceeds the limit of %llu bytes",
                    (unsigned long long)n, ST_MAX_HEADER_BYTES);
    if (n > size - 8)
        return set_error_in(err, err_len, src,
                    "header length %llu exceeds the %zu bytes that follow it (truncated file?)",
                    (unsigned long long)n, size - 8);
    const char *header = (const char *)bytes + 8;
    st->data = bytes + 8 + n;
    st->data_size = size - 8 - (size_t)n;

    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, (size_t)n, &parse_end, 0);
    if (!root) {
        size_t at = parse_end && parse_end >= header ? (size_t)(parse_end - header) : 0;
        return set_error_in(err, err_len, src, "header is not valid JSON (error near byte %zu of %llu)", at,
                    (unsigned long long)n);
    }
    int rc = 0;
    for (const char *p = parse_end; p < header + n && rc == 0; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            rc = set_error_in(err, err_len, src, "header has stray bytes after its JSON (at byte %zu)",
                      (size_t)(p - header));
    if (rc == 0 && !cJSON_IsObject(root))
        rc = set_error_in(err, err_len, src, "header is JSON but not an object");
    if (rc == 0) {
        st->tensors = callocCheck((size_t)cJSON_GetArraySize(root), sizeof(StTensor));
        int seen_metadata = 0;
        const cJSON *entry;
        cJSON_ArrayForEach(entry, root) {
            if (strcmp(entry->string, "__metadata__") == 0) {
                rc = seen_metadata++ ? set_error_in(err, err_len, src, "__metadata__ appears twice")
                                     : parse_metadata(st, entry, err, err_len);
            } else {
                rc = parse_tensor(st, entry, &st->tensors[st->count++], err, err_len);
            }
            if (rc) break;
        }
    }
    cJSON_Delete(root);
    if (rc) return rc;

    const char **names = mallocCheck((size_t)(st->count ? st->count : 1) * sizeof *names);
    for (int i = 0; i < st->count; i++) names[i] = st->tensors[i].name;
    const char *dup = find_duplicate(names, st->count);
    if (dup) rc = set_error_in(err, err_len, src, "tensor %s appears twice in the header", dup);
    free(names);
    return rc ? rc : check_tiling(st, err, err_len);
}

int st_parse(SafeTensors *st, const void *buf, size_t size, const char *source, char *err,
             size_t err_len) {
    memset(st, 0, sizeof *st);
    st->source = strdupCheck(source ? source : "<memory>");
    if (parse_header(st, buf, size, err, err_len) != 0) {
        st_close(st);
        return -1;
    }
    return 0;
}

int st_open(SafeTensors *st, const char *path, char *err, size_t err_len) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return set_error_in(err, err_len, path, "cannot open: %s", strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return set_error_in(err, err_len, path, "not a regular file");
    }
    size_t size = (size_t)info.st_size;
    /* mmap cannot map 0 bytes; such a file is rejected by the parser as truncated. A file
     * replaced by rename while mapped keeps its old inode, so our view stays intact. */
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) return set_error_in(err, err_len, path, "cannot map: %s", strerror(map_errno));
    if (st_parse(st, map ? map : "", size, path, err, err_len) != 0) {
        if (map) munmap(map, size);
        return -1;
    }
    st->mapping = map;
    st->mapping_size = size;
    return 0;
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->count; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->source);
    if (st->mapping) munmap(st->mapping, st->mapping_size);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Reading values */

/* IEEE binary16 to binary32: every half value is exactly representable as a float. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    float value;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24 */
        value = (float)mantissa * 0x1p-24f;
        return sign ? -value : value;
    }
    uint32_t bits = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13) /* inf, NaN */
                                   : sign | ((exponent + 112u) << 23) | (mantissa << 13);
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* bfloat16 is the top half of a float32. */
static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

int st_read_f32_range(const SafeTensors *st, const StTensor *t, size_t first, size_t count,
                      float *out, char *err, size_t err_len) {
    if (first > t->numel || count > t->numel - first)
        return set_error_in(err, err_len, st->source,
                    "tensor %s: elements [%zu, %zu) requested, but it has %zu", t->name, first,
                    first + count, t->numel);
    size_t elem = st_dtype_size(t->dtype);
    const uint8_t *src = st->data + t->begin + first * elem;
    switch (t->dtype) {
    case ST_F32: memcpy(out, src, count * sizeof(float)); return 0;
    case ST_F16:
    case ST_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = t->dtype == ST_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        return 0;
    case ST_F64:
        for (size_t i = 0; i < count; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            out[i] = (float)d; /* the default rounding mode: to nearest, ties to even */
        }
        return 0;
    default:
        return set_error_in(err, err_len, st->source,
                    "tensor %s has dtype %s, expected a float dtype (F32, F16, BF16 or F64)",
                    t->name, st_dtype_name(t->dtype));
    }
}

int st_read_f32(const SafeTensors *st, const StTensor *t, float *out, char *err, size_t err_len) {
    return st_read_f32_range(st, t, 0, t->numel, out, err, err_len);
}

int st_read_i32(const SafeTensors *st, const StTensor *t, int32_t *out, char *err, size_t err_len) {
    size_t elem = st_dtype_size(t->dtype);
    int is_signed;
    switch (t->dtype) {
    case ST_I8:
    case ST_I16:
    case ST_I32:
    case ST_I64: is_signed = 1; break;
    case ST_BOOL:
    case ST_U8:
    case ST_U16:
    case ST_U32:
    case ST_U64: is_signed = 0; break;
    default:
        return set_error_in(err, err_len, st->source, "tensor %s has dtype %s, expected an integer dtype",
                    t->name, st_dtype_name(t->dtype));
    }
    const uint8_t *src = st->data + t->begin;
    for (size_t i = 0; i < t->numel; i++) {
        uint64_t raw = 0; /* little-endian bytes into the low end, then sign-extend */
        memcpy(&raw, src + i * elem, elem);
        int shift = (int)(64 - 8 * elem);
        int64_t value = is_signed && shift ? (int64_t)(raw << shift) >> shift : (int64_t)raw;
        if ((!is_signed && raw > INT32_MAX) || value < INT32_MIN || value > INT32_MAX)
            return set_error_in(err, err_len, st->source, "tensor %s: element %zu does not fit in int32",
                        t->name, i);
        out[i] = (int32_t)value;
    }
    return 0;
}

/* ----------------------------------------------------------------------------
 * Writing */

static int serialize(const char *source, const StWriteTensor *tensors, int count,
                     const char *const *meta_keys, const char *const *meta_values, int meta_count,
                     void **out, size_t *out_size, char *err, size_t err_len) {
    size_t *sizes = mallocCheck((size_t)(count ? count : 1) * sizeof *sizes);
    const char **names = mallocCheck((size_t)(count ? count : 1) * sizeof *names);
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    int rc = 0;
    if (!root) {
        rc = set_error_in(err, err_len, source, "out of memory building the header");
        goto done;
    }
    if (meta_count > 0) {
        const char *dup = find_duplicate(meta_keys, meta_count);
        if (dup) {
            rc = set_error_in(err, err_len, source, "metadata key \"%s\" given twice", dup);
            goto done;
        }
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < meta_count && meta; i++)
            if (!cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i])) meta = NULL;
        if (!meta) {
            rc = set_error_in(err, err_len, source, "out of memory building the header");
            goto done;
        }
    }
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        const StWriteTensor *t = &tensors[i];
        names[i] = t->name ? t->name : "";
        size_t numel;
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
            rc = set_error_in(err, err_len, source, "tensor %d has an empty or reserved name \"%s\"", i,
                      names[i]);
            goto done;
        }
        if ((unsigned)t->dtype >= ST_NUM_DTYPES || t->ndim < 0 || t->ndim > ST_MAX_DIMS ||
            shape_bytes(t->shape, t->ndim, st_dtype_size(t->dtype), &numel, &sizes[i]) != 0 ||
            offset + sizes[i] > (size_t)ST_MAX_JSON_INT) {
            rc = set_error_in(err, err_len, source, "tensor %s has a bad dtype or shape", t->name);
            goto done;
        }
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = entry ? cJSON_AddArrayToObject(entry, "shape") : NULL;
        cJSON *offsets = shape ? cJSON_AddArrayToObject(entry, "data_offsets") : NULL;
        int ok = offsets && cJSON_AddStringToObject(entry, "dtype", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim && ok; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        ok = ok && cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset)) &&
             cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + sizes[i])));
        if (!ok) {
            rc = set_error_in(err, err_len, source, "out of memory building the header");
            goto done;
        }
        offset += sizes[i];
    }
    const char *dup = find_duplicate(names, count);
    if (dup) {
        rc = set_error_in(err, err_len, source, "tensor %s given twice", dup);
        goto done;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) {
        rc = set_error_in(err, err_len, source, "out of memory printing the header");
        goto done;
    }
    /* pad with spaces so the data region starts 8-byte aligned, as the Python writer does */
    size_t json_len = strlen(json), header_len = (json_len + 7) & ~(size_t)7;
    size_t total = 8 + header_len + offset;
    uint8_t *buf = mallocCheck(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)header_len >> (8 * i));
    memcpy(buf + 8, json, json_len);
    memset(buf + 8 + json_len, ' ', header_len - json_len);
    uint8_t *dst = buf + 8 + header_len;
    for (int i = 0; i < count; i++) {
        if (sizes[i]) memcpy(dst, tensors[i].data, sizes[i]);
        dst += sizes[i];
    }
    *out = buf;
    *out_size = total;
done:
    free(json);
    cJSON_Delete(root);
    free(names);
    free(sizes);
    return rc;
}

int st_serialize(const StWriteTensor *tensors, int count, const char *const *meta_keys,
                 const char *const *meta_values, int meta_count, void **out, size_t *out_size,
                 char *err, size_t err_len) {
    return serialize("<memory>", tensors, count, meta_keys, meta_values, meta_count, out, out_size,
                     err, err_len);
}

int st_write(const char *path, const StWriteTensor *tensors, int count,
             const char *const *meta_keys, const char *const *meta_values, int meta_count,
             char *err, size_t err_len) {
    void *buf;
    size_t size;
    if (serialize(path, tensors, count, meta_keys, meta_values, meta_count, &buf, &size, err,
                  err_len) != 0)
        return -1;
    int rc = 0;
    if (write_file_atomic(path, buf, size) != 0)
        rc = set_error_in(err, err_len, path, "cannot write: %s", strerror(errno));
    free(buf);
    return rc;
}
