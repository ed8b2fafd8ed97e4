/*
 * test_negate.c: seeing the negations: tng_negate, tng_train --log-texts and the pieces under
 * them (dataset/caption_lines.h, tng/caption_embed.h, tng/records.h).
 *
 * The central check: the texts tng_negate prints are byte for byte the texts tng_train
 * trained on (its texts.jsonl) for the same data, seed and batch, in one process and under
 * mpirun -np 2 (--ranks 2). Programs run as subprocesses from the repository root, found in
 * $TNG_BIN_DIR (as `make test` and `make asan` set it) or ".". Records are checked by parsing
 * them (cJSON for JSON lines, the four escapes of util/escape.h for TSV), never by the writer's
 * own bookkeeping.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "scratch.h"
#include "dataset/caption_lines.h" // defines: caption_lines_parse
#include "tng/caption_embed.h"     // defines: caption_embed_items
#include "tng/records.h"           // defines: tng_records_write, tng_kind_names

static Lexicon *lex;
static Tokenizer *tok;
static const char *bin_dir = ".";
static char world[600];

/* Runs a shell command built like printf; returns its exit status (-1 if it did not exit). */
static int shell(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) die("command too long: %s", fmt);
    fflush(stdout), fflush(stderr);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path) {
    char *text = read_file(path, NULL);
    if (!text) die("cannot read %s", path);
    return text;
}

/* The lines of text (modified in place), at most max; returns the count. */
static int split_lines(char *text, char **lines, int max) {
    int n = 0;
    for (char *line = text; *line && n < max;) {
        char *nl = strchr(line, '\n');
        if (!nl) die("an unterminated last line: %.80s", line);
        *nl = '\0';
        lines[n++] = line;
        line = nl + 1;
    }
    return n;
}

/* A TSV field unescaped (util/escape.h's four escapes) into out; returns 0 on a stray escape. */
static int tsv_unescape(const char *field, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (field[i] != '\\') {
            out[o++] = field[i];
            continue;
        }
        char c = ++i < len ? field[i] : 0;
        if (c == 't') out[o++] = '\t';
        else if (c == 'n') out[o++] = '\n';
        else if (c == 'r') out[o++] = '\r';
        else if (c == '\\') out[o++] = '\\';
        else return 0;
    }
    out[o] = '\0';
    return 1;
}

// ---------------------------------------------------------------------------------------------
// The pieces

static void test_caption_lines(void) {
    const char text[] = "\xEF\xBB\xBF" "A dog\r\n\n   \t\nTwo cats on a sofa\nno newline at the end";
    Dataset ds = {0};
    char err[256];
    CHECK(caption_lines_parse(text, sizeof text - 1, "stdin", &ds, err, sizeof err) == 0, "%s", err);
    const char *want_caption[] = {"A dog", "Two cats on a sofa", "no newline at the end"};
    const char *want_id[] = {"1", "4", "5"}; /* blank lines 2 and 3 are skipped, ids stay lines */
    CHECK(ds.count == 3, "%d items, want 3", ds.count);
    for (int k = 0; k < ds.count && k < 3; k++) {
        CHECK(ds.items[k].n_captions == 1 && strcmp(ds.items[k].captions[0], want_caption[k]) == 0,
              "item %d caption '%s'", k, ds.items[k].captions[0]);
        CHECK(strcmp(ds.items[k].source_id, want_id[k]) == 0, "item %d id %s, want %s", k, ds.items[k].source_id,
              want_id[k]);
    }
    dataset_free(&ds);
    /* a NUL inside a line is refused, naming the line */
    const char nul[] = "fine\nbro\0ken\n";
    Dataset bad = {0};
    CHECK(caption_lines_parse(nul, sizeof nul - 1, "stdin", &bad, err, sizeof err) == -1 && strstr(err, "line 2"),
          "a NUL byte: %s", err);
    dataset_free(&bad);
    Dataset empty = {0};
    CHECK(caption_lines_parse("", 0, "stdin", &empty, err, sizeof err) == 0 && empty.count == 0, "empty input");
    dataset_free(&empty);
}

