/*
 * dataset.c: the readers declared in dataset.h.
 *
 * JSON goes through cJSON (the whole document in memory: COCO's largest caption file is
 * 90 MB, fine on any training host). CSV goes through csv.c. Items that share an image
 * (COCO annotations, CSV rows naming one file) are found through a small string hash map,
 * so a 600k-caption file loads in linear time.
 */
#include "dataset/dataset.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, reallocCheck, strdupCheck, read_file
#include "dataset/csv.h"    // defines: CsvReader, csv_next_row, python_list_parse

/* ----------------------------------------------------------------------------
 * Small helpers: hashing, a string -> int map, errors */

uint64_t hash64(const void *data, size_t size, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9e3779b97f4a7c15ULL);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        h = (h ^ word) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < size; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= size;
    /* splitmix64's finaliser spreads the last bytes over every bit */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

typedef struct {
    char **keys; /* NULL = empty slot; keys are owned copies */
    int *values;
    size_t cap, count;
} StrMap;

static size_t strmap_slot(const StrMap *m, const char *key) {
    size_t i = (size_t)hash64_str(key, 0) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}

static int strmap_get(const StrMap *m, const char *key) {
    if (m->cap == 0) return -1;
    size_t i = strmap_slot(m, key);
    return m->keys[i] ? m->values[i] : -1;
}

static void strmap_put(StrMap *m, const char *key, int value) {
    if (2 * (m->count + 1) > m->cap) { /* keep the load under one half */
        StrMap grown = {.cap = m->cap ? 2 * m->cap : 64};
        grown.keys = callocCheck(grown.cap, sizeof(char *));
        grown.values = mallocCheck(grown.cap * sizeof(int));
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = strmap_slot(&grown, m->keys[i]);
            grown.keys[j] = m->keys[i];
            grown.values[j] = m->values[i];
        }
        grown.count = m->count;
        free(m->keys);
        free(m->values);
        *m = grown;
    }
    size_t i = strmap_slot(m, key);
    if (!m->keys[i]) {
        m->keys[i] = strdupCheck(key);
        m->count++;
    }
    m->values[i] = value;
}

static void strmap_free(StrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

/* ----------------------------------------------------------------------------
 * Building items */

/* Appends to an array that grows at powers of two, so no capacity needs storing. */
static void strlist_push(char ***list, int *count, const char *s) {
    int n = *count;
    if (n == 0 || (n & (n - 1)) == 0) *list = reallocCheck(*list, sizeof(char *) * (n ? 2 * n : 1));
    (*list)[n] = strdupCheck(s);
    *count = n + 1;
}

DatasetItem *dataset_push_item(Dataset *ds, const char *image_path, const char *source_id) {
    if (ds->count == ds->capacity) {
        ds->capacity = ds->capacity ? 2 * ds->capacity : 64;
        ds->items = reallocCheck(ds->items, sizeof(DatasetItem) * ds->capacity);
    }
    DatasetItem *item = &ds->items[ds->count++];
    memset(item, 0, sizeof *item);
    item->image_path = strdupCheck(image_path);
    item->source_id = strdupCheck(source_id);
    item->answer = -1;
    item->twin = -1;
    return item;
}

void dataset_item_add_caption(DatasetItem *item, const char *caption) {
    strlist_push(&item->captions, &item->n_captions, caption);
}

void dataset_item_add_object(DatasetItem *item, const char *object) {
    for (int i = 0; i < item->n_objects; i++)
        if (strcmp(item->objects[i], object) == 0) return;
    strlist_push(&item->objects, &item->n_objects, object);
}

long dataset_caption_count(const Dataset *ds) {
    long n = 0;
    for (int i = 0; i < ds->count; i++) n += ds->items[i].n_captions;
    return n;
}

static void item_free(DatasetItem *item) {
    free(item->image_path);
    free(item->source_id);
    csv_free_strings(item->captions, item->n_captions);
    csv_free_strings(item->objects, item->n_objects);
    free(item->split);
    free(item->mcq_template);
    free(item->twin_source);
}

void dataset_free(Dataset *ds) {
    for (int i = 0; i < ds->count; i++) item_free(&ds->items[i]);
    free(ds->items);
    memset(ds, 0, sizeof *ds);
}

void dataset_keep(Dataset *ds, const int *keep) {
    int *renumbered = mallocCheck(sizeof(int) * (size_t)(ds->count ? ds->count : 1)), kept = 0;
    for (int i = 0; i < ds->count; i++) renumbered[i] = keep[i] ? kept++ : -1;
    kept = 0;
    for (int i = 0; i < ds->count; i++) {
        if (!keep[i]) {
            item_free(&ds->items[i]);
            continue;
        }
        ds->items[kept] = ds->items[i];
        if (ds->items[kept].twin >= 0) ds->items[kept].twin = renumbered[ds->items[kept].twin];
        kept++;
    }
    ds->count = kept;
    free(renumbered);
}

static const char *const format_names[] = {
    [DATASET_AUTO] = "auto",
    [DATASET_COCO] = "coco",
    [DATASET_KARPATHY] = "karpathy",
    [DATASET_CSV] = "csv",
    [DATASET_NEGBENCH_MCQ] = "negbench-mcq",
    [DATASET_NEGBENCH_RETRIEVAL] = "negbench-retrieval",
    [DATASET_CCNEG] = "ccneg",
};

const char *dataset_format_name(DatasetFormat format) {
    if ((unsigned)format >= sizeof format_names / sizeof *format_names) return "?";
    return format_names[format];
}

int dataset_format_parse(const char *name, DatasetFormat *format) {
    for (size_t i = 0; i < sizeof format_names / sizeof *format_names; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (DatasetFormat)i;
            return 0;
        }
    }
    return -1;
}

