/*
 * test_tng.c: the TNG negation generator (host/tng/generator.c, producer.c) and its WordNet
 * lexicon. The layout these tests recompute by hand is batch.h's (test_tng_batch.c).
 *
 * Needs data/cache/lexicon.tsv (make lexicon) and the BPE vocabulary (make vocab). Captions are
 * drawn at random from COCO-like phrase lists and embeddings are random unit vectors, except
 * where a test needs a known neighbour order; then it builds the embeddings from angles.
 * Properties are checked against independent recomputation in this file (whole-word scans of
 * the caption strings, similarity ranks from the embeddings), never against the generator's
 * own bookkeeping alone.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tng_inputs.h"     // defines: lex, tok, Batch, batch_random, generate, text_mentions, bad_rows
#include "text/lexicon.h"   // defines: lexicon_load, lexicon_lookup
#include "util/rng.h"       // defines: Rng, rng_seed, rng_below, rng_normal
#include "tng/generator.h" // defines: tng_make_texts, tng_producer_*, TngTexts
#include "tng/stats.h"     // defines: TngStats, tng_stats_add, tng_stats_print
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_encode_raw

// ---------------------------------------------------------------------------------------------
// Tests

static void test_lexicon_sanity(void) {
    const char *required[] = {"ball", "star", "heart", "moon", "cross", "ring", "key", "leaf",
                              "house", "tree", "cup", "car", "fish", "bird", "flower", "hat",
                              "boat", "dog", "cat", "sofa", "chair", "umbrella", "man", "horse"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
        CHECK(lexicon_lookup(lex, required[k], strlen(required[k])) >= 0, "%s missing", required[k]);
    const char *not_nouns[] = {"riding", "light", "white", "back", "the", "with", "does", "felt"};
    for (size_t k = 0; k < sizeof not_nouns / sizeof not_nouns[0]; k++)
        CHECK(lexicon_lookup(lex, not_nouns[k], strlen(not_nouns[k])) < 0, "%s taken as a noun",
              not_nouns[k]);
    struct { const char *form, *lemma; } folds[] = {
        {"dogs", "dog"}, {"men", "man"}, {"mice", "mouse"}, {"women", "woman"},
        {"leaves", "leaf"}, {"boxes", "box"}, {"children", "child"}, {"rings", "ring"}};
    for (size_t k = 0; k < sizeof folds / sizeof folds[0]; k++) {
        int got = lexicon_lookup(lex, folds[k].form, strlen(folds[k].form));
        int want = lexicon_lookup(lex, folds[k].lemma, strlen(folds[k].lemma));
        CHECK(want >= 0 && got == want, "%s folds to %s, want %s", folds[k].form,
              got >= 0 ? lex->lemma[got] : "(none)", folds[k].lemma);
    }
    // the lookup compares whole words: a prefix or an extension of a form is no match
    CHECK(lexicon_lookup(lex, "dogsled", 3) == lexicon_lookup(lex, "dog", 3), "length ignored");
    CHECK(lexicon_lookup(lex, "do", 2) < 0 && lexicon_lookup(lex, "dogz", 4) < 0, "partial match");
}

static void test_multiword_caption_nouns(void) {
    // "a man riding a horse": the objects are man and horse, never riding
    const char *caps[] = {"a man riding a horse", "a woman"};
    double angles[] = {0.0, 0.1};
    Batch b;
    batch_fixed(&b, 2, caps, angles);
    TngConfig cfg;
    tng_config_default(&cfg);
    TngTexts t = {0};
    int seen_man = 0, seen_horse = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        cfg.seed = seed;
        generate(&cfg, &b, 0, &t);
        const char *obj = lex->lemma[t.object_lemma[1]];
        CHECK(t.object_from[1] == 0, "image 1's object must come from image 0, got %d",
              t.object_from[1]);
        CHECK(strcmp(obj, "man") == 0 || strcmp(obj, "horse") == 0, "object %s", obj);
        seen_man |= strcmp(obj, "man") == 0;
        seen_horse |= strcmp(obj, "horse") == 0;
    }
    CHECK(seen_man && seen_horse, "the seeded choice never varied (man %d horse %d)", seen_man,
          seen_horse);
    tng_texts_free(&t);
    batch_free(&b);
}

static void test_object_absent_and_from_nearest(void) {
    int sizes[] = {2, 3, 5, 16, 33};
    TngConfig cfg;
    tng_config_default(&cfg);
    TngTexts t = {0};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        Batch b;
        batch_random(&b, sizes[s], 24, 100 + s);
        generate(&cfg, &b, (int64_t)s, &t);
        for (int i = 0; i < b.n; i++) {
            int obj = t.object_lemma[i], from = t.object_from[i];
            CHECK(!text_mentions(b.captions[i], obj), "B=%d image %d: object %s is in \"%s\"", b.n,
                  i, lex->lemma[obj], b.captions[i]);
            // the nearest image that has a noun caption_i lacks is where the object comes from
            int want_from = -1;
            float best = -INFINITY;
            for (int j = 0; j < b.n; j++)
                if (j != i && has_any_lexicon_noun_missing_from(b.captions[j], b.captions[i]) &&
                    similarity(&b, i, j) > best)
                    best = similarity(&b, i, j), want_from = j;
            CHECK(from == want_from, "B=%d image %d: object from %d, want %d", b.n, i, from,
                  want_from);
            if (from >= 0)
                CHECK(text_mentions(b.captions[from], obj), "object %s not in caption %d",
                      lex->lemma[obj], from);
            const char *hybrid = t.texts[b.n + i];
            CHECK(text_mentions(hybrid, obj) && strstr(hybrid, lex->lemma[obj]) != NULL,
                  "hybrid \"%s\" lacks its object %s", hybrid, lex->lemma[obj]);
        }
        CHECK(bad_rows(&t) == 0, "B=%d: rows differ from their strings", b.n);
        batch_free(&b);
    }
    tng_texts_free(&t);
}

static void test_own_caption_never_negated(void) {
    TngTexts t = {0};
    for (int released = 0; released <= 1; released++) {
        for (int n = 1; n <= 7; n++) {
            for (int m = 1; m <= 4; m++) {
                TngConfig cfg;
                tng_config_default(&cfg);
                cfg.released = released;
                cfg.negations_per_image = m;
                Batch b;
                batch_random(&b, n, 8, 7 * n + m);
                generate(&cfg, &b, 3, &t);
                CHECK(t.n_texts == (m + 1) * n, "n_texts %d", t.n_texts);
                for (int k = 0; k < t.n_texts; k++) {
                    int i = k % n, slot = k / n;
                    CHECK(t.txt2img[k] == i, "txt2img[%d] = %d", k, t.txt2img[k]);
                    TngTextKind want = slot == 0 ? TNG_ORIGINAL
                                       : slot % 2 == 1 || n == 1 ? TNG_HYBRID
                                                                 : TNG_FULL;
                    CHECK(t.kind[k] == want, "B=%d M=%d text %d kind %d, want %d", n, m, k,
                          t.kind[k], want);
                    if (t.kind[k] != TNG_FULL) continue;
                    int src = t.source_image[k];
                    CHECK(src != i && src >= 0 && src < n, "B=%d text %d negates image %d's own "
                          "caption (source %d)", n, k, i, src);
                    if (slot == 2 && !released) { // the first full negation: the least similar
                        for (int j = 0; j < n; j++)
                            CHECK(j == i || similarity(&b, i, src) <= similarity(&b, i, j),
                                  "image %d: negated %d, but %d is less similar", i, src, j);
                    }
                    if (slot == 2 && released) {
                        int want_src = n - 1 - i == i ? (i + 1) % n : n - 1 - i;
                        CHECK(src == want_src, "released: image %d negates %d, want %d", i, src,
                              want_src);
                    }
                }
                CHECK(bad_rows(&t) == 0, "B=%d M=%d", n, m);
                batch_free(&b);
            }
        }
    }
    tng_texts_free(&t);
}

static void test_fallbacks(void) {
    TngConfig cfg;
    tng_config_default(&cfg);
    TngTexts t = {0};
    // image 0's nearest neighbour (1) adds no noun; the next one (2) adds "cat"
    {
        const char *caps[] = {"A dog on a sofa.", "two dogs on sofas", "a cat and a dog"};
        double angles[] = {0.0, 0.2, 0.9};
        Batch b;
        batch_fixed(&b, 3, caps, angles);
        generate(&cfg, &b, 0, &t);
        CHECK(t.object_from[0] == 2, "object from %d, want the next neighbour 2", t.object_from[0]);
        CHECK(strcmp(lex->lemma[t.object_lemma[0]], "cat") == 0, "object %s, want cat",
              lex->lemma[t.object_lemma[0]]);
        batch_free(&b);
    }
    // no caption holds a noun the others lack: a random common lexicon noun, still absent
    {
        const char *caps[] = {"a dog on a sofa", "dogs near a sofa", "The sofa, the dog.",
                              "a running sleeping"};
        double angles[] = {0.0, 0.3, 0.6, 2.0};
        Batch b;
        batch_fixed(&b, 4, caps, angles);
        for (uint64_t seed = 0; seed < 20; seed++) {
            cfg.seed = seed;
            generate(&cfg, &b, 0, &t);
            for (int i = 0; i < 3; i++) {
                CHECK(t.object_from[i] == -1, "image %d: object from %d, want the lexicon", i,
                      t.object_from[i]);
                CHECK(!text_mentions(b.captions[i], t.object_lemma[i]), "object %s in \"%s\"",
                      lex->lemma[t.object_lemma[i]], b.captions[i]);
                CHECK(lex->noun_tags[t.object_lemma[i]] >= LEXICON_COMMON_MIN_TAGS,
                      "fallback %s is not a common noun", lex->lemma[t.object_lemma[i]]);
            }
            // image 3 has no nouns at all: every neighbour's noun is absent from it
            CHECK(t.object_from[3] == 2, "noun-less caption: object from %d", t.object_from[3]);
        }
        batch_free(&b);
    }
    tng_texts_free(&t);
}

/* Whether image j's texts (every kind) are the same strings in a and b. */
static int same_image_texts(const TngTexts *a, const TngTexts *b, int j) {
    for (int k = j; k < a->n_texts; k += a->n_images)
        if (strcmp(a->texts[k], b->texts[k]) != 0) return 0;
    return a->object_lemma[j] == b->object_lemma[j] && a->object_from[j] == b->object_from[j];
}

