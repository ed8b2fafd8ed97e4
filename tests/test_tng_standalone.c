/*
 * test_tng_standalone.c: the generator's standalone negations (tng/generator.h, "There is no
 * X.") and the truth mask the loss cuts from them (engine/loss.h, ClipAbsence), checked
 * against the caption strings read word by word (tng_inputs.h), never against the
 * generator's bookkeeping alone:
 *
 *   texts               each standalone text is a positive of its image, of its kind, about
 *                       the image's one object, which it names after a negation word and
 *                       which its caption does not mention; an image's S texts all differ;
 *                       every row is its string's tokens
 *   off_is_unchanged    S = 0 and S = 2 make the same texts, labels and objects up to the
 *                       standalone group (the option off is the generator before it)
 *   named_lists         named[j] is exactly the set of lexicon nouns caption j mentions, in
 *                       the whole pool and in a share of it alike
 *   mask_from_captions  the loss fed the generator's ClipAbsence equals, bit for bit, the
 *                       InfoNCE op with a mask built here from the strings: a standalone text
 *                       of image j leaves image i's softmaxes iff i != j and caption i does not
 *                       mention its object; and the batch has pairs of both sorts
 *
 * Needs data/cache/lexicon.tsv (make lexicon) and the BPE vocabulary (make vocab).
 */
#include <string.h>

#include "engine/backend.h"     // defines: backend_cpu, InfonceTerms, infonce_whole
#include "engine/cpu/ops_cpu.h" // declares: matmul_*_f32, infonce_forward_backward_f32
#include "engine/loss.h"        // defines: ClipLoss, ClipAbsence, clip_loss_*
#include "harness.h"
#include "tng/batch.h"  // defines: TngLayout, tng_standalone_text, tng_caption_text
#include "tng_inputs.h" // defines: lex, tok, Batch, batch_random, generate, text_mentions, bad_rows

enum { B = 24, S = 2, C = 2 };

static TngConfig standalone_config(int standalone) {
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.contradictions = C;
    cfg.standalone = standalone;
    return cfg;
}

static TngLayout layout_of(const TngConfig *cfg) {
    return (TngLayout){.n_images = B, .negations = cfg->negations_per_image,
                       .contradictions = cfg->contradictions, .standalone = cfg->standalone};
}

/* A random batch (seed) and its texts with S standalone negations each; returns their layout. */
static TngLayout standalone_batch(Batch *b, uint64_t seed, TngTexts *t) {
    batch_random(b, B, 8, seed);
    TngConfig cfg = standalone_config(S);
    generate(&cfg, b, (int64_t)seed, t);
    return layout_of(&cfg);
}

/* Whether text holds a whole word of the negation words the templates use. */
static int has_negation_word(const char *text) {
    static const char *const words[] = {"no", "not", "without", "isn't", "nowhere", "cannot", "free"};
    char word[32];
    for (const char *p = text; *p;) {
        while (*p && !isalpha((unsigned char)*p)) p++;
        size_t len = 0;
        for (; *p && (isalpha((unsigned char)*p) || *p == '\''); p++)
            if (len + 1 < sizeof word) word[len++] = (char)tolower((unsigned char)*p);
        word[len] = 0;
        for (size_t k = 0; k < sizeof words / sizeof *words; k++)
            if (strcmp(word, words[k]) == 0) return 1;
    }
    return 0;
}

static int in_list(const int *list, int n, int x) {
    for (int k = 0; k < n; k++)
        if (list[k] == x) return 1;
    return 0;
}