ImageStatus dataset_item_crop(const DatasetItem *item, int image_size, ImageMode mode,
                              uint8_t *crop_rgb, char *err, size_t err_len) {
    size_t size;
    char *data = read_file(item->image_path, &size);
    if (!data) {
        snprintf(err, err_len, "%s: cannot read: %s", item->image_path, strerror(errno));
        return IMAGE_ERR_IO;
    }
    char inner[IMAGE_ERROR_SIZE];
    ImageStatus status = image_load_crop((const uint8_t *)data, size, image_size, mode, crop_rgb,
                                         inner, sizeof inner);
    free(data);
    if (status != IMAGE_OK) snprintf(err, err_len, "%s: %s", item->image_path, inner);
    return status;
}

/* ----------------------------------------------------------------------------
 * Paths */

typedef struct {
    const char *image_root; /* may be NULL */
    char *base_dir;         /* folder of the dataset file, "" for the current one */
} PathRules;

static void path_rules_init(PathRules *rules, const char *source, const char *image_root) {
    rules->image_root = image_root && *image_root ? image_root : NULL;
    const char *slash = strrchr(source, '/');
    size_t n = slash ? (size_t)(slash - source) + 1 : 0;
    rules->base_dir = mallocCheck(n + 1);
    memcpy(rules->base_dir, source, n);
    rules->base_dir[n] = 0;
}

/* The path to read for a path as written in a dataset file (malloc'd). */
static char *resolve_path(const PathRules *rules, const char *written) {
    const char *prefix = rules->base_dir, *rest = written;
    if (rules->image_root) {
        prefix = rules->image_root;
        if (written[0] == '/') {
            const char *slash = strrchr(written, '/');
            rest = slash + 1;
        }
    } else if (written[0] == '/') {
        prefix = "";
    }
    size_t np = strlen(prefix), nr = strlen(rest);
    int add_slash = np > 0 && prefix[np - 1] != '/';
    char *out = mallocCheck(np + add_slash + nr + 1);
    memcpy(out, prefix, np);
    if (add_slash) out[np] = '/';
    memcpy(out + np + add_slash, rest, nr + 1);
    return out;
}

/* Adds an item for the written path, or returns the existing one with the same key. */
static DatasetItem *item_for(Dataset *ds, StrMap *by_key, const PathRules *rules,
                             const char *written_path, const char *key) {
    int at = strmap_get(by_key, key);
    if (at >= 0) return &ds->items[at];
    char *path = resolve_path(rules, written_path);
    DatasetItem *item = dataset_push_item(ds, path, key);
    free(path);
    strmap_put(by_key, key, ds->count - 1);
    return item;
}

/* ----------------------------------------------------------------------------
 * JSON formats */

