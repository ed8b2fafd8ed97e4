/*
 * test_safetensors.c: the safetensors reader and writer: a round trip of every dtype and
 * shape kind, F16/BF16/F64 conversion to float, malformed headers and lengths, and what the
 * writer refuses.
 *
 * Every bad input must give -1 and a message naming the file and the tensor or field, with
 * expected and found values; the tests check those words, not just the status. Files live
 * in a mkdtemp directory that is removed at the end. Values are random from a seeded
 * generator and output buffers are NaN-poisoned first, so "bit-exact" means something.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_helpers.h" // defines: err, CHECK_FAILS, fill_random, poison, write_bytes
#include "harness.h"            // defines: RUN_TEST, CHECK, test_summary
#include "io/safetensors.h"     // defines: st_*
#include "scratch.h"            // defines: scratch_make, tmp_path, scratch_remove
#include "util/common.h"        // defines: mallocCheck, read_file

/* A safetensors file from a literal header (padded to 8) and data bytes. */
static uint8_t *make_file(const char *header, const void *data, size_t data_len, size_t *size) {
    size_t n = strlen(header), padded = (n + 7) & ~(size_t)7;
    *size = 8 + padded + data_len;
    uint8_t *buf = mallocCheck(*size);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, ' ', padded - n);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    return buf;
}

