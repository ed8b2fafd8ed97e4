/*
 * dataset.h: image-text datasets read into one in-memory form: a list of items, each an
 * image path with its captions, object labels and a stable source id.
 *
 * Formats (docs/REFERENCE.md §5): COCO caption JSON (2014/2017, optionally joined with the
 * instances JSON for object labels), Karpathy's dataset_coco.json, a generic CSV/TSV
 * `filepath,caption[,objects][,twin]` (objects ';'-separated; twin, by header only, the
 * filepath of the image's counterfactual twin as written, empty for none: tng_synth --twins),
 * NegBench's MCQ and retrieval CSVs,
 * and CC-Neg as `image_path,caption,negated_caption`.
 *
 * Paths: without an image root a relative path is taken relative to the dataset file's
 * folder. With one, a relative path is put under it and an absolute path keeps only its
 * file name (NegBench ships absolute paths from its authors' machines). The source id does
 * not depend on the root: it is the COCO / Karpathy image id, else the path as written.
 *
 * Parsers never exit on bad input: they return -1 and a message naming the file (and line,
 * for CSV) and what was expected versus found, so they can be fuzzed.
 */
#ifndef TNG_DATASET_H
#define TNG_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "dataset/image.h" // defines: ImageStatus, ImageMode

typedef enum {
    DATASET_AUTO = 0, /* told apart by content: JSON keys, CSV header names */
    DATASET_COCO,
    DATASET_KARPATHY,
    DATASET_CSV, /* filepath,caption[,objects][,twin]; rows naming the same file merge into one item */
    DATASET_NEGBENCH_MCQ,
    DATASET_NEGBENCH_RETRIEVAL,
    DATASET_CCNEG,
} DatasetFormat;

typedef struct {
    char *image_path; /* the path to read (image root applied) */
    char *source_id;  /* stable id: COCO/Karpathy image id, else the path as written */
    char **captions;
    int n_captions;
    char **objects;
    int n_objects;
    int answer;         /* index of the right caption: MCQ correct_answer, CC-Neg 0; else -1 */
    char *split;        /* Karpathy split ("train", "val", "test", "restval"), else NULL */
    char *mcq_template; /* NegBench MCQ correct_answer_template ("positive", ...), else NULL */
    int line;           /* CSV: the line where its (first) row starts, for messages; else 0 */
    char *twin_source;  /* CSV twin column: its twin's source id (path as written), else NULL */
    int twin;           /* the index of that twin item (the pair names each other), else -1 */
} DatasetItem;

typedef struct {
    DatasetItem *items;
    int count, capacity;
    DatasetFormat format;
    int empty_captions; /* captions with nothing but white space (kept; dataset_load warns) */
    int has_twins;      /* 1: a CSV with a twin column (every item's twin is then resolved) */
} Dataset;

typedef struct {
    DatasetFormat format;
    const char *image_root; /* NULL: paths relative to the dataset file */
    const char *instances;  /* COCO: instances JSON giving object labels, or NULL */
    const char *splits;     /* Karpathy: comma-separated splits to keep ("train,restval"), or NULL */
} DatasetOptions;

/* Reads a dataset file (and opt->instances). Returns 0, or -1 with a message in err. */
int dataset_load(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                 size_t err_len);
/*
 * The same on text in memory (need not be NUL-terminated). source names the file in
 * messages and sets the folder relative paths start from. instances may be NULL.
 */
int dataset_parse(const char *text, size_t len, const char *source, const char *instances,
                  size_t instances_len, const DatasetOptions *opt, Dataset *ds, char *err,
                  size_t err_len);
void dataset_free(Dataset *ds);
/* Drops (and frees) the items i with keep[i] == 0; the others keep their order (and their
 * twins, renumbered; a twin dropped leaves -1). */
void dataset_keep(Dataset *ds, const int *keep);

/* "coco", "karpathy", "csv", "negbench-mcq", "negbench-retrieval", "ccneg", "auto". */
const char *dataset_format_name(DatasetFormat format);
int dataset_format_parse(const char *name, DatasetFormat *format);

/* Building a dataset item by item (shard readers, tests). Strings are copied. */
DatasetItem *dataset_push_item(Dataset *ds, const char *image_path, const char *source_id);
void dataset_item_add_caption(DatasetItem *item, const char *caption);
void dataset_item_add_object(DatasetItem *item, const char *object); /* skips duplicates */
/* Total captions over all items. */
long dataset_caption_count(const Dataset *ds);

/* Reads and decodes the item's image, then resizes and crops it to R x R RGB (HWC) as in
 * image.h. Returns IMAGE_OK, or the failure with a message naming the file in err. */
ImageStatus dataset_item_crop(const DatasetItem *item, int image_size, ImageMode mode,
                              uint8_t *crop_rgb, char *err, size_t err_len);

/* A 64-bit hash (FNV-1a style mixing, 8 bytes at a time) for fingerprints and cache keys. */
uint64_t hash64(const void *data, size_t size, uint64_t seed);
static inline uint64_t hash64_str(const char *s, uint64_t seed) {
    size_t n = 0;
    while (s[n]) n++;
    return hash64(s, n + 1, seed); /* the NUL separates consecutive strings */
}

#endif