/* Line number of a byte offset, for messages about where cJSON stopped. */
static int line_of(const char *text, size_t len, size_t offset) {
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++) line += text[i] == '\n';
    return line;
}

static cJSON *parse_json(const char *text, size_t len, const char *source, char *err,
                         size_t err_len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        set_error(err, err_len, "%s:%d: not valid JSON (parsing stopped at byte %zu)", source,
             line_of(text, len, at), at);
    }
    return root;
}

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integer id (COCO ids are JSON numbers) as a decimal string; 0 if it is not one.
 * Only doubles that hold an integer exactly (|x| <= 2^53) count: casting anything larger to
 * long long is undefined behaviour (found by fuzz_dataset_json). */
static int json_id(const cJSON *obj, const char *key, char *out, size_t out_len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double x = cJSON_IsNumber(v) ? v->valuedouble : 0.5;
    if (fabs(x) <= 9007199254740992.0 && floor(x) == x) {
        snprintf(out, out_len, "%lld", (long long)x);
        return 1;
    }
    if (cJSON_IsString(v) && *v->valuestring) {
        snprintf(out, out_len, "%s", v->valuestring);
        return 1;
    }
    return 0;
}

static const cJSON *json_array(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

/* COCO instances: object labels (category names) for the items already read. */
static int coco_add_objects(Dataset *ds, StrMap *by_id, const char *text, size_t len,
                            const char *source, char *err, size_t err_len) {
    cJSON *root = parse_json(text, len, source, err, err_len);
    if (!root) return -1;
    int rc = -1;
    StrMap category_at = {0};
    const cJSON *categories = json_array(root, "categories");
    const cJSON *annotations = json_array(root, "annotations");
    if (!categories || !annotations) {
        set_error(err, err_len, "%s: expected an instances file with arrays \"categories\" and "
             "\"annotations\"", source);
        goto done;
    }
    int index = 0;
    const cJSON *cat;
    cJSON_ArrayForEach(cat, categories) {
        char id[64];
        const char *name = json_string(cat, "name");
        if (!json_id(cat, "id", id, sizeof id) || !name) {
            set_error(err, err_len, "%s: categories[%d]: expected an integer \"id\" and a string "
                 "\"name\"", source, index);
            goto done;
        }
        strmap_put(&category_at, id, index++);
    }
    index = 0;
    const cJSON *ann;
    cJSON_ArrayForEach(ann, annotations) {
        char image_id[64], category_id[64];
        if (!json_id(ann, "image_id", image_id, sizeof image_id) ||
            !json_id(ann, "category_id", category_id, sizeof category_id)) {
            set_error(err, err_len, "%s: annotations[%d]: expected integer \"image_id\" and "
                 "\"category_id\"", source, index);
            goto done;
        }
        int cat_index = strmap_get(&category_at, category_id);
        if (cat_index < 0) {
            set_error(err, err_len, "%s: annotations[%d]: category_id %s is not in \"categories\"",
                 source, index, category_id);
            goto done;
        }
        int item = strmap_get(by_id, image_id);
        if (item >= 0) /* images without captions are not items; their objects are unused */
            dataset_item_add_object(&ds->items[item],
                                    json_string(cJSON_GetArrayItem(categories, cat_index), "name"));
        index++;
    }
    rc = 0;
done:
    strmap_free(&category_at);
    cJSON_Delete(root);
    return rc;
}

static int parse_coco(const cJSON *root, const char *source, const PathRules *rules,
                      const char *instances, size_t instances_len, const char *instances_source,
                      Dataset *ds, char *err,
                      size_t err_len) {
    const cJSON *images = json_array(root, "images");
    const cJSON *annotations = json_array(root, "annotations");
    if (!images || !annotations)
        return set_error(err, err_len, "%s: expected COCO captions with arrays \"images\" and "
                    "\"annotations\"", source);
    /* file names by image id first; items are made when a caption arrives, so an image
     * without captions never becomes an item */
    StrMap file_of = {0}, by_id = {0};
    const char **file_names = mallocCheck(sizeof(char *) * (size_t)(cJSON_GetArraySize(images) + 1));
    int rc = -1, index = 0;
    const cJSON *img;
    cJSON_ArrayForEach(img, images) {
        char id[64];
        const char *file_name = json_string(img, "file_name");
        if (!json_id(img, "id", id, sizeof id) || !file_name || !*file_name) {
            set_error(err, err_len, "%s: images[%d]: expected an integer \"id\" and a string "
                 "\"file_name\"", source, index);
            goto done;
        }
        file_names[index] = file_name;
        strmap_put(&file_of, id, index++);
    }
    index = 0;
    const cJSON *ann;
    cJSON_ArrayForEach(ann, annotations) {
        char id[64];
        const char *caption = json_string(ann, "caption");
        if (!json_id(ann, "image_id", id, sizeof id) || !caption) {
            set_error(err, err_len, "%s: annotations[%d]: expected an integer \"image_id\" and a "
                 "string \"caption\"", source, index);
            goto done;
        }
        int file = strmap_get(&file_of, id);
        if (file < 0) {
            set_error(err, err_len, "%s: annotations[%d]: image_id %s is not in \"images\"", source,
                 index, id);
            goto done;
        }
        dataset_item_add_caption(item_for(ds, &by_id, rules, file_names[file], id), caption);
        index++;
    }
    rc = instances ? coco_add_objects(ds, &by_id, instances, instances_len, instances_source,
                                      err, err_len)
                   : 0;
done:
    free(file_names);
    strmap_free(&file_of);
    strmap_free(&by_id);
    return rc;
}

/* 1 if split is one of the comma-separated names in list. */
static int split_selected(const char *list, const char *split) {
    size_t n = strlen(split);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, split, n) == 0) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int parse_karpathy(const cJSON *root, const char *source, const PathRules *rules,
                          const char *splits, Dataset *ds, char *err, size_t err_len) {
    const cJSON *images = json_array(root, "images");
    if (!images) return set_error(err, err_len, "%s: expected a Karpathy split with an array \"images\"", source);
    int index = 0;
    const cJSON *img;
    cJSON_ArrayForEach(img, images) {
        char id[64];
        const char *dir = json_string(img, "filepath"), *name = json_string(img, "filename");
        const char *split = json_string(img, "split");
        const cJSON *sentences = json_array(img, "sentences");
        if (!name || !*name || !split || !sentences ||
            !(json_id(img, "cocoid", id, sizeof id) || json_id(img, "imgid", id, sizeof id)))
            return set_error(err, err_len, "%s: images[%d]: expected \"filename\", \"split\", "
                        "\"sentences\" and an integer \"cocoid\" or \"imgid\"", source, index);
        index++;
        if (splits && !split_selected(splits, split)) continue;
        size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
        char *written = mallocCheck(n);
        snprintf(written, n, "%s%s%s", dir ? dir : "", dir && *dir ? "/" : "", name);
        char *path = resolve_path(rules, written);
        DatasetItem *item = dataset_push_item(ds, path, id);
        free(path);
        free(written);
        item->split = strdupCheck(split);
        const cJSON *sentence;
        cJSON_ArrayForEach(sentence, sentences) {
            const char *raw = json_string(sentence, "raw");
            if (!raw)
                return set_error(err, err_len, "%s: images[%d] (%s): each sentence needs a string "
                            "\"raw\"", source, index - 1, name);
            dataset_item_add_caption(item, raw);
        }
        if (item->n_captions == 0) item_free(&ds->items[--ds->count]); /* nothing to score */
    }
    return 0;
}