static void test_st_roundtrip(void) {
    float a[12], scalar[1], empty[1];
    fill_random(a, 12, 1);
    fill_random(scalar, 1, 2);
    int64_t ids64[5] = {0, -7, 49407, 2147483647, -2147483647 - 1};
    int32_t ids32[4] = {3, -1, 1 << 30, 5};
    StWriteTensor tensors[] = {
        {"z.first", ST_F32, 2, {3, 4}, a},   {"a.scalar", ST_F32, 0, {0}, scalar},
        {"ids64", ST_I64, 1, {5}, ids64},    {"ids32", ST_I32, 2, {2, 2}, ids32},
        {"empty", ST_F32, 2, {0, 3}, empty},
    };
    const char *keys[] = {"step", "note"}, *values[] = {"1234", "quote \" and \\ and \xc3\xa9"};
    const char *path = tmp_path("roundtrip.safetensors");
    CHECK(st_write(path, tensors, 5, keys, values, 2, err, sizeof err) == 0, "%s", err);

    SafeTensors st;
    CHECK(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    size_t size;
    char *raw = read_file(path, &size);
    uint64_t header_len = 0;
    memcpy(&header_len, raw, 8);
    CHECK(header_len % 8 == 0 && raw[8] == '{', "header length %llu",
          (unsigned long long)header_len);
    free(raw);
    CHECK(st.count == 5, "count %d", st.count);
    for (int i = 0; i < st.count && i < 5; i++) /* kept in the given order */
        CHECK(strcmp(st.tensors[i].name, tensors[i].name) == 0, "tensor %d is %s", i,
              st.tensors[i].name);
    CHECK(st.data_size == 48 + 4 + 40 + 16, "data size %zu", st.data_size);
    const StTensor *t = st_find(&st, "z.first");
    float got[12];
    poison(got, 12);
    CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4 && t->dtype == ST_F32,
          "z.first");
    CHECK(t && st_read_f32(&st, t, got, err, sizeof err) == 0 && memcmp(got, a, sizeof a) == 0,
          "F32 not bit-exact: %s", err);
    t = st_find(&st, "a.scalar");
    poison(got, 1);
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar shape");
    CHECK(t && st_read_f32(&st, t, got, err, sizeof err) == 0 && got[0] == scalar[0], "scalar");
    t = st_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->begin == t->end, "empty tensor");
    int32_t ints[5] = {0};
    t = st_find(&st, "ids64");
    CHECK(t && st_read_i32(&st, t, ints, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 5; i++) CHECK(ints[i] == ids64[i], "ids64[%d] = %d", i, ints[i]);
    t = st_find(&st, "ids32");
    CHECK(t && st_read_i32(&st, t, ints, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 4; i++) CHECK(ints[i] == ids32[i], "ids32[%d] = %d", i, ints[i]);
    CHECK(st_meta(&st, "step") && strcmp(st_meta(&st, "step"), "1234") == 0, "metadata step");
    CHECK(st_meta(&st, "note") && strcmp(st_meta(&st, "note"), values[1]) == 0, "metadata note");
    CHECK(st_meta(&st, "absent") == NULL, "absent metadata key");
    t = st_find(&st, "ids32");
    CHECK_FAILS(st_read_f32(&st, t, got, err, sizeof err), "ids32", "I32", "expected a float");
    st_close(&st);
}

static void test_st_float_conversions(void) {
    /* hand-computed binary16 values, including subnormals, the largest finite and inf */
    const uint16_t f16[] = {0x3C00, 0xC000, 0x3555, 0x0001, 0x03FF,
                            0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x8000};
    const float f16_want[] = {1.0f,     -2.0f,    0.333251953125f, 0x1p-24f,  1023 * 0x1p-24f,
                              0x1p-14f, 65504.0f, INFINITY,        -INFINITY, -0.0f};
    /* bfloat16 is the top half of a float32 */
    const uint16_t bf16[] = {0x3F80, 0xC0A0, 0x3EAB, 0x7F80, 0x0001, 0xFF80};
    const float bf16_want[] = {1.0f, -5.0f, 0.333984375f, INFINITY, 0x1p-133f, -INFINITY};
    /* float64 narrows to nearest, ties to even: 1+2^-24 is a tie that goes down to 1 (even),
     * 1+3*2^-24 one that goes up to 1+2^-22; just above a tie goes up */
    const double f64[] = {0.1,   1.0 + 0x1p-24, 1.0 + 3 * 0x1p-24, 1.0 + 0x1p-24 + 0x1p-50,
                          1e300, -1e-50};
    const float f64_want[] = {0.1f, 1.0f, 1.0f + 0x1p-22f, 1.0f + 0x1p-23f, INFINITY, -0.0f};
    const uint16_t nan16 = 0x7E00;
    StWriteTensor tensors[] = {
        {"h", ST_F16, 1, {10}, f16},
        {"b", ST_BF16, 1, {6}, bf16},
        {"d", ST_F64, 1, {6}, f64},
        {"nan", ST_F16, 0, {0}, &nan16},
    };
    void *buf;
    size_t size;
    CHECK(st_serialize(tensors, 4, NULL, NULL, 0, &buf, &size, err, sizeof err) == 0, "%s", err);
    SafeTensors st;
    CHECK(st_parse(&st, buf, size, "conv.safetensors", err, sizeof err) == 0, "%s", err);
    struct {
        const char *name;
        const float *want;
        int n;
    } cases[] = {{"h", f16_want, 10}, {"b", bf16_want, 6}, {"d", f64_want, 6}};
    for (int c = 0; c < 3; c++) {
        float got[10];
        poison(got, 10);
        CHECK(st_read_f32(&st, st_find(&st, cases[c].name), got, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < cases[c].n; i++) /* compare bits: -0.0 and 0.0 must differ */
            CHECK(memcmp(&got[i], &cases[c].want[i], 4) == 0, "%s[%d]: got %a want %a",
                  cases[c].name, i, got[i], cases[c].want[i]);
    }
    float got_nan = 0;
    CHECK(st_read_f32(&st, st_find(&st, "nan"), &got_nan, err, sizeof err) == 0 && isnan(got_nan),
          "F16 NaN gave %g", got_nan);
    /* a sub-range read starts at the right element */
    float part[3];
    CHECK(st_read_f32_range(&st, st_find(&st, "h"), 6, 3, part, err, sizeof err) == 0 &&
              part[0] == 65504.0f && isinf(part[1]) && part[2] == -INFINITY,
          "range read");
    CHECK_FAILS(st_read_f32_range(&st, st_find(&st, "h"), 8, 3, part, err, sizeof err),
                "conv.safetensors: tensor h", "[8, 11)", "it has 10");
    st_close(&st);
    free(buf);
}

/* Each malformed header must be rejected with words that name what is wrong. */
static void test_st_bad_headers(void) {
    static const uint8_t zeros[64];
    struct {
        const char *header;
        size_t data_len;
        const char *expect[3];
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
         24,
         {"tensor b", "overlap tensor a", "[8, 24)"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         8,
         {"tensor a", "[0, 16)", "run past the 8 bytes"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         20,
         {"gap", "[8, 12)", "next is b"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         12,
         {"tensors end at byte 8", "12 bytes of data"}},
        {"{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8,
         {"tensor a", "unknown dtype \"F7\""}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
         16,
         {"tensor a", "hold 16 bytes", "F32 [3] needs 12"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
         8,
         {"tensor a", "overflows"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
         0,
         {"tensor a", "shape entry 0 is -1", "non-negative integer"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4,
         {"tensor a", "shape entry 0 is 1.5"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
         4,
         {"tensor a", "end before they begin"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
         4,
         {"tensor a", "data_offsets", "two non-negative integers"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8,
         {"tensor a appears twice"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],", 4, {"not valid JSON"}},
        {"[1,2]", 0, {"not an object"}},
        {"{} x", 0, {"stray bytes"}},
        {"{\"__metadata__\":{\"k\":1}}", 0, {"__metadata__ value of \"k\"", "not a string"}},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}",
         0,
         {"__metadata__ key \"k\" appears twice"}},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, {"__metadata__ appears twice"}},
        {"{\"a\":[1]}", 0, {"tensor a", "not an object"}},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, {"tensor a", "\"dtype\" is missing"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t size;
        uint8_t *file = make_file(cases[c].header, zeros, cases[c].data_len, &size);
        SafeTensors st;
        err[0] = '\0';
        int rc = st_parse(&st, file, size, "bad.safetensors", err, sizeof err);
        CHECK_FAILS(rc, "bad.safetensors: ");
        for (int e = 0; e < 3 && cases[c].expect[e]; e++)
            CHECK(strstr(err, cases[c].expect[e]) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, err,
                  cases[c].expect[e]);
        CHECK(st.count == 0 && st.tensors == NULL, "case %zu left state behind", c);
        st_close(&st); /* harmless after a failure */
        free(file);
    }
}

static void test_st_bad_lengths(void) {
    SafeTensors st;
    uint8_t file[64];
    memset(file, ' ', sizeof file);
    CHECK_FAILS(st_parse(&st, file, 5, "t.safetensors", err, sizeof err), "t.safetensors",
                "truncated header", "has 5 bytes");
    uint64_t huge = 200000000; /* above the 100 MB limit */
    memcpy(file, &huge, 8);
    CHECK_FAILS(st_parse(&st, file, sizeof file, "t.safetensors", err, sizeof err),
                "header length 200000000", "exceeds the limit");
    uint64_t longer = 1000; /* more than the 56 bytes that follow */
    memcpy(file, &longer, 8);
    CHECK_FAILS(st_parse(&st, file, sizeof file, "t.safetensors", err, sizeof err),
                "header length 1000", "exceeds the 56 bytes that follow");
    CHECK_FAILS(st_open(&st, tmp_path("absent.safetensors"), err, sizeof err),
                "absent.safetensors: cannot open");
    const char *empty = tmp_path("empty.safetensors");
    write_bytes(empty, "", 0);
    CHECK_FAILS(st_open(&st, empty, err, sizeof err), "empty.safetensors", "truncated header");
}

static void test_st_writer_rejects(void) {
    float x[2] = {1, 2};
    StWriteTensor dup[] = {{"w", ST_F32, 1, {1}, x}, {"w", ST_F32, 1, {1}, x + 1}};
    void *buf = NULL;
    size_t size;
    CHECK_FAILS(st_serialize(dup, 2, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "tensor w given twice");
    StWriteTensor reserved[] = {{"__metadata__", ST_F32, 1, {1}, x}};
    CHECK_FAILS(st_serialize(reserved, 1, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "reserved name");
    StWriteTensor negative[] = {{"n", ST_F32, 1, {-2}, x}};
    CHECK_FAILS(st_serialize(negative, 1, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "tensor n has a bad dtype or shape");
    const char *keys[] = {"k", "k"}, *values[] = {"1", "2"};
    CHECK_FAILS(st_serialize(NULL, 0, keys, values, 2, &buf, &size, err, sizeof err),
                "metadata key \"k\" given twice");
    CHECK(buf == NULL, "a failed serialise returned a buffer");
}

int main(void) {
    scratch_make("test_safetensors");
    RUN_TEST(test_st_roundtrip);
    RUN_TEST(test_st_float_conversions);
    RUN_TEST(test_st_bad_headers);
    RUN_TEST(test_st_bad_lengths);
    RUN_TEST(test_st_writer_rejects);
    scratch_remove();
    return test_summary();
}
