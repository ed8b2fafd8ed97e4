/*
 * test_scripts.c: the data/ scripts' own logic, run as the demo and the diagnostics run it.
 *
 * - first_images (data/pretrain_base.sh): the header and every row of the first N distinct
 *   images, a later row of one of them included, nothing of the others.
 * - synth_kinds_csv: keeps exactly the captions that name none of world.json's colours, as whole
 *   words in any case ("A Blue cup" goes, "a bluebird" stays); a world.json with no colours fails.
 * - kind_gaps (data/negation_gap.py): on hand-made embeddings whose gaps are worked out by hand
 *   (+0.85 for the affirmations, -0.85 for the denials, their cosine -1), and None when a kind is
 *   in every image.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "scratch.h"

/* Runs a shell command, returns its stdout (at most cap - 1 bytes) and sets *status. */
static void run_shell(const char *command, char *out, size_t cap, int *status) {
    FILE *p = popen(command, "r");
    if (!p) die("popen failed: %s", command);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    *status = pclose(p);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void test_first_images(void) {
    write_file(tmp_path("rows.csv"), "filepath,caption,objects\n"
                                     "a.jpg,\"A ball, brightly coloured\",ball\n"
                                     "a.jpg,A ball,ball\n"
                                     "b.jpg,A cup,cup\n"
                                     "c.jpg,A hat,hat\n"
                                     "b.jpg,A cup again,cup\n"
                                     "d.jpg,A key,key\n");
    char command[1024], out[4096];
    int status;
    snprintf(command, sizeof command, "bash -c '. data/pretrain_base.sh && first_images 2 %s'", tmp_path("rows.csv"));
    run_shell(command, out, sizeof out, &status);
    CHECK(status == 0, "first_images exited %d", status);
    CHECK(strcmp(out, "filepath,caption,objects\n"
                      "a.jpg,\"A ball, brightly coloured\",ball\n"
                      "a.jpg,A ball,ball\n"
                      "b.jpg,A cup,cup\n"
                      "b.jpg,A cup again,cup\n") == 0,
          "first_images 2 printed:\n%s", out);
}

static void test_kinds_csv(void) {
    write_file(tmp_path("world.json"), "{\n  \"kinds\": [\"ball\", \"cup\"],\n  \"colours\": [\"red\", \"blue\"],\n}\n");
    write_file(tmp_path("train.csv"), "filepath,caption,objects\n"
                                      "a.jpg,A red ball,ball\n"
                                      "a.jpg,A ball,ball\n"
                                      "b.jpg,\"A Blue cup, brightly coloured\",cup\n"
                                      "b.jpg,A bluebird beside a cup,cup\n");
    char command[1024], out[4096];
    int status;
    snprintf(command, sizeof command, "bash -c 'set -e; . data/pretrain_base.sh; synth_kinds_csv %s; cat %s/train_kinds.csv' 2>&1",
             scratch_root, scratch_root);
    run_shell(command, out, sizeof out, &status);
    CHECK(status == 0, "synth_kinds_csv exited %d", status);
    CHECK(strcmp(out, "filepath,caption,objects\na.jpg,A ball,ball\nb.jpg,A bluebird beside a cup,cup\n") == 0,
          "train_kinds.csv:\n%s", out);

    write_file(tmp_path("world.json"), "{\n  \"kinds\": [\"ball\", \"cup\"]\n}\n");
    // the cached train_kinds.csv would be reused: a fresh world has none
    remove(tmp_path("train_kinds.csv"));
    run_shell(command, out, sizeof out, &status);
    CHECK(status != 0 && strstr(out, "no colours in"), "a world.json with no colours: exit %d, %s", status, out);
}

static void test_kind_gaps(void) {
    const char *command =
        "python3 -c 'import sys; sys.path.insert(0, \"data\"); from negation_gap import kind_gaps\n"
        "objects = {\"p\": {\"A\"}, \"q\": {\"B\"}, \"r\": {\"A\", \"B\"}}\n"
        "images = [[1, 0], [0, 1], [0.6, 0.8]]\n"
        "texts = [[1, 0], [0, 1], [-1, 0], [0, -1]]\n"
        "gaps, same = kind_gaps([\"p\", \"q\", \"r\"], objects, [\"A\", \"B\"], images, texts)\n"
        "print(\" \".join(\"%.6f\" % g for g in gaps), \"%.6f\" % same)\n"
        "print(kind_gaps([\"p\", \"r\"], objects, [\"A\", \"B\"], images[:1] + images[2:], texts))'";
    char out[4096];
    int status;
    run_shell(command, out, sizeof out, &status);
    CHECK(status == 0, "python3 exited %d", status);
    CHECK(strcmp(out, "0.850000 -0.850000 -1.000000\nNone\n") == 0, "kind_gaps printed:\n%s", out);
}

int main(void) {
    scratch_make("scripts");
    RUN_TEST(test_first_images);
    RUN_TEST(test_kinds_csv);
    RUN_TEST(test_kind_gaps);
    scratch_remove();
    return test_summary();
}