/* ----------------------------------------------------------------------------
 * CSV formats */

static int column_index(char **names, int n, const char *const *candidates) {
    for (int c = 0; candidates[c]; c++)
        for (int i = 0; i < n; i++)
            if (strcasecmp(names[i], candidates[c]) == 0) return i;
    return -1;
}

static const char *const path_columns[] = {"filepath", "image_path", "image", "file_name",
                                           "filename", "path", NULL};
static const char *const caption_columns[] = {"caption", "text", "title", NULL};
static const char *const objects_columns[] = {"objects", NULL};
static const char *const twin_columns[] = {"twin", NULL};

/* Format of a CSV from its header row (generic CSV if no known column set appears). */
static DatasetFormat csv_detect(char **names, int n) {
    static const char *const mcq[] = {"correct_answer", NULL};
    static const char *const retrieval[] = {"captions", NULL};
    static const char *const ccneg[] = {"negated_caption", NULL};
    if (column_index(names, n, mcq) >= 0) return DATASET_NEGBENCH_MCQ;
    if (column_index(names, n, ccneg) >= 0) return DATASET_CCNEG;
    if (column_index(names, n, retrieval) >= 0) return DATASET_NEGBENCH_RETRIEVAL;
    return DATASET_CSV;
}

/* Splits "a; b;c" at ';', trimming spaces, skipping empty labels. */
static void add_objects(DatasetItem *item, const char *list) {
    char *copy = strdupCheck(list);
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1])) *--end = 0;
        if (*tok) dataset_item_add_object(item, tok);
    }
    free(copy);
}