/* A preferred neighbour (tng_train --twin-batches: the twin) is tried before the nearest. Image
 * 0's twin 2 adds a bird and is NOT its nearest (1 is): its hybrid still denies the bird, over
 * seeds. The twin's own preference (0) names nothing caption 2 lacks, so it falls back to the
 * usual order, and it and every image without a preference gets exactly the texts of no
 * preference at all, under which image 0's object comes from its nearest as before. Released
 * mode ignores preferences. */
static void test_preferred_neighbour(void) {
    const char *caps[] = {"A dog on a sofa.", "A cat near the table.", "A dog and a bird on a sofa.",
                          "A man holding a pizza"};
    double angles[] = {0.0, 0.1, 1.5, 3.0};
    const int prefer[] = {2, -1, 0, -1};
    Batch b;
    batch_fixed(&b, 4, caps, angles);
    int bird = lexicon_lookup(lex, "bird", 4);
    CHECK(bird >= 0, "bird is a lexicon noun");
    TngTexts plain = {0}, preferring = {0};
    for (int released = 0; released <= 1; released++)
        for (uint64_t seed = 0; seed < 8; seed++) {
            TngConfig cfg;
            tng_config_default(&cfg);
            cfg.seed = seed, cfg.released = released, cfg.contradictions = 4, cfg.negations_per_image = 3;
            TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
            tng_make_texts(gen, (const char *const *)b.captions, b.emb, b.n, b.dim, NULL, b.n, 5, &plain);
            tng_make_texts_preferring(gen, (const char *const *)b.captions, b.emb, prefer, b.n, b.dim, NULL,
                                      b.n, 5, &preferring);
            tng_generator_free(gen);
            CHECK(plain.object_from[0] == 1 && !plain.object_preferred[0], "seed %llu: without a preference "
                  "image 0's object comes from %d, want its nearest 1", (unsigned long long)seed, plain.object_from[0]);
            for (int j = released ? 0 : 1; j < b.n; j++) {
                CHECK(same_image_texts(&plain, &preferring, j), "released %d seed %llu: image %d's texts changed "
                      "by a preference that gave way or was not given", released, (unsigned long long)seed, j);
                CHECK(!preferring.object_preferred[j], "image %d marked preferred", j);
            }
            if (released) continue;
            CHECK(preferring.object_lemma[0] == bird && preferring.object_from[0] == 2 &&
                      preferring.object_preferred[0] && preferring.object_rank[0] == 1,
                  "seed %llu: image 0 denies %s from %d (rank %d, preferred %d), want the twin's bird",
                  (unsigned long long)seed, lex->lemma[preferring.object_lemma[0]], preferring.object_from[0],
                  preferring.object_rank[0], preferring.object_preferred[0]);
            const TngLayout layout = {.n_images = b.n, .negations = 3, .contradictions = 4};
            for (int m = 0; m < 3; m += 2) {
                const char *hybrid = preferring.texts[tng_negation_text(&layout, 0, m)];
                CHECK(text_mentions(hybrid, bird), "hybrid \"%s\"", hybrid);
            }
            // tng_negate --stats counts it apart (and prints that line only when there is one)
            for (int with = 0; with <= 1; with++) {
                TngStats *stats = tng_stats_create(lex);
                tng_stats_add(stats, with ? &preferring : &plain);
                char *summary = NULL;
                size_t size = 0;
                FILE *mem = open_memstream(&summary, &size);
                tng_stats_print(stats, mem, 3);
                fclose(mem);
                const char *line = strstr(summary, "from the preferred neighbour");
                CHECK(with ? line && atoi(line + strlen("from the preferred neighbour")) == 1 : !line,
                      "stats with%s a preference:\n%s", with ? "" : "out", summary);
                free(summary);
                tng_stats_free(stats);
            }
        }
    tng_texts_free(&plain);
    tng_texts_free(&preferring);
    batch_free(&b);
}