static float dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int k = 0; k < n; k++) s += (double)a[k] * b[k];
    return (float)s;
}

static void test_caption_embed(void) {
    const char *captions[] = {"A dog on a red sofa.", "two DOGS lying on sofas", "sofa, dog, red",
                              "A plane flying over the ocean", "", "a an of 123"};
    enum { N = 6, D = CAPTION_EMBED_DIM };
    Dataset ds = {0};
    for (int k = 0; k < N; k++) dataset_item_add_caption(dataset_push_item(&ds, "x", "x"), captions[k]);
    float *e = mallocCheck(sizeof(float) * N * D), *again = mallocCheck(sizeof(float) * N * D);
    caption_embed_items(&ds, lex, D, e);
    caption_embed_items(&ds, lex, D, again);
    CHECK(memcmp(e, again, sizeof(float) * N * D) == 0, "not deterministic");
    for (int k = 0; k < 4; k++) CHECK(fabsf(dot(e + k * D, e + k * D, D) - 1) < 1e-5f, "row %d not unit", k);
    /* no counted word (empty, or only short words and digits): the zero vector */
    for (int k = 4; k < N; k++) CHECK(dot(e + k * D, e + k * D, D) == 0, "row %d not zero", k);
    /* plurals fold and word order does not matter: "sofa, dog, red" has the nouns of caption 0 */
    CHECK(dot(e, e + 2 * D, D) > 0.9f, "same nouns, other order: similarity %g", dot(e, e + 2 * D, D));
    CHECK(dot(e, e + 1 * D, D) > dot(e, e + 3 * D, D) + 0.3f, "dogs on sofas (%g) should be nearer than a plane (%g)",
          dot(e, e + 1 * D, D), dot(e, e + 3 * D, D));
    /* an item's captions together: the item of captions 0 and 3 lies between them */
    Dataset two = {0};
    DatasetItem *item = dataset_push_item(&two, "x", "x");
    dataset_item_add_caption(item, captions[0]);
    dataset_item_add_caption(item, captions[3]);
    float both[D];
    caption_embed_items(&two, lex, D, both);
    CHECK(dot(both, e, D) > 0.4f && dot(both, e + 3 * D, D) > 0.4f, "a two-caption item: %g and %g", dot(both, e, D),
          dot(both, e + 3 * D, D));
    free(e), free(again);
    dataset_free(&ds), dataset_free(&two);
}

/* Texts from captions that hold every character TSV and JSON must escape come out as one
 * record per line, and parse back to the very strings. */