typedef struct {
    int path, caption, objects;  /* generic; objects may be -1 */
    int twin;                    /* generic, by header only; may be -1 */
    int answer, template_col;    /* MCQ */
    int captions[16], n_captions; /* MCQ caption_0..; retrieval: captions[0] */
    int negated;                 /* CC-Neg */
} CsvColumns;

/* Finds the columns a format needs. Returns 0, or -1 naming the missing one. */
static int csv_columns(DatasetFormat format, char **names, int n, int has_header,
                       const char *source, CsvColumns *cols, char *err, size_t err_len) {
    memset(cols, -1, sizeof *cols);
    cols->n_captions = 0;
    const char *missing = NULL;
    if (format == DATASET_CSV) {
        if (!has_header) {
            if (n < 2) return set_error(err, err_len, "%s:1: expected at least 2 fields "
                                   "(filepath,caption[,objects]), found %d", source, n);
            cols->path = 0;
            cols->caption = 1;
            cols->objects = n > 2 ? 2 : -1;
            return 0;
        }
        cols->path = column_index(names, n, path_columns);
        cols->caption = column_index(names, n, caption_columns);
        cols->objects = column_index(names, n, objects_columns);
        cols->twin = column_index(names, n, twin_columns);
        if (cols->path < 0) missing = "filepath";
        else if (cols->caption < 0) missing = "caption";
    } else if (format == DATASET_NEGBENCH_MCQ) {
        static const char *const answer[] = {"correct_answer", NULL};
        static const char *const tmpl[] = {"correct_answer_template", NULL};
        static const char *const image[] = {"image_path", "filepath", NULL};
        cols->answer = column_index(names, n, answer);
        cols->template_col = column_index(names, n, tmpl);
        cols->path = column_index(names, n, image);
        for (int k = 0; k < 16; k++) {
            char name[32];
            snprintf(name, sizeof name, "caption_%d", k);
            const char *const want[] = {name, NULL};
            int at = column_index(names, n, want);
            if (at < 0) break;
            cols->captions[cols->n_captions++] = at;
        }
        if (cols->answer < 0) missing = "correct_answer";
        else if (cols->path < 0) missing = "image_path";
        else if (cols->n_captions < 2) missing = "caption_0 and caption_1";
    } else if (format == DATASET_NEGBENCH_RETRIEVAL) {
        static const char *const captions[] = {"captions", NULL};
        cols->path = column_index(names, n, path_columns);
        cols->captions[0] = column_index(names, n, captions);
        cols->n_captions = 1;
        if (cols->path < 0) missing = "filepath";
        else if (cols->captions[0] < 0) missing = "captions";
    } else { /* CC-Neg */
        static const char *const negated[] = {"negated_caption", NULL};
        cols->path = column_index(names, n, path_columns);
        cols->caption = column_index(names, n, caption_columns);
        cols->negated = column_index(names, n, negated);
        if (cols->path < 0) missing = "image_path";
        else if (cols->caption < 0) missing = "caption";
        else if (cols->negated < 0) missing = "negated_caption";
    }
    if (missing)
        return set_error(err, err_len, "%s:1: the header has no %s column (format %s)", source,
                    missing, dataset_format_name(format));
    return 0;
}

