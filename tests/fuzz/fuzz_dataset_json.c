/*
 * fuzz_dataset_json.c: libFuzzer target for the JSON dataset readers (COCO captions, the COCO
 * instances join, Karpathy). The input is split at its first NUL byte: the part before is the
 * captions (or Karpathy) file, the part after, when present, the instances file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    size_t len = nul ? (size_t)(nul - text) : size;
    const char *instances = nul ? nul + 1 : NULL;
    size_t instances_len = nul ? size - len - 1 : 0;
    char err[512];
    static const DatasetFormat formats[] = {DATASET_AUTO, DATASET_COCO, DATASET_KARPATHY};
    for (int f = 0; f < 3; f++) {
        DatasetOptions opt = {.format = formats[f], .splits = f == 2 ? "train,restval" : NULL,
                              .image_root = f == 1 ? "/images" : NULL};
        Dataset ds;
        if (dataset_parse(text, len, "ann/fuzz.json", instances, instances_len, &opt, &ds, err,
                          sizeof err) == 0) {
            for (int i = 0; i < ds.count; i++)
                if (!ds.items[i].image_path || !ds.items[i].source_id || ds.items[i].n_captions < 1)
                    abort();
            dataset_free(&ds);
        }
    }
    return 0;
}