static void test_records_escape(void) {
    const char *captions[] = {"A dog\twith a tab", "A cat\non two lines", "A \"quoted\" horse \\ backslash",
                              "A bell\x01 and a car\r", "Un café près d'un vélo"};
    const char *ids[] = {"id\t1", "id\n2", "id\\3", "id\"4", "5"};
    enum { N = 5, D = 4 };
    float emb[N * D];
    for (int k = 0; k < N * D; k++) emb[k] = (float)((k * 7) % 5) / 5.0f;
    for (int i = 0; i < N; i++) {
        float norm = sqrtf(dot(emb + i * D, emb + i * D, D));
        for (int d = 0; d < D; d++) emb[i * D + d] /= norm;
    }
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.contradictions = 4;
    TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
    TngTexts t = {0};
    tng_make_texts(gen, captions, emb, N, D, NULL, N, 7, &t);
    TngRecordFrame frame = {.batch = 7, .world = 1, .ids = ids};
    for (int json = 0; json <= 1; json++) {
        char *buf = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&buf, &size);
        tng_records_write(mem, &t, t.n_texts, &frame, lex, json, json ? 12 : -1);
        fclose(mem);
        char **lines = mallocCheck(sizeof(char *) * (size_t)(t.n_texts + 1));
        int n = split_lines(buf, lines, t.n_texts + 1);
        CHECK(n == t.n_texts, "%s: %d lines for %d texts", json ? "JSON" : "TSV", n, t.n_texts);
        for (int k = 0; k < n && k < t.n_texts; k++) {
            int j = k % N;
            const char *object = t.text_object[k] >= 0 ? lex->lemma[t.text_object[k]] : NULL;
            if (json) {
                cJSON *r = cJSON_Parse(lines[k]);
                CHECK(r != NULL, "line %d is no JSON: %s", k, lines[k]);
                if (!r) continue;
                const cJSON *text = cJSON_GetObjectItem(r, "text"), *id = cJSON_GetObjectItem(r, "id");
                const cJSON *obj = cJSON_GetObjectItem(r, "object"), *kind = cJSON_GetObjectItem(r, "kind");
                CHECK(cJSON_GetObjectItem(r, "step")->valueint == 12 && cJSON_GetObjectItem(r, "batch")->valueint == 7,
                      "line %d step/batch", k);
                CHECK(cJSON_IsString(text) && strcmp(text->valuestring, t.texts[k]) == 0, "line %d text differs", k);
                CHECK(cJSON_IsString(id) && strcmp(id->valuestring, ids[j]) == 0, "line %d id differs", k);
                CHECK(cJSON_IsString(kind) && strcmp(kind->valuestring, tng_kind_names[t.kind[k]]) == 0, "line %d kind", k);
                CHECK(object ? cJSON_IsString(obj) && strcmp(obj->valuestring, object) == 0 : cJSON_IsNull(obj),
                      "line %d object", k);
                CHECK(cJSON_GetObjectItem(r, "image")->valueint == j, "line %d image", k);
                const int *row = t.tokens + (size_t)k * t.context;
                int eot = 0;
                while (row[eot] != TOKEN_EOT) eot++;
                CHECK(cJSON_GetObjectItem(r, "tokens")->valueint == eot + 1, "line %d tokens", k);
                cJSON_Delete(r);
            } else {
                char *field[8], *at = lines[k];
                int n_fields = 0;
                for (char *tab; n_fields < 8; at = tab + 1) {
                    field[n_fields++] = at;
                    if (!(tab = strchr(at, '\t'))) break;
                    *tab = '\0';
                }
                CHECK(n_fields == 7, "line %d has %d fields, want 7", k, n_fields);
                if (n_fields != 7) continue;
                char unescaped[1024];
                CHECK(tsv_unescape(field[6], strlen(field[6]), unescaped) && strcmp(unescaped, t.texts[k]) == 0,
                      "line %d text '%s' differs", k, field[6]);
                CHECK(tsv_unescape(field[2], strlen(field[2]), unescaped) && strcmp(unescaped, ids[j]) == 0,
                      "line %d id '%s'", k, field[2]);
                CHECK(strcmp(field[3], tng_kind_names[t.kind[k]]) == 0 && strcmp(field[4], object ? object : "") == 0,
                      "line %d kind/object", k);
            }
        }
        free(lines), free(buf);
    }
    tng_texts_free(&t);
    tng_generator_free(gen);
}

// ---------------------------------------------------------------------------------------------
// The programs

/* texts.jsonl without each record's leading "step" (which tng_negate, knowing no --accum, does
 * not write), into out; checks the steps count micro-batches / accum. */
static char *strip_steps(const char *run_dir, int accum) {
    char path[1024];
    snprintf(path, sizeof path, "%s/texts.jsonl", run_dir);
    char *text = slurp(path), *out = mallocCheck(strlen(text) + 1), *o = out;
    for (char *line = text; *line;) {
        long step = -1, batch = -1;
        int skip = 0;
        sscanf(line, "{\"step\": %ld, %n", &step, &skip);
        CHECK(skip > 0 && sscanf(line + skip, "\"batch\": %ld", &batch) == 1 && step == batch / accum + 1,
              "record without the step of its batch: %.80s", line);
        char *nl = strchr(line, '\n');
        if (!nl || !skip) break;
        *o++ = '{';
        memcpy(o, line + skip, (size_t)(nl + 1 - line - skip));
        o += nl + 1 - line - skip;
        line = nl + 1;
    }
    *o = '\0';
    free(text);
    return out;
}

