/*
 * test_synth_bed.c: the test-bed options of the synthetic world (host/synth/synth.h): the
 * in-template evaluation files, pre-training negation clauses and partial captions.
 *
 * Defaults unchanged: DEFAULT_WORLD below is the FNV-1a hash of every text file of a small
 * default world, computed on the tng_synth that predates these options (commit bcdcbe5:
 * `tng_synth --out W --seed 99 --size 16 --train 30 --val 10 --test 10`). JPEG bytes are not
 * in that table, since they depend on the JPEG library's version; instead the options are shown
 * to leave every image (and every std and alt file) byte-identical to the default world's.
 *
 * The other checks read the captions back with an oracle written here, from the clause
 * templates and the scenes' ground truth: every negation clause denies a kind the scene does
 * not hold, every named kind is present, and the caption statistics equal counts made from the
 * CSV text alone. Counterfactual twins (--twins): a twin is its scene plus one object of an
 * absent kind and an unused colour, drawn over the very same pixels, and a world with twins
 * keeps every original file, image and caption row of the world without.
 */
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/csv.h"  // defines: CsvReader, csv_init, csv_next_row, csv_free
#include "dataset/dataset.h" // defines: Dataset, dataset_load, dataset_free
#include "harness.h"
#include "scratch.h"      // defines: scratch_make, tmp_path, scratch_remove
#include "synth/synth.h"  // defines: SynthConfig, synth_write_world, synth_captions, synth_caption_stats_add, ...
#include "synth_words.h"  // defines: has_word
#include "util/common.h"  // defines: read_file

static const struct {
    const char *file;
    uint64_t fnv1a;
} DEFAULT_WORLD[] = {
    {"ccneg_test.csv", 0x7028a772cfc5ca28ULL},
    {"ccneg_test_alt.csv", 0x35d9cec9f5cbb12fULL},
    {"ccneg_val.csv", 0xabc36c1051162c51ULL},
    {"ccneg_val_alt.csv", 0x65b7b775d8572c4bULL},
    {"mcq_test.csv", 0x94e5f97d3a7400a6ULL},
    {"mcq_test_alt.csv", 0x28b7bf4b91b89584ULL},
    {"mcq_val.csv", 0xb5cbc91f558677c4ULL},
    {"mcq_val_alt.csv", 0x11144ae7dcdfa817ULL},
    {"negated_retrieval_test.csv", 0xa9d0f39a39970de2ULL},
    {"negated_retrieval_test_alt.csv", 0x2d2692a0b585c568ULL},
    {"negated_retrieval_val.csv", 0xaa8806c3e98b9ee4ULL},
    {"negated_retrieval_val_alt.csv", 0x10951a4b4d14b68aULL},
    {"retrieval_test.csv", 0xf2f246dd07e40594ULL},
    {"retrieval_test_alt.csv", 0x38b2e8a4b085e92aULL},
    {"retrieval_val.csv", 0x92b90afce6262f98ULL},
    {"retrieval_val_alt.csv", 0x9c5a56697df632b8ULL},
    {"test.csv", 0xb6b249901cbf25e1ULL},
    {"train.csv", 0xff4f78d53d00bdadULL},
    {"val.csv", 0x59a8a56f43fbcbbeULL},
    {"world.json", 0x1fe9f8b91669ef7cULL},
};
#define N_DEFAULT_FILES (int)(sizeof(DEFAULT_WORLD) / sizeof(DEFAULT_WORLD[0]))

static SynthConfig small_config(void) {
    SynthConfig cfg;
    synth_config_default(&cfg);
    cfg.seed = 99;
    cfg.size = 16;
    cfg.n_images[SYNTH_TRAIN] = 30;
    cfg.n_images[SYNTH_VAL] = 10;
    cfg.n_images[SYNTH_TEST] = 10;
    cfg.verbose = 0;
    return cfg;
}

/* The default world with every option of this test bed on. */
static SynthConfig styled_config(void) {
    SynthConfig cfg = small_config();
    cfg.caption_style = (SynthCaptionStyle){.negations = 0.3, .coverage = 0.6};
    cfg.phrasing_mask = (1 << SYNTH_N_PHRASINGS) - 1;
    return cfg;
}

static uint64_t fnv1a(const char *data, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)data[i]) * 0x100000001b3ULL;
    return h;
}

