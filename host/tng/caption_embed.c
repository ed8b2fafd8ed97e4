/*
 * caption_embed.c: bag-of-words caption embeddings (caption_embed.h).
 *
 * Sums run in double and in word order, and the hash is the dataset's hash64, so the result
 * is the same bits whatever the machine or the thread count.
 */
#include "tng/caption_embed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/words.h"  // defines: Word, word_next
#include "util/common.h" // defines: callocCheck

#define CAPTION_EMBED_SEED 0x74e6c1a5u

/* Adds the words of caption s to acc[dim]. */
static void add_caption(const char *s, const Lexicon *lex, int dim, double *acc) {
    Word w;
    for (size_t at = 0, len = strlen(s); word_next(s, len, &at, &w);) {
        if (!w.plain) continue;
        int lemma = lexicon_lookup(lex, w.lower, w.end - w.start);
        if (lemma < 0 && w.end - w.start < 4) continue;
        const char *key = lemma >= 0 ? lex->lemma[lemma] : w.lower;
        uint64_t h = hash64(key, strlen(key), CAPTION_EMBED_SEED);
        double weight = lemma >= 0 ? 1.0 : 0.25;
        acc[(h >> 1) % (uint64_t)dim] += h & 1 ? weight : -weight;
    }
}

void caption_embed_items(const Dataset *ds, const Lexicon *lex, int dim, float *out) {
    double *acc = callocCheck((size_t)dim, sizeof(double));
    for (int k = 0; k < ds->count; k++) {
        memset(acc, 0, sizeof(double) * (size_t)dim);
        const DatasetItem *item = &ds->items[k];
        for (int c = 0; c < item->n_captions; c++) add_caption(item->captions[c], lex, dim, acc);
        double norm = 0;
        for (int d = 0; d < dim; d++) norm += acc[d] * acc[d];
        double scale = norm > 0 ? 1.0 / sqrt(norm) : 0.0;
        for (int d = 0; d < dim; d++) out[(size_t)k * dim + d] = (float)(acc[d] * scale);
    }
    free(acc);
}