static void check_same_texts(const char *run_dir, int accum, const char *negate_out, int want_records) {
    char *trained = strip_steps(run_dir, accum), *shown = slurp(negate_out);
    int records = 0;
    for (const char *p = trained; *p; p++) records += *p == '\n';
    CHECK(records == want_records, "%s: %d records, want %d", run_dir, records, want_records);
    CHECK(strcmp(trained, shown) == 0, "%s/texts.jsonl differs from tng_negate's %s", run_dir, negate_out);
    free(trained), free(shown);
}

#define TRAIN_FLAGS "--config tiny --seed 3 --log-every 1000 --neg-per-image 3 --contradictions 2"
#define NEGATE_FLAGS "--seed 3 --neg-per-image 3 --contradictions 2 --jsonl"

/* 2 steps of 2 micro-batches of 4 images: 4 batches of (1 + 3 + 2) * 4 texts */
static void test_train_texts_are_negate_texts(void) {
    int rc = shell("%s/tng_train %s --data %s --batch 4 --accum 2 --steps 2 --log-texts 4 --out %s 2>%s", bin_dir,
                   TRAIN_FLAGS, world, tmp_path("run"), tmp_path("train.log"));
    CHECK(rc == 0, "tng_train exited %d", rc);
    rc = rc || shell("%s/tng_negate %s --data %s --model %s --batch 4 --batches 4 > %s 2>%s", bin_dir, NEGATE_FLAGS,
                     world, tmp_path("run"), tmp_path("negate.jsonl"), tmp_path("negate.log"));
    CHECK(rc == 0, "tng_negate exited %d", rc);
    if (rc == 0) check_same_texts(tmp_path("run"), 2, tmp_path("negate.jsonl"), 4 * 6 * 4);
}

/* A resumed run logs each batch once: its texts.jsonl is the straight run's, even after a
 * kill tore its last line. */
static void test_resumed_log_is_straight_log(void) {
    int rc = shell("%s/tng_train %s --data %s --batch 4 --steps 4 --log-texts 3 --out %s 2>%s", bin_dir, TRAIN_FLAGS,
                   world, tmp_path("straight"), tmp_path("train.log"));
    rc = rc || shell("%s/tng_train %s --data %s --batch 4 --steps 2 --log-texts 3 --out %s 2>%s", bin_dir, TRAIN_FLAGS,
                     world, tmp_path("split"), tmp_path("train.log"));
    /* records of step 3, which the checkpoint at step 2 does not hold, then a torn line */
    rc = rc || shell("grep '^{\"step\": 3,' %s/texts.jsonl >> %s/texts.jsonl && printf '{\"step\": 3, \"bat' >> %s/texts.jsonl",
                     tmp_path("straight"), tmp_path("split"), tmp_path("split"));
    rc = rc || shell("%s/tng_train %s --data %s --batch 4 --steps 4 --log-texts 3 --resume --out %s 2>%s", bin_dir,
                     TRAIN_FLAGS, world, tmp_path("split"), tmp_path("train.log"));
    CHECK(rc == 0, "the runs exited %d", rc);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/texts.jsonl", tmp_path("straight"));
    snprintf(b, sizeof b, "%s/texts.jsonl", tmp_path("split"));
    char *x = slurp(a), *y = slurp(b);
    CHECK(strcmp(x, y) == 0, "resumed texts.jsonl differs from the straight run's");
    int lines = 0;
    for (const char *p = x; *p; p++) lines += *p == '\n';
    CHECK(lines == 3 * 6 * 4, "%d records, want 3 batches of 24", lines);
    free(x), free(y);
}

/* Under mpirun -np 2 with --tng-scope local each rank makes its own texts: tng_negate --ranks 2
 * shows the same, in the same order (batch, then rank). */
