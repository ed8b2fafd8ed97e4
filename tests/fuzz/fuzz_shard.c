/*
 * fuzz_shard.c: libFuzzer target for the shard reader. The input is a shard file; whatever
 * parses must be readable record by record (metadata, pixels, skip entries, verify) without
 * a read outside the input. A seed corpus is any real shard: tng_prep writes them.
 *
 * Random mutations almost never keep a CRC right, so the target first rewrites the header
 * CRC and the index CRC of its copy of the input: the fuzzer then reaches the offset and
 * length checks behind them, which is where an out-of-bounds read would hide.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset/shard.h"

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    uint8_t *data = malloc(size ? size : 1);
    memcpy(data, input, size);
    if (size >= SHARD_HEADER_SIZE + 4) {
        put32(data + 60, (uint32_t)crc32(0L, data, 60));
        uint64_t entries = le(data + 16, 4) + le(data + 20, 4), index = le(data + 40, 8);
        if (index <= size && size - index == 8 * entries + 4)
            put32(data + size - 4, (uint32_t)crc32(0L, data + index, (uInt)(8 * entries)));
    }
    ShardFile sf;
    char err[512];
    if (shard_parse(&sf, data, size, "fuzz.tng", err, sizeof err) == 0) {
        Dataset meta = {0};
        size_t R = sf.header.image_size;
        for (uint32_t i = 0; i < sf.header.n_records; i++) {
            uint64_t item;
            const uint8_t *pixels;
            shard_read_meta(&sf, (int)i, &meta, &item, err, sizeof err);
            if (shard_read_pixels(&sf, (int)i, &pixels, err, sizeof err) == 0) {
                unsigned sum = 0; /* touch every pixel: ASan checks they lie inside the input */
                for (size_t k = 0; k < R * R * 3; k++) sum += pixels[k];
                if (sum == 0xFFFFFFFFu) abort();
            }
        }
        for (uint32_t i = 0; i < sf.header.n_skipped; i++) {
            uint64_t item;
            char *path, *reason;
            if (shard_read_skipped(&sf, (int)i, &item, &path, &reason, err, sizeof err) == 0) {
                free(path);
                free(reason);
            }
        }
        shard_verify(&sf, err, sizeof err);
        dataset_free(&meta);
    }
    shard_close(&sf);
    free(data);
    return 0;
}
