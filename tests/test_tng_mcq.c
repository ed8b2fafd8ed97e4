/*
 * test_tng_mcq.c: the generator's multiple-choice options (tng/mcq.h, TngConfig.mcq), read
 * from the strings word by word (tng_inputs.h), not from the generator's bookkeeping:
 *
 *   one_true_option   every question has exactly one option that is true under TNG's own
 *                     assumption (a noun the caption does not mention is absent), the one
 *                     mcq_answer names and the only one of kind mcq-true: an option affirms a
 *                     noun written "a/an <noun>" and denies one written after "no", "any",
 *                     "single" or "one"; each is about the image's object or a noun its
 *                     caption mentions, is a positive of no image, and every row is its
 *                     string's tokens; the three types all occur; an image whose caption
 *                     names no object has no question (answer -1, empty texts)
 *   off_is_unchanged  mcq 0 and 1 make the same texts, labels and objects up to the options
 *                     (with contradictions and standalone negations on, so every draw before
 *                     them is covered)
 *   deterministic     the same batch index gives the same options; another, other options
 *   no_held_out_phrasing  no option holds a fragment of the held-out evaluation phrasings
 *                     (synth std and alt) of two words or more; one-word fragments ("though",
 *                     "while") are words TNG's own templates have always used
 *
 * Needs data/cache/lexicon.tsv (make lexicon) and the BPE vocabulary (make vocab).
 */
#include <string.h>

#include "harness.h"
#include "synth/synth.h" // defines: synth_phrasings, SYNTH_N_PHRASINGS
#include "tng/batch.h"   // defines: TngLayout, tng_mcq_text, tng_contrastive_text_count
#include "tng/mcq.h"     // defines: TNG_MCQ_OPTIONS, TNG_MCQ_TYPES
#include "tng_inputs.h"  // defines: lex, tok, Batch, batch_random, generate, next_word_lemma, bad_rows

enum { B = 32 };

static TngConfig mcq_config(int mcq) {
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.contradictions = 2;
    cfg.standalone = 1;
    cfg.mcq = mcq;
    return cfg;
}

static TngLayout layout_of(const TngConfig *cfg) {
    return (TngLayout){.n_images = B, .negations = cfg->negations_per_image, .contradictions = cfg->contradictions,
                       .standalone = cfg->standalone, .mcq_options = cfg->mcq ? TNG_MCQ_OPTIONS : 0};
}

/* A random pool (seed) and the config with the options on; returns their layout. */
static TngLayout mcq_pool(Batch *b, uint64_t seed, TngConfig *cfg) {
    batch_random(b, B, 8, seed);
    *cfg = mcq_config(1);
    return layout_of(cfg);
}

/* Reads an option: 1 if it is true for caption (every noun it affirms mentioned, every noun it
 * denies not), 0 if false, -1 if it affirms or denies neither the image's object nor a noun
 * the caption mentions. */
static int option_truth(const char *option, const char *caption, int object) {
    char previous[64] = "";
    int roles = 0, truth = 1;
    for (const char *p = option; *p;) {
        while (*p && !isalpha((unsigned char)*p)) p++;
        const char *start = p;
        int lemma = next_word_lemma(&p);
        if (lemma == -2) break;
        int affirmed = strcmp(previous, "a") == 0 || strcmp(previous, "an") == 0;
        int denied = strcmp(previous, "no") == 0 || strcmp(previous, "any") == 0 ||
                     strcmp(previous, "single") == 0 || strcmp(previous, "one") == 0;
        size_t len = (size_t)(p - start) < sizeof previous ? (size_t)(p - start) : sizeof previous - 1;
        for (size_t k = 0; k < len; k++) previous[k] = (char)tolower((unsigned char)start[k]);
        previous[len] = 0;
        if (lemma < 0 || !(affirmed || denied)) continue;
        int mentioned = text_mentions(caption, lemma);
        if (!mentioned && lemma != object) continue; /* a template's own noun: "a picture with no {x}" */
        roles++;
        truth &= affirmed ? mentioned : !mentioned;
    }
    return roles ? truth : -1;
}