static void test_two_ranks(void) {
    if (shell("command -v mpirun > /dev/null") != 0) {
        printf("  (no mpirun: skipped)\n");
        return;
    }
    int rc = shell("mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS=detect_leaks=0 "
                   "-np 2 %s/tng_train %s --data %s --batch 4 --steps 2 --log-texts 2 --tng-scope local --out %s "
                   "> %s 2>&1",
                   bin_dir, TRAIN_FLAGS, world, tmp_path("mpi_run"), tmp_path("mpi.log"));
    CHECK(rc == 0, "mpirun -np 2 tng_train exited %d", rc);
    rc = rc || shell("%s/tng_negate %s --data %s --model %s --batch 4 --batches 2 --ranks 2 > %s 2>%s", bin_dir,
                     NEGATE_FLAGS, world, tmp_path("mpi_run"), tmp_path("ranks.jsonl"), tmp_path("negate.log"));
    CHECK(rc == 0, "tng_negate --ranks 2 exited %d", rc);
    if (rc == 0) check_same_texts(tmp_path("mpi_run"), 1, tmp_path("ranks.jsonl"), 2 * 2 * 6 * 4);
}

/* Captions on stdin are a dataset like any: the texts equal those of a CSV of the same
 * captions (in file order, the short last batch kept); ids are line numbers. */
static void test_stdin_is_a_dataset(void) {
    static const char *const captions[] = {
        "A man riding a horse on a beach.", "Two dogs playing with a frisbee in a park.", "",
        "A cat sleeping on a laptop keyboard.", "A bowl of fruit sitting on a wooden table.",
        "A woman holding an umbrella walks down a rainy street.", "A train pulling into a station.",
        "A plate of food with broccoli and rice.", "A boy flying a kite on the beach."};
    enum { N = sizeof captions / sizeof *captions };
    FILE *lines = fopenCheck(tmp_path("captions.txt"), "w"), *csv = fopenCheck(tmp_path("captions.csv"), "w");
    fprintf(csv, "filepath,caption\n");
    for (int k = 0; k < N; k++) {
        fprintf(lines, "%s\n", captions[k]);
        if (captions[k][0]) fprintf(csv, "img%d.jpg,\"%s\"\n", k, captions[k]);
    }
    fclose(lines), fclose(csv);
    int rc = shell("%s/tng_negate --batch 3 --contradictions 1 < %s > %s", bin_dir, tmp_path("captions.txt"),
                   tmp_path("stdin.tsv"));
    rc = rc || shell("%s/tng_negate --batch 3 --contradictions 1 --shuffle off --last-batch keep --data %s > %s", bin_dir,
                     tmp_path("captions.csv"), tmp_path("csv.tsv"));
    CHECK(rc == 0, "tng_negate exited %d", rc);
    if (rc) return;
    char *a = slurp(tmp_path("stdin.tsv")), *b = slurp(tmp_path("csv.tsv"));
    char *la[64], *lb[64];
    int na = split_lines(a, la, 64), nb = split_lines(b, lb, 64);
    /* 8 captions in batches of 3, 3, 2, with (1 + 2 + 1) texts each, and the header */
    CHECK(na == 1 + 8 * 4 && nb == na, "%d and %d lines, want %d", na, nb, 1 + 8 * 4);
    CHECK(strcmp(la[0], "batch\timage\tid\tkind\tobject\tsource\ttext") == 0, "header '%s'", la[0]);
    for (int k = 1; k < na && k < nb; k++) {
        const char *ta = strrchr(la[k], '\t'), *tb = strrchr(lb[k], '\t');
        CHECK(ta && tb && strcmp(ta, tb) == 0, "line %d: '%s' vs '%s'", k, la[k], lb[k]);
    }
    /* the first batch's originals are lines 1, 2 and 4 (line 3 is blank), in order */
    CHECK(strncmp(la[1], "0\t0\t1\toriginal", 14) == 0 && strncmp(la[3], "0\t2\t4\toriginal", 14) == 0,
          "ids are not line numbers: '%s', '%s'", la[1], la[3]);
    free(a), free(b);
}

