/*
 * test_grammar.c: how the TNG generator reads captions (host/tng/grammar.c) and what that
 * changes in its texts: no object out of a compound, a frame or a portion, no scene noun as an
 * object, and clause captions turned into noun phrases where a template needs one.
 *
 * Each generator-level test builds batches whose neighbour order is known (embeddings on a
 * circle) and checks, over many seeds, what every text may and may not hold, by scanning the
 * strings themselves. Needs data/cache/lexicon.tsv (make lexicon) and the BPE vocabulary.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tng/generator.h" // defines: tng_make_texts, TngTexts, TngConfig
#include "tng/grammar.h"   // defines: caption_read, caption_noun_phrase, lexicon_object

static Lexicon *lex;
static Tokenizer *tok;

static int lemma_of(const char *word) { return lexicon_lookup(lex, word, strlen(word)); }

/* The caption as a noun phrase (grammar.h). */
static char *phrase_of(const char *caption, int *clause) {
    static char out[1024];
    CaptionReading r = {0};
    caption_read(&r, lex, caption, strlen(caption));
    size_t n = caption_noun_phrase(&r, caption, strlen(caption), out);
    out[n] = '\0';
    *clause = r.clause;
    caption_reading_free(&r);
    return out;
}

/* Whether `word` (a lexicon noun) is read as an object somewhere in caption. */
static int reads_as_object(const char *caption, const char *word) {
    CaptionReading r = {0};
    caption_read(&r, lex, caption, strlen(caption));
    int found = 0, lemma = lemma_of(word);
    for (int w = 0; w < r.n; w++) found |= r.words[w].lemma == lemma && r.words[w].object;
    caption_reading_free(&r);
    return found;
}

/* Texts of a batch of captions whose image i sits at angle i * 0.1 on a circle: image 0's
 * nearest neighbour is image 1, then 2, and so on. */
static void generate(const char *const *captions, int n, uint64_t seed, int contradictions, TngTexts *out) {
    float *emb = malloc(sizeof(float) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) emb[2 * i] = (float)cos(0.1 * i), emb[2 * i + 1] = (float)sin(0.1 * i);
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.seed = seed;
    cfg.contradictions = contradictions;
    TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
    tng_make_texts(gen, captions, emb, n, 2, NULL, n, (int64_t)seed, out);
    tng_generator_free(gen);
    free(emb);
}

// ---------------------------------------------------------------------------------------------

/* The lexicon's scene flag: places, not things (data/build_lexicon.py). */
static void test_scene_flag(void) {
    const char *scenes[] = {"street", "road", "zoo", "kitchen", "bathroom", "beach", "ocean", "sky", "station", "hill"};
    const char *things[] = {"toilet", "house", "dog", "bench", "heart", "bus", "table", "tree", "boat", "cup"};
    for (size_t k = 0; k < sizeof scenes / sizeof *scenes; k++)
        CHECK(lemma_of(scenes[k]) >= 0 && !lexicon_object(lex, lemma_of(scenes[k])), "%s is no scene", scenes[k]);
    for (size_t k = 0; k < sizeof things / sizeof *things; k++)
        CHECK(lemma_of(things[k]) >= 0 && lexicon_object(lex, lemma_of(things[k])), "%s is a scene", things[k]);
}