static void test_empty_and_nounless_captions(void) {
    const char *caps[] = {"", "   ", "running quickly!", "a dog", "..."};
    double angles[] = {0.0, 0.5, 1.0, 1.5, 2.0};
    Batch b;
    batch_fixed(&b, 5, caps, angles);
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.negations_per_image = 4;
    TngTexts t = {0};
    generate(&cfg, &b, 9, &t);
    for (int k = 0; k < t.n_texts; k++) {
        if (t.kind[k] == TNG_ORIGINAL) continue;
        CHECK(strlen(t.texts[k]) > 5, "text %d too short: \"%s\"", k, t.texts[k]);
        if (t.kind[k] == TNG_FULL)
            CHECK(t.source_image[k] == 2 || t.source_image[k] == 3, "text %d negates empty "
                  "caption %d", k, t.source_image[k]);
        else
            CHECK(text_mentions(t.texts[k], t.object_lemma[k % 5]), "hybrid \"%s\" lacks %s",
                  t.texts[k], lex->lemma[t.object_lemma[k % 5]]);
    }
    CHECK(t.object_from[0] == 3 || t.object_from[0] == -1, "object of the empty caption from %d",
          t.object_from[0]);
    CHECK(bad_rows(&t) == 0, "rows");
    batch_free(&b);
    tng_texts_free(&t);
}

