/*
 * test_dataset.c: the CSV reader, the Python list literal parser and every dataset reader,
 * on small hand-written inputs, including the errors (file:line) and the empty dataset.
 */
#include <stdlib.h>
#include <string.h>

#include "dataset/csv.h"
#include "dataset/dataset.h"
#include "harness.h"

/* Reads every record of text; returns the record count, or -1 on an error (message in err). */
static int read_all(const char *text, char delimiter, char rows[][8][64], int *fields, char *err,
                    size_t err_len) {
    CsvReader r;
    csv_init(&r, text, strlen(text), delimiter, "t.csv");
    int n = 0, got;
    while ((got = csv_next_row(&r, err, err_len)) > 0) {
        fields[n] = got;
        for (int f = 0; f < got && f < 8; f++) snprintf(rows[n][f], 64, "%s", r.fields[f]);
        n++;
    }
    csv_free(&r);
    return got < 0 ? -1 : n;
}

static void test_csv_quoting(void) {
    const char *text = "\xEF\xBB\xBF"
                       "a,\"b,c\",d\r\n"
                       "\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
                       "\n"
                       "x,,\"\"\n"
                       "last,row,no newline";
    char rows[8][8][64], err[256] = "";
    int fields[8];
    int n = read_all(text, ',', rows, fields, err, sizeof err);
    CHECK(n == 4, "%d records (%s)", n, err);
    CHECK(fields[0] == 3 && strcmp(rows[0][0], "a") == 0 && strcmp(rows[0][1], "b,c") == 0 &&
              strcmp(rows[0][2], "d") == 0, "row 0: %s|%s|%s", rows[0][0], rows[0][1], rows[0][2]);
    CHECK(fields[1] == 3 && strcmp(rows[1][0], "say \"hi\"") == 0 &&
              strcmp(rows[1][1], "two\nlines") == 0 && rows[1][2][0] == 0,
          "row 1: %s|%s|%s", rows[1][0], rows[1][1], rows[1][2]);
    CHECK(fields[2] == 3 && strcmp(rows[2][0], "x") == 0 && !rows[2][1][0] && !rows[2][2][0],
          "row 2 (blank line skipped)");
    CHECK(fields[3] == 3 && strcmp(rows[3][2], "no newline") == 0, "row 3: %s", rows[3][2]);
    /* data ending in a delimiter has an empty last field; the byte after the data (here a
     * quote) must never be read (found by fuzz_csv) */
    CsvReader r;
    csv_init(&r, "x,y,\"", 4, ',', "t.csv");
    int got = csv_next_row(&r, err, sizeof err);
    CHECK(got == 3 && r.fields[2][0] == 0, "trailing delimiter: %d fields (%s)", got, err);
    csv_free(&r);
    /* a tab-separated file keeps commas inside fields */
    n = read_all("p\ta, b\n", '\t', rows, fields, err, sizeof err);
    CHECK(n == 1 && fields[0] == 2 && strcmp(rows[0][1], "a, b") == 0, "tsv: %d %s", n, rows[0][1]);
}

static void test_csv_line_numbers(void) {
    CsvReader r;
    const char *text = "h1,h2\n\"multi\nline\",x\nafter,y\n";
    char err[256];
    csv_init(&r, text, strlen(text), ',', "t.csv");
    CHECK(csv_next_row(&r, err, sizeof err) == 2 && r.row_line == 1, "header at line 1");
    CHECK(csv_next_row(&r, err, sizeof err) == 2 && r.row_line == 2, "quoted record at line 2");
    CHECK(csv_next_row(&r, err, sizeof err) == 2 && r.row_line == 4, "next record at line 4, got %d", r.row_line);
    CHECK(csv_next_row(&r, err, sizeof err) == 0, "end");
    csv_free(&r);
}