static void test_texts(void) {
    Batch b;
    TngTexts t = {0};
    TngLayout l = standalone_batch(&b, 91, &t);
    CHECK(t.n_texts == tng_text_count(&l), "n_texts %d, the layout has %d", t.n_texts, tng_text_count(&l));
    for (int j = 0; j < B; j++) {
        int object = t.object_lemma[j];
        for (int s = 0; s < S; s++) {
            int k = tng_standalone_text(&l, j, s);
            const char *text = t.texts[k];
            CHECK(t.kind[k] == TNG_STANDALONE && t.txt2img[k] == j && t.text_object[k] == object &&
                      t.source_image[k] == j,
                  "text %d: kind %d, positive %d, object %d (image %d's object %d)", k, (int)t.kind[k],
                  t.txt2img[k], t.text_object[k], j, object);
            CHECK(text_mentions(text, object) && has_negation_word(text) && !text_mentions(b.captions[j], object),
                  "\"%s\" should deny %s, which \"%s\" does not mention", text, lex->lemma[object], b.captions[j]);
            for (int r = 0; r < s; r++)
                CHECK(strcmp(text, t.texts[tng_standalone_text(&l, j, r)]) != 0, "image %d repeats \"%s\"", j, text);
        }
    }
    CHECK(bad_rows(&t) == 0, "rows");
    tng_texts_free(&t);
    batch_free(&b);
}

static void test_off_is_unchanged(void) {
    Batch b;
    batch_random(&b, B, 8, 92);
    TngConfig off = standalone_config(0), on = standalone_config(S);
    TngTexts a = {0}, t = {0};
    generate(&off, &b, 7, &a);
    generate(&on, &b, 7, &t);
    int n = a.n_texts; /* every text before the standalone group */
    CHECK(n == tng_standalone_text(&(TngLayout){B, on.negations_per_image, C, S, 0}, 0, 0),
          "the standalone group starts at %d", n);
    CHECK(memcmp(a.tokens, t.tokens, sizeof(int) * (size_t)n * a.context) == 0 &&
              memcmp(a.txt2img, t.txt2img, sizeof(int) * n) == 0 && memcmp(a.kind, t.kind, sizeof(*a.kind) * n) == 0 &&
              memcmp(a.text_object, t.text_object, sizeof(int) * n) == 0 &&
              memcmp(a.object_lemma, t.object_lemma, sizeof(int) * B) == 0,
          "the texts before the standalone group changed");
    for (int k = 0; k < n; k++) CHECK(strcmp(a.texts[k], t.texts[k]) == 0, "text %d: \"%s\" vs \"%s\"", k, a.texts[k], t.texts[k]);
    tng_texts_free(&a);
    tng_texts_free(&t);
    batch_free(&b);
}

/* named[j] against caption j's words; returns the number of wrong lists. */
static int wrong_named_lists(const TngTexts *t, char *const *captions, const int *pool_of) {
    int wrong = 0;
    for (int j = 0; j < t->n_images; j++) {
        const int *named = t->named + t->named_start[j];
        int n = t->named_start[j + 1] - t->named_start[j], ok = 1;
        const char *caption = captions[pool_of ? pool_of[j] : j], *p = caption;
        for (int lemma; (lemma = next_word_lemma(&p)) != -2;) ok &= lemma < 0 || in_list(named, n, lemma);
        for (int k = 0; k < n; k++) ok &= text_mentions(caption, named[k]) && !in_list(named, k, named[k]);
        ok &= !in_list(named, n, t->object_lemma[j]); /* its own object: absent by construction */
        if (!ok) fprintf(stderr, "  image %d: named list of %d nouns wrong for \"%s\"\n", j, n, caption);
        wrong += !ok;
    }
    return wrong;
}

static void test_named_lists(void) {
    Batch b;
    batch_random(&b, B, 8, 93);
    TngConfig cfg = standalone_config(1);
    TngTexts whole = {0}, share = {0};
    generate(&cfg, &b, 2, &whole);
    CHECK(wrong_named_lists(&whole, b.captions, NULL) == 0, "whole pool");
    static const int make_for[] = {17, 3, 8, 22};
    TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
    tng_make_texts(gen, (const char *const *)b.captions, b.emb, B, b.dim, make_for, 4, 2, &share);
    tng_generator_free(gen);
    CHECK(wrong_named_lists(&share, b.captions, make_for) == 0, "a share of the pool");
    tng_texts_free(&whole);
    tng_texts_free(&share);
    batch_free(&b);
}