static void test_one_true_option(void) {
    Batch b;
    TngConfig cfg;
    TngLayout l = mcq_pool(&b, 71, &cfg);
    TngTexts t = {0};
    int types[TNG_MCQ_TYPES] = {0}, questions = 0;
    for (int64_t batch = 0; batch < 4; batch++) {
        generate(&cfg, &b, batch, &t);
        CHECK(t.n_texts == tng_text_count(&l), "n_texts %d, the layout has %d", t.n_texts, tng_text_count(&l));
        for (int j = 0; j < B; j++) {
            int answer = t.mcq_answer[j], n_true = 0, true_at = -1;
            CHECK(answer >= -1 && answer < TNG_MCQ_OPTIONS, "image %d: answer %d", j, answer);
            for (int k = 0; k < TNG_MCQ_OPTIONS; k++) {
                int x = tng_mcq_text(&l, j, k);
                CHECK(t.txt2img[x] == -1, "option %d of image %d is a positive of image %d", k, j, t.txt2img[x]);
                if (answer < 0) {
                    CHECK(t.kind[x] == TNG_MCQ_NONE && t.texts[x][0] == 0, "image %d: no question, yet \"%s\"", j, t.texts[x]);
                    continue;
                }
                int truth = option_truth(t.texts[x], b.captions[j], t.object_lemma[j]);
                CHECK(truth >= 0, "\"%s\" (image %d, \"%s\") says nothing about its nouns", t.texts[x], j, b.captions[j]);
                CHECK((t.kind[x] == TNG_MCQ_TRUE) == (truth == 1), "\"%s\" is %s but of kind %d (caption \"%s\")",
                      t.texts[x], truth == 1 ? "true" : "false", (int)t.kind[x], b.captions[j]);
                if (truth == 1) n_true++, true_at = k;
            }
            if (answer < 0) continue;
            CHECK(n_true == 1 && true_at == answer, "image %d: %d true options, answer %d", j, n_true, answer);
            types[t.mcq_type[j]]++;
            questions++;
        }
        CHECK(bad_rows(&t) == 0, "rows");
    }
    for (int q = 0; q < TNG_MCQ_TYPES; q++) CHECK(types[q] > 0, "no question of type %d in %d", q, questions);
    CHECK(questions > 2 * B, "only %d questions in 4 batches of %d", questions, B);
    tng_texts_free(&t);
    batch_free(&b);

    /* a caption naming no object: no question */
    static const char *const bare[2] = {"Two people smiling.", "A man sitting on a bench."};
    static const double angles[2] = {0, 1};
    batch_fixed(&b, 2, bare, angles);
    generate(&cfg, &b, 0, &t);
    CHECK(t.mcq_answer[0] == -1 && t.mcq_answer[1] >= 0, "answers %d and %d for \"%s\" and \"%s\"",
          t.mcq_answer[0], t.mcq_answer[1], bare[0], bare[1]);
    tng_texts_free(&t);
    batch_free(&b);
}

static void test_off_is_unchanged(void) {
    Batch b;
    batch_random(&b, B, 8, 72);
    TngConfig off = mcq_config(0), on = mcq_config(1);
    TngTexts a = {0}, t = {0};
    generate(&off, &b, 5, &a);
    generate(&on, &b, 5, &t);
    int n = a.n_texts;
    TngLayout l = layout_of(&on);
    CHECK(n == tng_contrastive_text_count(&l) && n == tng_mcq_text(&l, 0, 0), "the options start at %d, not %d",
          tng_mcq_text(&l, 0, 0), n);
    CHECK(memcmp(a.tokens, t.tokens, sizeof(int) * (size_t)n * a.context) == 0 &&
              memcmp(a.txt2img, t.txt2img, sizeof(int) * n) == 0 && memcmp(a.kind, t.kind, sizeof(*a.kind) * n) == 0 &&
              memcmp(a.text_object, t.text_object, sizeof(int) * n) == 0 &&
              memcmp(a.object_lemma, t.object_lemma, sizeof(int) * B) == 0,
          "the texts before the options changed");
    for (int k = 0; k < n; k++) CHECK(strcmp(a.texts[k], t.texts[k]) == 0, "text %d: \"%s\" vs \"%s\"", k, a.texts[k], t.texts[k]);
    tng_texts_free(&a);
    tng_texts_free(&t);
    batch_free(&b);
}