/* The word after the first "no"/"any"/"single"/"one" in text (every hybrid template puts
 * one of them right before its object), as a lexicon lemma; -1 if none. */
static int negated_lemma(const char *text) {
    static const char *const cues[] = {"no ", "any ", "single ", "one "};
    for (const char *p = text; *p; p++) {
        if (p != text && isalpha((unsigned char)p[-1])) continue; /* word starts only */
        for (size_t c = 0; c < sizeof cues / sizeof cues[0]; c++) {
            size_t n = strlen(cues[c]);
            if (strncasecmp(p, cues[c], n) != 0) continue;
            const char *w = p + n;
            char word[64];
            size_t len = 0;
            for (; isalpha((unsigned char)w[len]) && len < sizeof word; len++)
                word[len] = (char)tolower((unsigned char)w[len]);
            int lemma = lexicon_lookup(lex, word, len);
            if (lemma >= 0) return lemma;
        }
    }
    return -1;
}

/* Contradiction negatives: false for their image, of no image (txt2img -1), after every
 * positive text, leaving the positives exactly as with the option off. */
static void test_contradictions(void) {
    enum { B = 24, C = 4 };
    Batch b;
    batch_random(&b, B, 8, 77);
    free(b.captions[5]);
    b.captions[5] = strdup("running quickly!"); /* no lexicon noun: no false hybrid */
    for (int released = 0; released <= 1; released++) {
        TngConfig cfg;
        tng_config_default(&cfg);
        cfg.released = released;
        TngTexts plain = {0}, t = {0};
        generate(&cfg, &b, 3, &plain);
        cfg.contradictions = C;
        generate(&cfg, &b, 3, &t);
        int n_pos = (cfg.negations_per_image + 1) * B;
        CHECK(t.n_texts == n_pos + C * B, "n_texts %d, expected %d", t.n_texts, n_pos + C * B);
        CHECK(memcmp(t.tokens, plain.tokens, sizeof(int) * (size_t)n_pos * t.context) == 0 &&
                  memcmp(t.txt2img, plain.txt2img, sizeof(int) * n_pos) == 0,
              "positives differ from the run without contradictions (released %d)", released);
        for (int k = n_pos; k < t.n_texts; k++) {
            int i = (k - n_pos) % B, c = (k - n_pos) / B;
            CHECK(t.txt2img[k] == -1 && t.source_image[k] == i, "text %d: txt2img %d source %d", k,
                  t.txt2img[k], t.source_image[k]);
            int affirm = c % 4 == 3, hybrid = (c % 4 == 0 || c % 4 == 2) && i != 5;
            TngTextKind want = affirm    ? TNG_FALSE_AFFIRM
                               : !hybrid ? TNG_FALSE_FULL
                               : c % 4 == 0 ? TNG_FALSE_HYBRID
                                            : TNG_SWAPPED_HYBRID;
            CHECK(t.kind[k] == want, "text %d kind %d, expected %d", k, (int)t.kind[k], (int)want);
            if (hybrid) { /* the negated object is one the caption does mention */
                int lemma = negated_lemma(t.texts[k]);
                CHECK(lemma >= 0 && text_mentions(b.captions[i], lemma),
                      "false hybrid \"%s\" negates %s, absent from \"%s\"", t.texts[k],
                      lemma >= 0 ? lex->lemma[lemma] : "nothing", b.captions[i]);
            }
            if (affirm) /* image i's absent object stated as present, nothing negated */
                CHECK(text_mentions(t.texts[k], t.object_lemma[i]) && negated_lemma(t.texts[k]) < 0 &&
                          !text_mentions(b.captions[i], t.object_lemma[i]),
                      "false affirmation \"%s\" should state absent %s", t.texts[k],
                      lex->lemma[t.object_lemma[i]]);
            if (want == TNG_SWAPPED_HYBRID) /* and affirms image i's absent object */
                CHECK(text_mentions(t.texts[k], t.object_lemma[i]) &&
                          !text_mentions(b.captions[i], t.object_lemma[i]),
                      "swapped hybrid \"%s\" should affirm absent %s", t.texts[k],
                      lex->lemma[t.object_lemma[i]]);
        }
        CHECK(bad_rows(&t) == 0, "rows");
        tng_texts_free(&plain);
        tng_texts_free(&t);
    }
    batch_free(&b);
}