/* --stats counts what the records show. */
static void test_stats_agree_with_records(void) {
    const char *fixture = "tests/fixtures/captions/coco_like.txt";
    int rc = shell("%s/tng_negate --batch 40 --jsonl < %s > %s", bin_dir, fixture, tmp_path("all.jsonl"));
    rc = rc || shell("%s/tng_negate --batch 40 --stats < %s > %s", bin_dir, fixture, tmp_path("stats.txt"));
    CHECK(rc == 0, "tng_negate exited %d", rc);
    if (rc) return;
    char *records = slurp(tmp_path("all.jsonl")), *stats = slurp(tmp_path("stats.txt"));
    long kinds[3] = {0}, fallback = 0;
    for (char *line = records; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        cJSON *r = cJSON_Parse(line);
        const char *kind = cJSON_GetObjectItem(r, "kind")->valuestring;
        for (int k = 0; k < 3; k++) kinds[k] += strcmp(kind, tng_kind_names[k]) == 0;
        fallback += strcmp(kind, "hybrid") == 0 && cJSON_GetObjectItem(r, "source")->valueint == -1;
        cJSON_Delete(r);
        line = nl + 1;
    }
    char want[128];
    snprintf(want, sizeof want, "batches 5, images 200");
    CHECK(strstr(stats, want) != NULL, "stats lack '%s':\n%s", want, stats);
    for (int k = 0; k < 3; k++) {
        snprintf(want, sizeof want, "  %-16s %9ld", tng_kind_names[k], kinds[k]);
        CHECK(kinds[k] == 200 && strstr(stats, want) != NULL, "stats lack '%s'", want);
    }
    snprintf(want, sizeof want, "  a fallback noun              %8ld ", fallback);
    CHECK(strstr(stats, want) != NULL, "stats lack '%s'", want);
    free(records), free(stats);
}

static void test_cli_errors(void) {
    struct {
        const char *args, *input, *needle;
        int status;
    } cases[] = {
        {"--model somewhere", "a dog\n", "--model needs --data", 2},
        {"--jsonl --stats", "a dog\n", "not both", 2},
        {"--batch 2", "\n  \n", "no captions on stdin", 1},
        {"--batch 8 --data /no/such/file.csv", "", "/no/such/file.csv", 1},
        {"--data tests/fixtures/captions/coco_like.txt --format csv", "", "coco_like", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        FILE *in = fopenCheck(tmp_path("in.txt"), "w");
        fputs(cases[k].input, in);
        fclose(in);
        int rc = shell("%s/tng_negate %s < %s > /dev/null 2> %s", bin_dir, cases[k].args, tmp_path("in.txt"),
                       tmp_path("err.txt"));
        char *err = slurp(tmp_path("err.txt"));
        CHECK(rc == cases[k].status && strstr(err, cases[k].needle), "tng_negate %s: exit %d (want %d): %s",
              cases[k].args, rc, cases[k].status, err);
        free(err);
    }
    int rc = shell("%s/tng_train --tng off --log-texts 2 > /dev/null 2> %s", bin_dir, tmp_path("err.txt"));
    char *err = slurp(tmp_path("err.txt"));
    CHECK(rc == 2 && strstr(err, "--log-texts needs --tng on"), "tng_train --tng off --log-texts: exit %d: %s", rc, err);
    free(err);
}

int main(void) {
    if (getenv("TNG_BIN_DIR")) bin_dir = getenv("TNG_BIN_DIR");
    setenv("OMP_WAIT_POLICY", "passive", 0);
    lex = lexicon_load(NULL);
    tok = tokenizer_load(NULL);
    scratch_make("negate");
    snprintf(world, sizeof world, "%s", tmp_path("world"));
    if (shell("%s/tng_synth --out %s --train 32 --val 8 --test 8 --size 32 --captions 2 --seed 5 --quiet", bin_dir,
              world) != 0)
        die("tng_synth failed");
    strcat(world, "/train.csv");
    RUN_TEST(test_caption_lines);
    RUN_TEST(test_caption_embed);
    RUN_TEST(test_records_escape);
    RUN_TEST(test_train_texts_are_negate_texts);
    RUN_TEST(test_resumed_log_is_straight_log);
    RUN_TEST(test_two_ranks);
    RUN_TEST(test_stdin_is_a_dataset);
    RUN_TEST(test_stats_agree_with_records);
    RUN_TEST(test_cli_errors);
    scratch_remove();
    lexicon_free(lex);
    tokenizer_free(tok);
    return test_summary();
}