/* 1 when dir_a/rel and dir_b/rel both exist and hold the same bytes. */
static int same_file(const char *dir_a, const char *dir_b, const char *rel) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, rel);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, rel);
    size_t na, nb;
    char *a = read_file(pa, &na), *b = read_file(pb, &nb);
    int same = a && b && na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return same;
}

/* nftw state: the files under walk_root, relative to it. */
static const char *walk_root;
static char walk_files[256][128];
static int walk_n;
static int walk_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    if (flag == FTW_F && walk_n < 256) snprintf(walk_files[walk_n++], sizeof walk_files[0], "%s", path + strlen(walk_root) + 1);
    return 0;
}
static void walk(const char *root) {
    walk_root = root;
    walk_n = 0;
    nftw(root, walk_entry, 16, FTW_PHYS);
}
static int is_image(const char *rel) { return strstr(rel, ".jpg") != NULL; }

// ---------------------------------------------------------------------------------------------
// The defaults, and what the options touch

static void test_default_world_unchanged(void) {
    SynthConfig cfg = small_config();
    char *dir = tmp_path("default");
    synth_write_world(&cfg, dir);
    for (int i = 0; i < N_DEFAULT_FILES; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, DEFAULT_WORLD[i].file);
        size_t n;
        char *data = read_file(path, &n);
        CHECK(data != NULL, "%s missing", path);
        if (!data) continue;
        uint64_t h = fnv1a(data, n);
        CHECK(h == DEFAULT_WORLD[i].fnv1a, "%s changed: FNV-1a %016llx, was %016llx", DEFAULT_WORLD[i].file,
              (unsigned long long)h, (unsigned long long)DEFAULT_WORLD[i].fnv1a);
        free(data);
    }
    // and no file more: the text files above, and one JPEG per image
    walk(dir);
    int n_images = 0, n_text = 0;
    for (int i = 0; i < walk_n; i++) is_image(walk_files[i]) ? n_images++ : n_text++;
    CHECK(n_text == N_DEFAULT_FILES && n_images == 50, "%d text files and %d images, want %d and 50", n_text, n_images,
          N_DEFAULT_FILES);
}

static void test_options_touch_only_their_files(void) {
    SynthConfig cfg = styled_config();
    char *dflt = tmp_path("default"), *styled = tmp_path("styled");
    synth_write_world(&cfg, styled);
    walk(dflt);
    int n_same = 0, n_images = 0;
    for (int i = 0; i < walk_n; i++) {
        const char *rel = walk_files[i];
        // the captions and world.json change; images and the std and alt evaluation files do not
        int changes = strstr(rel, "world.json") || strcmp(rel, "train.csv") == 0 || strcmp(rel, "val.csv") == 0 ||
                      strcmp(rel, "test.csv") == 0;
        int same = same_file(dflt, styled, rel);
        CHECK(same == !changes, "%s: %s", rel, same ? "unchanged by the caption options" : "changed by the caption options");
        n_same += same;
        n_images += is_image(rel);
    }
    CHECK(n_images == 50 && n_same == 50 + 16, "%d images, %d files unchanged", n_images, n_same);
    // the in-template files come on top: 2 splits x 4 kinds
    walk(styled);
    int n_in_template = 0;
    for (int i = 0; i < walk_n; i++) n_in_template += strstr(walk_files[i], "_intemplate.csv") != NULL;
    CHECK(n_in_template == 8, "%d in-template files, want 8", n_in_template);
}

static void test_styled_world_deterministic(void) {
    SynthConfig cfg = styled_config();
    char *styled = tmp_path("styled"), *again = tmp_path("styled_again");
    synth_write_world(&cfg, again);
    walk(styled);
    int n_diff = 0;
    for (int i = 0; i < walk_n; i++) n_diff += !same_file(styled, again, walk_files[i]);
    CHECK(walk_n == 50 + 3 + 24 + 1 && n_diff == 0, "%d files, %d differ between two runs", walk_n, n_diff);
    // another seed is another world
    cfg.seed = 100;
    char *other = tmp_path("other_seed");
    synth_write_world(&cfg, other);
    CHECK(!same_file(styled, other, "train.csv"), "the seed does not change the captions");
}

// ---------------------------------------------------------------------------------------------
// Captions read back

/* Reads the clause that ends caption after its first base_len bytes (the caption without it):
 * which template it is and the kind it denies. Returns the template index, or -1. */