static void test_negation_survives_truncation(void) {
    // two 200-word captions: every generated text must keep its negation and end in EOT
    char *longcap[2];
    const char *words[] = {"a", "large", "brown", "dog", "sits", "beside", "the", "old",
                           "wooden", "fence", "while"};
    for (int c = 0; c < 2; c++) {
        longcap[c] = malloc(200 * 16);
        longcap[c][0] = '\0';
        for (int w = 0; w < 200; w++) {
            strcat(longcap[c], w ? " " : "");
            strcat(longcap[c], words[(w + 3 * c) % 11]);
        }
    }
    const char *caps[] = {longcap[0], longcap[1], "a cat on a sofa with a hat"};
    double angles[] = {0.0, 0.2, 3.0};
    Batch b;
    batch_fixed(&b, 3, caps, angles);
    TngTexts t = {0};
    for (uint64_t seed = 0; seed < 30; seed++) { // many seeds: appended and prepended templates
        TngConfig cfg;
        tng_config_default(&cfg);
        cfg.seed = seed;
        generate(&cfg, &b, 0, &t);
        for (int k = 0; k < t.n_texts; k++) {
            const int *row = t.tokens + (size_t)k * t.context;
            int eot = -1;
            for (int c = 0; c < t.context && eot < 0; c++)
                if (row[c] == TOKEN_EOT) eot = c;
            CHECK(row[0] == TOKEN_SOT && eot > 0, "text %d: no SOT/EOT", k);
            if (t.kind[k] == TNG_ORIGINAL) continue;
            // the object's (or the negated caption's first content word's) tokens are in the row
            int i = k % 3;
            const char *clause = t.kind[k] == TNG_HYBRID ? lex->lemma[t.object_lemma[i]] : NULL;
            if (clause) {
                int ids[8];
                int n = tokenizer_encode_raw(tok, clause, ids, 8);
                int found = 0;
                for (int c = 1; c + n <= eot && !found; c++)
                    found = memcmp(row + c, ids, (size_t)n * sizeof(int)) == 0;
                CHECK(found, "seed %llu text %d \"%s\": object %s lost", (unsigned long long)seed,
                      k, t.texts[k], clause);
            }
            // every template carries a negation word; it must survive
            int negated = strstr(t.texts[k], "no ") || strstr(t.texts[k], "No ") ||
                          strstr(t.texts[k], "not ") || strstr(t.texts[k], "Not ") ||
                          strstr(t.texts[k], "without") || strstr(t.texts[k], "Without") ||
                          strstr(t.texts[k], "lack") || strstr(t.texts[k], "Lack") ||
                          strstr(t.texts[k], "absent") || strstr(t.texts[k], "Absent") ||
                          strstr(t.texts[k], "Missing") || strstr(t.texts[k], "free of") ||
                          strstr(t.texts[k], "Free of") || strstr(t.texts[k], "minus") ||
                          strstr(t.texts[k], "othing ");
            CHECK(negated, "text %d lost its negation: \"%s\"", k, t.texts[k]);
            int long_subject = t.kind[k] == TNG_HYBRID ? i < 2 : t.source_image[k] < 2;
            if (long_subject)
                CHECK(eot > 40, "text %d was cut too hard (EOT at %d): \"%s\"", k, eot, t.texts[k]);
        }
        CHECK(bad_rows(&t) == 0, "seed %llu", (unsigned long long)seed);
    }
    tng_texts_free(&t);
    batch_free(&b);
    free(longcap[0]);
    free(longcap[1]);
}