static void test_csv_errors(void) {
    char rows[8][8][64], err[256] = "";
    int fields[8];
    int n = read_all("a,b\nc,\"open\nstill open", ',', rows, fields, err, sizeof err);
    CHECK(n == -1 && strstr(err, "t.csv:2:") && strstr(err, "never closed"), "unterminated: %s", err);
    n = read_all("a,b\n\"q\"x,b\n", ',', rows, fields, err, sizeof err);
    CHECK(n == -1 && strstr(err, "t.csv:2:") && strstr(err, "'x'"), "text after quote: %s", err);
    CsvReader r;
    const char with_nul[] = "a,b\0c\n";
    csv_init(&r, with_nul, sizeof with_nul - 1, ',', "t.csv");
    CHECK(csv_next_row(&r, err, sizeof err) == -1 && strstr(err, "NUL"), "NUL byte: %s", err);
    csv_free(&r);
}

static void test_python_list(void) {
    char **items, err[256] = "";
    int n;
    const char *text = " ['a dog', \"it's a cat\", 'say \\'hi\\'', \"tab\\there\", 'caf\\u00e9', "
                       "'\\x41\\101\\\\', 'one' \"two\", ] ";
    int rc = python_list_parse(text, &items, &n, err, sizeof err);
    CHECK(rc == 0 && n == 7, "rc %d, %d items (%s)", rc, n, err);
    if (rc == 0 && n == 7) {
        const char *want[] = {"a dog", "it's a cat", "say 'hi'", "tab\there", "caf\xC3\xA9",
                              "AA\\", "onetwo"};
        for (int i = 0; i < 7; i++) CHECK(strcmp(items[i], want[i]) == 0, "item %d: '%s'", i, items[i]);
        csv_free_strings(items, n);
    }
    rc = python_list_parse("[]", &items, &n, err, sizeof err);
    CHECK(rc == 0 && n == 0, "empty list");
    csv_free_strings(items, n);
    const char *bad[] = {"['a'", "['a' 'b", "['a', b]", "'a'", "['a'] x", "['\\x4']", "['\\0']",
                         "['\\ud800']", "['a',,]", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        rc = python_list_parse(bad[i], &items, &n, err, sizeof err);
        CHECK(rc == -1 && items == NULL && strstr(err, "offset"), "'%s' must fail (%s)", bad[i], err);
    }
}

/* ----------------------------------------------------------------------------
 * Dataset readers */

static int parse(const char *text, const char *source, const DatasetOptions *opt, Dataset *ds,
                 char *err) {
    return dataset_parse(text, strlen(text), source, NULL, 0, opt, ds, err, 512);
}