static int read_clause(const char *caption, size_t base_len, int *kind) {
    const char *tail = caption + base_len;
    for (int t = 0; t < synth_n_negation_clauses; t++) {
        // "{c}<before>{x}<after>": the tail is <before><object><after>
        const char *tmpl = synth_negation_clauses[t], *ph = strstr(tmpl, "{x}");
        if (!ph) ph = strstr(tmpl, "{X}");
        if (strncmp(tmpl, "{c}", 3) != 0 || !ph) continue;
        size_t n_before = (size_t)(ph - tmpl) - 3, n_after = strlen(ph + 3), n_tail = strlen(tail);
        if (n_tail <= n_before + n_after || strncmp(tail, tmpl + 3, n_before) != 0 ||
            strcmp(tail + n_tail - n_after, ph + 3) != 0)
            continue;
        char object[64];
        size_t n_object = n_tail - n_before - n_after;
        if (n_object >= sizeof object) continue;
        memcpy(object, tail + n_before, n_object);
        object[n_object] = '\0';
        const char *noun = object;
        if (ph[1] == 'x') { // with its article, which agrees with the noun
            const char *space = strchr(object, ' ');
            if (!space) continue;
            noun = space + 1;
            int an = (size_t)(space - object) == 2 && strncmp(object, "an", 2) == 0;
            int a = (size_t)(space - object) == 1 && object[0] == 'a';
            if (!(an || a) || an != (strchr("aeiou", noun[0]) != NULL)) continue;
        }
        for (int k = 0; k < SYNTH_N_KINDS; k++)
            if (strcmp(noun, synth_kind_names[k]) == 0) {
                *kind = k;
                return t;
            }
    }
    return -1;
}

static void test_negation_clauses_true(void) {
    enum { N_SCENES = 600, N_CAPTIONS = 5 };
    char base[N_CAPTIONS][SYNTH_TEXT_MAX], negated[N_CAPTIONS][SYNTH_TEXT_MAX];
    SynthCaptionFacts facts[N_CAPTIONS];
    const SynthCaptionStyle always = {.negations = 1, .coverage = 1}, quarter = {.negations = 0.25, .coverage = 1};
    int used[16] = {0}, n_quarter = 0;
    for (int i = 0; i < N_SCENES; i++) {
        SynthScene sc;
        synth_make_scene(21, SYNTH_TRAIN, i, &sc);
        synth_captions(&sc, &synth_caption_style_default, 21, SYNTH_TRAIN, i, N_CAPTIONS, base, NULL);
        synth_captions(&sc, &always, 21, SYNTH_TRAIN, i, N_CAPTIONS, negated, facts);
        for (int c = 0; c < N_CAPTIONS; c++) {
            // the clause is appended to the caption the default world has, which it leaves alone
            size_t n = strlen(base[c]);
            CHECK(strncmp(negated[c], base[c], n) == 0, "\"%s\" does not extend \"%s\"", negated[c], base[c]);
            int kind = -1, t = read_clause(negated[c], n, &kind);
            CHECK(t >= 0, "\"%s\": no negation clause after \"%s\"", negated[c], base[c]);
            if (t < 0) continue;
            used[t]++;
            CHECK(!synth_scene_has_kind(&sc, kind), "\"%s\" denies %s, which scene %d holds", negated[c],
                  synth_kind_names[kind], i);
            CHECK(facts[c].denied_kind == kind && facts[c].named == (1u << sc.n_objects) - 1, "\"%s\": facts %d %x", negated[c],
                  facts[c].denied_kind, facts[c].named);
        }
        synth_captions(&sc, &quarter, 21, SYNTH_TRAIN, i, N_CAPTIONS, negated, facts);
        for (int c = 0; c < N_CAPTIONS; c++) {
            int longer = strlen(negated[c]) > strlen(base[c]);
            CHECK(longer == (facts[c].denied_kind >= 0), "\"%s\": facts say %d", negated[c], facts[c].denied_kind);
            n_quarter += longer;
        }
    }
    for (int t = 0; t < synth_n_negation_clauses; t++) CHECK(used[t] > 0, "clause \"%s\" never used", synth_negation_clauses[t]);
    // 3000 captions at 0.25: binomial sd 0.0079; 5 sd
    double share = (double)n_quarter / (N_SCENES * N_CAPTIONS);
    CHECK(fabs(share - 0.25) < 5 * sqrt(0.25 * 0.75 / (N_SCENES * N_CAPTIONS)), "share of negated captions %.4f, want 0.25", share);
}