static void test_deterministic(void) {
    Batch b;
    TngConfig cfg;
    TngLayout l = mcq_pool(&b, 73, &cfg);
    TngTexts a = {0}, again = {0}, other = {0};
    generate(&cfg, &b, 9, &a);
    generate(&cfg, &b, 9, &again);
    generate(&cfg, &b, 10, &other);
    int same = 1, differ = 0;
    for (int k = tng_mcq_text(&l, 0, 0); k < a.n_texts; k++) {
        same &= strcmp(a.texts[k], again.texts[k]) == 0;
        differ += strcmp(a.texts[k], other.texts[k]) != 0;
    }
    same &= memcmp(a.mcq_answer, again.mcq_answer, sizeof(int) * B) == 0;
    CHECK(same, "the same batch index gave other options");
    CHECK(differ > B, "another batch index changed only %d options", differ);
    tng_texts_free(&a), tng_texts_free(&again), tng_texts_free(&other);
    batch_free(&b);
}

/* text lower-cased, non-letters as spaces, runs collapsed, a space at either end */
static void normalise(const char *text, char *out, size_t size) {
    size_t n = 0;
    out[n++] = ' ';
    for (const char *p = text; *p && n + 2 < size; p++) {
        char c = isalpha((unsigned char)*p) ? (char)tolower((unsigned char)*p) : ' ';
        if (c != ' ' || out[n - 1] != ' ') out[n++] = c;
    }
    if (out[n - 1] != ' ') out[n++] = ' ';
    out[n] = 0;
}

/* Whether a held-out template's fragment of two words or more occurs in the normalised text. */
static int holds_fragment_of(const char *text_norm, const char *tmpl) {
    char fragment[256], norm[260];
    for (const char *p = tmpl; *p;) {
        size_t n = 0;
        while (*p && !(p[0] == '{' && p[1] && p[2] == '}') && n + 1 < sizeof fragment) fragment[n++] = *p++;
        fragment[n] = 0;
        if (*p) p += 3;
        normalise(fragment, norm, sizeof norm);
        int words = 0;
        for (char *c = norm + 1; *c; c++) words += *c == ' ';
        if (words >= 2 && strstr(text_norm, norm)) return 1;
    }
    return 0;
}

static void test_no_held_out_phrasing(void) {
    Batch b;
    TngConfig cfg;
    TngLayout l = mcq_pool(&b, 74, &cfg);
    TngTexts t = {0};
    int checked = 0;
    for (int64_t batch = 0; batch < 8; batch++) {
        generate(&cfg, &b, batch, &t);
        for (int k = tng_mcq_text(&l, 0, 0); k < t.n_texts; k++) {
            char norm[512];
            normalise(t.texts[k], norm, sizeof norm);
            for (int p = 0; p < SYNTH_N_PHRASINGS; p++) {
                const SynthPhrasing *ph = &synth_phrasings[p];
                for (int s = 0; s < SYNTH_N_EVAL_TEMPLATES && ph->held_out; s++) {
                    const char *tmpls[3] = {ph->affirm[s], ph->negate[s], ph->hybrid[s]};
                    for (int x = 0; x < 3; x++)
                        CHECK(!holds_fragment_of(norm, tmpls[x]), "\"%s\" holds a fragment of %s's \"%s\"",
                              t.texts[k], ph->name, tmpls[x]);
                }
            }
            checked++;
        }
    }
    /* the check itself: a std phrasing's fragment is found where it is */
    char norm[512];
    normalise("This image shows a dog.", norm, sizeof norm);
    CHECK(holds_fragment_of(norm, synth_phrasings[0].affirm[0]), "the fragment check finds nothing in \"%s\"", norm);
    CHECK(checked == 8 * B * TNG_MCQ_OPTIONS, "%d options checked", checked);
    tng_texts_free(&t);
    batch_free(&b);
}

int main(void) {
    lex = lexicon_load(NULL);
    tok = tokenizer_load(NULL);
    RUN_TEST(test_one_true_option);
    RUN_TEST(test_off_is_unchanged);
    RUN_TEST(test_deterministic);
    RUN_TEST(test_no_held_out_phrasing);
    tokenizer_free(tok);
    lexicon_free(lex);
    return test_summary();
}