static void test_coco(void) {
    const char *captions =
        "{\"info\": {}, \"images\": ["
        " {\"id\": 391895, \"file_name\": \"COCO_val2014_000000391895.jpg\", \"width\": 640},"
        " {\"id\": 7, \"file_name\": \"000000000007.jpg\"},"
        " {\"id\": 8, \"file_name\": \"no_captions.jpg\"}],"
        " \"annotations\": ["
        " {\"image_id\": 7, \"id\": 1, \"caption\": \"A dog on a sofa.\"},"
        " {\"image_id\": 391895, \"id\": 2, \"caption\": \"A man riding a bike.\"},"
        " {\"image_id\": 7, \"id\": 3, \"caption\": \"A \\\"quoted\\\" dog.\"}]}";
    const char *instances =
        "{\"images\": [], \"categories\": [{\"id\": 1, \"name\": \"person\"}, "
        "{\"id\": 18, \"name\": \"dog\"}, {\"id\": 2, \"name\": \"bicycle\"}],"
        " \"annotations\": [{\"image_id\": 7, \"category_id\": 18, \"bbox\": [1,2,3,4]},"
        " {\"image_id\": 391895, \"category_id\": 1}, {\"image_id\": 391895, \"category_id\": 2},"
        " {\"image_id\": 7, \"category_id\": 18}, {\"image_id\": 8, \"category_id\": 1}]}";
    Dataset ds;
    char err[512] = "";
    DatasetOptions opt = {.image_root = "/data/coco/val2014/"};
    int rc = dataset_parse(captions, strlen(captions), "ann/captions.json", instances,
                           strlen(instances), &opt, &ds, err, sizeof err);
    CHECK(rc == 0 && ds.count == 2 && ds.format == DATASET_COCO, "rc %d count %d (%s)", rc, ds.count, err);
    if (rc == 0 && ds.count == 2) {
        const DatasetItem *dog = &ds.items[0], *man = &ds.items[1]; /* order of first caption */
        CHECK(strcmp(dog->source_id, "7") == 0 && dog->n_captions == 2 &&
                  strcmp(dog->captions[1], "A \"quoted\" dog.") == 0, "dog item");
        CHECK(strcmp(dog->image_path, "/data/coco/val2014/000000000007.jpg") == 0, "root: %s", dog->image_path);
        CHECK(dog->n_objects == 1 && strcmp(dog->objects[0], "dog") == 0, "dog objects deduplicated");
        CHECK(strcmp(man->source_id, "391895") == 0 && man->n_objects == 2 &&
                  strcmp(man->objects[0], "person") == 0 && strcmp(man->objects[1], "bicycle") == 0,
              "man objects");
        CHECK(dog->answer == -1 && dog->split == NULL, "no answer/split");
        dataset_free(&ds);
    }
    /* without a root, paths are relative to the annotation file's folder */
    rc = parse(captions, "ann/captions.json", NULL, &ds, err);
    CHECK(rc == 0 && strcmp(ds.items[0].image_path, "ann/000000000007.jpg") == 0, "relative: %s",
          rc == 0 ? ds.items[0].image_path : err);
    if (rc == 0) dataset_free(&ds);
    /* an annotation naming an unknown image, and a missing caption, are errors */
    rc = parse("{\"images\": [], \"annotations\": [{\"image_id\": 3, \"caption\": \"x\"}]}", "c.json",
               NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "c.json") && strstr(err, "image_id 3"), "unknown image: %s", err);
    rc = parse("{\"images\": [{\"id\": 3, \"file_name\": \"a.jpg\"}], \"annotations\": [{\"image_id\": 3}]}",
               "c.json", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "annotations[0]"), "missing caption: %s", err);
    rc = parse("{\"images\": [{\"id\": 1e50, \"file_name\": \"a.jpg\"}], \"annotations\": []}",
               "c.json", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "images[0]") && strstr(err, "integer"), "huge id: %s", err);
    rc = parse("{\"images\": [], \"annotations\": []}", "c.json", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "empty"), "empty: %s", err);
    rc = parse("{\"images\": [,]}", "c.json", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "c.json:1") && strstr(err, "JSON"), "bad JSON: %s", err);
}

static void test_karpathy(void) {
    const char *text =
        "{\"images\": [{\"filepath\": \"val2014\", \"filename\": \"a.jpg\", \"split\": \"test\","
        " \"cocoid\": 42, \"sentences\": [{\"raw\": \"A cat.\", \"tokens\": [\"a\", \"cat\"]},"
        " {\"raw\": \"Two cats.\"}]},"
        " {\"filepath\": \"train2014\", \"filename\": \"b.jpg\", \"split\": \"restval\", \"cocoid\": 43,"
        " \"sentences\": [{\"raw\": \"A bus.\"}]},"
        " {\"filepath\": \"train2014\", \"filename\": \"c.jpg\", \"split\": \"train\", \"cocoid\": 44,"
        " \"sentences\": [{\"raw\": \"A car.\"}]}], \"dataset\": \"coco\"}";
    Dataset ds;
    char err[512] = "";
    DatasetOptions opt = {.image_root = "/coco", .splits = "train,restval"};
    int rc = parse(text, "dataset_coco.json", &opt, &ds, err);
    CHECK(rc == 0 && ds.count == 2 && ds.format == DATASET_KARPATHY, "rc %d count %d (%s)", rc, ds.count, err);
    if (rc == 0 && ds.count == 2) {
        CHECK(strcmp(ds.items[0].image_path, "/coco/train2014/b.jpg") == 0, "path %s", ds.items[0].image_path);
        CHECK(strcmp(ds.items[0].split, "restval") == 0 && strcmp(ds.items[1].source_id, "44") == 0,
              "split and id");
        dataset_free(&ds);
    }
    opt.splits = "test";
    rc = parse(text, "dataset_coco.json", &opt, &ds, err);
    CHECK(rc == 0 && ds.count == 1 && ds.items[0].n_captions == 2 &&
              strcmp(ds.items[0].captions[1], "Two cats.") == 0, "test split");
    if (rc == 0) dataset_free(&ds);
    opt.splits = "val";
    rc = parse(text, "dataset_coco.json", &opt, &ds, err);
    CHECK(rc == -1 && strstr(err, "empty"), "no image in split: %s", err);
}