static void test_partial_captions(void) {
    enum { N_SCENES = 600, N_CAPTIONS = 5 };
    static const char *const counts[SYNTH_MAX_OBJECTS + 1] = {"", "One object", "Two objects", "Three objects"};
    const double p = 0.5;
    const SynthCaptionStyle half = {.negations = 0, .coverage = p}, one = {.negations = 0, .coverage = 0};
    char captions[N_CAPTIONS][SYNTH_TEXT_MAX];
    SynthCaptionFacts facts[N_CAPTIONS];
    double named = 0, expect = 0, variance = 0;
    for (int i = 0; i < N_SCENES; i++) {
        SynthScene sc;
        synth_make_scene(23, SYNTH_TRAIN, i, &sc);
        synth_captions(&sc, &half, 23, SYNTH_TRAIN, i, N_CAPTIONS, captions, facts);
        int n = sc.n_objects;
        for (int c = 0; c < N_CAPTIONS; c++) {
            int n_named = 0;
            for (int a = 0; a < n; a++) {
                int says = has_word(captions[c], synth_kind_names[sc.objects[a].kind]);
                CHECK(says == (int)(facts[c].named >> a & 1), "\"%s\": %s named %d, facts %x", captions[c],
                      synth_kind_names[sc.objects[a].kind], says, facts[c].named);
                n_named += says;
            }
            int n_kinds = 0; // every kind a caption names is present
            for (int k = 0; k < SYNTH_N_KINDS; k++) n_kinds += has_word(captions[c], synth_kind_names[k]);
            CHECK(n_kinds == n_named && n_named >= 1, "\"%s\" names %d kinds, %d of them present", captions[c], n_kinds, n_named);
            // a count is said only when it is the scene's
            for (int m = 1; m <= SYNTH_MAX_OBJECTS; m++)
                if (strncmp(captions[c], counts[m], strlen(counts[m])) == 0)
                    CHECK(m == n && n_named == n, "\"%s\" in a scene of %d objects", captions[c], n);
            named += n_named;
            // each object named with probability p, and one drawn when none is: E = np + (1-p)^n
            expect += n * p + pow(1 - p, n);
            variance += n * p * (1 - p) + pow(1 - p, n);
        }
        synth_captions(&sc, &one, 23, SYNTH_TRAIN, i, N_CAPTIONS, captions, facts);
        for (int c = 0; c < N_CAPTIONS; c++)
            CHECK(__builtin_popcount(facts[c].named) == 1, "coverage 0 names %d objects", __builtin_popcount(facts[c].named));
    }
    // the variance bound is generous (it adds the fallback's share instead of mixing it in); 5 sd
    CHECK(fabs(named - expect) < 5 * sqrt(variance), "named %.0f objects, expected %.0f +- %.0f", named, expect, sqrt(variance));
}

/* The caption statistics of a CSV of captions, counted from its text alone: a kind is
 * mentioned when its noun occurs, present when the objects column lists it. */
static SynthCaptionStats stats_from_csv(const char *path) {
    SynthCaptionStats st = {0};
    size_t size;
    char *text = read_file(path, &size), err[256];
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return st;
    CsvReader r;
    csv_init(&r, text, size, ',', path);
    csv_next_row(&r, err, sizeof err); // header
    while (csv_next_row(&r, err, sizeof err) == 3) {
        const char *caption = r.fields[1], *objects = r.fields[2];
        int n_present = 0, n_named = 0, n_mentioned = 0, unmentioned_present = 0;
        for (int k = 0; k < SYNTH_N_KINDS; k++) {
            int present = has_word(objects, synth_kind_names[k]), mentioned = has_word(caption, synth_kind_names[k]);
            n_present += present;
            n_named += present && mentioned;
            n_mentioned += mentioned;
            unmentioned_present += present && !mentioned;
        }
        st.captions++;
        st.partial += n_named < n_present;
        st.negated += n_mentioned > n_named; // a mentioned kind that is absent: the clause's
        st.objects += n_present;
        st.named += n_named;
        st.unmentioned += SYNTH_N_KINDS - n_mentioned;
        st.unmentioned_present += unmentioned_present;
    }
    csv_free(&r);
    free(text);
    return st;
}