/* Reads one data row into ds. Returns 0 or -1 (message naming source:line). */
static int csv_row(DatasetFormat format, const CsvColumns *cols, char **f, const char *source,
                   int line, const PathRules *rules, Dataset *ds, StrMap *by_path, char *err,
                   size_t err_len) {
    const char *written = f[cols->path];
    if (!*written) return set_error(err, err_len, "%s:%d: empty image path", source, line);
    if (format == DATASET_CSV) {
        DatasetItem *item = item_for(ds, by_path, rules, written, written);
        int first_row = !item->line;
        if (first_row) item->line = line;
        dataset_item_add_caption(item, f[cols->caption]);
        if (cols->objects >= 0) add_objects(item, f[cols->objects]);
        if (cols->twin < 0) return 0;
        const char *twin = f[cols->twin], *had = item->twin_source ? item->twin_source : "";
        if (first_row) item->twin_source = *twin ? strdupCheck(twin) : NULL;
        else if (strcmp(twin, had) != 0)
            return set_error(err, err_len, "%s:%d: twin '%.200s' of %.200s differs from the '%.200s' of its row on "
                             "line %d", source, line, twin, written, had, item->line);
        return 0;
    }
    char *path = resolve_path(rules, written);
    DatasetItem *item = dataset_push_item(ds, path, written);
    item->line = line;
    free(path);
    if (format == DATASET_NEGBENCH_MCQ) {
        char *end;
        long answer = strtol(f[cols->answer], &end, 10);
        if (!*f[cols->answer] || *end || answer < 0 || answer >= cols->n_captions)
            return set_error(err, err_len, "%s:%d: correct_answer must be an integer in [0, %d], "
                        "found '%.40s'", source, line, cols->n_captions - 1, f[cols->answer]);
        item->answer = (int)answer;
        for (int k = 0; k < cols->n_captions; k++) dataset_item_add_caption(item, f[cols->captions[k]]);
        if (cols->template_col >= 0) item->mcq_template = strdupCheck(f[cols->template_col]);
    } else if (format == DATASET_NEGBENCH_RETRIEVAL) {
        char **captions, msg[200];
        int n;
        if (python_list_parse(f[cols->captions[0]], &captions, &n, msg, sizeof msg) != 0)
            return set_error(err, err_len, "%s:%d: captions: expected a Python list of strings: %s",
                        source, line, msg);
        for (int k = 0; k < n; k++) dataset_item_add_caption(item, captions[k]);
        csv_free_strings(captions, n);
        if (n == 0) return set_error(err, err_len, "%s:%d: captions: the list is empty", source, line);
    } else {
        dataset_item_add_caption(item, f[cols->caption]);
        dataset_item_add_caption(item, f[cols->negated]);
        item->answer = 0;
    }
    return 0;
}

/* The twin column read: each twin named must be another item of the file that names this one
 * back. Returns 0, or -1 naming the first item that breaks the rule. */
static int resolve_twins(Dataset *ds, const StrMap *by_path, const char *source, char *err, size_t err_len) {
    ds->has_twins = 1;
    for (int i = 0; i < ds->count; i++) {
        DatasetItem *item = &ds->items[i];
        if (!item->twin_source) continue;
        int j = strmap_get(by_path, item->twin_source);
        const char *back = j >= 0 ? ds->items[j].twin_source : NULL;
        if (j < 0 || j == i || !back || strcmp(back, item->source_id) != 0)
            return set_error(err, err_len, "%s:%d: the twin of %.200s, '%.200s', %s", source, item->line,
                             item->source_id, item->twin_source,
                             j < 0    ? "is no image of this file"
                             : j == i ? "is the image itself"
                                      : "does not name it as its twin");
        item->twin = j;
    }
    return 0;
}