/* Poisons every array of t up to its capacity, so a field the generator forgets to write shows. */
static void poison_texts(TngTexts *t) {
    memset(t->tokens, 0x7f, (size_t)t->capacity_texts * t->context * sizeof(int));
    memset(t->txt2img, 0x7f, (size_t)t->capacity_texts * sizeof(int));
    memset(t->kind, 0x7f, (size_t)t->capacity_texts * sizeof(TngTextKind));
    memset(t->source_image, 0x7f, (size_t)t->capacity_texts * sizeof(int));
    memset(t->object_lemma, 0x7f, (size_t)t->capacity_images * sizeof(int));
    memset(t->object_from, 0x7f, (size_t)t->capacity_images * sizeof(int));
    memset(t->text_arena, '#', t->arena_capacity);
}

/* Does share (texts made for pool images own[0..n)) hold exactly whole's texts of those images,
 * in the layout of a batch of n images? Returns the number of mismatches (each reported). */
static int share_mismatches(const TngTexts *whole, const TngTexts *share, const int *own, int n,
                            const TngConfig *cfg) {
    int bad = 0, N = whole->n_images, ctx = whole->context;
    int per_image = cfg->negations_per_image + 1 + cfg->contradictions;
    if (share->n_images != n || share->n_pool != N || share->n_texts != per_image * n ||
        share->context != ctx || share->batch_index != whole->batch_index) {
        fprintf(stderr, "  share header: %d images of %d, %d texts, context %d\n", share->n_images,
                share->n_pool, share->n_texts, share->context);
        return 1;
    }
    for (int j = 0; j < n; j++) {
        int i = own[j];
        if (share->object_lemma[j] != whole->object_lemma[i] ||
            share->object_from[j] != whole->object_from[i]) {
            fprintf(stderr, "  image %d (pool %d): object %d from %d, whole pool %d from %d\n", j,
                    i, share->object_lemma[j], share->object_from[j], whole->object_lemma[i],
                    whole->object_from[i]);
            bad++;
        }
        for (int m = 0; m < per_image; m++) {
            int a = m * N + i, b = m * n + j;
            int want_img = whole->txt2img[a] < 0 ? -1 : j; /* a contradiction is of no image */
            int same = memcmp(whole->tokens + (size_t)a * ctx, share->tokens + (size_t)b * ctx,
                              sizeof(int) * ctx) == 0 &&
                       whole->txt2img[a] == (whole->txt2img[a] < 0 ? -1 : i) &&
                       share->txt2img[b] == want_img && share->kind[b] == whole->kind[a] &&
                       share->source_image[b] == whole->source_image[a] &&
                       strcmp(share->texts[b], whole->texts[a]) == 0;
            if (!same) {
                fprintf(stderr, "  text %d of image %d (pool %d): \"%s\" (img %d kind %d src %d), "
                        "whole pool \"%s\" (img %d kind %d src %d)\n", m, j, i, share->texts[b],
                        share->txt2img[b], share->kind[b], share->source_image[b],
                        whole->texts[a], whole->txt2img[a], whole->kind[a], whole->source_image[a]);
                bad++;
            }
        }
    }
    return bad;
}

/* A share of the pool (a rank's images of a global batch) gets exactly the texts the whole
 * pool's call gives those images, in a batch-of-the-share layout: random pools with empty and
 * noun-less captions, random subsets in random order, every option. */