/* Random unit rows [n, D]. */
static float *unit_rows(int n, int D, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    float *x = malloc(sizeof(float) * (size_t)n * D);
    for (int r = 0; r < n; r++) {
        double norm = 0;
        for (int d = 0; d < D; d++) x[r * D + d] = (float)rng_normal(&rng), norm += x[r * D + d] * x[r * D + d];
        for (int d = 0; d < D; d++) x[r * D + d] = (float)(x[r * D + d] / sqrt(norm));
    }
    return x;
}

static void test_mask_from_captions(void) {
    enum { D = 16 };
    Batch b;
    TngTexts t = {0};
    TngLayout l = standalone_batch(&b, 94, &t);
    int Nt = t.n_texts, *absent = malloc(sizeof(int) * (size_t)Nt), targets[B];
    unsigned char *exclude = calloc((size_t)B * Nt, 1);
    for (int k = 0; k < Nt; k++) absent[k] = t.kind[k] == TNG_STANDALONE ? t.text_object[k] : -1;
    int excluded = 0, kept = 0, scored = 0;
    for (int k = 0; k < Nt; k++) {
        scored += t.txt2img[k] >= 0;
        for (int i = 0; i < B && absent[k] >= 0; i++) {
            if (i == t.txt2img[k]) continue;
            int out = !text_mentions(b.captions[i], absent[k]);
            exclude[(size_t)i * Nt + k] = (unsigned char)out;
            excluded += out, kept += !out;
        }
    }
    CHECK(excluded > 0 && kept > 0, "%d pairs excluded, %d negatives kept: the test needs both", excluded, kept);
    for (int j = 0; j < B; j++) targets[j] = tng_caption_text(&l, j);
    float *images = unit_rows(B, D, 1), *texts = unit_rows(Nt, D, 2);
    ClipLossConfig lc = {.i2t_each = 1};
    ClipLoss *loss = clip_loss_create(backend_cpu(), D);
    clip_loss_prepare(loss, &lc, B, Nt);
    ClipAbsence absence = {.absent = absent, .named_start = t.named_start, .named = t.named};
    float stats[INFONCE_NSTATS], want[INFONCE_NSTATS];
    clip_loss_forward(loss, images, B, texts, Nt, t.txt2img, targets, &absence, NULL, 14.25f, stats);
    float *d_images = calloc((size_t)B * D, sizeof(float)), *d_want = calloc((size_t)B * D, sizeof(float));
    clip_loss_backward(loss, d_images, NULL);
    float *cos = malloc(sizeof(float) * (size_t)B * Nt);
    matmul_forward_f32(cos, images, texts, NULL, B, D, Nt);
    InfonceTerms terms = infonce_whole(B, scored);
    terms.i2t_each = 1;
    terms.exclude = exclude;
    infonce_forward_backward_f32(cos, want, cos, t.txt2img, targets, 14.25f, B, Nt, &terms);
    matmul_backward_f32(d_want, NULL, NULL, cos, images, texts, B, D, Nt);
    CHECK(memcmp(stats, want, sizeof want) == 0 && memcmp(d_images, d_want, sizeof(float) * B * D) == 0,
          "the loss's mask differs from the captions' (loss %.9g vs %.9g)", stats[INFONCE_LOSS], want[INFONCE_LOSS]);
    clip_loss_free(loss);
    free(absent), free(exclude), free(images), free(texts), free(d_images), free(d_want), free(cos);
    tng_texts_free(&t);
    batch_free(&b);
}

int main(void) {
    lex = lexicon_load(NULL);
    tok = tokenizer_load(NULL);
    RUN_TEST(test_texts);
    RUN_TEST(test_off_is_unchanged);
    RUN_TEST(test_named_lists);
    RUN_TEST(test_mask_from_captions);
    tokenizer_free(tok);
    lexicon_free(lex);
    return test_summary();
}
