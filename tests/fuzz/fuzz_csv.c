/*
 * fuzz_csv.c: libFuzzer target for the CSV reader, the Python list literal parser and the
 * CSV dataset readers. The first input byte picks the format and delimiter (so one corpus
 * explores all of them); the rest is the file. Nothing may crash, leak or read out of bounds,
 * and every record must satisfy the reader's own invariants; a generic CSV's twin column
 * (corpus twins.csv) must come out as pairs that name each other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/csv.h"
#include "dataset/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t selector = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[512];

    CsvReader reader;
    csv_init(&reader, text, len, selector & 1 ? '\t' : ',', "fuzz.csv");
    int n, last_line = 0;
    while ((n = csv_next_row(&reader, err, sizeof err)) > 0) {
        if (reader.row_line < last_line) abort(); /* lines only move forward */
        last_line = reader.row_line;
        for (int i = 0; i < n; i++)
            if (strlen(reader.fields[i]) > len) abort();
    }
    csv_free(&reader);

    char *copy = malloc(len + 1); /* the list parser reads a C string */
    memcpy(copy, text, len);
    copy[len] = 0;
    char **items;
    int count;
    if (python_list_parse(copy, &items, &count, err, sizeof err) == 0) csv_free_strings(items, count);
    free(copy);

    static const DatasetFormat formats[] = {DATASET_AUTO, DATASET_CSV, DATASET_NEGBENCH_MCQ,
                                            DATASET_NEGBENCH_RETRIEVAL, DATASET_CCNEG};
    DatasetOptions opt = {.format = formats[(selector >> 1) % 5],
                          .image_root = selector & 0x80 ? "/root" : NULL};
    Dataset ds;
    if (dataset_parse(text, len, selector & 1 ? "d/fuzz.tsv" : "d/fuzz.csv", NULL, 0, &opt, &ds, err,
                      sizeof err) == 0) {
        if (ds.count < 1) abort(); /* success means a non-empty dataset */
        for (int i = 0; i < ds.count; i++) {
            int twin = ds.items[i].twin;
            if (twin != -1 && (!ds.has_twins || twin < 0 || twin >= ds.count || twin == i || ds.items[twin].twin != i))
                abort();
        }
        dataset_free(&ds);
    }
    return 0;
}