static void test_share_equals_slice_of_whole_pool(void) {
    int pools[] = {1, 2, 3, 8, 21, 48};
    Rng rng;
    rng_seed(&rng, 2026);
    TngTexts whole = {0}, share = {0};
    int trials = 0, moved = 0;
    for (size_t s = 0; s < sizeof pools / sizeof pools[0]; s++) {
        int N = pools[s];
        Batch b;
        batch_random(&b, N, 12, 900 + s);
        for (int i = 0; i < N; i++) { /* some empty and noun-less captions */
            uint64_t u = rng_below(&rng, 8);
            if (u < 2) {
                free(b.captions[i]);
                b.captions[i] = strdup(u == 0 ? "" : "running quickly!");
            }
        }
        int *own = malloc(sizeof(int) * (size_t)N), *perm = malloc(sizeof(int) * (size_t)N);
        for (int variant = 0; variant < 8; variant++) {
            TngConfig cfg;
            tng_config_default(&cfg);
            cfg.seed = 31 + variant;
            cfg.released = variant % 4 == 3;
            cfg.negations_per_image = 1 + variant % 4;
            cfg.contradictions = variant % 3 == 1 ? 3 : 0;
            int64_t batch_index = 7 * (int64_t)s + variant;
            generate(&cfg, &b, batch_index, &whole);
            /* rank k of W: positions k, k + W, ... (the loader's interleave), then random
               subsets of random size in random order */
            for (int sub = 0; sub < 6; sub++) {
                int n = 0;
                if (sub < 3) {
                    int W = sub + 2, k = (int)rng_below(&rng, (uint64_t)W);
                    for (int i = k; i < N; i += W) own[n++] = i;
                    if (n == 0) own[n++] = N - 1;
                } else {
                    for (int i = 0; i < N; i++) perm[i] = i;
                    for (int i = N - 1; i > 0; i--) { /* Fisher-Yates */
                        int r = (int)rng_below(&rng, (uint64_t)i + 1), tmp = perm[i];
                        perm[i] = perm[r], perm[r] = tmp;
                    }
                    n = 1 + (int)rng_below(&rng, (uint64_t)N);
                    memcpy(own, perm, sizeof(int) * (size_t)n);
                }
                for (int j = 0; j < n; j++) moved += own[j] != j;
                /* grow the buffers with the whole pool, poison them, then make the share */
                generate(&cfg, &b, batch_index, &share);
                poison_texts(&share);
                TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
                tng_make_texts(gen, (const char *const *)b.captions, b.emb, N, b.dim, own, n,
                               batch_index, &share);
                tng_generator_free(gen);
                int bad = share_mismatches(&whole, &share, own, n, &cfg);
                CHECK(bad == 0, "pool %d, variant %d, share of %d: %d mismatches", N, variant, n, bad);
                trials++;
            }
        }
        free(own), free(perm);
        batch_free(&b);
    }
    /* the comparison is only a test if shares put pool images at other output positions */
    CHECK(trials == 288 && moved > 1000, "%d trials, %d moved images", trials, moved);
    tng_texts_free(&whole);
    tng_texts_free(&share);
}

static int texts_equal(const TngTexts *a, const TngTexts *b) {
    if (a->n_texts != b->n_texts || a->context != b->context) return 0;
    if (memcmp(a->tokens, b->tokens, (size_t)a->n_texts * a->context * sizeof(int))) return 0;
    if (memcmp(a->txt2img, b->txt2img, (size_t)a->n_texts * sizeof(int))) return 0;
    for (int k = 0; k < a->n_texts; k++)
        if (strcmp(a->texts[k], b->texts[k])) return 0;
    return 1;
}

typedef struct {
    Batch *batches;
    int n_batches, next;
} ListSource;

static int list_source(void *ctx, TngInput *in) {
    ListSource *s = ctx;
    if (s->next == s->n_batches) return 0;
    Batch *b = &s->batches[s->next];
    *in = (TngInput){.n_pool = b->n, .dim = b->dim, .captions = (const char *const *)b->captions,
                     .image_emb = b->emb, .batch_index = 1000 + s->next};
    s->next++;
    return 1;
}

static void test_deterministic_direct_and_threaded(void) {
    enum { N_BATCHES = 6 };
    Batch batches[N_BATCHES];
    for (int k = 0; k < N_BATCHES; k++) batch_random(&batches[k], 5 + 4 * k, 16, 500 + k);
    TngConfig cfg;
    tng_config_default(&cfg);
    TngTexts direct[N_BATCHES] = {{0}}, again = {0};
    for (int k = 0; k < N_BATCHES; k++) generate(&cfg, &batches[k], 1000 + k, &direct[k]);

    // the same batch again, into a poisoned buffer of the right size: every byte rewritten
    generate(&cfg, &batches[2], 1002, &again);
    memset(again.tokens, 0x7f, (size_t)again.n_texts * again.context * sizeof(int));
    memset(again.text_arena, '#', again.arena_capacity);
    memset(again.txt2img, 0x7f, (size_t)again.n_texts * sizeof(int));
    generate(&cfg, &batches[2], 1002, &again);
    CHECK(texts_equal(&direct[2], &again), "a second run differs");
    // a batch index or seed change changes the random choices
    generate(&cfg, &batches[2], 1003, &again);
    CHECK(!texts_equal(&direct[2], &again), "batch index ignored");

    for (int depth = 1; depth <= 3; depth += 2) {
        ListSource src = {batches, N_BATCHES, 0};
        TngProducer *p = tng_producer_start(&cfg, lex, tok, list_source, &src, depth);
        int k = 0;
        for (const TngTexts *t; (t = tng_producer_pop(p)) != NULL; k++) {
            CHECK(k < N_BATCHES && t->batch_index == 1000 + k, "batch %d index %lld", k,
                  (long long)t->batch_index);
            if (k < N_BATCHES) CHECK(texts_equal(t, &direct[k]), "threaded batch %d differs", k);
            tng_producer_release(p, t);
        }
        CHECK(k == N_BATCHES, "popped %d batches, want %d", k, N_BATCHES);
        CHECK(tng_producer_pop(p) == NULL, "pop after the end");
        tng_producer_stop(p);
    }
    for (int k = 0; k < N_BATCHES; k++) {
        tng_texts_free(&direct[k]);
        batch_free(&batches[k]);
    }
    tng_texts_free(&again);
}