static int stats_equal(const SynthCaptionStats *a, const SynthCaptionStats *b) {
    return a->captions == b->captions && a->partial == b->partial && a->negated == b->negated && a->objects == b->objects &&
           a->named == b->named && a->unmentioned == b->unmentioned && a->unmentioned_present == b->unmentioned_present;
}

static void print_stats(const char *what, const SynthCaptionStats *s) {
    fprintf(stderr, "  %s: %lld captions, %lld partial, %lld negated, %lld/%lld named, %lld/%lld unmentioned present\n",
            what, (long long)s->captions, (long long)s->partial, (long long)s->negated, (long long)s->named,
            (long long)s->objects, (long long)s->unmentioned_present, (long long)s->unmentioned);
}

static void test_caption_stats_exact(void) {
    SynthConfig cfg = styled_config();
    cfg.n_images[SYNTH_TRAIN] = 300;
    char *dir = tmp_path("stats");
    synth_write_world(&cfg, dir);
    SynthCaptionStats got, want = stats_from_csv(tmp_path("stats/train.csv"));
    synth_world_caption_stats(&cfg, SYNTH_TRAIN, &got);
    if (!stats_equal(&got, &want)) print_stats("synth_world_caption_stats", &got), print_stats("counted from train.csv", &want);
    CHECK(stats_equal(&got, &want), "the statistics differ from the counts made from train.csv");
    // the assumption does fail in this world, and world.json records the same numbers
    CHECK(want.partial > 0 && want.unmentioned_present > 0 && want.negated > 0, "a styled world with no partial or negated caption");
    size_t size;
    char *json = read_file(tmp_path("stats/world.json"), &size);
    const char *at = json ? strstr(json, "\"train_caption_stats\"") : NULL;
    long long v[7] = {0};
    int n = at ? sscanf(at,
                        "\"train_caption_stats\": {\"captions\": %lld, \"partial\": %lld, \"negated\": %lld, \"objects\": "
                        "%lld, \"named\": %lld, \"unmentioned\": %lld, \"unmentioned_present\": %lld}",
                        &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6])
                 : 0;
    SynthCaptionStats recorded = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    CHECK(n == 7 && stats_equal(&recorded, &want), "world.json records %d numbers, or other ones", n);
    free(json);
    // with the default captions the assumption always holds
    SynthConfig dflt = small_config();
    synth_world_caption_stats(&dflt, SYNTH_TRAIN, &got);
    want = stats_from_csv(tmp_path("default/train.csv"));
    CHECK(stats_equal(&got, &want) && got.partial == 0 && got.negated == 0 && got.unmentioned_present == 0 &&
              got.captions == 150,
          "default statistics: %lld captions, %lld partial, %lld negated, %lld unmentioned present", (long long)got.captions,
          (long long)got.partial, (long long)got.negated, (long long)got.unmentioned_present);
}

// ---------------------------------------------------------------------------------------------
// Counterfactual twins

/* A twin is its scene plus one object: the same objects, background, texture and noise, and
 * an object of a kind the scene lacks, in a colour it does not use, whose bounding circle lies
 * in the image and misses the others'. Rendered, it changes only pixels within its own
 * bounding box. The same call gives the same twin. */