static void test_generic_csv(void) {
    const char *text = "filepath,caption,objects\n"
                       "images/train/000001.jpg,\"A red cube, left of a ball.\",cube; ball\n"
                       "images/train/000002.jpg,A blue ball.,ball\n"
                       "images/train/000001.jpg,\"A cube and a \"\"ball\"\".\",ball;sphere\n";
    Dataset ds;
    char err[512] = "";
    int rc = parse(text, "/tmp/synth/train.csv", NULL, &ds, err);
    CHECK(rc == 0 && ds.count == 2 && ds.format == DATASET_CSV, "rc %d count %d (%s)", rc, ds.count, err);
    if (rc == 0 && ds.count == 2) {
        const DatasetItem *a = &ds.items[0];
        CHECK(strcmp(a->image_path, "/tmp/synth/images/train/000001.jpg") == 0, "path %s", a->image_path);
        CHECK(strcmp(a->source_id, "images/train/000001.jpg") == 0, "id %s", a->source_id);
        CHECK(a->n_captions == 2 && strcmp(a->captions[1], "A cube and a \"ball\".") == 0, "merged captions");
        CHECK(a->n_objects == 3 && strcmp(a->objects[0], "cube") == 0 && strcmp(a->objects[1], "ball") == 0 &&
                  strcmp(a->objects[2], "sphere") == 0, "objects split, trimmed, merged");
        /* a file without a twin column reads as it always did: no twins */
        CHECK(!ds.has_twins && a->twin == -1 && !a->twin_source && ds.items[1].twin == -1, "twins from no column");
        dataset_free(&ds);
    }
    /* no header: positional columns; TSV by extension */
    rc = parse("x.jpg\ta cat, sitting\n/abs/y.jpg\ta dog\n", "d/pairs.tsv", &(DatasetOptions){.image_root = "/r"},
               &ds, err);
    CHECK(rc == 0 && ds.count == 2 && strcmp(ds.items[0].captions[0], "a cat, sitting") == 0 &&
              strcmp(ds.items[0].image_path, "/r/x.jpg") == 0 && strcmp(ds.items[1].image_path, "/r/y.jpg") == 0,
          "tsv without header (%s)", err);
    if (rc == 0) dataset_free(&ds);
    rc = parse("filepath,caption\na.jpg,ok\nb.jpg\n", "p.csv", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "p.csv:3:") && strstr(err, "expected 2 fields"), "short row: %s", err);
    rc = parse("filepath,caption\n", "p.csv", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "empty"), "header only: %s", err);
    rc = parse("", "p.csv", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "p.csv"), "empty file: %s", err);
    /* empty captions are kept, and counted so that dataset_load warns about them */
    rc = parse("filepath,caption\na.jpg,\"  \"\nb.jpg,a dog\nc.jpg,\n", "e.csv", NULL, &ds, err);
    CHECK(rc == 0 && ds.count == 3 && ds.empty_captions == 2, "empty captions counted: rc %d, %d (%s)",
          rc, rc == 0 ? ds.empty_captions : -1, err);
    if (rc == 0) dataset_free(&ds);
}