typedef struct {
    const Batch *pool;
    const int *own;
    int n_own, given;
} ShareSource;

static int share_source(void *ctx, TngInput *in) {
    ShareSource *s = ctx;
    if (s->given) return 0;
    s->given = 1;
    *in = (TngInput){.n_pool = s->pool->n, .dim = s->pool->dim,
                     .captions = (const char *const *)s->pool->captions, .image_emb = s->pool->emb,
                     .batch_index = 44, .make_for = s->own, .n_make = s->n_own};
    return 1;
}

/* The producer passes a source's share through: the texts of those images only. */
static void test_producer_share(void) {
    Batch b;
    batch_random(&b, 12, 8, 78);
    int own[] = {9, 2, 5};
    TngConfig cfg;
    tng_config_default(&cfg);
    TngTexts direct = {0};
    TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
    tng_make_texts(gen, (const char *const *)b.captions, b.emb, b.n, b.dim, own, 3, 44, &direct);
    tng_generator_free(gen);
    ShareSource src = {&b, own, 3, 0};
    TngProducer *p = tng_producer_start(&cfg, lex, tok, share_source, &src, 1);
    const TngTexts *t = tng_producer_pop(p);
    CHECK(t && t->n_images == 3 && t->n_pool == 12 && texts_equal(t, &direct),
          "the producer's share differs from the direct call");
    if (t) tng_producer_release(p, t);
    CHECK(tng_producer_pop(p) == NULL, "pop after the end");
    tng_producer_stop(p);
    tng_texts_free(&direct);
    batch_free(&b);
}

static int endless_source(void *ctx, TngInput *in) {
    Batch *b = ctx;
    static int64_t counter; // only this thread calls it
    *in = (TngInput){.n_pool = b->n, .dim = b->dim, .captions = (const char *const *)b->captions,
                     .image_emb = b->emb, .batch_index = counter++};
    return 1;
}

static void test_producer_early_stop(void) {
    // consumer stops while the producer is blocked on a full queue, or mid-flight, or before
    // anything was popped; ASan (make asan) reports any leak, the test any deadlock (a hang)
    Batch b;
    batch_random(&b, 12, 8, 77);
    TngConfig cfg;
    tng_config_default(&cfg);
    for (int popped = 0; popped <= 3; popped++) {
        TngProducer *p = tng_producer_start(&cfg, lex, tok, endless_source, &b, 2);
        for (int k = 0; k < popped; k++) {
            const TngTexts *t = tng_producer_pop(p);
            CHECK(t && t->n_texts == 36, "pop %d", k);
            if (k % 2 == 0) tng_producer_release(p, t); // odd pops are stopped while held
        }
        tng_producer_stop(p);
    }
    batch_free(&b);
}

int main(void) {
    lex = lexicon_load(NULL);
    tok = tokenizer_load(NULL);
    RUN_TEST(test_lexicon_sanity);
    RUN_TEST(test_multiword_caption_nouns);
    RUN_TEST(test_object_absent_and_from_nearest);
    RUN_TEST(test_own_caption_never_negated);
    RUN_TEST(test_fallbacks);
    RUN_TEST(test_preferred_neighbour);
    RUN_TEST(test_empty_and_nounless_captions);
    RUN_TEST(test_contradictions);
    RUN_TEST(test_negation_survives_truncation);
    RUN_TEST(test_share_equals_slice_of_whole_pool);
    RUN_TEST(test_deterministic_direct_and_threaded);
    RUN_TEST(test_producer_early_stop);
    RUN_TEST(test_producer_share);
    tokenizer_free(tok);
    lexicon_free(lex);
    return test_summary();
}