static void test_twin_scenes(void) {
    enum { N_SCENES = 400, SIZE = 32 };
    static uint8_t a[3 * SIZE * SIZE], b[3 * SIZE * SIZE];
    int by_count[SYNTH_MAX_OBJECTS + 1] = {0};
    for (int i = 0; i < N_SCENES; i++) {
        SynthScene sc, twin, again;
        synth_make_scene(21, SYNTH_TRAIN, i, &sc);
        synth_make_twin(21, SYNTH_TRAIN, i, &sc, &twin);
        synth_make_twin(21, SYNTH_TRAIN, i, &sc, &again);
        CHECK(memcmp(&twin, &again, sizeof twin) == 0, "scene %d: two calls, two twins", i);
        int n = sc.n_objects;
        by_count[n]++;
        CHECK(twin.n_objects == n + 1 && twin.twin && !sc.twin, "scene %d: %d objects, twin %d", i, twin.n_objects,
              twin.twin);
        CHECK(memcmp(twin.objects, sc.objects, sizeof(SynthObject) * n) == 0 && twin.texture == sc.texture &&
                  memcmp(twin.background, sc.background, sizeof sc.background) == 0 &&
                  twin.noise_sigma == sc.noise_sigma && twin.texture_seed == sc.texture_seed,
              "scene %d: the twin changes what the scene holds", i);
        const SynthObject *x = &twin.objects[n];
        CHECK(!synth_scene_has_kind(&sc, x->kind), "scene %d: the added %s is already there", i,
              synth_kind_names[x->kind]);
        CHECK(x->cx - x->radius >= 0 && x->cx + x->radius <= 1 && x->cy - x->radius >= 0 && x->cy + x->radius <= 1,
              "scene %d: the added object leaves the image", i);
        for (int o = 0; o < n; o++) {
            const SynthObject *p = &sc.objects[o];
            float dx = x->cx - p->cx, dy = x->cy - p->cy, gap = x->radius + p->radius;
            CHECK(p->colour != x->colour, "scene %d: the added object takes the colour of object %d", i, o);
            CHECK(dx * dx + dy * dy >= gap * gap, "scene %d: the added object overlaps object %d", i, o);
        }
        synth_render(&sc, SIZE, a);
        synth_render(&twin, SIZE, b);
        // outside the added object's bounding box (a pixel of margin for the supersampling)
        int x0 = (int)((x->cx - x->radius) * SIZE) - 1, x1 = (int)((x->cx + x->radius) * SIZE) + 1;
        int y0 = (int)((x->cy - x->radius) * SIZE) - 1, y1 = (int)((x->cy + x->radius) * SIZE) + 1;
        int outside = 0, inside = 0;
        for (int y = 0; y < SIZE; y++)
            for (int px = 0; px < SIZE; px++) {
                int differs = memcmp(a + 3 * (y * SIZE + px), b + 3 * (y * SIZE + px), 3) != 0;
                if (px >= x0 && px <= x1 && y >= y0 && y <= y1) inside += differs;
                else outside += differs;
            }
        CHECK(outside == 0 && inside > 0, "scene %d: %d pixels differ outside the added object, %d inside", i, outside,
              inside);
    }
    for (int c = 1; c <= SYNTH_MAX_OBJECTS; c++) CHECK(by_count[c] > 40, "%d-object scenes: %d", c, by_count[c]);
}

/* The rows of a CSV (header included), at most max, 4 fields each. */
static int read_rows(const char *path, char (*rows)[4][SYNTH_TEXT_MAX], int max, int *fields) {
    size_t size;
    char *text = read_file(path, &size), err[256];
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return 0;
    CsvReader r;
    csv_init(&r, text, size, ',', path);
    int n = 0, got;
    while (n < max && (got = csv_next_row(&r, err, sizeof err)) > 0) {
        fields[n] = got;
        for (int f = 0; f < got && f < 4; f++) snprintf(rows[n][f], SYNTH_TEXT_MAX, "%s", r.fields[f]);
        n++;
    }
    csv_free(&r);
    free(text);
    return n;
}

/* A world with twins (cfg, written to twins_dir) against the same world without (plain_dir):
 * every file of the plain world is unchanged but train.csv and world.json; train.csv holds the
 * plain rows, each with the twin column, then the twin's rows, which name the original back and
 * are the captions the caption path writes for the twin scene (so, where captions name every
 * object, they name the added kind); the dataset reader pairs them. */
