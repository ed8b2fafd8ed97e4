/*
 * tng_inputs.h: what the generator's tests (test_tng.c, test_tng_standalone.c) share: the
 * lexicon and tokenizer they load, batches of COCO-like captions with random (or placed)
 * embeddings, and the independent checks that read texts word by word against the lexicon
 * (never the generator's own bookkeeping). One test binary includes it once.
 */
#ifndef TNG_TEST_TNG_INPUTS_H
#define TNG_TEST_TNG_INPUTS_H

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/lexicon.h"   // defines: lexicon_load, lexicon_lookup
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_encode_raw
#include "tng/generator.h"  // defines: tng_make_texts, TngTexts
#include "util/rng.h"       // defines: Rng, rng_seed, rng_below, rng_normal

static Lexicon *lex;
static Tokenizer *tok;

// ---------------------------------------------------------------------------------------------
// Inputs

static const char *const SUBJECTS[] = {"A man", "Two women", "A small dog", "A cat", "A boy",
                                       "The girl", "A giraffe", "Three horses", "A bird",
                                       "An elderly person"};
static const char *const ACTIONS[] = {"riding", "sitting on", "standing next to", "holding",
                                      "eating", "looking at", "walking past", "lying under"};
static const char *const THINGS[] = {"a horse", "a wooden bench", "the table", "a pizza",
                                     "a skateboard", "an umbrella", "a red sofa", "some trees",
                                     "a car", "two boats", "a bicycle", "a clock", "the mice"};
static const char *const PLACES[] = {"in a park.", "on a busy street", "near the water.",
                                     "in a kitchen", "on the beach.", "", "at night"};
#define PICK(rng, list) list[rng_below(rng, sizeof(list) / sizeof(list[0]))]

typedef struct {
    int n, dim;
    char **captions;
    float *emb;
} Batch;

static inline void batch_random(Batch *b, int n, int dim, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    b->n = n;
    b->dim = dim;
    b->captions = malloc((size_t)n * sizeof(char *));
    b->emb = malloc((size_t)n * dim * sizeof(float));
    for (int i = 0; i < n; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s %s %s %s", PICK(&rng, SUBJECTS), PICK(&rng, ACTIONS),
                 PICK(&rng, THINGS), PICK(&rng, PLACES));
        b->captions[i] = strdup(buf);
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            b->emb[(size_t)i * dim + d] = (float)rng_normal(&rng);
            norm += b->emb[(size_t)i * dim + d] * b->emb[(size_t)i * dim + d];
        }
        for (int d = 0; d < dim; d++) b->emb[(size_t)i * dim + d] /= (float)sqrt(norm);
    }
}

/* A batch with given captions whose image i sits at angle angles[i] on a circle in 2-D, so
 * cosine similarity falls with angular distance and the neighbour order is known. */
static inline void batch_fixed(Batch *b, int n, const char *const *captions, const double *angles) {
    b->n = n;
    b->dim = 2;
    b->captions = malloc((size_t)n * sizeof(char *));
    b->emb = malloc((size_t)n * 2 * sizeof(float));
    for (int i = 0; i < n; i++) {
        b->captions[i] = strdup(captions[i]);
        b->emb[2 * i] = (float)cos(angles[i]);
        b->emb[2 * i + 1] = (float)sin(angles[i]);
    }
}

static inline void batch_free(Batch *b) {
    for (int i = 0; i < b->n; i++) free(b->captions[i]);
    free(b->captions);
    free(b->emb);
}

static inline void generate(const TngConfig *cfg, const Batch *b, int64_t batch_index, TngTexts *out) {
    TngGenerator *gen = tng_generator_create(cfg, lex, tok);
    tng_make_texts(gen, (const char *const *)b->captions, b->emb, b->n, b->dim, NULL, b->n,
                   batch_index, out);
    tng_generator_free(gen);
}

// ---------------------------------------------------------------------------------------------
// Independent checks

/* Steps to the next word of `*p` (a run of letters), lower-cased into word[64]; returns its
 * lexicon lemma (-1 for none), or -2 at the end of the text. */
static inline int next_word_lemma(const char **p) {
    char word[64];
    while (**p && !isalpha((unsigned char)**p)) (*p)++;
    if (!**p) return -2;
    size_t len = 0;
    for (; isalpha((unsigned char)**p); (*p)++)
        if (len < sizeof word) word[len++] = (char)tolower((unsigned char)**p);
    return len < sizeof word ? lexicon_lookup(lex, word, len) : -1;
}

/* Does `text` hold a whole word (letters only, case-folded) that the lexicon folds to lemma? */
static inline int text_mentions(const char *text, int lemma) {
    for (int found; (found = next_word_lemma(&text)) != -2;)
        if (found == lemma) return 1;
    return 0;
}

static inline int has_any_lexicon_noun_missing_from(const char *text, const char *other) {
    for (int lemma; (lemma = next_word_lemma(&text)) != -2;)
        if (lemma >= 0 && !text_mentions(other, lemma)) return 1;
    return 0;
}

static inline float similarity(const Batch *b, int i, int j) {
    float s = 0;
    for (int d = 0; d < b->dim; d++) s += b->emb[(size_t)i * b->dim + d] * b->emb[(size_t)j * b->dim + d];
    return s;
}

/* Every row must be SOT, the raw ids of its string (uncut), EOT, zeros; except that an original
 * caption may be cut the open_clip way. Returns the number of bad rows. */
static inline int bad_rows(const TngTexts *t) {
    int bad = 0, ctx = t->context;
    int *want = malloc((size_t)ctx * sizeof(int));
    for (int k = 0; k < t->n_texts; k++) {
        const int *row = t->tokens + (size_t)k * ctx;
        int n = tokenizer_encode(tok, t->texts[k], want, ctx);
        int raw = tokenizer_encode_raw(tok, t->texts[k], want, 0); // only the count
        int ok = memcmp(row, want, (size_t)n * sizeof(int)) == 0;
        for (int c = n; c < ctx; c++) ok &= row[c] == 0;
        if (t->kind[k] != TNG_ORIGINAL) ok &= raw + 2 <= ctx; // generated texts are never cut
        if (!ok) {
            fprintf(stderr, "  bad row %d: \"%s\"\n", k, t->texts[k]);
            bad++;
        }
    }
    free(want);
    return bad;
}

#endif