static int parse_csv(const char *text, size_t len, const char *source, DatasetFormat format,
                     const PathRules *rules, Dataset *ds, char *err, size_t err_len) {
    size_t n = strlen(source);
    char delimiter = n >= 4 && strcasecmp(source + n - 4, ".tsv") == 0 ? '\t' : ',';
    CsvReader reader;
    csv_init(&reader, text, len, delimiter, source);
    StrMap by_path = {0};
    CsvColumns cols;
    int rc = -1;
    int fields = csv_next_row(&reader, err, err_len);
    if (fields <= 0) {
        if (fields == 0) set_error(err, err_len, "%s: empty file (expected a header or data rows)", source);
        goto done;
    }
    int has_header = column_index(reader.fields, fields, path_columns) >= 0;
    if (format == DATASET_AUTO) format = has_header ? csv_detect(reader.fields, fields) : DATASET_CSV;
    if (format != DATASET_CSV) has_header = 1; /* NegBench and CC-Neg files always have one */
    ds->format = format;
    if (csv_columns(format, reader.fields, fields, has_header, source, &cols, err, err_len) != 0)
        goto done;
    int expected = fields;
    if (!has_header && csv_row(format, &cols, reader.fields, source, reader.row_line, rules, ds,
                               &by_path, err, err_len) != 0)
        goto done;
    while ((fields = csv_next_row(&reader, err, err_len)) > 0) {
        if (fields != expected) {
            set_error(err, err_len, "%s:%d: expected %d fields (as in line 1), found %d", source,
                 reader.row_line, expected, fields);
            goto done;
        }
        if (csv_row(format, &cols, reader.fields, source, reader.row_line, rules, ds, &by_path,
                    err, err_len) != 0)
            goto done;
    }
    rc = fields; /* 0 at the end, -1 on a malformed record */
    if (rc == 0 && cols.twin >= 0) rc = resolve_twins(ds, &by_path, source, err, err_len);
done:
    strmap_free(&by_path);
    csv_free(&reader);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Entry points */

int dataset_parse(const char *text, size_t len, const char *source, const char *instances,
                  size_t instances_len, const DatasetOptions *opt, Dataset *ds, char *err,
                  size_t err_len) {
    static const DatasetOptions defaults = {0};
    if (!opt) opt = &defaults;
    memset(ds, 0, sizeof *ds);
    PathRules rules;
    path_rules_init(&rules, source, opt->image_root);
    DatasetFormat format = opt->format;
    size_t first = 0;
    while (first < len && isspace((unsigned char)text[first])) first++;
    int is_json = format == DATASET_COCO || format == DATASET_KARPATHY ||
                  (format == DATASET_AUTO && first < len && text[first] == '{');
    int rc;
    if (is_json) {
        cJSON *root = parse_json(text, len, source, err, err_len);
        if (!root) {
            free(rules.base_dir);
            return -1;
        }
        if (format == DATASET_AUTO) {
            const cJSON *first_image = cJSON_GetArrayItem(json_array(root, "images"), 0);
            format = json_array(root, "annotations") ? DATASET_COCO
                     : json_array(first_image, "sentences") ? DATASET_KARPATHY
                                                            : DATASET_COCO;
        }
        ds->format = format;
        rc = format == DATASET_KARPATHY
                 ? parse_karpathy(root, source, &rules, opt->splits, ds, err, err_len)
                 : parse_coco(root, source, &rules, instances, instances_len,
                              opt->instances ? opt->instances : "instances", ds, err, err_len);
        cJSON_Delete(root);
    } else {
        rc = parse_csv(text, len, source, format, &rules, ds, err, err_len);
    }
    free(rules.base_dir);
    for (int i = 0; rc == 0 && i < ds->count; i++)
        for (int c = 0; c < ds->items[i].n_captions; c++) {
            const char *t = ds->items[i].captions[c];
            ds->empty_captions += t[strspn(t, " \t\r\n")] == '\0';
        }
    if (rc == 0 && ds->count == 0)
        rc = set_error(err, err_len, "%s: the dataset is empty (expected at least one image with a "
                  "caption%s)", source, opt->splits ? " in the selected splits" : "");
    if (rc != 0) dataset_free(ds);
    return rc;
}

int dataset_load(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                 size_t err_len) {
    memset(ds, 0, sizeof *ds);
    size_t len, instances_len = 0;
    char *text = read_file(path, &len);
    if (!text) return set_error(err, err_len, "%s: cannot read: %s", path, strerror(errno));
    char *instances = NULL;
    if (opt && opt->instances) {
        instances = read_file(opt->instances, &instances_len);
        if (!instances) {
            free(text);
            return set_error(err, err_len, "%s: cannot read: %s", opt->instances, strerror(errno));
        }
    }
    int rc = dataset_parse(text, len, path, instances, instances_len, opt, ds, err, err_len);
    free(text);
    free(instances);
    if (rc == 0 && ds->empty_captions > 0)
        fprintf(stderr, "tng: warning: %s: %d empty caption%s (kept as empty texts)\n", path,
                ds->empty_captions, ds->empty_captions == 1 ? "" : "s");
    return rc;
}