/* The twin column (tng_synth --twins): each twin resolves to the item that names it back, an
 * empty field means none, and a twin that is missing, the image itself, one-sided or not the
 * same on all of an image's rows is refused naming the line. dataset_keep renumbers twins. */
static void test_csv_twins(void) {
    const char *text = "filepath,caption,objects,twin\n"
                       "a.jpg,A ball.,ball,a_twin.jpg\n"
                       "c.jpg,A cup.,cup,\n"
                       "a.jpg,\"A ball, alone.\",ball,a_twin.jpg\n"
                       "a_twin.jpg,A ball and a key.,ball;key,a.jpg\n"
                       "b.jpg,A hat.,hat,b_twin.jpg\n"
                       "b_twin.jpg,A hat and a cup.,hat;cup,b.jpg\n";
    Dataset ds;
    char err[512] = "";
    int rc = parse(text, "w/train.csv", NULL, &ds, err);
    CHECK(rc == 0 && ds.count == 5 && ds.has_twins, "rc %d count %d (%s)", rc, ds.count, err);
    if (rc != 0 || ds.count != 5) return;
    static const int want[5] = {2, -1, 0, 4, 3}; /* a, c, a_twin, b, b_twin */
    for (int i = 0; i < 5; i++)
        CHECK(ds.items[i].twin == want[i], "item %d (%s): twin %d, want %d", i, ds.items[i].source_id,
              ds.items[i].twin, want[i]);
    CHECK(ds.items[0].n_captions == 2 && ds.items[2].n_objects == 2 && !ds.items[1].twin_source &&
              strcmp(ds.items[0].twin_source, "a_twin.jpg") == 0,
          "captions, objects and twin names");
    /* drop c and b: a and its twin renumbered, b_twin left without one */
    dataset_keep(&ds, (const int[]){1, 0, 1, 0, 1});
    CHECK(ds.count == 3 && ds.items[0].twin == 1 && ds.items[1].twin == 0 && ds.items[2].twin == -1,
          "after dataset_keep: %d items, twins %d %d %d", ds.count, ds.items[0].twin, ds.items[1].twin,
          ds.count > 2 ? ds.items[2].twin : -9);
    dataset_free(&ds);
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"filepath,caption,twin\na.jpg,x,z.jpg\n", "t.csv:2: the twin of a.jpg, 'z.jpg', is no image of this file"},
        {"filepath,caption,twin\na.jpg,x,a.jpg\n", "is the image itself"},
        {"filepath,caption,twin\na.jpg,x,b.jpg\nb.jpg,y,\n", "'b.jpg', does not name it as its twin"},
        {"filepath,caption,twin\na.jpg,x,b.jpg\nb.jpg,y,c.jpg\nc.jpg,z,b.jpg\n", "does not name it as its twin"},
        {"filepath,caption,twin\na.jpg,x,b.jpg\nb.jpg,y,a.jpg\na.jpg,z,\n",
         "t.csv:4: twin '' of a.jpg differs from the 'b.jpg' of its row on line 2"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rc = parse(bad[k].text, "t.csv", NULL, &ds, err);
        CHECK(rc == -1 && strstr(err, bad[k].needle), "case %zu: rc %d, '%s' lacks '%s'", k, rc, err, bad[k].needle);
        if (rc == 0) dataset_free(&ds);
    }
}