static void test_objects_of_a_caption(void) {
    struct {
        const char *caption, *object, *not_object;
    } cases[] = {
        {"A red double decker bus driving down the street.", "bus", "decker"},
        {"A red double-decker bus", "bus", "decker"},
        {"A kitchen with a tile floor", "floor", "tile"},
        {"A cat sleeping on a laptop keyboard", "keyboard", "laptop"},
        {"A person holding a slice of pizza", "pizza", "slice"},
        {"A black and white photo of a red bus", "bus", "photo"},
        {"A tennis court with a player serving the ball", "ball", "serving"},
        {"A dog catches a frisbee in its mouth", "dog", "mouth"},
        {"A giraffe standing next to a tree at the zoo", "giraffe", "zoo"},
        {"A motorcycle parked on the corner of a street", "motorcycle", "corner"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        CHECK(reads_as_object(cases[k].caption, cases[k].object), "\"%s\": %s is no object", cases[k].caption,
              cases[k].object);
        CHECK(!reads_as_object(cases[k].caption, cases[k].not_object), "\"%s\": %s read as an object",
              cases[k].caption, cases[k].not_object);
    }
    /* across a comma or an apostrophe there is no compound; a drawn heart is an object */
    CHECK(reads_as_object("A man's hat", "man") && reads_as_object("a bus, a car", "bus"), "compound across punctuation");
    CHECK(reads_as_object("A red heart and a star", "heart"), "a heart without a possessive is an object");
    /* "man" before a verb is a subject, not a compound's first part */
    CHECK(reads_as_object("A man stands on a skateboard", "man"), "a subject read as a compound part");
}

static void test_noun_phrases(void) {
    struct {
        const char *caption, *phrase;
        int clause;
    } cases[] = {
        {"A woman holding an umbrella walks down a rainy street.", "A woman holding an umbrella walking down a rainy street.", 1},
        {"A man is riding a horse", "A man riding a horse", 1},
        {"Two giraffes stand next to each other", "Two giraffes standing next to each other", 1},
        {"There is a dog sitting on the couch", "a dog sitting on the couch", 1},
        {"The bus is parked next to a building", "The bus parked next to a building", 1},
        {"The toilet is next to a bathtub", "The toilet next to a bathtub", 1},
        {"The bus is red", "The bus that is red", 1},
        {"A kitchen has white cabinets", "A kitchen with white cabinets", 1},
        {"A man sits and reads a book", "A man sitting and reading a book", 1},
        {"A dog runs", "A dog running", 1},
        /* noun phrases stay as they are */
        {"A man riding a horse on a beach.", "A man riding a horse on a beach.", 0},
        {"A market with fruit stands", "A market with fruit stands", 0},
        {"A city bus stopped at a bus stop", "A city bus stopped at a bus stop", 0},
        {"", "", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int clause;
        const char *got = phrase_of(cases[k].caption, &clause);
        CHECK(strcmp(got, cases[k].phrase) == 0 && clause == cases[k].clause, "\"%s\" -> \"%s\" (clause %d), want \"%s\" (%d)",
              cases[k].caption, got, clause, cases[k].phrase, cases[k].clause);
    }
}

/* The examples through the generator: image 0's nearest neighbour names "decker" only
 * as a compound's first part and "zoo" and "street" as scenes, so its object is the head noun
 * "bus"; no full negation keeps the clause caption's finite verb. */
static void test_generator_texts(void) {
    const char *captions[] = {"A cat on a sofa.", "A red double decker bus at the zoo on a street.",
                              "Two dogs playing in the snow.", "A woman holding an umbrella walks down a rainy street."};
    int decker = lemma_of("decker"), bus = lemma_of("bus");
    TngTexts t = {0};
    for (uint64_t seed = 0; seed < 40; seed++) {
        generate(captions, 4, seed, 4, &t);
        CHECK(t.object_lemma[0] == bus, "seed %llu: image 0's object is %s, want bus", (unsigned long long)seed,
              lex->lemma[t.object_lemma[0]]);
        for (int j = 0; j < 4; j++)
            CHECK(t.object_lemma[j] != decker && lexicon_object(lex, t.object_lemma[j]), "image %d's object %s", j,
                  lex->lemma[t.object_lemma[j]]);
        for (int k = 0; k < t.n_texts; k++) {
            if (t.kind[k] == TNG_FULL || t.kind[k] == TNG_FALSE_FULL) /* the negated caption as a noun phrase */
                CHECK(strstr(t.texts[k], "walks") == NULL, "\"%s\" keeps the finite verb", t.texts[k]);
            if (t.text_object[k] >= 0)
                CHECK(t.text_object[k] != decker && lexicon_object(lex, t.text_object[k]),
                      "\"%s\" is about %s", t.texts[k], lex->lemma[t.text_object[k]]);
        }
    }
    /* image 3's caption, the least similar to images 0 and 1, negated as a noun phrase */
    int seen_full = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        generate(captions, 4, seed, 0, &t);
        for (int k = 0; k < t.n_texts; k++)
            if (t.kind[k] == TNG_FULL && t.source_image[k] == 3)
                seen_full += strstr(t.texts[k], "walking down a rainy street") != NULL;
    }
    CHECK(seen_full > 0, "no full negation of the clause caption");
    tng_texts_free(&t);
}

/* A caption whose only nouns are scenes gives its neighbours no object; the fallback noun is
 * never a scene either; a scene noun still counts as present. */
static void test_scene_nouns_never_objects(void) {
    const char *captions[] = {"A dog on a sofa", "A street next to a beach", "A kitchen"};
    TngTexts t = {0};
    for (uint64_t seed = 0; seed < 60; seed++) {
        generate(captions, 3, seed, 0, &t);
        for (int j = 0; j < 3; j++)
            CHECK(lexicon_object(lex, t.object_lemma[j]), "seed %llu image %d: object %s is a scene",
                  (unsigned long long)seed, j, lex->lemma[t.object_lemma[j]]);
        /* image 2 ("A kitchen"): its neighbour 1 has only scenes, so the object comes from 0 */
        CHECK(t.object_from[2] == 0 || t.object_from[2] == -1, "image 2's object from %d", t.object_from[2]);
        CHECK(t.object_lemma[1] != lemma_of("street") && t.object_lemma[1] != lemma_of("beach"), "a present noun");
    }
    tng_texts_free(&t);
}

int main(void) {
    lex = lexicon_load(NULL);
    tok = tokenizer_load(NULL);
    RUN_TEST(test_scene_flag);
    RUN_TEST(test_objects_of_a_caption);
    RUN_TEST(test_noun_phrases);
    RUN_TEST(test_generator_texts);
    RUN_TEST(test_scene_nouns_never_objects);
    lexicon_free(lex);
    tokenizer_free(tok);
    return test_summary();
}