static void check_twin_world(const SynthConfig *cfg, const char *plain_dir, const char *twins_dir) {
    enum { MAX_ROWS = 1 + 2 * 30 * 5 };
    static char plain[MAX_ROWS][4][SYNTH_TEXT_MAX], twins[MAX_ROWS][4][SYNTH_TEXT_MAX];
    static char want[5][SYNTH_TEXT_MAX];
    int plain_fields[MAX_ROWS], twin_fields[MAX_ROWS];
    synth_write_world(cfg, twins_dir);
    walk(plain_dir);
    int n_plain_files = walk_n, n_same = 0;
    for (int i = 0; i < walk_n; i++) {
        const char *rel = walk_files[i];
        int changes = strstr(rel, "world.json") || strcmp(rel, "train.csv") == 0, same = same_file(plain_dir, twins_dir, rel);
        CHECK(same == !changes, "%s: %s", rel, same ? "unchanged by --twins" : "changed by --twins");
        n_same += same;
    }
    walk(twins_dir);
    CHECK(walk_n == n_plain_files + 30 && n_same == n_plain_files - 2, "%d files with twins, %d without, %d unchanged",
          walk_n, n_plain_files, n_same);
    char path[512];
    snprintf(path, sizeof path, "%s/train.csv", plain_dir);
    int n_plain = read_rows(path, plain, MAX_ROWS, plain_fields);
    snprintf(path, sizeof path, "%s/train.csv", twins_dir);
    int n_twins = read_rows(path, twins, MAX_ROWS, twin_fields);
    CHECK(n_plain == 1 + 30 * 5 && n_twins == 1 + 2 * 30 * 5 && twin_fields[0] == 4 && strcmp(twins[0][3], "twin") == 0,
          "%d and %d rows, header '%s' (%d fields)", n_plain, n_twins, twins[0][3], twin_fields[0]);
    if (n_plain != 1 + 30 * 5 || n_twins != 1 + 2 * 30 * 5) return;
    for (int i = 0; i < 30; i++) {
        SynthScene sc, twin;
        synth_make_scene(cfg->seed, SYNTH_TRAIN, i, &sc);
        synth_make_twin(cfg->seed, SYNTH_TRAIN, i, &sc, &twin);
        synth_captions(&twin, &cfg->caption_style, cfg->seed, SYNTH_TRAIN, i, 5, want, NULL);
        const char *added = synth_kind_names[twin.objects[sc.n_objects].kind];
        for (int c = 0; c < 5; c++) {
            char(*o)[SYNTH_TEXT_MAX] = twins[1 + 10 * i + c], (*t)[SYNTH_TEXT_MAX] = twins[1 + 10 * i + 5 + c];
            char(*p)[SYNTH_TEXT_MAX] = plain[1 + 5 * i + c], objects[SYNTH_TEXT_MAX];
            snprintf(objects, sizeof objects, "%s;%s", p[2], added);
            CHECK(strcmp(o[0], p[0]) == 0 && strcmp(o[1], p[1]) == 0 && strcmp(o[2], p[2]) == 0 && strcmp(o[3], t[0]) == 0,
                  "image %d caption %d: '%s' '%s' (twin '%s') against '%s' '%s'", i, c, o[0], o[1], o[3], p[0], p[1]);
            CHECK(strstr(t[0], "_twin.jpg") && strcmp(t[3], o[0]) == 0 && strcmp(t[2], objects) == 0,
                  "twin %d caption %d: %s of %s, objects %s", i, c, t[0], t[3], t[2]);
            CHECK(strcmp(t[1], want[c]) == 0, "twin %d caption %d: '%s', the caption path writes '%s'", i, c, t[1], want[c]);
            CHECK(cfg->caption_style.coverage < 1 || has_word(t[1], added), "twin %d: '%s' does not name the added %s", i,
                  t[1], added);
        }
    }
    Dataset ds;
    char err[512];
    int rc = dataset_load(path, NULL, &ds, err, sizeof err), paired = 0;
    CHECK(rc == 0 && ds.count == 60 && ds.has_twins, "dataset_load: rc %d, %d items (%s)", rc, rc == 0 ? ds.count : 0,
          rc == 0 ? "" : err);
    if (rc != 0) return;
    for (int i = 0; i < ds.count; i++) {
        int t = ds.items[i].twin;
        paired += t >= 0 && ds.items[t].twin == i && (strstr(ds.items[i].source_id, "_twin") != NULL) != (i % 2 == 0);
    }
    CHECK(paired == 60, "%d of 60 items paired with their twin", paired);
    dataset_free(&ds);
}

static void test_twin_world(void) {
    SynthConfig cfg = small_config();
    cfg.twins = 1;
    check_twin_world(&cfg, tmp_path("default"), tmp_path("twins"));
    size_t size;
    char *json = read_file(tmp_path("twins/world.json"), &size);
    CHECK(json && strstr(json, "\"twins\": true"), "world.json does not say twins");
    free(json);
    // with partial captions and negation clauses the twin's captions still come from the caption path
    SynthConfig styled = styled_config();
    styled.twins = 1;
    check_twin_world(&styled, tmp_path("styled"), tmp_path("styled_twins"));
}

int main(void) {
    scratch_make("synth_bed");
    RUN_TEST(test_default_world_unchanged);
    RUN_TEST(test_options_touch_only_their_files);
    RUN_TEST(test_styled_world_deterministic);
    RUN_TEST(test_negation_clauses_true);
    RUN_TEST(test_partial_captions);
    RUN_TEST(test_caption_stats_exact);
    RUN_TEST(test_twin_scenes);
    RUN_TEST(test_twin_world);
    scratch_remove();
    return test_summary();
}