static void test_negbench(void) {
    const char *mcq = "correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template,image_path\n"
                      "0,\"A dog, no cat.\",A cat.,A cat and a dog.,No dog.,hybrid,/home/x/coco/val2017/1.jpg\n"
                      "0,A bus.,No bus.,A car.,\"A \"\"bus\"\"?\",positive,/home/x/coco/val2017/2.jpg\n";
    Dataset ds;
    char err[512] = "";
    DatasetOptions opt = {.image_root = "/data/val2017"};
    int rc = parse(mcq, "mcq.csv", &opt, &ds, err);
    CHECK(rc == 0 && ds.count == 2 && ds.format == DATASET_NEGBENCH_MCQ, "mcq rc %d (%s)", rc, err);
    if (rc == 0 && ds.count == 2) {
        CHECK(ds.items[0].n_captions == 4 && ds.items[0].answer == 0 &&
                  strcmp(ds.items[0].mcq_template, "hybrid") == 0, "mcq item");
        CHECK(strcmp(ds.items[1].image_path, "/data/val2017/2.jpg") == 0, "re-rooted %s", ds.items[1].image_path);
        CHECK(strcmp(ds.items[1].source_id, "/home/x/coco/val2017/2.jpg") == 0, "id keeps the path as written");
        CHECK(strcmp(ds.items[1].captions[3], "A \"bus\"?") == 0, "caption_3 %s", ds.items[1].captions[3]);
        dataset_free(&ds);
    }
    const char *bad_answer = "correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template,image_path\n"
                             "0,a,b,c,d,positive,1.jpg\n"
                             "7,a,b,c,d,positive,2.jpg\n";
    rc = parse(bad_answer, "mcq.csv", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "mcq.csv:3:") && strstr(err, "correct_answer"), "bad answer: %s", err);

    const char *retrieval = "filepath,captions\n"
                            "/x/1.jpg,\"['a dog', \"\"it's a cat\"\"]\"\n"
                            "/x/2.jpg,['no person']\n";
    rc = parse(retrieval, "r.csv", NULL, &ds, err);
    CHECK(rc == 0 && ds.count == 2 && ds.format == DATASET_NEGBENCH_RETRIEVAL &&
              ds.items[0].n_captions == 2 && strcmp(ds.items[0].captions[1], "it's a cat") == 0 &&
              strcmp(ds.items[1].captions[0], "no person") == 0,
          "retrieval (%s)", err);
    if (rc == 0) dataset_free(&ds);
    rc = parse("filepath,captions\n/x/1.jpg,['ok']\n/x/2.jpg,\"['broken\"\n", "r.csv", NULL, &ds, err);
    CHECK(rc == -1 && strstr(err, "r.csv:3:") && strstr(err, "captions"), "bad list: %s", err);

    const char *ccneg = "image_path,caption,negated_caption\r\n"
                        "a/1.jpg,A dog on grass.,A dog not on grass.\r\n";
    rc = parse(ccneg, "/d/ccneg.csv", NULL, &ds, err);
    CHECK(rc == 0 && ds.count == 1 && ds.format == DATASET_CCNEG && ds.items[0].answer == 0 &&
              ds.items[0].n_captions == 2 && strcmp(ds.items[0].captions[1], "A dog not on grass.") == 0 &&
              strcmp(ds.items[0].image_path, "/d/a/1.jpg") == 0,
          "ccneg (%s)", err);
    if (rc == 0) dataset_free(&ds);
    /* a forced format whose columns are missing names the column */
    rc = parse("filepath,caption\na.jpg,x\n", "c.csv", &(DatasetOptions){.format = DATASET_CCNEG}, &ds, err);
    CHECK(rc == -1 && strstr(err, "negated_caption"), "missing column: %s", err);
}

static void test_hash(void) {
    CHECK(hash64_str("abc", 0) != hash64_str("abd", 0), "different strings");
    CHECK(hash64_str("abc", 0) != hash64_str("abc", 1), "seed matters");
    CHECK(hash64_str("abcdefghijk", 5) == hash64_str("abcdefghijk", 5), "deterministic");
}

int main(void) {
    RUN_TEST(test_csv_quoting);
    RUN_TEST(test_csv_line_numbers);
    RUN_TEST(test_csv_errors);
    RUN_TEST(test_python_list);
    RUN_TEST(test_coco);
    RUN_TEST(test_karpathy);
    RUN_TEST(test_generic_csv);
    RUN_TEST(test_csv_twins);
    RUN_TEST(test_negbench);
    RUN_TEST(test_hash);
    return test_summary();
}
